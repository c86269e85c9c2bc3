/*
 * mime7bit: 8-bit to 7-bit MIME downconversion (see mime7bit.h).
 *
 * One recursive walk (m7_entity) over views of the input: every entity
 * (the message, a body part, an encapsulated message) has its header
 * section scanned for the three fields that matter, then is copied as it
 * is, recursed into, or re-encoded. Output goes through a small staging
 * area in struct m7; the first failure (out's ceiling) is kept in m->err
 * and turns every later write into a no-op. Recursion is bounded by
 * MIME7BIT_DEPTH_MAX; every loop advances by at least one line or octet.
 * Static functions carry the prefix m7_.
 */
#include "msg/mime7bit.h"

#include <stdint.h>
#include <string.h>

#include "core/base64.h"

#define M7_STAGE     8192 /* staged output octets */
#define M7_QP_COLS   76   /* RFC 2045 6.7 (5): encoded line length, soft break included */
#define M7_B64_CHUNK 57   /* input octets per 76-column base64 line */

enum m7_ctx {
    M7_CTX_MESSAGE,     /* the top message or an encapsulated one: MIME-Version applies */
    M7_CTX_PART,        /* a body part: text/plain by default */
    M7_CTX_DIGEST_PART, /* a part of multipart/digest: message/rfc822 by default */
};

enum m7_kind {
    M7_TEXT,
    M7_MULTIPART,
    M7_RFC822,
    M7_OTHER,
};

enum m7_cte {
    M7_CTE_NONE, /* no field: 7bit */
    M7_CTE_7BIT,
    M7_CTE_8BIT,
    M7_CTE_BINARY,
    M7_CTE_QP,
    M7_CTE_BASE64,
    M7_CTE_OTHER, /* unknown: treated as an identity encoding */
};

struct m7 {
    struct strv in;              /* the whole input (borrowed) */
    struct buf *out;             /* borrowed */
    struct mime7bit_result *res; /* borrowed */
    struct strv eol;             /* line end of added lines: "\r\n" or "\n" */
    int err;                     /* first failure */
    unsigned long hdr8;          /* header sections (and boundaries) left with 8-bit octets */
    size_t nstage;
    char stage[M7_STAGE];
};

/* One line of a region: content [start, end), line end [end, next). */
struct m7_line {
    size_t start;
    size_t end;  /* before CR LF or LF */
    size_t next; /* after the line end; == end when the region ends first */
};

struct m7_entity {
    struct strv all; /* header section, separator and body (borrowed from the input) */
    size_t hdr_end;  /* end of the header fields */
    size_t body_off; /* start of the body */
    bool has_sep;    /* an empty line ends the header fields */
    bool has_ctype;
    bool has_mimever;
    bool digest; /* multipart/digest */
    enum m7_kind kind;
    enum m7_cte cte;
    size_t blen; /* boundary length; 0: none usable */
    char boundary[MIME7BIT_BOUNDARY_MAX];
};

struct m7_field {
    size_t start, end; /* all[start, end): the field, folds and line end included */
    struct strv name;  /* before the colon, blanks trimmed */
    struct strv value; /* after the colon to the end of its last line (folds included) */
};

/* A delimiter line of a multipart body. */
struct m7_delim {
    size_t pre;   /* the line end before it (part of the delimiter), or start */
    size_t start; /* its "--" */
    size_t tail;  /* after "--boundary" (and "--" when closing) */
    size_t end;   /* after its line end */
    bool close;
};

struct m7_hdr_edit {
    const char *cte;  /* new Content-Transfer-Encoding value; NULL: keep the fields */
    bool add_ctype;   /* append Content-Type: text/plain; charset=unknown-8bit */
    bool add_mimever; /* append MIME-Version: 1.0 */
};

static void m7_entity(struct m7 *m, struct strv all, unsigned depth, enum m7_ctx ctx);

/* ---- octets and lines ---- */

/* Index of the first octet above 127 in p[0, len), or len. */
static size_t
m7_find_8bit(const char *p, size_t len)
{
    size_t i = 0;

    for (; i + 8 <= len; i += 8) {
        uint64_t w;

        memcpy(&w, p + i, 8);
        if (w & 0x8080808080808080ull) {
            break;
        }
    }
    for (; i < len; i++) {
        if ((unsigned char)p[i] & 0x80) {
            return i;
        }
    }
    return len;
}

