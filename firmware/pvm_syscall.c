/* System calls from CPL3 the way Linux makes them (STAR/LSTAR/FMASK, entry
 * page supervisor-only, swapgs, sysretq), each checked (result, RCX, R11,
 * RFLAGS, RSP, registers, FS/GS bases), mixed with demand-paging faults at
 * CPL3 and CPL0, on every processor at once, optionally under LAPIC timer
 * interrupts. kvm-pvm needs kvisor's fix-up for each syscall (see
 * src/pvm/syscall.c); hardware KVM runs them natively. Timed for
 * tools/bench/pvm. fw.n, fw.pf, fw.mix: syscalls, page faults and mixed
 * rounds per CPU; fw.timer=N: a timer interrupt every N ns at CPL3;
 * fw.nosys=1: only the page faults, on CPU 0, without syscalls; fw.jmp=1:
 * first a jump to LSTAR from CPL3, which must fault (not be a syscall). */
#include "cpu.h"
#include "fw.h"

#define MAX_CPUS  8
#define SYS_PAGES 64            /* demand pages per CPU */
#define WIN_VA    0x3fe00000ULL /* 2 MiB window of 4 KiB pages (PD[511]) */
#define FRAME_GPA 0x1000000ULL  /* 16 MiB: the frames behind the window */
#define TAG       0x5a17c0de00000000ULL
#define ARM_TICKS 100000000ULL /* >= 25 ms at <= 4 GHz: see cpu_init */

#define PF_USER   4 /* #PF error code: from CPL3 */
#define VEC_TIMER 0x30

/* RFLAGS bits; FMASK is Linux's (arch/x86/kernel/cpu/common.c). */
#define FL_CF 0x1ULL
#define FL_ZF 0x40ULL
#define FL_TF 0x100ULL
#define FL_IF 0x200ULL
#define FL_DF 0x400ULL
#define FL_RF 0x10000ULL
#define FL_AC 0x40000ULL
#define FMASK                                                                                  \
	(0x1ULL | 0x4 | 0x10 | 0x40 | 0x80 | FL_TF | FL_IF | FL_DF | 0x800 | 0x3000 | 0x4000 | \
	 FL_RF | FL_AC | 0x200000)

/* System call numbers (RAX); arguments in RDI, RSI, RDX. */
#define SYS_INC    0 /* RDI + 1 */
#define SYS_COUNT  1 /* this CPU's counter, incremented */
#define SYS_MMIO   2 /* a byte through the testdev scratch register */
#define SYS_UNMAP  3 /* unmap this CPU's window: the number of pages */
#define SYS_FAULTS 4 /* this CPU's demand faults so far */
#define SYS_KTOUCH 5 /* the kernel reads the word at RDI (in the window) */
#define SYS_FAIL   6 /* FAIL at line RDI: got RSI, want RDX */
#define SYS_EXIT   7 /* back to CPL0 with RDI (user_run) */

/* For asm strings; clang-format cannot lay them out: they are fenced off. */
#define XSTR(x) STR(x)
#define STR(x)  #x

/* Per-CPU data, reached through GS after swapgs; offsets used in asm. */
#define PC_KSTACK     0
#define PC_USER_RSP   8
#define PC_KERNEL_RSP 16
#define PC_SELF       24

struct percpu {
	uint64_t kstack;     /* top of the syscall stack */
	uint64_t user_rsp;   /* saved at entry */
	uint64_t kernel_rsp; /* user_run's context, for SYS_EXIT */
	struct percpu *self;
	unsigned index;
	uint64_t ustack_lo, ustack_hi;
	uint64_t counter, faults, syscalls;
	uint64_t sys_n, sys_cycles, pf_n, pf_cycles;
	uint64_t ticks;                   /* timer interrupts taken at CPL3 */
	uint64_t jmp_pending, jmp_faults; /* fw.jmp */
} __attribute__((aligned(64)));

