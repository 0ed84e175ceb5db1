/* Unit tests of the virtio-net device (src/devices/virtio_net*.c), the
 * driver played from the host side over a fake backend: features and
 * configuration, offload negotiation, the transmit path (with and without a
 * vnet header, software checksums, malformed chains, -EAGAIN and
 * tx_ready, kicks kept off while the guest sends), the link status, the
 * default MAC and the counters. */
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include "virtio_net_fixture.h"

#include "kvisor/device.h"
#include "kvisor/pci.h"
#include "kvisor/vm.h"

static uint64_t device_features(void)
{
	return td_device_features(&d);
}

/* Offloads are offered only as far as the backend takes them. */
START_TEST(test_features_plain)
{
	uint8_t cfg[10];

	start(false, 0, true);
	ck_assert_uint_eq(device_features(),
			  F_V1 | F_EVT | (1ULL << VIRTIO_F_INDIRECT_DESC) | F_MAC | F_STAT | F_MRG);
	ck_assert_uint_eq(td_cfg_read(d.slot, PCI_CFG_CLASS - 1, 4) >> 8, VIRTIO_PCI_CLASS_NET);
	ck_assert_uint_eq(td_common_read(&d, VIRTIO_PCI_COMMON_NUMQ, 2), 2);
	ck_assert_uint_ge(d.device_len, sizeof(cfg));
	for (unsigned i = 0; i < sizeof(cfg); i++)
		cfg[i] = (uint8_t)td_mmio_read(d.device + i, 1);
	ck_assert_mem_eq(cfg, test_mac, 6);
	ck_assert_uint_eq(cfg[6] | cfg[7] << 8, VIRTIO_NET_S_LINK_UP);
	ck_assert_uint_eq(cfg[8] | cfg[9] << 8, 1); /* max_virtqueue_pairs */
}
END_TEST

START_TEST(test_features_offloads)
{
	uint64_t all = F_CSUM | F_GCSUM | F_HTSO4 | F_GTSO4 | F_HTSO6 | F_GTSO6 | F_HECN | F_GECN |
		       F_HUFO | F_GUFO;

	start(true, OFF_ALL, false);
	ck_assert_uint_eq(device_features() & all, all);
	ck_assert_uint_eq(td_mmio_read(d.device + 6, 2), 0); /* link=down */
}
END_TEST

/* Dependencies of 5.1.3.1: no TSO/UFO/ECN without the checksum offload,
 * no ECN without TSO. */
START_TEST(test_features_dependencies)
{
	start(true, NET_OFFLOAD_TSO4 | NET_OFFLOAD_UFO | NET_OFFLOAD_ECN, true);
	ck_assert_uint_eq(device_features() & (F_CSUM | F_HTSO4 | F_HUFO | F_HECN | F_GTSO4), 0);
}
END_TEST

START_TEST(test_features_ecn_needs_tso)
{
	start(true, NET_OFFLOAD_CSUM | NET_OFFLOAD_UFO | NET_OFFLOAD_ECN, true);
	ck_assert_uint_eq(device_features() & (F_HECN | F_GECN), 0);
	ck_assert_uint_eq(device_features() & (F_HUFO | F_GUFO), F_HUFO | F_GUFO);
}
END_TEST

/* After DRIVER_OK the backend hears what the guest takes on receive; a
 * driver that ignores the dependencies gets a consistent subset. */
START_TEST(test_offload_negotiation)
{
	start(true, OFF_ALL, true);
	drive(F_V1 | F_MRG | F_GCSUM | F_GTSO4 | F_GECN | F_HTSO6 | F_CSUM);
	ck_assert_uint_eq(fb.nset, 1);
	ck_assert_uint_eq(fb.offloads_set, NET_OFFLOAD_CSUM | NET_OFFLOAD_TSO4 | NET_OFFLOAD_ECN);
	drive(F_V1 | F_GTSO4 | F_GUFO); /* no GUEST_CSUM: nothing */
	ck_assert_uint_eq(fb.nset, 2);
	ck_assert_uint_eq(fb.offloads_set, 0);
	drive(F_V1 | F_GCSUM | F_GUFO | F_GECN); /* ECN without TSO: dropped */
	ck_assert_uint_eq(fb.offloads_set, NET_OFFLOAD_CSUM | NET_OFFLOAD_UFO);
}
END_TEST

