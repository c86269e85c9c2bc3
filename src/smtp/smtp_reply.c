/*
 * smtp_reply: reply formatting, reply parsing and EHLO keywords (see
 * smtp_reply.h).
 */
#include "smtp/smtp_reply.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *const smtp_ext_names[] = {
    "SIZE",       "PIPELINING",          "8BITMIME", "SMTPUTF8", "STARTTLS", "CHUNKING",
    "BINARYMIME", "ENHANCEDSTATUSCODES", "DSN",      "AUTH",     "XCLIENT",
};

const char *
smtp_ext_name(unsigned ext)
{
    for (size_t i = 0; i < sizeof(smtp_ext_names) / sizeof(smtp_ext_names[0]); i++) {
        if (ext == 1u << i) {
            return smtp_ext_names[i];
        }
    }
    return NULL;
}

/* ---- (a) formatting ---- */

/* Length of s cut to at most max octets, never inside a UTF-8 sequence. */
static size_t
smtp_reply_cut(struct strv s, size_t max)
{
    size_t n;

    if (s.len <= max) {
        return s.len;
    }
    n = max;
    while (n > 0 && ((unsigned char)s.ptr[n] & 0xc0) == 0x80) {
        n--;
    }
    return n;
}

/* Copies s to dst with control characters (but HT) made spaces. */
static void
smtp_reply_sanitise(char *dst, struct strv s)
{
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];

        dst[i] = (c < 0x20 && c != '\t') || c == 0x7f ? ' ' : (char)c;
    }
}

int
try_smtp_reply_format_line(struct buf *out, int code, const char *enh, struct strv text, bool last)
{
    struct strv e = enh ? strv_from_cstr(enh) : STRV_NULL;
    size_t room, n, total;
    char *dst;

    if (code < 100 || code > 999) {
        return CELER_EPARSE;
    }
    e = strv_sub(e, 0, 11);
    /* "NNN-" + enh + " " + text + CRLF */
    room = SMTP_REPLY_LINE_OUT_MAX - 4 - 2 - (e.len ? e.len + 1 : 0);
    n = smtp_reply_cut(text, room);
    total = 4 + (e.len ? e.len + 1 : 0) + n + 2;
    if (e.len == 0 && n == 0) {
        total = 3 + (last ? 0 : 1) + 2; /* "250\r\n" or "250-\r\n" */
    }
    dst = try_buf_reserve(out, total, NULL);
    if (dst == NULL) {
        return CELER_ELIMIT;
    }
    dst[0] = (char)('0' + code / 100);
    dst[1] = (char)('0' + code / 10 % 10);
    dst[2] = (char)('0' + code % 10);
    if (e.len == 0 && n == 0) {
        if (!last) {
            dst[3] = '-';
        }
        memcpy(dst + total - 2, "\r\n", 2);
        buf_commit(out, total);
        return 0;
    }
    dst[3] = last ? ' ' : '-';
    dst += 4;
    if (e.len) {
        smtp_reply_sanitise(dst, e);
        dst[e.len] = ' ';
        dst += e.len + 1;
    }
    smtp_reply_sanitise(dst, strv_sub(text, 0, n));
    memcpy(dst + n, "\r\n", 2);
    buf_commit(out, total);
    return 0;
}

int
try_smtp_reply_format(struct buf *out, const struct smtp_reply *r, bool enhanced)
{
    return try_smtp_reply_format_line(out, r->code, enhanced ? r->enh : NULL, r->text, true);
}

int
try_smtp_reply_format_lines(struct buf *out, int code, const char *enh, const struct strv *lines,
                            size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int err = try_smtp_reply_format_line(out, code, enh, lines[i], i + 1 == n);

        if (err != 0) {
            return err;
        }
    }
    return n ? 0 : CELER_EPARSE;
}

/* ---- (b) parsing ---- */

static bool
smtp_reply_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* 1 to 3 digits at s[*i]; advances *i. */
static bool
smtp_reply_digits13(struct strv s, size_t *i)
{
    size_t start = *i;

    while (*i < s.len && *i - start < 3 && smtp_reply_is_digit(s.ptr[*i])) {
        (*i)++;
    }
    return *i > start;
}

