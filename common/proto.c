// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * vmir wire protocol: object ids, the frame header codec, the checks of
 * every received frame (vmir_frame_recv_hdr, then vmir_frame_verify: the
 * one frame parser of the servers' loop and libvmir's engine), frame
 * authentication (keyed BLAKE2b over header and meta, per-direction
 * sequence numbers) and the meta codec for every message body.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "vmir_proto.h"
#include "vmir_util.h"

static void vmir_sodium_init(void)
{
	/*
	 * sodium_init() is idempotent and thread safe; it only fails when
	 * no entropy source exists, which leaves nothing sensible to do.
	 */
	if (sodium_init() < 0)
		abort();
}

/* --- little-endian helpers -------------------------------------------- */

static void le16_put(uint8_t *p, uint16_t v)
{
	p[0] = v & 0xff;
	p[1] = v >> 8;
}

static void le32_put(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (v >> (8 * i)) & 0xff;
}

static void le64_put(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (v >> (8 * i)) & 0xff;
}

static uint16_t le16_get(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t le32_get(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint64_t le64_get(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* --- ids ---------------------------------------------------------------- */

void vmir_id_of(const void *buf, size_t len, struct vmir_id *id)
{
	vmir_sodium_init();
	crypto_generichash(id->b, VMIR_ID_LEN, buf, len, NULL, 0);
}

bool vmir_id_is_zero(const struct vmir_id *id)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < VMIR_ID_LEN; i++)
		acc |= id->b[i];
	return acc == 0;
}

bool vmir_id_eq(const struct vmir_id *a, const struct vmir_id *b)
{
	return memcmp(a->b, b->b, VMIR_ID_LEN) == 0;
}

void vmir_id_to_hex(const struct vmir_id *id, char *hex)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < VMIR_ID_LEN; i++) {
		hex[2 * i] = digits[id->b[i] >> 4];
		hex[2 * i + 1] = digits[id->b[i] & 0xf];
	}
	hex[2 * VMIR_ID_LEN] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* exactly 64 hex digits and the end of the string; -EINVAL otherwise */
int vmir_id_from_hex(const char *hex, struct vmir_id *id)
{
	struct vmir_id tmp;

	for (size_t i = 0; i < VMIR_ID_LEN; i++) {
		int hi, lo;

		hi = hexval(hex[2 * i]);
		if (hi < 0)
			return -EINVAL;
		lo = hexval(hex[2 * i + 1]);
		if (lo < 0)
			return -EINVAL;
		tmp.b[i] = (uint8_t)(hi << 4 | lo);
	}
	if (hex[2 * VMIR_ID_LEN] != '\0')
		return -EINVAL;
	*id = tmp;
	return 0;
}

/* --- header codec --------------------------------------------------------- */

void vmir_hdr_encode(const struct vmir_frame_hdr *h, uint8_t out[VMIR_HDR_LEN])
{
	le32_put(out + 0, h->magic);
	le16_put(out + 4, h->version);
	le16_put(out + 6, h->opcode);
	le64_put(out + 8, h->req_id);
	le64_put(out + 16, h->seq);
	le32_put(out + 24, h->status);
	le32_put(out + 28, h->meta_len);
	le32_put(out + 32, h->data_len);
	le32_put(out + 36, h->flags);
	memcpy(out + 40, h->mac, VMIR_MAC_LEN);
}

static bool vmir_op_known(uint16_t op)
{
	switch (op) {
	case VMIR_OP_HELLO:
	case VMIR_OP_PUT:
	case VMIR_OP_GET:
	case VMIR_OP_HAS:
	case VMIR_OP_STAT:
	case VMIR_OP_CREATE:
	case VMIR_OP_LOOKUP:
	case VMIR_OP_LIST:
	case VMIR_OP_VERSIONS:
	case VMIR_OP_PUBLISH:
	case VMIR_OP_CLONE:
	case VMIR_OP_DELETE:
	case VMIR_OP_SET_PROFILE:
	case VMIR_OP_PEER_LEASE:
	case VMIR_OP_PEERS:
		return true;
	default:
		return false;
	}
}