_Static_assert(__builtin_offsetof(struct percpu, kstack) == PC_KSTACK, "asm offsets");
_Static_assert(__builtin_offsetof(struct percpu, user_rsp) == PC_USER_RSP, "asm offsets");
_Static_assert(__builtin_offsetof(struct percpu, kernel_rsp) == PC_KERNEL_RSP, "asm offsets");
_Static_assert(__builtin_offsetof(struct percpu, self) == PC_SELF, "asm offsets");

/* What the entry stub pushes, lowest address first. */
struct sys_frame {
	uint64_t r10, r9, r8, rdx, rsi, rdi, r11, rcx, rflags, user_rsp;
};

static struct percpu cpus[MAX_CPUS];
/* User FS and GS bases (as TLS would use them), one pair per CPU: the user
 * loop checks %fs:0 and %gs:0 after every syscall. */
static uint64_t user_fs[MAX_CPUS][8], user_gs[MAX_CPUS][8];
static uint8_t kstacks[MAX_CPUS][8192] __attribute__((aligned(16)));
static uint8_t xstacks[MAX_CPUS][8192] __attribute__((aligned(16)));
static uint8_t ustacks[MAX_CPUS][16384] __attribute__((aligned(16)));
static uint64_t *win_pt; /* the demand window's page table */
static uint64_t n_sys, n_pf, n_mix, timer_init;
static bool jmp_test;
static unsigned lstar_faults;
extern char __bss_end[];

/* The syscall entry: alone in a page that CPL3 cannot touch (as Linux's
 * entry text), so on kvm-pvm the unprivileged jump to it faults. */
void sys_entry(void);
void sys_exit_kernel(void);
uint64_t sys_dispatch(struct sys_frame *f, struct percpu *pc, uint64_t nr);
/* clang-format off */
asm(".pushsection .text.pvm_entry, \"ax\", @progbits\n"
    ".balign 4096\n"
    ".globl sys_entry\n"
    "sys_entry:\n"
    "	swapgs\n"
    "	movq %rsp, %gs:" XSTR(PC_USER_RSP) "\n"
    "	movq %gs:" XSTR(PC_KSTACK) ", %rsp\n"
    "	pushq %gs:" XSTR(PC_USER_RSP) "\n"
    "	pushfq\n" /* as masked by FMASK, checked in sys_dispatch */
    "	cmpq $" XSTR(SYS_EXIT) ", %rax\n"
    "	je sys_exit_kernel\n"
    "	pushq %rcx; pushq %r11; pushq %rdi; pushq %rsi\n"
    "	pushq %rdx; pushq %r8; pushq %r9; pushq %r10\n"
    "	movq %rsp, %rdi\n"
    "	movq %gs:" XSTR(PC_SELF) ", %rsi\n"
    "	movq %rax, %rdx\n"
    "	call sys_dispatch\n"
    "	popq %r10; popq %r9; popq %r8; popq %rdx\n"
    "	popq %rsi; popq %rdi; popq %r11; popq %rcx\n"
    "	addq $8, %rsp\n"
    "	popq %rsp\n"
    "	swapgs\n"
    "	sysretq\n"
    /* SYS_EXIT(value): back to user_run's caller at CPL0, GS stays kernel's. */
    "sys_exit_kernel:\n"
    "	movq %gs:" XSTR(PC_KERNEL_RSP) ", %rsp\n"
    "	movq %rdi, %rax\n"
    "	popq %r15; popq %r14; popq %r13; popq %r12\n"
    "	popq %rbp; popq %rbx\n"
    "	ret\n"
    ".balign 4096\n"
    ".popsection");
/* clang-format on */

/* uint64_t user_run(fn, arg, user_rsp): fn(arg) at CPL3, which ends with
 * SYS_EXIT(result); any CPU (per-CPU state through GS). */
