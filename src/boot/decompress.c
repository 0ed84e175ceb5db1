/* Host-side decompression of kernels and initrds (gzip, xz, lzma, zstd; lz4
 * in decompress_lz4.c): the guest would run the same code emulated, slowly.
 * Input is read from the file a chunk at a time and output goes straight to
 * guest RAM (struct boot_out), so no image passes through the heap.
 * Input is untrusted: libraries are given exact lengths, output is bounded. */
#include <errno.h>
#include <lzma.h>
#include <string.h>
#include <sys/mman.h>
#define ZLIB_CONST
#include <zlib.h>
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_d_stableOutBuffer */
#include <zstd.h>
#include <zstd_errors.h>

#include "boot_priv.h"

#define BOOT_XZ_MEMLIMIT (128ULL << 20) /* xz -9 needs 65 MiB, Linux 32 MiB */
#define BOOT_CHUNK_MAX   (1u << 30)     /* zlib counts in 32-bit uInt */

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

int boot_in_open(struct boot_in *in, const struct boot_file *f, uint64_t off, uint64_t len)
{
	memset(in, 0, sizeof(*in));
	in->f = f;
	if (off > f->size || len > f->size - off)
		return -EINVAL;
	if (f->map) { /* already in memory: no copy */
		in->p = f->map + off;
		in->n = (size_t)len;
		in->off = in->end = off + len;
		return 0;
	}
	in->buf = mmap(NULL, BOOT_IN_CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		       0);
	if (in->buf == MAP_FAILED) {
		in->buf = NULL;
		return -ENOMEM;
	}
	in->p = in->buf;
	in->off = off;
	in->end = off + len;
	return 0;
}

void boot_in_close(struct boot_in *in)
{
	if (in->buf)
		munmap(in->buf, BOOT_IN_CHUNK);
	in->buf = NULL;
	in->n = 0;
}

int boot_in_fill(struct boot_in *in, size_t want)
{
	size_t k;
	int ret;

	if (in->n >= want || in->off == in->end || !in->buf)
		return 0;
	memmove(in->buf, in->p, in->n);
	in->p = in->buf;
	k = BOOT_IN_CHUNK - in->n;
	if (k > in->end - in->off)
		k = (size_t)(in->end - in->off);
	ret = boot_file_read(in->f, in->off, in->buf + in->n, k);
	if (ret)
		return ret == -ENODATA ? -EINVAL : ret;
	in->n += k;
	in->off += k;
	return 0;
}

int boot_out_room(struct boot_out *o, uint64_t pos, uint8_t **p, size_t *len, size_t *back)
{
	uint64_t lim, gap_start, gap_end;
	size_t r;

	if (pos > o->limit)
		return -EFBIG;
	lim = o->limit + 1;
	if (o->flat) {
		*p = o->flat + pos;
		*len = (size_t)(lim - pos);
		*back = (size_t)pos;
		return 0;
	}
	while (o->cur < o->nr_spans && o->spans[o->cur].end <= pos)
		o->cur++;
	if (o->cur < o->nr_spans && o->spans[o->cur].start <= pos) {
		const struct boot_out_span *s = &o->spans[o->cur];

		*p = s->dst + (pos - s->start);
		*len = (size_t)((s->end < lim ? s->end : lim) - pos);
		*back = (size_t)(pos - s->start);
		return 0;
	}
	gap_start = o->cur ? o->spans[o->cur - 1].end : 0;
	gap_end = o->cur < o->nr_spans ? o->spans[o->cur].start : lim;
	r = (size_t)(pos & (BOOT_OUT_RING - 1));
	*p = o->ring + r;
	*len = BOOT_OUT_RING - r;
	if (*len > gap_end - pos)
		*len = (size_t)(gap_end - pos);
	*back = r < pos - gap_start ? r : (size_t)(pos - gap_start);
	return 0;
}

const uint8_t *boot_out_at(struct boot_out *o, uint64_t pos, size_t *len)
{
	unsigned lo = 0, hi = o->nr_spans;
	uint64_t end = o->pos;
	size_t r;

	if (o->flat) {
		*len = (size_t)(end - pos);
		return o->flat + pos;
	}
	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;

		if (o->spans[mid].end <= pos)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < o->nr_spans && o->spans[lo].start <= pos) {
		if (o->spans[lo].end < end)
			end = o->spans[lo].end;
		*len = (size_t)(end - pos);
		return o->spans[lo].dst + (pos - o->spans[lo].start);
	}
	if (lo < o->nr_spans && o->spans[lo].start < end)
		end = o->spans[lo].start;
	r = (size_t)(pos & (BOOT_OUT_RING - 1));
	*len = (size_t)(end - pos) < BOOT_OUT_RING - r ? (size_t)(end - pos) : BOOT_OUT_RING - r;
	return o->ring + r;
}

/* Room for output, at most 1 GiB (zlib counts in 32-bit uInt). */
static int boot_out_next(struct boot_out *o, uint8_t **p, size_t *len)
{
	size_t back;
	int err = boot_out_room(o, o->pos, p, len, &back);

	if (!err && *len > BOOT_CHUNK_MAX)
		*len = BOOT_CHUNK_MAX;
	return err;
}

