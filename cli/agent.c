/* `loopspy agent`: every matching asyncio process on the host, exported to
 * Prometheus (docs/fleet.md).
 *
 * One tracer is shared by all targets; its ring-buffer records are routed
 * by tgid to each target's session. The main thread owns the tracer, the
 * sessions and their models: it polls, scans /proc for targets coming and
 * going, and re-renders the exposition (core/prom.c) into a buffer it
 * publishes under a mutex. libmicrohttpd's thread only copies that buffer. */
#define _GNU_SOURCE
#include "cli.h"
#include "privs.h"
#include "session.h"
#include "core/prom.h"
#include "core/units.h"
#include "../probes/tracer.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <regex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define POLL_MS 100
#define REFRESH_NS 1000000000ULL   /* loop and lock statistics from the kernel */
#define RENDER_NS 500000000ULL     /* exposition re-rendered */
#define MIN_AGE_NS 1000000000ULL   /* a younger process may be about to exec */
#define HEALTH_STALE_NS 30000000000ULL
#define PF_KTHREAD_ 0x00200000UL
#define LOG_CMD_MAX 100

struct agent_opts {
	struct session_opts so;
	const char *listen;
	struct sockaddr_storage listen_addr;
	socklen_t listen_len;
	int listen_v6;
	const char *match;          /* regex source, NULL: any CPython process */
	regex_t match_re;
	int match_set;
	const char *match_cgroup;
	pid_t *exclude;
	size_t nexclude;
	int max_targets;
	int top_n;
	uint64_t grace_ns;
	uint64_t scan_ns;
	int once;
	uint64_t duration_ns;
};

/* What /proc says about one process. */
struct proc_facts {
	pid_t pid, ppid;
	char state;
	unsigned long flags;
	unsigned long long start;   /* clock ticks after boot */
	unsigned long long startcode, startstack;
	char comm[64];
	char exe[512];
	char cmdline[4096];
};

struct target {
	pid_t pid;
	unsigned long long start;
	uint64_t exec_ident;        /* changes when the process execs */
	char name[LOG_CMD_MAX + 96]; /* "1234 (python3: /usr/bin/python3 app.py)" for logs */
	struct session *s;          /* NULL once detached */
	struct prom_target *pt;
	uint64_t detached_ns;
};

/* Processes decided on once (per pid, start time and identity). */
enum seen_state {
	SEEN_NOMATCH = 0,
	SEEN_FAILED = 1,
	SEEN_CAPPED = 2,            /* still a candidate; the cap was logged */
};

struct seen {
	pid_t pid;
	unsigned long long start;
	uint64_t ident;
	enum seen_state state;
};

struct agent {
	struct agent_opts o;
	struct tracer *t;
	struct target *targets;
	size_t ntargets, captargets;
	struct seen *seen;
	size_t nseen;
	pid_t self;
	long ticks;
	uint64_t attaches, attach_failures, detaches;
	struct prom_buf work;       /* main thread only */
	/* published exposition, shared with the HTTP thread */
	pthread_mutex_t mu;
	int mu_init;
	struct prom_buf pub;
	uint64_t pub_ns;
	struct MHD_Daemon *http;
};

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

