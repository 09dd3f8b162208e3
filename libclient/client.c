// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libvmir public API (include/libvmir.h): the client handle, namespace calls
 * on the version server, whole-image import and export, and the chunk
 * level interface of the node helper (versions, async reads, commit).
 *
 * Writes (import, commit) run one pipeline: a bounded set of chunk slots,
 * each filled (from the file on a worker, or by the caller's source
 * callback), checked for zeros and hashed on a worker, then uploaded
 * through the HAS/PUT uploader; the tree is committed once every chunk is
 * stored, its new nodes uploaded the same way, and only then is the
 * version published. Reads (export, tree loads, async reads) fetch
 * objects through vmir_get, which verifies every byte it returns.
 */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "libvmir_priv.h"

#define PIPE_BYTES	(48u << 20)	/* chunk slots of one write pipeline */
/* export: few enough slots that their buffers stay in cache */
#define EXPORT_BYTES	(12u << 20)
#define PIPE_SLOTS_MIN	16
#define PIPE_SLOTS_MAX	2048
#define NODE_BACKLOG	(16u << 20)	/* tree nodes queued for upload */
#define FETCH_WINDOW	512		/* tree nodes read at once */
#define READ_WINDOW	1024		/* vmir_version_read */
#define PROGRESS_NS	(100ull * 1000000)
/*
 * sends of a PUBLISH, CREATE or CLONE that gets no answer, with the same
 * token (the server answers a token it already applied with its result)
 */
#define TOKEN_TRIES	4

static __thread char open_err[VMIR_ERR_LEN];
static const struct vmir_id zero_id;

/* --- errors and small helpers --------------------------------------------- */

/*
 * Messages go into the buffer of the operation they belong to: the
 * client's own (vmir_client_error()) for the blocking calls, the
 * operation's for the asynchronous ones, whose callbacks get it.
 */
static int vsetmsg(char *msg, int err, const char *fmt, va_list ap)
{
	vsnprintf(msg, VMIR_ERR_LEN, fmt, ap);
	vmir_dbg("%s", msg);
	return err;
}