static bool
m7_has_8bit(struct strv s)
{
    return m7_find_8bit(s.ptr, s.len) < s.len;
}

/* The line of r starting at pos (< r.len). */
static void
m7_line_at(struct strv r, size_t pos, struct m7_line *l)
{
    const char *lf = memchr(r.ptr + pos, '\n', r.len - pos);

    l->start = pos;
    if (lf == NULL) {
        l->end = l->next = r.len;
        return;
    }
    l->next = (size_t)(lf - r.ptr) + 1;
    l->end = l->next - 1;
    if (l->end > pos && r.ptr[l->end - 1] == '\r') {
        l->end--;
    }
}

static bool
m7_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* ---- output ---- */

static void
m7_flush(struct m7 *m)
{
    if (m->nstage && m->err == 0) {
        m->err = try_buf_append(m->out, m->stage, m->nstage);
    }
    m->nstage = 0;
}

static void
m7_put(struct m7 *m, const char *p, size_t len)
{
    if (m->err || len == 0) {
        return;
    }
    if (len > M7_STAGE - m->nstage) {
        m7_flush(m);
        if (len >= M7_STAGE) {
            if (m->err == 0) {
                m->err = try_buf_append(m->out, p, len);
            }
            return;
        }
    }
    memcpy(m->stage + m->nstage, p, len);
    m->nstage += len;
}

static void
m7_putc(struct m7 *m, char c)
{
    m7_put(m, &c, 1);
}

static void
m7_put_strv(struct m7 *m, struct strv s)
{
    m7_put(m, s.ptr, s.len);
}

static void
m7_put_eol(struct m7 *m)
{
    m7_put_strv(m, m->eol);
}

/* Where the next octet goes, counted from the start of out's data. */
static size_t
m7_offset(const struct m7 *m)
{
    return buf_len(m->out) + m->nstage;
}

/* Copies s with every 8-bit octet replaced by repl, or dropped when repl is 0. */
static void
m7_put_7bit(struct m7 *m, struct strv s, char repl)
{
    size_t i = 0;

    while (i < s.len && m->err == 0) {
        size_t n = m7_find_8bit(s.ptr + i, s.len - i);

        m7_put(m, s.ptr + i, n);
        i += n;
        if (i < s.len) {
            if (repl) {
                m7_putc(m, repl);
            }
            i++;
        }
    }
}

/* ---- header fields ---- */

/* "name:" (blanks allowed before the colon, RFC 5322 4.5). */
static bool
m7_is_field(const char *p, size_t len)
{
    size_t i = 0;

    while (i < len && (unsigned char)p[i] > 32 && (unsigned char)p[i] < 127 && p[i] != ':') {
        i++;
    }
    if (i == 0) {
        return false;
    }
    while (i < len && m7_blank(p[i])) {
        i++;
    }
    return i < len && p[i] == ':';
}

/* The field at *pos of e's header section; false at its end. */
static bool
m7_field_next(const struct m7_entity *e, size_t *pos, struct m7_field *f)
{
    struct strv h = strv_make(e->all.ptr, e->hdr_end);
    struct m7_line l;
    const char *colon;
    size_t nlen;

    if (*pos >= h.len) {
        return false;
    }
    m7_line_at(h, *pos, &l);
    colon = memchr(h.ptr + l.start, ':', l.end - l.start); /* m7_is_field() said there is one */
    nlen = colon ? (size_t)(colon - (h.ptr + l.start)) : 0;
    while (nlen > 0 && m7_blank(h.ptr[l.start + nlen - 1])) {
        nlen--;
    }
    f->start = l.start;
    f->name = strv_make(h.ptr + l.start, nlen);
    while (l.next < h.len && m7_blank(h.ptr[l.next])) {
        m7_line_at(h, l.next, &l);
    }
    f->end = l.next;
    f->value = colon ? strv_make(colon + 1, (size_t)(h.ptr + l.end - (colon + 1))) : STRV_NULL;
    *pos = l.next;
    return true;
}

