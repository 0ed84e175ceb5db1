/* Unit tests of the raw-image block backend: sizes, I/O round trips, hole
 * punching, read-only and range refusals (completed on the loop), image
 * locks, the overflow queue, O_DIRECT, close with requests in flight,
 * durability across kill -9. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <linux/loop.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kvisor/block.h"
#include "kvisor/evloop.h"

#define MiB (1024 * 1024)

#include "unit_tmpdir.h"

static void tmpdir_setup(void)
{
	unit_tmpdir_make("block");
}

/* A file of (size) bytes in (dir), path in (path). */
static void make_image(char *path, size_t cap, const char *dir, uint64_t size)
{
	int fd;

	snprintf(path, cap, "%s/img.XXXXXX", dir);
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
	close(fd);
}

static void fill(void *buf, size_t len, unsigned seed)
{
	uint8_t *p = buf;

	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 9));
}

static bool is_zero(const void *buf, size_t len)
{
	const uint8_t *p = buf;

	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

/* Requests the tests wait for. */
static pthread_mutex_t tr_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t tr_cond = PTHREAD_COND_INITIALIZER;
static unsigned tr_completed;

struct treq {
	struct block_req req; /* first: done() casts back */
	int64_t res;
	bool completed;
	char thread[16];
};

static void treq_done(struct block_req *req, int64_t res)
{
	struct treq *t = (struct treq *)req;

	t->res = res;
	pthread_getname_np(pthread_self(), t->thread, sizeof(t->thread));
	pthread_mutex_lock(&tr_lock);
	ck_assert(!t->completed);
	t->completed = true;
	tr_completed++;
	pthread_cond_broadcast(&tr_cond);
	pthread_mutex_unlock(&tr_lock);
}

static void treq_init(struct treq *t, enum block_op op, uint64_t off, uint64_t len,
		      struct iovec *iov, unsigned iovcnt)
{
	memset(t, 0, sizeof(*t));
	t->req = (struct block_req){ .op = op,
				     .offset = off,
				     .len = len,
				     .iov = iov,
				     .iovcnt = iovcnt,
				     .done = treq_done };
}

static void treq_wait(struct treq *t)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 20;
	pthread_mutex_lock(&tr_lock);
	while (!t->completed)
		ck_assert_int_eq(pthread_cond_timedwait(&tr_cond, &tr_lock, &ts), 0);
	pthread_mutex_unlock(&tr_lock);
}

/* Submit one request and wait for its result. */
static int64_t run(struct block_dev *b, enum block_op op, uint64_t off, uint64_t len,
		   struct iovec *iov, unsigned iovcnt)
{
	struct treq t;

	treq_init(&t, op, off, len, iov, iovcnt);
	block_submit(b, &t.req);
	treq_wait(&t);
	return t.res;
}

static int64_t run_buf(struct block_dev *b, enum block_op op, uint64_t off, void *buf, size_t len)
{
	struct iovec iov = { buf, len };

	return run(b, op, off, 0, &iov, 1);
}

static int open_image(struct block_dev **b, struct evloop *loop, const char *path, bool readonly,
		      enum block_cache cache, unsigned depth)
{
	struct block_opts o = { .path = path, .readonly = readonly, .cache = cache };

	return block_open(b, &o, loop, depth);
}

static struct evloop *new_loop(void)
{
	struct evloop *loop;

	ck_assert_int_eq(evloop_create(&loop, "blk-test"), 0);
	return loop;
}

START_TEST(test_open_size)
{
	struct evloop *loop = new_loop();
	char path[PATH_MAX];
	struct block_dev *b;

	make_image(path, sizeof(path), tmpdir, 3 * MiB + 4096);
	ck_assert_int_eq(open_image(&b, loop, path, false, BLOCK_CACHE_WRITEBACK, 16), 0);
	ck_assert_uint_eq(block_size(b), 3 * MiB + 4096);
	ck_assert_uint_eq(block_logical_block_size(b), 512);
	ck_assert(!block_readonly(b));
	block_close(b);

	ck_assert_int_eq(open_image(&b, loop, "/nonexistent/disk.img", false, 0, 16), -ENOENT);
	ck_assert_int_eq(open_image(&b, loop, tmpdir, false, 0, 16), -EISDIR);
	ck_assert_int_eq(open_image(&b, loop, tmpdir, true, 0, 16), -EINVAL);
	ck_assert_int_eq(open_image(&b, loop, "/dev/null", false, 0, 16), -EINVAL);
	ck_assert_int_eq(open_image(&b, loop, path, false, 0, 0), -EINVAL);
	ck_assert_int_eq(open_image(&b, loop, path, false, 7, 16), -EINVAL);
	/* A failed open must not leave the image locked. */
	ck_assert_int_eq(open_image(&b, loop, path, false, 0, 1u << 30), -EINVAL);
	ck_assert_int_eq(open_image(&b, loop, path, false, 0, 16), 0);
	block_close(b);
	evloop_destroy(loop);
}
END_TEST

