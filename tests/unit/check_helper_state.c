// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of vmir-helper's files (tools/helper_state.c): the state file
 * of a mirror (MIRROR_DIR/state), the device registry (REG_DIR/vmirN) and
 * the small file helpers under them, on real files in a temp directory.
 *
 * The state file layout is pinned by a file written out here field by
 * field (offsets by hand, checksum straight from libsodium), so a change
 * that would strand existing mirrors fails even if save and load agree.
 */
#include <check.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "state.h"
#include "vmir_util.h"

#define MSG_LEN		(PATH_MAX + 512)
#define MAX_FILE	(1 << 16)

static char tdir[256];

static int rm_one(const char *path, const struct stat *sb, int flag,
		  struct FTW *ftw)
{
	return remove(path);
}

static void tdir_make(void)
{
	snprintf(tdir, sizeof(tdir), "/tmp/check_helper_state.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tdir));
}

static void tdir_remove(void)
{
	nftw(tdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* tdir/name */
static const char *tpath(const char *name)
{
	static char path[2][PATH_MAX];
	static int i;

	i ^= 1;
	snprintf(path[i], sizeof(path[i]), "%s/%s", tdir, name);
	return path[i];
}

static bool exists(const char *path)
{
	struct stat st;

	return !lstat(path, &st);
}

/* the whole file at path into buf (MAX_FILE bytes); its length */
static size_t slurp(const char *path, uint8_t *buf)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	n = read(fd, buf, MAX_FILE);
	ck_assert_int_ge(n, 0);
	ck_assert_int_lt(n, MAX_FILE);
	close(fd);
	return (size_t)n;
}

static void spew(const char *path, const void *buf, size_t len)
{
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(vmir_write_full(fd, buf, len), 0);
	close(fd);
}

static void fill_random(void *p, size_t len, unsigned int seed)
{
	uint8_t *b = p;

	srand(seed);
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)rand();
}

/* --- state file ----------------------------------------------------------- */

static struct helper_mirror mirror_of(const char *image, uint32_t version,
				      uint32_t chunk_size, uint64_t size)
{
	struct helper_mirror m = { .version = version,
				   .chunk_size = chunk_size, .size = size };

	snprintf(m.image, sizeof(m.image), "%s", image);
	m.nchunks = (size + chunk_size - 1) / chunk_size;
	return m;
}

/* present and dirty maps of m, random, saved into tdir */
struct saved {
	struct helper_mirror m;
	size_t mb;
	uint8_t present[512], dirty[512];
};

static void save_random(struct saved *s, struct helper_mirror m,
			unsigned int seed)
{
	s->m = m;
	s->mb = helper_map_bytes(m.nchunks);
	ck_assert_uint_le(s->mb, sizeof(s->present));
	fill_random(s->present, s->mb, seed);
	fill_random(s->dirty, s->mb, seed + 1);
	ck_assert_int_eq(helper_state_save(tdir, &m, s->present, s->dirty), 0);
}

/* load m's state from tdir; maps start as 0xee so "untouched" shows */
static int load(const struct helper_mirror *m, uint8_t *present,
		uint8_t *dirty, char *msg)
{
	size_t mb = helper_map_bytes(m->nchunks);

	memset(present, 0xee, mb);
	memset(dirty, 0xee, mb);
	msg[0] = '\0';
	return helper_state_load(tdir, m, present, dirty, msg, MSG_LEN);
}

static bool all_ee(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != 0xee)
			return false;
	return true;
}

static const uint64_t round_trip_chunks[] = { 1, 7, 8, 13, 64, 1001, 4095 };

START_TEST(state_save_then_load_round_trips_maps)
{
	uint64_t nchunks = round_trip_chunks[_i];
	struct helper_mirror m = mirror_of("img", 3, 4096, nchunks * 4096 - 5);
	uint8_t present[512], dirty[512], f[MAX_FILE];
	char msg[MSG_LEN];
	struct saved s;

	save_random(&s, m, 100 + _i);
	ck_assert_uint_eq(s.m.nchunks, nchunks);
	/* header, then two maps of one bit per chunk, rounded up to bytes */
	ck_assert_uint_eq(slurp(tpath("state"), f),
			  208 + 2 * ((nchunks + 7) / 8));
	ck_assert_int_eq(load(&m, present, dirty, msg), 1);
	ck_assert_mem_eq(present, s.present, s.mb);
	ck_assert_mem_eq(dirty, s.dirty, s.mb);
	/* the last chunk of a non-multiple of 8 */
	ck_assert_int_eq(helper_map_test(present, nchunks - 1),
			 helper_map_test(s.present, nchunks - 1));
	ck_assert(!exists(tpath("state.tmp")));
}
END_TEST

START_TEST(state_save_of_one_bit_loads_that_bit_only)
{
	struct helper_mirror m = mirror_of("img", 1, 65536, 13 * 65536);
	uint8_t p[2] = { 0 }, d[2] = { 0 }, present[2], dirty[2];
	char msg[MSG_LEN];
	uint64_t i;

	helper_map_set(p, 12);		/* last chunk: bit 4 of byte 1 */
	helper_map_set(d, 0);
	ck_assert_int_eq(helper_state_save(tdir, &m, p, d), 0);
	ck_assert_int_eq(load(&m, present, dirty, msg), 1);
	for (i = 0; i < 13; i++) {
		ck_assert_int_eq(helper_map_test(present, i), i == 12);
		ck_assert_int_eq(helper_map_test(dirty, i), i == 0);
	}
}
END_TEST

/* the state of golden@7, 10 chunks of 4096, 40860 bytes, as written by
 * the helper before helper_state.c existed (little-endian host) */