int vmir_hdr_decode(const uint8_t in[VMIR_HDR_LEN], struct vmir_frame_hdr *h,
		    const char **why)
{
	const char *bad = NULL;
	bool reply;

	h->magic = le32_get(in + 0);
	h->version = le16_get(in + 4);
	h->opcode = le16_get(in + 6);
	h->req_id = le64_get(in + 8);
	h->seq = le64_get(in + 16);
	h->status = le32_get(in + 24);
	h->meta_len = le32_get(in + 28);
	h->data_len = le32_get(in + 32);
	h->flags = le32_get(in + 36);
	memcpy(h->mac, in + 40, VMIR_MAC_LEN);

	reply = h->flags & VMIR_F_REPLY;
	if (h->magic != VMIR_PROTO_MAGIC)
		bad = "bad magic";
	else if (h->version != VMIR_PROTO_VERSION)
		bad = "unsupported protocol version";
	else if (!vmir_op_known(h->opcode))
		bad = "unknown opcode";
	else if (h->flags & ~VMIR_F_ALL)
		bad = "unknown flag bits";
	else if (h->meta_len > VMIR_META_MAX)
		bad = "meta_len too large";
	else if (h->data_len > VMIR_DATA_MAX)
		bad = "data_len too large";
	else if (h->data_len && !vmir_op_carries_data(h->opcode, reply))
		bad = "data on an opcode that carries none";
	else if ((h->flags & VMIR_F_ZSTD) && !h->data_len)
		bad = "zstd flag on a frame without data";
	else if (h->status && !reply)
		bad = "status set in a request";

	if (why)
		*why = bad;
	return bad ? -EBADMSG : 0;
}

bool vmir_op_carries_data(uint16_t opcode, bool reply)
{
	if (opcode == VMIR_OP_PUT)
		return !reply;
	if (opcode == VMIR_OP_GET)
		return reply;
	return false;
}

const char *vmir_op_name(uint16_t opcode)
{
	switch (opcode) {
	case VMIR_OP_HELLO:	return "HELLO";
	case VMIR_OP_PUT:	return "PUT";
	case VMIR_OP_GET:	return "GET";
	case VMIR_OP_HAS:	return "HAS";
	case VMIR_OP_STAT:	return "STAT";
	case VMIR_OP_CREATE:	return "CREATE";
	case VMIR_OP_LOOKUP:	return "LOOKUP";
	case VMIR_OP_LIST:	return "LIST";
	case VMIR_OP_VERSIONS:	return "VERSIONS";
	case VMIR_OP_PUBLISH:	return "PUBLISH";
	case VMIR_OP_CLONE:	return "CLONE";
	case VMIR_OP_DELETE:	return "DELETE";
	case VMIR_OP_SET_PROFILE: return "SET_PROFILE";
	case VMIR_OP_PEER_LEASE: return "PEER_LEASE";
	case VMIR_OP_PEERS:	return "PEERS";
	default:		return "unknown";
	}
}

/* --- authentication --------------------------------------------------------- */

void vmir_session_init(struct vmir_session *s,
		       const uint8_t cluster_key[VMIR_KEY_LEN])
{
	vmir_sodium_init();
	memset(s, 0, sizeof(*s));
	memcpy(s->cluster_key, cluster_key, VMIR_KEY_LEN);
	memcpy(s->key, cluster_key, VMIR_KEY_LEN);
}

/* keyed BLAKE2b over the encoded header with a zero mac, then meta */
static void vmir_frame_mac(const struct vmir_session *s,
			   const struct vmir_frame_hdr *h, const void *meta,
			   uint8_t mac[VMIR_MAC_LEN])
{
	crypto_generichash_blake2b_state st;
	struct vmir_frame_hdr tmp = *h;
	uint8_t raw[VMIR_HDR_LEN];

	memset(tmp.mac, 0, sizeof(tmp.mac));
	vmir_hdr_encode(&tmp, raw);
	crypto_generichash_blake2b_init(&st, s->key, VMIR_KEY_LEN,
					VMIR_MAC_LEN);
	crypto_generichash_blake2b_update(&st, raw, sizeof(raw));
	if (h->meta_len)
		crypto_generichash_blake2b_update(&st, meta, h->meta_len);
	crypto_generichash_blake2b_final(&st, mac, VMIR_MAC_LEN);
	sodium_memzero(&st, sizeof(st));
}

void vmir_frame_seal(struct vmir_session *s, struct vmir_frame_hdr *h,
		     const void *meta, uint8_t out[VMIR_HDR_LEN])
{
	h->seq = s->tx_seq++;
	vmir_frame_mac(s, h, meta, h->mac);
	vmir_hdr_encode(h, out);
}

int vmir_frame_recv_hdr(const struct vmir_session *s, bool at_server,
			const uint8_t in[VMIR_HDR_LEN],
			struct vmir_frame_hdr *h, const char **why)
{
	bool reply, hello;
	int ret;

