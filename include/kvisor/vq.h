/* Split virtqueue (virtio 1.x): the only code that parses descriptor
 * chains. Every index, address and length from the guest is checked; a
 * malformed ring marks the queue broken instead of touching anything
 * outside guest RAM. */
#ifndef KVISOR_VQ_H
#define KVISOR_VQ_H

#include <stdbool.h>
#include <stdint.h>

#include "log.h"

struct guest_mem;

#define VQ_MAX_SIZE       32768 /* virtio's limit for a split queue */
#define VQ_MAX_CHAIN_BUFS 1024  /* buffers one chain may carry after indirect expansion */

struct vq_buf {
	void *hva; /* host pointer; the whole [hva, hva+len) is guest RAM */
	uint32_t len;
	bool writable; /* device writes (VIRTQ_DESC_F_WRITE) */
};

/* One popped descriptor chain: readable buffers first, then writable ones
 * (a readable buffer after a writable one is a malformed chain). Descriptors
 * of length 0 carry no data and are skipped, so nr_bufs may be 0; each of
 * readable_len and writable_len is at most UINT32_MAX. */
struct vq_chain {
	uint16_t head;
	unsigned nr_bufs;
	unsigned nr_readable;
	uint64_t readable_len; /* sum of readable buffer lengths */
	uint64_t writable_len; /* sum of writable buffer lengths */
	struct vq_buf bufs[VQ_MAX_CHAIN_BUFS];
};

struct vq {
	/* Who owns the queue, for messages ("disk0", queue 1): set once with
	 * vq_set_owner, kept by vq_init; each queue has its own log limiter. */
	const char *owner;
	unsigned index;
	struct log_ratelimit rl;
	const struct guest_mem *mem;
	uint16_t size;  /* a power of 2, 1..VQ_MAX_SIZE */
	bool indirect;  /* VIRTIO_F_INDIRECT_DESC negotiated */
	bool event_idx; /* VIRTIO_F_EVENT_IDX negotiated */
	bool broken;    /* a malformed ring was seen: needs reset */
	int broken_err; /* what vq_pop returns while broken */
	/* Host views of the three areas, translated and range-checked once. */
	struct vq_desc *desc;
	struct vq_avail *avail;
	struct vq_used *used;
	uint16_t last_avail;     /* next avail ring entry to consume */
	uint16_t used_idx;       /* next used ring entry to fill */
	uint16_t signalled_used; /* used_idx at the last interrupt (EVENT_IDX) */
	bool signalled_valid;
};

/* Name (vq) for its messages: device (owner), which must outlive the
 * queue, and queue (index). Before vq_init or after; vq_init keeps it. */
void vq_set_owner(struct vq *vq, const char *owner, unsigned index);

/* Set up (vq) over guest RAM: (size) entries, descriptor table at (desc),
 * driver (avail) area at (avail), device (used) area at (used), with the
 * negotiated (features) (of kvisor/virtio.h, VIRTIO_F_INDIRECT_DESC and
 * VIRTIO_F_EVENT_IDX matter here). Checks size (power of 2, <=
 * VQ_MAX_SIZE), alignment (16/2/4 bytes) and that each area lies in RAM.
 * 0 or -EINVAL/-EFAULT; on failure the queue is left broken. */
int vq_init(struct vq *vq, const struct guest_mem *mem, uint16_t size, uint64_t desc,
	    uint64_t avail, uint64_t used, uint64_t features) __attribute__((warn_unused_result));

/* Pop the next available chain into (chain). Returns 1 with a chain, 0 when
 * the ring is empty, or -EINVAL/-EFAULT (a buffer or table not in RAM) for a
 * malformed ring or chain: then vq->broken is set, (chain) is unspecified and
 * every later call returns the same error without reading the ring until
 * vq_init again. Each descriptor is read from guest memory exactly once. */
int vq_pop(struct vq *vq, struct vq_chain *chain) __attribute__((warn_unused_result));

/* Return chain (head) to the driver with (written) bytes written. */
void vq_push(struct vq *vq, uint16_t head, uint32_t written);

/* Give the last (n) chains popped back to the avail ring, unused: the next
 * vq_pop returns them again (read from guest memory anew). The caller popped
 * them last and pushed none of them; n is at most the chains it popped. */
void vq_unpop(struct vq *vq, uint16_t n);

/* Whether the driver wants an interrupt for what was pushed since the last
 * call (honours VIRTQ_AVAIL_F_NO_INTERRUPT, or used_event with EVENT_IDX). */
bool vq_should_notify(struct vq *vq);

/* With EVENT_IDX, ask for a kick when the avail index passes the current
 * position; otherwise clear or set VIRTQ_USED_F_NO_NOTIFY (enable). Returns
 * true if more buffers became available meanwhile (the caller polls again). */
bool vq_enable_notify(struct vq *vq, bool enable);

/* Copy helpers over a chain's buffers: gather readable bytes starting at
 * (offset) into (dst); scatter (src) into writable buffers at (offset).
 * Return bytes copied. */
uint64_t vq_chain_read(const struct vq_chain *chain, uint64_t offset, void *dst, uint64_t len);
uint64_t vq_chain_write(const struct vq_chain *chain, uint64_t offset, const void *src,
			uint64_t len);

#endif
