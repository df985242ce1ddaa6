/* SARIF 2.1.0 for code scanning: one rule per finding kind, one result per
 * finding site located at its innermost user frame, the Python stack as a
 * code flow. Sites without any Python frame cannot be located and are left
 * out (GitHub rejects results without a location); runs[0].properties
 * counts them. */
#include "render.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#define SARIF_SCHEMA "https://json.schemastore.org/sarif-2.1.0.json"
#define BASE_ID "SRCROOT"

static const struct {
	const char *kind, *name, *short_text, *full_text, *help;
} rule_info[] = {
	{ "stall", "EventLoopStall",
	  "A loop iteration ran longer than the stall threshold.",
	  "The event loop thread spent longer than the stall threshold in one iteration (a callback or coroutine step), so every other task waited.",
	  "Move CPU-bound work to a thread or process pool (loop.run_in_executor, asyncio.to_thread), or split it into smaller steps that await in between." },
	{ "blocking_syscall", "BlockingSyscallOnLoop",
	  "A blocking system call ran on the event loop thread.",
	  "The event loop thread slept in a blocking system call (time.sleep, synchronous HTTP, subprocess.run, file I/O, DNS, a threading lock), so no other task could run.",
	  "Use the asyncio equivalent (asyncio.sleep, an async HTTP client, asyncio.create_subprocess_exec), or run the blocking call with loop.run_in_executor / asyncio.to_thread." },
	{ "lock_contention", "LockContentionOnLoop",
	  "The event loop thread waited for a lock held by another thread.",
	  "The event loop thread blocked on a lock (threading.Lock, a C-level mutex) that another thread held.",
	  "Avoid sharing threading locks with the loop thread; use asyncio primitives, or hand the work to the thread that owns the lock." },
	{ "gil_contention", "GilContentionOnLoop",
	  "The event loop thread waited for the GIL.",
	  "The event loop thread waited for the global interpreter lock while other Python threads ran CPU-bound code.",
	  "Move CPU-bound Python work to a process pool, or reduce the number of busy Python threads." },
	{ "gc_pause", "GcPauseOnLoop",
	  "A garbage collection paused the event loop.",
	  "A cyclic garbage collection ran on the event loop thread and paused it.",
	  "Reduce reference cycles and allocations on hot paths; consider gc.freeze() after start-up or tuning gc thresholds." },
};
#define NRULES_KNOWN (sizeof(rule_info) / sizeof(rule_info[0]))

/* Percent-encodes a path for a URI (RFC 3986 unreserved and '/' kept). */
static char *uri_encode(const char *prefix, const char *path, const char *suffix)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(prefix) + strlen(path) * 3 + strlen(suffix) + 1, o;
	char *s = malloc(n);
	const unsigned char *p;

	if (!s)
		return NULL;
	strcpy(s, prefix);
	o = strlen(s);
	for (p = (const unsigned char *)path; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    strchr("-._~/", *p)) {
			s[o++] = (char)*p;
		} else {
			s[o++] = '%';
			s[o++] = hex[*p >> 4];
			s[o++] = hex[*p & 15];
		}
	}
	strcpy(s + o, suffix);
	return s;
}

static int locatable(const struct rframe *f)
{
	return f && f->file[0] && f->file[0] != '<' && strcmp(f->file, "?");
}

/* A physicalLocation of a frame; NULL when it has no real file. */
static cJSON *phys_location(const struct render_ctx *c, const struct rframe *f)
{
	cJSON *pl, *al;
	const char *rel;
	char *uri;

	if (!locatable(f))
		return NULL;
	rel = render_path(c, f->file);
	if (rel[0] == '/')
		uri = uri_encode("file://", rel, "");
	else
		uri = uri_encode("", rel, "");
	pl = cJSON_CreateObject();
	al = cJSON_AddObjectToObject(pl, "artifactLocation");
	if (!uri || !al) {
		free(uri);
		cJSON_Delete(pl);
		return NULL;
	}
	cJSON_AddStringToObject(al, "uri", uri);
	free(uri);
	if (rel[0] != '/' && c->source_root)
		cJSON_AddStringToObject(al, "uriBaseId", BASE_ID);
	if (f->line >= 1)
		cJSON_AddNumberToObject(cJSON_AddObjectToObject(pl, "region"), "startLine", f->line);
	return pl;
}

