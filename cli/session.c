/* A tracing session: attach or start, BPF events → model. */
#define _GNU_SOURCE
#include "session.h"
#include "cli.h"
#include "core/pysym.h"
#include "core/syscalls.h"
#include "core/units.h"
#include "../probes/procmem.h"
#include "../probes/pyruntime.h"
#include "../probes/tracer.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* How long the runtime of a process that exec'd (or a new child) is
 * looked for before its stacks are given up. */
#define SESSION_RT_RETRY_NS (10ULL * 1000000000ULL)
/* Children followed at once (the kernel side holds LS_MAX_TARGETS). */
#define SESSION_MAX_KIDS (2 * LS_MAX_TARGETS)
/* Thread names kept for holders and the locks table: under thread churn
 * (1000s of threads a second) new threads keep showing up; past this, they
 * are reported by tid only, so memory stays bounded. */
#define SESSION_MAX_NAMES 4096

/* A traced process: the target, or a child followed with --follow-children;
 * each has its own memory, so its own runtime and symbolizer. */
struct proc {
	pid_t pid;
	struct pyruntime rt;
	int rt_state;             /* 0 looking, 1 ready, -1 given up */
	uint64_t rt_until;        /* when looking stops (0: at once, after one try) */
	struct pysym *sym;
	char gc_how[700];
};

struct session {
	struct session_opts o;
	struct tracer *t;
	int shared;               /* t belongs to the caller */
	struct model *m;
	struct proc main;         /* the target */
	struct proc *kids;        /* followed children */
	size_t nkids;
	int kids_full_said;
	int main_execd;           /* the target exec'd at least once */
	unsigned nnames;          /* thread names given to the model */
	pid_t pid;
	int pidfd;
	int child_done, child_status;
	char comm[64];
	char command[512];
	char started_at[32];
	char rtdesc[700];
	uint64_t t0, last_loops;
	uint64_t events;
	struct mstack scratch;
	char fdbuf[32];
};

uint64_t session_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void read_small(const char *path, char *buf, size_t n, int nul_to_space)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t r = fd >= 0 ? read(fd, buf, n - 1) : -1;
	ssize_t i;

	if (fd >= 0)
		close(fd);
	if (r < 0)
		r = 0;
	buf[r] = '\0';
	while (r > 0 && (buf[r - 1] == '\n' || buf[r - 1] == '\0'))
		buf[--r] = '\0';
	for (i = 0; nul_to_space && i < r; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
}

static void thread_name_get(pid_t main_pid, pid_t pid, uint32_t tid, char *buf, size_t n)
{
	char path[64];

	/* CPython does not name its OS threads; its main thread is "MainThread"
	 * (a followed child's says which process) */
	if ((pid_t)tid == pid) {
		if (pid == main_pid)
			snprintf(buf, n, "MainThread");
		else
			snprintf(buf, n, "MainThread (pid %d)", (int)pid);
		return;
	}
	snprintf(path, sizeof(path), "/proc/%d/task/%u/comm", (int)pid, tid);
	read_small(path, buf, n, 0);
	if (!buf[0])
		snprintf(buf, n, "tid-%u", tid);
}

static const char *fd_kind_get(struct session *s, pid_t pid, int fd)
{
	char path[64];
	ssize_t n;

	if (fd < 0)
		return NULL;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
	n = readlink(path, s->fdbuf, sizeof(s->fdbuf) - 1);
	if (n <= 0)
		return NULL;
	s->fdbuf[n] = '\0';
	if (!strncmp(s->fdbuf, "socket:", 7))
		return "socket";
	if (!strncmp(s->fdbuf, "pipe:", 5))
		return "pipe";
	if (!strncmp(s->fdbuf, "anon_inode:", 11))
		return "anon_inode";
	if (!strncmp(s->fdbuf, "/dev/", 5))
		return "device";
	if (s->fdbuf[0] == '/')
		return "file";
	return "other";
}

static struct proc *proc_find(struct session *s, pid_t pid)
{
	size_t i;

	if (pid == s->pid)
		return &s->main;
	for (i = 0; i < s->nkids; i++)
		if (s->kids[i].pid == pid)
			return &s->kids[i];
	return NULL;
}

/* Turn raw frames of process tgid into interned function/file/line,
 * dropping entries that are not code objects (3.13 None executables, 3.12
 * C-stack shims). */
