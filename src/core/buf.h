/*
 * buf: an owned, growable byte buffer with a hard ceiling.
 *
 * Bytes live in data[start, start+len). Consuming from the front only moves
 * start; space is compacted when more room is needed. Views (strv) returned
 * by buf_data()/buf_take_line() borrow the buffer and stay valid until the
 * next call that adds bytes. The ceiling (max) bounds growth so a peer
 * cannot make the buffer grow without limit: try_ functions fail with
 * CELER_ELIMIT instead. The contents are kept NUL-terminated for callers that
 * need a C string of their own data (never of peer data).
 */
#ifndef CELER_CORE_BUF_H
#define CELER_CORE_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"
#include "core/strv.h"

struct buf {
    char *data; /* owned */
    size_t start;
    size_t len;
    size_t cap;
    size_t max; /* hard ceiling on len */
};

#define BUF_UNLIMITED ((size_t)-1 / 2)

void buf_init(struct buf *b, size_t max);
void buf_release(struct buf *b);
/* Forgets the contents, keeps the memory. */
void buf_reset(struct buf *b);

static inline struct strv
buf_data(const struct buf *b)
{
    return (struct strv){b->data ? b->data + b->start : "", b->len};
}

static inline size_t
buf_len(const struct buf *b)
{
    return b->len;
}

int try_buf_append(struct buf *b, const void *p, size_t len) CELER_WUR;
int try_buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3))) CELER_WUR;
int try_buf_vprintf(struct buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0))) CELER_WUR;
/* Appends for buffers whose growth we control; abort past the ceiling. */
void buf_append(struct buf *b, const void *p, size_t len);
void buf_append_strv(struct buf *b, struct strv s);
void buf_append_cstr(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Makes room for at least want bytes after the data and returns where they
 * go; *room gets the room available (>= want). NULL if the ceiling forbids.
 * Follow with buf_commit(b, n) for the bytes actually written.
 */
char *try_buf_reserve(struct buf *b, size_t want, size_t *room);
void buf_commit(struct buf *b, size_t n);

/* Drops n bytes from the front. */
void buf_consume(struct buf *b, size_t n);

/*
 * Takes the first line (ended by LF) off the front. The view excludes the LF
 * and a CR just before it; *bare_lf (if given) says the line ended with a
 * lone LF. Returns false when no complete line is buffered.
 */
bool buf_take_line(struct buf *b, struct strv *line, bool *bare_lf);

/* A malloc'd NUL-terminated copy of the contents; the buffer is released. */
char *buf_steal_cstr(struct buf *b);

#endif
