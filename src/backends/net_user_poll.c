/* libslirp's sockets and timers on the device's event loop, for the
 * user-mode NAT backend (net_user.c): fills, polls, an epoll set, a timerfd. */
#include <errno.h>
#include <libslirp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "kvisor/log.h"
#include "net_user_priv.h"

/*
 * How slirp runs on the loop. libslirp is made for a poll() main loop:
 * slirp_pollfds_fill() names the fds it wants watched and for what (add_poll
 * returns an index the socket keeps) and how long the caller may sleep;
 * slirp_pollfds_poll() asks get_revents(index) for each socket and runs the
 * TCP timers. Here slirp's fds live in an epoll set of this backend (epfd),
 * which the device's loop watches as one fd. Each "cycle" (epfd readable,
 * the timerfd fired, or a kick) gathers the ready events with a zero-timeout
 * epoll_wait, runs slirp_pollfds_poll on them, fires the due slirp timers,
 * fills again and brings epfd in line with the fill (add, modify, delete by
 * difference to the previous fill), then arms the timerfd for the earliest
 * deadline. So every poll follows a fill, as libslirp expects. The nested
 * set keeps slirp's churning sockets out of the loop's table and lets events
 * change in place. slirp calls unregister_poll_fd before it closes a socket:
 * the fd leaves epfd then, so a number reused by a new socket starts clean.
 *
 * Backpressure: while the device cannot take frames, the fill registers fds
 * without EPOLLIN/EPOLLPRI (not at all when nothing else is asked), and a
 * cycle that finds the device full hides read readiness from slirp (an fd
 * registered while it was not), so slirp reads no host socket: TCP peers
 * are held by their socket buffers, UDP datagrams wait in (and overflow)
 * theirs. rx_ready kicks a cycle whose fill reads again. Frames slirp emits
 * meanwhile (ACKs, ARP and DHCP replies, retransmits) still go to
 * receive(); the device drops and counts them.
 */

#define NU_GATHER     64 /* events per gather; the rest stay ready (level) */
#define NU_TIMER_RUNS 16 /* slirp timer firings per cycle at most */

static int64_t nu_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- slirp's fds in epfd ---- */

/* Make fds[fd] exist. 0 or -ENOMEM. */
static int nu_fd_slot(struct net_user *nu, int fd)
{
	unsigned n;
	struct nu_fd *p;

	if (fd < 0)
		return -EINVAL;
	if ((unsigned)fd < nu->nfds)
		return 0;
	n = nu->nfds ? nu->nfds : 64;
	while (n <= (unsigned)fd)
		n *= 2;
	p = realloc(nu->fds, n * sizeof(*p));
	if (!p)
		return -ENOMEM;
	memset(p + nu->nfds, 0, (n - nu->nfds) * sizeof(*p));
	nu->fds = p;
	nu->nfds = n;
	return 0;
}

/* Register (fd) in epfd for exactly (ev) (0: not at all). */
static void nu_watch(struct net_user *nu, int fd, uint32_t ev)
{
	struct nu_fd *f = &nu->fds[fd];
	struct epoll_event e = { .events = ev, .data.fd = fd };
	int r;

	if (ev == f->want)
		return;
	if (!ev) {
		epoll_ctl(nu->epfd, EPOLL_CTL_DEL, fd, NULL);
		f->want = 0;
		return;
	}
	r = epoll_ctl(nu->epfd, f->want ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &e);
	if (r < 0 && (errno == ENOENT || errno == EEXIST))
		r = epoll_ctl(nu->epfd, errno == ENOENT ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &e);
	if (r < 0)
		log_ratelimited(&nu->rl, LOG_WARN, "%s: cannot watch fd %d: %s", nu->base.name, fd,
				strerror(errno));
	f->want = r < 0 ? 0 : ev;
}

static uint32_t nu_epoll_events(int sev, bool rx_ok)
{
	uint32_t ev = 0;

	if (rx_ok && (sev & SLIRP_POLL_IN))
		ev |= EPOLLIN;
	if (rx_ok && (sev & SLIRP_POLL_PRI))
		ev |= EPOLLPRI;
	if (sev & SLIRP_POLL_OUT)
		ev |= EPOLLOUT;
	return ev; /* epoll reports EPOLLERR and EPOLLHUP unasked */
}

