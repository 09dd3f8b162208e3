// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Replicated objects on top of the engine: a GET that walks the replicas
 * in rendezvous order and only accepts bytes that hash to the id, a PUT
 * that stops once R servers acknowledged, and an uploader that first asks
 * the servers (HAS, batched) which objects they already hold. Objects the
 * uploader sends are packed (zstd) on a worker when that saves an eighth;
 * a GET unpacks a packed reply on its worker before it verifies the id.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libvmir_priv.h"

static void why_add(char *why, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* append "; message" to a failure list (truncated when full) */
static void why_add(char *why, const char *fmt, ...)
{
	size_t n = strlen(why);
	va_list ap;

	if (n + 3 >= VMIR_WHY_MAX)
		return;
	if (n) {
		strcpy(why + n, "; ");
		n += 2;
	}
	va_start(ap, fmt);
	vsnprintf(why + n, VMIR_WHY_MAX - n, fmt, ap);
	va_end(ap);
}

static void id_short(const struct vmir_id *id, char *out)
{
	char hex[2 * VMIR_ID_LEN + 1];

	vmir_id_to_hex(id, hex);
	memcpy(out, hex, 16);
	out[16] = '\0';
}

/* --- GET ------------------------------------------------------------------ */

static void get_next(struct vmir_get *g);

/* a chunk server's failure (not a peer's) makes a failed read EIO, not ENOENT */
static void get_srv_failed(struct vmir_get *g, unsigned int srv)
{
	if (!vmir_engine_srv_is_peer(g->e, srv))
		g->all_enoent = false;
}

static void get_verify_work(struct vmir_task *t)
{
	struct vmir_get *g = vmir_container_of(t, struct vmir_get, task);
	struct vmir_id got;
	int64_t n;

	g->verr = 0;
	free(g->zcopy);
	g->zcopy = NULL;
	if (g->packed && g->keep_packed) {
		/* as it travelled, before it is unpacked in place */
		g->zcopy = malloc(g->wire_len);
		if (g->zcopy) {
			memcpy(g->zcopy, g->buf, g->wire_len);
			g->zlen = g->wire_len;
		}
	}
	if (g->packed) {
		/* a frame that does not unpack is a corrupt copy too */
		n = vmir_zunpack_inplace(g->buf, g->cap, g->wire_len);
		if (n < 0) {
			g->bad = true;
			g->bad_why = "not a zstd frame of at most the chunk size";
			return;
		}
		g->len = (uint32_t)n;
	}
	vmir_id_of(g->buf, g->len, &got);
	g->bad = !vmir_id_eq(&got, &g->id);
	g->bad_why = "hash mismatch";
	if (!g->bad && g->verified)
		g->verr = g->verified(g);
}

static void get_verify_done(struct vmir_task *t)
{
	struct vmir_get *g = vmir_container_of(t, struct vmir_get, task);
	char ids[17];

	if (g->bad) {
		id_short(&g->id, ids);
		vmir_warn("%s returned corrupt data for object %s (%s); trying the next replica",
			  vmir_engine_srv_desc(g->e, g->srv), ids, g->bad_why);
		why_add(g->why, "%s: corrupt copy (%s)",
			vmir_engine_srv_desc(g->e, g->srv), g->bad_why);
		get_srv_failed(g, g->srv);
		get_next(g);
		return;
	}
	g->done(g, g->verr);
}

/* a peer that fails, refuses or lies only sends the read on */
static void get_peer_failed(struct vmir_req *r)
{
	struct vmir_get *g = r->arg;
	char eb[128];

	if (r->err)
		why_add(g->why, "%s", vmir_engine_srv_err(g->e, r->srv));
	else
		why_add(g->why, "%s: %s", vmir_engine_srv_desc(g->e, r->srv),
			r->oversize ? "sent too many bytes" :
			vmir_errstr((int)r->status, eb, sizeof(eb)));
	vmir_req_free(r);
	get_next(g);
}

static void get_req_done(struct vmir_req *r)
{
	struct vmir_get *g = r->arg;
	struct vmir_rbuf rb;
	struct vmir_id got;
	char eb[128];

	g->srv = r->srv;
	if ((r->err || r->status) && vmir_engine_srv_is_peer(g->e, r->srv)) {
		get_peer_failed(r);
		return;
	}
	if (r->err) {
		why_add(g->why, "%s", vmir_engine_srv_err(g->e, r->srv));
		if (r->err == -EACCES)
			g->any_acces = true;
		g->all_enoent = false;
		goto next;
	}
	if (r->status) {
		if (r->status == ENOENT) {
			why_add(g->why, "%s: object not found",
				vmir_engine_srv_desc(g->e, r->srv));
		} else if (r->oversize) {
			char ids[17];

			id_short(&g->id, ids);
			vmir_warn("%s returned more than %u bytes for object %s (corrupt copy); trying the next replica",
				  vmir_engine_srv_desc(g->e, r->srv), g->cap,
				  ids);
			g->all_enoent = false;
			why_add(g->why, "%s: sent more than %u bytes (corrupt copy)",
				vmir_engine_srv_desc(g->e, r->srv), g->cap);
		} else {
			why_add(g->why, "%s: %s",
				vmir_engine_srv_desc(g->e, r->srv),
				vmir_errstr((int)r->status, eb, sizeof(eb)));
			g->all_enoent = false;
		}
		goto next;
	}
	vmir_rbuf_init(&rb, r->rmeta, r->rmeta_len);
	vmir_get_id(&rb, &got);
	if (vmir_rbuf_end(&rb) || !vmir_id_eq(&got, &g->id)) {
		why_add(g->why, "%s: reply names another object",
			vmir_engine_srv_desc(g->e, r->srv));
		get_srv_failed(g, r->srv);
		goto next;
	}
	g->len = g->wire_len = r->rdata_len;
	g->packed = r->rdata_flags & VMIR_F_ZSTD;
	vmir_req_free(r);
	g->task.work = get_verify_work;
	g->task.done = get_verify_done;
	vmir_task_submit(g->e, &g->task);
	return;

next:
	vmir_req_free(r);
	get_next(g);
}

static void get_fail_task(struct vmir_task *t)
{
	struct vmir_get *g = vmir_container_of(t, struct vmir_get, task);
	int err;

	/* bytes of a bad replica never stay in the caller's buffer */
	memset(g->buf, 0, g->cap);
	if (g->any_acces)
		err = -EACCES;
	else if (g->all_enoent)
		err = -ENOENT;
	else
		err = -EIO;
	g->done(g, err);
}

static void get_next(struct vmir_get *g)
{
	unsigned int n = vmir_engine_nchunkd(g->e);
	struct vmir_req *r;

	while (g->next < n || g->next_peer < g->npeers) {
		bool peer = g->next_peer < g->npeers;
		unsigned int srv = peer ? g->peer[g->next_peer++] :
					  1u + g->order[g->next++];

		if (peer && vmir_engine_srv_down(g->e, srv)) {
			why_add(g->why, "%s", vmir_engine_srv_err(g->e, srv));
			continue;
		}
		if (vmir_engine_srv_down(g->e, srv)) {
			why_add(g->why, "%s", vmir_engine_srv_err(g->e, srv));
			if (vmir_engine_srv_down_err(g->e, srv) == -EACCES)
				g->any_acces = true;
			g->all_enoent = false;
			continue;
		}
		r = vmir_req_new(g->e, srv, VMIR_OP_GET);
		if (!r) {
			why_add(g->why, "out of memory");
			g->all_enoent = false;
			break;
		}
		vmir_put_id(&r->meta, &g->id);
		r->rdata = g->buf;
		r->rdata_cap = g->cap;
		r->done = get_req_done;
		r->arg = g;
		vmir_req_submit(r);
		return;
	}
	/* complete from the poll loop, never inside the caller's call */
	g->task.work = NULL;
	g->task.done = get_fail_task;
	vmir_task_submit(g->e, &g->task);
}

void vmir_get_start(struct vmir_engine *e, struct vmir_get *g)
{
	g->e = e;
	g->next = 0;
	g->next_peer = 0;
	g->why[0] = '\0';
	g->len = 0;
	g->bad = false;
	g->packed = false;
	g->any_acces = false;
	g->all_enoent = true;
	vmir_list_init(&g->task.node);
	vmir_placement_order(vmir_engine_chunkd_names(e),
			     vmir_engine_nchunkd(e), &g->id, g->order);
	get_next(g);
}

/* --- PUT ---------------------------------------------------------------------- */

static void put_fill(struct vmir_put *p);

static void put_finish_task(struct vmir_task *t);

static void put_req_done(struct vmir_req *r)
{
	struct vmir_put *p = r->arg;
	char eb[128];

	p->outstanding--;
	if (r->err) {
		why_add(p->why, "%s", vmir_engine_srv_err(p->e, r->srv));
	} else if (r->status) {
		why_add(p->why, "%s: PUT refused: %s",
			vmir_engine_srv_desc(p->e, r->srv),
			vmir_errstr((int)r->status, eb, sizeof(eb)));
	} else {
		p->acked++;
		p->written++;
		p->present |= 1ull << (r->srv - 1);
	}
	vmir_req_free(r);
	put_fill(p);
}

/* keep R - acked PUTs going on the next servers in order */
static void put_fill(struct vmir_put *p)
{
	unsigned int n = vmir_engine_nchunkd(p->e);
	unsigned int want = vmir_engine_replicas(p->e);
	struct vmir_req *r;

	while (p->acked + p->outstanding < want && p->next < n) {
		unsigned int i = p->order[p->next++];

		if (vmir_engine_srv_down(p->e, 1 + i)) {
			why_add(p->why, "%s", vmir_engine_srv_err(p->e, 1 + i));
			continue;
		}
		if (p->present & (1ull << i)) {
			p->acked++;
			continue;
		}
		r = vmir_req_new(p->e, 1 + i, VMIR_OP_PUT);
		if (!r) {
			why_add(p->why, "out of memory");
			p->next = n;
			break;
		}
		vmir_put_id(&r->meta, &p->id);
		if (p->zdata) {
			r->data = p->zdata;
			r->data_len = p->zlen;
			r->data_flags = VMIR_F_ZSTD;
		} else {
			r->data = p->data;
			r->data_len = p->len;
		}
		r->done = put_req_done;
		r->arg = p;
		p->outstanding++;
		vmir_req_submit(r);
	}
	if (p->outstanding)
		return;
	p->task_done.work = NULL;
	p->task_done.done = put_finish_task;
	vmir_task_submit(p->e, &p->task_done);
}

static void put_finish_task(struct vmir_task *t)
{
	struct vmir_put *p = vmir_container_of(t, struct vmir_put, task_done);
	unsigned int want = vmir_engine_replicas(p->e);
	char ids[17];
	char msg[VMIR_WHY_MAX];

	if (p->acked >= want) {
		p->done(p, 0);
		return;
	}
	id_short(&p->id, ids);
	memcpy(msg, p->why, sizeof(msg));
	p->why[0] = '\0';
	why_add(p->why, "object %s stored on only %u of %u chunk servers (%s)",
		ids, p->acked, want, msg[0] ? msg : "no server reachable");
	p->done(p, -EIO);
}

void vmir_put_prepare(struct vmir_engine *e, struct vmir_put *p)
{
	if (p->ordered)
		return;
	vmir_placement_order(vmir_engine_chunkd_names(e),
			     vmir_engine_nchunkd(e), &p->id, p->order);
	p->ordered = true;
}

void vmir_put_start(struct vmir_engine *e, struct vmir_put *p)
{
	p->e = e;
	vmir_put_prepare(e, p);
	p->next = 0;
	p->acked = 0;
	p->outstanding = 0;
	p->written = 0;
	p->why[0] = '\0';
	vmir_list_init(&p->task_done.node);
	put_fill(p);
}

/* --- uploader: HAS, then PUT where missing ------------------------------------ */

struct has_batch {
	struct vmir_upl *u;
	unsigned int srv;
	unsigned int n;
	struct vmir_upl_obj *objs[VMIR_HAS_MAX];
};

struct vmir_upl {
	struct vmir_engine *e;
	struct has_batch *acc[VMIR_MAX_SERVERS];
	struct vmir_upl_stats st;
	struct vmir_task flush;		/* vmir_upl_flush_soon() */
	bool flush_queued;
	bool freed;			/* free once the flush task ran */
};

static void upl_release(struct vmir_upl *u)
{
	unsigned int i;

	for (i = 0; i < VMIR_MAX_SERVERS; i++)
		free(u->acc[i]);
	free(u);
}

static void upl_flush_task(struct vmir_task *t)
{
	struct vmir_upl *u = vmir_container_of(t, struct vmir_upl, flush);

	u->flush_queued = false;
	if (u->freed)
		upl_release(u);
	else
		vmir_upl_flush(u);
}

struct vmir_upl *vmir_upl_new(struct vmir_engine *e)
{
	struct vmir_upl *u = calloc(1, sizeof(*u));

	if (!u)
		return NULL;
	u->e = e;
	vmir_list_init(&u->flush.node);
	u->flush.done = upl_flush_task;
	return u;
}

void vmir_upl_free(struct vmir_upl *u)
{
	if (!u)
		return;
	if (u->flush_queued)
		u->freed = true;	/* the queued flush task frees it */
	else
		upl_release(u);
}

void vmir_upl_flush_soon(struct vmir_upl *u)
{
	if (u->flush_queued)
		return;
	u->flush_queued = true;
	vmir_task_submit(u->e, &u->flush);
}

const struct vmir_upl_stats *vmir_upl_stats(const struct vmir_upl *u)
{
	return &u->st;
}

static void upl_put_done(struct vmir_put *p, int err)
{
	struct vmir_upl_obj *o = vmir_container_of(p, struct vmir_upl_obj,
						   put);
	struct vmir_upl *u = o->upl;

	u->st.objects++;
	if (p->written) {
		u->st.new_objects++;
		u->st.new_bytes += (uint64_t)p->written *
				   (p->zdata ? p->zlen : p->len);
	}
	free(p->zdata);
	p->zdata = NULL;
	p->zlen = 0;
	o->done(o, err);
}

static void upl_pack_work(struct vmir_task *t)
{
	struct vmir_upl_obj *o = vmir_container_of(t, struct vmir_upl_obj,
						   ztask);

	o->put.zlen = vmir_zpack(o->put.data, o->put.len, &o->put.zdata);
}

static void upl_pack_done(struct vmir_task *t)
{
	struct vmir_upl_obj *o = vmir_container_of(t, struct vmir_upl_obj,
						   ztask);

	o->put.done = upl_put_done;
	vmir_put_start(o->upl->e, &o->put);
}

/* will put_fill() send it anywhere: fewer of the first R up hold it */
static bool upl_obj_missing(struct vmir_upl_obj *o)
{
	struct vmir_engine *e = o->upl->e;
	unsigned int n = vmir_engine_nchunkd(e);
	unsigned int want = vmir_engine_replicas(e);
	unsigned int k, i, held = 0, up = 0;

	for (k = 0; k < n && up < want; k++) {
		i = o->put.order[k];
		if (vmir_engine_srv_down(e, 1 + i))
			continue;
		up++;
		if (o->put.present & (1ull << i))
			held++;
	}
	return held < want;
}

/* pack it on a worker first if it is going to be sent */
static void upl_obj_ready(struct vmir_upl_obj *o)
{
	o->put.zdata = NULL;
	o->put.zlen = 0;
	vmir_list_init(&o->ztask.node);
	o->ztask.work = upl_obj_missing(o) ? upl_pack_work : NULL;
	o->ztask.done = upl_pack_done;
	vmir_task_submit(o->upl->e, &o->ztask);
}

static void has_req_done(struct vmir_req *r)
{
	struct has_batch *b = r->arg;
	struct vmir_rbuf rb;
	uint8_t bits[(VMIR_HAS_MAX + 7) / 8];
	unsigned int i, n;
	bool ok = false;

	if (!r->err && !r->status) {
		vmir_rbuf_init(&rb, r->rmeta, r->rmeta_len);
		n = vmir_get_u32(&rb);
		if (n == b->n) {
			vmir_get_bytes(&rb, bits, (n + 7) / 8);
			ok = vmir_rbuf_end(&rb) == 0;
		}
		if (!ok)
			vmir_warn("%s: malformed HAS reply; uploading anyway",
				  vmir_engine_srv_desc(b->u->e, b->srv));
	}
	/* a failed HAS only means "not known to be there": PUT decides */
	for (i = 0; i < b->n; i++) {
		struct vmir_upl_obj *o = b->objs[i];

		if (ok && (bits[i / 8] & (1u << (i % 8))))
			o->put.present |= 1ull << (b->srv - 1);
		if (--o->has_wait == 0)
			upl_obj_ready(o);
	}
	vmir_req_free(r);
	free(b);
}

static void has_send(struct vmir_upl *u, unsigned int i)
{
	struct has_batch *b = u->acc[i];
	struct vmir_req *r;
	unsigned int k;

	u->acc[i] = NULL;
	r = vmir_req_new(u->e, b->srv, VMIR_OP_HAS);
	if (!r) {
		for (k = 0; k < b->n; k++)
			if (--b->objs[k]->has_wait == 0)
				upl_obj_ready(b->objs[k]);
		free(b);
		return;
	}
	vmir_put_u32(&r->meta, b->n);
	for (k = 0; k < b->n; k++)
		vmir_put_id(&r->meta, &b->objs[k]->put.id);
	r->done = has_req_done;
	r->arg = b;
	vmir_req_submit(r);
}

void vmir_upl_add(struct vmir_upl *u, struct vmir_upl_obj *o)
{
	struct vmir_engine *e = u->e;
	unsigned int n = vmir_engine_nchunkd(e);
	unsigned int want = vmir_engine_replicas(e);
	unsigned int k, i, srv[VMIR_MAX_SERVERS], nsrv = 0;

	o->upl = u;
	o->has_wait = 0;
	o->put.present = 0;
	o->put.ordered = false;
	vmir_put_prepare(e, &o->put);
	/* ask the servers that should hold it: the first R that are up */
	for (k = 0; k < n && nsrv < want; k++) {
		i = o->put.order[k];
		if (!vmir_engine_srv_down(e, 1 + i))
			srv[nsrv++] = i;
	}
	for (k = 0; k < nsrv; k++) {
		struct has_batch *b = u->acc[srv[k]];

		if (!b) {
			b = malloc(sizeof(*b));
			if (!b)
				continue;	/* no HAS there: just PUT */
			b->u = u;
			b->srv = 1 + srv[k];
			b->n = 0;
			u->acc[srv[k]] = b;
		}
		b->objs[b->n++] = o;
		o->has_wait++;
	}
	/* count every batch before one can complete */
	for (k = 0; k < nsrv; k++)
		if (u->acc[srv[k]] && u->acc[srv[k]]->n == VMIR_HAS_MAX)
			has_send(u, srv[k]);
	if (!o->has_wait)
		upl_obj_ready(o);
}

void vmir_upl_flush(struct vmir_upl *u)
{
	unsigned int i;

	for (i = 0; i < VMIR_MAX_SERVERS; i++)
		if (u->acc[i] && u->acc[i]->n)
			has_send(u, i);
}
