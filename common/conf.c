// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The client configuration file (INI, parsed with libinih) and the key
 * files it names: 64 hex digits in a file of mode 0600.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>
#include <sodium.h>

#include "vmir_util.h"

/* --- key files ---------------------------------------------------------------- */

#define VMIR_KEY_HEX	(2 * VMIR_KEY_LEN)

int vmir_key_generate(const char *path)
{
	uint8_t key[VMIR_KEY_LEN];
	char hex[VMIR_KEY_HEX + 2];
	int fd, ret;

	if (sodium_init() < 0) {
		vmir_err("cannot initialise libsodium");
		return -EIO;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		if (ret == -EEXIST)
			vmir_err("key file %s already exists; refusing to overwrite it (remove it first to make a new key)",
				 path);
		else
			vmir_err("cannot create key file %s: %s", path,
				 strerror(-ret));
		return ret;
	}
	randombytes_buf(key, sizeof(key));
	sodium_bin2hex(hex, sizeof(hex), key, sizeof(key));
	hex[VMIR_KEY_HEX] = '\n';
	hex[VMIR_KEY_HEX + 1] = '\0';
	ret = vmir_write_full(fd, hex, VMIR_KEY_HEX + 1);
	if (!ret && fsync(fd) < 0)
		ret = -errno;
	sodium_memzero(key, sizeof(key));
	sodium_memzero(hex, sizeof(hex));
	if (close(fd) < 0 && !ret)
		ret = -errno;
	if (ret) {
		vmir_err("cannot write key file %s: %s", path, strerror(-ret));
		unlink(path);
	}
	return ret;
}

/* load and check a key file; on error the reason goes to msg */
static int vmir_key_load_msg(const char *path, uint8_t key[VMIR_KEY_LEN],
			     char *msg, size_t msglen)
{
	char buf[VMIR_KEY_HEX + 64];
	struct stat st;
	ssize_t n;
	size_t len = 0, i;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		ret = -errno;
		if (ret == -ENOENT)
			snprintf(msg, msglen,
				 "cannot open key file %s: %s (create one with vmirctl keygen %s)",
				 path, strerror(-ret), path);
		else
			snprintf(msg, msglen, "cannot open key file %s: %s",
				 path, strerror(-ret));
		return ret;
	}
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		snprintf(msg, msglen, "cannot stat key file %s: %s", path,
			 strerror(-ret));
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = -EPERM;
		snprintf(msg, msglen,
			 "key file %s is not a regular file; it must be a regular file of mode 0600",
			 path);
		goto out_close;
	}
	if (st.st_mode & 077) {
		ret = -EPERM;
		snprintf(msg, msglen,
			 "key file %s has mode %04o; it must be 0600 (run: chmod 600 %s)",
			 path, (unsigned int)(st.st_mode & 07777), path);
		goto out_close;
	}
	for (;;) {
		n = read(fd, buf + len, sizeof(buf) - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			snprintf(msg, msglen, "cannot read key file %s: %s",
				 path, strerror(-ret));
			goto out_close;
		}
		if (n == 0)
			break;
		len += n;
		if (len == sizeof(buf))
			break;
	}
	ret = -EINVAL;
	if (len < VMIR_KEY_HEX || len == sizeof(buf))
		goto out_bad;
	for (i = 0; i < VMIR_KEY_HEX; i++)
		if (!isxdigit((unsigned char)buf[i]))
			goto out_bad;
	for (; i < len; i++)
		if (!isspace((unsigned char)buf[i]))
			goto out_bad;
	for (i = 0; i < VMIR_KEY_LEN; i++) {
		char pair[3] = { buf[2 * i], buf[2 * i + 1], '\0' };

		key[i] = (uint8_t)strtoul(pair, NULL, 16);
	}
	ret = 0;
	goto out_clear;

out_bad:
	snprintf(msg, msglen,
		 "key file %s is not a vmir key (expected 64 hex digits; create one with vmirctl keygen %s)",
		 path, path);
out_clear:
	sodium_memzero(buf, sizeof(buf));
out_close:
	close(fd);
	return ret;
}

int vmir_key_load(const char *path, uint8_t key[VMIR_KEY_LEN])
{
	char msg[2 * PATH_MAX + 160];
	int ret;

	ret = vmir_key_load_msg(path, key, msg, sizeof(msg));
	if (ret)
		vmir_err("%s", msg);
	return ret;
}
/* --- configuration ------------------------------------------------------------- */

