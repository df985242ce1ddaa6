/* Prometheus text exposition of the agent's targets (docs/fleet.md).
 *
 * Counters never go backwards, whatever happens between two scrapes:
 *
 * - Finding sites are identified by (kind, thread, finding key) and their
 *   labels are taken once, when the site is first seen (a stall group's
 *   innermost line may change later; its series does not).
 * - A site gets its own series when it ranks among the target's top N by
 *   total time, and keeps it for the target's lifetime even when it drops
 *   out of the top N. At most 2N sites ever get their own series; the
 *   others are folded, per kind, into one function="other" series.
 * - When a folded site is promoted, what it had already contributed to
 *   "other" stays there (off_count/off_ns) and its own series counts from
 *   there on: "other" never shrinks, the new series starts like a new
 *   counter, and the sum of a target's series is still its true total.
 * - The kernel's loop statistics live in an LRU map; if an entry is ever
 *   recreated (its counts fall), the previous counts are added to a base
 *   so the exported histogram and counters carry on from where they were.
 */
#include "prom.h"
#include "report.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NB PROM_LAG_NBOUNDS
#define COMMAND_LABEL_MAX 200
#define NKINDS 5

const uint64_t prom_lag_bound_us[NB] = {
	10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000,
	100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
};

/* As Go's strconv.FormatFloat(v, 'g', -1, 64), what client_golang writes
 * (and what Prometheus 3 normalises le labels to). */
const char *const prom_lag_le[NB] = {
	"1e-05", "2.5e-05", "5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01",
	"0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10",
};

/* ------------------------------------------------------------------ */
/* buffer                                                              */

void prom_buf_init(struct prom_buf *b)
{
	memset(b, 0, sizeof(*b));
}

void prom_buf_reset(struct prom_buf *b)
{
	b->len = 0;
	b->failed = 0;
	if (b->p)
		b->p[0] = '\0';
}

void prom_buf_free(struct prom_buf *b)
{
	if (!b)
		return;
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static int buf_reserve(struct prom_buf *b, size_t extra)
{
	size_t cap = b->cap ? b->cap : 4096;
	char *p;

	if (b->failed)
		return -1;
	if (b->len + extra + 1 <= b->cap)
		return 0;
	while (cap < b->len + extra + 1)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p) {
		b->failed = 1;
		return -1;
	}
	b->p = p;
	b->cap = cap;
	return 0;
}

