/* Unit tests of the passt backend with the real passt: an ARP and DHCP
 * exchange, passt exiting early (a port in use), the options it refuses,
 * and its process: no inherited fds or blocked signals, death with
 * kvisor, reaped at close.
 * Without passt installed they say so and pass; passt that cannot run
 * fails them. */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kvisor/evloop.h"
#include "kvisor/net.h"
#include "net_frames.h"
#include "net_peer.h"
#include "unit.h"
#include "unit_capture.h"
#include "unit_tmpdir.h"

static void setup(void)
{
	unit_tmpdir_make("net-passt");
}

static bool link_is_down(void *arg)
{
	return ((struct tpeer *)arg)->link_down > 0;
}

static bool ends_with(const char *s, const char *end)
{
	size_t n = strlen(s), m = strlen(end);

	return n >= m && strcmp(s + n - m, end) == 0;
}

static bool have_passt(void)
{
	if (system("command -v passt >/dev/null 2>&1") == 0)
		return true;
	fprintf(stderr, "SKIP %s: passt is not installed (Debian package passt)\n", __FILE__);
	return false;
}

static bool frame_is_offer(struct tpeer *p, unsigned i, uint32_t xid)
{
	struct nf_ip4 u;
	uint32_t yiaddr;

	return nf_parse_ip4(p->frames[i], p->lens[i], &u) && u.proto == NF_IPPROTO_UDP &&
	       u.sport == 67 && u.dport == 68 &&
	       nf_dhcp_type(u.data, u.len, xid, &yiaddr) == NF_DHCP_OFFER && yiaddr != 0;
}

START_TEST(test_passt_exchange)
{
	struct net_backend_opts o = { .mode = NET_MODE_PASST, .name = "net0" };
	struct evloop *loop;
	struct tpeer p;
	struct net_backend *be;
	uint8_t f[400];
	struct iovec iov = { f, 0 };
	uint8_t sha[6];
	bool arp = false, offer = false;

	if (!have_passt())
		return;
	tpeer_init(&p);
	ck_assert_int_eq(evloop_open(&loop, "test"), 0);
	ck_assert_int_eq(net_backend_open(&be, &o, loop, &tpeer_ops, &p), 0);
	/* passt answers ARP for any address but the guest's own. */
	iov.iov_len = nf_arp_request(f, nf_guest_mac, nf_ip(10, 0, 2, 15), nf_ip(10, 0, 2, 2));
	ck_assert_int_eq(net_backend_send(be, &iov, 1, iov.iov_len), 0);
	iov.iov_len = nf_dhcp_discover(f, nf_guest_mac, 0x12345678);
	ck_assert_int_eq(net_backend_send(be, &iov, 1, iov.iov_len), 0);
	for (unsigned seen = 0; !(arp && offer);) {
		ck_assert_msg(tpeer_wait_frames(loop, &p, seen + 1, 5000),
			      "passt answered %u frames, ARP %d DHCP %d", seen, arp, offer);
		for (; seen < p.nframes; seen++) {
			arp |= nf_is_arp_reply(p.frames[seen], p.lens[seen], nf_ip(10, 0, 2, 2),
					       nf_guest_mac, sha);
			offer |= frame_is_offer(&p, seen, 0x12345678);
		}
	}
	ck_assert_uint_eq(p.link_down, 0);
	net_backend_close(be);
	/* passt was reaped: this process has no child left. */
	ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1);
	ck_assert_int_eq(errno, ECHILD);
	evloop_destroy(loop);
	tpeer_free(&p);
}
END_TEST

START_TEST(test_passt_exits_early)
{
	struct net_backend_opts o = { .mode = NET_MODE_PASST, .name = "net0" };
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	struct evloop *loop;
	struct tpeer p;
	struct net_backend *be;
	struct unit_capture cap;
	char fwd[64], out[1024], bind_msg[128];
	int l;

	if (!have_passt())
		return;
	/* A port in use: passt cannot forward it and exits. */
	l = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_eq(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(l, 1), 0);
	ck_assert_int_eq(getsockname(l, (struct sockaddr *)&sa, &sl), 0);
	snprintf(fwd, sizeof(fwd), "tcp::%u-:80", ntohs(sa.sin_port));
	o.hostfwd[0] = fwd;
	o.nr_hostfwd = 1;
	tpeer_init(&p);
	ck_assert_int_eq(evloop_open(&loop, "test"), 0);
	unit_capture_begin(&cap);
	ck_assert_int_eq(net_backend_open(&be, &o, loop, &tpeer_ops, &p), 0);
	ck_assert(trun_until(loop, link_is_down, &p, 5000));
	unit_capture_end(&cap, out, sizeof(out));
	/* passt's own line first (it shares our stderr), then ours, last. */
	snprintf(bind_msg, sizeof(bind_msg), "Failed to bind any port for '-t 127.0.0.1/%u:80'",
		 ntohs(sa.sin_port));
	ck_assert_msg(strstr(out, bind_msg), "no '%s' in: %s", bind_msg, out);
	ck_assert_msg(ends_with(out, "\nkvisor: net0: passt exited with status 1: link down\n"),
		      "got: %s", out);
	net_backend_close(be);
	evloop_destroy(loop);
	close(l);
}
END_TEST

