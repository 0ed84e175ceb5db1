/* Raw image block backend: a file or block device served with io_uring;
 * requests come from any thread, completions are reaped on the event loop. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <liburing.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvisor/block.h"
#include "kvisor/evloop.h"
#include "kvisor/log.h"

/*
 * Threads and locks: b->lock covers the ring (liburing's SQ and CQ state is
 * not thread-safe), the counters, the overflow list and the refused list.
 * block_submit takes it on the caller's thread (a vCPU or the loop thread)
 * for one io_uring_enter; the loop thread takes it to reap CQEs, then drops
 * it before calling done(), so done() may submit again. The kernel may post
 * a completion from task_work on the submitting thread (KVM_RUN then returns
 * EINTR, which vcpu.c retries; epoll_wait too); the eventfd brings it here.
 *
 * done() runs on the loop thread only, never inside block_submit: a request
 * refused at submit time (range, read-only, unknown op) waits on the refused
 * list and the ring's eventfd is poked, so the loop delivers it like any
 * completion. A caller may therefore submit while holding a lock its done()
 * takes, and no device needs to know whether it is already inside one.
 *
 * Overflow: at most (depth) requests are in the kernel at once, which keeps
 * the SQ from filling and the CQ (twice the SQ) from overflowing. Requests
 * beyond that wait, in order, on a list linked through req->next and go in
 * as completions free room. Nothing is dropped and nobody sleeps for room.
 *
 * Short transfers: a READ/WRITE that moves fewer bytes than asked (io_uring
 * may return a short buffered read; a write stops at ENOSPC) is resubmitted
 * once for the remainder. The result is the sum, which may still be short
 * (reported as is), or the retry's -errno.
 */

/* user_data = pointer | tag; requests and continuations are 8-aligned. */
#define BLOCK_TAG_PUNCH  1ULL /* WRITE_ZEROES issued as PUNCH_HOLE */
#define BLOCK_TAG_REST   2ULL /* user_data is a struct block_rest */
#define BLOCK_TAG_MASK   7ULL
#define BLOCK_REAP_BATCH 32

struct block_dev {
	char *path;
	int fd;
	int efd; /* the ring's completion eventfd */
	bool readonly;
	bool direct;
	uint64_t size;
	uint32_t lbs;
	struct evloop *loop;
	pthread_mutex_t lock; /* everything below */
	pthread_cond_t idle;  /* pending dropped to 0 */
	struct io_uring ring;
	unsigned depth;     /* most requests in the kernel at once */
	unsigned inflight;  /* SQEs prepared and not yet reaped */
	unsigned pending;   /* accepted requests whose done() has not returned */
	unsigned plugged;   /* block_plug() nesting: submissions wait for unplug */
	bool no_zero_range; /* ZERO_RANGE gave EOPNOTSUPP: punch holes */
	struct block_req *ovf_head, **ovf_tail;
	struct block_req *refused; /* refused at submit, for the loop to complete (LIFO) */
	struct log_ratelimit rl;
};

/* The remainder of a short READ/WRITE. */
struct block_rest {
	struct block_req *req;
	int64_t done; /* bytes moved by the first attempt */
	unsigned iovcnt;
	struct iovec iov[];
};

static uint64_t block_iov_len(const struct block_req *req)
{
	uint64_t len = 0;

	for (unsigned i = 0; i < req->iovcnt; i++)
		len += req->iov[i].iov_len; /* no overflow: block_check summed it */
	return len;
}

/* An SQE, counted in flight, or NULL when (depth) requests are out. */
static struct io_uring_sqe *block_get_sqe(struct block_dev *b)
{
	struct io_uring_sqe *sqe;

	if (b->inflight >= b->depth)
		return NULL;
	/* Cannot fail while inflight < depth <= SQ entries; be safe anyway. */
	sqe = io_uring_get_sqe(&b->ring);
	if (sqe)
		b->inflight++;
	return sqe;
}

/* Prepare (req) (from the top, or its WRITE_ZEROES as a hole punch when
 * (punch)). false: no room, the caller keeps it queued. */
