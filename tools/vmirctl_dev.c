// SPDX-License-Identifier: GPL-2.0
/*
 * vmirctl device commands. attach, detach and commit ask vmir-helper over
 * its control socket (protocol in tools/helper/ctl.h); devices and status
 * read the kernel module directly over generic netlink (tools/nl), so
 * they work without a helper.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../helper/ctl.h"
#include "vmir_nl.h"
#include "vmir_util.h"
#include "vmirctl.h"

/* --- helper control socket ---------------------------------------------------- */

/*
 * Send one request to the helper, put the text of an OK reply in out.
 * Returns VMIRCTL_OK, or VMIRCTL_FAIL after printing why (quiet: without).
 */
static int dev_helper_ask(const char *req, char *out, size_t outlen,
			  bool quiet)
{
	char reply[HELPER_MSG_MAX + 1];
	struct sockaddr_un sa;
	socklen_t len;
	ssize_t n;
	char *tab, *msg;
	int fd;

	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		vmir_err("cannot create a unix socket: %s", strerror(errno));
		return VMIRCTL_FAIL;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path + 1, HELPER_SOCK_NAME, strlen(HELPER_SOCK_NAME));
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
			  strlen(HELPER_SOCK_NAME));
	if (connect(fd, (struct sockaddr *)&sa, len)) {
		if (quiet) {
			close(fd);
			return VMIRCTL_FAIL;
		}
		vmir_err("cannot reach vmir-helper on @%s: %s: is vmir-helper running? start: vmir-helper --conf FILE",
			 HELPER_SOCK_NAME, strerror(errno));
		close(fd);
		return VMIRCTL_FAIL;
	}
	if (send(fd, req, strlen(req), MSG_NOSIGNAL) < 0) {
		vmir_err("cannot send to vmir-helper: %s", strerror(errno));
		close(fd);
		return VMIRCTL_FAIL;
	}
	n = recv(fd, reply, HELPER_MSG_MAX, 0);
	close(fd);
	if (n <= 0) {
		vmir_err("vmir-helper closed the connection without a reply%s%s: see its log",
			 n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
		return VMIRCTL_FAIL;
	}
	reply[n] = '\0';
	if (!strncmp(reply, "OK\t", 3)) {
		snprintf(out, outlen, "%s", reply + 3);
		return VMIRCTL_OK;
	}
	msg = reply;
	if (!strncmp(reply, "ERR\t", 4)) {
		tab = strchr(reply + 4, '\t');
		msg = tab ? tab + 1 : reply + 4;
	}
	if (!quiet)
		vmir_err("%s", msg);
	return VMIRCTL_FAIL;
}

static int dev_helper_call(const char *req, char *out, size_t outlen)
{
	return dev_helper_ask(req, out, outlen, false);
}

/* what the helper says of a device's sources (STATS, ctl.h) */
struct dev_sources {
	bool known;			/* no helper, or it does not serve it */
	uint64_t v[HELPER_STATS_FIELDS - 1];
	char addr[80];
};

static const char *const dev_source_keys[HELPER_STATS_FIELDS - 1] = {
	"peer_chunks", "peer_bytes", "chunkd_chunks", "chunkd_bytes",
	"peer_misses", "served_chunks", "served_bytes", "served_refused",
};

static void dev_sources_get(uint32_t id, struct dev_sources *src)
{
	char req[64], out[HELPER_MSG_MAX];
	int n;

	memset(src, 0, sizeof(*src));
	snprintf(req, sizeof(req), "STATS\t%u", id);
	if (dev_helper_ask(req, out, sizeof(out), true))
		return;
	n = sscanf(out, "%" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
		   " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %79s",
		   &src->v[0], &src->v[1], &src->v[2], &src->v[3], &src->v[4],
		   &src->v[5], &src->v[6], &src->v[7], src->addr);
	src->known = n == HELPER_STATS_FIELDS;
}

