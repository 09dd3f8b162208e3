// SPDX-License-Identifier: GPL-2.0
/*
 * vmir-helper: misses. A MISS names chunks of a device; each is read
 * through libvmir (replicas in rendezvous order, every byte verified),
 * written into the mirror (a hole for a zero chunk: the range may hold
 * stale bytes), and answered with CHUNK_READY, batched per device.
 *
 * Read-ahead: a miss right after a chunk this helper fetched means a
 * sequential reader. The helper then claims (PREFETCH) the next chunks of
 * --read-ahead-kib that it has not seen, in one message; the module's
 * reply names the chunks it handed over (not present, not being fetched
 * already), and those are fetched like misses. A chunk present at attach
 * says nothing about the reader.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helper.h"
#include "state.h"
#include "vmir_util.h"

struct helper_fetch {
	struct helper_fetch *next, **pprev;	/* on d->fetching */
	struct helper_dev *d;
	uint64_t idx;
	uint64_t start_ns;
	void *buf;
	bool profile;			/* claimed in the profile's order */
	bool via_peer;			/* asks a peer first */
	struct helper_peer_wait *waiters;	/* peers' GETs of this chunk */
};

struct helper_fetch *helper_fetch_find(struct helper_dev *d, uint64_t idx)
{
	struct helper_fetch *f;

	for (f = d->fetching; f; f = f->next)
		if (f->idx == idx)
			return f;
	return NULL;
}

bool helper_fetch_via_peer(const struct helper_fetch *f)
{
	return f->via_peer;
}

void helper_fetch_add_waiter(struct helper_fetch *f, struct helper_peer_wait *w)
{
	w->next = f->waiters;
	f->waiters = w;
}

/* write a fetched chunk into d's mirror; 0 or -errno */
static int helper_fetch_store(struct helper_dev *d, uint64_t idx,
			      const void *buf)
{
	uint32_t len = vmir_version_chunk_len(d->v, idx);
	off_t off = (off_t)(idx * d->chunk_size);
	int ret;

	/* a zero chunk: the range may hold stale bytes, make it a hole */
	if (vmir_version_chunk_is_zero(d->v, idx) &&
	    !fallocate(d->mirror_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		       off, (off_t)len))
		return 0;
	ret = vmir_pwrite_full(d->mirror_fd, buf, len, (uint64_t)off);
	if (ret)
		vmir_err("writing chunk %" PRIu64 " into %s/mirror failed: %s",
			 idx, d->dir, strerror(-ret));
	return ret;
}

/* a fetch finished (libvmir callback, in the loop's thread) */
static void helper_fetch_done(void *arg, const struct vmir_fetch_result *res)
{
	struct helper_fetch *f = arg;
	struct helper_dev *d = f->d;
	struct helper *h = d->h;
	uint64_t idx = res->idx;
	const char *why = res->why;
	int ret = res->err;

	d->inflight--;
	if (f->profile)
		d->pf_fetching--;
	*f->pprev = f->next;
	if (f->next)
		f->next->pprev = f->pprev;
	if (d->dead) {
		if (f->waiters)
			helper_peer_fetched(d, f->waiters, idx, NULL, NULL, 0,
					    -ENOENT);
		goto out;
	}
	if (ret)
		vmir_err("fetching chunk %" PRIu64 " of %s@%u for vmir%u failed: %s",
			 idx, d->image, d->version, d->id, why);
	else
		ret = helper_fetch_store(d, idx, f->buf);
	vmir_dbg("vmir%u chunk %" PRIu64 " fetched in %" PRIu64 " us: %d",
		 d->id, idx, (vmir_mono_ns() - f->start_ns) / 1000, ret);
	/* from the chunk servers, packed: other nodes get it as it came */
	if (!ret && res->packed)
		helper_peer_keep(d, idx, res->packed, res->packed_len);
	if (f->waiters)
		helper_peer_fetched(d, f->waiters, idx, f->buf, res->packed,
				    res->packed_len, ret);
	if (ret) {
		h->fetch_errors++;
		ret = helper_batch_add(&d->failed, (uint32_t)idx);
	} else {
		h->fetches++;
		d->prefetched += f->profile;
		ret = helper_batch_add(&d->ready, (uint32_t)idx);
	}
	if (ret)
		vmir_err("out of memory: the answer for chunk %" PRIu64 " of vmir%u is lost; its readers time out",
			 idx, d->id);
	/* a window slot freed, or the last demand fetch done */
	helper_profile_pump(d);
out:
	free(f->buf);
	free(f);
}

/*
 * Fetch chunk idx of d (missed or claimed; flags HELPER_FETCH_*), with w
 * (NULL: none) waiting for it. 0 or -errno.
 */
