/* kvm-pvm instruction completion, decoding half: Capstone turns the bytes the
 * host reported into a decoder-neutral pvm_emu_insn (kind, length, operands
 * with linear addresses) that emulate_insn.c applies. */
#include <capstone/capstone.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "capstone_dl.h"
#include "emulate.h"

/*
 * Why Capstone (Debian's libcapstone-dev, 4.0.2 here): kvisor already links
 * it through pkg-config, it is packaged and maintained in every distribution,
 * and its x86 detail mode has all this needs: instruction ids, length,
 * prefixes, operand sizes and base/index/scale/displacement/segment of
 * memory operands (stable fields from 4.x to 5.x). A handle is opened per
 * call, so vCPU threads share no decoder state. Zydis 4 decodes x86 at least
 * as well, but Debian ships it without a pkg-config file and two decoders
 * would be one too many. One quirk: Capstone 4 drops a LOCK prefix that
 * comes with a mandatory prefix (f0 f3 0f b8 ...), so LOCK is read from the
 * raw prefix bytes.
 */

#define EMU_MAX_INSN 15

static const struct {
	enum pvm_emu_kind kind;
	unsigned id;
	const char *name;
} emu_kinds[] = {
	{ PVM_EMU_INT3, X86_INS_INT3, "int3" },
	{ PVM_EMU_INTN, X86_INS_INT, "int n" },
	{ PVM_EMU_FWAIT, X86_INS_WAIT, "fwait" },
	{ PVM_EMU_CLAC, X86_INS_CLAC, "clac" },
	{ PVM_EMU_STAC, X86_INS_STAC, "stac" },
	{ PVM_EMU_XGETBV, X86_INS_XGETBV, "xgetbv" },
	{ PVM_EMU_POPCNT, X86_INS_POPCNT, "popcnt" },
	{ PVM_EMU_CRC32, X86_INS_CRC32, "crc32" },
	{ PVM_EMU_RDTSCP, X86_INS_RDTSCP, "rdtscp" },
	{ PVM_EMU_CMPXCHG16B, X86_INS_CMPXCHG16B, "cmpxchg16b" },
	{ PVM_EMU_LDMXCSR, X86_INS_LDMXCSR, "ldmxcsr" },
	{ PVM_EMU_STMXCSR, X86_INS_STMXCSR, "stmxcsr" },
};

const char *pvm_emu_kind_name(enum pvm_emu_kind kind)
{
	for (size_t i = 0; i < sizeof(emu_kinds) / sizeof(emu_kinds[0]); i++)
		if (emu_kinds[i].kind == kind)
			return emu_kinds[i].name;
	return "unknown";
}

static enum pvm_emu_kind emu_kind_of(unsigned id)
{
	for (size_t i = 0; i < sizeof(emu_kinds) / sizeof(emu_kinds[0]); i++)
		if (emu_kinds[i].id == id)
			return emu_kinds[i].kind;
	return PVM_EMU_NONE;
}

/* Capstone register -> GPR number, width and bit offset (ah: 8), in
 * columns that clang-format would undo. */
