/* Event loops: epoll over registered fds, one callback per fd, served by a
 * thread of their own or by the thread that calls evloop_run; an evloop_del
 * that waits out a running callback, and evloop_call to run a function there. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "kvisor/evloop.h"
#include "kvisor/log.h"

/*
 * How evloop_del keeps its promise: the loop thread holds loop->lock while
 * it dispatches each callback, and every watch carries a generation number
 * that also travels in the epoll event (data.u64 = gen << 32 | fd). A
 * caller of evloop_del on another thread takes loop->lock, so it waits for
 * a running callback to return; it then removes the watch from epoll and
 * from the table. Events for that fd already fetched by epoll_wait in the
 * same batch are looked up again under the lock before dispatch: the watch
 * is gone, or the fd was reused by a later evloop_add with a new
 * generation, so they are dropped.
 *
 * Callbacks run with loop->lock held, so a callback may call evloop_add and
 * evloop_del (the loop thread knows it already holds the lock), but a thread
 * must not call evloop_del while holding a lock that some callback takes:
 * it would wait for that callback, which waits for the lock.
 *
 * evloop_call queues a record on loop->calls (under loop->lock), writes the
 * wake eventfd and sleeps on loop->call_done with loop->lock; the loop
 * thread runs queued calls when it handles the wake event, with the lock
 * held exactly as for a callback, so calls and callbacks never overlap.
 */

#define EVLOOP_WAKE   0ULL /* data.u64 of the wake eventfd; watches have gen >= 1 */
#define EVLOOP_EVENTS 32

struct evloop_watch {
	evloop_fn fn; /* NULL: slot free */
	void *opaque;
	uint32_t gen;
};

/* A queued evloop_call, on the caller's stack until (done). */
struct evloop_call {
	int (*fn)(void *arg);
	void *arg;
	int ret;
	bool done;
	struct evloop_call *next;
};

struct evloop {
	int epfd;
	int wakefd;
	pthread_t thread;
	bool threaded;                /* evloop_create: served by (thread) */
	pthread_mutex_t lock;         /* the table, stop, calls; held around each callback */
	pthread_cond_t call_done;     /* a queued call finished */
	struct evloop_watch *watches; /* indexed by fd */
	unsigned nwatches;
	uint32_t next_gen;
	bool stop;
	bool running;                            /* a thread is in evloop_serve */
	struct evloop_call *calls, **calls_tail; /* FIFO of pending evloop_calls */
	char name[16];
};

/* The loop this thread is serving a callback or call of (NULL elsewhere):
 * evloop_add/del/call from there already hold the lock. */
static __thread struct evloop *evloop_self;

static void evloop_lock(struct evloop *loop)
{
	if (evloop_self != loop)
		pthread_mutex_lock(&loop->lock);
}

static void evloop_unlock(struct evloop *loop)
{
	if (evloop_self != loop)
		pthread_mutex_unlock(&loop->lock);
}

static uint64_t evloop_key(int fd, uint32_t gen)
{
	return (uint64_t)gen << 32 | (uint32_t)fd;
}

/* Run the callback for one fetched event if its watch is still the one
 * that was registered when the event was fetched. Called with the lock. */
static void evloop_dispatch(struct evloop *loop, const struct epoll_event *ev)
{
	uint32_t fd = (uint32_t)ev->data.u64, gen = (uint32_t)(ev->data.u64 >> 32);
	struct evloop_watch *w;
	evloop_fn fn;
	void *opaque;

	if (fd >= loop->nwatches)
		return;
	w = &loop->watches[fd];
	if (!w->fn || w->gen != gen)
		return;
	/* The callback may grow (move) the table with evloop_add. */
	fn = w->fn;
	opaque = w->opaque;
	fn(opaque, ev->events);
}

/* Run the queued evloop_calls, oldest first. Called with the lock, as the
 * loop thread (evloop_self set: calls may add and delete watches). */
static void evloop_run_calls(struct evloop *loop)
{
	while (loop->calls) {
		struct evloop_call *c = loop->calls;

		loop->calls = c->next;
		if (!loop->calls)
			loop->calls_tail = &loop->calls;
		c->ret = c->fn(c->arg);
		c->done = true;
	}
	pthread_cond_broadcast(&loop->call_done);
}

/* The loop body, on the thread that serves the loop, until loop->stop.
 * 0, or -errno when epoll_wait fails. */
