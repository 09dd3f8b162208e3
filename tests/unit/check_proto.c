// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Unit tests for the wire protocol: ids, header codec, frame
 * authentication, handshake, the checks of received frames and the meta
 * codec of every message body.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <sodium.h>

#include "vmir_proto.h"
#include "vmir_util.h"

/* --- helpers ---------------------------------------------------------------- */

static const uint8_t key_a[VMIR_KEY_LEN] = {
	1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
	17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
};

static const uint8_t key_b[VMIR_KEY_LEN] = {
	32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17,
	16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1,
};

static void fill_id(struct vmir_id *id, uint8_t seed)
{
	for (int i = 0; i < VMIR_ID_LEN; i++)
		id->b[i] = (uint8_t)(seed + 7 * i);
}

static void valid_hdr(struct vmir_frame_hdr *h)
{
	memset(h, 0, sizeof(*h));
	h->magic = VMIR_PROTO_MAGIC;
	h->version = VMIR_PROTO_VERSION;
	h->opcode = VMIR_OP_GET;
	h->req_id = 42;
	h->meta_len = VMIR_ID_LEN;
}

/* encode h, decode it again; returns decode's result and *why */
static int reencode(const struct vmir_frame_hdr *h, const char **why)
{
	uint8_t raw[VMIR_HDR_LEN];
	struct vmir_frame_hdr out;

	vmir_hdr_encode(h, raw);
	*why = NULL;
	return vmir_hdr_decode(raw, &out, why);
}

/* --- ids ------------------------------------------------------------------- */

START_TEST(id_of_is_blake2b_256)
{
	static const char msg[] = "vmir";
	uint8_t want[32];
	struct vmir_id id;

	ck_assert_int_ge(sodium_init(), 0);
	crypto_generichash(want, sizeof(want), (const uint8_t *)msg,
			   strlen(msg), NULL, 0);
	vmir_id_of(msg, strlen(msg), &id);
	ck_assert_mem_eq(id.b, want, 32);
}
END_TEST

START_TEST(id_of_empty_input_matches_known_vector)
{
	/* BLAKE2b-256("") */
	static const char want[] =
		"0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8";
	struct vmir_id id;
	char hex[2 * VMIR_ID_LEN + 1];

	vmir_id_of("", 0, &id);
	vmir_id_to_hex(&id, hex);
	ck_assert_str_eq(hex, want);
}
END_TEST

START_TEST(id_hex_round_trips)
{
	struct vmir_id a, b;
	char hex[2 * VMIR_ID_LEN + 1];

	fill_id(&a, 0xa5);
	vmir_id_to_hex(&a, hex);
	ck_assert_uint_eq(strlen(hex), 64);
	ck_assert_int_eq(vmir_id_from_hex(hex, &b), 0);
	ck_assert(vmir_id_eq(&a, &b));
}
END_TEST

START_TEST(id_from_hex_rejects_wrong_length_and_junk)
{
	char hex[2 * VMIR_ID_LEN + 2];
	struct vmir_id a, b;

	fill_id(&a, 1);
	vmir_id_to_hex(&a, hex);
	memset(&b, 0x77, sizeof(b));
	/* too short */
	hex[63] = '\0';
	ck_assert_int_eq(vmir_id_from_hex(hex, &b), -EINVAL);
	/* too long */
	vmir_id_to_hex(&a, hex);
	hex[64] = '0';
	hex[65] = '\0';
	ck_assert_int_eq(vmir_id_from_hex(hex, &b), -EINVAL);
	/* non-hex digit */
	vmir_id_to_hex(&a, hex);
	hex[10] = 'g';
	ck_assert_int_eq(vmir_id_from_hex(hex, &b), -EINVAL);
	/* failures leave the output untouched */
	for (int i = 0; i < VMIR_ID_LEN; i++)
		ck_assert_uint_eq(b.b[i], 0x77);
}
END_TEST

START_TEST(id_zero_and_eq)
{
	struct vmir_id z, a, b;

	memset(&z, 0, sizeof(z));
	ck_assert(vmir_id_is_zero(&z));
	fill_id(&a, 3);
	ck_assert(!vmir_id_is_zero(&a));
	z.b[31] = 1;
	ck_assert(!vmir_id_is_zero(&z));
	b = a;
	ck_assert(vmir_id_eq(&a, &b));
	b.b[17] ^= 0x10;
	ck_assert(!vmir_id_eq(&a, &b));
}
END_TEST

/* --- header codec ---------------------------------------------------------- */

START_TEST(hdr_round_trips_every_field)
{
	struct vmir_frame_hdr h, out;
	uint8_t raw[VMIR_HDR_LEN];
	const char *why = "unset";

	memset(&h, 0, sizeof(h));
	h.magic = VMIR_PROTO_MAGIC;
	h.version = VMIR_PROTO_VERSION;
	h.opcode = VMIR_OP_GET;
	h.req_id = 0x0102030405060708ull;
	h.seq = 0x1112131415161718ull;
	h.status = 0x21222324;
	h.meta_len = VMIR_META_MAX;
	h.data_len = VMIR_DATA_MAX;
	h.flags = VMIR_F_REPLY;
	for (int i = 0; i < VMIR_MAC_LEN; i++)
		h.mac[i] = (uint8_t)(0xc0 + i);

	vmir_hdr_encode(&h, raw);
	ck_assert_int_eq(vmir_hdr_decode(raw, &out, &why), 0);
	ck_assert_ptr_null(why);
	ck_assert_uint_eq(out.magic, h.magic);
	ck_assert_uint_eq(out.version, h.version);
	ck_assert_uint_eq(out.opcode, h.opcode);
	ck_assert_uint_eq(out.req_id, h.req_id);
	ck_assert_uint_eq(out.seq, h.seq);
	ck_assert_uint_eq(out.status, h.status);
	ck_assert_uint_eq(out.meta_len, h.meta_len);
	ck_assert_uint_eq(out.data_len, h.data_len);
	ck_assert_uint_eq(out.flags, h.flags);
	ck_assert_mem_eq(out.mac, h.mac, VMIR_MAC_LEN);
}
END_TEST

START_TEST(hdr_layout_is_little_endian_at_documented_offsets)
{
	struct vmir_frame_hdr h;
	uint8_t raw[VMIR_HDR_LEN];

	memset(&h, 0, sizeof(h));
	h.magic = VMIR_PROTO_MAGIC;
	h.version = 0x0201;
	h.opcode = 0x0403;
	h.req_id = 0x0c0b0a0908070605ull;
	h.seq = 0x14131211100f0e0dull;
	h.status = 0x18171615;
	h.meta_len = 0x1c1b1a19;
	h.data_len = 0x201f1e1d;
	h.flags = 0x24232221;
	for (int i = 0; i < VMIR_MAC_LEN; i++)
		h.mac[i] = (uint8_t)(0x25 + i);
	vmir_hdr_encode(&h, raw);

	ck_assert_mem_eq(raw, "VMIR", 4);
	/* after the magic every byte counts up from 1 */
	for (int i = 4; i < VMIR_HDR_LEN; i++)
		ck_assert_uint_eq(raw[i], i - 3);
}
END_TEST

