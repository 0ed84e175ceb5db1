/* ELF kernels, parsed with libelf: PVH firmware or kernels (Xen PHYS32_ENTRY
 * note), x86-64 vmlinux through the Linux 64-bit entry, and the vmlinux in a
 * bzImage's payload. libelf reads the headers and notes only (struct
 * boot_elf_img); segments are read straight into guest RAM. Every header
 * value is checked against the file. */
#include <errno.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "boot_priv.h"
#include "kvisor/layout.h"
#include "kvisor/log.h"
#include "kvisor/mem.h"

#define BOOT_XEN_NOTE_PHYS32_ENTRY 18
#define BOOT_ELF_PH_MAX            4096        /* program headers we accept */
#define BOOT_NOTE_MAX              (64u << 10) /* bytes of one note block searched */

/* The ELF image at [base, base + len) of (f), for libelf's elf_memory. A
 * file held in memory is handed over as it is. Otherwise (p) is an
 * anonymous mapping of (len) bytes into which boot_elf_fetch reads only
 * what libelf is about to look at (headers, notes): the rest is never
 * touched, so costs no memory, and libelf checks offsets against the true
 * size of the image. */
struct boot_elf_img {
	const struct boot_file *f;
	uint64_t base, len;
	uint8_t *p;
	size_t map_len; /* our mapping's, 0 when (p) is the file's memory */
	Elf *elf;
};

static void boot_elf_close(struct boot_elf_img *im)
{
	if (im->elf)
		elf_end(im->elf);
	if (im->map_len)
		munmap(im->p, im->map_len);
	im->elf = NULL;
	im->map_len = 0;
}

/* Put the file's bytes at [off, off + size) of the image. 0, -ENODATA
 * (outside the image, or the file shrank) or -errno. */
static int boot_elf_fetch(const struct boot_elf_img *im, uint64_t off, uint64_t size)
{
	if (off > im->len || size > im->len - off)
		return -ENODATA;
	if (!im->map_len)
		return 0;
	return boot_file_read(im->f, im->base + off, im->p + off, (size_t)size);
}

/* Open the image and read its ELF header into (*eh). 0, -ENODATA (shorter
 * than its header), -ENOEXEC (not ELF to libelf: magic, class, encoding or
 * version), -ENOMEM or -errno; boot_elf_close in every case. */
static int boot_elf_open(struct boot_elf_img *im, const struct boot_file *f, uint64_t base,
			 uint64_t len, GElf_Ehdr *eh)
{
	size_t n = len < sizeof(Elf64_Ehdr) ? (size_t)len : sizeof(Elf64_Ehdr);
	int ret;

	memset(im, 0, sizeof(*im));
	im->f = f, im->base = base, im->len = len;
	if (len < EI_NIDENT)
		return -ENOEXEC;
	if (f->map) {
		im->p = f->map + base;
	} else {
		im->p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (im->p == MAP_FAILED)
			return -ENOMEM;
		im->map_len = len;
	}
	ret = boot_elf_fetch(im, 0, n);
	if (ret)
		return ret;
	/* libelf refuses a header cut short like any bad one: tell them apart. */
	if (!memcmp(im->p, ELFMAG, SELFMAG) &&
	    ((im->p[EI_CLASS] == ELFCLASS32 && n < sizeof(Elf32_Ehdr)) ||
	     (im->p[EI_CLASS] == ELFCLASS64 && n < sizeof(Elf64_Ehdr))))
		return -ENODATA;
	if (elf_version(EV_CURRENT) == EV_NONE)
		return -ENOEXEC;
	im->elf = elf_memory((char *)im->p, len);
	if (!im->elf || elf_kind(im->elf) != ELF_K_ELF || !gelf_getehdr(im->elf, eh))
		return -ENOEXEC;
	return 0;
}

/* Check the program header table against the image, read it in and copy
 * it to e->ph. 0, -ENOEXEC (logged with (what)), -ENOMEM or -errno. */
