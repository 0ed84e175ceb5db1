/* Unit tests of the stream-framed backend, mode stream, with the test as
 * the peer: frames both ways, partial reads, several frames per read, bad
 * lengths, the peer closing, a write failing, backpressure, a full socket,
 * open errors. Mode passt: check_net_passt.c. */
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kvisor/evloop.h"
#include "kvisor/log.h"
#include "kvisor/net.h"
#include "net_frames.h"
#include "net_peer.h"
#include "unit.h"
#include "unit_capture.h"
#include "unit_tmpdir.h"

static void setup(void)
{
	unit_tmpdir_make("net-stream");
}

/* A stream backend connected to the test: (*peer_fd) is the test's end. */
struct sfix {
	struct evloop *loop;
	struct tpeer p;
	struct net_backend *be;
	int fd;
};

static void sfix_open(struct sfix *s)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct net_backend_opts o = { .mode = NET_MODE_STREAM, .name = "net0" };
	int l;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/sock", tmpdir);
	l = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_ge(l, 0);
	ck_assert_int_eq(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(l, 1), 0);
	tpeer_init(&s->p);
	ck_assert_int_eq(evloop_open(&s->loop, "test"), 0);
	o.path = sa.sun_path;
	ck_assert_int_eq(net_backend_open(&s->be, &o, s->loop, &tpeer_ops, &s->p), 0);
	s->fd = accept(l, NULL, NULL);
	ck_assert_int_ge(s->fd, 0);
	close(l);
	unlink(sa.sun_path);
	ck_assert(!net_backend_vnet_hdr(s->be));
}

static void sfix_close(struct sfix *s)
{
	net_backend_close(s->be);
	evloop_destroy(s->loop);
	if (s->fd >= 0)
		close(s->fd);
	tpeer_free(&s->p);
}

/* A frame of (len) bytes numbered (seq), behind its 4-byte length. */
static size_t rec(uint8_t *buf, size_t len, unsigned seq)
{
	buf[0] = (uint8_t)(len >> 24), buf[1] = (uint8_t)(len >> 16);
	buf[2] = (uint8_t)(len >> 8), buf[3] = (uint8_t)len;
	for (size_t i = 0; i < len; i++)
		buf[4 + i] = (uint8_t)(seq * 31 + i);
	return 4 + len;
}

static void check_frame(struct tpeer *p, unsigned i, size_t len, unsigned seq)
{
	uint8_t want[4 + 2048];

	rec(want, len, seq);
	ck_assert_uint_eq(p->lens[i], len);
	ck_assert_mem_eq(p->frames[i], want + 4, len);
}

static void write_all(int fd, const void *buf, size_t len)
{
	ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
}

/* Bytes written on (fd) that its peer has not read yet. */
static int unread(int fd)
{
	int n = -1;

	ck_assert_int_eq(ioctl(fd, SIOCOUTQ, &n), 0);
	return n;
}

static bool drained(void *arg)
{
	return unread(*(int *)arg) == 0;
}

START_TEST(test_frames_both_ways)
{
	struct sfix s;
	uint8_t buf[4 + 2048], hdr[4];
	struct iovec iov[2];
	struct net_backend_stats st;

	sfix_open(&s);
	write_all(s.fd, buf, rec(buf, 100, 1));
	ck_assert(tpeer_wait_frames(s.loop, &s.p, 1, 2000));
	check_frame(&s.p, 0, 100, 1);

	/* The other way, from two iovec pieces. */
	rec(buf, 300, 2);
	iov[0] = (struct iovec){ buf + 4, 20 };
	iov[1] = (struct iovec){ buf + 24, 280 };
	ck_assert_int_eq(net_backend_send(s.be, iov, 2, 300), 0);
	ck_assert_int_eq(read(s.fd, hdr, 4), 4);
	ck_assert_mem_eq(hdr, buf, 4);
	ck_assert_int_eq(read(s.fd, buf + 1000, 300), 300);
	ck_assert_mem_eq(buf + 1000, buf + 4, 300);

	/* An iovec longer than the frame: only (len) bytes go out. */
	rec(buf, 50, 3);
	iov[0] = (struct iovec){ buf + 4, 30 };
	iov[1] = (struct iovec){ buf + 34, 500 };
	ck_assert_int_eq(net_backend_send(s.be, iov, 2, 50), 0);
	ck_assert_int_eq(read(s.fd, buf + 1000, sizeof(buf) - 1000), 54);
	ck_assert_mem_eq(buf + 1000, buf, 54);

	net_backend_stats(s.be, &st);
	ck_assert_uint_eq(st.rx_frames, 1);
	ck_assert_uint_eq(st.rx_bytes, 100);
	ck_assert_uint_eq(st.tx_frames, 2);
	ck_assert_uint_eq(st.tx_bytes, 350);
	ck_assert_uint_eq(s.p.link_down, 0);
	sfix_close(&s);
}
END_TEST

