/* The guest's e820 memory map, shared by the Linux zero page and the PVH
 * memory map: what is RAM, what the VMM keeps for the BIOS area and ACPI. */
#include <errno.h>

#include "kvisor/boot.h"
#include "kvisor/layout.h"
#include "kvisor/mem.h"

static int boot_e820_add(struct boot_e820 *out, unsigned max, unsigned *n, uint64_t addr,
			 uint64_t size, uint32_t type)
{
	if (!size)
		return 0;
	if (*n >= max)
		return -ENOSPC;
	out[*n].addr = addr;
	out[*n].size = size;
	out[*n].type = type;
	(*n)++;
	return 0;
}

int boot_e820_build(const struct guest_mem *mem, struct boot_e820 *out, unsigned max)
{
	uint64_t low = mem_low_size(mem);
	uint64_t high = mem_high_size(mem);
	unsigned n = 0;
	int ret;

	/* mem_init guarantees MEM_MIN_SIZE, far above 1 MiB; stay sane anyway. */
	if (low < LAYOUT_HIMEM_GPA)
		return -EINVAL;
	ret = boot_e820_add(out, max, &n, 0, LAYOUT_EBDA_GPA, E820_RAM);
	if (!ret)
		ret = boot_e820_add(out, max, &n, LAYOUT_EBDA_GPA,
				    LAYOUT_HIMEM_GPA - LAYOUT_EBDA_GPA, E820_RESERVED);
	if (!ret)
		ret = boot_e820_add(out, max, &n, LAYOUT_HIMEM_GPA, low - LAYOUT_HIMEM_GPA,
				    E820_RAM);
	if (!ret)
		ret = boot_e820_add(out, max, &n, LAYOUT_MMIO_HOLE_END, high, E820_RAM);
	return ret ? ret : (int)n;
}
