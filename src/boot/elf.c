/* ELF kernels, parsed with libelf: PVH firmware or kernels (Xen PHYS32_ENTRY
 * note), x86-64 vmlinux through the Linux 64-bit entry, and the vmlinux
 * unpacked from a bzImage. Every header value is checked against the file. */
#include <errno.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "boot_priv.h"
#include "kvisor/layout.h"
#include "kvisor/log.h"
#include "kvisor/mem.h"

#define BOOT_XEN_NOTE_PHYS32_ENTRY 18

static int boot_elf_open(uint8_t *buf, size_t len, Elf **elf)
{
	if (elf_version(EV_CURRENT) == EV_NONE)
		return -ENOEXEC;
	*elf = elf_memory((char *)buf, len);
	if (!*elf)
		return -ENOEXEC;
	if (elf_kind(*elf) != ELF_K_ELF) {
		elf_end(*elf);
		return -ENOEXEC;
	}
	return 0;
}

/* Little-endian x86 executable; (*ehdr) filled. */
static int boot_elf_check(Elf *elf, const char *what, GElf_Ehdr *ehdr)
{
	if (!gelf_getehdr(elf, ehdr)) {
		log_err("%s: corrupt ELF header: %s", what, elf_errmsg(-1));
		return -ENOEXEC;
	}
	if (ehdr->e_ident[EI_DATA] != ELFDATA2LSB ||
	    (ehdr->e_machine != EM_X86_64 && ehdr->e_machine != EM_386)) {
		log_err("%s: not an x86 ELF file", what);
		return -ENOEXEC;
	}
	if (ehdr->e_type != ET_EXEC && ehdr->e_type != ET_DYN) {
		log_err("%s: ELF file is not an executable", what);
		return -ENOEXEC;
	}
	return 0;
}

/* One PT_LOAD segment at its physical address; the file is untrusted. */
static int boot_elf_segment(const struct guest_mem *mem, const char *what, const GElf_Phdr *ph,
			    const uint8_t *buf, size_t len)
{
	uint64_t file_end;
	uint8_t *dst;

	if (ph->p_filesz > ph->p_memsz ||
	    __builtin_add_overflow(ph->p_offset, ph->p_filesz, &file_end) || file_end > len) {
		log_err("%s: corrupt ELF segment at %#llx", what, (unsigned long long)ph->p_paddr);
		return -ENOEXEC;
	}
	/* Below 1 MiB live the VMM's page tables, boot data and ACPI tables. */
	if (ph->p_paddr < LAYOUT_HIMEM_GPA) {
		log_err("%s: ELF segment at %#llx is below 1 MiB", what,
			(unsigned long long)ph->p_paddr);
		return -ENOEXEC;
	}
	dst = mem_gpa_ptr(mem, ph->p_paddr, ph->p_memsz);
	if (!dst) {
		log_err("%s: ELF segment at %#llx (%llu KiB) is outside the %llu MiB of RAM", what,
			(unsigned long long)ph->p_paddr, (unsigned long long)ph->p_memsz >> 10,
			BOOT_MIB(mem->ram_size));
		return -E2BIG;
	}
	memcpy(dst, buf + ph->p_offset, ph->p_filesz);
	memset(dst + ph->p_filesz, 0, ph->p_memsz - ph->p_filesz);
	return 0;
}

/* Load every PT_LOAD segment; (entry) must lie in one of them. */
static int boot_elf_segments(const struct guest_mem *mem, const char *what, Elf *elf,
			     const uint8_t *buf, size_t len, uint64_t entry, uint64_t *end)
{
	bool entry_ok = false;
	size_t nr;
	int ret;

	*end = 0;
	if (elf_getphdrnum(elf, &nr)) {
		log_err("%s: corrupt ELF program headers: %s", what, elf_errmsg(-1));
		return -ENOEXEC;
	}
	for (size_t i = 0; i < nr; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, (int)i, &ph)) {
			log_err("%s: corrupt ELF program header %zu", what, i);
			return -ENOEXEC;
		}
		if (ph.p_type != PT_LOAD || !ph.p_memsz)
			continue;
		ret = boot_elf_segment(mem, what, &ph, buf, len);
		if (ret)
			return ret;
		/* mem_gpa_ptr accepted the range: no overflow. */
		if (ph.p_paddr + ph.p_memsz > *end)
			*end = ph.p_paddr + ph.p_memsz;
		if (entry >= ph.p_paddr && entry - ph.p_paddr < ph.p_filesz)
			entry_ok = true;
	}
	if (!entry_ok) {
		log_err("%s: ELF entry point %#llx is not in a loaded segment", what,
			(unsigned long long)entry);
		return -ENOEXEC;
	}
	return 0;
}

