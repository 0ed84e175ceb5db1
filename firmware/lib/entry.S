/* PVH entry of every firmware: the Xen PHYS32_ENTRY note, then from 32-bit
 * flat protected mode (EBX = hvm_start_info) to long mode with our own GDT
 * and identity page tables (0-4 GiB, 2 MiB pages, user-accessible). */

/* Selectors: keep in sync with fw.h. */
#define KERNEL_CS32 0x08
#define KERNEL_CS 0x10
#define KERNEL_DS 0x18

#define MSR_EFER      0xc0000080
#define EFER_LME      (1 << 8)
#define CR0_PE_MP_ET_NE_WP_PG 0x80010033
#define CR4_PAE       (1 << 5)
#define PTE_P_W_U     0x7
#define PDE_2M        0x87 /* present, writable, user, 2 MiB page */

	.section .note.pvh, "a", @note
	.balign 4
	.long 4          /* name size: "Xen\0" */
	.long 4          /* desc size */
	.long 18         /* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.long fw_entry32

	.section .text.entry, "ax", @progbits
	.code32
	.globl fw_entry32
fw_entry32:
	cli
	cld
	/* The loader zeroes .bss (PT_LOAD memsz), but a restart or another
	 * loader may not: zero it before anything lives there. */
	movl $__bss_start, %edi
	movl $__bss_end, %ecx
	subl %edi, %ecx
	shrl $2, %ecx
	xorl %eax, %eax
	rep stosl
	movl %ebx, fw_start_info_gpa
	movl $fw_boot_stack_top, %esp

	/* PML4[0] -> PDPT; PDPT[0..3] -> 4 PDs; 2048 2 MiB pages. */
	movl $fw_pdpt + PTE_P_W_U, fw_pml4
	movl $fw_pd + PTE_P_W_U, %eax
	xorl %ecx, %ecx
1:	movl %eax, fw_pdpt(, %ecx, 8)
	addl $4096, %eax
	incl %ecx
	cmpl $4, %ecx
	jb 1b
	movl $PDE_2M, %eax
	xorl %ecx, %ecx
2:	movl %eax, fw_pd(, %ecx, 8)
	addl $0x200000, %eax
	incl %ecx
	cmpl $2048, %ecx
	jb 2b

	movl %cr4, %eax
	orl $CR4_PAE, %eax
	movl %eax, %cr4
	movl $fw_pml4, %eax
	movl %eax, %cr3
	movl $MSR_EFER, %ecx
	rdmsr
	orl $EFER_LME, %eax
	wrmsr
	lgdt fw_gdt_desc
	movl $CR0_PE_MP_ET_NE_WP_PG, %eax
	movl %eax, %cr0
	ljmp $KERNEL_CS, $fw_entry64

	.code64
fw_entry64:
	movl $KERNEL_DS, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
	movq $fw_boot_stack_top, %rsp
	xorl %ebp, %ebp
	call fw_lib_init
	call main
	call fw_done

/* Application processors: the INIT/SIPI trampoline (copied below 1 MiB by
 * fw_smp_start, runs in real mode at CS:0) loads our GDT and enters
 * protected mode; fw_ap_entry32 then takes the same path as the BSP onto
 * the page tables the BSP built, and the stack in fw_ap_stack. */
	.section .rodata
	.code16
	.globl fw_ap_tramp, fw_ap_tramp_end
fw_ap_tramp:
	cli
	movw %cs, %ax
	movw %ax, %ds
	lgdtl fw_ap_gdt_desc - fw_ap_tramp
	movl %cr0, %eax
	orl $1, %eax
	movl %eax, %cr0
	ljmpl $KERNEL_CS32, $fw_ap_entry32
	.balign 8
	.word 0
fw_ap_gdt_desc:
	.word fw_gdt_end - fw_gdt - 1
	.long fw_gdt
fw_ap_tramp_end:

	.section .text.entry, "ax", @progbits
	.code32
fw_ap_entry32:
	movl $KERNEL_DS, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %cr4, %eax
	orl $CR4_PAE, %eax
	movl %eax, %cr4
	movl $fw_pml4, %eax
	movl %eax, %cr3
	movl $MSR_EFER, %ecx
	rdmsr
	orl $EFER_LME, %eax
	wrmsr
	movl $CR0_PE_MP_ET_NE_WP_PG, %eax
	movl %eax, %cr0
	ljmp $KERNEL_CS, $fw_ap_entry64

	.code64
fw_ap_entry64:
	movl $KERNEL_DS, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
	movq fw_ap_stack(%rip), %rsp
	xorl %ebp, %ebp
	call fw_ap_start
1:	cli
	hlt
	jmp 1b

	.data
	.balign 16
	/* 0x08 32-bit kernel code, 0x10 64-bit kernel code, 0x18 kernel data,
	 * 0x20 32-bit user code, 0x28 user data, 0x30 64-bit user code,
	 * 0x40 64-bit TSS (16 bytes, filled in by fw_lib_init). */
	.globl fw_gdt, fw_gdt_end
fw_gdt:
	.quad 0
	.quad 0x00cf9a000000ffff
	.quad 0x00af9a000000ffff
	.quad 0x00cf92000000ffff
	.quad 0x00cffa000000ffff
	.quad 0x00cff2000000ffff
	.quad 0x00affa000000ffff
	.quad 0
	.quad 0, 0
fw_gdt_end:

	.balign 8
	.word 0
fw_gdt_desc:
	.word fw_gdt_end - fw_gdt - 1
	.quad fw_gdt

	.bss
	.balign 4096
fw_pml4:
	.skip 4096
fw_pdpt:
	.skip 4096
fw_pd:
	.skip 4 * 4096
	.balign 16
fw_boot_stack:
	.skip 16384
fw_boot_stack_top:
	.balign 4
	.globl fw_start_info_gpa
fw_start_info_gpa:
	.skip 4
