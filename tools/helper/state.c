// SPDX-License-Identifier: GPL-2.0
/*
 * vmir-helper: the state file of a mirror, the ticket of a commit's
 * publish and the device registry (state.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "state.h"
#include "vmir_util.h"

/* --- small file helpers --------------------------------------------------- */

void helper_copy(char *dst, size_t n, const char *src)
{
	size_t len = strlen(src);

	if (len >= n)
		len = n - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

int helper_parse_u32(const char *s, uint32_t *v)
{
	uint64_t x = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		x = x * 10 + (uint64_t)(*s - '0');
		if (x > UINT32_MAX)
			return -EINVAL;
	}
	*v = (uint32_t)x;
	return 0;
}

/* mkdir path; an existing directory is fine, an existing file is not */
static int helper_mkdir_one(const char *path, mode_t mode)
{
	struct stat st;

	if (!mkdir(path, mode))
		return 0;
	if (errno != EEXIST)
		return -errno;
	if (stat(path, &st))
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

int helper_mkdir_p(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	char *p;
	int ret;

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	for (p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		ret = helper_mkdir_one(tmp, mode);
		if (ret)
			return ret;
		*p = '/';
	}
	return helper_mkdir_one(tmp, mode);
}

/* DIR/NAME.tmp, fsync, rename to DIR/NAME, fsync DIR */
int helper_write_file(const char *dir, const char *name,
		      const struct iovec *iov, int iovcnt)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	int fd, i, ret = 0;

	/* tmp is the longer one */
	if (snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, name) >=
	    (int)sizeof(tmp))
		return -ENAMETOOLONG;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	for (i = 0; i < iovcnt && !ret; i++)
		ret = vmir_write_full(fd, iov[i].iov_base, iov[i].iov_len);
	if (!ret && fsync(fd))
		ret = -errno;
	close(fd);
	if (!ret && rename(tmp, path))
		ret = -errno;
	if (!ret)
		ret = vmir_fsync_dir(dir);
	if (ret)
		unlink(tmp);
	return ret;
}

/*
 * Open DIR/NAME to read, its path in path: the fd, or -ENOENT when there
 * is none (no message), or -errno with a message in msg.
 */
static int helper_mirror_open(const char *dir, const char *name,
			      char path[PATH_MAX], char *msg, size_t msglen)
{
	int fd, ret;

	if (snprintf(path, PATH_MAX, "%s/%s", dir, name) >= PATH_MAX) {
		snprintf(msg, msglen, "mirror directory name too long: %s",
			 dir);
		return -ENAMETOOLONG;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno != ENOENT) {
		ret = -errno;
		snprintf(msg, msglen, "cannot open %s: %s", path,
			 strerror(-ret));
		return ret;
	}
	return fd < 0 ? -ENOENT : fd;
}

/* remove DIR/NAME; 0 also when there was none */
static int helper_mirror_unlink(const char *dir, const char *name)
{
	char path[PATH_MAX];

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	if (unlink(path) && errno != ENOENT)
		return -errno;
	return 0;
}

/* --- MIRROR_DIR/state ----------------------------------------------------- */

#define HELPER_STATE_MAGIC	0x54534d56u	/* "VMST" little endian */
#define HELPER_STATE_FORMAT	1

/*
 * DIR/state: this header, then the present bitmap, then the dirty bitmap
 * (helper_map_bytes(nchunks) each). length is the whole file; sum is
 * BLAKE2b-256 of the file with sum zeroed. Host byte order (the state
 * stays on its node). The layout is fixed: existing mirrors must load.
 */
struct helper_state_hdr {
	uint32_t magic;
	uint32_t format;
	uint64_t length;
	char image[VMIR_NAME_MAX];
	char pad[7];
	uint32_t version;
	uint32_t chunk_size;
	uint64_t size;
	uint64_t nchunks;
	uint8_t sum[32];
};

_Static_assert(sizeof(struct helper_state_hdr) == 208,
	       "the state file header layout changed");
_Static_assert(offsetof(struct helper_state_hdr, version) == 152,
	       "the state file header layout changed");