static bool block_prep(struct block_dev *b, struct block_req *req, bool punch)
{
	struct io_uring_sqe *sqe = block_get_sqe(b);
	uint64_t tag = 0;
	int mode;

	if (!sqe)
		return false;
	switch (req->op) {
	case BLOCK_READ:
		io_uring_prep_readv(sqe, b->fd, req->iov, req->iovcnt, req->offset);
		break;
	case BLOCK_WRITE:
		io_uring_prep_writev(sqe, b->fd, req->iov, req->iovcnt, req->offset);
		if (req->dsync)
			sqe->rw_flags = RWF_DSYNC;
		break;
	case BLOCK_FLUSH:
		/* Full fsync: fdatasync would not persist the block map after a
		 * hole punch, nor O_DIRECT writes into fresh extents. */
		io_uring_prep_fsync(sqe, b->fd, 0);
		break;
	case BLOCK_DISCARD:
		io_uring_prep_fallocate(sqe, b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					(off_t)req->offset, (off_t)req->len);
		break;
	case BLOCK_WRITE_ZEROES:
		mode = FALLOC_FL_ZERO_RANGE;
		if (punch || b->no_zero_range) {
			mode = FALLOC_FL_PUNCH_HOLE; /* reads back as zeros too */
			tag = BLOCK_TAG_PUNCH;
		}
		io_uring_prep_fallocate(sqe, b->fd, mode | FALLOC_FL_KEEP_SIZE, (off_t)req->offset,
					(off_t)req->len);
		break;
	}
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)req | tag);
	return true;
}

/* Resubmit what a short READ/WRITE of (req) left after (done) bytes. false:
 * no memory or room; the short count is reported instead. */
static bool block_prep_rest(struct block_dev *b, struct block_req *req, int64_t done)
{
	struct io_uring_sqe *sqe;
	struct block_rest *rest;
	uint64_t skip = (uint64_t)done;
	unsigned i = 0, n;

	while (i < req->iovcnt && skip >= req->iov[i].iov_len)
		skip -= req->iov[i++].iov_len;
	n = req->iovcnt - i;
	rest = malloc(sizeof(*rest) + n * sizeof(rest->iov[0]));
	if (!rest)
		return false;
	rest->req = req;
	rest->done = done;
	rest->iovcnt = n;
	memcpy(rest->iov, req->iov + i, n * sizeof(rest->iov[0]));
	rest->iov[0].iov_base = (char *)rest->iov[0].iov_base + skip;
	rest->iov[0].iov_len -= skip;
	sqe = block_get_sqe(b);
	if (!sqe) {
		free(rest);
		return false;
	}
	if (req->op == BLOCK_READ) {
		io_uring_prep_readv(sqe, b->fd, rest->iov, n, req->offset + (uint64_t)done);
	} else {
		io_uring_prep_writev(sqe, b->fd, rest->iov, n, req->offset + (uint64_t)done);
		if (req->dsync)
			sqe->rw_flags = RWF_DSYNC;
	}
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)rest | BLOCK_TAG_REST);
	return true;
}

/* Move queued requests into the ring while there is room. */
static void block_drain_overflow(struct block_dev *b)
{
	while (b->ovf_head) {
		struct block_req *req = b->ovf_head, *next = req->next;

		if (!block_prep(b, req, false))
			return;
		b->ovf_head = next;
		if (!next)
			b->ovf_tail = &b->ovf_head;
	}
}

