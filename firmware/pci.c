/* PCI bus 0 from the guest's side: the MCFG table, type-1 probing as Linux
 * does it, config space through 0xCF8/0xCFC and ECAM, the --testdev PCI
 * function's BARs (sizing, access, moves) and MSI-X capability, MSI-X
 * interrupts through irqfd (vector and function masks, pending bits), and
 * the UART's IRQ 4 through the IOAPIC after MSI routes joined the table. */
#include "cpu.h"
#include "fw.h"
#include "kvisor/pci_testdev.h"

#define CONF1_ADDR  0xcf8
#define CONF1_DATA  0xcfc
#define ECAM        LAYOUT_PCI_ECAM_GPA
#define CFG_COMMAND 0x04
#define CFG_STATUS  0x06
#define CFG_CLASS   0x08 /* dword: class << 8 | revision */
#define CFG_HEADER  0x0e
#define CFG_BAR0    0x10
#define CFG_CAP_PTR 0x34
#define CMD_IO      0x1
#define CMD_MEM     0x2
#define CMD_MASTER  0x4
#define STATUS_CAPS 0x10
#define CAP_MSIX    0x11
#define MSIX_ENABLE 0x8000
#define MSIX_FMASK  0x4000
#define MOVED_BAR0  0xd0000000u

#define VEC_MSIX    0x40 /* 0x40 + vector */
#define VEC_UART    0x50
#define SPIN_TICKS  2000000000ULL /* bound on waiting for an interrupt */
#define QUIET_TICKS 20000000ULL   /* how long "no interrupt" is watched */

#define IOAPIC_SEL    LAYOUT_IOAPIC_GPA
#define IOAPIC_WIN    (LAYOUT_IOAPIC_GPA + 0x10)
#define IOAPIC_MASK   (1u << 16)
#define UART_IER      1
#define UART_IIR      2
#define UART_IER_THRI 0x02

static unsigned slot; /* the test function's */
static uint64_t regs, msix_bar;
static unsigned msix_cap;
static volatile unsigned msix_irqs[PCI_TESTDEV_VECTORS], uart_irqs;

/* ---- config space accessors -------------------------------------------- */

static uint32_t c1_addr(unsigned dev, unsigned reg)
{
	return 0x80000000u | dev << 11 | (reg & 0xfc);
}

static uint32_t c1_read32(unsigned dev, unsigned reg)
{
	outl(CONF1_ADDR, c1_addr(dev, reg));
	return inl(CONF1_DATA);
}

static uint16_t c1_read16(unsigned dev, unsigned reg)
{
	outl(CONF1_ADDR, c1_addr(dev, reg));
	return inw(CONF1_DATA + (reg & 2));
}

static uint8_t c1_read8(unsigned dev, unsigned reg)
{
	outl(CONF1_ADDR, c1_addr(dev, reg));
	return inb(CONF1_DATA + (reg & 3));
}

static void c1_write32(unsigned dev, unsigned reg, uint32_t v)
{
	outl(CONF1_ADDR, c1_addr(dev, reg));
	outl(CONF1_DATA, v);
}

static void c1_write16(unsigned dev, unsigned reg, uint16_t v)
{
	outl(CONF1_ADDR, c1_addr(dev, reg));
	outw(CONF1_DATA + (reg & 2), v);
}

static uint64_t ecam(unsigned bus, unsigned dev, unsigned reg)
{
	return ECAM + ((uint64_t)bus << 20 | dev << 15 | reg);
}

/* ---- tests ------------------------------------------------------------- */

struct mcfg {
	char sig[4];
	uint32_t length;
	uint8_t rest[28]; /* the other header fields */
	uint64_t reserved;
	uint64_t base;
	uint16_t segment;
	uint8_t start_bus, end_bus;
	uint32_t reserved2;
} __attribute__((packed));

static void test_mcfg(void)
{
	const struct mcfg *m = fw_acpi_table("MCFG");

	if (!m)
		FW_FAIL("no MCFG table");
	FW_ASSERT_EQ(m->length, sizeof(*m));
	FW_ASSERT_EQ(m->base, ECAM);
	FW_ASSERT_EQ(m->segment, 0);
	FW_ASSERT_EQ(m->start_bus, 0);
	FW_ASSERT_EQ(m->end_bus, 0);
	fw_sync(1, "mcfg");
}

