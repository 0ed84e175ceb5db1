/* ACPI 6.x tables for a hardware-reduced x86 platform, written into guest RAM
 * at LAYOUT_ACPI_GPA: RSDP, XSDT, FADT, DSDT (AML from a tiny encoder), MADT
 * and MCFG. Every multi-byte field goes through an explicit little-endian writer. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kvisor/acpi.h"
#include "kvisor/layout.h"
#include "kvisor/mem.h"

#define ACPI_OEM_ID           "KVISOR"
#define ACPI_OEM_TABLE_ID     "KVISORVM"
#define ACPI_OEM_REVISION     1
#define ACPI_CREATOR_ID       "KVSR"
#define ACPI_CREATOR_REVISION 1
#define ACPI_HV_VENDOR_ID     "KVISOR  "

#define ACPI_MAX_CPUS      255 /* xAPIC IDs; 0xff is the broadcast ID */
#define ACPI_ECAM_BUS_SIZE (1ULL << 20)
#define ACPI_TABLE_ALIGN   16
#define ACPI_MAX_TABLES    3 /* XSDT entries: FADT, MADT, MCFG */
#define ACPI_HDR_LEN       36
#define ACPI_RSDP_LEN      36

/* FADT revision 6.5 layout; offsets as in Linux's struct acpi_table_fadt. */
#define ACPI_FADT_LEN         276
#define ACPI_FADT_REVISION    6
#define ACPI_FADT_MINOR       5
#define ACPI_FADT_SCI_INT     46
#define ACPI_FADT_IAPC_BOOT   109
#define ACPI_FADT_FLAGS       112
#define ACPI_FADT_RESET_REG   116
#define ACPI_FADT_RESET_VALUE 128
#define ACPI_FADT_MINOR_REV   131
#define ACPI_FADT_X_DSDT      140
#define ACPI_FADT_SLEEP_CTL   244
#define ACPI_FADT_SLEEP_STS   256
#define ACPI_FADT_HV_ID       268

#define ACPI_FADT_F_WBINVD     (1u << 0)
#define ACPI_FADT_F_PWR_BUTTON (1u << 4) /* no fixed-feature power button */
#define ACPI_FADT_F_SLP_BUTTON (1u << 5) /* no fixed-feature sleep button */
#define ACPI_FADT_F_RESET_REG  (1u << 10)
#define ACPI_FADT_F_HW_REDUCED (1u << 20)
#define ACPI_IAPC_NO_VGA       (1u << 2)
#define ACPI_IAPC_NO_ASPM      (1u << 4)
#define ACPI_IAPC_NO_CMOS_RTC  (1u << 5)

#define ACPI_GAS_LEN         12
#define ACPI_GAS_SYSTEM_IO   1
#define ACPI_GAS_ACCESS_BYTE 1

#define ACPI_MADT_REVISION  5
#define ACPI_MADT_LAPIC     0
#define ACPI_MADT_IOAPIC    1
#define ACPI_MADT_ISO       2
#define ACPI_MADT_LAPIC_NMI 4
#define ACPI_MADT_ENABLED   1
#define ACPI_MADT_ALL_CPUS  0xff
/* The ID the in-kernel IOAPIC reports in its ID register after reset, as
 * QEMU, Firecracker and Cloud Hypervisor do. Sharing the number with CPU 0's
 * APIC ID only mattered on the P6 serial APIC bus; Linux does not mind. */
#define ACPI_MADT_IOAPIC_ID  0
#define ACPI_MPS_ACTIVE_HIGH 0x1
#define ACPI_MPS_LEVEL       0xc

/* AML opcodes and prefixes (ACPI 6.5 chapter 20). */
#define ACPI_AML_ZERO       0x00
#define ACPI_AML_ONE        0x01
#define ACPI_AML_NAME       0x08
#define ACPI_AML_BYTE       0x0a
#define ACPI_AML_WORD       0x0b
#define ACPI_AML_DWORD      0x0c
#define ACPI_AML_QWORD      0x0e
#define ACPI_AML_SCOPE      0x10
#define ACPI_AML_BUFFER     0x11
#define ACPI_AML_PACKAGE    0x12
#define ACPI_AML_DUAL_NAME  0x2e
#define ACPI_AML_MULTI_NAME 0x2f
#define ACPI_AML_EXT        0x5b
#define ACPI_AML_DEVICE     0x82 /* after ACPI_AML_EXT */
#define ACPI_AML_ONES       0xff

