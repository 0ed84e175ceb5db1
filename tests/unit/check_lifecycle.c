/* Unit tests of the VM lifecycle without KVM: the transition rules, and
 * vm_pause/vm_resume on a VM whose vCPU threads are stand-ins that follow
 * the vCPU loop's kick protocol (immediate_exit, then the pause check). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include <linux/kvm.h>

#include "kvisor/device.h"
#include "kvisor/lifecycle.h"
#include "kvisor/vcpu.h"
#include "kvisor/vm.h"
#include "kvisor/x86_state.h"

#include "unit_capture.h"

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* --- the rules ------------------------------------------------------------- */
struct rule {
	enum vm_state cur;
	enum vm_op op;
	int ret;            /* 0: allowed */
	enum vm_state next; /* when allowed */
};

static const struct rule rules[] = {
	{ VM_STATE_CREATED, VM_OP_START, 0, VM_STATE_RUNNING },
	{ VM_STATE_CREATED, VM_OP_PAUSE, -EINVAL, 0 },
	{ VM_STATE_CREATED, VM_OP_RESUME, -EINVAL, 0 },
	{ VM_STATE_CREATED, VM_OP_STOP, 0, VM_STATE_STOPPING },
	{ VM_STATE_RUNNING, VM_OP_START, -EALREADY, 0 },
	{ VM_STATE_RUNNING, VM_OP_PAUSE, 0, VM_STATE_PAUSING },
	{ VM_STATE_RUNNING, VM_OP_RESUME, -EALREADY, 0 },
	{ VM_STATE_RUNNING, VM_OP_STOP, 0, VM_STATE_STOPPING },
	{ VM_STATE_PAUSING, VM_OP_START, -EALREADY, 0 },
	{ VM_STATE_PAUSING, VM_OP_PAUSE, -EALREADY, 0 },
	{ VM_STATE_PAUSING, VM_OP_RESUME, -EBUSY, 0 },
	{ VM_STATE_PAUSING, VM_OP_STOP, 0, VM_STATE_STOPPING },
	{ VM_STATE_PAUSED, VM_OP_START, -EALREADY, 0 },
	{ VM_STATE_PAUSED, VM_OP_PAUSE, -EALREADY, 0 },
	{ VM_STATE_PAUSED, VM_OP_RESUME, 0, VM_STATE_RESUMING },
	{ VM_STATE_PAUSED, VM_OP_STOP, 0, VM_STATE_STOPPING },
	{ VM_STATE_RESUMING, VM_OP_START, -EALREADY, 0 },
	{ VM_STATE_RESUMING, VM_OP_PAUSE, -EBUSY, 0 },
	{ VM_STATE_RESUMING, VM_OP_RESUME, -EALREADY, 0 },
	{ VM_STATE_RESUMING, VM_OP_STOP, 0, VM_STATE_STOPPING },
	{ VM_STATE_STOPPING, VM_OP_START, -ESHUTDOWN, 0 },
	{ VM_STATE_STOPPING, VM_OP_PAUSE, -ESHUTDOWN, 0 },
	{ VM_STATE_STOPPING, VM_OP_RESUME, -ESHUTDOWN, 0 },
	{ VM_STATE_STOPPING, VM_OP_STOP, -EALREADY, 0 },
	{ VM_STATE_STOPPED, VM_OP_START, -ESHUTDOWN, 0 },
	{ VM_STATE_STOPPED, VM_OP_PAUSE, -ESHUTDOWN, 0 },
	{ VM_STATE_STOPPED, VM_OP_RESUME, -ESHUTDOWN, 0 },
	{ VM_STATE_STOPPED, VM_OP_STOP, -EALREADY, 0 },
};

START_TEST(test_rules)
{
	const struct rule *r = &rules[_i];
	enum vm_state next = (enum vm_state)99;

	ck_assert_int_eq(lifecycle_next(r->cur, r->op, &next), r->ret);
	if (r->ret == 0)
		ck_assert_int_eq(next, r->next);
	else
		ck_assert_int_eq(next, 99); /* untouched on refusal */
}
END_TEST