typedef uint64_t (*user_fn)(uint64_t arg);
uint64_t user_run(user_fn fn, uint64_t arg, uint64_t user_rsp);
void user_tramp(void);
/* clang-format off */
asm(".text\n"
    ".globl user_run, user_tramp\n"
    "user_run:\n"
    "	pushq %rbx; pushq %rbp; pushq %r12; pushq %r13\n"
    "	pushq %r14; pushq %r15\n"
    "	movq %rsp, %gs:" XSTR(PC_KERNEL_RSP) "\n"
    "	movq %rdi, %r12\n"
    "	movq %rsi, %rdi\n"
    "	swapgs\n"
    "	pushq $" XSTR(FW_USER_DS) "\n"
    "	pushq %rdx\n"
    "	pushq $0x202\n" /* IF: timer interrupts at CPL3 (fw.timer) */
    "	pushq $" XSTR(FW_USER_CS) "\n"
    "	leaq user_tramp(%rip), %rax\n"
    "	pushq %rax\n"
    "	iretq\n"
    "user_tramp:\n"
    "	call *%r12\n"
    "	movq %rax, %rdi\n"
    "	movl $" XSTR(SYS_EXIT) ", %eax\n"
    "	syscall\n"
    "	ud2\n");
/* clang-format on */

/* One system call with every register the kernel must keep checked: the
 * flags in (set_flags) go in, RCX/R11/RSP/RFLAGS and the patterns come out. */
struct sys_check {
	uint64_t nr, arg, set_flags;    /* 0, 8, 16: in */
	uint64_t ret, rcx, r11;         /* 24, 32, 40 */
	uint64_t rsp_before, rsp_after; /* 48, 56 */
	uint64_t fl_before, fl_after;   /* 64, 72 */
	uint64_t regs[10];              /* 80: rdx rsi rdi r8 r9 r10 rbx rbp r13 r14 */
};

#define PAT(n) (0x1111111111111111ULL * (n))
static const uint64_t reg_pat[10] = { PAT(2), PAT(3), 0,      PAT(4), PAT(5),
				      PAT(6), PAT(7), PAT(8), PAT(9), PAT(10) };
void sys_checked(struct sys_check *c);
void sys_checked_ret(void);
asm(".text\n"
    ".globl sys_checked, sys_checked_ret\n"
    "sys_checked:\n"
    "	pushq %rbx; pushq %rbp; pushq %r12; pushq %r13\n"
    "	pushq %r14; pushq %r15\n"
    "	movq %rdi, %r12\n"
    "	movabsq $0x2222222222222222, %rdx; movabsq $0x3333333333333333, %rsi\n"
    "	movabsq $0x4444444444444444, %r8; movabsq $0x5555555555555555, %r9\n"
    "	movabsq $0x6666666666666666, %r10; movabsq $0x7777777777777777, %rbx\n"
    "	movabsq $0x8888888888888888, %rbp; movabsq $0x9999999999999999, %r13\n"
    "	movabsq $0xaaaaaaaaaaaaaaaa, %r14\n"
    "	movq 8(%r12), %rdi\n"
    "	pushfq\n"
    "	popq %rax\n"
    "	andq $~0x40cd5, %rax\n" /* CF PF AF ZF SF DF OF AC */
    "	orq 16(%r12), %rax\n"
    "	pushq %rax\n"
    "	popfq\n"
    "	movq 0(%r12), %rax\n"
    "	pushfq\n"
    "	popq 64(%r12)\n"
    "	movq %rsp, 48(%r12)\n"
    "	syscall\n"
    "sys_checked_ret:\n"
    "	pushfq\n"
    "	popq 72(%r12)\n"
    "	cld\n"
    "	movq %rsp, 56(%r12); movq %rax, 24(%r12); movq %rcx, 32(%r12); movq %r11, 40(%r12)\n"
    "	movq %rdx, 80(%r12); movq %rsi, 88(%r12); movq %rdi, 96(%r12); movq %r8, 104(%r12)\n"
    "	movq %r9, 112(%r12); movq %r10, 120(%r12); movq %rbx, 128(%r12); movq %rbp, 136(%r12)\n"
    "	movq %r13, 144(%r12); movq %r14, 152(%r12)\n"
    "	pushq $2\n" /* AC off again */
    "	popfq\n"
    "	popq %r15; popq %r14; popq %r13; popq %r12\n"
    "	popq %rbp; popq %rbx\n"
    "	ret\n");

