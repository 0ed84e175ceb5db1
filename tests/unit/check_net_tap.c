/* Unit tests of the tap network backend, each in a network namespace of its
 * own (the test's process unshares one: its devices vanish with it, even
 * when a test fails): ARP and ping with the kernel over a host-only and a
 * bridged tap, offloads, backpressure both ways, a deleted or down device,
 * named devices and the errors users meet. Needs root and /dev/net/tun;
 * skipped, loudly, without them. */
#include <errno.h>
#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>
#include <linux/capability.h>

#include "kvisor/evloop.h"
#include "kvisor/net.h"
#include "net_frames.h"
#include "net_tpeer.h"
#include "unit_capture.h"

#define ALL_OFFLOADS \
	(NET_OFFLOAD_CSUM | NET_OFFLOAD_TSO4 | NET_OFFLOAD_TSO6 | NET_OFFLOAD_ECN | NET_OFFLOAD_UFO)

static const uint8_t guest_mac[6] = { 0x52, 0x54, 0x00, 0xab, 0xcd, 0x01 };

/* Run a shell command in the test's namespace; it must succeed. */
static void sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	ck_assert_msg(system(cmd) == 0, "failed: %s", cmd);
}

/* Enter a new network namespace and open the test's loop; false (after a
 * SKIP line saying why) when the test cannot run here. */
static bool tap_env(const char *test)
{
	const char *why = NULL;

	if (geteuid() != 0)
		why = "needs root";
	else if (access("/dev/net/tun", R_OK | W_OK) != 0)
		why = "no /dev/net/tun";
	else if (getenv("CK_FORK") && strcmp(getenv("CK_FORK"), "no") == 0)
		why = "needs check's fork mode (CK_FORK=no: the namespace would leak)";
	else if (system("ip -V >/dev/null 2>&1") != 0)
		why = "no ip (iproute2)";
	else if (unshare(CLONE_NEWNET) != 0)
		why = "cannot unshare a network namespace";
	if (why) {
		fprintf(stderr, "SKIP: check_net_tap: %s: %s\n", test, why);
		return false;
	}
	/* No IPv6 chatter (router solicitations) in the frames the tests read. */
	sh("sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1");
	ck_assert_int_eq(evloop_open(&tpeer_loop, "net-test"), 0);
	return true;
}

static struct net_backend *tap_open(const char *ifname, struct tpeer *p)
{
	struct net_backend_opts o = { .mode = NET_MODE_TAP, .name = "net0", .ifname = ifname };
	struct net_backend *be;

	memcpy(o.mac, guest_mac, 6);
	memset(p, 0, sizeof(*p));
	p->link = -1;
	ck_assert_int_eq(net_backend_open(&be, &o, tpeer_loop, &tpeer_ops, p), 0);
	ck_assert(net_backend_vnet_hdr(be));
	return be;
}

/* Send (frame, len) with a zero vnet header first, as two iovecs. */
static int tap_send(struct net_backend *be, const uint8_t *frame, size_t len)
{
	uint8_t hdr[NET_VNET_HDR_LEN] = { 0 };
	struct iovec iov[2] = { { hdr, sizeof(hdr) }, { (void *)frame, len } };

	return net_backend_send(be, iov, 2, sizeof(hdr) + len);
}

/* Send an ARP request from the guest (guest) for (host). */
static int tap_send_arp(struct net_backend *be, uint32_t guest, uint32_t host)
{
	uint8_t f[NF_ETH_MIN];

	return tap_send(be, f, nf_arp_request(f, guest_mac, guest, host));
}

/* Wait up to (ms) for a frame (from frame (*seen) on) that (match)
 * accepts; frames before it are skipped. */
