// SPDX-License-Identifier: GPL-2.0
/*
 * vmir-helper: attach, detach, and adopting the devices a previous helper
 * attached.
 *
 * Attach opens the version asynchronously (a LOOKUP and the tree, level by
 * level, while the loop serves everything else), then sets up the mirror
 * and adds the device: ADD_DEVICE with deferred start and the first map
 * segment, SET_STATE for the others, the registry entry, START_DEVICE.
 *
 * Detach: STOP_DEVICE first: once it returns no write can reach the
 * mirror, so the dirty map read next is final and the saved state misses
 * nothing. A device left stopped by a failure here (or by a helper that
 * died in between) is detached by running this again.
 *
 * Adoption at start: every device of this namespace that the registry
 * names is served again; its version opens asynchronously, and misses
 * that arrive meanwhile wait for it (fetch.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "ctl.h"
#include "helper.h"
#include "state.h"
#include "vmir_util.h"

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

/* --- attach ------------------------------------------------------------------ */

struct helper_attach {
	struct helper *h;
	int fd;				/* vmirctl waiting for the reply */
	char name[VMIR_NAME_MAX];
	uint32_t version;		/* as asked; 0 = the latest */
	char mirror[PATH_MAX];		/* "" = a new one under mirror_root */
	bool prefetch;			/* in the profile's order */
	/*
	 * The mirror holds a commit cut by a crash after its publish was
	 * sent (MIRROR_DIR/commit.pub), published as the version being
	 * opened: its map may still be that of the commit's base,
	 * ticket.image@base_version.
	 */
	uint32_t base_version;		/* 0: no such commit */
	struct vmir_publish_ticket ticket;
};

struct helper_add_reply {
	uint32_t id;
};

static int helper_parse_add(void *arg, uint8_t cmd, struct nlattr **tb)
{
	struct helper_add_reply *a = arg;

	if (!tb[VMIR_ATTR_DEV_ID])
		return -EPROTO;
	a->id = nla_get_u32(tb[VMIR_ATTR_DEV_ID]);
	return 0;
}

/*
 * ADD_DEVICE (deferred start, first map segment inline), SET_STATE for
 * the other segments. The device is then in SETUP: nothing reads it yet.
 */
static int helper_add_device(struct helper_dev *d, const uint8_t *present,
			     const uint8_t *dirty, char *err, size_t errlen)
{
	struct helper *h = d->h;
	struct helper_add_reply a = { 0 };
	size_t mb = helper_map_bytes(d->nchunks), off;
	char emsg[VMIR_NL_MSG_MAX];
	struct nl_msg *msg;
	int ret;

	msg = vmir_nl_msg(&h->req, VMIR_CMD_ADD_DEVICE, 0);
	if (!msg)
		return -ENOMEM;
	if (nla_put_string(msg, VMIR_ATTR_IMAGE, d->image) ||
	    nla_put_u32(msg, VMIR_ATTR_VERSION, d->version) ||
	    nla_put_u64(msg, VMIR_ATTR_SIZE, d->size) ||
	    nla_put_u32(msg, VMIR_ATTR_CHUNK_SIZE, d->chunk_size) ||
	    nla_put_u32(msg, VMIR_ATTR_MIRROR_FD, (uint32_t)d->mirror_fd) ||
	    (h->timeout_ms &&
	     nla_put_u32(msg, VMIR_ATTR_TIMEOUT_MS, h->timeout_ms)) ||
	    nla_put_u64(msg, VMIR_ATTR_FLAGS, VMIR_ADD_F_DEFER_START) ||
	    nla_put_u64(msg, VMIR_ATTR_MAP_OFFSET,
			helper_map_offset(d->size)) ||
	    nla_put_u64(msg, VMIR_ATTR_MAP_GEN, d->map_gen) ||
	    vmir_nl_put_segment(msg, present, dirty, mb, 0) < 0) {
		nlmsg_free(msg);
		return -EMSGSIZE;
	}
	ret = vmir_nl_call(&h->req, msg, helper_parse_add, &a, emsg,
			   sizeof(emsg));
	if (ret) {
		snprintf(err, errlen, "ADD_DEVICE for %s@%u failed: %s%s%s",
			 d->image, d->version, strerror(-ret),
			 emsg[0] ? ": " : "", emsg);
		return ret;
	}
	d->id = a.id;
	for (off = VMIR_MAP_SEG_MAX; off < mb; off += VMIR_MAP_SEG_MAX) {
		msg = helper_msg(h, VMIR_CMD_SET_STATE, d->id);
		if (!msg) {
			ret = -ENOMEM;
			goto out_remove;
		}
		if (vmir_nl_put_segment(msg, present, dirty, mb, off) < 0) {
			nlmsg_free(msg);
			ret = -EMSGSIZE;
			goto out_remove;
		}
		ret = vmir_nl_call(&h->req, msg, NULL, NULL, emsg,
				   sizeof(emsg));
		if (ret) {
			snprintf(err, errlen,
				 "SET_STATE of vmir%u at chunk %zu failed: %s%s%s",
				 d->id, off * 8, strerror(-ret),
				 emsg[0] ? ": " : "", emsg);
			goto out_remove;
		}
	}
	return 0;

out_remove:
	helper_simple(h, VMIR_CMD_REMOVE_DEVICE, d->id, NULL, 0);
	return ret;
}

