/* Tests for core/pysym.c: code objects laid out per probes/cpython_layouts.inc
 * in a synthetic "target memory" image, read through a bounds-checked
 * callback. Well-formed objects for every supported version, then hostile
 * ones and random images (run under ASan: `make unit SANITIZE=1`). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cpython_layout.h"
#include "pysym.h"

#define CODE_TYPE 0x5555000010a0ULL /* fake &PyCode_Type */
#define STR_TYPE 0x5555000020c0ULL
#define BYTES_TYPE 0x5555000030e0ULL
#define MAX_TABLE (256 * 1024)      /* PYSYM_MAX_TABLE */
#define MAX_STR 256                 /* PYSYM_MAX_STR */
#define NOPOS 0xffffffffu

/* A slice of a fake address space; buf is an exact-size heap block. */
struct img {
	uint64_t base;
	unsigned char *buf;
	size_t size, used;
	long reads, bad_reads;
};

static int img_read(void *ctx, uint64_t addr, void *out, size_t len)
{
	struct img *im = ctx;

	im->reads++;
	if (addr < im->base || addr - im->base > im->size || len > im->size - (addr - im->base)) {
		im->bad_reads++;
		return -1;
	}
	memcpy(out, im->buf + (addr - im->base), len);
	return 0;
}

static void img_init(struct img *im, uint64_t base, size_t size)
{
	memset(im, 0, sizeof(*im));
	im->base = base;
	im->size = size;
	im->buf = calloc(1, size);
	assert_non_null(im->buf);
}

static void img_free(struct img *im)
{
	free(im->buf);
	im->buf = NULL;
}

/* Bump allocation, 16-aligned like CPython objects. */
static uint64_t img_alloc(struct img *im, size_t n)
{
	uint64_t a = im->base + im->used;

	if (im->used + n > im->size)
		fail_msg("image of %zu bytes too small for %zu more", im->size, n);
	im->used = (im->used + n + 15) & ~(size_t)15;
	return a;
}

static unsigned char *img_at(struct img *im, uint64_t addr)
{
	assert_true(addr >= im->base && addr - im->base < im->size);
	return im->buf + (addr - im->base);
}

static void put_u64(struct img *im, uint64_t addr, uint64_t v) { memcpy(img_at(im, addr), &v, 8); }
static void put_u32(struct img *im, uint64_t addr, uint32_t v) { memcpy(img_at(im, addr), &v, 4); }
static void put_i64(struct img *im, uint64_t addr, int64_t v) { memcpy(img_at(im, addr), &v, 8); }

#define STATE_ASCII_COMPACT ((1u << 5) | (1u << 6) | (1u << 2)) /* compact, ascii, kind 1 */

/* Compact ASCII str object; room for extra bytes after the text. */
static uint64_t mk_str_len(struct img *im, const struct cpython_layout *L, const char *s,
			   int64_t len_field, uint32_t state, size_t extra)
{
	size_t n = strlen(s);
	uint64_t a = img_alloc(im, (size_t)L->str_ascii_data + n + 1 + extra);

	put_u64(im, a + 0, 1);                 /* ob_refcnt */
	put_u64(im, a + (uint64_t)L->object_type, STR_TYPE);
	put_i64(im, a + (uint64_t)L->str_length, len_field);
	put_u32(im, a + (uint64_t)L->str_state, state);
	memcpy(img_at(im, a + (uint64_t)L->str_ascii_data), s, n + 1);
	if (extra) /* text runs on: "handlerxxxx...", then NUL */
		memset(img_at(im, a + (uint64_t)L->str_ascii_data + n), 'x', extra);
	return a;
}

static uint64_t mk_str(struct img *im, const struct cpython_layout *L, const char *s)
{
	return mk_str_len(im, L, s, (int64_t)strlen(s), STATE_ASCII_COMPACT, 0);
}

static uint64_t mk_bytes(struct img *im, const struct cpython_layout *L, const void *data,
			 size_t n, int64_t size_field)
{
	uint64_t a = img_alloc(im, (size_t)L->bytes_data + n + 1);

	put_u64(im, a + 0, 1);
	put_u64(im, a + (uint64_t)L->object_type, BYTES_TYPE);
	put_i64(im, a + (uint64_t)L->bytes_size, size_field);
	if (n)
		memcpy(img_at(im, a + (uint64_t)L->bytes_data), data, n);
	return a;
}

