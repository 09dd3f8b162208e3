// SPDX-License-Identifier: GPL-2.0
/*
 * The io_uring event loop of the servers: accept, per-connection receive
 * state machine (header, meta, data), handshake, frame authentication,
 * dispatch to the server's handler, reply queue and sends, and clean
 * shutdown on SIGINT/SIGTERM.
 *
 * Every sqe carries a user_data that packs a pointer (8-byte aligned) and
 * the operation type in its low three bits. A connection is reference
 * counted: one reference while open, one per armed recv or send and one
 * per request handed to the handler and not yet answered, so a connection
 * closed with operations in flight is freed after the last one completes.
 */
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <sodium.h>

#include "srv.h"
#include "vmir_util.h"

#define SRV_RING_ENTRIES	1024
#define SRV_CQ_ENTRIES		8192
#define SRV_IN_CAP		(64u << 10)	/* receive staging buffer */
#define SRV_SEND_BATCH		42		/* replies per sendmsg */
#define SRV_IOV_MAX		(3 * SRV_SEND_BATCH)
#define SRV_BACKOFF_NS		100000000LL	/* accept retry after EMFILE */

enum srv_ud_type {
	SRV_UD_ACCEPT = 1,	/* ptr: struct srv */
	SRV_UD_SIGNAL,		/* ptr: struct srv */
	SRV_UD_TIMER,		/* ptr: struct srv */
	SRV_UD_RECV,		/* ptr: struct srv_conn */
	SRV_UD_SEND,		/* ptr: struct srv_conn */
	SRV_UD_IO,		/* ptr: struct srv_io */
	SRV_UD_IGNORE,		/* cancel requests; ptr NULL */
};

#define SRV_UD_MASK	7ull

static inline uint64_t srv_ud_pack(const void *p, unsigned int type)
{
	uintptr_t v = (uintptr_t)p;

	assert(type >= SRV_UD_ACCEPT && type <= SRV_UD_IGNORE);
	assert((v & SRV_UD_MASK) == 0);
	return (uint64_t)v | type;
}

static inline unsigned int srv_ud_type(uint64_t ud)
{
	return (unsigned int)(ud & SRV_UD_MASK);
}

static inline void *srv_ud_ptr(uint64_t ud)
{
	return (void *)(uintptr_t)(ud & ~SRV_UD_MASK);
}

/* a queued reply: header, meta, then optional data */
struct srv_out {
	struct srv_out *next;
	void *data;
	size_t len;		/* header + meta + data */
	size_t held;		/* accounted in conn->held */
	uint32_t meta_len;
	uint32_t data_len;
	uint8_t hdr[VMIR_HDR_LEN];
	uint8_t meta[];
};

struct srv_conn {
	struct srv *srv;
	struct srv_conn *prev, *next;	/* srv->conns, while open */
	int fd;
	unsigned int refs;
	bool dead;
	bool recv_armed;
	bool send_armed;
	bool parsing;
	char peer[VMIR_ADDR_MAX];
	struct vmir_session sess;

	/* input: staging buffer, or straight into a frame's buffer */
	uint8_t *in;
	size_t in_len, in_off;
	struct srv_req *cur;
	size_t cur_have, cur_need;

	/* output */
	struct srv_out *out_head, *out_tail;
	size_t out_off;			/* bytes of out_head already sent */
	struct msghdr msg;
	struct iovec iov[SRV_IOV_MAX];

	unsigned int inflight;		/* requests with the handler */
	size_t held;			/* bytes of requests and replies */
} __attribute__((aligned(8)));

struct srv {
	struct io_uring ring;
	const struct srv_ops *ops;
	void *ctx;
	char name[32];
	uint8_t key[VMIR_KEY_LEN];
	char *listen;
	char *ready_file;
	int lfd;
	int sigfd;
	sigset_t oldmask;
	bool masked;
	struct signalfd_siginfo siginfo;
	struct __kernel_timespec backoff;
	bool accept_armed, sig_armed, timer_armed;
	bool stopping;
	unsigned int max_conns, max_inflight;
	size_t max_held;
	unsigned int nconns;		/* open connections */
	unsigned int nalive;		/* connection structs not yet freed */
	unsigned int nsqe;		/* submitted, completion not seen */
	unsigned int nio;		/* srv_io operations pending */
	struct srv_conn *conns;
} __attribute__((aligned(8)));

