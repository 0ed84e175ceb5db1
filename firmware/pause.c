/* Pause and resume (tests/firmware/run t_pause*): the bootstrap CPU counts
 * in a CPL3 loop and reports every PAUSE_TICK iterations through the test
 * port ("SYNC <n> tick"), with the `out` inside the loop function, so a
 * vCPU parked by a pause has its RIP in pause_count; other CPUs halt. */
#include "fw.h"

#define PAUSE_TICK (1ULL << 27) /* tens of ms at native speed */

/* Built at CPL0, only the count changes at CPL3. Identity-mapped: its
 * address is its guest-physical address, below 4 GiB. */
static struct testdev_msg tick_msg = { .magic = TESTDEV_MAGIC, .type = TESTDEV_SYNC };
static const char tick_text[] = "tick";

uint64_t pause_count(uint64_t arg);

/* Runs at CPL3 and never returns; not inlined so it has a symbol of its own. */
__attribute__((noinline)) uint64_t pause_count(uint64_t arg)
{
	uint64_t x = 0;

	for (uint64_t n = 1;; n++) {
		for (uint64_t i = 0; i < PAUSE_TICK; i++)
			asm volatile("" : "+r"(x)); /* keep the loop */
		tick_msg.arg = n;
		outl(LAYOUT_TESTDEV_PORT, (uint32_t)(uintptr_t)&tick_msg);
	}
	return x;
}

static volatile unsigned aps_idle;

static void ap_idle(unsigned index)
{
	(void)index;
	/* Returning halts the processor (fw_smp_start): a few instructions
	 * after this, long before the first tick. */
	__atomic_fetch_add(&aps_idle, 1, __ATOMIC_RELEASE);
}

void main(void)
{
	uint8_t apic_ids[FW_MAX_CPUS];
	unsigned n, started = 0;

	fw_printf("kvisor firmware: pause\n");
	n = fw_acpi_cpus(apic_ids, ARRAY_SIZE(apic_ids));
	if (n > 1)
		started = fw_smp_start(ap_idle, apic_ids, n);
	while (__atomic_load_n(&aps_idle, __ATOMIC_ACQUIRE) != started)
		asm volatile("pause");
	fw_sync(1, "%u aps halted, counting at cpl3", started);
	tick_msg.msg_gpa = (uintptr_t)tick_text;
	fw_user_call(pause_count, 0);
	FW_FAIL("the counting loop returned");
}
