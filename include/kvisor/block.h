/* Block backends: raw image files served with io_uring. Device models
 * (virtio-blk) submit requests with iovecs and get completions by callback,
 * always on the event-loop thread. */
#ifndef KVISOR_BLOCK_H
#define KVISOR_BLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

struct evloop;

enum block_cache { BLOCK_CACHE_WRITEBACK = 0, BLOCK_CACHE_NONE = 1 /* O_DIRECT */ };

struct block_opts {
	const char *path;
	bool readonly;
	enum block_cache cache;
};

enum block_op { BLOCK_READ, BLOCK_WRITE, BLOCK_FLUSH, BLOCK_DISCARD, BLOCK_WRITE_ZEROES };

struct block_req;
/* Completion: (res) is the byte count for reads/writes (a short transfer,
 * after one resubmission of the remainder, is reported as is), 0 for the
 * others, or -errno. */
typedef void (*block_done_fn)(struct block_req *req, int64_t res);

struct block_req {
	enum block_op op;
	uint64_t offset;   /* bytes */
	uint64_t len;      /* bytes, for DISCARD/WRITE_ZEROES */
	struct iovec *iov; /* READ/WRITE */
	unsigned iovcnt;
	bool dsync; /* WRITE: durable on completion (RWF_DSYNC) */
	block_done_fn done;
	void *opaque;           /* the device's */
	struct block_req *next; /* the backend's: its queues until done() */
	int refused_err;        /* the backend's: why block_submit refused it */
};

struct block_dev;

/* Open (opts->path): a writable image is locked with flock(LOCK_EX|LOCK_NB)
 * so a second VM cannot open it (-EBUSY, with a clear message), a read-only
 * one with LOCK_SH. Sizes the image (regular file or block device). Creates
 * an io_uring with (queue_depth) entries whose completions are handled on
 * (loop). 0 or -errno; errors print one line naming the path. */
int block_open(struct block_dev **out, const struct block_opts *opts, struct evloop *loop,
	       unsigned queue_depth) __attribute__((warn_unused_result));

/* Size in bytes, logical block size (512, or the device's for O_DIRECT). */
uint64_t block_size(const struct block_dev *b);
uint32_t block_logical_block_size(const struct block_dev *b);
bool block_readonly(const struct block_dev *b);

/* Submit a request; its done() runs later on the event-loop thread, never
 * inside this call, also when the request is refused (so a caller may hold
 * a lock its done() takes). (req) and its iovecs must stay valid until
 * done(). Requests may complete in any order; none is dropped: when
 * queue_depth are in the kernel, later ones wait in order. Thread-safe,
 * also from done(). Refusals (done() with -errno): -EINVAL when the range
 * (offset + length, overflow checked) leaves the image, -EROFS for writes,
 * discards and write-zeroes on a read-only device, -EOPNOTSUPP for an
 * unknown op. FLUSH is a full fsync in both cache modes: the data of writes
 * completed before it survives a crash of the process (and of the host, as
 * far as the disk honours flushes). WRITE_ZEROES may deallocate the range
 * (hole punch) where the filesystem has no FALLOC_FL_ZERO_RANGE. */
void block_submit(struct block_dev *b, struct block_req *req);

/* Batch submissions: while the device is plugged (by any thread),
 * block_submit only queues requests for the ring; the last unplug hands
 * them all to the kernel in one system call (a device plugs around one
 * pass over its virtqueue). Completions do not wait for an unplug. */
void block_plug(struct block_dev *b);
void block_unplug(struct block_dev *b);

/* Wait for every request in flight or queued (their done() has returned),
 * then close, releasing the lock. Not from the event-loop thread (it
 * delivers the completions), nor while another thread may submit. */
void block_close(struct block_dev *b);

#endif
