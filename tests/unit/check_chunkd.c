// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of vmir-chunkd: the object store driven through the real
 * io_uring code (a listener-less srv provides the ring), and the server
 * framework over real sockets (vmir-chunkd's code in a forked child on
 * 127.0.0.1:0, spoken to with raw protocol frames).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "chunkd_server.h"
#include "chunkd_store.h"
#include "srv.h"
#include "test_client.h"
#include "vmir_util.h"

#define TMO	5000	/* ms per reply */

static char tdir[256];

static int rm_one(const char *path, const struct stat *sb, int flag,
		  struct FTW *ftw)
{
	return remove(path);
}

static void tdir_make(void)
{
	snprintf(tdir, sizeof(tdir), "/tmp/check_chunkd.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tdir));
}

static void tdir_remove(void)
{
	nftw(tdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void fill_random(void *p, size_t len, unsigned int seed)
{
	uint8_t *b = p;

	srand(seed);
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)rand();
}

static void obj_path(const char *dir, const struct vmir_id *id, char *out,
		     size_t outlen)
{
	char hex[2 * VMIR_ID_LEN + 1];

	vmir_id_to_hex(id, hex);
	snprintf(out, outlen, "%s/objects/%.2s/%s", dir, hex, hex);
}

static unsigned int count_entries(const char *path)
{
	char cmd[512];
	unsigned int n = 0;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "ls -A '%s' | wc -l", path);
	f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fscanf(f, "%u", &n), 1);
	pclose(f);
	return n;
}

/* --- store, driven through the ring ---------------------------------------- */

static struct srv *ring;
static struct chunkd_store *st;
static char sdir[300];

struct waiter {
	bool done;
	int err;
	void *data;
	uint32_t len;
	bool packed;
};

static void put_cb(void *arg, int err)
{
	struct waiter *w = arg;

	w->done = true;
	w->err = err;
}

static void get_cb(void *arg, int err, void *data, uint32_t len, bool packed)
{
	struct waiter *w = arg;

	w->done = true;
	w->err = err;
	w->data = data;
	w->len = len;
	w->packed = packed;
}

static void wait_for(struct waiter *w)
{
	while (!w->done)
		ck_assert_int_eq(srv_poll(ring), 0);
}

static int store_put_as(const void *data, uint32_t len,
			const struct vmir_id *id, bool packed)
{
	struct waiter w = { 0 };

	chunkd_put(st, id, data, len, packed, put_cb, &w);
	wait_for(&w);
	return w.err;
}

static int store_put(const void *data, uint32_t len, const struct vmir_id *id)
{
	return store_put_as(data, len, id, false);
}

static int store_put_content(const void *data, uint32_t len,
			     struct vmir_id *id)
{
	vmir_id_of(data, len, id);
	return store_put(data, len, id);
}

/* 0 with *data malloc()ed (as stored: *packed says how), or -errno */
static int store_get_as(const struct vmir_id *id, void **data, uint32_t *len,
			bool *packed)
{
	struct chunkd_get_op *op;
	struct waiter w = { 0 };
	uint32_t size;
	bool zopen;
	int ret;

	ret = chunkd_get_open(st, id, &op, &size, &zopen);
	if (ret < 0)
		return ret;
	chunkd_get_read(op, get_cb, &w);
	wait_for(&w);
	if (!w.err) {
		ck_assert_uint_eq(w.len, size);
		ck_assert(w.packed == zopen);
		*data = w.data;
		*len = w.len;
		*packed = w.packed;
	}
	return w.err;
}

static int store_get(const struct vmir_id *id, void **data, uint32_t *len)
{
	bool packed;
	int ret = store_get_as(id, data, len, &packed);

	ck_assert(ret || !packed);
	return ret;
}

static void store_open(void)
{
	ck_assert_int_eq(chunkd_store_open(sdir, ring, &st), 0);
}

static void store_close(void)
{
	ck_assert_uint_eq(chunkd_pending(st), 0);
	chunkd_store_close(st);
	st = NULL;
}

static void store_setup(void)
{
	struct srv_conf conf = { .name = "test" };

	vmir_log_init("check_chunkd");
	tdir_make();
	snprintf(sdir, sizeof(sdir), "%s/store", tdir);
	ck_assert_int_eq(srv_new(&conf, &ring), 0);
	store_open();
}

static void store_teardown(void)
{
	if (st)
		store_close();
	srv_free(ring);
	tdir_remove();
}

START_TEST(put_rejects_content_not_matching_its_id)
{
	uint8_t a[5000], b[5000];
	struct chunkd_stat s;
	struct vmir_id ida;
	char path[600];

	fill_random(a, sizeof(a), 1);
	fill_random(b, sizeof(b), 2);
	vmir_id_of(a, sizeof(a), &ida);
	ck_assert_int_eq(store_put(b, sizeof(b), &ida), -EBADMSG);
	ck_assert_int_eq(chunkd_has(st, &ida), 0);
	chunkd_stat(st, &s);
	ck_assert_uint_eq(s.objects, 0);
	snprintf(path, sizeof(path), "%s/tmp", sdir);
	ck_assert_uint_eq(count_entries(path), 0);
}
END_TEST