static void agent_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void agent_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("loopspy: agent: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void duration_text(char *buf, size_t n, uint64_t ns)
{
	if (ns % 1000000000ULL == 0)
		snprintf(buf, n, "%llu s", (unsigned long long)(ns / 1000000000ULL));
	else
		snprintf(buf, n, "%.3g s", (double)ns / 1e9);
}

/* ------------------------------------------------------------------ */
/* /proc                                                               */

/* Reads at most n-1 bytes; NULs become spaces when nul_to_space, trailing
 * newlines and NULs are cut. Returns the length, -1 when unreadable. */
static ssize_t file_read(const char *path, char *buf, size_t n, int nul_to_space)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t r, off = 0, i;

	buf[0] = '\0';
	if (fd < 0)
		return -1;
	while ((size_t)off < n - 1) {
		r = read(fd, buf + off, n - 1 - (size_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		off += r;
	}
	close(fd);
	buf[off] = '\0';
	while (off > 0 && (buf[off - 1] == '\n' || buf[off - 1] == '\0'))
		buf[--off] = '\0';
	for (i = 0; nul_to_space && i < off; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
	return off;
}

static int proc_stat_read(pid_t pid, struct proc_facts *pf)
{
	char path[64], buf[1024], *lp, *rp, *p, *end;
	unsigned long long v[27];
	int i;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (file_read(path, buf, sizeof(buf), 0) <= 0)
		return -1;
	lp = strchr(buf, '(');
	rp = strrchr(buf, ')');
	if (!lp || !rp || rp < lp || rp[1] != ' ')
		return -1;
	snprintf(pf->comm, sizeof(pf->comm), "%.*s", (int)(rp - lp - 1), lp + 1);
	pf->state = rp[2];
	/* fields 4 (ppid) .. 28 (startstack) */
	p = rp + 3;
	for (i = 4; i <= 28; i++) {
		v[i - 4] = strtoull(p, &end, 10);
		if (end == p)
			return -1;
		p = end;
	}
	pf->pid = pid;
	pf->ppid = (pid_t)v[0];
	pf->flags = (unsigned long)v[9 - 4];
	pf->start = v[22 - 4];
	pf->startcode = v[26 - 4];
	pf->startstack = v[28 - 4];
	return 0;
}

static int proc_exe_read(pid_t pid, char *buf, size_t n)
{
	char path[64];
	ssize_t r;
	size_t len;

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	r = readlink(path, buf, n - 1);
	if (r <= 0)
		return -1;
	buf[r] = '\0';
	len = (size_t)r;
	if (len > 10 && !strcmp(buf + len - 10, " (deleted)"))
		buf[len - 10] = '\0';
	return 0;
}

static int proc_facts_read(pid_t pid, struct proc_facts *pf)
{
	char path[64];

	memset(pf, 0, sizeof(*pf));
	if (proc_stat_read(pid, pf) < 0 || proc_exe_read(pid, pf->exe, sizeof(pf->exe)) < 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	if (file_read(path, pf->cmdline, sizeof(pf->cmdline), 1) <= 0)
		return -1;
	return 0;
}

static uint64_t hash_mix(uint64_t h, const void *p, size_t n)
{
	const unsigned char *c = p;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= c[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* Same program image: exec changes the executable or (with ASLR) the
 * addresses of its code and stack. */
static uint64_t exec_ident(const struct proc_facts *pf)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	h = hash_mix(h, pf->exe, strlen(pf->exe));
	h = hash_mix(h, &pf->startcode, sizeof(pf->startcode));
	return hash_mix(h, &pf->startstack, sizeof(pf->startstack));
}

/* What a decision depends on: the image and the command line (which a
 * fork-then-exec child shares with its parent until it execs). */
static uint64_t match_ident(const struct proc_facts *pf)
{
	uint64_t h = exec_ident(pf);

	return hash_mix(h, pf->cmdline, strlen(pf->cmdline));
}

static int exe_is_python(const char *exe)
{
	const char *base = strrchr(exe, '/');

	base = base ? base + 1 : exe;
	return !strncmp(base, "python", 6) && isdigit((unsigned char)base[6]);
}

static int maps_have_libpython(pid_t pid)
{
	char path[64], line[1024];
	FILE *f;
	int found = 0;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f))
		if (strstr(line, "/libpython"))
			found = 1;
	fclose(f);
	return found;
}

/* ------------------------------------------------------------------ */
/* targets                                                             */

static uint64_t boot_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static struct target *target_by_pid(struct agent *a, pid_t pid, int live)
{
	size_t i;

	for (i = 0; i < a->ntargets; i++)
		if (a->targets[i].pid == pid && (!live || a->targets[i].s))
			return &a->targets[i];
	return NULL;
}

static size_t targets_live(const struct agent *a)
{
	size_t i, n = 0;

	for (i = 0; i < a->ntargets; i++)
		n += a->targets[i].s != NULL;
	return n;
}

static void on_event(void *ctx, const void *data, size_t size)
{
	struct agent *a = ctx;
	const struct ls_event_hdr *h = data;
	struct target *t;

	if (size < sizeof(*h))
		return;
	/* records of a target detached a moment ago have nowhere to go */
	t = target_by_pid(a, (pid_t)h->tgid, 1);
	if (t)
		session_on_event(t->s, data, size);
}

/* Removes targets[i] (its session already closed). */
static void target_remove(struct agent *a, size_t i)
{
	prom_target_free(a->targets[i].pt);
	memmove(&a->targets[i], &a->targets[i + 1], (a->ntargets - i - 1) * sizeof(a->targets[0]));
	a->ntargets--;
}

static void target_detach(struct agent *a, struct target *t, const char *why)
{
	char grace[32];

	/* what the ring buffer still holds for it, then final statistics */
	tracer_poll(a->t, 0);
	session_finish(t->s);
	prom_target_update(t->pt, session_model(t->s), session_events(t->s));
	session_close(t->s);
	t->s = NULL;
	t->detached_ns = session_now_ns();
	a->detaches++;
	duration_text(grace, sizeof(grace), a->o.grace_ns);
	agent_log("detached from %s: %s; its series stay for %s", t->name, why, grace);
}

static void name_fill(char *buf, size_t n, const struct proc_facts *pf)
{
	snprintf(buf, n, "%d (%s: %.*s%s)", (int)pf->pid, pf->comm, LOG_CMD_MAX, pf->cmdline,
		 strlen(pf->cmdline) > LOG_CMD_MAX ? "..." : "");
}

static int target_attach(struct agent *a, const struct proc_facts *pf)
{
	struct session_opts so = a->o.so;
	struct prom_target_info info;
	struct target *t;
	struct session *s;
	char path[64], cg[4096], cgname[256], name[sizeof(t->name)];
	int code;
	size_t i;

	name_fill(name, sizeof(name), pf);
	/* a new process with the pid of one in its grace period */
	for (i = 0; i < a->ntargets; i++)
		if (a->targets[i].pid == pf->pid && !a->targets[i].s) {
			agent_log("dropped the series of %s early: its pid now runs another program", a->targets[i].name);
			target_remove(a, i);
			break;
		}
	if (a->ntargets + 1 > a->captargets) {
		size_t cap = a->captargets ? a->captargets * 2 : 16;
		struct target *nt = realloc(a->targets, cap * sizeof(*nt));

		if (!nt)
			goto oom;
		a->targets = nt;
		a->captargets = cap;
	}
	so.tracer = a->t;
	so.pid = pf->pid;
	so.cmd = NULL;
	so.quiet = 1;
	s = session_open(&so, &code);
	if (!s) {
		a->attach_failures++;
		fprintf(stderr, "loopspy: cannot attach to %s: see the message above\n"
			"hint: not retried while this process runs; `loopspy record -p %d -d 1` shows the details\n",
			name, (int)pf->pid);
		return -1;
	}
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pf->pid);
	file_read(path, cg, sizeof(cg), 0);
	prom_cgroup_label(cg, cgname, sizeof(cgname));
	memset(&info, 0, sizeof(info));
	info.pid = pf->pid;
	info.comm = pf->comm;
	info.cgroup = cgname;
	info.command = pf->cmdline;
	info.runtime = session_runtime_desc(s);
	t = &a->targets[a->ntargets];
	memset(t, 0, sizeof(*t));
	t->pt = prom_target_new(&info, a->o.top_n);
	if (!t->pt) {
		session_close(s);
		goto oom;
	}
	t->pid = pf->pid;
	t->start = pf->start;
	t->exec_ident = exec_ident(pf);
	t->s = s;
	snprintf(t->name, sizeof(t->name), "%s", name);
	a->ntargets++;
	a->attaches++;
	agent_log("attached to %s, %s", t->name, session_runtime_desc(s));
	return 0;
oom:
	a->attach_failures++;
	fprintf(stderr, "loopspy: cannot attach to %s: out of memory\n", name);
	return -1;
}

/* ------------------------------------------------------------------ */
/* discovery                                                           */

static int seen_cmp(const void *x, const void *y)
{
	const struct seen *a = x, *b = y;

	return a->pid < b->pid ? -1 : a->pid > b->pid;
}

static const struct seen *seen_find(const struct agent *a, pid_t pid)
{
	struct seen key;

	memset(&key, 0, sizeof(key));
	key.pid = pid;
	return a->seen ? bsearch(&key, a->seen, a->nseen, sizeof(key), seen_cmp) : NULL;
}

static int excluded(const struct agent *a, pid_t pid)
{
	size_t i;

	for (i = 0; i < a->o.nexclude; i++)
		if (a->o.exclude[i] == pid)
			return 1;
	return 0;
}

/* The user's selection; the CPython test last (it may read the maps). */
static int proc_matches(const struct agent *a, const struct proc_facts *pf)
{
	if (a->o.match_set && regexec(&a->o.match_re, pf->cmdline, 0, NULL, 0) != 0)
		return 0;
	if (a->o.match_cgroup) {
		char path[64], cg[4096];

		snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pf->pid);
		if (file_read(path, cg, sizeof(cg), 0) < 0 || !strstr(cg, a->o.match_cgroup))
			return 0;
	}
	return exe_is_python(pf->exe) || maps_have_libpython(pf->pid);
}

static int seen_push(struct seen **arr, size_t *n, size_t *cap, const struct seen *e)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 64;
		struct seen *p = realloc(*arr, c * sizeof(*p));

		if (!p)
			return -1;
		*arr = p;
		*cap = c;
	}
	(*arr)[(*n)++] = *e;
	return 0;
}

