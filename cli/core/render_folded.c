/* Folded stacks for flamegraph.pl, speedscope, inferno: one line per
 * distinct stack, frames outermost first separated by ';', then the weight.
 * Every finding contributes its stack under a "[loop THREAD]" root with a
 * "[kind syscall]" leaf, weighted by its total time in microseconds. */
#include "render.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct fline {
	char *stack;
	unsigned long long us;
};

static int fline_cmp(const void *a, const void *b)
{
	return strcmp(((const struct fline *)a)->stack, ((const struct fline *)b)->stack);
}

/* Appends s to the stream with ';' and control characters replaced. */
static void frame_put(FILE *out, const char *s)
{
	for (; *s; s++)
		fputc(*s == ';' ? ',' : ((unsigned char)*s < 0x20 || *s == 0x7f) ? '?' : *s, out);
}

static char *stack_string(const struct render_ctx *c, const struct rfinding *f)
{
	char *buf = NULL, label[1200];
	size_t len = 0, i;
	FILE *m = open_memstream(&buf, &len);

	if (!m)
		return NULL;
	fputs("[loop ", m);
	frame_put(m, f->thread_name);
	fputc(']', m);
	for (i = f->nstack; i-- > 0;) {
		render_frame_label(label, sizeof(label), c, &f->stack[i]);
		fputc(';', m);
		frame_put(m, label);
	}
	fputs(";[", m);
	frame_put(m, f->kind);
	if (f->syscall) {
		fputc(' ', m);
		frame_put(m, f->syscall);
	}
	fputc(']', m);
	if (fclose(m) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

int render_folded(FILE *out, const struct render_ctx *c)
{
	struct fline *v = calloc(c->r->nfindings + 1, sizeof(*v));
	size_t i, n = 0;
	int ret = -1;

	if (!v)
		return -1;
	for (i = 0; i < c->r->nfindings; i++) {
		const struct rfinding *f = &c->r->findings[i];
		unsigned long long us = (unsigned long long)llround(f->total_ms * 1000);

		if (!us)
			continue;
		v[n].stack = stack_string(c, f);
		if (!v[n].stack)
			goto cleanup;
		v[n++].us = us;
	}
	qsort(v, n, sizeof(*v), fline_cmp);
	for (i = 0; i < n; i++) {
		unsigned long long us = v[i].us;

		/* identical stacks (e.g. the same path on two loops' names) merge */
		while (i + 1 < n && !strcmp(v[i].stack, v[i + 1].stack))
			us += v[++i].us;
		fprintf(out, "%s %llu\n", v[i].stack, us);
	}
	ret = ferror(out) ? -1 : 0;
cleanup:
	for (i = 0; i < n; i++)
		free(v[i].stack);
	free(v);
	return ret;
}
