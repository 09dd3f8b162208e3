// SPDX-License-Identifier: GPL-2.0
/*
 * vmir-helper: commits (vmirctl commit DEV [--to NAME]).
 *
 *   1. COMMIT_BEGIN freezes the device's dirty set as the commit set;
 *      GET_STATE reads it.
 *   2. Capture: each chunk of the set is copied from the mirror into
 *      MIRROR_DIR/commit.tmp and reported CHUNK_CAPTURED (batched), a few
 *      per turn of the loop so that misses keep being served; a write
 *      waiting on a frozen chunk (CAPTURE_NEEDED) has its chunk captured
 *      at once.
 *   3. Upload: vmir_version_commit_async() on the device's own version,
 *      reading the captured bytes, in the same loop. On success libvmir
 *      has advanced that version in place: misses read through the new
 *      version from then on, without resolving its tree again (a missing
 *      chunk is the same in both: every committed chunk is present).
 *   4. COMMIT_END (status, new version and image) and the reply.
 *
 * Before libvmir sends the PUBLISH (or, for commit --to, the CLONE) its
 * ticket (image, base version, size, root, token, the --to name) is
 * written to MIRROR_DIR/commit.pub. A helper that dies before the reply
 * leaves the device in its commit; the helper that adopts it
 * (helper_commit_adopt()) sends that request again, same token: versiond
 * answers with the version the first one made, or makes it now
 * (everything it names was stored before it was sent), and the commit
 * ends as published: the device continues from the new version. Without
 * a ticket (died before the publish) the commit is cancelled: its chunks
 * become dirty again.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "helper.h"
#include "state.h"
#include "vmir_util.h"

struct helper_commit {
	struct helper_dev *d;
	int fd;				/* vmirctl waiting for the reply */
	char to[VMIR_NAME_MAX];		/* "" = next version of the image */
	uint8_t *map;			/* the commit set */
	uint8_t *captured;		/* copied out */
	uint64_t *idx;			/* the commit set, ascending */
	size_t n;
	size_t next;			/* next chunk to capture in order */
	int capture_fd;			/* MIRROR_DIR/commit.tmp */
	void *buf;			/* one chunk */
	bool uploading;
};

/* forget commit k of its device in the helper */
static void helper_commit_free(struct helper_commit *k)
{
	struct helper_dev *d = k->d;
	char path[PATH_MAX + 16];

	if (k->capture_fd >= 0) {
		close(k->capture_fd);
		snprintf(path, sizeof(path), "%s/commit.tmp", d->dir);
		unlink(path);
	}
	helper_pub_remove(d->dir);
	free(k->buf);
	free(k->idx);
	free(k->captured);
	free(k->map);
	free(k);
	d->h->commits--;
}

/*
 * The commit of d ends: it is no longer the device's before anything is
 * sent to the module, so that events handled while waiting for an answer
 * (vmir_nl_call() dispatches them) do not touch it any more.
 */
static struct helper_commit *helper_commit_take(struct helper_dev *d)
{
	struct helper_commit *k = d->commit;

	d->commit = NULL;
	return k;
}

/* image: the device's new image name (commit --to), NULL if unchanged */
int helper_commit_end(struct helper_dev *d, int status, uint32_t version,
		      const char *image)
{
	struct helper *h = d->h;
	struct nl_msg *msg = helper_msg(h, VMIR_CMD_COMMIT_END, d->id);
	char emsg[VMIR_NL_MSG_MAX];
	int ret;

	if (!msg)
		return -ENOMEM;
	if (nla_put_s32(msg, VMIR_ATTR_STATUS, status) ||
	    (!status && nla_put_u32(msg, VMIR_ATTR_VERSION, version)) ||
	    (!status && image && nla_put_string(msg, VMIR_ATTR_IMAGE, image))) {
		nlmsg_free(msg);
		return -EMSGSIZE;
	}
	ret = vmir_nl_call(&h->req, msg, NULL, NULL, emsg, sizeof(emsg));
	if (ret)
		vmir_err("COMMIT_END(%d) of vmir%u failed: %s%s%s", status,
			 d->id, strerror(-ret), emsg[0] ? ": " : "", emsg);
	return ret;
}

/* commit k ends here: answer vmirctl, forget it */
static void helper_commit_finish(struct helper_commit *k, int ret,
				 const char *out)
{
	helper_ctl_reply(k->fd, ret, out);
	helper_commit_free(k);
}

/* the commit of d failed before its version was published */
static void helper_commit_fail(struct helper_dev *d, int ret,
			       const char *out)
{
	struct helper_commit *k = helper_commit_take(d);

	helper_commit_end(d, ret, 0, NULL);
	helper_commit_finish(k, ret, out);
}

