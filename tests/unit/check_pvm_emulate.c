/* Unit tests of the kvm-pvm instruction completion core (src/pvm/emulate*.c):
 * each instruction's registers, flags, memory and exceptions, operand forms
 * and error paths, against a fake guest memory; some checked against the
 * host CPU running the same instruction. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/pvm/emulate.h"

#define CF    0x1ULL
#define PF    0x4ULL
#define AF    0x10ULL
#define ZF    0x40ULL
#define SF    0x80ULL
#define TF    0x100ULL
#define IF    0x200ULL
#define OF    0x800ULL
#define AC    (1ULL << 18)
#define ARITH (CF | PF | AF | ZF | SF | OF)

#define CR0_PE      0x1ULL
#define CR0_MP      0x2ULL
#define CR0_EM      0x4ULL
#define CR0_TS      0x8ULL
#define CR0_NE      0x20ULL
#define CR0_PG      0x80000000ULL
#define CR4_TSD     0x4ULL
#define CR4_OSFXSR  0x200ULL
#define CR4_OSXSAVE 0x40000ULL

#define RIP      0xffffffff81001000ULL
#define MEM_BASE 0xffff888000010000ULL /* linear address of fake_mem[0] */
#define MEM_SIZE 0x3000

/* The fake guest: memory at MEM_BASE, MSRs, XCR0 and FPU, with failures. */
static uint8_t fake_mem[MEM_SIZE] __attribute__((aligned(16)));
static uint64_t fake_base; /* linear address of fake_mem[0], MEM_BASE by default */
static struct {
	uint64_t tsc, tsc_aux, xcr0;
	struct pvm_emu_fpu fpu;
	int msr_err, xcr_err, fpu_err;
	unsigned reads, writes, cmpxchgs;
	size_t last_read_len;
} fake;

static uint8_t *fake_ptr(uint64_t la, size_t len)
{
	if (la < fake_base || la - fake_base > MEM_SIZE || len > MEM_SIZE - (la - fake_base))
		return NULL;
	return fake_mem + (la - fake_base);
}

static int fake_read(void *ctx, uint64_t la, void *dst, size_t len)
{
	uint8_t *p = fake_ptr(la, len);

	if (!p)
		return -EFAULT;
	memcpy(dst, p, len);
	fake.reads++;
	fake.last_read_len = len;
	return 0;
}

static int fake_write(void *ctx, uint64_t la, const void *src, size_t len)
{
	uint8_t *p = fake_ptr(la, len);

	if (!p)
		return -EFAULT;
	memcpy(p, src, len);
	fake.writes++;
	return 0;
}

static int fake_cmpxchg16(void *ctx, uint64_t la, uint64_t cmp[2], const uint64_t val[2])
{
	uint8_t *p = fake_ptr(la, 16);
	uint64_t cur[2];

	if (!p)
		return -EFAULT;
	fake.cmpxchgs++;
	memcpy(cur, p, 16);
	if (cur[0] == cmp[0] && cur[1] == cmp[1]) {
		memcpy(p, val, 16);
		return 1;
	}
	memcpy(cmp, cur, 16);
	return 0;
}

static int fake_rdmsr(void *ctx, uint32_t index, uint64_t *val)
{
	if (fake.msr_err)
		return fake.msr_err;
	if (index == 0x10)
		*val = fake.tsc;
	else if (index == 0xc0000103)
		*val = fake.tsc_aux;
	else
		return -EIO;
	return 0;
}

static int fake_read_xcr0(void *ctx, uint64_t *val)
{
	*val = fake.xcr0;
	return fake.xcr_err;
}

static int fake_read_fpu(void *ctx, struct pvm_emu_fpu *fpu)
{
	*fpu = fake.fpu;
	return fake.fpu_err;
}

static const struct pvm_emu_ops fake_ops = {
	.read = fake_read,
	.write = fake_write,
	.cmpxchg16 = fake_cmpxchg16,
	.rdmsr = fake_rdmsr,
	.read_xcr0 = fake_read_xcr0,
	.read_fpu = fake_read_fpu,
};

/* The same without the atomic callback: the core's read-compare-write. */
static const struct pvm_emu_ops fake_ops_plain = {
	.read = fake_read,
	.write = fake_write,
	.rdmsr = fake_rdmsr,
	.read_xcr0 = fake_read_xcr0,
	.read_fpu = fake_read_fpu,
};

/* A 64-bit CPL0 vCPU with recognisable register values. */
static void setup(struct pvm_emu *e)
{
	memset(e, 0, sizeof(*e));
	memset(&fake, 0, sizeof(fake));
	memset(fake_mem, 0xaa, sizeof(fake_mem));
	fake_base = MEM_BASE;
	fake.fpu.mxcsr = 0x1f80;
	fake.fpu.mxcsr_mask = 0xffff;
	e->regs.rax = 0xdeadbeefdeadbeefULL;
	e->regs.rbx = 0x1111111111111111ULL;
	e->regs.rcx = 0x2222222222222222ULL;
	e->regs.rdx = 0x3333333333333333ULL;
	e->regs.rsi = 0x4444444444444444ULL;
	e->regs.rdi = 0x5555555555555555ULL;
	e->regs.rsp = 0xffffc90000003f00ULL;
	e->regs.rbp = 0xffffc90000003f80ULL;
	e->regs.r8 = 0x8888888888888888ULL;
	e->regs.r15 = 0xf15f15f15f15f15fULL;
	e->regs.rip = RIP;
	e->regs.rflags = 0x2 | IF;
	e->cr0 = CR0_PE | CR0_MP | CR0_NE | CR0_PG;
	e->cr4 = CR4_OSFXSR | CR4_OSXSAVE;
	e->mode = 64;
	e->ops = &fake_ops;
}

