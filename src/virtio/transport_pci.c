/* virtio PCI transport, modern only (virtio 1.2, 4.1): the PCI function,
 * its vendor capabilities, BAR 0 (common configuration, ISR, device
 * configuration, doorbells), the PCI configuration access capability, and
 * queue doorbells as eventfds (KVM ioeventfds) served on an event loop. */
#include <endian.h>
#include <errno.h>
#include <linux/kvm.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kvisor/bus.h"
#include "kvisor/evloop.h"
#include "kvisor/vm.h"
#include "transport_pci_priv.h"

/* struct virtio_pci_cap and its extensions, as config-space bytes. */
#define VIRTIO_CAP_LEN         16
#define VIRTIO_CAP_NOTIFY_LEN  20 /* + notify_off_multiplier */
#define VIRTIO_CAP_PCI_CFG_LEN 20 /* + pci_cfg_data[4] */
#define VIRTIO_CAP_BAR         4
#define VIRTIO_CAP_OFFSET      8
#define VIRTIO_CAP_LENGTH      12
#define VIRTIO_CAP_DATA        16

static int virtio_pci_kvm_ioeventfd(struct vm *vm, uint64_t addr, uint32_t len, int fd, bool assign)
{
	struct kvm_ioeventfd io = {
		.addr = addr,
		.len = len,
		.fd = fd,
		.flags = assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN,
	};

	return ioctl(vm->vm_fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}

static virtio_pci_ioeventfd_fn virtio_pci_ioeventfd = virtio_pci_kvm_ioeventfd;

void virtio_pci_set_ioeventfd_fn(virtio_pci_ioeventfd_fn fn)
{
	virtio_pci_ioeventfd = fn ? fn : virtio_pci_kvm_ioeventfd;
}

static void virtio_pci_lock(struct virtio_dev *dev)
{
	pthread_mutex_lock(&virtio_pci_of(dev)->lock);
}

static void virtio_pci_unlock(struct virtio_dev *dev)
{
	pthread_mutex_unlock(&virtio_pci_of(dev)->lock);
}

static void virtio_pci_dev_needs_reset(struct virtio_dev *dev, const char *why)
{
	virtio_pci_needs_reset(virtio_pci_of(dev), why);
}

void virtio_pci_kick(struct virtio_pci_queue *q)
{
	uint64_t one = 1;

	/* EAGAIN: the counter is saturated, a wake-up is pending anyway. */
	if (write(q->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_ratelimited(&q->vp->rl, LOG_WARN, "%s: queue %u doorbell: %s", q->vp->cfg.name,
				q->idx, strerror(errno));
}

/* A doorbell rang (event-loop thread). While paused the kick is only
 * consumed: the chains stay in the ring and resume looks again. */
static void virtio_pci_doorbell(void *opaque, uint32_t events)
{
	struct virtio_pci_queue *q = opaque;
	struct virtio_pci *vp = q->vp;
	uint64_t v;

	if (read(q->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_ratelimited(&vp->rl, LOG_WARN, "%s: queue %u doorbell: %s", vp->cfg.name,
				q->idx, strerror(errno));
	pthread_mutex_lock(&vp->lock);
	if (virtio_pci_queue_running(vp, q)) {
		/* No kicks while we drain; virtio_pci_pop turns them back on
		 * when it finds the ring empty. */
		vq_enable_notify(&q->vq, false);
		vp->ops->queue_notify(vp->opaque, q->idx);
	}
	pthread_mutex_unlock(&vp->lock);
}

static int virtio_pci_pause(struct virtio_dev *dev)
{
	struct virtio_pci *vp = virtio_pci_of(dev);

	pthread_mutex_lock(&vp->lock);
	if (vp->paused) {
		pthread_mutex_unlock(&vp->lock);
		return -EALREADY;
	}
	/* From here nothing pops (virtio_pci_queue_running); what is in
	 * flight completes on the loop, whose push wakes us. */
	vp->paused = true;
	while (vp->inflight)
		pthread_cond_wait(&vp->idle, &vp->lock);
	pthread_mutex_unlock(&vp->lock);
	return 0;
}

static void virtio_pci_resume(struct virtio_dev *dev)
{
	struct virtio_pci *vp = virtio_pci_of(dev);

	pthread_mutex_lock(&vp->lock);
	if (vp->paused) {
		vp->paused = false;
		/* Kicks consumed while paused, and chains a starved device left
		 * in the ring, get one look on the loop. */
		for (unsigned i = 0; i < vp->cfg.nr_queues; i++)
			if (virtio_pci_queue_running(vp, &vp->queues[i]))
				virtio_pci_kick(&vp->queues[i]);
	}
	pthread_mutex_unlock(&vp->lock);
}

/* --- BAR 0 ------------------------------------------------------------ */

static void virtio_pci_bar_read(void *opaque, uint64_t off, void *data, uint32_t len)
{
	struct virtio_pci *vp = opaque;

	memset(data, 0, len);
	if (off < VIRTIO_PCI_COMMON_OFF + VIRTIO_PCI_COMMON_LEN) {
		pthread_mutex_lock(&vp->cfg_lock);
		virtio_pci_common_read(vp, (uint32_t)off, data, len);
		pthread_mutex_unlock(&vp->cfg_lock);
	} else if (off == VIRTIO_PCI_ISR_OFF) {
		/* Reading the ISR clears it (4.1.4.5). */
		pthread_mutex_lock(&vp->lock);
		*(uint8_t *)data = vp->isr;
		vp->isr = 0;
		pthread_mutex_unlock(&vp->lock);
	} else if (off >= VIRTIO_PCI_DEVICE_OFF && off - VIRTIO_PCI_DEVICE_OFF < vp->cfg.cfg_size &&
		   len <= vp->cfg.cfg_size - (off - VIRTIO_PCI_DEVICE_OFF)) {
		pthread_mutex_lock(&vp->lock);
		vp->ops->cfg_read(vp->opaque, (uint32_t)(off - VIRTIO_PCI_DEVICE_OFF), data, len);
		pthread_mutex_unlock(&vp->lock);
	}
	/* The doorbells read as zero. */
}

static void virtio_pci_bar_write(void *opaque, uint64_t off, const void *data, uint32_t len)
{
	struct virtio_pci *vp = opaque;
	uint64_t q;

	if (off < VIRTIO_PCI_COMMON_OFF + VIRTIO_PCI_COMMON_LEN) {
		pthread_mutex_lock(&vp->cfg_lock);
		virtio_pci_common_write(vp, (uint32_t)off, data, len);
		pthread_mutex_unlock(&vp->cfg_lock);
	} else if (off >= VIRTIO_PCI_DEVICE_OFF && off - VIRTIO_PCI_DEVICE_OFF < vp->cfg.cfg_size &&
		   len <= vp->cfg.cfg_size - (off - VIRTIO_PCI_DEVICE_OFF)) {
		pthread_mutex_lock(&vp->lock);
		if (vp->ops->cfg_write)
			vp->ops->cfg_write(vp->opaque, (uint32_t)(off - VIRTIO_PCI_DEVICE_OFF),
					   data, len);
		pthread_mutex_unlock(&vp->lock);
	} else if (off >= VIRTIO_PCI_NOTIFY_OFF) {
		/* A doorbell KVM did not take (no ioeventfd there, or not a
		 * 2-byte write): same path, through the eventfd. */
		q = (off - VIRTIO_PCI_NOTIFY_OFF) / VIRTIO_PCI_NOTIFY_MULT;
		if (q < vp->cfg.nr_queues)
			virtio_pci_kick(&vp->queues[q]);
	}
}

static const struct bus_ops virtio_pci_bar_ops = {
	.read = virtio_pci_bar_read,
	.write = virtio_pci_bar_write,
};

/* --- PCI configuration hooks (PCI device lock held) --------------------- */

/* The window of the PCI configuration access capability: BAR 0 only (the
 * MSI-X BAR takes the PCI device lock, which is held here), 1, 2 or 4
 * bytes, naturally aligned, inside the BAR. */
static bool virtio_pci_cfg_window(struct virtio_pci *vp, uint32_t *off, uint32_t *len)
{
	struct pci_device *dev = &vp->pci;
	uint32_t bar = pci_cfg_get(dev, vp->cfg_cap + VIRTIO_CAP_BAR, 1);

	*off = pci_cfg_get(dev, vp->cfg_cap + VIRTIO_CAP_OFFSET, 4);
	*len = pci_cfg_get(dev, vp->cfg_cap + VIRTIO_CAP_LENGTH, 4);
	return bar == VIRTIO_PCI_BAR && (*len == 1 || *len == 2 || *len == 4) && *off % *len == 0 &&
	       *off < VIRTIO_PCI_BAR_SIZE;
}

static bool virtio_pci_touches_data(const struct virtio_pci *vp, uint32_t reg, uint32_t len)
{
	uint32_t start = (uint32_t)vp->cfg_cap + VIRTIO_CAP_DATA;

	return reg < start + 4 && start < reg + len;
}

static void virtio_pci_cfg_read(struct pci_device *dev, uint32_t reg, uint32_t len)
{
	struct virtio_pci *vp = virtio_pci_of_pci(dev);
	uint32_t off, n, v = 0;

	if (!virtio_pci_touches_data(vp, reg, len) || !virtio_pci_cfg_window(vp, &off, &n))
		return;
	virtio_pci_bar_read(vp, off, &v, n);
	pci_cfg_set(dev, vp->cfg_cap + VIRTIO_CAP_DATA, 4, le32toh(v));
}

static void virtio_pci_cfg_write(struct pci_device *dev, uint32_t reg, uint32_t len)
{
	struct virtio_pci *vp = virtio_pci_of_pci(dev);
	uint32_t off, n, v;

	if (!virtio_pci_touches_data(vp, reg, len) || !virtio_pci_cfg_window(vp, &off, &n))
		return;
	v = htole32(pci_cfg_get(dev, vp->cfg_cap + VIRTIO_CAP_DATA, 4));
	virtio_pci_bar_write(vp, off, &v, n);
}

/* Doorbells follow BAR 0: unbound from where it was, bound where it is. */
static void virtio_pci_bar_mapped(struct pci_device *dev, unsigned idx, bool mapped, uint64_t addr)
{
	struct virtio_pci *vp = virtio_pci_of_pci(dev);
	int ret;

	if (idx != VIRTIO_PCI_BAR)
		return;
	for (unsigned i = 0; i < vp->cfg.nr_queues; i++) {
		struct virtio_pci_queue *q = &vp->queues[i];
		uint64_t a = addr + VIRTIO_PCI_NOTIFY_OFF + (uint64_t)VIRTIO_PCI_NOTIFY_MULT * i;

		if (!mapped) {
			if (q->ioeventfd)
				virtio_pci_ioeventfd(vp->vm, q->ioeventfd_addr, 2, q->efd, false);
			q->ioeventfd = false;
			continue;
		}
		ret = virtio_pci_ioeventfd(vp->vm, a, 2, q->efd, true);
		if (ret) {
			/* The MMIO handler serves the doorbell: slower, still right. */
			if (!vp->ioeventfd_warned)
				log_warn("%s: queue doorbell ioeventfd at 0x%llx: %s; using MMIO exits",
					 vp->cfg.name, (unsigned long long)a, strerror(-ret));
			vp->ioeventfd_warned = true;
			continue;
		}
		q->ioeventfd = true;
		q->ioeventfd_addr = a;
	}
}

static const struct pci_device_ops virtio_pci_pci_ops = {
	.cfg_read = virtio_pci_cfg_read,
	.cfg_write = virtio_pci_cfg_write,
	.bar_mapped = virtio_pci_bar_mapped,
};

/* --- creation --------------------------------------------------------- */

static int virtio_pci_add_cap(struct virtio_pci *vp, uint8_t type, uint32_t off, uint32_t len,
			      unsigned cap_len, uint32_t extra, const uint8_t *wmask)
{
	uint8_t cap[VIRTIO_CAP_NOTIFY_LEN] = { PCI_CAP_VENDOR, 0, (uint8_t)cap_len, type,
					       VIRTIO_PCI_BAR };
	uint32_t le;

	le = htole32(off);
	memcpy(cap + VIRTIO_CAP_OFFSET, &le, 4);
	le = htole32(len);
	memcpy(cap + VIRTIO_CAP_LENGTH, &le, 4);
	le = htole32(extra);
	memcpy(cap + VIRTIO_CAP_DATA, &le, 4);
	return pci_cap_add(&vp->pci, cap, cap_len, wmask);
}

/* The five virtio capabilities (4.1.4). The configuration access one
 * starts with bar = 0, offset = 0, length = 0: the driver sets them. */
static int virtio_pci_add_caps(struct virtio_pci *vp)
{
	uint8_t wmask[VIRTIO_CAP_PCI_CFG_LEN] = { 0 };
	int ret;

	ret = virtio_pci_add_cap(vp, VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_COMMON_OFF,
				 VIRTIO_PCI_COMMON_LEN, VIRTIO_CAP_LEN, 0, NULL);
	if (ret >= 0)
		ret = virtio_pci_add_cap(vp, VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_PCI_NOTIFY_OFF,
					 VIRTIO_PCI_NOTIFY_MULT * vp->cfg.nr_queues,
					 VIRTIO_CAP_NOTIFY_LEN, VIRTIO_PCI_NOTIFY_MULT, NULL);
	if (ret >= 0)
		ret = virtio_pci_add_cap(vp, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_ISR_OFF, 1,
					 VIRTIO_CAP_LEN, 0, NULL);
	if (ret >= 0 && vp->cfg.cfg_size)
		ret = virtio_pci_add_cap(vp, VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_PCI_DEVICE_OFF,
					 vp->cfg.cfg_size, VIRTIO_CAP_LEN, 0, NULL);
	if (ret < 0)
		return ret;
	wmask[VIRTIO_CAP_BAR] = 0xff;
	memset(wmask + VIRTIO_CAP_OFFSET, 0xff, 12); /* offset, length, data */
	ret = virtio_pci_add_cap(vp, VIRTIO_PCI_CAP_PCI_CFG, 0, 0, VIRTIO_CAP_PCI_CFG_LEN, 0,
				 wmask);
	if (ret < 0)
		return ret;
	vp->cfg_cap = ret;
	return 0;
}

static bool virtio_pci_config_ok(const struct virtio_dev_config *cfg)
{
	return cfg->name && cfg->nr_queues >= 1 && cfg->nr_queues <= VIRTIO_PCI_MAX_QUEUES &&
	       cfg->queue_size && !(cfg->queue_size & (cfg->queue_size - 1)) &&
	       cfg->queue_size <= VQ_MAX_SIZE && cfg->cfg_size <= VIRTIO_PCI_DEVICE_MAX;
}

/* Eventfds for the doorbells, watched by the loop. */
static int virtio_pci_doorbells(struct virtio_pci *vp)
{
	for (unsigned i = 0; i < vp->cfg.nr_queues; i++) {
		struct virtio_pci_queue *q = &vp->queues[i];
		int ret;

		q->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (q->efd < 0)
			return -errno;
		ret = evloop_add(vp->loop, q->efd, EPOLLIN, virtio_pci_doorbell, q);
		if (ret)
			return ret;
		q->efd_watched = true;
	}
	return 0;
}

/* Undo virtio_pci_doorbells and free (vp); the function is unregistered. */
static void virtio_pci_free(struct virtio_pci *vp)
{
	for (unsigned i = 0; i < vp->cfg.nr_queues; i++) {
		struct virtio_pci_queue *q = &vp->queues[i];

		/* Waits for a running doorbell callback; no lock of ours is held. */
		if (q->efd_watched)
			evloop_del(vp->loop, q->efd);
		if (q->efd >= 0)
			close(q->efd);
	}
	pthread_cond_destroy(&vp->idle);
	pthread_mutex_destroy(&vp->lock);
	pthread_mutex_destroy(&vp->cfg_lock);
	free(vp);
}

/* The PCI class a driver-less guest sees (lspci); drivers match on IDs. */
static uint32_t virtio_pci_class(uint16_t device_id)
{
	switch (device_id) {
	case VIRTIO_ID_BLOCK:
		return VIRTIO_PCI_CLASS_BLOCK;
	case VIRTIO_ID_NET:
		return VIRTIO_PCI_CLASS_NET;
	default:
		return VIRTIO_PCI_CLASS_OTHER;
	}
}

static void virtio_pci_destroy(struct virtio_dev *dev);

static const struct virtio_transport_ops virtio_pci_transport_ops = {
	.destroy = virtio_pci_destroy,
	.lock = virtio_pci_lock,
	.unlock = virtio_pci_unlock,
	.pop = virtio_pci_pop,
	.pop_polled = virtio_pci_pop_polled,
	.push = virtio_pci_push,
	.unpop = virtio_pci_unpop,
	.notify = virtio_pci_notify,
	.needs_reset = virtio_pci_dev_needs_reset,
	.features = virtio_pci_features,
	.config_changed = virtio_pci_config_changed,
	.pause = virtio_pci_pause,
	.resume = virtio_pci_resume,
};

int virtio_pci_create(struct virtio_dev **out, struct vm *vm, struct evloop *loop,
		      const struct virtio_dev_config *cfg, const struct virtio_ops *ops,
		      void *opaque)
{
	const struct pci_device_info info = {
		.vendor_id = VIRTIO_PCI_VENDOR_ID,
		.device_id = (uint16_t)(VIRTIO_PCI_DEVICE_ID_BASE + cfg->device_id),
		.subsys_vendor_id = VIRTIO_PCI_VENDOR_ID,
		.subsys_id = cfg->device_id,
		.class_code = virtio_pci_class(cfg->device_id),
		.revision = VIRTIO_PCI_REVISION,
	};
	struct virtio_pci *vp;
	int ret;

	if (!virtio_pci_config_ok(cfg) || !ops || !ops->cfg_read || !ops->queue_notify || !loop) {
		log_err("%s: bad virtio device parameters", cfg->name ? cfg->name : "virtio");
		return -EINVAL;
	}
	vp = calloc(1, sizeof(*vp) + cfg->nr_queues * sizeof(vp->queues[0]));
	if (!vp)
		return -ENOMEM;
	vp->dev.ops = &virtio_pci_transport_ops;
	vp->vm = vm;
	vp->loop = loop;
	vp->ops = ops;
	vp->opaque = opaque;
	vp->cfg = *cfg;
	vp->device_features = cfg->features | 1ULL << VIRTIO_F_VERSION_1 |
			      1ULL << VIRTIO_F_INDIRECT_DESC | 1ULL << VIRTIO_F_EVENT_IDX;
	vp->nr_vectors = cfg->nr_queues + 1;
	pthread_mutex_init(&vp->cfg_lock, NULL);
	pthread_mutex_init(&vp->lock, NULL);
	pthread_cond_init(&vp->idle, NULL);
	for (unsigned i = 0; i < cfg->nr_queues; i++) {
		vp->queues[i].vp = vp;
		vp->queues[i].idx = i;
		vq_set_owner(&vp->queues[i].vq, cfg->name, i);
		vp->queues[i].efd = -1;
	}
	virtio_pci_state_init(vp);

	ret = virtio_pci_doorbells(vp);
	if (ret) {
		log_err("%s: queue doorbells: %s", cfg->name, strerror(-ret));
		virtio_pci_free(vp);
		return ret;
	}
	ret = pci_device_init(&vp->pci, cfg->name, &info);
	if (ret) {
		virtio_pci_free(vp);
		return ret;
	}
	vp->pci.ops = &virtio_pci_pci_ops;
	ret = pci_bar_add(&vp->pci, VIRTIO_PCI_BAR, VIRTIO_PCI_BAR_SIZE, PCI_BAR_MEM64,
			  &virtio_pci_bar_ops, vp);
	if (!ret)
		ret = virtio_pci_add_caps(vp);
	if (!ret)
		ret = pci_msix_init(&vp->pci, vp->nr_vectors, VIRTIO_PCI_MSIX_BAR);
	if (!ret)
		ret = pci_register_device(vm, &vp->pci);
	if (ret) {
		log_err("%s: cannot create the PCI function: %s", cfg->name, strerror(-ret));
		pci_unregister_device(vm, &vp->pci);
		virtio_pci_free(vp);
		return ret;
	}
	*out = &vp->dev;
	return 0;
}

static void virtio_pci_destroy(struct virtio_dev *dev)
{
	struct virtio_pci *vp = virtio_pci_of(dev);

	pthread_mutex_lock(&vp->cfg_lock);
	pthread_mutex_lock(&vp->lock);
	virtio_pci_reset(vp);
	pthread_mutex_unlock(&vp->lock);
	pthread_mutex_unlock(&vp->cfg_lock);
	/* Unbinds the ioeventfds through the bar_mapped hook. */
	pci_unregister_device(vp->vm, &vp->pci);
	virtio_pci_free(vp);
}
