// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Unit tests for the internal helpers: sizes, key files, configuration,
 * addresses, logging and full-length I/O.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

#include "vmir_util.h"

/* --- helpers ------------------------------------------------------------------ */

static char tmpdir[64];

static void tmpdir_setup(void)
{
	strcpy(tmpdir, "/tmp/check_util.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void tmpdir_teardown(void)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmpdir);
}

static void path_in_tmp(char *out, const char *name)
{
	snprintf(out, PATH_MAX, "%s/%s", tmpdir, name);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(vmir_write_full(fd, text, strlen(text)), 0);
	ck_assert_int_eq(fchmod(fd, mode), 0);
	close(fd);
}

static size_t read_file(const char *path, char *buf, size_t cap)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	n = read(fd, buf, cap - 1);
	ck_assert_int_ge(n, 0);
	buf[n] = '\0';
	close(fd);
	return (size_t)n;
}

/* stderr capture: everything logged between begin and end */
static int saved_stderr = -1;
static char captured[8192];

static void capture_begin(void)
{
	char path[PATH_MAX];
	int fd;

	fflush(stderr);
	path_in_tmp(path, "stderr.log");
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	saved_stderr = dup(STDERR_FILENO);
	ck_assert_int_ge(saved_stderr, 0);
	ck_assert_int_ge(dup2(fd, STDERR_FILENO), 0);
	close(fd);
}

static const char *capture_end(void)
{
	char path[PATH_MAX];

	fflush(stderr);
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	saved_stderr = -1;
	path_in_tmp(path, "stderr.log");
	read_file(path, captured, sizeof(captured));
	return captured;
}

/* --- sizes --------------------------------------------------------------------- */

static const struct {
	const char *text;
	uint64_t want;
} size_ok[] = {
	{ "0", 0 },
	{ "4096", 4096 },
	{ "256K", 256ull << 10 },
	{ "256k", 256ull << 10 },
	{ "1M", 1ull << 20 },
	{ "2g", 2ull << 30 },
	{ "1T", 1ull << 40 },
	{ "4KiB", 4096 },
	{ "4kib", 4096 },
	{ "4KB", 4096 },
	{ "512B", 512 },
	{ "1.5G", 3ull << 29 },
	{ "0.5K", 512 },
	{ "18446744073709551615", UINT64_MAX },
	{ "16777215T", 16777215ull << 40 },
};

START_TEST(size_parse_accepts_units)
{
	uint64_t v = 12345;

	ck_assert_msg(vmir_size_parse(size_ok[_i].text, &v) == 0,
		      "'%s' refused", size_ok[_i].text);
	ck_assert_msg(v == size_ok[_i].want, "'%s' gave %llu",
		      size_ok[_i].text, (unsigned long long)v);
}
END_TEST

START_TEST(size_parse_rejects_overflow)
{
	static const char *const big[] = {
		"18446744073709551616", "99999999999999999999999",
		"16777216T", "17179869184G", "1.5e30",
	};
	uint64_t v = 7;

	ck_assert_int_eq(vmir_size_parse(big[0], &v), -ERANGE);
	ck_assert_int_eq(vmir_size_parse(big[1], &v), -ERANGE);
	ck_assert_int_eq(vmir_size_parse(big[2], &v), -ERANGE);
	ck_assert_int_eq(vmir_size_parse(big[3], &v), -ERANGE);
	/* not a number we know, but never a wrapped value */
	ck_assert_int_eq(vmir_size_parse(big[4], &v), -EINVAL);
	ck_assert_uint_eq(v, 7);
}
END_TEST

START_TEST(size_parse_rejects_junk)
{
	static const char *const junk[] = {
		"", "K", "12X", " 12", "12 ", "-1", "+1", "1.5", "1.0", "1.1K",
		"1..5K", "12KK", "0x10", "1.K", ".5K", "4KiBB", "4iB",
		"1P",
	};
	uint64_t v = 7;

	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		ck_assert_msg(vmir_size_parse(junk[i], &v) == -EINVAL,
			      "'%s' accepted", junk[i]);
		ck_assert_uint_eq(v, 7);
	}
}
END_TEST

START_TEST(size_format_cases)
{
	static const struct {
		uint64_t v;
		const char *want;
	} cases[] = {
		{ 0, "0" },
		{ 123, "123" },
		{ 1023, "1023" },
		{ 1024, "1K" },
		{ 256ull << 10, "256K" },
		{ 1ull << 20, "1M" },
		{ 3ull << 29, "1.5G" },
		{ 1ull << 40, "1T" },
		{ 2048ull << 40, "2048T" },
		{ 1536, "1.5K" },
	};
	char buf[32];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		vmir_size_format(cases[i].v, buf, sizeof(buf));
		ck_assert_str_eq(buf, cases[i].want);
	}
}
END_TEST