static bool tap_wait(struct tpeer *p, unsigned *seen, unsigned ms,
		     bool (*match)(const uint8_t *f, size_t len, void *arg), void *arg)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		for (; *seen < p->frames; (*seen)++) {
			size_t len;
			const uint8_t *h = tpeer_frame(p, *seen, &len);

			ck_assert_uint_ge(len, NET_VNET_HDR_LEN + NF_ETH_HLEN);
			/* No offload enabled: no partial checksum, no GSO. */
			ck_assert_uint_eq(h[0] & VIRTIO_NET_HDR_F_NEEDS_CSUM, 0);
			ck_assert_uint_eq(h[1], VIRTIO_NET_HDR_GSO_NONE);
			ck_assert_uint_eq(h[10] | h[11], 0); /* num_buffers left to the device */
			if (match(h + NET_VNET_HDR_LEN, len - NET_VNET_HDR_LEN, arg)) {
				(*seen)++;
				return true;
			}
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 >= ms)
			return false;
		tpeer_pump(1, 50);
	}
}

struct arp_want {
	uint32_t ip;
	uint8_t mac[6]; /* out */
};

static bool match_arp(const uint8_t *f, size_t len, void *arg)
{
	struct arp_want *w = arg;

	return nf_is_arp_reply(f, len, w->ip, guest_mac, w->mac);
}

struct ping_want {
	uint32_t from, to;
	uint16_t seq;
};

static bool match_ping(const uint8_t *f, size_t len, void *arg)
{
	struct ping_want *w = arg;

	return nf_is_icmp_reply(f, len, w->from, w->to, 0x4b56, w->seq, 56);
}

/* ARP for (host) from (guest) through (be), then ping it (seq); asserts
 * the kernel's replies come back through the backend. Returns how many
 * ARP requests it sent. */
static unsigned arp_and_ping(struct net_backend *be, struct tpeer *p, uint32_t guest, uint32_t host,
			     uint16_t seq)
{
	struct arp_want aw = { .ip = host };
	struct ping_want pw = { .from = host, .to = guest, .seq = seq };
	uint8_t f[128];
	unsigned seen = p->frames;

	bool found = false;
	unsigned arps = 0;

	/* Retried as a guest does: a tap that just got its carrier (the
	 * backend attached to an up device) drops what the host sends until
	 * the kernel's link watch activates its queue, within about 1 s. */
	while (arps < 6 && !found) {
		arps++;
		ck_assert_int_eq(tap_send_arp(be, guest, host), 0);
		found = tap_wait(p, &seen, 500, match_arp, &aw);
	}
	ck_assert_msg(found, "no ARP reply");
	/* The echo too is repeated as ping does (same sequence number), each
	 * wait generous: under a sanitizer on a busy host one 3 s wait for
	 * the only echo was seen to run out. */
	found = false;
	for (unsigned echoes = 0; echoes < 5 && !found; echoes++) {
		ck_assert_int_eq(tap_send(be, f,
					  nf_icmp_echo(f, aw.mac, guest_mac, guest, host, 0x4b56,
						       seq, 56)),
				 0);
		found = tap_wait(p, &seen, 3000, match_ping, &pw);
	}
	ck_assert_msg(found, "no echo reply");
	return arps;
}

/* The name of the one kvtapN device in the test's namespace. */
static void created_name(char name[IFNAMSIZ])
{
	struct if_nameindex *ifs = if_nameindex(), *i;
	unsigned n = 0;

	ck_assert_ptr_nonnull(ifs);
	for (i = ifs; i->if_index; i++)
		if (strncmp(i->if_name, "kvtap", 5) == 0) {
			snprintf(name, IFNAMSIZ, "%s", i->if_name);
			n++;
		}
	if_freenameindex(ifs);
	ck_assert_uint_eq(n, 1);
}

