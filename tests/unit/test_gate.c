/* Tests for core/gate.c (--fail-on rules, baseline verdicts) and
 * core/diff.c (site matching across runs). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "diff.h"
#include "gate.h"
#include "report_read.h"
#include "report_fixture.h"

static struct gate *rules(const char *spec)
{
	struct gate *g = NULL;
	char err[512];

	if (gate_parse(spec, &g, err, sizeof(err)) < 0)
		fail_msg("rules '%s' rejected: %s", spec, err);
	return g;
}

static void expect_bad(const char *spec, const char *want)
{
	struct gate *g = NULL;
	char err[512];

	if (gate_parse(spec, &g, err, sizeof(err)) == 0)
		fail_msg("rules '%s' accepted, expected an error containing \"%s\"", spec, want);
	assert_null(g);
	if (!strstr(err, want))
		fail_msg("rules '%s': error \"%s\" does not contain \"%s\"", spec, err, want);
}

static void test_parse(void **state)
{
	struct gate *g = rules(" stall>100ms , blocking_syscall,lock_contention,gil_contention>5%,lag_p99>20,"
			       "lag_max > 0.5s,gc_pause>50ms,busy>80%,stall>2%");

	(void)state;
	assert_int_equal(g->n, 9);
	assert_string_equal(g->rules[0].text, "stall>100ms");
	assert_int_equal(g->rules[0].metric, GATE_KIND);
	assert_string_equal(g->rules[0].kind, "stall");
	assert_int_equal(g->rules[0].cmp, GATE_MS);
	assert_true(g->rules[0].value == 100);
	assert_int_equal(g->rules[1].cmp, GATE_ANY);
	assert_string_equal(g->rules[2].kind, "lock_contention");
	assert_int_equal(g->rules[3].cmp, GATE_PCT);
	assert_true(g->rules[3].value == 5);
	assert_int_equal(g->rules[4].metric, GATE_LAG_P99);
	assert_true(g->rules[4].value == 20); /* milliseconds by default */
	assert_int_equal(g->rules[5].metric, GATE_LAG_MAX);
	assert_true(g->rules[5].value == 500);
	assert_string_equal(g->rules[5].text, "lag_max > 0.5s");
	assert_int_equal(g->rules[7].metric, GATE_BUSY);
	gate_free(g);
	gate_free(NULL);
}

static void test_parse_errors(void **state)
{
	(void)state;
	expect_bad("", "empty rule");
	expect_bad("stall,", "empty rule");
	expect_bad("stall,,gc_pause", "empty rule");
	expect_bad("stal", "unknown rule 'stal'");
	expect_bad("stall<100ms", "unknown rule");
	expect_bad("lag_p99", "needs a threshold");
	expect_bad("busy", "needs a threshold");
	expect_bad("stall>", "is not a duration");
	expect_bad("stall>fast", "'fast' is not a duration");
	expect_bad("stall>-5ms", "is not a duration");
	expect_bad("stall>5lightyears", "is not a duration");
	expect_bad("gil_contention>150%", "not a percentage from 0 to 100");
	expect_bad("lag_p99>5%", "takes a duration");
	expect_bad("busy>20ms", "busy takes a percentage");
	expect_bad("stall>100ms_and_then_a_very_long_tail_that_goes_on_and_on_and_on_forever", "too long");
}

static struct gate_result eval(const char *spec, const struct report *r, const struct report_sites *s,
			       const struct diff *d)
{
	struct gate *g = spec ? rules(spec) : NULL;
	struct gate_result res;

	assert_int_equal(gate_evaluate(g, r, s, d, &res), 0);
	gate_free(g);
	return res;
}

