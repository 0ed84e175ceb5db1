/* SMP: find the processors in the MADT, start the others with INIT/SIPI,
 * each reports its APIC ID, then all increment one counter with locked
 * instructions. fw.ap=fail|triple: the last AP fails or triple-faults. */
#include "fw.h"

#define INCS 20000

static uint8_t apic_ids[FW_MAX_CPUS];
static volatile unsigned go, finished;
static volatile uint64_t counter;

static void hammer(void)
{
	for (unsigned i = 0; i < INCS; i++)
		__atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
}

static unsigned last_ap;

static void ap_main(unsigned index)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) no_idt = { 0, 0 };

	fw_sync(10 + index, "cpu %u up, apic id %u", index, fw_apic_id());
	if (index == last_ap && fw_cmdline_is("fw.ap", "fail"))
		FW_FAIL("failure on cpu %u", index);
	if (index == last_ap && fw_cmdline_is("fw.ap", "triple"))
		asm volatile("lidt %0; ud2" : : "m"(no_idt));
	while (!__atomic_load_n(&go, __ATOMIC_ACQUIRE))
		asm volatile("pause");
	hammer();
	__atomic_fetch_add(&finished, 1, __ATOMIC_RELEASE);
}

void main(void)
{
	unsigned n, started;

	fw_printf("kvisor firmware: smp\n");
	n = fw_acpi_cpus(apic_ids, ARRAY_SIZE(apic_ids));
	if (fw_cmdline_u64("fw.cpus", n) != n)
		FW_FAIL("MADT lists %u processors, fw.cpus=%lu", n, fw_cmdline_u64("fw.cpus", 0));
	fw_sync(1, "%u cpus in the MADT, bsp apic id %u", n, fw_apic_id());
	last_ap = n - 1;
	started = fw_smp_start(ap_main, apic_ids, n);
	FW_ASSERT_EQ(started, n - 1);
	fw_sync(2, "%u aps started", started);
	__atomic_store_n(&go, 1, __ATOMIC_RELEASE);
	hammer();
	while (__atomic_load_n(&finished, __ATOMIC_ACQUIRE) != started)
		asm volatile("pause");
	FW_ASSERT_EQ(counter, (uint64_t)INCS * n);
	fw_sync(3, "counter %lu", counter);
}
