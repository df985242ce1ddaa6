/* Shared between loopspy.bpf.c and user space: fixed-width types only. */
#ifndef LOOPSPY_BPF_H
#define LOOPSPY_BPF_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define LS_MAX_FRAMES 48
#define LS_COMM_LEN 16
#define LS_HIST_BUCKETS 256
#define LS_MAX_TARGETS 64

enum ls_event_type {
	LS_EV_SLEEP = 1,  /* a loop thread slept off-CPU inside a busy iteration */
	LS_EV_STALL = 2,  /* a loop iteration exceeded the stall threshold */
	LS_EV_SAMPLE = 3, /* CPU sample of a loop thread late in an iteration */
	LS_EV_LOOP = 4,   /* a thread was recognised as an event loop */
	LS_EV_WAKER = 5,  /* a target thread woke a loop thread out of a futex wait */
	LS_EV_GC = 6,     /* a garbage collection on a loop thread */
	LS_EV_EXEC = 7,   /* a target exec'd: its Python layout no longer applies */
	LS_EV_FORK = 8,   /* a target with LS_TARGET_FOLLOW forked a process */
	LS_EV_CANDIDATE = 9, /* a thread's first epoll wait (struct ls_ev_loop):
			      * the tracer starts sampling it; not passed on */
};

#define LS_NR_FUTEX 202
#define LS_NR_FUTEX_WAITV 449
#define LS_NR_EPOLL_WAIT 232
#define LS_NR_EPOLL_PWAIT 281
#define LS_NR_EPOLL_PWAIT2 441

/* Python stack walking parameters of one target (filled by user space from
 * probes/cpython_layouts.inc once the runtime is initialised). */
struct ls_py_offsets {
	__u32 enabled;
	__u32 pos_is_ptr;        /* 3.11+: frame_pos is an instruction pointer */
	__u64 tsd_slot;          /* fsbase + tsd_slot = &tstate in glibc TSD */
	__s32 tstate_thread_id;
	__s32 tstate_cframe;     /* -1: top frame is read from tstate directly */
	__s32 tstate_frame;
	__s32 frame_back;
	__s32 frame_code;
	__s32 frame_pos;
	__s32 code_firstlineno;
	__s32 code_adaptive;     /* offset of first code unit (3.11+) */
};

enum ls_target_flags {
	LS_TARGET_FOLLOW = 1,    /* its forks become targets too (--follow-children) */
	LS_TARGET_CHILD = 2,     /* added by the kernel side at fork: removed at exit */
};

struct ls_target_cfg {
	struct ls_py_offsets py;
	__u32 gc_gen_arg;        /* uprobe: 1-based register argument holding the generation, 0: unknown */
	__u32 flags;             /* enum ls_target_flags */
};

struct ls_py_frame {
	__u64 code;        /* PyCodeObject* in the target */
	__u32 pos;         /* f_lasti (<= 3.10) or code-unit index (3.11+) */
	__u32 firstlineno; /* cheap checksum against code-object reuse */
};

struct ls_stack {
	__u32 nframes;
	__u32 status;      /* enum ls_stack_status */
	struct ls_py_frame frames[LS_MAX_FRAMES];
};

enum ls_stack_status {
	LS_STACK_OK = 0,
	LS_STACK_DISABLED = 1,   /* no Python layout for this target (yet) */
	LS_STACK_NO_TSTATE = 2,  /* thread has no Python thread state */
	LS_STACK_TRUNCATED = 3,  /* deeper than LS_MAX_FRAMES */
	LS_STACK_FAULT = 4,      /* a read failed mid-walk */
};

struct ls_event_hdr {
	__u32 type;
	__u32 tid;
	__u32 tgid;
	__u32 cpu;
	__u64 ts;          /* CLOCK_MONOTONIC ns (bpf_ktime_get_ns) */
};

struct ls_ev_sleep {
	struct ls_event_hdr h;
	__u64 start;       /* switched out */
	__u64 blocked_ns;  /* until woken */
	__u64 runnable_ns; /* woken until running again */
	__u64 args[3];     /* syscall arguments at the time it blocked */
	__u64 iter_start;
	__s32 nr;          /* syscall number, -1 when not in a syscall */
	__u32 state;       /* prev_state at switch-out (1 = S, 2 = D) */
	__u32 waker_tid;
	__s32 poll_fd;     /* poll/ppoll: fd of the first pollfd (read while it slept), else -1 */
	struct ls_stack stack;
};

struct ls_ev_stall {
	struct ls_event_hdr h;
	__u64 start;
	__u64 end;
	__u64 blocked_ns;
	__u64 runnable_ns;
	__u64 preempt_ns;
	__u64 gc_ns;
	__u32 nsleeps;
	__u32 npreempt;
};

struct ls_ev_sample {
	struct ls_event_hdr h;
	__u64 iter_start;
	__s32 nr;          /* syscall being executed when sampled in kernel, else -1 */
	__u32 user_mode;
	struct ls_stack stack;
};

