/* The network backend interface: dispatch to the mode's backend, checks
 * common to every mode, counters. */
#include <errno.h>
#include <string.h>

#include "kvisor/log.h"
#include "kvisor/net.h"
#include "net_priv.h"

typedef int (*net_open_fn)(struct net_backend **out, const struct net_backend_opts *opts,
			   struct evloop *loop, const struct net_peer_ops *peer, void *peer_opaque);

static const struct {
	const char *name;
	net_open_fn open;
} net_modes[] = {
	[NET_MODE_USER] = { "user", net_user_open },
	[NET_MODE_PASST] = { "passt", net_stream_open },
	[NET_MODE_STREAM] = { "stream", net_stream_open },
	[NET_MODE_TAP] = { "tap", net_tap_open },
	[NET_MODE_INTERNAL] = { "internal", net_internal_open },
};

#define NET_NR_MODES (sizeof(net_modes) / sizeof(net_modes[0]))

const char *net_mode_name(enum net_mode mode)
{
	return (unsigned)mode < NET_NR_MODES ? net_modes[mode].name : "?";
}

int net_mode_parse(const char *name)
{
	for (unsigned i = 0; i < NET_NR_MODES; i++)
		if (name && strcmp(name, net_modes[i].name) == 0)
			return (int)i;
	return -1;
}

void net_backend_init(struct net_backend *be, const struct net_backend_ops *ops,
		      const struct net_backend_opts *opts, struct evloop *loop,
		      const struct net_peer_ops *peer, void *peer_opaque)
{
	memset(be, 0, sizeof(*be));
	be->ops = ops;
	be->name = opts->name ? opts->name : "net";
	be->mode = opts->mode;
	be->loop = loop;
	be->peer = peer;
	be->peer_opaque = peer_opaque;
}

int net_backend_open(struct net_backend **out, const struct net_backend_opts *opts,
		     struct evloop *loop, const struct net_peer_ops *peer, void *peer_opaque)
{
	const char *name = opts->name ? opts->name : "net";

	*out = NULL;
	if ((unsigned)opts->mode >= NET_NR_MODES) {
		log_err("%s: unknown network mode %d", name, (int)opts->mode);
		return -EINVAL;
	}
	if (!peer || !peer->can_receive || !peer->receive || !peer->tx_ready) {
		log_err("%s: network backend opened without a device", name);
		return -EINVAL;
	}
	return net_modes[opts->mode].open(out, opts, loop, peer, peer_opaque);
}

void net_backend_close(struct net_backend *be)
{
	if (be)
		be->ops->close(be);
}

bool net_backend_vnet_hdr(const struct net_backend *be)
{
	return be->vnet_hdr;
}

unsigned net_backend_offloads(const struct net_backend *be)
{
	return be->vnet_hdr ? be->offloads : 0;
}

int net_backend_set_offloads(struct net_backend *be, unsigned offloads)
{
	if (offloads & ~net_backend_offloads(be))
		return -EINVAL;
	if (!be->ops->set_offloads)
		return offloads ? -EINVAL : 0;
	return be->ops->set_offloads(be, offloads);
}

int net_backend_send(struct net_backend *be, const struct iovec *iov, unsigned iovcnt, size_t len)
{
	size_t hdr = be->vnet_hdr ? NET_VNET_HDR_LEN : 0;

	if (len < hdr + NET_FRAME_MIN || len > hdr + NET_FRAME_MAX) {
		be->stats.tx_dropped++;
		return -EMSGSIZE;
	}
	return be->ops->send(be, iov, iovcnt, len);
}

void net_backend_rx_ready(struct net_backend *be)
{
	if (be->ops->rx_ready)
		be->ops->rx_ready(be);
}

void net_backend_stats(const struct net_backend *be, struct net_backend_stats *out)
{
	*out = be->stats;
}
