/*
 * smtp_data_ref: the reference DATA decoder and encoder (see
 * smtp_data_ref.h). A copy of src/smtp/smtp_data.c as it was before the
 * fast paths, renamed; test code only.
 */
#include "smtp_data_ref.h"

#include <assert.h>
#include <string.h>

enum ref_dec_state {
    REF_DEC_BOL_CRLF = 0, /* line start after CR LF, or the start of data */
    REF_DEC_BOL_LF,       /* line start after a bare LF */
    REF_DEC_TEXT,         /* inside a line */
    REF_DEC_CR,           /* a CR seen, not yet known to be part of CR LF */
    REF_DEC_DOT,          /* "." at REF_DEC_BOL_CRLF */
    REF_DEC_DOT_CR,       /* "." CR at REF_DEC_BOL_CRLF: one LF from the end */
    REF_DEC_DOT_LF,       /* "." at REF_DEC_BOL_LF */
    REF_DEC_DONE,
};

enum ref_probe {
    REF_PROBE_START = 0, /* nothing of the first line seen */
    REF_PROBE_NAME,      /* field-name characters seen */
    REF_PROBE_WS,        /* blanks after the name */
    REF_PROBE_DONE,
};

struct ref_out {
    char *buf; /* borrowed from the caller */
    size_t room;
    size_t len;
};

void
ref_smtp_data_dec_init(struct ref_smtp_data_dec *d, const struct smtp_data_opts *o)
{
    *d = (struct ref_smtp_data_dec){.opts = *o, .in_header = true};
    if (d->opts.max_line == 0) {
        d->opts.max_line = SMTP_DATA_LINE_MAX;
    }
    d->state = o->raw ? REF_DEC_TEXT : REF_DEC_BOL_CRLF;
}

bool
ref_smtp_data_dec_done(const struct ref_smtp_data_dec *d)
{
    return d->done && d->npend == 0;
}

/* ---- output ---- */

static void
ref_put(char *pend, uint8_t *npend, size_t pend_size, struct ref_out *o, const char *p, size_t n)
{
    size_t k = o->room - o->len;

    if (k > n) {
        k = n;
    }
    memcpy(o->buf + o->len, p, k);
    o->len += k;
    if (k < n) {
        assert(n - k <= pend_size - *npend); /* steps emit a few octets at most */
        memcpy(pend + *npend, p + k, n - k);
        *npend = (uint8_t)(*npend + (n - k));
    }
}

static void
ref_flush(char *pend, uint8_t *npend, struct ref_out *o)
{
    size_t k = o->room - o->len;

    if (k > *npend) {
        k = *npend;
    }
    memcpy(o->buf + o->len, pend, k);
    o->len += k;
    memmove(pend, pend + k, *npend - k);
    *npend = (uint8_t)(*npend - k);
}

static void
ref_dec_emit(struct ref_smtp_data_dec *d, struct ref_out *o, const char *p, size_t n)
{
    d->stats.size += n;
    if (d->stats.too_big) {
        return;
    }
    if (d->opts.max_size && d->stats.size > d->opts.max_size) {
        d->stats.too_big = true;
        return;
    }
    ref_put(d->pend, &d->npend, sizeof(d->pend), o, p, n);
}

/* ---- decoder: lines and sections ---- */

static struct smtp_data_section *
ref_dec_section(struct ref_smtp_data_dec *d)
{
    return d->in_header ? &d->stats.header : &d->stats.body;
}

static enum smtp_data_policy
ref_dec_lone_policy(const struct ref_smtp_data_dec *d)
{
    return d->in_header ? d->opts.lone_lf_headers : d->opts.lone_lf_body;
}

/*
 * Feeds the first line's octets (c) or its end (c < 0) to the header-field
 * test: "name:" or "name  :" makes it a header; anything else means the
 * message has no header section.
 */
static void
ref_dec_probe(struct ref_smtp_data_dec *d, int c)
{
    bool ftext = c >= 33 && c <= 126 && c != ':';
    bool blank = c == ' ' || c == '\t';

    switch (d->probe) {
    case REF_PROBE_DONE:
        return;
    case REF_PROBE_START:
        if (ftext) {
            d->probe = REF_PROBE_NAME;
            return;
        }
        break;
    case REF_PROBE_NAME:
    case REF_PROBE_WS:
        if ((ftext && d->probe == REF_PROBE_NAME) || blank) {
            d->probe = blank ? REF_PROBE_WS : REF_PROBE_NAME;
            return;
        }
        if (c == ':') {
            d->stats.has_headers = true;
            d->probe = REF_PROBE_DONE;
            return;
        }
        break;
    }
    d->probe = REF_PROBE_DONE;
    d->in_header = false;
}

/* A line break written by FIX for an over-long line. */
static void
ref_dec_break(struct ref_smtp_data_dec *d, struct ref_out *o)
{
    if (d->in_header && d->opts.max_line >= 2) {
        ref_dec_emit(d, o, "\r\n ", 3); /* fold: the field goes on */
        d->line_len = 1;
    } else {
        ref_dec_emit(d, o, "\r\n", 2);
        d->line_len = 0;
    }
}

