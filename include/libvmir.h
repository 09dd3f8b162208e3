/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libvmir: client of a vmir cluster (one version server, N chunk servers).
 *
 * This is libvmir's one public header: libvmir.so exports exactly what it
 * declares (the list is libclient/libvmir.map, and the build checks that
 * the two agree). The wire protocol stays inside the library.
 *
 * Every function returns 0 or a negative errno. After a failure,
 * vmir_client_error() describes what failed with which input. The
 * asynchronous operations (open, read, commit) report their own outcome to
 * their callback instead, with a message of their own ("why", valid during
 * the call only): one operation's failure never overwrites another's.
 *
 * Threading: a struct vmir_client and everything opened from it belong to
 * one thread at a time. All callbacks below run in the thread that called
 * the libvmir function that drives the engine (the blocking calls, or
 * vmir_client_poll()), never in a library-internal thread.
 */
#ifndef LIBVMIR_H
#define LIBVMIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The limits the library shares with the kernel module and the servers:
 * VMIR_NAME_MAX (an image name with its NUL), VMIR_CHUNK_SIZE_MIN and
 * VMIR_CHUNK_SIZE_MAX.
 */
#include "uapi/linux/vmir.h"

#ifdef __cplusplus
extern "C" {
#endif

struct vmir_client;
struct vmir_version;

/* an image, as vmir_image_list() reports it */
struct vmir_image_info {
	char name[VMIR_NAME_MAX];
	uint64_t size;		/* size of the latest version */
	uint32_t chunk_size;
	uint32_t latest;	/* latest version number */
	uint32_t nversions;
	uint64_t ctime_ns;	/* CLOCK_REALTIME */
};

#define VMIR_ROOT_HEX_LEN	64	/* a content id (BLAKE2b-256) in hex */

/* one version of an image */
struct vmir_version_info {
	char image[VMIR_NAME_MAX];
	uint32_t version;
	uint64_t size;		/* bytes, any size */
	uint32_t chunk_size;
	/*
	 * Content id of the version's segment tree, lower-case hex: versions
	 * with the same root have the same content. All '0': every chunk is
	 * zero.
	 */
	char root[VMIR_ROOT_HEX_LEN + 1];
	/*
	 * The parent (the version this one was published on, or the source
	 * of a clone): the name its image had, "" when none. If
	 * parent_deleted, that image was deleted since and the name may now
	 * be another image's; parent_image_id still tells which it was.
	 */
	char parent_image[VMIR_NAME_MAX];
	uint32_t parent_version;
	uint64_t ctime_ns;	/* CLOCK_REALTIME */
	uint64_t image_id;	/* never given to another image */
	uint64_t parent_image_id;	/* 0 when none */
	bool parent_deleted;
	/*
	 * The version's access profile (vmir_profile_read()), "" when none:
	 * its own, or with profile_inherited its parent's as it was when
	 * this version was made.
	 */
	char profile[VMIR_ROOT_HEX_LEN + 1];
	bool profile_inherited;
};

/* conf_path NULL: $VMIR_CONF; neither set: -EINVAL with a message */
int vmir_client_open(const char *conf_path, struct vmir_client **cp);
void vmir_client_close(struct vmir_client *c);
const char *vmir_client_error(const struct vmir_client *c);
/* default chunk size from the configuration */
uint32_t vmir_client_chunk_size(const struct vmir_client *c);

/* done/total in bytes; runs in the caller's thread */
typedef void (*vmir_progress_fn)(void *arg, uint64_t done, uint64_t total);

/* --- namespace ---------------------------------------------------------- */
int vmir_image_create(struct vmir_client *c, const char *name, uint64_t size,
		      uint32_t chunk_size, struct vmir_version_info *out);
/* version 0 = latest */
int vmir_image_lookup(struct vmir_client *c, const char *name,
		      uint32_t version, struct vmir_version_info *out);
/* arrays are malloc()ed; free() them */
int vmir_image_list(struct vmir_client *c, struct vmir_image_info **out,
		    size_t *n);
int vmir_image_versions(struct vmir_client *c, const char *name,
			struct vmir_version_info **out, size_t *n);
int vmir_image_clone(struct vmir_client *c, const char *src, uint32_t version,
		     const char *dst, struct vmir_version_info *out);
/* version 0 = the whole image */
int vmir_image_delete(struct vmir_client *c, const char *name,
		      uint32_t version);
/* distinct non-zero chunks of a version and their bytes */
int vmir_image_usage(struct vmir_client *c, const char *name,
		     uint32_t version, uint64_t *chunks, uint64_t *bytes);

/* --- whole-image transfer -------------------------------------------------
 * import: creates NAME (chunk_size 0 = configured default) or, if it
 * exists, publishes a new version on its latest one. Zero chunks are not
 * stored; chunks the servers already hold are not sent again.
 * export: writes a sparse raw file (holes for zero chunks).
 */
int vmir_image_import(struct vmir_client *c, const char *name,
		      const char *path, uint32_t chunk_size,
		      vmir_progress_fn progress, void *arg,
		      struct vmir_version_info *out);
int vmir_image_export(struct vmir_client *c, const char *name,
		      uint32_t version, const char *path,
		      vmir_progress_fn progress, void *arg);

/* what the last vmir_image_import() on a client did */
struct vmir_import_stats {
	uint64_t chunks;		/* chunks in the image */
	uint64_t zero_chunks;
	uint64_t new_chunks;		/* chunks uploaded */
	uint64_t new_nodes;		/* tree nodes uploaded */
	uint64_t new_bytes;		/* bytes uploaded (all replicas) */
	uint64_t stored_chunks;		/* distinct non-zero chunks */
	uint64_t stored_bytes;		/* their bytes */
};
void vmir_client_import_stats(const struct vmir_client *c,
			      struct vmir_import_stats *st);

/* --- chunk level, for the node helper --------------------------------------
 * A vmir_version is one image version with its chunk map resolved once
 * (each tree node read once, level by level).
 */
int vmir_version_open(struct vmir_client *c, const char *name,
		      uint32_t version, struct vmir_version **vp);
/*
 * The same without waiting: cb runs once, later, from vmir_client_poll()
 * (never from this call), with the version (the caller's to close) or
 * NULL, err and why. Returns 0, or -errno (vmir_client_error() says why)
 * when nothing was started.
 */
typedef void (*vmir_open_cb)(void *arg, struct vmir_version *v, int err,
			     const char *why);
int vmir_version_open_async(struct vmir_client *c, const char *name,
			    uint32_t version, vmir_open_cb cb, void *arg);
void vmir_version_close(struct vmir_version *v);
const struct vmir_version_info *vmir_version_get_info(
	const struct vmir_version *v);
uint64_t vmir_version_nchunks(const struct vmir_version *v);
/* bytes of chunk idx: chunk_size, less for the last chunk */
uint32_t vmir_version_chunk_len(const struct vmir_version *v, uint64_t idx);
bool vmir_version_chunk_is_zero(const struct vmir_version *v, uint64_t idx);
/*
 * Does buf (vmir_version_chunk_len(v, idx) bytes) hold exactly chunk idx
 * of the version? Hashes buf; no server is asked.
 */
bool vmir_version_chunk_matches(const struct vmir_version *v, uint64_t idx,
				const void *buf);

/* called once per chunk when its read finished; err 0 or -errno, why */
typedef void (*vmir_read_cb)(void *arg, uint64_t idx, int err,
			     const char *why);
/*
 * Start reading chunk idx into buf (chunk_size bytes; zero chunks and the
 * tail of a short last chunk are zero-filled). Replicas are tried in
 * rendezvous order; a replica whose bytes do not hash to the id is skipped.
 * cb runs from vmir_client_poll() or a blocking call on the same client.
 */
int vmir_version_read_async(struct vmir_version *v, uint64_t idx, void *buf,
			    vmir_read_cb cb, void *arg);
/* vmir_version_fetch_async() flags */
#define VMIR_FETCH_NO_PEERS	(1u << 0)	/* the chunk servers only */
#define VMIR_FETCH_KEEP_PACKED	(1u << 1)	/* see packed below */
#define VMIR_FETCH_ALL		(VMIR_FETCH_NO_PEERS | VMIR_FETCH_KEEP_PACKED)

/* how a fetch ended, valid during the callback only */
struct vmir_fetch_result {
	uint64_t idx;
	int err;			/* 0 or -errno */
	const char *why;		/* with err */
	bool from_peer;			/* another node sent it */
	/*
	 * With VMIR_FETCH_KEEP_PACKED and a chunk that travelled packed:
	 * the zstd frame as it came (packed_len bytes), e.g. to serve it
	 * on to other nodes as it is; else NULL.
	 */
	const void *packed;
	uint32_t packed_len;
};
typedef void (*vmir_fetch_cb)(void *arg, const struct vmir_fetch_result *res);
/*
 * The same with flags and a fuller outcome. Without VMIR_FETCH_NO_PEERS,
 * a version with peers (vmir_version_set_peers()) first asks the peers
 * that the chunk's rendezvous order puts above this node (at most two),
 * then the chunk servers: a peer that fails, refuses or sends wrong bytes
 * only costs the time until the next source is asked.
 */
int vmir_version_fetch_async(struct vmir_version *v, uint64_t idx, void *buf,
			     unsigned int flags, vmir_fetch_cb cb, void *arg);
/* run the engine: wait up to timeout_ms (-1: until something completes) */
int vmir_client_poll(struct vmir_client *c, int timeout_ms);
/*
 * For an application's own poll() loop: returns an fd that turns readable
 * (POLLIN) when the engine has something to complete, and in *timeout_ms
 * the longest the caller may sleep before calling vmir_client_poll(c, 0)
 * (-1: no limit, 0: call it now). Call it again after every
 * vmir_client_poll() or new async operation; it also submits queued work.
 */
int vmir_client_pollfd(struct vmir_client *c, int *timeout_ms);
/* chunk reads (vmir_version_read_async) still in flight */
unsigned int vmir_client_inflight(const struct vmir_client *c);
/* blocking: read n chunks, many in flight at once */
int vmir_version_read(struct vmir_version *v, const uint64_t *idx, size_t n,
		      void *const *bufs);

/* supplies the content of chunk idx (chunk_size bytes) for a commit */
typedef int (*vmir_chunk_source_fn)(void *arg, uint64_t idx, void *buf);
/*
 * Publish a new version: the n chunks in idx (ascending, distinct) get the
 * content src provides; all others are shared with v. Only changed chunks
 * and the tree nodes on their paths are uploaded. to_image NULL: next
 * version of v's image (refused with -ESTALE if another publish won);
 * else CLONE v to to_image then publish there. On success v is advanced to
 * the new version in place (its chunk map updated) and *out describes it.
 */
int vmir_version_commit(struct vmir_version *v, const uint64_t *idx, size_t n,
			vmir_chunk_source_fn src, void *arg,
			const char *to_image, struct vmir_version_info *out);
/*
 * Publishing is idempotent: every publish (import of a new version, a
 * commit without to_image) carries a random token, and a PUBLISH that
 * gets no answer (timeout, lost connection) is sent again with the same
 * token a few times before the call fails. The version server answers a
 * token it already published with that version, so a publish that won
 * is never reported as failed or refused as stale by its own retry.
 */
/*
 * The same without waiting: cb runs once, later, from vmir_client_poll(),
 * with the new version's info (v already advanced) or err and why. idx
 * must stay valid and v must be neither closed nor committed again until
 * then; reads through v go on meanwhile. src runs in the polling thread.
 * Returns 0, or -errno (vmir_client_error() says why) when nothing was
 * started.
 */
typedef void (*vmir_commit_cb)(void *arg, const struct vmir_version_info *vi,
			       int err, const char *why);
int vmir_version_commit_async(struct vmir_version *v, const uint64_t *idx,
			      size_t n, vmir_chunk_source_fn src,
			      void *src_arg, const char *to_image,
			      vmir_commit_cb cb, void *arg);

#define VMIR_PUBLISH_TOKEN_LEN	16

/*
 * A publish about to be sent: the version it builds on, its content and
 * its token, and for a commit to a new image (to_image) that image's
 * name. Kept durably, it lets a process that restarts learn whether the
 * publish won, or finish it: vmir_publish_async() of the same ticket is
 * answered with the version the token made if it did, and publishes it
 * otherwise (its chunks and tree are stored before any PUBLISH or CLONE).
 */
struct vmir_publish_ticket {
	char image[VMIR_NAME_MAX];
	uint32_t base_version;
	uint64_t size;
	char root[VMIR_ROOT_HEX_LEN + 1];
	uint8_t token[VMIR_PUBLISH_TOKEN_LEN];
	char to[VMIR_NAME_MAX];		/* "" = a new version of image */
};
/*
 * fn runs when a commit of v is about to send its PUBLISH (or, with
 * to_image, its CLONE), once per commit, before the first send, in the
 * thread that polls (from vmir_client_poll()). NULL: no call.
 */
typedef void (*vmir_publish_fn)(void *arg,
				const struct vmir_publish_ticket *t);
void vmir_version_on_publish(struct vmir_version *v, vmir_publish_fn fn,
			     void *arg);
/*
 * Send the publish t describes (retried as above). cb runs once, later,
 * from vmir_client_poll(), with the version's info (the one t's token
 * made, or a new one; with t->to, version 1 of that image) or err and
 * why (-ESTALE: another publish won and t never did; -EEXIST: t->to was
 * made by another request). Returns 0, or -errno (vmir_client_error()) when nothing was
 * sent.
 */
int vmir_publish_async(struct vmir_client *c,
		       const struct vmir_publish_ticket *t, vmir_commit_cb cb,
		       void *arg);

/* --- access profiles (learned prefetch) ---------------------------------------
 * A version's access profile is the order in which deployments first
 * touched its chunks (read or written, hits included), merged over the
 * last deployments: node helpers learn it from the kernel module and
 * prefetch in its order on the next attach. It is an object on the chunk
 * servers, named by the version server (vmir_version_info.profile).
 */
struct vmir_profile {
	char id[VMIR_ROOT_HEX_LEN + 1];
	uint32_t deployments;	/* merged into it */
	uint64_t nchunks;	/* of the version it was learned on */
	uint64_t ctime_ns;	/* of its last merge, CLOCK_REALTIME */
	size_t n;
	uint32_t *chunks;	/* n chunk indexes, in prefetch order */
};
void vmir_profile_free(struct vmir_profile *p);
/* read profile id (hex, as vmir_version_info.profile); out: free it */
int vmir_profile_read(struct vmir_client *c, const char *id,
		      struct vmir_profile *out);
/*
 * Merge one deployment's first-access order (n distinct chunk indexes of
 * name@version, n <= VMIR_ACCESS_MAX) into the version's profile and
 * publish the result as its own. When other nodes publish theirs at the
 * same time the merge is redone on theirs, a few times, then -ESTALE.
 * out (NULL: not wanted) receives the merged profile.
 */
int vmir_profile_learn(struct vmir_client *c, const char *name,
		       uint32_t version, const uint32_t *order, size_t n,
		       struct vmir_profile *out);
/*
 * The same without waiting: cb runs once, later, from vmir_client_poll(),
 * with the profile (valid during the call) or err and why. Returns 0, or
 * -errno (vmir_client_error() says why) when nothing was started.
 */
typedef void (*vmir_profile_cb)(void *arg, const struct vmir_profile *p,
				int err, const char *why);
int vmir_profile_read_async(struct vmir_client *c, const char *id,
			    vmir_profile_cb cb, void *arg);
int vmir_profile_learn_async(struct vmir_client *c, const char *name,
			     uint32_t version, const uint32_t *order,
			     size_t n, vmir_profile_cb cb, void *arg);

/* --- peers: nodes serve each other's chunks ------------------------------------
 * A node's helper serves the clean chunks of the versions it has attached
 * to other nodes, over the chunk servers' protocol and key. The version
 * server keeps, per version, the nodes that have it attached, as leases
 * the helpers renew. Each chunk has a home among a version's nodes (the
 * first in its rendezvous order): the home fetches it from the chunk
 * servers once and serves the others, so a chunk leaves the chunk
 * servers about once per deployment whatever the number of nodes.
 */
#define VMIR_PEER_ADDR_LEN	64	/* "IP:PORT" and its NUL */
#define VMIR_CHUNK_ID_LEN	32	/* a chunk's id: BLAKE2b-256 of it */

struct vmir_peer_info {
	char addr[VMIR_PEER_ADDR_LEN];	/* where its helper serves chunks */
	uint32_t ttl_ms;		/* until its lease runs out */
};

typedef void (*vmir_done_cb)(void *arg, int err, const char *why);
/*
 * The node serving chunks at addr (numeric "IP:PORT") has name@version
 * attached for the next lease_ms (1000..600000; send it again before it
 * runs out); lease_ms 0: not any more. cb as for the other asynchronous
 * operations. Returns 0, or -errno (vmir_client_error()) when nothing was
 * sent.
 */
int vmir_peer_lease_async(struct vmir_client *c, const char *name,
			  uint32_t version, const char *addr,
			  uint32_t lease_ms, vmir_done_cb cb, void *arg);
/* the nodes with a live lease of name@version (version 0: the latest) */
typedef void (*vmir_peers_cb)(void *arg, const struct vmir_peer_info *p,
			      size_t n, int err, const char *why);
int vmir_peers_async(struct vmir_client *c, const char *name,
		     uint32_t version, vmir_peers_cb cb, void *arg);
/* the same, blocking; *out malloc()ed (free() it) */
int vmir_peers_list(struct vmir_client *c, const char *name,
		    uint32_t version, struct vmir_peer_info **out, size_t *n);
/*
 * The nodes v's reads may ask first: addrs (n of them, this node's own
 * address self among them or not). Replaces the previous set; n 0: none.
 * A commit that advances v drops the set (the new version has its own).
 */
int vmir_version_set_peers(struct vmir_version *v, const char *self,
			   const char *const *addrs, size_t n);
/* would a read of chunk idx ask a peer first (this node is not its home)? */
bool vmir_version_chunk_from_peer(const struct vmir_version *v,
				  uint64_t idx);
/* the id of chunk idx of v (VMIR_CHUNK_ID_LEN bytes; all zero: a zero chunk) */
int vmir_version_chunk_id(const struct vmir_version *v, uint64_t idx,
			  void *id);
/*
 * A chunk of v whose id is id (VMIR_CHUNK_ID_LEN bytes): 0 and *idx (the
 * first such chunk), or -ENOENT. The index is built on the first call.
 */
int vmir_version_find_chunk(struct vmir_version *v, const void *id,
			    uint64_t *idx);
/* where chunk reads came from, in bytes as they travelled (packed or not) */
struct vmir_fetch_stats {
	uint64_t peer_chunks, peer_bytes;	/* from other nodes */
	uint64_t chunkd_chunks, chunkd_bytes;	/* from the chunk servers */
	uint64_t peer_misses;	/* reads a peer was asked for in vain */
};
void vmir_version_fetch_stats(const struct vmir_version *v,
			      struct vmir_fetch_stats *st);
void vmir_client_fetch_stats(const struct vmir_client *c,
			     struct vmir_fetch_stats *st);
/* the IP this host reaches the version server from (no packet sent) */
int vmir_client_local_ip(struct vmir_client *c, char *out, size_t len);

/* --- chunk servers ------------------------------------------------------- */
struct vmir_server_stat {
	const char *addr;	/* as configured; valid while the client is */
	int err;		/* 0, or -errno if unreachable */
	uint64_t objects;
	uint64_t bytes;
};
/* one entry per configured chunk server; array malloc()ed */
int vmir_chunkd_stat(struct vmir_client *c, struct vmir_server_stat **out,
		     size_t *n);

#ifdef __cplusplus
}
#endif

#endif /* LIBVMIR_H */
