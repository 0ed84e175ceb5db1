/* Unit tests of pausing virtio-blk through the registry, as a VM pause
 * does (devices_pause/devices_resume): kicks while paused wait and are
 * served on resume, writes in flight complete before pause returns, and
 * a second pause fails naming the disk and rolls back. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "unit_capture.h"
#include "virtio_blk_fixture.h"

/* devices_pause, with what it printed in (msg) (stderr captured). */
static int pause_captured(char *msg, size_t size)
{
	struct unit_capture c;
	int ret;

	unit_capture_begin(&c);
	ret = devices_pause(&td_vm);
	unit_capture_end(&c, msg, size);
	return ret;
}

/* Queue (without kicking) a READ of (sectors) at (sector) into a fresh
 * buffer preset to 0xee; (*buf) and (*status) get its buffers. */
static uint16_t add_read(struct td_dev *dev, uint64_t sector, uint32_t sectors, uint64_t *buf,
			 uint64_t *status)
{
	*buf = td_alloc(sectors * SECTOR);
	*status = make_status();
	memset(td_hva(*buf), 0xee, sectors * SECTOR);
	return td_add(dev, 0,
		      (struct td_buf[]){ { make_hdr(T_IN, sector), 16, false },
					 { *buf, sectors * SECTOR, true },
					 { *status, 1, true } },
		      3);
}

/* Queue (without kicking) a WRITE of (sectors) at (sector) from a fresh
 * buffer filled from (seed). */
static uint16_t add_write(struct td_dev *dev, uint64_t sector, uint32_t sectors, uint8_t seed,
			  uint64_t *buf, uint64_t *status)
{
	*buf = td_alloc_aligned(sectors * SECTOR, 4096);
	*status = make_status();
	for (uint32_t i = 0; i < sectors * SECTOR; i++)
		td_hva(*buf)[i] = (uint8_t)(seed + i * 11 + (i >> 9));
	return td_add(dev, 0,
		      (struct td_buf[]){ { make_hdr(T_OUT, sector), 16, false },
					 { *buf, sectors * SECTOR, false },
					 { *status, 1, true } },
		      3);
}

/* Requests kicked while the disks are paused are left in the ring (nothing
 * read, nothing written, no interrupt, even after a generous wait);
 * devices_resume serves them. */
START_TEST(test_pause_holds_requests)
{
	uint64_t rbuf, rst, wbuf, wst;
	uint16_t rhead, whead;
	uint8_t back[4 * SECTOR];
	bool seen_r = false, seen_w = false;

	ck_assert_int_eq(devices_pause(&td_vm), 0); /* nothing in flight: at once */
	rhead = add_read(&d, 20, 4, &rbuf, &rst);
	whead = add_write(&d, 60, 4, 0x3c, &wbuf, &wst);
	td_kick(&d, 0);
	td_sleep_ms(200);
	ck_assert_uint_eq(td_used_idx(&d, 0), 0);
	ck_assert_uint_eq(*td_hva(rst), S_NONE);
	ck_assert_uint_eq(*td_hva(wst), S_NONE);
	for (unsigned i = 0; i < 4 * SECTOR; i++)
		ck_assert_uint_eq(td_hva(rbuf)[i], 0xee);
	file_read(img[0], 60 * SECTOR, back, sizeof(back));
	check_pattern(back, 1, 60 * SECTOR, sizeof(back));
	ck_assert_uint_eq(td_irqs(1), 0);

	devices_resume(&td_vm); /* no new kick: resume looks at the ring itself */
	ck_assert(td_wait_used(&d, 0, 2));
	for (unsigned n = 0; n < 2; n++) {
		uint32_t id, len;

		td_next_used(&d, 0, &id, &len);
		if (id == rhead) {
			ck_assert_uint_eq(len, 4 * SECTOR + 1);
			seen_r = true;
		} else {
			ck_assert_uint_eq(id, whead);
			ck_assert_uint_eq(len, 1);
			seen_w = true;
		}
	}
	ck_assert(seen_r && seen_w);
	ck_assert_uint_eq(*td_hva(rst), S_OK);
	check_pattern(td_hva(rbuf), 1, 20 * SECTOR, 4 * SECTOR);
	ck_assert_uint_eq(*td_hva(wst), S_OK);
	check_file(img[0], 60 * SECTOR, td_hva(wbuf), 4 * SECTOR);
	ck_assert_uint_ge(td_irqs(1), 1);
	ck_assert_uint_eq(td_status(&d) & VIRTIO_STATUS_NEEDS_RESET, 0);
}
END_TEST

#define PW_REQS    64
#define PW_SECTORS 32 /* 16 KiB each: the whole 1 MiB image */

/* Writes the device has taken from the ring when devices_pause is called
 * are all complete (used, status OK, data in the image) when it returns,
 * and nothing completes afterwards. Whether some are still in flight at
 * the call depends on the host's speed; a batch of 1 MiB of O_DIRECT
 * writes, paused as soon as the device took them, almost always has some. */
