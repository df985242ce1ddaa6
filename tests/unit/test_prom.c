/* Tests for core/prom.c, the agent's Prometheus exposition: escaping,
 * histogram collapsing, top-N folding and counters that never go
 * backwards, driven through a real model like the agent drives it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model.h"
#include "prom.h"

#define MS 1000000ULL
#define NR_NANOSLEEP 230
#define NR_READ 0
#define TID 4242

/* ------------------------------------------------------------------ */
/* helpers                                                             */

static struct model *new_model(void)
{
	struct model_config cfg = { .stall_ns = 100 * MS, .block_ns = 1 * MS };
	struct model *m = model_new(&cfg);
	struct loop_info *l;

	assert_non_null(m);
	model_loop_confirm(m, TID);
	l = model_loop(m, TID, 0);
	assert_non_null(l);
	snprintf(l->name, sizeof(l->name), "MainThread");
	return m;
}

static struct prom_target *new_target(int top_n)
{
	struct prom_target_info info = {
		.pid = TID, .comm = "python3", .cgroup = "app.service",
		.command = "/usr/bin/python3 app.py", .runtime = "CPython 3.11.2",
	};
	struct prom_target *t = prom_target_new(&info, top_n);

	assert_non_null(t);
	return t;
}

static struct mstack leaf_stack(struct model *m, const char *fn, int line)
{
	struct mstack s;

	memset(&s, 0, sizeof(s));
	s.n = 2;
	s.f[0].function = model_intern(m, fn);
	s.f[0].file = model_intern(m, "/srv/app.py");
	s.f[0].line = line;
	s.f[1].function = model_intern(m, "main");
	s.f[1].file = model_intern(m, "/srv/app.py");
	s.f[1].line = 99;
	return s;
}

static uint64_t iter_clock = 1000000000ULL;

/* One blocking sleep of ms milliseconds in function fn. */
static void block(struct model *m, const char *fn, uint64_t ms)
{
	struct mstack st = leaf_stack(m, fn, 10);
	struct model_sleep s;

	memset(&s, 0, sizeof(s));
	iter_clock += 10 * 1000 * MS;
	s.tid = TID;
	s.iter_start = iter_clock;
	s.start = iter_clock + 1000;
	s.blocked_ns = ms * MS;
	s.ts = s.start + s.blocked_ns;
	s.nr = NR_NANOSLEEP;
	s.stack = &st;
	model_add_sleep(m, &s);
}

/* A CPU-bound stall whose samples land on fn:line. */
static void stall(struct model *m, const char *fn, int line, uint64_t ms)
{
	struct mstack st = leaf_stack(m, fn, line);
	struct model_sample smp;
	int i;

	iter_clock += 10 * 1000 * MS;
	for (i = 0; i < 5; i++) {
		memset(&smp, 0, sizeof(smp));
		smp.tid = TID;
		smp.iter_start = iter_clock;
		smp.ts = iter_clock + (uint64_t)(i + 1) * MS;
		smp.nr = -1;
		smp.stack = &st;
		model_add_sample(m, &smp);
	}
	model_add_stall(m, TID, iter_clock, iter_clock + ms * MS, 0, 0);
}

static char *render(struct prom_target *const *ts, size_t n)
{
	struct prom_agent a = { .version = "0.1.0", .targets_attached = n, .targets_exported = n };
	struct prom_buf b;
	char *copy;

	prom_buf_init(&b);
	assert_int_equal(prom_render(&b, &a, ts, n), 0);
	copy = strdup(b.p);
	assert_non_null(copy);
	prom_buf_free(&b);
	return copy;
}

static char *escaped(const char *s)
{
	struct prom_buf b;
	char *copy;

	prom_buf_init(&b);
	prom_buf_escape(&b, s);
	copy = strdup(b.len ? b.p : "");
	assert_non_null(copy);
	prom_buf_free(&b);
	return copy;
}

