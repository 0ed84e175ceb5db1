/* Guest page-table walker: guest-virtual to guest-physical for the VMM's
 * own reads of guest kernel data (IDT gates, exception frames). */
#include <errno.h>
#include <string.h>

#include "kvisor/mem.h"
#include "kvisor/x86.h"

#define PTE_P    (1ULL << 0)
#define PTE_PS   (1ULL << 7)
#define PTE_ADDR 0x000ffffffffff000ULL

int x86_gva_to_gpa(const struct guest_mem *mem, uint64_t cr3, int la57, uint64_t gva, uint64_t *gpa)
{
	unsigned levels = la57 ? 5 : 4;
	unsigned va_bits = 12 + 9 * levels;
	uint64_t table = cr3 & PTE_ADDR;
	int64_t sext = (int64_t)(gva << (64 - va_bits)) >> (64 - va_bits);

	if ((uint64_t)sext != gva)
		return -EFAULT; /* non-canonical */
	for (unsigned level = levels; level >= 1; level--) {
		unsigned shift = 12 + 9 * (level - 1);
		uint64_t idx = (gva >> shift) & 0x1ff;
		uint64_t pte;

		if (mem_read(mem, table + idx * 8, &pte, sizeof(pte)))
			return -EFAULT;
		if (!(pte & PTE_P))
			return -EFAULT;
		/* Large pages at the PDPT (1 GiB) and PD (2 MiB) levels. */
		if ((level == 2 || level == 3) && (pte & PTE_PS)) {
			uint64_t mask = (1ULL << shift) - 1;

			*gpa = (pte & PTE_ADDR & ~mask) | (gva & mask);
			return 0;
		}
		table = pte & PTE_ADDR;
	}
	*gpa = table | (gva & 0xfff);
	return 0;
}

int x86_read_gva(const struct guest_mem *mem, uint64_t cr3, int la57, uint64_t gva, void *dst,
		 uint64_t len)
{
	uint8_t *out = dst;

	while (len) {
		uint64_t gpa, chunk = 4096 - (gva & 0xfff);

		if (chunk > len)
			chunk = len;
		if (x86_gva_to_gpa(mem, cr3, la57, gva, &gpa) || mem_read(mem, gpa, out, chunk))
			return -EFAULT;
		out += chunk;
		gva += chunk;
		len -= chunk;
	}
	return 0;
}