START_TEST(test_pause_completes_inflight)
{
	uint64_t buf[PW_REQS], st[PW_REQS];
	uint16_t after;

	td_init(&dio, F_DRIVER, 1, QSIZE);
	for (unsigned i = 0; i < PW_REQS; i++)
		add_write(&dio, (uint64_t)i * PW_SECTORS, PW_SECTORS, (uint8_t)(i * 29), &buf[i],
			  &st[i]);
	td_kick(&dio, 0);
	/* The device took them all (it moves avail_event once the ring is
	 * empty, after popping them). */
	for (unsigned t = 0; td_avail_event(&dio, 0) != dio.q[0].avail_idx; t++) {
		ck_assert_uint_lt(t, TD_TIMEOUT_MS);
		td_sleep_ms(1);
	}
	ck_assert_int_eq(devices_pause(&td_vm), 0);
	after = td_used_idx(&dio, 0);
	ck_assert_uint_eq(after, PW_REQS);
	for (unsigned n = 0; n < PW_REQS; n++) {
		uint32_t id, len;

		td_next_used(&dio, 0, &id, &len);
		ck_assert_uint_eq(id % 3, 0); /* a head: 3 descriptors each */
		ck_assert_uint_lt(id, 3 * PW_REQS);
		ck_assert_uint_eq(len, 1);
	}
	for (unsigned i = 0; i < PW_REQS; i++) {
		ck_assert_uint_eq(*td_hva(st[i]), S_OK);
		check_file(img[2], (uint64_t)i * PW_SECTORS * SECTOR, td_hva(buf[i]),
			   PW_SECTORS * SECTOR);
	}
	td_sleep_ms(200);
	ck_assert_uint_eq(td_used_idx(&dio, 0), PW_REQS);
	devices_resume(&td_vm);
	/* Served as before. */
	{
		uint64_t r = td_alloc_aligned(PW_SECTORS * SECTOR, 4096);

		ck_assert_uint_eq(request(&dio, 0, T_IN, PW_SECTORS, r, PW_SECTORS * SECTOR, NULL),
				  S_OK);
		ck_assert_mem_eq(td_hva(r), td_hva(buf[1]), PW_SECTORS * SECTOR);
	}
}
END_TEST

/* A second devices_pause fails with the transport's -EALREADY and one line
 * naming the instance; nothing changes: the disks stay paused. When only
 * disk0 is still paused (the others resumed through their own hooks),
 * disk2 and disk1 are paused, disk0 fails, and they are resumed again. */
START_TEST(test_pause_twice)
{
	uint64_t rbuf, rst, dbuf, dst;
	uint16_t rhead, dhead;
	char msg[256];
	struct device *dev;

	td_init(&dio, F_DRIVER, 1, 16);
	ck_assert_int_eq(devices_pause(&td_vm), 0);
	ck_assert_int_eq(pause_captured(msg, sizeof(msg)), -EALREADY);
	ck_assert_str_eq(msg, "kvisor: disk2: cannot pause: Operation already in progress\n");
	/* Still paused, all of them. */
	rhead = add_read(&d, 5, 1, &rbuf, &rst);
	td_kick(&d, 0);
	dhead = add_read(&dio, 6, 1, &dbuf, &dst);
	td_kick(&dio, 0);
	td_sleep_ms(200);
	ck_assert_uint_eq(td_used_idx(&d, 0), 0);
	ck_assert_uint_eq(td_used_idx(&dio, 0), 0);

	/* Only disk0 paused: the failure names it, and rolls back disk2 and
	 * disk1, which serve again (disk2's request completes). */
	for (dev = td_vm.devices; strcmp(dev->id, "disk0"); dev = dev->next)
		dev->type->resume(&td_vm, dev->state);
	ck_assert_uint_eq(complete(&dio, 0, dhead), SECTOR + 1);
	ck_assert_int_eq(pause_captured(msg, sizeof(msg)), -EALREADY);
	ck_assert_str_eq(msg, "kvisor: disk0: cannot pause: Operation already in progress\n");
	ck_assert_uint_eq(*td_hva(dst), S_OK);
	check_pattern(td_hva(dbuf), 3, 6 * SECTOR, SECTOR);
	ck_assert_uint_eq(request(&dio, 0, T_IN, 7, dbuf, SECTOR, NULL), S_OK);
	check_pattern(td_hva(dbuf), 3, 7 * SECTOR, SECTOR);
	td_sleep_ms(200);
	ck_assert_uint_eq(td_used_idx(&d, 0), 0);
	ck_assert_uint_eq(*td_hva(rst), S_NONE);

	devices_resume(&td_vm);
	ck_assert_uint_eq(complete(&d, 0, rhead), SECTOR + 1);
	ck_assert_uint_eq(*td_hva(rst), S_OK);
	check_pattern(td_hva(rbuf), 1, 5 * SECTOR, SECTOR);
	/* And pausing works again. */
	ck_assert_int_eq(devices_pause(&td_vm), 0);
	devices_resume(&td_vm);
	ck_assert_uint_eq(request(&d, 0, T_IN, 8, rbuf, SECTOR, NULL), S_OK);
	check_pattern(td_hva(rbuf), 1, 8 * SECTOR, SECTOR);
}
END_TEST

static Suite *unit_suite(void)
{
	Suite *s = suite_create("virtio_blk_pause");
	TCase *tc = tcase_create("pause");

	tcase_add_unchecked_fixture(tc, tmpdir_setup, unit_tmpdir_remove);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_pause_holds_requests);
	tcase_add_test(tc, test_pause_completes_inflight);
	tcase_add_test(tc, test_pause_twice);
	suite_add_tcase(s, tc);
	return s;
}

#include "unit.h"
