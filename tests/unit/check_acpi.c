/* Unit tests for the ACPI tables and the AML encoder. White-box: includes
 * src/boot/acpi.c to reach the static encoder helpers; acpi.o from
 * libkvisor.a is then not linked in (nothing else here needs it). */
#include "../../src/boot/acpi.c"

#include <sys/mman.h>

#include "unit.h"

#define TEST_RAM_SIZE (2ULL << 20)

static struct guest_mem test_mem;

static void ram_setup(void)
{
	void *p = mmap(NULL, TEST_RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		       0);

	ck_assert_ptr_ne(p, MAP_FAILED);
	memset(&test_mem, 0, sizeof(test_mem));
	test_mem.regions[0].gpa = 0;
	test_mem.regions[0].size = TEST_RAM_SIZE;
	test_mem.regions[0].hva = p;
	test_mem.nr_regions = 1;
	test_mem.ram_size = TEST_RAM_SIZE;
}

static void ram_teardown(void)
{
	munmap(test_mem.regions[0].hva, TEST_RAM_SIZE);
}

static uint64_t rd(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s += *p++;
	return s;
}

/* Host pointer to a guest range that must lie inside the ACPI window. */
static const uint8_t *win_ptr(uint64_t gpa, uint64_t len)
{
	ck_assert_uint_ge(gpa, LAYOUT_ACPI_GPA);
	ck_assert_uint_le(gpa + len, LAYOUT_ACPI_GPA + LAYOUT_ACPI_SIZE);
	return test_mem.regions[0].hva + gpa;
}

/* Check a table header at (gpa) and return the table. */
static const uint8_t *check_table(uint64_t gpa, const char *sig, uint8_t rev)
{
	const uint8_t *t = win_ptr(gpa, ACPI_HDR_LEN);
	uint32_t len = (uint32_t)rd(t + 4, 4);

	ck_assert_uint_eq(gpa % 8, 0);
	ck_assert_mem_eq(t, sig, 4);
	ck_assert_uint_ge(len, ACPI_HDR_LEN);
	win_ptr(gpa, len);
	ck_assert_uint_eq(t[8], rev);
	ck_assert_uint_eq(sum(t, len), 0);
	ck_assert_mem_eq(t + 10, "KVISOR", 6);
	ck_assert_mem_eq(t + 16, "KVISORVM", 8);
	ck_assert_mem_eq(t + 28, "KVSR", 4);
	return t;
}

static const uint8_t *check_rsdp(uint64_t rsdp)
{
	const uint8_t *p = win_ptr(rsdp, ACPI_RSDP_LEN);

	ck_assert_uint_eq(rsdp, LAYOUT_ACPI_GPA);
	ck_assert_uint_eq(rsdp % 16, 0);
	ck_assert_mem_eq(p, "RSD PTR ", 8);
	ck_assert_uint_eq(sum(p, 20), 0);
	ck_assert_uint_eq(sum(p, 36), 0);
	ck_assert_mem_eq(p + 9, "KVISOR", 6);
	ck_assert_uint_eq(p[15], 2);
	ck_assert_uint_eq(rd(p + 16, 4), 0); /* no RSDT */
	ck_assert_uint_eq(rd(p + 20, 4), 36);
	ck_assert_uint_eq(rd(p + 33, 3), 0); /* reserved */
	return check_table(rd(p + 24, 8), "XSDT", 1);
}

/* The XSDT entry with signature (sig), checked; NULL when absent. */
static const uint8_t *find_table(const uint8_t *xsdt, const char *sig, uint8_t rev)
{
	uint32_t len = (uint32_t)rd(xsdt + 4, 4);

	for (uint32_t off = ACPI_HDR_LEN; off < len; off += 8) {
		uint64_t gpa = rd(xsdt + off, 8);

		if (!memcmp(win_ptr(gpa, 4), sig, 4))
			return check_table(gpa, sig, rev);
	}
	return NULL;
}

