/* The CI gate: `--fail-on RULES` (docs/ci.md) and the baseline verdict.
 *
 *   RULES := RULE [, RULE]...
 *   RULE  := KIND                 any finding of that kind
 *          | KIND>DURATION        a finding site of that kind with max_ms above
 *          | KIND>PCT%            a loop spending more than PCT% of the
 *                                 recording in findings of that kind
 *                                 (gil_contention: loops[].gil_wait_ms)
 *          | lag_p50|lag_p99|lag_max>DURATION   a loop's lag above
 *          | busy>PCT%            a loop's busy_ratio above
 *   KIND  := stall | blocking_syscall | lock_contention | gil_contention | gc_pause
 *   DURATION: milliseconds by default, or 250us, 100ms, 0.5s ...
 */
#ifndef LOOPSPY_GATE_H
#define LOOPSPY_GATE_H
#include <stdio.h>
#include "diff.h"
#include "report_read.h"

enum gate_metric {
	GATE_KIND = 0,
	GATE_LAG_P50,
	GATE_LAG_P99,
	GATE_LAG_MAX,
	GATE_BUSY,
};

enum gate_cmp {
	GATE_ANY = 0,    /* no threshold */
	GATE_MS,         /* value in ms */
	GATE_PCT,        /* value in percent */
};

struct gate_rule {
	char text[64];   /* as written, for messages */
	enum gate_metric metric;
	const char *kind; /* GATE_KIND: one of report_kinds */
	enum gate_cmp cmp;
	double value;
};

struct gate {
	struct gate_rule *rules;
	size_t n;
};

/* 0, or -1 with the reason in err ("unknown rule 'stal' ..."). */
int gate_parse(const char *spec, struct gate **out, char *err, size_t errlen);
void gate_free(struct gate *g);

struct gate_violation {
	long site;       /* index in the sites, or -1 */
	long loop;       /* index in report->loops, or -1 */
	long rule;       /* index in gate->rules, -1 for a baseline regression */
	char *why;       /* one line */
};

struct gate_result {
	struct gate_violation *v;
	size_t n;
};

/* Evaluates rules g (may be NULL) on report r whose sites are `sites`; with
 * a baseline diff d (may be NULL; then sites must be &d->sb), finding rules
 * only count at sites that are new or worse, and without rules every new or
 * worse site and regressed loop is a violation; with rules, regressed loops
 * still are. 0, or -1 when out of memory. */
int gate_evaluate(const struct gate *g, const struct report *r, const struct report_sites *sites,
		  const struct diff *d, struct gate_result *res);
void gate_result_free(struct gate_result *res);
/* Index of the first violation at that site / loop, -1 when none. */
long gate_site_violation(const struct gate_result *res, size_t site);
long gate_loop_violation(const struct gate_result *res, size_t loop);
/* "loopspy: gate failed: N violations:" and one indented line each. */
void gate_result_write(FILE *out, const struct gate_result *res);

#endif
