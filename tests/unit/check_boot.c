/* Unit tests of src/boot: the e820 map, kernel/initrd files (file.c) and the
 * decompressors behind boot_unpack (round trips through each library and the
 * lz4/gzip/xz/zstd tools, corrupt input, limits), driven as boot.c drives
 * them for an initrd: from a file into one flat output buffer. */
#include <errno.h>
#include <lz4.h>
#include <lz4frame.h>
#include <lzma.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "../../src/boot/boot_priv.h"
#include "kvisor/boot.h"
#include "kvisor/layout.h"
#include "kvisor/log.h"
#include "kvisor/mem.h"

#include <check.h>

#define MIB (1ULL << 20)

/* ---- e820 ---- */

static void e820_expect(const struct boot_e820 *e, uint64_t addr, uint64_t size, uint32_t type)
{
	ck_assert_uint_eq(e->addr, addr);
	ck_assert_uint_eq(e->size, size);
	ck_assert_uint_eq(e->type, type);
}

START_TEST(test_e820_256m)
{
	struct boot_e820 e[BOOT_E820_MAX];
	struct guest_mem mem;

	ck_assert_int_eq(mem_init(&mem, 256 * MIB), 0);
	ck_assert_int_eq(boot_e820_build(&mem, e, BOOT_E820_MAX), 3);
	e820_expect(&e[0], 0, LAYOUT_EBDA_GPA, E820_RAM);
	e820_expect(&e[1], LAYOUT_EBDA_GPA, 0x100000 - LAYOUT_EBDA_GPA, E820_RESERVED);
	e820_expect(&e[2], 0x100000, 255 * MIB, E820_RAM);
	ck_assert_int_eq(boot_e820_build(&mem, e, 2), -ENOSPC);
	mem_destroy(&mem);
}
END_TEST

START_TEST(test_e820_hole)
{
	struct boot_e820 e[BOOT_E820_MAX];
	struct guest_mem mem;

	ck_assert_int_eq(mem_init(&mem, 3584 * MIB), 0);
	ck_assert_int_eq(boot_e820_build(&mem, e, BOOT_E820_MAX), 4);
	e820_expect(&e[2], 0x100000, LAYOUT_MMIO_HOLE_GPA - 0x100000, E820_RAM);
	e820_expect(&e[3], 0x100000000ULL, 512 * MIB, E820_RAM);
	ck_assert_int_eq(boot_e820_build(&mem, e, 3), -ENOSPC);
	mem_destroy(&mem);
}
END_TEST

START_TEST(test_e820_16m)
{
	struct boot_e820 e[BOOT_E820_MAX];
	struct guest_mem mem;

	ck_assert_int_eq(mem_init(&mem, 16 * MIB), 0);
	ck_assert_int_eq(boot_e820_build(&mem, e, BOOT_E820_MAX), 3);
	e820_expect(&e[0], 0, LAYOUT_EBDA_GPA, E820_RAM);
	e820_expect(&e[2], 0x100000, 15 * MIB, E820_RAM);
	mem_destroy(&mem);
}
END_TEST

/* ---- test data and compressors ---- */

struct blob {
	uint8_t *p;
	size_t len;
};

/* Compressible but not trivial: words from a small dictionary plus noise. */
static struct blob sample(size_t len, unsigned seed)
{
	static const char *words[] = { "kernel ", "initrd ", "vcpu ", "e820 ",
				       "\n",      "0x1f ",   "boot ", "lz4 " };
	struct blob b = { malloc(len ? len : 1), len };

	srand(seed);
	for (size_t i = 0; i < len;) {
		const char *w = words[rand() % 8];

		for (size_t j = 0; w[j] && i < len; j++)
			b.p[i++] = (rand() % 16) ? (uint8_t)w[j] : (uint8_t)rand();
	}
	return b;
}

static void blob_cat(struct blob *dst, const struct blob *src)
{
	dst->p = realloc(dst->p, dst->len + src->len);
	memcpy(dst->p + dst->len, src->p, src->len);
	dst->len += src->len;
}

