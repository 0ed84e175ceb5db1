/* Unit tests of the event loops: dispatch, add/del from any thread, the
 * evloop_del guarantee under a busy fd, destroy, evloop_call, and loops
 * served by the calling thread (evloop_open/evloop_run/evloop_stop). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "kvisor/evloop.h"

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Wait up to 5 s for (*v) >= (want). */
static int wait_count(atomic_uint *v, unsigned want)
{
	for (int i = 0; i < 5000; i++) {
		if (atomic_load(v) >= want)
			return 0;
		sleep_ms(1);
	}
	return -1;
}

static void kick(int fd)
{
	uint64_t one = 1;

	ck_assert_int_eq(write(fd, &one, sizeof(one)), sizeof(one));
}

struct counter {
	int fd;
	bool drain;
	atomic_uint calls;
	uint32_t events;
	char thread_name[16];
};

static void counter_fn(void *opaque, uint32_t events)
{
	struct counter *c = opaque;
	uint64_t v;

	if (c->drain)
		ck_assert_int_eq(read(c->fd, &v, sizeof(v)), sizeof(v));
	c->events = events;
	pthread_getname_np(pthread_self(), c->thread_name, sizeof(c->thread_name));
	atomic_fetch_add(&c->calls, 1);
}

START_TEST(test_add_dispatch_del)
{
	struct counter c = { .drain = true };
	struct evloop *loop;

	ck_assert_int_eq(evloop_create(&loop, "evloop-test"), 0);
	c.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ck_assert_int_ge(c.fd, 0);
	ck_assert_int_eq(evloop_add(loop, c.fd, EPOLLIN, counter_fn, &c), 0);
	ck_assert_int_eq(evloop_add(loop, c.fd, EPOLLIN, counter_fn, &c), -EEXIST);
	kick(c.fd);
	ck_assert_int_eq(wait_count(&c.calls, 1), 0);
	ck_assert_uint_eq(c.events & EPOLLIN, EPOLLIN);
	ck_assert_str_eq(c.thread_name, "evloop-test");
	kick(c.fd);
	ck_assert_int_eq(wait_count(&c.calls, 2), 0);
	ck_assert_int_eq(evloop_del(loop, c.fd), 0);
	ck_assert_int_eq(evloop_del(loop, c.fd), -ENOENT);
	kick(c.fd);
	sleep_ms(20);
	ck_assert_uint_eq(atomic_load(&c.calls), 2);
	evloop_destroy(loop);
	close(c.fd);
}
END_TEST

START_TEST(test_errors_and_name)
{
	struct counter c = { 0 };
	struct evloop *loop;

	/* A long name is cut to the 15 characters a thread name holds. */
	ck_assert_int_eq(evloop_create(&loop, "a-very-long-loop-name"), 0);
	ck_assert_int_eq(evloop_add(loop, -1, EPOLLIN, counter_fn, &c), -EBADF);
	ck_assert_int_eq(evloop_add(loop, 1000000, EPOLLIN, counter_fn, &c), -EBADF);
	ck_assert_int_eq(evloop_add(loop, 0, EPOLLIN, NULL, &c), -EINVAL);
	ck_assert_int_eq(evloop_del(loop, -1), -EBADF);
	ck_assert_int_eq(evloop_del(loop, 5000), -ENOENT);
	c.fd = eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);
	c.drain = true;
	ck_assert_int_eq(evloop_add(loop, c.fd, EPOLLIN, counter_fn, &c), 0);
	ck_assert_int_eq(wait_count(&c.calls, 1), 0);
	ck_assert_str_eq(c.thread_name, "a-very-long-loo");
	ck_assert_int_eq(evloop_del(loop, c.fd), 0);
	evloop_destroy(loop);
	close(c.fd);
}
END_TEST

START_TEST(test_create_destroy_idle)
{
	/* The wake eventfd must stop a thread that may not be in epoll_wait yet. */
	for (int i = 0; i < 200; i++) {
		struct evloop *loop;

		ck_assert_int_eq(evloop_create(&loop, NULL), 0);
		evloop_destroy(loop);
	}
}
END_TEST

