/* Tests for core/units.c: duration_parse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "units.h"

#define MS 1000000ULL

static uint64_t parse_ok(const char *s, uint64_t unit)
{
	uint64_t ns = 0xdeadbeefULL;

	if (duration_parse(s, unit, &ns) != 0)
		fail_msg("duration_parse(\"%s\") failed, expected success", s);
	return ns;
}

static void test_accepts(void **state)
{
	(void)state;
	assert_int_equal(parse_ok("100", MS), 100000000ULL);
	assert_int_equal(parse_ok("100", 1000000000ULL), 100000000000ULL);
	assert_int_equal(parse_ok("100ms", 1000000000ULL), 100000000ULL);
	assert_int_equal(parse_ok("0.5s", MS), 500000000ULL);
	assert_int_equal(parse_ok("250us", MS), 250000ULL);
	assert_int_equal(parse_ok("7ns", MS), 7ULL);
	assert_int_equal(parse_ok("2m", MS), 120000000000ULL);
	assert_int_equal(parse_ok("1h", MS), 3600000000000ULL);
	assert_int_equal(parse_ok("1.5ms", 1), 1500000ULL);
	assert_int_equal(parse_ok("0", MS), 0);
	/* rounding to the nearest ns, not truncation */
	assert_int_equal(parse_ok("0.1us", MS), 100ULL);
	assert_int_equal(parse_ok("0.0009us", MS), 1ULL);
	/* largest accepted value: 1e18 ns */
	assert_int_equal(parse_ok("1000000000s", MS), 1000000000000000000ULL);
}

static void test_rejects(void **state)
{
	static const char *const bad[] = {
		"", "-5", "-5ms", "abc", "10xs", "10 ms", "ms", "nan", "inf", "-inf",
		"infinity", "nanms", "1e30s", "1e30", "10msx", "10S", "5mss", "1000000001s",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t ns = 12345;
		int r = duration_parse(bad[i], MS, &ns);

		if (r != -1)
			fail_msg("duration_parse(\"%s\") = %d (ns %llu), expected -1", bad[i], r,
				 (unsigned long long)ns);
		/* the output is left alone on failure */
		assert_int_equal(ns, 12345);
	}
	{
		uint64_t ns = 1;

		assert_int_equal(duration_parse(NULL, MS, &ns), -1);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accepts),
		cmocka_unit_test(test_rejects),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
