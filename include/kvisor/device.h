/* The device registry: every device type kvisor can create, in the order
 * they are created. */
#ifndef KVISOR_DEVICE_H
#define KVISOR_DEVICE_H

#include <stdbool.h>

struct vm;
struct vm_config;

struct device_type {
	const char *name;
	/* Whether (cfg) asks for this device; NULL means always. */
	bool (*wanted)(const struct vm_config *cfg);
	/* Create the device on (vm): claim bus ranges, set *state. 0 or -errno. */
	int (*create)(struct vm *vm, void **state);
	/* Release what create() did; NULL when there is nothing to release.
	 * Also called on a paused device (a VM stopped while paused). */
	void (*destroy)(struct vm *vm, void *state);
	/* Quiesce the device for a VM pause (optional): every vCPU is already
	 * parked; when it returns, requests in flight have completed and none
	 * is taken from the guest (queues are not served) until resume().
	 * 0 or -errno (the pause fails; devices paused before are resumed). */
	int (*pause)(struct vm *vm, void *state);
	/* Undo pause() (optional); the vCPUs are released after it. */
	void (*resume)(struct vm *vm, void *state);
};

struct device {
	const struct device_type *type;
	void *state;
	struct device *next;
};

extern const struct device_type *const device_types[];

/* Create every wanted device of the registry on (vm), in order. On error,
 * the devices created so far stay on vm->devices for devices_destroy(). */
int devices_create(struct vm *vm) __attribute__((warn_unused_result));
void devices_destroy(struct vm *vm);

/* Pause every created device that has a pause hook, newest first (the
 * order of vm->devices, as devices_destroy). On an error, the devices
 * paused so far are resumed in reverse order and the error is returned,
 * after a message naming the device. 0 or -errno. */
int devices_pause(struct vm *vm) __attribute__((warn_unused_result));

/* Resume every device with a resume hook, in the reverse order of
 * devices_pause (oldest first). */
void devices_resume(struct vm *vm);

/* Device types (src/devices). */
extern const struct device_type serial8250_type;
extern const struct device_type acpi_pm_type;
extern const struct device_type i8042_type;
extern const struct device_type testdev_type;
extern const struct device_type pci_testdev_type;
extern const struct device_type virtio_blk_type;

#endif