static void check_gas_io8(const uint8_t *g, uint16_t port)
{
	static const uint8_t head[4] = { 1, 8, 0, 1 }; /* SystemIO, 8 bits, byte access */

	ck_assert_mem_eq(g, head, 4);
	ck_assert_uint_eq(rd(g + 4, 8), port);
}

static const uint8_t *find_bytes(const uint8_t *hay, size_t n, const void *needle, size_t m)
{
	return memmem(hay, n, needle, m);
}

static const struct acpi_config build_cases[] = {
	{ .nr_cpus = 1 },
	{ .nr_cpus = 2 },
	{ .nr_cpus = 8 },
	{ .nr_cpus = 1, .pci_ecam = true, .ecam_last_bus = 0 },
	{ .nr_cpus = 2, .pci_ecam = true, .ecam_last_bus = 15 },
	{ .nr_cpus = 8, .pci_ecam = true, .ecam_last_bus = 3 },
	{ .nr_cpus = 255, .pci_ecam = true, .ecam_last_bus = 15 },
};

static void check_fadt(const uint8_t *f, uint64_t *dsdt)
{
	uint32_t flags = (uint32_t)rd(f + 112, 4);
	uint16_t boot = (uint16_t)rd(f + 109, 2);

	/* Offsets from Linux include/acpi/actbl.h, struct acpi_table_fadt. */
	ck_assert_uint_eq(rd(f + 4, 4), 276);
	ck_assert_uint_eq(f[131], ACPI_FADT_MINOR);
	ck_assert_uint_eq(flags & (1u << 20), 1u << 20); /* HW_REDUCED_ACPI */
	ck_assert_uint_eq(flags & (1u << 10), 1u << 10); /* RESET_REG_SUP */
	ck_assert_uint_eq(boot & (1u << 5), 1u << 5);    /* CMOS RTC not present */
	ck_assert_uint_eq(boot & (1u << 2), 1u << 2);    /* VGA not present */
	ck_assert_uint_eq(boot & (1u << 1), 0);          /* no 8042 */
	ck_assert_uint_eq(boot & (1u << 3), 0);          /* MSI supported */
	ck_assert_uint_eq(rd(f + 46, 2), LAYOUT_ACPI_SCI_IRQ);
	ck_assert_uint_eq(rd(f + 36, 4), 0);  /* FACS */
	ck_assert_uint_eq(rd(f + 40, 4), 0);  /* DSDT: X_DSDT is used */
	ck_assert_uint_eq(rd(f + 132, 8), 0); /* X_FACS */
	check_gas_io8(f + 116, LAYOUT_ACPI_RESET);
	ck_assert_uint_eq(f[128], LAYOUT_ACPI_RESET_VAL);
	check_gas_io8(f + 244, LAYOUT_ACPI_SLEEP_CTL);
	check_gas_io8(f + 256, LAYOUT_ACPI_SLEEP_STS);
	for (unsigned off = 148; off < 244; off++) /* no X_PM1/PM2/PM_TMR/GPE blocks */
		ck_assert_uint_eq(f[off], 0);
	ck_assert_mem_eq(f + 268, "KVISOR  ", 8);
	*dsdt = rd(f + 140, 8);
}

