/* PCI bus 0: a host bridge at 00:00.0, configuration space through ports
 * 0xCF8/0xCFC and ECAM, BAR placement and moves, capability lists and
 * MSI-X for the devices built on it (src/bus/pci.c, src/bus/pci_msix.c).
 *
 * A device embeds a struct pci_device, then, before the guest runs:
 *   pci_device_init()                 identity and header
 *   pci_bar_add(), pci_cap_add()      resources and capabilities
 *   pci_msix_init()                   optional: MSI-X capability + table BAR
 *   pci_register_device()             slot, BAR addresses, interrupt routes
 * and pci_unregister_device() when it is destroyed (after the vCPUs stop).
 * pci_msix_notify() is safe from any thread once registered. */
#ifndef KVISOR_PCI_H
#define KVISOR_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct vm;
struct bus_ops;
struct pci_bus;
struct pci_msix;

#define PCI_SLOTS            32 /* bus 0, function 0 only */
#define PCI_NR_BARS          6
#define PCI_CFG_SIZE         4096 /* per function, as ECAM maps it */
#define PCI_STD_CFG_SIZE     256
#define PCI_ECAM_LAST_BUS    0 /* buses the MCFG table announces */
#define PCI_CONF1_ADDR_PORT  0xcf8
#define PCI_CONF1_DATA_PORT  0xcfc
#define PCI_IO_BASE          0x1000  /* I/O BARs are placed from here ... */
#define PCI_IO_END           0x10000 /* ... to the end of the port space */
#define PCI_MSIX_MAX_VECTORS 2048

/* The host bridge: QEMU's generic PCIe host bridge ID (Red Hat, 1b36:0008,
 * also on x86 microvm). No chipset driver or quirk binds to it, unlike
 * Q35's 8086:29c0, which intel-agp and EDAC drivers probe for. */
#define PCI_HOST_VENDOR_ID    0x1b36
#define PCI_HOST_DEVICE_ID    0x0008
#define PCI_CLASS_HOST_BRIDGE 0x060000

/* Configuration header (type 0) offsets. */
#define PCI_CFG_VENDOR_ID     0x00
#define PCI_CFG_DEVICE_ID     0x02
#define PCI_CFG_COMMAND       0x04
#define PCI_CFG_STATUS        0x06
#define PCI_CFG_REVISION      0x08
#define PCI_CFG_CLASS         0x09 /* 3 bytes: prog-if, subclass, base class */
#define PCI_CFG_CACHE_LINE    0x0c
#define PCI_CFG_HEADER_TYPE   0x0e
#define PCI_CFG_BAR0          0x10
#define PCI_CFG_SUBSYS_VENDOR 0x2c
#define PCI_CFG_SUBSYS_ID     0x2e
#define PCI_CFG_ROM           0x30
#define PCI_CFG_CAP_PTR       0x34
#define PCI_CFG_INT_LINE      0x3c
#define PCI_CFG_INT_PIN       0x3d
#define PCI_CFG_CAP_START     0x40 /* capabilities go from here to 0xff */

#define PCI_CMD_IO           0x0001
#define PCI_CMD_MEM          0x0002
#define PCI_CMD_BUS_MASTER   0x0004
#define PCI_CMD_INTX_DISABLE 0x0400
#define PCI_STATUS_CAP_LIST  0x0010
#define PCI_STATUS_W1C       0xf900 /* error bits: parity, SERR, aborts */

#define PCI_CAP_VENDOR 0x09
#define PCI_CAP_MSIX   0x11

/* MSI-X capability: message control at +2, table and PBA offset/BIR at +4, +8. */
#define PCI_MSIX_CTRL            2
#define PCI_MSIX_CTRL_ENABLE     0x8000
#define PCI_MSIX_CTRL_FMASK      0x4000
#define PCI_MSIX_ENTRY_SIZE      16
#define PCI_MSIX_ENTRY_CTRL_MASK 0x1 /* vector control bit 0 */