static const uint8_t golden_sum[32] = {
	0x87, 0xa2, 0x69, 0x3c, 0x10, 0xd5, 0xbe, 0xe7,
	0x30, 0x8c, 0x98, 0x72, 0x7f, 0x41, 0x1e, 0xd0,
	0x9b, 0x7a, 0x42, 0x53, 0x1d, 0xbe, 0x8a, 0x98,
	0x8e, 0xbf, 0x75, 0xe9, 0x4d, 0x3b, 0x94, 0xcb,
};
static const uint8_t golden_present[2] = { 0xa5, 0x02 };
static const uint8_t golden_dirty[2] = { 0x21, 0x01 };
#define GOLDEN_LEN	212

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void golden_file(uint8_t *f)
{
	memset(f, 0, GOLDEN_LEN);
	memcpy(f + 0, "VMST", 4);		/* magic */
	put_le(f + 4, 1, 4);			/* format */
	put_le(f + 8, GOLDEN_LEN, 8);		/* length */
	memcpy(f + 16, "golden", 6);		/* image[129], pad[7] */
	put_le(f + 152, 7, 4);			/* version */
	put_le(f + 156, 4096, 4);		/* chunk_size */
	put_le(f + 160, 40860, 8);		/* size */
	put_le(f + 168, 10, 8);			/* nchunks */
	memcpy(f + 176, golden_sum, 32);	/* sum */
	memcpy(f + 208, golden_present, 2);
	memcpy(f + 210, golden_dirty, 2);
}

START_TEST(state_file_layout_is_unchanged)
{
	struct helper_mirror m = mirror_of("golden", 7, 4096, 40860);
	uint8_t want[GOLDEN_LEN], got[MAX_FILE], sum[32];
	uint8_t present[2], dirty[2];
	char msg[MSG_LEN];

	golden_file(want);
	/* the sum: BLAKE2b-256 of the file with the sum zeroed */
	memset(got, 0, sizeof(got));
	memcpy(got, want, GOLDEN_LEN);
	memset(got + 176, 0, 32);
	crypto_generichash(sum, 32, got, GOLDEN_LEN, NULL, 0);
	ck_assert_mem_eq(sum, golden_sum, 32);

	/* saving writes exactly these bytes */
	ck_assert_int_eq(helper_state_save(tdir, &m, golden_present,
					   golden_dirty), 0);
	ck_assert_uint_eq(slurp(tpath("state"), got), GOLDEN_LEN);
	ck_assert_mem_eq(got, want, GOLDEN_LEN);

	/* and a file of an earlier helper loads */
	spew(tpath("state"), want, GOLDEN_LEN);
	ck_assert_int_eq(load(&m, present, dirty, msg), 1);
	ck_assert_mem_eq(present, golden_present, 2);
	ck_assert_mem_eq(dirty, golden_dirty, 2);
}
END_TEST

START_TEST(state_load_without_file_loads_nothing)
{
	struct helper_mirror m = mirror_of("img", 1, 4096, 13 * 4096);
	uint8_t present[2], dirty[2];
	char msg[MSG_LEN];

	ck_assert_int_eq(load(&m, present, dirty, msg), 0);
	ck_assert(all_ee(present, 2) && all_ee(dirty, 2));
	ck_assert_str_eq(msg, "");
}
END_TEST

START_TEST(state_load_detects_any_flipped_byte)
{
	struct helper_mirror m = mirror_of("img", 5, 4096, 13 * 4096);
	uint8_t orig[MAX_FILE], f[MAX_FILE], present[2], dirty[2];
	char msg[MSG_LEN];
	struct saved s;
	size_t len, i;

	save_random(&s, m, 7);
	len = slurp(tpath("state"), orig);
	ck_assert_uint_eq(len, 208 + 2 * 2);
	/* every byte: header, both maps, the padding bits of the last byte */
	for (i = 0; i < len; i++) {
		memcpy(f, orig, len);
		f[i] ^= (uint8_t)(1u << (i % 8));
		spew(tpath("state"), f, len);
		ck_assert_msg(load(&m, present, dirty, msg) == -EBADMSG,
			      "flipped byte %zu not detected", i);
		ck_assert_msg(strstr(msg, "damaged") && strstr(msg, tdir),
			      "byte %zu: %s", i, msg);
		ck_assert(all_ee(present, 2) && all_ee(dirty, 2));
	}
}
END_TEST

START_TEST(state_load_refuses_truncated_file)
{
	struct helper_mirror m = mirror_of("img", 5, 4096, 13 * 4096);
	uint8_t orig[MAX_FILE], present[2], dirty[2];
	const size_t cut[] = { 0, 1, 100, 207, 208, 209, 211 };
	char msg[MSG_LEN];
	struct saved s;
	size_t len, i;

	save_random(&s, m, 8);
	len = slurp(tpath("state"), orig);
	ck_assert_uint_eq(len, 212);
	for (i = 0; i < sizeof(cut) / sizeof(cut[0]); i++) {
		spew(tpath("state"), orig, cut[i]);
		ck_assert_msg(load(&m, present, dirty, msg) == -EBADMSG,
			      "file cut to %zu bytes loaded", cut[i]);
		ck_assert_ptr_nonnull(strstr(msg, "damaged"));
		/* with a whole header it knows its length */
		if (cut[i] >= 208)
			ck_assert_ptr_nonnull(strstr(msg, "header says 212"));
		ck_assert(all_ee(present, 2) && all_ee(dirty, 2));
	}
}
END_TEST