/* Skips blanks, line ends and (nested) comments. */
static void
m7_skip_cfws(struct strv v, size_t *i)
{
    size_t depth = 0;

    while (*i < v.len) {
        char c = v.ptr[*i];

        if (depth) {
            if (c == '\\') {
                (*i)++;
            } else if (c == '(') {
                depth++;
            } else if (c == ')') {
                depth--;
            }
        } else if (c == '(') {
            depth = 1;
        } else if (!m7_blank(c) && c != '\r' && c != '\n') {
            return;
        }
        (*i)++;
    }
    *i = v.len;
}

/* An RFC 2045 token at *i. */
static struct strv
m7_token(struct strv v, size_t *i)
{
    size_t from = *i;

    while (*i < v.len) {
        unsigned char c = (unsigned char)v.ptr[*i];

        if (c <= 32 || c >= 127 || strchr("()<>@,;:\\\"/[]?=", c) != NULL) {
            break;
        }
        (*i)++;
    }
    return strv_make(v.ptr + from, *i - from);
}

/*
 * A parameter value at *i: a quoted string (unquoted, unfolded) or,
 * leniently, anything up to ";" or a blank. Copies up to cap octets to dst
 * and returns its length (more than cap: cut), or 0 for an unterminated
 * quoted string.
 */
static size_t
m7_param_value(struct strv v, size_t *i, char *dst, size_t cap)
{
    size_t n = 0;

    if (*i < v.len && v.ptr[*i] == '"') {
        for ((*i)++; *i < v.len; (*i)++) {
            char c = v.ptr[*i];

            if (c == '"') {
                (*i)++;
                return n;
            }
            if (c == '\\' && *i + 1 < v.len) {
                c = v.ptr[++(*i)];
            } else if (c == '\r' || c == '\n') {
                continue; /* folded */
            }
            if (n < cap) {
                dst[n] = c;
            }
            n++;
        }
        return 0;
    }
    while (*i < v.len && !m7_blank(v.ptr[*i]) && v.ptr[*i] != ';' && v.ptr[*i] != '\r' &&
           v.ptr[*i] != '\n' && v.ptr[*i] != '"') {
        if (n < cap) {
            dst[n] = v.ptr[*i];
        }
        n++;
        (*i)++;
    }
    return n;
}

/* Reads a Content-Type value into e (kind, boundary); false if it is not type/subtype. */
static bool
m7_ctype_parse(struct strv v, struct m7_entity *e)
{
    struct strv type, sub;
    bool boundary_seen = false;
    size_t i = 0;

    m7_skip_cfws(v, &i);
    type = m7_token(v, &i);
    m7_skip_cfws(v, &i);
    if (type.len == 0 || i >= v.len || v.ptr[i] != '/') {
        return false;
    }
    i++;
    m7_skip_cfws(v, &i);
    sub = m7_token(v, &i);
    if (sub.len == 0) {
        return false;
    }
    if (strv_eq_cstr_ci(type, "multipart")) {
        e->kind = M7_MULTIPART;
        e->digest = strv_eq_cstr_ci(sub, "digest");
    } else if (strv_eq_cstr_ci(type, "message") && strv_eq_cstr_ci(sub, "rfc822")) {
        e->kind = M7_RFC822;
    } else {
        e->kind = strv_eq_cstr_ci(type, "text") ? M7_TEXT : M7_OTHER;
    }
    for (;;) {
        struct strv name;

        m7_skip_cfws(v, &i);
        if (i >= v.len || v.ptr[i] != ';') {
            return true; /* the end, or junk after the parameters: ignored */
        }
        i++;
        m7_skip_cfws(v, &i);
        name = m7_token(v, &i);
        m7_skip_cfws(v, &i);
        if (name.len == 0 || i >= v.len || v.ptr[i] != '=') {
            continue;
        }
        i++;
        m7_skip_cfws(v, &i);
        if (strv_eq_cstr_ci(name, "boundary") && !boundary_seen) {
            boundary_seen = true;
            e->blen = m7_param_value(v, &i, e->boundary, sizeof(e->boundary));
            if (e->blen > sizeof(e->boundary)) {
                e->blen = 0; /* too long to be used */
            }
        } else {
            (void)m7_param_value(v, &i, NULL, 0);
        }
    }
}

