/* The fixture of the virtio-net unit tests (check_virtio_net.c,
 * check_virtio_net_rx.c): one device built by the real constructor on a
 * fake backend (src/backends/net_priv.h) that records what it is sent and
 * plays frames in on the event loop, and a driver played from the host
 * side (virtio_driver.h). Include once. */
#ifndef KVISOR_TESTS_VIRTIO_NET_FIXTURE_H
#define KVISOR_TESTS_VIRTIO_NET_FIXTURE_H

#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/backends/net_priv.h"
#include "../../src/devices/virtio_net_priv.h"
#include "kvisor/evloop.h"
#include "kvisor/log.h"
#include "virtio_driver.h"

#define QSIZE      64
#define NET_PCI_ID (VIRTIO_PCI_DEVICE_ID_BASE + VIRTIO_ID_NET)

#define F_V1    (1ULL << VIRTIO_F_VERSION_1)
#define F_EVT   (1ULL << VIRTIO_F_EVENT_IDX)
#define F_IND   (1ULL << VIRTIO_F_INDIRECT_DESC)
#define F_MRG   (1ULL << VIRTIO_NET_F_MRG_RXBUF)
#define F_MAC   (1ULL << VIRTIO_NET_F_MAC)
#define F_STAT  (1ULL << VIRTIO_NET_F_STATUS)
#define F_CSUM  (1ULL << VIRTIO_NET_F_CSUM)
#define F_GCSUM (1ULL << VIRTIO_NET_F_GUEST_CSUM)
#define F_GTSO4 (1ULL << VIRTIO_NET_F_GUEST_TSO4)
#define F_GTSO6 (1ULL << VIRTIO_NET_F_GUEST_TSO6)
#define F_GECN  (1ULL << VIRTIO_NET_F_GUEST_ECN)
#define F_GUFO  (1ULL << VIRTIO_NET_F_GUEST_UFO)
#define F_HTSO4 (1ULL << VIRTIO_NET_F_HOST_TSO4)
#define F_HTSO6 (1ULL << VIRTIO_NET_F_HOST_TSO6)
#define F_HECN  (1ULL << VIRTIO_NET_F_HOST_ECN)
#define F_HUFO  (1ULL << VIRTIO_NET_F_HOST_UFO)
#define OFF_ALL \
	(NET_OFFLOAD_CSUM | NET_OFFLOAD_TSO4 | NET_OFFLOAD_TSO6 | NET_OFFLOAD_ECN | NET_OFFLOAD_UFO)

#define RXQ 0
#define TXQ 1
#define HDR VIRTIO_NET_HDR_LEN

static const uint8_t test_mac[6] = { 0x02, 0x11, 0x22, 0x33, 0x44, 0x55 };

/* The fake backend; every field is touched on the loop thread only while
 * the device runs, and read by the test after a used-ring entry (whose
 * index the device publishes with release semantics after the send). */
static struct fake_be {
	struct net_backend base; /* first: net_backend_init fills it */
	bool vnet;
	unsigned offloads;
	int send_ret;                                   /* what send returns */
	unsigned nsend;                                 /* calls, all returns */
	unsigned nsent;                                 /* frames taken (returned 0) */
	uint8_t sent[8][VIRTIO_NET_FRAME_BUF / 8 + 64]; /* the first frames taken */
	size_t sent_len[8];
	unsigned sent_iovcnt[8];
	unsigned rx_ready; /* net_backend_rx_ready calls */
	int set_offloads_ret;
	unsigned nset; /* net_backend_set_offloads calls */
	unsigned offloads_set;
	bool closed;
	unsigned refill;         /* for send_hook */
	void (*send_hook)(void); /* called at each send, on the loop */
} fb;

static int fake_send(struct net_backend *be, const struct iovec *iov, unsigned iovcnt, size_t len)
{
	size_t off = 0;

	fb.nsend++;
	if (fb.send_hook)
		fb.send_hook();
	if (fb.send_ret)
		return fb.send_ret;
	if (fb.nsent < 8) {
		for (unsigned i = 0; i < iovcnt; i++) {
			if (off + iov[i].iov_len <= sizeof(fb.sent[0]))
				memcpy(fb.sent[fb.nsent] + off, iov[i].iov_base, iov[i].iov_len);
			off += iov[i].iov_len;
		}
		ck_assert_uint_eq(off, len);
		fb.sent_len[fb.nsent] = len;
		fb.sent_iovcnt[fb.nsent] = iovcnt;
	}
	__atomic_store_n(&fb.nsent, fb.nsent + 1, __ATOMIC_RELEASE);
	return 0;
}

