/* ACPI hardware-reduced sleep control and reset registers: the guest's
 * power-off and reboot path (described to it by the FADT). */
#include <stdlib.h>
#include <string.h>

#include "kvisor/device.h"
#include "kvisor/layout.h"
#include "kvisor/log.h"
#include "kvisor/vm.h"

#define SLP_TYP(v) (((v) >> 2) & 0x7)

static void acpi_pm_read(void *opaque, uint64_t off, void *data, uint32_t len)
{
	/* Sleep status reads 0 (no wake event); the rest reads as zero too. */
	memset(data, 0, len);
}

static void acpi_pm_write(void *opaque, uint64_t off, const void *data, uint32_t len)
{
	struct vm *vm = opaque;
	uint8_t v = *(const uint8_t *)data;
	uint64_t port = LAYOUT_ACPI_PM_PORT + off;

	if (port == LAYOUT_ACPI_SLEEP_CTL && (v & LAYOUT_ACPI_SLP_EN)) {
		if (SLP_TYP(v) == LAYOUT_ACPI_SLP_TYP_S5) {
			log_debug("guest powered off (ACPI S5)");
			vm_request_stop(vm, VM_STOP_POWEROFF, 0);
		} else {
			log_debug("guest asked for sleep state type %u: ignored", SLP_TYP(v));
		}
	} else if (port == LAYOUT_ACPI_RESET && v == LAYOUT_ACPI_RESET_VAL) {
		log_debug("guest reset (ACPI reset register)");
		vm_request_stop(vm, VM_STOP_REBOOT, 0);
	}
}

static const struct bus_ops acpi_pm_ops = { .read = acpi_pm_read, .write = acpi_pm_write };

static int acpi_pm_create(struct vm *vm, const struct config_device *inst, void **state)
{
	*state = vm;
	return bus_register(&vm->pio, LAYOUT_ACPI_PM_PORT, LAYOUT_ACPI_PM_LEN, &acpi_pm_ops, vm);
}

static void acpi_pm_destroy(struct vm *vm, void *state)
{
	bus_unregister(&vm->pio, LAYOUT_ACPI_PM_PORT, state);
}

/* One: the FADT describes its fixed ports. */
const struct device_type acpi_pm_type = {
	.name = "acpi-pm",
	.id_prefix = "acpi-pm",
	.machine = true,
	.max_instances = 1,
	.create = acpi_pm_create,
	.destroy = acpi_pm_destroy,
};
