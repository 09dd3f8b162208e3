// SPDX-License-Identifier: GPL-2.0
/* versiond database: checked, logged, then applied. See versiond_db.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "versiond_db.h"
#include "versiond_log.h"
#include "vmir_util.h"

struct versiond_db {
	struct versiond_state state;
	struct versiond_log *log;
	uint64_t nrecords;		/* replayed at open */
};

static int versiond_db_replay(void *arg, uint16_t type,
			      const uint8_t *payload, uint32_t len,
			      uint64_t off)
{
	struct versiond_db *db = arg;
	struct versiond_rec rec;
	const char *why = NULL;
	int ret;

	ret = versiond_rec_decode(type, payload, len, &rec);
	if (ret < 0) {
		vmir_err("log record at offset %" PRIu64 " (type %u) does not "
			 "decode; the log is inconsistent, restore it from a "
			 "backup", off, type);
		return ret;
	}
	ret = versiond_state_apply(&db->state, &rec, &why);
	if (ret < 0) {
		vmir_err("log record at offset %" PRIu64 " for image '%s' does "
			 "not apply: %s; the log is inconsistent, restore it "
			 "from a backup", off, rec.name,
			 why ? why : strerror(-ret));
		return ret;
	}
	db->nrecords++;
	return 0;
}

static int versiond_db_commit(struct versiond_db *db,
			      const struct versiond_rec *rec);

/*
 * The smallest record: header, a one-byte name, checksum. A cut of n
 * bytes held at most n / VERSIOND_REC_MIN records.
 */
#define VERSIOND_REC_MIN	(VERSIOND_REC_HDR_LEN + 3 + VERSIOND_REC_SUM_LEN)

/*
 * The log was cut: record it, and skip every number the cut records may
 * have given out, so that no version number ever names two contents.
 */
static int versiond_db_recovered(struct versiond_db *db, uint64_t off,
				 uint64_t len)
{
	struct versiond_rec rec;
	int ret;

	memset(&rec, 0, sizeof(rec));
	rec.type = VERSIOND_REC_RECOVER;
	rec.cut_off = off;
	rec.cut_len = len;
	rec.skip = len / VERSIOND_REC_MIN < (1u << 30) ?
		   (uint32_t)(len / VERSIOND_REC_MIN) + 1 : 1u << 30;
	rec.ctime_ns = vmir_now_ns();
	ret = versiond_db_commit(db, &rec);
	if (ret < 0) {
		vmir_err("%s: cannot record the recovery: %s",
			 versiond_log_path(db->log), strerror(-ret));
		return ret;
	}
	vmir_warn("%s: recovered; the next version of every image skips %u "
		  "numbers so none the cut records gave out is reused. Images "
		  "created, versions published and deletions made in the cut "
		  "part are lost: check the images their users expect",
		  versiond_log_path(db->log), rec.skip);
	return 0;
}

int versiond_db_open(const char *dir, unsigned int flags,
		     struct versiond_db **out)
{
	struct versiond_db *db;
	uint64_t off, len;
	int ret;

	db = calloc(1, sizeof(*db));
	if (!db)
		return -ENOMEM;
	versiond_state_init(&db->state);
	ret = versiond_log_open(dir, flags & VERSIOND_DB_RECOVER ?
				VERSIOND_LOG_RECOVER : 0,
				versiond_db_replay, db, &db->log);
	if (ret < 0)
		goto out_free;
	if (versiond_log_cut(db->log, &off, &len)) {
		ret = versiond_db_recovered(db, off, len);
		if (ret < 0)
			goto out_close;
	}
	vmir_info("%s: %" PRIu64 " records, %zu images",
		  versiond_log_path(db->log), db->nrecords, db->state.n);
	*out = db;
	return 0;

out_close:
	versiond_log_close(db->log);
out_free:
	versiond_state_free(&db->state);
	free(db);
	return ret;
}

void versiond_db_close(struct versiond_db *db)
{
	if (!db)
		return;
	versiond_log_close(db->log);
	versiond_state_free(&db->state);
	free(db);
}

const struct versiond_state *versiond_db_state(const struct versiond_db *db)
{
	return &db->state;
}

/* log rec, then apply it; the caller has checked it against the state */
static int versiond_db_commit(struct versiond_db *db,
			      const struct versiond_rec *rec)
{
	const char *why = NULL;
	struct vmir_wbuf w;
	int ret;

	ret = versiond_state_reserve(&db->state, rec);
	if (ret < 0)
		return ret;
	/*
	 * record types from RECOVER on need log format 2, CREATE_TOKEN 3,
	 * PROFILE 4
	 */
	if (rec->type >= VERSIOND_REC_RECOVER) {
		ret = versiond_log_upgrade(db->log,
					   rec->type >= VERSIOND_REC_PROFILE ? 4 :
					   rec->type >= VERSIOND_REC_CREATE_TOKEN ?
					   3 : 2);
		if (ret < 0)
			return ret;
	}
	vmir_wbuf_init(&w);
	versiond_rec_encode(rec, &w);
	ret = w.err;
	if (!ret)
		ret = versiond_log_append(db->log, rec->type, w.p,
					  (uint32_t)w.len);
	vmir_wbuf_free(&w);
	if (ret < 0)
		return ret;
	ret = versiond_state_apply(&db->state, rec, &why);
	if (ret < 0) {
		/* checked and reserved: cannot happen */
		vmir_err("applying a logged %u record for '%s' failed: %s",
			 rec->type, rec->name, why ? why : strerror(-ret));
		abort();
	}
	return 0;
}

