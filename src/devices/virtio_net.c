/* virtio-net (virtio 1.2, 5.1): one device instance per --net, a receive
 * and a transmit queue over a network backend (src/backends/net*.c);
 * features, configuration, lifecycle and creation. The queues are served in
 * virtio_net_rx.c and virtio_net_tx.c on the VM's event loop. */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "kvisor/device.h"
#include "kvisor/evloop.h"
#include "kvisor/virtio.h"
#include "kvisor/vm.h"
#include "virtio_net_priv.h"

#define BIT(n) (1ULL << (n))

bool virtio_net_enter(struct virtio_net *nd)
{
	/* No device yet: a backend calling back from inside its open, on the
	 * loop thread that is creating the device (virtio_net_build). */
	if (nd->loop_locked || !nd->vdev)
		return false;
	virtio_dev_lock(nd->vdev);
	nd->loop_locked = true;
	return true;
}

void virtio_net_leave(struct virtio_net *nd, bool took)
{
	if (!took)
		return;
	nd->loop_locked = false;
	virtio_dev_unlock(nd->vdev);
}

/* The features offered: the offloads only as far as the backend takes
 * them, with the dependencies of 5.1.3.1 (TSO and UFO need the checksum
 * offload of their direction, ECN needs TSO). */
static uint64_t virtio_net_features(unsigned off)
{
	uint64_t f = BIT(VIRTIO_NET_F_MAC) | BIT(VIRTIO_NET_F_STATUS) | BIT(VIRTIO_NET_F_MRG_RXBUF);

	if (!(off & NET_OFFLOAD_CSUM))
		return f;
	f |= BIT(VIRTIO_NET_F_CSUM) | BIT(VIRTIO_NET_F_GUEST_CSUM);
	if (off & NET_OFFLOAD_TSO4)
		f |= BIT(VIRTIO_NET_F_HOST_TSO4) | BIT(VIRTIO_NET_F_GUEST_TSO4);
	if (off & NET_OFFLOAD_TSO6)
		f |= BIT(VIRTIO_NET_F_HOST_TSO6) | BIT(VIRTIO_NET_F_GUEST_TSO6);
	if ((off & NET_OFFLOAD_ECN) && (off & (NET_OFFLOAD_TSO4 | NET_OFFLOAD_TSO6)))
		f |= BIT(VIRTIO_NET_F_HOST_ECN) | BIT(VIRTIO_NET_F_GUEST_ECN);
	if (off & NET_OFFLOAD_UFO)
		f |= BIT(VIRTIO_NET_F_HOST_UFO) | BIT(VIRTIO_NET_F_GUEST_UFO);
	return f;
}

/* What the driver accepts to receive, as NET_OFFLOAD_* (consistent even if
 * it ignored the dependencies). */
static unsigned virtio_net_guest_offloads(uint64_t f)
{
	unsigned off = 0;

	if (!(f & BIT(VIRTIO_NET_F_GUEST_CSUM)))
		return 0;
	off |= NET_OFFLOAD_CSUM;
	if (f & BIT(VIRTIO_NET_F_GUEST_TSO4))
		off |= NET_OFFLOAD_TSO4;
	if (f & BIT(VIRTIO_NET_F_GUEST_TSO6))
		off |= NET_OFFLOAD_TSO6;
	if ((f & BIT(VIRTIO_NET_F_GUEST_ECN)) && (off & (NET_OFFLOAD_TSO4 | NET_OFFLOAD_TSO6)))
		off |= NET_OFFLOAD_ECN;
	if (f & BIT(VIRTIO_NET_F_GUEST_UFO))
		off |= NET_OFFLOAD_UFO;
	return off;
}

/* The first queue_notify since a reset: the driver is at DRIVER_OK (the
 * transport serves no queue before), its features are final. */
