/* Unit tests of the split virtqueue: rings written by hand into guest RAM,
 * well-formed and hostile, plus random and concurrently mutated rings. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "kvisor/log.h"
#include "kvisor/mem.h"
#include "kvisor/virtio.h"
#include "kvisor/vq.h"
#include "unit_capture.h"

#define RAM       (16ULL << 20)
#define DESC_GPA  0x10000ULL
#define AVAIL_GPA 0x20000ULL
#define USED_GPA  0x30000ULL
#define IND_GPA   0x40000ULL /* indirect tables */
#define DATA_GPA  0x100000ULL

/* The driver's view of the layouts, written independently of vq.c. */
#define F_NEXT     1
#define F_WRITE    2
#define F_INDIRECT 4
#define FEAT_IND   (1ULL << VIRTIO_F_INDIRECT_DESC)
#define FEAT_EVT   (1ULL << VIRTIO_F_EVENT_IDX)

struct t_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

static struct guest_mem m;
static struct vq q;
static struct vq_chain ch;
static uint16_t t_avail; /* the driver's avail idx */

static void setup(void)
{
	ck_assert_int_eq(mem_init(&m, RAM), 0);
}

static void teardown(void)
{
	mem_destroy(&m);
}

static uint8_t *hva(uint64_t gpa)
{
	return m.regions[0].hva + gpa;
}

static uint16_t *u16at(uint64_t gpa)
{
	return (uint16_t *)hva(gpa);
}

static void put_desc(uint64_t table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	struct t_desc d = { addr, len, flags, next };

	memcpy(hva(table + 16ULL * i), &d, sizeof(d));
}

static void desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	put_desc(DESC_GPA, i, addr, len, flags, next);
}

static void qinit(uint16_t size, uint64_t features)
{
	ck_assert_int_eq(vq_init(&q, &m, size, DESC_GPA, AVAIL_GPA, USED_GPA, features), 0);
	ck_assert(!q.broken);
	t_avail = 0;
	*u16at(AVAIL_GPA + 2) = 0;
	*u16at(USED_GPA + 2) = 0;
}

static void set_avail_idx(uint16_t v)
{
	t_avail = v;
	*u16at(AVAIL_GPA + 2) = v;
}

static void avail_add(uint16_t head)
{
	*u16at(AVAIL_GPA + 4 + 2ULL * (t_avail % q.size)) = head;
	set_avail_idx((uint16_t)(t_avail + 1));
}

static uint16_t used_idx(void)
{
	return *u16at(USED_GPA + 2);
}

static void used_elem(uint16_t pos, uint32_t *id, uint32_t *len)
{
	memcpy(id, hva(USED_GPA + 4 + 8ULL * pos), 4);
	memcpy(len, hva(USED_GPA + 8 + 8ULL * pos), 4);
}

/* Pop must fail with (err) now and on every later call. */
static void expect_broken(int err)
{
	ck_assert_int_eq(vq_pop(&q, &ch), err);
	ck_assert(q.broken);
	ck_assert_int_eq(vq_pop(&q, &ch), err);
}

static void expect_one_chain(void)
{
	ck_assert_int_eq(vq_pop(&q, &ch), 1);
	ck_assert(!q.broken);
}

static int in_ram(const void *p, uint64_t len)
{
	uintptr_t a = (uintptr_t)p;

	for (unsigned i = 0; i < m.nr_regions; i++) {
		uintptr_t lo = (uintptr_t)m.regions[i].hva, hi = lo + m.regions[i].size;

		if (a >= lo && a < hi && len <= hi - a)
			return 1;
	}
	return 0;
}

/* Invariants of every chain vq_pop returns, hostile ring or not. */
static void check_chain_sane(const struct vq_chain *c, uint16_t size)
{
	uint64_t r = 0, w = 0;

	ck_assert_uint_lt(c->head, size);
	ck_assert_uint_le(c->nr_bufs, VQ_MAX_CHAIN_BUFS);
	ck_assert_uint_le(c->nr_readable, c->nr_bufs);
	for (unsigned i = 0; i < c->nr_bufs; i++) {
		const struct vq_buf *b = &c->bufs[i];

		ck_assert_uint_gt(b->len, 0);
		ck_assert_msg(in_ram(b->hva, b->len), "buffer %u outside RAM", i);
		ck_assert_int_eq(b->writable, i >= c->nr_readable);
		if (b->writable)
			w += b->len;
		else
			r += b->len;
	}
	ck_assert_uint_eq(r, c->readable_len);
	ck_assert_uint_eq(w, c->writable_len);
	ck_assert_uint_le(r, UINT32_MAX);
	ck_assert_uint_le(w, UINT32_MAX);
}

START_TEST(test_init_size)
{
	uint32_t big = 65536;

	ck_assert_int_eq(vq_init(&q, &m, 0, DESC_GPA, AVAIL_GPA, USED_GPA, 0), -EINVAL);
	ck_assert(q.broken);
	ck_assert_int_eq(vq_init(&q, &m, 3, DESC_GPA, AVAIL_GPA, USED_GPA, 0), -EINVAL);
	ck_assert_int_eq(vq_init(&q, &m, 48, DESC_GPA, AVAIL_GPA, USED_GPA, 0), -EINVAL);
	ck_assert_int_eq(vq_init(&q, &m, 65535, DESC_GPA, AVAIL_GPA, USED_GPA, 0), -EINVAL);
	ck_assert_int_eq(vq_init(&q, &m, (uint16_t)big, DESC_GPA, AVAIL_GPA, USED_GPA, 0), -EINVAL);
	/* A failed init leaves a queue that is safe to use and yields nothing. */
	ck_assert_int_eq(vq_pop(&q, &ch), -EINVAL);
	vq_push(&q, 0, 0);
	ck_assert(!vq_should_notify(&q));
	ck_assert(!vq_enable_notify(&q, true));
	ck_assert_int_eq(vq_init(&q, &m, 1, DESC_GPA, AVAIL_GPA, USED_GPA, 0), 0);
	ck_assert_int_eq(vq_init(&q, &m, 256, DESC_GPA, AVAIL_GPA, USED_GPA, FEAT_IND), 0);
	ck_assert(q.indirect && !q.event_idx);
	ck_assert_int_eq(vq_init(&q, &m, 32768, 0x100000, 0x200000, 0x300000, FEAT_EVT), 0);
	ck_assert(!q.indirect && q.event_idx);
	ck_assert_uint_eq(q.size, 32768);
}
END_TEST