/* "/dev/vmirN", "vmirN" or "N" */
static int dev_parse(struct vmirctl *ctl, const char *arg, uint32_t *id)
{
	const char *p = arg;
	unsigned long v;
	char *end;

	if (!strncmp(p, "/dev/", 5))
		p += 5;
	if (!strncmp(p, "vmir", 4))
		p += 4;
	errno = 0;
	v = strtoul(p, &end, 10);
	if (*p < '0' || *p > '9' || *end || errno || v > UINT32_MAX)
		return vmirctl_usage(ctl,
				     "bad device '%s': expected /dev/vmirN, vmirN or N",
				     arg);
	*id = (uint32_t)v;
	return 0;
}

static int cmd_attach(struct vmirctl *ctl, int argc, char **argv)
{
	const char *pos[1], *mirror = "";
	bool no_prefetch = false;
	struct vmirctl_opt opts[] = {
		{ "mirror", &mirror, NULL },
		{ "no-prefetch", NULL, &no_prefetch },
		{ NULL, NULL, NULL },
	};
	char name[VMIR_NAME_MAX], req[HELPER_MSG_MAX], out[HELPER_MSG_MAX];
	const char *flags;
	uint32_t version;
	int ret;

	ret = vmirctl_parse(ctl, argc, argv, opts, pos, 1, 1, NULL);
	if (ret)
		return ret;
	ret = vmirctl_parse_ref(ctl, pos[0], name, sizeof(name), &version);
	if (ret)
		return ret;
	if (strchr(mirror, '\t') || strlen(mirror) >= 4000)
		return vmirctl_usage(ctl, "bad mirror directory '%s'", mirror);
	flags = no_prefetch ? "no-prefetch" : "";
	if (*mirror && *mirror != '/') {
		char *abs = realpath(".", NULL);

		if (!abs) {
			vmir_err("cannot resolve the current directory: %s",
				 strerror(errno));
			return VMIRCTL_FAIL;
		}
		snprintf(req, sizeof(req), "ATTACH\t%s\t%u\t%s/%s\t%s", name,
			 version, abs, mirror, flags);
		free(abs);
	} else {
		snprintf(req, sizeof(req), "ATTACH\t%s\t%u\t%s\t%s", name,
			 version, mirror, flags);
	}
	ret = dev_helper_call(req, out, sizeof(out));
	if (ret == VMIRCTL_OK)
		printf("%s\n", out);
	return ret;
}

static int cmd_detach(struct vmirctl *ctl, int argc, char **argv)
{
	const char *pos[1];
	char req[64], out[HELPER_MSG_MAX];
	uint32_t id;
	int ret;

	ret = vmirctl_parse(ctl, argc, argv, NULL, pos, 1, 1, NULL);
	if (ret)
		return ret;
	ret = dev_parse(ctl, pos[0], &id);
	if (ret)
		return ret;
	snprintf(req, sizeof(req), "DETACH\t%u", id);
	ret = dev_helper_call(req, out, sizeof(out));
	if (ret == VMIRCTL_OK && ctl->verbose)
		printf("mirror kept in %s\n", out);
	return ret;
}

static int cmd_commit(struct vmirctl *ctl, int argc, char **argv)
{
	const char *pos[1], *to = "";
	struct vmirctl_opt opts[] = {
		{ "to", &to, NULL }, { NULL, NULL, NULL },
	};
	char req[HELPER_MSG_MAX], out[HELPER_MSG_MAX];
	uint32_t id;
	int ret;

	ret = vmirctl_parse(ctl, argc, argv, opts, pos, 1, 1, NULL);
	if (ret)
		return ret;
	ret = dev_parse(ctl, pos[0], &id);
	if (ret)
		return ret;
	if (*to && vmir_name_valid(to))
		return vmirctl_usage(ctl,
				     "invalid image name '%s': use 1 to %d characters of A-Z a-z 0-9 . _ - not starting with '.'",
				     to, VMIR_NAME_MAX - 1);
	snprintf(req, sizeof(req), "COMMIT\t%u\t%s", id, to);
	ret = dev_helper_call(req, out, sizeof(out));
	if (ret == VMIRCTL_OK)
		printf("%s\n", out);
	return ret;
}

/* --- module queries ---------------------------------------------------------------- */

