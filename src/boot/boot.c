/* boot_load: read the kernel, hand it to the bzImage or ELF loader, place
 * the initrd and the command line, write boot_params or hvm_start_info. */
#include <asm/bootparam.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "boot_priv.h"
#include "kvisor/config.h"
#include "kvisor/layout.h"
#include "kvisor/log.h"
#include "kvisor/mem.h"
#include "kvisor/vm.h"

#define BOOT_FILE_MAX   (2ULL << 30)
#define BOOT_READ_CHUNK (1u << 20)
#define BOOT_4G         0x100000000ULL
#define BOOT_PAGE_MASK  0xfffULL

static int boot_read_fd(int fd, size_t hint, uint8_t **buf, size_t *len)
{
	size_t cap = hint + 1, n = 0;
	uint8_t *p = malloc(cap), *q;

	if (!p)
		return -ENOMEM;
	for (;;) {
		ssize_t r;

		if (n == cap) {
			if (cap > BOOT_FILE_MAX) {
				free(p);
				return -EFBIG;
			}
			cap = cap * 2 > BOOT_FILE_MAX + 1 ? BOOT_FILE_MAX + 1 : cap * 2;
			q = realloc(p, cap);
			if (!q) {
				free(p);
				return -ENOMEM;
			}
			p = q;
		}
		r = read(fd, p + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			free(p);
			return -errno;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*buf = p;
	*len = n;
	return 0;
}

int boot_read_file(const char *path, uint8_t **buf, size_t *len)
{
	struct stat st;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		ret = -errno;
	} else if (S_ISDIR(st.st_mode)) {
		ret = -EISDIR;
	} else if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > BOOT_FILE_MAX) {
		ret = -EFBIG;
	} else {
		/* The size is a hint only: pipes have none, files can change. */
		ret = boot_read_fd(fd, S_ISREG(st.st_mode) ? (size_t)st.st_size : BOOT_READ_CHUNK,
				   buf, len);
	}
	close(fd);
	return ret;
}

static int boot_kernel_load(const struct guest_mem *mem, struct boot_kernel *k, bool unpack)
{
	static const uint8_t elf_magic[4] = { 0x7f, 'E', 'L', 'F' };
	uint8_t b[0x206] = { 0 };
	uint64_t len = k->file->size;
	int ret;

	ret = boot_file_read(k->file, 0, b, len < sizeof(b) ? (size_t)len : sizeof(b));
	if (ret) {
		log_err("kernel %s: %s", k->path, strerror(-ret));
		return ret;
	}
	if (len >= 4 && !memcmp(b, elf_magic, 4))
		return boot_elf_load(mem, k);
	if ((len >= 0x206 && !memcmp(b + 0x202, "HdrS", 4)) ||
	    (len >= 0x200 && b[0x1fe] == 0x55 && b[0x1ff] == 0xaa))
		return boot_bzimage_load(mem, k, unpack);
	log_err("kernel %s: not a bzImage or ELF kernel", k->path);
	return -ENOEXEC;
}

