/* VM construction: /dev/kvm checks, VM and irqchip creation, guest RAM slots,
 * vCPU threads and the stop protocol. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kvisor/acpi.h"
#include "kvisor/boot.h"
#include "kvisor/config.h"
#include "kvisor/device.h"
#include "kvisor/evloop.h"
#include "kvisor/irq.h"
#include "kvisor/lifecycle.h"
#include "kvisor/log.h"
#include "kvisor/pci.h"
#include "kvisor/profile.h"
#include "kvisor/pvm.h"
#include "kvisor/vcpu.h"
#include "kvisor/vm.h"
#include "kvisor/x86.h"

#define VM_TSS_GPA          0xfffbd000ULL
#define VM_IDENTITY_MAP_GPA 0xfffbc000ULL

static const struct {
	int cap;
	const char *name;
} vm_required_caps[] = {
	{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
	{ KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR" },
	{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" },
	{ KVM_CAP_PIT2, "KVM_CAP_PIT2" },
	{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID" },
	{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" },
	{ KVM_CAP_NR_VCPUS, "KVM_CAP_NR_VCPUS" },
	{ KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING" }, /* MSI-X: src/kvm/irq.c */
	{ KVM_CAP_IRQFD, "KVM_CAP_IRQFD" },
};

static int vm_check_kvm(struct vm *vm)
{
	int ver;

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		int err = errno;

		log_err("cannot open /dev/kvm: %s", strerror(err));
		return -err;
	}
	ver = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (ver != KVM_API_VERSION) {
		log_err("/dev/kvm: KVM API version %d, kvisor needs %d", ver, KVM_API_VERSION);
		return -ENOTSUP;
	}
	for (size_t i = 0; i < sizeof(vm_required_caps) / sizeof(vm_required_caps[0]); i++) {
		if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, vm_required_caps[i].cap) <= 0) {
			log_err("/dev/kvm: missing required extension %s",
				vm_required_caps[i].name);
			return -ENOTSUP;
		}
	}
	vm->max_vcpus = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (vm->max_vcpus <= 0)
		vm->max_vcpus = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	vm->run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->run_size < (int)sizeof(struct kvm_run)) {
		log_err("/dev/kvm: bad vCPU mmap size %d", vm->run_size);
		return -ENOTSUP;
	}
	return 0;
}

static int vm_ioctl(struct vm *vm, unsigned long req, void *arg, const char *what)
{
	if (ioctl(vm->vm_fd, req, arg) < 0) {
		int err = errno;

		log_err("%s: %s", what, strerror(err));
		return -err;
	}
	return 0;
}

static int vm_map_ram(struct vm *vm)
{
	for (unsigned i = 0; i < vm->mem.nr_regions; i++) {
		struct mem_region *r = &vm->mem.regions[i];
		struct kvm_userspace_memory_region slot = {
			.slot = i,
			.guest_phys_addr = r->gpa,
			.memory_size = r->size,
			.userspace_addr = (uintptr_t)r->hva,
		};
		int ret = vm_ioctl(vm, KVM_SET_USER_MEMORY_REGION, &slot,
				   "KVM_SET_USER_MEMORY_REGION");

		if (ret)
			return ret;
	}
	return 0;
}

static int vm_create_machine(struct vm *vm)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	uint64_t idmap = VM_IDENTITY_MAP_GPA;
	int ret;

	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		ret = -errno;
		log_err("KVM_CREATE_VM: %s", strerror(-ret));
		return ret;
	}
	ret = vm_ioctl(vm, KVM_SET_TSS_ADDR, (void *)(uintptr_t)VM_TSS_GPA, "KVM_SET_TSS_ADDR");
	if (ret)
		return ret;
	if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SET_IDENTITY_MAP_ADDR) > 0) {
		ret = vm_ioctl(vm, KVM_SET_IDENTITY_MAP_ADDR, &idmap, "KVM_SET_IDENTITY_MAP_ADDR");
		if (ret)
			return ret;
	}
	ret = vm_ioctl(vm, KVM_CREATE_IRQCHIP, NULL, "KVM_CREATE_IRQCHIP");
	if (!ret)
		ret = vm_ioctl(vm, KVM_CREATE_PIT2, &pit, "KVM_CREATE_PIT2");
	return ret;
}