/* Run the instruction given as hex bytes ("f3 0f b8 c3"). */
static int run(struct pvm_emu *e, const char *hex)
{
	uint8_t b[32];
	size_t n = 0;
	unsigned v;
	int used;

	while (n < sizeof(b) && sscanf(hex, " %2x%n", &v, &used) == 1) {
		b[n++] = (uint8_t)v;
		hex += used;
	}
	return pvm_emulate(e, b, n);
}

static void assert_fault(const struct pvm_emu *e, unsigned vector, bool err)
{
	ck_assert(e->event.valid);
	ck_assert(!e->event.soft);
	ck_assert_uint_eq(e->event.vector, vector);
	ck_assert_int_eq(e->event.has_error_code, err);
	ck_assert_uint_eq(e->event.error_code, 0);
	ck_assert_uint_eq(e->dirty, 0);
}

/* Everything but the named fields equal to a fresh setup(). */
static void assert_regs_same(const struct kvm_regs *a, const struct kvm_regs *b)
{
	ck_assert_mem_eq(a, b, sizeof(*a));
}

START_TEST(test_int3)
{
	struct pvm_emu e;
	struct kvm_regs before;

	setup(&e);
	e.regs.rflags |= ARITH | TF; /* INT3 is fine under TF: delivery clears it */
	before = e.regs;
	ck_assert_int_eq(run(&e, "cc ff ff"), 0); /* trailing bytes are not looked at */
	ck_assert_int_eq(e.kind, PVM_EMU_INT3);
	ck_assert_uint_eq(e.len, 1);
	ck_assert_str_eq(e.text, "int3");
	ck_assert_uint_eq(e.regs.rip, RIP + 1); /* a trap: RIP after the instruction */
	ck_assert_uint_eq(e.dirty, PVM_EMU_DIRTY_REGS);
	ck_assert(e.event.valid && !e.event.soft && !e.event.has_error_code);
	ck_assert_uint_eq(e.event.vector, 3);
	before.rip = RIP + 1;
	assert_regs_same(&e.regs, &before);

	/* INT 3 (cd 03) is #BP too, two bytes long. */
	setup(&e);
	ck_assert_int_eq(run(&e, "cd 03"), 0);
	ck_assert_int_eq(e.kind, PVM_EMU_INTN);
	ck_assert_uint_eq(e.regs.rip, RIP + 2);
	ck_assert(e.event.valid && !e.event.soft);
	ck_assert_uint_eq(e.event.vector, 3);
}
END_TEST

START_TEST(test_intn)
{
	struct pvm_emu e;
	struct kvm_regs before;

	setup(&e);
	e.regs.rflags &= ~IF; /* a software interrupt ignores IF */
	before = e.regs;
	ck_assert_int_eq(run(&e, "cd 80"), 0);
	ck_assert_str_eq(e.text, "int 0x80");
	ck_assert_uint_eq(e.regs.rip, RIP + 2);
	ck_assert(e.event.valid && e.event.soft && !e.event.has_error_code);
	ck_assert_uint_eq(e.event.vector, 0x80);
	before.rip = RIP + 2;
	assert_regs_same(&e.regs, &before);

	/* Vectors below 32 and NMI's are plain software interrupts as well. */
	setup(&e);
	ck_assert_int_eq(run(&e, "cd 02"), 0);
	ck_assert(e.event.soft);
	ck_assert_uint_eq(e.event.vector, 2);
	setup(&e);
	ck_assert_int_eq(run(&e, "cd ff"), 0);
	ck_assert_uint_eq(e.event.vector, 0xff);

	/* Above CPL0 the gate's DPL would matter: refused, nothing changed. */
	setup(&e);
	e.cpl = 3;
	before = e.regs;
	ck_assert_int_eq(run(&e, "cd 80"), -EOPNOTSUPP);
	ck_assert_ptr_nonnull(e.why);
	ck_assert(!e.event.valid);
	ck_assert_uint_eq(e.dirty, 0);
	assert_regs_same(&e.regs, &before);
}
END_TEST

START_TEST(test_fwait)
{
	struct pvm_emu e;

	setup(&e);
	e.regs.rflags |= ARITH;
	ck_assert_int_eq(run(&e, "9b"), 0);
	ck_assert_int_eq(e.kind, PVM_EMU_FWAIT);
	ck_assert_uint_eq(e.regs.rip, RIP + 1);
	ck_assert_uint_eq(e.regs.rflags, 0x2 | IF | ARITH);
	ck_assert(!e.event.valid);

	/* CR0.TS alone does not concern FWAIT; with CR0.MP it is #NM. */
	setup(&e);
	e.cr0 = (e.cr0 & ~CR0_MP) | CR0_TS;
	ck_assert_int_eq(run(&e, "9b"), 0);
	ck_assert(!e.event.valid);
	setup(&e);
	e.cr0 |= CR0_TS;
	ck_assert_int_eq(run(&e, "9b"), 0);
	assert_fault(&e, 7, false);
	ck_assert_uint_eq(e.regs.rip, RIP);

	/* A pending unmasked x87 exception (FSW.ES): #MF, a fault. */
	setup(&e);
	fake.fpu.fsw = 0x81;
	ck_assert_int_eq(run(&e, "9b"), 0);
	assert_fault(&e, 16, false);
	ck_assert_uint_eq(e.regs.rip, RIP);
	/* ... with CR0.NE clear it would be FERR#: not handled. */
	setup(&e);
	fake.fpu.fsw = 0x81;
	e.cr0 &= ~CR0_NE;
	ck_assert_int_eq(run(&e, "9b"), -EOPNOTSUPP);

	setup(&e);
	fake.fpu_err = -EIO;
	ck_assert_int_eq(run(&e, "9b"), -EIO);
	ck_assert_uint_eq(e.dirty, 0);
}
END_TEST