static enum m7_cte
m7_cte_parse(struct strv v)
{
    static const struct {
        const char *name;
        enum m7_cte cte;
    } known[] = {
        {"7bit", M7_CTE_7BIT},           {"8bit", M7_CTE_8BIT},     {"binary", M7_CTE_BINARY},
        {"quoted-printable", M7_CTE_QP}, {"base64", M7_CTE_BASE64},
    };
    size_t i = 0;
    struct strv t;

    m7_skip_cfws(v, &i);
    t = m7_token(v, &i);
    if (t.len == 0) {
        return M7_CTE_NONE;
    }
    for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++) {
        if (strv_eq_cstr_ci(t, known[k].name)) {
            return known[k].cte;
        }
    }
    return M7_CTE_OTHER;
}

/* Where the header fields of all end: at an empty line, or at the first line that is no field. */
static void
m7_header_bounds(struct strv all, struct m7_entity *e)
{
    size_t pos = 0;
    struct m7_line l;

    while (pos < all.len) {
        m7_line_at(all, pos, &l);
        if (l.end == l.start) { /* an empty line (it has a line end: pos < all.len) */
            e->hdr_end = pos;
            e->body_off = l.next;
            e->has_sep = true;
            return;
        }
        if (m7_blank(all.ptr[pos]) ? pos == 0 : !m7_is_field(all.ptr + pos, l.end - pos)) {
            break;
        }
        pos = l.next;
    }
    e->hdr_end = e->body_off = pos;
}

/* Reads the header section of all into e; notes 8-bit octets in it. */
static void
m7_header_scan(struct m7 *m, struct strv all, enum m7_ctx ctx, struct m7_entity *e)
{
    struct m7_field f;
    struct strv ctype = STRV_NULL;
    bool has_cte = false;
    size_t pos = 0;

    memset(e, 0, sizeof(*e));
    e->all = all;
    m7_header_bounds(all, e);
    if (!e->has_sep && e->body_off < all.len) {
        m->res->malformed = true; /* a line that is no field ends the header section */
    }
    while (m7_field_next(e, &pos, &f)) {
        if (strv_eq_cstr_ci(f.name, "Content-Type")) {
            if (!e->has_ctype) {
                e->has_ctype = true;
                ctype = f.value;
            }
        } else if (strv_eq_cstr_ci(f.name, "Content-Transfer-Encoding")) {
            if (!has_cte) {
                has_cte = true;
                e->cte = m7_cte_parse(f.value);
            }
        } else if (strv_eq_cstr_ci(f.name, "MIME-Version")) {
            e->has_mimever = true;
        }
    }
    e->kind = ctx == M7_CTX_DIGEST_PART ? M7_RFC822 : M7_TEXT;
    if (e->has_ctype && !m7_ctype_parse(ctype, e)) {
        e->kind = M7_TEXT; /* RFC 2045 5.2 */
        e->blen = 0;
        m->res->malformed = true;
    }
    if (m7_find_8bit(all.ptr, e->hdr_end) < e->hdr_end) {
        m->res->header_8bit = true;
        m->hdr8++;
    }
}

/* "name: value" and a line end; returns the output offset of the value. */
static size_t
m7_put_field(struct m7 *m, const char *name, const char *value)
{
    size_t off;

    m7_put_strv(m, strv_from_cstr(name));
    m7_put(m, ": ", 2);
    off = m7_offset(m);
    m7_put_strv(m, strv_from_cstr(value));
    m7_put_eol(m);
    return off;
}

/*
 * Writes e's header section with the edits, then the empty line that ends
 * it (added if it had none). Returns the output offset of the new
 * Content-Transfer-Encoding value (0 without one).
 */
