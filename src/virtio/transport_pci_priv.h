/* Between the virtio PCI glue (transport_pci.c: capabilities, BAR 0,
 * doorbells, creation) and the common configuration state machine
 * (transport_pci_common.c: features, status, queues, reset, pop/push). */
#ifndef KVISOR_VIRTIO_TRANSPORT_PCI_PRIV_H
#define KVISOR_VIRTIO_TRANSPORT_PCI_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvisor/log.h"
#include "kvisor/pci.h"
#include "kvisor/virtio.h"
#include "kvisor/virtio_pci.h"
#include "kvisor/vq.h"
#include "transport.h"

struct virtio_pci_queue {
	struct virtio_pci *vp; /* for the event-loop callback */
	unsigned idx;
	int efd;          /* the doorbell: ioeventfd, or written by the MMIO handler */
	bool efd_watched; /* on the event loop */
	/* Bound to KVM at ioeventfd_addr; only the bar_mapped hook (under the
	 * PCI device lock) and destroy touch these. */
	bool ioeventfd;
	uint64_t ioeventfd_addr;
	/* Driver-visible state, under vp->lock. */
	uint16_t size;
	uint16_t msix_vector;
	bool enabled; /* queue_enable accepted: vq initialised over the rings */
	bool pushed;  /* chains pushed since the last virtio_dev_notify */
	uint64_t desc, avail, used;
	struct vq vq;
};

/*
 * Locks. cfg_lock serializes the driver's register accesses (vCPU threads,
 * or the PCI configuration access capability with the PCI device lock
 * held): a reset holds it while it waits for requests in flight. lock
 * guards the state below and is what device callbacks and completions run
 * under, on the event-loop thread too. Order: PCI device lock, cfg_lock,
 * lock. Nothing here takes the PCI device lock (pci_msix_notify takes
 * none), and nobody waits for the event loop while holding lock: a reset
 * or a pause waits for requests in flight on idle, which releases it. A
 * pause takes no cfg_lock, so register accesses go on while it waits.
 */
struct virtio_pci {
	struct virtio_dev dev; /* the device model's handle */
	struct pci_device pci;
	struct vm *vm;
	struct evloop *loop;
	const struct virtio_ops *ops;
	void *opaque;
	struct virtio_dev_config cfg;
	uint64_t device_features; /* offered: cfg.features + transport features */
	unsigned nr_vectors;      /* MSI-X: one per queue + config */
	int cfg_cap;              /* offset of the PCI configuration access capability */
	bool ioeventfd_warned;
	struct log_ratelimit rl;
	pthread_mutex_t cfg_lock;
	pthread_mutex_t lock;
	pthread_cond_t idle; /* inflight dropped to 0 during a reset or pause */
	/* Under lock. */
	uint32_t dfselect, gfselect;
	uint64_t driver_features; /* as the driver wrote them */
	uint64_t features;        /* negotiated: set at FEATURES_OK */
	uint16_t config_vector;
	uint16_t queue_select;
	uint8_t status;
	uint8_t isr;
	/* config_generation as the driver reads it: bumped by every change,
	 * kept across resets (a driver compares two reads, never a value). */
	uint8_t config_generation;
	bool config_pending; /* changed before DRIVER_OK: notify at DRIVER_OK */
	bool resetting;      /* a reset waits for requests in flight */
	bool paused;         /* virtio_dev_pause: queues not served */
	unsigned inflight;   /* chains popped and not yet pushed */
	struct virtio_pci_queue queues[];
};

static inline struct virtio_pci *virtio_pci_of(const struct virtio_dev *dev)
{
	return (struct virtio_pci *)((char *)dev - offsetof(struct virtio_pci, dev));
}

static inline struct virtio_pci *virtio_pci_of_pci(struct pci_device *pci)
{
	return (struct virtio_pci *)((char *)pci - offsetof(struct virtio_pci, pci));
}

/* Common configuration structure access at (off) (cfg_lock held). Reads
 * compose any size from the fields; writes must hit one field with its
 * natural width (or 64 bits for a queue address), others are dropped. */
void virtio_pci_common_read(struct virtio_pci *vp, uint32_t off, void *data, uint32_t len);
void virtio_pci_common_write(struct virtio_pci *vp, uint32_t off, const void *data, uint32_t len);

/* Put the transport in its reset state (lock held, no request in flight). */
void virtio_pci_state_init(struct virtio_pci *vp);

/* Reset as a write of 0 to device_status does: stop the queues, wait for
 * requests in flight, tell the device, clear the state (cfg_lock and lock
 * held; lock is dropped while waiting). */
void virtio_pci_reset(struct virtio_pci *vp);

/* Whether queue (q) is being served: DRIVER_OK, no NEEDS_RESET, no reset in
 * progress, not paused, enabled and not broken (lock held). */
bool virtio_pci_queue_running(const struct virtio_pci *vp, const struct virtio_pci_queue *q);

/* Wake queue (q)'s handler on the event loop, as a doorbell write does. */
void virtio_pci_kick(struct virtio_pci_queue *q);

/* kvisor/virtio.h's needs_reset, for the transport's own use (lock held). */
void virtio_pci_needs_reset(struct virtio_pci *vp, const char *why);

/* The device API's queue and feature operations (transport_pci_common.c). */
int virtio_pci_pop(struct virtio_dev *dev, unsigned q, struct vq_chain *chain);
int virtio_pci_pop_polled(struct virtio_dev *dev, unsigned q, struct vq_chain *chain);
void virtio_pci_push(struct virtio_dev *dev, unsigned q, uint16_t head, uint32_t written);
void virtio_pci_unpop(struct virtio_dev *dev, unsigned q, unsigned n);
void virtio_pci_notify(struct virtio_dev *dev, unsigned q);
uint64_t virtio_pci_features(const struct virtio_dev *dev);
void virtio_pci_config_changed(struct virtio_dev *dev);

#endif