static void scan(struct agent *a)
{
	struct seen *next = NULL, e;
	size_t nnext = 0, capnext = 0;
	uint64_t now_boot = boot_now_ns();
	struct dirent *d;
	DIR *dir = opendir("/proc");

	if (!dir) {
		fprintf(stderr, "loopspy: cannot scan /proc: %s\n", strerror(errno));
		return;
	}
	while ((d = readdir(dir))) {
		struct proc_facts pf;
		const struct seen *old;
		struct target *t;
		uint64_t ident;
		char *end;
		long v = strtol(d->d_name, &end, 10);
		pid_t pid;

		if (*end || v <= 0)
			continue;
		pid = (pid_t)v;
		if (pid == a->self || excluded(a, pid))
			continue;
		if (proc_facts_read(pid, &pf) < 0)
			continue;  /* kernel thread, gone, or unreadable */
		if (pf.ppid == a->self || (pf.flags & PF_KTHREAD_) || pf.state == 'Z' || pf.state == 'X')
			continue;
		t = target_by_pid(a, pid, 1);
		if (t) {
			if (t->start == pf.start && t->exec_ident == exec_ident(&pf))
				continue;
			target_detach(a, t, t->start == pf.start ? "it executed another program" : "the process exited");
		}
		if (now_boot < pf.start * (1000000000ULL / (uint64_t)a->ticks) + MIN_AGE_NS)
			continue;  /* decided on next time */
		ident = match_ident(&pf);
		old = seen_find(a, pid);
		if (old && (old->start != pf.start || old->ident != ident))
			old = NULL;
		if (old && old->state != SEEN_CAPPED) {
			seen_push(&next, &nnext, &capnext, old);
			continue;
		}
		memset(&e, 0, sizeof(e));
		e.pid = pid;
		e.start = pf.start;
		e.ident = ident;
		if (!old && !proc_matches(a, &pf)) {
			e.state = SEEN_NOMATCH;
			seen_push(&next, &nnext, &capnext, &e);
			continue;
		}
		if (targets_live(a) >= (size_t)a->o.max_targets) {
			if (!old) {
				char name[sizeof(((struct target *)0)->name)];

				name_fill(name, sizeof(name), &pf);
				agent_log("not attaching to %s: at the limit of %d targets (--max-targets)", name,
					  a->o.max_targets);
			}
			e.state = SEEN_CAPPED;
			seen_push(&next, &nnext, &capnext, &e);
			continue;
		}
		if (target_attach(a, &pf) < 0) {
			e.state = SEEN_FAILED;
			seen_push(&next, &nnext, &capnext, &e);
		}
	}
	closedir(dir);
	if (nnext)
		qsort(next, nnext, sizeof(*next), seen_cmp);
	free(a->seen);
	a->seen = next;
	a->nseen = nnext;
}

