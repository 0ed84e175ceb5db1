/* The passt process of a "passt" network backend: its command line from
 * the device's options, fork and exec on a socketpair, reaping. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kvisor/log.h"
#include "net_passt.h"
#include "net_priv.h"

#define NP_FD       3 /* the socket's number in passt: -F 3 */
#define NP_ARGS     (8 + 2 * NET_HOSTFWD_MAX + 1)
#define NP_SPEC_LEN (INET_ADDRSTRLEN + 16)
#define NP_PATH_MAX 4096

/* passt's argument list: argv points into (specs). 0 or -EINVAL after one
 * line. */
static int np_args(const struct net_backend_opts *opts, const char *name, const char *bin,
		   const char **argv, char (*specs)[NP_SPEC_LEN])
{
	unsigned n = 0;

	if (opts->restrict_outbound) {
		log_err("%s: passt: restrict=on is not available (passt has no option to refuse "
			"outbound connections); use the user mode",
			name);
		return -EINVAL;
	}
	argv[n++] = bin;
	argv[n++] = "-f"; /* foreground: we reap it */
	argv[n++] = "-q";
	argv[n++] = "-F";
	argv[n++] = "3";
	/* As root passt drops to nobody anyway; naming it keeps passt quiet. */
	if (geteuid() == 0) {
		argv[n++] = "--runas";
		argv[n++] = "nobody";
	}
	for (unsigned i = 0; i < opts->nr_hostfwd && i < NET_HOSTFWD_MAX; i++) {
		const char *text = opts->hostfwd[i];
		struct net_hostfwd f;
		struct in_addr h;
		char err[160], ha[INET_ADDRSTRLEN];

		if (net_hostfwd_parse(text, &f, err, sizeof(err)) < 0) {
			log_err("%s: hostfwd '%s': %s", name, text ? text : "", err);
			return -EINVAL;
		}
		if (f.guest_addr) {
			log_err("%s: hostfwd '%s': passt forwards to the guest's own address: leave "
				"GUESTADDR empty",
				name, text);
			return -EINVAL;
		}
		h.s_addr = f.host_addr;
		inet_ntop(AF_INET, &h, ha, sizeof(ha));
		snprintf(specs[i], NP_SPEC_LEN, "%s/%u:%u", ha, f.host_port, f.guest_port);
		argv[n++] = f.udp ? "-u" : "-t";
		argv[n++] = specs[i];
	}
	argv[n] = NULL;
	return 0;
}

/* The binary: (path) as given, or the first executable "passt" on PATH,
 * into (out). 0 or -errno after one line. */
static int np_find(const char *path, const char *name, char *out, size_t len)
{
	const char *dirs, *p;

	if (path && strchr(path, '/')) {
		if (access(path, X_OK) < 0) {
			int e = errno;

			log_err("%s: passt: cannot run %s: %s", name, path, strerror(e));
			return -e;
		}
		snprintf(out, len, "%s", path);
		return 0;
	}
	if (!path)
		path = "passt";
	dirs = getenv("PATH");
	if (!dirs || !*dirs)
		dirs = "/usr/local/bin:/usr/bin:/bin";
	for (p = dirs; *p;) {
		size_t dl = strcspn(p, ":");

		if (dl && (size_t)snprintf(out, len, "%.*s/%s", (int)dl, p, path) < len &&
		    access(out, X_OK) == 0)
			return 0;
		p += dl;
		p += *p == ':';
	}
	log_err("%s: passt: '%s' not found in PATH (Debian's passt package, or path=)", name, path);
	return -ENOENT;
}

/* In the child: passt's fds and signals, then exec. Only async-signal-safe
 * calls: the parent has other threads. Writes errno to (errfd) on failure. */
static void np_child(pid_t parent, int sock, int devnull, int errfd, const char *bin,
		     const char **argv)
{
	static const int sigs[] = { SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD };
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigset_t none;
	int e;

	/* Die with kvisor; if it is already gone, do not start. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		goto fail;
	/* Loop threads block every signal, and the mask survives exec. */
	sigemptyset(&none);
	for (unsigned i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &dfl, NULL);
	if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
		goto fail;
	/* (sock), (devnull) and (errfd) are above NP_FD (see net_passt_start).
	 * kvisor's stdout is the guest console: passt's goes to stderr. */
	if (dup2(devnull, 0) < 0 || dup2(2, 1) < 0 || dup2(sock, NP_FD) < 0)
		goto fail;
	/* Nothing else of kvisor's crosses exec, close-on-exec or not; (errfd)
	 * stays open until the exec. */
	if (syscall(SYS_close_range, NP_FD + 1, ~0u, CLOSE_RANGE_CLOEXEC) < 0) {
		/* Before Linux 5.11: close all but (errfd). */
		if (errfd > NP_FD + 1 && syscall(SYS_close_range, NP_FD + 1, errfd - 1, 0) < 0)
			goto fail;
		if (syscall(SYS_close_range, errfd + 1, ~0u, 0) < 0)
			goto fail;
	}
	execv(bin, (char *const *)argv);
fail:
	e = errno;
	if (write(errfd, &e, sizeof(e)) < 0)
		_exit(126);
	_exit(127);
}

