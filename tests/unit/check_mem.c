/* Unit tests of guest RAM layout, the checked gpa translator and the
 * advice given for guest RAM (KSM). */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvisor/layout.h"
#include "kvisor/mem.h"

START_TEST(test_sizes)
{
	struct guest_mem m;

	ck_assert_int_eq(mem_init(&m, 0), -EINVAL);
	ck_assert_int_eq(mem_init(&m, MEM_MIN_SIZE - 4096), -EINVAL);
	ck_assert_int_eq(mem_init(&m, MEM_MIN_SIZE + 1), -EINVAL);
	ck_assert_int_eq(mem_init(&m, 256ULL << 20), 0);
	ck_assert_uint_eq(m.nr_regions, 1);
	ck_assert_uint_eq(mem_low_size(&m), 256ULL << 20);
	ck_assert_uint_eq(mem_high_size(&m), 0);
	mem_destroy(&m);
	/* 4 GiB of RAM: 3 GiB below the hole, 1 GiB from 4 GiB. */
	ck_assert_int_eq(mem_init(&m, 4ULL << 30), 0);
	ck_assert_uint_eq(m.nr_regions, 2);
	ck_assert_uint_eq(mem_low_size(&m), LAYOUT_MMIO_HOLE_GPA);
	ck_assert_uint_eq(m.regions[1].gpa, 4ULL << 30);
	ck_assert_uint_eq(mem_high_size(&m), 1ULL << 30);
	ck_assert_uint_eq(m.ram_size, 4ULL << 30);
	mem_destroy(&m);
}
END_TEST

START_TEST(test_translate)
{
	struct guest_mem m;
	uint64_t top = 64ULL << 20;
	uint8_t buf[16];

	ck_assert_int_eq(mem_init(&m, top), 0);
	ck_assert_ptr_eq(mem_gpa_ptr(&m, 0, 1), m.regions[0].hva);
	ck_assert_ptr_eq(mem_gpa_ptr(&m, top - 16, 16), m.regions[0].hva + top - 16);
	ck_assert_ptr_null(mem_gpa_ptr(&m, top - 16, 17));
	ck_assert_ptr_null(mem_gpa_ptr(&m, top, 0));
	ck_assert_ptr_nonnull(mem_gpa_ptr(&m, top - 1, 0));
	ck_assert_ptr_null(mem_gpa_ptr(&m, UINT64_MAX, 2));
	ck_assert_ptr_null(mem_gpa_ptr(&m, 16, UINT64_MAX));
	ck_assert_ptr_null(mem_gpa_ptr(&m, UINT64_MAX - 7, 16));
	memset(buf, 0xab, sizeof(buf));
	ck_assert_int_eq(mem_write(&m, 0x1000, buf, sizeof(buf)), 0);
	ck_assert_int_eq(m.regions[0].hva[0x100f], 0xab);
	ck_assert_int_eq(mem_write(&m, top - 8, buf, sizeof(buf)), -EFAULT);
	ck_assert_int_eq(m.regions[0].hva[top - 8], 0); /* nothing partial */
	ck_assert_int_eq(mem_read(&m, top - 8, buf, sizeof(buf)), -EFAULT);
	mem_destroy(&m);
}
END_TEST

START_TEST(test_hole_is_not_ram)
{
	struct guest_mem m;

	ck_assert_int_eq(mem_init(&m, 4ULL << 30), 0);
	ck_assert_ptr_nonnull(mem_gpa_ptr(&m, LAYOUT_MMIO_HOLE_GPA - 4, 4));
	ck_assert_ptr_null(mem_gpa_ptr(&m, LAYOUT_MMIO_HOLE_GPA - 4, 8));
	ck_assert_ptr_null(mem_gpa_ptr(&m, LAYOUT_IOAPIC_GPA, 4));
	ck_assert_ptr_nonnull(mem_gpa_ptr(&m, 4ULL << 30, 4096));
	/* A range across both regions is refused even though both ends are RAM. */
	ck_assert_ptr_null(
		mem_gpa_ptr(&m, LAYOUT_MMIO_HOLE_GPA - 4, (4ULL << 30) - LAYOUT_MMIO_HOLE_GPA + 8));
	mem_destroy(&m);
}
END_TEST