static const struct mstack *stack_resolve(struct session *s, uint32_t tgid, const struct ls_stack *st)
{
	struct mstack *out = &s->scratch;
	struct proc *p = proc_find(s, (pid_t)tgid);
	uint32_t i, n = st->nframes < LS_MAX_FRAMES ? st->nframes : LS_MAX_FRAMES;

	out->n = 0;
	out->status = (int)st->status;
	if (!p || !p->sym || p->rt_state != 1)
		return out;
	for (i = 0; i < n; i++) {
		struct pysym_frame f;

		if (pysym_resolve(p->sym, st->frames[i].code, st->frames[i].pos,
				  st->frames[i].firstlineno, &f) < 0)
			continue;
		/* interpreter-internal code objects: 3.12 entry trampolines,
		 * 3.13's __init__ cleanup shim (file named like the function) */
		if (!strcmp(f.function, "<shim>") || !strcmp(f.function, "<interpreter trampoline>") ||
		    (f.line < 0 && !strcmp(f.file, f.function)))
			continue;
		out->f[out->n].function = model_intern(s->m, f.function);
		out->f[out->n].file = model_intern(s->m, f.file);
		out->f[out->n].line = f.line;
		out->n++;
	}
	return out;
}

/* Names of threads that show up as lock or GIL holders: only of threads
 * still alive (a "tid-N" says nothing the tid does not), at most
 * SESSION_MAX_NAMES. */
static void thread_name_note(struct session *s, pid_t pid, uint32_t tid)
{
	char name[32], path[64];

	if (s->nnames >= SESSION_MAX_NAMES || model_thread_name(s->m, tid))
		return;
	snprintf(path, sizeof(path), "/proc/%d/task/%u", (int)pid, tid);
	if (access(path, F_OK) < 0)
		return;
	thread_name_get(s->pid, pid, tid, name, sizeof(name));
	model_thread_name_set(s->m, tid, name);
	s->nnames++;
}

static void loop_announce(struct session *s, pid_t pid, uint32_t tid, int epfd)
{
	struct loop_info *l;

	model_loop_confirm(s->m, tid);
	l = model_loop(s->m, tid, 0);
	if (!l || l->name[0])
		return;
	thread_name_get(s->pid, pid, tid, l->name, sizeof(l->name));
	l->epfd = epfd;
	if (!s->o.quiet)
		fprintf(stderr, "loopspy: event loop found: tid %u \"%s\" (epoll fd %d)\n", tid, l->name, epfd);
}

static void proc_exec(struct session *s, pid_t pid);
static void proc_fork(struct session *s, pid_t parent, pid_t child, int followed);

static void on_event(void *ctx, const void *data, size_t size)
{
	struct session *s = ctx;

	const struct ls_event_hdr *h = data;

	s->events++;
	switch (h->type) {
	case LS_EV_LOOP:
		if (size >= sizeof(struct ls_ev_loop))
			loop_announce(s, (pid_t)h->tgid, h->tid, ((const struct ls_ev_loop *)data)->epfd);
		break;
	case LS_EV_EXEC:
		proc_exec(s, (pid_t)h->tgid);
		break;
	case LS_EV_FORK:
		if (size >= sizeof(struct ls_ev_fork)) {
			const struct ls_ev_fork *e = data;

			proc_fork(s, (pid_t)h->tgid, (pid_t)e->child, (int)e->followed);
		}
		break;
	case LS_EV_SLEEP:
		if (size >= sizeof(struct ls_ev_sleep)) {
			const struct ls_ev_sleep *e = data;
			struct model_sleep ms;

			memset(&ms, 0, sizeof(ms));
			ms.tid = h->tid;
			ms.ts = h->ts;
			ms.start = e->start;
			ms.blocked_ns = e->blocked_ns;
			ms.runnable_ns = e->runnable_ns;
			ms.iter_start = e->iter_start;
			ms.nr = e->nr;
			memcpy(ms.args, e->args, sizeof(ms.args));
			if (e->blocked_ns >= s->o.block_ns && syscall_takes_fd(e->nr)) {
				ms.fd_kind = fd_kind_get(s, (pid_t)h->tgid, (int)e->args[0]);
			} else if (e->blocked_ns >= s->o.block_ns && e->poll_fd >= 0) {
				ms.fd_kind = fd_kind_get(s, (pid_t)h->tgid, e->poll_fd);
			}
			ms.stack = stack_resolve(s, h->tgid, &e->stack);
			model_add_sleep(s->m, &ms);
		}
		break;
	case LS_EV_SAMPLE:
		if (size >= sizeof(struct ls_ev_sample)) {
			const struct ls_ev_sample *e = data;
			struct model_sample sm;

			memset(&sm, 0, sizeof(sm));
			sm.tid = h->tid;
			sm.ts = h->ts;
			sm.iter_start = e->iter_start;
			sm.nr = e->nr;
			sm.stack = stack_resolve(s, h->tgid, &e->stack);
			model_add_sample(s->m, &sm);
		}
		break;
	case LS_EV_STALL:
		if (size >= sizeof(struct ls_ev_stall)) {
			const struct ls_ev_stall *e = data;

			struct model_stall st;

			memset(&st, 0, sizeof(st));
			st.tid = h->tid;
			st.start = e->start;
			st.end = e->end;
			st.blocked_ns = e->blocked_ns;
			st.runnable_ns = e->runnable_ns;
			st.preempt_ns = e->preempt_ns;
			st.gc_ns = e->gc_ns;
			model_add_stall_ev(s->m, &st);
		}
		break;
	case LS_EV_WAKER:
		if (size >= sizeof(struct ls_ev_waker)) {
			const struct ls_ev_waker *e = data;

			thread_name_note(s, (pid_t)h->tgid, h->tid);
			model_add_waker(s->m, e->waiter_tid, h->tid, e->sleep_start,
					stack_resolve(s, h->tgid, &e->stack));
		}
		break;
	case LS_EV_GC:
		if (size >= sizeof(struct ls_ev_gc)) {
			const struct ls_ev_gc *e = data;

			model_add_gc(s->m, h->tid, e->start, e->dur_ns, e->generation, e->iter_start,
				     stack_resolve(s, h->tgid, &e->stack));
		}
		break;
	default:
		break;
	}
}

