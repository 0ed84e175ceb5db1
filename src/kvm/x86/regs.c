/* x86 vCPU initial state: CPUID, MSRs, FPU, LAPIC LVTs, boot GDT, identity
 * page tables and the entry registers for Linux 64-bit and PVH boots. */
#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kvisor/boot.h"
#include "kvisor/config.h"
#include "kvisor/layout.h"
#include "kvisor/log.h"
#include "kvisor/mem.h"
#include "kvisor/pvm.h"
#include "kvisor/vcpu.h"
#include "kvisor/vm.h"
#include "kvisor/x86.h"

#define MSR_IA32_SYSENTER_CS    0x174
#define MSR_IA32_SYSENTER_ESP   0x175
#define MSR_IA32_SYSENTER_EIP   0x176
#define MSR_IA32_MISC_ENABLE    0x1a0
#define MSR_STAR                0xc0000081
#define MSR_LSTAR               0xc0000082
#define MSR_CSTAR               0xc0000083
#define MSR_SYSCALL_MASK        0xc0000084
#define MSR_KERNEL_GS_BASE      0xc0000102
#define MISC_ENABLE_FAST_STRING 1ULL

#define APIC_LVT0        0x350
#define APIC_LVT1        0x360
#define APIC_MODE_NMI    0x4
#define APIC_MODE_EXTINT 0x7

static int vcpu_ioctl(struct vcpu *vcpu, unsigned long req, void *arg, const char *what)
{
	if (ioctl(vcpu->fd, req, arg) < 0) {
		int err = errno;

		log_err("vcpu%u: %s: %s", vcpu->id, what, strerror(err));
		return -err;
	}
	return 0;
}

static int x86_set_cpuid(struct vcpu *vcpu)
{
	struct kvm_cpuid2 *c = x86_cpuid_for_vcpu(vcpu->vm->cpuid, vcpu->id, vcpu->vm->cfg->cpus);
	int ret;

	if (!c)
		return -ENOMEM;
	pvm_filter_cpuid(vcpu->vm, c);
	ret = vcpu_ioctl(vcpu, KVM_SET_CPUID2, c, "KVM_SET_CPUID2");
	free(c);
	return ret;
}

static int x86_set_msrs(struct vcpu *vcpu)
{
	static const uint32_t zeroed[] = {
		MSR_IA32_SYSENTER_CS,
		MSR_IA32_SYSENTER_ESP,
		MSR_IA32_SYSENTER_EIP,
		MSR_STAR,
		MSR_LSTAR,
		MSR_CSTAR,
		MSR_SYSCALL_MASK,
		MSR_KERNEL_GS_BASE,
	};
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[16];
	} m;
	unsigned n = 0;
	int ret;

	memset(&m, 0, sizeof(m));
	for (size_t i = 0; i < sizeof(zeroed) / sizeof(zeroed[0]); i++)
		m.e[n++].index = zeroed[i];
	m.e[n].index = MSR_IA32_MISC_ENABLE;
	m.e[n++].data = MISC_ENABLE_FAST_STRING;
	m.hdr.nmsrs = n;
	ret = ioctl(vcpu->fd, KVM_SET_MSRS, &m);
	if (ret < 0)
		return vcpu_ioctl(vcpu, KVM_SET_MSRS, &m, "KVM_SET_MSRS");
	if ((unsigned)ret != n)
		log_debug("vcpu%u: KVM_SET_MSRS set %d of %u MSRs", vcpu->id, ret, n);
	return 0;
}

static int x86_set_fpu_lapic(struct vcpu *vcpu)
{
	struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 };
	struct kvm_lapic_state lapic;
	uint32_t *lvt0, *lvt1;
	int ret;

	ret = vcpu_ioctl(vcpu, KVM_SET_FPU, &fpu, "KVM_SET_FPU");
	if (!ret)
		ret = vcpu_ioctl(vcpu, KVM_GET_LAPIC, &lapic, "KVM_GET_LAPIC");
	if (ret)
		return ret;
	/* Like a PC: LINT0 takes the 8259's ExtINT, LINT1 is NMI. */
	lvt0 = (uint32_t *)&lapic.regs[APIC_LVT0];
	lvt1 = (uint32_t *)&lapic.regs[APIC_LVT1];
	*lvt0 = (*lvt0 & ~0x700u) | (APIC_MODE_EXTINT << 8);
	*lvt1 = (*lvt1 & ~0x700u) | (APIC_MODE_NMI << 8);
	return vcpu_ioctl(vcpu, KVM_SET_LAPIC, &lapic, "KVM_SET_LAPIC");
}

