/* `loopspy report` (render a JSON report as Markdown, HTML, JUnit, SARIF,
 * folded stacks, a Chrome trace or JSON), `loopspy diff` (compare two
 * reports), and the CI gate shared with record/run. */
#define _GNU_SOURCE
#include "cli.h"
#include "core/diff.h"
#include "core/gate.h"
#include "core/render.h"
#include "core/report.h"
#include "core/outfile.h"
#include "core/report_read.h"
#include "privs.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REPORT_MAX_BYTES (1024L * 1024 * 1024)

static const char input_hint[] =
	"hint: the input must be a JSON report written by `loopspy record -o` or `loopspy run -o` (schema " REPORT_SCHEMA ")\n";

/* Reads a whole file ("-": stdin). NULL with errno set on failure. */
static char *file_slurp(const char *path, size_t *len)
{
	int fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC) : STDIN_FILENO;
	size_t cap = 65536, n = 0;
	char *buf = NULL, *nb;
	int saved;

	if (fd < 0)
		return NULL;
	buf = malloc(cap);
	if (!buf)
		goto fail;
	for (;;) {
		ssize_t r;

		if (n == cap) {
			if (cap >= (size_t)REPORT_MAX_BYTES) {
				errno = EFBIG;
				goto fail;
			}
			nb = realloc(buf, cap * 2);
			if (!nb)
				goto fail;
			buf = nb;
			cap *= 2;
		}
		r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			goto fail;
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (fd != STDIN_FILENO)
		close(fd);
	*len = n;
	return buf;
fail:
	saved = errno;
	free(buf);
	if (fd >= 0 && fd != STDIN_FILENO)
		close(fd);
	errno = saved;
	return NULL;
}

/* Reading a report file (with the caller's privileges) is kept apart from
 * parsing it (in the unprivileged worker, privs_drop_run). */
struct report_text {
	const char *path;
	char *text;
	size_t len;
};

/* EXIT_OK, or EXIT_INPUT after saying why. */
static int report_text_read(const char *path, struct report_text *t)
{
	t->path = path;
	t->len = 0;
	t->text = file_slurp(path, &t->len);
	if (!t->text) {
		fprintf(stderr, "loopspy: cannot read report %s: %s\n%s", path, strerror(errno), input_hint);
		return EXIT_INPUT;
	}
	return EXIT_OK;
}

/* Parses and checks a report; prints why not. EXIT_OK or EXIT_INPUT. */
static int report_text_parse(const struct report_text *t, struct report **out)
{
	char err[512];

	*out = NULL;
	if (report_parse(t->text, t->len, out, err, sizeof(err)) < 0) {
		fprintf(stderr, "loopspy: cannot read report %s: %s\n%s", t->path, err, input_hint);
		return EXIT_INPUT;
	}
	return EXIT_OK;
}

/* The baseline of a gate, parsed in the worker. */
static int baseline_parse(struct ci_gate *g)
{
	struct report_text t = { g->baseline, g->base_text, g->base_len };

	if (!g->baseline || g->base)
		return EXIT_OK;
	return report_text_parse(&t, &g->base);
}

static int baseline_check(void *ctx)
{
	struct ci_gate *g = ctx;
	int ret = baseline_parse(g);

	report_free(g->base);
	g->base = NULL;
	return ret;
}

void ci_gate_init(struct ci_gate *g)
{
	memset(g, 0, sizeof(*g));
	g->max_regression = -1;
}

int ci_gate_set_max_regression(struct ci_gate *g, const char *arg)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(arg, &end);
	if (*end == '%')
		end++;
	if (errno || end == arg || *end || !isfinite(v) || v < 0) {
		fprintf(stderr, "loopspy: cannot use --max-regression '%s': expected a percentage >= 0 (e.g. 20 or 20%%)\n",
			arg);
		return -1;
	}
	g->max_regression = v;
	return 0;
}