START_TEST(test_rules_bad_input)
{
	enum vm_state next = VM_STATE_CREATED;

	ck_assert_int_eq(lifecycle_next((enum vm_state)7, VM_OP_STOP, &next), -EINVAL);
	ck_assert_int_eq(lifecycle_next(VM_STATE_RUNNING, (enum vm_op)9, &next), -EINVAL);
	ck_assert_str_eq(vm_state_name(VM_STATE_CREATED), "created");
	ck_assert_str_eq(vm_state_name(VM_STATE_PAUSING), "pausing");
	ck_assert_str_eq(vm_state_name(VM_STATE_PAUSED), "paused");
	ck_assert_str_eq(vm_state_name(VM_STATE_RESUMING), "resuming");
	ck_assert_str_eq(vm_state_name(VM_STATE_STOPPED), "stopped");
	ck_assert_str_eq(vm_state_name((enum vm_state)7), "?");
}
END_TEST

/* --- a VM with stand-in vCPU threads --------------------------------------- */
#define NCPU 3

struct fake {
	struct vm vm;
	struct vcpu vcpus[NCPU];
	struct kvm_run runs[NCPU];
	atomic_ullong count[NCPU];  /* "guest progress" of each vCPU */
	atomic_bool in_exit[NCPU];  /* inside a long exit: kicks wait */
	atomic_int pause_ret[NCPU]; /* what vm_pause returned on a vCPU thread */
	atomic_bool try_pause[NCPU];
};

static void fake_sigusr1(int sig)
{
	(void)sig;
}

/* The loop of src/kvm/vcpu.c with "KVM_RUN" as a short sleep that counts,
 * returning EINTR when immediate_exit is set. */
static void *fake_vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	struct fake *f = (struct fake *)v->vm;

	lifecycle_vcpu_thread(v);
	while (atomic_load(&v->vm->stop_reason) == VM_RUNNING) {
		if (atomic_exchange(&f->try_pause[v->id], false))
			atomic_store(&f->pause_ret[v->id], vm_pause(v->vm));
		while (atomic_load(&f->in_exit[v->id]))
			sleep_ms(1); /* handling an exit: not in KVM_RUN */
		if (__atomic_load_n(&v->run->immediate_exit, __ATOMIC_SEQ_CST)) {
			__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
			lifecycle_vcpu_check(v);
			continue;
		}
		atomic_fetch_add(&f->count[v->id], 1);
		usleep(100);
	}
	return NULL;
}

static void fake_init(struct fake *f)
{
	struct sigaction sa = { .sa_handler = fake_sigusr1 };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	memset(f, 0, sizeof(*f));
	lifecycle_init(&f->vm.life);
	f->vm.kvm_fd = f->vm.vm_fd = -1;
	f->vm.stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ck_assert_int_ge(f->vm.stop_efd, 0);
	f->vm.vcpus = f->vcpus;
	f->vm.nr_vcpus = NCPU;
	for (unsigned i = 0; i < NCPU; i++) {
		f->vcpus[i].vm = &f->vm;
		f->vcpus[i].id = i;
		f->vcpus[i].fd = -1;
		f->vcpus[i].run = &f->runs[i];
	}
}

static void fake_start(struct fake *f)
{
	for (unsigned i = 0; i < NCPU; i++) {
		ck_assert_int_eq(pthread_create(&f->vcpus[i].thread, NULL, fake_vcpu_thread,
						&f->vcpus[i]),
				 0);
		f->vcpus[i].thread_started = true;
	}
	ck_assert_int_eq(lifecycle_start(&f->vm), 0);
}

/* Stop (if nobody did), join, and check the final states. */
static void fake_finish(struct fake *f)
{
	vm_request_stop(&f->vm, VM_STOP_SIGNAL, 143);
	ck_assert_int_eq(vm_state(&f->vm), VM_STATE_STOPPING);
	for (unsigned i = 0; i < NCPU; i++) {
		atomic_store(&f->in_exit[i], false);
		if (f->vcpus[i].thread_started)
			pthread_join(f->vcpus[i].thread, NULL);
	}
	lifecycle_joined(&f->vm);
	ck_assert_int_eq(vm_state(&f->vm), VM_STATE_STOPPED);
	ck_assert_int_eq(vm_pause(&f->vm), -ESHUTDOWN);
	ck_assert_int_eq(vm_resume(&f->vm), -ESHUTDOWN);
	close(f->vm.stop_efd);
	lifecycle_destroy(&f->vm.life);
}

