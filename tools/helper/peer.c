// SPDX-License-Identifier: GPL-2.0
/*
 * vmir-helper: peers. This node serves the chunks of the versions it has
 * attached to other nodes, and tells the version server which versions
 * those are.
 *
 * Serving. The peer server is the chunk servers' framework (server/srv/)
 * on its own ring, polled by the helper's loop: the same handshake, key
 * and frames, GET only. A GET names an object id; the helper looks it up
 * in the chunk maps of its devices (vmir_version_find_chunk()) and then:
 *
 *   a fetch of that chunk in flight here, from the chunk servers
 *       -> the GET waits for it and gets its bytes;
 *   a fetch in flight that asks a peer -> EAGAIN at once (two nodes
 *       that each think the other is the home must not wait on each
 *       other; the asker goes on to the chunk servers);
 *   else PREFETCH claims the chunk from the module, as read-ahead does:
 *       handed over (not in the mirror, nobody fetching it) -> this node
 *       fetches it from the chunk servers into its mirror, as the
 *       chunk's home, and the GET waits for that fetch;
 *       refused (present, or a miss being fetched meanwhile) -> the
 *       mirror's bytes are read and hashed: served only if they are the
 *       object, so a chunk the VM wrote (dirty) is never served, ENOENT.
 *
 * A chunk this node fetched from the chunk servers came packed (zstd)
 * when that saved an eighth; the last HELPER_ZCACHE_BYTES of those are
 * kept as they came and served as they are, ahead of all of the above:
 * peers then move what the chunk servers would have, not the chunk
 * unpacked (a boot's chunks pack to about 40 % here). Kept bytes are
 * content-addressed and were verified when fetched: a chunk written since
 * changes the mirror, not the object, and the object is still right.
 *
 * Leases. Every device with an open version holds a lease of it on the
 * version server (PEER_LEASE, this node's address), renewed every
 * HELPER_PEER_RENEW_MS with the list of the version's nodes (PEERS),
 * which goes to libvmir (vmir_version_set_peers()): reads of chunks
 * whose home is another node ask it first. A young device reads the list
 * every HELPER_PEER_EARLY_MS, while the nodes of a deployment appear. A
 * commit moves the device to a new version: the old lease is left and a
 * new one taken. At detach the lease is left, unless another device here
 * holds the same one.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "helper.h"
#include "srv.h"
#include "vmir_util.h"

/* --- serving ---------------------------------------------------------------- */

void helper_peer_fail(struct helper_peer_wait *w, int err)
{
	srv_reply(w->req, (uint32_t)-err, NULL, 0);
	free(w);
}

/*
 * answer w with len bytes at data (taken over): the chunk, or with packed
 * its zstd frame as the chunk servers sent it
 */
static void helper_peer_answer(struct helper *h, struct helper_peer_wait *w,
			       void *data, uint32_t len, bool packed)
{
	/* the reply's meta is the id the GET carried */
	srv_reply_data(w->req, w->req->meta, VMIR_ID_LEN, data, len,
		       packed ? VMIR_F_ZSTD : 0);
	h->peer_served++;
	h->peer_served_bytes += len;
	free(w);
}

/* the same with a copy of buf */
static void helper_peer_send(struct helper *h, struct helper_peer_wait *w,
			     const void *buf, uint32_t len, bool packed)
{
	void *copy = malloc(len);

	if (!copy) {
		helper_peer_fail(w, -ENOMEM);
		return;
	}
	memcpy(copy, buf, len);
	helper_peer_answer(h, w, copy, len, packed);
}

/* --- packed chunks kept for peers ----------------------------------------------- */

static struct helper_zent *helper_zc_find(struct helper *h, const void *id)
{
	unsigned int i, k;

	for (i = 0; i < h->zc_n; i++) {
		k = (h->zc_head + HELPER_ZCACHE_SLOTS - 1 - i) %
		    HELPER_ZCACHE_SLOTS;
		if (h->zcache[k].z && !memcmp(h->zcache[k].id, id, VMIR_ID_LEN))
			return &h->zcache[k];
	}
	return NULL;
}

