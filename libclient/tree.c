// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Segment tree over an image version's chunks (see vmir_tree.h).
 *
 * In memory, level 0 is the array of chunk ids and level L (1..depth) the
 * array of node ids of that level: level L has ceil(n(L-1) / FANOUT)
 * entries and the top level exactly one, the root. Node i of level L
 * covers entries [i * FANOUT, min((i + 1) * FANOUT, n(L-1))) of level L-1.
 *
 * Every node level has a dirty bitmap. Setting a leaf marks the nodes on
 * its path; a dirty node always has dirty ancestors, so marking stops at
 * the first node already dirty. Invariant: every non-zero node id held in
 * a level array names an object that exists in the store (it was emitted
 * by a successful commit, fetched by a load, or copied from such a tree),
 * so a commit emits a recomputed node only when its id differs from the
 * one held at that position.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmir_tree.h"

_Static_assert(VMIR_TREE_FANOUT >= 2 && VMIR_TREE_FANOUT <= 0xffff,
	       "fanout must fit the u16 count field");

/* FANOUT >= 2, so no tree over a u64 chunk count is deeper than this */
#define TREE_DEPTH_MAX	64

struct tree_level {
	uint64_t n;		/* entries */
	struct vmir_id *ids;
	uint64_t *dirty;	/* node levels only: one bit per entry */
};

struct vmir_tree {
	uint64_t nchunks;
	unsigned int depth;
	struct vmir_id root;	/* as of the last commit or load */
	struct tree_level *lv;	/* depth + 1 levels, 0 = leaves */
};

static const struct vmir_id zero_id;

unsigned int vmir_tree_depth(uint64_t nchunks)
{
	uint64_t cover = VMIR_TREE_FANOUT;
	unsigned int d = 1;

	while (cover < nchunks) {
		d++;
		if (cover > UINT64_MAX / VMIR_TREE_FANOUT)
			break;		/* FANOUT^d exceeds every u64 */
		cover *= VMIR_TREE_FANOUT;
	}
	return d;
}

static uint64_t div_up(uint64_t a, uint64_t b)
{
	return a / b + (a % b != 0);
}

/* entries per level for nchunks, levels 0..depth */
static unsigned int tree_shape(uint64_t nchunks, uint64_t *n)
{
	unsigned int depth = vmir_tree_depth(nchunks);
	unsigned int l;

	n[0] = nchunks;
	for (l = 1; l <= depth; l++)
		n[l] = div_up(n[l - 1], VMIR_TREE_FANOUT);
	return depth;
}

/* children covered by node i of a level whose lower level has nlow entries */
static unsigned int node_count(uint64_t nlow, uint64_t i)
{
	uint64_t left = nlow - i * VMIR_TREE_FANOUT;

	return left < VMIR_TREE_FANOUT ? (unsigned int)left : VMIR_TREE_FANOUT;
}

static size_t bitmap_words(uint64_t bits)
{
	return (size_t)div_up(bits, 64);
}

static void bit_set(uint64_t *map, uint64_t i)
{
	map[i / 64] |= 1ull << (i % 64);
}

static bool bit_test(const uint64_t *map, uint64_t i)
{
	return map[i / 64] & (1ull << (i % 64));
}

static void free_levels(struct vmir_tree *t)
{
	unsigned int l;

	if (!t->lv)
		return;
	for (l = 0; l <= t->depth; l++) {
		free(t->lv[l].ids);
		free(t->lv[l].dirty);
	}
	free(t->lv);
	t->lv = NULL;
}

void vmir_tree_free(struct vmir_tree *t)
{
	if (!t)
		return;
	free_levels(t);
	free(t);
}

/* an all-zero tree of the right shape: every id zero, nothing dirty */
static int tree_alloc(uint64_t nchunks, struct vmir_tree **tp)
{
	uint64_t n[TREE_DEPTH_MAX + 1];
	struct vmir_tree *t;
	unsigned int depth, l;

	if (nchunks == 0)
		return -EINVAL;
	if (nchunks > SIZE_MAX / sizeof(struct vmir_id))
		return -ENOMEM;
	depth = tree_shape(nchunks, n);
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->nchunks = nchunks;
	t->depth = depth;
	t->lv = calloc(depth + 1, sizeof(t->lv[0]));
	if (!t->lv)
		goto out_free;
	for (l = 0; l <= depth; l++) {
		t->lv[l].n = n[l];
		t->lv[l].ids = calloc(n[l], sizeof(struct vmir_id));
		if (!t->lv[l].ids)
			goto out_free;
		if (l == 0)
			continue;
		t->lv[l].dirty = calloc(bitmap_words(n[l]), sizeof(uint64_t));
		if (!t->lv[l].dirty)
			goto out_free;
	}
	*tp = t;
	return 0;

out_free:
	vmir_tree_free(t);
	return -ENOMEM;
}

