/* Shared main() for the check-based unit tests: each file defines
 * unit_suite() and includes this header once. */
#ifndef KVISOR_TESTS_UNIT_H
#define KVISOR_TESTS_UNIT_H

#include <check.h>
#include <stdlib.h>

static Suite *unit_suite(void);

int main(void)
{
	SRunner *sr = srunner_create(unit_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
