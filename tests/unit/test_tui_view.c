/* Tests for tui/view.c, the pure part of `loopspy top`: formatting, column
 * layout, sparklines, sorting and filtering, the loop history, key actions
 * and the layout of whole screens at many sizes — no terminal involved. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model.h"
#include "view.h"

#define US 1000ULL
#define MS 1000000ULL
#define SEC 1000000000ULL
#define TID 4242
#define NR_FSYNC 74
#define NR_FUTEX 202
#define NR_NANOSLEEP 230
#define T0 (1000 * SEC)          /* a CLOCK_MONOTONIC time well above zero */

/* ------------------------------------------------------------------ */
/* helpers                                                             */

static struct model *model_make(void)
{
	struct model_config cfg = { .stall_ns = 100 * MS, .block_ns = 1 * MS, .t0_ns = T0 };
	struct model *m = model_new(&cfg);

	assert_non_null(m);
	return m;
}

static struct mstack stack_make(struct model *m, const char *leaf, const char *file, int line)
{
	struct mstack s;

	memset(&s, 0, sizeof(s));
	s.n = 2;
	s.f[0].function = model_intern(m, leaf);
	s.f[0].file = model_intern(m, file);
	s.f[0].line = line;
	s.f[1].function = model_intern(m, "main");
	s.f[1].file = model_intern(m, "/srv/app/main.py");
	s.f[1].line = 61;
	return s;
}

/* Kernel loop statistics: `iters` iterations of `each` ns each, plus the
 * given long ones; iter_start of a running iteration (0: idle). */
static void loop_stats(struct model *m, uint32_t tid, uint64_t iters, uint64_t each,
		       const uint64_t *longs, int nlongs, uint64_t iter_start, uint64_t first_ts)
{
	struct ls_loop_stats st;
	int i;

	memset(&st, 0, sizeof(st));
	st.epfd = 3;
	st.iterations = iters + (uint64_t)nlongs;
	st.busy_ns = iters * each;
	st.max_ns = each;
	st.hist[ls_hist_bucket(each / 1000)] = (uint32_t)iters;
	for (i = 0; i < nlongs; i++) {
		st.hist[ls_hist_bucket(longs[i] / 1000)]++;
		st.busy_ns += longs[i];
		if (longs[i] > st.max_ns)
			st.max_ns = longs[i];
		st.stalls += longs[i] >= 100 * MS;
	}
	st.iter_start = iter_start;
	st.first_ts = first_ts;
	model_loop_update(m, tid, &st);
	snprintf(model_loop(m, tid, 0)->name, sizeof(model_loop(m, tid, 0)->name), "%s",
		 tid == TID ? "MainThread" : "worker-loop");
}

static void sleep_add(struct model *m, uint32_t tid, int nr, uint64_t iter_start, uint64_t start,
		      uint64_t blocked, const struct mstack *st)
{
	struct model_sleep s;

	memset(&s, 0, sizeof(s));
	s.tid = tid;
	s.start = start;
	s.ts = start + blocked;
	s.blocked_ns = blocked;
	s.iter_start = iter_start;
	s.nr = nr;
	s.stack = st;
	model_add_sleep(m, &s);
}

static void sample_add(struct model *m, uint32_t tid, uint64_t iter_start, uint64_t ts, const struct mstack *st)
{
	struct model_sample s;

	memset(&s, 0, sizeof(s));
	s.tid = tid;
	s.ts = ts;
	s.iter_start = iter_start;
	s.nr = -1;
	s.stack = st;
	model_add_sample(m, &s);
}

static struct view_target target_make(void)
{
	struct view_target t;

	memset(&t, 0, sizeof(t));
	t.pid = TID;
	snprintf(t.command, sizeof(t.command), "/usr/bin/python3 app.py --port\x01 8080");
	snprintf(t.runtime, sizeof(t.runtime), "CPython 3.11.2");
	t.uptime_ns = 42 * SEC;
	t.events = 1000;
	t.exit_status = -1;
	return t;
}

/* A model with one loop, three blocking findings and one CPU stall:
 *   time.sleep 3 x 200 ms in refresh_cache (cache.py:15)
 *   fsync 40 x 2 ms in save_journal (journal.py:8)
 *   a 400 ms CPU stall in checksum (digest.py:21)
 *   a 50 ms read in load_config (config.py:3), the most recent */
static struct model *model_scenario(void)
{
	struct model *m = model_make();
	struct mstack sl = stack_make(m, "refresh_cache", "/srv/app/cache.py", 15);
	struct mstack fs = stack_make(m, "save_journal", "/srv/app/journal.py", 8);
	struct mstack cpu = stack_make(m, "checksum", "/srv/app/digest.py", 21);
	struct mstack rd = stack_make(m, "load_config", "/srv/app/config.py", 3);
	uint64_t longs[] = { 200 * MS, 200 * MS, 200 * MS, 400 * MS };
	uint64_t t = T0 + SEC;
	int i;

	loop_stats(m, TID, 1000, 50 * US, longs, 4, 0, T0);
	for (i = 0; i < 3; i++, t += SEC)
		sleep_add(m, TID, NR_NANOSLEEP, t, t + MS, 200 * MS, &sl);
	for (i = 0; i < 40; i++, t += 10 * MS)
		sleep_add(m, TID, NR_FSYNC, t, t + MS, 2 * MS, &fs);
	for (i = 0; i < 20; i++)
		sample_add(m, TID, t, t + 20 * MS + (uint64_t)i * 10 * MS, &cpu);
	model_add_stall(m, TID, t, t + 400 * MS, 0, 0);
	t += SEC;
	sleep_add(m, TID, 0 /* read */, t, t + MS, 50 * MS, &rd);
	return m;
}

