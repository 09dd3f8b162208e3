// SPDX-License-Identifier: GPL-2.0
/*
 * vmir-helper: the control socket (protocol in ctl.h).
 *
 * Connections are accepted by the loop and read when their request
 * arrives, never waited for. A request either ends at once (DETACH, a
 * refused request: the reply goes out and the connection closes) or
 * starts an operation (ATTACH, COMMIT) that owns the connection and
 * replies when it ends.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl.h"
#include "helper.h"
#include "state.h"
#include "vmir_util.h"

/* a connection whose request has not arrived yet */
struct helper_conn {
	struct helper_conn *next;
	int fd;
	uint64_t deadline_ns;		/* a silent client is dropped then */
};

#define HELPER_CONN_MAX		64
#define HELPER_CONN_TIMEOUT_NS	(5ull * 1000000000ull)

int helper_ctl_listen(void)
{
	struct sockaddr_un sa;
	socklen_t len;
	int fd, ret;

	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path + 1, HELPER_SOCK_NAME, strlen(HELPER_SOCK_NAME));
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
			  strlen(HELPER_SOCK_NAME));
	if (bind(fd, (struct sockaddr *)&sa, len) || listen(fd, 64)) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

void helper_ctl_reply(int fd, int ret, const char *out)
{
	char reply[HELPER_MSG_MAX];

	if (ret)
		snprintf(reply, sizeof(reply), "ERR\t%d\t%s", -ret, out);
	else
		snprintf(reply, sizeof(reply), "OK\t%s", out);
	if (ret)
		vmir_err("%s", out);
	if (fd < 0)
		return;
	if (send(fd, reply, strlen(reply), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		vmir_warn("cannot send the control reply: %s", strerror(errno));
	close(fd);
}

/* split s at tabs into at most n fields; returns the count */
static int helper_split(char *s, char **f, int n)
{
	int i = 0;

	while (i < n) {
		f[i++] = s;
		s = strchr(s, '\t');
		if (!s)
			break;
		*s++ = '\0';
	}
	return i;
}

/* what a device fetched from where, and what this node served */
static int helper_ctl_stats(struct helper *h, uint32_t id, char *out,
			    size_t outlen)
{
	struct helper_dev *d = helper_dev_find(h, id);
	struct vmir_fetch_stats st;

	if (!d || !d->v) {
		snprintf(out, outlen, "vmir%u is not served by this helper%s",
			 id, d ? " yet (its version opens)" : "");
		return d ? -EAGAIN : -ENODEV;
	}
	vmir_version_fetch_stats(d->v, &st);
	snprintf(out, outlen,
		 "%" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
		 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %s",
		 st.peer_chunks, st.peer_bytes, st.chunkd_chunks,
		 st.chunkd_bytes, st.peer_misses, h->peer_served,
		 h->peer_served_bytes, h->peer_refused,
		 h->peer_srv && h->peer_addr[0] ? h->peer_addr : "-");
	return 0;
}

/* one request: runs, or starts, its operation, which then owns fd */
static void helper_ctl_handle(struct helper *h, int fd, char *req)
{
	char out[HELPER_MSG_MAX - 32];
	char *f[5];
	uint32_t a;
	int nf, ret = -EINVAL;

	out[0] = '\0';
	nf = helper_split(req, f, 5);
	vmir_dbg("control request %s (%d fields)", f[0], nf);
	if (!strcmp(f[0], "ATTACH") && (nf == 4 || nf == 5)) {
		if (helper_parse_u32(f[2], &a)) {
			snprintf(out, sizeof(out), "bad version '%s'", f[2]);
			goto reply;
		}
		if (nf == 5 && f[4][0] && strcmp(f[4], "no-prefetch")) {
			snprintf(out, sizeof(out), "unknown attach flag '%s'",
				 f[4]);
			goto reply;
		}
		ret = helper_attach(h, f[1], a, f[3],
				    !(nf == 5 && f[4][0]), fd, out,
				    sizeof(out));
	} else if (!strcmp(f[0], "DETACH") && nf == 2 &&
		   !helper_parse_u32(f[1], &a)) {
		ret = helper_detach(h, a, out, sizeof(out));
	} else if (!strcmp(f[0], "STATS") && nf == 2 &&
		   !helper_parse_u32(f[1], &a)) {
		ret = helper_ctl_stats(h, a, out, sizeof(out));
	} else if (!strcmp(f[0], "COMMIT") && nf == 3 &&
		   !helper_parse_u32(f[1], &a)) {
		ret = helper_commit(h, a, f[2], fd, out, sizeof(out));
	} else {
		snprintf(out, sizeof(out), "malformed control request '%s'",
			 f[0]);
	}
	if (ret == 1)
		return;
reply:
	helper_ctl_reply(fd, ret, out);
}

/* the request of c arrived (or the connection failed): serve it */
static void helper_ctl_read(struct helper *h, struct helper_conn *c)
{
	char req[HELPER_MSG_MAX + 1];
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	ssize_t n;

	if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) ||
	    cred.uid != 0) {
		helper_ctl_reply(c->fd, -EPERM,
				 "only root may control vmir-helper");
		return;
	}
	n = recv(c->fd, req, HELPER_MSG_MAX, MSG_DONTWAIT);
	if (n <= 0) {
		close(c->fd);
		return;
	}
	req[n] = '\0';
	helper_ctl_handle(h, c->fd, req);
}

void helper_ctl_accept(struct helper *h)
{
	struct helper_conn *c, **pp;
	unsigned int n = 0;
	int fd;

	for (pp = &h->conns; *pp; pp = &(*pp)->next)
		n++;
	for (;;) {
		fd = accept4(h->ctl_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			return;
		c = n < HELPER_CONN_MAX ? calloc(1, sizeof(*c)) : NULL;
		if (!c) {
			helper_ctl_reply(fd, -EBUSY,
					 "too many control connections waiting: try again");
			continue;
		}
		c->fd = fd;
		c->deadline_ns = vmir_mono_ns() + HELPER_CONN_TIMEOUT_NS;
		*pp = c;
		pp = &c->next;
		n++;
	}
}

/* fill pfd with the connections waiting for their request */
int helper_ctl_pollfds(struct helper *h, struct pollfd *pfd, int max)
{
	struct helper_conn *c;
	int n = 0;

	for (c = h->conns; c && n < max; c = c->next, n++) {
		pfd[n].fd = c->fd;
		pfd[n].events = POLLIN;
		pfd[n].revents = 0;
	}
	return n;
}

/* serve the connections that poll() found ready, drop silent ones */
void helper_ctl_serve(struct helper *h, const struct pollfd *pfd, int n)
{
	struct helper_conn *c, **pp = &h->conns;
	uint64_t now = vmir_mono_ns();
	int i;

	while ((c = *pp)) {
		for (i = 0; i < n && pfd[i].fd != c->fd; i++)
			;
		if (i < n && pfd[i].revents) {
			*pp = c->next;
			helper_ctl_read(h, c);
			free(c);
		} else if (now > c->deadline_ns) {
			*pp = c->next;
			vmir_warn("a control connection sent no request in 5 s: closed");
			close(c->fd);
			free(c);
		} else {
			pp = &c->next;
		}
	}
}

void helper_ctl_close_all(struct helper *h)
{
	struct helper_conn *c;

	while ((c = h->conns)) {
		h->conns = c->next;
		close(c->fd);
		free(c);
	}
}