START_TEST(test_clac_stac)
{
	struct pvm_emu e;

	setup(&e);
	e.regs.rflags |= ARITH;
	ck_assert_int_eq(run(&e, "0f 01 cb"), 0);
	ck_assert_int_eq(e.kind, PVM_EMU_STAC);
	ck_assert_uint_eq(e.regs.rflags, 0x2 | IF | ARITH | AC);
	ck_assert_uint_eq(e.regs.rip, RIP + 3);
	ck_assert(!e.event.valid);
	e.regs.rip = RIP;
	ck_assert_int_eq(run(&e, "0f 01 ca"), 0);
	ck_assert_int_eq(e.kind, PVM_EMU_CLAC);
	ck_assert_uint_eq(e.regs.rflags, 0x2 | IF | ARITH);
	ck_assert_uint_eq(e.regs.rip, RIP + 3);

	/* #UD above CPL0. */
	setup(&e);
	e.cpl = 3;
	ck_assert_int_eq(run(&e, "0f 01 ca"), 0);
	assert_fault(&e, 6, false);
	ck_assert_uint_eq(e.regs.rip, RIP);
	ck_assert_uint_eq(e.regs.rflags, 0x2 | IF);
}
END_TEST

START_TEST(test_xgetbv)
{
	struct pvm_emu e;
	struct kvm_regs before;

	setup(&e);
	fake.xcr0 = 0x80000000000002e7ULL;
	e.regs.rcx = 0xffffffff00000000ULL; /* ECX = 0: the upper half is ignored */
	e.regs.rflags |= ARITH;
	before = e.regs;
	ck_assert_int_eq(run(&e, "0f 01 d0"), 0);
	ck_assert_int_eq(e.kind, PVM_EMU_XGETBV);
	ck_assert_uint_eq(e.regs.rax, 0x000002e7);
	ck_assert_uint_eq(e.regs.rdx, 0x80000000);
	before.rax = e.regs.rax;
	before.rdx = e.regs.rdx;
	before.rip = RIP + 3;
	assert_regs_same(&e.regs, &before);

	/* ECX = 1 (XINUSE) answers XCR0, an upper bound. */
	setup(&e);
	fake.xcr0 = 7;
	e.regs.rcx = 1;
	ck_assert_int_eq(run(&e, "0f 01 d0"), 0);
	ck_assert_uint_eq(e.regs.rax, 7);
	ck_assert_uint_eq(e.regs.rdx, 0);

	setup(&e);
	e.regs.rcx = 2;
	ck_assert_int_eq(run(&e, "0f 01 d0"), 0);
	assert_fault(&e, 13, true);
	ck_assert_uint_eq(e.regs.rip, RIP);
	ck_assert_uint_eq(e.regs.rax, 0xdeadbeefdeadbeefULL);

	setup(&e);
	e.regs.rcx = 0;
	e.cr4 &= ~CR4_OSXSAVE;
	ck_assert_int_eq(run(&e, "0f 01 d0"), 0);
	assert_fault(&e, 6, false);

	setup(&e);
	e.regs.rcx = 0;
	fake.xcr_err = -EIO;
	ck_assert_int_eq(run(&e, "0f 01 d0"), -EIO);
	ck_assert_uint_eq(e.dirty, 0);
	ck_assert_uint_eq(e.regs.rax, 0xdeadbeefdeadbeefULL);
}
END_TEST

/* Register forms: 16-bit results merge, 32-bit ones zero-extend. */
START_TEST(test_popcnt_reg)
{
	static const struct {
		const char *hex;
		unsigned len;
		uint64_t src;       /* into rbx (or r8) */
		uint64_t dst_after; /* rax (or r9) */
	} t[] = {
		{ "f3 0f b8 c3", 4, 0xffffffff0000000fULL, 4 },
		{ "66 f3 0f b8 c3", 5, 0xffffffffffff0007ULL, 0xdeadbeefdead0003ULL },
		{ "f3 48 0f b8 c3", 5, ~0ULL, 64 },
		{ "f3 48 0f b8 c3", 5, 0x8000000000000001ULL, 2 },
		{ "f3 4d 0f b8 c8", 5, 0x00ff00ff00ff00ffULL, 32 }, /* popcnt r9, r8 */
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct pvm_emu e;
		bool r8 = strstr(t[i].hex, "4d") != NULL;

		setup(&e);
		e.regs.rflags |= ARITH; /* all set before: cleared after */
		e.regs.r9 = 0xdeadbeefdeadbeefULL;
		if (r8)
			e.regs.r8 = t[i].src;
		else
			e.regs.rbx = t[i].src;
		ck_assert_int_eq(run(&e, t[i].hex), 0);
		ck_assert_int_eq(e.kind, PVM_EMU_POPCNT);
		ck_assert_uint_eq(e.len, t[i].len);
		ck_assert_uint_eq(r8 ? e.regs.r9 : e.regs.rax, t[i].dst_after);
		ck_assert_uint_eq(e.regs.rflags, 0x2 | IF);
		ck_assert_uint_eq(e.regs.rip, RIP + t[i].len);
		ck_assert_uint_eq(e.dirty, PVM_EMU_DIRTY_REGS);
		ck_assert(!e.event.valid);
	}
}
END_TEST

