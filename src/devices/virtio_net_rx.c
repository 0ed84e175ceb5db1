/* virtio-net receive path: frames from the backend into the guest's rx
 * chains (one chain, or several with MRG_RXBUF), and the backpressure that
 * keeps at most one frame waiting while the ring is full or the VM paused. */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "kvisor/virtio.h"
#include "virtio_net_priv.h"

/* Copy (len) bytes of (iov, iovcnt) from byte (skip) into (chain) at (off). */
static void virtio_net_iov_to_chain(const struct vq_chain *chain, uint64_t off,
				    const struct iovec *iov, unsigned iovcnt, size_t skip,
				    size_t len)
{
	for (unsigned i = 0; i < iovcnt && len; i++) {
		size_t take;

		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		take = iov[i].iov_len - skip;
		if (take > len)
			take = len;
		vq_chain_write(chain, off, (const uint8_t *)iov[i].iov_base + skip, take);
		off += take;
		len -= take;
		skip = 0;
	}
}

/* Gather (len) bytes of (iov, iovcnt) from the start into (dst). */
static void virtio_net_iov_read(const struct iovec *iov, unsigned iovcnt, void *dst, size_t len)
{
	for (unsigned i = 0; i < iovcnt && len; i++) {
		size_t take = iov[i].iov_len < len ? iov[i].iov_len : len;

		memcpy(dst, iov[i].iov_base, take);
		dst = (uint8_t *)dst + take;
		len -= take;
	}
}

/* One chain for header and frame (no MRG_RXBUF). */
static int virtio_net_rx_single(struct virtio_net *nd, const struct iovec *iov, unsigned iovcnt,
				size_t skip, size_t flen, struct virtio_net_hdr *hdr)
{
	struct vq_chain *c = &nd->rx_first;

	if (virtio_dev_pop(nd->vdev, VIRTIO_NET_RXQ, c) <= 0)
		return -ENOBUFS; /* empty, or the ring broke (the device needs a reset) */
	if (c->writable_len < VIRTIO_NET_HDR_LEN + flen) {
		/* Too small for this frame, perhaps not for the next one. */
		virtio_dev_unpop(nd->vdev, VIRTIO_NET_RXQ, 1);
		nd->stats.rx_dropped_no_buffer++;
		return 0;
	}
	hdr->num_buffers = htole16(1);
	vq_chain_write(c, 0, hdr, VIRTIO_NET_HDR_LEN);
	virtio_net_iov_to_chain(c, VIRTIO_NET_HDR_LEN, iov, iovcnt, skip, flen);
	virtio_dev_push(nd->vdev, VIRTIO_NET_RXQ, c->head, (uint32_t)(VIRTIO_NET_HDR_LEN + flen));
	return 1;
}

/* As many chains as header and frame need (MRG_RXBUF); num_buffers is
 * written into the first once they are all in hand, and nothing is pushed
 * before, so the driver never sees part of a frame. */
static int virtio_net_rx_merged(struct virtio_net *nd, const struct iovec *iov, unsigned iovcnt,
				size_t skip, size_t flen, struct virtio_net_hdr *hdr)
{
	size_t total = VIRTIO_NET_HDR_LEN + flen, off = 0;
	unsigned n = 0;

	while (off < total) {
		struct vq_chain *c = n ? &nd->rx_chain : &nd->rx_first;
		size_t take;

		if (n == VIRTIO_NET_QUEUE_SIZE ||
		    virtio_dev_pop(nd->vdev, VIRTIO_NET_RXQ, c) <= 0) {
			/* Not enough buffers yet: give these back untouched in
			 * the driver's view, the frame waits for more. */
			virtio_dev_unpop(nd->vdev, VIRTIO_NET_RXQ, n);
			return -ENOBUFS;
		}
		if (c->writable_len < VIRTIO_NET_HDR_LEN) {
			/* Each buffer must hold a header (5.1.6.3.1): a driver
			 * bug; the chains go back empty and the frame is lost. */
			for (unsigned i = 0; i < n; i++)
				virtio_dev_push(nd->vdev, VIRTIO_NET_RXQ, nd->rx_heads[i], 0);
			virtio_dev_push(nd->vdev, VIRTIO_NET_RXQ, c->head, 0);
			nd->stats.rx_dropped_no_buffer++;
			return 0;
		}
		take = c->writable_len < total - off ? c->writable_len : total - off;
		if (n == 0)
			virtio_net_iov_to_chain(c, VIRTIO_NET_HDR_LEN, iov, iovcnt, skip,
						take - VIRTIO_NET_HDR_LEN);
		else
			virtio_net_iov_to_chain(c, 0, iov, iovcnt, skip + off - VIRTIO_NET_HDR_LEN,
						take);
		nd->rx_heads[n] = c->head;
		nd->rx_lens[n++] = (uint32_t)take;
		off += take;
	}
	hdr->num_buffers = htole16((uint16_t)n);
	vq_chain_write(&nd->rx_first, 0, hdr, VIRTIO_NET_HDR_LEN);
	for (unsigned i = 0; i < n; i++)
		virtio_dev_push(nd->vdev, VIRTIO_NET_RXQ, nd->rx_heads[i], nd->rx_lens[i]);
	return 1;
}