START_TEST(test_rw_roundtrip)
{
	static uint8_t src[4096], dst[4096], disk[4096];
	struct evloop *loop = new_loop();
	struct iovec wv[3] = { { src, 512 }, { src + 512, 1000 }, { src + 1512, 2584 } };
	struct iovec rv[2] = { { dst, 3000 }, { dst + 3000, 1096 } };
	char path[PATH_MAX];
	struct block_dev *b;
	struct treq t;
	int fd;

	make_image(path, sizeof(path), tmpdir, MiB);
	ck_assert_int_eq(open_image(&b, loop, path, false, BLOCK_CACHE_WRITEBACK, 8), 0);
	fill(src, sizeof(src), 1);
	treq_init(&t, BLOCK_WRITE, 8192, 0, wv, 3);
	block_submit(b, &t.req);
	treq_wait(&t);
	ck_assert_int_eq(t.res, 4096);
	/* Completions run on the event-loop thread. */
	ck_assert_str_eq(t.thread, "blk-test");
	ck_assert_int_eq(run(b, BLOCK_READ, 8192, 0, rv, 2), 4096);
	ck_assert_mem_eq(src, dst, sizeof(src));
	ck_assert_int_eq(run(b, BLOCK_FLUSH, 0, 0, NULL, 0), 0);

	fd = open(path, O_RDONLY);
	ck_assert_int_eq(pread(fd, disk, sizeof(disk), 8192), sizeof(disk));
	ck_assert_mem_eq(src, disk, sizeof(src));
	/* The last byte of the image, and an empty read at its end. */
	ck_assert_int_eq(run_buf(b, BLOCK_WRITE, MiB - 1, src, 1), 1);
	ck_assert_int_eq(pread(fd, disk, 1, MiB - 1), 1);
	ck_assert_uint_eq(disk[0], src[0]);
	ck_assert_int_eq(run_buf(b, BLOCK_READ, MiB, dst, 0), 0);
	close(fd);
	block_close(b);
	evloop_destroy(loop);
}
END_TEST

static blkcnt_t blocks_of(const char *path)
{
	struct stat st;

	ck_assert_int_eq(stat(path, &st), 0);
	return st.st_blocks;
}

START_TEST(test_discard_punches_hole)
{
	struct evloop *loop = new_loop();
	uint8_t *data = malloc(4 * MiB), *back = malloc(4 * MiB);
	char path[PATH_MAX];
	struct block_dev *b;
	blkcnt_t before;
	int fd;

	make_image(path, sizeof(path), tmpdir, 4 * MiB);
	ck_assert_int_eq(open_image(&b, loop, path, false, BLOCK_CACHE_WRITEBACK, 8), 0);
	fill(data, 4 * MiB, 2);
	ck_assert_int_eq(run_buf(b, BLOCK_WRITE, 0, data, 4 * MiB), 4 * MiB);
	ck_assert_int_eq(run(b, BLOCK_FLUSH, 0, 0, NULL, 0), 0);
	before = blocks_of(path);
	ck_assert_int_ge(before, 4 * MiB / 512);

	ck_assert_int_eq(run(b, BLOCK_DISCARD, MiB, 2 * MiB, NULL, 0), 0);
	ck_assert_int_eq(run(b, BLOCK_FLUSH, 0, 0, NULL, 0), 0);
	ck_assert_int_le(blocks_of(path), before - 2 * MiB / 512);
	fd = open(path, O_RDONLY);
	ck_assert_int_eq(lseek(fd, 0, SEEK_HOLE), MiB);
	ck_assert_int_eq(lseek(fd, MiB, SEEK_DATA), 3 * MiB);
	close(fd);
	ck_assert_uint_eq(block_size(b), 4 * MiB);

	ck_assert_int_eq(run_buf(b, BLOCK_READ, 0, back, 4 * MiB), 4 * MiB);
	ck_assert_mem_eq(back, data, MiB);
	ck_assert(is_zero(back + MiB, 2 * MiB));
	ck_assert_mem_eq(back + 3 * MiB, data + 3 * MiB, MiB);
	block_close(b);
	evloop_destroy(loop);
	free(data);
	free(back);
}
END_TEST

/* WRITE_ZEROES on an image in (dir): zeros inside, data around it. */
static void check_write_zeroes(const char *dir)
{
	struct evloop *loop = new_loop();
	static uint8_t data[64 * 1024], back[64 * 1024];
	char path[PATH_MAX];
	struct block_dev *b;
	struct stat st;

	make_image(path, sizeof(path), dir, sizeof(data));
	ck_assert_int_eq(open_image(&b, loop, path, false, BLOCK_CACHE_WRITEBACK, 8), 0);
	fill(data, sizeof(data), 3);
	ck_assert_int_eq(run_buf(b, BLOCK_WRITE, 0, data, sizeof(data)), sizeof(data));
	for (int i = 0; i < 2; i++) { /* the second goes straight to the fallback */
		ck_assert_int_eq(run(b, BLOCK_WRITE_ZEROES, 4096 + i * 16384, 8192, NULL, 0), 0);
		ck_assert_int_eq(run_buf(b, BLOCK_READ, 0, back, sizeof(back)), sizeof(back));
		ck_assert_mem_eq(back, data, 4096);
		ck_assert(is_zero(back + 4096 + i * 16384, 8192));
		ck_assert_mem_eq(back + 12288 + i * 16384, data + 12288 + i * 16384, 4096);
	}
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_size, sizeof(data));
	block_close(b);
	evloop_destroy(loop);
	unlink(path);
}

