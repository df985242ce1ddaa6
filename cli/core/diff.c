#include "diff.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int line_delta(const struct report_site *a, const struct report_site *b)
{
	if (!a->frame || !b->frame || a->frame->line < 0 || b->frame->line < 0)
		return 0;
	return abs(a->frame->line - b->frame->line);
}

double diff_pct(double a, double b)
{
	if (a <= 0)
		return b > 0 ? INFINITY : 0;
	return (b - a) / a * 100.0;
}

struct cand {
	size_t a, b;
	int delta;
};

static int cand_cmp(const void *pa, const void *pb)
{
	const struct cand *x = pa, *y = pb;

	if (x->delta != y->delta)
		return x->delta - y->delta;
	if (x->b != y->b)
		return x->b < y->b ? -1 : 1;
	return x->a < y->a ? -1 : x->a > y->a;
}

static const struct report_site *entry_site(const struct diff_site *e)
{
	return e->b ? e->b : e->a;
}

static int entry_cmp(const void *pa, const void *pb)
{
	const struct diff_site *x = pa, *y = pb;
	const struct report_site *sx = entry_site(x), *sy = entry_site(y);
	int c;

	if (x->status != y->status)
		return (int)x->status - (int)y->status;
	if ((c = report_site_cmp(sx, sy, 1)))
		return c;
	if ((c = report_site_cmp_key(sx, sy)))
		return c;
	/* same key on both sides: order by the baseline's */
	if (x->a && y->a)
		return report_site_cmp_key(x->a, y->a);
	return 0;
}

static int loop_cmp(const void *pa, const void *pb)
{
	const struct diff_loop *x = pa, *y = pb;
	const struct rloop *lx = x->b ? x->b : x->a, *ly = y->b ? y->b : y->a;
	int c = strcmp(lx->thread_name, ly->thread_name);

	if (c)
		return c;
	/* then by order in the current report, then gone loops in the
	 * baseline's order */
	return x->ord < y->ord ? -1 : x->ord > y->ord;
}

static int sites_match(struct diff *d)
{
	size_t i, j, nc = 0, n = 0;
	struct cand *c = NULL;
	long *a_to = NULL, *b_to = NULL;
	int ret = -1;

	for (i = 0; i < d->sa.n; i++)
		for (j = 0; j < d->sb.n; j++)
			nc += !report_site_cmp(&d->sa.v[i], &d->sb.v[j], 1);
	c = malloc(sizeof(*c) * (nc ? nc : 1));
	nc = 0;
	a_to = malloc(sizeof(*a_to) * (d->sa.n ? d->sa.n : 1));
	b_to = malloc(sizeof(*b_to) * (d->sb.n ? d->sb.n : 1));
	d->sites = calloc(d->sa.n + d->sb.n + 1, sizeof(*d->sites));
	d->b_status = calloc(d->sb.n + 1, sizeof(*d->b_status));
	if (!c || !a_to || !b_to || !d->sites || !d->b_status)
		goto cleanup;
	for (i = 0; i < d->sa.n; i++)
		a_to[i] = -1;
	for (j = 0; j < d->sb.n; j++)
		b_to[j] = -1;
	for (i = 0; i < d->sa.n; i++) {
		for (j = 0; j < d->sb.n; j++) {
			int delta;

			if (report_site_cmp(&d->sa.v[i], &d->sb.v[j], 1))
				continue;
			delta = line_delta(&d->sa.v[i], &d->sb.v[j]);
			if (delta <= DIFF_LINE_SLACK)
				c[nc++] = (struct cand){ i, j, delta };
		}
	}
	qsort(c, nc, sizeof(*c), cand_cmp);
	for (i = 0; i < nc; i++) {
		if (a_to[c[i].a] >= 0 || b_to[c[i].b] >= 0)
			continue;
		a_to[c[i].a] = (long)c[i].b;
		b_to[c[i].b] = (long)c[i].a;
	}
	for (j = 0; j < d->sb.n; j++) {
		struct diff_site *e = &d->sites[n++];

		e->b = &d->sb.v[j];
		if (b_to[j] < 0) {
			e->status = DIFF_NEW;
			d->nnew++;
		} else {
			e->a = &d->sa.v[b_to[j]];
			e->count_pct = diff_pct((double)e->a->count, (double)e->b->count);
			e->total_pct = diff_pct(e->a->total_ms, e->b->total_ms);
			e->max_pct = diff_pct(e->a->max_ms, e->b->max_ms);
			if (d->max_regression >= 0 &&
			    (e->count_pct > d->max_regression || e->total_pct > d->max_regression ||
			     e->max_pct > d->max_regression)) {
				e->status = DIFF_WORSE;
				d->nworse++;
			} else {
				e->status = DIFF_SAME;
				d->nsame++;
			}
		}
		d->b_status[j] = e->status;
	}
	for (i = 0; i < d->sa.n; i++) {
		if (a_to[i] >= 0)
			continue;
		d->sites[n].a = &d->sa.v[i];
		d->sites[n++].status = DIFF_GONE;
		d->ngone++;
	}
	d->nsites = n;
	qsort(d->sites, n, sizeof(*d->sites), entry_cmp);
	ret = 0;
cleanup:
	free(c);
	free(a_to);
	free(b_to);
	return ret;
}