int helper_fetch_start(struct helper_dev *d, uint32_t idx, unsigned int flags,
		       struct helper_peer_wait *w)
{
	bool profile = flags & HELPER_FETCH_PROFILE;
	struct helper_fetch *f;
	int ret = -ENOMEM;

	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->d = d;
	f->idx = idx;
	f->profile = profile;
	f->start_ns = vmir_mono_ns();
	f->buf = malloc(d->chunk_size);
	if (!f->buf)
		goto out_free;
	/* a peer's request never goes to a peer: no loop of nodes */
	if (!(flags & HELPER_FETCH_FOR_PEER))
		f->via_peer = vmir_version_chunk_from_peer(d->v, idx);
	ret = vmir_version_fetch_async(d->v, idx, f->buf,
				       (flags & HELPER_FETCH_FOR_PEER ?
					VMIR_FETCH_NO_PEERS : 0) |
				       (d->h->peer_srv && !f->via_peer ?
					VMIR_FETCH_KEEP_PACKED : 0),
				       helper_fetch_done, f);
	if (ret) {
		vmir_err("cannot start fetching chunk %u of vmir%u: %s", idx,
			 d->id, vmir_client_error(d->h->c));
		goto out_free;
	}
	d->inflight++;
	d->pf_fetching += profile;
	if (d->seen)
		helper_map_set(d->seen, idx);
	f->next = d->fetching;
	if (f->next)
		f->next->pprev = &f->next;
	f->pprev = &d->fetching;
	d->fetching = f;
	if (w)
		helper_fetch_add_waiter(f, w);
	return 0;

out_free:
	free(f->buf);
	free(f);
	return ret;
}

/* start the fetch of a missed or claimed chunk, or answer it failed */
void helper_fetch_or_fail(struct helper_dev *d, uint32_t idx, bool profile)
{
	if (helper_fetch_start(d, idx, profile ? HELPER_FETCH_PROFILE : 0,
			       NULL) &&
	    helper_batch_add(&d->failed, idx))
		vmir_err("out of memory: chunk %u of vmir%u is neither fetched nor answered; its readers time out",
			 idx, d->id);
}

/*
 * A miss of chunk idx right after a chunk this helper fetched: claim the
 * missing chunks of the next read_ahead_kib in one PREFETCH. Its reply
 * comes to helper_on_prefetched().
 */
static void helper_read_ahead(struct helper_dev *d, uint32_t idx)
{
	struct helper *h = d->h;
	uint32_t claim[VMIR_CHUNKS_MAX];
	uint64_t n, k, end;
	size_t nc = 0;

	if (!h->read_ahead_kib || !d->seen || !idx)
		return;
	n = (uint64_t)h->read_ahead_kib * 1024 / d->chunk_size;
	if (!n)
		n = 1;
	if (n > VMIR_CHUNKS_MAX)
		n = VMIR_CHUNKS_MAX;
	/* the chunk before, zero chunks (never fetched) passed over */
	for (k = idx - 1; k > 0 && idx - k <= n &&
	     vmir_version_chunk_is_zero(d->v, k); k--)
		;
	if (!helper_map_test(d->seen, k))
		return;
	end = idx + 1 + n < d->nchunks ? idx + 1 + n : d->nchunks;
	for (k = idx + 1; k < end; k++) {
		if (helper_map_test(d->seen, k) ||
		    vmir_version_chunk_is_zero(d->v, k))
			continue;
		if (vmir_client_inflight(h->c) + h->claims + nc >=
		    HELPER_READ_AHEAD_INFLIGHT)
			break;
		/* present or on its way already if the module refuses it */
		helper_map_set(d->seen, k);
		claim[nc++] = (uint32_t)k;
	}
	if (nc)
		helper_claim(d, claim, nc, false, NULL);
}

/*
 * Claim chunks of d in one PREFETCH (read-ahead, with profile learned
 * prefetch, with peer the one chunk a peer asked for); its reply comes to
 * helper_on_prefetched(). 0 or -errno (logged; the chunks stay
 * unclaimed).
 */
int helper_claim(struct helper_dev *d, const uint32_t *chunks, size_t n,
		 bool profile, struct helper_peer_wait *peer)
{
	struct helper *h = d->h;
	struct helper_claim *c;
	struct nl_msg *msg;
	int ret;

	if (h->claim_n == ARRAY_SIZE(h->claim_q))
		return -EBUSY;
	msg = helper_msg(h, VMIR_CMD_PREFETCH, d->id);
	ret = msg ? vmir_nl_put_chunks(msg, chunks, n) : -ENOMEM;
	if (!ret) {
		ret = vmir_nl_send(&h->req, msg);
		msg = NULL;
	}
	if (ret) {
		nlmsg_free(msg);
		vmir_warn("%s of vmir%u: cannot send PREFETCH: %s",
			  peer ? "a peer's read" :
			  profile ? "prefetch" : "read-ahead", d->id,
			  strerror(-ret));
		return ret;
	}
	h->claims += n;
	c = &h->claim_q[(h->claim_head + h->claim_n++) % ARRAY_SIZE(h->claim_q)];
	c->n = (unsigned int)n;
	c->dev = d->id;
	c->profile = profile;
	c->peer = peer;
	if (profile)
		d->pf_claimed += n;
	return 0;
}

