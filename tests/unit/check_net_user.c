/* Unit tests of the user-mode NAT backend (libslirp on the event loop):
 * real exchanges with crafted frames (ARP, DHCP, an IPv6 router
 * advertisement, UDP to a host socket and back, a host forward's SYN), frames
 * into slirp inside send, restrict=on, backpressure, and the exact
 * errors of hostfwd= rules. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kvisor/evloop.h"
#include "kvisor/net.h"
#include "../../src/backends/net_priv.h"
#include "net_frames.h"
#include "net_peer.h"
#include "unit.h"
#include "unit_capture.h"

#define GUEST_IP nf_ip(10, 0, 2, 15)
#define GW_IP    nf_ip(10, 0, 2, 2)

struct ufix {
	struct evloop *loop;
	struct tpeer p;
	struct net_backend *be;
	unsigned seen; /* frames looked at by ufix_wait */
};

static void ufix_open(struct ufix *u, struct net_backend_opts *o)
{
	o->mode = NET_MODE_USER;
	o->name = "net0";
	tpeer_init(&u->p);
	u->seen = 0;
	ck_assert_int_eq(evloop_open(&u->loop, "test"), 0);
	ck_assert_int_eq(net_backend_open(&u->be, o, u->loop, &tpeer_ops, &u->p), 0);
	ck_assert(!net_backend_vnet_hdr(u->be));
	ck_assert_uint_eq(net_backend_offloads(u->be), 0);
}

static void ufix_close(struct ufix *u)
{
	net_backend_close(u->be);
	evloop_destroy(u->loop);
	tpeer_free(&u->p);
}

static void ufix_send(struct ufix *u, const uint8_t *f, size_t len)
{
	struct iovec iov = { (void *)f, len };

	ck_assert_int_eq(net_backend_send(u->be, &iov, 1, len), 0);
}

/* Serve the loop until a frame not seen yet satisfies (match), up to
 * (ms); its index, or -1. */
static int ufix_wait(struct ufix *u, bool (*match)(const uint8_t *f, size_t len, void *arg),
		     void *arg, unsigned ms)
{
	for (unsigned waited = 0; waited <= ms; waited += 10) {
		for (; u->seen < u->p.nframes && u->seen < TPEER_MAX; u->seen++)
			if (match(u->p.frames[u->seen], u->p.lens[u->seen], arg))
				return (int)u->seen++;
		tpeer_wait_frames(u->loop, &u->p, u->seen + 1, 10);
	}
	return -1;
}

static bool match_arp_gw(const uint8_t *f, size_t len, void *arg)
{
	return nf_is_arp_reply(f, len, GW_IP, nf_guest_mac, arg);
}

/* The guest asks for the gateway's MAC (slirp learns the guest's). */
static void arp_gateway(struct ufix *u, uint8_t gw_mac[6])
{
	uint8_t f[64];

	ufix_send(u, f, nf_arp_request(f, nf_guest_mac, GUEST_IP, GW_IP));
	ck_assert_int_ge(ufix_wait(u, match_arp_gw, gw_mac, 2000), 0);
}

START_TEST(test_arp)
{
	struct net_backend_opts o = { 0 };
	struct ufix u;
	uint8_t mac[6];
	struct net_backend_stats st;

	ufix_open(&u, &o);
	arp_gateway(&u, mac);
	/* slirp's MAC for an address: 52:55 then the address. */
	ck_assert_uint_eq(mac[0], 0x52);
	ck_assert_uint_eq(mac[1], 0x55);
	ck_assert_mem_eq(mac + 2, &(uint32_t){ GW_IP }, 4);
	ck_assert_mem_eq(u.p.frames[0], nf_guest_mac, 6);
	net_backend_stats(u.be, &st);
	ck_assert_uint_eq(st.tx_frames, 1);
	ck_assert_uint_eq(st.tx_bytes, NF_ETH_MIN);
	ck_assert_uint_ge(st.rx_frames, 1);
	ufix_close(&u);
}
END_TEST

struct dhcp_want {
	uint32_t xid, yiaddr;
};

static bool match_offer(const uint8_t *f, size_t len, void *arg)
{
	struct dhcp_want *w = arg;
	struct nf_ip4 ip;

	return nf_parse_ip4(f, len, &ip) && ip.proto == NF_IPPROTO_UDP && ip.sport == 67 &&
	       ip.dport == 68 && nf_dhcp_type(ip.data, ip.len, w->xid, &w->yiaddr) == NF_DHCP_OFFER;
}

