/* A polled virtio-net driver for firmware guests, on fw_virtio: VERSION_1
 * and MAC only (no offloads, no mergeable buffers), queue 0 receives into
 * buffers of FW_NET_BUF bytes, queue 1 sends one frame per descriptor (the
 * vnet header and the frame in one buffer). Runs at CPL3 too. */
#ifndef FW_NET_H
#define FW_NET_H

#include "fw_virtio.h"

#define FW_VIRTIO_ID_NET 1
#define FW_NET_F_MAC     5
#define FW_NET_HDR_LEN   12 /* struct virtio_net_hdr_v1 */
/* A receive buffer: at least the vnet header and a 1514-byte frame, what a
 * driver without MRG_RXBUF and GUEST_TSO must give (virtio 1.2, 5.1.6.3.1). */
#define FW_NET_BUF 2048u
#define FW_NET_Q   256 /* the queue size asked for */
/* Guest memory fw_net_init lays out from (mem): the two rings, then
 * FW_NET_Q receive buffers, then FW_NET_Q transmit buffers. */
#define FW_NET_MEM_SIZE (0x20000ULL + 2ULL * FW_NET_Q * FW_NET_BUF)

struct fw_net {
	struct fw_virtio dev;
	struct fw_vq rx, tx;
	uint8_t mac[6];
	uint64_t rx_buf, tx_buf; /* guest-physical: FW_NET_Q slots of FW_NET_BUF */
};

/* Find the first virtio-net PCI function, assign its BARs from (bar_base)
 * if unassigned, negotiate VERSION_1 and MAC (the device must offer a MAC),
 * set up both queues on FW_NET_MEM_SIZE bytes at (mem) (identity-mapped,
 * 4 KiB-aligned), DRIVER_OK, read the MAC and give the device every receive
 * buffer. 0 or -1 with the reason in fw_virtio_err. */
int fw_net_init(struct fw_net *n, uint64_t mem, uint64_t bar_base);

/* The buffer of receive or transmit descriptor (slot): the vnet header,
 * then the frame. */
static inline volatile uint8_t *fw_net_rx_buf(const struct fw_net *n, unsigned slot)
{
	return (volatile uint8_t *)(uintptr_t)(n->rx_buf + (uint64_t)slot * FW_NET_BUF);
}

static inline volatile uint8_t *fw_net_tx_buf(const struct fw_net *n, unsigned slot)
{
	return (volatile uint8_t *)(uintptr_t)(n->tx_buf + (uint64_t)slot * FW_NET_BUF);
}

/* Point transmit descriptor (slot) at its buffer with a frame of (len)
 * bytes after the vnet header; the caller adds it (fw_vq_add) when the
 * buffer is filled. */
void fw_net_tx_desc(struct fw_net *n, unsigned slot, uint32_t len);

#endif
