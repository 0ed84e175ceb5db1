/* Host-side decompression of kernels and initrds (gzip, xz, lzma, zstd; lz4
 * in decompress_lz4.c): the guest would run the same code emulated, slowly.
 * Input is untrusted: libraries are given exact lengths, output is bounded. */
#include <errno.h>
#include <lzma.h>
#include <stdlib.h>
#include <string.h>
#define ZLIB_CONST
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "boot_priv.h"

#define BOOT_OBUF_MIN (64u << 10)
#define BOOT_CHUNK_MAX (1u << 30) /* zlib counts in 32-bit uInt */

static const struct {
	enum boot_comp comp;
	const char *name;
	uint8_t magic[6];
	uint8_t magic_len;
} boot_comp_magic[] = {
	{ BOOT_COMP_GZIP, "gzip", { 0x1f, 0x8b }, 2 },
	{ BOOT_COMP_XZ, "xz", { 0xfd, '7', 'z', 'X', 'Z', 0x00 }, 6 },
	{ BOOT_COMP_LZMA, "lzma", { 0x5d, 0x00, 0x00 }, 3 },
	{ BOOT_COMP_ZSTD, "zstd", { 0x28, 0xb5, 0x2f, 0xfd }, 4 },
	{ BOOT_COMP_LZ4F, "lz4", { 0x04, 0x22, 0x4d, 0x18 }, 4 },
	{ BOOT_COMP_LZ4L, "lz4-legacy", { 0x02, 0x21, 0x4c, 0x18 }, 4 },
};

#define BOOT_NR_COMP (sizeof(boot_comp_magic) / sizeof(boot_comp_magic[0]))

enum boot_comp boot_comp_detect(const uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < BOOT_NR_COMP; i++) {
		size_t n = boot_comp_magic[i].magic_len;

		if (len >= n && !memcmp(buf, boot_comp_magic[i].magic, n))
			return boot_comp_magic[i].comp;
	}
	return BOOT_COMP_NONE;
}

const char *boot_comp_name(enum boot_comp comp)
{
	for (size_t i = 0; i < BOOT_NR_COMP; i++)
		if (boot_comp_magic[i].comp == comp)
			return boot_comp_magic[i].name;
	return "uncompressed";
}

int boot_obuf_reserve(struct boot_obuf *o, size_t n)
{
	size_t want, cap;
	uint8_t *p;

	if (o->cap - o->len >= n)
		return 0;
	if (o->cap >= o->max_cap)
		return o->cap > o->len ? 0 : -EFBIG;
	want = n < o->max_cap - o->len ? o->len + n : o->max_cap;
	cap = o->cap < BOOT_OBUF_MIN ? BOOT_OBUF_MIN : o->cap;
	while (cap < want)
		cap = cap <= o->max_cap / 2 ? cap * 2 : o->max_cap;
	if (cap > o->max_cap)
		cap = o->max_cap;
	p = realloc(o->p, cap);
	if (!p)
		return -ENOMEM;
	o->p = p;
	o->cap = cap;
	return 0;
}

int boot_obuf_grow(struct boot_obuf *o)
{
	return boot_obuf_reserve(o, 1);
}

static size_t boot_obuf_room(const struct boot_obuf *o)
{
	size_t room = o->cap - o->len;

	return room < BOOT_CHUNK_MAX ? room : BOOT_CHUNK_MAX;
}

/* One gzip member. zlib never reads past avail_in. */
static int boot_ungzip(const uint8_t *in, size_t len, struct boot_obuf *o, size_t *used)
{
	z_stream zs;
	size_t fed = 0;
	int ret, err = 0;

	memset(&zs, 0, sizeof(zs));
	if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
		return -ENOMEM;
	for (;;) {
		size_t room;

		if (zs.avail_in == 0 && fed < len) {
			size_t n = len - fed < BOOT_CHUNK_MAX ? len - fed : BOOT_CHUNK_MAX;

			zs.next_in = in + fed;
			zs.avail_in = (uInt)n;
			fed += n;
		}
		err = boot_obuf_grow(o);
		if (err)
			break;
		room = boot_obuf_room(o);
		zs.next_out = o->p + o->len;
		zs.avail_out = (uInt)room;
		ret = inflate(&zs, Z_NO_FLUSH);
		o->len += room - zs.avail_out;
		if (ret == Z_STREAM_END)
			break;
		if (ret == Z_MEM_ERROR) {
			err = -ENOMEM;
			break;
		}
		/* Output room left and all input used: the member is truncated. */
		if ((ret != Z_OK && ret != Z_BUF_ERROR) ||
		    (zs.avail_out && !zs.avail_in && fed == len)) {
			err = -EINVAL;
			break;
		}
	}
	*used = zs.total_in;
	inflateEnd(&zs);
	return err;
}