START_TEST(test_write_zeroes)
{
	check_write_zeroes(tmpdir);
}
END_TEST

START_TEST(test_write_zeroes_fallback)
{
	/* tmpfs has PUNCH_HOLE but no ZERO_RANGE (EOPNOTSUPP). */
	if (access("/dev/shm", W_OK) != 0) {
		fprintf(stderr, "test_write_zeroes_fallback: no /dev/shm, skipped\n");
		return;
	}
	check_write_zeroes("/dev/shm");
}
END_TEST

START_TEST(test_readonly)
{
	static uint8_t buf[4096], back[4096];
	struct evloop *loop = new_loop();
	char path[PATH_MAX];
	struct block_dev *b;
	int fd;

	make_image(path, sizeof(path), tmpdir, MiB);
	fd = open(path, O_RDWR);
	fill(buf, sizeof(buf), 4);
	ck_assert_int_eq(pwrite(fd, buf, sizeof(buf), 0), sizeof(buf));
	ck_assert_int_eq(open_image(&b, loop, path, true, BLOCK_CACHE_WRITEBACK, 8), 0);
	ck_assert(block_readonly(b));
	ck_assert_int_eq(run_buf(b, BLOCK_WRITE, 0, back, sizeof(back)), -EROFS);
	ck_assert_int_eq(run(b, BLOCK_DISCARD, 0, 4096, NULL, 0), -EROFS);
	ck_assert_int_eq(run(b, BLOCK_WRITE_ZEROES, 0, 4096, NULL, 0), -EROFS);
	ck_assert_int_eq(run(b, BLOCK_FLUSH, 0, 0, NULL, 0), 0);
	ck_assert_int_eq(run_buf(b, BLOCK_READ, 0, back, sizeof(back)), sizeof(back));
	ck_assert_mem_eq(buf, back, sizeof(buf));
	block_close(b);
	close(fd);
	evloop_destroy(loop);
}
END_TEST

START_TEST(test_out_of_range)
{
	static uint8_t buf[2048];
	struct evloop *loop = new_loop();
	struct iovec huge[2] = { { buf, SIZE_MAX / 2 + 1 }, { buf, SIZE_MAX / 2 + 1 } };
	char path[PATH_MAX];
	struct block_dev *b;

	make_image(path, sizeof(path), tmpdir, MiB);
	ck_assert_int_eq(open_image(&b, loop, path, false, BLOCK_CACHE_WRITEBACK, 8), 0);
	ck_assert_int_eq(run_buf(b, BLOCK_READ, MiB - 512, buf, 1024), -EINVAL);
	ck_assert_int_eq(run_buf(b, BLOCK_WRITE, MiB, buf, 1), -EINVAL);
	ck_assert_int_eq(run_buf(b, BLOCK_READ, MiB - 1024, buf, 1024), 1024);
	ck_assert_int_eq(run(b, BLOCK_DISCARD, MiB - 512, 1024, NULL, 0), -EINVAL);
	ck_assert_int_eq(run(b, BLOCK_WRITE_ZEROES, MiB + 512, 0, NULL, 0), -EINVAL);
	/* offset + len wraps around 2^64 */
	ck_assert_int_eq(run_buf(b, BLOCK_READ, UINT64_MAX - 511, buf, 1024), -EINVAL);
	ck_assert_int_eq(run(b, BLOCK_DISCARD, UINT64_MAX - 511, 1024, NULL, 0), -EINVAL);
	ck_assert_int_eq(run(b, BLOCK_WRITE_ZEROES, 4096, UINT64_MAX - 100, NULL, 0), -EINVAL);
	/* iovec lengths that wrap when summed */
	ck_assert_int_eq(run(b, BLOCK_READ, 0, 0, huge, 2), -EINVAL);
	ck_assert_int_eq(run(b, BLOCK_READ, 0, 0, huge, IOV_MAX + 1), -EINVAL);
	ck_assert_int_eq(run(b, (enum block_op)99, 0, 0, NULL, 0), -EOPNOTSUPP);
	block_close(b);
	evloop_destroy(loop);
}
END_TEST

/* Refusals complete like every request: on the loop thread, after
 * block_submit returned, so the submitter may hold a lock done() takes; a
 * refusal submitted from done() is not completed inside that done(). */
static pthread_mutex_t refuse_lock = PTHREAD_MUTEX_INITIALIZER;

struct refusal {
	struct treq t;
	struct block_dev *b;
	struct iovec iov;
	unsigned left; /* refusals still to submit from done() */
	unsigned depth, max_depth;
	uint8_t buf[512];
};

static void refusal_done(struct block_req *req, int64_t res)
{
	struct refusal *r = (struct refusal *)req;

	pthread_mutex_lock(&refuse_lock); /* the submitter held it during block_submit */
	r->depth++;
	if (r->depth > r->max_depth)
		r->max_depth = r->depth;
	if (r->left) {
		r->left--;
		block_submit(r->b, req); /* refused again: completes later */
		r->depth--;
		pthread_mutex_unlock(&refuse_lock);
		return;
	}
	r->depth--;
	pthread_mutex_unlock(&refuse_lock);
	treq_done(req, res);
}

