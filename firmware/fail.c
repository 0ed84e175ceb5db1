/* Negative test of the report path: FW_FAIL must make kvisor print
 * "testdev: FAIL firmware/fail.c:<line>: <message>" and exit 1. */
#include "fw.h"

void main(void)
{
	fw_printf("kvisor firmware: fail\n");
	fw_sync(1, "before the failure");
	FW_FAIL("deliberate failure %d of %s", 1, "fail");
}
