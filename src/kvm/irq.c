/* Interrupt lines into the in-kernel irqchip. */
#include <errno.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>

#include "kvisor/vm.h"

int vm_irq_line(struct vm *vm, unsigned irq, int level)
{
	struct kvm_irq_level l = { .irq = irq, .level = level };

	return ioctl(vm->vm_fd, KVM_IRQ_LINE, &l) < 0 ? -errno : 0;
}
