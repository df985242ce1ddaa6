/* Markdown for a pull-request comment: summary table, gate verdict, loop
 * table, the top offenders with their stacks. */
#include "render.h"

#include <string.h>

#define MD_MAX_ROWS 50     /* sites in the summary table */
#define MD_MAX_TOP 10      /* sites shown with their stack */
#define MD_MAX_FRAMES 15

/* Text with Markdown punctuation escaped; control characters → space. */
static void md_text(FILE *out, const char *s)
{
	for (; *s; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			fputc(' ', out);
		else if (strchr("\\`*_[]<|~&$", *s))
			fprintf(out, "\\%c", *s);
		else
			fputc(*s, out);
	}
}

static size_t backtick_run(const char *s)
{
	size_t run = 0, best = 0;

	for (; *s; s++) {
		run = *s == '`' ? run + 1 : 0;
		if (run > best)
			best = run;
	}
	return best;
}

/* A code span that survives any content; in a table, '|' is escaped. */
static void md_code(FILE *out, const char *s, int in_table)
{
	size_t n = backtick_run(s) + 1, i;
	int pad = s[0] == '`' || s[0] == ' ' || (*s && (s[strlen(s) - 1] == '`' || s[strlen(s) - 1] == ' '));

	for (i = 0; i < n; i++)
		fputc('`', out);
	if (pad)
		fputc(' ', out);
	for (; *s; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			fputc(' ', out);
		else if (*s == '|' && in_table)
			fputs("\\|", out);
		else
			fputc(*s, out);
	}
	if (pad)
		fputc(' ', out);
	for (i = 0; i < n; i++)
		fputc('`', out);
}

static void where_write(FILE *out, const struct render_ctx *c, const struct report_site *s, int in_table)
{
	char fl[1024];

	if (!s->frame) {
		fputs("(no Python stack)", out);
		return;
	}
	render_file_line(fl, sizeof(fl), c, s->frame);
	md_code(out, s->frame->function, in_table);
	fputs(" in ", out);
	md_code(out, fl, in_table);
}

static void what_write(FILE *out, const struct report_site *s, int in_table)
{
	md_text(out, s->kind);
	if (s->syscall) {
		fputc(' ', out);
		md_code(out, s->syscall, in_table);
	}
}

static void header_write(FILE *out, const struct render_ctx *c)
{
	const struct report *r = c->r;
	char d[32];

	fprintf(out, "## loopspy: %zu finding%s", c->sites->n, c->sites->n == 1 ? "" : "s");
	fprintf(out, " on %zu event loop%s\n\n", r->nloops, r->nloops == 1 ? "" : "s");
	render_dur(d, sizeof(d), r->duration_ms);
	md_code(out, r->command[0] ? r->command : "?", 0);
	fprintf(out, " · pid %ld", r->pid);
	if (r->runtime_name) {
		fputs(" · ", out);
		md_text(out, r->runtime_name);
		if (r->runtime_version) {
			fputc(' ', out);
			md_text(out, r->runtime_version);
		}
	}
	fprintf(out, " · %s recorded · %llu events, %llu dropped\n\n", d, (unsigned long long)r->events,
		(unsigned long long)r->dropped_events);
	if (r->dropped_events)
		fputs("> **Note:** events were dropped (ring buffer full): counts are lower bounds.\n\n", out);
	if (r->python_stacks == 0)
		fputs("> **Note:** no Python stacks were available for this process.\n\n", out);
}

static void gate_write(FILE *out, const struct render_ctx *c)
{
	const struct gate_result *v = c->verdict;
	size_t i;

	if (!v)
		return;
	fprintf(out, "**Gate %s**", v->n ? "failed" : "passed");
	if (v->n)
		fprintf(out, ": %zu violation%s%s", v->n, v->n == 1 ? "" : "s", c->gate ? " of" : "");
	else if (c->gate)
		fputc(':', out);
	for (i = 0; c->gate && i < c->gate->n; i++) {
		fputs(i ? ", " : " ", out);
		md_code(out, c->gate->rules[i].text, 0);
	}
	if (c->baseline) {
		fputs(" (baseline ", out);
		md_code(out, c->baseline, 0);
		fputc(')', out);
	}
	fputs("\n\n", out);
	for (i = 0; i < v->n; i++) {
		fputs("- ", out);
		md_text(out, v->v[i].why);
		fputc('\n', out);
	}
	if (v->n)
		fputc('\n', out);
}