START_TEST(hdr_rejects_bad_magic)
{
	struct vmir_frame_hdr h;
	const char *why;

	valid_hdr(&h);
	h.magic = 0x52494d57;
	ck_assert_int_eq(reencode(&h, &why), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(why, "magic"));
}
END_TEST

START_TEST(hdr_rejects_bad_version)
{
	struct vmir_frame_hdr h;
	const char *why;

	valid_hdr(&h);
	h.version = VMIR_PROTO_VERSION + 1;
	ck_assert_int_eq(reencode(&h, &why), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(why, "version"));
}
END_TEST

START_TEST(hdr_rejects_unknown_opcode)
{
	static const uint16_t bad[] = { VMIR_OP_UNSPEC, 2, 15, 20, 31,
					__VMIR_OP_MAX, 0xffff };
	struct vmir_frame_hdr h;
	const char *why;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		valid_hdr(&h);
		h.opcode = bad[i];
		ck_assert_int_eq(reencode(&h, &why), -EBADMSG);
		ck_assert_ptr_nonnull(strstr(why, "opcode"));
		ck_assert_str_eq(vmir_op_name(bad[i]), "unknown");
	}
}
END_TEST

START_TEST(hdr_accepts_every_known_opcode)
{
	static const uint16_t ops[] = {
		VMIR_OP_HELLO, VMIR_OP_PUT, VMIR_OP_GET, VMIR_OP_HAS,
		VMIR_OP_STAT, VMIR_OP_CREATE, VMIR_OP_LOOKUP, VMIR_OP_LIST,
		VMIR_OP_VERSIONS, VMIR_OP_PUBLISH, VMIR_OP_CLONE,
		VMIR_OP_DELETE, VMIR_OP_SET_PROFILE,
	};
	struct vmir_frame_hdr h;
	const char *why;

	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		valid_hdr(&h);
		h.opcode = ops[i];
		ck_assert_int_eq(reencode(&h, &why), 0);
		ck_assert_str_ne(vmir_op_name(ops[i]), "unknown");
	}
	ck_assert_str_eq(vmir_op_name(VMIR_OP_PUT), "PUT");
	ck_assert_str_eq(vmir_op_name(VMIR_OP_PUBLISH), "PUBLISH");
}
END_TEST

START_TEST(hdr_rejects_unknown_flag)
{
	struct vmir_frame_hdr h;
	const char *why;

	valid_hdr(&h);
	h.flags = VMIR_F_REPLY | (1u << 2);
	ck_assert_int_eq(reencode(&h, &why), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(why, "flag"));
	/* packed data needs data */
	h.flags = VMIR_F_REPLY | VMIR_F_ZSTD;
	ck_assert_int_eq(reencode(&h, &why), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(why, "zstd"));
	h.data_len = 100;
	ck_assert_int_eq(reencode(&h, &why), 0);
	h.flags = 1u << 31;
	ck_assert_int_eq(reencode(&h, &why), -EBADMSG);
}
END_TEST

START_TEST(hdr_rejects_meta_len_too_big)
{
	struct vmir_frame_hdr h;
	const char *why;

	valid_hdr(&h);
	h.meta_len = VMIR_META_MAX;
	ck_assert_int_eq(reencode(&h, &why), 0);
	h.meta_len = VMIR_META_MAX + 1;
	ck_assert_int_eq(reencode(&h, &why), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(why, "meta_len"));
}
END_TEST

START_TEST(hdr_rejects_data_len_too_big)
{
	struct vmir_frame_hdr h;
	const char *why;

	valid_hdr(&h);
	h.opcode = VMIR_OP_PUT;
	h.data_len = VMIR_DATA_MAX;
	ck_assert_int_eq(reencode(&h, &why), 0);
	h.data_len = VMIR_DATA_MAX + 1;
	ck_assert_int_eq(reencode(&h, &why), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(why, "data_len"));
}
END_TEST

START_TEST(hdr_rejects_data_on_opcode_without_data)
{
	struct vmir_frame_hdr h;
	const char *why;

	/* PUT carries data only in the request, GET only in the reply */
	ck_assert(vmir_op_carries_data(VMIR_OP_PUT, false));
	ck_assert(!vmir_op_carries_data(VMIR_OP_PUT, true));
	ck_assert(!vmir_op_carries_data(VMIR_OP_GET, false));
	ck_assert(vmir_op_carries_data(VMIR_OP_GET, true));
	ck_assert(!vmir_op_carries_data(VMIR_OP_HAS, false));
	ck_assert(!vmir_op_carries_data(VMIR_OP_CREATE, true));

	valid_hdr(&h);
	h.opcode = VMIR_OP_PUT;
	h.data_len = 1;
	h.flags = VMIR_F_REPLY;
	ck_assert_int_eq(reencode(&h, &why), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(why, "data"));

	valid_hdr(&h);
	h.opcode = VMIR_OP_GET;
	h.data_len = 1;
	ck_assert_int_eq(reencode(&h, &why), -EBADMSG);
	h.flags = VMIR_F_REPLY;
	ck_assert_int_eq(reencode(&h, &why), 0);

	valid_hdr(&h);
	h.opcode = VMIR_OP_HELLO;
	h.data_len = 4096;
	ck_assert_int_eq(reencode(&h, &why), -EBADMSG);
}
END_TEST

START_TEST(hdr_rejects_status_in_request)
{
	struct vmir_frame_hdr h;
	const char *why;

	valid_hdr(&h);
	h.status = ENOENT;
	ck_assert_int_eq(reencode(&h, &why), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(why, "status"));
	h.flags = VMIR_F_REPLY;
	ck_assert_int_eq(reencode(&h, &why), 0);
}
END_TEST

/* --- authentication ---------------------------------------------------------- */

/* seal h+meta with tx, decode the wire bytes, verify with rx */
static int seal_and_verify(struct vmir_session *tx, struct vmir_session *rx,
			   struct vmir_frame_hdr *h, const void *meta)
{
	uint8_t raw[VMIR_HDR_LEN];
	struct vmir_frame_hdr got;
	const char *why;

	vmir_frame_seal(tx, h, meta, raw);
	ck_assert_int_eq(vmir_hdr_decode(raw, &got, &why), 0);
	return vmir_frame_verify(rx, &got, meta);
}

/* a client and a server session after a full handshake */
static void handshake(struct vmir_session *c, struct vmir_session *s)
{
	uint8_t cn[VMIR_NONCE_LEN], sn[VMIR_NONCE_LEN];
	struct vmir_frame_hdr h;

	vmir_session_init(c, key_a);
	vmir_session_init(s, key_a);

	vmir_hello_nonce(c, cn);
	valid_hdr(&h);
	h.opcode = VMIR_OP_HELLO;
	h.meta_len = VMIR_NONCE_LEN;
	ck_assert_int_eq(seal_and_verify(c, s, &h, cn), 0);
	ck_assert_uint_eq(h.seq, 0);

	vmir_hello_nonce(s, sn);
	valid_hdr(&h);
	h.opcode = VMIR_OP_HELLO;
	h.flags = VMIR_F_REPLY;
	h.meta_len = VMIR_NONCE_LEN;
	ck_assert_int_eq(seal_and_verify(s, c, &h, sn), 0);
	ck_assert_uint_eq(h.seq, 0);

	vmir_session_establish(c, cn, sn);
	vmir_session_establish(s, cn, sn);
}

