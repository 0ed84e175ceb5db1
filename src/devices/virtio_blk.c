/* virtio-blk (virtio 1.2, 5.2), one device instance per --disk, backed by
 * raw images through io_uring (src/backends/block.c).
 * Requests are parsed and submitted on the VM's event-loop thread and
 * completed there; a guest mistake becomes a status, never a crash. */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvisor/block.h"
#include "kvisor/config.h"
#include "kvisor/device.h"
#include "kvisor/log.h"
#include "kvisor/virtio.h"
#include "kvisor/virtio_blk.h"
#include "kvisor/vm.h"
#include "kvisor/vq.h"

#define VIRTIO_BLK_MAX_QUEUES 16
#define VIRTIO_BLK_QUEUE_SIZE 256
#define VIRTIO_BLK_SEG_MAX    128  /* data buffers per request */
#define VIRTIO_BLK_RING_DEPTH 1024 /* io_uring entries at most */
#define VIRTIO_BLK_SECTOR     512ULL
#define VIRTIO_BLK_HDR_LEN    16
#define VIRTIO_BLK_SEG_LEN    16 /* struct virtio_blk_discard_write_zeroes */
#define VIRTIO_BLK_ID_BYTES   VIRTIO_BLK_SERIAL_MAX
/* Discard and write-zeroes limits: one segment of up to ~2 GiB, 4 KiB-aligned
 * hints (a hole punch handles any alignment). */
#define VIRTIO_BLK_MAX_ZERO_SECTORS 0x3ffff8u
#define VIRTIO_BLK_DISCARD_ALIGN    8u

/* Feature bits (5.2.3). */
#define VIRTIO_BLK_F_SEG_MAX      2
#define VIRTIO_BLK_F_RO           5
#define VIRTIO_BLK_F_BLK_SIZE     6
#define VIRTIO_BLK_F_FLUSH        9
#define VIRTIO_BLK_F_MQ           12
#define VIRTIO_BLK_F_DISCARD      13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* Request types and statuses (5.2.6). */
#define VIRTIO_BLK_T_IN           0
#define VIRTIO_BLK_T_OUT          1
#define VIRTIO_BLK_T_FLUSH        4
#define VIRTIO_BLK_T_GET_ID       8
#define VIRTIO_BLK_T_DISCARD      11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_S_OK           0
#define VIRTIO_BLK_S_IOERR        1
#define VIRTIO_BLK_S_UNSUPP       2
#define VIRTIO_BLK_WZ_F_UNMAP     1

/* struct virtio_blk_config (5.2.4), little-endian. */
struct virtio_blk_config {
	uint64_t capacity;
	uint32_t size_max;
	uint32_t seg_max;
	uint16_t cylinders;
	uint8_t heads;
	uint8_t sectors;
	uint32_t blk_size;
	uint8_t physical_block_exp;
	uint8_t alignment_offset;
	uint16_t min_io_size;
	uint32_t opt_io_size;
	uint8_t writeback;
	uint8_t unused0;
	uint16_t num_queues;
	uint32_t max_discard_sectors;
	uint32_t max_discard_seg;
	uint32_t discard_sector_alignment;
	uint32_t max_write_zeroes_sectors;
	uint32_t max_write_zeroes_seg;
	uint8_t write_zeroes_may_unmap;
	uint8_t unused1[3];
	uint32_t max_secure_erase_sectors;
	uint32_t max_secure_erase_seg;
	uint32_t secure_erase_sector_alignment;
} __attribute__((packed));

_Static_assert(sizeof(struct virtio_blk_config) == 72, "virtio_blk_config layout");
_Static_assert(offsetof(struct virtio_blk_config, num_queues) == 34, "num_queues offset");
_Static_assert(offsetof(struct virtio_blk_config, write_zeroes_may_unmap) == 56, "wz offset");

struct virtio_blk;

/* One request slot; a queue has as many as its largest size, so a driver
 * that plays by the rules never waits for one. */
struct virtio_blk_req {
	struct block_req breq; /* first: the completion casts back */
	struct virtio_blk *blk;
	struct virtio_blk_req *next_free;
	unsigned qi;
	uint16_t head;
	uint8_t *status;  /* the chain's last writable byte, in guest RAM */
	uint32_t written; /* used length reported on success */
	uint64_t expect;  /* bytes a READ or WRITE must move */
	struct iovec iov[VIRTIO_BLK_SEG_MAX];
};

