/* A harness for one instruction under test: every general register and
 * RFLAGS loaded from a struct, the instruction, everything stored back, so
 * a caller can check what the instruction (or whoever completed it, e.g. a
 * VMM emulating it) changed. Header-only: FW_INSN_TEST defines a function. */
#ifndef FW_INSN_TEST_H
#define FW_INSN_TEST_H

#include "fw.h"

struct fw_insn_state {
	/* In and out: rax rbx rcx rdx rsi rdi r8 r9 r10 r11 r12 r13 r14 r15. */
	uint64_t regs[14];
	uint64_t flags_in;  /* 112: RFLAGS for the instruction (popfq) */
	uint64_t flags_out; /* 120: RFLAGS right after it */
	uint64_t rsp;       /* 128: RSP at the instruction */
	uint64_t insn;      /* 136: address of the instruction */
	uint64_t next;      /* 144: address right after it */
};

#define FW_INSN_STR(x) #x

/* clang-format off */
/* void name(struct fw_insn_state *s): run (insn), an asm string, in the
 * harness. RBP and RSP are not loaded (the frame and the stack). */
#define FW_INSN_TEST(name, insn)                                         \
	void name(struct fw_insn_state *s);                              \
	asm(".text\n"                                                    \
	    ".globl " FW_INSN_STR(name) "\n"                             \
	    FW_INSN_STR(name) ":\n"                                      \
	    "	pushq %rbx\n"                                            \
	    "	pushq %rbp\n"                                            \
	    "	pushq %r12\n"                                            \
	    "	pushq %r13\n"                                            \
	    "	pushq %r14\n"                                            \
	    "	pushq %r15\n"                                            \
	    "	pushq %rdi\n"                                            \
	    "	pushq 112(%rdi)\n"                                       \
	    "	leaq 8(%rsp), %rax\n"                                    \
	    "	movq %rax, 128(%rdi)\n"                                  \
	    "	leaq 1f(%rip), %rax\n"                                   \
	    "	movq %rax, 136(%rdi)\n"                                  \
	    "	leaq 2f(%rip), %rax\n"                                   \
	    "	movq %rax, 144(%rdi)\n"                                  \
	    "	movq 0(%rdi), %rax\n"                                    \
	    "	movq 8(%rdi), %rbx\n"                                    \
	    "	movq 16(%rdi), %rcx\n"                                   \
	    "	movq 24(%rdi), %rdx\n"                                   \
	    "	movq 32(%rdi), %rsi\n"                                   \
	    "	movq 48(%rdi), %r8\n"                                    \
	    "	movq 56(%rdi), %r9\n"                                    \
	    "	movq 64(%rdi), %r10\n"                                   \
	    "	movq 72(%rdi), %r11\n"                                   \
	    "	movq 80(%rdi), %r12\n"                                   \
	    "	movq 88(%rdi), %r13\n"                                   \
	    "	movq 96(%rdi), %r14\n"                                   \
	    "	movq 104(%rdi), %r15\n"                                  \
	    "	movq 40(%rdi), %rdi\n"                                   \
	    "	popfq\n"                                                 \
	    "1:	" insn "\n"                                              \
	    "2:	pushfq\n"                                                \
	    "	xchgq %rdi, 8(%rsp)\n"                                   \
	    "	movq %rax, 0(%rdi)\n"                                    \
	    "	movq %rbx, 8(%rdi)\n"                                    \
	    "	movq %rcx, 16(%rdi)\n"                                   \
	    "	movq %rdx, 24(%rdi)\n"                                   \
	    "	movq %rsi, 32(%rdi)\n"                                   \
	    "	movq %r8, 48(%rdi)\n"                                    \
	    "	movq %r9, 56(%rdi)\n"                                    \
	    "	movq %r10, 64(%rdi)\n"                                   \
	    "	movq %r11, 72(%rdi)\n"                                   \
	    "	movq %r12, 80(%rdi)\n"                                   \
	    "	movq %r13, 88(%rdi)\n"                                   \
	    "	movq %r14, 96(%rdi)\n"                                   \
	    "	movq %r15, 104(%rdi)\n"                                  \
	    "	popq 120(%rdi)\n"                                        \
	    "	popq 40(%rdi)\n"                                         \
	    "	popq %r15\n"                                             \
	    "	popq %r14\n"                                             \
	    "	popq %r13\n"                                             \
	    "	popq %r12\n"                                             \
	    "	popq %rbp\n"                                             \
	    "	popq %rbx\n"                                             \
	    "	ret\n")
/* clang-format on */

/* Fill (s) with patterns derived from (seed) and flags_in = 2 | (flags). */
static inline void fw_insn_fill(struct fw_insn_state *s, uint64_t seed, uint64_t flags)
{
	for (unsigned k = 0; k < 14; k++)
		s->regs[k] = (0x0101010101010101ULL * (k + 1) ^ 0x8000000000000000ULL) + seed;
	s->flags_in = 0x2 | flags;
}

/* The register index of (s) that differs from fw_insn_fill's pattern, or -1. */
static inline int fw_insn_changed(const struct fw_insn_state *s, uint64_t seed)
{
	for (unsigned k = 0; k < 14; k++)
		if (s->regs[k] != (0x0101010101010101ULL * (k + 1) ^ 0x8000000000000000ULL) + seed)
			return (int)k;
	return -1;
}

#endif