START_TEST(seal_verify_round_trip)
{
	struct vmir_session c, s;
	struct vmir_frame_hdr h;
	struct vmir_id id;

	handshake(&c, &s);
	for (uint64_t i = 1; i <= 5; i++) {
		fill_id(&id, (uint8_t)i);
		valid_hdr(&h);
		h.req_id = i;
		ck_assert_int_eq(seal_and_verify(&c, &s, &h, &id), 0);
		ck_assert_uint_eq(h.seq, i);
		h.flags = VMIR_F_REPLY;
		ck_assert_int_eq(seal_and_verify(&s, &c, &h, &id), 0);
	}
	/* empty meta (LIST, STAT) */
	valid_hdr(&h);
	h.opcode = VMIR_OP_LIST;
	h.meta_len = 0;
	ck_assert_int_eq(seal_and_verify(&c, &s, &h, NULL), 0);
}
END_TEST

START_TEST(verify_fails_on_flipped_meta_byte)
{
	struct vmir_session c, s;
	struct vmir_frame_hdr h, got;
	uint8_t raw[VMIR_HDR_LEN];
	struct vmir_id id;
	const char *why;

	handshake(&c, &s);
	fill_id(&id, 9);
	valid_hdr(&h);
	vmir_frame_seal(&c, &h, &id, raw);
	ck_assert_int_eq(vmir_hdr_decode(raw, &got, &why), 0);
	id.b[VMIR_ID_LEN - 1] ^= 1;
	ck_assert_int_eq(vmir_frame_verify(&s, &got, &id), -EACCES);
	/* the genuine frame still verifies: a failure consumed no seq */
	id.b[VMIR_ID_LEN - 1] ^= 1;
	ck_assert_int_eq(vmir_frame_verify(&s, &got, &id), 0);
}
END_TEST

START_TEST(verify_fails_on_flipped_header_byte)
{
	/* a flipped meta_len byte may claim up to 16 MiB + 32 of meta */
	size_t metasz = (1u << 25);
	uint8_t *meta = calloc(1, metasz);

	ck_assert_ptr_nonnull(meta);
	fill_id((struct vmir_id *)meta, 11);
	/* every header byte outside the mac is covered */
	for (int byte = 0; byte < 40; byte++) {
		struct vmir_session c, s;
		struct vmir_frame_hdr h, got;
		uint8_t raw[VMIR_HDR_LEN];
		const char *why;

		handshake(&c, &s);
		valid_hdr(&h);
		h.flags = VMIR_F_REPLY;
		vmir_frame_seal(&c, &h, meta, raw);
		raw[byte] ^= 0x01;
		/* fields are decoded even when decode objects to them */
		(void)vmir_hdr_decode(raw, &got, &why);
		/* seq bytes (16..23) fail the sequence check, others the mac */
		ck_assert_msg(vmir_frame_verify(&s, &got, meta) == -EACCES,
			      "flipped header byte %d was accepted", byte);
	}
	/* and the mac itself */
	{
		struct vmir_session c, s;
		struct vmir_frame_hdr h, got;
		uint8_t raw[VMIR_HDR_LEN];
		const char *why;

		handshake(&c, &s);
		valid_hdr(&h);
		vmir_frame_seal(&c, &h, meta, raw);
		raw[VMIR_HDR_LEN - 1] ^= 0x80;
		ck_assert_int_eq(vmir_hdr_decode(raw, &got, &why), 0);
		ck_assert_int_eq(vmir_frame_verify(&s, &got, meta), -EACCES);
	}
	free(meta);
}
END_TEST

START_TEST(verify_fails_on_replayed_frame)
{
	struct vmir_session c, s;
	struct vmir_frame_hdr h, got;
	uint8_t raw[VMIR_HDR_LEN];
	struct vmir_id id;
	const char *why;

	handshake(&c, &s);
	fill_id(&id, 13);
	valid_hdr(&h);
	vmir_frame_seal(&c, &h, &id, raw);
	ck_assert_int_eq(vmir_hdr_decode(raw, &got, &why), 0);
	ck_assert_int_eq(vmir_frame_verify(&s, &got, &id), 0);
	ck_assert_int_eq(vmir_frame_verify(&s, &got, &id), -EACCES);
}
END_TEST

START_TEST(verify_fails_on_reordered_frames)
{
	struct vmir_session c, s;
	struct vmir_frame_hdr h1, h2, g1, g2;
	uint8_t r1[VMIR_HDR_LEN], r2[VMIR_HDR_LEN];
	struct vmir_id id;
	const char *why;

	handshake(&c, &s);
	fill_id(&id, 14);
	valid_hdr(&h1);
	valid_hdr(&h2);
	vmir_frame_seal(&c, &h1, &id, r1);
	vmir_frame_seal(&c, &h2, &id, r2);
	ck_assert_int_eq(vmir_hdr_decode(r1, &g1, &why), 0);
	ck_assert_int_eq(vmir_hdr_decode(r2, &g2, &why), 0);
	ck_assert_int_eq(vmir_frame_verify(&s, &g2, &id), -EACCES);
	ck_assert_int_eq(vmir_frame_verify(&s, &g1, &id), 0);
	ck_assert_int_eq(vmir_frame_verify(&s, &g2, &id), 0);
}
END_TEST

START_TEST(verify_fails_with_different_key)
{
	struct vmir_session c, s;
	struct vmir_frame_hdr h;
	uint8_t n[VMIR_NONCE_LEN];

	/* a HELLO sealed with the wrong cluster key is refused */
	vmir_session_init(&c, key_b);
	vmir_session_init(&s, key_a);
	vmir_hello_nonce(&c, n);
	valid_hdr(&h);
	h.opcode = VMIR_OP_HELLO;
	h.meta_len = VMIR_NONCE_LEN;
	ck_assert_int_eq(seal_and_verify(&c, &s, &h, n), -EACCES);
}
END_TEST

START_TEST(verify_fails_across_sessions)
{
	struct vmir_session c1, s1, c2, s2, pre;
	struct vmir_frame_hdr h, got;
	uint8_t raw[VMIR_HDR_LEN];
	struct vmir_id id;
	const char *why;

	/* a frame from one session does not verify in another */
	handshake(&c1, &s1);
	handshake(&c2, &s2);
	fill_id(&id, 15);
	valid_hdr(&h);
	vmir_frame_seal(&c1, &h, &id, raw);
	ck_assert_int_eq(vmir_hdr_decode(raw, &got, &why), 0);
	ck_assert_int_eq(vmir_frame_verify(&s2, &got, &id), -EACCES);
	ck_assert_int_eq(vmir_frame_verify(&s1, &got, &id), 0);

	/* nor does a cluster-key frame once the session is established */
	vmir_session_init(&pre, key_a);
	pre.tx_seq = s1.rx_seq;
	valid_hdr(&h);
	ck_assert_int_eq(seal_and_verify(&pre, &s1, &h, &id), -EACCES);
}
END_TEST