struct code_spec {
	uint64_t type;
	int firstlineno;
	uint64_t name, qualname, filename, table;
};

static uint64_t mk_code(struct img *im, const struct cpython_layout *L, const struct code_spec *c)
{
	uint64_t a = img_alloc(im, (size_t)L->code_size);
	int32_t fl = c->firstlineno;

	put_u64(im, a + 0, 1);
	put_u64(im, a + (uint64_t)L->object_type, c->type);
	memcpy(img_at(im, a + (uint64_t)L->code_firstlineno), &fl, 4);
	put_u64(im, a + (uint64_t)L->code_name, c->name);
	if (L->code_qualname >= 0)
		put_u64(im, a + (uint64_t)L->code_qualname, c->qualname);
	put_u64(im, a + (uint64_t)L->code_filename, c->filename);
	put_u64(im, a + (uint64_t)L->code_linetable, c->table);
	return a;
}

/* Line tables with the same answers for firstlineno fl:
 *   pos (version's unit) -> line
 * 3.11+: 0..2 fl, 3..4 fl+2, 5 none, 6 fl+3, 7.. none
 * 3.10 : 0..2 fl, 3..4 fl+1, 5 fl+3, 6.. none
 * 3.8  : bytes 0..5 fl, 6..9 fl+1, 10.. fl+3 */
static const unsigned char loc311[] = {
	0x80 | 10 << 3 | 2, 0, 5,   /* one-line +0, 3 units, columns */
	0x80 | 12 << 3 | 1, 4, 9,   /* one-line +2, 2 units */
	0x80 | 15 << 3 | 0,         /* no location, 1 unit */
	0x80 | 11 << 3 | 0, 1, 2,   /* one-line +1, 1 unit */
};
static const unsigned char lt310[] = { 6, 0, 4, 1, 2, 2 };
static const unsigned char lnotab38[] = { 6, 1, 4, 2 };

struct table_case {
	const unsigned char *t;
	size_t n;
	unsigned pos[4];
	int delta[4]; /* line - fl, or -1000 for "no line" */
};

static struct table_case table_for(int minor)
{
	struct table_case tc;

	memset(&tc, 0, sizeof(tc));
	if (minor >= 11) {
		tc = (struct table_case){ loc311, sizeof(loc311), { 1, 4, 5, 6 }, { 0, 2, -1000, 3 } };
	} else if (minor == 10) {
		tc = (struct table_case){ lt310, sizeof(lt310), { 2, 3, 5, 6 }, { 0, 1, 3, -1000 } };
	} else {
		tc = (struct table_case){ lnotab38, sizeof(lnotab38), { 0, 6, 9, 200 }, { 0, 1, 1, 3 } };
	}
	return tc;
}

/* A whole well-formed code object; returns its address. */
static uint64_t mk_good_code(struct img *im, const struct cpython_layout *L, int fl)
{
	struct table_case tc = table_for(L->minor);
	struct code_spec c = {
		.type = CODE_TYPE,
		.firstlineno = fl,
		.name = mk_str(im, L, "fetch"),
		.qualname = mk_str(im, L, "Client.fetch"),
		.filename = mk_str(im, L, "/srv/app/client.py"),
		.table = mk_bytes(im, L, tc.t, tc.n, (int64_t)tc.n),
	};

	return mk_code(im, L, &c);
}

static const struct cpython_layout *layout(int minor)
{
	const struct cpython_layout *L = cpython_layout_find(3, minor);

	assert_non_null(L);
	return L;
}

