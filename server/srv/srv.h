/* SPDX-License-Identifier: GPL-2.0 */
/*
 * srv: the io_uring server framework shared by vmir-chunkd and
 * vmir-versiond.
 *
 * One thread, one ring. The framework accepts connections, runs the
 * handshake, reads frames (header, meta, data), authenticates them and
 * hands each request to the server's handler in the loop thread. The
 * handler answers now or later (after its own file I/O through the same
 * ring, see struct srv_io) with exactly one srv_reply*() call per request.
 * Replies are sealed in the order they are queued and may answer requests
 * out of order.
 *
 * Memory per connection is bounded: once a connection has max_inflight
 * unanswered requests or max_held bytes of request buffers and queued
 * replies, the framework stops reading it until it drains, so a client that
 * never reads its replies stalls only itself.
 */
#ifndef VMIR_SRV_H
#define VMIR_SRV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <liburing.h>

#include "vmir_proto.h"

#define SRV_MAX_CONNS		1024
#define SRV_MAX_INFLIGHT	64		/* unanswered requests */
#define SRV_MAX_HELD		(64u << 20)	/* request + reply bytes */

struct srv;
struct srv_conn;

/* One authenticated request, owned by the handler until srv_reply*(). */
struct srv_req {
	struct srv_conn *conn;
	struct vmir_frame_hdr hdr;
	const uint8_t *meta;	/* hdr.meta_len bytes */
	const uint8_t *data;	/* hdr.data_len bytes (PUT requests only) */
	/* private to the framework */
	uint8_t *buf;
	size_t held;
};

/*
 * An operation a server submits on the framework's ring (file I/O). Embed
 * it in the operation's state, prepare an sqe from srv_get_sqe() and bind
 * it with srv_io_bind(); done() runs in the loop thread with the cqe's res.
 */
struct srv_io {
	void (*done)(struct srv_io *io, int res);
} __attribute__((aligned(8)));

struct srv_ops {
	/*
	 * Called for every authenticated request. Return 0 once the request
	 * is answered or will be (exactly one srv_reply*() call, now or
	 * later); -EOPNOTSUPP to have the framework answer EOPNOTSUPP; or
	 * -EBADMSG with *why set to close the connection as malformed.
	 */
	int (*handle)(void *ctx, struct srv_req *req, const char **why);
};

struct srv_conf {
	const char *name;		/* for log messages */
	const char *listen;		/* "ADDR:PORT"; NULL: no listener */
	const char *ready_file;		/* NULL: none */
	const uint8_t *key;		/* cluster key, VMIR_KEY_LEN bytes */
	const struct srv_ops *ops;
	void *ctx;
	bool signals;			/* stop on SIGINT/SIGTERM */
	unsigned int max_conns;		/* 0: SRV_MAX_CONNS */
	unsigned int max_inflight;	/* 0: SRV_MAX_INFLIGHT */
	size_t max_held;		/* 0: SRV_MAX_HELD */
};

/*
 * Create the ring and, if conf->listen is set, listen and write the ready
 * file. With conf->signals, SIGINT and SIGTERM are blocked in the calling
 * thread and read through a signalfd on the ring.
 */
int srv_new(const struct srv_conf *conf, struct srv **out);
/* serve until stopped, then close every connection and drain the ring */
int srv_run(struct srv *srv);
/*
 * For a program with a loop of its own (vmir-helper's peer server):
 * srv_start() does what srv_run() does first (log the address, write the
 * ready file, start accepting); then the loop polls srv_ring_fd() for
 * POLLIN and calls srv_poll_nowait(), which runs the completions there
 * are and submits what they queued, without waiting. srv_free() stops it.
 */
int srv_start(struct srv *srv);
int srv_poll_nowait(struct srv *srv);
int srv_ring_fd(const struct srv *srv);
/* the listening socket (-1: none), e.g. for its bound port */
int srv_listen_fd(const struct srv *srv);
/* make srv_run() return (from the loop thread, e.g. a handler) */
void srv_stop(struct srv *srv);
/* process at least one completion, waiting for it; 0 or -errno */
int srv_poll(struct srv *srv);
/* operations submitted through srv_io_bind() not yet completed */
unsigned int srv_io_pending(const struct srv *srv);
void srv_free(struct srv *srv);

/* a free sqe (submits queued ones first if the ring is full); never NULL */
struct io_uring_sqe *srv_get_sqe(struct srv *srv);
void srv_io_bind(struct srv *srv, struct io_uring_sqe *sqe, struct srv_io *io);

/*
 * Answer req and release it. meta is copied. srv_reply_data() takes
 * ownership of data (malloc()ed), which is sent after meta and freed;
 * data_flags (VMIR_F_ZSTD or 0) say what the data is.
 * If the connection is gone, the reply is dropped.
 */
void srv_reply(struct srv_req *req, uint32_t status, const void *meta,
	       uint32_t meta_len);
void srv_reply_data(struct srv_req *req, const void *meta, uint32_t meta_len,
		    void *data, uint32_t data_len, uint32_t data_flags);

/*
 * Count bytes the handler holds for req (e.g. a read buffer) against the
 * connection's memory bound until req is answered. Call it before
 * returning from the handler so the next frame already sees it.
 */
void srv_req_hold(struct srv_req *req, size_t bytes);

/* "IP:PORT" of the client that sent req */
const char *srv_req_peer(const struct srv_req *req);

/* --- srv_net.c: socket helpers ------------------------------------------ */
/* socket bound to addr and listening; -errno with a logged reason */
int srv_listen(const char *addr);
/* write "IP:PORT\n" of fd's bound address to path.tmp, rename to path */
int srv_write_ready_file(int fd, const char *path);
/* "IP:PORT" of the peer of a connected socket */
void srv_peer_name(int fd, char *out, size_t outlen);

/* --- srv_args.c: the command line both servers share ------------------------ */
struct srv_args {
	const char *listen;
	const char *dir;
	const char *key;
	const char *ready_file;
	bool verbose;
	bool recover_log;	/* --recover-log (SRV_ARGS_RECOVER_LOG) */
};
/* srv_parse_args() flags: options only one server has */
#define SRV_ARGS_RECOVER_LOG	(1u << 0)	/* vmir-versiond */
/*
 * --listen A:P --dir DIR --key FILE [--ready-file F] [-v], and the
 * options flags allows. Returns 0, 1 if --help was printed, or -EINVAL
 * after printing the problem and usage.
 */
int srv_parse_args(int argc, char **argv, const char *what,
		   unsigned int flags, struct srv_args *args);

#endif /* VMIR_SRV_H */
