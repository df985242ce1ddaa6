#ifndef LOOPSPY_CLI_H
#define LOOPSPY_CLI_H

#define LOOPSPY_VERSION "0.1.0"

/* Exit statuses (docs/cli.md). `run` otherwise exits with the command's. */
enum {
	EXIT_OK = 0,
	EXIT_FAILURE_ = 1,   /* could not trace: BPF load/attach, internal error */
	EXIT_USAGE = 2,      /* bad command line */
	EXIT_TARGET = 3,     /* no such process, kernel thread, cannot start command */
	EXIT_OUTPUT = 4,     /* output file cannot be written */
};

int cmd_record(int argc, char **argv);
int cmd_run(int argc, char **argv);

#endif