/*
 * After a crash: the map says what every chunk was at the last FLUSH that
 * completed. Dirty chunks hold what the device held then. A present chunk
 * that is not dirty held the version's data then, but a write after that
 * FLUSH may have reached it (a mix of old and new sectors): it is kept
 * only if it still is the version's chunk, else it is fetched again (a
 * zero chunk becomes a hole again). Returns how many were dropped, or
 * -errno with out set.
 */
static int64_t helper_mirror_verify(struct helper_dev *d, uint8_t *present,
				    const uint8_t *dirty, char *out,
				    size_t outlen)
{
	uint64_t i, off;
	int64_t dropped = 0;
	uint32_t len;
	uint8_t *buf;
	int ret;

	buf = malloc(d->chunk_size);
	if (!buf) {
		snprintf(out, outlen, "out of memory");
		return -ENOMEM;
	}
	for (i = 0; i < d->nchunks; i++) {
		if (!helper_map_test(present, i) || helper_map_test(dirty, i))
			continue;
		len = vmir_version_chunk_len(d->v, i);
		off = i * d->chunk_size;
		ret = vmir_pread_full(d->mirror_fd, buf, len, off);
		if (ret) {
			snprintf(out, outlen, "cannot read chunk %" PRIu64 " of %s/mirror: %s",
				 i, d->dir, strerror(-ret));
			free(buf);
			return ret;
		}
		if (vmir_version_chunk_matches(d->v, i, buf))
			continue;
		dropped++;
		if (vmir_version_chunk_is_zero(d->v, i) &&
		    !fallocate(d->mirror_fd, FALLOC_FL_PUNCH_HOLE |
			       FALLOC_FL_KEEP_SIZE, (off_t)off, len))
			continue;
		present[i >> 3] &= (uint8_t)~(1u << (i & 7));
	}
	free(buf);
	return dropped;
}

/*
 * The maps of a mirror that holds data without a state file: the durable
 * map's newest copy, checked. 1, or -errno with out set.
 */
static int helper_mirror_recover(struct helper_dev *d, int found,
				 const char *why, uint64_t gen,
				 uint8_t *present, const uint8_t *dirty,
				 char *out, size_t outlen)
{
	uint64_t i, ndirty = 0;
	int64_t dropped;

	if (found < 0) {
		snprintf(out, outlen, "%.512s/mirror: %s; attach that version, or remove the directory to start over",
			 d->dir, why);
		return found;
	}
	if (!found) {
		/* bytes of unknown state: refuse rather than guess */
		snprintf(out, outlen,
			 "%s/mirror holds data but neither a saved state nor a valid map (was the device not detached?): remove the directory to start over",
			 d->dir);
		return -EEXIST;
	}
	dropped = helper_mirror_verify(d, present, dirty, out, outlen);
	if (dropped < 0)
		return (int)dropped;
	for (i = 0; i < d->nchunks; i++)
		ndirty += helper_map_test(dirty, i);
	vmir_warn("%s was not detached: resuming from its map of the last flush (generation %" PRIu64 "), %" PRIu64 " dirty chunks kept, %" PRId64 " chunks written after it fetched again",
		  d->dir, gen, ndirty, dropped);
	return 1;
}