/* A callback on an always-readable fd that notices if it runs after del. */
struct busy {
	int fd;
	atomic_bool running;
	atomic_bool deleted;
	atomic_uint calls;
	atomic_uint late; /* calls that began after evloop_del returned */
};

static bool busy_running(struct busy *b)
{
	return atomic_load(&b->running);
}

static void busy_fn(void *opaque, uint32_t events)
{
	struct busy *b = opaque;

	if (atomic_load(&b->deleted))
		atomic_fetch_add(&b->late, 1);
	atomic_store(&b->running, true);
	for (volatile int i = 0; i < 2000; i++)
		;
	atomic_fetch_add(&b->calls, 1);
	atomic_store(&b->running, false);
}

START_TEST(test_del_waits_for_callback)
{
	enum { NBUSY = 4, ROUNDS = 300 };
	struct evloop *loop;

	ck_assert_int_eq(evloop_create(&loop, "evloop-stress"), 0);
	for (int r = 0; r < ROUNDS; r++) {
		struct busy *bs[NBUSY];

		for (int i = 0; i < NBUSY; i++) {
			bs[i] = calloc(1, sizeof(*bs[i]));
			/* Never drained: level-triggered, it fires on every wait. */
			bs[i]->fd = eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);
			ck_assert_int_ge(bs[i]->fd, 0);
			ck_assert_int_eq(evloop_add(loop, bs[i]->fd, EPOLLIN, busy_fn, bs[i]), 0);
		}
		ck_assert_int_eq(wait_count(&bs[r % NBUSY]->calls, 1), 0);
		for (int i = 0; i < NBUSY; i++) {
			struct busy *b = bs[(i + r) % NBUSY];

			ck_assert_int_eq(evloop_del(loop, b->fd), 0);
			atomic_store(&b->deleted, true);
			ck_assert(!busy_running(b));
			/* The fd number is reused by the next round's eventfd: stale
			 * events must not reach the new watch's callback either. */
			close(b->fd);
		}
		sleep_ms(r % 10 == 0 ? 2 : 0);
		for (int i = 0; i < NBUSY; i++) {
			ck_assert_uint_eq(atomic_load(&bs[i]->late), 0);
			ck_assert(!busy_running(bs[i]));
			free(bs[i]); /* use-after-free here shows under SANITIZE=address */
		}
	}
	evloop_destroy(loop);
}
END_TEST

/* Two fds fire together; whichever callback runs first deletes both. */
struct pair {
	struct evloop *loop;
	int fd[2];
	atomic_uint calls;
};

static void pair_fn(void *opaque, uint32_t events)
{
	struct pair *p = opaque;

	atomic_fetch_add(&p->calls, 1);
	ck_assert_int_eq(evloop_del(p->loop, p->fd[0]), 0);
	ck_assert_int_eq(evloop_del(p->loop, p->fd[1]), 0);
}

START_TEST(test_del_from_callback)
{
	struct pair p = { 0 };

	ck_assert_int_eq(evloop_create(&p.loop, "evloop-self"), 0);
	for (int r = 0; r < 50; r++) {
		atomic_store(&p.calls, 0);
		/* Two fds of one eventfd: one write readies both at once, so
		 * they (almost always) come back in the same epoll batch. */
		p.fd[0] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		p.fd[1] = dup(p.fd[0]);
		ck_assert_int_eq(evloop_add(p.loop, p.fd[0], EPOLLIN, pair_fn, &p), 0);
		ck_assert_int_eq(evloop_add(p.loop, p.fd[1], EPOLLIN, pair_fn, &p), 0);
		kick(p.fd[0]);
		ck_assert_int_eq(wait_count(&p.calls, 1), 0);
		sleep_ms(5);
		/* Still readable, yet the callback ran once in all. */
		ck_assert_uint_eq(atomic_load(&p.calls), 1);
		ck_assert_int_eq(evloop_del(p.loop, p.fd[0]), -ENOENT);
		close(p.fd[0]);
		close(p.fd[1]);
	}
	evloop_destroy(p.loop);
}
END_TEST

/* A callback that watches a second fd from the loop thread. */
struct chain {
	struct evloop *loop;
	struct counter *next;
	int fd;
};

