#define _GNU_SOURCE
#include "tracer.h"
#include "loopspy.skel.h"

#include <bpf/bpf.h>
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
#include <unistd.h>

struct tracer {
	struct loopspy_bpf *skel;
	struct ring_buffer *rb;
	struct bpf_link **perf_links;
	int *perf_fds;
	int ncpus;
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

static int ring_cb(void *ctx, void *data, size_t size)
{
	struct tracer *t = ctx;

	if (size >= sizeof(struct ls_event_hdr))
		t->fn(t->ctx, data, size);
	return 0;
}

static int perf_attach(struct tracer *t, int hz)
{
	int cpu, n = libbpf_num_possible_cpus();

	if (n <= 0)
		return -1;
	t->ncpus = n;
	t->perf_fds = calloc((size_t)n, sizeof(int));
	t->perf_links = calloc((size_t)n, sizeof(*t->perf_links));
	if (!t->perf_fds || !t->perf_links)
		return -1;
	for (cpu = 0; cpu < n; cpu++) {
		struct perf_event_attr a;
		int fd;

		t->perf_fds[cpu] = -1;
		memset(&a, 0, sizeof(a));
		a.type = PERF_TYPE_SOFTWARE;
		a.config = PERF_COUNT_SW_CPU_CLOCK;
		a.size = sizeof(a);
		a.sample_freq = (unsigned long long)hz;
		a.freq = 1;
		fd = (int)syscall(__NR_perf_event_open, &a, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);
		if (fd < 0) {
			if (errno == ENODEV) /* offline CPU */
				continue;
			fprintf(stderr, "loopspy: cannot open perf event on cpu %d: %s\n", cpu, strerror(errno));
			return -1;
		}
		t->perf_fds[cpu] = fd;
		t->perf_links[cpu] = bpf_program__attach_perf_event(t->skel->progs.on_sample, fd);
		if (!t->perf_links[cpu]) {
			fprintf(stderr, "loopspy: cannot attach sampler on cpu %d: %s\n", cpu, strerror(errno));
			return -1;
		}
	}
	return 0;
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
	if (o->sample_hz > 0 && perf_attach(t, o->sample_hz) < 0) {
		err = errno ? errno : EINVAL;
		goto fail;
	}
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
	for (i = 0; t->perf_links && i < t->ncpus; i++)
		bpf_link__destroy(t->perf_links[i]);
	for (i = 0; t->perf_fds && i < t->ncpus; i++)
		if (t->perf_fds[i] >= 0)
			close(t->perf_fds[i]);
	free(t->perf_links);
	free(t->perf_fds);
	loopspy_bpf__destroy(t->skel);
	free(t);
}

int tracer_target_add(struct tracer *t, pid_t tgid, const struct ls_target_cfg *cfg)
{
	uint32_t key = (uint32_t)tgid;

	return bpf_map_update_elem(bpf_map__fd(t->skel->maps.targets), &key, cfg, BPF_ANY) ? -errno : 0;
}

int tracer_target_del(struct tracer *t, pid_t tgid)
{
	uint32_t key = (uint32_t)tgid;

	return bpf_map_delete_elem(bpf_map__fd(t->skel->maps.targets), &key) ? -errno : 0;
}

int tracer_poll(struct tracer *t, int timeout_ms)
{
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
