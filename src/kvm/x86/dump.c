/* Register dump of a vCPU for fatal exits (triple fault, emulation failure),
 * and the RIP and CPL the profiler samples. */
#include <errno.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/ioctl.h>

#include "kvisor/vcpu.h"
#include "kvisor/x86.h"

#define X86_CR0_PE    (1ULL << 0)
#define X86_RFLAGS_VM (1ULL << 17)

#define X86_RFLAGS_FIXED (1ULL << 1) /* always set: marks registers KVM stored */
#define X86_SYNC_PC      (KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS)

/*
 * The profiler's cheap path (KVM_CAP_SYNC_REGS): the timer sets
 * kvm_valid_regs before it kicks, so the KVM_RUN that returns EINTR stores
 * the registers into kvm_run on its way out, and the vCPU thread reads them
 * there instead of paying for two ioctls (on kvm-pvm hosts each costs about
 * as much as the KVM_RUN round trip). Only the vCPU thread clears
 * kvm_valid_regs, and it zeroes s.regs.regs.rflags right after: so a set
 * bit 1 there means every KVM_RUN since the last clear stored the
 * registers, the last one included; a zero means read them with ioctls.
 */
void x86_vcpu_pc_request(struct vcpu *vcpu)
{
	__atomic_store_n(&vcpu->run->kvm_valid_regs, X86_SYNC_PC, __ATOMIC_SEQ_CST);
}

bool x86_vcpu_pc_sync_supported(int kvm_fd)
{
	int caps = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SYNC_REGS);

	return caps > 0 && (caps & X86_SYNC_PC) == X86_SYNC_PC;
}

static unsigned x86_cpl(uint64_t cr0, uint64_t rflags, uint16_t cs)
{
	/* Real mode runs at 0, virtual-8086 mode at 3 whatever CS holds. */
	if (!(cr0 & X86_CR0_PE))
		return 0;
	return rflags & X86_RFLAGS_VM ? 3 : cs & 3;
}

int x86_vcpu_pc(struct vcpu *vcpu, uint64_t *rip, unsigned *cpl)
{
	struct kvm_sync_regs *sync = &vcpu->run->s.regs;
	struct kvm_regs r;
	struct kvm_sregs s;
	int ret = 0;

	if (sync->regs.rflags & X86_RFLAGS_FIXED) {
		*rip = sync->regs.rip;
		*cpl = x86_cpl(sync->sregs.cr0, sync->regs.rflags, sync->sregs.cs.selector);
	} else if (ioctl(vcpu->fd, KVM_GET_REGS, &r) < 0 ||
		   ioctl(vcpu->fd, KVM_GET_SREGS, &s) < 0) {
		ret = -errno;
	} else {
		*rip = r.rip;
		*cpl = x86_cpl(s.cr0, r.rflags, s.cs.selector);
	}
	__atomic_store_n(&vcpu->run->kvm_valid_regs, 0, __ATOMIC_SEQ_CST);
	sync->regs.rflags = 0;
	return ret;
}

static void dump_seg(const char *name, const struct kvm_segment *s)
{
	fprintf(stderr, "  %-3s sel=%04x base=%016llx limit=%08x type=%x dpl=%u p=%u l=%u db=%u\n",
		name, s->selector, (unsigned long long)s->base, s->limit, s->type, s->dpl,
		s->present, s->l, s->db);
}

void vcpu_dump(struct vcpu *vcpu)
{
	struct kvm_regs r;
	struct kvm_sregs s;

	if (ioctl(vcpu->fd, KVM_GET_REGS, &r) < 0 || ioctl(vcpu->fd, KVM_GET_SREGS, &s) < 0) {
		fprintf(stderr, "kvisor: vcpu%u: registers unavailable\n", vcpu->id);
		return;
	}
	fprintf(stderr,
		"kvisor: vcpu%u registers:\n"
		"  rip=%016llx rsp=%016llx rflags=%016llx\n"
		"  rax=%016llx rbx=%016llx rcx=%016llx rdx=%016llx\n"
		"  rsi=%016llx rdi=%016llx rbp=%016llx\n"
		"  r8 =%016llx r9 =%016llx r10=%016llx r11=%016llx\n"
		"  r12=%016llx r13=%016llx r14=%016llx r15=%016llx\n"
		"  cr0=%016llx cr2=%016llx cr3=%016llx cr4=%016llx efer=%016llx\n",
		vcpu->id, r.rip, r.rsp, r.rflags, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp,
		r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, s.cr0, s.cr2, s.cr3, s.cr4,
		s.efer);
	dump_seg("cs", &s.cs);
	dump_seg("ss", &s.ss);
	dump_seg("ds", &s.ds);
	dump_seg("tr", &s.tr);
	fprintf(stderr, "  gdt=%016llx/%x idt=%016llx/%x\n", (unsigned long long)s.gdt.base,
		s.gdt.limit, (unsigned long long)s.idt.base, s.idt.limit);
}
