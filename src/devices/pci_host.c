/* PCI bus 0 and its host bridge (00:00.0) as a machine device, so that it
 * is listed with the others; the bus itself is src/bus/pci.c. */
#include "kvisor/device.h"
#include "kvisor/pci.h"
#include "kvisor/vm.h"

static int pci_host_create(struct vm *vm, const struct config_device *inst, void **state)
{
	int ret = pci_init(vm);

	if (ret) {
		pci_destroy(vm); /* undoes a partial pci_init */
		return ret;
	}
	*state = vm->pci;
	return 0;
}

static void pci_host_destroy(struct vm *vm, void *state)
{
	pci_destroy(vm);
}

/* One: vm->pci is bus 0, which the PCI functions of other devices join. */
const struct device_type pci_host_type = {
	.name = "pci-host",
	.id_prefix = "pci",
	.machine = true,
	.max_instances = 1,
	.create = pci_host_create,
	.destroy = pci_host_destroy,
};
