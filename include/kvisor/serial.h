/* 8250/16550A UART model (COM1 console). */
#ifndef KVISOR_SERIAL_H
#define KVISOR_SERIAL_H

#include <stddef.h>
#include <stdint.h>

struct serial8250;

/* Queue host input for the guest; returns how many bytes were taken (the
 * receive buffer may be full). Safe from any thread. */
size_t serial_receive(struct serial8250 *s, const uint8_t *buf, size_t len);

/* Free space in the receive buffer. */
size_t serial_rx_space(struct serial8250 *s);

/* An eventfd that becomes readable when the guest has drained a full
 * receive buffer (so the host may read more input). */
int serial_rx_wakeup_fd(struct serial8250 *s);

#endif
