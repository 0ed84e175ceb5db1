/* virtio 1.x over PCI, modern interface only (src/virtio/transport_pci.c):
 * the PCI function and its capabilities, feature negotiation, the device
 * status state machine, queue configuration, notifications (ioeventfd,
 * served on the VM's event-loop thread) and MSI-X interrupts. A device
 * model (src/devices/virtio_blk.c) plugs in with struct virtio_ops.
 *
 * Interrupts are MSI-X only: the function has no INTx pin, so a driver
 * that cannot enable MSI-X gets no interrupts (the ISR register still
 * reports queue and configuration events). */
#ifndef KVISOR_VIRTIO_H
#define KVISOR_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>

struct vm;
struct evloop;
struct pci_device;
struct vq;
struct vq_chain;
struct virtio_pci;

#define VIRTIO_PCI_VENDOR_ID      0x1af4
#define VIRTIO_PCI_DEVICE_ID_BASE 0x1040 /* + virtio device ID */
#define VIRTIO_PCI_REVISION       1
#define VIRTIO_ID_BLOCK           2

/* Transport feature bits (virtio 1.2, 6). */
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

#define VIRTIO_PCI_NO_VECTOR      0xffff
#define VIRTIO_PCI_ISR_QUEUE      0x1
#define VIRTIO_PCI_ISR_CONFIG     0x2

/* Capability types (virtio 1.2, 4.1.4). */
#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG    3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4
#define VIRTIO_PCI_CAP_PCI_CFG    5

/* BAR 0 (64-bit memory, 16 KiB): where each structure lives. MSI-X has
 * BAR 2 to itself. */
#define VIRTIO_PCI_BAR            0
#define VIRTIO_PCI_BAR_SIZE       0x4000
#define VIRTIO_PCI_MSIX_BAR       2
#define VIRTIO_PCI_COMMON_OFF     0x0000
#define VIRTIO_PCI_COMMON_LEN     0x38
#define VIRTIO_PCI_ISR_OFF        0x1000
#define VIRTIO_PCI_DEVICE_OFF     0x2000
#define VIRTIO_PCI_DEVICE_MAX     0x1000
#define VIRTIO_PCI_NOTIFY_OFF     0x3000
#define VIRTIO_PCI_NOTIFY_MULT    4 /* queue q's doorbell: NOTIFY_OFF + 4 * q */

/* Common configuration structure offsets (virtio 1.2, 4.1.4.3). */
#define VIRTIO_PCI_COMMON_DFSELECT 0x00
#define VIRTIO_PCI_COMMON_DF       0x04
#define VIRTIO_PCI_COMMON_GFSELECT 0x08
#define VIRTIO_PCI_COMMON_GF       0x0c
#define VIRTIO_PCI_COMMON_MSIX     0x10
#define VIRTIO_PCI_COMMON_NUMQ     0x12
#define VIRTIO_PCI_COMMON_STATUS   0x14
#define VIRTIO_PCI_COMMON_CFGGEN   0x15
#define VIRTIO_PCI_COMMON_Q_SELECT 0x16
#define VIRTIO_PCI_COMMON_Q_SIZE   0x18
#define VIRTIO_PCI_COMMON_Q_MSIX   0x1a
#define VIRTIO_PCI_COMMON_Q_ENABLE 0x1c
#define VIRTIO_PCI_COMMON_Q_NOFF   0x1e
#define VIRTIO_PCI_COMMON_Q_DESC   0x20 /* lo, hi at +4 */
#define VIRTIO_PCI_COMMON_Q_AVAIL  0x28
#define VIRTIO_PCI_COMMON_Q_USED   0x30

#define VIRTIO_PCI_MAX_QUEUES     64

/* What a device model provides. Every callback runs with the transport
 * lock held (virtio_pci_lock), so they never run concurrently. */
