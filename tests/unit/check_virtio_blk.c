/* Unit tests of virtio-blk: the host plays the driver (rings in guest RAM,
 * a doorbell, then the used ring, the status byte and the image file are
 * checked) for reads, writes, multi-buffer and indirect chains, flush,
 * discard, write zeroes, GET_ID, read-only disks, range checks, malformed
 * and hostile requests, multiple queues, host I/O errors and image locks.
 * Pausing is in check_virtio_blk_pause.c. */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit_capture.h"
#include "virtio_blk_fixture.h"

/* DISCARD or WRITE_ZEROES of one segment. */
static uint8_t zero_request(struct td_dev *dev, uint32_t type, uint64_t sector, uint32_t num,
			    uint32_t flags, unsigned nsegs)
{
	uint64_t seg = td_alloc(16ULL * nsegs);

	for (unsigned i = 0; i < nsegs; i++) {
		memcpy(td_hva(seg + 16 * i), &sector, 8);
		memcpy(td_hva(seg + 16 * i + 8), &num, 4);
		memcpy(td_hva(seg + 16 * i + 12), &flags, 4);
	}
	return request(dev, 0, type, sector, seg, 16 * nsegs, NULL);
}

static bool all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

/* --- tests ---------------------------------------------------------------- */

/* Each disk is an instance of its own, with its own state, listed on the
 * VM newest first and found by id. */
START_TEST(test_instances)
{
	static const char *const ids[] = { "disk2", "disk1", "disk0" };
	struct device *dev = td_vm.devices;
	void *states[3];

	for (unsigned i = 0; i < 3; i++, dev = dev->next) {
		ck_assert_ptr_nonnull(dev);
		ck_assert_str_eq(dev->id, ids[i]);
		ck_assert_ptr_eq(dev->type, &virtio_blk_type);
		ck_assert_ptr_eq(dev->inst, config_find_device(&td_cfg, ids[i]));
		ck_assert_ptr_eq(device_find(&td_vm, ids[i]), dev);
		states[i] = dev->state;
		ck_assert_ptr_nonnull(states[i]);
	}
	ck_assert_ptr_null(dev);
	ck_assert_ptr_ne(states[0], states[1]);
	ck_assert_ptr_ne(states[1], states[2]);
	ck_assert_ptr_ne(states[0], states[2]);
	ck_assert_ptr_null(device_find(&td_vm, "disk3"));
}
END_TEST

START_TEST(test_identity_config)
{
	uint64_t f = td_device_features(&d);

	ck_assert_uint_eq(td_cfg_read(d.slot, PCI_CFG_SUBSYS_ID, 2), 2);
	ck_assert_uint_eq(td_cfg_read(d.slot, PCI_CFG_REVISION, 4) >> 8, 0x018000);
	ck_assert_uint_eq(f & (F_DRIVER | F_DISCARD | F_WZ | F_RO), F_DRIVER | F_DISCARD | F_WZ);
	ck_assert_uint_eq(d.nr_queues, 2); /* one per vCPU */
	ck_assert_uint_eq(d.nr_vectors, 3);
	ck_assert_uint_eq(d.device_len, 72);
	ck_assert_uint_eq(td_mmio_read(d.device + 0, 8), IMG0_SIZE / SECTOR); /* capacity */
	ck_assert_uint_eq(td_mmio_read(d.device + 0, 4), IMG0_SIZE / SECTOR);
	ck_assert_uint_eq(td_mmio_read(d.device + 12, 4), 128); /* seg_max */
	ck_assert_uint_eq(td_mmio_read(d.device + 20, 4), 512); /* blk_size */
	ck_assert_uint_eq(td_mmio_read(d.device + 34, 2), 2);   /* num_queues */
	ck_assert_uint_ne(td_mmio_read(d.device + 36, 4), 0);   /* max_discard_sectors */
	ck_assert_uint_eq(td_mmio_read(d.device + 40, 4), 1);   /* max_discard_seg */
	ck_assert_uint_eq(td_mmio_read(d.device + 44, 4), 8);   /* discard alignment */
	ck_assert_uint_ne(td_mmio_read(d.device + 48, 4), 0);   /* max_write_zeroes */
	ck_assert_uint_eq(td_mmio_read(d.device + 52, 4), 1);   /* max_wz_seg */
	ck_assert_uint_eq(td_mmio_read(d.device + 56, 1), 1);   /* may unmap */
	/* The read-only disk. */
	f = td_device_features(&ro);
	ck_assert(f & F_RO);
	ck_assert(!(f & (F_DISCARD | F_WZ)));
	ck_assert_uint_eq(td_mmio_read(ro.device, 8), IMG1_SIZE / SECTOR);
	/* Disks take slots in command-line order. */
	ck_assert_uint_lt(d.slot, ro.slot);
	ck_assert_uint_lt(ro.slot, dio.slot);
}
END_TEST