START_TEST(test_passt_refuses)
{
	struct net_backend_opts o = { .mode = NET_MODE_PASST, .name = "net0" };
	const char *fwd = "tcp::8080-10.0.2.15:80", *bad = "tcp::8080-:0";

	o.path = "/nonexistent/passt";
	tpeer_open_fails(
		&o, -ENOENT,
		"kvisor: net0: passt: cannot run /nonexistent/passt: No such file or directory\n");
	o.path = "no-such-passt-binary";
	tpeer_open_fails(&o, -ENOENT,
			 "kvisor: net0: passt: 'no-such-passt-binary' not found in PATH "
			 "(Debian's passt package, or path=)\n");
	if (!have_passt())
		return;
	o.path = NULL;
	o.restrict_outbound = true;
	tpeer_open_fails(&o, -EINVAL,
			 "kvisor: net0: passt: restrict=on is not available (passt has no "
			 "option to refuse outbound connections); use the user mode\n");
	o.restrict_outbound = false;
	o.hostfwd[0] = fwd;
	o.nr_hostfwd = 1;
	tpeer_open_fails(&o, -EINVAL,
			 "kvisor: net0: hostfwd 'tcp::8080-10.0.2.15:80': passt forwards "
			 "to the guest's own address: leave GUESTADDR empty\n");
	o.hostfwd[0] = bad;
	tpeer_open_fails(&o, -EINVAL,
			 "kvisor: net0: hostfwd 'tcp::8080-:0': bad guest port '0' "
			 "(1-65535)\n");
}
END_TEST

/* The pid of this process's only child (passt), from /proc. */
static pid_t child_pid(void)
{
	char path[64], line[512];
	pid_t found = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", getpid(), getpid());
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	if (fgets(line, sizeof(line), f))
		found = (pid_t)atoi(line);
	fclose(f);
	return found;
}

