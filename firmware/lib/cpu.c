/* Per-CPU GDT/TSS, 4 KiB page tables inside the identity map, LAPIC timer
 * (see cpu.h). */
#include "cpu.h"

#define GDT_RUNTIME 8 /* the runtime's entries, up to FW_TSS_SEL */
#define APIC_EOI    0xb0
#define APIC_SVR    0xf0
#define APIC_LVTT   0x320
#define APIC_TMICT  0x380
#define APIC_TDCR   0x3e0

struct fw_tss64 {
	uint32_t rsvd0;
	uint64_t rsp0, rsp1, rsp2, rsvd1, ist[7], rsvd2;
	uint16_t rsvd3, iomap; /* past the limit: no I/O bitmap */
} __attribute__((packed));

static struct fw_tss64 fw_cpu_tsses[FW_MAX_CPUS] __attribute__((aligned(16)));
static uint64_t fw_cpu_gdt[GDT_RUNTIME + 2 * FW_MAX_CPUS] __attribute__((aligned(16)));
static uint64_t fw_pts[4][512] __attribute__((aligned(4096)));
static unsigned fw_pts_used;

void fw_cpu_tss(unsigned index, uint64_t rsp0)
{
	struct fw_tss64 *t = &fw_cpu_tsses[index];
	uint64_t base = (uintptr_t)t;
	unsigned sel = GDT_RUNTIME * 8 + 16 * index;
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) gdtr = { sizeof(fw_cpu_gdt) - 1, (uintptr_t)fw_cpu_gdt };

	if (index >= FW_MAX_CPUS)
		FW_FAIL("cpu index %u: at most %u", index, FW_MAX_CPUS);
	/* Same values from every CPU: racing copies are harmless. */
	for (unsigned i = 0; i < GDT_RUNTIME; i++)
		fw_cpu_gdt[i] = fw_gdt[i];
	t->rsp0 = rsp0;
	t->iomap = sizeof(*t);
	fw_cpu_gdt[sel / 8] = (sizeof(*t) - 1) | (base & 0xffffff) << 16 | 0x89ULL << 40 |
			      (base >> 24 & 0xff) << 56;
	fw_cpu_gdt[sel / 8 + 1] = base >> 32;
	asm volatile("lgdt %0; ltr %w1" : : "m"(gdtr), "r"(sel) : "memory");
}

uint64_t *fw_pt_4k(uint64_t va, bool identity)
{
	uint64_t cr3, *pml4, *pdpt, *pd, *pt, base = va & ~0x1fffffULL;
	unsigned i = (unsigned)(va >> 21 & 511);

	asm volatile("mov %%cr3, %0" : "=r"(cr3));
	pml4 = (uint64_t *)(cr3 & ~0xfffULL);
	pdpt = (uint64_t *)(pml4[va >> 39 & 511] & ~0xfffULL);
	pd = (uint64_t *)(pdpt[va >> 30 & 511] & ~0xfffULL);
	if (va >> 32 || !(pd[i] & PTE_PS) || fw_pts_used == ARRAY_SIZE(fw_pts))
		FW_FAIL("cannot split the 2 MiB page at 0x%lx", base);
	pt = fw_pts[fw_pts_used++];
	for (unsigned k = 0; k < 512; k++)
		pt[k] = identity ? (base + ((uint64_t)k << 12)) | PTE_P | PTE_W | PTE_U : 0;
	/* The same translations as before (or fewer): flush them all. */
	pd[i] = (uintptr_t)pt | PTE_P | PTE_W | PTE_U;
	asm volatile("mov %0, %%cr3" : : "r"(cr3) : "memory");
	return pt;
}

static void fw_lapic_write(unsigned reg, uint32_t v)
{
	mmio_write32(LAYOUT_LAPIC_GPA + reg, v);
}

void fw_lapic_timer(uint8_t vector, uint32_t count)
{
	fw_lapic_write(APIC_SVR, mmio_read32(LAYOUT_LAPIC_GPA + APIC_SVR) | 0x1ff);
	fw_lapic_write(APIC_TDCR, 0xb);                                  /* divide by 1 */
	fw_lapic_write(APIC_LVTT, count ? vector | 1u << 17 : 1u << 16); /* periodic : masked */
	fw_lapic_write(APIC_TMICT, count);
}

void fw_lapic_eoi(void)
{
	fw_lapic_write(APIC_EOI, 0);
}
