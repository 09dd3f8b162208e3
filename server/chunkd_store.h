/* SPDX-License-Identifier: GPL-2.0 */
/*
 * chunkd object store: immutable objects named by the BLAKE2b-256 of their
 * content, one file each at DIR/objects/XX/<64 hex> (XX = first id byte),
 * or at DIR/objects/XX/<64 hex>.z when the client sent it packed (a zstd
 * frame of the content, common/zpack.c): it is stored and served packed,
 * and the id is checked on the unpacked content.
 * Writes go to DIR/tmp/ first, are fsynced and renamed into place, then
 * the objects/XX directory is fsynced: an object under objects/ is always
 * complete, and DIR/tmp/ is emptied when the store opens.
 *
 * File I/O (write, fsync, read) runs on the server framework's ring so many
 * operations overlap; callbacks run in the loop thread, possibly before
 * chunkd_put()/chunkd_get() return (immediate errors, dedup hits).
 */
#ifndef VMIR_CHUNKD_STORE_H
#define VMIR_CHUNKD_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "srv.h"
#include "vmir_proto.h"

struct chunkd_store;

struct chunkd_stat {
	uint64_t objects;	/* objects stored */
	uint64_t bytes;		/* their bytes as stored (packed or not) */
	uint64_t puts;		/* PUTs that stored a new object */
	uint64_t dedup;		/* PUTs of an object already present */
	uint64_t gets;		/* GETs answered with content */
};

/* err: 0 or -errno (-EBADMSG: content does not match id) */
typedef void (*chunkd_put_cb)(void *arg, int err);
/* on success the callee owns data (malloc()ed, len bytes, packed or not) */
typedef void (*chunkd_get_cb)(void *arg, int err, void *data, uint32_t len,
			      bool packed);

/*
 * Create DIR and its layout if needed, lock it against a second server,
 * remove leftovers in DIR/tmp and count the objects. srv provides the ring.
 */
int chunkd_store_open(const char *dir, struct srv *srv,
		      struct chunkd_store **out);
/* every put/get must have completed */
void chunkd_store_close(struct chunkd_store *st);

/*
 * data must stay valid until cb runs. packed: data is a zstd frame of the
 * content (-EBADMSG if it is not one, or the content is not id's).
 */
void chunkd_put(struct chunkd_store *st, const struct vmir_id *id,
		const void *data, uint32_t len, bool packed, chunkd_put_cb cb,
		void *arg);
/*
 * GET in two steps so the caller can account the memory before the read
 * starts: chunkd_get_open() opens the object and returns its size in *len
 * and whether it is stored packed in *packed (-ENOENT absent, -EIO bad
 * size); chunkd_get_read() reads it as stored and calls
 * cb, which then owns the buffer. An opened op must be read.
 */
struct chunkd_get_op;
int chunkd_get_open(struct chunkd_store *st, const struct vmir_id *id,
		    struct chunkd_get_op **op, uint32_t *len, bool *packed);
void chunkd_get_read(struct chunkd_get_op *op, chunkd_get_cb cb, void *arg);
/* 1 present, 0 absent, -errno */
int chunkd_has(struct chunkd_store *st, const struct vmir_id *id);
void chunkd_stat(const struct chunkd_store *st, struct chunkd_stat *out);
/* put/get operations not yet completed */
unsigned int chunkd_pending(const struct chunkd_store *st);

#endif /* VMIR_CHUNKD_STORE_H */
