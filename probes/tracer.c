#define _GNU_SOURCE
#include "tracer.h"
#include "loopspy.skel.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/perf_event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define TRACER_MAX_LINKS 256
#define LS_FAST_SLOTS 8 /* LS_FAST_TGIDS in the BPF program */
#define TRACER_MAX_SAMPLERS 4096

/* CPU sampling is per loop thread, not per CPU: on a VM every sampling
 * interrupt is expensive (bench: a 499 Hz per-CPU sampler cost an aiohttp
 * server 5-7% of its throughput), and only loop threads' samples are used. */
struct sampler {
	uint32_t tgid, tid;
	int fd;
	struct bpf_link *link;
};

struct tracer {
	struct loopspy_bpf *skel;
	struct bpf_link *gc_links[TRACER_MAX_LINKS];
	pid_t gc_pids[TRACER_MAX_LINKS];
	int ngc_links;
	struct ring_buffer *rb;
	struct sampler *samplers; /* one per loop thread */
	int nsamplers, samplers_cap, samplers_warned;
	int sample_hz;
	uint64_t sweep_ns;
	tracer_event_fn fn;
	void *ctx;
};

static int verbose_libbpf;

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_DEBUG && !verbose_libbpf)
		return 0;
	if (level == LIBBPF_INFO && !verbose_libbpf)
		return 0;
	/* probing for USDT notes or a collector symbol that a binary may not
	 * have is expected (the report's gc_timing says what was used) */
	if (!verbose_libbpf && (strstr(fmt, "no USDT notes") || strstr(fmt, "failed to find symbol")))
		return 0;
	return vfprintf(stderr, fmt, args);
}

/* Syscall tracepoints are found through tracefs; mount it if nobody did. */
static void tracefs_ensure(void)
{
	struct stat st;

	if (stat("/sys/kernel/tracing/events", &st) == 0 || stat("/sys/kernel/debug/tracing/events", &st) == 0)
		return;
	if (mount("nodev", "/sys/kernel/tracing", "tracefs", 0, NULL) != 0 && verbose_libbpf)
		fprintf(stderr, "loopspy: cannot mount tracefs on /sys/kernel/tracing: %s\n", strerror(errno));
}

static void sampler_close(struct sampler *sp)
{
	bpf_link__destroy(sp->link);
	if (sp->fd >= 0)
		close(sp->fd);
	sp->link = NULL;
	sp->fd = -1;
}

