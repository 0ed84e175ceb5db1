/* Unit tests of the internal network backend: segments apart, flooding and
 * MAC learning, endpoints that close or crash, segment names, the per-user
 * directory checks, backpressure and a full receiver, counters. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "kvisor/evloop.h"
#include "kvisor/net.h"
#include "net_frames.h"
#include "net_tpeer.h"
#include "unit_capture.h"
#include "unit_tmpdir.h"

static void tmpdir_setup(void)
{
	unit_tmpdir_make("netint");
}

/* A runtime directory of the test's own (XDG_RUNTIME_DIR), and its loop. */
static char rundir[128];

static void run_setup(const char *test)
{
	snprintf(rundir, sizeof(rundir), "%s/%s", tmpdir, test);
	ck_assert_int_eq(mkdir(rundir, 0700), 0);
	ck_assert_int_eq(setenv("XDG_RUNTIME_DIR", rundir, 1), 0);
	ck_assert_int_eq(evloop_open(&tpeer_loop, "net-test"), 0);
}

static void mac_of(uint8_t mac[6], unsigned i)
{
	const uint8_t m[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, (uint8_t)i };

	memcpy(mac, m, 6);
}

/* Endpoint (id) on segment (seg) for the guest MAC 52:54:00:12:34:(i). */
static struct net_backend *ep_open(const char *id, const char *seg, unsigned i, struct tpeer *p)
{
	struct net_backend_opts o = { .mode = NET_MODE_INTERNAL, .name = id, .segment = seg };
	struct net_backend *be;

	mac_of(o.mac, i);
	memset(p, 0, sizeof(*p));
	ck_assert_int_eq(net_backend_open(&be, &o, tpeer_loop, &tpeer_ops, p), 0);
	ck_assert(!net_backend_vnet_hdr(be));
	ck_assert_uint_eq(net_backend_offloads(be), 0);
	return be;
}

/* Send a (len)-byte frame from MAC (src) to MAC (dst) through (be), split
 * in two iovecs across the destination MAC. */
static void ep_send(struct net_backend *be, const uint8_t dst[6], unsigned src, size_t len,
		    uint8_t tag)
{
	uint8_t f[1600], smac[6];
	struct iovec iov[2] = { { f, 3 }, { f + 3, len - 3 } };

	mac_of(smac, src);
	nf_eth(f, dst, smac, 0x88b5); /* local experimental ethertype */
	memset(f + NF_ETH_HLEN, tag, len - NF_ETH_HLEN);
	ck_assert_int_eq(net_backend_send(be, iov, 2, len), 0);
}

/* The last frame (p) got is the one ep_send built with (tag). */
static void ck_last(const struct tpeer *p, unsigned src, size_t len, uint8_t tag)
{
	uint8_t smac[6];
	const uint8_t *f;
	size_t got;

	mac_of(smac, src);
	f = tpeer_frame(p, p->frames - 1, &got);
	ck_assert_uint_eq(got, len);
	ck_assert_mem_eq(f + 6, smac, 6);
	ck_assert_uint_eq(f[len - 1], tag);
}

