// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Unit tests of rendezvous placement (libclient/placement.c).
 *
 * The score is recomputed here straight from libsodium, and the stability
 * properties are checked over many pseudo-random ids: adding a server only
 * moves objects whose top R now include it, removing one only affects the
 * objects it held, and load spreads evenly.
 */
#include <check.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libvmir_priv.h"

#define NIDS	10000

static uint64_t rng_state;

static void rng_seed(uint64_t seed)
{
	rng_state = seed * 0x9e3779b97f4a7c15ull + 1;
}

static uint64_t rng_next(void)
{
	uint64_t x = rng_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545f4914f6cdd1dull;
}

static void random_id(struct vmir_id *id)
{
	unsigned int i;

	for (i = 0; i < VMIR_ID_LEN; i += 8) {
		uint64_t v = rng_next();

		memcpy(&id->b[i], &v, 8);
	}
}

static const char *const servers5[] = {
	"127.0.0.1:7401", "127.0.0.1:7402", "127.0.0.1:7403",
	"127.0.0.1:7404", "127.0.0.1:7405",
};

/* index into servers5 of position k of an order computed over a subset */
static const char *name_at(const char *const *srv, const uint8_t *order,
			   unsigned int k)
{
	return srv[order[k]];
}

static bool in_top(const char *const *srv, const uint8_t *order,
		   unsigned int r, const char *name)
{
	unsigned int k;

	for (k = 0; k < r; k++)
		if (!strcmp(name_at(srv, order, k), name))
			return true;
	return false;
}

/* --- score definition ------------------------------------------------------ */

START_TEST(score_is_blake2b_of_address_and_id)
{
	struct vmir_id id;
	uint8_t buf[64 + VMIR_ID_LEN], h[32];
	uint64_t want = 0;
	size_t n;
	int i, t;

	rng_seed(1);
	for (t = 0; t < 100; t++) {
		const char *s = servers5[t % 5];

		random_id(&id);
		n = strlen(s);
		memcpy(buf, s, n);
		memcpy(buf + n, id.b, VMIR_ID_LEN);
		crypto_generichash(h, sizeof(h), buf, n + VMIR_ID_LEN, NULL, 0);
		want = 0;
		for (i = 7; i >= 0; i--)
			want = (want << 8) | h[i];
		ck_assert_uint_eq(vmir_hrw_score(s, &id), want);
	}
}
END_TEST

START_TEST(order_is_by_descending_score)
{
	uint8_t order[5];
	struct vmir_id id;
	unsigned int k, t;

	rng_seed(2);
	for (t = 0; t < 1000; t++) {
		random_id(&id);
		vmir_placement_order(servers5, 5, &id, order);
		for (k = 1; k < 5; k++)
			ck_assert_uint_ge(vmir_hrw_score(servers5[order[k - 1]],
							 &id),
					  vmir_hrw_score(servers5[order[k]],
							 &id));
	}
}
END_TEST

/* --- determinism ---------------------------------------------------------------- */

START_TEST(order_is_deterministic_permutation)
{
	uint8_t a[5], b[5];
	struct vmir_id id;
	unsigned int k, t, seen;

	rng_seed(3);
	for (t = 0; t < 1000; t++) {
		random_id(&id);
		vmir_placement_order(servers5, 5, &id, a);
		vmir_placement_order(servers5, 5, &id, b);
		ck_assert_mem_eq(a, b, sizeof(a));
		seen = 0;
		for (k = 0; k < 5; k++) {
			ck_assert_uint_lt(a[k], 5);
			seen |= 1u << a[k];
		}
		ck_assert_uint_eq(seen, 0x1f);
	}
}
END_TEST

START_TEST(order_follows_addresses_not_config_order)
{
	const char *rev[5];
	uint8_t a[5], b[5];
	struct vmir_id id;
	unsigned int k, t;

	for (k = 0; k < 5; k++)
		rev[k] = servers5[4 - k];
	rng_seed(4);
	for (t = 0; t < 1000; t++) {
		random_id(&id);
		vmir_placement_order(servers5, 5, &id, a);
		vmir_placement_order(rev, 5, &id, b);
		for (k = 0; k < 5; k++)
			ck_assert_str_eq(servers5[a[k]], rev[b[k]]);
	}
}
END_TEST

/* --- stability when the server set changes --------------------------------------- */

