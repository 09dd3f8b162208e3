// SPDX-License-Identifier: GPL-2.0
/*
 * vmir-genl-test: a test client that speaks the vmir generic netlink
 * protocol (include/uapi/linux/vmir.h) to the real module, for the kernel
 * tests in tests/kernel/genl/. Not the production helper: it serves
 * misses from a local image file instead of the chunk servers.
 *
 *   vmir-genl-test add --image NAME --version V --size BYTES
 *                      --chunk-size BYTES --mirror FILE [--timeout-ms MS]
 *                      [--all-present] [--defer] [--read-only]
 *                      [--state-file FILE] [--map-offset BYTES
 *                      [--map-gen G]]           prints the device id
 *   vmir-genl-test set-state --dev N --state-file FILE
 *   vmir-genl-test start --dev N
 *   vmir-genl-test stop --dev N
 *   vmir-genl-test remove --dev N
 *   vmir-genl-test status --dev N               key=value lines
 *   vmir-genl-test list                         one line per device
 *   vmir-genl-test state --dev N [--save FILE]  nchunks, present, dirty,
 *                                               [commit] as index ranges
 *   vmir-genl-test check-counters --dev N      the counts GET_STATUS
 *                      reports must be the bits set in the GET_STATE maps
 *                      (call it with no request in flight)
 *   vmir-genl-test ready --dev N --chunk C[,C...] [--status -ERRNO]
 *   vmir-genl-test prefetch --dev N --chunk C[,C...]  prints the chunks
 *                                               claimed, one per line
 *   vmir-genl-test access --dev N [--start S]   "accessed N lost L", then
 *                      the first-access order, one chunk per line (all
 *                      of it, GET_ACCESS after GET_ACCESS; with --start
 *                      one GET_ACCESS from rank S)
 *   vmir-genl-test commit-begin --dev N         prints the commit count
 *   vmir-genl-test captured --dev N --chunk C[,C...]
 *   vmir-genl-test capture --dev N --mirror FILE --out DIR
 *                      copy every commit chunk not in DIR yet to
 *                      DIR/chunk.C and report it captured
 *   vmir-genl-test commit-end --dev N [--status -ERRNO] [--version V]
 *   vmir-genl-test set-version --dev N --version V
 *   vmir-genl-test register [--takeover]   register, then exit (the socket
 *                      closes: the module must forget the helper)
 *   vmir-genl-test helper [--serve N:MIRROR:SOURCE ...]
 *                      [--log FILE] [--ready-file FILE] [--delay-ms MS]
 *                      [--fail CHUNK] [--no-answer] [--capture-dir DIR]
 *                      [--takeover] [--exit-after EVENTS] [--log-batches]
 *   vmir-genl-test malformed --mirror FILE      invalid requests, each
 *                      must fail with its errno; prints one line each
 *
 * Any single-request subcommand takes --expect ERRNO_NAME: it then
 * succeeds only if the kernel answers with that error. Versions are
 * numbers (--version 2). The netlink plumbing is the one vmir-helper and
 * vmirctl use (tools/nl/vmir_nl.c); the checks of what the module sends
 * are this program's own.
 * The helper answers MISS by copying the chunk from SOURCE into MIRROR
 * (punching a hole for an all-zero chunk), CAPTURE_NEEDED by copying the
 * chunk from MIRROR to DIR/chunk.C; it logs "MISS dev chunk" /
 * "CAPTURE dev chunk" lines (with --log-batches "MISS dev chunk mN", N
 * numbering the event messages, so that a test sees which chunks came in
 * one message) and exits on SIGTERM or SIGINT.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <linux/falloc.h>
#include <poll.h>

#include "uapi/linux/vmir.h"
#include "vmir_nl.h"

#define VG_MAX_SERVE	64
#define VG_MAX_EVENTS	65536

static const char *prog = "vmir-genl-test";

#define VG_MAX_CHUNKS	64		/* --chunk list */

struct vg_opts {
	const char *image, *mirror, *state_file, *save, *out;
	const char *log, *ready_file, *capture_dir, *expect;
	uint64_t size;
	uint32_t chunk_size, timeout_ms, dev, version, start;
	uint32_t chunks[VG_MAX_CHUNKS];
	int nchunks;
	int status, delay_ms, exit_after;
	bool has_dev, has_timeout, all_present, defer, read_only, has_start;
	uint64_t map_offset, map_gen;
	bool no_answer, takeover, log_batches;
	int64_t fail[16];
	int nfail;
	struct vg_serve {
		uint32_t dev;
		const char *mirror, *source;
		int mfd, sfd;
		uint32_t chunk_size;
		uint64_t size;
	} serve[VG_MAX_SERVE];
	int nserve;
};

/* A connection to the family. Events seen while waiting for an answer
 * are queued for the helper loop, one per chunk.
 */
struct vg {
	struct vmir_nl nl;
	struct vg_event {
		uint8_t cmd;
		uint32_t dev, chunk;
		uint32_t msg;		/* the event message it came in */
	} *events;
	int nevents;
	uint32_t nmsgs;			/* event messages received */
};

static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static const struct {
	const char *name;
	int err;
} vg_errnames[] = {
	{ "EPERM", EPERM }, { "ENOENT", ENOENT }, { "EIO", EIO },
	{ "EBADF", EBADF }, { "ENOMEM", ENOMEM }, { "EBUSY", EBUSY },
	{ "EINVAL", EINVAL }, { "ENOSPC", ENOSPC }, { "ERANGE", ERANGE },
	{ "ENODEV", ENODEV }, { "EOPNOTSUPP", EOPNOTSUPP },
	{ "EMSGSIZE", EMSGSIZE }, { "EEXIST", EEXIST },
	{ "EALREADY", EALREADY },
};

static int vg_errno(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(vg_errnames) / sizeof(vg_errnames[0]); i++)
		if (!strcmp(vg_errnames[i].name, name))
			return vg_errnames[i].err;
	die("unknown errno name '%s'", name);
	return 0;
}

static const char *vg_errname(int err)
{
	size_t i;

	if (!err)
		return "success";
	for (i = 0; i < sizeof(vg_errnames) / sizeof(vg_errnames[0]); i++)
		if (vg_errnames[i].err == err)
			return vg_errnames[i].name;
	return "E?";
}

/* MISS and CAPTURE_NEEDED: one queued event per chunk of the list */
static void vg_on_msg(void *arg, uint8_t cmd, struct nlattr **tb)
{
	struct vg *g = arg;
	const uint32_t *chunks;
	size_t n, i;

	if (cmd != VMIR_CMD_MISS && cmd != VMIR_CMD_CAPTURE_NEEDED)
		return;
	if (!tb[VMIR_ATTR_DEV_ID] || vmir_nl_get_chunks(tb, &chunks, &n) ||
	    !n)
		die("event %u without DEV_ID or CHUNKS", cmd);
	g->nmsgs++;
	for (i = 0; i < n; i++) {
		if (g->nevents == VG_MAX_EVENTS)
			die("event queue overflow");
		g->events[g->nevents].cmd = cmd;
		g->events[g->nevents].dev = nla_get_u32(tb[VMIR_ATTR_DEV_ID]);
		g->events[g->nevents].chunk = chunks[i];
		g->events[g->nevents].msg = g->nmsgs;
		g->nevents++;
	}
}

static void vg_on_error(void *arg, uint8_t cmd, struct nlattr **tb, int err,
			const char *msg)
{
	fprintf(stderr, "%s: message %u failed: %s (%s)\n", prog, cmd,
		strerror(-err), msg);
}

static void vg_connect(struct vg *g)
{
	struct vmir_nl_handler h = {
		.on_msg = vg_on_msg, .on_error = vg_on_error, .arg = g,
	};
	char err[256];

	memset(g, 0, sizeof(*g));
	g->events = calloc(VG_MAX_EVENTS, sizeof(*g->events));
	if (!g->events)
		die("out of memory");
	if (vmir_nl_open(&g->nl, 1 << 20, err, sizeof(err)))
		die("%s (insmod kmod/vmir.ko)", err);
	vmir_nl_set_handler(&g->nl, &h);
	nl_socket_set_nonblocking(g->nl.sk);
}

static struct nl_msg *vg_msg(struct vg *g, uint8_t cmd, int flags)
{
	struct nl_msg *msg = nlmsg_alloc_size(256 * 1024);

	if (!msg)
		die("out of memory");
	if (!genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, g->nl.family, 0,
			 flags, cmd, VMIR_GENL_VERSION))
		die("genlmsg_put failed");
	return msg;
}

struct vg_reply {
	int (*parse)(struct nlattr **tb, void *arg);
	void *arg;
};

static int vg_reply(void *arg, uint8_t cmd, struct nlattr **tb)
{
	struct vg_reply *r = arg;

	return r->parse ? r->parse(tb, r->arg) : 0;
}

/* Send @msg, wait for its ack (or NLMSG_DONE of a dump); 0 or -errno. */
static int vg_send(struct vg *g, struct nl_msg *msg,
		   int (*parse)(struct nlattr **tb, void *arg), void *arg,
		   char *errmsg, size_t errlen)
{
	struct vg_reply r = { parse, arg };
	char buf[VMIR_NL_MSG_MAX];

	if (!errmsg) {
		errmsg = buf;
		errlen = sizeof(buf);
	}
	return vmir_nl_call(&g->nl, msg, vg_reply, &r, errmsg, errlen);
}

