/* Golden-file tests of the report renderers (core/render_*.c) and of
 * `loopspy diff`'s listing: each case renders a fixture from
 * tests/fixtures/ and compares it byte for byte with tests/golden/.
 *
 * After an intended change of an output, regenerate the goldens with
 *     make golden
 * (LOOPSPY_UPDATE_GOLDEN=1 build/tests/test_render) and review the diff.
 * A mismatch leaves the actual output in build/golden-actual/. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "diff.h"
#include "gate.h"
#include "render.h"
#include "report_read.h"
#include "report_fixture.h"

#define FMT_DIFF (-1)

struct golden_case {
	const char *fixture;
	int fmt;                 /* enum render_format, or FMT_DIFF */
	const char *golden;
	const char *rules;       /* --fail-on */
	const char *baseline;    /* --baseline (a fixture) */
	double max_regression;
	const char *root;        /* --source-root */
};

#define RULES "stall>100ms,blocking_syscall,lag_p99>20ms,gil_contention>5%"

static const struct golden_case cases[] = {
	{ "pitfalls.json", RENDER_MD, "pitfalls.md", NULL, NULL, -1, "/srv/app" },
	{ "pitfalls.json", RENDER_HTML, "pitfalls.html", NULL, NULL, -1, "/srv/app" },
	{ "pitfalls.json", RENDER_JUNIT, "pitfalls.xml", NULL, NULL, -1, "/srv/app" },
	{ "pitfalls.json", RENDER_SARIF, "pitfalls.sarif", NULL, NULL, -1, "/srv/app" },
	{ "pitfalls.json", RENDER_FOLDED, "pitfalls.folded", NULL, NULL, -1, "/srv/app" },
	{ "pitfalls.json", RENDER_TRACE, "pitfalls.trace.json", NULL, NULL, -1, "/srv/app" },
	{ "pitfalls.json", RENDER_JSON, "pitfalls.json", NULL, NULL, -1, "/srv/app" },
	{ "pitfalls.json", RENDER_MD, "pitfalls.gate.md", RULES, NULL, -1, "/srv/app" },
	{ "pitfalls.json", RENDER_HTML, "pitfalls.gate.html", RULES, NULL, -1, "/srv/app" },
	{ "pitfalls.json", RENDER_JUNIT, "pitfalls.gate.xml", RULES, NULL, -1, "/srv/app" },
	{ "pitfalls.json", RENDER_SARIF, "pitfalls.gate.sarif", RULES, NULL, -1, "/srv/app" },
	{ "pitfalls.json", RENDER_MD, "pitfalls.baseline.md", NULL, "pitfalls_baseline.json", 20, "/srv/app" },
	{ "pitfalls.json", RENDER_JUNIT, "pitfalls.baseline.xml", "blocking_syscall,stall",
	  "pitfalls_baseline.json", -1, "/srv/app" },
	{ "pitfalls.json", FMT_DIFF, "pitfalls.diff.txt", NULL, "pitfalls_baseline.json", 20, NULL },
	{ "clean.json", RENDER_MD, "clean.md", RULES, NULL, -1, "/srv/app" },
	{ "clean.json", RENDER_HTML, "clean.html", NULL, NULL, -1, "/srv/app" },
	{ "clean.json", RENDER_JUNIT, "clean.xml", RULES, NULL, -1, "/srv/app" },
	{ "clean.json", RENDER_SARIF, "clean.sarif", NULL, NULL, -1, "/srv/app" },
	{ "nostacks.json", RENDER_MD, "nostacks.md", NULL, NULL, -1, NULL },
	{ "nostacks.json", RENDER_HTML, "nostacks.html", NULL, NULL, -1, NULL },
	{ "nostacks.json", RENDER_JUNIT, "nostacks.xml", "stall", NULL, -1, NULL },
	{ "nostacks.json", RENDER_SARIF, "nostacks.sarif", NULL, NULL, -1, NULL },
	{ "nostacks.json", RENDER_TRACE, "nostacks.trace.json", NULL, NULL, -1, NULL },
	{ "hostile.json", RENDER_MD, "hostile.md", "stall", NULL, -1, "/srv/my app" },
	{ "hostile.json", RENDER_HTML, "hostile.html", "stall", NULL, -1, "/srv/my app" },
	{ "hostile.json", RENDER_JUNIT, "hostile.xml", "stall", NULL, -1, "/srv/my app" },
	{ "hostile.json", RENDER_SARIF, "hostile.sarif", "stall", NULL, -1, "/srv/my app" },
	{ "hostile.json", RENDER_FOLDED, "hostile.folded", NULL, NULL, -1, "/srv/my app" },
	{ "hostile.json", RENDER_TRACE, "hostile.trace.json", NULL, NULL, -1, "/srv/my app" },
};