static void test_resolve_311(void **state)
{
	const struct cpython_layout *L = layout(11);
	struct img im;
	struct pysym *s;
	struct pysym_frame fr;
	uint64_t code, hits, misses, failures;

	(void)state;
	img_init(&im, 0x7f1200000000ULL, 4096);
	code = mk_good_code(&im, L, 100);
	s = pysym_new(L, img_read, &im, CODE_TYPE);
	assert_non_null(s);

	assert_int_equal(pysym_resolve(s, code, 1, 100, &fr), 0);
	assert_string_equal(fr.function, "Client.fetch");
	assert_string_equal(fr.file, "/srv/app/client.py");
	assert_int_equal(fr.line, 100);
	pysym_stats(s, &hits, &misses, &failures);
	assert_int_equal(hits, 0);
	assert_int_equal(misses, 1);
	assert_int_equal(failures, 0);

	/* cached: no more reads, other positions decoded from the copy */
	im.reads = 0;
	assert_int_equal(pysym_resolve(s, code, 4, 100, &fr), 0);
	assert_int_equal(fr.line, 102);
	assert_string_equal(fr.function, "Client.fetch");
	assert_int_equal(pysym_resolve(s, code, 5, 100, &fr), 0);
	assert_int_equal(fr.line, -1);
	assert_int_equal(pysym_resolve(s, code, 6, 100, &fr), 0);
	assert_int_equal(fr.line, 103);
	assert_int_equal(pysym_resolve(s, code, 7, 100, &fr), 0);
	assert_int_equal(fr.line, -1);
	/* a frame not started yet: its first line */
	assert_int_equal(pysym_resolve(s, code, NOPOS, 100, &fr), 0);
	assert_int_equal(fr.line, 100);
	assert_int_equal(im.reads, 0);
	pysym_stats(s, &hits, &misses, &failures);
	assert_int_equal(hits, 5);
	assert_int_equal(misses, 1);
	assert_int_equal(failures, 0);

	/* another firstlineno checksum: the object is read again, and since
	 * it says 100, the frame the walker saw was of another object that
	 * lived at this address (freed and reused): not named after this one */
	assert_int_equal(pysym_resolve(s, code, 1, 7, &fr), -1);
	assert_true(im.reads > 0);
	pysym_stats(s, &hits, &misses, &failures);
	assert_int_equal(misses, 2);
	assert_int_equal(failures, 1);
	/* 0: the walker could not read it, nothing to compare */
	assert_int_equal(pysym_resolve(s, code, 1, 0, &fr), 0);
	assert_string_equal(fr.function, "Client.fetch");

	assert_int_equal(pysym_resolve(s, 0, 1, 100, &fr), -1);
	assert_int_equal(pysym_resolve(s, code, 1, 100, NULL), -1);
	assert_int_equal(pysym_resolve(NULL, code, 1, 100, &fr), -1);
	pysym_free(s);
	img_free(&im);
}

static void test_resolve_versions(void **state)
{
	static const int minors[] = { 8, 9, 10, 11, 12, 13 };
	size_t v;

	(void)state;
	for (v = 0; v < sizeof(minors) / sizeof(minors[0]); v++) {
		const struct cpython_layout *L = layout(minors[v]);
		struct table_case tc = table_for(minors[v]);
		struct img im;
		struct pysym *s;
		struct pysym_frame fr;
		uint64_t code;
		int k;

		img_init(&im, 0x560000100000ULL + (uint64_t)v * 0x10000, 4096);
		code = mk_good_code(&im, L, 500);
		s = pysym_new(L, img_read, &im, CODE_TYPE);
		assert_non_null(s);
		for (k = 0; k < 4; k++) {
			int want = tc.delta[k] == -1000 ? -1 : 500 + tc.delta[k];

			assert_int_equal(pysym_resolve(s, code, tc.pos[k], 500, &fr), 0);
			/* <= 3.10 have no co_qualname: co_name */
			assert_string_equal(fr.function, minors[v] >= 11 ? "Client.fetch" : "fetch");
			assert_string_equal(fr.file, "/srv/app/client.py");
			if (fr.line != want)
				fail_msg("3.%d pos %u: line %d, want %d", minors[v], tc.pos[k], fr.line, want);
		}
		pysym_free(s);
		img_free(&im);
	}
}

static void test_no_type_check(void **state)
{
	const struct cpython_layout *L = layout(12);
	struct img im;
	struct pysym *s;
	struct pysym_frame fr;
	uint64_t code;

	(void)state;
	img_init(&im, 0x10000, 4096);
	code = mk_good_code(&im, L, 3);
	put_u64(&im, code + (uint64_t)L->object_type, 0x1234);
	/* code_type_addr 0: type not known, not checked */
	s = pysym_new(L, img_read, &im, 0);
	assert_int_equal(pysym_resolve(s, code, 1, 3, &fr), 0);
	assert_string_equal(fr.function, "Client.fetch");
	pysym_free(s);
	/* known: checked */
	s = pysym_new(L, img_read, &im, CODE_TYPE);
	assert_int_equal(pysym_resolve(s, code, 1, 3, &fr), -1);
	pysym_free(s);
	assert_null(pysym_new(NULL, img_read, &im, 0));
	assert_null(pysym_new(L, NULL, &im, 0));
	img_free(&im);
}