static int screen_has(const struct view_screen *scr, const char *needle)
{
	int r;

	for (r = 0; r < scr->rows; r++)
		if (strstr(scr->line[r].text, needle))
			return 1;
	return 0;
}

static int screen_row_of(const struct view_screen *scr, const char *needle)
{
	int r;

	for (r = 0; r < scr->rows; r++)
		if (strstr(scr->line[r].text, needle))
			return r;
	return -1;
}

static void screen_print(const struct view_screen *scr)
{
	int r;

	for (r = 0; r < scr->rows; r++)
		fprintf(stderr, "|%s|\n", scr->line[r].text);
}

/* Every line fits the width; spans stay inside their text. */
static void screen_check(const struct view_screen *scr)
{
	int r, i;

	for (r = 0; r < scr->rows; r++) {
		const struct view_line *l = &scr->line[r];

		if (view_width(l->text) > scr->cols) {
			screen_print(scr);
			fail_msg("row %d is %d columns wide, screen %d", r, view_width(l->text), scr->cols);
		}
		for (i = 0; i < l->nspans; i++) {
			assert_true(l->spans[i].start >= 0);
			assert_true(l->spans[i].start < l->spans[i].end);
			assert_true((size_t)l->spans[i].end <= strlen(l->text));
		}
	}
}

struct fixture {
	struct model *m;
	struct view_history h;
	struct view_snap snap;
	struct view_state st;
	struct view_screen scr;
	struct view_target t;
	uint64_t now;
};

static int fixture_setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	fx->m = model_scenario();
	view_history_init(&fx->h);
	view_snap_init(&fx->snap);
	view_state_init(&fx->st, 0);
	fx->t = target_make();
	fx->now = T0 + 10 * SEC;
	assert_int_equal(view_snap_take(&fx->snap, &fx->h, fx->m, &fx->t, fx->now), 0);
	*state = fx;
	return 0;
}

static int fixture_teardown(void **state)
{
	struct fixture *fx = *state;

	view_screen_free(&fx->scr);
	view_snap_free(&fx->snap);
	view_history_free(&fx->h);
	model_free(fx->m);
	free(fx);
	return 0;
}

static void render_at(struct fixture *fx, int rows, int cols)
{
	assert_int_equal(view_screen_resize(&fx->scr, rows, cols), 0);
	view_render(&fx->st, &fx->snap, &fx->scr, fx->now);
	screen_check(&fx->scr);
}

/* ------------------------------------------------------------------ */
/* formatting                                                          */

static void test_dur(void **state)
{
	static const struct { uint64_t ns; const char *want; } cases[] = {
		{ 0, "0.00 ms" },
		{ 16 * US, "0.02 ms" },
		{ 384 * US, "0.38 ms" },
		{ 1 * MS, "1 ms" },
		{ 2500 * US, "2.50 ms" },
		{ 15250 * US, "15.2 ms" },
		{ 157 * MS + 400 * US, "157 ms" },
		{ 999999999, "999 ms" },
		{ 1700 * MS, "1.70 s" },
		{ 12345 * MS, "12.3 s" },
		{ 125 * SEC, "2m05s" },
		{ 7325 * SEC, "2h02m" },
	};
	char buf[32];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		view_dur(buf, sizeof(buf), cases[i].ns);
		assert_string_equal(buf, cases[i].want);
	}
}

static void test_age_count_rate_uptime(void **state)
{
	char buf[32];

	(void)state;
	view_age(buf, sizeof(buf), 300 * MS);
	assert_string_equal(buf, "now");
	view_age(buf, sizeof(buf), 12 * SEC);
	assert_string_equal(buf, "12s ago");
	view_age(buf, sizeof(buf), 185 * SEC);
	assert_string_equal(buf, "3m ago");
	view_age(buf, sizeof(buf), 7300 * SEC);
	assert_string_equal(buf, "2h ago");
	view_count(buf, sizeof(buf), 99999);
	assert_string_equal(buf, "99999");
	view_count(buf, sizeof(buf), 123456);
	assert_string_equal(buf, "123k");
	view_count(buf, sizeof(buf), 45000000);
	assert_string_equal(buf, "45M");
	view_rate(buf, sizeof(buf), 0.5);
	assert_string_equal(buf, "0.5");
	view_rate(buf, sizeof(buf), 231.4);
	assert_string_equal(buf, "231");
	view_rate(buf, sizeof(buf), 12345);
	assert_string_equal(buf, "12.3k");
	view_rate(buf, sizeof(buf), -3);
	assert_string_equal(buf, "0.0");
	view_uptime(buf, sizeof(buf), 42 * SEC);
	assert_string_equal(buf, "0:42");
	view_uptime(buf, sizeof(buf), 3723 * SEC);
	assert_string_equal(buf, "1:02:03");
}

static void test_width_and_fit(void **state)
{
	char buf[64];

	(void)state;
	assert_int_equal(view_width(""), 0);
	assert_int_equal(view_width("abc"), 3);
	assert_int_equal(view_width("\u2581\u2588x"), 3);
	assert_int_equal(view_width(NULL), 0);
	assert_int_equal(view_fit(buf, sizeof(buf), "checksum", 20, 0), 8);
	assert_string_equal(buf, "checksum");
	assert_int_equal(view_fit(buf, sizeof(buf), "checksum", 8, 0), 8);
	assert_string_equal(buf, "checksum");
	assert_int_equal(view_fit(buf, sizeof(buf), "checksum", 6, 0), 6);
	assert_string_equal(buf, "chec..");
	assert_int_equal(view_fit(buf, sizeof(buf), "/srv/app/digest.py:21", 12, 1), 12);
	assert_string_equal(buf, "..gest.py:21");
	assert_int_equal(view_fit(buf, sizeof(buf), "checksum", 2, 0), 2);
	assert_string_equal(buf, "ch");
	assert_int_equal(view_fit(buf, sizeof(buf), "checksum", 0, 0), 0);
	assert_string_equal(buf, "");
	assert_int_equal(view_fit(buf, sizeof(buf), "\u2581\u2582\u2583\u2584", 3, 0), 3);
	assert_string_equal(buf, "\u2581..");
	/* a small buffer is never overrun */
	assert_true(view_fit(buf, 4, "checksum", 20, 0) <= 3);
	assert_true(strlen(buf) < 4);
}

