/* `loopspy top`: the live dashboard. Drives a session like `record` does and
 * hands snapshots of its model to the view (tui/view.c); tui/ owns the
 * terminal. While the dashboard runs, file descriptors 1 and 2 (what a
 * started command inherits, and loopspy's own messages) go to a pipe whose
 * last line is shown in the footer and whose text is printed on exit. */
#define _GNU_SOURCE
#include "cli.h"
#include "session.h"
#include "core/outfile.h"
#include "core/report.h"
#include "core/units.h"
#include "privs.h"
#include "tui.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define REFRESH_NS 20000000ULL     /* loop statistics read from the kernel */
#define POLL_MAX_MS 20             /* key latency while tracing */
#define STATUS_NS 6000000000ULL    /* how long footer messages stay */
#define CAPTURE_MAX 16384

struct top_opts {
	struct session_opts so;
	uint64_t delay_ns;
	unsigned long iterations;  /* 0: until q */
	int color;
};

static volatile sig_atomic_t quit_signal;

/* The terminal's descriptors, saved while 0/1/2 are redirected. */
static int saved_fd[3] = { -1, -1, -1 };

static void fds_restore(void)
{
	int i;

	for (i = 0; i < 3; i++) {
		if (saved_fd[i] < 0)
			continue;
		dup2(saved_fd[i], i);
		close(saved_fd[i]);
		saved_fd[i] = -1;
	}
}

/* atexit and fatal signals: the terminal comes back whatever happened */
static void restore_all(void)
{
	tui_restore();
	fds_restore();
}

static void on_quit(int sig)
{
	quit_signal = sig;
}

static void on_fatal(int sig)
{
	restore_all();
	raise(sig);  /* SA_RESETHAND: now with the default action */
}

static void signals_install(void)
{
	static const int fatal[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT };
	struct sigaction sa;
	size_t i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_quit;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = on_fatal;
	sa.sa_flags = SA_RESETHAND | SA_NODEFER;
	for (i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
		sigaction(fatal[i], &sa, NULL);
}

/* ------------------------------------------------------------------ */
/* output capture                                                      */

struct capture {
	int rfd, stopfd;
	int started;
	pthread_t th;
	pthread_mutex_t mu;
	char buf[CAPTURE_MAX];
	size_t len, dropped;
	unsigned long seq;         /* bumped for every chunk */
	char last[200];            /* last non-empty line */
};

static void capture_add(struct capture *c, const char *p, size_t n)
{
	size_t i, end, start;

	if (n >= CAPTURE_MAX) {
		c->dropped += c->len + n - (CAPTURE_MAX - 1);
		p += n - (CAPTURE_MAX - 1);
		n = CAPTURE_MAX - 1;
		c->len = 0;
	} else if (c->len + n >= CAPTURE_MAX) {
		size_t cut = c->len + n - (CAPTURE_MAX - 1);

		memmove(c->buf, c->buf + cut, c->len - cut);
		c->len -= cut;
		c->dropped += cut;
	}
	memcpy(c->buf + c->len, p, n);
	c->len += n;
	c->buf[c->len] = '\0';
	end = c->len;
	while (end > 0 && (c->buf[end - 1] == '\n' || c->buf[end - 1] == '\r'))
		end--;
	if (!end)
		return;
	start = end;
	while (start > 0 && c->buf[start - 1] != '\n')
		start--;
	for (i = 0; start + i < end && i + 1 < sizeof(c->last); i++) {
		unsigned char ch = (unsigned char)c->buf[start + i];

		c->last[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : ch == '\t' ? ' ' : '?';
	}
	c->last[i] = '\0';
	c->seq++;
}

static int capture_read(struct capture *c)
{
	char chunk[4096];
	ssize_t n = read(c->rfd, chunk, sizeof(chunk));

	if (n > 0) {
		pthread_mutex_lock(&c->mu);
		capture_add(c, chunk, (size_t)n);
		pthread_mutex_unlock(&c->mu);
	}
	return (int)n;
}

static void *capture_main(void *arg)
{
	struct capture *c = arg;
	struct pollfd p[2] = { { c->rfd, POLLIN, 0 }, { c->stopfd, POLLIN, 0 } };

	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents && capture_read(c) == 0)
			break;  /* every writer is gone */
		if (p[1].revents) {
			while (capture_read(c) > 0)
				;
			break;
		}
	}
	return NULL;
}

