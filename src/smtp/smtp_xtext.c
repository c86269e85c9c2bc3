/*
 * smtp_xtext: RFC 3461 xtext and RFC 6533 UTF-8 address encodings (see
 * smtp_xtext.h).
 */
#include "smtp/smtp_xtext.h"

#include <string.h>

static const char smtp_xtext_hex[] = "0123456789ABCDEF";

/* Where decoded octets go: a growable buf, a fixed array, or nowhere. */
struct smtp_xtext_sink {
    struct buf *buf; /* borrowed, or NULL */
    char *dst;       /* borrowed, or NULL */
    size_t cap;
    size_t len;
};

static int
smtp_xtext_put(struct smtp_xtext_sink *k, const char *p, size_t n)
{
    if (k->buf) {
        return try_buf_append(k->buf, p, n) == 0 ? 0 : CELER_ELIMIT;
    }
    if (k->dst) {
        if (n > k->cap - k->len) {
            return CELER_ELIMIT;
        }
        memcpy(k->dst + k->len, p, n);
    }
    k->len += n;
    return 0;
}

static int
smtp_xtext_hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

/* xchar: '!'..'~' except '+' and '='. */
static bool
smtp_xtext_is_xchar(unsigned char c)
{
    return c >= 33 && c <= 126 && c != '+' && c != '=';
}

