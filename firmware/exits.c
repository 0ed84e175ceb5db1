/* Exit round-trip benchmark guest (tools/bench/exits): per phase, fw.n port
 * or MMIO writes at CPL0 or CPL3, timed with rdtsc in the guest and reported
 * as "exits <phase> n=<N> cycles=<TSC ticks>". */
#include "fw.h"

#define BENCH_PORT 0x510 /* unclaimed: the VMM's cheapest port path */
#define BENCH_MMIO (LAYOUT_TESTDEV_MMIO_GPA + TESTDEV_MMIO_SCRATCH)
#define UNROLL     8

/* Unrolled so the loop itself (emulated at CPL0 here) costs 2 instructions
 * per UNROLL exits; n is a multiple of UNROLL. */
static void loop_pio(uint64_t n)
{
	for (n /= UNROLL; n; n--)
		asm volatile(".rept 8; outb %%al, %%dx; .endr" : : "a"(0), "d"(BENCH_PORT));
}

static void loop_mmio(uint64_t n)
{
	for (n /= UNROLL; n; n--)
		asm volatile(".rept 8; movl %%eax, (%1); .endr"
			     :
			     : "a"(0), "r"(BENCH_MMIO)
			     : "memory");
}

/* The same loop without exits: its cost is part of the CPL0 numbers. */
static void loop_empty(uint64_t n)
{
	for (n /= UNROLL; n; n--)
		asm volatile("" : : : "memory");
}

typedef void (*loop_fn)(uint64_t n);

static const loop_fn loops[] = { loop_empty, loop_pio, loop_mmio };

/* At CPL3: arg = loop index << 48 | n; returns the TSC ticks spent. */
static uint64_t user_timed(uint64_t arg)
{
	uint64_t t0 = rdtsc();

	loops[arg >> 48](arg & 0xffffffffffffULL);
	return rdtsc() - t0;
}

static void phase(unsigned id, const char *name, unsigned loop, bool user, uint64_t n)
{
	uint64_t cycles;

	fw_sync(id, "%s begin", name);
	if (user) {
		cycles = fw_user_call(user_timed, (uint64_t)loop << 48 | n);
	} else {
		uint64_t t0 = rdtsc();

		loops[loop](n);
		cycles = rdtsc() - t0;
	}
	fw_sync(id, "%s end", name);
	fw_print("exits %s n=%lu cycles=%lu", name, n, cycles);
}

void main(void)
{
	uint64_t n = fw_cmdline_u64("fw.n", 20000) / UNROLL * UNROLL;

	if (!n || n >> 48)
		FW_FAIL("fw.n=%lu: need 8 <= n < 2^48", n);
	fw_printf("kvisor firmware: exits, n=%lu\n", n);
	phase(1, "cpl0-loop", 0, false, n);
	phase(2, "cpl0-pio", 1, false, n);
	phase(3, "cpl0-mmio", 2, false, n);
	phase(4, "cpl3-pio", 1, true, n);
	phase(5, "cpl3-mmio", 2, true, n);
}