START_TEST(test_read)
{
	uint64_t buf = td_alloc(2 * SECTOR);
	uint32_t used;

	ck_assert_uint_eq(request(&d, 0, T_IN, 3, buf, 2 * SECTOR, &used), S_OK);
	ck_assert_uint_eq(used, 2 * SECTOR + 1);
	check_pattern(td_hva(buf), 1, 3 * SECTOR, 2 * SECTOR);
	ck_assert_uint_eq(td_irqs(1), 1); /* queue 0's vector */
	/* The last sector, and none (length 0 at the end is fine). */
	ck_assert_uint_eq(request(&d, 0, T_IN, IMG0_SIZE / SECTOR - 1, buf, SECTOR, NULL), S_OK);
	check_pattern(td_hva(buf), 1, IMG0_SIZE - SECTOR, SECTOR);
	ck_assert_uint_eq(request(&d, 0, T_IN, IMG0_SIZE / SECTOR, 0, 0, &used), S_OK);
	ck_assert_uint_eq(used, 1);
}
END_TEST

START_TEST(test_write)
{
	uint64_t buf = td_alloc(3 * SECTOR);
	uint32_t used;

	for (unsigned i = 0; i < 3 * SECTOR; i++)
		td_hva(buf)[i] = (uint8_t)(i ^ 0x5a);
	ck_assert_uint_eq(request(&d, 0, T_OUT, 10, buf, 3 * SECTOR, &used), S_OK);
	ck_assert_uint_eq(used, 1);
	check_file(img[0], 10 * SECTOR, td_hva(buf), 3 * SECTOR);
	/* Neighbours untouched. */
	{
		uint8_t around[SECTOR];

		file_read(img[0], 9 * SECTOR, around, SECTOR);
		check_pattern(around, 1, 9 * SECTOR, SECTOR);
		file_read(img[0], 13 * SECTOR, around, SECTOR);
		check_pattern(around, 1, 13 * SECTOR, SECTOR);
	}
	ck_assert_uint_eq(request(&d, 0, T_FLUSH, 0, 0, 0, &used), S_OK);
	ck_assert_uint_eq(used, 1);
}
END_TEST

/* Buffers split anywhere: header and data sharing a buffer, data and
 * status sharing one, many small ones, an indirect table. */