/* Resource descriptors (ACPI 6.5 section 6.4). */
#define ACPI_RES_IRQ_NOFLAGS   0x22
#define ACPI_RES_IO            0x47
#define ACPI_RES_END           0x79 /* small item 0x0f, length 1 */
#define ACPI_RES_MEM32_FIXED   0x86
#define ACPI_RES_DWORD_ADDR    0x87
#define ACPI_RES_WORD_ADDR     0x88
#define ACPI_RES_TYPE_MEM      0
#define ACPI_RES_TYPE_IO       1
#define ACPI_RES_TYPE_BUS      2
#define ACPI_RES_MIN_MAX_FIXED 0x0c /* _MIF | _MAF, positive decode, producer */
#define ACPI_RES_IO_ENTIRE     0x03
#define ACPI_RES_MEM_RW        0x01 /* non-cacheable, read/write */

_Static_assert(LAYOUT_ACPI_GPA % ACPI_TABLE_ALIGN == 0, "RSDP must be 16-byte aligned");
_Static_assert(LAYOUT_PCI_ECAM_SIZE / ACPI_ECAM_BUS_SIZE <= 256, "ECAM covers at most 256 buses");
_Static_assert(ACPI_FADT_HV_ID + 8 == ACPI_FADT_LEN, "FADT layout");

/* A bounded byte buffer. The first error sticks, so builders check it once. */
struct acpi_buf {
	uint8_t *data;
	size_t cap;
	size_t len;
	int err;
};

static void acpi_buf_init(struct acpi_buf *b, uint8_t *data, size_t cap)
{
	b->data = data;
	b->cap = cap;
	b->len = 0;
	b->err = 0;
}

/* (n) zeroed bytes appended to (b), or NULL with b->err = -ENOSPC. */
static uint8_t *acpi_buf_put(struct acpi_buf *b, size_t n)
{
	uint8_t *p;

	if (b->err)
		return NULL;
	if (n > b->cap - b->len) {
		b->err = -ENOSPC;
		return NULL;
	}
	p = b->data + b->len;
	memset(p, 0, n);
	b->len += n;
	return p;
}

static void acpi_put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void acpi_buf_le(struct acpi_buf *b, uint64_t v, unsigned n)
{
	uint8_t *p = acpi_buf_put(b, n);

	if (p)
		acpi_put_le(p, v, n);
}

static void acpi_buf_byte(struct acpi_buf *b, uint8_t v)
{
	acpi_buf_le(b, v, 1);
}

static void acpi_buf_mem(struct acpi_buf *b, const void *src, size_t n)
{
	uint8_t *p = acpi_buf_put(b, n);

	if (p)
		memcpy(p, src, n);
}

static void acpi_buf_align(struct acpi_buf *b, size_t align)
{
	if (b->len % align)
		acpi_buf_put(b, align - b->len % align);
}

/* The byte that makes (p, n) sum to zero. */
static uint8_t acpi_checksum(const uint8_t *p, size_t n)
{
	uint8_t sum = 0;

	while (n--)
		sum += *p++;
	return (uint8_t)-sum;
}

/* Encode a PkgLength whose value (total) counts its own bytes too. Returns
 * the number of bytes (1-4), or 0 when total does not fit in 28 bits. */
