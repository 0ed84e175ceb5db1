/* The "virtio-net" device type: its options in the VM description (--net),
 * their checks (MAC, host forwards, options per mode), the default MAC,
 * and the registry hooks (create, destroy, pause, resume). */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvisor/config.h"
#include "kvisor/device.h"
#include "kvisor/vm.h"
#include "virtio_net_priv.h"

void virtio_net_default_mac(const char *vm_name, unsigned index, uint8_t mac[6])
{
	const char *s = vm_name ? vm_name : "kvisor";
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a, 64 bits */

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
	/* Octets 0-4 from the name, the last one offset by the index: distinct
	 * for every index of one VM (at most VIRTIO_NET_MAX_DEVICES). */
	mac[0] = (uint8_t)((h & 0xfc) | 0x02); /* locally administered, unicast */
	for (unsigned i = 1; i < 6; i++)
		mac[i] = (uint8_t)(h >> (8 * i));
	mac[5] = (uint8_t)(mac[5] + index);
}

static int virtio_net_hex(char c)
{
	return isdigit((unsigned char)c)  ? c - '0' :
	       isxdigit((unsigned char)c) ? tolower((unsigned char)c) - 'a' + 10 :
					    -1;
}

static int virtio_net_parse_mac(const struct config_device *inst, const char *s, uint8_t mac[6],
				char *err, size_t errlen)
{
	static const uint8_t zero[6];

	if (strlen(s) != 17)
		goto bad;
	for (unsigned i = 0; i < 6; i++) {
		int hi = virtio_net_hex(s[3 * i]), lo = virtio_net_hex(s[3 * i + 1]);

		if (hi < 0 || lo < 0 || (i < 5 && s[3 * i + 2] != ':'))
			goto bad;
		mac[i] = (uint8_t)(hi << 4 | lo);
	}
	if (mac[0] & 1)
		return config_error(err, errlen,
				    "%s: mac: %s is a multicast address (the first octet must "
				    "be even)",
				    inst->id, s);
	if (!memcmp(mac, zero, 6))
		return config_error(err, errlen, "%s: mac: %s is not a valid address", inst->id, s);
	return 0;
bad:
	return config_error(err, errlen, "%s: mac: expected XX:XX:XX:XX:XX:XX (hex), got '%s'",
			    inst->id, s);
}

/* "[ADDR]:PORT" of a host forward: ADDR empty or IPv4, PORT 1-65535. */
static int virtio_net_fwd_end(const struct config_device *inst, const char *fwd, const char *s,
			      size_t len, char *err, size_t errlen)
{
	char buf[64], *colon, *end = NULL;
	struct in_addr a;
	unsigned long port;

	if (len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	colon = strrchr(buf, ':');
	if (!colon)
		return -1;
	*colon = '\0';
	if (*buf && inet_pton(AF_INET, buf, &a) != 1)
		return config_error(err, errlen, "%s: hostfwd: invalid address '%s' in '%s' (IPv4)",
				    inst->id, buf, fwd);
	port = isdigit((unsigned char)colon[1]) ? strtoul(colon + 1, &end, 10) : 0;
	if (!port || *end || port > 65535)
		return config_error(err, errlen,
				    "%s: hostfwd: invalid port '%s' in '%s' (1 to 65535)", inst->id,
				    colon + 1, fwd);
	return 0;
}

/* tcp|udp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT (the backend maps it). */
static int virtio_net_check_fwd(const struct config_device *inst, const char *fwd, char *err,
				size_t errlen)
{
	const char *p = fwd, *dash;
	int ret;

	if (strncmp(p, "tcp:", 4) && strncmp(p, "udp:", 4))
		goto bad;
	p += 4;
	dash = strchr(p, '-');
	if (!dash)
		goto bad;
	ret = virtio_net_fwd_end(inst, fwd, p, (size_t)(dash - p), err, errlen);
	if (!ret)
		ret = virtio_net_fwd_end(inst, fwd, dash + 1, strlen(dash + 1), err, errlen);
	if (ret != -1)
		return ret;
bad:
	return config_error(err, errlen,
			    "%s: hostfwd: expected tcp|udp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:"
			    "GUESTPORT, got '%s'",
			    inst->id, fwd);
}

#define M(mode) (1u << (mode))

/* Options that only some modes use; any other mode refuses them. */
static const struct {
	const char *key;
	unsigned modes;
	const char *which;
} virtio_net_mode_opts[] = {
	{ "hostfwd", M(NET_MODE_USER) | M(NET_MODE_PASST), "modes user and passt" },
	{ "restrict", M(NET_MODE_USER), "mode user" },
	{ "path", M(NET_MODE_PASST) | M(NET_MODE_STREAM), "modes passt and stream" },
	{ "ifname", M(NET_MODE_TAP), "mode tap" },
	{ "name", M(NET_MODE_INTERNAL), "mode internal" },
};

/* A segment name becomes a file name: letters, digits, '.', '-', '_'. */
static bool virtio_net_segment_valid(const char *s)
{
	if (!*s || *s == '.')
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr(".-_", *s))
			return false;
	return true;
}

