#include "report_read.h"
#include "report.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const report_kinds[] = {
	"stall", "blocking_syscall", "lock_contention", "gil_contention", "gc_pause",
};
const size_t report_nkinds = sizeof(report_kinds) / sizeof(report_kinds[0]);

/* integral JSON numbers up to 2^53 are exact */
#define MAX_EXACT 9007199254740992.0

struct rd {
	char *err;
	size_t errlen;
	int failed;
};

static void rd_fail(struct rd *rd, const char *fmt, ...)
{
	va_list ap;

	if (rd->failed)
		return;
	rd->failed = 1;
	va_start(ap, fmt);
	vsnprintf(rd->err, rd->errlen, fmt, ap);
	va_end(ap);
}

/* Replaces bytes that are not part of valid UTF-8 with '?', in place. */
static void utf8_sanitize(char *s)
{
	unsigned char *p = (unsigned char *)s;

	while (*p) {
		size_t n, i;
		uint32_t cp;

		if (*p < 0x80) {
			p++;
			continue;
		}
		if ((*p & 0xe0) == 0xc0) {
			n = 2;
			cp = *p & 0x1f;
		} else if ((*p & 0xf0) == 0xe0) {
			n = 3;
			cp = *p & 0x0f;
		} else if ((*p & 0xf8) == 0xf0) {
			n = 4;
			cp = *p & 0x07;
		} else {
			*p++ = '?';
			continue;
		}
		for (i = 1; i < n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				break;
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		if (i < n || (n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
			*p++ = '?';
			continue;
		}
		p += n;
	}
}

static void tree_sanitize(cJSON *node)
{
	for (; node; node = node->next) {
		if (node->string)
			utf8_sanitize(node->string);
		if (cJSON_IsString(node) && node->valuestring)
			utf8_sanitize(node->valuestring);
		tree_sanitize(node->child);
	}
}

static const cJSON *field(const cJSON *o, const char *key)
{
	return cJSON_GetObjectItemCaseSensitive(o, key);
}

enum { OPT = 0, REQ = 1 };

/* A string field; *out stays as it was when absent (OPT) or null (nullable). */
static void get_str(struct rd *rd, const cJSON *o, const char *path, const char *key, int req,
		    int nullable, const char **out)
{
	const cJSON *v = field(o, key);

	if (!v || (nullable && cJSON_IsNull(v))) {
		if (!v && req)
			rd_fail(rd, "%s%s: missing", path, key);
		return;
	}
	if (!cJSON_IsString(v) || !v->valuestring) {
		rd_fail(rd, "%s%s: expected a string%s", path, key, nullable ? " or null" : "");
		return;
	}
	*out = v->valuestring;
}

static int num_check(struct rd *rd, const cJSON *v, const char *path, const char *key, double *out)
{
	if (!cJSON_IsNumber(v)) {
		rd_fail(rd, "%s%s: expected a number", path, key);
		return -1;
	}
	if (!isfinite(v->valuedouble) || v->valuedouble < 0) {
		rd_fail(rd, "%s%s: expected a finite number >= 0", path, key);
		return -1;
	}
	*out = v->valuedouble;
	return 0;
}

static void get_num(struct rd *rd, const cJSON *o, const char *path, const char *key, int req, double *out)
{
	const cJSON *v = field(o, key);

	if (!v) {
		if (req)
			rd_fail(rd, "%s%s: missing", path, key);
		return;
	}
	num_check(rd, v, path, key, out);
}

static int int_check(struct rd *rd, const cJSON *v, const char *path, const char *key, double max, double *out)
{
	double d;

	if (num_check(rd, v, path, key, &d) < 0)
		return -1;
	if (d != floor(d) || d > max) {
		rd_fail(rd, "%s%s: expected an integer from 0 to %.0f", path, key, max);
		return -1;
	}
	*out = d;
	return 0;
}

static void get_u64(struct rd *rd, const cJSON *o, const char *path, const char *key, int req, uint64_t *out)
{
	const cJSON *v = field(o, key);
	double d;

	if (!v) {
		if (req)
			rd_fail(rd, "%s%s: missing", path, key);
		return;
	}
	if (int_check(rd, v, path, key, MAX_EXACT, &d) == 0)
		*out = (uint64_t)d;
}

static void get_long(struct rd *rd, const cJSON *o, const char *path, const char *key, int req, long *out)
{
	const cJSON *v = field(o, key);
	double d;

	if (!v) {
		if (req)
			rd_fail(rd, "%s%s: missing", path, key);
		return;
	}
	if (int_check(rd, v, path, key, 2147483647.0, &d) == 0)
		*out = (long)d;
}

/* line: integer, null or absent → -1 */
static void get_line(struct rd *rd, const cJSON *o, const char *path, int req, int *out)
{
	const cJSON *v = field(o, "line");
	double d;

	*out = -1;
	if (!v || cJSON_IsNull(v)) {
		if (!v && req)
			rd_fail(rd, "%sline: missing", path);
		return;
	}
	if (!cJSON_IsNumber(v)) {
		rd_fail(rd, "%sline: expected an integer or null", path);
		return;
	}
	if (int_check(rd, v, path, "line", 2147483647.0, &d) == 0)
		*out = (int)d;
}

static const cJSON *get_obj(struct rd *rd, const cJSON *o, const char *path, const char *key, int req)
{
	const cJSON *v = field(o, key);

	if (!v) {
		if (req)
			rd_fail(rd, "%s%s: missing", path, key);
		return NULL;
	}
	if (!cJSON_IsObject(v)) {
		rd_fail(rd, "%s%s: expected an object", path, key);
		return NULL;
	}
	return v;
}

/* An array field; returns its size (0 when absent and optional), -1 on error. */
static int get_arr(struct rd *rd, const cJSON *o, const char *path, const char *key, int req, const cJSON **arr)
{
	const cJSON *v = field(o, key);

	*arr = NULL;
	if (!v) {
		if (req)
			rd_fail(rd, "%s%s: missing", path, key);
		return req ? -1 : 0;
	}
	if (!cJSON_IsArray(v)) {
		rd_fail(rd, "%s%s: expected an array", path, key);
		return -1;
	}
	*arr = v;
	return cJSON_GetArraySize(v);
}

static const cJSON *elem_obj(struct rd *rd, const cJSON *e, const char *path)
{
	if (!cJSON_IsObject(e)) {
		rd_fail(rd, "%s: expected an object", path);
		return NULL;
	}
	return e;
}

static void *arr_alloc(struct rd *rd, size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);

	if (!p)
		rd_fail(rd, "out of memory");
	return p;
}

static void stack_read(struct rd *rd, const cJSON *o, const char *path, struct rframe **stack, size_t *nstack)
{
	const cJSON *arr, *e;
	char p[160];
	int n = get_arr(rd, o, path, "python_stack", REQ, &arr);
	size_t i = 0;

	if (n < 0 || !(*stack = arr_alloc(rd, (size_t)n, sizeof(**stack))))
		return;
	cJSON_ArrayForEach(e, arr) {
		struct rframe *fr = &(*stack)[i];

		snprintf(p, sizeof(p), "%spython_stack[%zu]", path, i);
		if (!elem_obj(rd, e, p))
			return;
		snprintf(p, sizeof(p), "%spython_stack[%zu].", path, i);
		get_str(rd, e, p, "function", REQ, 0, &fr->function);
		get_str(rd, e, p, "file", REQ, 0, &fr->file);
		get_line(rd, e, p, REQ, &fr->line);
		i++;
	}
	*nstack = i;
}

static void holders_read(struct rd *rd, const cJSON *o, const char *path, struct rfinding *f)
{
	const cJSON *arr, *e;
	char p[128];
	int n = get_arr(rd, o, path, "holders", OPT, &arr);
	size_t i = 0;

	if (n <= 0 || !(f->holders = arr_alloc(rd, (size_t)n, sizeof(*f->holders))))
		return;
	cJSON_ArrayForEach(e, arr) {
		struct rholder *h = &f->holders[i];

		snprintf(p, sizeof(p), "%sholders[%zu]", path, i);
		if (!elem_obj(rd, e, p))
			return;
		snprintf(p, sizeof(p), "%sholders[%zu].", path, i);
		get_long(rd, e, p, "tid", REQ, &h->tid);
		h->thread_name = "";
		get_str(rd, e, p, "thread_name", OPT, 0, &h->thread_name);
		get_u64(rd, e, p, "waits", OPT, &h->waits);
		get_num(rd, e, p, "wait_ms", OPT, &h->wait_ms);
		get_num(rd, e, p, "share", OPT, &h->share);
		/* counted before reading the stack: report_free frees it */
		f->nholders = ++i;
		stack_read(rd, e, p, &h->stack, &h->nstack);
	}
}

static void breakdown_read(struct rd *rd, const cJSON *o, const char *path, struct rfinding *f)
{
	const cJSON *b = get_obj(rd, o, path, "breakdown", OPT), *arr, *e;
	char p[128];
	size_t i = 0;
	int n;

	if (!b)
		return;
	f->has_breakdown = 1;
	snprintf(p, sizeof(p), "%sbreakdown.", path);
	get_num(rd, b, p, "on_cpu_ms", REQ, &f->on_cpu_ms);
	get_num(rd, b, p, "blocked_ms", REQ, &f->blocked_ms);
	get_num(rd, b, p, "runnable_ms", REQ, &f->runnable_ms);
	n = get_arr(rd, b, p, "syscalls", OPT, &arr);
	if (n < 0 || !(f->sys = arr_alloc(rd, (size_t)n, sizeof(*f->sys))))
		return;
	cJSON_ArrayForEach(e, arr) {
		struct rsyscall *s = &f->sys[i];

		snprintf(p, sizeof(p), "%sbreakdown.syscalls[%zu]", path, i);
		if (!elem_obj(rd, e, p))
			return;
		snprintf(p, sizeof(p), "%sbreakdown.syscalls[%zu].", path, i);
		get_str(rd, e, p, "syscall", REQ, 0, &s->syscall);
		get_num(rd, e, p, "blocked_ms", OPT, &s->blocked_ms);
		get_u64(rd, e, p, "count", OPT, &s->count);
		get_u64(rd, e, p, "samples", OPT, &s->samples);
		i++;
	}
	f->nsys = i;
}

static void finding_read(struct rd *rd, const cJSON *e, size_t idx, struct rfinding *f)
{
	char p[64];
	const cJSON *ds;

	f->dominant_share = -1;
	snprintf(p, sizeof(p), "findings[%zu]", idx);
	if (!elem_obj(rd, e, p))
		return;
	snprintf(p, sizeof(p), "findings[%zu].", idx);
	get_str(rd, e, p, "kind", REQ, 0, &f->kind);
	if (f->kind && !f->kind[0])
		rd_fail(rd, "%skind: empty", p);
	get_long(rd, e, p, "tid", REQ, &f->tid);
	f->thread_name = "";
	get_str(rd, e, p, "thread_name", REQ, 0, &f->thread_name);
	get_str(rd, e, p, "syscall", REQ, 1, &f->syscall);
	get_u64(rd, e, p, "count", REQ, &f->count);
	get_num(rd, e, p, "total_ms", REQ, &f->total_ms);
	get_num(rd, e, p, "max_ms", REQ, &f->max_ms);
	stack_read(rd, e, p, &f->stack, &f->nstack);
	get_str(rd, e, p, "fd_kind", OPT, 1, &f->fd_kind);
	get_str(rd, e, p, "lock_kind", OPT, 1, &f->lock_kind);
	holders_read(rd, e, p, f);
	f->generation = -1;
	ds = field(e, "generation");
	if (ds && !cJSON_IsNull(ds))
		get_long(rd, e, p, "generation", OPT, &f->generation);
	breakdown_read(rd, e, p, f);
	get_u64(rd, e, p, "samples", OPT, &f->samples);
	ds = field(e, "dominant_share");
	if (ds && !cJSON_IsNull(ds))
		get_num(rd, e, p, "dominant_share", OPT, &f->dominant_share);
}

static void loop_read(struct rd *rd, const cJSON *e, size_t idx, struct rloop *l)
{
	const cJSON *lag, *arr, *b;
	char p[64], q[96];
	size_t i = 0;
	int n;

	snprintf(p, sizeof(p), "loops[%zu]", idx);
	if (!elem_obj(rd, e, p))
		return;
	snprintf(p, sizeof(p), "loops[%zu].", idx);
	get_long(rd, e, p, "tid", REQ, &l->tid);
	l->thread_name = "";
	get_str(rd, e, p, "thread_name", REQ, 0, &l->thread_name);
	get_u64(rd, e, p, "iterations", REQ, &l->iterations);
	get_u64(rd, e, p, "stalls", OPT, &l->stalls);
	lag = get_obj(rd, e, p, "lag_ms", REQ);
	if (lag) {
		snprintf(q, sizeof(q), "%slag_ms.", p);
		get_num(rd, lag, q, "p50", REQ, &l->lag_p50);
		get_num(rd, lag, q, "p99", REQ, &l->lag_p99);
		get_num(rd, lag, q, "max", REQ, &l->lag_max);
	}
	get_num(rd, e, p, "busy_ratio", REQ, &l->busy_ratio);
	get_num(rd, e, p, "gil_wait_ms", OPT, &l->gil_wait_ms);
	n = get_arr(rd, e, p, "lag_histogram", OPT, &arr);
	if (n <= 0 || !(l->hist = arr_alloc(rd, (size_t)n, sizeof(*l->hist))))
		return;
	cJSON_ArrayForEach(b, arr) {
		snprintf(q, sizeof(q), "%slag_histogram[%zu]", p, i);
		if (!elem_obj(rd, b, q))
			return;
		snprintf(q, sizeof(q), "%slag_histogram[%zu].", p, i);
		get_num(rd, b, q, "lt_ms", REQ, &l->hist[i].lt_ms);
		get_u64(rd, b, q, "count", REQ, &l->hist[i].count);
		if (i && l->hist[i].lt_ms <= l->hist[i - 1].lt_ms)
			rd_fail(rd, "%slt_ms: bins must be in increasing order", q);
		i++;
	}
	l->nhist = i;
}

static void timeline_read(struct rd *rd, const cJSON *root, struct report *r)
{
	const cJSON *t = get_obj(rd, root, "", "timeline", OPT), *arr, *e;
	char p[64];
	size_t i = 0;
	int n;

	if (!t)
		return;
	r->has_timeline = 1;
	get_u64(rd, t, "timeline.", "dropped", OPT, &r->timeline_dropped);
	n = get_arr(rd, t, "timeline.", "events", REQ, &arr);
	if (n < 0 || !(r->timeline = arr_alloc(rd, (size_t)n, sizeof(*r->timeline))))
		return;
	cJSON_ArrayForEach(e, arr) {
		struct revent *ev = &r->timeline[i];

		snprintf(p, sizeof(p), "timeline.events[%zu]", i);
		if (!elem_obj(rd, e, p))
			return;
		snprintf(p, sizeof(p), "timeline.events[%zu].", i);
		get_long(rd, e, p, "tid", REQ, &ev->tid);
		get_str(rd, e, p, "kind", REQ, 0, &ev->kind);
		get_num(rd, e, p, "start_ms", REQ, &ev->start_ms);
		get_num(rd, e, p, "dur_ms", REQ, &ev->dur_ms);
		get_str(rd, e, p, "syscall", OPT, 1, &ev->syscall);
		get_str(rd, e, p, "function", OPT, 1, &ev->function);
		get_str(rd, e, p, "file", OPT, 1, &ev->file);
		get_line(rd, e, p, OPT, &ev->line);
		i++;
	}
	r->ntimeline = i;
}

/* An unterminated string or unclosed bracket at the end: truncated. */
static int json_unterminated(const char *text, size_t len)
{
	long depth = 0;
	int in_str = 0;
	size_t i;

	for (i = 0; i < len; i++) {
		char ch = text[i];

		if (in_str) {
			if (ch == '\\')
				i++;
			else if (ch == '"')
				in_str = 0;
		} else if (ch == '"') {
			in_str = 1;
		} else if (ch == '{' || ch == '[') {
			depth++;
		} else if (ch == '}' || ch == ']') {
			depth--;
		}
	}
	return in_str || depth > 0;
}

static void syntax_error(struct rd *rd, const char *text, size_t len, const char *at)
{
	size_t off = at && at >= text && at <= text + len ? (size_t)(at - text) : len, i;
	unsigned line = 1, col = 1;

	if (json_unterminated(text, len)) {
		rd_fail(rd, "not valid JSON: the document ends early (truncated file?)");
		return;
	}

	for (i = 0; i < off; i++) {
		if (text[i] == '\n') {
			line++;
			col = 1;
		} else {
			col++;
		}
	}
	rd_fail(rd, "not valid JSON: syntax error at line %u, column %u", line, col);
}

static void schema_check(struct rd *rd, const cJSON *root, struct report *r)
{
	const cJSON *v = field(root, "schema");
	static const char prefix[] = "loopspy-report/";

	if (!v) {
		rd_fail(rd, "not a loopspy report: no \"schema\" field");
		return;
	}
	if (!cJSON_IsString(v) || !v->valuestring) {
		rd_fail(rd, "not a loopspy report: \"schema\" is not a string");
		return;
	}
	r->schema = v->valuestring;
	if (!strcmp(r->schema, REPORT_SCHEMA))
		return;
	utf8_sanitize(v->valuestring);
	if (!strncmp(r->schema, prefix, sizeof(prefix) - 1))
		rd_fail(rd, "unsupported report version \"%.40s\": this loopspy reads %s", r->schema, REPORT_SCHEMA);
	else
		rd_fail(rd, "not a loopspy report: schema is \"%.40s\"", r->schema);
}

static void top_read(struct rd *rd, const cJSON *root, struct report *r)
{
	const cJSON *t, *rt, *th, *arr, *e;
	size_t i;
	int n;

	r->loopspy_version = "";
	get_str(rd, root, "", "loopspy_version", OPT, 0, &r->loopspy_version);
	t = get_obj(rd, root, "", "target", REQ);
	r->command = "";
	r->python_stacks = -1;
	r->exit_status = -1;
	if (t) {
		get_long(rd, t, "target.", "pid", REQ, &r->pid);
		get_str(rd, t, "target.", "command", REQ, 0, &r->command);
		rt = get_obj(rd, t, "target.", "runtime", REQ);
		if (rt) {
			const cJSON *ps = field(rt, "python_stacks");

			get_str(rd, rt, "target.runtime.", "name", OPT, 0, &r->runtime_name);
			get_str(rd, rt, "target.runtime.", "version", OPT, 1, &r->runtime_version);
			if (ps && !cJSON_IsBool(ps))
				rd_fail(rd, "target.runtime.python_stacks: expected true or false");
			else if (ps)
				r->python_stacks = cJSON_IsTrue(ps);
		}
		get_long(rd, t, "target.", "exit_status", OPT, &r->exit_status);
	}
	get_str(rd, root, "", "started_at", OPT, 0, &r->started_at);
	get_num(rd, root, "", "duration_ms", REQ, &r->duration_ms);
	get_str(rd, root, "", "end_reason", OPT, 0, &r->end_reason);
	get_u64(rd, root, "", "dropped_events", REQ, &r->dropped_events);
	get_u64(rd, root, "", "events", OPT, &r->events);
	r->stall_ms = r->block_ms = -1;
	th = get_obj(rd, root, "", "thresholds", OPT);
	if (th) {
		get_num(rd, th, "thresholds.", "stall_ms", OPT, &r->stall_ms);
		get_num(rd, th, "thresholds.", "block_ms", OPT, &r->block_ms);
	}

	n = get_arr(rd, root, "", "loops", REQ, &arr);
	if (n < 0 || !(r->loops = arr_alloc(rd, (size_t)n, sizeof(*r->loops))))
		return;
	i = 0;
	cJSON_ArrayForEach(e, arr) {
		loop_read(rd, e, i, &r->loops[i]);
		i++;
	}
	r->nloops = i;

	n = get_arr(rd, root, "", "findings", REQ, &arr);
	if (n < 0 || !(r->findings = arr_alloc(rd, (size_t)n, sizeof(*r->findings))))
		return;
	i = 0;
	cJSON_ArrayForEach(e, arr) {
		finding_read(rd, e, i, &r->findings[i]);
		i++;
	}
	r->nfindings = i;

	timeline_read(rd, root, r);
}

int report_parse(const char *text, size_t len, struct report **out, char *err, size_t errlen)
{
	struct rd rd = { err, errlen, 0 };
	struct report *r = NULL;
	const char *end = NULL;
	cJSON *root = NULL;
	size_t i;

	*out = NULL;
	if (errlen)
		err[0] = 0;
	for (i = 0; i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r'); i++)
		;
	if (i == len) {
		rd_fail(&rd, "empty file");
		goto cleanup;
	}
	root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
	if (!root) {
		syntax_error(&rd, text, len, cJSON_GetErrorPtr());
		goto cleanup;
	}
	for (i = end ? (size_t)(end - text) : len; i < len; i++) {
		if (text[i] != ' ' && text[i] != '\t' && text[i] != '\n' && text[i] != '\r') {
			syntax_error(&rd, text, len, text + i);
			goto cleanup;
		}
	}
	if (!cJSON_IsObject(root)) {
		rd_fail(&rd, "not a loopspy report: expected a JSON object");
		goto cleanup;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		rd_fail(&rd, "out of memory");
		goto cleanup;
	}
	/* r owns the tree from here */
	r->tree = root;
	root = NULL;
	schema_check(&rd, r->tree, r);
	if (rd.failed)
		goto cleanup;
	tree_sanitize(r->tree);
	top_read(&rd, r->tree, r);
cleanup:
	cJSON_Delete(root);
	if (rd.failed) {
		report_free(r);
		return -1;
	}
	*out = r;
	return 0;
}

void report_free(struct report *r)
{
	size_t i;

	if (!r)
		return;
	for (i = 0; i < r->nfindings; i++) {
		size_t j;

		for (j = 0; j < r->findings[i].nholders; j++)
			free(r->findings[i].holders[j].stack);
		free(r->findings[i].holders);
		free(r->findings[i].stack);
		free(r->findings[i].sys);
	}
	free(r->findings);
	for (i = 0; i < r->nloops; i++)
		free(r->loops[i].hist);
	free(r->loops);
	free(r->timeline);
	cJSON_Delete(r->tree);
	free(r);
}

char *report_print(const struct report *r)
{
	return r ? cJSON_Print(r->tree) : NULL;
}

static int is_python_dir(const char *s, size_t n)
{
	size_t i = 6;

	/* python3, python3.11 */
	if (n < 7 || strncmp(s, "python", 6) || s[i] < '0' || s[i] > '9')
		return 0;
	while (i < n && s[i] >= '0' && s[i] <= '9')
		i++;
	if (i == n)
		return 1;
	if (s[i++] != '.' || i == n)
		return 0;
	while (i < n && s[i] >= '0' && s[i] <= '9')
		i++;
	return i == n;
}

int report_frame_is_library(const char *file)
{
	const char *p, *prev = NULL;
	size_t prevn = 0;

	if (!file || !*file || file[0] == '<' || !strcmp(file, "?"))
		return 1;
	for (p = file; *p;) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);

		if (!slash)
			break; /* the file name itself */
		if ((n == 13 && (!strncmp(p, "site-packages", 13) || !strncmp(p, "dist-packages", 13))) ||
		    (prev && ((prevn == 3 && !strncmp(prev, "lib", 3)) || (prevn == 5 && !strncmp(prev, "lib64", 5))) &&
		     is_python_dir(p, n)))
			return 1;
		prev = p;
		prevn = n;
		p = slash + 1;
	}
	return 0;
}