START_TEST(test_partial_reads)
{
	struct sfix s;
	uint8_t buf[3 * (4 + 2048)];
	size_t n;

	sfix_open(&s);
	/* One frame, a byte at a time, each read by the backend on its own. */
	n = rec(buf, 200, 3);
	for (size_t i = 0; i < n; i++) {
		write_all(s.fd, buf + i, 1);
		ck_assert(trun_until(s.loop, drained, &s.fd, 2000));
		ck_assert_uint_eq(s.p.nframes, i + 1 == n ? 1 : 0);
	}
	check_frame(&s.p, 0, 200, 3);

	/* Two frames and the first half of a third in one write, then the rest. */
	n = rec(buf, 60, 4);
	n += rec(buf + n, 70, 5);
	n += rec(buf + n, 1500, 6);
	write_all(s.fd, buf, n - 800);
	ck_assert(tpeer_wait_frames(s.loop, &s.p, 3, 2000));
	ck_assert(trun_until(s.loop, drained, &s.fd, 2000));
	ck_assert_uint_eq(s.p.nframes, 3);
	write_all(s.fd, buf + n - 800, 800);
	ck_assert(tpeer_wait_frames(s.loop, &s.p, 4, 2000));
	check_frame(&s.p, 1, 60, 4);
	check_frame(&s.p, 2, 70, 5);
	check_frame(&s.p, 3, 1500, 6);
	sfix_close(&s);
}
END_TEST

START_TEST(test_several_frames_per_read)
{
	struct sfix s;
	uint8_t buf[8 * (4 + 100)];
	size_t n = 0;
	struct net_backend_stats st;

	sfix_open(&s);
	for (unsigned i = 0; i < 8; i++)
		n += rec(buf + n, 14 + i * 10, 10 + i);
	write_all(s.fd, buf, n);
	ck_assert(tpeer_wait_frames(s.loop, &s.p, 8, 2000));
	for (unsigned i = 0; i < 8; i++)
		check_frame(&s.p, i, 14 + i * 10, 10 + i);
	net_backend_stats(s.be, &st);
	ck_assert_uint_eq(st.rx_frames, 8);
	sfix_close(&s);
}
END_TEST

static bool link_is_down(void *arg)
{
	return ((struct tpeer *)arg)->link_down > 0;
}

/* The peer sends a frame of length (len): the link goes down with (msg). */
static void bad_length(uint32_t len, const char *msg)
{
	struct sfix s;
	struct unit_capture cap;
	uint8_t hdr[4] = { len >> 24, len >> 16, len >> 8, len }, b, frame[64] = { 0 };
	struct iovec iov = { frame, sizeof(frame) };
	struct net_backend_stats st;
	char out[512];

	sfix_open(&s);
	unit_capture_begin(&cap);
	write_all(s.fd, hdr, 4);
	ck_assert(trun_until(s.loop, link_is_down, &s.p, 2000));
	unit_capture_end(&cap, out, sizeof(out));
	ck_assert_str_eq(out, msg);
	ck_assert_uint_eq(s.p.link_down, 1);
	ck_assert_uint_eq(s.p.nframes, 0);
	/* The backend closed its end; sends are dropped from now on. */
	ck_assert_int_eq(read(s.fd, &b, 1), 0);
	ck_assert_int_eq(net_backend_send(s.be, &iov, 1, sizeof(frame)), 0);
	net_backend_stats(s.be, &st);
	ck_assert_uint_eq(st.tx_dropped, 1);
	ck_assert_uint_eq(st.tx_frames, 0);
	sfix_close(&s);
}

