/* Tests for core/report_json.c and core/report_summary.c: render a small
 * model, parse the JSON back, and grep the human summary. */
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

#define US 1000ULL
#define MS 1000000ULL
#define TID 31337
#define NR_FSYNC 74
#define NR_NANOSLEEP 230

static struct report_meta meta_default(void)
{
	struct report_meta meta;

	memset(&meta, 0, sizeof(meta));
	meta.pid = 4321;
	meta.command = "python3 app.py";
	meta.runtime_name = "cpython";
	meta.runtime_version = "3.11.2";
	meta.runtime_path = "/usr/bin/python3.11";
	meta.stacks = 1;
	meta.started_at = "2026-01-02T03:04:05Z";
	meta.duration_ns = 2 * 1000 * MS;
	meta.dropped_events = 3;
	meta.events = 1000;
	meta.end_reason = "duration";
	meta.exit_status = -1;
	meta.version = "0.1.0";
	return meta;
}

static struct mstack stack2(struct model *m, const char *leaf, const char *file, int line)
{
	struct mstack s;

	memset(&s, 0, sizeof(s));
	s.n = 2;
	s.f[0].function = model_intern(m, leaf);
	s.f[0].file = model_intern(m, file);
	s.f[0].line = line;
	s.f[1].function = model_intern(m, "main");
	s.f[1].file = model_intern(m, "app.py");
	s.f[1].line = -1;
	return s;
}

/* One loop, a blocking nanosleep (3 x 100ms) and a CPU stall (400ms). */
static struct model *model_small(void)
{
	struct model_config cfg = { .stall_ns = 100 * MS, .block_ns = 1 * MS };
	struct model *m = model_new(&cfg);
	struct ls_loop_stats ls;
	struct mstack io, cpu;
	struct model_sleep s;
	struct model_sample sm;
	int i;

	assert_non_null(m);
	memset(&ls, 0, sizeof(ls));
	ls.epfd = 6;
	ls.iterations = 100;
	ls.busy_ns = 1500 * MS;
	ls.max_ns = 400 * MS;
	ls.stalls = 4;
	ls.hist[ls_hist_bucket(100)] = 98;
	ls.hist[ls_hist_bucket(100000)] = 1;
	ls.hist[ls_hist_bucket(400000)] = 1;
	model_loop_update(m, TID, &ls);
	snprintf(model_loop(m, TID, 0)->name, sizeof(model_loop(m, TID, 0)->name), "MainThread");

	io = stack2(m, "blocking_sleep", "/srv/app/handlers.py", 17);
	for (i = 0; i < 3; i++) {
		memset(&s, 0, sizeof(s));
		s.tid = TID;
		s.iter_start = (uint64_t)(i + 1) * 1000 * MS;
		s.start = s.iter_start + 1 * MS;
		s.blocked_ns = 100 * MS + (uint64_t)i * 500 * US;
		s.ts = s.start + s.blocked_ns;
		s.nr = NR_NANOSLEEP;
		s.stack = &io;
		model_add_sleep(m, &s);
	}
	cpu = stack2(m, "crunch", "/srv/app/cpu.py", 99);
	for (i = 0; i < 4; i++) {
		memset(&sm, 0, sizeof(sm));
		sm.tid = TID;
		sm.iter_start = 9000 * MS;
		sm.ts = sm.iter_start + (uint64_t)(101 + i) * MS;
		sm.nr = i == 3 ? NR_FSYNC : -1;
		sm.stack = &cpu;
		model_add_sample(m, &sm);
	}
	model_add_stall(m, TID, 9000 * MS, 9400 * MS, 10 * MS, 2 * MS);
	return m;
}

static cJSON *obj(const cJSON *o, const char *key)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (!v)
		fail_msg("JSON key \"%s\" missing", key);
	return v;
}

static double num(const cJSON *o, const char *key)
{
	cJSON *v = obj(o, key);

	if (!cJSON_IsNumber(v))
		fail_msg("JSON key \"%s\" is not a number", key);
	return v->valuedouble;
}

static const char *str(const cJSON *o, const char *key)
{
	cJSON *v = obj(o, key);

	if (!cJSON_IsString(v))
		fail_msg("JSON key \"%s\" is not a string", key);
	return v->valuestring;
}

static void assert_num(const cJSON *o, const char *key, double want)
{
	double got = num(o, key);

	if (got != want)
		fail_msg("JSON \"%s\": got %.6f, want %.6f", key, got, want);
}

static void assert_num_near(const cJSON *o, const char *key, double want, double rel)
{
	double got = num(o, key), d = got - want;

	if ((d < 0 ? -d : d) > rel * want)
		fail_msg("JSON \"%s\": got %.6f, want %.6f within %.0f%%", key, got, want, rel * 100);
}

static cJSON *render(const struct model *m, const struct report_meta *meta)
{
	char *text = report_json_render(m, meta);
	cJSON *root;

	assert_non_null(text);
	root = cJSON_Parse(text);
	if (!root)
		fail_msg("report is not valid JSON:\n%s", text);
	free(text);
	return root;
}