/*
 * Send and judge by --expect: without it the request must succeed; with
 * it, it must fail with that errno. Returns true when the request
 * succeeded (the caller goes on to print results).
 */
static bool vg_do(struct vg *g, const struct vg_opts *o, const char *what,
		  struct nl_msg *msg,
		  int (*parse)(struct nlattr **tb, void *arg), void *arg)
{
	char errmsg[256] = "";
	int ret;

	ret = vg_send(g, msg, parse, arg, errmsg, sizeof(errmsg));
	if (o->expect) {
		if (ret == -vg_errno(o->expect)) {
			printf("%s failed as expected: %s (%s)\n", what,
			       o->expect, errmsg);
			exit(0);
		}
		fprintf(stderr, "%s: %s: expected %s, got %s (%s)\n", prog,
			what, o->expect, ret ? vg_errname(-ret) : "success",
			errmsg);
		exit(1);
	}
	if (ret) {
		fprintf(stderr, "%s: %s failed: %s%s%s\n", prog, what,
			strerror(-ret), errmsg[0] ? ": " : "", errmsg);
		exit(1);
	}
	return true;
}

static uint64_t vg_num(const char *s, const char *what)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end || !*s)
		die("bad number '%s' for %s", s, what);
	return v;
}

/* "C" or "C,C,..." */
static void vg_parse_chunks(const char *v, struct vg_opts *o)
{
	char *copy = strdup(v), *tok, *save = NULL;

	if (!copy)
		die("out of memory");
	o->nchunks = 0;
	for (tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (o->nchunks == VG_MAX_CHUNKS)
			die("more than %d chunks in --chunk", VG_MAX_CHUNKS);
		o->chunks[o->nchunks++] = vg_num(tok, "--chunk");
	}
	free(copy);
	if (!o->nchunks)
		die("--chunk needs at least one chunk");
}

static void vg_parse_opts(int argc, char **argv, struct vg_opts *o)
{
	int i;

	memset(o, 0, sizeof(*o));
	for (i = 0; i < argc; i++) {
		const char *k = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool flag = true;

#define VG_NEEDV() do { if (!v) die("%s needs a value", k); flag = false; } while (0)
		if (!strcmp(k, "--all-present")) {
			o->all_present = true;
		} else if (!strcmp(k, "--defer")) {
			o->defer = true;
		} else if (!strcmp(k, "--read-only")) {
			o->read_only = true;
		} else if (!strcmp(k, "--no-answer")) {
			o->no_answer = true;
		} else if (!strcmp(k, "--log-batches")) {
			o->log_batches = true;
		} else if (!strcmp(k, "--takeover")) {
			o->takeover = true;
		} else {
			VG_NEEDV();
			if (!strcmp(k, "--image"))
				o->image = v;
			else if (!strcmp(k, "--version"))
				o->version = vg_num(v, k);
			else if (!strcmp(k, "--mirror"))
				o->mirror = v;
			else if (!strcmp(k, "--state-file"))
				o->state_file = v;
			else if (!strcmp(k, "--save"))
				o->save = v;
			else if (!strcmp(k, "--out"))
				o->out = v;
			else if (!strcmp(k, "--log"))
				o->log = v;
			else if (!strcmp(k, "--ready-file"))
				o->ready_file = v;
			else if (!strcmp(k, "--capture-dir"))
				o->capture_dir = v;
			else if (!strcmp(k, "--expect"))
				o->expect = v;
			else if (!strcmp(k, "--size"))
				o->size = vg_num(v, k);
			else if (!strcmp(k, "--chunk-size"))
				o->chunk_size = vg_num(v, k);
			else if (!strcmp(k, "--map-offset"))
				o->map_offset = vg_num(v, k);
			else if (!strcmp(k, "--map-gen"))
				o->map_gen = vg_num(v, k);
			else if (!strcmp(k, "--timeout-ms")) {
				o->timeout_ms = vg_num(v, k);
				o->has_timeout = true;
			} else if (!strcmp(k, "--dev")) {
				o->dev = vg_num(v, k);
				o->has_dev = true;
			} else if (!strcmp(k, "--start")) {
				o->start = vg_num(v, k);
				o->has_start = true;
			} else if (!strcmp(k, "--chunk")) {
				vg_parse_chunks(v, o);
			} else if (!strcmp(k, "--status"))
				o->status = strtol(v, NULL, 0);
			else if (!strcmp(k, "--delay-ms"))
				o->delay_ms = vg_num(v, k);
			else if (!strcmp(k, "--exit-after"))
				o->exit_after = vg_num(v, k);
			else if (!strcmp(k, "--fail")) {
				if (o->nfail == 16)
					die("too many --fail");
				o->fail[o->nfail++] = vg_num(v, k);
			} else if (!strcmp(k, "--serve")) {
				struct vg_serve *s = &o->serve[o->nserve];
				char *copy = strdup(v), *c1, *c2;

				if (o->nserve == VG_MAX_SERVE)
					die("too many --serve");
				c1 = copy ? strchr(copy, ':') : NULL;
				c2 = c1 ? strchr(c1 + 1, ':') : NULL;
				if (!c2)
					die("--serve wants DEV:MIRROR:SOURCE");
				*c1 = *c2 = '\0';
				s->dev = vg_num(copy, k);
				s->mirror = c1 + 1;
				s->source = c2 + 1;
				o->nserve++;
			} else {
				die("unknown option %s", k);
			}
		}
		if (!flag)
			i++;
#undef VG_NEEDV
	}
}

static void vg_need(bool ok, const char *what)
{
	if (!ok)
		die("missing %s", what);
}

/* ---- bitmaps ---------------------------------------------------------- */

struct vg_state {
	uint32_t nchunks;
	uint8_t *present, *dirty, *commit;
	bool has_commit;
};

static void vg_state_alloc(struct vg_state *s, uint32_t nchunks)
{
	size_t n = (nchunks + 7) / 8;

	s->nchunks = nchunks;
	s->present = calloc(1, n);
	s->dirty = calloc(1, n);
	s->commit = calloc(1, n);
	if (!s->present || !s->dirty || !s->commit)
		die("out of memory");
}

static bool vg_bit(const uint8_t *map, uint32_t i)
{
	return map[i / 8] & (1U << (i % 8));
}

static void vg_print_ranges(const char *name, const uint8_t *map, uint32_t n)
{
	uint32_t i = 0, start;
	bool first = true;

	printf("%s=", name);
	while (i < n) {
		if (!vg_bit(map, i)) {
			i++;
			continue;
		}
		start = i;
		while (i < n && vg_bit(map, i))
			i++;
		printf("%s%u", first ? "" : ",", start);
		if (i - 1 > start)
			printf("-%u", i - 1);
		first = false;
	}
	printf("\n");
}

/* ---- add / state ------------------------------------------------------- */

static int vg_parse_dev_id(struct nlattr **tb, void *arg)
{
	uint32_t *id = arg;

	if (tb[VMIR_ATTR_DEV_ID])
		*id = nla_get_u32(tb[VMIR_ATTR_DEV_ID]);
	return 0;
}

/* Put one bitmap segment of @s, chunks [start, start + 8 * len). */
static void vg_put_segment(struct nl_msg *msg, const struct vg_state *s,
			   uint32_t start, uint32_t len)
{
	if (nla_put_u32(msg, VMIR_ATTR_MAP_START, start) ||
	    nla_put(msg, VMIR_ATTR_MAP_PRESENT, len, s->present + start / 8) ||
	    nla_put(msg, VMIR_ATTR_MAP_DIRTY, len, s->dirty + start / 8))
		die("message too small for a bitmap segment");
}

/* State file: "nchunks N\n" then the present and dirty bytes. */
static void vg_load_state(const char *path, struct vg_state *s)
{
	FILE *f = fopen(path, "r");
	uint32_t n;
	size_t len;

	if (!f || fscanf(f, "nchunks %u\n", &n) != 1)
		die("cannot read state file %s", path);
	vg_state_alloc(s, n);
	len = (n + 7) / 8;
	if (fread(s->present, 1, len, f) != len ||
	    fread(s->dirty, 1, len, f) != len)
		die("state file %s is truncated", path);
	fclose(f);
}

static void vg_set_state_segments(struct vg *g, const struct vg_opts *o,
				  uint32_t dev, const struct vg_state *s,
				  uint32_t from)
{
	uint32_t nbytes = (s->nchunks + 7) / 8, off, len;
	struct nl_msg *msg;

	for (off = from; off < nbytes; off += len) {
		len = nbytes - off < VMIR_MAP_SEG_MAX ? nbytes - off :
			VMIR_MAP_SEG_MAX;
		msg = vg_msg(g, VMIR_CMD_SET_STATE, 0);
		nla_put_u32(msg, VMIR_ATTR_DEV_ID, dev);
		vg_put_segment(msg, s, off * 8, len);
		vg_do(g, o, "SET_STATE", msg, NULL, NULL);
	}
}

