// SPDX-License-Identifier: GPL-2.0
/* versiond append-only log, see versiond_log.h. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "versiond_log.h"
#include "vmir_util.h"

static const char versiond_log_magic[8] = { 'V', 'M', 'I', 'R',
					    'V', 'L', 'O', 'G' };

struct versiond_log {
	char *path;
	int dirfd;
	int fd;
	unsigned int flags;	/* VERSIOND_LOG_* */
	uint32_t version;	/* format version in the header */
	uint64_t end;
	bool broken;		/* an fdatasync failed: refuse appends */
	bool cut;		/* the open cut a corrupt tail: */
	uint64_t cut_off;	/* where */
	uint64_t cut_len;	/* how many bytes */
};

enum versiond_rec_state {
	VERSIOND_REC_OK,
	VERSIOND_REC_TORN,	/* extends past the end of the file */
	VERSIOND_REC_BAD,	/* bad magic, field or checksum */
};

static void versiond_rec_sum(const uint8_t *p, size_t len,
			     uint8_t sum[VERSIOND_REC_SUM_LEN])
{
	crypto_generichash(sum, VERSIOND_REC_SUM_LEN, p, len, NULL, 0);
}

/* check the record at off of a buf of size bytes */
static enum versiond_rec_state
versiond_rec_parse(const uint8_t *buf, uint64_t size, uint64_t off,
		   uint16_t *type, uint32_t *len, uint64_t *total)
{
	uint8_t sum[VERSIOND_REC_SUM_LEN];
	struct vmir_rbuf r;
	uint16_t reserved;
	uint32_t magic;

	if (size - off < VERSIOND_REC_HDR_LEN)
		return VERSIOND_REC_TORN;
	vmir_rbuf_init(&r, buf + off, VERSIOND_REC_HDR_LEN);
	magic = vmir_get_u32(&r);
	*type = vmir_get_u16(&r);
	reserved = vmir_get_u16(&r);
	*len = vmir_get_u32(&r);
	if (magic != VERSIOND_REC_MAGIC || reserved ||
	    *len > VERSIOND_REC_MAX)
		return VERSIOND_REC_BAD;
	*total = VERSIOND_REC_HDR_LEN + (uint64_t)*len + VERSIOND_REC_SUM_LEN;
	if (size - off < *total)
		return VERSIOND_REC_TORN;
	versiond_rec_sum(buf + off, VERSIOND_REC_HDR_LEN + *len, sum);
	if (sodium_memcmp(sum, buf + off + VERSIOND_REC_HDR_LEN + *len,
			  VERSIOND_REC_SUM_LEN))
		return VERSIOND_REC_BAD;
	return VERSIOND_REC_OK;
}

static int versiond_log_create(struct versiond_log *log)
{
	const char *tmp = VERSIOND_LOG_NAME ".tmp";
	struct vmir_wbuf w;
	int fd, ret;

	vmir_wbuf_init(&w);
	vmir_put_bytes(&w, versiond_log_magic, sizeof(versiond_log_magic));
	vmir_put_u32(&w, VERSIOND_LOG_VERSION);
	vmir_put_u32(&w, 0);
	if (w.err) {
		ret = w.err;
		goto out_free;
	}
	fd = openat(log->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		    0644);
	if (fd < 0) {
		ret = -errno;
		vmir_err("cannot create %s.tmp: %s", log->path, strerror(errno));
		goto out_free;
	}
	ret = vmir_write_full(fd, w.p, w.len);
	if (!ret && fsync(fd) < 0)
		ret = -errno;
	close(fd);
	if (!ret && renameat(log->dirfd, tmp, log->dirfd, VERSIOND_LOG_NAME) < 0)
		ret = -errno;
	if (!ret && fsync(log->dirfd) < 0)
		ret = -errno;
	if (ret) {
		vmir_err("cannot create %s: %s", log->path, strerror(-ret));
		unlinkat(log->dirfd, tmp, 0);
	} else {
		vmir_info("created a new log %s", log->path);
	}
out_free:
	vmir_wbuf_free(&w);
	return ret;
}

static int versiond_log_check_header(struct versiond_log *log,
				     const uint8_t *buf, uint64_t size)
{
	struct vmir_rbuf r;
	uint32_t version;

	if (size < VERSIOND_LOG_HDR_LEN ||
	    memcmp(buf, versiond_log_magic, sizeof(versiond_log_magic))) {
		vmir_err("%s is not a vmir-versiond log (bad header); move it "
			 "aside or point --dir elsewhere", log->path);
		return -EINVAL;
	}
	vmir_rbuf_init(&r, buf + sizeof(versiond_log_magic),
		       VERSIOND_LOG_HDR_LEN - sizeof(versiond_log_magic));
	version = vmir_get_u32(&r);
	if (version < 1 || version > VERSIOND_LOG_VERSION) {
		vmir_err("%s has format version %u; this vmir-versiond reads "
			 "versions 1 to %u: run a newer vmir-versiond", log->path,
			 version, VERSIOND_LOG_VERSION);
		return -EPROTONOSUPPORT;
	}
	log->version = version;
	return 0;
}

