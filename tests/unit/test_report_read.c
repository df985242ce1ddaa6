/* Tests for core/report_read.c: reading reports back, hostile input
 * (truncated, wrong types, wrong schema), sites, the library-path
 * heuristic, and the round trip from report_json_render. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "model.h"
#include "report.h"
#include "report_read.h"
#include "report_fixture.h"

#define MS 1000000ULL

static int parse_fails(const char *text, size_t len, char *err, size_t errlen)
{
	struct report *r = NULL;
	int rc = report_parse(text, len, &r, err, errlen);

	if (rc == 0) {
		report_free(r);
		return 0;
	}
	assert_null(r);
	return 1;
}

static void expect_error(const char *text, const char *want)
{
	char err[512];

	if (!parse_fails(text, strlen(text), err, sizeof(err)))
		fail_msg("parsed, expected an error containing \"%s\":\n%s", want, text);
	if (!strstr(err, want))
		fail_msg("error \"%s\" does not contain \"%s\"", err, want);
}

static void test_parse_pitfalls(void **state)
{
	struct report *r = fixture_report("pitfalls.json");
	const struct rfinding *f;

	(void)state;
	assert_string_equal(r->schema, "loopspy-report/1");
	assert_int_equal(r->pid, 4242);
	assert_string_equal(r->command, "/usr/bin/python3 /srv/app/server.py --port 8080");
	assert_string_equal(r->runtime_version, "3.11.2");
	assert_int_equal(r->python_stacks, 1);
	assert_int_equal(r->exit_status, 0);
	assert_true(r->duration_ms == 2780.4);
	assert_true(r->stall_ms == 100 && r->block_ms == 1);
	assert_int_equal(r->nloops, 2);
	assert_string_equal(r->loops[1].thread_name, "worker-loop");
	assert_true(r->loops[1].gil_wait_ms == 412.5);
	assert_true(r->loops[1].lag_p99 == 25.4);
	assert_int_equal(r->loops[0].nhist, 15);
	assert_true(r->loops[0].hist[0].lt_ms == 0.016);
	assert_int_equal(r->loops[0].hist[14].count, 3);
	assert_int_equal(r->nfindings, 7);
	f = &r->findings[1];
	assert_string_equal(f->kind, "gil_contention");
	assert_string_equal(f->lock_kind, "gil");
	assert_int_equal(f->nholders, 2);
	assert_string_equal(f->holders[0].thread_name, "cruncher");
	assert_string_equal(f->holders[0].stack[0].function, "crunch");
	assert_true(f->holders[0].share == 0.395);
	f = &r->findings[0];
	assert_true(f->has_breakdown);
	assert_int_equal(f->samples, 222);
	assert_true(f->dominant_share == 0.94);
	assert_int_equal(f->nsys, 1);
	assert_string_equal(f->sys[0].syscall, "write");
	assert_null(f->syscall);
	assert_int_equal(f->stack[0].line, 21);
	f = &r->findings[6];
	assert_string_equal(f->kind, "gc_pause");
	assert_int_equal(f->generation, 2);
	assert_int_equal(f->nstack, 0);
	assert_true(r->has_timeline);
	assert_int_equal(r->ntimeline, 9);
	assert_string_equal(r->timeline[1].syscall, "clock_nanosleep");
	assert_int_equal(r->timeline[4].line, -1);
	assert_null(r->timeline[4].function);
	report_free(r);
}

static void test_parse_old_report(void **state)
{
	struct report *r = fixture_report("nostacks.json");

	(void)state;
	assert_int_equal(r->python_stacks, 0);
	assert_null(r->runtime_version);
	assert_int_equal(r->exit_status, -1);
	assert_false(r->has_timeline);
	assert_null(r->loops[0].hist);
	assert_true(r->loops[0].gil_wait_ms == 0);
	assert_true(r->stall_ms == -1);
	assert_true(r->findings[0].dominant_share == -1);
	assert_string_equal(r->findings[1].fd_kind, "file");
	assert_int_equal(r->findings[1].generation, -1);
	report_free(r);
}

static void test_hostile_strings(void **state)
{
	struct report *r = fixture_report("hostile.json");

	(void)state;
	/* invalid UTF-8 bytes became '?' */
	assert_string_equal(r->findings[1].stack[0].function, "bad??name?");
	assert_string_equal(r->findings[0].stack[4].function, "BELL\aTAB\tNL\nCR\r");
	assert_int_equal(r->findings[0].stack[1].line, -1);
	report_free(r);
}

