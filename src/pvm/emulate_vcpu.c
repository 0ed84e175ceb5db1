/* kvm-pvm instruction completion, vCPU half: loads the state the core needs
 * (registers and segments; FPU, XCR0 and MSRs only on demand), gives it guest
 * memory through the page walker, and applies only what changed. */
#include <cpuid.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kvisor/log.h"
#include "kvisor/mem.h"
#include "kvisor/vcpu.h"
#include "kvisor/vm.h"
#include "kvisor/x86.h"
#include "emulate.h"
#include "pvm_priv.h"

#define X86_CR0_PE     (1ULL << 0)
#define X86_CR0_PG     (1ULL << 31)
#define X86_CR4_LA57   (1ULL << 12)
#define X86_EFER_LMA   (1ULL << 10)
#define EMU_PAGE_SIZE  4096ULL
#define EMU_MAX_ACCESS 16 /* widest memory operand handled (m128) */

_Static_assert(PVM_EMU_NR_KINDS <= PVM_EMU_MAX_KINDS, "grow PVM_EMU_MAX_KINDS");

struct emu_ctx {
	struct vcpu *vcpu;
	const struct kvm_sregs *sregs;
	struct kvm_xsave xsave; /* FPU state, loaded on demand */
	bool fpu_loaded;
};

/* Host pointer to [la, la+len), which must lie in one page, or NULL when
 * the guest's page tables or RAM do not cover it. The walk does not check
 * the guest's R/W and U/S bits: the guest kernel is the only user here. */
static void *emu_page_ptr(struct emu_ctx *c, uint64_t la, uint64_t len)
{
	const struct kvm_sregs *s = c->sregs;
	uint64_t gpa = la;

	if ((s->cr0 & X86_CR0_PG) &&
	    x86_gva_to_gpa(&c->vcpu->vm->mem, s->cr3, !!(s->cr4 & X86_CR4_LA57), la, &gpa))
		return NULL;
	return mem_gpa_ptr(&c->vcpu->vm->mem, gpa, len);
}

/* Split [la, la+len) (len <= EMU_MAX_ACCESS) at page boundaries and map
 * each piece; all of it or -EFAULT. Returns the number of pieces. */
static int emu_map(struct emu_ctx *c, uint64_t la, size_t len, uint8_t *ptr[2], size_t part[2])
{
	size_t first = EMU_PAGE_SIZE - (la & (EMU_PAGE_SIZE - 1));
	int n = 0;

	if (len == 0 || len > EMU_MAX_ACCESS)
		return -EFAULT;
	part[0] = len < first ? len : first;
	part[1] = len - part[0];
	for (; n < 2 && part[n]; n++) {
		ptr[n] = emu_page_ptr(c, la + (n ? part[0] : 0), part[n]);
		if (!ptr[n])
			return -EFAULT;
	}
	return n;
}

static int emu_read(void *ctx, uint64_t la, void *dst, size_t len)
{
	uint8_t *ptr[2];
	size_t part[2];
	int n = emu_map(ctx, la, len, ptr, part);

	if (n < 0)
		return n;
	for (int i = 0; i < n; i++)
		memcpy((uint8_t *)dst + (i ? part[0] : 0), ptr[i], part[i]);
	return 0;
}

/* Both pages are mapped before the first byte is written. */
static int emu_write(void *ctx, uint64_t la, const void *src, size_t len)
{
	uint8_t *ptr[2];
	size_t part[2];
	int n = emu_map(ctx, la, len, ptr, part);

	if (n < 0)
		return n;
	for (int i = 0; i < n; i++)
		memcpy(ptr[i], (const uint8_t *)src + (i ? part[0] : 0), part[i]);
	return 0;
}

static bool emu_host_has_cx16(void)
{
	unsigned a, b, c, d;

	return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_CMPXCHG16B);
}

/* Atomic against the other vCPUs (the host's emulator and the CPU update
 * guest memory with locked instructions too): a locked CMPXCHG16B on the
 * host mapping. An aligned m128 never crosses a page. */
static int emu_cmpxchg16(void *ctx, uint64_t la, uint64_t cmp[2], const uint64_t val[2])
{
	uint8_t *p = emu_page_ptr(ctx, la, 16);
	uint64_t cur[2];
	bool eq;

	if (!p || ((uintptr_t)p & 15))
		return -EFAULT;
	if (!emu_host_has_cx16()) {
		/* Not atomic; no x86-64 host KVM runs on lacks CX16 in practice. */
		memcpy(cur, p, sizeof(cur));
		if (cur[0] != cmp[0] || cur[1] != cmp[1]) {
			memcpy(cmp, cur, sizeof(cur));
			return 0;
		}
		memcpy(p, val, sizeof(cur));
		return 1;
	}
	asm volatile("lock cmpxchg16b %1"
		     : "=@ccz"(eq), "+m"(*(unsigned __int128 *)p), "+a"(cmp[0]), "+d"(cmp[1])
		     : "b"(val[0]), "c"(val[1])
		     : "memory");
	return eq;
}