/* LIST (id UINT32_MAX) or GET_STATUS of one device, into *devs, *n */
static int dev_query(uint32_t id, struct vmir_nl_dev **devs, size_t *n)
{
	char err[512], emsg[VMIR_NL_MSG_MAX];
	struct vmir_nl nl;
	int ret;

	ret = vmir_nl_open(&nl, 0, err, sizeof(err));
	if (ret) {
		vmir_err("%s", err);
		return VMIRCTL_FAIL;
	}
	if (id == UINT32_MAX) {
		ret = vmir_nl_list(&nl, devs, n, emsg, sizeof(emsg));
	} else {
		*n = 1;
		*devs = calloc(1, sizeof(**devs));
		ret = *devs ? vmir_nl_get_status(&nl, id, *devs, emsg,
						 sizeof(emsg)) : -ENOMEM;
		if (ret) {
			free(*devs);
			*devs = NULL;
		}
	}
	vmir_nl_close(&nl);
	if (ret == -ENODEV) {
		vmir_err("no device /dev/vmir%u in this network namespace (vmirctl devices lists them)",
			 id);
		return VMIRCTL_FAIL;
	}
	if (ret) {
		vmir_err("%s of the vmir module failed: %s%s%s%s",
			 id == UINT32_MAX ? "LIST" : "GET_STATUS",
			 strerror(-ret), emsg[0] ? ": " : "", emsg,
			 ret == -EPERM ? " (run as root)" : "");
		return VMIRCTL_FAIL;
	}
	return VMIRCTL_OK;
}

static const char *dev_state_name(uint32_t s)
{
	switch (s) {
	case VMIR_DEV_STATE_SETUP:
		return "setup";
	case VMIR_DEV_STATE_LIVE:
		return "live";
	case VMIR_DEV_STATE_REMOVING:
		return "removing";
	case VMIR_DEV_STATE_STOPPED:
		return "stopped";
	default:
		return "unknown";
	}
}

static uint64_t dev_mean_lat_us(const struct vmir_nl_dev *d)
{
	uint64_t n = d->stat[VMIR_STAT_FETCH_LAT_COUNT];

	return n ? d->stat[VMIR_STAT_FETCH_LAT_SUM_NS] / n / 1000 : 0;
}

static void dev_json(struct vmirctl_json *j, const struct vmir_nl_dev *d)
{
	char path[48];

	snprintf(path, sizeof(path), "/dev/%s", d->disk);
	vmirctl_json_obj_begin(j, NULL);
	vmirctl_json_str(j, "device", path);
	vmirctl_json_u64(j, "id", d->id);
	vmirctl_json_str(j, "image", d->image);
	vmirctl_json_u64(j, "version", d->version);
	vmirctl_json_str(j, "state", dev_state_name(d->state));
	vmirctl_json_bool(j, "read_only", d->flags & VMIR_DEV_F_READ_ONLY);
	vmirctl_json_bool(j, "helper", d->flags & VMIR_DEV_F_HELPER);
	vmirctl_json_bool(j, "committing", d->flags & VMIR_DEV_F_COMMIT);
	vmirctl_json_u64(j, "size", d->size);
	vmirctl_json_u64(j, "chunk_size", d->chunk_size);
	vmirctl_json_u64(j, "chunks", d->nchunks);
	vmirctl_json_u64(j, "present", d->nr_present);
	vmirctl_json_u64(j, "dirty", d->nr_dirty);
	vmirctl_json_u64(j, "fetching", d->nr_fetching);
	vmirctl_json_u64(j, "parked", d->nr_parked);
	vmirctl_json_u64(j, "timeout_ms", d->timeout_ms);
	vmirctl_json_u64(j, "misses", d->stat[VMIR_STAT_MISSES]);
	vmirctl_json_u64(j, "prefetches", d->stat[VMIR_STAT_PREFETCHES]);
	vmirctl_json_u64(j, "hits_inline", d->stat[VMIR_STAT_HITS_INLINE]);
	vmirctl_json_u64(j, "hits_nowait", d->stat[VMIR_STAT_HITS_NOWAIT]);
	vmirctl_json_u64(j, "hits_worker", d->stat[VMIR_STAT_HITS_WORKER]);
	vmirctl_json_u64(j, "map_commits", d->stat[VMIR_STAT_MAP_COMMITS]);
	vmirctl_json_u64(j, "miss_waits", d->stat[VMIR_STAT_MISS_WAITS]);
	vmirctl_json_u64(j, "fetched_chunks",
			 d->stat[VMIR_STAT_FETCHED_CHUNKS]);
	vmirctl_json_u64(j, "fetched_bytes", d->stat[VMIR_STAT_FETCHED_BYTES]);
	vmirctl_json_u64(j, "fetch_errors", d->stat[VMIR_STAT_FETCH_ERRORS]);
	vmirctl_json_u64(j, "mean_fetch_latency_us", dev_mean_lat_us(d));
	vmirctl_json_u64(j, "timeouts", d->stat[VMIR_STAT_TIMEOUTS]);
	vmirctl_json_u64(j, "capture_waits", d->stat[VMIR_STAT_CAPTURE_WAITS]);
}

