/* PCI configuration space through ports 0xCF8/0xCFC (configuration
 * mechanism #1, on every x86 machine type that has it), device lookup and
 * memory BARs. No privileged instruction: usable at CPL3 too, where port
 * I/O is allowed (fw_user_call's IOPL and I/O bitmap). */
#ifndef FW_PCI_H
#define FW_PCI_H

#include "fw.h"

#define FW_PCI_COMMAND     0x04
#define FW_PCI_STATUS      0x06
#define FW_PCI_HEADER      0x0e
#define FW_PCI_BAR0        0x10
#define FW_PCI_CAP_PTR     0x34
#define FW_PCI_CMD_IO      0x1
#define FW_PCI_CMD_MEM     0x2
#define FW_PCI_CMD_MASTER  0x4
#define FW_PCI_STATUS_CAPS 0x10
#define FW_PCI_CAP_VENDOR  0x09

/* A function's address: bus << 8 | device << 3 | function. */
#define FW_PCI_BDF(bus, dev, fn) ((unsigned)(bus) << 8 | (unsigned)(dev) << 3 | (unsigned)(fn))

uint32_t fw_pci_read32(unsigned bdf, unsigned reg);
uint16_t fw_pci_read16(unsigned bdf, unsigned reg);
uint8_t fw_pci_read8(unsigned bdf, unsigned reg);
void fw_pci_write32(unsigned bdf, unsigned reg, uint32_t v);
void fw_pci_write16(unsigned bdf, unsigned reg, uint16_t v);

/* The first function on bus 0 with (vendor):(device) (every slot, and the
 * functions of multi-function devices), its bdf in (*bdf); false if none. */
bool fw_pci_find(uint16_t vendor, uint16_t device, unsigned *bdf);

/* Memory BARs of (bdf): sized with decoding off (as Linux does), each one
 * still at address 0 assigned from a bump allocator at (base) upwards,
 * naturally aligned, below 4 GiB (firmware such as QEMU's qboot leaves
 * them unassigned; kvisor and SeaBIOS assign them). Then memory decoding
 * and bus mastering on. I/O BARs are left alone. Returns how many BARs
 * were assigned here, or -1 if the allocation would cross 4 GiB. */
int fw_pci_setup_mem_bars(unsigned bdf, uint64_t base);

/* The address of memory BAR (idx) of (bdf) (64-bit BARs span idx, idx + 1);
 * 0 if it is an I/O BAR or unassigned. */
uint64_t fw_pci_bar_addr(unsigned bdf, unsigned idx);

#endif