/* Saves the terminal's 0/1/2 and sends 2 (and, for a started command, 1)
 * into the capture pipe; the command's stdin becomes /dev/null. */
static int capture_start(struct capture *c, int cmd)
{
	sigset_t all, old;
	int p[2] = { -1, -1 }, devnull = -1, i, err;

	memset(c, 0, sizeof(*c));
	c->rfd = c->stopfd = -1;
	pthread_mutex_init(&c->mu, NULL);
	for (i = 0; i < 3; i++) {
		saved_fd[i] = fcntl(i, F_DUPFD_CLOEXEC, 3);
		if (saved_fd[i] < 0)
			goto fail;
	}
	c->stopfd = eventfd(0, EFD_CLOEXEC);
	if (c->stopfd < 0 || pipe2(p, O_CLOEXEC) < 0)
		goto fail;
	c->rfd = p[0];
	fcntl(c->rfd, F_SETFL, O_NONBLOCK);
	if (cmd) {
		devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(p[1], 1) < 0)
			goto fail;
		close(devnull);
		devnull = -1;
	}
	if (dup2(p[1], 2) < 0)
		goto fail;
	close(p[1]);
	p[1] = -1;
	/* signals are for the main thread */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&c->th, NULL, capture_main, c);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		errno = err;
		goto fail;
	}
	c->started = 1;
	return 0;
fail:
	err = errno;
	if (devnull >= 0)
		close(devnull);
	if (p[1] >= 0)
		close(p[1]);
	fds_restore();
	errno = err;
	return -1;
}

/* A new last line since *seen, copied into line. */
static int capture_poll(struct capture *c, unsigned long *seen, char *line, size_t n)
{
	int fresh = 0;

	if (!c->started)
		return 0;
	pthread_mutex_lock(&c->mu);
	if (c->seq != *seen) {
		*seen = c->seq;
		snprintf(line, n, "%s", c->last);
		fresh = line[0] != '\0';
	}
	pthread_mutex_unlock(&c->mu);
	return fresh;
}

/* After fds_restore: stops the reader and prints what it caught. */
static void capture_finish(struct capture *c)
{
	uint64_t one = 1;

	if (c->started) {
		if (write(c->stopfd, &one, sizeof(one)) != sizeof(one))
			fprintf(stderr, "loopspy: cannot stop the output reader: %s\n", strerror(errno));
		else
			pthread_join(c->th, NULL);
		c->started = 0;
		if (c->dropped)
			fprintf(stderr, "loopspy: (%zu earlier bytes of output dropped)\n", c->dropped);
		if (c->len)
			fwrite(c->buf, 1, c->len, stderr);
		if (c->len && c->buf[c->len - 1] != '\n')
			fputc('\n', stderr);
	}
	if (c->rfd >= 0)
		close(c->rfd);
	if (c->stopfd >= 0)
		close(c->stopfd);
	c->rfd = c->stopfd = -1;
	pthread_mutex_destroy(&c->mu);
}

/* ------------------------------------------------------------------ */
/* the dashboard                                                       */

static void target_fill(struct session *s, struct view_target *t, int exited)
{
	struct report_meta meta;

	session_meta(s, &meta, "snapshot");
	memset(t, 0, sizeof(*t));
	t->pid = meta.pid;
	snprintf(t->command, sizeof(t->command), "%s", meta.command ? meta.command : "");
	snprintf(t->runtime, sizeof(t->runtime), "%s", session_runtime_desc(s));
	t->uptime_ns = meta.duration_ns;
	t->events = meta.events;
	t->dropped = meta.dropped_events;
	t->exited = exited;
	t->exit_status = session_exit_status(s);
}