static void conn_close(struct srv_conn *c, const char *reason);
static void conn_kick(struct srv_conn *c);

/* --- ring helpers ---------------------------------------------------------- */

struct io_uring_sqe *srv_get_sqe(struct srv *srv)
{
	struct io_uring_sqe *sqe;

	while (!(sqe = io_uring_get_sqe(&srv->ring))) {
		int ret = io_uring_submit(&srv->ring);

		if (ret < 0 && ret != -EINTR && ret != -EAGAIN &&
		    ret != -EBUSY) {
			vmir_err("%s: io_uring_submit: %s", srv->name,
				 strerror(-ret));
			abort();
		}
	}
	return sqe;
}

static void srv_sqe_set(struct srv *srv, struct io_uring_sqe *sqe,
			const void *p, unsigned int type)
{
	io_uring_sqe_set_data64(sqe, srv_ud_pack(p, type));
	srv->nsqe++;
}

void srv_io_bind(struct srv *srv, struct io_uring_sqe *sqe, struct srv_io *io)
{
	srv_sqe_set(srv, sqe, io, SRV_UD_IO);
	srv->nio++;
}

unsigned int srv_io_pending(const struct srv *srv)
{
	return srv->nio;
}

static void srv_cancel(struct srv *srv, const void *p, unsigned int type)
{
	struct io_uring_sqe *sqe = srv_get_sqe(srv);

	io_uring_prep_cancel64(sqe, srv_ud_pack(p, type), 0);
	srv_sqe_set(srv, sqe, NULL, SRV_UD_IGNORE);
}

/* --- connections --------------------------------------------------------- */

static void conn_get(struct srv_conn *c)
{
	c->refs++;
}

static void conn_put(struct srv_conn *c)
{
	struct srv_out *o;

	assert(c->refs > 0);
	if (--c->refs)
		return;
	assert(c->dead && !c->recv_armed && !c->send_armed);
	assert(c->inflight == 0 && !c->cur);
	while ((o = c->out_head)) {
		c->out_head = o->next;
		free(o->data);
		free(o);
	}
	close(c->fd);
	memset(&c->sess, 0, sizeof(c->sess));
	free(c->in);
	c->srv->nalive--;
	free(c);
}

static bool conn_throttled(const struct srv_conn *c)
{
	const struct srv *srv = c->srv;

	return c->inflight >= srv->max_inflight || c->held >= srv->max_held;
}

/* free a request the handler never saw */
static void conn_req_free(struct srv_conn *c, struct srv_req *req)
{
	assert(c->held >= req->held);
	c->held -= req->held;
	free(req);
}

