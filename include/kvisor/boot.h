/* Loading a guest kernel: Linux bzImage (boot protocol, 64-bit entry),
 * ELF vmlinux or firmware with a PVH entry note, initrd, e820, command line. */
#ifndef KVISOR_BOOT_H
#define KVISOR_BOOT_H

#include <stddef.h>
#include <stdint.h>

struct guest_mem;
struct vm;

enum boot_entry {
	BOOT_ENTRY_LINUX64 = 1, /* long mode, RSI = boot_params */
	BOOT_ENTRY_PVH32 = 2,   /* 32-bit protected mode, paging off, EBX = hvm_start_info */
};

struct boot_info {
	enum boot_entry entry;
	uint64_t rip;
	uint64_t arg;
};

/* e820 memory map */
#define E820_RAM      1
#define E820_RESERVED 2
#define E820_ACPI     3
#define BOOT_E820_MAX 16

struct boot_e820 {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
};

/* Build the e820 map of (mem): low RAM below the EBDA, the reserved
 * BIOS/ACPI area, RAM from 1 MiB to the hole, RAM above 4 GiB.
 * Returns the number of entries written (at most max) or -ENOSPC. */
int boot_e820_build(const struct guest_mem *mem, struct boot_e820 *out, unsigned max);

/* Load vm->cfg->kernel (bzImage, or ELF with a PVH note) and vm->cfg->initrd
 * into vm->mem, write (cmdline), the e820 map and the boot_params (Linux
 * 64-bit entry) or hvm_start_info (PVH) that point at them and at the ACPI
 * RSDP (rsdp_gpa), and describe how to enter the guest in (out).
 * With vm->cfg->kernel_unpack, a bzImage whose payload kvisor can decompress
 * is booted as its vmlinux ELF through the 64-bit entry (no decompressor runs
 * in the guest). Every error prints one line naming the file and the problem
 * and returns -errno (-ENOENT, -EACCES, -ENOEXEC for a corrupt image, -E2BIG
 * for a kernel/initrd/cmdline that does not fit).
 * When boot_load_start ran, this waits for its thread and finishes its work. */
int boot_load(struct vm *vm, const char *cmdline, uint64_t rsdp_gpa, struct boot_info *out)
	__attribute__((warn_unused_result));

/* Start the heavy part of boot_load (reading and decompressing the kernel
 * and initrd into vm->mem, which must be mapped) on a thread of its own: it
 * uses only vm->cfg and vm->mem, and writes guest RAM from 1 MiB up, apart
 * from what the VMM builds below 1 MiB meanwhile. Its errors are reported by
 * boot_load. 0 or -errno (no thread: boot_load then does all the work). */
int boot_load_start(struct vm *vm) __attribute__((warn_unused_result));

/* Wait for and drop a loader thread whose boot_load never came (errors). */
void boot_load_cancel(struct vm *vm);

#endif
