// SPDX-License-Identifier: GPL-2.0
/*
 * A minimal blocking client of the vmir protocol: one request at a time
 * or raw frames. The unit tests use it to talk to real servers; libvmir
 * has its own io_uring engine. What it receives passes the same checks
 * as in libvmir (vmir_frame_recv_hdr, vmir_frame_verify).
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test_client.h"
#include "vmir_util.h"

int test_client_open(struct test_client *c, const char *addr)
{
	struct vmir_addr a;
	int ret;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->next_req_id = 1;
	ret = vmir_addr_parse(addr, &a);
	if (ret < 0)
		return ret;
	c->fd = socket(a.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	if (connect(c->fd, (struct sockaddr *)&a.ss, a.len) < 0) {
		ret = -errno;
		close(c->fd);
		c->fd = -1;
		return ret;
	}
	return 0;
}

/* read len bytes, waiting at most timeout_ms for each arrival */
static int test_client_read(struct test_client *c, void *buf, size_t len,
			    int timeout_ms)
{
	struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
	uint8_t *p = buf;
	ssize_t n;
	int ret;

	while (len) {
		ret = poll(&pfd, 1, timeout_ms);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret < 0)
			return -errno;
		if (ret == 0)
			return -ETIMEDOUT;
		n = recv(c->fd, p, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == ECONNRESET ? -ECONNRESET : -errno;
		if (n == 0)
			return -ECONNRESET;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int test_client_write(struct test_client *c, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	ssize_t n;

	while (len) {
		n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int test_client_send_id(struct test_client *c, uint16_t opcode,
			       uint64_t req_id, const void *meta,
			       uint32_t meta_len, const void *data,
			       uint32_t data_len)
{
	struct vmir_frame_hdr h = {
		.magic = VMIR_PROTO_MAGIC,
		.version = VMIR_PROTO_VERSION,
		.opcode = opcode,
		.req_id = req_id,
		.meta_len = meta_len,
		.data_len = data_len,
		.flags = data_len ? c->data_flags : 0,
	};
	uint8_t raw[VMIR_HDR_LEN];
	int ret;

	vmir_frame_seal(&c->sess, &h, meta, raw);
	ret = test_client_write(c, raw, sizeof(raw));
	if (!ret && meta_len)
		ret = test_client_write(c, meta, meta_len);
	if (!ret && data_len)
		ret = test_client_write(c, data, data_len);
	return ret;
}

int test_client_send(struct test_client *c, uint16_t opcode, const void *meta,
		     uint32_t meta_len, const void *data, uint32_t data_len,
		     uint64_t *req_id)
{
	uint64_t id = c->next_req_id++;

	if (req_id)
		*req_id = id;
	return test_client_send_id(c, opcode, id, meta, meta_len, data,
				   data_len);
}

void test_msg_free(struct test_msg *m)
{
	free(m->meta);
	free(m->data);
	m->meta = m->data = NULL;
}

int test_client_recv(struct test_client *c, struct test_msg *m,
		     int timeout_ms)
{
	uint8_t raw[VMIR_HDR_LEN];
	const char *why;
	int ret;

	memset(m, 0, sizeof(*m));
	ret = test_client_read(c, raw, sizeof(raw), timeout_ms);
	if (ret < 0)
		return ret;
	if (vmir_frame_recv_hdr(&c->sess, false, raw, &m->hdr, &why) < 0)
		return -EBADMSG;
	m->meta = malloc(m->hdr.meta_len ? m->hdr.meta_len : 1);
	m->data = malloc(m->hdr.data_len ? m->hdr.data_len : 1);
	if (!m->meta || !m->data) {
		ret = -ENOMEM;
		goto out_free;
	}
	ret = test_client_read(c, m->meta, m->hdr.meta_len, timeout_ms);
	if (!ret)
		ret = test_client_read(c, m->data, m->hdr.data_len, timeout_ms);
	if (!ret && vmir_frame_verify(&c->sess, &m->hdr, m->meta) < 0)
		ret = -EACCES;
	if (!ret)
		return 0;
out_free:
	test_msg_free(m);
	return ret;
}

int test_client_hello(struct test_client *c, const uint8_t key[VMIR_KEY_LEN],
		      int timeout_ms)
{
	uint8_t nonce[VMIR_NONCE_LEN];
	struct test_msg m;
	int ret;

	vmir_session_init(&c->sess, key);
	vmir_hello_nonce(&c->sess, nonce);
	ret = test_client_send_id(c, VMIR_OP_HELLO, 0, nonce, sizeof(nonce),
				  NULL, 0);
	if (ret < 0)
		return ret;
	/* before the handshake only a HELLO reply with a nonce passes */
	ret = test_client_recv(c, &m, timeout_ms);
	if (ret < 0)
		return ret;
	vmir_session_establish(&c->sess, nonce, m.meta);
	test_msg_free(&m);
	return 0;
}

int test_client_connect(struct test_client *c, const char *addr,
			const uint8_t key[VMIR_KEY_LEN], int timeout_ms)
{
	int ret = test_client_open(c, addr);

	if (ret < 0)
		return ret;
	ret = test_client_hello(c, key, timeout_ms);
	if (ret < 0)
		test_client_close(c);
	return ret;
}

int test_client_call(struct test_client *c, uint16_t opcode, const void *meta,
		     uint32_t meta_len, const void *data, uint32_t data_len,
		     struct test_msg *reply, int timeout_ms)
{
	uint64_t id;
	int ret;

	ret = test_client_send(c, opcode, meta, meta_len, data, data_len, &id);
	if (ret < 0)
		return ret;
	ret = test_client_recv(c, reply, timeout_ms);
	if (ret < 0)
		return ret;
	if (reply->hdr.req_id != id || reply->hdr.opcode != opcode ||
	    !(reply->hdr.flags & VMIR_F_REPLY)) {
		test_msg_free(reply);
		return -EBADMSG;
	}
	return 0;
}

bool test_client_wait_closed(struct test_client *c, int timeout_ms)
{
	uint8_t buf[4096];
	int ret;

	/* whatever the server sent before closing does not matter */
	for (;;) {
		ret = test_client_read(c, buf, 1, timeout_ms);
		if (ret == -ECONNRESET)
			return true;
		if (ret < 0)
			return false;
	}
}

void test_client_close(struct test_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	memset(&c->sess, 0, sizeof(c->sess));
}