START_TEST(size_format_output_parses_back)
{
	static const uint64_t vals[] = { 1, 4096, 5u << 20, 3ull << 39,
					 7ull << 40, 65536 + 32768 };
	char buf[32];
	uint64_t v;

	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		vmir_size_format(vals[i], buf, sizeof(buf));
		ck_assert_int_eq(vmir_size_parse(buf, &v), 0);
		ck_assert_uint_eq(v, vals[i]);
	}
}
END_TEST

/* --- key files ------------------------------------------------------------------ */

START_TEST(key_generate_then_load_round_trips)
{
	uint8_t key[VMIR_KEY_LEN], key2[VMIR_KEY_LEN];
	char path[PATH_MAX], text[256], hex[3] = { 0 };
	struct stat st;

	path_in_tmp(path, "cluster.key");
	ck_assert_int_eq(vmir_key_generate(path), 0);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	ck_assert_uint_eq(read_file(path, text, sizeof(text)), 65);
	ck_assert_int_eq(text[64], '\n');
	for (int i = 0; i < 64; i++)
		ck_assert_msg(strchr("0123456789abcdef", text[i]),
			      "byte %d is '%c'", i, text[i]);

	memset(key, 0, sizeof(key));
	ck_assert_int_eq(vmir_key_load(path, key), 0);
	for (int i = 0; i < VMIR_KEY_LEN; i++) {
		hex[0] = text[2 * i];
		hex[1] = text[2 * i + 1];
		ck_assert_uint_eq(key[i], strtoul(hex, NULL, 16));
	}

	/* a second key is different */
	path_in_tmp(path, "other.key");
	ck_assert_int_eq(vmir_key_generate(path), 0);
	ck_assert_int_eq(vmir_key_load(path, key2), 0);
	ck_assert(memcmp(key, key2, sizeof(key)) != 0);
}
END_TEST

START_TEST(key_generate_refuses_existing_file)
{
	char path[PATH_MAX], before[256], after[256];
	const char *log;

	path_in_tmp(path, "cluster.key");
	ck_assert_int_eq(vmir_key_generate(path), 0);
	read_file(path, before, sizeof(before));
	capture_begin();
	ck_assert_int_eq(vmir_key_generate(path), -EEXIST);
	log = capture_end();
	ck_assert_ptr_nonnull(strstr(log, path));
	ck_assert_ptr_nonnull(strstr(log, "exists"));
	read_file(path, after, sizeof(after));
	ck_assert_str_eq(before, after);
}
END_TEST

START_TEST(key_load_refuses_mode_0644)
{
	char path[PATH_MAX], want[PATH_MAX + 64];
	uint8_t key[VMIR_KEY_LEN];
	const char *log;

	path_in_tmp(path, "cluster.key");
	ck_assert_int_eq(vmir_key_generate(path), 0);
	ck_assert_int_eq(chmod(path, 0644), 0);
	capture_begin();
	ck_assert_int_eq(vmir_key_load(path, key), -EPERM);
	log = capture_end();
	ck_assert_ptr_nonnull(strstr(log, "error: "));
	ck_assert_ptr_nonnull(strstr(log, "has mode 0644; it must be 0600"));
	snprintf(want, sizeof(want), "chmod 600 %s", path);
	ck_assert_ptr_nonnull(strstr(log, want));

	/* group-only bits are refused too; 0400 is fine */
	ck_assert_int_eq(chmod(path, 0640), 0);
	capture_begin();
	ck_assert_int_eq(vmir_key_load(path, key), -EPERM);
	log = capture_end();
	ck_assert_ptr_nonnull(strstr(log, "has mode 0640"));
	ck_assert_int_eq(chmod(path, 0400), 0);
	ck_assert_int_eq(vmir_key_load(path, key), 0);
}
END_TEST

START_TEST(key_load_refuses_non_hex_key)
{
	static const char *const bad[] = {
		/* 63 digits */
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1\n",
		/* 65 digits */
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f0\n",
		/* a non-hex digit */
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1g\n",
		/* trailing junk */
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\nx\n",
		"",
		"hello\n",
	};
	char path[PATH_MAX];
	uint8_t key[VMIR_KEY_LEN];
	const char *log;

	path_in_tmp(path, "bad.key");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		unlink(path);
		write_file(path, bad[i], 0600);
		capture_begin();
		ck_assert_msg(vmir_key_load(path, key) == -EINVAL,
			      "key %zu accepted", i);
		log = capture_end();
		ck_assert_ptr_nonnull(strstr(log, "is not a vmir key"));
		ck_assert_ptr_nonnull(strstr(log, "vmirctl keygen"));
	}
}
END_TEST

START_TEST(key_load_accepts_upper_case_and_no_newline)
{
	static const char text[] =
		"000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F";
	char path[PATH_MAX];
	uint8_t key[VMIR_KEY_LEN];

	path_in_tmp(path, "plain.key");
	write_file(path, text, 0600);
	ck_assert_int_eq(vmir_key_load(path, key), 0);
	for (int i = 0; i < VMIR_KEY_LEN; i++)
		ck_assert_uint_eq(key[i], i);
}
END_TEST

