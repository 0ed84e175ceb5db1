/* Running a function at CPL3 on its own stack (see fw_user_call in fw.h). */
#include "fw.h"

static uint8_t fw_user_stack[16384] __attribute__((aligned(16)));

uint64_t fw_user_call(fw_user_fn fn, uint64_t arg)
{
	return fw_user_enter(fn, arg, (uintptr_t)(fw_user_stack + sizeof(fw_user_stack)));
}