/*
 * Is what is left from off, where the replay stopped, the trace of an
 * append cut by a crash? That is a prefix of a record shorter than the
 * record: its header (or what there is of it) is well-formed and says more
 * bytes than are left. A filesystem may also expose an extension it had
 * not written yet as zeros. A complete record whose length field was
 * damaged also looks short: its checksum, computed with the length that
 * would fit, tells it apart.
 */
static bool versiond_tail_is_torn(const uint8_t *buf, uint64_t size,
				  uint64_t off)
{
	static const uint8_t magic[4] = { 'V', 'R', 'E', 'C' };
	const uint64_t rec_max = VERSIOND_REC_HDR_LEN + VERSIOND_REC_MAX +
				 VERSIOND_REC_SUM_LEN;
	uint8_t hdr[VERSIOND_REC_HDR_LEN], sum[VERSIOND_REC_SUM_LEN];
	uint64_t left = size - off, fit;
	crypto_generichash_state st;
	struct vmir_rbuf r;
	uint32_t len;
	bool zero = true;

	for (uint64_t i = 0; i < left && zero; i++)
		zero = !buf[off + i];
	if (zero)
		return left < rec_max;
	if (left < VERSIOND_REC_HDR_LEN) {
		/* only the magic and type are certain to be known */
		return !memcmp(buf + off, magic, left < 4 ? left : 4) &&
		       (left < 8 || (!buf[off + 6] && !buf[off + 7]));
	}
	vmir_rbuf_init(&r, buf + off, VERSIOND_REC_HDR_LEN);
	if (vmir_get_u32(&r) != VERSIOND_REC_MAGIC)
		return false;
	vmir_get_u16(&r);
	if (vmir_get_u16(&r))
		return false;
	len = vmir_get_u32(&r);
	if (len > VERSIOND_REC_MAX ||
	    VERSIOND_REC_HDR_LEN + (uint64_t)len + VERSIOND_REC_SUM_LEN <= left)
		return false;
	if (left < VERSIOND_REC_HDR_LEN + VERSIOND_REC_SUM_LEN)
		return true;
	/* a complete record with a damaged length field? */
	fit = left - VERSIOND_REC_HDR_LEN - VERSIOND_REC_SUM_LEN;
	memcpy(hdr, buf + off, sizeof(hdr));
	hdr[8] = fit & 0xff;
	hdr[9] = (fit >> 8) & 0xff;
	hdr[10] = (fit >> 16) & 0xff;
	hdr[11] = (fit >> 24) & 0xff;
	crypto_generichash_init(&st, NULL, 0, sizeof(sum));
	crypto_generichash_update(&st, hdr, sizeof(hdr));
	crypto_generichash_update(&st, buf + off + sizeof(hdr), fit);
	crypto_generichash_final(&st, sum, sizeof(sum));
	return sodium_memcmp(sum, buf + size - VERSIOND_REC_SUM_LEN,
			     sizeof(sum)) != 0;
}

/* the first valid record after off, or 0 */
static uint64_t versiond_log_next_valid(const uint8_t *buf, uint64_t size,
					uint64_t off)
{
	uint64_t total;
	uint32_t len;
	uint16_t type;

	for (uint64_t o = off + 1; o + VERSIOND_REC_HDR_LEN +
	     VERSIOND_REC_SUM_LEN <= size; o++) {
		if (versiond_rec_parse(buf, size, o, &type, &len, &total) ==
		    VERSIOND_REC_OK)
			return o;
	}
	return 0;
}

/*
 * Copy what the recovery cuts to DIR/versiond.log.cut-OFF-TIME, durably,
 * before anything is cut.
 */
static int versiond_log_keep_cut(struct versiond_log *log, const uint8_t *buf,
				 uint64_t size, uint64_t off)
{
	char name[96];
	int fd, ret;

	snprintf(name, sizeof(name), "%s.cut-%" PRIu64 "-%lld",
		 VERSIOND_LOG_NAME, off, (long long)time(NULL));
	fd = openat(log->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		    0644);
	if (fd < 0) {
		ret = -errno;
		goto out_err;
	}
	ret = vmir_write_full(fd, buf + off, size - off);
	if (!ret && fsync(fd) < 0)
		ret = -errno;
	close(fd);
	if (!ret && fsync(log->dirfd) < 0)
		ret = -errno;
	if (ret < 0) {
		unlinkat(log->dirfd, name, 0);
		goto out_err;
	}
	/* log->path is DIR/versiond.log, the copy DIR/versiond.log.cut-... */
	vmir_warn("--recover-log: the %" PRIu64 " bytes from offset %" PRIu64
		  " of %s are kept in %s%s", size - off, off, log->path,
		  log->path, name + strlen(VERSIOND_LOG_NAME));
	return 0;

out_err:
	vmir_err("%s: cannot keep a copy of the corrupt tail in %s: %s; "
		 "nothing was cut", log->path, name, strerror(-ret));
	return ret;
}

