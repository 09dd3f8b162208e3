// SPDX-License-Identifier: GPL-2.0
/*
 * vmirctl device commands. attach, detach and commit ask vmir-helper over
 * its control socket (protocol in helper.h); devices and status read the
 * kernel module directly over generic netlink, so they work without a
 * helper.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "helper.h"
#include "vmir_util.h"
#include "vmirctl.h"

/* --- helper control socket ---------------------------------------------------- */

/*
 * Send one request to the helper, put the text of an OK reply in out.
 * Returns VMIRCTL_OK, or VMIRCTL_FAIL after printing why.
 */
static int dev_helper_call(const char *req, char *out, size_t outlen)
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
	vmir_err("%s", msg);
	return VMIRCTL_FAIL;
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
	struct vmirctl_opt opts[] = { { "mirror", &mirror }, { NULL, NULL } };
	char name[VMIR_NAME_MAX], req[HELPER_MSG_MAX], out[HELPER_MSG_MAX];
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
	if (*mirror && *mirror != '/') {
		char *abs = realpath(".", NULL);

		if (!abs) {
			vmir_err("cannot resolve the current directory: %s",
				 strerror(errno));
			return VMIRCTL_FAIL;
		}
		snprintf(req, sizeof(req), "ATTACH\t%s\t%u\t%s/%s", name,
			 version, abs, mirror);
		free(abs);
	} else {
		snprintf(req, sizeof(req), "ATTACH\t%s\t%u\t%s", name, version,
			 mirror);
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
	struct vmirctl_opt opts[] = { { "to", &to }, { NULL, NULL } };
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

struct dev_info {
	uint32_t id;
	char disk[32];
	char image[256];
	char version[256];
	uint64_t size;
	uint32_t chunk_size, nchunks, timeout_ms, state;
	uint64_t flags;
	uint32_t nr_present, nr_dirty, nr_fetching, nr_parked;
	uint32_t nr_commit, nr_frozen;
	uint64_t stat[VMIR_STAT_MAX + 1];
};

struct dev_infos {
	struct dev_info *d;
	size_t n, cap;
};

static uint32_t nl_u32(struct nlattr **tb, int a)
{
	return tb[a] ? nla_get_u32(tb[a]) : 0;
}

static int dev_parse_info(struct nl_msg *msg, void *arg)
{
	struct dev_infos *l = arg;
	struct nlattr *tb[VMIR_ATTR_MAX + 1], *st[VMIR_STAT_MAX + 1];
	struct dev_info *d;
	int i;

	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, VMIR_ATTR_MAX, NULL) < 0 ||
	    !tb[VMIR_ATTR_DEV_ID])
		return -EPROTO;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 8;

		d = realloc(l->d, cap * sizeof(*d));
		if (!d)
			return -ENOMEM;
		l->d = d;
		l->cap = cap;
	}
	d = &l->d[l->n++];
	memset(d, 0, sizeof(*d));
	d->id = nl_u32(tb, VMIR_ATTR_DEV_ID);
	if (tb[VMIR_ATTR_DISK_NAME])
		snprintf(d->disk, sizeof(d->disk), "%s",
			 nla_get_string(tb[VMIR_ATTR_DISK_NAME]));
	else
		snprintf(d->disk, sizeof(d->disk), "vmir%u", d->id);
	if (tb[VMIR_ATTR_IMAGE])
		snprintf(d->image, sizeof(d->image), "%s",
			 nla_get_string(tb[VMIR_ATTR_IMAGE]));
	if (tb[VMIR_ATTR_VERSION])
		snprintf(d->version, sizeof(d->version), "%s",
			 nla_get_string(tb[VMIR_ATTR_VERSION]));
	d->size = tb[VMIR_ATTR_SIZE] ? nla_get_u64(tb[VMIR_ATTR_SIZE]) : 0;
	d->chunk_size = nl_u32(tb, VMIR_ATTR_CHUNK_SIZE);
	d->nchunks = nl_u32(tb, VMIR_ATTR_NCHUNKS);
	d->timeout_ms = nl_u32(tb, VMIR_ATTR_TIMEOUT_MS);
	d->state = nl_u32(tb, VMIR_ATTR_STATE);
	d->flags = tb[VMIR_ATTR_DEV_FLAGS] ?
		   nla_get_u64(tb[VMIR_ATTR_DEV_FLAGS]) : 0;
	d->nr_present = nl_u32(tb, VMIR_ATTR_NR_PRESENT);
	d->nr_dirty = nl_u32(tb, VMIR_ATTR_NR_DIRTY);
	d->nr_fetching = nl_u32(tb, VMIR_ATTR_NR_FETCHING);
	d->nr_parked = nl_u32(tb, VMIR_ATTR_NR_PARKED);
	d->nr_commit = nl_u32(tb, VMIR_ATTR_NR_COMMIT);
	d->nr_frozen = nl_u32(tb, VMIR_ATTR_NR_FROZEN);
	if (tb[VMIR_ATTR_STATS] &&
	    !nla_parse_nested(st, VMIR_STAT_MAX, tb[VMIR_ATTR_STATS], NULL))
		for (i = 0; i <= VMIR_STAT_MAX; i++)
			if (st[i] && nla_len(st[i]) == 8)
				d->stat[i] = nla_get_u64(st[i]);
	return 0;
}