/* Put one frame as the backend handed it ((len) bytes, its vnet header
 * first if it has one; already checked) into the ring. 0: delivered or
 * dropped and counted; -ENOBUFS: no room yet, nothing was consumed. */
static int virtio_net_rx_deliver(struct virtio_net *nd, const struct iovec *iov, unsigned iovcnt,
				 size_t len)
{
	size_t skip = nd->vnet_hdr ? VIRTIO_NET_HDR_LEN : 0, flen = len - skip;
	struct virtio_net_hdr hdr = { 0 };
	int ret;

	if (nd->vnet_hdr)
		virtio_net_iov_read(iov, iovcnt, &hdr, sizeof(hdr));
	if (nd->mrg_rxbuf)
		ret = virtio_net_rx_merged(nd, iov, iovcnt, skip, flen, &hdr);
	else
		ret = virtio_net_rx_single(nd, iov, iovcnt, skip, flen, &hdr);
	if (ret < 0)
		return ret;
	if (ret > 0) {
		nd->stats.rx_frames++;
		nd->stats.rx_bytes += flen;
	}
	virtio_dev_notify(nd->vdev, VIRTIO_NET_RXQ);
	return 0;
}

static bool virtio_net_rx_open(const struct virtio_net *nd)
{
	return nd->ready && !nd->paused && !nd->rx_pending;
}

static bool virtio_net_can_receive(void *opaque)
{
	struct virtio_net *nd = opaque;
	bool took = virtio_net_enter(nd), ok = virtio_net_rx_open(nd);

	if (!ok)
		nd->rx_refused = true;
	virtio_net_leave(nd, took);
	return ok;
}

/* Keep the frame until the driver adds buffers (or the VM resumes). */
static void virtio_net_rx_hold(struct virtio_net *nd, const struct iovec *iov, unsigned iovcnt,
			       size_t len)
{
	if (nd->rx_pending) {
		/* The backend did not ask can_receive: memory stays bounded. */
		nd->stats.rx_dropped_overrun++;
		return;
	}
	virtio_net_iov_read(iov, iovcnt, nd->rx_buf, len);
	nd->rx_pending_len = len;
	nd->rx_pending = true;
	nd->rx_refused = true; /* can_receive is false from here */
}

static void virtio_net_receive(void *opaque, const struct iovec *iov, unsigned iovcnt, size_t len)
{
	struct virtio_net *nd = opaque;
	size_t hdr = nd->vnet_hdr ? VIRTIO_NET_HDR_LEN : 0;
	bool took = virtio_net_enter(nd);

	if (len < hdr + NET_FRAME_MIN || len > hdr + NET_FRAME_MAX)
		nd->stats.rx_dropped_malformed++;
	else if (!nd->ready)
		nd->stats.rx_dropped_not_ready++;
	else if (!nd->link_up)
		nd->stats.rx_dropped_link_down++;
	else if (nd->paused || nd->rx_pending ||
		 virtio_net_rx_deliver(nd, iov, iovcnt, len) == -ENOBUFS)
		virtio_net_rx_hold(nd, iov, iovcnt, len); /* guest memory untouched */
	virtio_net_leave(nd, took);
}

void virtio_net_rx_notify(struct virtio_net *nd)
{
	if (nd->rx_pending) {
		struct iovec iov = { nd->rx_buf, nd->rx_pending_len };

		if (virtio_net_rx_deliver(nd, &iov, 1, nd->rx_pending_len) == -ENOBUFS)
			return;
		nd->rx_pending = false;
	}
	if (nd->rx_refused && virtio_net_rx_open(nd) && nd->be) {
		/* The backend may deliver inline: receive sees loop_locked. */
		nd->rx_refused = false;
		net_backend_rx_ready(nd->be);
	}
}

void virtio_net_rx_reset(struct virtio_net *nd)
{
	if (nd->rx_pending) {
		nd->rx_pending = false;
		nd->stats.rx_dropped_not_ready++;
	}
}

static void virtio_net_link_changed(void *opaque, bool up)
{
	struct virtio_net *nd = opaque;
	bool took = virtio_net_enter(nd);

	if (nd->link_up != up) {
		nd->link_up = up;
		nd->config.status = htole16(up ? VIRTIO_NET_S_LINK_UP : 0);
		virtio_dev_config_changed(nd->vdev);
		log_info("%s: link %s", nd->name, up ? "up" : "down");
	}
	virtio_net_leave(nd, took);
}

const struct net_peer_ops virtio_net_peer_ops = {
	.can_receive = virtio_net_can_receive,
	.receive = virtio_net_receive,
	.tx_ready = virtio_net_tx_ready,
	.link_changed = virtio_net_link_changed,
};