static size_t
m7_put_header(struct m7 *m, const struct m7_entity *e, const struct m7_hdr_edit *ed)
{
    struct m7_field f;
    size_t pos = 0, cte_off = 0;
    bool cte_done = false;
    bool append = ed->add_mimever || ed->add_ctype;

    while (m7_field_next(e, &pos, &f)) {
        if (ed->cte && strv_eq_cstr_ci(f.name, "Content-Transfer-Encoding")) {
            if (!cte_done) {
                cte_off = m7_put_field(m, "Content-Transfer-Encoding", ed->cte);
                cte_done = true;
            }
            continue; /* any later one goes */
        }
        m7_put(m, e->all.ptr + f.start, f.end - f.start);
    }
    append = append || (ed->cte && !cte_done);
    if (append && e->hdr_end > 0 && e->all.ptr[e->hdr_end - 1] != '\n') {
        m7_put_eol(m); /* the last field had no line end */
    }
    if (ed->add_mimever) {
        (void)m7_put_field(m, "MIME-Version", "1.0");
    }
    if (ed->add_ctype) {
        (void)m7_put_field(m, "Content-Type", "text/plain; charset=unknown-8bit");
    }
    if (ed->cte && !cte_done) {
        cte_off = m7_put_field(m, "Content-Transfer-Encoding", ed->cte);
    }
    if (e->has_sep) {
        m7_put(m, e->all.ptr + e->hdr_end, e->body_off - e->hdr_end);
    } else if (e->hdr_end > 0 || append) {
        m7_put_eol(m);
    }
    return cte_off;
}

/* ---- encoders ---- */

static void
m7_put_hex(struct m7 *m, unsigned char c)
{
    static const char hex[] = "0123456789ABCDEF";
    char q[3] = {'=', hex[c >> 4], hex[c & 15]};

    m7_put(m, q, 3);
}

static void
m7_put_soft_break(struct m7 *m)
{
    m7_putc(m, '=');
    m7_put_eol(m);
}

/*
 * One line's content (no line end) as quoted-printable, in lines of at
 * most M7_QP_COLS. soft_end: the line has no line end in the input, so it
 * ends with a soft break (which also lets a final blank stay literal).
 */
static void
m7_qp_line(struct m7 *m, const char *p, size_t len, bool soft_end)
{
    size_t col = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        bool last = i + 1 == len && !soft_end;
        bool lit = (c > 32 && c < 127 && c != '=') || ((c == ' ' || c == '\t') && !last);
        size_t w = lit ? 1 : 3;

        if (col + w > M7_QP_COLS - 1 && !(last && col + w <= M7_QP_COLS)) {
            m7_put_soft_break(m);
            col = 0;
        }
        if (col == 0 && i > 0 && c == '-') {
            lit = false; /* a continuation line never starts like a boundary */
            w = 3;
        }
        if (lit) {
            m7_putc(m, (char)c);
        } else {
            m7_put_hex(m, c);
        }
        col += w;
    }
    if (soft_end) {
        m7_put_soft_break(m);
    }
}

/* A text body as quoted-printable; at_end: it ends the input. */
static void
m7_qp_encode(struct m7 *m, struct strv body, bool at_end)
{
    size_t pos = 0;
    struct m7_line l;

    while (pos < body.len && m->err == 0) {
        m7_line_at(body, pos, &l);
        if (l.next > l.end) {
            m7_qp_line(m, body.ptr + pos, l.end - pos, false);
            m7_put_eol(m);
        } else {
            /* the last line: before a delimiter's line end, or at the end of the input */
            m7_qp_line(m, body.ptr + pos, l.end - pos, at_end);
        }
        pos = l.next;
    }
}

/* A body as base64 lines; at_end: it ends the input, so a line end follows. */
static void
m7_b64_encode(struct m7 *m, struct strv body, bool at_end)
{
    for (size_t i = 0; i < body.len && m->err == 0; i += M7_B64_CHUNK) {
        size_t n = body.len - i < M7_B64_CHUNK ? body.len - i : M7_B64_CHUNK;

        if (i > 0) {
            m7_put_eol(m);
        }
        m7_flush(m);
        if (m->err == 0) {
            m->err = try_base64_encode(strv_make(body.ptr + i, n), m->out);
        }
    }
    if (at_end && body.len) {
        m7_put_eol(m);
    }
}

static bool
m7_is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f');
}

/*
 * A quoted-printable body with raw 8-bit octets: lines that have some are
 * written again with those as =XX and soft breaks to keep them short;
 * escapes and everything else stay as they were.
 */
