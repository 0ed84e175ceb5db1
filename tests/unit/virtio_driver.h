/* A virtio PCI driver played from the host side, for the unit tests of the
 * transport and of virtio devices: a VM without KVM (mock routing, irqfd and
 * ioeventfd calls), config space through ECAM, BAR accesses through the MMIO
 * bus, split rings written into guest RAM, MSI-X vectors read as eventfds.
 * Written from the spec (virtio 1.2, 2.7 and 4.1), not from the device code. */
#ifndef KVISOR_TESTS_VIRTIO_DRIVER_H
#define KVISOR_TESTS_VIRTIO_DRIVER_H

#include <errno.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kvisor/bus.h"
#include "kvisor/config.h"
#include "kvisor/evloop.h"
#include "kvisor/irq.h"
#include "kvisor/layout.h"
#include "kvisor/mem.h"
#include "kvisor/pci.h"
#include "kvisor/virtio.h"
#include "kvisor/virtio_pci.h"
#include "kvisor/vm.h"

#define TD_RAM            (64ULL << 20)
#define TD_RING_GPA       0x100000ULL  /* device n's queue q: + n MiB + q * 64 KiB */
#define TD_HEAP_GPA       0x1000000ULL /* buffers from here */
#define TD_MAX_QUEUES     16
#define TD_MAX_IOEVENTFDS 64
#define TD_TIMEOUT_MS     5000
#define TD_MSI_DATA       0x40 /* vector v's message data: TD_MSI_DATA + v */

#define TD_F_NEXT     1
#define TD_F_WRITE    2
#define TD_F_INDIRECT 4

/* What the mock "KVM" was told. */
static struct {
	int fd_of_gsi[IRQ_MAX_GSI];
	unsigned nr;
	struct kvm_irq_routing_entry routes[512];
	struct {
		uint64_t addr;
		uint32_t len;
		int fd;
		bool on;
	} ioeventfds[TD_MAX_IOEVENTFDS];
	unsigned nr_ioeventfds;
	int ioeventfd_err; /* fail binds with this -errno */
} td_kvm;

static inline int td_set_routing(struct vm *vm, const struct kvm_irq_routing *t)
{
	ck_assert_uint_le(t->nr, 512);
	td_kvm.nr = t->nr;
	memcpy(td_kvm.routes, t->entries, t->nr * sizeof(t->entries[0]));
	return 0;
}

static inline int td_irqfd(struct vm *vm, unsigned gsi, int fd, bool assign)
{
	ck_assert_uint_lt(gsi, IRQ_MAX_GSI);
	td_kvm.fd_of_gsi[gsi] = assign ? fd : -1;
	return 0;
}

static inline int td_ioeventfd(struct vm *vm, uint64_t addr, uint32_t len, int fd, bool assign)
{
	if (assign) {
		if (td_kvm.ioeventfd_err)
			return td_kvm.ioeventfd_err;
		for (unsigned i = 0; i < td_kvm.nr_ioeventfds; i++)
			ck_assert_msg(!td_kvm.ioeventfds[i].on || td_kvm.ioeventfds[i].addr != addr,
				      "ioeventfd at 0x%llx bound twice", (unsigned long long)addr);
		ck_assert_uint_lt(td_kvm.nr_ioeventfds, TD_MAX_IOEVENTFDS);
		td_kvm.ioeventfds[td_kvm.nr_ioeventfds].addr = addr;
		td_kvm.ioeventfds[td_kvm.nr_ioeventfds].len = len;
		td_kvm.ioeventfds[td_kvm.nr_ioeventfds].fd = fd;
		td_kvm.ioeventfds[td_kvm.nr_ioeventfds++].on = true;
		return 0;
	}
	for (unsigned i = 0; i < td_kvm.nr_ioeventfds; i++) {
		if (td_kvm.ioeventfds[i].on && td_kvm.ioeventfds[i].addr == addr &&
		    td_kvm.ioeventfds[i].fd == fd) {
			td_kvm.ioeventfds[i].on = false;
			return 0;
		}
	}
	ck_abort_msg("unbind of an ioeventfd never bound (0x%llx)", (unsigned long long)addr);
	return -ENOENT;
}

