/* Logging: one line per message on stderr, with a level threshold. */
#ifndef KVISOR_LOG_H
#define KVISOR_LOG_H

enum log_level { LOG_ERR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

extern int log_threshold;

/* Print "kvisor: <message>\n" on stderr when (level) <= log_threshold. */
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* How many LOG_ERR messages have been issued (printed or not): lets a caller
 * add its own line only when the callee reported nothing. */
unsigned log_error_count(void);

/* Like log_msg, but at most (burst) messages per second per call site (state). */
struct log_ratelimit {
	long long window;
	unsigned count;
};
void log_ratelimited(struct log_ratelimit *state, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_err(...)   log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
