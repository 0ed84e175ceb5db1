/* Exception and interrupt entry stubs (one per vector, all 256) and the
 * common path that saves the registers as a struct fw_frame for fw_trap(). */

/* Vectors for which the CPU pushes an error code. */
#define HAS_ERROR(v) ((v) == 8 || (v) == 10 || (v) == 11 || (v) == 12 || \
		      (v) == 13 || (v) == 14 || (v) == 17 || (v) == 21 || \
		      (v) == 29 || (v) == 30)

	.section .rodata
	.balign 8
	.globl fw_trap_stubs
fw_trap_stubs:

	.text
	.altmacro
.macro trap_stub vec
	.balign 16
1:
	.if HAS_ERROR(\vec)
	.else
	pushq $0
	.endif
	pushq $\vec
	jmp fw_trap_common
	.pushsection .rodata
	.quad 1b
	.popsection
.endm

	.set vec, 0
	.rept 256
	trap_stub %vec
	.set vec, vec + 1
	.endr
	.noaltmacro

/* The CPU aligned RSP to 16 before pushing its 5 words; with the vector,
 * the error code and 15 registers the stack stays 16-byte aligned. */
fw_trap_common:
	pushq %rax
	pushq %rbx
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %rbp
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, %rdi
	cld
	call fw_trap
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rbp
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rbx
	popq %rax
	addq $16, %rsp
	iretq