static void check_madt(const uint8_t *m, unsigned nr_cpus)
{
	uint32_t len = (uint32_t)rd(m + 4, 4);
	unsigned lapics = 0, ioapics = 0, isos = 0, nmis = 0;
	uint32_t off = 44;

	ck_assert_uint_eq(rd(m + 36, 4), LAYOUT_LAPIC_GPA);
	ck_assert_uint_eq(rd(m + 40, 4), 0);
	while (off < len) {
		const uint8_t *e = m + off;

		ck_assert_uint_ge(e[1], 2);
		ck_assert_uint_le(off + e[1], len);
		switch (e[0]) {
		case 0:
			ck_assert_uint_eq(e[1], 8);
			ck_assert_uint_eq(e[2], lapics); /* UID */
			ck_assert_uint_eq(e[3], lapics); /* APIC ID */
			ck_assert_uint_eq(rd(e + 4, 4), 1);
			lapics++;
			break;
		case 1:
			ck_assert_uint_eq(e[1], 12);
			ck_assert_uint_eq(rd(e + 4, 4), LAYOUT_IOAPIC_GPA);
			ck_assert_uint_eq(rd(e + 8, 4), 0);
			ioapics++;
			break;
		case 2:
			ck_assert_uint_eq(e[1], 10);
			ck_assert_uint_eq(e[2], 0);
			ck_assert_uint_eq(e[3], LAYOUT_ACPI_SCI_IRQ); /* none for IRQ0 */
			ck_assert_uint_eq(rd(e + 4, 4), LAYOUT_ACPI_SCI_IRQ);
			ck_assert_uint_eq(rd(e + 8, 2), 0x000d); /* level, active high */
			isos++;
			break;
		case 4:
			ck_assert_uint_eq(e[1], 6);
			ck_assert_uint_eq(e[2], 0xff);
			ck_assert_uint_eq(e[5], 1); /* LINT1 */
			nmis++;
			break;
		default:
			ck_abort_msg("unexpected MADT entry type %u", e[0]);
		}
		off += e[1];
	}
	ck_assert_uint_eq(off, len);
	ck_assert_uint_eq(lapics, nr_cpus);
	ck_assert_uint_eq(ioapics, 1);
	ck_assert_uint_eq(isos, 1);
	ck_assert_uint_eq(nmis, 1);
}

static void check_mcfg(const uint8_t *m, unsigned last_bus)
{
	ck_assert_uint_eq(rd(m + 4, 4), 60);
	ck_assert_uint_eq(rd(m + 36, 8), 0);
	ck_assert_uint_eq(rd(m + 44, 8), LAYOUT_PCI_ECAM_GPA);
	ck_assert_uint_eq(rd(m + 52, 2), 0);
	ck_assert_uint_eq(m[54], 0);
	ck_assert_uint_eq(m[55], last_bus);
}

