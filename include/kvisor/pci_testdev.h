/* PCI test function for firmware guests (--testdev): IDs and register
 * layout shared by kvisor (src/devices/pci_testdev.c) and firmware/pci.c.
 * No host headers. */
#ifndef KVISOR_PCI_TESTDEV_H
#define KVISOR_PCI_TESTDEV_H

/* The ID of QEMU's PCI test device; present only with --testdev. */
#define PCI_TESTDEV_VENDOR_ID 0x1b36
#define PCI_TESTDEV_DEVICE_ID 0x0005
#define PCI_TESTDEV_CLASS     0xff0000 /* "does not fit any defined class" */

#define PCI_TESTDEV_REGS_BAR  0 /* 32-bit memory, PCI_TESTDEV_REGS_SIZE bytes */
#define PCI_TESTDEV_IO_BAR    1 /* I/O, PCI_TESTDEV_IO_SIZE bytes: a 32-bit scratch at 0 */
#define PCI_TESTDEV_MEM64_BAR 2 /* 64-bit prefetchable memory (BARs 2-3): a 64-bit scratch at 0 */
#define PCI_TESTDEV_MSIX_BAR  4 /* MSI-X table and PBA */
#define PCI_TESTDEV_VECTORS   4

#define PCI_TESTDEV_REGS_SIZE  0x1000
#define PCI_TESTDEV_IO_SIZE    16
#define PCI_TESTDEV_MEM64_SIZE 0x4000

/* Registers of the REGS BAR, 32-bit accesses. */
#define PCI_TESTDEV_SCRATCH 0x0 /* read/write */
#define PCI_TESTDEV_NOTIFY  0x4 /* write N: pci_msix_notify(vector N) */
#define PCI_TESTDEV_COUNT   0x8 /* read: accesses to this BAR so far, this one included */

#endif