/* Starts sampling a loop thread; quiet when the thread is already gone. */
static void sampler_add(struct tracer *t, uint32_t tgid, uint32_t tid)
{
	struct perf_event_attr a;
	struct sampler *sp, *grown;
	int i, fd;

	if (t->sample_hz <= 0)
		return;
	for (i = 0; i < t->nsamplers; i++)
		if (t->samplers[i].tid == tid && t->samplers[i].tgid == tgid)
			return;
	if (t->nsamplers >= TRACER_MAX_SAMPLERS) {
		if (!t->samplers_warned++)
			fprintf(stderr, "loopspy: cannot sample more than %d loop threads: later loops get no CPU samples\n",
				TRACER_MAX_SAMPLERS);
		return;
	}
	if (t->nsamplers == t->samplers_cap) {
		int cap = t->samplers_cap ? t->samplers_cap * 2 : 16;

		grown = realloc(t->samplers, (size_t)cap * sizeof(*grown));
		if (!grown)
			return;
		t->samplers = grown;
		t->samplers_cap = cap;
	}
	memset(&a, 0, sizeof(a));
	a.type = PERF_TYPE_SOFTWARE;
	/* task-clock: its timer runs only while the thread does (bench:
	 * cpu-clock on the same thread cost an aiohttp server 3% more) */
	a.config = PERF_COUNT_SW_TASK_CLOCK;
	a.size = sizeof(a);
	/* a fixed period: frequency mode re-arms the timer every tick */
	a.sample_period = 1000000000ULL / (unsigned long long)t->sample_hz;
	fd = (int)syscall(__NR_perf_event_open, &a, (pid_t)tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
	if (fd < 0) {
		if (errno != ESRCH && !t->samplers_warned++)
			fprintf(stderr, "loopspy: cannot sample thread %u: %s (stalls get no CPU samples)\n"
				"hint: sampling needs CAP_PERFMON; check `loopspy doctor`\n", tid, strerror(errno));
		return;
	}
	sp = &t->samplers[t->nsamplers];
	sp->tgid = tgid;
	sp->tid = tid;
	sp->fd = fd;
	sp->link = bpf_program__attach_perf_event(t->skel->progs.on_sample, fd);
	if (!sp->link) {
		if (!t->samplers_warned++)
			fprintf(stderr, "loopspy: cannot attach sampler to thread %u: %s\n", tid, strerror(errno));
		close(fd);
		return;
	}
	t->nsamplers++;
}

/* Closes the samplers of tgid (0: of threads that have exited). */
static void samplers_drop(struct tracer *t, uint32_t tgid)
{
	int i, j = 0;

	for (i = 0; i < t->nsamplers; i++) {
		struct sampler *sp = &t->samplers[i];
		int gone = tgid ? sp->tgid == tgid
				: syscall(SYS_tgkill, (pid_t)sp->tgid, (pid_t)sp->tid, 0) != 0 && errno == ESRCH;

		if (gone)
			sampler_close(sp);
		else
			t->samplers[j++] = *sp;
	}
	t->nsamplers = j;
}

static int ring_cb(void *ctx, void *data, size_t size)
{
	struct tracer *t = ctx;
	const struct ls_event_hdr *h = data;

	if (!t || size < sizeof(struct ls_event_hdr))
		return 0;
	if (h->type == LS_EV_LOOP || h->type == LS_EV_CANDIDATE)
		sampler_add(t, h->tgid, h->tid);
	if (h->type != LS_EV_CANDIDATE)
		t->fn(t->ctx, data, size);
	return 0;
}

/* Tests only (docs/safety.md): LOOPSPY_RINGBUF_BYTES shrinks the ring
 * buffer (a power of two, at least a page) to prove that an overflow is
 * counted and reported. Never set in production: the default holds
 * thousands of events between two polls. */
static void ringbuf_size_set(struct loopspy_bpf *skel)
{
	const char *v = getenv("LOOPSPY_RINGBUF_BYTES");
	unsigned long n;
	char *end;

	if (!v || !*v)
		return;
	n = strtoul(v, &end, 10);
	if (*end || n < (unsigned long)sysconf(_SC_PAGESIZE) || n > (1UL << 30) || (n & (n - 1))) {
		fprintf(stderr, "loopspy: cannot use LOOPSPY_RINGBUF_BYTES=%s: not a power of two between a page and 1 GiB, ignored\n", v);
		return;
	}
	bpf_map__set_max_entries(skel->maps.events, (__u32)n);
}

struct tracer *tracer_open(const struct tracer_opts *o, tracer_event_fn fn, void *ctx)
{
	struct tracer *t = calloc(1, sizeof(*t));
	int err;

	if (!t)
		return NULL;
	verbose_libbpf = o->verbose;
	libbpf_set_print(libbpf_print);
	tracefs_ensure();
	t->fn = fn;
	t->ctx = ctx;
	t->skel = loopspy_bpf__open();
	if (!t->skel) {
		err = errno;
		fprintf(stderr, "loopspy: cannot open BPF object: %s\n", strerror(err));
		goto fail;
	}
	t->skel->rodata->stall_ns = o->stall_ns;
	t->skel->rodata->sample_after_ns = o->sample_after_ns;
	t->skel->rodata->min_sleep_ns = o->min_sleep_ns;
	t->skel->rodata->walk_stacks = (uint32_t)o->walk_stacks;
	t->skel->rodata->min_gc_ns = o->min_gc_ns ? o->min_gc_ns : 1000000ULL;
	ringbuf_size_set(t->skel);
	err = loopspy_bpf__load(t->skel);
	if (err) {
		err = -err;
		fprintf(stderr, "loopspy: cannot load BPF programs: %s\n"
			"hint: run as root (CAP_BPF and CAP_PERFMON), check `loopspy doctor`, rerun with -v for the verifier log\n",
			strerror(err));
		goto fail;
	}
	err = loopspy_bpf__attach(t->skel);
	if (err) {
		err = -err;
		fprintf(stderr, "loopspy: cannot attach BPF programs: %s\n"
			"hint: syscall tracepoints need tracefs (mount -t tracefs nodev /sys/kernel/tracing)\n",
			strerror(err));
		goto fail;
	}
	t->sample_hz = o->sample_hz;
	t->rb = ring_buffer__new(bpf_map__fd(t->skel->maps.events), ring_cb, t, NULL);
	if (!t->rb) {
		err = errno;
		fprintf(stderr, "loopspy: cannot create ring buffer: %s\n", strerror(err));
		goto fail;
	}
	return t;
fail:
	tracer_close(t);
	errno = err;
	return NULL;
}

void tracer_close(struct tracer *t)
{
	int i;

	if (!t)
		return;
	ring_buffer__free(t->rb);
	for (i = 0; i < t->ngc_links; i++)
		bpf_link__destroy(t->gc_links[i]);
	for (i = 0; i < t->nsamplers; i++)
		sampler_close(&t->samplers[i]);
	free(t->samplers);
	loopspy_bpf__destroy(t->skel);
	free(t);
}

/* The kernel's fast-path list of target tgids (see fast_tgids in the BPF
 * program): written through the mmap'ed .bss, seen at once. */
static void fast_list_add(struct tracer *t, uint32_t tgid)
{
	int i, free_slot = -1;

	for (i = 0; i < LS_FAST_SLOTS; i++) {
		if (t->skel->bss->fast_tgids[i] == tgid)
			return;
		if (!t->skel->bss->fast_tgids[i] && free_slot < 0)
			free_slot = i;
	}
	if (free_slot < 0)
		t->skel->bss->fast_all = 1; /* more targets than slots: hash map for all */
	else
		t->skel->bss->fast_tgids[free_slot] = tgid;
}

static void fast_list_del(struct tracer *t, uint32_t tgid)
{
	int i;

	for (i = 0; i < LS_FAST_SLOTS; i++)
		if (t->skel->bss->fast_tgids[i] == tgid)
			t->skel->bss->fast_tgids[i] = 0;
}

int tracer_target_add(struct tracer *t, pid_t tgid, const struct ls_target_cfg *cfg)
{
	uint32_t key = (uint32_t)tgid;

	if (bpf_map_update_elem(bpf_map__fd(t->skel->maps.targets), &key, cfg, BPF_ANY))
		return -errno;
	fast_list_add(t, key);
	return 0;
}

/* Deletes every entry of map fd whose key (klen bytes) or value belongs
 * to tgid, as told by owned(). */
static void map_purge(int fd, size_t klen, size_t vlen, uint32_t tgid,
		      int (*owned)(const void *k, const void *v, uint32_t tgid))
{
	unsigned char *key = calloc(2, klen), *next = key ? key + klen : NULL, *val = malloc(vlen);
	unsigned char *doomed = NULL, *grown;
	size_t n = 0, cap = 0, i;
	int first = 1;

	if (!key || !val)
		goto cleanup;
	/* collect first: deleting while walking a hash map can restart or
	 * skip the walk */
	while (bpf_map_get_next_key(fd, first ? NULL : key, next) == 0) {
		first = 0;
		memcpy(key, next, klen);
		if (bpf_map_lookup_elem(fd, key, val) || !owned(key, val, tgid))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			grown = realloc(doomed, cap * klen);
			if (!grown)
				break;
			doomed = grown;
		}
		memcpy(doomed + n++ * klen, key, klen);
	}
	for (i = 0; i < n; i++)
		bpf_map_delete_elem(fd, doomed + i * klen);
cleanup:
	free(doomed);
	free(key);
	free(val);
}

