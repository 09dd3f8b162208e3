/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libvmir's private header: the io_uring engine (engine.c), rendezvous
 * placement (placement.c), replicated object transfer (objects.c) and the
 * client handle (client.c). Only libclient/ and its unit tests include it;
 * programs use include/libvmir.h.
 *
 * Engine model. One ring, driven only from the caller's thread by
 * vmir_engine_poll(). Server index 0 is the version server, 1 + i is chunk
 * server i of the configuration; other nodes' helpers (peers) come after
 * them, added as they become known. Each server has at most one TCP
 * connection, opened lazily when a request for it is admitted. Requests
 * (struct vmir_req) are pipelined on that connection and matched to
 * replies by req_id. A small pool of worker threads runs CPU work
 * (struct vmir_task: hashing, file I/O); every completion callback, of a
 * request or a task, runs in the thread calling vmir_engine_poll().
 */
#ifndef LIBVMIR_PRIV_H
#define LIBVMIR_PRIV_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "libvmir.h"
#include "vmir_tree.h"
#include "vmir_util.h"

#define VMIR_SRV_VERSIOND	0
/* connections to other nodes' helpers (peers.c), after the servers */
#define VMIR_PEERS_MAX		128
#define VMIR_CONN_MAX		(1 + VMIR_MAX_SERVERS + VMIR_PEERS_MAX)
/* an operation's message for the user, NUL included */
#define VMIR_ERR_LEN		2048
#define VMIR_INFLIGHT_MAX	(64u << 20)	/* request + reply bytes */
#define VMIR_DOWN_NS		(10ull * 1000000000ull)

/* --- intrusive doubly linked list ----------------------------------------- */
struct vmir_list {
	struct vmir_list *next, *prev;
};

#define vmir_container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

static inline void vmir_list_init(struct vmir_list *l)
{
	l->next = l;
	l->prev = l;
}

static inline bool vmir_list_empty(const struct vmir_list *l)
{
	return l->next == l;
}

static inline void vmir_list_add_tail(struct vmir_list *n,
				      struct vmir_list *head)
{
	n->prev = head->prev;
	n->next = head;
	head->prev->next = n;
	head->prev = n;
}

static inline void vmir_list_del(struct vmir_list *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	vmir_list_init(n);
}

/* --- placement (placement.c) --------------------------------------------- */
/* first 8 bytes (little-endian) of BLAKE2b-256(server || id) */
uint64_t vmir_hrw_score(const char *server, const struct vmir_id *id);
/*
 * order[0..n) := 0..n-1 sorted by score descending (ties: lower index
 * first). The first R entries hold the object; reads try all in order.
 */
void vmir_placement_order(const char *const *servers, unsigned int n,
			  const struct vmir_id *id, uint8_t *order);

/* --- engine (engine.c) ----------------------------------------------------- */
struct vmir_engine;

struct vmir_task {
	struct vmir_list node;
	/* runs on a worker thread (inline without workers); may be NULL */
	void (*work)(struct vmir_task *t);
	/* runs in the polling thread afterwards */
	void (*done)(struct vmir_task *t);
};

struct vmir_req;
typedef void (*vmir_req_done_fn)(struct vmir_req *r);

struct vmir_req {
	/* set by the submitter */
	unsigned int srv;
	uint16_t op;
	struct vmir_wbuf meta;
	const void *data;		/* PUT: data_len bytes, kept valid */
	uint32_t data_len;
	uint32_t data_flags;		/* VMIR_F_ZSTD: data is packed */
	void *rdata;			/* GET: reply data lands here */
	uint32_t rdata_cap;
	vmir_req_done_fn done;		/* owns r afterwards: vmir_req_free */
	void *arg;

	/* result: err < 0 is a transport failure (see vmir_engine_srv_err) */
	int err;
	uint32_t status;		/* server's answer: 0 or errno */
	uint8_t *rmeta;
	uint32_t rmeta_len;
	uint32_t rdata_len;
	uint32_t rdata_flags;		/* VMIR_F_ZSTD: rdata is packed */
	bool oversize;			/* reply data > rdata_cap, dropped */

	/* engine private */
	struct vmir_engine *e;
	struct vmir_list node;		/* waitq, or a connection's queue */
	struct vmir_task task;		/* completion */
	uint64_t req_id;
	uint64_t deadline;
	size_t cost;
	uint8_t hdr[VMIR_HDR_LEN];
	bool sealed, in_send, in_recv, answered, on_conn;
	uint8_t rmeta_inline[64];
};

/* err/errlen: message on failure */
int vmir_engine_new(const struct vmir_conf *conf, struct vmir_engine **ep,
		    char *err, size_t errlen);
void vmir_engine_free(struct vmir_engine *e);

struct vmir_req *vmir_req_new(struct vmir_engine *e, unsigned int srv,
			      uint16_t op);
void vmir_req_free(struct vmir_req *r);
/* queue r; r->done runs later from vmir_engine_poll(), never inline */
void vmir_req_submit(struct vmir_req *r);

