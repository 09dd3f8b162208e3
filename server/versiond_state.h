/* SPDX-License-Identifier: GPL-2.0 */
/*
 * versiond in-memory namespace and the records that change it.
 *
 * Images are kept in an array sorted by name; each image keeps its
 * versions in ascending order. An image has an id, never given to another
 * image even after it is deleted and its name reused: ids are 1, 2, 3, ...
 * in the order of the CREATE records in the log, RECOVER records skipping
 * some. Replay gives every image the same id again, so the log holds them
 * without a field for it. A version's parent is an image id (and the name
 * that image had), resolved when the CREATE or PUBLISH is applied, so a
 * clone keeps naming its true source after that is deleted. Every mutation is expressed as a record
 * (what happened, with the version numbers and times it assigned) so the
 * same apply function serves live requests and log replay.
 */
#ifndef VMIR_VERSIOND_STATE_H
#define VMIR_VERSIOND_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmir_proto.h"

enum versiond_rec_type {
	VERSIOND_REC_CREATE = 1,	/* new image at version 1 (create, clone) */
	VERSIOND_REC_PUBLISH = 2,	/* new version of an image */
	VERSIOND_REC_DEL_VERSION = 3,	/* drop one version */
	VERSIOND_REC_DEL_IMAGE = 4,	/* drop an image and all its versions */
	/*
	 * Log format 2 and later. The log was cut (--recover-log): numbers
	 * the cut records may have given out are skipped, so none is given
	 * twice.
	 */
	VERSIOND_REC_RECOVER = 5,
	/* log format 2: PUBLISH with the client's publish token */
	VERSIOND_REC_PUBLISH_TOKEN = 6,
	/* log format 3: CREATE (create, clone) with the client's token */
	VERSIOND_REC_CREATE_TOKEN = 7,
	/* log format 4: a version's own access profile (SET_PROFILE) */
	VERSIOND_REC_PROFILE = 8,
};

struct versiond_rec {
	uint16_t type;
	char name[VMIR_NAME_MAX];
	uint32_t version;		/* PUBLISH, DEL_VERSION */
	uint64_t size;			/* CREATE, PUBLISH */
	uint32_t chunk_size;		/* CREATE */
	struct vmir_id root;		/* CREATE, PUBLISH */
	char parent[VMIR_NAME_MAX];	/* CREATE, PUBLISH ("" = none) */
	uint32_t parent_version;	/* CREATE, PUBLISH */
	uint64_t ctime_ns;		/* CREATE, PUBLISH, RECOVER */
	uint64_t cut_off, cut_len;	/* RECOVER: what was cut */
	uint32_t skip;			/* RECOVER: numbers to skip */
	uint8_t token[VMIR_TOKEN_LEN];	/* PUBLISH_TOKEN */
	struct vmir_id profile;		/* PROFILE (version: its version) */
};

struct versiond_version {
	uint32_t version;
	uint64_t size;
	struct vmir_id root;
	char parent[VMIR_NAME_MAX];	/* the parent image's name ("" = none) */
	uint64_t parent_id;		/* the parent image's id (0 = none) */
	uint32_t parent_version;
	uint64_t ctime_ns;
	uint8_t token[VMIR_TOKEN_LEN];	/* of its PUBLISH; all zero: none */
	/*
	 * Access profile: its own (a PROFILE record), or its parent
	 * version's as it was when this version was made; zero: none.
	 */
	struct vmir_id profile;
	bool profile_own;
};

struct versiond_image {
	uint64_t id;			/* never reused */
	char name[VMIR_NAME_MAX];
	uint32_t chunk_size;
	uint64_t ctime_ns;
	uint32_t next_version;		/* never reused, even after deletes */
	struct versiond_version *v;	/* ascending */
	size_t nv, cap;
};

struct versiond_state {
	struct versiond_image **img;	/* sorted by name */
	size_t n, cap;
	struct versiond_image *spare;	/* reserved for the next CREATE */
	uint64_t next_image_id;		/* id of the next CREATE */
};

void versiond_state_init(struct versiond_state *s);
void versiond_state_free(struct versiond_state *s);

struct versiond_image *versiond_state_find(const struct versiond_state *s,
					   const char *name);
/* version 0 = latest; NULL if absent */
const struct versiond_version *
versiond_image_version(const struct versiond_image *im, uint32_t version);
/* the version a PUBLISH with this (non-zero) token made; NULL if none */
const struct versiond_version *
versiond_image_token(const struct versiond_image *im,
		     const uint8_t token[VMIR_TOKEN_LEN]);

/* s tells whether the version's parent image still exists */
void versiond_version_info(const struct versiond_state *s,
			   const struct versiond_image *im,
			   const struct versiond_version *v,
			   struct vmir_wire_version_info *out);
void versiond_image_info(const struct versiond_image *im,
			 struct vmir_wire_image_info *out);

/*
 * Allocate what applying rec will need so versiond_state_apply() of a
 * checked record cannot fail after it was logged. 0 or -ENOMEM.
 */
int versiond_state_reserve(struct versiond_state *s,
			   const struct versiond_rec *rec);
/*
 * Apply a record. Returns -EINVAL (with *why) if it does not fit the
 * current state (a log that does not replay), -ENOMEM if not reserved.
 */
int versiond_state_apply(struct versiond_state *s,
			 const struct versiond_rec *rec, const char **why);

/* record payload codec (the log's record type is rec->type) */
void versiond_rec_encode(const struct versiond_rec *rec, struct vmir_wbuf *w);
/* 0 or -EBADMSG */
int versiond_rec_decode(uint16_t type, const void *p, size_t len,
			struct versiond_rec *rec);

/*
 * Canonical encoding of the whole state (every image, every version and
 * the next version numbers), for comparing states.
 */
void versiond_state_dump(const struct versiond_state *s, struct vmir_wbuf *w);

#endif /* VMIR_VERSIOND_STATE_H */