struct virtio_blk_queue {
	struct virtio_blk_req *reqs;
	struct virtio_blk_req *free;
	bool starved; /* stopped popping for want of a slot */
};

/* Everything below the device lock (virtio_dev_lock), which every
 * callback and completion holds; all of them run on the event-loop thread
 * except cfg_read and reset. */
struct virtio_blk {
	char name[CONFIG_ID_MAX]; /* the instance id */
	struct virtio_dev *vdev;
	struct block_dev *bdev;
	bool readonly;
	uint64_t capacity; /* 512-byte sectors */
	uint8_t serial[VIRTIO_BLK_ID_BYTES];
	struct virtio_blk_config config;
	unsigned nr_queues;
	struct log_ratelimit rl;
	struct vq_chain chain; /* the chain being parsed */
	struct virtio_blk_queue queues[];
};

static void virtio_blk_process(struct virtio_blk *blk, unsigned qi);

/* Finish (req) with (status) and hand its chain back; the caller notifies
 * the driver once it is done pushing. */
static void virtio_blk_complete(struct virtio_blk *blk, struct virtio_blk_req *req, uint8_t status,
				uint32_t written)
{
	struct virtio_blk_queue *q = &blk->queues[req->qi];

	__atomic_store_n(req->status, status, __ATOMIC_RELAXED); /* ordered by vq_push */
	virtio_dev_push(blk->vdev, req->qi, req->head, written);
	req->next_free = q->free;
	q->free = req;
}

/* What a request handler returns when the request went to the backend;
 * otherwise it returns the status. */
#define VIRTIO_BLK_PENDING (-1)

/* I/O completion: on the event-loop thread, never inside block_submit, so
 * the device lock is not held here yet. */
static void virtio_blk_done(struct block_req *breq, int64_t res)
{
	struct virtio_blk_req *req = (struct virtio_blk_req *)breq;
	struct virtio_blk *blk = req->blk;
	unsigned qi = req->qi; /* req is free once completed */
	struct virtio_blk_queue *q = &blk->queues[qi];
	bool rw = breq->op == BLOCK_READ || breq->op == BLOCK_WRITE;
	uint8_t status = VIRTIO_BLK_S_OK;

	if (res < 0 || (rw && (uint64_t)res != req->expect)) {
		/* Host errors and short transfers alike: the guest sees IOERR. */
		log_ratelimited(&blk->rl, LOG_WARN, "%s: %s at byte %" PRIu64 ": %s", blk->name,
				breq->op == BLOCK_READ  ? "read" :
				breq->op == BLOCK_WRITE ? "write" :
				breq->op == BLOCK_FLUSH ? "flush" :
							  "discard/write-zeroes",
				breq->offset, res < 0 ? strerror((int)-res) : "short transfer");
		status = VIRTIO_BLK_S_IOERR;
	}
	virtio_dev_lock(blk->vdev);
	virtio_blk_complete(blk, req, status, status == VIRTIO_BLK_S_OK ? req->written : 1);
	if (q->starved) {
		/* A slot is free again: take the chains left waiting. */
		q->starved = false;
		block_plug(blk->bdev);
		virtio_blk_process(blk, qi);
		block_unplug(blk->bdev);
	}
	virtio_dev_notify(blk->vdev, qi);
	virtio_dev_unlock(blk->vdev);
}

static int virtio_blk_submit(struct virtio_blk *blk, struct virtio_blk_req *req, enum block_op op,
			     uint64_t offset, uint64_t len, unsigned iovcnt)
{
	req->breq = (struct block_req){
		.op = op,
		.offset = offset,
		.len = len,
		.iov = req->iov,
		.iovcnt = iovcnt,
		.done = virtio_blk_done,
		.opaque = req,
		/* Without VIRTIO_BLK_F_FLUSH the driver cannot flush, so the
		 * device's cache must be write-through (virtio 1.2, 5.2.6.2). */
		.dsync = op == BLOCK_WRITE &&
			 !(virtio_dev_features(blk->vdev) & (1ULL << VIRTIO_BLK_F_FLUSH)),
	};
	block_submit(blk->bdev, &req->breq); /* completes later, on the loop */
	return VIRTIO_BLK_PENDING;
}

