// SPDX-License-Identifier: GPL-2.0
/*
 * chunkd object store, see chunkd_store.h.
 *
 * PUT:  (unpack a packed one ->) verify id -> present? ack (dedup) ->
 *       open DIR/tmp/<hex>.<n> ->
 *       ring: WRITE linked to FDATASYNC (repeated on a short write) ->
 *       close, rename into objects/XX (<hex>, or <hex>.z packed) ->
 *       ring: FSYNC objects/XX -> ack.
 * GET:  open objects/XX/<hex> or <hex>.z -> fstat (1..VMIR_DATA_MAX) ->
 *       ring: READ until complete -> reply (packed or not, as stored).
 * Open, rename and unlink are synchronous; they do not wait for the disk.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chunkd_store.h"
#include "vmir_util.h"

#define CHUNKD_HEX_LEN		(2 * VMIR_ID_LEN)
#define CHUNKD_NSUB		256
#define CHUNKD_TMP_NAME_MAX	(CHUNKD_HEX_LEN + 24)
#define CHUNKD_ZSUFFIX		".z"	/* a packed object: a zstd frame */
#define CHUNKD_NAME_MAX		(CHUNKD_HEX_LEN + sizeof(CHUNKD_ZSUFFIX))

struct chunkd_store {
	struct srv *srv;
	char *dir;
	int dirfd;
	int lockfd;
	int objfd;
	int tmpfd;
	int subfd[CHUNKD_NSUB];
	/* renames into objects/XX whose directory fsync is in flight */
	unsigned int unsynced[CHUNKD_NSUB];
	uint64_t tmp_seq;
	unsigned int pending;
	uint8_t *unpacked;	/* a packed PUT's content, to verify it */
	struct chunkd_stat stat;
};

struct chunkd_put_op {
	struct srv_io io_write;
	struct srv_io io_sync;
	struct srv_io io_dirsync;
	struct chunkd_store *st;
	struct vmir_id id;
	char hex[CHUNKD_HEX_LEN + 1];
	char name[CHUNKD_NAME_MAX];	/* in objects/XX */
	char tmpname[CHUNKD_TMP_NAME_MAX];
	const uint8_t *data;
	uint32_t len;
	uint32_t written;
	int fd;
	int wres, sres;
	unsigned int outstanding;
	bool renamed;		/* counts in st->unsynced */
	chunkd_put_cb cb;
	void *arg;
};

struct chunkd_get_op {
	struct srv_io io;
	struct chunkd_store *st;
	char hex[CHUNKD_NAME_MAX];	/* the file's name */
	int fd;
	uint8_t *buf;
	uint32_t len;
	uint32_t done;
	bool packed;
	chunkd_get_cb cb;
	void *arg;
};

#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

static bool chunkd_name_is_object(const char *name, unsigned int sub)
{
	char hex[CHUNKD_HEX_LEN + 1];
	size_t len = strlen(name);
	struct vmir_id id;

	if (len != CHUNKD_HEX_LEN &&
	    (len != CHUNKD_NAME_MAX - 1 ||
	     strcmp(name + CHUNKD_HEX_LEN, CHUNKD_ZSUFFIX)))
		return false;
	memcpy(hex, name, CHUNKD_HEX_LEN);
	hex[CHUNKD_HEX_LEN] = '\0';
	if (vmir_id_from_hex(hex, &id) < 0)
		return false;
	/* lower case only: the name must be exactly what we would write */
	for (const char *p = hex; *p; p++)
		if (*p >= 'A' && *p <= 'F')
			return false;
	return id.b[0] == sub;
}

/* --- open / close ------------------------------------------------------- */

static int chunkd_mkdirat(int dirfd, const char *base, const char *name)
{
	if (mkdirat(dirfd, name, 0755) < 0 && errno != EEXIST) {
		int ret = -errno;

		vmir_err("cannot create directory %s/%s: %s", base, name,
			 strerror(errno));
		return ret;
	}
	return 0;
}

static int chunkd_opendirat(int dirfd, const char *base, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0) {
		int ret = -errno;

		vmir_err("cannot open directory %s/%s: %s", base, name,
			 strerror(errno));
		return ret;
	}
	return fd;
}