static void test_evaluate(void **state)
{
	struct report *r = fixture_report("pitfalls.json");
	struct report_sites s;
	struct gate_result res;

	(void)state;
	assert_int_equal(report_sites_build(r, &s), 0);

	res = eval("stall>100ms", r, &s, NULL);
	assert_int_equal(res.n, 1);
	assert_int_equal(res.v[0].site, 0);
	assert_int_equal(res.v[0].loop, -1);
	assert_string_equal(res.v[0].why,
			    "stall>100ms: stall at checksum (/srv/app/reports.py:21): max 158.313 ms > 100 ms");
	assert_int_equal(gate_site_violation(&res, 0), 0);
	assert_int_equal(gate_site_violation(&res, 1), -1);
	gate_result_free(&res);

	res = eval("stall>200ms,lock_contention>250.1ms,gc_pause>3.6ms", r, &s, NULL);
	assert_int_equal(res.n, 0);
	gate_result_free(&res);

	/* one violation per site: the two clock_nanosleep callers are one */
	res = eval("blocking_syscall", r, &s, NULL);
	assert_int_equal(res.n, 2);
	assert_int_equal(res.v[0].site, 2);
	assert_int_equal(res.v[1].site, 3);
	gate_result_free(&res);

	res = eval("lag_p99>20ms", r, &s, NULL);
	assert_int_equal(res.n, 1);
	assert_int_equal(res.v[0].loop, 1);
	assert_int_equal(gate_loop_violation(&res, 1), 0);
	assert_int_equal(gate_loop_violation(&res, 0), -1);
	assert_string_equal(res.v[0].why, "lag_p99>20ms: loop worker-loop (tid 4250): lag p99 25.400 ms > 20 ms");
	gate_result_free(&res);

	/* 412.5 ms of GIL waits in 2780.4 ms: 14.8% */
	res = eval("gil_contention>5%", r, &s, NULL);
	assert_int_equal(res.n, 1);
	assert_int_equal(res.v[0].loop, 1);
	gate_result_free(&res);
	res = eval("gil_contention>15%", r, &s, NULL);
	assert_int_equal(res.n, 0);
	gate_result_free(&res);

	/* MainThread: stall 473.125 / 2780.4 = 17.0% */
	res = eval("stall>16%,stall>18%,busy>90%,lag_max>150ms,lag_p50>5ms", r, &s, NULL);
	assert_int_equal(res.n, 4);
	assert_int_equal(res.v[0].rule, 0);
	assert_int_equal(res.v[0].loop, 0);
	assert_int_equal(res.v[1].rule, 2);
	assert_int_equal(res.v[1].loop, 1);
	assert_int_equal(res.v[2].rule, 3);
	assert_int_equal(res.v[2].loop, 0);
	assert_int_equal(res.v[3].rule, 4);
	assert_int_equal(res.v[3].loop, 1);
	gate_result_free(&res);
	gate_result_free(&res);

	report_sites_free(&s);
	report_free(r);
}

static struct diff *pitfalls_diff(struct report **a, struct report **b, double max_regression)
{
	struct diff *d = NULL;

	*a = fixture_report("pitfalls_baseline.json");
	*b = fixture_report("pitfalls.json");
	assert_int_equal(diff_compute(*a, *b, max_regression, &d), 0);
	return d;
}

static void test_diff(void **state)
{
	struct report *a, *b;
	struct diff *d = pitfalls_diff(&a, &b, 20);

	(void)state;
	/* matched across machines (/builds/team/app vs /srv/app) and shifted
	 * lines (reports.py:18 -> :21, server.py:28 -> :30) */
	assert_int_equal(d->nnew, 1);
	assert_int_equal(d->nworse, 1);
	assert_int_equal(d->ngone, 1);
	assert_int_equal(d->nsame, 4);
	assert_int_equal(d->nregressed, 1);
	assert_int_equal(d->sites[0].status, DIFF_NEW);
	assert_string_equal(d->sites[0].b->frame->function, "refresh_cache");
	assert_int_equal(d->sites[1].status, DIFF_WORSE);
	assert_string_equal(d->sites[1].b->frame->function, "checksum");
	assert_int_equal(d->sites[1].a->frame->line, 18);
	assert_true(d->sites[1].total_pct > 57 && d->sites[1].total_pct < 58);
	assert_int_equal(d->sites[2].status, DIFF_GONE);
	assert_string_equal(d->sites[2].a->frame->function, "fetch_profile");
	assert_int_equal(d->sites[3].status, DIFF_SAME);
	assert_string_equal(d->sites[3].b->frame->function, "archive");
	assert_int_equal(d->sites[3].a->frame->line, 28);
	assert_true(diff_failed(d));
	assert_int_equal(d->nloops, 2);
	assert_string_equal(d->loops[1].b->thread_name, "worker-loop");
	assert_true(d->loops[1].regressed);
	assert_false(d->loops[0].regressed); /* +6.7% but under the 1 ms floor anyway */
	diff_free(d);
	report_free(a);
	report_free(b);

	/* without a threshold nothing is "worse"; new sites still fail */
	d = pitfalls_diff(&a, &b, -1);
	assert_int_equal(d->nnew, 1);
	assert_int_equal(d->nworse, 0);
	assert_int_equal(d->nregressed, 0);
	assert_true(diff_failed(d));
	diff_free(d);
	report_free(b);
	/* a report against itself: all the same */
	b = fixture_report("pitfalls_baseline.json");
	assert_int_equal(diff_compute(a, b, 0, &d), 0);
	assert_int_equal(d->nsame, d->nsites);
	assert_false(diff_failed(d));
	diff_free(d);
	diff_free(NULL);
	report_free(a);
	report_free(b);
	assert_true(diff_pct(0, 0) == 0);
	assert_true(diff_pct(10, 15) == 50);
	assert_true(diff_pct(0, 1) > 1e300);
}

