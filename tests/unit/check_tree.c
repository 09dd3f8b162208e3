// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Unit tests of the segment tree (libclient/tree.c) against an in-memory
 * content-addressed object store that counts what is stored and fetched.
 *
 * Expected node ids are computed here independently (byte layout written
 * out by hand, BLAKE2b-256 straight from libsodium), and stored trees are
 * walked from their roots, so the checks do not rely on the tree's own
 * bookkeeping.
 */
#include <check.h>
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "vmir_tree.h"

#define F		VMIR_TREE_FANOUT
#define MAX_LEVELS	16

struct store;
static void commit_and_check(struct vmir_tree *t, struct store *s);

/* --- deterministic randomness ---------------------------------------- */

static uint64_t rng_state;

static void rng_seed(uint64_t seed)
{
	rng_state = seed * 0x9e3779b97f4a7c15ull + 1;
}

static uint64_t rng_next(void)
{
	uint64_t x = rng_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545f4914f6cdd1dull;
}

static void random_id(struct vmir_id *id)
{
	unsigned int i;

	for (i = 0; i < VMIR_ID_LEN; i += 8) {
		uint64_t v = rng_next();

		memcpy(&id->b[i], &v, 8);
	}
	id->b[0] |= 1;		/* never the zero id */
}

static bool id_zero(const struct vmir_id *id)
{
	static const struct vmir_id zero;

	return !memcmp(id, &zero, sizeof(zero));
}

static bool id_same(const struct vmir_id *a, const struct vmir_id *b)
{
	return !memcmp(a, b, sizeof(*a));
}

/* independent of libclient: BLAKE2b-256 of the bytes */
static void ref_hash(const void *buf, size_t len, struct vmir_id *id)
{
	crypto_generichash(id->b, VMIR_ID_LEN, buf, len, NULL, 0);
}

/* --- in-memory object store ------------------------------------------ */

struct obj {
	struct vmir_id id;
	uint8_t *data;
	size_t len;
};

struct store {
	struct obj *slots;
	size_t cap;
	size_t objects;

	/* emit side */
	size_t emits;
	int fail_after;		/* >= 0: emits that succeed before one fails */
	struct vmir_id *emitted;
	size_t emitted_cap;

	/* fetch side */
	size_t fetch_calls;
	size_t nodes_fetched;
	size_t call_sizes[64];	/* ids asked for by each fetch call */
	struct vmir_id *fetched;
	size_t fetched_cap;
};

static struct store *store_new(void)
{
	struct store *s = calloc(1, sizeof(*s));

	ck_assert_ptr_nonnull(s);
	s->cap = 1024;
	s->slots = calloc(s->cap, sizeof(*s->slots));
	ck_assert_ptr_nonnull(s->slots);
	s->fail_after = -1;
	return s;
}

static void store_free(struct store *s)
{
	size_t i;

	for (i = 0; i < s->cap; i++)
		free(s->slots[i].data);
	free(s->slots);
	free(s->emitted);
	free(s->fetched);
	free(s);
}

static size_t slot_of(const struct store *s, const struct vmir_id *id)
{
	uint64_t h;
	size_t i;

	memcpy(&h, id->b + 8, sizeof(h));
	for (i = h & (s->cap - 1); s->slots[i].data;
	     i = (i + 1) & (s->cap - 1))
		if (id_same(&s->slots[i].id, id))
			break;
	return i;
}

static struct obj *store_get(struct store *s, const struct vmir_id *id)
{
	struct obj *o = &s->slots[slot_of(s, id)];

	return o->data ? o : NULL;
}

static void store_grow(struct store *s)
{
	struct obj *old = s->slots;
	size_t oldcap = s->cap, i;

	s->cap *= 2;
	s->slots = calloc(s->cap, sizeof(*s->slots));
	ck_assert_ptr_nonnull(s->slots);
	for (i = 0; i < oldcap; i++)
		if (old[i].data)
			s->slots[slot_of(s, &old[i].id)] = old[i];
	free(old);
}

/* stores a copy unless the id is already there; the id must be the hash */
static void store_put(struct store *s, const void *buf, size_t len,
		      struct vmir_id *id)
{
	struct obj *o;

	ref_hash(buf, len, id);
	if (store_get(s, id))
		return;
	if ((s->objects + 1) * 2 > s->cap)
		store_grow(s);
	o = &s->slots[slot_of(s, id)];
	o->id = *id;
	o->data = malloc(len ? len : 1);
	ck_assert_ptr_nonnull(o->data);
	memcpy(o->data, buf, len);
	o->len = len;
	s->objects++;
}

static void push_id(struct vmir_id **arr, size_t *cap, size_t n,
		    const struct vmir_id *id)
{
	if (n == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		*arr = realloc(*arr, *cap * sizeof(**arr));
		ck_assert_ptr_nonnull(*arr);
	}
	(*arr)[n] = *id;
}

static int emit_to_store(void *arg, const struct vmir_id *id,
			 const void *node, size_t len)
{
	struct store *s = arg;
	struct vmir_id got;

	if (s->fail_after >= 0 && s->emits == (size_t)s->fail_after)
		return -ENOSPC;
	store_put(s, node, len, &got);
	ck_assert_msg(id_same(&got, id), "emitted id is not the node's hash");
	push_id(&s->emitted, &s->emitted_cap, s->emits, id);
	s->emits++;
	return 0;
}

static int fetch_from_store(void *arg, const struct vmir_id *ids, size_t n,
			    void *const *bufs, size_t *lens)
{
	struct store *s = arg;
	struct obj *o;
	size_t i;

	ck_assert_uint_gt(n, 0);
	if (s->fetch_calls < 64)
		s->call_sizes[s->fetch_calls] = n;
	s->fetch_calls++;
	for (i = 0; i < n; i++) {
		ck_assert_msg(!id_zero(&ids[i]), "fetch asked for the zero id");
		push_id(&s->fetched, &s->fetched_cap, s->nodes_fetched,
			&ids[i]);
		s->nodes_fetched++;
		o = store_get(s, &ids[i]);
		if (!o)
			return -ENOENT;
		ck_assert_uint_le(o->len, VMIR_TREE_NODE_MAX);
		memcpy(bufs[i], o->data, o->len);
		lens[i] = o->len;
	}
	return 0;
}

static void reset_counters(struct store *s)
{
	s->emits = 0;
	s->fetch_calls = 0;
	s->nodes_fetched = 0;
	memset(s->call_sizes, 0, sizeof(s->call_sizes));
}