static int setmsg(char *msg, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int setmsg(char *msg, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsetmsg(msg, err, fmt, ap);
	va_end(ap);
	return err;
}

static int seterr(struct vmir_client *c, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int seterr(struct vmir_client *c, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsetmsg(c->err, err, fmt, ap);
	va_end(ap);
	return err;
}

const char *vmir_client_error(const struct vmir_client *c)
{
	if (!c)
		return open_err;	/* why the last vmir_client_open failed */
	return c->err[0] ? c->err : "no error";
}

uint32_t vmir_client_chunk_size(const struct vmir_client *c)
{
	return c->conf.chunk_size ? c->conf.chunk_size : VMIR_CHUNK_DEFAULT;
}

void vmir_client_import_stats(const struct vmir_client *c,
			      struct vmir_import_stats *st)
{
	*st = c->imp;
}

/* the public forms of the version server's answers (libvmir.h) */
static void image_info_pub(const struct vmir_wire_image_info *w,
			   struct vmir_image_info *out)
{
	_Static_assert(sizeof(out->name) == sizeof(w->name),
		       "image names have one limit");
	memset(out, 0, sizeof(*out));
	memcpy(out->name, w->name, sizeof(out->name));
	out->size = w->size;
	out->chunk_size = w->chunk_size;
	out->latest = w->latest;
	out->nversions = w->nversions;
	out->ctime_ns = w->ctime_ns;
}

static void version_info_pub(const struct vmir_wire_version_info *w,
			     struct vmir_version_info *out)
{
	_Static_assert(sizeof(out->image) == sizeof(w->image) &&
		       sizeof(out->parent_image) == sizeof(w->parent_image),
		       "image names have one limit");
	_Static_assert(VMIR_ROOT_HEX_LEN == 2 * VMIR_ID_LEN,
		       "a root is a content id in hex");
	if (!out)
		return;
	memset(out, 0, sizeof(*out));
	memcpy(out->image, w->image, sizeof(out->image));
	out->version = w->version;
	out->size = w->size;
	out->chunk_size = w->chunk_size;
	vmir_id_to_hex(&w->root, out->root);
	memcpy(out->parent_image, w->parent_image, sizeof(out->parent_image));
	out->parent_version = w->parent_version;
	out->ctime_ns = w->ctime_ns;
	out->image_id = w->image_id;
	out->parent_image_id = w->parent_image_id;
	out->parent_deleted = w->flags & VMIR_VI_F_PARENT_DELETED;
	if (!vmir_id_is_zero(&w->profile))
		vmir_id_to_hex(&w->profile, out->profile);
	out->profile_inherited = w->flags & VMIR_VI_F_PROFILE_INHERITED;
}

static const char *vsd(struct vmir_client *c)
{
	return vmir_engine_srv_desc(c->e, VMIR_SRV_VERSIOND);
}

static const char *estr(int err, char *buf, size_t len)
{
	return vmir_errstr(err, buf, len);
}

static uint64_t div_up(uint64_t a, uint64_t b)
{
	return a / b + (a % b != 0);
}

static uint64_t nchunks_of(uint64_t size, uint32_t cs)
{
	return div_up(size, cs);
}

static uint32_t chunk_len_of(uint64_t size, uint32_t cs, uint64_t idx)
{
	uint64_t off = idx * cs;

	return size - off < cs ? (uint32_t)(size - off) : cs;
}

static int check_name(char *msg, const char *name)
{
	if (!name || vmir_name_valid(name))
		return setmsg(msg, -EINVAL,
			      "invalid image name '%s': use 1 to %d characters of A-Z a-z 0-9 . _ - not starting with '.'",
			      name ? name : "(null)", VMIR_NAME_MAX - 1);
	return 0;
}

static int check_chunk_size(struct vmir_client *c, uint32_t cs)
{
	char s[32];

	if (!vmir_chunk_size_valid(cs)) {
		vmir_size_format(cs, s, sizeof(s));
		return seterr(c, -EINVAL,
			      "invalid chunk size %s (%u bytes): use a power of two from 4K to 4M",
			      s, cs);
	}
	return 0;
}

static void op_begin(struct vmir_client *c)
{
	c->err[0] = '\0';
	vmir_engine_reset_down(c->e);
}

/*
 * Run the engine until *count (operations of the caller still running)
 * reaches zero; a stall (nothing left in flight that could lower it) is a
 * bug.
 */
static int wait_zero(struct vmir_client *c, const unsigned int *count)
{
	int ret;

	while (*count) {
		if (!vmir_engine_busy(c->e)) {
			ret = vmir_engine_poll(c->e, 0);
			if (ret)
				return ret;
			if (!*count)
				break;
			if (!vmir_engine_busy(c->e))
				return seterr(c, -EIO,
					      "internal error: operation stalled with nothing in flight");
		}
		ret = vmir_engine_poll(c->e, -1);
		if (ret)
			return seterr(c, ret, "io_uring failed: %s",
				      strerror(-ret));
	}
	return 0;
}

/* the same for libclient's other files (libvmir_priv.h) */
int vmir_client_seterr(struct vmir_client *c, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsetmsg(c->err, err, fmt, ap);
	va_end(ap);
	return err;
}

void vmir_client_op_begin(struct vmir_client *c)
{
	op_begin(c);
}

int vmir_client_await(struct vmir_client *c, int started,
		      const unsigned int *pending, const int *err)
{
	int ret = started;

	if (!ret)
		ret = wait_zero(c, pending);
	return ret ? ret : *err;
}

/* --- client ------------------------------------------------------------------ */

int vmir_client_open(const char *conf_path, struct vmir_client **cp)
{
	struct vmir_client *c;
	int ret;

	*cp = NULL;
	open_err[0] = '\0';
	c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(open_err, sizeof(open_err), "out of memory");
		return -ENOMEM;
	}
	ret = vmir_conf_load(conf_path, &c->conf, open_err, sizeof(open_err));
	if (ret)
		goto out_free;
	ret = vmir_engine_new(&c->conf, &c->e, open_err, sizeof(open_err));
	if (ret)
		goto out_free;
	c->node_backlog = NODE_BACKLOG;
	*cp = c;
	return 0;

out_free:
	memset(c->conf.key, 0, sizeof(c->conf.key));
	free(c);
	return ret;
}

void vmir_client_close(struct vmir_client *c)
{
	if (!c)
		return;
	vmir_engine_free(c->e);
	memset(c->conf.key, 0, sizeof(c->conf.key));
	free(c);
}

/* --- version server calls ------------------------------------------------------ */

static void rpc_done(struct vmir_req *r)
{
	unsigned int *pending = r->arg;

	(*pending)--;
}

/* Send r and wait for its answer (or failure); 0 or the ring's error. */
static int rpc_wait(struct vmir_client *c, struct vmir_req *r)
{
	unsigned int pending = 1;

	r->done = rpc_done;
	r->arg = &pending;
	vmir_req_submit(r);
	return wait_zero(c, &pending);
}

/*
 * Send r to the version server and wait. Returns 0, a transport error
 * (message set, naming what), or -status for the caller to explain.
 */
static int rpc(struct vmir_client *c, struct vmir_req *r, const char *what)
{
	int ret;

	ret = rpc_wait(c, r);
	if (ret)
		return ret;
	if (r->err)
		return seterr(c, r->err, "%s failed: %s", what,
			      vmir_engine_srv_err(c->e, VMIR_SRV_VERSIOND));
	return -(int)r->status;
}

static struct vmir_req *vreq(struct vmir_client *c, uint16_t op)
{
	struct vmir_req *r = vmir_req_new(c->e, VMIR_SRV_VERSIOND, op);

	if (!r)
		seterr(c, -ENOMEM, "out of memory");
	return r;
}

static int bad_reply(struct vmir_client *c, char *msg, const char *op)
{
	return setmsg(msg, -EPROTO, "malformed %s reply from %s", op, vsd(c));
}

static int parse_version_info(struct vmir_client *c, char *msg,
			      struct vmir_req *r, const char *op,
			      struct vmir_wire_version_info *out)
{
	struct vmir_wire_version_info vi;
	struct vmir_rbuf rb;

	vmir_rbuf_init(&rb, r->rmeta, r->rmeta_len);
	vmir_get_version_info(&rb, &vi);
	if (vmir_rbuf_end(&rb))
		return bad_reply(c, msg, op);
	if (out)
		*out = vi;
	return 0;
}

static int ns_status(struct vmir_client *c, char *msg, int ret,
		     const char *what, const char *name, uint32_t version)
{
	char eb[128];

	if (ret == -ENOENT) {
		if (version)
			return setmsg(msg, ret,
				      "version %u of image '%s' not found on %s",
				      version, name, vsd(c));
		return setmsg(msg, ret, "image '%s' not found on %s", name,
			      vsd(c));
	}
	if (ret == -EEXIST)
		return setmsg(msg, ret, "image '%s' already exists on %s",
			      name, vsd(c));
	return setmsg(msg, ret, "%s refused by %s: %s", what, vsd(c),
		      estr(ret, eb, sizeof(eb)));
}

/* a version server request whose body is a ref_req (name, version) */
static int ref_vreq(struct vmir_client *c, uint16_t op, const char *name,
		    uint32_t version, struct vmir_req **rp)
{
	struct vmir_ref_req q;
	int ret;

	ret = check_name(c->err, name);
	if (ret)
		return ret;
	*rp = vreq(c, op);
	if (!*rp)
		return -ENOMEM;
	memset(&q, 0, sizeof(q));
	snprintf(q.name, sizeof(q.name), "%s", name);
	q.version = version;
	vmir_put_ref_req(&(*rp)->meta, &q);
	return 0;
}

static int do_lookup(struct vmir_client *c, const char *name,
		     uint32_t version, struct vmir_wire_version_info *out)
{
	struct vmir_req *r;
	char what[VMIR_NAME_MAX + 64];
	int ret;

	ret = ref_vreq(c, VMIR_OP_LOOKUP, name, version, &r);
	if (ret)
		return ret;
	snprintf(what, sizeof(what), "lookup of image '%s'", name);
	ret = rpc(c, r, what);
	if (ret == 0)
		ret = parse_version_info(c, c->err, r, "LOOKUP", out);
	else if (!r->err)
		ret = ns_status(c, c->err, ret, what, name, version);
	vmir_req_free(r);
	return ret;
}

int vmir_image_lookup(struct vmir_client *c, const char *name,
		      uint32_t version, struct vmir_version_info *out)
{
	struct vmir_wire_version_info vi;
	int ret;

	op_begin(c);
	ret = do_lookup(c, name, version, &vi);
	if (!ret)
		version_info_pub(&vi, out);
	return ret;
}

/*
 * A request r that got no answer (r->err) is sent again, same token, up
 * to TOKEN_TRIES sends in all: true when the caller should.
 */
static bool resend_unanswered(struct vmir_client *c, const char *msg,
			      const struct vmir_req *r, unsigned int tries)
{
	if (!r->err || tries >= TOKEN_TRIES)
		return false;
	vmir_warn("%s; sending it again with the same token (%u of %u)", msg,
		  tries + 1, TOKEN_TRIES);
	/* the failure marked the server down: try it now anyway */
	vmir_engine_reset_down(c->e);
	return true;
}

static int do_create(struct vmir_client *c, const char *name, uint64_t size,
		     uint32_t cs, const struct vmir_id *root,
		     struct vmir_wire_version_info *out)
{
	struct vmir_create_req q;
	struct vmir_req *r;
	char what[VMIR_NAME_MAX + 64], ss[32], cb[32];
	unsigned int tries = 0;
	bool again;
	int ret;

	memset(&q, 0, sizeof(q));
	snprintf(q.name, sizeof(q.name), "%s", name);
	q.size = size;
	q.chunk_size = cs;
	q.root = *root;
	randombytes_buf(q.token, sizeof(q.token));
	vmir_size_format(size, ss, sizeof(ss));
	vmir_size_format(cs, cb, sizeof(cb));
	snprintf(what, sizeof(what), "create of image '%s' (size %s, chunk size %s)",
		 name, ss, cb);
	do {
		r = vreq(c, VMIR_OP_CREATE);
		if (!r)
			return -ENOMEM;
		vmir_put_create_req(&r->meta, &q);
		ret = rpc(c, r, what);
		if (ret == 0)
			ret = parse_version_info(c, c->err, r, "CREATE", out);
		else if (!r->err)
			ret = ns_status(c, c->err, ret, what, name, 0);
		again = resend_unanswered(c, c->err, r, ++tries);
		vmir_req_free(r);
	} while (again);
	return ret;
}

int vmir_image_create(struct vmir_client *c, const char *name, uint64_t size,
		      uint32_t chunk_size, struct vmir_version_info *out)
{
	struct vmir_wire_version_info vi;
	int ret;

	op_begin(c);
	ret = check_name(c->err, name);
	if (ret)
		return ret;
	if (!chunk_size)
		chunk_size = vmir_client_chunk_size(c);
	ret = check_chunk_size(c, chunk_size);
	if (ret)
		return ret;
	if (!size)
		return seterr(c, -EINVAL,
			      "invalid size 0 for image '%s': an image holds at least one byte",
			      name);
	ret = do_create(c, name, size, chunk_size, &zero_id, &vi);
	if (!ret)
		version_info_pub(&vi, out);
	return ret;
}

/*
 * Decode a counted array reply (u32 n, then n records) into a malloc()ed
 * array of n elements of size elem, each decoded by get.
 */
static int parse_array(struct vmir_client *c, struct vmir_req *r,
		       const char *op, size_t elem,
		       void (*get)(struct vmir_rbuf *, void *),
		       void **out, size_t *n)
{
	struct vmir_rbuf rb;
	uint32_t cnt, i;
	char *arr;

	vmir_rbuf_init(&rb, r->rmeta, r->rmeta_len);
	cnt = vmir_get_u32(&rb);
	if (rb.err || cnt > r->rmeta_len)
		return bad_reply(c, c->err, op);
	arr = calloc(cnt ? cnt : 1, elem);
	if (!arr)
		return seterr(c, -ENOMEM, "out of memory");
	for (i = 0; i < cnt; i++)
		get(&rb, arr + (size_t)i * elem);
	if (vmir_rbuf_end(&rb)) {
		free(arr);
		return bad_reply(c, c->err, op);
	}
	*out = arr;
	*n = cnt;
	return 0;
}

static void get_image_info(struct vmir_rbuf *rb, void *p)
{
	struct vmir_wire_image_info ii;

	vmir_get_image_info(rb, &ii);
	image_info_pub(&ii, p);
}

static void get_version_info(struct vmir_rbuf *rb, void *p)
{
	struct vmir_wire_version_info vi;

	vmir_get_version_info(rb, &vi);
	version_info_pub(&vi, p);
}

int vmir_image_list(struct vmir_client *c, struct vmir_image_info **out,
		    size_t *n)
{
	struct vmir_req *r;
	int ret;

	op_begin(c);
	*out = NULL;
	*n = 0;
	r = vreq(c, VMIR_OP_LIST);
	if (!r)
		return -ENOMEM;
	ret = rpc(c, r, "listing images");
	if (ret) {
		if (!r->err)
			ret = ns_status(c, c->err, ret, "listing images", "", 0);
		goto out_free;
	}
	ret = parse_array(c, r, "LIST", sizeof(**out), get_image_info,
			  (void **)out, n);
out_free:
	vmir_req_free(r);
	return ret;
}

int vmir_image_versions(struct vmir_client *c, const char *name,
			struct vmir_version_info **out, size_t *n)
{
	struct vmir_req *r;
	char what[VMIR_NAME_MAX + 64];
	int ret;

	op_begin(c);
	*out = NULL;
	*n = 0;
	ret = ref_vreq(c, VMIR_OP_VERSIONS, name, 0, &r);
	if (ret)
		return ret;
	snprintf(what, sizeof(what), "listing versions of image '%s'", name);
	ret = rpc(c, r, what);
	if (ret) {
		if (!r->err)
			ret = ns_status(c, c->err, ret, what, name, 0);
		goto out_free;
	}
	ret = parse_array(c, r, "VERSIONS", sizeof(**out), get_version_info,
			  (void **)out, n);
out_free:
	vmir_req_free(r);
	return ret;
}

/*
 * A CLONE request; content (commit --to) replaces the source's root.
 * token: the clone's, the same for every send of it.
 */
static struct vmir_req *clone_req(struct vmir_client *c, const char *src,
				  uint32_t version, const char *dst,
				  const struct vmir_wire_version_info *content,
				  const uint8_t token[VMIR_TOKEN_LEN])
{
	struct vmir_clone_req q;
	struct vmir_req *r;

	r = vmir_req_new(c->e, VMIR_SRV_VERSIOND, VMIR_OP_CLONE);
	if (!r)
		return NULL;
	memset(&q, 0, sizeof(q));
	snprintf(q.src, sizeof(q.src), "%s", src);
	q.src_version = version;
	snprintf(q.dst, sizeof(q.dst), "%s", dst);
	if (content) {
		q.flags = VMIR_CLONE_F_CONTENT;
		q.size = content->size;
		q.root = content->root;
	}
	memcpy(q.token, token, sizeof(q.token));
	vmir_put_clone_req(&r->meta, &q);
	return r;
}

static void clone_what(char *what, size_t len, const char *src,
		       uint32_t version, const char *dst)
{
	if (version)
		snprintf(what, len, "clone of %s@%u to '%s'", src, version,
			 dst);
	else
		snprintf(what, len, "clone of '%s' to '%s'", src, dst);
}

/* the outcome of an answered (or failed) CLONE, message into msg */
static int clone_reply(struct vmir_client *c, char *msg, struct vmir_req *r,
		       const char *src, uint32_t version, const char *dst,
		       struct vmir_wire_version_info *out)
{
	char what[2 * VMIR_NAME_MAX + 64];
	int ret;

	clone_what(what, sizeof(what), src, version, dst);
	if (r->err)
		return setmsg(msg, r->err, "%s failed: %s", what,
			      vmir_engine_srv_err(c->e, VMIR_SRV_VERSIOND));
	ret = -(int)r->status;
	if (!ret)
		return parse_version_info(c, msg, r, "CLONE", out);
	if (ret == -EEXIST)
		return ns_status(c, msg, ret, what, dst, 0);
	return ns_status(c, msg, ret, what, src, version);
}

static int do_clone(struct vmir_client *c, const char *src, uint32_t version,
		    const char *dst,
		    const struct vmir_wire_version_info *content,
		    struct vmir_wire_version_info *out)
{
	uint8_t token[VMIR_TOKEN_LEN];
	unsigned int tries = 0;
	struct vmir_req *r;
	bool again;
	int ret;

	ret = check_name(c->err, src);
	if (!ret)
		ret = check_name(c->err, dst);
	if (ret)
		return ret;
	randombytes_buf(token, sizeof(token));
	do {
		r = clone_req(c, src, version, dst, content, token);
		if (!r)
			return seterr(c, -ENOMEM, "out of memory");
		ret = rpc_wait(c, r);
		if (!ret)
			ret = clone_reply(c, c->err, r, src, version, dst,
					  out);
		again = resend_unanswered(c, c->err, r, ++tries);
		vmir_req_free(r);
	} while (again);
	return ret;
}

int vmir_image_clone(struct vmir_client *c, const char *src, uint32_t version,
		     const char *dst, struct vmir_version_info *out)
{
	struct vmir_wire_version_info vi;
	int ret;

	op_begin(c);
	ret = do_clone(c, src, version, dst, NULL, &vi);
	if (!ret)
		version_info_pub(&vi, out);
	return ret;
}

static int do_delete(struct vmir_client *c, const char *name,
		     uint32_t version)
{
	struct vmir_req *r;
	char what[VMIR_NAME_MAX + 64];
	int ret;

	ret = ref_vreq(c, VMIR_OP_DELETE, name, version, &r);
	if (ret)
		return ret;
	if (version)
		snprintf(what, sizeof(what), "delete of %s@%u", name, version);
	else
		snprintf(what, sizeof(what), "delete of image '%s'", name);
	ret = rpc(c, r, what);
	if (ret && !r->err)
		ret = ns_status(c, c->err, ret, what, name, version);
	vmir_req_free(r);
	return ret;
}

int vmir_image_delete(struct vmir_client *c, const char *name,
		      uint32_t version)
{
	op_begin(c);
	return do_delete(c, name, version);
}

/*
 * One publish, asynchronous: a PUBLISH of a new version of q.name, or
 * with to set a CLONE of q.name@q.base_version with q's content into the
 * new image to (commit --to). It carries the publish's token; one that
 * gets no answer (timeout, connection lost: the server may have applied
 * it) is sent again with the same token, up to TOKEN_TRIES times, and the
 * server answers a token it has already applied with what it made instead
 * of refusing it as stale (or the name as taken). done runs once, from
 * the engine's callbacks, with 0 (*out filled) or -errno (message in
 * msg); a refusal because another publish won is -ESTALE with no message
 * (see stale_msg()).
 */
struct apub {
	struct vmir_client *c;
	struct vmir_publish_req q;
	char to[VMIR_NAME_MAX];		/* "" = PUBLISH */
	unsigned int tries;
	char *msg;			/* VMIR_ERR_LEN bytes */
	struct vmir_wire_version_info *out;
	void (*done)(struct apub *p, int err);
};

static int publish_reply(struct vmir_client *c, char *msg,
			 struct vmir_req *r, const char *name, uint32_t base,
			 struct vmir_wire_version_info *out);

static void apub_init(struct apub *p, struct vmir_client *c, const char *name,
		      uint32_t base, uint64_t size, const struct vmir_id *root,
		      const char *to)
{
	memset(p, 0, sizeof(*p));
	p->c = c;
	snprintf(p->to, sizeof(p->to), "%s", to);
	snprintf(p->q.name, sizeof(p->q.name), "%s", name);
	p->q.base_version = base;
	p->q.size = size;
	p->q.root = *root;
	randombytes_buf(p->q.token, sizeof(p->q.token));
}

static void apub_replied(struct vmir_req *r);

/* 0, or -ENOMEM (message set) when nothing was sent */
static int apub_send(struct apub *p)
{
	struct vmir_wire_version_info content;
	struct vmir_req *r;

	if (p->to[0]) {
		memset(&content, 0, sizeof(content));
		content.size = p->q.size;
		content.root = p->q.root;
		r = clone_req(p->c, p->q.name, p->q.base_version, p->to,
			      &content, p->q.token);
	} else {
		r = vmir_req_new(p->c->e, VMIR_SRV_VERSIOND, VMIR_OP_PUBLISH);
		if (r)
			vmir_put_publish_req(&r->meta, &p->q);
	}
	if (!r)
		return setmsg(p->msg, -ENOMEM,
			      "publish of %s on version %u failed: out of memory",
			      p->q.name, p->q.base_version);
	p->tries++;
	r->done = apub_replied;
	r->arg = p;
	vmir_req_submit(r);
	return 0;
}

static void apub_replied(struct vmir_req *r)
{
	struct apub *p = r->arg;
	bool again;
	int ret;

	if (p->to[0])
		ret = clone_reply(p->c, p->msg, r, p->q.name,
				  p->q.base_version, p->to, p->out);
	else
		ret = publish_reply(p->c, p->msg, r, p->q.name,
				    p->q.base_version, p->out);
	again = resend_unanswered(p->c, p->msg, r, p->tries);
	vmir_req_free(r);
	if (again) {
		if (!apub_send(p))
			return;
		ret = -ENOMEM;
	}
	p->done(p, ret);
}

/*
 * The outcome of an answered (or failed) PUBLISH. A refusal because
 * another publish won is -ESTALE; its message is the caller's to write
 * (stale_msg), once it knows the version that exists now.
 */
static int publish_reply(struct vmir_client *c, char *msg,
			 struct vmir_req *r, const char *name, uint32_t base,
			 struct vmir_wire_version_info *out)
{
	char what[VMIR_NAME_MAX + 64];
	int ret;

	snprintf(what, sizeof(what), "publish of %s on version %u", name,
		 base);
	if (r->err)
		return setmsg(msg, r->err, "%s failed: %s", what,
			      vmir_engine_srv_err(c->e, VMIR_SRV_VERSIOND));
	ret = -(int)r->status;
	if (!ret)
		return parse_version_info(c, msg, r, "PUBLISH", out);
	if (ret == -ESTALE)
		return ret;
	return ns_status(c, msg, ret, what, name, ret == -ENOENT ? base : 0);
}

/* latest: the version that exists now, 0 if unknown */
static int stale_msg(char *msg, const char *name, uint32_t base,
		     uint32_t latest)
{
	if (latest)
		return setmsg(msg, -ESTALE,
			      "publish of %s on version %u refused: version %u exists (stale base)",
			      name, base, latest);
	return setmsg(msg, -ESTALE,
		      "publish of %s on version %u refused: a newer version exists (stale base)",
		      name, base);
}

struct apub_wait {
	struct apub p;
	unsigned int pending;
	int err;
};

static void apub_wait_done(struct apub *p, int err)
{
	struct apub_wait *w = vmir_container_of(p, struct apub_wait, p);

	w->err = err;
	w->pending--;
}

/* Publish root as the version after base (blocking; see struct apub). */
static int do_publish(struct vmir_client *c, const char *name, uint32_t base,
		      uint64_t size, const struct vmir_id *root,
		      struct vmir_wire_version_info *out)
{
	struct vmir_wire_version_info latest;
	struct apub_wait w;
	int ret;

	apub_init(&w.p, c, name, base, size, root, "");
	w.p.msg = c->err;
	w.p.out = out;
	w.p.done = apub_wait_done;
	w.pending = 1;
	w.err = 0;
	ret = apub_send(&w.p);
	if (!ret)
		ret = wait_zero(c, &w.pending);
	if (!ret)
		ret = w.err;
	if (ret == -ESTALE)
		stale_msg(c->err, name, base,
			  do_lookup(c, name, 0, &latest) ? 0 : latest.version);
	return ret;
}

/* --- tree loading -------------------------------------------------------------- */

/*
 * Loading a version's tree, level by level (vmir_tree_loader), each level's
 * nodes read FETCH_WINDOW at a time through vmir_get. Runs from the engine's
 * callbacks; the blocking load_tree() waits for it.
 */
struct tload;
typedef void (*tload_done_fn)(struct tload *tl, int err);

struct tload_slot {
	struct vmir_get g;
	struct tload *tl;
	size_t item;
};

struct tload {
	struct vmir_client *c;
	const struct vmir_wire_version_info *vi;
	char *msg;
	tload_done_fn done;
	void *arg;
	struct vmir_tree *tree;		/* the result */
	/* private */
	struct vmir_tree_loader *ld;
	struct tload_slot slots[FETCH_WINDOW];
	const struct vmir_id *ids;
	void *const *bufs;
	size_t *lens;
	size_t n, next;
	unsigned int active;
	int err;
	struct vmir_task finish;	/* runs done from the engine */
};

static void tload_level(struct tload *tl);

static void tload_end(struct tload *tl, int err)
{
	char eb[128];

	if (err && !tl->err) {
		tl->err = err;
		setmsg(tl->msg, err, "the tree of %s@%u is corrupt: %s",
		       tl->vi->image, tl->vi->version,
		       estr(err, eb, sizeof(eb)));
	}
	if (tl->ld && !tl->err)
		tl->tree = vmir_tree_loader_finish(tl->ld);
	else
		vmir_tree_loader_free(tl->ld);
	tl->ld = NULL;
	tl->done(tl, tl->err);
}

static void tload_fetch(struct tload *tl, struct tload_slot *s);

static void tload_fetched(struct vmir_get *g, int err)
{
	struct tload_slot *s = g->arg;
	struct tload *tl = s->tl;
	char hex[2 * VMIR_ID_LEN + 1];

	tl->active--;
	if (err && !tl->err) {
		vmir_id_to_hex(&g->id, hex);
		tl->err = setmsg(tl->msg, err,
				 "cannot read tree node %.16s of %s@%u: %s",
				 hex, tl->vi->image, tl->vi->version, g->why);
	}
	if (!err)
		tl->lens[s->item] = g->len;
	if (!tl->err && tl->next < tl->n) {
		tload_fetch(tl, s);
		return;
	}
	if (tl->active)
		return;
	if (tl->err) {
		tload_end(tl, tl->err);
		return;
	}
	err = vmir_tree_loader_level_done(tl->ld);
	if (err) {
		tload_end(tl, err);
		return;
	}
	tload_level(tl);
}

static void tload_fetch(struct tload *tl, struct tload_slot *s)
{
	s->item = tl->next++;
	memset(&s->g, 0, sizeof(s->g));
	s->g.id = tl->ids[s->item];
	s->g.buf = tl->bufs[s->item];
	s->g.cap = VMIR_TREE_NODE_MAX;
	s->g.done = tload_fetched;
	s->g.arg = s;
	tl->active++;
	vmir_get_start(tl->c->e, &s->g);
}

/* start the next level, or finish */
static void tload_level(struct tload *tl)
{
	size_t i;

	tl->n = vmir_tree_loader_next(tl->ld, &tl->ids, &tl->bufs, &tl->lens);
	tl->next = 0;
	if (!tl->n) {
		tload_end(tl, 0);
		return;
	}
	for (i = 0; i < FETCH_WINDOW && tl->next < tl->n; i++) {
		tl->slots[i].tl = tl;
		tload_fetch(tl, &tl->slots[i]);
	}
}

static void tload_finish_task(struct vmir_task *t)
{
	struct tload *tl = vmir_container_of(t, struct tload, finish);

	tload_end(tl, 0);
}

/*
 * Start loading the tree of vi into tl->tree; tl->done runs later from the
 * engine (never from here), also for an empty or all-zero version (tree
 * NULL for an empty image). Returns 0, or -errno with tl->msg set when
 * nothing was started.
 */
static int tload_start(struct tload *tl)
{
	uint64_t n = nchunks_of(tl->vi->size, tl->vi->chunk_size);
	int ret;

	tl->tree = NULL;
	tl->err = 0;
	if (!n || vmir_id_is_zero(&tl->vi->root)) {
		if (n) {
			tl->tree = vmir_tree_new(n);
			if (!tl->tree)
				return setmsg(tl->msg, -ENOMEM,
					      "out of memory for the chunk map of %s@%u",
					      tl->vi->image, tl->vi->version);
		}
		tl->finish.work = NULL;
		tl->finish.done = tload_finish_task;
		vmir_task_submit(tl->c->e, &tl->finish);
		return 0;
	}
	ret = vmir_tree_loader_new(&tl->vi->root, n, &tl->ld);
	if (ret)
		return setmsg(tl->msg, ret,
			      "out of memory for the chunk map of %s@%u",
			      tl->vi->image, tl->vi->version);
	tload_level(tl);
	return 0;
}

static void tload_sync_done(struct tload *tl, int err)
{
	(*(unsigned int *)tl->arg)--;
}

/* the version's whole chunk map; *tp NULL for an empty image */
static int load_tree(struct vmir_client *c,
		     const struct vmir_wire_version_info *vi,
		     struct vmir_tree **tp)
{
	unsigned int pending = 1;
	struct tload *tl;
	int ret;

	*tp = NULL;
	tl = calloc(1, sizeof(*tl));
	if (!tl)
		return seterr(c, -ENOMEM, "out of memory");
	tl->c = c;
	tl->vi = vi;
	tl->msg = c->err;
	tl->done = tload_sync_done;
	tl->arg = &pending;
	ret = tload_start(tl);
	if (!ret) {
		ret = wait_zero(c, &pending);
		if (ret)
			return ret;	/* the ring failed: tl may still be used */
		ret = tl->err;
	}
	if (!ret)
		*tp = tl->tree;
	free(tl);
	return ret;
}

struct usage_ent {
	struct vmir_id id;
	uint32_t len;
};

static int usage_cmp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct vmir_id));
}

