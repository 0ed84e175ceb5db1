/* Internal interface between the files of the kernel loader (src/boot):
 * the state a format loader hands back to boot_load, decompressor helpers. */
#ifndef KVISOR_BOOT_PRIV_H
#define KVISOR_BOOT_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvisor/boot.h"

struct boot_params;
struct guest_mem;

#define BOOT_MIB(x) ((unsigned long long)(x) >> 20)

/* Compression formats recognised by their magic bytes. */
enum boot_comp {
	BOOT_COMP_NONE = 0,
	BOOT_COMP_GZIP,
	BOOT_COMP_XZ,
	BOOT_COMP_LZMA,
	BOOT_COMP_ZSTD,
	BOOT_COMP_LZ4F,  /* lz4 frame format */
	BOOT_COMP_LZ4L,  /* lz4 legacy format (lz4 -l, Linux KERNEL_LZ4) */
};

enum boot_comp boot_comp_detect(const uint8_t *buf, size_t len);
const char *boot_comp_name(enum boot_comp comp);

/* Decompress (in) whatever its format (an uncompressed start is -EINVAL)
 * into a new malloc'd buffer. Errors as boot_decompress. */
int boot_decompress_mem(const uint8_t *in, size_t len, size_t limit, uint8_t **out,
			size_t *out_len) __attribute__((warn_unused_result));

/* Growing output buffer of a decompressor: never more than limit + 1 bytes,
 * so that "more than the limit" is seen without trusting any header. */
struct boot_obuf {
	uint8_t *p;
	size_t len;
	size_t cap;
	size_t max_cap; /* limit + 1, saturated */
};

/* Make room for (n) more bytes, or as many as max_cap allows: 0 when at
 * least one byte is free, else -EFBIG; -ENOMEM. */
int boot_obuf_reserve(struct boot_obuf *o, size_t n) __attribute__((warn_unused_result));
int boot_obuf_grow(struct boot_obuf *o) __attribute__((warn_unused_result));

/* Decode one lz4 stream starting at (in), append to (o), set (*used) to the
 * bytes consumed. 0, -EINVAL, -EFBIG, -ENOMEM. */
int boot_unlz4_frame(const uint8_t *in, size_t len, struct boot_obuf *o, size_t *used)
	__attribute__((warn_unused_result));
int boot_unlz4_legacy(const uint8_t *in, size_t len, struct boot_obuf *o, size_t *used)
	__attribute__((warn_unused_result));

/* A kernel or initrd file (file.c). Regular files are read with pread where
 * the bytes are needed; other files (pipes) are read whole into an anonymous
 * mapping first. boot_file_mem wraps a buffer the caller owns. */
struct boot_file {
	const char *path;
	int fd;
	uint64_t size;
	uint8_t *map;   /* contents, when not read with pread */
	size_t map_cap; /* bytes mapped by boot_file_open (0: not ours) */
};

int boot_file_open(struct boot_file *f, const char *path) __attribute__((warn_unused_result));
void boot_file_mem(struct boot_file *f, const char *path, const uint8_t *buf, size_t len);
void boot_file_close(struct boot_file *f);

/* Exactly (len) bytes at (off) into (dst): 0, -ENODATA when the file ends
 * first (truncated, or shrunk since it was opened), -errno. */
int boot_file_read(const struct boot_file *f, uint64_t off, void *dst, size_t len)
	__attribute__((warn_unused_result));

/* What a format loader learned about the kernel, for boot_load to place the
 * initrd and the command line and to finish the boot parameters. */
struct boot_kernel {
	const char *path;       /* for messages */
	const struct boot_file *file;
	bool pvh;               /* enter through hvm_start_info, else boot_params */
	uint64_t entry;
	uint64_t end;           /* first byte above the kernel and its work area */
	uint64_t initrd_top;    /* an initrd must end at or below this */
	uint64_t cmdline_max;   /* longest command line the kernel takes, w/o NUL */
	struct boot_params *zp; /* zero page being built (Linux 64-bit entry) */
};