/* Renders a case the way `loopspy report` does; malloc'd text. */
static char *case_render(const struct golden_case *gc, size_t *len)
{
	struct report *r = fixture_report(gc->fixture), *base = NULL;
	struct report_sites own = { 0 };
	const struct report_sites *sites = &own;
	struct diff *d = NULL;
	struct gate *g = NULL;
	struct gate_result res = { 0 };
	struct render_ctx ctx;
	char *buf = NULL, err[512];
	FILE *m = open_memstream(&buf, len);

	assert_non_null(m);
	if (gc->rules && gate_parse(gc->rules, &g, err, sizeof(err)) < 0)
		fail_msg("%s: %s", gc->golden, err);
	if (gc->baseline) {
		base = fixture_report(gc->baseline);
		assert_int_equal(diff_compute(base, r, gc->max_regression, &d), 0);
		sites = &d->sb;
	} else {
		assert_int_equal(report_sites_build(r, &own), 0);
	}
	if (gc->rules || gc->baseline)
		assert_int_equal(gate_evaluate(g, r, sites, d, &res), 0);
	memset(&ctx, 0, sizeof(ctx));
	ctx.r = r;
	ctx.sites = sites;
	ctx.gate = g;
	ctx.verdict = gc->rules || gc->baseline ? &res : NULL;
	ctx.baseline = gc->baseline;
	ctx.source_root = gc->root;
	ctx.loopspy_version = "0.1.0";
	if (gc->fmt == FMT_DIFF)
		diff_write(m, d);
	else if (render_report(m, (enum render_format)gc->fmt, &ctx) < 0)
		fail_msg("%s: render failed", gc->golden);
	assert_int_equal(fclose(m), 0);
	gate_result_free(&res);
	gate_free(g);
	diff_free(d);
	report_sites_free(&own);
	report_free(base);
	report_free(r);
	return buf;
}

static void file_write(const char *path, const char *buf, size_t len)
{
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0)
		fail_msg("cannot write %s", path);
}

static void golden_compare(const struct golden_case *gc, const char *got, size_t len)
{
	char rel[256], *path, *want;
	size_t wlen = 0, i, line = 1;

	snprintf(rel, sizeof(rel), "tests/golden/%s", gc->golden);
	path = repo_path(rel);
	if (getenv("LOOPSPY_UPDATE_GOLDEN") && !strcmp(getenv("LOOPSPY_UPDATE_GOLDEN"), "1")) {
		file_write(path, got, len);
		print_message("updated %s\n", path);
		free(path);
		return;
	}
	want = file_read(path, &wlen);
	if (!want)
		fail_msg("golden %s is missing; create it with `make golden`", path);
	for (i = 0; i < len && i < wlen && got[i] == want[i]; i++)
		line += got[i] == '\n';
	if (i < len || i < wlen) {
		char *dir = repo_path("build/golden-actual"), *actual;

		mkdir(dir, 0755);
		if (asprintf(&actual, "%s/%s", dir, gc->golden) < 0)
			fail_msg("out of memory");
		file_write(actual, got, len);
		fail_msg("%s differs from %s at line %zu (actual output: %s)\n"
			 "if the change is intended: make golden, then review `git diff tests/golden`",
			 gc->golden, path, line, actual);
	}
	free(want);
	free(path);
}

static void test_goldens(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = 0;
		char *got = case_render(&cases[i], &len);

		assert_int_equal(strlen(got), len);
		golden_compare(&cases[i], got, len);
		/* rendering is deterministic */
		{
			size_t len2 = 0;
			char *again = case_render(&cases[i], &len2);

			assert_int_equal(len, len2);
			assert_memory_equal(got, again, len);
			free(again);
		}
		free(got);
	}
}

/* HTML: self-contained (no URL, no script, no external reference) and
 * everything from the report escaped. */
static void test_html_self_contained(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = 0;
		char *got, *p;

		if (cases[i].fmt != RENDER_HTML)
			continue;
		got = case_render(&cases[i], &len);
		assert_null(strstr(got, "http://"));
		assert_null(strstr(got, "https://"));
		assert_null(strstr(got, "<script"));
		assert_null(strstr(got, "src="));
		assert_null(strstr(got, "url("));
		assert_null(strstr(got, "@import"));
		for (p = strstr(got, "href="); p; p = strstr(p + 1, "href="))
			if (strncmp(p, "href=\"#site-", 12))
				fail_msg("%s: external link at %.40s", cases[i].golden, p);
		free(got);
	}
}

static void test_formats(void **state)
{
	static const struct {
		const char *path;
		int fmt;
	} guesses[] = {
		{ "r.md", RENDER_MD }, { "R.MD", RENDER_MD }, { "a/b.html", RENDER_HTML }, { "x.htm", RENDER_HTML },
		{ "junit.xml", RENDER_JUNIT }, { "l.sarif", RENDER_SARIF }, { "l.sarif.json", RENDER_SARIF },
		{ "s.folded", RENDER_FOLDED }, { "t.trace.json", RENDER_TRACE }, { "copy.json", RENDER_JSON },
		{ "report", -1 }, { "report.txt", -1 }, { ".md", -1 },
	};
	enum render_format f;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(guesses) / sizeof(guesses[0]); i++) {
		int rc = render_format_guess(guesses[i].path, &f);

		if (guesses[i].fmt < 0)
			assert_int_equal(rc, -1);
		else if (rc < 0 || (int)f != guesses[i].fmt)
			fail_msg("%s: guessed %d, want %d", guesses[i].path, rc < 0 ? -1 : (int)f, guesses[i].fmt);
	}
	assert_int_equal(render_format_parse("markdown", &f), 0);
	assert_int_equal(f, RENDER_MD);
	assert_int_equal(render_format_parse("trace", &f), 0);
	assert_int_equal(f, RENDER_TRACE);
	assert_int_equal(render_format_parse("pdf", &f), -1);
	for (i = 0; i < RENDER_NFORMATS; i++) {
		assert_int_equal(render_format_parse(render_format_name((enum render_format)i), &f), 0);
		assert_int_equal(f, i);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_goldens),
		cmocka_unit_test(test_html_self_contained),
		cmocka_unit_test(test_formats),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
