/* Guest RAM regions and the checked guest-physical -> host translator. */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "kvisor/layout.h"
#include "kvisor/log.h"
#include "kvisor/mem.h"

/* Guest RAM is mapped 2 MiB-aligned (so gpa and hva agree modulo a huge page)
 * and advised for transparent huge pages: one fault then maps 2 MiB. On
 * kvm-pvm hosts a 4 KiB fault costs ~4 us, so loading a 15 MiB kernel took
 * ~20 ms of faults; with huge pages ~1.7 ms. Hardware KVM maps the guest
 * with large pages only when the host does. */
#define MEM_HUGE (2ULL << 20)
#define MEM_PAGE 4096ULL

static int mem_add_region(struct guest_mem *mem, uint64_t gpa, uint64_t size)
{
	struct mem_region *r;
	uint8_t *p, *a;

	if (mem->nr_regions >= MEM_MAX_REGIONS)
		return -ENOSPC;
	p = mmap(NULL, size + MEM_HUGE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	/* Trim to a huge-page boundary; gpa is 2 MiB-aligned (0 or 4 GiB). */
	a = (uint8_t *)(((uintptr_t)p + MEM_HUGE - 1) & ~(uintptr_t)(MEM_HUGE - 1));
	if (a > p)
		munmap(p, (size_t)(a - p));
	munmap(a + size, (size_t)(p + MEM_HUGE - a));
	/* Guest RAM is never dumped with kvisor. It is offered to KSM: identical
	 * pages of guests on one host can be merged, but only while the host
	 * runs ksmd (/sys/kernel/mm/ksm/run); kernels without KSM refuse. */
	madvise(a, size, MADV_DONTDUMP);
	madvise(a, size, MADV_HUGEPAGE); /* a hint: fails where THP is off */
	if (madvise(a, size, MADV_MERGEABLE))
		log_debug("guest RAM at gpa %#llx: MADV_MERGEABLE: %s (no KSM)",
			  (unsigned long long)gpa, strerror(errno));
	r = &mem->regions[mem->nr_regions++];
	r->gpa = gpa;
	r->size = size;
	r->hva = a;
	mem->ram_size += size;
	return 0;
}

int mem_init(struct guest_mem *mem, uint64_t ram_size)
{
	uint64_t low;
	int ret;

	memset(mem, 0, sizeof(*mem));
	if (ram_size < MEM_MIN_SIZE || ram_size & 0xfff)
		return -EINVAL;
	if (ram_size > (1ULL << 46))
		return -EINVAL;
	low = ram_size < LAYOUT_MMIO_HOLE_GPA ? ram_size : LAYOUT_MMIO_HOLE_GPA;
	ret = mem_add_region(mem, 0, low);
	if (!ret && ram_size > low)
		ret = mem_add_region(mem, LAYOUT_MMIO_HOLE_END, ram_size - low);
	if (ret)
		mem_destroy(mem);
	return ret;
}

void mem_destroy(struct guest_mem *mem)
{
	for (unsigned i = 0; i < mem->nr_regions; i++)
		munmap(mem->regions[i].hva, mem->regions[i].size);
	memset(mem, 0, sizeof(*mem));
}

void *mem_gpa_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
	uint64_t last;

	if (len == 0)
		len = 1;
	if (__builtin_add_overflow(gpa, len - 1, &last))
		return NULL;
	for (unsigned i = 0; i < mem->nr_regions; i++) {
		const struct mem_region *r = &mem->regions[i];

		/* r->size > 0, so r->gpa + r->size - 1 cannot overflow for mapped RAM. */
		if (gpa >= r->gpa && last <= r->gpa + (r->size - 1))
			return r->hva + (gpa - r->gpa);
	}
	return NULL;
}

int mem_read(const struct guest_mem *mem, uint64_t gpa, void *dst, uint64_t len)
{
	void *p = mem_gpa_ptr(mem, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(dst, p, len);
	return 0;
}

int mem_write(const struct guest_mem *mem, uint64_t gpa, const void *src, uint64_t len)
{
	void *p = mem_gpa_ptr(mem, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(p, src, len);
	return 0;
}

int mem_read_str(const struct guest_mem *mem, uint64_t gpa, char *dst, size_t max)
{
	size_t i;

	if (max == 0)
		return -EINVAL;
	/* Byte by byte: the string may end right before the end of a region. */
	for (i = 0; i + 1 < max; i++) {
		const char *p = NULL;
		uint64_t a;

		if (!__builtin_add_overflow(gpa, i, &a))
			p = mem_gpa_ptr(mem, a, 1);
		if (!p) {
			dst[0] = '\0';
			return -EFAULT;
		}
		dst[i] = *p;
		if (!*p)
			return (int)i;
	}
	dst[i] = '\0';
	return (int)i;
}

int mem_release(const struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
	uint64_t lo, hi;
	uint8_t *p;

	if (!len)
		return 0;
	p = mem_gpa_ptr(mem, gpa, len);
	if (!p)
		return -EFAULT;
	/* Whole pages inside the range only: the bytes around it stay. */
	lo = (gpa + MEM_PAGE - 1) & ~(MEM_PAGE - 1);
	hi = (gpa + len) & ~(MEM_PAGE - 1);
	if (hi <= lo)
		return 0;
	return madvise(p + (lo - gpa), hi - lo, MADV_DONTNEED) ? -errno : 0;
}

uint64_t mem_low_size(const struct guest_mem *mem)
{
	return mem->nr_regions ? mem->regions[0].size : 0;
}

uint64_t mem_high_size(const struct guest_mem *mem)
{
	return mem->nr_regions > 1 ? mem->regions[1].size : 0;
}
