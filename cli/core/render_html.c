/* One self-contained HTML page: no script, no external resource (a
 * Content-Security-Policy forbids both), inline SVG charts: loop-lag
 * histogram, per-site time bars, a flame graph of the stall stacks. */
#include "render.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define HTML_MAX_BARS 25
#define FLAME_W 1200.0
#define FLAME_ROW 18
#define FLAME_MIN_PX 0.5   /* narrower frames are not drawn */
#define FLAME_MAX_DEPTH 128

#define esc render_xml_text

static const char style[] =
	"body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1240px;"
	"padding:0 16px;color:#1f2328;background:#fff}\n"
	"h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d0d7de;"
	"padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}\n"
	".meta{color:#57606a;margin:0 0 12px}code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"
	"monospace;font-size:12.5px}\n"
	"table{border-collapse:collapse;margin:6px 0 12px}th,td{border:1px solid #d0d7de;padding:3px 8px;"
	"text-align:left;vertical-align:top;overflow-wrap:anywhere}th{background:#f6f8fa}"
	"td.n{text-align:right;white-space:nowrap}\n"
	".gate{padding:8px 12px;border-radius:6px;margin:12px 0}.gate.fail{background:#ffebe9;"
	"border:1px solid #ff8182}.gate.pass{background:#dafbe1;border:1px solid #4ac26b}\n"
	".fail{color:#cf222e;font-weight:600}.ok{color:#1a7f37}.lib{color:#8c959f}"
	"tr.site td{background:#fff8c5}\n"
	".note{background:#fff8c5;border:1px solid #d4a72c;padding:6px 10px;border-radius:6px}\n"
	"svg{display:block;max-width:100%;height:auto}svg text{font:11px ui-monospace,Menlo,Consolas,monospace}\n"
	"svg .axis{stroke:#8c959f;stroke-width:1}svg .bar{fill:#0969da}svg .bar2{fill:#cf222e}\n"
	"details{margin:4px 0}summary{cursor:pointer}\n";

static void svg_open(FILE *out, double w, double h, const char *label)
{
	fprintf(out, "<svg viewBox=\"0 0 %.0f %.0f\" width=\"%.0f\" height=\"%.0f\" role=\"img\" aria-label=\"", w, h, w,
		h);
	esc(out, label);
	fputs("\">\n", out);
}

static void head_write(FILE *out, const struct render_ctx *c)
{
	const struct report *r = c->r;
	char d[32];

	fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
	      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n"
	      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>loopspy: ", out);
	esc(out, r->command[0] ? r->command : "report");
	fprintf(out, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<h1>loopspy report</h1>\n<p class=\"meta\">", style);
	render_dur(d, sizeof(d), r->duration_ms);
	fputs("<code>", out);
	esc(out, r->command[0] ? r->command : "?");
	fprintf(out, "</code> · pid %ld", r->pid);
	if (r->runtime_name) {
		fputs(" · ", out);
		esc(out, r->runtime_name);
		if (r->runtime_version) {
			fputc(' ', out);
			esc(out, r->runtime_version);
		}
	}
	fprintf(out, " · %s recorded", d);
	if (r->started_at) {
		fputs(" from ", out);
		esc(out, r->started_at);
	}
	fprintf(out, " · %zu event loop%s · %zu finding site%s · %llu events, %llu dropped</p>\n", r->nloops,
		r->nloops == 1 ? "" : "s", c->sites->n, c->sites->n == 1 ? "" : "s", (unsigned long long)r->events,
		(unsigned long long)r->dropped_events);
	if (r->dropped_events)
		fputs("<p class=\"note\">Events were dropped (ring buffer full): counts are lower bounds.</p>\n", out);
	if (r->python_stacks == 0)
		fputs("<p class=\"note\">No Python stacks were available for this process.</p>\n", out);
}

