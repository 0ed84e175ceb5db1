/* CPL3: a long native-speed loop checked against a jump-ahead computed at
 * CPL0, testdev reports and MMIO from CPL3, exceptions raised at CPL3 and
 * at CPL0 that handlers resume from, and the way back to CPL0. */
#include "fw.h"

#define LCG_A     6364136223846793005ULL
#define LCG_C     1442695040888963407ULL
#define LOOP_N    100000000ULL
#define SYNC_N    16
#define SYNC_BASE 100

/* x(n+1) = a x(n) + c mod 2^64: 100 M steps, native at CPL3. */
static uint64_t user_lcg(uint64_t n)
{
	uint64_t x = 1;

	if ((read_cs() & 3) != 3)
		return 0;
	for (uint64_t i = 0; i < n; i++) {
		x = x * LCG_A + LCG_C;
		/* Keep the compiler from folding the loop away. */
		asm volatile("" : "+r"(x));
	}
	return x;
}

/* The same n steps in O(log n) (Brown's jump-ahead), cheap at CPL0. */
static uint64_t lcg_skip(uint64_t x, uint64_t n)
{
	uint64_t a = LCG_A, c = LCG_C, acc_a = 1, acc_c = 0;

	for (; n; n >>= 1) {
		if (n & 1) {
			acc_a *= a;
			acc_c = acc_c * a + c;
		}
		c *= a + 1;
		a *= a;
	}
	return acc_a * x + acc_c;
}

static uint64_t user_syncs(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		fw_sync(SYNC_BASE + i, "from cpl%u", read_cs() & 3);
	return n;
}

/* Scratch register writes and reads from CPL3; returns the last read. */
static uint64_t user_mmio(uint64_t v)
{
	mmio_write64(LAYOUT_TESTDEV_MMIO_GPA + TESTDEV_MMIO_SCRATCH, v);
	return mmio_read64(LAYOUT_TESTDEV_MMIO_GPA + TESTDEV_MMIO_SCRATCH);
}

/* Exceptions: each handler checks where it came from and skips the insn. */
static unsigned trap_count[32];
static uint64_t trap_cr2, trap_cs;

/* Only the expected instruction (bytes at RIP + off) is skipped; anything
 * else stays unexpected and fails the test. */
static bool skip_insn(struct fw_frame *f, int off, const char *insn, unsigned len)
{
	const uint8_t *p = (const uint8_t *)f->rip + off;

	for (unsigned i = 0; i < len; i++)
		if (p[i] != (uint8_t)insn[i])
			return false;
	trap_count[f->vector]++;
	trap_cs = f->cs;
	f->rip += off + len;
	return true;
}

static bool on_ud(struct fw_frame *f)
{
	return skip_insn(f, 0, "\x0f\x0b", 2); /* ud2 */
}

static bool on_bp(struct fw_frame *f)
{
	return skip_insn(f, -1, "\xcc", 1); /* a trap: RIP is already past int3 */
}

static bool on_gp(struct fw_frame *f)
{
	return skip_insn(f, 0, "\xf4", 1); /* hlt */
}

static bool on_pf(struct fw_frame *f)
{
	trap_cr2 = read_cr2();
	return skip_insn(f, 0, "\x48\x8b\x00", 3); /* mov (%rax),%rax */
}

/* 512 GiB: above the identity map, so not present. */
#define UNMAPPED_GPA 0x8000000000ULL

static void raise_all(void)
{
	uint64_t v = UNMAPPED_GPA;

	asm volatile("ud2");
	/* At CPL0 on kvm-pvm hosts int3 is not emulated: kvisor injects #BP. */
	asm volatile("int3");
	asm volatile(".byte 0x48, 0x8b, 0x00" : "+a"(v) : : "memory"); /* mov (%rax),%rax */
	if ((read_cs() & 3) == 3)
		asm volatile("hlt"); /* privileged: #GP at CPL3 */
}

static uint64_t user_traps(uint64_t arg)
{
	raise_all();
	return read_cs() & 3;
}

static void check_traps(unsigned want_cpl, unsigned n)
{
	FW_ASSERT_EQ(trap_count[6], n);
	FW_ASSERT_EQ(trap_count[3], n);
	FW_ASSERT_EQ(trap_count[14], n);
	FW_ASSERT_EQ(trap_cr2, UNMAPPED_GPA);
	FW_ASSERT_EQ(trap_cs & 3, want_cpl);
}

void main(void)
{
	uint64_t t0, t1, got, want;

	fw_printf("kvisor firmware: cpl3\n");
	FW_ASSERT_EQ(read_cs(), FW_KERNEL_CS);

	fw_set_trap_handler(6, on_ud);
	fw_set_trap_handler(3, on_bp);
	fw_set_trap_handler(13, on_gp);
	fw_set_trap_handler(14, on_pf);
	/* The handlers first at CPL0 (all of it emulated here)... */
	raise_all();
	check_traps(0, 1);
	fw_sync(1, "cpl0 exceptions");
	/* ...then from CPL3: #UD, #BP (DPL3 gate), #PF, #GP, each resumed at CPL3. */
	FW_ASSERT_EQ(fw_user_call(user_traps, 0), 3);
	check_traps(3, 2);
	FW_ASSERT_EQ(trap_count[13], 1);
	fw_sync(2, "cpl3 exceptions");
	fw_print("user return via %s", fw_user_ret_vector == FW_VEC_USER_RET ?
					       "int $0x80" :
					       fw_vector_name(fw_user_ret_vector));

	want = lcg_skip(1, LOOP_N);
	t0 = rdtsc();
	got = fw_user_call(user_lcg, LOOP_N);
	t1 = rdtsc();
	FW_ASSERT_EQ(got, want);
	fw_sync(3, "cpl3 loop");
	fw_print("cpl3 loop: %llu iterations in %lu Mcycles", LOOP_N, (t1 - t0) / 1000000);

	FW_ASSERT_EQ(fw_user_call(user_syncs, SYNC_N), SYNC_N);
	FW_ASSERT_EQ(fw_user_call(user_mmio, 0x0123456789abcdefULL), 0x0123456789abcdefULL);
	fw_sync(4, "cpl3 mmio");
	FW_ASSERT_EQ(read_cs(), FW_KERNEL_CS);
}
