/* The recording model: what loopspy knows about a target, shared by
 * `record`/`run` (summary, JSON), `top` and the reports. Pure: it is fed
 * symbolized events and never touches the system itself. */
#ifndef LOOPSPY_MODEL_H
#define LOOPSPY_MODEL_H
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>
#include "../../bpf/loopspy.h"

#define MODEL_MAX_FRAMES LS_MAX_FRAMES
#define MODEL_MAX_SYS 8

struct mframe {
	const char *function; /* interned in the model: compare by pointer */
	const char *file;
	int line;
};

struct mstack {
	int n;
	int status;           /* enum ls_stack_status */
	struct mframe f[MODEL_MAX_FRAMES];
};

enum finding_kind {
	FINDING_STALL = 0,
	FINDING_BLOCKING_SYSCALL = 1,
};

struct finding_sys {
	int nr;               /* syscall, -1 for sleeps outside syscalls */
	uint64_t blocked_ns;
	uint64_t count;       /* sleeps */
	uint64_t samples;     /* CPU samples taken inside it */
};

struct finding {
	enum finding_kind kind;
	uint32_t tid;
	int nr;               /* blocking_syscall: the syscall; stall: -1 */
	uint64_t key;
	uint64_t count, total_ns, max_ns;
	uint64_t first_ts, last_ts;
	struct mstack stack;
	/* blocking_syscall */
	char fd_kind[16];
	uint64_t stalls;      /* loop stalls this call explains */
	/* stall */
	uint64_t on_cpu_ns, blocked_ns, runnable_ns;
	uint64_t samples, dominant_samples;
	struct finding_sys sys[MODEL_MAX_SYS];
	int nsys;
};

struct loop_info {
	uint32_t tid;
	int epfd;
	char name[32];
	uint64_t iterations, busy_ns, max_ns, stalls, first_ts;
	uint64_t iter_start;  /* != 0 while an iteration runs (live stall) */
	uint64_t gil_wait_ns, gil_waits;
	uint64_t starved_stalls; /* stalls made long by waiting for a CPU */
	uint64_t pend_iter;   /* iteration whose events are buffered */
	int confirmed;        /* seen waiting repeatedly on its epoll fd */
	uint32_t hist[LS_HIST_BUCKETS];
};

/* One sleep of a loop thread inside a busy iteration, symbolized. */
struct model_sleep {
	uint32_t tid;
	uint64_t ts, start, blocked_ns, runnable_ns, iter_start;
	int nr;
	uint64_t args[3];
	const char *fd_kind;  /* may be NULL */
	const struct mstack *stack;
};

struct model_sample {
	uint32_t tid;
	uint64_t ts, iter_start;
	int nr;
	const struct mstack *stack;
};

/* Bounded log of individual events with timestamps (Chrome trace export). */
enum timeline_kind {
	TL_STALL = 0,
	TL_BLOCKING = 1,
	TL_GIL_WAIT = 2,
	TL_LOCK_WAIT = 3,
	TL_GC = 4,
};

struct timeline_ev {
	uint32_t tid;
	enum timeline_kind kind;
	int nr;               /* syscall for TL_BLOCKING, else -1 */
	uint64_t start, dur;  /* ns, same clock as events (CLOCK_MONOTONIC) */
	const struct mstack *stack; /* interned, may be empty */
};

#define MODEL_TIMELINE_MAX 20000

struct model_config {
	uint64_t stall_ns;
	uint64_t block_ns;
	uint64_t t0_ns;       /* recording start, CLOCK_MONOTONIC */
	uint64_t gil_addr, gil_size; /* futex waits inside are GIL waits */
};

struct model;

struct model *model_new(const struct model_config *cfg);
void model_free(struct model *m);

/* Interns a string (NULL → NULL); the copy lives as long as the model. */
const char *model_intern(struct model *m, const char *s);
void model_set_gil(struct model *m, uint64_t addr, uint64_t size);

struct loop_info *model_loop(struct model *m, uint32_t tid, int create);
/* The kernel side recognised tid as an event loop: its buffered sleeps
 * (first iteration) become findings. */
void model_loop_confirm(struct model *m, uint32_t tid);
void model_loop_update(struct model *m, uint32_t tid, const struct ls_loop_stats *st);

void model_add_sleep(struct model *m, const struct model_sleep *s);
void model_add_sample(struct model *m, const struct model_sample *s);
void model_add_stall(struct model *m, uint32_t tid, uint64_t start, uint64_t end,
		     uint64_t blocked_ns, uint64_t runnable_ns);

/* Most recent Python stack seen (CPU sample or sleep) in the iteration of
 * tid that started at iter_start — what a loop is stuck in right now while
 * a stall is in progress (loop_info.iter_start != 0). NULL when unknown. */
const struct mstack *model_loop_live_stack(const struct model *m, uint32_t tid, uint64_t iter_start);

/* Confirmed loops only. */
size_t model_nloops(const struct model *m);
const struct loop_info *model_loop_at(const struct model *m, size_t i);
size_t model_nfindings(const struct model *m);
const struct finding *model_finding_at(const struct model *m, size_t i);
const struct model_config *model_cfg(const struct model *m);

/* Sorted copy of finding pointers (by total time, descending; ties by key) */
size_t model_findings_sorted(const struct model *m, const struct finding ***out);

/* Timeline in time order (oldest first); dropped = events that did not fit. */
size_t model_timeline(const struct model *m, const struct timeline_ev **out, uint64_t *dropped);
void model_timeline_add(struct model *m, uint32_t tid, enum timeline_kind kind, int nr,
			uint64_t start, uint64_t dur, const struct mstack *stack);

/* Latency percentile (0..100) of a loop's iteration busy time, in ns. */
uint64_t loop_percentile_ns(const struct loop_info *l, double pct);

#endif
