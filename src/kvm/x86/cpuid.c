/* CPUID for the guest: KVM's supported table with per-vCPU APIC IDs and a
 * one-package topology, and without a virtual PMU. */
#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kvisor/log.h"
#include "kvisor/pvm.h"
#include "kvisor/vm.h"
#include "kvisor/x86.h"

#define CPUID_MAX_ENTRIES 256

int x86_cpuid_init(struct vm *vm)
{
	size_t sz = sizeof(struct kvm_cpuid2) + CPUID_MAX_ENTRIES * sizeof(struct kvm_cpuid_entry2);
	struct kvm_cpuid2 *c = calloc(1, sz);

	if (!c)
		return -ENOMEM;
	c->nent = CPUID_MAX_ENTRIES;
	if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) < 0) {
		int err = errno;

		log_err("KVM_GET_SUPPORTED_CPUID: %s", strerror(err));
		free(c);
		return -err;
	}
	vm->cpuid = c;
	return 0;
}

static unsigned cpuid_order(unsigned n)
{
	unsigned bits = 0;

	while ((1u << bits) < n)
		bits++;
	return bits;
}

/* Leaves 0xb and 0x1f: SMT level with one thread, core level with nr_cpus. */
static void cpuid_topology(struct kvm_cpuid_entry2 *e, unsigned apic_id, unsigned nr_cpus)
{
	e->edx = apic_id;
	switch (e->index) {
	case 0:
		e->eax = 0;
		e->ebx = 1;
		e->ecx = (1u << 8) | e->index;
		break;
	case 1:
		e->eax = cpuid_order(nr_cpus);
		e->ebx = nr_cpus;
		e->ecx = (2u << 8) | e->index;
		break;
	default:
		e->eax = e->ebx = 0;
		e->ecx = e->index;
		break;
	}
}

static void cpuid_fix_entry(struct kvm_cpuid_entry2 *e, unsigned apic_id, unsigned nr_cpus)
{
	switch (e->function) {
	case 1:
		e->ebx = (e->ebx & 0x0000ffff) | (apic_id << 24) | ((nr_cpus & 0xff) << 16);
		if (nr_cpus > 1)
			e->edx |= 1u << 28; /* HTT: the count in EBX is valid */
		e->ecx |= 1u << 31;         /* running under a hypervisor */
		break;
	case 4:
		/* Cores per package - 1 in bits 31:26; caches shared by one thread. */
		e->eax = (e->eax & 0x3ff) | (((nr_cpus - 1) & 0x3f) << 26);
		break;
	case 0xa:
		/* No virtual PMU: guests must not touch performance counter MSRs. */
		e->eax = e->ebx = e->ecx = e->edx = 0;
		break;
	case 0xb:
	case 0x1f:
		cpuid_topology(e, apic_id, nr_cpus);
		break;
	case 0x80000008:
		e->ecx = (e->ecx & ~0xffu) | ((nr_cpus - 1) & 0xff);
		break;
	default:
		break;
	}
}

struct kvm_cpuid2 *x86_cpuid_for_vcpu(const struct kvm_cpuid2 *supported, unsigned apic_id,
				      unsigned nr_cpus)
{
	size_t sz = sizeof(*supported) + supported->nent * sizeof(supported->entries[0]);
	struct kvm_cpuid2 *c = malloc(sz);

	if (!c)
		return NULL;
	memcpy(c, supported, sz);
	for (unsigned i = 0; i < c->nent; i++)
		cpuid_fix_entry(&c->entries[i], apic_id, nr_cpus);
	return c;
}