static void gate_write(FILE *out, const struct render_ctx *c)
{
	const struct gate_result *v = c->verdict;
	size_t i;

	if (!v)
		return;
	fprintf(out, "<div class=\"gate %s\"><strong>Gate %s</strong>", v->n ? "fail" : "pass",
		v->n ? "failed" : "passed");
	if (v->n)
		fprintf(out, ": %zu violation%s%s", v->n, v->n == 1 ? "" : "s", c->gate ? " of" : "");
	else if (c->gate)
		fputc(':', out);
	for (i = 0; c->gate && i < c->gate->n; i++) {
		fputs(i ? ", <code>" : " <code>", out);
		esc(out, c->gate->rules[i].text);
		fputs("</code>", out);
	}
	if (c->baseline) {
		fputs(" (baseline <code>", out);
		esc(out, c->baseline);
		fputs("</code>)", out);
	}
	if (v->n) {
		fputs("<ul>\n", out);
		for (i = 0; i < v->n; i++) {
			fputs("<li>", out);
			esc(out, v->v[i].why);
			fputs("</li>\n", out);
		}
		fputs("</ul>", out);
	}
	fputs("</div>\n", out);
}

static void what_write(FILE *out, const struct report_site *s)
{
	esc(out, s->kind);
	if (s->syscall) {
		fputs(" <code>", out);
		esc(out, s->syscall);
		fputs("</code>", out);
	}
}

static void where_write(FILE *out, const struct render_ctx *c, const struct report_site *s)
{
	char fl[1024];

	if (!s->frame) {
		fputs("(no Python stack)", out);
		return;
	}
	render_file_line(fl, sizeof(fl), c, s->frame);
	fputs("<code>", out);
	esc(out, s->frame->function);
	fputs("</code> in <code>", out);
	esc(out, fl);
	fputs("</code>", out);
}

static void sites_table_write(FILE *out, const struct render_ctx *c)
{
	size_t i;

	fputs("<h2>Findings</h2>\n", out);
	if (!c->sites->n) {
		fputs("<p>No findings: the event loop was never blocked above the thresholds.</p>\n", out);
		return;
	}
	fprintf(out, "<table>\n<tr><th>#</th><th>finding</th><th>where</th><th>count</th><th>total</th><th>max</th>%s</tr>\n",
		c->verdict ? "<th>gate</th>" : "");
	for (i = 0; i < c->sites->n; i++) {
		const struct report_site *s = &c->sites->v[i];
		char t[32], m[32];

		render_dur(t, sizeof(t), s->total_ms);
		render_dur(m, sizeof(m), s->max_ms);
		fprintf(out, "<tr><td class=\"n\"><a href=\"#site-%zu\">%zu</a></td><td>", i + 1, i + 1);
		what_write(out, s);
		fputs("</td><td>", out);
		where_write(out, c, s);
		fprintf(out, "</td><td class=\"n\">%llu</td><td class=\"n\">%s</td><td class=\"n\">%s</td>",
			(unsigned long long)s->count, t, m);
		if (c->verdict)
			fputs(gate_site_violation(c->verdict, i) >= 0 ? "<td class=\"fail\">fail</td>" :
									 "<td class=\"ok\">ok</td>", out);
		fputs("</tr>\n", out);
	}
	fputs("</table>\n", out);
}

static void bin_label(char *buf, size_t n, double ms)
{
	if (ms >= 1000)
		snprintf(buf, n, "%gs", ms / 1000);
	else if (ms >= 1)
		snprintf(buf, n, "%gms", ms);
	else
		snprintf(buf, n, "%gus", ms * 1000);
}