START_TEST(put_refuses_empty_object)
{
	struct vmir_id id;

	vmir_id_of("", 0, &id);
	ck_assert_int_eq(store_put("", 0, &id), -EINVAL);
	ck_assert_int_eq(chunkd_has(st, &id), 0);
}
END_TEST

START_TEST(put_stores_object_under_its_content_name)
{
	static uint8_t a[300000];
	char path[600];
	struct stat sb;
	struct vmir_id id;
	void *got;
	uint32_t len;
	int fd;

	fill_random(a, sizeof(a), 3);
	ck_assert_int_eq(store_put_content(a, sizeof(a), &id), 0);
	obj_path(sdir, &id, path, sizeof(path));
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_eq(sb.st_size, sizeof(a));
	got = malloc(sizeof(a));
	fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(vmir_read_full(fd, got, sizeof(a)), 0);
	close(fd);
	ck_assert_mem_eq(got, a, sizeof(a));
	free(got);
	snprintf(path, sizeof(path), "%s/tmp", sdir);
	ck_assert_uint_eq(count_entries(path), 0);

	ck_assert_int_eq(store_get(&id, &got, &len), 0);
	ck_assert_uint_eq(len, sizeof(a));
	ck_assert_mem_eq(got, a, sizeof(a));
	free(got);
}
END_TEST

/* content zstd shrinks a lot, and its packed form (malloc()ed) */
static uint32_t packed_content(uint8_t *a, size_t len, unsigned int seed,
			       void **z)
{
	uint32_t zlen;

	for (size_t i = 0; i < len; i++)
		a[i] = (uint8_t)("vmir chunk "[i % 11] + (i / 4096 + seed) % 3);
	zlen = vmir_zpack(a, (uint32_t)len, z);
	ck_assert_uint_gt(zlen, 0);
	return zlen;
}

START_TEST(packed_put_is_stored_and_served_packed_beside_raw_objects)
{
	static uint8_t a[200000], r[100000];
	struct chunkd_stat s;
	struct vmir_id id, rid;
	char path[600];
	struct stat sb;
	uint32_t zlen, len;
	bool packed;
	void *z, *got;

	zlen = packed_content(a, sizeof(a), 1, &z);
	vmir_id_of(a, sizeof(a), &id);
	ck_assert_int_eq(store_put_as(z, zlen, &id, true), 0);
	/* kept as it came, under <hex>.z; never also raw */
	obj_path(sdir, &id, path, sizeof(path));
	ck_assert_int_eq(stat(path, &sb), -1);
	strcat(path, ".z");
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_eq(sb.st_size, zlen);
	ck_assert_int_eq(chunkd_has(st, &id), 1);

	/* an object stored raw (as before packing existed) beside it */
	fill_random(r, sizeof(r), 9);
	ck_assert_int_eq(store_put_content(r, sizeof(r), &rid), 0);

	ck_assert_int_eq(store_get_as(&id, &got, &len, &packed), 0);
	ck_assert(packed);
	ck_assert_uint_eq(len, zlen);
	ck_assert_mem_eq(got, z, zlen);
	free(got);
	ck_assert_int_eq(store_get_as(&rid, &got, &len, &packed), 0);
	ck_assert(!packed);
	ck_assert_uint_eq(len, sizeof(r));
	ck_assert_mem_eq(got, r, sizeof(r));
	free(got);

	/* the same content sent raw is a duplicate, not a second file */
	ck_assert_int_eq(store_put(a, sizeof(a), &id), 0);
	obj_path(sdir, &id, path, sizeof(path));
	ck_assert_int_eq(stat(path, &sb), -1);
	chunkd_stat(st, &s);
	ck_assert_uint_eq(s.objects, 2);
	ck_assert_uint_eq(s.bytes, zlen + sizeof(r));
	ck_assert_uint_eq(s.dedup, 1);

	/* a reopened store counts both kinds */
	store_close();
	store_open();
	chunkd_stat(st, &s);
	ck_assert_uint_eq(s.objects, 2);
	ck_assert_uint_eq(s.bytes, zlen + sizeof(r));
	free(z);
}
END_TEST

START_TEST(packed_put_that_is_no_frame_or_not_the_ids_is_refused)
{
	static uint8_t a[100000], b[100000];
	struct chunkd_stat s;
	struct vmir_id id;
	char path[600];
	uint32_t zlen;
	void *z, *zb;

	zlen = packed_content(a, sizeof(a), 1, &z);
	packed_content(b, sizeof(b), 2, &zb);
	free(zb);
	/* a frame of other content */
	vmir_id_of(b, sizeof(b), &id);
	ck_assert_int_eq(store_put_as(z, zlen, &id, true), -EBADMSG);
	/* the right id, but the raw content flagged as packed */
	vmir_id_of(a, sizeof(a), &id);
	ck_assert_int_eq(store_put_as(a, sizeof(a), &id, true), -EBADMSG);
	/* a frame cut short */
	ck_assert_int_eq(store_put_as(z, zlen - 1, &id, true), -EBADMSG);
	chunkd_stat(st, &s);
	ck_assert_uint_eq(s.objects, 0);
	ck_assert_int_eq(chunkd_has(st, &id), 0);
	snprintf(path, sizeof(path), "%s/tmp", sdir);
	ck_assert_uint_eq(count_entries(path), 0);
	free(z);
}
END_TEST