/* Linux's pci_check_type1(), then the host bridge through both mechanisms. */
static void test_conf1(void)
{
	uint32_t saved;

	outb(0xcfb, 0x01);
	saved = inl(CONF1_ADDR);
	outl(CONF1_ADDR, 0x80000000);
	FW_ASSERT_EQ(inl(CONF1_ADDR), 0x80000000);
	outl(CONF1_ADDR, saved);
	FW_ASSERT_EQ(c1_read32(0, 0), 0x00081b36);
	FW_ASSERT_EQ(c1_read32(0, CFG_CLASS) >> 8, 0x060000);
	FW_ASSERT_EQ(c1_read8(0, CFG_HEADER), 0);
	FW_ASSERT_EQ(c1_read16(0, 2), 0x0008);
	FW_ASSERT_EQ(c1_read8(0, 1), 0x1b);
	/* Enable bit clear: the data port reads all-ones. */
	outl(CONF1_ADDR, c1_addr(0, 0) & ~0x80000000u);
	FW_ASSERT_EQ(inl(CONF1_DATA), 0xffffffff);
	fw_print("pci: host bridge %04x:%04x class %06x", c1_read16(0, 0), c1_read16(0, 2),
		 c1_read32(0, CFG_CLASS) >> 8);
	fw_sync(2, "conf1");
}

/* Every header dword of every slot reads the same both ways; absent slots,
 * functions and buses read all-ones. Finds the test function. */
static void test_ecam(void)
{
	for (unsigned dev = 0; dev < 32; dev++) {
		for (unsigned reg = 0; reg < 0x40; reg += 4)
			FW_ASSERT_EQ(mmio_read32(ecam(0, dev, reg)), c1_read32(dev, reg));
		if (c1_read32(dev, 0) == (PCI_TESTDEV_DEVICE_ID << 16 | PCI_TESTDEV_VENDOR_ID))
			slot = dev;
	}
	FW_ASSERT_EQ(mmio_read32(ecam(0, 0, 0x1000 | 0)), 0xffffffff); /* function 1 */
	FW_ASSERT_EQ(mmio_read32(ecam(1, 0, 0)), 0xffffffff);
	FW_ASSERT_EQ(mmio_read16(ecam(0, 0, 2)), 0x0008);
	/* An aligned qword is two dwords; a dword across a boundary is refused. */
	FW_ASSERT_EQ(mmio_read64(ecam(0, 0, 0)), (uint64_t)c1_read32(0, 4) << 32 | 0x00081b36);
	FW_ASSERT_EQ(mmio_read32(ecam(0, 0, 2)), 0xffffffff);
	if (!slot)
		FW_FAIL("no PCI test function (1b36:0005) on bus 0");
	fw_print("pci: test function at 00:%02x.0", slot);
	fw_sync(3, "ecam");
}

/* Sizing as Linux does it: decoding off, all-ones, read back, restore. */
static void test_bars(void)
{
	uint32_t bar[6], size[6];
	uint16_t cmd = c1_read16(slot, CFG_COMMAND);

	FW_ASSERT_EQ(cmd & (CMD_IO | CMD_MEM), CMD_IO | CMD_MEM); /* as firmware leaves it */
	c1_write16(slot, CFG_COMMAND, cmd & ~(CMD_IO | CMD_MEM));
	for (unsigned i = 0; i < 6; i++) {
		bar[i] = c1_read32(slot, CFG_BAR0 + 4 * i);
		c1_write32(slot, CFG_BAR0 + 4 * i, 0xffffffff);
		size[i] = c1_read32(slot, CFG_BAR0 + 4 * i);
		c1_write32(slot, CFG_BAR0 + 4 * i, bar[i]);
	}
	c1_write16(slot, CFG_COMMAND, cmd);
	FW_ASSERT_EQ(size[0], (uint32_t)-PCI_TESTDEV_REGS_SIZE);
	FW_ASSERT_EQ(size[1], (uint32_t)-PCI_TESTDEV_IO_SIZE | 1);
	FW_ASSERT_EQ(size[2], (uint32_t)-PCI_TESTDEV_MEM64_SIZE | 0xc);
	FW_ASSERT_EQ(size[3], 0xffffffff);
	FW_ASSERT_EQ(size[4], 0xfffff000); /* MSI-X: 4 KiB */
	FW_ASSERT_EQ(size[5], 0);
	FW_ASSERT(bar[0] >= LAYOUT_PCI_MMIO32_GPA && bar[0] < LAYOUT_PCI_MMIO32_END);
	FW_ASSERT_EQ(bar[0] % PCI_TESTDEV_REGS_SIZE, 0);
	FW_ASSERT((bar[1] & ~3u) >= 0x1000 && (bar[1] & ~3u) < 0x10000);
	FW_ASSERT_EQ(bar[3], 0);
	regs = bar[0];
	msix_bar = bar[4];
	fw_sync(4, "bar sizing");
}

