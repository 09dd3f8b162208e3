// SPDX-License-Identifier: GPL-2.0
/*
 * vmir-chunkd: chunk server. Stores immutable content-addressed objects
 * and serves them to vmir clients. See chunkd_server.c and docs/protocol.md.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "chunkd_server.h"
#include "srv.h"
#include "vmir_util.h"

int main(int argc, char **argv)
{
	struct chunkd_server_conf conf = { 0 };
	struct srv_args args;
	int ret;

	vmir_log_init(argv[0]);
	ret = srv_parse_args(argc, argv,
			     "Serve content-addressed chunks of vmir images.",
			     0, &args);
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
	ret = chunkd_server_run(&conf);
	sodium_memzero(conf.key, sizeof(conf.key));
	return ret < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
