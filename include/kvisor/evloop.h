/* An event-loop thread (epoll) for device I/O off the vCPU threads:
 * ioeventfd queue kicks, io_uring completions, timers. */
#ifndef KVISOR_EVLOOP_H
#define KVISOR_EVLOOP_H

#include <stdint.h>

struct evloop;

/* Called on the loop thread with the epoll events that fired. */
typedef void (*evloop_fn)(void *opaque, uint32_t events);

/* Create the loop and start its thread (named (name)). 0 or -errno. */
int evloop_create(struct evloop **out, const char *name) __attribute__((warn_unused_result));

/* Watch (fd) for (events) (EPOLLIN...). Thread-safe. 0 or -errno. */
int evloop_add(struct evloop *loop, int fd, uint32_t events, evloop_fn fn, void *opaque)
	__attribute__((warn_unused_result));

/* Stop watching (fd). When it returns, (fn) is not running and will not run
 * again for (fd), unless called from the loop thread itself (then the
 * current callback is the last). */
int evloop_del(struct evloop *loop, int fd);

/* Stop the thread and free the loop. */
void evloop_destroy(struct evloop *loop);

#endif
