/* Capture what a call prints on stderr: unit_capture_begin() sends fd 2
 * to a scratch file, unit_capture_end() restores it and copies what was
 * written into a string, so negative tests can assert the exact text. */
#ifndef KVISOR_UNIT_CAPTURE_H
#define KVISOR_UNIT_CAPTURE_H

#include <stdio.h>
#include <unistd.h>

struct unit_capture {
	FILE *f;   /* the scratch file fd 2 points at meanwhile */
	int saved; /* the real stderr, restored by unit_capture_end() */
};

/* Send stderr to a fresh scratch file until unit_capture_end(&(c)). */
static void unit_capture_begin(struct unit_capture *c)
{
	c->f = tmpfile();
	ck_assert_ptr_nonnull(c->f);
	/* Flush first so earlier buffered output goes to the real stderr. */
	fflush(stderr);
	c->saved = dup(2);
	ck_assert_int_ge(c->saved, 0);
	dup2(fileno(c->f), 2);
}

/* Restore stderr and put what was printed since unit_capture_begin(&(c))
 * into (msg), at most (cap) - 1 bytes, NUL-terminated. */
static void unit_capture_end(struct unit_capture *c, char *msg, size_t cap)
{
	ssize_t n;

	fflush(stderr);
	dup2(c->saved, 2);
	close(c->saved);
	n = pread(fileno(c->f), msg, cap - 1, 0);
	msg[n > 0 ? n : 0] = '\0';
	fclose(c->f);
}

#endif