static const struct rframe *user_frame(const struct rframe *stack, size_t n, int modules)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!report_frame_is_library(stack[i].file) && (modules || strcmp(stack[i].function, "<module>")))
			return &stack[i];
	return NULL;
}

const struct rframe *report_site_frame(const struct rfinding *f)
{
	const struct rframe *fr = NULL;
	int modules;

	/* a module-level frame (a script's `asyncio.run(main())` line) only
	 * when no function of the user's is on the stack or the holder's */
	for (modules = 0; !fr && modules < 2; modules++) {
		fr = user_frame(f->stack, f->nstack, modules);
		if (!fr && f->nholders)
			fr = user_frame(f->holders[0].stack, f->holders[0].nstack, modules);
	}
	if (!fr && f->nstack)
		fr = &f->stack[0];
	return fr;
}

static int strcmp_null(const char *a, const char *b)
{
	if (!a || !b)
		return a ? 1 : b ? -1 : 0;
	return strcmp(a, b);
}

int report_site_cmp(const struct report_site *a, const struct report_site *b, int across_runs)
{
	int c = strcmp(a->kind, b->kind);

	if (c)
		return c;
	if ((c = strcmp_null(a->syscall, b->syscall)))
		return c;
	if (!a->frame || !b->frame)
		return a->frame ? 1 : b->frame ? -1 : 0;
	if (across_runs)
		c = strcmp(report_basename(a->frame->file), report_basename(b->frame->file));
	else
		c = strcmp(a->frame->file, b->frame->file);
	if (c || (c = strcmp(a->frame->function, b->frame->function)) || across_runs)
		return c;
	return (a->frame->line > b->frame->line) - (a->frame->line < b->frame->line);
}

