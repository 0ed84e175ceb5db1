/* ELF kernels: PVH firmware or kernels (Xen PHYS32_ENTRY note), x86-64
 * vmlinux through the Linux 64-bit entry, and the vmlinux in a bzImage's
 * payload. Headers come from small reads; segments are read straight into
 * guest RAM. Every header value is checked against the file. */
#include <elf.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boot_priv.h"
#include "kvisor/layout.h"
#include "kvisor/log.h"
#include "kvisor/mem.h"

#define BOOT_XEN_NOTE_PHYS32_ENTRY 18
#define BOOT_ELF_PH_MAX            4096 /* program headers we accept */
#define BOOT_NOTE_WIN              4096 /* bytes of notes read at a time */

static uint64_t boot_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

int boot_elf_ehdr(const uint8_t *b, size_t len, struct boot_elf *e)
{
	memset(e, 0, sizeof(*e));
	if (len < EI_NIDENT || memcmp(b, ELFMAG, SELFMAG) ||
	    (b[EI_CLASS] != ELFCLASS32 && b[EI_CLASS] != ELFCLASS64))
		return -ENOEXEC;
	e->is64 = b[EI_CLASS] == ELFCLASS64;
	e->lsb = b[EI_DATA] == ELFDATA2LSB;
	if (len < (e->is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr)))
		return -ENODATA;
	e->type = (uint16_t)boot_le(b + 16, 2);
	e->machine = (uint16_t)boot_le(b + 18, 2);
	if (e->is64) {
		e->entry = boot_le(b + 24, 8);
		e->phoff = boot_le(b + 32, 8);
		e->shoff = boot_le(b + 40, 8);
		e->phentsize = (uint16_t)boot_le(b + 54, 2);
		e->phnum = (uint16_t)boot_le(b + 56, 2);
		e->shentsize = (uint16_t)boot_le(b + 58, 2);
		e->shnum = (uint16_t)boot_le(b + 60, 2);
	} else {
		e->entry = boot_le(b + 24, 4);
		e->phoff = boot_le(b + 28, 4);
		e->shoff = boot_le(b + 32, 4);
		e->phentsize = (uint16_t)boot_le(b + 42, 2);
		e->phnum = (uint16_t)boot_le(b + 44, 2);
		e->shentsize = (uint16_t)boot_le(b + 46, 2);
		e->shnum = (uint16_t)boot_le(b + 48, 2);
	}
	return 0;
}

static void boot_elf_phdr(const struct boot_elf *e, const uint8_t *p, struct boot_elf_seg *s)
{
	s->type = (uint32_t)boot_le(p, 4);
	if (e->is64) {
		s->offset = boot_le(p + 8, 8);
		s->paddr = boot_le(p + 24, 8);
		s->filesz = boot_le(p + 32, 8);
		s->memsz = boot_le(p + 40, 8);
		s->align = boot_le(p + 48, 8);
	} else {
		s->offset = boot_le(p + 4, 4);
		s->paddr = boot_le(p + 12, 4);
		s->filesz = boot_le(p + 16, 4);
		s->memsz = boot_le(p + 20, 4);
		s->align = boot_le(p + 28, 4);
	}
}

int boot_elf_phdrs(const struct boot_file *f, uint64_t base, uint64_t len, struct boot_elf *e,
		   const char *what)
{
	size_t esz = e->is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
	const char *why = NULL;
	uint8_t *raw = NULL;
	size_t n;
	int ret;

	if (e->phnum && e->phentsize != esz)
		why = "unexpected entry size";
	else if (e->phnum > BOOT_ELF_PH_MAX)
		why = "too many";
	else if (e->phoff > len || (uint64_t)e->phnum * esz > len - e->phoff)
		why = "beyond the end of the file";
	if (why) {
		log_err("%s: corrupt ELF program headers: %s", what, why);
		return -ENOEXEC;
	}
	n = (size_t)e->phnum * esz;
	raw = malloc(n ? n : 1);
	e->ph = calloc(e->phnum ? e->phnum : 1, sizeof(*e->ph));
	if (!raw || !e->ph) {
		free(raw);
		return -ENOMEM;
	}
	ret = boot_file_read(f, base + e->phoff, raw, n);
	if (ret) {
		log_err("%s: corrupt ELF program headers: %s", what,
			ret == -ENODATA ? "beyond the end of the file" : strerror(-ret));
		free(raw);
		return ret == -ENODATA ? -ENOEXEC : ret;
	}
	for (unsigned i = 0; i < e->phnum; i++)
		boot_elf_phdr(e, raw + (size_t)i * esz, &e->ph[i]);
	free(raw);
	return 0;
}

void boot_elf_free(struct boot_elf *e)
{
	free(e->ph);
	e->ph = NULL;
}