/* copy chunk idx of the commit set out of the mirror; 0 or -errno */
static int helper_capture(struct helper_dev *d, uint64_t idx)
{
	struct helper_commit *k = d->commit;
	uint32_t len = vmir_version_chunk_len(d->v, idx);
	uint64_t off = idx * d->chunk_size;
	ssize_t n;
	int ret;

	if (helper_map_test(k->captured, idx))
		return 0;
	/* past the mirror's end reads as zeros */
	n = pread(d->mirror_fd, k->buf, len, (off_t)off);
	if (n >= 0 && (size_t)n < len) {
		memset((char *)k->buf + n, 0, len - (size_t)n);
		n = len;
	}
	ret = n < 0 ? -errno : vmir_pwrite_full(k->capture_fd, k->buf, len,
						 off);
	if (ret)
		return ret;	/* the caller fails the commit, saying why */
	helper_map_set(k->captured, idx);
	return helper_batch_add(&d->captured, (uint32_t)idx);
}

void helper_on_capture_needed(struct helper *h, uint32_t id,
			      const uint32_t *chunks, size_t n)
{
	struct helper_dev *d = helper_dev_find(h, id);
	char out[HELPER_MSG_MAX - 32];
	size_t i;
	int ret;

	if (!d || !d->commit) {
		vmir_warn("CAPTURE_NEEDED for %zu chunk(s) of vmir%u without a commit of this helper",
			  n, id);
		return;
	}
	for (i = 0; i < n; i++) {
		if (chunks[i] >= d->nchunks ||
		    !helper_map_test(d->commit->map, chunks[i]))
			continue;
		ret = helper_capture(d, chunks[i]);
		if (ret) {
			snprintf(out, sizeof(out),
				 "capturing chunk %u of vmir%u into %s/commit.tmp failed: %s",
				 chunks[i], id, d->dir, strerror(-ret));
			helper_commit_fail(d, ret, out);
			return;
		}
	}
}

/* the upload's chunk source: the captured bytes */
static int helper_commit_source(void *arg, uint64_t idx, void *buf)
{
	struct helper_dev *d = arg;
	uint32_t len = vmir_version_chunk_len(d->v, idx);
	int ret;

	memset(buf, 0, d->chunk_size);
	/* a failure fails the upload, whose message names the chunk */
	ret = vmir_pread_full(d->commit->capture_fd, buf, len,
			      idx * d->chunk_size);
	return ret;
}

/* vmir_version_commit_async() callback */
static void helper_commit_uploaded(void *arg,
				   const struct vmir_version_info *vi,
				   int err, const char *why)
{
	struct helper_dev *d = arg;
	struct helper_commit *k;
	char out[HELPER_MSG_MAX - 32];
	int ret;

	if (err) {
		snprintf(out, sizeof(out), "%s", why);
		helper_commit_fail(d, err, out);
		return;
	}
	k = helper_commit_take(d);
	ret = helper_commit_end(d, 0, vi->version, k->to[0] ? vi->image : NULL);
	if (ret) {
		/* the version exists; the device keeps its dirty set */
		snprintf(out, sizeof(out),
			 "%s@%u was published but COMMIT_END of vmir%u failed: %s",
			 vi->image, vi->version, d->id, strerror(-ret));
		helper_commit_finish(k, ret, out);
		return;
	}
	snprintf(d->image, sizeof(d->image), "%s", vi->image);
	d->version = vi->version;
	if (helper_dev_reg_write(d))
		vmir_warn("cannot update %s/vmir%u after the commit",
			  d->h->reg_dir, d->id);
	vmir_info("committed vmir%u (%zu chunks) as %s@%u", d->id, k->n,
		  vi->image, vi->version);
	snprintf(out, sizeof(out), "%s@%u", vi->image, vi->version);
	helper_commit_finish(k, 0, out);
}

/* libvmir is about to send the commit's PUBLISH or CLONE: keep its ticket */
static void helper_commit_ticket(void *arg,
				 const struct vmir_publish_ticket *t)
{
	struct helper_dev *d = arg;
	int ret;

	ret = helper_pub_save(d->dir, t);
	if (ret)
		vmir_warn("vmir%u: cannot write %s/commit.pub: %s; a helper restarted during this publish will cancel the commit",
			  d->id, d->dir, strerror(-ret));
}

static void helper_commit_upload(struct helper_dev *d)
{
	struct helper_commit *k = d->commit;
	char out[HELPER_MSG_MAX - 32];
	int ret;

	k->uploading = true;
	vmir_version_on_publish(d->v, helper_commit_ticket, d);
	vmir_info("vmir%u: %zu chunks captured, uploading", d->id, k->n);
	ret = vmir_version_commit_async(d->v, k->idx, k->n,
					helper_commit_source, d,
					k->to[0] ? k->to : NULL,
					helper_commit_uploaded, d);
	if (ret) {
		snprintf(out, sizeof(out), "%s", vmir_client_error(d->h->c));
		helper_commit_fail(d, ret, out);
	}
}

