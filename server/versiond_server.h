/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vmir-versiond request handling on top of the server framework and the
 * database. versiond.c only parses the command line.
 */
#ifndef VMIR_VERSIOND_SERVER_H
#define VMIR_VERSIOND_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "vmir_proto.h"

struct versiond_server_conf {
	const char *listen;		/* "ADDR:PORT" */
	const char *dir;
	const char *ready_file;		/* NULL: none */
	bool recover_log;		/* cut a corrupt log tail (copy kept) */
	uint8_t key[VMIR_KEY_LEN];
};

/* open the database, serve until SIGINT/SIGTERM; 0 or -errno (logged) */
int versiond_server_run(const struct versiond_server_conf *conf);

#endif /* VMIR_VERSIOND_SERVER_H */
