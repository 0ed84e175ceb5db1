/* kvm-pvm instruction completion, semantics half: what each decoded
 * instruction does to registers, flags, MXCSR and guest memory, with the
 * exceptions the CPU would raise instead (Intel SDM vol. 2). */
#include <errno.h>
#include <string.h>

#include "emulate.h"

#define X86_CR0_MP      (1ULL << 1)
#define X86_CR0_EM      (1ULL << 2)
#define X86_CR0_TS      (1ULL << 3)
#define X86_CR0_NE      (1ULL << 5)
#define X86_CR4_TSD     (1ULL << 2)
#define X86_CR4_OSFXSR  (1ULL << 9)
#define X86_CR4_OSXSAVE (1ULL << 18)

#define X86_FLAGS_CF (1ULL << 0)
#define X86_FLAGS_PF (1ULL << 2)
#define X86_FLAGS_AF (1ULL << 4)
#define X86_FLAGS_ZF (1ULL << 6)
#define X86_FLAGS_SF (1ULL << 7)
#define X86_FLAGS_TF (1ULL << 8)
#define X86_FLAGS_OF (1ULL << 11)
#define X86_FLAGS_AC (1ULL << 18)
#define X86_FLAGS_ARITH \
	(X86_FLAGS_CF | X86_FLAGS_PF | X86_FLAGS_AF | X86_FLAGS_ZF | X86_FLAGS_SF | X86_FLAGS_OF)

#define X86_FSW_ES (1u << 7) /* x87 exception summary: an unmasked one is pending */

#define X86_VEC_BP 3
#define X86_VEC_UD 6
#define X86_VEC_NM 7
#define X86_VEC_GP 13
#define X86_VEC_MF 16

#define MSR_IA32_TSC 0x10
#define MSR_TSC_AUX  0xc0000103

#define CRC32C_POLY 0x82f63b78u /* 0x1edc6f41 bit-reversed */

/* A fault: nothing changes, RIP stays on the instruction. */
static int emu_fault(struct pvm_emu *e, unsigned vector, bool has_error_code)
{
	e->dirty = 0;
	e->event.valid = true;
	e->event.soft = false;
	e->event.vector = (uint8_t)vector;
	e->event.has_error_code = has_error_code;
	e->event.error_code = 0;
	return 0;
}

/* The instruction retired: RIP moves past it. */
static int emu_retire(struct pvm_emu *e)
{
	e->regs.rip += e->len;
	if (e->mode != 64)
		e->regs.rip &= 0xffffffffULL;
	e->dirty |= PVM_EMU_DIRTY_REGS;
	return 0;
}

static int emu_fail(struct pvm_emu *e, int err, const char *why)
{
	e->dirty = 0;
	memset(&e->event, 0, sizeof(e->event));
	e->why = why;
	return err;
}

static uint64_t emu_mask(unsigned size)
{
	return size >= 8 ? ~0ULL : (1ULL << (8 * size)) - 1;
}

/* Read a register, memory (size <= 8) or immediate operand. */
static int emu_read_op(struct pvm_emu *e, const struct pvm_emu_op *op, uint64_t *val)
{
	uint64_t v = 0;
	int ret;

	switch (op->type) {
	case PVM_EMU_OP_REG:
		*val = (*pvm_emu_gpr(&e->regs, op->reg) >> op->shift) & emu_mask(op->size);
		return 0;
	case PVM_EMU_OP_MEM:
		if (op->size == 0 || op->size > 8)
			return emu_fail(e, -EOPNOTSUPP, "memory operand size not handled");
		ret = e->ops->read(e->ctx, op->la, &v, op->size); /* little-endian host */
		if (ret)
			return emu_fail(e, ret, "memory operand not readable by kvisor");
		*val = v;
		return 0;
	case PVM_EMU_OP_IMM:
		*val = op->imm & emu_mask(op->size);
		return 0;
	default:
		return emu_fail(e, -EOPNOTSUPP, "missing operand");
	}
}

/* Write a GPR the way the CPU does: 32-bit results zero-extend, 8- and
 * 16-bit ones merge into the register. */
