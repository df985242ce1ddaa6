/* `loopspy doctor`: what works on this machine and what does not, found by
 * doing it (loading loopspy's own BPF object, attaching each probe once),
 * not by guessing from versions. Exit 0 when everything loopspy needs
 * works, 1 otherwise. */
#define _GNU_SOURCE
#include "cli.h"
#include "privs.h"
#include "../probes/pyruntime.h"
#include "../probes/tracer.h"

#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#define DOCTOR_MAX_TARGETS 20

struct doctor {
	int failed, warned;
};

static const char *const level_tag[] = { "  ok  ", " FAIL ", " warn ", " info " };

static void line_print(struct doctor *d, enum tracer_check_level lvl, const char *what, const char *detail)
{
	printf("[%s] %-30s %s\n", level_tag[lvl], what, detail);
	d->failed += lvl == TRACER_CHECK_FAIL;
	d->warned += lvl == TRACER_CHECK_WARN;
}

static void line(struct doctor *d, enum tracer_check_level lvl, const char *what, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void line(struct doctor *d, enum tracer_check_level lvl, const char *what, const char *fmt, ...)
{
	char detail[700];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	line_print(d, lvl, what, detail);
}

static void check_cb(void *ctx, enum tracer_check_level lvl, const char *what, const char *detail)
{
	line_print(ctx, lvl, what, detail);
}

/* A one-line sysctl or sysfs value, "" when unreadable. */
static void sys_read(const char *path, char *buf, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t r = fd >= 0 ? read(fd, buf, n - 1) : -1;

	if (fd >= 0)
		close(fd);
	buf[r > 0 ? r : 0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
}

static void kernel_check(struct doctor *d)
{
	struct utsname u;

	if (uname(&u) < 0) {
		line(d, TRACER_CHECK_FAIL, "kernel", "uname: %s", strerror(errno));
		return;
	}
	if (strcmp(u.machine, "x86_64"))
		line(d, TRACER_CHECK_FAIL, "kernel", "%s %s: loopspy supports x86_64 only", u.release, u.machine);
	else
		line(d, TRACER_CHECK_OK, "kernel", "Linux %s %s", u.release, u.machine);
}

static void privileges_check(struct doctor *d)
{
	uint64_t eff = privs_effective();
	char missing[96], v[32];

	privs_missing_describe(eff, PRIVS_NEED_BPF, missing, sizeof(missing));
	if (missing[0])
		line(d, TRACER_CHECK_FAIL, "capabilities", "missing %s (uid %d): run loopspy as root (sudo)",
		     missing, (int)geteuid());
	else
		line(d, TRACER_CHECK_OK, "capabilities", "CAP_BPF and CAP_PERFMON%s (uid %d)",
		     eff & (1ULL << 21) ? " (through CAP_SYS_ADMIN)" : "", (int)geteuid());
	privs_missing_describe(eff, PRIVS_NEED_PTRACE, missing, sizeof(missing));
	if (missing[0])
		line(d, TRACER_CHECK_WARN, "CAP_SYS_PTRACE",
		     "missing: Python stacks of other users' processes cannot be read (`run` and --no-stacks work)");
	else
		line(d, TRACER_CHECK_OK, "CAP_SYS_PTRACE", "Python stacks of any process can be read");
	sys_read("/proc/sys/kernel/unprivileged_bpf_disabled", v, sizeof(v));
	if (v[0])
		line(d, TRACER_CHECK_INFO, "unprivileged_bpf_disabled", "%s", v);
	sys_read("/proc/sys/kernel/perf_event_paranoid", v, sizeof(v));
	if (v[0])
		line(d, TRACER_CHECK_INFO, "perf_event_paranoid", "%s", v);
	sys_read("/proc/sys/kernel/yama/ptrace_scope", v, sizeof(v));
	if (v[0])
		line(d, TRACER_CHECK_INFO, "yama ptrace_scope", "%s", v);
}

static void btf_check(struct doctor *d)
{
	struct stat st;
	struct btf *b;

	if (stat("/sys/kernel/btf/vmlinux", &st) < 0) {
		line(d, TRACER_CHECK_FAIL, "BTF", "/sys/kernel/btf/vmlinux: %s (needs a kernel built with "
		     "CONFIG_DEBUG_INFO_BTF=y)", strerror(errno));
		return;
	}
	b = btf__load_vmlinux_btf();
	if (!b) {
		line(d, TRACER_CHECK_FAIL, "BTF", "/sys/kernel/btf/vmlinux does not parse: %s", strerror(errno));
		return;
	}
	line(d, TRACER_CHECK_OK, "BTF", "/sys/kernel/btf/vmlinux: %u types (%lld KiB)", btf__type_cnt(b),
	     (long long)st.st_size / 1024);
	btf__free(b);
}

/* libbpf's probes answer "unsupported" when they were not allowed to try */
static const char *probe_fail(int r, int permitted)
{
	if (r == 0 && !permitted)
		return "not permitted (needs CAP_BPF and CAP_PERFMON)";
	if (r == 0)
		return "not supported by this kernel";
	return -r == EPERM || -r == EACCES ? "not permitted (needs CAP_BPF and CAP_PERFMON)" : strerror(-r);
}

static void bpf_check(struct doctor *d)
{
	static const struct { enum bpf_map_type t; const char *name; } maps[] = {
		{ BPF_MAP_TYPE_RINGBUF, "map ringbuf" },
		{ BPF_MAP_TYPE_LRU_HASH, "map lru_hash" },
		{ BPF_MAP_TYPE_PERCPU_ARRAY, "map percpu_array" },
	};
	char missing[96];
	size_t i;
	int r, permitted;

	privs_missing_describe(privs_effective(), PRIVS_NEED_BPF, missing, sizeof(missing));
	permitted = !missing[0];
	r = libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_TRACEPOINT, NULL);
	if (r == 1)
		line(d, TRACER_CHECK_OK, "bpf() syscall", "a tracepoint program loads");
	else
		line(d, TRACER_CHECK_FAIL, "bpf() syscall", "a tracepoint program does not load: %s",
		     probe_fail(r, permitted));
	for (i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		r = libbpf_probe_bpf_map_type(maps[i].t, NULL);
		if (r == 1)
			line(d, TRACER_CHECK_OK, maps[i].name, "created");
		else
			line(d, TRACER_CHECK_FAIL, maps[i].name, "cannot create: %s", probe_fail(r, permitted));
	}
}

static void tracefs_check(struct doctor *d)
{
	static const char *const roots[] = { "/sys/kernel/tracing", "/sys/kernel/debug/tracing" };
	char p[128];
	struct stat st;
	size_t i;

	for (i = 0; i < 2; i++) {
		snprintf(p, sizeof(p), "%s/events", roots[i]);
		if (stat(p, &st) == 0)
			break;
	}
	if (i == 2) {
		line(d, TRACER_CHECK_WARN, "tracefs", "not mounted (or not readable): loopspy mounts it on "
		     "/sys/kernel/tracing when it starts (needs CAP_SYS_ADMIN)");
		return;
	}
	line(d, TRACER_CHECK_OK, "tracefs", "mounted at %s", roots[i]);
	snprintf(p, sizeof(p), "%s/events/syscalls/sys_enter_epoll_wait", roots[i]);
	if (stat(p, &st) == 0)
		line(d, TRACER_CHECK_OK, "syscall tracepoints", "syscalls:sys_enter_epoll_wait exists");
	else
		line(d, TRACER_CHECK_FAIL, "syscall tracepoints", "%s: %s (needs CONFIG_FTRACE_SYSCALLS=y)", p,
		     strerror(errno));
}

static void memlock_check(struct doctor *d)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_MEMLOCK, &rl) < 0)
		return;
	if (rl.rlim_cur == RLIM_INFINITY)
		line(d, TRACER_CHECK_INFO, "RLIMIT_MEMLOCK", "unlimited");
	else
		line(d, TRACER_CHECK_INFO, "RLIMIT_MEMLOCK", "%llu KiB (BPF memory is charged to the cgroup "
		     "since Linux 5.11; libbpf raises it on older kernels)", (unsigned long long)rl.rlim_cur / 1024);
}