static void table_write(FILE *out, const struct render_ctx *c)
{
	size_t i;

	if (!c->sites->n) {
		fputs("No findings: the event loop was never blocked above the thresholds", out);
		if (c->r->stall_ms >= 0 && c->r->block_ms >= 0)
			fprintf(out, " (stall %g ms, blocking syscall %g ms)", c->r->stall_ms, c->r->block_ms);
		fputs(".\n\n", out);
		return;
	}
	fprintf(out, "| # | finding | where | count | total | max |%s\n", c->verdict ? " gate |" : "");
	fprintf(out, "|--:|---|---|--:|--:|--:|%s\n", c->verdict ? ":-:|" : "");
	for (i = 0; i < c->sites->n && i < MD_MAX_ROWS; i++) {
		const struct report_site *s = &c->sites->v[i];
		char t[32], m[32];

		render_dur(t, sizeof(t), s->total_ms);
		render_dur(m, sizeof(m), s->max_ms);
		fprintf(out, "| %zu | ", i + 1);
		what_write(out, s, 1);
		fputs(" | ", out);
		where_write(out, c, s, 1);
		fprintf(out, " | %llu | %s | %s |", (unsigned long long)s->count, t, m);
		if (c->verdict)
			fputs(gate_site_violation(c->verdict, i) >= 0 ? " **fail** |" : " ok |", out);
		fputc('\n', out);
	}
	if (c->sites->n > MD_MAX_ROWS)
		fprintf(out, "\n… and %zu more sites (see the HTML or JSON report).\n", c->sites->n - MD_MAX_ROWS);
	fputc('\n', out);
}

static void loops_write(FILE *out, const struct render_ctx *c)
{
	size_t i;

	if (!c->r->nloops) {
		fputs("### Event loops\n\nNo event loop was found (no thread waited repeatedly on an epoll fd).\n\n", out);
		return;
	}
	fputs("### Event loops\n\n| thread | tid | iterations | lag p50 | lag p99 | lag max | busy | stalls |\n"
	      "|---|--:|--:|--:|--:|--:|--:|--:|\n", out);
	for (i = 0; i < c->r->nloops; i++) {
		const struct rloop *l = &c->r->loops[i];
		char a[32], b[32], d[32];

		render_dur(a, sizeof(a), l->lag_p50);
		render_dur(b, sizeof(b), l->lag_p99);
		render_dur(d, sizeof(d), l->lag_max);
		fputs("| ", out);
		md_text(out, l->thread_name);
		fprintf(out, " | %ld | %llu | %s | %s | %s | %.0f%% | %llu |\n", l->tid,
			(unsigned long long)l->iterations, a, b, d, l->busy_ratio * 100, (unsigned long long)l->stalls);
	}
	fputc('\n', out);
}

static void stack_write(FILE *out, const struct render_ctx *c, const struct rfinding *f)
{
	size_t i, width = 0, fence;
	char fl[1024];

	if (!f->nstack) {
		fputs("(no Python stack)\n\n", out);
		return;
	}
	fence = 3;
	for (i = 0; i < f->nstack && i < MD_MAX_FRAMES; i++) {
		size_t w = strlen(f->stack[i].function), bt = backtick_run(f->stack[i].function);

		if (w > width)
			width = w;
		if (bt >= fence)
			fence = bt + 1;
		if ((bt = backtick_run(f->stack[i].file)) >= fence)
			fence = bt + 1;
	}
	if (width > 40)
		width = 40;
	for (i = 0; i < fence; i++)
		fputc('`', out);
	fputc('\n', out);
	for (i = 0; i < f->nstack && i < MD_MAX_FRAMES; i++) {
		const char *p;

		render_file_line(fl, sizeof(fl), c, &f->stack[i]);
		for (p = f->stack[i].function; *p; p++)
			fputc((unsigned char)*p < 0x20 || *p == 0x7f ? ' ' : *p, out);
		fprintf(out, "%*s  ", (int)(width - (strlen(f->stack[i].function) < width ? strlen(f->stack[i].function) : width)), "");
		for (p = fl; *p; p++)
			fputc((unsigned char)*p < 0x20 || *p == 0x7f ? ' ' : *p, out);
		fputc('\n', out);
	}
	if (f->nstack > MD_MAX_FRAMES)
		fprintf(out, "... %zu more frames\n", f->nstack - MD_MAX_FRAMES);
	for (i = 0; i < fence; i++)
		fputc('`', out);
	fputs("\n\n", out);
}

