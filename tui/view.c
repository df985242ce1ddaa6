/* The dashboard's view layer (see view.h): formatting, column layout,
 * sparklines, sorting and filtering, the loop history and the layout of
 * every screen. Pure: no curses, no system calls. */
#include "view.h"
#include "syscalls.h"
#include "report.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MS_NS 1000000ULL
#define S_NS 1000000000ULL

/* ------------------------------------------------------------------ */
/* formatting                                                          */

void view_dur(char *buf, size_t n, uint64_t ns)
{
	unsigned long long s = ns / S_NS;

	if (ns < 10 * MS_NS && ns && !(ns % MS_NS))
		snprintf(buf, n, "%llu ms", (unsigned long long)(ns / MS_NS));
	else if (ns < 10 * MS_NS)
		snprintf(buf, n, "%.2f ms", (double)ns / 1e6);
	else if (ns < 100 * MS_NS)
		snprintf(buf, n, "%.1f ms", (double)ns / 1e6);
	else if (ns < S_NS)
		snprintf(buf, n, "%llu ms", (unsigned long long)(ns / MS_NS));
	else if (ns < 10 * S_NS)
		snprintf(buf, n, "%.2f s", (double)(ns / 10000000ULL) / 100.0);
	else if (ns < 100 * S_NS)
		snprintf(buf, n, "%.1f s", (double)(ns / 100000000ULL) / 10.0);
	else if (s < 3600)
		snprintf(buf, n, "%llum%02llus", s / 60, s % 60);
	else
		snprintf(buf, n, "%lluh%02llum", s / 3600, (s / 60) % 60);
}

void view_age(char *buf, size_t n, uint64_t ns)
{
	unsigned long long s = ns / S_NS;

	if (s < 1)
		snprintf(buf, n, "now");
	else if (s < 60)
		snprintf(buf, n, "%llus ago", s);
	else if (s < 3600)
		snprintf(buf, n, "%llum ago", s / 60);
	else
		snprintf(buf, n, "%lluh ago", s / 3600);
}

void view_count(char *buf, size_t n, uint64_t v)
{
	if (v < 100000)
		snprintf(buf, n, "%llu", (unsigned long long)v);
	else if (v < 10000000)
		snprintf(buf, n, "%.0fk", (double)v / 1e3);
	else if (v < 10000000000ULL)
		snprintf(buf, n, "%.0fM", (double)v / 1e6);
	else
		snprintf(buf, n, "%.0fG", (double)v / 1e9);
}

void view_rate(char *buf, size_t n, double per_s)
{
	if (per_s < 0)
		per_s = 0;
	if (per_s < 10)
		snprintf(buf, n, "%.1f", per_s);
	else if (per_s < 10000)
		snprintf(buf, n, "%.0f", per_s);
	else if (per_s < 10e6)
		snprintf(buf, n, "%.1fk", per_s / 1e3);
	else
		snprintf(buf, n, "%.1fM", per_s / 1e6);
}

void view_uptime(char *buf, size_t n, uint64_t ns)
{
	unsigned long long s = ns / S_NS;

	if (s < 3600)
		snprintf(buf, n, "%llu:%02llu", s / 60, s % 60);
	else
		snprintf(buf, n, "%llu:%02llu:%02llu", s / 3600, (s / 60) % 60, s % 60);
}

/* Bytes of the UTF-8 character at p (1 for anything malformed). */
static size_t utf8_len(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;
	size_t len, i;

	if (u[0] < 0xc0)
		return 1;
	len = u[0] < 0xe0 ? 2 : u[0] < 0xf0 ? 3 : u[0] < 0xf8 ? 4 : 1;
	for (i = 1; i < len; i++)
		if ((u[i] & 0xc0) != 0x80)
			return 1;
	return len;
}

int view_width(const char *s)
{
	int w = 0;

	while (s && *s) {
		s += utf8_len(s);
		w++;
	}
	return w;
}

/* Byte offset of character nchars of s (or its end). */
static size_t utf8_skip(const char *s, int nchars)
{
	size_t off = 0;

	while (nchars-- > 0 && s[off])
		off += utf8_len(s + off);
	return off;
}

/* Appends up to nchars characters of src at dst[*len], within n bytes. */
static void chars_append(char *dst, size_t n, size_t *len, const char *src, int nchars)
{
	size_t off = 0;

	while (nchars-- > 0 && src[off]) {
		size_t c = utf8_len(src + off);

		if (*len + c >= n)
			break;
		memcpy(dst + *len, src + off, c);
		*len += c;
		off += c;
	}
	dst[*len] = '\0';
}

int view_fit(char *dst, size_t n, const char *src, int width, int keep_end)
{
	size_t len = 0;
	int w;

	if (!n)
		return 0;
	dst[0] = '\0';
	if (!src || width <= 0)
		return 0;
	w = view_width(src);
	if (w <= width) {
		chars_append(dst, n, &len, src, w);
	} else if (width <= 2) {
		chars_append(dst, n, &len, src, width);
	} else if (keep_end) {
		chars_append(dst, n, &len, "..", 2);
		chars_append(dst, n, &len, src + utf8_skip(src, w - (width - 2)), width - 2);
	} else {
		chars_append(dst, n, &len, src, width - 2);
		chars_append(dst, n, &len, "..", 2);
	}
	return view_width(dst);  /* less than asked when dst is small */
}

