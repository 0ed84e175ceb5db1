/* 8250/16550A UART on COM1: the guest console. Output goes to the console
 * backend; host input is queued in a receive buffer shown as the RX FIFO. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "kvisor/config.h"
#include "kvisor/console.h"
#include "kvisor/device.h"
#include "kvisor/layout.h"
#include "kvisor/log.h"
#include "kvisor/serial.h"
#include "kvisor/vm.h"

enum {
	UART_RBR_THR = 0,
	UART_IER = 1,
	UART_IIR_FCR = 2,
	UART_LCR = 3,
	UART_MCR = 4,
	UART_LSR = 5,
	UART_MSR = 6,
	UART_SCR = 7,
};
#define IER_RDI   0x01
#define IER_THRI  0x02
#define IER_MSI   0x08
#define IIR_NONE  0x01
#define IIR_MSI   0x00
#define IIR_THRI  0x02
#define IIR_RDI   0x04
#define IIR_FIFO  0xc0
#define FCR_FIFO  0x01
#define FCR_CLRRX 0x02
#define LCR_DLAB  0x80
#define LSR_DR    0x01
#define LSR_THRE  0x20
#define LSR_TEMT  0x40
#define MCR_DTR   0x01
#define MCR_RTS   0x02
#define MCR_OUT1  0x04
#define MCR_OUT2  0x08
#define MCR_LOOP  0x10
#define MSR_CTS   0x10
#define MSR_DSR   0x20
#define MSR_RI    0x40
#define MSR_DCD   0x80
#define MSR_DELTA 0x0f

#define SERIAL_RX_SIZE 1024

struct serial8250 {
	struct vm *vm;
	pthread_mutex_t lock;
	uint8_t ier, lcr, mcr, msr, scr, fcr, dll, dlm;
	bool thr_irq; /* THR-empty interrupt pending */
	bool irq_level;
	uint8_t rx[SERIAL_RX_SIZE];
	size_t rx_head, rx_len;
	bool rx_was_full;
	int rx_efd;
};

static uint8_t serial_iir(const struct serial8250 *s)
{
	uint8_t fifo = (s->fcr & FCR_FIFO) ? IIR_FIFO : 0;

	if ((s->ier & IER_RDI) && s->rx_len)
		return IIR_RDI | fifo;
	if ((s->ier & IER_THRI) && s->thr_irq)
		return IIR_THRI | fifo;
	if ((s->ier & IER_MSI) && (s->msr & MSR_DELTA))
		return IIR_MSI | fifo;
	return IIR_NONE | fifo;
}

/* Called with the lock held after every state change. */
static void serial_update_irq(struct serial8250 *s)
{
	bool level = !(serial_iir(s) & IIR_NONE);

	if (level != s->irq_level) {
		s->irq_level = level;
		vm_irq_line(s->vm, LAYOUT_COM1_IRQ, level);
	}
}

static void serial_rx_push(struct serial8250 *s, uint8_t c)
{
	if (s->rx_len == SERIAL_RX_SIZE)
		return;
	s->rx[(s->rx_head + s->rx_len) % SERIAL_RX_SIZE] = c;
	s->rx_len++;
}

/* The receive buffer has room again: if the host stopped reading because
 * it was full, tell it to resume. */
static void serial_rx_room(struct serial8250 *s)
{
	uint64_t one = 1;

	if (!s->rx_was_full)
		return;
	s->rx_was_full = false;
	if (write(s->rx_efd, &one, sizeof(one)) < 0)
		log_debug("serial: rx wakeup: %s", strerror(errno));
}

static uint8_t serial_rx_pop(struct serial8250 *s)
{
	uint8_t c;

	if (!s->rx_len)
		return 0;
	c = s->rx[s->rx_head];
	s->rx_head = (s->rx_head + 1) % SERIAL_RX_SIZE;
	s->rx_len--;
	serial_rx_room(s);
	return c;
}

static uint8_t serial_msr(const struct serial8250 *s)
{
	uint8_t m = s->msr & MSR_DELTA;

	if (!(s->mcr & MCR_LOOP))
		return m | MSR_DCD | MSR_DSR | MSR_CTS;
	/* Loopback: modem outputs appear on the inputs (Linux probes this). */
	if (s->mcr & MCR_RTS)
		m |= MSR_CTS;
	if (s->mcr & MCR_DTR)
		m |= MSR_DSR;
	if (s->mcr & MCR_OUT1)
		m |= MSR_RI;
	if (s->mcr & MCR_OUT2)
		m |= MSR_DCD;
	return m;
}

