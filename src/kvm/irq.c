/* Interrupts into the in-kernel irqchip: legacy lines (KVM_IRQ_LINE), the
 * VM-wide GSI routing table with MSI routes (KVM_SET_GSI_ROUTING) and
 * irqfd bindings (KVM_IRQFD). */
#include <errno.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kvisor/irq.h"
#include "kvisor/log.h"
#include "kvisor/vm.h"

#define IRQ_NR_PIC_PINS 16
/* KVM's default table: GSI 0-15 to the IOAPIC and a PIC, 16-23 to the IOAPIC. */
#define IRQ_NR_DEFAULT (IRQ_NR_PIC_PINS * 2 + (IRQ_NR_IOAPIC_PINS - IRQ_NR_PIC_PINS))
#define IRQ_MAX_MSI    (IRQ_MAX_GSI - IRQ_MSI_GSI_BASE)

struct irq_msi {
	bool used;
	bool routed; /* a message was set since the GSI was allocated */
	uint32_t addr_lo, addr_hi, data;
};

struct irq_table {
	/* Serializes staging and commits: vCPU threads program MSI-X tables
	 * concurrently, and a commit must send the newest state of every route. */
	pthread_mutex_t lock;
	const struct irq_kvm_ops *ops;
	struct irq_msi *msi; /* index gsi - IRQ_MSI_GSI_BASE */
	unsigned nr_msi;     /* length of msi[] */
	unsigned next_free;  /* search hint into msi[] */
	bool dirty;          /* a change not yet sent to KVM */
	struct kvm_irq_routing *buf;
	unsigned buf_cap; /* entries buf holds */
};

int vm_irq_line(struct vm *vm, unsigned irq, int level)
{
	struct kvm_irq_level l = { .irq = irq, .level = level };

	return ioctl(vm->vm_fd, KVM_IRQ_LINE, &l) < 0 ? -errno : 0;
}

static int irq_kvm_set_routing(struct vm *vm, const struct kvm_irq_routing *table)
{
	return ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, table) < 0 ? -errno : 0;
}

static int irq_kvm_irqfd(struct vm *vm, unsigned gsi, int fd, bool assign)
{
	struct kvm_irqfd req = {
		.fd = (uint32_t)fd,
		.gsi = gsi,
		.flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN,
	};

	return ioctl(vm->vm_fd, KVM_IRQFD, &req) < 0 ? -errno : 0;
}

static const struct irq_kvm_ops irq_kvm_ops = {
	.set_routing = irq_kvm_set_routing,
	.irqfd = irq_kvm_irqfd,
};

int irq_init(struct vm *vm, const struct irq_kvm_ops *ops)
{
	struct irq_table *t = calloc(1, sizeof(*t));
	int ret;

	if (!t)
		return -ENOMEM;
	ret = -pthread_mutex_init(&t->lock, NULL);
	if (ret) {
		free(t);
		return ret;
	}
	t->ops = ops ? ops : &irq_kvm_ops;
	vm->irq = t;
	return 0;
}

void irq_destroy(struct vm *vm)
{
	struct irq_table *t = vm->irq;

	if (!t)
		return;
	pthread_mutex_destroy(&t->lock);
	free(t->msi);
	free(t->buf);
	free(t);
	vm->irq = NULL;
}

int irq_msi_alloc(struct vm *vm, unsigned *gsi)
{
	struct irq_table *t = vm->irq;
	unsigned i;
	int ret = 0;

	pthread_mutex_lock(&t->lock);
	for (i = t->next_free; i < t->nr_msi && t->msi[i].used; i++)
		;
	if (i == t->nr_msi) {
		unsigned n = t->nr_msi ? t->nr_msi * 2 : 64;
		struct irq_msi *m;

		if (n > IRQ_MAX_MSI)
			n = IRQ_MAX_MSI;
		if (i >= n) {
			ret = -ENOSPC;
			goto out;
		}
		m = realloc(t->msi, n * sizeof(*m));
		if (!m) {
			ret = -ENOMEM;
			goto out;
		}
		memset(m + t->nr_msi, 0, (n - t->nr_msi) * sizeof(*m));
		t->msi = m;
		t->nr_msi = n;
	}
	t->msi[i] = (struct irq_msi){ .used = true };
	t->next_free = i + 1;
	*gsi = IRQ_MSI_GSI_BASE + i;
out:
	pthread_mutex_unlock(&t->lock);
	return ret;
}

/* The slot of an allocated MSI GSI, or NULL (caller holds the lock). */
static struct irq_msi *irq_msi_slot(struct irq_table *t, unsigned gsi)
{
	if (gsi < IRQ_MSI_GSI_BASE || gsi - IRQ_MSI_GSI_BASE >= t->nr_msi)
		return NULL;
	return t->msi[gsi - IRQ_MSI_GSI_BASE].used ? &t->msi[gsi - IRQ_MSI_GSI_BASE] : NULL;
}