static void counts(struct fake *f, unsigned long long *out)
{
	for (unsigned i = 0; i < NCPU; i++)
		out[i] = atomic_load(&f->count[i]);
}

/* Wait up to 10 s until every vCPU counted past (base). */
static int wait_progress(struct fake *f, const unsigned long long *base)
{
	for (int t = 0; t < 10000; t++) {
		unsigned i;

		for (i = 0; i < NCPU; i++)
			if (atomic_load(&f->count[i]) <= base[i] + 2)
				break;
		if (i == NCPU)
			return 0;
		sleep_ms(1);
	}
	return -1;
}

static unsigned parked(struct fake *f)
{
	unsigned n;

	pthread_mutex_lock(&f->vm.life.lock);
	n = f->vm.life.parked;
	pthread_mutex_unlock(&f->vm.life.lock);
	return n;
}

START_TEST(test_pause_resume)
{
	unsigned long long zero[NCPU] = { 0 }, a[NCPU], b[NCPU];
	static struct fake f;

	fake_init(&f);
	fake_start(&f);
	ck_assert_int_eq(wait_progress(&f, zero), 0);
	ck_assert_int_eq(vm_pause(&f.vm), 0);
	ck_assert_int_eq(vm_state(&f.vm), VM_STATE_PAUSED);
	ck_assert_uint_eq(parked(&f), NCPU);
	counts(&f, a);
	sleep_ms(100);
	counts(&f, b);
	ck_assert_mem_eq(a, b, sizeof(a)); /* nobody ran while paused */
	ck_assert_int_eq(vm_pause(&f.vm), -EALREADY);
	ck_assert_int_eq(vm_resume(&f.vm), 0);
	ck_assert_int_eq(vm_state(&f.vm), VM_STATE_RUNNING);
	ck_assert_int_eq(vm_resume(&f.vm), -EALREADY);
	ck_assert_int_eq(wait_progress(&f, b), 0);
	/* Again, quickly: the barrier is reusable. */
	for (int i = 0; i < 20; i++) {
		ck_assert_int_eq(vm_pause(&f.vm), 0);
		ck_assert_uint_eq(parked(&f), NCPU);
		ck_assert_int_eq(vm_resume(&f.vm), 0);
	}
	counts(&f, a);
	ck_assert_int_eq(wait_progress(&f, a), 0);
	fake_finish(&f);
}
END_TEST

START_TEST(test_stop_while_paused)
{
	static struct fake f;

	fake_init(&f);
	fake_start(&f);
	ck_assert_int_eq(vm_pause(&f.vm), 0);
	/* The stop wins: the parked threads leave the barrier and end. */
	vm_request_stop(&f.vm, VM_STOP_SIGNAL, 143);
	ck_assert_int_eq(vm_state(&f.vm), VM_STATE_STOPPING);
	ck_assert_int_eq(vm_resume(&f.vm), -ESHUTDOWN);
	for (unsigned i = 0; i < NCPU; i++) {
		pthread_join(f.vcpus[i].thread, NULL);
		f.vcpus[i].thread_started = false; /* joined */
	}
	ck_assert_uint_eq(parked(&f), 0);
	ck_assert_int_eq(f.vm.exit_status, 143);
	fake_finish(&f);
}
END_TEST

