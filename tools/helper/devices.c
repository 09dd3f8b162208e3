// SPDX-License-Identifier: GPL-2.0
/*
 * vmir-helper: the devices it serves, their registry entries, and the
 * answers for the module (CHUNK_READY, CHUNK_CAPTURED), which are batched
 * per device and sent once per turn of the loop, without waiting for an
 * ack: a failure comes back as an error message (main.c logs it).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helper.h"
#include "state.h"
#include "vmir_util.h"

struct helper_dev *helper_dev_new(struct helper *h)
{
	struct helper_dev *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->h = h;
	d->mirror_fd = -1;
	return d;
}

void helper_dev_free(struct helper_dev *d)
{
	if (!d)
		return;
	if (d->v)
		vmir_version_close(d->v);
	if (d->mirror_fd >= 0)
		close(d->mirror_fd);
	free(d->seen);
	free(d->waiting.chunks);
	free(d->ready.chunks);
	free(d->failed.chunks);
	free(d->captured.chunks);
	helper_learn_free(d);
	free(d);
}

struct helper_dev *helper_dev_find(struct helper *h, uint32_t id)
{
	struct helper_dev *d;

	for (d = h->devs; d; d = d->next)
		if (d->id == id && !d->dead)
			return d;
	return NULL;
}

void helper_dev_add(struct helper *h, struct helper_dev *d)
{
	d->next = h->devs;
	h->devs = d;
}

/*
 * Take d out of service. It stays on the list, dead, until its fetches in
 * flight and its profile operations completed (their callbacks hold it);
 * the loop frees it then.
 */
void helper_dev_drop(struct helper_dev *d)
{
	helper_peer_leave(d);
	d->dead = true;
}

/* free the dead devices nothing refers to any more */
static void helper_dev_reap(struct helper *h)
{
	struct helper_dev **pp = &h->devs, *d;

	while ((d = *pp)) {
		if (d->dead && !d->inflight && !d->holds) {
			*pp = d->next;
			helper_dev_free(d);
			continue;
		}
		pp = &d->next;
	}
}

/* d reads through v from now on (its geometry comes from v) */
void helper_dev_use_version(struct helper_dev *d, struct vmir_version *v)
{
	const struct vmir_version_info *vi = vmir_version_get_info(v);

	d->v = v;
	if (!d->attach_ns)
		d->attach_ns = vmir_mono_ns();
	snprintf(d->image, sizeof(d->image), "%s", vi->image);
	d->version = vi->version;
	d->size = vi->size;
	d->chunk_size = vi->chunk_size;
	d->nchunks = vmir_version_nchunks(v);
}

int helper_dev_reg_write(struct helper_dev *d)
{
	return helper_reg_write(d->h->reg_dir, d->id, d->dir, d->image,
				d->version);
}

int helper_batch_add(struct helper_batch *b, uint32_t chunk)
{
	uint32_t *p;

	if (b->n == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 64;

		p = realloc(b->chunks, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		b->chunks = p;
		b->cap = cap;
	}
	b->chunks[b->n++] = chunk;
	return 0;
}

struct nl_msg *helper_msg(struct helper *h, uint8_t cmd, uint32_t dev_id)
{
	return vmir_nl_dev_msg(&h->req, cmd, dev_id);
}

/* a request without reply data, waited for */
int helper_simple(struct helper *h, uint8_t cmd, uint32_t dev_id,
		  char *emsg, size_t emsglen)
{
	struct nl_msg *msg = helper_msg(h, cmd, dev_id);

	if (!msg)
		return -ENOMEM;
	return vmir_nl_call(&h->req, msg, NULL, NULL, emsg, emsglen);
}

/*
 * Send b's chunks as @cmd messages of at most VMIR_CHUNKS_MAX chunks
 * (CHUNK_READY with @status), without waiting. A chunk that cannot be
 * sent is lost to the module only until it times out its readers; say so.
 */
static void helper_batch_send(struct helper_dev *d, struct helper_batch *b,
			      uint8_t cmd, int status)
{
	struct helper *h = d->h;
	struct nl_msg *msg;
	size_t off, n;
	int ret;

	for (off = 0; off < b->n; off += n) {
		n = b->n - off;
		if (n > VMIR_CHUNKS_MAX)
			n = VMIR_CHUNKS_MAX;
		msg = helper_msg(h, cmd, d->id);
		ret = msg ? vmir_nl_put_chunks(msg, b->chunks + off, n) :
		      -ENOMEM;
		if (!ret && cmd == VMIR_CMD_CHUNK_READY &&
		    nla_put_s32(msg, VMIR_ATTR_STATUS, status))
			ret = -EMSGSIZE;
		if (!ret) {
			ret = vmir_nl_send(&h->nl, msg);
			msg = NULL;
		}
		if (ret) {
			nlmsg_free(msg);
			vmir_err("cannot send %zu answers for vmir%u to the module: %s",
				 n, d->id, strerror(-ret));
		}
	}
	b->n = 0;
}

/* the end of a turn of the loop: every batched answer goes out */
void helper_flush(struct helper *h)
{
	struct helper_dev *d;

	for (d = h->devs; d; d = d->next) {
		if (d->ready.n)
			helper_batch_send(d, &d->ready, VMIR_CMD_CHUNK_READY,
					  0);
		if (d->failed.n)
			helper_batch_send(d, &d->failed, VMIR_CMD_CHUNK_READY,
					  -EIO);
		if (d->captured.n)
			helper_batch_send(d, &d->captured,
					  VMIR_CMD_CHUNK_CAPTURED, 0);
	}
	helper_dev_reap(h);
}

/* GET_STATE of d into the maps given (NULL: not wanted); logs a failure */
int helper_get_state(struct helper_dev *d, uint8_t *present, uint8_t *dirty,
		     uint8_t *commit)
{
	char emsg[VMIR_NL_MSG_MAX];
	int ret;

	ret = vmir_nl_get_state(&d->h->req, d->id, d->nchunks, present, dirty,
				commit, NULL, emsg, sizeof(emsg));
	if (ret)
		vmir_err("reading the chunk state of vmir%u failed: %s%s%s",
			 d->id, strerror(-ret), emsg[0] ? ": " : "", emsg);
	return ret;
}
