/* Ethernet frames for network tests: builders (ARP, IPv4 with UDP or an
 * ICMP echo request, a DHCP discover, an ICMPv6 router solicitation) with
 * real checksums, so that slirp, passt or a kernel behind a tap answers
 * them; parsers for the fields tests look at in replies (ARP, UDP, TCP,
 * ICMP echo, DHCP). IPv4 addresses are uint32_t in network order (nf_ip). */
#ifndef KVISOR_TESTS_NET_FRAMES_H
#define KVISOR_TESTS_NET_FRAMES_H

#include <arpa/inet.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define NF_ETH_HLEN        14u
#define NF_ETH_MIN         60u /* without the FCS: frames are padded to this */
#define NF_ETH_ARP         0x0806
#define NF_ETH_IP          0x0800
#define NF_IP_HLEN         20u
#define NF_UDP_HLEN        8u
#define NF_ICMP_HLEN       8u /* an echo request or reply, before its data */
#define NF_IPPROTO_ICMP    1
#define NF_IPPROTO_TCP     6
#define NF_IPPROTO_UDP     17
#define NF_TCP_SYN         0x02
#define NF_TCP_ACK         0x10
#define NF_DHCP_DISCOVER   1
#define NF_DHCP_OFFER      2
#define NF_ICMP_ECHO_REPLY 0
#define NF_ICMP_ECHO       8

static const uint8_t nf_bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
static const uint8_t nf_guest_mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

static inline uint32_t nf_ip(unsigned a, unsigned b, unsigned c, unsigned d)
{
	return htonl(a << 24 | b << 16 | c << 8 | d);
}

static inline uint16_t nf_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline void nf_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* The running one's-complement sum of (len) bytes, added to (sum). */
static inline uint32_t nf_sum(const void *data, size_t len, uint32_t sum)
{
	const uint8_t *p = data;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += nf_get16(p + i);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

static inline uint16_t nf_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* The Ethernet header; returns its length. */
static inline size_t nf_eth(uint8_t *f, const uint8_t dst[6], const uint8_t src[6], uint16_t type)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	nf_put16(f + 12, type);
	return NF_ETH_HLEN;
}

/* An ARP request from (mac, sip) for (tip), broadcast, padded to 60 bytes. */
static inline size_t nf_arp_request(uint8_t *f, const uint8_t mac[6], uint32_t sip, uint32_t tip)
{
	uint8_t *a = f + nf_eth(f, nf_bcast, mac, NF_ETH_ARP);

	memset(a, 0, NF_ETH_MIN - NF_ETH_HLEN);
	nf_put16(a, 1);          /* Ethernet */
	nf_put16(a + 2, 0x0800); /* IPv4 */
	a[4] = 6;
	a[5] = 4;
	nf_put16(a + 6, 1); /* request */
	memcpy(a + 8, mac, 6);
	memcpy(a + 14, &sip, 4);
	memcpy(a + 24, &tip, 4);
	return NF_ETH_MIN;
}

/* An IPv4 header (no options, checksum set) at (ip) for (l4len) bytes of
 * protocol (proto) from (src) to (dst); returns where those bytes go. */
static inline uint8_t *nf_ip4_hdr(uint8_t *ip, uint8_t proto, uint32_t src, uint32_t dst,
				  size_t l4len)
{
	memset(ip, 0, NF_IP_HLEN);
	ip[0] = 0x45; /* version 4, 5 words */
	nf_put16(ip + 2, (uint16_t)(NF_IP_HLEN + l4len));
	ip[8] = 64; /* TTL */
	ip[9] = proto;
	memcpy(ip + 12, &src, 4);
	memcpy(ip + 16, &dst, 4);
	nf_put16(ip + 10, nf_fold(nf_sum(ip, NF_IP_HLEN, 0)));
	return ip + NF_IP_HLEN;
}

/* A UDP datagram in IPv4 in Ethernet, both checksums set; its length. */
static inline size_t nf_udp(uint8_t *f, const uint8_t dst_mac[6], const uint8_t src_mac[6],
			    uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport,
			    const void *data, size_t len)
{
	uint16_t ulen = (uint16_t)(NF_UDP_HLEN + len);
	uint8_t *ip = f + nf_eth(f, dst_mac, src_mac, NF_ETH_IP);
	uint8_t *u = nf_ip4_hdr(ip, NF_IPPROTO_UDP, src, dst, ulen);
	uint32_t sum;

	nf_put16(u, sport);
	nf_put16(u + 2, dport);
	nf_put16(u + 4, ulen);
	nf_put16(u + 6, 0);
	memcpy(u + NF_UDP_HLEN, data, len);
	/* The pseudo header: addresses, protocol, UDP length. */
	sum = nf_sum(ip + 12, 8, NF_IPPROTO_UDP + ulen);
	sum = nf_fold(nf_sum(u, ulen, sum));
	nf_put16(u + 6, sum ? (uint16_t)sum : 0xffff);
	return NF_ETH_HLEN + NF_IP_HLEN + ulen;
}

