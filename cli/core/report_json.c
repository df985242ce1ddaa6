#include "report.h"
#include "syscalls.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>

const char *report_syscall_label(int nr)
{
	const char *n;

	if (nr == -2)
		return "gil";
	if (nr < 0)
		return "(no syscall)";
	n = syscall_name(nr);
	return n ? n : "unknown";
}

static double ms(uint64_t ns)
{
	/* 3 decimals: stable output, sub-ms precision kept */
	return (double)(int64_t)(ns / 1000) / 1000.0;
}

static const char *thread_name(const struct model *m, uint32_t tid)
{
	size_t i;

	for (i = 0; i < model_nloops(m); i++)
		if (model_loop_at(m, i)->tid == tid)
			return model_loop_at(m, i)->name;
	return "";
}

static cJSON *stack_json(const struct mstack *s)
{
	cJSON *arr = cJSON_CreateArray();
	int i;

	for (i = 0; arr && i < s->n; i++) {
		cJSON *f = cJSON_CreateObject();

		cJSON_AddStringToObject(f, "function", s->f[i].function ? s->f[i].function : "?");
		cJSON_AddStringToObject(f, "file", s->f[i].file ? s->f[i].file : "?");
		if (s->f[i].line >= 0)
			cJSON_AddNumberToObject(f, "line", s->f[i].line);
		else
			cJSON_AddNullToObject(f, "line");
		cJSON_AddItemToArray(arr, f);
	}
	return arr;
}

static cJSON *holders_json(const struct model *m, const struct finding *f)
{
	cJSON *arr = cJSON_CreateArray();
	int order[MODEL_MAX_HOLDERS], i, j;

	for (i = 0; i < f->nholders; i++)
		order[i] = i;
	/* largest share first, stable */
	for (i = 1; i < f->nholders; i++)
		for (j = i; j > 0 && f->holders[order[j]].wait_ns > f->holders[order[j - 1]].wait_ns; j--) {
			int t = order[j];

			order[j] = order[j - 1];
			order[j - 1] = t;
		}
	for (i = 0; arr && i < f->nholders; i++) {
		const struct finding_holder *h = &f->holders[order[i]];
		const char *name = model_thread_name(m, h->tid);
		cJSON *o = cJSON_CreateObject();

		cJSON_AddNumberToObject(o, "tid", h->tid);
		cJSON_AddStringToObject(o, "thread_name", name ? name : "");
		cJSON_AddNumberToObject(o, "waits", (double)h->waits);
		cJSON_AddNumberToObject(o, "wait_ms", ms(h->wait_ns));
		cJSON_AddNumberToObject(o, "share", f->total_ns ?
					(double)(int)(1000.0 * (double)h->wait_ns / (double)f->total_ns) / 1000.0 : 0);
		cJSON_AddItemToObject(o, "python_stack", stack_json(&h->stack));
		cJSON_AddItemToArray(arr, o);
	}
	return arr;
}

static cJSON *locks_json(const struct model *m)
{
	cJSON *arr = cJSON_CreateArray();
	size_t i;
	int k;

	for (i = 0; arr && i < model_nlocks(m); i++) {
		const struct lock_info *l = model_lock_at(m, i);
		cJSON *o, *w, *h;
		char addr[24];

		/* a wait nobody else in the process ended is idling (timeouts,
		 * a parked worker woken from outside): not contention */
		if (!l->woken_by_peer)
			continue;
		o = cJSON_CreateObject();
		snprintf(addr, sizeof(addr), "0x%llx", (unsigned long long)l->addr);
		cJSON_AddStringToObject(o, "address", addr);
		cJSON_AddStringToObject(o, "kind", l->kind);
		cJSON_AddNumberToObject(o, "waits", (double)l->waits);
		cJSON_AddNumberToObject(o, "woken_by_peer", (double)l->woken_by_peer);
		cJSON_AddNumberToObject(o, "total_ms", ms(l->total_ns));
		cJSON_AddNumberToObject(o, "max_ms", ms(l->max_ns));
		w = cJSON_AddArrayToObject(o, "waiters");
		h = cJSON_AddArrayToObject(o, "holders");
		for (k = 0; k < l->nparties; k++) {
			const struct lock_party *p = &l->parties[k];
			const char *wn = model_thread_name(m, p->waiter), *hn = model_thread_name(m, p->waker);
			cJSON *e = cJSON_CreateObject();

			cJSON_AddNumberToObject(e, "waiter_tid", p->waiter);
			cJSON_AddStringToObject(e, "waiter_name", wn ? wn : "");
			if (p->waker) {
				cJSON_AddNumberToObject(e, "holder_tid", p->waker);
				cJSON_AddStringToObject(e, "holder_name", hn ? hn : "");
			} else {
				cJSON_AddNullToObject(e, "holder_tid");
			}
			cJSON_AddNumberToObject(e, "waits", (double)p->waits);
			cJSON_AddNumberToObject(e, "total_ms", ms(p->total_ns));
			cJSON_AddItemToArray(p->waker ? h : w, e);
		}
		cJSON_AddItemToArray(arr, o);
	}
	return arr;
}