/* slirp_pollfds_fill's add_poll: note (fd, events); the index is for poll. */
static int nu_add_poll(int fd, int events, void *opaque)
{
	struct net_user *nu = opaque;

	if (nu->npfd == nu->cap_pfd) {
		unsigned n = nu->cap_pfd ? 2 * nu->cap_pfd : 64;
		struct nu_pollfd *p = realloc(nu->pfd, n * sizeof(*p));

		if (!p)
			return -1;
		nu->pfd = p;
		nu->cap_pfd = n;
	}
	if (nu_fd_slot(nu, fd) < 0) {
		log_ratelimited(&nu->rl, LOG_WARN, "%s: cannot watch fd %d: out of memory",
				nu->base.name, fd);
		return -1;
	}
	nu->pfd[nu->npfd] = (struct nu_pollfd){ .fd = fd, .events = events };
	nu->fds[fd].gen = nu->gen;
	return (int)nu->npfd++;
}

/* slirp_pollfds_poll's get_revents: what the gather found for that fd. */
static int nu_get_revents(int idx, void *opaque)
{
	struct net_user *nu = opaque;
	uint32_t ev;
	int r = 0;

	if (idx < 0 || (unsigned)idx >= nu->npfd)
		return 0;
	ev = nu->fds[nu->pfd[idx].fd].ready;
	r |= ev & EPOLLIN ? SLIRP_POLL_IN : 0;
	r |= ev & EPOLLOUT ? SLIRP_POLL_OUT : 0;
	r |= ev & EPOLLPRI ? SLIRP_POLL_PRI : 0;
	r |= ev & EPOLLERR ? SLIRP_POLL_ERR : 0;
	r |= ev & EPOLLHUP ? SLIRP_POLL_HUP : 0;
	/* The device filled up since the fill that registered this fd: no
	 * reading (IN, PRI and HUP make slirp read). Errors still go through,
	 * so a failed socket is dealt with instead of being reported again. */
	if (!nu->poll_rx_ok)
		r &= ~(SLIRP_POLL_IN | SLIRP_POLL_PRI | SLIRP_POLL_HUP);
	return r;
}

static void nu_register_poll_fd(int fd, void *opaque)
{
	struct net_user *nu = opaque;

	/* A new socket: if its number was watched, that socket is closed and
	 * epoll has dropped it already. */
	if (fd >= 0 && (unsigned)fd < nu->nfds)
		nu->fds[fd] = (struct nu_fd){ 0 };
}

static void nu_unregister_poll_fd(int fd, void *opaque)
{
	struct net_user *nu = opaque;

	if (fd >= 0 && (unsigned)fd < nu->nfds) {
		nu_watch(nu, fd, 0);
		nu->fds[fd].ready = 0;
	}
}

/* ---- timers ---- */

static void *nu_timer_add(struct net_user *nu, SlirpTimerId id, void *cb_opaque, SlirpTimerCb cb)
{
	struct nu_timer *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL; /* libslirp's own allocations abort; it copes with NULL here */
	*t = (struct nu_timer){ .next = nu->timers,
				.id = id,
				.cb_opaque = cb_opaque,
				.cb = cb,
				.expire_ms = -1 };
	nu->timers = t;
	return t;
}

static void *nu_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
	return nu_timer_add(opaque, SLIRP_TIMER_NUM, cb_opaque, cb);
}

static void *nu_timer_new_opaque(SlirpTimerId id, void *cb_opaque, void *opaque)
{
	return nu_timer_add(opaque, id, cb_opaque, NULL);
}

static void nu_timer_free(void *timer, void *opaque)
{
	struct net_user *nu = opaque;

	for (struct nu_timer **p = &nu->timers; *p; p = &(*p)->next) {
		if (*p == timer) {
			*p = ((struct nu_timer *)timer)->next;
			free(timer);
			return;
		}
	}
}

static void nu_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
	((struct nu_timer *)timer)->expire_ms = expire_ms < 0 ? 0 : expire_ms;
}

/* Fire the due timers. A callback may free or re-arm any timer, so the
 * scan restarts after each one. */
static void nu_timers_run(struct net_user *nu)
{
	int64_t now = nu_now_ns() / 1000000;

	for (int runs = 0; runs < NU_TIMER_RUNS; runs++) {
		struct nu_timer *t = nu->timers;

		while (t && (t->expire_ms < 0 || t->expire_ms > now))
			t = t->next;
		if (!t)
			return;
		t->expire_ms = -1;
		if (t->cb)
			t->cb(t->cb_opaque);
		else
			slirp_handle_timer(nu->slirp, t->id, t->cb_opaque);
	}
}

/* Arm the timerfd for (timeout_ms) from now or the earliest slirp timer,
 * unless it already fires sooner (an early wake only runs a cycle). */
