/* A fake CPython for loopspy's hostile-memory tests (tests/e2e/test_hardening.py).
 *
 * It defines _PyRuntime, PyCode_Type and Py_Version as libpython does, and
 * fills them (with the offsets of probes/cpython_layouts.inc) so that
 * loopspy takes it for CPython 3.MINOR and validates its layout; then it
 * builds a Python "stack" for its main thread that is hostile:
 *
 *   cycle     frame A -> frame B -> frame A -> ... (a loop in the chain)
 *   selfloop  a frame whose f_back is itself
 *   deep      300 distinct frames (deeper than any cap)
 *   garbage   one frame each of: a 1 TiB name length, a code pointer into
 *             unmapped memory, an object that is not a code object, a
 *             non-ASCII file name, line tables with negative and huge
 *             sizes, and an f_back into unmapped memory
 *
 * Its "event loop" waits in epoll_wait and blocks in nanosleep inside every
 * iteration, so loopspy walks the fake stack at each switch.
 *
 * usage: hostile_target MINOR SCENARIO     (MINOR 8..13)
 * prints "READY <pid>" when the memory is laid out. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "cpython_layout.h"

/* what loopspy looks for in the ELF symbol table */
unsigned char _PyRuntime[16384] __attribute__((aligned(64)));
unsigned char PyCode_Type[512] __attribute__((aligned(64)));
uint32_t Py_Version;

static const struct cpython_layout *L;
static uint64_t unmapped; /* an address with nothing mapped */

static void *zalloc(size_t n)
{
	void *p = calloc(1, n);

	if (!p) {
		perror("calloc");
		exit(1);
	}
	return p;
}

static void put64(void *base, int off, uint64_t v)
{
	memcpy((char *)base + off, &v, 8);
}

static void put32(void *base, int off, uint32_t v)
{
	memcpy((char *)base + off, &v, 4);
}

/* A compact ASCII str (or not: ascii = 0) whose length field says len,
 * with room bytes of text after the header. */
static void *mk_str(const char *text, int64_t len, int ascii, size_t room)
{
	size_t n = strlen(text);
	char *s = zalloc((size_t)L->str_ascii_data + (room > n ? room : n) + 1);

	put64(s, L->str_length, (uint64_t)len);
	put32(s, L->str_state, (1u << 5) | (ascii ? 1u << 6 : 0));
	if (room > n)
		memset(s + L->str_ascii_data, 'A', room);
	memcpy(s + L->str_ascii_data, text, n);
	return s;
}

static void *mk_bytes(const unsigned char *data, size_t n, int64_t size_field)
{
	char *b = zalloc((size_t)L->bytes_data + n + 1);

	put64(b, L->bytes_size, (uint64_t)size_field);
	memcpy(b + L->bytes_data, data, n);
	return b;
}

/* A line table saying "every instruction is on co_firstlineno". */
static void *mk_table(void)
{
	static const unsigned char t310[] = { 254, 0 };
	static const unsigned char t311[] = { 0x80 | (10 << 3) | 7, 0, 0, 0x80 | (10 << 3) | 7, 0, 0 };

	if (L->minor <= 9)
		return mk_bytes(NULL, 0, 0);
	if (L->minor == 10)
		return mk_bytes(t310, sizeof(t310), sizeof(t310));
	return mk_bytes(t311, sizeof(t311), sizeof(t311));
}

static char *mk_code(void *name, void *file, void *table, int firstlineno, uint64_t type)
{
	char *c = zalloc((size_t)L->code_size + 256);

	put64(c, L->object_type, type);
	put32(c, L->code_firstlineno, (uint32_t)firstlineno);
	put64(c, L->code_name, (uint64_t)(uintptr_t)name);
	if (L->code_qualname >= 0)
		put64(c, L->code_qualname, (uint64_t)(uintptr_t)name);
	put64(c, L->code_filename, (uint64_t)(uintptr_t)file);
	put64(c, L->code_linetable, (uint64_t)(uintptr_t)table);
	return c;
}

static char *code_good(const char *name, int firstlineno)
{
	return mk_code(mk_str(name, (int64_t)strlen(name), 1, 0), mk_str("/hostile/target.py", 18, 1, 0),
		       mk_table(), firstlineno, (uint64_t)(uintptr_t)PyCode_Type);
}

/* A frame running code at instruction 3. */
static char *mk_frame(uint64_t code)
{
	char *f = zalloc(512);

	put64(f, L->frame_code, code);
	if (L->code_adaptive >= 0)
		put64(f, L->frame_pos, code + (uint64_t)L->code_adaptive + 6);
	else
		put32(f, L->frame_pos, 6); /* f_lasti */
	return f;
}

static void frame_link(char *f, uint64_t back)
{
	put64(f, L->frame_back, back);
}

