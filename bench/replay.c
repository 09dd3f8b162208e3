// SPDX-License-Identifier: GPL-2.0
/*
 * replay: a recorded boot, replayed on a block device (issue 11).
 *
 *   replay DEV TRACE [--seed S] [--log FILE] [--no-think] [--deps all|last]
 *	replay TRACE on DEV with O_DIRECT through io_uring (see below);
 *	prints one line of "key=value" results.
 *   replay verify DEV TRACE [--seed S]
 *	check that every byte the trace writes holds the deterministic data
 *	of seed S on DEV; exit 1 at the first difference.
 *   replay fill DEV OFFSET LENGTH [--seed S]
 *	write LENGTH bytes of the deterministic data at OFFSET (O_DIRECT,
 *	fsync at the end): the new data of a snapshot.
 *   replay convert [--wall-us US] < BLKPARSE > TRACE
 *	build a trace from blkparse -f '%a %d %T.%9t %S %n\n' output of the
 *	issue (D) and complete (C) events of one device.
 *   replay info TRACE
 *	requests, bytes, recorded wall, think and overlap of a trace.
 *   replay dump TRACE
 *	the records as text: op offset length issue_us done_us.
 *
 * The trace format (little-endian, docs in bench/README.md):
 *	header, 48 bytes: magic "VMIRTRC1", version 1, record count,
 *	recorded boot wall time (us), FNV-1a 64 of the records, reserved;
 *	records, 24 bytes each, in issue order: byte offset, byte length,
 *	op (0 read, 1 write, 2 flush), flags (bit 0 FUA), issue and
 *	completion time in us from the first issue.
 *
 * Replay model. Request i is issued when (1) request i-1 has been issued,
 * (2) every request that completed before i was issued in the recording
 * has completed in the replay, and (3) the recorded think time since the
 * later of those two events has passed, spent sleeping. Requests that
 * were in flight together in the recording are therefore in flight
 * together in the replay, requests that waited for others wait for them,
 * and the CPU time the booting node spent between them becomes a sleep,
 * so that N nodes replaying at once share the storage but not a CPU.
 * Rule (2) is an upper bound on what i waited for: a read-ahead that
 * happened to complete before i on the recording's fast disk is waited
 * for too. --deps last keeps only the last of those completions (a lower
 * bound: the boot's one thread waits for what woke it); replayed on the
 * recording's own disk both give the recorded boot.
 *
 * Writes carry data derived from the byte offset and a seed only, so
 * whatever order overlapping writes complete in, the disk content is
 * known afterwards (replay verify).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>

#define RP_MAGIC	"VMIRTRC1"
#define RP_VERSION	1
#define RP_ALIGN	512
#define RP_MAX_LEN	(64u << 20)
#define RP_MAX_RECS	(1u << 24)
#define RP_RING		256
#define RP_NONE		UINT32_MAX	/* no dependency */

enum rp_op { RP_READ = 0, RP_WRITE = 1, RP_FLUSH = 2 };
#define RP_F_FUA	1

struct rp_header {
	char magic[8];
	uint32_t version;
	uint32_t nrec;
	uint64_t wall_us;
	uint64_t sum;
	uint64_t reserved[2];
};
_Static_assert(sizeof(struct rp_header) == 48, "trace header is 48 bytes");

struct rp_rec {
	uint64_t off;
	uint32_t len;
	uint8_t op;
	uint8_t flags;
	uint16_t reserved;
	uint32_t issue_us;
	uint32_t done_us;
};
_Static_assert(sizeof(struct rp_rec) == 24, "trace record is 24 bytes");

struct rp_trace {
	struct rp_header h;
	struct rp_rec *r;
};

static const char *prog = "replay";

static void usage(void)
{
	fprintf(stderr,
		"usage: %s DEV TRACE [--seed S] [--log FILE] [--no-think] [--deps all|last]\n"
		"       %s verify DEV TRACE [--seed S]\n"
		"       %s fill DEV OFFSET LENGTH [--seed S]\n"
		"       %s convert [--wall-us US] < BLKPARSE-OUTPUT > TRACE\n"
		"       %s info TRACE\n"
		"       %s dump TRACE\n",
		prog, prog, prog, prog, prog, prog);
	exit(2);
}

