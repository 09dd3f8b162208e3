// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libvmir engine: one io_uring, one TCP connection per server, pipelined
 * authenticated requests, per-request timeouts, and a worker pool for CPU
 * work. See libvmir_priv.h for the model.
 *
 * Connection states:
 *   IDLE        no socket; a queued request starts a connect
 *   CONNECTING  IORING_OP_CONNECT with a linked timeout in flight
 *   HELLO       our HELLO sent or being sent, waiting for the server's
 *   UP          session established; requests are sealed and sent in order
 *   CLOSING     failed: socket shut down, waiting for its last completions
 *               before close(), so no kernel operation can still touch a
 *               request's buffers when the request completes
 *
 * A request stays owned by its connection while the kernel may read its
 * bytes (in_send) or write its reply data (in_recv); it completes when it
 * is answered and neither flag is set, or when the connection fails.
 * Requests go to connections in admission order and deadlines are set at
 * admission, so the oldest request of a connection is always at the head
 * of its in-flight list (or of its send queue when that list is empty).
 *
 * Timeouts: a connection fails when its oldest request is timeout_ms old
 * and nothing moved on the connection (no byte sent or received) for
 * timeout_ms. A request queued behind megabytes of others on a slow or
 * shared link is not late while the link moves data; a silent server
 * fails after timeout_ms as before. VMIR_TIMEOUT_CAP bounds the wait for
 * a request a live server never answers.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <liburing.h>
#include <sodium.h>

#include "libvmir_priv.h"

#define RING_ENTRIES	512
#define CONN_IOV_MAX	96
#define CONN_SENT_MAX	128		/* sent, unanswered, per connection */
#define SEND_BATCH_MAX	(4u << 20)
#define RBUF_MIN	(64u << 10)
#define WORKERS_MAX	8
#define VMIR_TIMEOUT_CAP	8	/* x timeout_ms: a request's longest wait */

enum conn_state {
	CONN_IDLE,
	CONN_CONNECTING,
	CONN_HELLO,
	CONN_UP,
	CONN_CLOSING,
};

struct vmir_conn {
	struct vmir_engine *e;
	unsigned int idx;
	const struct vmir_addr *addr;
	char desc[VMIR_ADDR_MAX + 32];
	enum conn_state state;
	int fd;
	uint32_t gen;
	unsigned int sqes;		/* our SQEs not yet completed */
	struct vmir_session s;

	uint64_t down_until;		/* mono ns, 0: not down */
	int down_err;
	int fail_err;			/* while CLOSING: for busy requests */
	char err[VMIR_ADDR_MAX + 256];

	struct vmir_list sendq;		/* not yet completely sent */
	struct vmir_list inflight;	/* sent, waiting for the reply */
	unsigned int nsealed;		/* sealed (being sent or sent) */
	uint64_t hs_deadline;		/* handshake */
	uint64_t moved_ns;		/* last byte sent or received */
	size_t send_off;		/* bytes of sendq's head already sent */
	bool send_busy;
	struct iovec iov[CONN_IOV_MAX];
	struct msghdr msg;

	uint8_t hello[VMIR_HDR_LEN + VMIR_NONCE_LEN];
	size_t hello_off;
	bool hello_retried;		/* closed once during the handshake */
	bool hello_busy;		/* the send in flight carries HELLO */

	bool recv_busy;
	uint8_t *rbuf;
	size_t rcap, rlen;
	struct vmir_req *dreq;		/* reply data received in place */
	uint8_t *ddst;			/* NULL: discarding oversized data */
	size_t dleft;

	struct __kernel_timespec cts;
};

struct vmir_engine {
	struct io_uring ring;
	const struct vmir_conf *conf;
	unsigned int nconn;		/* servers, then peers */
	unsigned int nchunkd;
	struct vmir_conn conn[VMIR_CONN_MAX];
	const char *names[VMIR_MAX_SERVERS];
	struct vmir_addr peer_addr[VMIR_PEERS_MAX];
	unsigned int timeout_ms;
	uint64_t next_req_id;

	struct vmir_list waitq;		/* requests not yet admitted */
	struct vmir_list doneq;		/* completions to run */
	size_t inflight_bytes;
	unsigned int io_pending;	/* connection SQEs in flight */
	unsigned int reqs_pending;	/* requests submitted, not finished */
	unsigned int tasks_pending;	/* tasks submitted, done not yet run */

	/* worker pool */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct vmir_list todo;		/* under lock */
	struct vmir_list wdone;		/* under lock */
	pthread_t th[WORKERS_MAX];
	unsigned int nth, nth_max;
	bool stop;
	int efd;
	bool efd_busy;
	uint64_t efd_val;
};

/* --- user_data packing ------------------------------------------------------ */

enum ud_kind {
	UD_EVFD = 1,
	UD_CONNECT,
	UD_CTIMEOUT,
	UD_SEND,
	UD_RECV,
	__UD_MAX,
};

static inline uint64_t ud_pack(unsigned int kind, unsigned int conn,
			       uint32_t gen)
{
	assert(kind > 0 && kind < __UD_MAX);
	assert(conn < VMIR_CONN_MAX);
	return (uint64_t)kind << 56 | (uint64_t)conn << 32 | gen;
}

static inline unsigned int ud_kind(uint64_t ud)
{
	unsigned int k = ud >> 56;

	assert(k > 0 && k < __UD_MAX);
	return k;
}

static inline unsigned int ud_conn(uint64_t ud)
{
	unsigned int c = (ud >> 32) & 0xffffff;

	assert(c < VMIR_CONN_MAX);
	return c;
}

static inline uint32_t ud_gen(uint64_t ud)
{
	return (uint32_t)ud;
}

/* --- small helpers ------------------------------------------------------------ */

static struct io_uring_sqe *engine_sqe(struct vmir_engine *e)
{
	struct io_uring_sqe *sqe;