static void test_ascii_copy(void **state)
{
	char buf[16];

	(void)state;
	view_ascii_copy(buf, sizeof(buf), "py\tthon\xc3\xa9\x01!");
	assert_string_equal(buf, "py?thon??" "?!");
	view_ascii_copy(buf, 4, "abcdef");
	assert_string_equal(buf, "abc");
	view_ascii_copy(buf, sizeof(buf), NULL);
	assert_string_equal(buf, "");
}

static void test_sparkline(void **state)
{
	uint64_t vals[] = { VIEW_NODATA, 10 * US, 500 * US, 5 * MS, 50 * MS, 100 * MS, 3 * SEC };
	char buf[256];
	int prev = 0, i;

	(void)state;
	assert_int_equal(view_spark_level(VIEW_NODATA, 100 * MS), 0);
	assert_int_equal(view_spark_level(0, 100 * MS), 1);
	assert_int_equal(view_spark_level(99 * MS, 100 * MS), 7);
	assert_int_equal(view_spark_level(100 * MS, 100 * MS), 8);
	for (i = 1; i < 7; i++) {
		int lv = view_spark_level(vals[i], 100 * MS);

		assert_true(lv >= prev);
		prev = lv;
	}
	assert_int_equal(view_sparkline(buf, sizeof(buf), vals, 7, 7, 100 * MS, 1), 7);
	assert_string_equal(buf, " .-+#@@");
	/* right-aligned, the newest values kept */
	assert_int_equal(view_sparkline(buf, sizeof(buf), vals, 7, 10, 100 * MS, 1), 10);
	assert_string_equal(buf, "    .-+#@@");
	assert_int_equal(view_sparkline(buf, sizeof(buf), vals, 7, 3, 100 * MS, 1), 3);
	assert_string_equal(buf, "#@@");
	assert_int_equal(view_sparkline(buf, sizeof(buf), vals, 7, 7, 100 * MS, 0), 7);
	assert_int_equal(view_width(buf), 7);
	assert_string_equal(buf + strlen(buf) - 3, "\u2588");
	assert_int_equal(view_sparkline(buf, sizeof(buf), vals, 0, 0, 100 * MS, 0), 0);
	assert_string_equal(buf, "");
}

static void test_columns(void **state)
{
	static const struct view_colspec specs[] = {
		{ "A", 10, 0, 0 }, { "B", 8, 2, 1 }, { "C", 6, 1, 1 }, { "FLEX", 0, 0, 0 },
	};
	int w[4];

	(void)state;
	/* everything fits */
	assert_int_equal(view_columns(specs, 4, 100, 10, w), 100);
	assert_int_equal(w[0], 10);
	assert_int_equal(w[1], 8);
	assert_int_equal(w[2], 6);
	assert_int_equal(w[3], 100 - 11 - 9 - 7);
	/* B (priority 2) goes first */
	assert_int_equal(view_columns(specs, 4, 30, 10, w), 30);
	assert_int_equal(w[0], 10);
	assert_int_equal(w[1], 0);
	assert_int_equal(w[2], 6);
	assert_int_equal(w[3], 30 - 11 - 7);
	/* only the flexible column */
	view_columns(specs, 4, 12, 10, w);
	assert_int_equal(w[0] + w[1] + w[2], 0);
	assert_int_equal(w[3], 12);
	view_columns(specs, 4, 0, 10, w);
	assert_int_equal(w[3], 0);
	/* no flexible column: no trailing separator */
	assert_int_equal(view_columns(specs, 3, 100, 10, w), 10 + 1 + 8 + 1 + 6);
}

static void test_hist_percentile(void **state)
{
	uint32_t hist[LS_HIST_BUCKETS];

	(void)state;
	memset(hist, 0, sizeof(hist));
	assert_int_equal(view_hist_percentile(hist, 50, 0), 0);
	hist[ls_hist_bucket(5)] = 98;          /* 5 us */
	hist[ls_hist_bucket(20000)] = 1;       /* 20 ms */
	hist[ls_hist_bucket(300000)] = 1;      /* 300 ms */
	assert_int_equal(view_hist_percentile(hist, 50, 0), 6 * US);
	/* upper bound of the bucket: within 1/8 above */
	assert_in_range(view_hist_percentile(hist, 99, 0), 20 * MS, 20 * MS + 20 * MS / 8);
	assert_in_range(view_hist_percentile(hist, 100, 0), 300 * MS, 300 * MS + 300 * MS / 8);
	assert_int_equal(view_hist_percentile(hist, 100, 301 * MS), 301 * MS);
}

/* ------------------------------------------------------------------ */
/* snapshot, order, filter, severity                                   */

static const struct finding *by_leaf(const struct view_snap *snap, const char *leaf)
{
	size_t i;

	for (i = 0; i < snap->nfindings; i++)
		if (snap->findings[i].stack.n && !strcmp(snap->findings[i].stack.f[0].function, leaf))
			return &snap->findings[i];
	fail_msg("no finding in %s", leaf);
	return NULL;
}