START_TEST(test_read_str)
{
	struct guest_mem m;
	uint64_t top = 16ULL << 20;
	char s[8];

	ck_assert_int_eq(mem_init(&m, top), 0);
	ck_assert_int_eq(mem_write(&m, 0x2000, "hello", 6), 0);
	ck_assert_int_eq(mem_read_str(&m, 0x2000, s, sizeof(s)), 5);
	ck_assert_str_eq(s, "hello");
	ck_assert_int_eq(mem_write(&m, 0x3000, "overlong", 8), 0);
	ck_assert_int_eq(mem_read_str(&m, 0x3000, s, sizeof(s)), 7);
	ck_assert_str_eq(s, "overlon");
	/* Unterminated at the end of RAM. */
	memset(m.regions[0].hva + top - 3, 'x', 3);
	ck_assert_int_eq(mem_read_str(&m, top - 3, s, sizeof(s)), -EFAULT);
	ck_assert_str_eq(s, "");
	ck_assert_int_eq(mem_read_str(&m, UINT64_MAX, s, sizeof(s)), -EFAULT);
	mem_destroy(&m);
}
END_TEST

/* Regions are 2 MiB-aligned (huge pages); mem_release drops whole pages only. */
START_TEST(test_release)
{
	struct guest_mem m;
	unsigned char vec[4];
	uint8_t *p;

	ck_assert_int_eq(mem_init(&m, 64ULL << 20), 0);
	ck_assert_uint_eq((uintptr_t)m.regions[0].hva & ((2u << 20) - 1), 0);
	p = mem_gpa_ptr(&m, 0x200000, 4 * 4096);
	memset(p, 0xab, 4 * 4096);
	/* From the middle of page 0 to the middle of page 3: pages 1 and 2 go. */
	ck_assert_int_eq(mem_release(&m, 0x200000 + 100, 3 * 4096), 0);
	ck_assert_uint_eq(p[100], 0xab);
	ck_assert_uint_eq(p[4095], 0xab);
	ck_assert_uint_eq(p[3 * 4096 + 99], 0xab);
	ck_assert_uint_eq(p[3 * 4096 + 100], 0xab);
	ck_assert_int_eq(mincore(p, 4 * 4096, vec), 0);
	ck_assert_uint_eq(vec[1] & 1, 0);
	ck_assert_uint_eq(vec[2] & 1, 0);
	ck_assert_uint_eq(p[4096], 0);
	ck_assert_uint_eq(p[3 * 4096 - 1], 0);
	ck_assert_int_eq(mem_release(&m, 0x200000, 10), 0); /* no whole page: nothing */
	ck_assert_uint_eq(p[0], 0xab);
	ck_assert_int_eq(mem_release(&m, (64ULL << 20) - 4096, 8192), -EFAULT);
	ck_assert_int_eq(mem_release(&m, ~0ULL - 10, 100), -EFAULT);
	mem_destroy(&m);
}
END_TEST

/* The VmFlags of the mapping that contains (p), from /proc/self/smaps. */
static void vm_flags(const void *p, char *flags, size_t size)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	bool in = false;

	ck_assert_ptr_nonnull(f);
	flags[0] = '\0';
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) /* a mapping's first line */
			in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
		else if (in && !strncmp(line, "VmFlags:", 8)) {
			snprintf(flags, size, "%s", line + 8);
			break;
		}
	}
	fclose(f);
	ck_assert_msg(flags[0], "no VmFlags for %p in /proc/self/smaps", p);
}

/* Both regions are offered to KSM ("mg"), where the kernel has KSM. */
START_TEST(test_mergeable)
{
	struct guest_mem m;
	char flags[512];

	if (access("/sys/kernel/mm/ksm", F_OK)) {
		fprintf(stderr, "check_mem: no KSM in this kernel, mergeable not checked\n");
		return;
	}
	ck_assert_int_eq(mem_init(&m, 4ULL << 30), 0);
	for (unsigned i = 0; i < m.nr_regions; i++) {
		vm_flags(m.regions[i].hva, flags, sizeof(flags));
		ck_assert_msg(strstr(flags, " mg"), "region %u not mergeable: VmFlags:%s", i,
			      flags);
		vm_flags(m.regions[i].hva + m.regions[i].size - 1, flags, sizeof(flags));
		ck_assert_msg(strstr(flags, " mg"), "region %u end not mergeable: VmFlags:%s", i,
			      flags);
	}
	mem_destroy(&m);
}
END_TEST

static Suite *unit_suite(void)
{
	Suite *s = suite_create("mem");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_sizes);
	tcase_add_test(tc, test_translate);
	tcase_add_test(tc, test_hole_is_not_ram);
	tcase_add_test(tc, test_read_str);
	tcase_add_test(tc, test_release);
	tcase_add_test(tc, test_mergeable);
	suite_add_tcase(s, tc);
	return s;
}

#include "unit.h"