/* Flags of pci_bar_add(); a BAR without PCI_BAR_IO is a memory BAR. */
#define PCI_BAR_IO       0x1
#define PCI_BAR_MEM64    0x2
#define PCI_BAR_PREFETCH 0x4

struct pci_device_info {
	uint16_t vendor_id;
	uint16_t device_id;
	uint16_t subsys_vendor_id;
	uint16_t subsys_id;
	uint32_t class_code; /* base class << 16 | subclass << 8 | prog-if */
	uint8_t revision;
};

struct pci_device;

/* Optional hooks. The cfg ones serve device-specific configuration bytes
 * (offsets >= 0x40, e.g. virtio's PCI configuration access capability).
 * All run with dev->lock held (on a vCPU thread, except at registration);
 * they may read and change dev->cfg (with pci_cfg_get/pci_cfg_set) but
 * must not call other pci_* functions. */
struct pci_device_ops {
	/* Before a guest read of [reg, reg+len): refresh those bytes. */
	void (*cfg_read)(struct pci_device *dev, uint32_t reg, uint32_t len);
	/* After a guest write to [reg, reg+len) went through the write mask. */
	void (*cfg_write)(struct pci_device *dev, uint32_t reg, uint32_t len);
	/* BAR (idx) was just registered at (addr) on its bus (mapped), or
	 * dropped from (addr) (!mapped): at registration, on guest moves and
	 * decode changes, at unregistration. For what lives outside the bus
	 * tables, e.g. ioeventfds on a notify region. dev->lock is held. */
	void (*bar_mapped)(struct pci_device *dev, unsigned idx, bool mapped, uint64_t addr);
};

struct pci_bar {
	uint64_t size;             /* 0: not implemented (or the upper half of a 64-bit BAR) */
	unsigned flags;            /* PCI_BAR_* */
	const struct bus_ops *ops; /* called with offsets into the BAR */
	void *opaque;
	/* Core state, under the device lock. */
	bool mapped; /* registered on vm->pio or vm->mmio at mapped_addr */
	uint64_t mapped_addr;
	uint64_t failed_addr; /* last address refused as occupied (logged once) */
};

struct pci_device {
	const char *name;                 /* for messages: the device id, "disk0" */
	const struct pci_device_ops *ops; /* NULL: no device-specific config bytes */
	/* Everything below belongs to the core. */
	struct vm *vm; /* set by pci_register_device() */
	unsigned slot;
	bool registered;
	/* Guards cfg, the BARs' mappings and the MSI-X table: taken by every
	 * config access and MSI-X table access, never by pci_msix_notify(). */
	pthread_mutex_t lock;
	uint8_t cfg[PCI_CFG_SIZE];     /* little-endian, as the guest reads it */
	uint8_t wmask[PCI_CFG_SIZE];   /* writable bits */
	uint8_t w1c[PCI_STD_CFG_SIZE]; /* write-1-to-clear bits */
	struct pci_bar bars[PCI_NR_BARS];
	uint16_t last_cap; /* offset of the last capability, 0 if none */
	uint16_t cap_end;  /* where the next capability goes */
	uint16_t msix_cap; /* offset of the MSI-X capability, 0 if none */
	struct pci_msix *msix;
};

/* Create vm->pci: claim ports 0xCF8-0xCFF and the ECAM window
 * (LAYOUT_PCI_ECAM_GPA, all of LAYOUT_PCI_ECAM_SIZE so no BAR lands there)
 * and put the host bridge at 00:00.0. Needs vm->pio, vm->mmio, vm->irq.
 * 0 or -errno. */
int pci_init(struct vm *vm) __attribute__((warn_unused_result));

/* Free vm->pci (devices unregistered first). NULL vm->pci is fine. */
void pci_destroy(struct vm *vm);

/* Fill (dev)'s header from (info): read-only identity, writable command
 * bits (I/O, memory, bus master, INTx disable), W1C status error bits, no
 * BARs, no capabilities, interrupt pin 0 (no INTx). 0 or -errno. */