int ci_gate_prepare(struct ci_gate *g)
{
	char err[512];

	if (g->fail_on && gate_parse(g->fail_on, &g->rules, err, sizeof(err)) < 0) {
		fprintf(stderr, "loopspy: cannot use --fail-on '%s': %s\n"
			"hint: rules look like 'stall>100ms,blocking_syscall,lag_p99>20ms' (docs/ci.md)\n",
			g->fail_on, err);
		return EXIT_USAGE;
	}
	if (g->max_regression >= 0 && !g->baseline) {
		fprintf(stderr, "loopspy: cannot use --max-regression: no --baseline to compare with\n"
			"hint: --baseline main.loopspy.json --max-regression 20\n");
		return EXIT_USAGE;
	}
	if (!g->baseline)
		return EXIT_OK;
	if (!g->base_text) {
		struct report_text t;

		if (report_text_read(g->baseline, &t) != EXIT_OK)
			return EXIT_INPUT;
		g->base_text = t.text;
		g->base_len = t.len;
	}
	/* checked before anything is traced, parsed without privileges */
	return privs_drop_run(baseline_check, g);
}

int ci_gate_active(const struct ci_gate *g)
{
	return g->fail_on || g->baseline;
}

void ci_gate_release(struct ci_gate *g)
{
	gate_free(g->rules);
	report_free(g->base);
	free(g->base_text);
	g->rules = NULL;
	g->base = NULL;
	g->base_text = NULL;
}

/* Sites of r and the verdict of g on them. EXIT_OK or EXIT_FAILURE_. */
static int verdict_compute(const struct ci_gate *g, const struct report *r, struct report_sites *own,
			   struct diff **d, const struct report_sites **sites, struct gate_result *res)
{
	*d = NULL;
	memset(res, 0, sizeof(*res));
	memset(own, 0, sizeof(*own));
	if (g->base) {
		if (diff_compute(g->base, r, g->max_regression, d) < 0)
			goto oom;
		*sites = &(*d)->sb;
	} else {
		if (report_sites_build(r, own) < 0)
			goto oom;
		*sites = own;
	}
	if (ci_gate_active(g) && gate_evaluate(g->rules, r, *sites, *d, res) < 0)
		goto oom;
	return EXIT_OK;
oom:
	fprintf(stderr, "loopspy: cannot evaluate the report: out of memory\n");
	return EXIT_FAILURE_;
}

static void verdict_print(const struct ci_gate *g, const struct gate_result *res, int quiet)
{
	if (!res->n) {
		if (!quiet)
			gate_result_write(stderr, res);
		return;
	}
	gate_result_write(stderr, res);
	fprintf(stderr, "hint: exit status %d means the gate failed", EXIT_GATE);
	if (g->base && !g->rules)
		fprintf(stderr, "; accept the new state by replacing the baseline %s", g->baseline);
	fputc('\n', stderr);
}

struct gate_job {
	struct ci_gate *g;
	const char *json;
	int quiet;
};

static int gate_check_run(void *ctx)
{
	struct gate_job *j = ctx;
	struct ci_gate *g = j->g;
	struct report *r = NULL;
	struct report_sites own;
	const struct report_sites *sites;
	struct diff *d = NULL;
	struct gate_result res;
	char err[512];
	int ret;

	if (baseline_parse(g) != EXIT_OK)
		return EXIT_FAILURE_;
	if (report_parse(j->json, strlen(j->json), &r, err, sizeof(err)) < 0) {
		fprintf(stderr, "loopspy: cannot check the gate: %s\n", err);
		return EXIT_FAILURE_;
	}
	ret = verdict_compute(g, r, &own, &d, &sites, &res);
	if (ret == EXIT_OK) {
		verdict_print(g, &res, j->quiet);
		ret = res.n ? EXIT_GATE : EXIT_OK;
	}
	gate_result_free(&res);
	report_sites_free(&own);
	diff_free(d);
	report_free(r);
	report_free(g->base);
	g->base = NULL;
	return ret;
}