/* Every proper prefix of a report is an error, never a crash. */
static void test_truncated(void **state)
{
	size_t len, n;
	char *text = fixture_text("pitfalls.json", &len), err[512];

	(void)state;
	for (n = 0; n + 1 < len; n++) {
		if (!parse_fails(text, n, err, sizeof(err)))
			fail_msg("a %zu-byte prefix of %zu parsed", n, len);
		assert_true(err[0] != 0);
	}
	assert_false(parse_fails(text, len, err, sizeof(err)));
	free(text);
}

/* Each member of the document replaced by each JSON type in turn: the
 * reader must either accept the document or say which field is wrong. */
static int mutations;

static void mutate_walk(cJSON *root, cJSON *node)
{
	cJSON *child;

	for (child = node->child; child; child = child->next) {
		cJSON *(*makers[])(void) = { cJSON_CreateNull, cJSON_CreateTrue, cJSON_CreateArray, cJSON_CreateObject };
		size_t k;

		for (k = 0; k < 6; k++) {
			cJSON *repl = k < 4 ? makers[k]() : k == 4 ? cJSON_CreateString("x") : cJSON_CreateNumber(-1.5);
			cJSON *saved = cJSON_Duplicate(child, 1);
			char *text, err[512];
			struct report *r = NULL;

			if (node->type == cJSON_Array) {
				int idx = 0;
				cJSON *it;

				for (it = node->child; it != child; it = it->next)
					idx++;
				cJSON_ReplaceItemInArray(node, idx, repl);
			} else {
				cJSON_ReplaceItemInObjectCaseSensitive(node, child->string, repl);
			}
			text = cJSON_PrintUnformatted(root);
			if (report_parse(text, strlen(text), &r, err, sizeof(err)) < 0) {
				assert_non_null(strchr(err, ':'));
			} else {
				report_free(r);
			}
			free(text);
			mutations++;
			/* put the original back, then walk into it */
			if (node->type == cJSON_Array) {
				int idx = 0;
				cJSON *it;

				for (it = node->child; it != repl; it = it->next)
					idx++;
				cJSON_ReplaceItemInArray(node, idx, saved);
			} else {
				cJSON_ReplaceItemInObjectCaseSensitive(node, repl->string, saved);
			}
			child = saved;
		}
		if (child->child)
			mutate_walk(root, child);
	}
}

static void test_wrong_types(void **state)
{
	static const char *const names[] = { "nostacks.json", "pitfalls.json" };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char *text = fixture_text(names[i], NULL);
		cJSON *root = cJSON_Parse(text);

		assert_non_null(root);
		mutations = 0;
		mutate_walk(root, root);
		assert_true(mutations > 100);
		cJSON_Delete(root);
		free(text);
	}
}

#define DOC_HEAD "{\"schema\":\"loopspy-report/1\",\"target\":{\"pid\":1,\"command\":\"c\",\"runtime\":{}},"

