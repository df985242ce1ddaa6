/* Renderers of a recording: JSON (the contract, docs/report-schema.md) and
 * the human summary printed by record/run. */
#ifndef LOOPSPY_REPORT_H
#define LOOPSPY_REPORT_H
#include <stdint.h>
#include <stdio.h>
#include "model.h"

#define REPORT_SCHEMA "loopspy-report/1"

struct report_meta {
	int pid;
	const char *command;
	const char *runtime_name;     /* "cpython" or "unknown" */
	const char *runtime_version;  /* NULL when unknown */
	const char *runtime_path;
	int stacks;                   /* Python stacks were available */
	const char *stacks_reason;    /* why not, when !stacks */
	const char *started_at;       /* ISO 8601 UTC */
	uint64_t duration_ns;
	uint64_t dropped_events;
	uint64_t events;
	const char *end_reason;       /* "duration", "signal", "target_exit" */
	int exit_status;              /* traced command's status, -1 when none */
	const char *version;          /* loopspy's */
	const char *gc_timing;        /* "usdt python:gc__start/gc__done", "uprobe ...", "unavailable: why" */
};

/* Malloc'd JSON text, NULL on allocation failure. */
char *report_json_render(const struct model *m, const struct report_meta *meta);
void report_summary_write(FILE *out, const struct model *m, const struct report_meta *meta);

/* "clock_nanosleep", "gil", "(no syscall)" */
const char *report_syscall_label(int nr);

#endif
