/* The VM lifecycle: transition rules, the barrier vm_pause parks the vCPU
 * threads at (condition variables, no spinning), device quiescing and
 * KVM_KVMCLOCK_CTRL around it, and vm_resume undoing it in reverse. */
#include <errno.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kvisor/device.h"
#include "kvisor/lifecycle.h"
#include "kvisor/log.h"
#include "kvisor/vcpu.h"
#include "kvisor/vm.h"

/*
 * Locks: op_lock (one control operation at a time) before lock. A stop
 * request takes only lock, so it gets through while vm_pause waits for the
 * barrier, and it wakes everything waiting on cond: parked vCPUs leave the
 * barrier and end their threads, and vm_pause gives up.
 *
 * The park handshake with vcpu_kick: vm_pause sets pause_req, then sets
 * each vCPU's immediate_exit and signals its thread. A vCPU thread clears
 * immediate_exit after KVM_RUN returned EINTR and only then reads
 * pause_req (both sequentially consistent): either it sees the request, or
 * the request (and so the kick) came after its clear, and its next KVM_RUN
 * returns EINTR at once. A vCPU between an exit and its next KVM_RUN does
 * not park there: that KVM_RUN first completes the exit (the data of an
 * I/O or MMIO read goes into the guest's registers), then returns EINTR.
 */

const char *vm_state_name(enum vm_state state)
{
	static const char *const names[] = {
		[VM_STATE_CREATED] = "created",   [VM_STATE_RUNNING] = "running",
		[VM_STATE_PAUSING] = "pausing",   [VM_STATE_PAUSED] = "paused",
		[VM_STATE_RESUMING] = "resuming", [VM_STATE_STOPPING] = "stopping",
		[VM_STATE_STOPPED] = "stopped",
	};

	if ((unsigned)state >= sizeof(names) / sizeof(names[0]))
		return "?";
	return names[state];
}

int lifecycle_next(enum vm_state cur, enum vm_op op, enum vm_state *next)
{
	if ((unsigned)cur > VM_STATE_STOPPED)
		return -EINVAL;
	if (cur == VM_STATE_STOPPING || cur == VM_STATE_STOPPED)
		return op == VM_OP_STOP ? -EALREADY : -ESHUTDOWN;
	switch (op) {
	case VM_OP_STOP:
		*next = VM_STATE_STOPPING;
		return 0;
	case VM_OP_START:
		if (cur != VM_STATE_CREATED)
			return -EALREADY;
		*next = VM_STATE_RUNNING;
		return 0;
	case VM_OP_PAUSE:
		if (cur == VM_STATE_RUNNING) {
			*next = VM_STATE_PAUSING;
			return 0;
		}
		if (cur == VM_STATE_PAUSING || cur == VM_STATE_PAUSED)
			return -EALREADY;
		return cur == VM_STATE_RESUMING ? -EBUSY : -EINVAL;
	case VM_OP_RESUME:
		if (cur == VM_STATE_PAUSED) {
			*next = VM_STATE_RESUMING;
			return 0;
		}
		if (cur == VM_STATE_RUNNING || cur == VM_STATE_RESUMING)
			return -EALREADY;
		return cur == VM_STATE_PAUSING ? -EBUSY : -EINVAL;
	}
	return -EINVAL;
}

void lifecycle_init(struct vm_lifecycle *lc)
{
	pthread_mutex_init(&lc->op_lock, NULL);
	pthread_mutex_init(&lc->lock, NULL);
	pthread_cond_init(&lc->cond, NULL);
	lc->state = VM_STATE_CREATED;
	lc->parked = 0;
	atomic_store(&lc->pause_req, false);
}

void lifecycle_destroy(struct vm_lifecycle *lc)
{
	pthread_cond_destroy(&lc->cond);
	pthread_mutex_destroy(&lc->lock);
	pthread_mutex_destroy(&lc->op_lock);
}

