#include "report.h"

#include <stdlib.h>
#include <string.h>

static void dur_fmt(char *buf, size_t n, uint64_t ns)
{
	if (ns >= 1000000000ULL)
		snprintf(buf, n, "%.2f s", (double)ns / 1e9);
	else if (ns >= 1000000ULL)
		snprintf(buf, n, "%.0f ms", (double)ns / 1e6);
	else
		snprintf(buf, n, "%.2f ms", (double)ns / 1e6);
}

static const char *loop_name(const struct model *m, uint32_t tid)
{
	size_t i;

	for (i = 0; i < model_nloops(m); i++)
		if (model_loop_at(m, i)->tid == tid)
			return model_loop_at(m, i)->name;
	return "?";
}

/* Python's own library and installed packages, as opposed to the user's
 * code, which is what a reader looks for first. */
static int file_is_library(const char *file)
{
	return !file || strstr(file, "/lib/python3") || strstr(file, "/site-packages/") ||
	       strstr(file, "/dist-packages/") || !strncmp(file, "<frozen", 7);
}

static void frame_write(FILE *out, const struct mframe *f, const char *note)
{
	fprintf(out, "    %-24s %s", f->function ? f->function : "?", f->file ? f->file : "?");
	if (f->line >= 0)
		fprintf(out, ":%d", f->line);
	else
		fputs(":?", out);
	if (note)
		fprintf(out, "   %s", note);
	fputc('\n', out);
}

/* The innermost frames, and always the innermost frame of the user's code
 * (library frames of e.g. requests can be a dozen deep). */
static void stack_write(FILE *out, const struct mstack *s, int max, const char *leaf_note)
{
	int i, user = -1;

	if (!s->n) {
		fprintf(out, "    (no Python stack)\n");
		return;
	}
	for (i = 0; i < s->n && user < 0; i++)
		if (!file_is_library(s->f[i].file))
			user = i;
	for (i = 0; i < s->n && i < max; i++)
		frame_write(out, &s->f[i], i == 0 ? leaf_note : NULL);
	if (user >= max) {
		if (user > max)
			fprintf(out, "    ... %d library frames\n", user - max);
		frame_write(out, &s->f[user], NULL);
		if (user + 1 < s->n)
			frame_write(out, &s->f[user + 1], NULL);
		i = user + 2;
	}
	if (s->n > i)
		fprintf(out, "    ... %d more frames\n", s->n - i);
}