/* t->work on a worker, then t->done from vmir_engine_poll() */
void vmir_task_submit(struct vmir_engine *e, struct vmir_task *t);

/*
 * Submit queued work, wait up to timeout_ms (-1: until something
 * completes) and run the completion callbacks. Returns at once when
 * nothing is pending. 0 or -errno (ring failure).
 */
int vmir_engine_poll(struct vmir_engine *e, int timeout_ms);
/* ring fd for an outside poll(); *timeout_ms until the next deadline */
int vmir_engine_pollfd(struct vmir_engine *e, int *timeout_ms);
/* anything submitted and not yet completed */
bool vmir_engine_busy(const struct vmir_engine *e);
/* forget which servers failed: the next operation tries them all again */
void vmir_engine_reset_down(struct vmir_engine *e);
/* server marked down after a failure (until reset or VMIR_DOWN_NS) */
bool vmir_engine_srv_down(struct vmir_engine *e, unsigned int srv);
int vmir_engine_srv_down_err(const struct vmir_engine *e, unsigned int srv);
/* last failure of srv, "chunk server 127.0.0.1:7402: connection refused" */
const char *vmir_engine_srv_err(const struct vmir_engine *e,
				unsigned int srv);
/* "chunk server 127.0.0.1:7402", "version server 127.0.0.1:7400" */
const char *vmir_engine_srv_desc(const struct vmir_engine *e,
				 unsigned int srv);
const char *vmir_engine_srv_addr(const struct vmir_engine *e,
				 unsigned int srv);
unsigned int vmir_engine_nchunkd(const struct vmir_engine *e);
/*
 * The connection index of the peer (another node's helper) at addr
 * ("IP:PORT"), added on first use; -ENOSPC once VMIR_PEERS_MAX are known,
 * -EINVAL for a bad address. Peers come after the servers.
 */
int vmir_engine_peer(struct vmir_engine *e, const char *addr);
bool vmir_engine_srv_is_peer(const struct vmir_engine *e, unsigned int srv);
const char *const *vmir_engine_chunkd_names(const struct vmir_engine *e);
unsigned int vmir_engine_replicas(const struct vmir_engine *e);

/* --- replicated objects (objects.c) --------------------------------------- */
#define VMIR_WHY_MAX	512

#define VMIR_GET_PEERS	2	/* peers one read asks before the chunk servers */

/*
 * read one object from the first replica, in rendezvous order, that has
 * it; first from the peers listed (if any): a peer's failure or bad bytes
 * only move the read on, and never decide how it fails
 */
struct vmir_get {
	struct vmir_id id;
	void *buf;
	uint32_t cap;
	unsigned int peer[VMIR_GET_PEERS];	/* connection indexes */
	unsigned int npeers;
	bool keep_packed;		/* a packed reply: copy it to zcopy */
	void *zcopy;			/* result: malloc()ed, the caller frees */
	uint32_t zlen;
	/* optional, on a worker after the bytes were verified: 0 or -errno */
	int (*verified)(struct vmir_get *g);
	void (*done)(struct vmir_get *g, int err);
	void *arg;

	uint32_t len;			/* result: bytes read (unpacked) */
	uint32_t wire_len;		/* result: as they came (packed or not) */
	unsigned int srv;		/* server that delivered them */
	char why[VMIR_WHY_MAX];		/* failures so far, "; " separated */

	/* private */
	struct vmir_engine *e;
	struct vmir_task task;
	uint8_t order[VMIR_MAX_SERVERS];
	unsigned int next, next_peer;
	bool bad, any_acces, all_enoent, packed;
	const char *bad_why;
	int verr;
};
void vmir_get_start(struct vmir_engine *e, struct vmir_get *g);

/* write one object to R servers, in rendezvous order */
struct vmir_put {
	struct vmir_id id;
	const void *data;
	uint32_t len;
	/* set by vmir_put_pack(): data packed (zstd), sent instead */
	void *zdata;
	uint32_t zlen;
	uint64_t present;		/* chunk servers known to hold it */
	void (*done)(struct vmir_put *p, int err);
	void *arg;

	unsigned int written;		/* result: PUTs acknowledged */
	char why[VMIR_WHY_MAX];

	/* private */
	struct vmir_engine *e;
	struct vmir_task task_done;
	uint8_t order[VMIR_MAX_SERVERS];
	unsigned int next, acked, outstanding;
	bool ordered;
};
/* compute p->order (once) */
void vmir_put_prepare(struct vmir_engine *e, struct vmir_put *p);
void vmir_put_start(struct vmir_engine *e, struct vmir_put *p);

/*
 * Uploader: objects are first looked up with HAS, batched per server
 * (only the servers that should hold each object), then PUT where missing.
 */
struct vmir_upl;
struct vmir_upl_obj {
	struct vmir_put put;		/* id, data, len set by the caller */
	void (*done)(struct vmir_upl_obj *o, int err);
	void *arg;
	/* private */
	struct vmir_upl *upl;
	unsigned int has_wait;
	struct vmir_task ztask;		/* packs it before the PUT */
};

