/* Smoke test: serial banner, port I/O, testdev MMIO at every width and its
 * access counter, unclaimed ports and MMIO, the PVH start info (memory map,
 * command line, RSDP), then ACPI power-off. */
#include "fw.h"

#define UNCLAIMED_PORT 0x510 /* nobody's: reads all-ones */
#define UNCLAIMED_MMIO 0xfe000000ULL
#define SCRATCH        (LAYOUT_TESTDEV_MMIO_GPA + TESTDEV_MMIO_SCRATCH)
#define COUNT          (LAYOUT_TESTDEV_MMIO_GPA + TESTDEV_MMIO_COUNT)

/* String I/O: one exit carries several elements (kvm_run io.count). */
static void test_string_io(void)
{
	static const char line[] = "basic: rep outsb\r\n";
	struct testdev_msg m[2] = {
		{ .magic = TESTDEV_MAGIC,
		  .type = TESTDEV_SYNC,
		  .arg = 5,
		  .msg_gpa = (uintptr_t) "rep outsl 1" },
		{ .magic = TESTDEV_MAGIC,
		  .type = TESTDEV_SYNC,
		  .arg = 6,
		  .msg_gpa = (uintptr_t) "rep outsl 2" },
	};
	uint32_t addrs[2] = { (uint32_t)(uintptr_t)&m[0], (uint32_t)(uintptr_t)&m[1] };
	uint8_t buf[32];
	const void *src;
	void *dst;
	size_t n;

	src = line;
	n = sizeof(line) - 1;
	asm volatile("rep outsb" : "+S"(src), "+c"(n) : "d"(LAYOUT_COM1_PORT) : "memory");
	src = addrs;
	n = 2;
	asm volatile("rep outsl" : "+S"(src), "+c"(n) : "d"(LAYOUT_TESTDEV_PORT) : "memory");
	memset(buf, 0, sizeof(buf));
	dst = buf;
	n = sizeof(buf) / 4;
	asm volatile("rep insl" : "+D"(dst), "+c"(n) : "d"(UNCLAIMED_PORT) : "memory");
	for (unsigned i = 0; i < sizeof(buf); i++)
		FW_ASSERT_EQ(buf[i], 0xff);
}

static void test_ports(void)
{
	FW_ASSERT_EQ(inb(UNCLAIMED_PORT), 0xff);
	FW_ASSERT_EQ(inw(UNCLAIMED_PORT), 0xffff);
	FW_ASSERT_EQ(inl(UNCLAIMED_PORT), 0xffffffff);
	/* Writes to nobody vanish. */
	outl(UNCLAIMED_PORT, 0);
	FW_ASSERT_EQ(inl(UNCLAIMED_PORT), 0xffffffff);
}

/* Every width at every aligned offset of the 64-bit scratch register; the
 * counter (a read of it counts too) sees each access exactly once. */
static void test_scratch(void)
{
	uint32_t before = mmio_read32(COUNT), after;

	mmio_write64(SCRATCH, 0x1122334455667788ULL);
	FW_ASSERT_EQ(mmio_read64(SCRATCH), 0x1122334455667788ULL);
	mmio_write8(SCRATCH + 1, 0xaa);
	FW_ASSERT_EQ(mmio_read64(SCRATCH), 0x112233445566aa88ULL);
	mmio_write16(SCRATCH + 2, 0xbbcc);
	FW_ASSERT_EQ(mmio_read64(SCRATCH), 0x11223344bbccaa88ULL);
	mmio_write32(SCRATCH + 4, 0xddeeff00);
	FW_ASSERT_EQ(mmio_read64(SCRATCH), 0xddeeff00bbccaa88ULL);
	FW_ASSERT_EQ(mmio_read8(SCRATCH + 7), 0xdd);
	FW_ASSERT_EQ(mmio_read16(SCRATCH + 2), 0xbbcc);
	FW_ASSERT_EQ(mmio_read32(SCRATCH + 4), 0xddeeff00);
	FW_ASSERT_EQ(mmio_read32(SCRATCH), 0xbbccaa88);
	after = mmio_read32(COUNT);
	/* 4 writes + 8 reads above, and this read of the counter. */
	FW_ASSERT_EQ(after - before, 13);
}

