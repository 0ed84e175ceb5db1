/* Stream-framed network backends (modes "passt" and "stream"): Ethernet
 * frames over a unix stream socket, each after its length in 4 bytes, big
 * endian (QEMU's -netdev stream framing), served on the device's loop. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "kvisor/evloop.h"
#include "kvisor/log.h"
#include "net_passt.h"
#include "net_priv.h"

/*
 * Receive: bytes are read into one buffer that holds at most two largest
 * records, and whole frames go to receive() straight from it; a partial
 * frame waits there for its rest. A length outside NET_FRAME_MIN..MAX is
 * caught from its 4 bytes alone: the connection is closed and the link goes
 * down, so a broken peer costs one line and never more buffer. While the
 * device cannot take frames the socket is not read (not even watched for
 * input); rx_ready resumes, through an eventfd, so that frames already in
 * the buffer are delivered from the loop and never inside rx_ready.
 *
 * Transmit: a frame goes out with one sendmsg (length, then the device's
 * iovec) when nothing is pending; what the socket does not take waits in a
 * bounded buffer, EPOLLOUT is watched, and later frames are appended while
 * they fit. A frame that does not fit is -EAGAIN; tx_ready follows once the
 * buffer has drained.
 *
 * After the link went down, frames to send are dropped (and counted).
 */

#define NS_HDR     4u
#define NS_RX_CAP  (2u * (NS_HDR + NET_FRAME_MAX))
#define NS_TX_CAP  (256u * 1024u) /* >= NS_HDR + NET_FRAME_MAX */
#define NS_BUDGET  256            /* frames per callback, then let other fds run */
#define NS_READS   16             /* reads per callback */
#define NS_IOV_MAX 64

struct net_stream {
	struct net_backend base;
	const char *what; /* "passt" or "stream", for messages */
	int fd;           /* the connection; -1 once down */
	int kickfd;
	uint32_t watching; /* events (fd) is on the loop with; 0: not on it */
	bool rx_paused;    /* the device could not take a frame: until rx_ready */
	bool tx_blocked;   /* send returned -EAGAIN: tx_ready owed */
	bool kicked;
	int fail_err;        /* a failure found inside send or rx_ready, for the kick ... */
	const char *fail_op; /* ... to take the link down from the loop */
	uint8_t *rx;
	size_t rx_start, rx_end;
	uint8_t *tx;
	size_t tx_start, tx_end;
	struct net_passt passt; /* pid 0: no passt (mode stream) */
};

static void ns_io_cb(void *opaque, uint32_t events);

/* The link goes down: one line (after "<name>: "), the connection
 * closed, the device told; frames owed a tx_ready get it (and are dropped). */