static struct blob z_gzip(const struct blob *in)
{
	struct blob b = { malloc(in->len + 1024), 0 };
	z_stream zs = { 0 };

	ck_assert_int_eq(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY),
			 Z_OK);
	zs.next_in = in->p;
	zs.avail_in = (uInt)in->len;
	zs.next_out = b.p;
	zs.avail_out = (uInt)(in->len + 1024);
	ck_assert_int_eq(deflate(&zs, Z_FINISH), Z_STREAM_END);
	b.len = zs.total_out;
	deflateEnd(&zs);
	return b;
}

static struct blob z_xz(const struct blob *in, bool alone)
{
	struct blob b = { malloc(in->len + 1024), 0 };
	lzma_stream s = LZMA_STREAM_INIT;
	lzma_options_lzma opt;

	if (alone) {
		lzma_lzma_preset(&opt, 1);
		ck_assert_int_eq(lzma_alone_encoder(&s, &opt), LZMA_OK);
	} else {
		ck_assert_int_eq(lzma_easy_encoder(&s, 1, LZMA_CHECK_CRC32), LZMA_OK);
	}
	s.next_in = in->p;
	s.avail_in = in->len;
	s.next_out = b.p;
	s.avail_out = in->len + 1024;
	ck_assert_int_eq(lzma_code(&s, LZMA_FINISH), LZMA_STREAM_END);
	b.len = s.total_out;
	lzma_end(&s);
	return b;
}

static struct blob z_zstd(const struct blob *in)
{
	struct blob b = { malloc(ZSTD_compressBound(in->len)), 0 };

	b.len = ZSTD_compress(b.p, ZSTD_compressBound(in->len), in->p, in->len, 3);
	ck_assert(!ZSTD_isError(b.len));
	return b;
}

static struct blob z_lz4f(const struct blob *in)
{
	LZ4F_preferences_t prefs = { .frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled };
	size_t cap = LZ4F_compressFrameBound(in->len, &prefs);
	struct blob b = { malloc(cap), 0 };

	b.len = LZ4F_compressFrame(b.p, cap, in->p, in->len, &prefs);
	ck_assert(!LZ4F_isError(b.len));
	return b;
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* The legacy format as lz4 -l writes it: 8 MiB blocks. */
static struct blob z_lz4l(const struct blob *in)
{
	const size_t blk = 8 * MIB;
	struct blob b = { malloc(4 + (in->len / blk + 1) * (4 + LZ4_compressBound(blk))), 4 };

	put32(b.p, 0x184c2102);
	for (size_t off = 0; off < in->len; off += blk) {
		int n = (int)(in->len - off < blk ? in->len - off : blk);
		int c = LZ4_compress_default((const char *)in->p + off, (char *)b.p + b.len + 4, n,
					     LZ4_compressBound(n));

		ck_assert_int_gt(c, 0);
		put32(b.p + b.len, (uint32_t)c);
		b.len += 4 + (size_t)c;
	}
	return b;
}

/* Decompress what (f) holds into a flat buffer of (limit) + 1 bytes, as
 * boot.c unpacks an initrd; (*out) gets the bytes (malloc'd) unless NULL. */
static int unpack_file(const struct boot_file *f, size_t limit, struct blob *out)
{
	struct boot_out o = { .limit = limit };
	struct boot_in in;
	int err;

	o.flat = mmap(NULL, limit + 1, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ck_assert(o.flat != MAP_FAILED);
	err = boot_in_open(&in, f, 0, f->size);
	if (!err)
		err = boot_unpack(&in, &o);
	boot_in_close(&in);
	if (!err && out) {
		out->len = o.pos;
		out->p = malloc(o.pos ? o.pos : 1);
		memcpy(out->p, o.flat, o.pos);
	}
	munmap(o.flat, limit + 1);
	return err;
}

/* (z) from a file read with pread, 128 KiB at a time (the path of a kernel
 * or initrd on disk); an unnamed file in memory stands in for it. */
static int unpack(const struct blob *z, size_t limit, struct blob *out)
{
	int fd = memfd_create("check_boot", 0);
	struct boot_file f;
	char path[64];
	int err;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, z->p, z->len), (ssize_t)z->len);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ck_assert_int_eq(boot_file_open(&f, path), 0);
	ck_assert_ptr_null(f.map); /* a regular file: read where needed */
	err = unpack_file(&f, limit, out);
	boot_file_close(&f);
	close(fd);
	return err;
}

