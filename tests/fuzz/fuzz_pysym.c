/* libFuzzer target: the code-object symbolizer and line-table decoders fed
 * with arbitrary "target memory". The input is split into a header that
 * picks a CPython version, a code address and a position, and a memory
 * image mapped at a fixed base; every read outside the image fails, like a
 * read of unmapped memory in a hostile target would. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cpython_layout.h"
#include "pyline.h"
#include "pysym.h"

#define IMAGE_BASE 0x10000000ULL

struct image {
	const uint8_t *data;
	size_t len;
};

static int image_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
	const struct image *im = ctx;

	if (addr < IMAGE_BASE || len > im->len || addr - IMAGE_BASE > im->len - len)
		return -1;
	memcpy(buf, im->data + (addr - IMAGE_BASE), len);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int minors[] = { 8, 9, 10, 11, 12, 13 };
	const struct cpython_layout *L;
	struct image im;
	struct pysym *s;
	struct pysym_frame f;
	uint32_t code_off, pos, fl;
	int i;

	if (size < 16)
		return 0;
	L = cpython_layout_find(3, minors[data[0] % 6]);
	memcpy(&code_off, data + 4, 4);
	memcpy(&pos, data + 8, 4);
	memcpy(&fl, data + 12, 4);
	im.data = data + 16;
	im.len = size - 16;
	/* the line-table decoder alone, on the raw image */
	(void)pyline_lookup(3, minors[data[1] % 6], im.data, im.len, (int)(fl & 0xffff), pos);
	s = pysym_new(L, image_read, &im, data[2] & 1 ? IMAGE_BASE : 0);
	if (!s)
		return 0;
	for (i = 0; i < 3; i++) /* again: the cached path */
		if (pysym_resolve(s, IMAGE_BASE + (im.len ? code_off % (im.len + 64) : 0), pos, fl, &f) == 0 &&
		    (!f.function || !f.file))
			__builtin_trap();
	pysym_free(s);
	return 0;
}
