/* Linux bzImage (Documentation/x86/boot.rst): setup header checks, the zero
 * page, and loading either the protected-mode kernel or, unpacked on the
 * host, the vmlinux in its payload (the emulated decompressor costs ~25 s). */
#include <asm/bootparam.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <string.h>
#include <time.h>

#include "boot_priv.h"
#include "kvisor/layout.h"
#include "kvisor/log.h"
#include "kvisor/mem.h"

#define BOOT_HDR_OFF     0x1f1
#define BOOT_HDR_END     (BOOT_HDR_OFF + sizeof(struct setup_header))
#define BOOT_FLAG        0xaa55
#define BOOT_HDRS        0x53726448 /* "HdrS" */
#define BOOT_LOADER_ANY  0xff
#define BOOT_ENTRY64_OFF 0x200
#define BOOT_INITRD_MAX  0x37ffffffULL /* initrd_addr_max before protocol 2.03 */
#define BOOT_HEAD_LEN    0x400         /* the setup header ends before 0x302 */
#define BOOT_PEEK        (64u << 10)   /* payload bytes that must hold the ELF headers */

_Static_assert(sizeof(struct boot_params) == 4096, "zero page is one page");
_Static_assert(BOOT_HDR_END <= 0x290, "setup header inside the zero page");

static uint32_t boot_rd32(const uint8_t *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static double boot_ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1e3 + (t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* Copy the setup header into the zero page and check what the 64-bit entry
 * needs; (*setup_len) is the size of the real-mode part of the file. */
static int boot_bz_header(struct boot_kernel *k, size_t *setup_len)
{
	struct setup_header *hdr = &k->zp->hdr;
	uint64_t len = k->file->size;
	uint8_t b[BOOT_HEAD_LEN] = { 0 };
	size_t hdr_end, sects;

	if (len < 0x206 ||
	    boot_file_read(k->file, 0, b, len < sizeof(b) ? (size_t)len : sizeof(b))) {
		log_err("kernel %s: truncated setup header", k->path);
		return -ENOEXEC;
	}
	if ((b[0x1fe] | b[0x1ff] << 8) != BOOT_FLAG || boot_rd32(b + 0x202) != BOOT_HDRS) {
		log_err("kernel %s: not a bzImage (no boot flag or HdrS signature)", k->path);
		return -ENOEXEC;
	}
	/* The header ends where the jump at 0x200 lands. */
	hdr_end = 0x202 + (size_t)b[0x201];
	if (hdr_end > len) {
		log_err("kernel %s: truncated setup header", k->path);
		return -ENOEXEC;
	}
	memcpy(hdr, b + BOOT_HDR_OFF,
	       (hdr_end < BOOT_HDR_END ? hdr_end : BOOT_HDR_END) - BOOT_HDR_OFF);
	if (hdr->version < 0x206) {
		log_err("kernel %s: boot protocol %u.%02u is too old", k->path, hdr->version >> 8,
			hdr->version & 0xff);
		return -ENOEXEC;
	}
	if (hdr->version < 0x20c || !(hdr->xloadflags & XLF_KERNEL_64)) {
		log_err("kernel %s: no 64-bit entry point (boot protocol %u.%02u)", k->path,
			hdr->version >> 8, hdr->version & 0xff);
		return -ENOEXEC;
	}
	sects = hdr->setup_sects ? hdr->setup_sects : 4;
	*setup_len = (sects + 1) * 512;
	if (*setup_len + BOOT_ENTRY64_OFF >= len) {
		log_err("kernel %s: setup_sects %zu beyond the end of the file", k->path, sects);
		return -ENOEXEC;
	}
	if (hdr_end > *setup_len) {
		log_err("kernel %s: setup header longer than the setup code", k->path);
		return -ENOEXEC;
	}
	/* syssize counts 16-byte paragraphs of the protected-mode part. */
	if ((uint64_t)hdr->syssize * 16 > len - *setup_len + 15) {
		log_err("kernel %s: truncated (%llu bytes of kernel, header says %llu)", k->path,
			(unsigned long long)(len - *setup_len),
			(unsigned long long)hdr->syssize * 16);
		return -ENOEXEC;
	}
	k->cmdline_max = hdr->cmdline_size;
	k->initrd_top = (hdr->initrd_addr_max ? hdr->initrd_addr_max : BOOT_INITRD_MAX) + 1ULL;
	return 0;
}

/* The decompressor runs at max(load address aligned up, pref_address) and
 * needs init_size bytes from there (arch/x86/boot/compressed/head_64.S). */
static int boot_bz_place(const struct guest_mem *mem, struct boot_kernel *k, size_t pm_len)
{
	const struct setup_header *hdr = &k->zp->hdr;
	uint64_t start = LAYOUT_BZIMAGE_GPA, align = hdr->kernel_alignment;
	uint64_t need = hdr->init_size > pm_len ? hdr->init_size : pm_len;
	uint8_t *dst;
	int ret;

	if (hdr->relocatable_kernel && align && !(align & (align - 1)) && align <= (1ULL << 30))
		start = (start + align - 1) & ~(align - 1);
	if (hdr->pref_address > start)
		start = hdr->pref_address;
	if (__builtin_add_overflow(start, need, &k->end) || k->end > mem_low_size(mem)) {
		log_err("kernel %s: needs %llu MiB from %#llx, more than the %llu MiB of RAM below 3 GiB",
			k->path, BOOT_MIB(need + (1 << 20) - 1), (unsigned long long)start,
			BOOT_MIB(mem_low_size(mem)));
		return -E2BIG;
	}
	dst = mem_gpa_ptr(mem, LAYOUT_BZIMAGE_GPA, pm_len);
	if (!dst) {
		log_err("kernel %s: %zu bytes do not fit in RAM", k->path, pm_len);
		return -E2BIG;
	}
	ret = boot_file_read(k->file, k->file->size - pm_len, dst, pm_len);
	if (ret) {
		log_err("kernel %s: %s", k->path,
			ret == -ENODATA ? "file truncated" : strerror(-ret));
		return ret == -ENODATA ? -ENOEXEC : ret;
	}
	k->entry = LAYOUT_BZIMAGE_GPA + BOOT_ENTRY64_OFF;
	return 0;
}

/* Decompress the first BOOT_PEEK bytes of the payload into (head) and
 * parse the vmlinux ELF header and program headers there. */
static int boot_bz_peek(const struct boot_kernel *k, uint64_t poff, uint64_t plen,
			enum boot_comp comp, uint8_t *head, struct boot_elf *e)
{
	struct boot_out o = { .flat = head, .limit = BOOT_PEEK - 1 };
	struct boot_file hf;
	struct boot_in in;
	int ret;

	ret = boot_in_open(&in, k->file, poff, plen);
	if (!ret)
		ret = boot_unpack(&in, &o);
	boot_in_close(&in);
	if (ret == -ENOMEM)
		return ret;
	if (ret && ret != -EFBIG) { /* -EFBIG: there is more than the head */
		log_err("kernel %s: corrupt payload (%s)", k->path, boot_comp_name(comp));
		return -ENOEXEC;
	}
	boot_file_mem(&hf, k->path, head, o.pos < BOOT_PEEK ? (size_t)o.pos : BOOT_PEEK);
	return boot_elf_vmlinux_hdr(&hf, 0, hf.size, k->path, e);
}

/* Stream the compressed payload's vmlinux into guest RAM: each byte of a
 * segment is written once, at its place; bytes between segments pass
 * through a 128 KiB ring. No buffer holds the image. */
static int boot_bz_stream(const struct guest_mem *mem, struct boot_kernel *k, uint64_t poff,
			  uint64_t plen, enum boot_comp comp, uint32_t expect)
{
	struct boot_out o = { .limit = expect };
	struct boot_out_span *spans = NULL;
	char what[PATH_MAX + 16];
	struct boot_elf e = { 0 };
	struct boot_in in;
	uint8_t *buf;
	int ret;

	/* One mapping for the head, then the ring: unmapped, not kept by a heap. */
	buf = mmap(NULL, BOOT_OUT_RING, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		return -ENOMEM;
	_Static_assert(BOOT_PEEK <= BOOT_OUT_RING, "head fits the ring's mapping");
	snprintf(what, sizeof(what), "kernel %s payload", k->path);
	ret = boot_bz_peek(k, poff, plen, comp, buf, &e);
	if (!ret) {
		k->entry = e.eh.e_entry;
		ret = boot_elf_check(mem, what, &e, expect, k->entry, &k->end);
	}
	if (!ret)
		ret = boot_elf_spans(mem, &e, &spans, &o.nr_spans);
	if (ret)
		goto out;
	o.spans = spans;
	o.ring = buf;
	ret = boot_in_open(&in, k->file, poff, plen);
	if (!ret)
		ret = boot_unpack(&in, &o);
	boot_in_close(&in);
	if (ret != -ENOMEM && (ret || o.pos != expect)) {
		log_err("kernel %s: corrupt payload (%s)", k->path, boot_comp_name(comp));
		ret = -ENOEXEC;
	}
	if (!ret)
		ret = boot_elf_spans_finish(mem, &e);
out:
	free(spans);
	boot_elf_free(&e);
	munmap(buf, BOOT_OUT_RING);
	return ret;
}

/* Decompress the payload and load its vmlinux. (*done) stays false when
 * the payload format is unknown: the guest's decompressor will handle it. */
static int boot_bz_unpack(const struct guest_mem *mem, struct boot_kernel *k, size_t pm_len,
			  bool *done)
{
	const struct setup_header *hdr = &k->zp->hdr;
	uint64_t poff = k->file->size - pm_len + hdr->payload_offset;
	size_t plen = hdr->payload_length, vlen = 0;
	uint8_t magic[8] = { 0 }, tail[4];
	enum boot_comp comp;
	struct timespec t0;
	uint32_t expect = 0;
	int ret;

	if (hdr->payload_offset > pm_len || plen > pm_len - hdr->payload_offset || plen < 4) {
		log_err("kernel %s: corrupt payload (outside the image)", k->path);
		return -ENOEXEC;
	}
	ret = boot_file_read(k->file, poff, magic, plen < sizeof(magic) ? plen : sizeof(magic));
	if (!ret)
		ret = boot_file_read(k->file, poff + plen - 4, tail, 4);
	if (ret) {
		log_err("kernel %s: %s", k->path,
			ret == -ENODATA ? "file truncated" : strerror(-ret));
		return ret == -ENODATA ? -ENOEXEC : ret;
	}
	comp = boot_comp_detect(magic, plen < sizeof(magic) ? plen : sizeof(magic));
	if (comp == BOOT_COMP_NONE && boot_rd32(magic) != 0x464c457f) {
		log_debug("kernel %s: payload format unknown, the guest decompresses it", k->path);
		return 0;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (comp == BOOT_COMP_NONE) {
		/* An uncompressed vmlinux, read from the file. */
		vlen = plen;
		ret = boot_elf_load_vmlinux(mem, k->file, poff, plen, k->path, &k->entry, &k->end);
		goto out;
	}
	/* The kernel build appends the uncompressed size (size_append). */
	expect = boot_rd32(tail);
	vlen = expect;
	if (expect > mem->ram_size) {
		log_err("kernel %s: payload larger than RAM once decompressed", k->path);
		return -E2BIG;
	}
	ret = boot_bz_stream(mem, k, poff, plen - 4, comp, expect);
out:
	if (ret)
		return ret;
	log_debug("kernel %s: unpacked %s payload, %zu -> %zu bytes, into guest RAM in %.1f ms, "
		  "entry %#llx",
		  k->path, boot_comp_name(comp), plen, vlen, boot_ms_since(&t0),
		  (unsigned long long)k->entry);
	*done = true;
	return 0;
}

int boot_bzimage_load(const struct guest_mem *mem, struct boot_kernel *k, bool unpack)
{
	size_t setup_len;
	bool done = false;
	int ret;

	ret = boot_bz_header(k, &setup_len);
	if (ret)
		return ret;
	if (unpack && k->zp->hdr.payload_length) {
		ret = boot_bz_unpack(mem, k, k->file->size - setup_len, &done);
		if (ret || done)
			return ret;
	}
	ret = boot_bz_place(mem, k, k->file->size - setup_len);
	if (!ret)
		log_debug("kernel %s: bzImage protocol %u.%02u, %zu bytes at %#llx", k->path,
			  k->zp->hdr.version >> 8, k->zp->hdr.version & 0xff,
			  k->file->size - setup_len, LAYOUT_BZIMAGE_GPA);
	return ret;
}

/* Like Firecracker for a vmlinux: the header fields the kernel reads. */
void boot_zp_scratch(struct boot_params *zp)
{
	memset(zp, 0, sizeof(*zp));
	zp->hdr.boot_flag = BOOT_FLAG;
	zp->hdr.header = BOOT_HDRS;
	zp->hdr.version = 0x020f;
	zp->hdr.loadflags = LOADED_HIGH;
	zp->hdr.kernel_alignment = 0x01000000;
	zp->hdr.cmdline_size = LAYOUT_CMDLINE_MAX - 1;
	zp->hdr.initrd_addr_max = BOOT_INITRD_MAX;
}

void boot_zp_finish(struct boot_params *zp, const struct boot_e820 *e820, unsigned nr,
		    uint64_t initrd_gpa, uint64_t initrd_size, uint64_t rsdp_gpa)
{
	struct setup_header *hdr = &zp->hdr;

	hdr->type_of_loader = BOOT_LOADER_ANY;
	hdr->setup_data = 0; /* the loader's list, whatever the file says */
	hdr->loadflags |= LOADED_HIGH;
	hdr->vid_mode = 0xffff; /* "normal" */
	hdr->cmd_line_ptr = (uint32_t)LAYOUT_CMDLINE_GPA;
	zp->ext_cmd_line_ptr = (uint32_t)(LAYOUT_CMDLINE_GPA >> 32);
	hdr->ramdisk_image = (uint32_t)initrd_gpa;
	hdr->ramdisk_size = (uint32_t)initrd_size;
	zp->ext_ramdisk_image = (uint32_t)(initrd_gpa >> 32);
	zp->ext_ramdisk_size = (uint32_t)(initrd_size >> 32);
	if (nr > E820_MAX_ENTRIES_ZEROPAGE)
		nr = E820_MAX_ENTRIES_ZEROPAGE;
	for (unsigned i = 0; i < nr; i++) {
		zp->e820_table[i].addr = e820[i].addr;
		zp->e820_table[i].size = e820[i].size;
		zp->e820_table[i].type = e820[i].type;
	}
	zp->e820_entries = (uint8_t)nr;
	if (rsdp_gpa && hdr->version >= 0x020e)
		zp->acpi_rsdp_addr = rsdp_gpa;
}
