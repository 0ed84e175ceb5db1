/* The virtio-net device model's shared state (src/devices/virtio_net.c:
 * configuration, features, creation; virtio_net_rx.c and virtio_net_tx.c:
 * the two queues) and its constructor on a backend open function. */
#ifndef KVISOR_VIRTIO_NET_PRIV_H
#define KVISOR_VIRTIO_NET_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "kvisor/config.h"
#include "kvisor/log.h"
#include "kvisor/net.h"
#include "kvisor/virtio_net.h"
#include "kvisor/vq.h"

struct vm;
struct evloop;
struct virtio_dev;

#define VIRTIO_NET_QUEUE_SIZE 256
#define VIRTIO_NET_RXQ        0
#define VIRTIO_NET_TXQ        1
#define VIRTIO_NET_HDR_LEN    12u /* struct virtio_net_hdr_v1: VERSION_1 always has num_buffers */
#define VIRTIO_NET_FRAME_BUF  (VIRTIO_NET_HDR_LEN + NET_FRAME_MAX)
#define VIRTIO_NET_TX_BUDGET  256 /* chains per pass before the loop serves others */
#define VIRTIO_NET_TX_IOV_MAX 64  /* guest buffers per frame handed as iovecs; more: copied */

/* Feature bits (virtio 1.2, 5.1.3). */
#define VIRTIO_NET_F_CSUM       0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MAC        5
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_GUEST_ECN  9
#define VIRTIO_NET_F_GUEST_UFO  10
#define VIRTIO_NET_F_HOST_TSO4  11
#define VIRTIO_NET_F_HOST_TSO6  12
#define VIRTIO_NET_F_HOST_ECN   13
#define VIRTIO_NET_F_HOST_UFO   14
#define VIRTIO_NET_F_MRG_RXBUF  15
#define VIRTIO_NET_F_STATUS     16

#define VIRTIO_NET_S_LINK_UP 1

/* struct virtio_net_hdr_v1 (5.1.6) fields. */
#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_GSO_NONE     0
#define VIRTIO_NET_HDR_GSO_TCPV4    1
#define VIRTIO_NET_HDR_GSO_UDP      3
#define VIRTIO_NET_HDR_GSO_TCPV6    4
#define VIRTIO_NET_HDR_GSO_ECN      0x80

struct virtio_net_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len; /* little-endian, as every field below */
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
} __attribute__((packed));

_Static_assert(sizeof(struct virtio_net_hdr) == VIRTIO_NET_HDR_LEN, "virtio_net_hdr layout");
_Static_assert(NET_VNET_HDR_LEN == VIRTIO_NET_HDR_LEN, "backend and guest header lengths");

/* struct virtio_net_config (5.1.4) up to max_virtqueue_pairs, little-endian. */
struct virtio_net_config {
	uint8_t mac[6];
	uint16_t status;
	uint16_t max_virtqueue_pairs;
} __attribute__((packed));

/*
 * One device. Everything but the fields marked otherwise is under the
 * device lock (virtio_dev_lock). Who runs where: queue_notify, the kick
 * eventfd and every backend callback on the event loop (vm->io); cfg_read
 * and reset on a vCPU thread; pause and resume on a control thread.
 */
struct virtio_net {
	char name[CONFIG_ID_MAX]; /* the instance id: "net0" */
	struct virtio_dev *vdev;
	struct net_backend *be; /* NULL once closing: the device stops calling it */
	struct evloop *loop;
	bool vnet_hdr;        /* the backend's frames carry a vnet header */
	unsigned be_offloads; /* NET_OFFLOAD_* the backend takes (tx) and may hand (rx) */
	struct virtio_net_config config;
	struct log_ratelimit rl;
	/* The loop thread holds the lock already: a backend may call the
	 * device from inside a call the device made to it (libslirp answers an
	 * ARP request inside slirp_input, i.e. inside net_backend_send). Only
	 * the loop thread reads or writes it. */
	bool loop_locked;

	bool ready;   /* DRIVER_OK seen since the last reset (first queue_notify) */
	bool paused;  /* VM pause: no guest memory is touched */
	bool link_up; /* what config.status says */
	bool mrg_rxbuf;

