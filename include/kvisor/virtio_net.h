/* virtio-net instances (device type "virtio-net", src/devices/virtio_net*.c):
 * their typed options in the VM description, the default MAC, and the
 * per-device counters the control plane reads. */
#ifndef KVISOR_VIRTIO_NET_H
#define KVISOR_VIRTIO_NET_H

#include <stdbool.h>
#include <stdint.h>

#include "net.h"

struct vm;

#define VIRTIO_NET_MAX_DEVICES 8 /* instances per VM (eth0..eth7) */
/* The mode of --net without one: the user-mode NAT that measured faster in
 * tools/bench/net (docs/performance.md, docs/networking.md): passt, 2.0x
 * kvisor's libslirp mode's TCP throughput on 2026-12-03. */
#define VIRTIO_NET_DEFAULT_MODE NET_MODE_PASST
#define VIRTIO_NET_IFNAME_MAX   15 /* tap: IFNAMSIZ - 1 */
#define VIRTIO_NET_SEGMENT_MAX  64 /* internal: bytes of a segment name */

enum virtio_net_link { VIRTIO_NET_LINK_UP = 0, VIRTIO_NET_LINK_DOWN = 1 };

/* --net [MODE][,KEY=VALUE...]: mode=, mac=, hostfwd= (repeatable),
 * restrict=on|off, path=, ifname=, name=, link=up|down. The device type's
 * check refuses options the mode does not use and fills mac[]. */
struct virtio_net_params {
	unsigned mode;        /* enum net_mode (CHOICE in enum order) */
	const char *mac_text; /* mac= as given; NULL: the default MAC */
	const char *hostfwd[NET_HOSTFWD_MAX];
	unsigned nr_hostfwd;
	bool restrict_outbound;
	const char *path;    /* stream: the socket; passt: the binary */
	const char *ifname;  /* tap */
	const char *segment; /* internal: name= */
	unsigned link;       /* enum virtio_net_link: the initial link state */
	bool mac_given;      /* set by the check: mac[] holds mac_text */
	uint8_t mac[6];
};

/* The default MAC of the (index)th virtio-net instance (0 for eth0) of the
 * VM named (vm_name) (NULL: "kvisor"): locally administered unicast, from
 * an FNV-1a hash of the name, so the same VM gets the same MACs on every
 * boot; two indexes of one VM never share one. */
void virtio_net_default_mac(const char *vm_name, unsigned index, uint8_t mac[6]);

/* Frames and bytes to and from the guest (bytes without the vnet header),
 * and frames dropped, by reason. */
struct virtio_net_stats {
	uint64_t rx_frames, rx_bytes; /* delivered to the guest */
	uint64_t tx_frames, tx_bytes; /* taken by the backend */
	/* receive: a frame from the backend out of NET_FRAME_MIN..MAX */
	uint64_t rx_dropped_malformed;
	/* receive: the guest's buffers cannot hold it (one chain without
	 * MRG_RXBUF, or a mergeable buffer smaller than the header) */
	uint64_t rx_dropped_no_buffer;
	/* receive: no driver (before DRIVER_OK, after a reset) */
	uint64_t rx_dropped_not_ready;
	uint64_t rx_dropped_link_down;
	/* receive: the backend delivered while told not to and a frame was
	 * already waiting (the device keeps at most one) */
	uint64_t rx_dropped_overrun;
	/* transmit: shorter than header + Ethernet header, longer than header +
	 * NET_FRAME_MAX, or with a device-writable buffer */
	uint64_t tx_dropped_malformed;
	/* transmit: GSO the backend cannot take, checksum offsets out of the
	 * frame */
	uint64_t tx_dropped_offload;
	uint64_t tx_dropped_link_down;
	/* transmit: refused by the backend (-EMSGSIZE or another error), or
	 * waiting to be sent at a driver reset */
	uint64_t tx_dropped_backend;
};

/* The counters of virtio-net device (id) of (vm), into (out). Any thread.
 * 0; -ENOENT: no device (id); -EINVAL: (id) is not a virtio-net device. */
int virtio_net_stats(const struct vm *vm, const char *id, struct virtio_net_stats *out)
	__attribute__((warn_unused_result));

#endif