/* LIST (id UINT32_MAX) or GET_STATUS of one device */
static int dev_query(uint32_t id, struct dev_infos *l)
{
	struct helper_nl_req r = { .parse = dev_parse_info, .arg = l };
	struct nl_sock *s;
	struct nl_msg *msg;
	char err[512];
	int family, ret;

	ret = helper_nl_open(&s, &family, err, sizeof(err));
	if (ret) {
		vmir_err("%s", err);
		return VMIRCTL_FAIL;
	}
	msg = helper_nl_msg(family, id == UINT32_MAX ? VMIR_CMD_LIST :
			    VMIR_CMD_GET_STATUS, id == UINT32_MAX);
	if (!msg || (id != UINT32_MAX &&
		     nla_put_u32(msg, VMIR_ATTR_DEV_ID, id))) {
		nlmsg_free(msg);
		nl_socket_free(s);
		vmir_err("out of memory");
		return VMIRCTL_FAIL;
	}
	ret = helper_nl_call(s, msg, &r);
	nl_socket_free(s);
	if (ret == -ENODEV) {
		vmir_err("no device /dev/vmir%u in this network namespace (vmirctl devices lists them)",
			 id);
		return VMIRCTL_FAIL;
	}
	if (ret) {
		vmir_err("%s of the vmir module failed: %s%s%s%s",
			 id == UINT32_MAX ? "LIST" : "GET_STATUS",
			 strerror(-ret), r.msg[0] ? ": " : "", r.msg,
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

static uint64_t dev_mean_lat_us(const struct dev_info *d)
{
	uint64_t n = d->stat[VMIR_STAT_FETCH_LAT_COUNT];

	return n ? d->stat[VMIR_STAT_FETCH_LAT_SUM_NS] / n / 1000 : 0;
}

static void dev_json(struct vmirctl_json *j, const struct dev_info *d)
{
	char path[48];

	snprintf(path, sizeof(path), "/dev/%s", d->disk);
	vmirctl_json_obj_begin(j, NULL);
	vmirctl_json_str(j, "device", path);
	vmirctl_json_u64(j, "id", d->id);
	vmirctl_json_str(j, "image", d->image);
	vmirctl_json_str(j, "version", d->version);
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
	vmirctl_json_u64(j, "miss_waits", d->stat[VMIR_STAT_MISS_WAITS]);
	vmirctl_json_u64(j, "fetched_chunks",
			 d->stat[VMIR_STAT_FETCHED_CHUNKS]);
	vmirctl_json_u64(j, "fetched_bytes", d->stat[VMIR_STAT_FETCHED_BYTES]);
	vmirctl_json_u64(j, "fetch_errors", d->stat[VMIR_STAT_FETCH_ERRORS]);
	vmirctl_json_u64(j, "mean_fetch_latency_us", dev_mean_lat_us(d));
	vmirctl_json_u64(j, "timeouts", d->stat[VMIR_STAT_TIMEOUTS]);
	vmirctl_json_u64(j, "capture_waits", d->stat[VMIR_STAT_CAPTURE_WAITS]);
	vmirctl_json_obj_end(j);
}

static int cmd_devices(struct vmirctl *ctl, int argc, char **argv)
{
	struct dev_infos l = { 0 };
	char sz[32];
	size_t i;
	int ret;

	ret = vmirctl_parse(ctl, argc, argv, NULL, NULL, 0, 0, NULL);
	if (ret)
		return ret;
	ret = dev_query(UINT32_MAX, &l);
	if (ret)
		return ret;
	if (ctl->json) {
		struct vmirctl_json j;

		vmirctl_json_init(&j, stdout);
		vmirctl_json_arr_begin(&j, NULL);
		for (i = 0; i < l.n; i++)
			dev_json(&j, &l.d[i]);
		vmirctl_json_arr_end(&j);
		vmirctl_json_end(&j);
	} else {
		printf("%-12s %-28s %-8s %-10s %s\n", "DEVICE", "IMAGE", "SIZE",
		       "STATE", "PRESENT/DIRTY/CHUNKS");
		for (i = 0; i < l.n; i++) {
			char ref[600], path[48];

			snprintf(path, sizeof(path), "/dev/%s", l.d[i].disk);
			snprintf(ref, sizeof(ref), "%s@%s", l.d[i].image,
				 l.d[i].version);
			vmir_size_format(l.d[i].size, sz, sizeof(sz));
			printf("%-12s %-28s %-8s %-10s %u/%u/%u\n", path, ref,
			       sz, dev_state_name(l.d[i].state),
			       l.d[i].nr_present, l.d[i].nr_dirty,
			       l.d[i].nchunks);
		}
	}
	free(l.d);
	return VMIRCTL_OK;
}

static int cmd_status(struct vmirctl *ctl, int argc, char **argv)
{
	struct dev_infos l = { 0 };
	const struct dev_info *d;
	const char *pos[1];
	char sz[32], cs[32], fb[32];
	uint32_t id;
	int ret;

	ret = vmirctl_parse(ctl, argc, argv, NULL, pos, 1, 1, NULL);
	if (ret)
		return ret;
	ret = dev_parse(ctl, pos[0], &id);
	if (ret)
		return ret;
	ret = dev_query(id, &l);
	if (ret)
		return ret;
	if (l.n != 1) {
		free(l.d);
		vmir_err("GET_STATUS of /dev/vmir%u returned no device", id);
		return VMIRCTL_FAIL;
	}
	d = &l.d[0];
	if (ctl->json) {
		struct vmirctl_json j;

		vmirctl_json_init(&j, stdout);
		dev_json(&j, d);
		vmirctl_json_end(&j);
	} else {
		vmir_size_format(d->size, sz, sizeof(sz));
		vmir_size_format(d->chunk_size, cs, sizeof(cs));
		vmir_size_format(d->stat[VMIR_STAT_FETCHED_BYTES], fb,
				 sizeof(fb));
		printf("device:        /dev/%s\n", d->disk);
		printf("image:         %s@%s\n", d->image, d->version);
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
		printf("read-ahead:    %" PRIu64 " chunks prefetched\n",
		       d->stat[VMIR_STAT_PREFETCHES]);
		printf("fetch latency: %" PRIu64 " us mean\n",
		       dev_mean_lat_us(d));
	}
	free(l.d);
	return VMIRCTL_OK;
}

const struct vmirctl_cmd vmirctl_dev_cmds[] = {
	{ "attach", "NAME[@VER] [--mirror DIR]",
	  "attach a version as /dev/vmirN (through vmir-helper)", cmd_attach },
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
