#define _GNU_SOURCE
#include "procmem.h"

#include <sys/uio.h>

/* Cap a single read: nothing loopspy reads from a target is larger. */
#define PROCMEM_MAX_READ (1u << 20)

int procmem_read(void *pid_ctx, uint64_t addr, void *buf, size_t len)
{
	pid_t pid = (pid_t)(intptr_t)pid_ctx;
	struct iovec local = { buf, len }, remote = { (void *)(uintptr_t)addr, len };
	ssize_t n;

	if (len == 0)
		return 0;
	if (len > PROCMEM_MAX_READ || addr < 4096 || addr + len < addr)
		return -1;
	n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
	return n == (ssize_t)len ? 0 : -1;
}
