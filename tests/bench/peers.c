// SPDX-License-Identifier: GPL-2.0
/*
 * Peers for bench-repo: the limits of this machine measured on the same
 * bytes in the same run.
 *
 *   peers tcp FILE    send FILE once over one loopback TCP connection
 *   peers hash FILE [CHUNK]
 *                     BLAKE2b-256 of FILE in CHUNK pieces on all cores
 *
 * Prints "<name> <bytes> <seconds> <MB/s>".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void report(const char *name, size_t bytes, double secs)
{
	printf("%s %zu %.3f %.1f\n", name, bytes, secs, bytes / secs / 1e6);
}

static const unsigned char *map_file(const char *path, size_t *len)
{
	struct stat st;
	void *p;
	int fd = open(path, O_RDONLY);

	if (fd < 0 || fstat(fd, &st)) {
		perror(path);
		exit(1);
	}
	p = mmap(NULL, st.st_size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	close(fd);
	*len = st.st_size;
	return p;
}

static int tcp_sink(int lfd)
{
	static char buf[1 << 20];
	int fd = accept(lfd, NULL, NULL);
	ssize_t n;

	if (fd < 0)
		return -1;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		;
	write(fd, "k", 1);
	close(fd);
	return 0;
}

static void *sink_thread(void *arg)
{
	tcp_sink(*(int *)arg);
	return NULL;
}

static int bench_tcp(const char *path)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	const unsigned char *p;
	size_t len, off = 0;
	pthread_t th;
	double t0;
	int lfd, fd, one = 1;
	char ack;

	p = map_file(path, &len);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (void *)&sa, sizeof(sa)) || listen(lfd, 1) ||
	    getsockname(lfd, (void *)&sa, &sl)) {
		perror("listen");
		return 1;
	}
	pthread_create(&th, NULL, sink_thread, &lfd);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (void *)&sa, sizeof(sa))) {
		perror("connect");
		return 1;
	}
	t0 = now();
	while (off < len) {
		ssize_t n = write(fd, p + off, len - off > (1 << 20) ?
				  (1 << 20) : len - off);

		if (n < 0) {
			perror("write");
			return 1;
		}
		off += n;
	}
	shutdown(fd, SHUT_WR);
	if (read(fd, &ack, 1) != 1)
		return 1;
	report("tcp-1conn", len, now() - t0);
	pthread_join(th, NULL);
	return 0;
}

struct hjob {
	const unsigned char *p;
	size_t len, chunk, next, step;
};

static void *hash_thread(void *arg)
{
	struct hjob *j = arg;
	unsigned char out[32];
	size_t off;

	for (off = j->next; off < j->len; off += j->step) {
		size_t n = j->len - off < j->chunk ? j->len - off : j->chunk;

		crypto_generichash(out, sizeof(out), j->p + off, n, NULL, 0);
	}
	return NULL;
}

static int bench_hash(const char *path, size_t chunk)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	struct hjob jobs[256];
	pthread_t th[256];
	size_t len;
	const unsigned char *p = map_file(path, &len);
	double t0;
	long i;

	if (ncpu < 1 || ncpu > 256)
		ncpu = 1;
	if (sodium_init() < 0)
		return 1;
	t0 = now();
	for (i = 0; i < ncpu; i++) {
		jobs[i] = (struct hjob){ p, len, chunk, i * chunk,
					 ncpu * chunk };
		pthread_create(&th[i], NULL, hash_thread, &jobs[i]);
	}
	for (i = 0; i < ncpu; i++)
		pthread_join(th[i], NULL);
	report("blake2b-all-cores", len, now() - t0);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && !strcmp(argv[1], "tcp"))
		return bench_tcp(argv[2]);
	if (argc >= 3 && !strcmp(argv[1], "hash"))
		return bench_hash(argv[2], argc > 3 ? strtoul(argv[3], NULL, 0)
						    : 256 << 10);
	fprintf(stderr, "usage: peers tcp FILE | peers hash FILE [CHUNK]\n");
	return 2;
}
