// SPDX-License-Identifier: GPL-2.0
/*
 * vmir-helper: serves the vmir kernel module of one compute node (one
 * network namespace).
 *
 *   vmir-helper --conf FILE [--mirror-root DIR] [--reg-dir DIR]
 *               [--timeout-ms MS] [--read-ahead-kib N] [-v]
 *
 * It registers with the module over generic netlink, fetches the chunks
 * the module misses from the cluster (libvmir) into each device's mirror
 * file, publishes commits, and answers vmirctl on the control socket
 * (protocol in helper.h). The main thread runs one poll() loop over the
 * netlink event socket, the control socket, the libvmir engine
 * (vmir_client_pollfd) and the commit completion eventfd. Attach and
 * detach run to completion inside the loop (fetch completions arriving
 * meanwhile are handled by libvmir callbacks from within the blocking
 * libvmir calls). A commit captures its chunks in the loop, then uploads
 * them from a thread of its own with its own libvmir client, so misses of
 * every device keep being served; the loop finishes the commit (COMMIT_END,
 * the reply to vmirctl) when the thread reports back.
 *
 * Files of a device (state and registry: helper_state.c):
 *   MIRROR_DIR/mirror      the mirror (chunk i at offset i * chunk_size)
 *   MIRROR_DIR/state       saved at detach: bitmaps to resume from
 *   MIRROR_DIR/commit.tmp  the captured commit set during a commit
 *   REG_DIR/vmirN          which mirror dir /dev/vmirN uses, so that a
 *                          restarted helper serves existing devices
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/eventfd.h>
#include <sys/un.h>
#include <unistd.h>

#include <sodium.h>

#include "helper.h"
#include "helper_state.h"
#include "libvmir.h"
#include "vmir_util.h"

/* --- devices ------------------------------------------------------------------ */

struct helper_dev {
	struct helper_dev *next;
	uint32_t id;			/* N of /dev/vmirN */
	char image[VMIR_NAME_MAX];
	uint32_t version;
	uint64_t size;
	uint32_t chunk_size;
	uint64_t nchunks;
	char dir[PATH_MAX];		/* mirror directory */
	int mirror_fd;
	struct vmir_version *v;		/* new fetches read through it */
	unsigned int inflight;		/* fetches started, not completed */
	/* replaced by a commit while fetches still read through it */
	struct vmir_version *v_old;
	unsigned int old_inflight;	/* of inflight, those through v_old */
	bool dead;			/* removed: free once inflight is 0 */
	/* chunks this helper missed or claimed (read-ahead) */
	uint8_t *seen;
	/* during a commit run by this helper */
	struct helper_job *job;		/* its upload, once started */
	uint8_t *commit_map;		/* commit set */
	uint8_t *captured;		/* reported captured */
	int capture_fd;			/* MIRROR_DIR/commit.tmp */
};

struct helper_fetch {
	struct helper_dev *d;
	struct vmir_version *v;		/* d->v when it started */
	uint64_t idx;
	uint64_t start_ns;
	void *buf;
};

/*
 * The upload of one commit, run by its own thread with its own libvmir
 * client. The thread only reads the inputs and the captured chunks and
 * writes the outcome; the main thread owns everything else.
 */
struct helper_job {
	struct helper_job *next;	/* on helper.done, under job_lock */
	struct helper_dev *d;
	int ctl_fd;			/* vmirctl waiting for the reply */
	pthread_t thread;
	/* inputs */
	const char *conf;
	char image[VMIR_NAME_MAX];
	uint32_t version;
	char to[VMIR_NAME_MAX];	/* "" = next version of image */
	uint64_t *idx;
	size_t n;
	int capture_fd;
	struct vmir_version *v;		/* the thread's, for chunk lengths */
	/* outcome */
	int ret;
	struct vmir_version_info vi;
	char err[1024];
};

struct helper {
	const char *conf;
	struct vmir_client *c;
	struct nl_sock *cmd;		/* requests with acks */
	struct nl_sock *ev;		/* registered: receives events */
	int family;
	int ctl_fd;			/* control socket */
	struct helper_dev *devs;
	const char *mirror_root;
	const char *reg_dir;
	uint32_t timeout_ms;		/* 0: module default */
	uint32_t read_ahead_kib;	/* 0: no read-ahead */
	uint64_t fetches, fetch_errors;
	/* commit uploads */
	int job_efd;			/* counts finished uploads */
	pthread_mutex_t job_lock;
	struct helper_job *done;	/* finished, not reaped; job_lock */
	unsigned int jobs;		/* started, not reaped */
};

#define HELPER_READ_AHEAD_KIB	2048
/* free heap kept for chunk buffers: this runs next to the VMs */
#define HELPER_HEAP_FREE_MAX	(32u << 20)

static volatile sig_atomic_t helper_stop;

static void helper_on_signal(int sig)
{
	helper_stop = sig;
}

static struct helper_dev *helper_dev_find(struct helper *h, uint32_t id)
{
	struct helper_dev *d;

	for (d = h->devs; d; d = d->next)
		if (d->id == id && !d->dead)
			return d;
	return NULL;
}

static void helper_dev_free(struct helper_dev *d)
{
	if (d->v)
		vmir_version_close(d->v);
	if (d->v_old)
		vmir_version_close(d->v_old);
	if (d->mirror_fd >= 0)
		close(d->mirror_fd);
	free(d->commit_map);
	free(d->captured);
	free(d->seen);
	free(d);
}

/* what d's mirror holds: its state file is checked against it */
static void helper_dev_mirror(const struct helper_dev *d,
			      struct helper_mirror *m)
{
	snprintf(m->image, sizeof(m->image), "%s", d->image);
	m->version = d->version;
	m->chunk_size = d->chunk_size;
	m->size = d->size;
	m->nchunks = d->nchunks;
}

static int helper_dev_reg_write(struct helper *h, struct helper_dev *d)
{
	return helper_reg_write(h->reg_dir, d->id, d->dir, d->image,
				d->version);
}

/* take d off the list; freed now or when its last fetch completes */
static void helper_dev_drop(struct helper *h, struct helper_dev *d)
{
	struct helper_dev **pp;

	d->dead = true;
	if (d->inflight)
		return;
	for (pp = &h->devs; *pp; pp = &(*pp)->next) {
		if (*pp == d) {
			*pp = d->next;
			break;
		}
	}
	helper_dev_free(d);
}

static struct helper_dev *helper_dev_new(void)
{
	struct helper_dev *d = calloc(1, sizeof(*d));

	if (d) {
		d->mirror_fd = -1;
		d->capture_fd = -1;
	}
	return d;
}

/* --- netlink commands ---------------------------------------------------------- */

static struct nl_msg *helper_msg(struct helper *h, int cmd, uint32_t dev_id)
{
	struct nl_msg *msg = helper_nl_msg(h->family, cmd, false);

	if (msg && dev_id != UINT32_MAX &&
	    nla_put_u32(msg, VMIR_ATTR_DEV_ID, dev_id)) {
		nlmsg_free(msg);
		return NULL;
	}
	return msg;
}