/* --- per-level views of a tree --------------------------------------- */

struct levels {
	unsigned int depth;
	uint64_t n[MAX_LEVELS];
	struct vmir_id *ids[MAX_LEVELS];	/* 0 = leaves */
};

static void levels_init(struct levels *v, uint64_t nchunks)
{
	unsigned int l;

	memset(v, 0, sizeof(*v));
	v->depth = vmir_tree_depth(nchunks);
	ck_assert_uint_lt(v->depth, MAX_LEVELS);
	v->n[0] = nchunks;
	for (l = 0; l <= v->depth; l++) {
		if (l)
			v->n[l] = (v->n[l - 1] + F - 1) / F;
		v->ids[l] = calloc(v->n[l], sizeof(struct vmir_id));
		ck_assert_ptr_nonnull(v->ids[l]);
	}
	ck_assert_uint_eq(v->n[v->depth], 1);
}

static void levels_free(struct levels *v)
{
	unsigned int l;

	for (l = 0; l <= v->depth; l++)
		free(v->ids[l]);
}

static unsigned int count_at(uint64_t nlow, uint64_t i)
{
	uint64_t left = nlow - i * F;

	return left < F ? (unsigned int)left : F;
}

/* node bytes written out by hand, as the header comment specifies */
static size_t ref_encode(unsigned int level, const struct vmir_id *ids,
			 unsigned int count, uint8_t *out)
{
	out[0] = 'V';
	out[1] = 'M';
	out[2] = 'T';
	out[3] = 'N';
	out[4] = 1;
	out[5] = level;
	out[6] = count & 0xff;
	out[7] = count >> 8;
	memcpy(out + 8, ids, count * 32);
	return 8 + count * 32;
}

/* expected node ids of every level for the leaves, independently */
static void ref_levels(const struct vmir_tree *t, struct levels *v)
{
	uint8_t buf[VMIR_TREE_NODE_MAX];
	unsigned int l, k, cnt;
	uint64_t i;

	levels_init(v, vmir_tree_nchunks(t));
	for (i = 0; i < v->n[0]; i++)
		v->ids[0][i] = *vmir_tree_leaf(t, i);
	for (l = 1; l <= v->depth; l++) {
		for (i = 0; i < v->n[l]; i++) {
			const struct vmir_id *kids = &v->ids[l - 1][i * F];

			cnt = count_at(v->n[l - 1], i);
			for (k = 0; k < cnt && id_zero(&kids[k]); k++)
				;
			if (k == cnt)
				continue;	/* zero subtree: zero id */
			ref_hash(buf, ref_encode(l, kids, cnt, buf),
				 &v->ids[l][i]);
		}
	}
}

/* node ids of every level as stored under root; every node must be there */
static void walk(struct store *s, const struct vmir_id *root,
		 uint64_t nchunks, struct levels *v)
{
	struct vmir_id kids[F];
	unsigned int l, lvl, cnt;
	struct obj *o;
	uint64_t i;

	levels_init(v, nchunks);
	v->ids[v->depth][0] = *root;
	for (l = v->depth; l >= 1; l--) {
		for (i = 0; i < v->n[l]; i++) {
			if (id_zero(&v->ids[l][i]))
				continue;
			o = store_get(s, &v->ids[l][i]);
			ck_assert_msg(o, "node %u/%llu missing from the store",
				      l, (unsigned long long)i);
			ck_assert_int_eq(vmir_tree_node_decode(o->data, o->len,
							       &lvl, kids,
							       &cnt), 0);
			ck_assert_uint_eq(lvl, l);
			ck_assert_uint_eq(cnt, count_at(v->n[l - 1], i));
			memcpy(&v->ids[l - 1][i * F], kids,
			       cnt * sizeof(kids[0]));
		}
	}
}

static struct vmir_tree *random_tree(uint64_t nchunks)
{
	struct vmir_tree *t = vmir_tree_new(nchunks);
	struct vmir_id id;
	uint64_t i;

	ck_assert_ptr_nonnull(t);
	for (i = 0; i < nchunks; i++) {
		random_id(&id);
		ck_assert_int_eq(vmir_tree_set_leaf(t, i, &id), 0);
	}
	return t;
}

static void assert_same_leaves(const struct vmir_tree *a,
			       const struct vmir_tree *b)
{
	uint64_t i;

	ck_assert_uint_eq(vmir_tree_nchunks(a), vmir_tree_nchunks(b));
	for (i = 0; i < vmir_tree_nchunks(a); i++)
		ck_assert_msg(id_same(vmir_tree_leaf(a, i),
				      vmir_tree_leaf(b, i)),
			      "leaf %llu differs", (unsigned long long)i);
}

/* is node i of level l an ancestor of one of the leaves idx[0..k)? */
static bool on_path(const uint64_t *idx, size_t k, unsigned int l,
		    uint64_t i)
{
	uint64_t p;
	unsigned int j;
	size_t m;

	for (m = 0; m < k; m++) {
		p = idx[m];
		for (j = 0; j < l; j++)
			p /= F;
		if (p == i)
			return true;
	}
	return false;
}

static size_t count_ancestors(const struct levels *v, const uint64_t *idx,
			      size_t k)
{
	size_t total = 0;
	unsigned int l;
	uint64_t i;

	for (l = 1; l <= v->depth; l++)
		for (i = 0; i < v->n[l]; i++)
			total += on_path(idx, k, l, i);
	return total;
}

static bool was_emitted(const struct store *s, const struct vmir_id *id)
{
	size_t i;

	for (i = 0; i < s->emits; i++)
		if (id_same(&s->emitted[i], id))
			return true;
	return false;
}

/* k distinct random leaf indexes below n */
static void random_indexes(uint64_t n, uint64_t *idx, size_t k)
{
	size_t m, j;

	for (m = 0; m < k; m++) {
again:
		idx[m] = rng_next() % n;
		for (j = 0; j < m; j++)
			if (idx[j] == idx[m])
				goto again;
	}
}

/* --- shape ----------------------------------------------------------- */