static void helper_state_sum(struct helper_state_hdr *hd, const uint8_t *p,
			     const uint8_t *dm, size_t mb, uint8_t out[32])
{
	crypto_generichash_state st;
	uint8_t saved[32], sum[32];

	memcpy(saved, hd->sum, 32);
	memset(hd->sum, 0, 32);
	crypto_generichash_init(&st, NULL, 0, 32);
	crypto_generichash_update(&st, (const void *)hd, sizeof(*hd));
	crypto_generichash_update(&st, p, mb);
	crypto_generichash_update(&st, dm, mb);
	crypto_generichash_final(&st, sum, 32);
	memcpy(hd->sum, saved, 32);
	memcpy(out, sum, 32);	/* out may be hd->sum */
}

int helper_state_save(const char *dir, const struct helper_mirror *m,
		      const uint8_t *present, const uint8_t *dirty)
{
	struct helper_state_hdr hd;
	size_t mb = helper_map_bytes(m->nchunks);
	struct iovec iov[3] = {
		{ &hd, sizeof(hd) },
		{ (void *)present, mb },
		{ (void *)dirty, mb },
	};

	memset(&hd, 0, sizeof(hd));
	hd.magic = HELPER_STATE_MAGIC;
	hd.format = HELPER_STATE_FORMAT;
	hd.length = sizeof(hd) + 2 * mb;
	snprintf(hd.image, sizeof(hd.image), "%s", m->image);
	hd.version = m->version;
	hd.chunk_size = m->chunk_size;
	hd.size = m->size;
	hd.nchunks = m->nchunks;
	helper_state_sum(&hd, present, dirty, mb, hd.sum);
	return helper_write_file(dir, "state", iov, 3);
}

/*
 * Check the header of a state file of flen bytes; on failure a reason
 * for the user in why.
 */
static int helper_state_check_hdr(const struct helper_state_hdr *hd,
				  uint64_t flen, char *why, size_t whylen)
{
	if (hd->magic != HELPER_STATE_MAGIC) {
		snprintf(why, whylen, "not a vmir state file");
		return -EBADMSG;
	}
	if (hd->format != HELPER_STATE_FORMAT) {
		snprintf(why, whylen, "state format %u, this helper reads %u",
			 hd->format, HELPER_STATE_FORMAT);
		return -EBADMSG;
	}
	if (hd->length != flen) {
		snprintf(why, whylen,
			 "%" PRIu64 " bytes, its header says %" PRIu64,
			 flen, hd->length);
		return -EBADMSG;
	}
	/* nchunks / 8 first: no overflow for any nchunks */
	if (hd->nchunks / 8 > flen ||
	    sizeof(*hd) + 2 * (uint64_t)helper_map_bytes(hd->nchunks) != flen) {
		snprintf(why, whylen,
			 "%" PRIu64 " chunks do not fit %" PRIu64 " bytes",
			 hd->nchunks, flen);
		return -EBADMSG;
	}
	return 0;
}

static bool helper_mirror_same(const struct helper_state_hdr *hd,
			       const struct helper_mirror *m)
{
	return !strcmp(hd->image, m->image) && hd->version == m->version &&
	       hd->chunk_size == m->chunk_size && hd->size == m->size &&
	       hd->nchunks == m->nchunks;
}

