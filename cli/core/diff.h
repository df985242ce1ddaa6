/* Comparing two reports (`loopspy diff`, `--baseline`): finding sites are
 * matched across runs by kind, syscall, file name (last path component) and
 * function of the innermost user frame, the nearest line within
 * DIFF_LINE_SLACK lines; loops by thread name (then by order). */
#ifndef LOOPSPY_DIFF_H
#define LOOPSPY_DIFF_H
#include <stdio.h>
#include "report_read.h"

#define DIFF_LINE_SLACK 50
/* a loop's lag p99 must also grow by at least this much to regress */
#define DIFF_LAG_FLOOR_MS 1.0

enum diff_status {
	DIFF_NEW = 0,    /* only in the current report */
	DIFF_WORSE = 1,  /* count, total or max grew by more than max_regression */
	DIFF_GONE = 2,   /* only in the baseline */
	DIFF_SAME = 3,   /* in both, not worse */
};

struct diff_site {
	enum diff_status status;
	const struct report_site *a, *b; /* baseline, current; NULL when absent */
	double count_pct, total_pct, max_pct; /* growth, matched sites only */
};

struct diff_loop {
	const struct rloop *a, *b;   /* NULL when absent */
	double p99_pct;
	int regressed;
	size_t ord;                  /* position, for a stable order */
};

struct diff {
	struct report_sites sa, sb;  /* sites of the baseline, of the current report */
	enum diff_status *b_status;  /* per site of sb */
	struct diff_site *sites;     /* sorted: new, worse, gone, same; then by key */
	size_t nsites;
	struct diff_loop *loops;     /* sorted by thread name */
	size_t nloops;
	double max_regression;       /* percent; < 0: none given */
	size_t nnew, nworse, ngone, nsame, nregressed;
};

/* a: baseline, b: current. max_regression < 0: sites are never "worse" and
 * loops never regress (new sites still count). 0 or -1 (out of memory). */
int diff_compute(const struct report *a, const struct report *b, double max_regression, struct diff **out);
void diff_free(struct diff *d);
/* New sites, worse sites or regressed loops. */
int diff_failed(const struct diff *d);
/* Growth of b over a in percent (+inf when a is 0 and b is not). */
double diff_pct(double a, double b);
/* Deterministic text listing, one line per site and loop, then a verdict. */
void diff_write(FILE *out, const struct diff *d);

#endif
