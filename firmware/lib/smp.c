/* Starting the application processors: INIT and SIPI through the local
 * APIC, one at a time, into long mode (lib/entry.S), each on its own stack
 * running one C function at CPL0 with the shared IDT. */
#include "fw.h"

#define AP_TRAMP_GPA 0x70000ULL /* below 1 MiB, above kvisor's 0x500-0x2ffff */
#define APIC_ID      0x20
#define APIC_SVR     0xf0
#define APIC_ICR_LO  0x300
#define APIC_ICR_HI  0x310
#define ICR_INIT     0x4500 /* INIT, level assert */
#define ICR_SIPI     0x4600 /* start-up, vector = page number of the code */
#define ICR_BUSY     (1u << 12)
#define AP_TIMEOUT   20000000000ULL /* TSC ticks: >= 5 s at <= 4 GHz */

uint64_t fw_ap_stack; /* read by fw_ap_entry64 */
static uint8_t fw_ap_stacks[FW_MAX_CPUS][8192] __attribute__((aligned(16)));
static volatile unsigned fw_ap_index, fw_ap_started;
static fw_ap_fn fw_ap_func;

static uint32_t lapic_read(unsigned reg)
{
	return mmio_read32(LAYOUT_LAPIC_GPA + reg);
}

static void lapic_write(unsigned reg, uint32_t v)
{
	mmio_write32(LAYOUT_LAPIC_GPA + reg, v);
}

unsigned fw_apic_id(void)
{
	return lapic_read(APIC_ID) >> 24;
}

/* fw_ap_entry64 lands here on the AP's stack. */
void fw_ap_start(void);
void fw_ap_start(void)
{
	unsigned index = fw_ap_index;

	fw_idt_load();
	__atomic_store_n(&fw_ap_started, index, __ATOMIC_RELEASE);
	fw_ap_func(index);
	fw_halt();
}

static void fw_ipi(unsigned apic_id, uint32_t icr)
{
	lapic_write(APIC_ICR_HI, apic_id << 24);
	lapic_write(APIC_ICR_LO, icr);
	while (lapic_read(APIC_ICR_LO) & ICR_BUSY)
		asm volatile("pause");
}

static bool fw_ap_wait(unsigned index, uint64_t ticks)
{
	uint64_t t0 = rdtsc();

	while (__atomic_load_n(&fw_ap_started, __ATOMIC_ACQUIRE) != index) {
		if (rdtsc() - t0 > ticks)
			return false;
		asm volatile("pause");
	}
	return true;
}

unsigned fw_smp_start(fw_ap_fn fn, const uint8_t *apic_ids, unsigned n)
{
	unsigned bsp = fw_apic_id(), index = 0;

	if (n > FW_MAX_CPUS)
		FW_FAIL("%u CPUs: the firmware supports %u", n, FW_MAX_CPUS);
	fw_ap_func = fn;
	memcpy((void *)(uintptr_t)AP_TRAMP_GPA, fw_ap_tramp, fw_ap_tramp_end - fw_ap_tramp);
	lapic_write(APIC_SVR, lapic_read(APIC_SVR) | 0x1ff); /* enabled, spurious 0xff */
	for (unsigned i = 0; i < n; i++) {
		if (apic_ids[i] == bsp)
			continue;
		index++;
		fw_ap_index = index;
		fw_ap_stack = (uintptr_t)fw_ap_stacks[index] + sizeof(fw_ap_stacks[index]);
		fw_ipi(apic_ids[i], ICR_INIT);
		fw_ipi(apic_ids[i], ICR_SIPI | (AP_TRAMP_GPA >> 12));
		/* The second SIPI of the MP spec, only if the first was missed. */
		if (!fw_ap_wait(index, AP_TIMEOUT / 100)) {
			fw_ipi(apic_ids[i], ICR_SIPI | (AP_TRAMP_GPA >> 12));
			if (!fw_ap_wait(index, AP_TIMEOUT))
				FW_FAIL("CPU with APIC ID %u did not start", apic_ids[i]);
		}
	}
	return index;
}