/* clang-format off */
#define EMU_GPR(n, q, d, w, b)                                                         \
	{ X86_REG_##q, n, 8, 0 }, { X86_REG_##d, n, 4, 0 }, { X86_REG_##w, n, 2, 0 }, \
	{ X86_REG_##b, n, 1, 0 }

static const struct {
	x86_reg reg;
	uint8_t num, size, shift;
} emu_gprs[] = {
	EMU_GPR(0, RAX, EAX, AX, AL),       EMU_GPR(1, RCX, ECX, CX, CL),
	EMU_GPR(2, RDX, EDX, DX, DL),       EMU_GPR(3, RBX, EBX, BX, BL),
	EMU_GPR(4, RSP, ESP, SP, SPL),      EMU_GPR(5, RBP, EBP, BP, BPL),
	EMU_GPR(6, RSI, ESI, SI, SIL),      EMU_GPR(7, RDI, EDI, DI, DIL),
	EMU_GPR(8, R8, R8D, R8W, R8B),      EMU_GPR(9, R9, R9D, R9W, R9B),
	EMU_GPR(10, R10, R10D, R10W, R10B), EMU_GPR(11, R11, R11D, R11W, R11B),
	EMU_GPR(12, R12, R12D, R12W, R12B), EMU_GPR(13, R13, R13D, R13W, R13B),
	EMU_GPR(14, R14, R14D, R14W, R14B), EMU_GPR(15, R15, R15D, R15W, R15B),
	{ X86_REG_AH, 0, 1, 8 }, { X86_REG_CH, 1, 1, 8 },
	{ X86_REG_DH, 2, 1, 8 }, { X86_REG_BH, 3, 1, 8 },
};
/* clang-format on */

static int emu_gpr(x86_reg reg, struct pvm_emu_op *op)
{
	for (size_t i = 0; i < sizeof(emu_gprs) / sizeof(emu_gprs[0]); i++) {
		if (emu_gprs[i].reg == reg) {
			op->type = PVM_EMU_OP_REG;
			op->reg = emu_gprs[i].num;
			op->size = emu_gprs[i].size;
			op->shift = emu_gprs[i].shift;
			return 0;
		}
	}
	return -EOPNOTSUPP;
}

/* kvm_regs slot of GPR (num) in x86 encoding order (rax rcx rdx rbx ...). */
__u64 *pvm_emu_gpr(struct kvm_regs *r, unsigned num)
{
	switch (num & 15) {
	case 0:
		return &r->rax;
	case 1:
		return &r->rcx;
	case 2:
		return &r->rdx;
	case 3:
		return &r->rbx;
	case 4:
		return &r->rsp;
	case 5:
		return &r->rbp;
	case 6:
		return &r->rsi;
	case 7:
		return &r->rdi;
	case 8:
		return &r->r8;
	case 9:
		return &r->r9;
	case 10:
		return &r->r10;
	case 11:
		return &r->r11;
	case 12:
		return &r->r12;
	case 13:
		return &r->r13;
	case 14:
		return &r->r14;
	default:
		return &r->r15;
	}
}

/* Value of an address register: a GPR or RIP/EIP (of the next instruction). */
static int emu_addr_reg(struct pvm_emu *e, unsigned len, x86_reg reg, uint64_t *val)
{
	struct pvm_emu_op op;

	if (reg == X86_REG_RIP || reg == X86_REG_EIP) {
		*val = e->regs.rip + len;
		if (reg == X86_REG_EIP)
			*val &= 0xffffffffULL;
		return 0;
	}
	if (reg == X86_REG_RIZ || reg == X86_REG_EIZ) {
		*val = 0;
		return 0;
	}
	if (emu_gpr(reg, &op) || op.shift)
		return -EOPNOTSUPP;
	*val = *pvm_emu_gpr(&e->regs, op.reg);
	if (op.size < 8)
		*val &= (1ULL << (8 * op.size)) - 1;
	return 0;
}

static int emu_seg(x86_reg reg, const x86_op_mem *m)
{
	switch (reg) {
	case X86_REG_ES:
		return PVM_EMU_ES;
	case X86_REG_CS:
		return PVM_EMU_CS;
	case X86_REG_SS:
		return PVM_EMU_SS;
	case X86_REG_DS:
		return PVM_EMU_DS;
	case X86_REG_FS:
		return PVM_EMU_FS;
	case X86_REG_GS:
		return PVM_EMU_GS;
	default:
		break;
	}
	/* No override: SS for rsp/rbp-based addresses, DS for the rest. */
	switch (m->base) {
	case X86_REG_RSP:
	case X86_REG_ESP:
	case X86_REG_SP:
	case X86_REG_RBP:
	case X86_REG_EBP:
	case X86_REG_BP:
		return PVM_EMU_SS;
	default:
		return PVM_EMU_DS;
	}
}

/* Linear address of memory operand (m): segment base + (base + index *
 * scale + disp), wrapped to the address size. Segment limits are not
 * checked (64-bit code has none; the core only serves guest kernels). */
static int emu_mem_la(struct pvm_emu *e, const cs_insn *ci, const x86_op_mem *m, uint64_t *la)
{
	unsigned asize = ci->detail->x86.addr_size;
	uint64_t ea = (uint64_t)m->disp, v;
	int seg;

	if (m->base != X86_REG_INVALID) {
		if (emu_addr_reg(e, ci->size, m->base, &v))
			return -EOPNOTSUPP;
		ea += v;
	}
	if (m->index != X86_REG_INVALID) {
		if (emu_addr_reg(e, ci->size, m->index, &v))
			return -EOPNOTSUPP;
		ea += v * (uint64_t)m->scale;
	}
	if (asize == 4)
		ea &= 0xffffffffULL;
	else if (asize != 8)
		return -EOPNOTSUPP;
	seg = emu_seg(m->segment, m);
	if (e->mode != 64 || seg == PVM_EMU_FS || seg == PVM_EMU_GS)
		ea += e->seg_base[seg];
	*la = e->mode == 64 ? ea : ea & 0xffffffffULL;
	return 0;
}

static int emu_operands(struct pvm_emu *e, const cs_insn *ci, struct pvm_emu_insn *in)
{
	const cs_x86 *x = &ci->detail->x86;

	if (x->op_count > 2)
		return -EOPNOTSUPP;
	in->nr_ops = x->op_count;
	for (unsigned i = 0; i < x->op_count; i++) {
		const cs_x86_op *o = &x->operands[i];
		struct pvm_emu_op *op = &in->op[i];

		switch (o->type) {
		case X86_OP_REG:
			if (emu_gpr(o->reg, op))
				return -EOPNOTSUPP;
			break;
		case X86_OP_MEM:
			op->type = PVM_EMU_OP_MEM;
			op->size = o->size;
			if (emu_mem_la(e, ci, &o->mem, &op->la))
				return -EOPNOTSUPP;
			break;
		case X86_OP_IMM:
			op->type = PVM_EMU_OP_IMM;
			op->size = o->size;
			op->imm = (uint64_t)o->imm;
			break;
		default:
			return -EOPNOTSUPP;
		}
	}
	return 0;
}

/* LOCK among the legacy prefixes in front of the opcode (REX ends them). */
static bool emu_has_lock(const uint8_t *insn, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		switch (insn[i]) {
		case 0xf0:
			return true;
		case 0xf2:
		case 0xf3:
		case 0x2e:
		case 0x36:
		case 0x3e:
		case 0x26:
		case 0x64:
		case 0x65:
		case 0x66:
		case 0x67:
			continue;
		default:
			return false;
		}
	}
	return false;
}

static void emu_text(struct pvm_emu *e, const cs_insn *ci)
{
	snprintf(e->text, sizeof(e->text), "%s%s%s", ci->mnemonic, ci->op_str[0] ? " " : "",
		 ci->op_str);
}

static int emu_decode(struct pvm_emu *e, const struct capstone_api *capi, csh cs,
		      const uint8_t *insn, size_t len, struct pvm_emu_insn *in)
{
	cs_insn *ci = NULL;
	int ret = 0;

	if (capi->disasm(cs, insn, len, e->regs.rip, 1, &ci) != 1) {
		e->why = len ? "undecodable or truncated instruction" : "no instruction bytes";
		return -EILSEQ;
	}
	e->len = ci->size;
	emu_text(e, ci);
	e->kind = emu_kind_of(ci->id);
	in->lock = emu_has_lock(insn, ci->size);
	if (e->kind == PVM_EMU_NONE) {
		e->why = "instruction not handled by kvisor";
		ret = -EOPNOTSUPP;
	} else if (emu_operands(e, ci, in)) {
		e->why = "operand form not handled by kvisor";
		ret = -EOPNOTSUPP;
	}
	capi->free(ci, 1);
	return ret;
}

int pvm_emulate(struct pvm_emu *e, const uint8_t *insn, size_t len)
{
	const struct capstone_api *capi;
	struct pvm_emu_insn in;
	cs_mode mode;
	csh cs;
	int ret;

	e->kind = PVM_EMU_NONE;
	e->len = 0;
	e->dirty = 0;
	memset(&e->event, 0, sizeof(e->event));
	e->why = NULL;
	e->text[0] = '\0';
	memset(&in, 0, sizeof(in));
	if (len > EMU_MAX_INSN)
		len = EMU_MAX_INSN;
	if (e->mode == 64)
		mode = CS_MODE_64;
	else if (e->mode == 32)
		mode = CS_MODE_32;
	else
		mode = CS_MODE_16;
	/* The two instructions every Linux boot hits need no decoder (and so no
	 * Capstone in memory): one-byte opcodes without operands. */
	if (len >= 1 && (insn[0] == 0xcc || insn[0] == 0x9b) && (e->mode == 32 || e->mode == 64)) {
		e->len = 1;
		e->kind = insn[0] == 0xcc ? PVM_EMU_INT3 : PVM_EMU_FWAIT;
		snprintf(e->text, sizeof(e->text), "%s", insn[0] == 0xcc ? "int3" : "wait");
		return pvm_emu_execute(e, &in);
	}
	capi = capstone_api();
	if (!capi || capi->open(CS_ARCH_X86, mode, &cs) != CS_ERR_OK) {
		e->why = "cannot open the Capstone decoder";
		return -ENOMEM;
	}
	capi->option(cs, CS_OPT_DETAIL, CS_OPT_ON);
	ret = emu_decode(e, capi, cs, insn, len, &in);
	capi->close(&cs);
	/* Real mode and 16-bit segments: decoded for the report only. */
	if (e->mode != 32 && e->mode != 64) {
		e->why = "16-bit code is not handled by kvisor";
		return -EOPNOTSUPP;
	}
	if (ret)
		return ret;
	return pvm_emu_execute(e, &in);
}
