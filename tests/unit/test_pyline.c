/* Tests for core/pyline.c (line-table decoders) and the generated CPython
 * layout table. Fixture files written by pyline_dump.py (see
 * run-pyline-fixtures.sh) are read from the directory in $LOOPSPY_FIXTURES;
 * without it the fixture test is skipped and only the hand-made cases run. */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cpython_layout.h"
#include "pyline.h"

/* One fixture file: the current code object and running totals. */
struct fixture {
	const char *file;
	int major, minor, micro;
	int firstlineno;
	char name[512];
	unsigned char *table;
	size_t len;
	long codes, positions, failures;
};

static int hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* "C <firstlineno> <name> <hex|->": decode the table into fx. */
static int fixture_code_parse(struct fixture *fx, char *line)
{
	char *save, *tok, *hex;
	size_t i, n;

	tok = strtok_r(line + 1, " \n", &save);
	if (!tok)
		return -1;
	fx->firstlineno = atoi(tok);
	tok = strtok_r(NULL, " \n", &save);
	hex = strtok_r(NULL, " \n", &save);
	if (!tok || !hex)
		return -1;
	snprintf(fx->name, sizeof(fx->name), "%s", tok);
	free(fx->table);
	fx->table = NULL;
	fx->len = 0;
	if (!strcmp(hex, "-"))
		return 0;
	n = strlen(hex);
	if (n % 2)
		return -1;
	fx->table = malloc(n / 2 + 1);
	if (!fx->table)
		return -1;
	for (i = 0; i < n / 2; i++) {
		int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		fx->table[i] = (unsigned char)(hi << 4 | lo);
	}
	fx->len = n / 2;
	return 0;
}

/* "P pos:line ...": check every position of the current code object. */
static int fixture_positions_check(struct fixture *fx, char *line)
{
	char *save, *tok;

	for (tok = strtok_r(line + 1, " \n", &save); tok;
	     tok = strtok_r(NULL, " \n", &save)) {
		unsigned long pos;
		long want;
		char *end;
		int got;

		pos = strtoul(tok, &end, 10);
		if (*end != ':')
			return -1;
		want = strtol(end + 1, &end, 10);
		if (*end)
			return -1;
		got = pyline_lookup(fx->major, fx->minor, fx->table, fx->len,
				    fx->firstlineno, (unsigned)pos);
		fx->positions++;
		if (got != want) {
			if (fx->failures++ < 20)
				print_error("%s: %d.%d.%d %s pos %lu: expected %ld, got %d\n",
					    fx->file, fx->major, fx->minor, fx->micro,
					    fx->name, pos, want, got);
		}
	}
	return 0;
}

/* Returns failures, or -1 when the file cannot be parsed. */
static long fixture_file_check(const char *path, long *codes, long *positions)
{
	struct fixture fx = { .file = path };
	char *line = NULL;
	size_t cap = 0;
	long lineno = 0;
	int bad = 0;
	FILE *f = fopen(path, "r");

	if (!f) {
		print_error("%s: cannot open\n", path);
		return -1;
	}
	while (!bad && getline(&line, &cap, f) > 0) {
		lineno++;
		switch (line[0]) {
		case '#':
		case '\n':
			break;
		case 'V':
			bad = sscanf(line, "V %d %d %d", &fx.major, &fx.minor,
				     &fx.micro) != 3;
			break;
		case 'C':
			bad = !fx.major || fixture_code_parse(&fx, line);
			fx.codes++;
			break;
		case 'P':
			bad = fixture_positions_check(&fx, line);
			break;
		default:
			bad = 1;
		}
	}
	if (bad)
		print_error("%s:%ld: malformed fixture line\n", path, lineno);
	free(line);
	free(fx.table);
	fclose(f);
	print_message("%s: %d.%d.%d: %ld code objects, %ld positions, %ld failures\n",
		      path, fx.major, fx.minor, fx.micro, fx.codes, fx.positions,
		      fx.failures);
	*codes += fx.codes;
	*positions += fx.positions;
	return bad ? -1 : fx.failures;
}

