/* Tests for the shared histogram bucketing (bpf/loopspy.h ls_hist_bucket)
 * and core/model.c loop_percentile_ns, which must agree on bucket bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "model.h"

/* Next value of a sweep over 0..1e10 us: dense at first, then ~0.1% steps. */
static uint64_t sweep_next(uint64_t us)
{
	return us < 100000 ? us + 1 : us + us / 1024;
}

static void test_bucket_exact_small(void **state)
{
	uint64_t us;

	(void)state;
	for (us = 0; us < 16; us++)
		assert_int_equal(ls_hist_bucket(us), us);
	assert_int_equal(ls_hist_bucket(16), 16);
	assert_int_equal(ls_hist_bucket(17), 16);
	assert_int_equal(ls_hist_bucket(18), 17);
	assert_int_equal(ls_hist_bucket(31), 23);
	assert_int_equal(ls_hist_bucket(32), 24);
	assert_int_equal(ls_hist_bucket(100), 36);
	assert_int_equal(ls_hist_bucket(50000), 16 + 11 * 8 + 4);
}

static void test_bucket_monotonic(void **state)
{
	uint64_t us, prev_us = 0;
	uint32_t prev = 0, b;
	long n = 0;

	(void)state;
	for (us = 0; us <= 10000000000ULL; us = sweep_next(us)) {
		b = ls_hist_bucket(us);
		if (b < prev)
			fail_msg("ls_hist_bucket(%llu) = %u < ls_hist_bucket(%llu) = %u",
				 (unsigned long long)us, b, (unsigned long long)prev_us, prev);
		assert_true(b < LS_HIST_BUCKETS);
		/* consecutive buckets are never skipped while unclamped */
		if (us == prev_us + 1)
			assert_true(b - prev <= 1);
		prev = b;
		prev_us = us;
		n++;
	}
	assert_true(n > 100000);
}

static void test_bucket_clamp(void **state)
{
	int shift;

	(void)state;
	assert_int_equal(ls_hist_bucket(~0ULL), LS_HIST_BUCKETS - 1);
	assert_int_equal(ls_hist_bucket(1ULL << 63), LS_HIST_BUCKETS - 1);
	for (shift = 40; shift < 64; shift++)
		assert_int_equal(ls_hist_bucket(1ULL << shift), LS_HIST_BUCKETS - 1);
	/* the largest unclamped power of two: bucket 16 + (e - 4) * 8 */
	assert_int_equal(ls_hist_bucket(1ULL << 33), 16 + 29 * 8);
}

/* Upper bound (us) that loop_percentile_ns gives the bucket holding us. */
static uint64_t single_bucket_hi(uint64_t us)
{
	struct loop_info l;

	memset(&l, 0, sizeof(l));
	l.hist[ls_hist_bucket(us)] = 1;
	l.max_ns = 0; /* no max: the raw bucket bound */
	return loop_percentile_ns(&l, 50) / 1000;
}

/* Every value lies in [lo, hi) of its bucket as loop_percentile_ns sees it,
 * and hi overstates it by at most 1/8 (+1us for the exact buckets). */
static void test_bucket_bounds_agree(void **state)
{
	uint64_t us;

	(void)state;
	for (us = 0; us <= 10000000000ULL; us = sweep_next(us)) {
		uint64_t hi;

		if (ls_hist_bucket(us) == LS_HIST_BUCKETS - 1)
			break;
		hi = single_bucket_hi(us);
		if (hi <= us || hi > us + us / 8 + 1)
			fail_msg("value %llu us: bucket %u upper bound %llu us",
				 (unsigned long long)us, ls_hist_bucket(us), (unsigned long long)hi);
	}
}

static uint64_t pct_check(const struct loop_info *l, double pct)
{
	uint64_t v = loop_percentile_ns(l, pct);

	if (l->max_ns && v > l->max_ns)
		fail_msg("p%g = %llu ns exceeds max %llu ns", pct, (unsigned long long)v,
			 (unsigned long long)l->max_ns);
	return v;
}

static void assert_near(uint64_t got, uint64_t want, double rel)
{
	double d = (double)got - (double)want;

	if (d < 0)
		d = -d;
	if (d > rel * (double)want)
		fail_msg("got %llu, want %llu within %.1f%%", (unsigned long long)got,
			 (unsigned long long)want, rel * 100);
}

static void test_percentiles(void **state)
{
	struct loop_info l;
	double pct;

	(void)state;
	memset(&l, 0, sizeof(l));
	/* 99 iterations at ~100us, 1 at ~50ms */
	l.hist[ls_hist_bucket(100)] = 99;
	l.hist[ls_hist_bucket(50000)] = 1;
	l.max_ns = 50000000;
	assert_near(pct_check(&l, 50), 100000, 0.07);
	assert_near(pct_check(&l, 99), 100000, 0.07);
	assert_int_equal(pct_check(&l, 100), l.max_ns);
	assert_near(pct_check(&l, 0), 100000, 0.07);
	for (pct = 0; pct <= 100; pct += 0.5)
		(void)pct_check(&l, pct);

	/* the max caps the bound of its own bucket */
	l.max_ns = 50001000;
	assert_int_equal(pct_check(&l, 100), 50001000);

	/* a max below the bucket bound (recorded max is authoritative) */
	memset(&l, 0, sizeof(l));
	l.hist[ls_hist_bucket(100)] = 10;
	l.max_ns = 100500;
	assert_int_equal(pct_check(&l, 50), 100500);
	assert_int_equal(pct_check(&l, 100), 100500);

	/* exact small buckets: 3us -> upper bound 4us */
	memset(&l, 0, sizeof(l));
	l.hist[3] = 5;
	l.max_ns = 1000000;
	assert_int_equal(pct_check(&l, 50), 4000);

	/* 50/50 split: p50 in the low bucket, p51 in the high one */
	memset(&l, 0, sizeof(l));
	l.hist[ls_hist_bucket(1000)] = 50;
	l.hist[ls_hist_bucket(20000)] = 50;
	l.max_ns = 20000000;
	assert_near(pct_check(&l, 50), 1000000, 0.07);
	assert_near(pct_check(&l, 51), 20000000, 0.07);
}

static void test_percentile_empty(void **state)
{
	struct loop_info l;

	(void)state;
	memset(&l, 0, sizeof(l));
	assert_int_equal(loop_percentile_ns(&l, 50), 0);
	assert_int_equal(loop_percentile_ns(&l, 99), 0);
	l.max_ns = 12345;
	assert_int_equal(loop_percentile_ns(&l, 100), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bucket_exact_small),
		cmocka_unit_test(test_bucket_monotonic),
		cmocka_unit_test(test_bucket_clamp),
		cmocka_unit_test(test_bucket_bounds_agree),
		cmocka_unit_test(test_percentiles),
		cmocka_unit_test(test_percentile_empty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
