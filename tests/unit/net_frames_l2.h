/* Frame builders and parsers for network backend tests: Ethernet, ARP,
 * IPv4 and ICMP echo, with real checksums, so a kernel on the other side of
 * a tap answers them. Addresses are host-order uint32_t (10.0.0.1 is
 * 0x0a000001). Include once per test file. */
#ifndef KVISOR_NET_FRAMES_L2_H
#define KVISOR_NET_FRAMES_L2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define NFL2_ETH_ARP  0x0806
#define NFL2_ETH_IPV4 0x0800
#define NFL2_ETH_LEN  14u
#define NFL2_MIN_LEN  60u /* shortest Ethernet frame without its FCS */

static const uint8_t nfl2_broadcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

static inline void nfl2_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void nfl2_put32(uint8_t *p, uint32_t v)
{
	nfl2_put16(p, (uint16_t)(v >> 16));
	nfl2_put16(p + 2, (uint16_t)v);
}

static inline uint16_t nfl2_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t nfl2_get32(const uint8_t *p)
{
	return (uint32_t)nfl2_get16(p) << 16 | nfl2_get16(p + 2);
}

/* The Internet checksum (RFC 1071) of (len) bytes: 0 over data that
 * includes a correct checksum field. */
static inline uint16_t nfl2_csum(const uint8_t *p, size_t len)
{
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += nfl2_get16(p + i);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* An Ethernet header at (f); returns its length. */
static inline size_t nfl2_eth(uint8_t *f, const uint8_t dst[6], const uint8_t src[6], uint16_t type)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	nfl2_put16(f + 12, type);
	return NFL2_ETH_LEN;
}

/* A broadcast ARP request from (mac, ip) for (target) at (f), padded to
 * NFL2_MIN_LEN; returns the frame's length. */
static inline size_t nfl2_arp_request(uint8_t *f, const uint8_t mac[6], uint32_t ip,
				      uint32_t target)
{
	uint8_t *a = f + nfl2_eth(f, nfl2_broadcast, mac, NFL2_ETH_ARP);

	memset(a, 0, NFL2_MIN_LEN - NFL2_ETH_LEN);
	nfl2_put16(a, 1);                 /* Ethernet */
	nfl2_put16(a + 2, NFL2_ETH_IPV4); /* IPv4 */
	a[4] = 6;                         /* hardware address length */
	a[5] = 4;                         /* protocol address length */
	nfl2_put16(a + 6, 1);             /* request */
	memcpy(a + 8, mac, 6);            /* sender MAC */
	nfl2_put32(a + 14, ip);           /* sender IP */
	nfl2_put32(a + 24, target);       /* target IP (target MAC 0) */
	return NFL2_MIN_LEN;
}

/* Is (f, len) an ARP reply telling that (ip) is at some MAC, addressed to
 * (to)? That MAC in (mac). */
static inline bool nfl2_is_arp_reply(const uint8_t *f, size_t len, uint32_t ip, const uint8_t to[6],
				     uint8_t mac[6])
{
	const uint8_t *a = f + NFL2_ETH_LEN;

	if (len < NFL2_ETH_LEN + 28 || nfl2_get16(f + 12) != NFL2_ETH_ARP ||
	    memcmp(f, to, 6) != 0 || nfl2_get16(a + 6) != 2 || nfl2_get32(a + 14) != ip)
		return false;
	memcpy(mac, a + 8, 6);
	return true;
}

/* An IPv4 ICMP echo request (id, seq) with (plen) bytes of payload from
 * (smac, sip) to (dmac, dip) at (f); returns the frame's length. */
static inline size_t nfl2_icmp_echo(uint8_t *f, const uint8_t dmac[6], const uint8_t smac[6],
				    uint32_t sip, uint32_t dip, uint16_t id, uint16_t seq,
				    size_t plen)
{
	uint8_t *ip = f + nfl2_eth(f, dmac, smac, NFL2_ETH_IPV4);
	uint8_t *icmp = ip + 20;
	size_t ilen = 8 + plen;

	memset(ip, 0, 20);
	ip[0] = 0x45; /* version 4, 5 words */
	nfl2_put16(ip + 2, (uint16_t)(20 + ilen));
	nfl2_put16(ip + 6, 0x4000); /* DF */
	ip[8] = 64;                 /* TTL */
	ip[9] = 1;                  /* ICMP */
	nfl2_put32(ip + 12, sip);
	nfl2_put32(ip + 16, dip);
	nfl2_put16(ip + 10, nfl2_csum(ip, 20));
	icmp[0] = 8; /* echo request */
	icmp[1] = 0;
	nfl2_put16(icmp + 2, 0);
	nfl2_put16(icmp + 4, id);
	nfl2_put16(icmp + 6, seq);
	for (size_t i = 0; i < plen; i++)
		icmp[8 + i] = (uint8_t)(i * 7 + seq);
	nfl2_put16(icmp + 2, nfl2_csum(icmp, ilen));
	return NFL2_ETH_LEN + 20 + ilen;
}

/* Is (f, len) an ICMP echo reply (id, seq) from (sip) to (dip), with both
 * checksums right and (plen) bytes of payload? */
static inline bool nfl2_is_icmp_reply(const uint8_t *f, size_t len, uint32_t sip, uint32_t dip,
				      uint16_t id, uint16_t seq, size_t plen)
{
	const uint8_t *ip = f + NFL2_ETH_LEN, *icmp = ip + 20;

	if (len < NFL2_ETH_LEN + 28 + plen || nfl2_get16(f + 12) != NFL2_ETH_IPV4 ||
	    ip[0] != 0x45 || ip[9] != 1 || nfl2_get16(ip + 2) != 28 + plen)
		return false;
	return nfl2_csum(ip, 20) == 0 && nfl2_get32(ip + 12) == sip && nfl2_get32(ip + 16) == dip &&
	       icmp[0] == 0 && nfl2_csum(icmp, 8 + plen) == 0 && nfl2_get16(icmp + 4) == id &&
	       nfl2_get16(icmp + 6) == seq;
}

#endif
