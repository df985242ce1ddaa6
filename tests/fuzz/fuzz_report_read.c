/* libFuzzer target: the report JSON reader and everything that consumes
 * what it returns, as `loopspy report`, `diff` and the CI gate do: sites,
 * the gate, a diff against the report itself, every renderer, and printing
 * the document back. The input is the report text; a first line starting
 * with "#rules " replaces the default --fail-on rules, so the rule parser
 * is fuzzed too. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diff.h"
#include "gate.h"
#include "render.h"
#include "report_read.h"

static const char default_rules[] =
	"stall>100ms,blocking_syscall,lag_p99>20ms,gil_contention>5%,lock_contention,gc_pause>1ms,busy>50%";

static FILE *sink;

static void renders_run(const struct report *r, const struct report_sites *sites, const struct gate *g,
			const struct gate_result *res, const char *root)
{
	struct render_ctx c;
	int f;

	memset(&c, 0, sizeof(c));
	c.r = r;
	c.sites = sites;
	c.gate = g;
	c.verdict = res;
	c.baseline = "base.json";
	c.source_root = root;
	c.loopspy_version = "fuzz";
	for (f = 0; f < RENDER_NFORMATS; f++)
		(void)render_report(sink, (enum render_format)f, &c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data, *rules = default_rules;
	char err[256], *rules_buf = NULL, *printed;
	struct report *r = NULL;
	struct report_sites sites;
	struct gate *g = NULL;
	struct gate_result res;
	struct diff *d = NULL;
	size_t len = size;

	if (!sink)
		sink = fopen("/dev/null", "w");
	if (!sink)
		return 0;
	if (size > 7 && !memcmp(data, "#rules ", 7)) {
		const uint8_t *nl = memchr(data, '\n', size);

		if (!nl)
			return 0;
		rules_buf = strndup(text + 7, (size_t)(nl - data) - 7);
		if (!rules_buf)
			return 0;
		rules = rules_buf;
		text = (const char *)nl + 1;
		len = size - (size_t)(nl + 1 - data);
	}
	if (gate_parse(rules, &g, err, sizeof(err)) < 0)
		g = NULL;
	if (report_parse(text, len, &r, err, sizeof(err)) < 0) {
		if (!err[0])
			__builtin_trap(); /* a failure always says why */
		goto cleanup;
	}
	memset(&sites, 0, sizeof(sites));
	memset(&res, 0, sizeof(res));
	if (report_sites_build(r, &sites) == 0) {
		if (gate_evaluate(g, r, &sites, NULL, &res) == 0)
			renders_run(r, &sites, g, &res, "/srv");
		gate_result_free(&res);
		renders_run(r, &sites, NULL, NULL, NULL);
	}
	report_sites_free(&sites);
	/* the report against itself: every site matches, nothing is new */
	if (diff_compute(r, r, 10, &d) == 0) {
		memset(&res, 0, sizeof(res));
		diff_write(sink, d);
		if (gate_evaluate(g, r, &d->sb, d, &res) == 0)
			renders_run(r, &d->sb, g, &res, "/");
		gate_result_free(&res);
		diff_free(d);
	}
	printed = report_print(r);
	free(printed);
cleanup:
	report_free(r);
	gate_free(g);
	free(rules_buf);
	return 0;
}