static void emu_write_reg(struct pvm_emu *e, const struct pvm_emu_op *op, uint64_t val)
{
	__u64 *r = pvm_emu_gpr(&e->regs, op->reg);
	uint64_t mask = emu_mask(op->size) << op->shift;

	if (op->size == 4)
		*r = val & 0xffffffffULL;
	else
		*r = (*r & ~mask) | ((val << op->shift) & mask);
	e->dirty |= PVM_EMU_DIRTY_REGS;
}

static void emu_set_zf(struct pvm_emu *e, bool zf)
{
	if (zf)
		e->regs.rflags |= X86_FLAGS_ZF;
	else
		e->regs.rflags &= ~X86_FLAGS_ZF;
}

/* INT3 and INT 3: #BP is a trap, delivered with RIP after the instruction.
 * No gate DPL check: code above CPL0 runs natively on kvm-pvm, so its INT3
 * never comes here. */
static int emu_int3(struct pvm_emu *e)
{
	emu_retire(e);
	e->event.valid = true;
	e->event.vector = X86_VEC_BP;
	return 0;
}

/* INT n at CPL0 needs no gate DPL check; above CPL0 it would, so refuse. */
static int emu_intn(struct pvm_emu *e, const struct pvm_emu_insn *in)
{
	uint8_t vector = (uint8_t)in->op[0].imm;

	if (in->op[0].type != PVM_EMU_OP_IMM)
		return emu_fail(e, -EOPNOTSUPP, "int without a vector");
	if (vector == X86_VEC_BP)
		return emu_int3(e);
	if (e->cpl)
		return emu_fail(e, -EOPNOTSUPP, "int n above CPL0 (gate DPL check) not handled");
	emu_retire(e);
	e->event.valid = true;
	e->event.soft = true;
	e->event.vector = vector;
	return 0;
}

/* FWAIT: #NM when CR0.MP and CR0.TS; #MF when an unmasked x87 exception is
 * pending (CR0.NE: native reporting); else nothing. */
static int emu_fwait(struct pvm_emu *e)
{
	struct pvm_emu_fpu fpu;
	int ret;

	if ((e->cr0 & (X86_CR0_MP | X86_CR0_TS)) == (X86_CR0_MP | X86_CR0_TS))
		return emu_fault(e, X86_VEC_NM, false);
	ret = e->ops->read_fpu(e->ctx, &fpu);
	if (ret)
		return emu_fail(e, ret, "cannot read the FPU state");
	if (fpu.fsw & X86_FSW_ES) {
		if (!(e->cr0 & X86_CR0_NE))
			return emu_fail(e, -EOPNOTSUPP,
					"x87 error with CR0.NE=0 (FERR#) not handled");
		return emu_fault(e, X86_VEC_MF, false);
	}
	return emu_retire(e);
}

/* CLAC/STAC: #UD above CPL0; only RFLAGS.AC changes. */
static int emu_clac_stac(struct pvm_emu *e, bool set)
{
	if (e->cpl)
		return emu_fault(e, X86_VEC_UD, false);
	if (set)
		e->regs.rflags |= X86_FLAGS_AC;
	else
		e->regs.rflags &= ~X86_FLAGS_AC;
	return emu_retire(e);
}

/* XGETBV: EDX:EAX = XCR[ECX]. ECX=1 (XINUSE, when the CPU has XGETBV1)
 * answers XCR0: every enabled component "in use" is a valid upper bound
 * that only costs the guest a save it could have skipped. */
static int emu_xgetbv(struct pvm_emu *e)
{
	uint32_t ecx = (uint32_t)e->regs.rcx;
	uint64_t xcr0;
	int ret;

	if (!(e->cr4 & X86_CR4_OSXSAVE))
		return emu_fault(e, X86_VEC_UD, false);
	if (ecx > 1)
		return emu_fault(e, X86_VEC_GP, true);
	ret = e->ops->read_xcr0(e->ctx, &xcr0);
	if (ret)
		return emu_fail(e, ret, "cannot read XCR0");
	e->regs.rax = (uint32_t)xcr0;
	e->regs.rdx = xcr0 >> 32;
	return emu_retire(e);
}