/* A backend refusing the offloads falls back to plain frames. */
START_TEST(test_offload_refused)
{
	start(true, OFF_ALL, true);
	fb.set_offloads_ret = -EIO;
	drive(F_V1 | F_GCSUM);
	ck_assert_uint_eq(fb.nset, 2);
	ck_assert(be_can_receive());
}
END_TEST

/* Without a vnet header the backend gets the bare frame, as iovecs over the
 * guest's buffers, whatever their split. */
START_TEST(test_tx_plain)
{
	struct virtio_net_hdr h = { 0 };
	uint8_t f[3][1514];
	uint16_t head[3];
	struct virtio_net_stats s;

	start(false, 0, true);
	drive(F_V1 | F_MRG);
	make_frame(f[0], 60, 1);
	make_frame(f[1], 1514, 2);
	make_frame(f[2], 14, 3);
	head[0] = tx_add(&h, f[0], 60, 1);
	head[1] = tx_add(&h, f[1], 1514, 3);
	head[2] = tx_add(&h, f[2], 14, 2);
	td_kick(&d, TXQ);
	for (unsigned i = 0; i < 3; i++)
		expect_used(TXQ, head[i], 0);
	ck_assert_uint_eq(fb.nsent, 3);
	ck_assert_uint_eq(fb.sent_len[0], 60);
	ck_assert_mem_eq(fb.sent[0], f[0], 60);
	ck_assert_uint_eq(fb.sent_iovcnt[0], 1);
	ck_assert_uint_eq(fb.sent_len[1], 1514);
	ck_assert_mem_eq(fb.sent[1], f[1], 1514);
	ck_assert_uint_eq(fb.sent_iovcnt[1], 2); /* 5 + 764 bytes: header and 2 frame pieces */
	ck_assert_uint_eq(fb.sent_len[2], 14);
	ck_assert_mem_eq(fb.sent[2], f[2], 14);
	s = stats();
	ck_assert_uint_eq(s.tx_frames, 3);
	ck_assert_uint_eq(s.tx_bytes, 60 + 1514 + 14);
	ck_assert_uint_eq(td_irqs(TXQ + 1), 1); /* one interrupt for the pass */
}
END_TEST

/* With a vnet header the backend gets the guest's header (num_buffers
 * cleared) and the frame; offloads it takes pass through untouched. */
START_TEST(test_tx_vnet)
{
	struct virtio_net_hdr h = {
		.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
		.gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
		.hdr_len = htole16(54),
		.gso_size = htole16(1448),
		.csum_start = htole16(34),
		.csum_offset = htole16(16),
		.num_buffers = htole16(7),
	};
	struct virtio_net_hdr got;
	uint8_t f[3000];
	uint16_t head;

	start(true, OFF_ALL, true);
	drive(F_V1 | F_CSUM | F_HTSO4);
	make_frame(f, sizeof(f), 4);
	head = tx_add(&h, f, sizeof(f), 4);
	td_kick(&d, TXQ);
	expect_used(TXQ, head, 0);
	ck_assert_uint_eq(fb.nsent, 1);
	ck_assert_uint_eq(fb.sent_len[0], HDR + sizeof(f));
	memcpy(&got, fb.sent[0], HDR);
	h.num_buffers = 0;
	ck_assert_mem_eq(&got, &h, HDR);
	ck_assert_mem_eq(fb.sent[0] + HDR, f, sizeof(f));
	ck_assert_uint_eq(stats().tx_bytes, sizeof(f));
}
END_TEST

/* An IPv4/UDP frame with a partial checksum as Linux leaves it: the
 * pseudo-header sum, not inverted, in the checksum field. */
