/* A fake network device for backend tests: it records the frames a backend
 * hands it, says whether it can take more (can_rx, rx_budget), counts
 * tx_ready and link changes; and a runner that serves an evloop_open loop
 * on the test's thread until a condition holds or time runs out. */
#ifndef KVISOR_TESTS_NET_PEER_H
#define KVISOR_TESTS_NET_PEER_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "kvisor/evloop.h"
#include "kvisor/net.h"
#include "unit_capture.h"

#define TPEER_MAX 64

struct tpeer {
	bool can_rx;      /* what can_receive answers ... */
	int rx_budget;    /* ... while this is not 0 (-1: no limit); a frame takes one */
	unsigned nframes; /* frames received; the first TPEER_MAX kept */
	uint8_t *frames[TPEER_MAX];
	size_t lens[TPEER_MAX];
	unsigned rx_refused; /* frames received while can_receive said no */
	unsigned tx_ready, link_down, link_up;
};

static inline bool tpeer_can_receive(void *opaque)
{
	struct tpeer *p = opaque;

	return p->can_rx && p->rx_budget != 0;
}

static inline void tpeer_receive(void *opaque, const struct iovec *iov, unsigned iovcnt, size_t len)
{
	struct tpeer *p = opaque;
	uint8_t *copy;
	size_t off = 0;

	if (!tpeer_can_receive(p))
		p->rx_refused++;
	if (p->rx_budget > 0)
		p->rx_budget--;
	if (p->nframes < TPEER_MAX) {
		copy = malloc(len ? len : 1);
		ck_assert_ptr_nonnull(copy);
		for (unsigned i = 0; i < iovcnt && off < len; i++) {
			size_t n = iov[i].iov_len < len - off ? iov[i].iov_len : len - off;

			memcpy(copy + off, iov[i].iov_base, n);
			off += n;
		}
		ck_assert_uint_eq(off, len);
		p->frames[p->nframes] = copy;
		p->lens[p->nframes] = len;
	}
	p->nframes++;
}

static inline void tpeer_tx_ready(void *opaque)
{
	((struct tpeer *)opaque)->tx_ready++;
}

static inline void tpeer_link_changed(void *opaque, bool up)
{
	struct tpeer *p = opaque;

	if (up)
		p->link_up++;
	else
		p->link_down++;
}

static const struct net_peer_ops tpeer_ops = {
	.can_receive = tpeer_can_receive,
	.receive = tpeer_receive,
	.tx_ready = tpeer_tx_ready,
	.link_changed = tpeer_link_changed,
};

static inline void tpeer_init(struct tpeer *p)
{
	memset(p, 0, sizeof(*p));
	p->can_rx = true;
	p->rx_budget = -1;
}

static inline void tpeer_free(struct tpeer *p)
{
	for (unsigned i = 0; i < p->nframes && i < TPEER_MAX; i++)
		free(p->frames[i]);
	p->nframes = 0;
}

struct trun {
	struct evloop *loop;
	int tfd;
	bool (*done)(void *arg);
	void *arg;
	struct timespec deadline;
};

static inline void trun_tick(void *opaque, uint32_t events)
{
	struct trun *r = opaque;
	struct timespec now;
	uint64_t v;

	if (read(r->tfd, &v, sizeof(v)) < 0)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if ((r->done && r->done(r->arg)) || now.tv_sec > r->deadline.tv_sec ||
	    (now.tv_sec == r->deadline.tv_sec && now.tv_nsec >= r->deadline.tv_nsec))
		evloop_stop(r->loop);
}

/* Serve (loop) (from evloop_open) on this thread until done(arg) holds
 * (checked every millisecond; done NULL: never) or (ms) have passed.
 * Returns done(arg) at the end (false without done). */
static inline bool trun_until(struct evloop *loop, bool (*done)(void *arg), void *arg, unsigned ms)
{
	struct itimerspec its = { .it_interval.tv_nsec = 1000000, .it_value.tv_nsec = 1000000 };
	struct trun r = { .loop = loop, .done = done, .arg = arg };

	if (done && done(arg))
		return true;
	clock_gettime(CLOCK_MONOTONIC, &r.deadline);
	r.deadline.tv_sec += ms / 1000;
	r.deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (r.deadline.tv_nsec >= 1000000000L) {
		r.deadline.tv_sec++;
		r.deadline.tv_nsec -= 1000000000L;
	}
	r.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	ck_assert_int_ge(r.tfd, 0);
	ck_assert_int_eq(timerfd_settime(r.tfd, 0, &its, NULL), 0);
	ck_assert_int_eq(evloop_add(loop, r.tfd, EPOLLIN, trun_tick, &r), 0);
	ck_assert_int_eq(evloop_run(loop), 0);
	ck_assert_int_eq(evloop_del(loop, r.tfd), 0);
	close(r.tfd);
	return done ? done(arg) : false;
}

/* Serve (loop) for (ms) milliseconds. */
static inline void trun_for(struct evloop *loop, unsigned ms)
{
	trun_until(loop, NULL, NULL, ms);
}

/* A condition for trun_until: (p) has (n) frames. */
struct tpeer_want {
	struct tpeer *p;
	unsigned n;
};

static inline bool tpeer_has_frames(void *arg)
{
	struct tpeer_want *w = arg;

	return w->p->nframes >= w->n;
}

/* Serve (loop) until (p) has (n) frames or (ms) passed; whether it has. */
static inline bool tpeer_wait_frames(struct evloop *loop, struct tpeer *p, unsigned n, unsigned ms)
{
	struct tpeer_want w = { p, n };

	return trun_until(loop, tpeer_has_frames, &w, ms);
}

/* Open a backend with (o): it fails with (err), printing exactly (msg). */
static inline void tpeer_open_fails(struct net_backend_opts *o, int err, const char *msg)
{
	struct evloop *loop;
	struct tpeer p;
	struct net_backend *be = (void *)1;
	struct unit_capture cap;
	char out[512];

	tpeer_init(&p);
	ck_assert_int_eq(evloop_open(&loop, "test"), 0);
	unit_capture_begin(&cap);
	ck_assert_int_eq(net_backend_open(&be, o, loop, &tpeer_ops, &p), err);
	unit_capture_end(&cap, out, sizeof(out));
	ck_assert_ptr_null(be);
	ck_assert_str_eq(out, msg);
	evloop_destroy(loop);
}

#endif