START_TEST(test_length_over_limit)
{
	bad_length(NET_FRAME_MAX + 1,
		   "kvisor: net0: stream: frame length 65554 out of range (14-65553): link down\n");
}
END_TEST

START_TEST(test_length_under_minimum)
{
	bad_length(NET_FRAME_MIN - 1,
		   "kvisor: net0: stream: frame length 13 out of range (14-65553): link down\n");
}
END_TEST

START_TEST(test_peer_close)
{
	struct sfix s;
	struct unit_capture cap;
	uint8_t buf[4 + 100];
	char out[512];

	sfix_open(&s);
	/* A whole frame, then half of one, then the peer goes away. */
	write_all(s.fd, buf, rec(buf, 50, 7));
	write_all(s.fd, buf, 30);
	unit_capture_begin(&cap);
	close(s.fd);
	s.fd = -1;
	ck_assert(trun_until(s.loop, link_is_down, &s.p, 2000));
	unit_capture_end(&cap, out, sizeof(out));
	ck_assert_str_eq(out, "kvisor: net0: stream: the peer closed the connection: link down\n");
	ck_assert_uint_eq(s.p.nframes, 1);
	check_frame(&s.p, 0, 50, 7);
	sfix_close(&s);
}
END_TEST

START_TEST(test_write_error)
{
	struct sfix s;
	struct unit_capture cap;
	uint8_t frame[64] = { 0 };
	struct iovec iov = { frame, sizeof(frame) };
	struct net_backend_stats st;
	char out[512];

	sfix_open(&s);
	/* A frame for a full device: the backend stops watching for input,
	 * so it sees the peer's close only when writing. */
	s.p.can_rx = false;
	write_all(s.fd, frame, rec(frame, 60, 1));
	trun_for(s.loop, 20);
	close(s.fd);
	s.fd = -1;
	/* The failure is not reported inside send: the device may hold its
	 * lock there. The loop reports it. */
	ck_assert_int_eq(net_backend_send(s.be, &iov, 1, sizeof(frame)), 0);
	ck_assert_uint_eq(s.p.link_down, 0);
	ck_assert_int_eq(net_backend_send(s.be, &iov, 1, sizeof(frame)), 0);
	unit_capture_begin(&cap);
	ck_assert(trun_until(s.loop, link_is_down, &s.p, 2000));
	unit_capture_end(&cap, out, sizeof(out));
	ck_assert_str_eq(out, "kvisor: net0: stream: write: Broken pipe: link down\n");
	net_backend_stats(s.be, &st);
	ck_assert_uint_eq(st.tx_dropped, 2);
	ck_assert_uint_eq(st.tx_frames, 0);
	sfix_close(&s);
}
END_TEST

START_TEST(test_backpressure)
{
	struct sfix s;
	uint8_t buf[3 * (4 + 100)];
	size_t n;

	sfix_open(&s);
	/* Full device: nothing is read from the socket. */
	s.p.can_rx = false;
	n = rec(buf, 100, 8);
	write_all(s.fd, buf, n);
	trun_for(s.loop, 100);
	ck_assert_uint_eq(s.p.nframes, 0);
	ck_assert_int_gt(unread(s.fd), 0);
	s.p.can_rx = true;
	net_backend_rx_ready(s.be);
	ck_assert(tpeer_wait_frames(s.loop, &s.p, 1, 2000));
	check_frame(&s.p, 0, 100, 8);

	/* Room for one of three frames read at once: the other two wait in
	 * the backend until rx_ready, with nothing more coming on the socket. */
	s.p.rx_budget = 1;
	n = rec(buf, 40, 9);
	n += rec(buf + n, 41, 10);
	n += rec(buf + n, 42, 11);
	write_all(s.fd, buf, n);
	ck_assert(tpeer_wait_frames(s.loop, &s.p, 2, 2000));
	trun_for(s.loop, 50);
	ck_assert_uint_eq(s.p.nframes, 2);
	s.p.rx_budget = -1;
	net_backend_rx_ready(s.be);
	ck_assert(tpeer_wait_frames(s.loop, &s.p, 4, 2000));
	check_frame(&s.p, 1, 40, 9);
	check_frame(&s.p, 2, 41, 10);
	check_frame(&s.p, 3, 42, 11);
	ck_assert_uint_eq(s.p.rx_refused, 0);
	sfix_close(&s);
}
END_TEST

