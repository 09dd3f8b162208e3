// SPDX-License-Identifier: GPL-2.0
/*
 * vmir-versiond: the namespace operations over the server framework.
 * Requests are handled synchronously in the loop thread: a mutation is
 * logged and fdatasync()ed before its reply is queued. A request whose
 * meta does not decode closes the connection (malformed frame); database
 * errors are answered with an errno status.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "srv.h"
#include "versiond_db.h"
#include "versiond_peers.h"
#include "versiond_server.h"
#include "vmir_util.h"

struct versiond_server {
	struct versiond_db *db;
	struct versiond_peers *peers;
};

/* send w as the reply (EMSGSIZE if it did not fit) and free it */
static void versiond_reply_wbuf(struct srv_req *req, struct vmir_wbuf *w)
{
	if (w->err)
		srv_reply(req, (uint32_t)-w->err, NULL, 0);
	else
		srv_reply(req, 0, w->p, (uint32_t)w->len);
	vmir_wbuf_free(w);
}

static void versiond_reply_info(struct srv_req *req, int ret,
				const struct vmir_wire_version_info *vi)
{
	struct vmir_wbuf w;

	if (ret < 0) {
		srv_reply(req, (uint32_t)-ret, NULL, 0);
		return;
	}
	vmir_wbuf_init(&w);
	vmir_put_version_info(&w, vi);
	versiond_reply_wbuf(req, &w);
}

static void versiond_do_list(struct versiond_db *db, struct srv_req *req)
{
	struct vmir_wire_image_info *a;
	struct vmir_wbuf w;
	size_t n;
	int ret;

	ret = versiond_db_list(db, &a, &n);
	if (ret < 0) {
		srv_reply(req, (uint32_t)-ret, NULL, 0);
		return;
	}
	vmir_wbuf_init(&w);
	vmir_put_u32(&w, (uint32_t)n);
	for (size_t i = 0; i < n; i++)
		vmir_put_image_info(&w, &a[i]);
	free(a);
	if (w.err)
		vmir_warn("LIST from %s: %zu images do not fit in one reply",
			  srv_req_peer(req), n);
	versiond_reply_wbuf(req, &w);
}

static void versiond_do_versions(struct versiond_db *db, struct srv_req *req,
				 const char *name)
{
	struct vmir_wire_version_info *a;
	struct vmir_wbuf w;
	size_t n;
	int ret;

	ret = versiond_db_versions(db, name, &a, &n);
	if (ret < 0) {
		srv_reply(req, (uint32_t)-ret, NULL, 0);
		return;
	}
	vmir_wbuf_init(&w);
	vmir_put_u32(&w, (uint32_t)n);
	for (size_t i = 0; i < n; i++)
		vmir_put_version_info(&w, &a[i]);
	free(a);
	if (w.err)
		vmir_warn("VERSIONS of %s from %s: %zu versions do not fit in "
			  "one reply", name, srv_req_peer(req), n);
	versiond_reply_wbuf(req, &w);
}

static void versiond_do_peer_lease(struct versiond_server *vs,
				   struct srv_req *req,
				   const struct vmir_peer_req *q)
{
	struct vmir_wire_version_info vi;
	int ret;

	ret = versiond_db_lookup(vs->db, q->name, q->version, &vi);
	if (!ret)
		ret = versiond_peers_lease(vs->peers, vi.image_id, vi.version,
					   q->addr, q->lease_ms,
					   vmir_mono_ns());
	if (ret == -ENOSPC)
		vmir_warn("PEER_LEASE of %s@%u from %s: %u leases held already",
			  q->name, q->version, srv_req_peer(req),
			  VERSIOND_PEERS_MAX);
	srv_reply(req, ret < 0 ? (uint32_t)-ret : 0, NULL, 0);
}

static void versiond_do_peers(struct versiond_server *vs, struct srv_req *req,
			      const struct vmir_ref_req *q)
{
	struct vmir_wire_version_info vi;
	struct versiond_peer *a;
	struct vmir_wbuf w;
	size_t n;
	int ret;

	ret = versiond_db_lookup(vs->db, q->name, q->version, &vi);
	if (!ret)
		ret = versiond_peers_list(vs->peers, vi.image_id, vi.version,
					  vmir_mono_ns(), VMIR_PEERS_REPLY_MAX,
					  &a, &n);
	if (ret < 0) {
		srv_reply(req, (uint32_t)-ret, NULL, 0);
		return;
	}
	vmir_wbuf_init(&w);
	vmir_put_u32(&w, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		vmir_put_peer_entry(&w, a[i].addr, a[i].ttl_ms);
	}
	free(a);
	versiond_reply_wbuf(req, &w);
}

