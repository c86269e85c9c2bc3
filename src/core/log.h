/*
 * log: levelled logging calls for the daemon's own diagnostics.
 *
 * One line per event: an event name, then key=value pairs, e.g.
 *   log_info("listener_open addr=%s fd=%d", addr, fd);
 * Levels follow Momentum's Debug_Level: debug, info, notice, warning, error,
 * critical. A disabled level costs one comparison, not a format. Lines go to
 * one sink at a time (stderr by default; celerd installs the paniclog
 * writer). The sink must be thread-safe; log_set_sink is not, call it while
 * single-threaded or from the thread that owns logging setup.
 * Peer text must be escaped (log_escape) before it is logged.
 */
#ifndef CELER_CORE_LOG_H
#define CELER_CORE_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level {
    LOG_LEVEL_DEBUG = 0,
    LOG_LEVEL_INFO,
    LOG_LEVEL_NOTICE,
    LOG_LEVEL_WARNING,
    LOG_LEVEL_ERROR,
    LOG_LEVEL_CRIT,
};

/* Receives a formatted line without trailing newline. */
typedef void log_sink_fn(enum log_level level, const char *line, size_t len, void *arg);

extern int log_threshold; /* lines below this level are dropped */

void log_set_sink(log_sink_fn *fn, void *arg);
void log_set_level(enum log_level level);
/* "debug", "info", ... or "0".."5"; -1 if unknown. */
int log_level_parse(const char *name);
const char *log_level_name(enum log_level level);

void log_emit(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vemit(enum log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/*
 * Writes a printable, bounded copy of peer text into dst[size]: bytes outside
 * 0x20..0x7e become \xHH, backslash becomes \\. Truncates with "...".
 * Returns dst.
 */
char *log_escape(const char *src, size_t len, char *dst, size_t size);

/* The stderr sink: "level: line\n". */
void log_sink_stderr(enum log_level level, const char *line, size_t len, void *arg);

#define log_at(level, ...)                                                                         \
    do {                                                                                           \
        if ((int)(level) >= log_threshold) {                                                       \
            log_emit((level), __VA_ARGS__);                                                        \
        }                                                                                          \
    } while (0)

#define log_debug(...)   log_at(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...)    log_at(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_notice(...)  log_at(LOG_LEVEL_NOTICE, __VA_ARGS__)
#define log_warning(...) log_at(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_error(...)   log_at(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_crit(...)    log_at(LOG_LEVEL_CRIT, __VA_ARGS__)

#endif
