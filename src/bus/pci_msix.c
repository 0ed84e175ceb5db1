/* MSI-X: the capability, the vector table and pending-bit array in a BAR of
 * their own, and delivery through one irqfd per vector whose GSI is routed
 * to the message the guest programmed. */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "kvisor/bus.h"
#include "kvisor/irq.h"
#include "kvisor/log.h"
#include "kvisor/vm.h"
#include "pci_priv.h"

#define PCI_MSIX_CAP_LEN     12
#define PCI_MSIX_ADDR_MASK   0xfff00000u /* a message must target the LAPIC window */
#define PCI_MSIX_ADDR_BASE   0xfee00000u
#define PCI_MSIX_MIN_PBA_OFF 2048

struct pci_msix_vector {
	/* The table entry as the guest sees it (dev->lock). */
	uint32_t addr_lo, addr_hi, data, ctrl;
	/* What KVM routes this vector's GSI to (dev->lock). */
	bool routed;
	bool staged; /* route staged by the pci_msix_sync() running now */
	uint64_t routed_addr;
	uint32_t routed_data;
	bool logged_bad_addr;
	unsigned gsi;
	int efd; /* -1 until attached */
	/* Enabled, unmasked, bus master on and routed: notify may write efd.
	 * Set only after the route is committed, cleared before a mask or a
	 * disable takes effect. */
	atomic_bool live;
};

struct pci_msix {
	unsigned nr;
	unsigned bar;
	uint32_t pba_off;
	bool attached;
	atomic_bool enabled;
	struct pci_msix_vector *vec;
	_Atomic uint64_t *pba; /* pending bits, 64 vectors a word */
};

static struct log_ratelimit pci_msix_rl;

static int pci_msix_signal(struct pci_msix_vector *v)
{
	uint64_t one = 1;

	/* EAGAIN means the counter is saturated: the interrupt is pending anyway. */
	return write(v->efd, &one, sizeof(one)) == sizeof(one) || errno == EAGAIN ? 0 : -errno;
}

int pci_msix_notify(struct pci_device *dev, unsigned vector)
{
	struct pci_msix *m = dev->msix;
	struct pci_msix_vector *v;
	uint64_t bit;

	if (!m || vector >= m->nr)
		return -EINVAL;
	v = &m->vec[vector];
	if (atomic_load(&v->live))
		return pci_msix_signal(v);
	/* Pending first, then look at live again; pci_msix_sync() sets live
	 * first, then takes the pending bit. With sequentially consistent
	 * atomics one of the two sees the other, and the fetch-and-clear picks
	 * a single sender: no interrupt is lost or sent twice. */
	bit = 1ULL << (vector % 64);
	atomic_fetch_or(&m->pba[vector / 64], bit);
	if (atomic_load(&v->live) && (atomic_fetch_and(&m->pba[vector / 64], ~bit) & bit))
		return pci_msix_signal(v);
	return 0;
}

bool pci_msix_enabled(struct pci_device *dev)
{
	return dev->msix && atomic_load(&dev->msix->enabled);
}

static bool pci_msix_addr_ok(struct pci_device *dev, struct pci_msix_vector *v, unsigned i)
{
	if (v->addr_hi == 0 && (v->addr_lo & PCI_MSIX_ADDR_MASK) == PCI_MSIX_ADDR_BASE)
		return true;
	if (!v->logged_bad_addr)
		log_ratelimited(&pci_msix_rl, LOG_WARN,
				PCI_DEV_FMT ": MSI-X vector %u address 0x%08x%08x is not an "
					    "interrupt message: vector kept pending",
				PCI_DEV_ARGS(dev), i, v->addr_hi, v->addr_lo);
	v->logged_bad_addr = true;
	return false;
}

/* Whether vector (i) may be delivered, apart from its route (dev->lock). */
static bool pci_msix_wanted(struct pci_device *dev, unsigned i, bool on)
{
	struct pci_msix_vector *v = &dev->msix->vec[i];

	return on && !(v->ctrl & PCI_MSIX_ENTRY_CTRL_MASK) && pci_msix_addr_ok(dev, v, i);
}

/* Bring vectors [first, last] in line with the message control word, the
 * command register and their entries: routes for those that became
 * deliverable are committed in one KVM_SET_GSI_ROUTING before they go live,
 * then their pending interrupts go out (dev->lock held). */