START_TEST(put_is_idempotent_and_counts_dedup)
{
	uint8_t a[8192];
	struct chunkd_stat s;
	struct vmir_id id;

	fill_random(a, sizeof(a), 4);
	ck_assert_int_eq(store_put_content(a, sizeof(a), &id), 0);
	ck_assert_int_eq(store_put_content(a, sizeof(a), &id), 0);
	chunkd_stat(st, &s);
	ck_assert_uint_eq(s.objects, 1);
	ck_assert_uint_eq(s.bytes, sizeof(a));
	ck_assert_uint_eq(s.puts, 1);
	ck_assert_uint_eq(s.dedup, 1);
}
END_TEST

START_TEST(concurrent_puts_of_one_object_store_it_once)
{
	struct waiter w1 = { 0 }, w2 = { 0 };
	uint8_t a[65536];
	struct chunkd_stat s;
	struct vmir_id id;
	char path[600];

	fill_random(a, sizeof(a), 5);
	vmir_id_of(a, sizeof(a), &id);
	chunkd_put(st, &id, a, sizeof(a), false, put_cb, &w1);
	chunkd_put(st, &id, a, sizeof(a), false, put_cb, &w2);
	ck_assert_uint_eq(chunkd_pending(st), 2);
	wait_for(&w1);
	wait_for(&w2);
	ck_assert_int_eq(w1.err, 0);
	ck_assert_int_eq(w2.err, 0);
	chunkd_stat(st, &s);
	ck_assert_uint_eq(s.objects, 1);
	ck_assert_uint_eq(s.bytes, sizeof(a));
	ck_assert_uint_eq(s.dedup, 1);
	snprintf(path, sizeof(path), "%s/tmp", sdir);
	ck_assert_uint_eq(count_entries(path), 0);
}
END_TEST

START_TEST(many_puts_are_in_flight_at_once)
{
	enum { N = 64, LEN = 32768 };
	static uint8_t data[N][LEN];
	struct waiter w[N] = { 0 };
	struct vmir_id id[N];
	struct chunkd_stat s;

	for (int i = 0; i < N; i++) {
		fill_random(data[i], LEN, 100 + i);
		vmir_id_of(data[i], LEN, &id[i]);
		chunkd_put(st, &id[i], data[i], LEN, false, put_cb, &w[i]);
	}
	/* every write and fsync was submitted before any completed */
	ck_assert_uint_eq(chunkd_pending(st), N);
	ck_assert_uint_eq(srv_io_pending(ring), 2 * N);
	for (int i = 0; i < N; i++) {
		wait_for(&w[i]);
		ck_assert_int_eq(w[i].err, 0);
	}
	chunkd_stat(st, &s);
	ck_assert_uint_eq(s.objects, N);
	ck_assert_uint_eq(s.bytes, (uint64_t)N * LEN);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(chunkd_has(st, &id[i]), 1);
}
END_TEST

START_TEST(largest_object_round_trips)
{
	uint8_t *a = malloc(VMIR_DATA_MAX);
	struct vmir_id id;
	void *got;
	uint32_t len;

	fill_random(a, VMIR_DATA_MAX, 6);
	ck_assert_int_eq(store_put_content(a, VMIR_DATA_MAX, &id), 0);
	ck_assert_int_eq(store_get(&id, &got, &len), 0);
	ck_assert_uint_eq(len, VMIR_DATA_MAX);
	ck_assert_mem_eq(got, a, VMIR_DATA_MAX);
	free(got);
	free(a);
}
END_TEST

START_TEST(get_of_absent_object_is_enoent)
{
	struct vmir_id id;
	void *got;
	uint32_t len;

	vmir_id_of("nothing", 7, &id);
	ck_assert_int_eq(store_get(&id, &got, &len), -ENOENT);
}
END_TEST

START_TEST(get_of_bad_size_file_is_eio)
{
	uint8_t a[4096];
	struct vmir_id id;
	char path[600];
	void *got;
	uint32_t len;

	fill_random(a, sizeof(a), 7);
	ck_assert_int_eq(store_put_content(a, sizeof(a), &id), 0);
	obj_path(sdir, &id, path, sizeof(path));
	ck_assert_int_eq(truncate(path, 0), 0);
	ck_assert_int_eq(store_get(&id, &got, &len), -EIO);
	ck_assert_int_eq(truncate(path, VMIR_DATA_MAX + 1), 0);
	ck_assert_int_eq(store_get(&id, &got, &len), -EIO);
}
END_TEST

