/* Unit tests of the profiler's sample table: counting, growth, the bound
 * on distinct entries (overflow to dropped), merging, sorting, the file. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvisor/log.h"
#include "kvisor/profile.h"

START_TEST(test_count)
{
	struct profile_table t;

	ck_assert_int_eq(profile_table_init(&t, 16), 0);
	profile_table_add(&t, 0, 0xffffffff81000000ULL);
	profile_table_add(&t, 0, 0xffffffff81000000ULL);
	profile_table_add(&t, 3, 0xffffffff81000000ULL); /* same RIP, other CPL */
	profile_table_add(&t, 3, 0x401000);
	ck_assert_uint_eq(profile_table_count(&t, 0, 0xffffffff81000000ULL), 2);
	ck_assert_uint_eq(profile_table_count(&t, 3, 0xffffffff81000000ULL), 1);
	ck_assert_uint_eq(profile_table_count(&t, 3, 0x401000), 1);
	ck_assert_uint_eq(profile_table_count(&t, 0, 0x401000), 0);
	ck_assert_uint_eq(t.used, 3);
	ck_assert_uint_eq(t.samples, 4);
	ck_assert_uint_eq(t.dropped, 0);
	profile_table_free(&t);
	ck_assert_ptr_null(t.slots);
}
END_TEST

START_TEST(test_init_limits)
{
	struct profile_table t;

	ck_assert_int_eq(profile_table_init(&t, 0), -EINVAL);
	ck_assert_int_eq(profile_table_init(&t, PROFILE_TABLE_MAX + 1), -EINVAL);
	ck_assert_int_eq(profile_table_init(&t, PROFILE_TABLE_MAX), 0);
	ck_assert_uint_le(t.mask + 1, 4096); /* small until it fills */
	profile_table_free(&t);
	ck_assert_int_eq(profile_table_init(&t, 1), 0);
	profile_table_add(&t, 0, 1);
	profile_table_add(&t, 0, 2);
	ck_assert_uint_eq(profile_table_count(&t, 0, 1), 1);
	ck_assert_uint_eq(t.dropped, 1);
	profile_table_free(&t);
}
END_TEST

/* Many distinct RIPs: the table doubles (load at most 1/2) and keeps every
 * count; past its limit new RIPs are dropped but known ones still count. */
START_TEST(test_grow_and_overflow)
{
	struct profile_table t;
	const uint32_t max = 50000;

	ck_assert_int_eq(profile_table_init(&t, max), 0);
	for (uint32_t i = 0; i < max; i++) {
		/* Kernel-like addresses: few bits differ. */
		profile_table_add(&t, 0, 0xffffffff81000000ULL + 16 * i);
		if (i % 7 == 0)
			profile_table_add(&t, 0, 0xffffffff81000000ULL + 16 * i);
	}
	ck_assert_uint_eq(t.used, max);
	ck_assert_uint_ge(t.mask + 1, 2 * max);
	ck_assert_uint_le(t.mask + 1, 4 * max);
	ck_assert_uint_eq(t.dropped, 0);
	for (uint32_t i = 0; i < max; i++)
		ck_assert_uint_eq(profile_table_count(&t, 0, 0xffffffff81000000ULL + 16 * i),
				  i % 7 == 0 ? 2 : 1);
	profile_table_add(&t, 3, 0x1000);                /* new: dropped */
	profile_table_add(&t, 0, 0xffffffff81000000ULL); /* known: counted */
	ck_assert_uint_eq(t.dropped, 1);
	ck_assert_uint_eq(t.used, max);
	ck_assert_uint_eq(profile_table_count(&t, 3, 0x1000), 0);
	ck_assert_uint_eq(profile_table_count(&t, 0, 0xffffffff81000000ULL), 3);
	ck_assert_uint_eq(t.samples, max + (max + 6) / 7 + 2);
	profile_table_free(&t);
}
END_TEST

/* A count at UINT32_MAX stays there; further samples are dropped. */
START_TEST(test_saturation)
{
	struct profile_table t;
	struct profile_entry *e = NULL;

	ck_assert_int_eq(profile_table_init(&t, 4), 0);
	profile_table_add(&t, 0, 0x1234);
	for (uint32_t i = 0; i <= t.mask; i++)
		if (t.slots[i].count)
			e = &t.slots[i];
	ck_assert_ptr_nonnull(e);
	e->count = UINT32_MAX - 1;
	profile_table_add(&t, 0, 0x1234);
	profile_table_add(&t, 0, 0x1234);
	ck_assert_uint_eq(profile_table_count(&t, 0, 0x1234), UINT32_MAX);
	ck_assert_uint_eq(t.dropped, 1);
	profile_table_free(&t);
}
END_TEST

static void add_n(struct profile_table *t, unsigned cpl, uint64_t rip, unsigned n)
{
	while (n--)
		profile_table_add(t, cpl, rip);
}

/* Rows of two vCPUs: one row per (cpl, rip), counts summed, sorted by
 * count descending, ties by cpl then rip. */