/* Decompress (z) from a file and from memory; compare with (plain). */
static void roundtrip(const struct blob *z, const struct blob *plain)
{
	struct boot_file f;
	struct blob out;

	ck_assert_int_eq(unpack(z, 1ULL << 30, &out), 0);
	ck_assert_uint_eq(out.len, plain->len);
	ck_assert(!memcmp(out.p, plain->p, out.len));
	free(out.p);
	boot_file_mem(&f, "test", z->p, z->len);
	ck_assert_int_eq(unpack_file(&f, 1ULL << 30, &out), 0);
	ck_assert_uint_eq(out.len, plain->len);
	ck_assert(!memcmp(out.p, plain->p, out.len));
	free(out.p);
}

static int try_decompress(const struct blob *z, size_t limit)
{
	return unpack(z, limit, NULL);
}

static struct blob compress_with(int fmt, const struct blob *in)
{
	switch (fmt) {
	case 0:
		return z_gzip(in);
	case 1:
		return z_xz(in, false);
	case 2:
		return z_xz(in, true);
	case 3:
		return z_zstd(in);
	case 4:
		return z_lz4f(in);
	default:
		return z_lz4l(in);
	}
}

#define NR_FORMATS 6

START_TEST(test_roundtrip)
{
	struct blob plain = sample(3 * MIB + 17, 1);
	struct blob z = compress_with(_i, &plain);

	roundtrip(&z, &plain);
	free(z.p);
	free(plain.p);
}
END_TEST

/* Concatenated streams, zero padding between and after. */
START_TEST(test_multi_stream)
{
	struct blob a = sample(100000, 2), b = sample(70000, 3);
	struct blob za = compress_with(_i, &a), zb = compress_with(_i, &b);
	struct blob pad = { calloc(1, 512), 512 }, z = { NULL, 0 }, ab = { NULL, 0 };

	blob_cat(&z, &za);
	blob_cat(&z, &pad);
	blob_cat(&z, &zb);
	blob_cat(&z, &za);
	blob_cat(&z, &pad);
	blob_cat(&ab, &a);
	blob_cat(&ab, &b);
	blob_cat(&ab, &a);
	roundtrip(&z, &ab);
	free(a.p), free(b.p), free(za.p), free(zb.p), free(pad.p), free(z.p), free(ab.p);
}
END_TEST

START_TEST(test_truncated)
{
	struct blob plain = sample(MIB, 4);
	struct blob z = compress_with(_i, &plain);

	z.len -= 100;
	ck_assert_int_eq(try_decompress(&z, 1ULL << 30), -EINVAL);
	z.len = 7;
	ck_assert_int_eq(try_decompress(&z, 1ULL << 30), -EINVAL);
	free(z.p);
	free(plain.p);
}
END_TEST

START_TEST(test_trailing_garbage)
{
	struct blob plain = sample(50000, 5);
	struct blob z = compress_with(_i, &plain);
	struct blob junk = { (uint8_t *)strdup("junk after the stream"), 21 };

	blob_cat(&z, &junk);
	ck_assert_int_eq(try_decompress(&z, 1ULL << 30), -EINVAL);
	free(z.p), free(plain.p), free(junk.p);
}
END_TEST

START_TEST(test_limit)
{
	struct blob plain = sample(9 * MIB + 5, 6);
	struct blob z = compress_with(_i, &plain);

	ck_assert_int_eq(try_decompress(&z, plain.len - 1), -EFBIG);
	ck_assert_int_eq(try_decompress(&z, 4096), -EFBIG);
	ck_assert_int_eq(try_decompress(&z, plain.len), 0);
	free(z.p);
	free(plain.p);
}
END_TEST

