/* Unit tests of the port/MMIO bus: registration rules and dispatch. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "kvisor/bus.h"

struct probe {
	uint64_t last_off;
	uint32_t last_len;
	unsigned reads, writes;
	uint8_t wbuf[8];
};

static void probe_read(void *opaque, uint64_t off, void *data, uint32_t len)
{
	struct probe *p = opaque;

	p->reads++;
	p->last_off = off;
	p->last_len = len;
	memset(data, 0x5a, len);
}

static void probe_write(void *opaque, uint64_t off, const void *data, uint32_t len)
{
	struct probe *p = opaque;

	p->writes++;
	p->last_off = off;
	p->last_len = len;
	memcpy(p->wbuf, data, len);
}

static const struct bus_ops probe_ops = { .read = probe_read, .write = probe_write };

START_TEST(test_register_rules)
{
	struct bus b;
	struct probe p = { 0 };

	ck_assert_int_eq(bus_init(&b, "t"), 0);
	ck_assert_int_eq(bus_register(&b, 0x100, 0, &probe_ops, &p), -EINVAL);
	ck_assert_int_eq(bus_register(&b, UINT64_MAX, 2, &probe_ops, &p), -EINVAL);
	ck_assert_int_eq(bus_register(&b, UINT64_MAX, 1, &probe_ops, &p), 0);
	ck_assert_int_eq(bus_register(&b, 0x100, 0x10, &probe_ops, &p), 0);
	ck_assert_int_eq(bus_register(&b, 0x10f, 1, &probe_ops, &p), -EEXIST);
	ck_assert_int_eq(bus_register(&b, 0xf0, 0x11, &probe_ops, &p), -EEXIST);
	ck_assert_int_eq(bus_register(&b, 0x80, 0x200, &probe_ops, &p), -EEXIST);
	ck_assert_int_eq(bus_register(&b, 0x100, 0x10, &probe_ops, &p), -EEXIST);
	ck_assert_int_eq(bus_register(&b, 0xf0, 0x10, &probe_ops, &p), 0);
	ck_assert_int_eq(bus_register(&b, 0x110, 0x10, &probe_ops, &p), 0);
	ck_assert_int_eq(bus_register(&b, 0, 1, NULL, &p), -EINVAL);
	ck_assert_uint_eq(b.nr, 4);
	for (unsigned i = 1; i < b.nr; i++)
		ck_assert(b.ranges[i - 1].base < b.ranges[i].base);
	bus_destroy(&b);
}
END_TEST

START_TEST(test_dispatch)
{
	struct bus b;
	struct probe p = { 0 }, q = { 0 };
	uint32_t v = 0x11223344;
	uint8_t buf[8];

	ck_assert_int_eq(bus_init(&b, "t"), 0);
	ck_assert_int_eq(bus_register(&b, 0x3f8, 8, &probe_ops, &p), 0);
	ck_assert_int_eq(bus_register(&b, 0x400, 4, &probe_ops, &q), 0);
	ck_assert(bus_access(&b, 0x3fd, buf, 1, false));
	ck_assert_uint_eq(p.last_off, 5);
	ck_assert_uint_eq(buf[0], 0x5a);
	ck_assert(bus_access(&b, 0x400, &v, 4, true));
	ck_assert_uint_eq(q.writes, 1);
	ck_assert_uint_eq(q.last_off, 0);
	ck_assert_mem_eq(q.wbuf, &v, 4);
	/* Unclaimed: all-ones, no device called. */
	memset(buf, 0, sizeof(buf));
	ck_assert(!bus_access(&b, 0x500, buf, 8, false));
	for (int i = 0; i < 8; i++)
		ck_assert_uint_eq(buf[i], 0xff);
	/* Straddling the end of a range is not claimed. */
	ck_assert(!bus_access(&b, 0x3fe, buf, 4, false));
	ck_assert(!bus_access(&b, 0x402, &v, 4, true));
	ck_assert_uint_eq(q.writes, 1);
	/* Bad lengths and wrap-around. */
	ck_assert(!bus_access(&b, 0x3f8, buf, 0, false));
	ck_assert(!bus_access(&b, UINT64_MAX, buf, 2, false));
	ck_assert_uint_eq(b.unclaimed, 5);
	bus_destroy(&b);
}
END_TEST

START_TEST(test_unregister)
{
	struct bus b;
	struct probe p = { 0 }, q = { 0 };
	uint8_t c = 0;

	ck_assert_int_eq(bus_init(&b, "t"), 0);
	ck_assert_int_eq(bus_register(&b, 0x10, 4, &probe_ops, &p), 0);
	ck_assert_int_eq(bus_unregister(&b, 0x10, &q), -ENOENT);
	ck_assert_int_eq(bus_unregister(&b, 0x10, &p), 0);
	ck_assert(!bus_access(&b, 0x10, &c, 1, false));
	ck_assert_int_eq(bus_register(&b, 0x10, 4, &probe_ops, &q), 0);
	ck_assert(bus_access(&b, 0x13, &c, 1, false));
	ck_assert_uint_eq(q.reads, 1);
	bus_destroy(&b);
}
END_TEST

START_TEST(test_many_ranges)
{
	struct bus b;
	struct probe p = { 0 };
	uint8_t c;

	ck_assert_int_eq(bus_init(&b, "t"), 0);
	/* Registered out of order; lookup must still find each one. */
	for (unsigned i = 0; i < 200; i++)
		ck_assert_int_eq(bus_register(&b, ((i * 37) % 200) * 0x10, 8, &probe_ops, &p), 0);
	for (unsigned i = 0; i < 200; i++) {
		ck_assert(bus_access(&b, i * 0x10 + 7, &c, 1, false));
		ck_assert_uint_eq(p.last_off, 7);
		ck_assert(!bus_access(&b, i * 0x10 + 8, &c, 1, false));
	}
	bus_destroy(&b);
}
END_TEST

static Suite *unit_suite(void)
{
	Suite *s = suite_create("bus");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_register_rules);
	tcase_add_test(tc, test_dispatch);
	tcase_add_test(tc, test_unregister);
	tcase_add_test(tc, test_many_ranges);
	suite_add_tcase(s, tc);
	return s;
}

#include "unit.h"