START_TEST(test_rows)
{
	struct profile_table t[2];
	struct profile_row *rows;

	ck_assert_int_eq(profile_table_init(&t[0], 16), 0);
	ck_assert_int_eq(profile_table_init(&t[1], 16), 0);
	add_n(&t[0], 0, 0xa000, 3);
	add_n(&t[1], 0, 0xa000, 4); /* 7 in all */
	add_n(&t[0], 3, 0x400000, 5);
	add_n(&t[1], 0, 0xb000, 2);
	add_n(&t[0], 0, 0x9000, 2);
	add_n(&t[1], 3, 0x1000, 2);
	ck_assert_int_eq(profile_rows(t, 2, &rows), 5);
	ck_assert_uint_eq(rows[0].count, 7);
	ck_assert_uint_eq(rows[0].rip, 0xa000);
	ck_assert_uint_eq(rows[1].count, 5);
	ck_assert_uint_eq(rows[1].cpl, 3);
	ck_assert(rows[2].cpl == 0 && rows[2].rip == 0x9000 && rows[2].count == 2);
	ck_assert(rows[3].cpl == 0 && rows[3].rip == 0xb000 && rows[3].count == 2);
	ck_assert(rows[4].cpl == 3 && rows[4].rip == 0x1000 && rows[4].count == 2);
	free(rows);
	profile_table_free(&t[0]);
	profile_table_free(&t[1]);
}
END_TEST

START_TEST(test_write)
{
	struct profile_table t[2];
	char buf[512];
	FILE *f = tmpfile();
	size_t n;

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(profile_table_init(&t[0], 2), 0);
	ck_assert_int_eq(profile_table_init(&t[1], 2), 0);
	add_n(&t[0], 0, 0xffffffff81234567ULL, 3);
	add_n(&t[0], 3, 0x7f0000001000ULL, 1);
	add_n(&t[0], 3, 0x7f0000002000ULL, 1); /* table full: dropped */
	add_n(&t[1], 0, 0xffffffff81234567ULL, 1);
	ck_assert_int_eq(profile_write_tables(f, t, 2, 250), 2);
	rewind(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	ck_assert_str_eq(
		buf, "# kvisor profile: hz=250 vcpus=2 samples=6 dropped=1 rows=2 (count cpl rip)\n"
		     "4 0 ffffffff81234567\n"
		     "1 3 00007f0000001000\n");
	fclose(f);
	profile_table_free(&t[0]);
	profile_table_free(&t[1]);
}
END_TEST

START_TEST(test_write_empty)
{
	struct profile_table t;
	struct profile_row *rows = (void *)1;
	char buf[256];
	FILE *f = tmpfile();
	size_t n;

	ck_assert_int_eq(profile_table_init(&t, 8), 0);
	ck_assert_int_eq(profile_rows(&t, 1, &rows), 0);
	ck_assert_ptr_null(rows);
	ck_assert_int_eq(profile_write_tables(f, &t, 1, 1000), 0);
	rewind(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	ck_assert_str_eq(buf, "# kvisor profile: hz=1000 vcpus=1 samples=0 dropped=0 rows=0 "
			      "(count cpl rip)\n");
	fclose(f);
	profile_table_free(&t);
}
END_TEST

/* profile_create opens (truncates) FILE at once; a bad path fails then. */
START_TEST(test_create)
{
	char path[] = "/tmp/kvisor-profile-XXXXXX";
	struct profile *p;
	char buf[256];
	FILE *f;
	int fd = mkstemp(path);
	size_t n;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "old contents\n", 13), 13);
	close(fd);
	ck_assert_int_eq(profile_create(&p, path, 1000, 2), 0);
	f = fopen(path, "r");
	ck_assert_int_eq(fread(buf, 1, sizeof(buf), f), 0); /* truncated */
	fclose(f);
	log_threshold = LOG_ERR;
	ck_assert_int_eq(profile_write(p), 0);
	profile_destroy(p);
	f = fopen(path, "r");
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	unlink(path);
	ck_assert_str_eq(buf, "# kvisor profile: hz=1000 vcpus=2 samples=0 dropped=0 rows=0 "
			      "(count cpl rip)\n");
	log_threshold = -1;
	ck_assert_int_eq(profile_create(&p, "/nonexistent-dir/profile.txt", 1000, 1), -ENOENT);
}
END_TEST

static Suite *unit_suite(void)
{
	Suite *s = suite_create("profile");
	TCase *tc = tcase_create("table");

	tcase_add_test(tc, test_count);
	tcase_add_test(tc, test_init_limits);
	tcase_add_test(tc, test_grow_and_overflow);
	tcase_add_test(tc, test_saturation);
	tcase_add_test(tc, test_rows);
	tcase_add_test(tc, test_write);
	tcase_add_test(tc, test_write_empty);
	tcase_add_test(tc, test_create);
	suite_add_tcase(s, tc);
	return s;
}

#include "unit.h"