#define MAX_SAMPLES 512

struct sample {
	char series[1200]; /* name{labels} */
	double value;
};

struct expo {
	struct sample s[MAX_SAMPLES];
	size_t n;
};

static int ends_with(const char *s, size_t n, const char *suffix)
{
	size_t k = strlen(suffix);

	return n >= k && !memcmp(s + n - k, suffix, k);
}

/* Parses and checks the text format: HELP then TYPE once per family, the
 * family's samples right after them, "name{labels} value" lines. */
static void expo_parse(const char *text, struct expo *e)
{
	char family[128] = "", type[32] = "";
	char seen[64][128];
	size_t nseen = 0, i;
	const char *line = text;

	e->n = 0;
	assert_true(strlen(text) > 0);
	assert_int_equal(text[strlen(text) - 1], '\n');
	while (*line) {
		const char *eol = strchr(line, '\n');
		size_t len = (size_t)(eol - line);
		char buf[1200];

		assert_non_null(eol);
		assert_true(len < sizeof(buf));
		memcpy(buf, line, len);
		buf[len] = '\0';
		if (!strncmp(buf, "# HELP ", 7)) {
			char name[128];

			assert_int_equal(sscanf(buf + 7, "%127s", name), 1);
			for (i = 0; i < nseen; i++)
				if (!strcmp(seen[i], name))
					fail_msg("family %s appears twice", name);
			assert_true(nseen < 64);
			snprintf(seen[nseen++], sizeof(seen[0]), "%s", name);
			snprintf(family, sizeof(family), "%s", name);
			type[0] = '\0';
		} else if (!strncmp(buf, "# TYPE ", 7)) {
			char name[128];

			assert_int_equal(sscanf(buf + 7, "%127s %31s", name, type), 2);
			assert_string_equal(name, family);
			assert_true(!strcmp(type, "counter") || !strcmp(type, "gauge") || !strcmp(type, "histogram"));
		} else {
			char *sp = strrchr(buf, ' '), *brace = strchr(buf, '{'), *end;
			size_t nlen;

			assert_non_null(sp);
			nlen = brace && brace < sp ? (size_t)(brace - buf) : (size_t)(sp - buf);
			/* the sample belongs to the family whose TYPE came last */
			if (!strcmp(type, "histogram"))
				assert_true(nlen == strlen(family) + 7 || nlen == strlen(family) + 4 ||
					    nlen == strlen(family) + 6);
			else
				assert_int_equal(nlen, strlen(family));
			assert_memory_equal(buf, family, strlen(family));
			if (!strcmp(type, "histogram"))
				assert_true(ends_with(buf, nlen, "_bucket") || ends_with(buf, nlen, "_sum") ||
					    ends_with(buf, nlen, "_count"));
			if (brace && brace < sp)
				assert_int_equal(sp[-1], '}');
			assert_true(e->n < MAX_SAMPLES);
			*sp = '\0';
			snprintf(e->s[e->n].series, sizeof(e->s[0].series), "%s", buf);
			e->s[e->n].value = strtod(sp + 1, &end);
			assert_true(end != sp + 1 && *end == '\0');
			e->n++;
		}
		line = eol + 1;
	}
}

/* Value of the one series whose text contains all of the given pieces
 * (NULL-terminated); -1 when there is none, fails when several match. */
static double expo_find(const struct expo *e, ...)
{
	double v = -1;
	size_t i, hits = 0;

	for (i = 0; i < e->n; i++) {
		va_list ap;
		const char *piece;
		int ok = 1;

		va_start(ap, e);
		while ((piece = va_arg(ap, const char *)))
			if (!strstr(e->s[i].series, piece))
				ok = 0;
		va_end(ap);
		if (ok) {
			v = e->s[i].value;
			hits++;
		}
	}
	if (hits > 1)
		fail_msg("%zu series match", hits);
	return v;
}

