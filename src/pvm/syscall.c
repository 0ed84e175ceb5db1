/* The syscall fix-up for kvm-pvm: `syscall` from guest CPL3 jumps to LSTAR
 * without changing CS/SS, so the kernel's entry page faults (#PF at
 * RIP == LSTAR from user CS). A hardware breakpoint on the guest's #PF
 * handler catches that fault; kvisor then completes the syscall the way the
 * CPU should have (kernel CS/SS from STAR) and drops the exception frame.
 * Any other #PF is single-stepped past the breakpoint and re-armed. The
 * guest's own debug registers are overridden while this is active. */
#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "kvisor/log.h"
#include "kvisor/vcpu.h"
#include "kvisor/vm.h"
#include "kvisor/x86.h"
#include "pvm_priv.h"

#define MSR_STAR        0xc0000081
#define MSR_LSTAR       0xc0000082
#define MSR_FMASK       0xc0000084
#define X86_RFLAGS_RF   (1ULL << 16)
#define X86_CR4_LA57    (1ULL << 12)
#define X86_PF_VECTOR   14
#define DR6_BS          (1ULL << 14)
#define DR7_G0          (1ULL << 1)
#define POLL_UNARMED_NS (10 * 1000 * 1000ULL)
#define POLL_ARMED_NS   (100 * 1000 * 1000ULL)

static uint64_t pvm_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int pvm_get_msrs(struct vcpu *vcpu, uint64_t *star, uint64_t *lstar, uint64_t *fmask)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[3];
	} m;

	memset(&m, 0, sizeof(m));
	m.hdr.nmsrs = 3;
	m.e[0].index = MSR_STAR;
	m.e[1].index = MSR_LSTAR;
	m.e[2].index = MSR_FMASK;
	if (ioctl(vcpu->fd, KVM_GET_MSRS, &m) != 3)
		return -EIO;
	*star = m.e[0].data;
	*lstar = m.e[1].data;
	*fmask = m.e[2].data;
	return 0;
}

/* Address of the guest's #PF handler from its IDT, or -EAGAIN while the
 * guest has none (yet). */
static int pvm_pf_handler(struct vcpu *vcpu, const struct kvm_sregs *sr, uint64_t *handler)
{
	uint32_t gate[4];
	int la57 = !!(sr->cr4 & X86_CR4_LA57);

	if (!(sr->cr0 & 0x80000000ULL) || !(sr->efer & 0x400) ||
	    sr->idt.limit < X86_PF_VECTOR * 16 + 15)
		return -EAGAIN;
	if (x86_read_gva(&vcpu->vm->mem, sr->cr3, la57, sr->idt.base + X86_PF_VECTOR * 16, gate,
			 sizeof(gate)))
		return -EAGAIN;
	if (!(gate[1] & 0x8000)) /* not present */
		return -EAGAIN;
	*handler = (gate[0] & 0xffff) | (gate[1] & 0xffff0000) | ((uint64_t)gate[2] << 32);
	return 0;
}

static int pvm_set_debug(struct vcpu *vcpu, bool bp, bool step)
{
	struct kvm_guest_debug dbg;

	memset(&dbg, 0, sizeof(dbg));
	if (bp || step)
		dbg.control = KVM_GUESTDBG_ENABLE;
	if (bp) {
		dbg.control |= KVM_GUESTDBG_USE_HW_BP;
		dbg.arch.debugreg[0] = vcpu->pvm->bp_gva;
		dbg.arch.debugreg[7] = DR7_G0; /* execute breakpoint, length 1 */
	}
	if (step)
		dbg.control |= KVM_GUESTDBG_SINGLESTEP;
	if (ioctl(vcpu->fd, KVM_SET_GUEST_DEBUG, &dbg) < 0)
		return -errno;
	return 0;
}

/* Re-read IDT[14], STAR and LSTAR; (re-)arm the breakpoint when the guest
 * has a #PF handler and a syscall entry, or changed either. */