/* CHUNK_READY / CHUNK_CAPTURED / START / REMOVE: no reply attributes */
static int helper_simple(struct helper *h, int cmd, uint32_t dev_id,
			 int64_t chunk, int status, const char *what)
{
	struct helper_nl_req r = { 0 };
	struct nl_msg *msg = helper_msg(h, cmd, dev_id);
	int ret;

	if (!msg)
		return -ENOMEM;
	if ((chunk >= 0 && nla_put_u32(msg, VMIR_ATTR_CHUNK, (uint32_t)chunk)) ||
	    ((cmd == VMIR_CMD_CHUNK_READY || cmd == VMIR_CMD_COMMIT_END) &&
	     nla_put_s32(msg, VMIR_ATTR_STATUS, status))) {
		nlmsg_free(msg);
		return -ENOMEM;
	}
	ret = helper_nl_call(h->cmd, msg, &r);
	if (ret && what)
		vmir_err("%s of device vmir%u failed: %s%s%s", what, dev_id,
			 strerror(-ret), r.msg[0] ? ": " : "", r.msg);
	return ret;
}

struct helper_state_dump {
	uint64_t nchunks;
	uint8_t *present, *dirty, *commit;
};

static void helper_copy_seg(uint8_t *map, uint64_t nchunks, uint32_t start,
			    struct nlattr *a)
{
	size_t off = start / 8, len, total = helper_map_bytes(nchunks);

	if (!map || !a || off >= total)
		return;
	len = (size_t)nla_len(a);
	if (len > total - off)
		len = total - off;
	memcpy(map + off, nla_data(a), len);
}

static int helper_parse_state(struct nl_msg *msg, void *arg)
{
	struct helper_state_dump *s = arg;
	struct nlattr *tb[VMIR_ATTR_MAX + 1];
	uint32_t start;

	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, VMIR_ATTR_MAX, NULL) < 0 ||
	    !tb[VMIR_ATTR_MAP_START])
		return -EPROTO;
	start = nla_get_u32(tb[VMIR_ATTR_MAP_START]);
	helper_copy_seg(s->present, s->nchunks, start, tb[VMIR_ATTR_MAP_PRESENT]);
	helper_copy_seg(s->dirty, s->nchunks, start, tb[VMIR_ATTR_MAP_DIRTY]);
	helper_copy_seg(s->commit, s->nchunks, start, tb[VMIR_ATTR_MAP_COMMIT]);
	return 0;
}

/* GET_STATE dump into the given maps (NULL: not wanted) */
static int helper_get_state(struct helper *h, struct helper_dev *d,
			    uint8_t *present, uint8_t *dirty, uint8_t *commit)
{
	struct helper_state_dump s = { d->nchunks, present, dirty, commit };
	struct helper_nl_req r = { .parse = helper_parse_state, .arg = &s };
	struct nl_msg *msg = helper_nl_msg(h->family, VMIR_CMD_GET_STATE, true);
	int ret;

	if (!msg)
		return -ENOMEM;
	if (nla_put_u32(msg, VMIR_ATTR_DEV_ID, d->id)) {
		nlmsg_free(msg);
		return -ENOMEM;
	}
	ret = helper_nl_call(h->cmd, msg, &r);
	if (ret)
		vmir_err("reading the chunk state of vmir%u failed: %s%s%s",
			 d->id, strerror(-ret), r.msg[0] ? ": " : "", r.msg);
	return ret;
}

/* --- fetching --------------------------------------------------------------------------- */

static struct helper *helper_self;	/* for the libvmir callbacks */

/* a fetch finished (libvmir callback, in the loop's thread) */
static void helper_fetch_cb(void *arg, uint64_t idx, int err,
			    const char *why)
{
	struct helper_fetch *f = arg;
	struct helper_dev *d = f->d;
	struct helper *h = helper_self;
	uint32_t len = vmir_version_chunk_len(f->v, idx);
	int ret = err;

	d->inflight--;
	if (d->dead) {
		if (!d->inflight)
			helper_dev_drop(h, d);
		goto out;
	}
	if (!ret && vmir_version_chunk_is_zero(f->v, idx)) {
		/* the range may hold stale bytes: make it a hole */
		if (fallocate(d->mirror_fd,
			      FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      (off_t)(idx * d->chunk_size), (off_t)len))
			ret = vmir_pwrite_full(d->mirror_fd, f->buf, len,
					       idx * d->chunk_size);
	} else if (!ret) {
		ret = vmir_pwrite_full(d->mirror_fd, f->buf, len,
				       idx * d->chunk_size);
		if (ret)
			vmir_err("writing chunk %" PRIu64 " into %s/mirror failed: %s",
				 idx, d->dir, strerror(-ret));
	} else {
		vmir_err("fetching chunk %" PRIu64 " of %s@%u for vmir%u failed: %s",
			 idx, d->image, d->version, d->id, why);
	}
	vmir_dbg("vmir%u chunk %" PRIu64 " fetched in %" PRIu64 " us: %d",
		 d->id, idx, (vmir_mono_ns() - f->start_ns) / 1000, ret);
	if (ret)
		h->fetch_errors++;
	else
		h->fetches++;
	helper_simple(h, VMIR_CMD_CHUNK_READY, d->id, (int64_t)idx,
		      ret ? -EIO : 0, "CHUNK_READY");
	if (f->v == d->v_old && !--d->old_inflight) {
		vmir_version_close(d->v_old);
		d->v_old = NULL;
	}
out:
	free(f->buf);
	free(f);
}

/* fetch chunk idx of d (missed or claimed); 0 or -errno */
static int helper_fetch_start(struct helper *h, struct helper_dev *d,
			      uint32_t idx)
{
	struct helper_fetch *f;
	int ret = -ENOMEM;

	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->d = d;
	f->v = d->v;
	f->idx = idx;
	f->start_ns = vmir_mono_ns();
	f->buf = malloc(d->chunk_size);
	if (!f->buf)
		goto out_free;
	d->inflight++;
	ret = vmir_version_read_async(d->v, idx, f->buf, helper_fetch_cb, f);
	if (ret) {
		d->inflight--;
		vmir_err("cannot start fetching chunk %u of vmir%u: %s", idx,
			 d->id, vmir_client_error(h->c));
		goto out_free;
	}
	if (d->seen)
		helper_map_set(d->seen, idx);
	return 0;

out_free:
	free(f->buf);
	free(f);
	return ret;
}

/* most fetches the read-ahead starts while others are in flight */
#define HELPER_READ_AHEAD_INFLIGHT	256

/*
 * A miss of chunk idx right after a chunk this helper fetched: the reader
 * is sequential. Claim (PREFETCH) and fetch the missing chunks of the
 * next read_ahead_kib, so its next reads find them fetched or in flight.
 * (A chunk present at attach says nothing about the reader.)
 */
static void helper_read_ahead(struct helper *h, struct helper_dev *d,
			      uint32_t idx)
{
	uint64_t n, k, end;
	int ret;

	if (!h->read_ahead_kib || !d->seen || !idx)
		return;
	n = (uint64_t)h->read_ahead_kib * 1024 / d->chunk_size;
	if (!n)
		n = 1;
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
		if (vmir_client_inflight(h->c) >= HELPER_READ_AHEAD_INFLIGHT)
			return;
		helper_map_set(d->seen, k);
		ret = helper_simple(h, VMIR_CMD_PREFETCH, d->id, (int64_t)k, 0,
				    NULL);
		if (ret == -EEXIST || ret == -EALREADY)
			continue;	/* present, or a MISS is on its way */
		if (ret)
			return;		/* stopping: no more claims */
		ret = helper_fetch_start(h, d, (uint32_t)k);
		if (ret)
			helper_simple(h, VMIR_CMD_CHUNK_READY, d->id,
				      (int64_t)k, -EIO, "CHUNK_READY");
	}
}

