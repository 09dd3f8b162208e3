// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Server addresses: "IPv4:PORT", "[IPv6]:PORT", "name:PORT", and the
 * bound address of a socket in the same form.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmir_util.h"

int vmir_addr_parse(const char *s, struct vmir_addr *a)
{
	char host[VMIR_ADDR_MAX];
	const char *port, *end;
	struct addrinfo hints, *res, *ai, *pick = NULL;
	size_t hlen, slen;
	char *p;
	long pv;
	int ret;

	if (!s)
		return -EINVAL;
	slen = strlen(s);
	if (slen == 0 || slen >= VMIR_ADDR_MAX)
		return -EINVAL;
	if (s[0] == '[') {
		end = strchr(s, ']');
		if (!end || end[1] != ':')
			return -EINVAL;
		hlen = end - (s + 1);
		memcpy(host, s + 1, hlen);
		port = end + 2;
	} else {
		end = strrchr(s, ':');
		if (!end)
			return -EINVAL;
		hlen = end - s;
		memcpy(host, s, hlen);
		port = end + 1;
	}
	host[hlen] = '\0';
	if (hlen == 0 || (s[0] != '[' && memchr(host, ':', hlen)))
		return -EINVAL;
	for (size_t i = 0; i < hlen; i++)
		if (isspace((unsigned char)host[i]))
			return -EINVAL;
	if (!isdigit((unsigned char)port[0]))
		return -EINVAL;
	errno = 0;
	pv = strtol(port, &p, 10);
	if (errno || *p || pv < 0 || pv > 65535)
		return -EINVAL;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if (s[0] == '[')
		hints.ai_flags |= AI_NUMERICHOST;
	ret = getaddrinfo(host, port, &hints, &res);
	if (ret) {
		if (ret == EAI_AGAIN)
			return -EAGAIN;
		if (ret == EAI_MEMORY)
			return -ENOMEM;
		if (ret == EAI_SYSTEM)
			return errno ? -errno : -EINVAL;
		return -EINVAL;
	}
	/* prefer IPv4 for names such as localhost that resolve to both */
	for (ai = res; ai; ai = ai->ai_next) {
		if (ai->ai_addrlen > sizeof(a->ss))
			continue;
		if (!pick || (pick->ai_family != AF_INET &&
			      ai->ai_family == AF_INET))
			pick = ai;
	}
	if (!pick) {
		freeaddrinfo(res);
		return -EINVAL;
	}
	if (s[0] == '[' && pick->ai_family != AF_INET6) {
		freeaddrinfo(res);
		return -EINVAL;
	}
	memset(a, 0, sizeof(*a));
	memcpy(&a->ss, pick->ai_addr, pick->ai_addrlen);
	a->len = pick->ai_addrlen;
	memcpy(a->text, s, slen + 1);
	freeaddrinfo(res);
	return 0;
}

int vmir_addr_numeric(const char *s)
{
	char host[VMIR_ADDR_MAX], buf[sizeof(struct in6_addr)];
	const char *port;
	size_t slen = s ? strlen(s) : 0;
	char *p;
	long pv;
	int af = AF_INET;

	if (slen == 0 || slen >= VMIR_ADDR_MAX)
		return -EINVAL;
	if (s[0] == '[') {
		port = strchr(s, ']');
		if (!port || port[1] != ':')
			return -EINVAL;
		memcpy(host, s + 1, (size_t)(port - s - 1));
		host[port - s - 1] = '\0';
		port += 2;
		af = AF_INET6;
	} else {
		port = strrchr(s, ':');
		if (!port)
			return -EINVAL;
		memcpy(host, s, (size_t)(port - s));
		host[port - s] = '\0';
		port++;
	}
	if (inet_pton(af, host, buf) != 1 || !isdigit((unsigned char)port[0]))
		return -EINVAL;
	errno = 0;
	pv = strtol(port, &p, 10);
	if (errno || *p || pv < 1 || pv > 65535)
		return -EINVAL;
	return 0;
}

int vmir_sock_name(int fd, char *out, size_t outlen)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char ip[INET6_ADDRSTRLEN];
	int n;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -errno;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		if (!inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip)))
			return -errno;
		n = snprintf(out, outlen, "%s:%u", ip,
			     (unsigned int)ntohs(sin->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		if (!inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip)))
			return -errno;
		n = snprintf(out, outlen, "[%s]:%u", ip,
			     (unsigned int)ntohs(sin6->sin6_port));
	} else {
		return -EAFNOSUPPORT;
	}
	if (n < 0 || (size_t)n >= outlen)
		return -ENOSPC;
	return 0;
}
