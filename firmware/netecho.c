/* A network responder guest for tests (tests/guest/net-env.sh): drives the
 * first virtio-net PCI function and answers ARP requests and ICMP echo
 * requests for the address given as net.ip=A.B.C.D on the command line,
 * until the VM is stopped. It sleeps in HLT between LAPIC timer ticks
 * (100 Hz) and looks at the receive ring on each, so an idle responder costs
 * the host almost nothing. Lines on COM1:
 *   netecho: ready ip=A.B.C.D mac=xx:..
 *   netecho: arp from A.B.C.D | netecho: echo from A.B.C.D seq=N */
#include "cpu.h"
#include "fw.h"
#include "fw_pci.h"
#include "fw_virtio.h"

#define VIRTIO_ID_NET   1
#define NET_F_MAC       5
#define NET_HDR_LEN     12 /* struct virtio_net_hdr_v1 */
#define RX_BUFS         64
#define BUF_LEN         2048
#define RX_RING_GPA     0x800000ULL
#define TX_RING_GPA     0x810000ULL
#define RX_BUF_GPA      0x1000000ULL
#define TX_BUF_GPA      (RX_BUF_GPA + RX_BUFS * BUF_LEN)
#define BAR_BASE        0xc0000000ULL
#define VEC_TIMER       0x30
#define TIMER_NS        10000000u /* 10 ms */
#define ETH_P_IP        0x0800
#define ETH_P_ARP       0x0806
#define IPPROTO_ICMP    1
#define ICMP_ECHO       8
#define ICMP_ECHO_REPLY 0

