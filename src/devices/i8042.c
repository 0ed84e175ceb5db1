/* The part of the i8042 keyboard controller a PC guest uses without a
 * keyboard: the status port and the 0xfe "pulse reset line" command. */
#include <string.h>

#include "kvisor/device.h"
#include "kvisor/layout.h"
#include "kvisor/log.h"
#include "kvisor/vm.h"

#define I8042_DATA  0
#define I8042_CMD   4
#define I8042_RESET 0xfe

static void i8042_read(void *opaque, uint64_t off, void *data, uint32_t len)
{
	/* No data waiting, input buffer empty: the guest never blocks on us. */
	memset(data, 0, len);
}

static void i8042_write(void *opaque, uint64_t off, const void *data, uint32_t len)
{
	struct vm *vm = opaque;

	if (off == I8042_CMD && *(const uint8_t *)data == I8042_RESET) {
		log_debug("guest reset (i8042 command 0xfe)");
		vm_request_stop(vm, VM_STOP_REBOOT, 0);
	}
}

static const struct bus_ops i8042_ops = { .read = i8042_read, .write = i8042_write };

static int i8042_create(struct vm *vm, const struct config_device *inst, void **state)
{
	*state = vm;
	return bus_register(&vm->pio, LAYOUT_I8042_PORT, 5, &i8042_ops, vm);
}

static void i8042_destroy(struct vm *vm, void *state)
{
	bus_unregister(&vm->pio, LAYOUT_I8042_PORT, state);
}

/* One: fixed ports. "kbc": keyboard controller (i8042-0 would read badly). */
const struct device_type i8042_type = {
	.name = "i8042",
	.id_prefix = "kbc",
	.machine = true,
	.max_instances = 1,
	.create = i8042_create,
	.destroy = i8042_destroy,
};