int ci_gate_check(struct ci_gate *g, const char *json, int quiet)
{
	struct gate_job j = { g, json, quiet };

	return privs_drop_run(gate_check_run, &j);
}

static void usage_report(FILE *out)
{
	fprintf(out,
		"usage: loopspy report IN.json [-o OUT] [--format FMT] [gate options]\n"
		"  -o, --output FILE          write there (default: stdout); the format follows the\n"
		"                             extension: .md .html .xml (JUnit) .sarif .folded\n"
		"                             .trace.json (Chrome trace) .json\n"
		"  -f, --format FMT           md, html, junit, sarif, folded, trace or json (default md)\n"
		"      --source-root DIR      show paths under DIR relative to it (default: the\n"
		"                             current directory); SARIF URIs are relative to it\n"
		"      --fail-on RULES        gate: e.g. 'stall>100ms,blocking_syscall' (docs/ci.md)\n"
		"      --baseline FILE        gate: only sites new or worse than in FILE count\n"
		"      --max-regression PCT   with --baseline: growth in %% that makes a site worse\n"
		"  -q, --quiet                no \"gate passed\" message\n"
		"Exit status: 0 ok, 2 usage, 4 output not writable, 5 gate failed, 6 bad input report.\n");
}

enum { OPT_FAIL_ON = 256, OPT_BASELINE, OPT_MAX_REGRESSION, OPT_SOURCE_ROOT };

/* Absolute, without trailing '/'; NULL for "/" (nothing to strip). */
static char *source_root_resolve(const char *arg)
{
	char *p = realpath(arg ? arg : ".", NULL);
	size_t n;

	if (!p && arg && arg[0] == '/')
		p = strdup(arg);
	if (!p)
		return NULL;
	n = strlen(p);
	while (n > 1 && p[n - 1] == '/')
		p[--n] = 0;
	if (!strcmp(p, "/")) {
		free(p);
		return NULL;
	}
	return p;
}

/* What the worker of `loopspy report` needs. */
struct report_job {
	struct ci_gate *g;
	struct report_text in;
	enum render_format fmt;
	char *root;               /* --source-root, resolved */
	struct outfile *out;      /* NULL: stdout */
	int quiet;
};

/* Parses, renders and writes; in the unprivileged worker. */
static int report_run(void *ctx)
{
	struct report_job *j = ctx;
	struct ci_gate *g = j->g;
	struct report *r = NULL;
	struct report_sites own;
	const struct report_sites *sites = NULL;
	struct diff *d = NULL;
	struct gate_result res;
	struct render_ctx rc;
	char *buf = NULL;
	size_t len = 0;
	FILE *mem;
	int ret;

	memset(&own, 0, sizeof(own));
	memset(&res, 0, sizeof(res));
	ret = baseline_parse(g);
	if (ret != EXIT_OK)
		goto cleanup;
	ret = report_text_parse(&j->in, &r);
	if (ret != EXIT_OK)
		goto cleanup;
	ret = verdict_compute(g, r, &own, &d, &sites, &res);
	if (ret != EXIT_OK)
		goto cleanup;
	memset(&rc, 0, sizeof(rc));
	rc.r = r;
	rc.sites = sites;
	rc.gate = g->rules;
	rc.verdict = ci_gate_active(g) ? &res : NULL;
	rc.baseline = g->baseline;
	rc.source_root = j->root;
	rc.loopspy_version = LOOPSPY_VERSION;
	mem = open_memstream(&buf, &len);
	if (!mem || render_report(mem, j->fmt, &rc) < 0 || fclose(mem) != 0) {
		fprintf(stderr, "loopspy: cannot render the report: out of memory\n");
		ret = EXIT_FAILURE_;
		goto cleanup;
	}
	if (j->out) {
		if (outfile_write(j->out, buf, len) < 0) {
			outfile_error_print("write output", j->out->path, errno);
			ret = EXIT_OUTPUT;
			goto cleanup;
		}
	} else if (fwrite(buf, 1, len, stdout) != len || fflush(stdout) == EOF) {
		fprintf(stderr, "loopspy: cannot write the report to stdout: %s\n", strerror(errno));
		ret = EXIT_OUTPUT;
		goto cleanup;
	}
	ret = EXIT_OK;
	if (ci_gate_active(g)) {
		verdict_print(g, &res, j->quiet);
		if (res.n)
			ret = EXIT_GATE;
	}
cleanup:
	free(buf);
	gate_result_free(&res);
	report_sites_free(&own);
	diff_free(d);
	report_free(r);
	report_free(g->base);
	g->base = NULL;
	return ret;
}

