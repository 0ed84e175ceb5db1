/* Unit tests of virtio-net's receive path (src/devices/virtio_net_rx.c):
 * single and mergeable buffers, vnet headers from the backend, the one
 * frame kept while the ring is full (backpressure, no growth, rx_ready),
 * frames before DRIVER_OK and across a reset, and a VM pause. */
#include "virtio_net_fixture.h"

/* Read (len) bytes of guest memory at (gpa). */
static void guest_read(uint64_t gpa, void *dst, size_t len)
{
	memcpy(dst, td_hva(gpa), len);
}

/* Without MRG_RXBUF: header and frame in one chain (here two buffers),
 * num_buffers 1, the rest of the header zero for a plain backend. */
START_TEST(test_rx_single)
{
	struct td_buf b[2] = { { td_alloc(HDR), HDR, true }, { td_alloc(1514), 1514, true } };
	struct virtio_net_hdr h;
	uint8_t f[1514], got[1514];
	uint16_t head;

	start(false, 0, true);
	drive(F_V1);
	head = td_add(&d, RXQ, b, 2);
	td_kick(&d, RXQ);
	make_frame(f, sizeof(f), 1);
	be_receive(f, sizeof(f));
	expect_used(RXQ, head, HDR + sizeof(f));
	h = hdr_at(b[0].gpa);
	ck_assert_uint_eq(le16toh(h.num_buffers), 1);
	h.num_buffers = 0;
	ck_assert_mem_eq(&h, &(struct virtio_net_hdr){ 0 }, HDR);
	guest_read(b[1].gpa, got, sizeof(f));
	ck_assert_mem_eq(got, f, sizeof(f));
	ck_assert_uint_eq(stats().rx_frames, 1);
	ck_assert_uint_eq(stats().rx_bytes, sizeof(f));
	ck_assert_uint_eq(td_irqs(RXQ + 1), 1);
}
END_TEST

/* A chain too small for a frame drops that frame; the chain stays for the
 * next one, which fits. */
START_TEST(test_rx_single_too_small)
{
	uint8_t f[200], got[60];
	uint64_t gpa;
	uint16_t head;

	start(false, 0, true);
	drive(F_V1);
	head = rx_add(HDR + 100, &gpa);
	td_kick(&d, RXQ);
	make_frame(f, sizeof(f), 2);
	be_receive(f, sizeof(f));
	loop_sync();
	ck_assert_uint_eq(td_used_idx(&d, RXQ), 0);
	ck_assert_uint_eq(stats().rx_dropped_no_buffer, 1);
	ck_assert(be_can_receive());
	be_receive(f, 60);
	expect_used(RXQ, head, HDR + 60);
	guest_read(gpa + HDR, got, 60);
	ck_assert_mem_eq(got, f, 60);
}
END_TEST

/* The 600-byte frame (f) arrived in three mergeable chains of 256 bytes
 * (head, gpa): 256 + 256 + 100 bytes with the header, num_buffers 3. */
static void expect_600_in_three(const uint16_t head[3], const uint64_t gpa[3], const uint8_t *f)
{
	uint8_t got[600];

	expect_used(RXQ, head[0], 256);
	expect_used(RXQ, head[1], 256);
	expect_used(RXQ, head[2], 100);
	ck_assert_uint_eq(le16toh(hdr_at(gpa[0]).num_buffers), 3);
	guest_read(gpa[0] + HDR, got, 244);
	guest_read(gpa[1], got + 244, 256);
	guest_read(gpa[2], got + 500, 100);
	ck_assert_mem_eq(got, f, sizeof(got));
}

/* MRG_RXBUF: a frame spread over as many chains as it needs, num_buffers
 * in the first header, nothing pushed before all are filled. */
START_TEST(test_rx_mergeable)
{
	uint8_t f[600];
	uint64_t gpa[4];
	uint16_t head[4];

	start(false, 0, true);
	drive(F_V1 | F_MRG);
	for (unsigned i = 0; i < 4; i++)
		head[i] = rx_add(256, &gpa[i]);
	td_kick(&d, RXQ);
	make_frame(f, sizeof(f), 3);
	be_receive(f, sizeof(f)); /* 612 bytes with the header */
	expect_600_in_three(head, gpa, f);
	ck_assert_uint_eq(td_irqs(RXQ + 1), 1);
	be_receive(f, 60);
	expect_used(RXQ, head[3], HDR + 60);
	ck_assert_uint_eq(le16toh(hdr_at(gpa[3]).num_buffers), 1);
	ck_assert_uint_eq(stats().rx_frames, 2);
}
END_TEST