static void conn_close(struct srv_conn *c, const char *reason)
{
	struct srv *srv = c->srv;

	if (c->dead)
		return;
	if (reason)
		vmir_warn("closing connection from %s: %s", c->peer, reason);
	else
		vmir_dbg("connection from %s closed", c->peer);
	c->dead = true;
	shutdown(c->fd, SHUT_RDWR);
	if (c->recv_armed)
		srv_cancel(srv, c, SRV_UD_RECV);
	if (c->send_armed)
		srv_cancel(srv, c, SRV_UD_SEND);
	if (c->cur) {
		conn_req_free(c, c->cur);
		c->cur = NULL;
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	srv->nconns--;
	conn_put(c);
}

static void conn_arm_recv(struct srv_conn *c)
{
	struct io_uring_sqe *sqe;
	size_t len;
	void *buf;

	if (c->dead || c->recv_armed)
		return;
	if (c->cur) {
		buf = c->cur->buf + c->cur_have;
		len = c->cur_need - c->cur_have;
	} else {
		if (conn_throttled(c))
			return;
		assert(c->in_off == 0 && c->in_len < SRV_IN_CAP);
		buf = c->in + c->in_len;
		len = SRV_IN_CAP - c->in_len;
	}
	sqe = srv_get_sqe(c->srv);
	io_uring_prep_recv(sqe, c->fd, buf, len, 0);
	srv_sqe_set(c->srv, sqe, c, SRV_UD_RECV);
	c->recv_armed = true;
	conn_get(c);
}

static void conn_arm_send(struct srv_conn *c)
{
	struct io_uring_sqe *sqe;
	struct srv_out *o;
	size_t skip = c->out_off;
	int n = 0;

	if (c->dead || c->send_armed || !c->out_head)
		return;
	for (o = c->out_head; o && n + 3 <= SRV_IOV_MAX; o = o->next) {
		struct iovec seg[3] = {
			{ o->hdr, VMIR_HDR_LEN },
			{ o->meta, o->meta_len },
			{ o->data, o->data_len },
		};

		for (int i = 0; i < 3; i++) {
			if (skip >= seg[i].iov_len) {
				skip -= seg[i].iov_len;
				continue;
			}
			c->iov[n].iov_base = (uint8_t *)seg[i].iov_base + skip;
			c->iov[n].iov_len = seg[i].iov_len - skip;
			skip = 0;
			n++;
		}
	}
	assert(n > 0);
	memset(&c->msg, 0, sizeof(c->msg));
	c->msg.msg_iov = c->iov;
	c->msg.msg_iovlen = n;
	sqe = srv_get_sqe(c->srv);
	io_uring_prep_sendmsg(sqe, c->fd, &c->msg, MSG_NOSIGNAL);
	srv_sqe_set(c->srv, sqe, c, SRV_UD_SEND);
	c->send_armed = true;
	conn_get(c);
}

/* seal a reply (or the HELLO answer) and queue it; takes data */
static int conn_queue(struct srv_conn *c, const struct vmir_frame_hdr *req,
		      uint32_t status, const void *meta, uint32_t meta_len,
		      void *data, uint32_t data_len, uint32_t data_flags)
{
	struct vmir_frame_hdr h = {
		.magic = VMIR_PROTO_MAGIC,
		.version = VMIR_PROTO_VERSION,
		.opcode = req->opcode,
		.req_id = req->req_id,
		.status = status,
		.meta_len = meta_len,
		.data_len = data_len,
		.flags = VMIR_F_REPLY | (data_len ? data_flags : 0),
	};
	struct srv_out *o;

	o = malloc(sizeof(*o) + meta_len);
	if (!o) {
		free(data);
		return -ENOMEM;
	}
	o->next = NULL;
	o->data = data;
	o->meta_len = meta_len;
	o->data_len = data_len;
	o->len = VMIR_HDR_LEN + (size_t)meta_len + data_len;
	o->held = sizeof(*o) + o->len;
	if (meta_len)
		memcpy(o->meta, meta, meta_len);
	vmir_frame_seal(&c->sess, &h, o->meta, o->hdr);
	if (c->out_tail)
		c->out_tail->next = o;
	else
		c->out_head = o;
	c->out_tail = o;
	c->held += o->held;
	conn_arm_send(c);
	return 0;
}

static void conn_sent(struct srv_conn *c, size_t n)
{
	struct srv_out *o;

	while (n) {
		o = c->out_head;
		assert(o);
		if (n < o->len - c->out_off) {
			c->out_off += n;
			return;
		}
		n -= o->len - c->out_off;
		c->out_off = 0;
		c->out_head = o->next;
		if (!c->out_head)
			c->out_tail = NULL;
		assert(c->held >= o->held);
		c->held -= o->held;
		free(o->data);
		free(o);
	}
}

static void conn_hello(struct srv_conn *c, struct srv_req *req)
{
	uint8_t client_nonce[VMIR_NONCE_LEN];
	uint8_t server_nonce[VMIR_NONCE_LEN];
	struct vmir_frame_hdr h = req->hdr;
	int ret;

	if (vmir_frame_verify(&c->sess, &req->hdr, req->meta) < 0) {
		vmir_warn("authentication failed from %s: wrong cluster key?",
			  c->peer);
		conn_req_free(c, req);
		conn_close(c, NULL);
		return;
	}
	memcpy(client_nonce, req->meta, VMIR_NONCE_LEN);
	conn_req_free(c, req);
	vmir_hello_nonce(&c->sess, server_nonce);
	ret = conn_queue(c, &h, 0, server_nonce, VMIR_NONCE_LEN, NULL, 0, 0);
	if (ret < 0) {
		conn_close(c, "out of memory for the HELLO reply");
		return;
	}
	vmir_session_establish(&c->sess, client_nonce, server_nonce);
	vmir_dbg("%s authenticated", c->peer);
}

/* a complete frame: authenticate and dispatch */
static void conn_frame(struct srv_conn *c, struct srv_req *req)
{
	struct srv *srv = c->srv;
	const char *why = NULL;
	int ret;

	req->meta = req->buf;
	req->data = req->buf + req->hdr.meta_len;
	if (!c->sess.established) {
		conn_hello(c, req);
		return;
	}
	if (vmir_frame_verify(&c->sess, &req->hdr, req->meta) < 0) {
		conn_req_free(c, req);
		conn_close(c, "bad MAC or out-of-sequence frame "
			      "(forged or replayed?)");
		return;
	}
	c->inflight++;
	conn_get(c);
	ret = srv->ops->handle(srv->ctx, req, &why);
	if (ret == -EOPNOTSUPP) {
		srv_reply(req, EOPNOTSUPP, NULL, 0);
	} else if (ret < 0) {
		char reason[160];

		snprintf(reason, sizeof(reason), "bad %s request: %s",
			 vmir_op_name(req->hdr.opcode),
			 why ? why : strerror(-ret));
		conn_close(c, reason);
		srv_reply(req, 0, NULL, 0);	/* dropped: conn is dead */
	}
}

/* parse complete frames out of the staging buffer */
static void conn_parse(struct srv_conn *c)
{
	struct vmir_frame_hdr h;
	struct srv_req *req;
	const char *why;
	size_t avail, body, n;

	c->parsing = true;
	while (!c->dead && !c->cur && !conn_throttled(c)) {
		avail = c->in_len - c->in_off;
		if (avail < VMIR_HDR_LEN)
			break;
		if (vmir_frame_recv_hdr(&c->sess, true, c->in + c->in_off, &h,
					&why) < 0) {
			conn_close(c, why);
			break;
		}
		body = (size_t)h.meta_len + h.data_len;
		req = malloc(sizeof(*req) + body);
		if (!req) {
			conn_close(c, "out of memory for a request");
			break;
		}
		memset(req, 0, sizeof(*req));
		req->conn = c;
		req->hdr = h;
		req->buf = (uint8_t *)(req + 1);
		req->held = sizeof(*req) + body;
		c->held += req->held;
		c->in_off += VMIR_HDR_LEN;
		avail -= VMIR_HDR_LEN;
		n = avail < body ? avail : body;
		memcpy(req->buf, c->in + c->in_off, n);
		c->in_off += n;
		if (n == body) {
			conn_frame(c, req);
		} else {
			c->cur = req;
			c->cur_have = n;
			c->cur_need = body;
		}
	}
	if (c->in_off == c->in_len) {
		c->in_off = c->in_len = 0;
	} else if (c->in_off) {
		memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
		c->in_len -= c->in_off;
		c->in_off = 0;
	}
	c->parsing = false;
}

/* parse what is buffered and read more, unless throttled or busy */
static void conn_kick(struct srv_conn *c)
{
	if (c->dead || c->parsing)
		return;
	conn_parse(c);
	conn_arm_recv(c);
}

static void conn_on_recv(struct srv_conn *c, int res)
{
	struct srv_req *req;

	c->recv_armed = false;
	if (c->dead)
		goto out;
	if (res == -EINTR || res == -EAGAIN) {
		conn_kick(c);
		goto out;
	}
	if (res <= 0) {
		if (res < 0)
			vmir_dbg("recv from %s: %s", c->peer, strerror(-res));
		conn_close(c, NULL);
		goto out;
	}
	if (c->cur) {
		c->cur_have += (size_t)res;
		assert(c->cur_have <= c->cur_need);
		if (c->cur_have == c->cur_need) {
			req = c->cur;
			c->cur = NULL;
			c->parsing = true;
			conn_frame(c, req);
			c->parsing = false;
		}
	} else {
		c->in_len += (size_t)res;
		assert(c->in_len <= SRV_IN_CAP);
	}
	conn_kick(c);
out:
	conn_put(c);
}

static void conn_on_send(struct srv_conn *c, int res)
{
	c->send_armed = false;
	if (c->dead)
		goto out;
	if (res < 0 && res != -EINTR && res != -EAGAIN) {
		vmir_dbg("send to %s: %s", c->peer, strerror(-res));
		conn_close(c, NULL);
		goto out;
	}
	if (res > 0)
		conn_sent(c, (size_t)res);
	conn_arm_send(c);
	conn_kick(c);
out:
	conn_put(c);
}

static void srv_new_conn(struct srv *srv, int fd)
{
	struct srv_conn *c;
	int one = 1;

	c = calloc(1, sizeof(*c));
	if (!c)
		goto out_nomem;
	c->in = malloc(SRV_IN_CAP);
	if (!c->in) {
		free(c);
		goto out_nomem;
	}
	c->srv = srv;
	c->fd = fd;
	c->refs = 1;
	srv_peer_name(fd, c->peer, sizeof(c->peer));
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		vmir_dbg("TCP_NODELAY for %s: %s", c->peer, strerror(errno));
	if (srv->nconns >= srv->max_conns) {
		vmir_warn("too many connections (%u): refusing %s", srv->nconns,
			  c->peer);
		free(c->in);
		free(c);
		close(fd);
		return;
	}
	vmir_session_init(&c->sess, srv->key);
	c->next = srv->conns;
	if (c->next)
		c->next->prev = c;
	srv->conns = c;
	srv->nconns++;
	srv->nalive++;
	vmir_dbg("connection from %s", c->peer);
	conn_arm_recv(c);
	return;

out_nomem:
	vmir_warn("out of memory for a new connection; refusing it");
	close(fd);
}

/* --- replies --------------------------------------------------------------- */

static void srv_req_done(struct srv_req *req)
{
	struct srv_conn *c = req->conn;

	assert(c->inflight > 0);
	c->inflight--;
	conn_req_free(c, req);
	conn_kick(c);
	conn_put(c);
}


static void srv_reply_common(struct srv_req *req, uint32_t status,
			     const void *meta, uint32_t meta_len, void *data,
			     uint32_t data_len, uint32_t data_flags)
{
	struct srv_conn *c = req->conn;

	if (c->dead) {
		free(data);
		goto out;
	}
	if (meta_len > VMIR_META_MAX || data_len > VMIR_DATA_MAX ||
	    (data_len && !vmir_op_carries_data(req->hdr.opcode, true))) {
		vmir_err("%s reply to %s not sendable (meta %u, data %u bytes)",
			 vmir_op_name(req->hdr.opcode), c->peer, meta_len,
			 data_len);
		free(data);
		status = EMSGSIZE;
		meta_len = 0;
		data = NULL;
		data_len = 0;
	}
	if (conn_queue(c, &req->hdr, status, meta, meta_len, data,
		       data_len, data_flags) < 0)
		conn_close(c, "out of memory for a reply");
out:
	srv_req_done(req);
}

void srv_reply(struct srv_req *req, uint32_t status, const void *meta,
	       uint32_t meta_len)
{
	srv_reply_common(req, status, meta, meta_len, NULL, 0, 0);
}

void srv_reply_data(struct srv_req *req, const void *meta, uint32_t meta_len,
		    void *data, uint32_t data_len, uint32_t data_flags)
{
	srv_reply_common(req, 0, meta, meta_len, data, data_len, data_flags);
}

void srv_req_hold(struct srv_req *req, size_t bytes)
{
	req->held += bytes;
	req->conn->held += bytes;
}

const char *srv_req_peer(const struct srv_req *req)
{
	return req->conn->peer;
}

/* --- listener, signals, loop -------------------------------------------- */

static void srv_arm_accept(struct srv *srv)
{
	struct io_uring_sqe *sqe;

	if (srv->stopping || srv->accept_armed || srv->timer_armed ||
	    srv->lfd < 0)
		return;
	sqe = srv_get_sqe(srv);
	io_uring_prep_accept(sqe, srv->lfd, NULL, NULL, SOCK_CLOEXEC);
	srv_sqe_set(srv, sqe, srv, SRV_UD_ACCEPT);
	srv->accept_armed = true;
}

static void srv_on_accept(struct srv *srv, int res)
{
	struct io_uring_sqe *sqe;

	srv->accept_armed = false;
	if (res >= 0) {
		if (srv->stopping)
			close(res);
		else
			srv_new_conn(srv, res);
	} else if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS ||
		   res == -ENOMEM) {
		vmir_warn("%s: accept: %s; retrying in 100 ms", srv->name,
			  strerror(-res));
		if (!srv->stopping) {
			srv->backoff.tv_sec = 0;
			srv->backoff.tv_nsec = SRV_BACKOFF_NS;
			sqe = srv_get_sqe(srv);
			io_uring_prep_timeout(sqe, &srv->backoff, 0, 0);
			srv_sqe_set(srv, sqe, srv, SRV_UD_TIMER);
			srv->timer_armed = true;
		}
	} else if (res != -ECANCELED) {
		vmir_dbg("%s: accept: %s", srv->name, strerror(-res));
	}
	srv_arm_accept(srv);
}

