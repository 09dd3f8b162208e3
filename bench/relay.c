// SPDX-License-Identifier: GPL-2.0
/*
 * relay: the pipelined chain of the pre-propagation strategy, the copy of
 * qcow2 overlays, and TakTuk's connector, in one small tool.
 *
 *   relay send ADDR:PORT FILE
 *	connect to ADDR:PORT and send FILE (sendfile), then close.
 *   relay recv ADDR:PORT [--out FILE] [--next ADDR:PORT] [--ready FILE]
 *	listen on ADDR:PORT, accept one connection, write everything it
 *	sends to FILE and, at the same time, to the next node of the chain;
 *	--ready is created once listening. FILE is written sparse (all-zero
 *	blocks are skipped, as cp --sparse does); every byte still travels.
 *   relay serve ADDR:PORT [--ready FILE]
 *	listen on ADDR:PORT; for each connection, read one command line and
 *	run it with /bin/sh -c, the connection as its stdin and stdout. Runs
 *	until killed.
 *   relay connect ADDR:PORT CMD...
 *	the client of serve: send CMD, then copy stdin to the connection and
 *	the connection to stdout. As TakTuk's connector (-c), it carries
 *	TakTuk's deployment and broadcast over a real TCP connection on the
 *	nodes' links, without encryption (as the chain and qemu-nbd).
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
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RELAY_BUF	(1 << 20)

static const char zeros[RELAY_BUF];

static const char *prog = "relay";

static void usage(void)
{
	fprintf(stderr,
		"usage: %s send ADDR:PORT FILE\n"
		"       %s recv ADDR:PORT [--out FILE] [--next ADDR:PORT] [--ready FILE]\n"
		"       %s serve ADDR:PORT [--ready FILE]\n"
		"       %s connect ADDR:PORT CMD...\n",
		prog, prog, prog, prog);
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

/* listen on @addr, then create @ready (if any): returns the socket */
static int listen_on(const char *addr, const struct sockaddr_in *sa,
		     const char *ready, int backlog)
{
	int one = 1, ls;

	ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ls < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one,
				 sizeof(one)) ||
	    bind(ls, (const struct sockaddr *)sa, sizeof(*sa)) ||
	    listen(ls, backlog)) {
		fprintf(stderr, "%s: cannot listen on %s: %s\n", prog, addr,
			strerror(errno));
		return -1;
	}
	if (ready) {
		int rfd = open(ready, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (rfd < 0) {
			fprintf(stderr, "%s: cannot create %s: %s\n", prog,
				ready, strerror(errno));
			close(ls);
			return -1;
		}
		close(rfd);
	}
	return ls;
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
	int ls, s, ofd = -1, nfd = -1, i, ret;
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
	ls = listen_on(argv[0], &sa, ready, 1);
	if (ls < 0)
		return 1;
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

/* the child of serve: one command line, then the shell on the socket */
static void serve_one(int s)
{
	char cmd[65536];
	size_t len = 0;

	while (len < sizeof(cmd) - 1) {
		ssize_t n = read(s, cmd + len, 1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(1);
		if (cmd[len] == '\n')
			break;
		len++;
	}
	cmd[len] = '\0';
	signal(SIGCHLD, SIG_DFL);	/* the command waits for its own */
	if (dup2(s, 0) < 0 || dup2(s, 1) < 0)
		_exit(1);
	close(s);
	execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
	fprintf(stderr, "%s: exec /bin/sh: %s\n", prog, strerror(errno));
	_exit(127);
}

static void reap(int sig)
{
	(void)sig;
}

static int cmd_serve(int argc, char **argv)
{
	struct sigaction sa_chld = { .sa_handler = reap };
	struct sockaddr_in sa;
	int ls, s;

	if ((argc != 1 && !(argc == 3 && !strcmp(argv[1], "--ready"))) ||
	    parse_addr(argv[0], &sa))
		usage();
	/*
	 * Commands are reaped here, not ignored: their CPU time then counts
	 * in this process's (the harness reads it from /proc), and SIGCHLD
	 * interrupts accept() so that no zombie waits for a connection.
	 */
	sigaction(SIGCHLD, &sa_chld, NULL);
	ls = listen_on(argv[0], &sa, argc == 3 ? argv[2] : NULL, 128);
	if (ls < 0)
		return 1;
	for (;;) {
		pid_t pid;

		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		s = accept(ls, NULL, NULL);
		if (s < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			fprintf(stderr, "%s: accept on %s failed: %s\n", prog,
				argv[0], strerror(errno));
			return 1;
		}
		pid = fork();
		if (pid < 0)
			fprintf(stderr, "%s: fork: %s\n", prog, strerror(errno));
		if (!pid) {
			close(ls);
			serve_one(s);
		}
		close(s);
	}
}

/* copy what is readable on @from to @to; 0 at end of input */
static ssize_t pump(int from, int to, char *buf)
{
	ssize_t n = read(from, buf, RELAY_BUF);

	if (n < 0)
		return errno == EINTR ? 1 : -errno;
	if (n && write_all(to, buf, n))
		return -EPIPE;
	return n;
}

static int cmd_connect(int argc, char **argv)
{
	struct pollfd p[2];
	char *buf, *cmd;
	size_t len = 0;
	ssize_t n;
	int s, i;

	if (argc < 2)
		usage();
	for (i = 1; i < argc; i++)
		len += strlen(argv[i]) + 1;
	cmd = malloc(len + 1);
	buf = malloc(RELAY_BUF);
	if (!cmd || !buf)
		return 1;
	cmd[0] = '\0';
	for (i = 1; i < argc; i++) {
		strcat(cmd, argv[i]);
		strcat(cmd, i + 1 < argc ? " " : "\n");
	}
	if (memchr(cmd, '\n', len - 1)) {
		fprintf(stderr, "%s: connect: the command may not contain a newline\n",
			prog);
		return 2;
	}
	s = dial(argv[0]);
	if (write_all(s, cmd, len)) {
		fprintf(stderr, "%s: sending the command to %s failed: %s\n",
			prog, argv[0], strerror(errno));
		return 1;
	}
	p[0] = (struct pollfd){ .fd = 0, .events = POLLIN };
	p[1] = (struct pollfd){ .fd = s, .events = POLLIN };
	/* until the remote command closes its side */
	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents) {
			n = pump(0, s, buf);
			if (n < 0)
				break;
			if (!n) {
				shutdown(s, SHUT_WR);
				p[0].fd = -1;
			}
		}
		if (p[1].revents) {
			n = pump(s, 1, buf);
			if (n <= 0) {
				close(1);
				return n < 0 ? 1 : 0;
			}
		}
	}
	fprintf(stderr, "%s: connect %s: %s\n", prog, argv[0], strerror(errno));
	return 1;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	if (!strcmp(argv[1], "send"))
		return cmd_send(argc - 2, argv + 2);
	if (!strcmp(argv[1], "recv"))
		return cmd_recv(argc - 2, argv + 2);
	if (!strcmp(argv[1], "serve"))
		return cmd_serve(argc - 2, argv + 2);
	if (!strcmp(argv[1], "connect"))
		return cmd_connect(argc - 2, argv + 2);
	usage();
	return 2;
}
