/* The terminal side of `loopspy top`: the only code that includes curses
 * (tui/draw.c, tui/keys.c). Its users (cli/top.c) see no curses types. */
#ifndef LOOPSPY_TUI_H
#define LOOPSPY_TUI_H
#include <stddef.h>
#include "view.h"

#define TUI_NO_KEY (-1)

struct tui;

/* Checks that the terminal type is usable, without touching the screen.
 * 0, or -1 with a reason in err. */
int tui_probe(int out_fd, char *err, size_t errlen);
/* Takes over the terminal on in_fd/out_fd (full screen, keys unbuffered,
 * no echo, colours unless !color). NULL with a reason in err. */
struct tui *tui_open(int in_fd, int out_fd, int color, char *err, size_t errlen);
/* The terminal speaks UTF-8 (else sparklines are ASCII). */
int tui_utf8(const struct tui *t);
void tui_size(struct tui *t, int *rows, int *cols);
void tui_draw(struct tui *t, const struct view_screen *scr);
/* Next key, waiting at most timeout_ms (0: do not wait); TUI_NO_KEY when none. */
int tui_key(struct tui *t, int timeout_ms);
/* Restores the terminal and frees; safe on NULL and after tui_restore. */
void tui_close(struct tui *t);
/* Restores the terminal of the open tui, if any (atexit, fatal signals). */
void tui_restore(void);

/* The key table (tui/keys.c): what a key does outside filter editing. */
enum view_action tui_key_action(int key);
/* A key as filter text: printable ASCII, '\b' (erase), '\n' (done), 27
 * (Esc), or -1 when it is none of these. */
int tui_key_text(int key);

#endif