/*
 * The mirror directory and file of a new device, and the maps to start
 * from: those saved at the last detach or, after a crash, the durable map
 * (1), or none (0: only zero chunks are present). Before the device is
 * added they become the durable map's next copy. -errno with a message
 * in out.
 */
static int helper_mirror_open(struct helper_dev *d, const char *mirror,
			      const char *base_image, uint32_t base_version,
			      uint8_t *present, uint8_t *dirty, char *out,
			      size_t outlen)
{
	struct helper *h = d->h;
	size_t mb = helper_map_bytes(d->nchunks);
	char path[PATH_MAX + 16], why[512];
	uint8_t *mp = NULL, *md = NULL;
	struct helper_mirror m;
	struct stat st;
	int ret, loaded, found;
	uint64_t i, gen;

	if (*mirror)
		helper_copy(d->dir, sizeof(d->dir), mirror);
	else
		snprintf(d->dir, sizeof(d->dir), "%s/%s@%u-%08x",
			 h->mirror_root, d->image, d->version,
			 randombytes_random());
	ret = helper_mkdir_p(d->dir, 0700);
	if (ret) {
		snprintf(out, outlen, "cannot create mirror directory %s: %s",
			 d->dir, strerror(-ret));
		return ret;
	}
	helper_dev_mirror(d, &m);
	loaded = helper_state_load(d->dir, &m, present, dirty, out, outlen);
	if (loaded < 0)
		return loaded;
	snprintf(path, sizeof(path), "%s/mirror", d->dir);
	d->mirror_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (d->mirror_fd < 0) {
		ret = -errno;
		snprintf(out, outlen, "cannot open mirror %s: %s", path,
			 strerror(errno));
		return ret;
	}
	if (fstat(d->mirror_fd, &st)) {
		ret = -errno;
		snprintf(out, outlen, "cannot stat %s: %s", path,
			 strerror(errno));
		return ret;
	}
	mp = malloc(mb);
	md = malloc(mb);
	if (!mp || !md) {
		snprintf(out, outlen, "out of memory");
		ret = -ENOMEM;
		goto out_free;
	}
	why[0] = '\0';
	found = helper_map_load(d->mirror_fd, &m, mp, md, &gen, why,
				sizeof(why));
	if (found == -EEXIST && base_version && !loaded) {
		/*
		 * The map of the commit's base: every chunk the commit
		 * published is dirty in it (the commit set is), the clean
		 * ones are the same in both versions. Resumed as it is, on
		 * the published version.
		 */
		snprintf(m.image, sizeof(m.image), "%s", base_image);
		m.version = base_version;
		found = helper_map_load(d->mirror_fd, &m, mp, md, &gen, why,
					sizeof(why));
		helper_dev_mirror(d, &m);
		if (found == 1)
			vmir_warn("%s: the commit of %s@%u cut by a crash was published as %s@%u: the mirror goes on from it",
				  d->dir, base_image, base_version, d->image,
				  d->version);
	}
	if (found == -ENOMEM) {
		snprintf(out, outlen, "out of memory");
		ret = found;
		goto out_free;
	}
	if (!loaded && st.st_size) {
		memcpy(present, mp, mb);
		memcpy(dirty, md, mb);
		ret = helper_mirror_recover(d, found, why, gen, present, dirty,
					    out, outlen);
		if (ret < 0)
			goto out_free;
		loaded = ret;
	}
	if (ftruncate(d->mirror_fd, (off_t)helper_map_end(&m))) {
		ret = -errno;
		snprintf(out, outlen, "cannot size mirror %s to %" PRIu64 " bytes: %s",
			 path, helper_map_end(&m), strerror(errno));
		goto out_free;
	}
	/* zero chunks read as the mirror's hole: never a miss */
	for (i = 0; !loaded && i < d->nchunks; i++)
		if (vmir_version_chunk_is_zero(d->v, i))
			helper_map_set(present, i);
	d->map_gen = gen + 1;
	ret = helper_map_save(d->mirror_fd, &m, present, dirty, d->map_gen);
	if (ret) {
		snprintf(out, outlen, "cannot write the map into %s: %s", path,
			 strerror(-ret));
		goto out_free;
	}
	/* the map holds the saved state now; a stale file must not win */
	ret = helper_state_remove(d->dir);
	if (ret)
		vmir_warn("cannot remove %s/state: %s", d->dir, strerror(-ret));
	/* and the map is the published version's: the ticket is spent */
	if (base_version) {
		ret = helper_pub_remove(d->dir);
		if (ret)
			vmir_warn("cannot remove %s/commit.pub: %s", d->dir,
				  strerror(-ret));
	}
	ret = loaded;
out_free:
	free(mp);
	free(md);
	return ret;
}