static int versiond_log_truncate(struct versiond_log *log, uint64_t off)
{
	int ret;

	if (ftruncate(log->fd, (off_t)off) < 0 || fsync(log->fd) < 0) {
		ret = -errno;
		vmir_err("cannot truncate %s to %" PRIu64 " bytes: %s",
			 log->path, off, strerror(errno));
		return ret;
	}
	return 0;
}

/*
 * The replay stopped at off: drop a torn last record; refuse corruption,
 * or with VERSIOND_LOG_RECOVER cut it after keeping a copy.
 */
static int versiond_log_tail(struct versiond_log *log, const uint8_t *buf,
			     uint64_t size, uint64_t off)
{
	uint64_t next = versiond_log_next_valid(buf, size, off);
	int ret;

	if (!next && versiond_tail_is_torn(buf, size, off)) {
		vmir_warn("%s: dropping an incomplete record at the end of the "
			  "log (%" PRIu64 " bytes at offset %" PRIu64 "): an "
			  "append cut by a crash, never acknowledged",
			  log->path, size - off, off);
		return versiond_log_truncate(log, off);
	}
	if (!(log->flags & VERSIOND_LOG_RECOVER)) {
		if (next)
			vmir_err("%s: record at offset %" PRIu64 " is corrupt "
				 "and followed by a valid record at offset %"
				 PRIu64 "; refusing to start", log->path, off,
				 next);
		else
			vmir_err("%s: the last record, at offset %" PRIu64
				 " (%" PRIu64 " bytes), is complete but fails "
				 "its check: the log is corrupt, not torn by a "
				 "crash; refusing to start", log->path, off,
				 size - off);
		vmir_err("keep a copy of %s and restore it from a backup, or "
			 "start vmir-versiond once with --recover-log to cut "
			 "the log at offset %" PRIu64 " (the cut bytes are "
			 "kept next to it; what they recorded is lost)",
			 log->path, off);
		return -EUCLEAN;
	}
	ret = versiond_log_keep_cut(log, buf, size, off);
	if (ret < 0)
		return ret;
	vmir_warn("%s: --recover-log: cutting %" PRIu64 " bytes at offset %"
		  PRIu64 " (corrupt record%s); changes recorded there are "
		  "lost", log->path, size - off, off,
		  next ? " followed by valid ones" : "");
	ret = versiond_log_truncate(log, off);
	if (ret < 0)
		return ret;
	log->cut = true;
	log->cut_off = off;
	log->cut_len = size - off;
	return 0;
}

static int versiond_log_replay(struct versiond_log *log, versiond_replay_fn fn,
			       void *arg)
{
	uint8_t *buf = NULL;
	struct stat sb;
	uint64_t size, off, total;
	uint32_t len;
	uint16_t type;
	int ret;

	if (fstat(log->fd, &sb) < 0)
		return -errno;
	size = (uint64_t)sb.st_size;
	buf = malloc(size ? size : 1);
	if (!buf)
		return -ENOMEM;
	ret = vmir_pread_full(log->fd, buf, size, 0);
	if (ret < 0) {
		vmir_err("cannot read %s: %s", log->path, strerror(-ret));
		goto out_free;
	}
	ret = versiond_log_check_header(log, buf, size);
	if (ret < 0)
		goto out_free;

	off = VERSIOND_LOG_HDR_LEN;
	while (off < size) {
		if (versiond_rec_parse(buf, size, off, &type, &len, &total) !=
		    VERSIOND_REC_OK)
			break;
		ret = fn(arg, type, buf + off + VERSIOND_REC_HDR_LEN, len, off);
		if (ret)
			goto out_free;
		off += total;
	}
	if (off < size) {
		ret = versiond_log_tail(log, buf, size, off);
		if (ret < 0)
			goto out_free;
	}
	log->end = off;
	ret = 0;
out_free:
	free(buf);
	return ret;
}

int versiond_log_open(const char *dir, unsigned int flags,
		      versiond_replay_fn fn, void *arg,
		      struct versiond_log **out)
{
	struct versiond_log *log;
	int ret;