	sqe = io_uring_get_sqe(&e->ring);
	if (!sqe) {
		io_uring_submit(&e->ring);
		sqe = io_uring_get_sqe(&e->ring);
	}
	/* the ring has room for every connection's SQEs at once */
	assert(sqe);
	return sqe;
}

static void conn_sqe_bind(struct vmir_conn *c, struct io_uring_sqe *sqe,
			  unsigned int kind)
{
	io_uring_sqe_set_data64(sqe, ud_pack(kind, c->idx, c->gen));
	c->sqes++;
	c->e->io_pending++;
}

/* --- requests --------------------------------------------------------------- */

struct vmir_req *vmir_req_new(struct vmir_engine *e, unsigned int srv,
			      uint16_t op)
{
	struct vmir_req *r;

	assert(srv < e->nconn);
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->e = e;
	r->srv = srv;
	r->op = op;
	vmir_wbuf_init(&r->meta);
	vmir_list_init(&r->node);
	vmir_list_init(&r->task.node);
	return r;
}

void vmir_req_free(struct vmir_req *r)
{
	if (!r)
		return;
	assert(!r->on_conn && !r->in_send && !r->in_recv);
	vmir_wbuf_free(&r->meta);
	if (r->rmeta != r->rmeta_inline)
		free(r->rmeta);
	free(r);
}

static void req_done_task(struct vmir_task *t)
{
	struct vmir_req *r = vmir_container_of(t, struct vmir_req, task);

	r->done(r);
}

/* queue r's completion; it leaves whatever list it was on */
static void req_finish(struct vmir_req *r, int err)
{
	struct vmir_engine *e = r->e;

	assert(!r->in_send && !r->in_recv);
	vmir_list_del(&r->node);
	assert(e->reqs_pending > 0);
	e->reqs_pending--;
	if (r->on_conn) {
		e->inflight_bytes -= r->cost;
		r->on_conn = false;
		if (r->sealed) {
			assert(e->conn[r->srv].nsealed > 0);
			e->conn[r->srv].nsealed--;
		}
	}
	if (err && !r->err)
		r->err = err;
	r->task.work = NULL;
	r->task.done = req_done_task;
	e->tasks_pending++;
	vmir_list_add_tail(&r->task.node, &e->doneq);
}

void vmir_req_submit(struct vmir_req *r)
{
	struct vmir_engine *e = r->e;

	r->cost = VMIR_HDR_LEN + r->meta.len + r->data_len + r->rdata_cap +
		  sizeof(*r);
	e->reqs_pending++;
	if (r->meta.err) {
		req_finish(r, r->meta.err);
		return;
	}
	vmir_list_add_tail(&r->node, &e->waitq);
}

/* --- connections ------------------------------------------------------------- */