static void chain_fn(void *opaque, uint32_t events)
{
	struct chain *ch = opaque;
	uint64_t v;

	ck_assert_int_eq(read(ch->fd, &v, sizeof(v)), sizeof(v));
	ck_assert_int_eq(evloop_add(ch->loop, ch->next->fd, EPOLLIN, counter_fn, ch->next), 0);
	ck_assert_int_eq(evloop_del(ch->loop, ch->fd), 0);
}

START_TEST(test_add_from_callback)
{
	struct counter c = { .drain = true };
	struct chain ch;
	int efd;

	ck_assert_int_eq(evloop_create(&ch.loop, "evloop-chain"), 0);
	/* A high fd number makes the add from the callback grow the table. */
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	c.fd = dup2(efd, 900);
	ck_assert_int_eq(c.fd, 900);
	close(efd);
	ch.next = &c;
	ch.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ck_assert_int_eq(evloop_add(ch.loop, ch.fd, EPOLLIN, chain_fn, &ch), 0);
	kick(c.fd);
	kick(ch.fd);
	ck_assert_int_eq(wait_count(&c.calls, 1), 0);
	ck_assert_int_eq(evloop_del(ch.loop, c.fd), 0);
	ck_assert_int_eq(evloop_del(ch.loop, ch.fd), -ENOENT);
	evloop_destroy(ch.loop);
	close(c.fd);
	close(ch.fd);
}
END_TEST

/* Threads adding and deleting their own fds while all of them fire. */
static void *churn_thread(void *arg)
{
	struct evloop *loop = arg;

	for (int i = 0; i < 300; i++) {
		struct busy b = { 0 };

		b.fd = eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);
		ck_assert_int_eq(evloop_add(loop, b.fd, EPOLLIN, busy_fn, &b), 0);
		if (i % 3 == 0)
			wait_count(&b.calls, 1);
		ck_assert_int_eq(evloop_del(loop, b.fd), 0);
		atomic_store(&b.deleted, true);
		ck_assert(!busy_running(&b));
		close(b.fd);
		/* (b) goes out of scope: a late callback would touch a dead frame. */
		ck_assert_uint_eq(atomic_load(&b.late), 0);
	}
	return NULL;
}

START_TEST(test_concurrent_add_del)
{
	pthread_t t[4];
	struct evloop *loop;

	ck_assert_int_eq(evloop_create(&loop, "evloop-churn"), 0);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, churn_thread, loop), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	evloop_destroy(loop);
}
END_TEST

/* --- evloop_call ----------------------------------------------------------- */
struct call_probe {
	struct evloop *loop;
	char thread_name[16];
	atomic_uint runs;
	int result;
	unsigned delay_ms;
	struct counter *add; /* watch this from inside the call, if set */
};

static int probe_fn(void *arg)
{
	struct call_probe *p = arg;

	if (p->delay_ms)
		sleep_ms(p->delay_ms);
	pthread_getname_np(pthread_self(), p->thread_name, sizeof(p->thread_name));
	if (p->add)
		ck_assert_int_eq(evloop_add(p->loop, p->add->fd, EPOLLIN, counter_fn, p->add), 0);
	atomic_fetch_add(&p->runs, 1);
	return p->result;
}

START_TEST(test_call_runs_on_loop_thread)
{
	struct call_probe p = { .result = -EIO, .delay_ms = 50 };
	struct counter c = { .drain = true };

	ck_assert_int_eq(evloop_create(&p.loop, "evloop-call"), 0);
	/* Returns fn's result, only once fn has run (it sleeps first). */
	ck_assert_int_eq(evloop_call(p.loop, probe_fn, &p), -EIO);
	ck_assert_uint_eq(atomic_load(&p.runs), 1);
	ck_assert_str_eq(p.thread_name, "evloop-call");
	p.result = 42;
	p.delay_ms = 0;
	ck_assert_int_eq(evloop_call(p.loop, probe_fn, &p), 42);
	ck_assert_uint_eq(atomic_load(&p.runs), 2);
	/* A call may watch fds of its loop (the lock is already held). */
	c.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	p.add = &c;
	ck_assert_int_eq(evloop_call(p.loop, probe_fn, &p), 42);
	kick(c.fd);
	ck_assert_int_eq(wait_count(&c.calls, 1), 0);
	ck_assert_int_eq(evloop_del(p.loop, c.fd), 0);
	ck_assert_int_eq(evloop_call(p.loop, NULL, &p), -EINVAL);
	evloop_destroy(p.loop);
	close(c.fd);
}
END_TEST

