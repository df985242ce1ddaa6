/* x86_64 syscall names, generated at build time from <asm/unistd_64.h>. */
#ifndef LOOPSPY_SYSCALLS_H
#define LOOPSPY_SYSCALLS_H

/* "clock_nanosleep", or NULL when nr is unknown. */
const char *syscall_name(int nr);
/* Number for a name, -1 when unknown. */
int syscall_nr(const char *name);
/* True for syscalls whose first argument is a file descriptor. */
int syscall_takes_fd(int nr);

#endif