START_TEST(test_multi_buffer)
{
	uint64_t hdr_data = td_alloc(16 + 2 * SECTOR), data_status = td_alloc(SECTOR + 1);
	uint64_t a = td_alloc(100), b = td_alloc(SECTOR), c = td_alloc(3 * SECTOR - 100);
	uint64_t status = make_status(), hdr;
	struct td_buf bufs[5];
	uint16_t head;
	uint32_t type = T_OUT, used;
	uint64_t sector = 40;

	/* OUT: header + data in one readable buffer. */
	memcpy(td_hva(hdr_data), &type, 4);
	memset(td_hva(hdr_data + 4), 0, 4);
	memcpy(td_hva(hdr_data + 8), &sector, 8);
	for (unsigned i = 0; i < 2 * SECTOR; i++)
		td_hva(hdr_data + 16)[i] = (uint8_t)(i * 3);
	bufs[0] = (struct td_buf){ hdr_data, 16 + 2 * SECTOR, false };
	bufs[1] = (struct td_buf){ status, 1, true };
	head = td_add(&d, 0, bufs, 2);
	td_kick(&d, 0);
	ck_assert_uint_eq(complete(&d, 0, head), 1);
	ck_assert_uint_eq(*td_hva(status), S_OK);
	check_file(img[0], 40 * SECTOR, td_hva(hdr_data + 16), 2 * SECTOR);

	/* IN: the last data sector and the status in one writable buffer. */
	hdr = make_hdr(T_IN, 40);
	bufs[0] = (struct td_buf){ hdr, 16, false };
	bufs[1] = (struct td_buf){ b, SECTOR, true };
	bufs[2] = (struct td_buf){ data_status, SECTOR + 1, true };
	*td_hva(data_status + SECTOR) = S_NONE;
	head = td_add(&d, 0, bufs, 3);
	td_kick(&d, 0);
	ck_assert_uint_eq(complete(&d, 0, head), 2 * SECTOR + 1);
	ck_assert_uint_eq(*td_hva(data_status + SECTOR), S_OK);
	ck_assert_mem_eq(td_hva(b), td_hva(hdr_data + 16), SECTOR);
	ck_assert_mem_eq(td_hva(data_status), td_hva(hdr_data + 16 + SECTOR), SECTOR);

	/* IN over uneven buffers through an indirect table. */
	hdr = make_hdr(T_IN, 0);
	status = make_status();
	bufs[0] = (struct td_buf){ hdr, 16, false };
	bufs[1] = (struct td_buf){ a, 100, true };
	bufs[2] = (struct td_buf){ b, SECTOR, true };
	bufs[3] = (struct td_buf){ c, 3 * SECTOR - 100, true };
	bufs[4] = (struct td_buf){ status, 1, true };
	head = td_add_indirect(&d, 0, bufs, 5);
	td_kick(&d, 0);
	ck_assert_uint_eq(complete(&d, 0, head), 4 * SECTOR + 1);
	ck_assert_uint_eq(*td_hva(status), S_OK);
	check_pattern(td_hva(a), 1, 0, 100);
	check_pattern(td_hva(b), 1, 100, SECTOR);
	check_pattern(td_hva(c), 1, 100 + SECTOR, 3 * SECTOR - 100);
	(void)used;
}
END_TEST

START_TEST(test_second_queue)
{
	uint64_t buf = td_alloc(SECTOR);

	ck_assert_uint_eq(request(&d, 1, T_IN, 7, buf, SECTOR, NULL), S_OK);
	check_pattern(td_hva(buf), 1, 7 * SECTOR, SECTOR);
	ck_assert_uint_eq(td_irqs(2), 1); /* queue 1's vector */
	ck_assert_uint_eq(td_irqs(1), 0);
}
END_TEST

/* A full queue of requests (one indirect descriptor each) in one kick,
 * completing in any order. */
START_TEST(test_full_queue)
{
	uint64_t bufs[QSIZE], st[QSIZE];
	bool seen[QSIZE] = { false };

	for (unsigned i = 0; i < QSIZE; i++) {
		struct td_buf b[3];

		bufs[i] = td_alloc(SECTOR);
		st[i] = make_status();
		b[0] = (struct td_buf){ make_hdr(T_IN, i * 7 % (IMG0_SIZE / SECTOR)), 16, false };
		b[1] = (struct td_buf){ bufs[i], SECTOR, true };
		b[2] = (struct td_buf){ st[i], 1, true };
		td_add_indirect(&d, 0, b, 3);
	}
	td_kick(&d, 0);
	ck_assert(td_wait_used(&d, 0, QSIZE));
	for (unsigned n = 0; n < QSIZE; n++) {
		uint32_t id, len;

		td_next_used(&d, 0, &id, &len);
		ck_assert_uint_lt(id, QSIZE);
		ck_assert_uint_eq(len, SECTOR + 1);
		ck_assert(!seen[id]);
		seen[id] = true;
	}
	for (unsigned i = 0; i < QSIZE; i++) {
		ck_assert_uint_eq(*td_hva(st[i]), S_OK);
		check_pattern(td_hva(bufs[i]), 1, (uint64_t)(i * 7 % (IMG0_SIZE / SECTOR)) * SECTOR,
			      SECTOR);
	}
}
END_TEST

