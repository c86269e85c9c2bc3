/*
 * buf: owned growable buffer with a hard ceiling (see buf.h).
 */
#include "core/buf.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

void
buf_init(struct buf *b, size_t max)
{
    *b = (struct buf){.max = max};
}

void
buf_release(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->start = b->len = b->cap = 0;
}

void
buf_reset(struct buf *b)
{
    b->start = b->len = 0;
    if (b->data) {
        b->data[0] = '\0';
    }
}

char *
try_buf_reserve(struct buf *b, size_t want, size_t *room)
{
    size_t need;

    if (want > b->max - b->len) {
        return NULL;
    }
    need = b->len + want + 1; /* + NUL */
    if (b->start + need > b->cap) {
        if (b->start > 0 && need <= b->cap) {
            memmove(b->data, b->data + b->start, b->len);
            b->start = 0;
        } else {
            size_t ncap = b->cap ? b->cap : 64;

            if (b->start) {
                memmove(b->data, b->data + b->start, b->len);
                b->start = 0;
            }
            while (ncap < need) {
                ncap *= 2;
            }
            b->data = xrealloc(b->data, ncap);
            b->cap = ncap;
        }
    }
    /* Terminated even if the caller abandons the reservation (fresh memory, compaction). */
    b->data[b->start + b->len] = '\0';
    if (room) {
        size_t avail = b->cap - b->start - b->len - 1;
        size_t allowed = b->max - b->len;

        *room = avail < allowed ? avail : allowed;
    }
    return b->data + b->start + b->len;
}

void
buf_commit(struct buf *b, size_t n)
{
    assert(b->start + b->len + n < b->cap);
    b->len += n;
    b->data[b->start + b->len] = '\0';
}

int
try_buf_append(struct buf *b, const void *p, size_t len)
{
    char *dst = try_buf_reserve(b, len, NULL);

    if (dst == NULL) {
        return CELER_ELIMIT;
    }
    if (len) {
        memcpy(dst, p, len);
    }
    buf_commit(b, len);
    return 0;
}

int
try_buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
    va_list aq;
    char *dst;
    size_t room;
    int n;

    dst = try_buf_reserve(b, 0, &room);
    if (dst == NULL) {
        return CELER_ELIMIT;
    }
    va_copy(aq, ap);
    n = vsnprintf(dst, room + 1, fmt, aq);
    va_end(aq);
    if (n < 0) {
        *dst = '\0'; /* restore the terminator the attempt may have overwritten */
        return CELER_EPARSE;
    }
    if ((size_t)n > room) {
        char *more = try_buf_reserve(b, (size_t)n, &room);

        if (more == NULL) {
            *dst = '\0'; /* the first attempt wrote over the terminator */
            return CELER_ELIMIT;
        }
        dst = more;
        va_copy(aq, ap);
        (void)vsnprintf(dst, (size_t)n + 1, fmt, aq); /* fits: sized above */
        va_end(aq);
    }
    buf_commit(b, (size_t)n);
    return 0;
}

int
try_buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    int err;

    va_start(ap, fmt);
    err = try_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return err;
}

void
buf_append(struct buf *b, const void *p, size_t len)
{
    if (try_buf_append(b, p, len) != 0) {
        abort(); /* caller promised the ceiling cannot be reached */
    }
}

void
buf_append_strv(struct buf *b, struct strv s)
{
    buf_append(b, s.ptr, s.len);
}

void
buf_append_cstr(struct buf *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

void
buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    int err;

    va_start(ap, fmt);
    err = try_buf_vprintf(b, fmt, ap);
    va_end(ap);
    if (err != 0) {
        abort(); /* caller promised the ceiling cannot be reached */
    }
}

void
buf_consume(struct buf *b, size_t n)
{
    /* Only moves start: bytes are not touched, so views from buf_take_line() stay valid. */
    if (n > b->len) {
        n = b->len;
    }
    b->start += n;
    b->len -= n;
}

bool
buf_take_line(struct buf *b, struct strv *line, bool *bare_lf)
{
    const char *p = b->data + b->start;
    const char *lf = b->len ? memchr(p, '\n', b->len) : NULL;
    size_t n;
    bool cr;

    if (lf == NULL) {
        return false;
    }
    n = (size_t)(lf - p);
    cr = n > 0 && p[n - 1] == '\r';
    *line = (struct strv){p, cr ? n - 1 : n};
    if (bare_lf) {
        *bare_lf = !cr;
    }
    /* Advance without compacting: the view must stay valid. */
    b->start += n + 1;
    b->len -= n + 1;
    return true;
}

char *
buf_steal_cstr(struct buf *b)
{
    char *s;

    if (b->data == NULL) {
        return xstrdup("");
    }
    if (b->start) {
        memmove(b->data, b->data + b->start, b->len);
        b->start = 0;
    }
    b->data[b->len] = '\0';
    s = b->data;
    b->data = NULL;
    b->len = b->cap = 0;
    return s;
}