static void test_order(void **state)
{
	struct fixture *fx = *state;
	const struct finding *order[8];
	size_t n;

	assert_int_equal(fx->snap.nfindings, 4);
	fx->st.sort = VIEW_SORT_TOTAL;
	n = view_order(&fx->snap, &fx->st, order);
	assert_int_equal(n, 4);
	assert_string_equal(order[0]->stack.f[0].function, "refresh_cache"); /* 600 ms */
	assert_string_equal(order[1]->stack.f[0].function, "checksum");      /* 400 ms */
	assert_string_equal(order[2]->stack.f[0].function, "save_journal");  /* 80 ms */
	fx->st.sort = VIEW_SORT_COUNT;
	view_order(&fx->snap, &fx->st, order);
	assert_string_equal(order[0]->stack.f[0].function, "save_journal");  /* x40 */
	fx->st.sort = VIEW_SORT_MAX;
	view_order(&fx->snap, &fx->st, order);
	assert_string_equal(order[0]->stack.f[0].function, "checksum");      /* 400 ms */
	fx->st.sort = VIEW_SORT_RECENT;
	view_order(&fx->snap, &fx->st, order);
	assert_string_equal(order[0]->stack.f[0].function, "load_config");
	assert_string_equal(view_sort_name(VIEW_SORT_RECENT), "recent");
}

static void test_filter(void **state)
{
	struct fixture *fx = *state;
	const struct finding *order[8];

	snprintf(fx->st.filter, sizeof(fx->st.filter), "JOURNAL");
	assert_int_equal(view_order(&fx->snap, &fx->st, order), 1);
	assert_string_equal(order[0]->stack.f[0].function, "save_journal");
	snprintf(fx->st.filter, sizeof(fx->st.filter), "nanosleep");
	assert_int_equal(view_order(&fx->snap, &fx->st, order), 1);
	snprintf(fx->st.filter, sizeof(fx->st.filter), "main.py");     /* a caller's file */
	assert_int_equal(view_order(&fx->snap, &fx->st, order), 4);
	snprintf(fx->st.filter, sizeof(fx->st.filter), "stall");       /* the kind */
	assert_int_equal(view_order(&fx->snap, &fx->st, order), 1);
	snprintf(fx->st.filter, sizeof(fx->st.filter), "nothing-like-this");
	assert_int_equal(view_order(&fx->snap, &fx->st, order), 0);
	assert_null(view_selected(&fx->snap, &fx->st));
	fx->st.filter[0] = '\0';
	assert_int_equal(view_order(&fx->snap, &fx->st, order), 4);
}

static void test_severity(void **state)
{
	struct fixture *fx = *state;

	assert_int_equal(view_severity(by_leaf(&fx->snap, "refresh_cache"), 100 * MS), VS_CRIT);
	assert_int_equal(view_severity(by_leaf(&fx->snap, "load_config"), 100 * MS), VS_WARN);
	assert_int_equal(view_severity(by_leaf(&fx->snap, "save_journal"), 100 * MS), VS_INFO);
}

/* ------------------------------------------------------------------ */
/* loop window and live stall                                          */

static void test_loop_window(void **state)
{
	struct model *m = model_make();
	struct view_history h;
	struct view_snap snap;
	struct view_target t = target_make();
	uint64_t old[] = { 2 * SEC }, now = T0;
	int s;

	(void)state;

	view_history_init(&h);
	view_snap_init(&snap);
	/* an old 2 s stall, then 20 s of 1000 healthy iterations per second */
	loop_stats(m, TID, 0, 50 * US, old, 1, 0, T0);
	for (s = 1; s <= 20; s++) {
		now = T0 + (uint64_t)s * SEC;
		loop_stats(m, TID, (uint64_t)s * 1000, 50 * US, old, 1, 0, T0);
		assert_int_equal(view_snap_take(&snap, &h, m, &t, now), 0);
		if (s == 2)
			assert_in_range(snap.loops[0].max_ns, 2 * SEC, 2 * SEC + SEC / 8);
	}
	assert_int_equal(snap.nloops, 1);
	assert_string_equal(snap.loops[0].name, "MainThread");
	/* the old stall left the 10 s window; the all-time count stays */
	assert_true(snap.loops[0].max_ns < 100 * US);
	assert_in_range(snap.loops[0].p99_ns, 50 * US, 60 * US);
	assert_in_range((uint64_t)snap.loops[0].iter_rate, 990, 1010);
	assert_in_range((uint64_t)(snap.loops[0].busy * 1000), 45, 55);
	assert_int_equal(snap.loops[0].stalls, 1);
	assert_int_equal(snap.loops[0].live_ns, 0);
	assert_true(snap.loops[0].nspark >= 10);
	assert_true(snap.loops[0].spark[snap.loops[0].nspark - 1] < 100 * US);
	/* a reset forgets the stall count and the window */
	view_history_reset(&h);
	now += SEC;
	loop_stats(m, TID, 21000, 50 * US, old, 1, 0, T0);
	assert_int_equal(view_snap_take(&snap, &h, m, &t, now), 0);
	assert_int_equal(snap.loops[0].stalls, 0);
	assert_int_equal(snap.loops[0].max_ns, 0);
	/* a counter going back (a new loop on the thread) counts from zero */
	now += SEC;
	loop_stats(m, TID, 10, 50 * US, NULL, 0, 0, T0);
	assert_int_equal(view_snap_take(&snap, &h, m, &t, now), 0);
	assert_in_range(snap.loops[0].max_ns, 50 * US, 60 * US);
	view_snap_free(&snap);
	view_history_free(&h);
	model_free(m);
}