	if (sodium_init() < 0)
		return -EIO;
	log = calloc(1, sizeof(*log));
	if (!log)
		return -ENOMEM;
	log->dirfd = log->fd = -1;
	log->flags = flags;
	if (asprintf(&log->path, "%s/%s", dir, VERSIOND_LOG_NAME) < 0) {
		log->path = NULL;
		ret = -ENOMEM;
		goto out_close;
	}
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		ret = -errno;
		vmir_err("cannot create data directory %s: %s", dir,
			 strerror(errno));
		goto out_close;
	}
	log->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (log->dirfd < 0) {
		ret = -errno;
		vmir_err("cannot open data directory %s: %s", dir,
			 strerror(errno));
		goto out_close;
	}
	if (flock(log->dirfd, LOCK_EX | LOCK_NB) < 0) {
		ret = errno == EWOULDBLOCK ? -EBUSY : -errno;
		vmir_err("data directory %s is in use by another "
			 "vmir-versiond", dir);
		goto out_close;
	}
	log->fd = openat(log->dirfd, VERSIOND_LOG_NAME, O_RDWR | O_CLOEXEC);
	if (log->fd < 0 && errno == ENOENT) {
		ret = versiond_log_create(log);
		if (ret < 0)
			goto out_close;
		log->fd = openat(log->dirfd, VERSIOND_LOG_NAME,
				 O_RDWR | O_CLOEXEC);
	}
	if (log->fd < 0) {
		ret = -errno;
		vmir_err("cannot open %s: %s", log->path, strerror(errno));
		goto out_close;
	}
	ret = versiond_log_replay(log, fn, arg);
	if (ret)
		goto out_close;
	*out = log;
	return 0;

out_close:
	versiond_log_close(log);
	return ret;
}

void versiond_log_close(struct versiond_log *log)
{
	if (!log)
		return;
	if (log->fd >= 0)
		close(log->fd);
	if (log->dirfd >= 0)
		close(log->dirfd);
	free(log->path);
	free(log);
}

int versiond_log_append(struct versiond_log *log, uint16_t type,
			const void *payload, uint32_t len)
{
	uint8_t sum[VERSIOND_REC_SUM_LEN];
	struct vmir_wbuf w;
	int ret;

	if (log->broken)
		return -EIO;
	if (len > VERSIOND_REC_MAX)
		return -EMSGSIZE;
	vmir_wbuf_init(&w);
	vmir_put_u32(&w, VERSIOND_REC_MAGIC);
	vmir_put_u16(&w, type);
	vmir_put_u16(&w, 0);
	vmir_put_u32(&w, len);
	vmir_put_bytes(&w, payload, len);
	if (w.err) {
		ret = w.err;
		goto out_free;
	}
	versiond_rec_sum(w.p, w.len, sum);
	vmir_put_bytes(&w, sum, sizeof(sum));
	if (w.err) {
		ret = w.err;
		goto out_free;
	}
	ret = vmir_pwrite_full(log->fd, w.p, w.len, log->end);
	if (ret < 0) {
		vmir_err("cannot append to %s: %s", log->path, strerror(-ret));
		/* drop the partial record so the next append follows a good one */
		if (ftruncate(log->fd, (off_t)log->end) < 0)
			log->broken = true;
		goto out_free;
	}
	if (fdatasync(log->fd) < 0) {
		ret = -errno;
		log->broken = true;
		vmir_err("fdatasync of %s failed: %s; refusing further changes "
			 "until vmir-versiond is restarted", log->path,
			 strerror(errno));
		goto out_free;
	}
	log->end += w.len;
out_free:
	vmir_wbuf_free(&w);
	return ret;
}

const char *versiond_log_path(const struct versiond_log *log)
{
	return log->path;
}

uint32_t versiond_log_version(const struct versiond_log *log)
{
	return log->version;
}

int versiond_log_upgrade(struct versiond_log *log, uint32_t version)
{
	uint8_t v[4] = { version & 0xff, (version >> 8) & 0xff,
			 (version >> 16) & 0xff, (version >> 24) & 0xff };
	int ret;

	if (version <= log->version)
		return 0;
	if (log->broken)
		return -EIO;
	ret = vmir_pwrite_full(log->fd, v, sizeof(v),
			       sizeof(versiond_log_magic));
	if (!ret && fdatasync(log->fd) < 0)
		ret = -errno;
	if (ret < 0) {
		log->broken = true;
		vmir_err("cannot upgrade %s to format version %u: %s",
			 log->path, version, strerror(-ret));
		return ret;
	}
	vmir_info("%s: upgraded to format version %u (older vmir-versiond "
		  "will refuse it)", log->path, version);
	log->version = version;
	return 0;
}

bool versiond_log_cut(const struct versiond_log *log, uint64_t *off,
		      uint64_t *len)
{
	*off = log->cut_off;
	*len = log->cut_len;
	return log->cut;
}