/* One gzip member. zlib never reads past avail_in. */
static int boot_ungzip(struct boot_in *in, struct boot_out *o)
{
	z_stream zs;
	int ret, err = 0;

	memset(&zs, 0, sizeof(zs));
	if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
		return -ENOMEM;
	for (;;) {
		uint8_t *p;
		size_t room;

		err = in->n ? 0 : boot_in_fill(in, BOOT_IN_CHUNK);
		if (!err)
			err = boot_out_next(o, &p, &room);
		if (err)
			break;
		zs.next_in = in->p;
		zs.avail_in = (uInt)in->n;
		zs.next_out = p;
		zs.avail_out = (uInt)room;
		ret = inflate(&zs, Z_NO_FLUSH);
		o->pos += room - zs.avail_out;
		boot_in_skip(in, in->n - zs.avail_in);
		if (ret == Z_STREAM_END)
			break;
		if (ret == Z_MEM_ERROR) {
			err = -ENOMEM;
			break;
		}
		/* Output room left and all input used: the member is truncated. */
		if ((ret != Z_OK && ret != Z_BUF_ERROR) ||
		    (zs.avail_out && !in->n && !boot_in_left(in))) {
			err = -EINVAL;
			break;
		}
	}
	inflateEnd(&zs);
	return err;
}

/* One xz stream or one lzma-alone stream; liblzma keeps its own dictionary
 * (as large as the stream says, up to BOOT_XZ_MEMLIMIT). */
static int boot_unxz(struct boot_in *in, struct boot_out *o, bool alone)
{
	lzma_stream s = LZMA_STREAM_INIT;
	lzma_ret ret;
	int err = 0;

	ret = alone ? lzma_alone_decoder(&s, BOOT_XZ_MEMLIMIT) :
		      lzma_stream_decoder(&s, BOOT_XZ_MEMLIMIT, 0);
	if (ret != LZMA_OK)
		return ret == LZMA_MEM_ERROR ? -ENOMEM : -EINVAL;
	for (;;) {
		uint8_t *p;
		size_t room;

		err = in->n ? 0 : boot_in_fill(in, BOOT_IN_CHUNK);
		if (!err)
			err = boot_out_next(o, &p, &room);
		if (err)
			break;
		s.next_in = in->p;
		s.avail_in = in->n;
		s.next_out = p;
		s.avail_out = room;
		ret = lzma_code(&s, boot_in_left(in) == in->n ? LZMA_FINISH : LZMA_RUN);
		o->pos += room - s.avail_out;
		boot_in_skip(in, in->n - s.avail_in);
		if (ret == LZMA_STREAM_END)
			break;
		if (ret != LZMA_OK) {
			/* LZMA_BUF_ERROR: no progress with room left = truncated. */
			err = ret == LZMA_MEM_ERROR || ret == LZMA_MEMLIMIT_ERROR ? -ENOMEM :
										    -EINVAL;
			break;
		}
	}
	lzma_end(&s);
	return err;
}

/* One zstd frame (or skippable frame). Into a flat buffer the output is the
 * window (stable output buffer); elsewhere zstd keeps its own window. */
static int boot_unzstd(struct boot_in *in, struct boot_out *o)
{
	ZSTD_outBuffer zout = { o->flat, o->flat ? o->limit + 1 : 0, o->pos };
	ZSTD_DCtx *d = ZSTD_createDCtx();
	int err = 0;

	if (!d)
		return -ENOMEM;
	if (o->flat && ZSTD_isError(ZSTD_DCtx_setParameter(d, ZSTD_d_stableOutBuffer, 1)))
		err = -ENOMEM;
	while (!err) {
		ZSTD_inBuffer zin;
		size_t r, before;

		err = in->n ? 0 : boot_in_fill(in, BOOT_IN_CHUNK);
		if (!err && !o->flat) {
			uint8_t *p;

			err = boot_out_next(o, &p, &zout.size);
			zout.dst = p;
			zout.pos = 0;
		}
		if (err)
			break;
		zin = (ZSTD_inBuffer){ in->p, in->n, 0 };
		before = zout.pos;
		r = ZSTD_decompressStream(d, &zout, &zin);
		o->pos += zout.pos - before;
		boot_in_skip(in, zin.pos);
		if (ZSTD_isError(r)) {
			err = ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation ? -ENOMEM :
			      ZSTD_getErrorCode(r) == ZSTD_error_dstSize_tooSmall  ? -EFBIG :
										     -EINVAL;
			break;
		}
		if (r == 0)
			break;
		if (o->flat && zout.pos == zout.size)
			err = -EFBIG;
		else if (!in->n && !boot_in_left(in) && zout.pos < zout.size)
			err = -EINVAL;
	}
	ZSTD_freeDCtx(d);
	return err;
}

static int boot_unpack_one(enum boot_comp comp, struct boot_in *in, struct boot_out *o)
{
	switch (comp) {
	case BOOT_COMP_GZIP:
		return boot_ungzip(in, o);
	case BOOT_COMP_XZ:
		return boot_unxz(in, o, false);
	case BOOT_COMP_LZMA:
		return boot_unxz(in, o, true);
	case BOOT_COMP_ZSTD:
		return boot_unzstd(in, o);
	case BOOT_COMP_LZ4F:
		return boot_unlz4_frame(in, o);
	case BOOT_COMP_LZ4L:
		return boot_unlz4_legacy(in, o);
	case BOOT_COMP_NONE:
		break;
	}
	return -EINVAL;
}

/* Streams may follow each other (gzip members, zstd frames, xz streams, even
 * mixed), separated or followed by zero padding; anything else is corrupt. */
int boot_unpack(struct boot_in *in, struct boot_out *o)
{
	int err;

	while (boot_in_left(in)) {
		uint64_t left = boot_in_left(in);

		err = boot_in_fill(in, 8);
		if (!err)
			err = boot_unpack_one(boot_comp_detect(in->p, in->n), in, o);
		if (!err && boot_in_left(in) == left)
			err = -EINVAL;
		if (err)
			return err;
		for (;;) {
			err = in->n ? 0 : boot_in_fill(in, BOOT_IN_CHUNK);
			if (err)
				return err;
			if (!in->n || *in->p)
				break;
			boot_in_skip(in, 1);
		}
	}
	return o->pos > o->limit ? -EFBIG : 0;
}