size_t
smtp_xtext_utf8_next(struct strv s, unsigned *cp)
{
    const unsigned char *p = (const unsigned char *)s.ptr;
    unsigned c, min;
    size_t n;

    if (s.len == 0) {
        return 0;
    }
    c = p[0];
    if (c < 0x80) {
        n = 1;
        min = 0;
    } else if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        c &= 0x1f;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        c &= 0x0f;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        c &= 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (s.len < n) {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
        c = (c << 6) | (p[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
        return 0;
    }
    if (cp) {
        *cp = c;
    }
    return n;
}

bool
smtp_xtext_utf8_valid(struct strv s)
{
    size_t i = 0;

    while (i < s.len) {
        size_t n;

        if ((unsigned char)s.ptr[i] < 0x80) {
            i++;
            continue;
        }
        n = smtp_xtext_utf8_next(strv_from(s, i), NULL);
        if (n == 0) {
            return false;
        }
        i += n;
    }
    return true;
}

/* Decodes xtext s into k (which may discard). */
static int
smtp_xtext_walk(struct strv s, struct smtp_xtext_sink *k)
{
    size_t i = 0;

    while (i < s.len) {
        unsigned char c = (unsigned char)s.ptr[i];
        size_t run = i;
        int hi, lo;
        char octet;

        while (run < s.len && smtp_xtext_is_xchar((unsigned char)s.ptr[run])) {
            run++;
        }
        if (run > i) {
            if (smtp_xtext_put(k, s.ptr + i, run - i) != 0) {
                return CELER_ELIMIT;
            }
            i = run;
            continue;
        }
        if (c != '+' || s.len - i < 3) {
            return CELER_EPARSE;
        }
        hi = smtp_xtext_hexval(s.ptr[i + 1]);
        lo = smtp_xtext_hexval(s.ptr[i + 2]);
        if (hi < 0 || lo < 0) {
            return CELER_EPARSE;
        }
        octet = (char)(hi * 16 + lo);
        if (smtp_xtext_put(k, &octet, 1) != 0) {
            return CELER_ELIMIT;
        }
        i += 3;
    }
    return 0;
}

bool
smtp_xtext_valid(struct strv s)
{
    struct smtp_xtext_sink k = {0};

    return smtp_xtext_walk(s, &k) == 0;
}

int
try_smtp_xtext_decode(struct strv in, struct buf *out)
{
    struct smtp_xtext_sink k = {.buf = out};

    return smtp_xtext_walk(in, &k);
}

int
smtp_xtext_decode_into(struct strv in, char *dst, size_t cap, size_t *len)
{
    struct smtp_xtext_sink k = {.dst = dst, .cap = cap};
    int err = smtp_xtext_walk(in, &k);

    *len = k.len;
    return err;
}

int
try_smtp_xtext_encode(struct strv in, struct buf *out)
{
    size_t i = 0;

    while (i < in.len) {
        size_t run = i;
        unsigned char c;
        char esc[3];

        while (run < in.len && smtp_xtext_is_xchar((unsigned char)in.ptr[run])) {
            run++;
        }
        if (run > i) {
            if (try_buf_append(out, in.ptr + i, run - i) != 0) {
                return CELER_ELIMIT;
            }
            i = run;
            continue;
        }
        c = (unsigned char)in.ptr[i];
        esc[0] = '+';
        esc[1] = smtp_xtext_hex[c >> 4];
        esc[2] = smtp_xtext_hex[c & 15];
        if (try_buf_append(out, esc, sizeof(esc)) != 0) {
            return CELER_ELIMIT;
        }
        i++;
    }
    return 0;
}

/* QCHAR of RFC 6533: '!'..'~' except '+', '=', '\'. */
static bool
smtp_xtext_is_qchar(unsigned char c)
{
    return smtp_xtext_is_xchar(c) && c != '\\';
}

static int
smtp_xtext_put_utf8(unsigned cp, struct smtp_xtext_sink *k)
{
    char b[4];
    size_t n;

    if (cp < 0x80) {
        b[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xc0 | (cp >> 6));
        b[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xe0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        b[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        b[0] = (char)(0xf0 | (cp >> 18));
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        b[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    return smtp_xtext_put(k, b, n);
}

/*
 * Parses "\x{HEX}" at the start of s: 1 to 6 hex digits naming a scalar
 * value above 0. Returns the length consumed, or 0 if malformed.
 */
static size_t
smtp_xtext_parse_escape(struct strv s, unsigned *cp)
{
    unsigned v = 0;
    size_t i = 3;

    if (s.len < 5 || s.ptr[0] != '\\' || s.ptr[1] != 'x' || s.ptr[2] != '{') {
        return 0;
    }
    while (i < s.len && i < 3 + 6 && smtp_xtext_hexval(s.ptr[i]) >= 0) {
        v = v * 16 + (unsigned)smtp_xtext_hexval(s.ptr[i]);
        i++;
    }
    if (i == 3 || i >= s.len || s.ptr[i] != '}') {
        return 0;
    }
    if (v == 0 || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) {
        return 0;
    }
    *cp = v;
    return i + 1;
}

static int
smtp_xtext_walk_utf8addr(struct strv in, bool allow_utf8, struct smtp_xtext_sink *k)
{
    size_t i = 0;

    while (i < in.len) {
        unsigned char c = (unsigned char)in.ptr[i];
        unsigned cp;
        size_t n;
        int err;

        if (smtp_xtext_is_qchar(c)) {
            n = 1;
            err = smtp_xtext_put(k, in.ptr + i, 1);
        } else if (c == '\\') {
            n = smtp_xtext_parse_escape(strv_from(in, i), &cp);
            if (n == 0) {
                return CELER_EPARSE;
            }
            err = smtp_xtext_put_utf8(cp, k);
        } else if (c >= 0x80 && allow_utf8) {
            n = smtp_xtext_utf8_next(strv_from(in, i), NULL);
            if (n == 0) {
                return CELER_EPARSE;
            }
            err = smtp_xtext_put(k, in.ptr + i, n);
        } else {
            return CELER_EPARSE;
        }
        if (err != 0) {
            return err;
        }
        i += n;
    }
    return 0;
}

int
try_smtp_xtext_decode_utf8addr(struct strv in, bool allow_utf8, struct buf *out)
{
    struct smtp_xtext_sink k = {.buf = out};

    return smtp_xtext_walk_utf8addr(in, allow_utf8, &k);
}

int
smtp_xtext_decode_utf8addr_into(struct strv in, bool allow_utf8, char *dst, size_t cap, size_t *len)
{
    struct smtp_xtext_sink k = {.dst = dst, .cap = cap};
    int err = smtp_xtext_walk_utf8addr(in, allow_utf8, &k);

    *len = k.len;
    return err;
}

int
try_smtp_xtext_encode_utf8addr(struct strv in, struct buf *out)
{
    size_t i = 0;

    while (i < in.len) {
        unsigned char c = (unsigned char)in.ptr[i];
        unsigned cp;
        size_t n;

        if (smtp_xtext_is_qchar(c)) {
            if (try_buf_append(out, in.ptr + i, 1) != 0) {
                return CELER_ELIMIT;
            }
            i++;
            continue;
        }
        n = smtp_xtext_utf8_next(strv_from(in, i), &cp);
        if (n == 0) {
            return CELER_EPARSE;
        }
        if (try_buf_printf(out, "\\x{%02X}", cp) != 0) {
            return CELER_ELIMIT;
        }
        i += n;
    }
    return 0;
}