int cmd_report(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "format", required_argument, NULL, 'f' },
		{ "fail-on", required_argument, NULL, OPT_FAIL_ON },
		{ "baseline", required_argument, NULL, OPT_BASELINE },
		{ "max-regression", required_argument, NULL, OPT_MAX_REGRESSION },
		{ "source-root", required_argument, NULL, OPT_SOURCE_ROOT },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *output = NULL, *format = NULL, *root_arg = NULL;
	struct ci_gate g;
	struct report_job j;
	struct outfile of;
	char err[512];
	int c, ret = EXIT_USAGE;

	ci_gate_init(&g);
	memset(&j, 0, sizeof(j));
	memset(&of, 0, sizeof(of));
	of.fd = -1;
	j.g = &g;
	j.fmt = RENDER_MD;
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:f:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			output = optarg;
			break;
		case 'f':
			format = optarg;
			break;
		case OPT_FAIL_ON:
			g.fail_on = optarg;
			break;
		case OPT_BASELINE:
			g.baseline = optarg;
			break;
		case OPT_MAX_REGRESSION:
			if (ci_gate_set_max_regression(&g, optarg) < 0)
				return EXIT_USAGE;
			break;
		case OPT_SOURCE_ROOT:
			root_arg = optarg;
			break;
		case 'q':
			j.quiet = 1;
			break;
		case 'h':
			usage_report(stdout);
			return EXIT_OK;
		default:
			usage_report(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "loopspy: cannot make a report: %s\nhint: loopspy report report.json -o report.md\n",
			optind >= argc ? "no input report given" : "more than one input report given");
		return EXIT_USAGE;
	}
	if (format && render_format_parse(format, &j.fmt) < 0) {
		fprintf(stderr, "loopspy: cannot use format '%s': unknown\nhint: --format md, html, junit, sarif, folded, trace or json\n",
			format);
		return EXIT_USAGE;
	}
	if (!format && output && render_format_guess(output, &j.fmt) < 0) {
		fprintf(stderr, "loopspy: cannot guess the format of %s from its extension\n"
			"hint: use .md .html .xml .sarif .folded .trace.json .json, or --format\n", output);
		return EXIT_USAGE;
	}
	if (g.fail_on && gate_parse(g.fail_on, &g.rules, err, sizeof(err)) < 0) {
		fprintf(stderr, "loopspy: cannot use --fail-on '%s': %s\n"
			"hint: rules look like 'stall>100ms,blocking_syscall,lag_p99>20ms' (docs/ci.md)\n",
			g.fail_on, err);
		goto cleanup;
	}
	if (g.max_regression >= 0 && !g.baseline) {
		fprintf(stderr, "loopspy: cannot use --max-regression: no --baseline to compare with\n"
			"hint: --baseline main.loopspy.json --max-regression 20\n");
		goto cleanup;
	}
	/* files are read (and the output checked) with the caller's
	 * privileges; everything they contain is handled without them */
	if (g.baseline) {
		struct report_text t;

		ret = report_text_read(g.baseline, &t);
		if (ret != EXIT_OK)
			goto cleanup;
		g.base_text = t.text;
		g.base_len = t.len;
	}
	ret = report_text_read(argv[optind], &j.in);
	if (ret != EXIT_OK)
		goto cleanup;
	if (output) {
		if (outfile_open(&of, output, 0) < 0) {
			outfile_error_print("write output", output, errno);
			ret = EXIT_OUTPUT;
			goto cleanup;
		}
		j.out = &of;
	}
	j.root = source_root_resolve(root_arg);
	ret = privs_drop_run(report_run, &j);
	if (j.out && (ret == EXIT_OK || ret == EXIT_GATE) && outfile_commit(&of) < 0) {
		outfile_error_print("write output", output, errno);
		ret = EXIT_OUTPUT;
	}