/* CPython processes on this machine and whether loopspy gets their stacks. */
static void targets_list(struct doctor *d)
{
	DIR *dir = opendir("/proc");
	struct dirent *e;
	int shown = 0, more = 0, denied = 0;

	if (!dir) {
		line(d, TRACER_CHECK_INFO, "CPython processes", "cannot list /proc: %s", strerror(errno));
		return;
	}
	while ((e = readdir(dir))) {
		struct pyruntime rt;
		char comm[64], path[64], what[48];
		pid_t pid;
		int r;

		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		pid = (pid_t)atoi(e->d_name);
		if (pid == getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
		sys_read(path, comm, sizeof(comm));
		r = pyruntime_find(pid, &rt);
		if (r < 0) {
			denied++;
			continue;
		}
		if (r != 0 && !rt.major)
			continue;
		if (shown >= DOCTOR_MAX_TARGETS) {
			more++;
			continue;
		}
		snprintf(what, sizeof(what), "pid %d (%.15s)", (int)pid, comm);
		if (r == 0 && pyruntime_probe(pid, &rt) == 0)
			line(d, TRACER_CHECK_INFO, what, "CPython %s: stacks, loops and syscalls", rt.version);
		else
			line(d, TRACER_CHECK_INFO, what, "CPython %s: loops and syscalls, no stacks: %s",
			     rt.version[0] ? rt.version : "?", rt.reason[0] ? rt.reason : "not initialised yet");
		shown++;
	}
	closedir(dir);
	if (!shown)
		line(d, TRACER_CHECK_INFO, "CPython processes", "none running");
	if (more)
		line(d, TRACER_CHECK_INFO, "CPython processes", "... and %d more", more);
	if (denied)
		line(d, TRACER_CHECK_INFO, "CPython processes", "%d processes could not be inspected (no permission)",
		     denied);
}

static void usage_doctor(FILE *out)
{
	fprintf(out,
		"usage: loopspy doctor\n"
		"  Checks what loopspy needs on this machine by doing it: BTF, the bpf() syscall and\n"
		"  map types, tracefs and syscall tracepoints, loading loopspy's BPF programs and\n"
		"  attaching each probe once (tp_btf sched_switch/sched_wakeup/..., the perf_event\n"
		"  sampler, uprobes), USDT semaphores, kprobe/fentry support (informational),\n"
		"  capabilities, and the CPython processes it finds.\n"
		"Exit status: 0 when everything loopspy needs works, 1 otherwise.\n");
}

int cmd_doctor(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct doctor d = { 0, 0 };
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (c == 'h') {
			usage_doctor(stdout);
			return EXIT_OK;
		}
		usage_doctor(stderr);
		return EXIT_USAGE;
	}
	if (optind < argc) {
		fprintf(stderr, "loopspy: cannot use argument '%s'\nhint: loopspy doctor\n", argv[optind]);
		return EXIT_USAGE;
	}
	printf("loopspy %s doctor\n", LOOPSPY_VERSION);
	kernel_check(&d);
	privileges_check(&d);
	btf_check(&d);
	bpf_check(&d);
	tracefs_check(&d);
	fflush(stdout);
	tracer_selftest(check_cb, &d);
	memlock_check(&d);
	targets_list(&d);
	if (d.failed) {
		printf("result: %d required check%s failed: loopspy cannot trace on this machine\n", d.failed,
		       d.failed == 1 ? "" : "s");
		fflush(stdout);
		fprintf(stderr, "loopspy: cannot trace on this machine: %d required check%s failed (FAIL lines above)\n"
			"hint: %s\n", d.failed, d.failed == 1 ? "" : "s",
			geteuid() ? "run it as root: sudo loopspy doctor" :
			"a kernel >= 5.18 with BTF, tracefs and syscall tracepoints is needed (docs/safety.md)");
		return EXIT_FAILURE_;
	}
	printf("result: loopspy works on this machine%s\n",
	       d.warned ? " (optional features missing: warn lines above)" : "");
	return EXIT_OK;
}
