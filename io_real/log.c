/* log.c: leveled one-line logs to stderr (see log.h). Process-wide state:
 * the level, node id and term are written by the loop thread; the storage
 * thread only reads them (a torn term in a log line is harmless). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "../core/err.h"
#include "log.h"

static enum log_level log_level_current = LOG_INFO;
static uint64_t log_node_id;
static uint64_t log_term;

static const char *const level_names[] = { "ERROR", "WARN", "INFO", "DEBUG" };

void log_set_level(enum log_level level)
{
	log_level_current = level;
}

void log_set_node(uint64_t node_id)
{
	log_node_id = node_id;
}

void log_set_term(uint64_t term)
{
	log_term = term;
}

const char *log_err_msg(int code)
{
	if (code < 0 && !keel_err_is_keel(code))
		return strerror(-code);
	return keel_err_msg(code);
}

bool log_enabled(enum log_level level)
{
	return level <= log_level_current;
}

int log_level_parse(const char *s, enum log_level *out)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	for (int i = 0; i < 4; i++) {
		if (strcasecmp(s, names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return KEEL_EINVAL;
}

void log_line(enum log_level level, const char *fmt, ...)
{
	if (!log_enabled(level))
		return;
	char line[LOG_LINE_BYTES_MAX];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof line,
			 "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s node=%llu term=%llu ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
			 tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L,
			 level_names[level], (unsigned long long)log_node_id,
			 (unsigned long long)log_term);
	if (n < 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
	va_end(ap);
	size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
	if (len > sizeof line - 2)
		len = sizeof line - 2;
	line[len++] = '\n';
	/* One write per line so concurrent writers never interleave mid-line. */
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}
