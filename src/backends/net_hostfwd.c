/* hostfwd= rules of the user-mode backends (user, passt): the text
 * "tcp|udp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT" into a struct. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "net_priv.h"

/* A port: 1-65535 in plain decimal (no sign, no blanks, no leading junk). */
static int net_hostfwd_port(const char *s, size_t len, uint16_t *out)
{
	unsigned v = 0;

	if (len == 0 || len > 5)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v == 0 || v > 65535)
		return -EINVAL;
	*out = (uint16_t)v;
	return 0;
}

/* An IPv4 address, or (dflt) when empty. */
static int net_hostfwd_addr(const char *s, size_t len, uint32_t dflt, uint32_t *out)
{
	char buf[INET_ADDRSTRLEN];
	struct in_addr a;

	if (len == 0) {
		*out = dflt;
		return 0;
	}
	if (len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (inet_pton(AF_INET, buf, &a) != 1)
		return -EINVAL;
	*out = a.s_addr;
	return 0;
}

/* "[ADDR]:PORT" of (s, len): the side (what: "host", "guest"). */
static int net_hostfwd_side(const char *s, size_t len, const char *what, uint32_t dflt,
			    uint32_t *addr, uint16_t *port, char *err, size_t errlen)
{
	const char *colon = memrchr(s, ':', len);
	size_t alen;

	if (!colon) {
		snprintf(err, errlen, "expected [ADDR]:PORT for the %s side, got '%.*s'", what,
			 (int)len, s);
		return -EINVAL;
	}
	alen = (size_t)(colon - s);
	if (net_hostfwd_addr(s, alen, dflt, addr) < 0) {
		snprintf(err, errlen, "bad %s address '%.*s'", what, (int)alen, s);
		return -EINVAL;
	}
	if (net_hostfwd_port(colon + 1, len - alen - 1, port) < 0) {
		snprintf(err, errlen, "bad %s port '%.*s' (1-65535)", what, (int)(len - alen - 1),
			 colon + 1);
		return -EINVAL;
	}
	return 0;
}

int net_hostfwd_parse(const char *text, struct net_hostfwd *out, char *err, size_t errlen)
{
	const char *colon, *dash, *rest;
	size_t plen;

	memset(out, 0, sizeof(*out));
	colon = text ? strchr(text, ':') : NULL;
	dash = colon ? strchr(colon + 1, '-') : NULL;
	if (!dash) {
		snprintf(err, errlen, "expected tcp|udp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT");
		return -EINVAL;
	}
	plen = (size_t)(colon - text);
	if (plen == 3 && strncmp(text, "udp", 3) == 0) {
		out->udp = true;
	} else if (plen != 0 && !(plen == 3 && strncmp(text, "tcp", 3) == 0)) {
		snprintf(err, errlen, "unknown protocol '%.*s' (tcp or udp)", (int)plen, text);
		return -EINVAL;
	}
	rest = colon + 1;
	if (net_hostfwd_side(rest, (size_t)(dash - rest), "host", htonl(NET_HOSTFWD_HOST),
			     &out->host_addr, &out->host_port, err, errlen) < 0)
		return -EINVAL;
	return net_hostfwd_side(dash + 1, strlen(dash + 1), "guest", 0, &out->guest_addr,
				&out->guest_port, err, errlen);
}