int boot_elf_check(const struct guest_mem *mem, const char *what, const struct boot_elf *e,
		   uint64_t len, uint64_t entry, uint64_t *end)
{
	bool entry_ok = false;

	*end = 0;
	for (unsigned i = 0; i < e->phnum; i++) {
		const struct boot_elf_seg *s = &e->ph[i];
		uint64_t file_end;

		if (s->type != PT_LOAD || !s->memsz)
			continue;
		if (s->filesz > s->memsz || __builtin_add_overflow(s->offset, s->filesz, &file_end) ||
		    file_end > len) {
			log_err("%s: corrupt ELF segment at %#llx", what, (unsigned long long)s->paddr);
			return -ENOEXEC;
		}
		/* Below 1 MiB live the VMM's page tables, boot data and ACPI tables. */
		if (s->paddr < LAYOUT_HIMEM_GPA) {
			log_err("%s: ELF segment at %#llx is below 1 MiB", what,
				(unsigned long long)s->paddr);
			return -ENOEXEC;
		}
		if (!mem_gpa_ptr(mem, s->paddr, s->memsz)) {
			log_err("%s: ELF segment at %#llx (%llu KiB) is outside the %llu MiB of RAM",
				what, (unsigned long long)s->paddr, (unsigned long long)s->memsz >> 10,
				BOOT_MIB(mem->ram_size));
			return -E2BIG;
		}
		/* mem_gpa_ptr accepted the range: no overflow. */
		if (s->paddr + s->memsz > *end)
			*end = s->paddr + s->memsz;
		if (entry >= s->paddr && entry - s->paddr < s->filesz)
			entry_ok = true;
	}
	if (!entry_ok) {
		log_err("%s: ELF entry point %#llx is not in a loaded segment", what,
			(unsigned long long)entry);
		return -ENOEXEC;
	}
	return 0;
}

/* Segments checked by boot_elf_check: read each into place, zero the rest. */
static int boot_elf_read_segments(const struct guest_mem *mem, const char *what,
				  const struct boot_file *f, uint64_t base,
				  const struct boot_elf *e)
{
	for (unsigned i = 0; i < e->phnum; i++) {
		const struct boot_elf_seg *s = &e->ph[i];
		uint8_t *dst;
		int ret;

		if (s->type != PT_LOAD || !s->memsz)
			continue;
		dst = mem_gpa_ptr(mem, s->paddr, s->memsz);
		ret = boot_file_read(f, base + s->offset, dst, s->filesz);
		if (ret) {
			log_err("%s: cannot read the ELF segment at %#llx: %s", what,
				(unsigned long long)s->paddr,
				ret == -ENODATA ? "file truncated" : strerror(-ret));
			return ret == -ENODATA ? -ENOEXEC : ret;
		}
		memset(dst + s->filesz, 0, s->memsz - s->filesz);
	}
	return 0;
}

/* Scan [off, off + size) of the file for Xen's PHYS32_ENTRY note, reading a
 * window at a time. 1 if found, 0 if not or the notes end malformed (as
 * gelf_getnote), -ENOEXEC for a malformed Xen note, -errno. */
static int boot_elf_note_scan(const struct boot_file *f, uint64_t off, uint64_t size,
			      uint64_t align, uint64_t *entry)
{
	uint8_t win[BOOT_NOTE_WIN];
	uint64_t a = align == 8 ? 8 : 4, p = 0, win_at = 0, win_len = 0;

	while (size - p >= 12) {
		uint64_t namesz, descsz, type, name_at, desc_at, dpad, v;
		uint64_t need = size - p < 32 ? size - p : 32;
		const uint8_t *n;

		/* Header, a 4-byte name and an 8-byte desc lie within 32 bytes of p. */
		if (p < win_at || p + need > win_at + win_len) {
			win_at = p;
			win_len = size - p < sizeof(win) ? size - p : sizeof(win);
			if (boot_file_read(f, off + win_at, win, (size_t)win_len))
				return -ENOEXEC;
		}
		n = win + (p - win_at);
		namesz = boot_le(n, 4);
		descsz = boot_le(n + 4, 4);
		type = boot_le(n + 8, 4);
		name_at = p + 12;
		if (namesz > size - name_at)
			return 0;
		desc_at = (name_at + namesz + a - 1) & ~(a - 1);
		dpad = (descsz + a - 1) & ~(a - 1);
		if (desc_at > size || dpad > size - desc_at)
			return 0;
		p = desc_at + dpad;
		if (type != BOOT_XEN_NOTE_PHYS32_ENTRY || namesz != 4 ||
		    memcmp(win + (name_at - win_at), "Xen", 4))
			continue;
		if (descsz != 4 && descsz != 8)
			return -ENOEXEC;
		v = boot_le(win + (desc_at - win_at), (unsigned)descsz);
		if (v > UINT32_MAX)
			return -ENOEXEC;
		*entry = v;
		return 1;
	}
	return 0;
}