static double rp_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t rp_fnv(const void *p, size_t len)
{
	const unsigned char *b = p;
	uint64_t h = 0xcbf29ce484222325ull;

	while (len--) {
		h ^= *b++;
		h *= 0x100000001b3ull;
	}
	return h;
}

/* the data of the 8-byte word at byte offset @off: splitmix64 */
static uint64_t rp_word(uint64_t seed, uint64_t off)
{
	uint64_t z = seed * 0x9e3779b97f4a7c15ull + (off >> 3);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void rp_fill(void *buf, uint64_t off, uint32_t len, uint64_t seed)
{
	uint64_t *w = buf;
	uint32_t i;

	for (i = 0; i < len / 8; i++)
		w[i] = rp_word(seed, off + 8ull * i);
}

static int rp_parse_u64(const char *s, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 0);
	if (errno || end == s || *end || *s == '-')
		return -EINVAL;
	return 0;
}

static int rp_load(const char *path, struct rp_trace *t)
{
	FILE *f = fopen(path, "rb");
	size_t n;
	uint32_t i;
	int ret = -EINVAL;

	if (!f) {
		fprintf(stderr, "%s: cannot open trace %s: %s\n", prog, path,
			strerror(errno));
		return -errno;
	}
	if (fread(&t->h, sizeof(t->h), 1, f) != 1 ||
	    memcmp(t->h.magic, RP_MAGIC, 8)) {
		fprintf(stderr, "%s: %s is not a trace (no %s header)\n", prog,
			path, RP_MAGIC);
		goto out_close;
	}
	if (t->h.version != RP_VERSION || !t->h.nrec ||
	    t->h.nrec > RP_MAX_RECS) {
		fprintf(stderr, "%s: %s: version %u with %u records is not supported (want version %d, 1..%u records)\n",
			prog, path, t->h.version, t->h.nrec, RP_VERSION,
			RP_MAX_RECS);
		goto out_close;
	}
	t->r = calloc(t->h.nrec, sizeof(*t->r));
	if (!t->r) {
		ret = -ENOMEM;
		goto out_close;
	}
	n = fread(t->r, sizeof(*t->r), t->h.nrec, f);
	if (n != t->h.nrec || fgetc(f) != EOF) {
		fprintf(stderr, "%s: %s: %zu records where the header says %u\n",
			prog, path, n, t->h.nrec);
		goto out_free;
	}
	if (rp_fnv(t->r, sizeof(*t->r) * t->h.nrec) != t->h.sum) {
		fprintf(stderr, "%s: %s: checksum mismatch (damaged trace)\n",
			prog, path);
		goto out_free;
	}
	for (i = 0; i < t->h.nrec; i++) {
		struct rp_rec *r = &t->r[i];

		if (r->op > RP_FLUSH || r->off % RP_ALIGN ||
		    r->len % RP_ALIGN || r->len > RP_MAX_LEN ||
		    (r->op != RP_FLUSH && !r->len) ||
		    r->done_us < r->issue_us ||
		    (i && r->issue_us < t->r[i - 1].issue_us)) {
			fprintf(stderr, "%s: %s: record %u is invalid (op %u, offset %" PRIu64 ", length %u, issue %u us, done %u us)\n",
				prog, path, i, r->op, r->off, r->len,
				r->issue_us, r->done_us);
			goto out_free;
		}
	}
	fclose(f);
	return 0;

out_free:
	free(t->r);
out_close:
	fclose(f);
	return ret;
}

static int rp_open(const char *dev, int flags, uint64_t *size)
{
	struct stat st;
	int fd = open(dev, flags | O_DIRECT | O_CLOEXEC);

	if (fd < 0) {
		fprintf(stderr, "%s: cannot open %s with O_DIRECT: %s\n", prog,
			dev, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st))
		goto out_err;
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, size))
			goto out_err;
	} else {
		*size = st.st_size;
	}
	return fd;

out_err:
	fprintf(stderr, "%s: cannot size %s: %s\n", prog, dev, strerror(errno));
	close(fd);
	return -1;
}

