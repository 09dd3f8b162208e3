/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A minimal blocking client of the vmir wire protocol, for the unit tests
 * of the servers: one request at a time, or raw frames (tests/lib/,
 * linked only into tests). libvmir has its own io_uring engine.
 */
#ifndef VMIR_TEST_CLIENT_H
#define VMIR_TEST_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "vmir_proto.h"

struct test_client {
	int fd;
	struct vmir_session sess;
	uint64_t next_req_id;
	uint32_t data_flags;	/* frame flags of requests with data */
};

struct test_msg {
	struct vmir_frame_hdr hdr;
	uint8_t *meta;		/* malloc()ed, hdr.meta_len bytes */
	uint8_t *data;		/* malloc()ed, hdr.data_len bytes */
};

/* TCP connect only (no handshake); 0 or -errno */
int test_client_open(struct test_client *c, const char *addr);
/* HELLO exchange sealed with key; -ECONNRESET closed, else as recv */
int test_client_hello(struct test_client *c, const uint8_t key[VMIR_KEY_LEN],
		      int timeout_ms);
/* open + hello */
int test_client_connect(struct test_client *c, const char *addr,
			const uint8_t key[VMIR_KEY_LEN], int timeout_ms);
/* seal and send one request; returns its req_id via *req_id if set */
int test_client_send(struct test_client *c, uint16_t opcode, const void *meta,
		     uint32_t meta_len, const void *data, uint32_t data_len,
		     uint64_t *req_id);
/*
 * Receive and authenticate one frame. -ETIMEDOUT, -ECONNRESET (peer
 * closed), -EBADMSG (bad header, or a frame a client must not receive
 * now), -EACCES (bad MAC or sequence).
 */
int test_client_recv(struct test_client *c, struct test_msg *m,
		     int timeout_ms);
/* send, then receive the reply (which must match the request) */
int test_client_call(struct test_client *c, uint16_t opcode, const void *meta,
		     uint32_t meta_len, const void *data, uint32_t data_len,
		     struct test_msg *reply, int timeout_ms);
void test_msg_free(struct test_msg *m);
/* true if the peer closes the connection within timeout_ms */
bool test_client_wait_closed(struct test_client *c, int timeout_ms);
void test_client_close(struct test_client *c);

#endif /* VMIR_TEST_CLIENT_H */