static void pci_msix_sync(struct pci_device *dev, unsigned first, unsigned last)
{
	struct pci_msix *m = dev->msix;
	uint32_t ctrl = pci_cfg_get(dev, dev->msix_cap + PCI_MSIX_CTRL, 2);
	uint32_t cmd = pci_cfg_get(dev, PCI_CFG_COMMAND, 2);
	bool on = (ctrl & PCI_MSIX_CTRL_ENABLE) && !(ctrl & PCI_MSIX_CTRL_FMASK) &&
		  (cmd & PCI_CMD_BUS_MASTER) && m->attached;
	bool staged = false, ok = true;

	atomic_store(&m->enabled, (ctrl & PCI_MSIX_CTRL_ENABLE) != 0);
	for (unsigned i = first; i <= last; i++) {
		struct pci_msix_vector *v = &m->vec[i];
		uint64_t addr = (uint64_t)v->addr_hi << 32 | v->addr_lo;

		v->staged = false;
		if (!pci_msix_wanted(dev, i, on)) {
			atomic_store(&v->live, false);
			continue;
		}
		if (v->routed && v->routed_addr == addr && v->routed_data == v->data)
			continue;
		v->routed = false;
		if (irq_msi_set(dev->vm, v->gsi, addr, v->data))
			continue;
		v->routed_addr = addr;
		v->routed_data = v->data;
		v->staged = staged = true;
	}
	if (staged && irq_commit(dev->vm)) {
		log_ratelimited(&pci_msix_rl, LOG_WARN,
				PCI_DEV_FMT ": MSI-X routes not committed: "
					    "vectors kept pending",
				PCI_DEV_ARGS(dev));
		ok = false;
	}
	for (unsigned i = first; i <= last; i++) {
		struct pci_msix_vector *v = &m->vec[i];
		uint64_t bit = 1ULL << (i % 64);

		if (v->staged)
			v->routed = ok; /* if not, staged again next time */
		if (!v->routed || !pci_msix_wanted(dev, i, on))
			continue;
		atomic_store(&v->live, true);
		if (atomic_fetch_and(&m->pba[i / 64], ~bit) & bit)
			pci_msix_signal(v);
	}
}

void pci_msix_update(struct pci_device *dev)
{
	pci_msix_sync(dev, 0, dev->msix->nr - 1);
}

/* Table entry (i) as 16 little-endian bytes. */
static void pci_msix_entry_bytes(const struct pci_msix_vector *v, uint8_t out[16])
{
	const uint32_t w[4] = { v->addr_lo, v->addr_hi, v->data, v->ctrl };

	for (unsigned k = 0; k < 16; k++)
		out[k] = (uint8_t)(w[k / 4] >> (8 * (k % 4)));
}

/* Accesses are 1, 2, 4 or 8 bytes, naturally aligned: each stays inside
 * one table entry or one PBA word. Others read zero and write nothing. */
static bool pci_msix_access_ok(uint64_t off, uint32_t len)
{
	return (len == 1 || len == 2 || len == 4 || len == 8) && off % len == 0;
}

static void pci_msix_bar_read(void *opaque, uint64_t off, void *data, uint32_t len)
{
	struct pci_device *dev = opaque;
	struct pci_msix *m = dev->msix;
	uint8_t e[16];

	memset(data, 0, len);
	if (!pci_msix_access_ok(off, len))
		return;
	if (off < (uint64_t)m->nr * PCI_MSIX_ENTRY_SIZE) {
		pthread_mutex_lock(&dev->lock);
		pci_msix_entry_bytes(&m->vec[off / PCI_MSIX_ENTRY_SIZE], e);
		pthread_mutex_unlock(&dev->lock);
		memcpy(data, &e[off % PCI_MSIX_ENTRY_SIZE], len);
	} else if (off >= m->pba_off && off - m->pba_off < (m->nr + 63) / 64 * 8) {
		uint64_t w = atomic_load(&m->pba[(off - m->pba_off) / 8]);

		w >>= 8 * ((off - m->pba_off) % 8);
		memcpy(data, &w, len);
	}
}

static uint32_t pci_msix_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void pci_msix_bar_write(void *opaque, uint64_t off, const void *data, uint32_t len)
{
	struct pci_device *dev = opaque;
	struct pci_msix *m = dev->msix;
	struct pci_msix_vector *v;
	const uint8_t *in = data;
	uint8_t e[16];
	unsigned i, at;

	/* The PBA is read-only; the rest of the BAR is reserved. */
	if (!pci_msix_access_ok(off, len) || off >= (uint64_t)m->nr * PCI_MSIX_ENTRY_SIZE)
		return;
	i = (unsigned)(off / PCI_MSIX_ENTRY_SIZE);
	at = (unsigned)(off % PCI_MSIX_ENTRY_SIZE);
	v = &m->vec[i];
	pthread_mutex_lock(&dev->lock);
	pci_msix_entry_bytes(v, e);
	memcpy(&e[at], in, len);
	v->addr_lo = pci_msix_le32(&e[0]) & ~0x3u; /* dword aligned */
	v->addr_hi = pci_msix_le32(&e[4]);
	v->data = pci_msix_le32(&e[8]);
	v->ctrl = e[12] & PCI_MSIX_ENTRY_CTRL_MASK; /* the other bits are reserved */
	if (at < 12)
		v->logged_bad_addr = false;
	pci_msix_sync(dev, i, i);
	pthread_mutex_unlock(&dev->lock);
}

