/* Instructions at CPL0 that kvm-pvm rejects and kvisor completes with its
 * decoder (src/pvm/emulate*.c), beyond int3/fwait: `int n` through DPL0
 * gates (and `int $3`, cd 03), fwait raising #NM (CR0.TS) and #MF (an
 * unmasked x87 exception pending). Each checked against what the CPU does. */
#include "fw.h"
#include "insn_test.h"

#define FL_CF  0x1ULL
#define FL_ZF  0x40ULL
#define FL_SF  0x80ULL
#define CR0_TS 0x8ULL
#define FSW_ES 0x80
#define VEC_A  0x20
#define VEC_B  0xfe

FW_INSN_TEST(test_int_a, "int $0x20");
FW_INSN_TEST(test_int_b, "int $0xfe");
FW_INSN_TEST(test_int_3, "int $3");
FW_INSN_TEST(test_fwait, "fwait");

static struct {
	uint64_t count, rip, rsp, cs;
} seen[256];

static bool on_event(struct fw_frame *f)
{
	uint64_t v = f->vector;
	uint64_t cr0;

	seen[v].count++;
	seen[v].rip = f->rip;
	seen[v].rsp = f->rsp;
	seen[v].cs = f->cs;
	/* Faults: clear the cause, the instruction runs again. */
	if (v == 7) {
		asm volatile("mov %%cr0, %0" : "=r"(cr0));
		FW_ASSERT(cr0 & CR0_TS);
		asm volatile("clts");
	} else if (v == 16) {
		asm volatile("fninit");
	}
	return true;
}

static uint64_t rip_of(unsigned v)
{
	return seen[v].rip;
}

/* (fn) (n) times: each raises (vector) exactly once (plus the #BP of an
 * `int $3`), with the frame's RIP at (after ? the next instruction : the
 * instruction itself), and keeps every register and CF/ZF/SF. (prep) runs
 * before each. Returns the TSC ticks. */
static uint64_t run(const char *name, void (*fn)(struct fw_insn_state *), unsigned vector,
		    bool after, void (*prep)(void), uint64_t n)
{
	static const uint64_t flags[4] = { 0, FL_CF, FL_ZF | FL_SF, FL_CF | FL_ZF };
	uint64_t t = 0;

	for (uint64_t i = 0; i < n; i++) {
		struct fw_insn_state s;
		uint64_t before = seen[vector].count, fl = flags[i & 3], t0;
		int r;

		if (prep)
			prep();
		fw_insn_fill(&s, i, fl);
		t0 = rdtsc();
		fn(&s);
		t += rdtsc() - t0;
		r = fw_insn_changed(&s, i);
		if (r >= 0)
			FW_FAIL("%s run %lu: register %d changed to 0x%lx", name, i, r, s.regs[r]);
		FW_ASSERT_EQ(s.flags_out & (FL_CF | FL_ZF | FL_SF), fl);
		if (seen[vector].count != before + 1)
			FW_FAIL("%s run %lu: %lu vector %u events, want 1", name, i,
				seen[vector].count - before, vector);
		if (rip_of(vector) != (after ? s.next : s.insn))
			FW_FAIL("%s run %lu: frame rip 0x%lx, insn 0x%lx, next 0x%lx", name, i,
				rip_of(vector), s.insn, s.next);
		FW_ASSERT_EQ(seen[vector].rsp, s.rsp);
		FW_ASSERT_EQ(seen[vector].cs, FW_KERNEL_CS);
	}
	return t;
}

static void set_ts(void)
{
	uint64_t cr0;

	asm volatile("mov %%cr0, %0" : "=r"(cr0));
	asm volatile("mov %0, %%cr0" : : "r"(cr0 | CR0_TS));
}

/* At CPL3 (native on kvm-pvm): 0/0 with every x87 exception unmasked
 * leaves #IE pending for the next waiting x87 instruction. Returns FSW. */
static uint64_t user_x87_error(uint64_t arg)
{
	uint16_t cw = 0x0340, sw; /* all exceptions unmasked */

	asm volatile("fninit; fldcw %1; fldz; fldz; fdivp; fnstsw %0" : "=m"(sw) : "m"(cw));
	return sw;
}

static void x87_error(void)
{
	FW_ASSERT(fw_user_call(user_x87_error, 0) & FSW_ES);
}

static void report(unsigned id, const char *name, uint64_t n, uint64_t cycles)
{
	fw_sync(id, "%s x%lu", name, n);
	fw_print("pvm_emulate %s n=%lu cycles=%lu", name, n, cycles);
}

void main(void)
{
	uint64_t n = fw_cmdline_u64("fw.n", 200);

	fw_printf("kvisor firmware: pvm_emulate\n");
	FW_ASSERT_EQ(read_cs(), FW_KERNEL_CS);
	fw_set_trap_handler(3, on_event);
	fw_set_trap_handler(7, on_event);
	fw_set_trap_handler(16, on_event);
	fw_set_trap_handler(VEC_A, on_event);
	fw_set_trap_handler(VEC_B, on_event);
	report(1, "int-0x20", n, run("int $0x20", test_int_a, VEC_A, true, NULL, n));
	report(2, "int-0xfe", n, run("int $0xfe", test_int_b, VEC_B, true, NULL, n));
	report(3, "int-3", n, run("int $3", test_int_3, 3, true, NULL, n));
	report(4, "fwait-nm", n, run("fwait, CR0.TS", test_fwait, 7, false, set_ts, n));
	report(5, "fwait-mf", n, run("fwait, x87 error", test_fwait, 16, false, x87_error, n));
	FW_ASSERT_EQ(seen[3].count, n);
	FW_ASSERT_EQ(seen[7].count, n);
	FW_ASSERT_EQ(seen[16].count, n);
}