/* The bound ioeventfd at (addr), or -1. */
static inline int td_ioeventfd_at(uint64_t addr)
{
	for (unsigned i = 0; i < td_kvm.nr_ioeventfds; i++)
		if (td_kvm.ioeventfds[i].on && td_kvm.ioeventfds[i].addr == addr)
			return td_kvm.ioeventfds[i].fd;
	return -1;
}

static const struct irq_kvm_ops td_irq_ops = { .set_routing = td_set_routing, .irqfd = td_irqfd };

static struct vm td_vm;
static struct vm_config td_cfg;
static uint64_t td_heap;
static unsigned td_probed; /* devices probed: each gets its MiB for rings */

/* A VM with buses, RAM, PCI bus 0 and the I/O loop; td_cfg is its config. */
static inline void td_vm_setup(void)
{
	memset(&td_kvm, 0, sizeof(td_kvm));
	memset(&td_vm, 0, sizeof(td_vm));
	td_vm.kvm_fd = td_vm.vm_fd = td_vm.stop_efd = -1;
	td_vm.cfg = &td_cfg;
	virtio_pci_set_ioeventfd_fn(td_ioeventfd);
	ck_assert_int_eq(bus_init(&td_vm.pio, "pio"), 0);
	ck_assert_int_eq(bus_init(&td_vm.mmio, "mmio"), 0);
	ck_assert_int_eq(mem_init(&td_vm.mem, TD_RAM), 0);
	ck_assert_int_eq(irq_init(&td_vm, &td_irq_ops), 0);
	ck_assert_int_eq(pci_init(&td_vm), 0);
	ck_assert_int_eq(evloop_create(&td_vm.io, "io"), 0);
	td_heap = TD_HEAP_GPA;
	td_probed = 0;
}

/* After the devices were destroyed. */
static inline void td_vm_teardown(void)
{
	pci_destroy(&td_vm);
	evloop_destroy(td_vm.io);
	irq_destroy(&td_vm);
	mem_destroy(&td_vm.mem);
	bus_destroy(&td_vm.mmio);
	bus_destroy(&td_vm.pio);
	virtio_pci_set_ioeventfd_fn(NULL);
}

static inline uint8_t *td_hva(uint64_t gpa)
{
	ck_assert_uint_lt(gpa, td_vm.mem.regions[0].size);
	return td_vm.mem.regions[0].hva + gpa;
}

/* (len) bytes of guest RAM, 16-byte aligned, zeroed. */
static inline uint64_t td_alloc(uint64_t len)
{
	uint64_t gpa = td_heap;

	td_heap = (td_heap + len + 15) & ~15ULL;
	ck_assert_uint_lt(td_heap, TD_RAM);
	memset(td_hva(gpa), 0, len);
	return gpa;
}

/* (len) bytes aligned to (align), a power of 2 (O_DIRECT buffers). */
static inline uint64_t td_alloc_aligned(uint64_t len, uint64_t align)
{
	td_heap = (td_heap + align - 1) & ~(align - 1);
	return td_alloc(len);
}

/* --- config space and BARs --------------------------------------------- */

static inline uint32_t td_cfg_read(unsigned slot, unsigned reg, unsigned len)
{
	uint32_t v = 0;

	ck_assert(bus_access(&td_vm.mmio, LAYOUT_PCI_ECAM_GPA + ((uint64_t)slot << 15) + reg, &v,
			     len, false));
	return v;
}

static inline void td_cfg_write(unsigned slot, unsigned reg, unsigned len, uint32_t v)
{
	ck_assert(bus_access(&td_vm.mmio, LAYOUT_PCI_ECAM_GPA + ((uint64_t)slot << 15) + reg, &v,
			     len, true));
}