struct vmir_tree *vmir_tree_new(uint64_t nchunks)
{
	struct vmir_tree *t;
	int ret;

	ret = tree_alloc(nchunks, &t);
	if (ret) {
		errno = -ret;
		return NULL;
	}
	return t;
}

struct vmir_tree *vmir_tree_dup(const struct vmir_tree *t)
{
	struct vmir_tree *c;
	unsigned int l;
	int ret;

	ret = tree_alloc(t->nchunks, &c);
	if (ret) {
		errno = -ret;
		return NULL;
	}
	c->root = t->root;
	for (l = 0; l <= t->depth; l++) {
		memcpy(c->lv[l].ids, t->lv[l].ids,
		       t->lv[l].n * sizeof(struct vmir_id));
		if (l)
			memcpy(c->lv[l].dirty, t->lv[l].dirty,
			       bitmap_words(t->lv[l].n) * sizeof(uint64_t));
	}
	return c;
}

uint64_t vmir_tree_nchunks(const struct vmir_tree *t)
{
	return t->nchunks;
}

const struct vmir_id *vmir_tree_leaf(const struct vmir_tree *t, uint64_t idx)
{
	if (idx >= t->nchunks)
		return NULL;
	return &t->lv[0].ids[idx];
}

/* mark the nodes above entry idx of level 0 dirty, up to a dirty one */
static void mark_path(struct vmir_tree *t, uint64_t idx)
{
	unsigned int l;

	for (l = 1; l <= t->depth; l++) {
		idx /= VMIR_TREE_FANOUT;
		if (bit_test(t->lv[l].dirty, idx))
			return;
		bit_set(t->lv[l].dirty, idx);
	}
}

int vmir_tree_set_leaf(struct vmir_tree *t, uint64_t idx,
		       const struct vmir_id *id)
{
	if (idx >= t->nchunks)
		return -ERANGE;
	if (vmir_id_eq(&t->lv[0].ids[idx], id))
		return 0;
	t->lv[0].ids[idx] = *id;
	mark_path(t, idx);
	return 0;
}

const struct vmir_id *vmir_tree_root(const struct vmir_tree *t)
{
	return &t->root;
}

int vmir_tree_resize(struct vmir_tree *t, uint64_t nchunks)
{
	struct vmir_tree *nt;
	unsigned int l, common;
	uint64_t keep, i;
	int ret;

	if (nchunks == t->nchunks)
		return 0;
	ret = tree_alloc(nchunks, &nt);
	if (ret)
		return ret;
	/*
	 * Keep the old ids wherever a position exists in both shapes: node
	 * ids are only compared with the recomputed ones at the next commit,
	 * to skip emitting nodes the store already holds.
	 */
	common = t->depth < nt->depth ? t->depth : nt->depth;
	for (l = 0; l <= common; l++) {
		keep = t->lv[l].n < nt->lv[l].n ? t->lv[l].n : nt->lv[l].n;
		memcpy(nt->lv[l].ids, t->lv[l].ids,
		       keep * sizeof(struct vmir_id));
	}
	for (l = 1; l <= nt->depth; l++)
		for (i = 0; i < nt->lv[l].n; i++)
			bit_set(nt->lv[l].dirty, i);

	free_levels(t);
	t->nchunks = nt->nchunks;
	t->depth = nt->depth;
	t->lv = nt->lv;
	nt->lv = NULL;
	vmir_tree_free(nt);
	return 0;
}

/* deepest level any tree over a u64 chunk count has */
static unsigned int level_max(void)
{
	return vmir_tree_depth(UINT64_MAX);
}

