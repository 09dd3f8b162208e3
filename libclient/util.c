// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Internal helpers: logging, key files, addresses, sizes, the client
 * configuration file and full-length I/O.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <ini.h>
#include <sodium.h>

#include "vmir_util.h"

/* --- logging ---------------------------------------------------------------- */

static char vmir_prog[64] = "vmir";
static bool vmir_verbose;
static bool vmir_env_debug;
static pthread_once_t vmir_env_once = PTHREAD_ONCE_INIT;

static void vmir_env_init(void)
{
	const char *v = getenv("VMIR_DEBUG");

	vmir_env_debug = v && v[0] && strcmp(v, "0") != 0;
}

void vmir_log_init(const char *prog)
{
	const char *base;

	if (prog) {
		base = strrchr(prog, '/');
		base = base ? base + 1 : prog;
		snprintf(vmir_prog, sizeof(vmir_prog), "%s", base);
	}
	pthread_once(&vmir_env_once, vmir_env_init);
}

void vmir_log_set_verbose(bool verbose)
{
	vmir_verbose = verbose;
}

/* one write per message so lines from several threads do not interleave */
static void vmir_vlog(const char *level, const char *fmt, va_list ap)
{
	int saved = errno;
	char buf[2048];
	int n;

	if (level)
		n = snprintf(buf, sizeof(buf), "%s: %s: ", vmir_prog, level);
	else
		n = snprintf(buf, sizeof(buf), "%s: ", vmir_prog);
	if (n < 0)
		n = 0;
	if ((size_t)n < sizeof(buf))
		vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	n = strlen(buf);
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	if (n == 0 || buf[n - 1] != '\n')
		buf[n++] = '\n';
	buf[n] = '\0';
	fputs(buf, stderr);
	fflush(stderr);
	errno = saved;
}

void vmir_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmir_vlog("error", fmt, ap);
	va_end(ap);
}

void vmir_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmir_vlog("warning", fmt, ap);
	va_end(ap);
}

void vmir_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmir_vlog(NULL, fmt, ap);
	va_end(ap);
}

void vmir_dbg(const char *fmt, ...)
{
	va_list ap;

	pthread_once(&vmir_env_once, vmir_env_init);
	if (!vmir_verbose && !vmir_env_debug)
		return;
	va_start(ap, fmt);
	vmir_vlog("debug", fmt, ap);
	va_end(ap);
}

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

/* --- addresses ---------------------------------------------------------------- */

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

/* --- sizes ------------------------------------------------------------------- */

/*
 * "123", "256K", "1M", "2g", "1.5G", "4KiB", "4KB", "512B". A fractional
 * part needs a unit and must give a whole number of bytes.
 */
int vmir_size_parse(const char *s, uint64_t *out)
{
	uint64_t ip = 0, frac = 0, fdiv = 1, mult = 1, v, fv;
	const char *p = s;
	unsigned int shift = 0;
	bool have_frac = false;

	if (!s || !isdigit((unsigned char)*p))
		return -EINVAL;
	for (; isdigit((unsigned char)*p); p++) {
		if (__builtin_mul_overflow(ip, 10, &ip) ||
		    __builtin_add_overflow(ip, (uint64_t)(*p - '0'), &ip))
			return -ERANGE;
	}
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		have_frac = true;
		for (; isdigit((unsigned char)*p); p++) {
			if (fdiv >= 1000000000000ull)
				return -EINVAL;	/* absurd precision */
			frac = frac * 10 + (uint64_t)(*p - '0');
			fdiv *= 10;
		}
	}
	switch (*p) {
	case 'k': case 'K': shift = 10; break;
	case 'm': case 'M': shift = 20; break;
	case 'g': case 'G': shift = 30; break;
	case 't': case 'T': shift = 40; break;
	default: break;
	}
	if (shift) {
		p++;
		if ((p[0] == 'i' || p[0] == 'I') && (p[1] == 'b' || p[1] == 'B'))
			p += 2;
		else if (p[0] == 'b' || p[0] == 'B')
			p++;
	} else if (*p == 'b' || *p == 'B') {
		p++;
	}
	if (*p)
		return -EINVAL;
	if (have_frac && !shift)
		return -EINVAL;
	mult = 1ull << shift;
	if (__builtin_mul_overflow(ip, mult, &v))
		return -ERANGE;
	if (have_frac) {
		/* frac < fdiv <= 1e12 and mult <= 2^40: fits in 128 bits */
		unsigned __int128 f = (unsigned __int128)frac * mult;

		if (f % fdiv)
			return -EINVAL;
		fv = (uint64_t)(f / fdiv);
		if (__builtin_add_overflow(v, fv, &v))
			return -ERANGE;
	}
	*out = v;
	return 0;
}

void vmir_size_format(uint64_t v, char *out, size_t outlen)
{
	static const char units[] = "KMGT";
	unsigned int u;
	uint64_t base;

	if (!outlen)
		return;
	if (v < 1024) {
		snprintf(out, outlen, "%llu", (unsigned long long)v);
		return;
	}
	for (u = 0; u < 3 && v >= (1ull << (10 * (u + 2))); u++)
		;
	base = 1ull << (10 * (u + 1));
	if (v % base == 0)
		snprintf(out, outlen, "%llu%c",
			 (unsigned long long)(v / base), units[u]);
	else
		snprintf(out, outlen, "%.1f%c", (double)v / (double)base,
			 units[u]);
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

/* --- misc ---------------------------------------------------------------------- */

uint64_t vmir_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t vmir_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void vmir_heap_keep_buffers(size_t max_free)
{
	mallopt(M_MMAP_THRESHOLD, 2 * VMIR_DATA_MAX);
	mallopt(M_TRIM_THRESHOLD, max_free);
}

uint64_t vmir_coarse_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int vmir_write_full(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	ssize_t n;

	while (len) {
		n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= n;
	}
	return 0;
}

int vmir_read_full(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	ssize_t n;

	while (len) {
		n = read(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= n;
	}
	return 0;
}

int vmir_pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;
	ssize_t n;

	while (len) {
		n = pwrite(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= n;
		off += n;
	}
	return 0;
}

int vmir_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;
	ssize_t n;

	while (len) {
		n = pread(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= n;
		off += n;
	}
	return 0;
}

bool vmir_buf_is_zero(const void *buf, size_t len)
{
	const uint8_t *p = buf;

	if (!len)
		return true;
	/* byte 0 is zero and every byte equals its successor */
	return p[0] == 0 && memcmp(p, p + 1, len - 1) == 0;
}

int vmir_fsync_dir(const char *dir)
{
	int fd, ret = 0;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		ret = -errno;
	close(fd);
	return ret;
}