START_TEST(test_not_started)
{
	struct vcpu_arch_state vs;
	struct vm_arch_state ms;
	static struct fake f;

	fake_init(&f);
	ck_assert_int_eq(vm_state(&f.vm), VM_STATE_CREATED);
	ck_assert_int_eq(vm_pause(&f.vm), -EINVAL);
	ck_assert_int_eq(vm_resume(&f.vm), -EINVAL);
	/* Getters only while paused: no ioctl is tried (the fds are -1). */
	ck_assert_int_eq(vcpu_get_state(&f.vcpus[0], &vs), -EBUSY);
	ck_assert_int_eq(vm_get_state(&f.vm, &ms), -EBUSY);
	ck_assert_int_eq(lifecycle_hold_paused(&f.vm), -EBUSY);
	fake_start(&f);
	ck_assert_int_eq(vcpu_get_state(&f.vcpus[0], &vs), -EBUSY);
	ck_assert_int_eq(vm_get_state(&f.vm, &ms), -EBUSY);
	ck_assert_int_eq(vm_pause(&f.vm), 0);
	ck_assert_int_eq(lifecycle_hold_paused(&f.vm), 0);
	lifecycle_release(&f.vm);
	ck_assert_int_eq(vm_resume(&f.vm), 0);
	fake_finish(&f);
}
END_TEST

START_TEST(test_pause_from_vcpu_thread)
{
	unsigned long long zero[NCPU] = { 0 };
	static struct fake f;

	fake_init(&f);
	atomic_store(&f.pause_ret[1], 1);
	atomic_store(&f.try_pause[1], true);
	fake_start(&f);
	ck_assert_int_eq(wait_progress(&f, zero), 0);
	ck_assert_int_eq(atomic_load(&f.pause_ret[1]), -EDEADLK);
	ck_assert_int_eq(vm_state(&f.vm), VM_STATE_RUNNING);
	fake_finish(&f);
}
END_TEST

/* vm_pause from a control thread, result in (ret). */
struct pauser {
	struct vm *vm;
	atomic_int ret;
	atomic_bool done;
};

static void *pauser_thread(void *arg)
{
	struct pauser *p = arg;

	atomic_store(&p->ret, vm_pause(p->vm));
	atomic_store(&p->done, true);
	return NULL;
}

/* Wait up to 10 s until (n) vCPUs are parked. */
static int wait_parked(struct fake *f, unsigned n)
{
	for (int t = 0; t < 10000; t++) {
		if (parked(f) == n)
			return 0;
		sleep_ms(1);
	}
	return -1;
}

/* A vCPU in the middle of an exit finishes it before it parks: the pause
 * waits for it (no timeout, no spinning), then completes. */
START_TEST(test_pause_waits_for_exit)
{
	struct pauser p = { 0 };
	static struct fake f;
	pthread_t t;

	fake_init(&f);
	p.vm = &f.vm;
	fake_start(&f);
	atomic_store(&f.in_exit[2], true);
	sleep_ms(5); /* let vCPU 2 enter its "exit" */
	ck_assert_int_eq(pthread_create(&t, NULL, pauser_thread, &p), 0);
	ck_assert_int_eq(wait_parked(&f, NCPU - 1), 0);
	sleep_ms(50);
	ck_assert(!atomic_load(&p.done));
	ck_assert_int_eq(vm_state(&f.vm), VM_STATE_PAUSING);
	atomic_store(&f.in_exit[2], false);
	pthread_join(t, NULL);
	ck_assert_int_eq(atomic_load(&p.ret), 0);
	ck_assert_int_eq(vm_state(&f.vm), VM_STATE_PAUSED);
	ck_assert_uint_eq(parked(&f), NCPU);
	ck_assert_int_eq(vm_resume(&f.vm), 0);
	fake_finish(&f);
}
END_TEST

/* A stop request while vm_pause waits for the barrier: the stop wins. */
START_TEST(test_stop_while_pausing)
{
	struct pauser p = { 0 };
	static struct fake f;
	pthread_t t;

	fake_init(&f);
	p.vm = &f.vm;
	fake_start(&f);
	atomic_store(&f.in_exit[0], true);
	sleep_ms(5);
	ck_assert_int_eq(pthread_create(&t, NULL, pauser_thread, &p), 0);
	ck_assert_int_eq(wait_parked(&f, NCPU - 1), 0);
	vm_request_stop(&f.vm, VM_STOP_ERROR, 1);
	pthread_join(t, NULL);
	ck_assert_int_eq(atomic_load(&p.ret), -ESHUTDOWN);
	ck_assert_int_eq(vm_state(&f.vm), VM_STATE_STOPPING);
	fake_finish(&f);
}
END_TEST