/*
 * The oldest PREFETCH was answered: its claims are settled. Returns it
 * (n 0: asked before a resync, whose MISS sent again covers its chunks).
 */
static struct helper_claim helper_claims_settled(struct helper *h)
{
	struct helper_claim c = { 0 };
	struct helper_dev *d;

	if (!h->claim_n)
		return c;
	c = h->claim_q[h->claim_head];
	h->claims -= c.n;
	h->claim_head = (h->claim_head + 1) % ARRAY_SIZE(h->claim_q);
	h->claim_n--;
	d = c.profile ? helper_dev_find(h, c.dev) : NULL;
	if (d)
		d->pf_claimed -= c.n;
	return c;
}

void helper_prefetch_failed(struct helper *h)
{
	struct helper_claim c = helper_claims_settled(h);
	struct helper_dev *d = c.profile ? helper_dev_find(h, c.dev) : NULL;

	/* a stopping device: its prefetch ends there */
	if (d)
		d->pf_stopped = true;
	if (c.peer)
		helper_peer_fail(c.peer, -EAGAIN);
}

void helper_on_prefetched(struct helper *h, uint32_t id,
			  const uint32_t *chunks, size_t n)
{
	struct helper_claim c = helper_claims_settled(h);
	struct helper_dev *d = helper_dev_find(h, id);
	size_t i;

	if (c.peer) {
		/* one chunk asked; fetched for the peer if handed over */
		if (d && d->v && c.dev == id)
			helper_peer_claimed(d, c.peer, n == 1);
		else
			helper_peer_fail(c.peer, -ENOENT);
		return;
	}
	for (i = 0; i < n; i++) {
		/* claimed chunks are ours: they must be answered */
		if (!d || !d->v || chunks[i] >= d->nchunks) {
			vmir_err("PREFETCH reply for chunk %u of vmir%u, which this helper cannot fetch",
				 chunks[i], id);
			continue;
		}
		helper_fetch_or_fail(d, chunks[i], c.profile && c.dev == id);
	}
	if (d)
		helper_profile_pump(d);
}

/* answer chunks of a device this helper cannot serve: their reads fail */
static void helper_refuse(struct helper *h, uint32_t id,
			  const uint32_t *chunks, size_t n)
{
	struct nl_msg *msg = helper_msg(h, VMIR_CMD_CHUNK_READY, id);

	vmir_err("MISS for %zu chunk(s) of vmir%u, a device this helper does not serve (no entry in %s): failing them",
		 n, id, h->reg_dir);
	if (!msg || vmir_nl_put_chunks(msg, chunks, n) ||
	    nla_put_s32(msg, VMIR_ATTR_STATUS, -ENODEV) ||
	    vmir_nl_send(&h->nl, msg))
		vmir_err("cannot answer the MISS of vmir%u", id);
}

void helper_on_miss(struct helper *h, uint32_t id, const uint32_t *chunks,
		    size_t n)
{
	struct helper_dev *d = helper_dev_find(h, id);
	size_t i;

	if (!d) {
		helper_refuse(h, id, chunks, n);
		return;
	}
	for (i = 0; i < n; i++) {
		if (chunks[i] >= d->nchunks && d->v) {
			vmir_err("MISS for chunk %u of vmir%u beyond its %" PRIu64 " chunks",
				 chunks[i], id, d->nchunks);
			continue;
		}
		/* its version still opens (adoption): fetch once it is */
		if (!d->v) {
			if (helper_batch_add(&d->waiting, chunks[i]))
				vmir_err("out of memory: the miss of chunk %u of vmir%u waits for its timeout",
					 chunks[i], id);
			continue;
		}
		helper_profile_on_miss(d, chunks[i]);
		helper_fetch_or_fail(d, chunks[i], false);
	}
	if (d->v && n)
		helper_read_ahead(d, chunks[n - 1]);
}

/* the version of d is open now: serve the misses that waited for it */
void helper_fetch_waiting(struct helper_dev *d)
{
	size_t i;

	for (i = 0; i < d->waiting.n; i++) {
		if (d->waiting.chunks[i] < d->nchunks)
			helper_fetch_or_fail(d, d->waiting.chunks[i], false);
		else
			vmir_err("MISS for chunk %u of vmir%u beyond its %" PRIu64 " chunks",
				 d->waiting.chunks[i], d->id, d->nchunks);
	}
	d->waiting.n = 0;
}
