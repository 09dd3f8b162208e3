// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Rendezvous (highest random weight) placement of objects on chunk
 * servers. Every (server, object) pair gets a pseudo-random score; an
 * object lives on the R servers with the highest scores and is read from
 * them in that order. A server's identity is its address text as written
 * in the configuration, so every client computes the same order, and
 * adding or removing a server only moves the objects whose top R change.
 */
#include <string.h>

#include <sodium.h>

#include "libvmir_priv.h"

uint64_t vmir_hrw_score(const char *server, const struct vmir_id *id)
{
	crypto_generichash_blake2b_state st;
	uint8_t h[32];
	uint64_t v = 0;
	int i;

	crypto_generichash_blake2b_init(&st, NULL, 0, sizeof(h));
	crypto_generichash_blake2b_update(&st, (const uint8_t *)server,
					  strlen(server));
	crypto_generichash_blake2b_update(&st, id->b, VMIR_ID_LEN);
	crypto_generichash_blake2b_final(&st, h, sizeof(h));
	for (i = 7; i >= 0; i--)
		v = (v << 8) | h[i];
	return v;
}

void vmir_placement_order(const char *const *servers, unsigned int n,
			  const struct vmir_id *id, uint8_t *order)
{
	uint64_t score[VMIR_MAX_SERVERS];
	unsigned int i, j;

	assert(n <= VMIR_MAX_SERVERS);
	/* insertion sort: n is small, and ties keep the lower index first */
	for (i = 0; i < n; i++) {
		uint64_t s = vmir_hrw_score(servers[i], id);

		for (j = i; j > 0 && score[j - 1] < s; j--) {
			score[j] = score[j - 1];
			order[j] = order[j - 1];
		}
		score[j] = s;
		order[j] = (uint8_t)i;
	}
}
