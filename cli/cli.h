#ifndef LOOPSPY_CLI_H
#define LOOPSPY_CLI_H
#include <stddef.h>

#define LOOPSPY_VERSION "0.1.0"

/* Exit statuses (docs/cli.md). `run` otherwise exits with the command's. */
enum {
	EXIT_OK = 0,
	EXIT_FAILURE_ = 1,   /* could not trace: BPF load/attach, internal error */
	EXIT_USAGE = 2,      /* bad command line */
	EXIT_TARGET = 3,     /* no such process, kernel thread, cannot start command */
	EXIT_OUTPUT = 4,     /* output file cannot be written */
	EXIT_GATE = 5,       /* the CI gate failed: --fail-on, --baseline, diff */
	EXIT_INPUT = 6,      /* an input report cannot be read or is not loopspy-report/1 */
};

int cmd_record(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_top(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_agent(int argc, char **argv);
int cmd_doctor(int argc, char **argv);

/* The CI gate of record/run (report_cmd.c): --fail-on, --baseline,
 * --max-regression. */
struct gate;
struct report;
struct ci_gate {
	const char *fail_on;       /* NULL: no rules */
	const char *baseline;      /* NULL: no baseline */
	double max_regression;     /* percent, < 0: none */
	struct gate *rules;
	struct report *base;       /* parsed only in the unprivileged worker */
	char *base_text;           /* the baseline file as read */
	size_t base_len;
};

/* Initialises g (no gate). */
void ci_gate_init(struct ci_gate *g);
/* --max-regression PCT ("20" or "20%"): 0, or -1 with a message. */
int ci_gate_set_max_regression(struct ci_gate *g, const char *arg);
/* Parses the rules and reads and checks the baseline (in an unprivileged
 * worker), before anything is traced: EXIT_OK, EXIT_USAGE (bad rules) or
 * EXIT_INPUT (bad baseline). */
int ci_gate_prepare(struct ci_gate *g);
int ci_gate_active(const struct ci_gate *g);
/* Evaluates the gate on a JSON report (in an unprivileged worker), prints
 * failures (and, unless quiet, a pass) on stderr: EXIT_OK, EXIT_GATE, or
 * EXIT_FAILURE_. */
int ci_gate_check(struct ci_gate *g, const char *json, int quiet);
void ci_gate_release(struct ci_gate *g);

#endif