static void fake_rx_ready(struct net_backend *be)
{
	__atomic_add_fetch(&fb.rx_ready, 1, __ATOMIC_RELEASE);
}

static int fake_set_offloads(struct net_backend *be, unsigned offloads)
{
	fb.nset++;
	if (fb.set_offloads_ret)
		return fb.set_offloads_ret;
	fb.offloads_set = offloads;
	return 0;
}

static void fake_close(struct net_backend *be)
{
	fb.closed = true;
}

static const struct net_backend_ops fake_be_ops = {
	.send = fake_send,
	.rx_ready = fake_rx_ready,
	.set_offloads = fake_set_offloads,
	.close = fake_close,
};

static int fake_open(struct net_backend **out, const struct net_backend_opts *opts,
		     struct evloop *loop, const struct net_peer_ops *peer, void *peer_opaque)
{
	net_backend_init(&fb.base, &fake_be_ops, opts, loop, peer, peer_opaque);
	fb.base.vnet_hdr = fb.vnet;
	fb.base.offloads = fb.offloads;
	*out = &fb.base;
	return 0;
}

static struct virtio_net *nd;
static struct td_dev d;

static void setup(void)
{
	log_threshold = LOG_ERR; /* guest mistakes are logged as warnings */
	memset(&fb, 0, sizeof(fb));
	memset(&td_cfg, 0, sizeof(td_cfg));
	td_cfg.cpus = 1;
	td_vm_setup();
	nd = NULL;
}

static void teardown(void)
{
	virtio_net_free(nd);
	if (nd)
		ck_assert(fb.closed);
	td_vm_teardown();
}

/* Create the device on a fake backend with a vnet header (vnet) and
 * (offloads), link up or not, and find its PCI function. */
static inline void start(bool vnet, unsigned offloads, bool link_up)
{
	struct net_backend_opts opts = { .mode = NET_MODE_USER, .name = "net0" };

	memcpy(opts.mac, test_mac, 6);
	fb.vnet = vnet;
	fb.offloads = offloads;
	ck_assert_int_eq(virtio_net_new(&nd, &td_vm, &opts, link_up, fake_open), 0);
	td_probe(&d, NET_PCI_ID, 0);
}

/* --- the backend's side, on the loop thread ------------------------------- */

struct rx_call {
	const void *frame;
	size_t len;
	bool ok;
};

static int loop_receive(void *arg)
{
	struct rx_call *c = arg;
	struct iovec iov[2];
	size_t half = c->len / 2;

	/* Two pieces, as a backend reading a header and a body may hand it. */
	iov[0] = (struct iovec){ (void *)c->frame, half };
	iov[1] = (struct iovec){ (uint8_t *)c->frame + half, c->len - half };
	fb.base.peer->receive(fb.base.peer_opaque, iov, 2, c->len);
	return 0;
}

static int loop_can_receive(void *arg)
{
	struct rx_call *c = arg;

	c->ok = fb.base.peer->can_receive(fb.base.peer_opaque);
	return 0;
}

static int loop_tx_ready(void *arg)
{
	fb.base.peer->tx_ready(fb.base.peer_opaque);
	return 0;
}

static int loop_link(void *arg)
{
	fb.base.peer->link_changed(fb.base.peer_opaque, *(bool *)arg);
	return 0;
}

/* The backend hands (len) bytes of (frame) to the device. */
static inline void be_receive(const void *frame, size_t len)
{
	struct rx_call c = { frame, len, false };

	ck_assert_int_eq(evloop_call(td_vm.io, loop_receive, &c), 0);
}

static inline bool be_can_receive(void)
{
	struct rx_call c = { 0 };

	ck_assert_int_eq(evloop_call(td_vm.io, loop_can_receive, &c), 0);
	return c.ok;
}

