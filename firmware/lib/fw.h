/* Runtime of the freestanding firmware test guests: types, port and MMIO
 * access, serial console, printf-lite, testdev reports, exceptions and CPL3.
 * Everything runs identity-mapped (0-4 GiB, 2 MiB pages) in long mode. */
#ifndef FW_H
#define FW_H

#include "kvisor/layout.h"
#include "kvisor/testdev.h"

typedef __UINT8_TYPE__ uint8_t;
typedef __UINT16_TYPE__ uint16_t;
typedef __UINT32_TYPE__ uint32_t;
typedef __UINT64_TYPE__ uint64_t;
typedef __INT64_TYPE__ int64_t;
typedef __UINTPTR_TYPE__ uintptr_t;
typedef __SIZE_TYPE__ size_t;
typedef _Bool bool;
typedef __builtin_va_list va_list;

#define true 1
#define false 0
#define NULL               ((void *)0)
#define va_start(ap, last) __builtin_va_start(ap, last)
#define va_arg(ap, type)   __builtin_va_arg(ap, type)
#define va_end(ap)         __builtin_va_end(ap)
#define ARRAY_SIZE(a)      (sizeof(a) / sizeof((a)[0]))
#define __noreturn         __attribute__((noreturn))
#define __printf(a, b)     __attribute__((format(printf, a, b)))

/* Selectors of the firmware's own GDT (lib/entry.S); user ones carry RPL 3. */
#define FW_KERNEL_CS32 0x08
#define FW_KERNEL_CS   0x10
#define FW_KERNEL_DS   0x18
#define FW_USER_DS     0x2b
#define FW_USER_CS     0x33
#define FW_TSS_SEL     0x40

/* Vector of the DPL3 gate that returns from CPL3 (see fw_user_call). */
#define FW_VEC_USER_RET 0x80

/* Port I/O. */
static inline void outb(uint16_t port, uint8_t v)
{
	asm volatile("outb %0, %1" : : "a"(v), "Nd"(port) : "memory");
}

static inline void outw(uint16_t port, uint16_t v)
{
	asm volatile("outw %0, %1" : : "a"(v), "Nd"(port) : "memory");
}

static inline void outl(uint16_t port, uint32_t v)
{
	asm volatile("outl %0, %1" : : "a"(v), "Nd"(port) : "memory");
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port) : "memory");
	return v;
}

static inline uint16_t inw(uint16_t port)
{
	uint16_t v;

	asm volatile("inw %1, %0" : "=a"(v) : "Nd"(port) : "memory");
	return v;
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;

	asm volatile("inl %1, %0" : "=a"(v) : "Nd"(port) : "memory");
	return v;
}

/* MMIO: one instruction of exactly the given width. */
static inline void mmio_write8(uint64_t gpa, uint8_t v)
{
	asm volatile("movb %0, (%1)" : : "q"(v), "r"(gpa) : "memory");
}

static inline void mmio_write16(uint64_t gpa, uint16_t v)
{
	asm volatile("movw %0, (%1)" : : "r"(v), "r"(gpa) : "memory");
}

static inline void mmio_write32(uint64_t gpa, uint32_t v)
{
	asm volatile("movl %0, (%1)" : : "r"(v), "r"(gpa) : "memory");
}

static inline void mmio_write64(uint64_t gpa, uint64_t v)
{
	asm volatile("movq %0, (%1)" : : "r"(v), "r"(gpa) : "memory");
}

static inline uint8_t mmio_read8(uint64_t gpa)
{
	uint8_t v;

	asm volatile("movb (%1), %0" : "=q"(v) : "r"(gpa) : "memory");
	return v;
}

static inline uint16_t mmio_read16(uint64_t gpa)
{
	uint16_t v;

	asm volatile("movw (%1), %0" : "=r"(v) : "r"(gpa) : "memory");
	return v;
}

static inline uint32_t mmio_read32(uint64_t gpa)
{
	uint32_t v;

	asm volatile("movl (%1), %0" : "=r"(v) : "r"(gpa) : "memory");
	return v;
}

static inline uint64_t mmio_read64(uint64_t gpa)
{
	uint64_t v;

	asm volatile("movq (%1), %0" : "=r"(v) : "r"(gpa) : "memory");
	return v;
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

static inline uint16_t read_cs(void)
{
	uint16_t cs;

	asm volatile("mov %%cs, %0" : "=r"(cs));
	return cs;
}

/* The PVH start info kvisor passes in EBX (Xen's public start_info.h). */
#define HVM_START_MAGIC 0x336ec578u

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr; /* version >= 1 */
	uint32_t memmap_entries;
	uint32_t reserved;
};

struct hvm_memmap_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type; /* 1 = RAM, as in e820 */
	uint32_t reserved;
};

/* EBX at entry, saved by lib/entry.S. */
extern uint32_t fw_start_info_gpa;

/* lib/boot.c: the start info if its magic is right, else NULL. */
const struct hvm_start_info *fw_start_info(void);
/* The command line ("" if none); "key=value" words in it: a decimal number,
 * or a hexadecimal one after "0x" (def if absent or not a number), or whether key's value is exactly value. */
const char *fw_cmdline(void);
uint64_t fw_cmdline_u64(const char *key, uint64_t def);
bool fw_cmdline_is(const char *key, const char *value);

/* Each program defines main(); returning means success (fw_done). */
void main(void);

