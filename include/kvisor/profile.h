/* Guest profiler (--profile FILE[,hz=N]): a timer kicks every vCPU hz times a
 * second, each vCPU thread counts its RIP and CPL in its own table, and FILE
 * gets the merged counts when kvisor exits. */
#ifndef KVISOR_PROFILE_H
#define KVISOR_PROFILE_H

#include <stdint.h>
#include <stdio.h>

struct vm;
struct vcpu;

/* Distinct (cpl, rip) pairs one vCPU's table holds; later new pairs are
 * counted as dropped. At most 2 * PROFILE_TABLE_MAX slots of 16 bytes. */
#define PROFILE_TABLE_MAX (1u << 20)

/* One slot; count 0 marks a free one. */
struct profile_entry {
	uint64_t rip;
	uint32_t count;
	uint32_t cpl;
};

/* Open-addressing hash of (cpl, rip) -> count, grown by doubling up to
 * twice its limit of entries (load at most 1/2). Only one thread may add. */
struct profile_table {
	struct profile_entry *slots;
	uint32_t mask;    /* number of slots - 1 (a power of two) */
	uint32_t used;    /* entries */
	uint32_t max;     /* entries at most */
	uint64_t samples; /* every sample, dropped ones too */
	uint64_t dropped; /* new pairs with the table full, counts at UINT32_MAX, failed reads */
};

/* Empty table for at most (max) (1..PROFILE_TABLE_MAX) entries: a small
 * allocation now, more as it fills. 0 or -ENOMEM/-EINVAL. */
int profile_table_init(struct profile_table *t, uint32_t max) __attribute__((warn_unused_result));

/* Count one sample. Allocates only when the table doubles (a few times
 * per run); with no room it counts the sample as dropped. */
void profile_table_add(struct profile_table *t, unsigned cpl, uint64_t rip);

/* The count of (cpl, rip), 0 if absent. */
uint32_t profile_table_count(const struct profile_table *t, unsigned cpl, uint64_t rip);

void profile_table_free(struct profile_table *t);

/* One line of the output. */
struct profile_row {
	uint64_t rip;
	uint64_t count;
	unsigned cpl;
};

/* Merge (n) tables into *rows (malloc'd; NULL when empty), sorted by count
 * descending, then cpl and rip ascending. Number of rows or -ENOMEM. */
long profile_rows(const struct profile_table *tables, unsigned n, struct profile_row **rows)
	__attribute__((warn_unused_result));

/* Write the profile of (n) tables sampled at (hz) to (f): the header line
 * "# kvisor profile: hz=H vcpus=V samples=S dropped=D rows=R (count cpl rip)",
 * then "COUNT CPL RIP" per row, RIP as 16 hex digits. Rows written or
 * -errno. */
long profile_write_tables(FILE *f, const struct profile_table *tables, unsigned n, unsigned hz)
	__attribute__((warn_unused_result));

struct profile;

/* Create a profiler for (nr_vcpus) vCPUs at (hz) samples a second each;
 * (path) is created (truncated) now, so a bad path fails before the guest
 * runs, and written by profile_write. Errors are reported in one line;
 * 0 or -errno. */
int profile_create(struct profile **out, const char *path, unsigned hz, unsigned nr_vcpus)
	__attribute__((warn_unused_result));

/* Start kicking (vm)'s vCPUs: a timerfd on vm->io. Call it once the vCPU
 * threads run. 0 or -errno. */
int profile_start(struct profile *p, struct vm *vm) __attribute__((warn_unused_result));

/* Stop the timer (a no-op when not started). When it returns no kick is in
 * flight, so the vCPU threads may be joined. */
void profile_stop(struct profile *p);

/* On the vCPU thread after KVM_RUN returned EINTR: take the sample the
 * timer asked for, if any (KVM_GET_REGS and KVM_GET_SREGS). */
void profile_sample(struct profile *p, struct vcpu *vcpu);

/* Write the file (after profile_stop and the vCPU threads' end). The
 * tables stay, so a restarted VM adds to them. 0 or -errno (reported). */
int profile_write(struct profile *p);

void profile_destroy(struct profile *p);

#endif