/*
 * The version is open: set up the device d (which this takes over: on
 * failure it is freed, or left to the loop). 0 or -errno with out set.
 */
static int helper_attach_device(struct helper_attach *a, struct helper_dev *d,
				char *out, size_t outlen)
{
	struct helper *h = a->h;
	uint8_t *present = NULL, *dirty = NULL;
	size_t mb = helper_map_bytes(d->nchunks);
	char emsg[VMIR_NL_MSG_MAX];
	int ret, loaded;

	if (d->nchunks > VMIR_MAX_CHUNKS) {
		snprintf(out, outlen,
			 "%s@%u has %" PRIu64 " chunks; a device holds at most %u",
			 d->image, d->version, d->nchunks, VMIR_MAX_CHUNKS);
		ret = -EFBIG;
		goto out_free_dev;
	}
	present = calloc(1, mb);
	dirty = calloc(1, mb);
	d->seen = calloc(1, mb);
	if (!present || !dirty || !d->seen) {
		ret = -ENOMEM;
		snprintf(out, outlen, "out of memory");
		goto out_free_dev;
	}
	loaded = helper_mirror_open(d, a->mirror, a->ticket.image,
				    a->base_version, present, dirty, out,
				    outlen);
	if (loaded < 0) {
		ret = loaded;
		goto out_free_dev;
	}
	ret = helper_add_device(d, present, dirty, out, outlen);
	if (ret)
		goto out_free_dev;
	/* known before START: no MISS can arrive for an unknown device */
	helper_dev_add(h, d);
	ret = helper_dev_reg_write(d);
	if (ret) {
		snprintf(out, outlen, "cannot write the registry entry %s/vmir%u: %s",
			 h->reg_dir, d->id, strerror(-ret));
		goto out_remove;
	}
	ret = helper_simple(h, VMIR_CMD_START_DEVICE, d->id, emsg,
			    sizeof(emsg));
	if (ret) {
		snprintf(out, outlen, "START_DEVICE of vmir%u failed: %s%s%s",
			 d->id, strerror(-ret), emsg[0] ? ": " : "", emsg);
		goto out_reg;
	}
	vmir_info("attached %s@%u as /dev/vmir%u, mirror %s%s", d->image,
		  d->version, d->id, d->dir, loaded ? " (resumed)" : "");
	helper_learn_attached(d, a->prefetch);
	snprintf(out, outlen, "/dev/vmir%u", d->id);
	ret = 0;
	goto out_free_maps;

out_reg:
	helper_reg_remove(h->reg_dir, d->id);
out_remove:
	helper_simple(h, VMIR_CMD_REMOVE_DEVICE, d->id, NULL, 0);
	/* on the list: the loop frees it once no fetch refers to it */
	helper_dev_drop(d);
	goto out_free_maps;
out_free_dev:
	helper_dev_free(d);
out_free_maps:
	free(present);
	free(dirty);
	return ret;
}

