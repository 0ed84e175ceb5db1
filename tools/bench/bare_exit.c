/* The smallest VMM that runs a kvisor firmware image: raw KVM ioctls, one
 * vCPU, a KVM_RUN loop that handles port I/O inline. The baseline of
 * tools/bench/exits, which runs the same `exits` firmware under kvisor. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kvisor/layout.h"
#include "kvisor/testdev.h"

#define BARE_CPUID_MAX 256
#define BARE_INFO_GPA  LAYOUT_PVH_INFO_GPA
#define BARE_GDT_GPA   LAYOUT_GDT_GPA

struct bare {
	int kvm, vm, vcpu;
	uint8_t *ram;
	uint64_t ram_size;
	struct kvm_run *run;
	uint64_t exits;
};

static void die(const char *what)
{
	fprintf(stderr, "bare_exit: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void fatal(const char *msg)
{
	fprintf(stderr, "bare_exit: %s\n", msg);
	exit(2);
}

/* Guest range -> host pointer, or NULL if not all of it is RAM. */
static void *gpa(struct bare *b, uint64_t addr, uint64_t len)
{
	if (addr > b->ram_size || len > b->ram_size - addr)
		return NULL;
	return b->ram + addr;
}

/* Load PT_LOAD segments at p_paddr; return the Xen PHYS32_ENTRY note. */
static uint32_t load_elf(struct bare *b, const char *path)
{
	int fd = open(path, O_RDONLY);
	uint32_t entry = 0;
	struct stat st;
	uint8_t *f;
	Elf64_Ehdr *eh;

	if (fd < 0 || fstat(fd, &st))
		die(path);
	f = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (f == MAP_FAILED)
		die(path);
	close(fd);
	eh = (Elf64_Ehdr *)f;
	if ((size_t)st.st_size < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_phoff + (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > (uint64_t)st.st_size)
		fatal("not a 64-bit ELF firmware image");
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr *ph = (Elf64_Phdr *)(f + eh->e_phoff) + i;
		uint8_t *dst;

		if (ph->p_offset + ph->p_filesz > (uint64_t)st.st_size)
			fatal("ELF segment outside the file");
		if (ph->p_type == PT_NOTE) {
			const uint32_t *n = (const uint32_t *)(f + ph->p_offset);

			/* One note per PT_NOTE is all our firmware has. */
			if (ph->p_filesz >= 20 && n[0] == 4 && n[1] == 4 && n[2] == 18 &&
			    !memcmp(&n[3], "Xen", 4))
				entry = n[4];
		}
		if (ph->p_type != PT_LOAD)
			continue;
		dst = gpa(b, ph->p_paddr, ph->p_memsz);
		if (!dst || ph->p_filesz > ph->p_memsz)
			fatal("ELF segment outside guest RAM");
		memcpy(dst, f + ph->p_offset, ph->p_filesz);
		memset(dst + ph->p_filesz, 0, ph->p_memsz - ph->p_filesz);
	}
	munmap(f, (size_t)st.st_size);
	if (!entry)
		fatal("no PVH entry note (Xen, type 18)");
	return entry;
}

/* hvm_start_info (version 1) + memory map + command line, as kvisor does. */
static void write_start_info(struct bare *b, const char *cmdline)
{
	struct {
		uint32_t magic, version, flags, nr_modules;
		uint64_t modlist, cmdline, rsdp, memmap;
		uint32_t memmap_entries, reserved;
	} info = { 0x336ec578, 1, 0, 0, 0, LAYOUT_CMDLINE_GPA, 0, BARE_INFO_GPA + 64, 3, 0 };
	struct {
		uint64_t addr, size;
		uint32_t type, reserved;
	} map[3] = {
		{ 0, LAYOUT_EBDA_GPA, 1, 0 },
		{ LAYOUT_EBDA_GPA, LAYOUT_HIMEM_GPA - LAYOUT_EBDA_GPA, 2, 0 },
		{ LAYOUT_HIMEM_GPA, b->ram_size - LAYOUT_HIMEM_GPA, 1, 0 },
	};
	uint64_t gdt[5] = { 0, 0, 0x00af9b000000ffffULL, 0x00cf93000000ffffULL,
			    0x00cf9b000000ffffULL };

	if (strlen(cmdline) >= LAYOUT_CMDLINE_MAX)
		fatal("command line too long");
	memcpy(b->ram + BARE_INFO_GPA, &info, sizeof(info));
	memcpy(b->ram + BARE_INFO_GPA + 64, map, sizeof(map));
	strcpy((char *)b->ram + LAYOUT_CMDLINE_GPA, cmdline);
	memcpy(b->ram + BARE_GDT_GPA, gdt, sizeof(gdt));
}

static void seg32(struct kvm_segment *s, uint16_t sel, uint8_t type)
{
	memset(s, 0, sizeof(*s));
	s->selector = sel;
	s->limit = 0xffffffff;
	s->type = type;
	s->present = 1;
	s->s = 1;
	s->db = 1;
	s->g = 1;
}