/* ---- CPL0: system calls and page faults ---------------------------------- */

static uint64_t *win_pte(uint64_t va)
{
	return &win_pt[(va - WIN_VA) >> 12];
}

static uint64_t cpu_win(unsigned cpu)
{
	return WIN_VA + (uint64_t)cpu * SYS_PAGES * 4096;
}

/* Unmap the pages of (cpu)'s window: the number that were present. */
static uint64_t unmap_window(unsigned cpu)
{
	uint64_t n = 0;

	for (uint64_t va = cpu_win(cpu); va < cpu_win(cpu + 1); va += 4096) {
		if (!(*win_pte(va) & PTE_P))
			continue;
		*win_pte(va) = 0;
		asm volatile("invlpg (%0)" : : "r"(va) : "memory");
		n++;
	}
	return n;
}

uint64_t sys_dispatch(struct sys_frame *f, struct percpu *pc, uint64_t nr)
{
	uint16_t cs, ss;

	asm volatile("mov %%cs, %0; mov %%ss, %1" : "=r"(cs), "=r"(ss));
	if (cs != FW_KERNEL_CS || ss != FW_KERNEL_DS)
		FW_FAIL("cpu%u: syscall entered with cs=0x%x ss=0x%x", pc->index, cs, ss);
	if (f->rflags & FMASK)
		FW_FAIL("cpu%u: syscall entered with rflags=0x%lx (FMASK 0x%llx)", pc->index,
			f->rflags, FMASK);
	if (f->user_rsp <= pc->ustack_lo || f->user_rsp > pc->ustack_hi)
		FW_FAIL("cpu%u: user rsp 0x%lx not on this CPU's user stack", pc->index,
			f->user_rsp);
	pc->syscalls++;
	switch (nr) {
	case SYS_INC:
		return f->rdi + 1;
	case SYS_COUNT:
		return ++pc->counter;
	case SYS_MMIO:
		mmio_write8(LAYOUT_TESTDEV_MMIO_GPA + TESTDEV_MMIO_SCRATCH, (uint8_t)f->rdi);
		return mmio_read8(LAYOUT_TESTDEV_MMIO_GPA + TESTDEV_MMIO_SCRATCH);
	case SYS_UNMAP:
		return unmap_window(pc->index);
	case SYS_FAULTS:
		return pc->faults;
	case SYS_KTOUCH: /* a kernel access to a user page: may fault at CPL0 */
		if (f->rdi < cpu_win(pc->index) || f->rdi >= cpu_win(pc->index + 1))
			return 0;
		return *(volatile uint64_t *)f->rdi;
	case SYS_FAIL:
		fw_fail(__FILE__, (unsigned)f->rdi, "cpu%u: got 0x%lx, want 0x%lx", pc->index,
			f->rsi, f->rdx);
	}
	FW_FAIL("cpu%u: unknown syscall %lu", pc->index, nr);
}

/* Demand paging in the window: a read at CPL3 (error 4) or CPL0 (error 0)
 * of a page not present maps its frame, tagged with its address. The jump
 * to LSTAR failing at CPL3 (kvm-pvm without kvisor's fix-up) ends the test. */