void view_ascii_copy(char *dst, size_t n, const char *src)
{
	size_t i;

	if (!n)
		return;
	for (i = 0; src && src[i] && i + 1 < n; i++) {
		unsigned char c = (unsigned char)src[i];

		dst[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	dst[i] = '\0';
}

int view_spark_level(uint64_t ns, uint64_t stall_ns)
{
	const double lo = 50e3;
	double hi = stall_ns > 100000 ? (double)stall_ns : 100e3, f;

	if (ns == VIEW_NODATA)
		return 0;
	if ((double)ns <= lo)
		return 1;
	if ((double)ns >= hi)
		return 8;
	f = log((double)ns / lo) / log(hi / lo);
	return 1 + (int)(f * 7.0);
}

int view_sparkline(char *dst, size_t n, const uint64_t *vals, int nvals, int width,
		   uint64_t stall_ns, int ascii)
{
	static const char *const blocks[9] = {
		" ", "\u2581", "\u2582", "\u2583", "\u2584", "\u2585", "\u2586", "\u2587", "\u2588",
	};
	static const char ramp[] = " .:-=+*#@";
	size_t len = 0;
	int i, shown, w = 0;

	if (!n)
		return 0;
	dst[0] = '\0';
	if (width <= 0)
		return 0;
	shown = nvals < width ? nvals : width;
	for (i = 0; i < width - shown; i++, w++)
		chars_append(dst, n, &len, " ", 1);
	for (i = nvals - shown; i < nvals; i++, w++) {
		int lv = view_spark_level(vals[i], stall_ns);
		char a[2] = { ramp[lv], '\0' };

		chars_append(dst, n, &len, ascii ? a : blocks[lv], 1);
	}
	return w;
}

const char *view_sort_name(enum view_sort s)
{
	static const char *const names[VIEW_SORT_N] = { "total", "count", "max", "recent" };

	return (unsigned)s < VIEW_SORT_N ? names[s] : "?";
}

enum view_style view_severity(const struct finding *f, uint64_t stall_ns)
{
	if (f->max_ns >= stall_ns)
		return VS_CRIT;
	if (f->max_ns >= stall_ns / 10)
		return VS_WARN;
	return VS_INFO;
}

/* ------------------------------------------------------------------ */
/* filtering and sorting                                               */

static int icontains(const char *hay, const char *needle)
{
	size_t i, j;

	if (!hay)
		return 0;
	for (i = 0; hay[i]; i++) {
		for (j = 0; needle[j] && hay[i + j]; j++)
			if (tolower((unsigned char)hay[i + j]) != tolower((unsigned char)needle[j]))
				break;
		if (!needle[j])
			return 1;
	}
	return 0;
}

int view_finding_matches(const struct finding *f, const char *filter)
{
	int i;

	if (!filter || !filter[0])
		return 1;
	if (icontains(finding_kind_name(f->kind), filter))
		return 1;
	if (f->nr != -1 && icontains(report_syscall_label(f->nr), filter))
		return 1;
	if (icontains(f->fd_kind, filter) || icontains(f->lock_kind, filter))
		return 1;
	for (i = 0; i < f->stack.n && i < MODEL_MAX_FRAMES; i++)
		if (icontains(f->stack.f[i].function, filter) || icontains(f->stack.f[i].file, filter))
			return 1;
	return 0;
}

static int ident_cmp(const struct finding *a, const struct finding *b)
{
	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	if (a->tid != b->tid)
		return a->tid < b->tid ? -1 : 1;
	if (a->key != b->key)
		return a->key < b->key ? -1 : 1;
	return 0;
}

#define DESC(x, y) do { if ((x) != (y)) return (x) > (y) ? -1 : 1; } while (0)

static int cmp_total(const void *pa, const void *pb)
{
	const struct finding *a = *(const struct finding *const *)pa, *b = *(const struct finding *const *)pb;

	DESC(a->total_ns, b->total_ns);
	DESC(a->count, b->count);
	return ident_cmp(a, b);
}

static int cmp_count(const void *pa, const void *pb)
{
	const struct finding *a = *(const struct finding *const *)pa, *b = *(const struct finding *const *)pb;

	DESC(a->count, b->count);
	DESC(a->total_ns, b->total_ns);
	return ident_cmp(a, b);
}

static int cmp_max(const void *pa, const void *pb)
{
	const struct finding *a = *(const struct finding *const *)pa, *b = *(const struct finding *const *)pb;

	DESC(a->max_ns, b->max_ns);
	DESC(a->total_ns, b->total_ns);
	return ident_cmp(a, b);
}

static int cmp_recent(const void *pa, const void *pb)
{
	const struct finding *a = *(const struct finding *const *)pa, *b = *(const struct finding *const *)pb;

	DESC(a->last_ts, b->last_ts);
	DESC(a->total_ns, b->total_ns);
	return ident_cmp(a, b);
}

size_t view_order(const struct view_snap *snap, const struct view_state *st, const struct finding **out)
{
	static int (*const cmps[VIEW_SORT_N])(const void *, const void *) = {
		cmp_total, cmp_count, cmp_max, cmp_recent,
	};
	size_t i, n = 0;

	for (i = 0; i < snap->nfindings; i++)
		if (view_finding_matches(&snap->findings[i], st->filter))
			out[n++] = &snap->findings[i];
	if (n > 1)
		qsort(out, n, sizeof(*out), cmps[(unsigned)st->sort < VIEW_SORT_N ? st->sort : 0]);
	return n;
}

static int sel_is(const struct view_sel *sel, const struct finding *f)
{
	return sel->valid && sel->kind == (int)f->kind && sel->tid == f->tid && sel->key == f->key;
}

static void sel_set(struct view_sel *sel, const struct finding *f)
{
	sel->valid = 1;
	sel->kind = (int)f->kind;
	sel->tid = f->tid;
	sel->key = f->key;
}

/* Index of the selection in order, 0 when it is gone. */
static size_t sel_index(const struct view_state *st, const struct finding *const *order, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (sel_is(&st->sel, order[i]))
			return i;
	return 0;
}

const struct finding *view_selected(const struct view_snap *snap, const struct view_state *st)
{
	const struct finding **order, *f = NULL;
	size_t n;

	if (!snap->nfindings)
		return NULL;
	order = malloc(snap->nfindings * sizeof(*order));
	if (!order)
		return NULL;
	n = view_order(snap, st, order);
	if (n)
		f = order[sel_index(st, order, n)];
	free(order);
	return f;
}

/* ------------------------------------------------------------------ */
/* columns                                                             */

int view_columns(const struct view_colspec *specs, int n, int cols, int min_flex, int *widths)
{
	int i, p, flex = -1, used = 0, maxprio = 0;

	for (i = 0; i < n; i++) {
		widths[i] = 0;
		if (!specs[i].width)
			flex = i;
		if (specs[i].prio > maxprio)
			maxprio = specs[i].prio;
	}
	if (flex < 0)
		min_flex = 0;
	for (p = 0; p <= maxprio; p++)
		for (i = 0; i < n; i++)
			if (specs[i].width && specs[i].prio == p &&
			    used + specs[i].width + 1 + min_flex <= cols) {
				widths[i] = specs[i].width;
				used += specs[i].width + 1;
			}
	if (flex >= 0) {
		widths[flex] = cols - used > 0 ? cols - used : 0;
		used += widths[flex];
	} else if (used) {
		used--;  /* no separator after the last column */
	}
	return used;
}

enum { LC_TID, LC_NAME, LC_RATE, LC_BUSY, LC_P50, LC_P99, LC_MAX, LC_STALLS, LC_SPARK, LC_N };

static const struct view_colspec loop_cols[LC_N] = {
	[LC_TID] = { "TID", 8, 5, 1 },
	[LC_NAME] = { "LOOP", 12, 0, 0 },
	[LC_RATE] = { "ITER/S", 7, 3, 1 },
	[LC_BUSY] = { "BUSY", 5, 2, 1 },
	[LC_P50] = { "P50", 8, 3, 1 },
	[LC_P99] = { "P99", 8, 1, 1 },
	[LC_MAX] = { "MAX", 8, 0, 1 },
	[LC_STALLS] = { "STALLS", 6, 4, 1 },
	[LC_SPARK] = { "MAX LAG PER SECOND", 0, 0, 0 },
};

enum { FC_KIND, FC_SYSCALL, FC_COUNT, FC_TOTAL, FC_MAX, FC_LAST, FC_LOOP, FC_WHERE, FC_N };

static const struct view_colspec finding_cols[FC_N] = {
	[FC_KIND] = { "KIND", 16, 0, 0 },
	[FC_SYSCALL] = { "SYSCALL/LOCK", 15, 2, 0 },
	[FC_COUNT] = { "COUNT", 6, 2, 1 },
	[FC_TOTAL] = { "TOTAL", 8, 0, 1 },
	[FC_MAX] = { "MAX", 8, 3, 1 },
	[FC_LAST] = { "LAST", 7, 4, 1 },
	[FC_LOOP] = { "LOOP", 12, 5, 0 },
	[FC_WHERE] = { "WHERE (top Python frame)", 0, 0, 0 },
};

/* ------------------------------------------------------------------ */
/* histograms and the loop history                                     */

static uint64_t bucket_hi_ns(size_t b)
{
	uint64_t hi_us;

	if (b < 16) {
		hi_us = b + 1;
	} else {
		uint32_t e = 4 + (uint32_t)(b - 16) / 8, sub = (uint32_t)(b - 16) % 8;

		hi_us = (8ULL + sub + 1) << (e - 3);
	}
	return hi_us * 1000;
}

uint64_t view_hist_percentile(const uint32_t *hist, double pct, uint64_t cap)
{
	uint64_t total = 0, seen = 0, want;
	size_t b;

	for (b = 0; b < LS_HIST_BUCKETS; b++)
		total += hist[b];
	if (!total)
		return 0;
	want = (uint64_t)((double)total * pct / 100.0 + 0.5);
	if (want < 1)
		want = 1;
	if (want > total)
		want = total;
	for (b = 0; b < LS_HIST_BUCKETS; b++) {
		seen += hist[b];
		if (seen >= want)
			break;
	}
	if (b == LS_HIST_BUCKETS)
		b--;
	return cap && bucket_hi_ns(b) > cap ? cap : bucket_hi_ns(b);
}

static const uint64_t dist_edges[VIEW_DIST_N] = {
	0, 1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000, 500000,
	1 * MS_NS, 2 * MS_NS, 5 * MS_NS, 10 * MS_NS, 20 * MS_NS, 50 * MS_NS,
	100 * MS_NS, 200 * MS_NS, 500 * MS_NS, 1 * S_NS, 2 * S_NS, 5 * S_NS,
	10 * S_NS, 20 * S_NS, 50 * S_NS, 100 * S_NS,
};

uint64_t view_dist_edge(int i)
{
	return i >= 0 && i < VIEW_DIST_N ? dist_edges[i] : UINT64_MAX;
}

static int stack_same(const struct mstack *a, const struct mstack *b, int leaf_line)
{
	static const struct mstack empty;
	int i;

	if (!a)
		a = &empty;
	if (!b)
		b = &empty;
	if (a->n != b->n)
		return 0;
	for (i = 0; i < a->n && i < MODEL_MAX_FRAMES; i++)
		if (a->f[i].function != b->f[i].function || a->f[i].file != b->f[i].file ||
		    ((i || leaf_line) && a->f[i].line != b->f[i].line))
			return 0;
	return 1;
}

int view_timeline_matches(const struct timeline_ev *e, const struct finding *f)
{
	if (e->tid != f->tid)
		return 0;
	switch ((int)f->kind) {
	case FINDING_STALL:
		/* stalls are grouped by their callers and innermost function */
		return e->kind == TL_STALL && stack_same(e->stack, &f->stack, 0);
	case FINDING_BLOCKING_SYSCALL:
		return e->kind == TL_BLOCKING && e->nr == f->nr && stack_same(e->stack, &f->stack, 1);
	case FINDING_LOCK_CONTENTION:
		return e->kind == TL_LOCK_WAIT && e->nr == f->nr && stack_same(e->stack, &f->stack, 1);
	case FINDING_GIL_CONTENTION:
		/* one per loop: every GIL wait of the thread */
		return e->kind == TL_GIL_WAIT;
	case FINDING_GC_PAUSE:
		return e->kind == TL_GC && stack_same(e->stack, &f->stack, 0);
	default:
		return 0;
	}
}

void view_dist_collect(struct view_dist *d, const struct finding *f, const struct timeline_ev *ev, size_t n)
{
	size_t i;

	memset(d, 0, sizeof(*d));
	d->available = f->kind == FINDING_STALL || f->kind == FINDING_BLOCKING_SYSCALL ||
		       f->kind == FINDING_LOCK_CONTENTION || f->kind == FINDING_GIL_CONTENTION ||
		       f->kind == FINDING_GC_PAUSE;
	for (i = 0; d->available && i < n; i++) {
		int b = VIEW_DIST_N - 1;

		if (!view_timeline_matches(&ev[i], f))
			continue;
		while (b > 0 && ev[i].dur < dist_edges[b])
			b--;
		d->bucket[b]++;
		d->n++;
	}
}

void view_history_init(struct view_history *h)
{
	memset(h, 0, sizeof(*h));
}

void view_history_free(struct view_history *h)
{
	size_t i;

	if (!h)
		return;
	for (i = 0; i < h->n; i++)
		free(h->loops[i]);
	free(h->loops);
	memset(h, 0, sizeof(*h));
}

void view_history_reset(struct view_history *h)
{
	size_t i;

	for (i = 0; i < h->n; i++) {
		h->loops[i]->len = 0;
		h->loops[i]->head = 0;
		h->loops[i]->based = 0;
	}
	h->reset = 1;
}

static struct view_loop_hist *history_loop(struct view_history *h, uint32_t tid)
{
	struct view_loop_hist *lh;
	size_t i;

	for (i = 0; i < h->n; i++)
		if (h->loops[i]->tid == tid)
			return h->loops[i];
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 8;
		struct view_loop_hist **v = realloc(h->loops, cap * sizeof(*v));

		if (!v)
			return NULL;
		h->loops = v;
		h->cap = cap;
	}
	lh = calloc(1, sizeof(*lh));
	if (!lh)
		return NULL;
	lh->tid = tid;
	h->loops[h->n++] = lh;
	return lh;
}

static const struct view_sample *hist_at(const struct view_loop_hist *lh, size_t i)
{
	return &lh->s[(lh->head + i) % VIEW_SLOTS];
}

static void hist_push(struct view_loop_hist *lh, const struct view_sample *s)
{
	if (lh->len < VIEW_SLOTS) {
		lh->s[(lh->head + lh->len) % VIEW_SLOTS] = *s;
		lh->len++;
	} else {
		lh->s[lh->head] = *s;
		lh->head = (lh->head + 1) % VIEW_SLOTS;
	}
}

static void sample_of(struct view_sample *s, const struct loop_info *l, uint64_t now)
{
	s->t = now;
	s->running_ns = l->iter_start && now > l->iter_start ? now - l->iter_start : 0;
	s->iterations = l->iterations;
	s->busy_ns = l->busy_ns;
	memcpy(s->hist, l->hist, sizeof(s->hist));
}

/* d = newer - older; a counter that went back (a new loop on the thread)
 * counts from zero. */
static void sample_diff(struct view_sample *d, const struct view_sample *newer, const struct view_sample *older)
{
	size_t b;

	d->t = newer->t > older->t ? newer->t - older->t : 0;
	if (newer->iterations < older->iterations) {
		d->iterations = newer->iterations;
		d->busy_ns = newer->busy_ns;
		memcpy(d->hist, newer->hist, sizeof(d->hist));
		return;
	}
	d->iterations = newer->iterations - older->iterations;
	d->busy_ns = newer->busy_ns > older->busy_ns ? newer->busy_ns - older->busy_ns : 0;
	for (b = 0; b < LS_HIST_BUCKETS; b++)
		d->hist[b] = newer->hist[b] > older->hist[b] ? newer->hist[b] - older->hist[b] : 0;
}

static void history_note(const struct view_history *h, struct view_loop_hist *lh,
			 const struct loop_info *l, uint64_t now)
{
	struct view_sample s;

	if (!lh->based) {
		lh->base_stalls = h->reset ? l->stalls : 0;
		lh->based = 1;
	}
	if (!lh->len && !h->reset && l->first_ts && l->first_ts < now) {
		/* the kernel counted from attach: the first column starts there */
		memset(&s, 0, sizeof(s));
		s.t = l->first_ts;
		hist_push(lh, &s);
	}
	if (lh->len && now - hist_at(lh, lh->len - 1)->t < VIEW_PERIOD_NS)
		return;
	sample_of(&s, l, now);
	hist_push(lh, &s);
}

static void loop_fill(struct view_loop *out, const struct view_loop_hist *lh, const struct loop_info *l,
		      uint64_t now, uint64_t stall_ns, int exited)
{
	struct view_sample cur, d;
	const struct view_sample *base;
	uint64_t age = l->iter_start && now > l->iter_start ? now - l->iter_start : 0, live_part;
	size_t i, first;

	memset(out, 0, sizeof(*out));
	out->tid = l->tid;
	view_ascii_copy(out->name, sizeof(out->name), l->name[0] ? l->name : "?");
	if (exited)
		age = 0;
	sample_of(&cur, l, now);
	memset(&d, 0, sizeof(d));
	base = &cur;
	if (lh && lh->len) {
		base = hist_at(lh, 0);
		for (i = 0; i < lh->len; i++)
			if (hist_at(lh, i)->t + VIEW_WINDOW_NS <= now)
				base = hist_at(lh, i);
	}
	sample_diff(&d, &cur, base);
	out->span_ns = d.t;
	out->p50_ns = view_hist_percentile(d.hist, 50, l->max_ns);
	out->p99_ns = view_hist_percentile(d.hist, 99, l->max_ns);
	out->max_ns = view_hist_percentile(d.hist, 100, l->max_ns);
	if (age > out->max_ns)
		out->max_ns = age;
	live_part = age ? now - (l->iter_start > base->t ? l->iter_start : base->t) : 0;
	if (d.t) {
		out->busy = (double)(d.busy_ns + live_part) / (double)d.t;
		out->iter_rate = (double)d.iterations * 1e9 / (double)d.t;
	}
	if (out->busy > 1.0)
		out->busy = 1.0;
	out->stalls = lh && l->stalls >= lh->base_stalls ? l->stalls - lh->base_stalls : l->stalls;
	if (age && age >= stall_ns)
		out->live_ns = age;
	/* sparkline: one column per sampling period, the last one in progress */
	if (lh && lh->len) {
		first = lh->len > VIEW_SPARK_MAX ? lh->len - VIEW_SPARK_MAX : 0;
		for (i = first + 1; i < lh->len; i++) {
			uint64_t v;

			sample_diff(&d, hist_at(lh, i), hist_at(lh, i - 1));
			v = view_hist_percentile(d.hist, 100, l->max_ns);
			/* a long iteration shows in every period it lasted */
			if (hist_at(lh, i)->running_ns > v)
				v = hist_at(lh, i)->running_ns;
			out->spark[out->nspark++] = v;
		}
		sample_diff(&d, &cur, hist_at(lh, lh->len - 1));
		out->spark[out->nspark] = view_hist_percentile(d.hist, 100, l->max_ns);
		if (age > out->spark[out->nspark])
			out->spark[out->nspark] = age;
		out->nspark++;
	}
}

/* ------------------------------------------------------------------ */
/* snapshots                                                           */

void view_snap_init(struct view_snap *snap)
{
	memset(snap, 0, sizeof(*snap));
	snap->target.exit_status = -1;
}

void view_snap_free(struct view_snap *snap)
{
	if (!snap)
		return;
	free(snap->loops);
	free(snap->findings);
	free(snap->holder_names);
	view_snap_init(snap);
}

static int snap_reserve(struct view_snap *snap, size_t nloops, size_t nfindings)
{
	if (nloops > snap->caploops) {
		struct view_loop *v = realloc(snap->loops, nloops * sizeof(*v));

		if (!v)
			return -1;
		snap->loops = v;
		snap->caploops = nloops;
	}
	if (nfindings > snap->capfindings) {
		size_t cap = nfindings < 64 ? 64 : nfindings * 2;
		struct finding *v = realloc(snap->findings, cap * sizeof(*v));
		char (*hn)[MODEL_MAX_HOLDERS][32];

		if (!v)
			return -1;
		snap->findings = v;
		hn = realloc(snap->holder_names, cap * sizeof(*hn));
		if (!hn)
			return -1;
		snap->holder_names = hn;
		snap->capfindings = cap;
	}
	return 0;
}

int view_snap_take(struct view_snap *snap, struct view_history *h, const struct model *m,
		   const struct view_target *t, uint64_t now)
{
	const struct finding **reported = NULL;
	size_t i, nl = model_nloops(m), nf;

	/* the findings a report would show (e.g. GIL waits once one is long enough) */
	nf = model_findings_sorted(m, &reported);
	if (model_nfindings(m) && !reported)
		return -1;
	if (snap_reserve(snap, nl, nf) < 0) {
		free(reported);
		return -1;
	}
	snap->target = *t;
	view_ascii_copy(snap->target.command, sizeof(snap->target.command), t->command);
	view_ascii_copy(snap->target.runtime, sizeof(snap->target.runtime), t->runtime);
	snap->now = now;
	snap->stall_ns = model_cfg(m)->stall_ns;
	snap->block_ns = model_cfg(m)->block_ns;
	if (!h->ev_init || t->events < h->ev_n) {
		h->ev_init = 1;
		h->ev_t = now;
		h->ev_n = t->events;
	} else if (now - h->ev_t >= VIEW_PERIOD_NS) {
		h->ev_rate = (double)(t->events - h->ev_n) * 1e9 / (double)(now - h->ev_t);
		h->ev_t = now;
		h->ev_n = t->events;
	}
	snap->events_rate = h->ev_rate;
	snap->nloops = 0;
	for (i = 0; i < nl; i++) {
		const struct loop_info *l = model_loop_at(m, i);
		struct view_loop_hist *lh = history_loop(h, l->tid);
		struct view_loop *vl = &snap->loops[snap->nloops++];

		if (lh && !t->exited)
			history_note(h, lh, l, now);
		loop_fill(vl, lh, l, now, snap->stall_ns, t->exited);
		vl->live_what = 0;
		if (vl->live_ns) {
			const struct mstack *live = model_loop_live_stack(m, l->tid, l->iter_start);

			if (live && live->n)
				vl->live = live->f[0];
			if (l->live_iter && l->live_iter == l->iter_start) {
				vl->live_what = l->live_nr == -3 ? 2 : l->live_nr >= 0 ? 1 : 0;
				vl->live_nr = l->live_nr;
			}
		}
	}
	for (i = 0; i < nf; i++) {
		const struct finding *f = reported[i];
		int k;

		snap->findings[i] = *f;
		for (k = 0; k < MODEL_MAX_HOLDERS; k++) {
			const char *name = k < f->nholders ? model_thread_name(m, f->holders[k].tid) : NULL;

			view_ascii_copy(snap->holder_names[i][k], sizeof(snap->holder_names[i][k]), name ? name : "?");
		}
	}
	snap->nfindings = nf;
	free(reported);
	return 0;
}

void view_snap_dist(struct view_snap *snap, const struct model *m, const struct view_state *st)
{
	const struct finding *f = view_selected(snap, st);
	const struct timeline_ev *ev;
	uint64_t dropped;
	size_t n;

	memset(&snap->dist, 0, sizeof(snap->dist));
	if (!f)
		return;
	n = model_timeline(m, &ev, &dropped);
	view_dist_collect(&snap->dist, f, ev, n);
}

/* ------------------------------------------------------------------ */
/* state and keys                                                      */

void view_state_init(struct view_state *st, int ascii)
{
	memset(st, 0, sizeof(*st));
	st->ascii = ascii;
	st->page_rows = 1;
	st->detail_rows = 1;
}

void view_status(struct view_state *st, enum view_style style, uint64_t until, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(st->status, sizeof(st->status), fmt, ap);
	va_end(ap);
	st->status_style = style;
	st->status_until = until;
}

static void sel_move(struct view_state *st, const struct view_snap *snap, long delta)
{
	const struct finding **order;
	size_t n;
	long idx;

	if (!snap->nfindings)
		return;
	order = malloc(snap->nfindings * sizeof(*order));
	if (!order)
		return;
	n = view_order(snap, st, order);
	if (n) {
		idx = (long)sel_index(st, order, n) + delta;
		if (idx < 0)
			idx = 0;
		if (idx >= (long)n)
			idx = (long)n - 1;
		sel_set(&st->sel, order[idx]);
	}
	free(order);
}

enum view_effect view_apply(struct view_state *st, enum view_action a, const struct view_snap *snap)
{
	long page = st->page_rows > 1 ? st->page_rows : 1;

	if (a == VA_QUIT)
		return VE_QUIT;
	if (a == VA_NONE || a == VA_RESIZE)
		return VE_NONE;
	if (st->page == VIEW_HELP) {
		/* any key closes the help */
		st->page = st->help_from;
		return VE_NONE;
	}
	switch (a) {
	case VA_HELP:
		st->help_from = st->page;
		st->page = VIEW_HELP;
		return VE_NONE;
	case VA_PAUSE:
		st->paused = !st->paused;
		return VE_NONE;
	case VA_RESET:
		return VE_RESET;
	case VA_WRITE:
		return VE_WRITE;
	case VA_SORT:
		st->sort = (enum view_sort)((st->sort + 1) % VIEW_SORT_N);
		return VE_NONE;
	case VA_FILTER:
		/* a new filter, as in less and vim */
		st->page = VIEW_MAIN;
		st->editing = 1;
		st->filter[0] = '\0';
		return VE_NONE;
	default:
		break;
	}
	if (st->page == VIEW_DETAIL) {
		long dpage = st->detail_rows > 1 ? st->detail_rows : 1;

		switch (a) {
		case VA_UP: st->detail_scroll--; break;
		case VA_DOWN: st->detail_scroll++; break;
		case VA_PGUP: st->detail_scroll -= (int)dpage; break;
		case VA_PGDN: st->detail_scroll += (int)dpage; break;
		case VA_HOME: st->detail_scroll = 0; break;
		case VA_END: st->detail_scroll = 1 << 20; break; /* view_render clamps */
		case VA_BACK: st->page = VIEW_MAIN; break;
		default: break;
		}
		if (st->detail_scroll < 0)
			st->detail_scroll = 0;
		return VE_NONE;
	}
	switch (a) {
	case VA_UP: sel_move(st, snap, -1); break;
	case VA_DOWN: sel_move(st, snap, 1); break;
	case VA_PGUP: sel_move(st, snap, -page); break;
	case VA_PGDN: sel_move(st, snap, page); break;
	case VA_HOME: sel_move(st, snap, -(long)snap->nfindings - 1); break;
	case VA_END: sel_move(st, snap, (long)snap->nfindings + 1); break;
	case VA_OPEN: {
		const struct finding *f = view_selected(snap, st);

		if (f) {
			sel_set(&st->sel, f);
			st->page = VIEW_DETAIL;
			st->detail_scroll = 0;
		}
		break;
	}
	case VA_BACK:
		st->filter[0] = '\0';
		break;
	default:
		break;
	}
	return VE_NONE;
}

void view_input(struct view_state *st, int ch)
{
	size_t len = strlen(st->filter);

	if (ch == 27) {
		st->filter[0] = '\0';
		st->editing = 0;
	} else if (ch == '\n' || ch == '\r') {
		st->editing = 0;
	} else if (ch == '\b' || ch == 127) {
		if (len)
			st->filter[len - 1] = '\0';
	} else if (ch >= 0x20 && ch < 0x7f && len + 1 < sizeof(st->filter)) {
		st->filter[len] = (char)ch;
		st->filter[len + 1] = '\0';
	}
}

/* ------------------------------------------------------------------ */
/* line building                                                       */

int view_screen_resize(struct view_screen *scr, int rows, int cols)
{
	if (rows < 0)
		rows = 0;
	if (cols < 0)
		cols = 0;
	if (rows > VIEW_ROWS_MAX)
		rows = VIEW_ROWS_MAX;
	if (cols > VIEW_COLS_MAX)
		cols = VIEW_COLS_MAX;
	if (rows != scr->rows || !scr->line) {
		struct view_line *l = calloc(rows ? (size_t)rows : 1, sizeof(*l));

		if (!l)
			return -1;
		free(scr->line);
		scr->line = l;
	}
	scr->rows = rows;
	scr->cols = cols;
	return 0;
}

void view_screen_free(struct view_screen *scr)
{
	if (!scr)
		return;
	free(scr->line);
	scr->line = NULL;
	scr->rows = scr->cols = 0;
}

struct lb {
	struct view_line *l;
	size_t len;
	int w, cols;
};

static void lb_start(struct lb *b, struct view_line *l, int cols, enum view_style style)
{
	b->l = l;
	b->len = 0;
	b->w = 0;
	b->cols = cols;
	l->style = style;
	l->selected = 0;
	l->fill = style != VS_NORMAL && style != VS_DIM && style != VS_CRIT && style != VS_WARN &&
		  style != VS_INFO && style != VS_GOOD;
	l->nspans = 0;
	l->text[0] = '\0';
}

static void lb_text(struct lb *b, const char *s)
{
	while (s && *s && b->w < b->cols) {
		size_t c = utf8_len(s);

		if (b->len + c >= VIEW_LINE_MAX)
			break;
		memcpy(b->l->text + b->len, s, c);
		b->len += c;
		b->w++;
		s += c;
	}
	b->l->text[b->len] = '\0';
}

static void lb_textf(struct lb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void lb_textf(struct lb *b, const char *fmt, ...)
{
	char tmp[VIEW_LINE_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	lb_text(b, tmp);
}

static void lb_pad(struct lb *b, int col)
{
	while (b->w < col && b->w < b->cols)
		lb_text(b, " ");
}

/* s fitted into exactly width columns, then one space. */
static void lb_field(struct lb *b, const char *s, int width, int right, int keep_end)
{
	char tmp[VIEW_LINE_MAX];
	int w = view_fit(tmp, sizeof(tmp), s, width, keep_end), start = b->w;

	if (right)
		lb_pad(b, start + width - w);
	lb_text(b, tmp);
	lb_pad(b, start + width + 1);
}

static void lb_span(struct lb *b, size_t start, enum view_style style)
{
	struct view_line *l = b->l;

	if (l->nspans < VIEW_SPANS_MAX && b->len > start) {
		l->spans[l->nspans].start = (int)start;
		l->spans[l->nspans].end = (int)b->len;
		l->spans[l->nspans].style = style;
		l->nspans++;
	}
}

static const char *basename_of(const char *path)
{
	const char *s = path ? strrchr(path, '/') : NULL;

	return s ? s + 1 : path ? path : "?";
}

/* "function file.py:12" in width columns: the function first, then as
 * much of the file's end (and its line) as fits. */
static void where_fmt(char *buf, size_t n, const struct mframe *f, int width, int full_path)
{
	char fl[512], fit[512];
	const char *file;
	int uw;

	if (!f || !f->function) {
		view_fit(buf, n, "(no Python stack)", width, 0);
		return;
	}
	file = full_path ? (f->file ? f->file : "?") : basename_of(f->file);
	if (f->line >= 0)
		snprintf(fl, sizeof(fl), "%s:%d", file, f->line);
	else
		snprintf(fl, sizeof(fl), "%s:?", file);
	uw = view_width(f->function);
	if (uw + 1 + view_width(fl) <= width) {
		snprintf(buf, n, "%s %s", f->function, fl);
		return;
	}
	if (uw + 1 + 8 > width) {
		/* no room for a useful file: the function alone */
		view_fit(buf, n, f->function, width, 0);
		return;
	}
	view_fit(fit, sizeof(fit), fl, width - uw - 1, 1);
	snprintf(buf, n, "%s %s", f->function, fit);
}

static const char *loop_name_of(const struct view_snap *snap, uint32_t tid, char *buf, size_t n)
{
	size_t i;

	for (i = 0; i < snap->nloops; i++)
		if (snap->loops[i].tid == tid)
			return snap->loops[i].name;
	snprintf(buf, n, "tid %u", tid);
	return buf;
}

static struct view_line *line_at(struct view_screen *scr, int r)
{
	return &scr->line[r];
}

/* ------------------------------------------------------------------ */
/* header and footer                                                   */

static void header_render(struct lb *b, struct view_screen *scr, int r, const struct view_snap *snap,
			  const struct view_state *st, int second)
{
	const struct view_target *t = &snap->target;
	char a[32], c[32], d[32];

	if (!second) {
		int rw = view_width(t->runtime) + 1, left;

		lb_start(b, line_at(scr, r), scr->cols, VS_TITLE);
		lb_textf(b, " loopspy top  pid %d  ", t->pid);
		left = scr->cols - b->w;
		if (rw + 2 <= left - 8) {
			lb_field(b, t->command, left - rw - 2, 0, 0);
			lb_pad(b, scr->cols - rw);
			lb_text(b, t->runtime);
		} else {
			lb_text(b, t->command);
		}
		return;
	}
	lb_start(b, line_at(scr, r), scr->cols, VS_NORMAL);
	if (t->exited) {
		size_t s = b->len;

		if (t->exit_status >= 0)
			lb_textf(b, " TARGET EXITED (status %d) ", t->exit_status);
		else
			lb_text(b, " TARGET EXITED ");
		lb_span(b, s, VS_ERROR);
		lb_text(b, " ");
	}
	if (st->paused) {
		size_t s = b->len;

		lb_text(b, " PAUSED ");
		lb_span(b, s, VS_WARN);
		lb_text(b, " ");
	}
	view_uptime(a, sizeof(a), t->uptime_ns);
	view_rate(c, sizeof(c), snap->events_rate);
	lb_textf(b, " up %s  %s events/s  ", a, c);
	{
		size_t s = b->len;

		lb_textf(b, "%llu dropped", (unsigned long long)t->dropped);
		if (t->dropped)
			lb_span(b, s, VS_WARN);
	}
	view_dur(a, sizeof(a), snap->stall_ns);
	view_dur(d, sizeof(d), snap->block_ns);
	lb_textf(b, "  stall >= %s  block >= %s", a, d);
}

static void footer_render(struct lb *b, struct view_screen *scr, int r, const struct view_state *st)
{
	if (st->editing) {
		lb_start(b, line_at(scr, r), scr->cols, VS_STATUS);
		lb_textf(b, " filter: %s_   (Enter keeps it, Esc clears it)", st->filter);
		return;
	}
	if (st->status[0]) {
		lb_start(b, line_at(scr, r), scr->cols, st->status_style);
		b->l->fill = 1;
		lb_text(b, " ");
		lb_text(b, st->status);
		return;
	}
	lb_start(b, line_at(scr, r), scr->cols, VS_STATUS);
	if (st->paused)
		lb_text(b, " PAUSED (p resumes) ");
	switch (st->page) {
	case VIEW_DETAIL:
		lb_text(b, " Esc back  j/k scroll  w write JSON  ? help  q quit");
		break;
	case VIEW_HELP:
		lb_text(b, " any key: back  q quit");
		break;
	default:
		lb_text(b, " q quit  ? help  Enter detail  s sort  / filter  p pause  r reset  w write JSON");
		break;
	}
}

/* ------------------------------------------------------------------ */
/* main page                                                           */

static void dur_or_dash(char *buf, size_t n, uint64_t ns)
{
	if (ns)
		view_dur(buf, n, ns);
	else
		snprintf(buf, n, "-");
}

static void loops_colhead(struct lb *b, const int *w)
{
	int i;

	for (i = 0; i < LC_N; i++)
		if (w[i])
			lb_field(b, loop_cols[i].title, w[i], loop_cols[i].right, 0);
}

static void loop_row(struct lb *b, const struct view_snap *snap, const struct view_state *st,
		     const struct view_loop *l, const int *w)
{
	char v[LC_N][64], spark[VIEW_LINE_MAX];
	uint64_t top = 0;
	int i;

	snprintf(v[LC_TID], sizeof(v[0]), "%u", l->tid);
	snprintf(v[LC_NAME], sizeof(v[0]), "%s", l->name);
	if (l->span_ns)
		view_rate(v[LC_RATE], sizeof(v[0]), l->iter_rate);
	else
		snprintf(v[LC_RATE], sizeof(v[0]), "-");
	snprintf(v[LC_BUSY], sizeof(v[0]), "%.0f%%", l->busy * 100.0);
	dur_or_dash(v[LC_P50], sizeof(v[0]), l->p50_ns);
	dur_or_dash(v[LC_P99], sizeof(v[0]), l->p99_ns);
	dur_or_dash(v[LC_MAX], sizeof(v[0]), l->max_ns);
	view_count(v[LC_STALLS], sizeof(v[0]), l->stalls);
	for (i = 0; i < LC_N - 1; i++)
		if (w[i])
			lb_field(b, v[i], w[i], loop_cols[i].right, 0);
	if (w[LC_SPARK]) {
		size_t s = b->len;
		int sw = w[LC_SPARK] < VIEW_SPARK_MAX ? w[LC_SPARK] : VIEW_SPARK_MAX, k;

		for (k = 0; k < l->nspark; k++)
			if (l->spark[k] != VIEW_NODATA && l->spark[k] > top && k >= l->nspark - sw)
				top = l->spark[k];
		view_sparkline(spark, sizeof(spark), l->spark, l->nspark, sw, snap->stall_ns, st->ascii);
		lb_text(b, spark);
		lb_span(b, s, top >= snap->stall_ns ? VS_CRIT : top >= snap->stall_ns / 10 ? VS_WARN : VS_GOOD);
	}
}

static void live_row(struct lb *b, const struct view_loop *l)
{
	char d[32], where[VIEW_LINE_MAX];

	view_dur(d, sizeof(d), l->live_ns);
	lb_textf(b, "  >> STALLED %s", d);
	if (l->live.function) {
		lb_text(b, " in ");
		where_fmt(where, sizeof(where), &l->live, b->cols - b->w, 0);
		lb_text(b, where);
	} else {
		lb_text(b, " (no stack yet: blocked, or not sampled)");
	}
	if (l->live_what == 2) {
		lb_text(b, " (in GC)");
	} else if (l->live_what == 1) {
		const char *sc = syscall_name(l->live_nr);

		lb_textf(b, " (blocked in %s)", sc ? sc : "a syscall");
	}
}

static int loop_lines(const struct view_snap *snap)
{
	size_t i;
	int n = 0;

	for (i = 0; i < snap->nloops; i++)
		n += 1 + (snap->loops[i].live_ns != 0);
	return n ? n : 1;
}

/* The loops panel in rows [r, r + budget). */
static void loops_render(struct view_screen *scr, int r, int budget, const struct view_snap *snap,
			 const struct view_state *st)
{
	int w[LC_N], end = r + budget, titled = budget >= 3;
	struct lb b;
	size_t i;

	view_columns(loop_cols, LC_N, scr->cols, 8, w);
	if (titled) {
		lb_start(&b, line_at(scr, r++), scr->cols, VS_TITLE);
		lb_textf(&b, " LOOPS %zu   lag percentiles and max over the last %llu s", snap->nloops,
			 (unsigned long long)(VIEW_WINDOW_NS / S_NS));
		lb_start(&b, line_at(scr, r++), scr->cols, VS_COLHEAD);
		loops_colhead(&b, w);
	}
	if (!snap->nloops && r < end) {
		lb_start(&b, line_at(scr, r++), scr->cols, VS_DIM);
		lb_text(&b, snap->target.exited ? "  no event loop was seen" :
			"  waiting for an event loop (a thread waiting again and again on an epoll fd)...");
		return;
	}
	for (i = 0; i < snap->nloops && r < end; i++) {
		const struct view_loop *l = &snap->loops[i];
		int need = 1 + (l->live_ns != 0);
		size_t left = snap->nloops - i;

		if (titled && r + need > end - (left > 1) && left > 1) {
			lb_start(&b, line_at(scr, r++), scr->cols, VS_DIM);
			lb_textf(&b, "  +%zu more loops", left);
			return;
		}
		if (need == 2 && r + 1 == end) {
			/* one row left: the stall matters more than the numbers */
			lb_start(&b, line_at(scr, r++), scr->cols, VS_STALLED);
			live_row(&b, l);
			return;
		}
		lb_start(&b, line_at(scr, r++), scr->cols, VS_NORMAL);
		loop_row(&b, snap, st, l, w);
		if (l->live_ns && r < end) {
			lb_start(&b, line_at(scr, r++), scr->cols, VS_STALLED);
			live_row(&b, l);
		}
	}
}

static void finding_row(struct lb *b, const struct view_snap *snap, const struct finding *f, const int *w)
{
	char v[FC_N][VIEW_LINE_MAX / 2], nb[32];
	int i;

	snprintf(v[FC_KIND], sizeof(v[0]), "%s", finding_kind_name(f->kind));
	if (f->lock_kind[0])
		view_ascii_copy(v[FC_SYSCALL], sizeof(v[0]), f->lock_kind);
	else
		snprintf(v[FC_SYSCALL], sizeof(v[0]), "%s", f->nr != -1 ? report_syscall_label(f->nr) : "-");
	view_count(v[FC_COUNT], sizeof(v[0]), f->count);
	view_dur(v[FC_TOTAL], sizeof(v[0]), f->total_ns);
	view_dur(v[FC_MAX], sizeof(v[0]), f->max_ns);
	if (f->last_ts && snap->now >= f->last_ts)
		view_age(v[FC_LAST], sizeof(v[0]), snap->now - f->last_ts);
	else
		snprintf(v[FC_LAST], sizeof(v[0]), "-");
	snprintf(v[FC_LOOP], sizeof(v[0]), "%s", loop_name_of(snap, f->tid, nb, sizeof(nb)));
	where_fmt(v[FC_WHERE], sizeof(v[0]), f->stack.n ? &f->stack.f[0] : NULL, w[FC_WHERE], 0);
	for (i = 0; i < FC_N; i++)
		if (w[i])
			lb_field(b, v[i], w[i], finding_cols[i].right, 0);
}

static void findings_render(struct view_screen *scr, int r, int budget, const struct view_snap *snap,
			    struct view_state *st)
{
	const struct finding **order = NULL;
	int w[FC_N], end = r + budget, rows, sel = 0, i;
	size_t n = 0;
	struct lb b;

	if (budget <= 0)
		return;
	if (snap->nfindings) {
		order = malloc(snap->nfindings * sizeof(*order));
		if (order)
			n = view_order(snap, st, order);
	}
	/* the culprit's name matters more than the last columns */
	view_columns(finding_cols, FC_N, scr->cols, scr->cols / 3 < 12 ? 12 : scr->cols / 3 > 40 ? 40 : scr->cols / 3, w);
	lb_start(&b, line_at(scr, r++), scr->cols, VS_TITLE);
	lb_textf(&b, " FINDINGS %zu", n);
	if (st->filter[0])
		lb_textf(&b, " of %zu matching \"%s\"", snap->nfindings, st->filter);
	lb_textf(&b, "   sort: %s", view_sort_name(st->sort));
	if (budget >= 3) {
		lb_start(&b, line_at(scr, r++), scr->cols, VS_COLHEAD);
		for (i = 0; i < FC_N; i++)
			if (w[i])
				lb_field(&b, finding_cols[i].title, w[i], finding_cols[i].right, 0);
	}
	rows = end - r;
	st->page_rows = rows > 1 ? rows : 1;
	if (!n) {
		if (r < end) {
			char a[32], c[32];

			view_dur(a, sizeof(a), snap->stall_ns);
			view_dur(c, sizeof(c), snap->block_ns);
			lb_start(&b, line_at(scr, r), scr->cols, VS_DIM);
			if (snap->nfindings)
				lb_textf(&b, "  no finding matches \"%s\" (Esc clears the filter)", st->filter);
			else
				lb_textf(&b, "  no findings yet: stalls >= %s and blocking syscalls >= %s appear here", a, c);
		}
		free(order);
		return;
	}
	sel = (int)sel_index(st, order, n);
	if (rows > 0) {
		if (sel < st->scroll)
			st->scroll = sel;
		if (sel >= st->scroll + rows)
			st->scroll = sel - rows + 1;
		if (st->scroll > (int)n - rows)
			st->scroll = (int)n - rows;
		if (st->scroll < 0)
			st->scroll = 0;
	}
	for (i = st->scroll; i < (int)n && r < end; i++) {
		lb_start(&b, line_at(scr, r++), scr->cols, view_severity(order[i], snap->stall_ns));
		b.l->selected = i == sel;
		b.l->fill = b.l->selected;
		finding_row(&b, snap, order[i], w);
	}
	free(order);
}

static void main_render(struct view_screen *scr, int r, int end, const struct view_snap *snap,
			struct view_state *st)
{
	int body = end - r, lneed = 2 + loop_lines(snap), lb = lneed;
	int cap = body - (body / 2 < 3 ? body / 2 : 3);

	if (body <= 0)
		return;
	if (lb > cap)
		lb = cap;
	if (lb > 3 && lb > body * 2 / 3)
		lb = body * 2 / 3 > 3 ? body * 2 / 3 : 3;
	if (lb < 1)
		lb = 1;
	loops_render(scr, r, lb, snap, st);
	findings_render(scr, r + lb, body - lb, snap, st);
}

/* ------------------------------------------------------------------ */
/* detail and help pages: lines go through a sink that scrolls          */

struct sink {
	struct view_screen *scr;
	int row, end, skip, total;
	struct view_line scratch;
	struct lb b;
};

static struct lb *sink_line(struct sink *k, enum view_style style)
{
	struct view_line *l = &k->scratch;

	if (k->total >= k->skip && k->row < k->end)
		l = line_at(k->scr, k->row++);
	k->total++;
	lb_start(&k->b, l, k->scr->cols, style);
	return &k->b;
}

static const char *stack_status_note(int status)
{
	switch (status) {
	case LS_STACK_DISABLED: return "Python stacks are unavailable for this target";
	case LS_STACK_NO_TSTATE: return "the thread had no Python thread state";
	case LS_STACK_TRUNCATED: return "truncated: deeper than the frames walked";
	case LS_STACK_FAULT: return "a read failed while walking it";
	default: return NULL;
	}
}

static void detail_lines(struct sink *k, const struct view_snap *snap, const struct view_state *st,
			 const struct finding *f)
{
	char a[32], c[32], d[32], nb[32];
	uint64_t split;
	struct lb *b;
	int i;

	b = sink_line(k, view_severity(f, snap->stall_ns));
	view_dur(a, sizeof(a), f->total_ns);
	view_dur(c, sizeof(c), f->max_ns);
	view_dur(d, sizeof(d), f->count ? f->total_ns / f->count : 0);
	lb_textf(b, "  %s   count %llu   total %s   max %s   mean %s", finding_kind_name(f->kind),
		 (unsigned long long)f->count, a, c, d);
	b = sink_line(k, VS_NORMAL);
	lb_textf(b, "  loop %s (tid %u)", loop_name_of(snap, f->tid, nb, sizeof(nb)), f->tid);
	if (f->first_ts && snap->now >= f->first_ts) {
		view_age(a, sizeof(a), snap->now - f->first_ts);
		lb_textf(b, "   first seen %s", a);
	}
	if (f->last_ts && snap->now >= f->last_ts) {
		view_age(a, sizeof(a), snap->now - f->last_ts);
		lb_textf(b, "   last seen %s", a);
	}
	if (f->nr != -1 || f->fd_kind[0] || f->stalls || f->lock_kind[0] || f->kind == FINDING_GC_PAUSE) {
		b = sink_line(k, VS_NORMAL);
		lb_text(b, " ");
		if (f->lock_kind[0])
			lb_textf(b, " lock %.32s at 0x%llx ", f->lock_kind, (unsigned long long)f->lock_addr);
		else if (f->nr != -1)
			lb_textf(b, " syscall %s ", report_syscall_label(f->nr));
		if (f->kind == FINDING_GC_PAUSE && f->generation >= 0)
			lb_textf(b, " collector generation %d ", f->generation);
		if (f->fd_kind[0])
			lb_textf(b, "  fd kind %.16s ", f->fd_kind);
		if (f->stalls)
			lb_textf(b, "  loop stalls it explains: %llu", (unsigned long long)f->stalls);
	}
	if (f->nholders || f->unattributed_ns) {
		ptrdiff_t idx = f - snap->findings;

		sink_line(k, VS_NORMAL);
		b = sink_line(k, VS_COLHEAD);
		lb_text(b, "Holders: threads whose release ended the loop's waits");
		for (i = 0; i < f->nholders && i < MODEL_MAX_HOLDERS; i++) {
			const struct finding_holder *h = &f->holders[i];
			const char *hn = idx >= 0 && (size_t)idx < snap->nfindings ? snap->holder_names[idx][i] : "?";
			int j;

			view_dur(a, sizeof(a), h->wait_ns);
			b = sink_line(k, VS_NORMAL);
			lb_textf(b, "  tid %u \"%s\"  %s of the wait (%.0f%%) in %llu waits", h->tid, hn, a,
				 f->total_ns ? 100.0 * (double)h->wait_ns / (double)f->total_ns : 0.0,
				 (unsigned long long)h->waits);
			for (j = 0; j < h->stack.n && j < 3; j++) {
				char where[VIEW_LINE_MAX];

				b = sink_line(k, VS_DIM);
				where_fmt(where, sizeof(where), &h->stack.f[j], b->cols - 6, 1);
				lb_textf(b, "      %s", where);
			}
		}
		if (f->unattributed_ns) {
			view_dur(a, sizeof(a), f->unattributed_ns);
			b = sink_line(k, VS_NORMAL);
			lb_textf(b, "  %s ended by a timeout or outside the process", a);
		}
	}
	split = f->on_cpu_ns + f->blocked_ns + f->runnable_ns;
	if (split || f->samples) {
		static const char *const names[3] = { "on-CPU", "blocked", "runnable" };
		uint64_t v[3] = { f->on_cpu_ns, f->blocked_ns, f->runnable_ns };

		sink_line(k, VS_NORMAL);
		b = sink_line(k, VS_COLHEAD);
		lb_text(b, "Breakdown of the time");
		for (i = 0; i < 3; i++) {
			b = sink_line(k, VS_NORMAL);
			view_dur(a, sizeof(a), v[i]);
			lb_textf(b, "  %-10s %9s %4.0f%%", names[i], a,
				 split ? 100.0 * (double)v[i] / (double)split : 0.0);
		}
		{
			static const char *const parts[3] = { "GC", "lock wait", "GIL wait" };
			uint64_t pv[3] = { f->gc_ns, f->lock_wait_ns, f->gil_wait_ns };

			for (i = 0; i < 3; i++) {
				if (!pv[i])
					continue;
				b = sink_line(k, VS_NORMAL);
				view_dur(a, sizeof(a), pv[i]);
				lb_textf(b, "    of which %-9s %9s", parts[i], a);
			}
		}
		if (f->samples) {
			b = sink_line(k, VS_NORMAL);
			lb_textf(b, "  CPU samples %llu, %.0f%% at the top frame below", (unsigned long long)f->samples,
				 100.0 * (double)f->dominant_samples / (double)f->samples);
		}
	}
	if (f->nsys) {
		b = sink_line(k, VS_COLHEAD);
		lb_text(b, "Syscalls and waits inside");
		for (i = 0; i < f->nsys && i < MODEL_MAX_SYS; i++) {
			b = sink_line(k, VS_NORMAL);
			view_dur(a, sizeof(a), f->sys[i].blocked_ns);
			lb_textf(b, "  %-16s blocked %s in %llu sleeps, %llu CPU samples", report_syscall_label(f->sys[i].nr),
				 a, (unsigned long long)f->sys[i].count, (unsigned long long)f->sys[i].samples);
		}
	}
	sink_line(k, VS_NORMAL);
	b = sink_line(k, VS_COLHEAD);
	lb_text(b, "Python stack (innermost first)");
	if (stack_status_note(f->stack.status))
		lb_textf(b, "  [%s]", stack_status_note(f->stack.status));
	if (!f->stack.n) {
		b = sink_line(k, VS_DIM);
		lb_text(b, "  (no Python stack)");
	}
	for (i = 0; i < f->stack.n && i < MODEL_MAX_FRAMES; i++) {
		const struct mframe *fr = &f->stack.f[i];
		char where[VIEW_LINE_MAX];
		int fw = 30;

		b = sink_line(k, VS_NORMAL);
		lb_text(b, "  ");
		if (fr->function && view_width(fr->function) > fw && view_width(fr->function) < 60)
			fw = view_width(fr->function);
		lb_field(b, fr->function ? fr->function : "?", fw, 0, 0);
		if (fr->line >= 0)
			snprintf(where, sizeof(where), "%s:%d", fr->file ? fr->file : "?", fr->line);
		else
			snprintf(where, sizeof(where), "%s:?", fr->file ? fr->file : "?");
		{
			char fit[VIEW_LINE_MAX];

			view_fit(fit, sizeof(fit), where, b->cols - b->w, 1);
			lb_text(b, fit);
		}
	}
	sink_line(k, VS_NORMAL);
	b = sink_line(k, VS_COLHEAD);
	if (!snap->dist.available) {
		lb_text(b, "Durations: not kept for this kind of finding");
	} else if (!snap->dist.n) {
		lb_text(b, "Durations: none in the timeline (it keeps the most recent events)");
	} else {
		int lo = VIEW_DIST_N, hi = -1;
		uint64_t top = 0;

		lb_textf(b, "Durations of the last %llu events", (unsigned long long)snap->dist.n);
		for (i = 0; i < VIEW_DIST_N; i++) {
			if (!snap->dist.bucket[i])
				continue;
			if (i < lo)
				lo = i;
			hi = i;
			if (snap->dist.bucket[i] > top)
				top = snap->dist.bucket[i];
		}
		for (i = lo; i <= hi; i++) {
			char label[80];
			int bar = (int)((snap->dist.bucket[i] * 30 + top - 1) / top), j;

			view_dur(a, sizeof(a), view_dist_edge(i));
			if (i + 1 < VIEW_DIST_N) {
				view_dur(c, sizeof(c), view_dist_edge(i + 1));
				snprintf(label, sizeof(label), "%s - %s", a, c);
			} else {
				snprintf(label, sizeof(label), ">= %s", a);
			}
			b = sink_line(k, VS_NORMAL);
			lb_textf(b, "  %-20s %6llu ", label, (unsigned long long)snap->dist.bucket[i]);
			for (j = 0; j < bar; j++)
				lb_text(b, st->ascii ? "#" : "\u2588");
		}
	}
}

static void detail_render(struct view_screen *scr, int r, int end, const struct view_snap *snap,
			  struct view_state *st)
{
	const struct finding *f = view_selected(snap, st);
	struct sink *k;
	struct lb b;
	char nb[32];
	int rows;

	if (r >= end)
		return;
	lb_start(&b, line_at(scr, r++), scr->cols, VS_TITLE);
	if (f && sel_is(&st->sel, f))
		lb_textf(&b, " DETAIL  %s  loop %s", finding_kind_name(f->kind),
			 loop_name_of(snap, f->tid, nb, sizeof(nb)));
	else
		lb_text(&b, " DETAIL");
	if (!f || !sel_is(&st->sel, f)) {
		if (r < end) {
			lb_start(&b, line_at(scr, r), scr->cols, VS_DIM);
			lb_text(&b, "  this finding is gone (reset or filtered out); Esc goes back");
		}
		return;
	}
	k = calloc(1, sizeof(*k));
	if (!k)
		return;
	rows = end - r;
	st->detail_rows = rows > 1 ? rows : 1;
	/* count the lines first to clamp the scroll */
	k->scr = scr;
	k->row = k->end = r;
	detail_lines(k, snap, st, f);
	if (st->detail_scroll > k->total - rows)
		st->detail_scroll = k->total - rows;
	if (st->detail_scroll < 0)
		st->detail_scroll = 0;
	k->row = r;
	k->end = end;
	k->skip = st->detail_scroll;
	k->total = 0;
	detail_lines(k, snap, st, f);
	free(k);
}

static const char *const help_text[][2] = {
	{ "Up/k  Down/j", "move the selection (scroll in the detail view)" },
	{ "PgUp  PgDn", "a page up / down" },
	{ "Home/g  End/G", "first / last finding" },
	{ "Enter", "details of the selected finding: Python stack, breakdown, durations" },
	{ "Esc", "back; on the main page, clears the filter" },
	{ "s", "cycle the sort of findings: total, count, max, recent" },
	{ "/", "filter findings by function, file or syscall (Enter keeps, Esc clears)" },
	{ "p", "pause / resume the display (tracing goes on)" },
	{ "r", "reset: forget the findings and the loop history so far" },
	{ "w", "write a JSON report snapshot into the current directory" },
	{ "?  h  F1", "this help" },
	{ "q", "quit" },
};

static void help_render(struct view_screen *scr, int r, int end, const struct view_snap *snap,
			struct view_state *st)
{
	struct sink *k = calloc(1, sizeof(*k));
	char a[32], c[32];
	struct lb *b;
	size_t i;

	if (!k)
		return;
	k->scr = scr;
	k->row = r;
	k->end = end;
	view_dur(a, sizeof(a), snap->stall_ns);
	view_dur(c, sizeof(c), snap->block_ns);
	b = sink_line(k, VS_TITLE);
	lb_text(b, " HELP  Keys");
	for (i = 0; i < sizeof(help_text) / sizeof(help_text[0]); i++) {
		b = sink_line(k, VS_NORMAL);
		lb_textf(b, "  %-16s %s", help_text[i][0], help_text[i][1]);
	}
	sink_line(k, VS_NORMAL);
	b = sink_line(k, VS_COLHEAD);
	lb_text(b, "Panels");
	b = sink_line(k, VS_NORMAL);
	lb_textf(b, "  LOOPS: per event loop thread, lag (iteration length) p50/p99/max over the last %llu s,",
		 (unsigned long long)(VIEW_WINDOW_NS / S_NS));
	b = sink_line(k, VS_NORMAL);
	lb_text(b, "  busy %, iterations/s, stalls, and one column per second of max lag (log scale, full = stall).");
	b = sink_line(k, VS_NORMAL);
	lb_textf(b, "  >> STALLED: an iteration longer than %s is running right now, and where it is.", a);
	b = sink_line(k, VS_NORMAL);
	lb_textf(b, "  FINDINGS: red = stalled the loop (max >= %s), yellow = max >= a tenth of that.", a);
	b = sink_line(k, VS_NORMAL);
	lb_textf(b, "  Blocking syscalls count from %s; `w` writes the same JSON as `loopspy record -o`.", c);
	(void)st;
	free(k);
}

void view_render(struct view_state *st, const struct view_snap *snap, struct view_screen *scr, uint64_t now)
{
	struct lb b;
	int r = 0, i, end;

	if (st->status[0] && st->status_until && now >= st->status_until)
		st->status[0] = '\0';
	for (i = 0; i < scr->rows; i++)
		lb_start(&b, line_at(scr, i), scr->cols, VS_NORMAL);
	if (scr->rows <= 0 || scr->cols <= 0)
		return;
	end = scr->rows - 1;
	if (scr->rows >= 2)
		header_render(&b, scr, r++, snap, st, 0);
	if (scr->rows >= 5)
		header_render(&b, scr, r++, snap, st, 1);
	switch (st->page) {
	case VIEW_DETAIL:
		detail_render(scr, r, end, snap, st);
		break;
	case VIEW_HELP:
		help_render(scr, r, end, snap, st);
		break;
	default:
		main_render(scr, r, end, snap, st);
		break;
	}
	footer_render(&b, scr, scr->rows - 1, st);
}
