/* The transport-neutral virtio device API (kvisor/virtio.h): picks the
 * transport at creation, then forwards each call to its ops table. */
#include <errno.h>
#include <stddef.h>

#include "kvisor/log.h"
#include "transport.h"

int virtio_dev_create(struct virtio_dev **out, struct vm *vm, struct evloop *loop,
		      const struct virtio_dev_config *cfg, const struct virtio_ops *ops,
		      void *opaque)
{
	switch (cfg->transport) {
	case VIRTIO_TRANSPORT_PCI:
		return virtio_pci_create(out, vm, loop, cfg, ops, opaque);
	}
	log_err("%s: unknown virtio transport %d", cfg->name ? cfg->name : "virtio",
		(int)cfg->transport);
	return -EINVAL;
}

void virtio_dev_destroy(struct virtio_dev *dev)
{
	if (dev)
		dev->ops->destroy(dev);
}

void virtio_dev_lock(struct virtio_dev *dev)
{
	dev->ops->lock(dev);
}

void virtio_dev_unlock(struct virtio_dev *dev)
{
	dev->ops->unlock(dev);
}

int virtio_dev_pop(struct virtio_dev *dev, unsigned q, struct vq_chain *chain)
{
	return dev->ops->pop(dev, q, chain);
}

int virtio_dev_pop_polled(struct virtio_dev *dev, unsigned q, struct vq_chain *chain)
{
	return dev->ops->pop_polled(dev, q, chain);
}

void virtio_dev_push(struct virtio_dev *dev, unsigned q, uint16_t head, uint32_t written)
{
	dev->ops->push(dev, q, head, written);
}

void virtio_dev_unpop(struct virtio_dev *dev, unsigned q, unsigned n)
{
	dev->ops->unpop(dev, q, n);
}

void virtio_dev_notify(struct virtio_dev *dev, unsigned q)
{
	dev->ops->notify(dev, q);
}

void virtio_dev_needs_reset(struct virtio_dev *dev, const char *why)
{
	dev->ops->needs_reset(dev, why);
}

uint64_t virtio_dev_features(const struct virtio_dev *dev)
{
	return dev->ops->features(dev);
}

void virtio_dev_config_changed(struct virtio_dev *dev)
{
	dev->ops->config_changed(dev);
}

int virtio_dev_pause(struct virtio_dev *dev)
{
	return dev->ops->pause(dev);
}

void virtio_dev_resume(struct virtio_dev *dev)
{
	dev->ops->resume(dev);
}
