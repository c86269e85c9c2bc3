/*
 * smtp_addr: RFC 5321/6531 envelope paths (see smtp_addr.h).
 *
 * The parsers walk the input with an index and stop at the first octet
 * that cannot continue the grammar; the caller of each step decides what
 * may follow (">" inside brackets, " " after an unbracketed path).
 */
#include "smtp/smtp_addr.h"

#include <arpa/inet.h>
#include <string.h>

#include "smtp/smtp_xtext.h"

static const char *const smtp_addr_error_names[] = {
    [SMTP_ADDR_OK] = "ok",
    [SMTP_ADDR_ESYNTAX] = "bad address syntax",
    [SMTP_ADDR_ELOCAL_LONG] = "local part too long",
    [SMTP_ADDR_EDOMAIN_LONG] = "domain too long",
    [SMTP_ADDR_EPATH_LONG] = "path too long",
    [SMTP_ADDR_ENONASCII] = "non-ASCII address without SMTPUTF8",
    [SMTP_ADDR_EUTF8] = "invalid UTF-8 in address",
    [SMTP_ADDR_ELITERAL] = "address literals not accepted",
    [SMTP_ADDR_EBADLITERAL] = "bad address literal",
    [SMTP_ADDR_EUNQUALIFIED] = "address without domain",
};

const char *
smtp_addr_error_str(enum smtp_addr_error why)
{
    if ((unsigned)why >= sizeof(smtp_addr_error_names) / sizeof(smtp_addr_error_names[0])) {
        return "unknown address error";
    }
    return smtp_addr_error_names[why];
}

