/* lz4 decompression: the frame format (LZ4F API) and the legacy format that
 * Linux uses for KERNEL_LZ4 and lz4 -l (lib/decompress_unlz4.c). */
#include <errno.h>
#include <lz4.h>
#include <lz4frame.h>
#include <stdlib.h>
#include <string.h>

#include "boot_priv.h"

#define BOOT_LZ4L_MAGIC 0x184c2102u
#define BOOT_LZ4L_BLOCK (8u << 20) /* uncompressed bytes per legacy block */

static uint32_t boot_le32(const uint8_t *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int boot_unlz4_frame(const uint8_t *in, size_t len, struct boot_obuf *o, size_t *used)
{
	LZ4F_dctx *d;
	size_t pos = 0;
	int err = 0;

	if (LZ4F_isError(LZ4F_createDecompressionContext(&d, LZ4F_VERSION)))
		return -ENOMEM;
	for (;;) {
		size_t room, src = len - pos, dst, r;

		err = boot_obuf_grow(o);
		if (err)
			break;
		room = dst = o->cap - o->len;
		r = LZ4F_decompress(d, o->p + o->len, &dst, in + pos, &src, NULL);
		if (LZ4F_isError(r)) {
			err = -EINVAL;
			break;
		}
		pos += src;
		o->len += dst;
		if (r == 0) /* end of frame: LZ4F stops there */
			break;
		if (pos == len && dst < room) { /* wants input we do not have */
			err = -EINVAL;
			break;
		}
	}
	LZ4F_freeDecompressionContext(d);
	*used = pos;
	return err;
}

/* Decode one legacy block of (csize) bytes. Near the output limit, decode
 * into a scratch block so that "too big" is told apart from "corrupt". */
static int boot_unlz4_block(const uint8_t *src, uint32_t csize, struct boot_obuf *o)
{
	uint8_t *tmp;
	int n, err;

	err = boot_obuf_reserve(o, BOOT_LZ4L_BLOCK);
	if (err)
		return err;
	if (o->cap - o->len >= BOOT_LZ4L_BLOCK) {
		n = LZ4_decompress_safe((const char *)src, (char *)o->p + o->len, (int)csize,
					BOOT_LZ4L_BLOCK);
		if (n < 0)
			return -EINVAL;
		o->len += (size_t)n;
		return 0;
	}
	tmp = malloc(BOOT_LZ4L_BLOCK);
	if (!tmp)
		return -ENOMEM;
	n = LZ4_decompress_safe((const char *)src, (char *)tmp, (int)csize, BOOT_LZ4L_BLOCK);
	err = n < 0 ? -EINVAL : (size_t)n > o->cap - o->len ? -EFBIG : 0;
	if (!err) {
		memcpy(o->p + o->len, tmp, (size_t)n);
		o->len += (size_t)n;
	}
	free(tmp);
	return err;
}

/* [magic] then blocks of [le32 compressed size][data], up to the end of the
 * input, a zero size (padding) or the magic again (next stream). */
int boot_unlz4_legacy(const uint8_t *in, size_t len, struct boot_obuf *o, size_t *used)
{
	size_t pos = 4;
	int err = 0;

	while (len - pos >= 4) {
		uint32_t csize = boot_le32(in + pos);

		if (csize == BOOT_LZ4L_MAGIC) {
			pos += 4;
			continue;
		}
		if (csize == 0)
			break;
		if (csize > len - pos - 4 || csize > (uint32_t)LZ4_compressBound(BOOT_LZ4L_BLOCK)) {
			err = -EINVAL;
			break;
		}
		err = boot_unlz4_block(in + pos + 4, csize, o);
		if (err)
			break;
		pos += 4 + csize;
	}
	*used = pos;
	return err;
}
