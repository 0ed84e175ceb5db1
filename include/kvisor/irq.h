/* Interrupt routing into the in-kernel irqchip: the VM-wide GSI routing
 * table (default PIC/IOAPIC routes plus MSI routes from GSI 24 up), irqfd
 * bindings and legacy interrupt lines. */
#ifndef KVISOR_IRQ_H
#define KVISOR_IRQ_H

#include <stdbool.h>
#include <stdint.h>

struct vm;
struct kvm_irq_routing;

#define IRQ_NR_IOAPIC_PINS 24
#define IRQ_MSI_GSI_BASE   IRQ_NR_IOAPIC_PINS /* first GSI handed out for MSI */
#define IRQ_MAX_GSI        4096               /* KVM_MAX_IRQ_ROUTES: GSIs and routes are below it */

/* How routing changes reach KVM. irq_init() with NULL uses the KVM ioctls
 * on vm->vm_fd; unit tests pass their own to record what would be sent. */
struct irq_kvm_ops {
	/* Replace the whole routing table (KVM_SET_GSI_ROUTING). 0 or -errno. */
	int (*set_routing)(struct vm *vm, const struct kvm_irq_routing *table);
	/* Attach (assign) or detach eventfd (fd) to (gsi) (KVM_IRQFD). 0 or -errno. */
	int (*irqfd)(struct vm *vm, unsigned gsi, int fd, bool assign);
};

/* Set up vm->irq: the routing table holds KVM's default routes (what
 * KVM_CREATE_IRQCHIP installed) and no MSI route yet; nothing is sent to
 * KVM until the first irq_commit() that has a change. 0 or -errno. */
int irq_init(struct vm *vm, const struct irq_kvm_ops *ops) __attribute__((warn_unused_result));
void irq_destroy(struct vm *vm);

/* Reserve an unused GSI >= IRQ_MSI_GSI_BASE for MSI, with no route yet.
 * 0 and (*gsi), or -ENOSPC. */
int irq_msi_alloc(struct vm *vm, unsigned *gsi) __attribute__((warn_unused_result));

/* Release (gsi): its route is dropped at the next irq_commit(). */
void irq_msi_free(struct vm *vm, unsigned gsi);

/* Stage the MSI route of (gsi): message address (addr) and (data), as a
 * device's MSI-X table entry holds them. Takes effect at irq_commit().
 * -EINVAL when (gsi) was not allocated. */
int irq_msi_set(struct vm *vm, unsigned gsi, uint64_t addr, uint32_t data);

/* Send the table to KVM if anything changed since the last commit: the
 * default routes first (KVM_SET_GSI_ROUTING replaces all of them), then
 * every MSI route. Serialized by a mutex, so when irq_commit() returns, every
 * change staged before it was called is in effect. 0 or -errno. */
int irq_commit(struct vm *vm) __attribute__((warn_unused_result));

/* Bind (assign) or unbind eventfd (fd) to (gsi): a write to (fd) then
 * raises the interrupt without a VMM round trip. 0 or -errno. */
int irq_irqfd(struct vm *vm, unsigned gsi, int fd, bool assign);

#endif