static bool tx_ready_seen(void *arg)
{
	return ((struct tpeer *)arg)->tx_ready > 0;
}

START_TEST(test_tx_full_socket)
{
	static uint8_t frame[NET_FRAME_MAX], got[4 + NET_FRAME_MAX];
	struct sfix s;
	struct iovec iov = { frame, sizeof(frame) };
	unsigned sent = 0, recvd = 0;
	int r;

	sfix_open(&s);
	/* The test reads nothing: the socket, then the backend's buffer fill. */
	for (;;) {
		frame[0] = (uint8_t)sent;
		r = net_backend_send(s.be, &iov, 1, sizeof(frame));
		if (r != 0)
			break;
		sent++;
		ck_assert_uint_lt(sent, 1000);
	}
	ck_assert_int_eq(r, -EAGAIN);
	ck_assert_uint_ge(sent, 2);
	ck_assert_uint_eq(s.p.tx_ready, 0);
	/* Drain: every frame taken arrives whole and in order; tx_ready then. */
	fcntl(s.fd, F_SETFL, O_NONBLOCK);
	while (recvd < sent) {
		size_t off = 0;

		while (off < sizeof(got)) {
			ssize_t n = read(s.fd, got + off, sizeof(got) - off);

			if (n < 0 && errno == EAGAIN) {
				trun_for(s.loop, 2);
				continue;
			}
			ck_assert_int_gt(n, 0);
			off += (size_t)n;
		}
		ck_assert_uint_eq((uint32_t)got[1] << 16 | got[2] << 8 | got[3], NET_FRAME_MAX);
		ck_assert_uint_eq(got[4], (uint8_t)recvd);
		recvd++;
	}
	ck_assert(trun_until(s.loop, tx_ready_seen, &s.p, 2000));
	ck_assert_uint_eq(s.p.tx_ready, 1);
	ck_assert_int_eq(net_backend_send(s.be, &iov, 1, sizeof(frame)), 0);
	sfix_close(&s);
}
END_TEST

START_TEST(test_stream_open_errors)
{
	struct net_backend_opts o = { .mode = NET_MODE_STREAM, .name = "net0" };
	char path[128], msg[256];
	const char *fwd = "tcp::8080-:80";

	tpeer_open_fails(&o, -EINVAL,
			 "kvisor: net0: stream: path= is required (the peer's unix socket)\n");
	snprintf(path, sizeof(path), "%s/nobody-here", tmpdir);
	o.path = path;
	snprintf(msg, sizeof(msg),
		 "kvisor: net0: stream: cannot connect to %s: No such file or "
		 "directory\n",
		 path);
	tpeer_open_fails(&o, -ENOENT, msg);
	o.hostfwd[0] = fwd;
	o.nr_hostfwd = 1;
	tpeer_open_fails(&o, -EINVAL,
			 "kvisor: net0: stream: hostfwd= and restrict= belong to the peer "
			 "(modes user and passt)\n");
}
END_TEST

static Suite *unit_suite(void)
{
	Suite *s = suite_create("net_stream");
	TCase *tc = tcase_create("stream");

	tcase_add_unchecked_fixture(tc, setup, unit_tmpdir_remove);
	tcase_add_test(tc, test_frames_both_ways);
	tcase_add_test(tc, test_partial_reads);
	tcase_add_test(tc, test_several_frames_per_read);
	tcase_add_test(tc, test_length_over_limit);
	tcase_add_test(tc, test_length_under_minimum);
	tcase_add_test(tc, test_peer_close);
	tcase_add_test(tc, test_write_error);
	tcase_add_test(tc, test_backpressure);
	tcase_add_test(tc, test_tx_full_socket);
	tcase_add_test(tc, test_stream_open_errors);
	suite_add_tcase(s, tc);
	return s;
}