START_TEST(test_refusal_on_loop)
{
	struct evloop *loop = new_loop();
	char path[PATH_MAX], me[16];
	struct refusal r = { .left = 3 };

	make_image(path, sizeof(path), tmpdir, MiB);
	ck_assert_int_eq(open_image(&r.b, loop, path, false, BLOCK_CACHE_WRITEBACK, 8), 0);
	r.iov = (struct iovec){ r.buf, sizeof(r.buf) };
	treq_init(&r.t, BLOCK_WRITE, MiB, 0, &r.iov, 1); /* past the end: -EINVAL */
	r.t.req.done = refusal_done;
	pthread_mutex_lock(&refuse_lock);
	block_submit(r.b, &r.t.req);
	/* Inline, done() would have deadlocked on refuse_lock; on the loop it
	 * is waiting for it now. */
	usleep(50 * 1000);
	ck_assert(!__atomic_load_n(&r.t.completed, __ATOMIC_SEQ_CST));
	pthread_mutex_unlock(&refuse_lock);
	treq_wait(&r.t);
	ck_assert_int_eq(r.t.res, -EINVAL);
	ck_assert_uint_eq(r.left, 0);
	ck_assert_uint_eq(r.max_depth, 1); /* never nested in another done() */
	ck_assert_str_eq(r.t.thread, "blk-test");
	pthread_getname_np(pthread_self(), me, sizeof(me));
	ck_assert_str_ne(r.t.thread, me);
	/* block_close waits for refusals like any request. */
	treq_init(&r.t, BLOCK_DISCARD, MiB, 512, NULL, 0);
	r.left = 0;
	r.t.req.done = refusal_done;
	block_submit(r.b, &r.t.req);
	block_close(r.b);
	ck_assert(r.t.completed);
	ck_assert_int_eq(r.t.res, -EINVAL);
	evloop_destroy(loop);
}
END_TEST

/* Open (path) with stderr captured; returns block_open's result, the
 * message in (msg). */
static int open_captured(struct block_dev **b, struct evloop *loop, const char *path, bool readonly,
			 char *msg, size_t cap)
{
	char cpath[PATH_MAX];
	int cfd, saved, ret;
	ssize_t n;

	snprintf(cpath, sizeof(cpath), "%s/stderr.XXXXXX", tmpdir);
	cfd = mkstemp(cpath);
	ck_assert_int_ge(cfd, 0);
	fflush(stderr);
	saved = dup(2);
	dup2(cfd, 2);
	ret = open_image(b, loop, path, readonly, BLOCK_CACHE_WRITEBACK, 8);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(cfd, msg, cap - 1, 0);
	msg[n > 0 ? n : 0] = 0;
	close(cfd);
	unlink(cpath);
	return ret;
}

START_TEST(test_lock_exclusive)
{
	struct evloop *loop = new_loop();
	char path[PATH_MAX], msg[512], want[PATH_MAX + 64];
	struct block_dev *a, *b;

	make_image(path, sizeof(path), tmpdir, MiB);
	snprintf(want, sizeof(want), "kvisor: disk %s: in use by another process (locked)\n", path);
	ck_assert_int_eq(open_image(&a, loop, path, false, BLOCK_CACHE_WRITEBACK, 8), 0);
	/* Same process, second open file description: flock conflicts. */
	ck_assert_int_eq(open_captured(&b, loop, path, false, msg, sizeof(msg)), -EBUSY);
	ck_assert_str_eq(msg, want);
	ck_assert_int_eq(open_captured(&b, loop, path, true, msg, sizeof(msg)), -EBUSY);
	ck_assert_str_eq(msg, want);
	block_close(a);
	ck_assert_int_eq(open_image(&b, loop, path, false, BLOCK_CACHE_WRITEBACK, 8), 0);
	block_close(b);
	evloop_destroy(loop);
}
END_TEST

START_TEST(test_lock_shared)
{
	struct evloop *loop = new_loop();
	char path[PATH_MAX], msg[512], want[PATH_MAX + 64];
	struct block_dev *r1, *r2, *w;

	make_image(path, sizeof(path), tmpdir, MiB);
	snprintf(want, sizeof(want), "kvisor: disk %s: in use by another process (locked)\n", path);
	ck_assert_int_eq(open_image(&r1, loop, path, true, BLOCK_CACHE_WRITEBACK, 8), 0);
	ck_assert_int_eq(open_image(&r2, loop, path, true, BLOCK_CACHE_WRITEBACK, 8), 0);
	ck_assert_int_eq(open_captured(&w, loop, path, false, msg, sizeof(msg)), -EBUSY);
	ck_assert_str_eq(msg, want);
	block_close(r1);
	ck_assert_int_eq(open_captured(&w, loop, path, false, msg, sizeof(msg)), -EBUSY);
	block_close(r2);
	ck_assert_int_eq(open_image(&w, loop, path, false, BLOCK_CACHE_WRITEBACK, 8), 0);
	block_close(w);
	evloop_destroy(loop);
}
END_TEST