struct ls_ev_waker {
	struct ls_event_hdr h;   /* tid = the waker */
	__u32 waiter_tid;
	__u32 pad;
	__u64 uaddr;
	__u64 sleep_start;       /* matches the waiter's ls_ev_sleep.start */
	struct ls_stack stack;   /* the waker's Python stack when it woke the waiter */
};

struct ls_ev_gc {
	struct ls_event_hdr h;
	__u64 start;
	__u64 dur_ns;
	__u64 iter_start;
	__s32 generation;        /* -1 when unknown */
	__u32 pad;
	struct ls_stack stack;   /* the code that triggered the collection */
};

/* Futex waits of every thread of a target, aggregated per address. */
struct ls_lock_key {
	__u32 tgid;
	__u32 pad;
	__u64 uaddr;
};

struct ls_lock_stats {
	__u32 op;                /* futex op of the last wait (flags included) */
	__u32 last_waiter;
	__u64 waits;
	__u64 total_ns;
	__u64 max_ns;
	__u64 woken_by_peer;     /* waits ended by another thread of the target */
};

struct ls_lockpair_key {
	__u64 uaddr;
	__u32 tgid;
	__u32 waiter;
	__u32 waker;             /* 0: timeout, signal or another process */
	__u32 pad;
};

struct ls_lockpair_stats {
	__u64 waits;
	__u64 total_ns;
};

struct ls_ev_exec {
	struct ls_event_hdr h;   /* tgid: the process; tid: the thread that exec'd (now tgid) */
};

struct ls_ev_fork {
	struct ls_event_hdr h;   /* tgid: the parent; tid: the forking thread */
	__u32 child;             /* the new process */
	__u32 followed;          /* 0: the targets map is full, not traced */
};

struct ls_ev_loop {
	struct ls_event_hdr h;
	__s32 epfd;
	__u32 pad;
	char comm[LS_COMM_LEN];
};

/* Kernel-side state of a thread that waited in epoll (a loop or a
 * candidate); user space reads it to see a stall in progress. */
struct ls_thread_state {
	__u32 tgid;
	__s32 loop_epfd;
	__s32 cand_epfd;
	__u32 cand_count;
	__u8 is_loop;
	__u8 off_kind;     /* 0: on CPU, 1: sleeping, 2: preempted, 3: waiting for events */
	__u8 announced;    /* LS_EV_CANDIDATE sent */
	__u8 pad;
	__u32 pad1;
	__u64 iter_start;
	__u64 off_start;
	__u64 wake_ts;
	__u32 waker_tid;
	__u32 nsleeps;
	__u32 npreempt;
	__u32 pad2;
	__u64 blocked_ns;
	__u64 runnable_ns;
	__u64 preempt_ns;   /* part of runnable_ns: preempted while running */
	__u64 gc_start;
	__u64 gc_ns;
	__s32 gc_gen;
	__u32 pad3;
};

/* A sleep in progress: walked at switch-out, emitted at switch-in when it
 * lasted long enough to matter. */
struct ls_pending_sleep {
	__u64 start;
	__u64 args[3];
	__s32 nr;
	__u32 state;
	__s32 poll_fd;
	__u32 pad;
	struct ls_stack stack;
};

/* Per loop thread, aggregated in the kernel so a busy loop costs no events. */
struct ls_loop_stats {
	__u32 tgid;
	__s32 epfd;
	__u64 iterations;
	__u64 busy_ns;
	__u64 max_ns;
	__u64 stalls;
	__u64 iter_start;  /* != 0 while an iteration is running (live stalls) */
	__u64 first_ts;
	__u32 hist[LS_HIST_BUCKETS]; /* busy time per iteration, see ls_hist_bucket */
};

enum ls_counter {
	LS_CNT_DROPPED = 0,
	LS_CNT_EVENTS = 1,
	LS_CNT_SWITCH = 2,
	LS_CNT_SAMPLES = 3,
	LS_CNT_MAX = 4,
};

/* Log-linear histogram of microseconds: 16 exact buckets, then 8 per power
 * of two (<= 6.25% relative error). */
static inline __u32 ls_hist_bucket(__u64 us)
{
	__u32 e = 0;
	__u64 v;

	if (us < 16)
		return (__u32)us;
	v = us;
	if (v >> 32) { v >>= 32; e += 32; }
	if (v >> 16) { v >>= 16; e += 16; }
	if (v >> 8) { v >>= 8; e += 8; }
	if (v >> 4) { v >>= 4; e += 4; }
	if (v >> 2) { v >>= 2; e += 2; }
	if (v >> 1) { e += 1; }
	/* e >= 4 here */
	{
		__u32 idx = 16 + (e - 4) * 8 + (__u32)((us >> (e - 3)) & 7);
		return idx < LS_HIST_BUCKETS ? idx : LS_HIST_BUCKETS - 1;
	}
}

#endif