static void target_cfg_fill(const struct pyruntime *rt, struct ls_target_cfg *cfg)
{
	const struct cpython_layout *L = rt->layout;

	memset(cfg, 0, sizeof(*cfg));
	if (!rt->ready || !L)
		return;
	cfg->py.enabled = 1;
	cfg->py.pos_is_ptr = L->code_adaptive >= 0;
	/* glibc struct pthread: specific_1stblock[key] = { seq, data } */
	cfg->py.tsd_slot = 0x310 + 16 * (uint64_t)rt->tss_key + 8;
	cfg->py.tstate_thread_id = L->tstate_thread_id;
	cfg->py.tstate_cframe = L->tstate_cframe;
	cfg->py.tstate_frame = L->tstate_frame;
	cfg->py.frame_back = L->frame_back;
	cfg->py.frame_code = L->frame_code;
	cfg->py.frame_pos = L->frame_pos;
	cfg->py.code_firstlineno = L->code_firstlineno;
	cfg->py.code_adaptive = L->code_adaptive >= 0 ? L->code_adaptive : 0;
}

static uint32_t target_flags(const struct session *s, const struct proc *p)
{
	if (!s->o.follow_children)
		return 0;
	return LS_TARGET_FOLLOW | (p == &s->main ? 0 : LS_TARGET_CHILD);
}

/* Finds and validates the Python runtime of p; cheap enough to retry while
 * a freshly started (or exec'd) program initialises. */
static void runtime_step(struct session *s, struct proc *p, int final)
{
	struct ls_target_cfg cfg;
	int r;

	if (p->rt_state != 0)
		return;
	if (!p->rt.found) {
		r = pyruntime_find(p->pid, &p->rt);
		if (r != 0) {
			/* a CPython too old for stacks (2.7, 3.6) will not change */
			if (final || session_now_ns() >= p->rt_until || p->rt.major == 2 ||
			    (p->rt.major == 3 && p->rt.minor < 7))
				p->rt_state = -1;
			return;
		}
	}
	r = pyruntime_probe(p->pid, &p->rt);
	if (r == 1 && !final)
		return;
	if (r != 0) {
		if (!p->rt.reason[0])
			snprintf(p->rt.reason, sizeof(p->rt.reason), "CPython %s did not finish initialising",
				 p->rt.version);
		p->rt_state = -1;
		return;
	}
	p->sym = pysym_new(p->rt.layout, procmem_read, procmem_ctx(p->pid), p->rt.code_type_addr);
	if (!p->sym) {
		snprintf(p->rt.reason, sizeof(p->rt.reason), "out of memory");
		p->rt_state = -1;
		return;
	}
	if (p == &s->main)
		model_set_gil(s->m, p->rt.gil_addr, p->rt.gil_addr ? (uint64_t)p->rt.layout->gil_size : 0);
	target_cfg_fill(&p->rt, &cfg);
	cfg.flags = target_flags(s, p);
	/* generation is the second argument of collect()/gc_collect_main() */
	cfg.gc_gen_arg = p->rt.minor >= 9 ? 2 : 0;
	tracer_gc_attach(s->t, p->pid, p->rt.path, p->rt.minor, p->gc_how, sizeof(p->gc_how));
	if (tracer_target_add(s->t, p->pid, &cfg) < 0) {
		snprintf(p->rt.reason, sizeof(p->rt.reason), "cannot update the BPF target map");
		p->rt_state = -1;
		return;
	}
	p->rt_state = 1;
}