int x86_vcpu_init(struct vcpu *vcpu)
{
	int ret = x86_set_cpuid(vcpu);

	if (!ret)
		ret = x86_set_msrs(vcpu);
	if (!ret)
		ret = x86_set_fpu_lapic(vcpu);
	return ret;
}

int x86_write_boot_tables(struct guest_mem *mem)
{
	uint64_t gdt[6] = {
		0,
		0,
		0x00af9b000000ffffULL, /* 0x10: 64-bit code */
		0x00cf93000000ffffULL, /* 0x18: flat data */
		0x00cf9b000000ffffULL, /* 0x20: 32-bit code (PVH) */
		0x00008b0000000067ULL, /* 0x28: busy TSS at 0 */
	};
	uint64_t *pml4 = mem_gpa_ptr(mem, LAYOUT_PML4_GPA, 4096);
	uint64_t *pdpt = mem_gpa_ptr(mem, LAYOUT_PDPT_GPA, 4096);
	uint64_t *pd = mem_gpa_ptr(mem, LAYOUT_PD_GPA, 4 * 4096);

	if (!pml4 || !pdpt || !pd || mem_write(mem, LAYOUT_GDT_GPA, gdt, sizeof(gdt)))
		return -EFAULT;
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	pml4[0] = LAYOUT_PDPT_GPA | 0x3; /* present, writable */
	for (unsigned i = 0; i < 4; i++)
		pdpt[i] = (LAYOUT_PD_GPA + i * 4096ULL) | 0x3;
	for (unsigned i = 0; i < 4 * 512; i++)
		pd[i] = ((uint64_t)i << 21) | 0x83; /* 2 MiB page, present, writable */
	return 0;
}

static void x86_seg(struct kvm_segment *s, uint16_t sel, uint8_t type, int l, int db)
{
	memset(s, 0, sizeof(*s));
	s->selector = sel;
	s->limit = 0xffffffff;
	s->type = type;
	s->present = 1;
	s->s = 1;
	s->l = l;
	s->db = db;
	s->g = 1;
}

static void x86_boot_sregs(struct kvm_sregs *sr, const struct boot_info *boot)
{
	bool pvh = boot->entry == BOOT_ENTRY_PVH32;

	x86_seg(&sr->cs, pvh ? X86_GDT_CODE32 : X86_GDT_CODE64, 0xb, !pvh, pvh);
	x86_seg(&sr->ds, X86_GDT_DATA, 0x3, 0, 1);
	sr->es = sr->fs = sr->gs = sr->ss = sr->ds;
	memset(&sr->tr, 0, sizeof(sr->tr));
	sr->tr.selector = X86_GDT_TSS;
	sr->tr.limit = 0x67;
	sr->tr.type = 0xb;
	sr->tr.present = 1;
	sr->gdt.base = LAYOUT_GDT_GPA;
	sr->gdt.limit = 6 * 8 - 1;
	if (pvh) {
		sr->cr0 = 0x11; /* PE, ET: flat protected mode, no paging */
		sr->cr4 = 0;
		sr->efer = 0;
		return;
	}
	sr->cr3 = LAYOUT_PML4_GPA;
	sr->cr4 = 0x20;       /* PAE */
	sr->cr0 = 0x80050033; /* PG WP NE ET MP PE */
	sr->efer = 0x500;     /* LME LMA */
}

int x86_set_boot_regs(struct vcpu *vcpu, const struct boot_info *boot)
{
	struct kvm_sregs sr;
	struct kvm_regs r;
	int ret;

	ret = x86_write_boot_tables(&vcpu->vm->mem);
	if (ret) {
		log_err("guest RAM too small for the boot page tables");
		return ret;
	}
	ret = vcpu_ioctl(vcpu, KVM_GET_SREGS, &sr, "KVM_GET_SREGS");
	if (ret)
		return ret;
	x86_boot_sregs(&sr, boot);
	ret = vcpu_ioctl(vcpu, KVM_SET_SREGS, &sr, "KVM_SET_SREGS");
	if (ret)
		return ret;
	memset(&r, 0, sizeof(r));
	r.rflags = 0x2;
	r.rip = boot->rip;
	if (boot->entry == BOOT_ENTRY_PVH32) {
		r.rbx = boot->arg;
	} else {
		r.rsi = boot->arg;
		r.rsp = LAYOUT_BOOT_STACK_GPA;
	}
	return vcpu_ioctl(vcpu, KVM_SET_REGS, &r, "KVM_SET_REGS");
}