/* remove unfinished writes left by a crash */
static int chunkd_clean_tmp(struct chunkd_store *st)
{
	struct dirent *de;
	unsigned int n = 0;
	DIR *d;
	int fd, ret = 0;

	fd = dup(st->tmpfd);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		ret = -errno;
		close(fd);
		return ret;
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (unlinkat(st->tmpfd, de->d_name, 0) < 0) {
			ret = -errno;
			vmir_err("cannot remove %s/tmp/%s: %s; remove it by hand",
				 st->dir, de->d_name, strerror(errno));
			break;
		}
		n++;
	}
	closedir(d);
	if (n)
		vmir_info("removed %u unfinished writes from %s/tmp", n,
			  st->dir);
	return ret;
}

/* count the objects of objects/XX */
static int chunkd_scan_sub(struct chunkd_store *st, unsigned int sub)
{
	struct dirent *de;
	struct stat sb;
	DIR *d;
	int fd, ret = 0;

	fd = dup(st->subfd[sub]);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		ret = -errno;
		close(fd);
		return ret;
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!chunkd_name_is_object(de->d_name, sub) ||
		    fstatat(st->subfd[sub], de->d_name, &sb,
			    AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(sb.st_mode)) {
			vmir_warn("ignoring %s/objects/%02x/%s: not an object "
				  "file", st->dir, sub, de->d_name);
			continue;
		}
		st->stat.objects++;
		st->stat.bytes += (uint64_t)sb.st_size;
	}
	closedir(d);
	return ret;
}

int chunkd_store_open(const char *dir, struct srv *srv,
		      struct chunkd_store **out)
{
	struct chunkd_store *st;
	char sub[3];
	int ret;

	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->srv = srv;
	st->dirfd = st->lockfd = st->objfd = st->tmpfd = -1;
	for (int i = 0; i < CHUNKD_NSUB; i++)
		st->subfd[i] = -1;
	st->dir = strdup(dir);
	st->unpacked = malloc(VMIR_DATA_MAX);
	if (!st->dir || !st->unpacked) {
		ret = -ENOMEM;
		goto out_close;
	}

	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		ret = -errno;
		vmir_err("cannot create data directory %s: %s", dir,
			 strerror(errno));
		goto out_close;
	}
	st->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (st->dirfd < 0) {
		ret = -errno;
		vmir_err("cannot open data directory %s: %s", dir,
			 strerror(errno));
		goto out_close;
	}
	st->lockfd = openat(st->dirfd, "chunkd.lock",
			    O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (st->lockfd < 0) {
		ret = -errno;
		vmir_err("cannot create %s/chunkd.lock: %s", dir,
			 strerror(errno));
		goto out_close;
	}
	if (flock(st->lockfd, LOCK_EX | LOCK_NB) < 0) {
		ret = -errno;
		if (ret == -EWOULDBLOCK)
			ret = -EBUSY;
		vmir_err("data directory %s is in use by another vmir-chunkd "
			 "(%s/chunkd.lock is locked)", dir, dir);
		goto out_close;
	}
	ret = chunkd_mkdirat(st->dirfd, dir, "objects");
	if (ret < 0)
		goto out_close;
	ret = chunkd_mkdirat(st->dirfd, dir, "tmp");
	if (ret < 0)
		goto out_close;
	ret = st->objfd = chunkd_opendirat(st->dirfd, dir, "objects");
	if (ret < 0)
		goto out_close;
	ret = st->tmpfd = chunkd_opendirat(st->dirfd, dir, "tmp");
	if (ret < 0)
		goto out_close;
	ret = chunkd_clean_tmp(st);
	if (ret < 0)
		goto out_close;

	for (unsigned int i = 0; i < CHUNKD_NSUB; i++) {
		snprintf(sub, sizeof(sub), "%02x", i);
		ret = chunkd_mkdirat(st->objfd, dir, sub);
		if (ret < 0)
			goto out_close;
		ret = st->subfd[i] = chunkd_opendirat(st->objfd, dir, sub);
		if (ret < 0)
			goto out_close;
		ret = chunkd_scan_sub(st, i);
		if (ret < 0) {
			vmir_err("cannot scan %s/objects/%s: %s", dir, sub,
				 strerror(-ret));
			goto out_close;
		}
	}
	/* the layout itself must survive a crash */
	if (fsync(st->objfd) < 0 || fsync(st->dirfd) < 0) {
		ret = -errno;
		vmir_err("cannot fsync %s: %s", dir, strerror(errno));
		goto out_close;
	}
	*out = st;
	return 0;

out_close:
	chunkd_store_close(st);
	return ret;
}

