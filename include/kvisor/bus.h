/* Address-range buses for port I/O and MMIO exits. Devices register a range
 * with ops that receive an offset into it. */
#ifndef KVISOR_BUS_H
#define KVISOR_BUS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct bus_ops {
	/* Fill (data) with (len) bytes read at (offset); len is 1, 2, 4 or 8. */
	void (*read)(void *opaque, uint64_t offset, void *data, uint32_t len);
	void (*write)(void *opaque, uint64_t offset, const void *data, uint32_t len);
};

struct bus_range {
	uint64_t base;
	uint64_t len;
	const struct bus_ops *ops;
	void *opaque;
};

struct bus {
	const char *name; /* "pio" or "mmio", for messages */
	pthread_rwlock_t lock;
	struct bus_range *ranges; /* sorted by base, never overlapping */
	unsigned nr, cap;
	unsigned long long unclaimed; /* accesses nobody claimed */
};

/* Initialise an empty bus; (name) must outlive it. */
int bus_init(struct bus *bus, const char *name) __attribute__((warn_unused_result));
void bus_destroy(struct bus *bus);

/* Claim [base, base+len). -EINVAL for len 0 or base+len overflowing 2^64,
 * -EEXIST when it overlaps a registered range, -ENOMEM. */
int bus_register(struct bus *bus, uint64_t base, uint64_t len, const struct bus_ops *ops,
		 void *opaque) __attribute__((warn_unused_result));

/* Drop the range that starts at (base) and belongs to (opaque); -ENOENT if none. */
int bus_unregister(struct bus *bus, uint64_t base, void *opaque);

/* Dispatch an access; the device is called without the bus lock held. An
 * access must lie entirely in one range; otherwise
 * (or when nobody claims it) reads return all-ones, writes are dropped, and
 * false is returned (the caller logs, rate-limited). */
bool bus_access(struct bus *bus, uint64_t addr, void *data, uint32_t len, bool is_write);

#endif