START_TEST(test_flush)
{
	uint64_t buf = td_alloc(SECTOR);

	memset(td_hva(buf), 0xcd, SECTOR);
	ck_assert_uint_eq(request(&d, 0, T_OUT, 100, buf, SECTOR, NULL), S_OK);
	ck_assert_uint_eq(request(&d, 0, T_FLUSH, 0, 0, 0, NULL), S_OK);
	check_file(img[0], 100 * SECTOR, td_hva(buf), SECTOR);
	/* A read-only disk takes flushes too. */
	td_init(&ro, F_DRIVER | F_RO, 1, 16);
	ck_assert_uint_eq(request(&ro, 0, T_FLUSH, 0, 0, 0, NULL), S_OK);
}
END_TEST

START_TEST(test_discard)
{
	uint8_t back[32 * 1024];
	struct stat before, after;
	off_t hole;
	int fd;

	ck_assert_int_eq(stat(img[0], &before), 0);
	ck_assert_uint_eq(zero_request(&d, T_DISCARD, 256, 64, 0, 1), S_OK);
	file_read(img[0], 256 * SECTOR, back, sizeof(back));
	ck_assert(all_zero(back, sizeof(back)));
	ck_assert_int_eq(stat(img[0], &after), 0);
	ck_assert_int_eq(after.st_size, IMG0_SIZE);
	ck_assert_int_lt(after.st_blocks, before.st_blocks);
	fd = open(img[0], O_RDONLY);
	hole = lseek(fd, 0, SEEK_HOLE);
	close(fd);
	ck_assert_int_eq(hole, 256 * SECTOR);
	/* Neighbours untouched. */
	file_read(img[0], 255 * SECTOR, back, SECTOR);
	check_pattern(back, 1, 255 * SECTOR, SECTOR);
	file_read(img[0], 320 * SECTOR, back, SECTOR);
	check_pattern(back, 1, 320 * SECTOR, SECTOR);
}
END_TEST

START_TEST(test_write_zeroes)
{
	uint8_t back[8 * SECTOR];
	uint32_t flags = _i ? 1 : 0; /* with and without unmap */

	ck_assert_uint_eq(zero_request(&d, T_WZ, 17, 8, flags, 1), S_OK);
	file_read(img[0], 17 * SECTOR, back, sizeof(back));
	ck_assert(all_zero(back, sizeof(back)));
	file_read(img[0], 16 * SECTOR, back, SECTOR);
	check_pattern(back, 1, 16 * SECTOR, SECTOR);
	file_read(img[0], 25 * SECTOR, back, SECTOR);
	check_pattern(back, 1, 25 * SECTOR, SECTOR);
}
END_TEST

START_TEST(test_zero_refusals)
{
	uint64_t cap = IMG0_SIZE / SECTOR;
	uint8_t back[SECTOR];

	ck_assert_uint_eq(zero_request(&d, T_DISCARD, 0, 8, 1, 1), S_UNSUPP); /* unmap on discard */
	ck_assert_uint_eq(zero_request(&d, T_WZ, 0, 8, 2, 1), S_UNSUPP);      /* unknown flag */
	ck_assert_uint_eq(zero_request(&d, T_DISCARD, 0, 8, 0, 2), S_IOERR);  /* two segments */
	ck_assert_uint_eq(zero_request(&d, T_WZ, cap - 4, 8, 0, 1), S_IOERR); /* past the end */
	ck_assert_uint_eq(zero_request(&d, T_DISCARD, UINT64_MAX - 2, 8, 0, 1), S_IOERR);
	ck_assert_uint_eq(zero_request(&d, T_WZ, 0, 0xffffffff, 0, 1), S_IOERR); /* > max */
	ck_assert_uint_eq(zero_request(&d, T_WZ, 0, 0, 0, 1), S_OK);             /* nothing */
	file_read(img[0], 0, back, SECTOR);
	check_pattern(back, 1, 0, SECTOR);
	file_read(img[0], (cap - 4) * SECTOR, back, SECTOR);
	check_pattern(back, 1, (cap - 4) * SECTOR, SECTOR);
}
END_TEST