START_TEST(handshake_derives_same_session_key)
{
	struct vmir_session c, s;
	uint8_t want[VMIR_KEY_LEN];
	uint8_t cn_sn[2 * VMIR_NONCE_LEN];

	handshake(&c, &s);
	ck_assert(c.established);
	ck_assert(s.established);
	ck_assert_mem_eq(c.key, s.key, VMIR_KEY_LEN);
	ck_assert(memcmp(c.key, key_a, VMIR_KEY_LEN) != 0);
	ck_assert_uint_eq(c.tx_seq, 1);
	ck_assert_uint_eq(c.rx_seq, 1);
	ck_assert_uint_eq(s.tx_seq, 1);
	ck_assert_uint_eq(s.rx_seq, 1);

	/* key = BLAKE2b-256(key = cluster key, client_nonce || server_nonce) */
	memcpy(cn_sn, c.my_nonce, VMIR_NONCE_LEN);
	memcpy(cn_sn + VMIR_NONCE_LEN, s.my_nonce, VMIR_NONCE_LEN);
	crypto_generichash(want, sizeof(want), cn_sn, sizeof(cn_sn), key_a,
			   VMIR_KEY_LEN);
	ck_assert_mem_eq(c.key, want, VMIR_KEY_LEN);
}
END_TEST

START_TEST(handshake_keys_differ_for_different_nonces)
{
	struct vmir_session c1, s1, c2, s2;
	struct vmir_session x, y;
	uint8_t n1[VMIR_NONCE_LEN], n2[VMIR_NONCE_LEN];

	handshake(&c1, &s1);
	handshake(&c2, &s2);
	ck_assert(memcmp(c1.my_nonce, c2.my_nonce, VMIR_NONCE_LEN) != 0);
	ck_assert(memcmp(c1.key, c2.key, VMIR_KEY_LEN) != 0);

	/* swapping client and server nonces gives a different key too */
	memset(n1, 1, sizeof(n1));
	memset(n2, 2, sizeof(n2));
	vmir_session_init(&x, key_a);
	vmir_session_init(&y, key_a);
	vmir_session_establish(&x, n1, n2);
	vmir_session_establish(&y, n2, n1);
	ck_assert(memcmp(x.key, y.key, VMIR_KEY_LEN) != 0);
	/* and a different cluster key with the same nonces */
	vmir_session_init(&y, key_b);
	vmir_session_establish(&y, n1, n2);
	ck_assert(memcmp(x.key, y.key, VMIR_KEY_LEN) != 0);
}
END_TEST

/* --- receiving frames --------------------------------------------------- */

/* h as received on s by a server (at_server) or a client; *why kept */
static int recv_hdr(const struct vmir_session *s, bool at_server,
		    const struct vmir_frame_hdr *h, const char **why)
{
	struct vmir_frame_hdr out;
	uint8_t raw[VMIR_HDR_LEN];

	vmir_hdr_encode(h, raw);
	*why = NULL;
	return vmir_frame_recv_hdr(s, at_server, raw, &out, why);
}

static void hello_hdr(struct vmir_frame_hdr *h, bool reply)
{
	valid_hdr(h);
	h->opcode = VMIR_OP_HELLO;
	h->req_id = 0;
	h->meta_len = VMIR_NONCE_LEN;
	h->flags = reply ? VMIR_F_REPLY : 0;
}

START_TEST(recv_before_handshake_takes_only_hello_with_a_nonce)
{
	struct vmir_frame_hdr h;
	struct vmir_session s;
	const char *why;

	vmir_session_init(&s, key_a);
	hello_hdr(&h, false);
	ck_assert_int_eq(recv_hdr(&s, true, &h, &why), 0);
	ck_assert_ptr_null(why);
	hello_hdr(&h, true);
	ck_assert_int_eq(recv_hdr(&s, false, &h, &why), 0);

	valid_hdr(&h);
	ck_assert_int_eq(recv_hdr(&s, true, &h, &why), -EPROTO);
	ck_assert_str_eq(why, "first frame is not HELLO");
	h.flags = VMIR_F_REPLY;
	ck_assert_int_eq(recv_hdr(&s, false, &h, &why), -EPROTO);
	ck_assert_str_eq(why, "first frame is not HELLO");

	hello_hdr(&h, false);
	h.meta_len = VMIR_NONCE_LEN - 1;
	ck_assert_int_eq(recv_hdr(&s, true, &h, &why), -EPROTO);
	ck_assert_str_eq(why, "HELLO meta is not a 32-byte nonce");
	hello_hdr(&h, true);
	h.status = EACCES;
	ck_assert_int_eq(recv_hdr(&s, false, &h, &why), -EPROTO);
	ck_assert_str_eq(why, "HELLO refused");
}
END_TEST

START_TEST(recv_takes_requests_at_a_server_and_replies_at_a_client)
{
	struct vmir_frame_hdr h;
	struct vmir_session s;
	const char *why;

	vmir_session_init(&s, key_a);
	hello_hdr(&h, true);
	ck_assert_int_eq(recv_hdr(&s, true, &h, &why), -EPROTO);
	ck_assert_str_eq(why, "reply frame sent to a server");
	hello_hdr(&h, false);
	ck_assert_int_eq(recv_hdr(&s, false, &h, &why), -EPROTO);
	ck_assert_str_eq(why, "request frame from a server");

	s.established = true;
	valid_hdr(&h);
	ck_assert_int_eq(recv_hdr(&s, true, &h, &why), 0);
	ck_assert_int_eq(recv_hdr(&s, false, &h, &why), -EPROTO);
	ck_assert_str_eq(why, "request frame from a server");
	h.flags = VMIR_F_REPLY;
	h.data_len = 4096;
	ck_assert_int_eq(recv_hdr(&s, false, &h, &why), 0);
	ck_assert_int_eq(recv_hdr(&s, true, &h, &why), -EPROTO);
	ck_assert_str_eq(why, "reply frame sent to a server");
}
END_TEST

START_TEST(recv_refuses_hello_after_the_handshake_and_bad_headers)
{
	struct vmir_frame_hdr h;
	struct vmir_session s;
	const char *why;

	vmir_session_init(&s, key_a);
	s.established = true;
	hello_hdr(&h, false);
	ck_assert_int_eq(recv_hdr(&s, true, &h, &why), -EPROTO);
	ck_assert_str_eq(why, "HELLO after the handshake");
	hello_hdr(&h, true);
	ck_assert_int_eq(recv_hdr(&s, false, &h, &why), -EPROTO);
	ck_assert_str_eq(why, "HELLO after the handshake");

	/* what vmir_hdr_decode refuses, refused the same way */
	valid_hdr(&h);
	h.magic ^= 1;
	ck_assert_int_eq(recv_hdr(&s, true, &h, &why), -EBADMSG);
	ck_assert_str_eq(why, "bad magic");
}
END_TEST

