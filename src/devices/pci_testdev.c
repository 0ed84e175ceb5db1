/* PCI test function for firmware guests (--testdev): scratch registers
 * behind an I/O, a 32-bit and a 64-bit memory BAR, and a doorbell that
 * raises its MSI-X vectors (include/kvisor/pci_testdev.h). */
#include <errno.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "kvisor/bus.h"
#include "kvisor/config.h"
#include "kvisor/device.h"
#include "kvisor/pci.h"
#include "kvisor/pci_testdev.h"
#include "kvisor/vm.h"

struct pci_testdev {
	struct pci_device pci;
	char name[CONFIG_ID_MAX];
	_Atomic uint32_t scratch;
	_Atomic uint32_t count;
	_Atomic uint32_t io_scratch;
	_Atomic uint64_t mem64_scratch;
};

/* (len) bytes at (off) of a little-endian register of (size) bytes holding (v). */
static void pci_testdev_get(uint64_t v, unsigned size, uint64_t off, void *data, uint32_t len)
{
	memset(data, 0, len);
	if (off < size && len <= size - off)
		memcpy(data, (const uint8_t *)&v + off, len);
}

static uint64_t pci_testdev_put(uint64_t v, unsigned size, uint64_t off, const void *data,
				uint32_t len)
{
	if (off < size && len <= size - off)
		memcpy((uint8_t *)&v + off, data, len);
	return v;
}

static void pci_testdev_regs_read(void *opaque, uint64_t off, void *data, uint32_t len)
{
	struct pci_testdev *t = opaque;
	uint32_t n = atomic_fetch_add(&t->count, 1) + 1;

	memset(data, 0, len);
	if (len != 4)
		return;
	if (off == PCI_TESTDEV_SCRATCH)
		pci_testdev_get(atomic_load(&t->scratch), 4, 0, data, 4);
	else if (off == PCI_TESTDEV_COUNT)
		memcpy(data, &n, 4);
}

static void pci_testdev_regs_write(void *opaque, uint64_t off, const void *data, uint32_t len)
{
	struct pci_testdev *t = opaque;
	uint32_t v;

	atomic_fetch_add(&t->count, 1);
	if (len != 4)
		return;
	memcpy(&v, data, 4);
	if (off == PCI_TESTDEV_SCRATCH)
		atomic_store(&t->scratch, v);
	else if (off == PCI_TESTDEV_NOTIFY)
		pci_msix_notify(&t->pci, v); /* a vector out of range is refused there */
}

static void pci_testdev_io_read(void *opaque, uint64_t off, void *data, uint32_t len)
{
	struct pci_testdev *t = opaque;

	pci_testdev_get(atomic_load(&t->io_scratch), 4, off, data, len);
}

static void pci_testdev_io_write(void *opaque, uint64_t off, const void *data, uint32_t len)
{
	struct pci_testdev *t = opaque;

	atomic_store(&t->io_scratch,
		     (uint32_t)pci_testdev_put(atomic_load(&t->io_scratch), 4, off, data, len));
}

static void pci_testdev_mem64_read(void *opaque, uint64_t off, void *data, uint32_t len)
{
	struct pci_testdev *t = opaque;

	pci_testdev_get(atomic_load(&t->mem64_scratch), 8, off, data, len);
}

static void pci_testdev_mem64_write(void *opaque, uint64_t off, const void *data, uint32_t len)
{
	struct pci_testdev *t = opaque;

	atomic_store(&t->mem64_scratch,
		     pci_testdev_put(atomic_load(&t->mem64_scratch), 8, off, data, len));
}

static const struct bus_ops pci_testdev_regs_ops = {
	.read = pci_testdev_regs_read,
	.write = pci_testdev_regs_write,
};
static const struct bus_ops pci_testdev_io_ops = {
	.read = pci_testdev_io_read,
	.write = pci_testdev_io_write,
};
static const struct bus_ops pci_testdev_mem64_ops = {
	.read = pci_testdev_mem64_read,
	.write = pci_testdev_mem64_write,
};

static int pci_testdev_create(struct vm *vm, const struct config_device *inst, void **state)
{
	static const struct pci_device_info info = {
		.vendor_id = PCI_TESTDEV_VENDOR_ID,
		.device_id = PCI_TESTDEV_DEVICE_ID,
		.subsys_vendor_id = PCI_TESTDEV_VENDOR_ID,
		.class_code = PCI_TESTDEV_CLASS,
	};
	struct pci_testdev *t = calloc(1, sizeof(*t));
	int ret;

	if (!t)
		return -ENOMEM;
	snprintf(t->name, sizeof(t->name), "%s", inst->id);
	ret = pci_device_init(&t->pci, t->name, &info);
	if (ret) {
		free(t);
		return ret;
	}
	ret = pci_bar_add(&t->pci, PCI_TESTDEV_REGS_BAR, PCI_TESTDEV_REGS_SIZE, 0,
			  &pci_testdev_regs_ops, t);
	if (!ret)
		ret = pci_bar_add(&t->pci, PCI_TESTDEV_IO_BAR, PCI_TESTDEV_IO_SIZE, PCI_BAR_IO,
				  &pci_testdev_io_ops, t);
	if (!ret)
		ret = pci_bar_add(&t->pci, PCI_TESTDEV_MEM64_BAR, PCI_TESTDEV_MEM64_SIZE,
				  PCI_BAR_MEM64 | PCI_BAR_PREFETCH, &pci_testdev_mem64_ops, t);
	if (!ret)
		ret = pci_msix_init(&t->pci, PCI_TESTDEV_VECTORS, PCI_TESTDEV_MSIX_BAR);
	if (!ret)
		ret = pci_register_device(vm, &t->pci);
	if (ret) {
		pci_unregister_device(vm, &t->pci);
		free(t);
		return ret;
	}
	*state = t;
	return 0;
}

static void pci_testdev_destroy(struct vm *vm, void *state)
{
	struct pci_testdev *t = state;

	pci_unregister_device(vm, &t->pci);
	free(t);
}

/* Any number: each instance is a PCI function of its own. */
const struct device_type pci_testdev_type = {
	.name = "pci-testdev",
	.id_prefix = "pci-testdev",
	.create = pci_testdev_create,
	.destroy = pci_testdev_destroy,
};
