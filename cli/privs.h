/* Privileges: what loopspy needs, refusing setuid, and running the parts
 * that need none (parsing and rendering report files) without them. */
#ifndef LOOPSPY_PRIVS_H
#define LOOPSPY_PRIVS_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum {
	PRIVS_NEED_BPF = 1,       /* CAP_BPF + CAP_PERFMON: load and attach probes */
	PRIVS_NEED_PTRACE = 2,    /* CAP_SYS_PTRACE: read another user's process */
};

/* Exits (status 1) when running setuid or setgid: loopspy is run by root
 * (sudo), never installed with the setuid bit. */
void privs_refuse_setuid(void);

/* The effective capability set (bit n = capability n); 0 when unknown. */
uint64_t privs_effective(void);

/* Names of the capabilities in need that the effective set lacks, e.g.
 * "CAP_BPF, CAP_PERFMON"; "" when none is missing. Pure. */
void privs_missing_describe(uint64_t effective, int need, char *buf, size_t n);

/* record/run/top/agent before anything is loaded: 0, or -1 after printing
 * "loopspy: cannot <what>: missing CAP_..." and a hint. */
int privs_check(const char *what, int need);

/* Whether reading pid's memory needs CAP_SYS_PTRACE: it belongs to another
 * user, or Yama allows only descendants (ptrace_scope >= 1). */
int privs_ptrace_needed(pid_t pid);

/* Runs fn(ctx) in a child process that gave up every privilege (root:
 * the invoking sudo user, else nobody; no groups, no capabilities, no
 * new privileges) and returns its exit status; signals and crashes of the
 * child come back as status 1 with a message. A process without
 * privileges calls fn directly. */
int privs_drop_run(int (*fn)(void *ctx), void *ctx);

#endif
