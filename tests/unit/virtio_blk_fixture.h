/* The fixture of the virtio-blk unit tests (check_virtio_blk.c,
 * check_virtio_blk_pause.c): three disks on image files in a scratch
 * directory, and the requests a driver makes to them. Include once. */
#ifndef KVISOR_TESTS_VIRTIO_BLK_FIXTURE_H
#define KVISOR_TESTS_VIRTIO_BLK_FIXTURE_H

#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvisor/device.h"
#include "kvisor/log.h"
#include "virtio_driver.h"
#include "unit_tmpdir.h"

#define MiB       (1024 * 1024)
#define SECTOR    512
#define IMG0_SIZE MiB
#define IMG1_SIZE (64 * 1024)
#define QSIZE     256
#define SERIAL0   "kvisor-disk-0"
#define SERIAL1   "ABCDEFGHIJ0123456789" /* exactly 20 bytes: no NUL */

#define F_V1       (1ULL << VIRTIO_F_VERSION_1)
#define F_IND      (1ULL << VIRTIO_F_INDIRECT_DESC)
#define F_EVT      (1ULL << VIRTIO_F_EVENT_IDX)
#define F_SEG_MAX  (1ULL << 2)
#define F_RO       (1ULL << 5)
#define F_BLK_SIZE (1ULL << 6)
#define F_FLUSH    (1ULL << 9)
#define F_MQ       (1ULL << 12)
#define F_DISCARD  (1ULL << 13)
#define F_WZ       (1ULL << 14)
#define F_DRIVER   (F_V1 | F_IND | F_EVT | F_SEG_MAX | F_BLK_SIZE | F_FLUSH | F_MQ)

#define T_IN      0
#define T_OUT     1
#define T_FLUSH   4
#define T_GET_ID  8
#define T_DISCARD 11
#define T_WZ      13
#define S_OK      0
#define S_IOERR   1
#define S_UNSUPP  2
#define S_NONE    0xff /* what the test puts in a status byte beforehand */

static char img[3][PATH_MAX];
static struct td_dev d, ro, dio;

static void tmpdir_setup(void)
{
	unit_tmpdir_make("vblk");
}

static inline uint8_t pattern(unsigned seed, uint64_t off)
{
	return (uint8_t)(seed * 131 + off * 7 + (off >> 9));
}

static inline void make_image(char *path, unsigned seed, size_t size)
{
	uint8_t *buf = malloc(size);
	int fd;

	snprintf(path, PATH_MAX, "%s/img.XXXXXX", tmpdir);
	ck_assert_ptr_nonnull(buf);
	fd = mkstemp(path); /* path is a template: XXXXXX becomes a unique name */
	ck_assert_int_ge(fd, 0);
	for (size_t i = 0; i < size; i++)
		buf[i] = pattern(seed, i);
	ck_assert_int_eq(pwrite(fd, buf, size, 0), (ssize_t)size);
	close(fd);
	free(buf);
}

static inline void file_read(const char *path, uint64_t off, void *buf, size_t len)
{
	int fd = open(path, O_RDONLY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

/* A virtio-blk instance of (cfg), as --disk would add it. */
static inline void add_disk(struct vm_config *cfg, const char *path, const char *serial,
			    bool readonly, bool direct)
{
	char opts[PATH_MAX + 128], err[CONFIG_ERR_MAX];

	snprintf(opts, sizeof(opts), "path=%s,readonly=%s,cache=%s%s%s", path,
		 readonly ? "on" : "off", direct ? "none" : "writeback", *serial ? ",serial=" : "",
		 serial);
	ck_assert_msg(config_add_device(cfg, "virtio-blk", NULL, opts, err, sizeof(err)) == 0, "%s",
		      err);
}

/* Three disks on a 2-vCPU VM, created through the registry as instances
 * disk0-2: vda read-write, vdb read-only, vdc O_DIRECT. */
static void setup(void)
{
	log_threshold = LOG_ERR; /* guest errors are logged as warnings */
	make_image(img[0], 1, IMG0_SIZE);
	make_image(img[1], 2, IMG1_SIZE);
	make_image(img[2], 3, IMG0_SIZE);
	memset(&td_cfg, 0, sizeof(td_cfg));
	td_cfg.cpus = 2;
	add_disk(&td_cfg, img[0], SERIAL0, false, false);
	add_disk(&td_cfg, img[1], SERIAL1, true, false);
	add_disk(&td_cfg, img[2], "", false, true);
	td_vm_setup();
	ck_assert_int_eq(devices_create(&td_vm), 0);
	td_probe(&d, 0x1042, 0);
	td_probe(&ro, 0x1042, 1);
	td_probe(&dio, 0x1042, 2);
	td_init(&d, F_DRIVER | F_DISCARD | F_WZ, 2, QSIZE);
}

static void teardown(void)
{
	devices_destroy(&td_vm);
	td_vm_teardown();
	config_free(&td_cfg);
}

/* --- requests ------------------------------------------------------------ */

static inline uint64_t make_hdr(uint32_t type, uint64_t sector)
{
	uint64_t gpa = td_alloc(16);

	memcpy(td_hva(gpa), &type, 4);
	memcpy(td_hva(gpa + 8), &sector, 8);
	return gpa;
}

static inline uint64_t make_status(void)
{
	uint64_t gpa = td_alloc(1);

	*td_hva(gpa) = S_NONE;
	return gpa;
}

/* Wait for the next used element of (q) and check it is (head); returns the
 * used length. */
static inline uint32_t complete(struct td_dev *dev, unsigned q, uint16_t head)
{
	uint32_t id, len;

	ck_assert_msg(td_wait_used(dev, q, 1), "no completion on queue %u", q);
	td_next_used(dev, q, &id, &len);
	ck_assert_uint_eq(id, head);
	return len;
}

/* One request: header, optional data (device-writable for IN and GET_ID),
 * status. Returns the status byte; (*used) gets the used length. */
static inline uint8_t request(struct td_dev *dev, unsigned q, uint32_t type, uint64_t sector,
			      uint64_t data, uint32_t len, uint32_t *used)
{
	struct td_buf b[3];
	uint64_t status = make_status();
	unsigned n = 0;
	uint16_t head;
	uint32_t u;

	b[n++] = (struct td_buf){ make_hdr(type, sector), 16, false };
	if (len)
		b[n++] = (struct td_buf){ data, len, type == T_IN || type == T_GET_ID };
	b[n++] = (struct td_buf){ status, 1, true };
	head = td_add(dev, q, b, n);
	td_kick(dev, q);
	u = complete(dev, q, head);
	if (used)
		*used = u;
	return *td_hva(status);
}

static inline void check_file(const char *path, uint64_t off, const uint8_t *want, size_t len)
{
	uint8_t *buf = malloc(len);

	file_read(path, off, buf, len);
	ck_assert_mem_eq(buf, want, len);
	free(buf);
}

static inline void check_pattern(const uint8_t *p, unsigned seed, uint64_t off, size_t len)
{
	for (size_t i = 0; i < len; i++)
		ck_assert_msg(p[i] == pattern(seed, off + i), "byte %zu of 0x%llx", i,
			      (unsigned long long)off);
}

#endif
