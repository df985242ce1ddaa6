/* Source line lookup from a CPython code object's line table, decoded in
 * userspace from bytes copied out of the target process. */
#ifndef LOOPSPY_PYLINE_H
#define LOOPSPY_PYLINE_H

#include <stddef.h>

/* Line of the instruction at pos in a code object whose line table is
 * table[0..len) and whose co_firstlineno is firstlineno.
 *
 *   3.8, 3.9   table = co_lnotab,    pos = f_lasti (bytes)
 *   3.10       table = co_linetable, pos = f_lasti (code units)
 *   3.11-3.13  table = co_linetable, pos = code-unit index of the
 *              instruction, (prev_instr or instr_ptr - co_code_adaptive) / 2
 *
 * Returns -1 when pos maps to no line (3.10+), lies past the table's end,
 * the table is malformed or the version is not 3.8-3.13. Safe on arbitrary
 * bytes: reads stay inside [table, table + len) and work is O(len). */
int pyline_lookup(int major, int minor, const unsigned char *table, size_t len,
		  int firstlineno, unsigned pos);

#endif
