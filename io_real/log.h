/*
 * log.h: leveled logs to stderr, one line per event.
 *
 * Every line: "<UTC time> <LEVEL> node=<id> term=<term> <message>". The node
 * id and term are process state set by the node as they become known; the
 * level filter is set once at start. Lines longer than LOG_LINE_BYTES_MAX
 * are truncated (never split).
 */
#ifndef KEEL_LOG_H
#define KEEL_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

#define LOG_LINE_BYTES_MAX 1024u

void log_set_level(enum log_level level);
void log_set_node(uint64_t node_id);
void log_set_term(uint64_t term);
bool log_enabled(enum log_level level);

/* "error", "warn", "info", "debug" -> level. Returns 0 or KEEL_EINVAL. */
int log_level_parse(const char *s, enum log_level *out);

/* keel_err_msg(code), or strerror(-code) for a -errno: what to log. */
const char *log_err_msg(int code);

void log_line(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define LOG_ERROR(...) log_line(LOG_ERROR, __VA_ARGS__)
#define LOG_WARN(...) log_line(LOG_WARN, __VA_ARGS__)
#define LOG_INFO(...) log_line(LOG_INFO, __VA_ARGS__)
#define LOG_DEBUG(...)                                \
	do {                                          \
		if (log_enabled(LOG_DEBUG))           \
			log_line(LOG_DEBUG, __VA_ARGS__); \
	} while (0)

#endif
