/* virtio-net transmit path: tx chains to the backend as iovecs over the
 * guest's buffers, the vnet header mapped onto what the backend takes
 * (stripped, checksums completed in software, GSO refused), and -EAGAIN
 * backpressure with one frame held by the device. */
#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "kvisor/virtio.h"
#include "virtio_net_priv.h"

uint32_t virtio_net_csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
	uint64_t s = sum;

	for (; len > 1; p += 2, len -= 2)
		s += (uint32_t)p[0] << 8 | p[1];
	if (len)
		s += (uint32_t)p[0] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint32_t)s;
}

/* The NET_OFFLOAD_* a GSO type needs; UINT32_MAX for one nobody takes. */
static unsigned virtio_net_gso_offload(uint8_t gso_type)
{
	unsigned ecn = gso_type & VIRTIO_NET_HDR_GSO_ECN ? NET_OFFLOAD_ECN : 0;

	switch (gso_type & ~VIRTIO_NET_HDR_GSO_ECN) {
	case VIRTIO_NET_HDR_GSO_NONE:
		return ecn ? UINT32_MAX : 0;
	case VIRTIO_NET_HDR_GSO_TCPV4:
		return NET_OFFLOAD_TSO4 | ecn;
	case VIRTIO_NET_HDR_GSO_TCPV6:
		return NET_OFFLOAD_TSO6 | ecn;
	case VIRTIO_NET_HDR_GSO_UDP:
		return NET_OFFLOAD_UFO | ecn;
	default:
		return UINT32_MAX;
	}
}

/* Complete a partial checksum in tx_buf (header, then (flen) frame bytes):
 * the field at csum_start + csum_offset holds the pseudo-header sum, the
 * sum runs from csum_start to the end (as Linux's skb_checksum_help).
 * false: the offsets leave the frame. */
static bool virtio_net_tx_csum(struct virtio_net *nd, struct virtio_net_hdr *hdr, size_t flen)
{
	uint32_t start = le16toh(hdr->csum_start), field = start + le16toh(hdr->csum_offset);
	uint8_t *frame = nd->tx_buf + VIRTIO_NET_HDR_LEN;
	uint16_t sum;

	if (start >= flen || field + 2 > flen) /* u16 + u16: no overflow */
		return false;
	sum = (uint16_t)~virtio_net_csum_add(0, frame + start, flen - start);
	if (!sum)
		sum = 0xffff; /* 0 means "no checksum" for UDP; equal for TCP */
	frame[field] = (uint8_t)(sum >> 8);
	frame[field + 1] = (uint8_t)sum;
	hdr->flags &= (uint8_t)~VIRTIO_NET_HDR_F_NEEDS_CSUM;
	return true;
}

/* Send the frame held in tx_buf. 0 (sent, or dropped and counted) or
 * -EAGAIN (still held). */
static int virtio_net_tx_send_held(struct virtio_net *nd)
{
	size_t skip = nd->vnet_hdr ? 0 : VIRTIO_NET_HDR_LEN;
	struct iovec iov = { nd->tx_buf + skip, nd->tx_held_len - skip };
	int ret = net_backend_send(nd->be, &iov, 1, iov.iov_len);

	if (ret == -EAGAIN)
		return ret;
	nd->tx_held = false;
	if (ret) {
		nd->stats.tx_dropped_backend++;
	} else {
		nd->stats.tx_frames++;
		nd->stats.tx_bytes += nd->tx_held_len - VIRTIO_NET_HDR_LEN;
	}
	return 0;
}

/* Hold header (hdr) and the frame of chain (c) in tx_buf, unless it is
 * there already. */
static void virtio_net_tx_hold(struct virtio_net *nd, const struct vq_chain *c,
			       const struct virtio_net_hdr *hdr, bool copied)
{
	if (!copied)
		vq_chain_read(c, VIRTIO_NET_HDR_LEN, nd->tx_buf + VIRTIO_NET_HDR_LEN,
			      c->readable_len - VIRTIO_NET_HDR_LEN);
	memcpy(nd->tx_buf, hdr, VIRTIO_NET_HDR_LEN);
	nd->tx_held_len = c->readable_len;
	nd->tx_held = true;
}

