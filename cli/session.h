/* One tracing session of one target: attach (or start a command), feed the
 * model, detect the end. Shared by record, run and top. */
#ifndef LOOPSPY_SESSION_H
#define LOOPSPY_SESSION_H
#include <stdint.h>
#include <sys/types.h>
#include "core/model.h"
#include "core/report.h"

struct tracer;

struct session_opts {
	struct tracer *tracer;    /* shared tracer (agent): events are fed with
				   * session_on_event; NULL: the session owns one */
	pid_t pid;                /* attach to this process ... */
	char **cmd;               /* ... or start this command */
	uint64_t stall_ns, block_ns;
	int sample_hz;
	int stacks;
	int quiet, verbose;
	int follow_children;      /* its forks are traced too (--follow-children) */
};

enum session_state {
	SESSION_RUNNING = 0,
	SESSION_TARGET_EXITED = 1,
};

struct session;

/* Options shared by record, run and top, as getopt_long values. */
enum session_opt {
	SESSION_OPT_STALL = 1,     /* --stall-threshold MS */
	SESSION_OPT_BLOCK = 2,     /* --block-threshold MS */
	SESSION_OPT_SAMPLE_HZ = 3, /* --sample-hz HZ */
	SESSION_OPT_NO_STACKS = 4, /* --no-stacks */
	SESSION_OPT_PID = 'p',     /* -p, --pid PID */
};

/* Applies one shared option: 1 handled, 0 not a shared option, -1 bad
 * value (message printed). */
int session_opt_parse(struct session_opts *so, int opt, const char *arg);

/* Attaches; for a command, starts it traced from its first instruction.
 * NULL on failure (message printed); *exit_code says which EXIT_*. */
struct session *session_open(const struct session_opts *o, int *exit_code);

/* Creates the tracer a session would own, for sharing between sessions;
 * fn receives every ring-buffer record (route them by ls_event_hdr.tgid). */
struct tracer *session_tracer_open(const struct session_opts *o,
				   void (*fn)(void *ctx, const void *data, size_t size), void *ctx);
/* One ring-buffer record of this session's target. */
void session_on_event(struct session *s, const void *data, size_t size);

/* Waits up to timeout_ms for events and handles them, refreshes loop
 * statistics every refresh_ns. Returns the session state. */
enum session_state session_poll(struct session *s, int timeout_ms, uint64_t refresh_ns);

/* Asks a started command to stop (SIGTERM); no-op when attached by pid. */
void session_stop_command(struct session *s, int sig);

/* Drains pending events and reads final statistics. */
void session_finish(struct session *s);

struct model *session_model(struct session *s);
/* Fills meta for a report of what was recorded so far. */
void session_meta(struct session *s, struct report_meta *meta, const char *end_reason);
pid_t session_pid(const struct session *s);
int session_exit_status(const struct session *s); /* command's, -1 if none/yet */
uint64_t session_events(const struct session *s);
uint64_t session_dropped(struct session *s);
uint64_t session_now_ns(void);
/* The runtime description for headers: "CPython 3.11.2" or why not. */
const char *session_runtime_desc(const struct session *s);

/* Kills a started command that is still running, detaches, frees. */
void session_close(struct session *s);

#endif
