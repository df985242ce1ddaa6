/* Writing an output file safely as root into a directory other users can
 * write to (/tmp, a shared CI workspace): the one writer of record, run,
 * report and top.
 *
 * outfile_open checks the path before anything is traced or parsed (an
 * existing symlink, directory or non-regular file is refused, the
 * directory must accept a new file) and creates the content as a new file
 * in that directory: unnamed (O_TMPFILE) where the file system allows it,
 * else a hidden ".NAME.XXXXXX" created exclusively. outfile_commit gives it
 * its name with one atomic rename (or a no-replace link), so the path never
 * holds a partial report, a symlink planted there in the meantime is
 * replaced and never followed, and a failed or killed run leaves nothing. */
#ifndef LOOPSPY_OUTFILE_H
#define LOOPSPY_OUTFILE_H
#include <stddef.h>

enum {
	OUTFILE_NOREPLACE = 1,    /* commit fails with EEXIST when the path exists */
};

struct outfile {
	char *path;               /* the final name */
	char *tmp;                /* the hidden name, when not O_TMPFILE */
	int fd;                   /* -1 when closed */
	int flags;
};

/* Checks path and creates the unnamed content. 0, or -1 with errno set:
 * ELOOP (path is a symlink), EISDIR, EINVAL (not a regular file), EEXIST
 * (OUTFILE_NOREPLACE and it exists), or why the directory refused. */
int outfile_open(struct outfile *o, const char *path, int flags);
/* Appends len bytes: 0, or -1 with errno. */
int outfile_write(struct outfile *o, const void *buf, size_t len);
/* Flushes the content to disk and gives it its name: 0, or -1 with errno
 * (nothing is left behind then). */
int outfile_commit(struct outfile *o);
/* Drops the content, frees; safe on NULL, on a zeroed struct and after
 * outfile_commit. */
void outfile_discard(struct outfile *o);

/* "loopspy: cannot VERB PATH: REASON" and a hint, on stderr. */
void outfile_error_print(const char *verb, const char *path, int err);

#endif
