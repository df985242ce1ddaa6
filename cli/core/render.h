/* Renderers of a report read back from JSON (`loopspy report`): Markdown,
 * HTML, JUnit XML, SARIF 2.1.0, folded stacks, Chrome trace events, JSON.
 * Pure: they write to a FILE and read nothing else. */
#ifndef LOOPSPY_RENDER_H
#define LOOPSPY_RENDER_H
#include <stdio.h>
#include "gate.h"
#include "report_read.h"

enum render_format {
	RENDER_MD = 0,
	RENDER_HTML,
	RENDER_JUNIT,
	RENDER_SARIF,
	RENDER_FOLDED,
	RENDER_TRACE,
	RENDER_JSON,
	RENDER_NFORMATS,
};

struct render_ctx {
	const struct report *r;
	const struct report_sites *sites;
	const struct gate *gate;           /* NULL: no --fail-on */
	const struct gate_result *verdict; /* NULL: nothing evaluated (no rules, no baseline) */
	const char *baseline;              /* baseline file name, or NULL */
	const char *source_root;           /* paths under it are shown relative; NULL: none */
	const char *loopspy_version;       /* of the renderer (SARIF tool version) */
};

/* "md", "markdown", "html", "junit", "sarif", "folded", "trace", "json" */
int render_format_parse(const char *name, enum render_format *out);
/* From an output file name: .md .html/.htm .xml .sarif .folded
 * .trace.json .json; -1 when the extension says nothing. */
int render_format_guess(const char *path, enum render_format *out);
const char *render_format_name(enum render_format f);

/* 0, or -1 on a write error or when out of memory. */
int render_report(FILE *out, enum render_format f, const struct render_ctx *c);

int render_md(FILE *out, const struct render_ctx *c);
int render_html(FILE *out, const struct render_ctx *c);
int render_junit(FILE *out, const struct render_ctx *c);
int render_sarif(FILE *out, const struct render_ctx *c);
int render_folded(FILE *out, const struct render_ctx *c);
int render_trace(FILE *out, const struct render_ctx *c);

/* Shared helpers (render_util.c). */

/* file relative to c->source_root when under it, else file itself. */
const char *render_path(const struct render_ctx *c, const char *file);
/* "0.38 ms", "157 ms", "2.75 s" */
void render_dur(char *buf, size_t n, double ms);
/* "refresh_cache (app/handlers.py:17)", with render_path */
void render_frame_label(char *buf, size_t n, const struct render_ctx *c, const struct rframe *f);
/* "file:line" or "file:?", with render_path */
void render_file_line(char *buf, size_t n, const struct render_ctx *c, const struct rframe *f);
/* XML/HTML text and attribute escaping; characters XML 1.0 forbids become
 * U+FFFD. */
void render_xml_text(FILE *out, const char *s);
/* Prints a cJSON document followed by a newline and deletes it; -1 when
 * json is NULL (a failed allocation) or printing fails. */
struct cJSON;
int render_cjson_write(FILE *out, struct cJSON *json);

#endif
