/* The VM description: machine fields plus a list of device instances (a
 * type, an id, options). The command line builds it today, a config file
 * or the control socket later; all go through the builders below, the one
 * place where it is validated. */
#ifndef KVISOR_CONFIG_H
#define KVISOR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct device_type;

enum config_on_reboot { CONFIG_REBOOT_EXIT = 0, CONFIG_REBOOT_RESTART = 1 };
enum config_tristate { CONFIG_AUTO = 0, CONFIG_ON = 1, CONFIG_OFF = 2 };

#define CONFIG_DEFAULT_MEM     (256ULL << 20)
#define CONFIG_DEFAULT_CMDLINE "console=ttyS0 panic=-1"

/* profile FILE[,hz=N] */
#define CONFIG_PROFILE_HZ_DEFAULT 1000
#define CONFIG_PROFILE_HZ_MAX     10000

#define CONFIG_PATH_MAX 4096 /* bytes of a file name, with the NUL */
#define CONFIG_ID_MAX   32   /* bytes of a device id, with the NUL */
#define CONFIG_ERR_MAX  512  /* an error buffer for the builders (a long quoted value is cut) */

/* --- options of a device type ------------------------------------------- */

enum config_opt_kind {
	CONFIG_OPT_STRING, /* const char *: the text as given (owned by the instance) */
	CONFIG_OPT_BOOL,   /* bool: "on" or "off" */
	CONFIG_OPT_CHOICE, /* unsigned: index of the value in choices[] */
	/* Repeatable string: const char *[max_items] at offset, filled in the
	 * order given, and an unsigned count of them at count_offset. */
	CONFIG_OPT_LIST,
};

/* One option a device type accepts, and where its typed value goes in the
 * type's params struct. */
struct config_opt_spec {
	const char *key;
	enum config_opt_kind kind;
	size_t offset;              /* of the value in the params struct */
	bool required;              /* STRING: a non-empty value must be given; LIST: one */
	unsigned max;               /* STRING, LIST: at most max bytes each (0: any length) */
	const char *const *choices; /* CHOICE: the values, NULL-terminated */
	unsigned max_items;         /* LIST: how many times the key may be given (>= 1) */
	size_t count_offset;        /* LIST: of the unsigned count in the params struct */
};

/* --- the description -------------------------------------------------- */

/* One KEY=VALUE of an instance, as given. */
struct config_opt {
	const char *key;
	const char *value;
};

/* One device instance. Everything it points to is owned by the config. */
struct config_device {
	const struct device_type *type;
	char id[CONFIG_ID_MAX];
	unsigned nr_opts;
	struct config_opt *opts; /* in the order given, without "id" */
	void *params;            /* type->params_size bytes: the typed, validated values */
	char *text;              /* the storage opts and string params point into */
};

/* String fields are owned by the config when set through config_set (a
 * test may point them elsewhere, and then must not call config_free). */
struct vm_config {
	const char *name; /* the VM's name (id syntax), for messages and identity; NULL: none */
	const char *kernel;
	const char *initrd;
	const char *cmdline;     /* NULL: CONFIG_DEFAULT_CMDLINE */
	const char *console_log; /* NULL: none */
	uint64_t mem_size;
	unsigned cpus;
	enum config_on_reboot on_reboot;
	enum config_tristate pvm_compat;
	bool kernel_unpack;  /* boot a bzImage's payload directly (no decompressor in the guest) */
	const char *profile; /* guest profile output; NULL when off */
	unsigned profile_hz; /* samples per second and vCPU */
	/* Device instances in the order added; the registry creates them type by
	 * type (device_types[] order), and in this order within a type. */
	struct config_device **devices;
	unsigned nr_devices;
};

/* Fill (cfg) with the machine defaults and one instance of each machine
 * device type (device_type.machine: serial0, acpi-pm0, ...). An all-zero
 * vm_config is also a valid, empty description (tests build on it).
 * 0 or -ENOMEM. */
int config_init(struct vm_config *cfg) __attribute__((warn_unused_result));

/* Free what the config owns; (cfg) is then all zero. */
void config_free(struct vm_config *cfg);

/* Set machine option (key) from its text (value): name, kernel, initrd,
 * cmdline, console-log, mem, cpus, on-reboot, pvm-compat, kernel-unpack,
 * profile.
 * On error, (err) gets one line that starts with the key (the command line
 * shows it as --KEY: "mem: invalid size 'abc' (use e.g. 256M or 1G)") and
 * (cfg) is unchanged. 0, -EINVAL or -ENOMEM. (err) has (errlen) bytes
 * (CONFIG_ERR_MAX is a good size); the message is cut to fit. */
int config_set(struct vm_config *cfg, const char *key, const char *value, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Parse a memory size: a whole number with an optional K, M, G or T suffix
 * (powers of 1024, optional "B" or "iB"; a bare number means MiB, like
 * QEMU's -m). 0 or -EINVAL (malformed, zero, overflow). */
int config_parse_size(const char *s, uint64_t *out) __attribute__((warn_unused_result));

/* Add an instance of device type (type) (a device_types[] name) with
 * options (opts): "KEY=VALUE,KEY=VALUE..." or NULL/"" for none. Its id is
 * (id), else an "id=" option, else the type's prefix and the lowest free
 * number ("disk0"). Checks the id (syntax, unique in the VM), the type's
 * instance limit, each option against the type's specs and the required
 * ones, and fills the typed params. On error, (err) gets one line naming
 * the device and the option ("disk1: readonly: expected on or off, got
 * 'maybe'") and (cfg) is unchanged. 0, -EINVAL or -ENOMEM. */
int config_add_device(struct vm_config *cfg, const char *type, const char *id, const char *opts,
		      char *err, size_t errlen) __attribute__((warn_unused_result));

/* Format one error line into (err) of (errlen) bytes (nothing when err is
 * NULL or errlen 0; cut to fit); returns -EINVAL. For the builders above
 * and for the check() hooks of device types (kvisor/device.h). */
int config_error(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The instance with (id), or NULL. */
const struct config_device *config_find_device(const struct vm_config *cfg, const char *id);

/* The value of option (key) of (dev) as given, or NULL. */
const char *config_device_opt(const struct config_device *dev, const char *key);

#endif
