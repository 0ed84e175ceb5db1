/* The host side of the guest console: stdout, an optional log file, and
 * stdin in raw mode with a Ctrl-A escape (Ctrl-A x quits, Ctrl-A Ctrl-A
 * sends Ctrl-A). */
#ifndef KVISOR_CONSOLE_H
#define KVISOR_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct console {
	int in_fd;   /* -1 once stdin hit EOF */
	int log_fd;  /* -1 without --console-log */
	bool raw;    /* terminal settings were changed */
	bool escape; /* previous input byte was Ctrl-A */
};

#define CONSOLE_ESCAPE 0x01 /* Ctrl-A */

/* Open (log_path) for appending when not NULL. 0 or -errno (message printed). */
int console_open(struct console *con, const char *log_path) __attribute__((warn_unused_result));

/* Put stdin in raw mode when it is a terminal; console_restore() undoes it
 * and is also run at exit and on fatal signals. */
void console_set_raw(struct console *con);
void console_restore(void);

/* Guest output to stdout and the log. Safe from any thread. */
void console_write(struct console *con, const void *buf, size_t len);

/* Filter host input through the escape handling: copies the bytes meant for
 * the guest from (in) to (out) (out has room for len bytes) and returns how
 * many; sets *quit when Ctrl-A x was typed. */
size_t console_filter_input(struct console *con, const uint8_t *in, size_t len, uint8_t *out,
			    bool *quit);

void console_close(struct console *con);

#endif
