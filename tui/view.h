/* The dashboard's view layer: a snapshot of the model, the state of the
 * screen (page, selection, sort, filter, pause) and the layout of every line
 * of it. Pure — no curses, no system calls, no clock — so it is unit-tested
 * without a terminal (tests/unit/test_tui_view.c). tui/draw.c only paints
 * the lines of a view_screen; tui/keys.c maps keys to view_action values.
 *
 *   model ──view_snap_take──► view_snap ──view_render──► view_screen ──tui_draw──► terminal
 *                                 ▲                          │
 *   keys ──tui_key_action──► view_apply (view_state) ────────┘
 */
#ifndef LOOPSPY_TUI_VIEW_H
#define LOOPSPY_TUI_VIEW_H
#include <stddef.h>
#include <stdint.h>
#include "../cli/core/model.h"

#define VIEW_COLS_MAX 320            /* wider terminals are drawn this wide */
#define VIEW_ROWS_MAX 400
#define VIEW_LINE_MAX (VIEW_COLS_MAX * 3 + 1) /* UTF-8 bytes of one line */
#define VIEW_SPANS_MAX 4
#define VIEW_SPARK_MAX 60            /* sparkline columns kept per loop */
#define VIEW_SLOTS 64                /* per-period samples kept per loop */
#define VIEW_PERIOD_NS 1000000000ULL /* one sample (and sparkline column) per second */
#define VIEW_WINDOW_NS 10000000000ULL /* loop lag percentiles: the last 10 s */
#define VIEW_FILTER_MAX 64
#define VIEW_DIST_N 26
#define VIEW_NODATA UINT64_MAX

enum view_style {
	VS_NORMAL = 0,
	VS_TITLE,      /* panel title bars */
	VS_COLHEAD,    /* column headers */
	VS_DIM,        /* hints, empty panels */
	VS_CRIT,       /* findings that stalled the loop */
	VS_WARN,
	VS_INFO,
	VS_STALLED,    /* the live stall marker */
	VS_STATUS,     /* footer */
	VS_ERROR,
	VS_GOOD,
	VS_N,
};

struct view_span {
	int start, end;             /* byte offsets in text */
	enum view_style style;
};

/* One screen row: UTF-8 text that fits the screen width, a style, and up to
 * VIEW_SPANS_MAX differently styled byte ranges. */
struct view_line {
	enum view_style style;
	int selected;
	int fill;                   /* paint the style to the end of the row */
	int nspans;
	struct view_span spans[VIEW_SPANS_MAX];
	char text[VIEW_LINE_MAX];
};

struct view_screen {
	int rows, cols;
	struct view_line *line;     /* rows of them */
};

/* What the controller (cli/top.c) knows about the target. */
struct view_target {
	int pid;
	char command[256];
	char runtime[160];
	uint64_t uptime_ns;
	uint64_t events, dropped;
	int exited;                 /* the target exited: the data is final */
	int exit_status;            /* a started command's status, -1 otherwise */
};

struct view_loop {
	uint32_t tid;
	char name[32];
	uint64_t p50_ns, p99_ns, max_ns; /* iterations of the window */
	uint64_t span_ns;           /* what the window really covers */
	double busy;                /* 0..1 */
	double iter_rate;           /* iterations per second */
	uint64_t stalls;            /* since attach or the last reset */
	uint64_t live_ns;           /* age of an iteration >= the stall threshold still running, else 0 */
	struct mframe live;         /* where it is now; function NULL when not known yet */
	int live_what;              /* 0 on CPU or unknown, 1 blocked in syscall live_nr, 2 in GC */
	int live_nr;
	int nspark;
	uint64_t spark[VIEW_SPARK_MAX]; /* max lag per period, oldest first; VIEW_NODATA before attach */
};

/* Durations of one finding's events, from the model's timeline. */
struct view_dist {
	int available;              /* this kind of finding has timeline events */
	uint64_t n;
	uint64_t bucket[VIEW_DIST_N];
};