START_TEST(get_returns_content_without_verifying_it)
{
	uint8_t a[4096];
	struct vmir_id id, gid;
	char path[600];
	void *got;
	uint32_t len;
	int fd;

	fill_random(a, sizeof(a), 8);
	ck_assert_int_eq(store_put_content(a, sizeof(a), &id), 0);
	obj_path(sdir, &id, path, sizeof(path));
	fd = open(path, O_WRONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(vmir_pwrite_full(fd, "X", 1, 100), 0);
	close(fd);
	/* the client detects the corruption and uses another replica */
	ck_assert_int_eq(store_get(&id, &got, &len), 0);
	vmir_id_of(got, len, &gid);
	ck_assert(!vmir_id_eq(&gid, &id));
	free(got);
}
END_TEST

START_TEST(has_reports_presence)
{
	uint8_t a[4096];
	struct vmir_id id, other;

	fill_random(a, sizeof(a), 9);
	vmir_id_of(a, sizeof(a), &id);
	vmir_id_of("other", 5, &other);
	ck_assert_int_eq(chunkd_has(st, &id), 0);
	ck_assert_int_eq(store_put(a, sizeof(a), &id), 0);
	ck_assert_int_eq(chunkd_has(st, &id), 1);
	ck_assert_int_eq(chunkd_has(st, &other), 0);
}
END_TEST

START_TEST(stat_counts_survive_reopen)
{
	uint8_t a[3][10000];
	struct chunkd_stat s;
	struct vmir_id id;
	char path[600];
	int fd;

	for (int i = 0; i < 3; i++) {
		fill_random(a[i], 1000 * (i + 1), 10 + i);
		ck_assert_int_eq(store_put_content(a[i], 1000 * (i + 1), &id),
				 0);
	}
	/* a stray file is not an object */
	snprintf(path, sizeof(path), "%s/objects/00/notes.txt", sdir);
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	ck_assert_int_ge(fd, 0);
	close(fd);
	store_close();
	store_open();
	chunkd_stat(st, &s);
	ck_assert_uint_eq(s.objects, 3);
	ck_assert_uint_eq(s.bytes, 6000);
}
END_TEST

START_TEST(open_removes_tmp_leftovers)
{
	char path[600];
	int fd;

	store_close();
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/tmp/leftover.%d", sdir, i);
		fd = open(path, O_CREAT | O_WRONLY, 0644);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(vmir_write_full(fd, "partial", 7), 0);
		close(fd);
	}
	store_open();
	snprintf(path, sizeof(path), "%s/tmp", sdir);
	ck_assert_uint_eq(count_entries(path), 0);
}
END_TEST

START_TEST(torn_tmp_file_never_becomes_visible)
{
	static uint8_t a[200000];
	char hex[2 * VMIR_ID_LEN + 1];
	struct chunkd_stat s;
	struct vmir_id id;
	char path[600];
	void *got;
	uint32_t len;
	int fd;

	/* a crash in the middle of a write leaves half an object in tmp/ */
	fill_random(a, sizeof(a), 20);
	vmir_id_of(a, sizeof(a), &id);
	vmir_id_to_hex(&id, hex);
	store_close();
	snprintf(path, sizeof(path), "%s/tmp/%s.0", sdir, hex);
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(vmir_write_full(fd, a, sizeof(a) / 2), 0);
	close(fd);
	store_open();

	ck_assert_int_eq(chunkd_has(st, &id), 0);
	ck_assert_int_eq(store_get(&id, &got, &len), -ENOENT);
	chunkd_stat(st, &s);
	ck_assert_uint_eq(s.objects, 0);
	ck_assert_int_eq(access(path, F_OK), -1);
	/* and the object can still be stored whole */
	ck_assert_int_eq(store_put(a, sizeof(a), &id), 0);
	ck_assert_int_eq(store_get(&id, &got, &len), 0);
	ck_assert_uint_eq(len, sizeof(a));
	ck_assert_mem_eq(got, a, sizeof(a));
	free(got);
}
END_TEST

START_TEST(second_open_of_a_directory_is_refused)
{
	struct chunkd_store *st2;

	ck_assert_int_eq(chunkd_store_open(sdir, ring, &st2), -EBUSY);
}
END_TEST

/* --- the server framework over real sockets --------------------------------- */

static pid_t srvpid = -1;
static char srvaddr[VMIR_ADDR_MAX];
static uint8_t key[VMIR_KEY_LEN];

static void server_setup(void)
{
	struct chunkd_server_conf conf = { 0 };
	char ready[300];
	FILE *f;
	int i;

	vmir_log_init("check_chunkd");
	ck_assert_int_ge(sodium_init(), 0);
	tdir_make();
	randombytes_buf(key, sizeof(key));
	snprintf(ready, sizeof(ready), "%s/ready", tdir);
	snprintf(sdir, sizeof(sdir), "%s/store", tdir);
	srvpid = fork();
	ck_assert_int_ge(srvpid, 0);
	if (srvpid == 0) {
		/* never outlive the test, even when it fails */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		conf.listen = "127.0.0.1:0";
		conf.dir = sdir;
		conf.ready_file = ready;
		memcpy(conf.key, key, sizeof(key));
		_exit(chunkd_server_run(&conf) < 0 ? 1 : 0);
	}
	for (i = 0; i < 500 && access(ready, F_OK) < 0; i++)
		usleep(10000);
	f = fopen(ready, "r");
	ck_assert_msg(f != NULL, "server did not write its ready file");
	ck_assert_ptr_nonnull(fgets(srvaddr, sizeof(srvaddr), f));
	fclose(f);
	srvaddr[strcspn(srvaddr, "\n")] = '\0';
	ck_assert_int_eq(strncmp(srvaddr, "127.0.0.1:", 10), 0);
}

