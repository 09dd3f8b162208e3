// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Unit tests of access profiles (libclient/profile.c): the object codec
 * refuses what is not a well-formed profile, and merging deployments
 * follows the running mean of the ranks the file comment describes.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "libvmir_priv.h"

/* the chunks of pd, in its order, into out (n of them) */
static void chunks_of(const struct vmir_profile_data *pd, uint32_t *out)
{
	for (size_t i = 0; i < pd->n; i++)
		out[i] = pd->ent[i].chunk;
}

static void merge_ok(const struct vmir_profile_data *old, const uint32_t *o,
		     size_t n, uint64_t nchunks, struct vmir_profile_data *out)
{
	ck_assert_int_eq(vmir_profile_merge(old, o, n, nchunks, 42, out), 0);
}

/* pd's encoding, malloc()ed, its length in *len */
static uint8_t *encoded(const struct vmir_profile_data *pd, size_t *len)
{
	uint8_t *buf;

	*len = vmir_profile_encoded_len(pd->n);
	buf = malloc(*len);
	ck_assert_ptr_nonnull(buf);
	vmir_profile_encode(pd, buf);
	return buf;
}

START_TEST(first_deployment_is_its_own_order)
{
	static const uint32_t o[] = { 7, 2, 9, 0 };
	struct vmir_profile_data pd;
	uint32_t got[4];

	merge_ok(NULL, o, 4, 10, &pd);
	ck_assert_uint_eq(pd.n, 4);
	ck_assert_uint_eq(pd.deployments, 1);
	ck_assert_uint_eq(pd.nchunks, 10);
	ck_assert_uint_eq(pd.ctime_ns, 42);
	chunks_of(&pd, got);
	ck_assert_mem_eq(got, o, sizeof(o));
	ck_assert_uint_eq(pd.ent[3].score, 3 * VMIR_PROFILE_SCALE);
	vmir_profile_data_free(&pd);
}
END_TEST

START_TEST(profile_round_trips_through_its_encoding)
{
	static const uint32_t o[] = { 5, 1, 3 };
	struct vmir_profile_data pd, back;
	const char *why = NULL;
	uint8_t *buf;
	size_t len;

	merge_ok(NULL, o, 3, 6, &pd);
	buf = encoded(&pd, &len);
	ck_assert_int_eq(vmir_profile_decode(buf, len, &back, &why), 0);
	ck_assert_uint_eq(back.n, 3);
	ck_assert_uint_eq(back.deployments, 1);
	ck_assert_uint_eq(back.nchunks, 6);
	ck_assert_uint_eq(back.ctime_ns, 42);
	ck_assert_mem_eq(back.ent, pd.ent, 3 * sizeof(*pd.ent));
	vmir_profile_data_free(&back);
	vmir_profile_data_free(&pd);
	free(buf);
}
END_TEST

/* one byte of a valid encoding changed (or its length): refused */
static void expect_refused(const uint8_t *good, size_t len, size_t at,
			   uint8_t val, size_t newlen)
{
	struct vmir_profile_data pd;
	const char *why = NULL;
	uint8_t *buf = malloc(len + 8);

	ck_assert_ptr_nonnull(buf);
	memcpy(buf, good, len);
	if (at < len)
		buf[at] = val;
	ck_assert_int_eq(vmir_profile_decode(buf, newlen, &pd, &why),
			 -EBADMSG);
	ck_assert_ptr_nonnull(why);
	ck_assert_ptr_null(pd.ent);
	free(buf);
}

START_TEST(malformed_profiles_are_refused)
{
	static const uint32_t o[] = { 5, 1, 3 };
	struct vmir_profile_data pd;
	uint8_t *buf;
	size_t len;

	merge_ok(NULL, o, 3, 6, &pd);
	buf = encoded(&pd, &len);
	expect_refused(buf, len, 0, 'X', len);		/* magic */
	expect_refused(buf, len, len, 0, len - 1);	/* short */
	expect_refused(buf, len, len, 0, 10);		/* shorter than a header */
	expect_refused(buf, len, 8, 0, len);		/* 0 deployments */
	expect_refused(buf, len, 12, 4, len);		/* count != length */
	expect_refused(buf, len, 16, 2, len);		/* nchunks < n */
	expect_refused(buf, len, 32, 9, len);		/* chunk past the end */
	expect_refused(buf, len, 40, 5, len);		/* chunk 5 twice */
	expect_refused(buf, len, 37, 0xff, len);	/* scores out of order */
	vmir_profile_data_free(&pd);
	free(buf);
}
END_TEST