/* ZF iff the source is zero, whatever the flags were. */
START_TEST(test_popcnt_zero)
{
	struct pvm_emu e;

	setup(&e);
	e.regs.rbx = 0xffffffff00000000ULL; /* ebx = 0 */
	e.regs.rflags |= CF | SF | OF;
	ck_assert_int_eq(run(&e, "f3 0f b8 c3"), 0);
	ck_assert_uint_eq(e.regs.rax, 0);
	ck_assert_uint_eq(e.regs.rflags, 0x2 | IF | ZF);
	/* 16-bit: only bx counts. */
	setup(&e);
	e.regs.rbx = 0xffffffffffff0000ULL;
	ck_assert_int_eq(run(&e, "66 f3 0f b8 c3"), 0);
	ck_assert_uint_eq(e.regs.rax, 0xdeadbeefdead0000ULL);
	ck_assert_uint_eq(e.regs.rflags, 0x2 | IF | ZF);
}
END_TEST

static void put64(uint64_t la, uint64_t v)
{
	memcpy(fake_mem + (la - fake_base), &v, sizeof(v));
}

static uint64_t get64(uint64_t la)
{
	uint64_t v;

	memcpy(&v, fake_mem + (la - fake_base), sizeof(v));
	return v;
}

/* Memory sources: ModRM/SIB, RIP-relative, FS/GS, address size, 32-bit. */
START_TEST(test_popcnt_mem)
{
	struct pvm_emu e;

	setup(&e);
	e.regs.rdi = MEM_BASE + 0x100;
	put64(MEM_BASE + 0x100, 0x0000000000000f0fULL);
	ck_assert_int_eq(run(&e, "f3 48 0f b8 07"), 0);
	ck_assert_str_eq(e.text, "popcnt rax, qword ptr [rdi]");
	ck_assert_uint_eq(e.regs.rax, 8);
	ck_assert_uint_eq(fake.last_read_len, 8);

	/* [rbx + rcx*4 + 8], 32-bit. */
	setup(&e);
	e.regs.rbx = MEM_BASE + 0x200;
	e.regs.rcx = 0x10;
	put64(MEM_BASE + 0x248, 0xffffffff00000007ULL);
	ck_assert_int_eq(run(&e, "f3 0f b8 44 8b 08"), 0);
	ck_assert_uint_eq(e.regs.rax, 3);
	ck_assert_uint_eq(fake.last_read_len, 4);

	/* 16-bit memory operand reads two bytes only. */
	setup(&e);
	e.regs.rdi = MEM_BASE + 0x300;
	put64(MEM_BASE + 0x300, 0xffffffffffff0001ULL);
	ck_assert_int_eq(run(&e, "66 f3 0f b8 07"), 0);
	ck_assert_uint_eq(e.regs.rax, 0xdeadbeefdead0001ULL);
	ck_assert_uint_eq(fake.last_read_len, 2);

	/* RIP-relative: from the end of the instruction (8 bytes). */
	setup(&e);
	e.regs.rip = MEM_BASE + 0x400;
	put64(MEM_BASE + 0x400 + 8 + 0x100, 0xff);
	ck_assert_int_eq(run(&e, "f3 0f b8 05 00 01 00 00"), 0);
	ck_assert_uint_eq(e.regs.rax, 8);
	ck_assert_uint_eq(e.regs.rip, MEM_BASE + 0x408);

	/* GS and FS overrides use their bases; DS's is ignored in 64-bit code. */
	setup(&e);
	e.seg_base[PVM_EMU_GS] = MEM_BASE + 0x500;
	e.seg_base[PVM_EMU_FS] = MEM_BASE + 0x600;
	e.seg_base[PVM_EMU_DS] = 0x1000;
	put64(MEM_BASE + 0x510, 0x3);
	put64(MEM_BASE + 0x610, 0x7);
	ck_assert_int_eq(run(&e, "65 f3 48 0f b8 04 25 10 00 00 00"), 0);
	ck_assert_uint_eq(e.regs.rax, 2);
	ck_assert_int_eq(run(&e, "64 f3 48 0f b8 04 25 10 00 00 00"), 0);
	ck_assert_uint_eq(e.regs.rax, 3);
	e.regs.rdi = MEM_BASE + 0x510;
	ck_assert_int_eq(run(&e, "3e f3 48 0f b8 07"), 0);
	ck_assert_uint_eq(e.regs.rax, 2);

	/* Address-size prefix: [edi] drops the upper half of rdi. */
	setup(&e);
	e.regs.rdi = 0xffffffff00000000ULL | 0x20;
	ck_assert_int_eq(run(&e, "67 f3 0f b8 07"), -EFAULT); /* 0x20: not in fake memory */
	ck_assert_uint_eq(e.regs.rax, 0xdeadbeefdeadbeefULL);
}
END_TEST

/* 32-bit protected mode: segment bases apply, [ebp] defaults to SS,
 * addresses wrap at 4 GiB. */
START_TEST(test_popcnt_32bit)
{
	struct pvm_emu e;

	setup(&e);
	fake_base = 0x20000;
	e.mode = 32;
	e.regs.rip = 0x100000;
	e.seg_base[PVM_EMU_DS] = 0x10000;
	e.seg_base[PVM_EMU_SS] = 0x18000;
	e.regs.rdi = 0xffffffff00010040ULL; /* edi: the upper half is not part of it */
	put64(0x20040, 0xf);
	ck_assert_int_eq(run(&e, "f3 0f b8 07"), 0);
	ck_assert_str_eq(e.text, "popcnt eax, dword ptr [edi]");
	ck_assert_uint_eq(e.regs.rax, 4);
	ck_assert_uint_eq(e.regs.rip, 0x100004);

	e.regs.rbp = 0x8080;
	put64(0x20080, 0x3f);
	ck_assert_int_eq(run(&e, "f3 0f b8 45 00"), 0);
	ck_assert_uint_eq(e.regs.rax, 6);

	e.seg_base[PVM_EMU_DS] = 0xfffff000;
	e.regs.rdi = 0x21040; /* 0xfffff000 + 0x21040 wraps to 0x20040 */
	ck_assert_int_eq(run(&e, "f3 0f b8 07"), 0);
	ck_assert_uint_eq(e.regs.rax, 4);

	/* 16-bit code is refused, decodable or not. */
	setup(&e);
	e.mode = 16;
	ck_assert_int_eq(run(&e, "cc"), -EOPNOTSUPP);
	ck_assert_str_eq(e.text, "int3");
	ck_assert_int_eq(run(&e, "f3 0f b8 c3"), -EOPNOTSUPP);
	ck_assert_uint_eq(e.dirty, 0);
	ck_assert(!e.event.valid);
}
END_TEST

