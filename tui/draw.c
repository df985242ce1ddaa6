/* Painting view_screen lines with curses, and the terminal's life cycle. */
#define _GNU_SOURCE
#include <curses.h>
#include <term.h>
#include <fcntl.h>
#include <langinfo.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tui.h"

struct tui {
	SCREEN *scr;
	FILE *in, *out;
	int utf8;
	attr_t attr[VS_N];
};

static struct tui *active;

enum {
	PAIR_TITLE = 1,
	PAIR_COLHEAD,
	PAIR_CRIT,
	PAIR_WARN,
	PAIR_INFO,
	PAIR_STALLED,
	PAIR_STATUS,
	PAIR_GOOD,
};

int tui_probe(int out_fd, char *err, size_t errlen)
{
	const char *term = getenv("TERM");
	int rc = 0;

	if (!term || !*term) {
		snprintf(err, errlen, "TERM is not set");
		return -1;
	}
	if (setupterm(NULL, out_fd, &rc) != OK) {
		snprintf(err, errlen, "terminal type '%s' is %s", term,
			 rc == 0 ? "unknown (no terminfo entry)" : "not usable");
		return -1;
	}
	del_curterm(cur_term);
	return 0;
}

static void attrs_init(struct tui *t, int color)
{
	attr_t *a = t->attr;

	a[VS_NORMAL] = A_NORMAL;
	a[VS_DIM] = A_DIM;
	if (color && has_colors() && start_color() == OK) {
		use_default_colors();
		init_pair(PAIR_TITLE, COLOR_BLACK, COLOR_CYAN);
		init_pair(PAIR_COLHEAD, COLOR_BLACK, COLOR_GREEN);
		init_pair(PAIR_CRIT, COLOR_RED, -1);
		init_pair(PAIR_WARN, COLOR_YELLOW, -1);
		init_pair(PAIR_INFO, COLOR_CYAN, -1);
		init_pair(PAIR_STALLED, COLOR_WHITE, COLOR_RED);
		init_pair(PAIR_STATUS, COLOR_BLACK, COLOR_CYAN);
		init_pair(PAIR_GOOD, COLOR_GREEN, -1);
		a[VS_TITLE] = COLOR_PAIR(PAIR_TITLE) | A_BOLD;
		a[VS_COLHEAD] = COLOR_PAIR(PAIR_COLHEAD);
		a[VS_CRIT] = COLOR_PAIR(PAIR_CRIT) | A_BOLD;
		a[VS_WARN] = COLOR_PAIR(PAIR_WARN);
		a[VS_INFO] = COLOR_PAIR(PAIR_INFO);
		a[VS_STALLED] = COLOR_PAIR(PAIR_STALLED) | A_BOLD;
		a[VS_STATUS] = COLOR_PAIR(PAIR_STATUS);
		a[VS_ERROR] = COLOR_PAIR(PAIR_CRIT) | A_BOLD;
		a[VS_GOOD] = COLOR_PAIR(PAIR_GOOD);
		return;
	}
	/* NO_COLOR or a monochrome terminal: attributes only */
	a[VS_TITLE] = A_REVERSE | A_BOLD;
	a[VS_COLHEAD] = A_BOLD | A_UNDERLINE;
	a[VS_CRIT] = A_BOLD;
	a[VS_WARN] = A_NORMAL;
	a[VS_INFO] = A_NORMAL;
	a[VS_STALLED] = A_REVERSE | A_BOLD;
	a[VS_STATUS] = A_REVERSE;
	a[VS_ERROR] = A_BOLD;
	a[VS_GOOD] = A_NORMAL;
}

struct tui *tui_open(int in_fd, int out_fd, int color, char *err, size_t errlen)
{
	struct tui *t = calloc(1, sizeof(*t));
	int ifd = -1, ofd = -1;
	const char *cs;

