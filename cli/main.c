/* loopspy: what holds a Python event loop back, from outside the process. */
#include "cli.h"
#include "privs.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *out)
{
	fprintf(out,
		"usage: loopspy <command> [options]\n"
		"\n"
		"commands:\n"
		"  record -p PID [-d SECONDS] [-o FILE]   attach to a running process\n"
		"  run [-o FILE] [-d SECONDS] -- CMD...     start CMD and trace it from its first instruction\n"
		"  top -p PID | top -- CMD...               live dashboard of loops and findings (docs/top.md)\n"
		"  report IN.json [-o OUT] [--format F]     render a report: md, html, junit, sarif, folded, trace, json\n"
		"  diff BASE.json CUR.json                  new, worse and gone finding sites between two reports\n"
		"  agent [--listen ADDR] [--match REGEX]    every matching CPython process, as Prometheus metrics (docs/fleet.md)\n"
		"  doctor                                   what works on this machine (BTF, probes, privileges)\n"
		"  version                                  print the version\n"
		"\n"
		"common options:\n"
		"  -o, --output FILE          write the JSON report (docs/report-schema.md)\n"
		"  -d, --duration SECONDS     stop after this long (default: until Ctrl-C or target exit)\n"
		"      --stall-threshold MS   loop iteration length reported as a stall (default 100ms)\n"
		"      --block-threshold MS   sleep in a syscall reported as blocking (default 1ms)\n"
		"      --sample-hz HZ         CPU samples per second during long iterations (default 499, 0 = off)\n"
		"      --no-stacks            do not walk Python stacks\n"
		"  -q, --quiet                no summary on stdout\n"
		"  -v, --verbose              libbpf debug output\n"
		"      --fail-on RULES        CI gate, e.g. 'stall>100ms,blocking_syscall' (docs/ci.md)\n"
		"      --baseline FILE        CI gate: fail on finding sites not in this earlier report\n"
		"      --max-regression PCT   CI gate: also fail on sites or loop lag worse by more than PCT%%\n"
		"\n"
		"Exit status: 0 ok, 1 tracing failed, 2 usage, 3 bad target, 4 output not writable,\n"
		"5 gate failed, 6 bad input report; `run` exits with the command's status when it\n"
		"failed (128+N when killed by signal N).\n"
		"See `loopspy <command> --help` and docs/.\n");
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

	privs_refuse_setuid();
	if (!cmd) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
		usage(stdout);
		return EXIT_OK;
	}
	if (!strcmp(cmd, "--version") || !strcmp(cmd, "version") || !strcmp(cmd, "-V")) {
		printf("loopspy %s\n", LOOPSPY_VERSION);
		return EXIT_OK;
	}
	if (!strcmp(cmd, "record"))
		return cmd_record(argc - 1, argv + 1);
	if (!strcmp(cmd, "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(cmd, "top"))
		return cmd_top(argc - 1, argv + 1);
	if (!strcmp(cmd, "report"))
		return cmd_report(argc - 1, argv + 1);
	if (!strcmp(cmd, "diff"))
		return cmd_diff(argc - 1, argv + 1);
	if (!strcmp(cmd, "agent"))
		return cmd_agent(argc - 1, argv + 1);
	if (!strcmp(cmd, "doctor"))
		return cmd_doctor(argc - 1, argv + 1);
	fprintf(stderr, "loopspy: cannot run command '%s': unknown command\nhint: loopspy --help\n", cmd);
	return EXIT_USAGE;
}
