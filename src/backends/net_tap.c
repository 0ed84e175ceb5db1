/* The tap network mode: frames to and from a Linux tap device with a vnet
 * header (offloads through TUNSETOFFLOAD), an existing device by name or one
 * kvisor creates and that disappears when it closes. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "kvisor/evloop.h"
#include "kvisor/log.h"
#include "net_priv.h"

#define NET_TAP_DEV   "/dev/net/tun"
#define NET_TAP_NEW   "kvtap%d" /* the kernel picks the number */
#define NET_TAP_BATCH 64        /* frames read per callback before others get a turn */

struct net_tap {
	struct net_backend base; /* first: the ops cast back */
	int fd;
	char ifname[IFNAMSIZ];
	bool created;     /* kvisor made it: it goes away with the fd */
	uint32_t watched; /* the epoll events the loop watches now (0: none) */
	bool rx_stopped;  /* can_receive was false: not read until rx_ready */
	bool tx_blocked;  /* a write got EAGAIN: tx_ready once writable */
	bool gone;        /* the device was deleted under us */
	struct log_ratelimit rl;
	/* One frame as the tap hands it: the vnet header, then the frame. */
	uint8_t buf[NET_VNET_HDR_LEN + NET_FRAME_MAX];
};

/* NET_OFFLOAD_* and the TUN_F_* flags of TUNSETOFFLOAD they stand for. */
static const struct {
	unsigned net, tun;
} net_tap_offload_map[] = {
	{ NET_OFFLOAD_CSUM, TUN_F_CSUM }, { NET_OFFLOAD_TSO4, TUN_F_TSO4 },
	{ NET_OFFLOAD_TSO6, TUN_F_TSO6 }, { NET_OFFLOAD_ECN, TUN_F_TSO_ECN },
	{ NET_OFFLOAD_UFO, TUN_F_UFO },
};

static void net_tap_event(void *opaque, uint32_t events);

/* Make the loop watch what the state asks for: EPOLLIN unless the device
 * applies backpressure, EPOLLOUT while a write waits. epoll has no modify
 * in evloop, so a change is a delete and an add (only on transitions).
 * 0 or -errno from evloop_add (logged). */
static int net_tap_watch(struct net_tap *t)
{
	uint32_t want = 0;
	int ret;

	if (!t->gone) {
		want |= t->rx_stopped ? 0 : EPOLLIN;
		want |= t->tx_blocked ? EPOLLOUT : 0;
	}
	if (want == t->watched)
		return 0;
	if (t->watched)
		evloop_del(t->base.loop, t->fd);
	t->watched = 0;
	if (!want)
		return 0;
	ret = evloop_add(t->base.loop, t->fd, want, net_tap_event, t);
	if (ret)
		log_ratelimited(&t->rl, LOG_ERR, "%s: tap: %s: evloop_add: %s", t->base.name,
				t->ifname, strerror(-ret));
	else
		t->watched = want;
	return ret;
}

/* The device was deleted (`ip link del`): the fd only reports errors from
 * now on. Stop watching it and tell the device the link is down. */
static void net_tap_gone(struct net_tap *t)
{
	if (t->gone)
		return;
	log_warn("%s: tap: %s was deleted; frames to and from it are dropped", t->base.name,
		 t->ifname);
	t->gone = true;
	net_tap_watch(t);
	if (t->base.peer->link_changed)
		t->base.peer->link_changed(t->base.peer_opaque, false);
}

/* Read frames while the device can take them, one frame per read(). */
static void net_tap_rx(struct net_tap *t)
{
	const struct net_peer_ops *peer = t->base.peer;
	struct iovec iov = { .iov_base = t->buf };

	for (unsigned i = 0; i < NET_TAP_BATCH; i++) {
		ssize_t n;

		if (!peer->can_receive(t->base.peer_opaque)) {
			t->rx_stopped = true;
			net_tap_watch(t);
			return;
		}
		n = read(t->fd, t->buf, sizeof(t->buf));
		if (n < 0) {
			if (errno == EBADFD)
				net_tap_gone(t);
			else if (errno != EAGAIN && errno != EINTR)
				log_ratelimited(&t->rl, LOG_WARN, "%s: tap: %s: read: %s",
						t->base.name, t->ifname, strerror(errno));
			return;
		}
		if ((size_t)n < NET_VNET_HDR_LEN + NET_FRAME_MIN) {
			t->base.stats.rx_dropped++;
			continue;
		}
		/* The tap writes the 10-byte virtio_net_hdr and skips num_buffers
		 * (the device's to fill): clear what the last frame left there. */
		t->buf[10] = t->buf[11] = 0;
		iov.iov_len = (size_t)n;
		peer->receive(t->base.peer_opaque, &iov, 1, (size_t)n);
		t->base.stats.rx_frames++;
		t->base.stats.rx_bytes += (size_t)n - NET_VNET_HDR_LEN;
	}
}

