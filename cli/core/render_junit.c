/* JUnit XML: a "findings" suite with one testcase per finding site and a
 * "loops" suite with one testcase per event loop. A testcase fails when
 * the gate (--fail-on, --baseline) has a violation there; without a gate
 * everything passes and the XML is a listing. */
#include "render.h"

#include <string.h>

#define x render_xml_text

static void stack_text(FILE *out, const struct render_ctx *c, const struct rframe *stack, size_t n)
{
	char fl[1024];
	size_t i;

	if (!n) {
		fputs("(no Python stack)\n", out);
		return;
	}
	for (i = 0; i < n; i++) {
		render_file_line(fl, sizeof(fl), c, &stack[i]);
		fputs("  ", out);
		x(out, stack[i].function);
		fputs("  ", out);
		x(out, fl);
		fputc('\n', out);
	}
}

static void name_write(FILE *out, const struct render_ctx *c, const struct report_site *s)
{
	char fl[1024];

	x(out, s->kind);
	if (s->syscall) {
		fputc(' ', out);
		x(out, s->syscall);
	}
	if (!s->frame) {
		fputs(" (no Python stack)", out);
		return;
	}
	render_file_line(fl, sizeof(fl), c, s->frame);
	fputs(" at ", out);
	x(out, s->frame->function);
	fputs(" (", out);
	x(out, fl);
	fputc(')', out);
}

/* <failure type="RULE" message="WHY">WHY — the caller closes it. */
static void failure_open(FILE *out, const struct render_ctx *c, long vi)
{
	const struct gate_violation *v = &c->verdict->v[vi];

	fputs("      <failure type=\"", out);
	x(out, v->rule >= 0 && c->gate ? c->gate->rules[v->rule].text : "baseline");
	fputs("\" message=\"", out);
	x(out, v->why);
	fputs("\">", out);
	x(out, v->why);
}

static size_t site_failures(const struct render_ctx *c)
{
	size_t i, n = 0;

	for (i = 0; c->verdict && i < c->sites->n; i++)
		n += gate_site_violation(c->verdict, i) >= 0;
	return n;
}

static size_t loop_failures(const struct render_ctx *c)
{
	size_t i, n = 0;

	for (i = 0; c->verdict && i < c->r->nloops; i++)
		n += gate_loop_violation(c->verdict, i) >= 0;
	return n;
}

static void findings_suite(FILE *out, const struct render_ctx *c, size_t failures)
{
	double total = 0;
	size_t i;

	for (i = 0; i < c->sites->n; i++)
		total += c->sites->v[i].total_ms;
	fprintf(out, "  <testsuite name=\"loopspy.findings\" tests=\"%zu\" failures=\"%zu\" errors=\"0\" skipped=\"0\" time=\"%.3f\">\n",
		c->sites->n, failures, total / 1000);
	for (i = 0; i < c->sites->n; i++) {
		const struct report_site *s = &c->sites->v[i];
		long vi = c->verdict ? gate_site_violation(c->verdict, i) : -1;

		fputs("    <testcase classname=\"loopspy.", out);
		x(out, s->kind);
		fputs("\" name=\"", out);
		name_write(out, c, s);
		fputc('"', out);
		if (s->frame) {
			fputs(" file=\"", out);
			x(out, render_path(c, s->frame->file));
			fputc('"', out);
			if (s->frame->line >= 0)
				fprintf(out, " line=\"%d\"", s->frame->line);
		}
		fprintf(out, " time=\"%.3f\">\n", s->total_ms / 1000);
		if (vi >= 0) {
			failure_open(out, c, vi);
			fputc('\n', out);
			stack_text(out, c, s->top->stack, s->top->nstack);
			fputs("</failure>\n", out);
		}
		fprintf(out, "      <system-out>%llu times, total %.3f ms, max %.3f ms, loop ", (unsigned long long)s->count,
			s->total_ms, s->max_ms);
		x(out, s->top->thread_name);
		fputs("\n", out);
		stack_text(out, c, s->top->stack, s->top->nstack);
		for (size_t h = 0; h < s->top->nholders; h++) {
			const struct rholder *ho = &s->top->holders[h];

			fputs("held by ", out);
			x(out, ho->thread_name);
			fprintf(out, " (tid %ld), %.0f%% of the wait:\n", ho->tid, ho->share * 100);
			stack_text(out, c, ho->stack, ho->nstack);
		}
		fputs("</system-out>\n    </testcase>\n", out);
	}
	fputs("  </testsuite>\n", out);
}

static void loops_suite(FILE *out, const struct render_ctx *c, size_t failures)
{
	size_t i;

	fprintf(out, "  <testsuite name=\"loopspy.loops\" tests=\"%zu\" failures=\"%zu\" errors=\"0\" skipped=\"0\" time=\"%.3f\">\n",
		c->r->nloops, failures, c->r->duration_ms / 1000);
	for (i = 0; i < c->r->nloops; i++) {
		const struct rloop *l = &c->r->loops[i];
		long vi = c->verdict ? gate_loop_violation(c->verdict, i) : -1;

		fputs("    <testcase classname=\"loopspy.loop\" name=\"loop ", out);
		x(out, l->thread_name);
		fprintf(out, "\" time=\"%.3f\">\n", c->r->duration_ms / 1000);
		if (vi >= 0) {
			failure_open(out, c, vi);
			fputs("</failure>\n", out);
		}
		fprintf(out, "      <system-out>tid %ld, %llu iterations, lag p50 %.3f ms, p99 %.3f ms, max %.3f ms, busy %.1f%%, %llu stalls</system-out>\n",
			l->tid, (unsigned long long)l->iterations, l->lag_p50, l->lag_p99, l->lag_max,
			l->busy_ratio * 100, (unsigned long long)l->stalls);
		fputs("    </testcase>\n", out);
	}
	fputs("  </testsuite>\n", out);
}

int render_junit(FILE *out, const struct render_ctx *c)
{
	size_t sf = site_failures(c), lf = loop_failures(c);

	fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", out);
	fprintf(out, "<testsuites name=\"loopspy\" tests=\"%zu\" failures=\"%zu\" errors=\"0\" time=\"%.3f\">\n",
		c->sites->n + c->r->nloops, sf + lf, c->r->duration_ms / 1000);
	findings_suite(out, c, sf);
	loops_suite(out, c, lf);
	fputs("</testsuites>\n", out);
	return ferror(out) ? -1 : 0;
}