START_TEST(test_host_only)
{
	struct net_backend_stats st;
	struct net_backend *be;
	char name[IFNAMSIZ];
	struct tpeer p;
	unsigned arps;

	if (!tap_env("host-only"))
		return;
	be = tap_open(NULL, &p);
	created_name(name);
	ck_assert_str_eq(name, "kvtap0");
	ck_assert_uint_eq(net_backend_offloads(be), ALL_OFFLOADS);

	/* Down: frames go nowhere, counted. */
	ck_assert_int_eq(tap_send_arp(be, nf_ip(10, 77, 0, 2), nf_ip(10, 77, 0, 1)), 0);
	net_backend_stats(be, &st);
	ck_assert_uint_eq(st.tx_dropped, 1);
	ck_assert_uint_eq(st.tx_frames, 0);

	/* Host-only: the host side gets an address. */
	sh("ip addr add 10.77.0.1/24 dev %s && ip link set %s up", name, name);
	arps = arp_and_ping(be, &p, nf_ip(10, 77, 0, 2), nf_ip(10, 77, 0, 1), 1);
	arps += arp_and_ping(be, &p, nf_ip(10, 77, 0, 2), nf_ip(10, 77, 0, 1), 2);
	net_backend_stats(be, &st);
	ck_assert_uint_eq(st.tx_frames, arps + 2);
	ck_assert_uint_eq(st.tx_bytes, arps * 60 + 2 * (14 + 20 + 8 + 56));
	ck_assert_uint_eq(st.rx_frames, p.frames);
	ck_assert_uint_ge(st.rx_frames, 4);
	ck_assert_uint_eq(st.rx_dropped, 0);

	/* Not persistent: the device goes with the backend. */
	net_backend_close(be);
	ck_assert_uint_eq(if_nametoindex(name), 0);
	evloop_destroy(tpeer_loop);
}
END_TEST

