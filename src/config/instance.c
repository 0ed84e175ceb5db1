/* Device instances of the VM description: ids, options as text and as the
 * type's typed params, validated against the type's option specs. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvisor/config.h"
#include "kvisor/device.h"

#include "config_priv.h"

/* Specs per type at most: a bitmap records which were given. */
#define CONFIG_MAX_SPECS 32

void config_device_free(struct config_device *dev)
{
	if (!dev)
		return;
	free(dev->opts);
	free(dev->params);
	free(dev->text);
	free(dev);
}

const struct config_device *config_find_device(const struct vm_config *cfg, const char *id)
{
	for (unsigned i = 0; i < cfg->nr_devices; i++)
		if (!strcmp(cfg->devices[i]->id, id))
			return cfg->devices[i];
	return NULL;
}

const char *config_device_opt(const struct config_device *dev, const char *key)
{
	for (unsigned i = 0; i < dev->nr_opts; i++)
		if (!strcmp(dev->opts[i].key, key))
			return dev->opts[i].value;
	return NULL;
}

/* Copy (text) into dev->text and split it at commas into dev->opts: KEY
 * and VALUE at the first '=' (VALUE NULL without one: an error reported
 * once the id is known). 0 or -ENOMEM. */
static int config_split(struct config_device *dev, const char *text)
{
	unsigned n = 1;
	char *p;

	dev->text = strdup(text ? text : "");
	if (!dev->text)
		return -ENOMEM;
	if (!*dev->text)
		return 0;
	for (p = dev->text; *p; p++)
		n += *p == ',';
	dev->opts = calloc(n, sizeof(*dev->opts));
	if (!dev->opts)
		return -ENOMEM;
	for (p = dev->text; p; dev->nr_opts++) {
		char *comma = strchr(p, ','), *eq;

		if (comma)
			*comma = '\0';
		eq = strchr(p, '=');
		if (eq)
			*eq = '\0';
		dev->opts[dev->nr_opts].key = p;
		dev->opts[dev->nr_opts].value = eq ? eq + 1 : NULL;
		p = comma ? comma + 1 : NULL;
	}
	return 0;
}

bool config_id_valid(const char *id)
{
	size_t len = strlen(id);

	if (!isalpha((unsigned char)id[0]) || len >= CONFIG_ID_MAX)
		return false;
	for (size_t i = 1; i < len; i++)
		if (!isalnum((unsigned char)id[i]) && id[i] != '-' && id[i] != '_')
			return false;
	return true;
}

/* Choose dev->id: (id), an "id=" option (taken out of dev->opts), or the
 * type's prefix with the lowest number no instance uses. */
static int config_choose_id(const struct vm_config *cfg, const struct device_type *t,
			    struct config_device *dev, const char *id, char *err, size_t errlen)
{
	unsigned k = 0;

	for (unsigned i = 0; i < dev->nr_opts; i++) {
		if (strcmp(dev->opts[i].key, "id") || !dev->opts[i].value) {
			dev->opts[k++] = dev->opts[i];
			continue;
		}
		if (id)
			return config_error(err, errlen, "%s: duplicate option 'id'", t->name);
		id = dev->opts[i].value;
	}
	dev->nr_opts = k;
	if (!id) {
		for (unsigned n = 0;; n++) {
			snprintf(dev->id, sizeof(dev->id), "%s%u", t->id_prefix, n);
			if (!config_find_device(cfg, dev->id))
				return 0;
		}
	}
	if (!config_id_valid(id))
		return config_error(err, errlen,
				    "%s: invalid id '%s' (a letter, then letters, digits, '-' or '_'; "
				    "at most %d bytes)",
				    t->name, id, CONFIG_ID_MAX - 1);
	snprintf(dev->id, sizeof(dev->id), "%s", id);
	if (config_find_device(cfg, dev->id))
		return config_error(err, errlen, "%s: duplicate id", dev->id);
	return 0;
}

/* "a, b or c" for (names), into (buf). */
static void config_join(const char *const *names, const char *last_sep, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (unsigned i = 0; names[i] && off < len; i++) {
		const char *sep = i == 0 ? "" : names[i + 1] ? ", " : last_sep;

		off += (size_t)snprintf(buf + off, len - off, "%s%s", sep, names[i]);
	}
}

/* The typed value of option (o) per (spec), into (params). */
static int config_parse_opt(const struct config_device *dev, const struct config_opt_spec *spec,
			    const struct config_opt *o, void *params, char *err, size_t errlen)
{
	static const char *const onoff[] = { "on", "off", NULL };
	void *field = (char *)params + spec->offset;
	char list[CONFIG_ERR_MAX / 2];
	unsigned i;

	switch (spec->kind) {
	case CONFIG_OPT_STRING:
	case CONFIG_OPT_LIST:
		if (spec->max && strlen(o->value) > spec->max)
			return config_error(err, errlen,
					    "%s: %s: expected at most %u bytes, got '%s'", dev->id,
					    o->key, spec->max, o->value);
		if (spec->kind == CONFIG_OPT_LIST) {
			unsigned *count = (unsigned *)((char *)params + spec->count_offset);

			if (*count >= spec->max_items)
				return config_error(err, errlen, "%s: %s: at most %u may be given",
						    dev->id, o->key, spec->max_items);
			((const char **)field)[(*count)++] = o->value;
			return 0;
		}
		*(const char **)field = o->value;
		return 0;
	case CONFIG_OPT_BOOL:
		if (strcmp(o->value, "on") && strcmp(o->value, "off"))
			break;
		*(bool *)field = !strcmp(o->value, "on");
		return 0;
	case CONFIG_OPT_CHOICE:
		for (i = 0; spec->choices[i]; i++) {
			if (!strcmp(o->value, spec->choices[i])) {
				*(unsigned *)field = i;
				return 0;
			}
		}
		break;
	}
	config_join(spec->kind == CONFIG_OPT_BOOL ? onoff : spec->choices, " or ", list,
		    sizeof(list));
	return config_error(err, errlen, "%s: %s: expected %s, got '%s'", dev->id, o->key, list,
			    o->value);
}