/* An ICMP echo request (id, seq) with (plen) bytes of data (a pattern
 * from seq) in IPv4 in Ethernet, checksums set; its length. */
static inline size_t nf_icmp_echo(uint8_t *f, const uint8_t dst_mac[6], const uint8_t src_mac[6],
				  uint32_t src, uint32_t dst, uint16_t id, uint16_t seq,
				  size_t plen)
{
	size_t ilen = NF_ICMP_HLEN + plen;
	uint8_t *ip = f + nf_eth(f, dst_mac, src_mac, NF_ETH_IP);
	uint8_t *m = nf_ip4_hdr(ip, NF_IPPROTO_ICMP, src, dst, ilen);

	m[0] = NF_ICMP_ECHO;
	m[1] = 0;
	nf_put16(m + 2, 0);
	nf_put16(m + 4, id);
	nf_put16(m + 6, seq);
	for (size_t i = 0; i < plen; i++)
		m[NF_ICMP_HLEN + i] = (uint8_t)(i * 7 + seq);
	nf_put16(m + 2, nf_fold(nf_sum(m, ilen, 0)));
	return NF_ETH_HLEN + NF_IP_HLEN + ilen;
}

/* A DHCP discover from (mac) with transaction id (xid); its length. */
static inline size_t nf_dhcp_discover(uint8_t *f, const uint8_t mac[6], uint32_t xid)
{
	uint8_t b[300] = { 0 };

	b[0] = 1; /* BOOTREQUEST */
	b[1] = 1; /* Ethernet */
	b[2] = 6;
	memcpy(b + 4, &xid, 4);
	nf_put16(b + 10, 0x8000); /* broadcast reply */
	memcpy(b + 28, mac, 6);
	b[236] = 99, b[237] = 130, b[238] = 83, b[239] = 99; /* magic cookie */
	b[240] = 53, b[241] = 1, b[242] = NF_DHCP_DISCOVER;
	b[243] = 255;
	return nf_udp(f, nf_bcast, mac, 0, 0xffffffff, 68, 67, b, sizeof(b));
}

#define NF_ETH_IP6       0x86dd
#define NF_IP6_HLEN      40u
#define NF_IPPROTO_ICMP6 58
#define NF_ICMP6_RS      133
#define NF_ICMP6_RA      134

/* An ICMPv6 router solicitation from (mac)'s link-local address to all
 * routers (ff02::2), checksum set; its length. */
static inline size_t nf_icmp6_rs(uint8_t *f, const uint8_t mac[6])
{
	static const uint8_t all_routers_mac[6] = { 0x33, 0x33, 0, 0, 0, 2 };
	uint8_t *ip = f + nf_eth(f, all_routers_mac, mac, NF_ETH_IP6), *icmp = ip + NF_IP6_HLEN;
	const uint16_t plen = 8;
	uint32_t sum;

	memset(ip, 0, NF_IP6_HLEN + plen);
	ip[0] = 0x60;
	nf_put16(ip + 4, plen);
	ip[6] = NF_IPPROTO_ICMP6;
	ip[7] = 255;
	ip[8] = 0xfe, ip[9] = 0x80; /* fe80::EUI-64 of (mac) */
	ip[16] = mac[0] ^ 2, ip[17] = mac[1], ip[18] = mac[2], ip[19] = 0xff;
	ip[20] = 0xfe, ip[21] = mac[3], ip[22] = mac[4], ip[23] = mac[5];
	ip[24] = 0xff, ip[25] = 0x02, ip[39] = 2; /* ff02::2 */
	icmp[0] = NF_ICMP6_RS;
	/* The pseudo header: addresses, length, next header. */
	sum = nf_sum(ip + 8, 32, plen + NF_IPPROTO_ICMP6);
	nf_put16(icmp + 2, nf_fold(nf_sum(icmp, plen, sum)));
	return NF_ETH_HLEN + NF_IP6_HLEN + plen;
}