static uint8_t serial_read_reg(struct serial8250 *s, unsigned reg)
{
	uint8_t v;

	switch (reg) {
	case UART_RBR_THR:
		return (s->lcr & LCR_DLAB) ? s->dll : serial_rx_pop(s);
	case UART_IER:
		return (s->lcr & LCR_DLAB) ? s->dlm : s->ier;
	case UART_IIR_FCR:
		v = serial_iir(s);
		if ((v & 0x0f) == IIR_THRI)
			s->thr_irq = false; /* reading IIR acknowledges THRE */
		return v;
	case UART_LCR:
		return s->lcr;
	case UART_MCR:
		return s->mcr;
	case UART_LSR:
		return LSR_THRE | LSR_TEMT | (s->rx_len ? LSR_DR : 0);
	case UART_MSR:
		v = serial_msr(s);
		s->msr &= ~MSR_DELTA;
		return v;
	default:
		return s->scr;
	}
}

static void serial_write_reg(struct serial8250 *s, unsigned reg, uint8_t v)
{
	switch (reg) {
	case UART_RBR_THR:
		if (s->lcr & LCR_DLAB) {
			s->dll = v;
			break;
		}
		if (s->mcr & MCR_LOOP)
			serial_rx_push(s, v);
		else
			console_write(s->vm->console, &v, 1);
		s->thr_irq = true; /* the byte left at once: THR is empty again */
		break;
	case UART_IER:
		if (s->lcr & LCR_DLAB) {
			s->dlm = v;
			break;
		}
		if (!(s->ier & IER_THRI) && (v & IER_THRI))
			s->thr_irq = true;
		s->ier = v & 0x0f;
		break;
	case UART_IIR_FCR:
		s->fcr = v & 0xc9;
		if (v & FCR_CLRRX) {
			s->rx_len = 0;
			serial_rx_room(s);
		}
		break;
	case UART_LCR:
		s->lcr = v;
		break;
	case UART_MCR:
		s->mcr = v & 0x1f;
		break;
	case UART_SCR:
		s->scr = v;
		break;
	default:
		break; /* LSR and MSR are read-only */
	}
}

static void serial_read(void *opaque, uint64_t off, void *data, uint32_t len)
{
	struct serial8250 *s = opaque;

	memset(data, 0xff, len);
	pthread_mutex_lock(&s->lock);
	*(uint8_t *)data = serial_read_reg(s, off);
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

static void serial_write(void *opaque, uint64_t off, const void *data, uint32_t len)
{
	struct serial8250 *s = opaque;

	pthread_mutex_lock(&s->lock);
	serial_write_reg(s, off, *(const uint8_t *)data);
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

static const struct bus_ops serial_ops = { .read = serial_read, .write = serial_write };

size_t serial_receive(struct serial8250 *s, const uint8_t *buf, size_t len)
{
	size_t n = 0;

	pthread_mutex_lock(&s->lock);
	while (n < len && s->rx_len < SERIAL_RX_SIZE)
		serial_rx_push(s, buf[n++]);
	if (s->rx_len == SERIAL_RX_SIZE)
		s->rx_was_full = true;
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return n;
}

size_t serial_rx_space(struct serial8250 *s)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = SERIAL_RX_SIZE - s->rx_len;
	if (!n)
		s->rx_was_full = true;
	pthread_mutex_unlock(&s->lock);
	return n;
}

int serial_rx_wakeup_fd(struct serial8250 *s)
{
	return s->rx_efd;
}

static int serial_create(struct vm *vm, const struct config_device *inst, void **state)
{
	struct serial8250 *s = calloc(1, sizeof(*s));
	int ret;

	if (!s)
		return -ENOMEM;
	s->vm = vm;
	pthread_mutex_init(&s->lock, NULL);
	s->rx_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->rx_efd < 0) {
		ret = -errno;
		goto err_free;
	}
	ret = bus_register(&vm->pio, LAYOUT_COM1_PORT, 8, &serial_ops, s);
	if (ret)
		goto err_close;
	vm->serial = s;
	*state = s;
	return 0;
err_close:
	close(s->rx_efd);
err_free:
	pthread_mutex_destroy(&s->lock);
	free(s);
	return ret;
}

static void serial_destroy(struct vm *vm, void *state)
{
	struct serial8250 *s = state;

	bus_unregister(&vm->pio, LAYOUT_COM1_PORT, s);
	if (vm->serial == s)
		vm->serial = NULL;
	close(s->rx_efd);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* One: it sits at COM1's fixed port and IRQ, and is the console. */
const struct device_type serial8250_type = {
	.name = "serial8250",
	.id_prefix = "serial",
	.machine = true,
	.max_instances = 1,
	.create = serial_create,
	.destroy = serial_destroy,
};
