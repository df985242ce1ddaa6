/* `loopspy record` and `loopspy run`: one tracing session, a summary on
 * stdout and the JSON report. */
#define _GNU_SOURCE
#include "cli.h"
#include "core/model.h"
#include "core/pysym.h"
#include "core/report.h"
#include "core/syscalls.h"
#include "core/units.h"
#include "../probes/procmem.h"
#include "../probes/pyruntime.h"
#include "../probes/tracer.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct opts {
	pid_t pid;
	uint64_t duration_ns;     /* 0: until stopped */
	const char *output;
	uint64_t stall_ns, block_ns;
	int sample_hz;
	int stacks;
	int quiet, verbose;
	char **cmd;               /* run */
};

struct session {
	struct opts o;
	struct tracer *t;
	struct model *m;
	struct pyruntime rt;
	int rt_state;             /* 0 looking, 1 ready, -1 given up */
	struct pysym *sym;
	pid_t pid;
	int pidfd;
	int out_fd;
	char comm[64];
	char command[512];
	char started_at[32];
	uint64_t t0;
	uint64_t events;
	struct mstack scratch;
	char fdbuf[32];
};

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

static uint64_t mono_ns(void)
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

static void thread_name_get(pid_t pid, uint32_t tid, char *buf, size_t n)
{
	char path[64];

	/* CPython does not name its OS threads; its main thread is "MainThread" */
	if ((pid_t)tid == pid) {
		snprintf(buf, n, "MainThread");
		return;
	}
	snprintf(path, sizeof(path), "/proc/%d/task/%u/comm", (int)pid, tid);
	read_small(path, buf, n, 0);
	if (!buf[0])
		snprintf(buf, n, "tid-%u", tid);
}

static const char *fd_kind_get(struct session *s, int fd)
{
	char path[64];
	ssize_t n;

	if (fd < 0)
		return NULL;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)s->pid, fd);
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

/* Turn raw frames into interned function/file/line, dropping entries that
 * are not code objects (3.13 None executables, 3.12 C-stack shims). */
static const struct mstack *stack_resolve(struct session *s, const struct ls_stack *st)
{
	struct mstack *out = &s->scratch;
	uint32_t i, n = st->nframes < LS_MAX_FRAMES ? st->nframes : LS_MAX_FRAMES;

	out->n = 0;
	out->status = (int)st->status;
	if (!s->sym)
		return out;
	for (i = 0; i < n; i++) {
		struct pysym_frame f;

		if (pysym_resolve(s->sym, st->frames[i].code, st->frames[i].pos,
				  st->frames[i].firstlineno, &f) < 0)
			continue;
		if (!strcmp(f.function, "<shim>") || !strcmp(f.function, "<interpreter trampoline>"))
			continue;
		out->f[out->n].function = model_intern(s->m, f.function);
		out->f[out->n].file = model_intern(s->m, f.file);
		out->f[out->n].line = f.line;
		out->n++;
	}
	return out;
}

static void loop_announce(struct session *s, uint32_t tid, int epfd)
{
	struct loop_info *l;

	model_loop_confirm(s->m, tid);
	l = model_loop(s->m, tid, 0);
	if (!l || l->name[0])
		return;
	thread_name_get(s->pid, tid, l->name, sizeof(l->name));
	l->epfd = epfd;
	if (!s->o.quiet)
		fprintf(stderr, "loopspy: event loop found: tid %u \"%s\" (epoll fd %d)\n", tid, l->name, epfd);
}