/* PVH entry from a PT_NOTE segment, else from a SHT_NOTE section. 1 if
 * found, 0 if not, -ENOEXEC for a malformed note. */
static int boot_elf_pvh_entry(const struct boot_file *f, const struct boot_elf *e,
			      uint64_t *entry)
{
	size_t esz = e->is64 ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr);
	int ret;

	for (unsigned i = 0; i < e->phnum; i++) {
		const struct boot_elf_seg *s = &e->ph[i];
		uint64_t end;

		if (s->type != PT_NOTE)
			continue;
		if (__builtin_add_overflow(s->offset, s->filesz, &end) || end > f->size)
			return -ENOEXEC;
		ret = boot_elf_note_scan(f, s->offset, s->filesz, s->align, entry);
		if (ret)
			return ret;
	}
	/* Section headers out of the file or of an unknown size: no sections. */
	if (!e->shnum || e->shentsize != esz || e->shoff > f->size ||
	    (uint64_t)e->shnum * esz > f->size - e->shoff)
		return 0;
	for (unsigned i = 0; i < e->shnum; i++) {
		uint8_t sh[sizeof(Elf64_Shdr)];
		uint64_t off, size, align, end;

		if (boot_file_read(f, e->shoff + (uint64_t)i * esz, sh, esz))
			return 0;
		if (boot_le(sh + 4, 4) != SHT_NOTE)
			continue;
		off = e->is64 ? boot_le(sh + 24, 8) : boot_le(sh + 16, 4);
		size = e->is64 ? boot_le(sh + 32, 8) : boot_le(sh + 20, 4);
		align = e->is64 ? boot_le(sh + 48, 8) : boot_le(sh + 32, 4);
		if (__builtin_add_overflow(off, size, &end) || end > f->size)
			continue; /* libelf gave no data for it */
		ret = boot_elf_note_scan(f, off, size, align, entry);
		if (ret)
			return ret;
	}
	return 0;
}

/* Little-endian x86 executable. */
static int boot_elf_kind(const struct boot_elf *e, const char *what)
{
	if (!e->lsb || (e->machine != EM_X86_64 && e->machine != EM_386)) {
		log_err("%s: not an x86 ELF file", what);
		return -ENOEXEC;
	}
	if (e->type != ET_EXEC && e->type != ET_DYN) {
		log_err("%s: ELF file is not an executable", what);
		return -ENOEXEC;
	}
	return 0;
}

int boot_elf_load(const struct guest_mem *mem, struct boot_kernel *k)
{
	uint8_t head[sizeof(Elf64_Ehdr)] = { 0 };
	size_t n = k->file->size < sizeof(head) ? (size_t)k->file->size : sizeof(head);
	char what[PATH_MAX + 16];
	struct boot_elf e;
	int ret;

	snprintf(what, sizeof(what), "kernel %s", k->path);
	ret = boot_file_read(k->file, 0, head, n);
	if (!ret)
		ret = boot_elf_ehdr(head, n, &e);
	if (ret == -ENODATA) {
		log_err("%s: corrupt ELF header: truncated", what);
		return -ENOEXEC;
	}
	if (ret) {
		log_err("kernel %s: corrupt ELF file", k->path);
		return -ENOEXEC;
	}
	ret = boot_elf_kind(&e, what);
	if (!ret)
		ret = boot_elf_phdrs(k->file, 0, k->file->size, &e, what);
	if (ret)
		goto out;
	ret = boot_elf_pvh_entry(k->file, &e, &k->entry);
	if (ret < 0) {
		log_err("kernel %s: corrupt ELF note", k->path);
		goto out;
	}
	k->pvh = ret == 1;
	if (!k->pvh) {
		if (!e.is64 || e.machine != EM_X86_64) {
			log_err("kernel %s: ELF without PVH entry note", k->path);
			ret = -ENOEXEC;
			goto out;
		}
		k->entry = e.entry;
		boot_zp_scratch(k->zp);
		k->cmdline_max = LAYOUT_CMDLINE_MAX - 1;
	}
	ret = boot_elf_check(mem, what, &e, k->file->size, k->entry, &k->end);
	if (!ret)
		ret = boot_elf_read_segments(mem, what, k->file, 0, &e);
	if (!ret)
		log_debug("kernel %s: ELF%s, %s entry %#llx, ends at %#llx", k->path,
			  e.is64 ? "64" : "32", k->pvh ? "PVH" : "Linux 64-bit",
			  (unsigned long long)k->entry, (unsigned long long)k->end);
out:
	boot_elf_free(&e);
	return ret;
}