static inline uint64_t td_mmio_read(uint64_t addr, unsigned len)
{
	uint64_t v = 0;

	ck_assert(bus_access(&td_vm.mmio, addr, &v, len, false));
	return v;
}

static inline void td_mmio_write(uint64_t addr, unsigned len, uint64_t v)
{
	ck_assert(bus_access(&td_vm.mmio, addr, &v, len, true));
}

struct td_queue {
	uint16_t size;
	uint64_t desc, avail, used;
	uint16_t avail_idx; /* next avail entry */
	uint16_t used_seen; /* used entries consumed by the test */
	uint16_t next_desc;
};

struct td_dev {
	unsigned slot;
	uint64_t rings;
	uint64_t bar0, msix_bar;
	uint64_t common, isr, device, notify; /* guest physical addresses */
	uint32_t notify_mult, notify_len, device_len;
	unsigned cfg_cap, msix_cap, nr_vectors;
	uint16_t nr_queues;
	uint64_t features;
	struct td_queue q[TD_MAX_QUEUES];
};

static inline uint64_t td_bar_addr(unsigned slot, unsigned bar)
{
	uint32_t lo = td_cfg_read(slot, PCI_CFG_BAR0 + 4 * bar, 4);
	uint64_t a = lo & ~0xfu;

	if ((lo & 0x6) == 0x4)
		a |= (uint64_t)td_cfg_read(slot, PCI_CFG_BAR0 + 4 * bar + 4, 4) << 32;
	return a;
}

/* Find the (n)th function with (device_id) and read its capabilities, as
 * virtio_pci_modern_dev.c does. */
static inline void td_probe(struct td_dev *d, uint16_t device_id, unsigned n)
{
	unsigned slot, found = 0;

	memset(d, 0, sizeof(*d));
	for (slot = 1; slot < PCI_SLOTS; slot++) {
		if (td_cfg_read(slot, 0, 4) == ((uint32_t)device_id << 16 | VIRTIO_PCI_VENDOR_ID) &&
		    found++ == n)
			break;
	}
	ck_assert_msg(slot < PCI_SLOTS, "virtio function %04x #%u not found", device_id, n);
	d->slot = slot;
	d->rings = TD_RING_GPA + (1ULL << 20) * td_probed++;
	ck_assert_uint_le(d->rings + (1ULL << 20), TD_HEAP_GPA);
	d->bar0 = td_bar_addr(slot, VIRTIO_PCI_BAR);
	ck_assert_uint_ne(d->bar0, 0);
	for (unsigned cap = td_cfg_read(slot, PCI_CFG_CAP_PTR, 1); cap;
	     cap = td_cfg_read(slot, cap + 1, 1)) {
		unsigned id = td_cfg_read(slot, cap, 1), type = td_cfg_read(slot, cap + 3, 1);
		uint32_t off = td_cfg_read(slot, cap + 8, 4), len = td_cfg_read(slot, cap + 12, 4);

		if (id == PCI_CAP_MSIX) {
			d->msix_cap = cap;
			d->nr_vectors = (td_cfg_read(slot, cap + 2, 2) & 0x7ff) + 1;
			d->msix_bar = td_bar_addr(slot, td_cfg_read(slot, cap + 4, 4) & 7);
			continue;
		}
		if (id != PCI_CAP_VENDOR)
			continue;
		if (type != VIRTIO_PCI_CAP_PCI_CFG)
			ck_assert_uint_eq(td_cfg_read(slot, cap + 4, 1), VIRTIO_PCI_BAR);
		switch (type) {
		case VIRTIO_PCI_CAP_COMMON_CFG:
			d->common = d->bar0 + off;
			break;
		case VIRTIO_PCI_CAP_ISR_CFG:
			d->isr = d->bar0 + off;
			break;
		case VIRTIO_PCI_CAP_DEVICE_CFG:
			d->device = d->bar0 + off;
			d->device_len = len;
			break;
		case VIRTIO_PCI_CAP_NOTIFY_CFG:
			d->notify = d->bar0 + off;
			d->notify_len = len;
			d->notify_mult = td_cfg_read(slot, cap + 16, 4);
			break;
		case VIRTIO_PCI_CAP_PCI_CFG:
			d->cfg_cap = cap;
			break;
		}
	}
	ck_assert(d->common && d->isr && d->notify && d->cfg_cap && d->msix_cap);
}