static size_t udp_frame(uint8_t *f, size_t payload, struct virtio_net_hdr *h)
{
	size_t udp_len = 8 + payload, len = 14 + 20 + udp_len;
	uint32_t ps = 0;

	make_frame(f, len, 5);
	f[14] = 0x45;
	f[23] = 17; /* protocol UDP */
	memcpy(f + 26, (uint8_t[]){ 10, 0, 2, 15, 10, 0, 2, 2 }, 8);
	f[38] = (uint8_t)(udp_len >> 8);
	f[39] = (uint8_t)udp_len;
	ps = virtio_net_csum_add(0, f + 26, 8);
	ps = virtio_net_csum_add(ps,
				 (uint8_t[]){ 0, 17, (uint8_t)(udp_len >> 8), (uint8_t)udp_len },
				 4);
	f[40] = (uint8_t)(ps >> 8);
	f[41] = (uint8_t)ps;
	memset(h, 0, sizeof(*h));
	h->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	h->csum_start = htole16(34);
	h->csum_offset = htole16(6);
	return len;
}

/* The receiver's check: pseudo-header plus segment sum to 0xffff. */
static bool udp_csum_ok(const uint8_t *f, size_t len)
{
	size_t udp_len = len - 34;
	uint32_t s = virtio_net_csum_add(0, f + 26, 8);

	s = virtio_net_csum_add(s, (uint8_t[]){ 0, 17, (uint8_t)(udp_len >> 8), (uint8_t)udp_len },
				4);
	s = virtio_net_csum_add(s, f + 34, udp_len);
	return s == 0xffff && (f[40] | f[41]);
}

/* A guest that sets NEEDS_CSUM towards a backend without the checksum
 * offload gets its checksum completed; offsets out of the frame, and GSO
 * nobody can take, drop the frame. */
START_TEST(test_tx_csum_software)
{
	struct virtio_net_hdr h, got;
	uint8_t f[200];
	size_t len = udp_frame(f, 77, &h); /* odd length */
	uint16_t head[5];
	struct virtio_net_stats s;

	start(true, 0, true); /* a vnet header, but no offloads */
	drive(F_V1);
	ck_assert(!udp_csum_ok(f, len));
	head[0] = tx_add(&h, f, len, 3);
	h.csum_offset = htole16((uint16_t)(len - 34 - 1)); /* field's 2nd byte past the end */
	head[1] = tx_add(&h, f, len, 1);
	h.csum_start = htole16(0xffff);
	h.csum_offset = htole16(0xffff);
	head[2] = tx_add(&h, f, len, 1);
	memset(&h, 0, sizeof(h));
	h.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
	head[3] = tx_add(&h, f, len, 1);
	h.gso_type = VIRTIO_NET_HDR_GSO_ECN; /* ECN without GSO: nonsense */
	head[4] = tx_add(&h, f, len, 1);
	td_kick(&d, TXQ);
	for (unsigned i = 0; i < 5; i++)
		expect_used(TXQ, head[i], 0);
	ck_assert_uint_eq(fb.nsent, 1);
	ck_assert_uint_eq(fb.sent_len[0], HDR + len);
	memcpy(&got, fb.sent[0], HDR);
	ck_assert_uint_eq(got.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM, 0);
	ck_assert(udp_csum_ok(fb.sent[0] + HDR, len));
	ck_assert_mem_eq(fb.sent[0] + HDR, f, 40); /* only the checksum changed */
	ck_assert_mem_eq(fb.sent[0] + HDR + 42, f + 42, len - 42);
	s = stats();
	ck_assert_uint_eq(s.tx_dropped_offload, 4);
	ck_assert_uint_eq(s.tx_frames, 1);
}
END_TEST

/* The same without a vnet header: the bare frame, checksum completed. */
START_TEST(test_tx_csum_plain_backend)
{
	struct virtio_net_hdr h;
	uint8_t f[200];
	size_t len = udp_frame(f, 100, &h);
	uint16_t head;

	start(false, 0, true);
	drive(F_V1);
	head = tx_add(&h, f, len, 2);
	td_kick(&d, TXQ);
	expect_used(TXQ, head, 0);
	ck_assert_uint_eq(fb.nsent, 1);
	ck_assert_uint_eq(fb.sent_len[0], len);
	ck_assert(udp_csum_ok(fb.sent[0], len));
}
END_TEST

