/* Host side of the guest console: stdout, log file, raw-mode stdin with a
 * Ctrl-A escape, and terminal restoration on every exit path. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "kvisor/console.h"
#include "kvisor/log.h"

static struct termios console_saved;
static volatile sig_atomic_t console_saved_valid;

int console_open(struct console *con, const char *log_path)
{
	memset(con, 0, sizeof(*con));
	con->in_fd = STDIN_FILENO;
	con->log_fd = -1;
	if (log_path) {
		con->log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (con->log_fd < 0) {
			int err = errno;

			log_err("--console-log %s: %s", log_path, strerror(err));
			return -err;
		}
	}
	return 0;
}

void console_restore(void)
{
	if (console_saved_valid) {
		tcsetattr(STDIN_FILENO, TCSANOW, &console_saved);
		console_saved_valid = 0;
	}
}

static void console_fatal_signal(int sig)
{
	console_restore();
	signal(sig, SIG_DFL);
	raise(sig);
}

void console_set_raw(struct console *con)
{
	static const int fatal[] = { SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL, SIGHUP, SIGQUIT };
	struct termios t;

	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &console_saved) < 0)
		return;
	console_saved_valid = 1;
	atexit(console_restore);
	for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
		signal(fatal[i], console_fatal_signal);
	t = console_saved;
	cfmakeraw(&t);
	/* Keep output post-processing so guest "\n" still returns the carriage. */
	t.c_oflag |= OPOST | ONLCR;
	tcsetattr(STDIN_FILENO, TCSANOW, &t);
	con->raw = true;
}

static void console_write_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* a closed stdout must not stop the guest */
		p += n;
		len -= (size_t)n;
	}
}

void console_write(struct console *con, const void *buf, size_t len)
{
	console_write_all(STDOUT_FILENO, buf, len);
	if (con->log_fd >= 0)
		console_write_all(con->log_fd, buf, len);
}

size_t console_filter_input(struct console *con, const uint8_t *in, size_t len, uint8_t *out,
			    bool *quit)
{
	size_t n = 0;

	*quit = false;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = in[i];

		if (con->escape) {
			con->escape = false;
			if (c == 'x' || c == 'X') {
				*quit = true;
				return n;
			}
			if (c == CONSOLE_ESCAPE)
				out[n++] = c;
			/* Any other key after Ctrl-A is dropped, like QEMU. */
			continue;
		}
		if (c == CONSOLE_ESCAPE) {
			con->escape = true;
			continue;
		}
		out[n++] = c;
	}
	return n;
}

void console_close(struct console *con)
{
	if (con->log_fd >= 0)
		close(con->log_fd);
	con->log_fd = -1;
}