static void virtio_net_become_ready(struct virtio_net *nd)
{
	uint64_t f = virtio_dev_features(nd->vdev);
	unsigned off = virtio_net_guest_offloads(f) & nd->be_offloads;
	int ret;

	nd->ready = true;
	nd->mrg_rxbuf = f & BIT(VIRTIO_NET_F_MRG_RXBUF);
	if (!nd->be)
		return;
	ret = net_backend_set_offloads(nd->be, off);
	if (ret) {
		log_ratelimited(&nd->rl, LOG_WARN, "%s: receive offloads 0x%x: %s", nd->name, off,
				strerror(-ret));
		/* Plain frames are always fine for the guest. */
		if (net_backend_set_offloads(nd->be, 0))
			log_ratelimited(&nd->rl, LOG_WARN, "%s: receive offloads stay on",
					nd->name);
	}
	log_debug("%s: driver ready, features 0x%llx, receive offloads 0x%x", nd->name,
		  (unsigned long long)f, off);
}

static void virtio_net_queue_notify(void *opaque, unsigned q)
{
	struct virtio_net *nd = opaque;
	bool outer = !nd->loop_locked; /* the transport holds the lock */

	nd->loop_locked = true;
	if (!nd->ready)
		virtio_net_become_ready(nd);
	if (q == VIRTIO_NET_RXQ)
		virtio_net_rx_notify(nd);
	else if (q == VIRTIO_NET_TXQ)
		virtio_net_tx_pass(nd);
	if (outer)
		nd->loop_locked = false;
}

/* The next tx pass after one that served chains, once the loop served the
 * others (virtio_net_tx_pass says why). */
static void virtio_net_kick(void *opaque, uint32_t events)
{
	struct virtio_net *nd = opaque;
	uint64_t v;
	bool took;

	if (read(nd->kick_efd, &v, sizeof(v)) < 0)
		return; /* EAGAIN: a kick already taken */
	took = virtio_net_enter(nd);
	virtio_net_tx_pass(nd);
	virtio_net_leave(nd, took);
}

static void virtio_net_cfg_read(void *opaque, uint32_t off, void *data, uint32_t len)
{
	struct virtio_net *nd = opaque;

	memcpy(data, (const uint8_t *)&nd->config + off, len); /* bounds: transport */
}

/* vCPU thread, lock held, every chain pushed: the driver starts over. */
static void virtio_net_reset(void *opaque)
{
	struct virtio_net *nd = opaque;

	nd->ready = false;
	nd->mrg_rxbuf = false;
	virtio_net_rx_reset(nd);
	virtio_net_tx_reset(nd);
}

static const struct virtio_ops virtio_net_ops = {
	.cfg_read = virtio_net_cfg_read,
	.queue_notify = virtio_net_queue_notify,
	.reset = virtio_net_reset,
};

/* --- creation ------------------------------------------------------------ */

struct virtio_net_build {
	struct virtio_net *nd;
	struct vm *vm;
	const struct net_backend_opts *opts;
	virtio_net_open_fn open;
};

/* On the loop thread (evloop_call): the backend, then the device whose
 * features depend on it. */
static int virtio_net_build(void *arg)
{
	struct virtio_net_build *b = arg;
	struct virtio_net *nd = b->nd;
	struct virtio_dev_config vcfg = {
		.transport = VIRTIO_TRANSPORT_PCI,
		.name = nd->name,
		.device_id = VIRTIO_ID_NET,
		.nr_queues = 2,
		.queue_size = VIRTIO_NET_QUEUE_SIZE,
		.cfg_size = sizeof(struct virtio_net_config),
	};
	int ret = b->open(&nd->be, b->opts, nd->loop, &virtio_net_peer_ops, nd);

	if (ret)
		return ret;
	nd->vnet_hdr = net_backend_vnet_hdr(nd->be);
	nd->be_offloads = net_backend_offloads(nd->be);
	vcfg.features = virtio_net_features(nd->be_offloads);
	ret = virtio_dev_create(&nd->vdev, b->vm, nd->loop, &vcfg, &virtio_net_ops, nd);
	if (ret)
		return ret;
	return evloop_add(nd->loop, nd->kick_efd, EPOLLIN, virtio_net_kick, nd);
}

