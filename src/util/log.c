/* Logging to stderr with a level threshold and per-call-site rate limits. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "kvisor/log.h"

int log_threshold = LOG_INFO;
static atomic_uint log_errors;

unsigned log_error_count(void)
{
	return atomic_load(&log_errors);
}

static void log_vmsg(const char *fmt, va_list ap)
{
	char buf[1024];
	int n;

	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	if (n < 0)
		return;
	/* One write per line so messages from vCPU threads do not interleave. */
	fprintf(stderr, "kvisor: %s\n", buf);
}

void log_msg(int level, const char *fmt, ...)
{
	va_list ap;

	if (level == LOG_ERR)
		atomic_fetch_add(&log_errors, 1);
	if (level > log_threshold)
		return;
	va_start(ap, fmt);
	log_vmsg(fmt, ap);
	va_end(ap);
}

#define LOG_BURST 10

void log_ratelimited(struct log_ratelimit *state, int level, const char *fmt, ...)
{
	struct timespec ts;
	va_list ap;

	if (level == LOG_ERR)
		atomic_fetch_add(&log_errors, 1);
	if (level > log_threshold)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	/* Races between vCPU threads only make the limit approximate. */
	if (state->window != ts.tv_sec) {
		state->window = ts.tv_sec;
		state->count = 0;
	}
	if (state->count++ >= LOG_BURST)
		return;
	va_start(ap, fmt);
	log_vmsg(fmt, ap);
	va_end(ap);
}