	ret = vmir_hdr_decode(in, h, why);
	if (ret)
		return ret;
	reply = h->flags & VMIR_F_REPLY;
	hello = h->opcode == VMIR_OP_HELLO;
	if (!s->established && !hello)
		*why = "first frame is not HELLO";
	else if (s->established && hello)
		*why = "HELLO after the handshake";
	else if (at_server && reply)
		*why = "reply frame sent to a server";
	else if (!at_server && !reply)
		*why = "request frame from a server";
	else if (hello && h->meta_len != VMIR_NONCE_LEN)
		*why = "HELLO meta is not a 32-byte nonce";
	else if (hello && h->status)
		*why = "HELLO refused";
	return *why ? -EPROTO : 0;
}

int vmir_frame_verify(struct vmir_session *s, const struct vmir_frame_hdr *h,
		      const void *meta)
{
	uint8_t mac[VMIR_MAC_LEN];

	if (h->seq != s->rx_seq)
		return -EACCES;
	vmir_frame_mac(s, h, meta, mac);
	if (sodium_memcmp(mac, h->mac, VMIR_MAC_LEN) != 0)
		return -EACCES;
	s->rx_seq++;
	return 0;
}

void vmir_hello_nonce(struct vmir_session *s, uint8_t nonce[VMIR_NONCE_LEN])
{
	vmir_sodium_init();
	randombytes_buf(s->my_nonce, VMIR_NONCE_LEN);
	memcpy(nonce, s->my_nonce, VMIR_NONCE_LEN);
}

void vmir_session_establish(struct vmir_session *s,
			    const uint8_t client_nonce[VMIR_NONCE_LEN],
			    const uint8_t server_nonce[VMIR_NONCE_LEN])
{
	crypto_generichash_blake2b_state st;

	crypto_generichash_blake2b_init(&st, s->cluster_key, VMIR_KEY_LEN,
					VMIR_KEY_LEN);
	crypto_generichash_blake2b_update(&st, client_nonce, VMIR_NONCE_LEN);
	crypto_generichash_blake2b_update(&st, server_nonce, VMIR_NONCE_LEN);
	crypto_generichash_blake2b_final(&st, s->key, VMIR_KEY_LEN);
	sodium_memzero(&st, sizeof(st));
	s->tx_seq = 1;
	s->rx_seq = 1;
	s->established = true;
}

/* --- meta buffers ------------------------------------------------------------ */

void vmir_wbuf_init(struct vmir_wbuf *w)
{
	memset(w, 0, sizeof(*w));
}

void vmir_wbuf_free(struct vmir_wbuf *w)
{
	free(w->p);
	memset(w, 0, sizeof(*w));
}

/* room for n more bytes at w->p + w->len, or NULL with w->err set */
static uint8_t *vmir_wbuf_reserve(struct vmir_wbuf *w, size_t n)
{
	uint8_t *np;
	size_t cap;

	if (w->err)
		return NULL;
	if (n > VMIR_META_MAX || w->len + n > VMIR_META_MAX) {
		w->err = -EMSGSIZE;
		return NULL;
	}
	if (w->len + n > w->cap) {
		cap = w->cap ? w->cap : 256;
		while (cap < w->len + n)
			cap *= 2;
		np = realloc(w->p, cap);
		if (!np) {
			w->err = -ENOMEM;
			return NULL;
		}
		w->p = np;
		w->cap = cap;
	}
	np = w->p + w->len;
	w->len += n;
	return np;
}

void vmir_put_u8(struct vmir_wbuf *w, uint8_t v)
{
	uint8_t *p = vmir_wbuf_reserve(w, 1);

	if (p)
		p[0] = v;
}

void vmir_put_u16(struct vmir_wbuf *w, uint16_t v)
{
	uint8_t *p = vmir_wbuf_reserve(w, 2);

	if (p)
		le16_put(p, v);
}

void vmir_put_u32(struct vmir_wbuf *w, uint32_t v)
{
	uint8_t *p = vmir_wbuf_reserve(w, 4);

	if (p)
		le32_put(p, v);
}

void vmir_put_u64(struct vmir_wbuf *w, uint64_t v)
{
	uint8_t *p = vmir_wbuf_reserve(w, 8);

	if (p)
		le64_put(p, v);
}

void vmir_put_bytes(struct vmir_wbuf *w, const void *src, size_t n)
{
	uint8_t *p;

	if (!n)
		return;
	p = vmir_wbuf_reserve(w, n);
	if (p)
		memcpy(p, src, n);
}