/* The frame of chain (c) (after the header) as iovecs in tx_iov from
 * index (first); -1 when it has more buffers than VIRTIO_NET_TX_IOV_MAX. */
static int virtio_net_tx_iov(struct virtio_net *nd, const struct vq_chain *c, unsigned first)
{
	uint64_t skip = VIRTIO_NET_HDR_LEN;
	unsigned n = first;

	for (unsigned i = 0; i < c->nr_readable; i++) {
		const struct vq_buf *b = &c->bufs[i];

		if (skip >= b->len) {
			skip -= b->len;
			continue;
		}
		if (n == VIRTIO_NET_TX_IOV_MAX + 1)
			return -1;
		nd->tx_iov[n].iov_base = (uint8_t *)b->hva + skip;
		nd->tx_iov[n++].iov_len = b->len - skip;
		skip = 0;
	}
	return (int)n;
}

/* Check chain (c) and map its header; false: dropped and counted. On
 * true, *copy says the frame must go through tx_buf (already filled). */
static bool virtio_net_tx_prepare(struct virtio_net *nd, const struct vq_chain *c,
				  struct virtio_net_hdr *hdr, bool *copy)
{
	size_t flen = c->readable_len - VIRTIO_NET_HDR_LEN;
	unsigned gso;

	if (!nd->link_up) {
		nd->stats.tx_dropped_link_down++;
		return false;
	}
	gso = virtio_net_gso_offload(hdr->gso_type);
	if (gso & ~nd->be_offloads) {
		/* Nothing here segments a frame in software. */
		nd->stats.tx_dropped_offload++;
		return false;
	}
	hdr->num_buffers = 0;
	*copy = false;
	if ((hdr->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && !(nd->be_offloads & NET_OFFLOAD_CSUM)) {
		/* Only a guest that ignored the features gets here. */
		vq_chain_read(c, VIRTIO_NET_HDR_LEN, nd->tx_buf + VIRTIO_NET_HDR_LEN, flen);
		if (!virtio_net_tx_csum(nd, hdr, flen)) {
			nd->stats.tx_dropped_offload++;
			return false;
		}
		*copy = true;
	}
	return true;
}

/* Send chain (c); it is pushed by the caller whatever happens. */
static void virtio_net_tx_one(struct virtio_net *nd, const struct vq_chain *c)
{
	struct virtio_net_hdr hdr;
	bool copy;
	int n = 0, ret;

	if (c->nr_readable != c->nr_bufs || c->readable_len < VIRTIO_NET_HDR_LEN + NET_FRAME_MIN ||
	    c->readable_len > VIRTIO_NET_HDR_LEN + NET_FRAME_MAX) {
		nd->stats.tx_dropped_malformed++;
		log_ratelimited(&nd->rl, LOG_WARN, "%s: malformed tx chain (%llu bytes%s) dropped",
				nd->name, (unsigned long long)c->readable_len,
				c->nr_readable != c->nr_bufs ? ", device-writable buffer" : "");
		return;
	}
	/* The header is read once: what is checked is what is sent. */
	vq_chain_read(c, 0, &hdr, sizeof(hdr));
	if (!virtio_net_tx_prepare(nd, c, &hdr, &copy))
		return;
	if (!copy) {
		nd->tx_iov[0] = (struct iovec){ &hdr, VIRTIO_NET_HDR_LEN };
		n = virtio_net_tx_iov(nd, c, 1);
		if (n < 0) {
			vq_chain_read(c, VIRTIO_NET_HDR_LEN, nd->tx_buf + VIRTIO_NET_HDR_LEN,
				      c->readable_len - VIRTIO_NET_HDR_LEN);
			copy = true;
		}
	}
	if (copy) {
		virtio_net_tx_hold(nd, c, &hdr, true);
		virtio_net_tx_send_held(nd);
		nd->tx_blocked = nd->tx_held;
		return;
	}
	ret = nd->vnet_hdr ? net_backend_send(nd->be, nd->tx_iov, (unsigned)n, c->readable_len) :
			     net_backend_send(nd->be, nd->tx_iov + 1, (unsigned)n - 1,
					      c->readable_len - VIRTIO_NET_HDR_LEN);
	if (ret == -EAGAIN) {
		virtio_net_tx_hold(nd, c, &hdr, false);
		nd->tx_blocked = true;
	} else if (ret) {
		nd->stats.tx_dropped_backend++;
	} else {
		nd->stats.tx_frames++;
		nd->stats.tx_bytes += c->readable_len - VIRTIO_NET_HDR_LEN;
	}
}

/* Send and push chains, taken with virtio_dev_pop_polled (polled) or
 * virtio_dev_pop, until the ring is empty, the backend blocks or (budget)
 * chains are served; how many were. */
static unsigned virtio_net_tx_drain(struct virtio_net *nd, bool polled, unsigned budget)
{
	unsigned served = 0;

	while (!nd->tx_blocked && served < budget) {
		int r = polled ? virtio_dev_pop_polled(nd->vdev, VIRTIO_NET_TXQ, &nd->tx_chain) :
				 virtio_dev_pop(nd->vdev, VIRTIO_NET_TXQ, &nd->tx_chain);

		if (r <= 0)
			break;
		virtio_net_tx_one(nd, &nd->tx_chain);
		virtio_dev_push(nd->vdev, VIRTIO_NET_TXQ, nd->tx_chain.head, 0);
		served++;
	}
	return served;
}

/*
 * When kicks come back on. A guest that is sending adds chains while the
 * loop serves others (the backend's answers to what it just sent, e.g. a
 * NAT's ACKs, are what clock the next frames), and each kick is a VM exit
 * (~56 us from CPL3 on kvm-pvm hosts). So, as QEMU's tx bottom half does,
 * a pass that served anything leaves kicks off and comes back through
 * kick_efd after the loop's other ready callbacks; only a pass that finds
 * the ring empty turns kicks on (virtio_dev_pop looks once more after
 * that). The polling stops at the first pass that finds nothing: an idle
 * guest costs one extra empty pass per burst, never a spin.
 */
void virtio_net_tx_pass(struct virtio_net *nd)
{
	unsigned served;
	uint64_t one = 1;

	if (nd->tx_running || !nd->ready || nd->paused || !nd->be)
		return;
	nd->tx_running = true;
	if (!nd->tx_blocked && nd->tx_held && virtio_net_tx_send_held(nd) == -EAGAIN)
		nd->tx_blocked = true;
	served = virtio_net_tx_drain(nd, true, VIRTIO_NET_TX_BUDGET);
	if (!served && !nd->tx_blocked)
		served = virtio_net_tx_drain(nd, false, VIRTIO_NET_TX_BUDGET);
	/* Blocked: tx_ready comes back instead. */
	if (served && !nd->tx_blocked && write(nd->kick_efd, &one, sizeof(one)) < 0)
		log_ratelimited(&nd->rl, LOG_WARN, "%s: tx kick: %m", nd->name);
	virtio_dev_notify(nd->vdev, VIRTIO_NET_TXQ);
	nd->tx_running = false;
}

void virtio_net_tx_ready(void *opaque)
{
	struct virtio_net *nd = opaque;
	bool took = virtio_net_enter(nd);

	nd->tx_blocked = false;
	virtio_net_tx_pass(nd); /* nothing while paused: resume kicks the queue */
	virtio_net_leave(nd, took);
}

void virtio_net_tx_reset(struct virtio_net *nd)
{
	if (nd->tx_held) {
		nd->tx_held = false;
		nd->stats.tx_dropped_backend++;
	}
}
