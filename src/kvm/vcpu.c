/* vCPU creation, the KVM_RUN loop and the exit table that dispatches
 * exits to the buses and to the stop protocol. */
#include <errno.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "kvisor/boot.h"
#include "kvisor/lifecycle.h"
#include "kvisor/log.h"
#include "kvisor/profile.h"
#include "kvisor/pvm.h"
#include "kvisor/vcpu.h"
#include "kvisor/vm.h"
#include "kvisor/x86.h"

int vcpu_create(struct vm *vm, unsigned id, struct vcpu *vcpu)
{
	void *run;
	int ret;

	memset(vcpu, 0, sizeof(*vcpu));
	vcpu->vm = vm;
	vcpu->id = id;
	vcpu->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, id); /* -1 on error; 0 is a valid fd */
	if (vcpu->fd < 0) {
		int err = errno;

		log_err("vcpu%u: KVM_CREATE_VCPU: %s", id, strerror(err));
		return -err;
	}
	run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
	if (run == MAP_FAILED) {
		int err = errno;

		log_err("vcpu%u: mmap kvm_run: %s", id, strerror(err));
		vcpu_destroy(vcpu);
		return -err;
	}
	vcpu->run = run;
	ret = pvm_vcpu_init(vcpu);
	if (!ret)
		ret = x86_vcpu_init(vcpu);
	if (ret)
		vcpu_destroy(vcpu);
	return ret;
}

int vcpu_set_boot_state(struct vcpu *vcpu, const struct boot_info *boot)
{
	return x86_set_boot_regs(vcpu, boot);
}

void vcpu_destroy(struct vcpu *vcpu)
{
	if (vcpu->run)
		munmap(vcpu->run, vcpu->vm->run_size);
	if (vcpu->fd >= 0)
		close(vcpu->fd);
	pvm_vcpu_destroy(vcpu);
	vcpu->run = NULL;
	vcpu->fd = -1;
}

void vcpu_kick(struct vcpu *vcpu)
{
	if (!vcpu->run)
		return;
	/* immediate_exit covers a kick that lands just before KVM_RUN. */
	__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	if (vcpu->thread_started && !pthread_equal(vcpu->thread, pthread_self()))
		pthread_kill(vcpu->thread, SIGUSR1);
}

/* Exit handlers return 0 to keep running or a stop was requested. */
typedef int (*vcpu_exit_fn)(struct vcpu *vcpu);

static struct log_ratelimit vcpu_unclaimed_rl;

static int vcpu_exit_io(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	bool out = run->io.direction == KVM_EXIT_IO_OUT;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;

	/* KVM places the data inside the kvm_run mapping; size * count fits. */
	for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size) {
		if (!bus_access(&vcpu->vm->pio, run->io.port, data, run->io.size, out))
			log_ratelimited(&vcpu_unclaimed_rl, LOG_DEBUG,
					"vcpu%u: unclaimed port %s 0x%x size %u", vcpu->id,
					out ? "write" : "read", run->io.port, run->io.size);
	}
	if (vcpu->pvm)
		pvm_poll(vcpu);
	return 0;
}

static int vcpu_exit_mmio(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;

	if (!bus_access(&vcpu->vm->mmio, run->mmio.phys_addr, run->mmio.data, run->mmio.len,
			run->mmio.is_write))
		log_ratelimited(&vcpu_unclaimed_rl, LOG_DEBUG,
				"vcpu%u: unclaimed MMIO %s 0x%llx size %u", vcpu->id,
				run->mmio.is_write ? "write" : "read",
				(unsigned long long)run->mmio.phys_addr, run->mmio.len);
	return 0;
}