/* every record must fit on the device */
static int rp_fits(const struct rp_trace *t, const char *dev, uint64_t size)
{
	uint32_t i;

	for (i = 0; i < t->h.nrec; i++) {
		if (t->r[i].off + t->r[i].len > size) {
			fprintf(stderr, "%s: record %u (offset %" PRIu64 ", length %u) is beyond the end of %s (%" PRIu64 " bytes): wrong device for this trace?\n",
				prog, i, t->r[i].off, t->r[i].len, dev, size);
			return -ERANGE;
		}
	}
	return 0;
}

/* --- replay ------------------------------------------------------------- */

struct rp_state {
	const struct rp_trace *t;
	uint32_t n;
	uint32_t *need;		/* requests completed before i's issue */
	uint32_t *last;		/* the last of them, or RP_NONE */
	uint32_t *cpos;		/* i's position in completion order */
	double *delay;		/* recorded think time before i, s */
	bool *cdone;		/* by completion-order position */
	double *reach;		/* replay time the done prefix reached p */
	double *issued;		/* replay issue time of i */
	double *completed;	/* replay completion time of i */
	void **buf;		/* write buffers in flight */
	uint32_t prefix;	/* completion-order prefix done */
	void *mem;		/* the arrays above */
};

static int rp_cmp_done(const void *a, const void *b, void *arg)
{
	const struct rp_rec *r = arg;
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	if (r[x].done_us != r[y].done_us)
		return r[x].done_us < r[y].done_us ? -1 : 1;
	return x < y ? -1 : x > y;
}

/*
 * The dependencies of the model above: need[i] is the number of requests
 * that completed (strictly) before i was issued; they are the first
 * need[i] in completion order. delay[i] is the time from the later of
 * the issue of i-1 and the last of those completions to i's issue.
 */
static int rp_plan(struct rp_state *s)
{
	const struct rp_rec *r = s->t->r;
	uint32_t n = s->n, i, *order, p = 0;
	double anchor;

	order = calloc(n, sizeof(*order));
	if (!order)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		order[i] = i;
	qsort_r(order, n, sizeof(*order), rp_cmp_done, (void *)r);
	for (i = 0; i < n; i++)
		s->cpos[order[i]] = i;
	for (i = 0; i < n; i++) {
		while (p < n && r[order[p]].done_us < r[i].issue_us)
			p++;
		s->need[i] = p;
		s->last[i] = p ? order[p - 1] : RP_NONE;
		anchor = i ? r[i - 1].issue_us : 0;
		if (p && r[order[p - 1]].done_us > anchor)
			anchor = r[order[p - 1]].done_us;
		s->delay[i] = (r[i].issue_us - anchor) / 1e6;
	}
	free(order);
	return 0;
}

static int rp_submit(struct io_uring *ring, int fd, struct rp_state *s,
		     uint32_t i, uint64_t seed, void *rbuf)
{
	const struct rp_rec *r = &s->t->r[i];
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	void *b = rbuf;

	if (!sqe)
		return -EBUSY;
	switch (r->op) {
	case RP_READ:
		io_uring_prep_read(sqe, fd, rbuf, r->len, r->off);
		break;
	case RP_WRITE:
		if (posix_memalign(&b, 4096, r->len))
			return -ENOMEM;
		rp_fill(b, r->off, r->len, seed);
		s->buf[i] = b;
		io_uring_prep_write(sqe, fd, b, r->len, r->off);
		if (r->flags & RP_F_FUA)
			sqe->rw_flags = RWF_DSYNC;
		break;
	default:
		io_uring_prep_fsync(sqe, fd, 0);
		break;
	}
	io_uring_sqe_set_data64(sqe, i);
	return 0;
}

/* one completion: check it, free its buffer, advance the done prefix */
static int rp_complete(struct rp_state *s, struct io_uring_cqe *cqe,
		       const char *dev, double now)
{
	uint32_t i = (uint32_t)io_uring_cqe_get_data64(cqe);
	const struct rp_rec *r = &s->t->r[i];
	int want = r->op == RP_FLUSH ? 0 : (int)r->len;

	if (i >= s->n) {
		fprintf(stderr, "%s: completion for unknown request %u\n",
			prog, i);
		return -EIO;
	}
	if (cqe->res != want) {
		fprintf(stderr, "%s: request %u (%s at %" PRIu64 ", %u bytes) on %s: %s\n",
			prog, i, r->op == RP_READ ? "read" :
			r->op == RP_WRITE ? "write" : "flush", r->off, r->len,
			dev, cqe->res < 0 ? strerror(-cqe->res) : "short transfer");
		return -EIO;
	}
	free(s->buf[i]);
	s->buf[i] = NULL;
	s->completed[i] = now;
	s->cdone[s->cpos[i]] = true;
	while (s->prefix < s->n && s->cdone[s->prefix])
		s->reach[++s->prefix] = now;
	return 0;
}

