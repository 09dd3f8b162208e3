/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vmir wire protocol: framing, authentication and message bodies shared by
 * the servers (vmir-chunkd, vmir-versiond) and libvmir. See docs/protocol.md.
 *
 * A frame is a fixed 56-byte little-endian header, then meta_len bytes of
 * "meta" (the message body, always covered by the MAC), then data_len bytes
 * of bulk "data" (object content). Bulk data is not MACed: it only travels
 * with an object id in the MACed meta and the receiver checks
 * BLAKE2b-256(data) == id before using it, so it is bound to the
 * authenticated frame without a second pass over every byte.
 */
#ifndef VMIR_PROTO_H
#define VMIR_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* the limits the wire shares with the kernel: names, chunk sizes */
#include "uapi/linux/vmir.h"

#define VMIR_ID_LEN		32	/* BLAKE2b-256 */
#define VMIR_KEY_LEN		32	/* cluster key and session key */
#define VMIR_TOKEN_LEN		16	/* a publish token */
#define VMIR_MAC_LEN		16
#define VMIR_NONCE_LEN		32

#define VMIR_PROTO_MAGIC	0x52494d56u	/* "VMIR" little-endian */
#define VMIR_PROTO_VERSION	2	/* 2: profiles (version_info, SET_PROFILE) */
#define VMIR_HDR_LEN		56
#define VMIR_META_MAX		(1u << 20)	/* 1 MiB */
#define VMIR_DATA_MAX		VMIR_CHUNK_SIZE_MAX /* one object: a chunk */
#define VMIR_ADDR_MAX		64	/* "host:port" text, NUL included */
#define VMIR_HAS_MAX		4096		/* ids per HAS request */

struct vmir_id {
	uint8_t b[VMIR_ID_LEN];
};

enum vmir_op {
	VMIR_OP_UNSPEC = 0,
	VMIR_OP_HELLO = 1,	/* meta: nonce[32]; sealed with the cluster key */

	/* chunk server */
	VMIR_OP_PUT = 16,	/* meta: id; data: content. reply: empty */
	VMIR_OP_GET = 17,	/* meta: id. reply meta: id, data: content */
	VMIR_OP_HAS = 18,	/* meta: u32 n, n ids. reply: u32 n, bitmap */
	VMIR_OP_STAT = 19,	/* meta: empty. reply: u64 objects, u64 bytes */

	/* version server */
	VMIR_OP_CREATE = 32,	/* create_req -> version_info (v1) */
	VMIR_OP_LOOKUP = 33,	/* name, u32 version (0 = latest) -> version_info */
	VMIR_OP_LIST = 34,	/* empty -> u32 n, n image_info */
	VMIR_OP_VERSIONS = 35,	/* name -> u32 n, n version_info */
	VMIR_OP_PUBLISH = 36,	/* publish_req -> version_info */
	VMIR_OP_CLONE = 37,	/* clone_req -> version_info (dst v1) */
	VMIR_OP_DELETE = 38,	/* name, u32 version (0 = image) -> empty */
	VMIR_OP_SET_PROFILE = 39, /* profile_req -> version_info */
	VMIR_OP_PEER_LEASE = 40, /* peer_req -> empty */
	VMIR_OP_PEERS = 41,	/* ref_req -> u32 n, n x (str addr, u32 ttl_ms) */

	__VMIR_OP_MAX,
};

/* frame flags */
#define VMIR_F_REPLY		(1u << 0)
#define VMIR_F_ZSTD		(1u << 1)	/* data: a zstd frame of the object */
#define VMIR_F_ALL		(VMIR_F_REPLY | VMIR_F_ZSTD)

/* Decoded header. On the wire every field is little-endian, in this order. */
struct vmir_frame_hdr {
	uint32_t magic;		/* 0  */
	uint16_t version;	/* 4  */
	uint16_t opcode;	/* 6  */
	uint64_t req_id;	/* 8  echoed in the reply */
	uint64_t seq;		/* 16 per direction: 0 for HELLO, then 1, 2, ... */
	uint32_t status;	/* 24 replies: 0 or a positive errno */
	uint32_t meta_len;	/* 28 <= VMIR_META_MAX */
	uint32_t data_len;	/* 32 <= VMIR_DATA_MAX, only PUT req / GET reply */
	uint32_t flags;		/* 36 VMIR_F_*; unknown bits rejected */
	uint8_t mac[VMIR_MAC_LEN]; /* 40 keyed BLAKE2b over hdr(mac=0)||meta */
};