/* vmir_version_open_async() callback of an attach */
static void helper_attach_opened(void *arg, struct vmir_version *v, int err,
				 const char *why)
{
	struct helper_attach *a = arg;
	char out[HELPER_MSG_MAX - 32];
	struct helper_dev *d;
	int ret = err;

	if (err) {
		snprintf(out, sizeof(out), "%s", why);
		goto out;
	}
	d = helper_dev_new(a->h);
	if (!d) {
		vmir_version_close(v);
		ret = -ENOMEM;
		snprintf(out, sizeof(out), "out of memory");
		goto out;
	}
	helper_dev_use_version(d, v);
	ret = helper_attach_device(a, d, out, sizeof(out));
out:
	helper_ctl_reply(a->fd, ret, out);
	free(a);
}

/*
 * The publish of a commit cut by a crash, sent again from its ticket, has
 * an outcome: open the version it made (the device goes on from it; for
 * a commit --to, version 1 of the new image), or, when it lost to another
 * publish (or the --to name was taken), the version asked for (the
 * commit's chunks stay dirty).
 */
static void helper_attach_published(void *arg,
				    const struct vmir_version_info *vi,
				    int err, const char *why)
{
	struct helper_attach *a = arg;
	char out[HELPER_MSG_MAX - 32];
	uint32_t version = a->version;
	int ret;

	if (err == -ESTALE || err == -EEXIST) {
		vmir_warn("%s: the commit of %s@%u cut by a crash never published (%s): its chunks stay dirty",
			  a->mirror, a->ticket.image, a->ticket.base_version,
			  why);
		ret = helper_pub_remove(a->mirror);
		if (ret)
			vmir_warn("cannot remove %s/commit.pub: %s", a->mirror,
				  strerror(-ret));
	} else if (err) {
		snprintf(out, sizeof(out),
			 "%.512s holds a commit of %s@%u cut by a crash after its publish was sent, whose outcome is unknown: %s; attach again once the version server answers",
			 a->mirror, a->ticket.image, a->ticket.base_version,
			 why);
		goto out_fail;
	} else if (version && version != vi->version &&
		   (version != a->ticket.base_version ||
		    strcmp(a->name, a->ticket.image))) {
		snprintf(out, sizeof(out),
			 "%.512s holds %s@%u's commit, published as %s@%u after a crash: attach %s@%u with it, not %s@%u",
			 a->mirror, a->ticket.image, a->ticket.base_version,
			 vi->image, vi->version, vi->image, vi->version,
			 a->name, version);
		err = -EEXIST;
		goto out_fail;
	} else {
		snprintf(a->name, sizeof(a->name), "%s", vi->image);
		a->base_version = a->ticket.base_version;
		version = vi->version;
	}
	err = vmir_version_open_async(a->h->c, a->name, version,
				      helper_attach_opened, a);
	if (!err)
		return;
	snprintf(out, sizeof(out), "%s", vmir_client_error(a->h->c));
out_fail:
	helper_ctl_reply(a->fd, err, out);
	free(a);
}

/*
 * Is a's mirror directory that of a device whose node went down in a
 * commit after sending its publish (a ticket, no saved state)? 1: send
 * that publish again first; 0: no; -errno with out set.
 */
static int helper_attach_ticket(struct helper_attach *a, char *out,
				size_t outlen)
{
	char path[PATH_MAX + 16];
	int ret;

	if (!a->mirror[0])
		return 0;
	snprintf(path, sizeof(path), "%s/state", a->mirror);
	if (!access(path, F_OK))
		return 0;
	ret = helper_pub_load(a->mirror, &a->ticket, out, outlen);
	if (ret < 0) {
		snprintf(out + strlen(out), outlen - strlen(out),
			 "; it is the publish of a commit cut by a crash: remove it to give that commit up (its chunks stay dirty)");
		return ret;
	}
	return ret == 1 && (!strcmp(a->ticket.image, a->name) ||
			    (a->ticket.to[0] && !strcmp(a->ticket.to, a->name)));
}

/*
 * ATTACH: returns 1 when the attach runs and owns fd (the reply comes when
 * it ends), else -errno with out set.
 */
