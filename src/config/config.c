/* The VM description: machine defaults, the machine options and their
 * validation, freeing. Device instances are in src/config/instance.c. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvisor/config.h"
#include "kvisor/device.h"
#include "kvisor/mem.h"

#include "config_priv.h"

int config_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

int config_init(struct vm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->mem_size = CONFIG_DEFAULT_MEM;
	cfg->cpus = 1;
	cfg->kernel_unpack = true;
	cfg->profile_hz = CONFIG_PROFILE_HZ_DEFAULT;
	for (const struct device_type *const *t = device_types; *t; t++) {
		char err[CONFIG_ERR_MAX];

		/* Only ENOMEM can fail here: the defaults are valid. */
		if ((*t)->machine &&
		    config_add_device(cfg, (*t)->name, NULL, NULL, err, sizeof(err))) {
			config_free(cfg);
			return -ENOMEM;
		}
	}
	return 0;
}

void config_free(struct vm_config *cfg)
{
	for (unsigned i = 0; i < cfg->nr_devices; i++)
		config_device_free(cfg->devices[i]);
	free(cfg->devices);
	free((char *)cfg->name);
	free((char *)cfg->kernel);
	free((char *)cfg->initrd);
	free((char *)cfg->cmdline);
	free((char *)cfg->console_log);
	free((char *)cfg->profile);
	memset(cfg, 0, sizeof(*cfg));
}

int config_parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	unsigned shift = 20;
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	switch (toupper((unsigned char)*end)) {
	case '\0':
		shift = 20;
		break;
	case 'K':
		shift = 10;
		end++;
		break;
	case 'M':
		shift = 20;
		end++;
		break;
	case 'G':
		shift = 30;
		end++;
		break;
	case 'T':
		shift = 40;
		end++;
		break;
	default:
		return -EINVAL;
	}
	if (*end == 'i' && end[1] == 'B')
		end += 2;
	else if (*end == 'B')
		end++;
	if (*end || v == 0 || v > (UINT64_MAX >> shift))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

/* A decimal number up to UINT32_MAX, nothing else. 0 or -EINVAL. */
static int config_parse_uint(const char *s, unsigned *out)
{
	unsigned long v;
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > 0xffffffffUL)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

/* Replace the owned string *(field) with a copy of (len) bytes of (v). */
static int config_set_string(const char **field, const char *v, size_t len)
{
	char *s = strndup(v, len);

	if (!s)
		return -ENOMEM;
	free((char *)*field);
	*field = s;
	return 0;
}

static int config_set_mem(struct vm_config *cfg, const char *v, char *err, size_t errlen)
{
	uint64_t size;

	if (config_parse_size(v, &size))
		return config_error(err, errlen, "mem: invalid size '%s' (use e.g. 256M or 1G)", v);
	if (size < MEM_MIN_SIZE)
		return config_error(err, errlen, "mem %s: at least %llu MiB are needed", v,
				    MEM_MIN_SIZE >> 20);
	if (size & 0xfff)
		return config_error(err, errlen, "mem %s: must be a multiple of 4 KiB", v);
	cfg->mem_size = size;
	return 0;
}

/* profile FILE[,hz=N]: the path ends at the first comma; the last hz wins. */
static int config_set_profile(struct vm_config *cfg, const char *v, char *err, size_t errlen)
{
	const char *comma = strchr(v, ',');
	size_t plen = comma ? (size_t)(comma - v) : strlen(v);
	unsigned hz = CONFIG_PROFILE_HZ_DEFAULT;
	int ret;

	if (plen == 0 || plen >= CONFIG_PATH_MAX)
		return config_error(err, errlen, "profile '%s': %s", v,
				    plen ? "path too long" : "FILE is missing");
	while (comma) {
		const char *opt = comma + 1, *next = strchr(opt, ',');
		int len = (int)(next ? (size_t)(next - opt) : strlen(opt));
		char val[16];

		if (len < 3 || strncmp(opt, "hz=", 3))
			return config_error(err, errlen,
					    "profile %.*s: unknown option '%.*s' (hz=N)", (int)plen,
					    v, len, opt);
		snprintf(val, sizeof(val), "%.*s", len - 3, opt + 3);
		if (len - 3 >= (int)sizeof(val) || config_parse_uint(val, &hz) || hz == 0 ||
		    hz > CONFIG_PROFILE_HZ_MAX)
			return config_error(err, errlen,
					    "profile %.*s: invalid hz '%.*s' (1 to %d)", (int)plen,
					    v, len - 3, opt + 3, CONFIG_PROFILE_HZ_MAX);
		comma = next;
	}
	ret = config_set_string(&cfg->profile, v, plen);
	if (!ret)
		cfg->profile_hz = hz;
	return ret;
}

