/* The options of a virtio-blk instance (device type "virtio-blk",
 * src/devices/virtio_blk.c): its typed params in the VM description. */
#ifndef KVISOR_VIRTIO_BLK_H
#define KVISOR_VIRTIO_BLK_H

#include <stdbool.h>

#define VIRTIO_BLK_MAX_DISKS  16 /* instances per VM */
#define VIRTIO_BLK_SERIAL_MAX 20 /* bytes of the serial (the GET_ID string) */

/* path=FILE (required), readonly=on|off, serial=ID, cache=writeback|none */
struct virtio_blk_params {
	const char *path;   /* raw image */
	const char *serial; /* NULL: none */
	bool readonly;
	unsigned cache; /* enum block_cache: BLOCK_CACHE_WRITEBACK (default) or _NONE */
};

#endif