/* How many entries a segment's directory holds (sockets, no dot files). */
static unsigned seg_entries(const char *seg)
{
	char path[256];
	struct dirent *de;
	unsigned n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/kvisor/net/%s", rundir, seg);
	d = opendir(path);
	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

START_TEST(test_broadcast_stays_in_segment)
{
	struct tpeer a1, a2, b1;
	struct net_backend *ea1, *ea2, *eb1;
	struct net_backend_stats st;
	char path[256];
	struct stat sb;

	run_setup("bcast");
	ck_assert_int_eq(net_mode_parse("internal"), NET_MODE_INTERNAL);
	ea1 = ep_open("net0", "A", 1, &a1);
	ea2 = ep_open("net1", "A", 2, &a2);
	eb1 = ep_open("net2", "B", 3, &b1);
	/* The layout: DIR/kvisor/net/SEG/ENDPOINT, every directory 0700. */
	ck_assert_uint_eq(seg_entries("A"), 2);
	ck_assert_uint_eq(seg_entries("B"), 1);
	snprintf(path, sizeof(path), "%s/kvisor/net/A", rundir);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_uint_eq(sb.st_mode & 07777, 0700);

	ep_send(ea1, nf_bcast, 1, 100, 0xa1);
	tpeer_pump(1, 2000);
	tpeer_pump(0, 50); /* anything else would arrive now */
	ck_assert_uint_eq(a2.frames, 1);
	ck_last(&a2, 1, 100, 0xa1);
	ck_assert_uint_eq(a1.frames, 0);
	ck_assert_uint_eq(b1.frames, 0);

	ep_send(eb1, nf_bcast, 3, 60, 0xb1);
	tpeer_pump(0, 50);
	ck_assert_uint_eq(a1.frames + a2.frames + b1.frames, 1);

	net_backend_stats(ea1, &st);
	ck_assert_uint_eq(st.tx_frames, 1);
	ck_assert_uint_eq(st.tx_bytes, 100);
	ck_assert_uint_eq(st.tx_dropped + st.rx_frames + st.rx_dropped, 0);
	net_backend_stats(ea2, &st);
	ck_assert_uint_eq(st.rx_frames, 1);
	ck_assert_uint_eq(st.rx_bytes, 100);
	ck_assert_uint_eq(st.tx_frames + st.rx_dropped, 0);
	net_backend_stats(eb1, &st);
	ck_assert_uint_eq(st.tx_frames, 1);
	ck_assert_uint_eq(st.tx_dropped, 0); /* nobody else on B: not a loss */

	net_backend_close(ea1);
	net_backend_close(ea2);
	net_backend_close(eb1);
	ck_assert_uint_eq(seg_entries("A"), 0);
	ck_assert_uint_eq(seg_entries("B"), 0);
	evloop_destroy(tpeer_loop);
}
END_TEST

START_TEST(test_unicast_learning)
{
	struct tpeer a1, a2, a3;
	struct net_backend *e1, *e2, *e3;
	uint8_t mac2[6];

	run_setup("ucast");
	e1 = ep_open("net0", "lan", 1, &a1);
	e2 = ep_open("net1", "lan", 2, &a2);
	e3 = ep_open("net2", "lan", 3, &a3);
	mac_of(mac2, 2);

	/* Unknown unicast is flooded. */
	ep_send(e1, mac2, 1, 64, 1);
	tpeer_pump(2, 2000);
	ck_assert_uint_eq(a2.frames, 1);
	ck_assert_uint_eq(a3.frames, 1);

	/* Once e1 has seen MAC 2 come from e2, frames to it go to e2 alone. */
	ep_send(e2, nf_bcast, 2, 64, 2);
	tpeer_pump(2, 2000);
	ck_assert_uint_eq(a1.frames, 1);
	ep_send(e1, mac2, 1, 1514, 3);
	tpeer_pump(1, 2000);
	tpeer_pump(0, 50);
	ck_assert_uint_eq(a2.frames, 2);
	ck_last(&a2, 1, 1514, 3);
	ck_assert_uint_eq(a3.frames, 2); /* the broadcast from e2 only */

	/* Multicast destinations are flooded whatever was learned. */
	mac2[0] |= 1;
	ep_send(e1, mac2, 1, 64, 4);
	tpeer_pump(2, 2000);
	ck_assert_uint_eq(a2.frames, 3);
	ck_assert_uint_eq(a3.frames, 3);

	net_backend_close(e1);
	net_backend_close(e2);
	net_backend_close(e3);
	evloop_destroy(tpeer_loop);
}
END_TEST

/* Point (sa) at (dir)/(name). */
static void sun_set(struct sockaddr_un *sa, const char *dir, const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	ck_assert_uint_lt(strlen(path), sizeof(sa->sun_path));
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, strlen(path) + 1);
}

