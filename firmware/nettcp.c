/* User-mode NAT benchmark guest (tools/bench/net --user): one TCP stream
 * from a minimal sender at CPL3 on the polled virtio-net driver (fw_net.h).
 * It resolves the gateway with ARP, connects to tcp.port on tcp.dst through
 * it (user-mode NAT maps its gateway address to the host's loopback),
 * sends tcp.bytes bytes within the advertised window, follows the ACKs and
 * closes with FIN. No retransmission: the path through a VMM's NAT to host
 * loopback loses nothing, and a segment that is never acknowledged ends the
 * run as a stall. Output on COM1:
 *   nettcp: tcp bytes=<n> segments=<n> tsc=<ticks> kicks=<n> acks=<n>
 *   nettcp: done                      (or "nettcp: error: ...")
 * Command line (0x for hexadecimal): tcp.ip (0x0a00020f, 10.0.2.15),
 * tcp.gw (0x0a000202, also the destination), tcp.port (5201), tcp.bytes
 * (1 GiB), tcp.mss (1460), tcp.stall_tsc (1e10), tcp.batch (32). */
#include "fw.h"
#include "fw_net.h"

#define NET_GPA     0x800000ULL
#define BAR_BASE    0xc0000000ULL
#define ETH_IP      0x0800
#define ETH_ARP     0x0806
#define IP_TCP      6
#define TCP_FIN     0x01
#define TCP_SYN     0x02
#define TCP_RST     0x04
#define TCP_PSH     0x08
#define TCP_ACK     0x10
#define SPORT       40000
#define RETRY_TICKS 1000000000ULL  /* ARP and SYN are sent again after this */
#define HDRS        (14 + 20 + 20) /* Ethernet, IPv4, TCP without options */

enum tcp_state { CLOSED, SYN_SENT, ESTABLISHED, FIN_SENT };

static struct fw_net net;
static uint32_t my_ip, gw_ip;
static uint16_t dport;
static uint8_t gw_mac[6];
static bool gw_known, peer_fin;
static enum tcp_state state;
static uint32_t iss, snd_una, snd_nxt, rcv_nxt, snd_wnd;
static unsigned snd_scale, mss, batch, pending;
static uint64_t stall_ticks, acks;
static uint16_t free_slots[FW_NET_Q], nfree, ip_id;
static char err[200];