START_TEST(key_load_refuses_missing_file_and_directory)
{
	char path[PATH_MAX];
	uint8_t key[VMIR_KEY_LEN];
	const char *log;

	path_in_tmp(path, "missing.key");
	capture_begin();
	ck_assert_int_eq(vmir_key_load(path, key), -ENOENT);
	log = capture_end();
	ck_assert_ptr_nonnull(strstr(log, path));

	ck_assert_int_eq(chmod(tmpdir, 0700), 0);
	capture_begin();
	ck_assert_int_eq(vmir_key_load(tmpdir, key), -EPERM);
	log = capture_end();
	ck_assert_ptr_nonnull(strstr(log, "not a regular file"));
}
END_TEST

/* --- configuration ----------------------------------------------------------------- */

static char conf_path[PATH_MAX];

/* a key next to the config and the config with body */
static void make_conf(const char *body)
{
	char key[PATH_MAX];
	struct stat st;

	path_in_tmp(key, "cluster.key");
	if (stat(key, &st) != 0)
		ck_assert_int_eq(vmir_key_generate(key), 0);
	path_in_tmp(conf_path, "vmir.conf");
	write_file(conf_path, body, 0644);
}

static const char good_conf[] =
	"; test cluster\n"
	"[cluster]\n"
	"key = cluster.key\n"
	"replicas = 3\n"
	"chunk_size = 64K\n"
	"timeout_ms = 250\n"
	"\n"
	"[versiond]\n"
	"addr = 127.0.0.1:7400\n"
	"[chunkd]\n"
	"servers = 127.0.0.1:7401, 127.0.0.1:7402,127.0.0.1:7403 ,[::1]:7404\n";

START_TEST(conf_load_parses_every_field)
{
	struct vmir_conf *conf = malloc(sizeof(*conf));
	uint8_t key[VMIR_KEY_LEN];
	char err[512], want_key[PATH_MAX];

	ck_assert_ptr_nonnull(conf);
	make_conf(good_conf);
	err[0] = 'x';
	ck_assert_int_eq(vmir_conf_load(conf_path, conf, err, sizeof(err)), 0);
	ck_assert_str_eq(err, "");
	ck_assert_str_eq(conf->path, conf_path);
	path_in_tmp(want_key, "cluster.key");
	ck_assert_str_eq(conf->key_path, want_key);
	ck_assert_int_eq(vmir_key_load(want_key, key), 0);
	ck_assert_mem_eq(conf->key, key, VMIR_KEY_LEN);
	ck_assert_uint_eq(conf->replicas, 3);
	ck_assert_uint_eq(conf->chunk_size, 64 << 10);
	ck_assert_uint_eq(conf->timeout_ms, 250);
	ck_assert_str_eq(conf->versiond.text, "127.0.0.1:7400");
	ck_assert_int_eq(conf->versiond.ss.ss_family, AF_INET);
	ck_assert_uint_eq(conf->nchunkd, 4);
	ck_assert_str_eq(conf->chunkd[0].text, "127.0.0.1:7401");
	ck_assert_str_eq(conf->chunkd[1].text, "127.0.0.1:7402");
	ck_assert_str_eq(conf->chunkd[2].text, "127.0.0.1:7403");
	ck_assert_str_eq(conf->chunkd[3].text, "[::1]:7404");
	ck_assert_int_eq(conf->chunkd[3].ss.ss_family, AF_INET6);
	free(conf);
}
END_TEST

START_TEST(conf_load_applies_defaults_and_caps_replicas)
{
	struct vmir_conf *conf = malloc(sizeof(*conf));
	char err[512], keypath[PATH_MAX], body[PATH_MAX + 256];

	ck_assert_ptr_nonnull(conf);
	make_conf("");
	path_in_tmp(keypath, "cluster.key");
	snprintf(body, sizeof(body),
		 "[cluster]\nkey = %s\n[versiond]\naddr = localhost:7400\n"
		 "[chunkd]\nservers = 127.0.0.1:7401\n", keypath);
	make_conf(body);
	ck_assert_int_eq(vmir_conf_load(conf_path, conf, err, sizeof(err)), 0);
	ck_assert_str_eq(conf->key_path, keypath);
	ck_assert_uint_eq(conf->chunk_size, VMIR_CHUNK_DEFAULT);
	ck_assert_uint_eq(conf->timeout_ms, 5000);
	/* default 2, capped at the single server */
	ck_assert_uint_eq(conf->replicas, 1);
	ck_assert_uint_eq(conf->nchunkd, 1);
	free(conf);
}
END_TEST