static void test_live_stall(void **state)
{
	struct model *m = model_make();
	struct mstack cpu = stack_make(m, "crunch_numbers", "/srv/app/long_stall.py", 23);
	struct view_history h;
	struct view_snap snap;
	struct view_state st;
	struct view_screen scr = { 0 };
	struct view_target t = target_make();
	uint64_t start = T0 + 5 * SEC;
	int r;

	(void)state;

	view_history_init(&h);
	view_snap_init(&snap);
	view_state_init(&st, 1);
	loop_stats(m, TID, 100, 50 * US, NULL, 0, start, T0);
	/* 50 ms in: below the threshold, no marker */
	assert_int_equal(view_snap_take(&snap, &h, m, &t, start + 50 * MS), 0);
	assert_int_equal(snap.loops[0].live_ns, 0);
	/* 1.7 s in, nothing sampled yet */
	assert_int_equal(view_snap_take(&snap, &h, m, &t, start + 1700 * MS), 0);
	assert_int_equal(snap.loops[0].live_ns, 1700 * MS);
	assert_null(snap.loops[0].live.function);
	assert_int_equal(view_screen_resize(&scr, 24, 100), 0);
	view_render(&st, &snap, &scr, start + 1700 * MS);
	screen_check(&scr);
	assert_true(screen_has(&scr, "STALLED 1.70 s (no stack yet"));
	/* samples name the line; the marker grows */
	sample_add(m, TID, start, start + 1800 * MS, &cpu);
	assert_int_equal(view_snap_take(&snap, &h, m, &t, start + 2500 * MS), 0);
	view_render(&st, &snap, &scr, start + 2500 * MS);
	screen_check(&scr);
	r = screen_row_of(&scr, "STALLED 2.50 s in crunch_numbers long_stall.py:23");
	if (r < 0) {
		screen_print(&scr);
		fail_msg("no live stall marker");
	}
	assert_int_equal(scr.line[r].style, VS_STALLED);
	assert_true(screen_has(&scr, "2.50 s"));  /* the window's max includes it */
	/* the sparkline's newest column is full */
	assert_non_null(strstr(scr.line[r - 1].text, "@"));
	/* a target that exited has no live stall */
	t.exited = 1;
	assert_int_equal(view_snap_take(&snap, &h, m, &t, start + 9 * SEC), 0);
	assert_int_equal(snap.loops[0].live_ns, 0);
	view_render(&st, &snap, &scr, start + 9 * SEC);
	assert_false(screen_has(&scr, "STALLED"));
	assert_true(screen_has(&scr, "TARGET EXITED"));
	view_screen_free(&scr);
	view_snap_free(&snap);
	view_history_free(&h);
	model_free(m);
}

/* ------------------------------------------------------------------ */
/* keys                                                                */

static const char *selected_leaf(struct fixture *fx)
{
	const struct finding *f = view_selected(&fx->snap, &fx->st);

	return f && f->stack.n ? f->stack.f[0].function : "(none)";
}

static void test_keys_selection(void **state)
{
	struct fixture *fx = *state;

	render_at(fx, 45, 160);
	assert_string_equal(selected_leaf(fx), "refresh_cache");
	assert_int_equal(view_apply(&fx->st, VA_DOWN, &fx->snap), VE_NONE);
	assert_string_equal(selected_leaf(fx), "checksum");
	/* the selection follows its finding across a re-sort */
	view_apply(&fx->st, VA_SORT, &fx->snap);
	assert_int_equal(fx->st.sort, VIEW_SORT_COUNT);
	assert_string_equal(selected_leaf(fx), "checksum");
	view_apply(&fx->st, VA_SORT, &fx->snap);
	view_apply(&fx->st, VA_SORT, &fx->snap);
	view_apply(&fx->st, VA_SORT, &fx->snap);
	assert_int_equal(fx->st.sort, VIEW_SORT_TOTAL);
	view_apply(&fx->st, VA_END, &fx->snap);
	assert_string_equal(selected_leaf(fx), "load_config");
	view_apply(&fx->st, VA_DOWN, &fx->snap);
	assert_string_equal(selected_leaf(fx), "load_config");
	view_apply(&fx->st, VA_HOME, &fx->snap);
	assert_string_equal(selected_leaf(fx), "refresh_cache");
	view_apply(&fx->st, VA_UP, &fx->snap);
	assert_string_equal(selected_leaf(fx), "refresh_cache");
	view_apply(&fx->st, VA_PGDN, &fx->snap);
	assert_string_equal(selected_leaf(fx), "load_config");
	view_apply(&fx->st, VA_PGUP, &fx->snap);
	assert_string_equal(selected_leaf(fx), "refresh_cache");
}

static void test_keys_pages_and_effects(void **state)
{
	struct fixture *fx = *state;

	view_apply(&fx->st, VA_DOWN, &fx->snap);
	assert_int_equal(view_apply(&fx->st, VA_OPEN, &fx->snap), VE_NONE);
	assert_int_equal(fx->st.page, VIEW_DETAIL);
	/* keys scroll the detail view; Esc goes back */
	view_apply(&fx->st, VA_DOWN, &fx->snap);
	assert_int_equal(fx->st.detail_scroll, 1);
	view_apply(&fx->st, VA_UP, &fx->snap);
	view_apply(&fx->st, VA_UP, &fx->snap);
	assert_int_equal(fx->st.detail_scroll, 0);
	view_apply(&fx->st, VA_HELP, &fx->snap);
	assert_int_equal(fx->st.page, VIEW_HELP);
	view_apply(&fx->st, VA_SORT, &fx->snap);   /* any key leaves the help */
	assert_int_equal(fx->st.page, VIEW_DETAIL);
	assert_int_equal(fx->st.sort, VIEW_SORT_TOTAL);
	view_apply(&fx->st, VA_BACK, &fx->snap);
	assert_int_equal(fx->st.page, VIEW_MAIN);
	assert_string_equal(selected_leaf(fx), "checksum");
	/* effects for the controller */
	assert_int_equal(view_apply(&fx->st, VA_QUIT, &fx->snap), VE_QUIT);
	assert_int_equal(view_apply(&fx->st, VA_RESET, &fx->snap), VE_RESET);
	assert_int_equal(view_apply(&fx->st, VA_WRITE, &fx->snap), VE_WRITE);
	assert_int_equal(view_apply(&fx->st, VA_RESIZE, &fx->snap), VE_NONE);
	view_apply(&fx->st, VA_PAUSE, &fx->snap);
	assert_true(fx->st.paused);
	view_apply(&fx->st, VA_PAUSE, &fx->snap);
	assert_false(fx->st.paused);
	/* q quits from the help too */
	view_apply(&fx->st, VA_HELP, &fx->snap);
	assert_int_equal(view_apply(&fx->st, VA_QUIT, &fx->snap), VE_QUIT);
}

