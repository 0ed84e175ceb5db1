/* ACPI tables for a hardware-reduced x86 platform: RSDP, XSDT, FADT, DSDT,
 * MADT and (when PCI is present) MCFG. */
#ifndef KVISOR_ACPI_H
#define KVISOR_ACPI_H

#include <stdbool.h>
#include <stdint.h>

struct guest_mem;

struct acpi_config {
	unsigned nr_cpus; /* one enabled Local APIC entry per vCPU, APIC IDs 0..n-1 */
	bool pci_ecam;    /* add MCFG for LAYOUT_PCI_ECAM_GPA and a PCI host bridge in DSDT */
	unsigned ecam_last_bus;
};

/* Write the tables into guest RAM at LAYOUT_ACPI_GPA (at most
 * LAYOUT_ACPI_SIZE bytes), with the RSDP first so a legacy scan of
 * 0xe0000-0xfffff finds it. Sets (*rsdp_gpa). 0 or -errno. */
int acpi_build(struct guest_mem *mem, const struct acpi_config *cfg, uint64_t *rsdp_gpa)
	__attribute__((warn_unused_result));

#endif