START_TEST(state_load_refuses_overlong_file)
{
	struct helper_mirror m = mirror_of("img", 5, 4096, 13 * 4096);
	uint8_t f[MAX_FILE], present[2], dirty[2];
	char msg[MSG_LEN];
	struct saved s;
	size_t len;

	save_random(&s, m, 9);
	len = slurp(tpath("state"), f);
	memset(f + len, 0, 64);
	spew(tpath("state"), f, len + 1);
	ck_assert_int_eq(load(&m, present, dirty, msg), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(msg, "damaged"));
	ck_assert_ptr_nonnull(strstr(msg, "213 bytes, its header says 212"));
	spew(tpath("state"), f, len + 64);
	ck_assert_int_eq(load(&m, present, dirty, msg), -EBADMSG);
	ck_assert(all_ee(present, 2) && all_ee(dirty, 2));
}
END_TEST

/* the state of one mirror offered to another: refused, naming both */
static const struct {
	const char *image;
	uint32_t version, chunk_size;
	uint64_t size;
	const char *want;		/* in the message besides the saved */
} other_mirror[] = {
	{ "other", 3, 4096, 13 * 4096, "other@3" },
	{ "img", 4, 4096, 13 * 4096, "img@4" },
	{ "img", 3, 4096, 13 * 4096 + 1, "53249 bytes" },
	{ "img", 3, 4096, 13 * 4096 - 1, "53247 bytes" },
	{ "img", 3, 8192, 13 * 4096, "chunks of 8192" },
	/* same size and number of chunks */
	{ "img", 3, 4100, 13 * 4096, "chunks of 4100" },
};

START_TEST(state_load_refuses_state_of_another_mirror)
{
	struct helper_mirror saved = mirror_of("img", 3, 4096, 13 * 4096);
	struct helper_mirror m = mirror_of(other_mirror[_i].image,
					   other_mirror[_i].version,
					   other_mirror[_i].chunk_size,
					   other_mirror[_i].size);
	uint8_t present[2], dirty[2];
	char msg[MSG_LEN];
	struct saved s;

	save_random(&s, saved, 10);
	ck_assert_int_eq(load(&m, present, dirty, msg), -EEXIST);
	ck_assert_msg(strstr(msg, "img@3 (53248 bytes in chunks of 4096)") &&
		      strstr(msg, other_mirror[_i].want), "%s", msg);
	ck_assert(all_ee(present, helper_map_bytes(m.nchunks)));
	ck_assert(all_ee(dirty, helper_map_bytes(m.nchunks)));
}
END_TEST

START_TEST(state_tmp_of_torn_save_does_not_affect_load)
{
	struct helper_mirror m = mirror_of("img", 2, 4096, 100 * 4096);
	uint8_t f[MAX_FILE], present[13], dirty[13];
	char msg[MSG_LEN];
	struct saved s, next;
	size_t len;

	/* a save that died before its rename: half a newer state.tmp */
	save_random(&next, m, 11);
	len = slurp(tpath("state"), f);
	save_random(&s, m, 12);
	spew(tpath("state.tmp"), f, len / 2);
	ck_assert_int_eq(load(&m, present, dirty, msg), 1);
	ck_assert_mem_eq(present, s.present, s.mb);
	ck_assert_mem_eq(dirty, s.dirty, s.mb);
	/* the next save replaces it */
	save_random(&next, m, 13);
	ck_assert(!exists(tpath("state.tmp")));
	ck_assert_int_eq(load(&m, present, dirty, msg), 1);
	ck_assert_mem_eq(present, next.present, next.mb);
}
END_TEST

START_TEST(state_save_into_missing_dir_fails_leaving_nothing)
{
	struct helper_mirror m = mirror_of("img", 2, 4096, 13 * 4096);
	uint8_t p[2] = { 1, 2 }, d[2] = { 3, 4 };
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s/absent", tdir);
	ck_assert_int_eq(helper_state_save(dir, &m, p, d), -ENOENT);
	ck_assert(!exists(dir));
}
END_TEST

START_TEST(state_remove_deletes_state_and_accepts_none)
{
	struct helper_mirror m = mirror_of("img", 2, 4096, 13 * 4096);
	uint8_t present[2], dirty[2];
	char msg[MSG_LEN];
	struct saved s;

	save_random(&s, m, 14);
	ck_assert_int_eq(helper_state_remove(tdir), 0);
	ck_assert(!exists(tpath("state")));
	ck_assert_int_eq(load(&m, present, dirty, msg), 0);
	ck_assert_int_eq(helper_state_remove(tdir), 0);
}
END_TEST

/* --- registry ------------------------------------------------------------- */

struct reg {
	char dir[PATH_MAX];
	char image[VMIR_NAME_MAX];
	uint32_t version;
	char msg[MSG_LEN];
};

/* read entry id of tdir/reg; outputs start as "untouched" */
static int reg_read(uint32_t id, struct reg *r)
{
	strcpy(r->dir, "untouched");
	strcpy(r->image, "untouched");
	r->version = 12345;
	r->msg[0] = '\0';
	return helper_reg_read(tpath("reg"), id, r->dir, r->image,
			       &r->version, r->msg, sizeof(r->msg));
}

static void reg_put(uint32_t id, const char *text)
{
	char name[32];

	mkdir(tpath("reg"), 0700);
	snprintf(name, sizeof(name), "reg/vmir%u", id);
	spew(tpath(name), text, strlen(text));
}