static void test_wrong_type_cached(void **state)
{
	const struct cpython_layout *L = layout(11);
	struct img im;
	struct pysym *s;
	struct pysym_frame fr;
	uint64_t code, hits, misses, failures;

	(void)state;
	img_init(&im, 0x7f0000000000ULL, 4096);
	code = mk_good_code(&im, L, 10);
	put_u64(&im, code + (uint64_t)L->object_type, CODE_TYPE + 8);
	s = pysym_new(L, img_read, &im, CODE_TYPE);
	assert_int_equal(pysym_resolve(s, code, 1, 10, &fr), -1);
	assert_int_equal(pysym_resolve(s, code, 1, 10, &fr), -1);
	pysym_stats(s, &hits, &misses, &failures);
	assert_int_equal(misses, 1);
	assert_int_equal(failures, 1);
	assert_int_equal(hits, 1);
	pysym_free(s);
	img_free(&im);
}

/* A garbage (negative) co_firstlineno is no line, even for a frame that
 * has not started. */
static void test_negative_firstlineno(void **state)
{
	int minor;

	(void)state;
	for (minor = 8; minor <= 13; minor++) {
		const struct cpython_layout *L = layout(minor);
		struct img im;
		struct pysym *s;
		struct pysym_frame fr;
		uint64_t code;

		img_init(&im, 0x7f6600000000ULL, 4096);
		code = mk_good_code(&im, L, -5);
		s = pysym_new(L, img_read, &im, CODE_TYPE);
		assert_int_equal(pysym_resolve(s, code, NOPOS, 0, &fr), 0);
		assert_int_equal(fr.line, -1);
		assert_int_equal(pysym_resolve(s, code, 0, 0, &fr), 0);
		assert_int_equal(fr.line, -1);
		pysym_free(s);
		img_free(&im);
	}
}

/* One code object whose name/file/table are built by the caller. */
static int resolve_one(int minor, uint64_t name_addr_or_0, int64_t len_field, uint32_t state,
		       size_t extra, int64_t table_size, size_t table_room, struct pysym_frame *fr,
		       char *fn_copy, size_t fn_cap)
{
	const struct cpython_layout *L = layout(minor);
	struct table_case tc = table_for(minor);
	struct img im;
	struct pysym *s;
	struct code_spec c;
	uint64_t code;
	int r;

	img_init(&im, 0x7f5500000000ULL, 8192 + extra + table_room);
	memset(&c, 0, sizeof(c));
	c.type = CODE_TYPE;
	c.firstlineno = 20;
	c.name = c.qualname = name_addr_or_0 ? name_addr_or_0
					     : mk_str_len(&im, L, "handler", len_field, state, extra);
	c.filename = mk_str(&im, L, "h.py");
	if (table_room) {
		unsigned char *t = calloc(1, table_room);

		assert_non_null(t);
		memcpy(t, tc.t, tc.n);
		c.table = mk_bytes(&im, L, t, table_room, table_size);
		free(t);
	} else {
		c.table = mk_bytes(&im, L, tc.t, tc.n, table_size);
	}
	code = mk_code(&im, L, &c);
	s = pysym_new(L, img_read, &im, CODE_TYPE);
	assert_non_null(s);
	r = pysym_resolve(s, code, 1, 20, fr);
	if (r == 0 && fn_copy)
		snprintf(fn_copy, fn_cap, "%s", fr->function);
	pysym_free(s);
	img_free(&im);
	return r;
}