int helper_state_load(const char *dir, const struct helper_mirror *m,
		      uint8_t *present, uint8_t *dirty, char *msg,
		      size_t msglen)
{
	struct helper_state_hdr hd;
	char path[PATH_MAX], why[128] = "";	/* set: the file is damaged */
	uint8_t sum[32], *maps = NULL;
	size_t mb;
	struct stat st;
	int fd, ret;

	fd = helper_mirror_open(dir, "state", path, msg, msglen);
	if (fd < 0)
		return fd == -ENOENT ? 0 : fd;
	if (fstat(fd, &st)) {
		ret = -errno;
		snprintf(msg, msglen, "cannot stat %s: %s", path,
			 strerror(-ret));
		goto out_close;
	}
	if ((uint64_t)st.st_size < sizeof(hd)) {
		ret = -EBADMSG;
		snprintf(why, sizeof(why),
			 "%" PRIu64 " bytes, shorter than a header",
			 (uint64_t)st.st_size);
		goto out_close;
	}
	ret = vmir_read_full(fd, &hd, sizeof(hd));
	if (ret) {
		snprintf(why, sizeof(why), "reading it: %s", strerror(-ret));
		goto out_close;
	}
	ret = helper_state_check_hdr(&hd, (uint64_t)st.st_size, why,
				     sizeof(why));
	if (ret)
		goto out_close;
	mb = helper_map_bytes(hd.nchunks);
	maps = malloc(2 * mb + 1);
	if (!maps) {
		ret = -ENOMEM;
		snprintf(msg, msglen, "out of memory reading %s", path);
		goto out_close;
	}
	ret = vmir_read_full(fd, maps, 2 * mb);
	if (ret) {
		snprintf(why, sizeof(why), "reading it: %s", strerror(-ret));
		goto out_close;
	}
	helper_state_sum(&hd, maps, maps + mb, mb, sum);
	if (memcmp(sum, hd.sum, sizeof(sum))) {
		ret = -EBADMSG;
		snprintf(why, sizeof(why), "checksum mismatch");
		goto out_close;
	}
	hd.image[sizeof(hd.image) - 1] = '\0';
	if (!helper_mirror_same(&hd, m)) {
		ret = -EEXIST;
		snprintf(msg, msglen,
			 "%s holds a mirror of %s@%u (%" PRIu64 " bytes in chunks of %u), not of %s@%u (%" PRIu64 " bytes in chunks of %u): attach that version or use another mirror directory",
			 path, hd.image, hd.version, hd.size, hd.chunk_size,
			 m->image, m->version, m->size, m->chunk_size);
		goto out_close;
	}
	memcpy(present, maps, mb);
	memcpy(dirty, maps + mb, mb);
	ret = 1;
out_close:
	if (why[0])
		snprintf(msg, msglen,
			 "%s is damaged (%s): remove its directory to start over",
			 path, why);
	free(maps);
	close(fd);
	return ret;
}

int helper_state_remove(const char *dir)
{
	return helper_mirror_unlink(dir, "state");
}

/* --- MIRROR_DIR/commit.pub ---------------------------------------------- */

#define HELPER_PUB_NAME		"commit.pub"
#define HELPER_PUB_MAGIC	"VMIRPUB2"
#define HELPER_PUB_MAGIC1	"VMIRPUB1"	/* read: no to */
#define HELPER_PUB_SUM		16
/* longer than any valid file */
#define HELPER_PUB_MAX		(8 + 2 + VMIR_NAME_MAX + 4 + 8 + 2 + \
				 VMIR_ROOT_HEX_LEN + VMIR_PUBLISH_TOKEN_LEN + \
				 2 + VMIR_NAME_MAX + HELPER_PUB_SUM)

/*
 * DIR/commit.pub: "VMIRPUB2", then str image, u32 base_version, u64 size,
 * str root (hex), the token, str to ("" for a new version of image), in
 * the wire encoding; then BLAKE2b-128 of all that. "VMIRPUB1" files end
 * after the token.
 */
int helper_pub_save(const char *dir, const struct vmir_publish_ticket *t)
{
	uint8_t sum[HELPER_PUB_SUM];
	struct vmir_wbuf w;
	struct iovec iov[2];
	int ret;

	vmir_wbuf_init(&w);
	vmir_put_bytes(&w, HELPER_PUB_MAGIC, 8);
	vmir_put_str(&w, t->image);
	vmir_put_u32(&w, t->base_version);
	vmir_put_u64(&w, t->size);
	vmir_put_str(&w, t->root);
	vmir_put_bytes(&w, t->token, sizeof(t->token));
	vmir_put_str(&w, t->to);
	ret = w.err;
	if (!ret) {
		crypto_generichash(sum, sizeof(sum), w.p, w.len, NULL, 0);
		iov[0].iov_base = w.p;
		iov[0].iov_len = w.len;
		iov[1].iov_base = sum;
		iov[1].iov_len = sizeof(sum);
		ret = helper_write_file(dir, HELPER_PUB_NAME, iov, 2);
	}
	vmir_wbuf_free(&w);
	return ret;
}