/*
 * One turn of every commit that captures: a slice of its chunks, in
 * order, then the upload once all are captured. Returns true when some
 * capture work is left for the next turn.
 */
bool helper_commits_step(struct helper *h)
{
	struct helper_dev *d;
	struct helper_commit *k;
	char out[HELPER_MSG_MAX - 32];
	bool more = false;
	unsigned int i;
	int ret;

	for (d = h->devs; d; d = d->next) {
		k = d->commit;
		if (!k || k->uploading)
			continue;
		for (i = 0; i < HELPER_CAPTURE_SLICE && k->next < k->n; i++) {
			ret = helper_capture(d, k->idx[k->next]);
			if (ret) {
				snprintf(out, sizeof(out),
					 "capturing chunk %" PRIu64 " of vmir%u into %s/commit.tmp failed: %s",
					 k->idx[k->next], d->id, d->dir,
					 strerror(-ret));
				helper_commit_fail(d, ret, out);
				break;
			}
			k->next++;
		}
		if (!d->commit)
			continue;
		if (k->next < k->n)
			more = true;
		else
			helper_commit_upload(d);
	}
	return more;
}

/* --- a commit left by a previous helper -------------------------------------- */

struct helper_adoption {
	struct helper_dev *d;
	vmir_open_cb opened;
};

/* the files of a commit that has ended */
static void helper_commit_forget(struct helper_dev *d)
{
	char path[PATH_MAX + 16];

	snprintf(path, sizeof(path), "%s/commit.tmp", d->dir);
	unlink(path);
	helper_pub_remove(d->dir);
}

/*
 * Open the device's version from a callback (d is on the helper's list):
 * a failure to start goes to opened like the open's own.
 */
static void helper_commit_adopt_open(struct helper_dev *d,
				     vmir_open_cb opened)
{
	int ret;

	ret = vmir_version_open_async(d->h->c, d->image, d->version, opened,
				      d);
	if (ret)
		opened(d, NULL, ret, vmir_client_error(d->h->c));
}

/* vmir_publish_async() callback: the previous helper's publish */
static void helper_commit_adopted(void *arg,
				  const struct vmir_version_info *vi,
				  int err, const char *why)
{
	struct helper_adoption *a = arg;
	struct helper_dev *d = a->d;
	vmir_open_cb opened = a->opened;

	free(a);
	if (err) {
		vmir_warn("/dev/vmir%u: the publish of the previous helper's commit failed (%s): cancelling the commit, its chunks stay dirty",
			  d->id, why);
		helper_commit_end(d, -ECANCELED, 0, NULL);
	} else if (!helper_commit_end(d, 0, vi->version,
				      strcmp(vi->image, d->image) ? vi->image :
								    NULL)) {
		vmir_info("/dev/vmir%u: the previous helper's commit is published as %s@%u; the device continues from it",
			  d->id, vi->image, vi->version);
		snprintf(d->image, sizeof(d->image), "%s", vi->image);
		d->version = vi->version;
		if (helper_dev_reg_write(d))
			vmir_warn("cannot update %s/vmir%u after the commit",
				  d->h->reg_dir, d->id);
	}
	helper_commit_forget(d);
	helper_commit_adopt_open(d, opened);
}

/*
 * d, being adopted, is in a commit of the previous helper: finish its
 * publish if it kept the ticket, else cancel the commit; then open the
 * device's version (the new one if the publish won) with opened(d).
 * Returns 0, or -errno (vmir_client_error()) when the version's open
 * could not start, as vmir_version_open_async().
 */
int helper_commit_adopt(struct helper_dev *d, vmir_open_cb opened)
{
	struct vmir_publish_ticket t;
	struct helper_adoption *a;
	char msg[PATH_MAX + 64];
	int ret;

	ret = helper_pub_load(d->dir, &t, msg, sizeof(msg));
	if (ret < 0)
		vmir_warn("/dev/vmir%u: %s", d->id, msg);
	if (ret == 1 && (strcmp(t.image, d->image) ||
			 t.base_version != d->version)) {
		vmir_warn("/dev/vmir%u: %s/commit.pub is the publish of %s on version %u, not of the device's %s@%u: ignored",
			  d->id, d->dir, t.image, t.base_version, d->image,
			  d->version);
		ret = 0;
	}
	if (ret == 1) {
		a = malloc(sizeof(*a));
		if (a) {
			a->d = d;
			a->opened = opened;
			if (!vmir_publish_async(d->h->c, &t,
						helper_commit_adopted, a)) {
				vmir_info("/dev/vmir%u: the previous helper died in a commit after sending its publish; sending it again (%s on version %u, same token) to learn whether it won",
					  d->id, t.image, t.base_version);
				return 0;
			}
			vmir_warn("/dev/vmir%u: %s", d->id,
				  vmir_client_error(d->h->c));
			free(a);
		}
	} else {
		vmir_info("/dev/vmir%u: the previous helper died in a commit before its publish: cancelling it, its chunks stay dirty",
			  d->id);
	}
	helper_commit_end(d, -ECANCELED, 0, NULL);
	helper_commit_forget(d);
	return vmir_version_open_async(d->h->c, d->image, d->version, opened,
				       d);
}