static void test_hostile_strings(void **state)
{
	struct pysym_frame fr;
	char fn[1024];
	int r;

	(void)state;
	/* huge length, the bytes are there: truncated */
	r = resolve_one(11, 0, (int64_t)1 << 40, STATE_ASCII_COMPACT, 1000, 10, 0, &fr, fn, sizeof(fn));
	assert_int_equal(r, 0);
	assert_int_equal(strlen(fn), MAX_STR);
	assert_memory_equal(fn, "handler", 7);
	/* huge length at the end of memory: a clean failure */
	r = resolve_one(11, 0, INT64_MAX, STATE_ASCII_COMPACT, 0, 10, 0, &fr, fn, sizeof(fn));
	assert_true(r == 0 || r == -1);
	if (r == 0)
		assert_true(strlen(fn) <= MAX_STR);
	/* negative length */
	r = resolve_one(11, 0, -1, STATE_ASCII_COMPACT, 0, 10, 0, &fr, fn, sizeof(fn));
	assert_int_equal(r, -1);
	r = resolve_one(11, 0, INT64_MIN, STATE_ASCII_COMPACT, 0, 10, 0, &fr, fn, sizeof(fn));
	assert_int_equal(r, -1);
	/* zero length: an empty name */
	r = resolve_one(11, 0, 0, STATE_ASCII_COMPACT, 0, 10, 0, &fr, fn, sizeof(fn));
	assert_int_equal(r, 0);
	assert_string_equal(fn, "");
	/* not compact or not ASCII: shown as "?" */
	r = resolve_one(11, 0, 7, 1u << 6, 0, 10, 0, &fr, fn, sizeof(fn));
	assert_int_equal(r, 0);
	assert_string_equal(fn, "?");
	r = resolve_one(11, 0, 7, 1u << 5 | 2u << 2, 0, 10, 0, &fr, fn, sizeof(fn));
	assert_int_equal(r, 0);
	assert_string_equal(fn, "?");
	/* name pointer outside the image, or NULL */
	r = resolve_one(11, 0x1000, 7, STATE_ASCII_COMPACT, 0, 10, 0, &fr, NULL, 0);
	assert_int_equal(r, -1);
	r = resolve_one(11, 0x7f5500000000ULL + 8192 - 20, 7, STATE_ASCII_COMPACT, 0, 10, 0, &fr, NULL, 0);
	assert_int_equal(r, -1);
}

static void test_hostile_tables(void **state)
{
	struct pysym_frame fr;
	char fn[64];
	int minor;

	(void)state;
	for (minor = 8; minor <= 13; minor++) {
		/* over the cap: no table, no line, but a frame */
		assert_int_equal(resolve_one(minor, 0, 7, STATE_ASCII_COMPACT, 0, MAX_TABLE + 1, 0,
					     &fr, fn, sizeof(fn)), 0);
		assert_string_equal(fn, "handler");
		assert_int_equal(fr.line, -1);
		assert_int_equal(resolve_one(minor, 0, 7, STATE_ASCII_COMPACT, 0, INT64_MAX, 0,
					     &fr, NULL, 0), 0);
		assert_int_equal(fr.line, -1);
		assert_int_equal(resolve_one(minor, 0, 7, STATE_ASCII_COMPACT, 0, -5, 0, &fr, NULL, 0), 0);
		assert_int_equal(fr.line, -1);
		/* a size within the cap but past the end of memory */
		assert_int_equal(resolve_one(minor, 0, 7, STATE_ASCII_COMPACT, 0, MAX_TABLE, 0,
					     &fr, NULL, 0), 0);
		assert_int_equal(fr.line, -1);
		/* exactly the cap, all readable: decoded */
		assert_int_equal(resolve_one(minor, 0, 7, STATE_ASCII_COMPACT, 0, MAX_TABLE, MAX_TABLE,
					     &fr, NULL, 0), 0);
		assert_int_equal(fr.line, 20);
		/* empty table */
		assert_int_equal(resolve_one(minor, 0, 7, STATE_ASCII_COMPACT, 0, 0, 0, &fr, NULL, 0), 0);
		assert_int_equal(fr.line, minor <= 9 ? 20 : -1);
	}
}

