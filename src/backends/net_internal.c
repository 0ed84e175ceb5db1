/* The internal network mode: a named L2 segment of one host user's VMs, one
 * unix datagram socket per endpoint in a per-user directory, each endpoint
 * its own learning switch; no daemon, no host access. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "kvisor/evloop.h"
#include "kvisor/log.h"
#include "net_internal.h"
#include "net_priv.h"

/*
 * Trust model. A segment is the directory DIR/SEG (net_internal_dir_open)
 * and its endpoints are the sockets in it, named by 16 random hex digits.
 * Every directory on the way is 0700 and owned by the user, so only that
 * user's processes (and root) can reach an endpoint: the VMs of one user
 * trust each other, as they could ptrace each other anyway. Frames from
 * another segment cannot arrive (an endpoint only sends to names in its own
 * directory), nor do an endpoint's own frames come back (it skips itself).
 * The guest is not trusted: its frames are only forwarded, their source
 * MACs only learned, never believed beyond "reply that way".
 *
 * Addresses are /proc/self/fd/DIRFD/NAME: a segment's directory path can be
 * longer than sun_path; a receiver learns only the name (the last part).
 */

#define NET_INTERNAL_EP_LEN 16  /* hex digits of an endpoint's name */
#define NET_INTERNAL_MACS   64  /* learned MACs per endpoint */
#define NET_INTERNAL_AGE    300 /* seconds a learned MAC stays valid, as a Linux bridge */
#define NET_INTERNAL_BATCH  64  /* frames read per callback */
/* A sender's buffer holds what it sent until receivers read it: room for
 * many full-size frames, so one slow receiver does not stop the others. */
#define NET_INTERNAL_SNDBUF (16u * NET_FRAME_MAX)

struct net_internal_mac {
	uint8_t mac[6];
	char ep[NET_INTERNAL_EP_LEN + 1]; /* "" : free */
	time_t seen;
};

struct net_internal {
	struct net_backend base; /* first: the ops cast back */
	int dirfd;               /* the segment's directory */
	DIR *dir;                /* the same directory, read to flood */
	int sock;
	char self[NET_INTERNAL_EP_LEN + 1];
	bool watched;
	struct net_internal_mac macs[NET_INTERNAL_MACS];
	struct log_ratelimit rl;
	uint8_t buf[NET_FRAME_MAX + 1]; /* one more: a longer datagram is truncated */
};

static bool net_internal_ep_ok(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (i >= NET_INTERNAL_EP_LEN || !strchr("0123456789abcdef", s[i]))
			return false;
	return i == NET_INTERNAL_EP_LEN;
}

static time_t net_internal_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* The socket address of endpoint (ep) in (n)'s segment. */
static socklen_t net_internal_addr(const struct net_internal *n, const char *ep,
				   struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	snprintf(sa->sun_path, sizeof(sa->sun_path), "/proc/self/fd/%d/%s", n->dirfd, ep);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(sa->sun_path) + 1);
}

static struct net_internal_mac *net_internal_lookup(struct net_internal *n, const uint8_t *mac)
{
	time_t now = net_internal_now();

	for (unsigned i = 0; i < NET_INTERNAL_MACS; i++) {
		struct net_internal_mac *m = &n->macs[i];

		if (m->ep[0] && memcmp(m->mac, mac, 6) == 0)
			return now - m->seen <= NET_INTERNAL_AGE ? m : NULL;
	}
	return NULL;
}

/* (mac) was seen coming from endpoint (ep): replies go there. A full table
 * replaces the entry seen longest ago. */
static void net_internal_learn(struct net_internal *n, const uint8_t *mac, const char *ep)
{
	struct net_internal_mac *slot = NULL;
	time_t now = net_internal_now();

	if (mac[0] & 1) /* a group address is no source */
		return;
	for (unsigned i = 0; i < NET_INTERNAL_MACS; i++) {
		struct net_internal_mac *m = &n->macs[i];

		if (m->ep[0] && memcmp(m->mac, mac, 6) == 0) {
			slot = m;
			break;
		}
		if (!slot || (slot->ep[0] && (!m->ep[0] || m->seen < slot->seen)))
			slot = m;
	}
	memcpy(slot->mac, mac, 6);
	memcpy(slot->ep, ep, sizeof(slot->ep));
	slot->seen = now;
}

/* Endpoint (ep) is gone: forget every MAC behind it; remove its socket
 * file when it was left behind (ECONNREFUSED: nobody is bound to it). */
static void net_internal_forget(struct net_internal *n, const char *ep, bool stale)
{
	for (unsigned i = 0; i < NET_INTERNAL_MACS; i++)
		if (strcmp(n->macs[i].ep, ep) == 0)
			n->macs[i].ep[0] = '\0';
	if (stale && unlinkat(n->dirfd, ep, 0) == 0)
		log_debug("%s: internal: removed stale endpoint %s", n->base.name, ep);
}

/* Send (msg) to endpoint (ep). 0: sent; -EAGAIN: its queue (or ours) is
 * full, dropped; -ENOENT: the endpoint is gone (forgotten); other -errno. */