/* POPCNT: ZF iff the source is 0; CF, PF, AF, SF, OF cleared. */
static int emu_popcnt(struct pvm_emu *e, const struct pvm_emu_insn *in)
{
	uint64_t src;
	int ret;

	if (in->nr_ops != 2 || in->op[0].type != PVM_EMU_OP_REG || in->op[0].shift ||
	    in->op[0].size < 2 || in->op[1].size != in->op[0].size)
		return emu_fail(e, -EOPNOTSUPP, "popcnt operand form not handled");
	ret = emu_read_op(e, &in->op[1], &src);
	if (ret)
		return ret;
	emu_write_reg(e, &in->op[0], (uint64_t)__builtin_popcountll(src));
	e->regs.rflags &= ~X86_FLAGS_ARITH;
	emu_set_zf(e, src == 0);
	return emu_retire(e);
}

uint32_t pvm_emu_crc32c(uint32_t crc, uint64_t data, unsigned bytes)
{
	for (unsigned i = 0; i < bytes && i < 8; i++) {
		crc ^= (uint8_t)(data >> (8 * i));
		for (unsigned bit = 0; bit < 8; bit++)
			crc = (crc >> 1) ^ ((crc & 1) ? CRC32C_POLY : 0);
	}
	return crc;
}

/* CRC32 r32/r64, r/m8-64: accumulate into the low 32 bits of the
 * destination, which is written zero-extended. Flags are not affected. */
static int emu_crc32(struct pvm_emu *e, const struct pvm_emu_insn *in)
{
	const struct pvm_emu_op *dst = &in->op[0];
	uint64_t src;
	int ret;

	if (in->nr_ops != 2 || dst->type != PVM_EMU_OP_REG || dst->size < 4 || in->op[1].size < 1 ||
	    in->op[1].size > 8)
		return emu_fail(e, -EOPNOTSUPP, "crc32 operand form not handled");
	ret = emu_read_op(e, &in->op[1], &src);
	if (ret)
		return ret;
	*pvm_emu_gpr(&e->regs, dst->reg) =
		pvm_emu_crc32c((uint32_t)*pvm_emu_gpr(&e->regs, dst->reg), src, in->op[1].size);
	return emu_retire(e);
}

/* RDTSCP: EDX:EAX = TSC, ECX = TSC_AUX, upper halves cleared; #GP(0) above
 * CPL0 when CR4.TSD. */
static int emu_rdtscp(struct pvm_emu *e)
{
	uint64_t tsc, aux;
	int ret;

	if ((e->cr4 & X86_CR4_TSD) && e->cpl)
		return emu_fault(e, X86_VEC_GP, true);
	ret = e->ops->rdmsr(e->ctx, MSR_IA32_TSC, &tsc);
	if (!ret)
		ret = e->ops->rdmsr(e->ctx, MSR_TSC_AUX, &aux);
	if (ret)
		return emu_fail(e, ret, "cannot read the TSC or TSC_AUX");
	e->regs.rax = (uint32_t)tsc;
	e->regs.rdx = tsc >> 32;
	e->regs.rcx = (uint32_t)aux;
	return emu_retire(e);
}

/* Without an atomic callback: fine for one vCPU, racy against others. */
static int emu_cmpxchg16_plain(struct pvm_emu *e, uint64_t la, uint64_t cmp[2],
			       const uint64_t val[2])
{
	uint64_t cur[2];
	int ret = e->ops->read(e->ctx, la, cur, sizeof(cur));

	if (ret)
		return ret;
	if (cur[0] == cmp[0] && cur[1] == cmp[1])
		return e->ops->write(e->ctx, la, val, 2 * sizeof(val[0])) ?: 1;
	cmp[0] = cur[0];
	cmp[1] = cur[1];
	return 0;
}

/* CMPXCHG16B m128: if RDX:RAX equals it, ZF=1 and it becomes RCX:RBX; else
 * ZF=0 and RDX:RAX is loaded from it. #GP(0) unless 16-byte aligned.
 * Atomicity against other vCPUs is the callback's job (a locked cmpxchg16b
 * on the host mapping); devices never write guest kernel data structures. */
