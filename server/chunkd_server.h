/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vmir-chunkd request handling on top of the server framework and the
 * object store. chunkd.c only parses the command line.
 */
#ifndef VMIR_CHUNKD_SERVER_H
#define VMIR_CHUNKD_SERVER_H

#include <stdint.h>

#include "vmir_proto.h"

struct chunkd_server_conf {
	const char *listen;		/* "ADDR:PORT" */
	const char *dir;
	const char *ready_file;		/* NULL: none */
	uint8_t key[VMIR_KEY_LEN];
};

/* open the store, serve until SIGINT/SIGTERM; 0 or -errno (logged) */
int chunkd_server_run(const struct chunkd_server_conf *conf);

#endif /* VMIR_CHUNKD_SERVER_H */