size_t vmir_tree_node_encode(unsigned int level, const struct vmir_id *ids,
			     unsigned int count, void *out)
{
	uint8_t *p = out;

	if (level < 1 || level > level_max() || count < 1 ||
	    count > VMIR_TREE_FANOUT)
		return 0;
	p[0] = VMIR_TREE_MAGIC & 0xff;
	p[1] = (VMIR_TREE_MAGIC >> 8) & 0xff;
	p[2] = (VMIR_TREE_MAGIC >> 16) & 0xff;
	p[3] = VMIR_TREE_MAGIC >> 24;
	p[4] = VMIR_TREE_FORMAT;
	p[5] = level;
	p[6] = count & 0xff;
	p[7] = count >> 8;
	memcpy(p + VMIR_TREE_HDR_LEN, ids, (size_t)count * VMIR_ID_LEN);
	return VMIR_TREE_HDR_LEN + (size_t)count * VMIR_ID_LEN;
}

int vmir_tree_node_decode(const void *buf, size_t len, unsigned int *level,
			  struct vmir_id *ids, unsigned int *count)
{
	const uint8_t *p = buf;
	unsigned int lvl, cnt;
	uint32_t magic;

	if (len < VMIR_TREE_HDR_LEN)
		return -EBADMSG;
	magic = p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
	if (magic != VMIR_TREE_MAGIC || p[4] != VMIR_TREE_FORMAT)
		return -EBADMSG;
	lvl = p[5];
	cnt = p[6] | p[7] << 8;
	if (lvl < 1 || lvl > level_max())
		return -EBADMSG;
	if (cnt < 1 || cnt > VMIR_TREE_FANOUT ||
	    len != VMIR_TREE_HDR_LEN + (size_t)cnt * VMIR_ID_LEN)
		return -EBADMSG;
	memcpy(ids, p + VMIR_TREE_HDR_LEN, (size_t)cnt * VMIR_ID_LEN);
	*level = lvl;
	*count = cnt;
	return 0;
}

/* recompute node i of level l from level l - 1 into *id */
static void node_compute(const struct vmir_tree *t, unsigned int l,
			 uint64_t i, uint8_t *buf, struct vmir_id *id)
{
	const struct vmir_id *kids = &t->lv[l - 1].ids[i * VMIR_TREE_FANOUT];
	unsigned int cnt = node_count(t->lv[l - 1].n, i);
	unsigned int k;
	size_t len;

	for (k = 0; k < cnt; k++)
		if (!vmir_id_is_zero(&kids[k]))
			break;
	if (k == cnt) {
		*id = zero_id;
		return;
	}
	len = vmir_tree_node_encode(l, kids, cnt, buf);
	vmir_id_of(buf, len, id);
}

/*
 * A node's dirty bit is cleared only once its new id is in place (and was
 * emitted if new), so a commit aborted by emit leaves a tree that the next
 * commit completes: lower levels done, the rest still dirty.
 */
int vmir_tree_commit(struct vmir_tree *t, vmir_tree_emit_fn emit, void *arg)
{
	uint8_t buf[VMIR_TREE_NODE_MAX];
	struct vmir_id id;
	unsigned int l;
	uint64_t w, i, word;
	size_t len;
	int ret;

	for (l = 1; l <= t->depth; l++) {
		struct tree_level *lv = &t->lv[l];

		for (w = 0; w < bitmap_words(lv->n); w++) {
			while ((word = lv->dirty[w])) {
				i = w * 64 + __builtin_ctzll(word);
				node_compute(t, l, i, buf, &id);
				if (!vmir_id_eq(&id, &lv->ids[i]) &&
				    !vmir_id_is_zero(&id)) {
					len = VMIR_TREE_HDR_LEN +
					      (size_t)node_count(t->lv[l - 1].n,
								 i) *
					      VMIR_ID_LEN;
					ret = emit(arg, &id, buf, len);
					if (ret)
						return ret;
				}
				lv->ids[i] = id;
				lv->dirty[w] = word & (word - 1);
			}
		}
	}
	t->root = t->lv[t->depth].ids[0];
	return 0;
}

/* fetch ret 0 means success; anything else is passed on as -errno */
static int fetch_err(int ret)
{
	return ret < 0 ? ret : -EIO;
}