START_TEST(depth_is_smallest_power_of_fanout_covering_nchunks)
{
	uint64_t f9 = 1;
	unsigned int i;

	for (i = 0; i < 9; i++)
		f9 *= F;
	ck_assert_uint_eq(vmir_tree_depth(1), 1);
	ck_assert_uint_eq(vmir_tree_depth(2), 1);
	ck_assert_uint_eq(vmir_tree_depth(F), 1);
	ck_assert_uint_eq(vmir_tree_depth(F + 1), 2);
	ck_assert_uint_eq(vmir_tree_depth((uint64_t)F * F), 2);
	ck_assert_uint_eq(vmir_tree_depth((uint64_t)F * F + 1), 3);
	ck_assert_uint_eq(vmir_tree_depth(524288), 3);
	ck_assert_uint_eq(vmir_tree_depth(f9), 9);
	ck_assert_uint_eq(vmir_tree_depth(f9 + 1), 10);
	ck_assert_uint_eq(vmir_tree_depth(UINT64_MAX), 10);
}
END_TEST

START_TEST(new_tree_rejects_zero_chunks_and_bad_indexes)
{
	struct vmir_tree *t;
	struct vmir_id id;

	errno = 0;
	ck_assert_ptr_null(vmir_tree_new(0));
	ck_assert_int_eq(errno, EINVAL);

	t = vmir_tree_new(10);
	ck_assert_ptr_nonnull(t);
	ck_assert_uint_eq(vmir_tree_nchunks(t), 10);
	ck_assert_ptr_nonnull(vmir_tree_leaf(t, 9));
	ck_assert(id_zero(vmir_tree_leaf(t, 9)));
	ck_assert_ptr_null(vmir_tree_leaf(t, 10));
	random_id(&id);
	ck_assert_int_eq(vmir_tree_set_leaf(t, 10, &id), -ERANGE);
	ck_assert_int_eq(vmir_tree_resize(t, 0), -EINVAL);
	ck_assert_uint_eq(vmir_tree_nchunks(t), 10);
	ck_assert_int_eq(vmir_tree_lookup(vmir_tree_root(t), 10, 10,
					  fetch_from_store, NULL, &id),
			 -ERANGE);
	vmir_tree_free(t);
}
END_TEST

/* --- node codec ------------------------------------------------------ */

START_TEST(node_codec_round_trips_with_specified_layout)
{
	static const unsigned int counts[] = { 1, 77, F };
	uint8_t buf[VMIR_TREE_NODE_MAX], ref[VMIR_TREE_NODE_MAX];
	struct vmir_id ids[F], out[F];
	unsigned int c, i, level, count;
	size_t len;

	for (i = 0; i < F; i++)
		random_id(&ids[i]);
	for (c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
		len = vmir_tree_node_encode(3, ids, counts[c], buf);
		ck_assert_uint_eq(len, 8 + counts[c] * 32);
		ck_assert_uint_eq(len, ref_encode(3, ids, counts[c], ref));
		ck_assert_mem_eq(buf, ref, len);
		memset(out, 0, sizeof(out));
		ck_assert_int_eq(vmir_tree_node_decode(buf, len, &level, out,
						       &count), 0);
		ck_assert_uint_eq(level, 3);
		ck_assert_uint_eq(count, counts[c]);
		ck_assert_mem_eq(out, ids, counts[c] * sizeof(ids[0]));
	}
}
END_TEST

START_TEST(node_encode_rejects_bad_level_and_count)
{
	uint8_t buf[VMIR_TREE_NODE_MAX];
	struct vmir_id ids[F + 1];

	memset(ids, 0, sizeof(ids));
	ck_assert_uint_eq(vmir_tree_node_encode(1, ids, 0, buf), 0);
	ck_assert_uint_eq(vmir_tree_node_encode(1, ids, F + 1, buf), 0);
	ck_assert_uint_eq(vmir_tree_node_encode(0, ids, 1, buf), 0);
	ck_assert_uint_eq(vmir_tree_node_encode(11, ids, 1, buf), 0);
	ck_assert_uint_eq(vmir_tree_node_encode(10, ids, 1, buf), 40);
}
END_TEST

/* a valid level 2 node of 5 ids in buf; returns its length */
static size_t good_node(uint8_t *buf)
{
	struct vmir_id ids[5];
	unsigned int i;

	for (i = 0; i < 5; i++)
		random_id(&ids[i]);
	return ref_encode(2, ids, 5, buf);
}

static int decode(const uint8_t *buf, size_t len)
{
	struct vmir_id out[F];
	unsigned int level, count;

	return vmir_tree_node_decode(buf, len, &level, out, &count);
}

START_TEST(node_decode_rejects_bad_magic)
{
	uint8_t buf[VMIR_TREE_NODE_MAX];
	size_t len = good_node(buf);
	unsigned int i;

	ck_assert_int_eq(decode(buf, len), 0);
	for (i = 0; i < 4; i++) {
		buf[i] ^= 0x20;
		ck_assert_int_eq(decode(buf, len), -EBADMSG);
		buf[i] ^= 0x20;
	}
}
END_TEST

START_TEST(node_decode_rejects_bad_format)
{
	uint8_t buf[VMIR_TREE_NODE_MAX];
	size_t len = good_node(buf);

	buf[4] = 0;
	ck_assert_int_eq(decode(buf, len), -EBADMSG);
	buf[4] = 2;
	ck_assert_int_eq(decode(buf, len), -EBADMSG);
	buf[4] = 1;
	ck_assert_int_eq(decode(buf, len), 0);
}
END_TEST

START_TEST(node_decode_rejects_bad_level)
{
	uint8_t buf[VMIR_TREE_NODE_MAX];
	size_t len = good_node(buf);

	buf[5] = 0;		/* level 0 are chunks, never nodes */
	ck_assert_int_eq(decode(buf, len), -EBADMSG);
	buf[5] = 11;		/* deeper than any u64 chunk count needs */
	ck_assert_int_eq(decode(buf, len), -EBADMSG);
	buf[5] = 10;
	ck_assert_int_eq(decode(buf, len), 0);
}
END_TEST

START_TEST(node_decode_rejects_bad_count)
{
	uint8_t buf[VMIR_TREE_NODE_MAX + 64];
	struct vmir_id ids[F + 1];
	unsigned int i;

	for (i = 0; i <= F; i++)
		random_id(&ids[i]);
	/* counts whose length matches, so only the count itself is wrong */
	ck_assert_int_eq(decode(buf, ref_encode(1, ids, 0, buf)), -EBADMSG);
	ck_assert_int_eq(decode(buf, ref_encode(1, ids, F + 1, buf)),
			 -EBADMSG);
	ck_assert_int_eq(decode(buf, ref_encode(1, ids, F, buf)), 0);
}
END_TEST