static void test_bar_access(void)
{
	uint16_t io = (uint16_t)(c1_read32(slot, CFG_BAR0 + 4) & ~3u);
	uint64_t mem64 = c1_read32(slot, CFG_BAR0 + 8) & ~0xfu;
	uint32_t n;

	mmio_write32(regs + PCI_TESTDEV_SCRATCH, 0x5a5aa5a5);
	FW_ASSERT_EQ(mmio_read32(regs + PCI_TESTDEV_SCRATCH), 0x5a5aa5a5);
	n = mmio_read32(regs + PCI_TESTDEV_COUNT);
	FW_ASSERT_EQ(mmio_read32(regs + PCI_TESTDEV_COUNT), n + 1);
	outl(io, 0x11223344);
	FW_ASSERT_EQ(inl(io), 0x11223344);
	FW_ASSERT_EQ(inb(io + 2), 0x22);
	mmio_write64(mem64, 0x0102030405060708ULL);
	FW_ASSERT_EQ(mmio_read64(mem64), 0x0102030405060708ULL);
	FW_ASSERT_EQ(mmio_read16(mem64 + 6), 0x0102);
	fw_sync(5, "bar access");
}

/* A BAR moved through ECAM answers at the new address only; memory decode
 * off unmaps it. */
static void test_bar_move(void)
{
	uint64_t old = regs;

	mmio_write32(ecam(0, slot, CFG_BAR0), MOVED_BAR0);
	FW_ASSERT_EQ(c1_read32(slot, CFG_BAR0), MOVED_BAR0);
	regs = MOVED_BAR0;
	FW_ASSERT_EQ(mmio_read32(regs + PCI_TESTDEV_SCRATCH), 0x5a5aa5a5);
	FW_ASSERT_EQ(mmio_read32(old + PCI_TESTDEV_SCRATCH), 0xffffffff);
	c1_write16(slot, CFG_COMMAND, CMD_IO);
	FW_ASSERT_EQ(mmio_read32(regs + PCI_TESTDEV_SCRATCH), 0xffffffff);
	c1_write16(slot, CFG_COMMAND, CMD_IO | CMD_MEM);
	FW_ASSERT_EQ(mmio_read32(regs + PCI_TESTDEV_SCRATCH), 0x5a5aa5a5);
	fw_sync(6, "bar move");
}

static void test_caps(void)
{
	unsigned n = 0;

	FW_ASSERT(c1_read16(slot, CFG_STATUS) & STATUS_CAPS);
	for (unsigned p = c1_read8(slot, CFG_CAP_PTR); p; p = c1_read8(slot, p + 1)) {
		if (++n > 48 || p < 0x40 || (p & 3))
			FW_FAIL("bad capability pointer 0x%x", p);
		if (c1_read8(slot, p) == CAP_MSIX)
			msix_cap = p;
	}
	if (!msix_cap)
		FW_FAIL("no MSI-X capability");
	FW_ASSERT_EQ(c1_read16(slot, msix_cap + 2), PCI_TESTDEV_VECTORS - 1);
	FW_ASSERT_EQ(c1_read32(slot, msix_cap + 4), PCI_TESTDEV_MSIX_BAR); /* table at 0 */
	FW_ASSERT_EQ(c1_read32(slot, msix_cap + 8), 0x800 | PCI_TESTDEV_MSIX_BAR);
	fw_sync(7, "capabilities");
}

/* ---- interrupts -------------------------------------------------------- */

static bool on_msix(struct fw_frame *f)
{
	msix_irqs[f->vector - VEC_MSIX]++;
	fw_lapic_eoi();
	return true;
}

static bool on_uart(struct fw_frame *f)
{
	inb(LAYOUT_COM1_PORT + UART_IIR); /* acknowledges THRE: the line drops */
	uart_irqs++;
	fw_lapic_eoi();
	return true;
}

/* Wait with interrupts enabled until (*count) reaches (want). */
static bool wait_count(volatile unsigned *count, unsigned want, uint64_t ticks)
{
	uint64_t t0 = rdtsc();

	while (*count < want && rdtsc() - t0 < ticks)
		asm volatile("sti; nop; cli" ::: "memory");
	return *count >= want;
}

static void expect_irqs(unsigned vector, unsigned want)
{
	if (!wait_count(&msix_irqs[vector], want, SPIN_TICKS))
		FW_FAIL("MSI-X vector %u: %u interrupts, expected %u", vector, msix_irqs[vector],
			want);
	/* ... and no more than that. */
	wait_count(&msix_irqs[vector], want + 1, QUIET_TICKS);
	if (msix_irqs[vector] != want)
		FW_FAIL("MSI-X vector %u: %u interrupts, expected %u", vector, msix_irqs[vector],
			want);
}

static void msix_entry(unsigned v, unsigned vector, bool masked)
{
	uint64_t e = msix_bar + 16 * v;

	mmio_write32(e, 0xfee00000 | fw_apic_id() << 12); /* fixed, physical */
	mmio_write32(e + 4, 0);
	mmio_write32(e + 8, vector);
	mmio_write32(e + 12, masked);
}