/* Lock and GIL contention: the threads whose release woke the loop. */
static void holders_write(FILE *out, const struct render_ctx *c, const struct rfinding *f)
{
	char fl[1024];
	size_t i, j;

	if (f->lock_kind) {
		fputs("Lock: ", out);
		md_code(out, f->lock_kind, 0);
		fputs(f->nholders ? ". Held by:\n\n" : ".\n\n", out);
	} else if (f->nholders) {
		fputs("Held by:\n\n", out);
	}
	for (i = 0; i < f->nholders; i++) {
		const struct rholder *h = &f->holders[i];

		fputs("- ", out);
		md_text(out, h->thread_name[0] ? h->thread_name : "?");
		fprintf(out, " (tid %ld): %.0f%% of the wait, %llu time%s", h->tid, h->share * 100,
			(unsigned long long)h->waits, h->waits == 1 ? "" : "s");
		for (j = 0; j < h->nstack; j++) {
			if (report_frame_is_library(h->stack[j].file) && j + 1 < h->nstack)
				continue;
			render_file_line(fl, sizeof(fl), c, &h->stack[j]);
			fputs(", at ", out);
			md_code(out, h->stack[j].function, 0);
			fputs(" in ", out);
			md_code(out, fl, 0);
			break;
		}
		fputc('\n', out);
	}
	if (f->nholders)
		fputc('\n', out);
}

static void top_write(FILE *out, const struct render_ctx *c)
{
	size_t i, j;

	if (!c->sites->n)
		return;
	fputs("### Top offenders\n\n", out);
	for (i = 0; i < c->sites->n && i < MD_MAX_TOP; i++) {
		const struct report_site *s = &c->sites->v[i];
		const struct rfinding *f = s->top;
		char t[32], m[32], a[32], b[32], d[32];

		render_dur(t, sizeof(t), s->total_ms);
		render_dur(m, sizeof(m), s->max_ms);
		fprintf(out, "**%zu. ", i + 1);
		what_write(out, s, 0);
		fputs("**", out);
		if (s->frame) {
			fputs(" at ", out);
			where_write(out, c, s, 0);
		}
		fprintf(out, " — %llu×, total %s, max %s, loop ", (unsigned long long)s->count, t, m);
		md_text(out, f->thread_name);
		if (c->verdict && gate_site_violation(c->verdict, i) >= 0)
			fputs(" — **fails the gate**", out);
		fputs("\n\n", out);
		if (f->has_breakdown) {
			render_dur(a, sizeof(a), f->on_cpu_ms);
			render_dur(b, sizeof(b), f->blocked_ms);
			render_dur(d, sizeof(d), f->runnable_ms);
			fprintf(out, "On CPU %s, blocked %s, runnable %s", a, b, d);
			if (f->samples) {
				fprintf(out, "; %llu CPU sample%s", (unsigned long long)f->samples, f->samples == 1 ? "" : "s");
				if (f->dominant_share >= 0)
					fprintf(out, ", %.0f%% in this stack", f->dominant_share * 100);
			}
			for (j = 0; j < f->nsys; j++) {
				fputs(j ? ", " : "; in syscalls: ", out);
				md_code(out, f->sys[j].syscall, 0);
				render_dur(a, sizeof(a), f->sys[j].blocked_ms);
				fprintf(out, " %s", a);
			}
			fputs(".\n\n", out);
		}
		holders_write(out, c, f);
		if (s->nfindings > 1)
			fprintf(out, "%zu call paths lead here; the largest:\n\n", s->nfindings);
		stack_write(out, c, f);
	}
	if (c->sites->n > MD_MAX_TOP)
		fprintf(out, "%zu more sites without their stacks here: see the HTML or JSON report.\n\n",
			c->sites->n - MD_MAX_TOP);
}

int render_md(FILE *out, const struct render_ctx *c)
{
	header_write(out, c);
	gate_write(out, c);
	table_write(out, c);
	loops_write(out, c);
	top_write(out, c);
	return ferror(out) ? -1 : 0;
}