START_TEST(merge_is_a_running_mean_of_the_ranks)
{
	static const uint32_t a[] = { 0, 1, 2, 3 };
	static const uint32_t b[] = { 3, 2, 1, 0 };
	struct vmir_profile_data p1, p2, p3;
	uint32_t got[4];

	merge_ok(NULL, a, 4, 4, &p1);
	/* equal weights: every chunk's mean rank is 1.5; ties by chunk */
	merge_ok(&p1, b, 4, 4, &p2);
	ck_assert_uint_eq(p2.deployments, 2);
	for (int i = 0; i < 4; i++)
		ck_assert_uint_eq(p2.ent[i].score, 3 * VMIR_PROFILE_SCALE / 2);
	/* weight 2 to 1: a's order wins again */
	merge_ok(&p2, a, 4, 4, &p3);
	chunks_of(&p3, got);
	ck_assert_mem_eq(got, a, sizeof(a));
	ck_assert_uint_eq(p3.ent[0].score, VMIR_PROFILE_SCALE);	/* (3 + 0) / 3 */
	ck_assert_uint_eq(p3.deployments, 3);
	vmir_profile_data_free(&p1);
	vmir_profile_data_free(&p2);
	vmir_profile_data_free(&p3);
}
END_TEST

START_TEST(a_changed_boot_takes_over_within_a_few_deployments)
{
	static const uint32_t a[] = { 0, 1, 2, 3, 4, 5 };
	static const uint32_t b[] = { 5, 4, 3, 2, 1, 0 };
	struct vmir_profile_data p, q;
	uint32_t got[6];
	int k;

	/* a profile of many deployments weighs only WEIGHT_MAX to 1 */
	merge_ok(NULL, a, 6, 6, &p);
	for (k = 0; k < 50; k++) {
		merge_ok(&p, a, 6, 6, &q);
		vmir_profile_data_free(&p);
		p = q;
	}
	ck_assert_uint_eq(p.deployments, 51);
	for (k = 1; k <= 2 * VMIR_PROFILE_WEIGHT_MAX; k++) {
		merge_ok(&p, b, 6, 6, &q);
		vmir_profile_data_free(&p);
		p = q;
		chunks_of(&p, got);
		if (!memcmp(got, b, sizeof(b)))
			break;
	}
	ck_assert_int_le(k, VMIR_PROFILE_WEIGHT_MAX + 1);
	vmir_profile_data_free(&p);
}
END_TEST

START_TEST(chunks_missing_from_one_side_rank_at_its_end)
{
	static const uint32_t a[] = { 4, 6 };
	static const uint32_t b[] = { 1, 4 };
	struct vmir_profile_data p1, p2;
	uint32_t got[3];
	static const uint32_t want[] = { 4, 1, 6 };

	merge_ok(NULL, a, 2, 8, &p1);
	merge_ok(&p1, b, 2, 8, &p2);
	/* 4: (0 + 1) / 2; 1: (2 + 0) / 2 (end of a); 6: (1 + 2) / 2 */
	ck_assert_uint_eq(p2.n, 3);
	chunks_of(&p2, got);
	ck_assert_mem_eq(got, want, sizeof(want));
	ck_assert_uint_eq(p2.ent[0].score, VMIR_PROFILE_SCALE / 2);
	ck_assert_uint_eq(p2.ent[1].score, VMIR_PROFILE_SCALE);
	ck_assert_uint_eq(p2.ent[2].score, 3 * VMIR_PROFILE_SCALE / 2);
	vmir_profile_data_free(&p1);
	vmir_profile_data_free(&p2);
}
END_TEST

START_TEST(merge_drops_chunks_past_a_smaller_version_and_refuses_bad_orders)
{
	static const uint32_t a[] = { 9, 2, 7 };
	static const uint32_t b[] = { 2, 3 };
	static const uint32_t dup[] = { 1, 1 };
	static const uint32_t past[] = { 1, 5 };
	struct vmir_profile_data p1, p2, bad;

	merge_ok(NULL, a, 3, 10, &p1);
	/* the next version has 5 chunks: 9 and 7 are gone */
	merge_ok(&p1, b, 2, 5, &p2);
	ck_assert_uint_eq(p2.n, 2);
	ck_assert_uint_eq(p2.ent[0].chunk, 2);
	ck_assert_uint_eq(p2.ent[1].chunk, 3);
	ck_assert_uint_eq(p2.nchunks, 5);
	ck_assert_int_eq(vmir_profile_merge(NULL, dup, 2, 5, 0, &bad), -EINVAL);
	ck_assert_int_eq(vmir_profile_merge(NULL, past, 2, 5, 0, &bad),
			 -EINVAL);
	ck_assert_ptr_null(bad.ent);
	vmir_profile_data_free(&p1);
	vmir_profile_data_free(&p2);
}
END_TEST

static Suite *profile_suite(void)
{
	Suite *s = suite_create("profile");
	TCase *tc;

	tc = tcase_create("codec");
	tcase_add_test(tc, first_deployment_is_its_own_order);
	tcase_add_test(tc, profile_round_trips_through_its_encoding);
	tcase_add_test(tc, malformed_profiles_are_refused);
	suite_add_tcase(s, tc);

	tc = tcase_create("merge");
	tcase_add_test(tc, merge_is_a_running_mean_of_the_ranks);
	tcase_add_test(tc, a_changed_boot_takes_over_within_a_few_deployments);
	tcase_add_test(tc, chunks_missing_from_one_side_rank_at_its_end);
	tcase_add_test(tc,
		       merge_drops_chunks_past_a_smaller_version_and_refuses_bad_orders);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	sr = srunner_create(profile_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
