/* Reading a JSON report back (`loopspy report`, `diff`, the CI gate): the
 * loopspy-report/1 document as C structs, every field checked for presence
 * and type, and the grouping of findings into sites. */
#ifndef LOOPSPY_REPORT_READ_H
#define LOOPSPY_REPORT_READ_H
#include <stddef.h>
#include <stdint.h>

struct rframe {
	const char *function;
	const char *file;
	int line;                 /* -1: unknown */
};

struct rsyscall {
	const char *syscall;
	double blocked_ms;
	uint64_t count, samples;
};

struct rholder {
	long tid;
	const char *thread_name;
	uint64_t waits;
	double wait_ms, share;
	struct rframe *stack;     /* when it released; innermost first */
	size_t nstack;
};

struct rfinding {
	const char *kind;         /* "stall", "blocking_syscall", ... (kept as written) */
	long tid;
	const char *thread_name;
	const char *syscall;      /* NULL when null */
	uint64_t count;
	double total_ms, max_ms;
	struct rframe *stack;     /* innermost first */
	size_t nstack;
	const char *fd_kind;      /* NULL when null or absent */
	int has_breakdown;
	double on_cpu_ms, blocked_ms, runnable_ms;
	struct rsyscall *sys;
	size_t nsys;
	uint64_t samples;
	double dominant_share;    /* -1 when null or absent */
	const char *lock_kind;    /* lock/GIL contention; NULL when absent */
	struct rholder *holders;  /* lock/GIL contention, largest share first */
	size_t nholders;
	long generation;          /* gc_pause; -1 when null or absent */
};

struct rbin {
	double lt_ms;             /* iterations shorter than this ... */
	uint64_t count;           /* ... and not shorter than the previous bin's */
};

struct rloop {
	long tid;
	const char *thread_name;
	uint64_t iterations, stalls;
	double lag_p50, lag_p99, lag_max;
	double busy_ratio;
	double gil_wait_ms;       /* 0 when absent */
	struct rbin *hist;        /* lag_histogram; NULL when absent */
	size_t nhist;
};

struct revent {
	long tid;
	const char *kind;
	double start_ms, dur_ms;
	const char *syscall, *function, *file; /* NULL when absent */
	int line;                 /* -1 when absent */
};

struct report {
	const char *schema;
	const char *loopspy_version;  /* "" when absent */
	long pid;
	const char *command;
	const char *runtime_name;     /* NULL when absent */
	const char *runtime_version;  /* NULL when null or absent */
	int python_stacks;            /* -1 when absent */
	long exit_status;             /* -1 when absent */
	const char *started_at;       /* NULL when absent */
	const char *end_reason;       /* NULL when absent */
	double duration_ms;
	uint64_t dropped_events, events;
	double stall_ms, block_ms;    /* -1 when absent */
	struct rloop *loops;
	size_t nloops;
	struct rfinding *findings;
	size_t nfindings;
	int has_timeline;
	uint64_t timeline_dropped;
	struct revent *timeline;
	size_t ntimeline;
	void *tree;                   /* the parsed document; strings point into it */
};

/* Parses and checks a report. 0 on success; -1 with a one-line reason in
 * err (e.g. "findings[2].max_ms: expected a number") when the text is not
 * JSON, truncated, not a loopspy report, of another schema version, or has
 * a missing or wrongly typed field. Invalid UTF-8 in strings is replaced by
 * '?'. */
int report_parse(const char *text, size_t len, struct report **out, char *err, size_t errlen);
void report_free(struct report *r);
/* The parsed document printed again (malloc'd), NULL on allocation failure. */
char *report_print(const struct report *r);

/* Library code: a path with a site-packages or dist-packages component, a
 * pythonX or pythonX.Y directory right under lib/ or lib64/ (the standard
 * library of any install, virtualenv or pyenv build), or a pseudo-file such
 * as "<frozen importlib._bootstrap>". Everything else is the user's. */
int report_frame_is_library(const char *file);
/* Where a finding is reported: the innermost frame of its stack in a
 * function of the user's code; else (a GIL or lock wait seen only in the
 * loop's machinery) the innermost one of its first holder's stack; else the
 * same with module-level frames ("<module>") allowed; else its innermost
 * frame; NULL when it has no stack. */
const struct rframe *report_site_frame(const struct rfinding *f);

/* A finding site: findings with the same kind, syscall and innermost user
 * frame (file, function, line), merged. */
struct report_site {
	const char *kind;
	const char *syscall;      /* NULL for kinds without one */
	const struct rframe *frame; /* the user frame, NULL without a stack */
	const struct rfinding *top; /* its largest finding (stack, breakdown) */
	size_t nfindings;
	uint64_t count, samples;
	double total_ms, max_ms;
};

struct report_sites {
	struct report_site *v;    /* by total time, largest first; ties by key */
	size_t n;
	size_t *of;               /* of[i]: site of finding i */
};

int report_sites_build(const struct report *r, struct report_sites *out);
void report_sites_free(struct report_sites *s);
/* Orders sites by kind, syscall, file, function, line; across_runs: by
 * kind, syscall, file name (last component) and function only — the key
 * that matches a site between two recordings. */
int report_site_cmp(const struct report_site *a, const struct report_site *b, int across_runs);
int report_site_cmp_key(const struct report_site *a, const struct report_site *b);
/* "blocking_syscall clock_nanosleep at refresh_cache (/srv/app.py:17)" */
void report_site_describe(const struct report_site *s, char *buf, size_t n);
/* The last path component. */
const char *report_basename(const char *path);

/* "stall", "blocking_syscall", "lock_contention", "gil_contention", "gc_pause" */
extern const char *const report_kinds[];
extern const size_t report_nkinds;

#endif
