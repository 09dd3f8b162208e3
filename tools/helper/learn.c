// SPDX-License-Identifier: GPL-2.0
/*
 * vmir-helper: learned prefetch.
 *
 * Learning. The module records the order in which a device's chunks are
 * first touched, hits included (GET_ACCESS). While a device attached by
 * this helper is young, the helper reads the new part of that order every
 * HELPER_LEARN_LOOK_MS. When no new chunk was touched for --learn-idle-ms
 * (the boot is over), or at a commit or a detach, whichever comes first,
 * it publishes the order as the attached version's access profile:
 * libvmir merges it with the profile of earlier deployments and names the
 * result on the version server (vmir_profile_learn_async()). Once per
 * attach; a failure is logged and costs only the profile.
 *
 * Prefetching. At attach, when the version has a profile (its own or its
 * parent's) and prefetch is on, the helper reads it and claims chunks in
 * its order (PREFETCH, as read-ahead does), at most HELPER_PROFILE_WINDOW
 * claimed or fetching at once, and only while no demand fetch of the
 * device is in flight: a miss is never queued behind prefetch in the
 * helper, and on the wire it finds at most the window ahead of it. Zero
 * chunks and chunks already missed or claimed are passed over; the module
 * leaves present and fetching chunks out of its reply. When the device's
 * misses keep falling outside the profile (HELPER_PROFILE_OFF_PATH more
 * outside than inside), it has left the profile's path: prefetch stops.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helper.h"
#include "state.h"
#include "vmir_util.h"

#define NS_PER_MS	1000000ull

struct helper_access {
	struct helper_dev *d;
	uint32_t nr;			/* NR_ACCESSED */
	size_t got;
	int err;
};

static int helper_access_reply(void *arg, uint8_t cmd, struct nlattr **tb)
{
	struct helper_access *a = arg;
	const uint32_t *chunks;
	size_t n, i;

	if (!tb[VMIR_ATTR_NR_ACCESSED] || vmir_nl_get_chunks(tb, &chunks, &n)) {
		a->err = -EPROTO;
		return 0;
	}
	a->nr = nla_get_u32(tb[VMIR_ATTR_NR_ACCESSED]);
	for (i = 0; i < n && !a->err; i++)
		a->err = helper_batch_add(&a->d->order, chunks[i]);
	a->got = n;
	return 0;
}

/* append the part of d's access order not read yet; 0 or -errno, logged */
static int helper_learn_read(struct helper_dev *d)
{
	struct helper_access a = { .d = d };
	char emsg[VMIR_NL_MSG_MAX];
	struct nl_msg *msg;
	int ret;

	do {
		msg = helper_msg(d->h, VMIR_CMD_GET_ACCESS, d->id);
		if (!msg || nla_put_u32(msg, VMIR_ATTR_ACCESS_START,
					(uint32_t)d->order.n)) {
			nlmsg_free(msg);
			return -ENOMEM;
		}
		a.got = 0;
		ret = vmir_nl_call(&d->h->req, msg, helper_access_reply, &a,
				   emsg, sizeof(emsg));
		if (!ret)
			ret = a.err;
		if (ret) {
			vmir_warn("reading the access order of vmir%u failed: %s%s%s (nothing is learned from it)",
				  d->id, strerror(-ret), emsg[0] ? ": " : "",
				  emsg);
			return ret;
		}
	} while (a.got && d->order.n < a.nr);
	return 0;
}

static void helper_learn_published(void *arg, const struct vmir_profile *p,
				   int err, const char *why)
{
	struct helper_dev *d = arg;

	d->holds--;
	if (err) {
		vmir_warn("the access profile of %s@%u (from vmir%u) was not published: %s",
			  d->learn_image, d->learn_version, d->id, why);
		return;
	}
	vmir_info("published the access profile of %s@%u: %zu chunks, %u deployment(s) merged",
		  d->learn_image, d->learn_version, p->n, p->deployments);
}

/* publish what d's order says now, once */
void helper_learn_now(struct helper_dev *d, const char *why)
{
	struct helper *h = d->h;
	int ret;

	if (d->learned || !h->learn || !d->learn_image[0])
		return;
	d->learned = true;
	if (helper_learn_read(d) || !d->order.n)
		return;
	ret = vmir_profile_learn_async(h->c, d->learn_image, d->learn_version,
				       d->order.chunks, d->order.n,
				       helper_learn_published, d);
	if (ret) {
		vmir_warn("the access profile of %s@%u (from vmir%u) is not published: %s",
			  d->learn_image, d->learn_version, d->id,
			  vmir_client_error(h->c));
		return;
	}
	d->holds++;
	vmir_info("learning the access profile of %s@%u from vmir%u (%s): %zu chunks first touched",
		  d->learn_image, d->learn_version, d->id, why, d->order.n);
}