static void server_teardown(void)
{
	int status;

	if (srvpid > 0) {
		kill(srvpid, SIGTERM);
		ck_assert_int_eq(waitpid(srvpid, &status, 0), srvpid);
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			      "server did not exit cleanly on SIGTERM");
		srvpid = -1;
	}
	tdir_remove();
}

static void connect_ok(struct test_client *c)
{
	ck_assert_int_eq(test_client_connect(c, srvaddr, key, TMO), 0);
}

static uint32_t call_status(struct test_client *c, uint16_t op,
			    const void *meta, uint32_t meta_len,
			    const void *data, uint32_t data_len)
{
	struct test_msg m;
	uint32_t status;

	ck_assert_int_eq(test_client_call(c, op, meta, meta_len, data, data_len,
					  &m, TMO), 0);
	status = m.hdr.status;
	test_msg_free(&m);
	return status;
}

static void stat_ok(struct test_client *c, uint64_t *objects, uint64_t *bytes)
{
	struct vmir_rbuf r;
	struct test_msg m;

	ck_assert_int_eq(test_client_call(c, VMIR_OP_STAT, NULL, 0, NULL, 0, &m,
					  TMO), 0);
	ck_assert_uint_eq(m.hdr.status, 0);
	vmir_rbuf_init(&r, m.meta, m.hdr.meta_len);
	*objects = vmir_get_u64(&r);
	*bytes = vmir_get_u64(&r);
	ck_assert_int_eq(vmir_rbuf_end(&r), 0);
	test_msg_free(&m);
}

START_TEST(put_get_has_stat_over_the_wire)
{
	static uint8_t a[100000];
	struct vmir_id id, other, gid;
	struct test_client c;
	struct vmir_wbuf w;
	struct test_msg m;
	uint64_t objects, bytes;

	fill_random(a, sizeof(a), 30);
	vmir_id_of(a, sizeof(a), &id);
	vmir_id_of("absent", 6, &other);
	connect_ok(&c);
	ck_assert_uint_eq(call_status(&c, VMIR_OP_PUT, &id, VMIR_ID_LEN, a,
				      sizeof(a)), 0);
	ck_assert_int_eq(test_client_call(&c, VMIR_OP_GET, &id, VMIR_ID_LEN,
					  NULL, 0, &m, TMO), 0);
	ck_assert_uint_eq(m.hdr.status, 0);
	ck_assert_uint_eq(m.hdr.meta_len, VMIR_ID_LEN);
	ck_assert_mem_eq(m.meta, id.b, VMIR_ID_LEN);
	ck_assert_uint_eq(m.hdr.data_len, sizeof(a));
	vmir_id_of(m.data, m.hdr.data_len, &gid);
	ck_assert(vmir_id_eq(&gid, &id));
	test_msg_free(&m);
	ck_assert_uint_eq(call_status(&c, VMIR_OP_GET, &other, VMIR_ID_LEN,
				      NULL, 0), ENOENT);

	vmir_wbuf_init(&w);
	vmir_put_u32(&w, 3);
	vmir_put_id(&w, &id);
	vmir_put_id(&w, &other);
	vmir_put_id(&w, &id);
	ck_assert_int_eq(test_client_call(&c, VMIR_OP_HAS, w.p, (uint32_t)w.len,
					  NULL, 0, &m, TMO), 0);
	vmir_wbuf_free(&w);
	ck_assert_uint_eq(m.hdr.status, 0);
	ck_assert_uint_eq(m.hdr.meta_len, 5);
	ck_assert_uint_eq(m.meta[0] | m.meta[1] << 8, 3);
	ck_assert_uint_eq(m.meta[4], 0x5);	/* ids 0 and 2 present */
	test_msg_free(&m);

	stat_ok(&c, &objects, &bytes);
	ck_assert_uint_eq(objects, 1);
	ck_assert_uint_eq(bytes, sizeof(a));
	test_client_close(&c);
}
END_TEST

START_TEST(packed_objects_travel_packed_over_the_wire)
{
	static uint8_t a[150000], back[150000], r[5000];
	struct test_client c;
	struct vmir_id id, rid;
	struct test_msg m;
	uint64_t objects, bytes;
	uint32_t zlen;
	void *z;

	zlen = packed_content(a, sizeof(a), 3, &z);
	vmir_id_of(a, sizeof(a), &id);
	connect_ok(&c);
	c.data_flags = VMIR_F_ZSTD;
	ck_assert_uint_eq(call_status(&c, VMIR_OP_PUT, &id, VMIR_ID_LEN, z,
				      zlen), 0);
	/* raw bytes flagged as packed are refused; the connection lives */
	vmir_id_of(r, sizeof(r), &rid);
	ck_assert_uint_eq(call_status(&c, VMIR_OP_PUT, &rid, VMIR_ID_LEN, r,
				      sizeof(r)), EBADMSG);
	c.data_flags = 0;
	ck_assert_uint_eq(call_status(&c, VMIR_OP_PUT, &rid, VMIR_ID_LEN, r,
				      sizeof(r)), 0);

	ck_assert_int_eq(test_client_call(&c, VMIR_OP_GET, &id, VMIR_ID_LEN,
					  NULL, 0, &m, TMO), 0);
	ck_assert_uint_eq(m.hdr.status, 0);
	ck_assert_uint_eq(m.hdr.flags, VMIR_F_REPLY | VMIR_F_ZSTD);
	ck_assert_uint_eq(m.hdr.data_len, zlen);
	ck_assert_int_eq(vmir_zunpack(back, sizeof(back), m.data,
				      m.hdr.data_len), sizeof(a));
	ck_assert_mem_eq(back, a, sizeof(a));
	test_msg_free(&m);
	ck_assert_int_eq(test_client_call(&c, VMIR_OP_GET, &rid, VMIR_ID_LEN,
					  NULL, 0, &m, TMO), 0);
	ck_assert_uint_eq(m.hdr.flags, VMIR_F_REPLY);
	ck_assert_uint_eq(m.hdr.data_len, sizeof(r));
	test_msg_free(&m);

	stat_ok(&c, &objects, &bytes);
	ck_assert_uint_eq(objects, 2);
	ck_assert_uint_eq(bytes, zlen + sizeof(r));
	test_client_close(&c);
	free(z);
}
END_TEST