static int loop_owned(const void *k, const void *v, uint32_t tgid)
{
	(void)k;
	return ((const struct ls_loop_stats *)v)->tgid == tgid;
}

static int lock_owned(const void *k, const void *v, uint32_t tgid)
{
	(void)v;
	return ((const struct ls_lock_key *)k)->tgid == tgid;
}

static int lockpair_owned(const void *k, const void *v, uint32_t tgid)
{
	(void)v;
	return ((const struct ls_lockpair_key *)k)->tgid == tgid;
}

int tracer_target_del(struct tracer *t, pid_t tgid)
{
	uint32_t key = (uint32_t)tgid;
	int err = bpf_map_delete_elem(bpf_map__fd(t->skel->maps.targets), &key) ? -errno : 0;

	fast_list_del(t, key);
	samplers_drop(t, key);
	/* a shared tracer (agent) outlives its targets: drop their statistics
	 * so the maps only hold live processes */
	map_purge(bpf_map__fd(t->skel->maps.loops), sizeof(uint32_t), sizeof(struct ls_loop_stats),
		  key, loop_owned);
	map_purge(bpf_map__fd(t->skel->maps.locks), sizeof(struct ls_lock_key),
		  sizeof(struct ls_lock_stats), key, lock_owned);
	map_purge(bpf_map__fd(t->skel->maps.lockpairs), sizeof(struct ls_lockpair_key),
		  sizeof(struct ls_lockpair_stats), key, lockpair_owned);
	return err;
}