static void helper_on_miss(struct helper *h, uint32_t id, uint32_t idx)
{
	struct helper_dev *d = helper_dev_find(h, id);

	if (!d) {
		vmir_err("MISS for chunk %u of vmir%u, a device this helper does not serve (no entry in %s): failing it",
			 idx, id, h->reg_dir);
		helper_simple(h, VMIR_CMD_CHUNK_READY, id, idx, -ENODEV,
			      NULL);
		return;
	}
	if (idx >= d->nchunks) {
		vmir_err("MISS for chunk %u of vmir%u beyond its %" PRIu64 " chunks",
			 idx, id, d->nchunks);
		return;
	}
	if (helper_fetch_start(h, d, idx)) {
		helper_simple(h, VMIR_CMD_CHUNK_READY, id, idx, -EIO,
			      "CHUNK_READY");
		return;
	}
	helper_read_ahead(h, d, idx);
}

/* --- commit capture ----------------------------------------------------------------- */

/* copy chunk idx of the commit set out of the mirror, report it */
static int helper_capture(struct helper *h, struct helper_dev *d, uint64_t idx)
{
	uint32_t len = vmir_version_chunk_len(d->v, idx);
	void *buf;
	int ret;

	if (!d->commit_map || !helper_map_test(d->commit_map, idx) ||
	    helper_map_test(d->captured, idx))
		return 0;
	buf = malloc(d->chunk_size);
	if (!buf)
		return -ENOMEM;
	ret = vmir_pread_full(d->mirror_fd, buf, len, idx * d->chunk_size);
	if (ret == -EIO) {	/* past EOF of the mirror reads as zeros */
		ssize_t n = pread(d->mirror_fd, buf, len, idx * d->chunk_size);

		if (n >= 0) {
			memset((char *)buf + n, 0, len - (size_t)n);
			ret = 0;
		}
	}
	if (!ret)
		ret = vmir_pwrite_full(d->capture_fd, buf, len,
				       idx * d->chunk_size);
	free(buf);
	if (ret) {
		vmir_err("capturing chunk %" PRIu64 " of vmir%u into %s/commit.tmp failed: %s",
			 idx, d->id, d->dir, strerror(-ret));
		return ret;
	}
	helper_map_set(d->captured, idx);
	return helper_simple(h, VMIR_CMD_CHUNK_CAPTURED, d->id, (int64_t)idx,
			     0, "CHUNK_CAPTURED");
}

static void helper_on_capture_needed(struct helper *h, uint32_t id,
				     uint32_t idx)
{
	struct helper_dev *d = helper_dev_find(h, id);

	if (!d || !d->commit_map) {
		vmir_warn("CAPTURE_NEEDED for chunk %u of vmir%u without a commit of this helper",
			  idx, id);
		return;
	}
	if (idx < d->nchunks)
		helper_capture(h, d, idx);
}

/* --- events ------------------------------------------------------------------------------ */

static int helper_on_event(struct nl_msg *msg, void *arg)
{
	struct helper *h = arg;
	struct genlmsghdr *g = nlmsg_data(nlmsg_hdr(msg));
	struct nlattr *tb[VMIR_ATTR_MAX + 1];
	uint32_t id, idx;

	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, VMIR_ATTR_MAX, NULL) < 0)
		return NL_SKIP;
	if (g->cmd != VMIR_CMD_MISS && g->cmd != VMIR_CMD_CAPTURE_NEEDED)
		return NL_SKIP;
	if (!tb[VMIR_ATTR_DEV_ID] || !tb[VMIR_ATTR_CHUNK]) {
		vmir_err("event %u without DEV_ID or CHUNK ignored", g->cmd);
		return NL_SKIP;
	}
	id = nla_get_u32(tb[VMIR_ATTR_DEV_ID]);
	idx = nla_get_u32(tb[VMIR_ATTR_CHUNK]);
	if (g->cmd == VMIR_CMD_MISS)
		helper_on_miss(h, id, idx);
	else
		helper_on_capture_needed(h, id, idx);
	return NL_OK;
}

/* read every queued event without blocking */
static void helper_drain_events(struct helper *h)
{
	int ret;

	for (;;) {
		ret = nl_recvmsgs_default(h->ev);
		if (ret >= 0)
			continue;
		if (ret == -NLE_AGAIN)
			return;
		/* ENOBUFS: the module re-sends what was lost */
		if (ret == -NLE_NOMEM) {
			vmir_warn("netlink event socket overran; the module re-sends the events");
			continue;
		}
		vmir_err("receiving netlink events failed: %s", nl_geterror(ret));
		return;
	}
}

/* --- attach -------------------------------------------------------------------------- */

struct helper_add_reply {
	uint32_t id;
	char disk[32];
};

static int helper_parse_add(struct nl_msg *msg, void *arg)
{
	struct helper_add_reply *a = arg;
	struct nlattr *tb[VMIR_ATTR_MAX + 1];

	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, VMIR_ATTR_MAX, NULL) < 0 ||
	    !tb[VMIR_ATTR_DEV_ID])
		return -EPROTO;
	a->id = nla_get_u32(tb[VMIR_ATTR_DEV_ID]);
	if (tb[VMIR_ATTR_DISK_NAME])
		snprintf(a->disk, sizeof(a->disk), "%s",
			 nla_get_string(tb[VMIR_ATTR_DISK_NAME]));
	else
		snprintf(a->disk, sizeof(a->disk), "vmir%u", a->id);
	return 0;
}

static int helper_put_seg(struct nl_msg *msg, const uint8_t *present,
			  const uint8_t *dirty, size_t mb, size_t off)
{
	size_t len = mb - off;

	if (len > VMIR_MAP_SEG_MAX)
		len = VMIR_MAP_SEG_MAX;
	if (nla_put_u32(msg, VMIR_ATTR_MAP_START, (uint32_t)(off * 8)) ||
	    nla_put(msg, VMIR_ATTR_MAP_PRESENT, (int)len, present + off) ||
	    nla_put(msg, VMIR_ATTR_MAP_DIRTY, (int)len, dirty + off))
		return -EMSGSIZE;
	return 0;
}

/*
 * ADD_DEVICE (deferred start, first map segment inline), SET_STATE for
 * the other segments, START_DEVICE.
 */
static int helper_add_device(struct helper *h, struct helper_dev *d,
			     const uint8_t *present, const uint8_t *dirty,
			     char *err, size_t errlen)
{
	struct helper_add_reply a = { 0 };
	struct helper_nl_req r = { .parse = helper_parse_add, .arg = &a };
	size_t mb = helper_map_bytes(d->nchunks), off;
	struct nl_msg *msg;
	char ver[16];
	int ret;

	snprintf(ver, sizeof(ver), "%u", d->version);
	msg = helper_msg(h, VMIR_CMD_ADD_DEVICE, UINT32_MAX);
	if (!msg)
		return -ENOMEM;
	if (nla_put_string(msg, VMIR_ATTR_IMAGE, d->image) ||
	    nla_put_string(msg, VMIR_ATTR_VERSION, ver) ||
	    nla_put_u64(msg, VMIR_ATTR_SIZE, d->size) ||
	    nla_put_u32(msg, VMIR_ATTR_CHUNK_SIZE, d->chunk_size) ||
	    nla_put_u32(msg, VMIR_ATTR_MIRROR_FD, (uint32_t)d->mirror_fd) ||
	    (h->timeout_ms &&
	     nla_put_u32(msg, VMIR_ATTR_TIMEOUT_MS, h->timeout_ms)) ||
	    nla_put_u64(msg, VMIR_ATTR_FLAGS, VMIR_ADD_F_DEFER_START) ||
	    helper_put_seg(msg, present, dirty, mb, 0)) {
		nlmsg_free(msg);
		return -EMSGSIZE;
	}
	ret = helper_nl_call(h->cmd, msg, &r);
	if (ret) {
		snprintf(err, errlen, "ADD_DEVICE for %s@%u failed: %s%s%s",
			 d->image, d->version, strerror(-ret),
			 r.msg[0] ? ": " : "", r.msg);
		return ret;
	}
	d->id = a.id;
	for (off = VMIR_MAP_SEG_MAX; off < mb; off += VMIR_MAP_SEG_MAX) {
		msg = helper_msg(h, VMIR_CMD_SET_STATE, d->id);
		if (!msg) {
			ret = -ENOMEM;
			goto out_remove;
		}
		if (helper_put_seg(msg, present, dirty, mb, off)) {
			nlmsg_free(msg);
			ret = -EMSGSIZE;
			goto out_remove;
		}
		ret = helper_nl_call(h->cmd, msg, &r);
		if (ret) {
			snprintf(err, errlen,
				 "SET_STATE of vmir%u at chunk %zu failed: %s%s%s",
				 d->id, off * 8, strerror(-ret),
				 r.msg[0] ? ": " : "", r.msg);
			goto out_remove;
		}
	}
	return 0;

out_remove:
	helper_simple(h, VMIR_CMD_REMOVE_DEVICE, d->id, -1, 0, NULL);
	return ret;
}