/* The host CPU's POPCNT r64 with the arithmetic flags (in) set before. The
 * stack pointer steps over the red zone before pushing. */
static uint64_t host_popcnt64(uint64_t src, uint64_t *flags)
{
	uint64_t r, fl = *flags;

	asm volatile("lea -128(%%rsp), %%rsp\n\tpush %[fl]\n\tpopfq\n\tpopcnt %[s], %[r]\n\t"
		     "pushfq\n\tpop %[fl]\n\tlea 128(%%rsp), %%rsp"
		     : [r] "=&r"(r), [fl] "+r"(fl)
		     : [s] "r"(src)
		     : "cc", "memory");
	*flags = fl;
	return r;
}

static uint64_t rand64(void)
{
	return (uint64_t)random() << 62 ^ (uint64_t)random() << 31 ^ (uint64_t)random();
}

START_TEST(test_popcnt_vs_host)
{
	if (!__builtin_cpu_supports("popcnt"))
		return;
	srandom(1);
	for (int i = 0; i < 2000; i++) {
		struct pvm_emu e;
		uint64_t src = i < 2 ? (uint64_t)-i : rand64() >> (random() % 64);
		uint64_t fl = 0x2 | ((uint64_t)random() & ARITH), hfl = fl;
		uint64_t r = host_popcnt64(src, &hfl);

		setup(&e);
		e.regs.rbx = src;
		e.regs.rflags = fl;
		ck_assert_int_eq(run(&e, "f3 48 0f b8 c3"), 0);
		ck_assert_uint_eq(e.regs.rax, r);
		ck_assert_uint_eq(e.regs.rflags & ARITH, hfl & ARITH);
	}
}
END_TEST

START_TEST(test_crc32c)
{
	const char *s = "123456789";
	uint32_t c = ~0u;

	/* The CRC-32C check value (iSCSI, RFC 3720): pre- and post-inverted. */
	for (int i = 0; i < 9; i++)
		c = pvm_emu_crc32c(c, (uint8_t)s[i], 1);
	ck_assert_uint_eq(~c, 0xe3069283);
	/* Wider sources are their bytes, least significant first. */
	ck_assert_uint_eq(pvm_emu_crc32c(~0u, 0x3837363534333231ULL, 8),
			  pvm_emu_crc32c(pvm_emu_crc32c(~0u, 0x34333231, 4), 0x38373635, 4));
	ck_assert_uint_eq(pvm_emu_crc32c(0, 0, 1), 0);
}
END_TEST

/* Register and memory forms against the host's CRC32, flags untouched. */
START_TEST(test_crc32_forms)
{
	static const struct {
		const char *hex;
		unsigned size; /* source bytes */
		bool ah;
	} t[] = {
		{ "f2 0f 38 f0 c1", 1, false },    /* crc32 eax, cl */
		{ "f2 0f 38 f0 c5", 1, true },     /* crc32 eax, ch */
		{ "66 f2 0f 38 f1 c1", 2, false }, /* crc32 eax, cx */
		{ "f2 0f 38 f1 c1", 4, false },    /* crc32 eax, ecx */
		{ "f2 48 0f 38 f1 c1", 8, false }, /* crc32 rax, rcx */
		{ "f2 48 0f 38 f0 c1", 1, false }, /* crc32 rax, cl */
		{ "f2 48 0f 38 f1 07", 8, false }, /* crc32 rax, [rdi] */
		{ "f2 0f 38 f0 07", 1, false },    /* crc32 eax, byte [rdi] */
	};
	const uint64_t src = 0x0123456789abcdefULL, acc = 0xffffffff12345678ULL;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct pvm_emu e;
		uint64_t data = t[i].ah ? (src >> 8) & 0xff : src;
		uint32_t want = pvm_emu_crc32c((uint32_t)acc, data, t[i].size);

		setup(&e);
		e.regs.rax = acc;
		e.regs.rcx = src;
		e.regs.rdi = MEM_BASE + 0x40;
		put64(MEM_BASE + 0x40, src);
		e.regs.rflags |= CF | ZF | OF;
		ck_assert_int_eq(run(&e, t[i].hex), 0);
		ck_assert_int_eq(e.kind, PVM_EMU_CRC32);
		ck_assert_uint_eq(e.regs.rax, want); /* upper half cleared */
		ck_assert_uint_eq(e.regs.rflags, 0x2 | IF | CF | ZF | OF);
		ck_assert_uint_eq(e.regs.rcx, src);
		if (__builtin_cpu_supports("sse4.2")) {
			uint64_t h = (uint32_t)acc;

			switch (t[i].size) {
			case 1:
				asm("crc32b %b1, %k0" : "+r"(h) : "q"(data));
				break;
			case 2:
				asm("crc32w %w1, %k0" : "+r"(h) : "r"(data));
				break;
			case 4:
				asm("crc32l %k1, %k0" : "+r"(h) : "r"(data));
				break;
			default:
				asm("crc32q %1, %0" : "+r"(h) : "r"(data));
				break;
			}
			ck_assert_uint_eq(want, (uint32_t)h);
		}
	}
}
END_TEST

