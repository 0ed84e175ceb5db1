/* virtio PCI common configuration: feature negotiation, the device status
 * state machine, queue configuration, reset, and the chain pop/push the
 * device models use (virtio 1.2, 2.1, 3.1, 4.1.4.3). */
#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kvisor/vm.h"
#include "transport_pci_priv.h"

#define VIRTIO_STATUS_KNOWN                                                           \
	(VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK | \
	 VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED)

static void put16(uint8_t *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, 2);
}

static void put32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

/* Raise (vector) with (isr) noted in the ISR register (lock held). */
static void virtio_pci_irq(struct virtio_pci *vp, uint16_t vector, uint8_t isr)
{
	vp->isr |= isr;
	if (vector != VIRTIO_PCI_NO_VECTOR)
		pci_msix_notify(&vp->pci, vector); /* lock-free; pending if masked */
}

/* The driver broke the rules: DEVICE_NEEDS_RESET and a configuration
 * interrupt; the write that did it is ignored (lock held). */
static void virtio_pci_violation(struct virtio_pci *vp, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void virtio_pci_violation(struct virtio_pci *vp, const char *fmt, ...)
{
	char msg[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	virtio_pci_needs_reset(vp, msg);
}

void virtio_pci_needs_reset(struct virtio_pci *vp, const char *why)
{
	log_ratelimited(&vp->rl, LOG_WARN, "%s: %s: device needs reset", vp->cfg.name, why);
	if (vp->status & VIRTIO_STATUS_NEEDS_RESET)
		return;
	vp->status |= VIRTIO_STATUS_NEEDS_RESET;
	virtio_pci_irq(vp, vp->config_vector, VIRTIO_PCI_ISR_CONFIG);
}

bool virtio_pci_queue_running(const struct virtio_pci *vp, const struct virtio_pci_queue *q)
{
	return (vp->status & (VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_NEEDS_RESET)) ==
		       VIRTIO_STATUS_DRIVER_OK &&
	       !vp->resetting && !vp->paused && q->enabled && !q->vq.broken;
}

void virtio_pci_state_init(struct virtio_pci *vp)
{
	vp->dfselect = vp->gfselect = 0;
	vp->driver_features = vp->features = 0;
	vp->config_vector = VIRTIO_PCI_NO_VECTOR;
	vp->queue_select = 0;
	vp->status = 0;
	vp->isr = 0;
	vp->config_pending = false;
	for (unsigned i = 0; i < vp->cfg.nr_queues; i++) {
		struct virtio_pci_queue *q = &vp->queues[i];

		q->size = vp->cfg.queue_size;
		q->msix_vector = VIRTIO_PCI_NO_VECTOR;
		q->enabled = false;
		q->pushed = false;
		q->desc = q->avail = q->used = 0;
		memset(&q->vq, 0, sizeof(q->vq));
		vq_set_owner(&q->vq, vp->cfg.name, q->idx);
	}
}

void virtio_pci_reset(struct virtio_pci *vp)
{
	/* Stops every queue (virtio_pci_queue_running) and keeps completions
	 * off the rings; they only count down. Requests in flight still own
	 * their guest buffers, so the reset is not done before they are. */
	vp->resetting = true;
	while (vp->inflight)
		pthread_cond_wait(&vp->idle, &vp->lock);
	if (vp->ops->reset)
		vp->ops->reset(vp->opaque);
	virtio_pci_state_init(vp);
	vp->resetting = false;
}

/* The common configuration structure as the driver reads it (lock held). */
static void virtio_pci_common_image(struct virtio_pci *vp, uint8_t img[VIRTIO_PCI_COMMON_LEN])
{
	uint16_t sel = vp->queue_select;

	memset(img, 0, VIRTIO_PCI_COMMON_LEN);
	put32(img + VIRTIO_PCI_COMMON_DFSELECT, vp->dfselect);
	if (vp->dfselect < 2)
		put32(img + VIRTIO_PCI_COMMON_DF,
		      (uint32_t)(vp->device_features >> (32 * vp->dfselect)));
	put32(img + VIRTIO_PCI_COMMON_GFSELECT, vp->gfselect);
	if (vp->gfselect < 2)
		put32(img + VIRTIO_PCI_COMMON_GF,
		      (uint32_t)(vp->driver_features >> (32 * vp->gfselect)));
	put16(img + VIRTIO_PCI_COMMON_MSIX, vp->config_vector);
	put16(img + VIRTIO_PCI_COMMON_NUMQ, (uint16_t)vp->cfg.nr_queues);
	img[VIRTIO_PCI_COMMON_STATUS] = vp->status;
	img[VIRTIO_PCI_COMMON_CFGGEN] = vp->config_generation;
	put16(img + VIRTIO_PCI_COMMON_Q_SELECT, sel);
	if (sel < vp->cfg.nr_queues) {
		const struct virtio_pci_queue *q = &vp->queues[sel];

		put16(img + VIRTIO_PCI_COMMON_Q_SIZE, q->size);
		put16(img + VIRTIO_PCI_COMMON_Q_MSIX, q->msix_vector);
		put16(img + VIRTIO_PCI_COMMON_Q_ENABLE, q->enabled);
		put16(img + VIRTIO_PCI_COMMON_Q_NOFF, sel);
		put64(img + VIRTIO_PCI_COMMON_Q_DESC, q->desc);
		put64(img + VIRTIO_PCI_COMMON_Q_AVAIL, q->avail);
		put64(img + VIRTIO_PCI_COMMON_Q_USED, q->used);
	} else {
		/* No such queue: size 0 says so (4.1.4.3). */
		put16(img + VIRTIO_PCI_COMMON_Q_MSIX, VIRTIO_PCI_NO_VECTOR);
	}
}

void virtio_pci_common_read(struct virtio_pci *vp, uint32_t off, void *data, uint32_t len)
{
	uint8_t img[VIRTIO_PCI_COMMON_LEN];

	pthread_mutex_lock(&vp->lock);
	virtio_pci_common_image(vp, img);
	pthread_mutex_unlock(&vp->lock);
	memset(data, 0, len);
	if (off < VIRTIO_PCI_COMMON_LEN && len <= VIRTIO_PCI_COMMON_LEN - off)
		memcpy(data, img + off, len);
}

/* A new device_status (lock held). Bits only get set, each after its
 * predecessor (2.1.2, 3.1.1); 0 resets, which the caller handled. */
static void virtio_pci_set_status(struct virtio_pci *vp, uint8_t v)
{
	uint8_t old = vp->status, added;
	uint64_t bad;

	/* NEEDS_RESET is the device's: a driver writing it back changes nothing. */
	v = (uint8_t)((v & ~VIRTIO_STATUS_NEEDS_RESET) | (old & VIRTIO_STATUS_NEEDS_RESET));
	if (v & ~VIRTIO_STATUS_KNOWN) {
		virtio_pci_violation(vp, "status 0x%02x: unknown bits", v);
		return;
	}
	if (old & ~v) {
		virtio_pci_violation(vp, "status 0x%02x clears bits of 0x%02x", v, old);
		return;
	}
	added = v & ~old;
	if ((added & VIRTIO_STATUS_DRIVER) && !(v & VIRTIO_STATUS_ACKNOWLEDGE)) {
		virtio_pci_violation(vp, "status DRIVER before ACKNOWLEDGE");
		return;
	}
	if (added & VIRTIO_STATUS_FEATURES_OK) {
		if (!(v & VIRTIO_STATUS_DRIVER)) {
			virtio_pci_violation(vp, "status FEATURES_OK before DRIVER");
			return;
		}
		bad = vp->driver_features & ~vp->device_features;
		if (bad || !(vp->driver_features & (1ULL << VIRTIO_F_VERSION_1))) {
			/* Refused: the driver reads FEATURES_OK back clear (3.1.1). */
			log_ratelimited(&vp->rl, LOG_INFO, "%s: features 0x%llx refused (%s)",
					vp->cfg.name, (unsigned long long)vp->driver_features,
					bad ? "not offered" : "no VERSION_1");
			v &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
			added &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
		} else {
			vp->features = vp->driver_features;
		}
	}
	if ((added & VIRTIO_STATUS_DRIVER_OK) && !(v & VIRTIO_STATUS_FEATURES_OK)) {
		virtio_pci_violation(vp, "status DRIVER_OK before FEATURES_OK");
		return;
	}
	vp->status = v;
	if ((added & VIRTIO_STATUS_DRIVER_OK) && vp->config_pending) {
		vp->config_pending = false;
		virtio_pci_irq(vp, vp->config_vector, VIRTIO_PCI_ISR_CONFIG);
	}
	if (added & VIRTIO_STATUS_DRIVER_OK) {
		/* Chains made available before DRIVER_OK are served now. */
		for (unsigned i = 0; i < vp->cfg.nr_queues; i++)
			if (vp->queues[i].enabled)
				virtio_pci_kick(&vp->queues[i]);
	}
}

/* The selected queue, if it exists and its configuration may still change
 * (lock held); otherwise NULL, after flagging a violation if it exists. */
static struct virtio_pci_queue *virtio_pci_queue_writable(struct virtio_pci *vp, const char *what)
{
	struct virtio_pci_queue *q;

	if (vp->queue_select >= vp->cfg.nr_queues)
		return NULL; /* no such queue: nothing to change */
	q = &vp->queues[vp->queue_select];
	if (vp->status & VIRTIO_STATUS_DRIVER_OK) {
		virtio_pci_violation(vp, "queue %u: %s changed after DRIVER_OK", q->idx, what);
		return NULL;
	}
	if (q->enabled) {
		virtio_pci_violation(vp, "queue %u: %s changed while enabled", q->idx, what);
		return NULL;
	}
	return q;
}

static uint16_t virtio_pci_vector(const struct virtio_pci *vp, uint16_t v)
{
	return v < vp->nr_vectors ? v : VIRTIO_PCI_NO_VECTOR;
}

static void virtio_pci_queue_enable(struct virtio_pci *vp, uint16_t v)
{
	struct virtio_pci_queue *q;
	int ret;

	if (vp->queue_select >= vp->cfg.nr_queues)
		return;
	q = &vp->queues[vp->queue_select];
	if (v == 0) {
		/* Writing 0 is forbidden (4.1.4.3.2); harmless on a disabled queue. */
		if (q->enabled)
			virtio_pci_violation(vp, "queue %u: disabled by queue_enable = 0", q->idx);
		return;
	}
	if (v != 1) {
		virtio_pci_violation(vp, "queue %u: queue_enable = %u", q->idx, v);
		return;
	}
	if (q->enabled)
		return;
	if (vp->status & VIRTIO_STATUS_DRIVER_OK) {
		virtio_pci_violation(vp, "queue %u: enabled after DRIVER_OK", q->idx);
		return;
	}
	if (!(vp->status & VIRTIO_STATUS_FEATURES_OK)) {
		virtio_pci_violation(vp, "queue %u: enabled before FEATURES_OK", q->idx);
		return;
	}
	ret = vq_init(&q->vq, &vp->vm->mem, q->size, q->desc, q->avail, q->used, vp->features);
	if (ret) {
		virtio_pci_violation(vp,
				     "queue %u: rings desc 0x%llx avail 0x%llx used 0x%llx "
				     "(size %u) not in RAM or misaligned",
				     q->idx, (unsigned long long)q->desc,
				     (unsigned long long)q->avail, (unsigned long long)q->used,
				     q->size);
		return;
	}
	q->enabled = true;
}

/* A 32-bit half (len 4) or the whole (len 8) of a queue address. */
static void virtio_pci_queue_addr(struct virtio_pci *vp, uint32_t off, uint64_t val, uint32_t len)
{
	uint32_t field = off & ~7u;
	struct virtio_pci_queue *q;
	uint64_t *a;

	if ((len == 8 && (off & 7)) || (len != 4 && len != 8))
		return;
	q = virtio_pci_queue_writable(vp, "ring address");
	if (!q)
		return;
	a = field == VIRTIO_PCI_COMMON_Q_DESC  ? &q->desc :
	    field == VIRTIO_PCI_COMMON_Q_AVAIL ? &q->avail :
						 &q->used;
	if (len == 8)
		*a = val;
	else if (off & 4)
		*a = (*a & 0xffffffffULL) | val << 32;
	else
		*a = (*a & ~0xffffffffULL) | (uint32_t)val;
}

static void virtio_pci_queue_size(struct virtio_pci *vp, uint16_t v)
{
	struct virtio_pci_queue *q = virtio_pci_queue_writable(vp, "size");

	if (!q)
		return;
	if (v == 0 || (v & (v - 1)) || v > vp->cfg.queue_size) {
		virtio_pci_violation(vp, "queue %u: size %u (a power of 2 up to %u)", q->idx, v,
				     vp->cfg.queue_size);
		return;
	}
	q->size = v;
}

/* One field write (lock held). */
static void virtio_pci_field_write(struct virtio_pci *vp, uint32_t off, uint64_t val, uint32_t len)
{
	uint32_t half;

	switch (off) {
	case VIRTIO_PCI_COMMON_DFSELECT:
		if (len == 4)
			vp->dfselect = (uint32_t)val;
		break;
	case VIRTIO_PCI_COMMON_GFSELECT:
		if (len == 4)
			vp->gfselect = (uint32_t)val;
		break;
	case VIRTIO_PCI_COMMON_GF:
		if (len != 4 || vp->gfselect >= 2)
			break;
		if (vp->status & VIRTIO_STATUS_FEATURES_OK) {
			virtio_pci_violation(vp, "driver features changed after FEATURES_OK");
			return;
		}
		half = 32 * vp->gfselect;
		vp->driver_features = (vp->driver_features & ~(0xffffffffULL << half)) |
				      val << half;
		break;
	case VIRTIO_PCI_COMMON_MSIX:
		if (len == 2)
			vp->config_vector = virtio_pci_vector(vp, (uint16_t)val);
		break;
	case VIRTIO_PCI_COMMON_STATUS:
		if (len == 1 && val != 0)
			virtio_pci_set_status(vp, (uint8_t)val);
		break;
	case VIRTIO_PCI_COMMON_Q_SELECT:
		if (len == 2)
			vp->queue_select = (uint16_t)val;
		break;
	case VIRTIO_PCI_COMMON_Q_SIZE:
		if (len == 2)
			virtio_pci_queue_size(vp, (uint16_t)val);
		break;
	case VIRTIO_PCI_COMMON_Q_MSIX:
		if (len == 2 && vp->queue_select < vp->cfg.nr_queues)
			vp->queues[vp->queue_select].msix_vector =
				virtio_pci_vector(vp, (uint16_t)val);
		break;
	case VIRTIO_PCI_COMMON_Q_ENABLE:
		if (len == 2)
			virtio_pci_queue_enable(vp, (uint16_t)val);
		break;
	case VIRTIO_PCI_COMMON_Q_DESC:
	case VIRTIO_PCI_COMMON_Q_DESC + 4:
	case VIRTIO_PCI_COMMON_Q_AVAIL:
	case VIRTIO_PCI_COMMON_Q_AVAIL + 4:
	case VIRTIO_PCI_COMMON_Q_USED:
	case VIRTIO_PCI_COMMON_Q_USED + 4:
		virtio_pci_queue_addr(vp, off, val, len);
		break;
	default:
		break; /* read-only fields, or the middle of one */
	}
}

void virtio_pci_common_write(struct virtio_pci *vp, uint32_t off, const void *data, uint32_t len)
{
	uint64_t val = 0;

	if (len > 8 || off >= VIRTIO_PCI_COMMON_LEN || len > VIRTIO_PCI_COMMON_LEN - off)
		return;
	memcpy(&val, data, len);
	val = le64toh(val);
	pthread_mutex_lock(&vp->lock);
	if (off == VIRTIO_PCI_COMMON_STATUS && len == 1 && val == 0)
		virtio_pci_reset(vp);
	else
		virtio_pci_field_write(vp, off, val, len);
	pthread_mutex_unlock(&vp->lock);
}

/* virtio_pci_pop and virtio_pci_pop_polled: (rearm) says whether an empty
 * ring turns notifications back on. */
static int virtio_pci_take(struct virtio_dev *dev, unsigned qi, struct vq_chain *chain, bool rearm)
{
	struct virtio_pci *vp = virtio_pci_of(dev);
	struct virtio_pci_queue *q;
	int ret;

	if (qi >= vp->cfg.nr_queues || !virtio_pci_queue_running(vp, &vp->queues[qi]))
		return 0;
	q = &vp->queues[qi];
	for (;;) {
		ret = vq_pop(&q->vq, chain);
		if (ret > 0) {
			vp->inflight++;
			return 1;
		}
		if (ret < 0) {
			virtio_pci_violation(vp, "queue %u: malformed ring", qi);
			return ret;
		}
		/* Empty: ask for kicks again, then look once more, so a chain
		 * added meanwhile is not left waiting for a kick never sent. */
		if (!rearm || !vq_enable_notify(&q->vq, true))
			return 0;
	}
}

int virtio_pci_pop(struct virtio_dev *dev, unsigned qi, struct vq_chain *chain)
{
	return virtio_pci_take(dev, qi, chain, true);
}

int virtio_pci_pop_polled(struct virtio_dev *dev, unsigned qi, struct vq_chain *chain)
{
	return virtio_pci_take(dev, qi, chain, false);
}

void virtio_pci_push(struct virtio_dev *dev, unsigned qi, uint16_t head, uint32_t written)
{
	struct virtio_pci *vp = virtio_pci_of(dev);

	if (qi >= vp->cfg.nr_queues || !vp->inflight) {
		log_err("%s: push of chain %u on queue %u with nothing in flight", vp->cfg.name,
			head, qi);
		return;
	}
	vp->inflight--;
	if (!vp->inflight && (vp->resetting || vp->paused))
		pthread_cond_broadcast(&vp->idle);
	if (vp->resetting)
		return;
	/* Pushed even after NEEDS_RESET: the rings stay valid until the reset. */
	vq_push(&vp->queues[qi].vq, head, written);
	vp->queues[qi].pushed = true;
}

void virtio_pci_unpop(struct virtio_dev *dev, unsigned qi, unsigned n)
{
	struct virtio_pci *vp = virtio_pci_of(dev);

	if (!n)
		return;
	if (qi >= vp->cfg.nr_queues || n > vp->inflight || n > vp->queues[qi].vq.size) {
		log_err("%s: unpop of %u chains on queue %u with %u in flight", vp->cfg.name, n, qi,
			vp->inflight);
		return;
	}
	vp->inflight -= n;
	if (!vp->inflight && (vp->resetting || vp->paused))
		pthread_cond_broadcast(&vp->idle);
	vq_unpop(&vp->queues[qi].vq, (uint16_t)n);
}

void virtio_pci_notify(struct virtio_dev *dev, unsigned qi)
{
	struct virtio_pci *vp = virtio_pci_of(dev);
	struct virtio_pci_queue *q;

	/* A queue that is not set up has no rings to look at (a reset may
	 * have come between the push and this call). */
	if (qi >= vp->cfg.nr_queues || vp->resetting || !vp->queues[qi].enabled)
		return;
	q = &vp->queues[qi];
	if (!q->pushed)
		return; /* nothing new for the driver */
	q->pushed = false;
	if (vq_should_notify(&q->vq))
		virtio_pci_irq(vp, q->msix_vector, VIRTIO_PCI_ISR_QUEUE);
}

uint64_t virtio_pci_features(const struct virtio_dev *dev)
{
	return virtio_pci_of(dev)->features;
}

void virtio_pci_config_changed(struct virtio_dev *dev)
{
	struct virtio_pci *vp = virtio_pci_of(dev);

	vp->config_generation++;
	/* Before DRIVER_OK the driver may still be probing and read the new
	 * configuration anyway; it hears of the change when it is ready. */
	if (vp->status & VIRTIO_STATUS_DRIVER_OK)
		virtio_pci_irq(vp, vp->config_vector, VIRTIO_PCI_ISR_CONFIG);
	else
		vp->config_pending = true;
}