/* bzImage: parse the setup header into k->zp and load the kernel, either as
 * is or (unpack) as the vmlinux inside its payload. 0 or -errno, logged. */
int boot_bzimage_load(const struct guest_mem *mem, struct boot_kernel *k, bool unpack)
	__attribute__((warn_unused_result));

/* Fill a zero page for a kernel that came without a setup header. */
void boot_zp_scratch(struct boot_params *zp);

/* Final zero page fields: e820 map, initrd, command line, RSDP. */
void boot_zp_finish(struct boot_params *zp, const struct boot_e820 *e820, unsigned nr,
		    uint64_t initrd_gpa, uint64_t initrd_size, uint64_t rsdp_gpa);

/* ELF headers (elf.c), read from the file in small pieces. */
struct boot_elf_seg {
	uint32_t type;
	uint64_t offset, paddr, filesz, memsz, align;
};

struct boot_elf {
	bool is64, lsb;
	uint16_t type, machine;
	uint64_t entry, phoff, shoff;
	uint16_t phentsize, phnum, shentsize, shnum;
	struct boot_elf_seg *ph; /* phnum entries after boot_elf_phdrs */
};

/* Parse the ELF header in the first (len) bytes: 0, -ENOEXEC (no ELF magic
 * or class) or -ENODATA (shorter than the header). */
int boot_elf_ehdr(const uint8_t *b, size_t len, struct boot_elf *e)
	__attribute__((warn_unused_result));

/* Read the program headers of the ELF image at [base, base + len) of (f).
 * 0, -ENOEXEC (logged with (what)) or -ENOMEM. boot_elf_free releases them. */
int boot_elf_phdrs(const struct boot_file *f, uint64_t base, uint64_t len, struct boot_elf *e,
		   const char *what) __attribute__((warn_unused_result));
void boot_elf_free(struct boot_elf *e);

/* Check every PT_LOAD segment against an image of (len) bytes and guest RAM
 * (at or above 1 MiB), and that (entry) lies in one; (*end) is the end of
 * the highest. 0, -ENOEXEC or -E2BIG, logged with (what). */
int boot_elf_check(const struct guest_mem *mem, const char *what, const struct boot_elf *e,
		   uint64_t len, uint64_t entry, uint64_t *end) __attribute__((warn_unused_result));

/* ELF kernel file (PVH note, or x86-64 vmlinux through the Linux 64-bit
 * entry with a scratch zero page). 0 or -errno, logged. */
int boot_elf_load(const struct guest_mem *mem, struct boot_kernel *k)
	__attribute__((warn_unused_result));

/* Header and program headers of the x86-64 vmlinux at [base, base + len) of
 * (f), the payload of the bzImage (path). 0, -ENOEXEC (logged), -ENOMEM. */
int boot_elf_vmlinux_hdr(const struct boot_file *f, uint64_t base, uint64_t len,
			 const char *path, struct boot_elf *e) __attribute__((warn_unused_result));

/* Load the PT_LOAD segments of that vmlinux; set (*entry) and (*end).
 * 0 or -ENOEXEC/-E2BIG, logged. */
int boot_elf_load_vmlinux(const struct guest_mem *mem, const struct boot_file *f, uint64_t base,
			  uint64_t len, const char *path, uint64_t *entry, uint64_t *end)
	__attribute__((warn_unused_result));

/* Write the hvm_start_info, module entry and memory map at
 * LAYOUT_PVH_INFO_GPA. 0 or -E2BIG (no room in the page) / -EFAULT. */
int boot_pvh_write(const struct guest_mem *mem, const struct boot_e820 *e820, unsigned nr,
		   uint64_t initrd_gpa, uint64_t initrd_size, uint64_t rsdp_gpa)
	__attribute__((warn_unused_result));

#endif
