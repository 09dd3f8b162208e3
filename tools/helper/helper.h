/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vmir-helper internals: the daemon's rooms and what they share.
 *
 *   main.c      options, start-up, the event loop, shutdown
 *   devices.c   the devices this helper serves, their registry entries,
 *               the answers batched for the module
 *   fetch.c     misses: fetching chunks into mirrors, read-ahead
 *   attach.c    attach, detach, and adopting the devices of a previous
 *               helper at start-up
 *   commit.c    commits: freeze, capture, upload, publish
 *   learn.c     learned prefetch: the access order read from the module
 *               and published as the version's profile; prefetching in
 *               the profile's order at attach
 *   peer.c      peers: serving this node's clean chunks to other nodes,
 *               the leases that tell the version server which versions
 *               this node has attached, and the version's other nodes
 *               for libvmir's reads
 *   control.c   the control socket (protocol in ctl.h)
 *   state.c     the files kept on disk (state.h)
 *   map.c       the durable map in the mirror file (state.h)
 *
 * Everything runs in one thread, in one poll() loop over the module's
 * netlink socket, the control socket and its connections, and libvmir's
 * engine. Nothing in the loop waits for the network: opening a version,
 * fetching chunks and uploading a commit are libvmir asynchronous
 * operations whose callbacks move their work on. Requests to the local
 * module that the loop does wait for (ADD_DEVICE, COMMIT_BEGIN,
 * GET_STATE, ...) are answered by the kernel without any I/O of ours.
 * Every callback gets its context as its argument.
 */
#ifndef VMIR_HELPER_H
#define VMIR_HELPER_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "libvmir.h"
#include "uapi/linux/vmir.h"
#include "vmir_nl.h"

#define ARRAY_SIZE(a)		(sizeof(a) / sizeof((a)[0]))

#define HELPER_READ_AHEAD_KIB	2048	/* default --read-ahead-kib */
/*
 * most read-ahead fetches in flight and claims waiting for a reply: this
 * also bounds what the PREFETCH replies may hold in the request socket
 */
#define HELPER_READ_AHEAD_INFLIGHT 256
/* free heap kept for chunk buffers: this runs next to the VMs */
#define HELPER_HEAP_FREE_MAX	(32u << 20)
/* chunks a commit captures per turn of the loop before serving others */
#define HELPER_CAPTURE_SLICE	16
/* default --learn-idle-ms: no new chunk touched this long ends the window */
#define HELPER_LEARN_IDLE_MS	5000
/* how often a learning device's access order is read */
#define HELPER_LEARN_LOOK_MS	1000
/* profile chunks claimed or fetching at once, per device */
#define HELPER_PROFILE_WINDOW	4
/* net demand misses off the profile that stop its prefetch */
#define HELPER_PROFILE_OFF_PATH	16
/* default --peer-listen port (all addresses) */
#define HELPER_PEER_PORT	7410
/* a device's lease of its version, renewed with its list of peers */
#define HELPER_PEER_LEASE_MS	15000
#define HELPER_PEER_RENEW_MS	4000
/* the list of peers is read this often while a device is young */
#define HELPER_PEER_EARLY_MS	250
#define HELPER_PEER_YOUNG_MS	15000
/* what one peer connection may hold: requests and replies */
#define HELPER_PEER_CONNS	256
#define HELPER_PEER_INFLIGHT	32
#define HELPER_PEER_HELD	(8u << 20)
/* chunks kept as they came packed from the chunk servers, for peers */
#define HELPER_ZCACHE_SLOTS	1024
#define HELPER_ZCACHE_BYTES	(32u << 20)

struct helper;
struct helper_commit;
struct helper_fetch;
struct helper_peer_wait;
struct srv;

/* a peer's GET of chunk idx of device dev, waiting for a claim or a fetch */
struct helper_peer_wait {
	struct helper_peer_wait *next;
	struct srv_req *req;
	uint32_t dev;
	uint64_t idx;
};

/* chunk indexes waiting to be sent to the module in one message */
struct helper_batch {
	uint32_t *chunks;
	size_t n, cap;
};

/* A device this helper serves. */
struct helper_dev {
	struct helper_dev *next;	/* on helper.devs */
	struct helper *h;
	uint32_t id;			/* N of /dev/vmirN */
	char image[VMIR_NAME_MAX];
	uint32_t version;
	uint64_t size;
	uint32_t chunk_size;
	uint64_t nchunks;
	char dir[PATH_MAX];		/* mirror directory */
	int mirror_fd;
	uint64_t map_gen;		/* durable map copy written at attach */
	/* misses read through it; NULL while it opens (adoption) */
	struct vmir_version *v;
	unsigned int inflight;		/* fetches started, not completed */
	bool dead;			/* detached: freed once inflight is 0 */
	bool stopped;			/* adopted stopped: detach it */
	uint8_t *seen;			/* chunks missed or claimed */
	struct helper_batch waiting;	/* misses before v was open */
	/* answers for the module, sent at the end of the loop's turn */
	struct helper_batch ready;	/* fetched */
	struct helper_batch failed;	/* fetch failed */
	struct helper_batch captured;	/* commit chunks copied out */
	struct helper_commit *commit;	/* a commit run by this helper */
	/* asynchronous profile reads and publishes holding d (learn.c) */
	unsigned int holds;

