/* SPDX-License-Identifier: GPL-2.0 */
/*
 * versiond database: the namespace (versiond_state) made durable by the
 * log (versiond_log). Each mutation is checked, logged and fdatasync()ed,
 * then applied: a successful return means the change survives a crash.
 * No sockets here; the server and the unit tests drive the same calls.
 *
 * Functions return 0 or a negative errno that is the reply status:
 * -EINVAL bad argument, -ENOENT unknown image or version, -EEXIST name
 * taken, -ESTALE publish on a base that is not the latest version, -EBUSY
 * deleting the last version of an image, -EIO log write failed; -ESTALE
 * also a SET_PROFILE whose expected profile is not the current one.
 */
#ifndef VMIR_VERSIOND_DB_H
#define VMIR_VERSIOND_DB_H

#include <stddef.h>

#include "versiond_state.h"
#include "vmir_proto.h"

struct versiond_db;

/* versiond_db_open() flags */
#define VERSIOND_DB_RECOVER	(1u << 0)	/* --recover-log, see versiond_log.h */

/* -EUCLEAN: the log is corrupt (logged; see versiond_log.h) */
int versiond_db_open(const char *dir, unsigned int flags,
		     struct versiond_db **out);
void versiond_db_close(struct versiond_db *db);
const struct versiond_state *versiond_db_state(const struct versiond_db *db);

int versiond_db_create(struct versiond_db *db,
		       const struct vmir_create_req *q,
		       struct vmir_wire_version_info *out);
int versiond_db_publish(struct versiond_db *db,
			const struct vmir_publish_req *q,
			struct vmir_wire_version_info *out);
int versiond_db_clone(struct versiond_db *db, const struct vmir_clone_req *q,
		      struct vmir_wire_version_info *out);
/* -ESTALE: the version's profile is no longer q->old */
int versiond_db_set_profile(struct versiond_db *db,
			    const struct vmir_profile_req *q,
			    struct vmir_wire_version_info *out);
/* version 0: the whole image */
int versiond_db_delete(struct versiond_db *db, const char *name,
		       uint32_t version);
/* version 0: latest */
int versiond_db_lookup(const struct versiond_db *db, const char *name,
		       uint32_t version, struct vmir_wire_version_info *out);
/* malloc()ed arrays; free() them */
int versiond_db_list(const struct versiond_db *db,
		     struct vmir_wire_image_info **out, size_t *n);
int versiond_db_versions(const struct versiond_db *db, const char *name,
			 struct vmir_wire_version_info **out, size_t *n);

#endif /* VMIR_VERSIOND_DB_H */