static void test_keys_filter_input(void **state)
{
	struct fixture *fx = *state;

	snprintf(fx->st.filter, sizeof(fx->st.filter), "old");
	view_apply(&fx->st, VA_FILTER, &fx->snap);
	assert_true(fx->st.editing);
	assert_string_equal(fx->st.filter, "");
	view_input(&fx->st, 'c');
	view_input(&fx->st, 'a');
	view_input(&fx->st, 'x');
	view_input(&fx->st, '\b');
	view_input(&fx->st, 'c');
	view_input(&fx->st, '\x01');  /* ignored */
	assert_string_equal(fx->st.filter, "cac");
	render_at(fx, 24, 80);
	assert_true(screen_has(&fx->scr, "filter: cac_"));
	view_input(&fx->st, '\n');
	assert_false(fx->st.editing);
	assert_string_equal(fx->st.filter, "cac");
	assert_string_equal(selected_leaf(fx), "refresh_cache");
	render_at(fx, 24, 80);
	assert_true(screen_has(&fx->scr, "FINDINGS 1 of 4 matching \"cac\""));
	/* Esc on the main page clears it */
	view_apply(&fx->st, VA_BACK, &fx->snap);
	assert_string_equal(fx->st.filter, "");
	/* Esc while typing clears and stops */
	view_apply(&fx->st, VA_FILTER, &fx->snap);
	view_input(&fx->st, 'z');
	view_input(&fx->st, 27);
	assert_false(fx->st.editing);
	assert_string_equal(fx->st.filter, "");
	/* the filter never overflows */
	view_apply(&fx->st, VA_FILTER, &fx->snap);
	for (int i = 0; i < 200; i++)
		view_input(&fx->st, 'a');
	assert_int_equal(strlen(fx->st.filter), VIEW_FILTER_MAX - 1);
}

/* ------------------------------------------------------------------ */
/* whole screens                                                       */

static void test_render_main(void **state)
{
	struct fixture *fx = *state;
	int r;

	render_at(fx, 45, 160);
	assert_true(screen_has(&fx->scr, "loopspy top  pid 4242"));
	assert_true(screen_has(&fx->scr, "/usr/bin/python3 app.py --port? 8080"));
	assert_true(screen_has(&fx->scr, "CPython 3.11.2"));
	assert_true(screen_has(&fx->scr, "up 0:42"));
	assert_true(screen_has(&fx->scr, "stall >= 100 ms  block >= 1 ms"));
	assert_true(screen_has(&fx->scr, "LOOPS 1"));
	assert_true(screen_has(&fx->scr, "MainThread"));
	assert_true(screen_has(&fx->scr, "FINDINGS 4   sort: total"));
	r = screen_row_of(&fx->scr, "refresh_cache cache.py:15");
	assert_true(r > 0);
	assert_true(fx->scr.line[r].selected);
	assert_int_equal(fx->scr.line[r].style, VS_CRIT);
	assert_non_null(strstr(fx->scr.line[r].text, "blocking_syscall clock_nanosleep"));
	assert_non_null(strstr(fx->scr.line[r].text, "600 ms"));
	r = screen_row_of(&fx->scr, "checksum digest.py:21");
	assert_true(r > 0);
	assert_non_null(strstr(fx->scr.line[r].text, "stall "));
	assert_false(fx->scr.line[r].selected);
	r = screen_row_of(&fx->scr, "save_journal");
	assert_int_equal(fx->scr.line[r].style, VS_INFO);
	assert_true(screen_has(&fx->scr, "q quit"));
	/* footer status, then its expiry */
	view_status(&fx->st, VS_STATUS, fx->now + SEC, "wrote %s", "/tmp/x.json");
	render_at(fx, 45, 160);
	assert_true(screen_has(&fx->scr, "wrote /tmp/x.json"));
	fx->now += 2 * SEC;
	render_at(fx, 45, 160);
	assert_false(screen_has(&fx->scr, "wrote /tmp/x.json"));
	fx->st.paused = 1;
	render_at(fx, 45, 160);
	assert_true(screen_has(&fx->scr, "PAUSED"));
}

static void test_render_sizes(void **state)
{
	static const int sizes[][2] = {
		{ 45, 160 }, { 24, 80 }, { 10, 40 }, { 8, 30 }, { 5, 20 }, { 4, 20 }, { 3, 10 },
		{ 2, 5 }, { 1, 1 }, { 0, 0 }, { 1, 400 }, { 500, 500 }, { 12, 2 },
	};
	struct fixture *fx = *state;
	size_t i;
	int p;

	for (p = 0; p < 3; p++) {
		fx->st.page = (enum view_page)p;
		for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
			render_at(fx, sizes[i][0], sizes[i][1]);
	}
	fx->st.page = VIEW_MAIN;
	/* 40x10: the loop, the top finding and the footer survive */
	render_at(fx, 10, 40);
	assert_true(screen_has(&fx->scr, "MainThread"));
	assert_true(screen_has(&fx->scr, "refresh_cache"));
	assert_true(screen_has(&fx->scr, "q quit"));
	/* 80x24: the culprit's file and line are kept */
	render_at(fx, 24, 80);
	assert_true(screen_has(&fx->scr, "refresh_cache cache.py:15"));
	/* huge terminals are clamped */
	render_at(fx, 500, 500);
	assert_int_equal(fx->scr.rows, VIEW_ROWS_MAX);
	assert_int_equal(fx->scr.cols, VIEW_COLS_MAX);
}