/* Chains too short for header + Ethernet header, longer than header +
 * NET_FRAME_MAX, or with a writable buffer: each is pushed back unused and
 * counted; the queue goes on. */
START_TEST(test_tx_malformed)
{
	static uint8_t big[HDR + NET_FRAME_MAX + 1];
	struct virtio_net_hdr h = { 0 };
	uint8_t f[64];
	uint64_t gpa = td_alloc(sizeof(big));
	uint16_t head[6];
	struct td_buf wo[2];

	start(false, 0, true);
	drive(F_V1);
	make_frame(f, sizeof(f), 6);
	head[0] = tx_add(&h, f, 13, 1);                                   /* one byte short */
	head[1] = td_add(&d, TXQ, &(struct td_buf){ gpa, 11, false }, 1); /* no header */
	memcpy(td_hva(gpa), big, sizeof(big));
	head[2] = td_add(&d, TXQ, &(struct td_buf){ gpa, sizeof(big), false }, 1);
	wo[0] = (struct td_buf){ td_alloc(HDR), HDR, false };
	wo[1] = (struct td_buf){ td_alloc(64), 64, true }; /* device-writable */
	head[3] = td_add(&d, TXQ, wo, 2);
	head[4] = tx_add(&h, f, sizeof(f), 2); /* a good one after them */
	head[5] = td_add(&d, TXQ, &(struct td_buf){ gpa, HDR + NET_FRAME_MAX, false }, 1);
	td_kick(&d, TXQ);
	for (unsigned i = 0; i < 6; i++)
		expect_used(TXQ, head[i], 0);
	ck_assert_uint_eq(fb.nsent, 2); /* the good one and the largest frame */
	ck_assert_mem_eq(fb.sent[0], f, sizeof(f));
	ck_assert_uint_eq(fb.sent_len[1], NET_FRAME_MAX);
	ck_assert_uint_eq(stats().tx_dropped_malformed, 4);
	ck_assert_uint_eq(td_status(&d) & VIRTIO_STATUS_NEEDS_RESET, 0);
}
END_TEST

/* A frame in more buffers than the device hands as iovecs is copied. */
START_TEST(test_tx_many_buffers)
{
	uint64_t gpa = td_alloc(HDR + 200);
	struct td_buf b[VIRTIO_NET_TX_IOV_MAX + 2];
	uint8_t f[200];
	uint16_t head;

	start(false, 0, true);
	drive(F_V1 | F_IND);
	make_frame(f, sizeof(f), 7);
	memset(td_hva(gpa), 0, HDR);
	memcpy(td_hva(gpa + HDR), f, sizeof(f));
	b[0] = (struct td_buf){ gpa, HDR, false };
	for (unsigned i = 1; i < VIRTIO_NET_TX_IOV_MAX + 2; i++)
		b[i] = (struct td_buf){ gpa + HDR + (i - 1) * 2,
					i + 1 < VIRTIO_NET_TX_IOV_MAX + 2 ? 2 : 200 - 2 * (i - 1),
					false };
	head = td_add_indirect(&d, TXQ, b, VIRTIO_NET_TX_IOV_MAX + 2);
	td_kick(&d, TXQ);
	expect_used(TXQ, head, 0);
	ck_assert_uint_eq(fb.nsent, 1);
	ck_assert_uint_eq(fb.sent_iovcnt[0], 1);
	ck_assert_mem_eq(fb.sent[0], f, sizeof(f));
}
END_TEST

/* -EAGAIN: the device keeps that one frame (the chain goes back to the
 * guest), takes nothing more from the ring until tx_ready, then sends the
 * kept frame first and the rest in order. */
