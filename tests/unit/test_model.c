/* Tests for core/model.c, driven the way cli/record.c drives it from the
 * tracer's events: sleeps, samples, stalls, loop confirmations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model.h"

#define US 1000ULL
#define MS 1000000ULL
#define NR_FSYNC 74
#define NR_FUTEX 202
#define NR_NANOSLEEP 230
#define TID 4242
#define GIL 0x7f0000001000ULL

static struct model *new_model(void)
{
	struct model_config cfg = { .stall_ns = 100 * MS, .block_ns = 1 * MS };
	struct model *m = model_new(&cfg);

	assert_non_null(m);
	return m;
}

static int setup(void **state)
{
	*state = new_model();
	return 0;
}

static int teardown(void **state)
{
	model_free(*state);
	return 0;
}

/* Stack leaf first: leaf(file:line) <- handler(app.py:40) <- run(asyncio/events.py:80). */
static struct mstack stack3(struct model *m, const char *leaf, int line)
{
	struct mstack s;

	memset(&s, 0, sizeof(s));
	s.n = 3;
	s.status = 0;
	s.f[0].function = model_intern(m, leaf);
	s.f[0].file = model_intern(m, "app.py");
	s.f[0].line = line;
	s.f[1].function = model_intern(m, "handler");
	s.f[1].file = model_intern(m, "app.py");
	s.f[1].line = 40;
	s.f[2].function = model_intern(m, "_run");
	s.f[2].file = model_intern(m, "/usr/lib/python3.11/asyncio/events.py");
	s.f[2].line = 80;
	return s;
}

static void sleep_add(struct model *m, uint32_t tid, int nr, uint64_t iter_start, uint64_t start,
		      uint64_t blocked, uint64_t arg0, const struct mstack *st)
{
	struct model_sleep s;

	memset(&s, 0, sizeof(s));
	s.tid = tid;
	s.start = start;
	s.ts = start + blocked;
	s.blocked_ns = blocked;
	s.iter_start = iter_start;
	s.nr = nr;
	s.args[0] = arg0;
	s.stack = st;
	model_add_sleep(m, &s);
}

static void sample_add(struct model *m, uint32_t tid, int nr, uint64_t iter_start, uint64_t ts,
		       const struct mstack *st)
{
	struct model_sample s;

	memset(&s, 0, sizeof(s));
	s.tid = tid;
	s.ts = ts;
	s.iter_start = iter_start;
	s.nr = nr;
	s.stack = st;
	model_add_sample(m, &s);
}

/* The only finding of a kind; fails when there are several. */
static const struct finding *find_one(struct model *m, enum finding_kind kind)
{
	const struct finding *r = NULL;
	size_t i;

	for (i = 0; i < model_nfindings(m); i++) {
		const struct finding *f = model_finding_at(m, i);

		if (f->kind != kind)
			continue;
		if (r)
			fail_msg("more than one finding of kind %d", kind);
		r = f;
	}
	return r;
}

static size_t count_kind(struct model *m, enum finding_kind kind)
{
	size_t i, n = 0;

	for (i = 0; i < model_nfindings(m); i++)
		n += model_finding_at(m, i)->kind == kind;
	return n;
}

static void assert_stack_eq(const struct mstack *a, const struct mstack *b)
{
	int i;

	assert_int_equal(a->n, b->n);
	assert_int_equal(a->status, b->status);
	for (i = 0; i < a->n; i++) {
		assert_string_equal(a->f[i].function, b->f[i].function);
		assert_string_equal(a->f[i].file, b->f[i].file);
		assert_int_equal(a->f[i].line, b->f[i].line);
	}
}

static void test_intern(void **state)
{
	struct model *m = *state;
	char buf[32];
	const char *first[2000];
	int i;

	assert_null(model_intern(m, NULL));
	assert_ptr_equal(model_intern(m, "abc"), model_intern(m, "abc"));
	snprintf(buf, sizeof(buf), "abc");
	assert_ptr_equal(model_intern(m, buf), model_intern(m, "abc"));
	assert_ptr_not_equal(buf, model_intern(m, buf));
	assert_ptr_not_equal(model_intern(m, "abc"), model_intern(m, "abd"));
	/* across table growth (starts at 1024 slots) */
	for (i = 0; i < 2000; i++) {
		snprintf(buf, sizeof(buf), "name%d", i);
		first[i] = model_intern(m, buf);
		assert_non_null(first[i]);
		assert_string_equal(first[i], buf);
	}
	for (i = 0; i < 2000; i++) {
		snprintf(buf, sizeof(buf), "name%d", i);
		assert_ptr_equal(model_intern(m, buf), first[i]);
	}
}