/* Every option of (dev) against the specs of (t), into dev->params. */
static int config_parse_opts(const struct device_type *t, struct config_device *dev, char *err,
			     size_t errlen)
{
	const struct config_opt_spec *specs = t->opts;
	uint32_t given = 0;
	unsigned nspecs = 0;
	int ret;

	while (specs && specs[nspecs].key)
		nspecs++;
	if (nspecs > CONFIG_MAX_SPECS)
		return config_error(err, errlen, "%s: too many option specs", t->name);
	dev->params = calloc(1, t->params_size ? t->params_size : 1);
	if (!dev->params)
		return -ENOMEM;
	if (t->params_default)
		memcpy(dev->params, t->params_default, t->params_size);
	for (unsigned i = 0; i < dev->nr_opts; i++) {
		const struct config_opt *o = &dev->opts[i];
		unsigned s = 0;

		if (!o->value)
			return config_error(err, errlen, "%s: '%s' is not KEY=VALUE", dev->id,
					    o->key);
		while (s < nspecs && strcmp(specs[s].key, o->key))
			s++;
		if (s == nspecs) {
			const char *keys[CONFIG_MAX_SPECS + 2] = { "id" };
			char list[CONFIG_ERR_MAX / 2];

			for (unsigned k = 0; k < nspecs; k++)
				keys[k + 1] = specs[k].key;
			config_join(keys, ", ", list, sizeof(list));
			return config_error(err, errlen, "%s: unknown option '%s' (%s)", dev->id,
					    o->key, list);
		}
		if ((given & (1u << s)) && specs[s].kind != CONFIG_OPT_LIST)
			return config_error(err, errlen, "%s: duplicate option '%s'", dev->id,
					    o->key);
		given |= 1u << s;
		ret = config_parse_opt(dev, &specs[s], o, dev->params, err, errlen);
		if (ret)
			return ret;
	}
	for (unsigned s = 0; s < nspecs; s++) {
		const char *const *str = (const void *)((char *)dev->params + specs[s].offset);

		if (specs[s].required &&
		    (!(given & (1u << s)) || (specs[s].kind == CONFIG_OPT_STRING && !**str)))
			return config_error(err, errlen, "%s: %s is missing", dev->id,
					    specs[s].key);
	}
	return 0;
}

static int config_check_limit(const struct vm_config *cfg, const struct device_type *t,
			      const struct config_device *dev, char *err, size_t errlen)
{
	unsigned n = 0;

	for (unsigned i = 0; i < cfg->nr_devices; i++)
		n += cfg->devices[i]->type == t;
	if (t->max_instances && n >= t->max_instances)
		return config_error(err, errlen, "%s: at most %u %s device%s", dev->id,
				    t->max_instances, t->name, t->max_instances == 1 ? "" : "s");
	return 0;
}

/* The names of every type, for an unknown one. */
static void config_type_names(char *buf, size_t len)
{
	const char *names[32] = { NULL };
	unsigned n = 0;

	for (const struct device_type *const *t = device_types; *t && n < 31; t++)
		names[n++] = (*t)->name;
	config_join(names, ", ", buf, len);
}

static int config_add(struct vm_config *cfg, const char *type, const char *id, const char *opts,
		      char *err, size_t errlen)
{
	const struct device_type *t = device_type_find(type);
	struct config_device *dev, **devs = NULL;
	int ret;

	if (!t) {
		char list[CONFIG_ERR_MAX / 2];

		config_type_names(list, sizeof(list));
		return config_error(err, errlen, "unknown device type '%s' (%s)", type, list);
	}
	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	dev->type = t;
	ret = config_split(dev, opts);
	if (!ret)
		ret = config_choose_id(cfg, t, dev, id, err, errlen);
	if (!ret)
		ret = config_check_limit(cfg, t, dev, err, errlen);
	if (!ret)
		ret = config_parse_opts(t, dev, err, errlen);
	if (!ret && t->check)
		ret = t->check(dev, err, errlen);
	if (!ret) {
		devs = realloc(cfg->devices, (cfg->nr_devices + 1) * sizeof(*devs));
		ret = devs ? 0 : -ENOMEM;
	}
	if (ret) {
		config_device_free(dev);
		return ret;
	}
	cfg->devices = devs;
	cfg->devices[cfg->nr_devices++] = dev;
	return 0;
}

int config_add_device(struct vm_config *cfg, const char *type, const char *id, const char *opts,
		      char *err, size_t errlen)
{
	int ret = config_add(cfg, type, id, opts, err, errlen);

	if (ret == -ENOMEM)
		config_error(err, errlen, "%s: out of memory", type);
	return ret;
}