START_TEST(node_decode_rejects_bad_length)
{
	uint8_t buf[VMIR_TREE_NODE_MAX];
	size_t len = good_node(buf);

	ck_assert_int_eq(decode(buf, len - 1), -EBADMSG);
	ck_assert_int_eq(decode(buf, len + 1), -EBADMSG);
	ck_assert_int_eq(decode(buf, len - 32), -EBADMSG);
	ck_assert_int_eq(decode(buf, 8), -EBADMSG);
	ck_assert_int_eq(decode(buf, 7), -EBADMSG);
	ck_assert_int_eq(decode(buf, 0), -EBADMSG);
	ck_assert_int_eq(decode(buf, len), 0);
}
END_TEST

/* --- commit ---------------------------------------------------------- */

START_TEST(commit_of_fresh_tree_emits_nothing_and_root_is_zero)
{
	static const uint64_t sizes[] = { 1, F, F + 1, F * F + 1, 524288 };
	struct store *s = store_new();
	struct vmir_tree *t;
	unsigned int i;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		t = vmir_tree_new(sizes[i]);
		ck_assert_ptr_nonnull(t);
		ck_assert(id_zero(vmir_tree_root(t)));
		ck_assert_int_eq(vmir_tree_commit(t, emit_to_store, s), 0);
		ck_assert(id_zero(vmir_tree_root(t)));
		vmir_tree_free(t);
	}
	ck_assert_uint_eq(s->emits, 0);
	ck_assert_uint_eq(s->objects, 0);
	store_free(s);
}
END_TEST

START_TEST(commit_root_matches_independent_computation)
{
	static const uint64_t sizes[] = { 1, 5, F, F + 1, 2 * F * F + 3 };
	struct levels ref;
	struct store *s = store_new();
	struct vmir_tree *t;
	unsigned int i;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		t = random_tree(sizes[i]);
		ck_assert_int_eq(vmir_tree_commit(t, emit_to_store, s), 0);
		ref_levels(t, &ref);
		ck_assert(!id_zero(vmir_tree_root(t)));
		ck_assert(id_same(vmir_tree_root(t),
				  &ref.ids[ref.depth][0]));
		levels_free(&ref);
		vmir_tree_free(t);
	}
	store_free(s);
}
END_TEST

START_TEST(root_changes_only_at_commit)
{
	struct store *s = store_new();
	struct vmir_tree *t = random_tree(300);
	struct vmir_id before, id;

	ck_assert(id_zero(vmir_tree_root(t)));
	ck_assert_int_eq(vmir_tree_commit(t, emit_to_store, s), 0);
	before = *vmir_tree_root(t);
	random_id(&id);
	vmir_tree_set_leaf(t, 7, &id);
	ck_assert(id_same(vmir_tree_root(t), &before));
	ck_assert_int_eq(vmir_tree_commit(t, emit_to_store, s), 0);
	ck_assert(!id_same(vmir_tree_root(t), &before));
	vmir_tree_free(t);
	store_free(s);
}
END_TEST

START_TEST(commit_emits_exactly_the_changed_paths)
{
	const uint64_t n = 2 * F * F + 5;	/* depth 3, partial edge */
	uint64_t idx[16];
	size_t ks[] = { 1, 2, 7, 16 }, c, m;
	struct levels before, after;
	struct store *s = store_new();
	struct vmir_tree *t = random_tree(n);
	struct vmir_id id, root0;
	unsigned int l;
	uint64_t i;

	ck_assert_int_eq(vmir_tree_commit(t, emit_to_store, s), 0);
	for (c = 0; c < sizeof(ks) / sizeof(ks[0]); c++) {
		root0 = *vmir_tree_root(t);
		walk(s, &root0, n, &before);
		random_indexes(n, idx, ks[c]);
		idx[0] = n - 1;		/* include the partial edge */
		for (m = 0; m < ks[c]; m++) {
			random_id(&id);
			vmir_tree_set_leaf(t, idx[m], &id);
		}
		reset_counters(s);
		ck_assert_int_eq(vmir_tree_commit(t, emit_to_store, s), 0);
		walk(s, vmir_tree_root(t), n, &after);

		ck_assert_uint_eq(s->emits,
				  count_ancestors(&after, idx, ks[c]));
		for (l = 1; l <= after.depth; l++) {
			for (i = 0; i < after.n[l]; i++) {
				const struct vmir_id *a = &after.ids[l][i];
				const struct vmir_id *b = &before.ids[l][i];

				if (on_path(idx, ks[c], l, i)) {
					ck_assert(!id_same(a, b));
					ck_assert(was_emitted(s, a));
				} else {
					ck_assert(id_same(a, b));
				}
			}
		}
		for (i = 0; i < n; i++)
			ck_assert(id_same(&after.ids[0][i],
					  vmir_tree_leaf(t, i)));
		levels_free(&before);
		levels_free(&after);
	}
	vmir_tree_free(t);
	store_free(s);
}
END_TEST

START_TEST(setting_a_leaf_back_emits_nothing)
{
	struct store *s = store_new();
	struct vmir_tree *t = random_tree(F * 3);
	struct vmir_id orig, id, root0;

	ck_assert_int_eq(vmir_tree_commit(t, emit_to_store, s), 0);
	root0 = *vmir_tree_root(t);
	reset_counters(s);

	orig = *vmir_tree_leaf(t, 200);
	ck_assert_int_eq(vmir_tree_set_leaf(t, 200, &orig), 0);
	ck_assert_int_eq(vmir_tree_commit(t, emit_to_store, s), 0);
	ck_assert_uint_eq(s->emits, 0);

	random_id(&id);
	vmir_tree_set_leaf(t, 200, &id);
	vmir_tree_set_leaf(t, 200, &orig);
	ck_assert_int_eq(vmir_tree_commit(t, emit_to_store, s), 0);
	ck_assert_uint_eq(s->emits, 0);
	ck_assert(id_same(vmir_tree_root(t), &root0));
	vmir_tree_free(t);
	store_free(s);
}
END_TEST

