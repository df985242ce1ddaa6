#define _GNU_SOURCE
#include "gate.h"
#include "units.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	const char *name;
	enum gate_metric metric;
} loop_metrics[] = {
	{ "lag_p50", GATE_LAG_P50 },
	{ "lag_p99", GATE_LAG_P99 },
	{ "lag_max", GATE_LAG_MAX },
	{ "busy", GATE_BUSY },
};

static void trim(const char **s, size_t *n)
{
	while (*n && (**s == ' ' || **s == '\t')) {
		(*s)++;
		(*n)--;
	}
	while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
		(*n)--;
}

static int rule_parse(const char *s, size_t n, struct gate_rule *r, char *err, size_t errlen)
{
	const char *gt;
	char name[64], value[64];
	size_t nn, i;

	trim(&s, &n);
	if (!n) {
		snprintf(err, errlen, "empty rule (two commas in a row, or a trailing comma?)");
		return -1;
	}
	if (n >= sizeof(r->text)) {
		snprintf(err, errlen, "rule '%.*s...' is too long", 20, s);
		return -1;
	}
	memcpy(r->text, s, n);
	r->text[n] = 0;
	gt = memchr(s, '>', n);
	nn = gt ? (size_t)(gt - s) : n;
	{
		const char *p = s;

		trim(&p, &nn);
		memcpy(name, p, nn);
		name[nn] = 0;
	}
	r->kind = NULL;
	for (i = 0; i < report_nkinds; i++)
		if (!strcmp(name, report_kinds[i]))
			r->kind = report_kinds[i];
	if (r->kind) {
		r->metric = GATE_KIND;
	} else {
		for (i = 0; i < sizeof(loop_metrics) / sizeof(loop_metrics[0]); i++)
			if (!strcmp(name, loop_metrics[i].name))
				break;
		if (i == sizeof(loop_metrics) / sizeof(loop_metrics[0])) {
			snprintf(err, errlen,
				 "unknown rule '%s': expected a finding kind (stall, blocking_syscall, lock_contention, "
				 "gil_contention, gc_pause) or lag_p50, lag_p99, lag_max, busy", r->text);
			return -1;
		}
		r->metric = loop_metrics[i].metric;
	}
	r->cmp = GATE_ANY;
	if (!gt) {
		if (r->metric != GATE_KIND) {
			snprintf(err, errlen, "rule '%s' needs a threshold (e.g. %s>%s)", r->text, name,
				 r->metric == GATE_BUSY ? "80%" : "20ms");
			return -1;
		}
		return 0;
	}
	{
		const char *v = gt + 1;
		size_t vn = n - (size_t)(v - s);
		char *end;

		trim(&v, &vn);
		memcpy(value, v, vn);
		value[vn] = 0;
		if (vn && value[vn - 1] == '%') {
			value[vn - 1] = 0;
			errno = 0;
			r->value = strtod(value, &end);
			if (errno || end == value || *end || !isfinite(r->value) || r->value < 0 || r->value > 100) {
				snprintf(err, errlen, "rule '%s': '%s%%' is not a percentage from 0 to 100", r->text, value);
				return -1;
			}
			r->cmp = GATE_PCT;
			if (r->metric != GATE_KIND && r->metric != GATE_BUSY) {
				snprintf(err, errlen, "rule '%s': %s takes a duration (e.g. %s>20ms), not a percentage",
					 r->text, name, name);
				return -1;
			}
		} else {
			uint64_t ns;

			if (duration_parse(value, 1000000ULL, &ns) < 0) {
				snprintf(err, errlen, "rule '%s': '%s' is not a duration (e.g. 100, 100ms, 0.5s) or a percentage (5%%)",
					 r->text, value);
				return -1;
			}
			r->value = (double)ns / 1e6;
			r->cmp = GATE_MS;
			if (r->metric == GATE_BUSY) {
				snprintf(err, errlen, "rule '%s': busy takes a percentage (e.g. busy>80%%)", r->text);
				return -1;
			}
		}
	}
	return 0;
}