static int cmd_add(struct vg *g, struct vg_opts *o)
{
	struct vg_state s = { 0 };
	bool have_state = o->all_present || o->state_file;
	uint32_t nchunks, nbytes, first = 0, id = UINT32_MAX;
	uint64_t flags = 0;
	struct nl_msg *msg;
	int fd;

	vg_need(o->image && o->version && o->size && o->chunk_size &&
		o->mirror, "--image/--version/--size/--chunk-size/--mirror");
	fd = open(o->mirror, O_RDWR);
	if (fd < 0)
		die("cannot open mirror %s: %s", o->mirror, strerror(errno));
	nchunks = (o->size + o->chunk_size - 1) / o->chunk_size;
	if (o->state_file) {
		vg_load_state(o->state_file, &s);
		if (s.nchunks != nchunks)
			die("state file has %u chunks, the device %u",
			    s.nchunks, nchunks);
	} else if (o->all_present) {
		vg_state_alloc(&s, nchunks);
		memset(s.present, 0xff, nchunks / 8);
		if (nchunks % 8)
			s.present[nchunks / 8] = (1U << (nchunks % 8)) - 1;
	}
	nbytes = (nchunks + 7) / 8;
	/* More state than one segment: start after SET_STATE. */
	if (o->defer || (have_state && nbytes > VMIR_MAP_SEG_MAX))
		flags |= VMIR_ADD_F_DEFER_START;
	if (o->read_only)
		flags |= VMIR_ADD_F_READ_ONLY;

	msg = vg_msg(g, VMIR_CMD_ADD_DEVICE, 0);
	nla_put_string(msg, VMIR_ATTR_IMAGE, o->image);
	nla_put_u32(msg, VMIR_ATTR_VERSION, o->version);
	nla_put_u64(msg, VMIR_ATTR_SIZE, o->size);
	nla_put_u32(msg, VMIR_ATTR_CHUNK_SIZE, o->chunk_size);
	nla_put_u32(msg, VMIR_ATTR_MIRROR_FD, fd);
	if (o->has_timeout)
		nla_put_u32(msg, VMIR_ATTR_TIMEOUT_MS, o->timeout_ms);
	if (o->map_offset)
		nla_put_u64(msg, VMIR_ATTR_MAP_OFFSET, o->map_offset);
	if (o->map_gen)
		nla_put_u64(msg, VMIR_ATTR_MAP_GEN, o->map_gen);
	if (flags)
		nla_put_u64(msg, VMIR_ATTR_FLAGS, flags);
	if (have_state) {
		first = nbytes < VMIR_MAP_SEG_MAX ? nbytes : VMIR_MAP_SEG_MAX;
		vg_put_segment(msg, &s, 0, first);
	}
	vg_do(g, o, "ADD_DEVICE", msg, vg_parse_dev_id, &id);
	close(fd);
	if (id == UINT32_MAX)
		die("ADD_DEVICE reply without DEV_ID");
	if (have_state && first < nbytes)
		vg_set_state_segments(g, o, id, &s, first);
	if ((flags & VMIR_ADD_F_DEFER_START) && !o->defer) {
		msg = vg_msg(g, VMIR_CMD_START_DEVICE, 0);
		nla_put_u32(msg, VMIR_ATTR_DEV_ID, id);
		vg_do(g, o, "START_DEVICE", msg, NULL, NULL);
	}
	printf("%u\n", id);
	return 0;
}

static int cmd_set_state(struct vg *g, struct vg_opts *o)
{
	struct vg_state s;

	vg_need(o->has_dev && o->state_file, "--dev/--state-file");
	vg_load_state(o->state_file, &s);
	vg_set_state_segments(g, o, o->dev, &s, 0);
	return 0;
}

static int vg_parse_state(struct nlattr **tb, void *arg)
{
	struct vg_state *s = arg;
	uint32_t start, len;

	if (!tb[VMIR_ATTR_NCHUNKS] || !tb[VMIR_ATTR_MAP_START] ||
	    !tb[VMIR_ATTR_MAP_PRESENT] || !tb[VMIR_ATTR_MAP_DIRTY])
		die("GET_STATE message lacks attributes");
	if (!s->present)
		vg_state_alloc(s, nla_get_u32(tb[VMIR_ATTR_NCHUNKS]));
	start = nla_get_u32(tb[VMIR_ATTR_MAP_START]);
	len = nla_len(tb[VMIR_ATTR_MAP_PRESENT]);
	if (start % 8 || start / 8 + len > (s->nchunks + 7) / 8 ||
	    nla_len(tb[VMIR_ATTR_MAP_DIRTY]) != (int)len)
		die("GET_STATE segment out of range: start %u len %u", start,
		    len);
	memcpy(s->present + start / 8, nla_data(tb[VMIR_ATTR_MAP_PRESENT]),
	       len);
	memcpy(s->dirty + start / 8, nla_data(tb[VMIR_ATTR_MAP_DIRTY]), len);
	if (tb[VMIR_ATTR_MAP_COMMIT]) {
		if (nla_len(tb[VMIR_ATTR_MAP_COMMIT]) != (int)len)
			die("MAP_COMMIT length differs");
		memcpy(s->commit + start / 8,
		       nla_data(tb[VMIR_ATTR_MAP_COMMIT]), len);
		s->has_commit = true;
	}
	return 0;
}

static void vg_get_state(struct vg *g, const struct vg_opts *o, uint32_t dev,
			 struct vg_state *s)
{
	struct nl_msg *msg;

	memset(s, 0, sizeof(*s));
	msg = vg_msg(g, VMIR_CMD_GET_STATE, NLM_F_DUMP);
	nla_put_u32(msg, VMIR_ATTR_DEV_ID, dev);
	vg_do(g, o, "GET_STATE", msg, vg_parse_state, s);
	if (!s->present)
		die("GET_STATE returned no segment");
}

static int cmd_state(struct vg *g, struct vg_opts *o)
{
	struct vg_state s;
	FILE *f;

	vg_need(o->has_dev, "--dev");
	vg_get_state(g, o, o->dev, &s);
	printf("nchunks=%u\n", s.nchunks);
	vg_print_ranges("present", s.present, s.nchunks);
	vg_print_ranges("dirty", s.dirty, s.nchunks);
	if (s.has_commit)
		vg_print_ranges("commit", s.commit, s.nchunks);
	if (o->save) {
		f = fopen(o->save, "w");
		if (!f || fprintf(f, "nchunks %u\n", s.nchunks) < 0 ||
		    fwrite(s.present, 1, (s.nchunks + 7) / 8, f) !=
		    (s.nchunks + 7) / 8 ||
		    fwrite(s.dirty, 1, (s.nchunks + 7) / 8, f) !=
		    (s.nchunks + 7) / 8 || fclose(f))
			die("cannot write %s", o->save);
	}
	return 0;
}

/* ---- check-counters ----------------------------------------------------- */

struct vg_counts {
	uint32_t present, dirty, commit;
	bool has_commit;
};

static int vg_parse_counts(struct nlattr **tb, void *arg)
{
	struct vg_counts *c = arg;

	if (!tb[VMIR_ATTR_NR_PRESENT] || !tb[VMIR_ATTR_NR_DIRTY])
		die("GET_STATUS reply without NR_PRESENT/NR_DIRTY");
	c->present = nla_get_u32(tb[VMIR_ATTR_NR_PRESENT]);
	c->dirty = nla_get_u32(tb[VMIR_ATTR_NR_DIRTY]);
	if (tb[VMIR_ATTR_NR_COMMIT]) {
		c->commit = nla_get_u32(tb[VMIR_ATTR_NR_COMMIT]);
		c->has_commit = true;
	}
	return 0;
}

static uint32_t vg_weight(const uint8_t *map, uint32_t nchunks)
{
	uint32_t i, n = 0;

	for (i = 0; i < (nchunks + 7) / 8; i++)
		n += __builtin_popcount(map[i]);
	return n;
}

static int vg_count_differs(const char *what, uint32_t counted,
			    uint32_t bits)
{
	if (counted == bits)
		return 0;
	fprintf(stderr, "%s: NR_%s is %u but the map has %u bits set\n",
		prog, what, counted, bits);
	return 1;
}

/*
 * The module keeps its counters as the maps change; GET_STATE dumps the
 * maps themselves. With nothing in flight the two must agree.
 */
static int cmd_check_counters(struct vg *g, struct vg_opts *o)
{
	struct vg_counts c = { 0 };
	struct nl_msg *msg;
	struct vg_state s;
	int bad = 0;

	vg_need(o->has_dev, "--dev");
	msg = vg_msg(g, VMIR_CMD_GET_STATUS, 0);
	nla_put_u32(msg, VMIR_ATTR_DEV_ID, o->dev);
	vg_do(g, o, "GET_STATUS", msg, vg_parse_counts, &c);
	vg_get_state(g, o, o->dev, &s);
	bad += vg_count_differs("PRESENT", c.present,
				vg_weight(s.present, s.nchunks));
	bad += vg_count_differs("DIRTY", c.dirty,
				vg_weight(s.dirty, s.nchunks));
	if (c.has_commit != s.has_commit) {
		fprintf(stderr, "%s: NR_COMMIT %s but MAP_COMMIT %s\n", prog,
			c.has_commit ? "reported" : "absent",
			s.has_commit ? "dumped" : "absent");
		bad++;
	} else if (c.has_commit) {
		bad += vg_count_differs("COMMIT", c.commit,
					vg_weight(s.commit, s.nchunks));
	}
	printf("present=%u dirty=%u", c.present, c.dirty);
	if (c.has_commit)
		printf(" commit=%u", c.commit);
	printf("\n");
	return bad ? 1 : 0;
}

