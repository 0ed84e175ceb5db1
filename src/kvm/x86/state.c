/* State getters of a paused VM: vCPU registers, events, LAPIC and MSRs, the
 * in-kernel irqchip, PIT and clock; and a debug summary of them. */
#include <errno.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kvisor/lifecycle.h"
#include "kvisor/log.h"
#include "kvisor/vcpu.h"
#include "kvisor/vm.h"
#include "kvisor/x86_state.h"

const uint32_t x86_state_msrs[] = {
	0x10,       /* TSC */
	0x174,      /* SYSENTER_CS */
	0x175,      /* SYSENTER_ESP */
	0x176,      /* SYSENTER_EIP */
	0x1a0,      /* MISC_ENABLE */
	0x277,      /* PAT */
	0x6e0,      /* TSC_DEADLINE */
	0xc0000081, /* STAR */
	0xc0000082, /* LSTAR */
	0xc0000083, /* CSTAR */
	0xc0000084, /* SYSCALL_MASK */
	0xc0000100, /* FS_BASE */
	0xc0000101, /* GS_BASE */
	0xc0000102, /* KERNEL_GS_BASE */
	0x4b564d00, /* KVM wall clock (new) */
	0x4b564d01, /* KVM system time (new) */
};
const unsigned x86_state_nr_msrs = sizeof(x86_state_msrs) / sizeof(x86_state_msrs[0]);

_Static_assert(sizeof(x86_state_msrs) / sizeof(x86_state_msrs[0]) <= VCPU_STATE_MSRS_MAX,
	       "vcpu_arch_state.msrs too small");

static int state_ioctl(int fd, unsigned long req, void *arg, const char *who, const char *what)
{
	if (ioctl(fd, req, arg) < 0) {
		int err = errno;

		log_err("%s: %s: %s", who, what, strerror(err));
		return -err;
	}
	return 0;
}

/* One KVM_GET_MSRS per MSR: a batch stops at the first unknown one. */
static void state_read_msrs(struct vcpu *vcpu, struct vcpu_arch_state *st)
{
	st->nr_msrs = 0;
	for (unsigned i = 0; i < x86_state_nr_msrs; i++) {
		struct {
			struct kvm_msrs hdr;
			struct kvm_msr_entry e;
		} m = { .hdr.nmsrs = 1, .e.index = x86_state_msrs[i] };

		if (ioctl(vcpu->fd, KVM_GET_MSRS, &m) == 1)
			st->msrs[st->nr_msrs++] = m.e;
	}
}

static int state_vcpu_read(struct vcpu *vcpu, struct vcpu_arch_state *st)
{
	char who[16];
	int ret;

	snprintf(who, sizeof(who), "vcpu%u", vcpu->id);
	memset(st, 0, sizeof(*st));
	ret = state_ioctl(vcpu->fd, KVM_GET_REGS, &st->regs, who, "KVM_GET_REGS");
	if (!ret)
		ret = state_ioctl(vcpu->fd, KVM_GET_SREGS, &st->sregs, who, "KVM_GET_SREGS");
	if (!ret)
		ret = state_ioctl(vcpu->fd, KVM_GET_VCPU_EVENTS, &st->events, who,
				  "KVM_GET_VCPU_EVENTS");
	if (!ret)
		ret = state_ioctl(vcpu->fd, KVM_GET_MP_STATE, &st->mp_state, who,
				  "KVM_GET_MP_STATE");
	if (!ret)
		ret = state_ioctl(vcpu->fd, KVM_GET_LAPIC, &st->lapic, who, "KVM_GET_LAPIC");
	if (!ret)
		state_read_msrs(vcpu, st);
	return ret;
}

int vcpu_get_state(struct vcpu *vcpu, struct vcpu_arch_state *st)
{
	int ret = lifecycle_hold_paused(vcpu->vm);

	if (ret)
		return ret;
	ret = state_vcpu_read(vcpu, st);
	lifecycle_release(vcpu->vm);
	return ret;
}

static int state_irqchip(struct vm *vm, struct kvm_irqchip *chip, uint32_t id, const char *what)
{
	memset(chip, 0, sizeof(*chip));
	chip->chip_id = id;
	return state_ioctl(vm->vm_fd, KVM_GET_IRQCHIP, chip, "vm", what);
}

int vm_get_state(struct vm *vm, struct vm_arch_state *st)
{
	int ret = lifecycle_hold_paused(vm);

	if (ret)
		return ret;
	memset(st, 0, sizeof(*st));
	ret = state_irqchip(vm, &st->pic_master, KVM_IRQCHIP_PIC_MASTER,
			    "KVM_GET_IRQCHIP (PIC master)");
	if (!ret)
		ret = state_irqchip(vm, &st->pic_slave, KVM_IRQCHIP_PIC_SLAVE,
				    "KVM_GET_IRQCHIP (PIC slave)");
	if (!ret)
		ret = state_irqchip(vm, &st->ioapic, KVM_IRQCHIP_IOAPIC,
				    "KVM_GET_IRQCHIP (IOAPIC)");
	if (!ret)
		ret = state_ioctl(vm->vm_fd, KVM_GET_PIT2, &st->pit, "vm", "KVM_GET_PIT2");
	if (!ret)
		ret = state_ioctl(vm->vm_fd, KVM_GET_CLOCK, &st->clock, "vm", "KVM_GET_CLOCK");
	lifecycle_release(vm);
	return ret;
}

static const char *state_mp_name(uint32_t mp)
{
	static const char *const names[] = {
		[KVM_MP_STATE_RUNNABLE] = "runnable",
		[KVM_MP_STATE_UNINITIALIZED] = "uninitialized",
		[KVM_MP_STATE_INIT_RECEIVED] = "init-received",
		[KVM_MP_STATE_HALTED] = "halted",
		[KVM_MP_STATE_SIPI_RECEIVED] = "sipi-received",
	};

	return mp < sizeof(names) / sizeof(names[0]) && names[mp] ? names[mp] : "other";
}

int vm_log_state(struct vm *vm)
{
	struct vcpu_arch_state vs;
	struct vm_arch_state ms;
	int ret;

	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		uint32_t apic_id;

		ret = vcpu_get_state(&vm->vcpus[i], &vs);
		if (ret)
			return ret;
		memcpy(&apic_id, &vs.lapic.regs[0x20], sizeof(apic_id)); /* xAPIC ID register */
		log_debug("vcpu%u state: rip=%016llx cs=%04x dpl=%u mp_state=%s apic_id=%u msrs=%u",
			  i, (unsigned long long)vs.regs.rip, vs.sregs.cs.selector, vs.sregs.cs.dpl,
			  state_mp_name(vs.mp_state.mp_state), apic_id >> 24, vs.nr_msrs);
	}
	ret = vm_get_state(vm, &ms);
	if (ret)
		return ret;
	log_debug("vm state: ioapic_base=%llx pit0_mode=%u pic_master_imr=%02x clock=%llu",
		  (unsigned long long)ms.ioapic.chip.ioapic.base_address, ms.pit.channels[0].mode,
		  ms.pic_master.chip.pic.imr, (unsigned long long)ms.clock.clock);
	return 0;
}
