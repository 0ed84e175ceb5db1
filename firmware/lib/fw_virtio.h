/* A minimal virtio 1.x PCI (modern) driver for firmware guests: device
 * lookup, the vendor capabilities, feature negotiation, split virtqueues
 * used by polling (no interrupts). No privileged instruction: it runs at
 * CPL3 too. Functions that can fail return 0 or -1 with a message in
 * fw_virtio_err. */
#ifndef FW_VIRTIO_H
#define FW_VIRTIO_H

#include "fw.h"

#define FW_VIRTIO_VENDOR      0x1af4
#define FW_VIRTIO_ID_BASE     0x1040 /* modern device ID: + virtio device type */
#define FW_VIRTIO_F_VERSION_1 32

/* Descriptor flags and ring flags (virtio 1.2, 2.7). */
#define FW_VQ_DESC_NEXT      1
#define FW_VQ_DESC_WRITE     2
#define FW_VQ_AVAIL_NO_INTR  1
#define FW_VQ_USED_NO_NOTIFY 1

struct fw_vq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct fw_vq_used_elem {
	uint32_t id;
	uint32_t len;
};

struct fw_virtio {
	unsigned bdf;
	uint64_t common, isr, device, notify; /* guest-physical addresses */
	uint32_t notify_mult, device_len;
	uint64_t features; /* negotiated */
	int bars_assigned; /* memory BARs fw_virtio_init assigned */
};

struct fw_vq {
	uint16_t size;
	uint16_t index;
	volatile struct fw_vq_desc *desc;
	volatile uint16_t *avail; /* flags, idx, ring[size] */
	volatile uint16_t *used;  /* flags, idx, then ring of fw_vq_used_elem */
	uint64_t notify;          /* doorbell address */
	uint16_t avail_idx;       /* next free avail entry (published or not) */
	uint16_t used_seen;       /* used entries consumed */
	uint64_t kicks;           /* doorbell writes */
};

extern char fw_virtio_err[160];

/* Find the modern function of virtio device type (type) on bus 0 (vendor
 * 0x1af4, device 0x1040 + type), assign its memory BARs if unassigned (from
 * (bar_base) up, see fw_pci_setup_mem_bars), read its common, notify, ISR
 * and device-configuration capabilities, reset it and go through
 * ACKNOWLEDGE, DRIVER, features (exactly VERSION_1 plus those of (wanted)
 * the device offers) and FEATURES_OK. */
int fw_virtio_init(struct fw_virtio *vd, unsigned type, uint64_t wanted, uint64_t bar_base);

/* Set up queue (index) with the device's size capped at (max_size) (a power
 * of 2) on the rings at (mem), 4 KiB-aligned and FW_VQ_MEM_SIZE(size) bytes
 * (zeroed here); interrupts off (no MSI-X vector, NO_INTERRUPT). Before
 * fw_virtio_driver_ok. */
#define FW_VQ_MEM_SIZE(n) \
	(0x1000ULL * ((16ULL * (n) + 6 + 2ULL * (n) + 0xfff) / 0x1000) + 8ULL * (n) + 6)
int fw_virtio_setup_vq(struct fw_virtio *vd, struct fw_vq *vq, unsigned index, uint16_t max_size,
		       uint64_t mem);

/* DRIVER_OK; fails if the device then reports NEEDS_RESET or FAILED. */
int fw_virtio_driver_ok(struct fw_virtio *vd);

/* Device configuration: an 8-bit and a 32-bit field, and a 64-bit one read
 * as two halves under the configuration generation. */
uint8_t fw_virtio_cfg_read8(struct fw_virtio *vd, unsigned off);
uint32_t fw_virtio_cfg_read32(struct fw_virtio *vd, unsigned off);
uint64_t fw_virtio_cfg_read64(struct fw_virtio *vd, unsigned off);
uint8_t fw_virtio_status(struct fw_virtio *vd);

/* Put chain (head) in the next avail entry; the device sees it after
 * fw_vq_publish. */
static inline void fw_vq_add(struct fw_vq *vq, uint16_t head)
{
	vq->avail[2 + vq->avail_idx % vq->size] = head;
	vq->avail_idx++;
}

/* Publish the entries added so far and ring the doorbell unless the device
 * said it does not need it (VIRTQ_USED_F_NO_NOTIFY: it is working the
 * queue, and will look at avail->idx again before it stops). */
void fw_vq_publish(struct fw_vq *vq);

/* The next used element, if any: (*id) = chain head, (*len) = bytes the
 * device wrote. */
static inline bool fw_vq_get_used(struct fw_vq *vq, uint32_t *id, uint32_t *len)
{
	volatile struct fw_vq_used_elem *e;

	if (vq->used[1] == vq->used_seen)
		return false;
	/* x86 keeps loads in order: the element is read after the index. */
	asm volatile("" ::: "memory");
	e = (volatile struct fw_vq_used_elem *)(vq->used + 2) + vq->used_seen % vq->size;
	*id = e->id;
	*len = e->len;
	vq->used_seen++;
	return true;
}

#endif
