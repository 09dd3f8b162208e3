// SPDX-License-Identifier: GPL-2.0
/*
 * A small JSON writer for vmirctl --json: objects, arrays, strings with
 * proper escaping, integers and booleans, indented two spaces.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>

#include "vmirctl.h"

void vmirctl_json_escape(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	fputc('"', f);
	for (; *p; p++) {
		switch (*p) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\b':
			fputs("\\b", f);
			break;
		case '\f':
			fputs("\\f", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				fprintf(f, "\\u%04x", *p);
			else
				fputc(*p, f);
		}
	}
	fputc('"', f);
}

void vmirctl_json_init(struct vmirctl_json *j, FILE *f)
{
	j->f = f;
	j->depth = 0;
	j->first[0] = true;
}

static void indent(struct vmirctl_json *j)
{
	unsigned int i;

	for (i = 0; i < j->depth; i++)
		fputs("  ", j->f);
}

/* separator, newline and indentation before a value, then its key */
static void value_start(struct vmirctl_json *j, const char *key)
{
	if (j->depth) {
		if (!j->first[j->depth])
			fputc(',', j->f);
		fputc('\n', j->f);
		indent(j);
	}
	j->first[j->depth] = false;
	if (key) {
		vmirctl_json_escape(j->f, key);
		fputs(": ", j->f);
	}
}

static void open_nested(struct vmirctl_json *j, const char *key, char c)
{
	value_start(j, key);
	fputc(c, j->f);
	assert(j->depth + 1 < VMIRCTL_JSON_DEPTH);
	j->depth++;
	j->first[j->depth] = true;
}

static void close_nested(struct vmirctl_json *j, char c)
{
	bool empty;

	assert(j->depth > 0);
	empty = j->first[j->depth];
	j->depth--;
	if (!empty) {
		fputc('\n', j->f);
		indent(j);
	}
	fputc(c, j->f);
}

void vmirctl_json_obj_begin(struct vmirctl_json *j, const char *key)
{
	open_nested(j, key, '{');
}

void vmirctl_json_obj_end(struct vmirctl_json *j)
{
	close_nested(j, '}');
}

void vmirctl_json_arr_begin(struct vmirctl_json *j, const char *key)
{
	open_nested(j, key, '[');
}

void vmirctl_json_arr_end(struct vmirctl_json *j)
{
	close_nested(j, ']');
}

void vmirctl_json_str(struct vmirctl_json *j, const char *key, const char *v)
{
	value_start(j, key);
	vmirctl_json_escape(j->f, v);
}

void vmirctl_json_u64(struct vmirctl_json *j, const char *key, uint64_t v)
{
	value_start(j, key);
	fprintf(j->f, "%" PRIu64, v);
}

void vmirctl_json_bool(struct vmirctl_json *j, const char *key, bool v)
{
	value_start(j, key);
	fputs(v ? "true" : "false", j->f);
}

void vmirctl_json_null(struct vmirctl_json *j, const char *key)
{
	value_start(j, key);
	fputs("null", j->f);
}

void vmirctl_json_end(struct vmirctl_json *j)
{
	assert(j->depth == 0);
	fputc('\n', j->f);
	fflush(j->f);
}