static bool
smtp_addr_is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* atext of RFC 5322 3.2.3 as used by RFC 5321's Atom. */
static bool
smtp_addr_is_atext(unsigned char c)
{
    return smtp_addr_is_alnum(c) || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* Length of the UTF-8 sequence at s[i], 0 if invalid; sets needs_smtputf8. */
static size_t
smtp_addr_utf8_at(struct strv s, size_t i, struct smtp_addr *a)
{
    size_t n = smtp_xtext_utf8_next(strv_from(s, i), NULL);

    if (n) {
        a->needs_smtputf8 = true;
    }
    return n;
}

static enum smtp_addr_error
smtp_addr_quoted(struct strv s, size_t *i, struct smtp_addr *a)
{
    (*i)++; /* opening DQUOTE */
    for (;;) {
        unsigned char c;

        if (*i >= s.len) {
            return SMTP_ADDR_ESYNTAX;
        }
        c = (unsigned char)s.ptr[*i];
        if (c == '"') {
            (*i)++;
            a->is_quoted = true;
            return SMTP_ADDR_OK;
        }
        if (c == '\\') { /* quoted-pairSMTP: "\" %d32-126 */
            unsigned char q = *i + 1 < s.len ? (unsigned char)s.ptr[*i + 1] : 0;

            if (q < 32 || q > 126) {
                return SMTP_ADDR_ESYNTAX;
            }
            *i += 2;
        } else if (c >= 0x80) {
            size_t n = smtp_addr_utf8_at(s, *i, a);

            if (n == 0) {
                return SMTP_ADDR_EUTF8;
            }
            *i += n;
        } else if (c < 32 || c == 127) {
            return SMTP_ADDR_ESYNTAX;
        } else {
            (*i)++;
        }
    }
}

/* Dot-string; pedantic forbids empty atoms except a leading one (always). */
static enum smtp_addr_error
smtp_addr_dot_string(struct strv s, size_t *i, bool pedantic, struct smtp_addr *a)
{
    size_t start = *i;
    bool prev_dot = true;

    while (*i < s.len) {
        unsigned char c = (unsigned char)s.ptr[*i];

        if (c == '.') {
            if (*i == start || (prev_dot && pedantic)) {
                return SMTP_ADDR_ESYNTAX;
            }
            prev_dot = true;
            (*i)++;
        } else if (smtp_addr_is_atext(c)) {
            prev_dot = false;
            (*i)++;
        } else if (c >= 0x80) {
            size_t n = smtp_addr_utf8_at(s, *i, a);

            if (n == 0) {
                return SMTP_ADDR_EUTF8;
            }
            prev_dot = false;
            *i += n;
        } else {
            break;
        }
    }
    if (*i == start || (prev_dot && pedantic)) {
        return SMTP_ADDR_ESYNTAX;
    }
    return SMTP_ADDR_OK;
}

static enum smtp_addr_error
smtp_addr_local(struct strv s, size_t *i, const struct smtp_addr_opts *o, struct smtp_addr *a)
{
    size_t start = *i;
    enum smtp_addr_error e;

    if (*i < s.len && s.ptr[*i] == '"') {
        e = smtp_addr_quoted(s, i, a);
    } else {
        e = smtp_addr_dot_string(s, i, o->pedantic, a);
    }
    if (e != SMTP_ADDR_OK) {
        return e;
    }
    a->local = strv_sub(s, start, *i - start);
    return a->local.len > SMTP_ADDR_LOCAL_MAX ? SMTP_ADDR_ELOCAL_LONG : SMTP_ADDR_OK;
}

/* "[1.2.3.4]" or "[IPv6:...]" at s[*i]. */
static enum smtp_addr_error
smtp_addr_literal(struct strv s, size_t *i, const struct smtp_addr_opts *o, struct smtp_addr *a)
{
    size_t start = *i + 1, end = start;
    struct strv lit;
    char tmp[INET6_ADDRSTRLEN + 8];
    int af = AF_INET;
    unsigned char bin[16];

    while (end < s.len && s.ptr[end] != ']') {
        unsigned char c = (unsigned char)s.ptr[end];

        if (c < 33 || c > 126 || c == '[' || c == '\\') { /* dcontent */
            return SMTP_ADDR_ESYNTAX;
        }
        end++;
    }
    if (end >= s.len) {
        return SMTP_ADDR_ESYNTAX;
    }
    lit = strv_sub(s, start, end - start);
    if (strv_has_prefix_ci(lit, STRV_LIT("IPv6:"))) {
        af = AF_INET6;
        lit = strv_from(lit, 5);
    }
    if (lit.len == 0 || lit.len >= sizeof(tmp)) {
        return SMTP_ADDR_EBADLITERAL;
    }
    memcpy(tmp, lit.ptr, lit.len);
    tmp[lit.len] = '\0';
    if (inet_pton(af, tmp, bin) != 1) {
        return SMTP_ADDR_EBADLITERAL; /* also general-address-literals */
    }
    *i = end + 1;
    a->is_ip_literal = true;
    return SMTP_ADDR_OK;
}

/* One sub-domain: Let-dig [Ldh-str], UTF-8 allowed as letters. */
static enum smtp_addr_error
smtp_addr_label(struct strv s, size_t *i, struct smtp_addr *a)
{
    size_t start = *i;
    bool ascii = true;

    while (*i < s.len) {
        unsigned char c = (unsigned char)s.ptr[*i];

        if (smtp_addr_is_alnum(c) || (c == '-' && *i > start)) {
            (*i)++;
        } else if (c >= 0x80) {
            size_t n = smtp_addr_utf8_at(s, *i, a);

            if (n == 0) {
                return SMTP_ADDR_EUTF8;
            }
            ascii = false;
            *i += n;
        } else {
            break;
        }
    }
    if (*i == start || s.ptr[*i - 1] == '-') {
        return SMTP_ADDR_ESYNTAX;
    }
    if (ascii && *i - start > SMTP_ADDR_LABEL_MAX) {
        return SMTP_ADDR_EDOMAIN_LONG;
    }
    return SMTP_ADDR_OK;
}

static enum smtp_addr_error
smtp_addr_domain(struct strv s, size_t *i, const struct smtp_addr_opts *o, struct smtp_addr *a)
{
    size_t start = *i;
    enum smtp_addr_error e;

    if (*i < s.len && s.ptr[*i] == '[') {
        e = smtp_addr_literal(s, i, o, a);
        a->domain = strv_sub(s, start, *i - start);
        return e;
    }
    for (;;) {
        e = smtp_addr_label(s, i, a);
        if (e != SMTP_ADDR_OK) {
            return e;
        }
        if (*i >= s.len || s.ptr[*i] != '.') {
            break;
        }
        (*i)++; /* a trailing dot fails in the next label */
    }
    a->domain = strv_sub(s, start, *i - start);
    return a->domain.len > SMTP_ADDR_DOMAIN_MAX ? SMTP_ADDR_EDOMAIN_LONG : SMTP_ADDR_OK;
}

/* Mailbox at s[*i]: Local-part ["@" domain]. */
static enum smtp_addr_error
smtp_addr_mailbox_at(struct strv s, size_t *i, const struct smtp_addr_opts *o, struct smtp_addr *a)
{
    enum smtp_addr_error e = smtp_addr_local(s, i, o, a);

    if (e != SMTP_ADDR_OK) {
        return e;
    }
    if (*i < s.len && s.ptr[*i] == '@') {
        (*i)++;
        e = smtp_addr_domain(s, i, o, a);
        if (e != SMTP_ADDR_OK) {
            return e;
        }
    } else {
        a->is_unqualified = true;
    }
    return SMTP_ADDR_OK;
}

/* The options' verdict on a syntactically valid address. */
static enum smtp_addr_error
smtp_addr_allowed(const struct smtp_addr *a, const struct smtp_addr_opts *o)
{
    if (a->needs_smtputf8 && !o->utf8) {
        return SMTP_ADDR_ENONASCII;
    }
    if (a->is_ip_literal && !o->ip_literal) {
        return SMTP_ADDR_ELITERAL;
    }
    if (a->is_unqualified && !o->unqualified &&
        !(o->postmaster && strv_eq_cstr_ci(a->local, "postmaster"))) {
        return SMTP_ADDR_EUNQUALIFIED;
    }
    return SMTP_ADDR_OK;
}

/* A-d-l ":" at s[*i] (which is '@'): "@a,@b:". */
static enum smtp_addr_error
smtp_addr_route(struct strv s, size_t *i, const struct smtp_addr_opts *o, struct smtp_addr *a)
{
    size_t start = *i;

    for (;;) { /* the route is ignored: its form alone matters */
        struct smtp_addr scratch = {0};
        enum smtp_addr_error e;

        if (*i >= s.len || s.ptr[*i] != '@') {
            return SMTP_ADDR_ESYNTAX;
        }
        (*i)++;
        e = smtp_addr_domain(s, i, o, &scratch);
        if (e != SMTP_ADDR_OK) {
            return e == SMTP_ADDR_EUTF8 ? e : SMTP_ADDR_ESYNTAX;
        }
        a->needs_smtputf8 |= scratch.needs_smtputf8;
        if (*i < s.len && s.ptr[*i] == ',') {
            (*i)++;
            continue;
        }
        if (*i < s.len && s.ptr[*i] == ':') {
            a->route = strv_sub(s, start, *i - start);
            (*i)++;
            return SMTP_ADDR_OK;
        }
        return SMTP_ADDR_ESYNTAX;
    }
}

static void
smtp_addr_skip_spaces(struct strv s, size_t *i, const struct smtp_addr_opts *o)
{
    while (o->space_in_brackets && *i < s.len && (s.ptr[*i] == ' ' || s.ptr[*i] == '\t')) {
        (*i)++;
    }
}

/* "<" [ A-d-l ":" ] Mailbox ">" or "<>" at the start of s. */
static enum smtp_addr_error
smtp_addr_bracketed(struct strv s, size_t *i, const struct smtp_addr_opts *o, struct smtp_addr *a)
{
    enum smtp_addr_error e;

    *i = 1;
    smtp_addr_skip_spaces(s, i, o);
    if (*i < s.len && s.ptr[*i] == '>') {
        (*i)++;
        a->is_null = true;
        return SMTP_ADDR_OK;
    }
    if (*i < s.len && s.ptr[*i] == '@') {
        e = smtp_addr_route(s, i, o, a);
        if (e != SMTP_ADDR_OK) {
            return e;
        }
    }
    e = smtp_addr_mailbox_at(s, i, o, a);
    if (e != SMTP_ADDR_OK) {
        return e;
    }
    smtp_addr_skip_spaces(s, i, o);
    if (*i >= s.len || s.ptr[*i] != '>') {
        return SMTP_ADDR_ESYNTAX;
    }
    (*i)++;
    return SMTP_ADDR_OK;
}

static int
smtp_addr_result(enum smtp_addr_error e, enum smtp_addr_error *why)
{
    *why = e;
    switch (e) {
    case SMTP_ADDR_OK:
        return 0;
    case SMTP_ADDR_ELOCAL_LONG:
    case SMTP_ADDR_EDOMAIN_LONG:
    case SMTP_ADDR_EPATH_LONG:
        return CELER_ELIMIT;
    default:
        return CELER_EPARSE;
    }
}

int
smtp_addr_parse_path(struct strv *in, const struct smtp_addr_opts *o, struct smtp_addr *a,
                     enum smtp_addr_error *why)
{
    struct strv s = *in;
    size_t i = 0;
    enum smtp_addr_error e;

    *a = (struct smtp_addr){0};
    if (s.len > 0 && s.ptr[0] == '<') {
        e = smtp_addr_bracketed(s, &i, o, a);
    } else if (o->no_brackets && s.len > 0) {
        e = smtp_addr_mailbox_at(s, &i, o, a);
        if (e == SMTP_ADDR_OK && i < s.len && s.ptr[i] != ' ') {
            e = SMTP_ADDR_ESYNTAX;
        }
    } else {
        e = SMTP_ADDR_ESYNTAX;
    }
    if (e == SMTP_ADDR_OK && i > SMTP_ADDR_PATH_MAX) {
        e = SMTP_ADDR_EPATH_LONG;
    }
    if (e == SMTP_ADDR_OK && !a->is_null) {
        e = smtp_addr_allowed(a, o);
    }
    if (e == SMTP_ADDR_OK) {
        *in = strv_from(s, i);
    }
    return smtp_addr_result(e, why);
}

int
smtp_addr_parse_mailbox(struct strv s, const struct smtp_addr_opts *o, struct smtp_addr *a,
                        enum smtp_addr_error *why)
{
    size_t i = 0;
    enum smtp_addr_error e;

    *a = (struct smtp_addr){0};
    e = smtp_addr_mailbox_at(s, &i, o, a);
    if (e == SMTP_ADDR_OK && i != s.len) {
        e = SMTP_ADDR_ESYNTAX;
    }
    if (e == SMTP_ADDR_OK) {
        e = smtp_addr_allowed(a, o);
    }
    return smtp_addr_result(e, why);
}

/*
 * Unquotes quoted-string q (quotes included) into dst[SMTP_ADDR_LOCAL_MAX];
 * returns the content length.
 */
static size_t
smtp_addr_unquote(struct strv q, char *dst)
{
    size_t n = 0;

    for (size_t i = 1; i + 1 < q.len && n < SMTP_ADDR_LOCAL_MAX; i++) {
        if (q.ptr[i] == '\\') {
            i++;
        }
        dst[n++] = q.ptr[i];
    }
    return n;
}

static int
smtp_addr_render_local(const struct smtp_addr *a, struct buf *out)
{
    char content[SMTP_ADDR_LOCAL_MAX];
    struct smtp_addr scratch = {0};
    struct strv c;
    size_t i = 0;
    int err = 0;

    if (!a->is_quoted) {
        return try_buf_append(out, a->local.ptr, a->local.len);
    }
    c = strv_make(content, smtp_addr_unquote(a->local, content));
    if (smtp_addr_dot_string(c, &i, true, &scratch) == SMTP_ADDR_OK && i == c.len) {
        return try_buf_append(out, c.ptr, c.len); /* "abc"@x is abc@x */
    }
    err |= try_buf_append(out, "\"", 1);
    for (size_t k = 0; k < c.len && err == 0; k++) {
        if (c.ptr[k] == '"' || c.ptr[k] == '\\') {
            err |= try_buf_append(out, "\\", 1);
        }
        err |= try_buf_append(out, c.ptr + k, 1);
    }
    err |= try_buf_append(out, "\"", 1);
    return err ? CELER_ELIMIT : 0;
}

int
try_smtp_addr_render(const struct smtp_addr *a, struct strv default_domain, struct buf *out)
{
    struct strv d = a->is_unqualified ? default_domain : a->domain;
    char *dst;

    if (a->is_null) {
        return 0;
    }
    if (smtp_addr_render_local(a, out) != 0) {
        return CELER_ELIMIT;
    }
    if (d.len == 0) {
        return 0;
    }
    dst = try_buf_reserve(out, d.len + 1, NULL);
    if (dst == NULL) {
        return CELER_ELIMIT;
    }
    dst[0] = '@';
    for (size_t i = 0; i < d.len; i++) {
        dst[i + 1] = a->is_ip_literal ? d.ptr[i] : strv_lower_char(d.ptr[i]);
    }
    buf_commit(out, d.len + 1);
    return 0;
}
