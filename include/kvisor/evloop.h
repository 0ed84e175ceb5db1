/* Event loops (epoll): the device I/O thread off the vCPUs (ioeventfd
 * queue kicks, io_uring completions, timers) and the main thread's loop
 * (signals, console input, the stop eventfd). */
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

/* Create a loop without a thread: the caller serves it with evloop_run
 * (e.g. the main thread). (name) names it in messages. 0 or -errno. */
int evloop_open(struct evloop **out, const char *name) __attribute__((warn_unused_result));

/* Serve a loop from evloop_open on the calling thread until evloop_stop;
 * it may be run again afterwards. 0; -EBUSY if the loop has its own thread
 * or is already being run; -errno if epoll_wait fails. */
int evloop_run(struct evloop *loop) __attribute__((warn_unused_result));

/* Make evloop_run return once the callbacks of the current batch are done.
 * Any thread, also from a callback. No effect on evloop_create loops
 * (evloop_destroy stops those). */
void evloop_stop(struct evloop *loop);

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

/* Run fn(arg) on the loop's thread, between callbacks (never concurrently
 * with one), and wait for it; returns what fn returned. Calls from several
 * threads run one at a time, in the order they were queued. From the loop
 * thread itself (a callback, or fn of another call) fn runs at once, inline.
 * fn may use evloop_add/evloop_del on this loop. Like evloop_del, the
 * caller must not hold a lock that a callback of this loop takes. -EINVAL
 * when fn is NULL; -ESHUTDOWN when no thread serves the loop (an
 * evloop_open loop outside evloop_run, or a loop being destroyed). */
int evloop_call(struct evloop *loop, int (*fn)(void *arg), void *arg);

/* Stop the thread (evloop_create), join it and free the loop; a loop from
 * evloop_open must not be running. Not from a callback; fds still watched
 * are only reported. */
void evloop_destroy(struct evloop *loop);

#endif