static int rp_write_log(const char *path, const struct rp_state *s,
			double t0)
{
	FILE *f = fopen(path, "w");
	uint32_t i;

	if (!f) {
		fprintf(stderr, "%s: cannot write %s: %s\n", prog, path,
			strerror(errno));
		return -errno;
	}
	fprintf(f, "# index op offset length rec_issue_us rec_done_us replay_issue_us replay_done_us need delay_us\n");
	for (i = 0; i < s->n; i++) {
		const struct rp_rec *r = &s->t->r[i];

		fprintf(f, "%u %u %" PRIu64 " %u %u %u %.0f %.0f %u %.0f\n", i,
			r->op, r->off, r->len, r->issue_us, r->done_us,
			(s->issued[i] - t0) * 1e6,
			(s->completed[i] - t0) * 1e6, s->need[i],
			s->delay[i] * 1e6);
	}
	if (fclose(f)) {
		fprintf(stderr, "%s: writing %s failed\n", prog, path);
		return -EIO;
	}
	return 0;
}

/* all per-request arrays in one allocation: 8-byte members first */
static int rp_alloc_state(struct rp_state *s, const struct rp_trace *t)
{
	size_t n = t->h.nrec;
	char *p;

	memset(s, 0, sizeof(*s));
	s->t = t;
	s->n = n;
	s->mem = calloc(1, n * (4 * sizeof(double) + sizeof(void *) +
				3 * sizeof(uint32_t) + sizeof(bool)) +
			sizeof(double));
	if (!s->mem)
		return -ENOMEM;
	p = s->mem;
	s->delay = (double *)p;
	p += n * sizeof(double);
	s->reach = (double *)p;
	p += (n + 1) * sizeof(double);
	s->issued = (double *)p;
	p += n * sizeof(double);
	s->completed = (double *)p;
	p += n * sizeof(double);
	s->buf = (void **)p;
	p += n * sizeof(void *);
	s->need = (uint32_t *)p;
	p += n * sizeof(uint32_t);
	s->cpos = (uint32_t *)p;
	p += n * sizeof(uint32_t);
	s->last = (uint32_t *)p;
	p += n * sizeof(uint32_t);
	s->cdone = (bool *)p;
	return rp_plan(s);
}

static void rp_free_state(struct rp_state *s)
{
	uint32_t i;

	for (i = 0; s->mem && i < s->n; i++)
		free(s->buf[i]);
	free(s->mem);
}