static void check_dsdt(const uint8_t *d, const struct acpi_config *cfg)
{
	static const uint8_t s5[] = { 0x08, '_',
				      'S',  '5',
				      '_',  0x12,
				      0x08, 0x04,
				      0x0a, LAYOUT_ACPI_SLP_TYP_S5,
				      0x0a, LAYOUT_ACPI_SLP_TYP_S5,
				      0x00, 0x00 };
	static const uint8_t hid_pci[] = { 0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x08 };
	static const uint8_t cid_pci[] = { 0x08, '_', 'C', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x03 };
	static const uint8_t hid_res[] = { 0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0c, 0x02 };
	static const uint8_t com1[] = { 0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01,
					0x08, 0x22, 0x10, 0x00, 0x79, 0x00 };
	uint32_t len = (uint32_t)rd(d + 4, 4);
	uint8_t bus[16] = { 0x88, 0x0d, 0x00, 0x02, 0x0c, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	uint8_t ecam[12] = { 0x86, 0x09, 0x00, 0x01 };

	ck_assert_ptr_nonnull(find_bytes(d + 36, len - 36, s5, sizeof(s5)));
	ck_assert_ptr_nonnull(find_bytes(d + 36, len - 36, com1, sizeof(com1)));
	bus[10] = (uint8_t)cfg->ecam_last_bus;
	bus[14] = (uint8_t)(cfg->ecam_last_bus + 1);
	acpi_put_le(ecam + 4, LAYOUT_PCI_ECAM_GPA, 4);
	acpi_put_le(ecam + 8, (cfg->ecam_last_bus + 1) << 20, 4);
	if (!cfg->pci_ecam) {
		ck_assert_ptr_null(find_bytes(d, len, "PCI0", 4));
		ck_assert_ptr_null(find_bytes(d, len, hid_res, sizeof(hid_res)));
		return;
	}
	ck_assert_ptr_nonnull(find_bytes(d, len, "PCI0", 4));
	ck_assert_ptr_nonnull(find_bytes(d, len, hid_pci, sizeof(hid_pci)));
	ck_assert_ptr_nonnull(find_bytes(d, len, cid_pci, sizeof(cid_pci)));
	ck_assert_ptr_nonnull(find_bytes(d, len, hid_res, sizeof(hid_res)));
	ck_assert_ptr_nonnull(find_bytes(d, len, bus, sizeof(bus)));
	ck_assert_ptr_nonnull(find_bytes(d, len, ecam, sizeof(ecam)));
}

START_TEST(test_build)
{
	const struct acpi_config *cfg = &build_cases[_i];
	const uint8_t *xsdt, *fadt, *madt, *mcfg, *dsdt;
	uint64_t rsdp = 0, dsdt_gpa;

	ck_assert_int_eq(acpi_build(&test_mem, cfg, &rsdp), 0);
	xsdt = check_rsdp(rsdp);
	ck_assert_uint_eq(rd(xsdt + 4, 4), 36 + 8 * (cfg->pci_ecam ? 3 : 2));
	fadt = find_table(xsdt, "FACP", 6);
	madt = find_table(xsdt, "APIC", 5);
	mcfg = find_table(xsdt, "MCFG", 1);
	ck_assert_ptr_nonnull(fadt);
	ck_assert_ptr_nonnull(madt);
	ck_assert_int_eq(mcfg != NULL, cfg->pci_ecam);
	ck_assert_ptr_null(find_table(xsdt, "DSDT", 2)); /* reached via the FADT only */
	check_fadt(fadt, &dsdt_gpa);
	dsdt = check_table(dsdt_gpa, "DSDT", 2);
	check_dsdt(dsdt, cfg);
	check_madt(madt, cfg->nr_cpus);
	if (mcfg)
		check_mcfg(mcfg, cfg->ecam_last_bus);
}
END_TEST

/* Offsets in the ACPI 6.5 FADT and Linux's struct acpi_table_fadt. */
START_TEST(test_fadt_offsets)
{
	ck_assert_uint_eq(ACPI_FADT_SCI_INT, 46);
	ck_assert_uint_eq(ACPI_FADT_IAPC_BOOT, 109);
	ck_assert_uint_eq(ACPI_FADT_FLAGS, 112);
	ck_assert_uint_eq(ACPI_FADT_RESET_REG, 116);
	ck_assert_uint_eq(ACPI_FADT_RESET_VALUE, 128);
	ck_assert_uint_eq(ACPI_FADT_MINOR_REV, 131);
	ck_assert_uint_eq(ACPI_FADT_X_DSDT, 140);
	ck_assert_uint_eq(ACPI_FADT_SLEEP_CTL, 244);
	ck_assert_uint_eq(ACPI_FADT_SLEEP_STS, 256);
	ck_assert_uint_eq(ACPI_FADT_HV_ID, 268);
	ck_assert_uint_eq(ACPI_FADT_LEN, 276);
}
END_TEST

/* Rebuilding over junk leaves one RSDP and nothing stale in the window. */
START_TEST(test_stale_window)
{
	uint8_t *win = test_mem.regions[0].hva + LAYOUT_ACPI_GPA;
	struct acpi_config cfg = { .nr_cpus = 4, .pci_ecam = true, .ecam_last_bus = 1 };
	uint64_t rsdp;
	unsigned found = 0;

	memset(win, 0xaa, LAYOUT_ACPI_SIZE);
	memcpy(win + 0x1000, "RSD PTR ", 8);
	ck_assert_int_eq(acpi_build(&test_mem, &cfg, &rsdp), 0);
	for (size_t off = 0; off < LAYOUT_ACPI_SIZE; off += 16)
		found += !memcmp(win + off, "RSD PTR ", 8);
	ck_assert_uint_eq(found, 1);
	ck_assert_uint_eq(win[LAYOUT_ACPI_SIZE - 1], 0);
	check_rsdp(rsdp);
}
END_TEST

START_TEST(test_err_cpus)
{
	struct acpi_config cfg = { .nr_cpus = 0 };
	uint64_t rsdp = 0x1234;

	ck_assert_int_eq(acpi_build(&test_mem, &cfg, &rsdp), -EINVAL);
	cfg.nr_cpus = 256;
	ck_assert_int_eq(acpi_build(&test_mem, &cfg, &rsdp), -EINVAL);
	cfg.nr_cpus = 1000;
	ck_assert_int_eq(acpi_build(&test_mem, &cfg, &rsdp), -EINVAL);
	ck_assert_uint_eq(rsdp, 0x1234);
	cfg.nr_cpus = 255;
	ck_assert_int_eq(acpi_build(&test_mem, &cfg, &rsdp), 0);
}
END_TEST

START_TEST(test_err_bus)
{
	struct acpi_config cfg = { .nr_cpus = 1, .pci_ecam = true, .ecam_last_bus = 16 };
	uint64_t rsdp;

	ck_assert_int_eq(acpi_build(&test_mem, &cfg, &rsdp), -EINVAL);
	cfg.ecam_last_bus = 255;
	ck_assert_int_eq(acpi_build(&test_mem, &cfg, &rsdp), -EINVAL);
	cfg.ecam_last_bus = ~0u;
	ck_assert_int_eq(acpi_build(&test_mem, &cfg, &rsdp), -EINVAL);
	cfg.pci_ecam = false; /* the bus count means nothing without ECAM */
	ck_assert_int_eq(acpi_build(&test_mem, &cfg, &rsdp), 0);
}
END_TEST

START_TEST(test_err_small_ram)
{
	struct acpi_config cfg = { .nr_cpus = 2 };
	struct guest_mem small = test_mem;
	uint64_t rsdp;

	/* RAM ends inside the ACPI window. */
	small.regions[0].size = LAYOUT_ACPI_GPA + 0x1000;
	ck_assert_int_eq(acpi_build(&small, &cfg, &rsdp), -EFAULT);
	/* RAM ends before it. */
	small.regions[0].size = LAYOUT_ACPI_GPA;
	ck_assert_int_eq(acpi_build(&small, &cfg, &rsdp), -EFAULT);
	/* No RAM at all. */
	small.nr_regions = 0;
	ck_assert_int_eq(acpi_build(&small, &cfg, &rsdp), -EFAULT);
}
END_TEST

START_TEST(test_err_nospace)
{
	struct acpi_config cfg = { .nr_cpus = 255, .pci_ecam = true, .ecam_last_bus = 15 };
	uint8_t *win = test_mem.regions[0].hva + LAYOUT_ACPI_GPA;
	uint64_t rsdp = 0;

	ck_assert_int_eq(acpi_build_sized(&test_mem, &cfg, &rsdp, 1024), -ENOSPC);
	ck_assert_uint_eq(rsdp, 0);
	ck_assert_uint_eq(win[0], 0); /* no half-built RSDP left behind */
	ck_assert_int_eq(acpi_build_sized(&test_mem, &cfg, &rsdp, 40), -ENOSPC);
	ck_assert_int_eq(acpi_build_sized(&test_mem, &cfg, &rsdp, 8192), 0);
}
END_TEST

START_TEST(test_aml_pkglen_encode)
{
	uint8_t out[4];

	ck_assert_uint_eq(acpi_aml_pkglen_encode(out, 63), 1);
	ck_assert_uint_eq(out[0], 0x3f);
	ck_assert_uint_eq(acpi_aml_pkglen_encode(out, 64), 2);
	ck_assert_mem_eq(out, "\x40\x04", 2);
	ck_assert_uint_eq(acpi_aml_pkglen_encode(out, 4095), 2);
	ck_assert_mem_eq(out, "\x4f\xff", 2);
	ck_assert_uint_eq(acpi_aml_pkglen_encode(out, 4096), 3);
	ck_assert_mem_eq(out, "\x80\x00\x01", 3);
	ck_assert_uint_eq(acpi_aml_pkglen_encode(out, 0xfffff), 3);
	ck_assert_mem_eq(out, "\x8f\xff\xff", 3);
	ck_assert_uint_eq(acpi_aml_pkglen_encode(out, 0x100000), 4);
	ck_assert_mem_eq(out, "\xc0\x00\x00\x01", 4);
	ck_assert_uint_eq(acpi_aml_pkglen_encode(out, 0xfffffff), 4);
	ck_assert_uint_eq(acpi_aml_pkglen_encode(out, 0x10000000), 0);
}
END_TEST

/* acpi_aml_close() picks the shortest PkgLength that covers itself. */
START_TEST(test_aml_pkglen_close)
{
	static const struct {
		size_t content;
		unsigned n;
		uint32_t total;
	} cases[] = {
		{ 0, 1, 1 }, { 62, 1, 63 }, { 63, 2, 65 }, { 4093, 2, 4095 }, { 4094, 3, 4097 },
	};
	static uint8_t data[8192];

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct acpi_buf b;
		uint8_t enc[4];
		size_t mark;

		acpi_buf_init(&b, data, sizeof(data));
		mark = acpi_aml_open(&b);
		memset(acpi_buf_put(&b, cases[i].content), 0x5a, cases[i].content);
		acpi_aml_close(&b, mark);
		ck_assert_int_eq(b.err, 0);
		ck_assert_uint_eq(b.len, cases[i].total);
		ck_assert_uint_eq(acpi_aml_pkglen_encode(enc, cases[i].total), cases[i].n);
		ck_assert_mem_eq(data, enc, cases[i].n);
		if (cases[i].content)
			ck_assert_uint_eq(data[b.len - 1], 0x5a);
	}
}
END_TEST