START_TEST(conf_load_uses_vmir_conf_env)
{
	struct vmir_conf *conf = malloc(sizeof(*conf));
	char err[512];

	ck_assert_ptr_nonnull(conf);
	make_conf(good_conf);
	setenv("VMIR_CONF", conf_path, 1);
	ck_assert_int_eq(vmir_conf_load(NULL, conf, err, sizeof(err)), 0);
	ck_assert_str_eq(conf->path, conf_path);
	ck_assert_uint_eq(conf->nchunkd, 4);

	unsetenv("VMIR_CONF");
	ck_assert_int_eq(vmir_conf_load(NULL, conf, err, sizeof(err)),
			 -EINVAL);
	ck_assert_str_eq(err,
			 "no configuration: pass --conf FILE or set VMIR_CONF");
	free(conf);
}
END_TEST

/* load body; expect ret and an error containing the file name and want */
static void expect_conf_error(const char *body, int ret, const char *want)
{
	struct vmir_conf *conf = malloc(sizeof(*conf));
	char err[512];

	ck_assert_ptr_nonnull(conf);
	make_conf(body);
	err[0] = '\0';
	ck_assert_int_eq(vmir_conf_load(conf_path, conf, err, sizeof(err)),
			 ret);
	ck_assert_msg(strstr(err, conf_path) != NULL,
		      "error '%s' does not name the file", err);
	ck_assert_msg(strstr(err, want) != NULL,
		      "error '%s' does not say '%s'", err, want);
	free(conf);
}

START_TEST(conf_load_rejects_unknown_key)
{
	char want[PATH_MAX + 64];

	make_conf("");
	snprintf(want, sizeof(want), "%s:7: unknown key 'foo' in [chunkd]",
		 conf_path);
	expect_conf_error("[cluster]\nkey = cluster.key\n[versiond]\n"
			  "addr = 127.0.0.1:1\n[chunkd]\n"
			  "servers = 127.0.0.1:2\nfoo = bar\n",
			  -EINVAL, want);
	expect_conf_error("[cluster]\nkey = cluster.key\nreplica = 2\n",
			  -EINVAL, ":3: unknown key 'replica' in [cluster]");
}
END_TEST

START_TEST(conf_load_rejects_unknown_section)
{
	expect_conf_error("[cluster]\nkey = cluster.key\n[chunkds]\n"
			  "servers = 127.0.0.1:2\n",
			  -EINVAL, ":4: unknown section [chunkds]");
}
END_TEST

START_TEST(conf_load_rejects_syntax_error)
{
	expect_conf_error("[cluster]\nkey = cluster.key\nthis is not ini\n",
			  -EINVAL, ":3: syntax error");
}
END_TEST

START_TEST(conf_load_rejects_missing_versiond_addr)
{
	expect_conf_error("[cluster]\nkey = cluster.key\n[chunkd]\n"
			  "servers = 127.0.0.1:2\n",
			  -EINVAL, "missing addr in [versiond]");
}
END_TEST

START_TEST(conf_load_rejects_missing_servers_and_key)
{
	expect_conf_error("[cluster]\nkey = cluster.key\n[versiond]\n"
			  "addr = 127.0.0.1:1\n",
			  -EINVAL, "missing servers in [chunkd]");
	expect_conf_error("[versiond]\naddr = 127.0.0.1:1\n[chunkd]\n"
			  "servers = 127.0.0.1:2\n",
			  -EINVAL, "missing key in [cluster]");
}
END_TEST

START_TEST(conf_load_rejects_bad_chunk_size)
{
	expect_conf_error("[cluster]\nkey = cluster.key\nchunk_size = 96K\n",
			  -EINVAL, ":3: bad chunk_size '96K'");
	expect_conf_error("[cluster]\nkey = cluster.key\nchunk_size = 8M\n",
			  -EINVAL, ":3: bad chunk_size '8M'");
	expect_conf_error("[cluster]\nkey = cluster.key\nchunk_size = lots\n",
			  -EINVAL, ":3: bad chunk_size 'lots'");
}
END_TEST

START_TEST(conf_load_rejects_bad_numbers_and_addresses)
{
	expect_conf_error("[cluster]\nreplicas = 0\n", -EINVAL,
			  ":2: bad replicas '0'");
	expect_conf_error("[cluster]\ntimeout_ms = -5\n", -EINVAL,
			  ":2: bad timeout_ms '-5'");
	expect_conf_error("[versiond]\naddr = 127.0.0.1\n", -EINVAL,
			  ":2: bad addr '127.0.0.1'");
	expect_conf_error("[chunkd]\nservers = 127.0.0.1:1, nope\n", -EINVAL,
			  ":2: bad server address 'nope'");
	expect_conf_error("[chunkd]\nservers = 127.0.0.1:1, 127.0.0.1:1\n",
			  -EINVAL, "listed twice");
}
END_TEST