void report_summary_write(FILE *out, const struct model *m, const struct report_meta *meta)
{
	const struct finding **sorted = NULL;
	char a[32], b[32], c[32], d[32];
	size_t i, n;

	dur_fmt(a, sizeof(a), meta->duration_ns);
	fprintf(out, "\nloopspy: %s of pid %d (%s), %zu event loop%s, %llu events, %llu dropped\n",
		a, meta->pid, meta->command ? meta->command : "?", model_nloops(m),
		model_nloops(m) == 1 ? "" : "s", (unsigned long long)meta->events,
		(unsigned long long)meta->dropped_events);
	if (!meta->stacks)
		fprintf(out, "loopspy: no Python stacks: %s\n", meta->stacks_reason ? meta->stacks_reason : "?");
	for (i = 0; i < model_nloops(m); i++) {
		const struct loop_info *l = model_loop_at(m, i);

		dur_fmt(a, sizeof(a), loop_percentile_ns(l, 50));
		dur_fmt(b, sizeof(b), loop_percentile_ns(l, 99));
		dur_fmt(c, sizeof(c), l->max_ns);
		fprintf(out, "loop  tid %u \"%s\"  %llu iterations  lag p50 %s  p99 %s  max %s  busy %.0f%%  stalls %llu\n",
			l->tid, l->name, (unsigned long long)l->iterations, a, b, c,
			meta->duration_ns ? 100.0 * (double)l->busy_ns / (double)meta->duration_ns : 0.0,
			(unsigned long long)l->stalls);
	}
	n = model_findings_sorted(m, &sorted);
	if (!n)
		fprintf(out, "no findings\n");
	for (i = 0; i < n; i++) {
		const struct finding *f = sorted[i];

		dur_fmt(a, sizeof(a), f->total_ns);
		dur_fmt(b, sizeof(b), f->max_ns);
		if (f->kind == FINDING_LOCK_CONTENTION || f->kind == FINDING_GIL_CONTENTION) {
			int k;

			if (f->kind == FINDING_GIL_CONTENTION)
				fprintf(out, "\ngil_contention  loop %s waited for the GIL %llu times, %s total, max %s\n",
					loop_name(m, f->tid), (unsigned long long)f->count, a, b);
			else
				fprintf(out, "\nlock_contention  loop %s  %s 0x%llx  x%llu  total %s  max %s\n",
					loop_name(m, f->tid), f->lock_kind, (unsigned long long)f->lock_addr,
					(unsigned long long)f->count, a, b);
			fprintf(out, "  waiter:\n");
			stack_write(out, &f->stack, 4, NULL);
			for (k = 0; k < f->nholders; k++) {
				const char *hn = model_thread_name(m, f->holders[k].tid);

				fprintf(out, "  holder: tid %u \"%s\" %.0f%% of the wait\n", f->holders[k].tid,
					hn ? hn : "?", f->total_ns ? 100.0 * (double)f->holders[k].wait_ns / (double)f->total_ns : 0.0);
				stack_write(out, &f->holders[k].stack, 3, NULL);
			}
		} else if (f->kind == FINDING_GC_PAUSE) {
			fprintf(out, "\ngc_pause  loop %s  x%llu  total %s  max %s", loop_name(m, f->tid),
				(unsigned long long)f->count, a, b);
			if (f->generation >= 0)
				fprintf(out, "  (generation %d)", f->generation);
			fputc('\n', out);
			stack_write(out, &f->stack, 6, NULL);
		} else if (f->kind == FINDING_BLOCKING_SYSCALL) {
			fprintf(out, "\nblocking_syscall  %s  x%llu  total %s  max %s  loop %s%s%s\n",
				report_syscall_label(f->nr), (unsigned long long)f->count, a, b,
				loop_name(m, f->tid), f->fd_kind[0] ? "  fd " : "", f->fd_kind);
			stack_write(out, &f->stack, 8, NULL);
		} else {
			char note[48];
			int k;

			dur_fmt(c, sizeof(c), f->on_cpu_ns);
			dur_fmt(d, sizeof(d), f->blocked_ns);
			fprintf(out, "\nstall  x%llu  total %s  max %s  loop %s  (on-CPU %s, blocked %s, ",
				(unsigned long long)f->count, a, b, loop_name(m, f->tid), c, d);
			dur_fmt(c, sizeof(c), f->runnable_ns);
			fprintf(out, "runnable %s", c);
			if (f->gc_ns) {
				dur_fmt(c, sizeof(c), f->gc_ns);
				fprintf(out, ", gc %s", c);
			}
			if (f->lock_wait_ns) {
				dur_fmt(c, sizeof(c), f->lock_wait_ns);
				fprintf(out, ", lock wait %s", c);
			}
			if (f->gil_wait_ns) {
				dur_fmt(c, sizeof(c), f->gil_wait_ns);
				fprintf(out, ", GIL wait %s", c);
			}
			fprintf(out, ")\n");
			for (k = 0; k < f->nsys; k++) {
				dur_fmt(c, sizeof(c), f->sys[k].blocked_ns);
				fprintf(out, "    in %s: blocked %s in %llu sleeps, %llu samples\n",
					report_syscall_label(f->sys[k].nr), c,
					(unsigned long long)f->sys[k].count, (unsigned long long)f->sys[k].samples);
			}
			note[0] = '\0';
			if (f->samples)
				snprintf(note, sizeof(note), "(%.0f%% of samples)",
					 100.0 * (double)f->dominant_samples / (double)f->samples);
			stack_write(out, &f->stack, 8, note[0] ? note : NULL);
		}
	}
	free(sorted);
}