START_TEST(test_aml_eisaid)
{
	ck_assert_uint_eq(acpi_aml_eisaid("PNP0A03"), 0x030ad041);
	ck_assert_uint_eq(acpi_aml_eisaid("PNP0A08"), 0x080ad041);
	ck_assert_uint_eq(acpi_aml_eisaid("PNP0C02"), 0x020cd041);
	ck_assert_uint_eq(acpi_aml_eisaid("PNP0501"), 0x0105d041);
	ck_assert_uint_eq(acpi_aml_eisaid("PNP0a03"), 0);
	ck_assert_uint_eq(acpi_aml_eisaid("pnp0A03"), 0);
	ck_assert_uint_eq(acpi_aml_eisaid("PNP0A0"), 0);
	ck_assert_uint_eq(acpi_aml_eisaid("PNP0A033"), 0);
}
END_TEST

/* Encode with (fn) into a fresh buffer and compare with (bytes). */
#define CHECK_AML(stmt, bytes)                                     \
	do {                                                       \
		uint8_t data_[256];                                \
		struct acpi_buf b_;                                \
		struct acpi_buf *b = &b_;                          \
		acpi_buf_init(b, data_, sizeof(data_));            \
		stmt;                                              \
		ck_assert_int_eq(b->err, 0);                       \
		ck_assert_uint_eq(b->len, sizeof(bytes) - 1);      \
		ck_assert_mem_eq(data_, bytes, sizeof(bytes) - 1); \
	} while (0)