static void srv_arm_signal(struct srv *srv)
{
	struct io_uring_sqe *sqe;

	if (srv->stopping || srv->sig_armed || srv->sigfd < 0)
		return;
	sqe = srv_get_sqe(srv);
	io_uring_prep_read(sqe, srv->sigfd, &srv->siginfo,
			   sizeof(srv->siginfo), 0);
	srv_sqe_set(srv, sqe, srv, SRV_UD_SIGNAL);
	srv->sig_armed = true;
}

static void srv_on_signal(struct srv *srv, int res)
{
	srv->sig_armed = false;
	if (res == (int)sizeof(srv->siginfo)) {
		vmir_info("%s: SIG%s received, shutting down", srv->name,
			  sigabbrev_np((int)srv->siginfo.ssi_signo));
		srv_stop(srv);
		return;
	}
	if (res < 0 && res != -ECANCELED && res != -EINTR &&
	    res != -EAGAIN)
		vmir_warn("%s: reading signalfd: %s", srv->name,
			  strerror(-res));
	if (res != -ECANCELED)
		srv_arm_signal(srv);
}

void srv_stop(struct srv *srv)
{
	if (srv->stopping)
		return;
	srv->stopping = true;
	if (srv->accept_armed)
		srv_cancel(srv, srv, SRV_UD_ACCEPT);
	if (srv->timer_armed)
		srv_cancel(srv, srv, SRV_UD_TIMER);
	if (srv->sig_armed)
		srv_cancel(srv, srv, SRV_UD_SIGNAL);
	while (srv->conns)
		conn_close(srv->conns, NULL);
}

