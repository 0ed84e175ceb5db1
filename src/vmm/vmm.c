/* The VM runner: builds a VM from its configuration, serves it on the main
 * thread's event loop (signals, console input, the stop eventfd) until it
 * stops, and builds it again after a guest reboot when asked to. */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "kvisor/config.h"
#include "kvisor/console.h"
#include "kvisor/evloop.h"
#include "kvisor/lifecycle.h"
#include "kvisor/log.h"
#include "kvisor/profile.h"
#include "kvisor/serial.h"
#include "kvisor/vm.h"
#include "kvisor/vmm.h"
#include "kvisor/x86_state.h"

/* Regular files (stdin redirected from a file) cannot be polled: they are
 * always readable, so the loop reads them on a short timer instead. */
#define VMM_FILE_POLL_MS 10

/* The main loop of one VM run; every callback runs on the main thread. */
struct vmm_loop {
	struct vm *vm;
	struct evloop *loop;
	int sfd;       /* the signalfd (owned by vmm_run) */
	bool stdin_on; /* console input is watched (a pollable stdin) */
	int poll_tfd;  /* timerfd reading a regular-file stdin, or -1 */
};

static int vmm_signalfd(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR2); /* SIGUSR1 kicks vCPUs (vcpu_kick) */
	/* Blocked before any other thread exists, so every thread inherits it. */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

static void vmm_stdin_off(struct vmm_loop *l)
{
	if (l->stdin_on)
		evloop_del(l->loop, l->vm->console->in_fd);
	l->stdin_on = false;
}

/* Move host input to the UART; stop watching stdin while its buffer is
 * full (the UART's rx wake-up eventfd turns it back on). */
static void vmm_stdin_read(struct vmm_loop *l)
{
	struct vm *vm = l->vm;
	uint8_t in[256], out[256];
	size_t space = serial_rx_space(vm->serial);
	bool quit;
	ssize_t n;

	if (space == 0) {
		vmm_stdin_off(l);
		return;
	}
	n = read(vm->console->in_fd, in, space < sizeof(in) ? space : sizeof(in));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		vmm_stdin_off(l);
		vm->console->in_fd = -1; /* EOF: for the rest of the process */
		return;
	}
	n = (ssize_t)console_filter_input(vm->console, in, (size_t)n, out, &quit);
	serial_receive(vm->serial, out, (size_t)n);
	if (quit) {
		log_info("quit from the console (Ctrl-A x)");
		vm_request_stop(vm, VM_STOP_QUIT, 0);
	}
}

static void vmm_on_stdin(void *opaque, uint32_t events)
{
	vmm_stdin_read(opaque);
}

static void vmm_on_file_poll(void *opaque, uint32_t events)
{
	struct vmm_loop *l = opaque;
	uint64_t expirations;

	if (read(l->poll_tfd, &expirations, sizeof(expirations)) < 0)
		return; /* EAGAIN: nothing expired */
	if (l->vm->console->in_fd >= 0 && serial_rx_space(l->vm->serial))
		vmm_stdin_read(l);
	if (l->vm->console->in_fd < 0) {
		evloop_del(l->loop, l->poll_tfd);
		close(l->poll_tfd);
		l->poll_tfd = -1;
	}
}

/* The guest drained a full receive buffer: read stdin again. */
static void vmm_on_rx_wake(void *opaque, uint32_t events)
{
	struct vmm_loop *l = opaque;
	uint64_t v;

	if (read(serial_rx_wakeup_fd(l->vm->serial), &v, sizeof(v)) < 0)
		return;
	if (!l->stdin_on && l->poll_tfd < 0 && l->vm->console->in_fd >= 0 &&
	    !evloop_add(l->loop, l->vm->console->in_fd, EPOLLIN, vmm_on_stdin, l))
		l->stdin_on = true;
}

/* SIGUSR2: pause a running VM, resume a paused one. */
static void vmm_toggle_pause(struct vm *vm)
{
	bool resume = vm_state(vm) == VM_STATE_PAUSED;
	int ret = resume ? vm_resume(vm) : vm_pause(vm);

	if (ret) {
		log_warn("SIGUSR2: cannot %s the VM (%s): %s", resume ? "resume" : "pause",
			 vm_state_name(vm_state(vm)), strerror(-ret));
		return;
	}
	log_info("%s", resume ? "resumed" : "paused");
	if (!resume && log_threshold >= LOG_DEBUG)
		vm_log_state(vm);
}

static void vmm_on_signal(void *opaque, uint32_t events)
{
	struct vmm_loop *l = opaque;
	struct signalfd_siginfo si;

	if (read(l->sfd, &si, sizeof(si)) != sizeof(si))
		return;
	if (si.ssi_signo == SIGUSR2) {
		vmm_toggle_pause(l->vm);
		return;
	}
	log_info("stopping the VM on signal %u", si.ssi_signo);
	vm_request_stop(l->vm, VM_STOP_SIGNAL, 128 + (int)si.ssi_signo);
}

