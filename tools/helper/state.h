/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vmir-helper: the files it keeps (tools/helper/state.c), apart from the
 * daemon so that they can be tested on their own.
 *
 *   MIRROR_DIR/state   saved at detach: the present and dirty bitmaps of
 *                      the mirror, to resume from at the next attach
 *   MIRROR_DIR/mirror  past the image: the durable map, two copies of the
 *                      same bitmaps that the module writes on FLUSH, to
 *                      resume from after a crash (no detach)
 *   REG_DIR/vmirN      "dir=...\nimage=...\nversion=N\n": the mirror
 *                      directory of /dev/vmirN, so that a restarted helper
 *                      serves existing devices
 *   MIRROR_DIR/commit.pub  the publish of the commit in progress (its
 *                      ticket), written before its PUBLISH is sent, so that
 *                      a helper adopting the device learns whether it won
 *
 * Both are written atomically (NAME.tmp, fsync, rename, fsync of the
 * directory): after a crash the previous file or the new one is there,
 * and at worst a NAME.tmp that nothing reads and the next write replaces.
 *
 * Bitmaps hold one bit per chunk, LSB first, helper_map_bytes(nchunks)
 * bytes. Functions return 0 or -errno unless said otherwise.
 */
#ifndef VMIR_HELPER_STATE_H
#define VMIR_HELPER_STATE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "libvmir.h"
#include "uapi/linux/vmir.h"

/* what a mirror holds: a state file is only loaded for the same */
struct helper_mirror {
	char image[VMIR_NAME_MAX];
	uint32_t version;
	uint32_t chunk_size;
	uint64_t size;			/* bytes */
	uint64_t nchunks;
};

static inline bool helper_map_test(const uint8_t *m, uint64_t i)
{
	return m[i >> 3] & (1u << (i & 7));
}

static inline void helper_map_set(uint8_t *m, uint64_t i)
{
	m[i >> 3] |= (uint8_t)(1u << (i & 7));
}

static inline size_t helper_map_bytes(uint64_t nchunks)
{
	return (size_t)((nchunks + 7) / 8);
}

/* --- small file helpers --------------------------------------------------- */

/* copy src to dst of size n, truncating */
void helper_copy(char *dst, size_t n, const char *src);
/* a clean decimal u32: digits only, no sign or blanks; -EINVAL otherwise */
int helper_parse_u32(const char *s, uint32_t *v);
/* mkdir -p; existing directories are fine, anything else in the way not */
int helper_mkdir_p(const char *path, mode_t mode);
/* DIR/NAME (mode 0600) atomically from the iov buffers */
int helper_write_file(const char *dir, const char *name,
		      const struct iovec *iov, int iovcnt);

/* --- MIRROR_DIR/state ----------------------------------------------------- */

int helper_state_save(const char *dir, const struct helper_mirror *m,
		      const uint8_t *present, const uint8_t *dirty);
/*
 * Load DIR/state into present and dirty (helper_map_bytes(m->nchunks)
 * each). Returns 1: loaded; 0: there is no state file; -errno with a
 * message for the user in msg: unusable, nothing loaded. -EBADMSG: the
 * file is damaged (checksum, length, header); -EEXIST: it is the state of
 * another mirror (image, version or size).
 */
int helper_state_load(const char *dir, const struct helper_mirror *m,
		      uint8_t *present, uint8_t *dirty, char *msg,
		      size_t msglen);
/* remove DIR/state (used once the bitmaps live in the module again) */
int helper_state_remove(const char *dir);

/* --- the durable map in MIRROR_DIR/mirror (tools/helper/map.c) ----------- */

/* where the two copies start: the image size rounded up to 4096 */
uint64_t helper_map_offset(uint64_t size);
/* the mirror file's size: past both copies */
uint64_t helper_map_end(const struct helper_mirror *m);
/*
 * Read the newest valid copy. Returns 1: it is m's, present and dirty
 * filled; 0: no valid copy; -EEXIST: the newest is another mirror's
 * (image, version, size or chunk size; msg says whose); -ENOMEM. *gen is
 * the newest valid copy's generation (0: none) whatever the outcome.
 */
int helper_map_load(int fd, const struct helper_mirror *m, uint8_t *present,
		    uint8_t *dirty, uint64_t *gen, char *msg, size_t msglen);
/* write generation gen into its slot, then fdatasync the mirror */
int helper_map_save(int fd, const struct helper_mirror *m,
		    const uint8_t *present, const uint8_t *dirty, uint64_t gen);

/* --- MIRROR_DIR/commit.pub ---------------------------------------------- */

int helper_pub_save(const char *dir, const struct vmir_publish_ticket *t);
/*
 * Returns 1: loaded into *t; 0: there is no commit.pub; -errno with a
 * message in msg: unusable (-EBADMSG: damaged).
 */
int helper_pub_load(const char *dir, struct vmir_publish_ticket *t,
		    char *msg, size_t msglen);
/* 0 also when there was none */
int helper_pub_remove(const char *dir);

/* --- REG_DIR/vmirN -------------------------------------------------------- */

/* creates reg_dir; -ENAMETOOLONG / -EINVAL for values it cannot hold */
int helper_reg_write(const char *reg_dir, uint32_t id, const char *dir,
		     const char *image, uint32_t version);
/*
 * -ENOENT: no entry. -EBADMSG: a field is missing, repeated, too long or
 * (version) not a decimal u32. Any error comes with a message in msg.
 */
int helper_reg_read(const char *reg_dir, uint32_t id, char dir[PATH_MAX],
		    char image[VMIR_NAME_MAX], uint32_t *version,
		    char *msg, size_t msglen);
/* 0 also when there was no entry */
int helper_reg_remove(const char *reg_dir, uint32_t id);

#endif /* VMIR_HELPER_STATE_H */