static bool on_pf(struct fw_frame *f)
{
	uint64_t cr2 = read_cr2(), frame;
	unsigned cpu;
	bool user = (f->cs & 3) == 3;

	if (user && f->rip == (uintptr_t)sys_entry) {
		uint64_t i = (f->rsp - 1 - (uintptr_t)ustacks) / sizeof(ustacks[0]);

		/* fw.jmp: a jump to LSTAR from CPL3 faults as on any CPU; resume. */
		if (i < MAX_CPUS && cpus[i].jmp_pending) {
			cpus[i].jmp_pending = 0;
			cpus[i].jmp_faults++;
			f->rip = f->rcx;
			return true;
		}
		lstar_faults++;
		fw_print("pvm_syscall: #PF at LSTAR from CPL3, error 0x%lx, cr2 0x%lx", f->error,
			 cr2);
		FW_FAIL("syscall faulted at LSTAR: compatibility layer off?");
	}
	if (cr2 < WIN_VA || cr2 >= WIN_VA + 0x200000 || f->error != (user ? PF_USER : 0) ||
	    (*win_pte(cr2) & PTE_P))
		return false;
	cpu = (unsigned)((cr2 - WIN_VA) / (SYS_PAGES * 4096));
	frame = FRAME_GPA + (cr2 - WIN_VA) / 4096 * 4096;
	*(volatile uint64_t *)frame = TAG | (cr2 & ~0xfffULL);
	*win_pte(cr2) = frame | PTE_P | PTE_W | PTE_U;
	cpus[cpu].faults++;
	return true;
}

/* fw.timer=N: the LAPIC timer interrupts every N bus cycles (1 ns on KVM)
 * while this CPU is at CPL3; the kernel runs with IF clear (FMASK). */
/* Interrupts come only at CPL3, onto this CPU's TSS.RSP0 stack. */
static bool on_timer(struct fw_frame *f)
{
	uint64_t cpu = ((uintptr_t)f - (uintptr_t)xstacks) / sizeof(xstacks[0]);

	if ((f->cs & 3) != 3 || cpu >= MAX_CPUS)
		FW_FAIL("timer interrupt at CPL%lu rip 0x%lx: the kernel runs with IF clear",
			f->cs & 3, f->rip);
	cpus[cpu].ticks++;
	fw_lapic_eoi();
	return true;
}

/* ---- CPL3: the test loops -------------------------------------------------- */

static inline uint64_t sys(uint64_t nr, uint64_t a0)
{
	uint64_t ret;

	asm volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a0) : "rcx", "r11", "memory");
	return ret;
}

#define UCHECK(got, want)                                                             \
	do {                                                                          \
		uint64_t g_ = (got), w_ = (want);                                     \
		if (g_ != w_)                                                         \
			asm volatile("syscall"                                        \
				     :                                                \
				     : "a"(SYS_FAIL), "D"(__LINE__), "S"(g_), "d"(w_) \
				     : "rcx", "r11", "memory");                       \
	} while (0)

/* Checked syscall i of this CPU: alternately SYS_INC and SYS_COUNT, with
 * CF, DF, AC and ZF varied, so R11 and the restored RFLAGS show them. */
static void checked(struct percpu *pc, uint64_t i, uint64_t *count)
{
	static const uint64_t flags[8] = {
		0, FL_CF, FL_DF, FL_AC, FL_ZF | FL_CF, FL_DF | FL_AC, FL_CF | FL_DF | FL_AC, FL_ZF
	};
	struct sys_check c = { .nr = i & 1 ? SYS_COUNT : SYS_INC,
			       .arg = i * 7919 + pc->index,
			       .set_flags = flags[(i >> 1) & 7] };
	uint64_t fs, gs;

	sys_checked(&c);
	asm volatile("movq %%fs:0, %0; movq %%gs:0, %1" : "=r"(fs), "=r"(gs));
	UCHECK(fs, (uintptr_t)user_fs[pc->index]);
	UCHECK(gs, (uintptr_t)user_gs[pc->index]);
	UCHECK(c.ret, c.nr == SYS_INC ? c.arg + 1 : ++*count);
	UCHECK(c.rcx, (uintptr_t)sys_checked_ret);
	UCHECK(c.r11 & ~FL_RF, c.fl_before & ~FL_RF);
	UCHECK(c.fl_after & ~FL_RF, c.fl_before & ~FL_RF);
	UCHECK(c.fl_before & (FL_CF | FL_DF | FL_AC | FL_ZF), c.set_flags);
	UCHECK(c.rsp_after, c.rsp_before);
	for (unsigned r = 0; r < ARRAY_SIZE(reg_pat); r++)
		UCHECK(c.regs[r], r == 2 ? c.arg : reg_pat[r]);
}

