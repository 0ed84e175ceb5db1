/* Internal interface between the files of the kernel loader (src/boot):
 * the state a format loader hands back to boot_load, decompressor helpers. */
#ifndef KVISOR_BOOT_PRIV_H
#define KVISOR_BOOT_PRIV_H

#include <gelf.h>
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
	BOOT_COMP_LZ4F, /* lz4 frame format */
	BOOT_COMP_LZ4L, /* lz4 legacy format (lz4 -l, Linux KERNEL_LZ4) */
};

enum boot_comp boot_comp_detect(const uint8_t *buf, size_t len);
const char *boot_comp_name(enum boot_comp comp);

struct boot_file;

/* Compressed input: a byte range of a file, read BOOT_IN_CHUNK bytes at a
 * time into a small mapping (or used in place when the file is in memory). */
#define BOOT_IN_CHUNK (128u << 10)

struct boot_in {
	const struct boot_file *f;
	uint64_t off, end; /* the part of the range not yet read */
	uint8_t *buf;      /* BOOT_IN_CHUNK bytes, or NULL */
	const uint8_t *p;  /* unconsumed bytes */
	size_t n;
};

int boot_in_open(struct boot_in *in, const struct boot_file *f, uint64_t off, uint64_t len)
	__attribute__((warn_unused_result));
void boot_in_close(struct boot_in *in);
/* Make at least min(want, what is left) bytes available at in->p (want at
 * most BOOT_IN_CHUNK). 0, -EINVAL (file truncated) or -errno. */
int boot_in_fill(struct boot_in *in, size_t want) __attribute__((warn_unused_result));

static inline uint64_t boot_in_left(const struct boot_in *in)
{
	return in->n + (in->end - in->off);
}

static inline void boot_in_skip(struct boot_in *in, size_t k)
{
	in->p += k;
	in->n -= k;
}

/* Decompressed output. Flat: one buffer of limit + 1 bytes (the extra byte
 * tells "more than the limit"). Scatter: the bytes of each span go to its
 * dst (guest RAM), the rest only through a small ring kept for lz4's
 * back-references; past the last span, everything is dropped that way. */
#define BOOT_OUT_RING (128u << 10) /* twice lz4's longest back-reference */

struct boot_out_span {
	uint64_t start, end;
	uint8_t *dst;
};

struct boot_out {
	uint64_t pos;   /* bytes written so far */
	uint64_t limit; /* more than this is -EFBIG */
	uint8_t *flat;
	const struct boot_out_span *spans; /* sorted, not overlapping */
	unsigned nr_spans, cur;
	uint8_t *ring; /* BOOT_OUT_RING bytes, scatter only */
};

/* Where the byte at (pos) goes: (*p), with (*len) bytes contiguous after it
 * and (*back) bytes before it in the same buffer, already written (pos at or
 * after o->pos). 0 or -EFBIG past o->limit. */
int boot_out_room(struct boot_out *o, uint64_t pos, uint8_t **p, size_t *len, size_t *back)
	__attribute__((warn_unused_result));
/* The written byte at (pos) (at most BOOT_OUT_RING / 2 behind o->pos), and
 * how many written bytes follow it contiguously (*len). */
const uint8_t *boot_out_at(struct boot_out *o, uint64_t pos, size_t *len);

/* Decompress every stream in (in) (zero padding between and after them)
 * into (o). 0, -EINVAL (corrupt or truncated), -EFBIG (past o->limit),
 * -ENOMEM or -errno (reading). */
int boot_unpack(struct boot_in *in, struct boot_out *o) __attribute__((warn_unused_result));

/* Decode one lz4 stream at in->p (magic included) into (o). Errors as above. */
int boot_unlz4_frame(struct boot_in *in, struct boot_out *o) __attribute__((warn_unused_result));
int boot_unlz4_legacy(struct boot_in *in, struct boot_out *o) __attribute__((warn_unused_result));

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
	const char *path; /* for messages */
	const struct boot_file *file;
	bool pvh; /* enter through hvm_start_info, else boot_params */
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

/* An ELF image's header and program headers (elf.c, parsed with libelf). */
struct boot_elf {
	GElf_Ehdr eh;
	GElf_Phdr *ph; /* eh.e_phnum entries; boot_elf_free releases them */
};

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
int boot_elf_vmlinux_hdr(const struct boot_file *f, uint64_t base, uint64_t len, const char *path,
			 struct boot_elf *e) __attribute__((warn_unused_result));

/* Load the PT_LOAD segments of that vmlinux; set (*entry) and (*end).
 * 0 or -ENOEXEC/-E2BIG, logged. */
int boot_elf_load_vmlinux(const struct guest_mem *mem, const struct boot_file *f, uint64_t base,
			  uint64_t len, const char *path, uint64_t *entry, uint64_t *end)
	__attribute__((warn_unused_result));

/* Spans for a struct boot_out that sends the file bytes of each PT_LOAD
 * segment (checked by boot_elf_check) to its guest RAM; (*spans) is
 * malloc'd. boot_elf_spans_finish then copies file bytes that two segments
 * share to the second one and zeroes each segment past its file bytes.
 * 0 or -ENOMEM. */
int boot_elf_spans(const struct guest_mem *mem, const struct boot_elf *e,
		   struct boot_out_span **spans, unsigned *nr) __attribute__((warn_unused_result));
int boot_elf_spans_finish(const struct guest_mem *mem, const struct boot_elf *e)
	__attribute__((warn_unused_result));

/* Write the hvm_start_info, module entry and memory map at
 * LAYOUT_PVH_INFO_GPA. 0 or -E2BIG (no room in the page) / -EFAULT. */
int boot_pvh_write(const struct guest_mem *mem, const struct boot_e820 *e820, unsigned nr,
		   uint64_t initrd_gpa, uint64_t initrd_size, uint64_t rsdp_gpa)
	__attribute__((warn_unused_result));

#endif
