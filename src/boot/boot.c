/* boot_load: read the kernel, hand it to the bzImage or ELF loader, place
 * the initrd and the command line, write boot_params or hvm_start_info. */
#include <asm/bootparam.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "boot_priv.h"
#include "kvisor/config.h"
#include "kvisor/layout.h"
#include "kvisor/log.h"
#include "kvisor/mem.h"
#include "kvisor/vm.h"

#define BOOT_4G         0x100000000ULL
#define BOOT_PAGE_MASK  0xfffULL
#define BOOT_MOVE_CHUNK (256ULL << 10)

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

/* Where an initrd of (len) bytes goes: as high as possible (the kernel's
 * allocations start low), page-aligned, below 4 GiB and the kernel's limit,
 * above the kernel. 0 or -E2BIG, logged. */
static uint64_t boot_initrd_top(const struct guest_mem *mem, const struct boot_kernel *k)
{
	uint64_t top = mem_low_size(mem);

	if (k->initrd_top < top)
		top = k->initrd_top;
	return top < BOOT_4G ? top : BOOT_4G;
}

static int boot_initrd_place(const struct guest_mem *mem, const char *path,
			     const struct boot_kernel *k, uint64_t len, uint64_t *addr)
{
	uint64_t top = boot_initrd_top(mem, k);

	*addr = len <= top ? (top - len) & ~BOOT_PAGE_MASK : 0;
	if (len > top || *addr < k->end) {
		log_err("initrd %s: %llu MiB does not fit in %llu MiB of RAM", path,
			BOOT_MIB(len + (1 << 20) - 1), BOOT_MIB(mem->ram_size));
		return -E2BIG;
	}
	return 0;
}

/* Move (len) bytes up from scratch at (src) to (dst) >= src, from the end
 * down, giving each scratch page back once its bytes are moved: at most
 * BOOT_MOVE_CHUNK is resident twice. */
static void boot_initrd_move(const struct guest_mem *mem, uint64_t src, uint64_t dst, uint64_t len)
{
	uint8_t *s = mem_gpa_ptr(mem, src, len), *d = mem_gpa_ptr(mem, dst, len);
	uint64_t end = len;

	while (end && dst != src) {
		uint64_t start = end > BOOT_MOVE_CHUNK ? end - BOOT_MOVE_CHUNK : 0;
		uint64_t rel_end = src + end < dst + start ? src + end : dst + start;

		memmove(d + start, s + start, end - start);
		if (rel_end > src + start && mem_release(mem, src + start, rel_end - (src + start)))
			log_debug("initrd: cannot release scratch at %#llx",
				  (unsigned long long)(src + start));
		end = start;
	}
}

/* Count the decompressed bytes without keeping them (error messages). */
static int boot_initrd_count(const struct boot_file *f, uint64_t limit, uint64_t *len)
{
	struct boot_out o = { .limit = limit };
	struct boot_in in;
	int ret;

	o.ring = mmap(NULL, BOOT_OUT_RING, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		      0);
	if (o.ring == MAP_FAILED)
		return -ENOMEM;
	ret = boot_in_open(&in, f, 0, f->size);
	if (!ret)
		ret = boot_unpack(&in, &o);
	boot_in_close(&in);
	munmap(o.ring, BOOT_OUT_RING);
	*len = o.pos;
	return ret;
}

/* A compressed initrd: decompressed into the free RAM above the kernel, as
 * scratch, then moved to the top (its size is known only at the end). */
