/* A virtual CPU: its KVM fd, the shared kvm_run page, its thread and the
 * exit table that dispatches KVM_RUN exits. */
#ifndef KVISOR_VCPU_H
#define KVISOR_VCPU_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct vm;
struct kvm_run;
struct pvm_vcpu;
struct boot_info;

struct vcpu {
	struct vm *vm;
	unsigned id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool thread_started;
	struct pvm_vcpu *pvm; /* per-vCPU compatibility state, or NULL */
	unsigned long long exits;
};

/* Create vCPU (id) with its CPUID, MSRs, FPU and LAPIC set for Linux.
 * 0 or -errno; on error nothing is left open (no vcpu_destroy needed). */
int vcpu_create(struct vm *vm, unsigned id, struct vcpu *vcpu) __attribute__((warn_unused_result));

/* Set the registers of the boot vCPU for (boot). */
int vcpu_set_boot_state(struct vcpu *vcpu, const struct boot_info *boot)
	__attribute__((warn_unused_result));

/* Run loop of a vCPU thread (arg is the struct vcpu). */
void *vcpu_thread(void *arg);

/* Make a running vCPU leave KVM_RUN soon (signal + immediate_exit). */
void vcpu_kick(struct vcpu *vcpu);

/* Print the vCPU registers and segment state on stderr. */
void vcpu_dump(struct vcpu *vcpu);

/* Close what vcpu_create opened; the thread must have been joined. */
void vcpu_destroy(struct vcpu *vcpu);

#endif
