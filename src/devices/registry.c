/* The device registry: every device type, in creation order, and the
 * creation of a VM's device instances from its description. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kvisor/config.h"
#include "kvisor/device.h"
#include "kvisor/log.h"
#include "kvisor/vm.h"

const struct device_type *const device_types[] = {
	&serial8250_type,
	&acpi_pm_type,
	&i8042_type,
	&pci_host_type, /* PCI bus 0 and its host bridge: before any PCI function */
	&testdev_type,
	&pci_testdev_type,
	&virtio_blk_type, /* in description order: vda, vdb, ... */
	&virtio_net_type, /* in description order: eth0, eth1, ... */
	NULL,
};

const struct device_type *device_type_find(const char *name)
{
	for (const struct device_type *const *t = device_types; *t; t++)
		if (!strcmp((*t)->name, name))
			return *t;
	return NULL;
}

static int device_create(struct vm *vm, const struct config_device *inst)
{
	struct device *d = calloc(1, sizeof(*d));
	unsigned errors = log_error_count();
	int ret;

	if (!d)
		return -ENOMEM;
	d->type = inst->type;
	d->id = inst->id;
	d->inst = inst;
	ret = inst->type->create(vm, inst, &d->state);
	if (ret) {
		/* One line per failure: the device's own when it gave one
		 * (e.g. "disk PATH: in use by another process (locked)"). */
		if (log_error_count() == errors)
			log_err("%s: cannot create %s: %s", inst->id, inst->type->name,
				strerror(-ret));
		free(d);
		return ret;
	}
	d->next = vm->devices;
	vm->devices = d;
	return 0;
}

int devices_create(struct vm *vm)
{
	const struct vm_config *cfg = vm->cfg;

	for (const struct device_type *const *t = device_types; *t; t++) {
		for (unsigned i = 0; i < cfg->nr_devices; i++) {
			int ret;

			if (cfg->devices[i]->type != *t)
				continue;
			ret = device_create(vm, cfg->devices[i]);
			if (ret)
				return ret;
		}
	}
	return 0;
}

void devices_destroy(struct vm *vm)
{
	while (vm->devices) {
		struct device *d = vm->devices;

		vm->devices = d->next;
		if (d->type->destroy)
			d->type->destroy(vm, d->state);
		free(d);
	}
}

struct device *device_find(const struct vm *vm, const char *id)
{
	for (struct device *d = vm->devices; d; d = d->next)
		if (!strcmp(d->id, id))
			return d;
	return NULL;
}

/* Resume the devices from (d) up to, not including, (end), in the reverse
 * order of the list: (end) is where devices_pause stopped. */
static void devices_resume_range(struct vm *vm, struct device *d, struct device *end)
{
	if (d == end)
		return;
	/* Recursion depth: the number of devices (a few dozen at most). */
	devices_resume_range(vm, d->next, end);
	if (d->type->resume)
		d->type->resume(vm, d->state);
}

int devices_pause(struct vm *vm)
{
	for (struct device *d = vm->devices; d; d = d->next) {
		int ret;

		if (!d->type->pause)
			continue;
		ret = d->type->pause(vm, d->state);
		if (ret) {
			log_err("%s: cannot pause: %s", d->id, strerror(-ret));
			devices_resume_range(vm, vm->devices, d);
			return ret;
		}
	}
	return 0;
}

void devices_resume(struct vm *vm)
{
	devices_resume_range(vm, vm->devices, NULL);
}
