/* Unit tests of boot_load: synthetic bzImages (plain and with a vmlinux
 * payload to unpack), ELF kernels with and without a PVH note, initrd and
 * command-line placement, and the -ENOEXEC/-E2BIG cases. */
#include <asm/bootparam.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <lz4.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "kvisor/boot.h"
#include "kvisor/config.h"
#include "kvisor/layout.h"
#include "kvisor/log.h"
#include "kvisor/mem.h"
#include "kvisor/vm.h"

#include <check.h>

#define MIB      (1ULL << 20)
#define RAM      (64 * MIB)
#define RSDP     0xe0000ULL
#define VM_PADDR 0x1000000ULL /* where the synthetic vmlinux loads */
#define PM_LEN   0x3000

static char tmpdir[64];
static struct vm_config cfg;
static struct vm vm;

static void setup(void)
{
	strcpy(tmpdir, "/tmp/check_boot_load_XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	memset(&cfg, 0, sizeof(cfg));
	memset(&vm, 0, sizeof(vm));
	vm.cfg = &cfg;
	ck_assert_int_eq(mem_init(&vm.mem, RAM), 0);
	log_threshold = LOG_ERR;
}

static void teardown(void)
{
	char cmd[128];

	mem_destroy(&vm.mem);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

/* Write (len) bytes to a file in the test directory; returns its path. */
static const char *put_file(const char *name, const void *data, size_t len)
{
	static char paths[4][128];
	static unsigned next;
	char *path = paths[next++ % 4];
	FILE *f;

	snprintf(path, 128, "%s/%s", tmpdir, name);
	f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(data, 1, len, f), len);
	fclose(f);
	return path;
}

/* The whole of file (path), malloc'd with (extra) bytes of room after it. */
static uint8_t *get_file(const char *path, size_t extra, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *p;
	long n;

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	ck_assert_int_ge(n, 0);
	rewind(f);
	p = malloc((size_t)n + extra + 1);
	ck_assert_uint_eq(fread(p, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return p;
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void *gpa(uint64_t addr, uint64_t len)
{
	void *p = mem_gpa_ptr(&vm.mem, addr, len);

	ck_assert_ptr_nonnull(p);
	return p;
}

/* ---- synthetic bzImage ---- */

struct bz {
	uint8_t *p;
	size_t len;
	struct setup_header *hdr;
};

/* 4 setup sectors + 1, then (pm_len) bytes of protected-mode "code" that
 * embed (payload) at offset 0x400. */
static struct bz bz_make(uint16_t version, const void *payload, size_t plen)
{
	size_t setup_len = 5 * 512, pm_len = PM_LEN + plen;
	struct bz b = { calloc(1, setup_len + pm_len), setup_len + pm_len, NULL };

	b.hdr = (struct setup_header *)(b.p + 0x1f1);
	b.hdr->setup_sects = 4;
	b.hdr->syssize = (uint32_t)((pm_len + 15) / 16);
	b.hdr->boot_flag = 0xaa55;
	b.hdr->jump = 0x66eb; /* jmp to 0x268, the end of the 2.15 header */
	b.hdr->header = 0x53726448;
	b.hdr->version = version;
	b.hdr->loadflags = LOADED_HIGH;
	b.hdr->initrd_addr_max = 0x7fffffff;
	b.hdr->kernel_alignment = 0x200000;
	b.hdr->relocatable_kernel = 1;
	b.hdr->xloadflags = XLF_KERNEL_64;
	b.hdr->cmdline_size = 2047;
	b.hdr->pref_address = VM_PADDR;
	b.hdr->init_size = 4 * MIB;
	for (size_t i = 0; i < PM_LEN; i++)
		b.p[setup_len + i] = (uint8_t)(i * 7 + 1);
	if (payload) {
		b.hdr->payload_offset = 0x400;
		b.hdr->payload_length = (uint32_t)plen;
		memmove(b.p + setup_len + 0x400 + plen, b.p + setup_len + 0x400, PM_LEN - 0x400);
		memcpy(b.p + setup_len + 0x400, payload, plen);
	}
	return b;
}

static int load(const void *kernel, size_t len, const char *cmdline, struct boot_info *out)
{
	cfg.kernel = put_file("kernel", kernel, len);
	return boot_load(&vm, cmdline, RSDP, out);
}

/* load(), and the error line it printed: (msg) gets what follows
 * "kvisor: kernel <path>: ". */
static int load_err(const void *kernel, size_t len, char *msg, size_t size)
{
	char path[160], line[512] = "", prefix[200];
	struct boot_info out;
	int fd, saved, ret;
	FILE *f;

	snprintf(path, sizeof(path), "%s/stderr", tmpdir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	saved = dup(2);
	ck_assert(fd >= 0 && saved >= 0);
	ck_assert_int_eq(dup2(fd, 2), 2);
	close(fd);
	ret = load(kernel, len, "x", &out);
	ck_assert_int_eq(dup2(saved, 2), 2);
	close(saved);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	if (!fgets(line, sizeof(line), f))
		line[0] = '\0';
	fclose(f);
	line[strcspn(line, "\n")] = '\0';
	snprintf(prefix, sizeof(prefix), "kvisor: kernel %s: ", cfg.kernel);
	ck_assert_msg(!strncmp(line, prefix, strlen(prefix)), "printed \"%s\"", line);
	snprintf(msg, size, "%s", line + strlen(prefix));
	return ret;
}

static struct boot_params *zero_page(void)
{
	return gpa(LAYOUT_ZERO_PAGE_GPA, sizeof(struct boot_params));
}

static void check_zp_common(const struct boot_params *zp)
{
	ck_assert_uint_eq(zp->hdr.type_of_loader, 0xff);
	ck_assert(zp->hdr.loadflags & LOADED_HIGH);
	ck_assert_uint_eq(zp->hdr.cmd_line_ptr, LAYOUT_CMDLINE_GPA);
	ck_assert_uint_eq(zp->hdr.vid_mode, 0xffff);
	ck_assert_uint_eq(zp->e820_entries, 3);
	ck_assert_uint_eq(zp->e820_table[0].addr, 0);
	ck_assert_uint_eq(zp->e820_table[1].type, E820_RESERVED);
	ck_assert_uint_eq(zp->e820_table[2].addr, 0x100000);
	ck_assert_uint_eq(zp->e820_table[2].size, RAM - 0x100000);
	ck_assert_uint_eq(zp->e820_table[2].type, E820_RAM);
	ck_assert_str_eq(gpa(LAYOUT_CMDLINE_GPA, 1), "console=ttyS0 quiet");
}

START_TEST(test_bz_good)
{
	struct bz b = bz_make(0x020f, NULL, 0);
	uint8_t initrd[MIB + 123];
	struct boot_params *zp;
	struct boot_info out;
	uint64_t rd;

	memset(initrd, 0x5a, sizeof(initrd));
	cfg.initrd = put_file("initrd", initrd, sizeof(initrd));
	ck_assert_int_eq(load(b.p, b.len, "console=ttyS0 quiet", &out), 0);
	ck_assert_int_eq(out.entry, BOOT_ENTRY_LINUX64);
	ck_assert_uint_eq(out.rip, LAYOUT_BZIMAGE_GPA + 0x200);
	ck_assert_uint_eq(out.arg, LAYOUT_ZERO_PAGE_GPA);
	ck_assert(!memcmp(gpa(LAYOUT_BZIMAGE_GPA, PM_LEN), b.p + 5 * 512, PM_LEN));
	zp = zero_page();
	check_zp_common(zp);
	ck_assert_uint_eq(zp->hdr.version, 0x020f);
	ck_assert_uint_eq(zp->hdr.init_size, 4 * MIB);
	ck_assert_uint_eq(zp->acpi_rsdp_addr, RSDP);
	rd = zp->hdr.ramdisk_image | (uint64_t)zp->ext_ramdisk_image << 32;
	ck_assert_uint_eq(zp->hdr.ramdisk_size, sizeof(initrd));
	ck_assert_uint_eq(rd & 0xfff, 0);
	ck_assert_uint_le(rd + sizeof(initrd), RAM);
	ck_assert_uint_gt(rd + sizeof(initrd) + 4096, RAM);
	ck_assert_uint_ge(rd, VM_PADDR + 4 * MIB);
	ck_assert(!memcmp(gpa(rd, sizeof(initrd)), initrd, sizeof(initrd)));
	free(b.p);
}
END_TEST

/* Before protocol 2.14 there is no acpi_rsdp_addr; no initrd. */
START_TEST(test_bz_old_rsdp)
{
	struct bz b = bz_make(0x020c, NULL, 0);
	struct boot_params *zp;
	struct boot_info out;

	ck_assert_int_eq(load(b.p, b.len, "console=ttyS0 quiet", &out), 0);
	zp = zero_page();
	check_zp_common(zp);
	ck_assert_uint_eq(zp->acpi_rsdp_addr, 0);
	ck_assert_uint_eq(zp->hdr.ramdisk_image, 0);
	ck_assert_uint_eq(zp->hdr.ramdisk_size, 0);
	free(b.p);
}
END_TEST

/* Each way of breaking the header. */
START_TEST(test_bz_bad)
{
	struct bz b = bz_make(0x020f, NULL, 0);
	struct boot_info out;
	size_t len = b.len;

	switch (_i) {
	case 0:
		b.hdr->boot_flag = 0;
		break;
	case 1:
		b.hdr->header = 0x12345678;
		break;
	case 2:
		b.hdr->version = 0x0205;
		break;
	case 3:
		b.hdr->xloadflags = 0;
		break;
	case 4:
		len -= 0x1000;
		break; /* syssize says more */
	case 5:
		b.hdr->setup_sects = 200;
		break; /* beyond the file */
	case 6:
		len = 0x203;
		break; /* header cut */
	case 7:
		b.hdr->jump = 0x7feb;
		len = 0x260;
		break;
	case 8:
		memset(b.p, 0, b.len);
		break; /* not a kernel at all */
	}
	ck_assert_int_eq(load(b.p, len, "x", &out), -ENOEXEC);
	free(b.p);
}
END_TEST

START_TEST(test_bz_too_big)
{
	struct bz b = bz_make(0x020f, NULL, 0);
	struct boot_info out;

	b.hdr->init_size = 100 * MIB;
	ck_assert_int_eq(load(b.p, b.len, "x", &out), -E2BIG);
	b.hdr->init_size = 4 * MIB;
	b.hdr->pref_address = ~0ULL - MIB; /* overflows */
	ck_assert_int_eq(load(b.p, b.len, "x", &out), -E2BIG);
	free(b.p);
}
END_TEST

START_TEST(test_cmdline_too_long)
{
	struct bz b = bz_make(0x020f, NULL, 0);
	char cmdline[3000];
	struct boot_info out;

	memset(cmdline, 'a', sizeof(cmdline) - 1);
	cmdline[sizeof(cmdline) - 1] = '\0';
	ck_assert_int_eq(load(b.p, b.len, cmdline, &out), -E2BIG);
	cmdline[2047] = '\0'; /* exactly cmdline_size */
	ck_assert_int_eq(load(b.p, b.len, cmdline, &out), 0);
	ck_assert_str_eq(gpa(LAYOUT_CMDLINE_GPA, 1), cmdline);
	free(b.p);
}
END_TEST

START_TEST(test_initrd_errors)
{
	struct bz b = bz_make(0x020f, NULL, 0);
	size_t big = 50 * MIB; /* 44 MiB free above the kernel */
	uint8_t *rd = calloc(1, big);
	uint8_t gz[] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xde, 0xad };
	struct boot_info out;

	rd[0] = '0';
	cfg.initrd = put_file("initrd", rd, big);
	ck_assert_int_eq(load(b.p, b.len, "x", &out), -E2BIG);
	cfg.initrd = put_file("initrd", gz, sizeof(gz));
	ck_assert_int_eq(load(b.p, b.len, "x", &out), -EINVAL);
	cfg.initrd = "/nonexistent/initrd";
	ck_assert_int_eq(load(b.p, b.len, "x", &out), -ENOENT);
	cfg.initrd = NULL;
	cfg.kernel = "/nonexistent/kernel";
	ck_assert_int_eq(boot_load(&vm, "x", RSDP, &out), -ENOENT);
	free(rd);
	free(b.p);
}
END_TEST

/* A compressed initrd is unpacked on the host; over RAM / 2 is -E2BIG. */
START_TEST(test_initrd_gzip)
{
	struct bz b = bz_make(0x020f, NULL, 0);
	size_t n = 40 * MIB;
	uint8_t *rd = malloc(n), *z = malloc(n / 100);
	uLongf zlen;
	z_stream zs = { 0 };
	struct boot_info out;
	struct boot_params *zp;

	for (size_t i = 0; i < n; i++)
		rd[i] = (uint8_t)(i / 4096);
	ck_assert_int_eq(deflateInit2(&zs, 1, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY),
			 Z_OK);
	zs.next_in = rd;
	zs.avail_in = (uInt)(8 * MIB);
	zs.next_out = z;
	zs.avail_out = (uInt)(n / 100);
	ck_assert_int_eq(deflate(&zs, Z_FINISH), Z_STREAM_END);
	zlen = zs.total_out;
	cfg.initrd = put_file("initrd.gz", z, zlen);
	ck_assert_int_eq(load(b.p, b.len, "x", &out), 0);
	zp = zero_page();
	ck_assert_uint_eq(zp->hdr.ramdisk_size, 8 * MIB);
	ck_assert(!memcmp(gpa(zp->hdr.ramdisk_image, 8 * MIB), rd, 8 * MIB));
	deflateReset(&zs);
	zs.next_in = rd;
	zs.avail_in = (uInt)n;
	zs.next_out = z;
	zs.avail_out = (uInt)(n / 100);
	ck_assert_int_eq(deflate(&zs, Z_FINISH), Z_STREAM_END);
	cfg.initrd = put_file("initrd.gz", z, zs.total_out);
	ck_assert_int_eq(load(b.p, b.len, "x", &out), -E2BIG);
	deflateEnd(&zs);
	free(rd);
	free(z);
	free(b.p);
}
END_TEST

/* ---- synthetic ELF kernels ---- */

#define SEG_OFF    0x1000
#define SEG_FILESZ 0x2000
#define SEG_MEMSZ  0x3000
#define NOTE_OFF   0x200

struct img {
	uint8_t *p;
	size_t len;
};

/* One PT_LOAD at (paddr) and, with (desc) 4 or 8, a PT_NOTE with Xen's
 * PHYS32_ENTRY = (entry); e_entry is (entry) too. */
static struct img elf_make(bool is64, uint16_t machine, uint64_t paddr, uint64_t entry,
			   unsigned desc)
{
	struct img m = { calloc(1, SEG_OFF + SEG_FILESZ), SEG_OFF + SEG_FILESZ };
	uint8_t *n = m.p + NOTE_OFF;
	unsigned nph = desc ? 2 : 1;

	memcpy(m.p, ELFMAG, SELFMAG);
	m.p[EI_CLASS] = is64 ? ELFCLASS64 : ELFCLASS32;
	m.p[EI_DATA] = ELFDATA2LSB;
	m.p[EI_VERSION] = EV_CURRENT;
	if (is64) {
		Elf64_Ehdr *eh = (Elf64_Ehdr *)m.p;
		Elf64_Phdr *ph = (Elf64_Phdr *)(m.p + sizeof(*eh));

		eh->e_type = ET_EXEC, eh->e_machine = machine, eh->e_version = EV_CURRENT;
		eh->e_entry = entry, eh->e_phoff = sizeof(*eh), eh->e_ehsize = sizeof(*eh);
		eh->e_phentsize = sizeof(*ph), eh->e_phnum = (uint16_t)nph;
		ph[0] = (Elf64_Phdr){ .p_type = PT_LOAD,
				      .p_offset = SEG_OFF,
				      .p_vaddr = paddr,
				      .p_paddr = paddr,
				      .p_filesz = SEG_FILESZ,
				      .p_memsz = SEG_MEMSZ,
				      .p_align = 0x1000 };
		ph[1] = (Elf64_Phdr){ .p_type = PT_NOTE,
				      .p_offset = NOTE_OFF,
				      .p_filesz = 16 + desc,
				      .p_align = 4 };
	} else {
		Elf32_Ehdr *eh = (Elf32_Ehdr *)m.p;
		Elf32_Phdr *ph = (Elf32_Phdr *)(m.p + sizeof(*eh));

		eh->e_type = ET_EXEC, eh->e_machine = machine, eh->e_version = EV_CURRENT;
		eh->e_entry = (uint32_t)entry, eh->e_phoff = sizeof(*eh);
		eh->e_ehsize = sizeof(*eh), eh->e_phentsize = sizeof(*ph);
		eh->e_phnum = (uint16_t)nph;
		ph[0] = (Elf32_Phdr){ .p_type = PT_LOAD,
				      .p_offset = SEG_OFF,
				      .p_vaddr = (uint32_t)paddr,
				      .p_paddr = (uint32_t)paddr,
				      .p_filesz = SEG_FILESZ,
				      .p_memsz = SEG_MEMSZ,
				      .p_align = 0x1000 };
		ph[1] = (Elf32_Phdr){ .p_type = PT_NOTE,
				      .p_offset = NOTE_OFF,
				      .p_filesz = 16 + desc,
				      .p_align = 4 };
	}
	put32(n, 4);        /* namesz */
	put32(n + 4, desc); /* descsz */
	put32(n + 8, 18);   /* XEN_ELFNOTE_PHYS32_ENTRY */
	memcpy(n + 12, "Xen", 4);
	put32(n + 16, (uint32_t)entry);
	for (size_t i = 0; i < SEG_FILESZ; i++)
		m.p[SEG_OFF + i] = (uint8_t)(i * 13 + 5);
	return m;
}

static void check_segment(uint64_t paddr, const struct img *m)
{
	const uint8_t *g = gpa(paddr, SEG_MEMSZ);

	ck_assert(!memcmp(g, m->p + SEG_OFF, SEG_FILESZ));
	for (size_t i = SEG_FILESZ; i < SEG_MEMSZ; i++)
		ck_assert_uint_eq(g[i], 0);
}

struct pvh_info {
	uint32_t magic, version, flags, nr_modules;
	uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
	uint32_t memmap_entries, reserved;
};

static void check_pvh(const struct img *m, bool is64, uint64_t paddr, unsigned desc)
{
	struct boot_info out;
	uint8_t initrd[5000];
	const struct pvh_info *si;
	const uint64_t *mod, *map;

	memset(initrd, 0x77, sizeof(initrd));
	memset(gpa(paddr, SEG_MEMSZ), 0xcc, SEG_MEMSZ);
	cfg.initrd = put_file("initrd", initrd, sizeof(initrd));
	ck_assert_int_eq(load(m->p, m->len, "console=ttyS0 quiet", &out), 0);
	ck_assert_int_eq(out.entry, BOOT_ENTRY_PVH32);
	ck_assert_uint_eq(out.rip, paddr + 0x10);
	ck_assert_uint_eq(out.arg, LAYOUT_PVH_INFO_GPA);
	check_segment(paddr, m);
	si = gpa(LAYOUT_PVH_INFO_GPA, sizeof(*si));
	ck_assert_uint_eq(si->magic, 0x336ec578);
	ck_assert_uint_eq(si->version, 1);
	ck_assert_uint_eq(si->flags, 0);
	ck_assert_uint_eq(si->nr_modules, 1);
	ck_assert_uint_eq(si->cmdline_paddr, LAYOUT_CMDLINE_GPA);
	ck_assert_uint_eq(si->rsdp_paddr, RSDP);
	ck_assert_uint_eq(si->memmap_entries, 3);
	ck_assert_uint_ge(si->modlist_paddr, LAYOUT_PVH_INFO_GPA + sizeof(*si));
	ck_assert_uint_le(si->memmap_paddr + 3 * 24, LAYOUT_PVH_INFO_GPA + 4096);
	mod = gpa(si->modlist_paddr, 32);
	ck_assert_uint_eq(mod[1], sizeof(initrd));
	ck_assert_uint_eq(mod[0] & 0xfff, 0);
	ck_assert_uint_ge(mod[0], paddr + SEG_MEMSZ);
	ck_assert(!memcmp(gpa(mod[0], sizeof(initrd)), initrd, sizeof(initrd)));
	map = gpa(si->memmap_paddr, 3 * 24);
	ck_assert_uint_eq(map[0], 0);
	ck_assert_uint_eq(map[1], LAYOUT_EBDA_GPA);
	ck_assert_uint_eq(map[2] & 0xffffffff, E820_RAM);
	ck_assert_uint_eq(map[3 + 2] & 0xffffffff, E820_RESERVED);
	ck_assert_uint_eq(map[6], 0x100000);
	ck_assert_uint_eq(map[7], RAM - 0x100000);
	ck_assert_str_eq(gpa(LAYOUT_CMDLINE_GPA, 1), "console=ttyS0 quiet");
	(void)is64, (void)desc;
}

START_TEST(test_pvh64)
{
	struct img m = elf_make(true, EM_X86_64, 0x100000, 0x100010, 8);

	check_pvh(&m, true, 0x100000, 8);
	free(m.p);
}
END_TEST

START_TEST(test_pvh32)
{
	struct img m = elf_make(false, EM_386, 0x200000, 0x200010, 4);

	check_pvh(&m, false, 0x200000, 4);
	free(m.p);
}
END_TEST

/* An x86-64 vmlinux without the note boots like Firecracker does it. */
START_TEST(test_vmlinux_direct)
{
	struct img m = elf_make(true, EM_X86_64, VM_PADDR, VM_PADDR + 0x40, 0);
	struct boot_params *zp;
	struct boot_info out;

	ck_assert_int_eq(load(m.p, m.len, "console=ttyS0 quiet", &out), 0);
	ck_assert_int_eq(out.entry, BOOT_ENTRY_LINUX64);
	ck_assert_uint_eq(out.rip, VM_PADDR + 0x40);
	ck_assert_uint_eq(out.arg, LAYOUT_ZERO_PAGE_GPA);
	check_segment(VM_PADDR, &m);
	zp = zero_page();
	check_zp_common(zp);
	ck_assert_uint_eq(zp->hdr.header, 0x53726448);
	ck_assert_uint_eq(zp->hdr.boot_flag, 0xaa55);
	ck_assert_uint_eq(zp->hdr.version, 0x020f);
	ck_assert_uint_eq(zp->acpi_rsdp_addr, RSDP);
	free(m.p);
}
END_TEST

/* Each way of breaking an ELF kernel, with the expected error. */
static const struct {
	int ret;
	const char *msg;
} elf_bad[] = {
	{ -E2BIG, "ELF segment at 0x8000000 (12 KiB) is outside the 64 MiB of RAM" },
	{ -E2BIG, "ELF segment at 0x3fff000 (12 KiB) is outside the 64 MiB of RAM" },
	{ -E2BIG, "ELF segment at 0xffffffffffffefff (12 KiB) is outside the 64 MiB of RAM" },
	{ -ENOEXEC, "ELF segment at 0x1000 is below 1 MiB" },
	{ -ENOEXEC, "corrupt ELF segment at 0x100000" },
	{ -ENOEXEC, "corrupt ELF segment at 0x100000" },
	{ -ENOEXEC, "corrupt ELF segment at 0x100000" },
	{ -ENOEXEC, "ELF entry point 0x900000 is not in a loaded segment" },
	{ -ENOEXEC, "corrupt ELF note" },
	{ -ENOEXEC, "corrupt ELF program headers: beyond the end of the file" },
	{ -ENOEXEC, "not an x86 ELF file" },
	{ -ENOEXEC, "not an x86 ELF file" },
	{ -ENOEXEC, "corrupt ELF note" },
	{ -ENOEXEC, "corrupt ELF header: truncated" },
	{ -ENOEXEC, "corrupt ELF program headers: beyond the end of the file" },
	{ -ENOEXEC, "corrupt ELF program headers: unexpected entry size" },
	{ -ENOEXEC, "corrupt ELF program headers: too many" },
	{ -ENOEXEC, "ELF file is not an executable" },
	{ -ENOEXEC, "corrupt ELF file" },
	{ -ENOEXEC, "corrupt ELF note" },
	{ -ENOEXEC, "corrupt ELF note" },
	{ -ENOEXEC, "corrupt ELF note" },
	{ -ENOEXEC, "corrupt ELF header: truncated" },
};

START_TEST(test_elf_bad)
{
	struct img m = elf_make(true, EM_X86_64, 0x100000, 0x100010, 8);
	Elf64_Ehdr *eh = (Elf64_Ehdr *)m.p;
	Elf64_Phdr *ph = (Elf64_Phdr *)(m.p + sizeof(*eh));
	char msg[256];

	switch (_i) {
	case 0:
		ph[0].p_paddr = 128 * MIB;
		break; /* outside RAM */
	case 1:
		ph[0].p_paddr = RAM - 0x1000;
		break; /* crosses the end */
	case 2:
		ph[0].p_paddr = ~0ULL - 0x1000;
		break;
	case 3:
		ph[0].p_paddr = 0x1000;
		break; /* below 1 MiB */
	case 4:
		ph[0].p_offset = m.len - 0x100;
		break; /* beyond the file */
	case 5:
		ph[0].p_offset = ~0ULL - 0x10;
		break;
	case 6:
		ph[0].p_filesz = SEG_MEMSZ + 1;
		break;
	case 7:
		put32(m.p + NOTE_OFF + 16, 0x900000);
		break; /* entry not loaded */
	case 8:
		put32(m.p + NOTE_OFF + 4, 6);
		break; /* odd descsz */
	case 9:
		eh->e_phoff = 1ULL << 40;
		break;
	case 10:
		eh->e_machine = EM_AARCH64;
		break;
	case 11:
		m.p[EI_DATA] = ELFDATA2MSB;
		break;
	case 12:
		ph[1].p_filesz = 1 << 20;
		break; /* note beyond the file */
	case 13:
		m.len = 40;
		break; /* truncated header */
	case 14:
		m.len = sizeof(*eh) + sizeof(*ph) + 8;
		break; /* program headers cut */
	case 15:
		eh->e_phentsize = sizeof(*ph) / 2;
		break;
	case 16:
		eh->e_phnum = 5000;
		break;
	case 17:
		eh->e_type = ET_REL;
		break;
	case 18:
		m.p[EI_CLASS] = 7;
		break;
	case 19:
		ph[1].p_offset = m.len + 0x10;
		break; /* note outside the file */
	case 20:
		ph[1].p_offset = ~0ULL - 0x10;
		break;
	case 21:
		put32(m.p + NOTE_OFF + 20, 1);
		break; /* entry above 4 GiB */
	case 22:
		m.len = sizeof(Elf32_Ehdr) - 1, m.p[EI_CLASS] = ELFCLASS32;
		break;
	}
	ck_assert_int_eq(load_err(m.p, m.len, msg, sizeof(msg)), elf_bad[_i].ret);
	ck_assert_str_eq(msg, elf_bad[_i].msg);
	free(m.p);
}
END_TEST

/* The PVH note found through a SHT_NOTE section when no PT_NOTE has it;
 * section headers out of the file are no sections. */
START_TEST(test_pvh_section_note)
{
	struct img m = elf_make(true, EM_X86_64, 0x100000, 0x100010, 8);
	Elf64_Ehdr *eh = (Elf64_Ehdr *)m.p;
	Elf64_Shdr *sh = (Elf64_Shdr *)(m.p + 0x400);
	struct boot_info out;

	eh->e_phnum = 1;
	eh->e_shoff = 0x400, eh->e_shnum = 2, eh->e_shentsize = sizeof(*sh);
	sh[1] = (Elf64_Shdr){ .sh_type = SHT_NOTE,
			      .sh_offset = NOTE_OFF,
			      .sh_size = 24,
			      .sh_addralign = 4 };
	ck_assert_int_eq(load(m.p, m.len, "x", &out), 0);
	ck_assert_int_eq(out.entry, BOOT_ENTRY_PVH32);
	ck_assert_uint_eq(out.rip, 0x100010);
	/* A note section outside the file is skipped: a plain vmlinux then. */
	sh[1].sh_offset = m.len;
	ck_assert_int_eq(load(m.p, m.len, "x", &out), 0);
	ck_assert_int_eq(out.entry, BOOT_ENTRY_LINUX64);
	sh[1].sh_offset = NOTE_OFF;
	eh->e_shoff = m.len - sizeof(*sh);
	ck_assert_int_eq(load(m.p, m.len, "x", &out), 0);
	ck_assert_int_eq(out.entry, BOOT_ENTRY_LINUX64);
	free(m.p);
}
END_TEST

/* Only the first 64 KiB of a note block are searched. */
START_TEST(test_pvh_big_note)
{
	struct img m = elf_make(true, EM_X86_64, 0x100000, 0x100010, 8);
	Elf64_Phdr *ph;
	size_t off = m.len, at = _i ? 12 * 6000 : 12 * 5000; /* after empty notes */
	struct boot_info out;

	m.len += 80 << 10;
	m.p = realloc(m.p, m.len);
	memset(m.p + off, 0, m.len - off);
	memcpy(m.p + off + at, m.p + NOTE_OFF, 24);
	ph = (Elf64_Phdr *)(m.p + sizeof(Elf64_Ehdr));
	ph[1].p_offset = off, ph[1].p_filesz = m.len - off;
	ck_assert_int_eq(load(m.p, m.len, "x", &out), 0);
	ck_assert_int_eq(out.entry, (_i ? BOOT_ENTRY_LINUX64 : BOOT_ENTRY_PVH32));
	free(m.p);
}
END_TEST

/* A kernel from a pipe is held in memory and parsed there. */
START_TEST(test_elf_pipe)
{
	struct img m = elf_make(true, EM_X86_64, 0x100000, 0x100010, 8);
	struct boot_info out;
	char path[160];
	int status;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/fifo", tmpdir);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (!pid) {
		int fd = open(path, O_WRONLY);

		_exit(fd >= 0 && write(fd, m.p, m.len) == (ssize_t)m.len ? 0 : 1);
	}
	cfg.kernel = path;
	ck_assert_int_eq(boot_load(&vm, "x", RSDP, &out), 0);
	ck_assert_int_eq(out.entry, BOOT_ENTRY_PVH32);
	ck_assert_uint_eq(out.rip, 0x100010);
	check_segment(0x100000, &m);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_int_eq(status, 0);
	free(m.p);
}
END_TEST

START_TEST(test_elf32_no_note)
{
	struct img m = elf_make(false, EM_386, 0x100000, 0x100010, 0);
	struct boot_info out;

	ck_assert_int_eq(load(m.p, m.len, "x", &out), -ENOEXEC);
	free(m.p);
}
END_TEST

/* ---- bzImage payload unpacked on the host ---- */

static struct img lz4_legacy(const struct img *in)
{
	struct img z = { malloc(16 + LZ4_compressBound((int)in->len)), 8 };
	int c;

	put32(z.p, 0x184c2102);
	c = LZ4_compress_default((const char *)in->p, (char *)z.p + 8, (int)in->len,
				 LZ4_compressBound((int)in->len));
	ck_assert_int_gt(c, 0);
	put32(z.p + 4, (uint32_t)c);
	z.len += (size_t)c;
	put32(z.p + z.len, (uint32_t)in->len); /* size_append */
	z.len += 4;
	return z;
}

static struct img gzip_payload(const struct img *in)
{
	struct img z = { malloc(in->len + 1024), 0 };
	z_stream zs = { 0 };

	ck_assert_int_eq(deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY),
			 Z_OK);
	zs.next_in = in->p, zs.avail_in = (uInt)in->len;
	zs.next_out = z.p, zs.avail_out = (uInt)(in->len + 1000);
	ck_assert_int_eq(deflate(&zs, Z_FINISH), Z_STREAM_END);
	z.len = zs.total_out;
	deflateEnd(&zs);
	put32(z.p + z.len, (uint32_t)in->len);
	z.len += 4;
	return z;
}

static void check_unpacked(const struct img *vml, const struct img *payload, int want)
{
	struct bz b = bz_make(0x020f, payload->p, payload->len);
	struct boot_info out;

	cfg.kernel_unpack = true;
	memset(gpa(VM_PADDR, SEG_MEMSZ), 0xcc, SEG_MEMSZ);
	ck_assert_int_eq(load(b.p, b.len, "console=ttyS0 quiet", &out), want);
	if (!want) {
		ck_assert_int_eq(out.entry, BOOT_ENTRY_LINUX64);
		ck_assert_uint_eq(out.rip, VM_PADDR + 0x40);
		ck_assert_uint_eq(out.arg, LAYOUT_ZERO_PAGE_GPA);
		check_segment(VM_PADDR, vml);
		check_zp_common(zero_page());
		ck_assert_uint_eq(zero_page()->hdr.init_size, 4 * MIB);
		ck_assert_uint_eq(zero_page()->acpi_rsdp_addr, RSDP);
		/* Without the flag the same image boots through its decompressor. */
		cfg.kernel_unpack = false;
		ck_assert_int_eq(load(b.p, b.len, "console=ttyS0 quiet", &out), 0);
		ck_assert_uint_eq(out.rip, LAYOUT_BZIMAGE_GPA + 0x200);
	}
	free(b.p);
}

START_TEST(test_unpack)
{
	struct img vml = elf_make(true, EM_X86_64, VM_PADDR, VM_PADDR + 0x40, 0);
	struct img z = _i ? gzip_payload(&vml) : lz4_legacy(&vml);

	check_unpacked(&vml, &z, 0);
	/* Wrong size_append: the payload is not what the build wrote. */
	put32(z.p + z.len - 4, (uint32_t)vml.len + 1);
	check_unpacked(&vml, &z, -ENOEXEC);
	put32(z.p + z.len - 4, (uint32_t)vml.len);
	/* Damaged compressed data. */
	if (_i)
		z.p[z.len / 2] ^= 0xff;
	else
		put32(z.p + 4, 0x7fffff);
	check_unpacked(&vml, &z, -ENOEXEC);
	free(vml.p);
	free(z.p);
}
END_TEST

/* The real lz4 -l output, as in a KERNEL_LZ4 bzImage. */
START_TEST(test_unpack_lz4_tool)
{
	struct img vml = elf_make(true, EM_X86_64, VM_PADDR, VM_PADDR + 0x40, 0), z;
	const char *in = put_file("vmlinux", vml.p, vml.len);
	char cmd[512], out[160];
	size_t len;

	snprintf(out, sizeof(out), "%s/vmlinux.lz4", tmpdir);
	snprintf(cmd, sizeof(cmd), "lz4 -l -9 -q -c < %s > %s 2>/dev/null", in, out);
	if (system(cmd) != 0) {
		fprintf(stderr, "check_boot_load: lz4 not installed, skipping\n");
		free(vml.p);
		return;
	}
	z.p = get_file(out, 4, &len);
	put32(z.p + len, (uint32_t)vml.len);
	z.len = len + 4;
	check_unpacked(&vml, &z, 0);
	free(z.p);
	free(vml.p);
}
END_TEST

/* An uncompressed vmlinux payload is read from where it lies in the file. */
START_TEST(test_unpack_raw)
{
	struct img vml = elf_make(true, EM_X86_64, VM_PADDR, VM_PADDR + 0x40, 0);
	struct img cut = { vml.p, sizeof(Elf64_Ehdr) + 8 }; /* program headers cut */

	check_unpacked(&vml, &vml, 0);
	check_unpacked(&vml, &cut, -ENOEXEC);
	free(vml.p);
}
END_TEST

/* Unknown payload format: the guest's decompressor will do it. */
START_TEST(test_unpack_fallback)
{
	static const uint8_t bz2[] = "BZh91AY&SY..........";
	struct bz b = bz_make(0x020f, bz2, sizeof(bz2));
	struct boot_info out;

	cfg.kernel_unpack = true;
	ck_assert_int_eq(load(b.p, b.len, "x", &out), 0);
	ck_assert_uint_eq(out.rip, LAYOUT_BZIMAGE_GPA + 0x200);
	b.hdr->payload_offset = PM_LEN + 1000; /* outside the image */
	ck_assert_int_eq(load(b.p, b.len, "x", &out), -ENOEXEC);
	free(b.p);
}
END_TEST

/* Random damage to every kind of image: errors are fine, crashes not. */
START_TEST(test_fuzz)
{
	struct img vml = elf_make(true, EM_X86_64, VM_PADDR, VM_PADDR + 0x40, 0);
	struct img pvh = elf_make(true, EM_X86_64, 0x100000, 0x100010, 8);
	struct img z = lz4_legacy(&vml);
	struct bz b = bz_make(0x020f, z.p, z.len);
	const struct img imgs[3] = { { b.p, b.len }, pvh, vml };
	struct boot_info out;

	srand(42);
	cfg.kernel_unpack = true;
	log_threshold = -1; /* hundreds of expected errors */
	for (int iter = 0; iter < 600; iter++) {
		const struct img *src = &imgs[iter % 3];
		uint8_t *p = malloc(src->len);
		size_t len = src->len;
		int ret;

		memcpy(p, src->p, src->len);
		for (int k = 0; k < 1 + iter % 5; k++) {
			size_t at = (size_t)rand() % (iter % 2 ? 0x300 : len);

			p[at] = (uint8_t)rand();
		}
		if (iter % 7 == 0)
			len = (size_t)rand() % len;
		ret = load(p, len, "x", &out);
		ck_assert_msg(ret == 0 || ret == -ENOEXEC || ret == -E2BIG, "ret %d", ret);
		free(p);
	}
	free(vml.p), free(pvh.p), free(z.p), free(b.p);
}
END_TEST

/* ---- a vmlinux of several segments streamed into place ---- */

#define BIG_FILE  (10 * MIB) /* two 8 MiB lz4 legacy blocks */
#define BIG_A_OFF 0x1000ULL  /* 3 MiB at 16 MiB */
#define BIG_A_LEN (3 * MIB)
#define BIG_B_OFF (9 * MIB)                        /* 1 MiB of file, 2 MiB in RAM, at 20 MiB */
#define BIG_C_OFF (BIG_A_OFF + BIG_A_LEN - 0x2000) /* shares 8 KiB with A, at 24 MiB */

/* Segments separated by zeros and the second block; C reuses A's last file
 * bytes; B has a bss. Data compressible but not trivial. */
static struct img big_vmlinux(void)
{
	struct img m = { calloc(1, BIG_FILE), BIG_FILE };
	Elf64_Ehdr *eh = (Elf64_Ehdr *)m.p;
	Elf64_Phdr *ph = (Elf64_Phdr *)(m.p + sizeof(*eh));

	memcpy(m.p, ELFMAG, SELFMAG);
	m.p[EI_CLASS] = ELFCLASS64, m.p[EI_DATA] = ELFDATA2LSB, m.p[EI_VERSION] = EV_CURRENT;
	eh->e_type = ET_EXEC, eh->e_machine = EM_X86_64, eh->e_version = EV_CURRENT;
	eh->e_entry = VM_PADDR + 0x40, eh->e_phoff = sizeof(*eh), eh->e_ehsize = sizeof(*eh);
	eh->e_phentsize = sizeof(*ph), eh->e_phnum = 3;
	ph[0] = (Elf64_Phdr){ .p_type = PT_LOAD,
			      .p_offset = BIG_A_OFF,
			      .p_paddr = VM_PADDR,
			      .p_filesz = BIG_A_LEN,
			      .p_memsz = BIG_A_LEN };
	ph[1] = (Elf64_Phdr){ .p_type = PT_LOAD,
			      .p_offset = BIG_B_OFF,
			      .p_paddr = VM_PADDR + 4 * MIB,
			      .p_filesz = MIB,
			      .p_memsz = 2 * MIB };
	ph[2] = (Elf64_Phdr){ .p_type = PT_LOAD,
			      .p_offset = BIG_C_OFF,
			      .p_paddr = VM_PADDR + 8 * MIB,
			      .p_filesz = 0x3000,
			      .p_memsz = 0x3000 };
	srand(7);
	for (size_t i = 0; i < BIG_A_LEN; i++)
		m.p[BIG_A_OFF + i] = (uint8_t)((i / 64) % 7 == 0 ? (size_t)rand() : i % 251);
	for (size_t i = 0; i < MIB; i++)
		m.p[BIG_B_OFF + i] = (uint8_t)((i % 3000) < 7 ? rand() : 0x90);
	return m;
}

/* The lz4 legacy format as lz4 -l and Linux write it: 8 MiB blocks. */
static struct img lz4_legacy_blocks(const struct img *in)
{
	const size_t blk = 8 * MIB;
	struct img z = { malloc(8 + (in->len / blk + 1) * (4 + LZ4_compressBound(blk))), 4 };

	put32(z.p, 0x184c2102);
	for (size_t off = 0; off < in->len; off += blk) {
		int n = (int)(in->len - off < blk ? in->len - off : blk);
		int c = LZ4_compress_default((const char *)in->p + off, (char *)z.p + z.len + 4, n,
					     LZ4_compressBound(n));

		ck_assert_int_gt(c, 0);
		put32(z.p + z.len, (uint32_t)c);
		z.len += 4 + (size_t)c;
	}
	put32(z.p + z.len, (uint32_t)in->len);
	z.len += 4;
	return z;
}

static void check_big(const struct img *m)
{
	const uint8_t *g;

	ck_assert(!memcmp(gpa(VM_PADDR, BIG_A_LEN), m->p + BIG_A_OFF, BIG_A_LEN));
	g = gpa(VM_PADDR + 4 * MIB, 2 * MIB);
	ck_assert(!memcmp(g, m->p + BIG_B_OFF, MIB));
	for (size_t i = MIB; i < 2 * MIB; i++)
		ck_assert_uint_eq(g[i], 0);
	ck_assert(!memcmp(gpa(VM_PADDR + 8 * MIB, 0x3000), m->p + BIG_C_OFF, 0x3000));
}

START_TEST(test_unpack_segments)
{
	struct img vml = big_vmlinux();
	struct img z = _i ? gzip_payload(&vml) : lz4_legacy_blocks(&vml);
	struct bz b;
	struct boot_info out;

	b = bz_make(0x020f, z.p, z.len);
	b.hdr->init_size = 12 * MIB;
	cfg.kernel_unpack = true;
	memset(gpa(VM_PADDR, 10 * MIB), 0xcc, 10 * MIB);
	ck_assert_int_eq(load(b.p, b.len, "x", &out), 0);
	ck_assert_uint_eq(out.rip, VM_PADDR + 0x40);
	check_big(&vml);
	/* Nothing between the segments was written. */
	ck_assert_uint_eq(*(uint8_t *)gpa(VM_PADDR + 3 * MIB, 1), 0xcc);
	ck_assert_uint_eq(*(uint8_t *)gpa(VM_PADDR + 7 * MIB, 1), 0xcc);
	/* The same vmlinux read from a file directly (no PVH note). */
	memset(gpa(VM_PADDR, 10 * MIB), 0xcc, 10 * MIB);
	ck_assert_int_eq(load(vml.p, vml.len, "x", &out), 0);
	check_big(&vml);
	/* Compressed data cut in the middle (the size trailer kept), then a
	 * truncated file. */
	free(b.p);
	memcpy(z.p + z.len / 2, z.p + z.len - 4, 4);
	b = bz_make(0x020f, z.p, z.len / 2 + 4);
	b.hdr->init_size = 12 * MIB;
	ck_assert_int_eq(load(b.p, b.len, "x", &out), -ENOEXEC);
	ck_assert_int_eq(load(vml.p, BIG_B_OFF + 100, "x", &out), -ENOEXEC);
	free(b.p), free(z.p), free(vml.p);
}
END_TEST

/* A compressed initrd is unpacked above the kernel, moved to the top of
 * RAM, and its scratch pages are given back. */
START_TEST(test_initrd_scratch)
{
	struct bz b = bz_make(0x020f, NULL, 0);
	struct img rd = { malloc(6 * MIB), 6 * MIB }, z;
	struct boot_params *zp;
	struct boot_info out;
	unsigned char *vec;
	uint64_t at, scratch = VM_PADDR + 4 * MIB; /* end of init_size */
	size_t pages = (RAM - scratch) / 4096, resident = 0;

	for (size_t i = 0; i < rd.len; i++)
		rd.p[i] = (uint8_t)((i % 5000) < 11 ? i * 31 : i / 4096);
	z = _i ? gzip_payload(&rd) : lz4_legacy_blocks(&rd);
	z.len -= 4; /* no size_append on an initrd */
	cfg.initrd = put_file("initrd.z", z.p, z.len);
	ck_assert_int_eq(load(b.p, b.len, "x", &out), 0);
	zp = zero_page();
	at = zp->hdr.ramdisk_image;
	ck_assert_uint_eq(zp->hdr.ramdisk_size, rd.len);
	ck_assert_uint_eq(at, RAM - rd.len);
	ck_assert(!memcmp(gpa(at, rd.len), rd.p, rd.len));
	vec = malloc(pages);
	ck_assert_int_eq(mincore(gpa(scratch, 1), (at - scratch), vec), 0);
	for (size_t i = 0; i < (at - scratch) / 4096; i++)
		resident += vec[i] & 1;
	ck_assert_uint_eq(resident, 0);
	/* 30 MiB fits in half of RAM but not above the kernel: the count says so. */
	free(rd.p), free(z.p);
	rd.len = 30 * MIB;
	rd.p = calloc(1, rd.len);
	z = gzip_payload(&rd);
	cfg.initrd = put_file("initrd.z", z.p, z.len - 4);
	cfg.initrd = put_file("initrd.z", z.p, z.len - 4);
	b.hdr->init_size = 40 * MIB;
	ck_assert_int_eq(load(b.p, b.len, "x", &out), -E2BIG);
	free(vec), free(rd.p), free(z.p), free(b.p);
}
END_TEST

static void elf_tests(TCase *tc)
{
	tcase_add_test(tc, test_pvh64);
	tcase_add_test(tc, test_pvh32);
	tcase_add_test(tc, test_vmlinux_direct);
	tcase_add_loop_test(tc, test_elf_bad, 0, sizeof(elf_bad) / sizeof(elf_bad[0]));
	tcase_add_test(tc, test_elf32_no_note);
	tcase_add_test(tc, test_pvh_section_note);
	tcase_add_loop_test(tc, test_pvh_big_note, 0, 2);
	tcase_add_test(tc, test_elf_pipe);
	tcase_add_loop_test(tc, test_unpack, 0, 2);
	tcase_add_test(tc, test_unpack_lz4_tool);
	tcase_add_test(tc, test_unpack_raw);
	tcase_add_test(tc, test_unpack_fallback);
	tcase_add_test(tc, test_fuzz);
	tcase_add_loop_test(tc, test_unpack_segments, 0, 2);
	tcase_add_loop_test(tc, test_initrd_scratch, 0, 2);
}

static Suite *unit_suite(void)
{
	Suite *s = suite_create("boot_load");
	TCase *tb = tcase_create("bzimage");
	TCase *te = tcase_create("elf");

	tcase_add_checked_fixture(tb, setup, teardown);
	tcase_set_timeout(tb, 30);
	tcase_add_test(tb, test_bz_good);
	tcase_add_test(tb, test_bz_old_rsdp);
	tcase_add_loop_test(tb, test_bz_bad, 0, 9);
	tcase_add_test(tb, test_bz_too_big);
	tcase_add_test(tb, test_cmdline_too_long);
	tcase_add_test(tb, test_initrd_errors);
	tcase_add_test(tb, test_initrd_gzip);
	suite_add_tcase(s, tb);
	tcase_add_checked_fixture(te, setup, teardown);
	tcase_set_timeout(te, 30);
	elf_tests(te);
	suite_add_tcase(s, te);
	return s;
}

#include "unit.h"