static void net_tap_event(void *opaque, uint32_t events)
{
	struct net_tap *t = opaque;

	if ((events & EPOLLOUT) && t->tx_blocked) {
		t->tx_blocked = false;
		net_tap_watch(t);
		t->base.peer->tx_ready(t->base.peer_opaque);
	}
	/* EPOLLERR alone is how a deleted device shows: read() says EBADFD. */
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		net_tap_rx(t);
}

static int net_tap_send(struct net_backend *be, const struct iovec *iov, unsigned iovcnt,
			size_t len)
{
	struct net_tap *t = (struct net_tap *)be;
	ssize_t n;

	if (t->gone) {
		be->stats.tx_dropped++;
		return 0;
	}
	/* One write() is one frame; the tap never takes part of one. */
	n = writev(t->fd, iov, (int)iovcnt);
	if (n >= 0) {
		be->stats.tx_frames++;
		be->stats.tx_bytes += len - NET_VNET_HDR_LEN;
		return 0;
	}
	if (errno == EAGAIN) {
		t->tx_blocked = true;
		net_tap_watch(t);
		return -EAGAIN;
	}
	be->stats.tx_dropped++;
	if (errno == EBADFD)
		net_tap_gone(t);
	else if (errno != EIO) /* EIO: the device is down, like an unplugged cable */
		log_ratelimited(&t->rl, LOG_WARN, "%s: tap: %s: write: %s", be->name, t->ifname,
				strerror(errno));
	return 0;
}

static void net_tap_rx_ready(struct net_backend *be)
{
	struct net_tap *t = (struct net_tap *)be;

	if (t->rx_stopped) {
		t->rx_stopped = false;
		net_tap_watch(t);
	}
}

static unsigned net_tap_to_tun(unsigned offloads)
{
	unsigned tun = 0;

	for (size_t i = 0; i < sizeof(net_tap_offload_map) / sizeof(net_tap_offload_map[0]); i++)
		if (offloads & net_tap_offload_map[i].net)
			tun |= net_tap_offload_map[i].tun;
	return tun;
}

static int net_tap_set_offloads(struct net_backend *be, unsigned offloads)
{
	struct net_tap *t = (struct net_tap *)be;

	/* The tap takes segmentation offloads only with checksum offload, and
	 * ECN only with TSO (virtio has the same dependencies): leave out what
	 * would make TUNSETOFFLOAD fail, which only means fewer offloads. */
	if (!(offloads & NET_OFFLOAD_CSUM))
		offloads = 0;
	if (!(offloads & (NET_OFFLOAD_TSO4 | NET_OFFLOAD_TSO6)))
		offloads &= ~NET_OFFLOAD_ECN;
	if (ioctl(t->fd, TUNSETOFFLOAD, (unsigned long)net_tap_to_tun(offloads)) < 0) {
		int err = errno;

		log_err("%s: tap: %s: TUNSETOFFLOAD: %s", be->name, t->ifname, strerror(err));
		return -err;
	}
	return 0;
}

/* Which offloads the tap accepts, one TUNSETOFFLOAD at a time (each with
 * the flags it depends on); none stays enabled until set_offloads. */
static unsigned net_tap_probe_offloads(int fd)
{
	static const unsigned probes[] = {
		NET_OFFLOAD_CSUM,
		NET_OFFLOAD_CSUM | NET_OFFLOAD_TSO4,
		NET_OFFLOAD_CSUM | NET_OFFLOAD_TSO6,
		NET_OFFLOAD_CSUM | NET_OFFLOAD_TSO4 | NET_OFFLOAD_ECN,
		NET_OFFLOAD_CSUM | NET_OFFLOAD_UFO,
	};
	unsigned got = 0;

	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++)
		if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)net_tap_to_tun(probes[i])) == 0)
			got |= probes[i];
	if (!(got & NET_OFFLOAD_CSUM))
		got = 0;
	if (ioctl(fd, TUNSETOFFLOAD, 0UL) < 0)
		got = 0;
	return got;
}

static int net_tap_unwatch(void *arg)
{
	struct net_tap *t = arg;

	t->gone = true; /* what it watches: nothing */
	return net_tap_watch(t);
}

static void net_tap_close(struct net_backend *be)
{
	struct net_tap *t = (struct net_tap *)be;

	/* On the loop's thread when one serves it, so that no rx_ready or
	 * callback runs concurrently; else nothing runs callbacks anyway. */
	if (evloop_call(be->loop, net_tap_unwatch, t) == -ESHUTDOWN)
		net_tap_unwatch(t);
	/* A device kvisor created is not persistent: closing removes it. */
	close(t->fd);
	free(t);
}

static const struct net_backend_ops net_tap_ops = {
	.send = net_tap_send,
	.rx_ready = net_tap_rx_ready,
	.set_offloads = net_tap_set_offloads,
	.close = net_tap_close,
};

/* "ip tuntap add NAME mode tap user USER": how to make a device this user
 * may open, for the error messages. */