/* Bars on a log scale (log10(count + 1)), one per bin of the histogram. */
static void hist_svg(FILE *out, const struct render_ctx *c, const struct rloop *l)
{
	const double w = 900, h = 220, left = 50, bottom = 40, top = 10;
	double maxv = 0, bw, y;
	char a[32], b[32], label[128];
	size_t i;

	for (i = 0; i < l->nhist; i++)
		if (log10((double)l->hist[i].count + 1) > maxv)
			maxv = log10((double)l->hist[i].count + 1);
	if (maxv <= 0)
		maxv = 1;
	snprintf(label, sizeof(label), "loop lag histogram of %s", l->thread_name);
	svg_open(out, w, h, label);
	bw = (w - left - 10) / (double)l->nhist;
	fprintf(out, "<line class=\"axis\" x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\"/>\n", left, h - bottom,
		w - 10, h - bottom);
	fprintf(out, "<line class=\"axis\" x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\"/>\n", left, top, left,
		h - bottom);
	for (y = 1; y <= maxv; y += 1)
		fprintf(out, "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%.0f</text>\n", left - 4,
			h - bottom - (y / maxv) * (h - bottom - top) + 4, pow(10, y));
	for (i = 0; i < l->nhist; i++) {
		double v = log10((double)l->hist[i].count + 1), bh = v / maxv * (h - bottom - top);
		double lo = i ? l->hist[i - 1].lt_ms : 0;
		int stall = c->r->stall_ms > 0 && lo >= c->r->stall_ms;

		render_dur(a, sizeof(a), lo);
		render_dur(b, sizeof(b), l->hist[i].lt_ms);
		fprintf(out, "<rect class=\"%s\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"><title>%s to %s: %llu iteration%s</title></rect>\n",
			stall ? "bar2" : "bar", left + (double)i * bw + 1, h - bottom - bh, bw > 3 ? bw - 2 : bw, bh, a, b,
			(unsigned long long)l->hist[i].count, l->hist[i].count == 1 ? "" : "s");
		if (i % 2 == 0 || l->nhist < 12) {
			bin_label(a, sizeof(a), l->hist[i].lt_ms);
			fprintf(out, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">&lt;%s</text>\n",
				left + ((double)i + 0.5) * bw, h - bottom + 14, a);
		}
	}
	fprintf(out, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">busy time per iteration (red: at or above the stall threshold); iterations, log scale</text>\n",
		w / 2, h - 6);
	fputs("</svg>\n", out);
}

/* Without a histogram in the report: p50, p99 and max on a log scale. */
static void pct_svg(FILE *out, const struct rloop *l)
{
	const double w = 600, row = 24, left = 60;
	const struct { const char *name; double v; } bars[] = {
		{ "p50", l->lag_p50 }, { "p99", l->lag_p99 }, { "max", l->lag_max },
	};
	double lo = 0.001, hi = 1;
	char a[32], label[128];
	size_t i;

	for (i = 0; i < 3; i++)
		if (bars[i].v > hi)
			hi = bars[i].v;
	snprintf(label, sizeof(label), "loop lag percentiles of %s", l->thread_name);
	svg_open(out, w, row * 3 + 24, label);
	for (i = 0; i < 3; i++) {
		double v = bars[i].v > lo ? bars[i].v : lo;
		double bw = (log10(v) - log10(lo)) / (log10(hi) - log10(lo)) * (w - left - 110);

		render_dur(a, sizeof(a), bars[i].v);
		fprintf(out, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\">%s</text>", left - 6, (double)i * row + 16,
			bars[i].name);
		fprintf(out, "<rect class=\"bar\" x=\"%.0f\" y=\"%.0f\" width=\"%.1f\" height=\"%.0f\"><title>lag %s: %s</title></rect>",
			left, (double)i * row + 4, bw > 1 ? bw : 1, row - 8, bars[i].name, a);
		fprintf(out, "<text x=\"%.1f\" y=\"%.0f\">%s</text>\n", left + (bw > 1 ? bw : 1) + 6, (double)i * row + 16, a);
	}
	fprintf(out, "<text x=\"%.0f\" y=\"%.0f\">iteration busy time, log scale (the report has no lag_histogram)</text>\n",
		left, row * 3 + 18);
	fputs("</svg>\n", out);
}