static unsigned acpi_aml_pkglen_encode(uint8_t out[4], uint32_t total)
{
	unsigned follow;

	if (total <= 0x3f) {
		out[0] = (uint8_t)total;
		return 1;
	}
	if (total <= 0xfff)
		follow = 1;
	else if (total <= 0xfffff)
		follow = 2;
	else if (total <= 0xfffffff)
		follow = 3;
	else
		return 0;
	/* Lead byte: count of following bytes in bits 7-6, low nibble in 3-0. */
	out[0] = (uint8_t)(follow << 6 | (total & 0xf));
	for (unsigned i = 1; i <= follow; i++)
		out[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
	return follow + 1;
}

/* PkgLength for (content) bytes following it: the shortest encoding. */
static unsigned acpi_aml_pkglen(uint8_t out[4], size_t content)
{
	static const uint32_t max[5] = { 0, 0x3f, 0xfff, 0xfffff, 0xfffffff };

	for (unsigned k = 1; k <= 4; k++)
		if (content + k <= max[k])
			return acpi_aml_pkglen_encode(out, (uint32_t)(content + k));
	return 0;
}

/* Start a PkgLength-prefixed object: the caller has emitted the opcode.
 * Returns the mark to hand to acpi_aml_close(). */
static size_t acpi_aml_open(struct acpi_buf *b)
{
	return b->len;
}

/* Insert the PkgLength for everything written since (mark). Pointers into
 * the buffer past (mark) are stale afterwards: the bytes move. */
static void acpi_aml_close(struct acpi_buf *b, size_t mark)
{
	size_t content = b->len - mark;
	uint8_t enc[4];
	unsigned n;

	if (b->err)
		return;
	n = acpi_aml_pkglen(enc, content);
	if (!n) {
		b->err = -ENOSPC;
		return;
	}
	if (!acpi_buf_put(b, n))
		return;
	memmove(b->data + mark + n, b->data + mark, content);
	memcpy(b->data + mark, enc, n);
}

/* NameString: optional leading '\', then '.'-separated segments of up to
 * four characters, padded with '_' ("_S5" -> "_S5_"). */
static void acpi_aml_name(struct acpi_buf *b, const char *path)
{
	unsigned nseg = 1;

	if (*path == '\\') {
		acpi_buf_byte(b, '\\');
		path++;
	}
	if (!*path) {
		acpi_buf_byte(b, ACPI_AML_ZERO); /* NullName */
		return;
	}
	for (const char *s = path; *s; s++)
		nseg += *s == '.';
	if (nseg == 2) {
		acpi_buf_byte(b, ACPI_AML_DUAL_NAME);
	} else if (nseg > 2) {
		acpi_buf_byte(b, ACPI_AML_MULTI_NAME);
		acpi_buf_byte(b, (uint8_t)nseg);
	}
	while (*path) {
		char seg[4] = { '_', '_', '_', '_' };
		size_t len = strcspn(path, ".");

		if (len == 0 || len > 4 || (path[len] == '.' && !path[len + 1])) {
			b->err = b->err ? b->err : -EINVAL;
			return;
		}
		memcpy(seg, path, len);
		acpi_buf_mem(b, seg, 4);
		path += len + (path[len] == '.');
	}
}

/* The shortest integer encoding: Zero, One, Ones or a prefixed constant. */
static void acpi_aml_int(struct acpi_buf *b, uint64_t v)
{
	if (v == 0 || v == 1) {
		acpi_buf_byte(b, v ? ACPI_AML_ONE : ACPI_AML_ZERO);
	} else if (v == UINT64_MAX) {
		acpi_buf_byte(b, ACPI_AML_ONES);
	} else if (v <= 0xff) {
		acpi_buf_byte(b, ACPI_AML_BYTE);
		acpi_buf_le(b, v, 1);
	} else if (v <= 0xffff) {
		acpi_buf_byte(b, ACPI_AML_WORD);
		acpi_buf_le(b, v, 2);
	} else if (v <= 0xffffffff) {
		acpi_buf_byte(b, ACPI_AML_DWORD);
		acpi_buf_le(b, v, 4);
	} else {
		acpi_buf_byte(b, ACPI_AML_QWORD);
		acpi_buf_le(b, v, 8);
	}
}

static int acpi_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* EisaId("PNP0A03") == 0x030ad041: three 5-bit letters and four hex digits,
 * stored big-endian in a little-endian DWord. 0 for a malformed id. */
static uint32_t acpi_aml_eisaid(const char *id)
{
	uint32_t v = 0;

	if (strlen(id) != 7)
		return 0;
	for (unsigned i = 0; i < 3; i++) {
		if (id[i] < 'A' || id[i] > 'Z')
			return 0;
		v = v << 5 | (uint32_t)(id[i] - '@');
	}
	for (unsigned i = 3; i < 7; i++) {
		int d = acpi_hex_digit(id[i]);

		if (d < 0)
			return 0;
		v = v << 4 | (uint32_t)d;
	}
	return __builtin_bswap32(v);
}

/* Name (name, value) */
static void acpi_aml_name_int(struct acpi_buf *b, const char *name, uint64_t v)
{
	acpi_buf_byte(b, ACPI_AML_NAME);
	acpi_aml_name(b, name);
	acpi_aml_int(b, v);
}

/* Name (name, EisaId (id)): always a DWord constant, as iasl emits it. */
static void acpi_aml_name_eisaid(struct acpi_buf *b, const char *name, const char *id)
{
	uint32_t v = acpi_aml_eisaid(id);

	if (!v && !b->err)
		b->err = -EINVAL;
	acpi_buf_byte(b, ACPI_AML_NAME);
	acpi_aml_name(b, name);
	acpi_buf_byte(b, ACPI_AML_DWORD);
	acpi_buf_le(b, v, 4);
}

/* Name (name, Package (n) { v[0], ... }) */
static void acpi_aml_name_package(struct acpi_buf *b, const char *name, const uint64_t *v,
				  uint8_t n)
{
	size_t pkg;

	acpi_buf_byte(b, ACPI_AML_NAME);
	acpi_aml_name(b, name);
	acpi_buf_byte(b, ACPI_AML_PACKAGE);
	pkg = acpi_aml_open(b);
	acpi_buf_byte(b, n); /* NumElements */
	for (unsigned i = 0; i < n; i++)
		acpi_aml_int(b, v[i]);
	acpi_aml_close(b, pkg);
}

/* Scope (path) { ... or Device (name) { ... ; close with acpi_aml_close(). */
static size_t acpi_aml_scope_open(struct acpi_buf *b, const char *path)
{
	size_t mark;

	acpi_buf_byte(b, ACPI_AML_SCOPE);
	mark = acpi_aml_open(b);
	acpi_aml_name(b, path);
	return mark;
}

static size_t acpi_aml_device_open(struct acpi_buf *b, const char *name)
{
	size_t mark;

	acpi_buf_byte(b, ACPI_AML_EXT);
	acpi_buf_byte(b, ACPI_AML_DEVICE);
	mark = acpi_aml_open(b);
	acpi_aml_name(b, name);
	return mark;
}

/* Name (_CRS, ResourceTemplate () { res }): ends (res) with an End Tag and
 * wraps it in a Buffer. */
static void acpi_aml_name_crs(struct acpi_buf *b, struct acpi_buf *res)
{
	size_t buf;

	acpi_buf_byte(res, ACPI_RES_END);
	acpi_buf_byte(res, 0); /* checksum 0: none */
	if (res->err && !b->err)
		b->err = res->err;
	acpi_buf_byte(b, ACPI_AML_NAME);
	acpi_aml_name(b, "_CRS");
	acpi_buf_byte(b, ACPI_AML_BUFFER);
	buf = acpi_aml_open(b);
	acpi_aml_int(b, res->len); /* BufferSize */
	acpi_buf_mem(b, res->data, res->len);
	acpi_aml_close(b, buf);
}

/* IO (Decode16, base, base, 1, len) */
static void acpi_res_io(struct acpi_buf *r, uint16_t base, uint8_t len)
{
	acpi_buf_byte(r, ACPI_RES_IO);
	acpi_buf_byte(r, 1); /* 16-bit decode */
	acpi_buf_le(r, base, 2);
	acpi_buf_le(r, base, 2);
	acpi_buf_byte(r, 1);
	acpi_buf_byte(r, len);
}

/* IRQNoFlags () { irq }: edge, active high, exclusive */
static void acpi_res_irq(struct acpi_buf *r, unsigned irq)
{
	acpi_buf_byte(r, ACPI_RES_IRQ_NOFLAGS);
	acpi_buf_le(r, 1u << irq, 2);
}

/* Memory32Fixed (ReadWrite, base, len) */
static void acpi_res_mem32_fixed(struct acpi_buf *r, uint32_t base, uint32_t len)
{
	acpi_buf_byte(r, ACPI_RES_MEM32_FIXED);
	acpi_buf_le(r, 9, 2);
	acpi_buf_byte(r, 1); /* read/write */
	acpi_buf_le(r, base, 4);
	acpi_buf_le(r, len, 4);
}

/* WordBusNumber / WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, ...)
 * and DWordMemory (...): a bridge window [min, max] with no translation. */
static void acpi_res_addr(struct acpi_buf *r, unsigned size, uint8_t type, uint8_t tflags,
			  uint32_t min, uint32_t max)
{
	acpi_buf_byte(r, size == 2 ? ACPI_RES_WORD_ADDR : ACPI_RES_DWORD_ADDR);
	acpi_buf_le(r, 3 + 5 * size, 2);
	acpi_buf_byte(r, type);
	acpi_buf_byte(r, ACPI_RES_MIN_MAX_FIXED);
	acpi_buf_byte(r, tflags);
	acpi_buf_le(r, 0, size); /* granularity */
	acpi_buf_le(r, min, size);
	acpi_buf_le(r, max, size);
	acpi_buf_le(r, 0, size); /* translation offset */
	acpi_buf_le(r, (uint64_t)max - min + 1, size);
}

/* Reserve 16-byte aligned room for a table header; fill it in acpi_table_end(). */
static size_t acpi_table_begin(struct acpi_buf *b)
{
	size_t off;

	acpi_buf_align(b, ACPI_TABLE_ALIGN);
	off = b->len;
	acpi_buf_put(b, ACPI_HDR_LEN);
	return off;
}

static void acpi_table_end(struct acpi_buf *b, size_t off, const char *sig, uint8_t rev)
{
	uint8_t *t = b->data + off;
	size_t len = b->len - off;

	if (b->err)
		return;
	memcpy(t, sig, 4);
	acpi_put_le(t + 4, len, 4);
	t[8] = rev;
	t[9] = 0;
	memcpy(t + 10, ACPI_OEM_ID, 6);
	memcpy(t + 16, ACPI_OEM_TABLE_ID, 8);
	acpi_put_le(t + 24, ACPI_OEM_REVISION, 4);
	memcpy(t + 28, ACPI_CREATOR_ID, 4);
	acpi_put_le(t + 32, ACPI_CREATOR_REVISION, 4);
	t[9] = acpi_checksum(t, len);
}

static uint64_t acpi_gpa(size_t off)
{
	return LAYOUT_ACPI_GPA + off;
}

/* \_SB.COM1: the 8250 at LAYOUT_COM1_PORT, for Linux's 8250_pnp. */
static void acpi_dsdt_com1(struct acpi_buf *b)
{
	uint8_t data[32];
	struct acpi_buf res;
	size_t dev;

	dev = acpi_aml_device_open(b, "COM1");
	acpi_aml_name_eisaid(b, "_HID", "PNP0501");
	acpi_aml_name_int(b, "_UID", 1);
	acpi_buf_init(&res, data, sizeof(data));
	acpi_res_io(&res, LAYOUT_COM1_PORT, 8);
	acpi_res_irq(&res, LAYOUT_COM1_IRQ);
	acpi_aml_name_crs(b, &res);
	acpi_aml_close(b, dev);
}

/* \_SB.PCI0: the PCIe host bridge; its _CRS lists the bus range, the legacy
 * config ports and the I/O and 32-bit memory windows it forwards. */
static void acpi_dsdt_pci(struct acpi_buf *b, unsigned last_bus)
{
	uint8_t data[96];
	struct acpi_buf res;
	size_t dev;

	dev = acpi_aml_device_open(b, "PCI0");
	acpi_aml_name_eisaid(b, "_HID", "PNP0A08");
	acpi_aml_name_eisaid(b, "_CID", "PNP0A03");
	acpi_aml_name_int(b, "_SEG", 0);
	acpi_aml_name_int(b, "_UID", 0);
	acpi_aml_name_int(b, "_BBN", 0);
	acpi_buf_init(&res, data, sizeof(data));
	acpi_res_addr(&res, 2, ACPI_RES_TYPE_BUS, 0, 0, last_bus);
	acpi_res_io(&res, 0xcf8, 8);
	acpi_res_addr(&res, 2, ACPI_RES_TYPE_IO, ACPI_RES_IO_ENTIRE, 0x1000, 0xffff);
	acpi_res_addr(&res, 4, ACPI_RES_TYPE_MEM, ACPI_RES_MEM_RW, LAYOUT_PCI_MMIO32_GPA,
		      LAYOUT_PCI_MMIO32_END - 1);
	acpi_aml_name_crs(b, &res);
	acpi_aml_close(b, dev);
}

/* \_SB.ECAM: motherboard resources covering the MCFG range; Linux uses
 * MMCONFIG only if the range is reserved in e820 or by a PNP0C02 device. */
static void acpi_dsdt_ecam(struct acpi_buf *b, unsigned last_bus)
{
	uint8_t data[16];
	struct acpi_buf res;
	size_t dev;

	dev = acpi_aml_device_open(b, "ECAM");
	acpi_aml_name_eisaid(b, "_HID", "PNP0C02");
	acpi_aml_name_int(b, "_UID", 0);
	acpi_buf_init(&res, data, sizeof(data));
	acpi_res_mem32_fixed(&res, LAYOUT_PCI_ECAM_GPA, (last_bus + 1) * ACPI_ECAM_BUS_SIZE);
	acpi_aml_name_crs(b, &res);
	acpi_aml_close(b, dev);
}

static uint64_t acpi_build_dsdt(struct acpi_buf *b, const struct acpi_config *cfg)
{
	/* \_S5: SLP_TYPa, SLP_TYPb, reserved; Linux writes SLP_TYPa to SLEEP_CONTROL. */
	static const uint64_t s5[4] = { LAYOUT_ACPI_SLP_TYP_S5, LAYOUT_ACPI_SLP_TYP_S5, 0, 0 };
	size_t off = acpi_table_begin(b);
	size_t sb;

	acpi_aml_name_package(b, "_S5", s5, 4);
	sb = acpi_aml_scope_open(b, "\\_SB");
	acpi_dsdt_com1(b);
	if (cfg->pci_ecam) {
		acpi_dsdt_pci(b, cfg->ecam_last_bus);
		acpi_dsdt_ecam(b, cfg->ecam_last_bus);
	}
	acpi_aml_close(b, sb);
	/* Revision 2: 64-bit AML integers. */
	acpi_table_end(b, off, "DSDT", 2);
	return acpi_gpa(off);
}

/* An 8-bit register in System I/O space. */
static void acpi_put_gas_io8(uint8_t *p, uint16_t port)
{
	p[0] = ACPI_GAS_SYSTEM_IO;
	p[1] = 8; /* bit width */
	p[2] = 0; /* bit offset */
	p[3] = ACPI_GAS_ACCESS_BYTE;
	acpi_put_le(p + 4, port, 8);
}

/* Hardware-reduced: no PM1/GPE blocks, no FACS, no SMI_CMD; sleep and reset
 * go through the registers of the PM block at LAYOUT_ACPI_PM_PORT. */
static uint64_t acpi_build_fadt(struct acpi_buf *b, uint64_t dsdt_gpa)
{
	size_t off = acpi_table_begin(b);
	uint8_t *t;

	if (!acpi_buf_put(b, ACPI_FADT_LEN - ACPI_HDR_LEN))
		return 0;
	t = b->data + off;
	acpi_put_le(t + ACPI_FADT_SCI_INT, LAYOUT_ACPI_SCI_IRQ, 2);
	/* No 8042 (bit 1 clear), no legacy ISA devices to probe; MSI allowed. */
	acpi_put_le(t + ACPI_FADT_IAPC_BOOT,
		    ACPI_IAPC_NO_VGA | ACPI_IAPC_NO_ASPM | ACPI_IAPC_NO_CMOS_RTC, 2);
	acpi_put_le(t + ACPI_FADT_FLAGS,
		    ACPI_FADT_F_WBINVD | ACPI_FADT_F_PWR_BUTTON | ACPI_FADT_F_SLP_BUTTON |
			    ACPI_FADT_F_RESET_REG | ACPI_FADT_F_HW_REDUCED,
		    4);
	acpi_put_gas_io8(t + ACPI_FADT_RESET_REG, LAYOUT_ACPI_RESET);
	t[ACPI_FADT_RESET_VALUE] = LAYOUT_ACPI_RESET_VAL;
	t[ACPI_FADT_MINOR_REV] = ACPI_FADT_MINOR;
	/* The 32-bit DSDT field stays 0: X_DSDT is the one OSPM must use. */
	acpi_put_le(t + ACPI_FADT_X_DSDT, dsdt_gpa, 8);
	acpi_put_gas_io8(t + ACPI_FADT_SLEEP_CTL, LAYOUT_ACPI_SLEEP_CTL);
	acpi_put_gas_io8(t + ACPI_FADT_SLEEP_STS, LAYOUT_ACPI_SLEEP_STS);
	memcpy(t + ACPI_FADT_HV_ID, ACPI_HV_VENDOR_ID, 8);
	acpi_table_end(b, off, "FACP", ACPI_FADT_REVISION);
	return acpi_gpa(off);
}

static uint64_t acpi_build_madt(struct acpi_buf *b, unsigned nr_cpus)
{
	size_t off = acpi_table_begin(b);

	acpi_buf_le(b, LAYOUT_LAPIC_GPA, 4);
	/* PCAT_COMPAT clear, as Firecracker and Cloud Hypervisor: in hardware-
	 * reduced mode Linux never drives the 8259 and routes all via the IOAPIC. */
	acpi_buf_le(b, 0, 4);
	for (unsigned i = 0; i < nr_cpus; i++) {
		acpi_buf_byte(b, ACPI_MADT_LAPIC);
		acpi_buf_byte(b, 8);
		acpi_buf_byte(b, (uint8_t)i); /* ACPI processor UID */
		acpi_buf_byte(b, (uint8_t)i); /* APIC ID */
		acpi_buf_le(b, ACPI_MADT_ENABLED, 4);
	}
	acpi_buf_byte(b, ACPI_MADT_IOAPIC);
	acpi_buf_byte(b, 12);
	acpi_buf_byte(b, ACPI_MADT_IOAPIC_ID);
	acpi_buf_byte(b, 0);
	acpi_buf_le(b, LAYOUT_IOAPIC_GPA, 4);
	acpi_buf_le(b, 0, 4); /* GSI base */
	/* No override for IRQ0: KVM's default routing is identity and the
	 * in-kernel PIT raises GSI 0. The SCI is level, active high. */
	acpi_buf_byte(b, ACPI_MADT_ISO);
	acpi_buf_byte(b, 10);
	acpi_buf_byte(b, 0); /* ISA */
	acpi_buf_byte(b, LAYOUT_ACPI_SCI_IRQ);
	acpi_buf_le(b, LAYOUT_ACPI_SCI_IRQ, 4);
	acpi_buf_le(b, ACPI_MPS_ACTIVE_HIGH | ACPI_MPS_LEVEL, 2);
	/* NMI on LINT1 of every processor; flags 0: conforms to the bus. */
	acpi_buf_byte(b, ACPI_MADT_LAPIC_NMI);
	acpi_buf_byte(b, 6);
	acpi_buf_byte(b, ACPI_MADT_ALL_CPUS);
	acpi_buf_le(b, 0, 2);
	acpi_buf_byte(b, 1);
	acpi_table_end(b, off, "APIC", ACPI_MADT_REVISION);
	return acpi_gpa(off);
}

static uint64_t acpi_build_mcfg(struct acpi_buf *b, unsigned last_bus)
{
	size_t off = acpi_table_begin(b);

	acpi_buf_le(b, 0, 8); /* reserved */
	acpi_buf_le(b, LAYOUT_PCI_ECAM_GPA, 8);
	acpi_buf_le(b, 0, 2); /* segment */
	acpi_buf_byte(b, 0);  /* start bus */
	acpi_buf_byte(b, (uint8_t)last_bus);
	acpi_buf_le(b, 0, 4);
	acpi_table_end(b, off, "MCFG", 1);
	return acpi_gpa(off);
}

static uint64_t acpi_build_xsdt(struct acpi_buf *b, const uint64_t *tables, unsigned n)
{
	size_t off = acpi_table_begin(b);

	for (unsigned i = 0; i < n; i++)
		acpi_buf_le(b, tables[i], 8);
	acpi_table_end(b, off, "XSDT", 1);
	return acpi_gpa(off);
}

/* RSDP revision 2 at the start of the window; RsdtAddress 0: XSDT only. */
static void acpi_build_rsdp(uint8_t *p, uint64_t xsdt_gpa)
{
	memcpy(p, "RSD PTR ", 8);
	memcpy(p + 9, ACPI_OEM_ID, 6);
	p[15] = 2;
	acpi_put_le(p + 16, 0, 4);
	acpi_put_le(p + 20, ACPI_RSDP_LEN, 4);
	acpi_put_le(p + 24, xsdt_gpa, 8);
	p[8] = acpi_checksum(p, 20);
	p[32] = acpi_checksum(p, ACPI_RSDP_LEN);
}

static int acpi_check_config(const struct acpi_config *cfg)
{
	if (cfg->nr_cpus < 1 || cfg->nr_cpus > ACPI_MAX_CPUS)
		return -EINVAL;
	if (cfg->pci_ecam && cfg->ecam_last_bus >= LAYOUT_PCI_ECAM_SIZE / ACPI_ECAM_BUS_SIZE)
		return -EINVAL;
	return 0;
}

/* acpi_build() with a window of (size) bytes, so tests can provoke -ENOSPC. */
static int acpi_build_sized(struct guest_mem *mem, const struct acpi_config *cfg,
			    uint64_t *rsdp_gpa, size_t size)
{
	uint64_t tables[ACPI_MAX_TABLES], dsdt, xsdt;
	struct acpi_buf b;
	unsigned n = 0;
	uint8_t *win;
	int ret;

	ret = acpi_check_config(cfg);
	if (ret)
		return ret;
	win = mem_gpa_ptr(mem, LAYOUT_ACPI_GPA, size);
	if (!win)
		return -EFAULT;
	/* Clear the whole window: no stale "RSD PTR " for a legacy scan. */
	memset(win, 0, size);
	acpi_buf_init(&b, win, size);
	acpi_buf_put(&b, ACPI_RSDP_LEN); /* filled last, once the XSDT is in place */
	dsdt = acpi_build_dsdt(&b, cfg);
	tables[n++] = acpi_build_fadt(&b, dsdt);
	tables[n++] = acpi_build_madt(&b, cfg->nr_cpus);
	if (cfg->pci_ecam)
		tables[n++] = acpi_build_mcfg(&b, cfg->ecam_last_bus);
	xsdt = acpi_build_xsdt(&b, tables, n);
	if (b.err) {
		memset(win, 0, size);
		return b.err;
	}
	acpi_build_rsdp(win, xsdt);
	if (rsdp_gpa)
		*rsdp_gpa = LAYOUT_ACPI_GPA;
	return 0;
}

int acpi_build(struct guest_mem *mem, const struct acpi_config *cfg, uint64_t *rsdp_gpa)
{
	return acpi_build_sized(mem, cfg, rsdp_gpa, LAYOUT_ACPI_SIZE);
}
