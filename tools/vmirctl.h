/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vmirctl internals shared by its source files. vmirctl.c holds main(),
 * the global options and the image commands; other files may add command
 * tables (see vmirctl_dev_cmds) and use the helpers declared here.
 */
#ifndef VMIRCTL_H
#define VMIRCTL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "libvmir.h"

/* exit statuses */
#define VMIRCTL_OK	0
#define VMIRCTL_FAIL	1	/* the command failed: message on stderr */
#define VMIRCTL_USAGE	2	/* bad command line: usage line on stderr */

struct vmirctl {
	const char *conf_path;	/* --conf, else $VMIR_CONF */
	bool json;		/* --json */
	bool verbose;		/* -v */
	struct vmir_client *c;	/* opened by vmirctl_client() */
	const struct vmirctl_cmd *cmd;	/* the command running */
};

struct vmirctl_cmd {
	const char *name;
	const char *args;	/* "NAME FILE [--chunk-size SIZE]" */
	const char *help;	/* one line */
	/* argv[0] is the command name; returns a VMIRCTL_* status */
	int (*run)(struct vmirctl *ctl, int argc, char **argv);
};

/* NULL-terminated command tables, in the order `vmirctl --help` lists them */
extern const struct vmirctl_cmd vmirctl_image_cmds[];
/* device commands, provided by tools/vmirctl_dev.c when it exists */
extern const struct vmirctl_cmd vmirctl_dev_cmds[] __attribute__((weak));

/* the cluster client, opened on first use; NULL after printing why */
struct vmir_client *vmirctl_client(struct vmirctl *ctl);
/* print "vmirctl: error: <client error>" and return VMIRCTL_FAIL */
int vmirctl_fail(struct vmirctl *ctl);
/* print the message and the command's usage line; VMIRCTL_USAGE */
int vmirctl_usage(struct vmirctl *ctl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Command line options of one command: positional arguments collected in
 * order, "--name VALUE" and "--name=VALUE" for the listed value options,
 * "--name" for the flags, "--" ends the options.
 */
struct vmirctl_opt {
	const char *name;	/* without "--" */
	const char **value;	/* set when given */
	bool *flag;		/* instead of value: an option without one */
};
/* 0, or VMIRCTL_USAGE after printing why */
int vmirctl_parse(struct vmirctl *ctl, int argc, char **argv,
		  struct vmirctl_opt *opts, const char **pos,
		  unsigned int npos_min, unsigned int npos_max,
		  unsigned int *npos);
/* "NAME" or "NAME@VER" (VER >= 1); version 0 when absent */
int vmirctl_parse_ref(struct vmirctl *ctl, const char *arg, char *name,
		      size_t namelen, uint32_t *version);
/* "4096", "256K", "1G"; VMIRCTL_USAGE after printing why */
int vmirctl_parse_size(struct vmirctl *ctl, const char *opt, const char *arg,
		       uint64_t *out);
/* "2024-05-01 12:34:56" (local time) */
void vmirctl_time(uint64_t ns, char *out, size_t len);

/* --- JSON output (vmirctl_json.c) ---------------------------------------- */
#define VMIRCTL_JSON_DEPTH	16

struct vmirctl_json {
	FILE *f;
	unsigned int depth;
	bool first[VMIRCTL_JSON_DEPTH];
};

void vmirctl_json_init(struct vmirctl_json *j, FILE *f);
/* key is NULL inside arrays and for the top-level value */
void vmirctl_json_obj_begin(struct vmirctl_json *j, const char *key);
void vmirctl_json_obj_end(struct vmirctl_json *j);
void vmirctl_json_arr_begin(struct vmirctl_json *j, const char *key);
void vmirctl_json_arr_end(struct vmirctl_json *j);
void vmirctl_json_str(struct vmirctl_json *j, const char *key, const char *v);
void vmirctl_json_u64(struct vmirctl_json *j, const char *key, uint64_t v);
void vmirctl_json_bool(struct vmirctl_json *j, const char *key, bool v);
void vmirctl_json_null(struct vmirctl_json *j, const char *key);
/* ends the document with a newline */
void vmirctl_json_end(struct vmirctl_json *j);
/* the string with JSON escapes, quoted, to f */
void vmirctl_json_escape(FILE *f, const char *s);

#endif /* VMIRCTL_H */