/* Search one block of notes for Xen's PHYS32_ENTRY. 1 if found. */
static int boot_elf_note_scan(Elf_Data *data, uint64_t *entry)
{
	size_t off = 0, next, name_off, desc_off;
	GElf_Nhdr nh;

	while (data && off < data->d_size &&
	       (next = gelf_getnote(data, off, &nh, &name_off, &desc_off)) > 0) {
		const uint8_t *d = (const uint8_t *)data->d_buf + desc_off;
		const char *name = (const char *)data->d_buf + name_off;
		uint64_t v = 0;

		off = next;
		if (nh.n_type != BOOT_XEN_NOTE_PHYS32_ENTRY || nh.n_namesz != 4 ||
		    memcmp(name, "Xen", 4))
			continue;
		if (nh.n_descsz != 4 && nh.n_descsz != 8)
			return -ENOEXEC;
		for (unsigned i = 0; i < nh.n_descsz; i++)
			v |= (uint64_t)d[i] << (8 * i);
		if (v > UINT32_MAX)
			return -ENOEXEC;
		*entry = v;
		return 1;
	}
	return 0;
}

/* PVH entry from a PT_NOTE segment, else from a SHT_NOTE section. 1 if
 * found, 0 if not, -ENOEXEC for a malformed note. */
static int boot_elf_pvh_entry(Elf *elf, size_t len, uint64_t *entry)
{
	Elf_Scn *scn = NULL;
	size_t nr;
	int ret;

	if (elf_getphdrnum(elf, &nr))
		return -ENOEXEC;
	for (size_t i = 0; i < nr; i++) {
		GElf_Phdr ph;
		uint64_t end;

		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_NOTE)
			continue;
		if (__builtin_add_overflow(ph.p_offset, ph.p_filesz, &end) || end > len)
			return -ENOEXEC;
		ret = boot_elf_note_scan(elf_getdata_rawchunk(elf, (int64_t)ph.p_offset, ph.p_filesz,
							      ph.p_align == 8 ? ELF_T_NHDR8 : ELF_T_NHDR),
					 entry);
		if (ret)
			return ret;
	}
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE)
			continue;
		ret = boot_elf_note_scan(elf_getdata(scn, NULL), entry);
		if (ret)
			return ret;
	}
	return 0;
}

int boot_elf_load(const struct guest_mem *mem, struct boot_kernel *k)
{
	char what[PATH_MAX + 16];
	GElf_Ehdr ehdr;
	Elf *elf;
	int ret;

	snprintf(what, sizeof(what), "kernel %s", k->path);
	if (boot_elf_open(k->buf, k->len, &elf)) {
		log_err("kernel %s: corrupt ELF file", k->path);
		return -ENOEXEC;
	}
	ret = boot_elf_check(elf, what, &ehdr);
	if (ret)
		goto out;
	ret = boot_elf_pvh_entry(elf, k->len, &k->entry);
	if (ret < 0) {
		log_err("kernel %s: corrupt ELF note", k->path);
		goto out;
	}
	k->pvh = ret == 1;
	if (!k->pvh) {
		if (ehdr.e_ident[EI_CLASS] != ELFCLASS64 || ehdr.e_machine != EM_X86_64) {
			log_err("kernel %s: ELF without PVH entry note", k->path);
			ret = -ENOEXEC;
			goto out;
		}
		k->entry = ehdr.e_entry;
		boot_zp_scratch(k->zp);
		k->cmdline_max = LAYOUT_CMDLINE_MAX - 1;
	}
	ret = boot_elf_segments(mem, what, elf, k->buf, k->len, k->entry, &k->end);
	if (!ret)
		log_debug("kernel %s: ELF%s, %s entry %#llx, ends at %#llx", k->path,
			  ehdr.e_ident[EI_CLASS] == ELFCLASS64 ? "64" : "32",
			  k->pvh ? "PVH" : "Linux 64-bit", (unsigned long long)k->entry,
			  (unsigned long long)k->end);
out:
	elf_end(elf);
	return ret;
}

int boot_elf_load_vmlinux(const struct guest_mem *mem, const char *path, uint8_t *buf,
			  size_t len, uint64_t *entry, uint64_t *end)
{
	char what[PATH_MAX + 16];
	GElf_Ehdr ehdr;
	Elf *elf;
	int ret;

	snprintf(what, sizeof(what), "kernel %s payload", path);
	if (boot_elf_open(buf, len, &elf)) {
		log_err("kernel %s: corrupt payload (not an ELF file)", path);
		return -ENOEXEC;
	}
	if (!gelf_getehdr(elf, &ehdr) || ehdr.e_ident[EI_CLASS] != ELFCLASS64 ||
	    ehdr.e_ident[EI_DATA] != ELFDATA2LSB || ehdr.e_machine != EM_X86_64) {
		log_err("kernel %s: corrupt payload (not an x86-64 vmlinux)", path);
		ret = -ENOEXEC;
		goto out;
	}
	*entry = ehdr.e_entry;
	ret = boot_elf_segments(mem, what, elf, buf, len, *entry, end);
out:
	elf_end(elf);
	return ret;
}