static int loops_match(struct diff *d, const struct report *a, const struct report *b)
{
	size_t i, j, n = 0;
	unsigned char *used = calloc(a->nloops + 1, 1);

	d->loops = calloc(a->nloops + b->nloops + 1, sizeof(*d->loops));
	if (!used || !d->loops) {
		free(used);
		return -1;
	}
	/* the k-th loop of a name in b pairs with the k-th of that name in a */
	for (j = 0; j < b->nloops; j++) {
		struct diff_loop *e = &d->loops[n++];

		e->b = &b->loops[j];
		e->ord = j;
		for (i = 0; i < a->nloops; i++) {
			if (!used[i] && !strcmp(a->loops[i].thread_name, e->b->thread_name)) {
				used[i] = 1;
				e->a = &a->loops[i];
				break;
			}
		}
		if (!e->a)
			continue;
		e->p99_pct = diff_pct(e->a->lag_p99, e->b->lag_p99);
		if (d->max_regression >= 0 && e->p99_pct > d->max_regression &&
		    e->b->lag_p99 - e->a->lag_p99 >= DIFF_LAG_FLOOR_MS) {
			e->regressed = 1;
			d->nregressed++;
		}
	}
	for (i = 0; i < a->nloops; i++)
		if (!used[i]) {
			d->loops[n].ord = b->nloops + i;
			d->loops[n++].a = &a->loops[i];
		}
	d->nloops = n;
	qsort(d->loops, n, sizeof(*d->loops), loop_cmp);
	free(used);
	return 0;
}

int diff_compute(const struct report *a, const struct report *b, double max_regression, struct diff **out)
{
	struct diff *d = calloc(1, sizeof(*d));
	int ret = -1;

	*out = NULL;
	if (!d)
		return -1;
	d->max_regression = max_regression;
	if (report_sites_build(a, &d->sa) < 0 || report_sites_build(b, &d->sb) < 0)
		goto cleanup;
	if (sites_match(d) < 0 || loops_match(d, a, b) < 0)
		goto cleanup;
	ret = 0;
cleanup:
	if (ret < 0)
		diff_free(d);
	else
		*out = d;
	return ret;
}

void diff_free(struct diff *d)
{
	if (!d)
		return;
	report_sites_free(&d->sa);
	report_sites_free(&d->sb);
	free(d->b_status);
	free(d->sites);
	free(d->loops);
	free(d);
}

int diff_failed(const struct diff *d)
{
	return d->nnew || d->nworse || d->nregressed;
}

static void pct_write(FILE *out, double pct)
{
	if (isinf(pct))
		fputs(" (new)", out);
	else
		fprintf(out, " (%+.1f%%)", pct);
}

static void site_write(FILE *out, const struct diff_site *e)
{
	static const char *const word[] = { "new  ", "worse", "gone ", "same " };
	const struct report_site *s = entry_site(e);
	char where[1024];

	report_site_describe(s, where, sizeof(where));
	fprintf(out, "%s  %s", word[e->status], where);
	if (!e->a || !e->b) {
		fprintf(out, ": count %llu, total %.3f ms, max %.3f ms\n", (unsigned long long)s->count,
			s->total_ms, s->max_ms);
		return;
	}
	fprintf(out, ": count %llu -> %llu", (unsigned long long)e->a->count, (unsigned long long)e->b->count);
	pct_write(out, e->count_pct);
	fprintf(out, ", total %.3f -> %.3f ms", e->a->total_ms, e->b->total_ms);
	pct_write(out, e->total_pct);
	fprintf(out, ", max %.3f -> %.3f ms", e->a->max_ms, e->b->max_ms);
	pct_write(out, e->max_pct);
	fputc('\n', out);
}

void diff_write(FILE *out, const struct diff *d)
{
	size_t i;

	fprintf(out, "sites: %zu new, %zu worse, %zu gone, %zu same; loops: %zu regressed",
		d->nnew, d->nworse, d->ngone, d->nsame, d->nregressed);
	if (d->max_regression >= 0)
		fprintf(out, " (max regression %g%%)\n", d->max_regression);
	else
		fputs(" (no --max-regression: only new sites fail)\n", out);
	for (i = 0; i < d->nsites; i++)
		site_write(out, &d->sites[i]);
	for (i = 0; i < d->nloops; i++) {
		const struct diff_loop *e = &d->loops[i];

		if (!e->a) {
			fprintf(out, "loop   %s: new loop, lag p99 %.3f ms\n", e->b->thread_name, e->b->lag_p99);
		} else if (!e->b) {
			fprintf(out, "loop   %s: gone, lag p99 was %.3f ms\n", e->a->thread_name, e->a->lag_p99);
		} else {
			fprintf(out, "loop   %s: lag p99 %.3f -> %.3f ms", e->b->thread_name, e->a->lag_p99,
				e->b->lag_p99);
			pct_write(out, e->p99_pct);
			fprintf(out, ", max %.3f -> %.3f ms%s\n", e->a->lag_max, e->b->lag_max,
				e->regressed ? "  REGRESSED" : "");
		}
	}
	fprintf(out, "result: %s\n", diff_failed(d) ? "FAIL" : "ok");
}
