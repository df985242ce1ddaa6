// SPDX-License-Identifier: GPL-2.0
/* loopspy kernel side.
 *
 * Cost model: nothing here runs per syscall of the target except the
 * epoll-family tracepoints (one per loop iteration). Blocking syscalls are
 * seen at sched_switch, where a sleeping thread is still `current`: its
 * syscall number and arguments are in its saved registers and its Python
 * stack can be walked. Loop statistics are aggregated in maps; only
 * sleeps inside busy iterations, stalls and late-iteration CPU samples
 * reach user space. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/usdt.bpf.h>
#include "loopspy.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u64 stall_ns = 100000000ULL;   /* --stall-threshold */
const volatile __u64 min_sleep_ns = 10000ULL;   /* smaller sleeps are only summed */
const volatile __u64 sample_after_ns = 10000000ULL; /* sample iterations older than this */
const volatile __u32 walk_stacks = 1;
const volatile __u64 min_gc_ns = 1000000ULL;     /* --block-threshold for GC pauses */

/* glibc keeps pthread_getspecific() slots for keys < 32 inline at this
 * offset of struct pthread (specific_1stblock, stable 2.27-2.38). */
#define LS_TSD_MAX_OFF (0x310 + 16 * 32)

/* A thread seen in epoll_wait once is a loop candidate: its first iteration
 * is tracked so a stall in it has a breakdown, but not for longer than
 * this, so a thread that never waits again costs nothing. */
#define LS_CANDIDATE_NS 2000000000ULL

struct ls_thread_state;
static __always_inline int iteration_tracked(struct ls_thread_state *ts, __u64 now);



/* A futex wait in progress, any thread of a target. */
struct futex_wait {
	__u64 start;
	__u64 uaddr;
	__u64 wake_ts;
	__u32 op;
	__u32 waker;
};



struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LS_MAX_TARGETS);
	__type(key, __u32);
	__type(value, struct ls_target_cfg);
} targets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct ls_thread_state);
} threads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct ls_pending_sleep);
} pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct futex_wait);
} fwaits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct ls_lock_key);
	__type(value, struct ls_lock_stats);
} locks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct ls_lockpair_key);
	__type(value, struct ls_lockpair_stats);
} lockpairs SEC(".maps");

/* Collections in progress on loop threads, with the triggering stack. */
struct gc_rec {
	__u64 start;
	__s32 gen;
	__u32 pad;
	struct ls_stack stack;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct gc_rec);
} gcs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gc_rec);
} zero_gc SEC(".maps");

/* never written: a source of zeroes for large values */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ls_pending_sleep);
} zero_sleep SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ls_loop_stats);
} zero_loop SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct ls_loop_stats);
} loops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LS_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 * 1024 * 1024);
} events SEC(".maps");

/* Fast path for the hooks that fire for every task on the machine: the
 * targets' tgids in a small global array user space writes directly
 * (mmap'ed .bss); the hash map is consulted only for them. fast_all = 1
 * (more targets than slots, followed children) falls back to the hash map
 * for everyone. Saves ~200 ns per context switch of other processes. */
#define LS_FAST_TGIDS 8
__u32 fast_tgids[LS_FAST_TGIDS] = {};
__u32 fast_all = 0;

static __always_inline int tgid_maybe_target(__u32 tgid)
{
	int i;

	if (fast_all)
		return 1;
	if (!tgid)
		return 0;
#pragma unroll
	for (i = 0; i < LS_FAST_TGIDS; i++)
		if (fast_tgids[i] == tgid)
			return 1;
	return 0;
}

static __always_inline struct ls_target_cfg *target_lookup(__u32 tgid)
{
	if (!tgid_maybe_target(tgid))
		return NULL;
	return bpf_map_lookup_elem(&targets, &tgid);
}

/* Whether tgid is a target, without its configuration: the fast list is
 * exact unless fast_all. */
static __always_inline int target_is(__u32 tgid)
{
	if (!tgid_maybe_target(tgid))
		return 0;
	return !fast_all || bpf_map_lookup_elem(&targets, &tgid) != NULL;
}

static __always_inline void counter_add(__u32 idx, __u64 n)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &idx);

	if (c)
		*c += n;
}