static void helper_zc_drop_oldest(struct helper *h)
{
	unsigned int k = (h->zc_head + HELPER_ZCACHE_SLOTS - h->zc_n) %
			 HELPER_ZCACHE_SLOTS;
	struct helper_zent *e = &h->zcache[k];

	h->zc_bytes -= e->zlen;
	free(e->z);
	e->z = NULL;
	h->zc_n--;
}

void helper_peer_keep(struct helper_dev *d, uint64_t idx, const void *z,
		      uint32_t zlen)
{
	struct helper *h = d->h;
	uint8_t id[VMIR_CHUNK_ID_LEN];
	struct helper_zent *e;

	if (zlen > HELPER_ZCACHE_BYTES / 4 ||
	    vmir_version_chunk_id(d->v, idx, id) || helper_zc_find(h, id))
		return;
	while (h->zc_n && (h->zc_n == HELPER_ZCACHE_SLOTS ||
			   h->zc_bytes + zlen > HELPER_ZCACHE_BYTES))
		helper_zc_drop_oldest(h);
	e = &h->zcache[h->zc_head];
	e->z = malloc(zlen);
	if (!e->z)
		return;
	memcpy(e->z, z, zlen);
	memcpy(e->id, id, sizeof(id));
	e->zlen = zlen;
	h->zc_head = (h->zc_head + 1) % HELPER_ZCACHE_SLOTS;
	h->zc_n++;
	h->zc_bytes += zlen;
}

static void helper_zc_free(struct helper *h)
{
	while (h->zc_n)
		helper_zc_drop_oldest(h);
}

/*
 * The mirror's copy of chunk w->idx of d, if it is the object (present
 * and clean); else ENOENT.
 */
static void helper_peer_from_mirror(struct helper_dev *d,
				    struct helper_peer_wait *w)
{
	struct helper *h = d->h;
	uint32_t len = vmir_version_chunk_len(d->v, w->idx);
	void *buf = malloc(len);
	int ret;

	if (!buf) {
		helper_peer_fail(w, -ENOMEM);
		return;
	}
	ret = vmir_pread_full(d->mirror_fd, buf, len,
			      w->idx * (uint64_t)d->chunk_size);
	if (!ret && !vmir_version_chunk_matches(d->v, w->idx, buf))
		ret = -ENOENT;
	if (ret) {
		vmir_dbg("peer GET of chunk %" PRIu64 " of vmir%u refused: %s",
			 w->idx, d->id, ret == -ENOENT ?
			 "the mirror's copy is not the object (written?)" :
			 strerror(-ret));
		free(buf);
		h->peer_refused++;
		helper_peer_fail(w, -ENOENT);
		return;
	}
	helper_peer_answer(h, w, buf, len, false);
}

/* wait for a fetch of w's chunk in flight here; false: none */
static bool helper_peer_join_fetch(struct helper_dev *d,
				   struct helper_peer_wait *w)
{
	struct helper_fetch *f = helper_fetch_find(d, w->idx);

	if (!f)
		return false;
	if (helper_fetch_via_peer(f)) {
		d->h->peer_refused++;
		helper_peer_fail(w, -EAGAIN);
	} else {
		helper_fetch_add_waiter(f, w);
	}
	return true;
}

void helper_peer_claimed(struct helper_dev *d, struct helper_peer_wait *w,
			 bool claimed)
{
	if (!claimed) {
		if (!helper_peer_join_fetch(d, w))
			helper_peer_from_mirror(d, w);
		return;
	}
	/* ours now: fetched from the chunk servers, answered to the module */
	if (helper_fetch_start(d, (uint32_t)w->idx, HELPER_FETCH_FOR_PEER,
			       w)) {
		if (helper_batch_add(&d->failed, (uint32_t)w->idx))
			vmir_err("out of memory: chunk %" PRIu64 " of vmir%u is neither fetched nor answered; its readers time out",
				 w->idx, d->id);
		helper_peer_fail(w, -EIO);
	}
}