void chunkd_store_close(struct chunkd_store *st)
{
	if (!st)
		return;
	assert(st->pending == 0);
	for (int i = 0; i < CHUNKD_NSUB; i++)
		if (st->subfd[i] >= 0)
			close(st->subfd[i]);
	if (st->tmpfd >= 0)
		close(st->tmpfd);
	if (st->objfd >= 0)
		close(st->objfd);
	if (st->lockfd >= 0)
		close(st->lockfd);
	if (st->dirfd >= 0)
		close(st->dirfd);
	free(st->unpacked);
	free(st->dir);
	free(st);
}

void chunkd_stat(const struct chunkd_store *st, struct chunkd_stat *out)
{
	*out = st->stat;
}

unsigned int chunkd_pending(const struct chunkd_store *st)
{
	return st->pending;
}

/* objects/XX/<hex>, or with CHUNKD_ZSUFFIX when packed */
static void chunkd_name(const struct vmir_id *id, bool packed, char *name)
{
	vmir_id_to_hex(id, name);
	if (packed)
		strcpy(name + CHUNKD_HEX_LEN, CHUNKD_ZSUFFIX);
}

int chunkd_has(struct chunkd_store *st, const struct vmir_id *id)
{
	char name[CHUNKD_NAME_MAX];
	struct stat sb;
	int packed;

	for (packed = 0; packed < 2; packed++) {
		chunkd_name(id, packed, name);
		if (fstatat(st->subfd[id->b[0]], name, &sb, 0) == 0)
			return 1;
		if (errno != ENOENT) {
			int ret = -errno;

			vmir_err("cannot stat %s/objects/%02x/%s: %s", st->dir,
				 id->b[0], name, strerror(errno));
			return ret;
		}
	}
	return 0;
}

/* --- PUT ----------------------------------------------------------------- */

static void chunkd_put_finish(struct chunkd_put_op *op, int err)
{
	struct chunkd_store *st = op->st;

	if (op->fd >= 0)
		close(op->fd);
	if (op->tmpname[0])
		unlinkat(st->tmpfd, op->tmpname, 0);
	if (op->renamed) {
		assert(st->unsynced[op->id.b[0]] > 0);
		st->unsynced[op->id.b[0]]--;
	}
	if (err)
		vmir_warn("storing object %s failed: %s", op->hex,
			  strerror(-err));
	assert(st->pending > 0);
	st->pending--;
	op->cb(op->arg, err);
	free(op);
}

static void chunkd_put_dirsynced(struct srv_io *io, int res)
{
	struct chunkd_put_op *op =
		container_of(io, struct chunkd_put_op, io_dirsync);

	if (res < 0)
		vmir_err("fsync of %s/objects/%02x failed: %s", op->st->dir,
			 op->id.b[0], strerror(-res));
	chunkd_put_finish(op, res < 0 ? res : 0);
}

/* make the directory entry of an object durable, then finish */
static void chunkd_put_sync_dir(struct chunkd_put_op *op)
{
	struct chunkd_store *st = op->st;
	struct io_uring_sqe *sqe;

	sqe = srv_get_sqe(st->srv);
	io_uring_prep_fsync(sqe, st->subfd[op->id.b[0]], 0);
	srv_io_bind(st->srv, sqe, &op->io_dirsync);
}

/* content is durable in tmp/: move it into place */
static void chunkd_put_commit(struct chunkd_put_op *op)
{
	struct chunkd_store *st = op->st;
	unsigned int sub = op->id.b[0];
	int ret;

	close(op->fd);
	op->fd = -1;
	ret = chunkd_has(st, &op->id);
	if (ret < 0) {
		chunkd_put_finish(op, ret);
		return;
	}
	if (ret) {
		/* a concurrent PUT of the same object won */
		st->stat.dedup++;
		op->renamed = true;
		st->unsynced[sub]++;
		chunkd_put_sync_dir(op);
		return;
	}
	if (renameat(st->tmpfd, op->tmpname, st->subfd[sub], op->name) < 0) {
		ret = -errno;
		vmir_err("cannot rename %s/tmp/%s into objects/%02x: %s",
			 st->dir, op->tmpname, sub, strerror(errno));
		chunkd_put_finish(op, ret);
		return;
	}
	op->tmpname[0] = '\0';
	op->renamed = true;
	st->unsynced[sub]++;
	st->stat.objects++;
	st->stat.bytes += op->len;
	st->stat.puts++;
	chunkd_put_sync_dir(op);
}