/* Leave a socket file behind in segment (seg), as a crashed endpoint does. */
static void make_stale(const char *seg, const char *name)
{
	struct sockaddr_un sa;
	char dir[256];
	int s = socket(AF_UNIX, SOCK_DGRAM, 0);

	ck_assert_int_ge(s, 0);
	snprintf(dir, sizeof(dir), "%s/kvisor/net/%s", rundir, seg);
	sun_set(&sa, dir, name);
	ck_assert_int_eq(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(s);
}

START_TEST(test_endpoints_gone)
{
	struct tpeer a1, a2, a2b;
	struct net_backend *e1, *e2, *e2b;
	struct net_backend_stats st;
	char stale[256];
	uint8_t mac2[6];

	run_setup("gone");
	e1 = ep_open("net0", "lan", 1, &a1);
	e2 = ep_open("net1", "lan", 2, &a2);
	mac_of(mac2, 2);
	ep_send(e2, nf_bcast, 2, 64, 1); /* e1 learns MAC 2 */
	tpeer_pump(1, 2000);
	ck_assert_uint_eq(a1.frames, 1);

	/* A closed endpoint takes its socket file with it. */
	net_backend_close(e2);
	ck_assert_uint_eq(seg_entries("lan"), 1);

	/* A crashed one leaves it: the next flood removes it. */
	make_stale("lan", "00000000deadbeef");
	snprintf(stale, sizeof(stale), "%s/kvisor/net/lan/00000000deadbeef", rundir);
	ck_assert_int_eq(access(stale, F_OK), 0);
	ep_send(e1, nf_bcast, 1, 64, 2);
	ck_assert_int_eq(access(stale, F_OK), -1);
	ck_assert_int_eq(errno, ENOENT);

	/* MAC 2 comes back on a new endpoint: the stale entry is dropped and
	 * the frame flooded, so it still arrives. */
	e2b = ep_open("net1", "lan", 2, &a2b);
	ep_send(e1, mac2, 1, 64, 3);
	tpeer_pump(1, 2000);
	ck_assert_uint_eq(a2b.frames, 1);
	ck_last(&a2b, 1, 64, 3);
	net_backend_stats(e1, &st);
	ck_assert_uint_eq(st.tx_frames, 2);
	ck_assert_uint_eq(st.tx_dropped, 0);

	net_backend_close(e1);
	net_backend_close(e2b);
	ck_assert_uint_eq(seg_entries("lan"), 0);
	evloop_destroy(tpeer_loop);
}
END_TEST

/* Open segment (seg) and return what was printed; it must fail. */
static void open_fails(const char *seg, char *msg, size_t cap)
{
	struct net_backend_opts o = { .mode = NET_MODE_INTERNAL, .name = "net3", .segment = seg };
	struct unit_capture c;
	struct net_backend *be = (struct net_backend *)1;
	struct tpeer p = { 0 };

	unit_capture_begin(&c);
	ck_assert_int_lt(net_backend_open(&be, &o, tpeer_loop, &tpeer_ops, &p), 0);
	unit_capture_end(&c, msg, cap);
	ck_assert_ptr_null(be);
}

START_TEST(test_segment_names)
{
	static const struct {
		const char *seg, *why;
	} bad[] = {
		{ "", "must be 1 to 64 characters, got 0" },
		{ /* 65 */ "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
		  "must be 1 to 64 characters, got 65" },
		{ "a/b", "'a/b' may only contain A-Z a-z 0-9 _ . -" },
		{ "lan 2", "'lan 2' may only contain A-Z a-z 0-9 _ . -" },
		{ "..", "'..' may not start with '.'" },
		{ ".hidden", "'.hidden' may not start with '.'" },
	};
	char long_ok[65], msg[512], want[512];
	struct net_backend *be;
	struct tpeer p;

	run_setup("names");
	open_fails(NULL, msg, sizeof(msg));
	ck_assert_str_eq(msg, "kvisor: net3: internal: no segment name (name=SEG)\n");
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		open_fails(bad[i].seg, msg, sizeof(msg));
		snprintf(want, sizeof(want), "kvisor: net3: name: segment name %s\n", bad[i].why);
		ck_assert_str_eq(msg, want);
	}

	/* The longest name works although its path is longer than sun_path. */
	memset(long_ok, 'y', 64);
	long_ok[64] = '\0';
	be = ep_open("net0", long_ok, 1, &p);
	ck_assert_uint_eq(seg_entries(long_ok), 1);
	net_backend_close(be);
	be = ep_open("net0", "Lab_2.vm-net", 1, &p);
	net_backend_close(be);
	evloop_destroy(tpeer_loop);
}
END_TEST