static void srv_dispatch(struct srv *srv, uint64_t ud, int res)
{
	void *p = srv_ud_ptr(ud);
	struct srv_io *io;

	switch (srv_ud_type(ud)) {
	case SRV_UD_ACCEPT:
		srv_on_accept(srv, res);
		break;
	case SRV_UD_SIGNAL:
		srv_on_signal(srv, res);
		break;
	case SRV_UD_TIMER:
		srv->timer_armed = false;
		srv_arm_accept(srv);
		break;
	case SRV_UD_RECV:
		conn_on_recv(p, res);
		break;
	case SRV_UD_SEND:
		conn_on_send(p, res);
		break;
	case SRV_UD_IO:
		io = p;
		assert(srv->nio > 0);
		srv->nio--;
		io->done(io, res);
		break;
	case SRV_UD_IGNORE:
		break;
	default:
		vmir_err("%s: completion with bad user_data %#llx", srv->name,
			 (unsigned long long)ud);
		abort();
	}
}

/* run the completions there are; 0 or -errno */
static int srv_reap(struct srv *srv)
{
	struct io_uring_cqe *cqe;
	unsigned int seen = 0;
	uint64_t ud;
	int res;

	while (seen < SRV_CQ_ENTRIES &&
	       io_uring_peek_cqe(&srv->ring, &cqe) == 0) {
		ud = cqe->user_data;
		res = cqe->res;
		io_uring_cqe_seen(&srv->ring, cqe);
		assert(srv->nsqe > 0);
		srv->nsqe--;
		srv_dispatch(srv, ud, res);
		seen++;
	}
	return 0;
}

