/* COM1 output (8250 UART, kvisor's console): poll the line status register
 * until the transmitter holding register is empty, then write the byte. */
#include "fw.h"

#define UART_THR      0
#define UART_LSR      5
#define UART_LSR_THRE 0x20

void fw_putc(char c)
{
	unsigned spins = 0;

	if (c == '\n')
		fw_putc('\r');
	/* Bounded: an absent UART reads 0xff (THRE set) and a stuck one must not hang us. */
	while (!(inb(LAYOUT_COM1_PORT + UART_LSR) & UART_LSR_THRE) && ++spins < 100000)
		;
	outb(LAYOUT_COM1_PORT + UART_THR, (uint8_t)c);
}

void fw_puts(const char *s)
{
	while (*s)
		fw_putc(*s++);
}