int tracer_poll(struct tracer *t, int timeout_ms)
{
	struct timespec ts;
	uint64_t now;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	if (now - t->sweep_ns >= 1000000000ULL) { /* threads that exited */
		t->sweep_ns = now;
		samplers_drop(t, 0);
	}
	return ring_buffer__poll(t->rb, timeout_ms);
}

int tracer_loops_read(struct tracer *t, pid_t tgid,
		      void (*fn)(void *ctx, uint32_t tid, const struct ls_loop_stats *st), void *ctx)
{
	int fd = bpf_map__fd(t->skel->maps.loops);
	uint32_t key, next;
	struct ls_loop_stats *st = malloc(sizeof(*st));
	int n = 0, first = 1;

	if (!st)
		return -ENOMEM;
	while (bpf_map_get_next_key(fd, first ? NULL : &key, &next) == 0) {
		first = 0;
		key = next;
		if (bpf_map_lookup_elem(fd, &key, st) == 0 && st->tgid == (uint32_t)tgid) {
			/* its LS_EV_LOOP/CANDIDATE records may have been
			 * dropped; only a loop in an iteration is surely alive */
			if (st->iter_start)
				sampler_add(t, st->tgid, key);
			fn(ctx, key, st);
			n++;
		}
	}
	free(st);
	return n;
}

uint64_t tracer_counter(struct tracer *t, enum ls_counter c)
{
	int ncpu = libbpf_num_possible_cpus(), i;
	uint32_t key = (uint32_t)c;
	uint64_t *vals, sum = 0;

	if (ncpu <= 0)
		return 0;
	vals = calloc((size_t)ncpu, sizeof(*vals));
	if (!vals)
		return 0;
	if (bpf_map_lookup_elem(bpf_map__fd(t->skel->maps.counters), &key, vals) == 0)
		for (i = 0; i < ncpu; i++)
			sum += vals[i];
	free(vals);
	return sum;
}

