/* Between the PCI core (pci.c) and its MSI-X part (pci_msix.c). */
#ifndef KVISOR_PCI_PRIV_H
#define KVISOR_PCI_PRIV_H

#include "kvisor/pci.h"

/* At registration (dev->vm set, dev->lock not needed yet): a GSI, an
 * eventfd and its irqfd binding for every vector. 0 or -errno, undone. */
int pci_msix_attach(struct pci_device *dev);

/* At unregistration: unbind and close the eventfds, free the GSIs, then
 * the table (also for a device never registered). */
void pci_msix_release(struct pci_device *dev);

/* The message control word or the command register changed: make each
 * vector's delivery state follow them (dev->lock held). */
void pci_msix_update(struct pci_device *dev);

/* "00:03.0 (name)" for messages. */
#define PCI_DEV_FMT     "pci 00:%02x.0 (%s)"
#define PCI_DEV_ARGS(d) (d)->slot, (d)->name

#endif