START_TEST(failed_emit_keeps_root_and_next_commit_completes)
{
	const uint64_t n = F * F + 10;
	struct store *s = store_new();
	struct vmir_tree *t = random_tree(n), *got;
	struct levels ref;
	unsigned int fail;

	ref_levels(t, &ref);
	for (fail = 0; fail < 5; fail++) {
		s->fail_after = s->emits + fail;
		ck_assert_int_eq(vmir_tree_commit(t, emit_to_store, s),
				 -ENOSPC);
		ck_assert(id_zero(vmir_tree_root(t)));
	}
	s->fail_after = -1;
	ck_assert_int_eq(vmir_tree_commit(t, emit_to_store, s), 0);
	ck_assert(id_same(vmir_tree_root(t), &ref.ids[ref.depth][0]));
	/* every node reachable from the root got stored exactly once */
	ck_assert_uint_eq(s->objects, s->emits);
	ck_assert_uint_eq(s->objects, ref.n[1] + ref.n[2] + ref.n[3]);
	ck_assert_int_eq(vmir_tree_load(vmir_tree_root(t), n,
					fetch_from_store, s, &got), 0);
	assert_same_leaves(t, got);
	vmir_tree_free(got);
	levels_free(&ref);
	vmir_tree_free(t);
	store_free(s);
}
END_TEST

/* --- clones ---------------------------------------------------------- */

START_TEST(dup_changes_do_not_touch_the_original_and_share_nodes)
{
	const uint64_t n = 3 * F * F;
	uint64_t idx[5];
	struct levels lo, lc;
	struct store *s = store_new();
	struct vmir_tree *t = random_tree(n), *c, *saved;
	struct vmir_id id, root0;
	size_t m, shared = 0, total = 0;
	unsigned int l;
	uint64_t i;

	ck_assert_int_eq(vmir_tree_commit(t, emit_to_store, s), 0);
	root0 = *vmir_tree_root(t);
	saved = vmir_tree_dup(t);
	ck_assert_ptr_nonnull(saved);
	c = vmir_tree_dup(t);
	ck_assert_ptr_nonnull(c);
	ck_assert(id_same(vmir_tree_root(c), &root0));

	random_indexes(n, idx, 5);
	for (m = 0; m < 5; m++) {
		random_id(&id);
		vmir_tree_set_leaf(c, idx[m], &id);
	}
	reset_counters(s);
	ck_assert_int_eq(vmir_tree_commit(c, emit_to_store, s), 0);
	ck_assert(!id_same(vmir_tree_root(c), &root0));

	/* original: same leaves, same root, nothing left to commit */
	assert_same_leaves(t, saved);
	ck_assert(id_same(vmir_tree_root(t), &root0));
	reset_counters(s);
	ck_assert_int_eq(vmir_tree_commit(t, emit_to_store, s), 0);
	ck_assert_uint_eq(s->emits, 0);
	ck_assert(id_same(vmir_tree_root(t), &root0));

	/* both stored trees share every node off the changed paths */
	walk(s, &root0, n, &lo);
	walk(s, vmir_tree_root(c), n, &lc);
	for (l = 1; l <= lo.depth; l++) {
		for (i = 0; i < lo.n[l]; i++) {
			bool same = id_same(&lo.ids[l][i], &lc.ids[l][i]);

			ck_assert(same == !on_path(idx, 5, l, i));
			shared += same;
			total++;
		}
	}
	ck_assert_uint_eq(shared, total - count_ancestors(&lo, idx, 5));

	/* and changing the original later leaves the clone alone */
	vmir_tree_free(saved);
	saved = vmir_tree_dup(c);
	random_id(&id);
	vmir_tree_set_leaf(t, idx[0], &id);
	ck_assert_int_eq(vmir_tree_commit(t, emit_to_store, s), 0);
	assert_same_leaves(c, saved);
	ck_assert(id_same(vmir_tree_root(c), vmir_tree_root(saved)));

	levels_free(&lo);
	levels_free(&lc);
	vmir_tree_free(saved);
	vmir_tree_free(c);
	vmir_tree_free(t);
	store_free(s);
}
END_TEST

START_TEST(dup_carries_uncommitted_changes)
{
	struct store *s = store_new();
	struct vmir_tree *t = random_tree(F * F + 1), *c;
	struct vmir_id id;

	ck_assert_int_eq(vmir_tree_commit(t, emit_to_store, s), 0);
	random_id(&id);
	vmir_tree_set_leaf(t, F * F, &id);
	c = vmir_tree_dup(t);
	ck_assert_ptr_nonnull(c);
	ck_assert(id_same(vmir_tree_root(c), vmir_tree_root(t)));
	ck_assert_int_eq(vmir_tree_commit(c, emit_to_store, s), 0);
	ck_assert_int_eq(vmir_tree_commit(t, emit_to_store, s), 0);
	ck_assert(id_same(vmir_tree_root(c), vmir_tree_root(t)));
	commit_and_check(c, s);
	vmir_tree_free(c);
	vmir_tree_free(t);
	store_free(s);
}
END_TEST

/* --- zero subtrees --------------------------------------------------- */