static void loops_write(FILE *out, const struct render_ctx *c)
{
	size_t i;

	fputs("<h2>Event loops</h2>\n", out);
	if (!c->r->nloops) {
		fputs("<p>No event loop was found (no thread waited repeatedly on an epoll fd).</p>\n", out);
		return;
	}
	fprintf(out, "<table>\n<tr><th>thread</th><th>tid</th><th>iterations</th><th>lag p50</th><th>lag p99</th>"
		"<th>lag max</th><th>busy</th><th>stalls</th><th>GIL wait</th>%s</tr>\n",
		c->verdict ? "<th>gate</th>" : "");
	for (i = 0; i < c->r->nloops; i++) {
		const struct rloop *l = &c->r->loops[i];
		char a[32], b[32], d[32], g[32];

		render_dur(a, sizeof(a), l->lag_p50);
		render_dur(b, sizeof(b), l->lag_p99);
		render_dur(d, sizeof(d), l->lag_max);
		render_dur(g, sizeof(g), l->gil_wait_ms);
		fputs("<tr><td>", out);
		esc(out, l->thread_name);
		fprintf(out, "</td><td class=\"n\">%ld</td><td class=\"n\">%llu</td><td class=\"n\">%s</td>"
			"<td class=\"n\">%s</td><td class=\"n\">%s</td><td class=\"n\">%.0f%%</td><td class=\"n\">%llu</td>"
			"<td class=\"n\">%s</td>", l->tid, (unsigned long long)l->iterations, a, b, d, l->busy_ratio * 100,
			(unsigned long long)l->stalls, g);
		if (c->verdict)
			fputs(gate_loop_violation(c->verdict, i) >= 0 ? "<td class=\"fail\">fail</td>" :
									 "<td class=\"ok\">ok</td>", out);
		fputs("</tr>\n", out);
	}
	fputs("</table>\n", out);
	for (i = 0; i < c->r->nloops; i++) {
		const struct rloop *l = &c->r->loops[i];

		fputs("<h3>Loop lag: ", out);
		esc(out, l->thread_name);
		fprintf(out, " (tid %ld)</h3>\n", l->tid);
		if (l->nhist)
			hist_svg(out, c, l);
		else
			pct_svg(out, l);
	}
}

/* Truncates s to at most max bytes at a UTF-8 character boundary. */
static size_t utf8_cut(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n <= max)
		return n;
	while (max && ((unsigned char)s[max] & 0xc0) == 0x80)
		max--;
	return max;
}

static void svg_label(FILE *out, const char *s, double px)
{
	size_t fit = px > 14 ? (size_t)((px - 6) / 6.7) : 0, n = strlen(s), cut;
	char buf[512];

	if (fit < 3)
		return;
	if (n <= fit) {
		esc(out, s);
		return;
	}
	cut = utf8_cut(s, fit - 2 < sizeof(buf) - 1 ? fit - 2 : sizeof(buf) - 1);
	memcpy(buf, s, cut);
	buf[cut] = 0;
	esc(out, buf);
	fputs("..", out);
}

