/* What every network backend shares (src/backends/net_*.c): the base struct
 * a backend embeds first, its ops, and the per-mode open functions that
 * net_backend_open dispatches to. */
#ifndef KVISOR_NET_PRIV_H
#define KVISOR_NET_PRIV_H

#include "kvisor/net.h"

struct net_backend_ops {
	/* net_backend_send: (len) is already checked against NET_FRAME_MIN and
	 * NET_FRAME_MAX (plus the vnet header when the backend has one). */
	int (*send)(struct net_backend *be, const struct iovec *iov, unsigned iovcnt, size_t len);
	/* net_backend_rx_ready; NULL when the backend never stops reading. */
	void (*rx_ready)(struct net_backend *be);
	/* net_backend_set_offloads; NULL: only 0 is accepted. */
	int (*set_offloads)(struct net_backend *be, unsigned offloads);
	/* Release everything, including the struct (which embeds the base). */
	void (*close)(struct net_backend *be);
};

/* The base of every backend, set up by the mode's open function. */
struct net_backend {
	const struct net_backend_ops *ops;
	const char *name; /* opts->name */
	enum net_mode mode;
	struct evloop *loop;
	const struct net_peer_ops *peer;
	void *peer_opaque;
	bool vnet_hdr;     /* frames carry NET_VNET_HDR_LEN bytes of header first */
	unsigned offloads; /* NET_OFFLOAD_* it could take */
	struct net_backend_stats stats;
};

/* Fill the base (be) from (opts, loop, peer, peer_opaque) and (ops). */
void net_backend_init(struct net_backend *be, const struct net_backend_ops *ops,
		      const struct net_backend_opts *opts, struct evloop *loop,
		      const struct net_peer_ops *peer, void *peer_opaque);

/* One hostfwd= rule: "tcp|udp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT"
 * (an empty protocol means tcp, as in QEMU). Addresses are IPv4, in network
 * byte order. */
struct net_hostfwd {
	bool udp;
	uint32_t host_addr;  /* NET_HOSTFWD_HOST when not given */
	uint16_t host_port;  /* 1-65535 */
	uint32_t guest_addr; /* 0 when not given: the mode's default */
	uint16_t guest_port; /* 1-65535 */
};

/* The host address a forward listens on when HOSTADDR is empty: loopback
 * only (QEMU listens on every address); 0.0.0.0 asks for all of them. */
#define NET_HOSTFWD_HOST 0x7f000001u /* 127.0.0.1, host byte order */

/* Parse (text) into (out). 0, or -EINVAL with the reason in (err) (at most
 * (errlen) bytes, quoting the bad part), e.g. "bad host port 'x' (1-65535)";
 * the caller prints it after "<name>: hostfwd '<text>': ". */
int net_hostfwd_parse(const char *text, struct net_hostfwd *out, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Per-mode open functions: (out) gets the base of a new backend. 0 or -errno,
 * after one line naming opts->name. */
int net_user_open(struct net_backend **out, const struct net_backend_opts *opts,
		  struct evloop *loop, const struct net_peer_ops *peer, void *peer_opaque);
int net_stream_open(struct net_backend **out,
		    const struct net_backend_opts *opts, /* passt, stream */
		    struct evloop *loop, const struct net_peer_ops *peer, void *peer_opaque);
int net_tap_open(struct net_backend **out, const struct net_backend_opts *opts, struct evloop *loop,
		 const struct net_peer_ops *peer, void *peer_opaque);
int net_internal_open(struct net_backend **out, const struct net_backend_opts *opts,
		      struct evloop *loop, const struct net_peer_ops *peer, void *peer_opaque);

#endif