static __always_inline void *event_reserve(__u64 size)
{
	void *e = bpf_ringbuf_reserve(&events, size, 0);

	if (!e)
		counter_add(LS_CNT_DROPPED, 1);
	else
		counter_add(LS_CNT_EVENTS, 1);
	return e;
}

static __always_inline void hdr_fill(struct ls_event_hdr *h, __u32 type,
				     __u32 tid, __u32 tgid, __u64 now)
{
	h->type = type;
	h->tid = tid;
	h->tgid = tgid;
	h->cpu = bpf_get_smp_processor_id();
	h->ts = now;
}

/* Walk the Python frames of the current task into st. Every read may fail
 * (target memory is hostile or paged out): stop and say why. */
static __always_inline void stack_walk(struct task_struct *task,
				       const struct ls_py_offsets *py,
				       struct ls_stack *st)
{
	__u64 fsbase, tstate = 0, frame = 0, tid_check = 0, p = 0;
	__u32 i;

	st->nframes = 0;
	if (!walk_stacks || !py->enabled) {
		st->status = LS_STACK_DISABLED;
		return;
	}
	st->status = LS_STACK_NO_TSTATE;
	fsbase = BPF_CORE_READ(task, thread.fsbase);
	if (!fsbase || py->tsd_slot > LS_TSD_MAX_OFF)
		return;
	if (bpf_probe_read_user(&tstate, sizeof(tstate), (void *)(fsbase + py->tsd_slot)) || !tstate)
		return;
	if (bpf_probe_read_user(&tid_check, sizeof(tid_check),
				(void *)(tstate + py->tstate_thread_id)) || tid_check != fsbase)
		return;
	if (py->tstate_cframe >= 0) {
		if (bpf_probe_read_user(&p, sizeof(p), (void *)(tstate + py->tstate_cframe)) || !p)
			return;
		if (bpf_probe_read_user(&frame, sizeof(frame), (void *)(p + py->tstate_frame)))
			return;
	} else if (bpf_probe_read_user(&frame, sizeof(frame), (void *)(tstate + py->tstate_frame))) {
		return;
	}
	st->status = LS_STACK_OK;
	for (i = 0; i < LS_MAX_FRAMES; i++) {
		struct ls_py_frame *f;
		__u64 code = 0;
		__u32 pos = 0, fl = 0;

		if (!frame)
			return;
		if (i >= LS_MAX_FRAMES)
			break;
		f = &st->frames[i];
		if (bpf_probe_read_user(&code, sizeof(code), (void *)(frame + py->frame_code)))
			goto fault;
		if (py->pos_is_ptr) {
			__u64 ip = 0;

			if (bpf_probe_read_user(&ip, sizeof(ip), (void *)(frame + py->frame_pos)))
				goto fault;
			pos = ip >= code + py->code_adaptive ?
				(__u32)((ip - code - py->code_adaptive) / 2) : 0xffffffff;
		} else {
			__s32 lasti = 0;

			if (bpf_probe_read_user(&lasti, sizeof(lasti), (void *)(frame + py->frame_pos)))
				goto fault;
			pos = (__u32)lasti;
		}
		bpf_probe_read_user(&fl, sizeof(fl), (void *)(code + py->code_firstlineno));
		f->code = code;
		f->pos = pos;
		f->firstlineno = fl;
		st->nframes = i + 1;
		if (bpf_probe_read_user(&frame, sizeof(frame), (void *)(frame + py->frame_back)))
			goto fault;
	}
	if (frame)
		st->status = LS_STACK_TRUNCATED;
	return;
fault:
	st->status = LS_STACK_FAULT;
}

static __always_inline int iteration_tracked(struct ls_thread_state *ts, __u64 now)
{
	if (!ts->iter_start)
		return 0;
	if (ts->is_loop)
		return 1;
	if (now - ts->iter_start < LS_CANDIDATE_NS)
		return 1;
	ts->iter_start = 0;
	return 0;
}

static __always_inline struct ls_thread_state *thread_get(__u32 tid, __u32 tgid)
{
	struct ls_thread_state *ts = bpf_map_lookup_elem(&threads, &tid);
	struct ls_thread_state init = {};

	if (ts)
		return ts;
	init.tgid = tgid;
	init.loop_epfd = -1;
	init.cand_epfd = -1;
	bpf_map_update_elem(&threads, &tid, &init, BPF_NOEXIST);
	return bpf_map_lookup_elem(&threads, &tid);
}