/* ---- status / list ------------------------------------------------------ */

static const char *const vg_stat_names[VMIR_STAT_MAX + 1] = {
	[VMIR_STAT_MISSES] = "misses",
	[VMIR_STAT_MISS_WAITS] = "miss_waits",
	[VMIR_STAT_FETCHED_CHUNKS] = "fetched_chunks",
	[VMIR_STAT_FETCHED_BYTES] = "fetched_bytes",
	[VMIR_STAT_FETCH_ERRORS] = "fetch_errors",
	[VMIR_STAT_FETCH_LAT_SUM_NS] = "fetch_lat_sum_ns",
	[VMIR_STAT_FETCH_LAT_COUNT] = "fetch_lat_count",
	[VMIR_STAT_TIMEOUTS] = "timeouts",
	[VMIR_STAT_CAPTURE_WAITS] = "capture_waits",
	[VMIR_STAT_EVENTS_SENT] = "events_sent",
	[VMIR_STAT_EVENT_RETRIES] = "event_retries",
	[VMIR_STAT_PREFETCHES] = "prefetches",
	[VMIR_STAT_HITS_INLINE] = "hits_inline",
	[VMIR_STAT_HITS_NOWAIT] = "hits_nowait",
	[VMIR_STAT_HITS_WORKER] = "hits_worker",
	[VMIR_STAT_MAP_COMMITS] = "map_commits",
};

static int vg_print_info(struct nlattr **tb, void *arg)
{
	static const struct {
		int attr;
		const char *name;
	} u32s[] = {
		{ VMIR_ATTR_DEV_ID, "dev" },
		{ VMIR_ATTR_CHUNK_SIZE, "chunk_size" },
		{ VMIR_ATTR_NCHUNKS, "nchunks" },
		{ VMIR_ATTR_TIMEOUT_MS, "timeout_ms" },
		{ VMIR_ATTR_STATE, "state" },
		{ VMIR_ATTR_NR_PRESENT, "present" },
		{ VMIR_ATTR_NR_DIRTY, "dirty" },
		{ VMIR_ATTR_NR_FETCHING, "fetching" },
		{ VMIR_ATTR_NR_PARKED, "parked" },
		{ VMIR_ATTR_NR_COMMIT, "commit" },
		{ VMIR_ATTR_NR_FROZEN, "frozen" },
	};
	bool oneline = arg != NULL;
	const char *sep = oneline ? " " : "\n";
	struct nlattr *a;
	size_t i;
	int rem;

	for (i = 0; i < sizeof(u32s) / sizeof(u32s[0]); i++)
		if (tb[u32s[i].attr])
			printf("%s=%u%s", u32s[i].name,
			       nla_get_u32(tb[u32s[i].attr]), sep);
	if (tb[VMIR_ATTR_DISK_NAME])
		printf("disk=%s%s", nla_get_string(tb[VMIR_ATTR_DISK_NAME]), sep);
	if (tb[VMIR_ATTR_IMAGE])
		printf("image=%s%s", nla_get_string(tb[VMIR_ATTR_IMAGE]), sep);
	if (tb[VMIR_ATTR_VERSION])
		printf("version=%u%s", nla_get_u32(tb[VMIR_ATTR_VERSION]),
		       sep);
	if (tb[VMIR_ATTR_SIZE])
		printf("size=%" PRIu64 "%s", nla_get_u64(tb[VMIR_ATTR_SIZE]),
		       sep);
	if (tb[VMIR_ATTR_DEV_FLAGS])
		printf("flags=0x%" PRIx64 "%s",
		       nla_get_u64(tb[VMIR_ATTR_DEV_FLAGS]), sep);
	if (tb[VMIR_ATTR_STATS]) {
		nla_for_each_nested(a, tb[VMIR_ATTR_STATS], rem) {
			int t = nla_type(a);

			if (t > VMIR_STAT_MAX || !vg_stat_names[t])
				continue;
			printf("%s=%" PRIu64 "%s", vg_stat_names[t],
			       nla_get_u64(a), sep);
		}
	}
	if (oneline)
		printf("\n");
	return 0;
}

static int cmd_status(struct vg *g, struct vg_opts *o)
{
	struct nl_msg *msg;

	vg_need(o->has_dev, "--dev");
	msg = vg_msg(g, VMIR_CMD_GET_STATUS, 0);
	nla_put_u32(msg, VMIR_ATTR_DEV_ID, o->dev);
	vg_do(g, o, "GET_STATUS", msg, vg_print_info, NULL);
	return 0;
}

static int cmd_list(struct vg *g, struct vg_opts *o)
{
	vg_do(g, o, "LIST", vg_msg(g, VMIR_CMD_LIST, NLM_F_DUMP),
	      vg_print_info, (void *)1);
	return 0;
}

/* ---- single-request commands --------------------------------------------- */

static int cmd_simple(struct vg *g, struct vg_opts *o, uint8_t cmd,
		      const char *what)
{
	struct nl_msg *msg = vg_msg(g, cmd, 0);

	if (o->has_dev)
		nla_put_u32(msg, VMIR_ATTR_DEV_ID, o->dev);
	if (o->nchunks)
		vmir_nl_put_chunks(msg, o->chunks, o->nchunks);
	if (cmd == VMIR_CMD_CHUNK_READY || cmd == VMIR_CMD_COMMIT_END)
		nla_put_s32(msg, VMIR_ATTR_STATUS, o->status);
	if (o->version)
		nla_put_u32(msg, VMIR_ATTR_VERSION, o->version);
	if (cmd == VMIR_CMD_HELPER_REGISTER && o->takeover)
		nla_put_u64(msg, VMIR_ATTR_FLAGS, VMIR_REGISTER_F_TAKEOVER);
	vg_do(g, o, what, msg, NULL, NULL);
	return 0;
}

static int vg_print_claimed(struct nlattr **tb, void *arg)
{
	const uint32_t *chunks;
	size_t n, i;

	if (vmir_nl_get_chunks(tb, &chunks, &n))
		die("PREFETCH reply with a malformed CHUNKS");
	for (i = 0; i < n; i++)
		printf("%u\n", chunks[i]);
	return 0;
}

/* PREFETCH: prints the chunks the module handed over, one per line */
static int cmd_prefetch(struct vg *g, struct vg_opts *o)
{
	struct nl_msg *msg = vg_msg(g, VMIR_CMD_PREFETCH, 0);

	vg_need(o->has_dev && o->nchunks, "--dev/--chunk");
	nla_put_u32(msg, VMIR_ATTR_DEV_ID, o->dev);
	vmir_nl_put_chunks(msg, o->chunks, o->nchunks);
	vg_do(g, o, "PREFETCH", msg, vg_print_claimed, NULL);
	return 0;
}

struct vg_access {
	uint32_t nr, lost, got;
	bool has_nr;
};

static int vg_parse_access(struct nlattr **tb, void *arg)
{
	struct vg_access *a = arg;
	const uint32_t *chunks;
	size_t n = 0, i;

	if (!tb[VMIR_ATTR_NR_ACCESSED] || !tb[VMIR_ATTR_NR_ACCESS_LOST])
		die("GET_ACCESS reply without NR_ACCESSED or NR_ACCESS_LOST");
	a->nr = nla_get_u32(tb[VMIR_ATTR_NR_ACCESSED]);
	a->lost = nla_get_u32(tb[VMIR_ATTR_NR_ACCESS_LOST]);
	if (!a->has_nr)
		printf("accessed %u lost %u\n", a->nr, a->lost);
	a->has_nr = true;
	if (tb[VMIR_ATTR_CHUNKS] && vmir_nl_get_chunks(tb, &chunks, &n))
		die("GET_ACCESS reply with a malformed CHUNKS");
	for (i = 0; i < n; i++)
		printf("%u\n", chunks[i]);
	a->got = n;
	return 0;
}

/* GET_ACCESS: the whole first-access order, or one reply with --start */
static int cmd_access(struct vg *g, struct vg_opts *o)
{
	struct vg_access a = { 0 };
	uint32_t start = o->start;
	int idle = 0;

	vg_need(o->has_dev, "--dev");
	do {
		struct nl_msg *msg = vg_msg(g, VMIR_CMD_GET_ACCESS, 0);

		nla_put_u32(msg, VMIR_ATTR_DEV_ID, o->dev);
		if (o->has_start || start)
			nla_put_u32(msg, VMIR_ATTR_ACCESS_START, start);
		vg_do(g, o, "GET_ACCESS", msg, vg_parse_access, &a);
		start += a.got;
		/* a slot taken but not filled yet: ask again, a few times */
		if (!a.got && start < a.nr) {
			if (++idle > 1000)
				die("GET_ACCESS: rank %u stays unfilled", start);
			usleep(1000);
		}
	} while (!o->has_start && start < a.nr);
	return 0;
}