/* check fetched bytes are the node id at level, with count children */
static int node_check(const struct vmir_id *id, const void *buf, size_t len,
		      unsigned int level, struct vmir_id *kids,
		      unsigned int *count)
{
	struct vmir_id got;
	unsigned int lvl;
	int ret;

	if (len > VMIR_TREE_NODE_MAX)
		return -EBADMSG;
	vmir_id_of(buf, len, &got);
	if (!vmir_id_eq(&got, id))
		return -EIO;
	ret = vmir_tree_node_decode(buf, len, &lvl, kids, count);
	if (ret)
		return ret;
	if (lvl != level)
		return -EBADMSG;
	return 0;
}

struct load_ref {
	struct vmir_id id;
	uint64_t pos;
};

static int load_ref_cmp(const void *a, const void *b)
{
	const struct load_ref *x = a, *y = b;
	int c = memcmp(&x->id, &y->id, sizeof(x->id));

	if (c)
		return c;
	return (x->pos > y->pos) - (x->pos < y->pos);
}

/*
 * A load in progress: the tree being filled from the top, and the level
 * whose nodes are being fetched (its distinct non-zero ids, the buffers
 * they land in, and where each one is used).
 */
struct vmir_tree_loader {
	struct vmir_tree *t;
	unsigned int level;		/* being fetched; 0: done */
	struct load_ref *refs;
	size_t nref;
	struct vmir_id *ids;
	void **bufs;
	size_t *lens;
	uint8_t *data;
	size_t nid;
};

static void loader_level_free(struct vmir_tree_loader *ld)
{
	free(ld->data);
	free(ld->lens);
	free(ld->bufs);
	free(ld->ids);
	free(ld->refs);
	ld->data = NULL;
	ld->lens = NULL;
	ld->bufs = NULL;
	ld->ids = NULL;
	ld->refs = NULL;
	ld->nref = 0;
	ld->nid = 0;
}

/*
 * Set up the fetch of the level below the last one filled: its distinct
 * non-zero ids, each once. Levels whose ids are all zero need no fetch and
 * are passed over.
 */
static int loader_prepare(struct vmir_tree_loader *ld)
{
	struct vmir_tree *t = ld->t;
	struct tree_level *lv;
	size_t r, u;
	uint64_t i;

	loader_level_free(ld);
	for (; ld->level >= 1; ld->level--) {
		lv = &t->lv[ld->level];
		ld->refs = malloc((lv->n ? lv->n : 1) * sizeof(*ld->refs));
		if (!ld->refs)
			return -ENOMEM;
		for (i = 0; i < lv->n; i++) {
			if (vmir_id_is_zero(&lv->ids[i]))
				continue;
			ld->refs[ld->nref].id = lv->ids[i];
			ld->refs[ld->nref].pos = i;
			ld->nref++;
		}
		if (ld->nref)
			break;
		free(ld->refs);
		ld->refs = NULL;
	}
	if (!ld->level)
		return 0;
	qsort(ld->refs, ld->nref, sizeof(*ld->refs), load_ref_cmp);
	ld->ids = malloc(ld->nref * sizeof(*ld->ids));
	ld->bufs = malloc(ld->nref * sizeof(*ld->bufs));
	ld->lens = calloc(ld->nref, sizeof(*ld->lens));
	if (!ld->ids || !ld->bufs || !ld->lens)
		return -ENOMEM;
	for (r = 0; r < ld->nref; r++)
		if (!ld->nid || !vmir_id_eq(&ld->refs[r].id,
					    &ld->ids[ld->nid - 1]))
			ld->ids[ld->nid++] = ld->refs[r].id;
	ld->data = malloc(ld->nid * VMIR_TREE_NODE_MAX);
	if (!ld->data)
		return -ENOMEM;
	for (u = 0; u < ld->nid; u++)
		ld->bufs[u] = ld->data + u * VMIR_TREE_NODE_MAX;
	return 0;
}

int vmir_tree_loader_new(const struct vmir_id *root, uint64_t nchunks,
			 struct vmir_tree_loader **ldp)
{
	struct vmir_tree_loader *ld;
	int ret;

	ld = calloc(1, sizeof(*ld));
	if (!ld)
		return -ENOMEM;
	ret = tree_alloc(nchunks, &ld->t);
	if (ret)
		goto out_free;
	ld->t->root = *root;
	ld->t->lv[ld->t->depth].ids[0] = *root;
	ld->level = ld->t->depth;
	ret = loader_prepare(ld);
	if (ret)
		goto out_tree;
	*ldp = ld;
	return 0;

out_tree:
	vmir_tree_free(ld->t);
out_free:
	loader_level_free(ld);
	free(ld);
	return ret;
}