START_TEST(test_runtime_dir_refused)
{
	char dir[256], want[512], msg[512];

	run_setup("baddir");
	/* Open to other users: someone else could plant or reach sockets. */
	snprintf(dir, sizeof(dir), "%s/kvisor", rundir);
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	ck_assert_int_eq(chmod(dir, 0755), 0);
	open_fails("lan", msg, sizeof(msg));
	snprintf(want, sizeof(want),
		 "kvisor: net3: internal: %s is open to other users (mode 0755, expected 0700)\n",
		 dir);
	ck_assert_str_eq(msg, want);
	ck_assert_int_eq(chmod(dir, 0700), 0);

	/* Someone else's directory. */
	snprintf(dir, sizeof(dir), "%s/kvisor/net", rundir);
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	if (geteuid() == 0) {
		ck_assert_int_eq(chown(dir, 4242, 4242), 0);
		open_fails("lan", msg, sizeof(msg));
		snprintf(want, sizeof(want),
			 "kvisor: net3: internal: %s belongs to uid 4242, not to uid 0\n", dir);
		ck_assert_str_eq(msg, want);
		ck_assert_int_eq(chown(dir, 0, 0), 0);
	} else {
		fprintf(stderr, "SKIP: check_net_internal: foreign owner case needs root\n");
	}

	/* A symlink, which could point anywhere. */
	snprintf(dir, sizeof(dir), "%s/kvisor/net/lan", rundir);
	ck_assert_int_eq(symlink("/tmp", dir), 0);
	open_fails("lan", msg, sizeof(msg));
	snprintf(want, sizeof(want), "kvisor: net3: internal: %s is not a directory\n", dir);
	ck_assert_str_eq(msg, want);
	evloop_destroy(tpeer_loop);
}
END_TEST

/* The length of unix datagram queues (net.unix.max_dgram_qlen). */
static unsigned dgram_qlen(void)
{
	FILE *f = fopen("/proc/sys/net/unix/max_dgram_qlen", "r");
	unsigned q = 0;

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fscanf(f, "%u", &q), 1);
	fclose(f);
	return q;
}

START_TEST(test_backpressure)
{
	struct tpeer a1, a2;
	struct net_backend *e1, *e2;
	struct net_backend_stats st;
	unsigned q = dgram_qlen(), n, kept;

	run_setup("bp");
	e1 = ep_open("net0", "lan", 1, &a1);
	e2 = ep_open("net1", "lan", 2, &a2);

	/* Nothing is read while the device cannot take it... */
	a2.refuse = true;
	for (unsigned i = 0; i < 3; i++)
		ep_send(e1, nf_bcast, 1, 80, (uint8_t)(10 + i));
	tpeer_pump(0, 100);
	ck_assert_uint_eq(a2.frames, 0);
	ck_assert_uint_ge(a2.asked, 1);
	tpeer_pump(0, 50);
	ck_assert_uint_eq(a2.asked, 1); /* and the socket is not watched meanwhile */

	/* ...and all of it, in order, after rx_ready. */
	a2.refuse = false;
	net_backend_rx_ready(e2);
	tpeer_pump(3, 2000);
	ck_assert_uint_eq(a2.frames, 3);
	for (unsigned i = 0; i < 3; i++) {
		size_t len;

		ck_assert_uint_eq(tpeer_frame(&a2, i, &len)[len - 1], 10 + i);
	}

	/* A receiver whose queue is full (nobody serves the loop while this
	 * sends) drops what comes: counted by the sender, the rest arrives.
	 * The kernel queues up to qlen + 1 datagrams. */
	n = q + 6;
	for (unsigned i = 0; i < n; i++)
		ep_send(e1, nf_bcast, 1, 60, (uint8_t)i);
	tpeer_pump(0, 100);
	kept = a2.frames - 3;
	ck_assert_uint_ge(kept, q);
	ck_assert_uint_le(kept, q + 1);
	net_backend_stats(e1, &st);
	ck_assert_uint_eq(st.tx_frames, 3 + n);
	ck_assert_uint_eq(st.tx_dropped, n - kept);
	net_backend_stats(e2, &st);
	ck_assert_uint_eq(st.rx_frames, 3 + kept);

	net_backend_close(e1);
	net_backend_close(e2);
	evloop_destroy(tpeer_loop);
}
END_TEST