struct view_snap {
	struct view_target target;
	uint64_t now, stall_ns, block_ns;
	double events_rate;
	struct view_loop *loops;
	size_t nloops, caploops;
	struct finding *findings;   /* copies of the reported ones; their strings live in the model */
	size_t nfindings, capfindings;
	char (*holder_names)[MODEL_MAX_HOLDERS][32]; /* per finding, per holder */
	struct view_dist dist;      /* of the selected finding, see view_snap_dist */
};

/* Cumulative loop statistics sampled once per VIEW_PERIOD_NS: the window
 * and sparkline are differences between samples. */
struct view_sample {
	uint64_t t, iterations, busy_ns;
	uint64_t running_ns;        /* age of the iteration running then, 0 when idle */
	uint32_t hist[LS_HIST_BUCKETS];
};

struct view_loop_hist {
	uint32_t tid;
	int based;                  /* base_stalls is set */
	uint64_t base_stalls;
	size_t head, len;
	struct view_sample s[VIEW_SLOTS];
};

struct view_history {
	struct view_loop_hist **loops;
	size_t n, cap;
	int reset;                  /* reset at least once: windows start at the reset, not at attach */
	int ev_init;
	uint64_t ev_t, ev_n;
	double ev_rate;
};

enum view_sort {
	VIEW_SORT_TOTAL = 0,
	VIEW_SORT_COUNT,
	VIEW_SORT_MAX,
	VIEW_SORT_RECENT,
	VIEW_SORT_N,
};

enum view_page {
	VIEW_MAIN = 0,
	VIEW_DETAIL,
	VIEW_HELP,
};

enum view_action {
	VA_NONE = 0,
	VA_QUIT,
	VA_UP,
	VA_DOWN,
	VA_PGUP,
	VA_PGDN,
	VA_HOME,
	VA_END,
	VA_OPEN,
	VA_BACK,
	VA_SORT,
	VA_PAUSE,
	VA_RESET,
	VA_WRITE,
	VA_FILTER,
	VA_HELP,
	VA_RESIZE,
};

/* What view_apply asks the controller to do. */
enum view_effect {
	VE_NONE = 0,
	VE_QUIT,
	VE_RESET,   /* reset the model's findings and the loop windows */
	VE_WRITE,   /* write a JSON report snapshot */
};

/* A finding's identity across snapshots (sorting and resets move it). */
struct view_sel {
	int valid;
	int kind;
	uint32_t tid;
	uint64_t key;
};

struct view_state {
	enum view_page page, help_from;
	enum view_sort sort;
	char filter[VIEW_FILTER_MAX];
	int editing;                /* typing the filter */
	struct view_sel sel;
	int scroll;                 /* first finding row shown */
	int detail_scroll;
	int paused;
	int ascii;                  /* the terminal is not UTF-8 */
	int page_rows;              /* finding rows that fit, from the last render */
	int detail_rows;            /* detail lines that fit, from the last render */
	char status[256];
	enum view_style status_style;
	uint64_t status_until;      /* ns, same clock as view_render's now; 0 = until replaced */
};

/* Formatting: every function writes a NUL-terminated string into buf. */
void view_dur(char *buf, size_t n, uint64_t ns);       /* "0.38 ms", "157 ms", "1.70 s", "2m05s" */
void view_age(char *buf, size_t n, uint64_t ns);       /* "now", "12s ago", "3m ago" */
void view_count(char *buf, size_t n, uint64_t v);      /* "123", "12.3k", "4.5M" */
void view_rate(char *buf, size_t n, double per_s);     /* "0.5", "12", "1.2k" */
void view_uptime(char *buf, size_t n, uint64_t ns);    /* "0:42", "1:02:03" */
/* Display columns of UTF-8 text (all characters loopspy draws are one column wide). */
int view_width(const char *s);
/* Copies src into dst fitted to width columns; too long text is cut and
 * marked with "..", keeping its end when keep_end (paths). Returns the
 * columns used. */
int view_fit(char *dst, size_t n, const char *src, int width, int keep_end);
/* Copies text from the target (command lines, thread names), replacing
 * control and non-ASCII bytes with '?'. */
void view_ascii_copy(char *dst, size_t n, const char *src);
/* Sparkline level of a lag: 0 for VIEW_NODATA, else 1..8 on a log scale
 * from 50 us to the stall threshold. */
