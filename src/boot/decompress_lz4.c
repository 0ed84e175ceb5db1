/* lz4 decompression: the frame format (LZ4F API) and the legacy format that
 * Linux uses for KERNEL_LZ4 and lz4 -l (lib/decompress_unlz4.c). Legacy
 * blocks are decoded here rather than by LZ4_decompress_safe, which needs a
 * whole 8 MiB block in one buffer: this decoder writes each byte where
 * struct boot_out sends it (a guest ELF segment, or a small ring for the
 * bytes between segments) and reads compressed input a chunk at a time. */
#include <errno.h>
#include <lz4.h>
#include <lz4frame.h>
#include <string.h>

#include "boot_priv.h"

#define BOOT_LZ4L_MAGIC 0x184c2102u
#define BOOT_LZ4L_BLOCK (8u << 20) /* uncompressed bytes per legacy block */

static uint32_t boot_le32(const uint8_t *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int boot_unlz4_frame(struct boot_in *in, struct boot_out *o)
{
	LZ4F_dctx *d;
	int err = 0;

	if (LZ4F_isError(LZ4F_createDecompressionContext(&d, LZ4F_VERSION)))
		return -ENOMEM;
	for (;;) {
		size_t room, back, src, dst, r;
		uint8_t *p;

		err = in->n ? 0 : boot_in_fill(in, BOOT_IN_CHUNK);
		if (!err)
			err = boot_out_room(o, o->pos, &p, &room, &back);
		if (err)
			break;
		src = in->n;
		dst = room;
		r = LZ4F_decompress(d, p, &dst, in->p, &src, NULL);
		if (LZ4F_isError(r)) {
			err = -EINVAL;
			break;
		}
		boot_in_skip(in, src);
		o->pos += dst;
		if (r == 0) /* end of frame: LZ4F stops there */
			break;
		if (!in->n && !boot_in_left(in) && dst < room) { /* wants input we do not have */
			err = -EINVAL;
			break;
		}
	}
	LZ4F_freeDecompressionContext(d);
	return err;
}

/* The output window of a block decoder: w is where o->pos goes, wend the end
 * of that contiguous buffer (never past the block), back the bytes before w
 * in it that this block already wrote or may reference. */
struct boot_lz4_win {
	uint8_t *w, *wend;
	size_t back;
	uint64_t bstart, bend;
};

static int boot_lz4_window(struct boot_out *o, struct boot_lz4_win *v)
{
	size_t len;
	int err = boot_out_room(o, o->pos, &v->w, &len, &v->back);

	if (err)
		return err;
	if (len > v->bend - o->pos)
		len = (size_t)(v->bend - o->pos);
	if (!len) /* the block would exceed 8 MiB */
		return -EINVAL;
	v->wend = v->w + len;
	return 0;
}

/* An extended length: bytes of 255 then a last one, within (c) bytes. */
static int boot_lz4_len(struct boot_in *in, uint64_t *c, size_t *len)
{
	unsigned b;

	do {
		if (!*c)
			return -EINVAL;
		if (!in->n && (boot_in_fill(in, BOOT_IN_CHUNK) || !in->n))
			return -EINVAL;
		b = *in->p;
		boot_in_skip(in, 1);
		(*c)--;
		*len += b;
		if (*len > 2 * BOOT_LZ4L_BLOCK)
			return -EINVAL;
	} while (b == 255);
	return 0;
}

static int boot_lz4_literals(struct boot_in *in, struct boot_out *o, struct boot_lz4_win *v,
			     uint64_t *c, size_t lit)
{
	int err;

	/* Most runs are short: one 16-byte copy, the excess is overwritten later. */
	if (lit <= 16 && in->n >= 16 && v->wend - v->w >= 16) {
		memcpy(v->w, in->p, 16);
		v->w += lit, v->back += lit, o->pos += lit, *c -= lit;
		boot_in_skip(in, lit);
		return 0;
	}
	while (lit) {
		size_t k;

		if (v->w == v->wend && (err = boot_lz4_window(o, v)))
			return err;
		if (!in->n && (boot_in_fill(in, BOOT_IN_CHUNK) || !in->n))
			return -EINVAL;
		k = lit;
		if (k > (size_t)(v->wend - v->w))
			k = (size_t)(v->wend - v->w);
		if (k > in->n)
			k = in->n;
		memcpy(v->w, in->p, k);
		boot_in_skip(in, k);
		v->w += k, v->back += k, o->pos += k, *c -= k, lit -= k;
	}
	return 0;
}

/* Copy (ml) bytes from (off) back. Within one buffer directly (the excess of
 * 16-byte copies is overwritten later; short distances double the copied
 * pattern); across buffers through boot_out_at, at most (off) at a time. */
static int boot_lz4_match(struct boot_out *o, struct boot_lz4_win *v, size_t off, size_t ml)
{
	int err;

	while (ml) {
		size_t room, k;

		if (v->w == v->wend && (err = boot_lz4_window(o, v)))
			return err;
		room = (size_t)(v->wend - v->w);
		k = ml < room ? ml : room;
		if (off <= v->back) {
			const uint8_t *s = v->w - off;

			if (off >= 16 && room >= k + 16) {
				for (size_t i = 0; i < k; i += 16)
					memcpy(v->w + i, s + i, 16);
			} else if (off >= k) {
				memcpy(v->w, s, k);
			} else {
				/* [s, w + done) repeats with period off and done
				 * stays a multiple of it: copy all of it again. */
				for (size_t done = 0; done < k;) {
					size_t n = off + done < k - done ? off + done : k - done;

					memcpy(v->w + done, s, n);
					done += n;
				}
			}
		} else {
			size_t sl;
			const uint8_t *s = boot_out_at(o, o->pos - off, &sl);

			if (k > sl)
				k = sl;
			if (k > off)
				k = off;
			memcpy(v->w, s, k);
		}
		v->w += k, v->back += k, o->pos += k, ml -= k;
	}
	return 0;
}

/* Whole sequences while input and output are far from every end: pointers
 * in registers, 16-byte copies. Stops before a sequence it cannot finish
 * that way (the careful path below does it); never takes the block's last
 * 32 bytes, so the last sequence (literals only) is left to it too. */
static void boot_lz4_fast(struct boot_in *in, struct boot_out *o, struct boot_lz4_win *v,
			  uint64_t *c)
{
	const uint8_t *ip = in->p, *ilim;
	uint8_t *w = v->w, *wlim = v->wend - 32;
	uint8_t *wbase = w - (v->back < o->pos - v->bstart ? v->back : o->pos - v->bstart);

	ilim = in->p + (in->n < *c ? in->n : *c) - 32;
	while (ip < ilim && w < wlim) {
		const uint8_t *seq = ip;
		size_t lit, ml, off;
		unsigned token = *ip++, b;

		lit = token >> 4;
		if (lit == 15) {
			do {
				if (ip >= ilim)
					goto stop;
				b = *ip++;
				lit += b;
			} while (b == 255);
		}
		if (lit > (size_t)(ilim - ip) || lit > (size_t)(wlim - w))
			goto stop;
		for (size_t i = 0; i < lit; i += 16)
			memcpy(w + i, ip + i, 16);
		ip += lit;
		off = ip[0] | (size_t)ip[1] << 8;
		ip += 2;
		ml = token & 15;
		if (ml == 15) {
			do {
				if (ip >= ilim)
					goto stop_lit;
				b = *ip++;
				ml += b;
			} while (b == 255);
		}
		ml += 4;
		if (!off || off > (size_t)(w + lit - wbase) || ml > (size_t)(wlim - (w + lit)))
			goto stop_lit;
		w += lit;
		if (off >= 16) {
			for (size_t i = 0; i < ml; i += 16)
				memcpy(w + i, w - off + i, 16);
		} else {
			for (size_t done = 0; done < ml;) {
				size_t n = off + done < ml - done ? off + done : ml - done;

				memcpy(w + done, w - off, n);
				done += n;
			}
		}
		w += ml;
		continue;
stop_lit:
		/* Literals were copied, the match is for the careful path: redo it all. */
stop:
		ip = seq;
		break;
	}
	*c -= (uint64_t)(ip - in->p);
	boot_in_skip(in, (size_t)(ip - in->p));
	o->pos += (uint64_t)(w - v->w);
	v->back += (size_t)(w - v->w);
	v->w = w;
}

/* One legacy block of (csize) compressed bytes: sequences of literals and a
 * match, the last one literals only. Blocks are independent: a match never
 * reaches before the block's first byte. */
static int boot_lz4_block(struct boot_in *in, uint32_t csize, struct boot_out *o)
{
	struct boot_lz4_win v = { .bstart = o->pos, .bend = o->pos + BOOT_LZ4L_BLOCK };
	uint64_t c = csize;
	int err;

	for (;;) {
		size_t lit, ml, off;
		unsigned token;

		if (in->n < 4096 && in->n < c && (err = boot_in_fill(in, BOOT_IN_CHUNK)))
			return err;
		if (v.w && v.wend - v.w > 64 && in->n > 64 && c > 64)
			boot_lz4_fast(in, o, &v, &c);
		if (in->n < 32 && in->n < c && (err = boot_in_fill(in, BOOT_IN_CHUNK)))
			return err;
		if (!c || !in->n)
			return -EINVAL;
		token = *in->p;
		boot_in_skip(in, 1);
		c--;
		lit = token >> 4;
		if (lit == 15 && (err = boot_lz4_len(in, &c, &lit)))
			return err;
		if (lit > c)
			return -EINVAL;
		if (lit && (err = boot_lz4_literals(in, o, &v, &c, lit)))
			return err;
		if (!c)
			return 0;
		if (c < 2 || (in->n < 2 && (err = boot_in_fill(in, 2))) || in->n < 2)
			return err ? err : -EINVAL;
		off = in->p[0] | (size_t)in->p[1] << 8;
		boot_in_skip(in, 2);
		c -= 2;
		if (!off || off > o->pos - v.bstart)
			return -EINVAL;
		ml = token & 15;
		if (ml == 15 && (err = boot_lz4_len(in, &c, &ml)))
			return err;
		if ((err = boot_lz4_match(o, &v, off, ml + 4)))
			return err;
	}
}

/* [magic] then blocks of [le32 compressed size][data], up to the end of the
 * input, a zero size (padding) or the magic again (next stream). */
int boot_unlz4_legacy(struct boot_in *in, struct boot_out *o)
{
	int err;

	boot_in_skip(in, 4);
	while (boot_in_left(in) >= 4) {
		uint32_t csize;

		if ((err = boot_in_fill(in, 4)))
			return err;
		csize = boot_le32(in->p);
		if (csize == BOOT_LZ4L_MAGIC) {
			boot_in_skip(in, 4);
			continue;
		}
		if (csize == 0)
			break;
		if (csize > boot_in_left(in) - 4 ||
		    csize > (uint32_t)LZ4_compressBound(BOOT_LZ4L_BLOCK))
			return -EINVAL;
		boot_in_skip(in, 4);
		if ((err = boot_lz4_block(in, csize, o)))
			return err;
	}
	return 0;
}