int helper_attach(struct helper *h, const char *name, uint32_t version,
		  const char *mirror, bool prefetch, int fd, char *out,
		  size_t outlen)
{
	struct helper_attach *a;
	int ret;

	if (strlen(mirror) >= sizeof(a->mirror) - 64 ||
	    strchr(mirror, '\n')) {
		snprintf(out, outlen,
			 "the mirror directory name is longer than %zu bytes or holds a newline: use another",
			 sizeof(a->mirror) - 65);
		return -EINVAL;
	}
	a = calloc(1, sizeof(*a));
	if (!a) {
		snprintf(out, outlen, "out of memory");
		return -ENOMEM;
	}
	a->h = h;
	a->fd = fd;
	snprintf(a->name, sizeof(a->name), "%s", name);
	a->version = version;
	a->prefetch = prefetch;
	snprintf(a->mirror, sizeof(a->mirror), "%s", mirror);
	ret = helper_attach_ticket(a, out, outlen);
	if (ret < 0) {
		free(a);
		return ret;
	}
	if (ret) {
		ret = vmir_publish_async(h->c, &a->ticket,
					 helper_attach_published, a);
		if (!ret) {
			vmir_info("attaching %s: %s holds a commit of version %u cut by a crash after its publish was sent; sending it again (same token) to learn whether it won",
				  name, mirror, a->ticket.base_version);
			return 1;
		}
	} else {
		ret = vmir_version_open_async(h->c, name, version,
					      helper_attach_opened, a);
	}
	if (ret) {
		snprintf(out, outlen, "%s", vmir_client_error(h->c));
		free(a);
		return ret;
	}
	vmir_info("attaching %s@%u: opening the version", name, version);
	return 1;
}

/* --- detach ------------------------------------------------------------------ */

