/* Split virtqueue (virtio 1.2, 2.7): the only descriptor-chain parser. The
 * rings live in guest RAM and a hostile vCPU may rewrite them while we read,
 * so every guest field is loaded once into a local before it is checked. */
#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kvisor/log.h"
#include "kvisor/mem.h"
#include "kvisor/virtio.h"
#include "kvisor/vq.h"

/* Guest-visible layouts, little-endian (virtio 1.2, 2.7.5-2.7.8). */
struct vq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct vq_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[]; /* size entries, then used_event (EVENT_IDX) */
};

struct vq_used_elem {
	uint32_t id;
	uint32_t len;
};

struct vq_used {
	uint16_t flags;
	uint16_t idx;
	struct vq_used_elem ring[]; /* size entries, then avail_event (EVENT_IDX) */
};

#define VQ_DESC_F_NEXT          1
#define VQ_DESC_F_WRITE         2
#define VQ_DESC_F_INDIRECT      4
#define VQ_AVAIL_F_NO_INTERRUPT 1
#define VQ_USED_F_NO_NOTIFY     1

#define VQ_DESC_SIZE 16
/* Largest indirect table accepted: as many entries as the largest queue. A
 * chain still carries at most VQ_MAX_CHAIN_BUFS buffers. */
#define VQ_MAX_INDIRECT_LEN ((uint64_t)VQ_MAX_SIZE * VQ_DESC_SIZE)

/* Single loads and stores of ring fields shared with the guest. */
static inline uint16_t vq_load16(const uint16_t *p)
{
	return le16toh(__atomic_load_n(p, __ATOMIC_RELAXED));
}

static inline void vq_store16(uint16_t *p, uint16_t v)
{
	__atomic_store_n(p, htole16(v), __ATOMIC_RELAXED);
}

static inline void vq_store32(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, htole32(v), __ATOMIC_RELAXED);
}