/* The tap fd the backend opened for device (name), found in /proc/self/fd. */
static int backend_fd(const char *name)
{
	for (int fd = 3; fd < 1024; fd++) {
		char link[64], target[64];
		struct ifreq ifr = { 0 };
		ssize_t n;

		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		n = readlink(link, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if (strcmp(target, "/dev/net/tun") == 0 && ioctl(fd, TUNGETIFF, &ifr) == 0 &&
		    strcmp(ifr.ifr_name, name) == 0)
			return fd;
	}
	ck_abort_msg("no tap fd for %s", name);
	return -1;
}

START_TEST(test_bridged_and_tx_backpressure)
{
	struct net_backend_stats st;
	struct net_backend *be;
	char name[IFNAMSIZ];
	int sndbuf = 4096, fd, ret = 0;
	unsigned sent = 0, arps;
	struct tpeer p;
	uint8_t f[1600];

	if (!tap_env("bridged"))
		return;
	be = tap_open(NULL, &p);
	created_name(name);
	/* Bridged: the tap and an uplink in one bridge; the uplink here is a
	 * veth whose other end holds the address the guest talks to. */
	sh("ip link add br0 type bridge && ip link set br0 up && "
	   "ip link add vup type veth peer name vhost && "
	   "ip link set vup master br0 && ip link set %s master br0 && "
	   "ip link set vup up && ip link set %s up && "
	   "ip addr add 10.78.0.1/24 dev vhost && ip link set vhost up",
	   name, name);
	arps = arp_and_ping(be, &p, nf_ip(10, 78, 0, 2), nf_ip(10, 78, 0, 1), 1);

	/* A slow uplink (a 80 kbit/s queue) keeps frames in flight, a small
	 * send buffer on the tap then makes writes fail with EAGAIN: the
	 * backend says -EAGAIN and calls tx_ready once frames drained (the
	 * tap is writable again below half its send buffer). */
	sh("tc qdisc add dev vup root tbf rate 80kbit burst 1600 limit 100000");
	fd = backend_fd(name);
	ck_assert_int_eq(ioctl(fd, TUNSETSNDBUF, &sndbuf), 0);
	/* To a MAC nobody has: the bridge hands the frame itself (no clone,
	 * still charged to the tap) to the uplink's queue. */
	memset(f, 0, sizeof(f));
	nf_eth(f, (const uint8_t[6]){ 0x02, 0, 0, 0, 0, 0x99 }, guest_mac, 0x88b5);
	while (sent < 20 && (ret = tap_send(be, f, 1000)) == 0)
		sent++;
	ck_assert_int_eq(ret, -EAGAIN);
	ck_assert_uint_ge(sent, 1);
	ck_assert_uint_eq(p.tx_ready, 0);
	for (int i = 0; i < 30 && !p.tx_ready; i++)
		tpeer_pump(0, 100);
	ck_assert_uint_eq(p.tx_ready, 1);
	ck_assert_int_eq(tap_send(be, f, 1000), 0);
	net_backend_stats(be, &st);
	ck_assert_uint_eq(st.tx_frames, arps + 1 + sent + 1);
	ck_assert_uint_eq(st.tx_dropped, 0);
	net_backend_close(be);
	evloop_destroy(tpeer_loop);
}
END_TEST

START_TEST(test_rx_backpressure)
{
	struct arp_want aw = { .ip = nf_ip(10, 79, 0, 1) };
	struct net_backend *be;
	char name[IFNAMSIZ];
	unsigned seen = 0;
	struct tpeer p;

	if (!tap_env("rx-backpressure"))
		return;
	be = tap_open(NULL, &p);
	created_name(name);
	sh("ip addr add 10.79.0.1/24 dev %s && ip link set %s up", name, name);
	p.refuse = true;
	ck_assert_int_eq(tap_send_arp(be, nf_ip(10, 79, 0, 2), nf_ip(10, 79, 0, 1)), 0);
	tpeer_pump(0, 200);
	ck_assert_uint_eq(p.frames, 0);
	ck_assert_uint_eq(p.asked, 1); /* and not asked again: the fd is not watched */
	p.refuse = false;
	net_backend_rx_ready(be);
	ck_assert(tap_wait(&p, &seen, 3000, match_arp, &aw));
	net_backend_close(be);
	evloop_destroy(tpeer_loop);
}
END_TEST

/* ETHTOOL_GTXCSUM or ETHTOOL_GTSO of device (name): what TUNSETOFFLOAD set. */
static unsigned ethtool_get(const char *name, uint32_t cmd)
{
	struct ethtool_value ev = { .cmd = cmd };
	struct ifreq ifr = { .ifr_data = (void *)&ev };
	int s = socket(AF_INET, SOCK_DGRAM, 0);

	ck_assert_int_ge(s, 0);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	ck_assert_int_eq(ioctl(s, SIOCETHTOOL, &ifr), 0);
	close(s);
	return ev.data;
}

START_TEST(test_offloads)
{
	struct net_backend *be;
	char name[IFNAMSIZ];
	struct tpeer p;

	if (!tap_env("offloads"))
		return;
	be = tap_open(NULL, &p);
	created_name(name);
	/* The probe leaves none enabled until the guest accepts them. */
	ck_assert_uint_eq(net_backend_offloads(be), ALL_OFFLOADS);
	ck_assert_uint_eq(ethtool_get(name, ETHTOOL_GTXCSUM), 0);
	ck_assert_int_eq(net_backend_set_offloads(be, NET_OFFLOAD_CSUM | NET_OFFLOAD_TSO4), 0);
	ck_assert_uint_eq(ethtool_get(name, ETHTOOL_GTXCSUM), 1);
	ck_assert_uint_eq(ethtool_get(name, ETHTOOL_GTSO), 1);
	ck_assert_int_eq(net_backend_set_offloads(be, ALL_OFFLOADS), 0);
	ck_assert_uint_eq(ethtool_get(name, ETHTOOL_GTSO), 1);
	ck_assert_int_eq(net_backend_set_offloads(be, NET_OFFLOAD_CSUM), 0);
	ck_assert_uint_eq(ethtool_get(name, ETHTOOL_GTXCSUM), 1);
	ck_assert_uint_eq(ethtool_get(name, ETHTOOL_GTSO), 0);
	/* TSO without checksum offload means nothing: none is enabled. */
	ck_assert_int_eq(net_backend_set_offloads(be, NET_OFFLOAD_TSO4), 0);
	ck_assert_uint_eq(ethtool_get(name, ETHTOOL_GTXCSUM), 0);
	ck_assert_uint_eq(ethtool_get(name, ETHTOOL_GTSO), 0);
	ck_assert_int_eq(net_backend_set_offloads(be, 1u << 9), -EINVAL);
	net_backend_close(be);
	evloop_destroy(tpeer_loop);
}
END_TEST

START_TEST(test_deleted)
{
	struct net_backend_stats st;
	struct net_backend *be;
	char name[IFNAMSIZ];
	struct tpeer p;

	if (!tap_env("deleted"))
		return;
	be = tap_open(NULL, &p);
	created_name(name);
	sh("ip link del %s", name);
	tpeer_pump(0, 100);
	ck_assert_int_eq(p.link, 0);
	ck_assert_int_eq(tap_send_arp(be, nf_ip(10, 81, 0, 2), nf_ip(10, 81, 0, 1)), 0);
	net_backend_stats(be, &st);
	ck_assert_uint_eq(st.tx_dropped, 1);
	net_backend_close(be);
	evloop_destroy(tpeer_loop);
}
END_TEST

/* Open tap (ifname) and return what was printed; it must fail with (err). */
static void open_fails(const char *ifname, int err, char *msg, size_t cap)
{
	struct net_backend_opts o = { .mode = NET_MODE_TAP, .name = "net1", .ifname = ifname };
	struct net_backend *be = (struct net_backend *)1;
	struct unit_capture c;
	struct tpeer p = { 0 };

	unit_capture_begin(&c);
	ck_assert_int_eq(net_backend_open(&be, &o, tpeer_loop, &tpeer_ops, &p), -err);
	unit_capture_end(&c, msg, cap);
	ck_assert_ptr_null(be);
}

/* Drop CAP_NET_ADMIN from the effective set: root as a user without it. */
static void drop_net_admin(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];

	ck_assert_int_eq(syscall(SYS_capget, &h, d), 0);
	d[CAP_NET_ADMIN / 32].effective &= ~(1u << (CAP_NET_ADMIN % 32));
	ck_assert_int_eq(syscall(SYS_capset, &h, d), 0);
}