enum vm_state vm_state(struct vm *vm)
{
	enum vm_state s;

	pthread_mutex_lock(&vm->life.lock);
	s = vm->life.state;
	pthread_mutex_unlock(&vm->life.lock);
	return s;
}

/* Apply (op) under the lock: 0 or the lifecycle_next error. */
static int lifecycle_apply(struct vm_lifecycle *lc, enum vm_op op)
{
	enum vm_state next;
	int ret = lifecycle_next(lc->state, op, &next);

	if (!ret)
		lc->state = next;
	return ret;
}

int lifecycle_start(struct vm *vm)
{
	int ret;

	pthread_mutex_lock(&vm->life.lock);
	ret = lifecycle_apply(&vm->life, VM_OP_START);
	pthread_mutex_unlock(&vm->life.lock);
	return ret;
}

void lifecycle_stop(struct vm *vm)
{
	pthread_mutex_lock(&vm->life.lock);
	if (!lifecycle_apply(&vm->life, VM_OP_STOP))
		pthread_cond_broadcast(&vm->life.cond);
	pthread_mutex_unlock(&vm->life.lock);
}

void lifecycle_joined(struct vm *vm)
{
	pthread_mutex_lock(&vm->life.lock);
	vm->life.state = VM_STATE_STOPPED;
	pthread_mutex_unlock(&vm->life.lock);
}

static bool lifecycle_stopping(const struct vm_lifecycle *lc)
{
	return lc->state == VM_STATE_STOPPING || lc->state == VM_STATE_STOPPED;
}

void lifecycle_vcpu_check(struct vcpu *vcpu)
{
	struct vm_lifecycle *lc = &vcpu->vm->life;

	if (!atomic_load(&lc->pause_req))
		return;
	pthread_mutex_lock(&lc->lock);
	lc->parked++;
	pthread_cond_broadcast(&lc->cond); /* vm_pause counts us */
	while (atomic_load(&lc->pause_req) && !lifecycle_stopping(lc))
		pthread_cond_wait(&lc->cond, &lc->lock);
	lc->parked--;
	pthread_mutex_unlock(&lc->lock);
}

/* The VM whose vCPU the calling thread runs (lifecycle_vcpu_thread), if
 * any: vm_pause there would wait for the thread itself. */
static __thread const struct vm *lifecycle_vcpu_vm;

void lifecycle_vcpu_thread(struct vcpu *vcpu)
{
	lifecycle_vcpu_vm = vcpu->vm;
}

static bool lifecycle_on_vcpu_thread(const struct vm *vm)
{
	return lifecycle_vcpu_vm == vm;
}

/* Let the parked vCPUs go; the state in transition becomes (to). 0, or
 * -ESHUTDOWN when a stop request came meanwhile (the state stays). */
static int lifecycle_release_vcpus(struct vm_lifecycle *lc, enum vm_state to)
{
	int ret = 0;

	pthread_mutex_lock(&lc->lock);
	atomic_store(&lc->pause_req, false);
	if (lifecycle_stopping(lc))
		ret = -ESHUTDOWN;
	else
		lc->state = to;
	pthread_cond_broadcast(&lc->cond);
	pthread_mutex_unlock(&lc->lock);
	return ret;
}

/* KVM_KVMCLOCK_CTRL: the guest's kvmclock page gets the "stopped by the
 * host" flag, so its watchdogs do not take the pause for a soft lockup.
 * EINVAL: the guest did not enable kvmclock on that vCPU. */
static void lifecycle_kvmclock_ctrl(struct vm *vm)
{
	if (vm->kvm_fd < 0 || ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_KVMCLOCK_CTRL) <= 0)
		return;
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		if (vm->vcpus[i].fd < 0)
			continue;
		if (ioctl(vm->vcpus[i].fd, KVM_KVMCLOCK_CTRL, 0) < 0 && errno != EINVAL)
			log_debug("vcpu%u: KVM_KVMCLOCK_CTRL: %s", i, strerror(errno));
	}
}

