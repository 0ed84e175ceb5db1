/* Starting and stopping the passt process of a "passt" network backend
 * (src/backends/net_passt.c, used by net_stream.c). */
#ifndef KVISOR_NET_PASST_H
#define KVISOR_NET_PASST_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct net_backend_opts;

/* A running passt: its pid (0 once reaped) and a pidfd (-1 if the kernel
 * has none) to wait on. */
struct net_passt {
	pid_t pid;
	int pidfd;
};

/* Check (opts) for passt (hostfwd= becomes -t/-u specs, restrict=on is
 * refused), then start passt (opts->path, or "passt" on PATH) in the
 * foreground on one end of a unix stream socketpair; it gets only that
 * socket (as fd 3), /dev/null as stdin and our stdout and stderr, with
 * default signal handling, and dies with the opening thread
 * (PR_SET_PDEATHSIG: open from a thread that outlives the backend). 0 and
 * (*fd) our end (non-blocking, close-on-exec), or -errno after one line
 * naming opts->name. A passt that fails after exec (e.g. a port in use)
 * shows as the connection closing. */
int net_passt_start(const struct net_backend_opts *opts, const char *name, struct net_passt *p,
		    int *fd) __attribute__((warn_unused_result));

/* Whether passt has exited, waiting up to (wait_ms) for it; if so, it is
 * reaped and (msg) says how ("exited with status 1", "was killed by signal
 * 9"). */
bool net_passt_exited(struct net_passt *p, int wait_ms, char *msg, size_t len);

/* Stop passt: SIGTERM, up to a second for it to exit, then SIGKILL; reap
 * it and close the pidfd. Nothing to do once reaped. */
void net_passt_stop(struct net_passt *p);

#endif
