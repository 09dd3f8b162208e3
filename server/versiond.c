// SPDX-License-Identifier: GPL-2.0
/*
 * vmir-versiond: version server. Holds the namespace of images and their
 * versions in a durable log. See versiond_server.c and docs/protocol.md.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "versiond_server.h"
#include "srv.h"
#include "vmir_util.h"

int main(int argc, char **argv)
{
	struct versiond_server_conf conf = { 0 };
	struct srv_args args;
	int ret;

	vmir_log_init(argv[0]);
	ret = srv_parse_args(argc, argv,
			     "Serve the vmir image namespace (images, versions, roots).",
			     SRV_ARGS_RECOVER_LOG, &args);
	if (ret)
		return ret > 0 ? EXIT_SUCCESS : 2;
	vmir_log_set_verbose(args.verbose);
	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0) {
		vmir_err("libsodium failed to initialise");
		return EXIT_FAILURE;
	}
	if (vmir_key_load(args.key, conf.key) < 0)
		return EXIT_FAILURE;
	conf.listen = args.listen;
	conf.dir = args.dir;
	conf.ready_file = args.ready_file;
	conf.recover_log = args.recover_log;
	ret = versiond_server_run(&conf);
	sodium_memzero(conf.key, sizeof(conf.key));
	return ret < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