int tracer_locks_read(struct tracer *t, pid_t tgid,
		      void (*fn)(void *ctx, uint64_t uaddr, const struct ls_lock_stats *st), void *ctx)
{
	int fd = bpf_map__fd(t->skel->maps.locks), n = 0, first = 1;
	struct ls_lock_key key, next;
	struct ls_lock_stats st;

	while (bpf_map_get_next_key(fd, first ? NULL : &key, &next) == 0) {
		first = 0;
		key = next;
		if (key.tgid == (uint32_t)tgid && bpf_map_lookup_elem(fd, &key, &st) == 0) {
			fn(ctx, key.uaddr, &st);
			n++;
		}
	}
	return n;
}

int tracer_lockpairs_read(struct tracer *t, pid_t tgid,
			  void (*fn)(void *ctx, const struct ls_lockpair_key *k,
				     const struct ls_lockpair_stats *st), void *ctx)
{
	int fd = bpf_map__fd(t->skel->maps.lockpairs), n = 0, first = 1;
	struct ls_lockpair_key key, next;
	struct ls_lockpair_stats st;

	while (bpf_map_get_next_key(fd, first ? NULL : &key, &next) == 0) {
		first = 0;
		key = next;
		if (key.tgid == (uint32_t)tgid && bpf_map_lookup_elem(fd, &key, &st) == 0) {
			fn(ctx, &key, &st);
			n++;
		}
	}
	return n;
}

static int gc_link_add(struct tracer *t, pid_t pid, struct bpf_link *l)
{
	if (!l)
		return -1;
	t->gc_pids[t->ngc_links] = pid;
	t->gc_links[t->ngc_links++] = l; /* room checked by the caller */
	return 0;
}

void tracer_gc_detach(struct tracer *t, pid_t pid)
{
	int i, j = 0;

	if (!t)
		return;
	for (i = 0; i < t->ngc_links; i++) {
		if (t->gc_pids[i] == pid) {
			bpf_link__destroy(t->gc_links[i]);
			continue;
		}
		t->gc_pids[j] = t->gc_pids[i];
		t->gc_links[j++] = t->gc_links[i];
	}
	t->ngc_links = j;
}

int tracer_gc_attach(struct tracer *t, pid_t pid, const char *binary, int minor,
		     char *how, size_t how_len)
{
	/* the collector's name per version (static functions: needs symbols);
	 * 3.8 builds only have compiler clones of collect(), each probed */
	static const char *const names38[] = { "collect", "collect.constprop.0", "collect.constprop.1",
						 "collect.constprop.2", "collect.isra.0", NULL };
	static const char *const names39[] = { "collect", NULL };
	static const char *const names310[] = { "gc_collect_main", NULL };
	const char *const *names = minor <= 7 ? NULL : minor == 8 ? names38 : minor == 9 ? names39 : names310;
	char path[600], used[160] = "";
	struct bpf_link *a, *b;
	int i, n = 0;

	snprintf(path, sizeof(path), "/proc/%d/root%s", (int)pid, binary);
	if (t->ngc_links + 2 > TRACER_MAX_LINKS) {
		snprintf(how, how_len, "unavailable: too many probes");
		return -1;
	}
	/* USDT first: semaphore-gated, libbpf sets the kernel reference counter */
	a = bpf_program__attach_usdt(t->skel->progs.gc_usdt_start, pid, path, "python", "gc__start", NULL);
	if (a) {
		b = bpf_program__attach_usdt(t->skel->progs.gc_usdt_done, pid, path, "python", "gc__done", NULL);
		if (b) {
			gc_link_add(t, pid, a);
			gc_link_add(t, pid, b);
			snprintf(how, how_len, "usdt python:gc__start/gc__done");
			return 0;
		}
		bpf_link__destroy(a);
		bpf_link__destroy(b);
	}
	if (!names) {
		snprintf(how, how_len, "unavailable: %s has no GC USDT probes and CPython 3.%d's collector cannot be probed by name",
			 binary, minor);
		return -1;
	}
	for (i = 0; names[i] && t->ngc_links + 2 <= TRACER_MAX_LINKS; i++) {
		LIBBPF_OPTS(bpf_uprobe_opts, uo);

		uo.func_name = names[i];
		a = bpf_program__attach_uprobe_opts(t->skel->progs.gc_uprobe_start, pid, path, 0, &uo);
		uo.retprobe = true;
		b = a ? bpf_program__attach_uprobe_opts(t->skel->progs.gc_uprobe_done, pid, path, 0, &uo) : NULL;
		if (!a || !b) {
			bpf_link__destroy(a);
			bpf_link__destroy(b);
			continue;
		}
		gc_link_add(t, pid, a);
		gc_link_add(t, pid, b);
		snprintf(used + strlen(used), sizeof(used) - strlen(used), "%s%s", n ? ", " : "", names[i]);
		n++;
	}
	if (n) {
		snprintf(how, how_len, "uprobe %s%s", used, minor == 8 ? " (generation unknown)" : "");
		return 0;
	}
	snprintf(how, how_len, "unavailable: no GC USDT probes and no symbol %s in %s", names[0], binary);
	return -1;
}