START_TEST(test_get_id)
{
	uint64_t id = td_alloc(20);
	uint8_t want[20] = { 0 };
	uint32_t used;

	memset(td_hva(id), 0xee, 20);
	ck_assert_uint_eq(request(&d, 0, T_GET_ID, 0, id, 20, &used), S_OK);
	ck_assert_uint_eq(used, 21);
	memcpy(want, SERIAL0, strlen(SERIAL0));
	ck_assert_mem_eq(td_hva(id), want, 20);
	/* 20 bytes: all of them, no NUL. */
	td_init(&ro, F_DRIVER | F_RO, 1, 16);
	ck_assert_uint_eq(request(&ro, 0, T_GET_ID, 0, id, 20, NULL), S_OK);
	ck_assert_mem_eq(td_hva(id), SERIAL1, 20);
	/* A short buffer gets what fits. */
	memset(td_hva(id), 0xee, 20);
	ck_assert_uint_eq(request(&ro, 0, T_GET_ID, 0, id, 5, &used), S_OK);
	ck_assert_uint_eq(used, 6);
	ck_assert_mem_eq(td_hva(id), "ABCDE\xee", 6);
	/* No serial: zeros. */
	td_init(&dio, F_DRIVER, 1, 16);
	ck_assert_uint_eq(request(&dio, 0, T_GET_ID, 0, id, 20, NULL), S_OK);
	ck_assert(all_zero(td_hva(id), 20));
}
END_TEST

START_TEST(test_readonly)
{
	uint64_t buf = td_alloc(SECTOR), seg = td_alloc(16);
	uint8_t back[SECTOR];

	td_init(&ro, F_DRIVER | F_RO, 1, 16);
	memset(td_hva(buf), 0x77, SECTOR);
	ck_assert_uint_eq(request(&ro, 0, T_OUT, 1, buf, SECTOR, NULL), S_IOERR);
	ck_assert_uint_eq(request(&ro, 0, T_DISCARD, 1, seg, 16, NULL), S_IOERR);
	ck_assert_uint_eq(request(&ro, 0, T_WZ, 1, seg, 16, NULL), S_IOERR);
	file_read(img[1], SECTOR, back, SECTOR);
	check_pattern(back, 2, SECTOR, SECTOR);
	ck_assert_uint_eq(request(&ro, 0, T_IN, 1, buf, SECTOR, NULL), S_OK);
	check_pattern(td_hva(buf), 2, SECTOR, SECTOR);
	ck_assert_uint_eq(td_status(&ro) & VIRTIO_STATUS_NEEDS_RESET, 0);
}
END_TEST

START_TEST(test_out_of_range)
{
	uint64_t cap = IMG0_SIZE / SECTOR, buf = td_alloc(2 * SECTOR);
	struct stat st;

	ck_assert_uint_eq(request(&d, 0, T_IN, cap - 1, buf, 2 * SECTOR, NULL), S_IOERR);
	ck_assert_uint_eq(request(&d, 0, T_IN, cap + 1, 0, 0, NULL), S_IOERR);
	ck_assert_uint_eq(request(&d, 0, T_IN, 1ULL << 55, buf, SECTOR, NULL), S_IOERR);
	ck_assert_uint_eq(request(&d, 0, T_IN, UINT64_MAX, buf, SECTOR, NULL), S_IOERR);
	ck_assert_uint_eq(request(&d, 0, T_OUT, cap, buf, SECTOR, NULL), S_IOERR);
	ck_assert_uint_eq(request(&d, 0, T_OUT, (UINT64_MAX >> 9) + 1, buf, SECTOR, NULL), S_IOERR);
	ck_assert_int_eq(stat(img[0], &st), 0);
	ck_assert_int_eq(st.st_size, IMG0_SIZE);
	ck_assert_uint_eq(td_status(&d) & VIRTIO_STATUS_NEEDS_RESET, 0);
}
END_TEST

