/* Guest physical memory map and fixed I/O resources of a kvisor x86 VM.
 * One place for every fixed address so devices, boot code, ACPI tables and
 * the firmware test guests agree. */
#ifndef KVISOR_LAYOUT_H
#define KVISOR_LAYOUT_H

/* Low memory used by the VMM while building the boot state. */
#define LAYOUT_GDT_GPA        0x0500ULL
#define LAYOUT_ZERO_PAGE_GPA  0x7000ULL /* Linux boot_params */
#define LAYOUT_PVH_INFO_GPA   0x6000ULL /* struct hvm_start_info + memmap */
#define LAYOUT_PML4_GPA       0x9000ULL
#define LAYOUT_PDPT_GPA       0xa000ULL
#define LAYOUT_PD_GPA         0xb000ULL /* 4 pages: identity map of 0-4 GiB */
#define LAYOUT_CMDLINE_GPA    0x20000ULL
#define LAYOUT_CMDLINE_MAX    0x10000ULL /* bytes, including the NUL */
#define LAYOUT_BOOT_STACK_GPA 0x8ff0ULL
#define LAYOUT_EBDA_GPA       0x9fc00ULL /* start of the reserved hole */
#define LAYOUT_ACPI_GPA       0xe0000ULL /* RSDP first, then the tables */
#define LAYOUT_ACPI_SIZE      0x20000ULL
#define LAYOUT_HIMEM_GPA      0x100000ULL /* 1 MiB */
#define LAYOUT_BZIMAGE_GPA    0x100000ULL /* protected-mode kernel of a bzImage */

/* 32-bit hole for MMIO: RAM above this moves to 4 GiB. */
#define LAYOUT_MMIO_HOLE_GPA    0xc0000000ULL
#define LAYOUT_MMIO_HOLE_END    0x100000000ULL
#define LAYOUT_PCI_ECAM_GPA     0xe0000000ULL
#define LAYOUT_PCI_ECAM_SIZE    0x01000000ULL /* buses 0-15 */
#define LAYOUT_PCI_MMIO32_GPA   0xc0000000ULL
#define LAYOUT_PCI_MMIO32_END   0xe0000000ULL
#define LAYOUT_TESTDEV_MMIO_GPA 0xfeb00000ULL
#define LAYOUT_TESTDEV_MMIO_LEN 0x1000ULL
#define LAYOUT_IOAPIC_GPA       0xfec00000ULL
#define LAYOUT_LAPIC_GPA        0xfee00000ULL

/* Port I/O. */
#define LAYOUT_COM1_PORT    0x3f8
#define LAYOUT_COM1_IRQ     4
#define LAYOUT_I8042_PORT   0x60 /* 0x60 data, 0x64 command/status */
#define LAYOUT_TESTDEV_PORT 0xf4 /* 4 bytes, see testdev.h */
#define LAYOUT_ACPI_PM_PORT 0x600
/* ACPI hardware-reduced registers inside the PM block */
#define LAYOUT_ACPI_SLEEP_CTL  (LAYOUT_ACPI_PM_PORT + 0) /* write SLP_TYP<<2 | SLP_EN */
#define LAYOUT_ACPI_SLEEP_STS  (LAYOUT_ACPI_PM_PORT + 1)
#define LAYOUT_ACPI_RESET      (LAYOUT_ACPI_PM_PORT + 4) /* write LAYOUT_ACPI_RESET_VAL */
#define LAYOUT_ACPI_PM_LEN     8
#define LAYOUT_ACPI_RESET_VAL  0x01
#define LAYOUT_ACPI_SLP_TYP_S5 5
#define LAYOUT_ACPI_SLP_EN     (1u << 5)
#define LAYOUT_ACPI_SCI_IRQ    9

#endif