static int cmd_replay(int argc, char **argv)
{
	const char *dev, *log = NULL;
	struct rp_trace t = { 0 };
	struct rp_state s;
	struct io_uring ring;
	uint64_t seed = 1, size, rbytes = 0, wbytes = 0;
	double t0, now, due, io_wait = 0, think = 0, rec_think = 0;
	uint32_t next = 0, inflight = 0, maxq = 0, i, maxlen = 0;
	bool think_on = true, deps_all = true;
	void *rbuf = NULL;
	int fd, ret, a;

	if (argc < 2)
		usage();
	dev = argv[0];
	for (a = 2; a < argc; a++) {
		if (!strcmp(argv[a], "--no-think")) {
			think_on = false;
		} else if (a + 1 < argc && !strcmp(argv[a], "--seed")) {
			if (rp_parse_u64(argv[++a], &seed))
				usage();
		} else if (a + 1 < argc && !strcmp(argv[a], "--log")) {
			log = argv[++a];
		} else if (a + 1 < argc && !strcmp(argv[a], "--deps")) {
			a++;
			if (!strcmp(argv[a], "last"))
				deps_all = false;
			else if (strcmp(argv[a], "all"))
				usage();
		} else {
			usage();
		}
	}
	if (rp_load(argv[1], &t))
		return 1;
	fd = rp_open(dev, O_RDWR, &size);
	if (fd < 0)
		goto out_trace;
	if (rp_fits(&t, dev, size))
		goto out_fd;
	ret = rp_alloc_state(&s, &t);
	if (ret) {
		fprintf(stderr, "%s: %s\n", prog, strerror(-ret));
		goto out_state;
	}
	for (i = 0; i < s.n; i++) {
		if (t.r[i].len > maxlen)
			maxlen = t.r[i].len;
		rec_think += s.delay[i];
	}
	if (posix_memalign(&rbuf, 4096, maxlen ? maxlen : 4096))
		goto out_state;
	ret = io_uring_queue_init(RP_RING, &ring, 0);
	if (ret) {
		fprintf(stderr, "%s: io_uring_queue_init: %s\n", prog,
			strerror(-ret));
		goto out_buf;
	}

	t0 = now = rp_now();
	s.reach[0] = t0;
	while (next < s.n || inflight) {
		struct io_uring_cqe *cqe;
		struct __kernel_timespec ts;
		uint32_t dep = next < s.n ? s.last[next] : RP_NONE;
		bool ready = next < s.n && inflight < RP_RING &&
			     (deps_all ? s.prefix >= s.need[next] :
			      dep == RP_NONE || s.completed[dep] > 0);
		double w0;

		if (ready) {
			double anchor = deps_all ? s.reach[s.need[next]] :
					dep == RP_NONE ? t0 : s.completed[dep];

			if (next && s.issued[next - 1] > anchor)
				anchor = s.issued[next - 1];
			due = anchor + (think_on ? s.delay[next] : 0);
			if (now >= due) {
				ret = rp_submit(&ring, fd, &s, next, seed,
						rbuf);
				if (ret) {
					fprintf(stderr, "%s: submitting request %u: %s\n",
						prog, next, strerror(-ret));
					goto out_ring;
				}
				s.issued[next] = now;
				if (t.r[next].op == RP_READ)
					rbytes += t.r[next].len;
				else if (t.r[next].op == RP_WRITE)
					wbytes += t.r[next].len;
				next++;
				inflight++;
				if (inflight > maxq)
					maxq = inflight;
				/* issue everything due before waiting */
				continue;
			}
		}
		ret = io_uring_submit(&ring);
		if (ret < 0) {
			fprintf(stderr, "%s: io_uring_submit: %s\n", prog,
				strerror(-ret));
			goto out_ring;
		}
		w0 = rp_now();
		if (ready) {
			/* think time: sleep until due, or a completion */
			double d = due - w0;

			if (d < 0)
				d = 0;
			ts.tv_sec = (long long)d;
			ts.tv_nsec = (long long)((d - ts.tv_sec) * 1e9);
			ret = inflight ?
				io_uring_wait_cqe_timeout(&ring, &cqe, &ts) :
				-ETIME;
			if (ret == -ETIME && !inflight) {
				struct timespec req = { ts.tv_sec, ts.tv_nsec };

				nanosleep(&req, NULL);
			}
			now = rp_now();
			think += now - w0;
		} else {
			/* the next request waits for I/O */
			ret = io_uring_wait_cqe(&ring, &cqe);
			now = rp_now();
			io_wait += now - w0;
		}
		if (ret && ret != -ETIME && ret != -EINTR) {
			fprintf(stderr, "%s: io_uring_wait_cqe: %s\n", prog,
				strerror(-ret));
			goto out_ring;
		}
		while (io_uring_peek_cqe(&ring, &cqe) == 0) {
			if (rp_complete(&s, cqe, dev, now))
				goto out_ring;
			io_uring_cqe_seen(&ring, cqe);
			inflight--;
		}
	}
	now = rp_now();
	printf("wall_s=%.3f read_bytes=%" PRIu64 " write_bytes=%" PRIu64
	       " io_wait_s=%.3f think_s=%.3f requests=%u max_inflight=%u recorded_wall_s=%.3f recorded_think_s=%.3f\n",
	       now - t0, rbytes, wbytes, io_wait, think, s.n, maxq,
	       t.h.wall_us / 1e6, rec_think);
	if (log && rp_write_log(log, &s, t0))
		goto out_ring;
	io_uring_queue_exit(&ring);
	free(rbuf);
	rp_free_state(&s);
	close(fd);
	free(t.r);
	return 0;

out_ring:
	io_uring_queue_exit(&ring);
out_buf:
	free(rbuf);
out_state:
	rp_free_state(&s);
out_fd:
	close(fd);
out_trace:
	free(t.r);
	return 1;
}