START_TEST(test_init_align)
{
	ck_assert_int_eq(vq_init(&q, &m, 16, DESC_GPA + 8, AVAIL_GPA, USED_GPA, 0), -EINVAL);
	ck_assert_int_eq(vq_init(&q, &m, 16, DESC_GPA + 1, AVAIL_GPA, USED_GPA, 0), -EINVAL);
	ck_assert_int_eq(vq_init(&q, &m, 16, DESC_GPA, AVAIL_GPA + 1, USED_GPA, 0), -EINVAL);
	ck_assert_int_eq(vq_init(&q, &m, 16, DESC_GPA, AVAIL_GPA, USED_GPA + 2, 0), -EINVAL);
	ck_assert_int_eq(vq_init(&q, &m, 16, DESC_GPA + 16, AVAIL_GPA + 2, USED_GPA + 4, 0), 0);
}
END_TEST

START_TEST(test_init_outside_ram)
{
	ck_assert_int_eq(vq_init(&q, &m, 256, RAM - 4096, AVAIL_GPA, USED_GPA, 0), 0);
	ck_assert_int_eq(vq_init(&q, &m, 256, RAM - 4080, AVAIL_GPA, USED_GPA, 0), -EFAULT);
	ck_assert_int_eq(vq_init(&q, &m, 256, RAM, AVAIL_GPA, USED_GPA, 0), -EFAULT);
	ck_assert_int_eq(vq_init(&q, &m, 256, DESC_GPA, RAM - 6 - 512, USED_GPA, 0), 0);
	ck_assert_int_eq(vq_init(&q, &m, 256, DESC_GPA, RAM - 4 - 512, USED_GPA, 0), -EFAULT);
	ck_assert_int_eq(vq_init(&q, &m, 256, DESC_GPA, AVAIL_GPA, RAM - 8 - 2048, 0), 0);
	ck_assert_int_eq(vq_init(&q, &m, 256, DESC_GPA, AVAIL_GPA, RAM - 4 - 2048, 0), -EFAULT);
	ck_assert_int_eq(vq_init(&q, &m, 16, DESC_GPA, AVAIL_GPA, 0xc0000000ULL, 0), -EFAULT);
	ck_assert_int_eq(vq_init(&q, &m, 16, DESC_GPA, AVAIL_GPA, UINT64_MAX - 3, 0), -EFAULT);
	ck_assert_int_eq(vq_init(&q, &m, 16, UINT64_MAX - 15, AVAIL_GPA, USED_GPA, 0), -EFAULT);
	ck_assert_int_eq(vq_init(&q, &m, 16, DESC_GPA, UINT64_MAX - 1, USED_GPA, 0), -EFAULT);
	ck_assert(q.broken);
	ck_assert_int_eq(vq_pop(&q, &ch), -EINVAL);
}
END_TEST

START_TEST(test_empty)
{
	qinit(16, 0);
	ck_assert_int_eq(vq_pop(&q, &ch), 0);
	ck_assert_int_eq(vq_pop(&q, &ch), 0);
	ck_assert(!q.broken);
	ck_assert_uint_eq(q.last_avail, 0);
}
END_TEST

START_TEST(test_single_readable)
{
	char out[100];

	qinit(16, 0);
	memset(hva(DATA_GPA), 'a', 100);
	desc(5, DATA_GPA, 100, 0, 0);
	avail_add(5);
	expect_one_chain();
	ck_assert_uint_eq(ch.head, 5);
	ck_assert_uint_eq(ch.nr_bufs, 1);
	ck_assert_uint_eq(ch.nr_readable, 1);
	ck_assert_uint_eq(ch.readable_len, 100);
	ck_assert_uint_eq(ch.writable_len, 0);
	ck_assert_ptr_eq(ch.bufs[0].hva, hva(DATA_GPA));
	ck_assert(!ch.bufs[0].writable);
	ck_assert_uint_eq(vq_chain_read(&ch, 0, out, sizeof(out)), 100);
	ck_assert_int_eq(out[99], 'a');
	ck_assert_uint_eq(vq_chain_write(&ch, 0, out, sizeof(out)), 0);
	ck_assert_int_eq(vq_pop(&q, &ch), 0);
	ck_assert_uint_eq(q.last_avail, 1);
}
END_TEST

START_TEST(test_multi_buffer)
{
	uint32_t id, len;

	qinit(16, 0);
	desc(0, DATA_GPA, 16, F_NEXT, 3);
	desc(3, DATA_GPA + 0x100, 32, F_NEXT, 5);
	desc(5, DATA_GPA + 0x200, 64, F_WRITE | F_NEXT, 1);
	desc(1, DATA_GPA + 0x300, 8, F_WRITE | F_NEXT, 2);
	desc(2, DATA_GPA + 0x400, 4, F_WRITE, 9); /* next ignored without F_NEXT */
	avail_add(0);
	expect_one_chain();
	check_chain_sane(&ch, 16);
	ck_assert_uint_eq(ch.nr_bufs, 5);
	ck_assert_uint_eq(ch.nr_readable, 2);
	ck_assert_uint_eq(ch.readable_len, 48);
	ck_assert_uint_eq(ch.writable_len, 76);
	ck_assert_ptr_eq(ch.bufs[1].hva, hva(DATA_GPA + 0x100));
	ck_assert_ptr_eq(ch.bufs[4].hva, hva(DATA_GPA + 0x400));
	ck_assert_uint_eq(ch.bufs[2].len, 64);
	vq_push(&q, ch.head, 76);
	ck_assert_uint_eq(used_idx(), 1);
	used_elem(0, &id, &len);
	ck_assert_uint_eq(id, 0);
	ck_assert_uint_eq(len, 76);
}
END_TEST