static int helper_attach(struct helper *h, const char *name, uint32_t version,
			 const char *mirror, char *out, size_t outlen)
{
	const struct vmir_version_info *vi;
	struct helper_dev *d;
	struct helper_mirror m;
	uint8_t *present = NULL, *dirty = NULL;
	char path[PATH_MAX + 16];
	struct stat st;
	size_t mb;
	uint64_t i;
	int ret, loaded;

	d = helper_dev_new();
	if (!d) {
		snprintf(out, outlen, "out of memory");
		return -ENOMEM;
	}
	ret = vmir_version_open(h->c, name, version, &d->v);
	if (ret) {
		snprintf(out, outlen, "%s", vmir_client_error(h->c));
		goto out_free;
	}
	vi = vmir_version_get_info(d->v);
	snprintf(d->image, sizeof(d->image), "%s", vi->image);
	d->version = vi->version;
	d->size = vi->size;
	d->chunk_size = vi->chunk_size;
	d->nchunks = vmir_version_nchunks(d->v);
	if (d->nchunks > VMIR_MAX_CHUNKS) {
		ret = -EFBIG;
		snprintf(out, outlen,
			 "%s@%u has %" PRIu64 " chunks; a device holds at most %u",
			 d->image, d->version, d->nchunks, VMIR_MAX_CHUNKS);
		goto out_free;
	}
	if (mirror && (strlen(mirror) >= sizeof(d->dir) ||
		       strchr(mirror, '\n'))) {
		ret = -EINVAL;
		snprintf(out, outlen,
			 "the mirror directory name is longer than %zu bytes or holds a newline: use another",
			 sizeof(d->dir) - 1);
		goto out_free;
	}
	if (mirror && *mirror) {
		helper_copy(d->dir, sizeof(d->dir), mirror);
	} else {
		snprintf(d->dir, sizeof(d->dir), "%s/%s@%u-%08x",
			 h->mirror_root, d->image, d->version,
			 randombytes_random());
	}
	ret = helper_mkdir_p(d->dir, 0700);
	if (ret) {
		snprintf(out, outlen, "cannot create mirror directory %s: %s",
			 d->dir, strerror(-ret));
		goto out_free;
	}
	mb = helper_map_bytes(d->nchunks);
	present = calloc(1, mb);
	dirty = calloc(1, mb);
	if (!present || !dirty) {
		ret = -ENOMEM;
		snprintf(out, outlen, "out of memory");
		goto out_maps;
	}
	helper_dev_mirror(d, &m);
	loaded = helper_state_load(d->dir, &m, present, dirty, out, outlen);
	if (loaded < 0) {
		ret = loaded;
		goto out_maps;
	}
	snprintf(path, sizeof(path), "%s/mirror", d->dir);
	d->mirror_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (d->mirror_fd < 0) {
		ret = -errno;
		snprintf(out, outlen, "cannot open mirror %s: %s", path,
			 strerror(errno));
		goto out_maps;
	}
	if (fstat(d->mirror_fd, &st)) {
		ret = -errno;
		snprintf(out, outlen, "cannot stat %s: %s", path, strerror(errno));
		goto out_maps;
	}
	if (!loaded && st.st_size) {
		/* bytes of unknown state: refuse rather than guess */
		ret = -EEXIST;
		snprintf(out, outlen,
			 "%s holds data but no saved state is next to it (was the device not detached?): remove its directory to start over",
			 path);
		goto out_maps;
	}
	if (ftruncate(d->mirror_fd, (off_t)d->size)) {
		ret = -errno;
		snprintf(out, outlen, "cannot size mirror %s to %" PRIu64 " bytes: %s",
			 path, d->size, strerror(errno));
		goto out_maps;
	}
	/* zero chunks read as the mirror's hole: never a miss */
	for (i = 0; i < d->nchunks; i++)
		if (!loaded && vmir_version_chunk_is_zero(d->v, i))
			helper_map_set(present, i);
	d->seen = calloc(1, mb);
	if (!d->seen) {
		ret = -ENOMEM;
		snprintf(out, outlen, "out of memory");
		goto out_maps;
	}
	ret = helper_add_device(h, d, present, dirty, out, outlen);
	if (ret)
		goto out_maps;
	/* known before START: no MISS can arrive for an unknown device */
	d->next = h->devs;
	h->devs = d;
	ret = helper_dev_reg_write(h, d);
	if (ret) {
		snprintf(out, outlen, "cannot write the registry entry %s/vmir%u: %s",
			 h->reg_dir, d->id, strerror(-ret));
		goto out_remove;
	}
	ret = helper_simple(h, VMIR_CMD_START_DEVICE, d->id, -1, 0,
			    "START_DEVICE");
	if (ret) {
		snprintf(out, outlen, "START_DEVICE of vmir%u failed: %s",
			 d->id, strerror(-ret));
		goto out_reg;
	}
	/* the bitmaps now live in the module; stale once used */
	if (loaded) {
		ret = helper_state_remove(d->dir);
		if (ret)
			vmir_warn("cannot remove %s/state: %s", d->dir,
				  strerror(-ret));
	}
	free(present);
	free(dirty);
	vmir_info("attached %s@%u as /dev/vmir%u, mirror %s%s", d->image,
		  d->version, d->id, d->dir, loaded ? " (resumed)" : "");
	snprintf(out, outlen, "/dev/vmir%u", d->id);
	return 0;

out_reg:
	helper_reg_remove(h->reg_dir, d->id);
out_remove:
	helper_simple(h, VMIR_CMD_REMOVE_DEVICE, d->id, -1, 0, NULL);
	free(present);
	free(dirty);
	helper_dev_drop(h, d);
	return ret;
out_maps:
	free(present);
	free(dirty);
out_free:
	helper_dev_free(d);
	return ret;
}

/* --- detach ------------------------------------------------------------------------------- */

/*
 * STOP_DEVICE first: once it returns no write can reach the mirror, so
 * the dirty map read next is final and the saved state misses nothing.
 * A device left stopped by a failure here (or by a helper that died in
 * between) is detached by running this again.
 */