START_TEST(adding_server_moves_only_objects_it_now_holds)
{
	const unsigned int r = 2;
	uint8_t o3[5], o4[5];
	struct vmir_id id;
	unsigned int t, k, j, moved = 0;
	const char *added = servers5[3];

	rng_seed(5);
	for (t = 0; t < NIDS; t++) {
		random_id(&id);
		vmir_placement_order(servers5, 3, &id, o3);
		vmir_placement_order(servers5, 4, &id, o4);
		/* the old servers keep their relative order, always */
		for (k = 0, j = 0; k < 4; k++) {
			if (!strcmp(name_at(servers5, o4, k), added))
				continue;
			ck_assert_str_eq(name_at(servers5, o4, k),
					 name_at(servers5, o3, j));
			j++;
		}
		if (in_top(servers5, o4, r, added)) {
			moved++;
			continue;
		}
		/* not among the new top R: placement unchanged */
		for (k = 0; k < r; k++)
			ck_assert_str_eq(name_at(servers5, o4, k),
					 name_at(servers5, o3, k));
	}
	/* about R/N = 1/2 of the objects gain the new server */
	ck_assert_uint_gt(moved, NIDS * 45 / 100);
	ck_assert_uint_lt(moved, NIDS * 55 / 100);
}
END_TEST

START_TEST(removing_server_affects_only_objects_it_held)
{
	const unsigned int r = 2;
	const char *without[3] = { servers5[0], servers5[2], servers5[3] };
	const char *removed = servers5[1];
	uint8_t o4[5], o3[5];
	struct vmir_id id;
	unsigned int t, k, j, held = 0;

	rng_seed(6);
	for (t = 0; t < NIDS; t++) {
		random_id(&id);
		vmir_placement_order(servers5, 4, &id, o4);
		vmir_placement_order(without, 3, &id, o3);
		if (!in_top(servers5, o4, r, removed)) {
			for (k = 0; k < r; k++)
				ck_assert_str_eq(name_at(servers5, o4, k),
						 name_at(without, o3, k));
			continue;
		}
		held++;
		/* the survivors of the old top R stay, in order, first */
		for (k = 0, j = 0; k < 4 && j < 3; k++) {
			if (!strcmp(name_at(servers5, o4, k), removed))
				continue;
			ck_assert_str_eq(name_at(servers5, o4, k),
					 name_at(without, o3, j));
			j++;
		}
	}
	ck_assert_uint_gt(held, NIDS * 45 / 100);
	ck_assert_uint_lt(held, NIDS * 55 / 100);
}
END_TEST

/* --- load spread ------------------------------------------------------------------ */

START_TEST(distribution_is_roughly_uniform)
{
	const unsigned int n = 5, r = 2;
	unsigned int first[5] = { 0 }, top[5] = { 0 }, pos[5][5];
	uint8_t o[5];
	struct vmir_id id;
	unsigned int t, k, s;

	memset(pos, 0, sizeof(pos));
	rng_seed(7);
	for (t = 0; t < NIDS; t++) {
		random_id(&id);
		vmir_placement_order(servers5, n, &id, o);
		first[o[0]]++;
		for (k = 0; k < r; k++)
			top[o[k]]++;
		for (k = 0; k < n; k++)
			pos[o[k]][k]++;
	}
	for (s = 0; s < n; s++) {
		/* expected NIDS / n = 2000 first places, 4000 replicas */
		ck_assert_uint_gt(first[s], 1800);
		ck_assert_uint_lt(first[s], 2200);
		ck_assert_uint_gt(top[s], 3700);
		ck_assert_uint_lt(top[s], 4300);
		for (k = 0; k < n; k++) {
			ck_assert_uint_gt(pos[s][k], 1800);
			ck_assert_uint_lt(pos[s][k], 2200);
		}
	}
}
END_TEST

static Suite *placement_suite(void)
{
	Suite *s = suite_create("placement");
	TCase *tc;

	tc = tcase_create("score");
	tcase_add_test(tc, score_is_blake2b_of_address_and_id);
	tcase_add_test(tc, order_is_by_descending_score);
	suite_add_tcase(s, tc);

	tc = tcase_create("determinism");
	tcase_add_test(tc, order_is_deterministic_permutation);
	tcase_add_test(tc, order_follows_addresses_not_config_order);
	suite_add_tcase(s, tc);

	tc = tcase_create("membership_change");
	tcase_add_test(tc, adding_server_moves_only_objects_it_now_holds);
	tcase_add_test(tc, removing_server_affects_only_objects_it_held);
	suite_add_tcase(s, tc);

	tc = tcase_create("distribution");
	tcase_add_test(tc, distribution_is_roughly_uniform);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	if (sodium_init() < 0)
		return 1;
	sr = srunner_create(placement_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