/* One xz stream or one lzma-alone stream. */
static int boot_unxz(const uint8_t *in, size_t len, struct boot_obuf *o, size_t *used,
		     bool alone)
{
	lzma_stream s = LZMA_STREAM_INIT;
	lzma_ret ret;
	int err = 0;

	ret = alone ? lzma_alone_decoder(&s, UINT64_MAX) : lzma_stream_decoder(&s, UINT64_MAX, 0);
	if (ret != LZMA_OK)
		return ret == LZMA_MEM_ERROR ? -ENOMEM : -EINVAL;
	s.next_in = in;
	s.avail_in = len;
	for (;;) {
		size_t room;

		err = boot_obuf_grow(o);
		if (err)
			break;
		room = boot_obuf_room(o);
		s.next_out = o->p + o->len;
		s.avail_out = room;
		ret = lzma_code(&s, LZMA_FINISH);
		o->len += room - s.avail_out;
		if (ret == LZMA_STREAM_END)
			break;
		if (ret != LZMA_OK) {
			/* LZMA_BUF_ERROR: no progress with room left = truncated. */
			err = ret == LZMA_MEM_ERROR ? -ENOMEM : -EINVAL;
			break;
		}
	}
	*used = (size_t)s.total_in;
	lzma_end(&s);
	return err;
}

/* One zstd frame (or skippable frame): its exact length is known first. */
static int boot_unzstd(const uint8_t *in, size_t len, struct boot_obuf *o, size_t *used)
{
	size_t fsz = ZSTD_findFrameCompressedSize(in, len);
	ZSTD_inBuffer zin = { in, fsz, 0 };
	ZSTD_DCtx *d;
	int err = 0;

	if (ZSTD_isError(fsz) || fsz > len)
		return -EINVAL;
	d = ZSTD_createDCtx();
	if (!d)
		return -ENOMEM;
	for (;;) {
		ZSTD_outBuffer zout;
		size_t r;

		err = boot_obuf_grow(o);
		if (err)
			break;
		zout.dst = o->p + o->len;
		zout.size = boot_obuf_room(o);
		zout.pos = 0;
		r = ZSTD_decompressStream(d, &zout, &zin);
		o->len += zout.pos;
		if (ZSTD_isError(r)) {
			err = ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation ? -ENOMEM : -EINVAL;
			break;
		}
		if (r == 0)
			break;
		if (zin.pos == zin.size && zout.pos < zout.size) {
			err = -EINVAL;
			break;
		}
	}
	ZSTD_freeDCtx(d);
	*used = fsz;
	return err;
}

static int boot_unpack_one(enum boot_comp comp, const uint8_t *in, size_t len,
			   struct boot_obuf *o, size_t *used)
{
	switch (comp) {
	case BOOT_COMP_GZIP:
		return boot_ungzip(in, len, o, used);
	case BOOT_COMP_XZ:
		return boot_unxz(in, len, o, used, false);
	case BOOT_COMP_LZMA:
		return boot_unxz(in, len, o, used, true);
	case BOOT_COMP_ZSTD:
		return boot_unzstd(in, len, o, used);
	case BOOT_COMP_LZ4F:
		return boot_unlz4_frame(in, len, o, used);
	case BOOT_COMP_LZ4L:
		return boot_unlz4_legacy(in, len, o, used);
	case BOOT_COMP_NONE:
		break;
	}
	return -EINVAL;
}

/* Streams may follow each other (gzip members, zstd frames, xz streams, even
 * mixed), separated or followed by zero padding; anything else is corrupt. */
int boot_decompress_mem(const uint8_t *in, size_t len, size_t limit, uint8_t **out,
			size_t *out_len)
{
	struct boot_obuf o = { .max_cap = limit < SIZE_MAX ? limit + 1 : SIZE_MAX };
	size_t pos = 0;
	int err = 0;

	/* A first guess that saves most reallocations for typical ratios. */
	o.cap = len <= o.max_cap / 4 ? len * 4 : o.max_cap;
	o.p = malloc(o.cap ? o.cap : 1);
	if (!o.p)
		return -ENOMEM;
	while (pos < len) {
		enum boot_comp comp = boot_comp_detect(in + pos, len - pos);
		size_t used = 0;

		err = boot_unpack_one(comp, in + pos, len - pos, &o, &used);
		if (!err && (used == 0 || used > len - pos))
			err = -EINVAL;
		if (err)
			break;
		pos += used;
		while (pos < len && in[pos] == 0)
			pos++;
	}
	if (!err && o.len > limit)
		err = -EFBIG;
	if (err) {
		free(o.p);
		return err;
	}
	*out = o.p;
	*out_len = o.len;
	return 0;
}

int boot_decompress(uint8_t **buf, size_t *len, size_t limit)
{
	uint8_t *out;
	size_t out_len;
	int err;

	if (boot_comp_detect(*buf, *len) == BOOT_COMP_NONE)
		return 0;
	err = boot_decompress_mem(*buf, *len, limit, &out, &out_len);
	if (err)
		return err;
	free(*buf);
	*buf = out;
	*len = out_len;
	return 0;
}
