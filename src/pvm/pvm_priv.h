/* Private state of the kvm-pvm compatibility layer. */
#ifndef KVISOR_PVM_PRIV_H
#define KVISOR_PVM_PRIV_H

#include <stdbool.h>
#include <stdint.h>

struct vcpu;

struct pvm_state {
	unsigned long long completed; /* instructions completed for the guest */
	unsigned long long syscalls;  /* failed syscalls fixed up */
	unsigned long long stepped;   /* ordinary #PFs single-stepped */
};

/* Per-vCPU state of the syscall fix-up (only touched by its vCPU thread). */
struct pvm_vcpu {
	bool armed;         /* breakpoint on the #PF handler is set */
	bool stepping;      /* single-stepping past the handler's first insn */
	uint64_t bp_gva;    /* #PF handler address the breakpoint is on */
	uint64_t lstar;
	uint64_t star;
	uint64_t next_check_ns;
};

int pvm_syscall_poll(struct vcpu *vcpu);
int pvm_syscall_debug_exit(struct vcpu *vcpu);

#endif
