/* The virtio device API, independent of the transport: a device model
 * (src/devices/virtio_*.c) creates a struct virtio_dev with its struct
 * virtio_ops and serves its queues through it (pop, push, notify, under
 * the device lock). The transport behind the handle (only PCI so far,
 * include/kvisor/virtio_pci.h) owns registers, status, features, queue
 * setup, doorbells and interrupts; a device model never names it. */
#ifndef KVISOR_VIRTIO_H
#define KVISOR_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>

struct vm;
struct evloop;
struct vq_chain;
struct virtio_dev;

/* Device IDs (virtio 1.2, 5). */
#define VIRTIO_ID_NET   1
#define VIRTIO_ID_BLOCK 2

/* Transport feature bits (virtio 1.2, 6); the transport offers all three. */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX     29
#define VIRTIO_F_VERSION_1     32

/* Device status bits (virtio 1.2, 2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 0x01
#define VIRTIO_STATUS_DRIVER      0x02
#define VIRTIO_STATUS_DRIVER_OK   0x04
#define VIRTIO_STATUS_FEATURES_OK 0x08
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED      0x80

/* What a device model provides. Every callback runs with the device lock
 * held (virtio_dev_lock), so they never run concurrently with each other
 * nor with the device's own locked sections. */
struct virtio_ops {
	/* Fill (data) with (len) bytes of the device configuration at (off);
	 * the transport checked off + len <= cfg_size. vCPU thread. */
	void (*cfg_read)(void *opaque, uint32_t off, void *data, uint32_t len);
	/* A driver write to the device configuration; NULL: read-only. */
	void (*cfg_write)(void *opaque, uint32_t off, const void *data, uint32_t len);
	/* Queue (q) may have new chains (a kick, DRIVER_OK, or a resume):
	 * take them with virtio_dev_pop() and hand each back with
	 * virtio_dev_push(), now or later. Event-loop thread. */
	void (*queue_notify)(void *opaque, unsigned q);
	/* The driver reset the device: every chain popped was pushed already;
	 * forget per-queue state. Optional. */
	void (*reset)(void *opaque);
};

enum virtio_transport {
	VIRTIO_TRANSPORT_PCI = 1, /* a PCI function on bus 0 (virtio 1.2, 4.1), MSI-X */
};

struct virtio_dev_config {
	enum virtio_transport transport;
	const char *name;    /* for messages: "virtio-blk0"; must outlive the device */
	uint16_t device_id;  /* VIRTIO_ID_* */
	uint64_t features;   /* device-specific features offered; the transport adds
				 * VERSION_1, INDIRECT_DESC and EVENT_IDX */
	unsigned nr_queues;  /* 1..the transport's limit (64 for PCI) */
	uint16_t queue_size; /* largest queue: a power of 2, <= VQ_MAX_SIZE */
	uint32_t cfg_size;   /* bytes of device configuration (PCI: <= 4096) */
};

/* Create a device on (vm) through (cfg->transport), with one doorbell per
 * queue served on (loop), which must run (queue_notify and completions
 * happen there). Before the vCPUs start. 0 or -errno (logged, naming the
 * device; -EINVAL for an unknown transport or bad parameters). */
int virtio_dev_create(struct virtio_dev **out, struct vm *vm, struct evloop *loop,
		      const struct virtio_dev_config *cfg, const struct virtio_ops *ops,
		      void *opaque) __attribute__((warn_unused_result));

/* Reset the device (waiting for every popped chain to be pushed), remove it
 * from the VM and free it. After the vCPUs stopped, not on the loop thread;
 * the loop must still run if requests are in flight. NULL is fine. */
void virtio_dev_destroy(struct virtio_dev *dev);

/* Serialize with the transport: what a device does outside its callbacks,
 * e.g. in an I/O completion, must hold the lock. Never held across a wait
 * for the event loop. */
void virtio_dev_lock(struct virtio_dev *dev);
void virtio_dev_unlock(struct virtio_dev *dev);

/* Take the next chain of queue (q) (lock held). 1: a chain, which the device
 * must push exactly once; 0: nothing to do (the ring is empty and
 * notifications are on again, or the queue is not being served); -errno:
 * the ring is malformed, the device now needs a reset (DEVICE_NEEDS_RESET
 * set, configuration interrupt sent) and the queue is stopped. */