/* Returns the loop's statistics entry (NULL if none) for iteration_open. */
static __always_inline struct ls_loop_stats *iteration_close(struct ls_thread_state *ts, __u32 tid,
							     __u32 tgid, __u64 now)
{
	struct ls_loop_stats *ls = bpf_map_lookup_elem(&loops, &tid);
	__u64 busy = now - ts->iter_start;

	if (!ls) {
		__u32 z = 0;
		struct ls_loop_stats *zero = bpf_map_lookup_elem(&zero_loop, &z);

		if (!zero) {
			ts->iter_start = 0;
			return NULL;
		}
		bpf_map_update_elem(&loops, &tid, zero, BPF_NOEXIST);
		ls = bpf_map_lookup_elem(&loops, &tid);
		if (!ls) {
			ts->iter_start = 0;
			return NULL;
		}
		ls->tgid = tgid;
		ls->first_ts = ts->iter_start;
	}
	ls->epfd = ts->loop_epfd;
	ls->iterations++;
	ls->busy_ns += busy;
	if (busy > ls->max_ns)
		ls->max_ns = busy;
	ls->iter_start = 0;
	{
		/* ls_hist_bucket clamps, but the compiler drops a plain mask
		 * the verifier needs: keep it in asm */
		__u64 b = ls_hist_bucket(busy / 1000);

		asm volatile("%[b] &= 255" : [b] "+r"(b));

		ls->hist[b]++;
	}
	if (busy >= stall_ns) {
		struct ls_ev_stall *e;

		ls->stalls++;
		e = event_reserve(sizeof(*e));
		if (e) {
			hdr_fill(&e->h, LS_EV_STALL, tid, tgid, now);
			e->start = ts->iter_start;
			e->end = now;
			e->blocked_ns = ts->blocked_ns;
			e->runnable_ns = ts->runnable_ns;
			e->preempt_ns = ts->preempt_ns;
			e->gc_ns = ts->gc_ns;
			e->nsleeps = ts->nsleeps;
			e->npreempt = ts->npreempt;
			bpf_ringbuf_submit(e, 0);
		}
	}
	ts->iter_start = 0;
	return ls;
}

/* ls: the loop's entry when the caller has it, else looked up */
static __always_inline void iteration_open(struct ls_thread_state *ts, __u32 tid, __u64 now,
					   struct ls_loop_stats *ls)
{
	ts->iter_start = now;
	ts->blocked_ns = 0;
	ts->runnable_ns = 0;
	ts->preempt_ns = 0;
	ts->nsleeps = 0;
	ts->npreempt = 0;
	ts->off_kind = 0;
	ts->gc_ns = 0;
	if (!ls)
		ls = bpf_map_lookup_elem(&loops, &tid);
	if (ls)
		ls->iter_start = now;
}

/* LS_EV_LOOP or LS_EV_CANDIDATE for the current thread; 1 when sent. */
static __always_inline int loop_event_send(__u32 type, __u32 tid, __u32 tgid, __u64 now, __s32 epfd)
{
	struct ls_ev_loop *e = event_reserve(sizeof(*e));

	if (!e)
		return 0;
	hdr_fill(&e->h, type, tid, tgid, now);
	e->epfd = epfd;
	e->pad = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
	return 1;
}

/* Loop iterations are timed from epoll_wait entry to epoll_wait entry; only
 * the entry is hooked (each syscall tracepoint program costs every
 * iteration ~80-100 ns). The next iteration starts at once, as if the wait
 * returned immediately, unless the thread goes to sleep in it: then
 * switch_out() marks it waiting and switch_in() starts the iteration. */
