/* Private state of the kvm-pvm compatibility layer. */
#ifndef KVISOR_PVM_PRIV_H
#define KVISOR_PVM_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vcpu;

/* Room for the instruction kinds of emulate.h (checked in emulate_vcpu.c). */
#define PVM_EMU_MAX_KINDS 16

struct pvm_state {
	unsigned long long completed;                   /* instructions completed for the guest */
	unsigned long long emulated[PVM_EMU_MAX_KINDS]; /* per enum pvm_emu_kind */
	unsigned emulated_seen;                         /* kinds logged once already (bit mask) */
	unsigned long long syscalls;                    /* failed syscalls fixed up */
	unsigned long long stepped;                     /* ordinary #PFs single-stepped */
};

/* Per-vCPU state of the syscall fix-up (only touched by its vCPU thread). */
struct pvm_vcpu {
	bool armed;      /* breakpoint on the #PF handler is set */
	bool stepping;   /* single-stepping past the handler's first insn */
	uint64_t bp_gva; /* #PF handler address the breakpoint is on */
	uint64_t lstar;
	uint64_t star;
	uint64_t fmask; /* SYSCALL_MASK: tells a real syscall from a jump */
	uint64_t next_check_ns;
};

/* emulate_vcpu.c: complete the instruction (insn, len) the host failed to
 * emulate on (vcpu): 1 when done (counted per kind), 0 when not (logged with
 * the decoded instruction and why), -errno when a KVM ioctl failed. */
int pvm_emulate_vcpu(struct vcpu *vcpu, const uint8_t *insn, size_t len);
/* Log the per-kind counters of (st) at debug level (for VM destroy). */
void pvm_emulate_log_counts(const struct pvm_state *st);

int pvm_syscall_poll(struct vcpu *vcpu);
int pvm_syscall_debug_exit(struct vcpu *vcpu);

#endif