static void
m7_qp_repair(struct m7 *m, struct strv body)
{
    size_t pos = 0;
    struct m7_line l;

    while (pos < body.len && m->err == 0) {
        size_t col = 0;

        m7_line_at(body, pos, &l);
        if (m7_find_8bit(body.ptr + pos, l.end - pos) == l.end - pos) {
            m7_put(m, body.ptr + pos, l.next - pos);
            pos = l.next;
            continue;
        }
        for (size_t i = pos; i < l.end;) {
            unsigned char c = (unsigned char)body.ptr[i];
            bool esc = c == '=' && i + 2 < l.end && m7_is_hex(body.ptr[i + 1]) &&
                       m7_is_hex(body.ptr[i + 2]);
            size_t w = esc || c > 127 ? 3 : 1;

            if (col + w > M7_QP_COLS - 1) {
                m7_put_soft_break(m);
                col = 0;
            }
            if (c > 127) {
                m7_put_hex(m, c);
                i++;
            } else {
                m7_put(m, body.ptr + i, w);
                i += w;
            }
            col += w;
        }
        m7_put(m, body.ptr + l.end, l.next - l.end);
        pos = l.next;
    }
}

/* ---- entities ---- */

/* Re-encodes (or repairs) a leaf; fallback: a composite that could not be read as one. */
static void
m7_leaf(struct m7 *m, const struct m7_entity *e, enum m7_ctx ctx, bool fallback)
{
    struct strv body = strv_from(e->all, e->body_off);
    struct m7_hdr_edit ed = {0};
    bool at_end = body.ptr + body.len == m->in.ptr + m->in.len;
    bool qp = fallback || e->kind == M7_TEXT;

    m->res->converted++;
    if (e->cte == M7_CTE_QP || e->cte == M7_CTE_BASE64) {
        m7_put(m, e->all.ptr, e->body_off);
        if (e->cte == M7_CTE_QP) {
            m7_qp_repair(m, body);
        } else {
            m7_put_7bit(m, body, 0); /* decoders skip octets outside the alphabet */
        }
        return;
    }
    ed.cte = qp ? "quoted-printable" : "base64";
    ed.add_ctype = !fallback && e->kind == M7_TEXT && !e->has_ctype;
    ed.add_mimever = ctx == M7_CTX_MESSAGE && !e->has_mimever;
    (void)m7_put_header(m, e, &ed);
    if (qp) {
        m7_qp_encode(m, body, at_end);
    } else {
        m7_b64_encode(m, body, at_end);
    }
}

/* Whether the line l of r is a delimiter of e's boundary; fills d's line fields. */
static bool
m7_delim_line(struct strv r, const struct m7_entity *e, const struct m7_line *l, struct m7_delim *d)
{
    const char *p = r.ptr + l->start;
    size_t len = l->end - l->start, i = 2 + e->blen;

    if (len < i || p[0] != '-' || p[1] != '-' || memcmp(p + 2, e->boundary, e->blen) != 0) {
        return false;
    }
    d->close = len >= i + 2 && p[i] == '-' && p[i + 1] == '-';
    if (d->close) {
        i += 2;
    } else {
        for (size_t k = i; k < len; k++) {
            if (!m7_blank(p[k])) {
                return false; /* "--boundary" followed by more than padding */
            }
        }
    }
    d->start = l->start;
    d->tail = l->start + i;
    d->end = l->next;
    return true;
}

/* The first delimiter line of r at or after from (a line start). */
static bool
m7_delim_find(struct strv r, const struct m7_entity *e, size_t from, struct m7_delim *d)
{
    struct m7_line l;

    for (size_t pos = from; pos < r.len; pos = l.next) {
        m7_line_at(r, pos, &l);
        if (m7_delim_line(r, e, &l, d)) {
            d->pre = pos;
            if (pos > from) { /* the line end before belongs to the delimiter */
                d->pre = pos - 1;
                if (d->pre > from && r.ptr[d->pre - 1] == '\r') {
                    d->pre--;
                }
            }
            return true;
        }
    }
    return false;
}

static void
m7_put_delim(struct m7 *m, struct strv r, const struct m7_delim *d)
{
    m7_put(m, r.ptr + d->pre, d->tail - d->pre);
    m7_put_7bit(m, strv_make(r.ptr + d->tail, d->end - d->tail), '?');
}