/* Mark the queue broken: the guest must reset it (NEEDS_RESET for the device). */
static int vq_fail(struct vq *vq, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int vq_fail(struct vq *vq, int err, const char *fmt, ...)
{
	char msg[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* A guest can break, reset and break again: keep the log bounded,
	 * per queue, so one noisy device does not hide another's message. */
	log_ratelimited(&vq->rl, LOG_WARN, "%s: queue %u: %s: queue broken until reset",
			vq->owner ? vq->owner : "vq", vq->index, msg);
	vq->broken = true;
	vq->broken_err = err;
	return err;
}

void vq_set_owner(struct vq *vq, const char *owner, unsigned index)
{
	vq->owner = owner;
	vq->index = index;
}

int vq_init(struct vq *vq, const struct guest_mem *mem, uint16_t size, uint64_t desc,
	    uint64_t avail, uint64_t used, uint64_t features)
{
	const char *owner = vq->owner;
	unsigned index = vq->index;
	struct log_ratelimit rl = vq->rl;
	void *d, *a, *u;

	memset(vq, 0, sizeof(*vq));
	vq->owner = owner;
	vq->index = index;
	vq->rl = rl;
	vq->mem = mem;
	vq->broken = true; /* until every check below passed */
	vq->broken_err = -EINVAL;
	if (size == 0 || (size & (size - 1)) || size > VQ_MAX_SIZE)
		return -EINVAL;
	if ((desc & 15) || (avail & 1) || (used & 3))
		return -EINVAL;
	d = mem_gpa_ptr(mem, desc, (uint64_t)VQ_DESC_SIZE * size);
	a = mem_gpa_ptr(mem, avail, 6 + 2 * (uint64_t)size);
	u = mem_gpa_ptr(mem, used, 6 + 8 * (uint64_t)size);
	if (!d || !a || !u)
		return -EFAULT;
	/* The atomic loads below need host alignment too, not only guest. */
	if (((uintptr_t)d & 15) || ((uintptr_t)a & 1) || ((uintptr_t)u & 3))
		return -EINVAL;
	vq->size = size;
	vq->desc = d;
	vq->avail = a;
	vq->used = u;
	vq->indirect = features & (1ULL << VIRTIO_F_INDIRECT_DESC);
	vq->event_idx = features & (1ULL << VIRTIO_F_EVENT_IDX);
	vq->broken = false;
	vq->broken_err = 0;
	return 0;
}

/* Copy one descriptor out of guest memory with one read of each byte: all
 * checks then look at the copy, never at the ring again. */
static void vq_desc_fetch(const uint8_t *src, struct vq_desc *d)
{
	uint64_t w0, w1;

	if (!((uintptr_t)src & 7)) {
		w0 = __atomic_load_n((const uint64_t *)src, __ATOMIC_RELAXED);
		w1 = __atomic_load_n((const uint64_t *)src + 1, __ATOMIC_RELAXED);
	} else {
		/* An indirect table need not be aligned (the spec asks nothing). */
		const volatile uint8_t *s = src;
		uint8_t b[VQ_DESC_SIZE];

		for (unsigned i = 0; i < VQ_DESC_SIZE; i++)
			b[i] = s[i];
		memcpy(&w0, b, 8);
		memcpy(&w1, b + 8, 8);
	}
	w0 = le64toh(w0);
	w1 = le64toh(w1);
	d->addr = w0;
	d->len = (uint32_t)w1;
	d->flags = (uint16_t)(w1 >> 32);
	d->next = (uint16_t)(w1 >> 48);
}

/* Append the buffer of descriptor (d) to (c). */
static int vq_add_buf(struct vq *vq, struct vq_chain *c, const struct vq_desc *d)
{
	bool writable = d->flags & VQ_DESC_F_WRITE;
	uint64_t *sum = writable ? &c->writable_len : &c->readable_len;
	void *hva;

	/* No bytes, no access: its address and direction do not matter. */
	if (d->len == 0)
		return 0;
	if (!writable && c->nr_bufs > c->nr_readable)
		return vq_fail(vq, -EINVAL, "chain %u: readable buffer after a writable one",
			       c->head);
	if (c->nr_bufs >= VQ_MAX_CHAIN_BUFS)
		return vq_fail(vq, -EINVAL, "chain %u: more than %u buffers", c->head,
			       VQ_MAX_CHAIN_BUFS);
	hva = mem_gpa_ptr(vq->mem, d->addr, d->len);
	if (!hva)
		return vq_fail(vq, -EFAULT, "chain %u: buffer 0x%llx+%u not in RAM", c->head,
			       (unsigned long long)d->addr, d->len);
	/* used.len is 32 bits; devices may rely on that for sums too. */
	if (__builtin_add_overflow(*sum, d->len, sum) || *sum > UINT32_MAX)
		return vq_fail(vq, -EINVAL, "chain %u: %s length over 4 GiB", c->head,
			       writable ? "writable" : "readable");
	c->bufs[c->nr_bufs++] = (struct vq_buf){ .hva = hva, .len = d->len, .writable = writable };
	if (!writable)
		c->nr_readable++;
	return 0;
}

/* Check indirect descriptor (d) and map its table into (*table, *entries). */
static int vq_indirect(struct vq *vq, uint16_t head, const struct vq_desc *d, bool nested,
		       const uint8_t **table, uint32_t *entries)
{
	if (!vq->indirect)
		return vq_fail(vq, -EINVAL, "chain %u: indirect descriptor not negotiated", head);
	if (nested)
		return vq_fail(vq, -EINVAL, "chain %u: nested indirect descriptor", head);
	if (d->flags & VQ_DESC_F_NEXT)
		return vq_fail(vq, -EINVAL, "chain %u: indirect descriptor with NEXT", head);
	if (d->len == 0 || d->len % VQ_DESC_SIZE || d->len > VQ_MAX_INDIRECT_LEN)
		return vq_fail(vq, -EINVAL, "chain %u: bad indirect table length %u", head, d->len);
	*table = mem_gpa_ptr(vq->mem, d->addr, d->len);
	if (!*table)
		return vq_fail(vq, -EFAULT, "chain %u: indirect table 0x%llx+%u not in RAM", head,
			       (unsigned long long)d->addr, d->len);
	*entries = d->len / VQ_DESC_SIZE;
	return 0;
}

/* Walk the chain from (c->head). Each table (the ring's, then at most one
 * indirect one) is walked at most (entries) steps: a longer walk loops. */
static int vq_walk(struct vq *vq, struct vq_chain *c)
{
	const uint8_t *table = (const uint8_t *)vq->desc;
	uint32_t entries = vq->size, idx = c->head, steps = 0;
	bool in_indirect = false;
	struct vq_desc d;
	int ret;

	for (;;) {
		if (idx >= entries)
			return vq_fail(vq, -EINVAL, "chain %u: descriptor %u out of range (%u)",
				       c->head, idx, entries);
		if (++steps > entries)
			return vq_fail(vq, -EINVAL, "chain %u: longer than its table (a loop)",
				       c->head);
		vq_desc_fetch(table + (size_t)idx * VQ_DESC_SIZE, &d);
		if (d.flags & VQ_DESC_F_INDIRECT) {
			/* Its WRITE flag is ignored (2.7.5.3.2); no NEXT, so it ends
			 * the ring's part of the chain. */
			ret = vq_indirect(vq, c->head, &d, in_indirect, &table, &entries);
			if (ret)
				return ret;
			in_indirect = true;
			idx = 0;
			steps = 0;
			continue;
		}
		ret = vq_add_buf(vq, c, &d);
		if (ret)
			return ret;
		if (!(d.flags & VQ_DESC_F_NEXT))
			return 0;
		idx = d.next;
	}
}

int vq_pop(struct vq *vq, struct vq_chain *chain)
{
	uint16_t avail_idx, pending, head;
	int ret;

	if (vq->broken)
		return vq->broken_err ? vq->broken_err : -EINVAL;
	/* Acquire: the ring entries the driver wrote before idx are visible. */
	avail_idx = le16toh(__atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE));
	pending = (uint16_t)(avail_idx - vq->last_avail);
	if (pending == 0)
		return 0;
	if (pending > vq->size)
		return vq_fail(vq, -EINVAL, "avail idx %u is %u ahead of %u (size %u)", avail_idx,
			       pending, vq->last_avail, vq->size);
	head = vq_load16(&vq->avail->ring[vq->last_avail & (vq->size - 1)]);
	if (head >= vq->size)
		return vq_fail(vq, -EINVAL, "head %u out of range (%u)", head, vq->size);
	chain->head = head;
	chain->nr_bufs = 0;
	chain->nr_readable = 0;
	chain->readable_len = 0;
	chain->writable_len = 0;
	ret = vq_walk(vq, chain);
	if (ret)
		return ret;
	vq->last_avail = (uint16_t)(vq->last_avail + 1); /* wraps at 2^16 by design */
	return 1;
}

void vq_push(struct vq *vq, uint16_t head, uint32_t written)
{
	struct vq_used_elem *e;

	/* head came from vq_pop: a bad one is a host bug, never write it. */
	if (!vq->used || head >= vq->size) {
		log_err("%s: queue %u: push of head %u on a queue of size %u",
			vq->owner ? vq->owner : "vq", vq->index, head, vq->size);
		return;
	}
	e = &vq->used->ring[vq->used_idx & (vq->size - 1)];
	vq_store32(&e->id, head);
	vq_store32(&e->len, written);
	vq->used_idx = (uint16_t)(vq->used_idx + 1);
	/* Release: the driver must see the element before the index moves. */
	__atomic_store_n(&vq->used->idx, htole16(vq->used_idx), __ATOMIC_RELEASE);
}

void vq_unpop(struct vq *vq, uint16_t n)
{
	/* A notification asked for meanwhile (avail_event at the old position)
	 * only comes later than needed, never too early: the device looks at
	 * the ring on its next kick anyway. */
	vq->last_avail = (uint16_t)(vq->last_avail - n);
}

/* virtio 1.2, 2.7.10: notify if (new_idx) passed (event) since (old). */
static bool vq_need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

bool vq_should_notify(struct vq *vq)
{
	uint16_t old = vq->signalled_used, new_idx = vq->used_idx;
	bool valid = vq->signalled_valid;

	if (!vq->avail)
		return false;
	/* The used idx store must be visible before we read the driver's
	 * suppression fields: the driver writes those, then (mb) rereads used
	 * idx, so one of us sees the other and no interrupt is lost. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	vq->signalled_used = new_idx;
	vq->signalled_valid = true;
	if (valid && old == new_idx)
		return false; /* nothing pushed since the last call */
	if (!vq->event_idx)
		return !(vq_load16(&vq->avail->flags) & VQ_AVAIL_F_NO_INTERRUPT);
	if (!valid)
		return true;
	return vq_need_event(vq_load16(&vq->avail->ring[vq->size]), new_idx, old);
}

bool vq_enable_notify(struct vq *vq, bool enable)
{
	uint16_t avail_idx;

	if (!vq->used || vq->broken)
		return false;
	if (vq->event_idx) {
		/* avail_event: kick us once the driver adds entry last_avail. With
		 * EVENT_IDX there is no disabling; stale events only cost a kick. */
		if (enable)
			vq_store16((uint16_t *)&vq->used->ring[vq->size], vq->last_avail);
	} else {
		vq_store16(&vq->used->flags, enable ? 0 : VQ_USED_F_NO_NOTIFY);
	}
	/* Store, then load: without the fence the driver may add a buffer, see
	 * the old flags and skip the kick while we still read the old idx. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	avail_idx = le16toh(__atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE));
	return avail_idx != vq->last_avail;
}

uint64_t vq_chain_read(const struct vq_chain *chain, uint64_t offset, void *dst, uint64_t len)
{
	uint8_t *out = dst;
	uint64_t done = 0;

	for (unsigned i = 0; i < chain->nr_readable && done < len; i++) {
		const struct vq_buf *b = &chain->bufs[i];
		uint64_t n;

		if (offset >= b->len) {
			offset -= b->len;
			continue;
		}
		n = b->len - offset;
		if (n > len - done)
			n = len - done;
		memcpy(out + done, (const uint8_t *)b->hva + offset, n);
		done += n;
		offset = 0;
	}
	return done;
}

uint64_t vq_chain_write(const struct vq_chain *chain, uint64_t offset, const void *src,
			uint64_t len)
{
	const uint8_t *in = src;
	uint64_t done = 0;

	for (unsigned i = chain->nr_readable; i < chain->nr_bufs && done < len; i++) {
		const struct vq_buf *b = &chain->bufs[i];
		uint64_t n;

		if (offset >= b->len) {
			offset -= b->len;
			continue;
		}
		n = b->len - offset;
		if (n > len - done)
			n = len - done;
		memcpy((uint8_t *)b->hva + offset, in + done, n);
		done += n;
		offset = 0;
	}
	return done;
}