/* (len) bytes of buffers [first, end) of (c) after (skip) bytes, as
 * iovecs; -1 when more than VIRTIO_BLK_SEG_MAX are needed. */
static int virtio_blk_iov(const struct vq_chain *c, unsigned first, unsigned end, uint64_t skip,
			  uint64_t len, struct iovec *iov)
{
	int n = 0;

	for (unsigned i = first; i < end && len; i++) {
		const struct vq_buf *b = &c->bufs[i];
		uint64_t take;

		if (skip >= b->len) {
			skip -= b->len;
			continue;
		}
		take = b->len - skip;
		if (take > len)
			take = len;
		if (n == VIRTIO_BLK_SEG_MAX)
			return -1;
		iov[n].iov_base = (uint8_t *)b->hva + skip;
		iov[n].iov_len = take;
		n++;
		len -= take;
		skip = 0;
	}
	return n;
}

/* Whether (sectors) from (sector) lie inside the disk (overflow-safe). */
static bool virtio_blk_in_range(const struct virtio_blk *blk, uint64_t sector, uint64_t sectors)
{
	return sector <= blk->capacity && sectors <= blk->capacity - sector;
}

/* IN (read into the writable buffers) or OUT (write the readable ones). */
static int virtio_blk_rw(struct virtio_blk *blk, struct virtio_blk_req *req,
			 const struct vq_chain *c, uint64_t sector, bool out)
{
	uint64_t len = out ? c->readable_len - VIRTIO_BLK_HDR_LEN : c->writable_len - 1;
	int n;

	/* Data only in the direction of the request; whole sectors; inside. */
	if ((out ? c->writable_len != 1 : c->readable_len != VIRTIO_BLK_HDR_LEN) ||
	    len % VIRTIO_BLK_SECTOR || !virtio_blk_in_range(blk, sector, len / VIRTIO_BLK_SECTOR) ||
	    (out && blk->readonly))
		return VIRTIO_BLK_S_IOERR;
	if (out)
		n = virtio_blk_iov(c, 0, c->nr_readable, VIRTIO_BLK_HDR_LEN, len, req->iov);
	else
		n = virtio_blk_iov(c, c->nr_readable, c->nr_bufs, 0, len, req->iov);
	if (n < 0) {
		log_ratelimited(&blk->rl, LOG_WARN, "%s: request with more than %u segments",
				blk->name, VIRTIO_BLK_SEG_MAX);
		return VIRTIO_BLK_S_IOERR;
	}
	if (len == 0)
		return VIRTIO_BLK_S_OK;
	req->expect = len;
	req->written = out ? 1 : (uint32_t)len + 1; /* len < writable_len <= UINT32_MAX */
	return virtio_blk_submit(blk, req, out ? BLOCK_WRITE : BLOCK_READ,
				 sector * VIRTIO_BLK_SECTOR, 0, (unsigned)n);
}

/* DISCARD or WRITE_ZEROES: one segment (max_discard_seg = 1). */
static int virtio_blk_zero(struct virtio_blk *blk, struct virtio_blk_req *req,
			   const struct vq_chain *c, uint32_t type)
{
	uint8_t seg[VIRTIO_BLK_SEG_LEN];
	uint64_t sector;
	uint32_t num, flags;

	if (blk->readonly || c->readable_len != VIRTIO_BLK_HDR_LEN + VIRTIO_BLK_SEG_LEN)
		return VIRTIO_BLK_S_IOERR;
	vq_chain_read(c, VIRTIO_BLK_HDR_LEN, seg, sizeof(seg));
	memcpy(&sector, seg, 8);
	memcpy(&num, seg + 8, 4);
	memcpy(&flags, seg + 12, 4);
	sector = le64toh(sector);
	num = le32toh(num);
	flags = le32toh(flags);
	/* Unknown flags, or unmap on a discard: UNSUPP (5.2.6.2). */
	if ((flags & ~VIRTIO_BLK_WZ_F_UNMAP) ||
	    (type == VIRTIO_BLK_T_DISCARD && (flags & VIRTIO_BLK_WZ_F_UNMAP)))
		return VIRTIO_BLK_S_UNSUPP;
	if (num > VIRTIO_BLK_MAX_ZERO_SECTORS || !virtio_blk_in_range(blk, sector, num))
		return VIRTIO_BLK_S_IOERR;
	if (num == 0)
		return VIRTIO_BLK_S_OK;
	return virtio_blk_submit(blk, req,
				 type == VIRTIO_BLK_T_DISCARD ? BLOCK_DISCARD : BLOCK_WRITE_ZEROES,
				 sector * VIRTIO_BLK_SECTOR, (uint64_t)num * VIRTIO_BLK_SECTOR, 0);
}

