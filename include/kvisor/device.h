/* The device registry: every device type kvisor can create, in creation
 * order, and the device instances of a VM built from its description. */
#ifndef KVISOR_DEVICE_H
#define KVISOR_DEVICE_H

#include <stdbool.h>
#include <stddef.h>

struct vm;
struct config_device;
struct config_opt_spec;

struct device_type {
	const char *name;       /* in the VM description: "virtio-blk" */
	const char *id_prefix;  /* automatic ids: the prefix and a number ("disk0") */
	bool machine;           /* part of every VM: config_init adds one instance */
	unsigned max_instances; /* per VM; 0: no limit */
	/* The options an instance takes (ended by a NULL key; NULL: none), and
	 * the typed struct they fill: params_size bytes, initially
	 * params_default (NULL: all zero). */
	const struct config_opt_spec *opts;
	size_t params_size;
	const void *params_default;
	/* Checks of the type's own once every option was parsed into
	 * inst->params (combinations, formats such as a MAC address); it may
	 * complete inst->params from the values. Optional. 0, or -EINVAL with
	 * one line in (err) (errlen bytes) that names inst->id and the option. */
	int (*check)(struct config_device *inst, char *err, size_t errlen);
	/* Create instance (inst) on (vm): claim bus ranges, set *state (each
	 * instance has its own). 0 or -errno; errors name inst->id. */
	int (*create)(struct vm *vm, const struct config_device *inst, void **state);
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

/* A created instance, on vm->devices. */
struct device {
	const struct device_type *type;
	const char *id;                   /* inst->id */
	const struct config_device *inst; /* its description, in vm->cfg (which outlives the VM) */
	void *state;
	struct device *next;
};

extern const struct device_type *const device_types[];

/* The registered type named (name), or NULL. */
const struct device_type *device_type_find(const char *name);

/* Create every instance of vm->cfg, type by type in device_types[] order
 * and in description order within a type (so --disk order gives vda, vdb,
 * ...). On error (one line printed, naming the instance), the devices
 * created so far stay on vm->devices for devices_destroy(). */
int devices_create(struct vm *vm) __attribute__((warn_unused_result));

/* Destroy every device of vm->devices, newest first. */
void devices_destroy(struct vm *vm);

/* The created device with (id), or NULL. */
struct device *device_find(const struct vm *vm, const char *id);

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
extern const struct device_type pci_host_type;
extern const struct device_type testdev_type;
extern const struct device_type pci_testdev_type;
extern const struct device_type virtio_blk_type;
extern const struct device_type virtio_net_type;

#endif
