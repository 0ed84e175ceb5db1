/* An event-loop thread (epoll) for device I/O off the vCPU threads:
 * ioeventfd queue kicks, io_uring completions, timers. */
#ifndef KVISOR_EVLOOP_H
#define KVISOR_EVLOOP_H

#include <stdint.h>

struct evloop;

/* Called on the loop thread with the epoll events that fired. Callbacks of
 * one loop never run concurrently (they run under the loop's lock). */
typedef void (*evloop_fn)(void *opaque, uint32_t events);

/* Create the loop and start its thread, named (name) (at most 15
 * characters kept; NULL: "evloop"). 0 or -errno. */
int evloop_create(struct evloop **out, const char *name) __attribute__((warn_unused_result));

/* Watch (fd) for (events) (EPOLLIN...). Thread-safe, also from a callback.
 * 0 or -errno (-EEXIST if (fd) is already watched). */
int evloop_add(struct evloop *loop, int fd, uint32_t events, evloop_fn fn, void *opaque)
	__attribute__((warn_unused_result));

/* Stop watching (fd); call it before closing (fd). When it returns, (fn) is
 * not running and will not run again for (fd), unless called from the loop
 * thread itself (then the current callback is the last). From another
 * thread it waits for a running callback, so the caller must not hold a
 * lock that callbacks take. 0, or -ENOENT if (fd) is not watched. */
int evloop_del(struct evloop *loop, int fd);

/* Stop the thread, join it and free the loop. Not from a callback; fds
 * still watched are only reported. */
void evloop_destroy(struct evloop *loop);

#endif