static void test_blocking_sleep(void **state)
{
	struct model *m = *state;
	struct mstack st = stack3(m, "slow_io", 12), copy;
	const struct finding *f;

	model_loop_confirm(m, TID);
	copy = st;
	sleep_add(m, TID, NR_NANOSLEEP, 1000, 1100, 200 * MS, 0, &st);
	memset(&st, 0xa5, sizeof(st)); /* the model keeps its own copy */
	assert_int_equal(model_nfindings(m), 1);
	f = model_finding_at(m, 0);
	assert_int_equal(f->kind, FINDING_BLOCKING_SYSCALL);
	assert_int_equal(f->tid, TID);
	assert_int_equal(f->nr, NR_NANOSLEEP);
	assert_int_equal(f->count, 1);
	assert_int_equal(f->total_ns, 200 * MS);
	assert_int_equal(f->max_ns, 200 * MS);
	assert_int_equal(f->first_ts, 1100);
	assert_int_equal(f->last_ts, 1100 + 200 * MS);
	assert_int_equal(f->stalls, 0);
	assert_string_equal(f->fd_kind, "");
	assert_stack_eq(&f->stack, &copy);
	/* interned: pointers into the model */
	assert_ptr_equal(f->stack.f[0].function, model_intern(m, "slow_io"));
}

static void test_blocking_aggregate(void **state)
{
	struct model *m = *state;
	struct mstack a = stack3(m, "slow_io", 12), a2 = stack3(m, "slow_io", 12);
	struct mstack b = stack3(m, "slow_io", 13);
	const struct finding *f;
	size_t i;

	model_loop_confirm(m, TID);
	sleep_add(m, TID, NR_NANOSLEEP, 1000, 2000, 200 * MS, 0, &a);
	sleep_add(m, TID, NR_NANOSLEEP, 1000, 300 * MS, 50 * MS, 0, &a2);
	assert_int_equal(model_nfindings(m), 1);
	f = model_finding_at(m, 0);
	assert_int_equal(f->count, 2);
	assert_int_equal(f->total_ns, 250 * MS);
	assert_int_equal(f->max_ns, 200 * MS);
	assert_int_equal(f->first_ts, 2000);
	assert_int_equal(f->last_ts, 350 * MS);

	/* another line of the same function: another finding */
	sleep_add(m, TID, NR_NANOSLEEP, 5 * 1000 * MS, 5 * 1000 * MS + 10, 30 * MS, 0, &b);
	assert_int_equal(model_nfindings(m), 2);
	/* same stack, another syscall: another finding */
	sleep_add(m, TID, NR_FSYNC, 5 * 1000 * MS, 5 * 1000 * MS + 10, 30 * MS, 0, &a);
	assert_int_equal(model_nfindings(m), 3);
	/* same stack, another thread: another finding */
	model_loop_confirm(m, TID + 1);
	sleep_add(m, TID + 1, NR_NANOSLEEP, 1000, 2000, 10 * MS, 0, &a);
	assert_int_equal(model_nfindings(m), 4);
	for (i = 1; i < 4; i++) {
		f = model_finding_at(m, i);
		assert_int_equal(f->count, 1);
	}
	assert_int_equal(model_finding_at(m, 1)->stack.f[0].line, 13);
	assert_int_equal(model_finding_at(m, 2)->nr, NR_FSYNC);
	assert_int_equal(model_finding_at(m, 3)->tid, TID + 1);
	/* the first one is untouched */
	assert_int_equal(model_finding_at(m, 0)->count, 2);
}

static void test_fd_kind(void **state)
{
	struct model *m = *state;
	struct mstack st = stack3(m, "read_file", 5), st2 = stack3(m, "read_file", 6);
	struct model_sleep s;

	model_loop_confirm(m, TID);
	memset(&s, 0, sizeof(s));
	s.tid = TID;
	s.iter_start = 1;
	s.start = 10;
	s.blocked_ns = 5 * MS;
	s.nr = 0; /* read */
	s.stack = &st;
	s.fd_kind = "file";
	model_add_sleep(m, &s);
	s.fd_kind = "socket"; /* the first kind seen stays */
	model_add_sleep(m, &s);
	s.stack = &st2;
	s.fd_kind = "a-very-long-fd-kind-name";
	model_add_sleep(m, &s);
	assert_int_equal(model_nfindings(m), 2);
	assert_string_equal(model_finding_at(m, 0)->fd_kind, "file");
	assert_int_equal(model_finding_at(m, 0)->count, 2);
	assert_string_equal(model_finding_at(m, 1)->fd_kind, "a-very-long-fd-");
}

