/* The BPF side driver: open → set tunables → load → attach → poll. */
#ifndef LOOPSPY_TRACER_H
#define LOOPSPY_TRACER_H
#include <stdint.h>
#include <sys/types.h>
#include "../bpf/loopspy.h"

struct tracer;

struct tracer_opts {
	uint64_t stall_ns;
	uint64_t sample_after_ns;
	uint64_t min_sleep_ns;
	uint64_t min_gc_ns;   /* GC pauses shorter than this are only summed */
	int sample_hz;        /* 0: no CPU sampling */
	int walk_stacks;
	int verbose;          /* libbpf debug output */
};

/* Called for each ring buffer record; data points at an ls_event_hdr. */
typedef void (*tracer_event_fn)(void *ctx, const void *data, size_t size);

/* Loads and attaches everything; NULL with errno set and a message printed
 * on failure. */
struct tracer *tracer_open(const struct tracer_opts *o, tracer_event_fn fn, void *ctx);
void tracer_close(struct tracer *t);

int tracer_target_add(struct tracer *t, pid_t tgid, const struct ls_target_cfg *cfg);
int tracer_target_del(struct tracer *t, pid_t tgid);

/* Waits up to timeout_ms and dispatches events; returns events handled or
 * a negative errno (-EINTR is not an error). */
int tracer_poll(struct tracer *t, int timeout_ms);

/* Visits every loop statistics entry of tgid. */
int tracer_loops_read(struct tracer *t, pid_t tgid,
		      void (*fn)(void *ctx, uint32_t tid, const struct ls_loop_stats *st), void *ctx);

uint64_t tracer_counter(struct tracer *t, enum ls_counter c);

/* Visits the futex-wait aggregates of tgid: per address, then per
 * (address, waiter, waker). */
int tracer_locks_read(struct tracer *t, pid_t tgid,
		      void (*fn)(void *ctx, uint64_t uaddr, const struct ls_lock_stats *st), void *ctx);
int tracer_lockpairs_read(struct tracer *t, pid_t tgid,
			  void (*fn)(void *ctx, const struct ls_lockpair_key *k,
				     const struct ls_lockpair_stats *st), void *ctx);

/* Times CPython's collector in pid: USDT python:gc__start/gc__done in
 * binary when it has them, else a uprobe pair on the collector function
 * (symbols needed). Writes what was used (or why nothing) into how.
 * Returns 0 when GC timing works. */
int tracer_gc_attach(struct tracer *t, pid_t pid, const char *binary, int minor,
		     char *how, size_t how_len);
/* What a loop thread is doing right now inside a running iteration:
 * 1 sleeping (*sleep filled: syscall and the stack walked when it went to
 * sleep), 2 collecting garbage (*sleep->stack is the triggering stack),
 * 0 running or unknown. */
int tracer_live_state(struct tracer *t, uint32_t tid, struct ls_pending_sleep *sleep);

/* Removes the GC probes attached for pid. */
void tracer_gc_detach(struct tracer *t, pid_t pid);

/* `loopspy doctor`: the real BPF object is loaded and each of its probes
 * attached once, then everything is detached; kprobe and fentry support
 * (loopspy uses neither) is probed with tiny programs. fn gets one line
 * per check. Returns the number of required checks that failed. */
enum tracer_check_level {
	TRACER_CHECK_OK = 0,
	TRACER_CHECK_FAIL = 1,    /* loopspy needs it */
	TRACER_CHECK_WARN = 2,    /* an optional feature is missing */
	TRACER_CHECK_INFO = 3,
};
typedef void (*tracer_check_fn)(void *ctx, enum tracer_check_level level, const char *what,
				const char *detail);
int tracer_selftest(tracer_check_fn fn, void *ctx);

#endif
