/* The Xen PVH start-of-day page (include/xen/interface/hvm/start_info.h):
 * hvm_start_info, the initrd module entry and the memory map, in one page. */
#include <errno.h>
#include <string.h>

#include "boot_priv.h"
#include "kvisor/layout.h"
#include "kvisor/mem.h"

#define BOOT_PVH_MAGIC    0x336ec578u
#define BOOT_PVH_MODS_OFF 64
#define BOOT_PVH_MAP_OFF  96
#define BOOT_PVH_PAGE     4096

struct boot_pvh_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;
	uint32_t memmap_entries;
	uint32_t reserved;
};

struct boot_pvh_mod {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};

struct boot_pvh_memmap {
	uint64_t addr;
	uint64_t size;
	uint32_t type; /* same values as e820 */
	uint32_t reserved;
};

_Static_assert(sizeof(struct boot_pvh_start_info) == 56, "hvm_start_info ABI");
_Static_assert(sizeof(struct boot_pvh_mod) == 32, "hvm_modlist_entry ABI");
_Static_assert(sizeof(struct boot_pvh_memmap) == 24, "hvm_memmap_table_entry ABI");
_Static_assert(BOOT_PVH_MODS_OFF >= sizeof(struct boot_pvh_start_info), "layout");
_Static_assert(BOOT_PVH_MAP_OFF >= BOOT_PVH_MODS_OFF + sizeof(struct boot_pvh_mod), "layout");

int boot_pvh_write(const struct guest_mem *mem, const struct boot_e820 *e820, unsigned nr,
		   uint64_t initrd_gpa, uint64_t initrd_size, uint64_t rsdp_gpa)
{
	uint8_t page[BOOT_PVH_PAGE] = { 0 };
	struct boot_pvh_start_info si = {
		.magic = BOOT_PVH_MAGIC,
		.version = 1,
		.cmdline_paddr = LAYOUT_CMDLINE_GPA,
		.rsdp_paddr = rsdp_gpa,
		.memmap_paddr = LAYOUT_PVH_INFO_GPA + BOOT_PVH_MAP_OFF,
		.memmap_entries = nr,
	};

	if (nr > (BOOT_PVH_PAGE - BOOT_PVH_MAP_OFF) / sizeof(struct boot_pvh_memmap))
		return -E2BIG;
	if (initrd_size) {
		struct boot_pvh_mod mod = { .paddr = initrd_gpa, .size = initrd_size };

		si.nr_modules = 1;
		si.modlist_paddr = LAYOUT_PVH_INFO_GPA + BOOT_PVH_MODS_OFF;
		memcpy(page + BOOT_PVH_MODS_OFF, &mod, sizeof(mod));
	}
	for (unsigned i = 0; i < nr; i++) {
		struct boot_pvh_memmap m = {
			.addr = e820[i].addr,
			.size = e820[i].size,
			.type = e820[i].type,
		};

		memcpy(page + BOOT_PVH_MAP_OFF + i * sizeof(m), &m, sizeof(m));
	}
	memcpy(page, &si, sizeof(si));
	return mem_write(mem, LAYOUT_PVH_INFO_GPA, page, sizeof(page));
}