/* Requests a driver must not send: an error status, never a crash. */
START_TEST(test_bad_requests)
{
	uint64_t buf = td_alloc(SECTOR), hdr, status, extra = td_alloc(16);
	struct td_buf b[4];
	uint16_t head;

	ck_assert_uint_eq(request(&d, 0, 99, 0, 0, 0, NULL), S_UNSUPP);
	ck_assert_uint_eq(request(&d, 0, T_IN, 0, buf, 100, NULL), S_IOERR); /* not whole sectors */
	ck_assert_uint_eq(request(&d, 0, T_OUT, 0, buf, 511, NULL), S_IOERR);

	/* A header of 8 bytes. */
	status = make_status();
	b[0] = (struct td_buf){ make_hdr(T_IN, 0), 8, false };
	b[1] = (struct td_buf){ status, 1, true };
	head = td_add(&d, 0, b, 2);
	td_kick(&d, 0);
	ck_assert_uint_eq(complete(&d, 0, head), 1);
	ck_assert_uint_eq(*td_hva(status), S_IOERR);

	/* IN with readable data after the header; OUT with writable data. */
	hdr = make_hdr(T_IN, 0);
	status = make_status();
	b[0] = (struct td_buf){ hdr, 16, false };
	b[1] = (struct td_buf){ extra, 16, false };
	b[2] = (struct td_buf){ buf, SECTOR, true };
	b[3] = (struct td_buf){ status, 1, true };
	head = td_add(&d, 0, b, 4);
	td_kick(&d, 0);
	complete(&d, 0, head);
	ck_assert_uint_eq(*td_hva(status), S_IOERR);
	hdr = make_hdr(T_OUT, 0);
	status = make_status();
	b[0] = (struct td_buf){ hdr, 16, false };
	b[1] = (struct td_buf){ buf, SECTOR, false };
	b[2] = (struct td_buf){ extra, 16, true };
	b[3] = (struct td_buf){ status, 1, true };
	head = td_add(&d, 0, b, 4);
	td_kick(&d, 0);
	complete(&d, 0, head);
	ck_assert_uint_eq(*td_hva(status), S_IOERR);
	ck_assert_uint_eq(td_status(&d) & VIRTIO_STATUS_NEEDS_RESET, 0);
}
END_TEST

/* More data buffers than seg_max (through one indirect table). */
START_TEST(test_too_many_segments)
{
	enum { N = 130 };
	struct td_buf b[N + 2];
	uint64_t status = make_status();
	uint16_t head;

	b[0] = (struct td_buf){ make_hdr(T_IN, 0), 16, false };
	for (unsigned i = 0; i < N; i++)
		b[1 + i] = (struct td_buf){ td_alloc(SECTOR), SECTOR, true };
	b[N + 1] = (struct td_buf){ status, 1, true };
	head = td_add_indirect(&d, 0, b, N + 2);
	td_kick(&d, 0);
	complete(&d, 0, head);
	ck_assert_uint_eq(*td_hva(status), S_IOERR);
	/* seg_max of them is fine. */
	status = make_status();
	b[1 + 128] = (struct td_buf){ status, 1, true };
	head = td_add_indirect(&d, 0, b, 128 + 2);
	td_kick(&d, 0);
	ck_assert_uint_eq(complete(&d, 0, head), 128 * SECTOR + 1);
	ck_assert_uint_eq(*td_hva(status), S_OK);
}
END_TEST

/* No status byte (only readable buffers): the device needs a reset; a reset
 * and a new initialisation bring it back. */