static int is_counter_series(const char *series)
{
	const char *brace = strchr(series, '{');
	size_t n = brace ? (size_t)(brace - series) : strlen(series);

	return ends_with(series, n, "_total") || ends_with(series, n, "_bucket") ||
	       ends_with(series, n, "_count") || ends_with(series, n, "_sum");
}

/* Every counter of prev is in cur (a live target's series never vanish)
 * and not smaller. */
static void assert_monotonic(const struct expo *prev, const struct expo *cur)
{
	size_t i, j;

	for (i = 0; i < prev->n; i++) {
		int found = 0;

		if (!is_counter_series(prev->s[i].series))
			continue;
		for (j = 0; j < cur->n; j++)
			if (!strcmp(prev->s[i].series, cur->s[j].series)) {
				found = 1;
				if (cur->s[j].value < prev->s[i].value)
					fail_msg("%s went from %.9g to %.9g", prev->s[i].series, prev->s[i].value,
						 cur->s[j].value);
			}
		if (!found)
			fail_msg("%s disappeared", prev->s[i].series);
	}
}

/* Sum of a family's per-site values of the target (sites and "other"). */
static double family_sum(const struct expo *e, const char *name)
{
	double sum = 0;
	size_t i, n = strlen(name);

	for (i = 0; i < e->n; i++)
		if (!strncmp(e->s[i].series, name, n) && e->s[i].series[n] == '{')
			sum += e->s[i].value;
	return sum;
}

static size_t family_count(const struct expo *e, const char *name)
{
	size_t i, c = 0, n = strlen(name);

	for (i = 0; i < e->n; i++)
		c += !strncmp(e->s[i].series, name, n) && e->s[i].series[n] == '{';
	return c;
}

/* ------------------------------------------------------------------ */
/* escaping and numbers                                                */

static void test_escape(void **state)
{
	char *s;

	(void)state;
	s = escaped("plain/path.py");
	assert_string_equal(s, "plain/path.py");
	free(s);
	s = escaped("a\\b\"c\nd");
	assert_string_equal(s, "a\\\\b\\\"c\\nd");
	free(s);
	s = escaped("\\\\\n\n\"");
	assert_string_equal(s, "\\\\\\\\\\n\\n\\\"");
	free(s);
	/* tabs and other text stay; valid UTF-8 stays */
	s = escaped("tab\there caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x8d");
	assert_string_equal(s, "tab\there caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x8d");
	free(s);
	/* invalid UTF-8: stray continuation, overlong, truncated, surrogate */
	s = escaped("a\x80z \xc0\xaf \xe2\x82 \xed\xa0\x80 \xff");
	assert_string_equal(s, "a?z ?? ?? ??? ?");
	free(s);
	s = escaped(NULL);
	assert_string_equal(s, "");
	free(s);
}