static void test_unclaimed_mmio(void)
{
	FW_ASSERT_EQ(mmio_read8(UNCLAIMED_MMIO), 0xff);
	FW_ASSERT_EQ(mmio_read16(UNCLAIMED_MMIO), 0xffff);
	FW_ASSERT_EQ(mmio_read32(UNCLAIMED_MMIO), 0xffffffff);
	FW_ASSERT_EQ(mmio_read64(UNCLAIMED_MMIO), 0xffffffffffffffffULL);
	mmio_write32(UNCLAIMED_MMIO, 0);
	FW_ASSERT_EQ(mmio_read32(UNCLAIMED_MMIO), 0xffffffff);
	/* Unused offsets of the testdev window read all-ones as well. */
	FW_ASSERT_EQ(mmio_read32(LAYOUT_TESTDEV_MMIO_GPA + 0x100), 0xffffffff);
}

/* Sorted, non-overlapping map whose RAM covers our image and ends at the
 * size given as fw.mem=<MiB> on the command line (if given). */
static void test_memmap(const struct hvm_start_info *si)
{
	const struct hvm_memmap_entry *e = (const void *)(uintptr_t)si->memmap_paddr;
	uint64_t ram = 0, top = 0, end = 0, want_mib = fw_cmdline_u64("fw.mem", 0);
	bool image = false;

	FW_ASSERT(si->version >= 1);
	FW_ASSERT(si->memmap_entries > 0 && si->memmap_entries <= 128);
	FW_ASSERT(si->memmap_paddr && si->memmap_paddr < LAYOUT_HIMEM_GPA);
	for (uint32_t i = 0; i < si->memmap_entries; i++) {
		FW_ASSERT(e[i].addr >= end);
		FW_ASSERT(e[i].size > 0);
		end = e[i].addr + e[i].size;
		if (e[i].type != 1)
			continue;
		ram += e[i].size;
		top = end;
		if (e[i].addr <= LAYOUT_HIMEM_GPA && end >= (uintptr_t)&fw_start_info_gpa)
			image = true;
	}
	FW_ASSERT(image);
	if (want_mib)
		FW_ASSERT_EQ(top, want_mib << 20);
	fw_print("memory map: %u entries, %lu KiB RAM, top 0x%lx", si->memmap_entries, ram >> 10,
		 top);
}

static void test_start_info(void)
{
	const struct hvm_start_info *si = fw_start_info();
	const char *rsdp;

	if (!si)
		FW_FAIL("bad hvm_start_info at 0x%x", fw_start_info_gpa);
	test_memmap(si);
	FW_ASSERT(si->cmdline_paddr && si->cmdline_paddr < LAYOUT_HIMEM_GPA);
	fw_print("cmdline: '%s'", fw_cmdline());
	FW_ASSERT(si->rsdp_paddr >= LAYOUT_ACPI_GPA &&
		  si->rsdp_paddr < LAYOUT_ACPI_GPA + LAYOUT_ACPI_SIZE);
	rsdp = (const char *)(uintptr_t)si->rsdp_paddr;
	FW_ASSERT(!strncmp(rsdp, "RSD PTR ", 8));
}

void main(void)
{
	fw_printf("kvisor firmware: basic\n");
	fw_sync(1, "serial");
	test_ports();
	fw_sync(2, "ports");
	test_scratch();
	test_unclaimed_mmio();
	fw_sync(3, "mmio");
	test_start_info();
	fw_sync(4, "start info");
	test_string_io();
	fw_sync(7, "string io");
	fw_printf("basic: powering off\n");
	fw_poweroff();
}
