/* Reading a paused VM's x86 state: per vCPU (registers, segments, events,
 * LAPIC, a subset of MSRs) and per VM (PICs, IOAPIC, PIT, kvmclock). Only
 * while paused: KVM does not allow vCPU ioctls during another thread's
 * KVM_RUN, and a running VM's state would be stale at once. */
#ifndef KVISOR_X86_STATE_H
#define KVISOR_X86_STATE_H

#include <linux/kvm.h>

struct vm;
struct vcpu;

#define VCPU_STATE_MSRS_MAX 24

struct vcpu_arch_state {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_vcpu_events events;
	struct kvm_mp_state mp_state; /* KVM_MP_STATE_RUNNABLE, _HALTED, ... */
	struct kvm_lapic_state lapic;
	/* The MSRs of x86_state_msrs[] that KVM could read, in that order
	 * (an MSR the host does not know is left out). */
	unsigned nr_msrs;
	struct kvm_msr_entry msrs[VCPU_STATE_MSRS_MAX];
};

struct vm_arch_state {
	struct kvm_irqchip pic_master; /* chip.pic */
	struct kvm_irqchip pic_slave;  /* chip.pic */
	struct kvm_irqchip ioapic;     /* chip.ioapic */
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clock; /* kvmclock, ns */
};

/* The MSR indexes vcpu_get_state tries (syscall, sysenter, segment bases,
 * TSC, PAT, kvmclock), and how many. */
extern const uint32_t x86_state_msrs[];
extern const unsigned x86_state_nr_msrs;

/* Read (vcpu)'s state into (st). 0; -EBUSY when the VM is not paused
 * (lifecycle_hold_paused); -errno of a failing ioctl (message logged). */
int vcpu_get_state(struct vcpu *vcpu, struct vcpu_arch_state *st)
	__attribute__((warn_unused_result));

/* Read the VM-wide state of the in-kernel irqchip, PIT and clock into
 * (st). 0, -EBUSY when not paused, or -errno (message logged). */
int vm_get_state(struct vm *vm, struct vm_arch_state *st) __attribute__((warn_unused_result));

/* Log, at debug level, one line per vCPU (RIP, CS, privilege level, MP
 * state, APIC ID) and one for the VM (IOAPIC base, PIT mode, PIC mask,
 * clock) of a paused VM; -EBUSY when not paused, or a getter's error. */
int vm_log_state(struct vm *vm);

#endif
