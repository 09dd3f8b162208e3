/* SPDX-License-Identifier: GPL-2.0 */
/*
 * versiond peers: which nodes have which image version attached, as
 * leases in memory (PEER_LEASE, PEERS; docs/protocol.md). Nothing here is
 * logged: a lease lives until its node stops renewing it or leaves, and
 * after a restart of the version server the renewals bring the table back
 * within one renewal period. No sockets and no clock of its own: the
 * caller passes the time, so the unit tests drive it.
 */
#ifndef VMIR_VERSIOND_PEERS_H
#define VMIR_VERSIOND_PEERS_H

#include <stddef.h>
#include <stdint.h>

#include "vmir_proto.h"

#define VERSIOND_PEERS_MAX	4096	/* leases held at once, all versions */

struct versiond_peers;

struct versiond_peer {
	char addr[VMIR_ADDR_MAX];
	uint32_t ttl_ms;		/* until the lease runs out */
};

int versiond_peers_new(struct versiond_peers **out);
void versiond_peers_free(struct versiond_peers *p);
/*
 * addr holds image_id@version until now_ns + lease_ms (lease_ms 0: no
 * longer). 0, or -ENOSPC when VERSIOND_PEERS_MAX leases are live, -ENOMEM.
 */
int versiond_peers_lease(struct versiond_peers *p, uint64_t image_id,
			 uint32_t version, const char *addr, uint32_t lease_ms,
			 uint64_t now_ns);
/*
 * The live leases of image_id@version, longest-lived first, at most max;
 * *out malloc()ed (free() it), *n entries. 0 or -ENOMEM.
 */
int versiond_peers_list(struct versiond_peers *p, uint64_t image_id,
			uint32_t version, uint64_t now_ns, size_t max,
			struct versiond_peer **out, size_t *n);
/* forget every lease of image_id (deleted; version 0) or of one version */
void versiond_peers_drop(struct versiond_peers *p, uint64_t image_id,
			 uint32_t version);

#endif /* VMIR_VERSIOND_PEERS_H */