static inline void be_tx_ready(void)
{
	ck_assert_int_eq(evloop_call(td_vm.io, loop_tx_ready, NULL), 0);
}

static inline void be_link(bool up)
{
	ck_assert_int_eq(evloop_call(td_vm.io, loop_link, &up), 0);
}

/* The driver: features (f), both queues of QSIZE, DRIVER_OK; returns once
 * the device served it. The backend asked can_receive before (no: no
 * driver), so DRIVER_OK brings exactly one rx_ready, whichever queue's
 * first kick the loop serves first; the count starts at 0 afterwards. */
static inline void drive(uint64_t f)
{
	td_set_status(&d, 0);
	ck_assert(!be_can_receive());
	td_init(&d, f, 2, QSIZE);
	for (unsigned t = 0; __atomic_load_n(&fb.rx_ready, __ATOMIC_ACQUIRE) == 0; t++) {
		ck_assert_uint_lt(t, TD_TIMEOUT_MS);
		td_sleep_ms(1);
	}
	ck_assert(be_can_receive());
	__atomic_store_n(&fb.rx_ready, 0, __ATOMIC_RELEASE);
}

/* Run something on the loop and back: whatever the loop was doing (a kick
 * being served) is done when this returns. */
static int loop_nop(void *arg)
{
	return 0;
}

static inline void loop_sync(void)
{
	ck_assert_int_eq(evloop_call(td_vm.io, loop_nop, NULL), 0);
}

static inline struct virtio_net_stats stats(void)
{
	struct virtio_net_stats s;

	virtio_dev_lock(nd->vdev);
	s = nd->stats;
	virtio_dev_unlock(nd->vdev);
	return s;
}

/* --- frames and chains ------------------------------------------------------ */

/* An Ethernet frame of (len) bytes: dst, src, type 0x0800, then a pattern
 * from (seed). */
static inline void make_frame(uint8_t *f, size_t len, unsigned seed)
{
	memset(f, 0xff, 6);
	memcpy(f + 6, test_mac, 6);
	f[12] = 0x08;
	f[13] = 0x00;
	for (size_t i = 14; i < len; i++)
		f[i] = (uint8_t)(seed * 31 + i * 7 + (i >> 8));
}

/* A tx chain: the header (hdr) and (flen) bytes of (frame), split into
 * (nbufs) readable buffers at arbitrary points (1: one buffer for both). */
static inline uint16_t tx_add(const struct virtio_net_hdr *hdr, const uint8_t *frame, size_t flen,
			      unsigned nbufs)
{
	size_t total = HDR + flen, off = 0;
	uint64_t gpa = td_alloc(total);
	struct td_buf b[8];

	ck_assert_uint_le(nbufs, 8);
	memcpy(td_hva(gpa), hdr, HDR);
	memcpy(td_hva(gpa + HDR), frame, flen);
	for (unsigned i = 0; i < nbufs; i++) {
		size_t len = i + 1 < nbufs ? (i == 0 ? 5 : (total - off) / 2) : total - off;

		b[i] = (struct td_buf){ gpa + off, (uint32_t)len, false };
		off += len;
	}
	return td_add(&d, TXQ, b, nbufs);
}

/* Wait for the next used entry of (q): it must be (head), with (len). */
static inline void expect_used(unsigned q, uint16_t head, uint32_t len)
{
	uint32_t id, l;

	ck_assert_msg(td_wait_used(&d, q, 1), "queue %u: no used entry", q);
	td_next_used(&d, q, &id, &l);
	ck_assert_uint_eq(id, head);
	ck_assert_uint_eq(l, len);
}

/* An rx chain of one writable buffer of (len) bytes; its address in *gpa. */
static inline uint16_t rx_add(uint32_t len, uint64_t *gpa)
{
	struct td_buf b = { td_alloc(len), len, true };

	if (gpa)
		*gpa = b.gpa;
	return td_add(&d, RXQ, &b, 1);
}

static inline struct virtio_net_hdr hdr_at(uint64_t gpa)
{
	struct virtio_net_hdr h;

	memcpy(&h, td_hva(gpa), sizeof(h));
	return h;
}

#endif
