/* Unit tests of the event-loop thread: dispatch, add/del from any thread,
 * the evloop_del guarantee under a busy fd, destroy. */
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
	atomic_uint late;   /* calls that began after evloop_del returned */
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
	suite_add_tcase(s, tc);
	return s;
}

#include "unit.h"