static void test_hostile_pointers(void **state)
{
	const struct cpython_layout *L = layout(11);
	struct img im;
	struct pysym *s;
	struct pysym_frame fr;
	uint64_t code, bad, end;
	struct code_spec c;

	(void)state;
	img_init(&im, 0x7f3300000000ULL, 4096);
	end = im.base + im.size;
	code = mk_good_code(&im, L, 9);
	s = pysym_new(L, img_read, &im, CODE_TYPE);
	/* code object outside the image, straddling its end, before it */
	assert_int_equal(pysym_resolve(s, 0x1000, 1, 9, &fr), -1);
	assert_int_equal(pysym_resolve(s, end - 64, 1, 9, &fr), -1);
	assert_int_equal(pysym_resolve(s, end, 1, 9, &fr), -1);
	assert_int_equal(pysym_resolve(s, im.base - 8, 1, 9, &fr), -1);
	assert_int_equal(pysym_resolve(s, ~0ULL - 16, 1, 9, &fr), -1);
	assert_int_equal(pysym_resolve(s, ~0ULL, 1, 9, &fr), -1);
	assert_true(im.bad_reads > 0);

	/* filename outside, NULL; qualname NULL */
	memset(&c, 0, sizeof(c));
	c.type = CODE_TYPE;
	c.firstlineno = 9;
	c.name = c.qualname = mk_str(&im, L, "f");
	c.filename = 0xdead0000ULL;
	c.table = mk_bytes(&im, L, loc311, sizeof(loc311), sizeof(loc311));
	bad = mk_code(&im, L, &c);
	assert_int_equal(pysym_resolve(s, bad, 1, 9, &fr), -1);
	c.filename = 0;
	bad = mk_code(&im, L, &c);
	assert_int_equal(pysym_resolve(s, bad, 1, 9, &fr), -1);
	c.filename = c.name;
	c.qualname = 0;
	bad = mk_code(&im, L, &c);
	assert_int_equal(pysym_resolve(s, bad, 1, 9, &fr), -1);
	/* line table outside: the frame without a line */
	c.qualname = c.name;
	c.table = end + 4096;
	bad = mk_code(&im, L, &c);
	assert_int_equal(pysym_resolve(s, bad, 1, 9, &fr), 0);
	assert_string_equal(fr.function, "f");
	assert_int_equal(fr.line, -1);
	assert_int_equal(pysym_resolve(s, bad, NOPOS, 9, &fr), 0);
	assert_int_equal(fr.line, 9);
	/* the good one still resolves */
	assert_int_equal(pysym_resolve(s, code, 4, 9, &fr), 0);
	assert_int_equal(fr.line, 11);
	pysym_free(s);
	img_free(&im);
}

/* More keys than one cache neighbourhood holds (16), all with the same
 * home slot: eviction must keep answers right and leak nothing. */
static void test_cache_eviction(void **state)
{
	const struct cpython_layout *L = layout(13);
	struct img im;
	struct pysym *s;
	struct pysym_frame fr;
	uint64_t code, hits, misses, failures, bad;
	int k, round;

	(void)state;
	img_init(&im, 0x7e0000000000ULL, 4096);
	code = mk_good_code(&im, L, 42);
	bad = img_alloc(&im, (size_t)L->code_size); /* zeroed: wrong type */
	s = pysym_new(L, img_read, &im, CODE_TYPE);
	for (round = 0; round < 3; round++)
		for (k = 0; k < 40; k++) {
			/* firstlineno only differs above the slot bits; the
			 * object at the address says the same (a new object) */
			uint32_t fl = (uint32_t)k << 12;

			memcpy(img_at(&im, code + (uint64_t)L->code_firstlineno), &fl, 4);
			assert_int_equal(pysym_resolve(s, code, 4, fl, &fr), 0);
			assert_string_equal(fr.function, "Client.fetch");
			assert_string_equal(fr.file, "/srv/app/client.py");
			assert_int_equal(fr.line, (int)fl + 2);
			assert_int_equal(pysym_resolve(s, bad, 4, fl, &fr), -1);
		}
	pysym_stats(s, &hits, &misses, &failures);
	assert_int_equal(hits + misses, 240);
	assert_true(misses >= 80);
	assert_true(failures >= 40 && failures <= misses);
	pysym_free(s);

	/* many distinct code objects: more than the cache holds */
	s = pysym_new(L, img_read, &im, CODE_TYPE);
	for (k = 0; k < 20000; k++) {
		int32_t fl = k;

		memcpy(img_at(&im, code + (uint64_t)L->code_firstlineno), &fl, 4);
		assert_int_equal(pysym_resolve(s, code, 1, (uint32_t)k, &fr), 0);
		assert_int_equal(fr.line, k);
	}
	pysym_free(s);
	img_free(&im);
}

/* xorshift64: deterministic garbage, so failures reproduce. */
static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void check_frame(int r, const struct pysym_frame *fr)
{
	assert_true(r == 0 || r == -1);
	if (r == 0) {
		assert_non_null(fr->function);
		assert_non_null(fr->file);
		assert_true(strlen(fr->function) <= MAX_STR);
		assert_true(strlen(fr->file) <= MAX_STR);
		if (fr->line < -1)
			fail_msg("line %d for %s (%s)", fr->line, fr->function, fr->file);
	}
}