/* Wake the loop thread through the ring's eventfd (block_event). */
static void block_poke(struct block_dev *b)
{
	uint64_t one = 1;

	/* EAGAIN: the counter is saturated, a wake-up is pending anyway. */
	if (write(b->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_ratelimited(&b->rl, LOG_WARN, "disk %s: eventfd: %s", b->path, strerror(errno));
}

/* Hand prepared SQEs to the kernel. Called with the lock. */
static void block_flush_sq(struct block_dev *b)
{
	int ret;

	if (!io_uring_sq_ready(&b->ring))
		return;
	do
		ret = io_uring_submit(&b->ring);
	while (ret == -EINTR);
	if (ret >= 0)
		return;
	/* -EAGAIN (no memory for requests): the SQEs stay in the ring and count
	 * as in flight; poke the loop thread so it tries again. */
	log_ratelimited(&b->rl, LOG_WARN, "disk %s: io_uring submit: %s", b->path, strerror(-ret));
	block_poke(b);
}

/* Validate (req) before it is queued: 0 or the -errno to complete it with. */
static int block_check(const struct block_dev *b, const struct block_req *req)
{
	uint64_t len = 0, end;

	switch (req->op) {
	case BLOCK_READ:
	case BLOCK_WRITE:
		if (req->iovcnt > IOV_MAX || (req->iovcnt && !req->iov))
			return -EINVAL;
		for (unsigned i = 0; i < req->iovcnt; i++)
			if (__builtin_add_overflow(len, req->iov[i].iov_len, &len))
				return -EINVAL;
		break;
	case BLOCK_DISCARD:
	case BLOCK_WRITE_ZEROES:
		len = req->len;
		break;
	case BLOCK_FLUSH:
		return 0;
	default:
		return -EOPNOTSUPP;
	}
	if (b->readonly && req->op != BLOCK_READ)
		return -EROFS;
	if (__builtin_add_overflow(req->offset, len, &end) || end > b->size)
		return -EINVAL;
	return 0;
}

void block_submit(struct block_dev *b, struct block_req *req)
{
	int err = block_check(b, req);

	pthread_mutex_lock(&b->lock);
	b->pending++;
	if (err) {
		/* Completed by the loop, like every request (see the top). */
		req->refused_err = err;
		req->next = b->refused;
		b->refused = req;
		block_poke(b);
		pthread_mutex_unlock(&b->lock);
		return;
	}
	/* Always through the list, so requests enter the ring in order. */
	req->next = NULL;
	*b->ovf_tail = req;
	b->ovf_tail = &req->next;
	block_drain_overflow(b);
	if (!b->plugged)
		block_flush_sq(b);
	pthread_mutex_unlock(&b->lock);
}

void block_plug(struct block_dev *b)
{
	pthread_mutex_lock(&b->lock);
	b->plugged++;
	pthread_mutex_unlock(&b->lock);
}

void block_unplug(struct block_dev *b)
{
	pthread_mutex_lock(&b->lock);
	if (b->plugged && !--b->plugged)
		block_flush_sq(b);
	pthread_mutex_unlock(&b->lock);
}

struct block_completion {
	struct block_req *req;
	int64_t res;
};

/* Turn one CQE into a completion, or into a follow-up SQE (short transfer,
 * ZERO_RANGE fallback). true: (c) is to be completed. Called with the lock. */
static bool block_cqe(struct block_dev *b, const struct io_uring_cqe *cqe,
		      struct block_completion *c)
{
	uint64_t tag = cqe->user_data & BLOCK_TAG_MASK;
	void *ptr = (void *)(uintptr_t)(cqe->user_data & ~BLOCK_TAG_MASK);
	struct block_req *req = ptr;
	int64_t res = cqe->res;

	if (tag & BLOCK_TAG_REST) {
		struct block_rest *rest = ptr;

		c->req = rest->req;
		c->res = res < 0 ? res : rest->done + res;
		free(rest);
		return true;
	}
	if ((req->op == BLOCK_READ || req->op == BLOCK_WRITE) && res > 0 &&
	    (uint64_t)res < block_iov_len(req) && block_prep_rest(b, req, res))
		return false;
	if (req->op == BLOCK_WRITE_ZEROES && res == -EOPNOTSUPP && !(tag & BLOCK_TAG_PUNCH)) {
		b->no_zero_range = true;
		if (block_prep(b, req, true))
			return false;
	}
	c->req = req;
	c->res = res;
	return true;
}

/* (n) done() calls returned: wake block_close when nothing is left. */
static void block_retire(struct block_dev *b, unsigned n)
{
	pthread_mutex_lock(&b->lock);
	b->pending -= n;
	if (!b->pending)
		pthread_cond_broadcast(&b->idle);
	pthread_mutex_unlock(&b->lock);
}

/* Complete the requests refused at submit time (loop thread). A done()
 * that submits another bad request queues it for the next event. */
static void block_complete_refused(struct block_dev *b)
{
	struct block_req *req, *next;
	unsigned n = 0;

	pthread_mutex_lock(&b->lock);
	req = b->refused;
	b->refused = NULL;
	pthread_mutex_unlock(&b->lock);
	for (; req; req = next, n++) {
		next = req->next; /* done() may reuse req */
		req->done(req, req->refused_err);
	}
	if (n)
		block_retire(b, n);
}

/* The ring's eventfd fired (loop thread): reap, refill, complete. */
static void block_event(void *opaque, uint32_t events)
{
	struct block_completion batch[BLOCK_REAP_BATCH];
	struct block_dev *b = opaque;
	struct io_uring_cqe *cqe;
	unsigned n;
	uint64_t v;

	/* Drain before reaping: a CQE posted after this read signals again. */
	if (read(b->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_ratelimited(&b->rl, LOG_WARN, "disk %s: eventfd: %s", b->path, strerror(errno));
	block_complete_refused(b);
	do {
		n = 0;
		pthread_mutex_lock(&b->lock);
		while (n < BLOCK_REAP_BATCH && io_uring_peek_cqe(&b->ring, &cqe) == 0) {
			b->inflight--;
			if (block_cqe(b, cqe, &batch[n]))
				n++;
			io_uring_cqe_seen(&b->ring, cqe);
		}
		block_drain_overflow(b);
		block_flush_sq(b);
		pthread_mutex_unlock(&b->lock);

		for (unsigned i = 0; i < n; i++)
			batch[i].req->done(batch[i].req, batch[i].res);
		if (n)
			block_retire(b, n);
	} while (n == BLOCK_REAP_BATCH);
}

/* Open and lock the image. */
static int block_open_fd(struct block_dev *b)
{
	int flags = (b->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | (b->direct ? O_DIRECT : 0);
	int err;

	b->fd = open(b->path, flags);
	if (b->fd < 0) {
		err = errno;
		if (err == EINVAL && b->direct)
			log_err("disk %s: cache=none needs O_DIRECT, which its filesystem does not "
				"support",
				b->path);
		else
			log_err("disk %s: %s", b->path, strerror(err));
		return -err;
	}
	/* flock locks belong to the open file description: a second VM, or a
	 * second open in this one, conflicts; the lock goes with close(). */
	if (flock(b->fd, (b->readonly ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
		err = errno;
		if (err == EWOULDBLOCK) {
			log_err("disk %s: in use by another process (locked)", b->path);
			err = EBUSY;
		} else {
			log_err("disk %s: flock: %s", b->path, strerror(err));
		}
		close(b->fd);
		return -err;
	}
	return 0;
}

/* The file offset alignment O_DIRECT needs on (fd)'s filesystem: 512, or
 * more where statx says so (4 KiB-sector disks). */
static uint32_t block_dio_align(int fd)
{
#ifdef STATX_DIOALIGN
	struct statx stx;

	if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
	    (stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_offset_align > 512)
		return stx.stx_dio_offset_align;
#endif
	return 512;
}

/* Size and logical block size of a regular file or block device. */
static int block_probe(struct block_dev *b)
{
	struct stat st;
	int ssz;

	if (fstat(b->fd, &st) < 0) {
		log_err("disk %s: fstat: %s", b->path, strerror(errno));
		return -errno;
	}
	b->lbs = 512;
	if (S_ISREG(st.st_mode)) {
		b->size = (uint64_t)st.st_size;
		if (b->direct)
			b->lbs = block_dio_align(b->fd);
		return 0;
	}
	if (!S_ISBLK(st.st_mode)) {
		log_err("disk %s: not a regular file or block device", b->path);
		return -EINVAL;
	}
	if (ioctl(b->fd, BLKGETSIZE64, &b->size) < 0) {
		log_err("disk %s: BLKGETSIZE64: %s", b->path, strerror(errno));
		return -errno;
	}
	if (b->direct) {
		if (ioctl(b->fd, BLKSSZGET, &ssz) < 0) {
			log_err("disk %s: BLKSSZGET: %s", b->path, strerror(errno));
			return -errno;
		}
		if (ssz > 512)
			b->lbs = (uint32_t)ssz;
	}
	return 0;
}

/* The ring and its completion eventfd on the loop. */
static int block_ring_init(struct block_dev *b, unsigned queue_depth)
{
	int ret;

	ret = io_uring_queue_init(queue_depth, &b->ring, 0);
	if (ret < 0) {
		log_err("disk %s: io_uring_queue_init(%u): %s", b->path, queue_depth,
			strerror(-ret));
		return ret;
	}
	b->depth = queue_depth;
	b->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (b->efd < 0) {
		ret = -errno;
		log_err("disk %s: eventfd: %s", b->path, strerror(errno));
		goto err_ring;
	}
	ret = io_uring_register_eventfd(&b->ring, b->efd);
	if (ret < 0) {
		log_err("disk %s: io_uring_register_eventfd: %s", b->path, strerror(-ret));
		goto err_efd;
	}
	ret = evloop_add(b->loop, b->efd, EPOLLIN, block_event, b);
	if (ret < 0) {
		log_err("disk %s: evloop_add: %s", b->path, strerror(-ret));
		goto err_efd;
	}
	return 0;

err_efd:
	close(b->efd);
err_ring:
	io_uring_queue_exit(&b->ring);
	return ret;
}

int block_open(struct block_dev **out, const struct block_opts *opts, struct evloop *loop,
	       unsigned queue_depth)
{
	struct block_dev *b;
	int ret;

	if (!opts->path ||
	    (opts->cache != BLOCK_CACHE_WRITEBACK && opts->cache != BLOCK_CACHE_NONE)) {
		log_err("disk %s: bad options", opts->path ? opts->path : "(none)");
		return -EINVAL;
	}
	if (!queue_depth) {
		log_err("disk %s: queue depth 0", opts->path);
		return -EINVAL;
	}
	b = calloc(1, sizeof(*b));
	if (!b || !(b->path = strdup(opts->path))) {
		free(b);
		return -ENOMEM;
	}
	b->readonly = opts->readonly;
	b->direct = opts->cache == BLOCK_CACHE_NONE;
	b->loop = loop;
	b->ovf_tail = &b->ovf_head;
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->idle, NULL);

	ret = block_open_fd(b);
	if (ret)
		goto err_free;
	ret = block_probe(b);
	if (ret)
		goto err_fd;
	ret = block_ring_init(b, queue_depth);
	if (ret)
		goto err_fd;
	*out = b;
	return 0;

err_fd:
	close(b->fd);
err_free:
	pthread_cond_destroy(&b->idle);
	pthread_mutex_destroy(&b->lock);
	free(b->path);
	free(b);
	return ret;
}

void block_close(struct block_dev *b)
{
	if (!b)
		return;
	/* Queued requests go in as earlier ones complete; wait for every done(). */
	pthread_mutex_lock(&b->lock);
	while (b->pending)
		pthread_cond_wait(&b->idle, &b->lock);
	pthread_mutex_unlock(&b->lock);
	/* Also waits until block_event, which may still be running after the
	 * last done(), has returned. */
	evloop_del(b->loop, b->efd);
	io_uring_unregister_eventfd(&b->ring);
	io_uring_queue_exit(&b->ring);
	close(b->efd);
	close(b->fd); /* releases the flock */
	pthread_cond_destroy(&b->idle);
	pthread_mutex_destroy(&b->lock);
	free(b->path);
	free(b);
}

uint64_t block_size(const struct block_dev *b)
{
	return b->size;
}

uint32_t block_logical_block_size(const struct block_dev *b)
{
	return b->lbs;
}

bool block_readonly(const struct block_dev *b)
{
	return b->readonly;
}
