/* The user-mode NAT backend's state, shared by net_user.c (the backend:
 * frames, options, open and close) and net_user_poll.c (libslirp's sockets
 * and timers on the event loop). */
#ifndef KVISOR_NET_USER_PRIV_H
#define KVISOR_NET_USER_PRIV_H

#include <libslirp.h>
#include <stdint.h>

#include "kvisor/log.h"
#include "net_priv.h"

#define NU_NO_DEADLINE INT64_MAX
/* How old slirp's idea of the time may be when a guest frame goes in. */
#define NU_CLOCK_SLACK_MS 20

struct nu_fd {          /* one host fd slirp watches, indexed by fd */
	uint32_t want;  /* the events registered in epfd; 0: not registered */
	uint32_t ready; /* events gathered for this cycle's poll */
	uint32_t gen;   /* the fill that last asked for it */
};

struct nu_pollfd {
	int fd;
	int events; /* SLIRP_POLL_* */
};

struct nu_timer {
	struct nu_timer *next;
	SlirpTimerId id; /* timer_new_opaque: slirp_handle_timer(id, cb_opaque) */
	void *cb_opaque;
	SlirpTimerCb cb;   /* timer_new: cb(cb_opaque) */
	int64_t expire_ms; /* -1: not armed */
};

struct net_user {
	struct net_backend base;
	Slirp *slirp;
	SlirpCb cb; /* slirp keeps a pointer to it */
	int epfd, timerfd, kickfd;
	bool watched;                    /* the three fds are on the loop */
	struct nu_pollfd *pfd, *old_pfd; /* this fill's and the previous fill's fds */
	unsigned npfd, nold, cap_pfd, cap_old;
	struct nu_fd *fds;
	unsigned nfds;
	uint32_t gen;
	struct nu_timer *timers;
	int64_t armed_ms;  /* the timerfd's deadline, NU_NO_DEADLINE if none */
	int64_t polled_ms; /* the last slirp_pollfds_poll (CLOCK_MONOTONIC); -1: none */
	bool rx_masked;    /* the last fill left reading off (backpressure) */
	bool poll_rx_ok;   /* this cycle's poll may read (the device takes frames) */
	bool kicked;       /* kickfd written, its callback not run yet */
	uint8_t *frame;    /* NET_FRAME_MAX bytes: a guest frame copied for slirp_input */
	struct log_ratelimit rl;
};

/* slirp's callbacks for time, timers and fds into (cb) (the rest of it is
 * net_user.c's). */
void net_user_poll_callbacks(SlirpCb *cb);

/* Ask slirp which fds to watch and make the epoll set and the timerfd
 * match; (rx_ok): the device takes frames, so slirp may read host sockets. */
void net_user_fill(struct net_user *nu, bool rx_ok);

/* One round: the ready fds and due timers to slirp, then a fill. */
void net_user_cycle(struct net_user *nu);

/* Before slirp_input: libslirp stamps new UDP sessions' expiry and its TCP
 * timers with the time of its last slirp_pollfds_poll, which is all that
 * updates its clock; after an idle spell with no cycle (no timer armed)
 * that time is old, and a new session would expire at the next fill (a DNS
 * query after 10 idle seconds would lose its answer). Runs a cycle first
 * when the last poll is more than NU_CLOCK_SLACK_MS old. */
void net_user_clock(struct net_user *nu);

/* Loop callbacks of the epoll set (readable) and of the timerfd. */
void net_user_epfd_cb(void *opaque, uint32_t events);
void net_user_timer_cb(void *opaque, uint32_t events);

/* Free the fd tables and the timers slirp left (after slirp_cleanup). */
void net_user_poll_free(struct net_user *nu);

#endif
