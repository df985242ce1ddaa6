/* `loopspy record` and `loopspy run`: one session, a summary on stdout and
 * the JSON report. */
#define _GNU_SOURCE
#include "cli.h"
#include "session.h"
#include "core/outfile.h"
#include "core/report.h"
#include "core/units.h"
#include "privs.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct opts {
	struct session_opts so;
	uint64_t duration_ns;     /* 0: until stopped */
	const char *output;
	struct ci_gate gate;
};

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

static int report_write(struct outfile *of, const char *json)
{
	if (!json) {
		fprintf(stderr, "loopspy: cannot render report: out of memory\n");
		return -1;
	}
	if (outfile_write(of, json, strlen(json)) < 0 || outfile_write(of, "\n", 1) < 0 ||
	    outfile_commit(of) < 0) {
		outfile_error_print("write report", of->path, errno);
		return -1;
	}
	return 0;
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
		"      --follow-children      trace the processes it forks too (workers)\n"
		"  -q, --quiet                no summary\n"
		"  -v, --verbose              libbpf debug output\n"
		"      --fail-on RULES        exit 5 when a rule matches, e.g. 'stall>100ms,blocking_syscall'\n"
		"      --baseline FILE        exit 5 on finding sites not in this earlier report\n"
		"      --max-regression PCT   with --baseline: also on sites or loop lag p99 worse by > PCT%%\n"
		"  (docs/ci.md; `run` exits with the command's status first when it failed)\n");
}

static int opts_parse(int argc, char **argv, int run, struct opts *o)
{
	static const struct option longopts[] = {
		{ "pid", required_argument, NULL, SESSION_OPT_PID },
		{ "duration", required_argument, NULL, 'd' },
		{ "output", required_argument, NULL, 'o' },
		{ "stall-threshold", required_argument, NULL, SESSION_OPT_STALL },
		{ "block-threshold", required_argument, NULL, SESSION_OPT_BLOCK },
		{ "sample-hz", required_argument, NULL, SESSION_OPT_SAMPLE_HZ },
		{ "no-stacks", no_argument, NULL, SESSION_OPT_NO_STACKS },
		{ "fail-on", required_argument, NULL, 5 },
		{ "baseline", required_argument, NULL, 6 },
		{ "max-regression", required_argument, NULL, 7 },
		{ "follow-children", no_argument, NULL, 8 },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof(*o));
	ci_gate_init(&o->gate);
	o->so.stall_ns = 100000000ULL;
	o->so.block_ns = 1000000ULL;
	o->so.sample_hz = 499;
	o->so.stacks = 1;
	optind = 1;
	/* '+': stop at the first non-option so `run -- python3 -v` works */
	while ((c = getopt_long(argc, argv, "+p:d:o:qvh", longopts, NULL)) != -1) {
		int shared = session_opt_parse(&o->so, c, optarg);

		if (shared < 0)
			return -1;
		if (shared)
			continue;
		switch (c) {
		case 'd':
			if (duration_parse(optarg, 1000000000ULL, &o->duration_ns) || !o->duration_ns) {
				fprintf(stderr, "loopspy: cannot use duration '%s': expected a positive number of seconds (e.g. 10, 500ms)\n", optarg);
				return -1;
			}
			break;
		case 'o':
			o->output = optarg;
			break;
		case 5:
			o->gate.fail_on = optarg;
			break;
		case 6:
			o->gate.baseline = optarg;
			break;
		case 7:
			if (ci_gate_set_max_regression(&o->gate, optarg) < 0)
				return -1;
			break;
		case 8:
			o->so.follow_children = 1;
			break;
		case 'q':
			o->so.quiet = 1;
			break;
		case 'v':
			o->so.verbose = 1;
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
		o->so.cmd = argv + optind;
	} else {
		if (optind < argc) {
			fprintf(stderr, "loopspy: cannot use argument '%s'\n", argv[optind]);
			return -1;
		}
		if (!o->so.pid) {
			fprintf(stderr, "loopspy: cannot record: no pid given\nhint: loopspy record -p PID\n");
			return -1;
		}
	}
	return 0;
}

static int session_main(int argc, char **argv, int run)
{
	struct opts o;
	struct session *s = NULL;
	struct report_meta meta;
	struct sigaction sa;
	struct outfile of = { NULL, NULL, -1, 0 };
	int ret = EXIT_FAILURE_, gate_ret = EXIT_OK;
	const char *end_reason = "duration";
	uint64_t deadline = 0;
	char *json = NULL;

	if (opts_parse(argc, argv, run, &o) < 0)
		return EXIT_USAGE;
	/* bad rules or baseline fail before anything is attached */
	ret = ci_gate_prepare(&o.gate);
	if (ret != EXIT_OK)
		goto cleanup;
	ret = EXIT_FAILURE_;
	/* reading another user's process needs CAP_SYS_PTRACE; a started
	 * command is our child */
	if (privs_check(run ? "trace a command" : "attach to a process",
			PRIVS_NEED_BPF | (!run && o.so.stacks && privs_ptrace_needed(o.so.pid) ?
					  PRIVS_NEED_PTRACE : 0)) < 0)
		goto cleanup;
	/* the output is checked before attaching; the report appears there
	 * complete, or not at all */
	if (o.output && outfile_open(&of, o.output, 0) < 0) {
		outfile_error_print("write report", o.output, errno);
		ret = EXIT_OUTPUT;
		goto cleanup;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	s = session_open(&o.so, &ret);
	if (!s)
		goto cleanup;
	if (o.duration_ns)
		deadline = session_now_ns() + o.duration_ns;
	for (;;) {
		enum session_state st = session_poll(s, 50, 500000000ULL);

		if (st == SESSION_TARGET_EXITED) {
			end_reason = "target_exit";
			break;
		}
		if (stop_signal) {
			if (!run) {
				end_reason = "signal";
				break;
			}
			/* a started command gets SIGTERM/SIGHUP passed on (Ctrl-C
			 * reaches it through the terminal); trace until it is gone */
			if (stop_signal != SIGINT)
				session_stop_command(s, stop_signal);
			stop_signal = 0;
		}
		if (deadline && session_now_ns() >= deadline) {
			end_reason = "duration";
			if (!run)
				break;
			session_stop_command(s, SIGTERM);
			deadline = 0;
		}
	}
	session_finish(s);
	session_meta(s, &meta, end_reason);
	ret = EXIT_OK;
	if (o.output || ci_gate_active(&o.gate))
		json = report_json_render(session_model(s), &meta);
	if (o.output && report_write(&of, json) < 0)
		ret = EXIT_OUTPUT;
	if (!o.so.quiet)
		report_summary_write(stdout, session_model(s), &meta);
	if (meta.dropped_events)
		fprintf(stderr, "loopspy: %llu events were dropped (ring buffer full): the report undercounts\n",
			(unsigned long long)meta.dropped_events);
	if (ci_gate_active(&o.gate)) {
		fflush(stdout);
		gate_ret = json ? ci_gate_check(&o.gate, json, o.so.quiet) : EXIT_FAILURE_;
	}
	/* the command's own failure first, then the gate's */
	if (run && ret == EXIT_OK)
		ret = session_exit_status(s);
	if (ret == EXIT_OK)
		ret = gate_ret;
cleanup:
	session_close(s);
	outfile_discard(&of);
	free(json);
	ci_gate_release(&o.gate);
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