int view_spark_level(uint64_t ns, uint64_t stall_ns);
/* The last `width` values as a sparkline (blocks, or ASCII ".:-=+*#@"),
 * right-aligned, padded on the left. Returns the columns written. */
int view_sparkline(char *dst, size_t n, const uint64_t *vals, int nvals, int width,
		   uint64_t stall_ns, int ascii);
const char *view_sort_name(enum view_sort s);
/* Red when the finding stalled the loop (max >= stall threshold), yellow
 * above a tenth of it, else informational. */
enum view_style view_severity(const struct finding *f, uint64_t stall_ns);
/* Case-insensitive substring of a frame's function or file, the syscall,
 * the lock or fd kind, or the kind name; an empty filter matches everything. */
int view_finding_matches(const struct finding *f, const char *filter);
/* Findings of snap matching st->filter, in st->sort order, into out (room
 * for snap->nfindings). Returns how many. */
size_t view_order(const struct view_snap *snap, const struct view_state *st, const struct finding **out);
/* The finding the selection is on (the first row when it is gone), NULL when none. */
const struct finding *view_selected(const struct view_snap *snap, const struct view_state *st);

/* Column layout: widths[i] gets specs' width when column i fits (by
 * priority, 0 first), else 0; the flexible column (width 0 in specs) gets
 * what is left, at least min_flex. Returns the columns used. */
struct view_colspec {
	const char *title;
	int width;                  /* 0: flexible */
	int prio;
	int right;                  /* right-aligned */
};
int view_columns(const struct view_colspec *specs, int n, int cols, int min_flex, int *widths);

/* Histogram (struct ls_loop_stats layout): upper bound in ns of the bucket
 * holding percentile pct (0..100), at most cap when cap != 0; 0 when empty. */
uint64_t view_hist_percentile(const uint32_t *hist, double pct, uint64_t cap);
/* Lower edge in ns of duration bucket i of a view_dist (1-2-5 steps from 1 us). */
uint64_t view_dist_edge(int i);
/* Whether timeline event e belongs to finding f (same thread, kind, stack). */
int view_timeline_matches(const struct timeline_ev *e, const struct finding *f);
void view_dist_collect(struct view_dist *d, const struct finding *f, const struct timeline_ev *ev, size_t n);

void view_history_init(struct view_history *h);
void view_history_free(struct view_history *h);
/* 'r': windows, sparklines and stall counts start again from now. */
void view_history_reset(struct view_history *h);

void view_snap_init(struct view_snap *snap);
void view_snap_free(struct view_snap *snap);
/* Copies what the dashboard shows from the model at time now (CLOCK_MONOTONIC
 * ns, the clock of loop_info.iter_start) and advances the loop history.
 * 0, or -1 when out of memory (snap keeps what it had). */
int view_snap_take(struct view_snap *snap, struct view_history *h, const struct model *m,
		   const struct view_target *t, uint64_t now);
/* Fills snap->dist for the selected finding from the model's timeline. */
void view_snap_dist(struct view_snap *snap, const struct model *m, const struct view_state *st);

void view_state_init(struct view_state *st, int ascii);
/* Shows a message in the footer until `until` (0: until replaced). */
void view_status(struct view_state *st, enum view_style style, uint64_t until, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
enum view_effect view_apply(struct view_state *st, enum view_action a, const struct view_snap *snap);
/* A key typed while editing the filter (st->editing): printable ASCII,
 * '\b' (erase), '\n' (keep the filter), 27 (Esc: clear it). */
void view_input(struct view_state *st, int ch);

/* Allocates rows x cols (clamped to VIEW_ROWS_MAX x VIEW_COLS_MAX; 0, -1 on failure). */
int view_screen_resize(struct view_screen *scr, int rows, int cols);
void view_screen_free(struct view_screen *scr);
/* Lays out the whole screen. Adjusts st->scroll (keeps the selection
 * visible), st->page_rows and st->detail_rows; clears an expired status. */
void view_render(struct view_state *st, const struct view_snap *snap, struct view_screen *scr, uint64_t now);

#endif
