// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Peers: other nodes' helpers that serve the chunks of the versions they
 * have attached.
 *
 * Which peer a read asks. Every node of a version ranks the version's
 * nodes for a chunk by a rendezvous score of (node, chunk id); the first
 * is the chunk's home. A node that is not the home asks the nodes ranked
 * above itself (at most VMIR_GET_PEERS, skipping those marked down),
 * then the chunk servers. The home finds itself first and reads from the
 * chunk servers: so each chunk leaves them about once, and a node whose
 * view of the version's nodes is older than another's only costs an
 * extra read, never a loop (a helper serving a peer reads from the chunk
 * servers only, VMIR_FETCH_NO_PEERS).
 *
 * The score is a 64-bit mix of the chunk id's first 8 bytes with a seed
 * per node (BLAKE2b of its address, once): a read computes one per peer,
 * so it must cost next to nothing where a whole BLAKE2b per peer and
 * chunk would not.
 *
 * Also here: the version server's lease calls (PEER_LEASE, PEERS), the
 * id -> chunk index a peer server looks chunks up in, and where reads
 * came from.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libvmir_priv.h"

_Static_assert(VMIR_PEER_ADDR_LEN == VMIR_ADDR_MAX, "address lengths");
_Static_assert(VMIR_CHUNK_ID_LEN == VMIR_ID_LEN, "id lengths");

struct vmir_peerset {
	uint64_t self_seed;
	unsigned int n;
	struct vmir_peer_slot {
		uint64_t seed;
		unsigned int srv;
	} p[];
};

struct vmir_chunk_index {
	size_t n;
	struct vmir_chunk_key {
		uint64_t key;
		uint64_t idx;
	} k[];
};

static uint64_t peer_seed(const char *addr)
{
	static const struct vmir_id zero;

	return vmir_hrw_score(addr, &zero);
}

static uint64_t id_key(const struct vmir_id *id)
{
	uint64_t k = 0;
	int i;

	for (i = 7; i >= 0; i--)
		k = (k << 8) | id->b[i];
	return k;
}

