/*
 * strv: borrowed string views ({ptr, len}), passed by value.
 *
 * A strv never owns its bytes and is never assumed NUL-terminated. Parsers
 * of protocol and file data take strv and never call strlen on peer data.
 * Comparison helpers come in exact and ASCII case-insensitive forms.
 */
#ifndef CELER_CORE_STRV_H
#define CELER_CORE_STRV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct strv {
    const char *ptr; /* borrowed */
    size_t len;
};

#define STRV_NULL ((struct strv){NULL, 0})
/* A view of a string literal. */
#define STRV_LIT(s) ((struct strv){"" s, sizeof(s) - 1})
/* printf("%.*s", STRV_FMT(v)) */
#define STRV_FMT(v) (int)(v).len, (v).ptr

struct strv strv_from_cstr(const char *s);
struct strv strv_make(const char *ptr, size_t len);

bool strv_eq(struct strv a, struct strv b);
bool strv_eq_ci(struct strv a, struct strv b);
bool strv_eq_cstr(struct strv a, const char *s);
bool strv_eq_cstr_ci(struct strv a, const char *s);
/* memcmp-style ordering; case-insensitive variant folds ASCII only. */
int strv_cmp(struct strv a, struct strv b);
int strv_cmp_ci(struct strv a, struct strv b);
bool strv_has_prefix(struct strv s, struct strv prefix);
bool strv_has_prefix_ci(struct strv s, struct strv prefix);
bool strv_has_suffix_ci(struct strv s, struct strv suffix);

/* Index of the first c in s, or -1. */
ptrdiff_t strv_chr(struct strv s, char c);
ptrdiff_t strv_rchr(struct strv s, char c);
/* Index of the first occurrence of needle, or -1. */
ptrdiff_t strv_find(struct strv s, struct strv needle);

/* s[from, from+len) clamped to s. */
struct strv strv_sub(struct strv s, size_t from, size_t len);
struct strv strv_from(struct strv s, size_t from);
/* Removes leading and trailing spaces and tabs (and CR/LF). */
struct strv strv_trim(struct strv s);
/*
 * Splits *s at the first sep: returns the part before it and leaves the rest
 * after it in *s. Without sep, returns all of *s and leaves *s empty.
 */
struct strv strv_split(struct strv *s, char sep);
/* Skips leading whitespace, then returns the next whitespace-delimited word. */
struct strv strv_next_word(struct strv *s);

/*
 * Decimal unsigned parse of the whole of s. Fails with CELER_EPARSE on an
 * empty string or a non-digit and CELER_ELIMIT above max.
 */
int strv_to_u64(struct strv s, uint64_t max, uint64_t *out) CELER_WUR;

/* A malloc'd NUL-terminated copy (aborts on exhaustion). */
char *strv_dup(struct strv s);
/* Copies into dst[size] with truncation and NUL termination; returns s.len. */
size_t strv_copy(struct strv s, char *dst, size_t size);

/* FNV-1a hash of s; the _ci form hashes the ASCII-lowercased bytes. */
uint64_t strv_hash(struct strv s);
uint64_t strv_hash_ci(struct strv s);

static inline char
strv_lower_char(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + ('a' - 'A')) : c;
}

#endif