static int vcpu_fatal(struct vcpu *vcpu, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int vcpu_fatal(struct vcpu *vcpu, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_err("vcpu%u: %s", vcpu->id, msg);
	vcpu_dump(vcpu);
	vm_request_stop(vcpu->vm, VM_STOP_ERROR, 1);
	return -1;
}

static int vcpu_exit_shutdown(struct vcpu *vcpu)
{
	return vcpu_fatal(vcpu, "triple fault (KVM_EXIT_SHUTDOWN)");
}

static int vcpu_exit_hlt(struct vcpu *vcpu)
{
	return vcpu_fatal(vcpu, "halted with no in-kernel irqchip wake-up (KVM_EXIT_HLT)");
}

static int vcpu_exit_fail_entry(struct vcpu *vcpu)
{
	return vcpu_fatal(vcpu, "entry failed, hardware reason 0x%llx",
			  (unsigned long long)vcpu->run->fail_entry.hardware_entry_failure_reason);
}

static int vcpu_exit_system_event(struct vcpu *vcpu)
{
	switch (vcpu->run->system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		vm_request_stop(vcpu->vm, VM_STOP_POWEROFF, 0);
		return -1;
	case KVM_SYSTEM_EVENT_RESET:
		vm_request_stop(vcpu->vm, VM_STOP_REBOOT, 0);
		return -1;
	default:
		return vcpu_fatal(vcpu, "system event %u", vcpu->run->system_event.type);
	}
}

static int vcpu_exit_internal(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	char bytes[3 * 16 + 1] = "";

	if (run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION) {
		int ret = pvm_handle_emulation_failure(vcpu);

		if (ret > 0)
			return 0;
		if (run->emulation_failure.ndata >= 3 &&
		    (run->emulation_failure.flags &
		     KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)) {
			const uint8_t *b = run->emulation_failure.insn_bytes;
			unsigned n = run->emulation_failure.insn_size;

			n = n > 15 ? 15 : n;
			for (unsigned i = 0; i < n; i++)
				snprintf(bytes + 3 * i, 4, " %02x", b[i]);
		}
		return vcpu_fatal(vcpu, "emulation failure, instruction bytes:%s",
				  *bytes ? bytes : " (not reported)");
	}
	return vcpu_fatal(vcpu, "KVM internal error, suberror %u", run->internal.suberror);
}

static int vcpu_exit_debug(struct vcpu *vcpu)
{
	int ret = pvm_handle_debug(vcpu);

	if (ret > 0)
		return 0;
	if (ret < 0)
		return vcpu_fatal(vcpu, "debug exit: %s", strerror(-ret));
	return vcpu_fatal(vcpu, "unexpected debug exit at 0x%llx",
			  (unsigned long long)vcpu->run->debug.arch.pc);
}

static const vcpu_exit_fn vcpu_exit_table[] = {
	[KVM_EXIT_DEBUG] = vcpu_exit_debug,
	[KVM_EXIT_IO] = vcpu_exit_io,
	[KVM_EXIT_MMIO] = vcpu_exit_mmio,
	[KVM_EXIT_HLT] = vcpu_exit_hlt,
	[KVM_EXIT_SHUTDOWN] = vcpu_exit_shutdown,
	[KVM_EXIT_FAIL_ENTRY] = vcpu_exit_fail_entry,
	[KVM_EXIT_INTERNAL_ERROR] = vcpu_exit_internal,
	[KVM_EXIT_SYSTEM_EVENT] = vcpu_exit_system_event,
};

static int vcpu_dispatch(struct vcpu *vcpu)
{
	uint32_t reason = vcpu->run->exit_reason;

	if (reason == KVM_EXIT_INTR)
		return 0;
	if (reason < sizeof(vcpu_exit_table) / sizeof(vcpu_exit_table[0]) &&
	    vcpu_exit_table[reason])
		return vcpu_exit_table[reason](vcpu);
	return vcpu_fatal(vcpu, "unhandled KVM exit reason %u", reason);
}

void *vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;
	struct vm *vm = vcpu->vm;
	char name[16];

	snprintf(name, sizeof(name), "vcpu%u", vcpu->id);
	pthread_setname_np(pthread_self(), name);
	lifecycle_vcpu_thread(vcpu);
	if (vcpu->id == 0) {
		struct timespec ts;

		/* For tools/bench/boot: exec-to-first-KVM_RUN on one clock. */
		clock_gettime(CLOCK_MONOTONIC, &ts);
		log_debug("vcpu0: first KVM_RUN at monotonic %.3f ms",
			  ts.tv_sec * 1e3 + ts.tv_nsec / 1e6);
	}
	while (atomic_load(&vm->stop_reason) == VM_RUNNING) {
		if (ioctl(vcpu->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				/* Nothing to dispatch: KVM finished a pending I/O
				 * completion before returning, and the next KVM_RUN
				 * resumes the guest where it stopped. Cleared before
				 * the pause check (see src/kvm/lifecycle.c). */
				__atomic_store_n(&vcpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
				if (vm->profile)
					profile_sample(vm->profile, vcpu);
				lifecycle_vcpu_check(vcpu);
				continue;
			}
			vcpu_fatal(vcpu, "KVM_RUN: %s", strerror(errno));
			break;
		}
		vcpu->exits++;
		if (vcpu_dispatch(vcpu) < 0)
			break;
	}
	return NULL;
}