/*
 * Per-connection authentication state. Before the handshake the key is the
 * cluster key; afterwards it is the session key
 * BLAKE2b-256(key = cluster key, client_nonce || server_nonce).
 */
struct vmir_session {
	uint8_t cluster_key[VMIR_KEY_LEN];
	uint8_t key[VMIR_KEY_LEN];
	uint8_t my_nonce[VMIR_NONCE_LEN];
	uint64_t tx_seq;
	uint64_t rx_seq;
	bool established;
};

/* --- ids ------------------------------------------------------------ */
void vmir_id_of(const void *buf, size_t len, struct vmir_id *id);
bool vmir_id_is_zero(const struct vmir_id *id);
bool vmir_id_eq(const struct vmir_id *a, const struct vmir_id *b);
/* hex must hold 2 * VMIR_ID_LEN + 1 bytes */
void vmir_id_to_hex(const struct vmir_id *id, char *hex);
int vmir_id_from_hex(const char *hex, struct vmir_id *id);

/* --- header codec ----------------------------------------------------- */
void vmir_hdr_encode(const struct vmir_frame_hdr *h, uint8_t out[VMIR_HDR_LEN]);
/*
 * Decode and bounds-check a header: magic, version, opcode known, flags
 * known, meta_len/data_len within limits, data only on an opcode and
 * direction that carries it. Returns 0 or -EBADMSG; *why names the field.
 */
int vmir_hdr_decode(const uint8_t in[VMIR_HDR_LEN], struct vmir_frame_hdr *h,
		    const char **why);
bool vmir_op_carries_data(uint16_t opcode, bool reply);
const char *vmir_op_name(uint16_t opcode);

/* --- authentication ------------------------------------------------- */
/*
 * Receiving: every frame goes through vmir_frame_recv_hdr() as soon as
 * its header is in, then vmir_frame_verify() once its meta is in; only
 * then may the receiver act on it.
 */
void vmir_session_init(struct vmir_session *s,
		       const uint8_t cluster_key[VMIR_KEY_LEN]);
/* fill *h's seq and mac for meta, then encode to out */
void vmir_frame_seal(struct vmir_session *s, struct vmir_frame_hdr *h,
		     const void *meta, uint8_t out[VMIR_HDR_LEN]);
/*
 * Decode a received header (vmir_hdr_decode) and check that the frame may
 * come now: before the handshake only a HELLO whose meta is a nonce, after
 * it never a HELLO; at a server only requests, at a client only replies,
 * and a HELLO reply with status 0. Returns 0, -EBADMSG (malformed) or
 * -EPROTO (out of place), with *why naming the problem.
 */
int vmir_frame_recv_hdr(const struct vmir_session *s, bool at_server,
			const uint8_t in[VMIR_HDR_LEN],
			struct vmir_frame_hdr *h, const char **why);
/* verify mac and sequence of a decoded frame; -EACCES on mismatch */
int vmir_frame_verify(struct vmir_session *s, const struct vmir_frame_hdr *h,
		      const void *meta);
/* HELLO meta is our fresh nonce (generated here into s->my_nonce) */
void vmir_hello_nonce(struct vmir_session *s, uint8_t nonce[VMIR_NONCE_LEN]);
/* derive the session key once both nonces are known; resets seqs to 1 */
void vmir_session_establish(struct vmir_session *s,
			    const uint8_t client_nonce[VMIR_NONCE_LEN],
			    const uint8_t server_nonce[VMIR_NONCE_LEN]);

/* --- meta buffers ------------------------------------------------------ */
struct vmir_wbuf {
	uint8_t *p;
	size_t len;
	size_t cap;
	int err;		/* sticky: -ENOMEM or -EMSGSIZE */
};

struct vmir_rbuf {
	const uint8_t *p;
	size_t len;
	size_t off;
	int err;		/* sticky: -EBADMSG */
};

