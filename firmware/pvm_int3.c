/* int3 and fwait at CPL0, many times: kvm-pvm does not emulate either, and
 * kvisor completes them (#BP injected as a trap after the int3, fwait
 * skipped). Every register, the flags and the stack must come through. */
#include "fw.h"
#include "insn_test.h"

#define FL_CF 0x1ULL
#define FL_ZF 0x40ULL
#define FL_SF 0x80ULL

FW_INSN_TEST(test_int3, "int3");
FW_INSN_TEST(test_fwait, "fwait");

static uint64_t bp_count, bp_rip, bp_rsp, bp_cs, bp_flags;

static bool on_bp(struct fw_frame *f)
{
	bp_count++;
	bp_rip = f->rip;
	bp_rsp = f->rsp;
	bp_cs = f->cs;
	bp_flags = f->rflags;
	return true; /* a trap: RIP is already past the int3 */
}

/* (n) runs of (fn), with the registers and CF/ZF/SF varied; (bp): whether
 * each raises #BP. Returns the TSC ticks. */
static uint64_t run(void (*fn)(struct fw_insn_state *), bool bp, uint64_t n)
{
	static const uint64_t flags[4] = { 0, FL_CF, FL_ZF | FL_SF, FL_CF | FL_ZF };
	uint64_t t0 = rdtsc();

	for (uint64_t i = 0; i < n; i++) {
		struct fw_insn_state s;
		uint64_t before = bp_count, fl = flags[i & 3];

		fw_insn_fill(&s, i, fl);
		fn(&s);
		if (fw_insn_changed(&s, i) >= 0)
			FW_FAIL("run %lu: register %d changed to 0x%lx", i, fw_insn_changed(&s, i),
				s.regs[fw_insn_changed(&s, i)]);
		FW_ASSERT_EQ(s.flags_out & (FL_CF | FL_ZF | FL_SF), fl);
		FW_ASSERT_EQ(bp_count, before + bp);
		if (!bp)
			continue;
		FW_ASSERT_EQ(bp_rip, s.next);
		FW_ASSERT_EQ(bp_rip, s.insn + 1);
		FW_ASSERT_EQ(bp_rsp, s.rsp);
		FW_ASSERT_EQ(bp_cs, FW_KERNEL_CS);
		FW_ASSERT_EQ(bp_flags & (FL_CF | FL_ZF | FL_SF), fl);
	}
	return rdtsc() - t0;
}

void main(void)
{
	uint64_t n = fw_cmdline_u64("fw.n", 1000), t_int3, t_fwait;

	fw_printf("kvisor firmware: pvm_int3\n");
	FW_ASSERT_EQ(read_cs(), FW_KERNEL_CS);
	fw_set_trap_handler(3, on_bp);
	t_int3 = run(test_int3, true, n);
	fw_sync(1, "int3 x%lu: #BP after each, registers kept", n);
	t_fwait = run(test_fwait, false, n);
	fw_sync(2, "fwait x%lu: no exception, registers kept", n);
	fw_print("pvm_int3 int3 n=%lu cycles=%lu", n, t_int3);
	fw_print("pvm_int3 fwait n=%lu cycles=%lu", n, t_fwait);
}