static void test_json(void **state)
{
	struct model *m = model_small();
	struct report_meta meta = meta_default();
	cJSON *root, *t, *rt, *loops, *l, *lag, *fs, *f, *st, *fr, *b, *sys;

	(void)state;
	root = render(m, &meta);
	assert_string_equal(str(root, "schema"), "loopspy-report/1");
	assert_string_equal(str(root, "loopspy_version"), "0.1.0");
	t = obj(root, "target");
	assert_num(t, "pid", 4321);
	assert_string_equal(str(t, "command"), "python3 app.py");
	assert_null(cJSON_GetObjectItemCaseSensitive(t, "exit_status"));
	rt = obj(t, "runtime");
	assert_string_equal(str(rt, "name"), "cpython");
	assert_string_equal(str(rt, "version"), "3.11.2");
	assert_string_equal(str(rt, "path"), "/usr/bin/python3.11");
	assert_true(cJSON_IsTrue(obj(rt, "python_stacks")));
	assert_null(cJSON_GetObjectItemCaseSensitive(rt, "python_stacks_unavailable"));
	assert_string_equal(str(root, "started_at"), "2026-01-02T03:04:05Z");
	assert_num(root, "duration_ms", 2000);
	assert_string_equal(str(root, "end_reason"), "duration");
	assert_num(root, "dropped_events", 3);
	assert_num(root, "events", 1000);
	assert_num(obj(root, "thresholds"), "stall_ms", 100);
	assert_num(obj(root, "thresholds"), "block_ms", 1);

	loops = obj(root, "loops");
	assert_true(cJSON_IsArray(loops));
	assert_int_equal(cJSON_GetArraySize(loops), 1);
	l = cJSON_GetArrayItem(loops, 0);
	assert_num(l, "tid", TID);
	assert_string_equal(str(l, "thread_name"), "MainThread");
	assert_num(l, "epoll_fd", 6);
	assert_num(l, "iterations", 100);
	assert_num(l, "stalls", 4);
	lag = obj(l, "lag_ms");
	assert_num_near(lag, "p50", 0.1, 0.07);
	assert_num_near(lag, "p99", 100, 0.07);
	assert_num(lag, "max", 400);
	assert_num(l, "busy_ratio", 0.75);
	assert_num(l, "gil_wait_ms", 0);

	fs = obj(root, "findings");
	assert_true(cJSON_IsArray(fs));
	assert_int_equal(cJSON_GetArraySize(fs), 2);

	/* sorted by total: the 400ms stall first */
	f = cJSON_GetArrayItem(fs, 0);
	assert_string_equal(str(f, "kind"), "stall");
	assert_num(f, "tid", TID);
	assert_string_equal(str(f, "thread_name"), "MainThread");
	assert_true(cJSON_IsNull(obj(f, "syscall")));
	assert_num(f, "count", 1);
	assert_num(f, "total_ms", 400);
	assert_num(f, "max_ms", 400);
	assert_num(f, "samples", 4);
	assert_num(f, "dominant_share", 1);
	assert_null(cJSON_GetObjectItemCaseSensitive(f, "fd_kind"));
	b = obj(f, "breakdown");
	assert_num(b, "on_cpu_ms", 388);
	assert_num(b, "blocked_ms", 10);
	assert_num(b, "runnable_ms", 2);
	sys = obj(b, "syscalls");
	assert_int_equal(cJSON_GetArraySize(sys), 1);
	assert_string_equal(str(cJSON_GetArrayItem(sys, 0), "syscall"), "fsync");
	assert_num(cJSON_GetArrayItem(sys, 0), "samples", 1);
	assert_num(cJSON_GetArrayItem(sys, 0), "count", 0);
	assert_num(cJSON_GetArrayItem(sys, 0), "blocked_ms", 0);
	st = obj(f, "python_stack");
	assert_int_equal(cJSON_GetArraySize(st), 2);
	fr = cJSON_GetArrayItem(st, 0);
	assert_string_equal(str(fr, "function"), "crunch");
	assert_string_equal(str(fr, "file"), "/srv/app/cpu.py");
	assert_num(fr, "line", 99);

	f = cJSON_GetArrayItem(fs, 1);
	assert_string_equal(str(f, "kind"), "blocking_syscall");
	assert_num(f, "tid", TID);
	assert_string_equal(str(f, "thread_name"), "MainThread");
	assert_string_equal(str(f, "syscall"), "clock_nanosleep");
	assert_num(f, "count", 3);
	assert_num(f, "total_ms", 301.5);
	assert_num(f, "max_ms", 101);
	assert_true(cJSON_IsNull(obj(f, "fd_kind")));
	assert_num(f, "stalls", 0);
	assert_null(cJSON_GetObjectItemCaseSensitive(f, "breakdown"));
	st = obj(f, "python_stack");
	assert_int_equal(cJSON_GetArraySize(st), 2);
	/* innermost first */
	fr = cJSON_GetArrayItem(st, 0);
	assert_string_equal(str(fr, "function"), "blocking_sleep");
	assert_string_equal(str(fr, "file"), "/srv/app/handlers.py");
	assert_num(fr, "line", 17);
	fr = cJSON_GetArrayItem(st, 1);
	assert_string_equal(str(fr, "function"), "main");
	assert_string_equal(str(fr, "file"), "app.py");
	assert_true(cJSON_IsNull(obj(fr, "line")));

	cJSON_Delete(root);
	model_free(m);
}