static int versiond_db_result(struct versiond_db *db, const char *name,
			      uint32_t version,
			      struct vmir_wire_version_info *out)
{
	const struct versiond_image *im = versiond_state_find(&db->state,
							      name);
	const struct versiond_version *v;

	if (!im || !(v = versiond_image_version(im, version)))
		return -ENOENT;
	if (out)
		versiond_version_info(&db->state, im, v, out);
	return 0;
}

static bool versiond_token_set(const uint8_t token[VMIR_TOKEN_LEN])
{
	static const uint8_t no_token[VMIR_TOKEN_LEN];

	return memcmp(token, no_token, sizeof(no_token)) != 0;
}

/*
 * A retry of a CREATE or CLONE that was applied (its reply lost): name's
 * version 1 was made by a request with this token, size and root. Its
 * info into out, and true.
 */
static bool versiond_db_created(struct versiond_db *db, const char *name,
				const uint8_t token[VMIR_TOKEN_LEN],
				uint64_t size, const struct vmir_id *root,
				struct vmir_wire_version_info *out)
{
	const struct versiond_image *im = versiond_state_find(&db->state,
							      name);
	const struct versiond_version *v;

	if (!im || !versiond_token_set(token))
		return false;
	v = versiond_image_version(im, 1);
	if (!v || memcmp(v->token, token, VMIR_TOKEN_LEN) ||
	    (root && (v->size != size || !vmir_id_eq(&v->root, root))))
		return false;
	if (out)
		versiond_version_info(&db->state, im, v, out);
	return true;
}

int versiond_db_create(struct versiond_db *db,
		       const struct vmir_create_req *q,
		       struct vmir_wire_version_info *out)
{
	struct versiond_rec rec;
	int ret;

	if (vmir_name_valid(q->name) < 0 || q->size < 1 ||
	    !vmir_chunk_size_valid(q->chunk_size))
		return -EINVAL;
	if (versiond_db_created(db, q->name, q->token, q->size, &q->root, out))
		return 0;
	if (versiond_state_find(&db->state, q->name))
		return -EEXIST;
	memset(&rec, 0, sizeof(rec));
	rec.type = versiond_token_set(q->token) ? VERSIOND_REC_CREATE_TOKEN :
						  VERSIOND_REC_CREATE;
	memcpy(rec.token, q->token, sizeof(rec.token));
	strcpy(rec.name, q->name);
	rec.size = q->size;
	rec.chunk_size = q->chunk_size;
	rec.root = q->root;
	rec.ctime_ns = vmir_now_ns();
	ret = versiond_db_commit(db, &rec);
	if (ret < 0)
		return ret;
	return versiond_db_result(db, q->name, 1, out);
}

int versiond_db_publish(struct versiond_db *db,
			const struct vmir_publish_req *q,
			struct vmir_wire_version_info *out)
{
	bool token = versiond_token_set(q->token);
	const struct versiond_version *done;
	const struct versiond_image *im;
	struct versiond_rec rec;
	int ret;

	if (vmir_name_valid(q->name) < 0 || q->size < 1)
		return -EINVAL;
	im = versiond_state_find(&db->state, q->name);
	if (!im)
		return -ENOENT;
	/*
	 * A retry of a publish that was applied (its reply lost): answer
	 * with the version it made, whatever was published since.
	 */
	done = token ? versiond_image_token(im, q->token) : NULL;
	if (done && done->parent_version == q->base_version &&
	    done->size == q->size && vmir_id_eq(&done->root, &q->root)) {
		if (out)
			versiond_version_info(&db->state, im, done, out);
		return 0;
	}
	if (q->base_version != im->v[im->nv - 1].version)
		return -ESTALE;
	memset(&rec, 0, sizeof(rec));
	rec.type = token ? VERSIOND_REC_PUBLISH_TOKEN : VERSIOND_REC_PUBLISH;
	memcpy(rec.token, q->token, sizeof(rec.token));
	strcpy(rec.name, q->name);
	rec.version = im->next_version;
	rec.size = q->size;
	rec.root = q->root;
	strcpy(rec.parent, q->name);
	rec.parent_version = q->base_version;
	rec.ctime_ns = vmir_now_ns();
	ret = versiond_db_commit(db, &rec);
	if (ret < 0)
		return ret;
	return versiond_db_result(db, q->name, rec.version, out);
}

