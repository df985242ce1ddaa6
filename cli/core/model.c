#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NR_FUTEX LS_NR_FUTEX
#define NR_FUTEX_WAITV LS_NR_FUTEX_WAITV
#define PENDING_MAX 16384 /* events kept (all loop threads) for running iterations */

struct pending {
	uint32_t tid;
	int is_sample;
	uint64_t ts, start, blocked_ns, iter_start;
	int nr;
	int blocking;         /* already reported as a blocking_syscall finding */
	uint64_t finding_key;
	uint64_t arg0;
	uint32_t op;                /* futex op (second argument) */
	int is_gc;
	const char *fd_kind;        /* interned */
	int classified;
	const struct mstack *stack; /* interned */
};

struct model {
	struct model_config cfg;
	struct loop_info *loops;
	size_t nloops, caploops;
	struct finding *findings;
	size_t nfindings, capfindings;
	struct pending *pend;
	size_t npend, cappend;
	char **strs;
	size_t nstrs, capstrs;   /* open addressing, capstrs a power of two */
	struct mstack **stacks;  /* interned stacks, same scheme */
	size_t nstacks, capstacks;
	struct { uint32_t tid; char name[32]; } *names;
	size_t nnames, capnames;
	struct lock_info *locks;
	size_t nlocks, caplocks;
	struct timeline_ev *tl;  /* ring of MODEL_TIMELINE_MAX */
	size_t tl_head, tl_len;
	uint64_t tl_dropped;
};

static uint64_t stack_hash(uint64_t h, const struct mstack *s, int with_leaf_line);
static const struct mstack empty_stack;