/* A callback that calls evloop_call on its own loop: runs inline. */
struct inline_call {
	struct evloop *loop;
	int fd;
	struct call_probe probe;
	int ret;
	atomic_uint calls;
};

static void inline_call_fn(void *opaque, uint32_t events)
{
	struct inline_call *ic = opaque;
	uint64_t v;

	ck_assert_int_eq(read(ic->fd, &v, sizeof(v)), sizeof(v));
	ic->ret = evloop_call(ic->loop, probe_fn, &ic->probe);
	atomic_fetch_add(&ic->calls, 1);
}

START_TEST(test_call_from_callback_inline)
{
	struct inline_call ic = { .probe.result = 7 };

	ck_assert_int_eq(evloop_create(&ic.loop, "evloop-inl"), 0);
	ic.probe.loop = ic.loop;
	ic.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ck_assert_int_eq(evloop_add(ic.loop, ic.fd, EPOLLIN, inline_call_fn, &ic), 0);
	kick(ic.fd);
	ck_assert_int_eq(wait_count(&ic.calls, 1), 0);
	ck_assert_int_eq(ic.ret, 7);
	ck_assert_uint_eq(atomic_load(&ic.probe.runs), 1);
	ck_assert_str_eq(ic.probe.thread_name, "evloop-inl");
	ck_assert_int_eq(evloop_del(ic.loop, ic.fd), 0);
	evloop_destroy(ic.loop);
	close(ic.fd);
}
END_TEST

/* Calls never overlap a callback or each other: each marks itself inside
 * a busy window and counts the times it found someone else there. */
struct exclusive {
	struct evloop *loop;
	int fd;
	int inside; /* how many are in the window (atomic builtins) */
	atomic_uint overlaps;
	atomic_uint done;
};

static void exclusive_enter(struct exclusive *e)
{
	if (__atomic_fetch_add(&e->inside, 1, __ATOMIC_SEQ_CST) != 0)
		atomic_fetch_add(&e->overlaps, 1);
	for (volatile int i = 0; i < 5000; i++)
		;
	__atomic_fetch_sub(&e->inside, 1, __ATOMIC_SEQ_CST);
}

static void exclusive_cb(void *opaque, uint32_t events)
{
	exclusive_enter(opaque); /* never drained: fires on every wait */
}

static int exclusive_call(void *arg)
{
	exclusive_enter(arg);
	return 0;
}

static void *exclusive_caller(void *arg)
{
	struct exclusive *e = arg;

	for (int i = 0; i < 300; i++)
		ck_assert_int_eq(evloop_call(e->loop, exclusive_call, e), 0);
	atomic_fetch_add(&e->done, 1);
	return NULL;
}

START_TEST(test_call_concurrent_callers)
{
	struct exclusive e = { 0 };
	pthread_t t[3];

	ck_assert_int_eq(evloop_create(&e.loop, "evloop-excl"), 0);
	e.fd = eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);
	ck_assert_int_eq(evloop_add(e.loop, e.fd, EPOLLIN, exclusive_cb, &e), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, exclusive_caller, &e), 0);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	ck_assert_uint_eq(atomic_load(&e.done), 3);
	ck_assert_uint_eq(atomic_load(&e.overlaps), 0);
	ck_assert_int_eq(evloop_del(e.loop, e.fd), 0);
	evloop_destroy(e.loop);
	close(e.fd);
}
END_TEST

/* --- loops served by the calling thread ---------------------------------------- */
struct stopper {
	struct evloop *loop;
	int fd;
	atomic_uint calls;
};

static void stopper_fn(void *opaque, uint32_t events)
{
	struct stopper *s = opaque;
	uint64_t v;

	ck_assert_int_eq(read(s->fd, &v, sizeof(v)), sizeof(v));
	atomic_fetch_add(&s->calls, 1);
	evloop_stop(s->loop);
}

