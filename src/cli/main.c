/* kvisor entry point: parse the command line, build and run the VM, serve
 * the console and signals on the main thread, and choose the exit status. */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "kvisor/cli.h"
#include "kvisor/config.h"
#include "kvisor/console.h"
#include "kvisor/log.h"
#include "kvisor/profile.h"
#include "kvisor/serial.h"
#include "kvisor/vm.h"

#define KVISOR_VERSION "0.1.0"
#define EXIT_USAGE 2

enum { EV_STOP, EV_SIGNAL, EV_STDIN, EV_RXWAKE };

static int main_signalfd(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	/* Blocked before any vCPU thread exists, so every thread inherits it. */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

static int main_epoll_add(int ep, int fd, uint64_t tag, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.u64 = tag };

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

/* Regular files (stdin redirected from a file) cannot be polled: they are
 * always readable, so the loop reads them on a short timer instead. */
#define MAIN_FILE_POLL_MS 10

/* Move host input to the UART; stop watching stdin while its buffer is full. */
static void main_stdin(struct vm *vm, int ep, bool *stdin_on)
{
	uint8_t in[256], out[256];
	bool quit;
	size_t space = serial_rx_space(vm->serial);
	ssize_t n;

	if (space == 0) {
		epoll_ctl(ep, EPOLL_CTL_DEL, vm->console->in_fd, NULL);
		*stdin_on = false;
		return;
	}
	n = read(vm->console->in_fd, in, space < sizeof(in) ? space : sizeof(in));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		epoll_ctl(ep, EPOLL_CTL_DEL, vm->console->in_fd, NULL);
		vm->console->in_fd = -1;
		*stdin_on = false;
		return;
	}
	n = (ssize_t)console_filter_input(vm->console, in, (size_t)n, out, &quit);
	serial_receive(vm->serial, out, (size_t)n);
	if (quit) {
		log_info("quit from the console (Ctrl-A x)");
		vm_request_stop(vm, VM_STOP_QUIT, 0);
	}
}

/* Serve the console and signals until the VM stops. */
static void main_loop(struct vm *vm, int sfd)
{
	struct epoll_event evs[4];
	bool stdin_on = vm->console->in_fd >= 0 && vm->serial;
	bool stdin_file = false;
	int ep = epoll_create1(EPOLL_CLOEXEC);

	main_epoll_add(ep, vm->stop_efd, EV_STOP, EPOLLIN);
	main_epoll_add(ep, sfd, EV_SIGNAL, EPOLLIN);
	if (vm->serial)
		main_epoll_add(ep, serial_rx_wakeup_fd(vm->serial), EV_RXWAKE, EPOLLIN);
	if (stdin_on && main_epoll_add(ep, vm->console->in_fd, EV_STDIN, EPOLLIN) == -EPERM) {
		stdin_file = true;
		stdin_on = false;
	}
	while (atomic_load(&vm->stop_reason) == VM_RUNNING) {
		int n = epoll_wait(ep, evs, 4, stdin_file ? MAIN_FILE_POLL_MS : -1);

		if (stdin_file && vm->console->in_fd >= 0 && serial_rx_space(vm->serial))
			main_stdin(vm, ep, &stdin_on);
		if (stdin_file && vm->console->in_fd < 0)
			stdin_file = false;

		for (int i = 0; i < n; i++) {
			struct signalfd_siginfo si;
			uint64_t v;

			switch (evs[i].data.u64) {
			case EV_SIGNAL:
				if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
					log_info("stopping the VM on signal %u", si.ssi_signo);
					vm_request_stop(vm, VM_STOP_SIGNAL, 128 + (int)si.ssi_signo);
				}
				break;
			case EV_STDIN:
				main_stdin(vm, ep, &stdin_on);
				break;
			case EV_RXWAKE:
				if (read(serial_rx_wakeup_fd(vm->serial), &v, sizeof(v)) < 0)
					break;
				if (!stdin_on && !stdin_file && vm->console->in_fd >= 0) {
					main_epoll_add(ep, vm->console->in_fd, EV_STDIN, EPOLLIN);
					stdin_on = true;
				}
				break;
			default:
				break;
			}
		}
	}
	close(ep);
}

/* Build, run and tear down one VM; returns the stop reason. */
static int main_run_vm(const struct vm_config *cfg, struct console *con, struct profile *prof,
		       int sfd, int *status)
{
	struct vm vm;
	int reason, ret;

	ret = vm_create(&vm, cfg);
	if (!ret) {
		vm.console = con;
		vm.profile = prof;
		ret = vm_setup(&vm);
	}
	if (!ret) {
		console_set_raw(con);
		ret = vm_start(&vm);
	}
	if (ret) {
		vm_destroy(&vm);
		*status = EXIT_USAGE;
		return VM_STOP_ERROR;
	}
	main_loop(&vm, sfd);
	reason = atomic_load(&vm.stop_reason);
	*status = vm.exit_status;
	vm_destroy(&vm);
	return reason;
}

int main(int argc, char **argv)
{
	struct vm_config cfg;
	struct console con;
	struct profile *prof = NULL;
	enum cli_command cmd = CLI_RUN;
	int reason, status = 0, sfd;

	/* Big buffers (kernel images, decompressed payloads) live only while the
	 * VM is built: keep them in mmap()s that free() returns to the system,
	 * instead of letting glibc raise its threshold and keep them in the heap. */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	if (config_init(&cfg)) {
		log_err("out of memory");
		return EXIT_USAGE;
	}
	if (cli_parse(argc, argv, &cfg, &cmd))
		goto out_usage;
	if (cmd == CLI_HELP || cmd == CLI_VERSION) {
		if (cmd == CLI_HELP)
			fputs(cli_usage, stdout);
		else
			printf("kvisor %s\n", KVISOR_VERSION);
		config_free(&cfg);
		return 0;
	}
	/* The console and the profiler outlive one VM (kept across --on-reboot
	 * restart), so the process owns them and lends them to each VM. */
	if (cfg.profile && profile_create(&prof, cfg.profile, cfg.profile_hz, cfg.cpus))
		goto out_usage;
	if (console_open(&con, cfg.console_log)) {
		profile_destroy(prof);
		goto out_usage;
	}
	sfd = main_signalfd();
	do {
		reason = main_run_vm(&cfg, &con, prof, sfd, &status);
		if (reason == VM_STOP_REBOOT && cfg.on_reboot == CONFIG_REBOOT_RESTART)
			log_info("guest rebooted: restarting it");
		else if (reason == VM_STOP_REBOOT)
			log_info("guest rebooted: exiting (use --on-reboot restart to restart it)");
	} while (reason == VM_STOP_REBOOT && cfg.on_reboot == CONFIG_REBOOT_RESTART);
	console_restore();
	/* Every way out of the VM (power-off, signal, fatal exit, failed
	 * set-up) comes here: the samples so far go to the file. */
	if (prof) {
		profile_write(prof);
		profile_destroy(prof);
	}
	console_close(&con);
	config_free(&cfg);
	return status;
out_usage:
	config_free(&cfg);
	return EXIT_USAGE;
}