int tracer_live_state(struct tracer *t, uint32_t tid, struct ls_pending_sleep *sleep)
{
	struct ls_thread_state ts;

	if (bpf_map_lookup_elem(bpf_map__fd(t->skel->maps.threads), &tid, &ts) || !ts.iter_start)
		return 0;
	if (ts.gc_start) {
		/* struct gc_rec in the BPF object: start, gen, pad, stack */
		struct { uint64_t start; int32_t gen; uint32_t pad; struct ls_stack stack; } g;

		if (bpf_map_lookup_elem(bpf_map__fd(t->skel->maps.gcs), &tid, &g) == 0 && g.start == ts.gc_start) {
			memset(sleep, 0, sizeof(*sleep));
			sleep->start = g.start;
			sleep->nr = -3;
			sleep->stack = g.stack;
			return 2;
		}
	}
	if (ts.off_kind != 1)
		return 0;
	if (bpf_map_lookup_elem(bpf_map__fd(t->skel->maps.pending), &tid, sleep) || sleep->start != ts.off_start)
		return 0;
	return 1;
}

/* doctor's uprobe target: a function of this very binary */
static __attribute__((noinline, used)) int tracer_selftest_probe_target(int x)
{
	__asm__ volatile("" : "+r"(x));
	return x + 1;
}