static __always_inline int epoll_enter(__s32 epfd)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, tid = (__u32)id;
	struct ls_thread_state *ts;
	__u64 now;

	if (!target_is(tgid))
		return 0;
	ts = thread_get(tid, tgid);
	if (!ts)
		return 0;
	now = bpf_ktime_get_ns();
	if (epfd == ts->cand_epfd) {
		ts->cand_count++;
	} else {
		ts->cand_epfd = epfd;
		ts->cand_count = 1;
	}
	if (ts->is_loop && epfd != ts->loop_epfd) {
		/* another epoll fd waited on from a loop thread: a new loop
		 * replacing the old one once it repeats, else a nested wait
		 * (a sync library's own selector) that counts as blocking */
		if (ts->cand_count < 3)
			return 0;
		ts->loop_epfd = epfd;
	}
	if (!ts->is_loop) {
		if (ts->cand_count < 2) {
			/* a candidate's first wait: time what follows it, and
			 * have it sampled already (its first iteration may be
			 * a stall) */
			iteration_open(ts, tid, now, NULL);
			if (!ts->announced)
				ts->announced = loop_event_send(LS_EV_CANDIDATE, tid, tgid, now, epfd);
			return 0;
		}
		ts->is_loop = 1;
		ts->loop_epfd = epfd;
		loop_event_send(LS_EV_LOOP, tid, tgid, now, epfd);
	}
	iteration_open(ts, tid, now, ts->iter_start ? iteration_close(ts, tid, tgid, now) : NULL);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_epoll_wait")
int epoll_wait_enter(struct trace_event_raw_sys_enter *ctx)
{
	return epoll_enter((__s32)ctx->args[0]);
}

SEC("tracepoint/syscalls/sys_enter_epoll_pwait")
int epoll_pwait_enter(struct trace_event_raw_sys_enter *ctx)
{
	return epoll_enter((__s32)ctx->args[0]);
}

SEC("tracepoint/syscalls/sys_enter_epoll_pwait2")
int epoll_pwait2_enter(struct trace_event_raw_sys_enter *ctx)
{
	return epoll_enter((__s32)ctx->args[0]);
}

/* A loop closing its epoll fd (asyncio's loop.close(), end of asyncio.run)
 * is gone: what its thread does next is not an iteration (pytest running
 * one loop per test, sync code after asyncio.run) until it waits on an
 * epoll fd again. */
SEC("tracepoint/syscalls/sys_enter_close")
int close_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, tid = (__u32)id;
	struct ls_thread_state *ts;
	struct ls_loop_stats *ls;
	__s32 fd = (__s32)ctx->args[0];

	if (!target_lookup(tgid))
		return 0;
	ts = bpf_map_lookup_elem(&threads, &tid);
	if (!ts || fd < 0 || (fd != ts->loop_epfd && fd != ts->cand_epfd))
		return 0;
	ts->iter_start = 0;
	ts->is_loop = 0;
	ts->loop_epfd = -1;
	ts->cand_epfd = -1;
	ts->cand_count = 0;
	ts->off_kind = 0;
	ls = bpf_map_lookup_elem(&loops, &tid);
	if (ls)
		ls->iter_start = 0;
	return 0;
}

static __always_inline int futex_is_wait(__u32 op)
{
	__u32 cmd = op & 0x7f; /* without PRIVATE and CLOCK_REALTIME */

	/* WAIT, LOCK_PI, WAIT_BITSET, WAIT_REQUEUE_PI, LOCK_PI2 */
	return cmd == 0 || cmd == 6 || cmd == 9 || cmd == 11 || cmd == 13;
}

/* Every thread of a target: remember futex waits to time them and learn
 * who ends them. */
static __always_inline void futex_wait_begin(struct task_struct *prev, __u32 tid, __u64 now)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(prev);
	long nr = BPF_CORE_READ(regs, orig_ax);
	struct futex_wait fw = {};

	if (nr == LS_NR_FUTEX) {
		fw.op = (__u32)BPF_CORE_READ(regs, si);
		if (!futex_is_wait(fw.op))
			return;
		fw.uaddr = BPF_CORE_READ(regs, di);
	} else if (nr == LS_NR_FUTEX_WAITV) {
		/* struct futex_waitv { u64 val; u64 uaddr; u32 flags; u32 rsvd; }[] */
		__u64 arr = BPF_CORE_READ(regs, di);

		if (bpf_probe_read_user(&fw.uaddr, sizeof(fw.uaddr), (void *)(arr + 8)))
			return;
		fw.op = 0xffff; /* marks futex_waitv */
	} else {
		return;
	}
	fw.start = now;
	bpf_map_update_elem(&fwaits, &tid, &fw, BPF_ANY);
}

