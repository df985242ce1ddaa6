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
	FINDING_LOCK_CONTENTION = 2,
	FINDING_GIL_CONTENTION = 3,
	FINDING_GC_PAUSE = 4,
};

#define MODEL_MAX_HOLDERS 4

/* A thread whose release ended the loop's wait (lock holder, GIL holder). */
struct finding_holder {
	uint32_t tid;
	uint64_t waits;
	uint64_t wait_ns;     /* loop wait time this thread ended */
	struct mstack stack;  /* its Python stack when it released */
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
	uint64_t preempt_ns;  /* part of runnable_ns */
	uint64_t gc_ns, lock_wait_ns, gil_wait_ns; /* shares of blocked/on-CPU time */
	uint64_t samples, dominant_samples;
	struct finding_sys sys[MODEL_MAX_SYS];
	int nsys;
	/* lock_contention, gil_contention */
	char lock_kind[32];
	uint64_t lock_addr;
	uint64_t unattributed_ns; /* waits ended by a timeout or outside the process */
	struct finding_holder holders[MODEL_MAX_HOLDERS];
	int nholders;
	/* gc_pause */
	int generation;       /* highest generation seen, -1 unknown */
};

/* Futex-wait aggregate of one address, all threads (the report's locks[]). */
struct lock_party {
	uint32_t waiter, waker;   /* waker 0: timeout, signal or another process */
	uint64_t waits, total_ns;
};

#define MODEL_MAX_PARTIES 8

struct lock_info {
	uint64_t addr;
	uint32_t op;
	char kind[32];
	uint64_t waits, total_ns, max_ns, woken_by_peer;
	struct lock_party parties[MODEL_MAX_PARTIES];
	int nparties;
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
	/* what the loop is doing right now (read from the kernel while an
	 * iteration runs long): sleeping in live_nr, or in GC (live_nr -3) */
	uint64_t live_iter;
	int live_nr;
	const struct mstack *live_stack;
	/* the last peer that woke this loop out of a futex wait */
	uint32_t waker_tid;
	uint64_t waker_sleep_start;
	const struct mstack *waker_stack;
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
/* Same, with the time the collector ran during the iteration. All of
 * runnable_ns counts as preemption. */
void model_add_stall_gc(struct model *m, uint32_t tid, uint64_t start, uint64_t end,
			uint64_t blocked_ns, uint64_t runnable_ns, uint64_t gc_ns);

/* One stall as the kernel reports it. runnable_ns = preempt_ns (taken off
 * the CPU while running) + wake-up latency after its own sleeps. */
struct model_stall {
	uint32_t tid;
	uint64_t start, end;
	uint64_t blocked_ns, runnable_ns, preempt_ns, gc_ns;
};
void model_add_stall_ev(struct model *m, const struct model_stall *st);
/* A peer thread (waker_tid) ended the futex wait that loop thread
 * waiter_tid began at sleep_start; stack is the waker's at that moment. */
void model_add_waker(struct model *m, uint32_t waiter_tid, uint32_t waker_tid, uint64_t sleep_start,
		     const struct mstack *stack);
/* A garbage collection on a loop thread (generation -1 when unknown). */
void model_add_gc(struct model *m, uint32_t tid, uint64_t start, uint64_t dur_ns, int generation,
		  uint64_t iter_start, const struct mstack *stack);

/* Thread names for holders and waiters that are not loops. */
void model_thread_name_set(struct model *m, uint32_t tid, const char *name);
const char *model_thread_name(const struct model *m, uint32_t tid); /* NULL if unknown */

/* Futex-wait aggregates from the kernel, replacing earlier values. */
void model_lock_update(struct model *m, uint64_t addr, uint32_t op, uint64_t waits, uint64_t total_ns,
		       uint64_t max_ns, uint64_t woken_by_peer);
void model_lock_party_update(struct model *m, uint64_t addr, uint32_t waiter, uint32_t waker,
			     uint64_t waits, uint64_t total_ns);
size_t model_nlocks(const struct model *m);
const struct lock_info *model_lock_at(const struct model *m, size_t i);
/* "gil", "threading.Lock", "pthread_mutex", ... for a futex op/address. */
const char *model_lock_kind(const struct model *m, uint64_t addr, uint32_t op);
/* Human name of a finding kind: "stall", "blocking_syscall", ... */
const char *finding_kind_name(enum finding_kind k);

/* What a loop is stuck in right now while a stall is in progress
 * (loop_info.iter_start != 0): the blocking call or collection it is in
 * (model_loop_set_live), else the most recent Python stack seen (CPU sample
 * or sleep) in the iteration of tid that started at iter_start. NULL when
 * unknown. */
const struct mstack *model_loop_live_stack(const struct model *m, uint32_t tid, uint64_t iter_start);

/* Records what a loop is blocked in right now (iteration iter_start):
 * syscall nr (-3: garbage collection) and its stack; nr -1 clears it. */
void model_loop_set_live(struct model *m, uint32_t tid, uint64_t iter_start, int nr,
			 const struct mstack *stack);

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

/* Forgets the findings and the timeline (`top`'s reset); loops stay. */
void model_reset(struct model *m);

#endif
