/* Guest RAM: regions of anonymous host memory and the one checked
 * guest-physical -> host translator. Nothing else does arithmetic on
 * guest addresses. */
#ifndef KVISOR_MEM_H
#define KVISOR_MEM_H

#include <stddef.h>
#include <stdint.h>

#define MEM_MAX_REGIONS 4
#define MEM_MIN_SIZE    (16ULL << 20)

struct mem_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *hva;
};

struct guest_mem {
	struct mem_region regions[MEM_MAX_REGIONS];
	unsigned nr_regions;
	uint64_t ram_size; /* total bytes of RAM over all regions */
};

/* Map (ram_size) bytes of guest RAM: below LAYOUT_MMIO_HOLE_GPA, the rest
 * from 4 GiB up. (ram_size) must be a multiple of 4 KiB and at least
 * MEM_MIN_SIZE. Returns 0 or -errno (-EINVAL for a bad size). */
int mem_init(struct guest_mem *mem, uint64_t ram_size) __attribute__((warn_unused_result));

/* Unmap all regions; safe on a zeroed or half-built struct. */
void mem_destroy(struct guest_mem *mem);

/* Host pointer to [gpa, gpa+len) if the whole range lies in one RAM region
 * (len 0 counts as 1 byte for the check), else NULL. Guest-supplied values
 * are fine: overflow is checked. */
void *mem_gpa_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len);

/* Copy between guest RAM and host buffers; 0 or -EFAULT when any byte of
 * the range is outside RAM (nothing is copied then). */
int mem_read(const struct guest_mem *mem, uint64_t gpa, void *dst, uint64_t len)
	__attribute__((warn_unused_result));
int mem_write(const struct guest_mem *mem, uint64_t gpa, const void *src, uint64_t len)
	__attribute__((warn_unused_result));

/* Copy a NUL-terminated guest string of at most (max - 1) bytes into dst,
 * which always ends NUL-terminated. Returns its length or -EFAULT. */
int mem_read_str(const struct guest_mem *mem, uint64_t gpa, char *dst, size_t max);

/* Give the whole pages inside [gpa, gpa+len) back to the host: they read as
 * zeros afterwards and no longer count as resident (loader scratch space).
 * 0, -EFAULT when the range is not in one RAM region, or -errno. */
int mem_release(const struct guest_mem *mem, uint64_t gpa, uint64_t len)
	__attribute__((warn_unused_result));

/* The size of RAM below the MMIO hole and above 4 GiB. */
uint64_t mem_low_size(const struct guest_mem *mem);
uint64_t mem_high_size(const struct guest_mem *mem);

#endif
