// SPDX-License-Identifier: GPL-2.0
/*
 * Socket helpers of the server framework: the listening socket, the ready
 * file scripts wait for, and peer names for log messages.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "srv.h"
#include "vmir_util.h"

#define SRV_BACKLOG	512

int srv_listen(const char *text)
{
	struct vmir_addr a;
	int one = 1;
	int fd, ret;

	ret = vmir_addr_parse(text, &a);
	if (ret < 0) {
		vmir_err("bad listen address '%s': %s (want IP:PORT)", text,
			 strerror(-ret));
		return ret;
	}
	fd = socket(a.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		vmir_err("socket for %s: %s", text, strerror(errno));
		return ret;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) {
		ret = -errno;
		vmir_err("SO_REUSEADDR on %s: %s", text, strerror(errno));
		goto out_close;
	}
	if (bind(fd, (struct sockaddr *)&a.ss, a.len) < 0) {
		ret = -errno;
		vmir_err("cannot bind %s: %s (address in use or not local?)",
			 text, strerror(errno));
		goto out_close;
	}
	if (listen(fd, SRV_BACKLOG) < 0) {
		ret = -errno;
		vmir_err("listen on %s: %s", text, strerror(errno));
		goto out_close;
	}
	return fd;

out_close:
	close(fd);
	return ret;
}

int srv_write_ready_file(int fd, const char *path)
{
	char name[VMIR_ADDR_MAX + 2];
	char tmp[4096];
	size_t n;
	int tfd, ret;

	ret = vmir_sock_name(fd, name, sizeof(name) - 1);
	if (ret < 0) {
		vmir_err("cannot get the bound address: %s", strerror(-ret));
		return ret;
	}
	n = strlen(name);
	name[n++] = '\n';
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		vmir_err("ready file path too long: %s", path);
		return -ENAMETOOLONG;
	}
	tfd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (tfd < 0) {
		ret = -errno;
		vmir_err("cannot create ready file %s: %s", tmp,
			 strerror(errno));
		return ret;
	}
	ret = vmir_write_full(tfd, name, n);
	if (close(tfd) < 0 && !ret)
		ret = -errno;
	if (ret < 0) {
		vmir_err("cannot write ready file %s: %s", tmp, strerror(-ret));
		goto out_unlink;
	}
	if (rename(tmp, path) < 0) {
		ret = -errno;
		vmir_err("cannot rename %s to %s: %s", tmp, path,
			 strerror(errno));
		goto out_unlink;
	}
	return 0;

out_unlink:
	unlink(tmp);
	return ret;
}

void srv_peer_name(int fd, char *out, size_t outlen)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char ip[INET6_ADDRSTRLEN];

	if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
		goto unknown;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		if (!inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip)))
			goto unknown;
		snprintf(out, outlen, "%s:%u", ip, ntohs(sin->sin_port));
		return;
	}
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		if (!inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip)))
			goto unknown;
		snprintf(out, outlen, "[%s]:%u", ip, ntohs(sin6->sin6_port));
		return;
	}
unknown:
	snprintf(out, outlen, "unknown peer");
}