/* Forgets what was known of p's program (after an exec, at the end). */
static void proc_reset(struct session *s, struct proc *p)
{
	pysym_free(p->sym);
	p->sym = NULL;
	if (s->t)
		tracer_gc_detach(s->t, p->pid);
	memset(&p->rt, 0, sizeof(p->rt));
	p->gc_how[0] = '\0';
	p->rt_state = 0;
}

/* The kernel side already stopped walking its stacks: symbols, GC probes
 * and the runtime are the old program's. Look for the new one. */
static void proc_exec(struct session *s, pid_t pid)
{
	struct proc *p = proc_find(s, pid);
	char path[64], exe[256];
	ssize_t n;
	uint64_t until = session_now_ns() + SESSION_RT_RETRY_NS;

	if (!p)
		return;
	proc_reset(s, p);
	if (p->rt_until < until)
		p->rt_until = until;
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	n = readlink(path, exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = '\0';
	/* the started command's own first exec is no news */
	if (!s->o.quiet && !(s->o.cmd && p == &s->main && !s->main_execd))
		fprintf(stderr, "loopspy: %d executed %s: looking for its Python runtime again\n", (int)pid,
			exe[0] ? exe : "another program");
	if (p == &s->main)
		s->main_execd = 1;
}

/* Children that are gone (or zombies) free their slot. */
static void kids_reap(struct session *s)
{
	size_t i = 0;

	while (i < s->nkids) {
		char path[64], buf[256], *rp;
		FILE *f;
		int gone = kill(s->kids[i].pid, 0) < 0 && errno == ESRCH;

		snprintf(path, sizeof(path), "/proc/%d/stat", (int)s->kids[i].pid);
		f = gone ? NULL : fopen(path, "re");
		if (f) {
			/* "pid (comm) S ...": a zombie is gone too */
			rp = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
			if (rp && rp[1] && (rp[2] == 'Z' || rp[2] == 'X'))
				gone = 1;
			fclose(f);
		}
		if (!gone) {
			i++;
			continue;
		}
		proc_reset(s, &s->kids[i]);
		s->kids[i] = s->kids[--s->nkids];
	}
}

/* --follow-children: the kernel side made child a target with its
 * parent's layout (a copy of its memory); it gets its own symbolizer. */
static void proc_fork(struct session *s, pid_t parent, pid_t child, int followed)
{
	struct proc *pp = proc_find(s, parent), *c;

	if (!pp)
		return;
	if (!followed) {
		if (!s->kids_full_said++ && !s->o.quiet)
			fprintf(stderr, "loopspy: child %d of %d is not followed: %d processes are traced already\n",
				(int)child, (int)parent, LS_MAX_TARGETS);
		return;
	}
	if (s->nkids == SESSION_MAX_KIDS)
		kids_reap(s);
	if (!s->kids)
		s->kids = calloc(SESSION_MAX_KIDS, sizeof(*s->kids));
	if (!s->kids || s->nkids == SESSION_MAX_KIDS) {
		/* traced, but its stacks cannot be named */
		if (!s->kids_full_said++ && !s->o.quiet)
			fprintf(stderr, "loopspy: child %d of %d: no Python stacks (too many children)\n",
				(int)child, (int)parent);
		return;
	}
	c = &s->kids[s->nkids++];
	memset(c, 0, sizeof(*c));
	c->pid = child;
	c->rt_until = session_now_ns() + SESSION_RT_RETRY_NS;
	if (pp->rt_state == 1) {
		c->rt = pp->rt;
		c->sym = pysym_new(c->rt.layout, procmem_read, procmem_ctx(child), c->rt.code_type_addr);
		c->rt_state = c->sym ? 1 : -1;
		/* uprobes filter by pid: the child needs its own */
		tracer_gc_attach(s->t, child, c->rt.path, c->rt.minor, c->gc_how, sizeof(c->gc_how));
	}
	if (!s->o.quiet)
		fprintf(stderr, "loopspy: following child %d of %d\n", (int)child, (int)parent);
}

static void locks_cb(void *ctx, uint64_t uaddr, const struct ls_lock_stats *st)
{
	struct session *s = ctx;

	model_lock_update(s->m, uaddr, st->op, st->waits, st->total_ns, st->max_ns, st->woken_by_peer);
}

static void lockpairs_cb(void *ctx, const struct ls_lockpair_key *k, const struct ls_lockpair_stats *st)
{
	struct session *s = ctx;

	model_lock_party_update(s->m, k->uaddr, k->waiter, k->waker, st->waits, st->total_ns);
}

static void loops_cb(void *ctx, uint32_t tid, const struct ls_loop_stats *st)
{
	struct session *s = ctx;

	loop_announce(s, (pid_t)st->tgid, tid, st->epfd);
	model_loop_update(s->m, tid, st);
}

/* The traced process a thread belongs to (the target unless children are
 * followed). */
static pid_t tid_owner(struct session *s, uint32_t tid)
{
	char path[64];
	size_t i;

	for (i = 0; i < s->nkids; i++) {
		snprintf(path, sizeof(path), "/proc/%d/task/%u", (int)s->kids[i].pid, tid);
		if (access(path, F_OK) == 0)
			return s->kids[i].pid;
	}
	return s->pid;
}

/* A loop deep into a long iteration: what is it blocked in right now?
 * (samples only see it on CPU; a sleep is reported when it ends) */
static void live_refresh(struct session *s)
{
	uint64_t now = session_now_ns();
	struct ls_pending_sleep ps;
	size_t i;

	for (i = 0; i < model_nloops(s->m); i++) {
		const struct loop_info *l = model_loop_at(s->m, i);
		int r;

		if (!l->iter_start || now < l->iter_start || now - l->iter_start < s->o.stall_ns / 2) {
			model_loop_set_live(s->m, l->tid, 0, -1, NULL);
			continue;
		}
		r = tracer_live_state(s->t, l->tid, &ps);
		if (r == 0)
			model_loop_set_live(s->m, l->tid, 0, -1, NULL);
		else
			model_loop_set_live(s->m, l->tid, l->iter_start, r == 2 ? -3 : ps.nr,
					    stack_resolve(s, (uint32_t)tid_owner(s, l->tid), &ps.stack));
	}
}

/* Names of the threads the locks table shows: only the parties the model
 * kept (a few per lock), not every thread that ever waited, which under
 * thread churn is an unbounded number of dead threads. */
static void lock_names_note(struct session *s)
{
	size_t i;
	int j;

	for (i = 0; i < model_nlocks(s->m); i++) {
		const struct lock_info *l = model_lock_at(s->m, i);

		for (j = 0; j < l->nparties; j++) {
			thread_name_note(s, tid_owner(s, l->parties[j].waiter), l->parties[j].waiter);
			if (l->parties[j].waker)
				thread_name_note(s, tid_owner(s, l->parties[j].waker), l->parties[j].waker);
		}
	}
}

static void stats_refresh(struct session *s)
{
	size_t i;

	tracer_loops_read(s->t, s->pid, loops_cb, s);
	for (i = 0; i < s->nkids; i++)
		tracer_loops_read(s->t, s->kids[i].pid, loops_cb, s);
	live_refresh(s);
	tracer_locks_read(s->t, s->pid, locks_cb, s);
	tracer_lockpairs_read(s->t, s->pid, lockpairs_cb, s);
	for (i = 0; i < s->nkids; i++) {
		tracer_locks_read(s->t, s->kids[i].pid, locks_cb, s);
		tracer_lockpairs_read(s->t, s->kids[i].pid, lockpairs_cb, s);
	}
	lock_names_note(s);
}


/* pid must be a live user-space process: not a thread of one, a kernel
 * thread or a zombie. It is held as a pidfd from here on, so a pid reused
 * after it exits is never mistaken for it. The pidfd, or -1 after saying
 * why not. */
static int target_check(pid_t pid)
{
	char path[64], buf[512], *p;
	unsigned long flags = 0;
	int fd, tgid = 0, err;
	char state = '?';

	fd = (int)syscall(SYS_pidfd_open, pid, 0);
	err = errno;
	if (fd < 0 && err == ESRCH) {
		fprintf(stderr, "loopspy: cannot attach to %d: no such process\nhint: ps -e shows the running processes\n",
			(int)pid);
		return -1;
	}
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	read_small(path, buf, sizeof(buf), 0);
	p = strstr(buf, "\nTgid:");
	if (p)
		tgid = atoi(p + 6);
	/* not a thread-group leader: EINVAL, or ENOENT on newer kernels */
	if (tgid > 0 && tgid != (int)pid) {
		if (fd >= 0)
			close(fd);
		fprintf(stderr, "loopspy: cannot attach to %d: it is a thread of process %d\n"
			"hint: loopspy record -p %d\n", (int)pid, tgid, tgid);
		return -1;
	}
	if (fd < 0) {
		fprintf(stderr, "loopspy: cannot attach to %d: %s\n", (int)pid, strerror(err));
		return -1;
	}
	/* "pid (comm) S ppid pgrp session tty tpgid flags ..." */
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	read_small(path, buf, sizeof(buf), 0);
	p = strrchr(buf, ')');
	if (p && sscanf(p + 1, " %c %*d %*d %*d %*d %*d %lu", &state, &flags) != 2)
		state = '?';
	if (flags & 0x00200000UL) { /* PF_KTHREAD */
		fprintf(stderr, "loopspy: cannot attach to %d: it is a kernel thread\n", (int)pid);
		goto fail;
	}
	if (!p || state == 'Z' || state == 'X') {
		fprintf(stderr, "loopspy: cannot attach to %d: it has exited\n", (int)pid);
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

/* Child side of `run`: wait until the tracer is attached, then exec. */
static void child_exec(int gate_fd, char **cmd)
{
	char c;

	while (read(gate_fd, &c, 1) < 0 && errno == EINTR)
		;
	close(gate_fd);
	execvp(cmd[0], cmd);
	fprintf(stderr, "loopspy: cannot run %s: %s\n", cmd[0], strerror(errno));
	_exit(127);
}

struct tracer *session_tracer_open(const struct session_opts *o,
				   void (*fn)(void *ctx, const void *data, size_t size), void *ctx)
{
	struct tracer_opts to;

	memset(&to, 0, sizeof(to));
	to.stall_ns = o->stall_ns;
	to.sample_after_ns = o->stall_ns / 10;
	to.min_sleep_ns = 10000;
	to.min_gc_ns = o->block_ns;
	to.sample_hz = o->sample_hz;
	to.walk_stacks = o->stacks;
	to.verbose = o->verbose;
	return tracer_open(&to, fn, ctx);
}

void session_on_event(struct session *s, const void *data, size_t size)
{
	if (s)
		on_event(s, data, size);
}

struct session *session_open(const struct session_opts *o, int *exit_code)
{
	struct session *s = calloc(1, sizeof(*s));
	struct model_config mc;
	struct ls_target_cfg cfg;
	int gate[2] = { -1, -1 };
	time_t now_wall;
	struct tm tm;

	*exit_code = EXIT_FAILURE_;
	if (!s)
		return NULL;
	s->o = *o;
	s->pidfd = -1;
	s->child_status = -1;
	if (!o->cmd) {
		s->pid = s->main.pid = o->pid;
		s->pidfd = target_check(s->pid);
		if (s->pidfd < 0) {
			*exit_code = EXIT_TARGET;
			goto fail;
		}
	}
	memset(&mc, 0, sizeof(mc));
	mc.stall_ns = o->stall_ns;
	mc.block_ns = o->block_ns;
	mc.t0_ns = session_now_ns();
	s->m = model_new(&mc);
	if (!s->m)
		goto fail;
	if (o->tracer) {
		s->t = o->tracer;
		s->shared = 1;
	} else {
		s->t = session_tracer_open(o, on_event, s);
		if (!s->t)
			goto fail;
	}
	memset(&cfg, 0, sizeof(cfg));
	if (o->cmd) {
		size_t off = 0;
		int i;

		if (pipe2(gate, O_CLOEXEC) < 0)
			goto fail;
		s->pid = fork();
		if (s->pid < 0) {
			fprintf(stderr, "loopspy: cannot fork: %s\n", strerror(errno));
			goto fail;
		}
		if (s->pid == 0) {
			close(gate[1]);
			signal(SIGINT, SIG_DFL);
			signal(SIGTERM, SIG_DFL);
			signal(SIGHUP, SIG_DFL);
			child_exec(gate[0], o->cmd);
		}
		close(gate[0]);
		gate[0] = -1;
		s->main.pid = s->pid;
		s->main.rt_until = UINT64_MAX; /* until it ends: it may take long to start Python */
		for (i = 0; o->cmd[i] && off < sizeof(s->command) - 1; i++)
			off += (size_t)snprintf(s->command + off, sizeof(s->command) - off, "%s%s",
						i ? " " : "", o->cmd[i]);
	}
	/* a running process: stacks from its first event when possible */
	if (!o->cmd)
		runtime_step(s, &s->main, 0);
	cfg.flags = target_flags(s, &s->main);
	if (s->main.rt_state != 1 && tracer_target_add(s->t, s->pid, &cfg) < 0) {
		fprintf(stderr, "loopspy: cannot add target %d to the BPF map\n", (int)s->pid);
		goto fail;
	}
	s->t0 = session_now_ns();
	now_wall = time(NULL);
	gmtime_r(&now_wall, &tm);
	strftime(s->started_at, sizeof(s->started_at), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (o->cmd) {
		/* released only now: traced from its first instruction */
		if (write(gate[1], "x", 1) != 1)
			goto fail;
		close(gate[1]);
		gate[1] = -1;
	} else {
		struct pollfd pf = { s->pidfd, POLLIN, 0 };
		char path[64];

		snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)s->pid);
		read_small(path, s->command, sizeof(s->command), 1);
		snprintf(path, sizeof(path), "/proc/%d/comm", (int)s->pid);
		read_small(path, s->comm, sizeof(s->comm), 0);
		/* what was read above is this process's, unless it is gone */
		if (poll(&pf, 1, 0) > 0) {
			fprintf(stderr, "loopspy: cannot attach to %d: it exited while loopspy was attaching\n",
				(int)s->pid);
			*exit_code = EXIT_TARGET;
			goto fail;
		}
		if (!o->quiet) {
			if (s->main.rt.found)
				fprintf(stderr, "loopspy: attached to %d (%s, CPython %s)%s%s\n", (int)s->pid, s->comm,
					s->main.rt.version, s->main.rt_state == 1 ? "" : ", no Python stacks: ",
					s->main.rt_state == 1 ? "" : s->main.rt.reason);
			else if (s->main.rt.major)
				fprintf(stderr, "loopspy: attached to %d (%s), loops and syscalls only: %s\n",
					(int)s->pid, s->comm, s->main.rt.reason);
			else
				fprintf(stderr, "loopspy: attached to %d (%s), not CPython: loops and syscalls only\n",
					(int)s->pid, s->comm);
		}
	}
	*exit_code = EXIT_OK;
	return s;
fail:
	if (*exit_code == EXIT_OK)
		*exit_code = EXIT_FAILURE_;
	if (gate[0] >= 0)
		close(gate[0]);
	if (gate[1] >= 0)
		close(gate[1]);
	session_close(s);
	return NULL;
}

enum session_state session_poll(struct session *s, int timeout_ms, uint64_t refresh_ns)
{
	uint64_t now;
	size_t i;
	int err;

	if (s->child_done)
		return SESSION_TARGET_EXITED;
	/* while a started command initialises, look for its runtime often */
	if (s->o.cmd && s->main.rt_state == 0 && timeout_ms > 5)
		timeout_ms = 5;
	err = s->shared ? 0 : tracer_poll(s->t, timeout_ms);
	if (err < 0 && err != -EINTR)
		fprintf(stderr, "loopspy: cannot poll events: %s\n", strerror(-err));
	now = session_now_ns();
	if (s->o.cmd) {
		int st;

		if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
			s->child_done = 1;
			s->child_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
			return SESSION_TARGET_EXITED;
		}
	} else if (s->pidfd >= 0) {
		struct pollfd p = { s->pidfd, POLLIN, 0 };

		if (poll(&p, 1, 0) > 0)
			return SESSION_TARGET_EXITED;
	} else if (kill(s->pid, 0) < 0 && errno == ESRCH) {
		return SESSION_TARGET_EXITED;
	}
	runtime_step(s, &s->main, 0);
	for (i = 0; i < s->nkids; i++)
		runtime_step(s, &s->kids[i], 0);
	if (now - s->last_loops >= refresh_ns) {
		stats_refresh(s);
		if (s->nkids)
			kids_reap(s);
		s->last_loops = now;
	}
	return SESSION_RUNNING;
}

void session_stop_command(struct session *s, int sig)
{
	if (s && s->o.cmd && s->pid > 0 && !s->child_done)
		kill(s->pid, sig);
}

void session_finish(struct session *s)
{
	/* drain what is already in the ring buffer */
	while (!s->shared && tracer_poll(s->t, 0) > 0)
		;
	stats_refresh(s);
	if (!s->child_done)
		runtime_step(s, &s->main, 1);
}

struct model *session_model(struct session *s) { return s->m; }
pid_t session_pid(const struct session *s) { return s->pid; }
int session_exit_status(const struct session *s) { return s->child_status; }
uint64_t session_events(const struct session *s) { return s->events; }
uint64_t session_dropped(struct session *s) { return tracer_counter(s->t, LS_CNT_DROPPED); }

const char *session_runtime_desc(const struct session *s)
{
	struct session *w = (struct session *)s;

	if (s->main.rt_state == 1)
		snprintf(w->rtdesc, sizeof(w->rtdesc), "CPython %s", s->main.rt.version);
	else if (s->main.rt.found || s->main.rt.major)
		snprintf(w->rtdesc, sizeof(w->rtdesc), "CPython %s (no stacks: %s)", s->main.rt.version,
			 s->main.rt.reason[0] ? s->main.rt.reason : "initialising");
	else
		snprintf(w->rtdesc, sizeof(w->rtdesc), "not CPython");
	return s->rtdesc;
}

void session_meta(struct session *s, struct report_meta *meta, const char *end_reason)
{
	memset(meta, 0, sizeof(*meta));
	meta->pid = (int)s->pid;
	meta->command = s->command;
	/* a CPython too old to have a runtime is named, with why (2.7) */
	meta->runtime_name = s->main.rt.found || s->main.rt.major ? "cpython" : "unknown";
	meta->runtime_version = s->main.rt.found || s->main.rt.major ? s->main.rt.version : NULL;
	meta->runtime_path = s->main.rt.found ? s->main.rt.path : NULL;
	meta->stacks = s->main.rt_state == 1 && s->o.stacks;
	meta->stacks_reason = !s->o.stacks ? "disabled with --no-stacks" :
			      s->main.rt.reason[0] ? s->main.rt.reason : "CPython runtime not found";
	meta->started_at = s->started_at;
	meta->duration_ns = session_now_ns() - s->t0;
	meta->dropped_events = tracer_counter(s->t, LS_CNT_DROPPED);
	meta->events = s->events;
	meta->end_reason = end_reason;
	meta->exit_status = s->child_status;
	meta->gc_timing = s->main.gc_how[0] ? s->main.gc_how :
			  s->main.rt_state == 1 ? "unavailable" : "unavailable: no Python runtime";
	meta->version = LOOPSPY_VERSION;
}

void session_close(struct session *s)
{
	size_t i;

	if (!s)
		return;
	if (s->o.cmd && s->pid > 0 && !s->child_done) {
		int st;

		kill(s->pid, SIGTERM);
		waitpid(s->pid, &st, 0);
	}
	if (s->pidfd >= 0)
		close(s->pidfd);
	if (s->shared && s->t) {
		tracer_target_del(s->t, s->pid);
		tracer_gc_detach(s->t, s->pid);
		for (i = 0; i < s->nkids; i++) {
			tracer_target_del(s->t, s->kids[i].pid);
			tracer_gc_detach(s->t, s->kids[i].pid);
		}
	} else {
		tracer_close(s->t);
	}
	for (i = 0; i < s->nkids; i++)
		pysym_free(s->kids[i].sym);
	free(s->kids);
	pysym_free(s->main.sym);
	model_free(s->m);
	free(s);
}

int session_opt_parse(struct session_opts *so, int opt, const char *arg)
{
	char *end;
	long v;

	switch (opt) {
	case SESSION_OPT_PID:
		errno = 0;
		v = strtol(arg, &end, 10);
		if (errno || *end || v <= 0 || v > 0x3fffffff) {
			fprintf(stderr, "loopspy: cannot use pid '%s': not a process id\n", arg);
			return -1;
		}
		so->pid = (pid_t)v;
		return 1;
	case SESSION_OPT_STALL:
	case SESSION_OPT_BLOCK: {
		uint64_t *dst = opt == SESSION_OPT_STALL ? &so->stall_ns : &so->block_ns;

		if (duration_parse(arg, 1000000ULL, dst) || !*dst) {
			fprintf(stderr, "loopspy: cannot use threshold '%s': expected a positive duration in ms (e.g. 100, 100ms, 0.5s)\n", arg);
			return -1;
		}
		return 1;
	}
	case SESSION_OPT_SAMPLE_HZ:
		errno = 0;
		v = strtol(arg, &end, 10);
		if (errno || end == arg || *end || v < 0 || v > 10000) {
			fprintf(stderr, "loopspy: cannot use sample rate '%s': expected 0..10000\n", arg);
			return -1;
		}
		so->sample_hz = (int)v;
		return 1;
	case SESSION_OPT_NO_STACKS:
		so->stacks = 0;
		return 1;
	default:
		return 0;
	}
}