static int boot_elf_phdrs(struct boot_elf_img *im, struct boot_elf *e, const char *what)
{
	const GElf_Ehdr *eh = &e->eh;
	size_t esz = gelf_fsize(im->elf, ELF_T_PHDR, 1, EV_CURRENT);
	const char *why = NULL;
	int ret = 0;

	if (eh->e_phnum && eh->e_phentsize != esz)
		why = "unexpected entry size";
	else if (eh->e_phnum > BOOT_ELF_PH_MAX)
		why = "too many";
	else if ((ret = boot_elf_fetch(im, eh->e_phoff, (uint64_t)eh->e_phnum * esz)))
		why = ret == -ENODATA ? "beyond the end of the file" : strerror(-ret);
	if (why) {
		log_err("%s: corrupt ELF program headers: %s", what, why);
		return ret && ret != -ENODATA ? ret : -ENOEXEC;
	}
	e->ph = calloc(eh->e_phnum ? eh->e_phnum : 1, sizeof(*e->ph));
	if (!e->ph)
		return -ENOMEM;
	for (int i = 0; i < eh->e_phnum; i++) {
		if (!gelf_getphdr(im->elf, i, &e->ph[i])) {
			log_err("%s: corrupt ELF program headers: %s", what, elf_errmsg(-1));
			return -ENOEXEC;
		}
	}
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
	for (unsigned i = 0; i < e->eh.e_phnum; i++) {
		const GElf_Phdr *s = &e->ph[i];
		uint64_t file_end;

		if (s->p_type != PT_LOAD || !s->p_memsz)
			continue;
		if (s->p_filesz > s->p_memsz ||
		    __builtin_add_overflow(s->p_offset, s->p_filesz, &file_end) || file_end > len) {
			log_err("%s: corrupt ELF segment at %#llx", what,
				(unsigned long long)s->p_paddr);
			return -ENOEXEC;
		}
		/* Below 1 MiB live the VMM's page tables, boot data and ACPI tables. */
		if (s->p_paddr < LAYOUT_HIMEM_GPA) {
			log_err("%s: ELF segment at %#llx is below 1 MiB", what,
				(unsigned long long)s->p_paddr);
			return -ENOEXEC;
		}
		if (!mem_gpa_ptr(mem, s->p_paddr, s->p_memsz)) {
			log_err("%s: ELF segment at %#llx (%llu KiB) is outside the %llu MiB of RAM",
				what, (unsigned long long)s->p_paddr,
				(unsigned long long)s->p_memsz >> 10, BOOT_MIB(mem->ram_size));
			return -E2BIG;
		}
		/* mem_gpa_ptr accepted the range: no overflow. */
		if (s->p_paddr + s->p_memsz > *end)
			*end = s->p_paddr + s->p_memsz;
		if (entry >= s->p_paddr && entry - s->p_paddr < s->p_filesz)
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
	for (unsigned i = 0; i < e->eh.e_phnum; i++) {
		const GElf_Phdr *s = &e->ph[i];
		uint8_t *dst;
		int ret;

		if (s->p_type != PT_LOAD || !s->p_memsz)
			continue;
		dst = mem_gpa_ptr(mem, s->p_paddr, s->p_memsz);
		ret = boot_file_read(f, base + s->p_offset, dst, s->p_filesz);
		if (ret) {
			log_err("%s: cannot read the ELF segment at %#llx: %s", what,
				(unsigned long long)s->p_paddr,
				ret == -ENODATA ? "file truncated" : strerror(-ret));
			return ret == -ENODATA ? -ENOEXEC : ret;
		}
		memset(dst + s->p_filesz, 0, s->p_memsz - s->p_filesz);
	}
	return 0;
}

/* Search the notes at [off, off + size) of the image for Xen's
 * PHYS32_ENTRY: 1 if found, 0 if not (also when the notes end malformed:
 * gelf_getnote stops there), -ENOEXEC for a malformed Xen note or a read
 * error. Only the first BOOT_NOTE_MAX bytes are searched: real note blocks
 * are a few hundred bytes, and a file must not make us read all of it. */
static int boot_elf_notes(const struct boot_elf_img *im, uint64_t off, uint64_t size,
			  uint64_t align, uint64_t *entry)
{
	size_t pos = 0, next, name_at, desc_at;
	Elf_Data *d;
	GElf_Nhdr nh;

	if (size > BOOT_NOTE_MAX)
		size = BOOT_NOTE_MAX;
	if (boot_elf_fetch(im, off, size))
		return -ENOEXEC;
	d = elf_getdata_rawchunk(im->elf, (int64_t)off, size,
				 align == 8 ? ELF_T_NHDR8 : ELF_T_NHDR);
	while (d && pos < d->d_size && (next = gelf_getnote(d, pos, &nh, &name_at, &desc_at))) {
		const uint8_t *desc = (const uint8_t *)d->d_buf + desc_at;
		uint64_t v = 0;

		pos = next;
		if (nh.n_type != BOOT_XEN_NOTE_PHYS32_ENTRY || nh.n_namesz != 4 ||
		    memcmp((const char *)d->d_buf + name_at, "Xen", 4))
			continue;
		if (nh.n_descsz != 4 && nh.n_descsz != 8)
			return -ENOEXEC;
		for (unsigned i = 0; i < nh.n_descsz; i++)
			v |= (uint64_t)desc[i] << (8 * i);
		if (v > UINT32_MAX)
			return -ENOEXEC;
		*entry = v;
		return 1;
	}
	return 0;
}

/* PVH entry from a PT_NOTE segment, else from a SHT_NOTE section. 1 if
 * found, 0 if not, -ENOEXEC for a malformed note. */
static int boot_elf_pvh_entry(const struct boot_elf_img *im, const struct boot_elf *e,
			      uint64_t *entry)
{
	const GElf_Ehdr *eh = &e->eh;
	Elf_Scn *scn = NULL;
	int ret;

	for (unsigned i = 0; i < eh->e_phnum; i++) {
		const GElf_Phdr *s = &e->ph[i];
		uint64_t end;

		if (s->p_type != PT_NOTE)
			continue;
		if (__builtin_add_overflow(s->p_offset, s->p_filesz, &end) || end > im->len)
			return -ENOEXEC;
		ret = boot_elf_notes(im, s->p_offset, s->p_filesz, s->p_align, entry);
		if (ret)
			return ret;
	}
	/* Section headers out of the file or of an unknown size: no sections. */
	if (!eh->e_shnum || eh->e_shentsize != gelf_fsize(im->elf, ELF_T_SHDR, 1, EV_CURRENT) ||
	    boot_elf_fetch(im, eh->e_shoff, (uint64_t)eh->e_shnum * eh->e_shentsize))
		return 0;
	while ((scn = elf_nextscn(im->elf, scn))) {
		GElf_Shdr sh;
		uint64_t end;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE ||
		    __builtin_add_overflow(sh.sh_offset, sh.sh_size, &end) || end > im->len)
			continue;
		ret = boot_elf_notes(im, sh.sh_offset, sh.sh_size, sh.sh_addralign, entry);
		if (ret)
			return ret;
	}
	return 0;
}