/* 1000 4 KiB writes with queue depth 32: most wait on the overflow list. */
START_TEST(test_many_overflow)
{
	enum { N = 1000, BS = 4096 };
	struct evloop *loop = new_loop();
	uint8_t *data = malloc(N * BS), *disk = malloc(N * BS);
	struct treq *t = calloc(N, sizeof(*t));
	struct iovec *iov = calloc(N, sizeof(*iov));
	char path[PATH_MAX];
	struct block_dev *b;
	int fd;

	make_image(path, sizeof(path), tmpdir, N * BS);
	ck_assert_int_eq(open_image(&b, loop, path, false, BLOCK_CACHE_WRITEBACK, 32), 0);
	fill(data, N * BS, 5);
	for (int i = 0; i < N; i++) {
		/* In a scattered order, so ordering mistakes show. */
		unsigned blk = (unsigned)(i * 389) % N;

		iov[i] = (struct iovec){ data + blk * BS, BS };
		treq_init(&t[i], BLOCK_WRITE, (uint64_t)blk * BS, 0, &iov[i], 1);
		block_submit(b, &t[i].req);
	}
	for (int i = 0; i < N; i++) {
		treq_wait(&t[i]);
		ck_assert_int_eq(t[i].res, BS);
	}
	block_close(b);
	fd = open(path, O_RDONLY);
	ck_assert_int_eq(pread(fd, disk, N * BS, 0), N * BS);
	ck_assert_mem_eq(disk, data, N * BS);
	close(fd);
	evloop_destroy(loop);
	free(data);
	free(disk);
	free(t);
	free(iov);
}
END_TEST

/* Several submitting threads (as vCPUs would) against a small queue. */
struct submitter {
	struct block_dev *b;
	uint8_t *data;
	unsigned first, count;
};

static void *submit_thread(void *arg)
{
	struct submitter *s = arg;
	struct treq *t = calloc(s->count, sizeof(*t));
	struct iovec *iov = calloc(s->count, sizeof(*iov));

	for (unsigned i = 0; i < s->count; i++) {
		unsigned blk = s->first + i;

		iov[i] = (struct iovec){ s->data + blk * 4096, 4096 };
		treq_init(&t[i], BLOCK_WRITE, (uint64_t)blk * 4096, 0, &iov[i], 1);
		block_submit(s->b, &t[i].req);
	}
	for (unsigned i = 0; i < s->count; i++) {
		treq_wait(&t[i]);
		ck_assert_int_eq(t[i].res, 4096);
	}
	free(t);
	free(iov);
	return NULL;
}