static int virtio_net_check(struct config_device *inst, char *err, size_t errlen)
{
	struct virtio_net_params *p = inst->params;
	int ret;

	for (size_t i = 0; i < sizeof(virtio_net_mode_opts) / sizeof(virtio_net_mode_opts[0]); i++)
		if (!(virtio_net_mode_opts[i].modes & M(p->mode)) &&
		    config_device_opt(inst, virtio_net_mode_opts[i].key))
			return config_error(err, errlen, "%s: %s: only for %s", inst->id,
					    virtio_net_mode_opts[i].key,
					    virtio_net_mode_opts[i].which);
	if (p->mode == NET_MODE_STREAM && (!p->path || !*p->path))
		return config_error(err, errlen, "%s: mode stream needs path=SOCKET", inst->id);
	if (p->mode == NET_MODE_INTERNAL && (!p->segment || !*p->segment))
		return config_error(err, errlen, "%s: mode internal needs name=SEGMENT", inst->id);
	if (p->segment && !virtio_net_segment_valid(p->segment))
		return config_error(err, errlen,
				    "%s: name: invalid segment name '%s' (letters, digits, '.', "
				    "'-' or '_', not starting with '.')",
				    inst->id, p->segment);
	for (unsigned i = 0; i < p->nr_hostfwd; i++) {
		ret = virtio_net_check_fwd(inst, p->hostfwd[i], err, errlen);
		if (ret)
			return ret;
	}
	if (p->mac_text) {
		ret = virtio_net_parse_mac(inst, p->mac_text, p->mac, err, errlen);
		if (ret)
			return ret;
		p->mac_given = true;
	}
	return 0;
}

/* --- registry hooks -------------------------------------------------------- */

/* The position of (inst) among the VM's virtio-net instances: eth0, eth1... */
static unsigned virtio_net_index(const struct vm_config *cfg, const struct config_device *inst)
{
	unsigned n = 0;

	for (unsigned i = 0; i < cfg->nr_devices && cfg->devices[i] != inst; i++)
		n += cfg->devices[i]->type == inst->type;
	return n;
}

/* Instances take PCI slots in description order: eth0, eth1... */
static int virtio_net_create(struct vm *vm, const struct config_device *inst, void **state)
{
	const struct virtio_net_params *p = inst->params;
	struct net_backend_opts opts = {
		.mode = (enum net_mode)p->mode,
		.name = inst->id,
		.nr_hostfwd = p->nr_hostfwd,
		.restrict_outbound = p->restrict_outbound,
		.path = p->path,
		.ifname = p->ifname,
		.segment = p->segment,
	};

	memcpy(opts.hostfwd, p->hostfwd, sizeof(opts.hostfwd));
	if (p->mac_given)
		memcpy(opts.mac, p->mac, 6);
	else
		virtio_net_default_mac(vm->cfg->name, virtio_net_index(vm->cfg, inst), opts.mac);
	return virtio_net_new((struct virtio_net **)state, vm, &opts, p->link == VIRTIO_NET_LINK_UP,
			      net_backend_open);
}

static void virtio_net_destroy(struct vm *vm, void *state)
{
	virtio_net_free(state);
}

static int virtio_net_pause_hook(struct vm *vm, void *state)
{
	return virtio_net_pause(state);
}

static void virtio_net_resume_hook(struct vm *vm, void *state)
{
	virtio_net_resume(state);
}

/* In enum net_mode order: the index is the mode (checked by a unit test). */
static const char *const virtio_net_modes[] = { "user", "passt", "stream", "tap", "internal", NULL };
static const char *const virtio_net_links[] = { "up", "down", NULL };

#define VIRTIO_NET_OPT(k, field) .key = k, .offset = offsetof(struct virtio_net_params, field)

static const struct config_opt_spec virtio_net_opts[] = {
	{ VIRTIO_NET_OPT("mode", mode), .kind = CONFIG_OPT_CHOICE, .choices = virtio_net_modes },
	{ VIRTIO_NET_OPT("mac", mac_text), .kind = CONFIG_OPT_STRING },
	{ VIRTIO_NET_OPT("hostfwd", hostfwd), .kind = CONFIG_OPT_LIST, .max = 63,
	  .max_items = NET_HOSTFWD_MAX,
	  .count_offset = offsetof(struct virtio_net_params, nr_hostfwd) },
	{ VIRTIO_NET_OPT("restrict", restrict_outbound), .kind = CONFIG_OPT_BOOL },
	{ VIRTIO_NET_OPT("path", path), .kind = CONFIG_OPT_STRING, .max = CONFIG_PATH_MAX - 1 },
	{ VIRTIO_NET_OPT("ifname", ifname), .kind = CONFIG_OPT_STRING,
	  .max = VIRTIO_NET_IFNAME_MAX },
	{ VIRTIO_NET_OPT("name", segment), .kind = CONFIG_OPT_STRING,
	  .max = VIRTIO_NET_SEGMENT_MAX },
	{ VIRTIO_NET_OPT("link", link), .kind = CONFIG_OPT_CHOICE, .choices = virtio_net_links },
	{ .key = NULL },
};

static const struct virtio_net_params virtio_net_defaults = {
	.mode = VIRTIO_NET_DEFAULT_MODE,
	.link = VIRTIO_NET_LINK_UP,
};

const struct device_type virtio_net_type = {
	.name = "virtio-net",
	.id_prefix = "net",
	.max_instances = VIRTIO_NET_MAX_DEVICES,
	.opts = virtio_net_opts,
	.params_size = sizeof(struct virtio_net_params),
	.params_default = &virtio_net_defaults,
	.check = virtio_net_check,
	.create = virtio_net_create,
	.destroy = virtio_net_destroy,
	.pause = virtio_net_pause_hook,
	.resume = virtio_net_resume_hook,
};