/* Touch every page of this CPU's window once at CPL3 (each faults), check
 * the tags; SYS_UNMAP is left to the caller. Returns the TSC ticks. */
static uint64_t touch_all(struct percpu *pc, uint64_t round)
{
	uint64_t t0 = rdtsc(), t1;

	for (uint64_t va = cpu_win(pc->index); va < cpu_win(pc->index + 1); va += 4096) {
		volatile uint64_t *p = (volatile uint64_t *)va;

		UCHECK(p[0], TAG | va);
		p[1] = round;
	}
	t1 = rdtsc();
	for (uint64_t va = cpu_win(pc->index); va < cpu_win(pc->index + 1); va += 4096)
		UCHECK(((volatile uint64_t *)va)[1], round);
	return t1 - t0;
}

/* fw.nosys: one window of page faults at CPL3 and back with fw_user_call,
 * which needs no syscall (so this also runs with the layer off). */
static uint64_t user_touch_window(uint64_t round)
{
	return touch_all(&cpus[0], round);
}

static void run_nosys(void)
{
	struct percpu *pc = &cpus[0];

	for (uint64_t i = 0; i < n_pf / SYS_PAGES; i++) {
		pc->pf_cycles += fw_user_call(user_touch_window, i);
		FW_ASSERT_EQ(unmap_window(0), SYS_PAGES);
	}
	FW_ASSERT_EQ(pc->faults, n_pf);
	fw_print("pvm_syscall cpu0 pagefault n=%lu cycles=%lu", n_pf, pc->pf_cycles);
	fw_sync(2, "page faults only (fw.nosys): all results matched");
}

/* fw.jmp: user code that jumps to the syscall entry (a supervisor page)
 * with the registers a syscall would leave (RCX = the next instruction, R11
 * = RFLAGS) must get the #PF that any CPU raises; a VMM that took it for a
 * syscall would enter the kernel with the user's RFLAGS (IF, AC, DF set)
 * and R11 (IOPL for sysret) under the user's control. */
static void jump_to_lstar(struct percpu *pc)
{
	uint64_t rax = SYS_INC;

	asm volatile("leaq 1f(%%rip), %%rcx\n\t"
		     "pushfq\n\t"
		     "popq %%r11\n\t"
		     "movq $1, %[pending]\n\t"
		     "jmp *%[entry]\n"
		     "1:"
		     : "+a"(rax), [pending] "=m"(pc->jmp_pending)
		     : "D"(41), [entry] "r"(sys_entry)
		     : "rcx", "r11", "memory");
	UCHECK(rax, SYS_INC);
	UCHECK(pc->jmp_faults, 1);
}