static int emu_rdmsr(void *ctx, uint32_t index, uint64_t *val)
{
	struct emu_ctx *c = ctx;
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e;
	} m;

	memset(&m, 0, sizeof(m));
	m.hdr.nmsrs = 1;
	m.e.index = index;
	if (ioctl(c->vcpu->fd, KVM_GET_MSRS, &m) != 1)
		return -EIO;
	*val = m.e.data;
	return 0;
}

static int emu_read_xcr0(void *ctx, uint64_t *val)
{
	struct emu_ctx *c = ctx;
	struct kvm_xcrs xcrs;

	memset(&xcrs, 0, sizeof(xcrs));
	if (ioctl(c->vcpu->fd, KVM_GET_XCRS, &xcrs) < 0)
		return -errno;
	for (unsigned i = 0; i < xcrs.nr_xcrs && i < KVM_MAX_XCRS; i++) {
		if (xcrs.xcrs[i].xcr == 0) {
			*val = xcrs.xcrs[i].value;
			return 0;
		}
	}
	return -EIO;
}

/* The legacy (FXSAVE) region of KVM_GET_XSAVE: FSW, MXCSR, MXCSR_MASK at
 * bytes 2, 24, 28; XSTATE_BV at 512. kvm-pvm's KVM_GET_FPU/KVM_SET_FPU do
 * not carry the guest's MXCSR (they read 0, writes are lost), the XSAVE
 * ioctls do. struct kvm_xsave's 4 KiB hold the whole state as long as the
 * VMM never asks for AMX guest permission (kvisor does not). */
#define XSAVE_FSW        2
#define XSAVE_MXCSR      24
#define XSAVE_MXCSR_MASK 28
#define XSAVE_XSTATE_BV  512
#define XFEATURE_SSE     (1ULL << 1)

static uint32_t emu_xsave_u32(const struct kvm_xsave *x, unsigned off)
{
	uint32_t v;

	memcpy(&v, (const uint8_t *)x->region + off, sizeof(v));
	return v;
}

static int emu_read_fpu(void *ctx, struct pvm_emu_fpu *fpu)
{
	struct emu_ctx *c = ctx;

	if (!c->fpu_loaded) {
		if (ioctl(c->vcpu->fd, KVM_GET_XSAVE, &c->xsave) < 0)
			return -errno;
		c->fpu_loaded = true;
	}
	fpu->fsw = (uint16_t)emu_xsave_u32(&c->xsave, XSAVE_FSW);
	fpu->mxcsr = emu_xsave_u32(&c->xsave, XSAVE_MXCSR);
	fpu->mxcsr_mask = emu_xsave_u32(&c->xsave, XSAVE_MXCSR_MASK);
	if (!fpu->mxcsr_mask)
		fpu->mxcsr_mask = 0xffbf; /* the SDM's default for a zero mask */
	return 0;
}

/* KVM takes MXCSR from the buffer only when XSTATE_BV names SSE (or x87 or
 * AVX); marking SSE in use keeps the XMM registers as read, since KVM
 * filled them in (with their init values if SSE was not in use). */
static int emu_write_mxcsr(struct emu_ctx *c, uint32_t mxcsr)
{
	uint64_t bv;

	if (!c->fpu_loaded)
		return -EIO;
	memcpy((uint8_t *)c->xsave.region + XSAVE_MXCSR, &mxcsr, sizeof(mxcsr));
	memcpy(&bv, (uint8_t *)c->xsave.region + XSAVE_XSTATE_BV, sizeof(bv));
	bv |= XFEATURE_SSE;
	memcpy((uint8_t *)c->xsave.region + XSAVE_XSTATE_BV, &bv, sizeof(bv));
	if (ioctl(c->vcpu->fd, KVM_SET_XSAVE, &c->xsave) < 0)
		return -errno;
	return 0;
}

static const struct pvm_emu_ops emu_vcpu_ops = {
	.read = emu_read,
	.write = emu_write,
	.cmpxchg16 = emu_cmpxchg16,
	.rdmsr = emu_rdmsr,
	.read_xcr0 = emu_read_xcr0,
	.read_fpu = emu_read_fpu,
};

static void emu_load(struct pvm_emu *e, const struct kvm_sregs *s)
{
	const struct kvm_segment *seg[PVM_EMU_NR_SEGS] = { &s->es, &s->cs, &s->ss,
							   &s->ds, &s->fs, &s->gs };

	for (int i = 0; i < PVM_EMU_NR_SEGS; i++)
		e->seg_base[i] = seg[i]->base;
	e->cr0 = s->cr0;
	e->cr4 = s->cr4;
	e->cpl = s->cs.selector & 3;
	if ((s->efer & X86_EFER_LMA) && s->cs.l)
		e->mode = 64;
	else if ((s->cr0 & X86_CR0_PE) && s->cs.db)
		e->mode = 32;
	else
		e->mode = 16;
}

/* Deliver (ev) on the next KVM_RUN. kvm-pvm drops "pending" exceptions
 * without KVM_CAP_EXCEPTION_PAYLOAD, so both kinds go in as "injected";
 * it delivers them through the guest IDT with the current RIP, which the
 * core already moved past a trap or software interrupt (checked with a
 * CPL0 test guest: int3, int 3, int $0x40, int $5, IF=0 too). Hardware KVM
 * would add the instruction length again for a soft interrupt: this path
 * only runs with the kvm-pvm layer on. */