/* refused as damaged, naming the file, outputs untouched */
static void reg_assert_refused(uint32_t id, const char *text, const char *why)
{
	struct reg r;

	reg_put(id, text);
	ck_assert_msg(reg_read(id, &r) == -EBADMSG, "accepted: %s", text);
	ck_assert_msg(strstr(r.msg, "damaged") && strstr(r.msg, tdir) &&
		      strstr(r.msg, why), "\"%s\": %s", text, r.msg);
	ck_assert_str_eq(r.dir, "untouched");
	ck_assert_str_eq(r.image, "untouched");
	ck_assert_uint_eq(r.version, 12345);
}

START_TEST(reg_write_then_read_round_trips)
{
	struct reg r;

	ck_assert_int_eq(helper_reg_write(tpath("reg"), 3, "/var/m/a b@1",
					  "debian-12", 42), 0);
	ck_assert_int_eq(reg_read(3, &r), 0);
	ck_assert_str_eq(r.dir, "/var/m/a b@1");
	ck_assert_str_eq(r.image, "debian-12");
	ck_assert_uint_eq(r.version, 42);
	ck_assert(!exists(tpath("reg/vmir3.tmp")));
	/* rewritten after a commit */
	ck_assert_int_eq(helper_reg_write(tpath("reg"), 3, "/var/m/a b@1",
					  "debian-12", UINT32_MAX), 0);
	ck_assert_int_eq(reg_read(3, &r), 0);
	ck_assert_uint_eq(r.version, UINT32_MAX);
}
END_TEST

START_TEST(reg_round_trips_longest_values)
{
	char dir[PATH_MAX], image[VMIR_NAME_MAX];
	struct reg r;

	memset(dir, 'd', sizeof(dir) - 1);
	dir[0] = '/';
	dir[sizeof(dir) - 1] = '\0';
	memset(image, 'i', sizeof(image) - 1);
	image[sizeof(image) - 1] = '\0';
	ck_assert_int_eq(helper_reg_write(tpath("reg"), 0, dir, image, 1), 0);
	ck_assert_int_eq(reg_read(0, &r), 0);
	ck_assert_str_eq(r.dir, dir);
	ck_assert_str_eq(r.image, image);
}
END_TEST