START_TEST(test_tx_eagain)
{
	struct virtio_net_hdr h = { 0 };
	uint8_t f[3][100];
	uint16_t head[3];

	start(false, 0, true);
	drive(F_V1);
	fb.send_ret = -EAGAIN;
	for (unsigned i = 0; i < 3; i++) {
		make_frame(f[i], sizeof(f[i]), 10 + i);
		head[i] = tx_add(&h, f[i], sizeof(f[i]), 2);
	}
	td_kick(&d, TXQ);
	expect_used(TXQ, head[0], 0);
	loop_sync();
	ck_assert_uint_eq(fb.nsend, 1);
	ck_assert_uint_eq(td_used_idx(&d, TXQ), 1); /* the others stay in the ring */
	td_kick(&d, TXQ);                           /* a kick changes nothing while blocked */
	loop_sync();
	ck_assert_uint_eq(fb.nsend, 1);
	fb.send_ret = 0;
	be_tx_ready();
	expect_used(TXQ, head[1], 0);
	expect_used(TXQ, head[2], 0);
	ck_assert_uint_eq(fb.nsent, 3);
	for (unsigned i = 0; i < 3; i++)
		ck_assert_mem_eq(fb.sent[i], f[i], sizeof(f[i]));
	ck_assert_uint_eq(stats().tx_frames, 3);
	ck_assert_uint_eq(stats().tx_dropped_backend, 0);
}
END_TEST

/* Errors other than -EAGAIN drop the frame and count it. */
START_TEST(test_tx_backend_error)
{
	struct virtio_net_hdr h = { 0 };
	uint8_t f[100];
	uint16_t head;

	start(false, 0, true);
	drive(F_V1);
	fb.send_ret = -EMSGSIZE;
	make_frame(f, sizeof(f), 1);
	head = tx_add(&h, f, sizeof(f), 1);
	td_kick(&d, TXQ);
	expect_used(TXQ, head, 0);
	ck_assert_uint_eq(stats().tx_dropped_backend, 1);
	ck_assert_uint_eq(stats().tx_frames, 0);
}
END_TEST

/* A guest that keeps the ring full while the device drains it: each pass
 * stops after VIRTIO_NET_TX_BUDGET chains and goes on from the device's own
 * kick (the guest does not kick again: notifications are off meanwhile). */
static uint8_t budget_frame[60];

static void budget_refill(void)
{
	static const struct virtio_net_hdr h;

	/* On the loop, inside a pass: the test thread only waits meanwhile. */
	if (fb.refill && (uint16_t)(d.q[TXQ].avail_idx - td_used_idx(&d, TXQ)) < QSIZE) {
		fb.refill--;
		tx_add(&h, budget_frame, sizeof(budget_frame), 1);
	}
}

START_TEST(test_tx_budget)
{
	struct virtio_net_hdr h = { 0 };
	unsigned total = QSIZE + 3 * VIRTIO_NET_TX_BUDGET;

	start(false, 0, true);
	drive(F_V1);
	make_frame(budget_frame, sizeof(budget_frame), 1);
	for (unsigned i = 0; i < QSIZE; i++)
		tx_add(&h, budget_frame, sizeof(budget_frame), 1);
	fb.refill = total - QSIZE;
	fb.send_hook = budget_refill;
	td_kick(&d, TXQ);
	for (unsigned t = 0; __atomic_load_n(&fb.nsent, __ATOMIC_ACQUIRE) < total; t++) {
		ck_assert_uint_lt(t, TD_TIMEOUT_MS);
		td_sleep_ms(1);
	}
	loop_sync();
	ck_assert_uint_eq(fb.nsent, total);
	ck_assert_uint_eq(fb.refill, 0);
}
END_TEST

/* A guest whose next frame answers the backend, as a TCP sender's next
 * segment answers the NAT's ACK: each send makes the backend write an
 * eventfd on the loop, whose callback adds the next chain the way a driver
 * does (a kick only when the device has not set NO_NOTIFY), after the pass
 * that sent the frame. The device must keep kicks off while the guest is
 * busy: one kick for the whole stream (the test's first), and kicks on
 * again once the ring stays empty. */
static struct {
	int efd;
	unsigned left, kicks;
} clocked;

static void clocked_send_hook(void)
{
	uint64_t one = 1;

	if (clocked.left)
		ck_assert_int_eq(write(clocked.efd, &one, sizeof(one)), sizeof(one));
}