/* Little-endian x86 executable. */
static int boot_elf_kind(const GElf_Ehdr *eh, const char *what)
{
	if (eh->e_ident[EI_DATA] != ELFDATA2LSB ||
	    (eh->e_machine != EM_X86_64 && eh->e_machine != EM_386)) {
		log_err("%s: not an x86 ELF file", what);
		return -ENOEXEC;
	}
	if (eh->e_type != ET_EXEC && eh->e_type != ET_DYN) {
		log_err("%s: ELF file is not an executable", what);
		return -ENOEXEC;
	}
	return 0;
}

int boot_elf_load(const struct guest_mem *mem, struct boot_kernel *k)
{
	char what[PATH_MAX + 16];
	struct boot_elf e = { 0 };
	struct boot_elf_img im;
	int ret;

	snprintf(what, sizeof(what), "kernel %s", k->path);
	ret = boot_elf_open(&im, k->file, 0, k->file->size, &e.eh);
	if (ret == -ENODATA)
		log_err("%s: corrupt ELF header: truncated", what);
	else if (ret && ret != -ENOMEM)
		log_err("kernel %s: corrupt ELF file", k->path);
	if (ret) {
		ret = ret == -ENOMEM ? ret : -ENOEXEC;
		goto out;
	}
	ret = boot_elf_kind(&e.eh, what);
	if (!ret)
		ret = boot_elf_phdrs(&im, &e, what);
	if (!ret) {
		ret = boot_elf_pvh_entry(&im, &e, &k->entry);
		if (ret < 0)
			log_err("kernel %s: corrupt ELF note", k->path);
	}
	boot_elf_close(&im);
	if (ret < 0)
		goto out;
	k->pvh = ret == 1;
	if (!k->pvh) {
		if (e.eh.e_ident[EI_CLASS] != ELFCLASS64 || e.eh.e_machine != EM_X86_64) {
			log_err("kernel %s: ELF without PVH entry note", k->path);
			ret = -ENOEXEC;
			goto out;
		}
		k->entry = e.eh.e_entry;
		boot_zp_scratch(k->zp);
		k->cmdline_max = LAYOUT_CMDLINE_MAX - 1;
	}
	ret = boot_elf_check(mem, what, &e, k->file->size, k->entry, &k->end);
	if (!ret)
		ret = boot_elf_read_segments(mem, what, k->file, 0, &e);
	if (!ret)
		log_debug("kernel %s: ELF%s, %s entry %#llx, ends at %#llx", k->path,
			  e.eh.e_ident[EI_CLASS] == ELFCLASS64 ? "64" : "32",
			  k->pvh ? "PVH" : "Linux 64-bit", (unsigned long long)k->entry,
			  (unsigned long long)k->end);
out:
	boot_elf_close(&im);
	boot_elf_free(&e);
	return ret;
}

