/* The virtio PCI transport, modern interface only (virtio 1.2, 4.1;
 * src/virtio/transport_pci*.c): the register layout a driver sees and the
 * KVM ioeventfd hook. Device models do not include this: they use the
 * transport-neutral kvisor/virtio.h with VIRTIO_TRANSPORT_PCI.
 *
 * Interrupts are MSI-X only: the function has no INTx pin, so a driver
 * that cannot enable MSI-X gets no interrupts (the ISR register still
 * reports queue and configuration events). */
#ifndef KVISOR_VIRTIO_PCI_H
#define KVISOR_VIRTIO_PCI_H

#include <stdbool.h>
#include <stdint.h>

struct vm;

#define VIRTIO_PCI_VENDOR_ID      0x1af4
#define VIRTIO_PCI_DEVICE_ID_BASE 0x1040 /* + virtio device ID */
#define VIRTIO_PCI_REVISION       1

#define VIRTIO_PCI_NO_VECTOR  0xffff
#define VIRTIO_PCI_ISR_QUEUE  0x1
#define VIRTIO_PCI_ISR_CONFIG 0x2

/* Capability types (virtio 1.2, 4.1.4). */
#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG    3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4
#define VIRTIO_PCI_CAP_PCI_CFG    5

/* BAR 0 (64-bit memory, 16 KiB): where each structure lives. MSI-X has
 * BAR 2 to itself. */
#define VIRTIO_PCI_BAR         0
#define VIRTIO_PCI_BAR_SIZE    0x4000
#define VIRTIO_PCI_MSIX_BAR    2
#define VIRTIO_PCI_COMMON_OFF  0x0000
#define VIRTIO_PCI_COMMON_LEN  0x38
#define VIRTIO_PCI_ISR_OFF     0x1000
#define VIRTIO_PCI_DEVICE_OFF  0x2000
#define VIRTIO_PCI_DEVICE_MAX  0x1000
#define VIRTIO_PCI_NOTIFY_OFF  0x3000
#define VIRTIO_PCI_NOTIFY_MULT 4 /* queue q's doorbell: NOTIFY_OFF + 4 * q */

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

#define VIRTIO_PCI_MAX_QUEUES 64

/* PCI class codes (base << 16 | sub << 8 | prog-if) by virtio device ID;
 * other devices say "unclassified" (0xff). */
#define VIRTIO_PCI_CLASS_BLOCK 0x018000 /* mass storage, other */
#define VIRTIO_PCI_CLASS_NET   0x020000 /* network controller, Ethernet */
#define VIRTIO_PCI_CLASS_OTHER 0xff0000

/* How queue doorbells reach KVM (KVM_IOEVENTFD on vm->vm_fd by default):
 * bind (assign) or unbind eventfd (fd) to 2-byte writes at guest physical
 * (addr). 0 or -errno; on failure the doorbell is served by the BAR's MMIO
 * handler instead. Unit tests install their own before creating devices;
 * NULL restores the default. */
typedef int (*virtio_pci_ioeventfd_fn)(struct vm *vm, uint64_t addr, uint32_t len, int fd,
				       bool assign);
void virtio_pci_set_ioeventfd_fn(virtio_pci_ioeventfd_fn fn);

#endif