/* ------------------------------------------------------------------ */
/* exposition                                                          */

static void self_usage(uint64_t *cpu_ns, uint64_t *rss)
{
	struct rusage ru;
	char buf[128];
	unsigned long long size = 0, res = 0;

	*cpu_ns = 0;
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		*cpu_ns = ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000ULL +
			  ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000ULL;
	*rss = 0;
	if (file_read("/proc/self/statm", buf, sizeof(buf), 0) > 0 && sscanf(buf, "%llu %llu", &size, &res) == 2)
		*rss = (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* Updates every live target's snapshot and renders into a->work. */
static int exposition_render(struct agent *a)
{
	struct prom_target **pts = NULL;
	struct prom_agent pa;
	size_t i;
	int ret;

	for (i = 0; i < a->ntargets; i++) {
		struct target *t = &a->targets[i];

		if (!t->s)
			continue;
		/* "initialising" at attach becomes the version once probed */
		if (prom_target_update(t->pt, session_model(t->s), session_events(t->s)) < 0 ||
		    prom_target_runtime_set(t->pt, session_runtime_desc(t->s)) < 0)
			fprintf(stderr, "loopspy: cannot update the metrics of %d: out of memory\n", (int)t->pid);
	}
	if (a->ntargets) {
		pts = malloc(a->ntargets * sizeof(*pts));
		if (!pts)
			return -1;
	}
	for (i = 0; i < a->ntargets; i++)
		pts[i] = a->targets[i].pt;
	memset(&pa, 0, sizeof(pa));
	pa.version = LOOPSPY_VERSION;
	pa.targets_attached = targets_live(a);
	pa.targets_exported = a->ntargets;
	pa.attaches = a->attaches;
	pa.attach_failures = a->attach_failures;
	pa.detaches = a->detaches;
	pa.dropped_events = tracer_counter(a->t, LS_CNT_DROPPED);
	self_usage(&pa.cpu_ns, &pa.rss_bytes);
	ret = prom_render(&a->work, &pa, pts, a->ntargets);
	free(pts);
	return ret;
}

/* Hands the rendered page to the HTTP thread (swap, no copy). */
static void exposition_publish(struct agent *a)
{
	struct prom_buf tmp;

	pthread_mutex_lock(&a->mu);
	tmp = a->pub;
	a->pub = a->work;
	a->work = tmp;
	a->pub_ns = session_now_ns();
	pthread_mutex_unlock(&a->mu);
}

static void exposition_refresh(struct agent *a)
{
	if (exposition_render(a) < 0) {
		fprintf(stderr, "loopspy: cannot render the metrics: out of memory\n");
		return;
	}
	if (a->http)
		exposition_publish(a);
}

/* ------------------------------------------------------------------ */
/* HTTP (libmicrohttpd's thread)                                       */

static enum MHD_Result http_reply(struct MHD_Connection *c, unsigned int status, const char *type, char *body,
				  size_t len)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	enum MHD_Result ret;

	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result http_text(struct MHD_Connection *c, unsigned int status, const char *text)
{
	char *body = strdup(text);

	if (!body)
		return MHD_NO;
	return http_reply(c, status, "text/plain; charset=utf-8", body, strlen(text));
}

static enum MHD_Result http_handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
				   const char *version, const char *upload_data, size_t *upload_data_size,
				   void **con_cls)
{
	struct agent *a = cls;
	char *body;
	size_t len;
	uint64_t age;

	static int first_call;

	(void)version;
	(void)upload_data;
	/* answer once the whole request is in: an answer queued on the first
	 * call makes libmicrohttpd close the connection (no keep-alive) */
	if (!*con_cls) {
		*con_cls = &first_call;
		return MHD_YES;
	}
	if (*upload_data_size) {
		*upload_data_size = 0;  /* a body: ignored */
		return MHD_YES;
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return http_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
	if (!strcmp(url, "/metrics")) {
		pthread_mutex_lock(&a->mu);
		len = a->pub.len;
		body = malloc(len ? len : 1);
		if (body)
			memcpy(body, a->pub.p, len);
		pthread_mutex_unlock(&a->mu);
		if (!body)
			return MHD_NO;
		return http_reply(c, MHD_HTTP_OK, PROM_CONTENT_TYPE, body, len);
	}
	if (!strcmp(url, "/healthz")) {
		pthread_mutex_lock(&a->mu);
		age = session_now_ns() - a->pub_ns;
		pthread_mutex_unlock(&a->mu);
		/* the main loop publishes twice a second; silence means stuck */
		if (age > HEALTH_STALE_NS)
			return http_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "stale: metrics not refreshed for 30 s\n");
		return http_text(c, MHD_HTTP_OK, "ok\n");
	}
	if (!strcmp(url, "/"))
		return http_text(c, MHD_HTTP_OK, "loopspy agent: /metrics (Prometheus), /healthz\n");
	return http_text(c, MHD_HTTP_NOT_FOUND, "not found: try /metrics or /healthz\n");
}

static void http_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	fputs("loopspy: agent: http: ", stderr);
	vfprintf(stderr, fmt, ap);
}