struct vmir_upl_stats {
	uint64_t objects;		/* uploads completed */
	uint64_t new_objects;		/* of those, sent to some server */
	uint64_t new_bytes;		/* bytes sent (all replicas) */
};

struct vmir_upl *vmir_upl_new(struct vmir_engine *e);
void vmir_upl_free(struct vmir_upl *u);
void vmir_upl_add(struct vmir_upl *u, struct vmir_upl_obj *o);
/* send partly filled HAS batches (call before waiting) */
void vmir_upl_flush(struct vmir_upl *u);
/*
 * The same from the engine, once the completions already queued have run:
 * for callers that add objects from callbacks and do not wait themselves,
 * so that one flush covers all the objects added in one engine round.
 */
void vmir_upl_flush_soon(struct vmir_upl *u);
const struct vmir_upl_stats *vmir_upl_stats(const struct vmir_upl *u);

/*
 * Bytes of new tree nodes a commit keeps queued for upload before it waits
 * (default 16 MiB); tests make it small to see commits pause and resume.
 */
void vmir_client_set_node_backlog(struct vmir_client *c, size_t bytes);

/* --- handles (client.c) ---------------------------------------------------- */
struct vmir_client {
	struct vmir_conf conf;
	struct vmir_engine *e;
	char err[VMIR_ERR_LEN];
	unsigned int async;		/* vmir_version_read_async in flight */
	unsigned int ops;		/* asynchronous opens and commits */
	size_t node_backlog;		/* tree node bytes queued, at most */
	struct vmir_import_stats imp;
	struct vmir_fetch_stats fst;	/* chunk reads of every version */
};

struct vmir_peerset;
struct vmir_chunk_index;

struct vmir_version {
	struct vmir_client *c;
	struct vmir_wire_version_info info;
	struct vmir_version_info pub;	/* info for vmir_version_get_info() */
	uint64_t nchunks;
	struct vmir_tree *tree;		/* NULL for an empty image */
	unsigned int async;		/* reads and a commit using it */
	vmir_publish_fn on_publish;	/* vmir_version_on_publish() */
	void *on_publish_arg;
	struct vmir_peerset *peers;	/* NULL: none (peers.c) */
	struct vmir_chunk_index *index;	/* id -> chunk, built on first use */
	struct vmir_fetch_stats fst;
};

/*
 * client.c, for libclient's other files: a blocking call starts with
 * op_begin (message cleared, every server tried again), fails with
 * seterr (vmir_client_error()), and is the asynchronous call it started
 * (started: its return) waited for: until *pending is 0, then *err
 */
void vmir_client_op_begin(struct vmir_client *c);
int vmir_client_seterr(struct vmir_client *c, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int vmir_client_await(struct vmir_client *c, int started,
		      const unsigned int *pending, const int *err);

/* --- peers (peers.c) -------------------------------------------------------- */
/* g->peer: the peers that rank above this node for g->id (v's peer set) */
void vmir_peers_pick(const struct vmir_version *v, struct vmir_get *g);
/* count a finished read in v's and its client's fetch stats */
void vmir_peers_account(struct vmir_version *v, const struct vmir_get *g,
			int err);
/* drop v's peer set and chunk index (v closed, or advanced by a commit) */
void vmir_peers_forget(struct vmir_version *v);

/* --- access profiles (profile.c) ----------------------------------------- */
#define VMIR_PROFILE_SCALE	256	/* score = mean rank * this */
#define VMIR_PROFILE_WEIGHT_MAX	7	/* the profile's weight against a new order */

struct vmir_profile_ent {
	uint32_t chunk;
	uint32_t score;
};

struct vmir_profile_data {
	uint32_t deployments;
	size_t n;
	uint64_t nchunks;
	uint64_t ctime_ns;
	struct vmir_profile_ent *ent;	/* n, in prefetch order */
};

size_t vmir_profile_encoded_len(size_t n);
/* out: vmir_profile_encoded_len(pd->n) bytes */
void vmir_profile_encode(const struct vmir_profile_data *pd, uint8_t *out);
/* 0, -EBADMSG (*why says what is wrong) or -ENOMEM */
int vmir_profile_decode(const void *buf, size_t len,
			struct vmir_profile_data *pd, const char **why);
/*
 * old (NULL or empty: none) merged with a deployment's first-access order
 * (n distinct chunks below nchunks, n <= VMIR_ACCESS_MAX) into out.
 * 0, -EINVAL (a bad order) or -ENOMEM.
 */
int vmir_profile_merge(const struct vmir_profile_data *old,
		       const uint32_t *order, size_t n, uint64_t nchunks,
		       uint64_t now_ns, struct vmir_profile_data *out);
void vmir_profile_data_free(struct vmir_profile_data *pd);

#endif /* LIBVMIR_PRIV_H */