int report_site_cmp_key(const struct report_site *a, const struct report_site *b)
{
	return report_site_cmp(a, b, 0);
}

static int site_cmp(const void *pa, const void *pb)
{
	const struct report_site *a = pa, *b = pb;

	if (a->total_ms != b->total_ms)
		return a->total_ms < b->total_ms ? 1 : -1;
	return report_site_cmp_key(a, b);
}

int report_sites_build(const struct report *r, struct report_sites *out)
{
	size_t i, j, *order = NULL;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	out->v = calloc(r->nfindings ? r->nfindings : 1, sizeof(*out->v));
	out->of = calloc(r->nfindings ? r->nfindings : 1, sizeof(*out->of));
	order = calloc(r->nfindings ? r->nfindings : 1, sizeof(*order));
	if (!out->v || !out->of || !order)
		goto cleanup;
	for (i = 0; i < r->nfindings; i++) {
		const struct rfinding *f = &r->findings[i];
		struct report_site key = {
			.kind = f->kind, .syscall = f->syscall, .frame = report_site_frame(f),
		};
		struct report_site *s;

		for (j = 0; j < out->n; j++)
			if (!report_site_cmp_key(&out->v[j], &key))
				break;
		s = &out->v[j];
		if (j == out->n) {
			*s = key;
			out->n++;
		}
		if (!s->top || f->total_ms > s->top->total_ms)
			s->top = f;
		s->nfindings++;
		s->count += f->count;
		s->samples += f->samples;
		s->total_ms += f->total_ms;
		if (f->max_ms > s->max_ms)
			s->max_ms = f->max_ms;
		out->of[i] = j;
	}
	/* sort, then remap finding → site through the old positions (keys
	 * are unique) */
	{
		struct report_site *old = malloc(sizeof(*old) * (out->n ? out->n : 1));

		if (!old)
			goto cleanup;
		memcpy(old, out->v, sizeof(*old) * out->n);
		qsort(out->v, out->n, sizeof(*out->v), site_cmp);
		for (j = 0; j < out->n; j++) {
			size_t k;

			for (k = 0; k < out->n; k++)
				if (!report_site_cmp_key(&old[j], &out->v[k]))
					break;
			order[j] = k;
		}
		for (i = 0; i < r->nfindings; i++)
			out->of[i] = order[out->of[i]];
		free(old);
	}
	ret = 0;
cleanup:
	free(order);
	if (ret < 0)
		report_sites_free(out);
	return ret;
}

void report_sites_free(struct report_sites *s)
{
	if (!s)
		return;
	free(s->v);
	free(s->of);
	s->v = NULL;
	s->of = NULL;
	s->n = 0;
}

const char *report_basename(const char *path)
{
	const char *s = path ? strrchr(path, '/') : NULL;

	return s ? s + 1 : path ? path : "";
}

void report_site_describe(const struct report_site *s, char *buf, size_t n)
{
	char line[16] = "?";

	if (s->frame && s->frame->line >= 0)
		snprintf(line, sizeof(line), "%d", s->frame->line);
	if (s->frame)
		snprintf(buf, n, "%s%s%s at %s (%s:%s)", s->kind, s->syscall ? " " : "", s->syscall ? s->syscall : "",
			 s->frame->function, s->frame->file, line);
	else
		snprintf(buf, n, "%s%s%s (no Python stack)", s->kind, s->syscall ? " " : "",
			 s->syscall ? s->syscall : "");
}