START_TEST(session_init_starts_with_cluster_key)
{
	struct vmir_session s;

	memset(&s, 0xee, sizeof(s));
	vmir_session_init(&s, key_a);
	ck_assert_mem_eq(s.cluster_key, key_a, VMIR_KEY_LEN);
	ck_assert_mem_eq(s.key, key_a, VMIR_KEY_LEN);
	ck_assert_uint_eq(s.tx_seq, 0);
	ck_assert_uint_eq(s.rx_seq, 0);
	ck_assert(!s.established);
}
END_TEST

/* --- meta buffers -------------------------------------------------------------- */

START_TEST(wbuf_rbuf_primitives_round_trip)
{
	struct vmir_wbuf w;
	struct vmir_rbuf r;
	struct vmir_id id, got_id;
	uint8_t bytes[5] = { 9, 8, 7, 6, 5 }, got_bytes[5];
	char s[16];

	fill_id(&id, 0x33);
	vmir_wbuf_init(&w);
	vmir_put_u8(&w, 0xab);
	vmir_put_u16(&w, 0xbeef);
	vmir_put_u32(&w, 0xdeadbeef);
	vmir_put_u64(&w, 0x0123456789abcdefull);
	vmir_put_bytes(&w, bytes, sizeof(bytes));
	vmir_put_id(&w, &id);
	vmir_put_str(&w, "hello");
	vmir_put_str(&w, "");
	ck_assert_int_eq(w.err, 0);
	ck_assert_uint_eq(w.len, 1 + 2 + 4 + 8 + 5 + 32 + 2 + 5 + 2);
	/* little-endian on the wire */
	ck_assert_uint_eq(w.p[1], 0xef);
	ck_assert_uint_eq(w.p[2], 0xbe);

	vmir_rbuf_init(&r, w.p, w.len);
	ck_assert_uint_eq(vmir_get_u8(&r), 0xab);
	ck_assert_uint_eq(vmir_get_u16(&r), 0xbeef);
	ck_assert_uint_eq(vmir_get_u32(&r), 0xdeadbeef);
	ck_assert_uint_eq(vmir_get_u64(&r), 0x0123456789abcdefull);
	vmir_get_bytes(&r, got_bytes, sizeof(got_bytes));
	ck_assert_mem_eq(got_bytes, bytes, sizeof(bytes));
	vmir_get_id(&r, &got_id);
	ck_assert(vmir_id_eq(&got_id, &id));
	vmir_get_str(&r, s, sizeof(s));
	ck_assert_str_eq(s, "hello");
	vmir_get_str(&r, s, sizeof(s));
	ck_assert_str_eq(s, "");
	ck_assert_int_eq(vmir_rbuf_end(&r), 0);
	vmir_wbuf_free(&w);
	ck_assert_ptr_null(w.p);
}
END_TEST

START_TEST(rbuf_overrun_sets_sticky_error)
{
	static const uint8_t buf[3] = { 1, 2, 3 };
	struct vmir_rbuf r;

	vmir_rbuf_init(&r, buf, sizeof(buf));
	ck_assert_uint_eq(vmir_get_u32(&r), 0);
	ck_assert_int_eq(r.err, -EBADMSG);
	/* once failed, even a fitting read returns 0 */
	ck_assert_uint_eq(vmir_get_u8(&r), 0);
	ck_assert_int_eq(vmir_rbuf_end(&r), -EBADMSG);
}
END_TEST

START_TEST(rbuf_end_rejects_trailing_bytes)
{
	static const uint8_t buf[5] = { 1, 0, 0, 0, 0xff };
	struct vmir_rbuf r;

	vmir_rbuf_init(&r, buf, sizeof(buf));
	ck_assert_uint_eq(vmir_get_u32(&r), 1);
	ck_assert_int_eq(r.err, 0);
	ck_assert_int_eq(vmir_rbuf_end(&r), -EBADMSG);
}
END_TEST

START_TEST(get_str_rejects_overlong_and_nul)
{
	struct vmir_wbuf w;
	struct vmir_rbuf r;
	char s[6];

	/* cap 6 holds 5 characters and the NUL */
	vmir_wbuf_init(&w);
	vmir_put_str(&w, "12345");
	vmir_rbuf_init(&r, w.p, w.len);
	vmir_get_str(&r, s, sizeof(s));
	ck_assert_int_eq(vmir_rbuf_end(&r), 0);
	ck_assert_str_eq(s, "12345");
	vmir_wbuf_free(&w);

	vmir_wbuf_init(&w);
	vmir_put_str(&w, "123456");
	vmir_rbuf_init(&r, w.p, w.len);
	vmir_get_str(&r, s, sizeof(s));
	ck_assert_int_eq(r.err, -EBADMSG);
	vmir_wbuf_free(&w);

	vmir_wbuf_init(&w);
	vmir_put_u16(&w, 3);
	vmir_put_bytes(&w, "a\0b", 3);
	vmir_rbuf_init(&r, w.p, w.len);
	vmir_get_str(&r, s, sizeof(s));
	ck_assert_int_eq(r.err, -EBADMSG);
	vmir_wbuf_free(&w);
}
END_TEST

START_TEST(wbuf_refuses_more_than_meta_max)
{
	struct vmir_wbuf w;
	uint8_t *big;

	big = calloc(1, VMIR_META_MAX);
	ck_assert_ptr_nonnull(big);
	vmir_wbuf_init(&w);
	vmir_put_bytes(&w, big, VMIR_META_MAX);
	ck_assert_int_eq(w.err, 0);
	ck_assert_uint_eq(w.len, VMIR_META_MAX);
	vmir_put_u8(&w, 1);
	ck_assert_int_eq(w.err, -EMSGSIZE);
	ck_assert_uint_eq(w.len, VMIR_META_MAX);
	/* sticky */
	vmir_put_u8(&w, 1);
	ck_assert_int_eq(w.err, -EMSGSIZE);
	vmir_wbuf_free(&w);
	free(big);
}
END_TEST

/* --- message bodies ---------------------------------------------------------------- */

START_TEST(name_valid_rules)
{
	char longest[VMIR_NAME_MAX + 1];

	ck_assert_int_eq(vmir_name_valid("debian-12.img_v2"), 0);
	ck_assert_int_eq(vmir_name_valid("a"), 0);
	ck_assert_int_eq(vmir_name_valid("a..b"), 0);
	ck_assert_int_ne(vmir_name_valid(""), 0);
	ck_assert_int_ne(vmir_name_valid(".hidden"), 0);
	ck_assert_int_ne(vmir_name_valid(".."), 0);
	ck_assert_int_ne(vmir_name_valid("a/b"), 0);
	ck_assert_int_ne(vmir_name_valid("a b"), 0);
	ck_assert_int_ne(vmir_name_valid("caf\xc3\xa9"), 0);
	/* VMIR_NAME_MAX holds the NUL: 128 characters at most */
	memset(longest, 'x', VMIR_NAME_MAX - 1);
	longest[VMIR_NAME_MAX - 1] = '\0';
	ck_assert_int_eq(strlen(longest), 128);
	ck_assert_int_eq(vmir_name_valid(longest), 0);
	longest[VMIR_NAME_MAX - 1] = 'x';
	longest[VMIR_NAME_MAX] = '\0';
	ck_assert_int_ne(vmir_name_valid(longest), 0);
}
END_TEST