static uint64_t hash_bytes(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static uint64_t hash_str(const char *s)
{
	return hash_bytes(0xcbf29ce484222325ULL, s, strlen(s));
}

struct model *model_new(const struct model_config *cfg)
{
	struct model *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->cfg = *cfg;
	m->capstrs = 1024;
	m->strs = calloc(m->capstrs, sizeof(*m->strs));
	if (!m->strs) {
		free(m);
		return NULL;
	}
	return m;
}

void model_free(struct model *m)
{
	size_t i;

	if (!m)
		return;
	for (i = 0; i < m->capstrs; i++)
		free(m->strs[i]);
	free(m->strs);
	for (i = 0; i < m->capstacks; i++)
		free(m->stacks[i]);
	free(m->stacks);
	free(m->tl);
	free(m->names);
	free(m->locks);
	free(m->loops);
	free(m->findings);
	free(m->pend);
	free(m);
}

static int strs_grow(struct model *m)
{
	size_t cap = m->capstrs * 2, i;
	char **n = calloc(cap, sizeof(*n));

	if (!n)
		return -1;
	for (i = 0; i < m->capstrs; i++) {
		size_t j;

		if (!m->strs[i])
			continue;
		for (j = hash_str(m->strs[i]) & (cap - 1); n[j]; j = (j + 1) & (cap - 1))
			;
		n[j] = m->strs[i];
	}
	free(m->strs);
	m->strs = n;
	m->capstrs = cap;
	return 0;
}

const char *model_intern(struct model *m, const char *s)
{
	size_t j;

	if (!s)
		return NULL;
	if ((m->nstrs + 1) * 2 > m->capstrs && strs_grow(m) < 0)
		return NULL;
	for (j = hash_str(s) & (m->capstrs - 1); m->strs[j]; j = (j + 1) & (m->capstrs - 1))
		if (!strcmp(m->strs[j], s))
			return m->strs[j];
	m->strs[j] = strdup(s);
	if (!m->strs[j])
		return NULL;
	m->nstrs++;
	return m->strs[j];
}

static int stack_equal(const struct mstack *a, const struct mstack *b)
{
	int i;

	if (a->n != b->n || a->status != b->status)
		return 0;
	for (i = 0; i < a->n; i++)
		if (a->f[i].function != b->f[i].function || a->f[i].file != b->f[i].file ||
		    a->f[i].line != b->f[i].line)
			return 0;
	return 1;
}

/* Many events share few stacks: keep one copy of each. */
static const struct mstack *stack_intern(struct model *m, const struct mstack *s)
{
	size_t j;

	if (!s)
		return &empty_stack;
	if ((m->nstacks + 1) * 2 > m->capstacks) {
		size_t cap = m->capstacks ? m->capstacks * 2 : 256, i;
		struct mstack **n = calloc(cap, sizeof(*n));

		if (!n)
			return &empty_stack;
		for (i = 0; i < m->capstacks; i++) {
			if (!m->stacks[i])
				continue;
			for (j = stack_hash(1, m->stacks[i], 1) & (cap - 1); n[j]; j = (j + 1) & (cap - 1))
				;
			n[j] = m->stacks[i];
		}
		free(m->stacks);
		m->stacks = n;
		m->capstacks = cap;
	}
	for (j = stack_hash(1, s, 1) & (m->capstacks - 1); m->stacks[j]; j = (j + 1) & (m->capstacks - 1))
		if (stack_equal(m->stacks[j], s))
			return m->stacks[j];
	m->stacks[j] = malloc(sizeof(*s));
	if (!m->stacks[j])
		return &empty_stack;
	*m->stacks[j] = *s;
	m->nstacks++;
	return m->stacks[j];
}

void model_set_gil(struct model *m, uint64_t addr, uint64_t size)
{
	m->cfg.gil_addr = addr;
	m->cfg.gil_size = size;
}

static void *grow(void *arr, size_t *cap, size_t need, size_t elem)
{
	size_t n = *cap ? *cap : 16;
	void *p;

	if (need <= *cap)
		return arr;
	while (n < need)
		n *= 2;
	p = realloc(arr, n * elem);
	if (!p)
		return NULL;
	memset((char *)p + *cap * elem, 0, (n - *cap) * elem);
	*cap = n;
	return p;
}

struct loop_info *model_loop(struct model *m, uint32_t tid, int create)
{
	struct loop_info *l;
	size_t i;

	for (i = 0; i < m->nloops; i++)
		if (m->loops[i].tid == tid)
			return &m->loops[i];
	if (!create)
		return NULL;
	l = grow(m->loops, &m->caploops, m->nloops + 1, sizeof(*l));
	if (!l)
		return NULL;
	m->loops = l;
	l = &m->loops[m->nloops++];
	memset(l, 0, sizeof(*l));
	l->tid = tid;
	l->epfd = -1;
	return l;
}

void model_loop_update(struct model *m, uint32_t tid, const struct ls_loop_stats *st)
{
	struct loop_info *l;

	model_loop_confirm(m, tid);
	l = model_loop(m, tid, 0);
	if (!l)
		return;
	l->epfd = st->epfd;
	l->iterations = st->iterations;
	l->busy_ns = st->busy_ns;
	l->max_ns = st->max_ns;
	l->stalls = st->stalls;
	l->first_ts = st->first_ts;
	l->iter_start = st->iter_start;
	memcpy(l->hist, st->hist, sizeof(l->hist));
}

uint64_t loop_percentile_ns(const struct loop_info *l, double pct)
{
	uint64_t total = 0, seen = 0, want;
	size_t b;

	for (b = 0; b < LS_HIST_BUCKETS; b++)
		total += l->hist[b];
	if (!total)
		return 0;
	want = (uint64_t)((double)total * pct / 100.0 + 0.5);
	if (want < 1)
		want = 1;
	for (b = 0; b < LS_HIST_BUCKETS; b++) {
		seen += l->hist[b];
		if (seen >= want) {
			/* upper bound of the bucket, never above the observed max */
			uint64_t hi_us;

			if (b < 16) {
				hi_us = b + 1;
			} else {
				uint32_t e = 4 + (uint32_t)(b - 16) / 8, sub = (uint32_t)(b - 16) % 8;

				hi_us = (8ULL + sub + 1) << (e - 3);
			}
			return hi_us * 1000 < l->max_ns || !l->max_ns ? hi_us * 1000 : l->max_ns;
		}
	}
	return l->max_ns;
}

static uint64_t stack_hash(uint64_t h, const struct mstack *s, int with_leaf_line)
{
	int i;

	for (i = 0; i < s->n; i++) {
		uintptr_t fn = (uintptr_t)s->f[i].function, fi = (uintptr_t)s->f[i].file;
		int line = i == 0 && !with_leaf_line ? 0 : s->f[i].line;

		h = hash_bytes(h, &fn, sizeof(fn));
		h = hash_bytes(h, &fi, sizeof(fi));
		h = hash_bytes(h, &line, sizeof(line));
	}
	return h;
}

static struct finding *finding_get(struct model *m, enum finding_kind kind, uint32_t tid,
				   int nr, uint64_t key, const struct mstack *stack)
{
	struct finding *f;
	size_t i;

	for (i = 0; i < m->nfindings; i++)
		if (m->findings[i].key == key && m->findings[i].kind == kind && m->findings[i].tid == tid)
			return &m->findings[i];
	f = grow(m->findings, &m->capfindings, m->nfindings + 1, sizeof(*f));
	if (!f)
		return NULL;
	m->findings = f;
	f = &m->findings[m->nfindings++];
	memset(f, 0, sizeof(*f));
	f->kind = kind;
	f->tid = tid;
	f->nr = nr;
	f->key = key;
	if (stack)
		f->stack = *stack;
	return f;
}

/* Forget events of iterations older than iter_start (they ended without a
 * stall) and, when inclusive, of iter_start itself. */
static void pending_drop(struct model *m, uint32_t tid, uint64_t iter_start, int inclusive)
{
	size_t i, j = 0;

	for (i = 0; i < m->npend; i++) {
		struct pending *p = &m->pend[i];
		int old = p->tid == tid && (p->iter_start < iter_start ||
					    (inclusive && p->iter_start == iter_start));

		if (!old) {
			if (j != i)
				m->pend[j] = *p;
			j++;
		}
	}
	m->npend = j;
}

/* Events of a new iteration make the buffered ones of older iterations of
 * that thread useless (their stall, if any, was already processed). */
static void pending_begin(struct model *m, uint32_t tid, uint64_t iter_start)
{
	struct loop_info *l = model_loop(m, tid, 1);

	if (l && l->pend_iter != iter_start) {
		pending_drop(m, tid, iter_start, 0);
		l->pend_iter = iter_start;
	}
}

static int pending_add(struct model *m, const struct pending *p)
{
	struct pending *np;

	if (m->npend >= PENDING_MAX)
		return -1;  /* a huge stall keeps its first PENDING_MAX events */
	np = grow(m->pend, &m->cappend, m->npend + 1, sizeof(*np));
	if (!np)
		return -1;
	m->pend = np;
	m->pend[m->npend++] = *p;
	return 0;
}

/* Turns a buffered sleep of a confirmed loop thread into a GIL wait or a
 * blocking_syscall finding. */
static int addr_is_gil(const struct model *m, uint64_t addr)
{
	return m->cfg.gil_addr && addr >= m->cfg.gil_addr && addr < m->cfg.gil_addr + m->cfg.gil_size;
}

const char *model_lock_kind(const struct model *m, uint64_t addr, uint32_t op)
{
	uint32_t cmd = op & 0x7f;

	if (addr_is_gil(m, addr))
		return "gil";
	if (op == 0xffff)
		return "futex_waitv";
	if (cmd == 9 && (op & 0x100))
		return "threading.Lock";      /* sem_wait(): CPython's untimed lock acquire */
	if (cmd == 9)
		return "condvar/timed_lock";  /* pthread_cond_wait, sem_clockwait */
	if (cmd == 0)
		return "pthread_mutex";
	if (cmd == 6 || cmd == 13)
		return "pthread_mutex_pi";
	if (cmd == 11)
		return "condvar_pi";
	return "futex";
}

const char *finding_kind_name(enum finding_kind k)
{
	switch (k) {
	case FINDING_STALL: return "stall";
	case FINDING_BLOCKING_SYSCALL: return "blocking_syscall";
	case FINDING_LOCK_CONTENTION: return "lock_contention";
	case FINDING_GIL_CONTENTION: return "gil_contention";
	case FINDING_GC_PAUSE: return "gc_pause";
	}
	return "unknown";
}

static void holder_add(struct finding *f, uint32_t tid, uint64_t wait, const struct mstack *stack)
{
	int i, min = 0;

	for (i = 0; i < f->nholders; i++)
		if (f->holders[i].tid == tid)
			break;
	if (i == f->nholders) {
		if (f->nholders < MODEL_MAX_HOLDERS) {
			f->nholders++;
		} else {
			/* replace the holder with the least wait: keep the top ones */
			for (i = 1, min = 0; i < MODEL_MAX_HOLDERS; i++)
				if (f->holders[i].wait_ns < f->holders[min].wait_ns)
					min = i;
			i = min;
		}
		memset(&f->holders[i], 0, sizeof(f->holders[i]));
		f->holders[i].tid = tid;
	}
	f->holders[i].waits++;
	f->holders[i].wait_ns += wait;
	if (stack && stack->n)
		f->holders[i].stack = *stack;
}

static void finding_account(struct finding *f, const struct pending *p, uint64_t ns)
{
	f->count++;
	f->total_ns += ns;
	if (ns > f->max_ns)
		f->max_ns = ns;
	if (!f->first_ts)
		f->first_ts = p->start;
	f->last_ts = p->ts;
}

/* Turns a buffered sleep of a confirmed loop thread into a GIL wait, a lock
 * wait or a blocking_syscall finding. */
static void sleep_classify(struct model *m, struct pending *p)
{
	struct loop_info *l = model_loop(m, p->tid, 0);
	struct finding *f;
	uint64_t key;
	int futex = p->nr == NR_FUTEX || p->nr == NR_FUTEX_WAITV;
	int woken = l && l->waker_tid && l->waker_sleep_start == p->start;

	if (p->is_sample || p->is_gc || p->classified || !l || !l->confirmed)
		return;
	p->classified = 1;
	if (futex && addr_is_gil(m, p->arg0)) {
		l->gil_wait_ns += p->blocked_ns;
		l->gil_waits++;
		p->nr = -2;  /* shown as "gil" in stall breakdowns */
		/* one finding per loop: every GIL wait counts, it is reported
		 * once a wait reaches the block threshold */
		key = hash_bytes(0xcbf29ce484222325ULL, "gil", 3);
		f = finding_get(m, FINDING_GIL_CONTENTION, p->tid, NR_FUTEX, key, p->stack);
		if (!f)
			return;
		if (p->blocked_ns >= f->max_ns && p->stack->n)
			f->stack = *p->stack;  /* where the loop waited longest */
		finding_account(f, p, p->blocked_ns);
		snprintf(f->lock_kind, sizeof(f->lock_kind), "gil");
		f->lock_addr = m->cfg.gil_addr;
		if (woken)
			holder_add(f, l->waker_tid, p->blocked_ns, l->waker_stack);
		else
			f->unattributed_ns += p->blocked_ns;
		/* explains stalls like a blocking call (when the finding shows) */
		p->blocking = 1;
		p->finding_key = key;
		if (p->blocked_ns >= m->cfg.block_ns)
			model_timeline_add(m, p->tid, TL_GIL_WAIT, -1, p->start, p->blocked_ns, p->stack);
		return;
	}
	if (p->nr < 0 || p->blocked_ns < m->cfg.block_ns)
		return;
	if (futex) {
		/* a lock (or condition) the loop waited for: name it by address,
		 * kind and the waiter's stack; the waker is the holder */
		key = stack_hash(hash_bytes(0x9e3779b97f4a7c15ULL, &p->arg0, sizeof(p->arg0)), p->stack, 1);
		f = finding_get(m, FINDING_LOCK_CONTENTION, p->tid, p->nr, key, p->stack);
		if (!f)
			return;
		finding_account(f, p, p->blocked_ns);
		snprintf(f->lock_kind, sizeof(f->lock_kind), "%s", model_lock_kind(m, p->arg0, p->op));
		f->lock_addr = p->arg0;
		if (woken)
			holder_add(f, l->waker_tid, p->blocked_ns, l->waker_stack);
		else
			f->unattributed_ns += p->blocked_ns;
		p->blocking = 1;
		p->finding_key = key;
		model_timeline_add(m, p->tid, TL_LOCK_WAIT, p->nr, p->start, p->blocked_ns, p->stack);
		return;
	}
	key = stack_hash(hash_bytes(0xcbf29ce484222325ULL, &p->nr, sizeof(p->nr)), p->stack, 1);
	f = finding_get(m, FINDING_BLOCKING_SYSCALL, p->tid, p->nr, key, p->stack);
	if (!f)
		return;
	finding_account(f, p, p->blocked_ns);
	if (p->fd_kind && !f->fd_kind[0]) {
		strncpy(f->fd_kind, p->fd_kind, sizeof(f->fd_kind) - 1);
		f->fd_kind[sizeof(f->fd_kind) - 1] = '\0';
	}
	p->blocking = 1;
	p->finding_key = key;
	model_timeline_add(m, p->tid, TL_BLOCKING, p->nr, p->start, p->blocked_ns, p->stack);
}

void model_add_sleep(struct model *m, const struct model_sleep *s)
{
	struct pending p;

	pending_begin(m, s->tid, s->iter_start);
	memset(&p, 0, sizeof(p));
	p.tid = s->tid;
	p.ts = s->ts;
	p.start = s->start;
	p.blocked_ns = s->blocked_ns;
	p.iter_start = s->iter_start;
	p.nr = s->nr;
	p.arg0 = s->args[0];
	p.op = (uint32_t)s->args[1];
	p.fd_kind = model_intern(m, s->fd_kind);
	p.stack = stack_intern(m, s->stack);
	if (pending_add(m, &p) == 0)
		sleep_classify(m, &m->pend[m->npend - 1]);
	else
		sleep_classify(m, &p);
}

void model_loop_confirm(struct model *m, uint32_t tid)
{
	struct loop_info *l = model_loop(m, tid, 1);
	size_t i;

	if (!l || l->confirmed)
		return;
	l->confirmed = 1;
	for (i = 0; i < m->npend; i++)
		if (m->pend[i].tid == tid)
			sleep_classify(m, &m->pend[i]);
}

void model_add_waker(struct model *m, uint32_t waiter_tid, uint32_t waker_tid, uint64_t sleep_start,
		     const struct mstack *stack)
{
	struct loop_info *l = model_loop(m, waiter_tid, 1);

	if (!l)
		return;
	l->waker_tid = waker_tid;
	l->waker_sleep_start = sleep_start;
	l->waker_stack = stack_intern(m, stack);
}

void model_add_gc(struct model *m, uint32_t tid, uint64_t start, uint64_t dur_ns, int generation,
		  uint64_t iter_start, const struct mstack *stack)
{
	struct loop_info *l;
	struct pending p;
	struct finding *f;
	uint64_t key;

	pending_begin(m, tid, iter_start);
	memset(&p, 0, sizeof(p));
	p.tid = tid;
	p.is_gc = 1;
	p.ts = start + dur_ns;
	p.start = start;
	p.blocked_ns = dur_ns;
	p.iter_start = iter_start;
	p.nr = -3;
	p.stack = stack_intern(m, stack);
	l = model_loop(m, tid, 0);
	if (l && l->confirmed && dur_ns >= m->cfg.block_ns) {
		/* grouped like stalls: callers exactly, innermost by function */
		key = stack_hash(0x7f4a7c159e3779b9ULL, p.stack, 0);
		f = finding_get(m, FINDING_GC_PAUSE, tid, -1, key, p.stack);
		if (f) {
			if (!f->count)
				f->generation = generation;
			else if (generation > f->generation)
				f->generation = generation;
			finding_account(f, &p, dur_ns);
			p.blocking = 1;
			p.finding_key = key;
		}
		model_timeline_add(m, tid, TL_GC, -1, start, dur_ns, p.stack);
	}
	pending_add(m, &p);
}

void model_thread_name_set(struct model *m, uint32_t tid, const char *name)
{
	size_t i;
	void *n;

	for (i = 0; i < m->nnames; i++)
		if (m->names[i].tid == tid)
			break;
	if (i == m->nnames) {
		n = grow(m->names, &m->capnames, m->nnames + 1, sizeof(*m->names));
		if (!n)
			return;
		m->names = n;
		m->nnames++;
	}
	m->names[i].tid = tid;
	snprintf(m->names[i].name, sizeof(m->names[i].name), "%s", name ? name : "");
}

const char *model_thread_name(const struct model *m, uint32_t tid)
{
	size_t i;

	for (i = 0; i < m->nloops; i++)
		if (m->loops[i].tid == tid && m->loops[i].name[0])
			return m->loops[i].name;
	for (i = 0; i < m->nnames; i++)
		if (m->names[i].tid == tid)
			return m->names[i].name;
	return NULL;
}

static struct lock_info *lock_get(struct model *m, uint64_t addr)
{
	struct lock_info *l;
	size_t i;

	for (i = 0; i < m->nlocks; i++)
		if (m->locks[i].addr == addr)
			return &m->locks[i];
	l = grow(m->locks, &m->caplocks, m->nlocks + 1, sizeof(*l));
	if (!l)
		return NULL;
	m->locks = l;
	l = &m->locks[m->nlocks++];
	memset(l, 0, sizeof(*l));
	l->addr = addr;
	return l;
}

void model_lock_update(struct model *m, uint64_t addr, uint32_t op, uint64_t waits, uint64_t total_ns,
		       uint64_t max_ns, uint64_t woken_by_peer)
{
	struct lock_info *l = lock_get(m, addr);

	if (!l)
		return;
	l->op = op;
	snprintf(l->kind, sizeof(l->kind), "%s", model_lock_kind(m, addr, op));
	l->waits = waits;
	l->total_ns = total_ns;
	l->max_ns = max_ns;
	l->woken_by_peer = woken_by_peer;
}

void model_lock_party_update(struct model *m, uint64_t addr, uint32_t waiter, uint32_t waker,
			     uint64_t waits, uint64_t total_ns)
{
	struct lock_info *l = lock_get(m, addr);
	int i, min = 0;

	if (!l)
		return;
	for (i = 0; i < l->nparties; i++)
		if (l->parties[i].waiter == waiter && l->parties[i].waker == waker)
			break;
	if (i == l->nparties) {
		if (l->nparties < MODEL_MAX_PARTIES) {
			l->nparties++;
		} else {
			for (i = 1, min = 0; i < MODEL_MAX_PARTIES; i++)
				if (l->parties[i].total_ns < l->parties[min].total_ns)
					min = i;
			if (l->parties[min].total_ns >= total_ns)
				return;
			i = min;
		}
		l->parties[i].waiter = waiter;
		l->parties[i].waker = waker;
	}
	l->parties[i].waits = waits;
	l->parties[i].total_ns = total_ns;
}

size_t model_nlocks(const struct model *m) { return m->nlocks; }
const struct lock_info *model_lock_at(const struct model *m, size_t i)
{
	return i < m->nlocks ? &m->locks[i] : NULL;
}

void model_add_sample(struct model *m, const struct model_sample *s)
{
	struct pending p;

	pending_begin(m, s->tid, s->iter_start);
	memset(&p, 0, sizeof(p));
	p.tid = s->tid;
	p.is_sample = 1;
	p.ts = s->ts;
	p.iter_start = s->iter_start;
	p.nr = s->nr;
	p.stack = stack_intern(m, s->stack);
	pending_add(m, &p);
}

static void sys_add(struct finding *f, int nr, uint64_t blocked, uint64_t count, uint64_t samples)
{
	int i;

	for (i = 0; i < f->nsys; i++)
		if (f->sys[i].nr == nr)
			break;
	if (i == f->nsys) {
		if (f->nsys == MODEL_MAX_SYS)
			return;
		f->nsys++;
		memset(&f->sys[i], 0, sizeof(f->sys[i]));
		f->sys[i].nr = nr;
	}
	f->sys[i].blocked_ns += blocked;
	f->sys[i].count += count;
	f->sys[i].samples += samples;
}

static int leaf_equal(const struct mstack *a, const struct mstack *b)
{
	if (a == b)
		return 1;
	if (!a->n || !b->n)
		return a->n == b->n;
	return a->f[0].function == b->f[0].function && a->f[0].file == b->f[0].file &&
	       a->f[0].line == b->f[0].line;
}

void model_add_stall(struct model *m, uint32_t tid, uint64_t start, uint64_t end,
		     uint64_t blocked_ns, uint64_t runnable_ns)
{
	model_add_stall_gc(m, tid, start, end, blocked_ns, runnable_ns, 0);
}

void model_add_stall_gc(struct model *m, uint32_t tid, uint64_t start, uint64_t end,
			uint64_t blocked_ns, uint64_t runnable_ns, uint64_t gc_ns)
{
	struct model_stall st;

	memset(&st, 0, sizeof(st));
	st.tid = tid;
	st.start = start;
	st.end = end;
	st.blocked_ns = blocked_ns;
	st.runnable_ns = runnable_ns;
	st.preempt_ns = runnable_ns;
	st.gc_ns = gc_ns;
	model_add_stall_ev(m, &st);
}

void model_add_stall_ev(struct model *m, const struct model_stall *st)
{
	uint32_t tid = st->tid;
	uint64_t start = st->start, end = st->end, blocked_ns = st->blocked_ns;
	uint64_t runnable_ns = st->runnable_ns, preempt_ns = st->preempt_ns, gc_ns = st->gc_ns;
	uint64_t dur = end - start, explained = 0, longest = 0, key;
	const struct pending *dom = NULL, *longest_sleep = NULL;
	size_t i, j, nsamples = 0, best = 0;
	struct finding *f;

	for (i = 0; i < m->npend; i++) {
		const struct pending *p = &m->pend[i];

		if (p->tid != tid || p->iter_start != start)
			continue;
		if (p->is_sample) {
			size_t same = 0;

			nsamples++;
			for (j = 0; j < m->npend; j++)
				if (m->pend[j].tid == tid && m->pend[j].iter_start == start &&
				    m->pend[j].is_sample && leaf_equal(m->pend[j].stack, p->stack))
					same++;
			if (same > best) {
				best = same;
				dom = p;
			}
		} else {
			if (p->blocking)
				explained += p->blocked_ns;
			if (p->blocked_ns > longest) {
				longest = p->blocked_ns;
				longest_sleep = p;
			}
		}
	}
	/* the loop's own work was short: it was preempted (machine
	 * overloaded, other processes), which no line of its code caused.
	 * Wake-up latency after its own sleeps does not count: thousands of
	 * short fsyncs make it long, and that is the code's doing. */
	if (dur - (preempt_ns < dur ? preempt_ns : dur) < m->cfg.stall_ns) {
		struct loop_info *l = model_loop(m, tid, 0);

		if (l)
			l->starved_stalls++;
		model_timeline_add(m, tid, TL_STALL, -1, start, dur, NULL);
		pending_drop(m, tid, start, 1);
		return;
	}
	/* without the reported blocking syscalls it would not have been a
	 * stall: credit them instead of reporting it twice */
	if (explained && dur - (explained < dur ? explained : dur) < m->cfg.stall_ns) {
		model_timeline_add(m, tid, TL_STALL, -1, start, dur,
				   longest_sleep ? longest_sleep->stack : NULL);
		for (i = 0; i < m->npend; i++) {
			const struct pending *p = &m->pend[i];

			if (p->tid != tid || p->iter_start != start || !p->blocking)
				continue;
			for (j = 0; j < m->nfindings; j++)
				if (m->findings[j].key == p->finding_key && m->findings[j].tid == tid &&
				    m->findings[j].kind != FINDING_STALL) {
					m->findings[j].stalls++;
					break;
				}
			break;
		}
		pending_drop(m, tid, start, 1);
		return;
	}
	/* group by the dominant stack: its callers exactly, its leaf by function */
	if (dom && best * 4 >= nsamples)
		;
	else if (longest_sleep && (!dom || longest * 2 >= dur))
		dom = longest_sleep, best = 0;
	key = stack_hash(0x84222325cbf29ce4ULL, dom ? dom->stack : &empty_stack, 0);
	f = finding_get(m, FINDING_STALL, tid, -1, key, dom ? dom->stack : &empty_stack);
	if (!f)
		goto cleanup;
	if (dom && f->count && dom->is_sample) {
		/* keep the most recent dominant stack, lines may differ */
		f->stack = *dom->stack;
	}
	model_timeline_add(m, tid, TL_STALL, -1, start, dur, dom ? dom->stack : &empty_stack);
	f->count++;
	f->total_ns += dur;
	if (dur > f->max_ns)
		f->max_ns = dur;
	if (!f->first_ts)
		f->first_ts = start;
	f->last_ts = end;
	f->blocked_ns += blocked_ns < dur ? blocked_ns : dur;
	f->runnable_ns += runnable_ns;
	f->preempt_ns += preempt_ns;
	f->on_cpu_ns += dur > blocked_ns + runnable_ns ? dur - blocked_ns - runnable_ns : 0;
	f->samples += nsamples;
	f->dominant_samples += best;
	f->gc_ns += gc_ns;
	for (i = 0; i < m->npend; i++) {
		const struct pending *p = &m->pend[i];

		if (p->tid != tid || p->iter_start != start)
			continue;
		if (p->is_sample) {
			if (p->nr >= 0)
				sys_add(f, p->nr, 0, 0, 1);
		} else if (!p->is_gc) {
			sys_add(f, p->nr, p->blocked_ns, 1, 0);
			if (p->nr == -2)
				f->gil_wait_ns += p->blocked_ns;
			else if (p->nr == NR_FUTEX || p->nr == NR_FUTEX_WAITV)
				f->lock_wait_ns += p->blocked_ns;
		}
	}
cleanup:
	pending_drop(m, tid, start, 1);
}

void model_timeline_add(struct model *m, uint32_t tid, enum timeline_kind kind, int nr,
			uint64_t start, uint64_t dur, const struct mstack *stack)
{
	struct timeline_ev *e;

	if (!m->tl) {
		m->tl = calloc(MODEL_TIMELINE_MAX, sizeof(*m->tl));
		if (!m->tl)
			return;
	}
	if (m->tl_len == MODEL_TIMELINE_MAX) {
		/* keep the most recent: CI cares about the end of a long run */
		m->tl_head = (m->tl_head + 1) % MODEL_TIMELINE_MAX;
		m->tl_len--;
		m->tl_dropped++;
	}
	e = &m->tl[(m->tl_head + m->tl_len) % MODEL_TIMELINE_MAX];
	m->tl_len++;
	e->tid = tid;
	e->kind = kind;
	e->nr = nr;
	e->start = start;
	e->dur = dur;
	e->stack = stack ? stack_intern(m, stack) : &empty_stack;
}

size_t model_timeline(const struct model *m, const struct timeline_ev **out, uint64_t *dropped)
{
	struct model *mm = (struct model *)m;

	*dropped = m->tl_dropped;
	*out = NULL;
	if (!m->tl_len)
		return 0;
	/* make it contiguous in time order */
	if (m->tl_head) {
		struct timeline_ev *v = malloc(MODEL_TIMELINE_MAX * sizeof(*v));
		size_t i;

		if (!v)
			return 0;
		for (i = 0; i < m->tl_len; i++)
			v[i] = m->tl[(m->tl_head + i) % MODEL_TIMELINE_MAX];
		free(mm->tl);
		mm->tl = v;
		mm->tl_head = 0;
	}
	*out = m->tl;
	return m->tl_len;
}

void model_loop_set_live(struct model *m, uint32_t tid, uint64_t iter_start, int nr,
			 const struct mstack *stack)
{
	struct loop_info *l = model_loop(m, tid, 0);

	if (!l)
		return;
	if (nr == -1) {
		l->live_iter = 0;
		l->live_stack = NULL;
		return;
	}
	l->live_iter = iter_start;
	l->live_nr = nr;
	l->live_stack = stack_intern(m, stack);
}

const struct mstack *model_loop_live_stack(const struct model *m, uint32_t tid, uint64_t iter_start)
{
	const struct pending *best = NULL;
	size_t i;

	for (i = 0; i < m->nloops; i++)
		if (m->loops[i].tid == tid && m->loops[i].live_iter == iter_start && iter_start &&
		    m->loops[i].live_stack && m->loops[i].live_stack->n)
			return m->loops[i].live_stack;

	for (i = 0; i < m->npend; i++) {
		const struct pending *p = &m->pend[i];

		if (p->tid == tid && p->iter_start == iter_start && p->stack && p->stack->n &&
		    (!best || p->ts >= best->ts))
			best = p;
	}
	return best ? best->stack : NULL;
}

size_t model_nloops(const struct model *m)
{
	size_t i, n = 0;

	for (i = 0; i < m->nloops; i++)
		n += m->loops[i].confirmed != 0;
	return n;
}

const struct loop_info *model_loop_at(const struct model *m, size_t i)
{
	size_t k;

	for (k = 0; k < m->nloops; k++)
		if (m->loops[k].confirmed && i-- == 0)
			return &m->loops[k];
	return NULL;
}
size_t model_nfindings(const struct model *m) { return m->nfindings; }
const struct finding *model_finding_at(const struct model *m, size_t i)
{
	return i < m->nfindings ? &m->findings[i] : NULL;
}
const struct model_config *model_cfg(const struct model *m) { return &m->cfg; }

static int finding_cmp(const void *a, const void *b)
{
	const struct finding *x = *(const struct finding *const *)a, *y = *(const struct finding *const *)b;

	if (x->total_ns != y->total_ns)
		return x->total_ns > y->total_ns ? -1 : 1;
	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return 0;
}

size_t model_findings_sorted(const struct model *m, const struct finding ***out)
{
	const struct finding **v;
	size_t i, n;

	*out = NULL;
	if (!m->nfindings)
		return 0;
	v = malloc(m->nfindings * sizeof(*v));
	if (!v)
		return 0;
	for (i = 0, n = 0; i < m->nfindings; i++) {
		/* GIL waits are all counted, reported once one is long enough */
		if (m->findings[i].kind == FINDING_GIL_CONTENTION && m->findings[i].max_ns < m->cfg.block_ns)
			continue;
		v[n++] = &m->findings[i];
	}
	qsort(v, n, sizeof(*v), finding_cmp);
	*out = v;
	return n;
}

void model_reset(struct model *m)
{
	/* `top`'s r key: findings and timeline start again; loops, locks,
	 * names and interned strings (still referenced) stay */
	m->nfindings = 0;
	m->tl_head = m->tl_len = 0;
	m->tl_dropped = 0;
}