void helper_peer_fetched(struct helper_dev *d, struct helper_peer_wait *w,
			 uint64_t idx, const void *buf, const void *packed,
			 uint32_t zlen, int err)
{
	uint32_t len = buf ? vmir_version_chunk_len(d->v, idx) : 0;
	struct helper_peer_wait *next;

	for (; w; w = next) {
		next = w->next;
		if (err)
			helper_peer_fail(w, err == -ENOENT ? -ENOENT : -EIO);
		else if (packed)
			helper_peer_send(d->h, w, packed, zlen, true);
		else
			helper_peer_send(d->h, w, buf, len, false);
	}
}

/* the device of h holding object id, and the chunk; NULL: none */
static struct helper_dev *helper_peer_lookup(struct helper *h,
					     const void *id, uint64_t *idx)
{
	struct helper_dev *d;

	for (d = h->devs; d; d = d->next) {
		if (d->dead || d->stopped || !d->v || d->mirror_fd < 0)
			continue;
		if (!vmir_version_find_chunk(d->v, id, idx))
			return d;
	}
	return NULL;
}

static int helper_peer_handle(void *ctx, struct srv_req *req,
			      const char **why)
{
	struct helper *h = ctx;
	struct helper_peer_wait *w;
	struct helper_zent *z;
	struct helper_dev *d;
	uint32_t chunk;
	uint64_t idx;

	if (req->hdr.opcode != VMIR_OP_GET)
		return -EOPNOTSUPP;
	if (req->hdr.meta_len != VMIR_ID_LEN) {
		*why = "GET meta is not a 32-byte id";
		return -EBADMSG;
	}
	d = helper_peer_lookup(h, req->meta, &idx);
	if (!d) {
		h->peer_refused++;
		srv_reply(req, ENOENT, NULL, 0);
		return 0;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		srv_reply(req, ENOMEM, NULL, 0);
		return 0;
	}
	w->req = req;
	w->dev = d->id;
	w->idx = idx;
	/* fetched here from the chunk servers lately: as it came, packed */
	z = helper_zc_find(h, req->meta);
	if (z) {
		helper_peer_send(h, w, z->z, z->zlen, true);
		return 0;
	}
	srv_req_hold(req, d->chunk_size);
	if (helper_peer_join_fetch(d, w))
		return 0;
	chunk = (uint32_t)idx;
	if (helper_claim(d, &chunk, 1, false, w)) {
		h->peer_refused++;
		helper_peer_fail(w, -EAGAIN);
	}
	return 0;
}

static const struct srv_ops helper_peer_ops = {
	.handle = helper_peer_handle,
};