START_TEST(zero_subtrees_are_never_emitted_nor_fetched)
{
	const uint64_t n = 3 * F * F;	/* depth 3: 384, 3, 1 nodes */
	struct store *s = store_new();
	struct vmir_tree *t = vmir_tree_new(n), *got;
	struct vmir_id id, kids[F], leaf3, out;
	unsigned int lvl, cnt, k;
	size_t e;
	uint64_t i;

	ck_assert_ptr_nonnull(t);
	for (i = 0; i < 5; i++) {
		random_id(&id);
		vmir_tree_set_leaf(t, i, &id);
	}
	leaf3 = *vmir_tree_leaf(t, 3);
	random_id(&id);
	vmir_tree_set_leaf(t, n - 1, &id);
	ck_assert_int_eq(vmir_tree_commit(t, emit_to_store, s), 0);

	/* level 1: nodes 0 and 383; level 2: nodes 0 and 2; the root */
	ck_assert_uint_eq(s->emits, 5);
	ck_assert_uint_eq(s->objects, 5);
	for (e = 0; e < s->emits; e++) {
		struct obj *o = store_get(s, &s->emitted[e]);

		ck_assert_ptr_nonnull(o);
		ck_assert_int_eq(vmir_tree_node_decode(o->data, o->len, &lvl,
						       kids, &cnt), 0);
		for (k = 0; k < cnt && id_zero(&kids[k]); k++)
			;
		ck_assert_msg(k < cnt, "an all-zero node was emitted");
	}

	reset_counters(s);
	ck_assert_int_eq(vmir_tree_load(vmir_tree_root(t), n,
					fetch_from_store, s, &got), 0);
	ck_assert_uint_eq(s->fetch_calls, 3);
	ck_assert_uint_eq(s->nodes_fetched, 5);
	ck_assert_uint_eq(s->call_sizes[0], 1);
	ck_assert_uint_eq(s->call_sizes[1], 2);
	ck_assert_uint_eq(s->call_sizes[2], 2);
	assert_same_leaves(t, got);
	vmir_tree_free(got);

	/* lookups stop at the first zero subtree */
	reset_counters(s);
	ck_assert_int_eq(vmir_tree_lookup(vmir_tree_root(t), n, F * F + 7,
					  fetch_from_store, s, &out), 0);
	ck_assert(id_zero(&out));
	ck_assert_uint_eq(s->nodes_fetched, 1);
	reset_counters(s);
	ck_assert_int_eq(vmir_tree_lookup(vmir_tree_root(t), n, F + 1,
					  fetch_from_store, s, &out), 0);
	ck_assert(id_zero(&out));
	ck_assert_uint_eq(s->nodes_fetched, 2);
	reset_counters(s);
	ck_assert_int_eq(vmir_tree_lookup(vmir_tree_root(t), n, 3,
					  fetch_from_store, s, &out), 0);
	ck_assert(id_same(&out, &leaf3));
	ck_assert_uint_eq(s->nodes_fetched, 3);

	/* clearing the leaves again gives the zero root, still no emit */
	for (i = 0; i < 5; i++)
		vmir_tree_set_leaf(t, i, &(struct vmir_id){ 0 });
	vmir_tree_set_leaf(t, n - 1, &(struct vmir_id){ 0 });
	reset_counters(s);
	ck_assert_int_eq(vmir_tree_commit(t, emit_to_store, s), 0);
	ck_assert_uint_eq(s->emits, 0);
	ck_assert(id_zero(vmir_tree_root(t)));
	vmir_tree_free(t);
	store_free(s);
}
END_TEST

START_TEST(zero_root_loads_and_looks_up_without_fetching)
{
	struct vmir_id zero = { 0 }, out;
	struct vmir_tree *t;
	uint64_t i;

	ck_assert_int_eq(vmir_tree_load(&zero, F * F + 1, fetch_from_store,
					NULL, &t), 0);
	ck_assert_uint_eq(vmir_tree_nchunks(t), F * F + 1);
	ck_assert(id_zero(vmir_tree_root(t)));
	for (i = 0; i < F * F + 1; i++)
		ck_assert(id_zero(vmir_tree_leaf(t, i)));
	vmir_tree_free(t);
	memset(&out, 0xff, sizeof(out));
	/* a NULL store would crash any fetch */
	ck_assert_int_eq(vmir_tree_lookup(&zero, F * F + 1, 5,
					  fetch_from_store, NULL, &out), 0);
	ck_assert(id_zero(&out));
}
END_TEST

/* --- load and lookup ------------------------------------------------- */

START_TEST(load_of_built_tree_gives_identical_leaves)
{
	static const uint64_t sizes[] = { 1, 100, F, F * F + 37 };
	struct store *s = store_new();
	struct vmir_tree *t, *got;
	unsigned int i;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		t = random_tree(sizes[i]);
		ck_assert_int_eq(vmir_tree_commit(t, emit_to_store, s), 0);
		ck_assert_int_eq(vmir_tree_load(vmir_tree_root(t), sizes[i],
						fetch_from_store, s, &got), 0);
		assert_same_leaves(t, got);
		ck_assert(id_same(vmir_tree_root(got), vmir_tree_root(t)));
		/* a loaded tree is clean: committing it emits nothing */
		reset_counters(s);
		ck_assert_int_eq(vmir_tree_commit(got, emit_to_store, s), 0);
		ck_assert_uint_eq(s->emits, 0);
		ck_assert(id_same(vmir_tree_root(got), vmir_tree_root(t)));
		vmir_tree_free(got);
		vmir_tree_free(t);
	}
	store_free(s);
}
END_TEST

START_TEST(load_fetches_each_node_once_one_call_per_level)
{
	const uint64_t n = F * F + F + 3;	/* 130, 2, 1 nodes */
	struct store *s = store_new();
	struct vmir_tree *t = random_tree(n), *got;
	size_t a, b;

	ck_assert_int_eq(vmir_tree_commit(t, emit_to_store, s), 0);
	ck_assert_uint_eq(s->objects, 130 + 2 + 1);
	reset_counters(s);
	ck_assert_int_eq(vmir_tree_load(vmir_tree_root(t), n,
					fetch_from_store, s, &got), 0);
	ck_assert_uint_eq(s->fetch_calls, 3);
	ck_assert_uint_eq(s->call_sizes[0], 1);
	ck_assert_uint_eq(s->call_sizes[1], 2);
	ck_assert_uint_eq(s->call_sizes[2], 130);
	ck_assert_uint_eq(s->nodes_fetched, s->objects);
	for (a = 0; a < s->nodes_fetched; a++)
		for (b = a + 1; b < s->nodes_fetched; b++)
			ck_assert(!id_same(&s->fetched[a], &s->fetched[b]));
	assert_same_leaves(t, got);
	vmir_tree_free(got);
	vmir_tree_free(t);
	store_free(s);
}
END_TEST

START_TEST(load_fetches_identical_nodes_of_a_level_once)
{
	const uint64_t n = 3 * F;
	struct store *s = store_new();
	struct vmir_tree *t = random_tree(n), *got;
	uint64_t i;

	/* chunk blocks 0 and 2 equal: level 1 nodes 0 and 2 are one object */
	for (i = 0; i < F; i++)
		vmir_tree_set_leaf(t, 2 * F + i, vmir_tree_leaf(t, i));
	ck_assert_int_eq(vmir_tree_commit(t, emit_to_store, s), 0);
	ck_assert_uint_eq(s->objects, 3);
	reset_counters(s);
	ck_assert_int_eq(vmir_tree_load(vmir_tree_root(t), n,
					fetch_from_store, s, &got), 0);
	ck_assert_uint_eq(s->fetch_calls, 2);
	ck_assert_uint_eq(s->call_sizes[1], 2);
	ck_assert_uint_eq(s->nodes_fetched, 3);
	assert_same_leaves(t, got);
	vmir_tree_free(got);
	vmir_tree_free(t);
	store_free(s);
}
END_TEST