START_TEST(test_aml_int)
{
	CHECK_AML(acpi_aml_int(b, 0), "\x00");
	CHECK_AML(acpi_aml_int(b, 1), "\x01");
	CHECK_AML(acpi_aml_int(b, 2), "\x0a\x02");
	CHECK_AML(acpi_aml_int(b, 0xff), "\x0a\xff");
	CHECK_AML(acpi_aml_int(b, 0x100), "\x0b\x00\x01");
	CHECK_AML(acpi_aml_int(b, 0xffff), "\x0b\xff\xff");
	CHECK_AML(acpi_aml_int(b, 0x10000), "\x0c\x00\x00\x01\x00");
	CHECK_AML(acpi_aml_int(b, 0xe0000000), "\x0c\x00\x00\x00\xe0");
	CHECK_AML(acpi_aml_int(b, 0x100000000), "\x0e\x00\x00\x00\x00\x01\x00\x00\x00");
	CHECK_AML(acpi_aml_int(b, UINT64_MAX), "\xff");
}
END_TEST

START_TEST(test_aml_name)
{
	CHECK_AML(acpi_aml_name(b, "_S5"), "_S5_");
	CHECK_AML(acpi_aml_name(b, "PCI0"), "PCI0");
	CHECK_AML(acpi_aml_name(b, "\\_SB"), "\\_SB_");
	CHECK_AML(acpi_aml_name(b, "\\_SB.PCI0"), "\\\x2e_SB_PCI0");
	CHECK_AML(acpi_aml_name(b, "\\_SB.PCI0.S08"), "\\\x2f\x03_SB_PCI0S08_");
	CHECK_AML(acpi_aml_name(b, "\\"), "\\\x00");
}
END_TEST