int pci_device_init(struct pci_device *dev, const char *name, const struct pci_device_info *info)
	__attribute__((warn_unused_result));

/* Declare BAR (idx) of (size) bytes: a power of 2, >= 16 for memory,
 * 4..256 for I/O (PCI_BAR_IO), at most 2 GiB for a 32-bit memory BAR. A
 * 64-bit BAR (PCI_BAR_MEM64) also takes idx + 1. Guest accesses to it
 * reach (ops) with (opaque) and an offset into the BAR. -EINVAL for a bad
 * size or index, -EEXIST when taken, -EBUSY once registered. */
int pci_bar_add(struct pci_device *dev, unsigned idx, uint64_t size, unsigned flags,
		const struct bus_ops *ops, void *opaque) __attribute__((warn_unused_result));

/* Append a capability: (len) bytes of (cap), whose byte 0 is the
 * capability ID; byte 1 (next pointer) is filled in by the core. A
 * vendor-specific capability (PCI_CAP_VENDOR) carries its own length in
 * byte 2, as virtio's do. (wmask) gives the guest-writable bits of each
 * byte (NULL: read-only; the first two bytes always are). Placed 4-byte
 * aligned in 0x40-0xff and linked at the end of the list. Returns its
 * config offset, or -EINVAL, -ENOSPC, -EBUSY once registered. */
int pci_cap_add(struct pci_device *dev, const void *cap, unsigned len, const uint8_t *wmask)
	__attribute__((warn_unused_result));

/* Give (dev) (nr_vectors) MSI-X vectors (1..PCI_MSIX_MAX_VECTORS): the
 * capability, and memory BAR (bar) holding the table at offset 0 and the
 * pending-bit array, served by the core. All vectors start masked.
 * 0 or -errno (as pci_bar_add, -ENOMEM). */
int pci_msix_init(struct pci_device *dev, unsigned nr_vectors, unsigned bar)
	__attribute__((warn_unused_result));

/* Put (dev) in the lowest free slot of bus 0, place its BARs as firmware
 * would (naturally aligned, memory from LAYOUT_PCI_MMIO32_GPA, I/O from
 * PCI_IO_BASE), enable decoding and map them, and give each MSI-X vector a
 * GSI and an eventfd bound to it. -ENOSPC when slots, address windows or
 * GSIs run out; other -errno. Before the vCPUs start. */
int pci_register_device(struct vm *vm, struct pci_device *dev) __attribute__((warn_unused_result));

/* Undo pci_register_device() and free what pci_msix_init() allocated.
 * After the vCPUs stopped. Fine on a device never registered. */
void pci_unregister_device(struct vm *vm, struct pci_device *dev);

/* Raise MSI-X (vector) of (dev). Delivered at once (one eventfd write) when
 * MSI-X is enabled, the function and the vector are unmasked and bus
 * mastering is on; otherwise its pending bit is set and the interrupt goes
 * out when that changes. Safe from any thread, takes no lock. 0, or -EINVAL
 * for a device without MSI-X or a vector out of range. */
int pci_msix_notify(struct pci_device *dev, unsigned vector);

/* Whether the guest enabled MSI-X on (dev) (a snapshot, lock-free). */
bool pci_msix_enabled(struct pci_device *dev);

/* Read or write (len) = 1, 2 or 4 little-endian bytes of (dev)'s config
 * space at (off), bypassing the write mask. For the device's own fields:
 * before registration, or from the cfg hooks (dev->lock held). */
uint32_t pci_cfg_get(const struct pci_device *dev, unsigned off, unsigned len);
void pci_cfg_set(struct pci_device *dev, unsigned off, unsigned len, uint32_t val);

/* The address BAR (idx) of (dev) is mapped at, or false when unmapped
 * (decoding off, unassigned, or its range occupied). Takes dev->lock. */
bool pci_bar_mapped(struct pci_device *dev, unsigned idx, uint64_t *addr);

#endif
