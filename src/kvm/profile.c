/* Guest profiler: a timerfd on the VM's I/O thread kicks each vCPU out of
 * KVM_RUN hz times a second; the vCPU thread reads RIP and CPL and counts
 * them in its own table (src/util/profile_table.c). */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "kvisor/evloop.h"
#include "kvisor/log.h"
#include "kvisor/profile.h"
#include "kvisor/vcpu.h"
#include "kvisor/vm.h"
#include "kvisor/x86.h"

struct profile {
	char *path;
	int fd; /* (path), open since creation; -1 once written */
	unsigned hz;
	unsigned nr_cpus;
	struct profile_table *tables; /* per vCPU, each written by its thread only */
	int *pending;                 /* per vCPU: the timer asked for a sample (atomic) */
	struct vm *vm;                /* while started */
	int tfd;                      /* the timerfd while started, else -1 */
	bool sync;                    /* KVM stores the registers into kvm_run on request */
};

int profile_create(struct profile **out, const char *path, unsigned hz, unsigned nr_vcpus)
{
	struct profile *p;
	int ret;

	if (hz == 0 || nr_vcpus == 0)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->fd = p->tfd = -1;
	p->hz = hz;
	p->path = strdup(path);
	p->tables = calloc(nr_vcpus, sizeof(*p->tables));
	p->pending = calloc(nr_vcpus, sizeof(*p->pending));
	if (!p->path || !p->tables || !p->pending) {
		ret = -ENOMEM;
		goto err;
	}
	for (; p->nr_cpus < nr_vcpus; p->nr_cpus++) {
		ret = profile_table_init(&p->tables[p->nr_cpus], PROFILE_TABLE_MAX);
		if (ret)
			goto err;
	}
	p->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (p->fd < 0) {
		ret = -errno;
		log_err("--profile %s: %s", path, strerror(-ret));
		goto err;
	}
	*out = p;
	return 0;
err:
	profile_destroy(p);
	return ret;
}

/* On the I/O thread, hz times a second. A vCPU whose last kick was not
 * taken yet (a busy host) is not kicked again: samples stay one per tick. */
static void profile_tick(void *opaque, uint32_t events)
{
	struct profile *p = opaque;
	struct vm *vm = p->vm;
	uint64_t expirations;

	if (read(p->tfd, &expirations, sizeof(expirations)) < 0)
		return; /* EAGAIN: nothing expired */
	for (unsigned i = 0; i < vm->nr_vcpus && i < p->nr_cpus; i++) {
		/* Only this thread sets pending; the vCPU thread clears it. */
		if (__atomic_load_n(&p->pending[i], __ATOMIC_SEQ_CST))
			continue;
		/* The register request first: a vCPU that sees pending then
		 * mostly finds them stored (x86_vcpu_pc falls back otherwise). */
		if (p->sync)
			x86_vcpu_pc_request(&vm->vcpus[i]);
		__atomic_store_n(&p->pending[i], 1, __ATOMIC_SEQ_CST);
		vcpu_kick(&vm->vcpus[i]);
	}
}

int profile_start(struct profile *p, struct vm *vm)
{
	long period = 1000000000L / p->hz;
	struct itimerspec its = {
		.it_interval = { period / 1000000000L, period % 1000000000L },
		.it_value = { period / 1000000000L, period % 1000000000L },
	};
	int ret;

	for (unsigned i = 0; i < p->nr_cpus; i++)
		__atomic_store_n(&p->pending[i], 0, __ATOMIC_SEQ_CST);
	p->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (p->tfd < 0) {
		ret = -errno;
		log_err("profile: timerfd_create: %s", strerror(-ret));
		return ret;
	}
	p->vm = vm;
	p->sync = x86_vcpu_pc_sync_supported(vm->kvm_fd);
	ret = evloop_add(vm->io, p->tfd, EPOLLIN, profile_tick, p);
	if (!ret && timerfd_settime(p->tfd, 0, &its, NULL) < 0)
		ret = -errno;
	if (ret) {
		log_err("profile: cannot start the timer: %s", strerror(-ret));
		profile_stop(p);
	}
	return ret;
}

void profile_stop(struct profile *p)
{
	if (!p || p->tfd < 0)
		return;
	/* Waits for a running tick: no kick after this. */
	evloop_del(p->vm->io, p->tfd);
	close(p->tfd);
	p->tfd = -1;
	p->vm = NULL;
}

void profile_sample(struct profile *p, struct vcpu *vcpu)
{
	struct profile_table *t;
	uint64_t rip;
	unsigned cpl;

	if (vcpu->id >= p->nr_cpus)
		return;
	t = &p->tables[vcpu->id];
	if (!__atomic_exchange_n(&p->pending[vcpu->id], 0, __ATOMIC_SEQ_CST))
		return; /* another EINTR: a stop, an io_uring completion */
	/* Reads only: an I/O or MMIO access KVM_RUN returned earlier was
	 * completed by this KVM_RUN before it saw the signal or
	 * immediate_exit (KVM API: "first finish incomplete operations"),
	 * so the registers are those the guest resumes with. */
	if (x86_vcpu_pc(vcpu, &rip, &cpl)) {
		t->samples++;
		t->dropped++;
		return;
	}
	profile_table_add(t, cpl, rip);
}

int profile_write(struct profile *p)
{
	uint64_t samples = 0, dropped = 0;
	long rows = 0;
	FILE *f;

	if (p->fd < 0)
		return 0;
	f = fdopen(p->fd, "w");
	if (!f) {
		rows = -errno;
	} else {
		p->fd = -1; /* fclose closes it */
		rows = profile_write_tables(f, p->tables, p->nr_cpus, p->hz);
		if (fclose(f) && rows >= 0)
			rows = -errno;
	}
	if (rows < 0) {
		log_err("--profile %s: cannot write: %s", p->path, strerror((int)-rows));
		return (int)rows;
	}
	for (unsigned i = 0; i < p->nr_cpus; i++) {
		samples += p->tables[i].samples;
		dropped += p->tables[i].dropped;
	}
	log_info("profile: %llu samples (%llu dropped), %ld distinct (cpl, rip) in %s",
		 (unsigned long long)samples, (unsigned long long)dropped, rows, p->path);
	return 0;
}

void profile_destroy(struct profile *p)
{
	if (!p)
		return;
	profile_stop(p);
	for (unsigned i = 0; i < p->nr_cpus; i++)
		profile_table_free(&p->tables[i]);
	if (p->fd >= 0)
		close(p->fd);
	free(p->tables);
	free(p->pending);
	free(p->path);
	free(p);
}