/* The loop-lag histogram coarsened to powers of two: bin 0 is [0, 16 us),
 * bin k is [2^(k+3), 2^(k+4)) us — the log-linear buckets (16 exact ones,
 * then 8 per power of two, bpf/loopspy.h) merged 8 by 8. From bin 0 to the
 * last non-empty one. */
static cJSON *lag_histogram_json(const struct loop_info *l)
{
	uint64_t bins[1 + (LS_HIST_BUCKETS - 16) / 8 + 1] = { 0 };
	cJSON *arr = cJSON_CreateArray();
	int b, k, last = -1;

	for (b = 0; b < LS_HIST_BUCKETS; b++) {
		k = b < 16 ? 0 : 1 + (b - 16) / 8;
		bins[k] += l->hist[b];
		if (l->hist[b])
			last = k;
	}
	for (k = 0; arr && k <= last; k++) {
		cJSON *o = cJSON_CreateObject();

		cJSON_AddNumberToObject(o, "lt_ms", (double)(1ULL << (k + 4)) / 1000.0);
		cJSON_AddNumberToObject(o, "count", (double)bins[k]);
		cJSON_AddItemToArray(arr, o);
	}
	return arr;
}

static cJSON *finding_json(const struct model *m, const struct finding *f)
{
	cJSON *o = cJSON_CreateObject();
	int i;

	cJSON_AddStringToObject(o, "kind", finding_kind_name(f->kind));
	cJSON_AddNumberToObject(o, "tid", f->tid);
	cJSON_AddStringToObject(o, "thread_name", thread_name(m, f->tid));
	if (f->kind == FINDING_BLOCKING_SYSCALL || f->kind == FINDING_LOCK_CONTENTION ||
	    f->kind == FINDING_GIL_CONTENTION)
		cJSON_AddStringToObject(o, "syscall", report_syscall_label(f->nr));
	else
		cJSON_AddNullToObject(o, "syscall");
	cJSON_AddNumberToObject(o, "count", (double)f->count);
	cJSON_AddNumberToObject(o, "total_ms", ms(f->total_ns));
	cJSON_AddNumberToObject(o, "max_ms", ms(f->max_ns));
	cJSON_AddItemToObject(o, "python_stack", stack_json(&f->stack));
	if (f->kind == FINDING_LOCK_CONTENTION || f->kind == FINDING_GIL_CONTENTION) {
		char addr[24];

		snprintf(addr, sizeof(addr), "0x%llx", (unsigned long long)f->lock_addr);
		cJSON_AddStringToObject(o, "lock_kind", f->lock_kind);
		cJSON_AddStringToObject(o, "lock_address", addr);
		cJSON_AddItemToObject(o, "holders", holders_json(m, f));
		cJSON_AddNumberToObject(o, "unattributed_ms", ms(f->unattributed_ns));
		cJSON_AddNumberToObject(o, "stalls", (double)f->stalls);
	} else if (f->kind == FINDING_GC_PAUSE) {
		if (f->generation >= 0)
			cJSON_AddNumberToObject(o, "generation", f->generation);
		else
			cJSON_AddNullToObject(o, "generation");
		cJSON_AddNumberToObject(o, "stalls", (double)f->stalls);
	} else if (f->kind == FINDING_BLOCKING_SYSCALL) {
		if (f->fd_kind[0])
			cJSON_AddStringToObject(o, "fd_kind", f->fd_kind);
		else
			cJSON_AddNullToObject(o, "fd_kind");
		cJSON_AddNumberToObject(o, "stalls", (double)f->stalls);
	} else {
		cJSON *b = cJSON_AddObjectToObject(o, "breakdown");
		cJSON *sys = cJSON_CreateArray();

		cJSON_AddNumberToObject(b, "on_cpu_ms", ms(f->on_cpu_ns));
		cJSON_AddNumberToObject(b, "blocked_ms", ms(f->blocked_ns));
		cJSON_AddNumberToObject(b, "runnable_ms", ms(f->runnable_ns));
		cJSON_AddNumberToObject(b, "preempted_ms", ms(f->preempt_ns));
		cJSON_AddNumberToObject(b, "gc_ms", ms(f->gc_ns));
		cJSON_AddNumberToObject(b, "lock_wait_ms", ms(f->lock_wait_ns));
		cJSON_AddNumberToObject(b, "gil_wait_ms", ms(f->gil_wait_ns));
		for (i = 0; i < f->nsys; i++) {
			cJSON *s = cJSON_CreateObject();

			cJSON_AddStringToObject(s, "syscall", report_syscall_label(f->sys[i].nr));
			cJSON_AddNumberToObject(s, "blocked_ms", ms(f->sys[i].blocked_ns));
			cJSON_AddNumberToObject(s, "count", (double)f->sys[i].count);
			cJSON_AddNumberToObject(s, "samples", (double)f->sys[i].samples);
			cJSON_AddItemToArray(sys, s);
		}
		cJSON_AddItemToObject(b, "syscalls", sys);
		cJSON_AddNumberToObject(o, "samples", (double)f->samples);
		if (f->samples)
			cJSON_AddNumberToObject(o, "dominant_share",
						(double)(int)(1000.0 * (double)f->dominant_samples / (double)f->samples) / 1000.0);
		else
			cJSON_AddNullToObject(o, "dominant_share");
	}
	return o;
}