/* `w`: the JSON report of what was recorded so far, in the current directory. */
static void snapshot_write(struct session *s, struct view_state *st, uint64_t now)
{
	char name[96], stamp[32], cwd[PATH_MAX];
	struct report_meta meta;
	struct outfile of = { NULL, NULL, -1, 0 };
	time_t wall = time(NULL);
	char *json = NULL;
	struct tm tm;
	int i, r = -1;

	localtime_r(&wall, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
	session_meta(s, &meta, "snapshot");
	json = report_json_render(session_model(s), &meta);
	if (!json) {
		view_status(st, VS_ERROR, now + STATUS_NS, "cannot render report: out of memory");
		return;
	}
	for (i = 1; i < 100; i++) {
		if (i == 1)
			snprintf(name, sizeof(name), "loopspy-%d-%s.json", (int)session_pid(s), stamp);
		else
			snprintf(name, sizeof(name), "loopspy-%d-%s-%d.json", (int)session_pid(s), stamp, i);
		/* never through a symlink, never over an existing file, never
		 * a partial file */
		r = outfile_open(&of, name, OUTFILE_NOREPLACE);
		if (r == 0 && (r = outfile_write(&of, json, strlen(json))) == 0 &&
		    (r = outfile_write(&of, "\n", 1)) == 0)
			r = outfile_commit(&of);
		outfile_discard(&of);
		if (r == 0 || errno != EEXIST)
			break;
	}
	if (r < 0)
		view_status(st, VS_ERROR, now + STATUS_NS, "cannot write report %s: %s (hint: start top in a writable directory)",
			    name, strerror(errno));
	else if (getcwd(cwd, sizeof(cwd)))
		view_status(st, VS_STATUS, now + STATUS_NS, "wrote %s/%s", cwd, name);
	else
		view_status(st, VS_STATUS, now + STATUS_NS, "wrote %s", name);
	free(json);
}

struct dash {
	struct session *s;
	struct tui *t;
	struct view_state st;
	struct view_snap snap;
	struct view_history hist;
	struct view_screen scr;
	struct view_target tgt;
	int exited;
};

static void snap_refresh(struct dash *d)
{
	target_fill(d->s, &d->tgt, d->exited);
	if (view_snap_take(&d->snap, &d->hist, session_model(d->s), &d->tgt, session_now_ns()) < 0)
		view_status(&d->st, VS_ERROR, session_now_ns() + STATUS_NS, "cannot update the display: out of memory");
}

/* 1 when the key quits. */
static int key_handle(struct dash *d, int key)
{
	uint64_t now = session_now_ns();
	enum view_action a;

	if (d->st.editing) {
		int ch = tui_key_text(key);

		if (ch >= 0)
			view_input(&d->st, ch);
		return 0;
	}
	a = tui_key_action(key);
	switch (view_apply(&d->st, a, &d->snap)) {
	case VE_QUIT:
		return 1;
	case VE_RESET:
		model_reset(session_model(d->s));
		view_history_reset(&d->hist);
		snap_refresh(d);
		view_status(&d->st, VS_STATUS, now + STATUS_NS, "reset: findings and loop history start again now");
		break;
	case VE_WRITE:
		snapshot_write(d->s, &d->st, now);
		break;
	default:
		break;
	}
	if (a == VA_PAUSE)
		view_status(&d->st, d->st.paused ? VS_WARN : VS_STATUS, now + STATUS_NS, "%s",
			    d->st.paused ? "PAUSED: the display is frozen, tracing goes on (p resumes)" : "resumed");
	if (d->st.page == VIEW_DETAIL)
		view_snap_dist(&d->snap, session_model(d->s), &d->st);
	return 0;
}

static void dash_draw(struct dash *d)
{
	int rows, cols;

	tui_size(d->t, &rows, &cols);
	if (view_screen_resize(&d->scr, rows, cols) < 0)
		return;
	view_render(&d->st, &d->snap, &d->scr, session_now_ns());
	tui_draw(d->t, &d->scr);
}

/* Iteration start of the oldest loop iteration that has just become a
 * stall (age >= threshold), 0 when none: a new one is drawn at once
 * instead of at the next --delay tick. */
static uint64_t stall_running(struct dash *d)
{
	const struct model *m = session_model(d->s);
	uint64_t now = session_now_ns(), stall_ns = model_cfg(m)->stall_ns, found = 0;
	size_t i;

	for (i = 0; i < model_nloops(m); i++) {
		const struct loop_info *l = model_loop_at(m, i);

		if (l->iter_start && now > l->iter_start && now - l->iter_start >= stall_ns &&
		    (!found || l->iter_start < found))
			found = l->iter_start;
	}
	return found;
}

static void dash_run(struct dash *d, const struct top_opts *o, struct capture *cap)
{
	uint64_t shown_stall = 0;
	uint64_t next = 0, frames = 0;
	unsigned long seen = 0;
	int dirty = 1, from_output = 0;
	char line[200];

	for (;;) {
		uint64_t now = session_now_ns();
		int key, wait = next > now ? (int)((next - now + 999999) / 1000000) : 0;

		if (quit_signal)
			break;
		if (!d->exited) {
			if (session_poll(d->s, wait < POLL_MAX_MS ? wait : POLL_MAX_MS, REFRESH_NS) ==
			    SESSION_TARGET_EXITED) {
				session_finish(d->s);
				d->exited = 1;
				snap_refresh(d);
				view_status(&d->st, VS_ERROR, 0, "target exited: the data shown is final; q quits");
				from_output = 0;
				dirty = 1;
			}
			key = tui_key(d->t, 0);
		} else {
			key = tui_key(d->t, wait < 200 ? wait : 200);
		}
		for (; key != TUI_NO_KEY; key = tui_key(d->t, 0)) {
			if (key_handle(d, key))
				return;
			from_output = 0;
			dirty = 1;
		}
		if (capture_poll(cap, &seen, line, sizeof(line)) && (!d->st.status[0] || from_output)) {
			view_status(&d->st, VS_WARN, session_now_ns() + STATUS_NS, "output: %s", line);
			from_output = 1;
			dirty = 1;
		}
		now = session_now_ns();
		if (!d->exited && !d->st.paused) {
			uint64_t st = stall_running(d);

			if (st && st != shown_stall)
				next = now; /* a stall began: show it now */
			shown_stall = st;
		}
		if (now >= next) {
			if (!d->st.paused && !d->exited)
				snap_refresh(d);
			if (d->st.page == VIEW_DETAIL)
				view_snap_dist(&d->snap, session_model(d->s), &d->st);
			frames++;
			next = now + o->delay_ns;
			dirty = 1;
		}
		if (dirty) {
			dash_draw(d);
			dirty = 0;
		}
		if (o->iterations && frames >= o->iterations)
			return;
	}
}

/* ------------------------------------------------------------------ */
/* command line                                                        */

static void usage_top(FILE *out)
{
	fprintf(out,
		"usage: loopspy top -p PID [options]\n"
		"       loopspy top [options] -- CMD [ARGS...]\n"
		"  -p, --pid PID              process to attach to\n"
		"  -d, --delay MS             time between updates (default 250ms; accepts 1s)\n"
		"  -n, --iterations N         exit after N updates\n"
		"      --stall-threshold MS   default 100ms\n"
		"      --block-threshold MS   default 1ms\n"
		"      --sample-hz HZ         default 499, 0 disables CPU sampling\n"
		"      --no-stacks            do not walk Python stacks\n"
		"      --no-color             monochrome (also when NO_COLOR is set)\n"
		"  -v, --verbose              libbpf debug output (printed when top exits)\n"
		"keys: arrows/j k, Enter detail, Esc back, s sort, / filter, p pause, r reset,\n"
		"      w write a JSON snapshot, ? help, q quit (docs/top.md)\n");
}

static int opts_parse(int argc, char **argv, struct top_opts *o)
{
	static const struct option longopts[] = {
		{ "pid", required_argument, NULL, SESSION_OPT_PID },
		{ "delay", required_argument, NULL, 'd' },
		{ "iterations", required_argument, NULL, 'n' },
		{ "stall-threshold", required_argument, NULL, SESSION_OPT_STALL },
		{ "block-threshold", required_argument, NULL, SESSION_OPT_BLOCK },
		{ "sample-hz", required_argument, NULL, SESSION_OPT_SAMPLE_HZ },
		{ "no-stacks", no_argument, NULL, SESSION_OPT_NO_STACKS },
		{ "no-color", no_argument, NULL, 5 },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *nc = getenv("NO_COLOR");
	int c;

	memset(o, 0, sizeof(*o));
	o->so.stall_ns = 100000000ULL;
	o->so.block_ns = 1000000ULL;
	o->so.sample_hz = 499;
	o->so.stacks = 1;
	o->so.quiet = 1;  /* progress messages would scribble over the screen */
	o->delay_ns = 250000000ULL;
	o->color = !(nc && *nc);
	optind = 1;
	while ((c = getopt_long(argc, argv, "+p:d:n:vh", longopts, NULL)) != -1) {
		char *end;
		long v;
		int shared = session_opt_parse(&o->so, c, optarg);

		if (shared < 0)
			return -1;
		if (shared)
			continue;
		switch (c) {
		case 'd':
			if (duration_parse(optarg, 1000000ULL, &o->delay_ns) || o->delay_ns < 10000000ULL ||
			    o->delay_ns > 3600000000000ULL) {
				fprintf(stderr, "loopspy: cannot use delay '%s': expected 10ms..1h (e.g. 250, 250ms, 1s)\n", optarg);
				return -1;
			}
			break;
		case 'n':
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || *end || v <= 0) {
				fprintf(stderr, "loopspy: cannot use iterations '%s': expected a positive number\n", optarg);
				return -1;
			}
			o->iterations = (unsigned long)v;
			break;
		case 5:
			o->color = 0;
			break;
		case 'v':
			o->so.verbose = 1;
			break;
		case 'h':
			usage_top(stdout);
			exit(EXIT_OK);
		default:
			usage_top(stderr);
			return -1;
		}
	}
	if (optind < argc)
		o->so.cmd = argv + optind;
	if (o->so.cmd && o->so.pid) {
		fprintf(stderr, "loopspy: cannot use both -p and a command\nhint: loopspy top -p PID, or loopspy top -- python3 app.py\n");
		return -1;
	}
	if (!o->so.cmd && !o->so.pid) {
		fprintf(stderr, "loopspy: cannot start top: no pid or command given\nhint: loopspy top -p PID, or loopspy top -- python3 app.py\n");
		return -1;
	}
	return 0;
}

int cmd_top(int argc, char **argv)
{
	static int atexit_done;
	struct top_opts o;
	struct capture cap;
	struct dash *d = NULL;
	char err[256], fatal[512] = "";
	int ret = EXIT_FAILURE_;

	if (opts_parse(argc, argv, &o) < 0)
		return EXIT_USAGE;
	if (!isatty(STDOUT_FILENO) || !isatty(STDIN_FILENO)) {
		fprintf(stderr, "loopspy: cannot start top: %s is not a terminal\n"
			"hint: to record without a terminal, use `loopspy record -p PID -o report.json` "
			"(or `loopspy run -o report.json -- CMD`)\n",
			isatty(STDOUT_FILENO) ? "standard input" : "standard output");
		return EXIT_USAGE;
	}
	if (privs_check(o.so.cmd ? "trace a command" : "attach to a process",
			PRIVS_NEED_BPF | (!o.so.cmd && o.so.stacks && privs_ptrace_needed(o.so.pid) ?
					  PRIVS_NEED_PTRACE : 0)) < 0)
		return EXIT_FAILURE_;
	if (tui_probe(STDOUT_FILENO, err, sizeof(err)) < 0) {
		fprintf(stderr, "loopspy: cannot start top: %s\n"
			"hint: set TERM (e.g. TERM=xterm-256color), or record with `loopspy record -p PID -o report.json`\n", err);
		return EXIT_USAGE;
	}
	signals_install();
	if (!atexit_done++)
		atexit(restore_all);
	if (capture_start(&cap, o.so.cmd != NULL) < 0) {
		fprintf(stderr, "loopspy: cannot redirect output: %s\n", strerror(errno));
		capture_finish(&cap);
		return EXIT_FAILURE_;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		snprintf(fatal, sizeof(fatal), "loopspy: cannot start top: out of memory\n");
		goto cleanup;
	}
	view_snap_init(&d->snap);
	view_history_init(&d->hist);
	d->s = session_open(&o.so, &ret);
	if (!d->s)
		goto cleanup;  /* its message is in the capture, printed below */
	d->t = tui_open(saved_fd[0], saved_fd[1], o.color, err, sizeof(err));
	if (!d->t) {
		snprintf(fatal, sizeof(fatal), "loopspy: cannot start top: %s\nhint: use `loopspy record` without a terminal\n", err);
		ret = EXIT_FAILURE_;
		goto cleanup;
	}
	view_state_init(&d->st, !tui_utf8(d->t));
	snap_refresh(d);
	dash_run(d, &o, &cap);
	ret = EXIT_OK;
cleanup:
	if (d) {
		tui_close(d->t);
		session_close(d->s);
		view_screen_free(&d->scr);
		view_snap_free(&d->snap);
		view_history_free(&d->hist);
		free(d);
	}
	fds_restore();
	capture_finish(&cap);
	if (fatal[0])
		fputs(fatal, stderr);
	return ret;
}
