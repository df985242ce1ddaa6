/* Table of CPython struct layouts, generated from headers into
 * cpython_layouts.inc (see gen-cpython-layouts.sh), and its lookup. */
#include <stddef.h>

#include "cpython_layout.h"

static const struct cpython_layout cpython_layouts[] = {
#include "cpython_layouts.inc"
};

const struct cpython_layout *cpython_layout_find(int major, int minor)
{
	size_t i;

	for (i = 0; i < sizeof(cpython_layouts) / sizeof(cpython_layouts[0]); i++)
		if (cpython_layouts[i].major == major &&
		    cpython_layouts[i].minor == minor)
			return &cpython_layouts[i];
	return NULL;
}
