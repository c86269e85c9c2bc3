/*
 * strv: borrowed string views (see strv.h).
 */
#include "core/strv.h"

#include <string.h>

#include "core/mem.h"

struct strv
strv_from_cstr(const char *s)
{
    return (struct strv){s, s ? strlen(s) : 0};
}

struct strv
strv_make(const char *ptr, size_t len)
{
    return (struct strv){ptr, len};
}

bool
strv_eq(struct strv a, struct strv b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

bool
strv_eq_ci(struct strv a, struct strv b)
{
    return a.len == b.len && strv_cmp_ci(a, b) == 0;
}

bool
strv_eq_cstr(struct strv a, const char *s)
{
    return strv_eq(a, strv_from_cstr(s));
}

bool
strv_eq_cstr_ci(struct strv a, const char *s)
{
    return strv_eq_ci(a, strv_from_cstr(s));
}

int
strv_cmp(struct strv a, struct strv b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.ptr, b.ptr, n) : 0;

    if (c != 0) {
        return c;
    }
    return a.len < b.len ? -1 : a.len > b.len;
}

int
strv_cmp_ci(struct strv a, struct strv b)
{
    size_t n = a.len < b.len ? a.len : b.len;

    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)strv_lower_char(a.ptr[i]);
        unsigned char y = (unsigned char)strv_lower_char(b.ptr[i]);

        if (x != y) {
            return x < y ? -1 : 1;
        }
    }
    return a.len < b.len ? -1 : a.len > b.len;
}

bool
strv_has_prefix(struct strv s, struct strv prefix)
{
    return s.len >= prefix.len && strv_eq(strv_sub(s, 0, prefix.len), prefix);
}

bool
strv_has_prefix_ci(struct strv s, struct strv prefix)
{
    return s.len >= prefix.len && strv_eq_ci(strv_sub(s, 0, prefix.len), prefix);
}

bool
strv_has_suffix_ci(struct strv s, struct strv suffix)
{
    return s.len >= suffix.len && strv_eq_ci(strv_from(s, s.len - suffix.len), suffix);
}

ptrdiff_t
strv_chr(struct strv s, char c)
{
    const char *p = s.len ? memchr(s.ptr, c, s.len) : NULL;

    return p ? p - s.ptr : -1;
}

ptrdiff_t
strv_rchr(struct strv s, char c)
{
    const char *p = s.len ? memrchr(s.ptr, c, s.len) : NULL;

    return p ? p - s.ptr : -1;
}

ptrdiff_t
strv_find(struct strv s, struct strv needle)
{
    const char *p;

    if (needle.len == 0) {
        return 0;
    }
    p = s.len ? memmem(s.ptr, s.len, needle.ptr, needle.len) : NULL;
    return p ? p - s.ptr : -1;
}

struct strv
strv_sub(struct strv s, size_t from, size_t len)
{
    if (from > s.len) {
        from = s.len;
    }
    if (len > s.len - from) {
        len = s.len - from;
    }
    return (struct strv){s.ptr + from, len};
}

struct strv
strv_from(struct strv s, size_t from)
{
    return strv_sub(s, from, s.len);
}

static bool
strv_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

struct strv
strv_trim(struct strv s)
{
    while (s.len && strv_is_space(s.ptr[0])) {
        s.ptr++;
        s.len--;
    }
    while (s.len && strv_is_space(s.ptr[s.len - 1])) {
        s.len--;
    }
    return s;
}

struct strv
strv_split(struct strv *s, char sep)
{
    ptrdiff_t i = strv_chr(*s, sep);
    struct strv head;

    if (i < 0) {
        head = *s;
        *s = (struct strv){s->ptr + s->len, 0};
        return head;
    }
    head = strv_sub(*s, 0, (size_t)i);
    *s = strv_from(*s, (size_t)i + 1);
    return head;
}

struct strv
strv_next_word(struct strv *s)
{
    size_t i = 0;
    struct strv w;

    while (s->len && strv_is_space(s->ptr[0])) {
        s->ptr++;
        s->len--;
    }
    while (i < s->len && !strv_is_space(s->ptr[i])) {
        i++;
    }
    w = strv_sub(*s, 0, i);
    *s = strv_from(*s, i);
    return w;
}

int
strv_to_u64(struct strv s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (s.len == 0) {
        return CELER_EPARSE;
    }
    for (size_t i = 0; i < s.len; i++) {
        unsigned d;

        if (s.ptr[i] < '0' || s.ptr[i] > '9') {
            return CELER_EPARSE;
        }
        d = (unsigned)(s.ptr[i] - '0');
        if (d > max || v > (max - d) / 10) { /* d > max: max - d would wrap */
            return CELER_ELIMIT;
        }
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

char *
strv_dup(struct strv s)
{
    return xstrndup(s.len ? s.ptr : "", s.len);
}

size_t
strv_copy(struct strv s, char *dst, size_t size)
{
    size_t n;

    if (size == 0) {
        return s.len;
    }
    n = s.len < size - 1 ? s.len : size - 1;
    if (n) {
        memcpy(dst, s.ptr, n);
    }
    dst[n] = '\0';
    return s.len;
}

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME  0x100000001b3ULL

uint64_t
strv_hash(struct strv s)
{
    uint64_t h = FNV_OFFSET;

    for (size_t i = 0; i < s.len; i++) {
        h = (h ^ (unsigned char)s.ptr[i]) * FNV_PRIME;
    }
    return h;
}

uint64_t
strv_hash_ci(struct strv s)
{
    uint64_t h = FNV_OFFSET;

    for (size_t i = 0; i < s.len; i++) {
        h = (h ^ (unsigned char)strv_lower_char(s.ptr[i])) * FNV_PRIME;
    }
    return h;
}