static const struct bus_ops pci_msix_bar_ops = {
	.read = pci_msix_bar_read,
	.write = pci_msix_bar_write,
};

int pci_msix_init(struct pci_device *dev, unsigned nr_vectors, unsigned bar)
{
	uint8_t cap[PCI_MSIX_CAP_LEN] = { PCI_CAP_MSIX }, wmask[PCI_MSIX_CAP_LEN] = { 0 };
	uint32_t table_len = nr_vectors * PCI_MSIX_ENTRY_SIZE, pba_off = PCI_MSIX_MIN_PBA_OFF;
	struct pci_msix *m;
	int ret;

	if (dev->msix)
		return -EEXIST;
	if (nr_vectors == 0 || nr_vectors > PCI_MSIX_MAX_VECTORS)
		return -EINVAL;
	/* Table at 0, PBA in the second half: a 4 KiB BAR up to 128 vectors. */
	while (pba_off < table_len)
		pba_off *= 2;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->vec = calloc(nr_vectors, sizeof(*m->vec));
	m->pba = calloc((nr_vectors + 63) / 64, sizeof(*m->pba));
	if (!m->vec || !m->pba) {
		ret = -ENOMEM;
		goto err;
	}
	m->nr = nr_vectors;
	m->bar = bar;
	m->pba_off = pba_off;
	for (unsigned i = 0; i < nr_vectors; i++) {
		m->vec[i].ctrl = PCI_MSIX_ENTRY_CTRL_MASK;
		m->vec[i].efd = -1;
	}
	ret = pci_bar_add(dev, bar, 2ULL * pba_off, 0, &pci_msix_bar_ops, dev);
	if (ret)
		goto err;
	cap[2] = (uint8_t)(nr_vectors - 1);
	cap[3] = (uint8_t)((nr_vectors - 1) >> 8);
	cap[4] = (uint8_t)bar; /* table offset 0 | BIR */
	for (unsigned k = 0; k < 4; k++)
		cap[8 + k] = (uint8_t)((pba_off | bar) >> (8 * k));
	wmask[3] = (PCI_MSIX_CTRL_ENABLE | PCI_MSIX_CTRL_FMASK) >> 8;
	ret = pci_cap_add(dev, cap, sizeof(cap), wmask);
	if (ret < 0) {
		dev->bars[bar] = (struct pci_bar){ 0 };
		pci_cfg_set(dev, PCI_CFG_BAR0 + 4 * bar, 4, 0);
		memset(&dev->wmask[PCI_CFG_BAR0 + 4 * bar], 0, 4);
		goto err;
	}
	dev->msix_cap = (uint16_t)ret;
	dev->msix = m;
	return 0;
err:
	free(m->vec);
	free(m->pba);
	free(m);
	return ret;
}

int pci_msix_attach(struct pci_device *dev)
{
	struct pci_msix *m = dev->msix;
	unsigned i;
	int ret = 0;

	for (i = 0; i < m->nr; i++) {
		struct pci_msix_vector *v = &m->vec[i];

		ret = irq_msi_alloc(dev->vm, &v->gsi);
		if (ret)
			break;
		v->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (v->efd < 0) {
			ret = -errno;
			irq_msi_free(dev->vm, v->gsi);
			break;
		}
		ret = irq_irqfd(dev->vm, v->gsi, v->efd, true);
		if (ret) {
			close(v->efd);
			v->efd = -1;
			irq_msi_free(dev->vm, v->gsi);
			break;
		}
	}
	if (!ret) {
		m->attached = true;
		return 0;
	}
	log_err(PCI_DEV_FMT ": MSI-X vector %u of %u: %s", PCI_DEV_ARGS(dev), i, m->nr,
		strerror(-ret));
	while (i--) {
		irq_irqfd(dev->vm, m->vec[i].gsi, m->vec[i].efd, false);
		close(m->vec[i].efd);
		m->vec[i].efd = -1;
		irq_msi_free(dev->vm, m->vec[i].gsi);
	}
	return ret;
}

void pci_msix_release(struct pci_device *dev)
{
	struct pci_msix *m = dev->msix;

	if (!m)
		return;
	if (m->attached) {
		for (unsigned i = 0; i < m->nr; i++) {
			struct pci_msix_vector *v = &m->vec[i];

			atomic_store(&v->live, false);
			irq_irqfd(dev->vm, v->gsi, v->efd, false);
			close(v->efd);
			irq_msi_free(dev->vm, v->gsi);
		}
		/* Drop the routes; at VM teardown a failure changes nothing. */
		if (irq_commit(dev->vm))
			log_debug(PCI_DEV_FMT ": MSI-X routes not dropped", PCI_DEV_ARGS(dev));
	}
	free(m->vec);
	free(m->pba);
	free(m);
	dev->msix = NULL;
	dev->msix_cap = 0;
}