static void clocked_answer(void *opaque, uint32_t events)
{
	static const struct virtio_net_hdr h;
	uint64_t v;

	ck_assert_int_eq(read(clocked.efd, &v, sizeof(v)), sizeof(v));
	clocked.left--;
	tx_add(&h, budget_frame, sizeof(budget_frame), 1);
	if (!(td_used_flags(&d, TXQ) & 1)) {
		clocked.kicks++;
		td_kick(&d, TXQ);
	}
}

START_TEST(test_tx_kicks_suppressed)
{
	struct virtio_net_hdr h = { 0 };
	const unsigned n = 100;

	start(false, 0, true);
	drive(F_V1);
	make_frame(budget_frame, sizeof(budget_frame), 1);
	clocked.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ck_assert_int_ge(clocked.efd, 0);
	clocked.left = n - 1;
	clocked.kicks = 0;
	ck_assert_int_eq(evloop_add(td_vm.io, clocked.efd, EPOLLIN, clocked_answer, NULL), 0);
	fb.send_hook = clocked_send_hook;
	tx_add(&h, budget_frame, sizeof(budget_frame), 1);
	td_kick(&d, TXQ);
	for (unsigned t = 0; __atomic_load_n(&fb.nsent, __ATOMIC_ACQUIRE) < n; t++) {
		ck_assert_uint_lt(t, TD_TIMEOUT_MS);
		td_sleep_ms(1);
	}
	/* The pass after the last frame finds nothing: kicks are on again. */
	for (unsigned t = 0; td_used_flags(&d, TXQ) & 1; t++) {
		ck_assert_uint_lt(t, TD_TIMEOUT_MS);
		td_sleep_ms(1);
	}
	ck_assert_int_eq(evloop_del(td_vm.io, clocked.efd), 0);
	close(clocked.efd);
	ck_assert_uint_eq(clocked.left, 0);
	ck_assert_uint_eq(clocked.kicks, 0);
	ck_assert_uint_eq(td_used_idx(&d, TXQ), n);
	ck_assert_uint_eq(stats().tx_frames, n);
	/* Idle now: the next frame needs a kick, and gets served. */
	fb.send_hook = NULL;
	tx_add(&h, budget_frame, sizeof(budget_frame), 1);
	td_kick(&d, TXQ);
	for (unsigned t = 0; td_used_idx(&d, TXQ) != n + 1; t++) {
		ck_assert_uint_lt(t, TD_TIMEOUT_MS);
		td_sleep_ms(1);
	}
}
END_TEST

static uint8_t generation(void)
{
	return (uint8_t)td_common_read(&d, VIRTIO_PCI_COMMON_CFGGEN, 1);
}

/* The backend's link_changed: status field, a new configuration
 * generation and a configuration interrupt; frames both ways are dropped
 * and counted while the link is down. */
START_TEST(test_link_changed)
{
	struct virtio_net_hdr h = { 0 };
	uint8_t f[100];
	uint8_t g;
	uint16_t head;
	struct virtio_net_stats s;

	start(false, 0, true);
	drive(F_V1 | F_STAT);
	g = generation();
	be_link(false);
	ck_assert_uint_eq(td_mmio_read(d.device + 6, 2), 0);
	ck_assert_uint_eq(generation(), (uint8_t)(g + 1));
	ck_assert_uint_eq(td_irqs(0), 1);
	ck_assert_uint_eq(td_mmio_read(d.isr, 1), VIRTIO_PCI_ISR_CONFIG);
	be_link(false); /* no change, no notification */
	ck_assert_uint_eq(generation(), (uint8_t)(g + 1));
	make_frame(f, sizeof(f), 1);
	head = tx_add(&h, f, sizeof(f), 1);
	td_kick(&d, TXQ);
	expect_used(TXQ, head, 0);
	rx_add(1600, NULL);
	td_kick(&d, RXQ);
	ck_assert(be_can_receive());
	be_receive(f, sizeof(f));
	s = stats();
	ck_assert_uint_eq(s.tx_dropped_link_down, 1);
	ck_assert_uint_eq(s.rx_dropped_link_down, 1);
	ck_assert_uint_eq(fb.nsent, 0);
	ck_assert_uint_eq(td_used_idx(&d, RXQ), 0);
	be_link(true);
	ck_assert_uint_eq(td_mmio_read(d.device + 6, 2), VIRTIO_NET_S_LINK_UP);
	ck_assert_uint_eq(generation(), (uint8_t)(g + 2));
	be_receive(f, sizeof(f));
	ck_assert(td_wait_used(&d, RXQ, 1));
}
END_TEST

