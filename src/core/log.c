/*
 * log: levelled logging calls (see log.h).
 */
#include "core/log.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

int log_threshold = LOG_LEVEL_INFO;

static log_sink_fn *log_sink = log_sink_stderr;
static void *log_sink_arg;

static const char *const log_level_names[] = {
    "debug", "info", "notice", "warning", "error", "critical",
};

void
log_set_sink(log_sink_fn *fn, void *arg)
{
    log_sink = fn ? fn : log_sink_stderr;
    log_sink_arg = fn ? arg : NULL;
}

void
log_set_level(enum log_level level)
{
    log_threshold = (int)level;
}

int
log_level_parse(const char *name)
{
    for (size_t i = 0; i < sizeof(log_level_names) / sizeof(log_level_names[0]); i++) {
        if (strcasecmp(name, log_level_names[i]) == 0) {
            return (int)i;
        }
    }
    if (name[0] >= '0' && name[0] <= '5' && name[1] == '\0') {
        return name[0] - '0';
    }
    if (strcasecmp(name, "crit") == 0) {
        return LOG_LEVEL_CRIT;
    }
    return -1;
}

const char *
log_level_name(enum log_level level)
{
    if ((unsigned)level < sizeof(log_level_names) / sizeof(log_level_names[0])) {
        return log_level_names[level];
    }
    return "unknown";
}

void
log_vemit(enum log_level level, const char *fmt, va_list ap)
{
    char line[2048];
    int n = vsnprintf(line, sizeof(line), fmt, ap);

    if (n < 0) {
        return;
    }
    if ((size_t)n >= sizeof(line)) {
        n = sizeof(line) - 1;
    }
    log_sink(level, line, (size_t)n, log_sink_arg);
}

void
log_emit(enum log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vemit(level, fmt, ap);
    va_end(ap);
}

/* Bytes the escaped form of c takes. */
static size_t
log_escape_width(unsigned char c)
{
    return (c < 0x20 || c > 0x7e) ? 4 : (c == '\\' ? 2 : 1);
}

/* True when all of src, escaped, plus the NUL fits in room bytes. */
static bool
log_escape_fits(const char *src, size_t len, size_t room)
{
    size_t need = 1;

    for (size_t i = 0; i < len && need <= room; i++) {
        need += log_escape_width((unsigned char)src[i]);
    }
    return need <= room;
}

char *
log_escape(const char *src, size_t len, char *dst, size_t size)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;

    if (size == 0) {
        return dst;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)src[i];
        size_t need = log_escape_width(c);

        /* Keep room for "..." and the NUL, unless the whole rest fits. */
        if (o + need + 4 > size && !log_escape_fits(src + i, len - i, size - o)) {
            if (o + 4 <= size) {
                memcpy(dst + o, "...", 3);
                o += 3;
            }
            break;
        }
        if (need == 4) {
            dst[o++] = '\\';
            dst[o++] = 'x';
            dst[o++] = hex[c >> 4];
            dst[o++] = hex[c & 15];
        } else if (need == 2) {
            dst[o++] = '\\';
            dst[o++] = '\\';
        } else {
            dst[o++] = (char)c;
        }
    }
    dst[o] = '\0';
    return dst;
}

void
log_sink_stderr(enum log_level level, const char *line, size_t len, void *arg)
{
    char out[2200];
    int n = snprintf(out, sizeof(out), "%s: %.*s\n", log_level_names[level], (int)len, line);

    (void)arg;
    if (n > 0) {
        (void)!write(STDERR_FILENO, out, (size_t)n < sizeof(out) ? (size_t)n : sizeof(out) - 1);
    }
}
