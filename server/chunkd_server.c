// SPDX-License-Identifier: GPL-2.0
/*
 * vmir-chunkd: PUT, GET, HAS and STAT over the server framework. A PUT's
 * data may be packed (VMIR_F_ZSTD); a GET answers with the object as it
 * is stored, packed or not, and says which. Decoding
 * errors in an authenticated request close the connection (malformed
 * frame); store errors are answered with an errno status.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "chunkd_server.h"
#include "chunkd_store.h"
#include "srv.h"
#include "vmir_util.h"

#define CHUNKD_HEAP_FREE_MAX	(256u << 20)

struct chunkd_server {
	struct srv *srv;
	struct chunkd_store *st;
};

static int chunkd_decode_id(struct srv_req *req, struct vmir_id *id)
{
	struct vmir_rbuf r;

	vmir_rbuf_init(&r, req->meta, req->hdr.meta_len);
	vmir_get_id(&r, id);
	return vmir_rbuf_end(&r);
}

static void chunkd_put_done(void *arg, int err)
{
	srv_reply(arg, (uint32_t)-err, NULL, 0);
}

static void chunkd_get_done(void *arg, int err, void *data, uint32_t len,
			    bool packed)
{
	struct srv_req *req = arg;

	if (err) {
		srv_reply(req, (uint32_t)-err, NULL, 0);
		return;
	}
	/* the reply meta is the id the request carried */
	srv_reply_data(req, req->meta, VMIR_ID_LEN, data, len,
		       packed ? VMIR_F_ZSTD : 0);
}

static int chunkd_do_get(struct chunkd_server *cs, struct srv_req *req,
			 const struct vmir_id *id)
{
	struct chunkd_get_op *op;
	bool packed;
	uint32_t len;
	int ret;

	ret = chunkd_get_open(cs->st, id, &op, &len, &packed);
	if (ret < 0) {
		srv_reply(req, (uint32_t)-ret, NULL, 0);
		return 0;
	}
	/* the read buffer counts against the connection's memory bound */
	srv_req_hold(req, len);
	chunkd_get_read(op, chunkd_get_done, req);
	return 0;
}

static int chunkd_do_has(struct chunkd_server *cs, struct srv_req *req,
			 const char **why)
{
	struct vmir_wbuf w;
	struct vmir_rbuf r;
	struct vmir_id id;
	uint8_t *bits;
	uint32_t n;
	int ret = 0;

	vmir_rbuf_init(&r, req->meta, req->hdr.meta_len);
	n = vmir_get_u32(&r);
	if (r.err || n < 1 || n > VMIR_HAS_MAX ||
	    req->hdr.meta_len != 4 + (uint64_t)n * VMIR_ID_LEN) {
		*why = "HAS count out of range or not matching its ids";
		return -EBADMSG;
	}
	bits = calloc(1, (n + 7) / 8);
	if (!bits) {
		srv_reply(req, ENOMEM, NULL, 0);
		return 0;
	}
	for (uint32_t i = 0; i < n; i++) {
		vmir_get_id(&r, &id);
		ret = chunkd_has(cs->st, &id);
		if (ret < 0)
			break;
		if (ret)
			bits[i / 8] |= (uint8_t)(1u << (i % 8));
	}
	if (ret < 0 || vmir_rbuf_end(&r) < 0) {
		free(bits);
		srv_reply(req, ret < 0 ? (uint32_t)-ret : EIO, NULL, 0);
		return 0;
	}
	vmir_wbuf_init(&w);
	vmir_put_u32(&w, n);
	vmir_put_bytes(&w, bits, (n + 7) / 8);
	free(bits);
	if (w.err)
		srv_reply(req, (uint32_t)-w.err, NULL, 0);
	else
		srv_reply(req, 0, w.p, (uint32_t)w.len);
	vmir_wbuf_free(&w);
	return 0;
}

static int chunkd_do_stat(struct chunkd_server *cs, struct srv_req *req,
			  const char **why)
{
	struct chunkd_stat s;
	struct vmir_wbuf w;

	if (req->hdr.meta_len) {
		*why = "STAT carries no meta";
		return -EBADMSG;
	}
	chunkd_stat(cs->st, &s);
	vmir_wbuf_init(&w);
	vmir_put_u64(&w, s.objects);
	vmir_put_u64(&w, s.bytes);
	if (w.err)
		srv_reply(req, (uint32_t)-w.err, NULL, 0);
	else
		srv_reply(req, 0, w.p, (uint32_t)w.len);
	vmir_wbuf_free(&w);
	return 0;
}

static int chunkd_handle(void *ctx, struct srv_req *req, const char **why)
{
	struct chunkd_server *cs = ctx;
	struct vmir_id id;

	switch (req->hdr.opcode) {
	case VMIR_OP_PUT:
		if (chunkd_decode_id(req, &id) < 0) {
			*why = "PUT meta is not a 32-byte id";
			return -EBADMSG;
		}
		chunkd_put(cs->st, &id, req->data, req->hdr.data_len,
			   req->hdr.flags & VMIR_F_ZSTD, chunkd_put_done, req);
		return 0;
	case VMIR_OP_GET:
		if (chunkd_decode_id(req, &id) < 0) {
			*why = "GET meta is not a 32-byte id";
			return -EBADMSG;
		}
		return chunkd_do_get(cs, req, &id);
	case VMIR_OP_HAS:
		return chunkd_do_has(cs, req, why);
	case VMIR_OP_STAT:
		return chunkd_do_stat(cs, req, why);
	default:
		return -EOPNOTSUPP;
	}
}

static const struct srv_ops chunkd_srv_ops = {
	.handle = chunkd_handle,
};

int chunkd_server_run(const struct chunkd_server_conf *conf)
{
	struct chunkd_server cs = { 0 };
	struct srv_conf sc = {
		.name = "chunkd",
		.listen = conf->listen,
		.ready_file = conf->ready_file,
		.key = conf->key,
		.ops = &chunkd_srv_ops,
		.ctx = &cs,
		.signals = true,
	};
	struct chunkd_stat s;
	int ret;

	/* every request and GET reply is a malloc()ed buffer */
	vmir_heap_keep_buffers(CHUNKD_HEAP_FREE_MAX);

	ret = srv_new(&sc, &cs.srv);
	if (ret < 0)
		return ret;
	ret = chunkd_store_open(conf->dir, cs.srv, &cs.st);
	if (ret < 0)
		goto out_srv;
	chunkd_stat(cs.st, &s);
	vmir_info("store %s: %" PRIu64 " objects, %" PRIu64 " bytes",
		  conf->dir, s.objects, s.bytes);
	ret = srv_run(cs.srv);
	/* srv_run() drained the ring: no store operation is pending */
	chunkd_stat(cs.st, &s);
	vmir_info("stopped: %" PRIu64 " objects stored, %" PRIu64
		  " deduplicated, %" PRIu64 " served",
		  s.puts, s.dedup, s.gets);
	srv_free(cs.srv);
	cs.srv = NULL;
	chunkd_store_close(cs.st);
	return ret;

out_srv:
	srv_free(cs.srv);
	return ret;
}