/* Stable across calls (and boots), locally administered unicast, distinct
 * per index and per name. */
START_TEST(test_default_mac)
{
	uint8_t m[VIRTIO_NET_MAX_DEVICES][6], a[6], b[6];

	virtio_net_default_mac(NULL, 0, a);
	virtio_net_default_mac("kvisor", 0, b);
	ck_assert_mem_eq(a, b, 6);
	/* The value itself is part of the contract: a guest's DHCP lease and
	 * its interface configuration follow it from boot to boot. */
	ck_assert_mem_eq(a, ((uint8_t[]){ 0xe2, 0xe0, 0x10, 0xf9, 0x65, 0x7a }), 6);
	for (unsigned i = 0; i < VIRTIO_NET_MAX_DEVICES; i++) {
		virtio_net_default_mac("web1", i, m[i]);
		virtio_net_default_mac("web1", i, a);
		ck_assert_mem_eq(a, m[i], 6);
		ck_assert_uint_eq(m[i][0] & 0x03, 0x02);
		for (unsigned k = 0; k < i; k++)
			ck_assert_mem_ne(m[i], m[k], 6);
	}
	virtio_net_default_mac("web2", 0, a);
	ck_assert_mem_ne(a, m[0], 6);
}
END_TEST

/* The control plane's getter finds the device by id among the VM's. */
START_TEST(test_stats_getter)
{
	struct device dn = { .type = &virtio_net_type, .id = "net0" };
	struct device ds = { .type = &serial8250_type, .id = "serial0", .next = &dn };
	struct virtio_net_stats s;
	struct virtio_net_hdr h = { 0 };
	uint8_t f[100];

	start(false, 0, true);
	dn.state = nd;
	td_vm.devices = &ds;
	drive(F_V1);
	make_frame(f, sizeof(f), 1);
	tx_add(&h, f, sizeof(f), 1);
	td_kick(&d, TXQ);
	ck_assert(td_wait_used(&d, TXQ, 1));
	ck_assert_int_eq(virtio_net_stats(&td_vm, "net0", &s), 0);
	ck_assert_uint_eq(s.tx_frames, 1);
	ck_assert_uint_eq(s.tx_bytes, 100);
	ck_assert_int_eq(virtio_net_stats(&td_vm, "net1", &s), -ENOENT);
	ck_assert_int_eq(virtio_net_stats(&td_vm, "serial0", &s), -EINVAL);
	td_vm.devices = NULL;
}
END_TEST

static Suite *unit_suite(void)
{
	Suite *s = suite_create("virtio_net");
	TCase *tc = tcase_create("device");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_features_plain);
	tcase_add_test(tc, test_features_offloads);
	tcase_add_test(tc, test_features_dependencies);
	tcase_add_test(tc, test_features_ecn_needs_tso);
	tcase_add_test(tc, test_offload_negotiation);
	tcase_add_test(tc, test_offload_refused);
	tcase_add_test(tc, test_tx_plain);
	tcase_add_test(tc, test_tx_vnet);
	tcase_add_test(tc, test_tx_csum_software);
	tcase_add_test(tc, test_tx_csum_plain_backend);
	tcase_add_test(tc, test_tx_malformed);
	tcase_add_test(tc, test_tx_many_buffers);
	tcase_add_test(tc, test_tx_eagain);
	tcase_add_test(tc, test_tx_backend_error);
	tcase_add_test(tc, test_tx_budget);
	tcase_add_test(tc, test_tx_kicks_suppressed);
	tcase_add_test(tc, test_link_changed);
	tcase_add_test(tc, test_default_mac);
	tcase_add_test(tc, test_stats_getter);
	suite_add_tcase(s, tc);
	return s;
}

#include "unit.h"