size_t
smtp_reply_enh_parse(struct strv text, char class_digit, char enh[12])
{
    size_t i = 2;

    enh[0] = '\0';
    if (text.len < 5 || text.ptr[0] != class_digit || text.ptr[1] != '.') {
        return 0;
    }
    if (!smtp_reply_digits13(text, &i) || i >= text.len || text.ptr[i] != '.') {
        return 0;
    }
    i++;
    if (!smtp_reply_digits13(text, &i)) {
        return 0;
    }
    if (i < text.len && text.ptr[i] != ' ') {
        return 0;
    }
    memcpy(enh, text.ptr, i);
    enh[i] = '\0';
    return i;
}

/* The 3-digit code at the start of line, or -1. */
static int
smtp_reply_code(struct strv line)
{
    if (line.len < 3 || line.ptr[0] < '2' || line.ptr[0] > '5' ||
        !smtp_reply_is_digit(line.ptr[1]) || !smtp_reply_is_digit(line.ptr[2])) {
        return -1;
    }
    return (line.ptr[0] - '0') * 100 + (line.ptr[1] - '0') * 10 + (line.ptr[2] - '0');
}

int
smtp_reply_parse(struct strv in, struct smtp_reply_in *r)
{
    size_t pos = 0;
    bool last = false;

    r->code = 0;
    r->enh[0] = '\0';
    r->nlines = 0;
    r->consumed = 0;
    while (!last) {
        struct strv rest = strv_from(in, pos);
        ptrdiff_t lf = strv_chr(rest, '\n');
        struct strv line;
        int code;

        if (lf < 0) {
            /* room for the line and its CR */
            return rest.len > SMTP_REPLY_LINE_IN_MAX + 1 ? CELER_EPROTO : -EAGAIN;
        }
        line = strv_sub(rest, 0, (size_t)lf);
        if (line.len > 0 && line.ptr[line.len - 1] == '\r') {
            line.len--;
        }
        code = smtp_reply_code(line);
        if (line.len > SMTP_REPLY_LINE_IN_MAX || code < 0 || r->nlines == SMTP_REPLY_LINES_MAX) {
            return CELER_EPROTO;
        }
        if (r->nlines > 0 && code != r->code) {
            return CELER_EPROTO;
        }
        if (line.len > 3 && line.ptr[3] != ' ' && line.ptr[3] != '-') {
            return CELER_EPROTO;
        }
        r->code = code;
        last = line.len == 3 || line.ptr[3] == ' ';
        r->lines[r->nlines++] = strv_from(line, 4);
        pos += (size_t)lf + 1;
    }
    r->consumed = pos;
    (void)smtp_reply_enh_parse(r->lines[0], (char)('0' + r->code / 100), r->enh);
    return 0;
}

/* ---- (c) EHLO ---- */

struct smtp_reply_name {
    const char *name;
    unsigned bit;
};

static const struct smtp_reply_name smtp_auth_names[] = {
    {"PLAIN", SMTP_AUTH_PLAIN},
    {"LOGIN", SMTP_AUTH_LOGIN},
    {"CRAM-MD5", SMTP_AUTH_CRAM_MD5},
    {"DIGEST-MD5", SMTP_AUTH_DIGEST_MD5},
    {"XOAUTH2", SMTP_AUTH_XOAUTH2},
    {"SCRAM-SHA-1", SMTP_AUTH_SCRAM_SHA_1},
    {"SCRAM-SHA-256", SMTP_AUTH_SCRAM_SHA_256},
    {"EXTERNAL", SMTP_AUTH_EXTERNAL},
};

static const struct smtp_reply_name smtp_xclient_names[] = {
    {"NAME", SMTP_XCLIENT_NAME},         {"ADDR", SMTP_XCLIENT_ADDR},
    {"PORT", SMTP_XCLIENT_PORT},         {"PROTO", SMTP_XCLIENT_PROTO},
    {"HELO", SMTP_XCLIENT_HELO},         {"LOGIN", SMTP_XCLIENT_LOGIN},
    {"DESTADDR", SMTP_XCLIENT_DESTADDR}, {"DESTPORT", SMTP_XCLIENT_DESTPORT},
};

static unsigned
smtp_reply_name_bit(const struct smtp_reply_name *t, size_t n, struct strv name)
{
    for (size_t i = 0; i < n; i++) {
        if (strv_eq_cstr_ci(name, t[i].name)) {
            return t[i].bit;
        }
    }
    return 0;
}

unsigned
smtp_auth_mech_bit(struct strv name)
{
    return smtp_reply_name_bit(smtp_auth_names,
                               sizeof(smtp_auth_names) / sizeof(smtp_auth_names[0]), name);
}

unsigned
smtp_xclient_attr_bit(struct strv name)
{
    return smtp_reply_name_bit(smtp_xclient_names,
                               sizeof(smtp_xclient_names) / sizeof(smtp_xclient_names[0]), name);
}