static void test_errors(void **state)
{
	(void)state;
	expect_error("", "empty file");
	expect_error(" \n\t", "empty file");
	expect_error("not json", "syntax error at line 1, column 1");
	expect_error("{\n  \"schema\": \"loopspy-report/1\",\n  oops\n}", "syntax error at line 3");
	expect_error("{\"schema\": \"loopspy-report/1\"", "ends early");
	expect_error("[1, 2]", "expected a JSON object");
	expect_error("{}", "no \"schema\"");
	expect_error("{\"schema\": 1}", "\"schema\" is not a string");
	expect_error("{\"schema\": \"loopspy-report/2\"}", "unsupported report version \"loopspy-report/2\"");
	expect_error("{\"schema\": \"sarif\"}", "not a loopspy report");
	expect_error("{\"schema\": \"loopspy-report/1\"} trailing", "syntax error");
	expect_error("{\"schema\": \"loopspy-report/1\"}", "target: missing");
	expect_error(DOC_HEAD "\"duration_ms\":-1,\"dropped_events\":0,\"loops\":[],\"findings\":[]}",
		     "duration_ms: expected a finite number >= 0");
	expect_error(DOC_HEAD "\"duration_ms\":1,\"dropped_events\":0.5,\"loops\":[],\"findings\":[]}",
		     "dropped_events: expected an integer");
	expect_error(DOC_HEAD "\"duration_ms\":1,\"dropped_events\":0,\"loops\":{},\"findings\":[]}",
		     "loops: expected an array");
	expect_error(DOC_HEAD "\"duration_ms\":1,\"dropped_events\":0,\"loops\":[],\"findings\":[7]}",
		     "findings[0]: expected an object");
	expect_error(DOC_HEAD "\"duration_ms\":1,\"dropped_events\":0,\"loops\":[],\"findings\":[{\"kind\":\"stall\","
		     "\"tid\":1,\"thread_name\":\"t\",\"syscall\":null,\"count\":1,\"total_ms\":1,\"max_ms\":\"1\","
		     "\"python_stack\":[]}]}", "findings[0].max_ms: expected a number");
	expect_error(DOC_HEAD "\"duration_ms\":1,\"dropped_events\":0,\"loops\":[],\"findings\":[{\"kind\":\"stall\","
		     "\"tid\":1,\"thread_name\":\"t\",\"syscall\":null,\"count\":1,\"total_ms\":1,\"max_ms\":1,"
		     "\"python_stack\":[{\"function\":\"f\",\"file\":\"x.py\",\"line\":\"3\"}]}]}",
		     "findings[0].python_stack[0].line: expected an integer or null");
	expect_error(DOC_HEAD "\"duration_ms\":1e999,\"dropped_events\":0,\"loops\":[],\"findings\":[]}",
		     "duration_ms: expected a finite number");
}

static void test_library_paths(void **state)
{
	static const char *const lib[] = {
		"/usr/lib/python3.11/asyncio/events.py",
		"/usr/local/lib/python3.12/site-packages/aiohttp/client.py",
		"/usr/lib/python3/dist-packages/uvloop/__init__.py",
		"/root/.pyenv/versions/3.9.18/lib/python3.9/json/encoder.py",
		"/home/ci/project/.venv/lib/python3.11/site-packages/requests/api.py",
		"/opt/py/lib64/python3.8/socket.py",
		"<frozen importlib._bootstrap>",
		"?",
		"",
	};
	static const char *const user[] = {
		"/srv/app/server.py",
		"tests/programs/demo_app.py",
		"/home/ci/lib/python_helpers/x.py",
		"/home/ci/lib/python3x/x.py",
		"/srv/lib/python3.11.py",
		"/work/python3.11/lib/app.py",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(lib) / sizeof(lib[0]); i++)
		if (!report_frame_is_library(lib[i]))
			fail_msg("%s should be library code", lib[i]);
	for (i = 0; i < sizeof(user) / sizeof(user[0]); i++)
		if (report_frame_is_library(user[i]))
			fail_msg("%s should be user code", user[i]);
}

