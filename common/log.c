// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Logging: one line per message on stderr, "<prog>: <level>: text",
 * written at once so that lines of several threads do not interleave;
 * and errno texts fit to stand inside a message.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmir_util.h"

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

const char *vmir_errstr(int err, char *buf, size_t len)
{
	if (err < 0)
		err = -err;
	snprintf(buf, len, "%s", strerror(err));
	if (buf[0] >= 'A' && buf[0] <= 'Z' &&
	    !(buf[1] >= 'A' && buf[1] <= 'Z'))
		buf[0] = (char)(buf[0] - 'A' + 'a');
	return buf;
}