static void nu_arm(struct net_user *nu, uint32_t timeout_ms)
{
	int64_t when = NU_NO_DEADLINE;
	struct itimerspec its = { 0 };

	if (timeout_ms != UINT32_MAX)
		when = nu_now_ns() / 1000000 + timeout_ms;
	for (struct nu_timer *t = nu->timers; t; t = t->next)
		if (t->expire_ms >= 0 && t->expire_ms < when)
			when = t->expire_ms;
	if (when == NU_NO_DEADLINE || nu->armed_ms <= when)
		return;
	its.it_value.tv_sec = when / 1000;
	its.it_value.tv_nsec = (when % 1000) * 1000000;
	if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
		its.it_value.tv_nsec = 1; /* zero would disarm */
	if (timerfd_settime(nu->timerfd, TFD_TIMER_ABSTIME, &its, NULL) < 0) {
		log_ratelimited(&nu->rl, LOG_WARN, "%s: timerfd: %s", nu->base.name,
				strerror(errno));
		return;
	}
	nu->armed_ms = when;
}

/* ---- the cycle ---- */

/* Fill, and make epfd and the timerfd match it. (rx_ok): the device can
 * take frames, so slirp may read host sockets. */
void net_user_fill(struct net_user *nu, bool rx_ok)
{
	uint32_t timeout = UINT32_MAX;
	struct nu_pollfd *p = nu->old_pfd;
	unsigned cap = nu->cap_old;

	nu->old_pfd = nu->pfd;
	nu->cap_old = nu->cap_pfd;
	nu->nold = nu->npfd;
	nu->pfd = p;
	nu->cap_pfd = cap;
	nu->npfd = 0;
	nu->gen++;
	slirp_pollfds_fill(nu->slirp, &timeout, nu_add_poll, nu);
	/* Sockets the previous fill watched and this one does not. */
	for (unsigned i = 0; i < nu->nold; i++) {
		int fd = nu->old_pfd[i].fd;

		if (nu->fds[fd].gen != nu->gen)
			nu_watch(nu, fd, 0);
	}
	for (unsigned i = 0; i < nu->npfd; i++)
		nu_watch(nu, nu->pfd[i].fd, nu_epoll_events(nu->pfd[i].events, rx_ok));
	nu->rx_masked = !rx_ok;
	nu_arm(nu, timeout);
}

static bool nu_rx_ok(struct net_user *nu)
{
	return nu->base.peer->can_receive(nu->base.peer_opaque);
}

void net_user_cycle(struct net_user *nu)
{
	struct epoll_event evs[NU_GATHER];
	int n = epoll_wait(nu->epfd, evs, NU_GATHER, 0);

	nu->polled_ms = nu_now_ns() / 1000000;

	nu->poll_rx_ok = nu_rx_ok(nu);
	for (int i = 0; i < n; i++)
		nu->fds[evs[i].data.fd].ready = evs[i].events;
	slirp_pollfds_poll(nu->slirp, n < 0, nu_get_revents, nu);
	for (int i = 0; i < n; i++)
		if ((unsigned)evs[i].data.fd < nu->nfds)
			nu->fds[evs[i].data.fd].ready = 0;
	nu_timers_run(nu);
	net_user_fill(nu, nu_rx_ok(nu)); /* again: receive() may have filled the device */
}

void net_user_clock(struct net_user *nu)
{
	if (nu->polled_ms < 0 || nu_now_ns() / 1000000 - nu->polled_ms > NU_CLOCK_SLACK_MS)
		net_user_cycle(nu);
}

void net_user_epfd_cb(void *opaque, uint32_t events)
{
	net_user_cycle(opaque);
}

void net_user_timer_cb(void *opaque, uint32_t events)
{
	struct net_user *nu = opaque;
	uint64_t v;

	if (read(nu->timerfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_ratelimited(&nu->rl, LOG_WARN, "%s: timerfd: %s", nu->base.name,
				strerror(errno));
	nu->armed_ms = NU_NO_DEADLINE;
	net_user_cycle(nu);
}

static int64_t nu_clock_get_ns(void *opaque)
{
	return nu_now_ns();
}

void net_user_poll_callbacks(SlirpCb *cb)
{
	cb->clock_get_ns = nu_clock_get_ns;
	cb->timer_new = nu_timer_new;
	cb->timer_free = nu_timer_free;
	cb->timer_mod = nu_timer_mod;
	cb->register_poll_fd = nu_register_poll_fd;
	cb->unregister_poll_fd = nu_unregister_poll_fd;
	cb->timer_new_opaque = nu_timer_new_opaque;
}

void net_user_poll_free(struct net_user *nu)
{
	while (nu->timers)
		nu_timer_free(nu->timers, nu);
	free(nu->pfd);
	free(nu->old_pfd);
	free(nu->fds);
}