/* status --json: the module's fields and, from the helper, the sources */
static void dev_status_json(struct vmirctl_json *j, const struct vmir_nl_dev *d,
			    const struct dev_sources *src)
{
	unsigned int i;

	dev_json(j, d);
	for (i = 0; i < HELPER_STATS_FIELDS - 1; i++) {
		if (src->known)
			vmirctl_json_u64(j, dev_source_keys[i], src->v[i]);
		else
			vmirctl_json_null(j, dev_source_keys[i]);
	}
	if (src->known && strcmp(src->addr, "-"))
		vmirctl_json_str(j, "peer_addr", src->addr);
	else
		vmirctl_json_null(j, "peer_addr");
	vmirctl_json_obj_end(j);
}

static int cmd_devices(struct vmirctl *ctl, int argc, char **argv)
{
	struct vmir_nl_dev *devs = NULL;
	char sz[32];
	size_t i, n = 0;
	int ret;

	ret = vmirctl_parse(ctl, argc, argv, NULL, NULL, 0, 0, NULL);
	if (ret)
		return ret;
	ret = dev_query(UINT32_MAX, &devs, &n);
	if (ret)
		return ret;
	if (ctl->json) {
		struct vmirctl_json j;

		vmirctl_json_init(&j, stdout);
		vmirctl_json_arr_begin(&j, NULL);
		for (i = 0; i < n; i++) {
			dev_json(&j, &devs[i]);
			vmirctl_json_obj_end(&j);
		}
		vmirctl_json_arr_end(&j);
		vmirctl_json_end(&j);
	} else {
		printf("%-12s %-28s %-8s %-10s %s\n", "DEVICE", "IMAGE", "SIZE",
		       "STATE", "PRESENT/DIRTY/CHUNKS");
		for (i = 0; i < n; i++) {
			char ref[VMIR_NAME_MAX + 16], path[48];

			snprintf(path, sizeof(path), "/dev/%s", devs[i].disk);
			snprintf(ref, sizeof(ref), "%s@%u", devs[i].image,
				 devs[i].version);
			vmir_size_format(devs[i].size, sz, sizeof(sz));
			printf("%-12s %-28s %-8s %-10s %u/%u/%u\n", path, ref,
			       sz, dev_state_name(devs[i].state),
			       devs[i].nr_present, devs[i].nr_dirty,
			       devs[i].nchunks);
		}
	}
	free(devs);
	return VMIRCTL_OK;
}