cleanup:
	outfile_discard(&of);
	free(j.in.text);
	free(j.root);
	ci_gate_release(&g);
	return ret;
}

static void usage_diff(FILE *out)
{
	fprintf(out,
		"usage: loopspy diff BASELINE.json CURRENT.json [--max-regression PCT]\n"
		"  Lists finding sites that are new, worse, gone or the same in CURRENT, and\n"
		"  the loops' lag p99, one line each, sorted.\n"
		"      --max-regression PCT   a site is worse when its count, total or max time grew\n"
		"                             by more than PCT%%; a loop regresses when its lag p99\n"
		"                             grew by more than PCT%% and at least %g ms\n"
		"Exit status: 0 no regression, 5 new sites (or, with --max-regression, worse sites\n"
		"or regressed loops), 2 usage, 6 bad input report.\n",
		DIFF_LAG_FLOOR_MS);
}

struct diff_job {
	struct report_text a, b;
	double max_regression;
};

static int diff_run(void *ctx)
{
	struct diff_job *j = ctx;
	struct report *a = NULL, *b = NULL;
	struct diff *d = NULL;
	struct gate_result res;
	int ret;

	memset(&res, 0, sizeof(res));
	ret = report_text_parse(&j->a, &a);
	if (ret == EXIT_OK)
		ret = report_text_parse(&j->b, &b);
	if (ret != EXIT_OK)
		goto cleanup;
	if (diff_compute(a, b, j->max_regression, &d) < 0 || gate_evaluate(NULL, b, &d->sb, d, &res) < 0) {
		fprintf(stderr, "loopspy: cannot diff: out of memory\n");
		ret = EXIT_FAILURE_;
		goto cleanup;
	}
	diff_write(stdout, d);
	if (fflush(stdout) == EOF) {
		ret = EXIT_OUTPUT;
		goto cleanup;
	}
	ret = res.n ? EXIT_GATE : EXIT_OK;
	if (res.n)
		gate_result_write(stderr, &res);
cleanup:
	gate_result_free(&res);
	diff_free(d);
	report_free(a);
	report_free(b);
	return ret;
}

int cmd_diff(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "max-regression", required_argument, NULL, OPT_MAX_REGRESSION },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ci_gate g;
	struct diff_job j;
	int c, ret;

	ci_gate_init(&g);
	memset(&j, 0, sizeof(j));
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_MAX_REGRESSION:
			if (ci_gate_set_max_regression(&g, optarg) < 0)
				return EXIT_USAGE;
			break;
		case 'h':
			usage_diff(stdout);
			return EXIT_OK;
		default:
			usage_diff(stderr);
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr, "loopspy: cannot diff: expected two reports, got %d\nhint: loopspy diff main.json pr.json\n",
			argc - optind);
		return EXIT_USAGE;
	}
	j.max_regression = g.max_regression;
	ret = report_text_read(argv[optind], &j.a);
	if (ret == EXIT_OK)
		ret = report_text_read(argv[optind + 1], &j.b);
	if (ret == EXIT_OK)
		ret = privs_drop_run(diff_run, &j);
	free(j.a.text);
	free(j.b.text);
	return ret;
}