/* The largest frame, over 1526-byte buffers as Linux posts them. */
START_TEST(test_rx_mergeable_largest)
{
	static uint8_t f[NET_FRAME_MAX];
	unsigned n = (HDR + NET_FRAME_MAX + 1525) / 1526, seen;
	uint64_t gpa[64];
	uint8_t *got = malloc(NET_FRAME_MAX);

	ck_assert_uint_le(n, QSIZE);
	start(false, 0, true);
	drive(F_V1 | F_MRG);
	for (unsigned i = 0; i < QSIZE; i++)
		rx_add(1526, &gpa[i]);
	td_kick(&d, RXQ);
	make_frame(f, sizeof(f), 4);
	be_receive(f, sizeof(f));
	ck_assert(td_wait_used(&d, RXQ, (uint16_t)n));
	ck_assert_uint_eq(le16toh(hdr_at(gpa[0]).num_buffers), n);
	seen = 0;
	for (unsigned i = 0; i < n; i++) {
		uint32_t id, len;

		td_next_used(&d, RXQ, &id, &len);
		ck_assert_uint_eq(id, i);
		guest_read(gpa[i] + (i ? 0 : HDR), got + seen, len - (i ? 0 : HDR));
		seen += len - (i ? 0 : HDR);
	}
	ck_assert_uint_eq(seen, NET_FRAME_MAX);
	ck_assert_mem_eq(got, f, NET_FRAME_MAX);
	free(got);
}
END_TEST

/* A backend with a vnet header: its header reaches the guest as given
 * (offload flags), with num_buffers set by the device. */
START_TEST(test_rx_vnet_header)
{
	struct virtio_net_hdr h = {
		.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
		.gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
		.hdr_len = htole16(66),
		.gso_size = htole16(1448),
		.csum_start = htole16(34),
		.csum_offset = htole16(16),
		.num_buffers = htole16(99),
	};
	uint8_t frame[HDR + 3000], got[3000];
	uint64_t gpa[2];
	uint16_t head[2];
	struct virtio_net_hdr g;

	start(true, OFF_ALL, true);
	drive(F_V1 | F_MRG | F_GCSUM | F_GTSO4);
	ck_assert_uint_eq(fb.offloads_set, NET_OFFLOAD_CSUM | NET_OFFLOAD_TSO4);
	head[0] = rx_add(2048, &gpa[0]);
	head[1] = rx_add(2048, &gpa[1]);
	td_kick(&d, RXQ);
	memcpy(frame, &h, HDR);
	make_frame(frame + HDR, 3000, 5);
	be_receive(frame, sizeof(frame));
	expect_used(RXQ, head[0], 2048);
	expect_used(RXQ, head[1], HDR + 3000 - 2048);
	g = hdr_at(gpa[0]);
	ck_assert_uint_eq(le16toh(g.num_buffers), 2);
	h.num_buffers = htole16(2);
	ck_assert_mem_eq(&g, &h, HDR);
	guest_read(gpa[0] + HDR, got, 2048 - HDR);
	guest_read(gpa[1], got + 2048 - HDR, 3000 - (2048 - HDR));
	ck_assert_mem_eq(got, frame + HDR, 3000);
	ck_assert_uint_eq(stats().rx_bytes, 3000);
}
END_TEST

/* A mergeable frame that needs more chains than the ring holds waits
 * (the chains it looked at go back unused) until the driver adds one. */
START_TEST(test_rx_mergeable_waits)
{
	uint8_t f[600];
	uint64_t gpa[3];
	uint16_t head[3];

	start(false, 0, true);
	drive(F_V1 | F_MRG);
	head[0] = rx_add(256, &gpa[0]);
	head[1] = rx_add(256, &gpa[1]);
	td_kick(&d, RXQ);
	make_frame(f, sizeof(f), 6);
	be_receive(f, sizeof(f));
	loop_sync();
	ck_assert_uint_eq(td_used_idx(&d, RXQ), 0);
	ck_assert(!be_can_receive());
	ck_assert_uint_eq(fb.rx_ready, 0);
	head[2] = rx_add(256, &gpa[2]);
	td_kick(&d, RXQ);
	expect_600_in_three(head, gpa, f);
	loop_sync();
	ck_assert_uint_eq(fb.rx_ready, 1);
	ck_assert(be_can_receive());
	ck_assert_uint_eq(td_status(&d) & VIRTIO_STATUS_NEEDS_RESET, 0);
}
END_TEST

