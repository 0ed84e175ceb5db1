/* Port I/O and MMIO buses: sorted, non-overlapping ranges looked up by
 * binary search under a read lock (registration is rare, exits are not). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kvisor/bus.h"

int bus_init(struct bus *bus, const char *name)
{
	memset(bus, 0, sizeof(*bus));
	bus->name = name;
	return -pthread_rwlock_init(&bus->lock, NULL);
}

void bus_destroy(struct bus *bus)
{
	free(bus->ranges);
	pthread_rwlock_destroy(&bus->lock);
	memset(bus, 0, sizeof(*bus));
}

/* Index of the first range whose base is > addr (caller holds the lock). */
static unsigned bus_upper(const struct bus *bus, uint64_t addr)
{
	unsigned lo = 0, hi = bus->nr;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;

		if (bus->ranges[mid].base <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int bus_register(struct bus *bus, uint64_t base, uint64_t len, const struct bus_ops *ops,
		 void *opaque)
{
	uint64_t last;
	unsigned i;
	int ret = 0;

	if (len == 0 || __builtin_add_overflow(base, len - 1, &last) || !ops)
		return -EINVAL;
	pthread_rwlock_wrlock(&bus->lock);
	i = bus_upper(bus, base);
	/* Overlap with the range before (starts <= base) or after (starts > base). */
	if (i > 0 && bus->ranges[i - 1].base + (bus->ranges[i - 1].len - 1) >= base)
		ret = -EEXIST;
	else if (i < bus->nr && bus->ranges[i].base <= last)
		ret = -EEXIST;
	if (!ret && bus->nr == bus->cap) {
		unsigned cap = bus->cap ? bus->cap * 2 : 16;
		struct bus_range *r = realloc(bus->ranges, cap * sizeof(*r));

		if (!r)
			ret = -ENOMEM;
		else {
			bus->ranges = r;
			bus->cap = cap;
		}
	}
	if (!ret) {
		memmove(&bus->ranges[i + 1], &bus->ranges[i], (bus->nr - i) * sizeof(*bus->ranges));
		bus->ranges[i] = (struct bus_range){ base, len, ops, opaque };
		bus->nr++;
	}
	pthread_rwlock_unlock(&bus->lock);
	return ret;
}

int bus_unregister(struct bus *bus, uint64_t base, void *opaque)
{
	int ret = -ENOENT;

	pthread_rwlock_wrlock(&bus->lock);
	for (unsigned i = 0; i < bus->nr; i++) {
		if (bus->ranges[i].base == base && bus->ranges[i].opaque == opaque) {
			memmove(&bus->ranges[i], &bus->ranges[i + 1],
				(bus->nr - i - 1) * sizeof(*bus->ranges));
			bus->nr--;
			ret = 0;
			break;
		}
	}
	pthread_rwlock_unlock(&bus->lock);
	return ret;
}

bool bus_access(struct bus *bus, uint64_t addr, void *data, uint32_t len, bool is_write)
{
	struct bus_range r = { 0 };
	uint64_t last;
	unsigned i;

	if (len == 0 || len > 8 || __builtin_add_overflow(addr, len - 1, &last))
		goto unclaimed;
	pthread_rwlock_rdlock(&bus->lock);
	i = bus_upper(bus, addr);
	if (i > 0 && last - bus->ranges[i - 1].base < bus->ranges[i - 1].len)
		r = bus->ranges[i - 1];
	pthread_rwlock_unlock(&bus->lock);
	if (r.ops) {
		/* Called without the lock, so a device may (un)register ranges (a PCI
		 * BAR move) from its handler. Devices outlive every vCPU thread, so a
		 * range removed meanwhile still points at a live device. */
		if (is_write)
			r.ops->write(r.opaque, addr - r.base, data, len);
		else
			r.ops->read(r.opaque, addr - r.base, data, len);
		return true;
	}
unclaimed:
	__atomic_add_fetch(&bus->unclaimed, 1, __ATOMIC_RELAXED);
	if (!is_write && len <= 8)
		memset(data, 0xff, len);
	return false;
}