START_TEST(zstd_flag_on_a_frame_without_data_closes_the_connection)
{
	struct vmir_id id = { { 0 } };
	struct vmir_frame_hdr h = {
		.magic = VMIR_PROTO_MAGIC,
		.version = VMIR_PROTO_VERSION,
		.opcode = VMIR_OP_GET,
		.req_id = 1,
		.meta_len = VMIR_ID_LEN,
		.flags = VMIR_F_ZSTD,
	};
	struct test_client c;
	uint8_t raw[VMIR_HDR_LEN];

	connect_ok(&c);
	vmir_frame_seal(&c.sess, &h, id.b, raw);
	ck_assert_int_eq(send(c.fd, raw, sizeof(raw), MSG_NOSIGNAL),
			 (ssize_t)sizeof(raw));
	ck_assert_int_eq(send(c.fd, id.b, VMIR_ID_LEN, MSG_NOSIGNAL),
			 VMIR_ID_LEN);
	ck_assert(test_client_wait_closed(&c, TMO));
	test_client_close(&c);
}
END_TEST

START_TEST(put_with_wrong_id_is_refused_with_ebadmsg)
{
	uint8_t a[5000];
	struct test_client c;
	struct vmir_id id;
	uint64_t objects, bytes;

	fill_random(a, sizeof(a), 31);
	vmir_id_of("something else", 14, &id);
	connect_ok(&c);
	ck_assert_uint_eq(call_status(&c, VMIR_OP_PUT, &id, VMIR_ID_LEN, a,
				      sizeof(a)), EBADMSG);
	stat_ok(&c, &objects, &bytes);
	ck_assert_uint_eq(objects, 0);
	test_client_close(&c);
}
END_TEST

START_TEST(unserved_opcode_gets_eopnotsupp_not_a_close)
{
	struct test_client c;
	uint64_t objects, bytes;

	connect_ok(&c);
	ck_assert_uint_eq(call_status(&c, VMIR_OP_LIST, NULL, 0, NULL, 0),
			  EOPNOTSUPP);
	stat_ok(&c, &objects, &bytes);
	test_client_close(&c);
}
END_TEST

START_TEST(wrong_key_hello_is_closed)
{
	uint8_t bad[VMIR_KEY_LEN];
	struct test_client c;

	memcpy(bad, key, sizeof(bad));
	bad[0] ^= 1;
	ck_assert_int_eq(test_client_open(&c, srvaddr), 0);
	ck_assert_int_eq(test_client_hello(&c, bad, TMO), -ECONNRESET);
	test_client_close(&c);
	/* the right key still works */
	connect_ok(&c);
	test_client_close(&c);
}
END_TEST

START_TEST(request_before_hello_is_closed)
{
	struct test_client c;

	ck_assert_int_eq(test_client_open(&c, srvaddr), 0);
	vmir_session_init(&c.sess, key);
	ck_assert_int_eq(test_client_send(&c, VMIR_OP_STAT, NULL, 0, NULL, 0,
					  NULL), 0);
	ck_assert(test_client_wait_closed(&c, TMO));
	test_client_close(&c);
}
END_TEST

START_TEST(bad_magic_closes_only_that_connection)
{
	struct test_client bad, good;
	uint8_t junk[VMIR_HDR_LEN];
	uint64_t objects, bytes;

	connect_ok(&bad);
	connect_ok(&good);
	memset(junk, 0xa5, sizeof(junk));
	ck_assert_int_eq(send(bad.fd, junk, sizeof(junk), MSG_NOSIGNAL),
			 (ssize_t)sizeof(junk));
	ck_assert(test_client_wait_closed(&bad, TMO));
	stat_ok(&good, &objects, &bytes);
	test_client_close(&bad);
	test_client_close(&good);
}
END_TEST

START_TEST(undecodable_meta_closes_the_connection)
{
	struct vmir_id id = { { 0 } };
	struct test_client c;

	connect_ok(&c);
	/* a GET carries exactly one id */
	ck_assert_int_eq(test_client_send(&c, VMIR_OP_GET, &id, VMIR_ID_LEN - 1,
					  NULL, 0, NULL), 0);
	ck_assert(test_client_wait_closed(&c, TMO));
	test_client_close(&c);
}
END_TEST