/* --- devices around the pause ------------------------------------------------ */
static atomic_int dev_log[16];
static atomic_int dev_nlog;
static int dev_fail_pause; /* the "id" whose pause fails */

static void dev_note(int v)
{
	int i = atomic_fetch_add(&dev_nlog, 1);

	if (i < 16)
		atomic_store(&dev_log[i], v);
}

/* State is the device's id: pause logs +id, resume -id. */
static int dev_pause(struct vm *vm, void *state)
{
	int id = (int)(intptr_t)state;

	if (id == dev_fail_pause)
		return -EIO;
	dev_note(id);
	return 0;
}

static void dev_resume(struct vm *vm, void *state)
{
	dev_note(-(int)(intptr_t)state);
}

static const struct device_type dev_ok = { .name = "ok", .pause = dev_pause, .resume = dev_resume };
static const struct device_type dev_broken = { .name = "broken", .pause = dev_pause };

/* Capture stderr around vm_pause: the one line it printed into (msg). */
static int pause_capture(struct vm *vm, char *msg, size_t cap)
{
	struct unit_capture c;
	int ret;

	unit_capture_begin(&c);
	ret = vm_pause(vm);
	unit_capture_end(&c, msg, cap);
	return ret;
}

START_TEST(test_device_pause_fails)
{
	/* Newest first: 3 (ok), 2 (broken, fails), 1 (ok). */
	struct device d1 = { .type = &dev_ok, .id = "ok0", .state = (void *)1 };
	struct device d2 = { .type = &dev_broken, .id = "broken0", .state = (void *)2, .next = &d1 };
	struct device d3 = { .type = &dev_ok, .id = "ok1", .state = (void *)3, .next = &d2 };
	unsigned long long a[NCPU];
	static struct fake f;
	char msg[256];

	fake_init(&f);
	f.vm.devices = &d3;
	dev_fail_pause = 2;
	fake_start(&f);
	ck_assert_int_eq(pause_capture(&f.vm, msg, sizeof(msg)), -EIO);
	ck_assert_str_eq(msg, "kvisor: broken0: cannot pause: Input/output error\n");
	/* 3 was paused and resumed again; the vCPUs run again. */
	ck_assert_int_eq(atomic_load(&dev_nlog), 2);
	ck_assert_int_eq(dev_log[0], 3);
	ck_assert_int_eq(dev_log[1], -3);
	ck_assert_int_eq(vm_state(&f.vm), VM_STATE_RUNNING);
	counts(&f, a);
	ck_assert_int_eq(wait_progress(&f, a), 0);
	/* Now it works: pause newest first, resume oldest first; 2 has no
	 * resume hook. */
	dev_fail_pause = 0;
	atomic_store(&dev_nlog, 0);
	ck_assert_int_eq(vm_pause(&f.vm), 0);
	ck_assert_int_eq(vm_resume(&f.vm), 0);
	ck_assert_int_eq(atomic_load(&dev_nlog), 5);
	ck_assert_int_eq(dev_log[0], 3);
	ck_assert_int_eq(dev_log[1], 2);
	ck_assert_int_eq(dev_log[2], 1);
	ck_assert_int_eq(dev_log[3], -1);
	ck_assert_int_eq(dev_log[4], -3);
	fake_finish(&f);
}
END_TEST

static Suite *unit_suite(void)
{
	Suite *s = suite_create("lifecycle");
	TCase *rules_tc = tcase_create("rules");
	TCase *tc = tcase_create("pause");

	tcase_add_loop_test(rules_tc, test_rules, 0, sizeof(rules) / sizeof(rules[0]));
	tcase_add_test(rules_tc, test_rules_bad_input);
	suite_add_tcase(s, rules_tc);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_pause_resume);
	tcase_add_test(tc, test_stop_while_paused);
	tcase_add_test(tc, test_not_started);
	tcase_add_test(tc, test_pause_from_vcpu_thread);
	tcase_add_test(tc, test_pause_waits_for_exit);
	tcase_add_test(tc, test_stop_while_pausing);
	tcase_add_test(tc, test_device_pause_fails);
	suite_add_tcase(s, tc);
	return s;
}

#include "unit.h"