/* A multipart body whose first delimiter (an opening one) is first. */
static void
m7_multipart(struct m7 *m, const struct m7_entity *e, unsigned depth, const struct m7_delim *first)
{
    struct strv r = strv_from(e->all, e->body_off);
    enum m7_ctx ctx = e->digest ? M7_CTX_DIGEST_PART : M7_CTX_PART;
    struct m7_delim d = *first, next;

    m7_put_7bit(m, strv_make(r.ptr, d.pre), '?'); /* the preamble */
    while (m->err == 0) {
        m7_put_delim(m, r, &d);
        if (d.close) {
            m7_put_7bit(m, strv_from(r, d.end), '?'); /* the epilogue */
            return;
        }
        if (!m7_delim_find(r, e, d.end, &next)) {
            m->res->malformed = true; /* no closing delimiter: the part runs to the end */
            m7_entity(m, strv_from(r, d.end), depth + 1, ctx);
            return;
        }
        m7_entity(m, strv_make(r.ptr + d.end, next.pre - d.end), depth + 1, ctx);
        d = next;
    }
}

/* A multipart or message/rfc822 entity: its header (8bit/binary relabelled), then its content. */
static void
m7_composite(struct m7 *m, const struct m7_entity *e, enum m7_ctx ctx, unsigned depth,
             const struct m7_delim *first)
{
    struct m7_hdr_edit ed = {0};
    unsigned long hdr8 = m->hdr8;
    size_t off;

    ed.cte = e->cte == M7_CTE_8BIT || e->cte == M7_CTE_BINARY ? "7bit" : NULL;
    ed.add_mimever = ctx == M7_CTX_MESSAGE && !e->has_mimever;
    off = m7_put_header(m, e, &ed);
    if (e->kind == M7_MULTIPART) {
        if (m7_find_8bit(e->boundary, e->blen) < e->blen) {
            m->hdr8++; /* its delimiter lines keep the 8-bit octets */
        }
        m7_multipart(m, e, depth, first);
    } else {
        m7_entity(m, strv_from(e->all, e->body_off), depth + 1, M7_CTX_MESSAGE);
    }
    if (ed.cte && m->hdr8 != hdr8) {
        m7_flush(m);
        if (m->err == 0) {
            memcpy(m->out->data + m->out->start + off, "8bit", 4); /* as long as "7bit" */
        }
    }
}

static void
m7_entity(struct m7 *m, struct strv all, unsigned depth, enum m7_ctx ctx)
{
    struct m7_entity e;
    struct m7_delim first = {0};
    bool composite;

    if (m->err) {
        return;
    }
    if (!m7_has_8bit(all)) {
        m7_put_strv(m, all);
        return;
    }
    m7_header_scan(m, all, ctx, &e);
    if (!m7_has_8bit(strv_from(all, e.body_off))) {
        m7_put_strv(m, all); /* 8-bit octets in the header fields only */
        return;
    }
    composite = e.kind == M7_MULTIPART || e.kind == M7_RFC822;
    if (composite) {
        bool ok = e.cte != M7_CTE_QP && e.cte != M7_CTE_BASE64 && depth < MIME7BIT_DEPTH_MAX;

        if (ok && e.kind == M7_MULTIPART) {
            ok = e.blen > 0 && m7_delim_find(strv_from(all, e.body_off), &e, 0, &first) &&
                 !first.close;
        }
        if (ok) {
            m7_composite(m, &e, ctx, depth, &first);
            return;
        }
        m->res->malformed = true;
    }
    m7_leaf(m, &e, ctx, composite);
}

/* ---- API ---- */

bool
mime7bit_needed(struct strv in)
{
    return m7_has_8bit(in);
}

int
try_mime7bit_convert(struct strv in, struct buf *out, struct mime7bit_result *res)
{
    struct m7 m;
    const char *lf = in.len ? memchr(in.ptr, '\n', in.len) : NULL;

    *res = (struct mime7bit_result){0};
    m.in = in;
    m.out = out;
    m.res = res;
    m.eol = lf && lf > in.ptr && lf[-1] == '\r' ? STRV_LIT("\r\n")
            : lf                                ? STRV_LIT("\n")
                                                : STRV_LIT("\r\n");
    m.err = 0;
    m.hdr8 = 0;
    m.nstage = 0;
    m7_entity(&m, in, 0, M7_CTX_MESSAGE);
    m7_flush(&m);
    return m.err;
}