static char *stack_build(const char *scenario)
{
	char *top, *f, *prev;
	int i;

	if (!strcmp(scenario, "cycle")) {
		char *a = mk_frame((uint64_t)(uintptr_t)code_good("hostile_a", 100));
		char *b = mk_frame((uint64_t)(uintptr_t)code_good("hostile_b", 200));

		frame_link(a, (uint64_t)(uintptr_t)b);
		frame_link(b, (uint64_t)(uintptr_t)a);
		return a;
	}
	if (!strcmp(scenario, "selfloop")) {
		f = mk_frame((uint64_t)(uintptr_t)code_good("hostile_self", 300));
		frame_link(f, (uint64_t)(uintptr_t)f);
		return f;
	}
	if (!strcmp(scenario, "deep")) {
		char *code = code_good("hostile_deep", 400);

		top = prev = mk_frame((uint64_t)(uintptr_t)code);
		for (i = 1; i < 300; i++) {
			f = mk_frame((uint64_t)(uintptr_t)code);
			frame_link(prev, (uint64_t)(uintptr_t)f);
			prev = f;
		}
		return top;
	}
	if (!strcmp(scenario, "garbage")) {
		static const unsigned char junk[] = { 0xff, 0x01, 0x80, 0x7f };
		uint64_t codes[8];
		void *file = mk_str("/hostile/target.py", 18, 1, 0);
		int n = 0;

		/* a name whose length field says 1 TiB (4 KiB are there) */
		codes[n++] = (uint64_t)(uintptr_t)mk_code(mk_str("hostile_long", (int64_t)1 << 40, 1, 4096), file,
							 mk_table(), 500, (uint64_t)(uintptr_t)PyCode_Type);
		/* a code pointer into unmapped memory */
		codes[n++] = unmapped;
		/* not a code object (ob_type is something else) */
		codes[n++] = (uint64_t)(uintptr_t)mk_code(mk_str("hostile_wrongtype", 17, 1, 0), file, mk_table(), 600,
							 (uint64_t)(uintptr_t)_PyRuntime);
		/* a non-ASCII (not compact ASCII) file name */
		codes[n++] = (uint64_t)(uintptr_t)mk_code(mk_str("hostile_nonascii", 16, 1, 0),
							 mk_str("/hostile/\xc3\xa9.py", 12, 0, 0), mk_table(), 700,
							 (uint64_t)(uintptr_t)PyCode_Type);
		/* line tables: a negative size, then a 1 GiB one, then junk */
		codes[n++] = (uint64_t)(uintptr_t)mk_code(mk_str("hostile_negtable", 16, 1, 0), file,
							 mk_bytes(junk, sizeof(junk), -5), 800,
							 (uint64_t)(uintptr_t)PyCode_Type);
		codes[n++] = (uint64_t)(uintptr_t)mk_code(mk_str("hostile_hugetable", 17, 1, 0), file,
							 mk_bytes(junk, sizeof(junk), (int64_t)1 << 30), 900,
							 (uint64_t)(uintptr_t)PyCode_Type);
		codes[n++] = (uint64_t)(uintptr_t)mk_code(mk_str("hostile_junktable", 17, 1, 0), file,
							 mk_bytes(junk, sizeof(junk), sizeof(junk)), 1000,
							 (uint64_t)(uintptr_t)PyCode_Type);
		top = prev = mk_frame(codes[0]);
		for (i = 1; i < n; i++) {
			f = mk_frame(codes[i]);
			frame_link(prev, (uint64_t)(uintptr_t)f);
			prev = f;
		}
		/* and the chain ends in unmapped memory */
		frame_link(prev, unmapped);
		return top;
	}
	fprintf(stderr, "hostile_target: unknown scenario %s\n", scenario);
	exit(2);
}

int main(int argc, char **argv)
{
	pthread_key_t key;
	char *interp, *tstate, *cframe, *top;
	struct epoll_event ev;
	int epfd, minor;
	void *hole;

	if (argc != 3) {
		fprintf(stderr, "usage: hostile_target MINOR cycle|selfloop|deep|garbage\n");
		return 2;
	}
	minor = atoi(argv[1]);
	L = cpython_layout_find(3, minor);
	if (!L) {
		fprintf(stderr, "hostile_target: no layout for 3.%d\n", minor);
		return 2;
	}
	if ((size_t)L->rt_tss_key + 8 > sizeof(_PyRuntime) || (size_t)L->type_basicsize + 8 > sizeof(PyCode_Type)) {
		fprintf(stderr, "hostile_target: _PyRuntime too small for 3.%d\n", minor);
		return 2;
	}
	/* a page reserved and unmapped again: reads there fail */
	hole = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(hole, 4096);
	unmapped = (uint64_t)(uintptr_t)hole;

	Py_Version = (3u << 24) | ((uint32_t)minor << 16) | 0xf0;
	put64(PyCode_Type, L->type_basicsize, (uint64_t)L->code_size);
	if (pthread_key_create(&key, NULL) != 0 || key >= 32) {
		fprintf(stderr, "hostile_target: no TSD key below 32\n");
		return 1;
	}
	put32(_PyRuntime, L->rt_tss_key, 1);          /* _is_initialized */
	put32(_PyRuntime, L->rt_tss_key + 4, key);
	interp = zalloc(65536);
	tstate = zalloc(65536);
	put64(_PyRuntime, L->rt_interp_head, (uint64_t)(uintptr_t)interp);
	put64(interp, L->interp_tstate_head, (uint64_t)(uintptr_t)tstate);
	if (L->interp_gil_ptr >= 0)
		put64(interp, L->interp_gil_ptr, (uint64_t)(uintptr_t)zalloc(4096));
	put64(tstate, L->tstate_interp, (uint64_t)(uintptr_t)interp);
	put64(tstate, L->tstate_thread_id, (uint64_t)pthread_self());
	top = stack_build(argv[2]);
	if (L->tstate_cframe >= 0) {
		cframe = zalloc(4096);
		put64(tstate, L->tstate_cframe, (uint64_t)(uintptr_t)cframe);
		put64(cframe, L->tstate_frame, (uint64_t)(uintptr_t)top);
	} else {
		put64(tstate, L->tstate_frame, (uint64_t)(uintptr_t)top);
	}
	pthread_setspecific(key, tstate);

	epfd = epoll_create1(0);
	if (epfd < 0) {
		perror("epoll_create1");
		return 1;
	}
	printf("READY %d\n", (int)getpid());
	fflush(stdout);
	for (;;) {
		struct timespec ts = { 0, 3000000 };

		epoll_wait(epfd, &ev, 1, 1);
		nanosleep(&ts, NULL); /* a 3 ms blocking call on the loop thread */
	}
}