/* More vCPUs than host CPUs: the guest's spinning waits (locks, IPIs,
 * TLB shootdowns) then wait for a preempted vCPU thread to be scheduled
 * again; on kvm-pvm hosts, where the paravirtual spinlock and yield
 * features are hidden (they need VMCALL), an SMP boot slows down by
 * several times (docs/guests.md, "SMP guests"). Worth a warning, not a
 * refusal: it is the user's call. */
static void vm_warn_overcommit(const struct vm *vm)
{
	cpu_set_t set;
	unsigned host;

	if (sched_getaffinity(0, sizeof(set), &set))
		return;
	host = (unsigned)CPU_COUNT(&set);
	if (vm->cfg->cpus > host)
		log_warn("--cpus %u: more vCPUs than the %u host CPUs kvisor may run on; "
			 "the guest will wait for preempted vCPUs",
			 vm->cfg->cpus, host);
}

int vm_create(struct vm *vm, const struct vm_config *cfg)
{
	int ret;

	memset(vm, 0, sizeof(*vm));
	lifecycle_init(&vm->life);
	vm->cfg = cfg;
	vm->kvm_fd = vm->vm_fd = vm->stop_efd = -1;
	ret = vm_check_kvm(vm);
	if (ret)
		return ret;
	if (cfg->cpus == 0 || (int)cfg->cpus > vm->max_vcpus) {
		log_err("--cpus %u: this host's KVM supports 1 to %d vCPUs", cfg->cpus,
			vm->max_vcpus);
		return -EINVAL;
	}
	vm_warn_overcommit(vm);
	vm->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_efd < 0)
		return -errno;
	ret = bus_init(&vm->pio, "pio");
	if (!ret)
		ret = bus_init(&vm->mmio, "mmio");
	if (ret)
		return ret;
	ret = mem_init(&vm->mem, cfg->mem_size);
	if (ret) {
		log_err("cannot allocate %llu MiB of guest RAM: %s",
			(unsigned long long)(cfg->mem_size >> 20), strerror(-ret));
		return ret;
	}
	/* Load the kernel while KVM builds the VM: on kvm-pvm hosts the ioctls
	 * below spend milliseconds waiting (SRCU grace periods) on the host. */
	if (boot_load_start(vm))
		log_debug("no loader thread: the kernel is loaded later");
	ret = vm_create_machine(vm);
	if (!ret)
		ret = irq_init(vm, NULL);
	if (!ret)
		ret = vm_map_ram(vm);
	if (!ret)
		ret = x86_cpuid_init(vm);
	if (!ret)
		ret = pvm_init(vm);
	return ret;
}

/* The command line the guest gets: the user's (or the default), with what
 * the kvm-pvm compatibility layer needs. Returns a malloc'd string. */
static char *vm_cmdline(const struct vm *vm)
{
	const char *base = vm->cfg->cmdline ? vm->cfg->cmdline : CONFIG_DEFAULT_CMDLINE;

	return vm->pvm ? pvm_cmdline_merge(base) : strdup(base);
}