static uint64_t user_main(uint64_t index)
{
	struct percpu *pc = &cpus[index];
	uint64_t count = 0, faults = 0, t0, i, mapped = 0;

	if (jmp_test)
		jump_to_lstar(pc);

	/* 1. System calls alone, timed. */
	t0 = rdtsc();
	for (i = 0; i < n_sys; i++)
		checked(pc, i, &count);
	pc->sys_cycles = rdtsc() - t0;
	pc->sys_n = n_sys;
	UCHECK(sys(SYS_MMIO, 0xa5), 0xa5);

	/* 2. Page faults at CPL3, a window at a time, timed without the unmap. */
	for (i = 0; i < n_pf / SYS_PAGES; i++) {
		pc->pf_cycles += touch_all(pc, i);
		faults += SYS_PAGES;
		UCHECK(sys(SYS_FAULTS, 0), faults);
		UCHECK(sys(SYS_UNMAP, 0), SYS_PAGES);
	}
	pc->pf_n = n_pf / SYS_PAGES * SYS_PAGES;

	/* 3. Mixed: a checked syscall, a user touch, a kernel touch, in turn. */
	for (i = 0; i < n_mix; i++) {
		uint64_t va = cpu_win(pc->index) + (i % SYS_PAGES) * 4096;

		checked(pc, n_sys + i, &count);
		if (i % SYS_PAGES == 0 && mapped) {
			UCHECK(sys(SYS_UNMAP, 0), mapped);
			mapped = 0;
		}
		if (i & 1) {
			UCHECK(*(volatile uint64_t *)va, TAG | va);
		} else {
			UCHECK(sys(SYS_KTOUCH, va), TAG | va);
		}
		mapped++;
		faults++;
		UCHECK(sys(SYS_FAULTS, 0), faults);
	}
	sys(SYS_UNMAP, 0);
	return count;
}

/* ---- CPL0: setup and the run on each CPU ----------------------------------- */

/* Page tables: the firmware's low 2 MiB in 4 KiB pages with the entry page
 * supervisor-only, and the demand window, empty. */
static void paging_init(void)
{
	uint64_t entry = (uintptr_t)sys_entry, *low_pt;

	FW_ASSERT(entry % 4096 == 0 && entry < 0x200000 && (uintptr_t)__bss_end < 0x200000);
	low_pt = fw_pt_4k(0, true);
	low_pt[entry >> 12] &= ~PTE_U;
	asm volatile("invlpg (%0)" : : "r"(entry) : "memory");
	win_pt = fw_pt_4k(WIN_VA, false);
}

/* The frames behind the window must be RAM (the start info's memory map). */
static void check_frames(void)
{
	const struct hvm_start_info *si = fw_start_info();
	const struct hvm_memmap_entry *m;

	FW_ASSERT(si && si->version >= 1 && si->memmap_paddr);
	m = (const void *)(uintptr_t)si->memmap_paddr;
	for (unsigned i = 0; i < si->memmap_entries; i++)
		if (m[i].type == 1 && m[i].addr <= FRAME_GPA &&
		    m[i].addr + m[i].size >= FRAME_GPA + 0x200000)
			return;
	FW_FAIL("no RAM at 0x%llx-0x%llx: run with --mem 64M", FRAME_GPA, FRAME_GPA + 0x200000);
}

/* This CPU's GDT (the runtime's selectors plus one TSS per CPU), TSS,
 * syscall MSRs and GS; then port exits for a while, since kvisor arms its
 * fix-up from a poll on port exits (every 10 ms until armed). */
static void cpu_init(unsigned index)
{
	struct percpu *pc = &cpus[index];
	uint64_t t0;

	pc->index = index;
	pc->self = pc;
	pc->kstack = (uintptr_t)kstacks[index] + sizeof(kstacks[index]);
	pc->ustack_lo = (uintptr_t)ustacks[index];
	pc->ustack_hi = pc->ustack_lo + sizeof(ustacks[index]);
	fw_cpu_tss(index, (uintptr_t)xstacks[index] + sizeof(xstacks[index]));
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SCE);
	/* Linux's layout: kernel CS 0x10 (SS 0x18); SYSRET CS = 0x23 + 16. */
	wrmsr(MSR_STAR, (uint64_t)(FW_USER_CS - 16) << 48 | (uint64_t)FW_KERNEL_CS << 32);
	wrmsr(MSR_LSTAR, (uintptr_t)sys_entry);
	wrmsr(MSR_FMASK, FMASK);
	user_fs[index][0] = (uintptr_t)user_fs[index];
	user_gs[index][0] = (uintptr_t)user_gs[index];
	wrmsr(MSR_FS_BASE, (uintptr_t)user_fs[index]);
	wrmsr(MSR_GS_BASE, (uintptr_t)pc);
	wrmsr(MSR_KGS_BASE, (uintptr_t)user_gs[index]); /* the user's, after swapgs */
	fw_sync(10 + index, "cpu%u: syscall msrs set", index);
	t0 = rdtsc();
	while (rdtsc() - t0 < ARM_TICKS)
		(void)inb(LAYOUT_ACPI_SLEEP_STS);
}