static void chunkd_put_submit(struct chunkd_put_op *op)
{
	struct chunkd_store *st = op->st;
	struct io_uring_sqe *sqe;

	sqe = srv_get_sqe(st->srv);
	io_uring_prep_write(sqe, op->fd, op->data + op->written,
			    op->len - op->written, op->written);
	sqe->flags |= IOSQE_IO_LINK;
	srv_io_bind(st->srv, sqe, &op->io_write);
	sqe = srv_get_sqe(st->srv);
	io_uring_prep_fsync(sqe, op->fd, IORING_FSYNC_DATASYNC);
	srv_io_bind(st->srv, sqe, &op->io_sync);
	op->outstanding = 2;
}

/* both the write and the linked fsync have completed */
static void chunkd_put_step(struct chunkd_put_op *op)
{
	if (--op->outstanding)
		return;
	if (op->wres < 0) {
		chunkd_put_finish(op, op->wres);
		return;
	}
	if (op->wres == 0) {
		chunkd_put_finish(op, -EIO);
		return;
	}
	op->written += (uint32_t)op->wres;
	if (op->written < op->len) {
		/* short write: the linked fsync was cancelled, go again */
		chunkd_put_submit(op);
		return;
	}
	if (op->sres < 0) {
		vmir_err("fdatasync of %s/tmp/%s failed: %s", op->st->dir,
			 op->tmpname, strerror(-op->sres));
		chunkd_put_finish(op, op->sres);
		return;
	}
	chunkd_put_commit(op);
}

static void chunkd_put_written(struct srv_io *io, int res)
{
	struct chunkd_put_op *op =
		container_of(io, struct chunkd_put_op, io_write);

	op->wres = res;
	chunkd_put_step(op);
}

static void chunkd_put_synced(struct srv_io *io, int res)
{
	struct chunkd_put_op *op =
		container_of(io, struct chunkd_put_op, io_sync);

	op->sres = res;
	chunkd_put_step(op);
}