static int helper_detach(struct helper *h, uint32_t id, char *out,
			 size_t outlen)
{
	struct helper_dev *d = helper_dev_find(h, id);
	struct helper_mirror m;
	uint8_t *present, *dirty, *commit;
	size_t mb, i;
	int ret;

	if (!d) {
		snprintf(out, outlen, "/dev/vmir%u is not served by this helper",
			 id);
		return -ENODEV;
	}
	if (d->commit_map) {
		snprintf(out, outlen,
			 "a commit of /dev/vmir%u is in progress: detach it when the commit has ended",
			 id);
		return -EBUSY;
	}
	mb = helper_map_bytes(d->nchunks);
	present = calloc(1, mb);
	dirty = calloc(1, mb);
	commit = calloc(1, mb);
	if (!present || !dirty || !commit) {
		ret = -ENOMEM;
		snprintf(out, outlen, "out of memory");
		goto out_free;
	}
	ret = helper_simple(h, VMIR_CMD_STOP_DEVICE, id, -1, 0, NULL);
	if (ret && ret != -EALREADY) {
		snprintf(out, outlen, "STOP_DEVICE of vmir%u failed: %s", id,
			 strerror(-ret));
		goto out_free;
	}
	if (fsync(d->mirror_fd)) {
		ret = -errno;
		snprintf(out, outlen,
			 "fsync of %s/mirror failed: %s (vmir%u is stopped; detach it again)",
			 d->dir, strerror(errno), id);
		goto out_free;
	}
	ret = helper_get_state(h, d, present, dirty, commit);
	if (ret) {
		snprintf(out, outlen,
			 "reading the state of vmir%u failed: %s (it is stopped; detach it again)",
			 id, strerror(-ret));
		goto out_free;
	}
	/* a commit that never ended: its chunks are still to publish */
	for (i = 0; i < mb; i++)
		dirty[i] |= commit[i];
	helper_dev_mirror(d, &m);
	ret = helper_state_save(d->dir, &m, present, dirty);
	if (ret) {
		snprintf(out, outlen,
			 "writing %s/state failed: %s (vmir%u is stopped; detach it again)",
			 d->dir, strerror(-ret), id);
		goto out_free;
	}
	ret = helper_simple(h, VMIR_CMD_REMOVE_DEVICE, id, -1, 0, NULL);
	if (ret) {
		snprintf(out, outlen, "REMOVE_DEVICE of vmir%u failed: %s", id,
			 strerror(-ret));
		goto out_free;
	}
	helper_reg_remove(h->reg_dir, id);
	vmir_info("detached /dev/vmir%u; mirror and state kept in %s", id,
		  d->dir);
	helper_copy(out, outlen, d->dir);
	helper_dev_drop(h, d);
out_free:
	free(present);
	free(dirty);
	free(commit);
	return ret;
}

/* --- commit -------------------------------------------------------------------------------- */

struct helper_commit_parse {
	uint32_t nr;
};

static int helper_parse_begin(struct nl_msg *msg, void *arg)
{
	struct helper_commit_parse *p = arg;
	struct nlattr *tb[VMIR_ATTR_MAX + 1];

	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, VMIR_ATTR_MAX, NULL) < 0)
		return -EPROTO;
	if (tb[VMIR_ATTR_NR_COMMIT])
		p->nr = nla_get_u32(tb[VMIR_ATTR_NR_COMMIT]);
	return 0;
}

/* image: the device's new image name (commit --to), NULL if unchanged */
static int helper_commit_end(struct helper *h, struct helper_dev *d,
			     int status, uint32_t version, const char *image)
{
	struct helper_nl_req r = { 0 };
	struct nl_msg *msg = helper_msg(h, VMIR_CMD_COMMIT_END, d->id);
	char ver[16];
	int ret;

	if (!msg)
		return -ENOMEM;
	snprintf(ver, sizeof(ver), "%u", version);
	if (nla_put_s32(msg, VMIR_ATTR_STATUS, status) ||
	    (!status && nla_put_string(msg, VMIR_ATTR_VERSION, ver)) ||
	    (!status && image && nla_put_string(msg, VMIR_ATTR_IMAGE, image))) {
		nlmsg_free(msg);
		return -EMSGSIZE;
	}
	ret = helper_nl_call(h->cmd, msg, &r);
	if (ret)
		vmir_err("COMMIT_END(%d) of vmir%u failed: %s%s%s", status,
			 d->id, strerror(-ret), r.msg[0] ? ": " : "", r.msg);
	return ret;
}

/* chunk source of the upload thread: the captured bytes */
static int helper_job_source(void *arg, uint64_t idx, void *buf)
{
	struct helper_job *j = arg;
	uint32_t len = vmir_version_chunk_len(j->v, idx);
	int ret;

	memset(buf, 0, vmir_version_get_info(j->v)->chunk_size);
	ret = vmir_pread_full(j->capture_fd, buf, len,
			      idx * vmir_version_get_info(j->v)->chunk_size);
	if (ret)
		snprintf(j->err, sizeof(j->err),
			 "reading captured chunk %" PRIu64 " from commit.tmp failed: %s",
			 idx, strerror(-ret));
	return ret;
}

static void *helper_job_main(void *arg)
{
	struct helper_job *j = arg;
	struct helper *h = helper_self;
	struct vmir_client *c = NULL;
	uint64_t one = 1;
	int ret;

	ret = vmir_client_open(j->conf, &c);
	if (ret) {
		snprintf(j->err, sizeof(j->err), "%s", vmir_client_error(NULL));
		goto out;
	}
	ret = vmir_version_open(c, j->image, j->version, &j->v);
	if (!ret)
		ret = vmir_version_commit(j->v, j->idx, j->n, helper_job_source,
					  j, j->to[0] ? j->to : NULL, &j->vi);
	if (ret && !j->err[0])
		snprintf(j->err, sizeof(j->err), "%s", vmir_client_error(c));
	if (j->v)
		vmir_version_close(j->v);
	j->v = NULL;
	vmir_client_close(c);
out:
	j->ret = ret;
	pthread_mutex_lock(&h->job_lock);
	j->next = h->done;
	h->done = j;
	pthread_mutex_unlock(&h->job_lock);
	if (write(h->job_efd, &one, sizeof(one)) != sizeof(one))
		vmir_err("cannot signal the end of a commit upload: %s",
			 strerror(errno));
	return NULL;
}

static void helper_ctl_reply(int fd, int ret, const char *out)
{
	char reply[HELPER_MSG_MAX];

	if (ret)
		snprintf(reply, sizeof(reply), "ERR\t%d\t%s", -ret, out);
	else
		snprintf(reply, sizeof(reply), "OK\t%s", out);
	if (ret)
		vmir_err("%s", out);
	if (send(fd, reply, strlen(reply), MSG_NOSIGNAL) < 0)
		vmir_warn("cannot send the control reply: %s", strerror(errno));
}

/* forget the commit of d in the helper (the module's side is done) */
static void helper_commit_clear(struct helper_dev *d)
{
	char path[PATH_MAX + 16];

	if (d->capture_fd >= 0) {
		close(d->capture_fd);
		snprintf(path, sizeof(path), "%s/commit.tmp", d->dir);
		unlink(path);
	}
	d->capture_fd = -1;
	free(d->commit_map);
	free(d->captured);
	d->commit_map = NULL;
	d->captured = NULL;
	d->job = NULL;
}

/*
 * After a commit the device is at the new version: misses read through it
 * from now on. Its missing chunks are the same in both versions (every
 * committed chunk is present), so fetches in flight through the old one
 * finish there; the old one is closed with the last of them.
 */