static __always_inline void futex_wait_end(__u32 tid, __u32 tgid, __u64 now)
{
	struct futex_wait *fw = bpf_map_lookup_elem(&fwaits, &tid);
	struct ls_lock_key lk = {};
	struct ls_lockpair_key pk = {};
	struct ls_lock_stats *st;
	struct ls_lockpair_stats *ps;
	__u64 end, wait;

	if (!fw)
		return;
	end = fw->wake_ts && fw->wake_ts >= fw->start && fw->wake_ts <= now ? fw->wake_ts : now;
	wait = end - fw->start;
	lk.tgid = tgid;
	lk.uaddr = fw->uaddr;
	st = bpf_map_lookup_elem(&locks, &lk);
	if (!st) {
		struct ls_lock_stats init = {};

		bpf_map_update_elem(&locks, &lk, &init, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&locks, &lk);
	}
	if (st) {
		st->op = fw->op;
		st->last_waiter = tid;
		st->waits++;
		st->total_ns += wait;
		if (wait > st->max_ns)
			st->max_ns = wait;
		if (fw->waker)
			st->woken_by_peer++;
	}
	pk.uaddr = fw->uaddr;
	pk.tgid = tgid;
	pk.waiter = tid;
	pk.waker = fw->waker;
	ps = bpf_map_lookup_elem(&lockpairs, &pk);
	if (!ps) {
		struct ls_lockpair_stats init = {};

		bpf_map_update_elem(&lockpairs, &pk, &init, BPF_NOEXIST);
		ps = bpf_map_lookup_elem(&lockpairs, &pk);
	}
	if (ps) {
		ps->waits++;
		ps->total_ns += wait;
	}
	bpf_map_delete_elem(&fwaits, &tid);
}

/* Switched out inside epoll_wait on its own loop's fd (or a candidate's):
 * waiting for events, not blocking. */
static __always_inline int epoll_waiting(struct ls_thread_state *ts, struct pt_regs *regs, long nr)
{
	__s32 fd;

	if (nr != LS_NR_EPOLL_WAIT && nr != LS_NR_EPOLL_PWAIT && nr != LS_NR_EPOLL_PWAIT2)
		return 0;
	fd = (__s32)BPF_CORE_READ(regs, di);
	return fd == (ts->is_loop ? ts->loop_epfd : ts->cand_epfd);
}

static __always_inline void switch_out(struct task_struct *prev, bool preempt,
				       unsigned int prev_state, __u64 now)
{
	__u32 tgid = prev->tgid, tid = prev->pid;
	struct ls_target_cfg *cfg = target_lookup(tgid);
	struct ls_thread_state *ts;
	struct ls_pending_sleep *ps;
	struct pt_regs *regs;
	long nr;

	if (!cfg)
		return;
	if (!preempt && (prev_state & 0xff))
		futex_wait_begin(prev, tid, now);
	ts = bpf_map_lookup_elem(&threads, &tid);
	if (!ts || !iteration_tracked(ts, now))
		return;
	regs = (struct pt_regs *)bpf_task_pt_regs(prev);
	nr = BPF_CORE_READ(regs, orig_ax);
	if (epoll_waiting(ts, regs, nr)) {
		/* idle: the iteration opened at epoll_wait entry has not begun */
		struct ls_loop_stats *ls = bpf_map_lookup_elem(&loops, &tid);

		ts->iter_start = 0;
		ts->off_kind = 3;
		if (ls)
			ls->iter_start = 0;
		return;
	}
	ts->off_start = now;
	ts->wake_ts = 0;
	ts->waker_tid = 0;
	if (preempt || !(prev_state & 0xff)) {
		ts->off_kind = 2;
		return;
	}
	ts->off_kind = 1;
	ps = bpf_map_lookup_elem(&pending, &tid);
	if (!ps) {
		__u32 z = 0;
		struct ls_pending_sleep *zero = bpf_map_lookup_elem(&zero_sleep, &z);

		/* the value is too large for the BPF stack: insert a copy of
		 * an all-zero map value, then fill it in place */
		if (!zero)
			return;
		bpf_map_update_elem(&pending, &tid, zero, BPF_ANY);
		ps = bpf_map_lookup_elem(&pending, &tid);
		if (!ps)
			return;
	}
	ps->start = now;
	ps->state = prev_state;
	ps->nr = (__s32)nr;
	ps->args[0] = BPF_CORE_READ(regs, di);
	ps->args[1] = BPF_CORE_READ(regs, si);
	ps->args[2] = BPF_CORE_READ(regs, dx);
	ps->poll_fd = -1;
	/* poll()/ppoll() wait on an array the caller may reuse right after:
	 * the fd must be read now */
	if (ps->nr == 7 || ps->nr == 271) {
		__s32 fd = -1;

		if (!bpf_probe_read_user(&fd, sizeof(fd), (void *)ps->args[0]))
			ps->poll_fd = fd;
	}
	stack_walk(prev, &cfg->py, &ps->stack);
}