/* PVH entry: 32-bit flat protected mode, paging off, EBX = start info. */
static void setup_vcpu(struct bare *b, uint32_t entry)
{
	struct {
		struct kvm_cpuid2 c;
		struct kvm_cpuid_entry2 e[BARE_CPUID_MAX];
	} cpuid = { .c.nent = BARE_CPUID_MAX };
	struct kvm_sregs sr;
	struct kvm_regs r = { .rip = entry, .rbx = BARE_INFO_GPA, .rflags = 2 };
	int size;

	b->vcpu = ioctl(b->vm, KVM_CREATE_VCPU, 0);
	if (b->vcpu < 0)
		die("KVM_CREATE_VCPU");
	size = ioctl(b->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	b->run = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, b->vcpu, 0);
	if (size < 0 || b->run == MAP_FAILED)
		die("mmap kvm_run");
	/* Long mode needs CPUID.80000001H:EDX.LM in the vCPU's table. */
	if (ioctl(b->kvm, KVM_GET_SUPPORTED_CPUID, &cpuid) ||
	    ioctl(b->vcpu, KVM_SET_CPUID2, &cpuid))
		die("CPUID");
	if (ioctl(b->vcpu, KVM_GET_SREGS, &sr))
		die("KVM_GET_SREGS");
	seg32(&sr.cs, 0x20, 0xb);
	seg32(&sr.ds, 0x18, 0x3);
	sr.es = sr.fs = sr.gs = sr.ss = sr.ds;
	sr.gdt.base = BARE_GDT_GPA;
	sr.gdt.limit = 5 * 8 - 1;
	sr.cr0 = 0x11;
	sr.cr4 = 0;
	sr.efer = 0;
	if (ioctl(b->vcpu, KVM_SET_SREGS, &sr) || ioctl(b->vcpu, KVM_SET_REGS, &r))
		die("KVM_SET_SREGS/REGS");
}

static void setup_vm(struct bare *b, const char *elf, const char *cmdline)
{
	struct kvm_userspace_memory_region mr = { 0 };

	b->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (b->kvm < 0)
		die("/dev/kvm");
	b->vm = ioctl(b->kvm, KVM_CREATE_VM, 0);
	if (b->vm < 0)
		die("KVM_CREATE_VM");
	/* Like kvisor: in-kernel LAPIC/IOAPIC/PIC, so HLT stays in the kernel. */
	if (ioctl(b->vm, KVM_CREATE_IRQCHIP, 0))
		die("KVM_CREATE_IRQCHIP");
	b->ram = mmap(NULL, b->ram_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS |
		      MAP_NORESERVE, -1, 0);
	if (b->ram == MAP_FAILED)
		die("mmap RAM");
	mr.memory_size = b->ram_size;
	mr.userspace_addr = (uintptr_t)b->ram;
	if (ioctl(b->vm, KVM_SET_USER_MEMORY_REGION, &mr))
		die("KVM_SET_USER_MEMORY_REGION");
	write_start_info(b, cmdline);
	setup_vcpu(b, load_elf(b, elf));
}

static void str_at(struct bare *b, uint64_t addr, char *out)
{
	const char *s = addr ? gpa(b, addr, 1) : NULL;
	size_t n = 0;

	while (s && n + 1 < TESTDEV_STR_MAX && addr + n < b->ram_size && s[n])
		n++;
	memcpy(out, s ? s : "", n);
	out[n] = '\0';
}

/* testdev: print like kvisor; DONE/FAIL end the run (status 0/1). */
static void testdev(struct bare *b, uint32_t addr)
{
	char file[TESTDEV_STR_MAX], msg[TESTDEV_STR_MAX];
	struct testdev_msg *m = gpa(b, addr, sizeof(*m));

	if (!m || m->magic != TESTDEV_MAGIC)
		return;
	str_at(b, m->file_gpa, file);
	str_at(b, m->msg_gpa, msg);
	switch (m->type) {
	case TESTDEV_SYNC:
		fprintf(stderr, "testdev: SYNC %llu %s\n", m->arg, msg);
		break;
	case TESTDEV_PRINT:
		fprintf(stderr, "testdev: %s\n", msg);
		break;
	case TESTDEV_DONE:
		fprintf(stderr, "testdev: DONE %s\n", msg);
		fprintf(stderr, "bare_exit: %llu exits\n", (unsigned long long)b->exits);
		exit(0);
	case TESTDEV_FAIL:
		fprintf(stderr, "testdev: FAIL %s:%u: %s\n", file, m->line, msg);
		exit(1);
	}
}