/* One octet of line content. */
static void
ref_dec_char(struct ref_smtp_data_dec *d, struct ref_out *o, char c)
{
    ref_dec_probe(d, (unsigned char)c);
    if (d->opts.line_length == SMTP_DATA_FIX && d->line_len >= d->opts.max_line) {
        ref_dec_break(d, o);
    }
    d->raw_len++;
    d->line_len++;
    ref_dec_emit(d, o, &c, 1);
}

/* Accounts the line that just ended (ending not included). */
static void
ref_dec_line_done(struct ref_smtp_data_dec *d)
{
    struct smtp_data_section *s;

    ref_dec_probe(d, -1);
    s = ref_dec_section(d);
    s->lines++;
    if (d->raw_len > s->longest) {
        s->longest = d->raw_len;
    }
    if (d->raw_len > d->opts.max_line) {
        s->long_lines++;
    }
}

/* The end of a line, written as ending. */
static void
ref_dec_eol(struct ref_smtp_data_dec *d, struct ref_out *o, const char *ending, size_t n)
{
    ref_dec_line_done(d);
    ref_dec_emit(d, o, ending, n);
    if (d->in_header && d->raw_len == 0) {
        d->in_header = false; /* the empty line ends the header section */
    }
    d->raw_len = 0;
    d->line_len = 0;
}

static void
ref_dec_bare_lf(struct ref_smtp_data_dec *d, struct ref_out *o)
{
    ref_dec_probe(d, -1);
    ref_dec_section(d)->bare_lf++;
    if (ref_dec_lone_policy(d) == SMTP_DATA_FIX) {
        ref_dec_eol(d, o, "\r\n", 2);
    } else {
        ref_dec_eol(d, o, "\n", 1);
    }
    d->state = d->opts.raw ? REF_DEC_TEXT : REF_DEC_BOL_LF;
}

static void
ref_dec_bare_cr(struct ref_smtp_data_dec *d, struct ref_out *o)
{
    ref_dec_probe(d, '\r');
    ref_dec_section(d)->bare_cr++;
    if (ref_dec_lone_policy(d) == SMTP_DATA_FIX) {
        ref_dec_eol(d, o, "\r\n", 2);
    } else {
        ref_dec_char(d, o, '\r');
    }
    d->state = REF_DEC_TEXT;
}

/* ---- decoder: the state machine ---- */

/* Handles the states that look at line starts; false: treat c as text. */
static bool
ref_dec_step_special(struct ref_smtp_data_dec *d, struct ref_out *o, char c)
{
    switch (d->state) {
    case REF_DEC_BOL_CRLF:
    case REF_DEC_BOL_LF:
        if (c != '.') {
            return false;
        }
        d->state = d->state == REF_DEC_BOL_CRLF ? REF_DEC_DOT : REF_DEC_DOT_LF;
        return true;
    case REF_DEC_DOT:
    case REF_DEC_DOT_LF:
        if (c == '\r' && d->state == REF_DEC_DOT) {
            d->state = REF_DEC_DOT_CR; /* maybe the end */
            return true;
        }
        if (c == '\r' || c == '\n') { /* a lone "." line, kept */
            ref_dec_char(d, o, '.');
            return false;
        }
        d->state = REF_DEC_TEXT; /* a stuffed ".": dropped */
        return false;
    case REF_DEC_DOT_CR:
        if (c == '\n') {
            d->state = REF_DEC_DONE;
            d->done = true;
            return true;
        }
        ref_dec_char(d, o, '.'); /* "." ended by a bare CR: data */
        ref_dec_bare_cr(d, o);
        return false;
    case REF_DEC_CR:
        if (c == '\n') {
            ref_dec_eol(d, o, "\r\n", 2);
            d->state = d->opts.raw ? REF_DEC_TEXT : REF_DEC_BOL_CRLF;
            return true;
        }
        ref_dec_bare_cr(d, o);
        return false;
    default:
        return false;
    }
}

static void
ref_dec_step(struct ref_smtp_data_dec *d, struct ref_out *o, char c)
{
    if (ref_dec_step_special(d, o, c)) {
        return;
    }
    if (c == '\r') {
        d->state = REF_DEC_CR;
    } else if (c == '\n') {
        ref_dec_bare_lf(d, o);
    } else {
        d->state = REF_DEC_TEXT;
        ref_dec_char(d, o, c);
    }
}

