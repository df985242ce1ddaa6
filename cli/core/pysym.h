/* Resolving code objects read from a target into function/file/line.
 * Pure: memory comes through a read callback, so tests and fuzzers feed
 * synthetic images. Every byte read is untrusted. */
#ifndef LOOPSPY_PYSYM_H
#define LOOPSPY_PYSYM_H
#include <stddef.h>
#include <stdint.h>
#include "../../probes/cpython_layout.h"

/* 0 when exactly len bytes were read. */
typedef int (*mem_read_fn)(void *ctx, uint64_t addr, void *buf, size_t len);

struct pysym;

struct pysym_frame {
	const char *function; /* owned by the cache: valid until the next pysym_resolve */
	const char *file;
	int line;             /* -1 when unknown */
};

struct pysym *pysym_new(const struct cpython_layout *layout, mem_read_fn read, void *ctx,
			uint64_t code_type_addr);
void pysym_free(struct pysym *s);

/* 0 and *out filled when code is a code object; -1 when it is not (a
 * 3.13 None executable, a freed object, garbage) and the frame should be
 * dropped. */
int pysym_resolve(struct pysym *s, uint64_t code, uint32_t pos, uint32_t firstlineno,
		  struct pysym_frame *out);

/* Counters for the report: resolved, failed, cache entries. */
void pysym_stats(const struct pysym *s, uint64_t *hits, uint64_t *misses, uint64_t *failures);

#endif