static int boot_initrd_unpack(const struct guest_mem *mem, const struct boot_file *f,
			      enum boot_comp comp, const struct boot_kernel *k, uint64_t *gpa,
			      uint64_t *size)
{
	uint64_t top = boot_initrd_top(mem, k), half = mem->ram_size / 2;
	uint64_t scratch = (k->end + BOOT_PAGE_MASK) & ~BOOT_PAGE_MASK, len = 0;
	struct boot_out o = { 0 };
	struct timespec t0;
	struct boot_in in;
	int ret = -EFBIG;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (top > scratch + 1) {
		o.limit = top - scratch - 1 < half ? top - scratch - 1 : half;
		o.flat = mem_gpa_ptr(mem, scratch, o.limit + 1);
		ret = o.flat ? boot_in_open(&in, f, 0, f->size) : -EFAULT;
		if (!ret)
			ret = boot_unpack(&in, &o);
		boot_in_close(&in);
		len = o.pos;
	}
	if (ret == -EFBIG && o.limit < half) { /* too big for the room left: how big? */
		if (o.flat && mem_release(mem, scratch, o.limit + 1))
			log_debug("initrd: cannot release scratch at %#llx",
				  (unsigned long long)scratch);
		ret = boot_initrd_count(f, half, &len);
		if (!ret)
			ret = boot_initrd_place(mem, f->path, k, len, gpa);
	}
	if (ret == -EINVAL)
		log_err("initrd %s: corrupt %s data", f->path, boot_comp_name(comp));
	else if (ret == -EFBIG)
		log_err("initrd %s: more than %llu MiB (half of RAM) once decompressed", f->path,
			BOOT_MIB(half));
	else if (ret && ret != -E2BIG)
		log_err("initrd %s: %s", f->path, strerror(-ret));
	if (!ret)
		ret = boot_initrd_place(mem, f->path, k, len, gpa);
	if (ret)
		return ret == -EFBIG ? -E2BIG : ret;
	boot_initrd_move(mem, scratch, *gpa, len);
	*size = len;
	log_debug("initrd %s: %s, %llu -> %llu bytes in %.1f ms", f->path, boot_comp_name(comp),
		  (unsigned long long)f->size, (unsigned long long)len, boot_ms(&t0));
	return 0;
}

/* Uncompressed initrds are read straight to their place; compressed ones
 * are decompressed in guest RAM. */
static int boot_initrd_load(const struct guest_mem *mem, const char *path,
			    const struct boot_kernel *k, uint64_t *gpa, uint64_t *size)
{
	uint8_t magic[8] = { 0 };
	struct boot_file f;
	enum boot_comp comp;
	int ret;

	*gpa = *size = 0;
	if (!path)
		return 0;
	ret = boot_file_open(&f, path);
	if (ret) {
		log_err("initrd %s: %s", path, strerror(-ret));
		return ret;
	}
	ret = boot_file_read(&f, 0, magic, f.size < sizeof(magic) ? (size_t)f.size : sizeof(magic));
	comp = boot_comp_detect(magic, f.size < sizeof(magic) ? (size_t)f.size : sizeof(magic));
	if (ret) {
		log_err("initrd %s: %s", path, ret == -ENODATA ? "file truncated" : strerror(-ret));
	} else if (comp != BOOT_COMP_NONE) {
		ret = boot_initrd_unpack(mem, &f, comp, k, gpa, size);
	} else if (f.size) {
		ret = boot_initrd_place(mem, path, k, f.size, gpa);
		if (!ret)
			ret = boot_file_read(&f, 0, mem_gpa_ptr(mem, *gpa, f.size), f.size);
		if (ret && ret != -E2BIG)
			log_err("initrd %s: %s", path,
				ret == -ENODATA ? "file truncated" : strerror(-ret));
		if (ret == -ENODATA)
			ret = -EINVAL;
		*size = ret ? 0 : f.size;
	}
	if (ret)
		*gpa = *size = 0;
	else
		log_debug("initrd %s: %llu bytes at %#llx", path, (unsigned long long)*size,
			  (unsigned long long)*gpa);
	boot_file_close(&f);
	return ret;
}

static int boot_cmdline_write(const struct guest_mem *mem, const struct boot_kernel *k,
			      const char *cmdline)
{
	size_t n = strlen(cmdline);

	if (n > k->cmdline_max || n >= LAYOUT_CMDLINE_MAX) {
		log_err("kernel %s: command line of %zu bytes is too long (at most %llu)", k->path,
			n,
			(unsigned long long)(k->cmdline_max < LAYOUT_CMDLINE_MAX - 1 ?
						     k->cmdline_max :
						     LAYOUT_CMDLINE_MAX - 1));
		return -E2BIG;
	}
	if (mem_write(mem, LAYOUT_CMDLINE_GPA, cmdline, n + 1)) {
		log_err("kernel %s: no RAM for the command line", k->path);
		return -EFAULT;
	}
	return 0;
}