char *report_json_render(const struct model *m, const struct report_meta *meta)
{
	cJSON *root = cJSON_CreateObject(), *t, *rt, *loops, *arr;
	const struct finding **sorted = NULL;
	size_t i, n;
	char *out = NULL;

	if (!root)
		return NULL;
	cJSON_AddStringToObject(root, "schema", REPORT_SCHEMA);
	cJSON_AddStringToObject(root, "loopspy_version", meta->version ? meta->version : "");
	t = cJSON_AddObjectToObject(root, "target");
	cJSON_AddNumberToObject(t, "pid", meta->pid);
	cJSON_AddStringToObject(t, "command", meta->command ? meta->command : "");
	rt = cJSON_AddObjectToObject(t, "runtime");
	cJSON_AddStringToObject(rt, "name", meta->runtime_name ? meta->runtime_name : "unknown");
	if (meta->runtime_version)
		cJSON_AddStringToObject(rt, "version", meta->runtime_version);
	else
		cJSON_AddNullToObject(rt, "version");
	if (meta->runtime_path)
		cJSON_AddStringToObject(rt, "path", meta->runtime_path);
	cJSON_AddBoolToObject(rt, "python_stacks", meta->stacks);
	if (!meta->stacks)
		cJSON_AddStringToObject(rt, "python_stacks_unavailable",
					meta->stacks_reason ? meta->stacks_reason : "unknown");
	cJSON_AddStringToObject(rt, "gc_timing", meta->gc_timing ? meta->gc_timing : "unavailable");
	if (meta->exit_status >= 0)
		cJSON_AddNumberToObject(t, "exit_status", meta->exit_status);
	cJSON_AddStringToObject(root, "started_at", meta->started_at ? meta->started_at : "");
	cJSON_AddNumberToObject(root, "duration_ms", ms(meta->duration_ns));
	cJSON_AddStringToObject(root, "end_reason", meta->end_reason ? meta->end_reason : "");
	cJSON_AddNumberToObject(root, "dropped_events", (double)meta->dropped_events);
	cJSON_AddNumberToObject(root, "events", (double)meta->events);
	{
		cJSON *th = cJSON_AddObjectToObject(root, "thresholds");

		cJSON_AddNumberToObject(th, "stall_ms", ms(model_cfg(m)->stall_ns));
		cJSON_AddNumberToObject(th, "block_ms", ms(model_cfg(m)->block_ns));
	}
	loops = cJSON_AddArrayToObject(root, "loops");
	for (i = 0; i < model_nloops(m); i++) {
		const struct loop_info *l = model_loop_at(m, i);
		cJSON *o = cJSON_CreateObject(), *lag;
		uint64_t window = meta->duration_ns;

		cJSON_AddNumberToObject(o, "tid", l->tid);
		cJSON_AddStringToObject(o, "thread_name", l->name);
		cJSON_AddNumberToObject(o, "epoll_fd", l->epfd);
		cJSON_AddNumberToObject(o, "iterations", (double)l->iterations);
		cJSON_AddNumberToObject(o, "stalls", (double)l->stalls);
		cJSON_AddNumberToObject(o, "cpu_starved_stalls", (double)l->starved_stalls);
		lag = cJSON_AddObjectToObject(o, "lag_ms");
		cJSON_AddNumberToObject(lag, "p50", ms(loop_percentile_ns(l, 50)));
		cJSON_AddNumberToObject(lag, "p99", ms(loop_percentile_ns(l, 99)));
		cJSON_AddNumberToObject(lag, "max", ms(l->max_ns));
		cJSON_AddNumberToObject(o, "busy_ratio",
					window ? (double)(int)(1000.0 * (double)l->busy_ns / (double)window) / 1000.0 : 0);
		cJSON_AddNumberToObject(o, "gil_wait_ms", ms(l->gil_wait_ns));
		cJSON_AddItemToObject(o, "lag_histogram", lag_histogram_json(l));
		cJSON_AddItemToArray(loops, o);
	}
	{
		const struct timeline_ev *tl;
		uint64_t dropped;
		size_t k, ntl = model_timeline(m, &tl, &dropped);
		cJSON *to = cJSON_AddObjectToObject(root, "timeline"), *ev;
		static const char *const kinds[] = { "stall", "blocking_syscall", "gil_wait", "lock_wait", "gc" };

		cJSON_AddNumberToObject(to, "dropped", (double)dropped);
		ev = cJSON_AddArrayToObject(to, "events");
		for (k = 0; k < ntl; k++) {
			cJSON *o = cJSON_CreateObject();
			uint64_t t0 = model_cfg(m)->t0_ns;

			cJSON_AddNumberToObject(o, "tid", tl[k].tid);
			cJSON_AddStringToObject(o, "kind", kinds[tl[k].kind]);
			cJSON_AddNumberToObject(o, "start_ms", tl[k].start > t0 ? ms(tl[k].start - t0) : 0);
			cJSON_AddNumberToObject(o, "dur_ms", ms(tl[k].dur));
			if (tl[k].kind == TL_BLOCKING)
				cJSON_AddStringToObject(o, "syscall", report_syscall_label(tl[k].nr));
			if (tl[k].stack && tl[k].stack->n) {
				const struct mframe *f = &tl[k].stack->f[0];

				cJSON_AddStringToObject(o, "function", f->function ? f->function : "?");
				cJSON_AddStringToObject(o, "file", f->file ? f->file : "?");
				if (f->line >= 0)
					cJSON_AddNumberToObject(o, "line", f->line);
			}
			cJSON_AddItemToArray(ev, o);
		}
	}
	cJSON_AddItemToObject(root, "locks", locks_json(m));
	arr = cJSON_AddArrayToObject(root, "findings");
	n = model_findings_sorted(m, &sorted);
	for (i = 0; i < n; i++)
		cJSON_AddItemToArray(arr, finding_json(m, sorted[i]));
	free(sorted);
	out = cJSON_Print(root);
	cJSON_Delete(root);
	return out;
}
