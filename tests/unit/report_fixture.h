/* Reading tests/fixtures/ and tests/golden/ from unit tests: files are
 * found under $LOOPSPY_ROOT (set by `make unit`), else the current
 * directory. Include after <cmocka.h>. */
#ifndef LOOPSPY_TEST_REPORT_FIXTURE_H
#define LOOPSPY_TEST_REPORT_FIXTURE_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report_read.h"

static inline char *repo_path(const char *rel)
{
	const char *root = getenv("LOOPSPY_ROOT");
	char *p = NULL;

	if (asprintf(&p, "%s/%s", root && *root ? root : ".", rel) < 0)
		fail_msg("out of memory");
	return p;
}

/* Whole file, NUL-terminated; NULL when missing. */
static inline char *file_read(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t r;
	size_t cap = 0, n = 0;

	if (!f)
		return NULL;
	for (;;) {
		if (n + 4096 + 1 > cap) {
			cap = (n + 4096 + 1) * 2;
			buf = realloc(buf, cap);
			if (!buf)
				fail_msg("out of memory");
		}
		r = fread(buf + n, 1, cap - n - 1, f);
		n += r;
		if (r == 0)
			break;
	}
	fclose(f);
	buf[n] = 0;
	if (len)
		*len = n;
	return buf;
}

static inline char *fixture_text(const char *name, size_t *len)
{
	char rel[256], *path, *text;

	snprintf(rel, sizeof(rel), "tests/fixtures/%s", name);
	path = repo_path(rel);
	text = file_read(path, len);
	if (!text)
		fail_msg("cannot read fixture %s (set LOOPSPY_ROOT to the repository)", path);
	free(path);
	return text;
}

static inline struct report *fixture_report(const char *name)
{
	size_t len = 0;
	char *text = fixture_text(name, &len), err[512];
	struct report *r = NULL;

	if (report_parse(text, len, &r, err, sizeof(err)) < 0)
		fail_msg("fixture %s does not parse: %s", name, err);
	free(text);
	return r;
}

#endif