START_TEST(test_many_chains)
{
	qinit(256, 0);
	for (unsigned i = 0; i < 256; i++)
		desc(i, DATA_GPA + 64 * i, 64, i & 1 ? F_WRITE : 0, 0);
	for (unsigned round = 0; round < 3; round++) {
		for (unsigned i = 0; i < 256; i++)
			avail_add((uint16_t)(255 - i));
		for (unsigned i = 0; i < 256; i++) {
			expect_one_chain();
			ck_assert_uint_eq(ch.head, 255 - i);
			ck_assert_ptr_eq(ch.bufs[0].hva, hva(DATA_GPA + 64 * (255 - i)));
			vq_push(&q, ch.head, ch.writable_len);
		}
		ck_assert_int_eq(vq_pop(&q, &ch), 0);
		ck_assert_uint_eq(used_idx(), (uint16_t)(256 * (round + 1)));
	}
}
END_TEST

START_TEST(test_wrap)
{
	uint32_t id, len;

	qinit(8, 0);
	q.last_avail = q.used_idx = 65533;
	set_avail_idx(65533);
	for (unsigned k = 0; k < 6; k++) {
		desc(k, DATA_GPA + 16 * k, 16, F_WRITE, 0);
		avail_add((uint16_t)k);
	}
	ck_assert_uint_eq(t_avail, 3);
	for (unsigned k = 0; k < 6; k++) {
		expect_one_chain();
		ck_assert_uint_eq(ch.head, k);
		vq_push(&q, ch.head, 10 + k);
	}
	ck_assert_int_eq(vq_pop(&q, &ch), 0);
	ck_assert_uint_eq(q.last_avail, 3);
	ck_assert_uint_eq(used_idx(), 3);
	for (unsigned k = 0; k < 6; k++) {
		used_elem((65533 + k) % 8, &id, &len);
		ck_assert_uint_eq(id, k);
		ck_assert_uint_eq(len, 10 + k);
	}
	/* Nine ahead across the wrap is more than the ring holds. */
	set_avail_idx(q.last_avail + 9);
	expect_broken(-EINVAL);
}
END_TEST

START_TEST(test_loop)
{
	qinit(16, 0);
	desc(0, DATA_GPA, 8, F_NEXT, 1);
	desc(1, DATA_GPA, 8, F_NEXT, 0);
	avail_add(0);
	expect_broken(-EINVAL);
	qinit(16, 0);
	desc(0, DATA_GPA, 8, F_NEXT, 0);
	avail_add(0);
	expect_broken(-EINVAL);
	/* Zero-length descriptors still count towards the bound. */
	qinit(4, 0);
	for (unsigned i = 0; i < 4; i++)
		desc(i, 0, 0, F_NEXT, (i + 1) % 4);
	avail_add(2);
	expect_broken(-EINVAL);
}
END_TEST

START_TEST(test_chain_uses_whole_table)
{
	/* A chain through every descriptor is as long as allowed. */
	qinit(4, 0);
	desc(0, DATA_GPA, 8, F_NEXT, 1);
	desc(1, DATA_GPA, 8, F_NEXT, 2);
	desc(2, DATA_GPA, 8, F_NEXT, 3);
	desc(3, DATA_GPA, 8, 0, 0);
	avail_add(0);
	expect_one_chain();
	ck_assert_uint_eq(ch.nr_bufs, 4);
}
END_TEST

START_TEST(test_next_out_of_range)
{
	qinit(16, 0);
	desc(0, DATA_GPA, 8, F_NEXT, 16);
	avail_add(0);
	expect_broken(-EINVAL);
	qinit(16, 0);
	desc(0, DATA_GPA, 8, F_NEXT, 0xffff);
	avail_add(0);
	expect_broken(-EINVAL);
}
END_TEST

START_TEST(test_head_out_of_range)
{
	qinit(16, 0);
	avail_add(16);
	expect_broken(-EINVAL);
	qinit(16, 0);
	avail_add(0xffff);
	expect_broken(-EINVAL);
}
END_TEST

START_TEST(test_avail_jump)
{
	qinit(16, 0);
	for (unsigned i = 0; i < 16; i++) {
		desc(i, DATA_GPA, 8, 0, 0);
		avail_add((uint16_t)i);
	}
	for (unsigned i = 0; i < 16; i++)
		expect_one_chain();
	ck_assert_int_eq(vq_pop(&q, &ch), 0);
	qinit(16, 0);
	set_avail_idx(17);
	expect_broken(-EINVAL);
	qinit(16, 0);
	set_avail_idx(0xffff); /* the driver moved idx backwards */
	expect_broken(-EINVAL);
}
END_TEST

START_TEST(test_buf_outside_ram)
{
	qinit(16, 0);
	desc(0, RAM, 1, 0, 0);
	avail_add(0);
	expect_broken(-EFAULT);
	qinit(16, 0);
	desc(0, 0xd0000000ULL, 16, F_WRITE, 0);
	avail_add(0);
	expect_broken(-EFAULT);
	/* The error is the first bad buffer's, even after good ones. */
	qinit(16, 0);
	desc(0, DATA_GPA, 16, F_NEXT, 1);
	desc(1, 4ULL << 30, 16, 0, 0);
	avail_add(0);
	expect_broken(-EFAULT);
}
END_TEST

START_TEST(test_buf_crossing_end)
{
	qinit(16, 0);
	desc(0, RAM - 16, 16, 0, 0);
	avail_add(0);
	expect_one_chain();
	ck_assert_ptr_eq(ch.bufs[0].hva, hva(RAM - 16));
	desc(1, RAM - 8, 16, F_WRITE, 0);
	avail_add(1);
	expect_broken(-EFAULT);
	qinit(16, 0);
	desc(0, 0, UINT32_MAX, 0, 0);
	avail_add(0);
	expect_broken(-EFAULT);
}
END_TEST

