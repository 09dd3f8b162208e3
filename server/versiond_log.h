/* SPDX-License-Identifier: GPL-2.0 */
/*
 * versiond append-only log, DIR/versiond.log:
 *
 *   file header (16 bytes): "VMIRVLOG", u32 format version, u32 zero
 *   records:  u32 magic "VREC" | u16 type | u16 reserved (0) |
 *             u32 payload length | payload |
 *             16-byte BLAKE2b (unkeyed) over header and payload
 *
 * All integers little-endian. Appends are fdatasync()ed before they
 * return, one at a time, so a crash can leave at most one incomplete
 * record, at the end. At open the records are replayed in order, then:
 *
 *  - an incomplete last record (fewer bytes left than its header says, or
 *    a zero-filled tail shorter than a record) is the trace of such a
 *    crash: it was never acknowledged; it is dropped with a warning;
 *  - any other record that fails its check (magic, fields, checksum),
 *    last or not, is corruption of something that was acknowledged: the
 *    open fails with -EUCLEAN, naming the file and the offset;
 *  - with VERSIOND_LOG_RECOVER the log is instead cut at that offset,
 *    after the cut bytes were copied to DIR/versiond.log.cut-OFFSET-TIME
 *    (fsynced; the name is logged); versiond_log_cut() reports the cut.
 *
 * The format version is 1 to 4; the caller upgrades an older log with
 * versiond_log_upgrade() before appending records only a newer version
 * has (2: RECOVER, PUBLISH_TOKEN; 3: CREATE_TOKEN; 4: PROFILE).
 */
#ifndef VMIR_VERSIOND_LOG_H
#define VMIR_VERSIOND_LOG_H

#include <stdbool.h>
#include <stdint.h>

#define VERSIOND_LOG_NAME	"versiond.log"
#define VERSIOND_LOG_VERSION	4	/* written by new logs, highest read */
#define VERSIOND_LOG_HDR_LEN	16
#define VERSIOND_REC_MAGIC	0x43455256u	/* "VREC" */
#define VERSIOND_REC_HDR_LEN	12
#define VERSIOND_REC_SUM_LEN	16
#define VERSIOND_REC_MAX	4096		/* payload bytes */

struct versiond_log;

/* called for each valid record in order; non-zero stops the open */
typedef int (*versiond_replay_fn)(void *arg, uint16_t type,
				  const uint8_t *payload, uint32_t len,
				  uint64_t off);

/* versiond_log_open() flags */
#define VERSIOND_LOG_RECOVER	(1u << 0)	/* cut a corrupt tail, keep a copy */

/*
 * Create DIR/versiond.log if missing, lock it, replay it. -EUCLEAN: a
 * corrupt record (logged with its offset), nothing changed on disk.
 */
int versiond_log_open(const char *dir, unsigned int flags,
		      versiond_replay_fn fn, void *arg,
		      struct versiond_log **out);
void versiond_log_close(struct versiond_log *log);
/* append one record and fdatasync; 0 or -errno (then nothing was added) */
int versiond_log_append(struct versiond_log *log, uint16_t type,
			const void *payload, uint32_t len);
const char *versiond_log_path(const struct versiond_log *log);
/* format version of the file (1 to VERSIOND_LOG_VERSION) */
uint32_t versiond_log_version(const struct versiond_log *log);
/* rewrite the header's format version in place (fdatasynced); 0 or -errno */
int versiond_log_upgrade(struct versiond_log *log, uint32_t version);
/*
 * true if the open cut a corrupt tail (VERSIOND_LOG_RECOVER): it was at
 * *off and *len bytes long
 */
bool versiond_log_cut(const struct versiond_log *log, uint64_t *off,
		      uint64_t *len);

#endif /* VMIR_VERSIOND_LOG_H */