START_TEST(chunk_size_valid_rules)
{
	ck_assert(vmir_chunk_size_valid(VMIR_CHUNK_SIZE_MIN));
	ck_assert(vmir_chunk_size_valid(VMIR_CHUNK_DEFAULT));
	ck_assert(vmir_chunk_size_valid(VMIR_CHUNK_SIZE_MAX));
	ck_assert(!vmir_chunk_size_valid(0));
	ck_assert(!vmir_chunk_size_valid(VMIR_CHUNK_SIZE_MIN / 2));
	ck_assert(!vmir_chunk_size_valid(VMIR_CHUNK_SIZE_MAX * 2));
	ck_assert(!vmir_chunk_size_valid(12 << 10));
	ck_assert(!vmir_chunk_size_valid(96 << 10));
	ck_assert(!vmir_chunk_size_valid(1ull << 40));
}
END_TEST

/*
 * Every message codec as a table: encode a sample, decode it and compare,
 * and decode every strict prefix of the encoding (must fail).
 */
struct codec {
	const char *name;
	size_t size;
	void (*fill)(void *);
	void (*put)(struct vmir_wbuf *, const void *);
	void (*get)(struct vmir_rbuf *, void *);
};

static void fill_image_info(void *p)
{
	struct vmir_wire_image_info *i = p;

	memset(i, 0, sizeof(*i));
	strcpy(i->name, "base-image");
	i->size = 10ull << 30;
	i->chunk_size = 64 << 10;
	i->latest = 7;
	i->nversions = 5;
	i->ctime_ns = 1700000000123456789ull;
}

static void fill_version_info(void *p)
{
	struct vmir_wire_version_info *v = p;

	memset(v, 0, sizeof(*v));
	strcpy(v->image, "web");
	v->version = 3;
	v->size = (1ull << 33) + 4096;
	v->chunk_size = VMIR_CHUNK_SIZE_MAX;
	fill_id(&v->root, 0x5c);
	strcpy(v->parent_image, "base-image");
	v->parent_version = 2;
	v->ctime_ns = 1700000000987654321ull;
	v->image_id = 77;
	v->parent_image_id = (1ull << 40) + 5;
	v->flags = VMIR_VI_F_PARENT_DELETED | VMIR_VI_F_PROFILE_INHERITED;
	fill_id(&v->profile, 0x3e);
}

static void fill_create_req(void *p)
{
	struct vmir_create_req *q = p;

	memset(q, 0, sizeof(*q));
	strcpy(q->name, "new.img");
	q->size = 1ull << 40;
	q->chunk_size = VMIR_CHUNK_SIZE_MIN;
	fill_id(&q->root, 0x66);
}

static void fill_publish_req(void *p)
{
	struct vmir_publish_req *q = p;

	memset(q, 0, sizeof(*q));
	strcpy(q->name, "web");
	q->base_version = 0xfffffffe;
	q->size = 12345 * 4096ull;
	fill_id(&q->root, 0x77);
	memset(q->token, 0xa7, sizeof(q->token));
	q->token[0] = 1;
}

static void fill_clone_req(void *p)
{
	struct vmir_clone_req *q = p;

	memset(q, 0, sizeof(*q));
	strcpy(q->src, "base-image");
	q->src_version = 4;
	strcpy(q->dst, "base-image-copy");
	q->flags = VMIR_CLONE_F_CONTENT;
	q->size = 123456789;
	memset(q->root.b, 0x5a, sizeof(q->root.b));
}

static void fill_profile_req(void *p)
{
	struct vmir_profile_req *q = p;

	memset(q, 0, sizeof(*q));
	strcpy(q->name, "web");
	q->version = 12;
	fill_id(&q->old, 0x21);
	fill_id(&q->profile, 0x22);
}

static void fill_ref_req(void *p)
{
	struct vmir_ref_req *q = p;

	memset(q, 0, sizeof(*q));
	strcpy(q->name, "web");
	q->version = 9;
}

/* type-correct adapters so the table calls each codec through its own type */
#define CODEC_ADAPTERS(t)						\
	static void put_##t(struct vmir_wbuf *w, const void *p)		\
	{								\
		vmir_put_##t(w, p);					\
	}								\
	static void get_##t(struct vmir_rbuf *r, void *p)		\
	{								\
		vmir_get_##t(r, p);					\
	}

CODEC_ADAPTERS(image_info)
CODEC_ADAPTERS(version_info)
CODEC_ADAPTERS(create_req)
CODEC_ADAPTERS(publish_req)
CODEC_ADAPTERS(clone_req)
CODEC_ADAPTERS(profile_req)
CODEC_ADAPTERS(ref_req)

/* t: the body's name in docs/protocol.md; s: its struct */
#define CODEC(t, s) { #t, sizeof(struct vmir_##s), fill_##t, put_##t, get_##t }

static const struct codec codecs[] = {
	CODEC(image_info, wire_image_info),
	CODEC(version_info, wire_version_info),
	CODEC(create_req, create_req),
	CODEC(publish_req, publish_req),
	CODEC(clone_req, clone_req),
	CODEC(profile_req, profile_req),
	CODEC(ref_req, ref_req),
};

#define NCODECS ((int)(sizeof(codecs) / sizeof(codecs[0])))

START_TEST(codec_round_trips)
{
	const struct codec *c = &codecs[_i];
	void *in = calloc(1, c->size), *out = malloc(c->size);
	struct vmir_wbuf w;
	struct vmir_rbuf r;

	ck_assert_ptr_nonnull(in);
	ck_assert_ptr_nonnull(out);
	c->fill(in);
	memset(out, 0xa5, c->size);
	vmir_wbuf_init(&w);
	c->put(&w, in);
	ck_assert_int_eq(w.err, 0);
	vmir_rbuf_init(&r, w.p, w.len);
	c->get(&r, out);
	ck_assert_msg(vmir_rbuf_end(&r) == 0, "%s does not decode", c->name);
	/* structs are memset by both fill and get: padding compares too */
	ck_assert_msg(memcmp(in, out, c->size) == 0, "%s differs", c->name);
	vmir_wbuf_free(&w);
	free(in);
	free(out);
}
END_TEST