START_TEST(lookup_cost_stays_depth_over_1000_versions)
{
	const uint64_t n = 524288;	/* 2 GiB of 4 KiB chunks: depth 3 */
	const unsigned int depth = 3;
	struct store *s = store_new();
	struct vmir_tree *t = random_tree(n), *v1;
	struct vmir_id roots[1000], id, out;
	size_t objs;
	unsigned int v, q;
	uint64_t idx;

	ck_assert_uint_eq(vmir_tree_depth(n), depth);
	ck_assert_int_eq(vmir_tree_commit(t, emit_to_store, s), 0);
	roots[0] = *vmir_tree_root(t);
	v1 = vmir_tree_dup(t);
	ck_assert_ptr_nonnull(v1);
	for (v = 1; v < 1000; v++) {
		objs = s->objects;
		random_id(&id);
		vmir_tree_set_leaf(t, rng_next() % n, &id);
		reset_counters(s);
		ck_assert_int_eq(vmir_tree_commit(t, emit_to_store, s), 0);
		ck_assert_uint_eq(s->emits, depth);
		ck_assert_uint_le(s->objects - objs, depth);
		ck_assert_uint_gt(s->objects, objs);
		roots[v] = *vmir_tree_root(t);
		ck_assert(!id_same(&roots[v], &roots[v - 1]));
	}
	for (q = 0; q < 50; q++) {
		idx = rng_next() % n;
		reset_counters(s);
		ck_assert_int_eq(vmir_tree_lookup(&roots[0], n, idx,
						  fetch_from_store, s, &out),
				 0);
		ck_assert_uint_eq(s->fetch_calls, depth);
		ck_assert_uint_eq(s->nodes_fetched, depth);
		ck_assert(id_same(&out, vmir_tree_leaf(v1, idx)));

		reset_counters(s);
		ck_assert_int_eq(vmir_tree_lookup(&roots[999], n, idx,
						  fetch_from_store, s, &out),
				 0);
		ck_assert_uint_eq(s->fetch_calls, depth);
		ck_assert_uint_eq(s->nodes_fetched, depth);
		ck_assert(id_same(&out, vmir_tree_leaf(t, idx)));
	}
	vmir_tree_free(v1);
	vmir_tree_free(t);
	store_free(s);
}
END_TEST

/* --- corrupt stores -------------------------------------------------- */

START_TEST(load_and_lookup_detect_bytes_not_matching_the_id)
{
	const uint64_t n = 2 * F + 5;
	struct store *s = store_new();
	struct vmir_tree *t = random_tree(n), *got = NULL;
	struct levels lv;
	struct vmir_id out;
	struct obj *o;

	ck_assert_int_eq(vmir_tree_commit(t, emit_to_store, s), 0);
	walk(s, vmir_tree_root(t), n, &lv);
	o = store_get(s, &lv.ids[1][1]);
	ck_assert_ptr_nonnull(o);
	o->data[100] ^= 1;	/* a flipped bit in a child id */

	ck_assert_int_eq(vmir_tree_load(vmir_tree_root(t), n,
					fetch_from_store, s, &got), -EIO);
	ck_assert_ptr_null(got);
	ck_assert_int_eq(vmir_tree_lookup(vmir_tree_root(t), n, F + 3,
					  fetch_from_store, s, &out), -EIO);
	/* paths avoiding the bad node still resolve */
	ck_assert_int_eq(vmir_tree_lookup(vmir_tree_root(t), n, 3,
					  fetch_from_store, s, &out), 0);
	ck_assert(id_same(&out, vmir_tree_leaf(t, 3)));

	o->data[100] ^= 1;
	ck_assert_int_eq(vmir_tree_load(vmir_tree_root(t), n,
					fetch_from_store, s, &got), 0);
	vmir_tree_free(got);
	levels_free(&lv);
	vmir_tree_free(t);
	store_free(s);
}
END_TEST

START_TEST(load_rejects_node_of_wrong_level_or_count)
{
	const uint64_t n = 2 * F;	/* depth 2: root over 2 nodes of F */
	uint8_t buf[VMIR_TREE_NODE_MAX];
	struct vmir_id kids[F], lvl1[2], root, out;
	struct store *s = store_new();
	struct vmir_tree *got = NULL;
	unsigned int i;

	for (i = 0; i < F; i++)
		random_id(&kids[i]);
	store_put(s, buf, ref_encode(1, kids, F, buf), &lvl1[0]);
	/* properly hashed, but a level 2 node where level 1 belongs */
	store_put(s, buf, ref_encode(2, kids, F, buf), &lvl1[1]);
	store_put(s, buf, ref_encode(2, lvl1, 2, buf), &root);
	ck_assert_int_eq(vmir_tree_load(&root, n, fetch_from_store, s, &got),
			 -EBADMSG);
	ck_assert_ptr_null(got);
	ck_assert_int_eq(vmir_tree_lookup(&root, n, F + 1, fetch_from_store,
					  s, &out), -EBADMSG);

	/* a level 1 node with F - 1 children where F are expected */
	store_put(s, buf, ref_encode(1, kids, F - 1, buf), &lvl1[1]);
	store_put(s, buf, ref_encode(2, lvl1, 2, buf), &root);
	ck_assert_int_eq(vmir_tree_load(&root, n, fetch_from_store, s, &got),
			 -EBADMSG);
	ck_assert_int_eq(vmir_tree_lookup(&root, n, F + 1, fetch_from_store,
					  s, &out), -EBADMSG);

	/* the well-formed tree loads */
	store_put(s, buf, ref_encode(1, kids, F, buf), &lvl1[1]);
	store_put(s, buf, ref_encode(2, lvl1, 2, buf), &root);
	ck_assert_int_eq(vmir_tree_load(&root, n, fetch_from_store, s, &got),
			 0);
	ck_assert(id_same(vmir_tree_leaf(got, F + 1), &kids[1]));
	vmir_tree_free(got);
	got = NULL;

	/* the same root read with a chunk count of another shape */
	ck_assert_int_eq(vmir_tree_load(&root, n - 1, fetch_from_store, s,
					&got), -EBADMSG);
	ck_assert_int_eq(vmir_tree_load(&root, F * F + 1, fetch_from_store, s,
					&got), -EBADMSG);
	ck_assert_int_eq(vmir_tree_load(&root, F, fetch_from_store, s, &got),
			 -EBADMSG);
	ck_assert_ptr_null(got);
	store_free(s);
}
END_TEST