static int emu_inject(struct vcpu *vcpu, const struct pvm_emu_event *ev)
{
	struct kvm_vcpu_events ve;

	if (ioctl(vcpu->fd, KVM_GET_VCPU_EVENTS, &ve) < 0)
		return -errno;
	if (ve.exception.injected || ve.interrupt.injected || ve.nmi.injected)
		return -EBUSY; /* never at an emulation failure; do not clobber it */
	ve.flags = 0;          /* leave NMI/SIPI/SMM/shadow state alone */
	if (ev->soft) {
		ve.interrupt.injected = 1;
		ve.interrupt.nr = ev->vector;
		ve.interrupt.soft = 1;
	} else {
		ve.exception.injected = 1;
		ve.exception.pending = 0;
		ve.exception.nr = ev->vector;
		ve.exception.has_error_code = ev->has_error_code;
		ve.exception.error_code = ev->error_code;
	}
	if (ioctl(vcpu->fd, KVM_SET_VCPU_EVENTS, &ve) < 0)
		return -errno;
	return 0;
}

/* Registers before the event: KVM_SET_REGS discards a queued exception. */
static int emu_apply(struct vcpu *vcpu, const struct pvm_emu *e, struct emu_ctx *c)
{
	if ((e->dirty & PVM_EMU_DIRTY_REGS) && ioctl(vcpu->fd, KVM_SET_REGS, &e->regs) < 0)
		return -errno;
	if (e->dirty & PVM_EMU_DIRTY_MXCSR) {
		int ret = emu_write_mxcsr(c, e->mxcsr);

		if (ret)
			return ret;
	}
	return e->event.valid ? emu_inject(vcpu, &e->event) : 0;
}

static void emu_hex(char *buf, size_t size, const uint8_t *insn, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < len && off + 4 <= size; i++)
		off += (size_t)snprintf(buf + off, size - off, "%s%02x", i ? " " : "", insn[i]);
}

static void emu_count(struct vcpu *vcpu, const struct pvm_emu *e, uint64_t rip)
{
	struct pvm_state *st = vcpu->vm->pvm;
	unsigned bit = 1u << e->kind;

	if (!st || e->kind <= PVM_EMU_NONE || e->kind >= PVM_EMU_NR_KINDS)
		return;
	__atomic_add_fetch(&st->emulated[e->kind], 1, __ATOMIC_RELAXED);
	if (!(__atomic_fetch_or(&st->emulated_seen, bit, __ATOMIC_RELAXED) & bit))
		log_debug("vcpu%u: completing '%s' at rip 0x%llx (first %s)%s%s", vcpu->id, e->text,
			  (unsigned long long)rip, pvm_emu_kind_name(e->kind),
			  e->event.valid ? ", injecting " : "",
			  e->event.valid ?
				  (e->event.soft ? "a software interrupt" : "an exception") :
				  "");
}

int pvm_emulate_vcpu(struct vcpu *vcpu, const uint8_t *insn, size_t len)
{
	struct kvm_sregs sregs;
	struct emu_ctx c = { .vcpu = vcpu, .sregs = &sregs };
	struct pvm_emu e;
	char hex[3 * 15 + 1];
	uint64_t rip;
	int ret;

	memset(&e, 0, sizeof(e));
	if (ioctl(vcpu->fd, KVM_GET_REGS, &e.regs) < 0 ||
	    ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	emu_load(&e, &sregs);
	rip = e.regs.rip;
	e.ops = &emu_vcpu_ops;
	e.ctx = &c;
	ret = pvm_emulate(&e, insn, len);
	if (ret) {
		emu_hex(hex, sizeof(hex), insn, e.len ? e.len : len);
		log_err("vcpu%u: cannot complete '%s' (%s) at rip 0x%llx, cpl %u, %u-bit: %s",
			vcpu->id, e.text[0] ? e.text : "?", hex, (unsigned long long)rip, e.cpl,
			e.mode, e.why ? e.why : strerror(-ret));
		return 0;
	}
	emu_count(vcpu, &e, rip);
	ret = emu_apply(vcpu, &e, &c);
	if (ret < 0) {
		log_err("vcpu%u: completing '%s' at rip 0x%llx: %s", vcpu->id, e.text,
			(unsigned long long)rip, strerror(-ret));
		return ret;
	}
	return 1;
}

void pvm_emulate_log_counts(const struct pvm_state *st)
{
	char buf[512];
	size_t off = 0;

	buf[0] = '\0';
	for (int k = PVM_EMU_NONE + 1; k < PVM_EMU_NR_KINDS && off < sizeof(buf); k++) {
		unsigned long long n = __atomic_load_n(&st->emulated[k], __ATOMIC_RELAXED);

		if (n)
			off += snprintf(buf + off, sizeof(buf) - off, " %s=%llu",
					pvm_emu_kind_name(k), n);
	}
	log_debug("kvm-pvm layer: instructions completed by kind:%s", off ? buf : " none");
}