/* A full ring: can_receive turns false, exactly one frame is kept, frames
 * pushed at the device anyway are dropped and counted (no growth); when
 * buffers come back the kept frame goes first and the backend hears
 * rx_ready once. */
START_TEST(test_rx_backpressure)
{
	uint8_t f[5][100], got[100];
	uint64_t gpa[3];
	uint16_t head[3];
	struct virtio_net_stats s;

	start(false, 0, true);
	drive(F_V1);
	for (unsigned i = 0; i < 5; i++)
		make_frame(f[i], sizeof(f[i]), 20 + i);
	head[0] = rx_add(HDR + 1514, &gpa[0]);
	td_kick(&d, RXQ);
	ck_assert(be_can_receive());
	be_receive(f[0], 100);
	expect_used(RXQ, head[0], HDR + 100);
	ck_assert(be_can_receive()); /* the device learns the ring is empty by trying */
	be_receive(f[1], 100);
	ck_assert(!be_can_receive());
	for (unsigned i = 0; i < 1000; i++)
		be_receive(f[2 + i % 3], 100); /* a backend ignoring can_receive */
	s = stats();
	ck_assert_uint_eq(s.rx_dropped_overrun, 1000);
	ck_assert_uint_eq(s.rx_frames, 1);
	ck_assert_uint_eq(fb.rx_ready, 0);
	head[1] = rx_add(HDR + 1514, &gpa[1]);
	head[2] = rx_add(HDR + 1514, &gpa[2]);
	td_kick(&d, RXQ);
	expect_used(RXQ, head[1], HDR + 100);
	guest_read(gpa[1] + HDR, got, 100);
	ck_assert_mem_eq(got, f[1], 100);
	loop_sync();
	ck_assert_uint_eq(fb.rx_ready, 1);
	ck_assert(be_can_receive());
	ck_assert_uint_eq(td_used_idx(&d, RXQ), 2); /* only the kept frame */
	be_receive(f[4], 100);
	expect_used(RXQ, head[2], HDR + 100);
	ck_assert_uint_eq(stats().rx_frames, 3);
}
END_TEST

/* Mergeable buffers smaller than the header break the driver's rule: the
 * frame is dropped, the chains go back empty. */
START_TEST(test_rx_mergeable_tiny_buffer)
{
	uint8_t f[100];
	uint16_t head[2];

	start(false, 0, true);
	drive(F_V1 | F_MRG);
	head[0] = rx_add(64, NULL);
	head[1] = rx_add(HDR - 1, NULL);
	td_kick(&d, RXQ);
	make_frame(f, sizeof(f), 7);
	be_receive(f, sizeof(f));
	expect_used(RXQ, head[0], 0);
	expect_used(RXQ, head[1], 0);
	ck_assert_uint_eq(stats().rx_dropped_no_buffer, 1);
	ck_assert_uint_eq(stats().rx_frames, 0);
}
END_TEST

/* Frames out of NET_FRAME_MIN..NET_FRAME_MAX from the backend are dropped. */
START_TEST(test_rx_malformed)
{
	static uint8_t f[HDR + NET_FRAME_MAX + 1];

	start(true, 0, true);
	drive(F_V1 | F_MRG);
	rx_add(1526, NULL);
	td_kick(&d, RXQ);
	be_receive(f, HDR + NET_FRAME_MIN - 1);
	be_receive(f, HDR + NET_FRAME_MAX + 1);
	be_receive(f, 5);
	ck_assert_uint_eq(stats().rx_dropped_malformed, 3);
	ck_assert_uint_eq(td_used_idx(&d, RXQ), 0);
	be_receive(f, HDR + NET_FRAME_MIN);
	expect_used(RXQ, 0, HDR + NET_FRAME_MIN);
}
END_TEST

/* Before DRIVER_OK nothing is taken (can_receive false, frames dropped);
 * DRIVER_OK tells the backend to send again. A reset drops the kept frame
 * and closes the device again. */