void chunkd_put(struct chunkd_store *st, const struct vmir_id *id,
		const void *data, uint32_t len, bool packed, chunkd_put_cb cb,
		void *arg)
{
	struct chunkd_put_op *op;
	struct vmir_id got;
	int64_t n;
	int ret;

	if (len == 0 || len > VMIR_DATA_MAX) {
		cb(arg, -EINVAL);
		return;
	}
	if (packed) {
		/* the id is the content's: unpack to check it, keep packed */
		n = vmir_zunpack(st->unpacked, VMIR_DATA_MAX, data, len);
		if (n < 0) {
			cb(arg, (int)n);
			return;
		}
		vmir_id_of(st->unpacked, (size_t)n, &got);
	} else {
		vmir_id_of(data, len, &got);
	}
	if (!vmir_id_eq(&got, id)) {
		cb(arg, -EBADMSG);
		return;
	}
	op = calloc(1, sizeof(*op));
	if (!op) {
		cb(arg, -ENOMEM);
		return;
	}
	op->io_write.done = chunkd_put_written;
	op->io_sync.done = chunkd_put_synced;
	op->io_dirsync.done = chunkd_put_dirsynced;
	op->st = st;
	op->id = *id;
	op->data = data;
	op->len = len;
	op->fd = -1;
	op->cb = cb;
	op->arg = arg;
	vmir_id_to_hex(id, op->hex);
	chunkd_name(id, packed, op->name);
	st->pending++;

	ret = chunkd_has(st, id);
	if (ret < 0) {
		chunkd_put_finish(op, ret);
		return;
	}
	if (ret) {
		st->stat.dedup++;
		if (st->unsynced[id->b[0]]) {
			/* its rename may not be durable yet */
			op->renamed = true;
			st->unsynced[id->b[0]]++;
			chunkd_put_sync_dir(op);
		} else {
			chunkd_put_finish(op, 0);
		}
		return;
	}
	snprintf(op->tmpname, sizeof(op->tmpname), "%s.%" PRIu64, op->hex,
		 st->tmp_seq++);
	op->fd = openat(st->tmpfd, op->tmpname,
			O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (op->fd < 0) {
		ret = -errno;
		vmir_err("cannot create %s/tmp/%s: %s", st->dir, op->tmpname,
			 strerror(errno));
		op->tmpname[0] = '\0';
		chunkd_put_finish(op, ret);
		return;
	}
	chunkd_put_submit(op);
}

/* --- GET ----------------------------------------------------------------- */

static void chunkd_get_finish(struct chunkd_get_op *op, int err)
{
	struct chunkd_store *st = op->st;
	uint8_t *buf = NULL;

	if (op->fd >= 0)
		close(op->fd);
	if (err) {
		free(op->buf);
	} else {
		buf = op->buf;
		st->stat.gets++;
	}
	assert(st->pending > 0);
	st->pending--;
	op->cb(op->arg, err, buf, err ? 0 : op->len, op->packed);
	free(op);
}

static void chunkd_get_submit(struct chunkd_get_op *op)
{
	struct io_uring_sqe *sqe = srv_get_sqe(op->st->srv);

	io_uring_prep_read(sqe, op->fd, op->buf + op->done, op->len - op->done,
			   op->done);
	srv_io_bind(op->st->srv, sqe, &op->io);
}

static void chunkd_get_read_done(struct srv_io *io, int res)
{
	struct chunkd_get_op *op = container_of(io, struct chunkd_get_op, io);

	if (res < 0) {
		vmir_err("reading %s/objects/%.2s/%s: %s", op->st->dir,
			 op->hex, op->hex, strerror(-res));
		chunkd_get_finish(op, res);
		return;
	}
	if (res == 0) {
		vmir_err("%s/objects/%.2s/%s shrank while reading it",
			 op->st->dir, op->hex, op->hex);
		chunkd_get_finish(op, -EIO);
		return;
	}
	op->done += (uint32_t)res;
	if (op->done < op->len)
		chunkd_get_submit(op);
	else
		chunkd_get_finish(op, 0);
}

int chunkd_get_open(struct chunkd_store *st, const struct vmir_id *id,
		    struct chunkd_get_op **out, uint32_t *len, bool *packed)
{
	char hex[CHUNKD_NAME_MAX];
	struct chunkd_get_op *op;
	struct stat sb;
	int fd, ret;

	/* raw (every object stored before packing existed), else packed */
	*packed = false;
	chunkd_name(id, false, hex);
	fd = openat(st->subfd[id->b[0]], hex, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		*packed = true;
		chunkd_name(id, true, hex);
		fd = openat(st->subfd[id->b[0]], hex, O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0) {
		ret = -errno;
		if (ret != -ENOENT)
			vmir_err("cannot open %s/objects/%.2s/%s: %s", st->dir,
				 hex, hex, strerror(errno));
		return ret;
	}
	if (fstat(fd, &sb) < 0) {
		ret = -errno;
		vmir_err("cannot stat %s/objects/%.2s/%s: %s", st->dir, hex,
			 hex, strerror(errno));
		goto out_close;
	}
	if (!S_ISREG(sb.st_mode) || sb.st_size < 1 ||
	    (uint64_t)sb.st_size > VMIR_DATA_MAX) {
		vmir_err("object file %s/objects/%.2s/%s has bad size %lld "
			 "(want 1..%u bytes); remove it so clients use "
			 "another replica", st->dir, hex, hex,
			 (long long)sb.st_size, VMIR_DATA_MAX);
		ret = -EIO;
		goto out_close;
	}
	op = calloc(1, sizeof(*op));
	if (!op) {
		ret = -ENOMEM;
		goto out_close;
	}
	op->io.done = chunkd_get_read_done;
	op->st = st;
	op->fd = fd;
	op->len = (uint32_t)sb.st_size;
	op->packed = *packed;
	memcpy(op->hex, hex, sizeof(hex));
	st->pending++;
	*out = op;
	*len = op->len;
	return 0;

out_close:
	close(fd);
	return ret;
}

void chunkd_get_read(struct chunkd_get_op *op, chunkd_get_cb cb, void *arg)
{
	op->cb = cb;
	op->arg = arg;
	op->buf = malloc(op->len);
	if (!op->buf) {
		chunkd_get_finish(op, -ENOMEM);
		return;
	}
	chunkd_get_submit(op);
}