/* ORs the bits of each word of list; returns the trimmed list. */
static struct strv
smtp_ehlo_words(struct strv list, unsigned (*bit)(struct strv), unsigned *bits)
{
    struct strv rest = list;

    for (;;) {
        struct strv w = strv_next_word(&rest);

        if (w.len == 0) {
            break;
        }
        *bits |= bit(w);
    }
    return strv_trim(list);
}

static void
smtp_ehlo_keyword(struct smtp_ehlo *caps, struct strv line)
{
    struct strv rest = line;
    struct strv kw = strv_next_word(&rest);
    ptrdiff_t eq = strv_chr(kw, '=');
    unsigned ext;

    if (eq >= 0) { /* "AUTH=LOGIN PLAIN" */
        if (!strv_eq_cstr_ci(strv_sub(kw, 0, (size_t)eq), "AUTH")) {
            return;
        }
        rest = strv_trim(strv_from(line, (size_t)(kw.ptr - line.ptr) + (size_t)eq + 1));
        kw = STRV_LIT("AUTH");
    }
    for (ext = 1; ext <= SMTP_EXT_XCLIENT; ext <<= 1) {
        if (strv_eq_cstr_ci(kw, smtp_ext_name(ext))) {
            break;
        }
    }
    if (ext > SMTP_EXT_XCLIENT) {
        return;
    }
    caps->ext |= ext;
    if (ext == SMTP_EXT_SIZE) {
        struct strv v = strv_next_word(&rest);

        if (strv_to_u64(v, UINT64_MAX, &caps->size_max) != 0) {
            caps->size_max = 0;
        }
    } else if (ext == SMTP_EXT_AUTH) {
        struct strv list = smtp_ehlo_words(rest, smtp_auth_mech_bit, &caps->auth_mechs);

        if (caps->auth.len == 0 || eq < 0) {
            caps->auth = list;
        }
    } else if (ext == SMTP_EXT_XCLIENT) {
        caps->xclient = smtp_ehlo_words(rest, smtp_xclient_attr_bit, &caps->xclient_attrs);
    }
}

int
smtp_ehlo_parse(const struct smtp_reply_in *r, struct smtp_ehlo *caps)
{
    struct strv first;

    *caps = (struct smtp_ehlo){0};
    if (r->code != 250 || r->nlines == 0) {
        return CELER_EPROTO;
    }
    first = r->lines[0];
    caps->server_name = strv_next_word(&first);
    for (size_t i = 1; i < r->nlines; i++) {
        smtp_ehlo_keyword(caps, r->lines[i]);
    }
    return 0;
}

int
try_smtp_ehlo_format(struct buf *out, struct strv first, const struct smtp_ehlo *caps)
{
    struct strv lines[1 + 11];
    char size_line[32], auth_line[SMTP_REPLY_LINE_OUT_MAX], xclient_line[SMTP_REPLY_LINE_OUT_MAX];
    size_t n = 0;

    lines[n++] = first;
    for (unsigned ext = 1; ext <= SMTP_EXT_XCLIENT; ext <<= 1) {
        const char *name = smtp_ext_name(ext);
        int len;

        if (!(caps->ext & ext)) {
            continue;
        }
        if (ext == SMTP_EXT_SIZE && caps->size_max) {
            len = snprintf(size_line, sizeof(size_line), "SIZE %llu",
                           (unsigned long long)caps->size_max);
            lines[n++] = strv_make(size_line, (size_t)len);
        } else if (ext == SMTP_EXT_AUTH) {
            if (caps->auth.len == 0) {
                continue;
            }
            len = snprintf(auth_line, sizeof(auth_line), "AUTH %.*s", STRV_FMT(caps->auth));
            lines[n++] = strv_make(auth_line, strnlen(auth_line, sizeof(auth_line)));
            (void)len; /* truncated by snprintf; the line limit applies anyway */
        } else if (ext == SMTP_EXT_XCLIENT) {
            if (caps->xclient.len == 0) {
                continue;
            }
            len = snprintf(xclient_line, sizeof(xclient_line), "XCLIENT %.*s",
                           STRV_FMT(caps->xclient));
            lines[n++] = strv_make(xclient_line, strnlen(xclient_line, sizeof(xclient_line)));
            (void)len; /* as above */
        } else {
            lines[n++] = strv_from_cstr(name);
        }
    }
    return try_smtp_reply_format_lines(out, 250, NULL, lines, n);
}