START_TEST(test_rx_driver_ready_and_reset)
{
	uint8_t f[100];

	start(false, 0, true);
	make_frame(f, sizeof(f), 8);
	ck_assert(!be_can_receive());
	be_receive(f, sizeof(f));
	ck_assert_uint_eq(stats().rx_dropped_not_ready, 1);
	drive(F_V1);              /* waits for the rx_ready of DRIVER_OK */
	be_receive(f, sizeof(f)); /* no buffers: kept */
	ck_assert(!be_can_receive());
	td_set_status(&d, 0);
	ck_assert_uint_eq(stats().rx_dropped_not_ready, 2);
	ck_assert(!be_can_receive());
	drive(F_V1);
	rx_add(1526, NULL);
	td_kick(&d, RXQ);
	loop_sync();
	ck_assert_uint_eq(td_used_idx(&d, RXQ), 0); /* the old frame is gone */
	be_receive(f, sizeof(f));
	expect_used(RXQ, 0, HDR + sizeof(f));
}
END_TEST

/* A VM pause: nothing touches guest memory (a frame is kept aside even
 * with buffers in the ring, tx kicks wait), pausing twice is -EALREADY;
 * resume delivers, transmits and tells the backend. */
START_TEST(test_pause_resume)
{
	struct virtio_net_hdr h = { 0 };
	uint8_t f[2][100], got[100];
	uint64_t gpa;
	uint16_t rxh, txh;

	start(false, 0, true);
	drive(F_V1);
	make_frame(f[0], 100, 30);
	make_frame(f[1], 100, 31);
	rxh = rx_add(1526, &gpa);
	td_kick(&d, RXQ);
	loop_sync();
	ck_assert_int_eq(virtio_net_pause(nd), 0);
	ck_assert_int_eq(virtio_net_pause(nd), -EALREADY);
	ck_assert(!be_can_receive());
	be_receive(f[0], 100);
	be_receive(f[1], 100); /* only one is kept */
	txh = tx_add(&h, f[1], 100, 1);
	td_kick(&d, TXQ);
	td_kick(&d, RXQ);
	loop_sync();
	ck_assert_uint_eq(td_used_idx(&d, RXQ), 0);
	ck_assert_uint_eq(td_used_idx(&d, TXQ), 0);
	ck_assert_uint_eq(fb.nsend, 0);
	ck_assert_uint_eq(stats().rx_dropped_overrun, 1);
	virtio_net_resume(nd);
	expect_used(RXQ, rxh, HDR + 100);
	guest_read(gpa + HDR, got, 100);
	ck_assert_mem_eq(got, f[0], 100);
	expect_used(TXQ, txh, 0);
	ck_assert_uint_eq(fb.nsent, 1);
	loop_sync();
	ck_assert_uint_eq(fb.rx_ready, 1);
	ck_assert(be_can_receive());
}
END_TEST

/* tx_ready while paused sends nothing; the resume does. */
START_TEST(test_pause_tx_ready)
{
	struct virtio_net_hdr h = { 0 };
	uint8_t f[100];
	uint16_t head[2];

	start(false, 0, true);
	drive(F_V1);
	make_frame(f, sizeof(f), 40);
	fb.send_ret = -EAGAIN;
	head[0] = tx_add(&h, f, sizeof(f), 1);
	head[1] = tx_add(&h, f, sizeof(f), 1);
	td_kick(&d, TXQ);
	expect_used(TXQ, head[0], 0);
	ck_assert_int_eq(virtio_net_pause(nd), 0);
	fb.send_ret = 0;
	be_tx_ready();
	ck_assert_uint_eq(fb.nsend, 1);
	virtio_net_resume(nd);
	expect_used(TXQ, head[1], 0);
	ck_assert_uint_eq(fb.nsent, 2);
}
END_TEST

static Suite *unit_suite(void)
{
	Suite *s = suite_create("virtio_net_rx");
	TCase *tc = tcase_create("rx");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_rx_single);
	tcase_add_test(tc, test_rx_single_too_small);
	tcase_add_test(tc, test_rx_mergeable);
	tcase_add_test(tc, test_rx_mergeable_largest);
	tcase_add_test(tc, test_rx_vnet_header);
	tcase_add_test(tc, test_rx_mergeable_waits);
	tcase_add_test(tc, test_rx_backpressure);
	tcase_add_test(tc, test_rx_mergeable_tiny_buffer);
	tcase_add_test(tc, test_rx_malformed);
	tcase_add_test(tc, test_rx_driver_ready_and_reset);
	tcase_add_test(tc, test_pause_resume);
	tcase_add_test(tc, test_pause_tx_ready);
	suite_add_tcase(s, tc);
	return s;
}

#include "unit.h"