static int cmd_status(struct vmirctl *ctl, int argc, char **argv)
{
	struct vmir_nl_dev *d = NULL;
	struct dev_sources src;
	const char *pos[1];
	char sz[32], cs[32], fb[32], pb[32], sb[32];
	uint32_t id;
	size_t n;
	int ret;

	ret = vmirctl_parse(ctl, argc, argv, NULL, pos, 1, 1, NULL);
	if (ret)
		return ret;
	ret = dev_parse(ctl, pos[0], &id);
	if (ret)
		return ret;
	ret = dev_query(id, &d, &n);
	if (ret)
		return ret;
	dev_sources_get(id, &src);
	if (ctl->json) {
		struct vmirctl_json j;

		vmirctl_json_init(&j, stdout);
		dev_status_json(&j, d, &src);
		vmirctl_json_end(&j);
	} else {
		vmir_size_format(d->size, sz, sizeof(sz));
		vmir_size_format(d->chunk_size, cs, sizeof(cs));
		vmir_size_format(d->stat[VMIR_STAT_FETCHED_BYTES], fb,
				 sizeof(fb));
		printf("device:        /dev/%s\n", d->disk);
		printf("image:         %s@%u\n", d->image, d->version);
		printf("state:         %s%s%s%s\n", dev_state_name(d->state),
		       d->flags & VMIR_DEV_F_READ_ONLY ? ", read-only" : "",
		       d->flags & VMIR_DEV_F_COMMIT ? ", committing" : "",
		       d->flags & VMIR_DEV_F_HELPER ? "" : ", no helper");
		printf("size:          %s (%" PRIu64 " bytes), chunk %s\n", sz,
		       d->size, cs);
		printf("chunks:        %u present, %u dirty, %u total\n",
		       d->nr_present, d->nr_dirty, d->nchunks);
		printf("in flight:     %u fetching, %u requests parked\n",
		       d->nr_fetching, d->nr_parked);
		if (d->flags & VMIR_DEV_F_COMMIT)
			printf("commit:        %u chunks, %u not captured\n",
			       d->nr_commit, d->nr_frozen);
		printf("fetched:       %" PRIu64 " chunks, %s (%" PRIu64 " bytes)\n",
		       d->stat[VMIR_STAT_FETCHED_CHUNKS], fb,
		       d->stat[VMIR_STAT_FETCHED_BYTES]);
		printf("misses:        %" PRIu64 " (%" PRIu64 " requests waited, %" PRIu64 " fetch errors, %" PRIu64 " timeouts)\n",
		       d->stat[VMIR_STAT_MISSES], d->stat[VMIR_STAT_MISS_WAITS],
		       d->stat[VMIR_STAT_FETCH_ERRORS],
		       d->stat[VMIR_STAT_TIMEOUTS]);
		if (src.known) {
			vmir_size_format(src.v[1], pb, sizeof(pb));
			vmir_size_format(src.v[3], sb, sizeof(sb));
			printf("sources:       %" PRIu64 " chunks (%s) from peers, %" PRIu64 " (%s) from chunk servers, %" PRIu64 " peer misses\n",
			       src.v[0], pb, src.v[2], sb, src.v[4]);
			vmir_size_format(src.v[6], pb, sizeof(pb));
			printf("this node:     %s; served %" PRIu64 " chunks (%s) to peers, refused %" PRIu64 "\n",
			       strcmp(src.addr, "-") ? src.addr :
			       "not serving peers", src.v[5], pb, src.v[7]);
		} else {
			printf("sources:       unknown (no vmir-helper serves it)\n");
		}
		printf("read-ahead:    %" PRIu64 " chunks prefetched\n",
		       d->stat[VMIR_STAT_PREFETCHES]);
		printf("hits:          %" PRIu64 " inline, %" PRIu64 " from the page cache without waiting, %" PRIu64 " on the worker\n",
		       d->stat[VMIR_STAT_HITS_INLINE],
		       d->stat[VMIR_STAT_HITS_NOWAIT],
		       d->stat[VMIR_STAT_HITS_WORKER]);
		printf("durable map:   %" PRIu64 " copies written\n",
		       d->stat[VMIR_STAT_MAP_COMMITS]);
		printf("fetch latency: %" PRIu64 " us mean\n",
		       dev_mean_lat_us(d));
	}
	free(d);
	return VMIRCTL_OK;
}

const struct vmirctl_cmd vmirctl_dev_cmds[] = {
	{ "attach", "NAME[@VER] [--mirror DIR] [--no-prefetch]",
	  "attach a version as /dev/vmirN (through vmir-helper; prefetch in its profile's order unless --no-prefetch)",
	  cmd_attach },
	{ "detach", "DEV", "save the mirror state and remove the device",
	  cmd_detach },
	{ "commit", "DEV [--to NAME]",
	  "publish the device content as a new version (or image NAME)",
	  cmd_commit },
	{ "devices", "", "list the vmir devices of this node", cmd_devices },
	{ "status", "DEV", "chunks, fetches and latency of a device",
	  cmd_status },
	{ NULL, NULL, NULL, NULL },
};