static void bars_write(FILE *out, const struct render_ctx *c)
{
	const double w = 1000, row = 22, left = 380;
	double maxv = 0;
	size_t i, n = c->sites->n < HTML_MAX_BARS ? c->sites->n : HTML_MAX_BARS;
	char label[1200], t[32], m[32];

	if (!n)
		return;
	fputs("<h2>Time per finding site</h2>\n", out);
	for (i = 0; i < n; i++)
		if (c->sites->v[i].total_ms > maxv)
			maxv = c->sites->v[i].total_ms;
	if (maxv <= 0)
		maxv = 1;
	svg_open(out, w, row * (double)n + 8, "time per finding site");
	for (i = 0; i < n; i++) {
		const struct report_site *s = &c->sites->v[i];
		double y = row * (double)i + 4, tw = s->total_ms / maxv * (w - left - 200), mw = s->max_ms / maxv * (w - left - 200);
		char fl[1024];

		if (s->frame) {
			render_file_line(fl, sizeof(fl), c, s->frame);
			snprintf(label, sizeof(label), "%zu. %s%s%s %s", i + 1, s->kind, s->syscall ? " " : "",
				 s->syscall ? s->syscall : "", s->frame->function);
		} else {
			snprintf(fl, sizeof(fl), "(no Python stack)");
			snprintf(label, sizeof(label), "%zu. %s%s%s", i + 1, s->kind, s->syscall ? " " : "",
				 s->syscall ? s->syscall : "");
		}
		render_dur(t, sizeof(t), s->total_ms);
		render_dur(m, sizeof(m), s->max_ms);
		fprintf(out, "<g><title>");
		esc(out, label);
		fputs(" at ", out);
		esc(out, fl);
		fprintf(out, ": %llu times, total %s, max %s</title>", (unsigned long long)s->count, t, m);
		fprintf(out, "<text x=\"0\" y=\"%.0f\">", y + 13);
		svg_label(out, label, left - 8);
		fprintf(out, "</text><rect class=\"bar\" x=\"%.0f\" y=\"%.0f\" width=\"%.1f\" height=\"%.0f\"/>", left, y,
			tw > 1 ? tw : 1, row - 6);
		fprintf(out, "<rect class=\"bar2\" x=\"%.0f\" y=\"%.0f\" width=\"%.1f\" height=\"4\"/>", left,
			y + row - 10, mw > 1 ? mw : 1);
		fprintf(out, "<text x=\"%.1f\" y=\"%.0f\">%s (%llu×, max %s)</text></g>\n", left + (tw > 1 ? tw : 1) + 6,
			y + 13, t, (unsigned long long)s->count, m);
	}
	fputs("</svg>\n<p class=\"meta\">Blue: total time at the site; red: its longest single occurrence.</p>\n", out);
}

/* Flame graph of the stall stacks: a tree merged from outermost frames. */
struct fnode {
	char *label;
	int lib;
	double w;
	struct fnode *kids;
	size_t nkids, cap;
};

static void fnode_free(struct fnode *n)
{
	size_t i;

	for (i = 0; i < n->nkids; i++)
		fnode_free(&n->kids[i]);
	free(n->kids);
	free(n->label);
}

static struct fnode *fnode_child(struct fnode *n, const char *label, int lib)
{
	size_t i;

	for (i = 0; i < n->nkids; i++)
		if (!strcmp(n->kids[i].label, label))
			return &n->kids[i];
	if (n->nkids == n->cap) {
		size_t cap = n->cap ? n->cap * 2 : 4;
		struct fnode *k = realloc(n->kids, cap * sizeof(*k));

		if (!k)
			return NULL;
		n->kids = k;
		n->cap = cap;
	}
	memset(&n->kids[n->nkids], 0, sizeof(n->kids[0]));
	n->kids[n->nkids].label = strdup(label);
	n->kids[n->nkids].lib = lib;
	if (!n->kids[n->nkids].label)
		return NULL;
	return &n->kids[n->nkids++];
}

static int fnode_cmp(const void *a, const void *b)
{
	return strcmp(((const struct fnode *)a)->label, ((const struct fnode *)b)->label);
}

static int fnode_depth(struct fnode *n)
{
	size_t i;
	int d = 0;

	if (n->nkids > 1)
		qsort(n->kids, n->nkids, sizeof(*n->kids), fnode_cmp);
	for (i = 0; i < n->nkids; i++) {
		int k = fnode_depth(&n->kids[i]);

		if (k > d)
			d = k;
	}
	return d + 1;
}