START_TEST(test_addr_overflow)
{
	qinit(16, 0);
	desc(0, UINT64_MAX - 7, 16, 0, 0);
	avail_add(0);
	expect_broken(-EFAULT);
	qinit(16, 0);
	desc(0, UINT64_MAX, 1, F_WRITE, 0);
	avail_add(0);
	expect_broken(-EFAULT);
}
END_TEST

/* Overlapping buffers make a chain longer than RAM; used.len is 32 bits. */
START_TEST(test_len_sum_overflow)
{
	qinit(16, FEAT_IND);
	for (unsigned i = 0; i < 255; i++)
		put_desc(IND_GPA, i, 0, (uint32_t)RAM, F_WRITE | F_NEXT, (uint16_t)(i + 1));
	put_desc(IND_GPA, 255, 0, (uint32_t)RAM - 1, F_WRITE, 0);
	desc(0, IND_GPA, 256 * 16, F_INDIRECT, 0);
	avail_add(0);
	expect_one_chain();
	ck_assert_uint_eq(ch.writable_len, UINT32_MAX);
	/* One byte more does not fit. */
	put_desc(IND_GPA, 255, 0, (uint32_t)RAM, F_WRITE, 0);
	avail_add(0);
	expect_broken(-EINVAL);
	qinit(16, FEAT_IND);
	for (unsigned i = 0; i < 300; i++)
		put_desc(IND_GPA, i, 0, (uint32_t)RAM, F_NEXT, (uint16_t)(i + 1));
	put_desc(IND_GPA, 300, 0, (uint32_t)RAM, 0, 0);
	desc(0, IND_GPA, 301 * 16, F_INDIRECT, 0);
	avail_add(0);
	expect_broken(-EINVAL);
}
END_TEST

START_TEST(test_indirect)
{
	static const uint64_t tables[] = { IND_GPA, IND_GPA + 0x1003 }; /* aligned or not */

	for (unsigned t = 0; t < 2; t++) {
		qinit(16, FEAT_IND);
		put_desc(tables[t], 0, DATA_GPA, 10, F_NEXT, 2);
		put_desc(tables[t], 2, DATA_GPA + 0x100, 20, F_WRITE | F_NEXT, 1);
		put_desc(tables[t], 1, DATA_GPA + 0x200, 30, F_WRITE, 0);
		desc(0, DATA_GPA + 0x1000, 5, F_NEXT, 4);
		/* The WRITE flag on the table's descriptor is ignored. */
		desc(4, tables[t], 48, F_INDIRECT | F_WRITE, 0);
		avail_add(0);
		expect_one_chain();
		check_chain_sane(&ch, 16);
		ck_assert_uint_eq(ch.head, 0);
		ck_assert_uint_eq(ch.nr_bufs, 4);
		ck_assert_uint_eq(ch.nr_readable, 2);
		ck_assert_uint_eq(ch.readable_len, 15);
		ck_assert_uint_eq(ch.writable_len, 50);
		ck_assert_ptr_eq(ch.bufs[0].hva, hva(DATA_GPA + 0x1000));
		ck_assert_ptr_eq(ch.bufs[1].hva, hva(DATA_GPA));
		ck_assert_ptr_eq(ch.bufs[2].hva, hva(DATA_GPA + 0x100));
		ck_assert_ptr_eq(ch.bufs[3].hva, hva(DATA_GPA + 0x200));
	}
}
END_TEST

START_TEST(test_indirect_not_negotiated)
{
	qinit(16, FEAT_EVT);
	put_desc(IND_GPA, 0, DATA_GPA, 8, 0, 0);
	desc(0, IND_GPA, 16, F_INDIRECT, 0);
	avail_add(0);
	expect_broken(-EINVAL);
}
END_TEST

/* A broken queue's message names its device and queue, and the name
 * survives vq_init (a driver reset re-initialises the queue). */
START_TEST(test_broken_names_owner)
{
	struct unit_capture cap;
	char msg[256];

	vq_set_owner(&q, "disk7", 3);
	qinit(16, FEAT_EVT);
	put_desc(IND_GPA, 0, DATA_GPA, 8, 0, 0);
	desc(0, IND_GPA, 16, F_INDIRECT, 0);
	avail_add(0);
	log_threshold = LOG_WARN; /* the suite runs quiet */
	unit_capture_begin(&cap);
	expect_broken(-EINVAL);
	unit_capture_end(&cap, msg, sizeof(msg));
	ck_assert_str_eq(msg,
			 "kvisor: disk7: queue 3: chain 0: indirect descriptor not negotiated: "
			 "queue broken until reset\n");
	vq_set_owner(&q, NULL, 0);
}
END_TEST

START_TEST(test_indirect_nested)
{
	qinit(16, FEAT_IND);
	put_desc(IND_GPA, 0, DATA_GPA, 8, F_NEXT, 1);
	put_desc(IND_GPA, 1, IND_GPA + 0x100, 16, F_INDIRECT, 0);
	put_desc(IND_GPA + 0x100, 0, DATA_GPA, 8, 0, 0);
	desc(0, IND_GPA, 32, F_INDIRECT, 0);
	avail_add(0);
	expect_broken(-EINVAL);
}
END_TEST

START_TEST(test_indirect_with_next)
{
	qinit(16, FEAT_IND);
	put_desc(IND_GPA, 0, DATA_GPA, 8, 0, 0);
	desc(0, IND_GPA, 16, F_INDIRECT | F_NEXT, 1);
	desc(1, DATA_GPA, 8, 0, 0);
	avail_add(0);
	expect_broken(-EINVAL);
}
END_TEST

static void indirect_case(uint64_t addr, uint32_t len, int err)
{
	qinit(16, FEAT_IND);
	desc(0, addr, len, F_INDIRECT, 0);
	avail_add(0);
	expect_broken(err);
}

