/*
 * mem: allocation wrappers.
 *
 * x-prefixed functions abort the process when memory is exhausted: celer
 * treats allocation failure of small, bounded objects as fatal. Sizes a
 * peer controls go through buf (which has a hard ceiling) instead.
 * mem_clear_free() wipes secrets before freeing them.
 */
#ifndef CELER_CORE_MEM_H
#define CELER_CORE_MEM_H

#include <stddef.h>

void *xmalloc(size_t size) __attribute__((malloc, returns_nonnull));
void *xcalloc(size_t n, size_t size) __attribute__((malloc, returns_nonnull));
void *xrealloc(void *p, size_t size) __attribute__((returns_nonnull));
/* Grows an array to at least need elements (doubling); updates *cap. */
void *xgrow(void *p, size_t *cap, size_t need, size_t elem_size) __attribute__((returns_nonnull));
char *xstrdup(const char *s) __attribute__((malloc, returns_nonnull));
/* Copies len bytes and NUL-terminates. */
char *xstrndup(const char *s, size_t len) __attribute__((malloc, returns_nonnull));
void *xmemdup(const void *p, size_t len) __attribute__((malloc, returns_nonnull));
/* asprintf that aborts on exhaustion. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2), returns_nonnull));

#define XNEW(type) ((type *)xcalloc(1, sizeof(type)))

/* Overwrites len bytes of p with zeros (not optimised away), then frees p. */
void mem_clear_free(void *p, size_t len);

#endif