/* Send a raw datagram of (len) bytes to endpoint (be)'s socket from a
 * socket bound to (from) in segment (seg). */
static void raw_send(const char *seg, const char *from, size_t len)
{
	struct sockaddr_un me, to = { .sun_family = AF_UNIX };
	char dir[256];
	struct dirent *de;
	uint8_t f[64] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0, 0, 0, 9 };
	DIR *d;
	int s = socket(AF_UNIX, SOCK_DGRAM, 0);

	ck_assert_int_ge(s, 0);
	snprintf(dir, sizeof(dir), "%s/kvisor/net/%s", rundir, seg);
	sun_set(&me, dir, from);
	ck_assert_int_eq(bind(s, (struct sockaddr *)&me, sizeof(me)), 0);
	d = opendir(dir);
	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' && strcmp(de->d_name, from) != 0)
			sun_set(&to, dir, de->d_name);
	closedir(d);
	ck_assert_int_eq(sendto(s, f, len, 0, (struct sockaddr *)&to, sizeof(to)), (ssize_t)len);
	close(s);
	unlink(me.sun_path);
}

START_TEST(test_bad_datagrams)
{
	struct net_backend *e1;
	struct net_backend_stats st;
	struct tpeer a1;
	uint8_t f[20] = { 0 };
	struct iovec iov = { f, sizeof(f) };

	run_setup("bad");
	e1 = ep_open("net0", "lan", 1, &a1);
	raw_send("lan", "0123456789abcdef", 13); /* shorter than a header */
	raw_send("lan", "not-an-endpoint!", 60); /* not from an endpoint */
	raw_send("lan", "0123456789abcdef", 60); /* a frame */
	tpeer_pump(1, 2000);
	tpeer_pump(0, 50);
	ck_assert_uint_eq(a1.frames, 1);
	net_backend_stats(e1, &st);
	ck_assert_uint_eq(st.rx_frames, 1);
	ck_assert_uint_eq(st.rx_bytes, 60);
	ck_assert_uint_eq(st.rx_dropped, 2);

	/* Frames out of range never leave. */
	iov.iov_len = 13;
	ck_assert_int_eq(net_backend_send(e1, &iov, 1, 13), -EMSGSIZE);
	net_backend_stats(e1, &st);
	ck_assert_uint_eq(st.tx_dropped, 1);
	ck_assert_uint_eq(st.tx_frames, 0);
	net_backend_close(e1);
	evloop_destroy(tpeer_loop);
}
END_TEST

static Suite *unit_suite(void)
{
	Suite *s = suite_create("net_internal");
	TCase *tc = tcase_create("internal");

	tcase_add_unchecked_fixture(tc, tmpdir_setup, unit_tmpdir_remove);
	tcase_add_test(tc, test_broadcast_stays_in_segment);
	tcase_add_test(tc, test_unicast_learning);
	tcase_add_test(tc, test_endpoints_gone);
	tcase_add_test(tc, test_segment_names);
	tcase_add_test(tc, test_runtime_dir_refused);
	tcase_add_test(tc, test_backpressure);
	tcase_add_test(tc, test_bad_datagrams);
	suite_add_tcase(s, tc);
	return s;
}

#include "unit.h"