START_TEST(test_run_on_calling_thread)
{
	struct stopper s = { 0 };
	struct call_probe p = { .result = 5 };
	char name[16];

	ck_assert_int_eq(evloop_open(&s.loop, "ignored-name"), 0);
	p.loop = s.loop;
	/* Nobody serves it yet: a call cannot wait for it. */
	ck_assert_int_eq(evloop_call(s.loop, probe_fn, &p), -ESHUTDOWN);
	ck_assert_uint_eq(atomic_load(&p.runs), 0);
	s.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ck_assert_int_eq(evloop_add(s.loop, s.fd, EPOLLIN, stopper_fn, &s), 0);
	kick(s.fd);
	ck_assert_int_eq(evloop_run(s.loop), 0);
	ck_assert_uint_eq(atomic_load(&s.calls), 1);
	/* It can be run again; the callback ran on this thread. */
	kick(s.fd);
	ck_assert_int_eq(evloop_run(s.loop), 0);
	ck_assert_uint_eq(atomic_load(&s.calls), 2);
	pthread_getname_np(pthread_self(), name, sizeof(name));
	ck_assert_str_ne(name, "ignored-name");
	ck_assert_int_eq(evloop_del(s.loop, s.fd), 0);
	evloop_destroy(s.loop);
	close(s.fd);
}
END_TEST

/* Another thread calls into a loop that this thread runs, then stops it. */
struct remote {
	struct evloop *loop;
	struct call_probe probe;
	int ret;
};

static void *remote_thread(void *arg)
{
	struct remote *r = arg;

	/* evloop_run may not have started yet: -ESHUTDOWN until it has. */
	for (int i = 0; i < 5000; i++) {
		r->ret = evloop_call(r->loop, probe_fn, &r->probe);
		if (r->ret != -ESHUTDOWN)
			break;
		sleep_ms(1);
	}
	evloop_stop(r->loop);
	return NULL;
}

START_TEST(test_run_serves_calls)
{
	struct remote r = { .probe.result = 9 };
	char me[16];
	pthread_t t;

	pthread_getname_np(pthread_self(), me, sizeof(me));
	ck_assert_int_eq(evloop_open(&r.loop, "main"), 0);
	r.probe.loop = r.loop;
	ck_assert_int_eq(pthread_create(&t, NULL, remote_thread, &r), 0);
	ck_assert_int_eq(evloop_run(r.loop), 0);
	pthread_join(t, NULL);
	ck_assert_int_eq(r.ret, 9);
	ck_assert_uint_eq(atomic_load(&r.probe.runs), 1);
	ck_assert_str_eq(r.probe.thread_name, me);
	evloop_destroy(r.loop);
}
END_TEST

START_TEST(test_run_refuses_threaded)
{
	struct call_probe p = { .result = 3 };
	struct evloop *loop;

	ck_assert_int_eq(evloop_create(&loop, "evloop-thr"), 0);
	ck_assert_int_eq(evloop_run(loop), -EBUSY);
	evloop_stop(loop); /* no effect: the thread keeps serving */
	ck_assert_int_eq(evloop_call(loop, probe_fn, &p), 3);
	evloop_destroy(loop);
}
END_TEST

static Suite *unit_suite(void)
{
	Suite *s = suite_create("evloop");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_add_dispatch_del);
	tcase_add_test(tc, test_errors_and_name);
	tcase_add_test(tc, test_create_destroy_idle);
	tcase_add_test(tc, test_del_waits_for_callback);
	tcase_add_test(tc, test_del_from_callback);
	tcase_add_test(tc, test_add_from_callback);
	tcase_add_test(tc, test_concurrent_add_del);
	tcase_add_test(tc, test_call_runs_on_loop_thread);
	tcase_add_test(tc, test_call_from_callback_inline);
	tcase_add_test(tc, test_call_concurrent_callers);
	tcase_add_test(tc, test_run_on_calling_thread);
	tcase_add_test(tc, test_run_serves_calls);
	tcase_add_test(tc, test_run_refuses_threaded);
	suite_add_tcase(s, tc);
	return s;
}

#include "unit.h"
