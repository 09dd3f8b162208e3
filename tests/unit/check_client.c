// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Tests of libvmir (include/libvmir.h) against real servers: every test
 * starts its own vmir-versiond and chunk servers (build/bin, next to this
 * test's directory) on ephemeral loopback ports, with a fresh key, and
 * they die with the test process (PR_SET_PDEATHSIG) even if it fails.
 *
 * Object counts come from the servers (STAT), file contents are compared
 * byte for byte, and corruption is injected into the on-disk object of
 * the replica the client reads first, so each check fails if the library
 * misbehaves rather than if it merely disagrees with itself.
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libvmir.h"
#include "libvmir_priv.h"
#include "vmir_util.h"

#define CS		4096u		/* chunk size of the test images */
#define MAXSRV		4

struct srv {
	pid_t pid;
	char dir[512];
	char addr[64];
	bool chunkd;
};

static struct {
	char dir[256];
	char key[PATH_MAX];
	char conf[PATH_MAX];
	char bin[PATH_MAX];
	struct srv s[1 + MAXSRV];	/* 0: versiond */
	unsigned int nchunkd;
	unsigned int replicas;
} cl;

/* per test case, made by the runner: each test's cluster lives inside */
static char base[200];

/* --- cluster ----------------------------------------------------------------- */

static void find_bin(void)
{
	char self[PATH_MAX - 16];
	ssize_t n;
	char *slash;

	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	ck_assert_int_gt(n, 0);
	self[n] = '\0';
	slash = strrchr(self, '/');
	ck_assert_ptr_nonnull(slash);
	*slash = '\0';
	/* build/tests/check_client -> build/bin */
	snprintf(cl.bin, sizeof(cl.bin), "%s/../bin", self);
}

static void srv_start(unsigned int i)
{
	struct srv *s = &cl.s[i];
	char exe[PATH_MAX + 32], ready[PATH_MAX + 16], listen[80];
	pid_t parent = getpid();
	int k;

	snprintf(exe, sizeof(exe), "%s/%s", cl.bin,
		 s->chunkd ? "vmir-chunkd" : "vmir-versiond");
	ck_assert_msg(access(exe, X_OK) == 0,
		      "%s not found: build the servers first (make all)", exe);
	snprintf(ready, sizeof(ready), "%s/ready", s->dir);
	unlink(ready);
	snprintf(listen, sizeof(listen), "%s",
		 s->addr[0] ? s->addr : "127.0.0.1:0");
	s->pid = fork();
	ck_assert_int_ge(s->pid, 0);
	if (s->pid == 0) {
		char data[PATH_MAX + 8], log[PATH_MAX + 8];
		int fd;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		snprintf(data, sizeof(data), "%s/data", s->dir);
		snprintf(log, sizeof(log), "%s/log", s->dir);
		fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execl(exe, exe, "--listen", listen, "--dir", data, "--key",
		      cl.key, "--ready-file", ready, (char *)NULL);
		_exit(127);
	}
	for (k = 0; k < 500; k++) {
		FILE *f = fopen(ready, "r");

		if (f) {
			char line[64] = "";

			if (fgets(line, sizeof(line), f))
				line[strcspn(line, "\n")] = '\0';
			fclose(f);
			if (line[0]) {
				snprintf(s->addr, sizeof(s->addr), "%s", line);
				return;
			}
		}
		ck_assert_msg(waitpid(s->pid, NULL, WNOHANG) == 0,
			      "%s exited at start (log: %s/log)", exe, s->dir);
		usleep(10000);
	}
	ck_abort_msg("%s did not become ready", exe);
}

static void srv_stop(unsigned int i)
{
	struct srv *s = &cl.s[i];

	if (s->pid <= 0)
		return;
	kill(s->pid, SIGKILL);
	waitpid(s->pid, NULL, 0);
	s->pid = 0;
}

static void write_conf(const char *path, const char *key, const char *vaddr,
		       unsigned int timeout_ms)
{
	FILE *f = fopen(path, "w");
	unsigned int i;

	ck_assert_ptr_nonnull(f);
	fprintf(f, "[cluster]\nkey = %s\nreplicas = %u\nchunk_size = %u\n"
		"timeout_ms = %u\n[versiond]\naddr = %s\n[chunkd]\nservers = ",
		key, cl.replicas, CS, timeout_ms, vaddr);
	for (i = 1; i <= cl.nchunkd; i++)
		fprintf(f, "%s%s", i > 1 ? ", " : "", cl.s[i].addr);
	fprintf(f, "\n");
	fclose(f);
}

static void cluster_up(unsigned int nchunkd, unsigned int replicas)
{
	unsigned int i;

	memset(&cl, 0, sizeof(cl));
	find_bin();
	snprintf(cl.dir, sizeof(cl.dir), "%s/cluster.XXXXXX", base);
	ck_assert_ptr_nonnull(mkdtemp(cl.dir));
	snprintf(cl.key, sizeof(cl.key), "%s/cluster.key", cl.dir);
	ck_assert_int_eq(vmir_key_generate(cl.key), 0);
	cl.nchunkd = nchunkd;
	cl.replicas = replicas;
	for (i = 0; i <= nchunkd; i++) {
		cl.s[i].chunkd = i > 0;
		snprintf(cl.s[i].dir, sizeof(cl.s[i].dir), "%s/srv%u", cl.dir,
			 i);
		ck_assert_int_eq(mkdir(cl.s[i].dir, 0700), 0);
		srv_start(i);
	}
	snprintf(cl.conf, sizeof(cl.conf), "%s/vmir.conf", cl.dir);
	write_conf(cl.conf, cl.key, cl.s[0].addr, 2000);
}

static void teardown(void)
{
	char cmd[PATH_MAX + 16];
	unsigned int i;

	for (i = 0; i <= cl.nchunkd; i++)
		srv_stop(i);
	if (cl.dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", cl.dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", cl.dir);
		cl.dir[0] = '\0';
	}
}

static void setup3(void)
{
	cluster_up(3, 2);
}

/*
 * A failed check _exit()s the forked test without its teardown; the
 * servers die with it (PDEATHSIG) and the runner, which outlives it,
 * removes the directory every test's cluster was made in.
 */

static void base_setup(void)
{
	snprintf(base, sizeof(base), "%s/vmir-check-client.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(base)) {
		perror("mkdtemp");
		exit(1);
	}
}

static void base_teardown(void)
{
	char cmd[sizeof(base) + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", base);
}

static struct vmir_client *client(void)
{
	struct vmir_client *c;
	int ret;

	ret = vmir_client_open(cl.conf, &c);
	ck_assert_msg(ret == 0, "open: %s", vmir_client_error(NULL));
	return c;
}

/* objects over all chunk servers, as the servers count them */
static uint64_t objects(struct vmir_client *c)
{
	struct vmir_server_stat *st;
	uint64_t sum = 0;
	size_t n, i;

	ck_assert_int_eq(vmir_chunkd_stat(c, &st, &n), 0);
	for (i = 0; i < n; i++) {
		ck_assert_msg(st[i].err == 0, "%s down", st[i].addr);
		sum += st[i].objects;
	}
	free(st);
	return sum;
}

/* --- test images ---------------------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
	uint64_t x = rng_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545f4914f6cdd1dull;
}

/*
 * size bytes, chunk i zero when i % 3 == 1, else pseudo-random from seed;
 * a size that is not a multiple of CS leaves a short last chunk.
 */
static uint8_t *make_data(uint64_t size, uint64_t seed)
{
	uint8_t *p = calloc(1, size);
	uint64_t off;

	ck_assert_ptr_nonnull(p);
	rng_state = seed * 0x9e3779b97f4a7c15ull + 1;
	for (off = 0; off < size; off += 8) {
		uint64_t v = rng_next();
		size_t n = size - off < 8 ? size - off : 8;

		if ((off / CS) % 3 != 1)
			memcpy(p + off, &v, n);
	}
	return p;
}

static void write_file(const char *path, const uint8_t *p, uint64_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(vmir_write_full(fd, p, size), 0);
	close(fd);
}

static uint8_t *read_file(const char *path, uint64_t *size, struct stat *st)
{
	int fd = open(path, O_RDONLY);
	uint8_t *p;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, st), 0);
	*size = (uint64_t)st->st_size;
	p = malloc(*size ? *size : 1);
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(vmir_read_full(fd, p, *size), 0);
	close(fd);
	return p;
}

/* import the size bytes at p as image name */
static void import_buf(struct vmir_client *c, const char *name,
		       const uint8_t *p, uint64_t size,
		       struct vmir_version_info *vi)
{
	char path[PATH_MAX + 64];
	int ret;

	snprintf(path, sizeof(path), "%s/%s.src", cl.dir, name);
	write_file(path, p, size);
	ret = vmir_image_import(c, name, path, CS, NULL, NULL, vi);
	ck_assert_msg(ret == 0, "import: %s", vmir_client_error(c));
}

/* import size bytes of seed as image name; returns the data */
static uint8_t *import(struct vmir_client *c, const char *name, uint64_t size,
		       uint64_t seed, struct vmir_version_info *vi)
{
	uint8_t *p = make_data(size, seed);

	import_buf(c, name, p, size, vi);
	return p;
}

