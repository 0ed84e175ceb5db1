/* Per-CPU descriptor tables, MSRs, 4 KiB page tables and the LAPIC timer
 * for firmware that needs more than the runtime's BSP-only setup (lib/cpu.c). */
#ifndef FW_CPU_H
#define FW_CPU_H

#include "fw.h"

#define MSR_EFER     0xc0000080
#define MSR_STAR     0xc0000081
#define MSR_LSTAR    0xc0000082
#define MSR_FMASK    0xc0000084
#define MSR_FS_BASE  0xc0000100
#define MSR_GS_BASE  0xc0000101
#define MSR_KGS_BASE 0xc0000102
#define EFER_SCE     1

#define PTE_P  1ULL
#define PTE_W  2ULL
#define PTE_U  4ULL
#define PTE_PS 0x80ULL

static inline uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;

	asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return (uint64_t)hi << 32 | lo;
}

static inline void wrmsr(uint32_t msr, uint64_t v)
{
	asm volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

/* Load a GDT with the runtime's selectors (fw.h) and one TSS per CPU, and
 * this CPU's TSS (index < FW_MAX_CPUS, each index once) with RSP0 = (rsp0):
 * the stack of exceptions and interrupts from CPL3 on this CPU. These TSSes
 * have no I/O bitmap (port I/O at CPL3 faults unless IOPL allows it). */
void fw_cpu_tss(unsigned index, uint64_t rsp0);

/* Replace the 2 MiB page of the identity map that holds (va) by a table of
 * 4 KiB pages: the same identity mapping (writable, user) if (identity),
 * else none present. Returns the table (its entries may then be changed,
 * with invlpg where a present entry changes); at most 4 tables in all.
 * Flushes this CPU's TLB only: call it before starting the others. */
uint64_t *fw_pt_4k(uint64_t va, bool identity);

/* Local APIC timer of this CPU: periodic (vector) every (count) bus cycles
 * (1 ns on KVM) with the divider at 1; count 0 stops and masks it. */
void fw_lapic_timer(uint8_t vector, uint32_t count);
void fw_lapic_eoi(void);

#endif