START_TEST(test_rdtscp)
{
	struct pvm_emu e;
	struct kvm_regs before;

	setup(&e);
	fake.tsc = 0x1122334455667788ULL;
	fake.tsc_aux = 0xaabbccdd00000007ULL;
	e.regs.rflags |= ARITH;
	before = e.regs;
	ck_assert_int_eq(run(&e, "0f 01 f9"), 0);
	ck_assert_int_eq(e.kind, PVM_EMU_RDTSCP);
	ck_assert_uint_eq(e.regs.rax, 0x55667788);
	ck_assert_uint_eq(e.regs.rdx, 0x11223344);
	ck_assert_uint_eq(e.regs.rcx, 7);
	before.rax = e.regs.rax;
	before.rdx = e.regs.rdx;
	before.rcx = e.regs.rcx;
	before.rip = RIP + 3;
	assert_regs_same(&e.regs, &before);

	/* CR4.TSD: #GP(0) above CPL0 only. */
	setup(&e);
	e.cr4 |= CR4_TSD;
	ck_assert_int_eq(run(&e, "0f 01 f9"), 0);
	ck_assert(!e.event.valid);
	setup(&e);
	e.cr4 |= CR4_TSD;
	e.cpl = 3;
	ck_assert_int_eq(run(&e, "0f 01 f9"), 0);
	assert_fault(&e, 13, true);
	ck_assert_uint_eq(e.regs.rax, 0xdeadbeefdeadbeefULL);

	setup(&e);
	fake.msr_err = -EIO;
	ck_assert_int_eq(run(&e, "0f 01 f9"), -EIO);
	ck_assert_uint_eq(e.dirty, 0);
	ck_assert_uint_eq(e.regs.rip, RIP);
}
END_TEST

/* Both paths: the atomic callback and the core's read-compare-write. */
static void check_cmpxchg16b(const struct pvm_emu_ops *ops)
{
	struct pvm_emu e;
	const uint64_t la = MEM_BASE + 0x800;

	/* Equal: ZF=1, m128 = RCX:RBX, RDX:RAX unchanged, other flags kept. */
	setup(&e);
	e.ops = ops;
	e.regs.rsi = la;
	e.regs.rax = 0x1010;
	e.regs.rdx = 0x2020;
	put64(la, 0x1010);
	put64(la + 8, 0x2020);
	e.regs.rflags |= CF | SF;
	ck_assert_int_eq(run(&e, "f0 48 0f c7 0e"), 0); /* lock cmpxchg16b [rsi] */
	ck_assert_int_eq(e.kind, PVM_EMU_CMPXCHG16B);
	ck_assert_uint_eq(get64(la), 0x1111111111111111ULL);
	ck_assert_uint_eq(get64(la + 8), 0x2222222222222222ULL);
	ck_assert_uint_eq(e.regs.rax, 0x1010);
	ck_assert_uint_eq(e.regs.rdx, 0x2020);
	ck_assert_uint_eq(e.regs.rflags, 0x2 | IF | CF | SF | ZF);
	ck_assert_uint_eq(e.regs.rip, RIP + 5);

	/* Not equal (high half differs): ZF=0, RDX:RAX = m128, memory kept. */
	setup(&e);
	e.ops = ops;
	e.regs.rdi = la;
	e.regs.rax = 0x1010;
	e.regs.rdx = 0x2021;
	put64(la, 0x1010);
	put64(la + 8, 0x2020);
	e.regs.rflags |= ZF | OF;
	ck_assert_int_eq(run(&e, "48 0f c7 0f"), 0);
	ck_assert_uint_eq(e.regs.rax, 0x1010);
	ck_assert_uint_eq(e.regs.rdx, 0x2020);
	ck_assert_uint_eq(get64(la), 0x1010);
	ck_assert_uint_eq(get64(la + 8), 0x2020);
	ck_assert_uint_eq(e.regs.rflags, 0x2 | IF | OF);
	ck_assert_uint_eq(e.regs.rip, RIP + 4);

	/* Misaligned: #GP(0), nothing read or written. */
	setup(&e);
	e.ops = ops;
	e.regs.rdi = la + 8;
	ck_assert_int_eq(run(&e, "48 0f c7 0f"), 0);
	assert_fault(&e, 13, true);
	ck_assert_uint_eq(e.regs.rip, RIP);
	ck_assert_uint_eq(fake.reads + fake.writes + fake.cmpxchgs, 0);

	/* Unreachable memory: not completed, registers untouched. */
	setup(&e);
	e.ops = ops;
	e.regs.rdi = MEM_BASE + MEM_SIZE;
	ck_assert_int_eq(run(&e, "48 0f c7 0f"), -EFAULT);
	ck_assert_uint_eq(e.dirty, 0);
	ck_assert_uint_eq(e.regs.rax, 0xdeadbeefdeadbeefULL);
	ck_assert_ptr_nonnull(e.why);
}

START_TEST(test_cmpxchg16b)
{
	check_cmpxchg16b(&fake_ops);
	ck_assert_uint_eq(fake.cmpxchgs, 0); /* the last case found no memory */
	check_cmpxchg16b(&fake_ops_plain);
}
END_TEST