START_TEST(test_named)
{
	struct net_backend *be;
	struct tpeer p;
	char msg[512];

	if (!tap_env("named"))
		return;
	sh("ip tuntap add kvt-named mode tap && ip tuntap add kvt-other mode tap user 4242 && "
	   "ip tuntap add kvt-tun mode tun");
	be = tap_open("kvt-named", &p);
	ck_assert_uint_eq(net_backend_offloads(be), ALL_OFFLOADS);
	open_fails("kvt-named", EBUSY, msg, sizeof(msg));
	ck_assert_str_eq(msg,
			 "kvisor: net1: tap: kvt-named is busy (another process has it open)\n");
	net_backend_close(be);
	ck_assert_uint_ne(if_nametoindex("kvt-named"), 0); /* persistent: kept */
	be = tap_open("kvt-named", &p);
	net_backend_close(be);

	open_fails("kvt-none", ENODEV, msg, sizeof(msg));
	ck_assert_str_eq(msg, "kvisor: net1: ifname: no network device kvt-none (create it with "
			      "'ip tuntap add kvt-none mode tap user root')\n");
	open_fails("lo", EINVAL, msg, sizeof(msg));
	ck_assert_str_eq(msg, "kvisor: net1: tap: lo is not a single-queue tap device\n");
	open_fails("kvt-tun", EINVAL, msg, sizeof(msg));
	ck_assert_str_eq(msg, "kvisor: net1: tap: kvt-tun is not a single-queue tap device\n");
	open_fails("kvt-0123456789ab", EINVAL, msg, sizeof(msg));
	ck_assert_str_eq(msg, "kvisor: net1: ifname: 'kvt-0123456789ab' is not 1 to 15 "
			      "characters\n");

	/* Without CAP_NET_ADMIN: only devices made for this user. */
	drop_net_admin();
	open_fails("kvt-other", EPERM, msg, sizeof(msg));
	ck_assert_str_eq(msg, "kvisor: net1: tap: no permission to use kvt-other (make it yours: "
			      "'ip tuntap add kvt-other mode tap user root')\n");
	open_fails(NULL, EPERM, msg, sizeof(msg));
	ck_assert_str_eq(msg, "kvisor: net1: tap: creating a tap device needs CAP_NET_ADMIN; make "
			      "one with 'ip tuntap add NAME mode tap user root' and use "
			      "ifname=NAME\n");
	evloop_destroy(tpeer_loop);
}
END_TEST