int helper_pub_load(const char *dir, struct vmir_publish_ticket *t,
		    char *msg, size_t msglen)
{
	uint8_t buf[HELPER_PUB_MAX + 1], sum[HELPER_PUB_SUM];
	char path[PATH_MAX], magic[8];
	struct vmir_id root;
	struct vmir_rbuf r;
	ssize_t n;
	int fd, ret;

	fd = helper_mirror_open(dir, HELPER_PUB_NAME, path, msg, msglen);
	if (fd < 0)
		return fd == -ENOENT ? 0 : fd;
	n = read(fd, buf, sizeof(buf));
	ret = n < 0 ? -errno : 0;
	close(fd);
	if (ret) {
		snprintf(msg, msglen, "cannot read %s: %s", path,
			 strerror(-ret));
		return ret;
	}
	if (n <= HELPER_PUB_SUM || n > HELPER_PUB_MAX)
		goto out_bad;
	crypto_generichash(sum, sizeof(sum), buf, (size_t)n - HELPER_PUB_SUM,
			   NULL, 0);
	if (sodium_memcmp(sum, buf + n - HELPER_PUB_SUM, sizeof(sum)))
		goto out_bad;
	memset(t, 0, sizeof(*t));
	vmir_rbuf_init(&r, buf, (size_t)n - HELPER_PUB_SUM);
	vmir_get_bytes(&r, magic, sizeof(magic));
	vmir_get_str(&r, t->image, sizeof(t->image));
	t->base_version = vmir_get_u32(&r);
	t->size = vmir_get_u64(&r);
	vmir_get_str(&r, t->root, sizeof(t->root));
	vmir_get_bytes(&r, t->token, sizeof(t->token));
	if (!memcmp(magic, HELPER_PUB_MAGIC, 8)) {
		vmir_get_str(&r, t->to, sizeof(t->to));
		if (t->to[0] && vmir_name_valid(t->to))
			goto out_bad;
	} else if (memcmp(magic, HELPER_PUB_MAGIC1, 8)) {
		goto out_bad;
	}
	if (vmir_rbuf_end(&r) || vmir_name_valid(t->image) ||
	    vmir_id_from_hex(t->root, &root))
		goto out_bad;
	return 1;

out_bad:
	snprintf(msg, msglen, "%s is damaged", path);
	return -EBADMSG;
}

int helper_pub_remove(const char *dir)
{
	return helper_mirror_unlink(dir, HELPER_PUB_NAME);
}

/* --- REG_DIR/vmirN -------------------------------------------------------- */

/* longer than any valid entry */
#define HELPER_REG_MAX		(PATH_MAX + VMIR_NAME_MAX + 64)

static int helper_reg_path(char path[PATH_MAX], const char *reg_dir,
			   uint32_t id)
{
	if (snprintf(path, PATH_MAX, "%s/vmir%u", reg_dir, id) >= PATH_MAX)
		return -ENAMETOOLONG;
	return 0;
}

int helper_reg_write(const char *reg_dir, uint32_t id, const char *dir,
		     const char *image, uint32_t version)
{
	char name[32], text[HELPER_REG_MAX];
	struct iovec iov;
	int len, ret;

	if (strlen(dir) >= PATH_MAX || strlen(image) >= VMIR_NAME_MAX)
		return -ENAMETOOLONG;
	if (!*dir || !*image || strchr(dir, '\n') || strchr(image, '\n'))
		return -EINVAL;
	ret = helper_mkdir_p(reg_dir, 0700);
	if (ret)
		return ret;
	snprintf(name, sizeof(name), "vmir%u", id);
	len = snprintf(text, sizeof(text), "dir=%s\nimage=%s\nversion=%u\n",
		       dir, image, version);
	iov.iov_base = text;
	iov.iov_len = (size_t)len;
	return helper_write_file(reg_dir, name, &iov, 1);
}

/* the fields of an entry */
enum { HELPER_REG_DIR, HELPER_REG_IMAGE, HELPER_REG_VERSION, HELPER_REG_N };

static const struct {
	const char *key;
	size_t cap;			/* text fields: incl. the NUL */
} helper_reg_fields[HELPER_REG_N] = {
	[HELPER_REG_DIR]	= { "dir", PATH_MAX },
	[HELPER_REG_IMAGE]	= { "image", VMIR_NAME_MAX },
	[HELPER_REG_VERSION]	= { "version", 0 },
};