/* A load in progress: the kernel and initrd in RAM, on the loader thread. */
struct boot_job {
	struct vm *vm;
	pthread_t thread;
	bool started;
	int ret;
	struct boot_kernel k;
	struct boot_params zp;
	uint64_t initrd_gpa, initrd_size;
};

/* The heavy part: files into guest RAM. Touches vm->mem and vm->cfg only. */
static void *boot_job_run(void *arg)
{
	struct boot_job *j = arg;
	struct vm *vm = j->vm;
	struct boot_file file;
	int ret;

	j->k = (struct boot_kernel){
		.path = vm->cfg->kernel,
		.initrd_top = BOOT_4G,
		.cmdline_max = LAYOUT_CMDLINE_MAX - 1,
		.zp = &j->zp,
	};
	if (!j->k.path) {
		log_err("no kernel given");
		j->ret = -EINVAL;
		return NULL;
	}
	ret = boot_file_open(&file, j->k.path);
	if (ret) {
		log_err("kernel %s: %s", j->k.path, strerror(-ret));
		j->ret = ret;
		return NULL;
	}
	j->k.file = &file;
	ret = boot_kernel_load(&vm->mem, &j->k, vm->cfg->kernel_unpack);
	boot_file_close(&file);
	j->k.file = NULL;
	if (!ret)
		ret = boot_initrd_load(&vm->mem, vm->cfg->initrd, &j->k, &j->initrd_gpa,
				       &j->initrd_size);
	j->ret = ret;
	return NULL;
}

/* Everything after the kernel and initrd: command line, e820, boot params. */
static int boot_finish(struct vm *vm, struct boot_job *j, const char *cmdline, uint64_t rsdp_gpa)
{
	struct boot_kernel *k = &j->k;
	struct boot_e820 e820[BOOT_E820_MAX];
	int nr, ret;

	ret = boot_cmdline_write(&vm->mem, k, cmdline ? cmdline : "");
	if (ret)
		return ret;
	nr = boot_e820_build(&vm->mem, e820, BOOT_E820_MAX);
	if (nr < 0) {
		ret = nr;
	} else if (k->pvh) {
		ret = boot_pvh_write(&vm->mem, e820, (unsigned)nr, j->initrd_gpa, j->initrd_size,
				     rsdp_gpa);
	} else {
		boot_zp_finish(k->zp, e820, (unsigned)nr, j->initrd_gpa, j->initrd_size, rsdp_gpa);
		ret = mem_write(&vm->mem, LAYOUT_ZERO_PAGE_GPA, k->zp, sizeof(*k->zp));
	}
	if (ret)
		log_err("kernel %s: cannot write the boot parameters: %s", k->path, strerror(-ret));
	return ret;
}

int boot_load_start(struct vm *vm)
{
	struct boot_job *j = calloc(1, sizeof(*j));
	int ret;

	if (!j)
		return -ENOMEM;
	j->vm = vm;
	ret = pthread_create(&j->thread, NULL, boot_job_run, j);
	if (ret) {
		free(j);
		return -ret;
	}
	j->started = true;
	vm->boot = j;
	return 0;
}

/* Wait for the loader (or run it here when none was started). */
static struct boot_job *boot_job_wait(struct vm *vm)
{
	struct boot_job *j = vm->boot;

	if (!j) {
		j = calloc(1, sizeof(*j));
		if (!j)
			return NULL;
		j->vm = vm;
		boot_job_run(j);
		return j;
	}
	if (j->started)
		pthread_join(j->thread, NULL);
	vm->boot = NULL;
	return j;
}

void boot_load_cancel(struct vm *vm)
{
	if (vm->boot)
		free(boot_job_wait(vm));
}

int boot_load(struct vm *vm, const char *cmdline, uint64_t rsdp_gpa, struct boot_info *out)
{
	struct boot_job *j = boot_job_wait(vm);
	int ret;

	if (!j)
		return -ENOMEM;
	ret = j->ret;
	if (!ret)
		ret = boot_finish(vm, j, cmdline, rsdp_gpa);
	if (!ret) {
		out->entry = j->k.pvh ? BOOT_ENTRY_PVH32 : BOOT_ENTRY_LINUX64;
		out->rip = j->k.entry;
		out->arg = j->k.pvh ? LAYOUT_PVH_INFO_GPA : LAYOUT_ZERO_PAGE_GPA;
	}
	free(j);
	return ret;
}