START_TEST(replayed_frame_closes_the_connection)
{
	struct vmir_frame_hdr h = {
		.magic = VMIR_PROTO_MAGIC,
		.version = VMIR_PROTO_VERSION,
		.opcode = VMIR_OP_STAT,
		.req_id = 7,
	};
	uint8_t raw[VMIR_HDR_LEN];
	struct test_client c;
	struct test_msg m;

	connect_ok(&c);
	vmir_frame_seal(&c.sess, &h, NULL, raw);
	ck_assert_int_eq(send(c.fd, raw, sizeof(raw), MSG_NOSIGNAL),
			 (ssize_t)sizeof(raw));
	ck_assert_int_eq(test_client_recv(&c, &m, TMO), 0);
	ck_assert_uint_eq(m.hdr.req_id, 7);
	ck_assert_uint_eq(m.hdr.status, 0);
	test_msg_free(&m);
	/* the very same bytes again: authentic, but an old sequence number */
	ck_assert_int_eq(send(c.fd, raw, sizeof(raw), MSG_NOSIGNAL),
			 (ssize_t)sizeof(raw));
	ck_assert(test_client_wait_closed(&c, TMO));
	test_client_close(&c);
}
END_TEST

START_TEST(pipelined_requests_are_all_answered)
{
	enum { N = 300 };
	static bool seen[N + 2];
	uint8_t a[4096];
	struct test_client c;
	struct vmir_id id;
	struct test_msg m;
	uint64_t rid;

	fill_random(a, sizeof(a), 32);
	vmir_id_of(a, sizeof(a), &id);
	connect_ok(&c);
	ck_assert_uint_eq(call_status(&c, VMIR_OP_PUT, &id, VMIR_ID_LEN, a,
				      sizeof(a)), 0);
	memset(seen, 0, sizeof(seen));
	/* more than the per-connection limit, all written before reading */
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(test_client_send(&c, VMIR_OP_GET, &id,
						  VMIR_ID_LEN, NULL, 0, &rid),
				 0);
		ck_assert_uint_le(rid, N + 1);	/* the PUT was 1 */
	}
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(test_client_recv(&c, &m, TMO), 0);
		ck_assert_uint_eq(m.hdr.status, 0);
		ck_assert_uint_eq(m.hdr.data_len, sizeof(a));
		ck_assert_mem_eq(m.data, a, sizeof(a));
		ck_assert(!seen[m.hdr.req_id]);
		seen[m.hdr.req_id] = true;
		test_msg_free(&m);
	}
	test_client_close(&c);
}
END_TEST

static long rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

START_TEST(slow_client_stalls_neither_others_nor_memory)
{
	enum { N = 120 };	/* 480 MiB of replies if nothing bounded them */
	struct test_client slow, fast;
	uint64_t objects, bytes;
	struct vmir_id id, gid;
	struct timespec t0, t1;
	struct test_msg m;
	uint8_t *a;
	long rss;

	a = malloc(VMIR_DATA_MAX);
	fill_random(a, VMIR_DATA_MAX, 33);
	vmir_id_of(a, VMIR_DATA_MAX, &id);
	connect_ok(&fast);
	connect_ok(&slow);
	ck_assert_uint_eq(call_status(&fast, VMIR_OP_PUT, &id, VMIR_ID_LEN, a,
				      VMIR_DATA_MAX), 0);
	free(a);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(test_client_send(&slow, VMIR_OP_GET, &id,
						  VMIR_ID_LEN, NULL, 0, NULL),
				 0);
	usleep(500000);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 5; i++) {
		stat_ok(&fast, &objects, &bytes);
		ck_assert_int_eq(test_client_call(&fast, VMIR_OP_GET, &id,
						  VMIR_ID_LEN, NULL, 0, &m,
						  TMO), 0);
		ck_assert_uint_eq(m.hdr.status, 0);
		vmir_id_of(m.data, m.hdr.data_len, &gid);
		ck_assert(vmir_id_eq(&gid, &id));
		test_msg_free(&m);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_int_lt(t1.tv_sec - t0.tv_sec, 3);

	rss = rss_kib(srvpid);
	ck_assert_int_gt(rss, 0);
	ck_assert_msg(rss < 200 * 1024, "server RSS %ld KiB: replies to a "
		      "client that does not read are not bounded", rss);
	test_client_close(&slow);
	stat_ok(&fast, &objects, &bytes);
	test_client_close(&fast);
}
END_TEST

