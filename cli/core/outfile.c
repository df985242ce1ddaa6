#define _GNU_SOURCE
#include "outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The directory part of path ("." when none), malloc'd. */
static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

static const char *base_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

static mode_t mode_default(void)
{
	mode_t mask = umask(0);

	umask(mask);
	return 0644 & ~mask;
}

/* An existing path must be a regular file (replaced on commit). */
static int path_check(const char *path, int flags)
{
	struct stat st;

	if (!*path || base_of(path)[0] == '\0') {
		errno = !*path ? ENOENT : EISDIR;
		return -1;
	}
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	if (S_ISLNK(st.st_mode))
		errno = ELOOP;
	else if (S_ISDIR(st.st_mode))
		errno = EISDIR;
	else if (!S_ISREG(st.st_mode))
		errno = EINVAL;
	else if (flags & OUTFILE_NOREPLACE)
		errno = EEXIST;
	else
		return 0;
	return -1;
}

int outfile_open(struct outfile *o, const char *path, int flags)
{
	char *dir = NULL;
	int saved;

	memset(o, 0, sizeof(*o));
	o->fd = -1;
	o->flags = flags;
	if (path_check(path, flags) < 0)
		return -1;
	o->path = strdup(path);
	dir = dir_of(path);
	if (!o->path || !dir) {
		errno = ENOMEM;
		goto fail;
	}
	o->fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, mode_default());
	if (o->fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
		/* file systems without O_TMPFILE: a hidden name, created
		 * exclusively (never through an existing file or symlink) */
		if (asprintf(&o->tmp, "%s/.%s.XXXXXX", dir, base_of(path)) < 0) {
			o->tmp = NULL;
			errno = ENOMEM;
			goto fail;
		}
		o->fd = mkostemp(o->tmp, O_CLOEXEC);
		if (o->fd >= 0 && fchmod(o->fd, mode_default()) < 0) {
			saved = errno;
			unlink(o->tmp);
			errno = saved;
			goto fail_unlinked;
		}
		if (o->fd < 0)
			goto fail_unlinked;
	}
	if (o->fd < 0)
		goto fail;
	free(dir);
	return 0;
fail_unlinked:
	free(o->tmp);
	o->tmp = NULL;
fail:
	saved = errno;
	free(dir);
	outfile_discard(o);
	errno = saved;
	return -1;
}

int outfile_write(struct outfile *o, const void *buf, size_t len)
{
	const char *p = buf;

	if (!o || o->fd < 0) {
		errno = EBADF;
		return -1;
	}
	while (len) {
		ssize_t n = write(o->fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Links the unnamed file as name: through /proc (no capability needed),
 * else AT_EMPTY_PATH (needs CAP_DAC_READ_SEARCH). */
static int tmpfile_link(int fd, const char *name)
{
	char proc[64];

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, proc, AT_FDCWD, name, AT_SYMLINK_FOLLOW) == 0)
		return 0;
	if (errno == EEXIST)
		return -1;
	return linkat(fd, "", AT_FDCWD, name, AT_EMPTY_PATH);
}

static int name_give(struct outfile *o)
{
	char *tmp = NULL;
	int i;

	if (o->tmp) {
		if (!(o->flags & OUTFILE_NOREPLACE))
			return rename(o->tmp, o->path);
		/* link() fails when the path exists, whatever it is */
		if (link(o->tmp, o->path) < 0)
			return -1;
		unlink(o->tmp);
		return 0;
	}
	if (o->flags & OUTFILE_NOREPLACE)
		return tmpfile_link(o->fd, o->path);
	/* a fresh hidden name next to it, then one atomic rename */
	for (i = 0; i < 100; i++) {
		char *d = dir_of(o->path);

		if (!d || asprintf(&tmp, "%s/.%s.%d.%d", d, base_of(o->path), (int)getpid(), i) < 0) {
			free(d);
			errno = ENOMEM;
			return -1;
		}
		free(d);
		if (tmpfile_link(o->fd, tmp) == 0)
			break;
		free(tmp);
		tmp = NULL;
		if (errno != EEXIST)
			return -1;
	}
	if (!tmp) {
		errno = EEXIST;
		return -1;
	}
	if (rename(tmp, o->path) < 0) {
		int saved = errno;

		unlink(tmp);
		free(tmp);
		errno = saved;
		return -1;
	}
	free(tmp);
	return 0;
}

int outfile_commit(struct outfile *o)
{
	int saved;

	if (!o || o->fd < 0) {
		errno = EBADF;
		return -1;
	}
	if (fsync(o->fd) < 0 && errno != EINVAL && errno != EROFS)
		goto fail;
	if (name_give(o) < 0)
		goto fail;
	free(o->tmp);
	o->tmp = NULL; /* named now: nothing for discard to remove */
	outfile_discard(o);
	return 0;
fail:
	saved = errno;
	outfile_discard(o);
	errno = saved;
	return -1;
}

void outfile_discard(struct outfile *o)
{
	if (!o)
		return;
	if (o->fd >= 0)
		close(o->fd);
	if (o->tmp)
		unlink(o->tmp);
	free(o->tmp);
	free(o->path);
	o->tmp = NULL;
	o->path = NULL;
	o->fd = -1;
}

void outfile_error_print(const char *verb, const char *path, int err)
{
	const char *hint = "check that the directory exists and that you can write to it";

	if (err == ELOOP)
		hint = "it is a symbolic link: loopspy never writes through one; give the real path";
	else if (err == EISDIR)
		hint = "give a file name, not a directory";
	else if (err == EINVAL)
		hint = "it exists and is not a regular file (device, FIFO, socket): give another path";
	fprintf(stderr, "loopspy: cannot %s %s: %s\nhint: %s\n", verb, path,
		err == ELOOP ? "it is a symbolic link" : err == EINVAL ? "not a regular file" : strerror(err), hint);
}