static void test_below_block_threshold(void **state)
{
	struct model *m = *state;
	struct mstack st = stack3(m, "quick", 3);

	model_loop_confirm(m, TID);
	sleep_add(m, TID, NR_NANOSLEEP, 1000, 2000, 1 * MS - 1, 0, &st);
	sleep_add(m, TID, NR_NANOSLEEP, 1000, 3000, 500 * US, 0, &st);
	/* not in a syscall: never a blocking_syscall */
	sleep_add(m, TID, -1, 1000, 4000, 300 * MS, 0, &st);
	assert_int_equal(model_nfindings(m), 0);
	/* exactly the threshold counts */
	sleep_add(m, TID, NR_NANOSLEEP, 1000, 5000, 1 * MS, 0, &st);
	assert_int_equal(model_nfindings(m), 1);
	assert_int_equal(model_finding_at(m, 0)->total_ns, 1 * MS);
}

static void test_unconfirmed_replay(void **state)
{
	struct model *m = *state;
	struct mstack st = stack3(m, "slow_io", 12);
	const struct finding *f;

	sleep_add(m, TID, NR_NANOSLEEP, 1000, 2000, 200 * MS, 0, &st);
	sleep_add(m, TID, NR_NANOSLEEP, 1000, 300 * MS, 100 * MS, 0, &st);
	assert_int_equal(model_nfindings(m), 0);
	assert_int_equal(model_nloops(m), 0);
	assert_null(model_loop_at(m, 0));
	model_loop_confirm(m, TID);
	assert_int_equal(model_nloops(m), 1);
	assert_int_equal(model_nfindings(m), 1);
	f = model_finding_at(m, 0);
	assert_int_equal(f->count, 2);
	assert_int_equal(f->total_ns, 300 * MS);
	assert_int_equal(f->max_ns, 200 * MS);
	/* confirming again replays nothing twice */
	model_loop_confirm(m, TID);
	assert_int_equal(model_finding_at(m, 0)->count, 2);
	/* later sleeps go straight in */
	sleep_add(m, TID, NR_NANOSLEEP, 1000, 500 * MS, 10 * MS, 0, &st);
	assert_int_equal(model_finding_at(m, 0)->count, 3);
}

static void test_unconfirmed_old_iteration(void **state)
{
	struct model *m = *state;
	struct mstack st = stack3(m, "slow_io", 12);

	/* a sleep of an iteration that ended before the loop was recognised */
	sleep_add(m, TID, NR_NANOSLEEP, 1000, 2000, 200 * MS, 0, &st);
	sleep_add(m, TID, NR_NANOSLEEP, 900 * MS, 901 * MS, 5 * MS, 0, &st);
	model_loop_confirm(m, TID);
	assert_int_equal(model_nfindings(m), 1);
	assert_int_equal(model_finding_at(m, 0)->count, 1);
	assert_int_equal(model_finding_at(m, 0)->total_ns, 5 * MS);
}

static void test_gil_wait(void **state)
{
	struct model *m = *state;
	struct mstack st = stack3(m, "compute", 7);
	const struct loop_info *l;
	const struct finding *f;

	model_set_gil(m, GIL, 208);
	assert_int_equal(model_cfg(m)->gil_addr, GIL);
	assert_int_equal(model_cfg(m)->gil_size, 208);
	model_loop_confirm(m, TID);
	sleep_add(m, TID, NR_FUTEX, 1000, 2000, 50 * MS, GIL + 16, &st);
	sleep_add(m, TID, NR_FUTEX, 1000, 60 * MS, 20 * MS, GIL, &st);
	sleep_add(m, TID, NR_FUTEX, 1000, 90 * MS, 20 * MS, GIL + 207, &st);
	/* all GIL waits of a loop aggregate into one gil_contention finding */
	assert_int_equal(model_nfindings(m), 1);
	f = model_finding_at(m, 0);
	assert_int_equal(f->kind, FINDING_GIL_CONTENTION);
	assert_int_equal(f->count, 3);
	assert_int_equal(f->total_ns, 90 * MS);
	assert_int_equal(f->max_ns, 50 * MS);
	assert_string_equal(f->lock_kind, "gil");
	/* nobody woke it from inside the process: no holder known */
	assert_int_equal(f->nholders, 0);
	assert_int_equal(f->unattributed_ns, 90 * MS);
	l = model_loop_at(m, 0);
	assert_non_null(l);
	assert_int_equal(l->tid, TID);
	assert_int_equal(l->gil_wait_ns, 90 * MS);
	assert_int_equal(l->gil_waits, 3);
	/* a futex just outside the GIL is a lock wait, one finding per address */
	sleep_add(m, TID, NR_FUTEX, 1000, 200 * MS, 20 * MS, GIL + 208, &st);
	sleep_add(m, TID, NR_FUTEX, 1000, 300 * MS, 20 * MS, GIL - 8, &st);
	assert_int_equal(model_nfindings(m), 3);
	assert_int_equal(model_finding_at(m, 1)->kind, FINDING_LOCK_CONTENTION);
	assert_int_equal(model_finding_at(m, 1)->nr, NR_FUTEX);
	assert_int_equal(model_finding_at(m, 1)->count, 1);
	assert_int_equal(model_finding_at(m, 1)->lock_addr, GIL + 208);
	assert_int_equal(model_finding_at(m, 2)->lock_addr, GIL - 8);
	assert_int_equal(model_loop_at(m, 0)->gil_wait_ns, 90 * MS);
}

