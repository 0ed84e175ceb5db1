/* The user's description of a VM, filled by the command line (src/cli). */
#ifndef KVISOR_CONFIG_H
#define KVISOR_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

enum config_on_reboot { CONFIG_REBOOT_EXIT = 0, CONFIG_REBOOT_RESTART = 1 };
enum config_tristate { CONFIG_AUTO = 0, CONFIG_ON = 1, CONFIG_OFF = 2 };

#define CONFIG_DEFAULT_MEM  (256ULL << 20)
#define CONFIG_DEFAULT_CMDLINE "console=ttyS0 panic=-1"

/* --disk PATH[,readonly=on|off][,serial=ID][,cache=none|writeback] */
#define CONFIG_MAX_DISKS       16
#define CONFIG_DISK_PATH_MAX   4096 /* bytes, with the NUL */
#define CONFIG_DISK_SERIAL_MAX 20   /* virtio-blk's ID string */

enum config_disk_cache { CONFIG_CACHE_WRITEBACK = 0, CONFIG_CACHE_NONE = 1 };

/* --profile FILE[,hz=N] */
#define CONFIG_PROFILE_PATH_MAX   4096 /* bytes, with the NUL */
#define CONFIG_PROFILE_HZ_DEFAULT 1000
#define CONFIG_PROFILE_HZ_MAX     10000

struct config_disk {
	char path[CONFIG_DISK_PATH_MAX];
	char serial[CONFIG_DISK_SERIAL_MAX + 1]; /* "" when none */
	bool readonly;
	enum config_disk_cache cache;
};

struct vm_config {
	const char *kernel;
	const char *initrd;
	const char *cmdline;     /* NULL: CONFIG_DEFAULT_CMDLINE */
	const char *console_log; /* NULL: none */
	uint64_t mem_size;
	unsigned cpus;
	enum config_on_reboot on_reboot;
	enum config_tristate pvm_compat;
	bool kernel_unpack;      /* boot a bzImage's payload directly (no decompressor in the guest) */
	bool testdev;            /* firmware test port and MMIO window */
	unsigned nr_disks;       /* virtio-blk disks, vda, vdb, ... in this order */
	struct config_disk disks[CONFIG_MAX_DISKS];
	char profile[CONFIG_PROFILE_PATH_MAX]; /* guest profile output; "" when off */
	unsigned profile_hz;                   /* samples per second and vCPU */
};

/* Fill (cfg) with the defaults. */
void config_defaults(struct vm_config *cfg);

#endif
