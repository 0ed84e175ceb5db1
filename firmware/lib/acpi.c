/* Just enough ACPI for the firmware: RSDP -> XSDT -> a table by signature,
 * with checksums checked, and the enabled processors listed in the MADT. */
#include "fw.h"

struct acpi_header {
	char sig[4];
	uint32_t length;
	uint8_t revision, checksum;
	char oem_id[6], oem_table_id[8];
	uint32_t oem_revision, creator_id, creator_revision;
} __attribute__((packed));

static bool acpi_sum_ok(const void *p, uint32_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	while (len--)
		sum += *b++;
	return sum == 0;
}

const void *fw_acpi_table(const char *sig)
{
	const struct hvm_start_info *si = fw_start_info();
	const struct acpi_header *xsdt;
	const uint8_t *rsdp;
	uint64_t xsdt_gpa;
	uint32_t n;

	if (!si || !si->rsdp_paddr)
		FW_FAIL("no RSDP in the start info");
	rsdp = (const uint8_t *)(uintptr_t)si->rsdp_paddr;
	if (strncmp((const char *)rsdp, "RSD PTR ", 8) || !acpi_sum_ok(rsdp, 20))
		FW_FAIL("bad RSDP at 0x%lx", si->rsdp_paddr);
	if (rsdp[15] < 2 || !acpi_sum_ok(rsdp, *(const uint32_t *)(rsdp + 20)))
		FW_FAIL("RSDP revision %u or extended checksum wrong", rsdp[15]);
	xsdt_gpa = *(const uint64_t *)(rsdp + 24);
	xsdt = (const void *)(uintptr_t)xsdt_gpa;
	if (strncmp(xsdt->sig, "XSDT", 4) || !acpi_sum_ok(xsdt, xsdt->length))
		FW_FAIL("bad XSDT at %p", (const void *)xsdt);
	n = (xsdt->length - sizeof(*xsdt)) / 8;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t addr;
		const struct acpi_header *t;

		/* Entries are 64-bit but only 4-byte aligned. */
		memcpy(&addr, (const uint8_t *)(xsdt + 1) + 8 * i, 8);
		t = (const void *)(uintptr_t)addr;
		if (strncmp(t->sig, sig, 4))
			continue;
		if (!acpi_sum_ok(t, t->length))
			FW_FAIL("ACPI table %s: bad checksum", sig);
		return t;
	}
	return NULL;
}

unsigned fw_acpi_cpus(uint8_t *apic_ids, unsigned max)
{
	const struct acpi_header *madt = fw_acpi_table("APIC");
	const uint8_t *p, *end;
	unsigned n = 0;

	if (!madt)
		FW_FAIL("no MADT");
	/* Entries follow the local APIC address and flags (8 bytes). */
	p = (const uint8_t *)(madt + 1) + 8;
	end = (const uint8_t *)madt + madt->length;
	for (; p + 2 <= end && p[1] >= 2 && p + p[1] <= end; p += p[1]) {
		/* Type 0, length 8: processor UID, APIC ID, flags (bit 0 enabled). */
		if (p[0] != 0 || p[1] != 8 || !(p[4] & 1))
			continue;
		if (n < max)
			apic_ids[n] = p[3];
		n++;
	}
	if (p != end)
		FW_FAIL("MADT: malformed entry at offset %lu",
			(uintptr_t)(p - (const uint8_t *)madt));
	return n;
}
