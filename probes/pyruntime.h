/* Finding and validating the CPython runtime of a target process. */
#ifndef LOOPSPY_PYRUNTIME_H
#define LOOPSPY_PYRUNTIME_H
#include <stdint.h>
#include <sys/types.h>
#include "cpython_layout.h"

struct pyruntime {
	int found;                 /* an ELF defining _PyRuntime is mapped */
	int ready;                 /* initialised and validated: stacks can be walked */
	int major, minor, micro;   /* also when !found: a CPython without _PyRuntime (2.x, <= 3.6) */
	char version[32];          /* "3.11.2" or "3.9" when the micro is unknown; "" when !major */
	char path[512];            /* ELF that defines _PyRuntime */
	uint64_t runtime_addr;     /* &_PyRuntime */
	uint64_t code_type_addr;   /* &PyCode_Type, 0 if unknown */
	uint64_t interp_addr;      /* main interpreter */
	uint64_t gil_addr;         /* GIL struct, 0 if unknown */
	int tss_key;
	const struct cpython_layout *layout;
	char reason[640];          /* why stacks are unavailable, when !ready */
};

/* Looks for the runtime in /proc/PID/maps. Returns 0 when found (rt->found),
 * 1 when the process is not (or not yet) a supported CPython (rt->reason
 * says which: not CPython, or CPython 2.7 named by version), -1 when its
 * mappings cannot be read (rt->reason says why). */
int pyruntime_find(pid_t pid, struct pyruntime *rt);

/* Reads the runtime state (TSS key, interpreter, GIL) and validates the
 * layout against live memory. Returns 0 and sets rt->ready when stacks can
 * be walked, 1 when not initialised yet (try again later), -1 when stacks are
 * impossible (rt->reason says why). */
int pyruntime_probe(pid_t pid, struct pyruntime *rt);

#endif