static int tree_usage(const struct vmir_tree *t, uint64_t size, uint32_t cs,
		      uint64_t *chunks, uint64_t *bytes)
{
	struct usage_ent *v;
	uint64_t n, i, k = 0;

	*chunks = 0;
	*bytes = 0;
	if (!t)
		return 0;
	n = vmir_tree_nchunks(t);
	v = malloc(n * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		const struct vmir_id *id = vmir_tree_leaf(t, i);

		if (vmir_id_is_zero(id))
			continue;
		v[k].id = *id;
		v[k].len = chunk_len_of(size, cs, i);
		k++;
	}
	qsort(v, k, sizeof(*v), usage_cmp);
	for (i = 0; i < k; i++) {
		if (i && vmir_id_eq(&v[i].id, &v[i - 1].id))
			continue;
		(*chunks)++;
		*bytes += v[i].len;
	}
	free(v);
	return 0;
}

int vmir_image_usage(struct vmir_client *c, const char *name,
		     uint32_t version, uint64_t *chunks, uint64_t *bytes)
{
	struct vmir_wire_version_info vi;
	struct vmir_tree *t;
	int ret;

	op_begin(c);
	ret = do_lookup(c, name, version, &vi);
	if (ret)
		return ret;
	ret = load_tree(c, &vi, &t);
	if (ret)
		return ret;
	ret = tree_usage(t, vi.size, vi.chunk_size, chunks, bytes);
	vmir_tree_free(t);
	if (ret)
		return seterr(c, ret, "out of memory");
	return 0;
}

/* --- progress -------------------------------------------------------------------- */

struct progress {
	vmir_progress_fn fn;
	void *arg;
	uint64_t total, done, last_ns;
};

static void progress_add(struct progress *p, uint64_t bytes)
{
	uint64_t now;

	p->done += bytes;
	if (!p->fn)
		return;
	now = vmir_coarse_ns();
	if (now - p->last_ns < PROGRESS_NS && p->done < p->total)
		return;
	p->last_ns = now;
	p->fn(p->arg, p->done, p->total);
}

/* --- set of ids (open addressing; the zero id marks a free slot) ------------------ */

struct idset {
	struct vmir_id *slot;
	size_t cap, n;			/* cap: power of two */
};

static size_t idset_hash(const struct vmir_id *id, size_t cap)
{
	uint64_t h;

	memcpy(&h, id->b, sizeof(h));	/* ids are uniform hashes */
	return (size_t)h & (cap - 1);
}

static int idset_grow(struct idset *s)
{
	size_t cap = s->cap ? s->cap * 2 : 1024, i, k;
	struct vmir_id *slot = calloc(cap, sizeof(*slot));

	if (!slot)
		return -ENOMEM;
	for (i = 0; i < s->cap; i++) {
		if (vmir_id_is_zero(&s->slot[i]))
			continue;
		for (k = idset_hash(&s->slot[i], cap);
		     !vmir_id_is_zero(&slot[k]); k = (k + 1) & (cap - 1))
			;
		slot[k] = s->slot[i];
	}
	free(s->slot);
	s->slot = slot;
	s->cap = cap;
	return 0;
}

/* 1 if id was new (now added), 0 if present, -ENOMEM */
static int idset_add(struct idset *s, const struct vmir_id *id)
{
	size_t k;

	if ((s->n + 1) * 2 > s->cap && idset_grow(s))
		return -ENOMEM;
	for (k = idset_hash(id, s->cap); !vmir_id_is_zero(&s->slot[k]);
	     k = (k + 1) & (s->cap - 1))
		if (vmir_id_eq(&s->slot[k], id))
			return 0;
	s->slot[k] = *id;
	s->n++;
	return 1;
}