static void helper_dev_advance(struct helper *h, struct helper_dev *d)
{
	struct vmir_version *nv;

	if (vmir_version_open(h->c, d->image, d->version, &nv)) {
		vmir_warn("vmir%u: cannot open %s@%u (%s): misses read the same chunks through %s's previous version",
			  d->id, d->image, d->version,
			  vmir_client_error(h->c), d->image);
		return;
	}
	/* an earlier replacement still has fetches: let them end first */
	while (d->v_old) {
		if (vmir_client_poll(h->c, 100)) {
			vmir_version_close(nv);
			return;
		}
	}
	if (d->inflight) {
		d->v_old = d->v;
		d->old_inflight = d->inflight;
	} else {
		vmir_version_close(d->v);
	}
	d->v = nv;
}

/* the upload thread of j reported back: end the commit, answer vmirctl */
static void helper_commit_finish(struct helper *h, struct helper_job *j)
{
	struct helper_dev *d = j->d;
	char out[HELPER_MSG_MAX - 32];
	int ret = j->ret;

	pthread_join(j->thread, NULL);
	h->jobs--;
	if (ret) {
		snprintf(out, sizeof(out), "%s", j->err);
		helper_commit_end(h, d, ret, 0, NULL);
		goto out;
	}
	ret = helper_commit_end(h, d, 0, j->vi.version,
				j->to[0] ? j->vi.image : NULL);
	if (ret) {
		/* the version exists; the device keeps its dirty set */
		snprintf(out, sizeof(out),
			 "%s@%u was published but COMMIT_END of vmir%u failed: %s",
			 j->vi.image, j->vi.version, d->id, strerror(-ret));
		goto out;
	}
	snprintf(d->image, sizeof(d->image), "%s", j->vi.image);
	d->version = j->vi.version;
	if (helper_dev_reg_write(h, d))
		vmir_warn("cannot update %s/vmir%u after the commit", h->reg_dir,
			  d->id);
	helper_dev_advance(h, d);
	vmir_info("committed vmir%u (%zu chunks) as %s@%u", d->id, j->n,
		  j->vi.image, j->vi.version);
	snprintf(out, sizeof(out), "%s@%u", j->vi.image, j->vi.version);
out:
	helper_commit_clear(d);
	if (j->ctl_fd >= 0) {
		helper_ctl_reply(j->ctl_fd, ret, out);
		close(j->ctl_fd);
	}
	free(j->idx);
	free(j);
}

/* reap the uploads that finished */
static void helper_jobs_reap(struct helper *h)
{
	struct helper_job *j, *next;
	uint64_t cnt;

	if (read(h->job_efd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
		vmir_warn("reading the commit eventfd failed: %s",
			  strerror(errno));
	pthread_mutex_lock(&h->job_lock);
	j = h->done;
	h->done = NULL;
	pthread_mutex_unlock(&h->job_lock);
	for (; j; j = next) {
		next = j->next;
		helper_commit_finish(h, j);
	}
}

/*
 * COMMIT: COMMIT_BEGIN, capture the commit set into commit.tmp (writes
 * waiting on a chunk go first), then start the upload thread. Returns 1
 * when the thread owns the reply to ctl_fd, else 0 or -errno with out set.
 */
static int helper_commit(struct helper *h, uint32_t id, const char *to,
			 int ctl_fd, char *out, size_t outlen)
{
	struct helper_dev *d = helper_dev_find(h, id);
	struct helper_commit_parse p = { 0 };
	struct helper_nl_req r = { .parse = helper_parse_begin, .arg = &p };
	struct helper_job *j = NULL;
	char path[PATH_MAX + 16];
	uint64_t i, n = 0;
	struct nl_msg *msg;
	size_t mb;
	int ret;

	if (!d) {
		snprintf(out, outlen, "/dev/vmir%u is not served by this helper",
			 id);
		return -ENODEV;
	}
	if (d->commit_map) {
		snprintf(out, outlen, "a commit of /dev/vmir%u is already in progress",
			 id);
		return -EBUSY;
	}
	if (strlen(to) >= VMIR_NAME_MAX) {
		snprintf(out, outlen, "image name '%.64s...' is too long", to);
		return -ENAMETOOLONG;
	}
	mb = helper_map_bytes(d->nchunks);
	j = calloc(1, sizeof(*j));
	d->commit_map = calloc(1, mb);
	d->captured = calloc(1, mb);
	if (!j || !d->commit_map || !d->captured) {
		ret = -ENOMEM;
		snprintf(out, outlen, "out of memory");
		goto out_clear;
	}
	snprintf(path, sizeof(path), "%s/commit.tmp", d->dir);
	d->capture_fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
			     0600);
	if (d->capture_fd < 0) {
		ret = -errno;
		snprintf(out, outlen, "cannot create %s: %s", path,
			 strerror(errno));
		goto out_clear;
	}
	msg = helper_msg(h, VMIR_CMD_COMMIT_BEGIN, id);
	if (!msg) {
		ret = -ENOMEM;
		goto out_clear;
	}
	ret = helper_nl_call(h->cmd, msg, &r);
	if (ret) {
		snprintf(out, outlen, "COMMIT_BEGIN of vmir%u failed: %s%s%s",
			 id, strerror(-ret), r.msg[0] ? ": " : "", r.msg);
		goto out_clear;
	}
	ret = helper_get_state(h, d, NULL, NULL, d->commit_map);
	if (ret) {
		snprintf(out, outlen, "reading the commit set of vmir%u failed: %s",
			 id, strerror(-ret));
		goto out_end;
	}
	j->idx = malloc(sizeof(*j->idx) * (p.nr ? p.nr : 1));
	if (!j->idx) {
		ret = -ENOMEM;
		snprintf(out, outlen, "out of memory");
		goto out_end;
	}
	for (i = 0; i < d->nchunks; i++) {
		if (!helper_map_test(d->commit_map, i))
			continue;
		if (n == p.nr) {
			ret = -EPROTO;
			snprintf(out, outlen,
				 "the commit set of vmir%u has more than the %u chunks COMMIT_BEGIN announced",
				 id, p.nr);
			goto out_end;
		}
		j->idx[n++] = i;
	}
	/* capture everything; writes waiting on a chunk go first */
	for (i = 0; i < n; i++) {
		helper_drain_events(h);
		ret = helper_capture(h, d, j->idx[i]);
		if (ret) {
			snprintf(out, outlen,
				 "capturing chunk %" PRIu64 " of vmir%u failed: %s",
				 j->idx[i], id, strerror(-ret));
			goto out_end;
		}
	}
	j->d = d;
	j->ctl_fd = ctl_fd;
	j->conf = h->conf;
	snprintf(j->image, sizeof(j->image), "%s", d->image);
	j->version = d->version;
	snprintf(j->to, sizeof(j->to), "%s", to);
	j->n = n;
	j->capture_fd = d->capture_fd;
	ret = -pthread_create(&j->thread, NULL, helper_job_main, j);
	if (ret) {
		snprintf(out, outlen, "cannot start the upload thread: %s",
			 strerror(-ret));
		goto out_end;
	}
	d->job = j;
	h->jobs++;
	vmir_info("vmir%u: %" PRIu64 " chunks captured, uploading", id, n);
	return 1;

out_end:
	helper_commit_end(h, d, ret, 0, NULL);
out_clear:
	helper_commit_clear(d);
	if (j)
		free(j->idx);
	free(j);
	return ret;
}

/* --- control socket -------------------------------------------------------------------- */

static int helper_ctl_listen(void)
{
	struct sockaddr_un sa;
	socklen_t len;
	int fd;

	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path + 1, HELPER_SOCK_NAME, strlen(HELPER_SOCK_NAME));
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
			  strlen(HELPER_SOCK_NAME));
	if (bind(fd, (struct sockaddr *)&sa, len) || listen(fd, 64)) {
		int ret = -errno;

		close(fd);
		return ret;
	}
	return fd;
}

