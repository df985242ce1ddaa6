/* CPython line-table decoders (3.8-3.13).
 *
 * The table bytes come from a process we do not trust, so each decoder reads
 * only inside [table, table + len), moves forward at least one byte per step
 * (so it always ends, in O(len)), and keeps line and address arithmetic in
 * 64 bits with explicit range checks (so nothing can overflow). A computed
 * line outside int range means the table is garbage: CPython itself keeps
 * the running line in an int. */
#include "pyline.h"

#include <limits.h>
#include <stdint.h>

/* Two's-complement reading of a byte, without implementation-defined
 * conversions to signed char. */
static int byte_signed(unsigned char b)
{
	return b < 128 ? (int)b : (int)b - 256;
}

static int line_valid(int64_t line)
{
	return line >= INT_MIN && line <= INT_MAX;
}

/* A line number as returned to callers: a negative one cannot be a real
 * source line and would collide with the -1 "no line" answer. */
static int line_result(int64_t line)
{
	return line >= 0 && line <= INT_MAX ? (int)line : -1;
}

/* 3.8/3.9 co_lnotab: (address increment, signed line increment) byte pairs.
 * The line of pos is firstlineno plus every line increment whose pair's
 * cumulative address is <= pos. A trailing odd byte is ignored, as CPython
 * does. Every position has a line here. */
static int lnotab_lookup(const unsigned char *t, size_t len, int firstlineno,
			 unsigned pos)
{
	int64_t line = firstlineno;
	uint64_t addr = 0;
	size_t i;

	for (i = 0; i + 1 < len; i += 2) {
		addr += t[i];
		if (addr > pos)
			break;
		line += byte_signed(t[i + 1]);
		if (!line_valid(line))
			return -1;
	}
	return line_result(line);
}

/* 3.10 co_linetable: (byte length, signed line delta) pairs, each covering
 * [end, end + length) in bytes; a delta of -128 means "no line" and leaves
 * the running line unchanged. f_lasti counts code units, hence pos * 2. */
static int linetable310_lookup(const unsigned char *t, size_t len,
			       int firstlineno, unsigned pos)
{
	uint64_t addr = (uint64_t)pos * 2, end = 0;
	int64_t line = firstlineno;
	size_t i;

	for (i = 0; i + 1 < len; i += 2) {
		int delta = byte_signed(t[i + 1]);

		end += t[i];
		if (delta != -128) {
			line += delta;
			if (!line_valid(line))
				return -1;
		}
		/* Ranges are contiguous from 0, so the first one whose end
		 * passes addr is the one that holds it. */
		if (addr < end)
			return delta == -128 ? -1 : line_result(line);
	}
	return -1;
}

/* Unsigned varint of the 3.11+ location table: 6 data bits per byte, least
 * significant chunk first, bit 6 = more follows. Reads only [*i, lim);
 * fails on running off the entry or exceeding 32 bits, which no real table
 * does (CPython decodes into an unsigned int). */
static int varint_read(const unsigned char *t, size_t *i, size_t lim,
		       uint64_t *out)
{
	uint64_t val = 0;
	unsigned shift = 0;

	for (;;) {
		unsigned char b;

		if (*i >= lim || shift > 30)
			return -1;
		b = t[(*i)++];
		val |= (uint64_t)(b & 63) << shift;
		if (!(b & 64))
			break;
		shift += 6;
	}
	if (val > UINT32_MAX)
		return -1;
	*out = val;
	return 0;
}

/* Signed varint: the low bit is the sign, the rest the magnitude. */
static int svarint_read(const unsigned char *t, size_t *i, size_t lim,
			int64_t *out)
{
	uint64_t u;

	if (varint_read(t, i, lim, &u))
		return -1;
	*out = (u & 1) ? -(int64_t)(u >> 1) : (int64_t)(u >> 1);
	return 0;
}

/* Location-table entry kinds (bits 3-6 of an entry's first byte). */
enum {
	LOC_ONE_LINE0 = 10, /* 10-12: one-line form, line delta 0-2 */
	LOC_NO_COLUMNS = 13,
	LOC_LONG = 14,
	LOC_NONE = 15,
};

/* 3.11-3.13 compact location table. Each entry starts with a byte that has
 * bit 7 set: bits 3-6 are the kind, bits 0-2 the length in code units minus
 * one; the bytes after it (all with bit 7 clear) hold the line delta and
 * columns. Only the line delta matters here: 0 for the short forms 0-9,
 * kind - 10 for the one-line forms, a leading svarint for the long (14) and
 * no-columns (13) forms; kind 15 has no line and leaves the running line
 * alone. Like CPython, the next entry is found by its bit 7, not by parsing
 * the columns. */
static int loctable_lookup(const unsigned char *t, size_t len, int firstlineno,
			   unsigned pos)
{
	int64_t line = firstlineno;
	uint64_t end = 0;
	size_t i = 0;

	while (i < len) {
		unsigned char head = t[i];
		unsigned kind = (head >> 3) & 15;
		size_t next = i + 1, body = i + 1;
		int64_t delta = 0;

		if (!(head & 0x80))
			return -1; /* only possible at the very start */
		while (next < len && !(t[next] & 0x80))
			next++;
		if (kind == LOC_LONG || kind == LOC_NO_COLUMNS) {
			if (svarint_read(t, &body, next, &delta))
				return -1;
		} else if (kind >= LOC_ONE_LINE0 && kind < LOC_NO_COLUMNS) {
			delta = kind - LOC_ONE_LINE0;
		}
		line += delta;
		if (!line_valid(line))
			return -1;
		end += (head & 7) + 1;
		if (pos < end)
			return kind == LOC_NONE ? -1 : line_result(line);
		i = next;
	}
	return -1;
}

int pyline_lookup(int major, int minor, const unsigned char *table, size_t len,
		  int firstlineno, unsigned pos)
{
	if (major != 3 || (!table && len))
		return -1;
	if (!table)
		table = (const unsigned char *)"";
	switch (minor) {
	case 8:
	case 9:
		return lnotab_lookup(table, len, firstlineno, pos);
	case 10:
		return linetable310_lookup(table, len, firstlineno, pos);
	case 11:
	case 12:
	case 13:
		return loctable_lookup(table, len, firstlineno, pos);
	default:
		return -1;
	}
}