START_TEST(conf_load_joins_continuation_lines)
{
	struct vmir_conf *conf = malloc(sizeof(*conf));
	char err[512];

	ck_assert_ptr_nonnull(conf);
	make_conf("[cluster]\nkey = cluster.key\n[versiond]\n"
		  "addr = 127.0.0.1:1\n[chunkd]\n"
		  "servers = 127.0.0.1:2, 127.0.0.1:3,\n"
		  "  127.0.0.1:4\n"
		  "  , 127.0.0.1:5\n");
	ck_assert_int_eq(vmir_conf_load(conf_path, conf, err, sizeof(err)), 0);
	ck_assert_uint_eq(conf->nchunkd, 4);
	ck_assert_str_eq(conf->chunkd[2].text, "127.0.0.1:4");
	ck_assert_str_eq(conf->chunkd[3].text, "127.0.0.1:5");
	free(conf);
}
END_TEST

START_TEST(conf_load_rejects_overlong_line)
{
	char body[4096];
	int n;

	/* libinih would silently split this line: it must be refused */
	n = snprintf(body, sizeof(body),
		     "[cluster]\nkey = cluster.key\n[versiond]\n"
		     "addr = 127.0.0.1:1\n[chunkd]\nservers = ");
	for (int i = 0; i < 20; i++)
		n += snprintf(body + n, sizeof(body) - n, "%s127.0.0.1:%d",
			      i ? ", " : "", 7400 + i);
	snprintf(body + n, sizeof(body) - n, "\n");
	expect_conf_error(body, -EINVAL, ":6: line longer than");
}
END_TEST

START_TEST(conf_load_rejects_missing_key_file)
{
	char want[PATH_MAX];

	path_in_tmp(want, "absent.key");
	expect_conf_error("[cluster]\nkey = absent.key\n[versiond]\n"
			  "addr = 127.0.0.1:1\n[chunkd]\n"
			  "servers = 127.0.0.1:2\n",
			  -ENOENT, want);
}
END_TEST

START_TEST(conf_load_rejects_world_readable_key)
{
	char key[PATH_MAX];

	make_conf("");
	path_in_tmp(key, "cluster.key");
	ck_assert_int_eq(chmod(key, 0644), 0);
	expect_conf_error("[cluster]\nkey = cluster.key\n[versiond]\n"
			  "addr = 127.0.0.1:1\n[chunkd]\n"
			  "servers = 127.0.0.1:2\n",
			  -EPERM, "chmod 600");
}
END_TEST

START_TEST(conf_load_reports_missing_file)
{
	struct vmir_conf *conf = malloc(sizeof(*conf));
	char err[512], path[PATH_MAX];

	ck_assert_ptr_nonnull(conf);
	path_in_tmp(path, "nothere.conf");
	ck_assert_int_eq(vmir_conf_load(path, conf, err, sizeof(err)),
			 -ENOENT);
	ck_assert_ptr_nonnull(strstr(err, path));
	free(conf);
}
END_TEST

/* --- addresses --------------------------------------------------------------------- */