static int evloop_serve(struct evloop *loop)
{
	struct epoll_event evs[EVLOOP_EVENTS];
	bool stop = false;
	int ret = 0;

	while (!stop) {
		int n = epoll_wait(loop->epfd, evs, EVLOOP_EVENTS, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			log_err("%s: epoll_wait: %s", loop->name, strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			uint64_t v;

			pthread_mutex_lock(&loop->lock);
			/* Mark the lock as held only while a callback or call runs. */
			evloop_self = loop;
			if (evs[i].data.u64 == EVLOOP_WAKE) {
				if (read(loop->wakefd, &v, sizeof(v)) < 0 && errno != EAGAIN)
					log_warn("%s: wake eventfd: %s", loop->name,
						 strerror(errno));
				evloop_run_calls(loop);
			} else {
				evloop_dispatch(loop, &evs[i]);
			}
			evloop_self = NULL;
			stop = loop->stop;
			pthread_mutex_unlock(&loop->lock);
		}
	}
	pthread_mutex_lock(&loop->lock);
	loop->stop = false; /* an evloop_open loop may be run again */
	loop->running = false;
	/* Calls queued after the last wake: run here, nobody serves them later. */
	evloop_self = loop;
	evloop_run_calls(loop);
	evloop_self = NULL;
	pthread_mutex_unlock(&loop->lock);
	return ret;
}

static void *evloop_thread(void *arg)
{
	evloop_serve(arg);
	return NULL;
}

static void evloop_wake(struct evloop *loop)
{
	uint64_t one = 1;

	if (write(loop->wakefd, &one, sizeof(one)) < 0)
		log_warn("%s: wake eventfd: %s", loop->name, strerror(errno));
}

/* Allocate (name)d loop with its epoll set and wake eventfd, no thread. */
static int evloop_alloc(struct evloop **out, const char *name)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = EVLOOP_WAKE };
	struct evloop *loop;
	int ret;

	loop = calloc(1, sizeof(*loop));
	if (!loop)
		return -ENOMEM;
	/* Thread names are at most 15 characters. */
	snprintf(loop->name, sizeof(loop->name), "%s", name ? name : "evloop");
	loop->next_gen = 1;
	loop->calls_tail = &loop->calls;
	pthread_mutex_init(&loop->lock, NULL);
	pthread_cond_init(&loop->call_done, NULL);
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		ret = -errno;
		log_err("%s: epoll_create1: %s", loop->name, strerror(errno));
		goto err_free;
	}
	loop->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (loop->wakefd < 0) {
		ret = -errno;
		log_err("%s: eventfd: %s", loop->name, strerror(errno));
		goto err_epoll;
	}
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->wakefd, &ev) < 0) {
		ret = -errno;
		log_err("%s: epoll_ctl: %s", loop->name, strerror(errno));
		goto err_wake;
	}
	*out = loop;
	return 0;

err_wake:
	close(loop->wakefd);
err_epoll:
	close(loop->epfd);
err_free:
	pthread_cond_destroy(&loop->call_done);
	pthread_mutex_destroy(&loop->lock);
	free(loop);
	return ret;
}

static void evloop_free(struct evloop *loop)
{
	for (unsigned fd = 0; fd < loop->nwatches; fd++)
		if (loop->watches[fd].fn)
			log_warn("%s: fd %u still watched at destroy", loop->name, fd);
	close(loop->wakefd);
	close(loop->epfd);
	pthread_cond_destroy(&loop->call_done);
	pthread_mutex_destroy(&loop->lock);
	free(loop->watches);
	free(loop);
}

int evloop_create(struct evloop **out, const char *name)
{
	sigset_t all, old;
	struct evloop *loop;
	int ret;

	ret = evloop_alloc(&loop, name);
	if (ret)
		return ret;
	loop->threaded = true;
	loop->running = true;
	/* Signals go to the main thread (signalfd) and to vCPU threads
	 * (SIGUSR1 kicks), never here: the new thread inherits a full mask. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = -pthread_create(&loop->thread, NULL, evloop_thread, loop);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret) {
		log_err("%s: pthread_create: %s", loop->name, strerror(-ret));
		loop->running = false;
		evloop_free(loop);
		return ret;
	}
	pthread_setname_np(loop->thread, loop->name);
	*out = loop;
	return 0;
}

int evloop_open(struct evloop **out, const char *name)
{
	return evloop_alloc(out, name);
}

int evloop_run(struct evloop *loop)
{
	pthread_mutex_lock(&loop->lock);
	if (loop->threaded || loop->running) {
		pthread_mutex_unlock(&loop->lock);
		return -EBUSY;
	}
	loop->running = true;
	pthread_mutex_unlock(&loop->lock);
	return evloop_serve(loop);
}

void evloop_stop(struct evloop *loop)
{
	if (loop->threaded)
		return; /* evloop_destroy stops those */
	evloop_lock(loop);
	loop->stop = true;
	evloop_unlock(loop);
	evloop_wake(loop);
}

