// SPDX-License-Identifier: GPL-2.0
/*
 * vmirctl: administer a vmir cluster.
 *
 *   vmirctl [--conf FILE] [--json] [-v] COMMAND [ARGS...]
 *
 * The configuration comes from --conf or $VMIR_CONF. Exit status: 0 on
 * success, 1 when the command failed (the message names the input and the
 * cause), 2 on a bad command line (with a usage line).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "libvmir.h"
#include "vmir_util.h"
#include "vmirctl.h"

/* --- shared helpers ---------------------------------------------------------- */

struct vmir_client *vmirctl_client(struct vmirctl *ctl)
{
	int ret;

	if (ctl->c)
		return ctl->c;
	ret = vmir_client_open(ctl->conf_path, &ctl->c);
	if (ret) {
		vmir_err("%s", vmir_client_error(NULL));
		ctl->c = NULL;
	}
	return ctl->c;
}

int vmirctl_fail(struct vmirctl *ctl)
{
	vmir_err("%s", vmir_client_error(ctl->c));
	return VMIRCTL_FAIL;
}

int vmirctl_usage(struct vmirctl *ctl, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	vmir_err("%s", msg);
	if (ctl->cmd)
		fprintf(stderr, "usage: vmirctl [--conf FILE] [--json] [-v] %s %s\n",
			ctl->cmd->name, ctl->cmd->args);
	else
		fprintf(stderr,
			"usage: vmirctl [--conf FILE] [--json] [-v] COMMAND [ARGS...] (vmirctl --help lists the commands)\n");
	return VMIRCTL_USAGE;
}

int vmirctl_parse(struct vmirctl *ctl, int argc, char **argv,
		  struct vmirctl_opt *opts, const char **pos,
		  unsigned int npos_min, unsigned int npos_max,
		  unsigned int *npos)
{
	bool dashdash = false;
	unsigned int n = 0;
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!dashdash && !strcmp(a, "--")) {
			dashdash = true;
			continue;
		}
		/* the global flags may follow the command too */
		if (!dashdash && !strcmp(a, "--json")) {
			ctl->json = true;
			continue;
		}
		if (!dashdash && (!strcmp(a, "-v") || !strcmp(a, "--verbose"))) {
			ctl->verbose = true;
			vmir_log_set_verbose(true);
			continue;
		}
		if (!dashdash && a[0] == '-' && a[1]) {
			struct vmirctl_opt *o;
			const char *eq = NULL;
			size_t len;

			if (a[1] != '-')
				return vmirctl_usage(ctl, "unknown option '%s'",
						     a);
			a += 2;
			eq = strchr(a, '=');
			len = eq ? (size_t)(eq - a) : strlen(a);
			for (o = opts; o && o->name; o++)
				if (strlen(o->name) == len &&
				    !strncmp(o->name, a, len))
					break;
			if (!o || !o->name)
				return vmirctl_usage(ctl, "unknown option '--%.*s'",
						     (int)len, a);
			if (o->flag) {
				if (eq)
					return vmirctl_usage(ctl,
							     "option '--%s' takes no value",
							     o->name);
				*o->flag = true;
				continue;
			}
			if (eq) {
				*o->value = eq + 1;
			} else {
				if (i + 1 >= argc)
					return vmirctl_usage(ctl,
							     "option '--%s' needs a value",
							     o->name);
				*o->value = argv[++i];
			}
			continue;
		}
		if (n >= npos_max)
			return vmirctl_usage(ctl, "unexpected argument '%s'",
					     a);
		pos[n++] = a;
	}
	if (n < npos_min)
		return vmirctl_usage(ctl, "missing arguments");
	if (npos)
		*npos = n;
	return 0;
}

int vmirctl_parse_ref(struct vmirctl *ctl, const char *arg, char *name,
		      size_t namelen, uint32_t *version)
{
	const char *at = strrchr(arg, '@');
	unsigned long long v;
	size_t len;
	char *end;

	*version = 0;
	len = at ? (size_t)(at - arg) : strlen(arg);
	if (len == 0 || len >= namelen || len >= VMIR_NAME_MAX)
		return vmirctl_usage(ctl, "bad image name in '%s'", arg);
	memcpy(name, arg, len);
	name[len] = '\0';
	if (vmir_name_valid(name))
		return vmirctl_usage(ctl,
				     "invalid image name '%s': use 1 to %d characters of A-Z a-z 0-9 . _ - not starting with '.'",
				     name, VMIR_NAME_MAX - 1);
	if (!at)
		return 0;
	errno = 0;
	v = strtoull(at + 1, &end, 10);
	if (at[1] < '0' || at[1] > '9' || *end || errno || v < 1 ||
	    v > UINT32_MAX)
		return vmirctl_usage(ctl,
				     "bad version in '%s': expected NAME@N with N >= 1",
				     arg);
	*version = (uint32_t)v;
	return 0;
}