static void test_gil_holder(void **state)
{
	struct model *m = *state;
	struct mstack st = stack3(m, "tick", 3), holder = stack3(m, "crunch", 12);
	const struct finding *f;

	model_set_gil(m, GIL, 208);
	model_loop_confirm(m, TID);
	/* the waker event comes before the waiter's sleep, matched by start */
	model_add_waker(m, TID, 777, 5000, &holder);
	sleep_add(m, TID, NR_FUTEX, 1000, 5000, 4 * MS, GIL + 72, &st);
	model_add_waker(m, TID, 778, 9000, &holder);
	sleep_add(m, TID, NR_FUTEX, 1000, 8000, 2 * MS, GIL + 72, &st); /* different start: not 778's */
	f = model_finding_at(m, 0);
	assert_int_equal(f->kind, FINDING_GIL_CONTENTION);
	assert_int_equal(f->nholders, 1);
	assert_int_equal(f->holders[0].tid, 777);
	assert_int_equal(f->holders[0].wait_ns, 4 * MS);
	assert_string_equal(f->holders[0].stack.f[0].function, "crunch");
	assert_int_equal(f->unattributed_ns, 2 * MS);
}

static void test_gil_wait_replayed(void **state)
{
	struct model *m = *state;
	struct mstack st = stack3(m, "compute", 7);

	model_set_gil(m, GIL, 208);
	sleep_add(m, TID, NR_FUTEX, 1000, 2000, 50 * MS, GIL + 8, &st);
	assert_int_equal(model_loop(m, TID, 0)->gil_wait_ns, 0);
	assert_int_equal(model_nfindings(m), 0);
	model_loop_confirm(m, TID);
	assert_int_equal(model_nfindings(m), 1);
	assert_int_equal(model_finding_at(m, 0)->kind, FINDING_GIL_CONTENTION);
	assert_int_equal(model_loop(m, TID, 0)->gil_wait_ns, 50 * MS);
}

static void test_stall_explained_by_blocking(void **state)
{
	struct model *m = *state;
	struct mstack st = stack3(m, "slow_io", 12);
	const uint64_t it = 10 * 1000 * MS;
	const struct finding *f;

	model_loop_confirm(m, TID);
	sleep_add(m, TID, NR_NANOSLEEP, it, it + 5 * MS, 200 * MS, 0, &st);
	sample_add(m, TID, -1, it, it + 206 * MS, &st);
	model_add_stall(m, TID, it, it + 210 * MS, 200 * MS, 1 * MS);
	assert_int_equal(count_kind(m, FINDING_STALL), 0);
	f = find_one(m, FINDING_BLOCKING_SYSCALL);
	assert_non_null(f);
	assert_int_equal(f->stalls, 1);
	assert_int_equal(f->count, 1);

	/* a second such stall of the same call */
	sleep_add(m, TID, NR_NANOSLEEP, it + 1000 * MS, it + 1001 * MS, 150 * MS, 0, &st);
	model_add_stall(m, TID, it + 1000 * MS, it + 1160 * MS, 150 * MS, 0);
	assert_int_equal(count_kind(m, FINDING_STALL), 0);
	f = find_one(m, FINDING_BLOCKING_SYSCALL);
	assert_int_equal(f->stalls, 2);
	assert_int_equal(f->count, 2);
}

/* A stall is folded into its blocking calls only when what remains
 * without them would stay under the stall threshold (100ms here). */