/* export name's latest version and compare it with want (size bytes) */
static void export_matches(struct vmir_client *c, const char *name,
			   const uint8_t *want, uint64_t size)
{
	char out[PATH_MAX + 16];
	uint64_t got_size;
	struct stat st;
	uint8_t *got;

	snprintf(out, sizeof(out), "%s/out", cl.dir);
	ck_assert_msg(vmir_image_export(c, name, 0, out, NULL, NULL) == 0,
		      "export: %s", vmir_client_error(c));
	got = read_file(out, &got_size, &st);
	ck_assert_uint_eq(got_size, size);
	ck_assert(memcmp(want, got, size) == 0);
	free(got);
}

/* --- opening and connecting -------------------------------------------------------- */

START_TEST(open_without_config_says_how_to_give_one)
{
	struct vmir_client *c = (void *)1;

	unsetenv("VMIR_CONF");
	ck_assert_int_eq(vmir_client_open(NULL, &c), -EINVAL);
	ck_assert_ptr_null(c);
	ck_assert_ptr_nonnull(strstr(vmir_client_error(NULL), "VMIR_CONF"));
}
END_TEST

START_TEST(unreachable_version_server_is_named)
{
	struct vmir_image_info *imgs;
	struct vmir_client *c;
	size_t n;

	write_conf(cl.conf, cl.key, "127.0.0.1:1", 2000);
	c = client();
	ck_assert_int_eq(vmir_image_list(c, &imgs, &n), -ECONNREFUSED);
	ck_assert_ptr_nonnull(strstr(vmir_client_error(c),
				     "version server 127.0.0.1:1: connection refused"));
	vmir_client_close(c);
}
END_TEST

START_TEST(wrong_key_is_refused_with_a_hint)
{
	struct vmir_image_info *imgs;
	struct vmir_client *c;
	char key[PATH_MAX + 16];
	size_t n;

	snprintf(key, sizeof(key), "%s/other.key", cl.dir);
	ck_assert_int_eq(vmir_key_generate(key), 0);
	write_conf(cl.conf, key, cl.s[0].addr, 2000);
	c = client();
	ck_assert_int_eq(vmir_image_list(c, &imgs, &n), -EACCES);
	ck_assert_ptr_nonnull(strstr(vmir_client_error(c),
				     "wrong cluster key"));
	ck_assert_ptr_nonnull(strstr(vmir_client_error(c), cl.s[0].addr));
	vmir_client_close(c);
}
END_TEST

START_TEST(silent_server_times_out_and_is_named)
{
	struct vmir_image_info *imgs;
	struct vmir_client *c;
	uint64_t t0;
	size_t n;

	/* a stopped process: the kernel accepts, nobody answers */
	kill(cl.s[0].pid, SIGSTOP);
	write_conf(cl.conf, cl.key, cl.s[0].addr, 300);
	c = client();
	t0 = vmir_mono_ns();
	ck_assert_int_eq(vmir_image_list(c, &imgs, &n), -ETIMEDOUT);
	ck_assert_uint_lt(vmir_mono_ns() - t0, 3000000000ull);
	ck_assert_ptr_nonnull(strstr(vmir_client_error(c), cl.s[0].addr));
	ck_assert_ptr_nonnull(strstr(vmir_client_error(c), "timed out"));
	vmir_client_close(c);
	kill(cl.s[0].pid, SIGCONT);
}
END_TEST

/* --- namespace ------------------------------------------------------------------------ */

START_TEST(missing_image_error_names_image_and_server)
{
	struct vmir_version_info vi;
	struct vmir_client *c = client();

	ck_assert_int_eq(vmir_image_lookup(c, "nosuch", 0, &vi), -ENOENT);
	ck_assert_ptr_nonnull(strstr(vmir_client_error(c), "'nosuch'"));
	ck_assert_ptr_nonnull(strstr(vmir_client_error(c), cl.s[0].addr));
	ck_assert_int_eq(vmir_image_lookup(c, "bad/name", 0, &vi), -EINVAL);
	ck_assert_ptr_nonnull(strstr(vmir_client_error(c), "bad/name"));
	vmir_client_close(c);
}
END_TEST