START_TEST(test_no_status_byte)
{
	uint64_t buf = td_alloc(SECTOR);
	struct td_buf b[2] = { { make_hdr(T_OUT, 0), 16, false }, { buf, SECTOR, false } };
	uint16_t head;

	head = td_add(&d, 0, b, 2);
	td_kick(&d, 0);
	ck_assert_uint_eq(complete(&d, 0, head), 0);
	ck_assert(td_status(&d) & VIRTIO_STATUS_NEEDS_RESET);
	ck_assert_uint_eq(td_irqs(0), 1); /* configuration vector */
	/* Stopped: a good request waits. */
	td_add(&d, 0,
	       (struct td_buf[]){ { make_hdr(T_FLUSH, 0), 16, false }, { make_status(), 1, true } },
	       2);
	td_kick(&d, 0);
	td_sleep_ms(50);
	ck_assert_uint_eq(td_used_idx(&d, 0), 1);
	td_init(&d, F_DRIVER, 1, 64);
	ck_assert_uint_eq(request(&d, 0, T_IN, 5, buf, SECTOR, NULL), S_OK);
	check_pattern(td_hva(buf), 1, 5 * SECTOR, SECTOR);
}
END_TEST

/* Hostile rings: a descriptor loop, an avail index far ahead, a head out
 * of range. The device stops with NEEDS_RESET and nothing else happens. */
START_TEST(test_hostile_ring)
{
	struct td_queue *q = &d.q[0];
	uint64_t buf = td_alloc(SECTOR);

	switch (_i) {
	case 0:
		td_put_desc(q->desc, 0, make_hdr(T_IN, 0), 16, TD_F_NEXT, 1);
		td_put_desc(q->desc, 1, buf, SECTOR, TD_F_NEXT | TD_F_WRITE, 0);
		td_avail(&d, 0, 0);
		break;
	case 1:
		q->avail_idx = 1000;
		td_avail(&d, 0, 0);
		break;
	case 2:
		td_avail(&d, 0, QSIZE + 5);
		break;
	case 3: /* an indirect table outside RAM */
		td_put_desc(q->desc, 0, TD_RAM - 16, 64, TD_F_INDIRECT, 0);
		td_avail(&d, 0, 0);
		break;
	}
	td_kick(&d, 0);
	for (unsigned t = 0; !(td_status(&d) & VIRTIO_STATUS_NEEDS_RESET); t++) {
		ck_assert_uint_lt(t, TD_TIMEOUT_MS);
		td_sleep_ms(1);
	}
	ck_assert_uint_eq(td_used_idx(&d, 0), 0);
	td_init(&d, F_DRIVER, 1, 64);
	ck_assert_uint_eq(request(&d, 0, T_IN, 9, buf, SECTOR, NULL), S_OK);
	check_pattern(td_hva(buf), 1, 9 * SECTOR, SECTOR);
}
END_TEST

/* A driver making one chain available again and again while in flight:
 * each one is a request of its own; slots running out only delay them. */
START_TEST(test_head_reuse)
{
	uint64_t buf = td_alloc(SECTOR), status = make_status();
	struct td_buf b[3] = { { make_hdr(T_IN, 3), 16, false },
			       { buf, SECTOR, true },
			       { status, 1, true } };
	uint16_t head = td_add(&d, 0, b, 3);

	for (unsigned round = 0; round < 4; round++) {
		for (unsigned i = round ? 0 : 1; i < QSIZE; i++)
			td_avail(&d, 0, head);
		td_kick(&d, 0);
		/* Wait for the device to have taken them (avail_event). */
		for (unsigned t = 0; td_avail_event(&d, 0) != d.q[0].avail_idx; t++) {
			ck_assert_uint_lt(t, TD_TIMEOUT_MS);
			td_sleep_ms(1);
		}
	}
	ck_assert(td_wait_used(&d, 0, 4 * QSIZE));
	ck_assert_uint_eq(*td_hva(status), S_OK);
	ck_assert_uint_eq(td_status(&d) & VIRTIO_STATUS_NEEDS_RESET, 0);
}
END_TEST

/* Host I/O errors and short transfers reach the guest as IOERR: the image
 * shrinks under the device. */