int pvm_syscall_poll(struct vcpu *vcpu)
{
	struct pvm_vcpu *p = vcpu->pvm;
	struct kvm_sregs sr;
	uint64_t now = pvm_now_ns(), handler, star, lstar, fmask;
	int ret;

	if (!p || p->stepping || now < p->next_check_ns)
		return 0;
	p->next_check_ns = now + (p->armed ? POLL_ARMED_NS : POLL_UNARMED_NS);
	if (ioctl(vcpu->fd, KVM_GET_SREGS, &sr) < 0)
		return -errno;
	if (pvm_pf_handler(vcpu, &sr, &handler) || pvm_get_msrs(vcpu, &star, &lstar, &fmask) ||
	    !lstar)
		return 0;
	p->fmask = fmask; /* may change without re-arming */
	if (p->armed && handler == p->bp_gva && lstar == p->lstar && star == p->star)
		return 0;
	p->bp_gva = handler;
	p->lstar = lstar;
	p->star = star;
	ret = pvm_set_debug(vcpu, true, false);
	if (ret)
		return ret;
	if (!p->armed)
		log_debug("vcpu%u: syscall fix-up armed (#PF handler 0x%llx, LSTAR 0x%llx)",
			  vcpu->id, (unsigned long long)handler, (unsigned long long)lstar);
	p->armed = true;
	return 0;
}

static void pvm_seg_kernel(struct kvm_segment *s, uint16_t sel, int code)
{
	memset(s, 0, sizeof(*s));
	s->selector = sel;
	s->limit = 0xffffffff;
	s->type = code ? 0xb : 0x3;
	s->present = 1;
	s->s = 1;
	s->l = code;
	s->db = !code;
	s->g = 1;
}

/* Complete a syscall that faulted at LSTAR: kernel CS/SS from STAR, user
 * RSP and the already-masked RFLAGS from the frame, RIP = LSTAR. RCX and
 * R11 were set by the CPU before it faulted. */
static int pvm_fix_syscall(struct vcpu *vcpu, struct kvm_regs *r, const uint64_t *frame)
{
	struct pvm_vcpu *p = vcpu->pvm;
	uint16_t cs = (p->star >> 32) & 0xfffc;
	struct kvm_sregs sr;

	if (ioctl(vcpu->fd, KVM_GET_SREGS, &sr) < 0)
		return -errno;
	pvm_seg_kernel(&sr.cs, cs, 1);
	pvm_seg_kernel(&sr.ss, cs + 8, 0);
	if (ioctl(vcpu->fd, KVM_SET_SREGS, &sr) < 0)
		return -errno;
	r->rip = p->lstar;
	r->rflags = frame[3];
	r->rsp = frame[4];
	if (ioctl(vcpu->fd, KVM_SET_REGS, r) < 0)
		return -errno;
	__atomic_add_fetch(&vcpu->vm->pvm->syscalls, 1, __ATOMIC_RELAXED);
	return 0;
}

/* KVM_EXIT_DEBUG. Returns 1 when it was ours, 0 when not, -errno. */
int pvm_syscall_debug_exit(struct vcpu *vcpu)
{
	struct pvm_vcpu *p = vcpu->pvm;
	struct kvm_debug_exit_arch *d = &vcpu->run->debug.arch;
	struct kvm_sregs sr;
	struct kvm_regs r;
	uint64_t frame[6]; /* error code, RIP, CS, RFLAGS, RSP, SS */

	if (!p)
		return 0;
	if (p->stepping) {
		/* One instruction of the handler ran: put the breakpoint back. */
		p->stepping = false;
		return pvm_set_debug(vcpu, true, false) ?: 1;
	}
	if (!p->armed || d->pc != p->bp_gva)
		return 0;
	if (ioctl(vcpu->fd, KVM_GET_REGS, &r) < 0 || ioctl(vcpu->fd, KVM_GET_SREGS, &sr) < 0)
		return -errno;
	/* A real syscall left RFLAGS == R11 & ~FMASK; a user jump to LSTAR
	 * (a plain #PF on hardware) cannot fake that, since user code cannot
	 * clear IF: it must not become a privileged entry with its own flags. */
	if (!x86_read_gva(&vcpu->vm->mem, sr.cr3, !!(sr.cr4 & X86_CR4_LA57), r.rsp, frame,
			  sizeof(frame)) &&
	    (frame[2] & 3) == 3 && frame[1] == p->lstar &&
	    ((frame[3] ^ (r.r11 & ~p->fmask)) & ~X86_RFLAGS_RF) == 0)
		return pvm_fix_syscall(vcpu, &r, frame) ?: 1;
	/* An ordinary page fault: step over the breakpoint (RF is ignored here). */
	__atomic_add_fetch(&vcpu->vm->pvm->stepped, 1, __ATOMIC_RELAXED);
	p->stepping = true;
	return pvm_set_debug(vcpu, false, true) ?: 1;
}