/* Random images: garbage sprinkled with pointers back into the image,
 * type words, and str state bits, so the walk gets past the first checks. */
static void test_random_images(void **state)
{
	uint64_t seed = 0x243f6a8885a308d3ULL;
	int iter, ok = 0;

	(void)state;
	for (iter = 0; iter < 2000; iter++) {
		const struct cpython_layout *L = layout(8 + iter % 6);
		struct img im;
		struct pysym *s;
		size_t size = 64 + rng_next(&seed) % 4096, i;
		uint64_t ct = iter & 1 ? CODE_TYPE : 0;
		int k;

		img_init(&im, 0x7f0000000000ULL + (rng_next(&seed) % 0x100000) * 16, size);
		for (i = 0; i < size; i++)
			im.buf[i] = (unsigned char)rng_next(&seed);
		for (i = 0; i + 8 <= size; i += 8) {
			uint64_t r = rng_next(&seed) % 8, v;

			if (r == 0 || r >= 5)
				v = im.base + (rng_next(&seed) % size & ~15ULL); /* pointer inside */
			else if (r == 1)
				v = CODE_TYPE;
			else if (r == 2)
				v = rng_next(&seed) % 600;                   /* small length */
			else if (r == 3)
				v = STATE_ASCII_COMPACT;
			else
				continue;
			memcpy(im.buf + i, &v, 8);
		}
		/* some 16-aligned spots look like str headers */
		for (i = 0; i + 40 <= size; i += 16) {
			if (rng_next(&seed) % 3)
				continue;
			put_i64(&im, im.base + i + (uint64_t)L->str_length,
				(int64_t)(rng_next(&seed) % 64) - 2);
			put_u32(&im, im.base + i + (uint64_t)L->str_state, STATE_ASCII_COMPACT);
		}
		s = pysym_new(L, img_read, &im, ct);
		assert_non_null(s);
		for (k = 0; k < 30; k++) {
			struct pysym_frame fr;
			uint64_t addr = k < 20 ? im.base + (rng_next(&seed) % size & ~15ULL)
				      : k < 25 ? im.base + rng_next(&seed) % size
					       : rng_next(&seed);
			uint32_t pos = k % 5 == 0 ? NOPOS : (uint32_t)(rng_next(&seed) % 512);
			int r = pysym_resolve(s, addr, pos, (uint32_t)rng_next(&seed) % 4, &fr);

			check_frame(r, &fr);
			ok += r == 0;
		}
		pysym_free(s);
		img_free(&im);
	}
	print_message("random images: %d frames resolved\n", ok);
}

/* Valid objects with a few random bytes flipped: reaches deeper paths
 * (table decoding, string copies) than pure garbage. */
static void test_corrupted_objects(void **state)
{
	uint64_t seed = 0x13198a2e03707344ULL;
	int iter, ok = 0;

	(void)state;
	for (iter = 0; iter < 2000; iter++) {
		const struct cpython_layout *L = layout(8 + iter % 6);
		struct img im;
		struct pysym *s;
		struct pysym_frame fr;
		uint64_t code;
		int k, flips = 1 + (int)(rng_next(&seed) % 8);

		img_init(&im, 0x7f4400000000ULL, 1024);
		code = mk_good_code(&im, L, 77);
		for (k = 0; k < flips; k++)
			im.buf[rng_next(&seed) % im.used] ^= (unsigned char)(1u << (rng_next(&seed) % 8));
		s = pysym_new(L, img_read, &im, CODE_TYPE);
		for (k = 0; k < 8; k++) {
			int r = pysym_resolve(s, code, k == 7 ? NOPOS : (uint32_t)k, 77, &fr);

			check_frame(r, &fr);
			ok += r == 0;
		}
		pysym_free(s);
		img_free(&im);
	}
	print_message("corrupted objects: %d frames resolved\n", ok);
	assert_true(ok > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resolve_311),
		cmocka_unit_test(test_resolve_versions),
		cmocka_unit_test(test_no_type_check),
		cmocka_unit_test(test_wrong_type_cached),
		cmocka_unit_test(test_negative_firstlineno),
		cmocka_unit_test(test_hostile_strings),
		cmocka_unit_test(test_hostile_tables),
		cmocka_unit_test(test_hostile_pointers),
		cmocka_unit_test(test_cache_eviction),
		cmocka_unit_test(test_random_images),
		cmocka_unit_test(test_corrupted_objects),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
