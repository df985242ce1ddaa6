#include "render.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const format_names[RENDER_NFORMATS] = {
	[RENDER_MD] = "md",
	[RENDER_HTML] = "html",
	[RENDER_JUNIT] = "junit",
	[RENDER_SARIF] = "sarif",
	[RENDER_FOLDED] = "folded",
	[RENDER_TRACE] = "trace",
	[RENDER_JSON] = "json",
};

int render_format_parse(const char *name, enum render_format *out)
{
	int i;

	if (!strcmp(name, "markdown")) {
		*out = RENDER_MD;
		return 0;
	}
	for (i = 0; i < RENDER_NFORMATS; i++) {
		if (!strcmp(name, format_names[i])) {
			*out = (enum render_format)i;
			return 0;
		}
	}
	return -1;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n > m && !strcasecmp(s + n - m, suffix);
}

int render_format_guess(const char *path, enum render_format *out)
{
	static const struct {
		const char *ext;
		enum render_format f;
	} exts[] = {
		/* .trace.json before .json */
		{ ".trace.json", RENDER_TRACE }, { ".md", RENDER_MD }, { ".markdown", RENDER_MD },
		{ ".html", RENDER_HTML }, { ".htm", RENDER_HTML }, { ".xml", RENDER_JUNIT },
		{ ".sarif", RENDER_SARIF }, { ".sarif.json", RENDER_SARIF }, { ".folded", RENDER_FOLDED },
		{ ".json", RENDER_JSON },
	};
	size_t i;

	for (i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
		if (ends_with(path, exts[i].ext)) {
			*out = exts[i].f;
			return 0;
		}
	}
	return -1;
}

const char *render_format_name(enum render_format f)
{
	return f < RENDER_NFORMATS ? format_names[f] : "?";
}

static int render_json(FILE *out, const struct render_ctx *c)
{
	char *s = report_print(c->r);
	int ret;

	if (!s)
		return -1;
	ret = fputs(s, out) < 0 || fputc('\n', out) == EOF ? -1 : 0;
	free(s);
	return ret;
}

int render_report(FILE *out, enum render_format f, const struct render_ctx *c)
{
	int ret;

	switch (f) {
	case RENDER_MD:
		ret = render_md(out, c);
		break;
	case RENDER_HTML:
		ret = render_html(out, c);
		break;
	case RENDER_JUNIT:
		ret = render_junit(out, c);
		break;
	case RENDER_SARIF:
		ret = render_sarif(out, c);
		break;
	case RENDER_FOLDED:
		ret = render_folded(out, c);
		break;
	case RENDER_TRACE:
		ret = render_trace(out, c);
		break;
	case RENDER_JSON:
		ret = render_json(out, c);
		break;
	default:
		ret = -1;
	}
	if (fflush(out) == EOF || ferror(out))
		ret = -1;
	return ret;
}

const char *render_path(const struct render_ctx *c, const char *file)
{
	size_t n;

	if (!c->source_root || !file)
		return file ? file : "?";
	n = strlen(c->source_root);
	if (n && !strncmp(file, c->source_root, n) && file[n] == '/' && file[n + 1])
		return file + n + 1;
	return file;
}

void render_dur(char *buf, size_t n, double ms)
{
	if (ms >= 1000)
		snprintf(buf, n, "%.2f s", ms / 1000);
	else if (ms >= 10)
		snprintf(buf, n, "%.0f ms", ms);
	else
		snprintf(buf, n, "%.2f ms", ms);
}

void render_file_line(char *buf, size_t n, const struct render_ctx *c, const struct rframe *f)
{
	if (f->line >= 0)
		snprintf(buf, n, "%s:%d", render_path(c, f->file), f->line);
	else
		snprintf(buf, n, "%s:?", render_path(c, f->file));
}

void render_frame_label(char *buf, size_t n, const struct render_ctx *c, const struct rframe *f)
{
	char fl[1024];

	render_file_line(fl, sizeof(fl), c, f);
	snprintf(buf, n, "%s (%s)", f->function, fl);
}

void render_xml_text(FILE *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");

	for (; *p; p++) {
		switch (*p) {
		case '&':
			fputs("&amp;", out);
			break;
		case '<':
			fputs("&lt;", out);
			break;
		case '>':
			fputs("&gt;", out);
			break;
		case '"':
			fputs("&quot;", out);
			break;
		case '\'':
			fputs("&#39;", out);
			break;
		case '\t':
		case '\n':
		case '\r':
			fputc(*p, out);
			break;
		default:
			if (*p < 0x20 || *p == 0x7f) {
				fputs("\xef\xbf\xbd", out);
			} else if (p[0] == 0xef && p[1] == 0xbf && (p[2] == 0xbe || p[2] == 0xbf)) {
				/* U+FFFE, U+FFFF */
				fputs("\xef\xbf\xbd", out);
				p += 2;
			} else {
				fputc(*p, out);
			}
		}
	}
}

int render_cjson_write(FILE *out, struct cJSON *json)
{
	char *s = json ? cJSON_Print(json) : NULL;
	int ret = -1;

	if (s && fputs(s, out) >= 0 && fputc('\n', out) != EOF)
		ret = 0;
	free(s);
	cJSON_Delete(json);
	return ret;
}