/* --- verify, fill ------------------------------------------------------- */

static int cmd_verify(int argc, char **argv)
{
	struct rp_trace t = { 0 };
	uint64_t seed = 1, size, bytes = 0, k;
	uint32_t i, writes = 0;
	void *buf = NULL;
	int fd, ret = 1;

	if (argc != 2 && !(argc == 4 && !strcmp(argv[2], "--seed")))
		usage();
	if (argc == 4 && rp_parse_u64(argv[3], &seed))
		usage();
	if (rp_load(argv[1], &t))
		return 1;
	fd = rp_open(argv[0], O_RDONLY, &size);
	if (fd < 0)
		goto out_trace;
	if (rp_fits(&t, argv[0], size) || posix_memalign(&buf, 4096, RP_MAX_LEN))
		goto out_fd;
	for (i = 0; i < t.h.nrec; i++) {
		const struct rp_rec *r = &t.r[i];
		const uint64_t *w = buf;

		if (r->op != RP_WRITE)
			continue;
		if (pread(fd, buf, r->len, r->off) != (ssize_t)r->len) {
			fprintf(stderr, "%s: reading %u bytes at %" PRIu64 " of %s failed: %s\n",
				prog, r->len, r->off, argv[0],
				strerror(errno));
			goto out_buf;
		}
		for (k = 0; k < r->len / 8; k++) {
			if (w[k] != rp_word(seed, r->off + 8 * k)) {
				printf("mismatch: %s at byte %" PRIu64 " (write %u of the trace) does not hold the data of seed %" PRIu64 "\n",
				       argv[0], r->off + 8 * k, i, seed);
				goto out_buf;
			}
		}
		writes++;
		bytes += r->len;
	}
	printf("verified: %u writes, %" PRIu64 " bytes of seed %" PRIu64 " on %s\n",
	       writes, bytes, seed, argv[0]);
	ret = 0;
out_buf:
	free(buf);
out_fd:
	close(fd);
out_trace:
	free(t.r);
	return ret;
}

static int cmd_fill(int argc, char **argv)
{
	uint64_t off, len, seed = 1, size, done;
	const uint32_t step = 1 << 20;
	void *buf;
	int fd, ret = 1;

	if (argc != 3 && !(argc == 5 && !strcmp(argv[3], "--seed")))
		usage();
	if (rp_parse_u64(argv[1], &off) || rp_parse_u64(argv[2], &len) ||
	    (argc == 5 && rp_parse_u64(argv[4], &seed)))
		usage();
	if (off % RP_ALIGN || len % RP_ALIGN) {
		fprintf(stderr, "%s: fill: offset and length must be multiples of %d\n",
			prog, RP_ALIGN);
		return 2;
	}
	fd = rp_open(argv[0], O_WRONLY, &size);
	if (fd < 0)
		return 1;
	if (off + len > size) {
		fprintf(stderr, "%s: fill: %" PRIu64 " bytes at %" PRIu64 " do not fit on %s (%" PRIu64 " bytes)\n",
			prog, len, off, argv[0], size);
		goto out_fd;
	}
	if (posix_memalign(&buf, 4096, step))
		goto out_fd;
	for (done = 0; done < len; done += step) {
		uint32_t n = len - done < step ? len - done : step;

		rp_fill(buf, off + done, n, seed);
		if (pwrite(fd, buf, n, off + done) != (ssize_t)n) {
			fprintf(stderr, "%s: fill: writing %s at %" PRIu64 " failed: %s\n",
				prog, argv[0], off + done, strerror(errno));
			goto out_buf;
		}
	}
	if (fsync(fd)) {
		fprintf(stderr, "%s: fill: fsync %s: %s\n", prog, argv[0],
			strerror(errno));
		goto out_buf;
	}
	ret = 0;
out_buf:
	free(buf);
out_fd:
	close(fd);
	return ret;
}

/* --- convert, info ------------------------------------------------------ */