START_TEST(test_indirect_bad_table)
{
	indirect_case(IND_GPA, 0, -EINVAL);
	indirect_case(IND_GPA, 8, -EINVAL);
	indirect_case(IND_GPA, 24, -EINVAL);
	indirect_case(IND_GPA, 16 * VQ_MAX_SIZE + 16, -EINVAL);
	indirect_case(IND_GPA, UINT32_MAX & ~15U, -EINVAL);
	indirect_case(RAM - 16, 32, -EFAULT);
	indirect_case(RAM, 16, -EFAULT);
	indirect_case(0xd0000000ULL, 16, -EFAULT);
	indirect_case(UINT64_MAX - 15, 32, -EFAULT);
	/* The largest table is accepted (all zero: one empty descriptor). */
	qinit(16, FEAT_IND);
	desc(0, 0x200000, 16 * VQ_MAX_SIZE, F_INDIRECT, 0);
	avail_add(0);
	expect_one_chain();
	ck_assert_uint_eq(ch.nr_bufs, 0);
	/* Index inside the table beyond its end. */
	qinit(16, FEAT_IND);
	put_desc(IND_GPA, 0, DATA_GPA, 8, F_NEXT, 2);
	put_desc(IND_GPA, 1, DATA_GPA, 8, 0, 0);
	desc(0, IND_GPA, 32, F_INDIRECT, 0);
	avail_add(0);
	expect_broken(-EINVAL);
	/* A loop inside the table. */
	qinit(16, FEAT_IND);
	put_desc(IND_GPA, 0, DATA_GPA, 8, F_NEXT, 1);
	put_desc(IND_GPA, 1, DATA_GPA, 8, F_NEXT, 0);
	desc(0, IND_GPA, 32, F_INDIRECT, 0);
	avail_add(0);
	expect_broken(-EINVAL);
}
END_TEST

START_TEST(test_chain_too_long)
{
	for (unsigned n = VQ_MAX_CHAIN_BUFS; n <= VQ_MAX_CHAIN_BUFS + 1; n++) {
		qinit(16, FEAT_IND);
		for (unsigned i = 0; i < n; i++)
			put_desc(IND_GPA, i, DATA_GPA + i, 1, i + 1 < n ? F_NEXT : 0,
				 (uint16_t)(i + 1));
		desc(0, IND_GPA, 16 * n, F_INDIRECT, 0);
		avail_add(0);
		if (n == VQ_MAX_CHAIN_BUFS) {
			expect_one_chain();
			ck_assert_uint_eq(ch.nr_bufs, VQ_MAX_CHAIN_BUFS);
		} else {
			expect_broken(-EINVAL);
		}
	}
	/* Buffers in the ring and in the table count together. */
	qinit(16, FEAT_IND);
	for (unsigned i = 0; i < VQ_MAX_CHAIN_BUFS; i++)
		put_desc(IND_GPA, i, DATA_GPA, 1, i + 1 < VQ_MAX_CHAIN_BUFS ? F_NEXT : 0,
			 (uint16_t)(i + 1));
	desc(0, DATA_GPA, 1, F_NEXT, 1);
	desc(1, IND_GPA, 16 * VQ_MAX_CHAIN_BUFS, F_INDIRECT, 0);
	avail_add(0);
	expect_broken(-EINVAL);
}
END_TEST

START_TEST(test_readable_after_writable)
{
	qinit(16, 0);
	desc(0, DATA_GPA, 8, F_WRITE | F_NEXT, 1);
	desc(1, DATA_GPA, 8, 0, 0);
	avail_add(0);
	expect_broken(-EINVAL);
	qinit(16, FEAT_IND);
	put_desc(IND_GPA, 0, DATA_GPA, 8, F_WRITE | F_NEXT, 1);
	put_desc(IND_GPA, 1, DATA_GPA, 8, 0, 0);
	desc(0, IND_GPA, 32, F_INDIRECT, 0);
	avail_add(0);
	expect_broken(-EINVAL);
	/* Writable in the ring, then readable in the table. */
	qinit(16, FEAT_IND);
	put_desc(IND_GPA, 0, DATA_GPA, 8, 0, 0);
	desc(0, DATA_GPA, 8, F_WRITE | F_NEXT, 1);
	desc(1, IND_GPA, 16, F_INDIRECT, 0);
	avail_add(0);
	expect_broken(-EINVAL);
}
END_TEST

START_TEST(test_zero_length)
{
	qinit(16, 0);
	desc(0, UINT64_MAX, 0, F_NEXT, 1); /* no bytes: address never used */
	desc(1, DATA_GPA, 8, F_NEXT, 2);
	desc(2, RAM + 4096, 0, F_WRITE | F_NEXT, 3);
	desc(3, DATA_GPA + 8, 8, F_WRITE | F_NEXT, 4);
	desc(4, 0, 0, F_NEXT, 5); /* "readable" after writable, but empty */
	desc(5, DATA_GPA + 16, 4, F_WRITE, 0);
	avail_add(0);
	expect_one_chain();
	check_chain_sane(&ch, 16);
	ck_assert_uint_eq(ch.nr_bufs, 3);
	ck_assert_uint_eq(ch.nr_readable, 1);
	ck_assert_uint_eq(ch.readable_len, 8);
	ck_assert_uint_eq(ch.writable_len, 12);
	/* A chain of nothing still has a head to give back. */
	desc(6, 0, 0, 0, 0);
	avail_add(6);
	expect_one_chain();
	ck_assert_uint_eq(ch.head, 6);
	ck_assert_uint_eq(ch.nr_bufs, 0);
}
END_TEST

START_TEST(test_broken_stays_broken)
{
	qinit(16, 0);
	desc(0, RAM, 8, 0, 0);
	avail_add(0);
	desc(1, DATA_GPA, 8, 0, 0);
	avail_add(1);
	expect_broken(-EFAULT);
	/* Fixing the ring changes nothing, and the ring is not even read. */
	desc(0, DATA_GPA, 8, 0, 0);
	q.desc = NULL;
	q.avail = NULL;
	ck_assert_int_eq(vq_pop(&q, &ch), -EFAULT);
	ck_assert(!vq_enable_notify(&q, true));
	/* Until the driver resets the queue. */
	qinit(16, 0);
	avail_add(0);
	expect_one_chain();
	ck_assert_uint_eq(ch.head, 0);
}
END_TEST