struct vmir_conf_ctx {
	struct vmir_conf *conf;
	char msg[512];		/* first error, without the "file:line: " */
	int ret;
	bool have_key, have_versiond;
};

static char *vmir_trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static int vmir_parse_uint(const char *s, unsigned long long max,
			   unsigned long long *out)
{
	unsigned long long v;
	char *end;

	if (!isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int vmir_conf_fail(struct vmir_conf_ctx *c, int ret, const char *fmt,
			  ...) __attribute__((format(printf, 3, 4)));

static int vmir_conf_fail(struct vmir_conf_ctx *c, int ret, const char *fmt,
			  ...)
{
	va_list ap;

	if (!c->ret) {
		va_start(ap, fmt);
		vsnprintf(c->msg, sizeof(c->msg), fmt, ap);
		va_end(ap);
		c->ret = ret;
	}
	return 0;	/* tells inih this line is an error */
}

static int vmir_conf_servers(struct vmir_conf_ctx *c, const char *value)
{
	struct vmir_conf *conf = c->conf;
	char *copy, *tok, *save = NULL, *item;
	int ret = 1;

	copy = strdup(value);
	if (!copy)
		return vmir_conf_fail(c, -ENOMEM, "out of memory");
	for (tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		item = vmir_trim(tok);
		if (!*item)
			continue;
		if (conf->nchunkd >= VMIR_MAX_SERVERS) {
			ret = vmir_conf_fail(c, -EINVAL,
					     "too many servers in [chunkd] (at most %d)",
					     VMIR_MAX_SERVERS);
			break;
		}
		if (vmir_addr_parse(item, &conf->chunkd[conf->nchunkd])) {
			ret = vmir_conf_fail(c, -EINVAL,
					     "bad server address '%s' in [chunkd] servers (expected HOST:PORT or [IPv6]:PORT)",
					     item);
			break;
		}
		for (unsigned int i = 0; i < conf->nchunkd; i++) {
			if (!strcmp(conf->chunkd[i].text, item)) {
				ret = vmir_conf_fail(c, -EINVAL,
						     "server '%s' listed twice in [chunkd] servers",
						     item);
				goto out_free;
			}
		}
		conf->nchunkd++;
	}
out_free:
	free(copy);
	return ret;
}

static int vmir_conf_handler(void *user, const char *section,
			     const char *name, const char *value)
{
	struct vmir_conf_ctx *c = user;
	struct vmir_conf *conf = c->conf;
	unsigned long long u;
	uint64_t sz = 0;

	if (!strcmp(section, "cluster")) {
		if (!strcmp(name, "key")) {
			if (!value[0])
				return vmir_conf_fail(c, -EINVAL,
						      "empty key path in [cluster]");
			if (value[0] == '/' || !strchr(conf->path, '/')) {
				if ((size_t)snprintf(conf->key_path,
						     sizeof(conf->key_path),
						     "%s", value) >=
				    sizeof(conf->key_path))
					goto too_long;
			} else {
				const char *slash = strrchr(conf->path, '/');
				int dlen = (int)(slash - conf->path);

				if ((size_t)snprintf(conf->key_path,
						     sizeof(conf->key_path),
						     "%.*s/%s", dlen ? dlen : 1,
						     conf->path, value) >=
				    sizeof(conf->key_path))
					goto too_long;
			}
			c->have_key = true;
			return 1;
		}
		if (!strcmp(name, "replicas")) {
			if (vmir_parse_uint(value, VMIR_MAX_SERVERS, &u) ||
			    u < 1)
				return vmir_conf_fail(c, -EINVAL,
						      "bad replicas '%s' in [cluster] (expected 1..%d)",
						      value, VMIR_MAX_SERVERS);
			conf->replicas = (unsigned int)u;
			return 1;
		}
		if (!strcmp(name, "chunk_size")) {
			if (vmir_size_parse(value, &sz) ||
			    !vmir_chunk_size_valid(sz))
				return vmir_conf_fail(c, -EINVAL,
						      "bad chunk_size '%s' in [cluster] (expected a power of two from 4K to 4M)",
						      value);
			conf->chunk_size = (uint32_t)sz;
			return 1;
		}
		if (!strcmp(name, "timeout_ms")) {
			if (vmir_parse_uint(value, 86400000ull, &u) || u < 1)
				return vmir_conf_fail(c, -EINVAL,
						      "bad timeout_ms '%s' in [cluster] (expected 1..86400000)",
						      value);
			conf->timeout_ms = (unsigned int)u;
			return 1;
		}
	} else if (!strcmp(section, "versiond")) {
		if (!strcmp(name, "addr")) {
			if (vmir_addr_parse(value, &conf->versiond))
				return vmir_conf_fail(c, -EINVAL,
						      "bad addr '%s' in [versiond] (expected HOST:PORT or [IPv6]:PORT)",
						      value);
			c->have_versiond = true;
			return 1;
		}
	} else if (!strcmp(section, "chunkd")) {
		if (!strcmp(name, "servers"))
			return vmir_conf_servers(c, value);
	} else {
		return vmir_conf_fail(c, -EINVAL,
				      "unknown section [%s] (expected [cluster], [versiond] or [chunkd])",
				      section);
	}
	return vmir_conf_fail(c, -EINVAL, "unknown key '%s' in [%s]", name,
			      section);

too_long:
	return vmir_conf_fail(c, -ENAMETOOLONG, "key path '%s' is too long",
			      value);
}

/* the number of the first line too long for libinih, or 0; rewinds f */
static int vmir_conf_long_line(FILE *f)
{
	int ch, line = 1, len = 0, bad = 0;

	while ((ch = getc(f)) != EOF) {
		if (ch == '\n') {
			line++;
			len = 0;
			continue;
		}
		if (++len > INI_MAX_LINE - 2) {
			bad = line;
			break;
		}
	}
	rewind(f);
	return bad;
}

int vmir_conf_load(const char *path, struct vmir_conf *conf, char *err,
		   size_t errlen)
{
	struct vmir_conf_ctx c;
	char dummy[1];
	char msg[2 * PATH_MAX + 160];
	FILE *f;
	int line, ret;

	if (!err || !errlen) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = '\0';
	if (!path || !path[0])
		path = getenv("VMIR_CONF");
	if (!path || !path[0]) {
		snprintf(err, errlen,
			 "no configuration: pass --conf FILE or set VMIR_CONF");
		return -EINVAL;
	}

	memset(conf, 0, sizeof(*conf));
	if ((size_t)snprintf(conf->path, sizeof(conf->path), "%s", path) >=
	    sizeof(conf->path)) {
		snprintf(err, errlen, "config file path %s is too long", path);
		return -ENAMETOOLONG;
	}
	conf->replicas = 2;
	conf->chunk_size = VMIR_CHUNK_DEFAULT;
	conf->timeout_ms = 5000;

	memset(&c, 0, sizeof(c));
	c.conf = conf;
	f = fopen(path, "re");
	if (!f) {
		ret = -errno;
		snprintf(err, errlen, "cannot open config file %s: %s", path,
			 strerror(-ret));
		return ret;
	}
	/* libinih splits lines longer than its buffer: refuse them instead */
	line = vmir_conf_long_line(f);
	if (line) {
		fclose(f);
		snprintf(err, errlen,
			 "%s:%d: line longer than %d characters; continue long values on indented lines",
			 path, line, INI_MAX_LINE - 2);
		return -EINVAL;
	}
	line = ini_parse_file(f, vmir_conf_handler, &c);
	fclose(f);
	if (line == -2) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	if (line != 0) {
		if (c.ret) {
			snprintf(err, errlen, "%s:%d: %s", path, line, c.msg);
			return c.ret;
		}
		snprintf(err, errlen,
			 "%s:%d: syntax error (expected [section] or key = value)",
			 path, line);
		return -EINVAL;
	}
	if (!c.have_key) {
		snprintf(err, errlen, "%s: missing key in [cluster]", path);
		return -EINVAL;
	}
	if (!c.have_versiond) {
		snprintf(err, errlen, "%s: missing addr in [versiond]", path);
		return -EINVAL;
	}
	if (conf->nchunkd == 0) {
		snprintf(err, errlen, "%s: missing servers in [chunkd]", path);
		return -EINVAL;
	}
	if (conf->replicas > conf->nchunkd)
		conf->replicas = conf->nchunkd;
	ret = vmir_key_load_msg(conf->key_path, conf->key, msg, sizeof(msg));
	if (ret) {
		snprintf(err, errlen, "%s: %s", path, msg);
		return ret;
	}
	return 0;
}