/* --- write pipeline (import, commit) --------------------------------------------- */

struct wr;

struct wr_slot {
	struct vmir_upl_obj obj;
	struct vmir_task task;
	struct wr *w;
	uint64_t idx;
	uint32_t len;
	uint8_t *buf;
	int err;
	bool zero;
};

struct wr_node {
	struct vmir_upl_obj obj;
	struct wr *w;
	size_t len;
	uint8_t data[];
};

struct wr {
	struct vmir_client *c;
	struct vmir_tree *tree;
	const char *what;		/* "import of 'foo'" */
	char *msg;			/* the operation's message buffer */
	/*
	 * Asynchronous driver (a commit run from vmir_client_poll()): called
	 * whenever a slot or a node upload finished; NULL for the blocking
	 * driver, which polls in wr_chunks() and wr_tree() instead.
	 */
	void (*kick)(struct wr *w);
	uint32_t cs;
	uint64_t size;
	/* source: a file read on the workers, or the caller's callback */
	int fd;
	const char *path;
	vmir_chunk_source_fn src;
	void *src_arg;
	const uint64_t *idx;		/* NULL: every chunk */
	uint64_t n, next;

	struct vmir_upl *upl;
	struct idset seen;		/* chunk ids uploaded or on their way */
	struct wr_slot *slots;
	struct wr_slot **freel;
	uint8_t *mem;
	unsigned int nslots, nfree, active;
	unsigned int nodes_active;
	size_t nodes_bytes;
	int err;
	struct progress prog;
	uint64_t zero_chunks, new_chunks, new_nodes;
};

static int wr_fail(struct wr *w, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* keep the first failure; later ones are consequences */
static int wr_fail(struct wr *w, int err, const char *fmt, ...)
{
	va_list ap;

	if (w->err)
		return w->err;
	w->err = err;
	va_start(ap, fmt);
	vsetmsg(w->msg, err, fmt, ap);
	va_end(ap);
	return err;
}

static void wr_release(struct wr *w, struct wr_slot *s)
{
	w->active--;
	w->freel[w->nfree++] = s;
	if (w->kick)
		w->kick(w);
}

static void wr_uploaded(struct vmir_upl_obj *o, int err)
{
	struct wr_slot *s = o->arg;
	struct wr *w = s->w;

	if (err)
		wr_fail(w, err, "%s failed: upload of chunk %llu: %s", w->what,
			(unsigned long long)s->idx, o->put.why);
	else if (o->put.written)
		w->new_chunks++;
	progress_add(&w->prog, s->len);
	wr_release(w, s);
}

static void wr_hash_work(struct vmir_task *t)
{
	struct wr_slot *s = vmir_container_of(t, struct wr_slot, task);
	struct wr *w = s->w;

	s->err = 0;
	if (w->fd >= 0) {
		s->err = vmir_pread_full(w->fd, s->buf, s->len,
					 s->idx * w->cs);
		if (s->err)
			return;
	}
	s->zero = vmir_buf_is_zero(s->buf, s->len);
	if (!s->zero)
		vmir_id_of(s->buf, s->len, &s->obj.put.id);
}

static void wr_hashed(struct vmir_task *t)
{
	struct wr_slot *s = vmir_container_of(t, struct wr_slot, task);
	struct wr *w = s->w;
	char eb[128];
	int ret;

	if (s->err) {
		wr_fail(w, s->err, "%s failed: cannot read %s at offset %llu: %s",
			w->what, w->path, (unsigned long long)(s->idx * w->cs),
			s->err == -EIO ? "unexpected end of file (did it shrink?)" :
			estr(s->err, eb, sizeof(eb)));
		wr_release(w, s);
		return;
	}
	vmir_tree_set_leaf(w->tree, s->idx, s->zero ? &zero_id :
			   &s->obj.put.id);
	if (s->zero || w->err) {
		w->zero_chunks += s->zero;
		progress_add(&w->prog, s->len);
		wr_release(w, s);
		return;
	}
	/*
	 * A chunk seen before in this import or commit is already stored
	 * or being stored: publishing waits for every upload, and any
	 * failed upload fails the whole operation.
	 */
	ret = idset_add(&w->seen, &s->obj.put.id);
	if (ret <= 0) {
		if (ret)
			wr_fail(w, ret, "%s failed: out of memory", w->what);
		progress_add(&w->prog, s->len);
		wr_release(w, s);
		return;
	}
	s->obj.put.data = s->buf;
	s->obj.put.len = s->len;
	s->obj.done = wr_uploaded;
	s->obj.arg = s;
	vmir_upl_add(w->upl, &s->obj);
	if (w->kick)
		vmir_upl_flush_soon(w->upl);
}

static void wr_pump(struct wr *w)
{
	char eb[128];
	int ret;

	while (!w->err && w->nfree && w->next < w->n) {
		struct wr_slot *s = w->freel[--w->nfree];

		s->idx = w->idx ? w->idx[w->next] : w->next;
		w->next++;
		s->len = chunk_len_of(w->size, w->cs, s->idx);
		w->active++;
		if (w->src) {
			ret = w->src(w->src_arg, s->idx, s->buf);
			if (ret) {
				wr_fail(w, ret < 0 ? ret : -EIO,
					"%s failed: the chunk source failed for chunk %llu: %s",
					w->what, (unsigned long long)s->idx,
					estr(ret < 0 ? ret : EIO, eb,
					     sizeof(eb)));
				wr_release(w, s);
				break;
			}
		}
		s->task.work = wr_hash_work;
		s->task.done = wr_hashed;
		vmir_task_submit(w->c->e, &s->task);
	}
	vmir_upl_flush(w->upl);
}

static int wr_init(struct wr *w, struct vmir_client *c, char *msg,
		   uint32_t cs)
{
	unsigned int i, n;

	w->c = c;
	w->msg = msg;
	w->cs = cs;
	w->fd = -1;
	n = PIPE_BYTES / cs;
	if (n < PIPE_SLOTS_MIN)
		n = PIPE_SLOTS_MIN;
	if (n > PIPE_SLOTS_MAX)
		n = PIPE_SLOTS_MAX;
	if (w->n && n > w->n)
		n = (unsigned int)w->n;
	if (!n)
		n = 1;
	w->upl = vmir_upl_new(c->e);
	w->slots = calloc(n, sizeof(*w->slots));
	w->freel = calloc(n, sizeof(*w->freel));
	w->mem = malloc((size_t)n * cs);
	if (!w->upl || !w->slots || !w->freel || !w->mem)
		return setmsg(msg, -ENOMEM, "out of memory for %u chunk buffers",
			      n);
	w->nslots = n;
	for (i = 0; i < n; i++) {
		w->slots[i].w = w;
		w->slots[i].buf = w->mem + (size_t)i * cs;
		w->freel[w->nfree++] = &w->slots[n - 1 - i];
	}
	return 0;
}

static void wr_fini(struct wr *w)
{
	free(w->seen.slot);
	vmir_upl_free(w->upl);
	free(w->mem);
	free(w->freel);
	free(w->slots);
}

/* upload every chunk; returns once nothing is in flight */
static int wr_chunks(struct wr *w)
{
	int ret;

	while (w->active || (!w->err && w->next < w->n)) {
		wr_pump(w);
		if (!w->active)
			continue;
		ret = vmir_engine_poll(w->c->e, -1);
		if (ret)
			return wr_fail(w, ret, "%s failed: io_uring: %s",
				       w->what, strerror(-ret));
	}
	progress_add(&w->prog, 0);
	return w->err;
}

static void wr_node_done(struct vmir_upl_obj *o, int err)
{
	struct wr_node *nd = o->arg;
	struct wr *w = nd->w;

	if (err)
		wr_fail(w, err, "%s failed: upload of a tree node: %s",
			w->what, o->put.why);
	else if (o->put.written)
		w->new_nodes++;
	w->nodes_active--;
	w->nodes_bytes -= nd->len;
	free(nd);
	if (w->kick)
		w->kick(w);
}

static int wr_emit(void *arg, const struct vmir_id *id, const void *node,
		   size_t len)
{
	struct wr *w = arg;
	struct wr_node *nd;
	int ret;

	if (w->err)
		return w->err;
	/* identical subtrees: one upload */
	ret = idset_add(&w->seen, id);
	if (ret <= 0)
		return ret ? wr_fail(w, ret, "%s failed: out of memory",
				     w->what) : 0;
	nd = malloc(sizeof(*nd) + len);
	if (!nd)
		return wr_fail(w, -ENOMEM, "out of memory");
	memset(nd, 0, sizeof(*nd));
	nd->w = w;
	nd->len = len;
	memcpy(nd->data, node, len);
	nd->obj.put.id = *id;
	nd->obj.put.data = nd->data;
	nd->obj.put.len = (uint32_t)len;
	nd->obj.done = wr_node_done;
	nd->obj.arg = nd;
	w->nodes_active++;
	w->nodes_bytes += len;
	vmir_upl_add(w->upl, &nd->obj);
	/* the asynchronous driver commits again once the backlog shrank */
	if (w->kick && w->nodes_bytes > w->c->node_backlog)
		return -EAGAIN;
	while (!w->err && w->nodes_bytes > w->c->node_backlog) {
		vmir_upl_flush(w->upl);
		ret = vmir_engine_poll(w->c->e, -1);
		if (ret)
			return wr_fail(w, ret, "%s failed: io_uring: %s",
				       w->what, strerror(-ret));
	}
	return w->err;
}

/* commit the tree, upload its new nodes, wait for all of them */
static int wr_tree(struct wr *w)
{
	int ret;

	if (!w->tree)
		return 0;
	ret = vmir_tree_commit(w->tree, wr_emit, w);
	if (ret && !w->err)
		wr_fail(w, ret, "%s failed: tree commit: %s", w->what,
			strerror(-ret));
	vmir_upl_flush(w->upl);
	ret = wait_zero(w->c, &w->nodes_active);
	if (ret)
		return wr_fail(w, ret, "%s failed", w->what);
	return w->err;
}

/* --- import ------------------------------------------------------------------------ */

static int file_size(int fd, const struct stat *st, uint64_t *size)
{
	if (S_ISREG(st->st_mode)) {
		*size = (uint64_t)st->st_size;
		return 0;
	}
	if (S_ISBLK(st->st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, size) < 0)
			return -errno;
		return 0;
	}
	return -EINVAL;
}

int vmir_image_import(struct vmir_client *c, const char *name,
		      const char *path, uint32_t chunk_size,
		      vmir_progress_fn progress, void *arg,
		      struct vmir_version_info *out)
{
	struct vmir_wire_version_info base, vi;
	struct vmir_import_stats *st = &c->imp;
	const struct vmir_id *root = &zero_id;
	char what[VMIR_NAME_MAX + 64], eb[128], s1[32], s2[32];
	struct wr w;
	struct stat sb;
	bool exists = false;
	uint64_t size;
	uint32_t cs;
	int fd, ret;