static struct fw_virtio dev;
static struct fw_vq rxq, txq;
static uint8_t mac[6];
static uint8_t ip[4];

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static bool eq(const uint8_t *a, const uint8_t *b, unsigned n)
{
	while (n--)
		if (*a++ != *b++)
			return false;
	return true;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* The Internet checksum of (len) bytes. */
static uint16_t csum(const uint8_t *p, unsigned len)
{
	uint32_t s = 0;

	for (unsigned i = 0; i + 1 < len; i += 2)
		s += get16(p + i);
	if (len & 1)
		s += (uint32_t)p[len - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static bool parse_ip(const char *s, uint8_t out[4])
{
	for (unsigned i = 0; i < 4; i++) {
		unsigned v = 0, digits = 0;

		while (*s >= '0' && *s <= '9' && digits < 4) {
			v = v * 10 + (unsigned)(*s++ - '0');
			digits++;
		}
		if (!digits || v > 255 || (i < 3 && *s++ != '.'))
			return false;
		out[i] = (uint8_t)v;
	}
	return *s == 0 || *s == ' ';
}

static void rx_post(uint16_t i)
{
	rxq.desc[i].addr = RX_BUF_GPA + (uint64_t)i * BUF_LEN;
	rxq.desc[i].len = BUF_LEN;
	rxq.desc[i].flags = FW_VQ_DESC_WRITE;
	fw_vq_add(&rxq, i);
}

/* Send the (len)-byte frame in the tx buffer and wait until it is done. */
static void tx_send(unsigned len)
{
	uint32_t id, wlen;

	memset((void *)(uintptr_t)TX_BUF_GPA, 0, NET_HDR_LEN);
	txq.desc[0].addr = TX_BUF_GPA;
	txq.desc[0].len = NET_HDR_LEN + len;
	txq.desc[0].flags = 0;
	fw_vq_add(&txq, 0);
	fw_vq_publish(&txq);
	while (!fw_vq_get_used(&txq, &id, &wlen))
		asm volatile("pause");
}

/* Answer frame (f) of (len) bytes if it is for us; the reply is built in
 * the tx buffer. */
static void handle(const uint8_t *f, unsigned len)
{
	uint8_t *o = (uint8_t *)(uintptr_t)(TX_BUF_GPA + NET_HDR_LEN);

	if (len < 14)
		return;
	if (get16(f + 12) == ETH_P_ARP && len >= 42 && get16(f + 20) == 1 && eq(f + 38, ip, 4)) {
		memcpy(o, f + 6, 6);
		memcpy(o + 6, mac, 6);
		memcpy(o + 12, f + 12, 8); /* type, htype, ptype, hlen, plen */
		put16(o + 20, 2);          /* reply */
		memcpy(o + 22, mac, 6);
		memcpy(o + 28, ip, 4);
		memcpy(o + 32, f + 22, 10); /* the asker's MAC and IP */
		tx_send(42);
		fw_printf("netecho: arp from %u.%u.%u.%u\n", f[28], f[29], f[30], f[31]);
		return;
	}
	if (get16(f + 12) == ETH_P_IP && len >= 14 + 20 + 8) {
		const uint8_t *iph = f + 14;
		unsigned ihl = (iph[0] & 15u) * 4, tot = get16(iph + 2);

		if ((iph[0] >> 4) != 4 || ihl < 20 || tot < ihl + 8 || 14 + tot > len ||
		    14 + tot > BUF_LEN - NET_HDR_LEN || iph[9] != IPPROTO_ICMP ||
		    !eq(iph + 16, ip, 4) || iph[ihl] != ICMP_ECHO)
			return;
		memcpy(o, f + 6, 6);
		memcpy(o + 6, mac, 6);
		memcpy(o + 12, f + 12, 2 + tot);
		memcpy(o + 14 + 12, iph + 16, 4); /* swap addresses: the IP checksum holds */
		memcpy(o + 14 + 16, iph + 12, 4);
		o[14 + ihl] = ICMP_ECHO_REPLY;
		put16(o + 14 + ihl + 2, 0);
		put16(o + 14 + ihl + 2, csum(o + 14 + ihl, tot - ihl));
		tx_send(14 + tot);
		fw_printf("netecho: echo from %u.%u.%u.%u seq=%u\n", iph[12], iph[13], iph[14],
			  iph[15], get16(iph + ihl + 6));
	}
}

static bool on_timer(struct fw_frame *f)
{
	(void)f;
	fw_lapic_eoi();
	return true;
}

void main(void)
{
	const char *cl = fw_cmdline();
	const char *p = cl;
	uint32_t id, len;

	while (*p && strncmp(p, "net.ip=", 7) != 0)
		p++;
	if (!*p || !parse_ip(p + 7, ip))
		FW_FAIL("netecho: no valid net.ip=A.B.C.D on the command line '%s'", cl);
	if (fw_virtio_init(&dev, VIRTIO_ID_NET, 1ULL << NET_F_MAC, BAR_BASE) < 0)
		FW_FAIL("netecho: %s", fw_virtio_err);
	if (!(dev.features & (1ULL << NET_F_MAC)))
		FW_FAIL("netecho: the device offers no MAC");
	for (unsigned i = 0; i < 6; i++)
		mac[i] = mmio_read8(dev.device + i);
	if (fw_virtio_setup_vq(&dev, &rxq, 0, RX_BUFS, RX_RING_GPA) < 0 ||
	    fw_virtio_setup_vq(&dev, &txq, 1, 16, TX_RING_GPA) < 0 || fw_virtio_driver_ok(&dev) < 0)
		FW_FAIL("netecho: %s", fw_virtio_err);
	for (uint16_t i = 0; i < rxq.size; i++)
		rx_post(i);
	fw_vq_publish(&rxq);
	fw_printf("netecho: ready ip=%u.%u.%u.%u mac=%02x:%02x:%02x:%02x:%02x:%02x\n", ip[0], ip[1],
		  ip[2], ip[3], mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);

	fw_set_trap_handler(VEC_TIMER, on_timer);
	fw_lapic_timer(VEC_TIMER, TIMER_NS);
	for (;;) {
		bool any = false;

		while (fw_vq_get_used(&rxq, &id, &len)) {
			if (id < rxq.size && len >= NET_HDR_LEN && len <= BUF_LEN)
				handle((const uint8_t *)(uintptr_t)(RX_BUF_GPA +
								    (uint64_t)id * BUF_LEN +
								    NET_HDR_LEN),
				       len - NET_HDR_LEN);
			if (id < rxq.size)
				rx_post((uint16_t)id);
			any = true;
		}
		if (any)
			fw_vq_publish(&rxq);
		else
			asm volatile("sti; hlt; cli" ::: "memory");
	}
}