int gate_parse(const char *spec, struct gate **out, char *err, size_t errlen)
{
	struct gate *g = calloc(1, sizeof(*g));
	const char *p = spec;
	size_t n = 1;
	int ret = -1;

	*out = NULL;
	if (!g) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (; *p; p++)
		n += *p == ',';
	g->rules = calloc(n, sizeof(*g->rules));
	if (!g->rules) {
		snprintf(err, errlen, "out of memory");
		goto cleanup;
	}
	for (p = spec;; ) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);

		if (rule_parse(p, len, &g->rules[g->n], err, errlen) < 0)
			goto cleanup;
		g->n++;
		if (!comma)
			break;
		p = comma + 1;
	}
	ret = 0;
cleanup:
	if (ret < 0)
		gate_free(g);
	else
		*out = g;
	return ret;
}

void gate_free(struct gate *g)
{
	if (!g)
		return;
	free(g->rules);
	free(g);
}

static int violation_add(struct gate_result *res, long site, long loop, long rule, const char *fmt, ...)
{
	struct gate_violation *v = realloc(res->v, sizeof(*v) * (res->n + 1));
	va_list ap;
	int rc;

	if (!v)
		return -1;
	res->v = v;
	v = &res->v[res->n];
	v->site = site;
	v->loop = loop;
	v->rule = rule;
	va_start(ap, fmt);
	rc = vasprintf(&v->why, fmt, ap);
	va_end(ap);
	if (rc < 0)
		return -1;
	res->n++;
	return 0;
}

static const char *baseline_note(const struct diff *d, size_t site)
{
	if (!d)
		return "";
	return d->b_status[site] == DIFF_NEW ? " (new since the baseline)" : " (worse than the baseline)";
}

static int kind_rule_sites(const struct gate_rule *rule, long ri, const struct report_sites *sites,
			   const struct diff *d, struct gate_result *res)
{
	size_t i;

	for (i = 0; i < sites->n; i++) {
		const struct report_site *s = &sites->v[i];
		char where[512];

		if (strcmp(s->kind, rule->kind))
			continue;
		if (d && d->b_status[i] != DIFF_NEW && d->b_status[i] != DIFF_WORSE)
			continue;
		if (rule->cmp == GATE_MS && !(s->max_ms > rule->value))
			continue;
		report_site_describe(s, where, sizeof(where));
		if (rule->cmp == GATE_MS) {
			if (violation_add(res, (long)i, -1, ri, "%s: %s: max %.3f ms > %g ms%s", rule->text, where,
					  s->max_ms, rule->value, baseline_note(d, i)) < 0)
				return -1;
		} else if (violation_add(res, (long)i, -1, ri, "%s: %s: %llu time%s, max %.3f ms%s", rule->text, where,
					 (unsigned long long)s->count, s->count == 1 ? "" : "s", s->max_ms,
					 baseline_note(d, i)) < 0) {
			return -1;
		}
	}
	return 0;
}

static int loop_rule(const struct gate_rule *rule, long ri, const struct report *r, struct gate_result *res)
{
	size_t i, j;

	for (i = 0; i < r->nloops; i++) {
		const struct rloop *l = &r->loops[i];
		const char *what;
		double v;

		switch (rule->metric) {
		case GATE_LAG_P50:
			v = l->lag_p50;
			what = "lag p50";
			break;
		case GATE_LAG_P99:
			v = l->lag_p99;
			what = "lag p99";
			break;
		case GATE_LAG_MAX:
			v = l->lag_max;
			what = "lag max";
			break;
		case GATE_BUSY:
			v = l->busy_ratio * 100.0;
			what = "busy";
			break;
		default: {
			/* KIND>PCT%: this loop's time in findings of the kind */
			double ms = 0;

			for (j = 0; j < r->nfindings; j++)
				if (r->findings[j].tid == l->tid && !strcmp(r->findings[j].kind, rule->kind))
					ms += r->findings[j].total_ms;
			if (!strcmp(rule->kind, "gil_contention") && l->gil_wait_ms > ms)
				ms = l->gil_wait_ms;
			v = r->duration_ms > 0 ? 100.0 * ms / r->duration_ms : 0;
			what = rule->kind;
			break;
		}
		}
		if (!(v > rule->value))
			continue;
		if (rule->cmp == GATE_PCT) {
			if (violation_add(res, -1, (long)i, ri, "%s: loop %s (tid %ld): %s %.1f%% of the recording > %g%%",
					  rule->text, l->thread_name, l->tid, what, v, rule->value) < 0)
				return -1;
		} else if (violation_add(res, -1, (long)i, ri, "%s: loop %s (tid %ld): %s %.3f ms > %g ms", rule->text,
					 l->thread_name, l->tid, what, v, rule->value) < 0) {
			return -1;
		}
	}
	return 0;
}