int helper_peer_start(struct helper *h)
{
	char listen[VMIR_PEER_ADDR_LEN], name[VMIR_PEER_ADDR_LEN], err[512];
	struct srv_conf sc = {
		.name = "peer server",
		.ops = &helper_peer_ops,
		.ctx = h,
		.max_conns = HELPER_PEER_CONNS,
		.max_inflight = HELPER_PEER_INFLIGHT,
		.max_held = HELPER_PEER_HELD,
	};
	struct vmir_conf *conf;
	const char *port;
	int ret;

	if (!h->peers)
		return 0;
	conf = calloc(1, sizeof(*conf));
	if (!conf)
		return -ENOMEM;
	ret = vmir_conf_load(h->conf, conf, err, sizeof(err));
	if (ret) {
		vmir_err("%s", err);
		goto out;
	}
	snprintf(listen, sizeof(listen), "0.0.0.0:%u", HELPER_PEER_PORT);
	sc.listen = h->peer_listen ? h->peer_listen : listen;
	sc.key = conf->key;
	ret = srv_new(&sc, &h->peer_srv);
	if (ret < 0) {
		h->peer_srv = NULL;
		if (h->peer_listen) {
			vmir_err("cannot serve peers on %s: %s", sc.listen,
				 strerror(-ret));
			goto out;
		}
		/* the default port is taken: this node only asks peers */
		vmir_warn("not serving chunks to other nodes: cannot listen on %s: %s (--peer-listen picks another address)",
			  sc.listen, strerror(-ret));
		ret = 0;
		goto out;
	}
	ret = srv_start(h->peer_srv);
	if (ret < 0)
		goto out_srv;
	ret = vmir_sock_name(srv_listen_fd(h->peer_srv), name, sizeof(name));
	port = ret ? NULL : strrchr(name, ':');
	if (!port) {
		vmir_err("the peer server's port is unknown");
		ret = -EINVAL;
		goto out_srv;
	}
	h->peer_port = atoi(port + 1);
	if (h->peer_advertise)
		snprintf(h->peer_addr, sizeof(h->peer_addr), "%s",
			 h->peer_advertise);
	ret = 0;
	goto out;

out_srv:
	srv_free(h->peer_srv);
	h->peer_srv = NULL;
out:
	sodium_memzero(conf->key, sizeof(conf->key));
	free(conf);
	return ret;
}

void helper_peer_stop(struct helper *h)
{
	helper_zc_free(h);
	if (!h->peer_srv)
		return;
	srv_free(h->peer_srv);
	h->peer_srv = NULL;
}

int helper_peer_pollfd(struct helper *h)
{
	return h->peer_srv ? srv_ring_fd(h->peer_srv) : -1;
}

void helper_peer_poll(struct helper *h)
{
	if (h->peer_srv && srv_poll_nowait(h->peer_srv))
		vmir_err("the peer server's ring failed");
}

/* --- leases ------------------------------------------------------------------- */

/* the address other nodes reach this one at: the route to the version server */
static void helper_peer_addr(struct helper *h)
{
	char ip[VMIR_PEER_ADDR_LEN - 8];

	if (h->peer_addr[0] || !h->peer_srv)
		return;
	if (vmir_client_local_ip(h->c, ip, sizeof(ip))) {
		/* tried again at every step: said once */
		if (!h->peer_addr_warned)
			vmir_warn("not offering chunks to other nodes yet: %s",
				  vmir_client_error(h->c));
		h->peer_addr_warned = true;
		return;
	}
	snprintf(h->peer_addr, sizeof(h->peer_addr),
		 strchr(ip, ':') ? "[%s]:%d" : "%s:%d", ip, h->peer_port);
	vmir_info("serving chunks to other nodes as %s", h->peer_addr);
}

struct helper_peer_call {
	struct helper_dev *d;		/* held; NULL: a leave */
	char image[VMIR_NAME_MAX];
	uint32_t version;
};

static void helper_peer_call_end(struct helper_peer_call *pc, int err,
				 const char *why)
{
	struct helper_dev *d = pc->d;

	if (d) {
		if (err && !d->peer_warned && !d->dead) {
			vmir_warn("vmir%u: %s (reads go to the chunk servers only)",
				  d->id, why);
			d->peer_warned = true;
		}
		d->peer_ops--;
		d->holds--;
	} else if (err) {
		vmir_dbg("%s", why);
	}
	free(pc);
}

static void helper_peer_leased(void *arg, int err, const char *why)
{
	helper_peer_call_end(arg, err, why);
}