static void conn_note(struct vmir_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void conn_note(struct vmir_conn *c, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(c->err, sizeof(c->err), "%s: ", c->desc);
	if (n < 0 || (size_t)n >= sizeof(c->err))
		return;
	va_start(ap, fmt);
	vsnprintf(c->err + n, sizeof(c->err) - n, fmt, ap);
	va_end(ap);
}

static void conn_setmsg(struct vmir_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* c->err without the "server: " prefix */
static void conn_setmsg(struct vmir_conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
}

static bool conn_has_reqs(const struct vmir_conn *c)
{
	return !vmir_list_empty(&c->sendq) || !vmir_list_empty(&c->inflight);
}

static void conn_mark_down(struct vmir_conn *c, int err)
{
	c->down_until = vmir_coarse_ns() + VMIR_DOWN_NS;
	c->down_err = err;
}

/* fail every request not busy in the kernel; busy ones finish later */
static void conn_fail_reqs(struct vmir_conn *c, struct vmir_list *l, int err)
{
	struct vmir_list *n, *next;

	for (n = l->next; n != l; n = next) {
		struct vmir_req *r = vmir_container_of(n, struct vmir_req,
						       node);

		next = n->next;
		if (r->in_send || r->in_recv)
			continue;
		req_finish(r, r->answered ? 0 : err);
	}
}

static void conn_closed(struct vmir_conn *c)
{
	assert(c->sqes == 0);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->state = CONN_IDLE;
	c->rlen = 0;
	c->dreq = NULL;
	c->send_off = 0;
	c->hello_off = 0;
	c->send_busy = false;
	c->recv_busy = false;
	c->hello_busy = false;
	assert(c->nsealed == 0);
	sodium_memzero(&c->s, sizeof(c->s));
	/* requests admitted while closing: fail them or reconnect */
	if (c->down_until && vmir_coarse_ns() < c->down_until)
		conn_fail_reqs(c, &c->sendq, c->down_err);
}

/*
 * The connection failed with err (message in c->err, set by the caller
 * via conn_note). If it carried requests, the server counts as down.
 */
static void conn_fail(struct vmir_conn *c, int err, bool down)
{
	if (c->state == CONN_IDLE || c->state == CONN_CLOSING)
		return;
	if (down || conn_has_reqs(c))
		conn_mark_down(c, err);
	vmir_dbg("%s", c->err);
	c->state = CONN_CLOSING;
	c->fail_err = err;
	if (c->fd >= 0)
		shutdown(c->fd, SHUT_RDWR);
	conn_fail_reqs(c, &c->inflight, err);
	conn_fail_reqs(c, &c->sendq, err);
	if (c->sqes == 0)
		conn_closed(c);
}

/* close and reconnect, keeping the queued requests (none was sent yet) */
static void conn_retry(struct vmir_conn *c)
{
	vmir_dbg("%s closed the connection during the handshake; retrying",
		 c->desc);
	c->hello_retried = true;
	c->state = CONN_CLOSING;
	c->fail_err = -ECONNRESET;
	if (c->fd >= 0)
		shutdown(c->fd, SHUT_RDWR);
	if (c->sqes == 0)
		conn_closed(c);
}

static void conn_connect(struct vmir_conn *c)
{
	struct vmir_engine *e = c->e;
	struct io_uring_sqe *sqe;
	char eb[128];
	int one = 1;

	c->fd = socket(c->addr->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		int err = -errno;

		conn_note(c, "cannot create socket: %s",
			  vmir_errstr(err, eb, sizeof(eb)));
		conn_mark_down(c, err);
		conn_fail_reqs(c, &c->sendq, err);
		return;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->gen++;
	c->rlen = 0;
	c->dreq = NULL;
	c->send_off = 0;
	c->hello_off = 0;
	vmir_session_init(&c->s, e->conf->key);
	c->cts.tv_sec = e->timeout_ms / 1000;
	c->cts.tv_nsec = (long long)(e->timeout_ms % 1000) * 1000000;

	/* connect and its linked timeout must go in the same submission */
	if (io_uring_sq_space_left(&e->ring) < 2)
		io_uring_submit(&e->ring);
	sqe = engine_sqe(e);
	io_uring_prep_connect(sqe, c->fd,
			      (const struct sockaddr *)&c->addr->ss,
			      c->addr->len);
	sqe->flags |= IOSQE_IO_LINK;
	conn_sqe_bind(c, sqe, UD_CONNECT);
	sqe = engine_sqe(e);
	io_uring_prep_link_timeout(sqe, &c->cts, 0);
	conn_sqe_bind(c, sqe, UD_CTIMEOUT);
	c->state = CONN_CONNECTING;
	vmir_dbg("connecting to %s", c->desc);
}

static void conn_on_connect(struct vmir_conn *c, int res)
{
	struct vmir_frame_hdr h;
	uint8_t nonce[VMIR_NONCE_LEN];
	char eb[128];

	if (c->state != CONN_CONNECTING)
		return;
	if (res < 0) {
		if (res == -ECANCELED || res == -ETIME) {
			res = -ETIMEDOUT;
			conn_note(c, "connect timed out after %u ms",
				  c->e->timeout_ms);
		} else {
			conn_note(c, "%s", vmir_errstr(res, eb, sizeof(eb)));
		}
		conn_fail(c, res, true);
		return;
	}
	vmir_hello_nonce(&c->s, nonce);
	memset(&h, 0, sizeof(h));
	h.magic = VMIR_PROTO_MAGIC;
	h.version = VMIR_PROTO_VERSION;
	h.opcode = VMIR_OP_HELLO;
	h.meta_len = VMIR_NONCE_LEN;
	vmir_frame_seal(&c->s, &h, nonce, c->hello);
	memcpy(c->hello + VMIR_HDR_LEN, nonce, VMIR_NONCE_LEN);
	c->hello_off = 0;
	c->state = CONN_HELLO;
	c->hs_deadline = vmir_coarse_ns() + (uint64_t)c->e->timeout_ms * 1000000;
}

static size_t req_wire_len(const struct vmir_req *r)
{
	return VMIR_HDR_LEN + r->meta.len + r->data_len;
}

static void req_seal(struct vmir_conn *c, struct vmir_req *r)
{
	struct vmir_frame_hdr h;

	memset(&h, 0, sizeof(h));
	h.magic = VMIR_PROTO_MAGIC;
	h.version = VMIR_PROTO_VERSION;
	h.opcode = r->op;
	h.req_id = r->req_id;
	h.meta_len = (uint32_t)r->meta.len;
	h.data_len = r->data_len;
	h.flags = r->data_len ? r->data_flags : 0;
	vmir_frame_seal(&c->s, &h, r->meta.p, r->hdr);
	r->sealed = true;
	r->deadline = vmir_coarse_ns() + (uint64_t)c->e->timeout_ms * 1000000;
	c->nsealed++;
}

/* add [p, p + len) minus the first *skip bytes to the iovec array */
static void iov_add(struct vmir_conn *c, unsigned int *n, const void *p,
		    size_t len, size_t *skip)
{
	if (*skip >= len) {
		*skip -= len;
		return;
	}
	c->iov[*n].iov_base = (uint8_t *)p + *skip;
	c->iov[*n].iov_len = len - *skip;
	*skip = 0;
	(*n)++;
}

static void conn_send(struct vmir_conn *c)
{
	struct io_uring_sqe *sqe;
	struct vmir_list *n;
	unsigned int niov = 0;
	size_t bytes = 0, skip;

	if (c->send_busy)
		return;
	if (c->state == CONN_HELLO) {
		if (c->hello_off == sizeof(c->hello))
			return;
		c->iov[0].iov_base = c->hello + c->hello_off;
		c->iov[0].iov_len = sizeof(c->hello) - c->hello_off;
		niov = 1;
		c->hello_busy = true;
	} else if (c->state == CONN_UP) {
		skip = c->send_off;
		for (n = c->sendq.next; n != &c->sendq; n = n->next) {
			struct vmir_req *r = vmir_container_of(n,
							       struct vmir_req,
							       node);

			if (niov + 3 > CONN_IOV_MAX ||
			    (niov && bytes >= SEND_BATCH_MAX))
				break;
			if (!r->sealed) {
				/* the server works on a bounded number */
				if (c->nsealed >= CONN_SENT_MAX)
					break;
				req_seal(c, r);
			}
			iov_add(c, &niov, r->hdr, VMIR_HDR_LEN, &skip);
			iov_add(c, &niov, r->meta.p, r->meta.len, &skip);
			iov_add(c, &niov, r->data, r->data_len, &skip);
			r->in_send = true;
			bytes += req_wire_len(r);
		}
		if (!niov)
			return;
	} else {
		return;
	}
	memset(&c->msg, 0, sizeof(c->msg));
	c->msg.msg_iov = c->iov;
	c->msg.msg_iovlen = niov;
	sqe = engine_sqe(c->e);
	io_uring_prep_sendmsg(sqe, c->fd, &c->msg, MSG_NOSIGNAL);
	conn_sqe_bind(c, sqe, UD_SEND);
	c->send_busy = true;
}

static void conn_on_send(struct vmir_conn *c, int res)
{
	struct vmir_list *n, *next;
	bool partial;
	size_t left;
	char eb[128];

	c->send_busy = false;
	if (res > 0)
		c->moved_ns = vmir_coarse_ns();
	if (c->hello_busy) {
		/* the reply may already have moved us to UP */
		c->hello_busy = false;
		if (res > 0) {
			c->hello_off += (size_t)res;
			return;
		}
	}
	if (c->state == CONN_CLOSING || res < 0) {
		for (n = c->sendq.next; n != &c->sendq; n = next) {
			struct vmir_req *r = vmir_container_of(n,
							       struct vmir_req,
							       node);

			next = n->next;
			if (!r->in_send)
				break;
			r->in_send = false;
			if (c->state == CONN_CLOSING && !r->in_recv)
				req_finish(r, r->answered ? 0 : c->fail_err);
		}
		if (c->state != CONN_CLOSING) {
			conn_note(c, "send failed: %s",
				  vmir_errstr(res, eb, sizeof(eb)));
			conn_fail(c, res, true);
		}
		return;
	}
	left = (size_t)res;
	partial = false;
	for (n = c->sendq.next; n != &c->sendq; n = next) {
		struct vmir_req *r = vmir_container_of(n, struct vmir_req,
						       node);

		next = n->next;
		if (!r->in_send)
			break;
		r->in_send = false;
		if (partial)
			continue;
		if (left >= req_wire_len(r) - c->send_off) {
			left -= req_wire_len(r) - c->send_off;
			c->send_off = 0;
			vmir_list_del(&r->node);
			vmir_list_add_tail(&r->node, &c->inflight);
			if (r->answered && !r->in_recv)
				req_finish(r, 0);
		} else {
			c->send_off += left;
			partial = true;
		}
	}
}

static void conn_recv(struct vmir_conn *c)
{
	struct io_uring_sqe *sqe;

	if (c->recv_busy ||
	    (c->state != CONN_HELLO && c->state != CONN_UP))
		return;
	sqe = engine_sqe(c->e);
	if (c->dreq && c->ddst)
		io_uring_prep_recv(sqe, c->fd, c->ddst, c->dleft, 0);
	else if (c->dreq)
		io_uring_prep_recv(sqe, c->fd, c->rbuf,
				   c->dleft < c->rcap ? c->dleft : c->rcap, 0);
	else
		io_uring_prep_recv(sqe, c->fd, c->rbuf + c->rlen,
				   c->rcap - c->rlen, 0);
	conn_sqe_bind(c, sqe, UD_RECV);
	c->recv_busy = true;
}

static struct vmir_req *conn_find(struct vmir_conn *c, uint64_t req_id)
{
	struct vmir_list *lists[2] = { &c->inflight, &c->sendq };
	struct vmir_list *n;
	int i;

	for (i = 0; i < 2; i++) {
		for (n = lists[i]->next; n != lists[i]; n = n->next) {
			struct vmir_req *r = vmir_container_of(n,
							       struct vmir_req,
							       node);

			if (!r->sealed)
				break;
			if (r->req_id == req_id)
				return r;
		}
	}
	return NULL;
}

static void req_answered(struct vmir_req *r)
{
	r->answered = true;
	if (!r->in_send && !r->in_recv)
		req_finish(r, 0);
}

/* the server's HELLO reply (vmir_frame_recv_hdr checked its header) */
static int conn_hello_reply(struct vmir_conn *c,
			    const struct vmir_frame_hdr *h,
			    const uint8_t *meta)
{
	if (vmir_frame_verify(&c->s, h, meta)) {
		conn_setmsg(c, "authentication with %s failed: wrong cluster key?",
			    c->desc);
		conn_fail(c, -EACCES, true);
		return -EACCES;
	}
	vmir_session_establish(&c->s, c->s.my_nonce, meta);
	c->state = CONN_UP;
	c->moved_ns = vmir_coarse_ns();
	c->hello_retried = false;
	vmir_dbg("session with %s established", c->desc);
	return 0;
}

static int conn_grow(struct vmir_conn *c, size_t need)
{
	uint8_t *p;
	size_t cap = c->rcap;

	if (need <= cap)
		return 0;
	while (cap < need)
		cap *= 2;
	p = realloc(c->rbuf, cap);
	if (!p)
		return -ENOMEM;
	c->rbuf = p;
	c->rcap = cap;
	return 0;
}

static void conn_protocol_error(struct vmir_conn *c, const char *what)
{
	conn_note(c, "protocol error: %s", what);
	conn_fail(c, -EPROTO, true);
}

/* one complete header + meta at p; data may follow partly */
static int conn_frame(struct vmir_conn *c, const struct vmir_frame_hdr *h,
		      const uint8_t *p, size_t avail, size_t *used)
{
	const uint8_t *meta = p + VMIR_HDR_LEN;
	struct vmir_req *r;
	size_t have;

	*used = VMIR_HDR_LEN + h->meta_len;
	if (c->state == CONN_HELLO)
		return conn_hello_reply(c, h, meta);
	if (vmir_frame_verify(&c->s, h, meta)) {
		conn_note(c, "frame failed authentication (bad MAC or sequence)");
		conn_fail(c, -EACCES, true);
		return -EACCES;
	}
	r = conn_find(c, h->req_id);
	if (!r || r->op != h->opcode || r->answered) {
		conn_protocol_error(c, "reply to an unknown request");
		return -EPROTO;
	}
	r->status = h->status;
	r->rdata_flags = h->flags & VMIR_F_ZSTD;
	r->rmeta_len = h->meta_len;
	if (h->meta_len <= sizeof(r->rmeta_inline)) {
		r->rmeta = r->rmeta_inline;
	} else {
		r->rmeta = malloc(h->meta_len);
		if (!r->rmeta) {
			conn_note(c, "out of memory for a reply");
			conn_fail(c, -ENOMEM, false);
			return -ENOMEM;
		}
	}
	memcpy(r->rmeta, meta, h->meta_len);
	if (h->data_len) {
		bool fits = r->rdata && h->data_len <= r->rdata_cap;

		if (!r->rdata_cap) {
			conn_protocol_error(c, "data in a reply that carries none");
			return -EPROTO;
		}
		have = avail - *used;
		if (have > h->data_len)
			have = h->data_len;
		if (fits) {
			memcpy(r->rdata, p + *used, have);
			r->rdata_len = h->data_len;
		} else {
			/* more than the object can be: drop it, fail r */
			r->status = EMSGSIZE;
			r->oversize = true;
			r->rdata_len = 0;
		}
		*used += have;
		if (have < h->data_len) {
			c->dreq = r;
			c->ddst = fits ? (uint8_t *)r->rdata + have : NULL;
			c->dleft = h->data_len - have;
			r->in_recv = true;
			return 0;
		}
	}
	req_answered(r);
	return 0;
}

static void conn_parse(struct vmir_conn *c)
{
	struct vmir_frame_hdr h;
	const char *why;
	size_t off = 0, used;

	while (c->rlen - off >= VMIR_HDR_LEN && !c->dreq) {
		uint8_t *p = c->rbuf + off;

		if (vmir_frame_recv_hdr(&c->s, false, p, &h, &why)) {
			conn_protocol_error(c, why);
			return;
		}
		if (c->rlen - off < VMIR_HDR_LEN + h.meta_len) {
			memmove(c->rbuf, p, c->rlen - off);
			c->rlen -= off;
			off = 0;
			if (conn_grow(c, VMIR_HDR_LEN + h.meta_len)) {
				conn_note(c, "out of memory for a reply");
				conn_fail(c, -ENOMEM, false);
			}
			return;
		}
		if (conn_frame(c, &h, p, c->rlen - off, &used))
			return;
		off += used;
	}
	memmove(c->rbuf, c->rbuf + off, c->rlen - off);
	c->rlen -= off;
}

static void conn_on_recv(struct vmir_conn *c, int res)
{
	struct vmir_req *r;
	char eb[128];

	c->recv_busy = false;
	if (res > 0)
		c->moved_ns = vmir_coarse_ns();
	if (c->state == CONN_CLOSING) {
		if (c->dreq) {
			r = c->dreq;
			c->dreq = NULL;
			r->in_recv = false;
			if (!r->in_send)
				req_finish(r, c->fail_err);
		}
		return;
	}
	if (res <= 0) {
		int err = res ? res : -ECONNRESET;

		if (c->state == CONN_HELLO && !c->hello_retried) {
			/*
			 * A server refusing our key closes the connection
			 * after our HELLO, but so does one that is just
			 * dying (its listening socket outlives it briefly).
			 * Try once more: a dead server refuses the retry.
			 */
			conn_retry(c);
		} else if (c->state == CONN_HELLO) {
			conn_setmsg(c, "authentication with %s failed: wrong cluster key? (the server closed the connection)",
				    c->desc);
			conn_fail(c, -EACCES, true);
		} else if (res == 0) {
			conn_note(c, "connection closed by the server");
			conn_fail(c, err, false);
		} else {
			conn_note(c, "receive failed: %s",
				  vmir_errstr(err, eb, sizeof(eb)));
			conn_fail(c, err, false);
		}
		return;
	}
	if (c->dreq) {
		if (c->ddst)
			c->ddst += res;
		c->dleft -= (size_t)res;
		if (!c->dleft) {
			r = c->dreq;
			c->dreq = NULL;
			r->in_recv = false;
			req_answered(r);
		}
		return;
	}
	c->rlen += (size_t)res;
	conn_parse(c);
}

/* --- worker pool ---------------------------------------------------------------- */

static void *worker_main(void *arg)
{
	struct vmir_engine *e = arg;
	struct vmir_task *t;
	bool wake;

	pthread_mutex_lock(&e->lock);
	for (;;) {
		while (vmir_list_empty(&e->todo) && !e->stop)
			pthread_cond_wait(&e->cond, &e->lock);
		if (vmir_list_empty(&e->todo))
			break;
		t = vmir_container_of(e->todo.next, struct vmir_task, node);
		vmir_list_del(&t->node);
		pthread_mutex_unlock(&e->lock);

		t->work(t);

		pthread_mutex_lock(&e->lock);
		wake = vmir_list_empty(&e->wdone);
		vmir_list_add_tail(&t->node, &e->wdone);
		if (wake) {
			uint64_t one = 1;

			if (write(e->efd, &one, sizeof(one)) < 0)
				vmir_dbg("eventfd write: %s", strerror(errno));
		}
	}
	pthread_mutex_unlock(&e->lock);
	return NULL;
}

static void pool_start(struct vmir_engine *e)
{
	sigset_t all, old;

	if (e->nth || !e->nth_max)
		return;
	/* workers take no signals: the application's handlers stay its own */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	while (e->nth < e->nth_max) {
		if (pthread_create(&e->th[e->nth], NULL, worker_main, e))
			break;
		e->nth++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!e->nth)
		e->nth_max = 0;		/* run tasks inline */
}

void vmir_task_submit(struct vmir_engine *e, struct vmir_task *t)
{
	e->tasks_pending++;
	if (t->work && !e->nth)
		pool_start(e);
	if (!t->work || !e->nth) {
		if (t->work)
			t->work(t);
		vmir_list_add_tail(&t->node, &e->doneq);
		return;
	}
	pthread_mutex_lock(&e->lock);
	vmir_list_add_tail(&t->node, &e->todo);
	pthread_cond_signal(&e->cond);
	pthread_mutex_unlock(&e->lock);
}

static void pool_collect(struct vmir_engine *e)
{
	if (!e->nth)
		return;
	pthread_mutex_lock(&e->lock);
	while (!vmir_list_empty(&e->wdone)) {
		struct vmir_list *n = e->wdone.next;

		vmir_list_del(n);
		vmir_list_add_tail(n, &e->doneq);
	}
	pthread_mutex_unlock(&e->lock);
}

static void pool_arm(struct vmir_engine *e)
{
	struct io_uring_sqe *sqe;

	if (!e->nth || e->efd_busy)
		return;
	sqe = engine_sqe(e);
	io_uring_prep_read(sqe, e->efd, &e->efd_val, sizeof(e->efd_val), 0);
	io_uring_sqe_set_data64(sqe, ud_pack(UD_EVFD, 0, 0));
	e->efd_busy = true;
}

static void pool_stop(struct vmir_engine *e)
{
	unsigned int i;

	pthread_mutex_lock(&e->lock);
	e->stop = true;
	pthread_cond_broadcast(&e->cond);
	pthread_mutex_unlock(&e->lock);
	for (i = 0; i < e->nth; i++)
		pthread_join(e->th[i], NULL);
	e->nth = 0;
}

/* --- engine ----------------------------------------------------------------------- */

static int conn_init(struct vmir_engine *e, unsigned int i,
		     const struct vmir_addr *addr, const char *what)
{
	struct vmir_conn *c = &e->conn[i];

	c->e = e;
	c->idx = i;
	c->fd = -1;
	c->addr = addr;
	snprintf(c->desc, sizeof(c->desc), "%s %s", what, addr->text);
	vmir_list_init(&c->sendq);
	vmir_list_init(&c->inflight);
	c->rcap = RBUF_MIN;
	c->rbuf = malloc(c->rcap);
	return c->rbuf ? 0 : -ENOMEM;
}

int vmir_engine_new(const struct vmir_conf *conf, struct vmir_engine **ep,
		    char *err, size_t errlen)
{
	struct io_uring_params p;
	struct vmir_engine *e;
	const char *env;
	unsigned int i;
	long ncpu;
	char eb[128];
	int ret;

	if (sodium_init() < 0) {
		snprintf(err, errlen, "cannot initialise libsodium");
		return -EIO;
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	e->conf = conf;
	e->timeout_ms = conf->timeout_ms ? conf->timeout_ms : 5000;
	e->nconn = 1 + conf->nchunkd;
	e->nchunkd = conf->nchunkd;
	e->next_req_id = 1;
	e->efd = -1;
	vmir_list_init(&e->waitq);
	vmir_list_init(&e->doneq);
	vmir_list_init(&e->todo);
	vmir_list_init(&e->wdone);
	pthread_mutex_init(&e->lock, NULL);
	pthread_cond_init(&e->cond, NULL);

	for (i = 0; i < e->nconn; i++) {
		ret = conn_init(e, i, i ? &conf->chunkd[i - 1] : &conf->versiond,
				i ? "chunk server" : "version server");
		if (ret < 0) {
			snprintf(err, errlen, "out of memory");
			goto out_free;
		}
		if (i)
			e->names[i - 1] = e->conn[i].addr->text;
	}

	memset(&p, 0, sizeof(p));
	/* not SINGLE_ISSUER: a client may move between threads */
	p.flags = IORING_SETUP_COOP_TASKRUN;
	ret = io_uring_queue_init_params(RING_ENTRIES, &e->ring, &p);
	if (ret == -EINVAL) {
		memset(&p, 0, sizeof(p));
		ret = io_uring_queue_init_params(RING_ENTRIES, &e->ring, &p);
	}
	if (ret < 0) {
		snprintf(err, errlen, "cannot set up io_uring: %s",
			 vmir_errstr(ret, eb, sizeof(eb)));
		goto out_free;
	}
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	/* VMIR_WORKERS=N overrides the pool size (0: hash inline) */
	env = getenv("VMIR_WORKERS");
	if (env && env[0] >= '0' && env[0] <= '9')
		ncpu = strtol(env, NULL, 10);
	if (ncpu > 0 && (ncpu > 1 || env)) {
		e->efd = eventfd(0, EFD_CLOEXEC);
		if (e->efd >= 0)
			e->nth_max = ncpu > WORKERS_MAX ? WORKERS_MAX :
				     (unsigned int)ncpu;
	}
	*ep = e;
	return 0;

out_free:
	for (i = 0; i < e->nconn; i++)
		free(e->conn[i].rbuf);
	pthread_cond_destroy(&e->cond);
	pthread_mutex_destroy(&e->lock);
	free(e);
	return ret;
}

static void engine_drain(struct vmir_engine *e, unsigned int wait_ms)
{
	struct __kernel_timespec ts = { .tv_nsec = 10 * 1000000 };
	struct io_uring_cqe *cqe;
	uint64_t end = vmir_coarse_ns() + (uint64_t)wait_ms * 1000000;
	unsigned int head, n;

	while (e->io_pending || e->efd_busy) {
		io_uring_submit_and_wait_timeout(&e->ring, &cqe, 1, &ts, NULL);
		n = 0;
		io_uring_for_each_cqe(&e->ring, head, cqe) {
			uint64_t ud = io_uring_cqe_get_data64(cqe);

			n++;
			if (ud_kind(ud) == UD_EVFD)
				e->efd_busy = false;
			else
				e->io_pending--;
		}
		io_uring_cq_advance(&e->ring, n);
		if (vmir_coarse_ns() > end)
			break;
	}
}

void vmir_engine_free(struct vmir_engine *e)
{
	unsigned int i;

	if (!e)
		return;
	/* stop the kernel touching our buffers before freeing them */
	for (i = 0; i < e->nconn; i++)
		if (e->conn[i].fd >= 0)
			shutdown(e->conn[i].fd, SHUT_RDWR);
	if (e->efd >= 0) {
		uint64_t one = 1;

		if (write(e->efd, &one, sizeof(one)) < 0)
			vmir_dbg("eventfd write: %s", strerror(errno));
	}
	engine_drain(e, 2000);
	pool_stop(e);
	io_uring_queue_exit(&e->ring);
	for (i = 0; i < e->nconn; i++) {
		if (e->conn[i].fd >= 0)
			close(e->conn[i].fd);
		free(e->conn[i].rbuf);
	}
	if (e->efd >= 0)
		close(e->efd);
	pthread_cond_destroy(&e->cond);
	pthread_mutex_destroy(&e->lock);
	free(e);
}

/* move waiting requests onto connections, within the in-flight budget */
static void engine_admit(struct vmir_engine *e)
{
	uint64_t now = vmir_coarse_ns();

	while (!vmir_list_empty(&e->waitq)) {
		struct vmir_req *r = vmir_container_of(e->waitq.next,
						       struct vmir_req, node);
		struct vmir_conn *c = &e->conn[r->srv];

		if (e->inflight_bytes &&
		    e->inflight_bytes + r->cost > VMIR_INFLIGHT_MAX)
			break;
		vmir_list_del(&r->node);
		if (c->down_until && now < c->down_until) {
			req_finish(r, c->down_err);
			continue;
		}
		c->down_until = 0;
		r->req_id = e->next_req_id++;
		r->on_conn = true;
		e->inflight_bytes += r->cost;
		vmir_list_add_tail(&r->node, &c->sendq);
	}
}

static void engine_kick(struct vmir_engine *e)
{
	unsigned int i;

	engine_admit(e);
	for (i = 0; i < e->nconn; i++) {
		struct vmir_conn *c = &e->conn[i];

		switch (c->state) {
		case CONN_IDLE:
			if (!vmir_list_empty(&c->sendq))
				conn_connect(c);
			break;
		case CONN_HELLO:
		case CONN_UP:
			conn_recv(c);
			conn_send(c);
			break;
		default:
			break;
		}
	}
	pool_arm(e);
}

/*
 * When the connection of @r, its oldest sealed request, fails: timeout_ms
 * after @r was sealed or after the last byte moved, whichever is later,
 * and no later than VMIR_TIMEOUT_CAP x timeout_ms after sealing.
 */
static uint64_t conn_deadline(const struct vmir_conn *c,
			      const struct vmir_req *r)
{
	uint64_t t = (uint64_t)c->e->timeout_ms * 1000000;
	uint64_t dl = c->moved_ns + t;
	uint64_t cap = r->deadline + (VMIR_TIMEOUT_CAP - 1) * t;

	if (dl < r->deadline)
		dl = r->deadline;
	return dl < cap ? dl : cap;
}

/*
 * Fail connections whose handshake or oldest sent request is past its
 * deadline (connects have their own linked timeout). Requests sealed in
 * order, so the oldest sent one heads the in-flight list, or the send
 * queue while that is empty.
 */
static uint64_t engine_timeouts(struct vmir_engine *e)
{
	uint64_t now = vmir_coarse_ns(), next = UINT64_MAX, dl;
	unsigned int i;

	for (i = 0; i < e->nconn; i++) {
		struct vmir_conn *c = &e->conn[i];
		struct vmir_list *l;
		struct vmir_req *r = NULL;

		if (c->state == CONN_HELLO) {
			dl = c->hs_deadline;
		} else if (c->state == CONN_UP) {
			l = !vmir_list_empty(&c->inflight) ? &c->inflight :
							     &c->sendq;
			if (vmir_list_empty(l))
				continue;
			r = vmir_container_of(l->next, struct vmir_req, node);
			if (!r->sealed)
				continue;
			dl = conn_deadline(c, r);
		} else {
			continue;
		}
		if (now < dl) {
			if (dl < next)
				next = dl;
			continue;
		}
		if (r)
			conn_note(c, "no reply to %s within %llu ms, connection idle for %llu ms",
				  vmir_op_name(r->op),
				  (unsigned long long)(now - r->deadline) / 1000000 +
				  e->timeout_ms,
				  (unsigned long long)(now - c->moved_ns) / 1000000);
		else
			conn_note(c, "handshake timed out after %u ms",
				  e->timeout_ms);
		conn_fail(c, -ETIMEDOUT, true);
	}
	return next;
}

static void engine_cqe(struct vmir_engine *e, struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	unsigned int kind = ud_kind(ud);
	struct vmir_conn *c;

	if (kind == UD_EVFD) {
		e->efd_busy = false;
		return;
	}
	assert(ud_conn(ud) < e->nconn);
	c = &e->conn[ud_conn(ud)];
	assert(ud_gen(ud) == c->gen);
	assert(c->sqes > 0);
	c->sqes--;
	e->io_pending--;
	switch (kind) {
	case UD_CONNECT:
		conn_on_connect(c, cqe->res);
		break;
	case UD_CTIMEOUT:
		break;
	case UD_SEND:
		conn_on_send(c, cqe->res);
		break;
	case UD_RECV:
		conn_on_recv(c, cqe->res);
		break;
	}
	if (c->state == CONN_CLOSING && c->sqes == 0)
		conn_closed(c);
}

/* consume ready completions; callbacks they finish wait on doneq */
static void engine_reap(struct vmir_engine *e)
{
	struct io_uring_cqe *cqe;
	unsigned int head, n = 0;

	io_uring_for_each_cqe(&e->ring, head, cqe) {
		engine_cqe(e, cqe);
		n++;
	}
	io_uring_cq_advance(&e->ring, n);
}

static unsigned int engine_run_done(struct vmir_engine *e)
{
	unsigned int ran = 0;

	pool_collect(e);
	while (!vmir_list_empty(&e->doneq)) {
		struct vmir_task *t = vmir_container_of(e->doneq.next,
							struct vmir_task,
							node);

		vmir_list_del(&t->node);
		assert(e->tasks_pending > 0);
		e->tasks_pending--;
		t->done(t);
		ran++;
		if (vmir_list_empty(&e->doneq))
			pool_collect(e);
	}
	return ran;
}

bool vmir_engine_busy(const struct vmir_engine *e)
{
	return e->reqs_pending || e->tasks_pending;
}

int vmir_engine_poll(struct vmir_engine *e, int timeout_ms)
{
	struct __kernel_timespec ts, *tsp = NULL;
	struct io_uring_cqe *cqe;
	unsigned int ran;
	uint64_t next, now;
	int ret;

	ran = engine_run_done(e);
	engine_kick(e);
	next = engine_timeouts(e);
	/* requests failed by admission or a timeout */
	ran += engine_run_done(e);
	engine_kick(e);

	if (ran || timeout_ms == 0 || !vmir_engine_busy(e)) {
		/* progress made, or nothing can complete: do not sleep */
		ret = io_uring_submit(&e->ring);
	} else {
		now = vmir_coarse_ns();
		if (timeout_ms > 0 &&
		    now + (uint64_t)timeout_ms * 1000000 < next)
			next = now + (uint64_t)timeout_ms * 1000000;
		if (next != UINT64_MAX) {
			uint64_t d = next > now ? next - now : 0;

			if (d < 1000000)
				d = 1000000;
			ts.tv_sec = (long long)(d / 1000000000);
			ts.tv_nsec = (long long)(d % 1000000000);
			tsp = &ts;
		}
		ret = io_uring_submit_and_wait_timeout(&e->ring, &cqe, 1, tsp,
						       NULL);
	}
	if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EAGAIN &&
	    ret != -EBUSY) {
		char eb[128];

		vmir_err("io_uring wait failed: %s",
			 vmir_errstr(ret, eb, sizeof(eb)));
		return ret;
	}
	engine_reap(e);
	engine_timeouts(e);
	engine_run_done(e);
	engine_kick(e);
	io_uring_submit(&e->ring);
	return 0;
}

/*
 * For a caller's own poll loop: the ring fd turns readable when a
 * completion arrives (worker results come through the eventfd read, a
 * completion too). Everything queued is submitted first, so nothing waits
 * for a later vmir_engine_poll() to leave. *timeout_ms: 0 when there is
 * work to run now, else until the next request deadline, -1 for none.
 */
int vmir_engine_pollfd(struct vmir_engine *e, int *timeout_ms)
{
	uint64_t next, now, ms;

	/*
	 * A completion left over from finished work (a send reaped after its
	 * reply) is consumed here, so 0 means work to run, not an idle ring.
	 */
	engine_reap(e);
	pool_collect(e);
	next = engine_timeouts(e);
	engine_kick(e);
	io_uring_submit(&e->ring);
	if (!vmir_list_empty(&e->doneq) || io_uring_cq_ready(&e->ring)) {
		*timeout_ms = 0;
	} else if (next == UINT64_MAX) {
		*timeout_ms = -1;
	} else {
		now = vmir_coarse_ns();
		ms = next > now ? (next - now + 999999) / 1000000 : 0;
		*timeout_ms = ms > INT32_MAX ? INT32_MAX : (int)ms;
	}
	return e->ring.ring_fd;
}

void vmir_engine_reset_down(struct vmir_engine *e)
{
	unsigned int i;

	for (i = 0; i < e->nconn; i++)
		e->conn[i].down_until = 0;
}

bool vmir_engine_srv_down(struct vmir_engine *e, unsigned int srv)
{
	struct vmir_conn *c = &e->conn[srv];

	assert(srv < e->nconn);
	if (c->down_until && vmir_coarse_ns() >= c->down_until)
		c->down_until = 0;
	return c->down_until != 0;
}

int vmir_engine_srv_down_err(const struct vmir_engine *e, unsigned int srv)
{
	assert(srv < e->nconn);
	return e->conn[srv].down_err;
}

const char *vmir_engine_srv_err(const struct vmir_engine *e,
				unsigned int srv)
{
	assert(srv < e->nconn);
	return e->conn[srv].err[0] ? e->conn[srv].err : e->conn[srv].desc;
}

const char *vmir_engine_srv_desc(const struct vmir_engine *e,
				 unsigned int srv)
{
	assert(srv < e->nconn);
	return e->conn[srv].desc;
}

const char *vmir_engine_srv_addr(const struct vmir_engine *e,
				 unsigned int srv)
{
	assert(srv < e->nconn);
	return e->conn[srv].addr->text;
}

unsigned int vmir_engine_nchunkd(const struct vmir_engine *e)
{
	return e->nchunkd;
}

int vmir_engine_peer(struct vmir_engine *e, const char *addr)
{
	unsigned int i, k;
	int ret;

	for (i = 1 + e->nchunkd; i < e->nconn; i++)
		if (!strcmp(e->conn[i].addr->text, addr))
			return (int)i;
	if (e->nconn == VMIR_CONN_MAX)
		return -ENOSPC;
	k = e->nconn - 1 - e->nchunkd;
	ret = vmir_addr_parse(addr, &e->peer_addr[k]);
	if (ret < 0)
		return ret;
	ret = conn_init(e, e->nconn, &e->peer_addr[k], "peer");
	return ret < 0 ? ret : (int)e->nconn++;
}

bool vmir_engine_srv_is_peer(const struct vmir_engine *e, unsigned int srv)
{
	return srv > e->nchunkd;
}

const char *const *vmir_engine_chunkd_names(const struct vmir_engine *e)
{
	return e->names;
}

unsigned int vmir_engine_replicas(const struct vmir_engine *e)
{
	unsigned int r = e->conf->replicas ? e->conf->replicas : 1;

	return r > e->nchunkd ? e->nchunkd : r;
}
