/* The profiler's per-vCPU sample table (a bounded open-addressing hash of
 * (cpl, rip) -> count) and the merged, sorted output written at exit. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "kvisor/profile.h"

#define PROFILE_TABLE_MIN_SLOTS 4096u

static uint32_t profile_hash(unsigned cpl, uint64_t rip)
{
	uint64_t x = rip ^ ((uint64_t)cpl << 61);

	/* MurmurHash3's finalizer: kernel text addresses differ in few bits. */
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return (uint32_t)x;
}

/* The slot holding (cpl, rip), or the free slot where it belongs. The load
 * is at most 1/2, so the probe ends. */
static struct profile_entry *profile_slot(const struct profile_table *t, unsigned cpl, uint64_t rip)
{
	uint32_t i = profile_hash(cpl, rip) & t->mask;

	for (;; i = (i + 1) & t->mask) {
		struct profile_entry *e = &t->slots[i];

		if (!e->count || (e->rip == rip && e->cpl == cpl))
			return e;
	}
}

int profile_table_init(struct profile_table *t, uint32_t max)
{
	uint32_t n = PROFILE_TABLE_MIN_SLOTS;

	memset(t, 0, sizeof(*t));
	if (max == 0 || max > PROFILE_TABLE_MAX)
		return -EINVAL;
	while (n / 2 > max && n > 2)
		n /= 2;
	t->slots = calloc(n, sizeof(*t->slots));
	if (!t->slots)
		return -ENOMEM;
	t->mask = n - 1;
	t->max = max;
	return 0;
}

/* Double the slots and rehash. 0 or -ENOMEM (the table stays as it was). */
static int profile_table_grow(struct profile_table *t)
{
	struct profile_table bigger = *t;
	uint32_t n = (t->mask + 1) * 2;

	bigger.slots = calloc(n, sizeof(*bigger.slots));
	if (!bigger.slots)
		return -ENOMEM;
	bigger.mask = n - 1;
	for (uint32_t i = 0; i <= t->mask; i++)
		if (t->slots[i].count)
			*profile_slot(&bigger, t->slots[i].cpl, t->slots[i].rip) = t->slots[i];
	free(t->slots);
	*t = bigger;
	return 0;
}

void profile_table_add(struct profile_table *t, unsigned cpl, uint64_t rip)
{
	struct profile_entry *e = profile_slot(t, cpl, rip);

	t->samples++;
	if (e->count) {
		if (e->count == UINT32_MAX)
			t->dropped++;
		else
			e->count++;
		return;
	}
	if (t->used >= t->max) {
		t->dropped++;
		return;
	}
	/* Keep the load at most 1/2: at most 2 * max slots. */
	if ((t->used + 1) * 2 > t->mask + 1) {
		if (profile_table_grow(t)) {
			t->dropped++;
			return;
		}
		e = profile_slot(t, cpl, rip);
	}
	e->rip = rip;
	e->cpl = cpl;
	e->count = 1;
	t->used++;
}

uint32_t profile_table_count(const struct profile_table *t, unsigned cpl, uint64_t rip)
{
	return t->slots ? profile_slot(t, cpl, rip)->count : 0;
}

void profile_table_free(struct profile_table *t)
{
	free(t->slots);
	memset(t, 0, sizeof(*t));
}

static int profile_cmp_key(const void *a, const void *b)
{
	const struct profile_row *x = a, *y = b;

	if (x->cpl != y->cpl)
		return x->cpl < y->cpl ? -1 : 1;
	return x->rip < y->rip ? -1 : x->rip > y->rip;
}

static int profile_cmp_count(const void *a, const void *b)
{
	const struct profile_row *x = a, *y = b;

	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return profile_cmp_key(a, b);
}

long profile_rows(const struct profile_table *tables, unsigned n, struct profile_row **rows)
{
	struct profile_row *r;
	size_t total = 0, k = 0, m = 0;

	*rows = NULL;
	for (unsigned i = 0; i < n; i++)
		total += tables[i].used;
	if (!total)
		return 0;
	r = malloc(total * sizeof(*r));
	if (!r)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		const struct profile_table *t = &tables[i];

		for (uint32_t s = 0; t->slots && s <= t->mask; s++)
			if (t->slots[s].count)
				r[k++] = (struct profile_row){ t->slots[s].rip, t->slots[s].count,
							       t->slots[s].cpl };
	}
	/* The same (cpl, rip) on several vCPUs becomes one row. */
	qsort(r, k, sizeof(*r), profile_cmp_key);
	for (size_t i = 0; i < k; i++) {
		if (m && r[m - 1].cpl == r[i].cpl && r[m - 1].rip == r[i].rip)
			r[m - 1].count += r[i].count;
		else
			r[m++] = r[i];
	}
	qsort(r, m, sizeof(*r), profile_cmp_count);
	*rows = r;
	return (long)m;
}

long profile_write_tables(FILE *f, const struct profile_table *tables, unsigned n, unsigned hz)
{
	struct profile_row *rows;
	uint64_t samples = 0, dropped = 0;
	long nr = profile_rows(tables, n, &rows);

	if (nr < 0)
		return nr;
	for (unsigned i = 0; i < n; i++) {
		samples += tables[i].samples;
		dropped += tables[i].dropped;
	}
	fprintf(f,
		"# kvisor profile: hz=%u vcpus=%u samples=%" PRIu64 " dropped=%" PRIu64
		" rows=%ld (count cpl rip)\n",
		hz, n, samples, dropped, nr);
	for (long i = 0; i < nr; i++)
		fprintf(f, "%" PRIu64 " %u %016" PRIx64 "\n", rows[i].count, rows[i].cpl,
			rows[i].rip);
	free(rows);
	if (fflush(f) || ferror(f))
		return -(errno ? errno : EIO);
	return nr;
}