/* lib/string.c */
void *memset(void *s, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);

/* lib/printf.c: %d %i %u %x %p %s %c %% with l/ll/z, width and 0 flag. */
int fw_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int fw_snprintf(char *buf, size_t size, const char *fmt, ...) __printf(3, 4);
/* Formatted output to COM1 ("\n" goes out as "\r\n"). */
void fw_printf(const char *fmt, ...) __printf(1, 2);

/* lib/serial.c: COM1, polling LSR.THRE before each byte. */
void fw_putc(char c);
void fw_puts(const char *s);

/* lib/testdev.c: reports through LAYOUT_TESTDEV_PORT (kvisor --testdev).
 * Messages are built on the caller's stack, so CPUs may report at once;
 * the strings are cut at TESTDEV_STR_MAX - 1 bytes. */
void fw_sync(uint64_t n, const char *fmt, ...) __printf(2, 3);
void fw_print(const char *fmt, ...) __printf(1, 2);
void __noreturn fw_done(void);
void __noreturn fw_fail(const char *file, unsigned line, const char *fmt, ...) __printf(3, 4);
void __noreturn fw_poweroff(void);
void __noreturn fw_reset(void);
void __noreturn fw_halt(void);

#define FW_FAIL(...) fw_fail(__FILE__, __LINE__, __VA_ARGS__)
#define FW_ASSERT(cond)                                                             \
	do {                                                                        \
		if (!(cond))                                                        \
			fw_fail(__FILE__, __LINE__, "assertion failed: %s", #cond); \
	} while (0)
#define FW_ASSERT_EQ(a, b)                                                                \
	do {                                                                              \
		uint64_t a_ = (uint64_t)(a), b_ = (uint64_t)(b);                          \
		if (a_ != b_)                                                             \
			fw_fail(__FILE__, __LINE__, "%s == %s: 0x%llx != 0x%llx", #a, #b, \
				(unsigned long long)a_, (unsigned long long)b_);          \
	} while (0)

/* lib/trap.c: exceptions. The frame as lib/trap.S builds it. */
struct fw_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss; /* pushed by the CPU */
};

/* Called for (vector) before the default action; return true when the
 * exception was handled (the handler may change the frame, e.g. skip the
 * faulting instruction). NULL removes the handler. */
typedef bool (*fw_trap_fn)(struct fw_frame *f);
void fw_set_trap_handler(unsigned vector, fw_trap_fn fn);
const char *fw_vector_name(unsigned vector);

static inline uint64_t read_cr2(void)
{
	uint64_t v;

	asm volatile("mov %%cr2, %0" : "=r"(v));
	return v;
}

/* lib/user.c: run fn(arg) at CPL3 on the user stack and return its result
 * at CPL0. Port I/O works at CPL3: RFLAGS.IOPL = 3 (hardware KVM) and an
 * all-zero I/O permission bitmap in the TSS (kvm-pvm ignores the guest's
 * IOPL but checks the bitmap). fn returns into a trampoline that traps to
 * CPL0 with `int $FW_VEC_USER_RET` through a DPL3 gate; where `int n` from
 * CPL3 raises #UD or #GP instead (kvm-pvm: #UD), that exception at the
 * trampoline is the same return. Not reentrant; bootstrap CPU only. */
typedef uint64_t (*fw_user_fn)(uint64_t arg);
uint64_t fw_user_call(fw_user_fn fn, uint64_t arg);
/* How the last fw_user_call came back: FW_VEC_USER_RET, 6 (#UD) or 13 (#GP). */
extern unsigned fw_user_ret_vector;

/* lib/acpi.c: the ACPI table with signature sig (checksum checked) or NULL;
 * the APIC IDs of the enabled processors in the MADT (their count is
 * returned; at most max are stored). Malformed tables fail the test. */
const void *fw_acpi_table(const char *sig);
unsigned fw_acpi_cpus(uint8_t *apic_ids, unsigned max);

/* lib/smp.c: start every processor of apic_ids[0..n) except the caller's,
 * one at a time; each runs fn(index) (index 1.. in start order) at CPL0 on
 * its own stack, then halts. Returns the number started; a processor that
 * does not come up fails the test. fw_apic_id() is the caller's APIC ID. */
#define FW_MAX_CPUS 16
typedef void (*fw_ap_fn)(unsigned index);
unsigned fw_smp_start(fw_ap_fn fn, const uint8_t *apic_ids, unsigned n);
unsigned fw_apic_id(void);

/* Internal: lib/entry.S, lib/trap.S, lib/user.S. */
void fw_idt_load(void);
extern const char fw_ap_tramp[], fw_ap_tramp_end[];
void fw_lib_init(void);
void fw_trap(struct fw_frame *f);
extern const uint64_t fw_trap_stubs[256];
uint64_t fw_user_enter(fw_user_fn fn, uint64_t arg, uint64_t user_rsp);
void __noreturn fw_user_leave(uint64_t ret);
extern char fw_user_trampoline[], fw_user_trap_insn[];
extern uint64_t fw_gdt[];
#define FW_TSS_IOMAP 104                       /* I/O bitmap offset in the TSS */
#define FW_TSS_SIZE  (FW_TSS_IOMAP + 8192 + 1) /* + 65536 bits + 0xff end byte */
extern uint8_t fw_tss[FW_TSS_SIZE];

#endif
