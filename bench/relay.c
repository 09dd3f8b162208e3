// SPDX-License-Identifier: GPL-2.0
/*
 * relay: the pipelined chain of the pre-propagation strategy, and the copy
 * of qcow2 overlays, in one small tool.
 *
 *   relay send ADDR:PORT FILE
 *	connect to ADDR:PORT and send FILE (sendfile), then close.
 *   relay recv ADDR:PORT [--out FILE] [--next ADDR:PORT] [--ready FILE]
 *	listen on ADDR:PORT, accept one connection, write everything it
 *	sends to FILE and, at the same time, to the next node of the chain;
 *	--ready is created once listening. FILE is written sparse (all-zero
 *	blocks are skipped, as cp --sparse does); every byte still travels.
 *
 * Each block is forwarded as soon as it is received, so the chain moves
 * the file through all nodes at the rate of one link (as TakTuk's or
 * Kastafior's chains do). Prints "bytes seconds" on stdout at the end.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RELAY_BUF	(1 << 20)

static const char zeros[RELAY_BUF];

static const char *prog = "relay";

static void usage(void)
{
	fprintf(stderr,
		"usage: %s send ADDR:PORT FILE\n"
		"       %s recv ADDR:PORT [--out FILE] [--next ADDR:PORT] [--ready FILE]\n",
		prog, prog);
	exit(2);
}

static int parse_addr(const char *s, struct sockaddr_in *sa)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	char *end;
	long port;

	if (!colon || colon == s || (size_t)(colon - s) >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, colon - s);
	host[colon - s] = '\0';
	port = strtol(colon + 1, &end, 10);
	if (*end || port < 1 || port > 65535)
		return -EINVAL;
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons(port);
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		return -EINVAL;
	return 0;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* connect, retrying while the peer is not listening yet (up to 30 s) */
static int dial(const char *addr)
{
	struct sockaddr_in sa;
	int fd, i;

	if (parse_addr(addr, &sa)) {
		fprintf(stderr, "%s: invalid address '%s' (want IPv4:PORT)\n",
			prog, addr);
		exit(2);
	}
	for (i = 0; i < 3000; i++) {
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			break;
		if (!connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
			return fd;
		close(fd);
		if (errno != ECONNREFUSED && errno != ENETUNREACH)
			break;
		usleep(10000);
	}
	fprintf(stderr, "%s: connect to %s failed: %s\n", prog, addr,
		strerror(errno));
	exit(1);
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= n;
	}
	return 0;
}

static int cmd_send(int argc, char **argv)
{
	struct stat st;
	off_t off = 0;
	double t0;
	int fd, s;

	if (argc != 2)
		usage();
	fd = open(argv[1], O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		fprintf(stderr, "%s: cannot open %s: %s\n", prog, argv[1],
			strerror(errno));
		return 1;
	}
	t0 = now();
	s = dial(argv[0]);
	while (off < st.st_size) {
		ssize_t n = sendfile(s, fd, &off, st.st_size - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "%s: sending %s to %s failed: %s\n",
				prog, argv[1], argv[0],
				n ? strerror(errno) : "file shrank");
			return 1;
		}
	}
	shutdown(s, SHUT_WR);
	/* wait for the receiver to close: everything has arrived */
	while (read(s, &st, 1) > 0)
		;
	close(s);
	close(fd);
	printf("%lld %.3f\n", (long long)off, now() - t0);
	return 0;
}

static int cmd_recv(int argc, char **argv)
{
	const char *out = NULL, *next = NULL, *ready = NULL;
	struct sockaddr_in sa;
	long long total = 0;
	int one = 1, ls, s, ofd = -1, nfd = -1, i, ret;
	double t0;
	char *buf;

	if (argc < 1 || parse_addr(argv[0], &sa)) {
		fprintf(stderr, "%s: recv needs a listen address IPv4:PORT\n",
			prog);
		usage();
	}
	for (i = 1; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		if (!strcmp(argv[i], "--out"))
			out = argv[++i];
		else if (!strcmp(argv[i], "--next"))
			next = argv[++i];
		else if (!strcmp(argv[i], "--ready"))
			ready = argv[++i];
		else
			usage();
	}
	buf = malloc(RELAY_BUF);
	if (!buf)
		return 1;
	ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ls < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one,
				 sizeof(one)) ||
	    bind(ls, (struct sockaddr *)&sa, sizeof(sa)) || listen(ls, 1)) {
		fprintf(stderr, "%s: cannot listen on %s: %s\n", prog, argv[0],
			strerror(errno));
		return 1;
	}
	if (ready) {
		int rfd = open(ready, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (rfd < 0) {
			fprintf(stderr, "%s: cannot create %s: %s\n", prog,
				ready, strerror(errno));
			return 1;
		}
		close(rfd);
	}
	if (out) {
		ofd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (ofd < 0) {
			fprintf(stderr, "%s: cannot create %s: %s\n", prog,
				out, strerror(errno));
			return 1;
		}
	}
	s = accept(ls, NULL, NULL);
	if (s < 0) {
		fprintf(stderr, "%s: accept on %s failed: %s\n", prog,
			argv[0], strerror(errno));
		return 1;
	}
	close(ls);
	t0 = now();
	if (next)
		nfd = dial(next);
	for (;;) {
		ssize_t n = read(s, buf, RELAY_BUF);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "%s: receive on %s failed: %s\n", prog,
				argv[0], strerror(errno));
			return 1;
		}
		if (!n)
			break;
		if (nfd >= 0) {
			ret = write_all(nfd, buf, n);
			if (ret) {
				fprintf(stderr, "%s: forwarding to %s failed: %s\n",
					prog, next, strerror(-ret));
				return 1;
			}
		}
		if (ofd >= 0 && !memcmp(buf, zeros, n)) {
			if (lseek(ofd, n, SEEK_CUR) < 0) {
				fprintf(stderr, "%s: seeking in %s failed: %s\n",
					prog, out, strerror(errno));
				return 1;
			}
		} else if (ofd >= 0) {
			ret = write_all(ofd, buf, n);
			if (ret) {
				fprintf(stderr, "%s: writing %s failed: %s\n",
					prog, out, strerror(-ret));
				return 1;
			}
		}
		total += n;
	}
	if (nfd >= 0) {
		/* the next node closes once it has everything */
		shutdown(nfd, SHUT_WR);
		while (read(nfd, buf, RELAY_BUF) > 0)
			;
		close(nfd);
	}
	if (ofd >= 0 && (ftruncate(ofd, total) || fdatasync(ofd) ||
			 close(ofd))) {
		fprintf(stderr, "%s: writing %s failed: %s\n", prog, out,
			strerror(errno));
		return 1;
	}
	close(s);
	printf("%lld %.3f\n", total, now() - t0);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	if (!strcmp(argv[1], "send"))
		return cmd_send(argc - 2, argv + 2);
	if (!strcmp(argv[1], "recv"))
		return cmd_recv(argc - 2, argv + 2);
	usage();
	return 2;
}