/* What /proc/(pid)/(file) says, into (buf); "" if nothing. */
static void proc_read(pid_t pid, const char *file, char *buf, size_t len)
{
	char path[64];
	FILE *f;
	size_t n = 0;

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, file);
	f = fopen(path, "r");
	if (f) {
		n = fread(buf, 1, len - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
}

/* A child plays kvisor: it opens a passt backend with (o) on its main
 * thread with SIGTERM blocked (as kvisor's threads block signals), reports
 * passt's pid on (sync) and waits to be killed. Returns its pid and, in
 * (*passt), passt's. This process adopts orphans, so passt becomes our
 * child when the fake kvisor dies. */
static pid_t fake_kvisor(struct net_backend_opts *o, pid_t *passt)
{
	int sync[2];
	pid_t kv;

	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	ck_assert_int_eq(pipe(sync), 0); /* not close-on-exec: passt must not get it */
	kv = fork();
	ck_assert_int_ge(kv, 0);
	if (kv == 0) {
		struct evloop *loop;
		struct tpeer p;
		struct net_backend *be;
		sigset_t term;

		sigemptyset(&term);
		sigaddset(&term, SIGTERM);
		sigprocmask(SIG_BLOCK, &term, NULL);
		tpeer_init(&p);
		if (evloop_open(&loop, "kv") < 0 || net_backend_open(&be, o, loop, &tpeer_ops, &p))
			_exit(1);
		*passt = child_pid();
		if (write(sync[1], passt, sizeof(*passt)) != sizeof(*passt))
			_exit(1);
		for (;;)
			pause();
	}
	ck_assert_int_eq(read(sync[0], passt, sizeof(*passt)), sizeof(*passt));
	ck_assert_int_gt(*passt, 0);
	close(sync[0]);
	close(sync[1]);
	return kv;
}

/* Kill the fake kvisor; wait up to 3 s for (passt) to end; its status. */
static int kill_kvisor(pid_t kv, pid_t passt)
{
	int status;
	pid_t r = 0;

	ck_assert_int_eq(kill(kv, SIGKILL), 0);
	ck_assert_int_eq(waitpid(kv, &status, 0), kv);
	for (int i = 0; i < 300 && (r = waitpid(passt, &status, WNOHANG)) == 0; i++)
		usleep(10000);
	if (r == 0)
		kill(passt, SIGKILL);
	ck_assert_msg(r == passt, "passt outlived kvisor");
	return status;
}

/* Whether (pid) is blocked in a sleep system call (the first field of
 * /proc/PID/syscall is the number of the call it is in). */
static bool in_sleep_call(pid_t pid)
{
	char buf[256];
	long nr;

	proc_read(pid, "syscall", buf, sizeof(buf));
	if (sscanf(buf, "%ld", &nr) != 1)
		return false; /* "running", or gone */
	return nr == SYS_clock_nanosleep || nr == SYS_nanosleep;
}

/* With a stand-in for passt that only sleeps (it neither closes fds nor
 * reads its socket): its fds are exactly stdin (/dev/null), stdout, stderr
 * and the socket as fd 3; no signal is blocked; kvisor's death kills it. */
START_TEST(test_passt_child)
{
	struct net_backend_opts o = { .mode = NET_MODE_PASST, .name = "net0" };
	char script[128], buf[4096], link[128], path[64];
	pid_t kv, passt;
	int status, fds = 0;
	FILE *f;

	snprintf(script, sizeof(script), "%s/fake-passt", tmpdir);
	f = fopen(script, "w");
	ck_assert_ptr_nonnull(f);
	fputs("#!/bin/sh\nexec sleep 1000\n", f);
	fclose(f);
	ck_assert_int_eq(chmod(script, 0755), 0);
	o.path = script;
	kv = fake_kvisor(&o, &passt);
	/* Look once sleep sleeps, not as soon as its name shows: from its
	 * exec on, the dynamic loader and setlocale() open files of their own
	 * (fd 4: libc.so.6, locale files) and close them again. The bound only
	 * catches a stand-in that never gets there. */
	for (int i = 0; i < 1000 && !in_sleep_call(passt); i++)
		usleep(10000);
	ck_assert_msg(in_sleep_call(passt), "the stand-in for passt never went to sleep");
	proc_read(passt, "comm", buf, sizeof(buf));
	ck_assert_str_eq(buf, "sleep\n");
	for (int fd = 0; fd < 1024; fd++) {
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/%d/fd/%d", passt, fd);
		n = readlink(path, link, sizeof(link) - 1);
		if (n < 0)
			continue;
		link[n] = '\0';
		ck_assert_msg(fd <= 3, "passt inherited fd %d (%s)", fd, link);
		if (fd == 0)
			ck_assert_str_eq(link, "/dev/null");
		if (fd == 3)
			ck_assert_msg(strncmp(link, "socket:[", 8) == 0, "fd 3 is %s", link);
		fds++;
	}
	ck_assert_int_eq(fds, 4);
	proc_read(passt, "status", buf, sizeof(buf));
	ck_assert_msg(strstr(buf, "\nSigBlk:\t0000000000000000\n"), "%s", buf);
	status = kill_kvisor(kv, passt);
	ck_assert(WIFSIGNALED(status));
	ck_assert_int_eq(WTERMSIG(status), SIGKILL);
}
END_TEST

/* The real passt ends with kvisor: its socket closes (and, unless passt
 * dropped to another user, which clears it, the death signal fires). */
START_TEST(test_passt_dies_with_kvisor)
{
	struct net_backend_opts o = { .mode = NET_MODE_PASST, .name = "net0" };
	pid_t kv, passt;

	if (!have_passt())
		return;
	kv = fake_kvisor(&o, &passt);
	kill_kvisor(kv, passt);
}
END_TEST

static Suite *unit_suite(void)
{
	Suite *s = suite_create("net_passt");
	TCase *tc = tcase_create("passt");

	tcase_add_unchecked_fixture(tc, setup, unit_tmpdir_remove);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_passt_exchange);
	tcase_add_test(tc, test_passt_exits_early);
	tcase_add_test(tc, test_passt_refuses);
	tcase_add_test(tc, test_passt_child);
	tcase_add_test(tc, test_passt_dies_with_kvisor);
	suite_add_tcase(s, tc);
	return s;
}