/* (v) among (names); its index in *out, or an error naming (key). */
static int config_choice(const char *key, const char *v, const char *const names[], int *out,
			 char *err, size_t errlen)
{
	for (int i = 0; names[i]; i++) {
		if (!strcmp(v, names[i])) {
			*out = i;
			return 0;
		}
	}
	return config_error(err, errlen, "%s: invalid value '%s'", key, v);
}

static int config_set_one(struct vm_config *cfg, const char *key, const char *v, char *err,
			  size_t errlen)
{
	static const char *const reboot[] = { "exit", "restart", NULL };
	static const char *const tri[] = { "auto", "on", "off", NULL };
	static const char *const onoff[] = { "off", "on", NULL };
	int i = 0, ret;

	if (!strcmp(key, "name")) {
		if (!config_id_valid(v))
			return config_error(err, errlen,
					    "name: invalid name '%s' (a letter, then letters, digits, "
					    "'-' or '_'; at most %d bytes)",
					    v, CONFIG_ID_MAX - 1);
		return config_set_string(&cfg->name, v, strlen(v));
	}
	if (!strcmp(key, "kernel"))
		return config_set_string(&cfg->kernel, v, strlen(v));
	if (!strcmp(key, "initrd"))
		return config_set_string(&cfg->initrd, v, strlen(v));
	if (!strcmp(key, "cmdline"))
		return config_set_string(&cfg->cmdline, v, strlen(v));
	if (!strcmp(key, "console-log"))
		return config_set_string(&cfg->console_log, v, strlen(v));
	if (!strcmp(key, "mem"))
		return config_set_mem(cfg, v, err, errlen);
	if (!strcmp(key, "profile"))
		return config_set_profile(cfg, v, err, errlen);
	if (!strcmp(key, "cpus")) {
		unsigned n;

		if (config_parse_uint(v, &n) || n == 0)
			return config_error(err, errlen, "cpus: invalid count '%s' (at least 1)",
					    v);
		cfg->cpus = n;
		return 0;
	}
	if (!strcmp(key, "on-reboot")) {
		ret = config_choice(key, v, reboot, &i, err, errlen);
		if (!ret)
			cfg->on_reboot = i == 1 ? CONFIG_REBOOT_RESTART : CONFIG_REBOOT_EXIT;
		return ret;
	}
	if (!strcmp(key, "pvm-compat")) {
		ret = config_choice(key, v, tri, &i, err, errlen);
		if (!ret)
			cfg->pvm_compat = i == 1 ? CONFIG_ON : i == 2 ? CONFIG_OFF : CONFIG_AUTO;
		return ret;
	}
	if (!strcmp(key, "kernel-unpack")) {
		ret = config_choice(key, v, onoff, &i, err, errlen);
		if (!ret)
			cfg->kernel_unpack = i == 1;
		return ret;
	}
	return config_error(err, errlen, "%s: unknown machine option", key);
}

int config_set(struct vm_config *cfg, const char *key, const char *v, char *err, size_t errlen)
{
	int ret = config_set_one(cfg, key, v, err, errlen);

	if (ret == -ENOMEM)
		config_error(err, errlen, "%s: out of memory", key);
	return ret;
}