static int helper_parse_begin(void *arg, uint8_t cmd, struct nlattr **tb)
{
	*(uint32_t *)arg = vmir_nl_u32(tb, VMIR_ATTR_NR_COMMIT);
	return 0;
}

/*
 * COMMIT: freeze and read the commit set; the capture and the upload go
 * on from the loop. Returns 1 when the commit runs and owns fd, else
 * -errno with out set.
 */
int helper_commit(struct helper *h, uint32_t id, const char *to, int fd,
		  char *out, size_t outlen)
{
	struct helper_dev *d = helper_dev_find(h, id);
	char path[PATH_MAX + 16], emsg[VMIR_NL_MSG_MAX];
	struct helper_commit *k;
	struct nl_msg *msg;
	uint32_t nr = 0;
	uint64_t i;
	size_t mb;
	int ret;

	if (!d || !d->v) {
		snprintf(out, outlen, "/dev/vmir%u is not served by this helper%s",
			 id, d ? " yet (its version opens)" : "");
		return d ? -EAGAIN : -ENODEV;
	}
	if (d->commit) {
		snprintf(out, outlen, "a commit of /dev/vmir%u is already in progress",
			 id);
		return -EBUSY;
	}
	if (strlen(to) >= VMIR_NAME_MAX) {
		snprintf(out, outlen, "image name '%.64s...' is too long", to);
		return -ENAMETOOLONG;
	}
	/* what the device touched up to its first commit is its boot */
	helper_learn_now(d, "commit");
	mb = helper_map_bytes(d->nchunks);
	k = calloc(1, sizeof(*k));
	if (!k) {
		snprintf(out, outlen, "out of memory");
		return -ENOMEM;
	}
	d->commit = k;
	h->commits++;
	k->d = d;
	k->fd = fd;
	k->capture_fd = -1;
	snprintf(k->to, sizeof(k->to), "%s", to);
	k->map = calloc(1, mb);
	k->captured = calloc(1, mb);
	k->buf = malloc(d->chunk_size);
	if (!k->map || !k->captured || !k->buf) {
		ret = -ENOMEM;
		snprintf(out, outlen, "out of memory");
		goto out_free;
	}
	snprintf(path, sizeof(path), "%s/commit.tmp", d->dir);
	k->capture_fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
			     0600);
	if (k->capture_fd < 0) {
		ret = -errno;
		snprintf(out, outlen, "cannot create %s: %s", path,
			 strerror(errno));
		goto out_free;
	}
	msg = helper_msg(h, VMIR_CMD_COMMIT_BEGIN, id);
	if (!msg) {
		ret = -ENOMEM;
		snprintf(out, outlen, "out of memory");
		goto out_free;
	}
	ret = vmir_nl_call(&h->req, msg, helper_parse_begin, &nr, emsg,
			   sizeof(emsg));
	if (ret) {
		snprintf(out, outlen, "COMMIT_BEGIN of vmir%u failed: %s%s%s",
			 id, strerror(-ret), emsg[0] ? ": " : "", emsg);
		goto out_free;
	}
	ret = helper_get_state(d, NULL, NULL, k->map);
	if (ret) {
		snprintf(out, outlen, "reading the commit set of vmir%u failed: %s",
			 id, strerror(-ret));
		goto out_end;
	}
	k->idx = malloc(sizeof(*k->idx) * (nr ? nr : 1));
	if (!k->idx) {
		ret = -ENOMEM;
		snprintf(out, outlen, "out of memory");
		goto out_end;
	}
	for (i = 0; i < d->nchunks; i++) {
		if (!helper_map_test(k->map, i))
			continue;
		if (k->n == nr) {
			ret = -EPROTO;
			snprintf(out, outlen,
				 "the commit set of vmir%u has more than the %u chunks COMMIT_BEGIN announced",
				 id, nr);
			goto out_end;
		}
		k->idx[k->n++] = i;
	}
	vmir_info("vmir%u: committing %zu chunks", id, k->n);
	return 1;

out_end:
	helper_commit_take(d);
	helper_commit_end(d, ret, 0, NULL);
	helper_commit_free(k);
	return ret;
out_free:
	helper_commit_take(d);
	helper_commit_free(k);
	return ret;
}
