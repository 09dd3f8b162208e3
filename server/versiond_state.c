// SPDX-License-Identifier: GPL-2.0
/* versiond in-memory namespace, see versiond_state.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "versiond_state.h"

void versiond_state_init(struct versiond_state *s)
{
	memset(s, 0, sizeof(*s));
	s->next_image_id = 1;
}

static void versiond_image_free(struct versiond_image *im)
{
	if (!im)
		return;
	free(im->v);
	free(im);
}

void versiond_state_free(struct versiond_state *s)
{
	for (size_t i = 0; i < s->n; i++)
		versiond_image_free(s->img[i]);
	free(s->img);
	versiond_image_free(s->spare);
	memset(s, 0, sizeof(*s));
}

/* index of name, or of where it would be inserted (*found false) */
static size_t versiond_state_index(const struct versiond_state *s,
				   const char *name, bool *found)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(s->img[mid]->name, name);

		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

struct versiond_image *versiond_state_find(const struct versiond_state *s,
					   const char *name)
{
	bool found;
	size_t i = versiond_state_index(s, name, &found);

	return found ? s->img[i] : NULL;
}

/* index of version in im->v, or im->nv */
static size_t versiond_version_index(const struct versiond_image *im,
				     uint32_t version)
{
	size_t lo = 0, hi = im->nv;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (im->v[mid].version == version)
			return mid;
		if (im->v[mid].version < version)
			lo = mid + 1;
		else
			hi = mid;
	}
	return im->nv;
}

const struct versiond_version *
versiond_image_version(const struct versiond_image *im, uint32_t version)
{
	size_t i;

	if (!im->nv)
		return NULL;
	if (version == 0)
		return &im->v[im->nv - 1];
	i = versiond_version_index(im, version);
	return i < im->nv ? &im->v[i] : NULL;
}

const struct versiond_version *
versiond_image_token(const struct versiond_image *im,
		     const uint8_t token[VMIR_TOKEN_LEN])
{
	/* newest first: a retry finds a recent version at once */
	for (size_t i = im->nv; i-- > 0;) {
		if (!memcmp(im->v[i].token, token, VMIR_TOKEN_LEN))
			return &im->v[i];
	}
	return NULL;
}

void versiond_version_info(const struct versiond_state *s,
			   const struct versiond_image *im,
			   const struct versiond_version *v,
			   struct vmir_wire_version_info *out)
{
	const struct versiond_image *parent;

	memset(out, 0, sizeof(*out));
	strcpy(out->image, im->name);
	out->image_id = im->id;
	out->parent_image_id = v->parent_id;
	if (v->parent_id) {
		parent = versiond_state_find(s, v->parent);
		if (!parent || parent->id != v->parent_id)
			out->flags |= VMIR_VI_F_PARENT_DELETED;
	}
	out->version = v->version;
	out->size = v->size;
	out->chunk_size = im->chunk_size;
	out->root = v->root;
	strcpy(out->parent_image, v->parent);
	out->parent_version = v->parent_version;
	out->ctime_ns = v->ctime_ns;
	out->profile = v->profile;
	if (!v->profile_own && !vmir_id_is_zero(&v->profile))
		out->flags |= VMIR_VI_F_PROFILE_INHERITED;
}

void versiond_image_info(const struct versiond_image *im,
			 struct vmir_wire_image_info *out)
{
	const struct versiond_version *latest = &im->v[im->nv - 1];

	memset(out, 0, sizeof(*out));
	strcpy(out->name, im->name);
	out->size = latest->size;
	out->chunk_size = im->chunk_size;
	out->latest = latest->version;
	out->nversions = (uint32_t)im->nv;
	out->ctime_ns = im->ctime_ns;
}

/* --- mutation ----------------------------------------------------------- */