/* (fd) moved above NP_FD, close-on-exec; the old one closed. */
static int np_high(int fd)
{
	int h;

	if (fd > NP_FD)
		return fd;
	h = fcntl(fd, F_DUPFD_CLOEXEC, NP_FD + 1);
	close(fd);
	return h;
}

/* Fork and exec passt; 0 and (*pid), or -errno after one line. */
static int np_fork(const char *name, const char *bin, const char **argv, int sock, int devnull,
		   pid_t *pid)
{
	pid_t parent = getpid();
	int ep[2], e = 0;
	ssize_t n;

	*pid = 0;
	if (pipe2(ep, O_CLOEXEC) < 0) {
		e = errno;
		log_err("%s: passt: pipe: %s", name, strerror(e));
		return -e;
	}
	ep[1] = np_high(ep[1]);
	if (ep[1] < 0) {
		e = errno;
		close(ep[0]);
		log_err("%s: passt: pipe: %s", name, strerror(e));
		return -e;
	}
	*pid = fork();
	if (*pid == 0)
		np_child(parent, sock, devnull, ep[1], bin, argv);
	e = errno;
	close(ep[1]);
	if (*pid < 0) {
		close(ep[0]);
		*pid = 0;
		log_err("%s: passt: fork: %s", name, strerror(e));
		return -e;
	}
	e = 0;
	/* The pipe closes at exec (close-on-exec) or carries the errno. */
	do
		n = read(ep[0], &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	close(ep[0]);
	if (n == sizeof(e)) {
		waitpid(*pid, NULL, 0);
		*pid = 0;
		log_err("%s: passt: cannot run %s: %s", name, bin, strerror(e));
		return -e;
	}
	return 0;
}

int net_passt_start(const struct net_backend_opts *opts, const char *name, struct net_passt *p,
		    int *fd)
{
	const char *argv[NP_ARGS];
	char specs[NET_HOSTFWD_MAX][NP_SPEC_LEN], bin[NP_PATH_MAX];
	int sv[2], devnull, r;

	p->pid = 0;
	p->pidfd = -1;
	*fd = -1;
	if (opts->nr_hostfwd > NET_HOSTFWD_MAX) {
		log_err("%s: hostfwd: at most %d forwards", name, NET_HOSTFWD_MAX);
		return -EINVAL;
	}
	r = np_find(opts->path, name, bin, sizeof(bin));
	if (r < 0)
		return r;
	r = np_args(opts, name, bin, argv, specs);
	if (r < 0)
		return r;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		r = -errno;
		log_err("%s: passt: socketpair: %s", name, strerror(-r));
		return r;
	}
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (devnull >= 0)
		devnull = np_high(devnull);
	sv[1] = np_high(sv[1]);
	if (devnull < 0 || sv[1] < 0) {
		r = -errno;
		log_err("%s: passt: %s", name, strerror(-r));
	} else {
		r = np_fork(name, bin, argv, sv[1], devnull, &p->pid);
	}
	if (devnull >= 0)
		close(devnull);
	if (sv[1] >= 0)
		close(sv[1]);
	if (r < 0) {
		close(sv[0]);
		return r;
	}
	p->pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0);
	if (fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0)
		log_warn("%s: passt: O_NONBLOCK: %s", name, strerror(errno));
	*fd = sv[0];
	return 0;
}

static void np_status(int status, char *msg, size_t len)
{
	if (WIFEXITED(status))
		snprintf(msg, len, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(msg, len, "was killed by signal %d", WTERMSIG(status));
	else
		snprintf(msg, len, "stopped (status 0x%x)", (unsigned)status);
}

bool net_passt_exited(struct net_passt *p, int wait_ms, char *msg, size_t len)
{
	int status;

	if (p->pid <= 0)
		return false;
	if (p->pidfd >= 0) {
		struct pollfd pfd = { .fd = p->pidfd, .events = POLLIN };

		while (poll(&pfd, 1, wait_ms) < 0 && errno == EINTR)
			;
	}
	for (int waited = 0;; waited += 10) {
		pid_t r = waitpid(p->pid, &status, WNOHANG);

		if (r == p->pid || (r < 0 && errno == ECHILD)) {
			if (r == p->pid)
				np_status(status, msg, len);
			else
				snprintf(msg, len, "exited");
			p->pid = 0;
			return true;
		}
		if (p->pidfd >= 0 || waited >= wait_ms)
			return false;
		nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 }, NULL);
	}
}

void net_passt_stop(struct net_passt *p)
{
	char msg[64];

	if (p->pid > 0) {
		kill(p->pid, SIGTERM);
		if (!net_passt_exited(p, 1000, msg, sizeof(msg))) {
			kill(p->pid, SIGKILL);
			waitpid(p->pid, NULL, 0);
			p->pid = 0;
		}
	}
	if (p->pidfd >= 0)
		close(p->pidfd);
	p->pidfd = -1;
}