START_TEST(codec_rejects_every_truncation)
{
	const struct codec *c = &codecs[_i];
	void *in = calloc(1, c->size), *out = malloc(c->size);
	struct vmir_wbuf w;
	struct vmir_rbuf r;

	ck_assert_ptr_nonnull(in);
	ck_assert_ptr_nonnull(out);
	c->fill(in);
	vmir_wbuf_init(&w);
	c->put(&w, in);
	ck_assert_int_eq(w.err, 0);
	for (size_t len = 0; len < w.len; len++) {
		vmir_rbuf_init(&r, w.p, len);
		c->get(&r, out);
		ck_assert_msg(vmir_rbuf_end(&r) == -EBADMSG,
			      "%s decoded from a %zu of %zu byte prefix",
			      c->name, len, w.len);
	}
	vmir_wbuf_free(&w);
	free(in);
	free(out);
}
END_TEST

START_TEST(codec_rejects_trailing_bytes)
{
	const struct codec *c = &codecs[_i];
	void *in = calloc(1, c->size), *out = malloc(c->size);
	struct vmir_wbuf w;
	struct vmir_rbuf r;

	ck_assert_ptr_nonnull(in);
	ck_assert_ptr_nonnull(out);
	c->fill(in);
	vmir_wbuf_init(&w);
	c->put(&w, in);
	vmir_put_u8(&w, 0);
	ck_assert_int_eq(w.err, 0);
	vmir_rbuf_init(&r, w.p, w.len);
	c->get(&r, out);
	ck_assert_int_eq(r.err, 0);
	ck_assert_int_eq(vmir_rbuf_end(&r), -EBADMSG);
	vmir_wbuf_free(&w);
	free(in);
	free(out);
}
END_TEST

/* decode a hand-built body with get and expect -EBADMSG */
#define ASSERT_REJECTS(getter, type, w)				\
	do {								\
		struct vmir_rbuf r_;					\
		type out_;						\
									\
		ck_assert_int_eq((w)->err, 0);				\
		vmir_rbuf_init(&r_, (w)->p, (w)->len);			\
		getter(&r_, &out_);					\
		ck_assert_int_eq(vmir_rbuf_end(&r_), -EBADMSG);		\
	} while (0)

START_TEST(codec_rejects_overlong_string)
{
	char longname[VMIR_NAME_MAX + 1];
	struct vmir_create_req q;
	struct vmir_wbuf w;

	/* a 129-byte name does not fit name[VMIR_NAME_MAX] */
	memset(longname, 'a', VMIR_NAME_MAX);
	longname[VMIR_NAME_MAX] = '\0';
	fill_create_req(&q);
	vmir_wbuf_init(&w);
	vmir_put_str(&w, longname);
	vmir_put_u64(&w, q.size);
	vmir_put_u32(&w, q.chunk_size);
	vmir_put_id(&w, &q.root);
	ASSERT_REJECTS(vmir_get_create_req, struct vmir_create_req, &w);
	vmir_wbuf_free(&w);

	/* a length prefix larger than the buffer */
	vmir_wbuf_init(&w);
	vmir_put_u16(&w, 0xffff);
	vmir_put_bytes(&w, "web", 3);
	ASSERT_REJECTS(vmir_get_ref_req, struct vmir_ref_req, &w);
	vmir_wbuf_free(&w);
}
END_TEST

START_TEST(codec_rejects_invalid_names)
{
	static const char *const bad[] = { "", ".x", "a/b", "a b", "x:y" };
	struct vmir_wbuf w;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vmir_wire_version_info v;
		struct vmir_wire_image_info ii;
		struct vmir_create_req cq;
		struct vmir_publish_req pq;
		struct vmir_clone_req kq;
		struct vmir_ref_req rq;

		fill_image_info(&ii);
		strcpy(ii.name, bad[i]);
		vmir_wbuf_init(&w);
		vmir_put_image_info(&w, &ii);
		ASSERT_REJECTS(vmir_get_image_info, struct vmir_wire_image_info,
			       &w);
		vmir_wbuf_free(&w);

		fill_version_info(&v);
		strcpy(v.image, bad[i]);
		vmir_wbuf_init(&w);
		vmir_put_version_info(&w, &v);
		ASSERT_REJECTS(vmir_get_version_info,
			       struct vmir_wire_version_info, &w);
		vmir_wbuf_free(&w);

		/* parent may be empty, but not otherwise invalid */
		if (bad[i][0]) {
			fill_version_info(&v);
			strcpy(v.parent_image, bad[i]);
			vmir_wbuf_init(&w);
			vmir_put_version_info(&w, &v);
			ASSERT_REJECTS(vmir_get_version_info,
				       struct vmir_wire_version_info, &w);
			vmir_wbuf_free(&w);
		}

		fill_create_req(&cq);
		strcpy(cq.name, bad[i]);
		vmir_wbuf_init(&w);
		vmir_put_create_req(&w, &cq);
		ASSERT_REJECTS(vmir_get_create_req, struct vmir_create_req,
			       &w);
		vmir_wbuf_free(&w);

		fill_publish_req(&pq);
		strcpy(pq.name, bad[i]);
		vmir_wbuf_init(&w);
		vmir_put_publish_req(&w, &pq);
		ASSERT_REJECTS(vmir_get_publish_req, struct vmir_publish_req,
			       &w);
		vmir_wbuf_free(&w);

		fill_clone_req(&kq);
		strcpy(kq.src, bad[i]);
		vmir_wbuf_init(&w);
		vmir_put_clone_req(&w, &kq);
		ASSERT_REJECTS(vmir_get_clone_req, struct vmir_clone_req, &w);
		vmir_wbuf_free(&w);

		fill_clone_req(&kq);
		strcpy(kq.dst, bad[i]);
		vmir_wbuf_init(&w);
		vmir_put_clone_req(&w, &kq);
		ASSERT_REJECTS(vmir_get_clone_req, struct vmir_clone_req, &w);
		vmir_wbuf_free(&w);

		fill_ref_req(&rq);
		strcpy(rq.name, bad[i]);
		vmir_wbuf_init(&w);
		vmir_put_ref_req(&w, &rq);
		ASSERT_REJECTS(vmir_get_ref_req, struct vmir_ref_req, &w);
		vmir_wbuf_free(&w);
	}
}
END_TEST

START_TEST(codec_accepts_version_without_parent)
{
	struct vmir_wire_version_info v, out;
	struct vmir_wbuf w;
	struct vmir_rbuf r;

	fill_version_info(&v);
	v.parent_image[0] = '\0';
	v.parent_version = 0;
	v.parent_image_id = 0;
	v.flags = 0;
	vmir_wbuf_init(&w);
	vmir_put_version_info(&w, &v);
	vmir_rbuf_init(&r, w.p, w.len);
	vmir_get_version_info(&r, &out);
	ck_assert_int_eq(vmir_rbuf_end(&r), 0);
	ck_assert_str_eq(out.parent_image, "");
	vmir_wbuf_free(&w);
}
END_TEST