static int vg_parse_commit(struct nlattr **tb, void *arg)
{
	if (tb[VMIR_ATTR_NR_COMMIT])
		*(uint32_t *)arg = nla_get_u32(tb[VMIR_ATTR_NR_COMMIT]);
	return 0;
}

static int cmd_commit_begin(struct vg *g, struct vg_opts *o)
{
	struct nl_msg *msg = vg_msg(g, VMIR_CMD_COMMIT_BEGIN, 0);
	uint32_t n = UINT32_MAX;

	vg_need(o->has_dev, "--dev");
	nla_put_u32(msg, VMIR_ATTR_DEV_ID, o->dev);
	vg_do(g, o, "COMMIT_BEGIN", msg, vg_parse_commit, &n);
	if (n == UINT32_MAX)
		die("COMMIT_BEGIN reply without NR_COMMIT");
	printf("%u\n", n);
	return 0;
}

/* ---- chunk copies -------------------------------------------------------- */

static void vg_pread_full(int fd, void *buf, size_t len, off_t off,
			  const char *what)
{
	ssize_t n;

	memset(buf, 0, len);
	while (len) {
		n = pread(fd, buf, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("read of %s at %lld failed: %s", what,
			    (long long)off, strerror(errno));
		if (n == 0)
			return;		/* past EOF: zeros */
		buf = (char *)buf + n;
		len -= n;
		off += n;
	}
}

static void vg_pwrite_full(int fd, const void *buf, size_t len, off_t off,
			   const char *what)
{
	ssize_t n;

	while (len) {
		n = pwrite(fd, buf, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("write of %s at %lld failed: %s", what,
			    (long long)off, strerror(errno));
		buf = (const char *)buf + n;
		len -= n;
		off += n;
	}
}

static void vg_write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0)
		die("cannot create %s: %s", path, strerror(errno));
	vg_pwrite_full(fd, buf, len, 0, path);
	close(fd);
}

static int vg_parse_geometry(struct nlattr **tb, void *arg);

static int cmd_capture(struct vg *g, struct vg_opts *o)
{
	struct vg_serve st = { 0 };
	struct vg_state s;
	struct nl_msg *msg;
	char path[4096];
	uint32_t i, n = 0;
	uint64_t len;
	char *buf;
	int fd;

	vg_need(o->has_dev && o->mirror && o->out, "--dev/--mirror/--out");
	msg = vg_msg(g, VMIR_CMD_GET_STATUS, 0);
	nla_put_u32(msg, VMIR_ATTR_DEV_ID, o->dev);
	vg_do(g, o, "GET_STATUS", msg, vg_parse_geometry, &st);
	vg_get_state(g, o, o->dev, &s);
	if (!s.has_commit)
		die("no commit is active on device %u", o->dev);
	fd = open(o->mirror, O_RDONLY);
	buf = malloc(st.chunk_size);
	if (fd < 0 || !buf)
		die("cannot open %s: %s", o->mirror, strerror(errno));
	for (i = 0; i < s.nchunks; i++) {
		if (!vg_bit(s.commit, i))
			continue;
		len = st.size - (uint64_t)i * st.chunk_size;
		if (len > st.chunk_size)
			len = st.chunk_size;
		vg_pread_full(fd, buf, len, (off_t)i * st.chunk_size, o->mirror);
		snprintf(path, sizeof(path), "%s/chunk.%u", o->out, i);
		/* A chunk the helper captured already keeps its copy. */
		if (access(path, F_OK) == 0)
			continue;
		vg_write_file(path, buf, len);
		msg = vg_msg(g, VMIR_CMD_CHUNK_CAPTURED, 0);
		nla_put_u32(msg, VMIR_ATTR_DEV_ID, o->dev);
		vmir_nl_put_chunks(msg, &i, 1);
		vg_do(g, o, "CHUNK_CAPTURED", msg, NULL, NULL);
		n++;
	}
	printf("%u\n", n);
	return 0;
}

/* ---- helper ----------------------------------------------------------------- */

static volatile sig_atomic_t vg_stop;

/* libnl restarts interrupted receives: leave at once (the log is
 * flushed line by line).
 */
static void vg_on_signal(int sig)
{
	_exit(0);
}

static int vg_parse_geometry(struct nlattr **tb, void *arg)
{
	struct vg_serve *s = arg;

	if (!tb[VMIR_ATTR_CHUNK_SIZE] || !tb[VMIR_ATTR_SIZE])
		die("GET_STATUS reply lacks CHUNK_SIZE/SIZE");
	s->chunk_size = nla_get_u32(tb[VMIR_ATTR_CHUNK_SIZE]);
	s->size = nla_get_u64(tb[VMIR_ATTR_SIZE]);
	return 0;
}

static struct vg_serve *vg_find_serve(struct vg_opts *o, uint32_t dev)
{
	int i;

	for (i = 0; i < o->nserve; i++)
		if (o->serve[i].dev == dev)
			return &o->serve[i];
	return NULL;
}

static bool vg_all_zero(const char *buf, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (buf[i])
			return false;
	return true;
}

static void vg_log(FILE *log, const struct vg_opts *o,
		   const struct vg_event *e)
{
	const char *what = e->cmd == VMIR_CMD_MISS ? "MISS" : "CAPTURE";

	if (!log)
		return;
	if (o->log_batches)
		fprintf(log, "%s %u %u m%u\n", what, e->dev, e->chunk, e->msg);
	else
		fprintf(log, "%s %u %u\n", what, e->dev, e->chunk);
	fflush(log);
}

static void vg_answer(struct vg *g, struct vg_opts *o, uint8_t cmd,
		      uint32_t dev, uint32_t chunk, int status)
{
	struct nl_msg *msg = vg_msg(g, cmd, 0);
	char errmsg[256] = "";
	int ret;

	nla_put_u32(msg, VMIR_ATTR_DEV_ID, dev);
	vmir_nl_put_chunks(msg, &chunk, 1);
	if (cmd == VMIR_CMD_CHUNK_READY)
		nla_put_s32(msg, VMIR_ATTR_STATUS, status);
	ret = vg_send(g, msg, NULL, NULL, errmsg, sizeof(errmsg));
	if (ret)
		fprintf(stderr, "%s: answer %u for dev %u chunk %u failed: %s (%s)\n",
			prog, cmd, dev, chunk, strerror(-ret), errmsg);
}

static void vg_handle_event(struct vg *g, struct vg_opts *o, FILE *log,
			    const struct vg_event *e, char *buf)
{
	struct vg_serve *s = vg_find_serve(o, e->dev);
	char path[4096];
	uint64_t off, len;
	int i, status = 0;

	vg_log(log, o, e);
	if (!s) {
		fprintf(stderr, "%s: event for device %u, which is not served\n",
			prog, e->dev);
		return;
	}
	if (o->no_answer)
		return;
	if (o->delay_ms)
		usleep(o->delay_ms * 1000);
	off = (uint64_t)e->chunk * s->chunk_size;
	len = s->size - off;
	if (len > s->chunk_size)
		len = s->chunk_size;

	if (e->cmd == VMIR_CMD_CAPTURE_NEEDED) {
		if (!o->capture_dir) {
			fprintf(stderr, "%s: CAPTURE_NEEDED without --capture-dir\n",
				prog);
			return;
		}
		vg_pread_full(s->mfd, buf, len, off, s->mirror);
		snprintf(path, sizeof(path), "%s/chunk.%u", o->capture_dir,
			 e->chunk);
		vg_write_file(path, buf, len);
		vg_answer(g, o, VMIR_CMD_CHUNK_CAPTURED, e->dev, e->chunk, 0);
		return;
	}

	for (i = 0; i < o->nfail; i++)
		if (o->fail[i] == e->chunk)
			status = -EIO;
	if (!status) {
		vg_pread_full(s->sfd, buf, len, off, s->source);
		if (vg_all_zero(buf, len)) {
			if (fallocate(s->mfd, FALLOC_FL_PUNCH_HOLE |
				      FALLOC_FL_KEEP_SIZE, off, len))
				vg_pwrite_full(s->mfd, buf, len, off, s->mirror);
		} else {
			vg_pwrite_full(s->mfd, buf, len, off, s->mirror);
		}
	}
	vg_answer(g, o, VMIR_CMD_CHUNK_READY, e->dev, e->chunk, status);
}