static void test_render_scroll(void **state)
{
	struct model *m = model_make();
	struct view_history h;
	struct view_snap snap;
	struct view_state st;
	struct view_screen scr = { 0 };
	struct view_target t = target_make();
	struct mstack s[30];
	char name[32];
	int i, r;

	(void)state;

	view_history_init(&h);
	view_snap_init(&snap);
	view_state_init(&st, 1);
	loop_stats(m, TID, 10, 50 * US, NULL, 0, 0, T0);
	for (i = 0; i < 30; i++) {
		snprintf(name, sizeof(name), "handler_%02d", i);
		s[i] = stack_make(m, name, "/srv/app/h.py", i + 1);
		/* handler_00 is the biggest */
		sleep_add(m, TID, NR_NANOSLEEP, T0 + (uint64_t)i * SEC, T0 + (uint64_t)i * SEC + MS,
			  (uint64_t)(100 - i) * MS, &s[i]);
	}
	assert_int_equal(view_snap_take(&snap, &h, m, &t, T0 + 40 * SEC), 0);
	assert_int_equal(view_screen_resize(&scr, 16, 100), 0);
	view_render(&st, &snap, &scr, T0);
	screen_check(&scr);
	assert_true(screen_has(&scr, "handler_00"));
	assert_false(screen_has(&scr, "handler_29"));
	view_apply(&st, VA_END, &snap);
	view_render(&st, &snap, &scr, T0);
	screen_check(&scr);
	r = screen_row_of(&scr, "handler_29");
	assert_true(r > 0);
	assert_true(scr.line[r].selected);
	assert_false(screen_has(&scr, "handler_00 "));
	assert_true(st.scroll > 0);
	view_apply(&st, VA_PGUP, &snap);
	view_render(&st, &snap, &scr, T0);
	screen_check(&scr);
	assert_false(screen_has(&scr, "handler_29"));
	view_screen_free(&scr);
	view_snap_free(&snap);
	view_history_free(&h);
	model_free(m);
}

static void test_render_detail(void **state)
{
	struct fixture *fx = *state;
	int r;

	view_apply(&fx->st, VA_DOWN, &fx->snap);  /* checksum, the stall */
	view_apply(&fx->st, VA_OPEN, &fx->snap);
	view_snap_dist(&fx->snap, fx->m, &fx->st);
	assert_int_equal(fx->snap.dist.n, 1);
	render_at(fx, 45, 160);
	assert_true(screen_has(&fx->scr, "DETAIL  stall  loop MainThread"));
	assert_true(screen_has(&fx->scr, "count 1   total 400 ms   max 400 ms"));
	assert_true(screen_has(&fx->scr, "Breakdown of the time"));
	assert_true(screen_has(&fx->scr, "on-CPU        400 ms  100%"));
	assert_true(screen_has(&fx->scr, "CPU samples 20, 100% at the top frame"));
	assert_true(screen_has(&fx->scr, "Python stack (innermost first)"));
	r = screen_row_of(&fx->scr, "/srv/app/digest.py:21");
	assert_true(r > 0);
	assert_non_null(strstr(fx->scr.line[r].text, "checksum"));
	assert_true(screen_has(&fx->scr, "main                           /srv/app/main.py:61"));
	assert_true(screen_has(&fx->scr, "Durations of the last 1 events"));
	assert_true(screen_has(&fx->scr, "200 ms - 500 ms"));
	/* a blocking call: syscall and its durations */
	view_apply(&fx->st, VA_BACK, &fx->snap);
	view_apply(&fx->st, VA_HOME, &fx->snap);
	view_apply(&fx->st, VA_OPEN, &fx->snap);
	view_snap_dist(&fx->snap, fx->m, &fx->st);
	assert_int_equal(fx->snap.dist.n, 3);
	render_at(fx, 45, 160);
	assert_true(screen_has(&fx->scr, "syscall clock_nanosleep"));
	assert_true(screen_has(&fx->scr, "Durations of the last 3 events"));
	/* small: scrolls, and the scroll is clamped */
	render_at(fx, 8, 60);
	fx->st.detail_scroll = 1000;
	render_at(fx, 8, 60);
	assert_true(fx->st.detail_scroll > 0);
	assert_true(fx->st.detail_scroll < 1000);
	assert_true(screen_has(&fx->scr, "200 ms - 500 ms"));
	/* the finding is gone after a reset */
	model_reset(fx->m);
	assert_int_equal(view_snap_take(&fx->snap, &fx->h, fx->m, &fx->t, fx->now), 0);
	assert_int_equal(fx->snap.nfindings, 0);
	render_at(fx, 24, 80);
	assert_true(screen_has(&fx->scr, "this finding is gone"));
	fx->st.page = VIEW_MAIN;
	render_at(fx, 24, 80);
	assert_true(screen_has(&fx->scr, "no findings yet: stalls >= 100 ms and blocking syscalls >= 1 ms"));
}