START_TEST(reg_entry_text_is_as_documented)
{
	uint8_t buf[MAX_FILE];
	const char *want = "dir=/m/x\nimage=img\nversion=7\n";
	struct stat st;
	size_t len;

	ck_assert_int_eq(helper_reg_write(tpath("a/b/reg"), 12, "/m/x", "img",
					  7), 0);
	len = slurp(tpath("a/b/reg/vmir12"), buf);
	ck_assert_uint_eq(len, strlen(want));
	ck_assert_mem_eq(buf, want, len);
	ck_assert_int_eq(stat(tpath("a/b/reg/vmir12"), &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
}
END_TEST

START_TEST(reg_read_accepts_any_order_and_unknown_keys)
{
	struct reg r;

	reg_put(4, "version=9\nfuture=1\n# comment\nimage=i\ndir=/d\n");
	ck_assert_int_eq(reg_read(4, &r), 0);
	ck_assert_str_eq(r.dir, "/d");
	ck_assert_str_eq(r.image, "i");
	ck_assert_uint_eq(r.version, 9);
}
END_TEST

START_TEST(reg_read_refuses_missing_field)
{
	reg_assert_refused(1, "image=i\nversion=1\n", "dir= is missing");
	reg_assert_refused(1, "dir=/d\nversion=1\n", "image= is missing");
	reg_assert_refused(1, "dir=/d\nimage=i\n", "version= is missing");
	reg_assert_refused(1, "", "is missing");
}
END_TEST

static const char *const bad_versions[] = {
	"", "12x", "x12", " 12", "12 ", "+12", "-1", "0x10", "1.0",
	"4294967296", "99999999999999999999999",
};

START_TEST(reg_read_refuses_garbage_version)
{
	char text[128];

	snprintf(text, sizeof(text), "dir=/d\nimage=i\nversion=%s\n",
		 bad_versions[_i]);
	reg_assert_refused(2, text, "not a decimal number");
}
END_TEST

START_TEST(reg_read_refuses_overlong_value)
{
	static char text[2 * PATH_MAX + 64], big[2 * PATH_MAX];

	/* dir of PATH_MAX bytes: one too many */
	memset(big, 'd', PATH_MAX);
	big[PATH_MAX] = '\0';
	snprintf(text, sizeof(text), "dir=/%s\nimage=i\nversion=1\n", big + 1);
	reg_assert_refused(3, text, "dir= is empty or longer");
	/* image of VMIR_NAME_MAX bytes: no room left for its NUL */
	memset(big, 'i', VMIR_NAME_MAX);
	big[VMIR_NAME_MAX] = '\0';
	snprintf(text, sizeof(text), "dir=/d\nimage=%s\nversion=1\n", big);
	reg_assert_refused(3, text, "image= is empty or longer");
	/* an entry longer than any valid one */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	snprintf(text, sizeof(text), "dir=/d\nimage=i\nversion=1\nx=%s\n", big);
	reg_assert_refused(3, text, "longer than any entry");
}
END_TEST

START_TEST(reg_read_refuses_empty_repeated_cut_and_nul)
{
	struct reg r;

	reg_assert_refused(5, "dir=\nimage=i\nversion=1\n", "dir= is empty");
	reg_assert_refused(5, "dir=/d\nimage=\nversion=1\n", "image= is empty");
	reg_assert_refused(5, "dir=/d\nimage=i\nversion=1\ndir=/e\n",
			   "dir= is given twice");
	reg_assert_refused(5, "dir=/d\nimage=i\nversion=12", "cut short");
	mkdir(tpath("reg"), 0700);
	spew(tpath("reg/vmir5"), "dir=/d\0x\nimage=i\nversion=1\n", 27);
	ck_assert_int_eq(reg_read(5, &r), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(r.msg, "NUL"));
}
END_TEST

START_TEST(reg_write_refuses_values_it_cannot_hold)
{
	static char dir[PATH_MAX + 1];
	char image[VMIR_NAME_MAX + 1];
	const char *reg = tpath("reg");

	memset(dir, 'd', PATH_MAX);
	memset(image, 'i', VMIR_NAME_MAX);
	image[VMIR_NAME_MAX] = '\0';
	ck_assert_int_eq(helper_reg_write(reg, 1, dir, "i", 1), -ENAMETOOLONG);
	ck_assert_int_eq(helper_reg_write(reg, 1, "/d", image, 1),
			 -ENAMETOOLONG);
	ck_assert_int_eq(helper_reg_write(reg, 1, "/d\nimage=x", "i", 1),
			 -EINVAL);
	ck_assert_int_eq(helper_reg_write(reg, 1, "/d", "i\n", 1), -EINVAL);
	ck_assert_int_eq(helper_reg_write(reg, 1, "", "i", 1), -EINVAL);
	ck_assert(!exists(tpath("reg/vmir1")));
}
END_TEST

START_TEST(reg_remove_deletes_entry)
{
	struct reg r;

	ck_assert_int_eq(helper_reg_write(tpath("reg"), 6, "/d", "i", 1), 0);
	ck_assert_int_eq(helper_reg_write(tpath("reg"), 7, "/e", "j", 2), 0);
	ck_assert_int_eq(helper_reg_remove(tpath("reg"), 6), 0);
	ck_assert(!exists(tpath("reg/vmir6")));
	ck_assert_int_eq(reg_read(6, &r), -ENOENT);
	/* only that one */
	ck_assert_int_eq(reg_read(7, &r), 0);
	/* again: nothing to do */
	ck_assert_int_eq(helper_reg_remove(tpath("reg"), 6), 0);
}
END_TEST

START_TEST(reg_read_of_absent_entry_is_enoent)
{
	struct reg r;

	/* no registry directory at all */
	ck_assert_int_eq(reg_read(8, &r), -ENOENT);
	ck_assert_ptr_nonnull(strstr(r.msg, "vmir8"));
	ck_assert_int_eq(helper_reg_write(tpath("reg"), 9, "/d", "i", 1), 0);
	ck_assert_int_eq(reg_read(8, &r), -ENOENT);
	ck_assert_str_eq(r.dir, "untouched");
}
END_TEST

/* --- file helpers --------------------------------------------------------- */

/* --- MIRROR_DIR/commit.pub ------------------------------------------------ */

static void fill_ticket(struct vmir_publish_ticket *t)
{
	memset(t, 0, sizeof(*t));
	strcpy(t->image, "web-1.2");
	t->base_version = 0xfffffff0u;
	t->size = (1ull << 40) + 17;
	memset(t->root, 'a', VMIR_ROOT_HEX_LEN);
	t->root[3] = '7';
	for (size_t i = 0; i < sizeof(t->token); i++)
		t->token[i] = (uint8_t)(0x91 * i + 3);
}

START_TEST(pub_save_then_load_round_trips_the_ticket)
{
	struct vmir_publish_ticket t, got;
	char msg[PATH_MAX + 64];

	fill_ticket(&t);
	ck_assert_int_eq(helper_pub_save(tdir, &t), 0);
	ck_assert_int_eq(helper_pub_load(tdir, &got, msg, sizeof(msg)), 1);
	ck_assert_mem_eq(&got, &t, sizeof(t));
	ck_assert_int_eq(helper_pub_remove(tdir), 0);
	ck_assert(!exists(tpath("commit.pub")));
	ck_assert_int_eq(helper_pub_load(tdir, &got, msg, sizeof(msg)), 0);
	ck_assert_int_eq(helper_pub_remove(tdir), 0);
	/* the ticket of a commit --to */
	strcpy(t.to, "web-1.3");
	ck_assert_int_eq(helper_pub_save(tdir, &t), 0);
	ck_assert_int_eq(helper_pub_load(tdir, &got, msg, sizeof(msg)), 1);
	ck_assert_mem_eq(&got, &t, sizeof(t));
}
END_TEST

/* a ticket written before commit --to had one: "VMIRPUB1", no to */
START_TEST(pub_load_reads_a_format_1_ticket)
{
	struct vmir_publish_ticket t, got;
	char msg[PATH_MAX + 64];
	uint8_t sum[16];
	struct vmir_wbuf w;
	int fd;

	fill_ticket(&t);
	vmir_wbuf_init(&w);
	vmir_put_bytes(&w, "VMIRPUB1", 8);
	vmir_put_str(&w, t.image);
	vmir_put_u32(&w, t.base_version);
	vmir_put_u64(&w, t.size);
	vmir_put_str(&w, t.root);
	vmir_put_bytes(&w, t.token, sizeof(t.token));
	ck_assert_int_eq(w.err, 0);
	crypto_generichash(sum, sizeof(sum), w.p, w.len, NULL, 0);
	fd = open(tpath("commit.pub"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, w.p, w.len), (ssize_t)w.len);
	ck_assert_int_eq(write(fd, sum, sizeof(sum)), (ssize_t)sizeof(sum));
	close(fd);
	vmir_wbuf_free(&w);
	ck_assert_int_eq(helper_pub_load(tdir, &got, msg, sizeof(msg)), 1);
	ck_assert_mem_eq(&got, &t, sizeof(t));
	ck_assert_str_eq(got.to, "");
}
END_TEST

START_TEST(pub_load_detects_any_flipped_byte)
{
	struct vmir_publish_ticket t, got;
	char msg[PATH_MAX + 64];
	uint8_t buf[512];
	ssize_t n;
	int fd;

	fill_ticket(&t);
	ck_assert_int_eq(helper_pub_save(tdir, &t), 0);
	fd = open(tpath("commit.pub"), O_RDONLY);
	n = read(fd, buf, sizeof(buf));
	close(fd);
	ck_assert_int_gt(n, 0);
	for (ssize_t i = 0; i < n; i++) {
		buf[i] ^= 0x10;
		fd = open(tpath("commit.pub"), O_WRONLY | O_TRUNC);
		ck_assert_int_eq(write(fd, buf, (size_t)n), n);
		close(fd);
		ck_assert_int_eq(helper_pub_load(tdir, &got, msg, sizeof(msg)),
				 -EBADMSG);
		buf[i] ^= 0x10;
	}
	/* cut short */
	fd = open(tpath("commit.pub"), O_WRONLY | O_TRUNC);
	ck_assert_int_eq(write(fd, buf, (size_t)n - 1), n - 1);
	close(fd);
	ck_assert_int_eq(helper_pub_load(tdir, &got, msg, sizeof(msg)),
			 -EBADMSG);
	ck_assert_ptr_nonnull(strstr(msg, "commit.pub is damaged"));
}
END_TEST

START_TEST(mkdir_p_creates_nested_directories)
{
	struct stat st;

	ck_assert_int_eq(helper_mkdir_p(tpath("a/b/c/d"), 0700), 0);
	ck_assert_int_eq(stat(tpath("a/b/c/d"), &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 0777, 0700);
	/* a trailing slash too */
	ck_assert_int_eq(helper_mkdir_p(tpath("x/y/"), 0700), 0);
	ck_assert_int_eq(stat(tpath("x/y"), &st), 0);
}
END_TEST

START_TEST(mkdir_p_accepts_existing_directories)
{
	ck_assert_int_eq(helper_mkdir_p(tpath("a/b"), 0700), 0);
	ck_assert_int_eq(helper_mkdir_p(tpath("a/b"), 0700), 0);
	ck_assert_int_eq(helper_mkdir_p(tpath("a"), 0700), 0);
	ck_assert_int_eq(helper_mkdir_p(tdir, 0700), 0);
	ck_assert_int_eq(helper_mkdir_p(tpath("a/b/c"), 0700), 0);
	ck_assert(exists(tpath("a/b/c")));
}
END_TEST

START_TEST(mkdir_p_refuses_a_file_in_the_way)
{
	spew(tpath("f"), "x", 1);
	ck_assert_int_eq(helper_mkdir_p(tpath("f"), 0700), -ENOTDIR);
	ck_assert_int_eq(helper_mkdir_p(tpath("f/g"), 0700), -ENOTDIR);
}
END_TEST

START_TEST(write_file_writes_all_pieces_or_nothing)
{
	struct iovec iov[3] = {
		{ "abc", 3 }, { "", 0 }, { "defg", 4 },
	};
	uint8_t buf[MAX_FILE];

	ck_assert_int_eq(helper_write_file(tdir, "f", iov, 3), 0);
	ck_assert_uint_eq(slurp(tpath("f"), buf), 7);
	ck_assert_mem_eq(buf, "abcdefg", 7);
	ck_assert(!exists(tpath("f.tmp")));
	/* replaces the whole file */
	ck_assert_int_eq(helper_write_file(tdir, "f", iov, 1), 0);
	ck_assert_uint_eq(slurp(tpath("f"), buf), 3);
	/* a missing directory: an error and no file */
	ck_assert_int_eq(helper_write_file(tpath("no"), "f", iov, 1), -ENOENT);
	ck_assert(!exists(tpath("no")));
	/* failing after NAME.tmp was written (rename onto a directory) */
	ck_assert_int_eq(mkdir(tpath("d"), 0700), 0);
	ck_assert_int_eq(helper_write_file(tdir, "d", iov, 3), -EISDIR);
	ck_assert(!exists(tpath("d.tmp")));
}
END_TEST

START_TEST(parse_u32_accepts_only_clean_decimal)
{
	uint32_t v = 7;
	size_t i;

	ck_assert_int_eq(helper_parse_u32("0", &v), 0);
	ck_assert_uint_eq(v, 0);
	ck_assert_int_eq(helper_parse_u32("4294967295", &v), 0);
	ck_assert_uint_eq(v, UINT32_MAX);
	ck_assert_int_eq(helper_parse_u32("0042", &v), 0);
	ck_assert_uint_eq(v, 42);
	for (i = 0; i < sizeof(bad_versions) / sizeof(bad_versions[0]); i++) {
		v = 7;
		ck_assert_msg(helper_parse_u32(bad_versions[i], &v) == -EINVAL,
			      "accepted \"%s\"", bad_versions[i]);
		ck_assert_uint_eq(v, 7);
	}
}
END_TEST

START_TEST(copy_truncates_to_the_buffer)
{
	char buf[8];

	memset(buf, 'x', sizeof(buf));
	helper_copy(buf, 4, "ab");
	ck_assert_str_eq(buf, "ab");
	helper_copy(buf, 4, "abcd");
	ck_assert_str_eq(buf, "abc");
	helper_copy(buf, 4, "abcdef");
	ck_assert_str_eq(buf, "abc");
	ck_assert_int_eq(buf[4], 'x');
}
END_TEST

/* --- the durable map ------------------------------------------------------ */

/* a mirror file of m in tdir, sized as attach sizes it; its fd */
static int map_file(const struct helper_mirror *m)
{
	int fd = open(tpath("mirror"), O_RDWR | O_CREAT | O_TRUNC, 0600);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)helper_map_end(m)), 0);
	return fd;
}