int evloop_call(struct evloop *loop, int (*fn)(void *arg), void *arg)
{
	struct evloop_call c = { .fn = fn, .arg = arg };

	if (!fn)
		return -EINVAL;
	/* On the loop thread (from a callback or a call): the lock is held and
	 * callbacks cannot run meanwhile, so run it here. */
	if (evloop_self == loop)
		return fn(arg);
	pthread_mutex_lock(&loop->lock);
	if (!loop->running) {
		pthread_mutex_unlock(&loop->lock);
		return -ESHUTDOWN;
	}
	*loop->calls_tail = &c;
	loop->calls_tail = &c.next;
	pthread_mutex_unlock(&loop->lock);
	evloop_wake(loop);
	pthread_mutex_lock(&loop->lock);
	while (!c.done)
		pthread_cond_wait(&loop->call_done, &loop->lock);
	pthread_mutex_unlock(&loop->lock);
	return c.ret;
}

/* Make room in the table for (fd). Called with the lock. */
static int evloop_grow(struct evloop *loop, int fd)
{
	unsigned n = loop->nwatches ? loop->nwatches : 64;
	struct evloop_watch *w;

	while (n <= (unsigned)fd)
		n *= 2;
	w = realloc(loop->watches, n * sizeof(*w));
	if (!w)
		return -ENOMEM;
	memset(w + loop->nwatches, 0, (n - loop->nwatches) * sizeof(*w));
	loop->watches = w;
	loop->nwatches = n;
	return 0;
}

int evloop_add(struct evloop *loop, int fd, uint32_t events, evloop_fn fn, void *opaque)
{
	struct epoll_event ev = { .events = events };
	struct evloop_watch *w;
	int ret = 0;

	if (fd < 0)
		return -EBADF;
	if (!fn)
		return -EINVAL;
	evloop_lock(loop);
	if ((unsigned)fd >= loop->nwatches) {
		ret = evloop_grow(loop, fd);
		if (ret)
			goto out;
	}
	w = &loop->watches[fd];
	if (w->fn) {
		ret = -EEXIST;
		goto out;
	}
	if (++loop->next_gen == 0) /* gen 0 would look like the wake event */
		loop->next_gen = 1;
	ev.data.u64 = evloop_key(fd, loop->next_gen);
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		ret = -errno;
		goto out;
	}
	w->fn = fn;
	w->opaque = opaque;
	w->gen = loop->next_gen;
out:
	evloop_unlock(loop);
	return ret;
}

int evloop_del(struct evloop *loop, int fd)
{
	struct evloop_watch *w;
	int ret = 0;

	if (fd < 0)
		return -EBADF;
	/* Waits here for a callback running on the loop thread. */
	evloop_lock(loop);
	if ((unsigned)fd >= loop->nwatches || !loop->watches[fd].fn) {
		ret = -ENOENT;
		goto out;
	}
	w = &loop->watches[fd];
	/* Fails only if (fd) was closed first (a caller bug); the watch goes
	 * away anyway, and events a surviving registration might still
	 * deliver find no watch, or a newer generation, and are dropped. */
	if (epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL) < 0)
		log_warn("%s: epoll_ctl del fd %d: %s", loop->name, fd, strerror(errno));
	memset(w, 0, sizeof(*w));
out:
	evloop_unlock(loop);
	return ret;
}

void evloop_destroy(struct evloop *loop)
{
	if (!loop)
		return;
	if (loop->threaded) {
		pthread_mutex_lock(&loop->lock);
		loop->stop = true;
		pthread_mutex_unlock(&loop->lock);
		evloop_wake(loop);
		pthread_join(loop->thread, NULL);
	}
	evloop_free(loop);
}