START_TEST(test_push)
{
	static const uint16_t heads[] = { 3, 1, 2, 0, 2, 3 };
	uint32_t id, len;

	qinit(4, 0);
	for (unsigned i = 0; i < 6; i++) {
		vq_push(&q, heads[i], 100 * i);
		ck_assert_uint_eq(used_idx(), i + 1);
		used_elem(i % 4, &id, &len);
		ck_assert_uint_eq(id, heads[i]);
		ck_assert_uint_eq(len, 100 * i);
	}
	/* A head the queue cannot have given out is not written. */
	vq_push(&q, 4, 1);
	ck_assert_uint_eq(used_idx(), 6);
	ck_assert_uint_eq(q.used_idx, 6);
	q.used_idx = 0xffff;
	vq_push(&q, 1, 7);
	ck_assert_uint_eq(used_idx(), 0);
	used_elem(3, &id, &len);
	ck_assert_uint_eq(id, 1);
	ck_assert_uint_eq(len, 7);
}
END_TEST

START_TEST(test_notify_flags)
{
	qinit(16, 0);
	vq_push(&q, 0, 0);
	ck_assert(vq_should_notify(&q));
	ck_assert(!vq_should_notify(&q)); /* nothing new */
	*u16at(AVAIL_GPA) = 1;            /* VIRTQ_AVAIL_F_NO_INTERRUPT */
	vq_push(&q, 1, 0);
	ck_assert(!vq_should_notify(&q));
	*u16at(AVAIL_GPA) = 0;
	ck_assert(!vq_should_notify(&q));
	vq_push(&q, 2, 0);
	ck_assert(vq_should_notify(&q));
	/* used_event is not looked at without EVENT_IDX. */
	*u16at(AVAIL_GPA + 4 + 2 * 16) = 100;
	vq_push(&q, 3, 0);
	ck_assert(vq_should_notify(&q));
}
END_TEST

START_TEST(test_notify_event_idx)
{
	uint16_t *used_event = u16at(AVAIL_GPA + 4 + 2 * 16);

	qinit(16, FEAT_EVT);
	*used_event = 0;
	vq_push(&q, 0, 0);
	ck_assert(vq_should_notify(&q)); /* first call: no reference point */
	vq_push(&q, 0, 0);               /* used 2, event 0 already passed */
	ck_assert(!vq_should_notify(&q));
	*used_event = 2;
	vq_push(&q, 0, 0); /* used 3: crossed 2 */
	ck_assert(vq_should_notify(&q));
	*used_event = 4;
	for (int i = 0; i < 3; i++)
		vq_push(&q, 0, 0); /* used 6: crossed 4 on the way */
	ck_assert(vq_should_notify(&q));
	ck_assert(!vq_should_notify(&q));
	*used_event = 10;
	vq_push(&q, 0, 0);
	vq_push(&q, 0, 0); /* used 8 */
	ck_assert(!vq_should_notify(&q));
	/* NO_INTERRUPT is ignored with EVENT_IDX. */
	*u16at(AVAIL_GPA) = 1;
	*used_event = 8;
	vq_push(&q, 0, 0);
	ck_assert(vq_should_notify(&q));
	/* Across the 16-bit wrap. */
	q.used_idx = q.signalled_used = 65534;
	*used_event = 65535;
	for (int i = 0; i < 3; i++)
		vq_push(&q, 0, 0); /* used 1 */
	ck_assert(vq_should_notify(&q));
	*used_event = 2;
	vq_push(&q, 0, 0); /* used 2: the event is for moving past 2 */
	ck_assert(!vq_should_notify(&q));
	vq_push(&q, 0, 0);
	ck_assert(vq_should_notify(&q));
}
END_TEST

START_TEST(test_enable_notify)
{
	uint16_t *avail_event = u16at(USED_GPA + 4 + 8 * 16);

	qinit(16, 0);
	desc(0, DATA_GPA, 8, 0, 0);
	ck_assert(!vq_enable_notify(&q, false));
	ck_assert_uint_eq(*u16at(USED_GPA), 1); /* VIRTQ_USED_F_NO_NOTIFY */
	ck_assert(!vq_enable_notify(&q, true));
	ck_assert_uint_eq(*u16at(USED_GPA), 0);
	avail_add(0);
	ck_assert(vq_enable_notify(&q, true)); /* poll again */
	expect_one_chain();
	ck_assert(!vq_enable_notify(&q, true));

	qinit(16, FEAT_EVT);
	*avail_event = 0xabcd;
	avail_add(0);
	expect_one_chain();
	ck_assert(!vq_enable_notify(&q, true));
	ck_assert_uint_eq(*avail_event, 1);
	ck_assert_uint_eq(*u16at(USED_GPA), 0); /* flags untouched with EVENT_IDX */
	avail_add(0);
	ck_assert(vq_enable_notify(&q, false)); /* pending, and nothing to disable */
	ck_assert_uint_eq(*avail_event, 1);
	ck_assert(vq_enable_notify(&q, true));
	/* A broken queue asks for no polling. */
	set_avail_idx(100);
	expect_broken(-EINVAL);
	ck_assert(!vq_enable_notify(&q, true));
}
END_TEST