static void test_stall_fold_threshold(void **state)
{
	struct model *m = *state;
	struct mstack st = stack3(m, "slow_io", 12);
	const uint64_t it = 10 * 1000 * MS, it2 = 20 * 1000 * MS;
	const struct finding *f;

	model_loop_confirm(m, TID);
	/* 250ms stall, 150ms of it blocking: 100ms left, still a stall */
	sleep_add(m, TID, NR_NANOSLEEP, it, it + 5 * MS, 150 * MS, 0, &st);
	model_add_stall(m, TID, it, it + 250 * MS, 150 * MS, 0);
	f = find_one(m, FINDING_STALL);
	assert_non_null(f);
	assert_int_equal(f->total_ns, 250 * MS);
	assert_int_equal(f->blocked_ns, 150 * MS);
	/* no samples: grouped by the longest sleep's stack */
	assert_int_equal(f->samples, 0);
	assert_string_equal(f->stack.f[0].function, "slow_io");
	assert_int_equal(find_one(m, FINDING_BLOCKING_SYSCALL)->stalls, 0);
	/* 1ns shorter: folded */
	sleep_add(m, TID, NR_NANOSLEEP, it2, it2 + 5 * MS, 150 * MS, 0, &st);
	model_add_stall(m, TID, it2, it2 + 250 * MS - 1, 150 * MS, 0);
	assert_int_equal(count_kind(m, FINDING_STALL), 1);
	assert_int_equal(find_one(m, FINDING_STALL)->count, 1);
	assert_int_equal(find_one(m, FINDING_BLOCKING_SYSCALL)->stalls, 1);
	assert_int_equal(find_one(m, FINDING_BLOCKING_SYSCALL)->count, 2);
}

/* A stall that is long only because the thread waited for a CPU is
 * counted on the loop, not reported as a finding. */
static void test_stall_starved(void **state)
{
	struct model *m = *state;
	struct mstack st = stack3(m, "crunch", 30);
	const uint64_t it = 10 * 1000 * MS, it2 = 20 * 1000 * MS;

	model_loop_confirm(m, TID);
	sample_add(m, TID, -1, it, it + 101 * MS, &st);
	/* 250ms of which 200ms runnable: 50ms of its own */
	model_add_stall(m, TID, it, it + 250 * MS, 0, 200 * MS);
	assert_int_equal(model_nfindings(m), 0);
	assert_int_equal(model_loop(m, TID, 0)->starved_stalls, 1);
	/* 150ms runnable: 100ms of its own, a stall */
	sample_add(m, TID, -1, it2, it2 + 101 * MS, &st);
	model_add_stall(m, TID, it2, it2 + 250 * MS, 0, 150 * MS);
	assert_int_equal(count_kind(m, FINDING_STALL), 1);
	assert_int_equal(find_one(m, FINDING_STALL)->runnable_ns, 150 * MS);
	assert_int_equal(find_one(m, FINDING_STALL)->on_cpu_ns, 100 * MS);
	assert_int_equal(model_loop(m, TID, 0)->starved_stalls, 1);
}

static void test_stall_not_explained(void **state)
{
	struct model *m = *state;
	struct mstack io = stack3(m, "slow_io", 12), cpu = stack3(m, "crunch", 30);
	const uint64_t it = 10 * 1000 * MS;
	const struct finding *f, *b;
	int i;

	model_loop_confirm(m, TID);
	/* 40ms of a 300ms stall in a reported call: the rest is CPU */
	sleep_add(m, TID, NR_NANOSLEEP, it, it + 5 * MS, 40 * MS, 0, &io);
	for (i = 0; i < 20; i++)
		sample_add(m, TID, -1, it, it + (50 + (uint64_t)i * 10) * MS, &cpu);
	model_add_stall(m, TID, it, it + 300 * MS, 40 * MS, 0);
	f = find_one(m, FINDING_STALL);
	b = find_one(m, FINDING_BLOCKING_SYSCALL);
	assert_non_null(f);
	assert_non_null(b);
	assert_int_equal(b->stalls, 0);
	assert_int_equal(f->count, 1);
	assert_int_equal(f->total_ns, 300 * MS);
	assert_int_equal(f->blocked_ns, 40 * MS);
	assert_int_equal(f->on_cpu_ns, 260 * MS);
	assert_int_equal(f->samples, 20);
	assert_int_equal(f->dominant_samples, 20);
	assert_string_equal(f->stack.f[0].function, "crunch");
}

