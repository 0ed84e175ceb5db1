/* x86 vCPU state: CPUID, MSRs, FPU, LAPIC and boot-time register setup. */
#ifndef KVISOR_X86_H
#define KVISOR_X86_H

#include <stdbool.h>
#include <stdint.h>

struct vm;
struct vcpu;
struct boot_info;
struct guest_mem;
struct kvm_cpuid2;

/* Fetch KVM_GET_SUPPORTED_CPUID into vm->cpuid. */
int x86_cpuid_init(struct vm *vm) __attribute__((warn_unused_result));

/* Build vCPU (apic_id)'s CPUID from (supported): APIC IDs, topology of
 * (nr_cpus) cores in one package, no PMU. Returns a malloc'd table or NULL. */
struct kvm_cpuid2 *x86_cpuid_for_vcpu(const struct kvm_cpuid2 *supported, unsigned apic_id,
				      unsigned nr_cpus);

/* Set CPUID, MSRs, FPU and LAPIC LVTs of a new vCPU. */
int x86_vcpu_init(struct vcpu *vcpu) __attribute__((warn_unused_result));

/* Write the boot GDT and identity page tables (0-4 GiB, 2 MiB pages) into
 * guest RAM. */
int x86_write_boot_tables(struct guest_mem *mem) __attribute__((warn_unused_result));

/* Registers for (boot): long mode with the boot GDT, or 32-bit flat
 * protected mode for PVH. */
int x86_set_boot_regs(struct vcpu *vcpu, const struct boot_info *boot)
	__attribute__((warn_unused_result));

/* Translate guest-virtual (gva) to guest-physical through the page tables
 * at (cr3) (4-level, or 5-level when (la57)), reading them through the
 * checked translator. Paging structures outside RAM, non-present entries
 * and non-canonical addresses give -EFAULT. */
int x86_gva_to_gpa(const struct guest_mem *mem, uint64_t cr3, int la57, uint64_t gva, uint64_t *gpa)
	__attribute__((warn_unused_result));

/* Read (len) bytes of guest-virtual memory, page by page. 0 or -EFAULT. */
int x86_read_gva(const struct guest_mem *mem, uint64_t cr3, int la57, uint64_t gva, void *dst,
		 uint64_t len) __attribute__((warn_unused_result));

/* Profiler sampling. x86_vcpu_pc_request (any thread, before a kick) asks
 * the next KVM_RUN to leave the registers in kvm_run, if the host has
 * KVM_CAP_SYNC_REGS for them (x86_vcpu_pc_sync_supported). x86_vcpu_pc
 * (the vCPU thread, between KVM_RUNs) returns RIP and the current privilege
 * level (CS.RPL in protected mode) from there, or from KVM_GET_REGS and
 * KVM_GET_SREGS when they were not stored. 0 or -errno. */
bool x86_vcpu_pc_sync_supported(int kvm_fd);
void x86_vcpu_pc_request(struct vcpu *vcpu);
int x86_vcpu_pc(struct vcpu *vcpu, uint64_t *rip, unsigned *cpl)
	__attribute__((warn_unused_result));

/* Boot GDT selectors (Linux 64-bit boot protocol wants 0x10/0x18). */
#define X86_GDT_CODE64 0x10
#define X86_GDT_DATA   0x18
#define X86_GDT_CODE32 0x20
#define X86_GDT_TSS    0x28

#endif