static void notify(unsigned v)
{
	mmio_write32(regs + PCI_TESTDEV_NOTIFY, v);
}

static uint64_t pba(void)
{
	return mmio_read64(msix_bar + 0x800);
}

static void test_msix(void)
{
	for (unsigned v = 0; v < PCI_TESTDEV_VECTORS; v++)
		fw_set_trap_handler(VEC_MSIX + v, on_msix);
	/* Legacy PIC fully masked: only the LAPIC delivers. */
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
	fw_lapic_timer(0, 0); /* LAPIC software-enabled, its timer masked */
	/* Linux's order: enable with the function masked, program, unmask. */
	c1_write16(slot, CFG_COMMAND, CMD_IO | CMD_MEM | CMD_MASTER);
	c1_write16(slot, msix_cap + 2, MSIX_ENABLE | MSIX_FMASK);
	for (unsigned v = 0; v < PCI_TESTDEV_VECTORS; v++)
		msix_entry(v, VEC_MSIX + v, true);
	c1_write16(slot, msix_cap + 2, MSIX_ENABLE);
	FW_ASSERT_EQ(mmio_read32(msix_bar + 12), 1);
	mmio_write32(msix_bar + 12, 0);
	notify(0);
	expect_irqs(0, 1);
	/* One interrupt per notify when each is taken before the next (with
	 * IF clear the LAPIC's IRR would merge them, as on hardware). */
	for (unsigned i = 2; i <= 11; i++) {
		notify(0);
		expect_irqs(0, i);
	}
	fw_sync(8, "msix delivery");

	/* Masked vector: pending bit, delivered on unmask. */
	mmio_write32(msix_bar + 12, 1);
	notify(0);
	expect_irqs(0, 11);
	FW_ASSERT_EQ(pba(), 1);
	mmio_write32(msix_bar + 12, 0);
	expect_irqs(0, 12);
	FW_ASSERT_EQ(pba(), 0);
	/* Vectors 1-3 each on their own GSI. */
	for (unsigned v = 1; v < PCI_TESTDEV_VECTORS; v++) {
		mmio_write32(msix_bar + 16 * v + 12, 0);
		notify(v);
		expect_irqs(v, 1);
	}
	fw_sync(9, "msix mask and pending");

	/* Function mask: every vector holds its interrupt until cleared. */
	c1_write16(slot, msix_cap + 2, MSIX_ENABLE | MSIX_FMASK);
	notify(2);
	notify(3);
	expect_irqs(2, 1);
	FW_ASSERT_EQ(pba(), 0xc);
	c1_write16(slot, msix_cap + 2, MSIX_ENABLE);
	expect_irqs(2, 2);
	expect_irqs(3, 2);
	FW_ASSERT_EQ(pba(), 0);
	/* Bus mastering off holds them too. */
	c1_write16(slot, CFG_COMMAND, CMD_IO | CMD_MEM);
	notify(1);
	expect_irqs(1, 1);
	c1_write16(slot, CFG_COMMAND, CMD_IO | CMD_MEM | CMD_MASTER);
	expect_irqs(1, 2);
	fw_sync(10, "msix function mask");
}

static void ioapic_write(unsigned reg, uint32_t v)
{
	mmio_write32(IOAPIC_SEL, reg);
	mmio_write32(IOAPIC_WIN, v);
}

/* KVM_SET_GSI_ROUTING replaced the whole table when the MSI routes came:
 * the UART's GSI 4 must still reach IOAPIC pin 4. */
static void test_uart_irq(void)
{
	fw_set_trap_handler(VEC_UART, on_uart);
	ioapic_write(0x10 + 2 * LAYOUT_COM1_IRQ + 1, fw_apic_id() << 24);
	ioapic_write(0x10 + 2 * LAYOUT_COM1_IRQ, VEC_UART); /* fixed, edge, high, unmasked */
	outb(LAYOUT_COM1_PORT + UART_IER, UART_IER_THRI);   /* THR is empty: raises IRQ 4 */
	if (!wait_count(&uart_irqs, 1, SPIN_TICKS))
		FW_FAIL("no UART interrupt through IOAPIC pin %u", LAYOUT_COM1_IRQ);
	outb(LAYOUT_COM1_PORT + UART_IER, 0);
	ioapic_write(0x10 + 2 * LAYOUT_COM1_IRQ, IOAPIC_MASK);
	fw_print("pci: %u UART interrupts", uart_irqs);
	fw_sync(11, "uart irq after msi routes");
}

void main(void)
{
	fw_printf("kvisor firmware: pci\n");
	test_mcfg();
	test_conf1();
	test_ecam();
	test_bars();
	test_bar_access();
	test_bar_move();
	test_caps();
	test_msix();
	test_uart_irq();
}
