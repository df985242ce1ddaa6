/* Bounded reads of another process's memory (process_vm_readv). */
#ifndef LOOPSPY_PROCMEM_H
#define LOOPSPY_PROCMEM_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Reads exactly len bytes at addr of pid. 0 on success, -1 otherwise
 * (short reads are failures). Signature matches mem_read_fn. */
int procmem_read(void *pid_ctx, uint64_t addr, void *buf, size_t len);

/* Encodes a pid as the opaque context procmem_read expects. */
static inline void *procmem_ctx(pid_t pid) { return (void *)(intptr_t)pid; }

#endif