static int baseline_sites(const struct report_sites *sites, const struct diff *d, struct gate_result *res)
{
	size_t i;

	for (i = 0; i < d->nsites; i++) {
		const struct diff_site *e = &d->sites[i];
		char where[512];
		long si;

		if (e->status != DIFF_NEW && e->status != DIFF_WORSE)
			continue;
		si = (long)(e->b - sites->v);
		report_site_describe(e->b, where, sizeof(where));
		if (e->status == DIFF_NEW) {
			if (violation_add(res, si, -1, -1, "new since the baseline: %s: %llu time%s, max %.3f ms", where,
					  (unsigned long long)e->b->count, e->b->count == 1 ? "" : "s", e->b->max_ms) < 0)
				return -1;
		} else if (violation_add(res, si, -1, -1,
					 "worse than the baseline by more than %g%%: %s: count %llu -> %llu, total %.3f -> %.3f ms, max %.3f -> %.3f ms",
					 d->max_regression, where, (unsigned long long)e->a->count,
					 (unsigned long long)e->b->count, e->a->total_ms, e->b->total_ms, e->a->max_ms,
					 e->b->max_ms) < 0) {
			return -1;
		}
	}
	return 0;
}

static int baseline_loops(const struct report *r, const struct diff *d, struct gate_result *res)
{
	size_t i;

	for (i = 0; i < d->nloops; i++) {
		const struct diff_loop *e = &d->loops[i];

		if (!e->regressed)
			continue;
		if (violation_add(res, -1, (long)(e->b - r->loops), -1,
				  "worse than the baseline by more than %g%%: loop %s (tid %ld): lag p99 %.3f -> %.3f ms",
				  d->max_regression, e->b->thread_name, e->b->tid, e->a->lag_p99, e->b->lag_p99) < 0)
			return -1;
	}
	return 0;
}

int gate_evaluate(const struct gate *g, const struct report *r, const struct report_sites *sites,
		  const struct diff *d, struct gate_result *res)
{
	size_t i;

	memset(res, 0, sizeof(*res));
	for (i = 0; g && i < g->n; i++) {
		const struct gate_rule *rule = &g->rules[i];
		int rc;

		if (rule->metric == GATE_KIND && rule->cmp != GATE_PCT)
			rc = kind_rule_sites(rule, (long)i, sites, d, res);
		else
			rc = loop_rule(rule, (long)i, r, res);
		if (rc < 0)
			goto fail;
	}
	if (d && !g && baseline_sites(sites, d, res) < 0)
		goto fail;
	if (d && baseline_loops(r, d, res) < 0)
		goto fail;
	return 0;
fail:
	gate_result_free(res);
	return -1;
}

void gate_result_free(struct gate_result *res)
{
	size_t i;

	if (!res)
		return;
	for (i = 0; i < res->n; i++)
		free(res->v[i].why);
	free(res->v);
	res->v = NULL;
	res->n = 0;
}

long gate_site_violation(const struct gate_result *res, size_t site)
{
	size_t i;

	for (i = 0; res && i < res->n; i++)
		if (res->v[i].site == (long)site)
			return (long)i;
	return -1;
}

long gate_loop_violation(const struct gate_result *res, size_t loop)
{
	size_t i;

	for (i = 0; res && i < res->n; i++)
		if (res->v[i].loop == (long)loop)
			return (long)i;
	return -1;
}

void gate_result_write(FILE *out, const struct gate_result *res)
{
	size_t i;

	if (!res->n) {
		fprintf(out, "loopspy: gate passed\n");
		return;
	}
	fprintf(out, "loopspy: gate failed: %zu violation%s:\n", res->n, res->n == 1 ? "" : "s");
	for (i = 0; i < res->n; i++)
		fprintf(out, "  %s\n", res->v[i].why);
}
