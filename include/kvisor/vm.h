/* A virtual machine: KVM file descriptors, guest RAM, buses, vCPUs,
 * devices and the stop protocol shared by all threads. */
#ifndef KVISOR_VM_H
#define KVISOR_VM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "bus.h"
#include "lifecycle.h"
#include "mem.h"

struct vm_config;
struct vcpu;
struct console;
struct serial8250;
struct pvm_state;
struct kvm_cpuid2;
struct device;
struct pci_bus;
struct irq_table;
struct evloop;
struct boot_job;
struct profile;

enum vm_stop_reason {
	VM_RUNNING = 0,
	VM_STOP_POWEROFF, /* guest powered off: status 0 */
	VM_STOP_REBOOT,   /* guest asked for a reset */
	VM_STOP_ERROR,    /* triple fault, internal error, unhandled exit */
	VM_STOP_SIGNAL,   /* SIGTERM/SIGINT on the host */
	VM_STOP_QUIT,     /* console escape sequence */
	VM_STOP_TESTDEV,  /* firmware test guest reported DONE or FAIL */
};

struct vm {
	const struct vm_config *cfg;
	int kvm_fd;
	int vm_fd;
	int run_size; /* bytes of each vCPU's kvm_run mapping */
	int max_vcpus;
	struct guest_mem mem;
	struct bus pio;
	struct bus mmio;
	struct pci_bus *pci;      /* bus 0 (src/bus/pci.c), created by vm_setup */
	struct irq_table *irq;    /* GSI routing and irqfds (src/kvm/irq.c) */
	struct evloop *io;        /* device I/O thread: queue doorbells, completions (vm_setup) */
	struct kvm_cpuid2 *cpuid; /* supported CPUID, filtered per vCPU */
	struct vcpu *vcpus;
	unsigned nr_vcpus;
	struct device *devices; /* created devices, newest first */
	struct console *console;
	struct serial8250 *serial; /* the console UART, for host input */
	struct pvm_state *pvm;     /* NULL when the kvm-pvm compatibility layer is off */
	struct boot_job *boot;     /* kernel loader thread from vm_create to vm_setup */
	struct profile *profile;   /* --profile, owned by main (kept across restarts); or NULL */
	/* Stop protocol: the first vm_request_stop() wins, kicks every vCPU and
	 * wakes the main loop through stop_efd. */
	atomic_int stop_reason;
	int exit_status;
	int stop_efd;
	struct vm_lifecycle life; /* state machine, pause barrier (lifecycle.h) */
};

/* Open /dev/kvm, check the API version and required extensions, create the
 * VM with in-kernel irqchip and PIT, map guest RAM, set up the buses.
 * Errors are reported on stderr in one line; returns 0 or -errno. */
int vm_create(struct vm *vm, const struct vm_config *cfg) __attribute__((warn_unused_result));

/* Create the vCPUs, devices, load the kernel and set the boot state. */
int vm_setup(struct vm *vm) __attribute__((warn_unused_result));

/* Start one thread per vCPU; the VM is then RUNNING (lifecycle.h). */
int vm_start(struct vm *vm) __attribute__((warn_unused_result));

/* Ask the VM to stop with (reason) and process exit (status). Safe from any
 * thread, in any lifecycle state (a paused VM's vCPUs are released to end);
 * only the first request counts. */
void vm_request_stop(struct vm *vm, enum vm_stop_reason reason, int status);

/* Drive the in-kernel irqchip input (irq) to (level). 0 or -errno. */
int vm_irq_line(struct vm *vm, unsigned irq, int level);

/* Join the vCPU threads (after a stop request) and free everything. */
void vm_destroy(struct vm *vm);

#endif