/* "127.0.0.1:9464", "[::1]:9464", ":9464" (all IPv4 interfaces). */
static int listen_addr_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len, int *v6)
{
	char host[256];
	const char *colon, *port;
	struct addrinfo hints, *res = NULL;
	int err;

	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || rb[1] != ':' || (size_t)(rb - s - 1) >= sizeof(host))
			return -1;
		snprintf(host, sizeof(host), "%.*s", (int)(rb - s - 1), s + 1);
		port = rb + 2;
	} else {
		colon = strrchr(s, ':');
		if (!colon || (size_t)(colon - s) >= sizeof(host))
			return -1;
		snprintf(host, sizeof(host), "%.*s", (int)(colon - s), s);
		port = colon + 1;
	}
	if (!*port || strspn(port, "0123456789") != strlen(port) || atol(port) > 65535)
		return -1;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
	err = getaddrinfo(host[0] ? host : "0.0.0.0", port, &hints, &res);
	if (err || !res) {
		fprintf(stderr, "loopspy: cannot resolve listen address '%s': %s\n", s, gai_strerror(err));
		return -2;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	*v6 = res->ai_family == AF_INET6;
	freeaddrinfo(res);
	return 0;
}

static int http_start(struct agent *a)
{
	sigset_t block, old;
	const union MHD_DaemonInfo *info;
	char host[128] = "?";
	int v6 = a->o.listen_v6;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;

	if (v6)
		flags |= MHD_USE_IPv6;
	/* signals go to the main thread, not libmicrohttpd's */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	a->http = MHD_start_daemon(flags, 0, NULL, NULL, http_handle, a,
				   MHD_OPTION_EXTERNAL_LOGGER, http_log, NULL,
				   MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&a->o.listen_addr,
				   MHD_OPTION_CONNECTION_LIMIT, (unsigned int)64,
				   MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10,
				   MHD_OPTION_END);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!a->http) {
		fprintf(stderr, "loopspy: cannot listen on %s: the address is in use or not local\n"
			"hint: pick another --listen address, or stop what listens there (ss -ltnp)\n", a->o.listen);
		return EXIT_OUTPUT;
	}
	info = MHD_get_daemon_info(a->http, MHD_DAEMON_INFO_BIND_PORT);
	getnameinfo((struct sockaddr *)&a->o.listen_addr, a->o.listen_len, host, sizeof(host), NULL, 0, NI_NUMERICHOST);
	agent_log("serving http://%s%s%s:%u/metrics", v6 ? "[" : "", host, v6 ? "]" : "",
		  info ? (unsigned int)info->port : 0);
	return EXIT_OK;
}