/* Kick every vCPU thread and wait until all have parked. 0, or -ESHUTDOWN
 * when a stop request came first. Called with op_lock, state PAUSING. */
static int lifecycle_park_vcpus(struct vm *vm)
{
	struct vm_lifecycle *lc = &vm->life;
	unsigned threads = 0;
	int ret = 0;

	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		if (!vm->vcpus[i].thread_started)
			continue;
		threads++;
		vcpu_kick(&vm->vcpus[i]);
	}
	pthread_mutex_lock(&lc->lock);
	while (lc->parked < threads && lc->state == VM_STATE_PAUSING)
		pthread_cond_wait(&lc->cond, &lc->lock);
	if (lc->state != VM_STATE_PAUSING)
		ret = -ESHUTDOWN;
	pthread_mutex_unlock(&lc->lock);
	return ret;
}

/* Begin control operation (op) on (vm): take op_lock, then make the
 * transition under lock; a pause also raises pause_req in that same hold.
 * 0 with op_lock held, for the caller to release when the operation is
 * done; or, with nothing held, -EDEADLK on one of the VM's own vCPU threads
 * (it would wait for itself) or the lifecycle_next error. */
static int lifecycle_op_begin(struct vm *vm, enum vm_op op)
{
	struct vm_lifecycle *lc = &vm->life;
	int ret;

	if (lifecycle_on_vcpu_thread(vm))
		return -EDEADLK;
	pthread_mutex_lock(&lc->op_lock);
	pthread_mutex_lock(&lc->lock);
	ret = lifecycle_apply(lc, op);
	if (!ret && op == VM_OP_PAUSE)
		atomic_store(&lc->pause_req, true);
	pthread_mutex_unlock(&lc->lock);
	if (ret)
		pthread_mutex_unlock(&lc->op_lock);
	return ret;
}

int vm_pause(struct vm *vm)
{
	struct vm_lifecycle *lc = &vm->life;
	int ret;

	ret = lifecycle_op_begin(vm, VM_OP_PAUSE);
	if (ret)
		return ret;
	ret = lifecycle_park_vcpus(vm);
	if (ret)
		goto out; /* stopping: the stop released the vCPUs */
	/* Devices after the vCPUs: a vCPU in an exit may still need them (a
	 * virtio reset waits for completions on the I/O thread). */
	ret = devices_pause(vm); /* names the device that failed */
	if (ret) {
		if (lifecycle_release_vcpus(lc, VM_STATE_RUNNING))
			ret = -ESHUTDOWN;
		goto out;
	}
	lifecycle_kvmclock_ctrl(vm);
	pthread_mutex_lock(&lc->lock);
	if (lc->state == VM_STATE_PAUSING)
		lc->state = VM_STATE_PAUSED;
	else
		ret = -ESHUTDOWN;
	pthread_mutex_unlock(&lc->lock);
out:
	pthread_mutex_unlock(&lc->op_lock);
	return ret;
}

int vm_resume(struct vm *vm)
{
	struct vm_lifecycle *lc = &vm->life;
	int ret;

	ret = lifecycle_op_begin(vm, VM_OP_RESUME);
	if (ret)
		return ret;
	devices_resume(vm);
	ret = lifecycle_release_vcpus(lc, VM_STATE_RUNNING);
	pthread_mutex_unlock(&lc->op_lock);
	return ret;
}

int lifecycle_hold_paused(struct vm *vm)
{
	pthread_mutex_lock(&vm->life.op_lock);
	if (vm_state(vm) != VM_STATE_PAUSED) {
		pthread_mutex_unlock(&vm->life.op_lock);
		return -EBUSY;
	}
	return 0;
}

void lifecycle_release(struct vm *vm)
{
	pthread_mutex_unlock(&vm->life.op_lock);
}
