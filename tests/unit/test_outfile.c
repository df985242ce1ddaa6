/* Tests for core/outfile.c: the one output writer (record, run, report,
 * top). Root writing into a shared directory must never follow a symlink,
 * never leave a partial file, and leave nothing behind on failure. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "outfile.h"

struct fixture {
	char dir[64];
	char path[128];      /* dir/report.json */
	char victim[128];    /* dir/victim: what a planted symlink points at */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/loopspy-outfile-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/report.json", f->dir);
	snprintf(f->victim, sizeof(f->victim), "%s/victim", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	DIR *d = opendir(f->dir);
	struct dirent *e;

	while (d && (e = readdir(d))) {
		char p[512];

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", f->dir, e->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void file_put(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static char *file_get(const char *path)
{
	static char buf[4096];
	FILE *fp = fopen(path, "r");
	size_t n;

	if (!fp)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

/* Entries in the directory, "." and ".." aside. */
static int dir_count(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n;
}

static void test_write_commit(void **state)
{
	struct fixture *f = *state;
	struct outfile o;
	struct stat st;
	mode_t old = umask(022);

	assert_int_equal(outfile_open(&o, f->path, 0), 0);
	/* nothing at the path until the content is complete */
	assert_int_equal(dir_count(f->dir), 0);
	assert_int_equal(outfile_write(&o, "{\"a\":", 5), 0);
	assert_int_equal(outfile_write(&o, "1}\n", 3), 0);
	assert_int_equal(dir_count(f->dir), 0);
	assert_int_equal(outfile_commit(&o), 0);
	assert_string_equal(file_get(f->path), "{\"a\":1}\n");
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	assert_int_equal(dir_count(f->dir), 1);
	/* an existing report is replaced as a whole */
	assert_int_equal(outfile_open(&o, f->path, 0), 0);
	assert_int_equal(outfile_write(&o, "new\n", 4), 0);
	assert_string_equal(file_get(f->path), "{\"a\":1}\n");
	assert_int_equal(outfile_commit(&o), 0);
	assert_string_equal(file_get(f->path), "new\n");
	assert_int_equal(dir_count(f->dir), 1);
	outfile_discard(&o); /* after commit: a no-op */
	umask(old);
}

static void test_discard_leaves_nothing(void **state)
{
	struct fixture *f = *state;
	struct outfile o;

	assert_int_equal(outfile_open(&o, f->path, 0), 0);
	assert_int_equal(outfile_write(&o, "partial", 7), 0);
	outfile_discard(&o);
	assert_int_equal(dir_count(f->dir), 0);
	/* an existing file survives a failed run untouched */
	file_put(f->path, "old\n");
	assert_int_equal(outfile_open(&o, f->path, 0), 0);
	assert_int_equal(outfile_write(&o, "partial", 7), 0);
	outfile_discard(&o);
	assert_string_equal(file_get(f->path), "old\n");
	assert_int_equal(dir_count(f->dir), 1);
	outfile_discard(NULL);
	memset(&o, 0, sizeof(o));
	o.fd = -1;
	outfile_discard(&o);
}

static void test_symlink_refused(void **state)
{
	struct fixture *f = *state;
	struct outfile o;

	file_put(f->victim, "precious\n");
	assert_int_equal(symlink(f->victim, f->path), 0);
	errno = 0;
	assert_int_equal(outfile_open(&o, f->path, 0), -1);
	assert_int_equal(errno, ELOOP);
	assert_string_equal(file_get(f->victim), "precious\n");
	/* a dangling symlink too: it would create the file it names */
	unlink(f->path);
	assert_int_equal(symlink("/tmp/loopspy-outfile-nonexistent-target", f->path), 0);
	assert_int_equal(outfile_open(&o, f->path, 0), -1);
	assert_int_equal(errno, ELOOP);
	assert_int_equal(access("/tmp/loopspy-outfile-nonexistent-target", F_OK), -1);
}

/* Planted between the check and the write (a race): the symlink itself is
 * replaced, what it points at is never written. */
static void test_symlink_planted_later(void **state)
{
	struct fixture *f = *state;
	struct outfile o;
	struct stat st;

	file_put(f->victim, "precious\n");
	assert_int_equal(outfile_open(&o, f->path, 0), 0);
	assert_int_equal(symlink(f->victim, f->path), 0);
	assert_int_equal(outfile_write(&o, "report\n", 7), 0);
	assert_int_equal(outfile_commit(&o), 0);
	assert_string_equal(file_get(f->victim), "precious\n");
	assert_int_equal(lstat(f->path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_string_equal(file_get(f->path), "report\n");
}

static void test_not_regular(void **state)
{
	struct fixture *f = *state;
	struct outfile o;
	char sub[160], fifo[160], missing[160];

	snprintf(sub, sizeof(sub), "%s/sub", f->dir);
	snprintf(fifo, sizeof(fifo), "%s/fifo", f->dir);
	snprintf(missing, sizeof(missing), "%s/no/such/dir/r.json", f->dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	assert_int_equal(outfile_open(&o, sub, 0), -1);
	assert_int_equal(errno, EISDIR);
	assert_int_equal(mkfifo(fifo, 0644), 0);
	assert_int_equal(outfile_open(&o, fifo, 0), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(outfile_open(&o, missing, 0), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(outfile_open(&o, "", 0), -1);
	assert_int_equal(outfile_open(&o, "/tmp/", 0), -1);
	assert_int_equal(errno, EISDIR);
	unlink(fifo);
	rmdir(sub);
	assert_int_equal(dir_count(f->dir), 0);
}

static void test_noreplace(void **state)
{
	struct fixture *f = *state;
	struct outfile o;

	file_put(f->path, "first\n");
	assert_int_equal(outfile_open(&o, f->path, OUTFILE_NOREPLACE), -1);
	assert_int_equal(errno, EEXIST);
	unlink(f->path);
	assert_int_equal(outfile_open(&o, f->path, OUTFILE_NOREPLACE), 0);
	assert_int_equal(outfile_write(&o, "mine\n", 5), 0);
	/* someone else took the name meanwhile: theirs stays */
	file_put(f->path, "theirs\n");
	assert_int_equal(outfile_commit(&o), -1);
	assert_int_equal(errno, EEXIST);
	assert_string_equal(file_get(f->path), "theirs\n");
	assert_int_equal(dir_count(f->dir), 1);
	unlink(f->path);
	assert_int_equal(outfile_open(&o, f->path, OUTFILE_NOREPLACE), 0);
	assert_int_equal(outfile_write(&o, "mine\n", 5), 0);
	assert_int_equal(outfile_commit(&o), 0);
	assert_string_equal(file_get(f->path), "mine\n");
}

/* A relative name lands in the current directory. */
static void test_relative(void **state)
{
	struct fixture *f = *state;
	struct outfile o;
	char cwd[512];

	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(f->dir), 0);
	assert_int_equal(outfile_open(&o, "rel.json", 0), 0);
	assert_int_equal(outfile_write(&o, "x", 1), 0);
	assert_int_equal(outfile_commit(&o), 0);
	assert_int_equal(chdir(cwd), 0);
	assert_int_equal(dir_count(f->dir), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_write_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_discard_leaves_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlink_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlink_planted_later, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_regular, setup, teardown),
		cmocka_unit_test_setup_teardown(test_noreplace, setup, teardown),
		cmocka_unit_test_setup_teardown(test_relative, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