int srv_poll(struct srv *srv)
{
	int ret;

	ret = io_uring_submit_and_wait(&srv->ring, 1);
	if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY &&
	    ret != -ETIME) {
		vmir_err("%s: io_uring_submit_and_wait: %s", srv->name,
			 strerror(-ret));
		return ret;
	}
	return srv_reap(srv);
}

int srv_poll_nowait(struct srv *srv)
{
	int ret = srv_reap(srv);

	if (ret)
		return ret;
	ret = io_uring_submit(&srv->ring);
	if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) {
		vmir_err("%s: io_uring_submit: %s", srv->name, strerror(-ret));
		return ret;
	}
	return 0;
}

int srv_ring_fd(const struct srv *srv)
{
	return srv->ring.ring_fd;
}

int srv_start(struct srv *srv)
{
	int ret;

	if (srv->lfd >= 0) {
		char name[VMIR_ADDR_MAX];

		if (vmir_sock_name(srv->lfd, name, sizeof(name)) == 0)
			vmir_info("%s: listening on %s", srv->name, name);
		if (srv->ready_file) {
			ret = srv_write_ready_file(srv->lfd, srv->ready_file);
			if (ret < 0)
				return ret;
		}
	}
	srv_arm_signal(srv);
	srv_arm_accept(srv);
	return 0;
}