static void __attribute__((format(printf, 2, 3)))
ns_down(struct net_stream *ns, const char *fmt, ...)
{
	char msg[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_err("%s: %s: link down", ns->base.name, msg);
	if (ns->watching)
		evloop_del(ns->base.loop, ns->fd);
	ns->watching = 0;
	close(ns->fd);
	ns->fd = -1;
	ns->rx_start = ns->rx_end = 0;
	ns->tx_start = ns->tx_end = 0;
	if (ns->base.peer->link_changed)
		ns->base.peer->link_changed(ns->base.peer_opaque, false);
	if (ns->tx_blocked) {
		ns->tx_blocked = false;
		ns->base.peer->tx_ready(ns->base.peer_opaque);
	}
}

/* The peer closed: for passt, say how passt ended if it did. */
static void ns_eof(struct net_stream *ns)
{
	char how[64];

	/* passt's socket closes as it exits, a moment before it can be reaped. */
	if (ns->passt.pid > 0 && net_passt_exited(&ns->passt, 200, how, sizeof(how)))
		ns_down(ns, "passt %s", how);
	else
		ns_down(ns, "%s: the peer closed the connection", ns->what);
}

static void ns_kick(struct net_stream *ns)
{
	uint64_t one = 1;

	if (!ns->kicked && write(ns->kickfd, &one, sizeof(one)) == sizeof(one))
		ns->kicked = true;
}

/* A failure where the device may not be called back (inside send or
 * rx_ready): the kick takes the link down from the loop. Frames to send
 * are dropped meanwhile. */
static void ns_fail(struct net_stream *ns, const char *op, int err)
{
	if (!ns->fail_err) {
		ns->fail_op = op;
		ns->fail_err = err;
	}
	ns_kick(ns);
}

/* Watch (fd) for what is wanted now: input unless paused, output while
 * bytes wait. evloop has no modify, so a change is a del and an add. */
static void ns_rewatch(struct net_stream *ns)
{
	uint32_t ev = 0;
	int r;

	if (ns->fd < 0)
		return;
	if (!ns->rx_paused)
		ev |= EPOLLIN;
	if (ns->tx_end > ns->tx_start)
		ev |= EPOLLOUT;
	if (ev == ns->watching)
		return;
	if (ns->watching)
		evloop_del(ns->base.loop, ns->fd);
	ns->watching = 0;
	if (!ev)
		return;
	r = evloop_add(ns->base.loop, ns->fd, ev, ns_io_cb, ns);
	if (r < 0)
		ns_fail(ns, "cannot watch the socket", -r);
	else
		ns->watching = ev;
}

/* Deliver the whole frames in the buffer. 0: none left whole; 1: stopped
 * (paused, out of budget, or the link went down). */
static int ns_deliver(struct net_stream *ns, unsigned *budget)
{
	while (ns->rx_end - ns->rx_start >= NS_HDR) {
		const uint8_t *p = ns->rx + ns->rx_start;
		uint32_t len = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
			       p[3];
		struct iovec iov = { .iov_base = (void *)(p + NS_HDR), .iov_len = len };

		if (len < NET_FRAME_MIN || len > NET_FRAME_MAX) {
			ns_down(ns, "%s: frame length %u out of range (%u-%u)", ns->what, len,
				NET_FRAME_MIN, NET_FRAME_MAX);
			return 1;
		}
		if (ns->rx_end - ns->rx_start < NS_HDR + len)
			break;
		if (!ns->base.peer->can_receive(ns->base.peer_opaque)) {
			ns->rx_paused = true;
			return 1;
		}
		if (*budget == 0) {
			ns_kick(ns); /* come back after the other fds */
			return 1;
		}
		ns->base.peer->receive(ns->base.peer_opaque, &iov, 1, len);
		ns->base.stats.rx_frames++;
		ns->base.stats.rx_bytes += len;
		ns->rx_start += NS_HDR + len;
		(*budget)--;
	}
	/* Keep the partial frame at the front: the whole of it then fits. */
	if (ns->rx_start) {
		memmove(ns->rx, ns->rx + ns->rx_start, ns->rx_end - ns->rx_start);
		ns->rx_end -= ns->rx_start;
		ns->rx_start = 0;
	}
	return 0;
}

/* Deliver what is buffered, read more while the device takes frames. */
static void ns_rx(struct net_stream *ns)
{
	unsigned budget = NS_BUDGET;

	for (int reads = 0; ns->fd >= 0; reads++) {
		ssize_t n;

		if (ns_deliver(ns, &budget) || reads == NS_READS)
			return;
		if (!ns->base.peer->can_receive(ns->base.peer_opaque)) {
			ns->rx_paused = true;
			return;
		}
		n = read(ns->fd, ns->rx + ns->rx_end, NS_RX_CAP - ns->rx_end);
		if (n > 0) {
			ns->rx_end += (size_t)n;
		} else if (n == 0) {
			ns_eof(ns);
		} else if (errno != EINTR) {
			if (errno != EAGAIN)
				ns_down(ns, "%s: read: %s", ns->what, strerror(errno));
			return;
		}
	}
}

/* Write out pending bytes; tx_ready once they are all gone. */
static void ns_flush(struct net_stream *ns)
{
	while (ns->tx_end > ns->tx_start) {
		ssize_t n = send(ns->fd, ns->tx + ns->tx_start, ns->tx_end - ns->tx_start,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				ns_down(ns, "%s: write: %s", ns->what, strerror(errno));
			return;
		}
		ns->tx_start += (size_t)n;
	}
	ns->tx_start = ns->tx_end = 0;
	if (ns->tx_blocked) {
		ns->tx_blocked = false;
		ns->base.peer->tx_ready(ns->base.peer_opaque);
	}
}

static void ns_io_cb(void *opaque, uint32_t events)
{
	struct net_stream *ns = opaque;

	/* Errors and hangups show up as a failing write or read. */
	if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP) && ns->tx_end > ns->tx_start)
		ns_flush(ns);
	if (ns->fd >= 0 && !ns->rx_paused && events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		ns_rx(ns);
	ns_rewatch(ns);
}