	/* Receive. At most one frame waits for buffers (rx_pending), in a
	 * buffer of VIRTIO_NET_FRAME_BUF bytes allocated at creation, as the
	 * backend handed it (with its vnet header if it has one). */
	bool rx_refused; /* can_receive said no since the last rx_ready */
	bool rx_pending;
	size_t rx_pending_len;
	uint8_t *rx_buf;
	struct vq_chain rx_first, rx_chain; /* a frame's first chain, and the others */
	uint16_t rx_heads[VIRTIO_NET_QUEUE_SIZE];
	uint32_t rx_lens[VIRTIO_NET_QUEUE_SIZE];

	/* Transmit. A frame the backend refused with -EAGAIN, or one the device
	 * had to change or linearize, is copied here (vnet header first); the
	 * guest's chain is pushed at once, so no chain waits on the backend
	 * (a driver reset and a VM pause wait for every chain popped). */
	bool tx_blocked; /* -EAGAIN: nothing is sent until tx_ready */
	bool tx_held;    /* tx_buf holds a frame to send before the ring's */
	bool tx_running; /* a pass is on the stack (tx_ready from inside send) */
	size_t tx_held_len;
	uint8_t *tx_buf;
	struct vq_chain tx_chain;
	struct iovec tx_iov[VIRTIO_NET_TX_IOV_MAX + 1];
	int kick_efd; /* the next tx pass, after one that served chains (kicks stay off) */

	struct virtio_net_stats stats;
};

/* What opens the backend: net_backend_open, or a test's fake with the same
 * contract (it must build the backend with net_backend_init on (peer,
 * peer_opaque)). */
typedef int (*virtio_net_open_fn)(struct net_backend **out, const struct net_backend_opts *opts,
				  struct evloop *loop, const struct net_peer_ops *peer,
				  void *peer_opaque);

/* Create a virtio-net device on (vm) named opts->name with MAC opts->mac and
 * the initial link state (link_up): opens its backend with (open)(opts) on
 * vm->io, then the virtio device (a PCI function), both on the loop thread,
 * so no backend callback sees a half-built device. 0 or -errno, after one
 * line naming the device. The device type's create() uses it with
 * net_backend_open; the unit tests with a fake backend. */
int virtio_net_new(struct virtio_net **out, struct vm *vm, const struct net_backend_opts *opts,
		   bool link_up, virtio_net_open_fn open) __attribute__((warn_unused_result));

/* Close the backend, destroy the virtio device, free (nd). Not on the loop
 * thread; the loop must run. NULL is fine. */
void virtio_net_free(struct virtio_net *nd);

/* VM pause and resume (device_type hooks; also for tests). */
int virtio_net_pause(struct virtio_net *nd) __attribute__((warn_unused_result));
void virtio_net_resume(struct virtio_net *nd);

/* Take the device lock for a backend callback on the loop thread unless
 * that thread holds it already; returns whether it took it, for
 * virtio_net_leave. */
bool virtio_net_enter(struct virtio_net *nd);
void virtio_net_leave(struct virtio_net *nd, bool took);

/* --- receive (virtio_net_rx.c), lock held --------------------------------- */

extern const struct net_peer_ops virtio_net_peer_ops;

/* The rx queue was kicked (or the device became ready or resumed): deliver
 * the waiting frame and tell the backend it may send again. */
void virtio_net_rx_notify(struct virtio_net *nd);

/* The driver reset the device: drop the waiting frame. */
void virtio_net_rx_reset(struct virtio_net *nd);

/* --- transmit (virtio_net_tx.c), lock held -------------------------------- */

/* Serve the tx queue: send the held frame, then chains, until the ring is
 * empty, the backend says -EAGAIN or the budget is spent. A pass that
 * served chains leaves the driver's kicks off and runs again from the kick
 * eventfd; one that found the ring empty turns them on. Notifies the
 * driver once. */
void virtio_net_tx_pass(struct virtio_net *nd);

/* The backend can take frames again (net_peer_ops.tx_ready). */
void virtio_net_tx_ready(void *opaque);

/* The driver reset the device: drop a held frame. */
void virtio_net_tx_reset(struct virtio_net *nd);

/* The Internet checksum of (len) bytes at (p), folded, not inverted, added
 * to (sum). For the software completion of VIRTIO_NET_HDR_F_NEEDS_CSUM. */
uint32_t virtio_net_csum_add(uint32_t sum, const uint8_t *p, size_t len);

#endif