void vmir_wbuf_init(struct vmir_wbuf *w);
void vmir_wbuf_free(struct vmir_wbuf *w);
void vmir_put_u8(struct vmir_wbuf *w, uint8_t v);
void vmir_put_u16(struct vmir_wbuf *w, uint16_t v);
void vmir_put_u32(struct vmir_wbuf *w, uint32_t v);
void vmir_put_u64(struct vmir_wbuf *w, uint64_t v);
void vmir_put_bytes(struct vmir_wbuf *w, const void *p, size_t n);
void vmir_put_id(struct vmir_wbuf *w, const struct vmir_id *id);
void vmir_put_str(struct vmir_wbuf *w, const char *s); /* u16 len + bytes */

void vmir_rbuf_init(struct vmir_rbuf *r, const void *p, size_t len);
uint8_t vmir_get_u8(struct vmir_rbuf *r);
uint16_t vmir_get_u16(struct vmir_rbuf *r);
uint32_t vmir_get_u32(struct vmir_rbuf *r);
uint64_t vmir_get_u64(struct vmir_rbuf *r);
void vmir_get_bytes(struct vmir_rbuf *r, void *p, size_t n);
void vmir_get_id(struct vmir_rbuf *r, struct vmir_id *id);
/* fails (err set) if longer than cap - 1 or containing NUL */
void vmir_get_str(struct vmir_rbuf *r, char *out, size_t cap);
/* 0 if no error and every byte consumed, else -EBADMSG */
int vmir_rbuf_end(struct vmir_rbuf *r);

/* --- message bodies ------------------------------------------------- */
/*
 * Names are NUL-terminated in memory (VMIR_NAME_MAX bytes with the NUL),
 * a u16 length and the bytes on the wire. The info bodies are named
 * vmir_wire_*: libvmir hands its callers structs of its own.
 */
struct vmir_wire_image_info {
	char name[VMIR_NAME_MAX];
	uint64_t size;		/* size of the latest version */
	uint32_t chunk_size;
	uint32_t latest;	/* latest version number */
	uint32_t nversions;
	uint64_t ctime_ns;
};

/* version_info flags */
#define VMIR_VI_F_PARENT_DELETED (1u << 0)	/* the parent image is gone */
#define VMIR_VI_F_PROFILE_INHERITED (1u << 1)	/* profile: the parent's */
#define VMIR_VI_F_ALL		(VMIR_VI_F_PARENT_DELETED | \
				 VMIR_VI_F_PROFILE_INHERITED)

struct vmir_wire_version_info {
	char image[VMIR_NAME_MAX];
	uint32_t version;
	uint64_t size;
	uint32_t chunk_size;
	struct vmir_id root;	/* all-zero id: every chunk is zero */
	/*
	 * The name the parent image had ("" when none): with
	 * VMIR_VI_F_PARENT_DELETED that image was deleted, and the name may
	 * now be another image's; parent_image_id tells them apart.
	 */
	char parent_image[VMIR_NAME_MAX];
	uint32_t parent_version;
	uint64_t ctime_ns;
	uint64_t image_id;	/* never reused, even after a delete */
	uint64_t parent_image_id;	/* 0 when no parent */
	uint32_t flags;		/* VMIR_VI_F_* */
	/*
	 * The access profile learned prefetch follows (an object on the
	 * chunk servers, libclient/profile.c); all-zero: none. A version made
	 * by PUBLISH or CLONE starts with its parent's
	 * (VMIR_VI_F_PROFILE_INHERITED) until SET_PROFILE gives it its own.
	 */
	struct vmir_id profile;
};

struct vmir_create_req {
	char name[VMIR_NAME_MAX];
	uint64_t size;
	uint32_t chunk_size;
	struct vmir_id root;	/* content of version 1 (zero: empty) */
	uint8_t token[VMIR_TOKEN_LEN];	/* as publish_req's; zero: none */
};

struct vmir_publish_req {
	char name[VMIR_NAME_MAX];
	uint32_t base_version;	/* refused with ESTALE unless == latest */
	uint64_t size;
	struct vmir_id root;
	/*
	 * Random, chosen by the client once per publish and sent again by
	 * its retries: a PUBLISH whose token already made a version of the
	 * image is answered with that version. All zero: no token.
	 */
	uint8_t token[VMIR_TOKEN_LEN];
};

/* clone_req flags */
#define VMIR_CLONE_F_CONTENT	(1u << 0)	/* dst v1 gets size + root */
#define VMIR_CLONE_F_ALL	(VMIR_CLONE_F_CONTENT)

/*
 * CLONE: a new image dst whose version 1 shares src@src_version's root.
 * With VMIR_CLONE_F_CONTENT, version 1 instead has the given size and root
 * (parent still src@version): a device commit published as a new image in
 * one atomic step. Without it, size and root must be zero.
 */