static int emu_cmpxchg16b(struct pvm_emu *e, const struct pvm_emu_insn *in)
{
	const struct pvm_emu_op *op = &in->op[0];
	uint64_t cmp[2] = { e->regs.rax, e->regs.rdx };
	const uint64_t val[2] = { e->regs.rbx, e->regs.rcx };
	int ret;

	if (in->nr_ops != 1 || op->type != PVM_EMU_OP_MEM || op->size != 16)
		return emu_fail(e, -EOPNOTSUPP, "cmpxchg16b operand form not handled");
	if (op->la & 15)
		return emu_fault(e, X86_VEC_GP, true);
	if (e->ops->cmpxchg16)
		ret = e->ops->cmpxchg16(e->ctx, op->la, cmp, val);
	else
		ret = emu_cmpxchg16_plain(e, op->la, cmp, val);
	if (ret < 0)
		return emu_fail(e, ret, "memory operand not accessible to kvisor");
	emu_set_zf(e, ret == 1);
	if (ret == 0) {
		e->regs.rax = cmp[0];
		e->regs.rdx = cmp[1];
	}
	return emu_retire(e);
}

/* LDMXCSR/STMXCSR m32: #UD if CR0.EM or !CR4.OSFXSR, #NM if CR0.TS; LDMXCSR
 * with bits outside MXCSR_MASK: #GP(0). */
static int emu_mxcsr(struct pvm_emu *e, const struct pvm_emu_insn *in, bool load)
{
	const struct pvm_emu_op *op = &in->op[0];
	struct pvm_emu_fpu fpu;
	uint32_t v = 0;
	int ret;

	if (in->nr_ops != 1 || op->type != PVM_EMU_OP_MEM || op->size != 4)
		return emu_fail(e, -EOPNOTSUPP, "mxcsr operand form not handled");
	if ((e->cr0 & X86_CR0_EM) || !(e->cr4 & X86_CR4_OSFXSR))
		return emu_fault(e, X86_VEC_UD, false);
	if (e->cr0 & X86_CR0_TS)
		return emu_fault(e, X86_VEC_NM, false);
	ret = e->ops->read_fpu(e->ctx, &fpu);
	if (ret)
		return emu_fail(e, ret, "cannot read the FPU state");
	if (load) {
		ret = e->ops->read(e->ctx, op->la, &v, sizeof(v));
		if (ret)
			return emu_fail(e, ret, "memory operand not readable by kvisor");
		if (v & ~fpu.mxcsr_mask)
			return emu_fault(e, X86_VEC_GP, true);
		e->mxcsr = v;
		e->dirty |= PVM_EMU_DIRTY_MXCSR;
	} else {
		ret = e->ops->write(e->ctx, op->la, &fpu.mxcsr, sizeof(fpu.mxcsr));
		if (ret)
			return emu_fail(e, ret, "memory operand not writable by kvisor");
	}
	return emu_retire(e);
}

int pvm_emu_execute(struct pvm_emu *e, const struct pvm_emu_insn *in)
{
	bool is_int = e->kind == PVM_EMU_INT3 || e->kind == PVM_EMU_INTN;

	if (in->lock && e->kind != PVM_EMU_CMPXCHG16B)
		return emu_fault(e, X86_VEC_UD, false);
	/* INT n clears TF on delivery; after anything else the guest would
	 * expect a single-step #DB, which this does not produce. */
	if (!is_int && (e->regs.rflags & X86_FLAGS_TF))
		return emu_fail(e, -EOPNOTSUPP, "RFLAGS.TF (single-step) set");
	switch (e->kind) {
	case PVM_EMU_INT3:
		return emu_int3(e);
	case PVM_EMU_INTN:
		return emu_intn(e, in);
	case PVM_EMU_FWAIT:
		return emu_fwait(e);
	case PVM_EMU_CLAC:
		return emu_clac_stac(e, false);
	case PVM_EMU_STAC:
		return emu_clac_stac(e, true);
	case PVM_EMU_XGETBV:
		return emu_xgetbv(e);
	case PVM_EMU_POPCNT:
		return emu_popcnt(e, in);
	case PVM_EMU_CRC32:
		return emu_crc32(e, in);
	case PVM_EMU_RDTSCP:
		return emu_rdtscp(e);
	case PVM_EMU_CMPXCHG16B:
		return emu_cmpxchg16b(e, in);
	case PVM_EMU_LDMXCSR:
		return emu_mxcsr(e, in, true);
	case PVM_EMU_STMXCSR:
		return emu_mxcsr(e, in, false);
	default:
		return emu_fail(e, -EOPNOTSUPP, "instruction not handled by kvisor");
	}
}