struct virtio_ops {
	/* Fill (data) with (len) bytes of the device configuration at (off);
	 * the transport checked off + len <= cfg_size. vCPU thread. */
	void (*cfg_read)(void *opaque, uint32_t off, void *data, uint32_t len);
	/* A driver write to the device configuration; NULL: read-only. */
	void (*cfg_write)(void *opaque, uint32_t off, const void *data, uint32_t len);
	/* Queue (q) may have new chains (a kick, or DRIVER_OK): take them with
	 * virtio_pci_pop() and hand each back with virtio_pci_push(), now or
	 * later. Event-loop thread. */
	void (*queue_notify)(void *opaque, unsigned q);
	/* The driver reset the device: every chain popped was pushed already;
	 * forget per-queue state. Optional. */
	void (*reset)(void *opaque);
};

struct virtio_pci_config {
	const char *name;       /* for messages: "virtio-blk0"; must outlive the device */
	uint16_t device_id;     /* VIRTIO_ID_* */
	uint32_t class_code;    /* PCI class: base << 16 | sub << 8 | prog-if */
	uint64_t features;      /* device-specific features offered; the transport adds
				 * VERSION_1, INDIRECT_DESC and EVENT_IDX */
	unsigned nr_queues;     /* 1..VIRTIO_PCI_MAX_QUEUES */
	uint16_t queue_size;    /* largest queue: a power of 2, <= VQ_MAX_SIZE */
	uint32_t cfg_size;      /* bytes of device configuration, <= VIRTIO_PCI_DEVICE_MAX */
};

/* Create the PCI function on (vm)'s bus 0 with one MSI-X vector per queue
 * plus one for configuration changes, and one eventfd per queue watched by
 * (loop). Before the vCPUs start. 0 or -errno (logged, naming the device). */
int virtio_pci_create(struct virtio_pci **out, struct vm *vm, struct evloop *loop,
		      const struct virtio_pci_config *cfg, const struct virtio_ops *ops,
		      void *opaque) __attribute__((warn_unused_result));

/* Reset the device (waiting for every popped chain to be pushed), remove
 * the function and free it. After the vCPUs stopped, not on the loop
 * thread; the loop must still run if requests are in flight. NULL is fine. */
void virtio_pci_destroy(struct virtio_pci *vp);

/* Serialize with the transport: what a device does outside its callbacks,
 * e.g. in an I/O completion, must hold the lock. Never held across a wait
 * for the event loop. */
void virtio_pci_lock(struct virtio_pci *vp);
void virtio_pci_unlock(struct virtio_pci *vp);

/* Take the next chain of queue (q) (lock held). 1: a chain, which the device
 * must push exactly once; 0: nothing to do (the ring is empty and
 * notifications are on again, or the queue is not running); -errno: the
 * ring is malformed, the device now needs a reset (DEVICE_NEEDS_RESET set,
 * configuration interrupt sent) and the queue is stopped. */
int virtio_pci_pop(struct virtio_pci *vp, unsigned q, struct vq_chain *chain)
	__attribute__((warn_unused_result));

/* Return chain (head) of queue (q) with (written) bytes written by the
 * device, and interrupt the driver if it asks for it (lock held). During a
 * reset the ring is left alone: the chain is only counted as done. */
void virtio_pci_push(struct virtio_pci *vp, unsigned q, uint16_t head, uint32_t written);

/* A request broke the device's rules beyond what a status can report (e.g.
 * no status byte): set DEVICE_NEEDS_RESET, stop every queue and send a
 * configuration interrupt (lock held). (why) is logged rate-limited. */
void virtio_pci_needs_reset(struct virtio_pci *vp, const char *why);

/* The negotiated features (valid from FEATURES_OK on; lock held). */
uint64_t virtio_pci_features(const struct virtio_pci *vp);

/* The PCI function, e.g. for its slot and BAR addresses (tests). */
struct pci_device *virtio_pci_device(struct virtio_pci *vp);

/* How queue doorbells reach KVM (KVM_IOEVENTFD on vm->vm_fd by default):
 * bind (assign) or unbind eventfd (fd) to 2-byte writes at guest physical
 * (addr). 0 or -errno; on failure the doorbell is served by the BAR's MMIO
 * handler instead. Unit tests install their own before creating devices;
 * NULL restores the default. */
typedef int (*virtio_pci_ioeventfd_fn)(struct vm *vm, uint64_t addr, uint32_t len, int fd,
				       bool assign);
void virtio_pci_set_ioeventfd_fn(virtio_pci_ioeventfd_fn fn);

#endif