START_TEST(test_cmpxchg16b_callback_used)
{
	struct pvm_emu e;

	setup(&e);
	e.regs.rdi = MEM_BASE + 0x100;
	ck_assert_int_eq(run(&e, "48 0f c7 0f"), 0);
	ck_assert_uint_eq(fake.cmpxchgs, 1);
	ck_assert_uint_eq(fake.writes, 0);
	/* cmpxchg8b (no REX.W) is the host's to emulate, not ours. */
	setup(&e);
	e.regs.rdi = MEM_BASE + 0x100;
	ck_assert_int_eq(run(&e, "0f c7 0f"), -EOPNOTSUPP);
	ck_assert_str_eq(e.text, "cmpxchg8b qword ptr [rdi]");
}
END_TEST

START_TEST(test_ldmxcsr)
{
	struct pvm_emu e;
	uint32_t v = 0x7f80;

	setup(&e);
	e.regs.rdi = MEM_BASE + 0x10;
	memcpy(fake_mem + 0x10, &v, 4);
	ck_assert_int_eq(run(&e, "0f ae 17"), 0);
	ck_assert_int_eq(e.kind, PVM_EMU_LDMXCSR);
	ck_assert_uint_eq(e.dirty, PVM_EMU_DIRTY_REGS | PVM_EMU_DIRTY_MXCSR);
	ck_assert_uint_eq(e.mxcsr, 0x7f80);
	ck_assert_uint_eq(e.regs.rip, RIP + 3);
	ck_assert_uint_eq(fake.last_read_len, 4);

	/* Bits outside MXCSR_MASK: #GP(0); the mask comes from the CPU. */
	v = 0x10000 | 0x1f80;
	memcpy(fake_mem + 0x10, &v, 4);
	setup(&e);
	e.regs.rdi = MEM_BASE + 0x10;
	memcpy(fake_mem + 0x10, &v, 4);
	ck_assert_int_eq(run(&e, "0f ae 17"), 0);
	assert_fault(&e, 13, true);
	setup(&e);
	e.regs.rdi = MEM_BASE + 0x10;
	memcpy(fake_mem + 0x10, &v, 4);
	fake.fpu.mxcsr_mask = 0x2ffff; /* AMD's MM bit 17 */
	v = 0x20000 | 0x1f80;
	memcpy(fake_mem + 0x10, &v, 4);
	ck_assert_int_eq(run(&e, "0f ae 17"), 0);
	ck_assert(!e.event.valid);
	ck_assert_uint_eq(e.mxcsr, 0x21f80);

	/* CR0.EM or no CR4.OSFXSR: #UD; CR0.TS: #NM. */
	setup(&e);
	e.cr0 |= CR0_EM;
	ck_assert_int_eq(run(&e, "0f ae 17"), 0);
	assert_fault(&e, 6, false);
	setup(&e);
	e.cr4 &= ~CR4_OSFXSR;
	ck_assert_int_eq(run(&e, "0f ae 17"), 0);
	assert_fault(&e, 6, false);
	setup(&e);
	e.cr0 |= CR0_TS;
	ck_assert_int_eq(run(&e, "0f ae 17"), 0);
	assert_fault(&e, 7, false);

	setup(&e);
	e.regs.rdi = 0x1000;
	ck_assert_int_eq(run(&e, "0f ae 17"), -EFAULT);
	ck_assert_uint_eq(e.dirty, 0);
}
END_TEST

START_TEST(test_stmxcsr)
{
	struct pvm_emu e;
	uint32_t v;

	setup(&e);
	fake.fpu.mxcsr = 0x9fc0;
	e.regs.rdi = MEM_BASE + 0x20;
	ck_assert_int_eq(run(&e, "0f ae 5f 04"), 0); /* stmxcsr [rdi + 4] */
	ck_assert_int_eq(e.kind, PVM_EMU_STMXCSR);
	ck_assert_uint_eq(e.dirty, PVM_EMU_DIRTY_REGS);
	memcpy(&v, fake_mem + 0x24, 4);
	ck_assert_uint_eq(v, 0x9fc0);
	ck_assert_uint_eq(fake_mem[0x23], 0xaa); /* exactly 4 bytes */
	ck_assert_uint_eq(fake_mem[0x28], 0xaa);
	ck_assert_uint_eq(e.regs.rip, RIP + 4);

	/* gs-relative, as the kernel does for per-CPU data. */
	setup(&e);
	fake.fpu.mxcsr = 0x1f80;
	e.seg_base[PVM_EMU_GS] = MEM_BASE + 0x1000;
	ck_assert_int_eq(run(&e, "65 0f ae 1c 25 10 00 00 00"), 0);
	memcpy(&v, fake_mem + 0x1010, 4);
	ck_assert_uint_eq(v, 0x1f80);

	setup(&e);
	e.cr0 |= CR0_TS;
	e.regs.rdi = MEM_BASE + 0x20;
	ck_assert_int_eq(run(&e, "0f ae 1f"), 0);
	assert_fault(&e, 7, false);
	ck_assert_uint_eq(fake.writes, 0);

	setup(&e);
	e.regs.rdi = MEM_BASE + MEM_SIZE - 2; /* straddles the end */
	ck_assert_int_eq(run(&e, "0f ae 1f"), -EFAULT);
	ck_assert_uint_eq(e.dirty, 0);
	ck_assert_uint_eq(e.regs.rip, RIP);
}
END_TEST