static int versiond_image_reserve(struct versiond_image *im, size_t n)
{
	struct versiond_version *v;
	size_t cap;

	if (n <= im->cap)
		return 0;
	cap = im->cap ? im->cap * 2 : 4;
	while (cap < n)
		cap *= 2;
	v = realloc(im->v, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	im->v = v;
	im->cap = cap;
	return 0;
}

int versiond_state_reserve(struct versiond_state *s,
			   const struct versiond_rec *rec)
{
	struct versiond_image **img, *im;
	size_t cap;

	switch (rec->type) {
	case VERSIOND_REC_CREATE:
	case VERSIOND_REC_CREATE_TOKEN:
		if (s->n == s->cap) {
			cap = s->cap ? s->cap * 2 : 16;
			img = realloc(s->img, cap * sizeof(*img));
			if (!img)
				return -ENOMEM;
			s->img = img;
			s->cap = cap;
		}
		if (!s->spare) {
			s->spare = calloc(1, sizeof(*s->spare));
			if (!s->spare)
				return -ENOMEM;
		}
		return versiond_image_reserve(s->spare, 1);
	case VERSIOND_REC_PUBLISH:
	case VERSIOND_REC_PUBLISH_TOKEN:
		im = versiond_state_find(s, rec->name);
		return im ? versiond_image_reserve(im, im->nv + 1) : 0;
	default:
		return 0;
	}
}

/* a new version starts with its parent version's profile, if any */
static void versiond_inherit_profile(struct versiond_version *v,
				     const struct versiond_image *parent,
				     uint32_t parent_version)
{
	const struct versiond_version *pv;

	if (!parent || !parent_version)
		return;
	pv = versiond_image_version(parent, parent_version);
	if (pv)
		v->profile = pv->profile;
}

static int versiond_apply_create(struct versiond_state *s,
				 const struct versiond_rec *rec,
				 const char **why)
{
	const struct versiond_image *src = NULL;
	struct versiond_image *im;
	struct versiond_version *v;
	bool found;
	size_t i;
	uint64_t parent_id = 0;
	int ret;

	i = versiond_state_index(s, rec->name, &found);
	if (found) {
		*why = "image already exists";
		return -EINVAL;
	}
	if (rec->parent[0]) {
		src = versiond_state_find(s, rec->parent);
		if (!src) {
			*why = "clone of an unknown image";
			return -EINVAL;
		}
		parent_id = src->id;
	}
	ret = versiond_state_reserve(s, rec);
	if (ret)
		return ret;
	im = s->spare;
	s->spare = NULL;
	im->id = s->next_image_id++;
	strcpy(im->name, rec->name);
	im->chunk_size = rec->chunk_size;
	im->ctime_ns = rec->ctime_ns;
	im->next_version = 2;
	v = &im->v[0];
	memset(v, 0, sizeof(*v));
	v->version = 1;
	v->size = rec->size;
	v->root = rec->root;
	strcpy(v->parent, rec->parent);
	v->parent_id = parent_id;
	v->parent_version = rec->parent_version;
	v->ctime_ns = rec->ctime_ns;
	memcpy(v->token, rec->token, sizeof(v->token));
	versiond_inherit_profile(v, src, rec->parent_version);
	im->nv = 1;
	memmove(&s->img[i + 1], &s->img[i], (s->n - i) * sizeof(*s->img));
	s->img[i] = im;
	s->n++;
	return 0;
}

static int versiond_apply_publish(struct versiond_state *s,
				  const struct versiond_rec *rec,
				  const char **why)
{
	struct versiond_image *im = versiond_state_find(s, rec->name);
	struct versiond_version *v;
	int ret;

	if (!im) {
		*why = "publish to an unknown image";
		return -EINVAL;
	}
	if (rec->version != im->next_version) {
		*why = "version number out of order";
		return -EINVAL;
	}
	ret = versiond_image_reserve(im, im->nv + 1);
	if (ret)
		return ret;
	v = &im->v[im->nv++];
	memset(v, 0, sizeof(*v));
	v->version = rec->version;
	v->size = rec->size;
	v->root = rec->root;
	strcpy(v->parent, rec->parent);
	/* a publish builds on a version of the same image */
	v->parent_id = rec->parent[0] ? im->id : 0;
	v->parent_version = rec->parent_version;
	v->ctime_ns = rec->ctime_ns;
	memcpy(v->token, rec->token, sizeof(v->token));
	versiond_inherit_profile(v, rec->parent[0] ? im : NULL,
				 rec->parent_version);
	im->next_version = rec->version + 1;
	return 0;
}

/*
 * The version rec names: its image into *imp, its index into *ip; else
 * -EINVAL with *why no_image or no_version.
 */
static int versiond_rec_version(struct versiond_state *s,
				const struct versiond_rec *rec,
				const char *no_image, const char *no_version,
				const char **why, struct versiond_image **imp,
				size_t *ip)
{
	struct versiond_image *im = versiond_state_find(s, rec->name);

	if (!im) {
		*why = no_image;
		return -EINVAL;
	}
	*ip = versiond_version_index(im, rec->version);
	if (*ip == im->nv) {
		*why = no_version;
		return -EINVAL;
	}
	*imp = im;
	return 0;
}

static int versiond_apply_del_version(struct versiond_state *s,
				      const struct versiond_rec *rec,
				      const char **why)
{
	struct versiond_image *im;
	size_t i;

	if (versiond_rec_version(s, rec, "delete in an unknown image",
				 "delete of an unknown version", why, &im, &i))
		return -EINVAL;
	if (im->nv == 1) {
		*why = "delete of the only version of an image";
		return -EINVAL;
	}
	memmove(&im->v[i], &im->v[i + 1], (im->nv - i - 1) * sizeof(*im->v));
	im->nv--;
	return 0;
}

static int versiond_apply_del_image(struct versiond_state *s,
				    const struct versiond_rec *rec,
				    const char **why)
{
	bool found;
	size_t i = versiond_state_index(s, rec->name, &found);

	if (!found) {
		*why = "delete of an unknown image";
		return -EINVAL;
	}
	versiond_image_free(s->img[i]);
	memmove(&s->img[i], &s->img[i + 1], (s->n - i - 1) * sizeof(*s->img));
	s->n--;
	return 0;
}

static int versiond_apply_profile(struct versiond_state *s,
				  const struct versiond_rec *rec,
				  const char **why)
{
	struct versiond_image *im;
	size_t i;

	if (versiond_rec_version(s, rec, "profile of an unknown image",
				 "profile of an unknown version", why, &im, &i))
		return -EINVAL;
	im->v[i].profile = rec->profile;
	im->v[i].profile_own = true;
	return 0;
}

/* no image or version number the cut records may have used is given out */
static int versiond_apply_recover(struct versiond_state *s,
				  const struct versiond_rec *rec,
				  const char **why)
{
	for (size_t i = 0; i < s->n; i++) {
		if (s->img[i]->next_version > UINT32_MAX - rec->skip) {
			*why = "version numbers exhausted";
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < s->n; i++)
		s->img[i]->next_version += rec->skip;
	s->next_image_id += rec->skip;
	return 0;
}

int versiond_state_apply(struct versiond_state *s,
			 const struct versiond_rec *rec, const char **why)
{
	switch (rec->type) {
	case VERSIOND_REC_CREATE:
	case VERSIOND_REC_CREATE_TOKEN:
		return versiond_apply_create(s, rec, why);
	case VERSIOND_REC_PUBLISH:
	case VERSIOND_REC_PUBLISH_TOKEN:
		return versiond_apply_publish(s, rec, why);
	case VERSIOND_REC_DEL_VERSION:
		return versiond_apply_del_version(s, rec, why);
	case VERSIOND_REC_DEL_IMAGE:
		return versiond_apply_del_image(s, rec, why);
	case VERSIOND_REC_RECOVER:
		return versiond_apply_recover(s, rec, why);
	case VERSIOND_REC_PROFILE:
		return versiond_apply_profile(s, rec, why);
	default:
		*why = "unknown record type";
		return -EINVAL;
	}
}

/* --- record codec --------------------------------------------------------- */

void versiond_rec_encode(const struct versiond_rec *rec, struct vmir_wbuf *w)
{
	if (rec->type == VERSIOND_REC_RECOVER) {
		vmir_put_u64(w, rec->cut_off);
		vmir_put_u64(w, rec->cut_len);
		vmir_put_u32(w, rec->skip);
		vmir_put_u64(w, rec->ctime_ns);
		return;
	}
	vmir_put_str(w, rec->name);
	switch (rec->type) {
	case VERSIOND_REC_CREATE:
	case VERSIOND_REC_CREATE_TOKEN:
		vmir_put_u64(w, rec->size);
		vmir_put_u32(w, rec->chunk_size);
		vmir_put_id(w, &rec->root);
		vmir_put_str(w, rec->parent);
		vmir_put_u32(w, rec->parent_version);
		vmir_put_u64(w, rec->ctime_ns);
		if (rec->type == VERSIOND_REC_CREATE_TOKEN)
			vmir_put_bytes(w, rec->token, sizeof(rec->token));
		break;
	case VERSIOND_REC_PUBLISH:
	case VERSIOND_REC_PUBLISH_TOKEN:
		vmir_put_u32(w, rec->version);
		vmir_put_u64(w, rec->size);
		vmir_put_id(w, &rec->root);
		vmir_put_str(w, rec->parent);
		vmir_put_u32(w, rec->parent_version);
		vmir_put_u64(w, rec->ctime_ns);
		if (rec->type == VERSIOND_REC_PUBLISH_TOKEN)
			vmir_put_bytes(w, rec->token, sizeof(rec->token));
		break;
	case VERSIOND_REC_DEL_VERSION:
		vmir_put_u32(w, rec->version);
		break;
	case VERSIOND_REC_PROFILE:
		vmir_put_u32(w, rec->version);
		vmir_put_id(w, &rec->profile);
		break;
	default:
		break;
	}
}

int versiond_rec_decode(uint16_t type, const void *p, size_t len,
			struct versiond_rec *rec)
{
	struct vmir_rbuf r;

	memset(rec, 0, sizeof(*rec));
	rec->type = type;
	vmir_rbuf_init(&r, p, len);
	if (type == VERSIOND_REC_RECOVER) {
		rec->cut_off = vmir_get_u64(&r);
		rec->cut_len = vmir_get_u64(&r);
		rec->skip = vmir_get_u32(&r);
		rec->ctime_ns = vmir_get_u64(&r);
		return vmir_rbuf_end(&r) < 0 ? -EBADMSG : 0;
	}
	vmir_get_str(&r, rec->name, sizeof(rec->name));
	switch (type) {
	case VERSIOND_REC_CREATE:
	case VERSIOND_REC_CREATE_TOKEN:
		rec->size = vmir_get_u64(&r);
		rec->chunk_size = vmir_get_u32(&r);
		vmir_get_id(&r, &rec->root);
		vmir_get_str(&r, rec->parent, sizeof(rec->parent));
		rec->parent_version = vmir_get_u32(&r);
		rec->ctime_ns = vmir_get_u64(&r);
		if (type == VERSIOND_REC_CREATE_TOKEN)
			vmir_get_bytes(&r, rec->token, sizeof(rec->token));
		if (!r.err && !vmir_chunk_size_valid(rec->chunk_size))
			return -EBADMSG;
		break;
	case VERSIOND_REC_PUBLISH:
	case VERSIOND_REC_PUBLISH_TOKEN:
		rec->version = vmir_get_u32(&r);
		rec->size = vmir_get_u64(&r);
		vmir_get_id(&r, &rec->root);
		vmir_get_str(&r, rec->parent, sizeof(rec->parent));
		rec->parent_version = vmir_get_u32(&r);
		rec->ctime_ns = vmir_get_u64(&r);
		if (type == VERSIOND_REC_PUBLISH_TOKEN)
			vmir_get_bytes(&r, rec->token, sizeof(rec->token));
		break;
	case VERSIOND_REC_DEL_VERSION:
		rec->version = vmir_get_u32(&r);
		break;
	case VERSIOND_REC_DEL_IMAGE:
		break;
	case VERSIOND_REC_PROFILE:
		rec->version = vmir_get_u32(&r);
		vmir_get_id(&r, &rec->profile);
		if (!r.err && (!rec->version || vmir_id_is_zero(&rec->profile)))
			return -EBADMSG;
		break;
	default:
		return -EBADMSG;
	}
	if (vmir_rbuf_end(&r) < 0 || vmir_name_valid(rec->name) < 0)
		return -EBADMSG;
	if (rec->parent[0] && vmir_name_valid(rec->parent) < 0)
		return -EBADMSG;
	return 0;
}

void versiond_state_dump(const struct versiond_state *s, struct vmir_wbuf *w)
{
	vmir_put_u64(w, s->next_image_id);
	vmir_put_u64(w, s->n);
	for (size_t i = 0; i < s->n; i++) {
		const struct versiond_image *im = s->img[i];

		vmir_put_u64(w, im->id);
		vmir_put_str(w, im->name);
		vmir_put_u32(w, im->chunk_size);
		vmir_put_u64(w, im->ctime_ns);
		vmir_put_u32(w, im->next_version);
		vmir_put_u64(w, im->nv);
		for (size_t j = 0; j < im->nv; j++) {
			const struct versiond_version *v = &im->v[j];

			vmir_put_u32(w, v->version);
			vmir_put_u64(w, v->size);
			vmir_put_id(w, &v->root);
			vmir_put_str(w, v->parent);
			vmir_put_u64(w, v->parent_id);
			vmir_put_u32(w, v->parent_version);
			vmir_put_u64(w, v->ctime_ns);
			vmir_put_bytes(w, v->token, sizeof(v->token));
			vmir_put_id(w, &v->profile);
			vmir_put_u8(w, v->profile_own);
		}
	}
}