static inline uint64_t td_common_read(struct td_dev *d, unsigned off, unsigned len)
{
	return td_mmio_read(d->common + off, len);
}

static inline void td_common_write(struct td_dev *d, unsigned off, unsigned len, uint64_t v)
{
	td_mmio_write(d->common + off, len, v);
}

static inline uint8_t td_status(struct td_dev *d)
{
	return (uint8_t)td_common_read(d, VIRTIO_PCI_COMMON_STATUS, 1);
}

static inline void td_set_status(struct td_dev *d, uint8_t s)
{
	td_common_write(d, VIRTIO_PCI_COMMON_STATUS, 1, s);
}

static inline uint64_t td_device_features(struct td_dev *d)
{
	uint64_t f;

	td_common_write(d, VIRTIO_PCI_COMMON_DFSELECT, 4, 0);
	f = td_common_read(d, VIRTIO_PCI_COMMON_DF, 4);
	td_common_write(d, VIRTIO_PCI_COMMON_DFSELECT, 4, 1);
	return f | td_common_read(d, VIRTIO_PCI_COMMON_DF, 4) << 32;
}

static inline void td_driver_features(struct td_dev *d, uint64_t f)
{
	td_common_write(d, VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
	td_common_write(d, VIRTIO_PCI_COMMON_GF, 4, (uint32_t)f);
	td_common_write(d, VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
	td_common_write(d, VIRTIO_PCI_COMMON_GF, 4, f >> 32);
}

/* MSI-X on: every vector unmasked, message data TD_MSI_DATA + vector. */
static inline void td_msix_enable(struct td_dev *d)
{
	for (unsigned v = 0; v < d->nr_vectors; v++) {
		td_mmio_write(d->msix_bar + 16 * v, 4, 0xfee00000);
		td_mmio_write(d->msix_bar + 16 * v + 4, 4, 0);
		td_mmio_write(d->msix_bar + 16 * v + 8, 4, TD_MSI_DATA + v);
		td_mmio_write(d->msix_bar + 16 * v + 12, 4, 0);
	}
	td_cfg_write(d->slot, PCI_CFG_COMMAND, 2,
		     td_cfg_read(d->slot, PCI_CFG_COMMAND, 2) | PCI_CMD_BUS_MASTER);
	td_cfg_write(d->slot, d->msix_cap + PCI_MSIX_CTRL, 2, PCI_MSIX_CTRL_ENABLE);
}

/* Interrupts delivered on (vector) since the last call. */
static inline uint64_t td_irqs(unsigned vector)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < td_kvm.nr; i++) {
		const struct kvm_irq_routing_entry *e = &td_kvm.routes[i];

		if (e->type == KVM_IRQ_ROUTING_MSI && e->u.msi.data == TD_MSI_DATA + vector) {
			int fd = td_kvm.fd_of_gsi[e->gsi];

			ck_assert_int_ge(fd, 0);
			if (read(fd, &n, sizeof(n)) != sizeof(n))
				n = 0; /* EAGAIN: none */
			return n;
		}
	}
	ck_abort_msg("vector %u has no MSI route", vector);
	return 0;
}