static int versiond_handle(void *ctx, struct srv_req *req, const char **why)
{
	struct versiond_server *vs = ctx;
	struct versiond_db *db = vs->db;
	struct vmir_peer_req pr;
	struct vmir_wire_version_info vi;
	struct vmir_create_req cq;
	struct vmir_publish_req pq;
	struct vmir_clone_req kq;
	struct vmir_profile_req fq;
	struct vmir_ref_req rq;
	struct vmir_rbuf r;
	int ret;

	vmir_rbuf_init(&r, req->meta, req->hdr.meta_len);
	switch (req->hdr.opcode) {
	case VMIR_OP_CREATE:
		vmir_get_create_req(&r, &cq);
		if (vmir_rbuf_end(&r) < 0)
			break;
		ret = versiond_db_create(db, &cq, &vi);
		versiond_reply_info(req, ret, &vi);
		return 0;
	case VMIR_OP_LOOKUP:
		vmir_get_ref_req(&r, &rq);
		if (vmir_rbuf_end(&r) < 0)
			break;
		ret = versiond_db_lookup(db, rq.name, rq.version, &vi);
		versiond_reply_info(req, ret, &vi);
		return 0;
	case VMIR_OP_LIST:
		if (req->hdr.meta_len)
			break;
		versiond_do_list(db, req);
		return 0;
	case VMIR_OP_VERSIONS:
		vmir_get_ref_req(&r, &rq);
		if (vmir_rbuf_end(&r) < 0)
			break;
		versiond_do_versions(db, req, rq.name);
		return 0;
	case VMIR_OP_PUBLISH:
		vmir_get_publish_req(&r, &pq);
		if (vmir_rbuf_end(&r) < 0)
			break;
		ret = versiond_db_publish(db, &pq, &vi);
		versiond_reply_info(req, ret, &vi);
		return 0;
	case VMIR_OP_CLONE:
		vmir_get_clone_req(&r, &kq);
		if (vmir_rbuf_end(&r) < 0)
			break;
		ret = versiond_db_clone(db, &kq, &vi);
		versiond_reply_info(req, ret, &vi);
		return 0;
	case VMIR_OP_SET_PROFILE:
		vmir_get_profile_req(&r, &fq);
		if (vmir_rbuf_end(&r) < 0)
			break;
		ret = versiond_db_set_profile(db, &fq, &vi);
		versiond_reply_info(req, ret, &vi);
		return 0;
	case VMIR_OP_PEER_LEASE:
		vmir_get_peer_req(&r, &pr);
		if (vmir_rbuf_end(&r) < 0)
			break;
		versiond_do_peer_lease(vs, req, &pr);
		return 0;
	case VMIR_OP_PEERS:
		vmir_get_ref_req(&r, &rq);
		if (vmir_rbuf_end(&r) < 0)
			break;
		versiond_do_peers(vs, req, &rq);
		return 0;
	case VMIR_OP_DELETE:
		vmir_get_ref_req(&r, &rq);
		if (vmir_rbuf_end(&r) < 0)
			break;
		ret = versiond_db_delete(db, rq.name, rq.version);
		srv_reply(req, ret < 0 ? (uint32_t)-ret : 0, NULL, 0);
		return 0;
	default:
		return -EOPNOTSUPP;
	}
	*why = "meta does not decode (bad length, name, chunk size, address or lease)";
	return -EBADMSG;
}

static const struct srv_ops versiond_srv_ops = {
	.handle = versiond_handle,
};

int versiond_server_run(const struct versiond_server_conf *conf)
{
	struct versiond_server vs = { 0 };
	struct srv_conf sc = {
		.name = "versiond",
		.listen = conf->listen,
		.ready_file = conf->ready_file,
		.key = conf->key,
		.ops = &versiond_srv_ops,
		.signals = true,
	};
	struct srv *srv;
	int ret;

	ret = versiond_peers_new(&vs.peers);
	if (ret < 0)
		return ret;
	ret = versiond_db_open(conf->dir,
			       conf->recover_log ? VERSIOND_DB_RECOVER : 0,
			       &vs.db);
	if (ret < 0)
		goto out_peers;
	sc.ctx = &vs;
	ret = srv_new(&sc, &srv);
	if (ret < 0)
		goto out_db;
	ret = srv_run(srv);
	srv_free(srv);
out_db:
	versiond_db_close(vs.db);
out_peers:
	versiond_peers_free(vs.peers);
	return ret;
}
