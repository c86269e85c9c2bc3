/*
 * mem: allocation wrappers that abort on exhaustion (see mem.h).
 */
#include "core/mem.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void __attribute__((noreturn)) mem_die(size_t size)
{
    static const char msg[] = "celer: out of memory\n";

    (void)size;
    (void)!write(STDERR_FILENO, msg, sizeof(msg) - 1); /* nothing else to do */
    abort();
}

void *
xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);

    if (p == NULL) {
        mem_die(size);
    }
    return p;
}

void *
xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);

    if (p == NULL) {
        mem_die(n * size);
    }
    return p;
}

void *
xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);

    if (q == NULL) {
        mem_die(size);
    }
    return q;
}

void *
xgrow(void *p, size_t *cap, size_t need, size_t elem_size)
{
    size_t ncap = *cap ? *cap : 8;

    if (need <= *cap && p != NULL) { /* p == NULL: allocate anyway, never return NULL */
        return p;
    }
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2 / elem_size) {
            mem_die(SIZE_MAX);
        }
        ncap *= 2;
    }
    *cap = ncap;
    return xrealloc(p, ncap * elem_size);
}

char *
xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t len)
{
    char *p = xmalloc(len + 1);

    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

void *
xmemdup(const void *p, size_t len)
{
    void *q = xmalloc(len);

    if (len) {
        memcpy(q, p, len);
    }
    return q;
}

char *
xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) {
        mem_die(0);
    }
    return s;
}

void
mem_clear_free(void *p, size_t len)
{
    if (p == NULL) {
        return;
    }
    explicit_bzero(p, len);
    free(p);
}