static __always_inline void switch_in(struct task_struct *next, __u64 now)
{
	__u32 tgid = next->tgid, tid = next->pid;
	struct ls_thread_state *ts;
	struct ls_pending_sleep *ps;
	struct ls_ev_sleep *e;
	__u64 wake, blocked, runnable;

	if (!target_lookup(tgid))
		return;
	futex_wait_end(tid, tgid, now);
	ts = bpf_map_lookup_elem(&threads, &tid);
	if (!ts || !ts->off_kind)
		return;
	if (ts->off_kind == 3) { /* back from waiting for events */
		ts->off_kind = 0;
		iteration_open(ts, tid, now, NULL);
		return;
	}
	if (ts->off_kind == 2 || !ts->iter_start) {
		if (ts->iter_start) {
			ts->runnable_ns += now - ts->off_start;
			ts->preempt_ns += now - ts->off_start;
			ts->npreempt++;
		}
		ts->off_kind = 0;
		return;
	}
	ts->off_kind = 0;
	wake = ts->wake_ts >= ts->off_start && ts->wake_ts <= now ? ts->wake_ts : now;
	blocked = wake - ts->off_start;
	runnable = now - wake;
	ts->blocked_ns += blocked;
	ts->runnable_ns += runnable;
	ts->nsleeps++;
	if (blocked < min_sleep_ns)
		return;
	ps = bpf_map_lookup_elem(&pending, &tid);
	if (!ps || ps->start != ts->off_start)
		return;
	e = event_reserve(sizeof(*e));
	if (!e)
		return;
	hdr_fill(&e->h, LS_EV_SLEEP, tid, tgid, now);
	e->start = ts->off_start;
	e->blocked_ns = blocked;
	e->runnable_ns = runnable;
	e->args[0] = ps->args[0];
	e->args[1] = ps->args[1];
	e->args[2] = ps->args[2];
	e->iter_start = ts->iter_start;
	e->nr = ps->nr;
	e->state = ps->state;
	e->waker_tid = ts->waker_tid;
	e->poll_fd = ps->poll_fd;
	if (bpf_probe_read_kernel(&e->stack, sizeof(e->stack), &ps->stack))
		e->stack.nframes = 0;
	bpf_ringbuf_submit(e, 0);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(on_sched_switch, bool preempt, struct task_struct *prev,
	     struct task_struct *next, unsigned int prev_state)
{
	int out = tgid_maybe_target(prev->tgid), in = tgid_maybe_target(next->tgid);
	__u64 now;

	/* most switches on the machine are of other processes: no clock read */
	if (!out && !in)
		return 0;
	now = bpf_ktime_get_ns();
	if (out)
		switch_out(prev, preempt, prev_state, now);
	if (in)
		switch_in(next, now);
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(on_sched_wakeup, struct task_struct *p)
{
	__u32 tgid = p->tgid, tid = p->pid;
	struct ls_target_cfg *cfg = target_lookup(tgid);
	struct ls_thread_state *ts;
	struct futex_wait *fw;
	__u64 id = bpf_get_current_pid_tgid(), now;
	__u32 waker = (id >> 32) == tgid ? (__u32)id : 0;

	if (!cfg)
		return 0;
	now = bpf_ktime_get_ns();
	fw = bpf_map_lookup_elem(&fwaits, &tid);
	if (fw && !fw->wake_ts) {
		fw->wake_ts = now;
		fw->waker = waker;
	}
	ts = bpf_map_lookup_elem(&threads, &tid);
	if (!ts || ts->off_kind != 1 || ts->wake_ts)
		return 0;
	ts->wake_ts = now;
	ts->waker_tid = (__u32)id;
	/* a peer thread ends a loop thread's futex wait: it held the lock
	 * (or the GIL) until now, so its stack names what the loop waited for */
	if (fw && waker && waker != tid) {
		struct ls_ev_waker *e = event_reserve(sizeof(*e));

		if (e) {
			hdr_fill(&e->h, LS_EV_WAKER, waker, tgid, now);
			e->waiter_tid = tid;
			e->pad = 0;
			e->uaddr = fw->uaddr;
			e->sleep_start = ts->off_start;
			stack_walk(bpf_get_current_task_btf(), &cfg->py, &e->stack);
			bpf_ringbuf_submit(e, 0);
		}
	}
	return 0;
}

static __always_inline void thread_forget(__u32 tid)
{
	bpf_map_delete_elem(&threads, &tid);
	bpf_map_delete_elem(&pending, &tid);
	bpf_map_delete_elem(&fwaits, &tid);
	bpf_map_delete_elem(&gcs, &tid);
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_process_exit, struct task_struct *p)
{
	__u32 tgid = BPF_CORE_READ(p, tgid), tid = BPF_CORE_READ(p, pid);
	struct ls_target_cfg *cfg = target_lookup(tgid);

	if (!cfg)
		return 0;
	thread_forget(tid);
	{
		/* a loop thread that exits mid-iteration is not stalled */
		struct ls_loop_stats *ls = bpf_map_lookup_elem(&loops, &tid);

		if (ls)
			ls->iter_start = 0;
	}
	/* a followed child is gone: free its slot (user-space targets are
	 * removed by user space) */
	if (tid == tgid && (cfg->flags & LS_TARGET_CHILD))
		bpf_map_delete_elem(&targets, &tgid);
	return 0;
}

/* exec replaces a target's memory: the Python layout user space found in
 * the old program means nothing in the new one, so stacks stop right
 * here (not garbage) until user space has found the new runtime; the old
 * program's per-thread state goes too. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_process_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 tgid = BPF_CORE_READ(p, tgid), tid = BPF_CORE_READ(p, pid);
	struct ls_target_cfg *cfg = target_lookup(tgid);
	struct ls_ev_exec *e;

	if (!cfg)
		return 0;
	cfg->py.enabled = 0;
	thread_forget(tid);
	if ((__u32)old_pid != tid)
		thread_forget((__u32)old_pid);
	e = event_reserve(sizeof(*e));
	if (e) {
		hdr_fill(&e->h, LS_EV_EXEC, tid, tgid, bpf_ktime_get_ns());
		bpf_ringbuf_submit(e, 0);
	}
	return 0;
}

/* --follow-children: a new process of a followed target becomes a target
 * with the same layout (its memory is a copy); threads are not processes. */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_process_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = BPF_CORE_READ(parent, tgid), ctgid = BPF_CORE_READ(child, tgid);
	struct ls_target_cfg *cfg, ccfg;
	struct ls_ev_fork *e;
	__u32 followed;

	if (ptgid == ctgid)
		return 0;
	cfg = target_lookup(ptgid);
	if (!cfg || !(cfg->flags & LS_TARGET_FOLLOW))
		return 0;
	__builtin_memcpy(&ccfg, cfg, sizeof(ccfg));
	ccfg.flags |= LS_TARGET_CHILD;
	followed = bpf_map_update_elem(&targets, &ctgid, &ccfg, BPF_NOEXIST) == 0;
	if (followed)
		fast_all = 1; /* the child is not in fast_tgids */
	e = event_reserve(sizeof(*e));
	if (e) {
		hdr_fill(&e->h, LS_EV_FORK, BPF_CORE_READ(parent, pid), ptgid, bpf_ktime_get_ns());
		e->child = ctgid;
		e->followed = followed;
		bpf_ringbuf_submit(e, 0);
	}
	return 0;
}

SEC("perf_event")
int on_sample(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, tid = (__u32)id;
	struct ls_target_cfg *cfg = target_lookup(tgid);
	struct ls_thread_state *ts;
	struct ls_ev_sample *e;
	struct task_struct *task;
	__u64 now;

	if (!cfg)
		return 0;
	ts = bpf_map_lookup_elem(&threads, &tid);
	now = bpf_ktime_get_ns();
	if (!ts || !iteration_tracked(ts, now))
		return 0;
	if (now - ts->iter_start < sample_after_ns)
		return 0;
	counter_add(LS_CNT_SAMPLES, 1);
	e = event_reserve(sizeof(*e));
	if (!e)
		return 0;
	task = bpf_get_current_task_btf();
	hdr_fill(&e->h, LS_EV_SAMPLE, tid, tgid, now);
	e->iter_start = ts->iter_start;
	/* kernel text lives in the upper half on x86_64 */
	e->user_mode = ctx->regs.ip < 0xffff800000000000ULL;
	e->nr = -1;
	if (!e->user_mode) {
		struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
		long nr = BPF_CORE_READ(regs, orig_ax);

		e->nr = nr >= 0 && nr < 1024 ? (__s32)nr : -1;
	}
	stack_walk(task, &cfg->py, &e->stack);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/* Garbage collections on loop threads: USDT python:gc__start/gc__done where
 * the binary has them, else a uprobe/uretprobe pair on the collector. */
static __always_inline int gc_begin(__s32 gen)
{
	__u64 id = bpf_get_current_pid_tgid(), now;
	__u32 tgid = id >> 32, tid = (__u32)id, z = 0;
	struct ls_target_cfg *cfg = target_lookup(tgid);
	struct ls_thread_state *ts;
	struct gc_rec *g, *zero;

	if (!cfg)
		return 0;
	ts = bpf_map_lookup_elem(&threads, &tid);
	now = bpf_ktime_get_ns();
	if (!ts || !iteration_tracked(ts, now))
		return 0;
	ts->gc_start = now;
	ts->gc_gen = gen;
	zero = bpf_map_lookup_elem(&zero_gc, &z);
	if (!zero)
		return 0;
	bpf_map_update_elem(&gcs, &tid, zero, BPF_ANY);
	g = bpf_map_lookup_elem(&gcs, &tid);
	if (!g)
		return 0;
	g->start = now;
	g->gen = gen;
	stack_walk(bpf_get_current_task_btf(), &cfg->py, &g->stack);
	return 0;
}

static __always_inline int gc_end(void)
{
	__u64 id = bpf_get_current_pid_tgid(), now, dur;
	__u32 tgid = id >> 32, tid = (__u32)id;
	struct ls_thread_state *ts;
	struct gc_rec *g;
	struct ls_ev_gc *e;

	if (!target_lookup(tgid))
		return 0;
	ts = bpf_map_lookup_elem(&threads, &tid);
	if (!ts || !ts->gc_start)
		return 0;
	now = bpf_ktime_get_ns();
	dur = now - ts->gc_start;
	ts->gc_start = 0;
	if (ts->iter_start)
		ts->gc_ns += dur;
	if (dur < min_gc_ns)
		return 0;
	g = bpf_map_lookup_elem(&gcs, &tid);
	if (!g)
		return 0;
	e = event_reserve(sizeof(*e));
	if (!e)
		return 0;
	hdr_fill(&e->h, LS_EV_GC, tid, tgid, now);
	e->start = g->start;
	e->dur_ns = dur;
	e->iter_start = ts->iter_start;
	e->generation = g->gen;
	e->pad = 0;
	if (bpf_probe_read_kernel(&e->stack, sizeof(e->stack), &g->stack))
		e->stack.nframes = 0;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("usdt")
int BPF_USDT(gc_usdt_start, long gen)
{
	return gc_begin((__s32)gen);
}

SEC("usdt")
int BPF_USDT(gc_usdt_done, long collected)
{
	return gc_end();
}

SEC("uprobe")
int BPF_KPROBE(gc_uprobe_start, void *a1, long a2)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct ls_target_cfg *cfg = target_lookup(tgid);
	__s32 gen = -1;

	if (cfg && cfg->gc_gen_arg == 2)
		gen = (__s32)a2;
	else if (cfg && cfg->gc_gen_arg == 1)
		gen = (__s32)(long)a1;
	return gc_begin(gen);
}

SEC("uretprobe")
int BPF_KRETPROBE(gc_uprobe_done)
{
	return gc_end();
}
