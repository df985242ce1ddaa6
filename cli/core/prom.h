/* Prometheus text exposition (format 0.0.4) for `loopspy agent`: label
 * escaping, loop-lag histograms collapsed from the kernel's log-linear
 * buckets, finding sites with bounded cardinality (the top N per target,
 * the rest folded into function="other") and counters that never go
 * backwards. Pure: fed models and numbers, writes text into a buffer; the
 * agent calls it from its main thread only (docs/fleet.md). */
#ifndef LOOPSPY_PROM_H
#define LOOPSPY_PROM_H
#include <stddef.h>
#include <stdint.h>
#include "model.h"

#define PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Growing text buffer; after an allocation failure it stays as it was and
 * failed is set. */
struct prom_buf {
	char *p;              /* NUL-terminated when len > 0 */
	size_t len, cap;
	int failed;
};

void prom_buf_init(struct prom_buf *b);
void prom_buf_reset(struct prom_buf *b);
void prom_buf_free(struct prom_buf *b);
void prom_buf_add(struct prom_buf *b, const char *s, size_t n);
void prom_buf_printf(struct prom_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A label value: backslash, double quote and newline escaped, bytes that
 * are not valid UTF-8 replaced by '?'. NULL is written as "". */
void prom_buf_escape(struct prom_buf *b, const char *s);
/* ns as decimal seconds, exact: 1500000 -> "0.0015". */
void prom_buf_seconds(struct prom_buf *b, uint64_t ns);

/* The cgroup label from the text of /proc/PID/cgroup: the last component
 * of the cgroup v2 path ("0::/system.slice/app.service" -> "app.service"),
 * else of the systemd v1 hierarchy; "" for the root cgroup. */
void prom_cgroup_label(const char *proc_cgroup, char *out, size_t n);

/* The loop-lag histogram's upper bounds (seconds), +Inf not included. */
#define PROM_LAG_NBOUNDS 19
extern const uint64_t prom_lag_bound_us[PROM_LAG_NBOUNDS];
extern const char *const prom_lag_le[PROM_LAG_NBOUNDS]; /* "1e-05" ... "10" */

/* End (exclusive, microseconds) of kernel bucket b (ls_hist_bucket). */
uint64_t prom_hist_bucket_end_us(size_t b);
/* Collapses a kernel histogram of n buckets into cumulative counts per
 * bound: out[i] counts iterations known to be <= prom_lag_bound_us[i] (a
 * kernel bucket is counted under the first bound at or above its end, so
 * no bucket overstates), out[PROM_LAG_NBOUNDS] is +Inf = all iterations. */
void prom_hist_collapse(const uint32_t *hist, size_t n, uint64_t out[PROM_LAG_NBOUNDS + 1]);

/* Per-target exporter state: a snapshot of the model's numbers, the sites
 * that have their own series, offsets that keep counters monotonic. It
 * outlives the target's session (the grace period after it exits). */
struct prom_target;

struct prom_target_info {
	int pid;
	const char *comm;
	const char *cgroup;   /* last component of the cgroup path, may be "" */
	const char *command;  /* command line (truncated for the label) */
	const char *runtime;  /* "CPython 3.11.2", "not CPython" */
};

/* top_n: sites per target with their own series (at most 2*top_n over the
 * target's lifetime, see prom.c); NULL when out of memory. */
struct prom_target *prom_target_new(const struct prom_target_info *info, int top_n);
void prom_target_free(struct prom_target *t);
/* Takes the model's current numbers; events = ring-buffer records of the
 * target so far. 0, or -1 when out of memory (the snapshot stays valid). */
int prom_target_update(struct prom_target *t, const struct model *m, uint64_t events);
int prom_target_pid(const struct prom_target *t);
/* The runtime label of loopspy_target_info (a gauge: it may change). */
int prom_target_runtime_set(struct prom_target *t, const char *runtime);
/* Finding sites that have their own series (not folded into "other"). */
size_t prom_target_nsites(const struct prom_target *t);

/* Agent-wide numbers. */
struct prom_agent {
	const char *version;
	uint64_t targets_attached;    /* sessions running now */
	uint64_t targets_exported;    /* targets with series (attached + grace) */
	uint64_t attaches, attach_failures, detaches;
	uint64_t dropped_events;      /* ring-buffer records lost, all targets */
	uint64_t cpu_ns;              /* the agent's own user + system time */
	uint64_t rss_bytes;           /* the agent's resident memory */
};

/* Writes the whole exposition into b (reset first): agent metrics, then
 * every family over all targets. 0, or -1 when out of memory. */
int prom_render(struct prom_buf *b, const struct prom_agent *a, struct prom_target *const *targets, size_t n);

#endif