void irq_msi_free(struct vm *vm, unsigned gsi)
{
	struct irq_table *t = vm->irq;
	struct irq_msi *m;

	pthread_mutex_lock(&t->lock);
	m = irq_msi_slot(t, gsi);
	if (m) {
		t->dirty |= m->routed;
		*m = (struct irq_msi){ 0 };
		if (gsi - IRQ_MSI_GSI_BASE < t->next_free)
			t->next_free = gsi - IRQ_MSI_GSI_BASE;
	}
	pthread_mutex_unlock(&t->lock);
}

int irq_msi_set(struct vm *vm, unsigned gsi, uint64_t addr, uint32_t data)
{
	struct irq_table *t = vm->irq;
	struct irq_msi *m;
	int ret = -EINVAL;

	pthread_mutex_lock(&t->lock);
	m = irq_msi_slot(t, gsi);
	if (m) {
		uint32_t lo = (uint32_t)addr, hi = (uint32_t)(addr >> 32);

		if (!m->routed || m->addr_lo != lo || m->addr_hi != hi || m->data != data)
			t->dirty = true;
		m->routed = true;
		m->addr_lo = lo;
		m->addr_hi = hi;
		m->data = data;
		ret = 0;
	}
	pthread_mutex_unlock(&t->lock);
	return ret;
}

/* KVM's own default routing (kvm_setup_default_irq_routing()): GSI 0-15
 * to IOAPIC pin gsi and to PIC pin gsi % 8 (master below 8, slave above;
 * GSI 2, the cascade, included as KVM does), GSI 16-23 to the IOAPIC. The
 * PIT (GSI 0) and the UART (GSI 4) depend on these staying in the table. */
static unsigned irq_default_routes(struct kvm_irq_routing_entry *e)
{
	unsigned n = 0;

	for (unsigned gsi = 0; gsi < IRQ_NR_IOAPIC_PINS; gsi++) {
		e[n++] = (struct kvm_irq_routing_entry){
			.gsi = gsi,
			.type = KVM_IRQ_ROUTING_IRQCHIP,
			.u.irqchip = { .irqchip = KVM_IRQCHIP_IOAPIC, .pin = gsi },
		};
		if (gsi >= IRQ_NR_PIC_PINS)
			continue;
		e[n++] = (struct kvm_irq_routing_entry){
			.gsi = gsi,
			.type = KVM_IRQ_ROUTING_IRQCHIP,
			.u.irqchip = {
				.irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE,
				.pin = gsi % 8,
			},
		};
	}
	return n;
}

int irq_commit(struct vm *vm)
{
	struct irq_table *t = vm->irq;
	unsigned need, n;
	int ret = 0;

	pthread_mutex_lock(&t->lock);
	if (!t->dirty)
		goto out;
	need = IRQ_NR_DEFAULT + t->nr_msi;
	if (need > t->buf_cap) {
		struct kvm_irq_routing *b =
			realloc(t->buf, sizeof(*b) + need * sizeof(struct kvm_irq_routing_entry));

		if (!b) {
			ret = -ENOMEM;
			goto out;
		}
		t->buf = b;
		t->buf_cap = need;
	}
	memset(t->buf, 0, sizeof(*t->buf));
	n = irq_default_routes(t->buf->entries);
	for (unsigned i = 0; i < t->nr_msi; i++) {
		const struct irq_msi *m = &t->msi[i];

		if (!m->used || !m->routed)
			continue;
		t->buf->entries[n++] = (struct kvm_irq_routing_entry){
			.gsi = IRQ_MSI_GSI_BASE + i,
			.type = KVM_IRQ_ROUTING_MSI,
			.u.msi = {
				.address_lo = m->addr_lo,
				.address_hi = m->addr_hi,
				.data = m->data,
			},
		};
	}
	t->buf->nr = n;
	/* The ioctl runs under the lock: commits reach KVM in staging order. */
	ret = t->ops->set_routing(vm, t->buf);
	if (ret)
		log_warn("KVM_SET_GSI_ROUTING (%u routes): %s", n, strerror(-ret));
	else
		t->dirty = false;
out:
	pthread_mutex_unlock(&t->lock);
	return ret;
}

int irq_irqfd(struct vm *vm, unsigned gsi, int fd, bool assign)
{
	struct irq_table *t = vm->irq;

	if (gsi >= IRQ_MAX_GSI || fd < 0)
		return -EINVAL;
	return t->ops->irqfd(vm, gsi, fd, assign);
}