static void port_io(struct bare *b)
{
	struct kvm_run *run = b->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	uint16_t port = run->io.port;

	if (run->io.direction == KVM_EXIT_IO_IN) {
		/* COM1 LSR: transmitter always empty; everything else unclaimed. */
		memset(data, port == LAYOUT_COM1_PORT + 5 ? 0x60 : 0xff,
		       (size_t)run->io.size * run->io.count);
		return;
	}
	if (port == LAYOUT_COM1_PORT) {
		for (uint32_t i = 0; i < run->io.count; i++)
			if (data[i] != '\r')
				putchar(data[i]);
		fflush(stdout);
	} else if (port == LAYOUT_TESTDEV_PORT && run->io.size == 4) {
		testdev(b, *(uint32_t *)data);
	} else if (port == LAYOUT_ACPI_SLEEP_CTL && (*data & LAYOUT_ACPI_SLP_EN)) {
		exit(0);
	} else if (port == LAYOUT_ACPI_RESET && *data == LAYOUT_ACPI_RESET_VAL) {
		fprintf(stderr, "bare_exit: guest rebooted\n");
		exit(0);
	}
}

/* An instruction the host cannot emulate at CPL0 (kvm-pvm hosts): int3 is
 * completed as kvisor does (skip it, inject #BP); anything else is fatal. */
static void internal_error(struct bare *b)
{
	struct kvm_run *run = b->run;
	struct kvm_vcpu_events ev;
	struct kvm_regs r = { 0 };

	ioctl(b->vcpu, KVM_GET_REGS, &r);
	if (run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION &&
	    (run->emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES) &&
	    run->emulation_failure.insn_size >= 1 && run->emulation_failure.insn_bytes[0] == 0xcc &&
	    !ioctl(b->vcpu, KVM_GET_VCPU_EVENTS, &ev)) {
		r.rip++;
		ev.exception.injected = 1;
		ev.exception.nr = 3;
		ev.exception.has_error_code = 0;
		if (!ioctl(b->vcpu, KVM_SET_REGS, &r) && !ioctl(b->vcpu, KVM_SET_VCPU_EVENTS, &ev))
			return;
	}
	fprintf(stderr, "bare_exit: KVM internal error, suberror %u, rip=%#llx",
		run->internal.suberror, (unsigned long long)r.rip);
	if (run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION &&
	    (run->emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)) {
		fprintf(stderr, ", instruction bytes:");
		for (unsigned i = 0; i < run->emulation_failure.insn_size && i < 15; i++)
			fprintf(stderr, " %02x", run->emulation_failure.insn_bytes[i]);
	}
	fputc('\n', stderr);
	exit(1);
}

static void run_loop(struct bare *b)
{
	struct kvm_run *run = b->run;

	for (;;) {
		if (ioctl(b->vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			die("KVM_RUN");
		}
		b->exits++;
		switch (run->exit_reason) {
		case KVM_EXIT_IO:
			port_io(b);
			break;
		case KVM_EXIT_MMIO:
			/* Nothing is mapped: reads see all-ones, writes vanish. */
			if (!run->mmio.is_write)
				memset(run->mmio.data, 0xff, sizeof(run->mmio.data));
			break;
		case KVM_EXIT_SHUTDOWN:
			fatal("triple fault (KVM_EXIT_SHUTDOWN)");
			break;
		case KVM_EXIT_INTERNAL_ERROR:
			internal_error(b);
			break;
		default:
			fprintf(stderr, "bare_exit: unhandled exit reason %u\n", run->exit_reason);
			exit(1);
		}
	}
}

/* TSC ticks per second, against CLOCK_MONOTONIC over ~200 ms. */
static double tsc_hz(void)
{
	struct timespec t0, t1;
	uint64_t c0, c1;
	uint32_t lo, hi;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
	c0 = (uint64_t)hi << 32 | lo;
	do
		clock_gettime(CLOCK_MONOTONIC, &t1);
	while ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec) < 2e8);
	asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
	c1 = (uint64_t)hi << 32 | lo;
	return (double)(c1 - c0) / ((t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
}

static void usage(void)
{
	fputs("usage: bare_exit [--mem MIB] [--cmdline STRING] FIRMWARE.elf\n"
	      "       bare_exit --tsc-hz\n", stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	struct bare b = { .ram_size = 64ULL << 20 };
	const char *cmdline = "", *elf = NULL;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--tsc-hz")) {
			printf("%.0f\n", tsc_hz());
			return 0;
		} else if (!strcmp(argv[i], "--mem") && i + 1 < argc) {
			b.ram_size = strtoull(argv[++i], NULL, 0) << 20;
		} else if (!strcmp(argv[i], "--cmdline") && i + 1 < argc) {
			cmdline = argv[++i];
		} else if (argv[i][0] != '-' && !elf) {
			elf = argv[i];
		} else {
			usage();
		}
	}
	if (!elf || b.ram_size < (16ULL << 20) || b.ram_size > LAYOUT_MMIO_HOLE_GPA)
		usage();
	setup_vm(&b, elf, cmdline);
	run_loop(&b);
	return 1;
}