static void test_seconds(void **state)
{
	static const struct { uint64_t ns; const char *text; } cases[] = {
		{ 0, "0" }, { 1, "0.000000001" }, { 1500000, "0.0015" }, { 2000000000ULL, "2" },
		{ 2000000001ULL, "2.000000001" }, { 123456789012ULL, "123.456789012" },
		{ 100000000ULL, "0.1" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct prom_buf b;

		prom_buf_init(&b);
		prom_buf_seconds(&b, cases[i].ns);
		assert_string_equal(b.p, cases[i].text);
		prom_buf_free(&b);
	}
}

static void test_cgroup_label(void **state)
{
	static const struct { const char *text, *label; } cases[] = {
		{ "0::/system.slice/app.service\n", "app.service" },
		{ "0::/system.slice/app.service", "app.service" },
		{ "0::/\n", "" },
		{ "", "" },
		{ "0::/kubepods.slice/kubepods-burstable.slice/cri-containerd-ab12.scope/\n",
		  "cri-containerd-ab12.scope" },
		/* hybrid: v2 line wins */
		{ "12:memory:/x\n1:name=systemd:/system.slice/v1.service\n0::/system.slice/v2.service\n",
		  "v2.service" },
		/* v1 only: the systemd hierarchy */
		{ "4:memory:/docker/abc\n1:name=systemd:/docker/abc\n", "abc" },
		{ "4:memory:/docker/abc\n", "" },
		{ "garbage without colons\n", "" },
	};
	char out[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		prom_cgroup_label(cases[i].text, out, sizeof(out));
		assert_string_equal(out, cases[i].label);
	}
	prom_cgroup_label("0::/a/very-long-unit-name.service", out, 8);
	assert_string_equal(out, "very-lo");
}

static void test_buf_growth(void **state)
{
	struct prom_buf b;
	int i;

	(void)state;
	prom_buf_init(&b);
	for (i = 0; i < 10000; i++)
		prom_buf_printf(&b, "line %d %s\n", i, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
	assert_false(b.failed);
	assert_int_equal(strlen(b.p), b.len);
	assert_non_null(strstr(b.p, "line 9999 x"));
	prom_buf_reset(&b);
	assert_int_equal(b.len, 0);
	prom_buf_free(&b);
	prom_buf_free(NULL);
	prom_target_free(NULL);
}

/* ------------------------------------------------------------------ */
/* histogram                                                           */

static uint64_t sweep_next(uint64_t us)
{
	return us < 100000 ? us + 1 : us + us / 512;
}

static void test_bucket_end_matches_kernel(void **state)
{
	uint64_t us;

	(void)state;
	for (us = 0; us < (1ULL << 33); us = sweep_next(us)) {
		uint32_t b = ls_hist_bucket(us);

		assert_true(us < prom_hist_bucket_end_us(b));
		if (b > 0)
			assert_true(us >= prom_hist_bucket_end_us(b - 1));
	}
}

static void test_collapse_single_values(void **state)
{
	uint64_t us;

	(void)state;
	for (us = 0; us < 20000000ULL; us = sweep_next(us)) {
		uint32_t hist[LS_HIST_BUCKETS] = { 0 };
		uint64_t out[PROM_LAG_NBOUNDS + 1];
		int i, first = -1;

		hist[ls_hist_bucket(us)] = 1;
		prom_hist_collapse(hist, LS_HIST_BUCKETS, out);
		assert_int_equal(out[PROM_LAG_NBOUNDS], 1);
		for (i = 0; i < PROM_LAG_NBOUNDS; i++) {
			assert_true(out[i] <= 1);
			if (out[i] && first < 0)
				first = i;
			/* never claims the iteration was shorter than it was */
			if (out[i])
				assert_true(us <= prom_lag_bound_us[i]);
			if (i > 0)
				assert_true(out[i] >= out[i - 1]);
		}
		/* and is counted at the first bound past its kernel bucket */
		if (first > 0)
			assert_true(prom_lag_bound_us[first - 1] < prom_hist_bucket_end_us(ls_hist_bucket(us)));
	}
}

static void test_collapse_monotonic_inf_is_count(void **state)
{
	uint32_t hist[LS_HIST_BUCKETS];
	uint64_t out[PROM_LAG_NBOUNDS + 1], total;
	int round, i, b;

	(void)state;
	srand(42);
	for (round = 0; round < 200; round++) {
		for (b = 0; b < LS_HIST_BUCKETS; b++)
			hist[b] = rand() % 4 == 0 ? (uint32_t)rand() % 100000 : 0;
		if (round % 2)
			hist[LS_HIST_BUCKETS - 1] = 7;
		total = 0;
		for (b = 0; b < LS_HIST_BUCKETS; b++)
			total += hist[b];
		prom_hist_collapse(hist, LS_HIST_BUCKETS, out);
		for (i = 1; i <= PROM_LAG_NBOUNDS; i++)
			assert_true(out[i] >= out[i - 1]);
		assert_int_equal(out[PROM_LAG_NBOUNDS], total);
	}
	/* the clamped last kernel bucket is only below +Inf */
	memset(hist, 0, sizeof(hist));
	hist[LS_HIST_BUCKETS - 1] = 3;
	prom_hist_collapse(hist, LS_HIST_BUCKETS, out);
	assert_int_equal(out[PROM_LAG_NBOUNDS - 1], 0);
	assert_int_equal(out[PROM_LAG_NBOUNDS], 3);
}

/* Renders a loop fed from kernel statistics and checks the histogram. */
static void test_render_histogram(void **state)
{
	struct model *m = new_model();
	struct prom_target *t = new_target(10);
	struct ls_loop_stats st;
	struct expo *e = malloc(sizeof(*e));
	char *text, le[64];
	double prev = -1, count;
	int i;

	(void)state;
	assert_non_null(e);
	memset(&st, 0, sizeof(st));
	st.epfd = 3;
	st.hist[ls_hist_bucket(20)] = 900;      /* 20 us */
	st.hist[ls_hist_bucket(300)] = 90;      /* 0.3 ms */
	st.hist[ls_hist_bucket(150000)] = 9;    /* 150 ms */
	st.hist[ls_hist_bucket(3000000)] = 1;   /* 3 s */
	st.iterations = 1000;
	st.busy_ns = 4000000000ULL;
	st.max_ns = 3000000000ULL;
	st.stalls = 10;
	model_loop_update(m, TID, &st);
	assert_int_equal(prom_target_update(t, m, 77), 0);
	text = render(&t, 1);
	expo_parse(text, e);
	for (i = 0; i < PROM_LAG_NBOUNDS; i++) {
		double v;

		snprintf(le, sizeof(le), "le=\"%s\"", prom_lag_le[i]);
		v = expo_find(e, "loopspy_loop_lag_seconds_bucket{", le, NULL);
		assert_true(v >= prev);
		prev = v;
	}
	count = expo_find(e, "loopspy_loop_lag_seconds_count{", NULL);
	assert_true(count == 1000);
	assert_true(expo_find(e, "loopspy_loop_lag_seconds_bucket{", "le=\"+Inf\"", NULL) == count);
	assert_true(expo_find(e, "loopspy_loop_lag_seconds_bucket{", "le=\"2.5e-05\"", NULL) == 900);
	assert_true(expo_find(e, "loopspy_loop_lag_seconds_bucket{", "le=\"0.1\"", NULL) == 990);
	assert_true(expo_find(e, "loopspy_loop_lag_seconds_bucket{", "le=\"0.25\"", NULL) == 999);
	assert_true(expo_find(e, "loopspy_loop_lag_seconds_bucket{", "le=\"5\"", NULL) == 1000);
	assert_true(expo_find(e, "loopspy_loop_lag_seconds_sum{", NULL) == 4.0);
	assert_true(expo_find(e, "loopspy_loop_busy_seconds_total{", NULL) == 4.0);
	assert_true(expo_find(e, "loopspy_loop_stalls_total{", NULL) == 10);
	assert_true(expo_find(e, "loopspy_loop_lag_max_seconds{", NULL) == 3.0);
	assert_true(expo_find(e, "loopspy_target_events_total{", NULL) == 77);
	assert_non_null(strstr(text, "loopspy_loop_lag_seconds_count{pid=\"4242\",comm=\"python3\","
				     "cgroup=\"app.service\",thread=\"MainThread\",tid=\"4242\"} 1000\n"));
	assert_non_null(strstr(text, "# TYPE loopspy_loop_lag_seconds histogram\n"));
	assert_non_null(strstr(text, "loopspy_target_info{pid=\"4242\",comm=\"python3\",cgroup=\"app.service\","
				     "command=\"/usr/bin/python3 app.py\",runtime=\"CPython 3.11.2\"} 1\n"));
	free(text);
	free(e);
	prom_target_free(t);
	model_free(m);
}

/* The kernel's loop entry is recreated (LRU): exported counts carry on. */
static void test_loop_reset_stays_monotonic(void **state)
{
	struct model *m = new_model();
	struct prom_target *t = new_target(10);
	struct ls_loop_stats st;
	struct expo *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
	char *text;

	(void)state;
	assert_non_null(a);
	assert_non_null(b);
	memset(&st, 0, sizeof(st));
	st.hist[ls_hist_bucket(50)] = 500;
	st.busy_ns = 25 * MS;
	st.stalls = 2;
	model_loop_update(m, TID, &st);
	prom_target_update(t, m, 0);
	text = render(&t, 1);
	expo_parse(text, a);
	free(text);
	memset(&st, 0, sizeof(st));
	st.hist[ls_hist_bucket(5000)] = 3;
	st.busy_ns = 15 * MS;
	model_loop_update(m, TID, &st);
	prom_target_update(t, m, 0);
	text = render(&t, 1);
	expo_parse(text, b);
	free(text);
	assert_monotonic(a, b);
	assert_true(expo_find(b, "loopspy_loop_lag_seconds_count{", NULL) == 503);
	assert_true(expo_find(b, "loopspy_loop_lag_seconds_bucket{", "le=\"+Inf\"", NULL) == 503);
	assert_true(expo_find(b, "loopspy_loop_stalls_total{", NULL) == 2);
	assert_true(expo_find(b, "loopspy_loop_busy_seconds_total{", NULL) == 0.04);
	free(a);
	free(b);
	prom_target_free(t);
	model_free(m);
}

/* ------------------------------------------------------------------ */
/* finding sites                                                       */

static void test_site_labels(void **state)
{
	struct model *m = new_model();
	struct prom_target *t = new_target(10);
	char *text;

	(void)state;
	block(m, "refresh_cache", 200);
	block(m, "refresh_cache", 200);
	prom_target_update(t, m, 0);
	text = render(&t, 1);
	assert_non_null(strstr(text,
		"loopspy_findings_total{pid=\"4242\",comm=\"python3\",cgroup=\"app.service\",thread=\"MainThread\","
		"tid=\"4242\",kind=\"blocking_syscall\",syscall=\"clock_nanosleep\",function=\"refresh_cache\","
		"file=\"/srv/app.py\",line=\"10\"} 2\n"));
	assert_non_null(strstr(text,
		"loopspy_blocked_seconds_total{pid=\"4242\",comm=\"python3\",cgroup=\"app.service\",thread=\"MainThread\","
		"tid=\"4242\",kind=\"blocking_syscall\",syscall=\"clock_nanosleep\",function=\"refresh_cache\","
		"file=\"/srv/app.py\",line=\"10\"} 0.4\n"));
	/* nothing folded: no "other" series */
	assert_null(strstr(text, "function=\"other\""));
	free(text);
	prom_target_free(t);
	model_free(m);
}

/* A stall group keeps its series when its innermost line moves. */
static void test_stall_labels_frozen(void **state)
{
	struct model *m = new_model();
	struct prom_target *t = new_target(10);
	struct expo *e = malloc(sizeof(*e));
	char *text;

	(void)state;
	assert_non_null(e);
	stall(m, "checksum", 19, 300);
	prom_target_update(t, m, 0);
	stall(m, "checksum", 20, 300);
	assert_int_equal(model_nfindings(m), 1);
	assert_int_equal(model_finding_at(m, 0)->stack.f[0].line, 20);
	prom_target_update(t, m, 0);
	text = render(&t, 1);
	expo_parse(text, e);
	assert_true(expo_find(e, "loopspy_findings_total{", "kind=\"stall\"", "function=\"checksum\"",
			      "line=\"19\"", "syscall=\"\"", NULL) == 2);
	assert_true(expo_find(e, "loopspy_blocked_seconds_total{", "kind=\"stall\"", NULL) == 0.6);
	assert_null(strstr(text, "line=\"20\""));
	free(text);
	free(e);
	prom_target_free(t);
	model_free(m);
}

static void test_top_n_folding(void **state)
{
	struct model *m = new_model();
	struct prom_target *t = new_target(2);
	struct expo *e = malloc(sizeof(*e));
	char *text;

	(void)state;
	assert_non_null(e);
	block(m, "big", 500);
	block(m, "second", 300);
	block(m, "small_a", 20);
	block(m, "small_b", 10);
	block(m, "small_b", 10);
	prom_target_update(t, m, 0);
	assert_int_equal(prom_target_nsites(t), 2);
	text = render(&t, 1);
	expo_parse(text, e);
	assert_true(expo_find(e, "loopspy_findings_total{", "function=\"big\"", NULL) == 1);
	assert_true(expo_find(e, "loopspy_findings_total{", "function=\"second\"", NULL) == 1);
	assert_true(expo_find(e, "loopspy_findings_total{", "function=\"small_a\"", NULL) == -1);
	assert_true(expo_find(e, "loopspy_findings_total{", "function=\"small_b\"", NULL) == -1);
	/* the rest: one series per kind, no thread, file or line */
	assert_true(expo_find(e, "loopspy_findings_total{", "function=\"other\"", NULL) == 3);
	assert_true(expo_find(e, "loopspy_blocked_seconds_total{", "function=\"other\"", NULL) == 0.04);
	assert_non_null(strstr(text, "thread=\"\",tid=\"\",kind=\"blocking_syscall\",syscall=\"\","
				     "function=\"other\",file=\"\",line=\"\"} 3\n"));
	assert_true(family_sum(e, "loopspy_findings_total") == 5);
	assert_int_equal(family_count(e, "loopspy_findings_total"), 3);
	free(text);
	free(e);
	prom_target_free(t);
	model_free(m);
}

/* Membership of the top N changes over time: every counter keeps growing,
 * sites once exported stay, the sum stays the true total, and no more
 * than 2N sites ever get their own series. */
static void test_counters_monotonic_when_top_n_changes(void **state)
{
	struct model *m = new_model();
	struct prom_target *t = new_target(1);
	struct expo *prev = malloc(sizeof(*prev)), *cur = malloc(sizeof(*cur)), *tmp;
	char *text;
	double true_count = 0, true_ms = 0;
	int step;

	(void)state;
	assert_non_null(prev);
	assert_non_null(cur);
	/* A leads, B is folded */
	block(m, "site_a", 100);
	block(m, "site_b", 10);
	true_count = 2, true_ms = 110;
	prom_target_update(t, m, 0);
	text = render(&t, 1);
	expo_parse(text, prev);
	free(text);
	assert_true(expo_find(prev, "loopspy_findings_total{", "function=\"site_a\"", NULL) == 1);
	assert_true(expo_find(prev, "loopspy_findings_total{", "function=\"other\"", NULL) == 1);
	for (step = 0; step < 12; step++) {
		/* B overtakes A (steps 0-5), then C overtakes both (6-11) */
		if (step < 6) {
			block(m, "site_b", 50);
			true_ms += 50;
		} else {
			block(m, "site_c", 200);
			true_ms += 200;
		}
		true_count++;
		prom_target_update(t, m, 0);
		text = render(&t, 1);
		expo_parse(text, cur);
		free(text);
		assert_monotonic(prev, cur);
		assert_true(family_sum(cur, "loopspy_findings_total") == true_count);
		assert_true(family_sum(cur, "loopspy_blocked_seconds_total") > true_ms / 1000 - 1e-9);
		assert_true(family_sum(cur, "loopspy_blocked_seconds_total") < true_ms / 1000 + 1e-9);
		assert_true(prom_target_nsites(t) <= 2);
		tmp = prev, prev = cur, cur = tmp;
	}
	/* B was promoted (it overtook A): it counts from its promotion on, the
	 * one call it had before stays in "other" */
	assert_int_equal(prom_target_nsites(t), 2);
	assert_true(expo_find(prev, "loopspy_findings_total{", "function=\"site_a\"", NULL) == 1);
	assert_true(expo_find(prev, "loopspy_findings_total{", "function=\"site_b\"", NULL) >= 5);
	assert_true(expo_find(prev, "loopspy_findings_total{", "function=\"site_b\"", NULL) <= 6);
	/* C leads now but the cap (2N = 2) is reached: it is in "other" */
	assert_true(expo_find(prev, "loopspy_findings_total{", "function=\"site_c\"", NULL) == -1);
	assert_true(expo_find(prev, "loopspy_findings_total{", "function=\"other\"", NULL) >= 6);
	free(prev);
	free(cur);
	prom_target_free(t);
	model_free(m);
}

/* Several targets: families are not repeated, each has its own series. */
static void test_render_two_targets(void **state)
{
	struct model *m1 = new_model(), *m2 = new_model();
	struct prom_target_info info = {
		.pid = 7, .comm = "we\"ird\\comm", .cgroup = "", .command = "python3 -c 'print(\"\\n\")'\nnext",
		.runtime = "not CPython",
	};
	struct prom_target *ts[2];
	struct expo *e = malloc(sizeof(*e));
	char *text;

	(void)state;
	assert_non_null(e);
	ts[0] = new_target(10);
	ts[1] = prom_target_new(&info, 10);
	assert_non_null(ts[1]);
	block(m1, "one", 5);
	block(m2, "two", 5);
	prom_target_update(ts[0], m1, 0);
	prom_target_update(ts[1], m2, 0);
	text = render(ts, 2);
	expo_parse(text, e);
	assert_true(expo_find(e, "loopspy_findings_total{pid=\"4242\"", NULL) == 1);
	assert_true(expo_find(e, "loopspy_findings_total{pid=\"7\"", NULL) == 1);
	assert_non_null(strstr(text, "comm=\"we\\\"ird\\\\comm\""));
	assert_non_null(strstr(text, "command=\"python3 -c 'print(\\\"\\\\n\\\")'\\nnext\""));
	assert_true(expo_find(e, "loopspy_targets_attached", NULL) == 2);
	free(text);
	free(e);
	prom_target_free(ts[0]);
	prom_target_free(ts[1]);
	model_free(m1);
	model_free(m2);
}

static void test_render_empty(void **state)
{
	struct expo *e = malloc(sizeof(*e));
	char *text;

	(void)state;
	assert_non_null(e);
	text = render(NULL, 0);
	expo_parse(text, e);
	assert_true(expo_find(e, "loopspy_targets_attached", NULL) == 0);
	assert_true(expo_find(e, "loopspy_build_info{version=\"0.1.0\"}", NULL) == 1);
	assert_non_null(strstr(text, "# TYPE loopspy_findings_total counter\n"));
	free(text);
	free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_seconds),
		cmocka_unit_test(test_cgroup_label),
		cmocka_unit_test(test_buf_growth),
		cmocka_unit_test(test_bucket_end_matches_kernel),
		cmocka_unit_test(test_collapse_single_values),
		cmocka_unit_test(test_collapse_monotonic_inf_is_count),
		cmocka_unit_test(test_render_histogram),
		cmocka_unit_test(test_loop_reset_stays_monotonic),
		cmocka_unit_test(test_site_labels),
		cmocka_unit_test(test_stall_labels_frozen),
		cmocka_unit_test(test_top_n_folding),
		cmocka_unit_test(test_counters_monotonic_when_top_n_changes),
		cmocka_unit_test(test_render_two_targets),
		cmocka_unit_test(test_render_empty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
