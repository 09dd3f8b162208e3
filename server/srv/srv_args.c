// SPDX-License-Identifier: GPL-2.0
/* Command line parsing shared by vmir-chunkd and vmir-versiond. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "srv.h"

static void srv_usage(FILE *f, const char *prog, const char *what,
		      unsigned int flags)
{
	fprintf(f,
		"usage: %s --listen ADDR:PORT --dir DIR --key FILE "
		"[--ready-file FILE]%s [-v]\n"
		"%s\n"
		"  --listen ADDR:PORT  address to serve on (PORT 0: any free port)\n"
		"  --dir DIR           data directory (created if missing)\n"
		"  --key FILE          cluster key file (64 hex digits, mode 0600)\n"
		"  --ready-file FILE   once listening, write the bound IP:PORT here\n",
		prog, flags & SRV_ARGS_RECOVER_LOG ? " [--recover-log]" : "",
		what);
	if (flags & SRV_ARGS_RECOVER_LOG)
		fprintf(f,
			"  --recover-log       if a record of DIR/versiond.log is corrupt\n"
			"                      (vmir-versiond refuses to start without\n"
			"                      this), cut the log there; the cut bytes are\n"
			"                      first kept in DIR/versiond.log.cut-OFFSET-TIME\n"
			"                      (name printed). What they recorded is lost;\n"
			"                      version numbers they may have used are\n"
			"                      skipped, never given out again\n");
	fprintf(f,
		"  -v, --verbose       debug messages\n"
		"  -h, --help          this text\n");
}

int srv_parse_args(int argc, char **argv, const char *what,
		   unsigned int flags, struct srv_args *args)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "dir", required_argument, NULL, 'd' },
		{ "key", required_argument, NULL, 'k' },
		{ "ready-file", required_argument, NULL, 'r' },
		{ "recover-log", no_argument, NULL, 'R' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *prog = argv[0];
	const char *missing = NULL;
	int c;

	memset(args, 0, sizeof(*args));
	optind = 1;
	while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			args->listen = optarg;
			break;
		case 'd':
			args->dir = optarg;
			break;
		case 'k':
			args->key = optarg;
			break;
		case 'r':
			args->ready_file = optarg;
			break;
		case 'R':
			if (!(flags & SRV_ARGS_RECOVER_LOG)) {
				fprintf(stderr, "%s: --recover-log is an option "
					"of vmir-versiond\n", prog);
				srv_usage(stderr, prog, what, flags);
				return -EINVAL;
			}
			args->recover_log = true;
			break;
		case 'v':
			args->verbose = true;
			break;
		case 'h':
			srv_usage(stdout, prog, what, flags);
			return 1;
		default:
			srv_usage(stderr, prog, what, flags);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", prog,
			argv[optind]);
		srv_usage(stderr, prog, what, flags);
		return -EINVAL;
	}
	if (!args->listen)
		missing = "--listen";
	else if (!args->dir)
		missing = "--dir";
	else if (!args->key)
		missing = "--key";
	if (missing) {
		fprintf(stderr, "%s: %s is required\n", prog, missing);
		srv_usage(stderr, prog, what, flags);
		return -EINVAL;
	}
	return 0;
}