/* The ICMPv6 type of an IPv6 frame, -1 if it is not one. */
static inline int nf_icmp6_type(const uint8_t *f, size_t len)
{
	if (len < NF_ETH_HLEN + NF_IP6_HLEN + 4 || nf_get16(f + 12) != NF_ETH_IP6 ||
	    f[NF_ETH_HLEN + 6] != NF_IPPROTO_ICMP6)
		return -1;
	return f[NF_ETH_HLEN + NF_IP6_HLEN];
}

/* An ARP reply from (sip) addressed to MAC (to)? Its sender MAC into (sha)
 * if non-NULL. */
static inline bool nf_is_arp_reply(const uint8_t *f, size_t len, uint32_t sip, const uint8_t to[6],
				   uint8_t sha[6])
{
	const uint8_t *a = f + NF_ETH_HLEN;

	if (len < NF_ETH_HLEN + 28 || nf_get16(f + 12) != NF_ETH_ARP || memcmp(f, to, 6) != 0 ||
	    nf_get16(a + 6) != 2 || memcmp(a + 14, &sip, 4) != 0)
		return false;
	if (sha)
		memcpy(sha, a + 8, 6);
	return true;
}

struct nf_ip4 {
	uint32_t src, dst;
	uint8_t proto;
	const uint8_t *l4; /* what follows the IP header, up to its total length */
	size_t l4_len;
	uint16_t sport, dport; /* UDP and TCP */
	uint8_t tcp_flags;
	const uint8_t *data; /* the UDP payload */
	size_t len;
};

/* An IPv4 frame with at least 8 bytes after its header (UDP, TCP, ICMP):
 * its fields into (out). The IP header checksum must be right. */
static inline bool nf_parse_ip4(const uint8_t *f, size_t len, struct nf_ip4 *out)
{
	const uint8_t *ip = f + NF_ETH_HLEN, *l4;
	size_t ihl, tot;

	if (len < NF_ETH_HLEN + NF_IP_HLEN || nf_get16(f + 12) != NF_ETH_IP || ip[0] >> 4 != 4)
		return false;
	ihl = (size_t)(ip[0] & 15) * 4;
	tot = nf_get16(ip + 2);
	if (ihl < NF_IP_HLEN || tot < ihl + 8 || NF_ETH_HLEN + tot > len ||
	    nf_fold(nf_sum(ip, ihl, 0)) != 0)
		return false;
	l4 = ip + ihl;
	memset(out, 0, sizeof(*out));
	memcpy(&out->src, ip + 12, 4);
	memcpy(&out->dst, ip + 16, 4);
	out->proto = ip[9];
	out->l4 = l4;
	out->l4_len = tot - ihl;
	if (out->proto == NF_IPPROTO_UDP || out->proto == NF_IPPROTO_TCP) {
		out->sport = nf_get16(l4);
		out->dport = nf_get16(l4 + 2);
	}
	if (out->proto == NF_IPPROTO_UDP) {
		out->data = l4 + NF_UDP_HLEN;
		out->len = tot - ihl - NF_UDP_HLEN;
	} else if (out->proto == NF_IPPROTO_TCP && tot >= ihl + 20) {
		out->tcp_flags = l4[13];
	}
	return true;
}

/* An ICMP echo reply (id, seq) from (sip) to (dip) with (plen) bytes of
 * data, both checksums right? */
static inline bool nf_is_icmp_reply(const uint8_t *f, size_t len, uint32_t sip, uint32_t dip,
				    uint16_t id, uint16_t seq, size_t plen)
{
	struct nf_ip4 ip;

	if (!nf_parse_ip4(f, len, &ip) || ip.proto != NF_IPPROTO_ICMP || ip.src != sip ||
	    ip.dst != dip || ip.l4_len != NF_ICMP_HLEN + plen)
		return false;
	return ip.l4[0] == NF_ICMP_ECHO_REPLY && nf_fold(nf_sum(ip.l4, ip.l4_len, 0)) == 0 &&
	       nf_get16(ip.l4 + 4) == id && nf_get16(ip.l4 + 6) == seq;
}

/* The DHCP message type of a reply to (xid), its offered address into
 * (yiaddr); -1 if (data, len) is not one. */
static inline int nf_dhcp_type(const uint8_t *data, size_t len, uint32_t xid, uint32_t *yiaddr)
{
	if (len < 244 || data[0] != 2 || memcmp(data + 4, &xid, 4) != 0 || data[236] != 99)
		return -1;
	memcpy(yiaddr, data + 16, 4);
	for (size_t i = 240; i + 2 < len && data[i] != 255;) {
		if (data[i] == 0) {
			i++;
			continue;
		}
		if (data[i] == 53 && data[i + 1] == 1)
			return data[i + 2];
		i += 2u + data[i + 1];
	}
	return -1;
}

#endif
