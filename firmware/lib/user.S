/* Switching to CPL3 and back: fw_user_enter saves the kernel context and
 * IRETQs to the trampoline at CPL3; the trap at its end reaches fw_trap,
 * which calls fw_user_leave to resume that context. */

/* Keep in sync with fw.h. */
#define KERNEL_DS  0x18
#define USER_DS    0x2b
#define USER_CS    0x33
#define RFLAGS_IOPL3 0x3002 /* IOPL 3, reserved bit 1, IF clear */
#define TSS_RSP0   4
#define VEC_USER_RET 0x80

	.text
/* uint64_t fw_user_enter(fn (rdi), arg (rsi), user_rsp (rdx)) */
	.globl fw_user_enter
fw_user_enter:
	pushq %rbx
	pushq %rbp
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, fw_kernel_rsp(%rip)
	/* Traps from CPL3 land on this stack, below the saved registers. */
	movq %rsp, fw_tss + TSS_RSP0(%rip)
	movq %rdi, %r12
	movq %rsi, %rdi
	pushq $USER_DS
	pushq %rdx
	pushq $RFLAGS_IOPL3
	pushq $USER_CS
	leaq fw_user_trampoline(%rip), %rax
	pushq %rax
	iretq

/* CPL3: fn(arg), then back to CPL0 with the result in RDI. */
	.globl fw_user_trampoline, fw_user_trap_insn
fw_user_trampoline:
	call *%r12
	movq %rax, %rdi
fw_user_trap_insn:
	int $VEC_USER_RET
	ud2

/* void fw_user_leave(ret (rdi)): noreturn, from fw_trap at CPL0. */
	.globl fw_user_leave
fw_user_leave:
	movq fw_kernel_rsp(%rip), %rsp
	movl $KERNEL_DS, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movq %rdi, %rax
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbp
	popq %rbx
	ret

	.bss
	.balign 8
fw_kernel_rsp:
	.skip 8