static void put16(volatile uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(volatile uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static uint16_t get16(volatile const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(volatile const uint8_t *p)
{
	return (uint32_t)get16(p) << 16 | get16(p + 2);
}

/* The Internet checksum (RFC 1071) of (len) bytes, added to (sum). */
static uint32_t csum_add(uint32_t sum, volatile const uint8_t *p, unsigned len)
{
	for (; len > 1; p += 2, len -= 2)
		sum += get16(p);
	if (len)
		sum += (uint32_t)p[0] << 8;
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void eth_header(volatile uint8_t *f, const uint8_t *dst, uint16_t type)
{
	for (unsigned i = 0; i < 6; i++) {
		f[i] = dst[i];
		f[6 + i] = net.mac[i];
	}
	put16(f + 12, type);
}

/* Transmit slots come back through the used ring into a free list. */
static void tx_reap(void)
{
	uint32_t slot, len;

	while (fw_vq_get_used(&net.tx, &slot, &len))
		if (slot < net.tx.size)
			free_slots[nfree++] = (uint16_t)slot;
}

/* A free slot's frame (after its vnet header, zeroed), or NULL. */
static volatile uint8_t *tx_frame(unsigned *slot)
{
	volatile uint8_t *b;

	tx_reap();
	if (!nfree)
		return NULL;
	*slot = free_slots[--nfree];
	b = fw_net_tx_buf(&net, *slot);
	memset((void *)b, 0, FW_NET_HDR_LEN);
	return b + FW_NET_HDR_LEN;
}

static void tx_send(unsigned slot, uint32_t len, bool now)
{
	fw_net_tx_desc(&net, slot, len);
	fw_vq_add(&net.tx, (uint16_t)slot);
	if (now || ++pending >= batch) {
		fw_vq_publish(&net.tx);
		pending = 0;
	}
}

static void arp_send(uint16_t op, const uint8_t *tha, uint32_t tpa)
{
	static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	volatile uint8_t *f;
	unsigned slot;

	if (!(f = tx_frame(&slot)))
		return;
	memset((void *)f, 0, 60);
	eth_header(f, op == 1 ? bcast : tha, ETH_ARP);
	put16(f + 14, 1);      /* Ethernet */
	put16(f + 16, ETH_IP); /* IPv4 */
	f[18] = 6;
	f[19] = 4;
	put16(f + 20, op);
	for (unsigned i = 0; i < 6; i++) {
		f[22 + i] = net.mac[i];
		f[32 + i] = op == 1 ? 0 : tha[i];
	}
	put32(f + 28, my_ip);
	put32(f + 38, tpa);
	tx_send(slot, 60, true);
}

/* A TCP segment with (flags), (opts) option bytes and, for data, the
 * first (len) bytes the slot holds after the headers (whatever they are:
 * the server only counts them). -1 if no transmit slot is free. */
static int tcp_send(uint8_t flags, const uint8_t *opts, unsigned nopts, unsigned len, bool now)
{
	volatile uint8_t *f, *ip, *th;
	unsigned slot, thl = 20 + nopts;
	uint32_t sum;

	if (!(f = tx_frame(&slot)))
		return -1;
	ip = f + 14;
	th = ip + 20;
	eth_header(f, gw_mac, ETH_IP);
	ip[0] = 0x45;
	ip[1] = 0;
	put16(ip + 2, (uint16_t)(20 + thl + len));
	put16(ip + 4, ip_id++);
	put16(ip + 6, 0x4000); /* DF */
	ip[8] = 64;
	ip[9] = IP_TCP;
	put16(ip + 10, 0);
	put32(ip + 12, my_ip);
	put32(ip + 16, gw_ip);
	put16(ip + 10, csum_fold(csum_add(0, ip, 20)));
	put16(th, SPORT);
	put16(th + 2, dport);
	put32(th + 4, snd_nxt);
	put32(th + 8, flags & TCP_ACK ? rcv_nxt : 0);
	th[12] = (uint8_t)(thl / 4 << 4);
	th[13] = flags;
	put16(th + 14, 0xffff);
	put32(th + 16, 0); /* checksum, urgent pointer */
	for (unsigned i = 0; i < nopts; i++)
		th[20 + i] = opts[i];
	/* Pseudo header, TCP header, payload (RFC 793). */
	sum = (my_ip >> 16) + (my_ip & 0xffff) + (gw_ip >> 16) + (gw_ip & 0xffff) + IP_TCP + thl +
	      len;
	put16(th + 16, csum_fold(csum_add(sum, th, thl + len)));
	snd_nxt += len + (flags & (TCP_SYN | TCP_FIN) ? 1 : 0);
	tx_send(slot, 14 + 20 + thl + len, now);
	return 0;
}

/* The options of the peer's SYN: its MSS and window scale. */
static void syn_options(volatile const uint8_t *o, unsigned n, bool *scaled)
{
	for (unsigned i = 0; i < n && o[i];) {
		if (o[i] == 1) {
			i++;
			continue;
		}
		if (i + 1 >= n || o[i + 1] < 2 || i + o[i + 1] > n)
			return;
		if (o[i] == 2 && o[i + 1] == 4 && get16(o + i + 2) < mss)
			mss = get16(o + i + 2);
		if (o[i] == 3 && o[i + 1] == 3) {
			snd_scale = o[i + 2] > 14 ? 14 : o[i + 2];
			*scaled = true;
		}
		i += o[i + 1];
	}
}

/* a <= b in sequence space (RFC 793, modulo 2^32). */
static bool seq_le(uint32_t a, uint32_t b)
{
	return b - a < 0x80000000u;
}

static int tcp_input(volatile const uint8_t *th, unsigned len)
{
	uint8_t flags = th[13];
	unsigned thl = (unsigned)(th[12] >> 4) * 4;
	uint32_t ack = get32(th + 8);
	bool scaled = false;

	if (thl < 20 || thl > len || get16(th) != dport || get16(th + 2) != SPORT)
		return 0;
	if (flags & TCP_RST) {
		fw_snprintf(err, sizeof(err), "connection reset by the peer (state %d)", state);
		return -1;
	}
	if (state == SYN_SENT && (flags & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK) &&
	    ack == iss + 1) {
		rcv_nxt = get32(th + 4) + 1;
		snd_una = ack;
		syn_options(th + 20, thl - 20, &scaled);
		if (!scaled)
			snd_scale = 0;
		snd_wnd = (uint32_t)get16(th + 14) << snd_scale;
		state = ESTABLISHED;
		(void)tcp_send(TCP_ACK, NULL, 0, 0, true);
		return 0;
	}
	if (state < ESTABLISHED || !(flags & TCP_ACK))
		return 0;
	acks++;
	/* An ACK of new data moves snd_una; any in-range ACK updates the window. */
	if (seq_le(snd_una, ack) && seq_le(ack, snd_nxt)) {
		snd_una = ack;
		snd_wnd = (uint32_t)get16(th + 14) << snd_scale;
	}
	if (flags & TCP_FIN && !peer_fin && get32(th + 4) + (len - thl) == rcv_nxt) {
		peer_fin = true;
		rcv_nxt++;
		(void)tcp_send(TCP_ACK, NULL, 0, 0, true);
	}
	return 0;
}

/* Every received frame: ARP for us or from the gateway, TCP for our port;
 * the buffers go back in groups of (batch) or when the ring is drained. */
static int rx_poll(bool *any)
{
	uint32_t slot, len;
	unsigned back = 0;
	int ret = 0;

	while (!ret && fw_vq_get_used(&net.rx, &slot, &len)) {
		volatile const uint8_t *f = fw_net_rx_buf(&net, slot) + FW_NET_HDR_LEN;
		volatile const uint8_t *ip = f + 14;
		unsigned flen = len - FW_NET_HDR_LEN, ihl;

		if (slot >= net.rx.size) {
			fw_snprintf(err, sizeof(err), "rx: used id %u never made available", slot);
			return -1;
		}
		*any = true;
		if (len >= FW_NET_HDR_LEN + 42 && len <= FW_NET_BUF && get16(f + 12) == ETH_ARP &&
		    get32(f + 38) == my_ip) {
			uint8_t sha[6];

			for (unsigned i = 0; i < 6; i++)
				sha[i] = f[22 + i];
			if (get16(f + 20) == 1)
				arp_send(2, sha, get32(f + 28));
			else if (get16(f + 20) == 2 && get32(f + 28) == gw_ip && !gw_known) {
				memcpy(gw_mac, sha, 6);
				gw_known = true;
			}
		} else if (len >= FW_NET_HDR_LEN + HDRS && len <= FW_NET_BUF &&
			   get16(f + 12) == ETH_IP && (ip[0] >> 4) == 4 && ip[9] == IP_TCP &&
			   get32(ip + 16) == my_ip && (ihl = (ip[0] & 15) * 4u) >= 20 &&
			   get16(ip + 2) <= flen - 14 && get16(ip + 2) >= ihl + 20) {
			ret = tcp_input(ip + ihl, get16(ip + 2) - ihl);
		}
		fw_vq_add(&net.rx, (uint16_t)slot);
		if (++back >= batch) {
			fw_vq_publish(&net.rx);
			back = 0;
		}
	}
	if (back)
		fw_vq_publish(&net.rx);
	return ret;
}

/* Poll until (done()) holds, (re)sending with (retry) every RETRY_TICKS
 * (if given); -1 after stall_ticks without it. */
static int wait_for(bool (*done)(void), void (*retry)(void), const char *what)
{
	uint64_t t0 = rdtsc(), sent = t0;

	if (retry)
		retry();
	while (!done()) {
		bool any = false;
		uint64_t now;

		if (rx_poll(&any))
			return -1;
		now = rdtsc();
		if (now - t0 > stall_ticks) {
			fw_snprintf(err, sizeof(err), "no %s (stalled)", what);
			return -1;
		}
		if (retry && now - sent > RETRY_TICKS) {
			retry();
			sent = now;
		}
		if (!any)
			asm volatile("pause");
	}
	return 0;
}

static bool have_gw(void)
{
	return gw_known;
}

static void arp_gw(void)
{
	arp_send(1, NULL, gw_ip);
}

static bool established(void)
{
	return state == ESTABLISHED;
}

static void syn(void)
{
	const uint8_t opts[8] = { 2, 4, (uint8_t)(mss >> 8), (uint8_t)mss, 1, 3, 3, 0 };

	snd_nxt = iss;
	(void)tcp_send(TCP_SYN, opts, sizeof(opts), 0, true);
}

static bool closed(void)
{
	return snd_una == snd_nxt && peer_fin;
}

/* Send (total) bytes in segments of mss within the peer's window, as many
 * as there are free transmit slots, published in groups of (batch) and at
 * the end of each burst; the clock stops when the last byte is ACKed. */
static int stream(uint64_t total, uint64_t *tsc, uint64_t *segments)
{
	uint64_t sent = 0, acked = 0, t0, last;

	for (unsigned s = 0; s < net.tx.size; s++)
		for (unsigned i = 0; i < mss; i++)
			fw_net_tx_buf(&net, s)[FW_NET_HDR_LEN + HDRS + i] = (uint8_t)('a' + i % 26);
	t0 = last = rdtsc();
	while (acked < total) {
		uint32_t una = snd_una;
		bool any = false;

		if (rx_poll(&any))
			return -1;
		acked += snd_una - una;
		while (sent < total) {
			unsigned n = total - sent < mss ? (unsigned)(total - sent) : mss;

			if (snd_nxt - snd_una + n > snd_wnd ||
			    tcp_send(TCP_ACK | (sent + n == total ? TCP_PSH : 0), NULL, 0, n,
				     false))
				break;
			sent += n;
			(*segments)++;
			any = true;
		}
		if (pending) {
			fw_vq_publish(&net.tx);
			pending = 0;
		}
		if (any)
			last = rdtsc();
		else if (rdtsc() - last > stall_ticks) {
			fw_snprintf(
				err, sizeof(err),
				"stalled: %llu of %llu bytes acknowledged, window %u, %u in flight, "
				"%u transmit slots free",
				(unsigned long long)acked, (unsigned long long)total, snd_wnd,
				snd_nxt - snd_una, nfree);
			return -1;
		} else
			asm volatile("pause");
	}
	*tsc = rdtsc() - t0;
	return 0;
}

/* CPL3: the whole connection. 0, or -1 with the reason in err. */
static uint64_t bench(uint64_t arg)
{
	uint64_t total = fw_cmdline_u64("tcp.bytes", 1ULL << 30), tsc = 0, segs = 0;
	uint64_t k0;

	my_ip = (uint32_t)fw_cmdline_u64("tcp.ip", 0x0a00020f);
	gw_ip = (uint32_t)fw_cmdline_u64("tcp.gw", 0x0a000202);
	dport = (uint16_t)fw_cmdline_u64("tcp.port", 5201);
	mss = (unsigned)fw_cmdline_u64("tcp.mss", 1460);
	batch = (unsigned)fw_cmdline_u64("tcp.batch", 32);
	stall_ticks = fw_cmdline_u64("tcp.stall_tsc", 10000000000ULL);
	if (mss < 64 || mss > 1460 || !batch || batch > FW_NET_Q || !total) {
		fw_snprintf(err, sizeof(err), "tcp.mss 64-1460, tcp.batch 1-%u, tcp.bytes > 0",
			    FW_NET_Q);
		return (uint64_t)-1;
	}
	if (fw_net_init(&net, NET_GPA, BAR_BASE)) {
		fw_snprintf(err, sizeof(err), "%s", fw_virtio_err);
		return (uint64_t)-1;
	}
	for (unsigned s = 0; s < net.tx.size; s++)
		free_slots[nfree++] = (uint16_t)s;
	/* A different initial sequence number on each boot is not needed:
	 * each run is a new NAT connection from a fresh VMM. */
	iss = 0x10000000;
	state = SYN_SENT;
	if (wait_for(have_gw, arp_gw, "ARP reply from the gateway") ||
	    wait_for(established, syn, "SYN-ACK"))
		return (uint64_t)-1;
	fw_printf("nettcp: connected %u.%u.%u.%u:%u -> %u.%u.%u.%u:%u, mss %u, window %u "
		  "(scale %u)\n",
		  my_ip >> 24, my_ip >> 16 & 255, my_ip >> 8 & 255, my_ip & 255, SPORT, gw_ip >> 24,
		  gw_ip >> 16 & 255, gw_ip >> 8 & 255, gw_ip & 255, dport, mss, snd_wnd, snd_scale);
	k0 = net.tx.kicks;
	acks = 0;
	if (stream(total, &tsc, &segs))
		return (uint64_t)-1;
	fw_printf("nettcp: tcp bytes=%llu segments=%llu tsc=%llu kicks=%llu acks=%llu\n",
		  (unsigned long long)total, (unsigned long long)segs, (unsigned long long)tsc,
		  (unsigned long long)(net.tx.kicks - k0), (unsigned long long)acks);
	state = FIN_SENT;
	if (tcp_send(TCP_FIN | TCP_ACK, NULL, 0, 0, true)) {
		fw_snprintf(err, sizeof(err), "no free transmit slot for the FIN");
		return (uint64_t)-1;
	}
	if (wait_for(closed, NULL, "FIN handshake"))
		return (uint64_t)-1;
	return 0;
}

void main(void)
{
	fw_printf("kvisor firmware: nettcp\n");
	outb(0x21, 0xff); /* legacy PICs masked: we poll */
	outb(0xa1, 0xff);
	if (fw_user_call(bench, 0)) {
		fw_printf("nettcp: error: %s\n", err);
		FW_FAIL("%s", err);
	}
	fw_printf("nettcp: done\n");
}