int srv_run(struct srv *srv)
{
	int ret;

	ret = srv_start(srv);
	if (ret < 0)
		return ret;
	while (!srv->stopping) {
		ret = srv_poll(srv);
		if (ret < 0)
			return ret;
	}
	/* closed every connection; let in-flight operations finish */
	while (srv->nsqe) {
		ret = srv_poll(srv);
		if (ret < 0)
			return ret;
	}
	if (srv->nalive)
		vmir_warn("%s: %u connections still referenced at exit",
			  srv->name, srv->nalive);
	return 0;
}

int srv_listen_fd(const struct srv *srv)
{
	return srv->lfd;
}

static void srv_raise_nofile(unsigned int want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
	setrlimit(RLIMIT_NOFILE, &rl);
}

int srv_new(const struct srv_conf *conf, struct srv **out)
{
	struct io_uring_params p;
	struct srv *srv;
	sigset_t set;
	int ret;

	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return -ENOMEM;
	srv->lfd = -1;
	srv->sigfd = -1;
	srv->ops = conf->ops;
	srv->ctx = conf->ctx;
	snprintf(srv->name, sizeof(srv->name), "%s",
		 conf->name ? conf->name : "server");
	if (conf->key)
		memcpy(srv->key, conf->key, VMIR_KEY_LEN);
	srv->max_conns = conf->max_conns ? conf->max_conns : SRV_MAX_CONNS;
	srv->max_inflight = conf->max_inflight ? conf->max_inflight :
						 SRV_MAX_INFLIGHT;
	srv->max_held = conf->max_held ? conf->max_held : SRV_MAX_HELD;
	if (conf->ready_file) {
		srv->ready_file = strdup(conf->ready_file);
		if (!srv->ready_file) {
			ret = -ENOMEM;
			goto out_free;
		}
	}
	srv_raise_nofile(srv->max_conns + 1024);

	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_CQSIZE;
	p.cq_entries = SRV_CQ_ENTRIES;
	ret = io_uring_queue_init_params(SRV_RING_ENTRIES, &srv->ring, &p);
	if (ret < 0) {
		vmir_err("%s: cannot set up io_uring: %s (kernel too old or "
			 "io_uring disabled?)", srv->name, strerror(-ret));
		goto out_free;
	}

	if (conf->listen) {
		ret = srv_listen(conf->listen);
		if (ret < 0)
			goto out_ring;
		srv->lfd = ret;
	}
	if (conf->signals) {
		sigemptyset(&set);
		sigaddset(&set, SIGINT);
		sigaddset(&set, SIGTERM);
		ret = pthread_sigmask(SIG_BLOCK, &set, &srv->oldmask);
		if (ret) {
			ret = -ret;
			goto out_listen;
		}
		srv->masked = true;
		srv->sigfd = signalfd(-1, &set, SFD_CLOEXEC);
		if (srv->sigfd < 0) {
			ret = -errno;
			vmir_err("%s: signalfd: %s", srv->name, strerror(errno));
			goto out_mask;
		}
	}
	*out = srv;
	return 0;

out_mask:
	pthread_sigmask(SIG_SETMASK, &srv->oldmask, NULL);
out_listen:
	if (srv->lfd >= 0)
		close(srv->lfd);
out_ring:
	io_uring_queue_exit(&srv->ring);
out_free:
	free(srv->ready_file);
	free(srv);
	return ret;
}

void srv_free(struct srv *srv)
{
	if (!srv)
		return;
	if (!srv->stopping)
		srv_stop(srv);
	while (srv->nsqe && srv_poll(srv) == 0)
		;
	io_uring_queue_exit(&srv->ring);
	if (srv->sigfd >= 0)
		close(srv->sigfd);
	if (srv->masked)
		pthread_sigmask(SIG_SETMASK, &srv->oldmask, NULL);
	if (srv->lfd >= 0)
		close(srv->lfd);
	sodium_memzero(srv->key, sizeof(srv->key));
	free(srv->ready_file);
	free(srv);
}