void vmir_put_id(struct vmir_wbuf *w, const struct vmir_id *id)
{
	vmir_put_bytes(w, id->b, VMIR_ID_LEN);
}

void vmir_put_str(struct vmir_wbuf *w, const char *s)
{
	size_t n = strlen(s);

	if (n > UINT16_MAX) {
		if (!w->err)
			w->err = -EMSGSIZE;
		return;
	}
	vmir_put_u16(w, (uint16_t)n);
	vmir_put_bytes(w, s, n);
}

void vmir_rbuf_init(struct vmir_rbuf *r, const void *p, size_t len)
{
	r->p = p;
	r->len = len;
	r->off = 0;
	r->err = 0;
}

/* n bytes at the read position, or NULL with r->err set */
static const uint8_t *vmir_rbuf_take(struct vmir_rbuf *r, size_t n)
{
	const uint8_t *p;

	if (r->err)
		return NULL;
	if (n > r->len - r->off) {
		r->err = -EBADMSG;
		return NULL;
	}
	p = r->p + r->off;
	r->off += n;
	return p;
}

uint8_t vmir_get_u8(struct vmir_rbuf *r)
{
	const uint8_t *p = vmir_rbuf_take(r, 1);

	return p ? p[0] : 0;
}

uint16_t vmir_get_u16(struct vmir_rbuf *r)
{
	const uint8_t *p = vmir_rbuf_take(r, 2);

	return p ? le16_get(p) : 0;
}

uint32_t vmir_get_u32(struct vmir_rbuf *r)
{
	const uint8_t *p = vmir_rbuf_take(r, 4);

	return p ? le32_get(p) : 0;
}

uint64_t vmir_get_u64(struct vmir_rbuf *r)
{
	const uint8_t *p = vmir_rbuf_take(r, 8);

	return p ? le64_get(p) : 0;
}

void vmir_get_bytes(struct vmir_rbuf *r, void *dst, size_t n)
{
	const uint8_t *p = vmir_rbuf_take(r, n);

	if (p)
		memcpy(dst, p, n);
	else if (n)
		memset(dst, 0, n);
}

void vmir_get_id(struct vmir_rbuf *r, struct vmir_id *id)
{
	vmir_get_bytes(r, id->b, VMIR_ID_LEN);
}

void vmir_get_str(struct vmir_rbuf *r, char *out, size_t cap)
{
	const uint8_t *p;
	uint16_t n;

	if (cap)
		out[0] = '\0';
	n = vmir_get_u16(r);
	if (r->err)
		return;
	if ((size_t)n >= cap) {
		r->err = -EBADMSG;
		return;
	}
	p = vmir_rbuf_take(r, n);
	if (!p)
		return;
	if (memchr(p, '\0', n)) {
		r->err = -EBADMSG;
		return;
	}
	memcpy(out, p, n);
	out[n] = '\0';
}

int vmir_rbuf_end(struct vmir_rbuf *r)
{
	if (r->err)
		return r->err;
	if (r->off != r->len) {
		r->err = -EBADMSG;
		return r->err;
	}
	return 0;
}

/* --- message bodies ---------------------------------------------------------- */

int vmir_name_valid(const char *name)
{
	size_t n = 0;

	if (!name || name[0] == '\0' || name[0] == '.')
		return -EINVAL;
	for (; name[n]; n++) {
		char c = name[n];

		if (n >= VMIR_NAME_MAX - 1)
			return -EINVAL;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return -EINVAL;
	}
	return 0;
}

bool vmir_chunk_size_valid(uint64_t cs)
{
	return cs >= VMIR_CHUNK_SIZE_MIN && cs <= VMIR_CHUNK_SIZE_MAX &&
	       (cs & (cs - 1)) == 0;
}

/* mark the buffer bad unless cond holds (keeps the first error) */
static void vmir_rbuf_check(struct vmir_rbuf *r, bool cond)
{
	if (!r->err && !cond)
		r->err = -EBADMSG;
}

void vmir_put_image_info(struct vmir_wbuf *w,
			 const struct vmir_wire_image_info *i)
{
	vmir_put_str(w, i->name);
	vmir_put_u64(w, i->size);
	vmir_put_u32(w, i->chunk_size);
	vmir_put_u32(w, i->latest);
	vmir_put_u32(w, i->nversions);
	vmir_put_u64(w, i->ctime_ns);
}

