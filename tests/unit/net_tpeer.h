/* A fake virtio-net device for network backend tests: it records the
 * frames a backend hands it, can refuse them (backpressure), counts
 * tx_ready calls, and serves the backends' loop on the test's thread until
 * enough frames arrived or time ran out. Include once per test file. */
#ifndef KVISOR_NET_TPEER_H
#define KVISOR_NET_TPEER_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "kvisor/evloop.h"
#include "kvisor/net.h"

#define TPEER_KEEP 8 /* frames kept per peer, the latest ones */

struct tpeer {
	bool refuse;            /* can_receive answers false */
	unsigned asked;         /* can_receive calls */
	unsigned frames;        /* frames received */
	unsigned tx_ready;      /* tx_ready calls */
	int link;               /* last link_changed: -1 none, 0 down, 1 up */
	size_t len[TPEER_KEEP]; /* frame (frames - 1) % TPEER_KEEP ... */
	uint8_t buf[TPEER_KEEP][2048];
};

static struct evloop *tpeer_loop; /* evloop_open'ed by the test */
static unsigned tpeer_total;      /* frames received by all peers */
static unsigned tpeer_stop_at;    /* evloop_stop when tpeer_total reaches it (0: never) */

static inline bool tpeer_can_receive(void *opaque)
{
	struct tpeer *p = opaque;

	p->asked++;
	return !p->refuse;
}

static inline void tpeer_receive(void *opaque, const struct iovec *iov, unsigned iovcnt, size_t len)
{
	struct tpeer *p = opaque;
	unsigned slot = p->frames % TPEER_KEEP;
	size_t off = 0;

	for (unsigned i = 0; i < iovcnt && off < sizeof(p->buf[slot]); i++) {
		size_t n = iov[i].iov_len;

		if (n > sizeof(p->buf[slot]) - off)
			n = sizeof(p->buf[slot]) - off;
		memcpy(p->buf[slot] + off, iov[i].iov_base, n);
		off += n;
	}
	p->len[slot] = len;
	p->frames++;
	if (tpeer_stop_at && ++tpeer_total >= tpeer_stop_at)
		evloop_stop(tpeer_loop);
}

static inline void tpeer_tx_ready(void *opaque)
{
	((struct tpeer *)opaque)->tx_ready++;
}

static inline void tpeer_link_changed(void *opaque, bool up)
{
	((struct tpeer *)opaque)->link = up;
}

static const struct net_peer_ops tpeer_ops = {
	.can_receive = tpeer_can_receive,
	.receive = tpeer_receive,
	.tx_ready = tpeer_tx_ready,
	.link_changed = tpeer_link_changed,
};

/* The (i)th frame (p) received, counting from 0; it must still be kept. */
static inline const uint8_t *tpeer_frame(const struct tpeer *p, unsigned i, size_t *len)
{
	ck_assert_uint_lt(i, p->frames);
	ck_assert_uint_lt(p->frames - i, TPEER_KEEP + 1);
	*len = p->len[i % TPEER_KEEP];
	return p->buf[i % TPEER_KEEP];
}

static inline void tpeer_timeout(void *opaque, uint32_t events)
{
	evloop_stop(tpeer_loop);
}

/* Serve tpeer_loop until (frames) more frames arrived at all peers (0:
 * just serve) or (ms) milliseconds passed. */
static inline void tpeer_pump(unsigned frames, unsigned ms)
{
	struct itimerspec its = { .it_value = { .tv_sec = ms / 1000,
						.tv_nsec = (long)(ms % 1000) * 1000000L } };
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);

	ck_assert_int_ge(tfd, 0);
	ck_assert_int_eq(timerfd_settime(tfd, 0, &its, NULL), 0);
	ck_assert_int_eq(evloop_add(tpeer_loop, tfd, EPOLLIN, tpeer_timeout, NULL), 0);
	tpeer_total = 0;
	tpeer_stop_at = frames;
	ck_assert_int_eq(evloop_run(tpeer_loop), 0);
	tpeer_stop_at = 0;
	evloop_del(tpeer_loop, tfd);
	close(tfd);
}

#endif
