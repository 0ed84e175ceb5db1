/* Compatibility layer for kvm-pvm hosts (software KVM): detection, the
 * default command-line additions and completion of instructions that the
 * host's emulator cannot run. Inactive on hardware KVM. */
#ifndef KVISOR_PVM_H
#define KVISOR_PVM_H

#include <stdbool.h>
#include <stdint.h>

struct vm;
struct vcpu;
struct kvm_cpuid2;

/* True when /dev/kvm is provided by kvm_pvm (/sys/module/kvm_pvm exists). */
bool pvm_host_detect(void);

/* Decide per vm->cfg->pvm_compat whether the layer is active; sets vm->pvm. */
int pvm_init(struct vm *vm) __attribute__((warn_unused_result));
void pvm_destroy(struct vm *vm);

/* The kernel command line for a kvm-pvm host: (user)'s parameters, then
 * the ones that keep Linux away from instructions the host cannot emulate,
 * placed before a "--" (what follows it is for init and stays last); the
 * user's clearcpuid= lists are merged into kvisor's single one (Linux 6.1
 * honours only the last clearcpuid=). malloc'd; NULL without memory. */
char *pvm_cmdline_merge(const char *user);

/* Adjust a vCPU's CPUID table for the host (e.g. hide PV features that
 * do not work on it). No-op when the layer is off. */
void pvm_filter_cpuid(const struct vm *vm, struct kvm_cpuid2 *cpuid);

/* KVM_EXIT_INTERNAL_ERROR with suberror KVM_INTERNAL_ERROR_EMULATION:
 * complete the instruction on the vCPU state if the layer knows it.
 * Returns 1 if handled (resume the vCPU), 0 if not, -errno on failure. */
int pvm_handle_emulation_failure(struct vcpu *vcpu);

/* Per-vCPU state (NULL when the layer is off). */
int pvm_vcpu_init(struct vcpu *vcpu) __attribute__((warn_unused_result));
void pvm_vcpu_destroy(struct vcpu *vcpu);

/* KVM_EXIT_DEBUG: 1 if the layer consumed it, 0 if not, -errno. */
int pvm_handle_debug(struct vcpu *vcpu);

/* Called by a vCPU thread after port exits: notices (rate-limited) when the
 * guest sets or changes its #PF handler or syscall entry and re-arms the
 * syscall fix-up. Cheap when nothing is due. */
void pvm_poll(struct vcpu *vcpu);

#endif