int boot_elf_vmlinux_hdr(const struct boot_file *f, uint64_t base, uint64_t len,
			 const char *path, struct boot_elf *e)
{
	uint8_t head[sizeof(Elf64_Ehdr)] = { 0 };
	size_t n = len < sizeof(head) ? (size_t)len : sizeof(head);
	char what[PATH_MAX + 16];
	int ret;

	memset(e, 0, sizeof(*e));
	ret = boot_file_read(f, base, head, n);
	if (!ret)
		ret = boot_elf_ehdr(head, n, e);
	if (ret == -ENOEXEC) {
		log_err("kernel %s: corrupt payload (not an ELF file)", path);
		return -ENOEXEC;
	}
	if (ret || !e->is64 || !e->lsb || e->machine != EM_X86_64) {
		log_err("kernel %s: corrupt payload (not an x86-64 vmlinux)", path);
		return -ENOEXEC;
	}
	snprintf(what, sizeof(what), "kernel %s payload", path);
	return boot_elf_phdrs(f, base, len, e, what);
}

int boot_elf_load_vmlinux(const struct guest_mem *mem, const struct boot_file *f, uint64_t base,
			  uint64_t len, const char *path, uint64_t *entry, uint64_t *end)
{
	char what[PATH_MAX + 16];
	struct boot_elf e;
	int ret;

	snprintf(what, sizeof(what), "kernel %s payload", path);
	ret = boot_elf_vmlinux_hdr(f, base, len, path, &e);
	if (ret)
		goto out;
	*entry = e.entry;
	ret = boot_elf_check(mem, what, &e, len, *entry, end);
	if (!ret)
		ret = boot_elf_read_segments(mem, what, f, base, &e);
out:
	boot_elf_free(&e);
	return ret;
}

/* Segments with file bytes, in file order. */
static int boot_elf_by_offset(const void *a, const void *b)
{
	const struct boot_elf_seg *x = *(const struct boot_elf_seg *const *)a;
	const struct boot_elf_seg *y = *(const struct boot_elf_seg *const *)b;

	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static unsigned boot_elf_sorted(const struct boot_elf *e, const struct boot_elf_seg **v)
{
	unsigned n = 0;

	for (unsigned i = 0; i < e->phnum; i++)
		if (e->ph[i].type == PT_LOAD && e->ph[i].memsz && e->ph[i].filesz)
			v[n++] = &e->ph[i];
	qsort(v, n, sizeof(*v), boot_elf_by_offset);
	return n;
}

int boot_elf_spans(const struct guest_mem *mem, const struct boot_elf *e,
		   struct boot_out_span **spans, unsigned *nr)
{
	const struct boot_elf_seg **v = calloc(e->phnum + 1u, sizeof(*v));
	struct boot_out_span *s = calloc(e->phnum + 1u, sizeof(*s));
	uint64_t covered = 0;
	unsigned n, k = 0;

	if (!v || !s) {
		free(v), free(s);
		return -ENOMEM;
	}
	n = boot_elf_sorted(e, v);
	for (unsigned i = 0; i < n; i++) {
		uint64_t start = v[i]->offset, end = v[i]->offset + v[i]->filesz;

		/* Bytes an earlier segment already takes are copied afterwards. */
		if (start < covered)
			start = covered;
		if (start >= end)
			continue;
		s[k].start = start;
		s[k].end = end;
		s[k].dst = (uint8_t *)mem_gpa_ptr(mem, v[i]->paddr, v[i]->memsz) +
			   (start - v[i]->offset);
		k++;
		covered = end;
	}
	free(v);
	*spans = s;
	*nr = k;
	return 0;
}

int boot_elf_spans_finish(const struct guest_mem *mem, const struct boot_elf *e)
{
	const struct boot_elf_seg **v = calloc(e->phnum + 1u, sizeof(*v));
	unsigned n;

	if (!v)
		return -ENOMEM;
	n = boot_elf_sorted(e, v);
	for (unsigned i = 1; i < n; i++) {
		for (unsigned j = 0; j < i; j++) {
			uint64_t a = v[i]->offset, b = v[j]->offset + v[j]->filesz;

			if (b <= a)
				continue;
			if (b > a + v[i]->filesz)
				b = a + v[i]->filesz;
			memmove(mem_gpa_ptr(mem, v[i]->paddr, v[i]->memsz),
				(uint8_t *)mem_gpa_ptr(mem, v[j]->paddr, v[j]->memsz) +
					(a - v[j]->offset), b - a);
		}
	}
	free(v);
	for (unsigned i = 0; i < e->phnum; i++) {
		const struct boot_elf_seg *s = &e->ph[i];

		if (s->type == PT_LOAD && s->memsz)
			memset((uint8_t *)mem_gpa_ptr(mem, s->paddr, s->memsz) + s->filesz, 0,
			       s->memsz - s->filesz);
	}
	return 0;
}