START_TEST(test_chain_read_write)
{
	static const uint32_t lens[] = { 3, 5, 7, 4, 6, 2 };
	uint8_t seq[15], out[32], src[100];
	uint64_t gpa = DATA_GPA;

	qinit(16, 0);
	for (unsigned i = 0; i < 6; i++, gpa += 0x100)
		desc(i, gpa, lens[i], (i >= 3 ? F_WRITE : 0) | (i < 5 ? F_NEXT : 0), i + 1);
	for (unsigned i = 0; i < 15; i++)
		seq[i] = (uint8_t)(i + 1);
	memcpy(hva(DATA_GPA), seq, 3);
	memcpy(hva(DATA_GPA + 0x100), seq + 3, 5);
	memcpy(hva(DATA_GPA + 0x200), seq + 8, 7);
	avail_add(0);
	expect_one_chain();
	ck_assert_uint_eq(vq_chain_read(&ch, 0, out, sizeof(out)), 15);
	ck_assert_mem_eq(out, seq, 15);
	ck_assert_uint_eq(vq_chain_read(&ch, 2, out, 10), 10);
	ck_assert_mem_eq(out, seq + 2, 10);
	ck_assert_uint_eq(vq_chain_read(&ch, 8, out, 3), 3);
	ck_assert_mem_eq(out, seq + 8, 3);
	ck_assert_uint_eq(vq_chain_read(&ch, 14, out, 10), 1);
	ck_assert_uint_eq(out[0], 15);
	ck_assert_uint_eq(vq_chain_read(&ch, 15, out, 1), 0);
	ck_assert_uint_eq(vq_chain_read(&ch, UINT64_MAX, out, 1), 0);
	ck_assert_uint_eq(vq_chain_read(&ch, 0, out, 0), 0);

	for (unsigned i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(0xa0 + i);
	ck_assert_uint_eq(vq_chain_write(&ch, 3, src, 16), 9);
	ck_assert_uint_eq(*hva(DATA_GPA + 0x300 + 2), 0);
	ck_assert_uint_eq(*hva(DATA_GPA + 0x300 + 3), 0xa0);
	ck_assert_mem_eq(hva(DATA_GPA + 0x400), src + 1, 6);
	ck_assert_mem_eq(hva(DATA_GPA + 0x500), src + 7, 2);
	ck_assert_uint_eq(*hva(DATA_GPA + 0x500 + 2), 0); /* nothing past the end */
	ck_assert_uint_eq(vq_chain_write(&ch, 0, src, sizeof(src)), 12);
	ck_assert_mem_eq(hva(DATA_GPA + 0x300), src, 4);
	ck_assert_uint_eq(vq_chain_write(&ch, 12, src, 1), 0);
	/* Readable buffers are never written. */
	ck_assert_mem_eq(hva(DATA_GPA), seq, 3);
}
END_TEST

/* xorshift64*: deterministic so a failure reproduces. */
static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dULL;
}

/* A random descriptor, often almost plausible so deep paths are reached. */
static struct t_desc rnd_desc(unsigned next_range)
{
	struct t_desc d = { rnd(), (uint32_t)rnd(), (uint16_t)rnd(), (uint16_t)rnd() };

	if (rnd() % 16 == 0)
		return d;
	d.addr = rnd() % (RAM + 0x2000);
	d.len = rnd() % 32 == 0 ? (uint32_t)rnd() : (uint32_t)(rnd() % 0x3000);
	d.flags = (uint16_t)(rnd() % 4); /* NEXT, WRITE */
	if (rnd() % 4 == 0)
		d.flags |= (uint16_t)(rnd() % 8) << 2; /* INDIRECT and unknown bits */
	d.next = (uint16_t)(rnd() % next_range);
	if ((d.flags & F_INDIRECT) && rnd() % 2) {
		d.addr = IND_GPA + 16 * (rnd() % 64) + (rnd() % 8 == 0 ? rnd() % 16 : 0);
		d.len = 16 * (rnd() % 24);
	}
	return d;
}

static void fuzz_fill(uint64_t table, unsigned n, unsigned next_range)
{
	for (unsigned i = 0; i < n; i++) {
		struct t_desc d = rnd_desc(next_range);

		memcpy(hva(table + 16ULL * i), &d, sizeof(d));
	}
}

START_TEST(test_fuzz)
{
	static const uint64_t feats[] = { 0, FEAT_IND, FEAT_IND | FEAT_EVT };
	unsigned chains = 0, breaks = 0, empties = 0;
	uint8_t buf[256];

	for (int iter = 0; iter < 10000; iter++) {
		uint16_t size = (uint16_t)(1u << (rnd() % 6));
		int ret = 0;

		qinit(size, feats[rnd() % 3]);
		fuzz_fill(DESC_GPA, size, size + 2u);
		fuzz_fill(IND_GPA, 96, 26);
		for (unsigned i = 0; i < size; i++)
			*u16at(AVAIL_GPA + 4 + 2 * i) = (uint16_t)(rnd() % (size + 2u));
		set_avail_idx(rnd() % 16 == 0 ? (uint16_t)rnd() : (uint16_t)(rnd() % (size + 3u)));
		for (unsigned n = 0; n < size + 3u; n++) {
			ret = vq_pop(&q, &ch);
			if (ret != 1)
				break;
			chains++;
			check_chain_sane(&ch, size);
			vq_chain_read(&ch, rnd() % 64, buf, sizeof(buf));
			vq_chain_write(&ch, rnd() % 64, buf, sizeof(buf));
			vq_push(&q, ch.head, (uint32_t)ch.writable_len);
			vq_should_notify(&q);
		}
		if (ret == 0) {
			empties++;
			ck_assert(!q.broken);
		} else if (ret < 0) {
			breaks++;
			ck_assert_msg(ret == -EINVAL || ret == -EFAULT, "pop returned %d", ret);
			ck_assert(q.broken);
			ck_assert_int_eq(vq_pop(&q, &ch), ret);
		}
	}
	/* The generator must reach both outcomes often. */
	ck_assert_uint_gt(chains, 2000);
	ck_assert_uint_gt(breaks, 2000);
	ck_assert_uint_gt(empties, 500);
}
END_TEST

/* A "guest" thread rewriting the rings while the device pops: whatever it
 * writes, every popped buffer must lie in RAM (no double fetch). */
static int race_stop;
static unsigned long race_writes;