START_TEST(codec_rejects_parent_name_without_id_and_unknown_flags)
{
	struct vmir_wire_version_info v;
	struct vmir_wbuf w;

	/* a parent is a name and an id, or neither */
	fill_version_info(&v);
	v.parent_image_id = 0;
	vmir_wbuf_init(&w);
	vmir_put_version_info(&w, &v);
	ASSERT_REJECTS(vmir_get_version_info, struct vmir_wire_version_info,
		       &w);
	vmir_wbuf_free(&w);

	fill_version_info(&v);
	v.flags |= 1u << 7;
	vmir_wbuf_init(&w);
	vmir_put_version_info(&w, &v);
	ASSERT_REJECTS(vmir_get_version_info, struct vmir_wire_version_info,
		       &w);
	vmir_wbuf_free(&w);

	/* an inherited profile is a profile */
	fill_version_info(&v);
	memset(&v.profile, 0, sizeof(v.profile));
	vmir_wbuf_init(&w);
	vmir_put_version_info(&w, &v);
	ASSERT_REJECTS(vmir_get_version_info, struct vmir_wire_version_info,
		       &w);
	vmir_wbuf_free(&w);
}
END_TEST

START_TEST(codec_rejects_profile_req_without_version_or_profile)
{
	struct vmir_profile_req q;
	struct vmir_wbuf w;

	fill_profile_req(&q);
	q.version = 0;
	vmir_wbuf_init(&w);
	vmir_put_profile_req(&w, &q);
	ASSERT_REJECTS(vmir_get_profile_req, struct vmir_profile_req, &w);
	vmir_wbuf_free(&w);

	fill_profile_req(&q);
	memset(&q.profile, 0, sizeof(q.profile));
	vmir_wbuf_init(&w);
	vmir_put_profile_req(&w, &q);
	ASSERT_REJECTS(vmir_get_profile_req, struct vmir_profile_req, &w);
	vmir_wbuf_free(&w);

	fill_profile_req(&q);
	strcpy(q.name, "a b");
	vmir_wbuf_init(&w);
	vmir_put_profile_req(&w, &q);
	ASSERT_REJECTS(vmir_get_profile_req, struct vmir_profile_req, &w);
	vmir_wbuf_free(&w);
}
END_TEST

START_TEST(codec_rejects_invalid_chunk_sizes)
{
	static const uint32_t bad[] = { 0, 2048, 96 << 10, 8u << 20,
					0xffffffff };
	struct vmir_wbuf w;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vmir_wire_image_info ii;
		struct vmir_wire_version_info v;
		struct vmir_create_req q;

		fill_image_info(&ii);
		ii.chunk_size = bad[i];
		vmir_wbuf_init(&w);
		vmir_put_image_info(&w, &ii);
		ASSERT_REJECTS(vmir_get_image_info, struct vmir_wire_image_info,
			       &w);
		vmir_wbuf_free(&w);

		fill_version_info(&v);
		v.chunk_size = bad[i];
		vmir_wbuf_init(&w);
		vmir_put_version_info(&w, &v);
		ASSERT_REJECTS(vmir_get_version_info,
			       struct vmir_wire_version_info, &w);
		vmir_wbuf_free(&w);

		fill_create_req(&q);
		q.chunk_size = bad[i];
		vmir_wbuf_init(&w);
		vmir_put_create_req(&w, &q);
		ASSERT_REJECTS(vmir_get_create_req, struct vmir_create_req,
			       &w);
		vmir_wbuf_free(&w);
	}
}
END_TEST

Suite *proto_suite(void)
{
	Suite *s = suite_create("proto");
	TCase *tc;

	tc = tcase_create("ids");
	tcase_add_test(tc, id_of_is_blake2b_256);
	tcase_add_test(tc, id_of_empty_input_matches_known_vector);
	tcase_add_test(tc, id_hex_round_trips);
	tcase_add_test(tc, id_from_hex_rejects_wrong_length_and_junk);
	tcase_add_test(tc, id_zero_and_eq);
	suite_add_tcase(s, tc);

	tc = tcase_create("header");
	tcase_add_test(tc, hdr_round_trips_every_field);
	tcase_add_test(tc, hdr_layout_is_little_endian_at_documented_offsets);
	tcase_add_test(tc, hdr_rejects_bad_magic);
	tcase_add_test(tc, hdr_rejects_bad_version);
	tcase_add_test(tc, hdr_rejects_unknown_opcode);
	tcase_add_test(tc, hdr_accepts_every_known_opcode);
	tcase_add_test(tc, hdr_rejects_unknown_flag);
	tcase_add_test(tc, hdr_rejects_meta_len_too_big);
	tcase_add_test(tc, hdr_rejects_data_len_too_big);
	tcase_add_test(tc, hdr_rejects_data_on_opcode_without_data);
	tcase_add_test(tc, hdr_rejects_status_in_request);
	suite_add_tcase(s, tc);

	tc = tcase_create("auth");
	tcase_add_test(tc, session_init_starts_with_cluster_key);
	tcase_add_test(tc, seal_verify_round_trip);
	tcase_add_test(tc, verify_fails_on_flipped_meta_byte);
	tcase_add_test(tc, verify_fails_on_flipped_header_byte);
	tcase_add_test(tc, verify_fails_on_replayed_frame);
	tcase_add_test(tc, verify_fails_on_reordered_frames);
	tcase_add_test(tc, verify_fails_with_different_key);
	tcase_add_test(tc, verify_fails_across_sessions);
	tcase_add_test(tc, handshake_derives_same_session_key);
	tcase_add_test(tc, handshake_keys_differ_for_different_nonces);
	suite_add_tcase(s, tc);

	tc = tcase_create("receiving");
	tcase_add_test(tc, recv_before_handshake_takes_only_hello_with_a_nonce);
	tcase_add_test(tc, recv_takes_requests_at_a_server_and_replies_at_a_client);
	tcase_add_test(tc, recv_refuses_hello_after_the_handshake_and_bad_headers);
	suite_add_tcase(s, tc);

	tc = tcase_create("buffers");
	tcase_add_test(tc, wbuf_rbuf_primitives_round_trip);
	tcase_add_test(tc, rbuf_overrun_sets_sticky_error);
	tcase_add_test(tc, rbuf_end_rejects_trailing_bytes);
	tcase_add_test(tc, get_str_rejects_overlong_and_nul);
	tcase_add_test(tc, wbuf_refuses_more_than_meta_max);
	suite_add_tcase(s, tc);

	tc = tcase_create("messages");
	tcase_add_test(tc, name_valid_rules);
	tcase_add_test(tc, chunk_size_valid_rules);
	tcase_add_loop_test(tc, codec_round_trips, 0, NCODECS);
	tcase_add_loop_test(tc, codec_rejects_every_truncation, 0, NCODECS);
	tcase_add_loop_test(tc, codec_rejects_trailing_bytes, 0, NCODECS);
	tcase_add_test(tc, codec_rejects_overlong_string);
	tcase_add_test(tc, codec_rejects_invalid_names);
	tcase_add_test(tc, codec_accepts_version_without_parent);
	tcase_add_test(tc,
		       codec_rejects_parent_name_without_id_and_unknown_flags);
	tcase_add_test(tc, codec_rejects_profile_req_without_version_or_profile);
	tcase_add_test(tc, codec_rejects_invalid_chunk_sizes);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(proto_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
