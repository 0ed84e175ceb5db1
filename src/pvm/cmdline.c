/* The guest's kernel command line on kvm-pvm hosts: the user's, plus the
 * parameters that keep Linux away from instructions the host cannot
 * emulate at CPL0 (XSAVE family, FSGSBASE, PCID/INVPCID, POPCNT, SMAP's
 * CLAC/STAC, RDPID, and SSSE3: Debian's kernel runs SSE code such as
 * `movd xmm15, ecx` in BLAKE2s). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvisor/pvm.h"

#define PVM_PARAMS      "noxsave nofsgsbase nopcid noinvpcid"
#define PVM_CLEARCPUID  "popcnt,smap,smep,rdpid,ssse3"
#define PVM_PARAMS_LAST "mitigations=off"

#define CLEARCPUID "clearcpuid="

/* Write (len) bytes of (s) to the memory stream (f). */
static bool put(FILE *f, const char *s, size_t len)
{
	return fwrite(s, 1, len, f) == len;
}

char *pvm_cmdline_merge(const char *user)
{
	const char *p = user ? user : "", *tail = NULL;
	char *out = NULL, *ids = NULL;
	size_t out_len = 0, ids_len = 0;
	FILE *fo = open_memstream(&out, &out_len);
	FILE *fi = open_memstream(&ids, &ids_len);
	bool ok = fo && fi, first = true;

	while (ok && *p) {
		const char *s, *e;
		bool quoted = false;

		while (*p == ' ' || *p == '\t' || *p == '\n')
			p++;
		if (!*p)
			break;
		/* A token ends at white space outside double quotes, as in the
		 * kernel's next_arg(). */
		for (s = e = p; *e && (quoted || (*e != ' ' && *e != '\t' && *e != '\n')); e++)
			if (*e == '"')
				quoted = !quoted;
		p = e;
		if (e - s == 2 && !strncmp(s, "--", 2)) {
			tail = s; /* the rest is for init, not the kernel */
			break;
		}
		if ((size_t)(e - s) > strlen(CLEARCPUID) &&
		    !strncmp(s, CLEARCPUID, strlen(CLEARCPUID))) {
			/* Linux 6.1 honours only the last clearcpuid=: merge. */
			s += strlen(CLEARCPUID);
			ok = put(fi, ",", 1) && put(fi, s, (size_t)(e - s));
			continue;
		}
		ok = (first || put(fo, " ", 1)) && put(fo, s, (size_t)(e - s));
		first = false;
	}
	if (fi && fclose(fi))
		ok = false;
	if (ok)
		ok = fprintf(fo,
			     "%s" PVM_PARAMS " " CLEARCPUID PVM_CLEARCPUID "%s " PVM_PARAMS_LAST
			     "%s%s",
			     first ? "" : " ", ids ? ids : "", tail ? " " : "",
			     tail ? tail : "") > 0;
	if (fo && fclose(fo))
		ok = false;
	free(ids);
	if (!ok) {
		free(out);
		return NULL;
	}
	return out;
}
