#define _GNU_SOURCE
#include "privs.h"
#include "cli.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
#define PRIVS_SANITIZED 1
#else
#define PRIVS_SANITIZED 0
#endif

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

#define CAP_BIT(c) (1ULL << (c))

void privs_refuse_setuid(void)
{
	if (getuid() == geteuid() && getgid() == getegid())
		return;
	fprintf(stderr,
		"loopspy: cannot run setuid or setgid (uid %d, effective uid %d, gid %d, effective gid %d)\n"
		"hint: remove the bit (chmod u-s,g-s on the loopspy binary) and run it as root, e.g. with sudo\n",
		(int)getuid(), (int)geteuid(), (int)getgid(), (int)getegid());
	/* nothing else runs with borrowed privileges: no atexit handlers */
	_exit(EXIT_FAILURE_);
}

uint64_t privs_effective(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d) < 0)
		return 0;
	return (uint64_t)d[1].effective << 32 | d[0].effective;
}

void privs_missing_describe(uint64_t eff, int need, char *buf, size_t n)
{
	int admin = !!(eff & CAP_BIT(CAP_SYS_ADMIN));
	size_t off = 0;

	buf[0] = '\0';
	/* the kernel accepts CAP_SYS_ADMIN for both (bpf_capable(),
	 * perfmon_capable()) */
	if ((need & PRIVS_NEED_BPF) && !admin && !(eff & CAP_BIT(CAP_BPF)))
		off += (size_t)snprintf(buf + off, n - off, "%sCAP_BPF", off ? ", " : "");
	if (off < n && (need & PRIVS_NEED_BPF) && !admin && !(eff & CAP_BIT(CAP_PERFMON)))
		off += (size_t)snprintf(buf + off, n - off, "%sCAP_PERFMON", off ? ", " : "");
	if (off < n && (need & PRIVS_NEED_PTRACE) && !(eff & CAP_BIT(CAP_SYS_PTRACE)))
		snprintf(buf + off, n - off, "%sCAP_SYS_PTRACE", off ? ", " : "");
}

int privs_check(const char *what, int need)
{
	char missing[96];

	privs_missing_describe(privs_effective(), need, missing, sizeof(missing));
	if (!missing[0])
		return 0;
	fprintf(stderr, "loopspy: cannot %s: missing %s (running as uid %d)\n"
		"hint: run it as root (sudo); loading and attaching probes needs CAP_BPF and CAP_PERFMON%s; "
		"`loopspy doctor` shows what works on this machine\n",
		what, missing, (int)geteuid(),
		(need & PRIVS_NEED_PTRACE) ? ", reading another process's Python stacks CAP_SYS_PTRACE "
					      "(--no-stacks does without)" : "");
	return -1;
}

int privs_ptrace_needed(pid_t pid)
{
	char path[64];
	struct stat st;
	FILE *f;
	int scope = 0;

	/* Yama: 1 = only descendants without CAP_SYS_PTRACE, 2 = admin only */
	f = fopen("/proc/sys/kernel/yama/ptrace_scope", "re");
	if (f) {
		if (fscanf(f, "%d", &scope) != 1)
			scope = 0;
		fclose(f);
	}
	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	if (stat(path, &st) < 0)
		return 0; /* gone: the target check says so */
	return scope >= 1 || st.st_uid != geteuid();
}

static int id_parse(const char *s, unsigned *out)
{
	char *end;
	unsigned long v;

	if (!s || !*s)
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v == 0 || v >= 0xffffffffUL)
		return -1;
	*out = (unsigned)v;
	return 0;
}

/* In the child: root becomes the sudo user (else nobody); every
 * capability goes; nothing can be regained. */
static int privs_drop(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	unsigned uid = 65534, gid = 65534;

	if (geteuid() == 0) {
		if (id_parse(getenv("SUDO_UID"), &uid) < 0 || id_parse(getenv("SUDO_GID"), &gid) < 0) {
			struct passwd *pw = getpwnam("nobody");

			uid = pw ? pw->pw_uid : 65534;
			gid = pw ? pw->pw_gid : 65534;
		}
		if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
			return -1;
		if (setresuid(0, 0, 0) == 0) {
			errno = EPERM; /* must be impossible now */
			return -1;
		}
	}
	memset(d, 0, sizeof(d));
	if (syscall(SYS_capset, &h, d) < 0)
		return -1;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -1;
	/* LeakSanitizer inspects the process with ptrace at exit, which a
	 * process that changed its uid (not dumpable) does not allow */
	if (PRIVS_SANITIZED)
		prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	return 0;
}

int privs_drop_run(int (*fn)(void *ctx), void *ctx)
{
	pid_t pid;
	int st;

	if (geteuid() != 0 && !privs_effective())
		return fn(ctx);
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "loopspy: cannot fork an unprivileged worker: %s\n", strerror(errno));
		return EXIT_FAILURE_;
	}
	if (pid == 0) {
		if (privs_drop() < 0) {
			fprintf(stderr, "loopspy: cannot drop privileges: %s\n", strerror(errno));
			_exit(EXIT_FAILURE_);
		}
		exit(fn(ctx));
	}
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR) {
			fprintf(stderr, "loopspy: cannot wait for the unprivileged worker: %s\n", strerror(errno));
			return EXIT_FAILURE_;
		}
	}
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	fprintf(stderr, "loopspy: cannot finish: the unprivileged worker was killed by signal %d (%s)\n",
		WTERMSIG(st), strsignal(WTERMSIG(st)));
	return EXIT_FAILURE_;
}
