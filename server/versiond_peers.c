// SPDX-License-Identifier: GPL-2.0
/*
 * versiond peers: an array of leases, searched linearly (a deployment has
 * a lease per node and version: hundreds, not millions). Expired leases
 * are dropped whenever the array is walked.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "versiond_peers.h"

struct versiond_lease {
	uint64_t image_id;
	uint32_t version;
	uint64_t until_ns;
	char addr[VMIR_ADDR_MAX];
};

struct versiond_peers {
	struct versiond_lease *l;
	size_t n, cap;
};

int versiond_peers_new(struct versiond_peers **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

void versiond_peers_free(struct versiond_peers *p)
{
	if (!p)
		return;
	free(p->l);
	free(p);
}

static void versiond_peers_del(struct versiond_peers *p, size_t i)
{
	p->l[i] = p->l[--p->n];
}

static void versiond_peers_expire(struct versiond_peers *p, uint64_t now_ns)
{
	size_t i = 0;

	while (i < p->n) {
		if (p->l[i].until_ns <= now_ns)
			versiond_peers_del(p, i);
		else
			i++;
	}
}

int versiond_peers_lease(struct versiond_peers *p, uint64_t image_id,
			 uint32_t version, const char *addr, uint32_t lease_ms,
			 uint64_t now_ns)
{
	struct versiond_lease *l;
	size_t i, cap;

	versiond_peers_expire(p, now_ns);
	for (i = 0; i < p->n; i++) {
		l = &p->l[i];
		if (l->image_id != image_id || l->version != version ||
		    strcmp(l->addr, addr))
			continue;
		if (!lease_ms)
			versiond_peers_del(p, i);
		else
			l->until_ns = now_ns + lease_ms * 1000000ull;
		return 0;
	}
	if (!lease_ms)
		return 0;
	if (p->n == VERSIOND_PEERS_MAX)
		return -ENOSPC;
	if (p->n == p->cap) {
		cap = p->cap ? 2 * p->cap : 64;
		l = realloc(p->l, cap * sizeof(*l));
		if (!l)
			return -ENOMEM;
		p->l = l;
		p->cap = cap;
	}
	l = &p->l[p->n++];
	memset(l, 0, sizeof(*l));
	l->image_id = image_id;
	l->version = version;
	l->until_ns = now_ns + lease_ms * 1000000ull;
	strncpy(l->addr, addr, sizeof(l->addr) - 1);
	return 0;
}

static int versiond_peer_cmp(const void *a, const void *b)
{
	const struct versiond_peer *x = a, *y = b;

	if (x->ttl_ms != y->ttl_ms)
		return x->ttl_ms > y->ttl_ms ? -1 : 1;
	return strcmp(x->addr, y->addr);
}

int versiond_peers_list(struct versiond_peers *p, uint64_t image_id,
			uint32_t version, uint64_t now_ns, size_t max,
			struct versiond_peer **out, size_t *n)
{
	struct versiond_peer *a;
	size_t i, k = 0;

	versiond_peers_expire(p, now_ns);
	a = calloc(p->n ? p->n : 1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	for (i = 0; i < p->n; i++) {
		if (p->l[i].image_id != image_id || p->l[i].version != version)
			continue;
		memcpy(a[k].addr, p->l[i].addr, sizeof(a[k].addr));
		a[k].ttl_ms = (uint32_t)((p->l[i].until_ns - now_ns + 999999) /
					 1000000);
		k++;
	}
	qsort(a, k, sizeof(*a), versiond_peer_cmp);
	*out = a;
	*n = k < max ? k : max;
	return 0;
}

void versiond_peers_drop(struct versiond_peers *p, uint64_t image_id,
			 uint32_t version)
{
	size_t i = 0;

	while (i < p->n) {
		if (p->l[i].image_id == image_id &&
		    (!version || p->l[i].version == version))
			versiond_peers_del(p, i);
		else
			i++;
	}
}