int vmirctl_parse_size(struct vmirctl *ctl, const char *opt, const char *arg,
		       uint64_t *out)
{
	if (vmir_size_parse(arg, out))
		return vmirctl_usage(ctl,
				     "bad size '%s' for %s: expected a number with an optional K, M, G or T suffix",
				     arg, opt);
	return 0;
}

void vmirctl_time(uint64_t ns, char *out, size_t len)
{
	time_t t = (time_t)(ns / 1000000000ull);
	struct tm tm;

	if (!ns || !localtime_r(&t, &tm) ||
	    !strftime(out, len, "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(out, len, "-");
}

static void utc_time(uint64_t ns, char *out, size_t len)
{
	time_t t = (time_t)(ns / 1000000000ull);
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, len, "%s", "");
}

static const char *sz(uint64_t v, char *buf, size_t len)
{
	vmir_size_format(v, buf, len);
	return buf;
}

/* a root of all '0': every chunk of the version is zero */
static bool root_empty(const char *root)
{
	return root[strspn(root, "0")] == '\0';
}

/*
 * The parent as "NAME@V", or "-"; a deleted parent image says so and
 * gives its id, as its name may be another image's now.
 */
static const char *parent_str(const struct vmir_version_info *vi, char *buf,
			      size_t len)
{
	if (!vi->parent_image[0])
		snprintf(buf, len, "-");
	else if (vi->parent_deleted)
		snprintf(buf, len, "%s@%u (deleted image, id %" PRIu64 ")",
			 vi->parent_image, vi->parent_version,
			 vi->parent_image_id);
	else
		snprintf(buf, len, "%s@%u", vi->parent_image,
			 vi->parent_version);
	return buf;
}

static void json_version_fields(struct vmirctl_json *j,
				const struct vmir_version_info *vi)
{
	char t[64];

	vmirctl_json_str(j, "image", vi->image);
	vmirctl_json_u64(j, "image_id", vi->image_id);
	vmirctl_json_u64(j, "version", vi->version);
	vmirctl_json_u64(j, "size", vi->size);
	vmirctl_json_u64(j, "chunk_size", vi->chunk_size);
	vmirctl_json_str(j, "root", vi->root);
	if (vi->parent_image[0]) {
		vmirctl_json_str(j, "parent_image", vi->parent_image);
		vmirctl_json_u64(j, "parent_version", vi->parent_version);
		vmirctl_json_u64(j, "parent_image_id", vi->parent_image_id);
	} else {
		vmirctl_json_null(j, "parent_image");
		vmirctl_json_null(j, "parent_version");
		vmirctl_json_null(j, "parent_image_id");
	}
	vmirctl_json_bool(j, "parent_deleted", vi->parent_deleted);
	vmirctl_json_u64(j, "ctime_ns", vi->ctime_ns);
	utc_time(vi->ctime_ns, t, sizeof(t));
	vmirctl_json_str(j, "ctime", t);
	if (vi->profile[0])
		vmirctl_json_str(j, "profile", vi->profile);
	else
		vmirctl_json_null(j, "profile");
	vmirctl_json_bool(j, "profile_inherited", vi->profile_inherited);
}

static void json_version(const struct vmir_version_info *vi)
{
	struct vmirctl_json j;

	vmirctl_json_init(&j, stdout);
	vmirctl_json_obj_begin(&j, NULL);
	json_version_fields(&j, vi);
	vmirctl_json_obj_end(&j);
	vmirctl_json_end(&j);
}

/* --- progress bar on a terminal ---------------------------------------------- */

struct bar {
	const char *verb;
	uint64_t start_ns;
	bool shown;
};

static void bar_update(void *arg, uint64_t done, uint64_t total)
{
	struct bar *b = arg;
	char d[32], t[32], r[32];
	double secs = (double)(vmir_mono_ns() - b->start_ns) / 1e9;
	unsigned int pct = total ? (unsigned int)(done * 100 / total) : 100;
	unsigned int fill = pct / 4, i;
	char line[26];

	for (i = 0; i < 25; i++)
		line[i] = i < fill ? '#' : '.';
	line[25] = '\0';
	fprintf(stderr, "\r%s [%s] %3u%% %s/%s %s/s   ", b->verb, line, pct,
		sz(done, d, sizeof(d)), sz(total, t, sizeof(t)),
		sz(secs > 0 ? (uint64_t)((double)done / secs) : 0, r,
		   sizeof(r)));
	fflush(stderr);
	b->shown = true;
}

static void bar_end(struct bar *b)
{
	if (b->shown)
		fputc('\n', stderr);
}

/* --- image commands -------------------------------------------------------------- */

static int cmd_keygen(struct vmirctl *ctl, int argc, char **argv)
{
	const char *pos[1];
	int ret;

	ret = vmirctl_parse(ctl, argc, argv, NULL, pos, 1, 1, NULL);
	if (ret)
		return ret;
	/* it says what went wrong itself */
	if (vmir_key_generate(pos[0]))
		return VMIRCTL_FAIL;
	if (ctl->json) {
		struct vmirctl_json j;

		vmirctl_json_init(&j, stdout);
		vmirctl_json_obj_begin(&j, NULL);
		vmirctl_json_str(&j, "key_file", pos[0]);
		vmirctl_json_obj_end(&j);
		vmirctl_json_end(&j);
	} else {
		printf("wrote a new cluster key to %s (mode 0600)\n", pos[0]);
	}
	return VMIRCTL_OK;
}

static int cmd_create(struct vmirctl *ctl, int argc, char **argv)
{
	const char *size_s = NULL, *cs_s = NULL, *pos[1];
	struct vmirctl_opt opts[] = {
		{ "size", &size_s, NULL }, { "chunk-size", &cs_s, NULL },
		{ NULL, NULL, NULL },
	};
	struct vmir_version_info vi;
	struct vmir_client *c;
	uint64_t size, cs = 0;
	char a[32], b[32];
	int ret;

	ret = vmirctl_parse(ctl, argc, argv, opts, pos, 1, 1, NULL);
	if (ret)
		return ret;
	if (!size_s)
		return vmirctl_usage(ctl, "--size is required");
	ret = vmirctl_parse_size(ctl, "--size", size_s, &size);
	if (!ret && cs_s)
		ret = vmirctl_parse_size(ctl, "--chunk-size", cs_s, &cs);
	if (ret)
		return ret;
	if (cs > UINT32_MAX || (cs && !vmir_chunk_size_valid(cs)))
		return vmirctl_usage(ctl,
				     "bad --chunk-size '%s': use a power of two from 4K to 4M",
				     cs_s);
	c = vmirctl_client(ctl);
	if (!c)
		return VMIRCTL_FAIL;
	if (vmir_image_create(c, pos[0], size, (uint32_t)cs, &vi))
		return vmirctl_fail(ctl);
	if (ctl->json)
		json_version(&vi);
	else
		printf("created %s@%u (size %s, chunk size %s)\n", vi.image,
		       vi.version, sz(vi.size, a, sizeof(a)),
		       sz(vi.chunk_size, b, sizeof(b)));
	return VMIRCTL_OK;
}

static int cmd_import(struct vmirctl *ctl, int argc, char **argv)
{
	const char *cs_s = NULL, *pos[2];
	struct vmirctl_opt opts[] = {
		{ "chunk-size", &cs_s, NULL }, { NULL, NULL, NULL },
	};
	struct vmir_import_stats st;
	struct vmir_version_info vi;
	struct vmir_client *c;
	struct bar bar = { .verb = "importing" };
	char a[32], b[32];
	uint64_t cs = 0;
	double secs;
	int ret;

	ret = vmirctl_parse(ctl, argc, argv, opts, pos, 2, 2, NULL);
	if (ret)
		return ret;
	if (cs_s) {
		ret = vmirctl_parse_size(ctl, "--chunk-size", cs_s, &cs);
		if (ret)
			return ret;
		if (cs > UINT32_MAX || !vmir_chunk_size_valid(cs))
			return vmirctl_usage(ctl,
					     "bad --chunk-size '%s': use a power of two from 4K to 4M",
					     cs_s);
	}
	if (vmir_name_valid(pos[0]))
		return vmirctl_usage(ctl,
				     "invalid image name '%s': use 1 to %d characters of A-Z a-z 0-9 . _ - not starting with '.'",
				     pos[0], VMIR_NAME_MAX - 1);
	c = vmirctl_client(ctl);
	if (!c)
		return VMIRCTL_FAIL;
	bar.start_ns = vmir_mono_ns();
	ret = vmir_image_import(c, pos[0], pos[1], (uint32_t)cs,
				isatty(2) ? bar_update : NULL, &bar, &vi);
	bar_end(&bar);
	if (ret)
		return vmirctl_fail(ctl);
	secs = (double)(vmir_mono_ns() - bar.start_ns) / 1e9;
	vmir_client_import_stats(c, &st);
	if (ctl->json) {
		struct vmirctl_json j;

		vmirctl_json_init(&j, stdout);
		vmirctl_json_obj_begin(&j, NULL);
		json_version_fields(&j, &vi);
		vmirctl_json_u64(&j, "chunks", st.chunks);
		vmirctl_json_u64(&j, "zero_chunks", st.zero_chunks);
		vmirctl_json_u64(&j, "new_chunks", st.new_chunks);
		vmirctl_json_u64(&j, "new_nodes", st.new_nodes);
		vmirctl_json_u64(&j, "bytes_sent", st.new_bytes);
		vmirctl_json_u64(&j, "stored_chunks", st.stored_chunks);
		vmirctl_json_u64(&j, "stored_bytes", st.stored_bytes);
		vmirctl_json_u64(&j, "elapsed_ms", (uint64_t)(secs * 1000));
		vmirctl_json_obj_end(&j);
		vmirctl_json_end(&j);
	} else {
		printf("imported %s@%u (%" PRIu64 " chunks, %" PRIu64
		       " new, %s stored) in %.1fs, %s/s\n",
		       vi.image, vi.version, st.chunks, st.new_chunks,
		       sz(st.stored_bytes, a, sizeof(a)), secs,
		       sz(secs > 0 ? (uint64_t)((double)vi.size / secs) : 0,
			  b, sizeof(b)));
	}
	return VMIRCTL_OK;
}

/*
 * The start of a command on one version: argv parsed (npos positionals,
 * the first NAME[@VER] into name and *version), then the client opened.
 * NULL, with the exit status in *ret, when either fails.
 */
static struct vmir_client *ref_cmd_begin(struct vmirctl *ctl, int argc,
					 char **argv, const char **pos,
					 unsigned int npos, char *name,
					 uint32_t *version, int *ret)
{
	struct vmir_client *c;

	*ret = vmirctl_parse(ctl, argc, argv, NULL, pos, npos, npos, NULL);
	if (!*ret)
		*ret = vmirctl_parse_ref(ctl, pos[0], name, VMIR_NAME_MAX,
					 version);
	if (*ret)
		return NULL;
	c = vmirctl_client(ctl);
	if (!c)
		*ret = VMIRCTL_FAIL;
	return c;
}

static int cmd_export(struct vmirctl *ctl, int argc, char **argv)
{
	char name[VMIR_NAME_MAX], a[32], b[32];
	struct vmir_version_info vi;
	struct vmir_client *c;
	struct bar bar = { .verb = "exporting" };
	const char *pos[2];
	uint32_t version;
	double secs;
	int ret;

	c = ref_cmd_begin(ctl, argc, argv, pos, 2, name, &version, &ret);
	if (!c)
		return ret;
	/* pin "latest" first, so the summary names what was written */
	if (vmir_image_lookup(c, name, version, &vi))
		return vmirctl_fail(ctl);
	bar.start_ns = vmir_mono_ns();
	ret = vmir_image_export(c, name, vi.version, pos[1],
				isatty(2) ? bar_update : NULL, &bar);
	bar_end(&bar);
	if (ret)
		return vmirctl_fail(ctl);
	secs = (double)(vmir_mono_ns() - bar.start_ns) / 1e9;
	if (ctl->json) {
		struct vmirctl_json j;

		vmirctl_json_init(&j, stdout);
		vmirctl_json_obj_begin(&j, NULL);
		json_version_fields(&j, &vi);
		vmirctl_json_str(&j, "file", pos[1]);
		vmirctl_json_u64(&j, "elapsed_ms", (uint64_t)(secs * 1000));
		vmirctl_json_obj_end(&j);
		vmirctl_json_end(&j);
	} else {
		printf("exported %s@%u to %s (%s) in %.1fs, %s/s\n", vi.image,
		       vi.version, pos[1], sz(vi.size, a, sizeof(a)), secs,
		       sz(secs > 0 ? (uint64_t)((double)vi.size / secs) : 0,
			  b, sizeof(b)));
	}
	return VMIRCTL_OK;
}

static int cmd_clone(struct vmirctl *ctl, int argc, char **argv)
{
	char name[VMIR_NAME_MAX];
	struct vmir_version_info vi;
	struct vmir_client *c;
	const char *pos[2];
	uint32_t version;
	int ret;

	ret = vmirctl_parse(ctl, argc, argv, NULL, pos, 2, 2, NULL);
	if (!ret)
		ret = vmirctl_parse_ref(ctl, pos[0], name, sizeof(name),
					&version);
	if (ret)
		return ret;
	if (vmir_name_valid(pos[1]))
		return vmirctl_usage(ctl,
				     "invalid image name '%s': use 1 to %d characters of A-Z a-z 0-9 . _ - not starting with '.'",
				     pos[1], VMIR_NAME_MAX - 1);
	c = vmirctl_client(ctl);
	if (!c)
		return VMIRCTL_FAIL;
	if (vmir_image_clone(c, name, version, pos[1], &vi))
		return vmirctl_fail(ctl);
	if (ctl->json)
		json_version(&vi);
	else
		printf("cloned %s@%u to %s@%u\n", vi.parent_image,
		       vi.parent_version, vi.image, vi.version);
	return VMIRCTL_OK;
}

static int cmd_versions(struct vmirctl *ctl, int argc, char **argv)
{
	struct vmir_version_info *v;
	struct vmir_client *c;
	const char *pos[1];
	char a[32], b[32], t[64], par[VMIR_NAME_MAX + 64];
	size_t n, i;
	int ret;

	ret = vmirctl_parse(ctl, argc, argv, NULL, pos, 1, 1, NULL);
	if (ret)
		return ret;
	c = vmirctl_client(ctl);
	if (!c)
		return VMIRCTL_FAIL;
	if (vmir_image_versions(c, pos[0], &v, &n))
		return vmirctl_fail(ctl);
	if (ctl->json) {
		struct vmirctl_json j;

		vmirctl_json_init(&j, stdout);
		vmirctl_json_arr_begin(&j, NULL);
		for (i = 0; i < n; i++) {
			vmirctl_json_obj_begin(&j, NULL);
			json_version_fields(&j, &v[i]);
			vmirctl_json_obj_end(&j);
		}
		vmirctl_json_arr_end(&j);
		vmirctl_json_end(&j);
	} else {
		printf("%-8s %-10s %-6s %-16s %-20s %s\n", "VERSION", "SIZE",
		       "CHUNK", "ROOT", "PARENT", "CREATED");
		for (i = 0; i < n; i++) {
			parent_str(&v[i], par, sizeof(par));
			vmirctl_time(v[i].ctime_ns, t, sizeof(t));
			printf("%-8u %-10s %-6s %-16.16s %-20s %s\n",
			       v[i].version, sz(v[i].size, a, sizeof(a)),
			       sz(v[i].chunk_size, b, sizeof(b)),
			       root_empty(v[i].root) ? "(empty)" : v[i].root,
			       par, t);
		}
	}
	free(v);
	return VMIRCTL_OK;
}

static int cmd_list(struct vmirctl *ctl, int argc, char **argv)
{
	struct vmir_image_info *v;
	struct vmir_client *c;
	char a[32], b[32], t[64];
	size_t n, i;
	int ret;

	ret = vmirctl_parse(ctl, argc, argv, NULL, NULL, 0, 0, NULL);
	if (ret)
		return ret;
	c = vmirctl_client(ctl);
	if (!c)
		return VMIRCTL_FAIL;
	if (vmir_image_list(c, &v, &n))
		return vmirctl_fail(ctl);
	if (ctl->json) {
		struct vmirctl_json j;

		vmirctl_json_init(&j, stdout);
		vmirctl_json_arr_begin(&j, NULL);
		for (i = 0; i < n; i++) {
			vmirctl_json_obj_begin(&j, NULL);
			vmirctl_json_str(&j, "name", v[i].name);
			vmirctl_json_u64(&j, "latest", v[i].latest);
			vmirctl_json_u64(&j, "versions", v[i].nversions);
			vmirctl_json_u64(&j, "size", v[i].size);
			vmirctl_json_u64(&j, "chunk_size", v[i].chunk_size);
			vmirctl_json_u64(&j, "ctime_ns", v[i].ctime_ns);
			utc_time(v[i].ctime_ns, t, sizeof(t));
			vmirctl_json_str(&j, "ctime", t);
			vmirctl_json_obj_end(&j);
		}
		vmirctl_json_arr_end(&j);
		vmirctl_json_end(&j);
	} else {
		printf("%-24s %-7s %-9s %-10s %-6s %s\n", "NAME", "LATEST",
		       "VERSIONS", "SIZE", "CHUNK", "CREATED");
		for (i = 0; i < n; i++) {
			vmirctl_time(v[i].ctime_ns, t, sizeof(t));
			printf("%-24s %-7u %-9u %-10s %-6s %s\n", v[i].name,
			       v[i].latest, v[i].nversions,
			       sz(v[i].size, a, sizeof(a)),
			       sz(v[i].chunk_size, b, sizeof(b)), t);
		}
	}
	free(v);
	return VMIRCTL_OK;
}

static int cmd_info(struct vmirctl *ctl, int argc, char **argv)
{
	char name[VMIR_NAME_MAX], a[32], t[64], par[VMIR_NAME_MAX + 64];
	struct vmir_version_info vi;
	struct vmir_client *c;
	const char *pos[1];
	uint64_t chunks, bytes;
	uint32_t version;
	int ret;

	c = ref_cmd_begin(ctl, argc, argv, pos, 1, name, &version, &ret);
	if (!c)
		return ret;
	if (vmir_image_lookup(c, name, version, &vi))
		return vmirctl_fail(ctl);
	/* the version found, so both calls describe the same one */
	if (vmir_image_usage(c, name, vi.version, &chunks, &bytes))
		return vmirctl_fail(ctl);
	if (ctl->json) {
		struct vmirctl_json j;

		vmirctl_json_init(&j, stdout);
		vmirctl_json_obj_begin(&j, NULL);
		json_version_fields(&j, &vi);
		vmirctl_json_u64(&j, "chunks",
				 (vi.size + vi.chunk_size - 1) / vi.chunk_size);
		vmirctl_json_u64(&j, "chunks_stored", chunks);
		vmirctl_json_u64(&j, "bytes_stored", bytes);
		vmirctl_json_obj_end(&j);
		vmirctl_json_end(&j);
		return VMIRCTL_OK;
	}
	vmirctl_time(vi.ctime_ns, t, sizeof(t));
	printf("image:         %s (id %" PRIu64 ")\n", vi.image, vi.image_id);
	printf("version:       %u\n", vi.version);
	printf("size:          %s (%" PRIu64 " bytes)\n",
	       sz(vi.size, a, sizeof(a)), vi.size);
	printf("chunk size:    %s\n", sz(vi.chunk_size, a, sizeof(a)));
	printf("parent:        %s\n", parent_str(&vi, par, sizeof(par)));
	printf("root:          %s\n",
	       root_empty(vi.root) ? "(empty: all chunks zero)" : vi.root);
	printf("created:       %s\n", t);
	printf("profile:       %s%s\n", vi.profile[0] ? vi.profile : "(none)",
	       vi.profile_inherited ? " (inherited from the parent)" : "");
	printf("chunks:        %" PRIu64 "\n",
	       (vi.size + vi.chunk_size - 1) / vi.chunk_size);
	printf("chunks stored: %" PRIu64 "\n", chunks);
	printf("bytes stored:  %s (%" PRIu64 " bytes)\n",
	       sz(bytes, a, sizeof(a)), bytes);
	return VMIRCTL_OK;
}

static void json_profile(const struct vmir_version_info *vi,
			 const struct vmir_profile *p)
{
	struct vmirctl_json j;
	char t[64];

	vmirctl_json_init(&j, stdout);
	vmirctl_json_obj_begin(&j, NULL);
	vmirctl_json_str(&j, "image", vi->image);
	vmirctl_json_u64(&j, "version", vi->version);
	if (!p) {
		vmirctl_json_null(&j, "profile");
		vmirctl_json_obj_end(&j);
		vmirctl_json_end(&j);
		return;
	}
	vmirctl_json_str(&j, "profile", p->id);
	vmirctl_json_bool(&j, "inherited", vi->profile_inherited);
	vmirctl_json_u64(&j, "deployments", p->deployments);
	vmirctl_json_u64(&j, "nchunks", p->nchunks);
	vmirctl_json_u64(&j, "bytes", (uint64_t)p->n * vi->chunk_size);
	vmirctl_json_u64(&j, "ctime_ns", p->ctime_ns);
	utc_time(p->ctime_ns, t, sizeof(t));
	vmirctl_json_str(&j, "ctime", t);
	vmirctl_json_arr_begin(&j, "chunks");
	for (size_t i = 0; i < p->n; i++)
		vmirctl_json_u64(&j, NULL, p->chunks[i]);
	vmirctl_json_arr_end(&j);
	vmirctl_json_obj_end(&j);
	vmirctl_json_end(&j);
}

static int cmd_profile(struct vmirctl *ctl, int argc, char **argv)
{
	char name[VMIR_NAME_MAX], a[32], t[64];
	const char *pos[1], *chunks_s = NULL;
	struct vmirctl_opt opts[] = {
		{ "chunks", &chunks_s, NULL }, { NULL, NULL, NULL },
	};
	struct vmir_version_info vi;
	struct vmir_profile p;
	struct vmir_client *c;
	uint64_t shown = 16, age_s, now = (uint64_t)time(NULL);
	uint32_t version;
	int ret;

	ret = vmirctl_parse(ctl, argc, argv, opts, pos, 1, 1, NULL);
	if (!ret)
		ret = vmirctl_parse_ref(ctl, pos[0], name, sizeof(name),
					&version);
	if (!ret && chunks_s) {
		char *end;

		errno = 0;
		shown = strtoull(chunks_s, &end, 10);
		if (errno || *end || !*chunks_s || *chunks_s == '-')
			return vmirctl_usage(ctl, "bad --chunks '%s': a count",
					     chunks_s);
	}
	if (ret)
		return ret;
	c = vmirctl_client(ctl);
	if (!c)
		return VMIRCTL_FAIL;
	if (vmir_image_lookup(c, name, version, &vi))
		return vmirctl_fail(ctl);
	if (!vi.profile[0]) {
		if (ctl->json)
			json_profile(&vi, NULL);
		else
			printf("%s@%u has no profile yet: no deployment of it (or of its parent) was learned\n",
			       vi.image, vi.version);
		return VMIRCTL_OK;
	}
	if (vmir_profile_read(c, vi.profile, &p))
		return vmirctl_fail(ctl);
	if (ctl->json) {
		json_profile(&vi, &p);
		vmir_profile_free(&p);
		return VMIRCTL_OK;
	}
	vmirctl_time(p.ctime_ns, t, sizeof(t));
	age_s = now > p.ctime_ns / 1000000000ull ?
		now - p.ctime_ns / 1000000000ull : 0;
	printf("version:     %s@%u\n", vi.image, vi.version);
	printf("profile:     %s%s\n", p.id, vi.profile_inherited ?
	       " (inherited from the parent)" : "");
	printf("deployments: %u merged\n", p.deployments);
	printf("chunks:      %zu of %" PRIu64 " (%s)\n", p.n, p.nchunks,
	       sz((uint64_t)p.n * vi.chunk_size, a, sizeof(a)));
	printf("learned:     %s (%" PRIu64 " s ago)\n", t, age_s);
	printf("order:      ");
	for (size_t i = 0; i < p.n && i < shown; i++)
		printf(" %u", p.chunks[i]);
	printf("%s\n", p.n > shown ? " ..." : "");
	vmir_profile_free(&p);
	return VMIRCTL_OK;
}

static int cmd_peers(struct vmirctl *ctl, int argc, char **argv)
{
	char name[VMIR_NAME_MAX];
	struct vmir_version_info vi;
	struct vmir_peer_info *p;
	struct vmir_client *c;
	const char *pos[1];
	uint32_t version;
	size_t n, i;
	int ret;

	c = ref_cmd_begin(ctl, argc, argv, pos, 1, name, &version, &ret);
	if (!c)
		return ret;
	/* the version the list is of, also when "latest" was asked */
	if (vmir_image_lookup(c, name, version, &vi) ||
	    vmir_peers_list(c, name, vi.version, &p, &n))
		return vmirctl_fail(ctl);
	if (ctl->json) {
		struct vmirctl_json j;

		vmirctl_json_init(&j, stdout);
		vmirctl_json_obj_begin(&j, NULL);
		vmirctl_json_str(&j, "image", vi.image);
		vmirctl_json_u64(&j, "version", vi.version);
		vmirctl_json_arr_begin(&j, "peers");
		for (i = 0; i < n; i++) {
			vmirctl_json_obj_begin(&j, NULL);
			vmirctl_json_str(&j, "addr", p[i].addr);
			vmirctl_json_u64(&j, "lease_ms", p[i].ttl_ms);
			vmirctl_json_obj_end(&j);
		}
		vmirctl_json_arr_end(&j);
		vmirctl_json_obj_end(&j);
		vmirctl_json_end(&j);
	} else if (!n) {
		printf("no node has %s@%u attached\n", vi.image, vi.version);
	} else {
		printf("%-48s %s\n", "NODE", "LEASE");
		for (i = 0; i < n; i++)
			printf("%-48s %u.%03u s\n", p[i].addr,
			       p[i].ttl_ms / 1000, p[i].ttl_ms % 1000);
	}
	free(p);
	return VMIRCTL_OK;
}

static int cmd_rm(struct vmirctl *ctl, int argc, char **argv)
{
	char name[VMIR_NAME_MAX];
	struct vmir_client *c;
	const char *pos[1];
	uint32_t version;
	int ret;

	c = ref_cmd_begin(ctl, argc, argv, pos, 1, name, &version, &ret);
	if (!c)
		return ret;
	if (vmir_image_delete(c, name, version))
		return vmirctl_fail(ctl);
	if (ctl->json) {
		struct vmirctl_json j;

		vmirctl_json_init(&j, stdout);
		vmirctl_json_obj_begin(&j, NULL);
		vmirctl_json_str(&j, "image", name);
		if (version)
			vmirctl_json_u64(&j, "version", version);
		else
			vmirctl_json_null(&j, "version");
		vmirctl_json_bool(&j, "deleted", true);
		vmirctl_json_obj_end(&j);
		vmirctl_json_end(&j);
	} else if (version) {
		printf("deleted %s@%u\n", name, version);
	} else {
		printf("deleted image %s (all versions)\n", name);
	}
	return VMIRCTL_OK;
}

static int cmd_servers(struct vmirctl *ctl, int argc, char **argv)
{
	struct vmir_server_stat *st;
	struct vmir_client *c;
	char a[32], eb[128];
	size_t n, i;
	int ret, status = VMIRCTL_OK;

	ret = vmirctl_parse(ctl, argc, argv, NULL, NULL, 0, 0, NULL);
	if (ret)
		return ret;
	c = vmirctl_client(ctl);
	if (!c)
		return VMIRCTL_FAIL;
	if (vmir_chunkd_stat(c, &st, &n))
		return vmirctl_fail(ctl);
	for (i = 0; i < n; i++)
		if (st[i].err)
			status = VMIRCTL_FAIL;
	if (ctl->json) {
		struct vmirctl_json j;

		vmirctl_json_init(&j, stdout);
		vmirctl_json_arr_begin(&j, NULL);
		for (i = 0; i < n; i++) {
			vmirctl_json_obj_begin(&j, NULL);
			vmirctl_json_str(&j, "addr", st[i].addr);
			vmirctl_json_bool(&j, "up", !st[i].err);
			if (st[i].err) {
				vmirctl_json_str(&j, "error",
						 vmir_errstr(st[i].err, eb,
							     sizeof(eb)));
				vmirctl_json_null(&j, "objects");
				vmirctl_json_null(&j, "bytes");
			} else {
				vmirctl_json_null(&j, "error");
				vmirctl_json_u64(&j, "objects",
						 st[i].objects);
				vmirctl_json_u64(&j, "bytes", st[i].bytes);
			}
			vmirctl_json_obj_end(&j);
		}
		vmirctl_json_arr_end(&j);
		vmirctl_json_end(&j);
	} else {
		printf("%-24s %-10s %-10s %s\n", "SERVER", "OBJECTS", "BYTES",
		       "STATUS");
		for (i = 0; i < n; i++) {
			if (st[i].err)
				printf("%-24s %-10s %-10s %s\n", st[i].addr,
				       "-", "-",
				       vmir_errstr(st[i].err, eb, sizeof(eb)));
			else
				printf("%-24s %-10" PRIu64 " %-10s %s\n",
				       st[i].addr, st[i].objects,
				       sz(st[i].bytes, a, sizeof(a)), "up");
		}
	}
	for (i = 0; i < n; i++)
		if (st[i].err)
			vmir_err("chunk server %s unreachable: %s",
				 st[i].addr,
				 vmir_errstr(st[i].err, eb, sizeof(eb)));
	free(st);
	return status;
}

const struct vmirctl_cmd vmirctl_image_cmds[] = {
	{ "keygen", "FILE", "write a new random cluster key (mode 0600)",
	  cmd_keygen },
	{ "create", "NAME --size SIZE [--chunk-size SIZE]",
	  "create an empty (all-zero) image", cmd_create },
	{ "import", "NAME FILE [--chunk-size SIZE]",
	  "store FILE as a new image, or as the next version of NAME",
	  cmd_import },
	{ "export", "NAME[@VER] FILE",
	  "write a version (default latest) to a sparse raw FILE",
	  cmd_export },
	{ "clone", "SRC[@VER] DST",
	  "create image DST sharing SRC's version (copies nothing)",
	  cmd_clone },
	{ "versions", "NAME", "list the versions of an image", cmd_versions },
	{ "list", "", "list images", cmd_list },
	{ "info", "NAME[@VER]",
	  "describe a version and what it stores", cmd_info },
	{ "profile", "NAME[@VER] [--chunks N]",
	  "show the access profile learned prefetch follows (first N chunks, 16)",
	  cmd_profile },
	{ "peers", "NAME[@VER]",
	  "list the nodes that have a version attached (and serve its chunks)",
	  cmd_peers },
	{ "rm", "NAME[@VER]", "delete one version, or the whole image",
	  cmd_rm },
	{ "servers", "", "show each chunk server's objects and bytes",
	  cmd_servers },
	{ NULL, NULL, NULL, NULL },
};

/* --- main ---------------------------------------------------------------------------- */

static const struct vmirctl_cmd *find_cmd(const char *name)
{
	const struct vmirctl_cmd *tables[] = {
		vmirctl_image_cmds,
		vmirctl_dev_cmds,	/* weak: NULL until it exists */
	};
	const struct vmirctl_cmd *t;
	size_t i;

	for (i = 0; i < sizeof(tables) / sizeof(tables[0]); i++)
		for (t = tables[i]; t && t->name; t++)
			if (!strcmp(t->name, name))
				return t;
	return NULL;
}

static void help(FILE *f)
{
	const struct vmirctl_cmd *tables[] = {
		vmirctl_image_cmds,
		vmirctl_dev_cmds,
	};
	const struct vmirctl_cmd *t;
	char head[128];
	size_t i;

	fprintf(f,
		"usage: vmirctl [--conf FILE] [--json] [-v] COMMAND [ARGS...]\n"
		"\n"
		"  --conf FILE  cluster configuration (default: $VMIR_CONF)\n"
		"  --json       machine-readable output\n"
		"  -v           verbose: debug messages on stderr\n"
		"\n"
		"commands:\n");
	for (i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		for (t = tables[i]; t && t->name; t++) {
			snprintf(head, sizeof(head), "%s %s", t->name,
				 t->args);
			fprintf(f, "  %-40s %s\n", head, t->help);
		}
	}
	fprintf(f,
		"\nSIZE takes K, M, G, T suffixes (binary). Exit status: 0 success,\n"
		"1 failure, 2 bad command line.\n");
}

int main(int argc, char **argv)
{
	struct vmirctl ctl;
	const struct vmirctl_cmd *cmd;
	int i, ret;

	vmir_log_init("vmirctl");
	memset(&ctl, 0, sizeof(ctl));
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--conf")) {
			if (i + 1 >= argc)
				return vmirctl_usage(&ctl,
						     "option '--conf' needs a value");
			ctl.conf_path = argv[++i];
		} else if (!strncmp(a, "--conf=", 7)) {
			ctl.conf_path = a + 7;
		} else if (!strcmp(a, "--json")) {
			ctl.json = true;
		} else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
			ctl.verbose = true;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help") ||
			   !strcmp(a, "help")) {
			help(stdout);
			return VMIRCTL_OK;
		} else if (a[0] == '-') {
			return vmirctl_usage(&ctl, "unknown option '%s'", a);
		} else {
			break;
		}
	}
	if (i >= argc)
		return vmirctl_usage(&ctl, "no command given");
	vmir_log_set_verbose(ctl.verbose);
	cmd = find_cmd(argv[i]);
	if (!cmd)
		return vmirctl_usage(&ctl, "unknown command '%s'", argv[i]);
	ctl.cmd = cmd;
	ret = cmd->run(&ctl, argc - i, argv + i);
	vmir_client_close(ctl.c);
	if (fflush(stdout) == EOF && ret == VMIRCTL_OK) {
		vmir_err("cannot write the output: %s", strerror(errno));
		ret = VMIRCTL_FAIL;
	}
	return ret;
}