static void net_tap_hint(char *buf, size_t cap, const char *ifname)
{
	struct passwd *pw = getpwuid(geteuid());

	if (pw)
		snprintf(buf, cap, "ip tuntap add %s mode tap user %s", ifname, pw->pw_name);
	else
		snprintf(buf, cap, "ip tuntap add %s mode tap user %u", ifname,
			 (unsigned)geteuid());
}

/* The one-line error for a failed TUNSETIFF (err) on (ifname). */
static void net_tap_setiff_error(const char *name, const char *ifname, bool created, int err)
{
	char hint[128];

	net_tap_hint(hint, sizeof(hint), created ? "NAME" : ifname);
	if (err == EPERM && created)
		log_err("%s: tap: creating a tap device needs CAP_NET_ADMIN; make one with "
			"'%s' and use ifname=NAME",
			name, hint);
	else if (err == EPERM)
		log_err("%s: tap: no permission to use %s (make it yours: '%s')", name, ifname,
			hint);
	else if (err == EBUSY)
		log_err("%s: tap: %s is busy (another process has it open)", name, ifname);
	else if (err == EINVAL && !created)
		log_err("%s: tap: %s is not a single-queue tap device", name, ifname);
	else
		log_err("%s: tap: %s: TUNSETIFF: %s", name, created ? NET_TAP_NEW : ifname,
			strerror(err));
}

/* Open /dev/net/tun and attach it to (opts->ifname) or a new device;
 * the fd (non-blocking, vnet header on) in (*fd), its name in (ifname). */
static int net_tap_attach(const struct net_backend_opts *opts, const char *name, int *fd,
			  char ifname[IFNAMSIZ])
{
	struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR };
	int hdr = NET_VNET_HDR_LEN, err;

	/* IFF_ONE_QUEUE is not set: the kernel ignores it since Linux 3.8. */
	*fd = open(NET_TAP_DEV, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (*fd < 0) {
		err = errno;
		if (err == ENOENT || err == ENODEV || err == ENXIO)
			log_err("%s: tap: %s is missing (load the tun module: modprobe tun)", name,
				NET_TAP_DEV);
		else
			log_err("%s: tap: %s: %s", name, NET_TAP_DEV, strerror(err));
		return -err;
	}
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s",
		 opts->ifname ? opts->ifname : NET_TAP_NEW);
	if (ioctl(*fd, TUNSETIFF, &ifr) < 0) {
		err = errno;
		net_tap_setiff_error(name, opts->ifname, !opts->ifname, err);
		goto err_close;
	}
	snprintf(ifname, IFNAMSIZ, "%s", ifr.ifr_name);
	/* struct virtio_net_hdr_v1: 12 bytes, num_buffers included. The host
	 * is x86, so the tap's native byte order is virtio 1's little endian. */
	if (ioctl(*fd, TUNSETVNETHDRSZ, &hdr) < 0) {
		err = errno;
		log_err("%s: tap: %s: TUNSETVNETHDRSZ: %s", name, ifname, strerror(err));
		goto err_close;
	}
	return 0;

err_close:
	close(*fd);
	*fd = -1;
	return -err;
}

/* Refuse a name the kernel would not take for an existing device, or one
 * that does not exist (TUNSETIFF would create it, silently, for root). */
static int net_tap_check_ifname(const char *name, const char *ifname)
{
	char hint[128];

	if (!*ifname || strlen(ifname) >= IFNAMSIZ) {
		log_err("%s: ifname: '%s' is not 1 to %d characters", name, ifname, IFNAMSIZ - 1);
		return -EINVAL;
	}
	if (!if_nametoindex(ifname)) {
		net_tap_hint(hint, sizeof(hint), ifname);
		log_err("%s: ifname: no network device %s (create it with '%s')", name, ifname,
			hint);
		return -ENODEV;
	}
	return 0;
}

int net_tap_open(struct net_backend **out, const struct net_backend_opts *opts, struct evloop *loop,
		 const struct net_peer_ops *peer, void *peer_opaque)
{
	const char *name = opts->name ? opts->name : "net";
	struct net_tap *t;
	int ret;

	if (opts->ifname) {
		ret = net_tap_check_ifname(name, opts->ifname);
		if (ret)
			return ret;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	net_backend_init(&t->base, &net_tap_ops, opts, loop, peer, peer_opaque);
	t->base.vnet_hdr = true;
	t->created = !opts->ifname;
	ret = net_tap_attach(opts, name, &t->fd, t->ifname);
	if (ret)
		goto err_free;
	t->base.offloads = net_tap_probe_offloads(t->fd);
	ret = net_tap_watch(t);
	if (ret)
		goto err_close;
	/* kvisor changes nothing else on the host: the user brings the device
	 * up and wires it (a bridge for bridged, an address for host-only). */
	if (t->created)
		log_info("%s: tap: created %s (removed when the VM exits)", name, t->ifname);
	*out = &t->base;
	return 0;

err_close:
	close(t->fd);
err_free:
	free(t);
	return ret;
}