static void test_json_meta_variants(void **state)
{
	struct model_config cfg = { .stall_ns = 250 * MS, .block_ns = 500 * US };
	struct model *m = model_new(&cfg);
	struct report_meta meta;
	cJSON *root, *t, *rt;

	(void)state;
	memset(&meta, 0, sizeof(meta));
	meta.pid = 7;
	meta.stacks = 0;
	meta.stacks_reason = "not a CPython process";
	meta.exit_status = 3;
	root = render(m, &meta);
	t = obj(root, "target");
	assert_num(t, "pid", 7);
	assert_string_equal(str(t, "command"), "");
	assert_num(t, "exit_status", 3);
	rt = obj(t, "runtime");
	assert_string_equal(str(rt, "name"), "unknown");
	assert_true(cJSON_IsNull(obj(rt, "version")));
	assert_true(cJSON_IsFalse(obj(rt, "python_stacks")));
	assert_string_equal(str(rt, "python_stacks_unavailable"), "not a CPython process");
	assert_num(obj(root, "thresholds"), "stall_ms", 250);
	assert_num(obj(root, "thresholds"), "block_ms", 0.5);
	assert_num(root, "duration_ms", 0);
	cJSON_Delete(root);
	model_free(m);
}

static void test_json_empty(void **state)
{
	struct model_config cfg = { .stall_ns = 100 * MS, .block_ns = 1 * MS };
	struct model *m = model_new(&cfg);
	struct report_meta meta = meta_default();
	cJSON *root;

	(void)state;
	assert_non_null(m);
	root = render(m, &meta);
	assert_true(cJSON_IsArray(obj(root, "findings")));
	assert_int_equal(cJSON_GetArraySize(obj(root, "findings")), 0);
	assert_true(cJSON_IsArray(obj(root, "loops")));
	assert_int_equal(cJSON_GetArraySize(obj(root, "loops")), 0);
	assert_string_equal(str(root, "schema"), REPORT_SCHEMA);
	cJSON_Delete(root);
	model_free(m);
}

static char *summary(const struct model *m, const struct report_meta *meta)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	report_summary_write(f, m, meta);
	assert_int_equal(fclose(f), 0);
	assert_non_null(buf);
	return buf;
}

static void assert_contains(const char *hay, const char *needle)
{
	if (!strstr(hay, needle))
		fail_msg("\"%s\" not found in:\n%s", needle, hay);
}

static void test_summary(void **state)
{
	struct model *m = model_small();
	struct report_meta meta = meta_default();
	char *out;

	(void)state;
	out = summary(m, &meta);
	assert_contains(out, "pid 4321");
	assert_contains(out, "python3 app.py");
	assert_contains(out, "1 event loop,");
	assert_contains(out, "3 dropped");
	assert_contains(out, "\"MainThread\"");
	assert_contains(out, "100 iterations");
	assert_contains(out, "blocking_syscall  clock_nanosleep  x3");
	assert_contains(out, "blocking_sleep");
	assert_contains(out, "/srv/app/handlers.py:17");
	assert_contains(out, "stall  x1  total 400 ms");
	assert_contains(out, "crunch");
	assert_contains(out, "/srv/app/cpu.py:99");
	assert_contains(out, "in fsync:");
	assert_contains(out, "(100% of samples)");
	/* the stall (400ms) is listed before the blocking call (301ms) */
	assert_true(strstr(out, "stall  x1") < strstr(out, "blocking_syscall"));
	free(out);
	model_free(m);
}

static void test_summary_empty(void **state)
{
	struct model_config cfg = { .stall_ns = 100 * MS, .block_ns = 1 * MS };
	struct model *m = model_new(&cfg);
	struct report_meta meta = meta_default();
	char *out;

	(void)state;
	meta.stacks = 0;
	meta.stacks_reason = "CPython 3.7 is not supported";
	out = summary(m, &meta);
	assert_contains(out, "0 event loops");
	assert_contains(out, "no findings");
	assert_contains(out, "no Python stacks: CPython 3.7 is not supported");
	free(out);
	model_free(m);
}

static void test_syscall_label(void **state)
{
	(void)state;
	assert_string_equal(report_syscall_label(230), "clock_nanosleep");
	assert_string_equal(report_syscall_label(74), "fsync");
	assert_string_equal(report_syscall_label(0), "read");
	assert_string_equal(report_syscall_label(-2), "gil");
	assert_string_equal(report_syscall_label(-1), "(no syscall)");
	assert_string_equal(report_syscall_label(100000), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_json_meta_variants),
		cmocka_unit_test(test_json_empty),
		cmocka_unit_test(test_summary),
		cmocka_unit_test(test_summary_empty),
		cmocka_unit_test(test_syscall_label),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
