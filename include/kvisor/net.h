/* Network backends (src/backends/net_*.c): where the frames of a virtio-net
 * device go and come from. One frame-in/frame-out interface for every mode
 * (user-mode NAT with libslirp, passt or any peer speaking QEMU's stream
 * framing, tap, an internal VM-to-VM segment); everything runs on the
 * device's event loop. */
#ifndef KVISOR_NET_H
#define KVISOR_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct evloop;
struct net_backend;

/* The largest frame either way, without a vnet header: the largest IP
 * packet (65535) behind an Ethernet header with one VLAN tag. A frame is
 * at least an Ethernet header (NET_FRAME_MIN). */
#define NET_FRAME_MAX (65535u + 18u)
#define NET_FRAME_MIN 14u

/* The vnet header a backend with vnet_hdr puts before every frame, both
 * ways: struct virtio_net_hdr_v1 of <linux/virtio_net.h> (12 bytes, the
 * layout virtio 1.x and tap with TUNSETVNETHDRSZ 12 use). */
#define NET_VNET_HDR_LEN 12u

/* Offloads (net_backend_offloads, net_backend_set_offloads): what frames a
 * backend with a vnet header accepts from the guest, and may hand it. */
#define NET_OFFLOAD_CSUM (1u << 0) /* partial checksums (VIRTIO_NET_HDR_F_NEEDS_CSUM) */
#define NET_OFFLOAD_TSO4 (1u << 1)
#define NET_OFFLOAD_TSO6 (1u << 2)
#define NET_OFFLOAD_ECN  (1u << 3)
#define NET_OFFLOAD_UFO  (1u << 4)

enum net_mode {
	NET_MODE_USER = 0, /* libslirp in kvisor's process */
	NET_MODE_PASST,    /* passt started by kvisor on a socketpair (stream framing) */
	NET_MODE_STREAM,   /* a unix stream socket at a path (stream framing) */
	NET_MODE_TAP,      /* a tap device */
	NET_MODE_INTERNAL, /* a named L2 segment of this host user's VMs */
};

#define NET_HOSTFWD_MAX 16 /* hostfwd= options per device */

/* What a backend is opened with: the device's options, validated for syntax
 * by the VM description (the backend checks the rest and says which option
 * is wrong). Strings are owned by the caller and outlive the backend. */
struct net_backend_opts {
	enum net_mode mode;
	const char *name; /* the device id, for messages: "net0" */
	uint8_t mac[6];   /* the guest's MAC (e.g. for a tap's peer or MAC learning) */
	/* user, passt: "tcp|udp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT" */
	const char *hostfwd[NET_HOSTFWD_MAX];
	unsigned nr_hostfwd;
	bool restrict_outbound; /* user: restrict=on, no access beyond the host forwards */
	const char *path;       /* stream: the socket; passt: the binary (NULL: "passt" on PATH) */
	const char *ifname;     /* tap: an existing device (NULL: create one, removed at close) */
	const char *segment;    /* internal: the segment name */
};

/* What the device gives its backend. Every callback runs on the device's
 * event loop; none may call back into the backend's send(). */
struct net_peer_ops {
	/* Can the device take a frame now? A backend asks before it reads one
	 * from its source; while the answer is false it leaves the source
	 * unread (the backpressure of a full receive ring or a paused VM) until
	 * the device calls net_backend_rx_ready(). */
	bool (*can_receive)(void *opaque);
	/* One frame for the guest, (len) bytes in (iov, iovcnt), with a vnet
	 * header first when the backend has one. The device copies what it
	 * needs before returning; a frame it cannot take is dropped and counted
	 * by the device. */
	void (*receive)(void *opaque, const struct iovec *iov, unsigned iovcnt, size_t len);
	/* After net_backend_send returned -EAGAIN: the backend can take frames
	 * again (the device serves its transmit queue once more). */
	void (*tx_ready)(void *opaque);
	/* The link went down or up (e.g. the stream peer closed). Optional. */
	void (*link_changed)(void *opaque, bool up);
};

/* Open a backend of (opts->mode) on (loop) for a device (peer, peer_opaque).
 * Its fds and timers are served on (loop) from then on. 0 or -errno; errors
 * print one line naming opts->name and the option ("net0: hostfwd: ..."). */
int net_backend_open(struct net_backend **out, const struct net_backend_opts *opts,
		     struct evloop *loop, const struct net_peer_ops *peer, void *peer_opaque)
	__attribute__((warn_unused_result));

/* Close and free; not from a callback of the backend; the loop may be
 * running. NULL is fine. */
void net_backend_close(struct net_backend *be);

/* Whether frames both ways start with a NET_VNET_HDR_LEN-byte vnet header. */
bool net_backend_vnet_hdr(const struct net_backend *be);

/* The NET_OFFLOAD_* the backend could take (0 without a vnet header). */
unsigned net_backend_offloads(const struct net_backend *be);

/* Enable the offloads the guest accepted for received frames (a subset of
 * net_backend_offloads): the backend may then hand frames with partial
 * checksums or GSO. 0 or -errno. Loop thread or before the loop serves the
 * device. */
int net_backend_set_offloads(struct net_backend *be, unsigned offloads)
	__attribute__((warn_unused_result));

/* Send one frame from the guest, (len) bytes in (iov, iovcnt), with a vnet
 * header first when the backend has one (its flags only use offloads the
 * backend offers). Loop thread. 0: sent, or dropped by the backend (a
 * network may lose frames; counted in its stats); -EAGAIN: not now, nothing
 * was taken: the device keeps the frame and stops transmitting until the
 * tx_ready callback; -EMSGSIZE: (len) out of range, dropped. */
int net_backend_send(struct net_backend *be, const struct iovec *iov, unsigned iovcnt, size_t len);

/* The device can take frames again (can_receive turned true): the backend
 * reads its source again. Loop thread. */
void net_backend_rx_ready(struct net_backend *be);

/* Counters a backend keeps (the device counts frames to and from the guest). */
struct net_backend_stats {
	uint64_t tx_frames, tx_bytes, tx_dropped; /* towards the network */
	uint64_t rx_frames, rx_bytes, rx_dropped; /* from the network */
};
void net_backend_stats(const struct net_backend *be, struct net_backend_stats *out);

/* The mode's name ("user", "passt", ...) and back: -1 for an unknown name. */
const char *net_mode_name(enum net_mode mode);
int net_mode_parse(const char *name);

#endif