struct vmir_clone_req {
	char src[VMIR_NAME_MAX];
	uint32_t src_version;	/* 0 = latest */
	char dst[VMIR_NAME_MAX];
	uint32_t flags;		/* VMIR_CLONE_F_* */
	uint64_t size;
	struct vmir_id root;
	uint8_t token[VMIR_TOKEN_LEN];	/* as publish_req's; zero: none */
};

/*
 * SET_PROFILE: name@version's profile becomes `profile` if it still is
 * `old` (as version_info gave it, inherited or not; zero: none), else
 * ESTALE; already `profile`: answered as done (a retry).
 */
struct vmir_profile_req {
	char name[VMIR_NAME_MAX];
	uint32_t version;	/* >= 1 */
	struct vmir_id old;
	struct vmir_id profile;	/* not zero */
};

/*
 * PEER_LEASE: the node whose helper serves chunks at addr ("IP:PORT") has
 * name@version attached, for the next lease_ms (renewed by sending it
 * again); lease_ms 0: it has not any more. PEERS lists the nodes whose
 * lease of a version has not run out. Leases live in the version
 * server's memory only: after a restart the nodes' renewals refill them.
 */
#define VMIR_LEASE_MS_MIN	1000
#define VMIR_LEASE_MS_MAX	600000
#define VMIR_PEERS_REPLY_MAX	1024	/* nodes one PEERS reply lists */

struct vmir_peer_req {
	char name[VMIR_NAME_MAX];
	uint32_t version;	/* >= 1 */
	char addr[VMIR_ADDR_MAX];
	uint32_t lease_ms;	/* 0, or VMIR_LEASE_MS_MIN..MAX */
};

/* name + version, used by LOOKUP, DELETE (and VERSIONS with version 0) */
struct vmir_ref_req {
	char name[VMIR_NAME_MAX];
	uint32_t version;
};

/*
 * 0 if valid: 1..VMIR_NAME_MAX - 1 of [A-Za-z0-9._-], not starting with
 * '.'
 */
int vmir_name_valid(const char *name);
/* power of two in [VMIR_CHUNK_SIZE_MIN, VMIR_CHUNK_SIZE_MAX] */
bool vmir_chunk_size_valid(uint64_t cs);

void vmir_put_image_info(struct vmir_wbuf *w,
			 const struct vmir_wire_image_info *i);
void vmir_get_image_info(struct vmir_rbuf *r, struct vmir_wire_image_info *i);
void vmir_put_version_info(struct vmir_wbuf *w,
			   const struct vmir_wire_version_info *v);
void vmir_get_version_info(struct vmir_rbuf *r,
			   struct vmir_wire_version_info *v);
void vmir_put_create_req(struct vmir_wbuf *w, const struct vmir_create_req *q);
void vmir_get_create_req(struct vmir_rbuf *r, struct vmir_create_req *q);
void vmir_put_publish_req(struct vmir_wbuf *w,
			  const struct vmir_publish_req *q);
void vmir_get_publish_req(struct vmir_rbuf *r, struct vmir_publish_req *q);
void vmir_put_clone_req(struct vmir_wbuf *w, const struct vmir_clone_req *q);
void vmir_get_clone_req(struct vmir_rbuf *r, struct vmir_clone_req *q);
void vmir_put_profile_req(struct vmir_wbuf *w,
			  const struct vmir_profile_req *q);
void vmir_get_profile_req(struct vmir_rbuf *r, struct vmir_profile_req *q);
void vmir_put_peer_req(struct vmir_wbuf *w, const struct vmir_peer_req *q);
void vmir_get_peer_req(struct vmir_rbuf *r, struct vmir_peer_req *q);
/* one node of a PEERS reply */
void vmir_put_peer_entry(struct vmir_wbuf *w, const char *addr,
			 uint32_t ttl_ms);
void vmir_get_peer_entry(struct vmir_rbuf *r, char addr[VMIR_ADDR_MAX],
			 uint32_t *ttl_ms);
void vmir_put_ref_req(struct vmir_wbuf *w, const struct vmir_ref_req *q);
void vmir_get_ref_req(struct vmir_rbuf *r, struct vmir_ref_req *q);

#endif /* VMIR_PROTO_H */