int helper_learn_step(struct helper *h)
{
	uint64_t now = vmir_mono_ns(), next = UINT64_MAX;
	uint64_t idle = (uint64_t)h->learn_idle_ms * NS_PER_MS;
	struct helper_dev *d;
	size_t before;

	if (!h->learn || !h->learn_idle_ms)
		return -1;
	for (d = h->devs; d; d = d->next) {
		if (d->dead || d->learned || !d->learn_image[0])
			continue;
		if (now >= d->look_ns) {
			before = d->order.n;
			if (helper_learn_read(d)) {
				d->learned = true;
				continue;
			}
			if (d->order.n != before) {
				d->order_ns = now;
			} else if (d->order.n && now - d->order_ns >= idle) {
				helper_learn_now(d, "idle");
				continue;
			}
			d->look_ns = now + HELPER_LEARN_LOOK_MS * NS_PER_MS;
		}
		if (d->look_ns < next)
			next = d->look_ns;
	}
	if (next == UINT64_MAX)
		return -1;
	return next <= now ? 0 : (int)((next - now + NS_PER_MS - 1) / NS_PER_MS);
}

static void helper_profile_drop(struct helper_dev *d)
{
	vmir_profile_free(&d->prof);
	free(d->prof_in);
	d->prof_in = NULL;
}

static void helper_profile_loaded(void *arg, const struct vmir_profile *p,
				  int err, const char *why)
{
	struct helper_dev *d = arg;
	size_t i;

	d->holds--;
	if (d->dead)
		return;
	if (err) {
		vmir_warn("vmir%u is not prefetched: %s", d->id, why);
		return;
	}
	d->prof = *p;
	d->prof.chunks = malloc((p->n ? p->n : 1) * sizeof(*p->chunks));
	d->prof_in = calloc(1, helper_map_bytes(d->nchunks));
	if (!d->prof.chunks || !d->prof_in) {
		vmir_warn("vmir%u is not prefetched: out of memory", d->id);
		helper_profile_drop(d);
		return;
	}
	memcpy(d->prof.chunks, p->chunks, p->n * sizeof(*p->chunks));
	for (i = 0; i < p->n; i++)
		if (p->chunks[i] < d->nchunks)
			helper_map_set(d->prof_in, p->chunks[i]);
	vmir_info("vmir%u: prefetching %zu chunks in the order of profile %.16s (%u deployment(s))",
		  d->id, p->n, p->id, p->deployments);
	helper_profile_pump(d);
}

void helper_learn_attached(struct helper_dev *d, bool prefetch)
{
	const struct vmir_version_info *vi = vmir_version_get_info(d->v);
	struct helper *h = d->h;

	snprintf(d->learn_image, sizeof(d->learn_image), "%s", d->image);
	d->learn_version = d->version;
	d->order_ns = d->look_ns = vmir_mono_ns();
	if (!prefetch || !vi->profile[0])
		return;
	if (vmir_profile_read_async(h->c, vi->profile, helper_profile_loaded,
				    d)) {
		vmir_warn("vmir%u is not prefetched: %s", d->id,
			  vmir_client_error(h->c));
		return;
	}
	d->holds++;
}

void helper_profile_pump(struct helper_dev *d)
{
	uint32_t claim[HELPER_PROFILE_WINDOW];
	size_t nc = 0;
	uint32_t c;

	if (!d->prof.n || d->pf_stopped || d->dead || !d->v || !d->seen)
		return;
	/* demand first: nothing while a miss of the device is fetched */
	if (d->inflight > d->pf_fetching)
		return;
	while (d->prof_next < d->prof.n &&
	       d->pf_claimed + d->pf_fetching + nc < HELPER_PROFILE_WINDOW) {
		c = d->prof.chunks[d->prof_next++];
		if (c >= d->nchunks || helper_map_test(d->seen, c) ||
		    vmir_version_chunk_is_zero(d->v, c))
			continue;
		helper_map_set(d->seen, c);
		claim[nc++] = c;
	}
	if (nc && helper_claim(d, claim, nc, true, NULL)) {
		d->pf_stopped = true;
		return;
	}
	if (d->prof_next == d->prof.n && !d->pf_claimed && !d->pf_fetching) {
		d->pf_stopped = true;
		vmir_info("vmir%u: profile prefetch done: %" PRIu64 " chunks fetched ahead",
			  d->id, d->prefetched);
	}
}

void helper_profile_on_miss(struct helper_dev *d, uint32_t idx)
{
	if (!d->prof_in || d->pf_stopped || idx >= d->nchunks)
		return;
	if (helper_map_test(d->prof_in, idx)) {
		if (d->pf_off)
			d->pf_off--;
		return;
	}
	if (++d->pf_off < HELPER_PROFILE_OFF_PATH)
		return;
	d->pf_stopped = true;
	vmir_info("vmir%u: prefetch stops: its misses left the profile's path (%u more outside it than in it); %" PRIu64 " chunks were fetched ahead",
		  d->id, d->pf_off, d->prefetched);
}

void helper_learn_free(struct helper_dev *d)
{
	free(d->order.chunks);
	memset(&d->order, 0, sizeof(d->order));
	helper_profile_drop(d);
}