/* Set up queue (qi) of (size) entries on the device's rings; vector = qi + 1. */
static inline void td_queue_setup(struct td_dev *d, unsigned qi, uint16_t size)
{
	struct td_queue *q = &d->q[qi];
	uint64_t base = d->rings + 0x10000ULL * qi;

	memset(q, 0, sizeof(*q));
	q->size = size;
	q->desc = base;
	q->avail = base + 0x4000;
	q->used = base + 0x8000;
	memset(td_hva(base), 0, 0x10000);
	td_common_write(d, VIRTIO_PCI_COMMON_Q_SELECT, 2, qi);
	ck_assert_uint_eq(td_common_read(d, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
	ck_assert_uint_eq(td_common_read(d, VIRTIO_PCI_COMMON_Q_NOFF, 2), qi);
	td_common_write(d, VIRTIO_PCI_COMMON_Q_SIZE, 2, size);
	td_common_write(d, VIRTIO_PCI_COMMON_Q_DESC, 4, (uint32_t)q->desc);
	td_common_write(d, VIRTIO_PCI_COMMON_Q_DESC + 4, 4, q->desc >> 32);
	td_common_write(d, VIRTIO_PCI_COMMON_Q_AVAIL, 4, (uint32_t)q->avail);
	td_common_write(d, VIRTIO_PCI_COMMON_Q_AVAIL + 4, 4, q->avail >> 32);
	td_common_write(d, VIRTIO_PCI_COMMON_Q_USED, 4, (uint32_t)q->used);
	td_common_write(d, VIRTIO_PCI_COMMON_Q_USED + 4, 4, q->used >> 32);
	td_common_write(d, VIRTIO_PCI_COMMON_Q_MSIX, 2, qi + 1);
	ck_assert_uint_eq(td_common_read(d, VIRTIO_PCI_COMMON_Q_MSIX, 2), qi + 1);
	td_common_write(d, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
	ck_assert_uint_eq(td_common_read(d, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 1);
}

/* The Linux sequence (3.1.1): reset, ACKNOWLEDGE, DRIVER, features,
 * FEATURES_OK, MSI-X, (nq) queues of (size), DRIVER_OK. */
static inline void td_init(struct td_dev *d, uint64_t features, unsigned nq, uint16_t size)
{
	td_set_status(d, 0);
	ck_assert_uint_eq(td_status(d), 0);
	td_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE);
	td_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	ck_assert_uint_eq(features & ~td_device_features(d), 0);
	td_driver_features(d, features);
	d->features = features;
	td_set_status(d,
		      VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	ck_assert(td_status(d) & VIRTIO_STATUS_FEATURES_OK);
	td_msix_enable(d);
	td_common_write(d, VIRTIO_PCI_COMMON_MSIX, 2, 0);
	ck_assert_uint_eq(td_common_read(d, VIRTIO_PCI_COMMON_MSIX, 2), 0);
	d->nr_queues = (uint16_t)td_common_read(d, VIRTIO_PCI_COMMON_NUMQ, 2);
	ck_assert_uint_le(nq, d->nr_queues);
	for (unsigned i = 0; i < nq; i++)
		td_queue_setup(d, i, size);
	td_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				 VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	ck_assert_uint_eq(td_status(d), VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
						VIRTIO_STATUS_FEATURES_OK |
						VIRTIO_STATUS_DRIVER_OK);
	td_irqs(0); /* forget what setup raised */
}

/* --- rings ------------------------------------------------------------ */

struct td_buf {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

static inline void td_put_desc(uint64_t table, unsigned i, uint64_t addr, uint32_t len,
			       uint16_t flags, uint16_t next)
{
	uint8_t *p = td_hva(table + 16ULL * i);

	memcpy(p, &addr, 8);
	memcpy(p + 8, &len, 4);
	memcpy(p + 12, &flags, 2);
	memcpy(p + 14, &next, 2);
}

/* Make (head) available on queue (qi) (not kicked). */
static inline void td_avail(struct td_dev *d, unsigned qi, uint16_t head)
{
	struct td_queue *q = &d->q[qi];

	__atomic_store_n((uint16_t *)td_hva(q->avail + 4 + 2ULL * (q->avail_idx % q->size)), head,
			 __ATOMIC_RELAXED);
	q->avail_idx++;
	__atomic_store_n((uint16_t *)td_hva(q->avail + 2), q->avail_idx, __ATOMIC_RELEASE);
}

/* Add a chain of (n) direct descriptors; returns its head. */
static inline uint16_t td_add(struct td_dev *d, unsigned qi, const struct td_buf *b, unsigned n)
{
	struct td_queue *q = &d->q[qi];
	uint16_t head = q->next_desc;

	for (unsigned i = 0; i < n; i++) {
		uint16_t idx = (uint16_t)((head + i) % q->size);

		td_put_desc(q->desc, idx, b[i].gpa, b[i].len,
			    (uint16_t)((b[i].write ? TD_F_WRITE : 0) | (i + 1 < n ? TD_F_NEXT : 0)),
			    (uint16_t)((idx + 1) % q->size));
	}
	q->next_desc = (uint16_t)((head + n) % q->size);
	td_avail(d, qi, head);
	return head;
}

/* Add a chain of (n) buffers through one indirect table. */
static inline uint16_t td_add_indirect(struct td_dev *d, unsigned qi, const struct td_buf *b,
				       unsigned n)
{
	struct td_queue *q = &d->q[qi];
	uint64_t table = td_alloc(16ULL * n);
	uint16_t head = q->next_desc;

	for (unsigned i = 0; i < n; i++)
		td_put_desc(table, i, b[i].gpa, b[i].len,
			    (uint16_t)((b[i].write ? TD_F_WRITE : 0) | (i + 1 < n ? TD_F_NEXT : 0)),
			    (uint16_t)(i + 1));
	td_put_desc(q->desc, head, table, 16 * n, TD_F_INDIRECT, 0);
	q->next_desc = (uint16_t)((head + 1) % q->size);
	td_avail(d, qi, head);
	return head;
}

/* Ring queue (qi)'s doorbell as Linux does (a 16-bit write of its index);
 * through its ioeventfd when one is bound, as KVM would. */
static inline void td_kick(struct td_dev *d, unsigned qi)
{
	uint64_t addr = d->notify + (uint64_t)d->notify_mult * qi, one = 1;
	int fd = td_ioeventfd_at(addr);

	if (fd >= 0)
		ck_assert_int_eq(write(fd, &one, sizeof(one)), sizeof(one));
	else
		td_mmio_write(addr, 2, qi);
}

static inline uint16_t td_used_idx(struct td_dev *d, unsigned qi)
{
	return __atomic_load_n((uint16_t *)td_hva(d->q[qi].used + 2), __ATOMIC_ACQUIRE);
}

/* The device's used ring flags of queue (qi) (VIRTQ_USED_F_NO_NOTIFY: 1). */
static inline uint16_t td_used_flags(struct td_dev *d, unsigned qi)
{
	return __atomic_load_n((uint16_t *)td_hva(d->q[qi].used), __ATOMIC_ACQUIRE);
}

/* The device's avail_event (EVENT_IDX) of queue (qi). */
static inline uint16_t td_avail_event(struct td_dev *d, unsigned qi)
{
	return __atomic_load_n((uint16_t *)td_hva(d->q[qi].used + 4 + 8ULL * d->q[qi].size),
			       __ATOMIC_ACQUIRE);
}

static inline void td_sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Wait until (n) more chains are used on (qi); false on timeout. */
static inline bool td_wait_used(struct td_dev *d, unsigned qi, uint16_t n)
{
	for (unsigned t = 0; t < TD_TIMEOUT_MS * 10; t++) {
		if ((uint16_t)(td_used_idx(d, qi) - d->q[qi].used_seen) >= n)
			return true;
		struct timespec ts = { 0, 100000 };

		nanosleep(&ts, NULL);
	}
	return false;
}

/* Consume the next used element of (qi). */
static inline void td_next_used(struct td_dev *d, unsigned qi, uint32_t *id, uint32_t *len)
{
	struct td_queue *q = &d->q[qi];
	uint8_t *e = td_hva(q->used + 4 + 8ULL * (q->used_seen % q->size));

	memcpy(id, e, 4);
	memcpy(len, e + 4, 4);
	q->used_seen++;
}

#endif