/* Copies a run of ordinary octets in REF_DEC_TEXT; returns how many (maybe 0). */
static size_t
ref_dec_run(struct ref_smtp_data_dec *d, struct ref_out *o, const char *p, size_t n)
{
    size_t k = 0;

    if (d->probe != REF_PROBE_DONE) {
        return 0;
    }
    if (d->opts.line_length == SMTP_DATA_FIX) {
        size_t left = d->line_len < d->opts.max_line ? d->opts.max_line - d->line_len : 0;

        n = n < left ? n : left;
    }
    if (!d->stats.too_big) {
        size_t room = o->room - o->len;

        n = n < room ? n : room;
        if (d->opts.max_size) {
            uint64_t left = d->opts.max_size - d->stats.size;

            n = n < left ? n : (size_t)left;
        }
    }
    while (k < n && p[k] != '\r' && p[k] != '\n') {
        k++;
    }
    if (!d->stats.too_big) {
        memcpy(o->buf + o->len, p, k);
        o->len += k;
    }
    d->stats.size += k;
    d->raw_len += k;
    d->line_len += k;
    return k;
}

size_t
ref_smtp_data_decode(struct ref_smtp_data_dec *d, struct strv in, char *out, size_t room,
                     size_t *produced)
{
    struct ref_out o = {out, room, 0};
    size_t i = 0;

    ref_flush(d->pend, &d->npend, &o);
    while (i < in.len && d->npend == 0 && d->state != REF_DEC_DONE) {
        if (o.len == o.room && !d->stats.too_big) {
            break;
        }
        if (d->state == REF_DEC_TEXT) {
            size_t n = ref_dec_run(d, &o, in.ptr + i, in.len - i);

            if (n > 0) {
                i += n;
                continue;
            }
        }
        ref_dec_step(d, &o, in.ptr[i]);
        i++;
    }
    d->stats.wire += i;
    *produced = o.len;
    return i;
}

size_t
ref_smtp_data_dec_finish(struct ref_smtp_data_dec *d, char *out, size_t room)
{
    struct ref_out o = {out, room, 0};

    ref_flush(d->pend, &d->npend, &o);
    if (!d->done) {
        if (d->state == REF_DEC_CR) {
            ref_dec_bare_cr(d, &o);
        }
        if (d->raw_len > 0) {
            ref_dec_line_done(d); /* the last line had no ending */
        }
        d->state = REF_DEC_DONE;
        d->done = true;
    }
    return o.len;
}

/* ---- encoder ---- */

enum ref_enc_state {
    REF_ENC_BOL = 0,  /* line start */
    REF_ENC_TEXT,     /* inside a line */
    REF_ENC_AFTER_CR, /* line start after a CR (written as CR LF): an LF is dropped */
};

void
ref_smtp_data_enc_init(struct ref_smtp_data_enc *e)
{
    *e = (struct ref_smtp_data_enc){.state = REF_ENC_BOL};
}

bool
ref_smtp_data_enc_done(const struct ref_smtp_data_enc *e)
{
    return e->finished && e->npend == 0;
}

static void
ref_enc_emit(struct ref_smtp_data_enc *e, struct ref_out *o, const char *p, size_t n)
{
    ref_put(e->pend, &e->npend, sizeof(e->pend), o, p, n);
}

static void
ref_enc_step(struct ref_smtp_data_enc *e, struct ref_out *o, char c)
{
    if (c == '\r') {
        ref_enc_emit(e, o, "\r\n", 2);
        e->state = REF_ENC_AFTER_CR;
    } else if (c == '\n') {
        if (e->state != REF_ENC_AFTER_CR) {
            ref_enc_emit(e, o, "\r\n", 2);
        }
        e->state = REF_ENC_BOL;
    } else {
        if (c == '.' && e->state != REF_ENC_TEXT) {
            ref_enc_emit(e, o, ".", 1); /* stuffing */
        }
        ref_enc_emit(e, o, &c, 1);
        e->state = REF_ENC_TEXT;
    }
}

size_t
ref_smtp_data_encode(struct ref_smtp_data_enc *e, struct strv in, char *out, size_t room,
                     size_t *produced)
{
    struct ref_out o = {out, room, 0};
    size_t i = 0;

    ref_flush(e->pend, &e->npend, &o);
    while (i < in.len && e->npend == 0 && o.len < o.room) {
        if (e->state == REF_ENC_TEXT) {
            size_t n = in.len - i < o.room - o.len ? in.len - i : o.room - o.len;
            size_t k = 0;

            while (k < n && in.ptr[i + k] != '\r' && in.ptr[i + k] != '\n') {
                k++;
            }
            memcpy(out + o.len, in.ptr + i, k);
            o.len += k;
            i += k;
            if (k > 0) {
                continue;
            }
        }
        ref_enc_step(e, &o, in.ptr[i]);
        i++;
    }
    *produced = o.len;
    return i;
}

size_t
ref_smtp_data_enc_finish(struct ref_smtp_data_enc *e, char *out, size_t room)
{
    struct ref_out o = {out, room, 0};

    ref_flush(e->pend, &e->npend, &o);
    if (!e->finished) {
        if (e->state == REF_ENC_TEXT) {
            ref_enc_emit(e, &o, "\r\n", 2);
        }
        ref_enc_emit(e, &o, ".\r\n", 3);
        e->finished = true;
    }
    return o.len;
}