static void test_cpu_stall_dominant(void **state)
{
	struct model *m = *state;
	struct mstack a = stack3(m, "crunch", 30), b = stack3(m, "parse", 55);
	const uint64_t it = 77 * 1000 * MS;
	const struct finding *f;
	int i;

	model_loop_confirm(m, TID);
	/* B first, so a "first sample wins" bug would show */
	for (i = 0; i < 3; i++)
		sample_add(m, TID, -1, it, it + (uint64_t)(101 + i) * MS, &b);
	for (i = 0; i < 7; i++)
		sample_add(m, TID, -1, it, it + (uint64_t)(110 + i) * MS, &a);
	model_add_stall(m, TID, it, it + 250 * MS, 20 * MS, 5 * MS);
	assert_int_equal(model_nfindings(m), 1);
	f = model_finding_at(m, 0);
	assert_int_equal(f->kind, FINDING_STALL);
	assert_int_equal(f->tid, TID);
	assert_int_equal(f->nr, -1);
	assert_int_equal(f->count, 1);
	assert_int_equal(f->total_ns, 250 * MS);
	assert_int_equal(f->max_ns, 250 * MS);
	assert_int_equal(f->first_ts, it);
	assert_int_equal(f->last_ts, it + 250 * MS);
	assert_int_equal(f->samples, 10);
	assert_int_equal(f->dominant_samples, 7);
	assert_int_equal(f->blocked_ns, 20 * MS);
	assert_int_equal(f->runnable_ns, 5 * MS);
	assert_int_equal(f->on_cpu_ns, 225 * MS);
	assert_stack_eq(&f->stack, &a);
	/* user-mode samples add no syscall rows */
	assert_int_equal(f->nsys, 0);

	/* a second stall at the same place (another leaf line) joins it */
	a.f[0].line = 31;
	for (i = 0; i < 4; i++)
		sample_add(m, TID, -1, it + 1000 * MS, it + (uint64_t)(1101 + i) * MS, &a);
	model_add_stall(m, TID, it + 1000 * MS, it + 1120 * MS, 0, 0);
	assert_int_equal(model_nfindings(m), 1);
	f = model_finding_at(m, 0);
	assert_int_equal(f->count, 2);
	assert_int_equal(f->total_ns, 370 * MS);
	assert_int_equal(f->max_ns, 250 * MS);
	assert_int_equal(f->samples, 14);
	assert_int_equal(f->dominant_samples, 11);
	assert_int_equal(f->on_cpu_ns, 345 * MS);
	assert_int_equal(f->stack.f[0].line, 31);
	assert_int_equal(f->last_ts, it + 1120 * MS);

	/* a stall elsewhere (other caller) is another finding */
	b.f[1].line = 41;
	sample_add(m, TID, -1, it + 2000 * MS, it + 2101 * MS, &b);
	model_add_stall(m, TID, it + 2000 * MS, it + 2110 * MS, 0, 0);
	assert_int_equal(model_nfindings(m), 2);
}

static void test_stall_syscall_breakdown(void **state)
{
	struct model *m = *state;
	struct mstack st = stack3(m, "flush", 88);
	const uint64_t it = 5 * 1000 * MS;
	const struct finding *f;
	int i, k, found = 0;

	model_loop_confirm(m, TID);
	/* fsync mostly on CPU in the kernel, twice off-CPU briefly (below
	 * the block threshold) and once for 20ms (a blocking_syscall, but
	 * not most of the stall) */
	for (i = 0; i < 8; i++)
		sample_add(m, TID, NR_FSYNC, it, it + (uint64_t)(101 + i) * MS, &st);
	sample_add(m, TID, -1, it, it + 120 * MS, &st);
	sleep_add(m, TID, NR_FSYNC, it, it + 10 * MS, 500 * US, 0, &st);
	sleep_add(m, TID, NR_FSYNC, it, it + 20 * MS, 700 * US, 0, &st);
	sleep_add(m, TID, NR_FSYNC, it, it + 30 * MS, 20 * MS, 0, &st);
	model_add_stall(m, TID, it, it + 200 * MS, 21200 * US, 0);
	f = find_one(m, FINDING_STALL);
	assert_non_null(f);
	assert_int_equal(f->samples, 9);
	assert_int_equal(f->blocked_ns, 21200 * US);
	assert_int_equal(f->on_cpu_ns, 200 * MS - 21200 * US);
	for (k = 0; k < f->nsys; k++) {
		if (f->sys[k].nr != NR_FSYNC)
			continue;
		found++;
		assert_int_equal(f->sys[k].samples, 8);
		assert_int_equal(f->sys[k].count, 3);
		assert_int_equal(f->sys[k].blocked_ns, 21200 * US);
	}
	assert_int_equal(found, 1);
	assert_int_equal(f->nsys, 1);
	assert_int_equal(find_one(m, FINDING_BLOCKING_SYSCALL)->stalls, 0);
}