static volatile unsigned ready, go, finished;

static void cpu_run(unsigned index)
{
	struct percpu *pc = &cpus[index];
	uint64_t count;

	if (timer_init)
		fw_lapic_timer(VEC_TIMER, (uint32_t)timer_init);
	count = user_run(user_main, index, pc->ustack_hi);
	if (timer_init)
		fw_lapic_timer(VEC_TIMER, 0);

	FW_ASSERT_EQ(count, (n_sys + n_mix) / 2); /* the odd calls */
	FW_ASSERT_EQ(pc->counter, count);
	fw_print("pvm_syscall cpu%u syscall n=%lu cycles=%lu", index, pc->sys_n, pc->sys_cycles);
	fw_print("pvm_syscall cpu%u pagefault n=%lu cycles=%lu", index, pc->pf_n, pc->pf_cycles);
	if (timer_init) {
		fw_print("pvm_syscall cpu%u: %lu timer interrupts", index, pc->ticks);
		FW_ASSERT(pc->ticks > 0);
	}
	fw_print("pvm_syscall cpu%u: %lu syscalls, %lu page faults, all results matched", index,
		 pc->syscalls, pc->faults);
}

static void ap_main(unsigned index)
{
	cpu_init(index);
	__atomic_fetch_add(&ready, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&go, __ATOMIC_ACQUIRE))
		asm volatile("pause");
	cpu_run(index);
	__atomic_fetch_add(&finished, 1, __ATOMIC_RELEASE);
}

void main(void)
{
	static uint8_t apic_ids[FW_MAX_CPUS];
	unsigned n, started;

	n_sys = fw_cmdline_u64("fw.n", 10000);
	n_pf = fw_cmdline_u64("fw.pf", 1024) / SYS_PAGES * SYS_PAGES;
	n_mix = fw_cmdline_u64("fw.mix", 1024);
	timer_init = fw_cmdline_u64("fw.timer", 0);
	jmp_test = fw_cmdline_is("fw.jmp", "1");
	if (timer_init >> 32)
		FW_FAIL("fw.timer=%lu: at most 32 bits", timer_init);
	fw_printf("kvisor firmware: pvm_syscall\n");
	n = fw_acpi_cpus(apic_ids, ARRAY_SIZE(apic_ids));
	if (n > MAX_CPUS)
		FW_FAIL("%u CPUs: pvm_syscall supports %u", n, MAX_CPUS);
	check_frames();
	paging_init();
	fw_set_trap_handler(14, on_pf);
	fw_set_trap_handler(VEC_TIMER, on_timer);
	cpu_init(0);
	if (fw_cmdline_is("fw.nosys", "1")) {
		run_nosys();
		return;
	}
	started = fw_smp_start(ap_main, apic_ids, n);
	FW_ASSERT_EQ(started, n - 1);
	while (__atomic_load_n(&ready, __ATOMIC_ACQUIRE) != started)
		asm volatile("pause");
	fw_sync(1, "%u cpus: %lu syscalls, %lu page faults, %lu mixed each", n, n_sys, n_pf, n_mix);
	__atomic_store_n(&go, 1, __ATOMIC_RELEASE);
	cpu_run(0);
	while (__atomic_load_n(&finished, __ATOMIC_ACQUIRE) != started)
		asm volatile("pause");
	fw_print("pvm_syscall: faults at LSTAR seen by the guest: %u", lstar_faults);
	fw_sync(2, "%u cpus: all results matched", n);
}
