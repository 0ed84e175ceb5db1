/* IDT, TSS and the C side of exceptions: per-vector handlers, the return
 * from CPL3, and a FAIL report for anything unexpected. */
#include "fw.h"

struct fw_gate {
	uint16_t off_lo, sel;
	uint8_t ist, type;
	uint16_t off_mid;
	uint32_t off_hi, zero;
};

#define GATE_INTR_DPL0 0x8e
#define GATE_INTR_DPL3 0xee
#define TSS_AVAIL64    0x89

static struct fw_gate fw_idt[256] __attribute__((aligned(16)));
static fw_trap_fn fw_trap_fns[256];
uint8_t fw_tss[FW_TSS_SIZE] __attribute__((aligned(16)));
unsigned fw_user_ret_vector;

static const char *const fw_vector_names[32] = {
	"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS",
	"#NP", "#SS", "#GP", "#PF", "RSV", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
};

const char *fw_vector_name(unsigned vector)
{
	if (vector < ARRAY_SIZE(fw_vector_names) && fw_vector_names[vector])
		return fw_vector_names[vector];
	return vector < 32 ? "reserved" : "interrupt";
}

static void fw_set_gate(unsigned vector, uint8_t type)
{
	uint64_t off = fw_trap_stubs[vector];
	struct fw_gate *g = &fw_idt[vector];

	g->off_lo = (uint16_t)off;
	g->sel = FW_KERNEL_CS;
	g->ist = 0;
	g->type = type;
	g->off_mid = (uint16_t)(off >> 16);
	g->off_hi = (uint32_t)(off >> 32);
	g->zero = 0;
}

void fw_set_trap_handler(unsigned vector, fw_trap_fn fn)
{
	if (vector < ARRAY_SIZE(fw_trap_fns))
		fw_trap_fns[vector] = fn;
}

void fw_idt_load(void)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) idtr = { sizeof(fw_idt) - 1, (uintptr_t)fw_idt };

	asm volatile("lidt %0" : : "m"(idtr));
}

/* Load the TSS (for RSP0) and the IDT; #BP, #OF and the user-return
 * vector may be raised from CPL3 by `int3`, `into` and `int n`. */
static void fw_trap_init(void)
{
	uint64_t base = (uintptr_t)fw_tss;

	/* All ports allowed at CPL3 (the bitmap is zero, .bss), see fw_user_call. */
	fw_tss[102] = FW_TSS_IOMAP & 0xff;
	fw_tss[103] = FW_TSS_IOMAP >> 8;
	fw_tss[FW_TSS_SIZE - 1] = 0xff;
	fw_gdt[FW_TSS_SEL / 8] = (sizeof(fw_tss) - 1) | (base & 0xffffff) << 16 |
				 (uint64_t)TSS_AVAIL64 << 40 | (base >> 24 & 0xff) << 56;
	fw_gdt[FW_TSS_SEL / 8 + 1] = base >> 32;
	asm volatile("ltr %w0" : : "r"(FW_TSS_SEL));
	for (unsigned v = 0; v < 256; v++)
		fw_set_gate(v, v == 3 || v == 4 || v == FW_VEC_USER_RET ? GATE_INTR_DPL3 :
									  GATE_INTR_DPL0);
	fw_idt_load();
}

void fw_lib_init(void)
{
	fw_trap_init();
}

void fw_trap(struct fw_frame *f)
{
	bool user = (f->cs & 3) == 3;

	/* The return from fw_user_call comes first: handlers never see it. */
	if (user && (f->vector == FW_VEC_USER_RET || ((f->vector == 6 || f->vector == 13) &&
						      f->rip == (uintptr_t)fw_user_trap_insn))) {
		fw_user_ret_vector = (unsigned)f->vector;
		fw_user_leave(f->rdi);
	}
	if (fw_trap_fns[f->vector] && fw_trap_fns[f->vector](f))
		return;
	fw_fail(__FILE__, __LINE__,
		"unexpected exception %s (vector %llu) at CPL%llu rip=0x%llx err=0x%llx cr2=0x%llx rsp=0x%llx",
		fw_vector_name((unsigned)f->vector), (unsigned long long)f->vector,
		(unsigned long long)(f->cs & 3), (unsigned long long)f->rip,
		(unsigned long long)f->error, (unsigned long long)read_cr2(),
		(unsigned long long)f->rsp);
}
