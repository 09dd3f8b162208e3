// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of vmir-versiond: every namespace operation and error code
 * through the database API (state machine + log, no sockets), log replay
 * with torn tails dropped and corruption refused (or cut on request), and
 * the real server over 127.0.0.1.
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
#include <unistd.h>

#include <sodium.h>

#include "srv.h"
#include "test_client.h"
#include "versiond_peers.h"
#include "versiond_db.h"
#include "versiond_log.h"
#include "versiond_server.h"
#include "vmir_util.h"

#define TMO	5000
#define CS	(64u << 10)

static char tdir[256];
static char ddir[300];
static char logpath[400];
static struct versiond_db *db;

static int rm_one(const char *path, const struct stat *sb, int flag,
		  struct FTW *ftw)
{
	return remove(path);
}

static struct vmir_id id_of_str(const char *s)
{
	struct vmir_id id;

	vmir_id_of(s, strlen(s), &id);
	return id;
}

static void db_open(void)
{
	ck_assert_int_eq(versiond_db_open(ddir, 0, &db), 0);
}

static void db_close(void)
{
	versiond_db_close(db);
	db = NULL;
}

static void db_setup(void)
{
	vmir_log_init("check_versiond");
	ck_assert_int_ge(sodium_init(), 0);
	snprintf(tdir, sizeof(tdir), "/tmp/check_versiond.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tdir));
	snprintf(ddir, sizeof(ddir), "%s/db", tdir);
	snprintf(logpath, sizeof(logpath), "%s/%s", ddir, VERSIOND_LOG_NAME);
	db_open();
}

static void db_teardown(void)
{
	if (db)
		db_close();
	nftw(tdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int create(const char *name, uint64_t size, uint32_t cs,
		  const char *root, struct vmir_wire_version_info *out)
{
	struct vmir_create_req q = { .size = size, .chunk_size = cs };

	snprintf(q.name, sizeof(q.name), "%s", name);
	if (root)
		q.root = id_of_str(root);
	return versiond_db_create(db, &q, out);
}

static int publish(const char *name, uint32_t base, uint64_t size,
		   const char *root, struct vmir_wire_version_info *out)
{
	struct vmir_publish_req q = { .base_version = base, .size = size };

	snprintf(q.name, sizeof(q.name), "%s", name);
	q.root = id_of_str(root);
	return versiond_db_publish(db, &q, out);
}

/* publish with a publish token, all of whose bytes are tok */
static int publish_token(const char *name, uint32_t base, const char *root,
			 uint8_t tok, struct vmir_wire_version_info *out)
{
	struct vmir_publish_req q = { .base_version = base, .size = 4096 };

	snprintf(q.name, sizeof(q.name), "%s", name);
	q.root = id_of_str(root);
	memset(q.token, tok, sizeof(q.token));
	return versiond_db_publish(db, &q, out);
}

/* create with a token, all of whose bytes are tok */
static int create_token(const char *name, const char *root, uint8_t tok,
			struct vmir_wire_version_info *out)
{
	struct vmir_create_req q = { .size = 4096, .chunk_size = CS };

	snprintf(q.name, sizeof(q.name), "%s", name);
	q.root = id_of_str(root);
	memset(q.token, tok, sizeof(q.token));
	return versiond_db_create(db, &q, out);
}

/* clone with a token; root non-NULL: with that content (commit --to) */
static int clone_token(const char *src, const char *dst, const char *root,
		       uint8_t tok, struct vmir_wire_version_info *out)
{
	struct vmir_clone_req q = { .src_version = 0 };

	snprintf(q.src, sizeof(q.src), "%s", src);
	snprintf(q.dst, sizeof(q.dst), "%s", dst);
	if (root) {
		q.flags = VMIR_CLONE_F_CONTENT;
		q.size = 4096;
		q.root = id_of_str(root);
	}
	memset(q.token, tok, sizeof(q.token));
	return versiond_db_clone(db, &q, out);
}

static int clone_img(const char *src, uint32_t ver, const char *dst,
		     struct vmir_wire_version_info *out)
{
	struct vmir_clone_req q = { .src_version = ver };

	snprintf(q.src, sizeof(q.src), "%s", src);
	snprintf(q.dst, sizeof(q.dst), "%s", dst);
	return versiond_db_clone(db, &q, out);
}

/* the canonical encoding of the whole state, malloc()ed */
static uint8_t *dump(size_t *len)
{
	struct vmir_wbuf w;
	uint8_t *p;

	vmir_wbuf_init(&w);
	versiond_state_dump(versiond_db_state(db), &w);
	ck_assert_int_eq(w.err, 0);
	p = w.p;
	*len = w.len;
	return p;
}

static void assert_state(const uint8_t *want, size_t want_len)
{
	size_t len;
	uint8_t *got = dump(&len);

	ck_assert_uint_eq(len, want_len);
	ck_assert_mem_eq(got, want, len);
	free(got);
}

static off_t file_size(const char *path)
{
	struct stat sb;

	ck_assert_int_eq(stat(path, &sb), 0);
	return sb.st_size;
}

static uint8_t *read_file(const char *path, size_t *len)
{
	uint8_t *p;
	int fd;

	*len = (size_t)file_size(path);
	p = malloc(*len);
	fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(vmir_read_full(fd, p, *len), 0);
	close(fd);
	return p;
}

static void write_file(const char *path, const void *p, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(vmir_write_full(fd, p, len), 0);
	close(fd);
}

/* --- operations ----------------------------------------------------------- */

START_TEST(create_makes_version_one_without_parent)
{
	struct vmir_wire_version_info vi;
	struct vmir_id root = id_of_str("root");

	ck_assert_int_eq(create("deb12", 1 << 30, CS, "root", &vi), 0);
	ck_assert_str_eq(vi.image, "deb12");
	ck_assert_uint_eq(vi.version, 1);
	ck_assert_uint_eq(vi.size, 1 << 30);
	ck_assert_uint_eq(vi.chunk_size, CS);
	ck_assert(vmir_id_eq(&vi.root, &root));
	ck_assert_str_eq(vi.parent_image, "");
	ck_assert_uint_eq(vi.parent_version, 0);
	ck_assert_uint_gt(vi.ctime_ns, 0);
}
END_TEST

START_TEST(create_of_existing_name_is_eexist)
{
	ck_assert_int_eq(create("a", 4096, CS, "r", NULL), 0);
	ck_assert_int_eq(create("a", 8192, CS, "s", NULL), -EEXIST);
}
END_TEST

START_TEST(create_rejects_bad_arguments)
{
	ck_assert_int_eq(create("a", 0, CS, "r", NULL), -EINVAL);
	ck_assert_int_eq(create("a", 4096, 1000, "r", NULL), -EINVAL);
	ck_assert_int_eq(create("a", 4096, 8u << 20, "r", NULL), -EINVAL);
	ck_assert_int_eq(create(".hidden", 4096, CS, "r", NULL), -EINVAL);
	ck_assert_int_eq(create("a/b", 4096, CS, "r", NULL), -EINVAL);
	ck_assert_int_eq(create("", 4096, CS, "r", NULL), -EINVAL);
	ck_assert_ptr_null(versiond_state_find(versiond_db_state(db), "a"));
}
END_TEST

START_TEST(lookup_finds_latest_and_specific_versions)
{
	struct vmir_wire_version_info vi;
	struct vmir_id r2 = id_of_str("r2");

	ck_assert_int_eq(create("img", 4096, CS, "r1", NULL), 0);
	ck_assert_int_eq(publish("img", 1, 8192, "r2", NULL), 0);
	ck_assert_int_eq(versiond_db_lookup(db, "img", 0, &vi), 0);
	ck_assert_uint_eq(vi.version, 2);
	ck_assert_uint_eq(vi.size, 8192);
	ck_assert(vmir_id_eq(&vi.root, &r2));
	ck_assert_int_eq(versiond_db_lookup(db, "img", 1, &vi), 0);
	ck_assert_uint_eq(vi.version, 1);
	ck_assert_uint_eq(vi.size, 4096);
	ck_assert_int_eq(versiond_db_lookup(db, "img", 3, &vi), -ENOENT);
	ck_assert_int_eq(versiond_db_lookup(db, "nope", 0, &vi), -ENOENT);
}
END_TEST

START_TEST(list_returns_images_sorted_with_latest_size)
{
	struct vmir_wire_image_info *a;
	size_t n;

	ck_assert_int_eq(versiond_db_list(db, &a, &n), 0);
	ck_assert_uint_eq(n, 0);
	free(a);
	ck_assert_int_eq(create("zeta", 4096, CS, "z", NULL), 0);
	ck_assert_int_eq(create("alpha", 4096, 2 * CS, "a", NULL), 0);
	ck_assert_int_eq(create("mid", 4096, CS, "m", NULL), 0);
	ck_assert_int_eq(publish("alpha", 1, 1 << 20, "a2", NULL), 0);
	ck_assert_int_eq(versiond_db_list(db, &a, &n), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(a[0].name, "alpha");
	ck_assert_str_eq(a[1].name, "mid");
	ck_assert_str_eq(a[2].name, "zeta");
	ck_assert_uint_eq(a[0].size, 1 << 20);
	ck_assert_uint_eq(a[0].chunk_size, 2 * CS);
	ck_assert_uint_eq(a[0].latest, 2);
	ck_assert_uint_eq(a[0].nversions, 2);
	ck_assert_uint_eq(a[1].latest, 1);
	free(a);
}
END_TEST

START_TEST(versions_are_listed_ascending)
{
	struct vmir_wire_version_info *a;
	size_t n;

	ck_assert_int_eq(create("img", 4096, CS, "r1", NULL), 0);
	ck_assert_int_eq(publish("img", 1, 4096, "r2", NULL), 0);
	ck_assert_int_eq(publish("img", 2, 4096, "r3", NULL), 0);
	ck_assert_int_eq(versiond_db_versions(db, "img", &a, &n), 0);
	ck_assert_uint_eq(n, 3);
	for (size_t i = 0; i < n; i++)
		ck_assert_uint_eq(a[i].version, i + 1);
	free(a);
	ck_assert_int_eq(versiond_db_versions(db, "nope", &a, &n), -ENOENT);
}
END_TEST

START_TEST(publish_adds_next_version_with_parent)
{
	struct vmir_wire_version_info vi;

	ck_assert_int_eq(create("img", 4096, CS, "r1", NULL), 0);
	ck_assert_int_eq(publish("img", 1, 12288, "r2", &vi), 0);
	ck_assert_str_eq(vi.image, "img");
	ck_assert_uint_eq(vi.version, 2);
	ck_assert_uint_eq(vi.size, 12288);
	ck_assert_uint_eq(vi.chunk_size, CS);
	ck_assert_str_eq(vi.parent_image, "img");
	ck_assert_uint_eq(vi.parent_version, 1);
}
END_TEST

START_TEST(publish_on_stale_base_is_refused)
{
	struct vmir_wire_version_info vi;
	uint8_t *before;
	size_t len;

	ck_assert_int_eq(create("img", 4096, CS, "r1", NULL), 0);
	ck_assert_int_eq(publish("img", 1, 4096, "node-a", NULL), 0);
	before = dump(&len);
	/* node b also started from version 1: never merged */
	ck_assert_int_eq(publish("img", 1, 4096, "node-b", NULL), -ESTALE);
	ck_assert_int_eq(publish("img", 0, 4096, "node-b", NULL), -ESTALE);
	ck_assert_int_eq(publish("img", 7, 4096, "node-b", NULL), -ESTALE);
	assert_state(before, len);
	free(before);
	ck_assert_int_eq(versiond_db_lookup(db, "img", 0, &vi), 0);
	ck_assert_uint_eq(vi.version, 2);
}
END_TEST

START_TEST(duplicate_token_publish_answers_the_version_it_made)
{
	struct vmir_wire_version_info vi, again;
	off_t logsize;

	ck_assert_int_eq(create("img", 4096, CS, "r1", NULL), 0);
	ck_assert_int_eq(publish_token("img", 1, "r2", 0xaa, &vi), 0);
	ck_assert_uint_eq(vi.version, 2);
	logsize = file_size(logpath);
	/* the retry of a publish whose reply was lost */
	ck_assert_int_eq(publish_token("img", 1, "r2", 0xaa, &again), 0);
	ck_assert_uint_eq(again.version, 2);
	ck_assert(vmir_id_eq(&again.root, &vi.root));
	ck_assert_uint_eq(again.ctime_ns, vi.ctime_ns);
	ck_assert_int_eq(file_size(logpath), logsize);	/* nothing logged */
	/* another publish on the same base is still stale */
	ck_assert_int_eq(publish_token("img", 1, "r2", 0xbb, NULL), -ESTALE);
	ck_assert_int_eq(publish("img", 1, 4096, "r2", NULL), -ESTALE);
	/* the same token with other content is not that publish */
	ck_assert_int_eq(publish_token("img", 1, "other", 0xaa, NULL),
			 -ESTALE);
	/* found after newer versions, and after replay */
	ck_assert_int_eq(publish_token("img", 2, "r3", 0xcc, NULL), 0);
	db_close();
	db_open();
	ck_assert_int_eq(publish_token("img", 1, "r2", 0xaa, &again), 0);
	ck_assert_uint_eq(again.version, 2);
	ck_assert_int_eq(versiond_db_lookup(db, "img", 0, &vi), 0);
	ck_assert_uint_eq(vi.version, 3);
}
END_TEST

START_TEST(duplicate_token_create_and_clone_answer_what_they_made)
{
	struct vmir_wire_version_info vi, again;
	off_t logsize;
	uint8_t *p;
	size_t len;

	ck_assert_int_eq(create_token("img", "r1", 0xaa, &vi), 0);
	ck_assert_int_eq(clone_token("img", "vm", NULL, 0xbb, NULL), 0);
	ck_assert_int_eq(clone_token("img", "to", "r9", 0xcc, NULL), 0);
	logsize = file_size(logpath);
	/* retries of requests whose replies were lost */
	ck_assert_int_eq(create_token("img", "r1", 0xaa, &again), 0);
	ck_assert_uint_eq(again.version, 1);
	ck_assert_uint_eq(again.image_id, vi.image_id);
	ck_assert_uint_eq(again.ctime_ns, vi.ctime_ns);
	ck_assert_int_eq(clone_token("img", "vm", NULL, 0xbb, &again), 0);
	ck_assert_str_eq(again.image, "vm");
	ck_assert_int_eq(clone_token("img", "to", "r9", 0xcc, &again), 0);
	ck_assert(vmir_id_eq(&again.root, &(struct vmir_id){ 0 }) == false);
	ck_assert_int_eq(file_size(logpath), logsize);	/* nothing logged */
	/* another token, no token, or other content: the name is taken */
	ck_assert_int_eq(create_token("img", "r1", 0xdd, NULL), -EEXIST);
	ck_assert_int_eq(create("img", 4096, CS, "r1", NULL), -EEXIST);
	ck_assert_int_eq(create_token("img", "other", 0xaa, NULL), -EEXIST);
	ck_assert_int_eq(clone_token("img", "vm", NULL, 0xdd, NULL), -EEXIST);
	ck_assert_int_eq(clone_token("img", "to", "other", 0xcc, NULL),
			 -EEXIST);
	/* a token of one image is not another's */
	ck_assert_int_eq(create_token("vm", "r1", 0xaa, NULL), -EEXIST);
	/* the tokens need log format 3, and survive a replay */
	p = read_file(logpath, &len);
	ck_assert_uint_ge(p[8], 3);
	free(p);
	db_close();
	db_open();
	ck_assert_int_eq(create_token("img", "r1", 0xaa, &again), 0);
	ck_assert_uint_eq(again.image_id, vi.image_id);
	ck_assert_int_eq(clone_token("img", "to", "r9", 0xcc, NULL), 0);
	/* a deleted and re-created name does not answer the old token */
	ck_assert_int_eq(versiond_db_delete(db, "img", 0), 0);
	ck_assert_int_eq(create_token("img", "r1", 0xee, &again), 0);
	ck_assert_uint_ne(again.image_id, vi.image_id);
	ck_assert_int_eq(create_token("img", "r1", 0xaa, NULL), -EEXIST);
}
END_TEST

/* SET_PROFILE of name@version from old ("" = none) to prof */
static int set_profile(const char *name, uint32_t version, const char *old,
		       const char *prof, struct vmir_wire_version_info *out)
{
	struct vmir_profile_req q = { .version = version };

	snprintf(q.name, sizeof(q.name), "%s", name);
	if (old[0])
		q.old = id_of_str(old);
	q.profile = id_of_str(prof);
	return versiond_db_set_profile(db, &q, out);
}

static bool has_profile(const struct vmir_wire_version_info *vi,
			const char *prof)
{
	struct vmir_id id = id_of_str(prof);

	return vmir_id_eq(&vi->profile, &id);
}

START_TEST(profiles_are_compared_and_set_and_inherited_by_children)
{
	struct vmir_wire_version_info vi;
	uint8_t *before;
	off_t logsize;
	size_t len;

	ck_assert_int_eq(create("img", 4096, CS, "r1", &vi), 0);
	ck_assert(vmir_id_is_zero(&vi.profile));
	ck_assert_uint_eq(vi.flags, 0);
	ck_assert_int_eq(set_profile("img", 1, "", "p1", &vi), 0);
	ck_assert(has_profile(&vi, "p1"));
	ck_assert_uint_eq(vi.flags & VMIR_VI_F_PROFILE_INHERITED, 0);
	/* a retry of an applied SET_PROFILE: done, nothing logged */
	logsize = file_size(logpath);
	ck_assert_int_eq(set_profile("img", 1, "", "p1", &vi), 0);
	ck_assert_int_eq(file_size(logpath), logsize);
	/* from an id that is no longer the profile: stale */
	ck_assert_int_eq(set_profile("img", 1, "", "p2", NULL), -ESTALE);
	ck_assert_int_eq(set_profile("img", 1, "p9", "p2", NULL), -ESTALE);
	ck_assert_int_eq(set_profile("img", 1, "p1", "p2", &vi), 0);
	ck_assert(has_profile(&vi, "p2"));
	/* a publish and a clone start with their parent's */
	ck_assert_int_eq(publish("img", 1, 4096, "r2", &vi), 0);
	ck_assert(has_profile(&vi, "p2"));
	ck_assert_uint_eq(vi.flags & VMIR_VI_F_PROFILE_INHERITED,
			  VMIR_VI_F_PROFILE_INHERITED);
	ck_assert_int_eq(clone_img("img", 1, "vm", &vi), 0);
	ck_assert(has_profile(&vi, "p2"));
	ck_assert(vi.flags & VMIR_VI_F_PROFILE_INHERITED);
	/* until they have their own, from the inherited one */
	ck_assert_int_eq(set_profile("img", 2, "", "q", NULL), -ESTALE);
	ck_assert_int_eq(set_profile("img", 2, "p2", "q", &vi), 0);
	ck_assert(has_profile(&vi, "q"));
	ck_assert_uint_eq(vi.flags & VMIR_VI_F_PROFILE_INHERITED, 0);
	/* the parent's later profile does not reach a child made before */
	ck_assert_int_eq(set_profile("img", 1, "p2", "p3", NULL), 0);
	ck_assert_int_eq(versiond_db_lookup(db, "vm", 1, &vi), 0);
	ck_assert(has_profile(&vi, "p2"));
	/* unknown image or version, bad arguments */
	ck_assert_int_eq(set_profile("nope", 1, "", "p", NULL), -ENOENT);
	ck_assert_int_eq(set_profile("img", 7, "", "p", NULL), -ENOENT);
	ck_assert_int_eq(set_profile("img", 0, "", "p", NULL), -EINVAL);
	/* log format 4, and all of it survives a replay */
	before = read_file(logpath, &len);
	ck_assert_uint_eq(before[8], 4);
	free(before);
	before = dump(&len);
	db_close();
	db_open();
	assert_state(before, len);
	free(before);
	ck_assert_int_eq(versiond_db_lookup(db, "img", 2, &vi), 0);
	ck_assert(has_profile(&vi, "q"));
	ck_assert_int_eq(versiond_db_lookup(db, "vm", 1, &vi), 0);
	ck_assert(vi.flags & VMIR_VI_F_PROFILE_INHERITED);
}
END_TEST

START_TEST(publish_errors)
{
	ck_assert_int_eq(publish("nope", 1, 4096, "r", NULL), -ENOENT);
	ck_assert_int_eq(create("img", 4096, CS, "r1", NULL), 0);
	ck_assert_int_eq(publish("img", 1, 0, "r", NULL), -EINVAL);
}
END_TEST

START_TEST(clone_shares_root_size_and_chunk_size)
{
	struct vmir_wire_version_info src, vi;

	ck_assert_int_eq(create("base", 4096, 2 * CS, "r1", NULL), 0);
	ck_assert_int_eq(publish("base", 1, 1 << 20, "r2", &src), 0);
	ck_assert_int_eq(publish("base", 2, 2 << 20, "r3", NULL), 0);
	ck_assert_int_eq(clone_img("base", 2, "vm1", &vi), 0);
	ck_assert_str_eq(vi.image, "vm1");
	ck_assert_uint_eq(vi.version, 1);
	ck_assert(vmir_id_eq(&vi.root, &src.root));
	ck_assert_uint_eq(vi.size, 1 << 20);
	ck_assert_uint_eq(vi.chunk_size, 2 * CS);
	ck_assert_str_eq(vi.parent_image, "base");
	ck_assert_uint_eq(vi.parent_version, 2);
	/* version 0 clones the latest */
	ck_assert_int_eq(clone_img("base", 0, "vm2", &vi), 0);
	ck_assert_uint_eq(vi.parent_version, 3);
	ck_assert_uint_eq(vi.size, 2 << 20);
}
END_TEST

START_TEST(clone_with_content_makes_version_1_of_new_image)
{
	struct vmir_clone_req q = { .src_version = 1 };
	struct vmir_wire_version_info src, vi, look;

	ck_assert_int_eq(create("base", 4096, CS, "r1", &src), 0);
	strcpy(q.src, "base");
	strcpy(q.dst, "snap");
	q.flags = VMIR_CLONE_F_CONTENT;
	q.size = 8192;
	q.root = id_of_str("committed");
	ck_assert_int_eq(versiond_db_clone(db, &q, &vi), 0);
	ck_assert_uint_eq(vi.version, 1);
	ck_assert_uint_eq(vi.size, 8192);
	ck_assert(vmir_id_eq(&vi.root, &q.root));
	ck_assert_str_eq(vi.parent_image, "base");
	ck_assert_uint_eq(vi.parent_version, 1);
	/* the source is untouched */
	ck_assert_int_eq(versiond_db_lookup(db, "base", 0, &look), 0);
	ck_assert_uint_eq(look.version, 1);
	ck_assert(vmir_id_eq(&look.root, &src.root));
}
END_TEST

START_TEST(clone_errors)
{
	ck_assert_int_eq(clone_img("nope", 0, "x", NULL), -ENOENT);
	ck_assert_int_eq(create("base", 4096, CS, "r1", NULL), 0);
	ck_assert_int_eq(create("taken", 4096, CS, "r1", NULL), 0);
	ck_assert_int_eq(clone_img("base", 2, "x", NULL), -ENOENT);
	ck_assert_int_eq(clone_img("base", 1, "taken", NULL), -EEXIST);
	ck_assert_int_eq(clone_img("base", 1, "base", NULL), -EEXIST);
	ck_assert_int_eq(clone_img("base", 1, "bad/name", NULL), -EINVAL);
}
END_TEST

START_TEST(delete_removes_versions_and_images)
{
	struct vmir_wire_version_info vi;

	ck_assert_int_eq(create("img", 4096, CS, "r1", NULL), 0);
	ck_assert_int_eq(publish("img", 1, 4096, "r2", NULL), 0);
	ck_assert_int_eq(versiond_db_delete(db, "img", 1), 0);
	ck_assert_int_eq(versiond_db_lookup(db, "img", 1, &vi), -ENOENT);
	ck_assert_int_eq(versiond_db_lookup(db, "img", 0, &vi), 0);
	ck_assert_uint_eq(vi.version, 2);
	/* the last version goes only with the image */
	ck_assert_int_eq(versiond_db_delete(db, "img", 2), -EBUSY);
	ck_assert_int_eq(versiond_db_delete(db, "img", 1), -ENOENT);
	ck_assert_int_eq(versiond_db_delete(db, "img", 0), 0);
	ck_assert_int_eq(versiond_db_lookup(db, "img", 0, &vi), -ENOENT);
	ck_assert_int_eq(versiond_db_delete(db, "img", 0), -ENOENT);
	/* the name is free again */
	ck_assert_int_eq(create("img", 4096, CS, "r9", &vi), 0);
	ck_assert_uint_eq(vi.version, 1);
}
END_TEST

START_TEST(version_numbers_are_not_reused_after_delete)
{
	struct vmir_wire_version_info vi;

	ck_assert_int_eq(create("img", 4096, CS, "r1", NULL), 0);
	ck_assert_int_eq(publish("img", 1, 4096, "r2", NULL), 0);
	ck_assert_int_eq(publish("img", 2, 4096, "r3", NULL), 0);
	ck_assert_int_eq(versiond_db_delete(db, "img", 3), 0);
	ck_assert_int_eq(publish("img", 2, 4096, "r4", &vi), 0);
	ck_assert_uint_eq(vi.version, 4);
	ck_assert_int_eq(versiond_db_delete(db, "img", 4), 0);
	db_close();
	db_open();
	ck_assert_int_eq(publish("img", 2, 4096, "r5", &vi), 0);
	ck_assert_uint_eq(vi.version, 5);
}
END_TEST

START_TEST(clone_parent_stays_its_source_after_the_name_is_reused)
{
	struct vmir_wire_version_info src, vm, reborn, vi;

	ck_assert_int_eq(create("src", 4096, CS, "old", &src), 0);
	ck_assert_int_eq(clone_img("src", 1, "vm", &vm), 0);
	ck_assert_uint_eq(vm.parent_image_id, src.image_id);
	ck_assert_uint_eq(vm.flags, 0);
	ck_assert_int_eq(versiond_db_delete(db, "src", 0), 0);
	/* a new image takes the name: it is not the clone's parent */
	ck_assert_int_eq(create("src", 4096, CS, "new", &reborn), 0);
	ck_assert_uint_gt(reborn.image_id, src.image_id);
	ck_assert_uint_ne(reborn.image_id, vm.image_id);
	for (int pass = 0; pass < 2; pass++) {
		ck_assert_int_eq(versiond_db_lookup(db, "vm", 1, &vi), 0);
		ck_assert_str_eq(vi.parent_image, "src");
		ck_assert_uint_eq(vi.parent_version, 1);
		ck_assert_uint_eq(vi.parent_image_id, src.image_id);
		ck_assert_uint_eq(vi.flags, VMIR_VI_F_PARENT_DELETED);
		/* ids survive replay */
		ck_assert_int_eq(versiond_db_lookup(db, "src", 0, &vi), 0);
		ck_assert_uint_eq(vi.image_id, reborn.image_id);
		db_close();
		db_open();
	}
	/* a live parent is not flagged; a publish's parent is its image */
	ck_assert_int_eq(publish("src", 1, 4096, "v2", &vi), 0);
	ck_assert_uint_eq(vi.parent_image_id, reborn.image_id);
	ck_assert_uint_eq(vi.flags, 0);
}
END_TEST

START_TEST(second_open_of_a_directory_is_refused)
{
	struct versiond_db *db2;

	ck_assert_int_eq(versiond_db_open(ddir, 0, &db2), -EBUSY);
}
END_TEST

/* --- the log ---------------------------------------------------------------- */

/* a history touching every record type */
static void build_history(void)
{
	ck_assert_int_eq(create("base", 1 << 20, CS, "b1", NULL), 0);
	ck_assert_int_eq(publish("base", 1, 2 << 20, "b2", NULL), 0);
	ck_assert_int_eq(clone_img("base", 1, "vm", NULL), 0);
	ck_assert_int_eq(publish("vm", 1, 1 << 20, "v2", NULL), 0);
	ck_assert_int_eq(publish("vm", 2, 1 << 20, "v3", NULL), 0);
	ck_assert_int_eq(versiond_db_delete(db, "vm", 2), 0);
	ck_assert_int_eq(create("gone", 4096, CS, "g", NULL), 0);
	ck_assert_int_eq(versiond_db_delete(db, "gone", 0), 0);
	ck_assert_int_eq(create("empty", 4096, CS, NULL, NULL), 0);
	ck_assert_int_eq(set_profile("base", 2, "", "prof", NULL), 0);
}

START_TEST(log_starts_with_header_and_holds_checksummed_records)
{
	uint8_t *p;
	size_t len;

	build_history();
	p = read_file(logpath, &len);
	ck_assert_uint_gt(len, VERSIOND_LOG_HDR_LEN);
	ck_assert_mem_eq(p, "VMIRVLOG", 8);
	ck_assert_uint_eq(p[8], VERSIOND_LOG_VERSION);
	/* first record: magic "VREC", type CREATE */
	ck_assert_mem_eq(p + VERSIOND_LOG_HDR_LEN, "VREC", 4);
	ck_assert_uint_eq(p[VERSIOND_LOG_HDR_LEN + 4], VERSIOND_REC_CREATE);
	free(p);
}
END_TEST

START_TEST(replay_restores_identical_state)
{
	uint8_t *before;
	size_t len;

	build_history();
	before = dump(&len);
	db_close();
	db_open();
	assert_state(before, len);
	free(before);
}
END_TEST

START_TEST(torn_tail_is_dropped_at_every_cut)
{
	uint8_t *before, *full;
	size_t len, flen;
	off_t good;

	build_history();
	before = dump(&len);
	good = file_size(logpath);
	ck_assert_int_eq(publish("base", 2, 4096, "last", NULL), 0);
	db_close();
	full = read_file(logpath, &flen);
	ck_assert_uint_gt(flen, (size_t)good);
	/* a crash may stop the last append after any byte */
	for (size_t cut = (size_t)good + 1; cut < flen; cut++) {
		write_file(logpath, full, cut);
		db_open();
		assert_state(before, len);
		db_close();
		ck_assert_int_eq(file_size(logpath), good);
	}
	free(full);
	free(before);
}
END_TEST

START_TEST(zero_filled_tail_is_dropped)
{
	uint8_t *before, *full, *buf;
	size_t len, flen;

	build_history();
	before = dump(&len);
	db_close();
	full = read_file(logpath, &flen);
	/* a crash after the file grew, before its new block was written */
	buf = calloc(1, flen + 200);
	memcpy(buf, full, flen);
	write_file(logpath, buf, flen + 200);
	db_open();
	assert_state(before, len);
	db_close();
	ck_assert_int_eq(file_size(logpath), flen);
	free(buf);
	free(full);
	free(before);
}
END_TEST

START_TEST(garbage_after_the_last_record_refuses_to_open)
{
	static const size_t sizes[] = { 1, 11, 12, 40, 100, 5000 };
	uint8_t *full, *buf;
	size_t flen;

	build_history();
	db_close();
	full = read_file(logpath, &flen);
	buf = malloc(flen + 5000);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		/* not a prefix of any record: nothing an append leaves */
		memcpy(buf, full, flen);
		memset(buf + flen, 0xa5, sizes[i]);
		write_file(logpath, buf, flen + sizes[i]);
		ck_assert_int_eq(versiond_db_open(ddir, 0, &db), -EUCLEAN);
		db = NULL;
		ck_assert_int_eq(file_size(logpath), flen + sizes[i]);
	}
	free(buf);
	free(full);
}
END_TEST

/*
 * Write the log with the last record changed by fn, and check that the
 * open refuses it and leaves the file as it was.
 */
static void assert_last_record_refused(void (*fn)(uint8_t *rec, size_t len,
						  size_t i), size_t n)
{
	uint8_t *full, *bad;
	size_t flen;
	off_t good;

	build_history();
	good = file_size(logpath);
	ck_assert_int_eq(publish("base", 2, 4096, "last", NULL), 0);
	db_close();
	full = read_file(logpath, &flen);
	bad = malloc(flen);
	for (size_t i = 0; i < n; i++) {
		memcpy(bad, full, flen);
		fn(bad + good, flen - (size_t)good, i);
		write_file(logpath, bad, flen);
		ck_assert_msg(versiond_db_open(ddir, 0, &db) == -EUCLEAN,
			      "change %zu of the last record was accepted", i);
		db = NULL;
		ck_assert_int_eq(file_size(logpath), flen);
	}
	free(bad);
	free(full);
}

static void flip_bit(uint8_t *rec, size_t len, size_t i)
{
	rec[(i / 8) % len] ^= (uint8_t)(1u << (i % 8));
}

START_TEST(any_flipped_bit_in_the_last_record_refuses_to_open)
{
	/* every bit of the record: header, payload, checksum */
	assert_last_record_refused(flip_bit, 8 * 120);
}
END_TEST

static void flip_checksum(uint8_t *rec, size_t len, size_t i)
{
	rec[len - 1] ^= 0x40;
}

START_TEST(corrupted_checksum_in_the_tail_refuses_to_open)
{
	assert_last_record_refused(flip_checksum, 1);
}
END_TEST

static void grow_length(uint8_t *rec, size_t len, size_t i)
{
	/* the length field says more bytes than there are: looks torn */
	rec[8 + i] ^= 0x01;
	rec[9] ^= 0x02;
}

START_TEST(complete_record_with_a_damaged_length_is_not_called_torn)
{
	assert_last_record_refused(grow_length, 2);
}
END_TEST

/* the name of the one versiond.log.cut-* file in ddir, malloc()ed */
static char *cut_copy_path(void)
{
	char cmd[600], path[600], *ret;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "ls %s/%s.cut-*", ddir, VERSIOND_LOG_NAME);
	f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	ret = fgets(path, sizeof(path), f);
	ck_assert_ptr_nonnull(ret);
	ck_assert_ptr_null(fgets(cmd, sizeof(cmd), f));
	pclose(f);
	path[strcspn(path, "\n")] = '\0';
	return strdup(path);
}

START_TEST(recover_log_cuts_a_corrupt_tail_after_keeping_a_copy)
{
	struct vmir_wire_version_info vi;
	uint8_t *full, *copy;
	size_t flen, clen;
	off_t good;
	char *path;

	build_history();
	good = file_size(logpath);
	ck_assert_int_eq(publish("base", 2, 4096, "last", &vi), 0);
	ck_assert_uint_eq(vi.version, 3);
	db_close();
	full = read_file(logpath, &flen);
	full[good + VERSIOND_REC_HDR_LEN + 2] ^= 0x01;
	full[8] = 1;	/* a log of format 1, from before RECOVER records */
	write_file(logpath, full, flen);
	ck_assert_int_eq(versiond_db_open(ddir, 0, &db), -EUCLEAN);
	ck_assert_int_eq(versiond_db_open(ddir, VERSIOND_DB_RECOVER, &db), 0);
	/* the RECOVER record needs format 2: the header was upgraded */
	copy = read_file(logpath, &clen);
	ck_assert_uint_eq(copy[8], 2);
	ck_assert_uint_gt(clen, (size_t)good);
	/* the cut bytes were kept */
	path = cut_copy_path();
	free(copy);
	copy = read_file(path, &clen);
	ck_assert_uint_eq(clen, flen - (size_t)good);
	ck_assert_mem_eq(copy, full + good, clen);
	/* the cut version is gone, and its number is not given out again */
	ck_assert_int_eq(versiond_db_lookup(db, "base", 0, &vi), 0);
	ck_assert_uint_eq(vi.version, 2);
	ck_assert_int_eq(publish("base", 2, 4096, "other", &vi), 0);
	ck_assert_uint_gt(vi.version, 3);
	db_close();
	/* the recovery is in the log: a plain open sees the same numbers */
	db_open();
	ck_assert_int_eq(publish("base", vi.version, 4096, "next", &vi), 0);
	ck_assert_uint_gt(vi.version, 4);
	free(copy);
	free(path);
	free(full);
}
END_TEST

START_TEST(corruption_before_valid_records_refuses_to_open)
{
	uint8_t *full;
	size_t flen;

	build_history();
	db_close();
	full = read_file(logpath, &flen);
	full[VERSIOND_LOG_HDR_LEN + VERSIOND_REC_HDR_LEN + 3] ^= 0x01;
	write_file(logpath, full, flen);
	ck_assert_int_eq(versiond_db_open(ddir, 0, &db), -EUCLEAN);
	db = NULL;
	/* nothing was truncated */
	ck_assert_int_eq(file_size(logpath), flen);
	free(full);
}
END_TEST

START_TEST(bad_log_header_refuses_to_open)
{
	uint8_t *full;
	size_t flen;

	build_history();
	db_close();
	full = read_file(logpath, &flen);
	full[0] = 'X';
	write_file(logpath, full, flen);
	ck_assert_int_eq(versiond_db_open(ddir, 0, &db), -EINVAL);
	db = NULL;
	free(full);
}
END_TEST

START_TEST(appends_after_a_dropped_tail_survive_replay)
{
	struct vmir_id after = id_of_str("after");
	struct vmir_wire_version_info vi;
	uint8_t *full;
	size_t flen;

	build_history();
	ck_assert_int_eq(publish("base", 2, 4096, "torn", NULL), 0);
	db_close();
	full = read_file(logpath, &flen);
	write_file(logpath, full, flen - 5);
	free(full);
	db_open();
	ck_assert_int_eq(versiond_db_lookup(db, "base", 0, &vi), 0);
	ck_assert_uint_eq(vi.version, 2);
	ck_assert_int_eq(publish("base", 2, 4096, "after", &vi), 0);
	ck_assert_uint_eq(vi.version, 3);
	db_close();
	db_open();
	ck_assert_int_eq(versiond_db_lookup(db, "base", 0, &vi), 0);
	ck_assert_uint_eq(vi.version, 3);
	ck_assert(vmir_id_eq(&vi.root, &after));
}
END_TEST

/* --- the server ------------------------------------------------------------- */

static pid_t srvpid = -1;
static char srvaddr[VMIR_ADDR_MAX];
static uint8_t key[VMIR_KEY_LEN];

static void server_start(void)
{
	struct versiond_server_conf conf = { 0 };
	char ready[400];
	FILE *f;

	snprintf(ready, sizeof(ready), "%s/ready", tdir);
	unlink(ready);
	srvpid = fork();
	ck_assert_int_ge(srvpid, 0);
	if (srvpid == 0) {
		/* never outlive the test, even when it fails */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		conf.listen = "127.0.0.1:0";
		conf.dir = ddir;
		conf.ready_file = ready;
		memcpy(conf.key, key, sizeof(key));
		_exit(versiond_server_run(&conf) < 0 ? 1 : 0);
	}
	for (int i = 0; i < 500 && access(ready, F_OK) < 0; i++)
		usleep(10000);
	f = fopen(ready, "r");
	ck_assert_msg(f != NULL, "server did not write its ready file");
	ck_assert_ptr_nonnull(fgets(srvaddr, sizeof(srvaddr), f));
	fclose(f);
	srvaddr[strcspn(srvaddr, "\n")] = '\0';
	ck_assert_int_eq(strncmp(srvaddr, "127.0.0.1:", 10), 0);
}

static void server_stop(void)
{
	int status;

	kill(srvpid, SIGTERM);
	ck_assert_int_eq(waitpid(srvpid, &status, 0), srvpid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "server did not exit cleanly on SIGTERM");
	srvpid = -1;
}

static void server_setup(void)
{
	db_setup();
	db_close();	/* the server owns the directory */
	randombytes_buf(key, sizeof(key));
	server_start();
}

static void server_teardown(void)
{
	if (srvpid > 0)
		server_stop();
	db_teardown();
}

static uint32_t wire_call(struct test_client *c, uint16_t op,
			  struct vmir_wbuf *w, struct test_msg *m)
{
	ck_assert_int_eq(w->err, 0);
	ck_assert_int_eq(test_client_call(c, op, w->p, (uint32_t)w->len, NULL,
					  0, m, TMO), 0);
	vmir_wbuf_free(w);
	return m->hdr.status;
}

static void wire_info(struct test_msg *m, struct vmir_wire_version_info *vi)
{
	struct vmir_rbuf r;

	vmir_rbuf_init(&r, m->meta, m->hdr.meta_len);
	vmir_get_version_info(&r, vi);
	ck_assert_int_eq(vmir_rbuf_end(&r), 0);
	test_msg_free(m);
}

START_TEST(namespace_ops_over_the_wire)
{
	struct vmir_create_req cq = { .size = 1 << 20, .chunk_size = CS };
	struct vmir_publish_req pq = { .base_version = 1, .size = 2 << 20 };
	struct vmir_clone_req kq = { .src_version = 0 };
	struct vmir_ref_req rq = { .version = 0 };
	struct vmir_wire_version_info vi;
	struct vmir_wire_image_info ii;
	struct test_client c;
	struct vmir_wbuf w;
	struct vmir_rbuf r;
	struct test_msg m;

	ck_assert_int_eq(test_client_connect(&c, srvaddr, key, TMO), 0);
	strcpy(cq.name, "img");
	cq.root = id_of_str("r1");
	vmir_wbuf_init(&w);
	vmir_put_create_req(&w, &cq);
	ck_assert_uint_eq(wire_call(&c, VMIR_OP_CREATE, &w, &m), 0);
	wire_info(&m, &vi);
	ck_assert_uint_eq(vi.version, 1);

	vmir_wbuf_init(&w);
	vmir_put_create_req(&w, &cq);
	ck_assert_uint_eq(wire_call(&c, VMIR_OP_CREATE, &w, &m), EEXIST);
	test_msg_free(&m);

	strcpy(pq.name, "img");
	pq.root = id_of_str("r2");
	vmir_wbuf_init(&w);
	vmir_put_publish_req(&w, &pq);
	ck_assert_uint_eq(wire_call(&c, VMIR_OP_PUBLISH, &w, &m), 0);
	wire_info(&m, &vi);
	ck_assert_uint_eq(vi.version, 2);
	ck_assert_str_eq(vi.parent_image, "img");
	vmir_wbuf_init(&w);
	vmir_put_publish_req(&w, &pq);
	ck_assert_uint_eq(wire_call(&c, VMIR_OP_PUBLISH, &w, &m), ESTALE);
	test_msg_free(&m);

	strcpy(kq.src, "img");
	strcpy(kq.dst, "vm");
	vmir_wbuf_init(&w);
	vmir_put_clone_req(&w, &kq);
	ck_assert_uint_eq(wire_call(&c, VMIR_OP_CLONE, &w, &m), 0);
	wire_info(&m, &vi);
	ck_assert(vmir_id_eq(&vi.root, &pq.root));

	strcpy(rq.name, "img");
	vmir_wbuf_init(&w);
	vmir_put_ref_req(&w, &rq);
	ck_assert_uint_eq(wire_call(&c, VMIR_OP_LOOKUP, &w, &m), 0);
	wire_info(&m, &vi);
	ck_assert_uint_eq(vi.version, 2);

	vmir_wbuf_init(&w);
	vmir_put_ref_req(&w, &rq);
	ck_assert_uint_eq(wire_call(&c, VMIR_OP_VERSIONS, &w, &m), 0);
	vmir_rbuf_init(&r, m.meta, m.hdr.meta_len);
	ck_assert_uint_eq(vmir_get_u32(&r), 2);
	vmir_get_version_info(&r, &vi);
	ck_assert_uint_eq(vi.version, 1);
	vmir_get_version_info(&r, &vi);
	ck_assert_uint_eq(vi.version, 2);
	ck_assert_int_eq(vmir_rbuf_end(&r), 0);
	test_msg_free(&m);

	vmir_wbuf_init(&w);
	ck_assert_uint_eq(wire_call(&c, VMIR_OP_LIST, &w, &m), 0);
	vmir_rbuf_init(&r, m.meta, m.hdr.meta_len);
	ck_assert_uint_eq(vmir_get_u32(&r), 2);
	vmir_get_image_info(&r, &ii);
	ck_assert_str_eq(ii.name, "img");
	ck_assert_uint_eq(ii.size, 2 << 20);
	vmir_get_image_info(&r, &ii);
	ck_assert_str_eq(ii.name, "vm");
	ck_assert_int_eq(vmir_rbuf_end(&r), 0);
	test_msg_free(&m);

	rq.version = 2;
	vmir_wbuf_init(&w);
	vmir_put_ref_req(&w, &rq);
	ck_assert_uint_eq(wire_call(&c, VMIR_OP_DELETE, &w, &m), 0);
	ck_assert_uint_eq(m.hdr.meta_len, 0);
	test_msg_free(&m);
	vmir_wbuf_init(&w);
	vmir_put_ref_req(&w, &rq);
	ck_assert_uint_eq(wire_call(&c, VMIR_OP_LOOKUP, &w, &m), ENOENT);
	test_msg_free(&m);
	rq.version = 1;
	vmir_wbuf_init(&w);
	vmir_put_ref_req(&w, &rq);
	ck_assert_uint_eq(wire_call(&c, VMIR_OP_DELETE, &w, &m), EBUSY);
	test_msg_free(&m);

	/* a profile over the wire, and one set from a stale id */
	{
		struct vmir_profile_req fq = { .version = 1 };

		strcpy(fq.name, "img");
		fq.profile = id_of_str("prof");
		vmir_wbuf_init(&w);
		vmir_put_profile_req(&w, &fq);
		ck_assert_uint_eq(wire_call(&c, VMIR_OP_SET_PROFILE, &w, &m),
				  0);
		wire_info(&m, &vi);
		ck_assert(vmir_id_eq(&vi.profile, &fq.profile));
		fq.old = id_of_str("other");
		fq.profile = id_of_str("prof2");
		vmir_wbuf_init(&w);
		vmir_put_profile_req(&w, &fq);
		ck_assert_uint_eq(wire_call(&c, VMIR_OP_SET_PROFILE, &w, &m),
				  ESTALE);
		test_msg_free(&m);
	}

	/* chunk server opcodes are not served here */
	vmir_wbuf_init(&w);
	ck_assert_uint_eq(wire_call(&c, VMIR_OP_STAT, &w, &m), EOPNOTSUPP);
	test_msg_free(&m);
	test_client_close(&c);
}
END_TEST

START_TEST(acknowledged_changes_survive_a_restart)
{
	struct vmir_create_req cq = { .size = 4096, .chunk_size = CS };
	struct vmir_ref_req rq = { .version = 0 };
	struct vmir_wire_version_info vi;
	struct test_client c;
	struct vmir_wbuf w;
	struct test_msg m;

	ck_assert_int_eq(test_client_connect(&c, srvaddr, key, TMO), 0);
	strcpy(cq.name, "durable");
	vmir_wbuf_init(&w);
	vmir_put_create_req(&w, &cq);
	ck_assert_uint_eq(wire_call(&c, VMIR_OP_CREATE, &w, &m), 0);
	test_msg_free(&m);
	test_client_close(&c);
	server_stop();
	server_start();
	ck_assert_int_eq(test_client_connect(&c, srvaddr, key, TMO), 0);
	strcpy(rq.name, "durable");
	vmir_wbuf_init(&w);
	vmir_put_ref_req(&w, &rq);
	ck_assert_uint_eq(wire_call(&c, VMIR_OP_LOOKUP, &w, &m), 0);
	wire_info(&m, &vi);
	ck_assert_uint_eq(vi.size, 4096);
	test_client_close(&c);
}
END_TEST

START_TEST(undecodable_request_closes_the_connection)
{
	struct test_client c, good;
	struct vmir_wbuf w;
	struct test_msg m;

	ck_assert_int_eq(test_client_connect(&c, srvaddr, key, TMO), 0);
	ck_assert_int_eq(test_client_connect(&good, srvaddr, key, TMO), 0);
	ck_assert_int_eq(test_client_send(&c, VMIR_OP_LOOKUP, "\x05\x00img", 5,
					  NULL, 0, NULL), 0);
	ck_assert(test_client_wait_closed(&c, TMO));
	test_client_close(&c);
	vmir_wbuf_init(&w);
	ck_assert_uint_eq(wire_call(&good, VMIR_OP_LIST, &w, &m), 0);
	test_msg_free(&m);
	test_client_close(&good);
}
END_TEST

/* --- peers: leases in memory ------------------------------------------------ */

START_TEST(leases_run_out_renew_and_leave)
{
	const uint64_t s = 1000000000ull;
	struct versiond_peers *p;
	struct versiond_peer *a;
	size_t n;

	ck_assert_int_eq(versiond_peers_new(&p), 0);
	ck_assert_int_eq(versiond_peers_lease(p, 7, 1, "10.0.0.1:7410", 5000,
					      0), 0);
	ck_assert_int_eq(versiond_peers_lease(p, 7, 1, "10.0.0.2:7410", 10000,
					      0), 0);
	ck_assert_int_eq(versiond_peers_lease(p, 7, 2, "10.0.0.3:7410", 10000,
					      0), 0);
	ck_assert_int_eq(versiond_peers_lease(p, 8, 1, "10.0.0.4:7410", 10000,
					      0), 0);
	/* the same node again renews its lease, no second entry */
	ck_assert_int_eq(versiond_peers_lease(p, 7, 1, "10.0.0.1:7410", 3000,
					      1 * s), 0);
	ck_assert_int_eq(versiond_peers_list(p, 7, 1, 1 * s, 16, &a, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(a[0].addr, "10.0.0.2:7410");	/* lives longest */
	ck_assert_uint_eq(a[0].ttl_ms, 9000);
	ck_assert_str_eq(a[1].addr, "10.0.0.1:7410");
	ck_assert_uint_eq(a[1].ttl_ms, 3000);
	free(a);
	/* max cuts the list */
	ck_assert_int_eq(versiond_peers_list(p, 7, 1, 1 * s, 1, &a, &n), 0);
	ck_assert_uint_eq(n, 1);
	free(a);
	/* 10.0.0.1's renewed lease ran out at 4 s */
	ck_assert_int_eq(versiond_peers_list(p, 7, 1, 4 * s, 16, &a, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(a[0].addr, "10.0.0.2:7410");
	free(a);
	/* leaving (lease 0) removes it at once */
	ck_assert_int_eq(versiond_peers_lease(p, 7, 1, "10.0.0.2:7410", 0,
					      4 * s), 0);
	ck_assert_int_eq(versiond_peers_list(p, 7, 1, 4 * s, 16, &a, &n), 0);
	ck_assert_uint_eq(n, 0);
	free(a);
	/* other versions and images keep theirs; a dropped image loses all */
	ck_assert_int_eq(versiond_peers_list(p, 7, 2, 4 * s, 16, &a, &n), 0);
	ck_assert_uint_eq(n, 1);
	free(a);
	versiond_peers_drop(p, 7, 0);
	ck_assert_int_eq(versiond_peers_list(p, 7, 2, 4 * s, 16, &a, &n), 0);
	ck_assert_uint_eq(n, 0);
	free(a);
	ck_assert_int_eq(versiond_peers_list(p, 8, 1, 4 * s, 16, &a, &n), 0);
	ck_assert_uint_eq(n, 1);
	free(a);
	versiond_peers_free(p);
}
END_TEST

START_TEST(leases_are_bounded)
{
	struct versiond_peers *p;
	char addr[VMIR_ADDR_MAX];
	uint32_t i;

	ck_assert_int_eq(versiond_peers_new(&p), 0);
	for (i = 0; i < VERSIOND_PEERS_MAX; i++) {
		snprintf(addr, sizeof(addr), "10.%u.%u.1:7410", i >> 8,
			 i & 255);
		ck_assert_int_eq(versiond_peers_lease(p, 1, 1, addr, 1000, 0),
				 0);
	}
	ck_assert_int_eq(versiond_peers_lease(p, 1, 1, "10.255.255.1:7410",
					      1000, 0), -ENOSPC);
	/* once they ran out there is room again */
	ck_assert_int_eq(versiond_peers_lease(p, 1, 1, "10.255.255.1:7410",
					      1000, 2000000000ull), 0);
	versiond_peers_free(p);
}
END_TEST

/* PEER_LEASE name@version addr lease_ms; the reply's status */
static uint32_t wire_lease(struct test_client *c, const char *name,
			   uint32_t version, const char *addr, uint32_t ms)
{
	struct vmir_peer_req q = { .version = version, .lease_ms = ms };
	struct vmir_wbuf w;
	struct test_msg m;
	uint32_t st;

	strcpy(q.name, name);
	strcpy(q.addr, addr);
	vmir_wbuf_init(&w);
	vmir_put_peer_req(&w, &q);
	st = wire_call(c, VMIR_OP_PEER_LEASE, &w, &m);
	test_msg_free(&m);
	return st;
}

START_TEST(peers_of_a_version_are_leased_and_listed_over_the_wire)
{
	struct vmir_create_req cq = { .size = 1 << 20, .chunk_size = CS };
	struct vmir_ref_req rq = { .version = 1 };
	char addr[VMIR_ADDR_MAX];
	struct test_client c;
	struct vmir_wbuf w;
	struct vmir_rbuf r;
	struct test_msg m;

	ck_assert_int_eq(test_client_connect(&c, srvaddr, key, TMO), 0);
	strcpy(cq.name, "img");
	vmir_wbuf_init(&w);
	vmir_put_create_req(&w, &cq);
	ck_assert_uint_eq(wire_call(&c, VMIR_OP_CREATE, &w, &m), 0);
	test_msg_free(&m);

	ck_assert_uint_eq(wire_lease(&c, "img", 1, "10.1.0.2:7410", 60000), 0);
	ck_assert_uint_eq(wire_lease(&c, "img", 1, "[fd00::3]:7410", 30000), 0);
	/* unknown image or version */
	ck_assert_uint_eq(wire_lease(&c, "nope", 1, "10.1.0.2:7410", 60000),
			  ENOENT);
	ck_assert_uint_eq(wire_lease(&c, "img", 2, "10.1.0.2:7410", 60000),
			  ENOENT);

	strcpy(rq.name, "img");
	vmir_wbuf_init(&w);
	vmir_put_ref_req(&w, &rq);
	ck_assert_uint_eq(wire_call(&c, VMIR_OP_PEERS, &w, &m), 0);
	vmir_rbuf_init(&r, m.meta, m.hdr.meta_len);
	ck_assert_uint_eq(vmir_get_u32(&r), 2);
	vmir_get_str(&r, addr, sizeof(addr));
	ck_assert_str_eq(addr, "10.1.0.2:7410");
	ck_assert_uint_gt(vmir_get_u32(&r), 50000);
	vmir_get_str(&r, addr, sizeof(addr));
	ck_assert_str_eq(addr, "[fd00::3]:7410");
	ck_assert_uint_le(vmir_get_u32(&r), 30000);
	ck_assert_int_eq(vmir_rbuf_end(&r), 0);
	test_msg_free(&m);

	/* leave; version 0 asks for the latest */
	ck_assert_uint_eq(wire_lease(&c, "img", 1, "10.1.0.2:7410", 0), 0);
	rq.version = 0;
	vmir_wbuf_init(&w);
	vmir_put_ref_req(&w, &rq);
	ck_assert_uint_eq(wire_call(&c, VMIR_OP_PEERS, &w, &m), 0);
	vmir_rbuf_init(&r, m.meta, m.hdr.meta_len);
	ck_assert_uint_eq(vmir_get_u32(&r), 1);
	test_msg_free(&m);
	test_client_close(&c);
}
END_TEST

START_TEST(peer_lease_with_a_name_for_an_address_closes_the_connection)
{
	/* host names would make the version server resolve them */
	static const char *const bad[] = { "localhost:7410", "10.0.0.1:0",
					   "10.0.0.1", "10.0.0.1:x" };
	struct vmir_peer_req q = { .version = 1, .lease_ms = 5000 };
	struct test_client c;
	struct vmir_wbuf w;

	strcpy(q.name, "img");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(test_client_connect(&c, srvaddr, key, TMO), 0);
		strcpy(q.addr, bad[i]);
		vmir_wbuf_init(&w);
		vmir_put_peer_req(&w, &q);
		ck_assert_int_eq(test_client_send(&c, VMIR_OP_PEER_LEASE, w.p,
						  (uint32_t)w.len, NULL, 0,
						  NULL), 0);
		vmir_wbuf_free(&w);
		ck_assert_msg(test_client_wait_closed(&c, TMO),
			      "PEER_LEASE of %s was accepted", bad[i]);
		test_client_close(&c);
	}
	/* a lease shorter than VMIR_LEASE_MS_MIN is malformed too */
	ck_assert_int_eq(test_client_connect(&c, srvaddr, key, TMO), 0);
	strcpy(q.addr, "10.0.0.1:7410");
	q.lease_ms = VMIR_LEASE_MS_MIN - 1;
	vmir_wbuf_init(&w);
	vmir_put_peer_req(&w, &q);
	ck_assert_int_eq(test_client_send(&c, VMIR_OP_PEER_LEASE, w.p,
					  (uint32_t)w.len, NULL, 0, NULL), 0);
	vmir_wbuf_free(&w);
	ck_assert(test_client_wait_closed(&c, TMO));
	test_client_close(&c);
}
END_TEST

static Suite *versiond_suite(void)
{
	Suite *s = suite_create("versiond");
	TCase *tc;

	tc = tcase_create("ops");
	tcase_add_checked_fixture(tc, db_setup, db_teardown);
	tcase_add_test(tc, create_makes_version_one_without_parent);
	tcase_add_test(tc, create_of_existing_name_is_eexist);
	tcase_add_test(tc, create_rejects_bad_arguments);
	tcase_add_test(tc, lookup_finds_latest_and_specific_versions);
	tcase_add_test(tc, list_returns_images_sorted_with_latest_size);
	tcase_add_test(tc, versions_are_listed_ascending);
	tcase_add_test(tc, publish_adds_next_version_with_parent);
	tcase_add_test(tc, publish_on_stale_base_is_refused);
	tcase_add_test(tc, duplicate_token_publish_answers_the_version_it_made);
	tcase_add_test(tc, duplicate_token_create_and_clone_answer_what_they_made);
	tcase_add_test(tc, publish_errors);
	tcase_add_test(tc, profiles_are_compared_and_set_and_inherited_by_children);
	tcase_add_test(tc, clone_shares_root_size_and_chunk_size);
	tcase_add_test(tc, clone_with_content_makes_version_1_of_new_image);
	tcase_add_test(tc, clone_errors);
	tcase_add_test(tc, delete_removes_versions_and_images);
	tcase_add_test(tc, version_numbers_are_not_reused_after_delete);
	tcase_add_test(tc,
		       clone_parent_stays_its_source_after_the_name_is_reused);
	tcase_add_test(tc, second_open_of_a_directory_is_refused);
	suite_add_tcase(s, tc);

	tc = tcase_create("log");
	tcase_add_checked_fixture(tc, db_setup, db_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, log_starts_with_header_and_holds_checksummed_records);
	tcase_add_test(tc, replay_restores_identical_state);
	tcase_add_test(tc, torn_tail_is_dropped_at_every_cut);
	tcase_add_test(tc, zero_filled_tail_is_dropped);
	tcase_add_test(tc, garbage_after_the_last_record_refuses_to_open);
	tcase_add_test(tc, any_flipped_bit_in_the_last_record_refuses_to_open);
	tcase_add_test(tc, corrupted_checksum_in_the_tail_refuses_to_open);
	tcase_add_test(tc,
		       complete_record_with_a_damaged_length_is_not_called_torn);
	tcase_add_test(tc, recover_log_cuts_a_corrupt_tail_after_keeping_a_copy);
	tcase_add_test(tc, corruption_before_valid_records_refuses_to_open);
	tcase_add_test(tc, bad_log_header_refuses_to_open);
	tcase_add_test(tc, appends_after_a_dropped_tail_survive_replay);
	suite_add_tcase(s, tc);

	tc = tcase_create("peers");
	tcase_add_test(tc, leases_run_out_renew_and_leave);
	tcase_add_test(tc, leases_are_bounded);
	suite_add_tcase(s, tc);

	tc = tcase_create("server");
	tcase_add_checked_fixture(tc, server_setup, server_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, namespace_ops_over_the_wire);
	tcase_add_test(tc, acknowledged_changes_survive_a_restart);
	tcase_add_test(tc, undecodable_request_closes_the_connection);
	tcase_add_test(tc, peers_of_a_version_are_leased_and_listed_over_the_wire);
	tcase_add_test(tc,
		       peer_lease_with_a_name_for_an_address_closes_the_connection);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(versiond_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