START_TEST(load_passes_on_fetch_errors)
{
	struct store *s = store_new();
	struct vmir_tree *got = NULL;
	struct vmir_id missing, out;

	random_id(&missing);
	ck_assert_int_eq(vmir_tree_load(&missing, F + 1, fetch_from_store, s,
					&got), -ENOENT);
	ck_assert_ptr_null(got);
	ck_assert_int_eq(vmir_tree_lookup(&missing, F + 1, 0,
					  fetch_from_store, s, &out), -ENOENT);
	store_free(s);
}
END_TEST

/* --- resize ---------------------------------------------------------- */

static void assert_prefix(const struct vmir_tree *t, const struct levels *old,
			  uint64_t keep)
{
	uint64_t i;

	for (i = 0; i < vmir_tree_nchunks(t); i++) {
		if (i < keep)
			ck_assert(id_same(vmir_tree_leaf(t, i),
					  &old->ids[0][i]));
		else
			ck_assert(id_zero(vmir_tree_leaf(t, i)));
	}
}

/* commit t, check its root against the reference and reload it */
static void commit_and_check(struct vmir_tree *t, struct store *s)
{
	struct vmir_tree *got;
	struct levels ref;

	ck_assert_int_eq(vmir_tree_commit(t, emit_to_store, s), 0);
	ref_levels(t, &ref);
	ck_assert(id_same(vmir_tree_root(t), &ref.ids[ref.depth][0]));
	ck_assert_int_eq(vmir_tree_load(vmir_tree_root(t), vmir_tree_nchunks(t),
					fetch_from_store, s, &got), 0);
	assert_same_leaves(t, got);
	vmir_tree_free(got);
	levels_free(&ref);
}

START_TEST(resize_keeps_the_leaves_that_remain)
{
	static const uint64_t steps[] = { 5000, F * F + 9, 300, 100, 1,
					  2 * F * F, 77 };
	struct store *s = store_new();
	struct vmir_tree *t = random_tree(1000);
	struct levels old;
	struct vmir_id root0;
	uint64_t keep;
	unsigned int i;

	commit_and_check(t, s);
	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		ref_levels(t, &old);
		root0 = *vmir_tree_root(t);
		keep = steps[i] < old.n[0] ? steps[i] : old.n[0];
		ck_assert_int_eq(vmir_tree_resize(t, steps[i]), 0);
		ck_assert_uint_eq(vmir_tree_nchunks(t), steps[i]);
		ck_assert_ptr_null(vmir_tree_leaf(t, steps[i]));
		ck_assert(id_same(vmir_tree_root(t), &root0));
		assert_prefix(t, &old, keep);
		commit_and_check(t, s);
		assert_prefix(t, &old, keep);
		levels_free(&old);
	}
	vmir_tree_free(t);
	store_free(s);
}
END_TEST

START_TEST(resize_then_set_leaf_in_new_range_commits)
{
	struct store *s = store_new();
	struct vmir_tree *t = random_tree(F);
	struct vmir_id id;

	ck_assert_int_eq(vmir_tree_commit(t, emit_to_store, s), 0);
	ck_assert_int_eq(vmir_tree_resize(t, 3 * F * F), 0);
	random_id(&id);
	ck_assert_int_eq(vmir_tree_set_leaf(t, 3 * F * F - 1, &id), 0);
	commit_and_check(t, s);
	ck_assert(id_same(vmir_tree_leaf(t, 3 * F * F - 1), &id));
	vmir_tree_free(t);
	store_free(s);
}
END_TEST

Suite *tree_suite(void)
{
	Suite *s = suite_create("tree");
	TCase *tc;

	tc = tcase_create("shape");
	tcase_add_test(tc, depth_is_smallest_power_of_fanout_covering_nchunks);
	tcase_add_test(tc, new_tree_rejects_zero_chunks_and_bad_indexes);
	suite_add_tcase(s, tc);

	tc = tcase_create("codec");
	tcase_add_test(tc, node_codec_round_trips_with_specified_layout);
	tcase_add_test(tc, node_encode_rejects_bad_level_and_count);
	tcase_add_test(tc, node_decode_rejects_bad_magic);
	tcase_add_test(tc, node_decode_rejects_bad_format);
	tcase_add_test(tc, node_decode_rejects_bad_level);
	tcase_add_test(tc, node_decode_rejects_bad_count);
	tcase_add_test(tc, node_decode_rejects_bad_length);
	suite_add_tcase(s, tc);

	tc = tcase_create("commit");
	tcase_add_test(tc, commit_of_fresh_tree_emits_nothing_and_root_is_zero);
	tcase_add_test(tc, commit_root_matches_independent_computation);
	tcase_add_test(tc, root_changes_only_at_commit);
	tcase_add_test(tc, commit_emits_exactly_the_changed_paths);
	tcase_add_test(tc, setting_a_leaf_back_emits_nothing);
	tcase_add_test(tc, failed_emit_keeps_root_and_next_commit_completes);
	suite_add_tcase(s, tc);

	tc = tcase_create("clone");
	tcase_add_test(tc,
		       dup_changes_do_not_touch_the_original_and_share_nodes);
	tcase_add_test(tc, dup_carries_uncommitted_changes);
	suite_add_tcase(s, tc);

	tc = tcase_create("zero");
	tcase_add_test(tc, zero_subtrees_are_never_emitted_nor_fetched);
	tcase_add_test(tc, zero_root_loads_and_looks_up_without_fetching);
	suite_add_tcase(s, tc);

	tc = tcase_create("load");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, load_of_built_tree_gives_identical_leaves);
	tcase_add_test(tc, load_fetches_each_node_once_one_call_per_level);
	tcase_add_test(tc, load_fetches_identical_nodes_of_a_level_once);
	tcase_add_test(tc, lookup_cost_stays_depth_over_1000_versions);
	suite_add_tcase(s, tc);

	tc = tcase_create("corrupt");
	tcase_add_test(tc, load_and_lookup_detect_bytes_not_matching_the_id);
	tcase_add_test(tc, load_rejects_node_of_wrong_level_or_count);
	tcase_add_test(tc, load_passes_on_fetch_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("resize");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, resize_keeps_the_leaves_that_remain);
	tcase_add_test(tc, resize_then_set_leaf_in_new_range_commits);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	if (sodium_init() < 0)
		return 1;
	rng_seed(20240601);
	sr = srunner_create(tree_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