static cJSON *text_obj(const char *text)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "text", text);
	return o;
}

static cJSON *rule_json(const char *kind)
{
	cJSON *r = cJSON_CreateObject(), *cfg, *props, *tags;
	size_t i;

	for (i = 0; i < NRULES_KNOWN; i++)
		if (!strcmp(rule_info[i].kind, kind))
			break;
	cJSON_AddStringToObject(r, "id", kind);
	if (i < NRULES_KNOWN) {
		cJSON_AddStringToObject(r, "name", rule_info[i].name);
		cJSON_AddItemToObject(r, "shortDescription", text_obj(rule_info[i].short_text));
		cJSON_AddItemToObject(r, "fullDescription", text_obj(rule_info[i].full_text));
		cJSON_AddItemToObject(r, "help", text_obj(rule_info[i].help));
	} else {
		cJSON_AddItemToObject(r, "shortDescription", text_obj("A finding reported by loopspy."));
	}
	cfg = cJSON_AddObjectToObject(r, "defaultConfiguration");
	cJSON_AddStringToObject(cfg, "level", "warning");
	props = cJSON_AddObjectToObject(r, "properties");
	tags = cJSON_AddArrayToObject(props, "tags");
	cJSON_AddItemToArray(tags, cJSON_CreateString("asyncio"));
	cJSON_AddItemToArray(tags, cJSON_CreateString("performance"));
	cJSON_AddStringToObject(props, "precision", "high");
	return r;
}

static int rule_index(const char *const *kinds, size_t n, const char *kind)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(kinds[i], kind))
			return (int)i;
	return -1;
}

static void message_write(char *buf, size_t n, const struct render_ctx *c, const struct report_site *s)
{
	char t[32], m[32], what[256];
	const char *fn = s->frame ? s->frame->function : "?";

	render_dur(t, sizeof(t), s->total_ms);
	render_dur(m, sizeof(m), s->max_ms);
	(void)c;
	if (!strcmp(s->kind, "stall"))
		snprintf(what, sizeof(what), "Event loop stall in %s", fn);
	else if (!strcmp(s->kind, "blocking_syscall"))
		snprintf(what, sizeof(what), "Blocking %s call on the event loop in %s", s->syscall ? s->syscall : "system",
			 fn);
	else if (!strcmp(s->kind, "lock_contention"))
		snprintf(what, sizeof(what), "The event loop waited for a lock in %s", fn);
	else if (!strcmp(s->kind, "gil_contention"))
		snprintf(what, sizeof(what), "The event loop waited for the GIL in %s", fn);
	else if (!strcmp(s->kind, "gc_pause"))
		snprintf(what, sizeof(what), "Garbage collection paused the event loop in %s", fn);
	else
		snprintf(what, sizeof(what), "%s in %s", s->kind, fn);
	snprintf(buf, n, "%s: %llu time%s, max %s, total %s (loop thread %s).", what, (unsigned long long)s->count,
		 s->count == 1 ? "" : "s", m, t, s->top->thread_name);
}

static unsigned long long fnv64(const char *s, unsigned long long h)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return (h ^ '|') * 1099511628211ULL;
}

static unsigned long long site_hash(const struct report_site *s)
{
	unsigned long long h = 14695981039346656037ULL;

	h = fnv64(s->kind, h);
	h = fnv64(s->syscall ? s->syscall : "", h);
	h = fnv64(report_basename(s->frame->file), h);
	h = fnv64(s->frame->function, h);
	return h ? h : 1; /* 0 means "no fingerprint" */
}

