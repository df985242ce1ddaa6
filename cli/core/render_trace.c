/* Chrome trace-event JSON (Perfetto UI, chrome://tracing): the report's
 * timeline — stalls, blocking syscalls, GIL and lock waits, GC pauses — as
 * complete ("X") events on one track per loop thread. Iterations shorter
 * than the stall threshold are not in the timeline (the kernel aggregates
 * them into the lag histogram). */
#include "render.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static cJSON *meta_event(const char *name, long pid, long tid, const char *value)
{
	cJSON *e = cJSON_CreateObject(), *args;

	cJSON_AddStringToObject(e, "name", name);
	cJSON_AddStringToObject(e, "ph", "M");
	cJSON_AddNumberToObject(e, "pid", (double)pid);
	cJSON_AddNumberToObject(e, "tid", (double)tid);
	args = cJSON_AddObjectToObject(e, "args");
	cJSON_AddStringToObject(args, "name", value);
	return e;
}

static int tid_named(const struct report *r, long tid, size_t upto)
{
	size_t i;

	for (i = 0; i < r->nloops; i++)
		if (r->loops[i].tid == tid)
			return 1;
	for (i = 0; i < upto; i++)
		if (r->timeline[i].tid == tid)
			return 1;
	return 0;
}

int render_trace(FILE *out, const struct render_ctx *c)
{
	const struct report *r = c->r;
	cJSON *root = cJSON_CreateObject(), *evs, *other;
	char name[300];
	size_t i;

	if (!root)
		return -1;
	evs = cJSON_AddArrayToObject(root, "traceEvents");
	cJSON_AddItemToArray(evs, meta_event("process_name", r->pid, 0, r->command[0] ? r->command : "python"));
	for (i = 0; i < r->nloops; i++)
		cJSON_AddItemToArray(evs, meta_event("thread_name", r->pid, r->loops[i].tid, r->loops[i].thread_name));
	for (i = 0; i < r->ntimeline; i++) {
		const struct revent *ev = &r->timeline[i];

		if (!tid_named(r, ev->tid, i)) {
			snprintf(name, sizeof(name), "thread %ld", ev->tid);
			cJSON_AddItemToArray(evs, meta_event("thread_name", r->pid, ev->tid, name));
		}
	}
	for (i = 0; i < r->ntimeline; i++) {
		const struct revent *ev = &r->timeline[i];
		cJSON *e = cJSON_CreateObject(), *args;

		if (ev->syscall)
			snprintf(name, sizeof(name), "%s %s", ev->kind, ev->syscall);
		else
			snprintf(name, sizeof(name), "%s", ev->kind);
		cJSON_AddStringToObject(e, "name", name);
		cJSON_AddStringToObject(e, "cat", ev->kind);
		cJSON_AddStringToObject(e, "ph", "X");
		/* integral microseconds: the report has microsecond precision */
		cJSON_AddNumberToObject(e, "ts", (double)llround(ev->start_ms * 1000));
		cJSON_AddNumberToObject(e, "dur", (double)llround(ev->dur_ms * 1000));
		cJSON_AddNumberToObject(e, "pid", (double)r->pid);
		cJSON_AddNumberToObject(e, "tid", (double)ev->tid);
		args = cJSON_AddObjectToObject(e, "args");
		cJSON_AddNumberToObject(args, "dur_ms", ev->dur_ms);
		if (ev->function)
			cJSON_AddStringToObject(args, "function", ev->function);
		if (ev->file)
			cJSON_AddStringToObject(args, "file", render_path(c, ev->file));
		if (ev->line >= 0)
			cJSON_AddNumberToObject(args, "line", ev->line);
		cJSON_AddItemToArray(evs, e);
	}
	cJSON_AddStringToObject(root, "displayTimeUnit", "ms");
	other = cJSON_AddObjectToObject(root, "otherData");
	cJSON_AddStringToObject(other, "source", "loopspy");
	cJSON_AddStringToObject(other, "command", r->command);
	cJSON_AddNumberToObject(other, "duration_ms", r->duration_ms);
	cJSON_AddNumberToObject(other, "timeline_events", (double)r->ntimeline);
	cJSON_AddNumberToObject(other, "timeline_dropped", (double)r->timeline_dropped);
	cJSON_AddBoolToObject(other, "report_has_timeline", r->has_timeline);
	return render_cjson_write(out, root);
}
