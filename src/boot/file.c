/* Kernel and initrd files, read where their bytes are needed: regular files
 * with pread straight into guest RAM or small buffers, anything else (a pipe)
 * read once into an anonymous mapping that is unmapped at close. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "boot_priv.h"

#define BOOT_FILE_MAX   (2ULL << 30)
#define BOOT_PIPE_CHUNK (1u << 20)

/* A pipe has no size: grow an anonymous mapping (mremap, never the heap). */
static int boot_file_slurp(struct boot_file *f)
{
	size_t cap = BOOT_PIPE_CHUNK, n = 0;
	uint8_t *p = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return -ENOMEM;
	for (;;) {
		ssize_t r;

		if (n == cap) {
			uint8_t *q;

			if (cap > BOOT_FILE_MAX) {
				munmap(p, cap);
				return -EFBIG;
			}
			q = mremap(p, cap, cap * 2, MREMAP_MAYMOVE);
			if (q == MAP_FAILED) {
				munmap(p, cap);
				return -ENOMEM;
			}
			p = q;
			cap *= 2;
		}
		r = read(f->fd, p + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int err = -errno;

			munmap(p, cap);
			return err;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	f->map = p;
	f->map_cap = cap;
	f->size = n;
	return 0;
}

int boot_file_open(struct boot_file *f, const char *path)
{
	struct stat st;
	int ret = 0;

	memset(f, 0, sizeof(*f));
	f->path = path;
	f->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0)
		return -errno;
	if (fstat(f->fd, &st))
		ret = -errno;
	else if (S_ISDIR(st.st_mode))
		ret = -EISDIR;
	else if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > BOOT_FILE_MAX)
		ret = -EFBIG;
	else if (S_ISREG(st.st_mode))
		f->size = (uint64_t)st.st_size;
	else
		ret = boot_file_slurp(f);
	if (ret)
		boot_file_close(f);
	return ret;
}

void boot_file_mem(struct boot_file *f, const char *path, const uint8_t *buf, size_t len)
{
	memset(f, 0, sizeof(*f));
	f->path = path;
	f->fd = -1;
	f->map = (uint8_t *)buf;
	f->size = len;
}

void boot_file_close(struct boot_file *f)
{
	if (f->map && f->map_cap)
		munmap(f->map, f->map_cap);
	if (f->fd >= 0)
		close(f->fd);
	f->map = NULL;
	f->map_cap = 0;
	f->fd = -1;
}

int boot_file_read(const struct boot_file *f, uint64_t off, void *dst, size_t len)
{
	uint8_t *d = dst;

	if (off > f->size || len > f->size - off)
		return -ENODATA;
	if (f->map) {
		memcpy(dst, f->map + off, len);
		return 0;
	}
	while (len) {
		ssize_t r = pread(f->fd, d, len, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0) /* shorter than fstat said: changed under us */
			return -ENODATA;
		d += r;
		off += (uint64_t)r;
		len -= (size_t)r;
	}
	return 0;
}
