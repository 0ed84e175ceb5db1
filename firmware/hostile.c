/* A misbehaving guest against the test device: messages outside or across
 * the end of RAM, bad magic, bad or overlong strings, unknown types, wrong
 * sizes. kvisor must warn or degrade the text, and keep running. */
#include "fw.h"

static uint64_t ram_top(void)
{
	const struct hvm_start_info *si = fw_start_info();
	const struct hvm_memmap_entry *e = (const void *)(uintptr_t)si->memmap_paddr;
	uint64_t top = 0;

	for (uint32_t i = 0; i < si->memmap_entries; i++)
		if (e[i].type == 1 && e[i].addr + e[i].size <= LAYOUT_MMIO_HOLE_GPA)
			top = e[i].addr + e[i].size;
	return top;
}

static void send(const struct testdev_msg *m)
{
	outl(LAYOUT_TESTDEV_PORT, (uint32_t)(uintptr_t)m);
}

void main(void)
{
	uint64_t top = ram_top();
	struct testdev_msg m = { .magic = TESTDEV_MAGIC, .type = TESTDEV_SYNC };
	struct testdev_msg *edge = (void *)(uintptr_t)(top - 8);
	char *tail = (char *)(uintptr_t)(top - 4);
	char long_text[300];

	fw_printf("kvisor firmware: hostile\n");
	fw_print("ram top 0x%lx", top);
	/* The message itself outside RAM, across its end, with a bad magic. */
	outl(LAYOUT_TESTDEV_PORT, 0x3ffff000);
	*edge = m;
	send(edge);
	m.magic = 0x12345678;
	fw_print("bad magic at 0x%lx", (uintptr_t)&m);
	send(&m);
	m.magic = TESTDEV_MAGIC;
	/* Strings: outside RAM, running off its end, longer than the limit. */
	m.arg = 1;
	m.msg_gpa = 0x3ffff000;
	send(&m);
	memcpy(tail, "abcd", 4);
	m.arg = 2;
	m.msg_gpa = (uintptr_t)tail;
	send(&m);
	memset(long_text, 'x', sizeof(long_text));
	m.arg = 3;
	m.msg_gpa = (uintptr_t)long_text;
	send(&m);
	/* An unknown type; then sizes the port ignores. */
	m.type = 99;
	send(&m);
	m.type = TESTDEV_SYNC;
	m.arg = 4;
	m.msg_gpa = (uintptr_t) "not sent";
	outb(LAYOUT_TESTDEV_PORT, (uint8_t)(uintptr_t)&m);
	outw(LAYOUT_TESTDEV_PORT, (uint16_t)(uintptr_t)&m);
	/* MMIO beyond the scratch register and across the window's end. */
	FW_ASSERT_EQ(mmio_read64(LAYOUT_TESTDEV_MMIO_GPA + 4), ~0ULL);
	FW_ASSERT_EQ(mmio_read64(LAYOUT_TESTDEV_MMIO_GPA + LAYOUT_TESTDEV_MMIO_LEN - 4), ~0ULL);
	mmio_write64(LAYOUT_TESTDEV_MMIO_GPA + 4, 0);
	fw_sync(5, "still running");
}