void vmir_tree_loader_free(struct vmir_tree_loader *ld)
{
	if (!ld)
		return;
	loader_level_free(ld);
	vmir_tree_free(ld->t);
	free(ld);
}

size_t vmir_tree_loader_next(const struct vmir_tree_loader *ld,
			     const struct vmir_id **ids, void *const **bufs,
			     size_t **lens)
{
	if (!ld->level)
		return 0;
	*ids = ld->ids;
	*bufs = ld->bufs;
	*lens = ld->lens;
	return ld->nid;
}

/* Check the fetched nodes of the level and fill the level below. */
int vmir_tree_loader_level_done(struct vmir_tree_loader *ld)
{
	struct vmir_tree *t = ld->t;
	struct tree_level *low = &t->lv[ld->level - 1];
	struct vmir_id kids[VMIR_TREE_FANOUT];
	unsigned int cnt;
	size_t r = 0, u;
	uint64_t i;
	int ret;

	for (u = 0; u < ld->nid; u++) {
		ret = node_check(&ld->ids[u], ld->bufs[u], ld->lens[u],
				 ld->level, kids, &cnt);
		if (ret)
			return ret;
		for (; r < ld->nref && vmir_id_eq(&ld->refs[r].id,
						  &ld->ids[u]); r++) {
			i = ld->refs[r].pos;
			if (cnt != node_count(low->n, i))
				return -EBADMSG;
			memcpy(&low->ids[i * VMIR_TREE_FANOUT], kids,
			       cnt * sizeof(kids[0]));
		}
	}
	ld->level--;
	return loader_prepare(ld);
}

struct vmir_tree *vmir_tree_loader_finish(struct vmir_tree_loader *ld)
{
	struct vmir_tree *t = ld->t;

	ld->t = NULL;
	vmir_tree_loader_free(ld);
	return t;
}

int vmir_tree_load(const struct vmir_id *root, uint64_t nchunks,
		   vmir_tree_fetch_fn fetch, void *arg, struct vmir_tree **tp)
{
	struct vmir_tree_loader *ld;
	const struct vmir_id *ids;
	void *const *bufs;
	size_t *lens, n;
	int ret;

	ret = vmir_tree_loader_new(root, nchunks, &ld);
	if (ret)
		return ret;
	while ((n = vmir_tree_loader_next(ld, &ids, &bufs, &lens))) {
		ret = fetch(arg, ids, n, bufs, lens);
		if (ret) {
			ret = fetch_err(ret);
			goto out_free;
		}
		ret = vmir_tree_loader_level_done(ld);
		if (ret)
			goto out_free;
	}
	*tp = vmir_tree_loader_finish(ld);
	return 0;

out_free:
	vmir_tree_loader_free(ld);
	return ret;
}

int vmir_tree_lookup(const struct vmir_id *root, uint64_t nchunks,
		     uint64_t idx, vmir_tree_fetch_fn fetch, void *arg,
		     struct vmir_id *out)
{
	uint64_t n[TREE_DEPTH_MAX + 1], pos[TREE_DEPTH_MAX + 1];
	uint8_t buf[VMIR_TREE_NODE_MAX];
	struct vmir_id kids[VMIR_TREE_FANOUT];
	struct vmir_id id = *root;
	void *bufs[1] = { buf };
	unsigned int depth, l, cnt;
	size_t len;
	int ret;

	if (nchunks == 0)
		return -EINVAL;
	if (idx >= nchunks)
		return -ERANGE;
	depth = tree_shape(nchunks, n);
	pos[0] = idx;
	for (l = 1; l <= depth; l++)
		pos[l] = pos[l - 1] / VMIR_TREE_FANOUT;

	for (l = depth; l >= 1 && !vmir_id_is_zero(&id); l--) {
		len = 0;
		ret = fetch(arg, &id, 1, bufs, &len);
		if (ret)
			return fetch_err(ret);
		ret = node_check(&id, buf, len, l, kids, &cnt);
		if (ret)
			return ret;
		if (cnt != node_count(n[l - 1], pos[l]))
			return -EBADMSG;
		id = kids[pos[l - 1] % VMIR_TREE_FANOUT];
	}
	*out = id;
	return 0;
}