static void test_sites(void **state)
{
	struct report *r = fixture_report("pitfalls.json");
	struct report_sites s;
	char buf[512];

	(void)state;
	assert_int_equal(report_sites_build(r, &s), 0);
	/* the two clock_nanosleep findings (two callers) are one site */
	assert_int_equal(s.n, 6);
	assert_string_equal(s.v[0].kind, "stall");
	assert_string_equal(s.v[0].frame->function, "checksum");
	assert_string_equal(s.v[1].kind, "gil_contention");
	/* waiter only in the loop's machinery: the holder's code */
	assert_string_equal(s.v[1].frame->function, "crunch");
	assert_string_equal(s.v[2].syscall, "clock_nanosleep");
	assert_int_equal(s.v[2].nfindings, 2);
	assert_int_equal(s.v[2].count, 3);
	assert_true(s.v[2].total_ms > 360.16 && s.v[2].total_ms < 360.162);
	assert_true(s.v[2].top == &r->findings[4]);
	/* innermost frames in subprocess.py are skipped */
	assert_string_equal(s.v[3].frame->function, "archive");
	assert_int_equal(s.v[3].frame->line, 30);
	assert_string_equal(s.v[4].frame->function, "read_cache");
	assert_null(s.v[5].frame);
	assert_int_equal(s.of[4], 2);
	assert_int_equal(s.of[5], 2);
	assert_int_equal(s.of[6], 5);
	report_site_describe(&s.v[2], buf, sizeof(buf));
	assert_string_equal(buf, "blocking_syscall clock_nanosleep at refresh_cache (/srv/app/cache.py:15)");
	report_site_describe(&s.v[5], buf, sizeof(buf));
	assert_string_equal(buf, "gc_pause (no Python stack)");
	report_sites_free(&s);
	report_sites_free(&s);
	report_free(r);
	report_free(NULL);
}

/* What record/run write, the gate reads: the same document. */
static void test_roundtrip(void **state)
{
	struct model_config cfg = { .stall_ns = 100 * MS, .block_ns = 1 * MS };
	struct model *m = model_new(&cfg);
	struct ls_loop_stats ls;
	struct mstack st;
	struct model_sleep sl;
	struct report_meta meta;
	struct report *r = NULL;
	char *json, err[512];

	(void)state;
	assert_non_null(m);
	memset(&ls, 0, sizeof(ls));
	ls.epfd = 3;
	ls.iterations = 10;
	ls.busy_ns = 300 * MS;
	ls.max_ns = 200 * MS;
	ls.hist[ls_hist_bucket(20)] = 9;
	ls.hist[ls_hist_bucket(200000)] = 1;
	model_loop_update(m, 7, &ls);
	model_loop_confirm(m, 7);
	memset(&st, 0, sizeof(st));
	st.n = 1;
	st.f[0].function = model_intern(m, "refresh");
	st.f[0].file = model_intern(m, "/srv/app.py");
	st.f[0].line = 15;
	memset(&sl, 0, sizeof(sl));
	sl.tid = 7;
	sl.iter_start = 1000 * MS;
	sl.start = sl.iter_start + MS;
	sl.blocked_ns = 200 * MS;
	sl.ts = sl.start + sl.blocked_ns;
	sl.nr = 230;
	sl.stack = &st;
	model_add_sleep(m, &sl);
	memset(&meta, 0, sizeof(meta));
	meta.pid = 7;
	meta.command = "python3 app.py";
	meta.runtime_name = "cpython";
	meta.stacks = 1;
	meta.duration_ns = 1000 * MS;
	meta.exit_status = -1;
	json = report_json_render(m, &meta);
	assert_non_null(json);
	if (report_parse(json, strlen(json), &r, err, sizeof(err)) < 0)
		fail_msg("report_json_render output does not read back: %s\n%s", err, json);
	assert_int_equal(r->nloops, 1);
	assert_true(r->loops[0].nhist > 0);
	assert_int_equal(r->loops[0].hist[0].count, 0);
	assert_int_equal(r->loops[0].hist[1].count, 9);
	assert_int_equal(r->loops[0].hist[r->loops[0].nhist - 1].count, 1);
	assert_true(r->loops[0].hist[r->loops[0].nhist - 1].lt_ms == 262.144);
	assert_true(r->has_timeline);
	assert_int_equal(r->nfindings, 1);
	assert_string_equal(r->findings[0].syscall, "clock_nanosleep");
	assert_string_equal(r->findings[0].stack[0].function, "refresh");
	report_free(r);
	free(json);
	model_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_pitfalls),
		cmocka_unit_test(test_parse_old_report),
		cmocka_unit_test(test_hostile_strings),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_wrong_types),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_library_paths),
		cmocka_unit_test(test_sites),
		cmocka_unit_test(test_roundtrip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