static unsigned hash_str(const char *s)
{
	unsigned h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static void fnode_svg(FILE *out, const struct fnode *n, double x, int depth, double scale, double total,
		      int maxdepth, const char *unit)
{
	double w = n->w * scale, y = (double)(maxdepth - depth - 1) * FLAME_ROW, cx = x;
	unsigned h = hash_str(n->label);
	size_t i;

	if (w < FLAME_MIN_PX)
		return;
	/* user code warm (red..yellow), library code cool (blue..teal) */
	fprintf(out, "<g><title>");
	esc(out, n->label);
	fprintf(out, ": %g %s (%.1f%%)</title><rect x=\"%.2f\" y=\"%.0f\" width=\"%.2f\" height=\"%d\" rx=\"2\" fill=\"hsl(%u,%u%%,%u%%)\"/>",
		n->w, unit, total > 0 ? 100.0 * n->w / total : 0, x, y, w, FLAME_ROW - 1,
		n->lib ? 190 + h % 40 : h % 55, n->lib ? 35 + (h >> 8) % 20 : 75 + (h >> 8) % 20,
		n->lib ? 68 + (h >> 16) % 10 : 55 + (h >> 16) % 12);
	fprintf(out, "<text x=\"%.2f\" y=\"%.0f\">", x + 3, y + 13);
	svg_label(out, n->label, w);
	fputs("</text></g>\n", out);
	for (i = 0; i < n->nkids; i++) {
		fnode_svg(out, &n->kids[i], cx, depth + 1, scale, total, maxdepth, unit);
		cx += n->kids[i].w * scale;
	}
}

static int flame_write(FILE *out, const struct render_ctx *c)
{
	struct fnode root = { 0 };
	int by_samples = 0, depth, ret = -1;
	size_t i, j;
	char label[1200];

	for (i = 0; i < c->r->nfindings; i++)
		if (!strcmp(c->r->findings[i].kind, "stall") && c->r->findings[i].samples)
			by_samples = 1;
	fputs("<h2>Stall flame graph</h2>\n", out);
	root.label = strdup("all stalls");
	if (!root.label)
		return -1;
	for (i = 0; i < c->r->nfindings; i++) {
		const struct rfinding *f = &c->r->findings[i];
		double wt = by_samples ? (double)f->samples : f->total_ms;
		struct fnode *n = &root;

		if (strcmp(f->kind, "stall") || wt <= 0 || !f->nstack)
			continue;
		root.w += wt;
		/* the innermost FLAME_MAX_DEPTH frames: bounded recursion and
		 * height whatever the report holds */
		for (j = f->nstack < FLAME_MAX_DEPTH ? f->nstack : FLAME_MAX_DEPTH; j-- > 0;) {
			render_frame_label(label, sizeof(label), c, &f->stack[j]);
			n = fnode_child(n, label, report_frame_is_library(f->stack[j].file));
			if (!n)
				goto cleanup;
			n->w += wt;
		}
	}
	if (root.w <= 0) {
		fputs("<p>No stall with a Python stack was recorded.</p>\n", out);
		ret = 0;
		goto cleanup;
	}
	depth = fnode_depth(&root);
	fprintf(out, "<p class=\"meta\">Stacks of the stalls (outermost frame at the bottom), weighted by %s; warm colours are your code, blue ones the standard library and site-packages. Hover for numbers.</p>\n",
		by_samples ? "CPU samples taken during the stalls (each stall's dominant stack)" :
			     "stall time in ms (the report has no CPU samples)");
	svg_open(out, FLAME_W, (double)depth * FLAME_ROW, "flame graph of stall stacks");
	fnode_svg(out, &root, 0, 0, FLAME_W / root.w, root.w, depth, by_samples ? "samples" : "ms");
	fputs("</svg>\n", out);
	ret = 0;
cleanup:
	fnode_free(&root);
	return ret;
}

static void stack_table(FILE *out, const struct render_ctx *c, const struct report_site *s,
			const struct rframe *stack, size_t n)
{
	char fl[1024];
	size_t j;

	if (!n) {
		fputs("<p>(no Python stack)</p>\n", out);
		return;
	}
	fputs("<table class=\"mono\">\n<tr><th>#</th><th>function</th><th>file:line</th></tr>\n", out);
	for (j = 0; j < n; j++) {
		const struct rframe *fr = &stack[j];

		render_file_line(fl, sizeof(fl), c, fr);
		fprintf(out, "<tr%s><td class=\"n\">%zu</td><td>",
			s->frame == fr ? " class=\"site\"" : report_frame_is_library(fr->file) ? " class=\"lib\"" : "", j);
		esc(out, fr->function);
		fputs("</td><td>", out);
		esc(out, fl);
		fputs("</td></tr>\n", out);
	}
	fputs("</table>\n", out);
}

static void details_write(FILE *out, const struct render_ctx *c)
{
	size_t i, j;

	if (!c->sites->n)
		return;
	fputs("<h2>Finding details</h2>\n", out);
	for (i = 0; i < c->sites->n; i++) {
		const struct report_site *s = &c->sites->v[i];
		const struct rfinding *f = s->top;
		long vi = c->verdict ? gate_site_violation(c->verdict, i) : -1;
		char t[32], m[32], a[32], b[32], d[32];

		render_dur(t, sizeof(t), s->total_ms);
		render_dur(m, sizeof(m), s->max_ms);
		fprintf(out, "<section id=\"site-%zu\">\n<h3>%zu. ", i + 1, i + 1);
		what_write(out, s);
		if (s->frame) {
			fputs(" at ", out);
			where_write(out, c, s);
		}
		fputs("</h3>\n<p>", out);
		fprintf(out, "%llu×, total %s, max %s, loop ", (unsigned long long)s->count, t, m);
		esc(out, f->thread_name);
		if (f->fd_kind) {
			fputs(", on a ", out);
			esc(out, f->fd_kind);
		}
		if (f->has_breakdown) {
			render_dur(a, sizeof(a), f->on_cpu_ms);
			render_dur(b, sizeof(b), f->blocked_ms);
			render_dur(d, sizeof(d), f->runnable_ms);
			fprintf(out, "; on CPU %s, blocked %s, runnable %s", a, b, d);
			if (f->samples)
				fprintf(out, "; %llu CPU samples", (unsigned long long)f->samples);
			if (f->samples && f->dominant_share >= 0)
				fprintf(out, ", %.0f%% in this stack", f->dominant_share * 100);
			for (j = 0; j < f->nsys; j++) {
				fputs(j ? ", <code>" : "; in syscalls: <code>", out);
				esc(out, f->sys[j].syscall);
				render_dur(a, sizeof(a), f->sys[j].blocked_ms);
				fprintf(out, "</code> %s", a);
			}
		}
		fputs("</p>\n", out);
		if (vi >= 0) {
			fputs("<p class=\"fail\">Fails the gate: ", out);
			esc(out, c->verdict->v[vi].why);
			fputs("</p>\n", out);
		}
		if (f->lock_kind) {
			fputs("<p>Lock: <code>", out);
			esc(out, f->lock_kind);
			fputs("</code></p>\n", out);
		}
		if (f->generation >= 0)
			fprintf(out, "<p>Generation %ld</p>\n", f->generation);
		if (s->nfindings > 1)
			fprintf(out, "<p>%zu call paths lead here; the largest:</p>\n", s->nfindings);
		stack_table(out, c, s, f->stack, f->nstack);
		for (j = 0; j < f->nholders; j++) {
			const struct rholder *h = &f->holders[j];

			fputs("<p>Held by <code>", out);
			esc(out, h->thread_name[0] ? h->thread_name : "?");
			fprintf(out, "</code> (tid %ld): %.0f%% of the wait, %llu time%s; its stack when it released:</p>\n",
				h->tid, h->share * 100, (unsigned long long)h->waits, h->waits == 1 ? "" : "s");
			stack_table(out, c, s, h->stack, h->nstack);
		}
		fputs("</section>\n", out);
	}
}

int render_html(FILE *out, const struct render_ctx *c)
{
	head_write(out, c);
	gate_write(out, c);
	sites_table_write(out, c);
	bars_write(out, c);
	loops_write(out, c);
	if (flame_write(out, c) < 0)
		return -1;
	details_write(out, c);
	fputs("<p class=\"meta\">Innermost frame first; the highlighted row is the site (the innermost frame in your code); grey rows are the standard library and site-packages.</p>\n</body>\n</html>\n",
	      out);
	return ferror(out) ? -1 : 0;
}
