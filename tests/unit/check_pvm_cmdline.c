/* The kvm-pvm command line: kvisor's parameters added, the user's
 * clearcpuid= merged into kvisor's, "--" and what follows kept last. */
#include <stdlib.h>
#include <string.h>

#include "kvisor/pvm.h"

#include "unit.h"

#define P "noxsave nofsgsbase nopcid noinvpcid clearcpuid=popcnt,smap,smep,rdpid,ssse3"

static void check(const char *user, const char *want)
{
	char *got = pvm_cmdline_merge(user);

	ck_assert_ptr_nonnull(got);
	ck_assert_str_eq(got, want);
	free(got);
}

START_TEST(test_plain)
{
	check("console=ttyS0 panic=-1", "console=ttyS0 panic=-1 " P " mitigations=off");
}
END_TEST

START_TEST(test_empty)
{
	check("", P " mitigations=off");
	check("   ", P " mitigations=off");
	check(NULL, P " mitigations=off");
}
END_TEST

START_TEST(test_clearcpuid_merged)
{
	check("console=ttyS0 clearcpuid=cx16 quiet",
	      "console=ttyS0 quiet " P ",cx16 mitigations=off");
	check("clearcpuid=cx16,avx clearcpuid=erms", P ",cx16,avx,erms mitigations=off");
	/* Only whole tokens: other parameters that contain the name stay. */
	check("foo.clearcpuid=1 xclearcpuid=2",
	      "foo.clearcpuid=1 xclearcpuid=2 " P " mitigations=off");
	/* An empty clearcpuid= is left as it is. */
	check("clearcpuid= quiet", "clearcpuid= quiet " P " mitigations=off");
}
END_TEST

START_TEST(test_init_args_stay_last)
{
	check("console=ttyS0 -- single clearcpuid=x",
	      "console=ttyS0 " P " mitigations=off -- single clearcpuid=x");
	check("--", P " mitigations=off --");
	/* "--" inside a quoted value is not the separator. */
	check("a=\"x -- y\" b", "a=\"x -- y\" b " P " mitigations=off");
	check("--x", "--x " P " mitigations=off");
}
END_TEST

START_TEST(test_whitespace_and_quotes)
{
	check("  a\tb\n c  ", "a b c " P " mitigations=off");
	check("dyndbg=\"file x.c +p\" clearcpuid=cx16",
	      "dyndbg=\"file x.c +p\" " P ",cx16 mitigations=off");
	/* An unterminated quote runs to the end, as in the kernel. */
	check("a=\"b c", "a=\"b c " P " mitigations=off");
}
END_TEST

static Suite *unit_suite(void)
{
	Suite *s = suite_create("pvm_cmdline");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_plain);
	tcase_add_test(tc, test_empty);
	tcase_add_test(tc, test_clearcpuid_merged);
	tcase_add_test(tc, test_init_args_stay_last);
	tcase_add_test(tc, test_whitespace_and_quotes);
	suite_add_tcase(s, tc);
	return s;
}
