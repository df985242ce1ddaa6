#include "syscalls.h"

#include <stddef.h>
#include <string.h>

static const char *const names[] = {
#include "syscall_names.inc"
};

const char *syscall_name(int nr)
{
	if (nr < 0 || (size_t)nr >= sizeof(names) / sizeof(names[0]))
		return NULL;
	return names[nr];
}

int syscall_nr(const char *name)
{
	size_t i;

	for (i = 0; name && i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i] && !strcmp(names[i], name))
			return (int)i;
	return -1;
}

int syscall_takes_fd(int nr)
{
	static const char *const fd_calls[] = {
		"read", "write", "pread64", "pwrite64", "readv", "writev", "preadv", "pwritev",
		"preadv2", "pwritev2", "recvfrom", "sendto", "recvmsg", "sendmsg", "recvmmsg",
		"sendmmsg", "connect", "accept", "accept4", "fsync", "fdatasync", "sync_file_range",
		"flock", "fcntl", "ioctl", "sendfile", "splice", "epoll_wait", "epoll_pwait",
		"epoll_pwait2", "ftruncate", "fallocate", "getdents64", "fstat", "close",
	};
	const char *n = syscall_name(nr);
	size_t i;

	for (i = 0; n && i < sizeof(fd_calls) / sizeof(fd_calls[0]); i++)
		if (!strcmp(n, fd_calls[i]))
			return 1;
	return 0;
}