static int map_load(int fd, const struct helper_mirror *m, uint8_t *present,
		    uint8_t *dirty, uint64_t *gen, char *msg)
{
	size_t mb = helper_map_bytes(m->nchunks);

	memset(present, 0xee, mb);
	memset(dirty, 0xee, mb);
	msg[0] = '\0';
	return helper_map_load(fd, m, present, dirty, gen, msg, MSG_LEN);
}

/* the newest valid copy is generation gen with maps p and d */
static void expect_map(int fd, const struct helper_mirror *m, uint64_t want,
		       const uint8_t *p, const uint8_t *d)
{
	size_t mb = helper_map_bytes(m->nchunks);
	uint8_t present[512], dirty[512];
	char msg[MSG_LEN];
	uint64_t gen;

	ck_assert_int_eq(map_load(fd, m, present, dirty, &gen, msg), 1);
	ck_assert_uint_eq(gen, want);
	ck_assert_mem_eq(present, p, mb);
	ck_assert_mem_eq(dirty, d, mb);
}

START_TEST(map_place_is_past_the_image_in_whole_pages)
{
	struct helper_mirror m = mirror_of("img", 1, 65536, 10 * 65536 + 1);

	ck_assert_uint_eq(helper_map_offset(4096), 4096);
	ck_assert_uint_eq(helper_map_offset(4097), 8192);
	ck_assert_uint_eq(helper_map_offset(1), 4096);
	/* 11 chunks: 2 bytes per map, one page per copy with the header */
	ck_assert_uint_eq(sizeof(struct vmir_map_hdr), 192);
	ck_assert_uint_eq(helper_map_end(&m), 10 * 65536 + 4096 + 2 * 4096);
}
END_TEST