static int check(tracer_check_fn fn, void *ctx, enum tracer_check_level lvl, const char *what,
		 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int check(tracer_check_fn fn, void *ctx, enum tracer_check_level lvl, const char *what,
		 const char *fmt, ...)
{
	char detail[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	fn(ctx, lvl, what, detail);
	return lvl == TRACER_CHECK_FAIL;
}

static const char *err_str(int err)
{
	return err == EPERM || err == EACCES ? "not permitted (needs CAP_BPF and CAP_PERFMON)" : strerror(err);
}

/* A two-instruction program (r0 = 0; exit). */
static int tiny_prog_load(enum bpf_prog_type type, enum bpf_attach_type attach, __u32 btf_id)
{
	struct bpf_insn insns[2];
	LIBBPF_OPTS(bpf_prog_load_opts, po);

	memset(insns, 0, sizeof(insns));
	insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;
	insns[0].dst_reg = BPF_REG_0;
	insns[1].code = BPF_JMP | BPF_EXIT;
	po.expected_attach_type = attach;
	po.attach_btf_id = btf_id;
	return bpf_prog_load(type, "ls_doctor", "GPL", insns, 2, &po);
}

/* kprobes and fentry: loopspy needs neither (informational). */
static void extras_check(tracer_check_fn fn, void *ctx)
{
	static const char *const funcs[] = { "do_nanosleep", "ksys_read", "__x64_sys_getpid" };
	struct btf *vmlinux = btf__load_vmlinux_btf();
	int r, fd = -1, id = -1;
	size_t i;

	r = libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_KPROBE, NULL);
	if (r == 1 && access("/sys/bus/event_source/devices/kprobe/type", F_OK) < 0)
		check(fn, ctx, TRACER_CHECK_INFO, "kprobes",
		      "programs load but there is no kprobe PMU (CONFIG_KPROBES off); loopspy does not use them");
	else
		check(fn, ctx, TRACER_CHECK_INFO, "kprobes", "%s (loopspy does not use them)",
		      r == 1 ? "kprobe programs load, kprobe PMU present" : r == 0 ? "not supported" : strerror(-r));
	for (i = 0; vmlinux && i < sizeof(funcs) / sizeof(funcs[0]) && id < 0; i++)
		id = btf__find_by_name_kind(vmlinux, funcs[i], BTF_KIND_FUNC);
	if (id >= 0)
		fd = tiny_prog_load(BPF_PROG_TYPE_TRACING, BPF_TRACE_FENTRY, (__u32)id);
	if (fd >= 0) {
		int link = bpf_link_create(fd, 0, BPF_TRACE_FENTRY, NULL);

		check(fn, ctx, TRACER_CHECK_INFO, "fentry", "%s (loopspy does not use it)",
		      link >= 0 ? "programs load and attach (BPF trampolines)" : "programs load, attaching fails");
		if (link >= 0)
			close(link);
		close(fd);
	} else {
		check(fn, ctx, TRACER_CHECK_INFO, "fentry", "a program on %s does not load: %s (loopspy does not use it)",
		      id < 0 ? "?" : funcs[i - 1], id < 0 ? "no kernel function found in BTF" : strerror(errno));
	}
	btf__free(vmlinux);
}

static int uprobe_check(struct loopspy_bpf *skel, tracer_check_fn fn, void *ctx)
{
	LIBBPF_OPTS(bpf_uprobe_opts, uo);
	struct bpf_link *a, *b = NULL;
	const char *where = "/proc/self/exe";
	int err;

	uo.func_name = "tracer_selftest_probe_target";
	a = bpf_program__attach_uprobe_opts(skel->progs.gc_uprobe_start, getpid(), where, 0, &uo);
	if (!a) {
		/* a stripped binary: a libc function instead */
		where = "libc.so.6";
		uo.func_name = "getpid";
		a = bpf_program__attach_uprobe_opts(skel->progs.gc_uprobe_start, getpid(), where, 0, &uo);
	}
	err = errno;
	if (a) {
		uo.retprobe = true;
		b = bpf_program__attach_uprobe_opts(skel->progs.gc_uprobe_done, getpid(), where, 0, &uo);
		err = errno;
	}
	tracer_selftest_probe_target(1);
	if (a && b)
		check(fn, ctx, TRACER_CHECK_OK, "uprobes", "uprobe and uretprobe attach (%s in %s)",
		      uo.func_name, where);
	else
		check(fn, ctx, TRACER_CHECK_WARN, "uprobes",
		      "cannot attach: %s; GC pauses are not timed on CPython builds without USDT probes",
		      err_str(err));
	bpf_link__destroy(b);
	bpf_link__destroy(a);
	if (access("/sys/bus/event_source/devices/uprobe/format/ref_ctr_offset", F_OK) == 0)
		return check(fn, ctx, TRACER_CHECK_OK, "USDT",
			     "semaphores supported (the kernel's uprobe reference counter)");
	return check(fn, ctx, TRACER_CHECK_WARN, "USDT",
		     "the kernel cannot manage USDT semaphores: python:gc__* probes are not used");
}

static int perf_check(struct loopspy_bpf *skel, tracer_check_fn fn, void *ctx)
{
	struct perf_event_attr a;
	struct bpf_link *l;
	int fd, err;

	/* what the tracer does for each loop thread, on this thread */
	memset(&a, 0, sizeof(a));
	a.type = PERF_TYPE_SOFTWARE;
	a.config = PERF_COUNT_SW_TASK_CLOCK;
	a.size = sizeof(a);
	a.sample_period = 1000000000ULL / 499;
	fd = (int)syscall(__NR_perf_event_open, &a, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
	if (fd < 0)
		return check(fn, ctx, TRACER_CHECK_FAIL, "perf_event task-clock",
			     "cannot open for a thread: %s (CPU samples during stalls; --sample-hz 0 does without)",
			     errno == EACCES || errno == EPERM ? "not permitted (needs CAP_PERFMON)" : strerror(errno));
	l = bpf_program__attach_perf_event(skel->progs.on_sample, fd);
	err = errno;
	bpf_link__destroy(l);
	close(fd);
	if (!l)
		return check(fn, ctx, TRACER_CHECK_FAIL, "perf_event task-clock", "sampler does not attach: %s",
			     err_str(err));
	return check(fn, ctx, TRACER_CHECK_OK, "perf_event task-clock",
		     "sampler attaches (CPU samples of loop threads during stalls)");
}

static int libbpf_silent(enum libbpf_print_level level, const char *fmt, va_list args)
{
	(void)level;
	(void)fmt;
	(void)args;
	return 0;
}

int tracer_selftest(tracer_check_fn fn, void *ctx)
{
	struct loopspy_bpf *skel;
	struct bpf_program *prog;
	struct ring_buffer *rb;
	int failed = 0, err;

	/* every failure is one line of the report: no libbpf chatter */
	libbpf_set_print(libbpf_silent);
	tracefs_ensure();
	skel = loopspy_bpf__open();
	if (!skel)
		return check(fn, ctx, TRACER_CHECK_FAIL, "BPF object", "cannot open: %s", strerror(errno));
	err = loopspy_bpf__load(skel);
	if (err) {
		failed += check(fn, ctx, TRACER_CHECK_FAIL, "BPF programs",
				"do not load: %s (rerun `loopspy record -v` for the verifier log)", err_str(-err));
		loopspy_bpf__destroy(skel);
		extras_check(fn, ctx);
		return failed;
	}
	check(fn, ctx, TRACER_CHECK_OK, "BPF programs", "load: verifier, CO-RE relocations and maps (ring buffer %u KiB)",
	      bpf_map__max_entries(skel->maps.events) / 1024);
	bpf_object__for_each_program(prog, skel->obj) {
		const char *sec = bpf_program__section_name(prog);
		struct bpf_link *l;
		char what[128];

		if (strncmp(sec, "tracepoint/", 11) && strncmp(sec, "tp_btf/", 7))
			continue;
		snprintf(what, sizeof(what), "%s %s", !strncmp(sec, "tp_btf/", 7) ? "tp_btf" : "tracepoint",
			 strchr(sec, '/') + 1);
		l = bpf_program__attach(prog);
		if (l)
			check(fn, ctx, TRACER_CHECK_OK, what, "attaches");
		else
			failed += check(fn, ctx, TRACER_CHECK_FAIL, what, "cannot attach: %s%s", err_str(errno),
					!strncmp(sec, "tracepoint/", 11) ?
					" (syscall tracepoints need CONFIG_FTRACE_SYSCALLS and tracefs)" : "");
		bpf_link__destroy(l);
	}
	failed += perf_check(skel, fn, ctx);
	uprobe_check(skel, fn, ctx);
	rb = ring_buffer__new(bpf_map__fd(skel->maps.events), ring_cb, NULL, NULL);
	if (rb)
		check(fn, ctx, TRACER_CHECK_OK, "ring buffer", "maps into user space");
	else
		failed += check(fn, ctx, TRACER_CHECK_FAIL, "ring buffer", "cannot map: %s", strerror(errno));
	ring_buffer__free(rb);
	loopspy_bpf__destroy(skel);
	extras_check(fn, ctx);
	return failed;
}
