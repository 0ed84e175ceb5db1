/* Triple fault on purpose: with an empty IDT, #UD cannot be delivered, nor
 * the #GP and #DF that follow; kvisor must report it and exit 1. */
#include "fw.h"

void main(void)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) empty = { 0, 0 };

	fw_printf("kvisor firmware: triple\n");
	fw_sync(1, "loading an empty IDT");
	asm volatile("lidt %0; ud2" : : "m"(empty));
	FW_FAIL("survived #UD with an empty IDT");
}