	op_begin(c);
	memset(st, 0, sizeof(*st));
	ret = check_name(c->err, name);
	if (ret)
		return ret;
	if (chunk_size) {
		ret = check_chunk_size(c, chunk_size);
		if (ret)
			return ret;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return seterr(c, -errno, "cannot open %s: %s", path,
			      estr(errno, eb, sizeof(eb)));
	if (fstat(fd, &sb) < 0) {
		ret = seterr(c, -errno, "cannot stat %s: %s", path,
			     estr(errno, eb, sizeof(eb)));
		goto out_close;
	}
	ret = file_size(fd, &sb, &size);
	if (ret) {
		ret = seterr(c, ret == -EINVAL ? -EINVAL : ret,
			     "cannot import %s: %s", path,
			     ret == -EINVAL ? "not a regular file or block device" :
			     estr(ret, eb, sizeof(eb)));
		goto out_close;
	}

	if (!size) {
		ret = seterr(c, -EINVAL,
			     "cannot import %s: it is empty (an image holds at least one byte)",
			     path);
		goto out_close;
	}
	ret = do_lookup(c, name, 0, &base);
	if (ret == 0) {
		exists = true;
		if (chunk_size && chunk_size != base.chunk_size) {
			vmir_size_format(base.chunk_size, s1, sizeof(s1));
			vmir_size_format(chunk_size, s2, sizeof(s2));
			ret = seterr(c, -EINVAL,
				     "image '%s' has chunk size %s: cannot import a new version with chunk size %s (leave out the chunk size)",
				     name, s1, s2);
			goto out_close;
		}
		cs = base.chunk_size;
	} else if (ret == -ENOENT) {
		cs = chunk_size ? chunk_size : vmir_client_chunk_size(c);
	} else {
		goto out_close;
	}
	c->err[0] = '\0';

	snprintf(what, sizeof(what), "import of %s into '%s'", path, name);
	memset(&w, 0, sizeof(w));
	w.size = size;
	w.n = nchunks_of(size, cs);
	ret = wr_init(&w, c, c->err, cs);
	if (ret)
		goto out_wr;
	w.fd = fd;
	w.path = path;
	w.what = what;
	w.prog.fn = progress;
	w.prog.arg = arg;
	w.prog.total = size;
	if (w.n) {
		w.tree = vmir_tree_new(w.n);
		if (!w.tree) {
			ret = seterr(c, -ENOMEM, "out of memory for the chunk map");
			goto out_wr;
		}
	}
	ret = wr_chunks(&w);
	if (!ret)
		ret = wr_tree(&w);
	if (ret)
		goto out_wr;
	if (w.tree)
		root = vmir_tree_root(w.tree);

	if (exists)
		ret = do_publish(c, name, base.version, size, root, &vi);
	else
		ret = do_create(c, name, size, cs, root, &vi);
	if (ret)
		goto out_wr;

	st->chunks = w.n;
	st->zero_chunks = w.zero_chunks;
	st->new_chunks = w.new_chunks;
	st->new_nodes = w.new_nodes;
	st->new_bytes = vmir_upl_stats(w.upl)->new_bytes;
	tree_usage(w.tree, size, cs, &st->stored_chunks, &st->stored_bytes);
	version_info_pub(&vi, out);
out_wr:
	vmir_tree_free(w.tree);
	wr_fini(&w);
out_close:
	close(fd);
	return ret;
}

/* --- export ------------------------------------------------------------------------ */

struct ex_item {
	struct vmir_id id;
	uint64_t idx;
};

struct ex;

struct ex_slot {
	struct vmir_get g;
	struct ex *x;
	size_t first, count;
	char msg[256];
};

struct ex {
	struct vmir_client *c;
	const struct vmir_wire_version_info *vi;
	const char *path;
	int fd;
	struct ex_item *items;
	size_t nitems, next;
	struct ex_slot *slots;
	struct ex_slot **freel;
	uint8_t *mem;
	unsigned int nslots, nfree, active;
	int err;
	struct progress prog;
};

static int ex_item_cmp(const void *a, const void *b)
{
	const struct ex_item *x = a, *y = b;
	int r = memcmp(&x->id, &y->id, sizeof(x->id));

	if (r)
		return r;
	return (x->idx > y->idx) - (x->idx < y->idx);
}

/* worker: the bytes are verified; write them wherever the chunk occurs */
static int ex_verified(struct vmir_get *g)
{
	struct ex_slot *s = g->arg;
	struct ex *x = s->x;
	const struct vmir_wire_version_info *vi = x->vi;
	char eb[128];
	size_t k;
	int ret;

	for (k = s->first; k < s->first + s->count; k++) {
		uint64_t idx = x->items[k].idx;
		uint32_t len = chunk_len_of(vi->size, vi->chunk_size, idx);

		if (g->len != len) {
			snprintf(s->msg, sizeof(s->msg),
				 "object for chunk %llu has %u bytes, expected %u: the tree of %s@%u is inconsistent",
				 (unsigned long long)idx, g->len, len,
				 vi->image, vi->version);
			return -EBADMSG;
		}
		ret = vmir_pwrite_full(x->fd, g->buf, len,
				       idx * vi->chunk_size);
		if (ret) {
			snprintf(s->msg, sizeof(s->msg),
				 "cannot write %s at offset %llu: %s", x->path,
				 (unsigned long long)(idx * vi->chunk_size),
				 vmir_errstr(ret, eb, sizeof(eb)));
			return ret;
		}
	}
	return 0;
}

static void ex_start(struct ex *x);

static void ex_done(struct vmir_get *g, int err)
{
	struct ex_slot *s = g->arg;
	struct ex *x = s->x;
	char hex[2 * VMIR_ID_LEN + 1];
	size_t k;

	x->active--;
	x->freel[x->nfree++] = s;
	if (err) {
		if (!x->err) {
			x->err = err;
			vmir_id_to_hex(&g->id, hex);
			if (s->msg[0])
				seterr(x->c, err, "export of %s@%u failed: %s",
				       x->vi->image, x->vi->version, s->msg);
			else
				seterr(x->c, err,
				       "export of %s@%u failed: chunk %llu (object %.16s): no replica could serve it: %s",
				       x->vi->image, x->vi->version,
				       (unsigned long long)x->items[s->first].idx,
				       hex, g->why);
		}
		return;
	}
	for (k = s->first; k < s->first + s->count; k++)
		progress_add(&x->prog, chunk_len_of(x->vi->size,
						    x->vi->chunk_size,
						    x->items[k].idx));
	ex_start(x);
}

static void ex_start(struct ex *x)
{
	while (!x->err && x->nfree && x->next < x->nitems) {
		struct ex_slot *s = x->freel[--x->nfree];
		uint8_t *buf = s->g.buf;
		size_t k = x->next;

		while (k < x->nitems &&
		       vmir_id_eq(&x->items[k].id, &x->items[x->next].id))
			k++;
		s->first = x->next;
		s->count = k - x->next;
		x->next = k;
		s->msg[0] = '\0';
		memset(&s->g, 0, sizeof(s->g));
		s->g.id = x->items[s->first].id;
		s->g.buf = buf;
		s->g.cap = x->vi->chunk_size;
		s->g.verified = ex_verified;
		s->g.done = ex_done;
		s->g.arg = s;
		x->active++;
		vmir_get_start(x->c->e, &s->g);
	}
}

static int ex_zero_fill(struct ex *x, const struct vmir_tree *t)
{
	const struct vmir_wire_version_info *vi = x->vi;
	uint8_t *z;
	uint64_t i;
	int ret = 0;

	z = calloc(1, vi->chunk_size);
	if (!z)
		return -ENOMEM;
	for (i = 0; t && i < vmir_tree_nchunks(t) && !ret; i++)
		if (vmir_id_is_zero(vmir_tree_leaf(t, i)))
			ret = vmir_pwrite_full(x->fd, z,
					       chunk_len_of(vi->size,
							    vi->chunk_size, i),
					       i * vi->chunk_size);
	free(z);
	return ret;
}

int vmir_image_export(struct vmir_client *c, const char *name,
		      uint32_t version, const char *path,
		      vmir_progress_fn progress, void *arg)
{
	struct vmir_wire_version_info vi;
	struct vmir_tree *t = NULL;
	struct ex x;
	struct stat sb;
	char eb[128];
	uint64_t i, n;
	unsigned int k, ns;
	bool regular = false;
	int ret;

	op_begin(c);
	ret = do_lookup(c, name, version, &vi);
	if (ret)
		return ret;
	ret = load_tree(c, &vi, &t);
	if (ret)
		return ret;

	memset(&x, 0, sizeof(x));
	x.c = c;
	x.vi = &vi;
	x.path = path;
	x.prog.fn = progress;
	x.prog.arg = arg;
	x.prog.total = vi.size;
	x.fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (x.fd < 0) {
		ret = seterr(c, -errno, "cannot create %s: %s", path,
			     estr(errno, eb, sizeof(eb)));
		goto out_tree;
	}
	if (fstat(x.fd, &sb) < 0) {
		ret = seterr(c, -errno, "cannot stat %s: %s", path,
			     estr(errno, eb, sizeof(eb)));
		goto out_close;
	}
	regular = S_ISREG(sb.st_mode);
	if (regular) {
		/*
		 * Zero chunks stay holes: the file is sparse. Truncate to 0
		 * only what has content: ext4 flushes a file truncated to 0
		 * on close (auto_da_alloc), which would put the writeback
		 * of the whole export into our close().
		 */
		if ((sb.st_size && ftruncate(x.fd, 0) < 0) ||
		    ftruncate(x.fd, (off_t)vi.size) < 0) {
			ret = seterr(c, -errno, "cannot resize %s to %llu bytes: %s",
				     path, (unsigned long long)vi.size,
				     estr(errno, eb, sizeof(eb)));
			goto out_close;
		}
	} else if (S_ISBLK(sb.st_mode)) {
		ret = ex_zero_fill(&x, t);
		if (ret) {
			ret = seterr(c, ret, "cannot write zeros to %s: %s",
				     path, estr(ret, eb, sizeof(eb)));
			goto out_close;
		}
	}

	n = t ? vmir_tree_nchunks(t) : 0;
	x.items = malloc((n ? n : 1) * sizeof(*x.items));
	if (!x.items) {
		ret = seterr(c, -ENOMEM, "out of memory");
		goto out_close;
	}
	for (i = 0; i < n; i++) {
		const struct vmir_id *id = vmir_tree_leaf(t, i);

		if (vmir_id_is_zero(id)) {
			progress_add(&x.prog,
				     chunk_len_of(vi.size, vi.chunk_size, i));
			continue;
		}
		x.items[x.nitems].id = *id;
		x.items[x.nitems].idx = i;
		x.nitems++;
	}
	/* identical chunks are fetched once and written everywhere */
	qsort(x.items, x.nitems, sizeof(*x.items), ex_item_cmp);

	ns = EXPORT_BYTES / vi.chunk_size;
	if (ns < PIPE_SLOTS_MIN)
		ns = PIPE_SLOTS_MIN;
	if (ns > PIPE_SLOTS_MAX)
		ns = PIPE_SLOTS_MAX;
	if (ns > x.nitems)
		ns = x.nitems ? (unsigned int)x.nitems : 1;
	x.slots = calloc(ns, sizeof(*x.slots));
	x.freel = calloc(ns, sizeof(*x.freel));
	x.mem = malloc((size_t)ns * vi.chunk_size);
	if (!x.slots || !x.freel || !x.mem) {
		ret = seterr(c, -ENOMEM, "out of memory");
		goto out_free;
	}
	x.nslots = ns;
	for (k = 0; k < ns; k++) {
		x.slots[k].x = &x;
		x.slots[k].g.buf = x.mem + (size_t)k * vi.chunk_size;
		x.freel[x.nfree++] = &x.slots[ns - 1 - k];
	}
	ex_start(&x);
	ret = wait_zero(c, &x.active);
	if (!ret)
		ret = x.err;
	progress_add(&x.prog, 0);
out_free:
	free(x.mem);
	free(x.freel);
	free(x.slots);
	free(x.items);
out_close:
	if (close(x.fd) < 0 && !ret)
		ret = seterr(c, -errno, "cannot write %s: %s", path,
			     estr(errno, eb, sizeof(eb)));
	/* a half-written export must not pass for the image */
	if (ret && regular)
		unlink(path);
out_tree:
	vmir_tree_free(t);
	return ret;
}

/* --- versions (node helper) ------------------------------------------------------ */

/* vmir_version_open_async(): LOOKUP, then the tree, level by level */
struct vopen {
	struct vmir_client *c;
	struct vmir_version *v;
	vmir_open_cb cb;
	void *arg;
	char name[VMIR_NAME_MAX];
	uint32_t version;
	struct tload tl;
	char msg[VMIR_ERR_LEN];
};

static void vopen_end(struct vopen *o, int err)
{
	struct vmir_version *v = err ? NULL : o->v;

	o->c->ops--;
	o->cb(o->arg, v, err, err ? o->msg : NULL);
	if (err)
		free(o->v);
	free(o);
}

static void vopen_tree_done(struct tload *tl, int err)
{
	struct vopen *o = tl->arg;

	o->v->tree = tl->tree;
	vopen_end(o, err);
}

/*
 * The answer to an asynchronous LOOKUP r of name@version: 0 with *out
 * filled, or -errno with msg set. Frees r.
 */
static int lookup_reply(struct vmir_client *c, char *msg, struct vmir_req *r,
			const char *name, uint32_t version,
			struct vmir_wire_version_info *out)
{
	char what[VMIR_NAME_MAX + 64];
	int ret;

