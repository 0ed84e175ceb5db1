/* Block backends: raw image files served with io_uring. Device models
 * (virtio-blk) submit requests with iovecs and get completions by callback
 * on the event-loop thread. */
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
/* Completion: (res) is the byte count for reads/writes (a short transfer is
 * reported as is), 0 for the others, or -errno. */
typedef void (*block_done_fn)(struct block_req *req, int64_t res);

struct block_req {
	enum block_op op;
	uint64_t offset;        /* bytes */
	uint64_t len;           /* bytes, for DISCARD/WRITE_ZEROES */
	struct iovec *iov;      /* READ/WRITE */
	unsigned iovcnt;
	block_done_fn done;
	void *opaque;           /* the device's */
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

/* Submit a request; its done() runs later on the event-loop thread (or
 * immediately with -errno when it cannot be queued). Requests may complete
 * in any order. Thread-safe. Writes/discards on a read-only device complete
 * with -EROFS. */
void block_submit(struct block_dev *b, struct block_req *req);

/* Wait for every request in flight, then close. */
void block_close(struct block_dev *b);

#endif