int versiond_db_clone(struct versiond_db *db, const struct vmir_clone_req *q,
		      struct vmir_wire_version_info *out)
{
	const struct versiond_version *v;
	const struct versiond_image *im;
	struct versiond_rec rec;
	int ret;

	if (vmir_name_valid(q->src) < 0 || vmir_name_valid(q->dst) < 0)
		return -EINVAL;
	/* a retry: the content is checked where the request names it */
	if (versiond_db_created(db, q->dst, q->token, q->size,
				(q->flags & VMIR_CLONE_F_CONTENT) ? &q->root :
								    NULL, out))
		return 0;
	im = versiond_state_find(&db->state, q->src);
	if (!im)
		return -ENOENT;
	v = versiond_image_version(im, q->src_version);
	if (!v)
		return -ENOENT;
	if (versiond_state_find(&db->state, q->dst))
		return -EEXIST;
	memset(&rec, 0, sizeof(rec));
	rec.type = versiond_token_set(q->token) ? VERSIOND_REC_CREATE_TOKEN :
						  VERSIOND_REC_CREATE;
	memcpy(rec.token, q->token, sizeof(rec.token));
	strcpy(rec.name, q->dst);
	rec.chunk_size = im->chunk_size;
	if (q->flags & VMIR_CLONE_F_CONTENT) {
		rec.size = q->size;
		rec.root = q->root;
	} else {
		rec.size = v->size;
		rec.root = v->root;
	}
	strcpy(rec.parent, q->src);
	rec.parent_version = v->version;
	rec.ctime_ns = vmir_now_ns();
	ret = versiond_db_commit(db, &rec);
	if (ret < 0)
		return ret;
	return versiond_db_result(db, q->dst, 1, out);
}

int versiond_db_delete(struct versiond_db *db, const char *name,
		       uint32_t version)
{
	const struct versiond_image *im;
	struct versiond_rec rec;

	if (vmir_name_valid(name) < 0)
		return -EINVAL;
	im = versiond_state_find(&db->state, name);
	if (!im)
		return -ENOENT;
	memset(&rec, 0, sizeof(rec));
	strcpy(rec.name, name);
	if (version == 0) {
		rec.type = VERSIOND_REC_DEL_IMAGE;
	} else {
		if (!versiond_image_version(im, version))
			return -ENOENT;
		if (im->nv == 1)
			return -EBUSY;
		rec.type = VERSIOND_REC_DEL_VERSION;
		rec.version = version;
	}
	return versiond_db_commit(db, &rec);
}

int versiond_db_set_profile(struct versiond_db *db,
			    const struct vmir_profile_req *q,
			    struct vmir_wire_version_info *out)
{
	const struct versiond_image *im;
	const struct versiond_version *v;
	struct versiond_rec rec;
	int ret;

	if (vmir_name_valid(q->name) < 0 || !q->version ||
	    vmir_id_is_zero(&q->profile))
		return -EINVAL;
	im = versiond_state_find(&db->state, q->name);
	if (!im || !(v = versiond_image_version(im, q->version)))
		return -ENOENT;
	/* a retry of a SET_PROFILE that was applied: done */
	if (v->profile_own && vmir_id_eq(&v->profile, &q->profile))
		return versiond_db_result(db, q->name, q->version, out);
	if (!vmir_id_eq(&v->profile, &q->old))
		return -ESTALE;
	memset(&rec, 0, sizeof(rec));
	rec.type = VERSIOND_REC_PROFILE;
	strcpy(rec.name, q->name);
	rec.version = q->version;
	rec.profile = q->profile;
	ret = versiond_db_commit(db, &rec);
	if (ret < 0)
		return ret;
	return versiond_db_result(db, q->name, q->version, out);
}

int versiond_db_lookup(const struct versiond_db *db, const char *name,
		       uint32_t version, struct vmir_wire_version_info *out)
{
	if (vmir_name_valid(name) < 0)
		return -EINVAL;
	return versiond_db_result((struct versiond_db *)db, name, version,
				  out);
}

int versiond_db_list(const struct versiond_db *db,
		     struct vmir_wire_image_info **out, size_t *n)
{
	const struct versiond_state *s = &db->state;
	struct vmir_wire_image_info *a;

	a = calloc(s->n ? s->n : 1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	for (size_t i = 0; i < s->n; i++)
		versiond_image_info(s->img[i], &a[i]);
	*out = a;
	*n = s->n;
	return 0;
}

int versiond_db_versions(const struct versiond_db *db, const char *name,
			 struct vmir_wire_version_info **out, size_t *n)
{
	const struct versiond_image *im;
	struct vmir_wire_version_info *a;

	if (vmir_name_valid(name) < 0)
		return -EINVAL;
	im = versiond_state_find(&db->state, name);
	if (!im)
		return -ENOENT;
	a = calloc(im->nv, sizeof(*a));
	if (!a)
		return -ENOMEM;
	for (size_t i = 0; i < im->nv; i++)
		versiond_version_info(&db->state, im, &im->v[i], &a[i]);
	*out = a;
	*n = im->nv;
	return 0;
}
