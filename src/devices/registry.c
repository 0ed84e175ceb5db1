/* The device registry: every device type, in creation order. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kvisor/device.h"
#include "kvisor/log.h"
#include "kvisor/vm.h"

const struct device_type *const device_types[] = {
	&serial8250_type,
	&acpi_pm_type,
	&i8042_type,
	&testdev_type,
	&pci_testdev_type, /* on PCI bus 0, which vm_setup creates first */
	&virtio_blk_type,  /* one function per --disk, in order: vda, vdb, ... */
	NULL,
};

int devices_create(struct vm *vm)
{
	for (const struct device_type *const *t = device_types; *t; t++) {
		struct device *d;
		unsigned errors = log_error_count();
		int ret;

		if ((*t)->wanted && !(*t)->wanted(vm->cfg))
			continue;
		d = calloc(1, sizeof(*d));
		if (!d)
			return -ENOMEM;
		d->type = *t;
		ret = (*t)->create(vm, &d->state);
		if (ret) {
			/* One line per failure: the device's own when it gave one
			 * (e.g. "disk PATH: in use by another process (locked)"). */
			if (log_error_count() == errors)
				log_err("%s: cannot create device: %s", (*t)->name, strerror(-ret));
			free(d);
			return ret;
		}
		d->next = vm->devices;
		vm->devices = d;
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
			log_err("%s: cannot pause: %s", d->type->name, strerror(-ret));
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
