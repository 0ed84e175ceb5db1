/* kvm-pvm compatibility layer: detection, command-line additions, CPUID
 * filtering and completion of instructions the host's emulator rejects. */
#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kvisor/config.h"
#include "kvisor/log.h"
#include "kvisor/pvm.h"
#include "kvisor/vcpu.h"
#include "kvisor/vm.h"
#include "pvm_priv.h"

#define PVM_SYSFS "/sys/module/kvm_pvm"

bool pvm_host_detect(void)
{
	return access(PVM_SYSFS, F_OK) == 0;
}

int pvm_init(struct vm *vm)
{
	bool on;

	switch (vm->cfg->pvm_compat) {
	case CONFIG_ON:
		on = true;
		break;
	case CONFIG_OFF:
		on = false;
		break;
	default:
		on = pvm_host_detect();
		break;
	}
	if (!on)
		return 0;
	vm->pvm = calloc(1, sizeof(*vm->pvm));
	if (!vm->pvm)
		return -ENOMEM;
	log_debug("kvm-pvm compatibility layer active");
	return 0;
}

int pvm_vcpu_init(struct vcpu *vcpu)
{
	if (!vcpu->vm->pvm)
		return 0;
	vcpu->pvm = calloc(1, sizeof(*vcpu->pvm));
	return vcpu->pvm ? 0 : -ENOMEM;
}

void pvm_vcpu_destroy(struct vcpu *vcpu)
{
	free(vcpu->pvm);
	vcpu->pvm = NULL;
}

int pvm_handle_debug(struct vcpu *vcpu)
{
	return pvm_syscall_debug_exit(vcpu);
}

void pvm_poll(struct vcpu *vcpu)
{
	int ret = pvm_syscall_poll(vcpu);

	if (ret)
		log_warn("vcpu%u: syscall fix-up: %s", vcpu->id, strerror(-ret));
}

void pvm_destroy(struct vm *vm)
{
	if (vm->pvm)
		log_debug("kvm-pvm layer: %llu syscalls fixed, %llu page faults stepped, "
			  "%llu instructions completed",
			  vm->pvm->syscalls, vm->pvm->stepped, vm->pvm->completed);
	if (vm->pvm)
		pvm_emulate_log_counts(vm->pvm);
	free(vm->pvm);
	vm->pvm = NULL;
}

#define KVM_CPUID_FEATURES_LEAF    0x40000001
#define KVM_FEATURE_PV_UNHALT      7
#define KVM_FEATURE_PV_SEND_IPI    11
#define KVM_FEATURE_PV_SCHED_YIELD 13

void pvm_filter_cpuid(const struct vm *vm, struct kvm_cpuid2 *cpuid)
{
	if (!vm->pvm)
		return;
	/* PV send-IPI and friends use VMCALL, which spins forever on kvm-pvm. */
	for (unsigned i = 0; i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *e = &cpuid->entries[i];

		if (e->function == KVM_CPUID_FEATURES_LEAF)
			e->eax &=
				~((1u << KVM_FEATURE_PV_UNHALT) | (1u << KVM_FEATURE_PV_SEND_IPI) |
				  (1u << KVM_FEATURE_PV_SCHED_YIELD));
	}
}

/* The instruction bytes come from the host, not from guest memory, so the
 * guest cannot change them between the failure and the completion. */
int pvm_handle_emulation_failure(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	unsigned len = run->emulation_failure.insn_size;
	int ret;

	if (!vcpu->vm->pvm || run->emulation_failure.ndata < 3 ||
	    !(run->emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES) ||
	    len == 0)
		return 0;
	if (len > sizeof(run->emulation_failure.insn_bytes))
		len = sizeof(run->emulation_failure.insn_bytes);
	ret = pvm_emulate_vcpu(vcpu, run->emulation_failure.insn_bytes, len);
	if (ret > 0)
		__atomic_add_fetch(&vcpu->vm->pvm->completed, 1, __ATOMIC_RELAXED);
	return ret;
}