/* split s at tabs into at most n fields; returns the count */
static int helper_split(char *s, char **f, int n)
{
	int i = 0;

	while (i < n) {
		f[i++] = s;
		s = strchr(s, '\t');
		if (!s)
			break;
		*s++ = '\0';
	}
	return i;
}

/* one control request; returns true when a commit thread owns fd now */
static bool helper_ctl_handle(struct helper *h, int fd)
{
	char req[HELPER_MSG_MAX + 1], out[HELPER_MSG_MAX - 32];
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	struct timeval tv = { 5, 0 };
	char *f[4];
	uint32_t a;
	ssize_t n;
	int nf, ret = -EINVAL;

	out[0] = '\0';
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) ||
	    cred.uid != 0) {
		ret = -EPERM;
		snprintf(out, sizeof(out), "only root may control vmir-helper");
		goto reply;
	}
	n = recv(fd, req, HELPER_MSG_MAX, 0);
	if (n <= 0)
		return false;
	req[n] = '\0';
	nf = helper_split(req, f, 4);
	vmir_dbg("control request %s (%d fields) from pid %d", f[0], nf,
		 (int)cred.pid);
	if (!strcmp(f[0], "ATTACH") && nf == 4) {
		if (helper_parse_u32(f[2], &a)) {
			snprintf(out, sizeof(out), "bad version '%s'", f[2]);
			goto reply;
		}
		ret = helper_attach(h, f[1], a, f[3], out, sizeof(out));
	} else if (!strcmp(f[0], "DETACH") && nf == 2 &&
		   !helper_parse_u32(f[1], &a)) {
		ret = helper_detach(h, a, out, sizeof(out));
	} else if (!strcmp(f[0], "COMMIT") && nf == 3 &&
		   !helper_parse_u32(f[1], &a)) {
		ret = helper_commit(h, a, f[2], fd, out, sizeof(out));
		if (ret == 1)
			return true;
	} else {
		snprintf(out, sizeof(out), "malformed control request '%s'",
			 f[0]);
	}
reply:
	helper_ctl_reply(fd, ret, out);
	return false;
}

static void helper_ctl_accept(struct helper *h)
{
	int fd;

	for (;;) {
		fd = accept4(h->ctl_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			return;
		if (!helper_ctl_handle(h, fd))
			close(fd);
	}
}

/* --- startup: existing devices --------------------------------------------------------- */

struct helper_list_ent {
	uint32_t id;
	uint32_t version;
	uint32_t state;
	bool commit;
};

struct helper_list {
	struct helper_list_ent *e;
	size_t n, cap;
};

static int helper_parse_list(struct nl_msg *msg, void *arg)
{
	struct helper_list *l = arg;
	struct nlattr *tb[VMIR_ATTR_MAX + 1];
	struct helper_list_ent *e;

	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, VMIR_ATTR_MAX, NULL) < 0 ||
	    !tb[VMIR_ATTR_DEV_ID])
		return -EPROTO;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;

		e = realloc(l->e, cap * sizeof(*e));
		if (!e)
			return -ENOMEM;
		l->e = e;
		l->cap = cap;
	}
	e = &l->e[l->n++];
	memset(e, 0, sizeof(*e));
	e->id = nla_get_u32(tb[VMIR_ATTR_DEV_ID]);
	if (tb[VMIR_ATTR_VERSION])
		e->version = (uint32_t)strtoul(nla_get_string(tb[VMIR_ATTR_VERSION]),
					       NULL, 10);
	if (tb[VMIR_ATTR_DEV_FLAGS])
		e->commit = nla_get_u64(tb[VMIR_ATTR_DEV_FLAGS]) &
			    VMIR_DEV_F_COMMIT;
	if (tb[VMIR_ATTR_STATE])
		e->state = nla_get_u32(tb[VMIR_ATTR_STATE]);
	return 0;
}

/* serve the devices a previous helper attached (from the registry) */
static int helper_adopt(struct helper *h)
{
	struct helper_list l = { 0 };
	struct helper_nl_req r = { .parse = helper_parse_list, .arg = &l };
	struct nl_msg *msg = helper_nl_msg(h->family, VMIR_CMD_LIST, true);
	struct helper_dev *d;
	char path[PATH_MAX + 16], err[PATH_MAX + 256];
	uint32_t regver = 0;
	size_t i;
	int ret;

	if (!msg)
		return -ENOMEM;
	ret = helper_nl_call(h->cmd, msg, &r);
	if (ret) {
		vmir_err("listing the devices failed: %s%s%s", strerror(-ret),
			 r.msg[0] ? ": " : "", r.msg);
		goto out;
	}
	for (i = 0; i < l.n; i++) {
		d = helper_dev_new();
		if (!d) {
			ret = -ENOMEM;
			goto out;
		}
		d->id = l.e[i].id;
		ret = helper_reg_read(h->reg_dir, d->id, d->dir, d->image,
				      &regver, err, sizeof(err));
		if (ret) {
			vmir_warn("/dev/vmir%u is not served, its misses will fail: %s; write a correct entry (dir=, image=, version= lines) and restart vmir-helper",
				  d->id, err);
			helper_dev_free(d);
			continue;
		}
		/* the module's version is the latest committed one */
		d->version = l.e[i].version ? l.e[i].version : regver;
		ret = vmir_version_open(h->c, d->image, d->version, &d->v);
		if (ret) {
			vmir_err("/dev/vmir%u: %s", d->id,
				 vmir_client_error(h->c));
			helper_dev_free(d);
			continue;
		}
		d->size = vmir_version_get_info(d->v)->size;
		d->chunk_size = vmir_version_get_info(d->v)->chunk_size;
		d->nchunks = vmir_version_nchunks(d->v);
		/* read-ahead starts from the misses this helper sees */
		d->seen = calloc(1, helper_map_bytes(d->nchunks));
		snprintf(path, sizeof(path), "%s/mirror", d->dir);
		d->mirror_fd = open(path, O_RDWR | O_CLOEXEC);
		if (d->mirror_fd < 0) {
			vmir_err("/dev/vmir%u: cannot open its mirror %s: %s",
				 d->id, path, strerror(errno));
			helper_dev_free(d);
			continue;
		}
		d->next = h->devs;
		h->devs = d;
		/* a commit of the previous helper cannot finish: undo it */
		if (l.e[i].commit)
			helper_commit_end(h, d, -ECANCELED, 0, NULL);
		if (l.e[i].state == VMIR_DEV_STATE_STOPPED) {
			char out[512];

			/* the previous helper died in the middle of a detach */
			vmir_info("finishing the detach of /dev/vmir%u", d->id);
			if (helper_detach(h, d->id, out, sizeof(out)))
				vmir_err("%s", out);
			continue;
		}
		vmir_info("serving existing /dev/vmir%u (%s@%u, mirror %s)",
			  d->id, d->image, d->version, d->dir);
	}
	ret = 0;
out:
	free(l.e);
	return ret;
}