START_TEST(pipelined_gets_of_small_and_multi_buffer_objects_match_their_ids)
{
	/* replies of different sizes, more than one receive buffer each */
	enum { N = 64, SMALL = 4096, LARGE = 300 << 10 };
	static uint8_t small[SMALL], large[LARGE];
	static uint16_t asked[N + 3];
	struct vmir_id sid, lid, gid;
	struct test_client c;
	struct test_msg m;
	uint64_t rid;

	fill_random(small, sizeof(small), 40);
	fill_random(large, sizeof(large), 41);
	vmir_id_of(small, sizeof(small), &sid);
	vmir_id_of(large, sizeof(large), &lid);
	connect_ok(&c);
	ck_assert_uint_eq(call_status(&c, VMIR_OP_PUT, &sid, VMIR_ID_LEN,
				      small, sizeof(small)), 0);
	ck_assert_uint_eq(call_status(&c, VMIR_OP_PUT, &lid, VMIR_ID_LEN,
				      large, sizeof(large)), 0);
	for (int i = 0; i < N; i++) {
		bool big = i % 3 != 1;

		ck_assert_int_eq(test_client_send(&c, VMIR_OP_GET,
						  big ? &lid : &sid,
						  VMIR_ID_LEN, NULL, 0, &rid),
				 0);
		ck_assert_uint_lt(rid, N + 3);
		asked[rid] = big ? 2 : 1;
	}
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(test_client_recv(&c, &m, TMO), 0);
		ck_assert_uint_eq(m.hdr.status, 0);
		ck_assert_uint_lt(m.hdr.req_id, N + 3);
		ck_assert_uint_ne(asked[m.hdr.req_id], 0);
		ck_assert_uint_eq(m.hdr.data_len,
				  asked[m.hdr.req_id] == 2 ? LARGE : SMALL);
		vmir_id_of(m.data, m.hdr.data_len, &gid);
		ck_assert(vmir_id_eq(&gid, asked[m.hdr.req_id] == 2 ? &lid :
				     &sid));
		ck_assert_mem_eq(m.meta, gid.b, VMIR_ID_LEN);
		asked[m.hdr.req_id] = 0;
		test_msg_free(&m);
	}
	test_client_close(&c);
}
END_TEST

START_TEST(client_closing_with_requests_in_flight_is_harmless)
{
	enum { N = 40, LEN = 65536 };
	static uint8_t a[N][LEN];
	struct test_client c;
	struct vmir_id id;
	uint64_t objects, bytes;

	connect_ok(&c);
	for (int i = 0; i < N; i++) {
		fill_random(a[i], LEN, 200 + i);
		vmir_id_of(a[i], LEN, &id);
		ck_assert_int_eq(test_client_send(&c, VMIR_OP_PUT, &id,
						  VMIR_ID_LEN, a[i], LEN, NULL),
				 0);
	}
	test_client_close(&c);
	/* the server finishes or drops the work and keeps serving */
	usleep(200000);
	connect_ok(&c);
	stat_ok(&c, &objects, &bytes);
	ck_assert_uint_le(objects, N);
	test_client_close(&c);
}
END_TEST

static Suite *chunkd_suite(void)
{
	Suite *s = suite_create("chunkd");
	TCase *tc;

	tc = tcase_create("store");
	tcase_add_checked_fixture(tc, store_setup, store_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, put_rejects_content_not_matching_its_id);
	tcase_add_test(tc, put_refuses_empty_object);
	tcase_add_test(tc, put_stores_object_under_its_content_name);
	tcase_add_test(tc, packed_put_is_stored_and_served_packed_beside_raw_objects);
	tcase_add_test(tc, packed_put_that_is_no_frame_or_not_the_ids_is_refused);
	tcase_add_test(tc, put_is_idempotent_and_counts_dedup);
	tcase_add_test(tc, concurrent_puts_of_one_object_store_it_once);
	tcase_add_test(tc, many_puts_are_in_flight_at_once);
	tcase_add_test(tc, largest_object_round_trips);
	tcase_add_test(tc, get_of_absent_object_is_enoent);
	tcase_add_test(tc, get_of_bad_size_file_is_eio);
	tcase_add_test(tc, get_returns_content_without_verifying_it);
	tcase_add_test(tc, has_reports_presence);
	tcase_add_test(tc, stat_counts_survive_reopen);
	tcase_add_test(tc, open_removes_tmp_leftovers);
	tcase_add_test(tc, torn_tmp_file_never_becomes_visible);
	tcase_add_test(tc, second_open_of_a_directory_is_refused);
	suite_add_tcase(s, tc);

	tc = tcase_create("server");
	tcase_add_checked_fixture(tc, server_setup, server_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, put_get_has_stat_over_the_wire);
	tcase_add_test(tc, packed_objects_travel_packed_over_the_wire);
	tcase_add_test(tc, zstd_flag_on_a_frame_without_data_closes_the_connection);
	tcase_add_test(tc, put_with_wrong_id_is_refused_with_ebadmsg);
	tcase_add_test(tc, unserved_opcode_gets_eopnotsupp_not_a_close);
	tcase_add_test(tc, wrong_key_hello_is_closed);
	tcase_add_test(tc, request_before_hello_is_closed);
	tcase_add_test(tc, bad_magic_closes_only_that_connection);
	tcase_add_test(tc, undecodable_meta_closes_the_connection);
	tcase_add_test(tc, replayed_frame_closes_the_connection);
	tcase_add_test(tc, pipelined_requests_are_all_answered);
	tcase_add_test(tc, slow_client_stalls_neither_others_nor_memory);
	tcase_add_test(tc, client_closing_with_requests_in_flight_is_harmless);
	tcase_add_test(tc,
		       pipelined_gets_of_small_and_multi_buffer_objects_match_their_ids);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(chunkd_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