struct rp_open_req {
	uint64_t sector;
	uint32_t sectors;
	uint8_t op;
	uint8_t flags;
	uint64_t issue_ns;
	uint32_t idx;
};

static int rp_cmp_issue(const void *a, const void *b)
{
	const struct rp_rec *x = a, *y = b;

	return x->issue_us < y->issue_us ? -1 : x->issue_us > y->issue_us;
}

/*
 * blkparse lines "ACTION RWBS SECONDS.NANOSECONDS SECTOR BLOCKS". A D
 * event opens a request, the first C event with the same sector, length
 * and direction closes it. Discards are skipped (a boot on ext4 without
 * -o discard issues none; the count is reported).
 */
static int cmd_convert(int argc, char **argv)
{
	struct rp_open_req *open_reqs = NULL;
	struct rp_rec *recs = NULL;
	struct rp_header h = { 0 };
	uint64_t wall_us = 0, first_ns = UINT64_MAX, sec, blocks;
	uint32_t nopen = 0, nrec = 0, capo = 0, capr = 0, skipped = 0;
	uint32_t unmatched = 0, i;
	char line[512], act[8], rwbs[16];
	double ts;
	int ret = 1;

	if (argc == 2 && !strcmp(argv[0], "--wall-us")) {
		if (rp_parse_u64(argv[1], &wall_us))
			usage();
	} else if (argc) {
		usage();
	}
	while (fgets(line, sizeof(line), stdin)) {
		uint8_t op, flags = 0;
		uint64_t ns;

		if (sscanf(line, "%7s %15s %lf %" SCNu64 " %" SCNu64, act, rwbs,
			   &ts, &sec, &blocks) != 5)
			continue;
		if (strcmp(act, "D") && strcmp(act, "C"))
			continue;
		if (strchr(rwbs, 'D') || strchr(rwbs, 'E')) {
			skipped += !strcmp(act, "D");
			continue;
		}
		if (strchr(rwbs, 'W'))
			op = RP_WRITE;
		else if (strchr(rwbs, 'R'))
			op = RP_READ;
		else if (strchr(rwbs, 'F') || strchr(rwbs, 'N'))
			op = RP_FLUSH;
		else
			continue;
		if (op == RP_FLUSH)
			sec = blocks = 0;
		/* a write with preflush: the flush and the write in one */
		if (op == RP_WRITE && rwbs[0] == 'F')
			flags |= RP_F_FUA;
		if (strchr(rwbs + 1, 'F'))
			flags |= RP_F_FUA;
		ns = (uint64_t)(ts * 1e9 + 0.5);
		if (!strcmp(act, "D")) {
			if (nopen == capo) {
				capo = capo ? 2 * capo : 1024;
				open_reqs = realloc(open_reqs,
						    capo * sizeof(*open_reqs));
				if (!open_reqs)
					goto out_mem;
			}
			open_reqs[nopen++] = (struct rp_open_req){
				sec, (uint32_t)blocks, op, flags, ns, 0 };
			if (ns < first_ns)
				first_ns = ns;
			continue;
		}
		for (i = 0; i < nopen; i++)
			if (open_reqs[i].sector == sec &&
			    open_reqs[i].sectors == blocks &&
			    open_reqs[i].op == op)
				break;
		if (i == nopen) {
			unmatched++;
			continue;
		}
		if (nrec == capr) {
			capr = capr ? 2 * capr : 1024;
			recs = realloc(recs, capr * sizeof(*recs));
			if (!recs)
				goto out_mem;
		}
		recs[nrec++] = (struct rp_rec){
			.off = open_reqs[i].sector * 512,
			.len = open_reqs[i].sectors * 512,
			.op = open_reqs[i].op,
			.flags = open_reqs[i].flags,
			.issue_us = (uint32_t)(open_reqs[i].issue_ns / 1000),
			.done_us = (uint32_t)(ns / 1000),
		};
		memmove(&open_reqs[i], &open_reqs[i + 1],
			(nopen - i - 1) * sizeof(*open_reqs));
		nopen--;
	}
	if (!nrec) {
		fprintf(stderr, "%s: convert: no completed request in the input (want blkparse -f '%%a %%d %%T.%%9t %%S %%n\\n' of D and C events)\n",
			prog);
		goto out_free;
	}
	for (i = 0; i < nrec; i++) {
		recs[i].issue_us -= (uint32_t)(first_ns / 1000);
		recs[i].done_us -= (uint32_t)(first_ns / 1000);
		if (recs[i].op == RP_FLUSH)
			recs[i].len = 0;
	}
	qsort(recs, nrec, sizeof(*recs), rp_cmp_issue);
	memcpy(h.magic, RP_MAGIC, 8);
	h.version = RP_VERSION;
	h.nrec = nrec;
	h.wall_us = wall_us;
	h.sum = rp_fnv(recs, sizeof(*recs) * nrec);
	if (fwrite(&h, sizeof(h), 1, stdout) != 1 ||
	    fwrite(recs, sizeof(*recs), nrec, stdout) != nrec ||
	    fflush(stdout)) {
		fprintf(stderr, "%s: convert: writing the trace failed\n",
			prog);
		goto out_free;
	}
	fprintf(stderr, "%s: convert: %u requests, %u never completed, %u completions without issue, %u discards skipped\n",
		prog, nrec, nopen, unmatched, skipped);
	ret = 0;
	goto out_free;
out_mem:
	fprintf(stderr, "%s: convert: out of memory\n", prog);
out_free:
	free(open_reqs);
	free(recs);
	return ret;
}