START_TEST(test_threads_submit)
{
	enum { THREADS = 4, PER = 250 };
	struct evloop *loop = new_loop();
	uint8_t *data = malloc(THREADS * PER * 4096), *back = malloc(THREADS * PER * 4096);
	struct submitter s[THREADS];
	pthread_t th[THREADS];
	char path[PATH_MAX];
	struct block_dev *b;

	make_image(path, sizeof(path), tmpdir, THREADS * PER * 4096);
	ck_assert_int_eq(open_image(&b, loop, path, false, BLOCK_CACHE_WRITEBACK, 8), 0);
	fill(data, THREADS * PER * 4096, 6);
	for (int i = 0; i < THREADS; i++) {
		s[i] = (struct submitter){ b, data, i * PER, PER };
		ck_assert_int_eq(pthread_create(&th[i], NULL, submit_thread, &s[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	ck_assert_int_eq(run_buf(b, BLOCK_READ, 0, back, THREADS * PER * 4096),
			 THREADS * PER * 4096);
	ck_assert_mem_eq(back, data, THREADS * PER * 4096);
	block_close(b);
	evloop_destroy(loop);
	free(data);
	free(back);
}
END_TEST

/* done() submitting the next request, from the loop thread. */
struct chain {
	struct treq t;
	struct block_dev *b;
	struct iovec iov;
	unsigned left;
	uint8_t buf[512];
};

static void chain_done(struct block_req *req, int64_t res)
{
	struct chain *c = (struct chain *)req;

	ck_assert_int_eq(res, 512);
	if (--c->left == 0) {
		treq_done(req, res);
		return;
	}
	c->t.req.op = c->t.req.op == BLOCK_WRITE ? BLOCK_READ : BLOCK_WRITE;
	c->t.req.offset = (c->left % 64) * 512;
	block_submit(c->b, &c->t.req);
}

START_TEST(test_submit_from_done)
{
	struct evloop *loop = new_loop();
	char path[PATH_MAX];
	struct chain c;

	make_image(path, sizeof(path), tmpdir, 64 * 512);
	ck_assert_int_eq(open_image(&c.b, loop, path, false, BLOCK_CACHE_WRITEBACK, 1), 0);
	c.iov = (struct iovec){ c.buf, sizeof(c.buf) };
	c.left = 200;
	treq_init(&c.t, BLOCK_WRITE, 0, 0, &c.iov, 1);
	c.t.req.done = chain_done;
	block_submit(c.b, &c.t.req);
	treq_wait(&c.t);
	ck_assert_uint_eq(c.left, 0);
	block_close(c.b);
	evloop_destroy(loop);
}
END_TEST

START_TEST(test_direct)
{
	struct evloop *loop = new_loop();
	const char *dir = tmpdir;
	char path[PATH_MAX];
	struct block_dev *b;
	uint8_t *buf, *back;
	int fd;

	/* /tmp may be a tmpfs that refuses O_DIRECT; build/ is on the disk. */
	make_image(path, sizeof(path), dir, MiB);
	fd = open(path, O_RDWR | O_DIRECT);
	if (fd < 0 && errno == EINVAL) {
		unlink(path);
		dir = "build";
		make_image(path, sizeof(path), dir, MiB);
		fd = open(path, O_RDWR | O_DIRECT);
	}
	if (fd < 0) {
		fprintf(stderr, "test_direct: O_DIRECT unsupported here, skipped\n");
		unlink(path);
		return;
	}
	close(fd);
	ck_assert_int_eq(open_image(&b, loop, path, false, BLOCK_CACHE_NONE, 8), 0);
	ck_assert_uint_ge(block_logical_block_size(b), 512);
	ck_assert_int_eq(posix_memalign((void **)&buf, 4096, 64 * 1024), 0);
	ck_assert_int_eq(posix_memalign((void **)&back, 4096, 64 * 1024), 0);
	fill(buf, 64 * 1024, 7);
	ck_assert_int_eq(run_buf(b, BLOCK_WRITE, 128 * 1024, buf, 64 * 1024), 64 * 1024);
	ck_assert_int_eq(run(b, BLOCK_FLUSH, 0, 0, NULL, 0), 0);
	ck_assert_int_eq(run_buf(b, BLOCK_READ, 128 * 1024, back, 64 * 1024), 64 * 1024);
	ck_assert_mem_eq(buf, back, 64 * 1024);
	/* The cache really is bypassed: an unaligned offset into written data
	 * is refused by the kernel, where buffered I/O would take it (ext4
	 * serves such reads of a hole, hence written data). */
	ck_assert_int_eq(run_buf(b, BLOCK_READ, 128 * 1024 + 100, back, 4096), -EINVAL);
	ck_assert_int_eq(run(b, BLOCK_DISCARD, 0, 4096, NULL, 0), 0);
	block_close(b);
	evloop_destroy(loop);
	unlink(path);
	free(buf);
	free(back);
}
END_TEST

START_TEST(test_close_waits)
{
	enum { N = 200, BS = 64 * 1024 };
	struct evloop *loop = new_loop();
	uint8_t *data = malloc(N * BS), *disk = malloc(N * BS);
	struct treq *t = calloc(N, sizeof(*t));
	struct iovec *iov = calloc(N, sizeof(*iov));
	char path[PATH_MAX];
	struct block_dev *b;
	int fd;

	make_image(path, sizeof(path), tmpdir, N * BS);
	ck_assert_int_eq(open_image(&b, loop, path, false, BLOCK_CACHE_WRITEBACK, 4), 0);
	fill(data, N * BS, 8);
	tr_completed = 0;
	for (int i = 0; i < N; i++) {
		iov[i] = (struct iovec){ data + i * BS, BS };
		treq_init(&t[i], BLOCK_WRITE, (uint64_t)i * BS, 0, &iov[i], 1);
		block_submit(b, &t[i].req);
	}
	block_close(b);
	/* Every done() has returned by now; nothing is still queued. */
	pthread_mutex_lock(&tr_lock);
	ck_assert_uint_eq(tr_completed, N);
	pthread_mutex_unlock(&tr_lock);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(t[i].res, BS);
	fd = open(path, O_RDONLY);
	ck_assert_int_eq(pread(fd, disk, N * BS, 0), N * BS);
	ck_assert_mem_eq(disk, data, N * BS);
	close(fd);
	evloop_destroy(loop);
	free(data);
	free(disk);
	free(t);
	free(iov);
}
END_TEST

/* A child writes and flushes, then dies by SIGKILL; the data is there and
 * the lock went with the process. */
static void crash_after_flush(const char *path, enum block_cache cache, unsigned seed)
{
	struct evloop *loop = new_loop();
	struct block_dev *b;
	uint8_t *buf;

	if (open_image(&b, loop, path, false, cache, 8) || posix_memalign((void **)&buf, 4096, MiB))
		_exit(2);
	fill(buf, MiB, seed);
	if (run_buf(b, BLOCK_WRITE, MiB, buf, MiB) != MiB || run(b, BLOCK_FLUSH, 0, 0, NULL, 0))
		_exit(3);
	kill(getpid(), SIGKILL);
	_exit(4);
}

START_TEST(test_crash_durability)
{
	uint8_t *want = malloc(MiB), *disk = malloc(MiB);
	char path[PATH_MAX];

	make_image(path, sizeof(path), tmpdir, 4 * MiB);
	for (int cache = BLOCK_CACHE_WRITEBACK; cache <= BLOCK_CACHE_NONE; cache++) {
		struct block_dev *b;
		struct evloop *loop;
		int status, fd;
		pid_t pid;

		/* Forked while this process has no other thread. */
		pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0)
			crash_after_flush(path, cache, 9 + cache);
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
			      "child status %#x", status);
		fill(want, MiB, 9 + cache);
		fd = open(path, O_RDONLY);
		ck_assert_int_eq(pread(fd, disk, MiB, MiB), MiB);
		ck_assert_mem_eq(disk, want, MiB);
		close(fd);
		loop = new_loop();
		ck_assert_int_eq(open_image(&b, loop, path, false, BLOCK_CACHE_WRITEBACK, 8), 0);
		block_close(b);
		evloop_destroy(loop);
	}
	free(want);
	free(disk);
}
END_TEST

/* The image shrinks behind the backend's back: a read across the new end
 * is short; the retry of the remainder reads nothing; the count stands. */
START_TEST(test_short_read)
{
	static uint8_t data[8192], back[8192];
	struct evloop *loop = new_loop();
	struct iovec rv[3] = { { back, 500 }, { back + 500, 3000 }, { back + 3500, 4692 } };
	char path[PATH_MAX];
	struct block_dev *b;
	int fd;

	make_image(path, sizeof(path), tmpdir, MiB);
	fd = open(path, O_RDWR);
	fill(data, sizeof(data), 10);
	ck_assert_int_eq(pwrite(fd, data, sizeof(data), 512 * 1024), sizeof(data));
	ck_assert_int_eq(open_image(&b, loop, path, false, BLOCK_CACHE_WRITEBACK, 8), 0);
	ck_assert_int_eq(ftruncate(fd, 512 * 1024 + 1000), 0);
	ck_assert_int_eq(run(b, BLOCK_READ, 512 * 1024, 0, rv, 3), 1000);
	ck_assert_mem_eq(back, data, 1000);
	block_close(b);
	close(fd);
	evloop_destroy(loop);
}
END_TEST

/* A loop device with 4 KiB sectors: size by BLKGETSIZE64, logical block size
 * by BLKSSZGET under O_DIRECT. Skipped without loop-device access. */
static int loop_attach(const char *backing, char *dev, size_t cap)
{
	struct loop_config cfg = { .block_size = 4096, .info.lo_flags = LO_FLAGS_AUTOCLEAR };
	int ctl, bfd, dfd = -1;

	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	bfd = open(backing, O_RDWR | O_CLOEXEC);
	for (int tries = 0; ctl >= 0 && bfd >= 0 && dfd < 0 && tries < 5; tries++) {
		int n = ioctl(ctl, LOOP_CTL_GET_FREE);

		if (n < 0)
			break;
		snprintf(dev, cap, "/dev/loop%d", n);
		dfd = open(dev, O_RDWR | O_CLOEXEC);
		cfg.fd = (uint32_t)bfd;
		if (dfd >= 0 && ioctl(dfd, LOOP_CONFIGURE, &cfg) < 0) {
			close(dfd); /* raced with another user of loop devices */
			dfd = -1;
		}
	}
	if (ctl >= 0)
		close(ctl);
	if (bfd >= 0)
		close(bfd);
	return dfd; /* holds the device; closing the last fd detaches it */
}

START_TEST(test_block_device)
{
	static uint8_t buf[8192] __attribute__((aligned(4096))),
		back[8192] __attribute__((aligned(4096)));
	struct evloop *loop;
	char path[PATH_MAX], dev[64];
	struct block_dev *b, *b2;
	int dfd;

	make_image(path, sizeof(path), tmpdir, 8 * MiB);
	dfd = loop_attach(path, dev, sizeof(dev));
	if (dfd < 0) {
		fprintf(stderr, "test_block_device: no loop device, skipped\n");
		return;
	}
	loop = new_loop();
	ck_assert_int_eq(open_image(&b, loop, dev, false, BLOCK_CACHE_NONE, 8), 0);
	ck_assert_uint_eq(block_size(b), 8 * MiB);
	ck_assert_uint_eq(block_logical_block_size(b), 4096);
	fill(buf, sizeof(buf), 11);
	ck_assert_int_eq(run_buf(b, BLOCK_WRITE, MiB, buf, sizeof(buf)), sizeof(buf));
	ck_assert_int_eq(run(b, BLOCK_FLUSH, 0, 0, NULL, 0), 0);
	ck_assert_int_eq(run_buf(b, BLOCK_READ, MiB, back, sizeof(back)), sizeof(back));
	ck_assert_mem_eq(buf, back, sizeof(buf));
	ck_assert_int_eq(run(b, BLOCK_WRITE_ZEROES, MiB, 4096, NULL, 0), 0);
	ck_assert_int_eq(run_buf(b, BLOCK_READ, MiB, back, sizeof(back)), sizeof(back));
	ck_assert(is_zero(back, 4096));
	ck_assert_int_eq(open_image(&b2, loop, dev, true, BLOCK_CACHE_WRITEBACK, 8), -EBUSY);
	block_close(b);
	ck_assert_int_eq(open_image(&b, loop, dev, true, BLOCK_CACHE_WRITEBACK, 8), 0);
	ck_assert_uint_eq(block_logical_block_size(b), 512);
	block_close(b);
	close(dfd);
	evloop_destroy(loop);
}
END_TEST

/* Plugged: requests wait in the ring until the last unplug submits them
 * all at once; nested plugs count. */
START_TEST(test_plug_batches)
{
	struct evloop *loop = new_loop();
	char path[PATH_MAX];
	struct block_dev *b;
	struct treq t[8];
	struct iovec iov[8];
	uint8_t *buf = malloc(8 * 4096), *want = malloc(8 * 4096);
	unsigned before;

	make_image(path, sizeof(path), tmpdir, 1 * MiB);
	ck_assert_int_eq(open_image(&b, loop, path, false, BLOCK_CACHE_WRITEBACK, 16), 0);
	fill(want, 8 * 4096, 21);
	ck_assert_int_eq(run_buf(b, BLOCK_WRITE, 0, want, 8 * 4096), 8 * 4096);
	memset(buf, 0, 8 * 4096);
	pthread_mutex_lock(&tr_lock);
	before = tr_completed;
	pthread_mutex_unlock(&tr_lock);
	block_plug(b);
	block_plug(b);
	for (unsigned i = 0; i < 8; i++) {
		iov[i] = (struct iovec){ buf + i * 4096, 4096 };
		treq_init(&t[i], BLOCK_READ, i * 4096, 0, &iov[i], 1);
		block_submit(b, &t[i].req);
	}
	block_unplug(b);
	usleep(200 * 1000);
	pthread_mutex_lock(&tr_lock);
	ck_assert_uint_eq(tr_completed, before); /* still plugged once */
	pthread_mutex_unlock(&tr_lock);
	block_unplug(b);
	for (unsigned i = 0; i < 8; i++) {
		treq_wait(&t[i]);
		ck_assert_int_eq(t[i].res, 4096);
	}
	ck_assert_mem_eq(buf, want, 8 * 4096);
	/* Unbalanced unplugs are ignored; submissions go straight in again. */
	block_unplug(b);
	ck_assert_int_eq(run_buf(b, BLOCK_READ, 0, buf, 4096), 4096);
	block_close(b);
	evloop_destroy(loop);
	free(buf);
	free(want);
}
END_TEST

/* A write-through (dsync) write completes with its full length and lands,
 * in both cache modes. */
START_TEST(test_dsync_write)
{
	char path[PATH_MAX];
	uint8_t *buf, *back;

	ck_assert_int_eq(posix_memalign((void **)&buf, 4096, 64 * 1024), 0);
	ck_assert_int_eq(posix_memalign((void **)&back, 4096, 64 * 1024), 0);
	make_image(path, sizeof(path), tmpdir, 1 * MiB);
	for (int cache = BLOCK_CACHE_WRITEBACK; cache <= BLOCK_CACHE_NONE; cache++) {
		struct evloop *loop = new_loop();
		struct iovec iov = { buf, 64 * 1024 };
		struct block_dev *b;
		struct treq t;
		int fd;

		if (open_image(&b, loop, path, false, cache, 8)) {
			evloop_destroy(loop);
			continue; /* no O_DIRECT on this file system: test_direct says so */
		}
		fill(buf, 64 * 1024, 30 + cache);
		treq_init(&t, BLOCK_WRITE, 128 * 1024, 0, &iov, 1);
		t.req.dsync = true;
		block_submit(b, &t.req);
		treq_wait(&t);
		ck_assert_int_eq(t.res, 64 * 1024);
		block_close(b);
		evloop_destroy(loop);
		fd = open(path, O_RDONLY);
		ck_assert_int_eq(pread(fd, back, 64 * 1024, 128 * 1024), 64 * 1024);
		ck_assert_mem_eq(back, buf, 64 * 1024);
		close(fd);
	}
	free(buf);
	free(back);
}
END_TEST

static Suite *unit_suite(void)
{
	Suite *s = suite_create("block");
	TCase *tc = tcase_create("raw");

	tcase_add_unchecked_fixture(tc, tmpdir_setup, unit_tmpdir_remove);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_open_size);
	tcase_add_test(tc, test_plug_batches);
	tcase_add_test(tc, test_dsync_write);
	tcase_add_test(tc, test_rw_roundtrip);
	tcase_add_test(tc, test_discard_punches_hole);
	tcase_add_test(tc, test_write_zeroes);
	tcase_add_test(tc, test_write_zeroes_fallback);
	tcase_add_test(tc, test_readonly);
	tcase_add_test(tc, test_out_of_range);
	tcase_add_test(tc, test_refusal_on_loop);
	tcase_add_test(tc, test_lock_exclusive);
	tcase_add_test(tc, test_lock_shared);
	tcase_add_test(tc, test_many_overflow);
	tcase_add_test(tc, test_threads_submit);
	tcase_add_test(tc, test_submit_from_done);
	tcase_add_test(tc, test_direct);
	tcase_add_test(tc, test_close_waits);
	tcase_add_test(tc, test_crash_durability);
	tcase_add_test(tc, test_short_read);
	tcase_add_test(tc, test_block_device);
	suite_add_tcase(s, tc);
	return s;
}

#include "unit.h"