static void *race_guest(void *arg)
{
	uint64_t s = 0x1234567;

	(void)arg;
	while (!__atomic_load_n(&race_stop, __ATOMIC_RELAXED)) {
		uint64_t *w;

		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		/* One aligned word of a descriptor, the avail ring or an indirect table. */
		switch (s % 4) {
		case 0:
			w = (uint64_t *)hva(DESC_GPA + 8 * ((s >> 8) % 32));
			break;
		case 1: /* flags, idx and heads, all small */
			w = (uint64_t *)hva(AVAIL_GPA + 8 * ((s >> 8) % 5));
			__atomic_store_n(w, s & 0x000f000f000f000fULL, __ATOMIC_RELAXED);
			goto next;
		default:
			w = (uint64_t *)hva(IND_GPA + 8 * ((s >> 8) % 64));
			break;
		}
		if ((s >> 20) % 2) /* an address in or just past RAM */
			__atomic_store_n(w, (s >> 24) % (RAM + 0x1000), __ATOMIC_RELAXED);
		else /* len, flags and next */
			__atomic_store_n(w, s & 0x000f000700001fffULL, __ATOMIC_RELAXED);
next:
		__atomic_add_fetch(&race_writes, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

/* The well-behaved side of the driver: one valid two-buffer chain at
 * (head), published as the next avail entry, so the device always has work
 * however the threads are scheduled. */
static void race_publish(uint16_t head)
{
	uint16_t second = (head + 1) % 16, idx = (uint16_t)(q.last_avail + 1);
	uint64_t *d = (uint64_t *)hva(DESC_GPA);

	__atomic_store_n(&d[2 * head], DATA_GPA, __ATOMIC_RELAXED);
	__atomic_store_n(&d[2 * head + 1], 64 | (uint64_t)F_NEXT << 32 | (uint64_t)second << 48,
			 __ATOMIC_RELAXED);
	__atomic_store_n(&d[2 * second], DATA_GPA + 0x1000, __ATOMIC_RELAXED);
	__atomic_store_n(&d[2 * second + 1], 64 | (uint64_t)F_WRITE << 32, __ATOMIC_RELAXED);
	__atomic_store_n(u16at(AVAIL_GPA + 4 + 2 * (q.last_avail % 16)), head, __ATOMIC_RELAXED);
	__atomic_store_n(u16at(AVAIL_GPA + 2), idx, __ATOMIC_RELEASE);
}

START_TEST(test_race)
{
	struct timespec t0, t;
	unsigned chains = 0;
	pthread_t th;

	ck_assert_int_eq(vq_init(&q, &m, 16, DESC_GPA, AVAIL_GPA, USED_GPA, FEAT_IND), 0);
	ck_assert_int_eq(pthread_create(&th, NULL, race_guest, NULL), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* At least 0.5 s, 100k hostile writes and 100 chains popped, at most
	 * 20 s: on a loaded host either thread may be starved, the guest one
	 * (few writes) or this one (few pops, each likely to meet a ring the
	 * guest is rewriting: at load 15, 5k pops in 0.5 s found no chain intact). */
	for (unsigned long i = 0;; i++) {
		int ret = vq_pop(&q, &ch);

		if (ret == 1) {
			chains++;
			check_chain_sane(&ch, 16);
			vq_push(&q, ch.head, 0);
		} else if (ret == 0) {
			race_publish((uint16_t)(i % 16));
		} else {
			ck_assert(ret == -EINVAL || ret == -EFAULT);
			ck_assert_int_eq(vq_init(&q, &m, 16, DESC_GPA, AVAIL_GPA, USED_GPA,
						 FEAT_IND),
					 0);
		}
		if (i % 1024 == 0) {
			long long ms;

			clock_gettime(CLOCK_MONOTONIC, &t);
			ms = (t.tv_sec - t0.tv_sec) * 1000LL + (t.tv_nsec - t0.tv_nsec) / 1000000;
			if (ms >= 20000 ||
			    (ms >= 500 && chains >= 100 &&
			     __atomic_load_n(&race_writes, __ATOMIC_RELAXED) >= 100000))
				break;
		}
	}
	__atomic_store_n(&race_stop, 1, __ATOMIC_RELAXED);
	pthread_join(th, NULL);
	ck_assert_uint_gt(chains, 0);
}
END_TEST

static Suite *unit_suite(void)
{
	Suite *s = suite_create("vq");
	TCase *tc = tcase_create("core");
	TCase *tf = tcase_create("fuzz");

	/* Hostile rings are the point here: keep the queue-broken warnings quiet. */
	log_threshold = LOG_ERR - 1;
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_init_size);
	tcase_add_test(tc, test_init_align);
	tcase_add_test(tc, test_init_outside_ram);
	tcase_add_test(tc, test_empty);
	tcase_add_test(tc, test_single_readable);
	tcase_add_test(tc, test_multi_buffer);
	tcase_add_test(tc, test_many_chains);
	tcase_add_test(tc, test_wrap);
	tcase_add_test(tc, test_loop);
	tcase_add_test(tc, test_chain_uses_whole_table);
	tcase_add_test(tc, test_next_out_of_range);
	tcase_add_test(tc, test_head_out_of_range);
	tcase_add_test(tc, test_avail_jump);
	tcase_add_test(tc, test_buf_outside_ram);
	tcase_add_test(tc, test_buf_crossing_end);
	tcase_add_test(tc, test_addr_overflow);
	tcase_add_test(tc, test_len_sum_overflow);
	tcase_add_test(tc, test_indirect);
	tcase_add_test(tc, test_indirect_not_negotiated);
	tcase_add_test(tc, test_broken_names_owner);
	tcase_add_test(tc, test_indirect_nested);
	tcase_add_test(tc, test_indirect_with_next);
	tcase_add_test(tc, test_indirect_bad_table);
	tcase_add_test(tc, test_chain_too_long);
	tcase_add_test(tc, test_readable_after_writable);
	tcase_add_test(tc, test_zero_length);
	tcase_add_test(tc, test_broken_stays_broken);
	tcase_add_test(tc, test_push);
	tcase_add_test(tc, test_notify_flags);
	tcase_add_test(tc, test_notify_event_idx);
	tcase_add_test(tc, test_enable_notify);
	tcase_add_test(tc, test_chain_read_write);
	suite_add_tcase(s, tc);
	tcase_add_checked_fixture(tf, setup, teardown);
	tcase_set_timeout(tf, 60);
	tcase_add_test(tf, test_fuzz);
	tcase_add_test(tf, test_race);
	suite_add_tcase(s, tf);
	return s;
}

#include "unit.h"
