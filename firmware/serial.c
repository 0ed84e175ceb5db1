/* COM1 as Linux's 8250 driver probes it (scratch, LCR, divisor latch, FIFO,
 * loopback, THRE interrupt); or host input: fw.rx=echo prints a line read
 * from it, fw.rx=drain|clear count a long line (clear: after an FCR reset). */
#include "fw.h"

#define COM1 LAYOUT_COM1_PORT
enum { RBR = 0, IER = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };
#define LSR_DR   0x01
#define RX_TICKS 20000000000ULL /* >= 5 s at <= 4 GHz */

static uint8_t rd(unsigned reg)
{
	return inb(COM1 + reg);
}

static void wr(unsigned reg, uint8_t v)
{
	outb(COM1 + reg, v);
}

static void test_registers(void)
{
	wr(SCR, 0xa5);
	FW_ASSERT_EQ(rd(SCR), 0xa5);
	wr(SCR, 0x5a);
	FW_ASSERT_EQ(rd(SCR), 0x5a);
	/* Divisor latch behind LCR.DLAB, then back to 8N1. */
	wr(LCR, 0x80 | 0x03);
	wr(RBR, 0x0c);
	wr(IER, 0x00);
	FW_ASSERT_EQ(rd(RBR), 0x0c);
	FW_ASSERT_EQ(rd(IER), 0x00);
	wr(LCR, 0x03);
	FW_ASSERT_EQ(rd(LCR), 0x03);
	wr(IER, 0x0f);
	FW_ASSERT_EQ(rd(IER), 0x0f);
	wr(IER, 0);
	/* FIFO: IIR bits 7:6 = 3 is a 16550A; none pending = bit 0. */
	wr(FCR, 0x07);
	FW_ASSERT_EQ(rd(IIR), 0xc1);
	wr(FCR, 0);
	FW_ASSERT_EQ(rd(IIR), 0x01);
	/* Loopback: OUT2|RTS -> DCD|CTS, all four outputs -> all inputs. */
	wr(MCR, 0x10 | 0x0a);
	FW_ASSERT_EQ(rd(MSR) & 0xf0, 0x90);
	wr(MCR, 0x10 | 0x0f);
	FW_ASSERT_EQ(rd(MSR) & 0xf0, 0xf0);
	/* A byte sent in loopback comes back as received data. */
	wr(RBR, 'L');
	FW_ASSERT(rd(LSR) & LSR_DR);
	FW_ASSERT_EQ(rd(RBR), 'L');
	FW_ASSERT(!(rd(LSR) & LSR_DR));
	wr(MCR, 0x0b);
	/* Enabling the THRE interrupt with THR empty raises it; reading IIR
	 * acknowledges it. */
	wr(IER, 0x02);
	FW_ASSERT_EQ(rd(IIR), 0x02);
	FW_ASSERT_EQ(rd(IIR), 0x01);
	wr(IER, 0);
}

/* One byte of host input, or -1 after RX_TICKS without any. */
static int rx_byte(void)
{
	uint64_t t0 = rdtsc();

	while (!(rd(LSR) & LSR_DR)) {
		if (rdtsc() - t0 > RX_TICKS)
			return -1;
	}
	return rd(RBR);
}

static void rx_echo(void)
{
	char line[128];
	unsigned n = 0;
	int c;

	while ((c = rx_byte()) >= 0 && c != '\n' && n + 1 < sizeof(line))
		line[n++] = (char)c;
	line[n] = '\0';
	if (c < 0)
		FW_FAIL("no newline from the host after '%s'", line);
	fw_print("rx: '%s'", line);
}

/* Bytes up to and including the next newline. */
static unsigned rx_count(const char *what)
{
	unsigned n = 0;
	int c;

	while ((c = rx_byte()) >= 0 && c != '\n')
		n++;
	if (c < 0)
		FW_FAIL("host input stopped %s (%u bytes)", what, n);
	return n + 1;
}

/* With (clear): let the host fill the RX buffer (~1 s), drop it with an
 * FCR write, then count what still arrives up to the final newline. */
static void rx_bulk(bool clear)
{
	uint64_t t0 = rdtsc();

	while (!(rd(LSR) & LSR_DR)) {
		if (rdtsc() - t0 > RX_TICKS)
			FW_FAIL("no host input");
	}
	for (t0 = rdtsc(); rdtsc() - t0 < 2000000000ULL;)
		;
	/* No check that the FIFO reads empty after the clear: the host may
	 * refill it as soon as there is room, between the two accesses. */
	if (clear)
		wr(FCR, 0x07);
	fw_print("rx %s: %u bytes", clear ? "after fifo clear" : "drained",
		 rx_count(clear ? "after the FIFO clear" : "while draining"));
}

void main(void)
{
	fw_printf("kvisor firmware: serial\n");
	/* The register test clears the FIFO and uses loopback: host input
	 * would be lost or mixed in, so it runs only without fw.rx. */
	if (fw_cmdline_is("fw.rx", "echo")) {
		rx_echo();
	} else if (fw_cmdline_is("fw.rx", "clear") || fw_cmdline_is("fw.rx", "drain")) {
		rx_bulk(fw_cmdline_is("fw.rx", "clear"));
	} else {
		test_registers();
		fw_sync(1, "registers");
	}
}