/* ------------------------------------------------------------------ */
/* command line                                                        */

static void usage_agent(FILE *out)
{
	fprintf(out,
		"usage: loopspy agent [options]\n"
		"Attaches to every matching CPython process on this host and serves\n"
		"Prometheus metrics (docs/fleet.md).\n"
		"      --listen HOST:PORT     HTTP address for /metrics and /healthz (default 127.0.0.1:9464)\n"
		"      --match REGEX          only processes whose command line matches (POSIX extended regex)\n"
		"      --match-cgroup TEXT    only processes whose /proc/PID/cgroup contains TEXT\n"
		"      --exclude PID[,PID]    never attach to these (repeatable)\n"
		"      --max-targets N        at most N processes at once (default 32, max %d)\n"
		"      --top-sites N          finding sites with their own series per process (default 10)\n"
		"      --grace T              keep an exited process's series this long (default 60s)\n"
		"      --scan-interval T      look for new processes this often (default 2s)\n"
		"      --once                 observe, print one exposition on stdout and exit\n"
		"  -d, --duration T           with --once: observe this long (default 5s)\n"
		"      --stall-threshold MS   default 100ms\n"
		"      --block-threshold MS   default 1ms\n"
		"      --sample-hz HZ         default 499, 0 disables CPU sampling\n"
		"      --no-stacks            do not walk Python stacks\n"
		"  -v, --verbose              libbpf debug output\n"
		"Exit status: 0 stopped (or --once done), 1 tracing failed, 2 usage, 4 cannot listen.\n",
		LS_MAX_TARGETS);
}

static int exclude_add(struct agent_opts *o, const char *arg)
{
	const char *p = arg;

	while (*p) {
		char *end;
		long v;
		pid_t *n;

		errno = 0;
		v = strtol(p, &end, 10);
		if (errno || end == p || v <= 0 || v > 0x3fffffff || (*end && *end != ',')) {
			fprintf(stderr, "loopspy: cannot use --exclude '%s': expected PID[,PID...]\n", arg);
			return -1;
		}
		n = realloc(o->exclude, (o->nexclude + 1) * sizeof(*n));
		if (!n)
			return -1;
		o->exclude = n;
		o->exclude[o->nexclude++] = (pid_t)v;
		p = *end ? end + 1 : end;
	}
	return 0;
}

static int int_arg(const char *name, const char *arg, long lo, long hi, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v < lo || v > hi) {
		fprintf(stderr, "loopspy: cannot use %s '%s': expected %ld..%ld\n", name, arg, lo, hi);
		return -1;
	}
	*out = (int)v;
	return 0;
}

static int dur_arg(const char *name, const char *arg, uint64_t unit, uint64_t *out)
{
	if (duration_parse(arg, unit, out) || !*out) {
		fprintf(stderr, "loopspy: cannot use %s '%s': expected a positive duration (e.g. 2, 500ms, 1m)\n",
			name, arg);
		return -1;
	}
	return 0;
}

/* long-only options of the agent; the shared ones are SESSION_OPT_* */
enum {
	AGENT_OPT_LISTEN = 256, /* above every short option character */
	AGENT_OPT_MATCH,
	AGENT_OPT_MATCH_CGROUP,
	AGENT_OPT_EXCLUDE,
	AGENT_OPT_MAX_TARGETS,
	AGENT_OPT_TOP_SITES,
	AGENT_OPT_GRACE,
	AGENT_OPT_SCAN,
	AGENT_OPT_ONCE,
};