static double boot_ms(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1e3 + (t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static int boot_initrd_read(const struct guest_mem *mem, const char *path, uint8_t **buf,
			    size_t *len)
{
	enum boot_comp comp;
	struct timespec t0;
	size_t in_len;
	int ret;

	ret = boot_read_file(path, buf, len);
	if (ret) {
		log_err("initrd %s: %s", path, strerror(-ret));
		return ret;
	}
	comp = boot_comp_detect(*buf, *len);
	in_len = *len;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ret = boot_decompress(buf, len, mem->ram_size / 2);
	if (ret == -EINVAL)
		log_err("initrd %s: corrupt %s data", path, boot_comp_name(comp));
	else if (ret == -EFBIG)
		log_err("initrd %s: more than %llu MiB (half of RAM) once decompressed", path,
			BOOT_MIB(mem->ram_size / 2));
	else if (ret)
		log_err("initrd %s: %s", path, strerror(-ret));
	if (ret) {
		free(*buf);
		return ret == -EFBIG ? -E2BIG : ret;
	}
	if (comp != BOOT_COMP_NONE)
		log_debug("initrd %s: %s, %zu -> %zu bytes in %.1f ms", path, boot_comp_name(comp),
			  in_len, *len, boot_ms(&t0));
	return 0;
}

/* As high as possible (the kernel's allocations start low), page-aligned,
 * below 4 GiB and the kernel's limit, above the kernel. */
static int boot_initrd_load(const struct guest_mem *mem, const char *path,
			    const struct boot_kernel *k, uint64_t *gpa, uint64_t *size)
{
	uint64_t top = mem_low_size(mem), addr;
	uint8_t *buf;
	size_t len;
	int ret;

	*gpa = *size = 0;
	if (!path)
		return 0;
	ret = boot_initrd_read(mem, path, &buf, &len);
	if (ret)
		return ret;
	if (k->initrd_top < top)
		top = k->initrd_top;
	if (top > BOOT_4G)
		top = BOOT_4G;
	addr = len <= top ? (top - len) & ~BOOT_PAGE_MASK : 0;
	if (len > top || addr < k->end) {
		log_err("initrd %s: %llu MiB does not fit in %llu MiB of RAM", path,
			BOOT_MIB(len + (1 << 20) - 1), BOOT_MIB(mem->ram_size));
		ret = -E2BIG;
	} else if (len && mem_write(mem, addr, buf, len)) {
		log_err("initrd %s: cannot write at %#llx", path, (unsigned long long)addr);
		ret = -EFAULT;
	} else {
		*gpa = len ? addr : 0;
		*size = len;
		log_debug("initrd %s: %zu bytes at %#llx", path, len, (unsigned long long)addr);
	}
	free(buf);
	return ret;
}

static int boot_cmdline_write(const struct guest_mem *mem, const struct boot_kernel *k,
			      const char *cmdline)
{
	size_t n = strlen(cmdline);

	if (n > k->cmdline_max || n >= LAYOUT_CMDLINE_MAX) {
		log_err("kernel %s: command line of %zu bytes is too long (at most %llu)", k->path, n,
			(unsigned long long)(k->cmdline_max < LAYOUT_CMDLINE_MAX - 1 ?
					     k->cmdline_max : LAYOUT_CMDLINE_MAX - 1));
		return -E2BIG;
	}
	if (mem_write(mem, LAYOUT_CMDLINE_GPA, cmdline, n + 1)) {
		log_err("kernel %s: no RAM for the command line", k->path);
		return -EFAULT;
	}
	return 0;
}

/* Everything after the kernel: initrd, command line, e820, boot params. */
static int boot_finish(struct vm *vm, struct boot_kernel *k, const char *cmdline,
		       uint64_t rsdp_gpa)
{
	struct boot_e820 e820[BOOT_E820_MAX];
	uint64_t initrd_gpa, initrd_size;
	int nr, ret;

	ret = boot_initrd_load(&vm->mem, vm->cfg->initrd, k, &initrd_gpa, &initrd_size);
	if (ret)
		return ret;
	ret = boot_cmdline_write(&vm->mem, k, cmdline ? cmdline : "");
	if (ret)
		return ret;
	nr = boot_e820_build(&vm->mem, e820, BOOT_E820_MAX);
	if (nr < 0) {
		ret = nr;
	} else if (k->pvh) {
		ret = boot_pvh_write(&vm->mem, e820, (unsigned)nr, initrd_gpa, initrd_size,
				     rsdp_gpa);
	} else {
		boot_zp_finish(k->zp, e820, (unsigned)nr, initrd_gpa, initrd_size, rsdp_gpa);
		ret = mem_write(&vm->mem, LAYOUT_ZERO_PAGE_GPA, k->zp, sizeof(*k->zp));
	}
	if (ret)
		log_err("kernel %s: cannot write the boot parameters: %s", k->path,
			strerror(-ret));
	return ret;
}

int boot_load(struct vm *vm, const char *cmdline, uint64_t rsdp_gpa, struct boot_info *out)
{
	struct boot_kernel k = {
		.path = vm->cfg->kernel,
		.initrd_top = BOOT_4G,
		.cmdline_max = LAYOUT_CMDLINE_MAX - 1,
	};
	struct boot_file file;
	int ret;

	if (!k.path) {
		log_err("no kernel given");
		return -EINVAL;
	}
	ret = boot_file_open(&file, k.path);
	if (ret) {
		log_err("kernel %s: %s", k.path, strerror(-ret));
		return ret;
	}
	k.file = &file;
	k.zp = calloc(1, sizeof(*k.zp));
	if (!k.zp) {
		boot_file_close(&file);
		return -ENOMEM;
	}
	ret = boot_kernel_load(&vm->mem, &k, vm->cfg->kernel_unpack);
	boot_file_close(&file);
	k.file = NULL;
	if (!ret)
		ret = boot_finish(vm, &k, cmdline, rsdp_gpa);
	if (!ret) {
		out->entry = k.pvh ? BOOT_ENTRY_PVH32 : BOOT_ENTRY_LINUX64;
		out->rip = k.entry;
		out->arg = k.pvh ? LAYOUT_PVH_INFO_GPA : LAYOUT_ZERO_PAGE_GPA;
	}
	free(k.zp);
	return ret;
}