int vm_setup(struct vm *vm)
{
	struct acpi_config acfg = {
		.nr_cpus = vm->cfg->cpus,
		.pci_ecam = true, /* MCFG and \_SB.PCI0 for bus 0 */
		.ecam_last_bus = PCI_ECAM_LAST_BUS,
	};
	struct boot_info boot;
	uint64_t rsdp;
	char *cmdline;
	int ret;

	vm->vcpus = calloc(vm->cfg->cpus, sizeof(*vm->vcpus));
	if (!vm->vcpus)
		return -ENOMEM;
	for (unsigned i = 0; i < vm->cfg->cpus; i++) {
		ret = vcpu_create(vm, i, &vm->vcpus[i]);
		if (ret)
			return ret;
		vm->nr_vcpus++;
	}
	/* Devices serve their queues on this thread, off the vCPUs. */
	ret = evloop_create(&vm->io, "io");
	if (ret) {
		log_err("cannot start the I/O thread: %s", strerror(-ret));
		return ret;
	}
	ret = devices_create(vm);
	if (ret)
		return ret;
	ret = acpi_build(&vm->mem, &acfg, &rsdp);
	if (ret) {
		log_err("cannot build ACPI tables: %s", strerror(-ret));
		return ret;
	}
	cmdline = vm_cmdline(vm);
	if (!cmdline)
		return -ENOMEM;
	log_debug("kernel command line: %s", cmdline);
	ret = boot_load(vm, cmdline, rsdp, &boot);
	free(cmdline);
	if (ret)
		return ret;
	return vcpu_set_boot_state(&vm->vcpus[0], &boot);
}

static void vm_sigusr1(int sig)
{
	(void)sig; /* only interrupts KVM_RUN */
}

int vm_start(struct vm *vm)
{
	struct sigaction sa = { .sa_handler = vm_sigusr1 };

	/* No SA_RESTART: the signal must make KVM_RUN return EINTR. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		int ret = pthread_create(&vm->vcpus[i].thread, NULL, vcpu_thread, &vm->vcpus[i]);

		if (ret) {
			log_err("cannot start vCPU %u: %s", i, strerror(ret));
			vm_request_stop(vm, VM_STOP_ERROR, 1);
			return -ret;
		}
		vm->vcpus[i].thread_started = true;
	}
	/* Only now: the timer kicks vCPU threads, so they must exist. */
	if (vm->profile) {
		int ret = profile_start(vm->profile, vm);

		if (ret) {
			vm_request_stop(vm, VM_STOP_ERROR, 1);
			return ret;
		}
	}
	return lifecycle_start(vm);
}

void vm_request_stop(struct vm *vm, enum vm_stop_reason reason, int status)
{
	int expected = VM_RUNNING;
	uint64_t one = 1;

	if (!atomic_compare_exchange_strong(&vm->stop_reason, &expected, (int)reason))
		return;
	vm->exit_status = status;
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	lifecycle_stop(vm); /* releases vCPUs parked by a pause */
	if (write(vm->stop_efd, &one, sizeof(one)) < 0)
		log_debug("stop eventfd: %s", strerror(errno));
}

void vm_destroy(struct vm *vm)
{
	if (atomic_load(&vm->stop_reason) == VM_RUNNING)
		vm_request_stop(vm, VM_STOP_ERROR, 1);
	/* Before the joins: a profiler tick kicks vCPU threads. */
	profile_stop(vm->profile);
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		if (vm->vcpus[i].thread_started)
			pthread_join(vm->vcpus[i].thread, NULL);
	}
	lifecycle_joined(vm);
	boot_load_cancel(vm); /* before the guest RAM goes */
	devices_destroy(vm);  /* PCI bus 0 too (the pci-host device) */
	/* After the devices: their last completions run on it. */
	evloop_destroy(vm->io);
	vm->io = NULL;
	irq_destroy(vm);
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vcpu_destroy(&vm->vcpus[i]);
	free(vm->vcpus);
	pvm_destroy(vm);
	free(vm->cpuid);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	if (vm->stop_efd >= 0)
		close(vm->stop_efd);
	mem_destroy(&vm->mem);
	bus_destroy(&vm->mmio);
	bus_destroy(&vm->pio);
	vm->vcpus = NULL;
	vm->nr_vcpus = 0;
	lifecycle_destroy(&vm->life);
}
