/* The key table of `loopspy top`: every key and what it does, in one place
 * (the help page in tui/view.c describes the same keys). */
#include <curses.h>
#include "tui.h"

static const struct {
	int key;
	enum view_action action;
} key_table[] = {
	{ 'q', VA_QUIT },
	{ 'Q', VA_QUIT },
	{ KEY_UP, VA_UP },
	{ 'k', VA_UP },
	{ KEY_DOWN, VA_DOWN },
	{ 'j', VA_DOWN },
	{ KEY_PPAGE, VA_PGUP },
	{ KEY_NPAGE, VA_PGDN },
	{ KEY_HOME, VA_HOME },
	{ 'g', VA_HOME },
	{ KEY_END, VA_END },
	{ 'G', VA_END },
	{ '\n', VA_OPEN },
	{ '\r', VA_OPEN },
	{ KEY_ENTER, VA_OPEN },
	{ 27, VA_BACK },          /* Esc */
	{ KEY_LEFT, VA_BACK },
	{ KEY_BACKSPACE, VA_BACK },
	{ 127, VA_BACK },
	{ 's', VA_SORT },
	{ 'p', VA_PAUSE },
	{ 'r', VA_RESET },
	{ 'w', VA_WRITE },
	{ '/', VA_FILTER },
	{ '?', VA_HELP },
	{ 'h', VA_HELP },
	{ KEY_F(1), VA_HELP },
	{ KEY_RESIZE, VA_RESIZE },
};

enum view_action tui_key_action(int key)
{
	size_t i;

	for (i = 0; i < sizeof(key_table) / sizeof(key_table[0]); i++)
		if (key_table[i].key == key)
			return key_table[i].action;
	return VA_NONE;
}

int tui_key_text(int key)
{
	if (key == 27)
		return 27;
	if (key == '\n' || key == '\r' || key == KEY_ENTER)
		return '\n';
	if (key == KEY_BACKSPACE || key == 127 || key == '\b')
		return '\b';
	if (key >= 0x20 && key < 0x7f)
		return key;
	return -1;
}