int virtio_net_new(struct virtio_net **out, struct vm *vm, const struct net_backend_opts *opts,
		   bool link_up, virtio_net_open_fn open)
{
	struct virtio_net *nd = calloc(1, sizeof(*nd));
	struct virtio_net_build b = { nd, vm, opts, open };
	int ret;

	*out = NULL;
	if (!nd)
		return -ENOMEM;
	snprintf(nd->name, sizeof(nd->name), "%s", opts->name ? opts->name : "net");
	nd->loop = vm->io;
	nd->kick_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	nd->rx_buf = malloc(VIRTIO_NET_FRAME_BUF);
	nd->tx_buf = malloc(VIRTIO_NET_FRAME_BUF);
	if (nd->kick_efd < 0 || !nd->rx_buf || !nd->tx_buf) {
		ret = nd->kick_efd < 0 ? -errno : -ENOMEM;
		goto err;
	}
	memcpy(nd->config.mac, opts->mac, 6);
	nd->link_up = link_up;
	nd->config.status = htole16(link_up ? VIRTIO_NET_S_LINK_UP : 0);
	nd->config.max_virtqueue_pairs = htole16(1);
	ret = evloop_call(nd->loop, virtio_net_build, &b);
	if (ret)
		goto err;
	log_debug("%s: virtio-net, %s, mac %02x:%02x:%02x:%02x:%02x:%02x%s", nd->name,
		  net_mode_name(opts->mode), opts->mac[0], opts->mac[1], opts->mac[2], opts->mac[3],
		  opts->mac[4], opts->mac[5], nd->vnet_hdr ? ", vnet header" : "");
	*out = nd;
	return 0;
err:
	virtio_net_free(nd);
	return ret;
}

void virtio_net_free(struct virtio_net *nd)
{
	struct net_backend *be;

	if (!nd)
		return;
	if (nd->kick_efd >= 0 && nd->vdev)
		evloop_del(nd->loop, nd->kick_efd);
	/* The device stops calling the backend before it closes; the backend
	 * calls the device until its close returns. */
	if (nd->vdev)
		virtio_dev_lock(nd->vdev);
	be = nd->be;
	nd->be = NULL;
	if (nd->vdev)
		virtio_dev_unlock(nd->vdev);
	net_backend_close(be);
	virtio_dev_destroy(nd->vdev);
	if (nd->kick_efd >= 0)
		close(nd->kick_efd);
	free(nd->rx_buf);
	free(nd->tx_buf);
	free(nd);
}

/* VM pause: from here no frame touches guest memory (receive keeps one
 * frame aside, tx_ready waits for the resume); the transport stops serving
 * the queues. No chain is ever left popped between two calls, so the
 * transport's wait for chains in flight returns at once. */
int virtio_net_pause(struct virtio_net *nd)
{
	virtio_dev_lock(nd->vdev);
	nd->paused = true;
	virtio_dev_unlock(nd->vdev);
	return virtio_dev_pause(nd->vdev);
}

/* The transport kicks both queues on the loop: the waiting frame is
 * delivered, the backend hears it may send again, tx resumes. */
void virtio_net_resume(struct virtio_net *nd)
{
	virtio_dev_lock(nd->vdev);
	nd->paused = false;
	virtio_dev_unlock(nd->vdev);
	virtio_dev_resume(nd->vdev);
}

int virtio_net_stats(const struct vm *vm, const char *id, struct virtio_net_stats *out)
{
	const struct device *d = device_find(vm, id);
	struct virtio_net *nd;

	if (!d)
		return -ENOENT;
	if (d->type != &virtio_net_type)
		return -EINVAL;
	nd = d->state;
	virtio_dev_lock(nd->vdev);
	*out = nd->stats;
	virtio_dev_unlock(nd->vdev);
	return 0;
}