static void test_gate_with_baseline(void **state)
{
	struct report *a, *b;
	struct diff *d = pitfalls_diff(&a, &b, -1);
	struct gate_result res;

	(void)state;
	/* known sites are exempt: only the new clock_nanosleep fails */
	res = eval("blocking_syscall,stall,lock_contention", b, &d->sb, d);
	assert_int_equal(res.n, 1);
	assert_int_equal(res.v[0].site, 2);
	assert_non_null(strstr(res.v[0].why, "(new since the baseline)"));
	gate_result_free(&res);
	/* no rules: every new site */
	res = eval(NULL, b, &d->sb, d);
	assert_int_equal(res.n, 1);
	assert_int_equal(res.v[0].rule, -1);
	assert_non_null(strstr(res.v[0].why, "new since the baseline: blocking_syscall clock_nanosleep"));
	gate_result_free(&res);
	diff_free(d);
	report_free(a);
	report_free(b);

	d = pitfalls_diff(&a, &b, 20);
	/* worse sites count too; loop rules are not filtered; a regressed
	 * loop is a violation of its own */
	res = eval("stall,lag_p99>100ms", b, &d->sb, d);
	assert_int_equal(res.n, 2);
	assert_int_equal(res.v[0].site, 0);
	assert_non_null(strstr(res.v[0].why, "(worse than the baseline)"));
	assert_int_equal(res.v[1].loop, 1);
	assert_int_equal(res.v[1].rule, -1);
	gate_result_free(&res);
	res = eval(NULL, b, &d->sb, d);
	assert_int_equal(res.n, 3);
	gate_result_free(&res);
	diff_free(d);
	report_free(a);
	report_free(b);
}

/* Two sites in one function, both shifted: each pairs with its nearest. */
static void test_diff_nearest_line(void **state)
{
	static const char head[] =
		"{\"schema\":\"loopspy-report/1\",\"target\":{\"pid\":1,\"command\":\"c\",\"runtime\":{}},"
		"\"duration_ms\":1000,\"dropped_events\":0,\"loops\":[],\"findings\":[";
	static const char fmt[] =
		"{\"kind\":\"blocking_syscall\",\"tid\":1,\"thread_name\":\"t\",\"syscall\":\"read\",\"count\":1,"
		"\"total_ms\":%d,\"max_ms\":%d,\"python_stack\":[{\"function\":\"f\",\"file\":\"%s\",\"line\":%d}]}";
	char doc_a[1024], doc_b[1024], f1[400], f2[400], err[256];
	struct report *a, *b;
	struct diff *d;

	(void)state;
	snprintf(f1, sizeof(f1), fmt, 10, 10, "/a/x.py", 10);
	snprintf(f2, sizeof(f2), fmt, 20, 20, "/a/x.py", 30);
	snprintf(doc_a, sizeof(doc_a), "%s%s,%s]}", head, f1, f2);
	snprintf(f1, sizeof(f1), fmt, 10, 10, "/b/x.py", 35);
	snprintf(f2, sizeof(f2), fmt, 90, 90, "/b/x.py", 15);
	snprintf(doc_b, sizeof(doc_b), "%s%s,%s]}", head, f1, f2);
	assert_int_equal(report_parse(doc_a, strlen(doc_a), &a, err, sizeof(err)), 0);
	assert_int_equal(report_parse(doc_b, strlen(doc_b), &b, err, sizeof(err)), 0);
	assert_int_equal(diff_compute(a, b, 50, &d), 0);
	assert_int_equal(d->nsites, 2);
	assert_int_equal(d->nworse, 1);
	assert_int_equal(d->nsame, 1);
	/* 10 -> 15 (was 10 ms, now 90 ms: worse), 30 -> 35 (was 20, now 10) */
	assert_int_equal(d->sites[0].status, DIFF_WORSE);
	assert_int_equal(d->sites[0].a->frame->line, 10);
	assert_int_equal(d->sites[0].b->frame->line, 15);
	assert_int_equal(d->sites[1].a->frame->line, 30);
	diff_free(d);
	report_free(a);
	report_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_evaluate),
		cmocka_unit_test(test_diff),
		cmocka_unit_test(test_gate_with_baseline),
		cmocka_unit_test(test_diff_nearest_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