static void test_fixtures(void **state)
{
	const char *dir = getenv("LOOPSPY_FIXTURES");
	long failures = 0, codes = 0, positions = 0;
	int files = 0;
	struct dirent *de;
	DIR *d;

	(void)state;
	if (!dir || !*dir) {
		print_message("LOOPSPY_FIXTURES not set: fixture test skipped\n");
		skip();
	}
	d = opendir(dir);
	if (!d)
		fail_msg("cannot open LOOPSPY_FIXTURES=%s", dir);
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		char path[4096];
		long r;

		if (n < 4 || strcmp(de->d_name + n - 4, ".txt"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		r = fixture_file_check(path, &codes, &positions);
		failures += r < 0 ? 1 : r;
		files++;
	}
	closedir(d);
	print_message("fixtures: %d files, %ld code objects, %ld positions\n",
		      files, codes, positions);
	assert_true(files > 0);
	assert_int_equal(failures, 0);
}

/* Small tables with answers worked out by hand from the formats. */
static void test_known_tables(void **state)
{
	/* 3.8: +2 bytes/+1 line, +4/+3, +0/-2 (same address), +200/+127. */
	static const unsigned char lnotab[] = { 2, 1, 4, 3, 0, 0xfe, 200, 127 };
	/* 3.10: [0,4) +1, [4,6) no line, [6,6) +2 (empty), [6,10) +0,
	 * [10,12) -3. */
	static const unsigned char lt310[] = { 4, 1, 2, 0x80, 0, 2, 4, 0, 2, 0xfd };
	/* 3.11: one-line1 (2 units) + 2 column bytes; no-location (1 unit);
	 * no-columns svarint -5 (= 11) (3 units); short form 3 (1 unit) +
	 * column byte; long form svarint +1000 (= 2000 = 0x10 | 0x40,
	 * 0x1f) with end line, columns (4 units). */
	static const unsigned char loc[] = {
		0x80 | 11 << 3 | 1, 4, 9,
		0x80 | 15 << 3 | 0,
		0x80 | 13 << 3 | 2, 11,
		0x80 | 3 << 3 | 0, 0x25,
		0x80 | 14 << 3 | 3, 0x50, 0x1f, 0, 5, 9,
	};
	int v;

	(void)state;
	assert_int_equal(pyline_lookup(3, 8, lnotab, sizeof(lnotab), 10, 0), 10);
	assert_int_equal(pyline_lookup(3, 8, lnotab, sizeof(lnotab), 10, 2), 11);
	assert_int_equal(pyline_lookup(3, 8, lnotab, sizeof(lnotab), 10, 4), 11);
	assert_int_equal(pyline_lookup(3, 8, lnotab, sizeof(lnotab), 10, 6), 12);
	assert_int_equal(pyline_lookup(3, 9, lnotab, sizeof(lnotab), 10, 205), 12);
	assert_int_equal(pyline_lookup(3, 9, lnotab, sizeof(lnotab), 10, 206), 139);
	assert_int_equal(pyline_lookup(3, 9, lnotab, sizeof(lnotab), 10, ~0u), 139);
	assert_int_equal(pyline_lookup(3, 8, NULL, 0, 7, 100), 7);

	/* pos is in code units: byte = 2 * pos. */
	assert_int_equal(pyline_lookup(3, 10, lt310, sizeof(lt310), 10, 0), 11);
	assert_int_equal(pyline_lookup(3, 10, lt310, sizeof(lt310), 10, 1), 11);
	assert_int_equal(pyline_lookup(3, 10, lt310, sizeof(lt310), 10, 2), -1);
	assert_int_equal(pyline_lookup(3, 10, lt310, sizeof(lt310), 10, 3), 13);
	assert_int_equal(pyline_lookup(3, 10, lt310, sizeof(lt310), 10, 4), 13);
	assert_int_equal(pyline_lookup(3, 10, lt310, sizeof(lt310), 10, 5), 10);
	assert_int_equal(pyline_lookup(3, 10, lt310, sizeof(lt310), 10, 6), -1);

	for (v = 11; v <= 13; v++) {
		assert_int_equal(pyline_lookup(3, v, loc, sizeof(loc), 20, 0), 21);
		assert_int_equal(pyline_lookup(3, v, loc, sizeof(loc), 20, 1), 21);
		assert_int_equal(pyline_lookup(3, v, loc, sizeof(loc), 20, 2), -1);
		assert_int_equal(pyline_lookup(3, v, loc, sizeof(loc), 20, 3), 16);
		assert_int_equal(pyline_lookup(3, v, loc, sizeof(loc), 20, 5), 16);
		assert_int_equal(pyline_lookup(3, v, loc, sizeof(loc), 20, 6), 16);
		assert_int_equal(pyline_lookup(3, v, loc, sizeof(loc), 20, 7), 1016);
		assert_int_equal(pyline_lookup(3, v, loc, sizeof(loc), 20, 10), 1016);
		assert_int_equal(pyline_lookup(3, v, loc, sizeof(loc), 20, 11), -1);
	}
}

static void test_malformed_tables(void **state)
{
	/* Varint with continuation bits up to the end of the table. */
	static const unsigned char endless[] = { 0x80 | 14 << 3, 0x7f, 0x7f, 0x7f };
	/* Continuation bit set right before the next entry's first byte. */
	static const unsigned char cut[] = { 0x80 | 13 << 3, 0x41, 0x80 | 10 << 3, 1, 2 };
	/* Varint of 7 chunks (> 32 bits). */
	static const unsigned char huge[] = { 0x80 | 13 << 3, 0x7f, 0x7f, 0x7f,
					      0x7f, 0x7f, 0x7f, 0x01 };
	/* 32-bit magnitude: line jumps past INT_MAX. */
	static const unsigned char toofar[] = { 0x80 | 13 << 3, 0x7e, 0x7f, 0x7f,
						0x7f, 0x7f, 0x03 };
	/* Table starting with a continuation byte. */
	static const unsigned char nohead[] = { 0x12, 0x80 | 10 << 3, 1, 2 };
	/* Long form with its mandatory svarint missing. */
	static const unsigned char trunc[] = { 0x80 | 14 << 3 };
	/* Many +127 deltas could push an int line over INT_MAX. */
	static unsigned char big[1 << 16];
	size_t i;
	int v;

	(void)state;
	for (v = 7; v <= 14; v++) {
		assert_int_equal(pyline_lookup(3, v, (const unsigned char *)"", 0, 1,
					       v >= 10 ? 0 : 12),
				 v >= 8 && v <= 9 ? 1 : -1);
		assert_int_equal(pyline_lookup(3, v, NULL, 3, 1, 0), -1);
	}
	assert_int_equal(pyline_lookup(2, 7, endless, sizeof(endless), 1, 0), -1);
	for (v = 11; v <= 13; v++) {
		assert_int_equal(pyline_lookup(3, v, endless, sizeof(endless), 1, 0), -1);
		assert_int_equal(pyline_lookup(3, v, cut, sizeof(cut), 1, 0), -1);
		assert_int_equal(pyline_lookup(3, v, huge, sizeof(huge), 1, 0), -1);
		assert_int_equal(pyline_lookup(3, v, toofar, sizeof(toofar), 5, 0), -1);
		assert_int_equal(pyline_lookup(3, v, nohead, sizeof(nohead), 1, 0), -1);
		assert_int_equal(pyline_lookup(3, v, trunc, sizeof(trunc), 1, 0), -1);
		/* Every truncation of a valid table stays in bounds. */
		for (i = 0; i < sizeof(cut); i++)
			(void)pyline_lookup(3, v, cut, i, 1, 0);
	}
	/* An odd trailing byte is ignored (3.8) / cannot complete a pair. */
	assert_int_equal(pyline_lookup(3, 8, (const unsigned char *)"\x02\x01\x05", 3, 1, 9), 2);
	assert_int_equal(pyline_lookup(3, 10, (const unsigned char *)"\x02\x01\x05", 3, 1, 1), -1);

	for (i = 0; i < sizeof(big); i += 2) {
		big[i] = 0;
		big[i + 1] = 127;
	}
	big[sizeof(big) - 2] = 2;
	assert_int_equal(pyline_lookup(3, 8, big, sizeof(big), 0x7fff0000, 5), -1);
	assert_int_equal(pyline_lookup(3, 10, big, sizeof(big), 0x7fff0000, 0), -1);
	memset(big, 0x80 | 12 << 3, sizeof(big)); /* one-line2 entries, no columns */
	assert_int_equal(pyline_lookup(3, 12, big, sizeof(big), 0x7fffff00, ~0u), -1);
	/* A real line running below zero is no line. */
	assert_int_equal(pyline_lookup(3, 9, (const unsigned char *)"\x00\x80", 2, 5, 0), -1);
}

/* xorshift64: deterministic garbage, so failures reproduce. */
static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void test_random_tables(void **state)
{
	unsigned char buf[512];
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	int iter, v;

	(void)state;
	for (iter = 0; iter < 20000; iter++) {
		size_t len = rng_next(&seed) % sizeof(buf), i;
		/* Half the tables keep only valid-looking entry heads. */
		int heads = iter & 1;
		unsigned char *t;

		for (i = 0; i < len; i++)
			buf[i] = (unsigned char)rng_next(&seed);
		if (heads && len)
			buf[0] |= 0x80;
		/* Copy to an exact-size heap block so ASan sees overreads. */
		t = malloc(len ? len : 1);
		assert_non_null(t);
		memcpy(t, buf, len);
		for (v = 8; v <= 13; v++) {
			unsigned pos = (unsigned)rng_next(&seed) % 4096;
			int fl = (int)(rng_next(&seed) % 3 ? rng_next(&seed) % 100000
							  : (uint32_t)rng_next(&seed));
			int got = pyline_lookup(3, v, t, len, fl, pos);

			assert_true(got >= -1);
			got = pyline_lookup(3, v, t, len, fl, ~0u);
			assert_true(got >= -1);
		}
		free(t);
	}
}

static void test_layout_find(void **state)
{
	const struct cpython_layout *l;
	int minor;

	(void)state;
	for (minor = 8; minor <= 13; minor++) {
		l = cpython_layout_find(3, minor);
		assert_non_null(l);
		assert_int_equal(l->major, 3);
		assert_int_equal(l->minor, minor);
		/* Fields every version has. */
		assert_true(l->tstate_frame >= 0 && l->frame_back >= 0);
		assert_true(l->frame_code >= 0 && l->frame_pos > 0);
		assert_true(l->code_firstlineno > 0 && l->code_linetable > 0);
		assert_int_equal(l->bytes_data, 32);
		assert_int_equal(l->gil_size, 208);
		/* Exactly one way to find the GIL. */
		assert_true((l->rt_gil >= 0) != (l->interp_gil_ptr >= 0));
		assert_true((l->tstate_native_thread_id >= 0) == (minor >= 11));
		assert_true((l->code_adaptive >= 0) == (minor >= 11));
		assert_true((l->code_qualname >= 0) == (minor >= 11));
		if (minor >= 11)
			assert_int_equal(l->code_size, l->code_adaptive);
	}
	assert_null(cpython_layout_find(3, 7));
	assert_null(cpython_layout_find(3, 14));
	assert_null(cpython_layout_find(2, 7));
	assert_null(cpython_layout_find(4, 11));

	l = cpython_layout_find(3, 8);
	assert_int_equal(l->rt_gil, 1152);
	assert_int_equal(l->frame_pos, 104);
	assert_int_equal(l->tstate_cframe, -1);
	l = cpython_layout_find(3, 10);
	assert_int_equal(l->frame_pos, 96);
	l = cpython_layout_find(3, 11);
	assert_true(l->tstate_cframe != -1);
	assert_int_equal(l->tstate_frame, 8);
	assert_int_equal(l->frame_is_entry, 68);
	assert_int_equal(l->code_adaptive, 184);
	l = cpython_layout_find(3, 12);
	assert_true(l->tstate_cframe != -1);
	assert_int_equal(l->frame_owner, 70);
	assert_int_equal(l->interp_gil_ptr, 384);
	assert_int_equal(l->str_ascii_data, 40);
	l = cpython_layout_find(3, 13);
	assert_int_equal(l->tstate_cframe, -1);
	assert_int_equal(l->tstate_frame, 72);
	assert_int_equal(l->rt_interp_head, 632);
	assert_int_equal(l->frame_is_entry, -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_tables),
		cmocka_unit_test(test_malformed_tables),
		cmocka_unit_test(test_random_tables),
		cmocka_unit_test(test_layout_find),
		cmocka_unit_test(test_fixtures),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