static void test_render_holders(void **state)
{
	struct model *m = model_make();
	struct view_snap snap;
	struct view_state st;
	struct view_screen scr = { 0 };
	struct finding f;
	struct loop_info *l;

	(void)state;

	view_snap_init(&snap);
	view_state_init(&st, 0);
	loop_stats(m, TID, 10, 50 * US, NULL, 0, 0, T0);
	l = model_loop(m, TID, 0);
	/* a hand-made lock finding: the view shows what is set, by field */
	memset(&f, 0, sizeof(f));
	f.kind = FINDING_LOCK_CONTENTION;
	f.tid = TID;
	f.nr = NR_FUTEX;
	f.key = 7;
	f.count = 5;
	f.total_ns = 1400 * MS;
	f.max_ns = 301 * MS;
	f.stack = stack_make(m, "read_cache", "/srv/app/cache.py", 15);
	snprintf(f.lock_kind, sizeof(f.lock_kind), "threading.Lock");
	f.lock_addr = 0x7f3a00001000ULL;
	f.nholders = 1;
	f.holders[0].tid = 4251;
	f.holders[0].waits = 5;
	f.holders[0].wait_ns = 1200 * MS;
	f.holders[0].stack = stack_make(m, "writer", "/srv/app/cache.py", 9);
	f.unattributed_ns = 200 * MS;
	snap.findings = &f;
	snap.nfindings = 1;
	snap.holder_names = calloc(1, sizeof(*snap.holder_names));
	assert_non_null(snap.holder_names);
	snprintf(snap.holder_names[0][0], sizeof(snap.holder_names[0][0]), "cache-writer");
	snap.stall_ns = 100 * MS;
	snap.block_ns = 1 * MS;
	snap.loops = calloc(1, sizeof(*snap.loops));
	assert_non_null(snap.loops);
	snap.nloops = 1;
	snap.loops[0].tid = TID;
	snprintf(snap.loops[0].name, sizeof(snap.loops[0].name), "%s", l->name);
	assert_int_equal(view_screen_resize(&scr, 30, 120), 0);
	view_render(&st, &snap, &scr, T0);
	screen_check(&scr);
	assert_true(screen_has(&scr, "lock_contention  threading.Lock"));
	view_apply(&st, VA_OPEN, &snap);
	view_render(&st, &snap, &scr, T0);
	screen_check(&scr);
	assert_true(screen_has(&scr, "lock threading.Lock at 0x7f3a00001000"));
	assert_true(screen_has(&scr, "tid 4251 \"cache-writer\"  1.20 s of the wait (86%) in 5 waits"));
	assert_true(screen_has(&scr, "writer /srv/app/cache.py:9"));
	assert_true(screen_has(&scr, "200 ms ended by a timeout or outside the process"));
	assert_true(screen_has(&scr, "Durations: not kept") || screen_has(&scr, "Durations: none"));
	free(snap.holder_names);
	free(snap.loops);
	view_screen_free(&scr);
	model_free(m);
}

static void test_dist(void **state)
{
	struct model *m = model_make();
	struct mstack a = stack_make(m, "refresh_cache", "/srv/app/cache.py", 15);
	struct mstack b = stack_make(m, "refresh_cache", "/srv/app/cache.py", 16);
	const struct timeline_ev *ev;
	struct view_dist d;
	struct finding f;
	uint64_t dropped;
	size_t n;

	(void)state;

	model_timeline_add(m, TID, TL_BLOCKING, NR_NANOSLEEP, T0, 150 * MS, &a);
	model_timeline_add(m, TID, TL_BLOCKING, NR_NANOSLEEP, T0, 3 * MS, &a);
	model_timeline_add(m, TID, TL_BLOCKING, NR_NANOSLEEP, T0, 3 * MS, &b);   /* other line */
	model_timeline_add(m, TID, TL_BLOCKING, NR_FSYNC, T0, 3 * MS, &a);       /* other syscall */
	model_timeline_add(m, TID + 1, TL_BLOCKING, NR_NANOSLEEP, T0, 3 * MS, &a); /* other thread */
	model_timeline_add(m, TID, TL_STALL, -1, T0, 150 * SEC, &b);
	n = model_timeline(m, &ev, &dropped);
	assert_int_equal(n, 6);
	memset(&f, 0, sizeof(f));
	f.kind = FINDING_BLOCKING_SYSCALL;
	f.tid = TID;
	f.nr = NR_NANOSLEEP;
	f.stack = a;
	view_dist_collect(&d, &f, ev, n);
	assert_true(d.available);
	assert_int_equal(d.n, 2);
	assert_int_equal(d.bucket[11], 1);  /* 2-5 ms */
	assert_int_equal(d.bucket[16], 1);  /* 100-200 ms */
	assert_int_equal(view_dist_edge(11), 2 * MS);
	assert_int_equal(view_dist_edge(16), 100 * MS);
	assert_int_equal(view_dist_edge(VIEW_DIST_N), UINT64_MAX);
	/* stalls group by callers and innermost function, any line */
	f.kind = FINDING_STALL;
	f.nr = -1;
	view_dist_collect(&d, &f, ev, n);
	assert_int_equal(d.n, 1);
	assert_int_equal(d.bucket[VIEW_DIST_N - 1], 1);
	model_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dur),
		cmocka_unit_test(test_age_count_rate_uptime),
		cmocka_unit_test(test_width_and_fit),
		cmocka_unit_test(test_ascii_copy),
		cmocka_unit_test(test_sparkline),
		cmocka_unit_test(test_columns),
		cmocka_unit_test(test_hist_percentile),
		cmocka_unit_test_setup_teardown(test_order, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_filter, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_severity, fixture_setup, fixture_teardown),
		cmocka_unit_test(test_loop_window),
		cmocka_unit_test(test_live_stall),
		cmocka_unit_test_setup_teardown(test_keys_selection, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_keys_pages_and_effects, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_keys_filter_input, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_render_main, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_render_sizes, fixture_setup, fixture_teardown),
		cmocka_unit_test(test_render_scroll),
		cmocka_unit_test_setup_teardown(test_render_detail, fixture_setup, fixture_teardown),
		cmocka_unit_test(test_render_holders),
		cmocka_unit_test(test_dist),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