/* a full-avalanche 64-bit mix (the finalizer of splitmix64) */
static uint64_t peer_score(uint64_t seed, uint64_t key)
{
	uint64_t z = seed ^ key;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* the peers ranked above this node for id, best first; their number */
static unsigned int peers_above(const struct vmir_peerset *ps,
				const struct vmir_id *id, unsigned int *srv,
				unsigned int max)
{
	uint64_t key = id_key(id), mine, sc[VMIR_GET_PEERS + 1];
	unsigned int i, j, n = 0;

	mine = peer_score(ps->self_seed, key);
	for (i = 0; i < ps->n; i++) {
		uint64_t s = peer_score(ps->p[i].seed, key);

		if (s <= mine || (n == max && s <= sc[max - 1]))
			continue;
		/* insert into the best max, descending; the last drops out */
		if (n < max)
			n++;
		for (j = n - 1; j > 0 && sc[j - 1] < s; j--) {
			sc[j] = sc[j - 1];
			srv[j] = srv[j - 1];
		}
		sc[j] = s;
		srv[j] = ps->p[i].srv;
	}
	return n;
}

void vmir_peers_pick(const struct vmir_version *v, struct vmir_get *g)
{
	g->npeers = 0;
	if (v->peers)
		g->npeers = peers_above(v->peers, &g->id, g->peer,
					VMIR_GET_PEERS);
}

bool vmir_version_chunk_from_peer(const struct vmir_version *v, uint64_t idx)
{
	unsigned int srv[VMIR_GET_PEERS];
	const struct vmir_id *id;

	if (!v->peers || idx >= v->nchunks)
		return false;
	id = vmir_tree_leaf(v->tree, idx);
	if (vmir_id_is_zero(id))
		return false;
	return peers_above(v->peers, id, srv, 1) > 0;
}

int vmir_version_set_peers(struct vmir_version *v, const char *self,
			   const char *const *addrs, size_t n)
{
	struct vmir_client *c = v->c;
	struct vmir_peerset *ps;
	size_t i;
	int srv;

	free(v->peers);
	v->peers = NULL;
	if (!n)
		return 0;
	ps = calloc(1, sizeof(*ps) + n * sizeof(ps->p[0]));
	if (!ps)
		return vmir_client_seterr(c, -ENOMEM, "out of memory");
	ps->self_seed = self && self[0] ? peer_seed(self) : 0;
	for (i = 0; i < n; i++) {
		if (self && !strcmp(addrs[i], self))
			continue;
		srv = vmir_engine_peer(c->e, addrs[i]);
		if (srv < 0) {
			/* that node is just not asked */
			vmir_warn("peer %s of %s@%u left out: %s", addrs[i],
				  v->info.image, v->info.version,
				  srv == -ENOSPC ? "too many peers known" :
				  "not an IP:PORT address");
			continue;
		}
		ps->p[ps->n].seed = peer_seed(addrs[i]);
		ps->p[ps->n].srv = (unsigned int)srv;
		ps->n++;
	}
	if (!ps->n) {
		free(ps);
		return 0;
	}
	v->peers = ps;
	return 0;
}

void vmir_peers_account(struct vmir_version *v, const struct vmir_get *g,
			int err)
{
	struct vmir_fetch_stats *st[2] = { &v->fst, &v->c->fst };
	bool peer = !err && vmir_engine_srv_is_peer(v->c->e, g->srv);
	int i;

	for (i = 0; i < 2; i++) {
		if (g->npeers && !peer)
			st[i]->peer_misses++;
		if (err)
			continue;
		if (peer) {
			st[i]->peer_chunks++;
			st[i]->peer_bytes += g->wire_len;
		} else {
			st[i]->chunkd_chunks++;
			st[i]->chunkd_bytes += g->wire_len;
		}
	}
}

void vmir_peers_forget(struct vmir_version *v)
{
	free(v->peers);
	v->peers = NULL;
	free(v->index);
	v->index = NULL;
}

void vmir_version_fetch_stats(const struct vmir_version *v,
			      struct vmir_fetch_stats *st)
{
	*st = v->fst;
}

void vmir_client_fetch_stats(const struct vmir_client *c,
			     struct vmir_fetch_stats *st)
{
	*st = c->fst;
}

/* --- id -> chunk --------------------------------------------------------------- */

static int chunk_key_cmp(const void *a, const void *b)
{
	const struct vmir_chunk_key *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int index_build(struct vmir_version *v)
{
	struct vmir_chunk_index *ix;
	const struct vmir_id *id;
	uint64_t i;
	size_t n = 0;

	ix = malloc(sizeof(*ix) + (v->nchunks ? v->nchunks : 1) *
		    sizeof(ix->k[0]));
	if (!ix)
		return -ENOMEM;
	for (i = 0; i < v->nchunks; i++) {
		id = vmir_tree_leaf(v->tree, i);
		if (vmir_id_is_zero(id))
			continue;
		ix->k[n].key = id_key(id);
		ix->k[n].idx = i;
		n++;
	}
	ix->n = n;
	qsort(ix->k, n, sizeof(ix->k[0]), chunk_key_cmp);
	v->index = ix;
	return 0;
}

int vmir_version_chunk_id(const struct vmir_version *v, uint64_t idx,
			  void *id)
{
	if (idx >= v->nchunks)
		return -ERANGE;
	if (!v->tree)
		memset(id, 0, VMIR_ID_LEN);
	else
		memcpy(id, vmir_tree_leaf(v->tree, idx)->b, VMIR_ID_LEN);
	return 0;
}

int vmir_version_find_chunk(struct vmir_version *v, const void *idp,
			    uint64_t *idx)
{
	struct vmir_id id;
	size_t lo = 0, hi;
	uint64_t key;
	int ret;

	memcpy(id.b, idp, VMIR_ID_LEN);
	if (!v->tree || vmir_id_is_zero(&id))
		return -ENOENT;
	if (!v->index) {
		ret = index_build(v);
		if (ret)
			return vmir_client_seterr(v->c, ret, "out of memory");
	}
	key = id_key(&id);
	hi = v->index->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v->index->k[mid].key < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < v->index->n && v->index->k[lo].key == key; lo++) {
		if (vmir_id_eq(vmir_tree_leaf(v->tree, v->index->k[lo].idx),
			       &id)) {
			*idx = v->index->k[lo].idx;
			return 0;
		}
	}
	return -ENOENT;
}

/* --- the version server's leases ----------------------------------------------- */

struct peer_op {
	struct vmir_client *c;
	vmir_done_cb done;
	vmir_peers_cb list;
	void *arg;
	char what[VMIR_NAME_MAX + VMIR_ADDR_MAX + 48];
	char msg[VMIR_ERR_LEN];
};

/* 0, or -errno with o->msg set: r's transport failure or refusal */
static int peer_op_status(struct peer_op *o, struct vmir_req *r)
{
	char eb[128];

	if (r->err) {
		snprintf(o->msg, sizeof(o->msg), "%s failed: %s", o->what,
			 vmir_engine_srv_err(o->c->e, VMIR_SRV_VERSIOND));
		return r->err;
	}
	if (!r->status)
		return 0;
	snprintf(o->msg, sizeof(o->msg), "%s failed: %s", o->what,
		 r->status == ENOENT ? "no such image or version" :
		 r->status == EOPNOTSUPP ?
		 "the version server does not know peers (older than this client)" :
		 vmir_errstr((int)r->status, eb, sizeof(eb)));
	return -(int)r->status;
}

static void peer_op_end(struct peer_op *o)
{
	o->c->ops--;
	free(o);
}

static void lease_done(struct vmir_req *r)
{
	struct peer_op *o = r->arg;
	int err = peer_op_status(o, r);

	vmir_req_free(r);
	o->done(o->arg, err, err ? o->msg : NULL);
	peer_op_end(o);
}

static void peers_done(struct vmir_req *r)
{
	struct peer_op *o = r->arg;
	struct vmir_peer_info *p = NULL;
	struct vmir_rbuf rb;
	uint32_t n = 0, i;
	int err = peer_op_status(o, r);

	if (err)
		goto out;
	vmir_rbuf_init(&rb, r->rmeta, r->rmeta_len);
	n = vmir_get_u32(&rb);
	if (!rb.err && n > VMIR_PEERS_REPLY_MAX)
		rb.err = -EBADMSG;
	if (!rb.err) {
		p = calloc(n ? n : 1, sizeof(*p));
		if (!p) {
			err = -ENOMEM;
			snprintf(o->msg, sizeof(o->msg), "%s: out of memory",
				 o->what);
			goto out;
		}
	}
	for (i = 0; !rb.err && i < n; i++) {
		vmir_get_peer_entry(&rb, p[i].addr, &p[i].ttl_ms);
	}
	if (vmir_rbuf_end(&rb) < 0) {
		err = -EBADMSG;
		snprintf(o->msg, sizeof(o->msg),
			 "%s: the version server's reply does not decode",
			 o->what);
	}
out:
	vmir_req_free(r);
	o->list(o->arg, err ? NULL : p, err ? 0 : n, err, err ? o->msg : NULL);
	free(p);
	peer_op_end(o);
}

static int peer_op_send(struct vmir_client *c, struct peer_op *o,
			struct vmir_req *r)
{
	if (r->meta.err) {
		vmir_req_free(r);
		free(o);
		return vmir_client_seterr(c, -ENOMEM, "out of memory");
	}
	r->arg = o;
	c->ops++;
	vmir_req_submit(r);
	return 0;
}

int vmir_peer_lease_async(struct vmir_client *c, const char *name,
			  uint32_t version, const char *addr,
			  uint32_t lease_ms, vmir_done_cb cb, void *arg)
{
	struct vmir_peer_req q = { .version = version, .lease_ms = lease_ms };
	struct peer_op *o;
	struct vmir_req *r;

	if (vmir_name_valid(name) || !version)
		return vmir_client_seterr(c, -EINVAL,
					  "PEER_LEASE: bad image name or version (%s@%u)",
					  name, version);
	if (vmir_addr_numeric(addr))
		return vmir_client_seterr(c, -EINVAL,
					  "PEER_LEASE of %s@%u: '%s' is not a numeric IP:PORT",
					  name, version, addr);
	if (lease_ms && (lease_ms < VMIR_LEASE_MS_MIN ||
			 lease_ms > VMIR_LEASE_MS_MAX))
		return vmir_client_seterr(c, -EINVAL,
					  "PEER_LEASE of %s@%u: a lease of %u ms is outside %u..%u",
					  name, version, lease_ms,
					  VMIR_LEASE_MS_MIN, VMIR_LEASE_MS_MAX);
	o = calloc(1, sizeof(*o));
	r = o ? vmir_req_new(c->e, VMIR_SRV_VERSIOND, VMIR_OP_PEER_LEASE) :
		NULL;
	if (!r) {
		free(o);
		return vmir_client_seterr(c, -ENOMEM, "out of memory");
	}
	o->c = c;
	o->done = cb;
	o->arg = arg;
	snprintf(o->what, sizeof(o->what), "%s of %s@%u for %s",
		 lease_ms ? "PEER_LEASE" : "leaving the peers", name, version,
		 addr);
	snprintf(q.name, sizeof(q.name), "%s", name);
	snprintf(q.addr, sizeof(q.addr), "%s", addr);
	vmir_put_peer_req(&r->meta, &q);
	r->done = lease_done;
	return peer_op_send(c, o, r);
}

int vmir_peers_async(struct vmir_client *c, const char *name,
		     uint32_t version, vmir_peers_cb cb, void *arg)
{
	struct vmir_ref_req q = { .version = version };
	struct peer_op *o;
	struct vmir_req *r;

	if (vmir_name_valid(name))
		return vmir_client_seterr(c, -EINVAL,
					  "PEERS: bad image name '%s'", name);
	o = calloc(1, sizeof(*o));
	r = o ? vmir_req_new(c->e, VMIR_SRV_VERSIOND, VMIR_OP_PEERS) : NULL;
	if (!r) {
		free(o);
		return vmir_client_seterr(c, -ENOMEM, "out of memory");
	}
	o->c = c;
	o->list = cb;
	o->arg = arg;
	snprintf(o->what, sizeof(o->what), "PEERS of %s@%u", name, version);
	snprintf(q.name, sizeof(q.name), "%s", name);
	vmir_put_ref_req(&r->meta, &q);
	r->done = peers_done;
	return peer_op_send(c, o, r);
}

struct peers_wait {
	struct vmir_client *c;
	unsigned int pending;
	int err;
	struct vmir_peer_info *out;
	size_t n;
};

static void peers_wait_done(void *arg, const struct vmir_peer_info *p,
			    size_t n, int err, const char *why)
{
	struct peers_wait *w = arg;

	w->pending--;
	w->err = err;
	if (err) {
		vmir_client_seterr(w->c, err, "%s", why);
		return;
	}
	w->out = malloc((n ? n : 1) * sizeof(*p));
	if (!w->out) {
		w->err = vmir_client_seterr(w->c, -ENOMEM, "out of memory");
		return;
	}
	memcpy(w->out, p, n * sizeof(*p));
	w->n = n;
}

int vmir_peers_list(struct vmir_client *c, const char *name,
		    uint32_t version, struct vmir_peer_info **out, size_t *n)
{
	struct peers_wait w = { .c = c, .pending = 1 };
	int ret;

	vmir_client_op_begin(c);
	*out = NULL;
	*n = 0;
	ret = vmir_client_await(c, vmir_peers_async(c, name, version,
						    peers_wait_done, &w),
				&w.pending, &w.err);
	if (ret) {
		free(w.out);
		return ret;
	}
	*out = w.out;
	*n = w.n;
	return 0;
}

int vmir_client_local_ip(struct vmir_client *c, char *out, size_t len)
{
	const struct vmir_addr *a = &c->conf.versiond;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	const void *ip;
	int fd, ret = 0;

	/* a datagram socket's connect() picks the route, sends nothing */
	fd = socket(a->ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return vmir_client_seterr(c, -errno, "socket: %s",
					  strerror(errno));
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		ret = vmir_client_seterr(c, -errno,
					 "no route to the version server %s: %s",
					 a->text, strerror(errno));
		goto out;
	}
	ip = ss.ss_family == AF_INET6 ?
		(const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr :
		(const void *)&((struct sockaddr_in *)&ss)->sin_addr;
	if (!inet_ntop(ss.ss_family, ip, out, (socklen_t)len))
		ret = vmir_client_seterr(c, -ENOSPC, "address too long");
out:
	close(fd);
	return ret;
}
