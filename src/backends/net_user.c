/* User-mode NAT (mode "user"): libslirp in kvisor's process, no privileges;
 * its sockets and timers are served on the device's event loop
 * (net_user_poll.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <libslirp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "kvisor/evloop.h"
#include "kvisor/log.h"
#include "net_user_priv.h"

/*
 * Guest frames go to slirp_input inside net_backend_send, copied first
 * (slirp parses ARP in place, and the device's iovecs are guest memory the
 * guest may rewrite meanwhile). slirp answers some of them at once (ARP,
 * DHCP, and the ACK of every in-order TCP segment): those reach the device
 * while its transmit pass runs, which it allows (a backend may call it back
 * from inside send), so a guest that waits for ACKs sees them a loop turn
 * sooner. The socket and timer side of slirp (a "cycle") then runs once per
 * loop turn from the kick eventfd, however many frames came in: libslirp
 * wants every poll to follow a fill, and host sockets a new connection
 * opened must be watched. slirp queues what it cannot write, so send never
 * says -EAGAIN.
 */

#define NU_FRAME_PAD 60u /* Ethernet's minimum: slirp's ARP code reads that far */

/* A cycle on the loop, after the frames of this turn. */
static void nu_kick_cb(void *opaque, uint32_t events)
{
	struct net_user *nu = opaque;
	uint64_t v;

	if (read(nu->kickfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_ratelimited(&nu->rl, LOG_WARN, "%s: eventfd: %s", nu->base.name,
				strerror(errno));
	nu->kicked = false;
	net_user_cycle(nu);
}

static void nu_kick(struct net_user *nu)
{
	uint64_t one = 1;

	if (nu->kicked)
		return;
	if (write(nu->kickfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_ratelimited(&nu->rl, LOG_WARN, "%s: eventfd: %s", nu->base.name,
				strerror(errno));
	nu->kicked = true;
}

/* ---- slirp's other callbacks ---- */

static ssize_t nu_send_packet(const void *buf, size_t len, void *opaque)
{
	struct net_user *nu = opaque;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };

	if (len < NET_FRAME_MIN || len > NET_FRAME_MAX) {
		nu->base.stats.rx_dropped++;
		return (ssize_t)len;
	}
	nu->base.peer->receive(nu->base.peer_opaque, &iov, 1, len);
	nu->base.stats.rx_frames++;
	nu->base.stats.rx_bytes += len;
	return (ssize_t)len;
}

static void nu_guest_error(const char *msg, void *opaque)
{
	struct net_user *nu = opaque;

	log_ratelimited(&nu->rl, LOG_WARN, "%s: slirp: %s", nu->base.name, msg);
}

static void nu_notify(void *opaque)
{
	nu_kick(opaque);
}

static void nu_init_completed(Slirp *slirp, void *opaque)
{
}

static void nu_callbacks(SlirpCb *cb)
{
	memset(cb, 0, sizeof(*cb));
	cb->send_packet = nu_send_packet;
	cb->guest_error = nu_guest_error;
	cb->notify = nu_notify;
	cb->init_completed = nu_init_completed;
	net_user_poll_callbacks(cb);
}

/* ---- the backend ops ---- */

static int nu_send(struct net_backend *be, const struct iovec *iov, unsigned iovcnt, size_t len)
{
	struct net_user *nu = (struct net_user *)be;
	size_t got = 0;

	for (unsigned i = 0; i < iovcnt && got < len; i++) {
		size_t n = iov[i].iov_len < len - got ? iov[i].iov_len : len - got;

		memcpy(nu->frame + got, iov[i].iov_base, n);
		got += n;
	}
	if (got < len) { /* the iovec holds less than (len): not a frame */
		be->stats.tx_dropped++;
		return 0;
	}
	/* Pad with zeros as the wire would: slirp reads headers without
	 * checking the length against them. */
	if (len < NU_FRAME_PAD) {
		memset(nu->frame + len, 0, NU_FRAME_PAD - len);
		got = NU_FRAME_PAD;
	}
	be->stats.tx_frames++;
	be->stats.tx_bytes += len;
	net_user_clock(nu);
	slirp_input(nu->slirp, nu->frame, (int)got);
	nu_kick(nu);
	return 0;
}

static void nu_rx_ready(struct net_backend *be)
{
	struct net_user *nu = (struct net_user *)be;

	if (nu->rx_masked)
		nu_kick(nu);
}

static void nu_close(struct net_backend *be)
{
	struct net_user *nu = (struct net_user *)be;

	if (nu->watched) {
		evloop_del(be->loop, nu->epfd);
		evloop_del(be->loop, nu->timerfd);
		evloop_del(be->loop, nu->kickfd);
	}
	if (nu->slirp)
		slirp_cleanup(nu->slirp); /* unregisters and closes its sockets, frees timers */
	net_user_poll_free(nu);
	if (nu->epfd >= 0)
		close(nu->epfd);
	if (nu->timerfd >= 0)
		close(nu->timerfd);
	if (nu->kickfd >= 0)
		close(nu->kickfd);
	free(nu->frame);
	free(nu);
}

static const struct net_backend_ops nu_ops = {
	.send = nu_send,
	.rx_ready = nu_rx_ready,
	.close = nu_close,
};

/* ---- open ---- */

/* The guest network: 10.0.2.0/24, gateway and host 10.0.2.2, DNS 10.0.2.3,
 * DHCP from 10.0.2.15; IPv6 fec0::/64 with fec0::2 and fec0::3 (QEMU's). */
static void nu_config(SlirpConfig *cfg, const struct net_backend_opts *opts)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->version = 4;
	cfg->restricted = opts->restrict_outbound;
	cfg->in_enabled = true;
	cfg->vnetwork.s_addr = htonl(0x0a000200);
	cfg->vnetmask.s_addr = htonl(0xffffff00);
	cfg->vhost.s_addr = htonl(0x0a000202);
	cfg->vdhcp_start.s_addr = htonl(0x0a00020f);
	cfg->vnameserver.s_addr = htonl(0x0a000203);
	cfg->in6_enabled = true;
	inet_pton(AF_INET6, "fec0::", &cfg->vprefix_addr6);
	cfg->vprefix_len = 64;
	inet_pton(AF_INET6, "fec0::2", &cfg->vhost6);
	inet_pton(AF_INET6, "fec0::3", &cfg->vnameserver6);
}

/* Add the hostfwd= rules. 0 or -errno after one line. */
static int nu_hostfwds(struct net_user *nu, const struct net_backend_opts *opts)
{
	for (unsigned i = 0; i < opts->nr_hostfwd; i++) {
		const char *text = opts->hostfwd[i];
		struct net_hostfwd f;
		struct in_addr h, g;
		char err[160], ha[INET_ADDRSTRLEN], ga[INET_ADDRSTRLEN];
		uint32_t gh;

		if (net_hostfwd_parse(text, &f, err, sizeof(err)) < 0) {
			log_err("%s: hostfwd '%s': %s", nu->base.name, text ? text : "", err);
			return -EINVAL;
		}
		h.s_addr = f.host_addr;
		g.s_addr = f.guest_addr;
		inet_ntop(AF_INET, &h, ha, sizeof(ha));
		inet_ntop(AF_INET, &g, ga, sizeof(ga));
		gh = ntohl(f.guest_addr) & 0xff;
		if (f.guest_addr && ((ntohl(f.guest_addr) & 0xffffff00) != 0x0a000200 || gh == 0 ||
				     gh == 2 || gh == 3 || gh == 255)) {
			log_err("%s: hostfwd '%s': guest address %s is not a guest's address in "
				"10.0.2.0/24",
				nu->base.name, text, ga);
			return -EINVAL;
		}
		errno = 0;
		if (slirp_add_hostfwd(nu->slirp, f.udp, h, f.host_port, g, f.guest_port) < 0) {
			int e = errno ? errno : EADDRINUSE;

			log_err("%s: hostfwd '%s': cannot listen on %s %s:%u: %s", nu->base.name,
				text, f.udp ? "udp" : "tcp", ha, f.host_port, strerror(e));
			return -e;
		}
	}
	return 0;
}

static int nu_watch_loop(struct net_user *nu)
{
	struct evloop *loop = nu->base.loop;
	int r;

	r = evloop_add(loop, nu->epfd, EPOLLIN, net_user_epfd_cb, nu);
	if (r < 0)
		return r;
	r = evloop_add(loop, nu->timerfd, EPOLLIN, net_user_timer_cb, nu);
	if (r < 0)
		goto err_epfd;
	r = evloop_add(loop, nu->kickfd, EPOLLIN, nu_kick_cb, nu);
	if (r < 0)
		goto err_timer;
	nu->watched = true;
	return 0;
err_timer:
	evloop_del(loop, nu->timerfd);
err_epfd:
	evloop_del(loop, nu->epfd);
	return r;
}

int net_user_open(struct net_backend **out, const struct net_backend_opts *opts,
		  struct evloop *loop, const struct net_peer_ops *peer, void *peer_opaque)
{
	struct net_user *nu = calloc(1, sizeof(*nu));
	SlirpConfig cfg;
	int r;

	if (!nu)
		return -ENOMEM;
	net_backend_init(&nu->base, &nu_ops, opts, loop, peer, peer_opaque);
	nu->armed_ms = NU_NO_DEADLINE;
	nu->polled_ms = -1;
	nu->timerfd = nu->kickfd = -1;
	nu->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (nu->epfd >= 0)
		nu->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (nu->timerfd >= 0)
		nu->kickfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (nu->kickfd < 0) {
		r = -errno;
		log_err("%s: user: %s", nu->base.name, strerror(-r));
		goto err;
	}
	nu->frame = malloc(NET_FRAME_MAX);
	if (!nu->frame) {
		r = -ENOMEM;
		goto err;
	}
	nu_config(&cfg, opts);
	nu_callbacks(&nu->cb);
	nu->slirp = slirp_new(&cfg, &nu->cb, nu);
	if (!nu->slirp) {
		r = -ENOMEM;
		log_err("%s: user: libslirp refused its configuration", nu->base.name);
		goto err;
	}
	r = nu_hostfwds(nu, opts);
	if (r < 0)
		goto err;
	/* Peer callbacks belong to the loop thread: this first fill reads
	 * nothing, the kick below runs a cycle there that asks the device. */
	net_user_fill(nu, false);
	/* Kicked before the adds: callbacks may run at once on the loop. */
	nu_kick(nu);
	r = nu_watch_loop(nu);
	if (r < 0) {
		log_err("%s: user: cannot watch its fds: %s", nu->base.name, strerror(-r));
		goto err;
	}
	*out = &nu->base;
	return 0;
err:
	nu_close(&nu->base);
	return r;
}