/* Random byte flips: any result but a crash or an overread (ASan). */
START_TEST(test_corrupt_fuzz)
{
	struct blob plain = sample(200000, 7);
	struct blob z = compress_with(_i, &plain);
	int einval = 0;

	srand(100 + _i);
	for (int iter = 0; iter < 300; iter++) {
		struct blob bad = { malloc(z.len), z.len };
		int ret;

		memcpy(bad.p, z.p, z.len);
		for (int k = 0; k < 1 + iter % 4; k++)
			bad.p[4 + (size_t)rand() % (z.len - 4)] ^= (uint8_t)(1 + rand() % 255);
		ret = try_decompress(&bad, 1ULL << 30);
		ck_assert(ret == 0 || ret == -EINVAL || ret == -EFBIG);
		einval += ret == -EINVAL;
		free(bad.p);
	}
	/* Every format but lz4 legacy carries checksums. */
	if (_i != 5)
		ck_assert_int_gt(einval, 250);
	free(z.p);
	free(plain.p);
}
END_TEST

START_TEST(test_corrupt_header)
{
	static const uint8_t lz4l_huge[] = { 0x02, 0x21, 0x4c, 0x18, 0xff, 0xff, 0xff, 0x7f, 1, 2 };
	static const uint8_t gz_bad[] = { 0x1f, 0x8b, 0x08, 0x00, 0xff, 0xff, 0xff, 0xff, 0, 3 };
	static const uint8_t magic_only[] = { 0x28, 0xb5, 0x2f, 0xfd };
	struct blob b1 = { (uint8_t *)lz4l_huge, sizeof(lz4l_huge) };
	struct blob b2 = { (uint8_t *)gz_bad, sizeof(gz_bad) };
	struct blob b3 = { (uint8_t *)magic_only, sizeof(magic_only) };

	ck_assert_int_eq(try_decompress(&b1, 1 << 30), -EINVAL);
	ck_assert_int_eq(try_decompress(&b2, 1 << 30), -EINVAL);
	ck_assert_int_eq(try_decompress(&b3, 1 << 30), -EINVAL);
}
END_TEST

/* An uncompressed initrd is not one of the formats: boot.c places it as
 * it is; handed to the decompressor it is corrupt input. */
START_TEST(test_uncompressed)
{
	static const uint8_t cpio[] = "070701000000000000";
	struct blob b = { (uint8_t *)cpio, sizeof(cpio) };
	struct blob z = compress_with(0, &b);

	ck_assert_int_eq(boot_comp_detect(cpio, sizeof(cpio)), BOOT_COMP_NONE);
	ck_assert_str_eq(boot_comp_name(BOOT_COMP_NONE), "uncompressed");
	ck_assert_int_eq(try_decompress(&b, 1 << 20), -EINVAL);
	ck_assert_int_eq(boot_comp_detect(z.p, 1), BOOT_COMP_NONE); /* magic cut */
	ck_assert_int_eq(boot_comp_detect(z.p, z.len), BOOT_COMP_GZIP);
	ck_assert_str_eq(boot_comp_name(BOOT_COMP_LZ4L), "lz4-legacy");
	free(z.p);
}
END_TEST