static void dhcp_offer(struct ufix *u)
{
	struct dhcp_want w = { .xid = 0xabcdef01 };
	uint8_t f[400];

	ufix_send(u, f, nf_dhcp_discover(f, nf_guest_mac, w.xid));
	ck_assert_int_ge(ufix_wait(u, match_offer, &w, 2000), 0);
	ck_assert_uint_eq(w.yiaddr, GUEST_IP);
}

START_TEST(test_dhcp)
{
	struct net_backend_opts o = { 0 };
	struct ufix u;

	ufix_open(&u, &o);
	dhcp_offer(&u);
	ufix_close(&u);
}
END_TEST

static bool match_ra(const uint8_t *f, size_t len, void *arg)
{
	return nf_icmp6_type(f, len) == NF_ICMP6_RA;
}

START_TEST(test_ipv6_router_advert)
{
	struct net_backend_opts o = { 0 };
	struct ufix u;
	uint8_t f[128];
	int i;

	ufix_open(&u, &o);
	ufix_send(&u, f, nf_icmp6_rs(f, nf_guest_mac));
	i = ufix_wait(&u, match_ra, NULL, 2000);
	ck_assert_int_ge(i, 0);
	/* The prefix information option carries fec0::/64. */
	ck_assert_ptr_nonnull(
		memmem(u.p.frames[i], u.p.lens[i], "\xfe\xc0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16));
	ufix_close(&u);
}
END_TEST

/* A UDP socket on 127.0.0.1 and its port. */
static int udp_socket(uint16_t *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);

	ck_assert_int_ge(s, 0);
	ck_assert_int_eq(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(getsockname(s, (struct sockaddr *)&sa, &sl), 0);
	*port = ntohs(sa.sin_port);
	return s;
}

static bool readable(void *arg)
{
	struct pollfd pfd = { .fd = *(int *)arg, .events = POLLIN };

	return poll(&pfd, 1, 0) == 1;
}

struct udp_want {
	uint16_t sport, dport; /* sport 0: any */
	const char *data;
};

static bool match_udp(const uint8_t *f, size_t len, void *arg)
{
	struct udp_want *w = arg;
	struct nf_ip4 ip;

	return nf_parse_ip4(f, len, &ip) && ip.proto == NF_IPPROTO_UDP && ip.src == GW_IP &&
	       ip.dst == GUEST_IP && (!w->sport || ip.sport == w->sport) && ip.dport == w->dport &&
	       ip.len == strlen(w->data) && memcmp(ip.data, w->data, ip.len) == 0;
}

/* The guest sends "ping" to 10.0.2.2:(port) from 10.0.2.15:5555. */
static void udp_to_gateway(struct ufix *u, const uint8_t gw_mac[6], uint16_t port)
{
	uint8_t f[128];

	ufix_send(u, f, nf_udp(f, gw_mac, nf_guest_mac, GUEST_IP, GW_IP, 5555, port, "ping", 4));
}

START_TEST(test_udp_to_host)
{
	struct net_backend_opts o = { 0 };
	struct ufix u;
	uint8_t gw[6];
	uint16_t port;
	int s = udp_socket(&port);
	struct sockaddr_in from;
	socklen_t fl = sizeof(from);
	char buf[16];
	struct udp_want w = { .dport = 5555, .data = "pong!" };

	ufix_open(&u, &o);
	arp_gateway(&u, gw);
	udp_to_gateway(&u, gw, port);
	/* 10.0.2.2 is the host's loopback. */
	ck_assert(trun_until(u.loop, readable, &s, 2000));
	ck_assert_int_eq(recvfrom(s, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl), 4);
	ck_assert_mem_eq(buf, "ping", 4);
	ck_assert_int_eq(sendto(s, "pong!", 5, 0, (struct sockaddr *)&from, fl), 5);
	w.sport = port;
	ck_assert_int_ge(ufix_wait(&u, match_udp, &w, 2000), 0);
	close(s);
	ufix_close(&u);
}
END_TEST

/* Frames go to slirp inside send: its answers (the ARP reply) reach the
 * device before send returns, and a burst of datagrams larger than any
 * queue reaches the host without the loop turning; send never says
 * -EAGAIN. The first frame comes before slirp ever polled: its clock is
 * set first (net_user_clock), or the new UDP session would be expired at
 * the next fill and its answer lost (test_udp_to_host). */
START_TEST(test_frames_inline)
{
	struct net_backend_opts o = { 0 };
	struct ufix u;
	uint8_t f[1600], gw[6];
	char payload[1400], buf[1500];
	uint16_t port;
	int s = udp_socket(&port), rcvbuf = 1 << 20, got = 0;
	struct iovec iov = { f, 0 };

	ck_assert_int_eq(setsockopt(s, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
	ufix_open(&u, &o);
	iov.iov_len = nf_arp_request(f, nf_guest_mac, GUEST_IP, GW_IP);
	ck_assert_int_eq(net_backend_send(u.be, &iov, 1, iov.iov_len), 0);
	ck_assert_uint_eq(u.p.nframes, 1); /* the loop has not run */
	ck_assert(nf_is_arp_reply(u.p.frames[0], u.p.lens[0], GW_IP, nf_guest_mac, gw));
	memset(payload, 'x', sizeof(payload));
	for (unsigned i = 0; i < 300; i++) { /* 420 KB */
		iov.iov_len = nf_udp(f, gw, nf_guest_mac, GUEST_IP, GW_IP, 5555, port, payload,
				     sizeof(payload));
		ck_assert_int_eq(net_backend_send(u.be, &iov, 1, iov.iov_len), 0);
	}
	while (recv(s, buf, sizeof(buf), 0) == (ssize_t)sizeof(payload))
		got++;
	ck_assert_int_eq(got, 300);
	close(s);
	ufix_close(&u);
}
END_TEST

START_TEST(test_restrict)
{
	struct net_backend_opts o = { .restrict_outbound = true };
	struct ufix u;
	uint8_t gw[6];
	uint16_t port;
	int s = udp_socket(&port);

	ufix_open(&u, &o);
	arp_gateway(&u, gw);
	udp_to_gateway(&u, gw, port);
	trun_for(u.loop, 300);
	ck_assert(!readable(&s));
	/* The stack did handle frames meanwhile: DHCP still answers. */
	dhcp_offer(&u);
	ck_assert(!readable(&s));
	close(s);
	ufix_close(&u);
}
END_TEST

/* A free port on 127.0.0.1 for (type), found by binding port 0. */
static uint16_t free_port(int type)
{
	uint16_t port;
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int s = socket(AF_INET, type, 0);

	ck_assert_int_eq(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(getsockname(s, (struct sockaddr *)&sa, &sl), 0);
	port = ntohs(sa.sin_port);
	close(s);
	return port;
}

static bool match_syn(const uint8_t *f, size_t len, void *arg)
{
	struct nf_ip4 ip;

	return nf_parse_ip4(f, len, &ip) && ip.proto == NF_IPPROTO_TCP && ip.dst == GUEST_IP &&
	       ip.dport == *(uint16_t *)arg &&
	       (ip.tcp_flags & (NF_TCP_SYN | NF_TCP_ACK)) == NF_TCP_SYN;
}

START_TEST(test_hostfwd_tcp)
{
	struct net_backend_opts o = { 0 };
	struct ufix u;
	char fwd[64];
	uint8_t gw[6];
	uint16_t port = free_port(SOCK_STREAM), gport = 8080;
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				  .sin_port = htons(port) };
	int c;

	snprintf(fwd, sizeof(fwd), "tcp::%u-:%u", port, gport);
	o.hostfwd[0] = fwd;
	o.nr_hostfwd = 1;
	ufix_open(&u, &o);
	arp_gateway(&u, gw);
	c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	ck_assert(connect(c, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EINPROGRESS);
	ck_assert_int_ge(ufix_wait(&u, match_syn, &gport, 2000), 0);
	close(c);
	ufix_close(&u);
}
END_TEST

START_TEST(test_backpressure)
{
	struct net_backend_opts o = { 0 };
	struct ufix u;
	char fwd[64];
	uint8_t gw[6];
	uint16_t port;
	int s = udp_socket(&port);
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct udp_want w = { .sport = 0, .dport = 7777, .data = "held" };
	unsigned before;

	close(s); /* the port is for the forward */
	snprintf(fwd, sizeof(fwd), "udp:127.0.0.1:%u-10.0.2.15:7777", port);
	o.hostfwd[0] = fwd;
	o.nr_hostfwd = 1;
	ufix_open(&u, &o);
	arp_gateway(&u, gw);
	/* The device is full: the datagram waits in slirp's host socket. */
	u.p.can_rx = false;
	before = u.p.nframes;
	s = socket(AF_INET, SOCK_DGRAM, 0);
	sa.sin_port = htons(port);
	ck_assert_int_eq(sendto(s, "held", 4, 0, (struct sockaddr *)&sa, sizeof(sa)), 4);
	trun_for(u.loop, 200);
	ck_assert_uint_eq(u.p.nframes, before);
	u.p.can_rx = true;
	net_backend_rx_ready(u.be);
	/* From the host as the guest sees it (10.0.2.2), any source port. */
	ck_assert_int_ge(ufix_wait(&u, match_udp, &w, 2000), 0);
	ck_assert_uint_eq(u.p.rx_refused, 0);
	close(s);
	ufix_close(&u);
}
END_TEST

/* Open with hostfwd (text): fails with (err) and exactly (msg). */
static void hostfwd_fails(const char *text, int err, const char *msg)
{
	struct net_backend_opts o = { .mode = NET_MODE_USER, .name = "net0", .nr_hostfwd = 1 };

	o.hostfwd[0] = text;
	tpeer_open_fails(&o, err, msg);
}

START_TEST(test_hostfwd_errors)
{
	static const struct {
		const char *text, *msg;
	} bad[] = {
		{ "8080:80", "expected tcp|udp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT" },
		{ "sctp::8080-:80", "unknown protocol 'sctp' (tcp or udp)" },
		{ "tcp:1.2.3:8080-:80", "bad host address '1.2.3'" },
		{ "tcp::http-:80", "bad host port 'http' (1-65535)" },
		{ "tcp::65536-:80", "bad host port '65536' (1-65535)" },
		{ "tcp::-:80", "bad host port '' (1-65535)" },
		{ "udp::8080-10.0.2.300:80", "bad guest address '10.0.2.300'" },
		{ "tcp::8080-:0", "bad guest port '0' (1-65535)" },
		{ "tcp::8080-:+80", "bad guest port '+80' (1-65535)" },
		{ "tcp::8080-80", "expected [ADDR]:PORT for the guest side, got '80'" },
		{ "tcp:8080-:80", "expected [ADDR]:PORT for the host side, got '8080'" },
		{ "tcp::8080-10.0.3.15:80", "guest address 10.0.3.15 is not a guest's address in "
					    "10.0.2.0/24" },
		{ "tcp::8080-10.0.2.2:80", "guest address 10.0.2.2 is not a guest's address in "
					   "10.0.2.0/24" },
	};
	char msg[512];

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(msg, sizeof(msg), "kvisor: net0: hostfwd '%s': %s\n", bad[i].text,
			 bad[i].msg);
		hostfwd_fails(bad[i].text, -EINVAL, msg);
	}
}
END_TEST

START_TEST(test_hostfwd_port_in_use)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	char fwd[64], msg[256];
	int l = socket(AF_INET, SOCK_STREAM, 0);
	unsigned port;

	ck_assert_int_eq(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(l, 1), 0);
	ck_assert_int_eq(getsockname(l, (struct sockaddr *)&sa, &sl), 0);
	port = ntohs(sa.sin_port);
	snprintf(fwd, sizeof(fwd), "tcp:127.0.0.1:%u-:80", port);
	snprintf(msg, sizeof(msg),
		 "kvisor: net0: hostfwd '%s': cannot listen on tcp 127.0.0.1:%u: Address already "
		 "in use\n",
		 fwd, port);
	hostfwd_fails(fwd, -EADDRINUSE, msg);
	close(l);
}
END_TEST

START_TEST(test_hostfwd_parse)
{
	struct net_hostfwd f;
	char err[128];

	ck_assert_int_eq(net_hostfwd_parse("udp:0.0.0.0:53-10.0.2.15:5353", &f, err, sizeof(err)),
			 0);
	ck_assert(f.udp);
	ck_assert_uint_eq(f.host_addr, 0);
	ck_assert_uint_eq(f.host_port, 53);
	ck_assert_uint_eq(f.guest_addr, GUEST_IP);
	ck_assert_uint_eq(f.guest_port, 5353);
	/* Empty protocol and addresses: tcp, 127.0.0.1, the mode's guest. */
	ck_assert_int_eq(net_hostfwd_parse("::8080-:80", &f, err, sizeof(err)), 0);
	ck_assert(!f.udp);
	ck_assert_uint_eq(f.host_addr, nf_ip(127, 0, 0, 1));
	ck_assert_uint_eq(f.host_port, 8080);
	ck_assert_uint_eq(f.guest_addr, 0);
	ck_assert_uint_eq(f.guest_port, 80);
}
END_TEST

static Suite *unit_suite(void)
{
	Suite *s = suite_create("net_user");
	TCase *tc = tcase_create("user");

	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_arp);
	tcase_add_test(tc, test_dhcp);
	tcase_add_test(tc, test_ipv6_router_advert);
	tcase_add_test(tc, test_udp_to_host);
	tcase_add_test(tc, test_frames_inline);
	tcase_add_test(tc, test_restrict);
	tcase_add_test(tc, test_hostfwd_tcp);
	tcase_add_test(tc, test_backpressure);
	tcase_add_test(tc, test_hostfwd_errors);
	tcase_add_test(tc, test_hostfwd_port_in_use);
	tcase_add_test(tc, test_hostfwd_parse);
	suite_add_tcase(s, tc);
	return s;
}