	if (!t) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	setlocale(LC_CTYPE, "");
	cs = nl_langinfo(CODESET);
	t->utf8 = cs && (!strcmp(cs, "UTF-8") || !strcmp(cs, "utf8"));
	snprintf(err, errlen, "cannot open the terminal: %s", "out of file descriptors");
	ifd = fcntl(in_fd, F_DUPFD_CLOEXEC, 0);
	ofd = fcntl(out_fd, F_DUPFD_CLOEXEC, 0);
	if (ifd < 0 || ofd < 0 || !(t->in = fdopen(ifd, "r")))
		goto cleanup;
	ifd = -1;
	if (!(t->out = fdopen(ofd, "w")))
		goto cleanup;
	ofd = -1;
	t->scr = newterm(NULL, t->out, t->in);
	if (!t->scr) {
		snprintf(err, errlen, "cannot initialise terminal type '%s'", getenv("TERM") ? getenv("TERM") : "");
		goto cleanup;
	}
	set_term(t->scr);
	active = t;
	cbreak();
	noecho();
	nonl();
	intrflush(stdscr, FALSE);
	keypad(stdscr, TRUE);
	set_escdelay(25);
	curs_set(0);
	attrs_init(t, color);
	err[0] = '\0';
	return t;
cleanup:
	if (ifd >= 0)
		close(ifd);
	if (ofd >= 0)
		close(ofd);
	tui_close(t);
	return NULL;
}

int tui_utf8(const struct tui *t)
{
	return t && t->utf8;
}

void tui_size(struct tui *t, int *rows, int *cols)
{
	(void)t;
	getmaxyx(stdscr, *rows, *cols);
}

static attr_t attr_of(const struct tui *t, enum view_style s)
{
	return (unsigned)s < VS_N ? t->attr[s] : A_NORMAL;
}

static attr_t attr_selected(attr_t a)
{
	/* reverse video, unless the style already is */
	return a & A_REVERSE ? (a & ~A_REVERSE) | A_UNDERLINE : a | A_REVERSE;
}

void tui_draw(struct tui *t, const struct view_screen *scr)
{
	int rows, cols, r;

	getmaxyx(stdscr, rows, cols);
	werase(stdscr);
	for (r = 0; r < scr->rows && r < rows; r++) {
		const struct view_line *l = &scr->line[r];
		attr_t base = attr_of(t, l->style);
		int len = (int)strlen(l->text), off = 0, i, y, x;

		if (l->selected)
			base = attr_selected(base);
		wmove(stdscr, r, 0);
		for (i = 0; i <= l->nspans; i++) {
			int end = i < l->nspans ? l->spans[i].start : len;

			if (end > off) {
				wattrset(stdscr, base);
				waddnstr(stdscr, l->text + off, end - off);
				off = end;
			}
			if (i < l->nspans && l->spans[i].end > off) {
				attr_t sa = attr_of(t, l->spans[i].style);

				wattrset(stdscr, l->selected ? attr_selected(sa) : sa);
				waddnstr(stdscr, l->text + off, l->spans[i].end - off);
				off = l->spans[i].end;
			}
		}
		wattrset(stdscr, base);
		getyx(stdscr, y, x);
		/* a full row leaves the cursor on the next one */
		if (l->fill && y == r)
			for (; x < cols && x < scr->cols; x++)
				waddch(stdscr, ' ');
	}
	wattrset(stdscr, A_NORMAL);
	wnoutrefresh(stdscr);
	doupdate();
}

int tui_key(struct tui *t, int timeout_ms)
{
	int k;

	(void)t;
	wtimeout(stdscr, timeout_ms);
	k = wgetch(stdscr);
	return k == ERR ? TUI_NO_KEY : k;
}

void tui_restore(void)
{
	if (active && !isendwin())
		endwin();
}

void tui_close(struct tui *t)
{
	if (!t)
		return;
	if (t->scr) {
		if (!isendwin())
			endwin();
		delscreen(t->scr);
	}
	if (active == t)
		active = NULL;
	if (t->in)
		fclose(t->in);
	if (t->out)
		fclose(t->out);
	free(t);
}