START_TEST(test_aml_name_bad)
{
	static const char *const bad[] = { "TOOLONG", "\\_SB..PCI0", "A.", ".A" };
	uint8_t data[64];
	struct acpi_buf b;

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		acpi_buf_init(&b, data, sizeof(data));
		acpi_aml_name(&b, bad[i]);
		ck_assert_int_eq(b.err, -EINVAL);
	}
	acpi_buf_init(&b, data, sizeof(data));
	acpi_aml_name_eisaid(&b, "_HID", "PNPXXXX");
	ck_assert_int_eq(b.err, -EINVAL);
}
END_TEST

/* Byte sequences as iasl compiles the same ASL. */
START_TEST(test_aml_objects)
{
	static const uint64_t s5[4] = { 5, 5, 0, 0 };

	/* Name (_S5, Package (0x04) { 0x05, 0x05, Zero, Zero }) */
	CHECK_AML(acpi_aml_name_package(b, "_S5", s5, 4),
		  "\x08_S5_\x12\x08\x04\x0a\x05\x0a\x05\x00\x00");
	/* Name (_HID, EisaId ("PNP0A03")) */
	CHECK_AML(acpi_aml_name_eisaid(b, "_HID", "PNP0A03"), "\x08_HID\x0c\x41\xd0\x0a\x03");
	/* Name (_UID, One) */
	CHECK_AML(acpi_aml_name_int(b, "_UID", 1), "\x08_UID\x01");
	/* Scope (\_SB) {} */
	CHECK_AML(acpi_aml_close(b, acpi_aml_scope_open(b, "\\_SB")), "\x10\x06\\_SB_");
	/* Device (COM1) { Name (_UID, One) } */
	CHECK_AML(
		{
			size_t dev = acpi_aml_device_open(b, "COM1");

			acpi_aml_name_int(b, "_UID", 1);
			acpi_aml_close(b, dev);
		},
		"\x5b\x82\x0b"
		"COM1\x08_UID\x01");
}
END_TEST