START_TEST(map_save_then_load_returns_the_newest_copy)
{
	struct helper_mirror m = mirror_of("img", 3, 4096, 4001 * 4096 - 5);
	uint8_t p1[512], d1[512], p2[512], d2[512], present[512], dirty[512];
	size_t mb = helper_map_bytes(m.nchunks);
	char msg[MSG_LEN];
	uint64_t gen;
	int fd = map_file(&m);

	ck_assert_int_eq(map_load(fd, &m, present, dirty, &gen, msg), 0);
	ck_assert_uint_eq(gen, 0);
	fill_random(p1, mb, 1);
	fill_random(d1, mb, 2);
	fill_random(p2, mb, 3);
	fill_random(d2, mb, 4);
	ck_assert_int_eq(helper_map_save(fd, &m, p1, d1, 7), 0);
	expect_map(fd, &m, 7, p1, d1);
	/* generation 8 goes to the other slot and wins */
	ck_assert_int_eq(helper_map_save(fd, &m, p2, d2, 8), 0);
	expect_map(fd, &m, 8, p2, d2);
	close(fd);
}
END_TEST

/* a byte of the newest copy flipped (a torn write of it): the older wins */
START_TEST(map_torn_newest_copy_falls_back_to_the_older)
{
	struct helper_mirror m = mirror_of("img", 3, 4096, 1001 * 4096);
	uint64_t slot = VMIR_MAP_SLOT_BYTES(m.nchunks);
	uint8_t p1[512], d1[512], p2[512], d2[512];
	size_t mb = helper_map_bytes(m.nchunks);
	uint64_t at = helper_map_offset(m.size) + slot /* slot of gen 5 */ +
		      (_i % 2 ? sizeof(struct vmir_map_hdr) + (uint64_t)_i :
		       (uint64_t)_i * 4);
	uint8_t b;
	int fd = map_file(&m);

	fill_random(p1, mb, 5);
	fill_random(d1, mb, 6);
	fill_random(p2, mb, 7);
	fill_random(d2, mb, 8);
	ck_assert_int_eq(helper_map_save(fd, &m, p1, d1, 4), 0);
	ck_assert_int_eq(helper_map_save(fd, &m, p2, d2, 5), 0);
	ck_assert_int_eq(vmir_pread_full(fd, &b, 1, at), 0);
	b ^= 0x10;
	ck_assert_int_eq(vmir_pwrite_full(fd, &b, 1, at), 0);
	expect_map(fd, &m, 4, p1, d1);
	close(fd);
}
END_TEST

START_TEST(map_of_another_version_is_refused_naming_it)
{
	struct helper_mirror m = mirror_of("img", 3, 4096, 64 * 4096);
	struct helper_mirror other = m;
	uint8_t p[8] = { 0xff }, d[8] = { 0 }, present[8], dirty[8];
	char msg[MSG_LEN];
	uint64_t gen;
	int fd = map_file(&m);

	ck_assert_int_eq(helper_map_save(fd, &m, p, d, 1), 0);
	other.version = 4;
	ck_assert_int_eq(map_load(fd, &other, present, dirty, &gen, msg),
			 -EEXIST);
	ck_assert_uint_eq(gen, 1);
	ck_assert_ptr_nonnull(strstr(msg, "img@3"));
	ck_assert(all_ee(present, 8) && all_ee(dirty, 8));
	close(fd);
}
END_TEST

/* CRC-32 of IEEE 802.3 bit by bit, the definition the kernel's
 * ~crc32_le(~0, ...) and zlib's crc32() follow
 */
