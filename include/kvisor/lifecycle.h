/* The VM lifecycle: a state machine (created, running, pausing, paused,
 * resuming, stopping, stopped), the vCPU barrier that pause parks every
 * vCPU thread at, and device quiescing around it. */
#ifndef KVISOR_LIFECYCLE_H
#define KVISOR_LIFECYCLE_H

#include <pthread.h>
#include <stdatomic.h>

struct vm;
struct vcpu;

enum vm_state {
	VM_STATE_CREATED = 0, /* built (vm_create, vm_setup); no vCPU thread yet */
	VM_STATE_RUNNING,     /* vm_start started every vCPU thread */
	VM_STATE_PAUSING,     /* vm_pause: parking vCPUs, then quiescing devices */
	VM_STATE_PAUSED,      /* every vCPU parked outside KVM_RUN, devices quiet */
	VM_STATE_RESUMING,    /* vm_resume: devices resuming, then vCPUs released */
	VM_STATE_STOPPING,    /* a stop was requested (vm_request_stop): final */
	VM_STATE_STOPPED,     /* vm_destroy joined the vCPU threads */
};

/* What a caller asks the state machine for. */
enum vm_op {
	VM_OP_START,
	VM_OP_PAUSE,
	VM_OP_RESUME,
	VM_OP_STOP,
};

/* Lifecycle state embedded in struct vm; set up by lifecycle_init. */
struct vm_lifecycle {
	/* Serializes vm_pause, vm_resume and the state getters: taken first,
	 * held for a whole operation (also while waiting for the barrier). */
	pthread_mutex_t op_lock;
	/* Protects (state) and (parked); (cond) is waited on with it by the
	 * parked vCPUs (for the release) and by vm_pause (for the last to park). */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	enum vm_state state;
	unsigned parked;       /* vCPU threads waiting at the barrier */
	atomic_bool pause_req; /* vCPU threads park at their next exit while set */
};

/* The transition rules, apart from the threads (pure, unit-tested): the
 * state that (op) leads to from (cur) in *next, or the error the operation
 * returns: -EALREADY when the VM is already there or on its way (pause of a
 * pausing or paused VM, resume of a running or resuming one, start of a
 * started one, a second stop); -EBUSY while the opposite transition runs
 * (pause while resuming, resume while pausing); -EINVAL for a VM not started
 * yet (pause, resume); -ESHUTDOWN once a stop was requested (everything but
 * stop). Stop is accepted from every other state: it always wins. */
int lifecycle_next(enum vm_state cur, enum vm_op op, enum vm_state *next)
	__attribute__((warn_unused_result));

/* "created", "running", ... ("?" for a value out of range). */
const char *vm_state_name(enum vm_state state);

/* Initialize (lc) in VM_STATE_CREATED / release it. */
void lifecycle_init(struct vm_lifecycle *lc);
void lifecycle_destroy(struct vm_lifecycle *lc);

/* The VM's current state (a snapshot: it may change right after). */
enum vm_state vm_state(struct vm *vm);

/* Transitions made by src/kvm/vm.c: vm_start once every vCPU thread runs
 * (CREATED -> RUNNING; 0 or the lifecycle_next error), vm_request_stop on
 * the first stop request (any state -> STOPPING; wakes parked vCPUs and a
 * waiting vm_pause), vm_destroy after joining the vCPU threads (STOPPED). */
int lifecycle_start(struct vm *vm) __attribute__((warn_unused_result));
void lifecycle_stop(struct vm *vm);
void lifecycle_joined(struct vm *vm);

/* At the start of (vcpu)'s thread: marks the thread, so that vm_pause and
 * vm_resume called there fail (-EDEADLK) instead of waiting for it. */
void lifecycle_vcpu_thread(struct vcpu *vcpu);

/* On a vCPU thread, after KVM_RUN returned EINTR and immediate_exit was
 * cleared: if a pause is pending, park at the barrier until vm_resume or a
 * stop request. Only here is the vCPU's state consistent: a KVM_RUN that
 * returns EINTR has first completed the I/O or MMIO exit it returned
 * before (kvm_run's immediate_exit, KVM API), so exits in flight finish
 * before their vCPU parks. */
void lifecycle_vcpu_check(struct vcpu *vcpu);

/* Pause the running VM: kick every vCPU (vcpu_kick) and wait, on a condition
 * variable, until each has parked outside KVM_RUN; then quiesce the devices
 * (devices_pause); then tell KVM the vCPUs were stopped on purpose
 * (KVM_KVMCLOCK_CTRL, so a kvmclock guest does not report soft lockups).
 * Returns 0 once the VM is PAUSED. Errors: those of lifecycle_next (e.g.
 * -EALREADY when paused or pausing, -ESHUTDOWN after a stop request);
 * -EDEADLK from a vCPU thread; -ESHUTDOWN as well when a stop request
 * arrives while pausing (the stop wins; the VM is then STOPPING); a
 * devices_pause error (the vCPUs are released, the VM is RUNNING again).
 * Call it from a control thread (the main loop), never from a vCPU thread
 * or the device I/O thread: a vCPU inside an exit may wait for the I/O
 * thread, and must finish before it parks. */
int vm_pause(struct vm *vm) __attribute__((warn_unused_result));

/* Resume a paused VM, in the reverse order of vm_pause: devices resume
 * (devices_resume), then the vCPUs are released. 0 once RUNNING; errors as
 * for vm_pause (-EALREADY when running, -ESHUTDOWN after a stop request,
 * -EDEADLK from a vCPU thread). Same callers.
 * vm_pause and vm_resume are serialized: one called while the other runs
 * (from a second control thread) waits for it, then applies the rules to
 * the state it left; so -EBUSY of lifecycle_next is not seen through them. */
int vm_resume(struct vm *vm) __attribute__((warn_unused_result));

/* For code that reads or changes VM state while paused (the state getters;
 * later snapshots and hot changes): hold the VM in PAUSED, serialized with
 * vm_pause/vm_resume. 0 with the hold taken, or -EBUSY (not paused; no hold).
 * Every successful lifecycle_hold_paused needs a lifecycle_release. */
int lifecycle_hold_paused(struct vm *vm) __attribute__((warn_unused_result));
void lifecycle_release(struct vm *vm);

#endif
