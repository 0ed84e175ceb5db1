/* Between the transport-neutral device API (virtio_dev.c) and the
 * transports that implement it (transport_pci*.c; an MMIO one would add
 * its own create function and ops table here, device models unchanged). */
#ifndef KVISOR_VIRTIO_TRANSPORT_H
#define KVISOR_VIRTIO_TRANSPORT_H

#include <stdint.h>

#include "kvisor/virtio.h"

/* One operation per function of kvisor/virtio.h past creation, with the
 * same contract (lock held where that one says so). All are required. */
struct virtio_transport_ops {
	void (*destroy)(struct virtio_dev *dev);
	void (*lock)(struct virtio_dev *dev);
	void (*unlock)(struct virtio_dev *dev);
	int (*pop)(struct virtio_dev *dev, unsigned q, struct vq_chain *chain);
	int (*pop_polled)(struct virtio_dev *dev, unsigned q, struct vq_chain *chain);
	void (*push)(struct virtio_dev *dev, unsigned q, uint16_t head, uint32_t written);
	void (*unpop)(struct virtio_dev *dev, unsigned q, unsigned n);
	void (*notify)(struct virtio_dev *dev, unsigned q);
	void (*needs_reset)(struct virtio_dev *dev, const char *why);
	uint64_t (*features)(const struct virtio_dev *dev);
	void (*config_changed)(struct virtio_dev *dev);
	int (*pause)(struct virtio_dev *dev);
	void (*resume)(struct virtio_dev *dev);
};

/* The handle a device model holds, embedded in the transport's own state
 * (which finds itself again with container_of). */
struct virtio_dev {
	const struct virtio_transport_ops *ops;
};

/* Create the PCI transport's device: virtio_dev_create's contract, after
 * it checked the transport choice. */
int virtio_pci_create(struct virtio_dev **out, struct vm *vm, struct evloop *loop,
		      const struct virtio_dev_config *cfg, const struct virtio_ops *ops,
		      void *opaque) __attribute__((warn_unused_result));

#endif