static int cmd_info(int argc, char **argv)
{
	struct rp_trace t = { 0 };
	struct rp_state s;
	uint64_t rb = 0, wb = 0;
	uint32_t i, reads = 0, writes = 0, flushes = 0, depth = 0, maxd = 0;
	uint32_t last = 0;
	double think = 0;
	int ret = 1;

	if (argc != 1)
		usage();
	if (rp_load(argv[0], &t))
		return 1;
	if (rp_alloc_state(&s, &t))
		goto out;
	for (i = 0; i < t.h.nrec; i++) {
		const struct rp_rec *r = &t.r[i];

		reads += r->op == RP_READ;
		writes += r->op == RP_WRITE;
		flushes += r->op == RP_FLUSH;
		rb += r->op == RP_READ ? r->len : 0;
		wb += r->op == RP_WRITE ? r->len : 0;
		think += s.delay[i];
		/* in flight at i's issue: issued before it, not done */
		depth = i + 1 - s.need[i];
		if (depth > maxd)
			maxd = depth;
		if (r->done_us > last)
			last = r->done_us;
	}
	printf("requests=%u reads=%u writes=%u flushes=%u read_bytes=%" PRIu64
	       " write_bytes=%" PRIu64 " span_s=%.3f recorded_wall_s=%.3f think_s=%.3f max_inflight=%u\n",
	       t.h.nrec, reads, writes, flushes, rb, wb, last / 1e6,
	       t.h.wall_us / 1e6, think, maxd);
	ret = 0;
out:
	rp_free_state(&s);
	free(t.r);
	return ret;
}

static int cmd_dump(int argc, char **argv)
{
	static const char *const ops[] = { "R", "W", "F" };
	struct rp_trace t = { 0 };
	uint32_t i;

	if (argc != 1)
		usage();
	if (rp_load(argv[0], &t))
		return 1;
	for (i = 0; i < t.h.nrec; i++)
		printf("%s%s %" PRIu64 " %u %u %u\n", ops[t.r[i].op],
		       t.r[i].flags & RP_F_FUA ? "F" : "", t.r[i].off,
		       t.r[i].len, t.r[i].issue_us, t.r[i].done_us);
	free(t.r);
	return 0;
}

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
} rp_cmds[] = {
	{ "verify", cmd_verify },
	{ "fill", cmd_fill },
	{ "convert", cmd_convert },
	{ "info", cmd_info },
	{ "dump", cmd_dump },
};

int main(int argc, char **argv)
{
	size_t i;

	if (argc < 2 || argv[1][0] == '-')
		usage();
	for (i = 0; i < sizeof(rp_cmds) / sizeof(rp_cmds[0]); i++)
		if (!strcmp(argv[1], rp_cmds[i].name))
			return rp_cmds[i].run(argc - 2, argv + 2);
	/* replay DEV TRACE ... */
	return cmd_replay(argc - 1, argv + 1);
}