/* GET_ID: the serial, zero-padded to 20 bytes (no NUL when it is 20). */
static int virtio_blk_get_id(struct virtio_blk *blk, struct virtio_blk_req *req,
			     const struct vq_chain *c)
{
	uint64_t n = c->writable_len - 1;

	if (n > VIRTIO_BLK_ID_BYTES)
		n = VIRTIO_BLK_ID_BYTES;
	vq_chain_write(c, 0, blk->serial, n); /* stops before the status byte */
	req->written = (uint32_t)n + 1;
	return VIRTIO_BLK_S_OK;
}

/* Start request (req) of chain (c); the status, or PENDING. */
static int virtio_blk_start(struct virtio_blk *blk, struct virtio_blk_req *req,
			    const struct vq_chain *c)
{
	uint8_t hdr[VIRTIO_BLK_HDR_LEN];
	uint64_t sector;
	uint32_t type;

	if (c->readable_len < VIRTIO_BLK_HDR_LEN)
		return VIRTIO_BLK_S_IOERR;
	vq_chain_read(c, 0, hdr, sizeof(hdr));
	memcpy(&type, hdr, 4);
	memcpy(&sector, hdr + 8, 8);
	type = le32toh(type);
	sector = le64toh(sector);
	switch (type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		return virtio_blk_rw(blk, req, c, sector, type == VIRTIO_BLK_T_OUT);
	case VIRTIO_BLK_T_FLUSH:
		/* Full fsync: what the guest flushed survives a crash of kvisor. */
		return virtio_blk_submit(blk, req, BLOCK_FLUSH, 0, 0, 0);
	case VIRTIO_BLK_T_GET_ID:
		return virtio_blk_get_id(blk, req, c);
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		return virtio_blk_zero(blk, req, c, type);
	default:
		return VIRTIO_BLK_S_UNSUPP;
	}
}

/* Take chain (c) of queue (qi) in slot (req). */
static void virtio_blk_handle(struct virtio_blk *blk, unsigned qi, struct virtio_blk_req *req,
			      const struct vq_chain *c)
{
	const struct vq_buf *last;
	int st;

	req->qi = qi;
	req->head = c->head;
	if (!c->writable_len) {
		/* No status byte (none writable, or it is readable): nothing can
		 * tell the driver, so the device needs a reset (as QEMU does). */
		virtio_dev_push(blk->vdev, qi, req->head, 0);
		req->next_free = blk->queues[qi].free;
		blk->queues[qi].free = req;
		virtio_dev_needs_reset(blk->vdev, "request without a status byte");
		return;
	}
	/* Writable buffers come last and are never empty: the status byte. */
	last = &c->bufs[c->nr_bufs - 1];
	req->status = (uint8_t *)last->hva + last->len - 1;
	req->written = 1;
	st = virtio_blk_start(blk, req, c);
	if (st != VIRTIO_BLK_PENDING)
		virtio_blk_complete(blk, req, (uint8_t)st,
				    st == VIRTIO_BLK_S_OK ? req->written : 1);
}

/* Start every chain available on queue (qi) while slots last (transport
 * lock held). */
static void virtio_blk_process(struct virtio_blk *blk, unsigned qi)
{
	struct virtio_blk_queue *q = &blk->queues[qi];

	for (;;) {
		struct virtio_blk_req *req = q->free;

		if (!req) {
			/* Only a driver with more chains out than its queue size
			 * gets here; completions resume the queue. */
			q->starved = true;
			return;
		}
		if (virtio_dev_pop(blk->vdev, qi, &blk->chain) <= 0)
			return;
		q->free = req->next_free;
		virtio_blk_handle(blk, qi, req, &blk->chain);
	}
}

/* --- transport callbacks ------------------------------------------------ */