START_TEST(create_list_versions_clone_delete)
{
	struct vmir_version_info vi, *vs;
	struct vmir_image_info *imgs;
	struct vmir_client *c = client();
	size_t n;

	ck_assert_int_eq(vmir_image_create(c, "a", 1000000, 0, &vi), 0);
	ck_assert_str_eq(vi.image, "a");
	ck_assert_uint_eq(vi.version, 1);
	ck_assert_uint_eq(vi.size, 1000000);
	ck_assert_uint_eq(vi.chunk_size, CS);	/* configured default */
	ck_assert_int_eq(strspn(vi.root, "0"), VMIR_ROOT_HEX_LEN);
	ck_assert_int_eq(vmir_image_create(c, "a", 1, 0, &vi), -EEXIST);
	ck_assert_ptr_nonnull(strstr(vmir_client_error(c), "already exists"));
	ck_assert_int_eq(vmir_image_create(c, "b", 1, 12345, &vi), -EINVAL);

	ck_assert_int_eq(vmir_image_clone(c, "a", 1, "b", &vi), 0);
	ck_assert_str_eq(vi.image, "b");
	ck_assert_str_eq(vi.parent_image, "a");
	ck_assert_uint_eq(vi.parent_version, 1);
	ck_assert_int_eq(vmir_image_list(c, &imgs, &n), 0);
	ck_assert_uint_eq(n, 2);
	free(imgs);
	ck_assert_int_eq(vmir_image_versions(c, "b", &vs, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(vs[0].size, 1000000);
	free(vs);

	ck_assert_int_eq(vmir_image_delete(c, "b", 0), 0);
	ck_assert_int_eq(vmir_image_lookup(c, "b", 0, &vi), -ENOENT);
	ck_assert_int_eq(vmir_image_delete(c, "b", 0), -ENOENT);
	ck_assert_int_eq(vmir_image_lookup(c, "a", 1, &vi), 0);
	vmir_client_close(c);
}
END_TEST

/* --- import / export ------------------------------------------------------------------- */

START_TEST(export_is_identical_and_sparse)
{
	const uint64_t size = 300 * CS + 1234;
	struct vmir_version_info vi;
	struct vmir_client *c = client();
	char out[PATH_MAX + 16];
	uint64_t got_size, chunks, bytes;
	struct stat st;
	uint8_t *want, *got;

	want = import(c, "img", size, 1, &vi);
	ck_assert_uint_eq(vi.size, size);
	snprintf(out, sizeof(out), "%s/out", cl.dir);
	ck_assert_int_eq(vmir_image_export(c, "img", 0, out, NULL, NULL), 0);
	got = read_file(out, &got_size, &st);
	ck_assert_uint_eq(got_size, size);
	ck_assert(memcmp(want, got, size) == 0);
	/* a third of the chunks are zero: holes */
	ck_assert_uint_le((uint64_t)st.st_blocks * 512, size * 3 / 4);

	ck_assert_int_eq(vmir_image_usage(c, "img", 0, &chunks, &bytes), 0);
	/* 301 chunks, every third zero: 201 non-zero, all distinct */
	ck_assert_uint_eq(chunks, 201);
	ck_assert_uint_eq(bytes, 200 * CS + 1234);
	free(want);
	free(got);
	vmir_client_close(c);
}
END_TEST

START_TEST(reimport_and_clone_store_nothing_new)
{
	struct vmir_version_info vi;
	struct vmir_import_stats st;
	struct vmir_client *c = client();
	uint64_t before;
	uint8_t *p;

	p = import(c, "img", 200 * CS + 7, 2, &vi);
	before = objects(c);
	/* 134 non-zero chunks + 2 level-1 nodes + root, R = 2 */
	ck_assert_uint_eq(before, 2 * (134 + 2 + 1));
	free(import(c, "img", 200 * CS + 7, 2, &vi));
	ck_assert_uint_eq(vi.version, 2);
	vmir_client_import_stats(c, &st);
	ck_assert_uint_eq(st.new_chunks, 0);
	ck_assert_uint_eq(st.new_nodes, 0);
	ck_assert_uint_eq(objects(c), before);
	ck_assert_int_eq(vmir_image_clone(c, "img", 1, "copy", &vi), 0);
	ck_assert_uint_eq(objects(c), before);
	free(p);
	vmir_client_close(c);
}
END_TEST

START_TEST(identical_chunks_in_one_import_are_stored_once)
{
	const uint64_t n = 400;		/* > 128: several identical nodes */
	struct vmir_version_info vi;
	struct vmir_import_stats st;
	struct vmir_client *c = client();
	char path[PATH_MAX + 16], out[PATH_MAX + 16];
	uint64_t i, got_size;
	struct stat sb;
	uint8_t *p, *got;

	p = make_data(n * CS, 13);
	/* every chunk a copy of chunk 0, except the last */
	for (i = 1; i < n - 1; i++)
		memcpy(p + i * CS, p, CS);
	snprintf(path, sizeof(path), "%s/src", cl.dir);
	write_file(path, p, n * CS);
	ck_assert_int_eq(vmir_image_import(c, "img", path, 0, NULL, NULL,
					   &vi), 0);
	vmir_client_import_stats(c, &st);
	ck_assert_uint_eq(st.new_chunks, 2);
	/* level 1: 3 identical full nodes and a partial one; the root */
	ck_assert_uint_eq(st.new_nodes, 3);
	ck_assert_uint_eq(objects(c), 2 * (2 + 3));
	snprintf(out, sizeof(out), "%s/out", cl.dir);
	ck_assert_int_eq(vmir_image_export(c, "img", 0, out, NULL, NULL), 0);
	got = read_file(out, &got_size, &sb);
	ck_assert_uint_eq(got_size, n * CS);
	ck_assert(memcmp(p, got, n * CS) == 0);
	free(got);
	free(p);
	vmir_client_close(c);
}
END_TEST

START_TEST(one_of_three_servers_down_import_and_export_work)
{
	const uint64_t size = 100 * CS + 99;
	struct vmir_version_info vi;
	struct vmir_client *c;
	uint8_t *want;

	srv_stop(2);
	c = client();
	want = import(c, "img", size, 3, &vi);
	export_matches(c, "img", want, size);
	free(want);
	vmir_client_close(c);
}
END_TEST

/* --- a slow link: a TCP relay that paces the client's bytes ----------------------- */

/* relay one connection to 127.0.0.1:port; client bytes at rate bytes/s */
static void relay_conn(int a, unsigned int port, unsigned int rate)
{
	struct sockaddr_in sin = {
		.sin_family = AF_INET,
		.sin_port = htons((uint16_t)port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	struct pollfd pfd[2];
	uint8_t buf[4096];
	int b = socket(AF_INET, SOCK_STREAM, 0);

	if (b < 0 || connect(b, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		return;
	pfd[0].fd = a;
	pfd[1].fd = b;
	pfd[0].events = pfd[1].events = POLLIN;
	while (poll(pfd, 2, -1) > 0) {
		ssize_t n;

		if (pfd[1].revents) {
			n = read(b, buf, sizeof(buf));
			if (n <= 0 || vmir_write_full(a, buf, (size_t)n))
				return;
		}
		if (pfd[0].revents) {
			n = read(a, buf, sizeof(buf));
			if (n <= 0 || vmir_write_full(b, buf, (size_t)n))
				return;
			usleep((useconds_t)((uint64_t)n * 1000000 / rate));
		}
	}
}

/* a relay to server i; writes its "IP:PORT" to addr */
static pid_t slow_relay(unsigned int i, unsigned int rate, char *addr,
			size_t len)
{
	struct sockaddr_in sin = {
		.sin_family = AF_INET,
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	socklen_t sl = sizeof(sin);
	unsigned int port;
	pid_t pid;
	int lfd;

	ck_assert_int_eq(sscanf(cl.s[i].addr, "127.0.0.1:%u", &port), 1);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(lfd, 0);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(lfd, 8), 0);
	ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&sin, &sl), 0);
	snprintf(addr, len, "127.0.0.1:%u", ntohs(sin.sin_port));
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;) {
			int a = accept(lfd, NULL, NULL);

			if (a < 0)
				_exit(1);
			if (fork() == 0) {
				prctl(PR_SET_PDEATHSIG, SIGKILL);
				close(lfd);
				relay_conn(a, port, rate);
				_exit(0);
			}
			close(a);
		}
	}
	close(lfd);
	return pid;
}

START_TEST(requests_queued_on_a_slow_link_do_not_time_out)
{
	/* ~0.7 MiB to each server at 256 KiB/s: ~3 s, timeout 300 ms */
	const uint64_t size = 256 * CS;
	char real[4][sizeof(cl.s[0].addr)];
	struct vmir_version_info vi;
	struct vmir_client *c;
	pid_t relay[4];
	uint8_t *want;
	unsigned int i;

	for (i = 1; i <= cl.nchunkd; i++) {
		memcpy(real[i], cl.s[i].addr, sizeof(real[i]));
		relay[i] = slow_relay(i, 256 << 10, cl.s[i].addr,
				      sizeof(cl.s[i].addr));
	}
	write_conf(cl.conf, cl.key, cl.s[0].addr, 300);
	c = client();
	/* every PUT waits up to 128 requests (0.5 MiB) behind others */
	want = import(c, "img", size, 7, &vi);
	export_matches(c, "img", want, size);
	free(want);
	vmir_client_close(c);
	for (i = 1; i <= cl.nchunkd; i++) {
		kill(relay[i], SIGKILL);
		waitpid(relay[i], NULL, 0);
		memcpy(cl.s[i].addr, real[i], sizeof(real[i]));
	}
}
END_TEST

START_TEST(two_of_three_servers_down_write_fails_naming_them)
{
	char path[PATH_MAX + 16];
	struct vmir_version_info vi;
	struct vmir_client *c;
	uint8_t *p;

	srv_stop(1);
	srv_stop(3);
	c = client();
	p = make_data(10 * CS, 4);
	snprintf(path, sizeof(path), "%s/src", cl.dir);
	write_file(path, p, 10 * CS);
	ck_assert_int_eq(vmir_image_import(c, "img", path, 0, NULL, NULL, &vi),
			 -EIO);
	ck_assert_ptr_nonnull(strstr(vmir_client_error(c),
				     "stored on only 1 of 2"));
	ck_assert_msg(strstr(vmir_client_error(c), "connection refused"), "%s", vmir_client_error(c));
	/* nothing was published */
	ck_assert_int_eq(vmir_image_lookup(c, "img", 0, &vi), -ENOENT);
	free(p);
	vmir_client_close(c);
}
END_TEST

/*
 * The first replica, in rendezvous order, of the object holding chunk idx:
 * every 97th byte flipped, in its file as stored (raw, or packed: .z).
 * Returns whether it was stored packed.
 */
static bool corrupt_first_replica(struct vmir_client *c,
				  struct vmir_version *v, uint64_t idx)
{
	const char *names[MAXSRV];
	char path[PATH_MAX + 128], hex[2 * VMIR_ID_LEN + 1];
	uint8_t order[MAXSRV], *buf, *data;
	uint64_t i, len;
	unsigned int k;
	struct vmir_id id;
	struct stat st;
	void *bufs[1];
	bool packed;

	/* the id: hash of the chunk's true content */
	buf = malloc(CS);
	bufs[0] = buf;
	ck_assert_int_eq(vmir_version_read(v, &idx, 1, bufs), 0);
	vmir_id_of(buf, vmir_version_chunk_len(v, idx), &id);
	free(buf);
	for (k = 0; k < cl.nchunkd; k++)
		names[k] = cl.s[1 + k].addr;
	vmir_placement_order(names, cl.nchunkd, &id, order);
	vmir_id_to_hex(&id, hex);
	snprintf(path, sizeof(path), "%s/data/objects/%.2s/%s",
		 cl.s[1 + order[0]].dir, hex, hex);
	packed = access(path, F_OK) < 0;
	if (packed)
		strcat(path, ".z");
	data = read_file(path, &len, &st);
	for (i = 0; i < len; i += 97)
		data[i] ^= 0x41;
	write_file(path, data, len);
	free(data);
	(void)c;
	return packed;
}

/* a fresh client (nothing cached) reads chunk idx of name as want has it */
static void fresh_read_matches(const char *name, uint64_t idx,
			       const uint8_t *want)
{
	struct vmir_client *c = client();
	struct vmir_version *v;
	uint8_t *buf = malloc(CS);
	void *bufs[1] = { buf };

	ck_assert_int_eq(vmir_version_open(c, name, 0, &v), 0);
	ck_assert_int_eq(vmir_version_read(v, &idx, 1, bufs), 0);
	ck_assert(memcmp(buf, want + idx * CS, CS) == 0);
	free(buf);
	vmir_version_close(v);
	vmir_client_close(c);
}

START_TEST(corrupt_first_replica_is_skipped)
{
	const uint64_t size = 30 * CS;
	struct vmir_version_info vi;
	struct vmir_client *c = client();
	struct vmir_version *v;
	uint64_t idx = 5;
	uint8_t *want;

	want = import(c, "img", size, 5, &vi);
	ck_assert_int_eq(vmir_version_open(c, "img", 0, &v), 0);
	ck_assert(!corrupt_first_replica(c, v, idx));	/* random: raw */
	vmir_version_close(v);
	vmir_client_close(c);
	fresh_read_matches("img", idx, want);
	free(want);
}
END_TEST

/* size bytes that compress well, different for each seed */
static uint8_t *make_text(uint64_t size, uint64_t seed)
{
	static const char *words[] = { "vmir ", "chunk ", "mirror ", "tree\n",
				       "version ", "block " };
	uint8_t *p = malloc(size);
	uint64_t off = 0;

	ck_assert_ptr_nonnull(p);
	rng_state = seed * 0x9e3779b97f4a7c15ull + 1;
	while (off < size) {
		const char *w = words[rng_next() % 6];

		for (; *w && off < size; w++)
			p[off++] = (uint8_t)*w;
	}
	return p;
}

START_TEST(compressible_chunks_travel_packed_and_a_bad_packed_copy_is_skipped)
{
	const uint64_t size = 12 * CS;
	struct vmir_version_info vi;
	struct vmir_import_stats ist;
	struct vmir_client *c = client();
	struct vmir_version *v;
	uint64_t idx = 7;
	uint8_t *want;

	want = make_text(size, 11);
	import_buf(c, "text", want, size, &vi);
	/* sent packed: fewer bytes than the chunks, on every replica */
	vmir_client_import_stats(c, &ist);
	ck_assert_uint_eq(ist.new_chunks, 12);
	ck_assert_uint_lt(ist.new_bytes,
			  (uint64_t)cl.replicas * size * 7 / 8);
	export_matches(c, "text", want, size);

	ck_assert_int_eq(vmir_version_open(c, "text", 0, &v), 0);
	ck_assert(corrupt_first_replica(c, v, idx));	/* stored packed */
	vmir_version_close(v);
	vmir_client_close(c);
	/* it comes from the other replica */
	fresh_read_matches("text", idx, want);
	free(want);
}
END_TEST

/* --- versions: async reads ---------------------------------------------------------------- */

struct rd {
	unsigned int calls;
	uint64_t idx;
	int err;
};

static void rd_cb(void *arg, uint64_t idx, int err, const char *why)
{
	struct rd *r = arg;

	r->calls++;
	r->idx = idx;
	r->err = err;
}

START_TEST(zero_chunk_read_completes_from_poll_only)
{
	struct vmir_version_info vi;
	struct vmir_client *c = client();
	struct vmir_version *v;
	struct rd r = { 0 };
	uint8_t buf[CS];

	free(import(c, "img", 9 * CS, 6, &vi));
	ck_assert_int_eq(vmir_version_open(c, "img", 0, &v), 0);
	ck_assert(vmir_version_chunk_is_zero(v, 4));
	ck_assert(!vmir_version_chunk_is_zero(v, 3));
	memset(buf, 0xaa, sizeof(buf));
	ck_assert_int_eq(vmir_version_read_async(v, 4, buf, rd_cb, &r), 0);
	ck_assert_uint_eq(r.calls, 0);
	ck_assert_uint_eq(vmir_client_inflight(c), 1);
	while (vmir_client_inflight(c))
		ck_assert_int_eq(vmir_client_poll(c, -1), 0);
	ck_assert_uint_eq(r.calls, 1);
	ck_assert_uint_eq(r.idx, 4);
	ck_assert_int_eq(r.err, 0);
	ck_assert(vmir_buf_is_zero(buf, sizeof(buf)));
	vmir_version_close(v);
	vmir_client_close(c);
}
END_TEST

struct rd_many {
	unsigned int calls;
	int err;
};

static void rd_many_cb(void *arg, uint64_t idx, int err, const char *why)
{
	struct rd_many *r = arg;

	r->calls++;
	if (err)
		r->err = err;
}

START_TEST(reads_complete_from_an_outside_poll_loop)
{
	struct vmir_version_info vi;
	struct vmir_client *c = client();
	struct vmir_version *v;
	struct rd_many r = { 0 };
	struct pollfd pfd;
	unsigned int i, loops = 0;
	uint8_t *want, *mem;
	int fd, t;

	want = import(c, "img", 8 * CS, 11, &vi);
	ck_assert_int_eq(vmir_version_open(c, "img", 0, &v), 0);
	/* idle: nothing to wait for */
	ck_assert_int_ge(vmir_client_pollfd(c, &t), 0);
	ck_assert_int_eq(t, -1);
	mem = calloc(8, CS);
	for (i = 0; i < 8; i++)
		ck_assert_int_eq(vmir_version_read_async(v, i, mem + i * CS,
							 rd_many_cb, &r), 0);
	while (r.calls < 8) {
		fd = vmir_client_pollfd(c, &t);
		ck_assert_int_ge(fd, 0);
		pfd.fd = fd;
		pfd.events = POLLIN;
		ck_assert_int_ge(poll(&pfd, 1, t), 0);
		ck_assert_int_eq(vmir_client_poll(c, 0), 0);
		ck_assert_uint_lt(++loops, 100000);
	}
	ck_assert_int_eq(r.err, 0);
	ck_assert_uint_eq(vmir_client_inflight(c), 0);
	ck_assert(memcmp(mem, want, 8 * CS) == 0);
	free(mem);
	free(want);
	vmir_version_close(v);
	vmir_client_close(c);
}
END_TEST

static void expect_chunk(struct vmir_version *v, uint64_t idx,
			 const uint8_t *want);

/* one failed read's message, kept by its own callback */
struct rd_why {
	unsigned int calls;
	int err;
	char why[512];
};

static void rd_why_cb(void *arg, uint64_t idx, int err, const char *why)
{
	struct rd_why *r = arg;

	r->calls++;
	r->err = err;
	snprintf(r->why, sizeof(r->why), "%s", err ? why : "");
}

START_TEST(failed_reads_report_their_own_message)
{
	struct vmir_version_info vi;
	struct vmir_client *c = client();
	struct vmir_version *v;
	struct rd_why a = { 0 }, b = { 0 }, ok = { 0 };
	uint8_t *mem;
	unsigned int i;

	free(import(c, "img", 9 * CS, 21, &vi));
	ck_assert_int_eq(vmir_version_open(c, "img", 0, &v), 0);
	/* both replicas of chunks 3 and 5 gone: every server fails them */
	for (i = 1; i <= cl.nchunkd; i++)
		srv_stop(i);
	mem = calloc(3, CS);
	ck_assert_int_eq(vmir_version_read_async(v, 3, mem, rd_why_cb, &a),
			 0);
	ck_assert_int_eq(vmir_version_read_async(v, 5, mem + CS, rd_why_cb,
						 &b), 0);
	/* a zero chunk needs no server */
	ck_assert_int_eq(vmir_version_read_async(v, 4, mem + 2 * CS,
						 rd_why_cb, &ok), 0);
	while (vmir_client_inflight(c))
		ck_assert_int_eq(vmir_client_poll(c, -1), 0);
	ck_assert_uint_eq(a.calls + b.calls + ok.calls, 3);
	ck_assert_int_ne(a.err, 0);
	ck_assert_int_ne(b.err, 0);
	ck_assert_int_eq(ok.err, 0);
	ck_assert_msg(strstr(a.why, "chunk 3 "), "%s", a.why);
	ck_assert_msg(strstr(b.why, "chunk 5 "), "%s", b.why);
	ck_assert_str_eq(ok.why, "");
	/* the client's own message belongs to its blocking calls */
	ck_assert_str_eq(vmir_client_error(c), "no error");
	free(mem);
	vmir_version_close(v);
	vmir_client_close(c);
}
END_TEST

/* --- versions: asynchronous open -------------------------------------------- */

struct opened {
	unsigned int calls;
	struct vmir_version *v;
	int err;
	char why[512];
};

static void opened_cb(void *arg, struct vmir_version *v, int err,
		      const char *why)
{
	struct opened *o = arg;

	o->calls++;
	o->v = v;
	o->err = err;
	snprintf(o->why, sizeof(o->why), "%s", err ? why : "");
}

static void poll_until(struct vmir_client *c, const unsigned int *calls,
		       unsigned int want)
{
	unsigned int loops = 0;

	while (*calls < want) {
		ck_assert_int_eq(vmir_client_poll(c, 100), 0);
		ck_assert_uint_lt(++loops, 1000);
	}
}

START_TEST(open_async_completes_from_poll_with_the_whole_map)
{
	struct vmir_version_info vi;
	struct vmir_client *c = client();
	struct opened o = { 0 }, bad = { 0 };
	uint8_t *want;
	uint64_t i;

	/* 300 chunks: a root over three level-1 nodes */
	want = import(c, "img", 300 * CS, 22, &vi);
	ck_assert_int_eq(vmir_version_open_async(c, "img", 0, opened_cb, &o),
			 0);
	ck_assert_int_eq(vmir_version_open_async(c, "nosuch", 0, opened_cb,
						 &bad), 0);
	ck_assert_uint_eq(o.calls + bad.calls, 0);
	poll_until(c, &o.calls, 1);
	poll_until(c, &bad.calls, 1);
	ck_assert_int_eq(o.err, 0);
	ck_assert_ptr_nonnull(o.v);
	ck_assert_uint_eq(vmir_version_nchunks(o.v), 300);
	ck_assert_str_eq(vmir_version_get_info(o.v)->root, vi.root);
	for (i = 0; i < 300; i++)
		ck_assert(vmir_version_chunk_is_zero(o.v, i) == (i % 3 == 1));
	expect_chunk(o.v, 299, want + 299 * CS);
	ck_assert_int_eq(bad.err, -ENOENT);
	ck_assert_ptr_null(bad.v);
	ck_assert_msg(strstr(bad.why, "'nosuch'"), "%s", bad.why);
	ck_assert_int_eq(vmir_version_open_async(c, "bad/name", 0, opened_cb,
						 &bad), -EINVAL);
	ck_assert_uint_eq(bad.calls, 1);
	vmir_version_close(o.v);
	free(want);
	vmir_client_close(c);
}
END_TEST

START_TEST(reads_return_content_and_zero_fill_short_tail)
{
	const uint64_t size = 20 * CS + 100;
	struct vmir_version_info vi;
	struct vmir_client *c = client();
	struct vmir_version *v;
	uint64_t idx[21], i;
	void *bufs[21];
	uint8_t *want, *mem;
	struct rd r = { 0 };

	want = import(c, "img", size, 7, &vi);
	ck_assert_int_eq(vmir_version_open(c, "img", 0, &v), 0);
	ck_assert_uint_eq(vmir_version_nchunks(v), 21);
	ck_assert_uint_eq(vmir_version_chunk_len(v, 20), 100);
	ck_assert_uint_eq(vmir_version_chunk_len(v, 19), CS);
	mem = malloc(21 * CS);
	memset(mem, 0xee, 21 * CS);
	for (i = 0; i < 21; i++) {
		idx[i] = 20 - i;	/* any order */
		bufs[i] = mem + (20 - i) * CS;
	}
	ck_assert_int_eq(vmir_version_read(v, idx, 21, bufs), 0);
	ck_assert(memcmp(mem, want, size) == 0);
	ck_assert(vmir_buf_is_zero(mem + size, 21 * CS - size));

	ck_assert_int_eq(vmir_version_read_async(v, 21, mem, rd_cb, &r),
			 -ERANGE);
	ck_assert_uint_eq(r.calls, 0);
	free(mem);
	free(want);
	vmir_version_close(v);
	vmir_client_close(c);
}
END_TEST

/* --- versions: commit ----------------------------------------------------------------------- */

struct src {
	uint64_t seed;
	int fail_at;		/* -1: never */
	unsigned int calls;
};

/* new content for chunk idx: all-zero when seed is 0 */
static int src_fn(void *arg, uint64_t idx, void *buf)
{
	struct src *s = arg;
	uint64_t k, v;

	s->calls++;
	if ((int)idx == s->fail_at)
		return -EIO;
	memset(buf, 0, CS);
	if (!s->seed)
		return 0;
	rng_state = (s->seed + idx) * 0x9e3779b97f4a7c15ull + 1;
	for (k = 0; k < CS; k += 8) {
		v = rng_next();
		memcpy((uint8_t *)buf + k, &v, 8);
	}
	return 0;
}

static void expect_chunk(struct vmir_version *v, uint64_t idx,
			 const uint8_t *want)
{
	uint8_t buf[CS];
	void *bufs[1] = { buf };

	ck_assert_int_eq(vmir_version_read(v, &idx, 1, bufs), 0);
	ck_assert(memcmp(buf, want, CS) == 0);
}

START_TEST(commit_uploads_changed_chunks_and_their_path_only)
{
	struct vmir_version_info vi, out;
	struct vmir_client *c = client();
	struct vmir_version *v;
	struct src s = { .seed = 99, .fail_at = -1 };
	uint64_t idx[2] = { 2, 200 }, before;
	uint8_t *want, fresh[CS];

	/* 300 chunks: 3 level-1 nodes under the root */
	want = import(c, "img", 300 * CS, 8, &vi);
	ck_assert_int_eq(vmir_version_open(c, "img", 0, &v), 0);
	before = objects(c);
	ck_assert_int_eq(vmir_version_commit(v, idx, 2, src_fn, &s, NULL,
					     &out), 0);
	ck_assert_uint_eq(s.calls, 2);
	ck_assert_uint_eq(out.version, 2);
	ck_assert_uint_eq(vmir_version_get_info(v)->version, 2);
	ck_assert_str_eq(vmir_version_get_info(v)->root, out.root);
	/* 2 chunks, their 2 level-1 nodes, the root; R = 2 */
	ck_assert_uint_eq(objects(c), before + 2 * 5);

	src_fn(&s, 2, fresh);
	expect_chunk(v, 2, fresh);
	src_fn(&s, 200, fresh);
	expect_chunk(v, 200, fresh);
	expect_chunk(v, 3, want + 3 * CS);
	expect_chunk(v, 299, want + 299 * CS);
	vmir_version_close(v);

	/* the published version reads the same from a new handle */
	ck_assert_int_eq(vmir_version_open(c, "img", 2, &v), 0);
	expect_chunk(v, 200, fresh);
	vmir_version_close(v);
	free(want);
	vmir_client_close(c);
}
END_TEST

START_TEST(commit_of_zero_content_makes_a_zero_chunk)
{
	struct vmir_version_info vi, out;
	struct vmir_client *c = client();
	struct vmir_version *v;
	struct src s = { .seed = 0, .fail_at = -1 };
	uint64_t idx = 0, chunks, bytes;

	free(import(c, "img", 10 * CS, 9, &vi));
	ck_assert_int_eq(vmir_version_open(c, "img", 0, &v), 0);
	ck_assert(!vmir_version_chunk_is_zero(v, 0));
	ck_assert_int_eq(vmir_version_commit(v, &idx, 1, src_fn, &s, NULL,
					     &out), 0);
	ck_assert(vmir_version_chunk_is_zero(v, 0));
	ck_assert_int_eq(vmir_image_usage(c, "img", 2, &chunks, &bytes), 0);
	/* chunks 0, 2, 3, 5, 6, 8, 9 were non-zero; 0 is now zero */
	ck_assert_uint_eq(chunks, 6);
	vmir_version_close(v);
	vmir_client_close(c);
}
END_TEST

START_TEST(commit_on_stale_base_is_refused_and_changes_nothing)
{
	struct vmir_version_info vi, out;
	struct vmir_client *c = client();
	struct vmir_version *a, *b;
	struct src s = { .seed = 5, .fail_at = -1 };
	uint64_t idx = 3;
	uint8_t *want;

	want = import(c, "img", 10 * CS, 10, &vi);
	ck_assert_int_eq(vmir_version_open(c, "img", 1, &a), 0);
	ck_assert_int_eq(vmir_version_open(c, "img", 1, &b), 0);
	ck_assert_int_eq(vmir_version_commit(a, &idx, 1, src_fn, &s, NULL,
					     &out), 0);
	ck_assert_int_eq(vmir_version_commit(b, &idx, 1, src_fn, &s, NULL,
					     &out), -ESTALE);
	ck_assert_ptr_nonnull(strstr(vmir_client_error(c),
				     "publish of img on version 1 refused: version 2 exists (stale base)"));
	ck_assert_uint_eq(vmir_version_get_info(b)->version, 1);
	expect_chunk(b, 3, want + 3 * CS);
	ck_assert_int_eq(vmir_image_lookup(c, "img", 0, &vi), 0);
	ck_assert_uint_eq(vi.version, 2);
	vmir_version_close(a);
	vmir_version_close(b);
	free(want);
	vmir_client_close(c);
}
END_TEST

START_TEST(commit_to_image_is_version_1_of_the_new_image)
{
	struct vmir_version_info vi, out;
	struct vmir_client *c = client();
	struct vmir_version *v;
	struct src s = { .seed = 6, .fail_at = -1 };
	uint64_t idx = 1;
	uint8_t fresh[CS];

	free(import(c, "base", 10 * CS, 11, &vi));
	ck_assert_int_eq(vmir_version_open(c, "base", 0, &v), 0);
	ck_assert_int_eq(vmir_version_commit(v, &idx, 1, src_fn, &s, "snap",
					     &out), 0);
	ck_assert_str_eq(out.image, "snap");
	ck_assert_uint_eq(out.version, 1);
	ck_assert_str_eq(vmir_version_get_info(v)->image, "snap");
	ck_assert_int_eq(vmir_image_lookup(c, "snap", 0, &vi), 0);
	ck_assert_uint_eq(vi.version, 1);
	ck_assert_str_eq(vi.root, out.root);
	ck_assert_str_eq(vi.parent_image, "base");
	ck_assert_uint_eq(vi.parent_version, 1);
	ck_assert_int_eq(vmir_image_lookup(c, "base", 0, &vi), 0);
	ck_assert_uint_eq(vi.version, 1);
	src_fn(&s, 1, fresh);
	expect_chunk(v, 1, fresh);
	vmir_version_close(v);
	vmir_client_close(c);
}
END_TEST

START_TEST(failing_chunk_source_publishes_nothing)
{
	struct vmir_version_info vi, out, *vs;
	struct vmir_client *c = client();
	struct vmir_version *v;
	struct src s = { .seed = 7, .fail_at = 40 };
	uint64_t idx[3] = { 2, 40, 41 };
	uint8_t *want;
	size_t n;

	want = import(c, "img", 50 * CS, 12, &vi);
	ck_assert_int_eq(vmir_version_open(c, "img", 0, &v), 0);
	ck_assert_int_eq(vmir_version_commit(v, idx, 3, src_fn, &s, NULL,
					     &out), -EIO);
	ck_assert_ptr_nonnull(strstr(vmir_client_error(c), "chunk 40"));
	ck_assert_int_eq(vmir_image_versions(c, "img", &vs, &n), 0);
	ck_assert_uint_eq(n, 1);
	free(vs);
	ck_assert_uint_eq(vmir_version_get_info(v)->version, 1);
	expect_chunk(v, 2, want + 2 * CS);

	idx[0] = 5;
	idx[1] = 5;
	ck_assert_int_eq(vmir_version_commit(v, idx, 2, src_fn, &s, NULL,
					     &out), -EINVAL);
	idx[1] = 50;
	ck_assert_int_eq(vmir_version_commit(v, idx, 2, src_fn, &s, NULL,
					     &out), -EINVAL);
	vmir_version_close(v);
	free(want);
	vmir_client_close(c);
}
END_TEST

/* --- versions: asynchronous commit -------------------------------------------- */

struct committed {
	unsigned int calls;
	int err;
	struct vmir_version_info vi;
	char why[512];
};

static void committed_cb(void *arg, const struct vmir_version_info *vi,
			 int err, const char *why)
{
	struct committed *k = arg;

	k->calls++;
	k->err = err;
	if (!err)
		k->vi = *vi;
	snprintf(k->why, sizeof(k->why), "%s", err ? why : "");
}

START_TEST(commit_async_runs_beside_reads_and_advances_the_version)
{
	struct vmir_version_info vi;
	struct vmir_client *c = client();
	struct vmir_version *v;
	struct src s = { .seed = 31, .fail_at = -1 };
	struct committed k = { 0 };
	struct rd_many r = { 0 };
	uint64_t idx[3] = { 0, 150, 299 };
	uint8_t *want, *mem, fresh[CS];
	unsigned int i;

	want = import(c, "img", 300 * CS, 23, &vi);
	ck_assert_int_eq(vmir_version_open(c, "img", 0, &v), 0);
	ck_assert_int_eq(vmir_version_commit_async(v, idx, 3, src_fn, &s,
						   NULL, committed_cb, &k), 0);
	/* reads of other chunks go on while the commit runs */
	mem = calloc(10, CS);
	for (i = 0; i < 10; i++)
		ck_assert_int_eq(vmir_version_read_async(v, 10 + i,
							 mem + i * CS,
							 rd_many_cb, &r), 0);
	ck_assert_uint_eq(k.calls, 0);
	poll_until(c, &k.calls, 1);
	poll_until(c, &r.calls, 10);
	ck_assert_msg(k.err == 0, "%s", k.why);
	ck_assert_int_eq(r.err, 0);
	ck_assert(memcmp(mem, want + 10 * CS, 10 * CS) == 0);
	ck_assert_uint_eq(k.vi.version, 2);
	ck_assert_uint_eq(vmir_version_get_info(v)->version, 2);
	ck_assert_int_eq(vmir_image_lookup(c, "img", 0, &vi), 0);
	ck_assert_str_eq(vi.root, k.vi.root);
	for (i = 0; i < 3; i++) {
		src_fn(&s, idx[i], fresh);
		expect_chunk(v, idx[i], fresh);
	}
	expect_chunk(v, 151, want + 151 * CS);
	free(mem);
	free(want);
	vmir_version_close(v);
	vmir_client_close(c);
}
END_TEST

START_TEST(commit_async_pauses_on_a_full_node_backlog_and_finishes)
{
	struct vmir_version_info vi, *vs;
	struct vmir_client *c = client();
	struct vmir_version *v, *w;
	struct src s = { .seed = 32, .fail_at = -1 };
	struct committed k = { 0 };
	uint64_t idx[600], i;
	uint8_t fresh[CS];
	size_t n;

	/* 600 changed chunks under 5 level-1 nodes, a backlog of one node */
	free(import(c, "img", 600 * CS, 24, &vi));
	ck_assert_int_eq(vmir_version_open(c, "img", 0, &v), 0);
	for (i = 0; i < 600; i++)
		idx[i] = i;
	vmir_client_set_node_backlog(c, 1024);
	ck_assert_int_eq(vmir_version_commit_async(v, idx, 600, src_fn, &s,
						   NULL, committed_cb, &k), 0);
	poll_until(c, &k.calls, 1);
	ck_assert_msg(k.err == 0, "%s", k.why);
	ck_assert_int_eq(vmir_image_versions(c, "img", &vs, &n), 0);
	ck_assert_uint_eq(n, 2);
	free(vs);
	/* a fresh handle reads the committed tree from the servers */
	ck_assert_int_eq(vmir_version_open(c, "img", 2, &w), 0);
	for (i = 0; i < 600; i += 97) {
		src_fn(&s, i, fresh);
		expect_chunk(w, i, fresh);
	}
	vmir_version_close(w);
	vmir_version_close(v);
	vmir_client_close(c);
}
END_TEST

START_TEST(commit_async_failure_keeps_its_message_and_the_version)
{
	struct vmir_version_info vi;
	struct vmir_client *c = client();
	struct vmir_version *a, *b;
	struct src s = { .seed = 33, .fail_at = -1 };
	struct committed ka = { 0 }, kb = { 0 };
	uint64_t idx = 4;

	free(import(c, "img", 10 * CS, 25, &vi));
	ck_assert_int_eq(vmir_version_open(c, "img", 1, &a), 0);
	ck_assert_int_eq(vmir_version_open(c, "img", 1, &b), 0);
	ck_assert_int_eq(vmir_version_commit_async(a, &idx, 1, src_fn, &s,
						   NULL, committed_cb, &ka), 0);
	poll_until(c, &ka.calls, 1);
	ck_assert_int_eq(ka.err, 0);
	ck_assert_int_eq(vmir_version_commit_async(b, &idx, 1, src_fn, &s,
						   NULL, committed_cb, &kb), 0);
	poll_until(c, &kb.calls, 1);
	ck_assert_int_eq(kb.err, -ESTALE);
	ck_assert_msg(strstr(kb.why, "version 2 exists (stale base)"), "%s",
		      kb.why);
	ck_assert_uint_eq(vmir_version_get_info(b)->version, 1);
	ck_assert_str_eq(vmir_client_error(c), "no error");
	vmir_version_close(a);
	vmir_version_close(b);
	vmir_client_close(c);
}
END_TEST

struct learned {
	unsigned int calls;
	int err;
	uint32_t deployments;
	char why[512];
};

static void learned_cb(void *arg, const struct vmir_profile *p, int err,
		       const char *why)
{
	struct learned *l = arg;

	l->calls++;
	l->err = err;
	l->deployments = err ? 0 : p->deployments;
	snprintf(l->why, sizeof(l->why), "%s", err ? why : "");
}

START_TEST(profiles_are_learned_merged_and_inherited)
{
	static const uint32_t first[] = { 5, 0, 9, 2 };
	static const uint32_t second[] = { 0, 5, 9, 2, 7 };
	static const uint32_t bad[] = { 3, 3 };
	static const uint32_t past[] = { 1, 10 };
	struct vmir_version_info vi, cv;
	struct vmir_client *c = client();
	struct learned a = { 0 }, b = { 0 };
	struct vmir_profile p, q;
	uint8_t *want;

	want = import(c, "img", 10 * CS, 41, &vi);
	ck_assert_str_eq(vi.profile, "");
	ck_assert_int_eq(vmir_profile_learn(c, "img", 1, first, 4, &p), 0);
	ck_assert_uint_eq(p.n, 4);
	ck_assert_uint_eq(p.deployments, 1);
	ck_assert_uint_eq(p.nchunks, 10);
	ck_assert_mem_eq(p.chunks, first, sizeof(first));
	/* the version names it now, and it reads back from the servers */
	ck_assert_int_eq(vmir_image_lookup(c, "img", 1, &vi), 0);
	ck_assert_str_eq(vi.profile, p.id);
	ck_assert(!vi.profile_inherited);
	ck_assert_int_eq(vmir_profile_read(c, vi.profile, &q), 0);
	ck_assert_uint_eq(q.n, 4);
	ck_assert_mem_eq(q.chunks, first, sizeof(first));
	vmir_profile_free(&q);
	/* a clone starts with it */
	ck_assert_int_eq(vmir_image_clone(c, "img", 1, "vm", &cv), 0);
	ck_assert_str_eq(cv.profile, p.id);
	ck_assert(cv.profile_inherited);
	vmir_profile_free(&p);
	/* two nodes learning at once: one merge is redone on the other's */
	ck_assert_int_eq(vmir_profile_learn_async(c, "img", 1, second, 5,
						  learned_cb, &a), 0);
	ck_assert_int_eq(vmir_profile_learn_async(c, "img", 1, second, 5,
						  learned_cb, &b), 0);
	poll_until(c, &a.calls, 1);
	poll_until(c, &b.calls, 1);
	ck_assert_msg(a.err == 0, "%s", a.why);
	ck_assert_msg(b.err == 0, "%s", b.why);
	ck_assert_uint_eq(a.deployments + b.deployments, 2 + 3);
	ck_assert_int_eq(vmir_image_lookup(c, "img", 1, &vi), 0);
	ck_assert_int_eq(vmir_profile_read(c, vi.profile, &q), 0);
	ck_assert_uint_eq(q.deployments, 3);
	ck_assert_uint_eq(q.n, 5);
	ck_assert_uint_eq(q.chunks[4], 7);
	vmir_profile_free(&q);
	/* orders that do not fit the version, ids that are not ids */
	ck_assert_int_eq(vmir_profile_learn(c, "img", 1, bad, 2, NULL),
			 -EINVAL);
	ck_assert_int_eq(vmir_profile_learn(c, "img", 1, past, 2, NULL),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(vmir_client_error(c), "does not fit"));
	ck_assert_int_eq(vmir_profile_learn(c, "nope", 1, first, 4, NULL),
			 -ENOENT);
	ck_assert_int_eq(vmir_profile_learn(c, "img", 0, first, 4, NULL),
			 -EINVAL);
	ck_assert_int_eq(vmir_profile_read(c, "xyz", &q), -EINVAL);
	/* an object that is not a profile (a tree node) */
	ck_assert_int_ne(vmir_profile_read(c, vi.root, &q), 0);
	free(want);
	vmir_client_close(c);
}
END_TEST

/* --- peers ------------------------------------------------------------------ */

#define PEER	(1 + 3)		/* the slot of the test peer, after 3 servers */

/*
 * A chunk server outside the configuration plays a peer: with copy, it
 * holds every object of the cluster (flipped bytes with corrupt, as a
 * lying peer would send them).
 */
static void peer_start(const char *dir, bool copy, bool corrupt)
{
	struct srv *s = &cl.s[PEER];
	char cmd[4 * PATH_MAX];
	unsigned int i;

	memset(s, 0, sizeof(*s));
	s->chunkd = true;
	snprintf(s->dir, sizeof(s->dir), "%s/%s", cl.dir, dir);
	ck_assert_int_eq(mkdir(s->dir, 0700), 0);
	srv_start(PEER);		/* lays out its store */
	if (!copy)
		return;
	srv_stop(PEER);
	for (i = 1; copy && i <= cl.nchunkd; i++) {
		snprintf(cmd, sizeof(cmd),
			 "cp -rn '%s/data/objects/.' '%s/data/objects/'",
			 cl.s[i].dir, s->dir);
		ck_assert_int_eq(system(cmd), 0);
	}
	/* a fresh port: the old one may be taken meanwhile */
	s->addr[0] = '\0';
	if (corrupt) {
		snprintf(cmd, sizeof(cmd),
			 "find '%s/data/objects' -type f | while read f; do "
			 "printf 'XXXX' | dd of=\"$f\" bs=1 seek=100 conv=notrunc status=none; done",
			 s->dir);
		ck_assert_int_eq(system(cmd), 0);
	}
	srv_start(PEER);
}

static void rd_all_cb(void *arg, const struct vmir_fetch_result *res)
{
	struct rd *r = arg;

	r->calls++;
	if (res->err)
		r->err = res->err;
}

/* read every chunk of v (flags as vmir_version_fetch_async) into want's match */
static void read_all(struct vmir_client *c, struct vmir_version *v,
		     unsigned int flags, const uint8_t *want, uint64_t size)
{
	uint64_t n = vmir_version_nchunks(v), i;
	uint8_t *mem = malloc(n * CS);
	struct rd r = { 0 };

	for (i = 0; i < n; i++)
		ck_assert_int_eq(vmir_version_fetch_async(v, i, mem + i * CS,
							  flags, rd_all_cb, &r),
				 0);
	while (r.calls < n)
		ck_assert_int_eq(vmir_client_poll(c, -1), 0);
	ck_assert_int_eq(r.err, 0);
	ck_assert(memcmp(mem, want, size) == 0);
	free(mem);
}

/* chunks of v whose home is the peer (asked first), and the others */
static void peer_split(struct vmir_version *v, uint64_t *from_peer,
		       uint64_t *others)
{
	uint64_t i;

	*from_peer = *others = 0;
	for (i = 0; i < vmir_version_nchunks(v); i++) {
		if (vmir_version_chunk_is_zero(v, i))
			continue;
		if (vmir_version_chunk_from_peer(v, i))
			(*from_peer)++;
		else
			(*others)++;
	}
}

/* img with the peer as the other node; *peer of its chunks are homed there */
static struct vmir_version *open_with_peer(struct vmir_client *c,
					   uint64_t *peer, uint64_t *others)
{
	const char *addrs[2] = { "127.0.0.1:9", cl.s[PEER].addr };
	struct vmir_version *v;

	ck_assert_int_eq(vmir_version_open(c, "img", 0, &v), 0);
	/* this node (never connected to) and the peer */
	ck_assert_int_eq(vmir_version_set_peers(v, "127.0.0.1:9", addrs, 2),
			 0);
	peer_split(v, peer, others);
	/* rendezvous spreads the chunks over both nodes */
	ck_assert_uint_gt(*peer, 5);
	ck_assert_uint_gt(*others, 5);
	return v;
}

START_TEST(reads_ask_the_chunks_home_peer_first_and_count_the_sources)
{
	const uint64_t size = 40 * CS;
	struct vmir_version_info vi;
	struct vmir_client *c = client();
	struct vmir_fetch_stats st, cst;
	struct vmir_version *v;
	uint64_t peer, others;
	uint8_t *want;

	want = import(c, "img", size, 11, &vi);
	peer_start("peer", true, false);
	v = open_with_peer(c, &peer, &others);
	read_all(c, v, 0, want, size);
	vmir_version_fetch_stats(v, &st);
	ck_assert_uint_eq(st.peer_chunks, peer);
	ck_assert_uint_eq(st.peer_bytes, peer * CS);
	ck_assert_uint_eq(st.chunkd_chunks, others);
	ck_assert_uint_eq(st.peer_misses, 0);
	vmir_client_fetch_stats(c, &cst);
	ck_assert_uint_eq(cst.peer_chunks, peer);

	/* VMIR_FETCH_NO_PEERS: the chunk servers only */
	read_all(c, v, VMIR_FETCH_NO_PEERS, want, size);
	vmir_version_fetch_stats(v, &st);
	ck_assert_uint_eq(st.peer_chunks, peer);
	ck_assert_uint_eq(st.chunkd_chunks, others + peer + others);

	/* no peers any more: nothing is asked of one */
	ck_assert_int_eq(vmir_version_set_peers(v, NULL, NULL, 0), 0);
	ck_assert(!vmir_version_chunk_from_peer(v, 1));
	vmir_version_close(v);
	srv_stop(PEER);
	free(want);
	vmir_client_close(c);
}
END_TEST

START_TEST(a_lying_empty_or_dead_peer_costs_a_retry_never_a_wrong_byte)
{
	const uint64_t size = 40 * CS;
	struct vmir_version_info vi;
	struct vmir_client *c = client();
	struct vmir_fetch_stats st;
	struct vmir_version *v;
	uint64_t peer, others;
	uint8_t *want;

	want = import(c, "img", size, 12, &vi);
	peer_start("peer", true, true);		/* sends wrong bytes */
	v = open_with_peer(c, &peer, &others);
	read_all(c, v, 0, want, size);
	vmir_version_fetch_stats(v, &st);
	ck_assert_uint_eq(st.peer_chunks, 0);
	ck_assert_uint_eq(st.peer_misses, peer);
	ck_assert_uint_eq(st.chunkd_chunks, peer + others);
	vmir_version_close(v);
	srv_stop(PEER);

	/* a peer that has none of it (another address: other homes) */
	peer_start("peer2", false, false);
	v = open_with_peer(c, &peer, &others);
	read_all(c, v, 0, want, size);
	vmir_version_fetch_stats(v, &st);
	ck_assert_uint_eq(st.peer_chunks, 0);
	ck_assert_uint_eq(st.peer_misses, peer);

	/* and a dead one: refused connections, then marked down */
	srv_stop(PEER);
	read_all(c, v, 0, want, size);
	vmir_version_fetch_stats(v, &st);
	ck_assert_uint_eq(st.peer_chunks, 0);
	ck_assert_uint_eq(st.peer_misses, 2 * peer);
	vmir_version_close(v);
	free(want);
	vmir_client_close(c);
}
END_TEST

struct kept {
	unsigned int calls, packed, from_peer;
	bool unpacks;
};

static void kept_cb(void *arg, const struct vmir_fetch_result *res)
{
	struct kept *k = arg;
	uint8_t *buf;
	int64_t n;

	k->calls++;
	ck_assert_int_eq(res->err, 0);
	k->from_peer += res->from_peer;
	if (!res->packed)
		return;
	k->packed++;
	/* the frame as it came: it unpacks to the chunk */
	buf = malloc(CS);
	memcpy(buf, res->packed, res->packed_len);
	n = vmir_zunpack_inplace(buf, CS, res->packed_len);
	if (n == CS)
		k->unpacks = true;
	free(buf);
}

START_TEST(a_packed_chunk_is_kept_as_it_came_for_serving_on)
{
	const uint64_t size = 8 * CS;
	struct vmir_version_info vi;
	struct vmir_client *c = client();
	struct vmir_version *v;
	struct kept k = { 0 };
	uint8_t *want, *mem = malloc(size);
	uint64_t i;

	want = make_text(size, 15);	/* packs well */
	import_buf(c, "img", want, size, &vi);
	ck_assert_int_eq(vmir_version_open(c, "img", 0, &v), 0);
	for (i = 0; i < 8; i++)
		ck_assert_int_eq(vmir_version_fetch_async(v, i, mem + i * CS,
							  i < 4 ? VMIR_FETCH_KEEP_PACKED : 0,
							  kept_cb, &k), 0);
	while (k.calls < 8)
		ck_assert_int_eq(vmir_client_poll(c, -1), 0);
	ck_assert(memcmp(mem, want, size) == 0);
	ck_assert_uint_eq(k.packed, 4);		/* asked for, and only those */
	ck_assert(k.unpacks);
	ck_assert_uint_eq(k.from_peer, 0);
	ck_assert_int_eq(vmir_version_fetch_async(v, 0, mem, 1u << 7, kept_cb,
						  &k), -EINVAL);
	vmir_version_close(v);
	free(mem);
	free(want);
	vmir_client_close(c);
}
END_TEST

START_TEST(a_chunk_is_found_by_its_id)
{
	const uint64_t size = 20 * CS;
	struct vmir_version_info vi;
	struct vmir_client *c = client();
	struct vmir_version *v;
	struct vmir_id id;
	uint64_t i, idx;
	uint8_t *want;

	want = make_data(size, 13);
	/* chunk 7 the same as chunk 3, chunk 9 zero */
	memcpy(want + 7 * CS, want + 3 * CS, CS);
	memset(want + 9 * CS, 0, CS);
	import_buf(c, "img", want, size, &vi);
	ck_assert_int_eq(vmir_version_open(c, "img", 0, &v), 0);
	for (i = 0; i < 20; i++) {
		vmir_id_of(want + i * CS, CS, &id);
		if (vmir_buf_is_zero(want + i * CS, CS)) {
			ck_assert_int_eq(vmir_version_find_chunk(v, id.b, &idx),
					 -ENOENT);
			continue;
		}
		ck_assert_int_eq(vmir_version_find_chunk(v, id.b, &idx), 0);
		ck_assert_uint_eq(idx, i == 7 ? 3 : i);
	}
	id.b[0] ^= 1;
	ck_assert_int_eq(vmir_version_find_chunk(v, id.b, &idx), -ENOENT);
	vmir_version_close(v);
	free(want);
	vmir_client_close(c);
}
END_TEST

static void leased_cb(void *arg, int err, const char *why)
{
	int *res = arg;

	*res = err;
	(void)why;
}

/* PEER_LEASE through libvmir, waited for */
static int lease(struct vmir_client *c, const char *name, uint32_t version,
		 const char *addr, uint32_t ms)
{
	int res = 1;
	int ret = vmir_peer_lease_async(c, name, version, addr, ms, leased_cb,
					&res);

	if (ret)
		return ret;
	while (res == 1)
		ck_assert_int_eq(vmir_client_poll(c, -1), 0);
	return res;
}

START_TEST(nodes_lease_a_version_and_are_listed_until_they_leave)
{
	struct vmir_version_info vi;
	struct vmir_client *c = client();
	struct vmir_peer_info *p;
	char ip[64];
	size_t n;

	free(import(c, "img", 4 * CS, 14, &vi));
	ck_assert_int_eq(vmir_peers_list(c, "img", 1, &p, &n), 0);
	ck_assert_uint_eq(n, 0);
	free(p);
	ck_assert_int_eq(lease(c, "img", 1, "10.9.0.1:7410", 30000), 0);
	ck_assert_int_eq(lease(c, "img", 1, "10.9.0.2:7410", 60000), 0);
	ck_assert_int_eq(vmir_peers_list(c, "img", 0, &p, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(p[0].addr, "10.9.0.2:7410");
	ck_assert_str_eq(p[1].addr, "10.9.0.1:7410");
	ck_assert_uint_le(p[1].ttl_ms, 30000);
	free(p);
	ck_assert_int_eq(lease(c, "img", 1, "10.9.0.2:7410", 0), 0);
	ck_assert_int_eq(vmir_peers_list(c, "img", 1, &p, &n), 0);
	ck_assert_uint_eq(n, 1);
	free(p);
	/* bad input never reaches the server */
	ck_assert_int_eq(lease(c, "img", 1, "node1:7410", 30000), -EINVAL);
	ck_assert_ptr_nonnull(strstr(vmir_client_error(c), "numeric"));
	ck_assert_int_eq(lease(c, "img", 1, "10.9.0.1:7410", 10), -EINVAL);
	ck_assert_int_eq(lease(c, "nope", 1, "10.9.0.1:7410", 30000), -ENOENT);
	ck_assert_int_eq(vmir_peers_list(c, "nope", 0, &p, &n), -ENOENT);
	ck_assert_ptr_nonnull(strstr(vmir_client_error(c),
				     "no such image or version"));
	/* the route to the version server: loopback here */
	ck_assert_int_eq(vmir_client_local_ip(c, ip, sizeof(ip)), 0);
	ck_assert_str_eq(ip, "127.0.0.1");
	vmir_client_close(c);
}
END_TEST

static Suite *client_suite(void)
{
	Suite *s = suite_create("client");
	TCase *tc;

	tc = tcase_create("connect");
	tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
	tcase_add_checked_fixture(tc, setup3, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, open_without_config_says_how_to_give_one);
	tcase_add_test(tc, unreachable_version_server_is_named);
	tcase_add_test(tc, wrong_key_is_refused_with_a_hint);
	tcase_add_test(tc, silent_server_times_out_and_is_named);
	tcase_add_test(tc, requests_queued_on_a_slow_link_do_not_time_out);
	suite_add_tcase(s, tc);

	tc = tcase_create("namespace");
	tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
	tcase_add_checked_fixture(tc, setup3, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, missing_image_error_names_image_and_server);
	tcase_add_test(tc, create_list_versions_clone_delete);
	suite_add_tcase(s, tc);

	tc = tcase_create("transfer");
	tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
	tcase_add_checked_fixture(tc, setup3, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, export_is_identical_and_sparse);
	tcase_add_test(tc, reimport_and_clone_store_nothing_new);
	tcase_add_test(tc, identical_chunks_in_one_import_are_stored_once);
	tcase_add_test(tc, one_of_three_servers_down_import_and_export_work);
	tcase_add_test(tc, two_of_three_servers_down_write_fails_naming_them);
	tcase_add_test(tc, corrupt_first_replica_is_skipped);
	tcase_add_test(tc, compressible_chunks_travel_packed_and_a_bad_packed_copy_is_skipped);
	suite_add_tcase(s, tc);

	tc = tcase_create("read");
	tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
	tcase_add_checked_fixture(tc, setup3, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, zero_chunk_read_completes_from_poll_only);
	tcase_add_test(tc, reads_return_content_and_zero_fill_short_tail);
	tcase_add_test(tc, reads_complete_from_an_outside_poll_loop);
	tcase_add_test(tc, failed_reads_report_their_own_message);
	tcase_add_test(tc, open_async_completes_from_poll_with_the_whole_map);
	suite_add_tcase(s, tc);

	tc = tcase_create("commit");
	tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
	tcase_add_checked_fixture(tc, setup3, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, commit_uploads_changed_chunks_and_their_path_only);
	tcase_add_test(tc, commit_of_zero_content_makes_a_zero_chunk);
	tcase_add_test(tc, commit_on_stale_base_is_refused_and_changes_nothing);
	tcase_add_test(tc, commit_to_image_is_version_1_of_the_new_image);
	tcase_add_test(tc, failing_chunk_source_publishes_nothing);
	tcase_add_test(tc, commit_async_runs_beside_reads_and_advances_the_version);
	tcase_add_test(tc, commit_async_pauses_on_a_full_node_backlog_and_finishes);
	tcase_add_test(tc, commit_async_failure_keeps_its_message_and_the_version);
	suite_add_tcase(s, tc);

	tc = tcase_create("peers");
	tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
	tcase_add_checked_fixture(tc, setup3, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, reads_ask_the_chunks_home_peer_first_and_count_the_sources);
	tcase_add_test(tc, a_lying_empty_or_dead_peer_costs_a_retry_never_a_wrong_byte);
	tcase_add_test(tc, a_chunk_is_found_by_its_id);
	tcase_add_test(tc, a_packed_chunk_is_kept_as_it_came_for_serving_on);
	tcase_add_test(tc, nodes_lease_a_version_and_are_listed_until_they_leave);
	suite_add_tcase(s, tc);

	tc = tcase_create("profile");
	tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
	tcase_add_checked_fixture(tc, setup3, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, profiles_are_learned_merged_and_inherited);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	vmir_log_init("check_client");
	sr = srunner_create(client_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