/*
 * Parse the NUL-terminated text of an entry (modified in place). The
 * outputs are written only on success; why: the problem otherwise.
 */
static int helper_reg_parse(char *text, char *dir, char *image,
			    uint32_t *version, char *why, size_t whylen)
{
	const char *vals[HELPER_REG_N] = { NULL };
	char *line, *nl, *val;
	unsigned int k;

	for (line = text; *line; line = nl + 1) {
		nl = strchr(line, '\n');
		if (!nl) {
			snprintf(why, whylen, "its last line is cut short");
			return -EBADMSG;
		}
		*nl = '\0';
		val = strchr(line, '=');
		if (!val)
			continue;	/* not KEY=VALUE: not ours */
		*val++ = '\0';
		for (k = 0; k < HELPER_REG_N; k++)
			if (!strcmp(line, helper_reg_fields[k].key))
				break;
		if (k == HELPER_REG_N)
			continue;	/* a key of a newer helper */
		if (vals[k]) {
			snprintf(why, whylen, "%s= is given twice", line);
			return -EBADMSG;
		}
		if (helper_reg_fields[k].cap &&
		    (!*val || strlen(val) >= helper_reg_fields[k].cap)) {
			snprintf(why, whylen,
				 "%s= is empty or longer than %zu bytes",
				 line, helper_reg_fields[k].cap - 1);
			return -EBADMSG;
		}
		vals[k] = val;
	}
	for (k = 0; k < HELPER_REG_N; k++) {
		if (!vals[k]) {
			snprintf(why, whylen, "%s= is missing",
				 helper_reg_fields[k].key);
			return -EBADMSG;
		}
	}
	if (helper_parse_u32(vals[HELPER_REG_VERSION], version)) {
		snprintf(why, whylen,
			 "version \"%.32s\" is not a decimal number below 2^32",
			 vals[HELPER_REG_VERSION]);
		return -EBADMSG;
	}
	strcpy(dir, vals[HELPER_REG_DIR]);
	strcpy(image, vals[HELPER_REG_IMAGE]);
	return 0;
}

int helper_reg_read(const char *reg_dir, uint32_t id, char dir[PATH_MAX],
		    char image[VMIR_NAME_MAX], uint32_t *version,
		    char *msg, size_t msglen)
{
	char path[PATH_MAX], why[128];
	char *text;
	size_t n;
	FILE *f;
	int ret;

	ret = helper_reg_path(path, reg_dir, id);
	if (ret) {
		snprintf(msg, msglen, "registry directory name too long: %s",
			 reg_dir);
		return ret;
	}
	f = fopen(path, "re");
	if (!f) {
		ret = -errno;
		snprintf(msg, msglen, "cannot open %s: %s", path,
			 strerror(-ret));
		return ret;
	}
	text = malloc(HELPER_REG_MAX + 2);
	if (!text) {
		fclose(f);
		snprintf(msg, msglen, "out of memory reading %s", path);
		return -ENOMEM;
	}
	n = fread(text, 1, HELPER_REG_MAX + 1, f);
	if (ferror(f)) {
		ret = -EIO;
		snprintf(msg, msglen, "cannot read %s: %s", path,
			 strerror(EIO));
		goto out_free;
	}
	text[n] = '\0';
	if (n > HELPER_REG_MAX) {
		ret = -EBADMSG;
		snprintf(why, sizeof(why), "longer than any entry");
	} else if (strlen(text) != n) {
		ret = -EBADMSG;
		snprintf(why, sizeof(why), "it holds a NUL byte");
	} else {
		ret = helper_reg_parse(text, dir, image, version, why,
				       sizeof(why));
	}
	if (ret)
		snprintf(msg, msglen, "%s is damaged: %s", path, why);
out_free:
	free(text);
	fclose(f);
	return ret;
}

int helper_reg_remove(const char *reg_dir, uint32_t id)
{
	char path[PATH_MAX];
	int ret;

	ret = helper_reg_path(path, reg_dir, id);
	if (ret)
		return ret;
	if (unlink(path) && errno != ENOENT)
		return -errno;
	return 0;
}