START_TEST(test_host_short_read)
{
	uint64_t buf = td_alloc(2 * SECTOR);

	ck_assert_int_eq(truncate(img[0], IMG0_SIZE / 2), 0);
	ck_assert_uint_eq(request(&d, 0, T_IN, IMG0_SIZE / SECTOR / 2 + 10, buf, SECTOR, NULL),
			  S_IOERR);
	ck_assert_uint_eq(request(&d, 0, T_IN, IMG0_SIZE / SECTOR / 2 - 1, buf, 2 * SECTOR, NULL),
			  S_IOERR);
	ck_assert_uint_eq(request(&d, 0, T_IN, 0, buf, SECTOR, NULL), S_OK);
}
END_TEST

/* O_DIRECT (cache=none): aligned buffers round-trip. */
START_TEST(test_cache_none)
{
	uint64_t w = td_alloc_aligned(8 * SECTOR, 4096), r = td_alloc_aligned(8 * SECTOR, 4096);

	td_init(&dio, F_DRIVER | F_DISCARD | F_WZ, 1, 16);
	for (unsigned i = 0; i < 8 * SECTOR; i++)
		td_hva(w)[i] = (uint8_t)(i * 13);
	ck_assert_uint_eq(request(&dio, 0, T_OUT, 16, w, 8 * SECTOR, NULL), S_OK);
	ck_assert_uint_eq(request(&dio, 0, T_FLUSH, 0, 0, 0, NULL), S_OK);
	ck_assert_uint_eq(request(&dio, 0, T_IN, 16, r, 8 * SECTOR, NULL), S_OK);
	ck_assert_mem_eq(td_hva(r), td_hva(w), 8 * SECTOR);
	check_file(img[2], 16 * SECTOR, td_hva(w), 8 * SECTOR);
}
END_TEST

/* A writable image is locked: a second VM (here, a fourth instance on the
 * same image) is refused with one clear line. */
START_TEST(test_locked_image)
{
	struct vm_config other = { .cpus = 1 };
	void *state = NULL;
	char msg[512], want[PATH_MAX + 64];
	struct unit_capture c;
	int ret;

	add_disk(&other, img[0], "", false, false);
	log_threshold = LOG_ERR;
	unit_capture_begin(&c);
	ret = virtio_blk_type.create(&td_vm, other.devices[0], &state);
	unit_capture_end(&c, msg, sizeof(msg));
	config_free(&other);
	ck_assert_int_eq(ret, -EBUSY);
	snprintf(want, sizeof(want), "kvisor: disk %s: in use by another process (locked)\n",
		 img[0]);
	ck_assert_str_eq(msg, want);
}
END_TEST

static Suite *unit_suite(void)
{
	Suite *s = suite_create("virtio_blk");
	TCase *tc = tcase_create("device");

	tcase_add_unchecked_fixture(tc, tmpdir_setup, unit_tmpdir_remove);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_instances);
	tcase_add_test(tc, test_identity_config);
	tcase_add_test(tc, test_read);
	tcase_add_test(tc, test_write);
	tcase_add_test(tc, test_multi_buffer);
	tcase_add_test(tc, test_second_queue);
	tcase_add_test(tc, test_full_queue);
	tcase_add_test(tc, test_flush);
	tcase_add_test(tc, test_discard);
	tcase_add_loop_test(tc, test_write_zeroes, 0, 2);
	tcase_add_test(tc, test_zero_refusals);
	tcase_add_test(tc, test_get_id);
	tcase_add_test(tc, test_readonly);
	tcase_add_test(tc, test_out_of_range);
	tcase_add_test(tc, test_bad_requests);
	tcase_add_test(tc, test_too_many_segments);
	tcase_add_test(tc, test_no_status_byte);
	tcase_add_loop_test(tc, test_hostile_ring, 0, 4);
	tcase_add_test(tc, test_head_reuse);
	tcase_add_test(tc, test_host_short_read);
	tcase_add_test(tc, test_cache_none);
	tcase_add_test(tc, test_locked_image);
	suite_add_tcase(s, tc);
	return s;
}

#include "unit.h"