void prom_buf_add(struct prom_buf *b, const char *s, size_t n)
{
	if (buf_reserve(b, n) < 0)
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void buf_str(struct prom_buf *b, const char *s)
{
	prom_buf_add(b, s, strlen(s));
}

void prom_buf_printf(struct prom_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (buf_reserve(b, 128) < 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = 1;
		return;
	}
	if ((size_t)n >= b->cap - b->len) {
		if (buf_reserve(b, (size_t)n) < 0)
			return;
		va_start(ap, fmt);
		vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
}

/* Length of the well-formed UTF-8 sequence at s (RFC 3629), 0 if none. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned char c = s[0];
	size_t n, i;
	unsigned char lo = 0x80, hi = 0xbf;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

void prom_buf_escape(struct prom_buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");

	while (*p) {
		size_t n = utf8_len(p);

		if (n == 0) {
			prom_buf_add(b, "?", 1);
			p++;
		} else if (*p == '\\') {
			prom_buf_add(b, "\\\\", 2);
			p++;
		} else if (*p == '"') {
			prom_buf_add(b, "\\\"", 2);
			p++;
		} else if (*p == '\n') {
			prom_buf_add(b, "\\n", 2);
			p++;
		} else {
			prom_buf_add(b, (const char *)p, n);
			p += n;
		}
	}
}

void prom_buf_seconds(struct prom_buf *b, uint64_t ns)
{
	char frac[16];
	int i;

	if (ns % 1000000000ULL == 0) {
		prom_buf_printf(b, "%llu", (unsigned long long)(ns / 1000000000ULL));
		return;
	}
	snprintf(frac, sizeof(frac), "%09llu", (unsigned long long)(ns % 1000000000ULL));
	for (i = 8; i > 0 && frac[i] == '0'; i--)
		frac[i] = '\0';
	prom_buf_printf(b, "%llu.%s", (unsigned long long)(ns / 1000000000ULL), frac);
}

/* Last component of the process's cgroup path (the v2 line "0::/path",
 * else the systemd v1 hierarchy "N:name=systemd:/path"): "app.service",
 * "docker-<id>.scope", or "" for the root. */
void prom_cgroup_label(const char *text, char *out, size_t n)
{
	const char *line = text, *path = NULL;
	size_t len = 0;

	if (!n)
		return;
	out[0] = '\0';
	while (line && *line) {
		const char *eol = strchr(line, '\n');
		size_t ll = eol ? (size_t)(eol - line) : strlen(line);
		const char *c1 = memchr(line, ':', ll);
		const char *c2 = c1 ? memchr(c1 + 1, ':', ll - (size_t)(c1 + 1 - line)) : NULL;

		if (c2) {
			int v2 = c1 - line == 1 && line[0] == '0' && c2 == c1 + 1;
			int sd = c2 - c1 - 1 == 12 && !strncmp(c1 + 1, "name=systemd", 12);

			if (v2 || (sd && !path)) {
				path = c2 + 1;
				len = ll - (size_t)(path - line);
			}
		}
		line = eol ? eol + 1 : NULL;
	}
	if (path) {
		const char *last;

		while (len > 0 && path[len - 1] == '/')
			len--;
		last = path + len;
		while (last > path && last[-1] != '/')
			last--;
		snprintf(out, n, "%.*s", (int)(path + len - last), last);
	}
}

/* ------------------------------------------------------------------ */
/* histogram                                                           */

uint64_t prom_hist_bucket_end_us(size_t b)
{
	uint32_t e, sub;

	if (b < 16)
		return b + 1;
	/* bucket 16 + (e - 4) * 8 + sub holds [(8 + sub) << (e - 3), (9 + sub) << (e - 3)) */
	e = 4 + (uint32_t)(b - 16) / 8;
	sub = (uint32_t)(b - 16) % 8;
	return (9ULL + sub) << (e - 3);
}

void prom_hist_collapse(const uint32_t *hist, size_t n, uint64_t out[NB + 1])
{
	size_t b, i;

	memset(out, 0, (NB + 1) * sizeof(out[0]));
	for (b = 0; b < n; b++) {
		if (!hist[b])
			continue;
		/* the last kernel bucket also holds everything above it */
		if (b + 1 < LS_HIST_BUCKETS) {
			uint64_t end = prom_hist_bucket_end_us(b);

			for (i = 0; i < NB; i++)
				if (end <= prom_lag_bound_us[i]) {
					out[i] += hist[b];
					break;
				}
		}
		out[NB] += hist[b];
	}
	/* per-bound counts -> cumulative */
	for (i = 1; i < NB; i++)
		out[i] += out[i - 1];
}

/* ------------------------------------------------------------------ */
/* per-target state                                                    */

struct prom_loop {
	uint32_t tid;
	char thread[32];
	/* exported = base + raw; raw is the latest reading of the kernel */
	uint64_t raw[NB + 1], base[NB + 1];
	uint64_t raw_busy, base_busy, raw_stalls, base_stalls;
	uint64_t max_ns;
	uint64_t gil_ns;
};

struct prom_site {
	enum finding_kind kind;
	uint32_t tid;
	uint64_t key;
	char *syscall, *function, *file, *thread;
	int line;
	int exported;
	uint64_t count, ns;                 /* latest, never decreasing */
	uint64_t folded_count, folded_ns;   /* in "other" at the last update */
	uint64_t off_count, off_ns;         /* left in "other" when promoted */
};

struct prom_target {
	int pid;
	char *comm, *cgroup, *command, *runtime;
	int top_n;
	uint64_t events;
	struct prom_loop *loops;
	size_t nloops, caploops;
	struct prom_site *sites;
	size_t nsites, capsites;
};

static char *str_dup(const char *s)
{
	size_t n = strlen(s ? s : "");
	char *p = malloc(n + 1);

	if (p)
		memcpy(p, s ? s : "", n + 1);
	return p;
}

struct prom_target *prom_target_new(const struct prom_target_info *info, int top_n)
{
	struct prom_target *t = calloc(1, sizeof(*t));
	char cmd[COMMAND_LABEL_MAX + 4];

	if (!t)
		return NULL;
	t->pid = info->pid;
	t->top_n = top_n > 0 ? top_n : 1;
	snprintf(cmd, sizeof(cmd), "%s", info->command ? info->command : "");
	if (strlen(cmd) > COMMAND_LABEL_MAX)
		memcpy(cmd + COMMAND_LABEL_MAX, "...", 4);
	t->comm = str_dup(info->comm);
	t->cgroup = str_dup(info->cgroup);
	t->command = str_dup(cmd);
	t->runtime = str_dup(info->runtime);
	if (!t->comm || !t->cgroup || !t->command || !t->runtime) {
		prom_target_free(t);
		return NULL;
	}
	return t;
}

void prom_target_free(struct prom_target *t)
{
	size_t i;

	if (!t)
		return;
	for (i = 0; i < t->nsites; i++) {
		free(t->sites[i].syscall);
		free(t->sites[i].function);
		free(t->sites[i].file);
		free(t->sites[i].thread);
	}
	free(t->sites);
	free(t->loops);
	free(t->comm);
	free(t->cgroup);
	free(t->command);
	free(t->runtime);
	free(t);
}

int prom_target_pid(const struct prom_target *t) { return t->pid; }

int prom_target_runtime_set(struct prom_target *t, const char *runtime)
{
	char *copy;

	if (!strcmp(t->runtime, runtime ? runtime : ""))
		return 0;
	copy = str_dup(runtime);
	if (!copy)
		return -1;
	free(t->runtime);
	t->runtime = copy;
	return 0;
}

size_t prom_target_nsites(const struct prom_target *t)
{
	size_t i, n = 0;

	for (i = 0; i < t->nsites; i++)
		n += t->sites[i].exported != 0;
	return n;
}

static int grow(void **arr, size_t *cap, size_t need, size_t elem)
{
	size_t n = *cap ? *cap : 8;
	void *p;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	p = realloc(*arr, n * elem);
	if (!p)
		return -1;
	*arr = p;
	*cap = n;
	return 0;
}

static const char *thread_name(const struct model *m, uint32_t tid, char *buf, size_t n)
{
	const char *name;
	size_t i;

	for (i = 0; i < model_nloops(m); i++) {
		const struct loop_info *l = model_loop_at(m, i);

		if (l->tid == tid && l->name[0])
			return l->name;
	}
	name = model_thread_name(m, tid);
	if (name && name[0])
		return name;
	snprintf(buf, n, "tid-%u", tid);
	return buf;
}

static int loops_update(struct prom_target *t, const struct model *m)
{
	size_t i, j, k;

	for (i = 0; i < model_nloops(m); i++) {
		const struct loop_info *l = model_loop_at(m, i);
		struct prom_loop *pl = NULL;
		uint64_t cur[NB + 1];
		int reset = 0;
		char buf[32];

		for (j = 0; j < t->nloops; j++)
			if (t->loops[j].tid == l->tid) {
				pl = &t->loops[j];
				break;
			}
		if (!pl) {
			if (grow((void **)&t->loops, &t->caploops, t->nloops + 1, sizeof(*pl)) < 0)
				return -1;
			pl = &t->loops[t->nloops++];
			memset(pl, 0, sizeof(*pl));
			pl->tid = l->tid;
		}
		/* named once announced; the name is frozen with the first series */
		if (!pl->thread[0])
			snprintf(pl->thread, sizeof(pl->thread), "%s", thread_name(m, l->tid, buf, sizeof(buf)));
		prom_hist_collapse(l->hist, LS_HIST_BUCKETS, cur);
		for (k = 0; k <= NB; k++)
			if (cur[k] < pl->raw[k])
				reset = 1;
		if (l->busy_ns < pl->raw_busy || l->stalls < pl->raw_stalls)
			reset = 1;
		if (reset) {
			for (k = 0; k <= NB; k++)
				pl->base[k] += pl->raw[k];
			pl->base_busy += pl->raw_busy;
			pl->base_stalls += pl->raw_stalls;
		}
		memcpy(pl->raw, cur, sizeof(cur));
		pl->raw_busy = l->busy_ns;
		pl->raw_stalls = l->stalls;
		if (l->max_ns > pl->max_ns)
			pl->max_ns = l->max_ns;
		if (l->gil_wait_ns > pl->gil_ns)
			pl->gil_ns = l->gil_wait_ns;
	}
	return 0;
}

static struct prom_site *site_find(struct prom_target *t, const struct finding *f)
{
	size_t i;

	for (i = 0; i < t->nsites; i++)
		if (t->sites[i].key == f->key && t->sites[i].kind == f->kind && t->sites[i].tid == f->tid)
			return &t->sites[i];
	return NULL;
}

static struct prom_site *site_new(struct prom_target *t, const struct model *m, const struct finding *f)
{
	struct prom_site *s;
	char buf[32];
	const char *sys = "";

	if (grow((void **)&t->sites, &t->capsites, t->nsites + 1, sizeof(*s)) < 0)
		return NULL;
	s = &t->sites[t->nsites];
	memset(s, 0, sizeof(*s));
	s->kind = f->kind;
	s->tid = f->tid;
	s->key = f->key;
	s->line = -1;
	if (f->kind == FINDING_BLOCKING_SYSCALL || f->kind == FINDING_LOCK_CONTENTION ||
	    f->kind == FINDING_GIL_CONTENTION)
		sys = report_syscall_label(f->nr);
	s->syscall = str_dup(sys);
	s->function = str_dup(f->stack.n > 0 ? f->stack.f[0].function : "");
	s->file = str_dup(f->stack.n > 0 ? f->stack.f[0].file : "");
	if (f->stack.n > 0)
		s->line = f->stack.f[0].line;
	s->thread = str_dup(thread_name(m, f->tid, buf, sizeof(buf)));
	if (!s->syscall || !s->function || !s->file || !s->thread) {
		free(s->syscall);
		free(s->function);
		free(s->file);
		free(s->thread);
		return NULL;
	}
	t->nsites++;
	return s;
}

static int site_rank_cmp(const void *a, const void *b)
{
	const struct prom_site *x = *(const struct prom_site *const *)a;
	const struct prom_site *y = *(const struct prom_site *const *)b;

	if (x->ns != y->ns)
		return x->ns > y->ns ? -1 : 1;
	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	if (x->tid != y->tid)
		return x->tid < y->tid ? -1 : 1;
	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return 0;
}

static int sites_update(struct prom_target *t, const struct model *m)
{
	const struct finding **fs = NULL;
	struct prom_site **rank = NULL;
	size_t i, nf, nexp = 0, cap = 2 * (size_t)t->top_n;
	int ret = -1;

	/* what the JSON report lists (GIL waits once one reached the threshold) */
	nf = model_findings_sorted(m, &fs);
	if (model_nfindings(m) && !fs)
		return -1;
	for (i = 0; i < nf; i++) {
		struct prom_site *s = site_find(t, fs[i]);

		if (!s && !(s = site_new(t, m, fs[i])))
			goto cleanup;
		if (fs[i]->count > s->count)
			s->count = fs[i]->count;
		if (fs[i]->total_ns > s->ns)
			s->ns = fs[i]->total_ns;
	}
	if (t->nsites) {
		rank = malloc(t->nsites * sizeof(*rank));
		if (!rank)
			goto cleanup;
	}
	for (i = 0; i < t->nsites; i++) {
		rank[i] = &t->sites[i];
		nexp += t->sites[i].exported != 0;
	}
	if (t->nsites)
		qsort(rank, t->nsites, sizeof(*rank), site_rank_cmp);
	for (i = 0; i < t->nsites && i < (size_t)t->top_n; i++) {
		struct prom_site *s = rank[i];

		if (s->exported || nexp >= cap)
			continue;
		s->exported = 1;
		s->off_count = s->folded_count;
		s->off_ns = s->folded_ns;
		nexp++;
	}
	for (i = 0; i < t->nsites; i++) {
		struct prom_site *s = &t->sites[i];

		if (!s->exported) {
			s->folded_count = s->count;
			s->folded_ns = s->ns;
		}
	}
	ret = 0;
cleanup:
	free(rank);
	free(fs);
	return ret;
}

int prom_target_update(struct prom_target *t, const struct model *m, uint64_t events)
{
	int ret = 0;

	if (events > t->events)
		t->events = events;
	if (loops_update(t, m) < 0)
		ret = -1;
	if (sites_update(t, m) < 0)
		ret = -1;
	return ret;
}

/* ------------------------------------------------------------------ */
/* rendering                                                           */

static void family(struct prom_buf *b, const char *name, const char *type, const char *help)
{
	prom_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void label(struct prom_buf *b, const char *name, const char *value, int first)
{
	if (!first)
		buf_str(b, ",");
	buf_str(b, name);
	buf_str(b, "=\"");
	prom_buf_escape(b, value);
	buf_str(b, "\"");
}

static void labels_target(struct prom_buf *b, const struct prom_target *t)
{
	char pid[16];

	snprintf(pid, sizeof(pid), "%d", t->pid);
	label(b, "pid", pid, 1);
	label(b, "comm", t->comm, 0);
	label(b, "cgroup", t->cgroup, 0);
}

static void labels_loop(struct prom_buf *b, const struct prom_target *t, const struct prom_loop *l)
{
	char tid[16];

	snprintf(tid, sizeof(tid), "%u", l->tid);
	labels_target(b, t);
	label(b, "thread", l->thread, 0);
	label(b, "tid", tid, 0);
}

/* Site labels; s NULL: the target's "other" series of kind k. */
static void labels_site(struct prom_buf *b, const struct prom_target *t, const struct prom_site *s,
			enum finding_kind k)
{
	char tid[16] = "", line[16] = "";

	labels_target(b, t);
	if (s) {
		snprintf(tid, sizeof(tid), "%u", s->tid);
		if (s->line >= 0)
			snprintf(line, sizeof(line), "%d", s->line);
	}
	label(b, "thread", s ? s->thread : "", 0);
	label(b, "tid", tid, 0);
	label(b, "kind", finding_kind_name(s ? s->kind : k), 0);
	label(b, "syscall", s ? s->syscall : "", 0);
	label(b, "function", s ? s->function : "other", 0);
	label(b, "file", s ? s->file : "", 0);
	label(b, "line", line, 0);
}

static void sample_u64(struct prom_buf *b, const char *name, uint64_t v)
{
	prom_buf_printf(b, "%s %llu\n", name, (unsigned long long)v);
}

static void render_agent(struct prom_buf *b, const struct prom_agent *a)
{
	family(b, "loopspy_build_info", "gauge", "loopspy version serving these metrics.");
	buf_str(b, "loopspy_build_info{");
	label(b, "version", a->version, 1);
	buf_str(b, "} 1\n");
	family(b, "loopspy_targets_attached", "gauge", "Processes the agent is attached to now.");
	sample_u64(b, "loopspy_targets_attached", a->targets_attached);
	family(b, "loopspy_target_attaches_total", "counter", "Successful attaches since the agent started.");
	sample_u64(b, "loopspy_target_attaches_total", a->attaches);
	family(b, "loopspy_target_attach_failures_total", "counter",
	       "Matching processes the agent could not attach to.");
	sample_u64(b, "loopspy_target_attach_failures_total", a->attach_failures);
	family(b, "loopspy_target_detaches_total", "counter", "Targets detached (process exited or exec'd).");
	sample_u64(b, "loopspy_target_detaches_total", a->detaches);
	family(b, "loopspy_dropped_events_total", "counter",
	       "Ring-buffer records lost (all targets); non-zero means counts are lower bounds.");
	sample_u64(b, "loopspy_dropped_events_total", a->dropped_events);
	family(b, "loopspy_agent_cpu_seconds_total", "counter", "CPU time (user + system) used by the agent itself.");
	buf_str(b, "loopspy_agent_cpu_seconds_total ");
	prom_buf_seconds(b, a->cpu_ns);
	buf_str(b, "\n");
	family(b, "loopspy_agent_resident_memory_bytes", "gauge", "Resident memory of the agent itself.");
	sample_u64(b, "loopspy_agent_resident_memory_bytes", a->rss_bytes);
}

static void render_loops(struct prom_buf *b, struct prom_target *const *ts, size_t n)
{
	size_t i, j, k;

	family(b, "loopspy_loop_lag_seconds", "histogram",
	       "Busy time of event-loop iterations (how long ready callbacks waited).");
	for (i = 0; i < n; i++)
		for (j = 0; j < ts[i]->nloops; j++) {
			const struct prom_loop *l = &ts[i]->loops[j];

			for (k = 0; k <= NB; k++) {
				buf_str(b, "loopspy_loop_lag_seconds_bucket{");
				labels_loop(b, ts[i], l);
				label(b, "le", k < NB ? prom_lag_le[k] : "+Inf", 0);
				prom_buf_printf(b, "} %llu\n", (unsigned long long)(l->base[k] + l->raw[k]));
			}
			buf_str(b, "loopspy_loop_lag_seconds_sum{");
			labels_loop(b, ts[i], l);
			buf_str(b, "} ");
			prom_buf_seconds(b, l->base_busy + l->raw_busy);
			buf_str(b, "\nloopspy_loop_lag_seconds_count{");
			labels_loop(b, ts[i], l);
			prom_buf_printf(b, "} %llu\n", (unsigned long long)(l->base[NB] + l->raw[NB]));
		}
	family(b, "loopspy_loop_lag_max_seconds", "gauge", "Longest loop iteration since the agent attached.");
	for (i = 0; i < n; i++)
		for (j = 0; j < ts[i]->nloops; j++) {
			buf_str(b, "loopspy_loop_lag_max_seconds{");
			labels_loop(b, ts[i], &ts[i]->loops[j]);
			buf_str(b, "} ");
			prom_buf_seconds(b, ts[i]->loops[j].max_ns);
			buf_str(b, "\n");
		}
	family(b, "loopspy_loop_busy_seconds_total", "counter",
	       "Time the loop spent running callbacks; its rate is the loop's busy ratio.");
	for (i = 0; i < n; i++)
		for (j = 0; j < ts[i]->nloops; j++) {
			buf_str(b, "loopspy_loop_busy_seconds_total{");
			labels_loop(b, ts[i], &ts[i]->loops[j]);
			buf_str(b, "} ");
			prom_buf_seconds(b, ts[i]->loops[j].base_busy + ts[i]->loops[j].raw_busy);
			buf_str(b, "\n");
		}
	family(b, "loopspy_loop_stalls_total", "counter",
	       "Loop iterations at least as long as the stall threshold.");
	for (i = 0; i < n; i++)
		for (j = 0; j < ts[i]->nloops; j++) {
			buf_str(b, "loopspy_loop_stalls_total{");
			labels_loop(b, ts[i], &ts[i]->loops[j]);
			prom_buf_printf(b, "} %llu\n",
					(unsigned long long)(ts[i]->loops[j].base_stalls + ts[i]->loops[j].raw_stalls));
		}
	family(b, "loopspy_gil_wait_seconds_total", "counter", "Time the loop thread waited for the GIL.");
	for (i = 0; i < n; i++)
		for (j = 0; j < ts[i]->nloops; j++) {
			buf_str(b, "loopspy_gil_wait_seconds_total{");
			labels_loop(b, ts[i], &ts[i]->loops[j]);
			buf_str(b, "} ");
			prom_buf_seconds(b, ts[i]->loops[j].gil_ns);
			buf_str(b, "\n");
		}
}

/* "other" of kind k in t: folded sites, and what promoted sites left. */
static void other_sum(const struct prom_target *t, enum finding_kind k, uint64_t *count, uint64_t *ns)
{
	size_t i;

	*count = *ns = 0;
	for (i = 0; i < t->nsites; i++) {
		const struct prom_site *s = &t->sites[i];

		if (s->kind != k)
			continue;
		*count += s->exported ? s->off_count : s->count;
		*ns += s->exported ? s->off_ns : s->ns;
	}
}

static void render_sites(struct prom_buf *b, struct prom_target *const *ts, size_t n, int seconds)
{
	const char *name = seconds ? "loopspy_blocked_seconds_total" : "loopspy_findings_total";
	size_t i, j;
	int k;

	if (seconds)
		family(b, name, "counter",
		       "Time lost per finding site: asleep (blocking_syscall, lock/GIL contention), "
		       "iteration length (stall), in the collector (gc_pause).");
	else
		family(b, name, "counter", "Occurrences per finding site (docs/detectors.md).");
	for (i = 0; i < n; i++) {
		const struct prom_target *t = ts[i];

		for (j = 0; j < t->nsites; j++) {
			const struct prom_site *s = &t->sites[j];

			if (!s->exported)
				continue;
			buf_str(b, name);
			buf_str(b, "{");
			labels_site(b, t, s, s->kind);
			buf_str(b, "} ");
			if (seconds)
				prom_buf_seconds(b, s->ns - s->off_ns);
			else
				prom_buf_printf(b, "%llu", (unsigned long long)(s->count - s->off_count));
			buf_str(b, "\n");
		}
		for (k = 0; k < NKINDS; k++) {
			uint64_t count, ns;

			other_sum(t, (enum finding_kind)k, &count, &ns);
			/* counts only grow: once shown, always shown */
			if (!count)
				continue;
			buf_str(b, name);
			buf_str(b, "{");
			labels_site(b, t, NULL, (enum finding_kind)k);
			buf_str(b, "} ");
			if (seconds)
				prom_buf_seconds(b, ns);
			else
				prom_buf_printf(b, "%llu", (unsigned long long)count);
			buf_str(b, "\n");
		}
	}
}

int prom_render(struct prom_buf *b, const struct prom_agent *a, struct prom_target *const *ts, size_t n)
{
	size_t i;

	prom_buf_reset(b);
	render_agent(b, a);
	family(b, "loopspy_target_info", "gauge", "One per traced process: its command line and runtime.");
	for (i = 0; i < n; i++) {
		buf_str(b, "loopspy_target_info{");
		labels_target(b, ts[i]);
		label(b, "command", ts[i]->command, 0);
		label(b, "runtime", ts[i]->runtime, 0);
		buf_str(b, "} 1\n");
	}
	family(b, "loopspy_target_events_total", "counter", "Ring-buffer records received for the process.");
	for (i = 0; i < n; i++) {
		buf_str(b, "loopspy_target_events_total{");
		labels_target(b, ts[i]);
		prom_buf_printf(b, "} %llu\n", (unsigned long long)ts[i]->events);
	}
	render_loops(b, ts, n);
	render_sites(b, ts, n, 0);
	render_sites(b, ts, n, 1);
	return b->failed ? -1 : 0;
}