static cJSON *thread_flow(const struct render_ctx *c, const struct report_site *s, const char *what,
			  const struct rframe *stack, size_t n)
{
	cJSON *tf = cJSON_CreateObject(), *locs;
	char msg[300];
	size_t i;

	cJSON_AddItemToObject(tf, "message", text_obj(what));
	locs = cJSON_AddArrayToObject(tf, "locations");
	for (i = n; i-- > 0;) {
		const struct rframe *fr = &stack[i];
		cJSON *tfl = cJSON_CreateObject(), *loc = cJSON_CreateObject(), *pl = phys_location(c, fr);

		if (pl)
			cJSON_AddItemToObject(loc, "physicalLocation", pl);
		snprintf(msg, sizeof(msg), "%s%s", fr->function, fr == s->frame ? " (the finding site)" : "");
		cJSON_AddItemToObject(loc, "message", text_obj(msg));
		cJSON_AddItemToObject(tfl, "location", loc);
		cJSON_AddNumberToObject(tfl, "nestingLevel", (double)(n - 1 - i));
		cJSON_AddNumberToObject(tfl, "executionOrder", (double)(n - i));
		if (fr == s->frame)
			cJSON_AddStringToObject(tfl, "importance", "essential");
		else if (report_frame_is_library(fr->file))
			cJSON_AddStringToObject(tfl, "importance", "unimportant");
		cJSON_AddItemToArray(locs, tfl);
	}
	return tf;
}

/* The loop thread's Python stack, outermost call first; for lock and GIL
 * contention, one more thread flow per holder (its stack at release). */
static cJSON *code_flow(const struct render_ctx *c, const struct report_site *s)
{
	const struct rfinding *f = s->top;
	cJSON *flows = cJSON_CreateArray(), *flow = cJSON_CreateObject(), *tflows;
	char msg[300];
	size_t i;

	cJSON_AddItemToArray(flows, flow);
	cJSON_AddItemToObject(flow, "message", text_obj("Python stacks, outermost call first"));
	tflows = cJSON_AddArrayToObject(flow, "threadFlows");
	if (f->nstack) {
		snprintf(msg, sizeof(msg), "event loop thread %s", f->thread_name);
		cJSON_AddItemToArray(tflows, thread_flow(c, s, msg, f->stack, f->nstack));
	}
	for (i = 0; i < f->nholders; i++) {
		if (!f->holders[i].nstack)
			continue;
		snprintf(msg, sizeof(msg), "holder thread %s (tid %ld), %.0f%% of the wait, when it released",
			 f->holders[i].thread_name, f->holders[i].tid, f->holders[i].share * 100);
		cJSON_AddItemToArray(tflows, thread_flow(c, s, msg, f->holders[i].stack, f->holders[i].nstack));
	}
	return flows;
}

static cJSON *result_json(const struct render_ctx *c, size_t si, int ri, const char *fingerprint)
{
	const struct report_site *s = &c->sites->v[si];
	cJSON *res = cJSON_CreateObject(), *locs, *loc, *ll, *props, *fp;
	long vi = c->verdict ? gate_site_violation(c->verdict, si) : -1;
	char msg[1024], full[2048];

	message_write(msg, sizeof(msg), c, s);
	if (vi >= 0)
		snprintf(full, sizeof(full), "%s Fails the gate: %s", msg, c->verdict->v[vi].why);
	else
		snprintf(full, sizeof(full), "%s", msg);
	cJSON_AddStringToObject(res, "ruleId", s->kind);
	cJSON_AddNumberToObject(res, "ruleIndex", ri);
	cJSON_AddStringToObject(res, "level", vi >= 0 ? "error" : "warning");
	cJSON_AddItemToObject(res, "message", text_obj(full));
	locs = cJSON_AddArrayToObject(res, "locations");
	loc = cJSON_CreateObject();
	cJSON_AddItemToObject(loc, "physicalLocation", phys_location(c, s->frame));
	ll = cJSON_AddArrayToObject(loc, "logicalLocations");
	{
		cJSON *l = cJSON_CreateObject();

		cJSON_AddStringToObject(l, "name", s->frame->function);
		cJSON_AddStringToObject(l, "kind", "function");
		cJSON_AddItemToArray(ll, l);
	}
	cJSON_AddItemToArray(locs, loc);
	cJSON_AddItemToObject(res, "codeFlows", code_flow(c, s));
	fp = cJSON_AddObjectToObject(res, "partialFingerprints");
	cJSON_AddStringToObject(fp, "loopspySite/v1", fingerprint);
	props = cJSON_AddObjectToObject(res, "properties");
	if (s->syscall)
		cJSON_AddStringToObject(props, "syscall", s->syscall);
	cJSON_AddNumberToObject(props, "count", (double)s->count);
	cJSON_AddNumberToObject(props, "total_ms", s->total_ms);
	cJSON_AddNumberToObject(props, "max_ms", s->max_ms);
	cJSON_AddStringToObject(props, "thread_name", s->top->thread_name);
	if (vi >= 0)
		cJSON_AddStringToObject(props, "gate", c->verdict->v[vi].why);
	return res;
}