static int cmd_helper(struct vg *g, struct vg_opts *o)
{
	struct sigaction sa = { .sa_handler = vg_on_signal };
	struct pollfd pfd;
	struct vg_event e;
	uint32_t maxcs = 0;
	struct nl_msg *msg;
	FILE *log = NULL;
	int i, handled = 0, ret;
	char *buf;

	for (i = 0; i < o->nserve; i++) {
		struct vg_serve *s = &o->serve[i];

		s->mfd = open(s->mirror, O_RDWR);
		s->sfd = open(s->source, O_RDONLY);
		if (s->mfd < 0 || s->sfd < 0)
			die("cannot open %s or %s: %s", s->mirror, s->source,
			    strerror(errno));
		msg = vg_msg(g, VMIR_CMD_GET_STATUS, 0);
		nla_put_u32(msg, VMIR_ATTR_DEV_ID, s->dev);
		vg_do(g, o, "GET_STATUS", msg, vg_parse_geometry, s);
		if (s->chunk_size > maxcs)
			maxcs = s->chunk_size;
	}
	buf = malloc(maxcs ? maxcs : 1);
	if (!buf)
		die("out of memory");
	if (o->log) {
		log = fopen(o->log, "a");
		if (!log)
			die("cannot open %s: %s", o->log, strerror(errno));
	}
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	msg = vg_msg(g, VMIR_CMD_HELPER_REGISTER, 0);
	if (o->takeover)
		nla_put_u64(msg, VMIR_ATTR_FLAGS, VMIR_REGISTER_F_TAKEOVER);
	vg_do(g, o, "HELPER_REGISTER", msg, NULL, NULL);
	if (o->ready_file)
		vg_write_file(o->ready_file, "ready\n", 6);

	while (!vg_stop) {
		if (g->nevents) {
			e = g->events[0];
			memmove(g->events, g->events + 1,
				--g->nevents * sizeof(*g->events));
			vg_handle_event(g, o, log, &e, buf);
			if (o->exit_after && ++handled >= o->exit_after)
				break;
			continue;
		}
		pfd.fd = vmir_nl_fd(&g->nl);
		pfd.events = POLLIN;
		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			die("poll failed: %s", strerror(errno));
		ret = vmir_nl_dispatch(&g->nl);
		/* ENOBUFS: events were dropped; the module retries them */
		if (ret && ret != -ENOBUFS && !vg_stop)
			fprintf(stderr, "%s: receive failed: %s\n", prog,
				strerror(-ret));
	}
	if (log)
		fclose(log);
	return 0;
}

/* ---- malformed requests ----------------------------------------------------- */

struct vg_case {
	const char *name;
	int expect;			/* errno */
};

static int vg_failures;

static void vg_check(struct vg *g, struct nl_msg *msg, const char *name,
		     int expect)
{
	char errmsg[256] = "";
	int ret = vg_send(g, msg, NULL, NULL, errmsg, sizeof(errmsg));

	if (ret == -expect) {
		printf("ok   %-44s %s (%s)\n", name, vg_errname(expect), errmsg);
	} else {
		printf("FAIL %-44s expected %s, got %s (%s)\n", name,
		       vg_errname(expect), ret ? vg_errname(-ret) : "success",
		       errmsg);
		vg_failures++;
	}
}

/* CHUNKS holding one chunk */
static void vg_put_chunk(struct nl_msg *msg, uint32_t chunk)
{
	if (vmir_nl_put_chunks(msg, &chunk, 1))
		die("message too small for a chunk list");
}

struct vg_status_chk {
	uint32_t fetching;
};

static int vg_parse_fetching(struct nlattr **tb, void *arg)
{
	struct vg_status_chk *c = arg;

	if (tb[VMIR_ATTR_NR_FETCHING])
		c->fetching = nla_get_u32(tb[VMIR_ATTR_NR_FETCHING]);
	return 0;
}

static struct nl_msg *vg_add_msg(struct vg *g, int fd)
{
	struct nl_msg *msg = vg_msg(g, VMIR_CMD_ADD_DEVICE, 0);

	nla_put_string(msg, VMIR_ATTR_IMAGE, "bad");
	nla_put_u32(msg, VMIR_ATTR_VERSION, 1);
	nla_put_u64(msg, VMIR_ATTR_SIZE, 1 << 20);
	nla_put_u32(msg, VMIR_ATTR_CHUNK_SIZE, 65536);
	nla_put_u32(msg, VMIR_ATTR_MIRROR_FD, fd);
	return msg;
}