static void test_stall_gil_in_breakdown(void **state)
{
	struct model *m = *state;
	struct mstack st = stack3(m, "crunch", 30);
	const uint64_t it = 5 * 1000 * MS;
	const struct finding *f;

	model_set_gil(m, GIL, 208);
	model_loop_confirm(m, TID);
	sample_add(m, TID, -1, it, it + 101 * MS, &st);
	sleep_add(m, TID, NR_FUTEX, it, it + 10 * MS, 30 * MS, GIL + 8, &st);
	model_add_stall(m, TID, it, it + 150 * MS, 30 * MS, 0);
	f = find_one(m, FINDING_STALL);
	assert_non_null(f);
	assert_int_equal(f->nsys, 1);
	assert_int_equal(f->sys[0].nr, -2);
	assert_int_equal(f->sys[0].blocked_ns, 30 * MS);
	assert_int_equal(f->sys[0].count, 1);
}

static void test_old_iteration_not_attributed(void **state)
{
	struct model *m = *state;
	struct mstack old = stack3(m, "old_code", 1), cur = stack3(m, "new_code", 2);
	const uint64_t it1 = 1000 * MS, it2 = 2000 * MS;
	const struct finding *f;

	model_loop_confirm(m, TID);
	/* iteration 1: samples and a sleep, no stall reported for it */
	sample_add(m, TID, -1, it1, it1 + 101 * MS, &old);
	sample_add(m, TID, NR_FSYNC, it1, it1 + 102 * MS, &old);
	sleep_add(m, TID, NR_NANOSLEEP, it1, it1 + 5 * MS, 90 * MS, 0, &old);
	/* iteration 2 stalls on its own */
	sample_add(m, TID, -1, it2, it2 + 101 * MS, &cur);
	model_add_stall(m, TID, it2, it2 + 120 * MS, 0, 0);
	f = find_one(m, FINDING_STALL);
	assert_non_null(f);
	assert_int_equal(f->samples, 1);
	assert_int_equal(f->nsys, 0);
	assert_string_equal(f->stack.f[0].function, "new_code");
	assert_int_equal(find_one(m, FINDING_BLOCKING_SYSCALL)->stalls, 0);

	/* a stall for an iteration without any event: empty stack */
	model_add_stall(m, TID, 3000 * MS, 3200 * MS, 0, 0);
	assert_int_equal(count_kind(m, FINDING_STALL), 2);
	{
		const struct finding *e = model_finding_at(m, model_nfindings(m) - 1);

		assert_int_equal(e->kind, FINDING_STALL);
		assert_int_equal(e->stack.n, 0);
		assert_int_equal(e->samples, 0);
		assert_int_equal(e->total_ns, 200 * MS);
	}
}

static void test_other_thread_events_ignored(void **state)
{
	struct model *m = *state;
	struct mstack a = stack3(m, "mine", 1), b = stack3(m, "theirs", 2);
	const uint64_t it = 1000 * MS;
	const struct finding *f;

	model_loop_confirm(m, TID);
	model_loop_confirm(m, TID + 1);
	sample_add(m, TID, -1, it, it + 101 * MS, &a);
	sample_add(m, TID + 1, -1, it, it + 101 * MS, &b);
	sample_add(m, TID + 1, -1, it, it + 102 * MS, &b);
	model_add_stall(m, TID, it, it + 150 * MS, 0, 0);
	f = find_one(m, FINDING_STALL);
	assert_non_null(f);
	assert_int_equal(f->tid, TID);
	assert_int_equal(f->samples, 1);
	assert_string_equal(f->stack.f[0].function, "mine");
	/* the other thread's events are still there for its own stall */
	model_add_stall(m, TID + 1, it, it + 130 * MS, 0, 0);
	assert_int_equal(count_kind(m, FINDING_STALL), 2);
	f = model_finding_at(m, 1);
	assert_int_equal(f->tid, TID + 1);
	assert_int_equal(f->samples, 2);
	assert_string_equal(f->stack.f[0].function, "theirs");
}

static void test_sorted(void **state)
{
	struct model *m = *state;
	struct mstack a = stack3(m, "a", 1), b = stack3(m, "b", 2), c = stack3(m, "c", 3);
	const struct finding **v = (const struct finding **)1;
	size_t n, i;

	assert_int_equal(model_findings_sorted(m, &v), 0);
	assert_null(v);
	model_loop_confirm(m, TID);
	sleep_add(m, TID, NR_NANOSLEEP, 1, 10, 5 * MS, 0, &a);
	sleep_add(m, TID, NR_NANOSLEEP, 1, 20, 50 * MS, 0, &b);
	sleep_add(m, TID, NR_NANOSLEEP, 1, 30, 20 * MS, 0, &c);
	sleep_add(m, TID, NR_NANOSLEEP, 1, 40, 20 * MS, 0, &a); /* a: 25ms */
	sample_add(m, TID, -1, 1000 * MS, 1101 * MS, &c);
	model_add_stall(m, TID, 1000 * MS, 1400 * MS, 0, 0); /* 400ms */
	n = model_findings_sorted(m, &v);
	assert_int_equal(n, 4);
	assert_non_null(v);
	assert_int_equal(v[0]->kind, FINDING_STALL);
	assert_int_equal(v[0]->total_ns, 400 * MS);
	assert_int_equal(v[1]->total_ns, 50 * MS);
	assert_string_equal(v[1]->stack.f[0].function, "b");
	assert_int_equal(v[2]->total_ns, 25 * MS);
	assert_string_equal(v[2]->stack.f[0].function, "a");
	assert_int_equal(v[3]->total_ns, 20 * MS);
	for (i = 1; i < n; i++)
		assert_true(v[i - 1]->total_ns >= v[i]->total_ns);
	free(v);
}