	snprintf(what, sizeof(what), "lookup of image '%s'", name);
	if (r->err)
		ret = setmsg(msg, r->err, "%s failed: %s", what,
			     vmir_engine_srv_err(c->e, VMIR_SRV_VERSIOND));
	else if (r->status)
		ret = ns_status(c, msg, -(int)r->status, what, name, version);
	else
		ret = parse_version_info(c, msg, r, "LOOKUP", out);
	vmir_req_free(r);
	return ret;
}

static void vopen_looked_up(struct vmir_req *r)
{
	struct vopen *o = r->arg;
	struct vmir_client *c = o->c;
	struct vmir_version *v = o->v;
	int ret;

	ret = lookup_reply(c, o->msg, r, o->name, o->version, &v->info);
	if (ret) {
		vopen_end(o, ret);
		return;
	}
	version_info_pub(&v->info, &v->pub);
	v->nchunks = nchunks_of(v->info.size, v->info.chunk_size);
	o->tl.c = c;
	o->tl.vi = &v->info;
	o->tl.msg = o->msg;
	o->tl.done = vopen_tree_done;
	o->tl.arg = o;
	ret = tload_start(&o->tl);
	if (ret)
		vopen_end(o, ret);
}

int vmir_version_open_async(struct vmir_client *c, const char *name,
			    uint32_t version, vmir_open_cb cb, void *arg)
{
	struct vmir_req *r;
	struct vopen *o;
	int ret;

	ret = ref_vreq(c, VMIR_OP_LOOKUP, name, version, &r);
	if (ret)
		return ret;
	o = calloc(1, sizeof(*o));
	if (o)
		o->v = calloc(1, sizeof(*o->v));
	if (!o || !o->v) {
		free(o);
		vmir_req_free(r);
		return seterr(c, -ENOMEM, "out of memory");
	}
	o->c = c;
	o->v->c = c;
	o->cb = cb;
	o->arg = arg;
	snprintf(o->name, sizeof(o->name), "%s", name);
	o->version = version;
	r->done = vopen_looked_up;
	r->arg = o;
	c->ops++;
	vmir_req_submit(r);
	return 0;
}

/* a blocking call waiting for its asynchronous form */
struct vwait {
	struct vmir_client *c;
	unsigned int pending;
	struct vmir_version *v;
	int err;
};

static void vwait_opened(void *arg, struct vmir_version *v, int err,
			 const char *why)
{
	struct vwait *w = arg;

	w->pending--;
	w->v = v;
	w->err = err;
	if (err)
		snprintf(w->c->err, sizeof(w->c->err), "%s", why);
}

int vmir_version_open(struct vmir_client *c, const char *name,
		      uint32_t version, struct vmir_version **vp)
{
	struct vwait w = { .c = c, .pending = 1 };
	int ret;

	*vp = NULL;
	op_begin(c);
	ret = vmir_client_await(c, vmir_version_open_async(c, name, version,
							   vwait_opened, &w),
				&w.pending, &w.err);
	if (!ret)
		*vp = w.v;
	return ret;
}

void vmir_version_close(struct vmir_version *v)
{
	if (!v)
		return;
	/* reads and a commit still running use v's state: let them finish */
	if (v->async)
		wait_zero(v->c, &v->async);
	vmir_peers_forget(v);
	vmir_tree_free(v->tree);
	free(v);
}

const struct vmir_version_info *vmir_version_get_info(
	const struct vmir_version *v)
{
	return &v->pub;
}

uint64_t vmir_version_nchunks(const struct vmir_version *v)
{
	return v->nchunks;
}

uint32_t vmir_version_chunk_len(const struct vmir_version *v, uint64_t idx)
{
	if (idx >= v->nchunks)
		return 0;
	return chunk_len_of(v->info.size, v->info.chunk_size, idx);
}

bool vmir_version_chunk_is_zero(const struct vmir_version *v, uint64_t idx)
{
	if (idx >= v->nchunks)
		return true;
	return vmir_id_is_zero(vmir_tree_leaf(v->tree, idx));
}

bool vmir_version_chunk_matches(const struct vmir_version *v, uint64_t idx,
				const void *buf)
{
	const struct vmir_id *want;
	struct vmir_id id;
	uint32_t len;

	if (idx >= v->nchunks)
		return false;
	len = vmir_version_chunk_len(v, idx);
	want = vmir_tree_leaf(v->tree, idx);
	if (vmir_id_is_zero(want))
		return vmir_buf_is_zero(buf, len);
	vmir_id_of(buf, len, &id);
	return !memcmp(id.b, want->b, VMIR_ID_LEN);
}

struct vread {
	struct vmir_get g;
	struct vmir_version *v;
	uint64_t idx;
	vmir_read_cb cb;		/* vmir_version_read_async() */
	vmir_fetch_cb fcb;		/* vmir_version_fetch_async() */
	void *arg;
	bool zero;			/* never sent: a zero chunk */
};

static int vread_verified(struct vmir_get *g)
{
	struct vread *rd = g->arg;
	uint32_t len = vmir_version_chunk_len(rd->v, rd->idx);

	if (g->len != len)
		return -EBADMSG;
	if (len < g->cap)
		memset((uint8_t *)g->buf + len, 0, g->cap - len);
	return 0;
}

static void vread_finish(struct vread *rd, int err)
{
	struct vmir_version *v = rd->v;
	char hex[2 * VMIR_ID_LEN + 1], msg[VMIR_ERR_LEN];

	if (err == -EBADMSG) {
		memset(rd->g.buf, 0, rd->g.cap);
		err = setmsg(msg, -EIO,
			     "read of chunk %llu of %s@%u failed: the object has %u bytes, expected %u",
			     (unsigned long long)rd->idx, v->info.image,
			     v->info.version, rd->g.len,
			     vmir_version_chunk_len(v, rd->idx));
	} else if (err) {
		vmir_id_to_hex(&rd->g.id, hex);
		setmsg(msg, err,
		       "read of chunk %llu (object %.16s) of %s@%u failed: %s",
		       (unsigned long long)rd->idx, hex, v->info.image,
		       v->info.version, rd->g.why);
	}
	if (!rd->zero)
		vmir_peers_account(v, &rd->g, err);
	v->async--;
	v->c->async--;
	if (rd->fcb) {
		struct vmir_fetch_result res = {
			.idx = rd->idx,
			.err = err,
			.why = err ? msg : NULL,
			.from_peer = !err && !rd->zero &&
				     vmir_engine_srv_is_peer(v->c->e, rd->g.srv),
			.packed = err ? NULL : rd->g.zcopy,
			.packed_len = rd->g.zcopy ? rd->g.zlen : 0,
		};

		rd->fcb(rd->arg, &res);
	} else {
		rd->cb(rd->arg, rd->idx, err, err ? msg : NULL);
	}
	free(rd->g.zcopy);
	free(rd);
}

static void vread_done(struct vmir_get *g, int err)
{
	vread_finish(g->arg, err);
}

static void vread_zero_done(struct vmir_task *t)
{
	struct vread *rd = vmir_container_of(t, struct vread, g.task);

	vread_finish(rd, 0);
}

static int vread_start(struct vmir_version *v, uint64_t idx, void *buf,
		       unsigned int flags, vmir_read_cb cb, vmir_fetch_cb fcb,
		       void *arg);

int vmir_version_read_async(struct vmir_version *v, uint64_t idx, void *buf,
			    vmir_read_cb cb, void *arg)
{
	return vread_start(v, idx, buf, 0, cb, NULL, arg);
}

int vmir_version_fetch_async(struct vmir_version *v, uint64_t idx, void *buf,
			     unsigned int flags, vmir_fetch_cb cb, void *arg)
{
	return vread_start(v, idx, buf, flags, NULL, cb, arg);
}

static int vread_start(struct vmir_version *v, uint64_t idx, void *buf,
		       unsigned int flags, vmir_read_cb cb, vmir_fetch_cb fcb,
		       void *arg)
{
	struct vmir_client *c = v->c;
	struct vread *rd;

	if (idx >= v->nchunks)
		return seterr(c, -ERANGE,
			      "chunk %llu is beyond the end of %s@%u (%llu chunks)",
			      (unsigned long long)idx, v->info.image,
			      v->info.version,
			      (unsigned long long)v->nchunks);
	if (flags & ~VMIR_FETCH_ALL)
		return seterr(c, -EINVAL, "unknown fetch flags %#x", flags);
	rd = calloc(1, sizeof(*rd));
	if (!rd)
		return seterr(c, -ENOMEM, "out of memory");
	rd->v = v;
	rd->idx = idx;
	rd->cb = cb;
	rd->fcb = fcb;
	rd->arg = arg;
	rd->g.keep_packed = flags & VMIR_FETCH_KEEP_PACKED;
	rd->g.id = *vmir_tree_leaf(v->tree, idx);
	rd->g.buf = buf;
	rd->g.cap = v->info.chunk_size;
	v->async++;
	c->async++;
	if (vmir_id_is_zero(&rd->g.id)) {
		rd->zero = true;
		memset(buf, 0, v->info.chunk_size);
		vmir_list_init(&rd->g.task.node);
		rd->g.task.work = NULL;
		rd->g.task.done = vread_zero_done;
		vmir_task_submit(c->e, &rd->g.task);
		return 0;
	}
	rd->g.verified = vread_verified;
	rd->g.done = vread_done;
	rd->g.arg = rd;
	if (!(flags & VMIR_FETCH_NO_PEERS))
		vmir_peers_pick(v, &rd->g);
	vmir_get_start(c->e, &rd->g);
	return 0;
}

int vmir_client_poll(struct vmir_client *c, int timeout_ms)
{
	int ret = vmir_engine_poll(c->e, timeout_ms);

	if (ret)
		return seterr(c, ret, "io_uring failed: %s", strerror(-ret));
	return 0;
}

int vmir_client_pollfd(struct vmir_client *c, int *timeout_ms)
{
	return vmir_engine_pollfd(c->e, timeout_ms);
}

unsigned int vmir_client_inflight(const struct vmir_client *c)
{
	return c->async;
}

void vmir_client_set_node_backlog(struct vmir_client *c, size_t bytes)
{
	c->node_backlog = bytes;
}

struct vread_batch {
	struct vmir_client *c;
	unsigned int active;
	int err;
};

static void vread_batch_cb(void *arg, uint64_t idx, int err, const char *why)
{
	struct vread_batch *b = arg;

	(void)idx;
	b->active--;
	if (err && !b->err) {
		b->err = err;
		snprintf(b->c->err, sizeof(b->c->err), "%s", why);
	}
}

int vmir_version_read(struct vmir_version *v, const uint64_t *idx, size_t n,
		      void *const *bufs)
{
	struct vmir_client *c = v->c;
	struct vread_batch b;
	size_t i = 0;
	int ret = 0, wret;

	memset(&b, 0, sizeof(b));
	b.c = c;
	c->err[0] = '\0';
	for (;;) {
		while (i < n && b.active < READ_WINDOW && !b.err && !ret) {
			ret = vmir_version_read_async(v, idx[i], bufs[i],
						      vread_batch_cb, &b);
			if (ret)
				break;
			b.active++;
			i++;
		}
		if (!b.active && (i == n || ret || b.err))
			break;
		wret = vmir_engine_poll(c->e, -1);
		if (wret)
			return seterr(c, wret, "io_uring failed: %s",
				      strerror(-wret));
	}
	return ret ? ret : b.err;
}

/* --- commit -------------------------------------------------------------------------- */

/*
 * vmir_version_commit_async(): the write pipeline over the given chunks,
 * the tree's new nodes, then PUBLISH (or CLONE with the new content for
 * to_image), all driven by the engine's callbacks through vcommit_kick().
 */
enum vcommit_stage {
	VC_CHUNKS,		/* chunk slots in flight */
	VC_TREE,		/* new nodes being emitted (may pause) */
	VC_NODES,		/* last node uploads in flight */
	VC_PUBLISH,		/* PUBLISH or CLONE sent */
	VC_STALE,		/* refused as stale: LOOKUP for the message */
};

struct vcommit {
	struct wr w;
	struct vmir_version *v;
	vmir_commit_cb cb;
	void *arg;
	enum vcommit_stage stage;
	bool kicking;
	char to[VMIR_NAME_MAX];		/* "" = next version of v's image */
	struct apub pub;		/* the PUBLISH, or CLONE with to */
	struct vmir_wire_version_info vi;
	char what[2 * VMIR_NAME_MAX + 64];
	char msg[VMIR_ERR_LEN];
};

static void vcommit_end(struct vcommit *o, int err)
{
	struct vmir_version *v = o->v;
	struct vmir_client *c = o->w.c;

	if (!err) {
		/* v advances in place: its map is the committed one */
		vmir_tree_free(v->tree);
		v->tree = o->w.tree;
		o->w.tree = NULL;
		v->info = o->vi;
		version_info_pub(&v->info, &v->pub);
		v->nchunks = nchunks_of(o->vi.size, o->vi.chunk_size);
		/* other chunks now: the peers and the index were the old's */
		vmir_peers_forget(v);
	}
	vmir_tree_free(o->w.tree);
	wr_fini(&o->w);
	v->async--;
	c->ops--;
	o->cb(o->arg, err ? NULL : &v->pub, err, err ? o->msg : NULL);
	free(o);
}

static void vcommit_stale(struct vmir_req *r)
{
	struct vcommit *o = r->arg;
	struct vmir_wire_version_info latest;
	uint32_t version = 0;

	if (!r->err && !r->status &&
	    !parse_version_info(o->w.c, o->msg, r, "LOOKUP", &latest))
		version = latest.version;
	vmir_req_free(r);
	vcommit_end(o, stale_msg(o->msg, o->v->info.image,
				 o->v->info.version, version));
}

/* the PUBLISH or CLONE was answered (or failed) with ret */
static void vcommit_published(struct vcommit *o, int ret)
{
	struct vmir_client *c = o->w.c;
	struct vmir_version *v = o->v;
	struct vmir_req *lr;

	if (ret == -ESTALE &&
	    !ref_vreq(c, VMIR_OP_LOOKUP, v->info.image, 0, &lr)) {
		o->stage = VC_STALE;
		lr->done = vcommit_stale;
		lr->arg = o;
		vmir_req_submit(lr);
		return;
	}
	if (ret == -ESTALE)
		stale_msg(o->msg, v->info.image, v->info.version, 0);
	vcommit_end(o, ret);
}

static void vcommit_apub_done(struct apub *p, int err)
{
	vcommit_published(vmir_container_of(p, struct vcommit, pub), err);
}

/* the publish about to be sent, for vmir_version_on_publish() */
static void vcommit_ticket(const struct apub *p,
			   struct vmir_publish_ticket *t)
{
	_Static_assert(sizeof(t->token) == sizeof(p->q.token),
		       "one token length");
	memset(t, 0, sizeof(*t));
	memcpy(t->image, p->q.name, sizeof(t->image));
	memcpy(t->to, p->to, sizeof(t->to));
	t->base_version = p->q.base_version;
	t->size = p->q.size;
	vmir_id_to_hex(&p->q.root, t->root);
	memcpy(t->token, p->q.token, sizeof(t->token));
}

static void vcommit_publish(struct vcommit *o)
{
	struct vmir_client *c = o->w.c;
	struct vmir_version *v = o->v;
	const struct vmir_id *root = &zero_id;

	if (o->w.tree)
		root = vmir_tree_root(o->w.tree);
	o->stage = VC_PUBLISH;
	apub_init(&o->pub, c, v->info.image, v->info.version, v->info.size,
		  root, o->to);
	o->pub.msg = o->msg;
	o->pub.out = &o->vi;
	o->pub.done = vcommit_apub_done;
	if (v->on_publish) {
		struct vmir_publish_ticket t;

		vcommit_ticket(&o->pub, &t);
		v->on_publish(v->on_publish_arg, &t);
	}
	if (apub_send(&o->pub))
		vcommit_end(o, -ENOMEM);
}

/* move the commit on as far as it goes; w->kick of the pipeline */
static void vcommit_kick(struct wr *w)
{
	struct vcommit *o = vmir_container_of(w, struct vcommit, w);
	int ret;

	if (o->kicking)
		return;
	o->kicking = true;
	if (o->stage == VC_CHUNKS) {
		wr_pump(w);
		if (w->active || (!w->err && w->next < w->n))
			goto out;
		o->stage = VC_TREE;
	}
	if (o->stage == VC_TREE) {
		/* paused on a full backlog: go on once it halved */
		if (w->nodes_bytes > w->c->node_backlog / 2)
			goto out;
		ret = w->tree && !w->err ?
		      vmir_tree_commit(w->tree, wr_emit, w) : 0;
		vmir_upl_flush(w->upl);
		if (ret == -EAGAIN && !w->err)
			goto out;
		if (ret && !w->err)
			wr_fail(w, ret, "%s failed: tree commit: %s", o->what,
				strerror(-ret));
		o->stage = VC_NODES;
	}
	if (o->stage == VC_NODES) {
		if (w->nodes_active)
			goto out;
		o->kicking = false;
		if (w->err)
			vcommit_end(o, w->err);
		else
			vcommit_publish(o);
		return;
	}
out:
	o->kicking = false;
}

static int check_commit_set(struct vmir_version *v, const uint64_t *idx,
			    size_t n)
{
	struct vmir_client *c = v->c;
	size_t i;

	for (i = 0; i < n; i++) {
		if (idx[i] >= v->nchunks)
			return seterr(c, -EINVAL,
				      "commit of %s@%u: chunk %llu is beyond the end (%llu chunks)",
				      v->info.image, v->info.version,
				      (unsigned long long)idx[i],
				      (unsigned long long)v->nchunks);
		if (i && idx[i] <= idx[i - 1])
			return seterr(c, -EINVAL,
				      "commit of %s@%u: chunk indexes must be ascending and distinct (%llu after %llu)",
				      v->info.image, v->info.version,
				      (unsigned long long)idx[i],
				      (unsigned long long)idx[i - 1]);
	}
	return 0;
}

int vmir_version_commit_async(struct vmir_version *v, const uint64_t *idx,
			      size_t n, vmir_chunk_source_fn src,
			      void *src_arg, const char *to_image,
			      vmir_commit_cb cb, void *arg)
{
	struct vmir_client *c = v->c;
	struct vcommit *o;
	int ret;

	ret = check_commit_set(v, idx, n);
	if (!ret && to_image)
		ret = check_name(c->err, to_image);
	if (ret)
		return ret;
	o = calloc(1, sizeof(*o));
	if (!o)
		return seterr(c, -ENOMEM, "out of memory");
	o->v = v;
	o->cb = cb;
	o->arg = arg;
	if (to_image) {
		snprintf(o->to, sizeof(o->to), "%s", to_image);
		snprintf(o->what, sizeof(o->what), "commit of %s@%u to '%s'",
			 v->info.image, v->info.version, to_image);
	} else {
		snprintf(o->what, sizeof(o->what), "commit of %s@%u",
			 v->info.image, v->info.version);
	}
	o->w.size = v->info.size;
	o->w.n = n;
	ret = wr_init(&o->w, c, o->msg, v->info.chunk_size);
	if (!ret && v->tree) {
		/* work on a copy: on failure v stays as it was */
		o->w.tree = vmir_tree_dup(v->tree);
		if (!o->w.tree)
			ret = setmsg(o->msg, -ENOMEM,
				     "out of memory for the chunk map");
	}
	if (ret) {
		seterr(c, ret, "%s", o->msg);
		vmir_tree_free(o->w.tree);
		wr_fini(&o->w);
		free(o);
		return ret;
	}
	o->w.idx = idx;
	o->w.src = src;
	o->w.src_arg = src_arg;
	o->w.what = o->what;
	o->w.path = "";
	o->w.kick = vcommit_kick;
	o->stage = VC_CHUNKS;
	v->async++;
	c->ops++;
	/* nothing completes from here: the callbacks come from the engine */
	vcommit_kick(&o->w);
	return 0;
}

struct vcwait {
	struct vmir_client *c;
	unsigned int pending;
	int err;
	struct vmir_version_info *out;
};

static void vcwait_done(void *arg, const struct vmir_version_info *vi,
			int err, const char *why)
{
	struct vcwait *w = arg;

	w->pending--;
	w->err = err;
	if (err)
		snprintf(w->c->err, sizeof(w->c->err), "%s", why);
	else if (w->out)
		*w->out = *vi;
}

int vmir_version_commit(struct vmir_version *v, const uint64_t *idx, size_t n,
			vmir_chunk_source_fn src, void *arg,
			const char *to_image, struct vmir_version_info *out)
{
	struct vcwait w = { .c = v->c, .pending = 1, .out = out };
	int ret;

	v->c->err[0] = '\0';
	ret = vmir_version_commit_async(v, idx, n, src, arg, to_image,
					vcwait_done, &w);
	if (!ret)
		ret = wait_zero(v->c, &w.pending);
	return ret ? ret : w.err;
}

void vmir_version_on_publish(struct vmir_version *v, vmir_publish_fn fn,
			     void *arg)
{
	v->on_publish = fn;
	v->on_publish_arg = arg;
}

/* vmir_publish_async() */
struct vpub {
	struct apub p;
	vmir_commit_cb cb;
	void *arg;
	struct vmir_wire_version_info vi;
	struct vmir_version_info pub;
	char msg[VMIR_ERR_LEN];
};

static void vpub_done(struct apub *p, int err)
{
	struct vpub *o = vmir_container_of(p, struct vpub, p);

	if (err == -ESTALE)
		stale_msg(o->msg, p->q.name, p->q.base_version, 0);
	if (!err)
		version_info_pub(&o->vi, &o->pub);
	p->c->ops--;
	o->cb(o->arg, err ? NULL : &o->pub, err, err ? o->msg : NULL);
	free(o);
}

int vmir_publish_async(struct vmir_client *c,
		       const struct vmir_publish_ticket *t, vmir_commit_cb cb,
		       void *arg)
{
	struct vmir_id root;
	struct vpub *o;
	int ret;

	c->err[0] = '\0';
	ret = check_name(c->err, t->image);
	if (!ret && t->to[0])
		ret = check_name(c->err, t->to);
	if (ret)
		return ret;
	if (vmir_id_from_hex(t->root, &root) < 0 || !t->size)
		return seterr(c, -EINVAL,
			      "publish of %s on version %u: bad ticket (root '%.64s', size %llu)",
			      t->image, t->base_version, t->root,
			      (unsigned long long)t->size);
	o = calloc(1, sizeof(*o));
	if (!o)
		return seterr(c, -ENOMEM, "out of memory");
	apub_init(&o->p, c, t->image, t->base_version, t->size, &root, t->to);
	memcpy(o->p.q.token, t->token, sizeof(o->p.q.token));
	o->p.msg = o->msg;
	o->p.out = &o->vi;
	o->p.done = vpub_done;
	o->cb = cb;
	o->arg = arg;
	c->ops++;
	ret = apub_send(&o->p);
	if (ret) {
		seterr(c, ret, "%s", o->msg);
		c->ops--;
		free(o);
	}
	return ret;
}

/* --- chunk servers ------------------------------------------------------------------ */

static void stat_done(struct vmir_req *r)
{
	unsigned int *active = r->arg;

	(*active)--;
}

int vmir_chunkd_stat(struct vmir_client *c, struct vmir_server_stat **out,
		     size_t *n)
{
	unsigned int ns = vmir_engine_nchunkd(c->e), i;
	struct vmir_server_stat *arr;
	unsigned int active = 0;
	struct vmir_req **reqs;
	char eb[128];
	int ret;

	op_begin(c);
	*out = NULL;
	*n = 0;
	arr = calloc(ns, sizeof(*arr));
	reqs = calloc(ns, sizeof(*reqs));
	if (!arr || !reqs) {
		free(arr);
		free(reqs);
		return seterr(c, -ENOMEM, "out of memory");
	}
	for (i = 0; i < ns; i++) {
		arr[i].addr = vmir_engine_srv_addr(c->e, 1 + i);
		reqs[i] = vmir_req_new(c->e, 1 + i, VMIR_OP_STAT);
		if (!reqs[i]) {
			arr[i].err = -ENOMEM;
			continue;
		}
		reqs[i]->done = stat_done;
		reqs[i]->arg = &active;
		active++;
		vmir_req_submit(reqs[i]);
	}
	/* per-server failures land in arr[i].err; the call succeeds */
	ret = wait_zero(c, &active);
	for (i = 0; i < ns; i++) {
		struct vmir_req *r = reqs[i];
		struct vmir_rbuf rb;

		if (!r)
			continue;
		if (r->err) {
			arr[i].err = r->err;
			seterr(c, r->err, "%s", vmir_engine_srv_err(c->e, 1 + i));
		} else if (r->status) {
			arr[i].err = -(int)r->status;
			seterr(c, arr[i].err, "%s: STAT refused: %s",
			       vmir_engine_srv_desc(c->e, 1 + i),
			       estr((int)r->status, eb, sizeof(eb)));
		} else {
			vmir_rbuf_init(&rb, r->rmeta, r->rmeta_len);
			arr[i].objects = vmir_get_u64(&rb);
			arr[i].bytes = vmir_get_u64(&rb);
			if (vmir_rbuf_end(&rb)) {
				arr[i].err = -EPROTO;
				seterr(c, -EPROTO, "malformed STAT reply from %s",
				       vmir_engine_srv_desc(c->e, 1 + i));
			}
		}
		vmir_req_free(r);
	}
	free(reqs);
	if (ret) {
		free(arr);
		return ret;
	}
	*out = arr;
	*n = ns;
	return 0;
}

/* --- access profiles ---------------------------------------------------------------- */

#define PROFILE_TRIES	3	/* SET_PROFILE refused as stale: merge again */

/*
 * vmir_profile_read_async(): GET the object, decode. vmir_profile_learn_async():
 * LOOKUP the version, GET and decode its profile (if any), merge the new
 * order in, PUT the result, SET_PROFILE from the old id to the new one;
 * refused as stale (another node's profile won meanwhile), all of it again,
 * PROFILE_TRIES times in all.
 */
struct prof {
	struct vmir_client *c;
	vmir_profile_cb cb;
	void *arg;
	bool learn;
	char name[VMIR_NAME_MAX];
	uint32_t version;
	uint32_t *order;
	size_t n;
	unsigned int tries;
	struct vmir_wire_version_info vi;
	struct vmir_get g;
	struct vmir_put p;
	uint8_t *buf;			/* the object read */
	uint8_t *obj;			/* the object written */
	struct vmir_profile_data old, merged;
	struct vmir_id id;
	char msg[VMIR_ERR_LEN];
};

static int profile_pub(const struct vmir_profile_data *pd,
		       const struct vmir_id *id, struct vmir_profile *out)
{
	memset(out, 0, sizeof(*out));
	out->chunks = malloc((pd->n ? pd->n : 1) * sizeof(*out->chunks));
	if (!out->chunks)
		return -ENOMEM;
	for (size_t i = 0; i < pd->n; i++)
		out->chunks[i] = pd->ent[i].chunk;
	out->n = pd->n;
	out->deployments = pd->deployments;
	out->nchunks = pd->nchunks;
	out->ctime_ns = pd->ctime_ns;
	vmir_id_to_hex(id, out->id);
	return 0;
}

void vmir_profile_free(struct vmir_profile *p)
{
	if (!p)
		return;
	free(p->chunks);
	memset(p, 0, sizeof(*p));
}

static void prof_end(struct prof *o, int err)
{
	const struct vmir_profile_data *pd = o->learn ? &o->merged : &o->old;
	struct vmir_profile pub;

	if (!err && profile_pub(pd, &o->id, &pub))
		err = setmsg(o->msg, -ENOMEM, "out of memory");
	o->c->ops--;
	o->cb(o->arg, err ? NULL : &pub, err, err ? o->msg : NULL);
	if (!err)
		vmir_profile_free(&pub);
	vmir_profile_data_free(&o->old);
	vmir_profile_data_free(&o->merged);
	free(o->order);
	free(o->buf);
	free(o->obj);
	free(o);
}

static void prof_lookup(struct prof *o);
static void prof_merge(struct prof *o);

static void prof_read(struct vmir_get *g, int err)
{
	struct prof *o = g->arg;
	char hex[VMIR_ROOT_HEX_LEN + 1];
	const char *why = NULL;

	vmir_id_to_hex(&g->id, hex);
	if (err) {
		prof_end(o, setmsg(o->msg, err, "cannot read profile %.16s: %s",
				   hex, g->why));
		return;
	}
	err = vmir_profile_decode(o->buf, g->len, &o->old, &why);
	if (err && o->learn && err == -EBADMSG) {
		/* its bytes hash to its id: a client wrote it so; start over */
		vmir_warn("profile %.16s of %s@%u is malformed (%s): learning it anew",
			  hex, o->name, o->version, why);
		prof_merge(o);
		return;
	}
	if (err) {
		prof_end(o, setmsg(o->msg, err, "profile %.16s is malformed: %s",
				   hex, why));
		return;
	}
	if (o->learn)
		prof_merge(o);
	else
		prof_end(o, 0);
}

static void prof_get(struct prof *o, const struct vmir_id *id)
{
	memset(&o->g, 0, sizeof(o->g));
	o->g.id = *id;
	o->g.buf = o->buf;
	o->g.cap = (uint32_t)vmir_profile_encoded_len(VMIR_ACCESS_MAX);
	o->g.done = prof_read;
	o->g.arg = o;
	o->id = *id;
	vmir_get_start(o->c->e, &o->g);
}

static void prof_set(struct vmir_req *r)
{
	struct prof *o = r->arg;
	struct vmir_client *c = o->c;
	char what[VMIR_NAME_MAX + 64];
	int ret;

	snprintf(what, sizeof(what), "SET_PROFILE of %s@%u", o->name,
		 o->version);
	if (r->err)
		ret = setmsg(o->msg, r->err, "%s failed: %s", what,
			     vmir_engine_srv_err(c->e, VMIR_SRV_VERSIOND));
	else if (r->status == ESTALE && ++o->tries < PROFILE_TRIES) {
		vmir_req_free(r);
		vmir_profile_data_free(&o->old);
		vmir_profile_data_free(&o->merged);
		prof_lookup(o);
		return;
	} else if (r->status == ESTALE)
		ret = setmsg(o->msg, -ESTALE,
			     "the profile of %s@%u changed under each of %u merges (other nodes are publishing theirs)",
			     o->name, o->version, PROFILE_TRIES);
	else if (r->status)
		ret = ns_status(c, o->msg, -(int)r->status, what, o->name,
				o->version);
	else
		ret = parse_version_info(c, o->msg, r, "SET_PROFILE", NULL);
	vmir_req_free(r);
	prof_end(o, ret);
}

static void prof_put(struct vmir_put *p, int err)
{
	struct prof *o = p->arg;
	struct vmir_profile_req q;
	struct vmir_req *r;

	if (err) {
		prof_end(o, setmsg(o->msg, err,
				   "cannot store the profile of %s@%u: %s",
				   o->name, o->version, p->why));
		return;
	}
	r = vmir_req_new(o->c->e, VMIR_SRV_VERSIOND, VMIR_OP_SET_PROFILE);
	if (!r) {
		prof_end(o, setmsg(o->msg, -ENOMEM, "out of memory"));
		return;
	}
	memset(&q, 0, sizeof(q));
	snprintf(q.name, sizeof(q.name), "%s", o->name);
	q.version = o->version;
	q.old = o->vi.profile;
	q.profile = o->id;
	vmir_put_profile_req(&r->meta, &q);
	r->done = prof_set;
	r->arg = o;
	vmir_req_submit(r);
}

static void prof_merge(struct prof *o)
{
	uint64_t nchunks = nchunks_of(o->vi.size, o->vi.chunk_size);
	size_t len;
	int ret;

	ret = vmir_profile_merge(o->old.n ? &o->old : NULL, o->order, o->n,
				 nchunks, vmir_now_ns(), &o->merged);
	if (ret) {
		prof_end(o, setmsg(o->msg, ret,
				   ret == -EINVAL ?
				   "the access order does not fit %s@%u (%" PRIu64 " chunks)" :
				   "out of memory merging the profile of %s@%u",
				   o->name, o->version, nchunks));
		return;
	}
	len = vmir_profile_encoded_len(o->merged.n);
	free(o->obj);
	o->obj = malloc(len);
	if (!o->obj) {
		prof_end(o, setmsg(o->msg, -ENOMEM, "out of memory"));
		return;
	}
	vmir_profile_encode(&o->merged, o->obj);
	vmir_id_of(o->obj, len, &o->id);
	memset(&o->p, 0, sizeof(o->p));
	o->p.id = o->id;
	o->p.data = o->obj;
	o->p.len = (uint32_t)len;
	o->p.done = prof_put;
	o->p.arg = o;
	vmir_put_start(o->c->e, &o->p);
}

static void prof_looked_up(struct vmir_req *r)
{
	struct prof *o = r->arg;
	int ret;

	ret = lookup_reply(o->c, o->msg, r, o->name, o->version, &o->vi);
	if (ret) {
		prof_end(o, ret);
		return;
	}
	if (vmir_id_is_zero(&o->vi.profile))
		prof_merge(o);
	else
		prof_get(o, &o->vi.profile);
}

static void prof_lookup(struct prof *o)
{
	struct vmir_ref_req q;
	struct vmir_req *r;

	r = vmir_req_new(o->c->e, VMIR_SRV_VERSIOND, VMIR_OP_LOOKUP);
	if (!r) {
		prof_end(o, setmsg(o->msg, -ENOMEM, "out of memory"));
		return;
	}
	memset(&q, 0, sizeof(q));
	snprintf(q.name, sizeof(q.name), "%s", o->name);
	q.version = o->version;
	vmir_put_ref_req(&r->meta, &q);
	r->done = prof_looked_up;
	r->arg = o;
	vmir_req_submit(r);
}

static struct prof *prof_new(struct vmir_client *c, vmir_profile_cb cb,
			     void *arg)
{
	struct prof *o = calloc(1, sizeof(*o));

	if (o)
		o->buf = malloc(vmir_profile_encoded_len(VMIR_ACCESS_MAX));
	if (!o || !o->buf) {
		free(o);
		seterr(c, -ENOMEM, "out of memory");
		return NULL;
	}
	o->c = c;
	o->cb = cb;
	o->arg = arg;
	return o;
}

int vmir_profile_read_async(struct vmir_client *c, const char *id,
			    vmir_profile_cb cb, void *arg)
{
	struct vmir_id pid;
	struct prof *o;

	if (!id || vmir_id_from_hex(id, &pid) || vmir_id_is_zero(&pid))
		return seterr(c, -EINVAL, "'%s' is not a profile id (%d hex digits, not all zero)",
			      id ? id : "(null)", VMIR_ROOT_HEX_LEN);
	o = prof_new(c, cb, arg);
	if (!o)
		return -ENOMEM;
	c->ops++;
	prof_get(o, &pid);
	return 0;
}

int vmir_profile_learn_async(struct vmir_client *c, const char *name,
			     uint32_t version, const uint32_t *order,
			     size_t n, vmir_profile_cb cb, void *arg)
{
	struct prof *o;
	int ret;

	ret = check_name(c->err, name);
	if (ret)
		return ret;
	if (!version)
		return seterr(c, -EINVAL, "a profile belongs to a version: give one (not 0)");
	if (n > VMIR_ACCESS_MAX)
		return seterr(c, -EINVAL, "an access order of %zu chunks is longer than %u",
			      n, VMIR_ACCESS_MAX);
	o = prof_new(c, cb, arg);
	if (!o)
		return -ENOMEM;
	o->order = malloc((n ? n : 1) * sizeof(*o->order));
	if (!o->order) {
		free(o->buf);
		free(o);
		return seterr(c, -ENOMEM, "out of memory");
	}
	memcpy(o->order, order, n * sizeof(*order));
	o->n = n;
	o->learn = true;
	snprintf(o->name, sizeof(o->name), "%s", name);
	o->version = version;
	c->ops++;
	prof_lookup(o);
	return 0;
}

/* the blocking forms */
struct pwait {
	struct vmir_client *c;
	unsigned int pending;
	struct vmir_profile *out;
	int err;
};

static void pwait_done(void *arg, const struct vmir_profile *p, int err,
		       const char *why)
{
	struct pwait *w = arg;

	w->pending--;
	w->err = err;
	if (err) {
		snprintf(w->c->err, sizeof(w->c->err), "%s", why);
		return;
	}
	if (!w->out)
		return;
	*w->out = *p;
	w->out->chunks = malloc((p->n ? p->n : 1) * sizeof(*p->chunks));
	if (!w->out->chunks) {
		w->err = seterr(w->c, -ENOMEM, "out of memory");
		return;
	}
	memcpy(w->out->chunks, p->chunks, p->n * sizeof(*p->chunks));
}

static int pwait_run(struct pwait *w, int ret)
{
	return vmir_client_await(w->c, ret, &w->pending, &w->err);
}

int vmir_profile_read(struct vmir_client *c, const char *id,
		      struct vmir_profile *out)
{
	struct pwait w = { .c = c, .pending = 1, .out = out };

	op_begin(c);
	memset(out, 0, sizeof(*out));
	return pwait_run(&w, vmir_profile_read_async(c, id, pwait_done, &w));
}

int vmir_profile_learn(struct vmir_client *c, const char *name,
		       uint32_t version, const uint32_t *order, size_t n,
		       struct vmir_profile *out)
{
	struct pwait w = { .c = c, .pending = 1, .out = out };

	op_begin(c);
	if (out)
		memset(out, 0, sizeof(*out));
	return pwait_run(&w, vmir_profile_learn_async(c, name, version, order,
						     n, pwait_done, &w));
}