static void virtio_blk_queue_notify(void *opaque, unsigned qi)
{
	struct virtio_blk *blk = opaque;

	if (qi >= blk->nr_queues)
		return;
	/* One io_uring_enter for everything this pass starts. */
	block_plug(blk->bdev);
	virtio_blk_process(blk, qi);
	block_unplug(blk->bdev);
	/* One interrupt for what the pass completed at once (GET_ID, errors). */
	virtio_dev_notify(blk->vdev, qi);
}

static void virtio_blk_cfg_read(void *opaque, uint32_t off, void *data, uint32_t len)
{
	struct virtio_blk *blk = opaque;

	memcpy(data, (const uint8_t *)&blk->config + off, len); /* bounds: transport */
}

/* Every slot is free again (all chains were pushed): rebuild the lists. */
static void virtio_blk_reset_queues(struct virtio_blk *blk)
{
	for (unsigned i = 0; i < blk->nr_queues; i++) {
		struct virtio_blk_queue *q = &blk->queues[i];

		q->free = NULL;
		q->starved = false;
		for (unsigned k = VIRTIO_BLK_QUEUE_SIZE; k-- > 0;) {
			q->reqs[k].blk = blk;
			q->reqs[k].next_free = q->free;
			q->free = &q->reqs[k];
		}
	}
}

static void virtio_blk_reset(void *opaque)
{
	virtio_blk_reset_queues(opaque);
}

static const struct virtio_ops virtio_blk_ops = {
	.cfg_read = virtio_blk_cfg_read,
	.queue_notify = virtio_blk_queue_notify,
	.reset = virtio_blk_reset,
};

/* --- creation ------------------------------------------------------------ */

static void virtio_blk_build_config(struct virtio_blk *blk)
{
	struct virtio_blk_config *c = &blk->config;

	memset(c, 0, sizeof(*c));
	c->capacity = htole64(blk->capacity);
	c->seg_max = htole32(VIRTIO_BLK_SEG_MAX);
	c->blk_size = htole32(block_logical_block_size(blk->bdev));
	c->num_queues = htole16((uint16_t)blk->nr_queues);
	c->max_discard_sectors = htole32(VIRTIO_BLK_MAX_ZERO_SECTORS);
	c->max_discard_seg = htole32(1);
	c->discard_sector_alignment = htole32(VIRTIO_BLK_DISCARD_ALIGN);
	c->max_write_zeroes_sectors = htole32(VIRTIO_BLK_MAX_ZERO_SECTORS);
	c->max_write_zeroes_seg = htole32(1);
	c->write_zeroes_may_unmap = 1;
}

static void virtio_blk_free(struct virtio_blk *blk)
{
	virtio_dev_destroy(blk->vdev); /* waits for requests in flight */
	if (blk->bdev)
		block_close(blk->bdev);
	for (unsigned i = 0; i < blk->nr_queues; i++)
		free(blk->queues[i].reqs);
	free(blk);
}

/* Instances are created in description order and take the lowest free
 * PCI slots in turn, so Linux names them vda, vdb, ... in --disk order. */