static void helper_peer_listed(void *arg, const struct vmir_peer_info *p,
			       size_t n, int err, const char *why)
{
	struct helper_peer_call *pc = arg;
	struct helper_dev *d = pc->d;
	const char **addrs;
	size_t i;

	if (!err && !d->dead && d->v && d->version == pc->version &&
	    !strcmp(d->image, pc->image)) {
		addrs = calloc(n ? n : 1, sizeof(*addrs));
		if (addrs) {
			for (i = 0; i < n; i++)
				addrs[i] = p[i].addr;
			if (vmir_version_set_peers(d->v, d->h->peer_addr,
						   addrs, n))
				vmir_err("%s", vmir_client_error(d->h->c));
			free(addrs);
		}
		if (n != d->peer_nodes) {
			vmir_info("vmir%u: %s@%u is attached on %zu node(s)",
				  d->id, d->image, d->version, n);
			d->peer_nodes = n;
		}
	}
	helper_peer_call_end(pc, err, why);
}

static struct helper_peer_call *helper_peer_call(struct helper_dev *d,
						 const char *image,
						 uint32_t version)
{
	struct helper_peer_call *pc = calloc(1, sizeof(*pc));

	if (!pc)
		return NULL;
	pc->d = d;
	snprintf(pc->image, sizeof(pc->image), "%s", image);
	pc->version = version;
	if (d) {
		d->peer_ops++;
		d->holds++;
	}
	return pc;
}

void helper_peer_leave(struct helper_dev *d)
{
	struct helper *h = d->h;
	struct helper_peer_call *pc;
	struct helper_dev *o;

	if (!d->peer_image[0])
		return;
	for (o = h->devs; o; o = o->next)
		if (o != d && !o->dead && o->peer_version == d->peer_version &&
		    !strcmp(o->peer_image, d->peer_image))
			break;
	pc = o ? NULL : helper_peer_call(NULL, d->peer_image,
					 d->peer_version);
	if (pc && vmir_peer_lease_async(h->c, pc->image, pc->version,
					h->peer_addr, 0, helper_peer_leased,
					pc)) {
		vmir_dbg("%s", vmir_client_error(h->c));
		free(pc);
	}
	d->peer_image[0] = '\0';
}

/* renew d's lease and read its version's nodes */
static void helper_peer_renew(struct helper_dev *d)
{
	struct helper *h = d->h;
	struct helper_peer_call *pc;

	if (h->peer_addr[0]) {
		pc = helper_peer_call(d, d->image, d->version);
		if (pc && vmir_peer_lease_async(h->c, d->image, d->version,
						h->peer_addr,
						HELPER_PEER_LEASE_MS,
						helper_peer_leased, pc))
			helper_peer_call_end(pc, -EIO,
					     vmir_client_error(h->c));
		snprintf(d->peer_image, sizeof(d->peer_image), "%s", d->image);
		d->peer_version = d->version;
	}
	pc = helper_peer_call(d, d->image, d->version);
	if (pc && vmir_peers_async(h->c, d->image, d->version,
				   helper_peer_listed, pc))
		helper_peer_call_end(pc, -EIO, vmir_client_error(h->c));
}

int helper_peer_step(struct helper *h)
{
	uint64_t now, wait, next = UINT64_MAX;
	struct helper_dev *d;

	if (!h->peers)
		return -1;
	now = vmir_mono_ns();
	if (h->devs)
		helper_peer_addr(h);
	for (d = h->devs; d; d = d->next) {
		/* a call in flight: its end wakes the loop */
		if (d->dead || !d->v || d->peer_ops)
			continue;
		/* a commit moved it to another version */
		if (d->peer_image[0] && (d->peer_version != d->version ||
					 strcmp(d->peer_image, d->image)))
			helper_peer_leave(d);
		if (now >= d->peer_next_ns) {
			helper_peer_renew(d);
			d->peer_next_ns = now + 1000000ull *
				(now - d->attach_ns < HELPER_PEER_YOUNG_MS * 1000000ull ?
				 HELPER_PEER_EARLY_MS : HELPER_PEER_RENEW_MS);
		}
		if (!d->peer_ops && d->peer_next_ns < next)
			next = d->peer_next_ns;
	}
	if (next == UINT64_MAX)
		return -1;
	wait = next > now ? (next - now + 999999) / 1000000 : 0;
	return wait > 60000 ? 60000 : (int)wait;
}
