// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Compressed objects (zstd). An object travels and rests compressed when
 * that saves at least an eighth of it; its id stays the hash of the
 * uncompressed content, so a reader unpacks first and verifies after.
 * Every thread keeps its own compression and decompression contexts (and
 * a scratch buffer), made on first use and freed when the thread ends.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "vmir_util.h"

struct zpack_tls {
	ZSTD_CCtx *cctx;
	ZSTD_DCtx *dctx;
	void *scratch;
	size_t scratch_cap;
};

static pthread_key_t zpack_key;
static pthread_once_t zpack_once = PTHREAD_ONCE_INIT;
static bool zpack_key_ok;

static void zpack_tls_free(void *p)
{
	struct zpack_tls *t = p;

	ZSTD_freeCCtx(t->cctx);
	ZSTD_freeDCtx(t->dctx);
	free(t->scratch);
	free(t);
}

static void zpack_key_init(void)
{
	zpack_key_ok = pthread_key_create(&zpack_key, zpack_tls_free) == 0;
}

static struct zpack_tls *zpack_tls(void)
{
	struct zpack_tls *t;

	pthread_once(&zpack_once, zpack_key_init);
	if (!zpack_key_ok)
		return NULL;
	t = pthread_getspecific(zpack_key);
	if (t)
		return t;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	if (pthread_setspecific(zpack_key, t)) {
		free(t);
		return NULL;
	}
	return t;
}

/* t's scratch buffer with room for len bytes */
static void *zpack_scratch(struct zpack_tls *t, size_t len)
{
	void *p;

	if (t->scratch_cap >= len)
		return t->scratch;
	p = realloc(t->scratch, len);
	if (!p)
		return NULL;
	t->scratch = p;
	t->scratch_cap = len;
	return p;
}

uint32_t vmir_zpack(const void *src, uint32_t len, void **out)
{
	size_t bound = ZSTD_compressBound(len), n;
	uint32_t want = len - len / 8;
	struct zpack_tls *t = zpack_tls();
	void *dst;

	*out = NULL;
	if (!t || len < 64)
		return 0;
	if (!t->cctx) {
		t->cctx = ZSTD_createCCtx();
		if (!t->cctx)
			return 0;
		ZSTD_CCtx_setParameter(t->cctx, ZSTD_c_compressionLevel,
				       VMIR_ZSTD_LEVEL);
		/* the id already guards the content: no checksum, no dict */
		ZSTD_CCtx_setParameter(t->cctx, ZSTD_c_checksumFlag, 0);
		ZSTD_CCtx_setParameter(t->cctx, ZSTD_c_contentSizeFlag, 1);
	}
	dst = zpack_scratch(t, bound);
	if (!dst)
		return 0;
	n = ZSTD_compress2(t->cctx, dst, bound, src, len);
	if (ZSTD_isError(n) || n > want)
		return 0;
	*out = malloc(n);
	if (!*out)
		return 0;
	memcpy(*out, dst, n);
	return (uint32_t)n;
}

int64_t vmir_zunpack(void *dst, uint32_t cap, const void *src, uint32_t len)
{
	unsigned long long content = ZSTD_getFrameContentSize(src, len);
	struct zpack_tls *t = zpack_tls();
	size_t n;

	/* a frame must say its size, and fit: else it is not one of ours */
	if (content == ZSTD_CONTENTSIZE_UNKNOWN ||
	    content == ZSTD_CONTENTSIZE_ERROR || content > cap ||
	    content <= len)
		return -EBADMSG;
	if (!t)
		return -ENOMEM;
	if (!t->dctx) {
		t->dctx = ZSTD_createDCtx();
		if (!t->dctx)
			return -ENOMEM;
	}
	n = ZSTD_decompressDCtx(t->dctx, dst, cap, src, len);
	if (ZSTD_isError(n) || n != content)
		return -EBADMSG;
	return (int64_t)n;
}

int64_t vmir_zunpack_inplace(void *buf, uint32_t cap, uint32_t len)
{
	struct zpack_tls *t = zpack_tls();
	void *copy;

	if (!t)
		return -ENOMEM;
	copy = zpack_scratch(t, len);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, buf, len);
	return vmir_zunpack(buf, cap, copy, len);
}