START_TEST(test_errors)
{
	struct pvm_emu e;
	struct kvm_regs before;
	uint8_t many[64];

	setup(&e);
	before = e.regs;
	ck_assert_int_eq(pvm_emulate(&e, many, 0), -EILSEQ);
	ck_assert_int_eq(run(&e, "f3 0f b8"), -EILSEQ); /* truncated */
	ck_assert_uint_eq(e.len, 0);
	ck_assert_str_eq(e.text, "");
	ck_assert_ptr_nonnull(e.why);
	ck_assert_int_eq(run(&e, "ff ff"), -EILSEQ); /* FF /7 is undefined */
	ck_assert_int_eq(run(&e, "0f 04"), -EILSEQ);

	/* Decoded but not ours: the text names it for the report. */
	ck_assert_int_eq(run(&e, "0f ae 27"), -EOPNOTSUPP);
	ck_assert_int_eq(e.kind, PVM_EMU_NONE);
	ck_assert_str_eq(e.text, "xsave ptr [rdi]");
	ck_assert_uint_eq(e.len, 3);
	ck_assert_int_eq(run(&e, "66 0f ef c0"), -EOPNOTSUPP);
	ck_assert_str_eq(e.text, "pxor xmm0, xmm0");
	ck_assert_uint_eq(e.dirty, 0);
	assert_regs_same(&e.regs, &before);

	/* LOCK where it is not allowed: #UD (Capstone hides it: raw bytes). */
	ck_assert_int_eq(run(&e, "f0 f3 0f b8 c3"), 0);
	assert_fault(&e, 6, false);

	/* RFLAGS.TF: the single-step trap is not emulated, so refuse. */
	setup(&e);
	e.regs.rflags |= TF;
	ck_assert_int_eq(run(&e, "f3 0f b8 c3"), -EOPNOTSUPP);
	ck_assert_uint_eq(e.dirty, 0);

	/* More than 15 bytes: only the first instruction counts. */
	setup(&e);
	memset(many, 0x90, sizeof(many));
	many[0] = 0x9b;
	ck_assert_int_eq(pvm_emulate(&e, many, sizeof(many)), 0);
	ck_assert_uint_eq(e.regs.rip, RIP + 1);
	/* 15 prefixes + opcode: longer than x86 allows, cut at 15, undecodable. */
	memset(many, 0x66, 15);
	many[15] = 0x90;
	ck_assert_int_eq(pvm_emulate(&e, many, 16), -EILSEQ);

	/* Memory read failure: reported, nothing changed, no #PF made up. */
	setup(&e);
	before = e.regs;
	e.regs.rdi = 0x1000;
	before.rdi = 0x1000;
	ck_assert_int_eq(run(&e, "f3 48 0f b8 07"), -EFAULT);
	ck_assert(!e.event.valid);
	assert_regs_same(&e.regs, &before);
}
END_TEST

/* Hostile bytes: never a crash, and a refusal never leaves half a result.
 * Prefix-heavy sequences around the handled opcodes find more paths. */
START_TEST(test_random_bytes)
{
	static const uint8_t pick[] = { 0xf0, 0xf2, 0xf3, 0x66, 0x67, 0x65, 0x64, 0x48, 0x4d,
					0x0f, 0xb8, 0x38, 0xf0, 0xf1, 0xc7, 0xae, 0x01, 0xcc,
					0xcd, 0x9b, 0x07, 0x0f, 0x05, 0x25, 0x44, 0x8b };

	srandom(2);
	for (int i = 0; i < 50000; i++) {
		struct pvm_emu e;
		uint8_t b[15];
		size_t len = 1 + (size_t)random() % sizeof(b);
		int ret;

		for (size_t k = 0; k < len; k++)
			b[k] = random() & 1 ? pick[random() % sizeof(pick)] : (uint8_t)random();
		setup(&e);
		e.mode = random() & 1 ? 64 : 32;
		e.regs.rdi = MEM_BASE + (uint64_t)(random() % MEM_SIZE);
		e.regs.rip = MEM_BASE + 0x100;
		ret = pvm_emulate(&e, b, len);
		ck_assert(ret == 0 || ret == -EILSEQ || ret == -EOPNOTSUPP || ret == -EFAULT);
		if (ret) {
			ck_assert_uint_eq(e.dirty, 0);
			ck_assert(!e.event.valid);
			ck_assert_ptr_nonnull(e.why);
		} else {
			ck_assert_uint_le(e.len, len);
			ck_assert(e.kind > PVM_EMU_NONE && e.kind < PVM_EMU_NR_KINDS);
		}
	}
}
END_TEST

START_TEST(test_kind_names)
{
	for (int k = PVM_EMU_NONE + 1; k < PVM_EMU_NR_KINDS; k++)
		ck_assert_str_ne(pvm_emu_kind_name(k), "unknown");
	ck_assert_str_eq(pvm_emu_kind_name(PVM_EMU_NONE), "unknown");
	ck_assert_str_eq(pvm_emu_kind_name(PVM_EMU_CMPXCHG16B), "cmpxchg16b");
}
END_TEST

static Suite *unit_suite(void)
{
	Suite *s = suite_create("pvm_emulate");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_int3);
	tcase_add_test(tc, test_intn);
	tcase_add_test(tc, test_fwait);
	tcase_add_test(tc, test_clac_stac);
	tcase_add_test(tc, test_xgetbv);
	tcase_add_test(tc, test_popcnt_reg);
	tcase_add_test(tc, test_popcnt_zero);
	tcase_add_test(tc, test_popcnt_mem);
	tcase_add_test(tc, test_popcnt_32bit);
	tcase_add_test(tc, test_popcnt_vs_host);
	tcase_add_test(tc, test_crc32c);
	tcase_add_test(tc, test_crc32_forms);
	tcase_add_test(tc, test_rdtscp);
	tcase_add_test(tc, test_cmpxchg16b);
	tcase_add_test(tc, test_cmpxchg16b_callback_used);
	tcase_add_test(tc, test_ldmxcsr);
	tcase_add_test(tc, test_stmxcsr);
	tcase_add_test(tc, test_errors);
	tcase_add_test(tc, test_random_bytes);
	tcase_add_test(tc, test_kind_names);
	suite_add_tcase(s, tc);
	return s;
}

#include "unit.h"