	/*
	 * Learned prefetch (learn.c). The access order is that of the
	 * version attached (a commit does not change what was learned).
	 */
	char learn_image[VMIR_NAME_MAX];
	uint32_t learn_version;
	struct helper_batch order;	/* first-access order read so far */
	uint64_t order_ns;		/* when it last grew (monotonic) */
	uint64_t look_ns;		/* when to read it next */
	bool learned;			/* published (or given up) */
	struct vmir_profile prof;	/* n 0: none (yet) */
	uint8_t *prof_in;		/* chunks in the profile */
	size_t prof_next;		/* next profile entry to claim */
	unsigned int pf_claimed;	/* profile chunks in PREFETCH not answered */
	unsigned int pf_fetching;	/* profile chunks being fetched */
	unsigned int pf_off;		/* demand misses off the profile, net */
	bool pf_stopped;
	uint64_t prefetched;		/* chunks fetched in profile order */

	/* peers (peer.c) */
	struct helper_fetch *fetching;	/* fetches in flight */
	uint64_t attach_ns;		/* monotonic */
	uint64_t peer_next_ns;		/* next lease renewal and list */
	char peer_image[VMIR_NAME_MAX];	/* leased: "" none */
	uint32_t peer_version;
	unsigned int peer_ops;		/* lease and list calls in flight */
	size_t peer_nodes;		/* in the last list, this one included */
	bool peer_warned;		/* a failed call was logged */
};

struct helper {
	const char *conf;
	struct vmir_client *c;
	/*
	 * Two sockets: the registered one receives the module's events and
	 * sends the batched answers (no reply but a failure); the request
	 * one carries what this helper waits for or needs the reply of
	 * (control requests, PREFETCH), so that no overrun of the event
	 * socket can lose a reply.
	 */
	struct vmir_nl nl;
	struct vmir_nl req;
	int ctl_fd;			/* control socket */
	struct helper_conn *conns;	/* control connections being read */
	struct helper_dev *devs;
	const char *mirror_root;
	const char *reg_dir;
	uint32_t timeout_ms;		/* 0: module default */
	uint32_t read_ahead_kib;	/* 0: no read-ahead */
	/*
	 * Read-ahead claims: chunks asked in PREFETCH messages that have no
	 * reply yet, and how many each message asked, oldest first (the
	 * module answers one socket's requests in order).
	 */
	unsigned int claims;
	struct helper_claim {
		unsigned int n;
		uint32_t dev;
		bool profile;		/* learned prefetch, else read-ahead */
		struct helper_peer_wait *peer;	/* a peer's GET, else NULL */
	} claim_q[512];
	unsigned int claim_head, claim_n;
	uint32_t learn_idle_ms;		/* 0: learn at detach or commit only */
	bool learn;			/* publish access profiles */
	unsigned int commits;		/* in progress */
	uint64_t fetches, fetch_errors;

	/* peers (peer.c) */
	bool peers;			/* serve peers and ask them */
	const char *peer_listen;	/* --peer-listen, NULL: default */
	const char *peer_advertise;	/* --peer-advertise, NULL: derived */
	struct srv *peer_srv;		/* NULL: not serving */
	int peer_port;
	char peer_addr[VMIR_PEER_ADDR_LEN];	/* as leased, "" unknown */
	bool peer_addr_warned;		/* no route to the version server */
	uint64_t peer_served, peer_served_bytes, peer_refused;
	/* a ring of packed chunks, oldest dropped first (peer.c) */
	struct helper_zent {
		uint8_t id[VMIR_CHUNK_ID_LEN];
		void *z;		/* NULL: free slot */
		uint32_t zlen;
	} zcache[HELPER_ZCACHE_SLOTS];
	unsigned int zc_head, zc_n;
	size_t zc_bytes;
};

