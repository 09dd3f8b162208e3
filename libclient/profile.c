// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Access profiles: the order in which deployments of a version first
 * touched its chunks (the module's GET_ACCESS), merged over deployments,
 * stored as an object on the chunk servers and named by the version
 * server (version_info.profile). Learned prefetch follows it.
 *
 * Object layout, little-endian:
 *
 *   "VMIRPRF1"  u32 deployments  u32 n  u64 nchunks  u64 ctime_ns
 *   n x { u32 chunk, u32 score }
 *
 * score is the chunk's mean first-access rank times VMIR_PROFILE_SCALE;
 * entries are sorted by score, then chunk, and name distinct chunks below
 * nchunks. The order of the entries is the prefetch order.
 *
 * Merging a new deployment's order into a profile of d deployments
 * weighs the profile min(d, VMIR_PROFILE_WEIGHT_MAX) to 1: a running mean
 * of the rank over about the last VMIR_PROFILE_WEIGHT_MAX + 1
 * deployments, so a changed boot takes over within a few deployments. A
 * chunk missing from one side ranks at that side's end.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "libvmir_priv.h"
#include "vmir_proto.h"

static const char profile_magic[8] = "VMIRPRF1";

#define PROFILE_HDR_LEN		32
#define PROFILE_ENT_LEN		8

size_t vmir_profile_encoded_len(size_t n)
{
	return PROFILE_HDR_LEN + n * PROFILE_ENT_LEN;
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

void vmir_profile_encode(const struct vmir_profile_data *pd, uint8_t *out)
{
	memcpy(out, profile_magic, sizeof(profile_magic));
	put32(out + 8, pd->deployments);
	put32(out + 12, (uint32_t)pd->n);
	put64(out + 16, pd->nchunks);
	put64(out + 24, pd->ctime_ns);
	out += PROFILE_HDR_LEN;
	for (size_t i = 0; i < pd->n; i++, out += PROFILE_ENT_LEN) {
		put32(out, pd->ent[i].chunk);
		put32(out + 4, pd->ent[i].score);
	}
}

void vmir_profile_data_free(struct vmir_profile_data *pd)
{
	free(pd->ent);
	memset(pd, 0, sizeof(*pd));
}

/* a bitmap of nchunks bits, for the distinctness checks */
static uint64_t *chunk_set_new(uint64_t nchunks)
{
	return calloc((nchunks + 63) / 64 ? (nchunks + 63) / 64 : 1,
		      sizeof(uint64_t));
}

static bool chunk_set_add(uint64_t *set, uint32_t chunk)
{
	uint64_t bit = 1ull << (chunk % 64);

	if (set[chunk / 64] & bit)
		return false;
	set[chunk / 64] |= bit;
	return true;
}

int vmir_profile_decode(const void *buf, size_t len,
			struct vmir_profile_data *pd, const char **why)
{
	const uint8_t *p = buf;
	uint64_t *seen = NULL;
	size_t n;

	memset(pd, 0, sizeof(*pd));
	if (len < PROFILE_HDR_LEN ||
	    memcmp(p, profile_magic, sizeof(profile_magic))) {
		*why = "not a profile (bad magic or too short)";
		return -EBADMSG;
	}
	n = get32(p + 12);
	pd->deployments = get32(p + 8);
	pd->nchunks = get64(p + 16);
	pd->ctime_ns = get64(p + 24);
	if (len != vmir_profile_encoded_len(n)) {
		*why = "its length does not match its entry count";
		return -EBADMSG;
	}
	if (!pd->deployments || n > VMIR_ACCESS_MAX ||
	    pd->nchunks > VMIR_MAX_CHUNKS || n > pd->nchunks) {
		*why = "a header field is out of range";
		return -EBADMSG;
	}
	pd->ent = calloc(n ? n : 1, sizeof(*pd->ent));
	seen = chunk_set_new(pd->nchunks);
	if (!pd->ent || !seen) {
		free(seen);
		vmir_profile_data_free(pd);
		*why = "out of memory";
		return -ENOMEM;
	}
	p += PROFILE_HDR_LEN;
	for (size_t i = 0; i < n; i++, p += PROFILE_ENT_LEN) {
		struct vmir_profile_ent *e = &pd->ent[i];

		e->chunk = get32(p);
		e->score = get32(p + 4);
		if (e->chunk >= pd->nchunks || !chunk_set_add(seen, e->chunk)) {
			*why = "an entry names a chunk twice or past the end";
			goto out_bad;
		}
		if (i && (e->score < e[-1].score ||
			  (e->score == e[-1].score && e->chunk < e[-1].chunk))) {
			*why = "the entries are not in order";
			goto out_bad;
		}
	}
	pd->n = n;
	free(seen);
	return 0;

out_bad:
	free(seen);
	vmir_profile_data_free(pd);
	return -EBADMSG;
}

static int ent_cmp(const void *a, const void *b)
{
	const struct vmir_profile_ent *x = a, *y = b;

	if (x->score != y->score)
		return x->score < y->score ? -1 : 1;
	return x->chunk < y->chunk ? -1 : x->chunk > y->chunk;
}

int vmir_profile_merge(const struct vmir_profile_data *old,
		       const uint32_t *order, size_t n, uint64_t nchunks,
		       uint64_t now_ns, struct vmir_profile_data *out)
{
	uint64_t w = 0, end_old = 0, end_new = n;
	uint32_t *rank_new = NULL;
	uint64_t *seen = NULL;
	size_t cap, m = 0;
	int ret = -ENOMEM;

	memset(out, 0, sizeof(*out));
	if (nchunks > VMIR_MAX_CHUNKS || n > VMIR_ACCESS_MAX)
		return -EINVAL;
	if (old && old->n) {
		w = old->deployments < VMIR_PROFILE_WEIGHT_MAX ?
		    old->deployments : VMIR_PROFILE_WEIGHT_MAX;
		end_old = old->n;
	}
	cap = n + (old ? old->n : 0);
	out->ent = calloc(cap ? cap : 1, sizeof(*out->ent));
	seen = chunk_set_new(nchunks);
	/* rank in the new order, + 1 (0: absent) */
	rank_new = calloc(nchunks ? nchunks : 1, sizeof(*rank_new));
	if (!out->ent || !seen || !rank_new)
		goto out_free;
	for (size_t i = 0; i < n; i++) {
		if (order[i] >= nchunks || rank_new[order[i]]) {
			ret = -EINVAL;
			goto out_free;
		}
		rank_new[order[i]] = (uint32_t)i + 1;
	}
	/* the profile's chunks, in its order; those past nchunks are dropped */
	for (size_t i = 0; old && i < old->n; i++) {
		uint32_t c = old->ent[i].chunk;
		uint64_t rn;

		if (c >= nchunks)
			continue;
		rn = rank_new[c] ? rank_new[c] - 1 : end_new;
		chunk_set_add(seen, c);
		out->ent[m].chunk = c;
		out->ent[m++].score = (uint32_t)((w * old->ent[i].score +
			rn * VMIR_PROFILE_SCALE) / (w + 1));
	}
	/* chunks only the new order has */
	for (size_t i = 0; i < n; i++) {
		if (!chunk_set_add(seen, order[i]))
			continue;
		out->ent[m].chunk = order[i];
		out->ent[m++].score = (uint32_t)((w * end_old *
			VMIR_PROFILE_SCALE + i * VMIR_PROFILE_SCALE) / (w + 1));
	}
	qsort(out->ent, m, sizeof(*out->ent), ent_cmp);
	out->n = m < VMIR_ACCESS_MAX ? m : VMIR_ACCESS_MAX;
	out->deployments = old && old->n ? old->deployments : 0;
	if (out->deployments < UINT32_MAX)
		out->deployments++;
	out->nchunks = nchunks;
	out->ctime_ns = now_ns;
	ret = 0;

out_free:
	free(rank_new);
	free(seen);
	if (ret)
		vmir_profile_data_free(out);
	return ret;
}