int render_sarif(FILE *out, const struct render_ctx *c)
{
	cJSON *root = cJSON_CreateObject(), *runs, *run, *driver, *rules, *results, *inv, *props;
	const char **kinds = calloc(NRULES_KNOWN + c->sites->n + 1, sizeof(*kinds));
	unsigned long long *hashes = calloc(c->sites->n + 1, sizeof(*hashes));
	size_t nkinds = 0, i, j, unlocated = 0;

	if (!root || !kinds || !hashes) {
		free(kinds);
		free(hashes);
		cJSON_Delete(root);
		return -1;
	}
	for (i = 0; i < NRULES_KNOWN; i++)
		kinds[nkinds++] = rule_info[i].kind;
	for (i = 0; i < c->sites->n; i++)
		if (rule_index(kinds, nkinds, c->sites->v[i].kind) < 0)
			kinds[nkinds++] = c->sites->v[i].kind;
	cJSON_AddStringToObject(root, "$schema", SARIF_SCHEMA);
	cJSON_AddStringToObject(root, "version", "2.1.0");
	runs = cJSON_AddArrayToObject(root, "runs");
	run = cJSON_CreateObject();
	cJSON_AddItemToArray(runs, run);
	driver = cJSON_AddObjectToObject(cJSON_AddObjectToObject(run, "tool"), "driver");
	cJSON_AddStringToObject(driver, "name", "loopspy");
	if (c->loopspy_version) {
		cJSON_AddStringToObject(driver, "version", c->loopspy_version);
		cJSON_AddStringToObject(driver, "semanticVersion", c->loopspy_version);
	}
	rules = cJSON_AddArrayToObject(driver, "rules");
	for (i = 0; i < nkinds; i++)
		cJSON_AddItemToArray(rules, rule_json(kinds[i]));
	if (c->source_root) {
		char *uri = uri_encode("file://", c->source_root, "/");
		cJSON *base = cJSON_AddObjectToObject(cJSON_AddObjectToObject(run, "originalUriBaseIds"), BASE_ID);

		if (uri)
			cJSON_AddStringToObject(base, "uri", uri);
		free(uri);
	}
	inv = cJSON_CreateObject();
	cJSON_AddBoolToObject(inv, "executionSuccessful", 1);
	cJSON_AddItemToArray(cJSON_AddArrayToObject(run, "invocations"), inv);
	results = cJSON_AddArrayToObject(run, "results");
	for (i = 0; i < c->sites->n; i++)
		if (c->sites->v[i].frame && locatable(c->sites->v[i].frame))
			hashes[i] = site_hash(&c->sites->v[i]);
	for (i = 0; i < c->sites->n; i++) {
		const struct report_site *s = &c->sites->v[i];
		char fp[40];
		size_t occurrence = 0;

		if (!hashes[i]) {
			unlocated++;
			continue;
		}
		/* sites sharing a fingerprint are told apart by line order, which
		 * survives code moving up or down */
		for (j = 0; j < c->sites->n; j++)
			occurrence += j != i && hashes[j] == hashes[i] &&
				      (c->sites->v[j].frame->line < s->frame->line ||
				       (c->sites->v[j].frame->line == s->frame->line && j < i));
		snprintf(fp, sizeof(fp), "%016llx:%zu", hashes[i], occurrence + 1);
		cJSON_AddItemToArray(results, result_json(c, i, rule_index(kinds, nkinds, s->kind), fp));
	}
	props = cJSON_AddObjectToObject(run, "properties");
	cJSON_AddStringToObject(props, "command", c->r->command);
	cJSON_AddNumberToObject(props, "pid", (double)c->r->pid);
	cJSON_AddNumberToObject(props, "duration_ms", c->r->duration_ms);
	cJSON_AddNumberToObject(props, "dropped_events", (double)c->r->dropped_events);
	cJSON_AddNumberToObject(props, "unlocated_sites", (double)unlocated);
	free(kinds);
	free(hashes);
	return render_cjson_write(out, root);
}