static int helper_register(struct helper *h)
{
	struct helper_nl_req r = { 0 };
	struct nl_msg *msg = helper_nl_msg(h->family,
					   VMIR_CMD_HELPER_REGISTER, false);
	struct nl_cb *cb;
	int ret;

	if (!msg)
		return -ENOMEM;
	/* events may arrive before the ack: handle them as they come */
	cb = nl_socket_get_cb(h->ev);
	nl_cb_set(cb, NL_CB_FINISH, NL_CB_CUSTOM, helper_nl_finish, &r);
	nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, helper_nl_finish, &r);
	nl_cb_err(cb, NL_CB_CUSTOM, helper_nl_error, &r);
	ret = nl_send_auto(h->ev, msg);
	nlmsg_free(msg);
	if (ret < 0) {
		ret = -EIO;
		goto out;
	}
	ret = 0;
	while (!r.done) {
		ret = nl_recvmsgs(h->ev, cb);
		if (ret < 0 && !r.done) {
			vmir_err("waiting for the HELPER_REGISTER ack: %s",
				 nl_geterror(ret));
			ret = -EIO;
			goto out;
		}
	}
	ret = r.err;
	if (ret)
		vmir_err("HELPER_REGISTER failed: %s%s%s%s", strerror(-ret),
			 r.msg[0] ? ": " : "", r.msg,
			 ret == -EBUSY ? " (another vmir-helper runs in this network namespace)" : "");
out:
	nl_cb_set(cb, NL_CB_FINISH, NL_CB_DEFAULT, NULL, NULL);
	nl_cb_set(cb, NL_CB_ACK, NL_CB_DEFAULT, NULL, NULL);
	nl_cb_err(cb, NL_CB_DEFAULT, NULL, NULL);
	nl_cb_put(cb);
	return ret;
}

/* --- main ---------------------------------------------------------------------------------- */

static void helper_usage(FILE *f)
{
	fprintf(f,
		"usage: vmir-helper --conf FILE [--mirror-root DIR] [--reg-dir DIR]\n"
		"                   [--timeout-ms MS] [--read-ahead-kib N] [-v]\n"
		"  --conf FILE         cluster configuration (default: $VMIR_CONF)\n"
		"  --mirror-root DIR   default parent of mirror directories (%s)\n"
		"  --reg-dir DIR       device registry (%s)\n"
		"  --timeout-ms MS     parked request timeout of new devices\n"
		"  --read-ahead-kib N  after a miss that follows a chunk already\n"
		"                      fetched, fetch the next N KiB too (default\n"
		"                      %u, 0 = off)\n"
		"  -v                  debug messages\n",
		HELPER_MIRROR_ROOT, HELPER_REG_DIR, HELPER_READ_AHEAD_KIB);
}

static int helper_loop(struct helper *h)
{
	struct pollfd pfd[4];
	int ret, timeout;

	pfd[0].fd = nl_socket_get_fd(h->ev);
	pfd[1].fd = h->ctl_fd;
	pfd[3].fd = h->job_efd;
	for (ret = 0; ret < 4; ret++)
		pfd[ret].events = POLLIN;
	while (!helper_stop) {
		pfd[2].fd = vmir_client_pollfd(h->c, &timeout);
		ret = poll(pfd, 4, timeout);
		if (ret < 0 && errno != EINTR) {
			vmir_err("poll failed: %s", strerror(errno));
			return -errno;
		}
		if (ret > 0 && pfd[0].revents)
			helper_drain_events(h);
		if (ret > 0 && pfd[1].revents)
			helper_ctl_accept(h);
		if (ret > 0 && pfd[3].revents)
			helper_jobs_reap(h);
		if (vmir_client_poll(h->c, 0))
			vmir_err("%s", vmir_client_error(h->c));
	}
	/* uploads in progress end normally: their devices stay consistent */
	while (h->jobs) {
		vmir_info("waiting for %u commit upload(s) to end", h->jobs);
		pfd[3].revents = 0;
		if (poll(&pfd[3], 1, -1) > 0)
			helper_jobs_reap(h);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct helper h;
	const char *conf = NULL;
	struct sigaction sa;
	char err[512];
	int i, ret, status = 1;

	vmir_log_init("vmir-helper");
	memset(&h, 0, sizeof(h));
	h.ctl_fd = -1;
	h.job_efd = -1;
	pthread_mutex_init(&h.job_lock, NULL);
	h.mirror_root = HELPER_MIRROR_ROOT;
	h.reg_dir = HELPER_REG_DIR;
	h.read_ahead_kib = HELPER_READ_AHEAD_KIB;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
			vmir_log_set_verbose(true);
			continue;
		}
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			helper_usage(stdout);
			return 0;
		}
		if (!val) {
			vmir_err("unknown option or missing value: '%s'", a);
			helper_usage(stderr);
			return 2;
		}
		if (!strcmp(a, "--conf")) {
			conf = val;
		} else if (!strcmp(a, "--mirror-root")) {
			h.mirror_root = val;
		} else if (!strcmp(a, "--reg-dir")) {
			h.reg_dir = val;
		} else if (!strcmp(a, "--read-ahead-kib")) {
			if (helper_parse_u32(val, &h.read_ahead_kib) ||
			    h.read_ahead_kib > (1U << 20)) {
				vmir_err("bad --read-ahead-kib '%s' (0..1048576)",
					 val);
				return 2;
			}
		} else if (!strcmp(a, "--timeout-ms")) {
			if (helper_parse_u32(val, &h.timeout_ms)) {
				vmir_err("bad --timeout-ms '%s'", val);
				return 2;
			}
		} else {
			vmir_err("unknown option '%s'", a);
			helper_usage(stderr);
			return 2;
		}
		i++;
	}
	helper_self = &h;
	/* every fetch is a malloc()ed chunk buffer */
	vmir_heap_keep_buffers(HELPER_HEAP_FREE_MAX);
	if (sodium_init() < 0) {
		vmir_err("libsodium initialisation failed");
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = helper_on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	ret = vmir_client_open(conf, &h.c);
	if (ret) {
		vmir_err("%s", vmir_client_error(NULL));
		return 1;
	}
	h.conf = conf;
	h.job_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (h.job_efd < 0) {
		vmir_err("eventfd failed: %s", strerror(errno));
		goto out;
	}
	ret = helper_nl_open(&h.cmd, &h.family, err, sizeof(err));
	if (!ret)
		ret = helper_nl_open(&h.ev, &h.family, err, sizeof(err));
	if (ret) {
		vmir_err("%s", err);
		goto out;
	}
	nl_socket_disable_seq_check(h.ev);
	nl_socket_set_buffer_size(h.ev, 4 << 20, 0);
	nl_socket_modify_cb(h.ev, NL_CB_VALID, NL_CB_CUSTOM, helper_on_event,
			    &h);
	h.ctl_fd = helper_ctl_listen();
	if (h.ctl_fd < 0) {
		vmir_err("cannot listen on the control socket @%s: %s%s",
			 HELPER_SOCK_NAME, strerror(-h.ctl_fd),
			 h.ctl_fd == -EADDRINUSE ? " (is another vmir-helper running in this network namespace?)" : "");
		goto out;
	}
	ret = helper_adopt(&h);
	if (ret)
		goto out;
	ret = helper_register(&h);
	if (ret)
		goto out;
	nl_socket_set_nonblocking(h.ev);
	vmir_info("registered with the vmir module; control socket @%s",
		  HELPER_SOCK_NAME);
	if (!helper_loop(&h))
		status = 0;
	vmir_info("stopping (signal %d); devices stay attached",
		  (int)helper_stop);
out:
	if (h.job_efd >= 0)
		close(h.job_efd);
	if (h.ctl_fd >= 0)
		close(h.ctl_fd);
	if (h.ev)
		nl_socket_free(h.ev);
	if (h.cmd)
		nl_socket_free(h.cmd);
	vmir_client_close(h.c);
	return status;
}