static int cmd_malformed(struct vg *g, struct vg_opts *o)
{
	struct nl_msg *msg;
	char big[VMIR_NAME_MAX + 16];
	uint8_t bits[64];
	uint32_t dev = UINT32_MAX;
	int fd, rofd, dirfd;
	struct vg g2;

	vg_need(o->mirror, "--mirror");
	fd = open(o->mirror, O_RDWR | O_CREAT, 0600);
	rofd = open(o->mirror, O_RDONLY);
	dirfd = open("/", O_RDONLY | O_DIRECTORY);
	if (fd < 0 || rofd < 0 || dirfd < 0)
		die("cannot open %s: %s", o->mirror, strerror(errno));
	memset(big, 'x', sizeof(big));
	big[sizeof(big) - 1] = '\0';

	/* ADD_DEVICE */
	msg = vg_msg(g, VMIR_CMD_ADD_DEVICE, 0);
	vg_check(g, msg, "add: no attributes", EINVAL);
	msg = vg_add_msg(g, fd);
	nla_put_u32(msg, VMIR_ATTR_TIMEOUT_MS, 10);
	vg_check(g, msg, "add: timeout below minimum", ERANGE);
	msg = vg_msg(g, VMIR_CMD_ADD_DEVICE, 0);
	nla_put_string(msg, VMIR_ATTR_IMAGE, "bad");
	nla_put_u32(msg, VMIR_ATTR_VERSION, 1);
	nla_put_u64(msg, VMIR_ATTR_SIZE, 1 << 20);
	nla_put_u32(msg, VMIR_ATTR_CHUNK_SIZE, 65536);
	vg_check(g, msg, "add: no mirror fd", EINVAL);
	msg = vg_msg(g, VMIR_CMD_ADD_DEVICE, 0);
	nla_put_string(msg, VMIR_ATTR_IMAGE, "bad");
	nla_put_u32(msg, VMIR_ATTR_VERSION, 1);
	nla_put_u64(msg, VMIR_ATTR_SIZE, 1 << 20);
	nla_put_u32(msg, VMIR_ATTR_CHUNK_SIZE, 3 * 4096);
	nla_put_u32(msg, VMIR_ATTR_MIRROR_FD, fd);
	vg_check(g, msg, "add: chunk size not a power of two", EINVAL);
	msg = vg_msg(g, VMIR_CMD_ADD_DEVICE, 0);
	nla_put_string(msg, VMIR_ATTR_IMAGE, "bad");
	nla_put_u32(msg, VMIR_ATTR_VERSION, 1);
	nla_put_u64(msg, VMIR_ATTR_SIZE, 1 << 20);
	nla_put_u32(msg, VMIR_ATTR_CHUNK_SIZE, 2048);
	nla_put_u32(msg, VMIR_ATTR_MIRROR_FD, fd);
	vg_check(g, msg, "add: chunk size below 4K", ERANGE);
	msg = vg_msg(g, VMIR_CMD_ADD_DEVICE, 0);
	nla_put_string(msg, VMIR_ATTR_IMAGE, "bad");
	nla_put_u32(msg, VMIR_ATTR_VERSION, 1);
	nla_put_u64(msg, VMIR_ATTR_SIZE, 1ULL << 50);
	nla_put_u32(msg, VMIR_ATTR_CHUNK_SIZE, 4096);
	nla_put_u32(msg, VMIR_ATTR_MIRROR_FD, fd);
	vg_check(g, msg, "add: more than 2^24 chunks", EINVAL);
	msg = vg_msg(g, VMIR_CMD_ADD_DEVICE, 0);
	nla_put_string(msg, VMIR_ATTR_IMAGE, "bad");
	nla_put_u32(msg, VMIR_ATTR_VERSION, 1);
	nla_put_u64(msg, VMIR_ATTR_SIZE, 0);
	nla_put_u32(msg, VMIR_ATTR_CHUNK_SIZE, 4096);
	nla_put_u32(msg, VMIR_ATTR_MIRROR_FD, fd);
	vg_check(g, msg, "add: size 0", ERANGE);
	msg = vg_msg(g, VMIR_CMD_ADD_DEVICE, 0);
	nla_put_string(msg, VMIR_ATTR_IMAGE, big);
	nla_put_u32(msg, VMIR_ATTR_VERSION, 1);
	nla_put_u64(msg, VMIR_ATTR_SIZE, 1 << 20);
	nla_put_u32(msg, VMIR_ATTR_CHUNK_SIZE, 4096);
	nla_put_u32(msg, VMIR_ATTR_MIRROR_FD, fd);
	vg_check(g, msg, "add: image name too long", EINVAL);
	vg_check(g, vg_add_msg(g, 987), "add: fd not open", EBADF);
	vg_check(g, vg_add_msg(g, rofd), "add: mirror opened read-only",
		 EBADF);
	vg_check(g, vg_add_msg(g, dirfd), "add: mirror is a directory",
		 EINVAL);
	msg = vg_add_msg(g, fd);
	nla_put_u64(msg, VMIR_ATTR_FLAGS, 1ULL << 40);
	vg_check(g, msg, "add: unknown flag", EINVAL);
	msg = vg_add_msg(g, fd);
	nla_put_u32(msg, VMIR_ATTR_NCHUNKS, 16);
	vg_check(g, msg, "add: reply-only attribute", EINVAL);
	msg = vg_add_msg(g, fd);
	nla_put_u8(msg, VMIR_ATTR_CHUNK_SIZE + 0, 1);
	vg_check(g, msg, "add: attribute of the wrong size", EINVAL);
	msg = vg_add_msg(g, fd);
	nla_put_u32(msg, VMIR_ATTR_MAX + 5, 1);
	vg_check(g, msg, "add: unknown attribute", EINVAL);
	memset(bits, 0xff, sizeof(bits));
	msg = vg_add_msg(g, fd);
	nla_put(msg, VMIR_ATTR_MAP_PRESENT, 3, bits);	/* 16 chunks: 2 bytes */
	vg_check(g, msg, "add: bitmap longer than the chunks", EINVAL);
	msg = vg_add_msg(g, fd);
	nla_put_u32(msg, VMIR_ATTR_MAP_START, 4);
	nla_put(msg, VMIR_ATTR_MAP_PRESENT, 1, bits);
	vg_check(g, msg, "add: bitmap start not a multiple of 8", EINVAL);
	msg = vg_add_msg(g, fd);
	bits[0] = 0x01;
	nla_put(msg, VMIR_ATTR_MAP_PRESENT, 1, bits);
	bits[1] = 0x03;
	nla_put(msg, VMIR_ATTR_MAP_DIRTY, 1, bits + 1);
	vg_check(g, msg, "add: dirty chunk not present", EINVAL);
	msg = vg_add_msg(g, fd);
	nla_put(msg, VMIR_ATTR_MAP_DIRTY, 1, bits);
	vg_check(g, msg, "add: dirty map without present map", EINVAL);

	/* Commands on devices */
	msg = vg_msg(g, VMIR_CMD_GET_STATUS, 0);
	vg_check(g, msg, "status: no device id", EINVAL);
	msg = vg_msg(g, VMIR_CMD_GET_STATUS, 0);
	nla_put_u32(msg, VMIR_ATTR_DEV_ID, 60000);
	vg_check(g, msg, "status: unknown device", ENODEV);
	msg = vg_msg(g, VMIR_CMD_REMOVE_DEVICE, 0);
	nla_put_u32(msg, VMIR_ATTR_DEV_ID, 60000);
	vg_check(g, msg, "remove: unknown device", ENODEV);
	msg = vg_msg(g, VMIR_CMD_GET_ACCESS, 0);
	nla_put_u32(msg, VMIR_ATTR_DEV_ID, 60000);
	vg_check(g, msg, "access: unknown device", ENODEV);
	msg = vg_msg(g, VMIR_CMD_PREFETCH, 0);
	nla_put_u32(msg, VMIR_ATTR_DEV_ID, 60000);
	vg_put_chunk(msg, 0);
	vg_check(g, msg, "prefetch: unknown device", ENODEV);
	msg = vg_msg(g, VMIR_CMD_STOP_DEVICE, 0);
	vg_check(g, msg, "stop: no device id", EINVAL);
	msg = vg_msg(g, VMIR_CMD_STOP_DEVICE, 0);
	nla_put_u32(msg, VMIR_ATTR_DEV_ID, 60000);
	vg_check(g, msg, "stop: unknown device", ENODEV);
	msg = vg_msg(g, VMIR_CMD_CHUNK_READY, 0);
	nla_put_u32(msg, VMIR_ATTR_DEV_ID, 60000);
	vg_put_chunk(msg, 0);
	nla_put_s32(msg, VMIR_ATTR_STATUS, 0);
	vg_check(g, msg, "ready: unknown device", ENODEV);
	msg = vg_msg(g, VMIR_CMD_GET_STATE, NLM_F_DUMP);
	nla_put_u32(msg, VMIR_ATTR_DEV_ID, 60000);
	vg_check(g, msg, "get-state: unknown device", ENODEV);
	msg = vg_msg(g, VMIR_CMD_GET_STATE, NLM_F_DUMP);
	vg_check(g, msg, "get-state: no device id", EINVAL);
	msg = vg_msg(g, VMIR_CMD_MISS, 0);
	vg_check(g, msg, "event command sent by userspace", EOPNOTSUPP);
	msg = vg_msg(g, 200, 0);
	vg_check(g, msg, "unknown command", EOPNOTSUPP);

	/* A real device for the per-chunk checks: 16 chunks of 64K. */
	msg = vg_add_msg(g, fd);
	nla_put_u64(msg, VMIR_ATTR_FLAGS, VMIR_ADD_F_DEFER_START);
	vg_send(g, msg, vg_parse_dev_id, &dev, NULL, 0);
	if (dev == UINT32_MAX)
		die("ADD_DEVICE of a valid device failed");
	msg = vg_msg(g, VMIR_CMD_CHUNK_READY, 0);
	nla_put_u32(msg, VMIR_ATTR_DEV_ID, dev);
	vg_put_chunk(msg, 16);
	nla_put_s32(msg, VMIR_ATTR_STATUS, 0);
	vg_check(g, msg, "ready: chunk index out of range", ERANGE);
	msg = vg_msg(g, VMIR_CMD_CHUNK_READY, 0);
	nla_put_u32(msg, VMIR_ATTR_DEV_ID, dev);
	vg_put_chunk(msg, 3);
	vg_check(g, msg, "ready: no status", EINVAL);
	msg = vg_msg(g, VMIR_CMD_CHUNK_READY, 0);
	nla_put_u32(msg, VMIR_ATTR_DEV_ID, dev);
	vg_put_chunk(msg, 3);
	nla_put_s32(msg, VMIR_ATTR_STATUS, 5);
	vg_check(g, msg, "ready: positive status", ERANGE);
	msg = vg_msg(g, VMIR_CMD_CHUNK_READY, 0);
	nla_put_u32(msg, VMIR_ATTR_DEV_ID, dev);
	vg_put_chunk(msg, 3);
	nla_put_s32(msg, VMIR_ATTR_STATUS, 0);
	vg_check(g, msg, "ready: no MISS outstanding", ENOENT);
	msg = vg_msg(g, VMIR_CMD_CHUNK_READY, 0);
	nla_put_u32(msg, VMIR_ATTR_DEV_ID, dev);
	nla_put(msg, VMIR_ATTR_CHUNKS, 6, "\1\0\0\0\2\0");
	nla_put_s32(msg, VMIR_ATTR_STATUS, 0);
	vg_check(g, msg, "ready: chunk list of 6 bytes", EINVAL);
	msg = vg_msg(g, VMIR_CMD_CHUNK_READY, 0);
	nla_put_u32(msg, VMIR_ATTR_DEV_ID, dev);
	nla_put(msg, VMIR_ATTR_CHUNKS, 0, NULL);
	nla_put_s32(msg, VMIR_ATTR_STATUS, 0);
	vg_check(g, msg, "ready: empty chunk list", EINVAL);
	{
		uint32_t many[VMIR_CHUNKS_MAX + 1] = { 0 };

		msg = vg_msg(g, VMIR_CMD_CHUNK_READY, 0);
		nla_put_u32(msg, VMIR_ATTR_DEV_ID, dev);
		nla_put(msg, VMIR_ATTR_CHUNKS, sizeof(many), many);
		nla_put_s32(msg, VMIR_ATTR_STATUS, 0);
		vg_check(g, msg, "ready: more than VMIR_CHUNKS_MAX chunks",
			 ERANGE);
	}
	msg = vg_msg(g, VMIR_CMD_GET_ACCESS, 0);
	nla_put_u32(msg, VMIR_ATTR_DEV_ID, dev);
	nla_put_u32(msg, VMIR_ATTR_ACCESS_START, VMIR_ACCESS_MAX + 1);
	vg_check(g, msg, "access: start past the recorded order", ERANGE);
	msg = vg_msg(g, VMIR_CMD_GET_ACCESS, 0);
	nla_put_u32(msg, VMIR_ATTR_DEV_ID, dev);
	nla_put_u32(msg, VMIR_ATTR_NR_ACCESSED, 0);
	vg_check(g, msg, "access: NR_ACCESSED in a request", EINVAL);
	{
		uint32_t list[3] = { 2, 16, 3 };

		/* refused as a whole: chunk 2 is not prefetched */
		msg = vg_msg(g, VMIR_CMD_PREFETCH, 0);
		nla_put_u32(msg, VMIR_ATTR_DEV_ID, dev);
		vmir_nl_put_chunks(msg, list, 3);
		vg_check(g, msg, "prefetch: one index out of range", ERANGE);
	}
	msg = vg_msg(g, VMIR_CMD_GET_STATUS, 0);
	nla_put_u32(msg, VMIR_ATTR_DEV_ID, dev);
	{
		struct vg_status_chk chk = { 0 };

		vg_send(g, msg, vg_parse_fetching, &chk, NULL, 0);
		if (chk.fetching) {
			printf("FAIL %-44s %u chunks fetching\n",
			       "prefetch: refused list claimed nothing",
			       chk.fetching);
			vg_failures++;
		} else {
			printf("ok   %-44s\n",
			       "prefetch: refused list claimed nothing");
		}
	}
	msg = vg_msg(g, VMIR_CMD_PREFETCH, 0);
	nla_put_u32(msg, VMIR_ATTR_DEV_ID, dev);
	vg_put_chunk(msg, 16);
	vg_check(g, msg, "prefetch: chunk index out of range", ERANGE);
	msg = vg_msg(g, VMIR_CMD_PREFETCH, 0);
	nla_put_u32(msg, VMIR_ATTR_DEV_ID, dev);
	vg_check(g, msg, "prefetch: no chunk", EINVAL);
	msg = vg_msg(g, VMIR_CMD_CHUNK_CAPTURED, 0);
	nla_put_u32(msg, VMIR_ATTR_DEV_ID, dev);
	vg_put_chunk(msg, 3);
	vg_check(g, msg, "captured: no commit active", ENOENT);
	msg = vg_msg(g, VMIR_CMD_COMMIT_END, 0);
	nla_put_u32(msg, VMIR_ATTR_DEV_ID, dev);
	nla_put_s32(msg, VMIR_ATTR_STATUS, 0);
	vg_check(g, msg, "commit-end: no commit active", ENOENT);
	msg = vg_msg(g, VMIR_CMD_COMMIT_END, 0);
	nla_put_u32(msg, VMIR_ATTR_DEV_ID, dev);
	nla_put_s32(msg, VMIR_ATTR_STATUS, -EIO);
	nla_put_u32(msg, VMIR_ATTR_VERSION, 2);
	vg_check(g, msg, "commit-end: failure with a version", EINVAL);
	msg = vg_msg(g, VMIR_CMD_SET_VERSION, 0);
	nla_put_u32(msg, VMIR_ATTR_DEV_ID, dev);
	nla_put_string(msg, VMIR_ATTR_VERSION, "v2");
	vg_check(g, msg, "set-version: a string version", EINVAL);
	msg = vg_msg(g, VMIR_CMD_SET_VERSION, 0);
	nla_put_u32(msg, VMIR_ATTR_DEV_ID, dev);
	nla_put_u32(msg, VMIR_ATTR_VERSION, 0);
	vg_check(g, msg, "set-version: version 0", ERANGE);
	msg = vg_msg(g, VMIR_CMD_COMMIT_BEGIN, 0);
	nla_put_u32(msg, VMIR_ATTR_DEV_ID, dev);
	vg_check(g, msg, "commit-begin: first one succeeds", 0);
	msg = vg_msg(g, VMIR_CMD_COMMIT_BEGIN, 0);
	nla_put_u32(msg, VMIR_ATTR_DEV_ID, dev);
	vg_check(g, msg, "commit-begin: second one is refused", EBUSY);
	msg = vg_msg(g, VMIR_CMD_CHUNK_CAPTURED, 0);
	nla_put_u32(msg, VMIR_ATTR_DEV_ID, dev);
	vg_put_chunk(msg, 3);
	vg_check(g, msg, "captured: chunk not in the commit set", ENOENT);
	msg = vg_msg(g, VMIR_CMD_COMMIT_END, 0);
	nla_put_u32(msg, VMIR_ATTR_DEV_ID, dev);
	nla_put_s32(msg, VMIR_ATTR_STATUS, 0);
	vg_check(g, msg, "commit-end: succeeds", 0);
	msg = vg_msg(g, VMIR_CMD_SET_STATE, 0);
	nla_put_u32(msg, VMIR_ATTR_DEV_ID, dev);
	nla_put_u32(msg, VMIR_ATTR_MAP_START, 16);
	bits[0] = 1;
	nla_put(msg, VMIR_ATTR_MAP_PRESENT, 1, bits);
	vg_check(g, msg, "set-state: start past the last chunk", EINVAL);
	msg = vg_msg(g, VMIR_CMD_SET_STATE, 0);
	nla_put_u32(msg, VMIR_ATTR_DEV_ID, dev);
	nla_put_u32(msg, VMIR_ATTR_MAP_START, 0);
	vg_check(g, msg, "set-state: no present map", EINVAL);
	msg = vg_msg(g, VMIR_CMD_START_DEVICE, 0);
	nla_put_u32(msg, VMIR_ATTR_DEV_ID, dev);
	vg_check(g, msg, "start: succeeds", 0);
	msg = vg_msg(g, VMIR_CMD_START_DEVICE, 0);
	nla_put_u32(msg, VMIR_ATTR_DEV_ID, dev);
	vg_check(g, msg, "start: second start is refused", EBUSY);
	msg = vg_msg(g, VMIR_CMD_SET_STATE, 0);
	nla_put_u32(msg, VMIR_ATTR_DEV_ID, dev);
	nla_put_u32(msg, VMIR_ATTR_MAP_START, 0);
	nla_put(msg, VMIR_ATTR_MAP_PRESENT, 1, bits);
	vg_check(g, msg, "set-state: device already started", EBUSY);

	/* Helper registry: a second socket may not take over silently. */
	msg = vg_msg(g, VMIR_CMD_HELPER_UNREGISTER, 0);
	vg_check(g, msg, "unregister: not registered", ENOENT);
	msg = vg_msg(g, VMIR_CMD_HELPER_REGISTER, 0);
	vg_check(g, msg, "register: first helper", 0);
	vg_connect(&g2);
	msg = vg_msg(&g2, VMIR_CMD_HELPER_REGISTER, 0);
	vg_check(&g2, msg, "register: second helper refused", EBUSY);
	msg = vg_msg(&g2, VMIR_CMD_HELPER_REGISTER, 0);
	nla_put_u64(msg, VMIR_ATTR_FLAGS, 1ULL << 9);
	vg_check(&g2, msg, "register: unknown flag", EINVAL);
	msg = vg_msg(&g2, VMIR_CMD_HELPER_REGISTER, 0);
	nla_put_u64(msg, VMIR_ATTR_FLAGS, VMIR_REGISTER_F_TAKEOVER);
	vg_check(&g2, msg, "register: takeover", 0);
	msg = vg_msg(g, VMIR_CMD_HELPER_UNREGISTER, 0);
	vg_check(g, msg, "unregister: replaced helper", ENOENT);
	msg = vg_msg(&g2, VMIR_CMD_HELPER_UNREGISTER, 0);
	vg_check(&g2, msg, "unregister: current helper", 0);
	vmir_nl_close(&g2.nl);

	msg = vg_msg(g, VMIR_CMD_REMOVE_DEVICE, 0);
	nla_put_u32(msg, VMIR_ATTR_DEV_ID, dev);
	vg_check(g, msg, "remove: succeeds", 0);
	msg = vg_msg(g, VMIR_CMD_REMOVE_DEVICE, 0);
	nla_put_u32(msg, VMIR_ATTR_DEV_ID, dev);
	vg_check(g, msg, "remove: removed device is gone", ENODEV);

	close(fd);
	close(rofd);
	close(dirfd);
	printf("%d failures\n", vg_failures);
	return vg_failures ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct vg_opts o;
	struct vg g;
	const char *cmd;

	if (argc < 2)
		die("usage: %s COMMAND [OPTIONS] (see the comment at the top of the source)",
		    prog);
	cmd = argv[1];
	vg_parse_opts(argc - 2, argv + 2, &o);
	signal(SIGPIPE, SIG_IGN);
	vg_connect(&g);
	setvbuf(stdout, NULL, _IOLBF, 0);

	if (!strcmp(cmd, "add"))
		return cmd_add(&g, &o);
	if (!strcmp(cmd, "set-state"))
		return cmd_set_state(&g, &o);
	if (!strcmp(cmd, "start"))
		return cmd_simple(&g, &o, VMIR_CMD_START_DEVICE, "START_DEVICE");
	if (!strcmp(cmd, "stop"))
		return cmd_simple(&g, &o, VMIR_CMD_STOP_DEVICE, "STOP_DEVICE");
	if (!strcmp(cmd, "remove"))
		return cmd_simple(&g, &o, VMIR_CMD_REMOVE_DEVICE,
				  "REMOVE_DEVICE");
	if (!strcmp(cmd, "status"))
		return cmd_status(&g, &o);
	if (!strcmp(cmd, "list"))
		return cmd_list(&g, &o);
	if (!strcmp(cmd, "state"))
		return cmd_state(&g, &o);
	if (!strcmp(cmd, "check-counters"))
		return cmd_check_counters(&g, &o);
	if (!strcmp(cmd, "prefetch"))
		return cmd_prefetch(&g, &o);
	if (!strcmp(cmd, "access"))
		return cmd_access(&g, &o);
	if (!strcmp(cmd, "ready"))
		return cmd_simple(&g, &o, VMIR_CMD_CHUNK_READY, "CHUNK_READY");
	if (!strcmp(cmd, "commit-begin"))
		return cmd_commit_begin(&g, &o);
	if (!strcmp(cmd, "captured"))
		return cmd_simple(&g, &o, VMIR_CMD_CHUNK_CAPTURED,
				  "CHUNK_CAPTURED");
	if (!strcmp(cmd, "capture"))
		return cmd_capture(&g, &o);
	if (!strcmp(cmd, "commit-end"))
		return cmd_simple(&g, &o, VMIR_CMD_COMMIT_END, "COMMIT_END");
	if (!strcmp(cmd, "set-version"))
		return cmd_simple(&g, &o, VMIR_CMD_SET_VERSION, "SET_VERSION");
	if (!strcmp(cmd, "register"))
		return cmd_simple(&g, &o, VMIR_CMD_HELPER_REGISTER,
				  "HELPER_REGISTER");
	if (!strcmp(cmd, "helper"))
		return cmd_helper(&g, &o);
	if (!strcmp(cmd, "malformed"))
		return cmd_malformed(&g, &o);
	die("unknown command '%s'", cmd);
	return 2;
}