START_TEST(test_aml_resources)
{
	/* WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode, 0, 0, 0xff, 0, 0x100) */
	CHECK_AML(acpi_res_addr(b, 2, ACPI_RES_TYPE_BUS, 0, 0, 0xff),
		  "\x88\x0d\x00\x02\x0c\x00\x00\x00\x00\x00\xff\x00\x00\x00\x00\x01");
	/* WordIO (..., EntireRange, 0, 0x1000, 0xffff, 0, 0xf000) */
	CHECK_AML(acpi_res_addr(b, 2, ACPI_RES_TYPE_IO, ACPI_RES_IO_ENTIRE, 0x1000, 0xffff),
		  "\x88\x0d\x00\x01\x0c\x03\x00\x00\x00\x10\xff\xff\x00\x00\x00\xf0");
	/* DWordMemory (..., NonCacheable, ReadWrite, 0, 0xc0000000, 0xdfffffff, 0, 0x20000000) */
	CHECK_AML(acpi_res_addr(b, 4, ACPI_RES_TYPE_MEM, ACPI_RES_MEM_RW, 0xc0000000, 0xdfffffff),
		  "\x87\x17\x00\x00\x0c\x01\x00\x00\x00\x00\x00\x00\x00\xc0\xff\xff\xff\xdf"
		  "\x00\x00\x00\x00\x00\x00\x00\x20");
	/* IO (Decode16, 0x0cf8, 0x0cf8, 0x01, 0x08) */
	CHECK_AML(acpi_res_io(b, 0xcf8, 8), "\x47\x01\xf8\x0c\xf8\x0c\x01\x08");
	/* IRQNoFlags () {4} */
	CHECK_AML(acpi_res_irq(b, 4), "\x22\x10\x00");
	/* Memory32Fixed (ReadWrite, 0xe0000000, 0x01000000) */
	CHECK_AML(acpi_res_mem32_fixed(b, 0xe0000000, 0x01000000),
		  "\x86\x09\x00\x01\x00\x00\x00\xe0\x00\x00\x00\x01");
	/* Name (_CRS, ResourceTemplate () { IRQNoFlags () {4} }) */
	CHECK_AML(
		{
			uint8_t rdata[8];
			struct acpi_buf res;

			acpi_buf_init(&res, rdata, sizeof(rdata));
			acpi_res_irq(&res, 4);
			acpi_aml_name_crs(b, &res);
		},
		"\x08_CRS\x11\x08\x0a\x05\x22\x10\x00\x79\x00");
}
END_TEST

/* The first error sticks and nothing is written past the capacity. */
START_TEST(test_aml_nospace)
{
	uint8_t data[8] = { 0 };
	struct acpi_buf b;

	acpi_buf_init(&b, data, 6);
	acpi_aml_name_int(&b, "_UID", 1);
	ck_assert_int_eq(b.err, 0);
	acpi_aml_int(&b, 0x1234);
	ck_assert_int_eq(b.err, -ENOSPC);
	ck_assert_uint_eq(b.len, 6);
	acpi_buf_byte(&b, 0);
	ck_assert_int_eq(b.err, -ENOSPC);
	ck_assert_uint_eq(data[6], 0);

	/* A PkgLength that no longer fits. */
	acpi_buf_init(&b, data, 4);
	acpi_buf_put(&b, 4);
	acpi_aml_close(&b, 0);
	ck_assert_int_eq(b.err, -ENOSPC);
}
END_TEST

static Suite *unit_suite(void)
{
	Suite *s = suite_create("acpi");
	TCase *tc = tcase_create("aml");

	tcase_add_test(tc, test_aml_pkglen_encode);
	tcase_add_test(tc, test_aml_pkglen_close);
	tcase_add_test(tc, test_aml_eisaid);
	tcase_add_test(tc, test_aml_int);
	tcase_add_test(tc, test_aml_name);
	tcase_add_test(tc, test_aml_name_bad);
	tcase_add_test(tc, test_aml_objects);
	tcase_add_test(tc, test_aml_resources);
	tcase_add_test(tc, test_aml_nospace);
	suite_add_tcase(s, tc);

	tc = tcase_create("tables");
	tcase_add_checked_fixture(tc, ram_setup, ram_teardown);
	tcase_add_loop_test(tc, test_build, 0, sizeof(build_cases) / sizeof(build_cases[0]));
	tcase_add_test(tc, test_fadt_offsets);
	tcase_add_test(tc, test_stale_window);
	tcase_add_test(tc, test_err_cpus);
	tcase_add_test(tc, test_err_bus);
	tcase_add_test(tc, test_err_small_ram);
	tcase_add_test(tc, test_err_nospace);
	suite_add_tcase(s, tc);
	return s;
}