/* Give this process a /dev/net/tun anyone may open (as distributions do;
 * this host's is 0600), in a mount namespace of its own. */
static void open_tun_node(void)
{
	ck_assert_int_eq(unshare(CLONE_NEWNS), 0);
	ck_assert_int_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
	ck_assert_int_eq(mount("none", "/dev/net", "tmpfs", 0, "mode=0755"), 0);
	ck_assert_int_eq(mknod("/dev/net/tun", S_IFCHR | 0666, makedev(10, 200)), 0);
	ck_assert_int_eq(chmod("/dev/net/tun", 0666), 0);
}

START_TEST(test_user_owned)
{
	struct net_backend *be;
	struct tpeer p;

	if (!tap_env("user-owned"))
		return;
	/* The host-only recipe for a user without privileges: root makes the
	 * device theirs and gives it an address, kvisor runs as that user. */
	sh("ip tuntap add kvt-user mode tap user 65534 && "
	   "ip addr add 10.80.0.1/24 dev kvt-user && ip link set kvt-user up");
	open_tun_node();
	ck_assert_int_eq(setresgid(65534, 65534, 65534), 0);
	ck_assert_int_eq(setresuid(65534, 65534, 65534), 0);
	be = tap_open("kvt-user", &p);
	arp_and_ping(be, &p, nf_ip(10, 80, 0, 2), nf_ip(10, 80, 0, 1), 1);
	net_backend_close(be);
	ck_assert_uint_ne(if_nametoindex("kvt-user"), 0);
	evloop_destroy(tpeer_loop);
}
END_TEST

START_TEST(test_no_tun_device)
{
	char msg[512];

	if (!tap_env("no-tun"))
		return;
	/* Hide /dev/net in a mount namespace of this test's process only. */
	ck_assert_int_eq(unshare(CLONE_NEWNS), 0);
	ck_assert_int_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
	ck_assert_int_eq(mount("none", "/dev/net", "tmpfs", 0, NULL), 0);
	open_fails(NULL, ENOENT, msg, sizeof(msg));
	ck_assert_str_eq(msg, "kvisor: net1: tap: /dev/net/tun is missing (load the tun module: "
			      "modprobe tun)\n");
	evloop_destroy(tpeer_loop);
}
END_TEST

static Suite *unit_suite(void)
{
	Suite *s = suite_create("net_tap");
	TCase *tc = tcase_create("tap");

	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_host_only);
	tcase_add_test(tc, test_bridged_and_tx_backpressure);
	tcase_add_test(tc, test_rx_backpressure);
	tcase_add_test(tc, test_offloads);
	tcase_add_test(tc, test_deleted);
	tcase_add_test(tc, test_named);
	tcase_add_test(tc, test_user_owned);
	tcase_add_test(tc, test_no_tun_device);
	suite_add_tcase(s, tc);
	return s;
}

#include "unit.h"