static int virtio_blk_create(struct vm *vm, const struct config_device *inst, void **state)
{
	const struct virtio_blk_params *disk = inst->params;
	unsigned nq = vm->cfg->cpus < VIRTIO_BLK_MAX_QUEUES ? vm->cfg->cpus : VIRTIO_BLK_MAX_QUEUES;
	unsigned depth = VIRTIO_BLK_QUEUE_SIZE * (nq ? nq : 1);
	struct block_opts opts = {
		.path = disk->path,
		.readonly = disk->readonly,
		.cache = disk->cache == BLOCK_CACHE_NONE ? BLOCK_CACHE_NONE : BLOCK_CACHE_WRITEBACK,
	};
	struct virtio_dev_config vcfg = {
		.transport = VIRTIO_TRANSPORT_PCI,
		.device_id = VIRTIO_ID_BLOCK,
		.queue_size = VIRTIO_BLK_QUEUE_SIZE,
		.cfg_size = sizeof(struct virtio_blk_config),
	};
	struct virtio_blk *blk;
	int ret;

	if (!nq)
		nq = 1;
	blk = calloc(1, sizeof(*blk) + nq * sizeof(blk->queues[0]));
	if (!blk)
		return -ENOMEM;
	snprintf(blk->name, sizeof(blk->name), "%s", inst->id);
	blk->nr_queues = nq;
	blk->readonly = disk->readonly;
	if (disk->serial) /* at most VIRTIO_BLK_ID_BYTES: validated */
		memcpy(blk->serial, disk->serial, strnlen(disk->serial, VIRTIO_BLK_ID_BYTES));
	for (unsigned i = 0; i < nq; i++) {
		blk->queues[i].reqs = calloc(VIRTIO_BLK_QUEUE_SIZE, sizeof(struct virtio_blk_req));
		if (!blk->queues[i].reqs) {
			ret = -ENOMEM;
			goto err;
		}
	}
	virtio_blk_reset_queues(blk);
	/* Errors name the path on one line (a locked image: "in use"). */
	ret = block_open(&blk->bdev, &opts, vm->io,
			 depth < VIRTIO_BLK_RING_DEPTH ? depth : VIRTIO_BLK_RING_DEPTH);
	if (ret)
		goto err;
	blk->capacity = block_size(blk->bdev) / VIRTIO_BLK_SECTOR;
	virtio_blk_build_config(blk);
	vcfg.name = blk->name;
	vcfg.nr_queues = nq;
	vcfg.features = 1ULL << VIRTIO_BLK_F_SEG_MAX | 1ULL << VIRTIO_BLK_F_BLK_SIZE |
			1ULL << VIRTIO_BLK_F_FLUSH | 1ULL << VIRTIO_BLK_F_MQ;
	if (disk->readonly)
		vcfg.features |= 1ULL << VIRTIO_BLK_F_RO;
	else
		vcfg.features |= 1ULL << VIRTIO_BLK_F_DISCARD | 1ULL << VIRTIO_BLK_F_WRITE_ZEROES;
	ret = virtio_dev_create(&blk->vdev, vm, vm->io, &vcfg, &virtio_blk_ops, blk);
	if (ret)
		goto err;
	log_debug("%s: %s, %" PRIu64 " sectors%s, %u queue(s)", blk->name, disk->path,
		  blk->capacity, disk->readonly ? ", read-only" : "", nq);
	*state = blk;
	return 0;
err:
	virtio_blk_free(blk);
	return ret;
}

static void virtio_blk_destroy(struct vm *vm, void *state)
{
	virtio_blk_free(state);
}

/* VM pause: the transport stops serving the queues and waits for the
 * requests in flight (their completions still arrive on the I/O thread,
 * which keeps running); resume serves kicks that came meanwhile. */
static int virtio_blk_pause(struct vm *vm, void *state)
{
	struct virtio_blk *blk = state;

	return virtio_dev_pause(blk->vdev);
}

static void virtio_blk_resume(struct vm *vm, void *state)
{
	struct virtio_blk *blk = state;

	virtio_dev_resume(blk->vdev);
}

/* Choices in enum block_cache order: the index is the value. */
static const char *const virtio_blk_caches[] = { "writeback", "none", NULL };

#define VIRTIO_BLK_OPT(k, field) .key = k, .offset = offsetof(struct virtio_blk_params, field)

static const struct config_opt_spec virtio_blk_opts[] = {
	{ VIRTIO_BLK_OPT("path", path), .kind = CONFIG_OPT_STRING, .required = true,
	  .max = CONFIG_PATH_MAX - 1 },
	{ VIRTIO_BLK_OPT("readonly", readonly), .kind = CONFIG_OPT_BOOL },
	{ VIRTIO_BLK_OPT("serial", serial), .kind = CONFIG_OPT_STRING,
	  .max = VIRTIO_BLK_SERIAL_MAX },
	{ VIRTIO_BLK_OPT("cache", cache), .kind = CONFIG_OPT_CHOICE, .choices = virtio_blk_caches },
	{ .key = NULL },
};

const struct device_type virtio_blk_type = {
	.name = "virtio-blk",
	.id_prefix = "disk",
	.max_instances = VIRTIO_BLK_MAX_DISKS,
	.opts = virtio_blk_opts,
	.params_size = sizeof(struct virtio_blk_params),
	.create = virtio_blk_create,
	.destroy = virtio_blk_destroy,
	.pause = virtio_blk_pause,
	.resume = virtio_blk_resume,
};
