/* The PVH start info from kvisor: validated access and command-line keys. */
#include "fw.h"

const struct hvm_start_info *fw_start_info(void)
{
	const struct hvm_start_info *si = (const void *)(uintptr_t)fw_start_info_gpa;

	if (!si || si->magic != HVM_START_MAGIC)
		return NULL;
	return si;
}

const char *fw_cmdline(void)
{
	const struct hvm_start_info *si = fw_start_info();

	if (!si || !si->cmdline_paddr || si->cmdline_paddr >= LAYOUT_MMIO_HOLE_GPA)
		return "";
	return (const char *)(uintptr_t)si->cmdline_paddr;
}

/* "key=value" words of the command line. */
static const char *fw_cmdline_find(const char *key)
{
	size_t n = strlen(key);

	for (const char *p = fw_cmdline(); *p;) {
		while (*p == ' ')
			p++;
		if (!strncmp(p, key, n) && p[n] == '=')
			return p + n + 1;
		while (*p && *p != ' ')
			p++;
	}
	return NULL;
}

uint64_t fw_cmdline_u64(const char *key, uint64_t def)
{
	const char *p = fw_cmdline_find(key);
	uint64_t v = 0;

	if (!p || *p < '0' || *p > '9')
		return def;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		for (p += 2;; p++) {
			unsigned d;

			if (*p >= '0' && *p <= '9')
				d = (unsigned)(*p - '0');
			else if ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'f')
				d = (unsigned)((*p | 0x20) - 'a' + 10);
			else
				return v;
			v = v << 4 | d;
		}
	}
	while (*p >= '0' && *p <= '9')
		v = v * 10 + (uint64_t)(*p++ - '0');
	return v;
}

bool fw_cmdline_is(const char *key, const char *value)
{
	const char *p = fw_cmdline_find(key);
	size_t n = strlen(value);

	return p && !strncmp(p, value, n) && (p[n] == ' ' || !p[n]);
}