START_TEST(addr_parse_ipv4)
{
	struct vmir_addr a;
	struct sockaddr_in *sin = (struct sockaddr_in *)&a.ss;

	ck_assert_int_eq(vmir_addr_parse("127.0.0.1:7400", &a), 0);
	ck_assert_int_eq(sin->sin_family, AF_INET);
	ck_assert_uint_eq(ntohs(sin->sin_port), 7400);
	ck_assert_uint_eq(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
	ck_assert_uint_eq(a.len, sizeof(struct sockaddr_in));
	ck_assert_str_eq(a.text, "127.0.0.1:7400");
	/* port 0: listen on an ephemeral port */
	ck_assert_int_eq(vmir_addr_parse("127.0.0.1:0", &a), 0);
	ck_assert_uint_eq(ntohs(sin->sin_port), 0);
}
END_TEST

START_TEST(addr_parse_ipv6)
{
	struct vmir_addr a;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a.ss;

	ck_assert_int_eq(vmir_addr_parse("[::1]:65535", &a), 0);
	ck_assert_int_eq(sin6->sin6_family, AF_INET6);
	ck_assert_uint_eq(ntohs(sin6->sin6_port), 65535);
	ck_assert(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
	ck_assert_uint_eq(a.len, sizeof(struct sockaddr_in6));
	ck_assert_str_eq(a.text, "[::1]:65535");
}
END_TEST

START_TEST(addr_parse_localhost)
{
	struct vmir_addr a;
	struct sockaddr_in *sin = (struct sockaddr_in *)&a.ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a.ss;

	ck_assert_int_eq(vmir_addr_parse("localhost:1234", &a), 0);
	ck_assert_str_eq(a.text, "localhost:1234");
	if (a.ss.ss_family == AF_INET) {
		ck_assert_uint_eq(ntohl(sin->sin_addr.s_addr),
				  INADDR_LOOPBACK);
		ck_assert_uint_eq(ntohs(sin->sin_port), 1234);
	} else {
		ck_assert_int_eq(a.ss.ss_family, AF_INET6);
		ck_assert(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
		ck_assert_uint_eq(ntohs(sin6->sin6_port), 1234);
	}
}
END_TEST

START_TEST(addr_parse_rejects_junk_and_missing_port)
{
	static const char *const bad[] = {
		"", "127.0.0.1", "127.0.0.1:", ":7400", "127.0.0.1:abc",
		"127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:+80",
		"127.0.0.1:80x", "::1:80", "[::1]80", "[::1]", "[::1:80",
		"[127.0.0.1]:80", "bad host:80", "999.0.0.1:80",
		"[zz::1]:80",
		/* longer than VMIR_ADDR_MAX */
		"a-very-long-host-name-that-does-not-fit-in-the-text-field.invalid:65535",
	};
	struct vmir_addr a;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(vmir_addr_parse(bad[i], &a) != 0,
			      "'%s' accepted", bad[i]);
}
END_TEST

START_TEST(numeric_addresses_only_name_ips_and_a_port)
{
	static const char *const good[] = {
		"10.0.0.1:7410", "[fd00::3]:1", "127.0.0.1:65535",
	};
	static const char *const bad[] = {
		"localhost:7410", "node1:7410", "10.0.0.1:0", "10.0.0.1",
		"10.0.0.1:", "10.0.0.1:x", "fd00::3:7410", "[fd00::3]7410",
		"[10.0.0.1]:7410", "999.0.0.1:80", "", "10.0.0.1:70000",
	};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(vmir_addr_numeric(good[i]) == 0, "'%s' refused",
			      good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(vmir_addr_numeric(bad[i]) != 0, "'%s' accepted",
			      bad[i]);
	ck_assert_int_ne(vmir_addr_numeric(NULL), 0);
}
END_TEST

static int listen_on(int family, const char *text)
{
	struct vmir_addr a;
	int fd;

	ck_assert_int_eq(vmir_addr_parse(text, &a), 0);
	fd = socket(family, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a.ss, a.len), 0);
	ck_assert_int_eq(listen(fd, 1), 0);
	return fd;
}

START_TEST(sock_name_reports_bound_address)
{
	char name[VMIR_ADDR_MAX], small[8];
	struct vmir_addr back;
	int fd;

	fd = listen_on(AF_INET, "127.0.0.1:0");
	ck_assert_int_eq(vmir_sock_name(fd, name, sizeof(name)), 0);
	ck_assert_int_eq(strncmp(name, "127.0.0.1:", 10), 0);
	ck_assert_int_gt(atoi(name + 10), 0);
	/* the output parses back to the same port */
	ck_assert_int_eq(vmir_addr_parse(name, &back), 0);
	ck_assert_int_eq(vmir_sock_name(fd, small, sizeof(small)), -ENOSPC);
	close(fd);

	fd = listen_on(AF_INET6, "[::1]:0");
	ck_assert_int_eq(vmir_sock_name(fd, name, sizeof(name)), 0);
	ck_assert_int_eq(strncmp(name, "[::1]:", 6), 0);
	ck_assert_int_gt(atoi(name + 6), 0);
	ck_assert_int_eq(vmir_addr_parse(name, &back), 0);
	close(fd);
}
END_TEST

/* --- logging ------------------------------------------------------------------------ */

START_TEST(log_levels_have_prefixes)
{
	const char *log;

	vmir_log_init("/usr/sbin/vmir-test");
	vmir_log_set_verbose(false);
	capture_begin();
	vmir_err("bad %s", "thing");
	vmir_warn("odd %d", 7);
	vmir_info("plain");
	vmir_dbg("hidden");
	log = capture_end();
	ck_assert_str_eq(log,
			 "vmir-test: error: bad thing\n"
			 "vmir-test: warning: odd 7\n"
			 "vmir-test: plain\n");

	vmir_log_set_verbose(true);
	capture_begin();
	vmir_dbg("shown %u", 1u);
	log = capture_end();
	ck_assert_str_eq(log, "vmir-test: debug: shown 1\n");
}
END_TEST

START_TEST(log_debug_enabled_by_env)
{
	const char *log;

	/* each test runs in a fresh process: the env is read once, here */
	setenv("VMIR_DEBUG", "1", 1);
	vmir_log_init("envtest");
	capture_begin();
	vmir_dbg("from env");
	log = capture_end();
	ck_assert_str_eq(log, "envtest: debug: from env\n");
}
END_TEST

START_TEST(log_preserves_errno)
{
	vmir_log_init("errnotest");
	capture_begin();
	/* writing to a closed stderr fails with EBADF: errno must survive */
	close(STDERR_FILENO);
	errno = ENOSPC;
	vmir_err("x");
	ck_assert_int_eq(errno, ENOSPC);
	capture_end();
}
END_TEST

/* --- misc ------------------------------------------------------------------------- */

START_TEST(read_write_full_over_pipe)
{
	char buf[100000], got[100000];
	int p[2], status;
	pid_t pid;

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (char)(i * 31);
	ck_assert_int_eq(pipe(p), 0);
	/* larger than the pipe buffer: the writer runs in a child */
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(p[0]);
		_exit(vmir_write_full(p[1], buf, sizeof(buf)) ? 1 : 0);
	}
	close(p[1]);
	ck_assert_int_eq(vmir_read_full(p[0], got, sizeof(got)), 0);
	ck_assert_mem_eq(got, buf, sizeof(buf));
	/* the writer is done: EOF */
	ck_assert_int_eq(vmir_read_full(p[0], got, 1), -EIO);
	close(p[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}
END_TEST

START_TEST(pread_pwrite_full_at_offset)
{
	char path[PATH_MAX], got[6] = { 0 };
	struct stat st;
	int fd;

	path_in_tmp(path, "data");
	fd = open(path, O_RDWR | O_CREAT, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(vmir_pwrite_full(fd, "hello", 5, 1 << 20), 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(st.st_size, (1 << 20) + 5);
	ck_assert_int_eq(vmir_pread_full(fd, got, 5, 1 << 20), 0);
	ck_assert_str_eq(got, "hello");
	ck_assert_int_eq(vmir_pread_full(fd, got, 6, 1 << 20), -EIO);
	ck_assert_int_eq(vmir_pwrite_full(-1, "x", 1, 0), -EBADF);
	close(fd);
}
END_TEST

/* text-like content: compresses well, as file system blocks do */
static void fill_text(uint8_t *b, size_t len, unsigned int seed)
{
	static const char *words[] = { "kernel ", "block ", "chunk ", "vmir ",
				       "mirror\n", "version ", "tree " };

	srand(seed);
	for (size_t i = 0; i < len;) {
		const char *w = words[rand() % 7];

		for (; *w && i < len; w++)
			b[i++] = (uint8_t)*w;
	}
}

START_TEST(zpack_packs_only_when_it_saves_an_eighth)
{
	static uint8_t text[256 << 10], noise[256 << 10], back[256 << 10];
	void *z;
	uint32_t zlen;

	fill_text(text, sizeof(text), 1);
	zlen = vmir_zpack(text, sizeof(text), &z);
	ck_assert_uint_gt(zlen, 0);
	ck_assert_uint_le(zlen, sizeof(text) - sizeof(text) / 8);
	ck_assert_int_eq(vmir_zunpack(back, sizeof(back), z, zlen),
			 sizeof(text));
	ck_assert_mem_eq(back, text, sizeof(text));
	free(z);

	/* random bytes do not shrink: they travel as they are */
	srand(2);
	for (size_t i = 0; i < sizeof(noise); i++)
		noise[i] = (uint8_t)rand();
	ck_assert_uint_eq(vmir_zpack(noise, sizeof(noise), &z), 0);
	ck_assert_ptr_null(z);

	/* a sixteenth of text in noise saves less than an eighth: raw */
	memcpy(noise + sizeof(noise) - sizeof(noise) / 16, text,
	       sizeof(noise) / 16);
	ck_assert_uint_eq(vmir_zpack(noise, sizeof(noise), &z), 0);
}
END_TEST

START_TEST(zunpack_refuses_what_is_not_a_fitting_frame)
{
	static uint8_t text[64 << 10], back[64 << 10];
	uint8_t *z, junk[4096];
	uint32_t zlen;

	fill_text(text, sizeof(text), 3);
	zlen = vmir_zpack(text, sizeof(text), (void **)&z);
	ck_assert_uint_gt(zlen, 0);
	/* content larger than the destination */
	ck_assert_int_eq(vmir_zunpack(back, sizeof(back) - 1, z, zlen),
			 -EBADMSG);
	/* cut short */
	ck_assert_int_eq(vmir_zunpack(back, sizeof(back), z, zlen - 1),
			 -EBADMSG);
	/* not a frame at all */
	memset(junk, 0x5a, sizeof(junk));
	ck_assert_int_eq(vmir_zunpack(back, sizeof(back), junk, sizeof(junk)),
			 -EBADMSG);
	free(z);

	/* unpacking in place: the packed bytes at the buffer's start */
	zlen = vmir_zpack(text, sizeof(text), (void **)&z);
	memcpy(back, z, zlen);
	ck_assert_int_eq(vmir_zunpack_inplace(back, sizeof(back), zlen),
			 sizeof(text));
	ck_assert_mem_eq(back, text, sizeof(text));
	free(z);
}
END_TEST

START_TEST(buf_is_zero_cases)
{
	static uint8_t buf[4096];

	ck_assert(vmir_buf_is_zero(buf, 0));
	ck_assert(vmir_buf_is_zero(buf, sizeof(buf)));
	buf[4095] = 1;
	ck_assert(!vmir_buf_is_zero(buf, sizeof(buf)));
	ck_assert(vmir_buf_is_zero(buf, 4095));
	buf[4095] = 0;
	buf[0] = 1;
	ck_assert(!vmir_buf_is_zero(buf, sizeof(buf)));
	ck_assert(!vmir_buf_is_zero(buf, 1));
	memset(buf, 0x01, sizeof(buf));
	ck_assert(!vmir_buf_is_zero(buf, sizeof(buf)));
}
END_TEST

START_TEST(fsync_dir_cases)
{
	char path[PATH_MAX];

	ck_assert_int_eq(vmir_fsync_dir(tmpdir), 0);
	path_in_tmp(path, "file");
	write_file(path, "x", 0600);
	ck_assert_int_eq(vmir_fsync_dir(path), -ENOTDIR);
	path_in_tmp(path, "nodir");
	ck_assert_int_eq(vmir_fsync_dir(path), -ENOENT);
}
END_TEST

START_TEST(clocks_advance)
{
	uint64_t m1 = vmir_mono_ns(), m2, now = vmir_now_ns();

	/* after 2020-01-01 */
	ck_assert_uint_gt(now, 1577836800ull * 1000000000ull);
	usleep(1000);
	m2 = vmir_mono_ns();
	ck_assert_uint_ge(m2 - m1, 1000000);
}
END_TEST

Suite *util_suite(void)
{
	Suite *s = suite_create("util");
	TCase *tc;

	tc = tcase_create("sizes");
	tcase_add_loop_test(tc, size_parse_accepts_units, 0,
			    sizeof(size_ok) / sizeof(size_ok[0]));
	tcase_add_test(tc, size_parse_rejects_overflow);
	tcase_add_test(tc, size_parse_rejects_junk);
	tcase_add_test(tc, size_format_cases);
	tcase_add_test(tc, size_format_output_parses_back);
	suite_add_tcase(s, tc);

	tc = tcase_create("keys");
	tcase_add_checked_fixture(tc, tmpdir_setup, tmpdir_teardown);
	tcase_add_test(tc, key_generate_then_load_round_trips);
	tcase_add_test(tc, key_generate_refuses_existing_file);
	tcase_add_test(tc, key_load_refuses_mode_0644);
	tcase_add_test(tc, key_load_refuses_non_hex_key);
	tcase_add_test(tc, key_load_accepts_upper_case_and_no_newline);
	tcase_add_test(tc, key_load_refuses_missing_file_and_directory);
	suite_add_tcase(s, tc);

	tc = tcase_create("config");
	tcase_add_checked_fixture(tc, tmpdir_setup, tmpdir_teardown);
	tcase_add_test(tc, conf_load_parses_every_field);
	tcase_add_test(tc, conf_load_applies_defaults_and_caps_replicas);
	tcase_add_test(tc, conf_load_uses_vmir_conf_env);
	tcase_add_test(tc, conf_load_rejects_unknown_key);
	tcase_add_test(tc, conf_load_rejects_unknown_section);
	tcase_add_test(tc, conf_load_rejects_syntax_error);
	tcase_add_test(tc, conf_load_rejects_missing_versiond_addr);
	tcase_add_test(tc, conf_load_rejects_missing_servers_and_key);
	tcase_add_test(tc, conf_load_rejects_bad_chunk_size);
	tcase_add_test(tc, conf_load_rejects_bad_numbers_and_addresses);
	tcase_add_test(tc, conf_load_joins_continuation_lines);
	tcase_add_test(tc, conf_load_rejects_overlong_line);
	tcase_add_test(tc, conf_load_rejects_missing_key_file);
	tcase_add_test(tc, conf_load_rejects_world_readable_key);
	tcase_add_test(tc, conf_load_reports_missing_file);
	suite_add_tcase(s, tc);

	tc = tcase_create("addresses");
	tcase_add_test(tc, addr_parse_ipv4);
	tcase_add_test(tc, addr_parse_ipv6);
	tcase_add_test(tc, addr_parse_localhost);
	tcase_add_test(tc, addr_parse_rejects_junk_and_missing_port);
	tcase_add_test(tc, numeric_addresses_only_name_ips_and_a_port);
	tcase_add_test(tc, sock_name_reports_bound_address);
	suite_add_tcase(s, tc);

	tc = tcase_create("logging");
	tcase_add_checked_fixture(tc, tmpdir_setup, tmpdir_teardown);
	tcase_add_test(tc, log_levels_have_prefixes);
	tcase_add_test(tc, log_debug_enabled_by_env);
	tcase_add_test(tc, log_preserves_errno);
	suite_add_tcase(s, tc);

	tc = tcase_create("io");
	tcase_add_checked_fixture(tc, tmpdir_setup, tmpdir_teardown);
	tcase_add_test(tc, read_write_full_over_pipe);
	tcase_add_test(tc, pread_pwrite_full_at_offset);
	tcase_add_test(tc, buf_is_zero_cases);
	tcase_add_test(tc, zpack_packs_only_when_it_saves_an_eighth);
	tcase_add_test(tc, zunpack_refuses_what_is_not_a_fitting_frame);
	tcase_add_test(tc, fsync_dir_cases);
	tcase_add_test(tc, clocks_advance);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(util_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