int helper_detach(struct helper *h, uint32_t id, char *out, size_t outlen)
{
	struct helper_dev *d = helper_dev_find(h, id);
	uint8_t *present, *dirty, *commit;
	char emsg[VMIR_NL_MSG_MAX];
	struct helper_mirror m;
	size_t mb, i;
	int ret;

	if (!d) {
		snprintf(out, outlen, "/dev/vmir%u is not served by this helper",
			 id);
		return -ENODEV;
	}
	if (d->commit) {
		snprintf(out, outlen,
			 "a commit of /dev/vmir%u is in progress: detach it when the commit has ended",
			 id);
		return -EBUSY;
	}
	if (!d->v) {
		snprintf(out, outlen,
			 "/dev/vmir%u is being adopted (its version opens): detach it in a moment",
			 id);
		return -EAGAIN;
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
	ret = helper_simple(h, VMIR_CMD_STOP_DEVICE, id, emsg, sizeof(emsg));
	if (ret && ret != -EALREADY) {
		snprintf(out, outlen, "STOP_DEVICE of vmir%u failed: %s%s%s", id,
			 strerror(-ret), emsg[0] ? ": " : "", emsg);
		goto out_free;
	}
	/* the device is stopped: its access order is final */
	helper_learn_now(d, "detach");
	if (fsync(d->mirror_fd)) {
		ret = -errno;
		snprintf(out, outlen,
			 "fsync of %s/mirror failed: %s (vmir%u is stopped; detach it again)",
			 d->dir, strerror(errno), id);
		goto out_free;
	}
	ret = helper_get_state(d, present, dirty, commit);
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
	ret = helper_simple(h, VMIR_CMD_REMOVE_DEVICE, id, emsg, sizeof(emsg));
	if (ret) {
		snprintf(out, outlen, "REMOVE_DEVICE of vmir%u failed: %s%s%s",
			 id, strerror(-ret), emsg[0] ? ": " : "", emsg);
		goto out_free;
	}
	helper_reg_remove(h->reg_dir, id);
	vmir_info("detached /dev/vmir%u; mirror and state kept in %s", id,
		  d->dir);
	helper_copy(out, outlen, d->dir);
	helper_dev_drop(d);
out_free:
	free(present);
	free(dirty);
	free(commit);
	return ret;
}

/* --- adoption ---------------------------------------------------------------- */

/* the version of an adopted device is open (or failed to) */
static void helper_adopt_opened(void *arg, struct vmir_version *v, int err,
				const char *why)
{
	struct helper_dev *d = arg;
	struct helper *h = d->h;
	char path[PATH_MAX + 16], out[512];
	uint32_t version = d->version;

	if (err) {
		vmir_err("/dev/vmir%u is not served, its misses fail: %s",
			 d->id, why);
		goto out_fail;
	}
	helper_dev_use_version(d, v);
	if (d->version != version) {
		vmir_err("/dev/vmir%u is at %s@%u but the version server has a different version %u",
			 d->id, d->image, version, d->version);
		goto out_fail;
	}
	/* read-ahead starts from the misses this helper sees */
	d->seen = calloc(1, helper_map_bytes(d->nchunks));
	snprintf(path, sizeof(path), "%s/mirror", d->dir);
	d->mirror_fd = open(path, O_RDWR | O_CLOEXEC);
	if (d->mirror_fd < 0) {
		vmir_err("/dev/vmir%u: cannot open its mirror %s: %s", d->id,
			 path, strerror(errno));
		goto out_fail;
	}
	if (d->stopped) {
		/* the previous helper died in the middle of a detach */
		vmir_info("finishing the detach of /dev/vmir%u", d->id);
		if (helper_detach(h, d->id, out, sizeof(out)))
			vmir_err("%s", out);
		return;
	}
	vmir_info("serving existing /dev/vmir%u (%s@%u, mirror %s)", d->id,
		  d->image, d->version, d->dir);
	helper_fetch_waiting(d);
	return;

out_fail:
	/* what waited fails now; later misses get ENODEV */
	for (; d->waiting.n; d->waiting.n--)
		helper_batch_add(&d->failed,
				 d->waiting.chunks[d->waiting.n - 1]);
	helper_dev_drop(d);
}

/*
 * Serve the devices a previous helper attached: LIST, and for each device
 * with a registry entry, open its version (asynchronously). A commit of
 * the previous helper ends as published if its PUBLISH was sent (and
 * then the new version opens), else cancelled (its chunks become dirty
 * again): helper_commit_adopt(). A device left stopped by a detach that
 * died is detached.
 */
int helper_adopt(struct helper *h)
{
	struct vmir_nl_dev *l = NULL;
	struct helper_dev *d;
	char emsg[VMIR_NL_MSG_MAX], err[PATH_MAX + 256];
	uint32_t regver;
	size_t n = 0, i;
	int ret;

	ret = vmir_nl_list(&h->req, &l, &n, emsg, sizeof(emsg));
	if (ret) {
		vmir_err("listing the devices failed: %s%s%s", strerror(-ret),
			 emsg[0] ? ": " : "", emsg);
		return ret;
	}
	for (i = 0; i < n; i++) {
		d = helper_dev_new(h);
		if (!d) {
			ret = -ENOMEM;
			break;
		}
		d->id = l[i].id;
		ret = helper_reg_read(h->reg_dir, d->id, d->dir, d->image,
				      &regver, err, sizeof(err));
		if (ret) {
			vmir_warn("/dev/vmir%u is not served, its misses will fail: %s; write a correct entry (dir=, image=, version= lines) and restart vmir-helper",
				  d->id, err);
			helper_dev_free(d);
			continue;
		}
		/* the module's version is the latest committed one */
		d->version = l[i].version ? l[i].version : regver;
		/* stopped: finish the detach once the version is open */
		d->stopped = l[i].state == VMIR_DEV_STATE_STOPPED;
		if (l[i].flags & VMIR_DEV_F_COMMIT)
			ret = helper_commit_adopt(d, helper_adopt_opened);
		else
			ret = vmir_version_open_async(h->c, d->image,
						      d->version,
						      helper_adopt_opened, d);
		if (ret) {
			vmir_err("/dev/vmir%u is not served: %s", d->id,
				 vmir_client_error(h->c));
			helper_dev_free(d);
			continue;
		}
		/* on the list at once: misses for it wait for its version */
		helper_dev_add(h, d);
	}
	free(l);
	return ret == -ENOMEM ? ret : 0;
}
