/* The event-loop thread: epoll over registered fds, one callback per fd,
 * with an evloop_del that waits out a running callback. */
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
 */

#define EVLOOP_WAKE   0ULL /* data.u64 of the wake eventfd; watches have gen >= 1 */
#define EVLOOP_EVENTS 32

struct evloop_watch {
	evloop_fn fn;   /* NULL: slot free */
	void *opaque;
	uint32_t gen;
};

struct evloop {
	int epfd;
	int wakefd;
	pthread_t thread;
	pthread_mutex_t lock;        /* the table, stop; held around each callback */
	struct evloop_watch *watches; /* indexed by fd */
	unsigned nwatches;
	uint32_t next_gen;
	bool stop;
	char name[16];
};

/* The loop this thread serves (set on loop threads only): calls from a
 * callback already hold the lock. */
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

static void *evloop_thread(void *arg)
{
	struct epoll_event evs[EVLOOP_EVENTS];
	struct evloop *loop = arg;
	bool stop = false;

	while (!stop) {
		int n = epoll_wait(loop->epfd, evs, EVLOOP_EVENTS, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_err("%s: epoll_wait: %s", loop->name, strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			uint64_t v;

			pthread_mutex_lock(&loop->lock);
			if (evs[i].data.u64 == EVLOOP_WAKE) {
				if (read(loop->wakefd, &v, sizeof(v)) < 0 && errno != EAGAIN)
					log_warn("%s: wake eventfd: %s", loop->name, strerror(errno));
			} else {
				/* Mark the lock as held only while a callback runs. */
				evloop_self = loop;
				evloop_dispatch(loop, &evs[i]);
				evloop_self = NULL;
			}
			stop = loop->stop;
			pthread_mutex_unlock(&loop->lock);
		}
	}
	return NULL;
}

int evloop_create(struct evloop **out, const char *name)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = EVLOOP_WAKE };
	sigset_t all, old;
	struct evloop *loop;
	int ret;

	loop = calloc(1, sizeof(*loop));
	if (!loop)
		return -ENOMEM;
	/* Thread names are at most 15 characters. */
	snprintf(loop->name, sizeof(loop->name), "%s", name ? name : "evloop");
	loop->next_gen = 1;
	pthread_mutex_init(&loop->lock, NULL);
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
	/* Signals go to the main thread (signalfd) and to vCPU threads
	 * (SIGUSR1 kicks), never here: the new thread inherits a full mask. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = -pthread_create(&loop->thread, NULL, evloop_thread, loop);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret) {
		log_err("%s: pthread_create: %s", loop->name, strerror(-ret));
		goto err_wake;
	}
	pthread_setname_np(loop->thread, loop->name);
	*out = loop;
	return 0;

err_wake:
	close(loop->wakefd);
err_epoll:
	close(loop->epfd);
err_free:
	pthread_mutex_destroy(&loop->lock);
	free(loop);
	return ret;
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
	uint64_t one = 1;

	if (!loop)
		return;
	pthread_mutex_lock(&loop->lock);
	loop->stop = true;
	pthread_mutex_unlock(&loop->lock);
	if (write(loop->wakefd, &one, sizeof(one)) < 0)
		log_warn("%s: wake eventfd: %s", loop->name, strerror(errno));
	pthread_join(loop->thread, NULL);
	for (unsigned fd = 0; fd < loop->nwatches; fd++)
		if (loop->watches[fd].fn)
			log_warn("%s: fd %u still watched at destroy", loop->name, fd);
	close(loop->wakefd);
	close(loop->epfd);
	pthread_mutex_destroy(&loop->lock);
	free(loop->watches);
	free(loop);
}
