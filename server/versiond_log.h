/* SPDX-License-Identifier: GPL-2.0 */
/*
 * versiond append-only log, DIR/versiond.log:
 *
 *   file header (16 bytes): "VMIRVLOG", u32 format version (1), u32 zero
 *   records:  u32 magic "VREC" | u16 type | u16 reserved (0) |
 *             u32 payload length | payload |
 *             16-byte BLAKE2b (unkeyed) over header and payload
 *
 * All integers little-endian. Appends are fdatasync()ed before they
 * return. At open the records are replayed in order; a torn or corrupt
 * tail (no valid record after it) is dropped and the file truncated, while
 * a bad record followed by valid ones refuses to open (not a torn write).
 */
#ifndef VMIR_VERSIOND_LOG_H
#define VMIR_VERSIOND_LOG_H

#include <stdbool.h>
#include <stdint.h>

#define VERSIOND_LOG_NAME	"versiond.log"
#define VERSIOND_LOG_VERSION	1
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

/* create DIR/versiond.log if missing, lock it, replay it */
int versiond_log_open(const char *dir, versiond_replay_fn fn, void *arg,
		      struct versiond_log **out);
void versiond_log_close(struct versiond_log *log);
/* append one record and fdatasync; 0 or -errno (then nothing was added) */
int versiond_log_append(struct versiond_log *log, uint16_t type,
			const void *payload, uint32_t len);
const char *versiond_log_path(const struct versiond_log *log);

#endif /* VMIR_VERSIOND_LOG_H */
