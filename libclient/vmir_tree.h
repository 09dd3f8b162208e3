/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Segment tree over an image version's chunks.
 *
 * Level 0 are the chunk ids (leaves, not nodes). A node at level L >= 1
 * holds up to VMIR_TREE_FANOUT ids of level L-1. The root is the single
 * node of the top level; the depth (number of node levels, >= 1) follows
 * from the chunk count alone. An all-zero id means "every chunk below is
 * zero": such subtrees are never stored.
 *
 * Node encoding (little-endian), content-addressed like chunks:
 *   u32 magic VMIR_TREE_MAGIC, u8 format (1), u8 level, u16 count,
 *   count * 32-byte ids (count 1..VMIR_TREE_FANOUT).
 * Nodes carry no position, so identical subtrees anywhere share one object.
 *
 * struct vmir_tree keeps every level's ids in memory. Changing leaves marks
 * their paths dirty; vmir_tree_commit() recomputes and emits only the dirty
 * nodes (shadowing), everything else is shared with the previous version.
 */
#ifndef VMIR_TREE_H
#define VMIR_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmir_proto.h"

#define VMIR_TREE_MAGIC		0x4e544d56u	/* "VMTN" */
#define VMIR_TREE_FORMAT	1
#define VMIR_TREE_FANOUT	128
#define VMIR_TREE_HDR_LEN	8
#define VMIR_TREE_NODE_MAX	(VMIR_TREE_HDR_LEN + VMIR_TREE_FANOUT * VMIR_ID_LEN)

struct vmir_tree;

/* number of node levels for nchunks: smallest d >= 1, FANOUT^d >= nchunks */
unsigned int vmir_tree_depth(uint64_t nchunks);

/*
 * A tree of nchunks zero chunks: root zero, nothing to commit. NULL with
 * errno EINVAL (nchunks 0) or ENOMEM.
 */
struct vmir_tree *vmir_tree_new(uint64_t nchunks);
void vmir_tree_free(struct vmir_tree *t);
/* independent deep copy (pending changes included); NULL, errno ENOMEM */
struct vmir_tree *vmir_tree_dup(const struct vmir_tree *t);
uint64_t vmir_tree_nchunks(const struct vmir_tree *t);
/* NULL if idx >= nchunks */
const struct vmir_id *vmir_tree_leaf(const struct vmir_tree *t, uint64_t idx);
/* sets a leaf and, if it changed, marks its path dirty; -ERANGE past end */
int vmir_tree_set_leaf(struct vmir_tree *t, uint64_t idx,
		       const struct vmir_id *id);
/* root as of the last commit/load (zero id: all chunks zero) */
const struct vmir_id *vmir_tree_root(const struct vmir_tree *t);
/*
 * Change the chunk count (image resize): leaves past the end dropped, new
 * ones zero; every node is recomputed at the next commit. 0, -EINVAL
 * (nchunks 0) or -ENOMEM (tree unchanged).
 */
int vmir_tree_resize(struct vmir_tree *t, uint64_t nchunks);

/*
 * emit gets each new non-zero node (one whose id differs from the node held
 * at its position before), bottom-up; node is valid only during the call.
 * A non-zero return aborts the commit: the root stays as it was and the
 * next commit finishes the work.
 */
typedef int (*vmir_tree_emit_fn)(void *arg, const struct vmir_id *id,
				 const void *node, size_t len);
/* recompute dirty nodes, emit them, update the root; 0 or emit's error */
int vmir_tree_commit(struct vmir_tree *t, vmir_tree_emit_fn emit, void *arg);

/*
 * Fetch nodes by id: fill bufs[i] (VMIR_TREE_NODE_MAX bytes each) and
 * lens[i] for the n ids, which are all non-zero. Returning 0 means all
 * were read; the tree code verifies each node's hash and encoding.
 */
typedef int (*vmir_tree_fetch_fn)(void *arg, const struct vmir_id *ids,
				  size_t n, void *const *bufs, size_t *lens);
/*
 * Load a whole tree, level by level: one fetch call per level holding the
 * level's distinct non-zero node ids (zero root: no fetch at all). Returns
 * fetch's error, -EIO if a node's bytes do not hash to its id, -EBADMSG if
 * a node is undecodable or its level or count do not fit nchunks,
 * -EINVAL (nchunks 0) or -ENOMEM. The caller names the root in messages.
 */
int vmir_tree_load(const struct vmir_id *root, uint64_t nchunks,
		   vmir_tree_fetch_fn fetch, void *arg, struct vmir_tree **tp);
/*
 * The same load one level at a time, for callers that fetch
 * asynchronously: vmir_tree_loader_next() names the nodes of the next
 * level to fetch (0 when the tree is complete; fill bufs[i] and lens[i] as
 * for vmir_tree_fetch_fn), vmir_tree_loader_level_done() checks them
 * (errors as vmir_tree_load) and prepares the level below, and
 * vmir_tree_loader_finish() hands the tree over and frees the loader.
 */
struct vmir_tree_loader;
int vmir_tree_loader_new(const struct vmir_id *root, uint64_t nchunks,
			 struct vmir_tree_loader **ldp);
void vmir_tree_loader_free(struct vmir_tree_loader *ld);
size_t vmir_tree_loader_next(const struct vmir_tree_loader *ld,
			     const struct vmir_id **ids, void *const **bufs,
			     size_t **lens);
int vmir_tree_loader_level_done(struct vmir_tree_loader *ld);
struct vmir_tree *vmir_tree_loader_finish(struct vmir_tree_loader *ld);
/*
 * Look up one chunk id reading exactly one node per level: O(depth); stops
 * with a zero id at the first zero subtree. Errors as vmir_tree_load, and
 * -ERANGE if idx >= nchunks.
 */
int vmir_tree_lookup(const struct vmir_id *root, uint64_t nchunks,
		     uint64_t idx, vmir_tree_fetch_fn fetch, void *arg,
		     struct vmir_id *out);

/*
 * Node codec, exposed for tests and tools. encode writes at most
 * VMIR_TREE_NODE_MAX bytes and returns the length, or 0 if level is not
 * 1..vmir_tree_depth(UINT64_MAX) or count not 1..VMIR_TREE_FANOUT.
 */
size_t vmir_tree_node_encode(unsigned int level, const struct vmir_id *ids,
			     unsigned int count, void *out);
/* ids holds VMIR_TREE_FANOUT; -EBADMSG: bad magic/format/level/count/length */
int vmir_tree_node_decode(const void *buf, size_t len, unsigned int *level,
			  struct vmir_id *ids, unsigned int *count);

#endif /* VMIR_TREE_H */
