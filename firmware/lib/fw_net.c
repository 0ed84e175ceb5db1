/* Polled virtio-net driver for firmware guests (fw_net.h): setup of the
 * device, its two queues and its receive buffers on fw_virtio. */
#include "fw_net.h"

int fw_net_init(struct fw_net *n, uint64_t mem, uint64_t bar_base)
{
	memset(n, 0, sizeof(*n));
	n->rx_buf = mem + 0x20000;
	n->tx_buf = n->rx_buf + (uint64_t)FW_NET_Q * FW_NET_BUF;
	if (fw_virtio_init(&n->dev, FW_VIRTIO_ID_NET, 1ULL << FW_NET_F_MAC, bar_base) ||
	    fw_virtio_setup_vq(&n->dev, &n->rx, 0, FW_NET_Q, mem) ||
	    fw_virtio_setup_vq(&n->dev, &n->tx, 1, FW_NET_Q, mem + 0x10000) ||
	    fw_virtio_driver_ok(&n->dev))
		return -1;
	if (!(n->dev.features & 1ULL << FW_NET_F_MAC)) {
		fw_snprintf(fw_virtio_err, sizeof(fw_virtio_err),
			    "virtio-net: no MAC address offered (features 0x%llx)",
			    (unsigned long long)n->dev.features);
		return -1;
	}
	for (unsigned i = 0; i < 6; i++)
		n->mac[i] = fw_virtio_cfg_read8(&n->dev, i);
	for (unsigned s = 0; s < n->rx.size; s++) {
		n->rx.desc[s] = (struct fw_vq_desc){ n->rx_buf + (uint64_t)s * FW_NET_BUF,
						     FW_NET_BUF, FW_VQ_DESC_WRITE, 0 };
		fw_vq_add(&n->rx, (uint16_t)s);
	}
	fw_vq_publish(&n->rx);
	return 0;
}

void fw_net_tx_desc(struct fw_net *n, unsigned slot, uint32_t len)
{
	n->tx.desc[slot] = (struct fw_vq_desc){ n->tx_buf + (uint64_t)slot * FW_NET_BUF,
						FW_NET_HDR_LEN + len, 0, 0 };
}