int boot_elf_vmlinux_hdr(const struct boot_file *f, uint64_t base, uint64_t len, const char *path,
			 struct boot_elf *e)
{
	const GElf_Ehdr *eh = &e->eh;
	char what[PATH_MAX + 16];
	struct boot_elf_img im;
	int ret;

	memset(e, 0, sizeof(*e));
	ret = boot_elf_open(&im, f, base, len, &e->eh);
	if (ret == -ENOEXEC) {
		log_err("kernel %s: corrupt payload (not an ELF file)", path);
	} else if (ret != -ENOMEM &&
		   (ret || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
		    eh->e_ident[EI_DATA] != ELFDATA2LSB || eh->e_machine != EM_X86_64)) {
		log_err("kernel %s: corrupt payload (not an x86-64 vmlinux)", path);
		ret = -ENOEXEC;
	}
	if (!ret) {
		snprintf(what, sizeof(what), "kernel %s payload", path);
		ret = boot_elf_phdrs(&im, e, what);
	}
	boot_elf_close(&im);
	return ret;
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
	*entry = e.eh.e_entry;
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
	const GElf_Phdr *x = *(const GElf_Phdr *const *)a;
	const GElf_Phdr *y = *(const GElf_Phdr *const *)b;

	return x->p_offset < y->p_offset ? -1 : x->p_offset > y->p_offset;
}

static unsigned boot_elf_sorted(const struct boot_elf *e, const GElf_Phdr **v)
{
	unsigned n = 0;

	for (unsigned i = 0; i < e->eh.e_phnum; i++)
		if (e->ph[i].p_type == PT_LOAD && e->ph[i].p_memsz && e->ph[i].p_filesz)
			v[n++] = &e->ph[i];
	qsort(v, n, sizeof(*v), boot_elf_by_offset);
	return n;
}

int boot_elf_spans(const struct guest_mem *mem, const struct boot_elf *e,
		   struct boot_out_span **spans, unsigned *nr)
{
	const GElf_Phdr **v = calloc(e->eh.e_phnum + 1u, sizeof(*v));
	struct boot_out_span *s = calloc(e->eh.e_phnum + 1u, sizeof(*s));
	uint64_t covered = 0;
	unsigned n, k = 0;

	if (!v || !s) {
		free(v), free(s);
		return -ENOMEM;
	}
	n = boot_elf_sorted(e, v);
	for (unsigned i = 0; i < n; i++) {
		uint64_t start = v[i]->p_offset, end = v[i]->p_offset + v[i]->p_filesz;

		/* Bytes an earlier segment already takes are copied afterwards. */
		if (start < covered)
			start = covered;
		if (start >= end)
			continue;
		s[k].start = start;
		s[k].end = end;
		s[k].dst = (uint8_t *)mem_gpa_ptr(mem, v[i]->p_paddr, v[i]->p_memsz) +
			   (start - v[i]->p_offset);
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
	const GElf_Phdr **v = calloc(e->eh.e_phnum + 1u, sizeof(*v));
	unsigned n;

	if (!v)
		return -ENOMEM;
	n = boot_elf_sorted(e, v);
	for (unsigned i = 1; i < n; i++) {
		for (unsigned j = 0; j < i; j++) {
			uint64_t a = v[i]->p_offset, b = v[j]->p_offset + v[j]->p_filesz;

			if (b <= a)
				continue;
			if (b > a + v[i]->p_filesz)
				b = a + v[i]->p_filesz;
			memmove(mem_gpa_ptr(mem, v[i]->p_paddr, v[i]->p_memsz),
				(uint8_t *)mem_gpa_ptr(mem, v[j]->p_paddr, v[j]->p_memsz) +
					(a - v[j]->p_offset),
				b - a);
		}
	}
	free(v);
	for (unsigned i = 0; i < e->eh.e_phnum; i++) {
		const GElf_Phdr *s = &e->ph[i];

		if (s->p_type == PT_LOAD && s->p_memsz)
			memset((uint8_t *)mem_gpa_ptr(mem, s->p_paddr, s->p_memsz) + s->p_filesz, 0,
			       s->p_memsz - s->p_filesz);
	}
	return 0;
}