static void vmm_on_stop(void *opaque, uint32_t events)
{
	struct vmm_loop *l = opaque;
	uint64_t v;

	if (read(l->vm->stop_efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_debug("stop eventfd: %s", strerror(errno));
	evloop_stop(l->loop);
}

/* Console input: watched when pollable, else read on a timer. A stdin that
 * can be neither only loses console input, never the VM. */
static void vmm_stdin_start(struct vmm_loop *l)
{
	struct itimerspec its = {
		.it_interval.tv_nsec = VMM_FILE_POLL_MS * 1000000L,
		.it_value.tv_nsec = VMM_FILE_POLL_MS * 1000000L,
	};
	int fd = l->vm->console->in_fd, ret;

	if (fd < 0 || !l->vm->serial)
		return;
	ret = evloop_add(l->loop, fd, EPOLLIN, vmm_on_stdin, l);
	if (!ret) {
		l->stdin_on = true;
		return;
	}
	if (ret == -EPERM) { /* a regular file */
		l->poll_tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
		if (l->poll_tfd < 0 || timerfd_settime(l->poll_tfd, 0, &its, NULL) < 0)
			ret = -errno;
		else
			ret = evloop_add(l->loop, l->poll_tfd, EPOLLIN, vmm_on_file_poll, l);
		if (!ret)
			return;
		if (l->poll_tfd >= 0)
			close(l->poll_tfd);
		l->poll_tfd = -1;
	}
	log_warn("console input: %s", strerror(-ret));
}

static int vmm_loop_init(struct vmm_loop *l, struct vm *vm, int sfd)
{
	int ret;

	*l = (struct vmm_loop){ .vm = vm, .sfd = sfd, .poll_tfd = -1 };
	ret = evloop_open(&l->loop, "main");
	if (ret)
		return ret;
	ret = evloop_add(l->loop, vm->stop_efd, EPOLLIN, vmm_on_stop, l);
	if (!ret)
		ret = evloop_add(l->loop, sfd, EPOLLIN, vmm_on_signal, l);
	if (!ret && vm->serial)
		ret = evloop_add(l->loop, serial_rx_wakeup_fd(vm->serial), EPOLLIN, vmm_on_rx_wake,
				 l);
	if (ret)
		log_err("main loop: %s", strerror(-ret));
	else
		vmm_stdin_start(l);
	return ret;
}

static void vmm_loop_fini(struct vmm_loop *l)
{
	if (!l->loop)
		return;
	vmm_stdin_off(l);
	if (l->poll_tfd >= 0) {
		evloop_del(l->loop, l->poll_tfd);
		close(l->poll_tfd);
	}
	if (l->vm->serial)
		evloop_del(l->loop, serial_rx_wakeup_fd(l->vm->serial));
	evloop_del(l->loop, l->sfd);
	evloop_del(l->loop, l->vm->stop_efd);
	evloop_destroy(l->loop);
	l->loop = NULL;
}

/* Build, run and tear down one VM. 0 with *reason and *status, or -errno
 * when it could not be built or started. */
static int vmm_run_vm(const struct vm_config *cfg, struct console *con, struct profile *prof,
		      int sfd, int *reason, int *status)
{
	struct vmm_loop l = { .loop = NULL };
	struct vm vm;
	int ret;

	ret = vm_create(&vm, cfg);
	if (!ret) {
		vm.console = con;
		vm.profile = prof;
		ret = vm_setup(&vm);
	}
	if (!ret)
		ret = vmm_loop_init(&l, &vm, sfd);
	if (!ret) {
		console_set_raw(con);
		ret = vm_start(&vm);
	}
	if (!ret && evloop_run(l.loop))
		vm_request_stop(&vm, VM_STOP_ERROR, 1); /* epoll failed (logged) */
	*reason = atomic_load(&vm.stop_reason);
	*status = vm.exit_status;
	vmm_loop_fini(&l);
	vm_destroy(&vm);
	return ret;
}

int vmm_run(const struct vm_config *cfg, int *status)
{
	struct profile *prof = NULL;
	struct console con;
	int reason, sfd, ret;

	if (cfg->profile) {
		ret = profile_create(&prof, cfg->profile, cfg->profile_hz, cfg->cpus);
		if (ret)
			return ret;
	}
	ret = console_open(&con, cfg->console_log);
	if (ret) {
		profile_destroy(prof);
		return ret;
	}
	sfd = vmm_signalfd();
	if (sfd < 0) {
		ret = -errno;
		log_err("signalfd: %s", strerror(-ret));
		goto out;
	}
	do {
		ret = vmm_run_vm(cfg, &con, prof, sfd, &reason, status);
		if (ret)
			break;
		if (reason == VM_STOP_REBOOT && cfg->on_reboot == CONFIG_REBOOT_RESTART)
			log_info("guest rebooted: restarting it");
		else if (reason == VM_STOP_REBOOT)
			log_info("guest rebooted: exiting (use --on-reboot restart to restart it)");
	} while (reason == VM_STOP_REBOOT && cfg->on_reboot == CONFIG_REBOOT_RESTART);
	close(sfd);
out:
	console_restore();
	/* Every way out of the VM (power-off, signal, fatal exit, failed
	 * set-up) comes here: the samples so far go to the file. */
	if (prof) {
		profile_write(prof);
		profile_destroy(prof);
	}
	console_close(&con);
	return ret;
}