/* Streams written by the command-line tools, when they are installed. */
START_TEST(test_tools)
{
	static const char *cmds[] = { "lz4 -l -9 -q -c", "gzip -1 -c", "xz -0 -c --check=crc32",
				      "zstd -1 -q -c",   "lzma -0 -c", "lz4 -q -c" };
	char dir[] = "/tmp/check_boot_XXXXXX", cmd[512], in[64], out[64];
	struct blob plain = sample(9 * MIB + 3, 9);
	FILE *f;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(in, sizeof(in), "%s/in", dir);
	snprintf(out, sizeof(out), "%s/out", dir);
	f = fopen(in, "wb");
	ck_assert_uint_eq(fwrite(plain.p, 1, plain.len, f), plain.len);
	fclose(f);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		struct boot_file bf;
		struct blob got;

		snprintf(cmd, sizeof(cmd), "%s < %s > %s 2>/dev/null", cmds[i], in, out);
		if (system(cmd) != 0) {
			fprintf(stderr, "check_boot: skipping '%s' (tool missing)\n", cmds[i]);
			continue;
		}
		ck_assert_int_eq(boot_file_open(&bf, out), 0);
		ck_assert_int_eq(unpack_file(&bf, 1ULL << 30, &got), 0);
		boot_file_close(&bf);
		ck_assert_uint_eq(got.len, plain.len);
		ck_assert_msg(!memcmp(got.p, plain.p, got.len), "'%s' output differs", cmds[i]);
		free(got.p);
	}
	unlink(in);
	unlink(out);
	rmdir(dir);
	free(plain.p);
}
END_TEST

/* A regular file is read where its bytes are needed; a pipe is read whole
 * into a mapping first; reads past the end are -ENODATA. */
START_TEST(test_file_open)
{
	static const char text[] = "0123456789abcdef";
	struct boot_file f;
	char path[64], buf[8];
	int fds[2];

	ck_assert_int_eq(boot_file_open(&f, "/nonexistent/kvisor"), -ENOENT);
	ck_assert_int_eq(boot_file_open(&f, "/tmp"), -EISDIR);
	ck_assert_int_eq(pipe(fds), 0);
	ck_assert_int_eq(write(fds[1], text, 16), 16);
	close(fds[1]);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fds[0]);
	ck_assert_int_eq(boot_file_open(&f, path), 0);
	close(fds[0]);
	ck_assert_ptr_nonnull(f.map);
	ck_assert_uint_eq(f.size, 16);
	ck_assert_int_eq(boot_file_read(&f, 8, buf, 8), 0);
	ck_assert(!memcmp(buf, "89abcdef", 8));
	ck_assert_int_eq(boot_file_read(&f, 9, buf, 8), -ENODATA);
	ck_assert_int_eq(boot_file_read(&f, ~0ULL, buf, 2), -ENODATA);
	boot_file_close(&f);
	ck_assert_int_eq(boot_file_open(&f, "/proc/self/exe"), 0);
	ck_assert_ptr_null(f.map);
	ck_assert_uint_gt(f.size, 4);
	ck_assert_int_eq(boot_file_read(&f, 0, buf, 4), 0);
	ck_assert(!memcmp(buf, "\177ELF", 4));
	ck_assert_int_eq(boot_file_read(&f, f.size - 1, buf, 2), -ENODATA);
	boot_file_close(&f);
}
END_TEST

static Suite *unit_suite(void)
{
	Suite *s = suite_create("boot");
	TCase *tc = tcase_create("e820");
	TCase *tz = tcase_create("decompress");

	log_threshold = LOG_ERR;
	tcase_add_test(tc, test_e820_256m);
	tcase_add_test(tc, test_e820_hole);
	tcase_add_test(tc, test_e820_16m);
	tcase_add_test(tc, test_file_open);
	suite_add_tcase(s, tc);
	tcase_set_timeout(tz, 60);
	tcase_add_loop_test(tz, test_roundtrip, 0, NR_FORMATS);
	tcase_add_loop_test(tz, test_multi_stream, 0, NR_FORMATS);
	tcase_add_loop_test(tz, test_truncated, 0, NR_FORMATS);
	tcase_add_loop_test(tz, test_trailing_garbage, 0, NR_FORMATS);
	tcase_add_loop_test(tz, test_limit, 0, NR_FORMATS);
	tcase_add_loop_test(tz, test_corrupt_fuzz, 0, NR_FORMATS);
	tcase_add_test(tz, test_corrupt_header);
	tcase_add_test(tz, test_uncompressed);
	tcase_add_test(tz, test_tools);
	suite_add_tcase(s, tz);
	return s;
}

#include "unit.h"