/* devices.c */
struct helper_dev *helper_dev_new(struct helper *h);
void helper_dev_free(struct helper_dev *d);
struct helper_dev *helper_dev_find(struct helper *h, uint32_t id);
void helper_dev_add(struct helper *h, struct helper_dev *d);
void helper_dev_drop(struct helper_dev *d);
void helper_dev_use_version(struct helper_dev *d, struct vmir_version *v);
int helper_dev_reg_write(struct helper_dev *d);
int helper_batch_add(struct helper_batch *b, uint32_t chunk);
void helper_flush(struct helper *h);
struct nl_msg *helper_msg(struct helper *h, uint8_t cmd, uint32_t dev_id);
int helper_simple(struct helper *h, uint8_t cmd, uint32_t dev_id,
		  char *emsg, size_t emsglen);
int helper_get_state(struct helper_dev *d, uint8_t *present,
		     uint8_t *dirty, uint8_t *commit);

/* fetch.c */
void helper_on_miss(struct helper *h, uint32_t id, const uint32_t *chunks,
		    size_t n);
void helper_on_prefetched(struct helper *h, uint32_t id,
			  const uint32_t *chunks, size_t n);
void helper_prefetch_failed(struct helper *h);
void helper_fetch_waiting(struct helper_dev *d);
int helper_claim(struct helper_dev *d, const uint32_t *chunks, size_t n,
		 bool profile, struct helper_peer_wait *peer);
void helper_fetch_or_fail(struct helper_dev *d, uint32_t idx, bool profile);
/* fetch flags */
#define HELPER_FETCH_PROFILE	(1u << 0)	/* claimed in the profile's order */
#define HELPER_FETCH_FOR_PEER	(1u << 1)	/* a peer asked: chunk servers only */
int helper_fetch_start(struct helper_dev *d, uint32_t idx, unsigned int flags,
		       struct helper_peer_wait *w);
/* the fetch of chunk idx of d in flight, NULL: none */
struct helper_fetch *helper_fetch_find(struct helper_dev *d, uint64_t idx);
bool helper_fetch_via_peer(const struct helper_fetch *f);
void helper_fetch_add_waiter(struct helper_fetch *f, struct helper_peer_wait *w);

/* peer.c */
int helper_peer_start(struct helper *h);
void helper_peer_stop(struct helper *h);
/* the peer server's ring, -1: not serving */
int helper_peer_pollfd(struct helper *h);
void helper_peer_poll(struct helper *h);
/* ms until it must run again, -1: nothing to do */
int helper_peer_step(struct helper *h);
void helper_peer_leave(struct helper_dev *d);
/* a claim for a peer settled: claimed, or not (present or being fetched) */
void helper_peer_claimed(struct helper_dev *d, struct helper_peer_wait *w,
			 bool claimed);
/*
 * the fetch the waiters wait for ended: buf holds the chunk unless err;
 * packed (zlen bytes, NULL: none) is how it came from the chunk servers
 */
void helper_peer_fetched(struct helper_dev *d, struct helper_peer_wait *w,
			 uint64_t idx, const void *buf, const void *packed,
			 uint32_t zlen, int err);
/* keep chunk idx of d as it came packed, to serve it to peers packed */
void helper_peer_keep(struct helper_dev *d, uint64_t idx, const void *z,
		      uint32_t zlen);
/* answer a peer's GET with err (e.g. its device is gone) */
void helper_peer_fail(struct helper_peer_wait *w, int err);

/* learn.c */
void helper_learn_attached(struct helper_dev *d, bool prefetch);
void helper_learn_now(struct helper_dev *d, const char *why);
/* ms until it must run again, -1: no device is learning */
int helper_learn_step(struct helper *h);
void helper_profile_pump(struct helper_dev *d);
void helper_profile_on_miss(struct helper_dev *d, uint32_t idx);
void helper_learn_free(struct helper_dev *d);

/* attach.c */
int helper_attach(struct helper *h, const char *name, uint32_t version,
		  const char *mirror, bool prefetch, int fd, char *out,
		  size_t outlen);
int helper_detach(struct helper *h, uint32_t id, char *out, size_t outlen);
int helper_adopt(struct helper *h);

/* commit.c */
int helper_commit(struct helper *h, uint32_t id, const char *to, int fd,
		  char *out, size_t outlen);
void helper_on_capture_needed(struct helper *h, uint32_t id,
			      const uint32_t *chunks, size_t n);
bool helper_commits_step(struct helper *h);
int helper_commit_end(struct helper_dev *d, int status, uint32_t version,
		      const char *image);
int helper_commit_adopt(struct helper_dev *d, vmir_open_cb opened);

/* control.c */
int helper_ctl_listen(void);
void helper_ctl_accept(struct helper *h);
int helper_ctl_pollfds(struct helper *h, struct pollfd *pfd, int max);
void helper_ctl_serve(struct helper *h, const struct pollfd *pfd, int n);
void helper_ctl_reply(int fd, int ret, const char *out);
void helper_ctl_close_all(struct helper *h);

#endif /* VMIR_HELPER_H */