static void test_nloops(void **state)
{
	struct model *m = *state;
	struct mstack st = stack3(m, "x", 1);
	struct ls_loop_stats ls;
	const struct loop_info *l;

	assert_int_equal(model_nloops(m), 0);
	/* events create loop entries without making them loops */
	sleep_add(m, 100, NR_NANOSLEEP, 1, 10, 5 * MS, 0, &st);
	sample_add(m, 101, -1, 1, 10, &st);
	assert_int_equal(model_nloops(m), 0);
	assert_non_null(model_loop(m, 100, 0));
	model_loop_confirm(m, 101);
	assert_int_equal(model_nloops(m), 1);
	assert_int_equal(model_loop_at(m, 0)->tid, 101);
	assert_null(model_loop_at(m, 1));
	assert_null(model_loop(m, 555, 0));

	memset(&ls, 0, sizeof(ls));
	ls.epfd = 7;
	ls.iterations = 1234;
	ls.busy_ns = 99 * MS;
	ls.max_ns = 33 * MS;
	ls.stalls = 2;
	ls.first_ts = 17;
	ls.hist[ls_hist_bucket(100)] = 1234;
	model_loop_update(m, 102, &ls);
	assert_int_equal(model_nloops(m), 2);
	l = model_loop_at(m, 1);
	assert_int_equal(l->tid, 102);
	assert_int_equal(l->epfd, 7);
	assert_int_equal(l->iterations, 1234);
	assert_int_equal(l->busy_ns, 99 * MS);
	assert_int_equal(l->max_ns, 33 * MS);
	assert_int_equal(l->stalls, 2);
	assert_int_equal(l->first_ts, 17);
	assert_int_equal(l->hist[ls_hist_bucket(100)], 1234);
	/* the unconfirmed thread's blocking sleep was never reported */
	assert_int_equal(model_nfindings(m), 0);
	model_loop_confirm(m, 100);
	assert_int_equal(model_nloops(m), 3);
	assert_int_equal(model_nfindings(m), 1);
}

/* Many distinct stacks (past the intern table's first growth) and loops
 * (past the loop array's), all kept apart and intact. */
static void test_many(void **state)
{
	struct model *m = *state;
	int i;

	for (i = 0; i < 40; i++)
		model_loop_confirm(m, 1000 + (uint32_t)i);
	for (i = 0; i < 600; i++) {
		struct mstack st = stack3(m, "many", i);

		sleep_add(m, 1000 + (uint32_t)(i % 40), NR_NANOSLEEP, 1, 10 + (uint64_t)i,
			  (uint64_t)(i + 1) * MS, 0, &st);
	}
	assert_int_equal(model_nloops(m), 40);
	assert_int_equal(model_nfindings(m), 600);
	for (i = 0; i < 600; i++) {
		const struct finding *f = model_finding_at(m, (size_t)i);

		assert_int_equal(f->stack.f[0].line, i);
		assert_int_equal(f->total_ns, (uint64_t)(i + 1) * MS);
		assert_int_equal(f->tid, 1000 + (uint32_t)(i % 40));
	}
	assert_null(model_finding_at(m, 600));
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_intern),
		T(test_blocking_sleep),
		T(test_blocking_aggregate),
		T(test_fd_kind),
		T(test_below_block_threshold),
		T(test_unconfirmed_replay),
		T(test_unconfirmed_old_iteration),
		T(test_gil_wait),
		T(test_gil_holder),
		T(test_gil_wait_replayed),
		T(test_stall_explained_by_blocking),
		T(test_stall_fold_threshold),
		T(test_stall_starved),
		T(test_stall_not_explained),
		T(test_cpu_stall_dominant),
		T(test_stall_syscall_breakdown),
		T(test_stall_gil_in_breakdown),
		T(test_old_iteration_not_attributed),
		T(test_other_thread_events_ignored),
		T(test_sorted),
		T(test_nloops),
		T(test_many),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
