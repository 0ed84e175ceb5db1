/* Completion of instructions kvm-pvm's emulator rejects (private to src/pvm):
 * a pure core that decodes one instruction and applies it to a copy of the
 * vCPU state (unit-tested), and the glue that runs it on a vCPU. */
#ifndef KVISOR_PVM_EMULATE_H
#define KVISOR_PVM_EMULATE_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What the core knows; PVM_EMU_NONE when the bytes did not decode to one of
 * these. Also the index of the per-kind counters in struct pvm_state. */
enum pvm_emu_kind {
	PVM_EMU_NONE = 0,
	PVM_EMU_INT3,
	PVM_EMU_INTN,
	PVM_EMU_FWAIT,
	PVM_EMU_CLAC,
	PVM_EMU_STAC,
	PVM_EMU_XGETBV,
	PVM_EMU_POPCNT,
	PVM_EMU_CRC32,
	PVM_EMU_RDTSCP,
	PVM_EMU_CMPXCHG16B,
	PVM_EMU_LDMXCSR,
	PVM_EMU_STMXCSR,
	PVM_EMU_NR_KINDS
};

/* Segment registers, in the order of their x86 encoding. */
enum pvm_emu_seg {
	PVM_EMU_ES,
	PVM_EMU_CS,
	PVM_EMU_SS,
	PVM_EMU_DS,
	PVM_EMU_FS,
	PVM_EMU_GS,
	PVM_EMU_NR_SEGS
};

/* An exception or software interrupt to deliver after the instruction. */
struct pvm_emu_event {
	bool valid;
	bool soft; /* INT n: software interrupt, RIP already past it */
	bool has_error_code;
	uint8_t vector;
	uint32_t error_code;
};

/* The part of the FPU state the core reads. */
struct pvm_emu_fpu {
	uint16_t fsw; /* x87 status word */
	uint32_t mxcsr;
	uint32_t mxcsr_mask; /* writable MXCSR bits (FXSAVE's MXCSR_MASK) */
};

/* State the core fetches only when an instruction needs it. (la) is a
 * linear (guest-virtual) address; memory callbacks return 0 or -EFAULT and
 * must do all or nothing, the others 0 or -errno. */
struct pvm_emu_ops {
	int (*read)(void *ctx, uint64_t la, void *dst, size_t len);
	int (*write)(void *ctx, uint64_t la, const void *src, size_t len);
	/* Atomically: if the 16 bytes at (la) equal (cmp), store (val), return
	 * 1; else copy them into (cmp), return 0. NULL: read, compare, write. */
	int (*cmpxchg16)(void *ctx, uint64_t la, uint64_t cmp[2], const uint64_t val[2]);
	int (*rdmsr)(void *ctx, uint32_t index, uint64_t *val);
	int (*read_xcr0)(void *ctx, uint64_t *val);
	int (*read_fpu)(void *ctx, struct pvm_emu_fpu *fpu);
};

#define PVM_EMU_DIRTY_REGS  (1u << 0) /* regs changed: KVM_SET_REGS */
#define PVM_EMU_DIRTY_MXCSR (1u << 1) /* mxcsr changed: KVM_SET_XSAVE */

#define PVM_EMU_TEXT_MAX 192 /* Capstone: 32-byte mnemonic + 160-byte operands */

struct pvm_emu {
	/* In (regs is also out). Segment bases other than FS/GS are ignored in
	 * 64-bit code, as the CPU does; (mode) is 16, 32 or 64 (CS.L/CS.D). */
	struct kvm_regs regs;
	uint64_t cr0, cr4;
	uint64_t seg_base[PVM_EMU_NR_SEGS];
	unsigned cpl;
	unsigned mode;
	const struct pvm_emu_ops *ops;
	void *ctx;
	/* Out. */
	enum pvm_emu_kind kind;
	unsigned len;   /* decoded length, 0 if undecodable */
	unsigned dirty; /* PVM_EMU_DIRTY_* */
	uint32_t mxcsr; /* new MXCSR if PVM_EMU_DIRTY_MXCSR */
	struct pvm_emu_event event;
	const char *why;             /* reason when not completed */
	char text[PVM_EMU_TEXT_MAX]; /* "mnemonic operands" once decoded */
};

/* Decode the instruction at (insn, len) (the bytes at e->regs.rip) and
 * complete it on (e). Returns 0 when done: registers/MXCSR updated as
 * e->dirty says and/or e->event to deliver (a fault leaves RIP on the
 * instruction). Not completed, with e->why set: -EILSEQ (undecodable or
 * truncated), -EOPNOTSUPP (not an instruction handled here, or a mode that
 * is not), -EFAULT (a memory operand the callbacks cannot reach: reported,
 * not turned into a #PF) or the -errno of another callback. Nothing is
 * written to guest memory unless 0 is returned. */
int pvm_emulate(struct pvm_emu *e, const uint8_t *insn, size_t len)
	__attribute__((warn_unused_result));

/* Short name of (kind) for logs ("int3", "popcnt", ...). */
const char *pvm_emu_kind_name(enum pvm_emu_kind kind);

/* CRC32-C (Castagnoli, reflected 0x82f63b78) of the low (bytes) bytes of
 * (data), least significant first, continuing from (crc): what the SSE4.2
 * CRC32 instruction computes, without pre- or post-inversion. */
uint32_t pvm_emu_crc32c(uint32_t crc, uint64_t data, unsigned bytes);

/* Between emulate.c (decoding) and emulate_insn.c (semantics) only: the
 * decoded instruction, independent of the decoder library. */
enum pvm_emu_op_type { PVM_EMU_OP_NONE, PVM_EMU_OP_REG, PVM_EMU_OP_MEM, PVM_EMU_OP_IMM };

struct pvm_emu_op {
	enum pvm_emu_op_type type;
	unsigned size;  /* bytes: 1, 2, 4, 8 or 16 */
	unsigned reg;   /* GPR number, 0 (rax) to 15 (r15) */
	unsigned shift; /* 8 for ah, ch, dh, bh */
	uint64_t la;    /* linear address of a memory operand */
	uint64_t imm;
};

struct pvm_emu_insn {
	bool lock;
	unsigned nr_ops;
	struct pvm_emu_op op[2];
};

/* The kvm_regs field of GPR (num), numbered as x86 encodes them (0 rax,
 * 1 rcx, 2 rdx, 3 rbx, 4 rsp, 5 rbp, 6 rsi, 7 rdi, 8-15 r8-r15). */
__u64 *pvm_emu_gpr(struct kvm_regs *r, unsigned num);

/* Apply (in), of kind e->kind and length e->len, to (e); as pvm_emulate. */
int pvm_emu_execute(struct pvm_emu *e, const struct pvm_emu_insn *in);

#endif