static uint32_t crc32_bitwise(const uint8_t *p, size_t len)
{
	uint32_t crc = ~0U;

	while (len--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xedb88320U & -(crc & 1));
	}
	return ~crc;
}

/* the module checks copies with the same CRC the helper writes */
START_TEST(map_crc_is_the_ieee_crc32_of_header_and_maps)
{
	struct helper_mirror m = mirror_of("a", 1, 4096, 100 * 4096);
	uint8_t p[13], d[13], buf[4096];
	struct vmir_map_hdr *h = (void *)buf;
	uint32_t crc;
	int fd = map_file(&m);

	ck_assert_uint_eq(crc32_bitwise((const uint8_t *)"123456789", 9),
			  0xcbf43926U);
	fill_random(p, sizeof(p), 9);
	fill_random(d, sizeof(d), 10);
	ck_assert_int_eq(helper_map_save(fd, &m, p, d, 1), 0);
	ck_assert_int_eq(vmir_pread_full(fd, buf, sizeof(buf),
					 helper_map_offset(m.size) + 4096), 0);
	ck_assert_uint_eq(le64toh(h->magic), VMIR_MAP_MAGIC);
	ck_assert_uint_eq(le32toh(h->map_bytes), 13);
	ck_assert_mem_eq(buf + sizeof(*h), p, 13);
	ck_assert_mem_eq(buf + sizeof(*h) + 13, d, 13);
	crc = le32toh(h->crc);
	h->crc = 0;
	ck_assert_uint_eq(crc32_bitwise(buf, sizeof(*h) + 26), crc);
	close(fd);
}
END_TEST

Suite *helper_state_suite(void)
{
	Suite *s = suite_create("helper_state");
	TCase *tc;

	tc = tcase_create("state");
	tcase_add_checked_fixture(tc, tdir_make, tdir_remove);
	tcase_add_loop_test(tc, state_save_then_load_round_trips_maps, 0,
			    sizeof(round_trip_chunks) /
			    sizeof(round_trip_chunks[0]));
	tcase_add_test(tc, state_save_of_one_bit_loads_that_bit_only);
	tcase_add_test(tc, state_file_layout_is_unchanged);
	tcase_add_test(tc, state_load_without_file_loads_nothing);
	tcase_add_test(tc, state_load_detects_any_flipped_byte);
	tcase_add_test(tc, state_load_refuses_truncated_file);
	tcase_add_test(tc, state_load_refuses_overlong_file);
	tcase_add_loop_test(tc, state_load_refuses_state_of_another_mirror, 0,
			    sizeof(other_mirror) / sizeof(other_mirror[0]));
	tcase_add_test(tc, state_tmp_of_torn_save_does_not_affect_load);
	tcase_add_test(tc, state_save_into_missing_dir_fails_leaving_nothing);
	tcase_add_test(tc, state_remove_deletes_state_and_accepts_none);
	suite_add_tcase(s, tc);

	tc = tcase_create("map");
	tcase_add_checked_fixture(tc, tdir_make, tdir_remove);
	tcase_add_test(tc, map_place_is_past_the_image_in_whole_pages);
	tcase_add_test(tc, map_save_then_load_returns_the_newest_copy);
	tcase_add_loop_test(tc, map_torn_newest_copy_falls_back_to_the_older,
			    0, 8);
	tcase_add_test(tc, map_of_another_version_is_refused_naming_it);
	tcase_add_test(tc, map_crc_is_the_ieee_crc32_of_header_and_maps);
	suite_add_tcase(s, tc);

	tc = tcase_create("registry");
	tcase_add_checked_fixture(tc, tdir_make, tdir_remove);
	tcase_add_test(tc, reg_write_then_read_round_trips);
	tcase_add_test(tc, reg_round_trips_longest_values);
	tcase_add_test(tc, reg_entry_text_is_as_documented);
	tcase_add_test(tc, reg_read_accepts_any_order_and_unknown_keys);
	tcase_add_test(tc, reg_read_refuses_missing_field);
	tcase_add_loop_test(tc, reg_read_refuses_garbage_version, 0,
			    sizeof(bad_versions) / sizeof(bad_versions[0]));
	tcase_add_test(tc, reg_read_refuses_overlong_value);
	tcase_add_test(tc, reg_read_refuses_empty_repeated_cut_and_nul);
	tcase_add_test(tc, reg_write_refuses_values_it_cannot_hold);
	tcase_add_test(tc, reg_remove_deletes_entry);
	tcase_add_test(tc, reg_read_of_absent_entry_is_enoent);
	suite_add_tcase(s, tc);

	tc = tcase_create("publish ticket");
	tcase_add_checked_fixture(tc, tdir_make, tdir_remove);
	tcase_add_test(tc, pub_save_then_load_round_trips_the_ticket);
	tcase_add_test(tc, pub_load_detects_any_flipped_byte);
	tcase_add_test(tc, pub_load_reads_a_format_1_ticket);
	suite_add_tcase(s, tc);

	tc = tcase_create("files");
	tcase_add_checked_fixture(tc, tdir_make, tdir_remove);
	tcase_add_test(tc, mkdir_p_creates_nested_directories);
	tcase_add_test(tc, mkdir_p_accepts_existing_directories);
	tcase_add_test(tc, mkdir_p_refuses_a_file_in_the_way);
	tcase_add_test(tc, write_file_writes_all_pieces_or_nothing);
	tcase_add_test(tc, parse_u32_accepts_only_clean_decimal);
	tcase_add_test(tc, copy_truncates_to_the_buffer);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	if (sodium_init() < 0)
		return 1;
	sr = srunner_create(helper_state_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