static int net_internal_send_to(struct net_internal *n, const char *ep, struct msghdr *msg)
{
	struct sockaddr_un sa;

	msg->msg_name = &sa;
	msg->msg_namelen = net_internal_addr(n, ep, &sa);
	if (sendmsg(n->sock, msg, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
		return 0;
	switch (errno) {
	case EAGAIN:
	case ENOBUFS:
		return -EAGAIN;
	case ECONNREFUSED:
	case ENOENT:
		net_internal_forget(n, ep, errno == ECONNREFUSED);
		return -ENOENT;
	default:
		log_ratelimited(&n->rl, LOG_WARN, "%s: internal: send to %s: %s", n->base.name, ep,
				strerror(errno));
		return -errno;
	}
}

/* Send (msg) to every other endpoint of the segment. True if all that
 * exist took it. */
static bool net_internal_flood(struct net_internal *n, struct msghdr *msg)
{
	struct dirent *de;
	bool all = true;

	/* The directory is read again for every flood: endpoints come and go
	 * without telling anyone. Floods are broadcasts and unknown unicast. */
	rewinddir(n->dir);
	while ((de = readdir(n->dir)))
		if (net_internal_ep_ok(de->d_name) && strcmp(de->d_name, n->self) != 0) {
			int ret = net_internal_send_to(n, de->d_name, msg);

			if (ret && ret != -ENOENT)
				all = false;
		}
	return all;
}

static int net_internal_send(struct net_backend *be, const struct iovec *iov, unsigned iovcnt,
			     size_t len)
{
	struct net_internal *n = (struct net_internal *)be;
	struct msghdr msg = { .msg_iov = (struct iovec *)iov, .msg_iovlen = iovcnt };
	struct net_internal_mac *m = NULL;
	uint8_t dst[6];
	bool ok = false;
	int ret;

	/* The destination MAC may straddle iovecs: gather its 6 bytes. */
	for (size_t got = 0, i = 0; got < sizeof(dst) && i < iovcnt; i++) {
		size_t take = iov[i].iov_len < sizeof(dst) - got ? iov[i].iov_len :
								   sizeof(dst) - got;

		memcpy(dst + got, iov[i].iov_base, take);
		got += take;
	}
	if (!(dst[0] & 1))
		m = net_internal_lookup(n, dst);
	if (m) {
		char ep[sizeof(m->ep)];

		memcpy(ep, m->ep, sizeof(ep)); /* send_to may forget (m) */
		ret = net_internal_send_to(n, ep, &msg);
		ok = ret == 0;
		if (ret == -ENOENT) /* moved or gone: ask everyone, as a switch does */
			ok = net_internal_flood(n, &msg);
	} else {
		ok = net_internal_flood(n, &msg);
	}
	be->stats.tx_frames++;
	be->stats.tx_bytes += len;
	if (!ok)
		be->stats.tx_dropped++;
	return 0;
}

static void net_internal_event(void *opaque, uint32_t events);

static int net_internal_watch(struct net_internal *n, bool on)
{
	int ret;

	if (on == n->watched)
		return 0;
	if (!on) {
		evloop_del(n->base.loop, n->sock);
		n->watched = false;
		return 0;
	}
	ret = evloop_add(n->base.loop, n->sock, EPOLLIN, net_internal_event, n);
	if (ret)
		log_ratelimited(&n->rl, LOG_ERR, "%s: internal: evloop_add: %s", n->base.name,
				strerror(-ret));
	n->watched = ret == 0;
	return ret;
}

/* One datagram from the segment: check, learn its source, hand it on. */
static void net_internal_rx_one(struct net_internal *n, const struct sockaddr_un *from,
				socklen_t fromlen, size_t len, int flags)
{
	struct iovec iov = { .iov_base = n->buf, .iov_len = len };
	const char *ep;

	if (fromlen <= offsetof(struct sockaddr_un, sun_path) || (flags & MSG_TRUNC) ||
	    len < NET_FRAME_MIN || len > NET_FRAME_MAX) {
		n->base.stats.rx_dropped++;
		return;
	}
	ep = strrchr(from->sun_path, '/');
	ep = ep ? ep + 1 : from->sun_path;
	if (!net_internal_ep_ok(ep) || strcmp(ep, n->self) == 0) {
		n->base.stats.rx_dropped++;
		return;
	}
	net_internal_learn(n, n->buf + 6, ep);
	n->base.peer->receive(n->base.peer_opaque, &iov, 1, len);
	n->base.stats.rx_frames++;
	n->base.stats.rx_bytes += len;
}

static void net_internal_event(void *opaque, uint32_t events)
{
	struct net_internal *n = opaque;

	for (unsigned i = 0; i < NET_INTERNAL_BATCH; i++) {
		struct sockaddr_un from;
		struct iovec iov = { .iov_base = n->buf, .iov_len = sizeof(n->buf) };
		struct msghdr msg = { .msg_name = &from,
				      .msg_namelen = sizeof(from) - 1,
				      .msg_iov = &iov,
				      .msg_iovlen = 1 };
		ssize_t len;

		/* Backpressure: leave frames queued (senders drop when it is full). */
		if (!n->base.peer->can_receive(n->base.peer_opaque)) {
			net_internal_watch(n, false);
			return;
		}
		memset(&from, 0, sizeof(from)); /* sun_path NUL-terminated whatever comes */
		len = recvmsg(n->sock, &msg, MSG_DONTWAIT);
		if (len < 0) {
			if (errno != EAGAIN && errno != EINTR)
				log_ratelimited(&n->rl, LOG_WARN, "%s: internal: recvmsg: %s",
						n->base.name, strerror(errno));
			return;
		}
		net_internal_rx_one(n, &from, msg.msg_namelen, (size_t)len, msg.msg_flags);
	}
}

static void net_internal_rx_ready(struct net_backend *be)
{
	net_internal_watch((struct net_internal *)be, true);
}

/* Free (n): its socket and socket file, its directory handles, itself. */
static void net_internal_release(struct net_internal *n)
{
	if (n->sock >= 0)
		close(n->sock);
	if (n->self[0])
		unlinkat(n->dirfd, n->self, 0);
	if (n->dir)
		closedir(n->dir);
	if (n->dirfd >= 0)
		close(n->dirfd);
	free(n);
}

static int net_internal_unwatch_cb(void *arg)
{
	return net_internal_watch(arg, false);
}

static void net_internal_close(struct net_backend *be)
{
	struct net_internal *n = (struct net_internal *)be;

	/* On the loop's thread when one serves it, so that no rx_ready or
	 * callback runs concurrently; else nothing runs callbacks anyway. */
	if (evloop_call(be->loop, net_internal_unwatch_cb, n) == -ESHUTDOWN)
		net_internal_unwatch_cb(n);
	net_internal_release(n);
}

static const struct net_backend_ops net_internal_ops = {
	.send = net_internal_send,
	.rx_ready = net_internal_rx_ready,
	.close = net_internal_close,
};

/* Create (n)'s socket, buffers sized for full frames, bound to a new
 * random name in the segment. */
static int net_internal_bind(struct net_internal *n)
{
	int sndbuf = (int)NET_INTERNAL_SNDBUF, got = 0;
	socklen_t gotlen = sizeof(got);
	struct sockaddr_un sa;
	int err = EADDRINUSE;

	n->sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (n->sock < 0) {
		err = errno;
		log_err("%s: internal: socket: %s", n->base.name, strerror(err));
		return -err;
	}
	/* Capped by net.core.wmem_max; a datagram needs more than its size. */
	setsockopt(n->sock, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	setsockopt(n->sock, SOL_SOCKET, SO_RCVBUF, &sndbuf, sizeof(sndbuf));
	if (getsockopt(n->sock, SOL_SOCKET, SO_SNDBUF, &got, &gotlen) < 0 ||
	    got < (int)(2 * NET_FRAME_MAX)) {
		log_err("%s: internal: socket send buffer %d bytes, too small for %u-byte frames "
			"(raise net.core.wmem_max)",
			n->base.name, got, NET_FRAME_MAX);
		return -ENOBUFS;
	}
	/* Random names never repeat, so a stale file unlinked by one endpoint
	 * is never a new endpoint's socket of the same name. */
	for (int tries = 0; tries < 4 && err == EADDRINUSE; tries++) {
		unsigned long long r;

		if (getrandom(&r, sizeof(r), 0) != sizeof(r)) {
			err = errno;
			break;
		}
		snprintf(n->self, sizeof(n->self), "%016llx", r);
		err = bind(n->sock, (struct sockaddr *)&sa, net_internal_addr(n, n->self, &sa)) <
				      0 ?
			      errno :
			      0;
	}
	if (err) {
		log_err("%s: internal: bind: %s", n->base.name, strerror(err));
		n->self[0] = '\0'; /* not ours to unlink */
		return -err;
	}
	return 0;
}

int net_internal_open(struct net_backend **out, const struct net_backend_opts *opts,
		      struct evloop *loop, const struct net_peer_ops *peer, void *peer_opaque)
{
	const char *name = opts->name ? opts->name : "net";
	struct net_internal *n;
	int ret, fd;

	ret = net_internal_seg_check(name, opts->segment);
	if (ret)
		return ret;
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	net_backend_init(&n->base, &net_internal_ops, opts, loop, peer, peer_opaque);
	n->sock = -1;
	n->dirfd = -1;
	ret = net_internal_dir_open(name, opts->segment, &n->dirfd);
	if (ret)
		goto err;
	fd = dup(n->dirfd);
	n->dir = fd >= 0 ? fdopendir(fd) : NULL;
	if (!n->dir) {
		ret = -errno;
		log_err("%s: internal: opendir: %s", name, strerror(errno));
		if (fd >= 0)
			close(fd);
		goto err;
	}
	ret = net_internal_bind(n);
	if (ret)
		goto err;
	ret = net_internal_watch(n, true);
	if (ret)
		goto err;
	*out = &n->base;
	return 0;

err:
	net_internal_release(n);
	return ret;
}