static void on_event(void *ctx, const void *data, size_t size)
{
	struct session *s = ctx;
	const struct ls_event_hdr *h = data;

	s->events++;
	switch (h->type) {
	case LS_EV_LOOP:
		if (size >= sizeof(struct ls_ev_loop))
			loop_announce(s, h->tid, ((const struct ls_ev_loop *)data)->epfd);
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
			if (e->blocked_ns >= s->o.block_ns && syscall_takes_fd(e->nr))
				ms.fd_kind = fd_kind_get(s, (int)e->args[0]);
			ms.stack = stack_resolve(s, &e->stack);
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
			sm.stack = stack_resolve(s, &e->stack);
			model_add_sample(s->m, &sm);
		}
		break;
	case LS_EV_STALL:
		if (size >= sizeof(struct ls_ev_stall)) {
			const struct ls_ev_stall *e = data;

			model_add_stall(s->m, h->tid, e->start, e->end, e->blocked_ns, e->runnable_ns);
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

/* Finds and validates the Python runtime; cheap enough to retry while a
 * freshly started command initialises. */
static void runtime_step(struct session *s, int final)
{
	struct ls_target_cfg cfg;
	int r;

	if (s->rt_state != 0)
		return;
	if (!s->rt.found) {
		r = pyruntime_find(s->pid, &s->rt);
		if (r != 0) {
			if (final || !s->o.cmd)
				s->rt_state = -1;
			return;
		}
	}
	r = pyruntime_probe(s->pid, &s->rt);
	if (r == 1 && !final)
		return;
	if (r != 0) {
		if (!s->rt.reason[0])
			snprintf(s->rt.reason, sizeof(s->rt.reason), "CPython %s did not finish initialising",
				 s->rt.version);
		s->rt_state = -1;
		return;
	}
	s->sym = pysym_new(s->rt.layout, procmem_read, procmem_ctx(s->pid), s->rt.code_type_addr);
	if (!s->sym) {
		snprintf(s->rt.reason, sizeof(s->rt.reason), "out of memory");
		s->rt_state = -1;
		return;
	}
	model_set_gil(s->m, s->rt.gil_addr, s->rt.gil_addr ? (uint64_t)s->rt.layout->gil_size : 0);
	target_cfg_fill(&s->rt, &cfg);
	if (tracer_target_add(s->t, s->pid, &cfg) < 0) {
		snprintf(s->rt.reason, sizeof(s->rt.reason), "cannot update the BPF target map");
		s->rt_state = -1;
		return;
	}
	s->rt_state = 1;
}

static void loops_cb(void *ctx, uint32_t tid, const struct ls_loop_stats *st)
{
	struct session *s = ctx;

	loop_announce(s, tid, st->epfd);
	model_loop_update(s->m, tid, st);
}

static int output_open(const char *path)
{
	/* opened before attaching so an unwritable path fails early; never
	 * through a symlink (root writing into shared directories) */
	int fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);

	if (fd < 0)
		fprintf(stderr, "loopspy: cannot open output %s: %s\nhint: check the directory exists and is writable\n",
			path, strerror(errno));
	return fd;
}

static int report_write(struct session *s, const struct report_meta *meta)
{
	char *json = report_json_render(s->m, meta);
	size_t len, off = 0;
	int ret = -1;

	if (!json) {
		fprintf(stderr, "loopspy: cannot render report: out of memory\n");
		return -1;
	}
	len = strlen(json);
	if (ftruncate(s->out_fd, 0) < 0)
		goto cleanup;
	while (off < len) {
		ssize_t n = write(s->out_fd, json + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto cleanup;
		off += (size_t)n;
	}
	if (write(s->out_fd, "\n", 1) != 1)
		goto cleanup;
	ret = 0;
cleanup:
	if (ret < 0)
		fprintf(stderr, "loopspy: cannot write report %s: %s\n", s->o.output, strerror(errno));
	free(json);
	return ret;
}

static void usage_record(FILE *out, int run)
{
	if (run)
		fprintf(out, "usage: loopspy run [options] -- CMD [ARGS...]\n");
	else
		fprintf(out, "usage: loopspy record -p PID [options]\n");
	fprintf(out,
		"  -p, --pid PID              process to attach to (record)\n"
		"  -d, --duration SECONDS     stop after this long (accepts 500ms, 2m)\n"
		"  -o, --output FILE          JSON report\n"
		"      --stall-threshold MS   default 100ms\n"
		"      --block-threshold MS   default 1ms\n"
		"      --sample-hz HZ         default 499, 0 disables CPU sampling\n"
		"      --no-stacks            do not walk Python stacks\n"
		"  -q, --quiet                no summary\n"
		"  -v, --verbose              libbpf debug output\n");
}

static int opts_parse(int argc, char **argv, int run, struct opts *o)
{
	static const struct option longopts[] = {
		{ "pid", required_argument, NULL, 'p' },
		{ "duration", required_argument, NULL, 'd' },
		{ "output", required_argument, NULL, 'o' },
		{ "stall-threshold", required_argument, NULL, 1 },
		{ "block-threshold", required_argument, NULL, 2 },
		{ "sample-hz", required_argument, NULL, 3 },
		{ "no-stacks", no_argument, NULL, 4 },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->stall_ns = 100000000ULL;
	o->block_ns = 1000000ULL;
	o->sample_hz = 499;
	o->stacks = 1;
	optind = 1;
	/* '+': stop at the first non-option so `run -- python3 -v` works */
	while ((c = getopt_long(argc, argv, "+p:d:o:qvh", longopts, NULL)) != -1) {
		char *end;
		long v;

		switch (c) {
		case 'p':
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || *end || v <= 0 || v > 0x3fffffff) {
				fprintf(stderr, "loopspy: cannot use pid '%s': not a process id\n", optarg);
				return -1;
			}
			o->pid = (pid_t)v;
			break;
		case 'd':
			if (duration_parse(optarg, 1000000000ULL, &o->duration_ns) || !o->duration_ns) {
				fprintf(stderr, "loopspy: cannot use duration '%s': expected a positive number of seconds (e.g. 10, 500ms)\n", optarg);
				return -1;
			}
			break;
		case 'o':
			o->output = optarg;
			break;
		case 1:
		case 2: {
			uint64_t *dst = c == 1 ? &o->stall_ns : &o->block_ns;

			if (duration_parse(optarg, 1000000ULL, dst) || !*dst) {
				fprintf(stderr, "loopspy: cannot use threshold '%s': expected a positive duration in ms (e.g. 100, 100ms, 0.5s)\n", optarg);
				return -1;
			}
			break;
		}
		case 3:
			v = strtol(optarg, &end, 10);
			if (*end || v < 0 || v > 10000) {
				fprintf(stderr, "loopspy: cannot use sample rate '%s': expected 0..10000\n", optarg);
				return -1;
			}
			o->sample_hz = (int)v;
			break;
		case 4:
			o->stacks = 0;
			break;
		case 'q':
			o->quiet = 1;
			break;
		case 'v':
			o->verbose = 1;
			break;
		case 'h':
			usage_record(stdout, run);
			exit(EXIT_OK);
		default:
			usage_record(stderr, run);
			return -1;
		}
	}
	if (run) {
		if (optind >= argc) {
			fprintf(stderr, "loopspy: cannot run: no command given\nhint: loopspy run -o report.json -- python3 app.py\n");
			return -1;
		}
		o->cmd = argv + optind;
	} else {
		if (optind < argc) {
			fprintf(stderr, "loopspy: cannot use argument '%s'\n", argv[optind]);
			return -1;
		}
		if (!o->pid) {
			fprintf(stderr, "loopspy: cannot record: no pid given\nhint: loopspy record -p PID\n");
			return -1;
		}
	}
	return 0;
}

static int target_check(pid_t pid)
{
	char path[64], buf[64];

	if (kill(pid, 0) < 0 && errno == ESRCH) {
		fprintf(stderr, "loopspy: cannot attach to %d: no such process\n", (int)pid);
		return -1;
	}
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	read_small(path, buf, sizeof(buf), 1);
	if (!buf[0]) {
		fprintf(stderr, "loopspy: cannot attach to %d: it is a kernel thread or already exited\n", (int)pid);
		return -1;
	}
	return 0;
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

static int session_main(int argc, char **argv, int run)
{
	struct session *s = calloc(1, sizeof(*s));
	struct tracer_opts to;
	struct model_config mc;
	struct report_meta meta;
	struct sigaction sa;
	struct ls_target_cfg cfg;
	int ret = EXIT_FAILURE_, gate[2] = { -1, -1 }, child_status = -1, child_done = 0;
	const char *end_reason = "duration";
	uint64_t deadline = 0, last_loops = 0;
	time_t now_wall;
	struct tm tm;

	if (!s)
		return EXIT_FAILURE_;
	s->pidfd = -1;
	s->out_fd = -1;
	if (opts_parse(argc, argv, run, &s->o) < 0) {
		ret = EXIT_USAGE;
		goto cleanup;
	}
	if (s->o.output) {
		s->out_fd = output_open(s->o.output);
		if (s->out_fd < 0) {
			ret = EXIT_OUTPUT;
			goto cleanup;
		}
	}
	if (!run) {
		s->pid = s->o.pid;
		if (target_check(s->pid) < 0) {
			ret = EXIT_TARGET;
			goto cleanup;
		}
	}
	memset(&mc, 0, sizeof(mc));
	mc.stall_ns = s->o.stall_ns;
	mc.block_ns = s->o.block_ns;
	s->m = model_new(&mc);
	if (!s->m)
		goto cleanup;
	memset(&to, 0, sizeof(to));
	to.stall_ns = s->o.stall_ns;
	to.sample_after_ns = s->o.stall_ns / 10;
	to.min_sleep_ns = 10000;
	to.sample_hz = s->o.sample_hz;
	to.walk_stacks = s->o.stacks;
	to.verbose = s->o.verbose;
	s->t = tracer_open(&to, on_event, s);
	if (!s->t)
		goto cleanup;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	memset(&cfg, 0, sizeof(cfg));
	if (run) {
		if (pipe2(gate, O_CLOEXEC) < 0)
			goto cleanup;
		s->pid = fork();
		if (s->pid < 0) {
			fprintf(stderr, "loopspy: cannot fork: %s\n", strerror(errno));
			goto cleanup;
		}
		if (s->pid == 0) {
			close(gate[1]);
			signal(SIGINT, SIG_DFL);
			signal(SIGTERM, SIG_DFL);
			signal(SIGHUP, SIG_DFL);
			child_exec(gate[0], s->o.cmd);
		}
		close(gate[0]);
		gate[0] = -1;
	}
	if (tracer_target_add(s->t, s->pid, &cfg) < 0) {
		fprintf(stderr, "loopspy: cannot add target %d to the BPF map\n", (int)s->pid);
		goto cleanup;
	}
	s->t0 = mono_ns();
	now_wall = time(NULL);
	gmtime_r(&now_wall, &tm);
	strftime(s->started_at, sizeof(s->started_at), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (run) {
		size_t off = 0;
		int i;

		for (i = 0; s->o.cmd[i] && off < sizeof(s->command) - 1; i++)
			off += (size_t)snprintf(s->command + off, sizeof(s->command) - off, "%s%s",
						i ? " " : "", s->o.cmd[i]);
		/* released only now: traced from its first instruction */
		if (write(gate[1], "x", 1) != 1)
			goto cleanup;
		close(gate[1]);
		gate[1] = -1;
	} else {
		char path[64];

		snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)s->pid);
		read_small(path, s->command, sizeof(s->command), 1);
		s->pidfd = (int)syscall(SYS_pidfd_open, s->pid, 0);
		runtime_step(s, 0);
		snprintf(path, sizeof(path), "/proc/%d/comm", (int)s->pid);
		read_small(path, s->comm, sizeof(s->comm), 0);
		if (!s->o.quiet) {
			if (s->rt.found)
				fprintf(stderr, "loopspy: attached to %d (%s, CPython %s)%s%s\n", (int)s->pid, s->comm,
					s->rt.version, s->rt_state == 1 ? "" : ", no Python stacks: ",
					s->rt_state == 1 ? "" : s->rt.reason);
			else
				fprintf(stderr, "loopspy: attached to %d (%s), not CPython: loops and syscalls only\n",
					(int)s->pid, s->comm);
		}
	}
	if (s->o.duration_ns)
		deadline = s->t0 + s->o.duration_ns;

	for (;;) {
		uint64_t now;
		/* while a started command initialises, look for its runtime often */
		int err = tracer_poll(s->t, run && s->rt_state == 0 ? 5 : 50);

		if (err < 0 && err != -EINTR) {
			fprintf(stderr, "loopspy: cannot poll events: %s\n", strerror(-err));
			break;
		}
		now = mono_ns();
		if (run) {
			int st;
			pid_t w = waitpid(s->pid, &st, WNOHANG);

			if (w == s->pid) {
				child_done = 1;
				child_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
				end_reason = "target_exit";
				break;
			}
			if (stop_signal == SIGTERM || stop_signal == SIGHUP) {
				/* pass it on, keep tracing until the command is gone */
				kill(s->pid, stop_signal);
				stop_signal = 0;
			}
		} else if (stop_signal) {
			end_reason = "signal";
			break;
		}
		if (!run && s->pidfd >= 0) {
			struct pollfd p = { s->pidfd, POLLIN, 0 };

			if (poll(&p, 1, 0) > 0) {
				end_reason = "target_exit";
				break;
			}
		} else if (!run && kill(s->pid, 0) < 0 && errno == ESRCH) {
			end_reason = "target_exit";
			break;
		}
		if (deadline && now >= deadline) {
			end_reason = "duration";
			if (run) {
				kill(s->pid, SIGTERM);
				deadline = 0;
				continue;
			}
			break;
		}
		runtime_step(s, 0);
		if (now - last_loops > 500000000ULL) {
			tracer_loops_read(s->t, s->pid, loops_cb, s);
			last_loops = now;
		}
	}
	/* drain what is already in the ring buffer */
	while (tracer_poll(s->t, 0) > 0)
		;
	tracer_loops_read(s->t, s->pid, loops_cb, s);
	if (!child_done)
		runtime_step(s, 1);
	memset(&meta, 0, sizeof(meta));
	meta.pid = (int)s->pid;
	meta.command = s->command;
	meta.runtime_name = s->rt.found ? "cpython" : "unknown";
	meta.runtime_version = s->rt.found ? s->rt.version : NULL;
	meta.runtime_path = s->rt.found ? s->rt.path : NULL;
	meta.stacks = s->rt_state == 1 && s->o.stacks;
	meta.stacks_reason = !s->o.stacks ? "disabled with --no-stacks" :
			     s->rt.reason[0] ? s->rt.reason : "CPython runtime not found";
	meta.started_at = s->started_at;
	meta.duration_ns = mono_ns() - s->t0;
	meta.dropped_events = tracer_counter(s->t, LS_CNT_DROPPED);
	meta.events = s->events;
	meta.end_reason = end_reason;
	meta.exit_status = child_status;
	meta.version = LOOPSPY_VERSION;
	ret = EXIT_OK;
	if (s->out_fd >= 0 && report_write(s, &meta) < 0)
		ret = EXIT_OUTPUT;
	if (!s->o.quiet)
		report_summary_write(stdout, s->m, &meta);
	if (meta.dropped_events)
		fprintf(stderr, "loopspy: %llu events were dropped (ring buffer full): the report undercounts\n",
			(unsigned long long)meta.dropped_events);
	if (run && ret == EXIT_OK)
		ret = child_status;
cleanup:
	if (run && s->pid > 0 && !child_done) {
		int st;

		kill(s->pid, SIGTERM);
		waitpid(s->pid, &st, 0);
	}
	if (gate[0] >= 0)
		close(gate[0]);
	if (gate[1] >= 0)
		close(gate[1]);
	if (s->pidfd >= 0)
		close(s->pidfd);
	if (s->out_fd >= 0)
		close(s->out_fd);
	tracer_close(s->t);
	pysym_free(s->sym);
	model_free(s->m);
	free(s);
	return ret;
}

int cmd_record(int argc, char **argv)
{
	return session_main(argc, argv, 0);
}

int cmd_run(int argc, char **argv)
{
	return session_main(argc, argv, 1);
}