int virtio_dev_pop(struct virtio_dev *dev, unsigned q, struct vq_chain *chain)
	__attribute__((warn_unused_result));

/* Like virtio_dev_pop, except that an empty ring leaves the queue's
 * notifications as they are: off while the device serves the queue after a
 * kick (the transport turns them off before queue_notify), so 0 only means
 * "empty now". For a device that comes back to the queue on its own soon,
 * while the driver keeps adding chains without paying for kicks (virtio-net
 * transmit: QEMU's tx bottom half does the same). Such a device must, once
 * it stops coming back, end with a virtio_dev_pop that returns 0 (which
 * turns notifications on and looks once more), or a chain added meanwhile
 * waits for a kick the driver never sends. Lock held. */
int virtio_dev_pop_polled(struct virtio_dev *dev, unsigned q, struct vq_chain *chain)
	__attribute__((warn_unused_result));

/* Return chain (head) of queue (q) with (written) bytes written by the
 * device (lock held). No interrupt yet: call virtio_dev_notify once after
 * a batch of pushes. During a reset the ring is left alone: the chain is
 * only counted as done. */
void virtio_dev_push(struct virtio_dev *dev, unsigned q, uint16_t head, uint32_t written);

/* Give the last (n) chains popped from queue (q) back to the driver's ring
 * unused, as if never popped (lock held): a device that found, part-way
 * through a batch, that it cannot use them now (virtio-net: a frame needs
 * more receive buffers than the ring holds yet). They must be the last
 * chains popped from (q), none of them pushed; the next pop returns them
 * again. n = 0 does nothing. */
void virtio_dev_unpop(struct virtio_dev *dev, unsigned q, unsigned n);

/* Interrupt the driver for queue (q) if it wants one for what was pushed
 * since the last call (EVENT_IDX or NO_INTERRUPT; lock held). */
void virtio_dev_notify(struct virtio_dev *dev, unsigned q);

/* A request broke the device's rules beyond what a status can report (e.g.
 * no status byte): set DEVICE_NEEDS_RESET, stop every queue and send a
 * configuration interrupt (lock held). (why) is logged rate-limited. */
void virtio_dev_needs_reset(struct virtio_dev *dev, const char *why);

/* The negotiated features (valid from FEATURES_OK on; lock held). */
uint64_t virtio_dev_features(const struct virtio_dev *dev);

/* The device configuration changed (e.g. a balloon target, a link status):
 * call it with the lock held, after updating what cfg_read returns, so a
 * driver never reads the new bytes under the old generation. Bumps the
 * configuration generation the driver reads around multi-field reads
 * (virtio 1.2, 2.5.1, 4.1.4.3) and sends a configuration change
 * notification (PCI: ISR bit 0x2 and the configuration MSI-X vector) once
 * the driver has set DRIVER_OK; a change before that is notified when it
 * sets DRIVER_OK. */
void virtio_dev_config_changed(struct virtio_dev *dev);

/*
 * Quiesce for a VM pause (and, later, for saving state or a hot change):
 * virtio_dev_pause stops serving the queues and returns once every chain
 * popped was pushed. While paused, doorbells are not served (a kick is
 * left pending, not lost: the chains stay in the avail ring), pop returns
 * 0, and no queue_notify runs; completions of requests already in flight
 * still push, notify and take the lock as usual, and driver register
 * accesses still work (a VM pause has parked the vCPUs anyway).
 * virtio_dev_resume serves again and runs queue_notify once on the loop
 * for every running queue, so kicks that came while paused are served.
 *
 * Threads: pause from any thread but the device's event loop, which must
 * keep running (in-flight requests complete there), and without the
 * device lock; it may sleep until the backend's I/O completes. resume from
 * any thread, without the lock; it does not wait. Both go with the VM's
 * pause and resume: 0, or -EALREADY (nothing done) when already paused;
 * resuming a device that is not paused does nothing.
 */
int virtio_dev_pause(struct virtio_dev *dev) __attribute__((warn_unused_result));
void virtio_dev_resume(struct virtio_dev *dev);

#endif