void vmir_get_image_info(struct vmir_rbuf *r, struct vmir_wire_image_info *i)
{
	memset(i, 0, sizeof(*i));
	vmir_get_str(r, i->name, sizeof(i->name));
	i->size = vmir_get_u64(r);
	i->chunk_size = vmir_get_u32(r);
	i->latest = vmir_get_u32(r);
	i->nversions = vmir_get_u32(r);
	i->ctime_ns = vmir_get_u64(r);
	vmir_rbuf_check(r, vmir_name_valid(i->name) == 0);
	vmir_rbuf_check(r, vmir_chunk_size_valid(i->chunk_size));
}

void vmir_put_version_info(struct vmir_wbuf *w,
			   const struct vmir_wire_version_info *v)
{
	vmir_put_str(w, v->image);
	vmir_put_u32(w, v->version);
	vmir_put_u64(w, v->size);
	vmir_put_u32(w, v->chunk_size);
	vmir_put_id(w, &v->root);
	vmir_put_str(w, v->parent_image);
	vmir_put_u32(w, v->parent_version);
	vmir_put_u64(w, v->ctime_ns);
	vmir_put_u64(w, v->image_id);
	vmir_put_u64(w, v->parent_image_id);
	vmir_put_u32(w, v->flags);
	vmir_put_id(w, &v->profile);
}

void vmir_get_version_info(struct vmir_rbuf *r,
			   struct vmir_wire_version_info *v)
{
	memset(v, 0, sizeof(*v));
	vmir_get_str(r, v->image, sizeof(v->image));
	v->version = vmir_get_u32(r);
	v->size = vmir_get_u64(r);
	v->chunk_size = vmir_get_u32(r);
	vmir_get_id(r, &v->root);
	vmir_get_str(r, v->parent_image, sizeof(v->parent_image));
	v->parent_version = vmir_get_u32(r);
	v->ctime_ns = vmir_get_u64(r);
	v->image_id = vmir_get_u64(r);
	v->parent_image_id = vmir_get_u64(r);
	v->flags = vmir_get_u32(r);
	vmir_get_id(r, &v->profile);
	vmir_rbuf_check(r, vmir_name_valid(v->image) == 0);
	vmir_rbuf_check(r, vmir_chunk_size_valid(v->chunk_size));
	vmir_rbuf_check(r, v->parent_image[0] == '\0' ||
			   vmir_name_valid(v->parent_image) == 0);
	vmir_rbuf_check(r, !(v->flags & ~VMIR_VI_F_ALL));
	vmir_rbuf_check(r, !v->parent_image[0] == !v->parent_image_id);
	vmir_rbuf_check(r, !(v->flags & VMIR_VI_F_PROFILE_INHERITED) ||
			   !vmir_id_is_zero(&v->profile));
}

void vmir_put_create_req(struct vmir_wbuf *w, const struct vmir_create_req *q)
{
	vmir_put_str(w, q->name);
	vmir_put_u64(w, q->size);
	vmir_put_u32(w, q->chunk_size);
	vmir_put_id(w, &q->root);
	vmir_put_bytes(w, q->token, sizeof(q->token));
}

void vmir_get_create_req(struct vmir_rbuf *r, struct vmir_create_req *q)
{
	memset(q, 0, sizeof(*q));
	vmir_get_str(r, q->name, sizeof(q->name));
	q->size = vmir_get_u64(r);
	q->chunk_size = vmir_get_u32(r);
	vmir_get_id(r, &q->root);
	vmir_get_bytes(r, q->token, sizeof(q->token));
	vmir_rbuf_check(r, vmir_name_valid(q->name) == 0);
	vmir_rbuf_check(r, vmir_chunk_size_valid(q->chunk_size));
}

void vmir_put_publish_req(struct vmir_wbuf *w,
			  const struct vmir_publish_req *q)
{
	vmir_put_str(w, q->name);
	vmir_put_u32(w, q->base_version);
	vmir_put_u64(w, q->size);
	vmir_put_id(w, &q->root);
	vmir_put_bytes(w, q->token, sizeof(q->token));
}

void vmir_get_publish_req(struct vmir_rbuf *r, struct vmir_publish_req *q)
{
	memset(q, 0, sizeof(*q));
	vmir_get_str(r, q->name, sizeof(q->name));
	q->base_version = vmir_get_u32(r);
	q->size = vmir_get_u64(r);
	vmir_get_id(r, &q->root);
	vmir_get_bytes(r, q->token, sizeof(q->token));
	vmir_rbuf_check(r, vmir_name_valid(q->name) == 0);
}