static void ns_kick_cb(void *opaque, uint32_t events)
{
	struct net_stream *ns = opaque;
	uint64_t v;

	if (read(ns->kickfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn("%s: %s: eventfd: %s", ns->base.name, ns->what, strerror(errno));
	ns->kicked = false;
	if (ns->fd >= 0 && ns->fail_err) {
		ns_down(ns, "%s: %s: %s", ns->what, ns->fail_op, strerror(ns->fail_err));
		return;
	}
	if (ns->fd >= 0 && !ns->rx_paused)
		ns_rx(ns);
	ns_rewatch(ns);
}

/* Copy bytes [skip, skip + n) of the record (hdr, iov) to (dst). */
static void ns_copy(uint8_t *dst, const uint8_t *hdr, const struct iovec *iov, unsigned iovcnt,
		    size_t skip, size_t n)
{
	for (unsigned i = 0; n && i <= iovcnt; i++) {
		const uint8_t *src = i == 0 ? hdr : iov[i - 1].iov_base;
		size_t len = i == 0 ? NS_HDR : iov[i - 1].iov_len, c;

		if (skip >= len) {
			skip -= len;
			continue;
		}
		c = len - skip < n ? len - skip : n;
		memcpy(dst, src + skip, c);
		dst += c;
		n -= c;
		skip = 0;
	}
}

static int ns_send(struct net_backend *be, const struct iovec *iov, unsigned iovcnt, size_t len)
{
	struct net_stream *ns = (struct net_stream *)be;
	uint8_t hdr[NS_HDR] = { len >> 24, len >> 16, len >> 8, len };
	size_t rec = NS_HDR + len, sent = 0, have = 0;

	for (unsigned i = 0; i < iovcnt; i++)
		have += iov[i].iov_len;
	if (ns->fd < 0 || ns->fail_err || have < len) { /* down, failed, not (len) bytes */
		be->stats.tx_dropped++;
		return 0;
	}
	if (ns->tx_end == ns->tx_start && iovcnt < NS_IOV_MAX) {
		struct iovec v[NS_IOV_MAX + 1] = { { .iov_base = hdr, .iov_len = NS_HDR } };
		struct msghdr msg = { .msg_iov = v, .msg_iovlen = 1 };
		ssize_t n;

		/* The iovec may hold more than the frame: exactly (len) bytes. */
		for (size_t left = len; left; msg.msg_iovlen++) {
			v[msg.msg_iovlen] = iov[msg.msg_iovlen - 1];
			if (v[msg.msg_iovlen].iov_len > left)
				v[msg.msg_iovlen].iov_len = left;
			left -= v[msg.msg_iovlen].iov_len;
		}
		do
			n = sendmsg(ns->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		while (n < 0 && errno == EINTR);
		if (n < 0 && errno != EAGAIN) {
			ns_fail(ns, "write", errno);
			be->stats.tx_dropped++;
			return 0;
		}
		sent = n < 0 ? 0 : (size_t)n > rec ? rec : (size_t)n;
		ns->tx_start = ns->tx_end = 0;
	} else if (NS_TX_CAP - (ns->tx_end - ns->tx_start) < rec) {
		ns->tx_blocked = true;
		return -EAGAIN;
	} else if (NS_TX_CAP - ns->tx_end < rec) {
		memmove(ns->tx, ns->tx + ns->tx_start, ns->tx_end - ns->tx_start);
		ns->tx_end -= ns->tx_start;
		ns->tx_start = 0;
	}
	ns_copy(ns->tx + ns->tx_end, hdr, iov, iovcnt, sent, rec - sent);
	ns->tx_end += rec - sent;
	be->stats.tx_frames++;
	be->stats.tx_bytes += len;
	ns_rewatch(ns);
	return 0;
}

static void ns_rx_ready(struct net_backend *be)
{
	struct net_stream *ns = (struct net_stream *)be;

	if (!ns->rx_paused || ns->fd < 0)
		return;
	ns->rx_paused = false;
	ns_rewatch(ns);
	ns_kick(ns); /* frames already buffered */
}

static void ns_close(struct net_backend *be)
{
	struct net_stream *ns = (struct net_stream *)be;

	if (ns->kickfd >= 0) {
		evloop_del(be->loop, ns->kickfd); /* -ENOENT if open failed first */
		close(ns->kickfd);
	}
	if (ns->fd >= 0) {
		if (ns->watching)
			evloop_del(be->loop, ns->fd);
		close(ns->fd);
	}
	net_passt_stop(&ns->passt);
	free(ns->rx);
	free(ns->tx);
	free(ns);
}

static const struct net_backend_ops ns_ops = {
	.send = ns_send,
	.rx_ready = ns_rx_ready,
	.close = ns_close,
};

/* Mode stream: connect to the unix socket at opts->path. 0 or -errno after
 * one line. */
static int ns_connect(struct net_stream *ns, const struct net_backend_opts *opts)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *path = opts->path;
	int r;

	if (opts->nr_hostfwd || opts->restrict_outbound) {
		log_err("%s: stream: hostfwd= and restrict= belong to the peer (modes user and "
			"passt)",
			ns->base.name);
		return -EINVAL;
	}
	if (!path || !*path) {
		log_err("%s: stream: path= is required (the peer's unix socket)", ns->base.name);
		return -EINVAL;
	}
	if (strlen(path) >= sizeof(sa.sun_path)) {
		log_err("%s: stream: socket path '%s' too long (at most %zu bytes)", ns->base.name,
			path, sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	ns->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ns->fd < 0 || connect(ns->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    fcntl(ns->fd, F_SETFL, O_NONBLOCK) < 0) {
		r = -errno;
		log_err("%s: stream: cannot connect to %s: %s", ns->base.name, path, strerror(-r));
		return r;
	}
	return 0;
}

int net_stream_open(struct net_backend **out, const struct net_backend_opts *opts,
		    struct evloop *loop, const struct net_peer_ops *peer, void *peer_opaque)
{
	struct net_stream *ns = calloc(1, sizeof(*ns));
	int r;

	if (!ns)
		return -ENOMEM;
	net_backend_init(&ns->base, &ns_ops, opts, loop, peer, peer_opaque);
	ns->what = opts->mode == NET_MODE_PASST ? "passt" : "stream";
	ns->fd = ns->kickfd = ns->passt.pidfd = -1;
	if (opts->mode == NET_MODE_PASST)
		r = net_passt_start(opts, ns->base.name, &ns->passt, &ns->fd);
	else
		r = ns_connect(ns, opts);
	if (r < 0)
		goto err;
	ns->rx = malloc(NS_RX_CAP);
	ns->tx = malloc(NS_TX_CAP);
	ns->kickfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (!ns->rx || !ns->tx || ns->kickfd < 0) {
		r = ns->kickfd < 0 ? -errno : -ENOMEM;
		log_err("%s: %s: %s", ns->base.name, ns->what, strerror(-r));
		goto err;
	}
	/* Set before the adds: the loop may run our callbacks at once. */
	ns->watching = EPOLLIN;
	r = evloop_add(loop, ns->fd, EPOLLIN, ns_io_cb, ns);
	if (r < 0)
		ns->watching = 0;
	else
		r = evloop_add(loop, ns->kickfd, EPOLLIN, ns_kick_cb, ns);
	if (r < 0) {
		log_err("%s: %s: cannot watch its fds: %s", ns->base.name, ns->what, strerror(-r));
		goto err;
	}
	*out = &ns->base;
	return 0;
err:
	ns_close(&ns->base);
	return r;
}