static int opts_parse(int argc, char **argv, struct agent_opts *o)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, AGENT_OPT_LISTEN },
		{ "match", required_argument, NULL, AGENT_OPT_MATCH },
		{ "match-cgroup", required_argument, NULL, AGENT_OPT_MATCH_CGROUP },
		{ "exclude", required_argument, NULL, AGENT_OPT_EXCLUDE },
		{ "max-targets", required_argument, NULL, AGENT_OPT_MAX_TARGETS },
		{ "top-sites", required_argument, NULL, AGENT_OPT_TOP_SITES },
		{ "grace", required_argument, NULL, AGENT_OPT_GRACE },
		{ "scan-interval", required_argument, NULL, AGENT_OPT_SCAN },
		{ "once", no_argument, NULL, AGENT_OPT_ONCE },
		{ "duration", required_argument, NULL, 'd' },
		{ "stall-threshold", required_argument, NULL, SESSION_OPT_STALL },
		{ "block-threshold", required_argument, NULL, SESSION_OPT_BLOCK },
		{ "sample-hz", required_argument, NULL, SESSION_OPT_SAMPLE_HZ },
		{ "no-stacks", no_argument, NULL, SESSION_OPT_NO_STACKS },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, err;

	o->listen = "127.0.0.1:9464";
	o->max_targets = 32;
	o->top_n = 10;
	o->grace_ns = 60000000000ULL;
	o->scan_ns = 2000000000ULL;
	o->duration_ns = 0;
	o->so.stall_ns = 100000000ULL;
	o->so.block_ns = 1000000ULL;
	o->so.sample_hz = 499;
	o->so.stacks = 1;
	optind = 1;
	while ((c = getopt_long(argc, argv, "d:vh", longopts, NULL)) != -1) {
		switch (c) {
		case AGENT_OPT_LISTEN:
			o->listen = optarg;
			break;
		case AGENT_OPT_MATCH:
			if (o->match_set)
				regfree(&o->match_re);
			o->match_set = 0;
			err = regcomp(&o->match_re, optarg, REG_EXTENDED | REG_NOSUB);
			if (err) {
				char msg[256];

				regerror(err, &o->match_re, msg, sizeof(msg));
				fprintf(stderr, "loopspy: cannot use --match '%s': %s\n"
					"hint: a POSIX extended regex, e.g. --match 'uvicorn|gunicorn'\n", optarg, msg);
				return -1;
			}
			o->match = optarg;
			o->match_set = 1;
			break;
		case AGENT_OPT_MATCH_CGROUP:
			o->match_cgroup = optarg;
			break;
		case AGENT_OPT_EXCLUDE:
			if (exclude_add(o, optarg) < 0)
				return -1;
			break;
		case AGENT_OPT_MAX_TARGETS:
			if (int_arg("--max-targets", optarg, 1, LS_MAX_TARGETS, &o->max_targets) < 0)
				return -1;
			break;
		case AGENT_OPT_TOP_SITES:
			if (int_arg("--top-sites", optarg, 1, 1000, &o->top_n) < 0)
				return -1;
			break;
		case AGENT_OPT_GRACE:
			if (dur_arg("--grace", optarg, 1000000000ULL, &o->grace_ns) < 0)
				return -1;
			break;
		case AGENT_OPT_SCAN:
			if (dur_arg("--scan-interval", optarg, 1000000000ULL, &o->scan_ns) < 0)
				return -1;
			break;
		case AGENT_OPT_ONCE:
			o->once = 1;
			break;
		case 'd':
			if (dur_arg("duration", optarg, 1000000000ULL, &o->duration_ns) < 0)
				return -1;
			break;
		case 'v':
			o->so.verbose = 1;
			break;
		case 'h':
			usage_agent(stdout);
			exit(EXIT_OK);
		default:
			err = session_opt_parse(&o->so, c, optarg);
			if (err < 0)
				return -1;
			if (err > 0)
				break;
			usage_agent(stderr);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "loopspy: cannot use argument '%s'\nhint: loopspy agent --help\n", argv[optind]);
		return -1;
	}
	if (o->duration_ns && !o->once) {
		fprintf(stderr, "loopspy: cannot use -d without --once: the agent runs until stopped\n"
			"hint: loopspy agent --once -d 10\n");
		return -1;
	}
	if (o->once && !o->duration_ns)
		o->duration_ns = 5000000000ULL;
	if (!o->once) {
		int r = listen_addr_parse(o->listen, &o->listen_addr, &o->listen_len, &o->listen_v6);

		if (r == -1)
			fprintf(stderr, "loopspy: cannot use listen address '%s': expected HOST:PORT\n"
				"hint: --listen 127.0.0.1:9464, --listen [::1]:9464, --listen :9464\n", o->listen);
		if (r < 0)
			return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* main loop                                                           */

static void agent_free(struct agent *a)
{
	size_t i;

	if (a->http)
		MHD_stop_daemon(a->http);
	a->http = NULL;
	for (i = 0; i < a->ntargets; i++) {
		session_close(a->targets[i].s);
		prom_target_free(a->targets[i].pt);
	}
	free(a->targets);
	free(a->seen);
	tracer_close(a->t);
	prom_buf_free(&a->work);
	prom_buf_free(&a->pub);
	if (a->mu_init)
		pthread_mutex_destroy(&a->mu);
	if (a->o.match_set)
		regfree(&a->o.match_re);
	free(a->o.exclude);
}

static void targets_poll(struct agent *a)
{
	size_t i;

	for (i = 0; i < a->ntargets; i++) {
		struct target *t = &a->targets[i];

		if (t->s && session_poll(t->s, 0, REFRESH_NS) == SESSION_TARGET_EXITED)
			target_detach(a, t, "the process exited");
	}
}

/* Series of targets that exited more than --grace ago disappear: from the
 * published page first, then the log says so. */
static void targets_expire(struct agent *a, uint64_t now)
{
	char (*gone)[sizeof(a->targets[0].name)] = NULL;
	size_t i = 0, n = 0;

	while (i < a->ntargets) {
		struct target *t = &a->targets[i];

		if (t->s || now - t->detached_ns < a->o.grace_ns) {
			i++;
			continue;
		}
		if (!gone)
			gone = malloc(a->ntargets * sizeof(*gone));
		if (gone)
			memcpy(gone[n++], t->name, sizeof(t->name));
		target_remove(a, i);
	}
	if (!n)
		return;
	if (!a->o.once)
		exposition_refresh(a);
	for (i = 0; i < n; i++)
		agent_log("removed the series of %s (grace period over)", gone[i]);
	free(gone);
}

static int once_print(struct agent *a)
{
	size_t i, off = 0;

	for (i = 0; i < a->ntargets; i++)
		if (a->targets[i].s)
			session_finish(a->targets[i].s);
	if (exposition_render(a) < 0) {
		fprintf(stderr, "loopspy: cannot render the metrics: out of memory\n");
		return EXIT_FAILURE_;
	}
	while (off < a->work.len) {
		size_t n = fwrite(a->work.p + off, 1, a->work.len - off, stdout);

		if (n == 0)
			break;
		off += n;
	}
	if (fflush(stdout) != 0 || off < a->work.len) {
		fprintf(stderr, "loopspy: cannot write the metrics to stdout: %s\n", strerror(errno));
		return EXIT_OUTPUT;
	}
	return EXIT_OK;
}

int cmd_agent(int argc, char **argv)
{
	struct agent a;
	struct sigaction sa;
	uint64_t now, next_scan = 0, next_render = 0, deadline = 0;
	int ret = EXIT_FAILURE_;

	memset(&a, 0, sizeof(a));
	prom_buf_init(&a.work);
	prom_buf_init(&a.pub);
	if (opts_parse(argc, argv, &a.o) < 0) {
		ret = EXIT_USAGE;
		goto cleanup;
	}
	a.self = getpid();
	a.ticks = sysconf(_SC_CLK_TCK);
	if (a.ticks <= 0)
		a.ticks = 100;
	if (pthread_mutex_init(&a.mu, NULL) != 0)
		goto cleanup;
	a.mu_init = 1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	/* targets belong to any user: their stacks need CAP_SYS_PTRACE */
	if (privs_check("run the agent", PRIVS_NEED_BPF | (a.o.so.stacks ? PRIVS_NEED_PTRACE : 0)) < 0)
		goto cleanup;
	a.t = session_tracer_open(&a.o.so, on_event, &a);
	if (!a.t)
		goto cleanup;
	if (!a.o.once) {
		/* something valid to serve from the first request on */
		if (exposition_render(&a) < 0)
			goto cleanup;
		exposition_publish(&a);
		ret = http_start(&a);
		if (ret != EXIT_OK)
			goto cleanup;
	} else {
		deadline = session_now_ns() + a.o.duration_ns;
	}
	agent_log("looking for %s%s%s%s%s every %.3g s (at most %d targets)",
		  a.o.match_set ? "CPython processes matching '" : "CPython processes",
		  a.o.match_set ? a.o.match : "", a.o.match_set ? "'" : "",
		  a.o.match_cgroup ? " in cgroups containing " : "", a.o.match_cgroup ? a.o.match_cgroup : "",
		  (double)a.o.scan_ns / 1e9, a.o.max_targets);
	while (!stop_signal) {
		int err;

		now = session_now_ns();
		if (deadline && now >= deadline)
			break;
		if (now >= next_scan) {
			scan(&a);
			next_scan = session_now_ns() + a.o.scan_ns;
		}
		err = tracer_poll(a.t, POLL_MS);
		if (err < 0 && err != -EINTR)
			fprintf(stderr, "loopspy: cannot poll events: %s\n", strerror(-err));
		targets_poll(&a);
		now = session_now_ns();
		targets_expire(&a, now);
		if (!a.o.once && now >= next_render) {
			exposition_refresh(&a);
			next_render = now + RENDER_NS;
		}
	}
	if (a.o.once)
		ret = once_print(&a);
	else
		ret = EXIT_OK;
	agent_log("stopping: detaching from %zu process%s", targets_live(&a), targets_live(&a) == 1 ? "" : "es");
cleanup:
	agent_free(&a);
	return ret;
}