void vmir_put_clone_req(struct vmir_wbuf *w, const struct vmir_clone_req *q)
{
	vmir_put_str(w, q->src);
	vmir_put_u32(w, q->src_version);
	vmir_put_str(w, q->dst);
	vmir_put_u32(w, q->flags);
	vmir_put_u64(w, q->size);
	vmir_put_id(w, &q->root);
	vmir_put_bytes(w, q->token, sizeof(q->token));
}

void vmir_get_clone_req(struct vmir_rbuf *r, struct vmir_clone_req *q)
{
	memset(q, 0, sizeof(*q));
	vmir_get_str(r, q->src, sizeof(q->src));
	q->src_version = vmir_get_u32(r);
	vmir_get_str(r, q->dst, sizeof(q->dst));
	q->flags = vmir_get_u32(r);
	q->size = vmir_get_u64(r);
	vmir_get_id(r, &q->root);
	vmir_get_bytes(r, q->token, sizeof(q->token));
	vmir_rbuf_check(r, vmir_name_valid(q->src) == 0);
	vmir_rbuf_check(r, vmir_name_valid(q->dst) == 0);
	vmir_rbuf_check(r, !(q->flags & ~VMIR_CLONE_F_ALL));
	if (q->flags & VMIR_CLONE_F_CONTENT)
		vmir_rbuf_check(r, q->size > 0);
	else
		vmir_rbuf_check(r, !q->size && vmir_id_is_zero(&q->root));
}

void vmir_put_profile_req(struct vmir_wbuf *w,
			  const struct vmir_profile_req *q)
{
	vmir_put_str(w, q->name);
	vmir_put_u32(w, q->version);
	vmir_put_id(w, &q->old);
	vmir_put_id(w, &q->profile);
}

void vmir_get_profile_req(struct vmir_rbuf *r, struct vmir_profile_req *q)
{
	memset(q, 0, sizeof(*q));
	vmir_get_str(r, q->name, sizeof(q->name));
	q->version = vmir_get_u32(r);
	vmir_get_id(r, &q->old);
	vmir_get_id(r, &q->profile);
	vmir_rbuf_check(r, vmir_name_valid(q->name) == 0);
	vmir_rbuf_check(r, q->version > 0);
	vmir_rbuf_check(r, !vmir_id_is_zero(&q->profile));
}

void vmir_put_peer_req(struct vmir_wbuf *w, const struct vmir_peer_req *q)
{
	vmir_put_str(w, q->name);
	vmir_put_u32(w, q->version);
	vmir_put_str(w, q->addr);
	vmir_put_u32(w, q->lease_ms);
}

void vmir_get_peer_req(struct vmir_rbuf *r, struct vmir_peer_req *q)
{
	memset(q, 0, sizeof(*q));
	vmir_get_str(r, q->name, sizeof(q->name));
	q->version = vmir_get_u32(r);
	vmir_get_str(r, q->addr, sizeof(q->addr));
	q->lease_ms = vmir_get_u32(r);
	vmir_rbuf_check(r, vmir_name_valid(q->name) == 0);
	vmir_rbuf_check(r, q->version > 0);
	vmir_rbuf_check(r, !q->lease_ms || (q->lease_ms >= VMIR_LEASE_MS_MIN &&
					    q->lease_ms <= VMIR_LEASE_MS_MAX));
	/* a numeric IP:PORT other nodes can connect to */
	vmir_rbuf_check(r, vmir_addr_numeric(q->addr) == 0);
}

void vmir_put_peer_entry(struct vmir_wbuf *w, const char *addr,
			 uint32_t ttl_ms)
{
	vmir_put_str(w, addr);
	vmir_put_u32(w, ttl_ms);
}

void vmir_get_peer_entry(struct vmir_rbuf *r, char addr[VMIR_ADDR_MAX],
			 uint32_t *ttl_ms)
{
	vmir_get_str(r, addr, VMIR_ADDR_MAX);
	*ttl_ms = vmir_get_u32(r);
	vmir_rbuf_check(r, vmir_addr_numeric(addr) == 0);
}

void vmir_put_ref_req(struct vmir_wbuf *w, const struct vmir_ref_req *q)
{
	vmir_put_str(w, q->name);
	vmir_put_u32(w, q->version);
}

void vmir_get_ref_req(struct vmir_rbuf *r, struct vmir_ref_req *q)
{
	memset(q, 0, sizeof(*q));
	vmir_get_str(r, q->name, sizeof(q->name));
	q->version = vmir_get_u32(r);
	vmir_rbuf_check(r, vmir_name_valid(q->name) == 0);
}
