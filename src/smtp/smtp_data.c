/*
 * smtp_data: DATA decoder and encoder (see smtp_data.h).
 *
 * The decoder is a byte-level state machine over the wire octets. Its
 * states remember just enough to recognise CR LF "." CR LF across chunk
 * boundaries: DEC_BOL_CRLF is the only state from which a "." can begin a
 * terminator, and it is entered only at the start and after a real CR LF.
 *
 * Output goes through dec_emit(), which counts size, drops output past
 * max_size, and keeps whatever does not fit in out in d->pend; the loop
 * stops after any step that left pending output.
 *
 * Fast paths. Most mail is lines of ordinary octets ending in CR LF, on
 * which the state machine would only copy octets and count. dec_fast() and
 * enc_fast() find the next CR or LF with smtp_data_find_eol() (16 octets at
 * a time with SSE2, else 8) and copy up to it with memcpy; when the line
 * ends in CR LF they take the whole line, ending included, and do its
 * accounting at once. They run only where every octet of the span would
 * have been an ordinary step (never in the first line's header probe, at a
 * "." that starts a line, or with output pending) and only as far as the
 * byte steps would have gone in the same call: within max_line under FIX,
 * within max_size, and within the room left in out, the line ending
 * included. Anything else (a bare CR or LF, a limit reached, a "." line,
 * a chunk ending inside a CR LF) is left to the byte steps. The output,
 * octets consumed and produced per call, and the statistics are exactly
 * those of the byte steps alone; tests/unit/test_smtp_data_fast.c and the
 * fuzz target compare them with that reference (tests/unit/smtp_data_ref.c).
 */
#include "smtp/smtp_data.h"

#include <assert.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

enum smtp_data_dec_state {
    DEC_BOL_CRLF = 0, /* line start after CR LF, or the start of data */
    DEC_BOL_LF,       /* line start after a bare LF */
    DEC_TEXT,         /* inside a line */
    DEC_CR,           /* a CR seen, not yet known to be part of CR LF */
    DEC_DOT,          /* "." at DEC_BOL_CRLF */
    DEC_DOT_CR,       /* "." CR at DEC_BOL_CRLF: one LF from the end */
    DEC_DOT_LF,       /* "." at DEC_BOL_LF */
    DEC_DONE,
};

enum smtp_data_probe {
    PROBE_START = 0, /* nothing of the first line seen */
    PROBE_NAME,      /* field-name characters seen */
    PROBE_WS,        /* blanks after the name */
    PROBE_DONE,
};

struct smtp_data_out {
    char *buf; /* borrowed from the caller */
    size_t room;
    size_t len;
};

void
smtp_data_opts_init(struct smtp_data_opts *o)
{
    *o = (struct smtp_data_opts){
        .lone_lf_headers = SMTP_DATA_PEDANTIC,
        .lone_lf_body = SMTP_DATA_IGNORE,
        .line_length = SMTP_DATA_IGNORE,
        .max_line = SMTP_DATA_LINE_MAX,
    };
}

void
smtp_data_dec_init(struct smtp_data_dec *d, const struct smtp_data_opts *o)
{
    *d = (struct smtp_data_dec){.opts = *o, .in_header = true};
    if (d->opts.max_line == 0) {
        d->opts.max_line = SMTP_DATA_LINE_MAX;
    }
    d->state = o->raw ? DEC_TEXT : DEC_BOL_CRLF;
}

bool
smtp_data_dec_done(const struct smtp_data_dec *d)
{
    return d->done && d->npend == 0;
}

/* ---- output ---- */

static void
smtp_data_put(char *pend, uint8_t *npend, size_t pend_size, struct smtp_data_out *o, const char *p,
              size_t n)
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
smtp_data_flush(char *pend, uint8_t *npend, struct smtp_data_out *o)
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
dec_emit(struct smtp_data_dec *d, struct smtp_data_out *o, const char *p, size_t n)
{
    d->stats.size += n;
    if (d->stats.too_big) {
        return;
    }
    if (d->opts.max_size && d->stats.size > d->opts.max_size) {
        d->stats.too_big = true;
        return;
    }
    smtp_data_put(d->pend, &d->npend, sizeof(d->pend), o, p, n);
}

/* ---- scanning ---- */

/*
 * smtp_data_find_eol(p, n): the index of the first CR or LF in p[0, n), or
 * n. It reads p in blocks but never past n, and stops at the block holding
 * the first CR or LF, so a caller looking for one line ending pays for
 * about that line's length.
 */
#if defined(__SSE2__)
static size_t
smtp_data_find_eol(const char *p, size_t n)
{
    const __m128i cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n');
    size_t i = 0;

    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const void *)(p + i));
        int m = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf)));

        if (m != 0) {
            return i + (size_t)__builtin_ctz((unsigned)m); /* bit j: octet j */
        }
    }
    while (i < n && p[i] != '\r' && p[i] != '\n') {
        i++;
    }
    return i;
}
#else
/* Word at a time: (x - 0x01..) & ~x & 0x80.. is non-zero iff an octet of x is 0. */
static size_t
smtp_data_find_eol(const char *p, size_t n)
{
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    size_t i = 0;

    for (; i + 8 <= n; i += 8) {
        uint64_t w, cr, lf;

        memcpy(&w, p + i, 8);
        cr = w ^ (ones * '\r');
        lf = w ^ (ones * '\n');
        if (((cr - ones) & ~cr & highs) | ((lf - ones) & ~lf & highs)) {
            break; /* a CR or LF in w: the octet loop finds it */
        }
    }
    while (i < n && p[i] != '\r' && p[i] != '\n') {
        i++;
    }
    return i;
}
#endif

/* ---- decoder: lines and sections ---- */

static struct smtp_data_section *
dec_section(struct smtp_data_dec *d)
{
    return d->in_header ? &d->stats.header : &d->stats.body;
}

static enum smtp_data_policy
dec_lone_policy(const struct smtp_data_dec *d)
{
    return d->in_header ? d->opts.lone_lf_headers : d->opts.lone_lf_body;
}

/*
 * Feeds the first line's octets (c) or its end (c < 0) to the header-field
 * test: "name:" or "name  :" makes it a header; anything else means the
 * message has no header section.
 */
static void
dec_probe(struct smtp_data_dec *d, int c)
{
    bool ftext = c >= 33 && c <= 126 && c != ':';
    bool blank = c == ' ' || c == '\t';

    switch (d->probe) {
    case PROBE_DONE:
        return;
    case PROBE_START:
        if (ftext) {
            d->probe = PROBE_NAME;
            return;
        }
        break;
    case PROBE_NAME:
    case PROBE_WS:
        if ((ftext && d->probe == PROBE_NAME) || blank) {
            d->probe = blank ? PROBE_WS : PROBE_NAME;
            return;
        }
        if (c == ':') {
            d->stats.has_headers = true;
            d->probe = PROBE_DONE;
            return;
        }
        break;
    }
    d->probe = PROBE_DONE;
    d->in_header = false;
}

/* A line break written by FIX for an over-long line. */
static void
dec_break(struct smtp_data_dec *d, struct smtp_data_out *o)
{
    if (d->in_header && d->opts.max_line >= 2) {
        dec_emit(d, o, "\r\n ", 3); /* fold: the field goes on */
        d->line_len = 1;
    } else {
        dec_emit(d, o, "\r\n", 2);
        d->line_len = 0;
    }
}

/* One octet of line content. */
static void
dec_char(struct smtp_data_dec *d, struct smtp_data_out *o, char c)
{
    dec_probe(d, (unsigned char)c);
    if (d->opts.line_length == SMTP_DATA_FIX && d->line_len >= d->opts.max_line) {
        dec_break(d, o);
    }
    d->raw_len++;
    d->line_len++;
    dec_emit(d, o, &c, 1);
}

/* Accounts the line that just ended (ending not included). */
static void
dec_line_done(struct smtp_data_dec *d)
{
    struct smtp_data_section *s;

    dec_probe(d, -1);
    s = dec_section(d);
    s->lines++;
    if (d->raw_len > s->longest) {
        s->longest = d->raw_len;
    }
    if (d->raw_len > d->opts.max_line) {
        s->long_lines++;
    }
}

/* Accounts the line that just ended and starts the next one. */
static void
dec_line_end(struct smtp_data_dec *d)
{
    dec_line_done(d);
    if (d->in_header && d->raw_len == 0) {
        d->in_header = false; /* the empty line ends the header section */
    }
    d->raw_len = 0;
    d->line_len = 0;
}

/* The end of a line, written as ending. */
static void
dec_eol(struct smtp_data_dec *d, struct smtp_data_out *o, const char *ending, size_t n)
{
    dec_line_end(d);
    dec_emit(d, o, ending, n);
}

static void
dec_bare_lf(struct smtp_data_dec *d, struct smtp_data_out *o)
{
    dec_probe(d, -1);
    dec_section(d)->bare_lf++;
    if (dec_lone_policy(d) == SMTP_DATA_FIX) {
        dec_eol(d, o, "\r\n", 2);
    } else {
        dec_eol(d, o, "\n", 1);
    }
    d->state = d->opts.raw ? DEC_TEXT : DEC_BOL_LF;
}

static void
dec_bare_cr(struct smtp_data_dec *d, struct smtp_data_out *o)
{
    dec_probe(d, '\r');
    dec_section(d)->bare_cr++;
    if (dec_lone_policy(d) == SMTP_DATA_FIX) {
        dec_eol(d, o, "\r\n", 2);
    } else {
        dec_char(d, o, '\r');
    }
    d->state = DEC_TEXT;
}

/* ---- decoder: the state machine ---- */

/* Handles the states that look at line starts; false: treat c as text. */
static bool
dec_step_special(struct smtp_data_dec *d, struct smtp_data_out *o, char c)
{
    switch (d->state) {
    case DEC_BOL_CRLF:
    case DEC_BOL_LF:
        if (c != '.') {
            return false;
        }
        d->state = d->state == DEC_BOL_CRLF ? DEC_DOT : DEC_DOT_LF;
        return true;
    case DEC_DOT:
    case DEC_DOT_LF:
        if (c == '\r' && d->state == DEC_DOT) {
            d->state = DEC_DOT_CR; /* maybe the end */
            return true;
        }
        if (c == '\r' || c == '\n') { /* a lone "." line, kept */
            dec_char(d, o, '.');
            return false;
        }
        d->state = DEC_TEXT; /* a stuffed ".": dropped */
        return false;
    case DEC_DOT_CR:
        if (c == '\n') {
            d->state = DEC_DONE;
            d->done = true;
            return true;
        }
        dec_char(d, o, '.'); /* "." ended by a bare CR: data */
        dec_bare_cr(d, o);
        return false;
    case DEC_CR:
        if (c == '\n') {
            dec_eol(d, o, "\r\n", 2);
            d->state = d->opts.raw ? DEC_TEXT : DEC_BOL_CRLF;
            return true;
        }
        dec_bare_cr(d, o);
        return false;
    default:
        return false;
    }
}

static void
dec_step(struct smtp_data_dec *d, struct smtp_data_out *o, char c)
{
    if (dec_step_special(d, o, c)) {
        return;
    }
    if (c == '\r') {
        d->state = DEC_CR;
    } else if (c == '\n') {
        dec_bare_lf(d, o);
    } else {
        d->state = DEC_TEXT;
        dec_char(d, o, c);
    }
}

/* ---- decoder: the fast path ---- */

/*
 * The fast path may run only where the byte steps would treat the next
 * octet c like any octet inside a line: the first-line probe is over and
 * the decoder is inside a line, or at a line start where c is not ".".
 */
static bool
dec_fast_ok(const struct smtp_data_dec *d, char c)
{
    if (d->probe != PROBE_DONE) {
        return false;
    }
    return d->state == DEC_TEXT ||
           ((d->state == DEC_BOL_CRLF || d->state == DEC_BOL_LF) && c != '.');
}

/* Octets of line content that FIX lets through before it would break the line. */
static size_t
dec_fix_left(const struct smtp_data_dec *d)
{
    if (d->opts.line_length != SMTP_DATA_FIX) {
        return SIZE_MAX;
    }
    return d->line_len < d->opts.max_line ? (size_t)(d->opts.max_line - d->line_len) : 0;
}

/* Octets that can be emitted without filling out or crossing max_size. */
static size_t
dec_out_left(const struct smtp_data_dec *d, const struct smtp_data_out *o)
{
    size_t left = o->room - o->len;

    if (d->stats.too_big) {
        return SIZE_MAX; /* nothing is written any more */
    }
    if (d->opts.max_size && d->opts.max_size - d->stats.size < left) {
        left = (size_t)(d->opts.max_size - d->stats.size);
    }
    return left;
}

/* Emits k octets of line content (no CR or LF among them) as dec_char() would. */
static void
dec_fast_text(struct smtp_data_dec *d, struct smtp_data_out *o, const char *p, size_t k)
{
    if (!d->stats.too_big) {
        memcpy(o->buf + o->len, p, k);
        o->len += k;
    }
    d->stats.size += k;
    d->raw_len += k;
    d->line_len += k;
    d->state = DEC_TEXT;
}

/* Takes a whole line, k octets of content then CR LF, as the byte steps would. */
static void
dec_fast_line(struct smtp_data_dec *d, struct smtp_data_out *o, const char *p, size_t k)
{
    if (!d->stats.too_big) {
        memcpy(o->buf + o->len, p, k + 2);
        o->len += k + 2;
    }
    d->stats.size += k + 2;
    d->raw_len += k;
    dec_line_end(d);
    d->state = d->opts.raw ? DEC_TEXT : DEC_BOL_CRLF;
}

/*
 * Copies lines and runs of line content in bulk, doing exactly what the
 * byte steps would (output, statistics, state), as long as nothing special
 * can happen: each span up to the next CR or LF must pass FIX and fit in
 * out and under max_size, and a line is taken whole only with its CR LF.
 * A "." starting a line, a bare CR or LF, or a limit hands over to
 * dec_step(). Returns the input octets consumed (0: take a byte step).
 */
static size_t
dec_fast(struct smtp_data_dec *d, struct smtp_data_out *o, const char *p, size_t n)
{
    size_t i = 0;

    while (i < n && dec_fast_ok(d, p[i])) {
        size_t fix = dec_fix_left(d), out = dec_out_left(d, o);
        size_t max = fix < out ? fix : out, w = n - i, k;

        if (w > 2 && max < w - 2) {
            w = max + 2; /* no more could be taken: do not look further */
        }
        k = smtp_data_find_eol(p + i, w);
        if (k + 1 < n - i && p[i + k] == '\r' && p[i + k + 1] == '\n' && k <= fix && k + 2 <= out) {
            dec_fast_line(d, o, p + i, k);
            i += k + 2;
            continue;
        }
        k = k < max ? k : max;
        if (k > 0) {
            dec_fast_text(d, o, p + i, k);
        }
        return i + k;
    }
    return i;
}

size_t
smtp_data_decode(struct smtp_data_dec *d, struct strv in, char *out, size_t room, size_t *produced)
{
    struct smtp_data_out o = {out, room, 0};
    size_t i = 0;

    smtp_data_flush(d->pend, &d->npend, &o);
    while (i < in.len && d->npend == 0 && d->state != DEC_DONE) {
        size_t n;

        if (o.len == o.room && !d->stats.too_big) {
            break;
        }
        n = dec_fast(d, &o, in.ptr + i, in.len - i);
        if (n > 0) {
            i += n;
            continue;
        }
        dec_step(d, &o, in.ptr[i]);
        i++;
    }
    d->stats.wire += i;
    *produced = o.len;
    return i;
}

int
try_smtp_data_decode_buf(struct smtp_data_dec *d, struct strv in, struct buf *out, size_t *consumed)
{
    *consumed = 0;
    for (;;) {
        size_t want = out->max - buf_len(out), room, produced, n;
        char *dst;

        if (smtp_data_dec_done(d) || (*consumed == in.len && d->npend == 0)) {
            return 0;
        }
        want = want < 4096 ? want : 4096;
        dst = want ? try_buf_reserve(out, want, &room) : NULL;
        if (dst == NULL) {
            return CELER_ELIMIT;
        }
        n = smtp_data_decode(d, strv_from(in, *consumed), dst, room, &produced);
        buf_commit(out, produced);
        *consumed += n;
        if (n == 0 && produced == 0) {
            return 0;
        }
    }
}

size_t
smtp_data_dec_finish(struct smtp_data_dec *d, char *out, size_t room)
{
    struct smtp_data_out o = {out, room, 0};

    smtp_data_flush(d->pend, &d->npend, &o);
    if (!d->done) {
        if (d->state == DEC_CR) {
            dec_bare_cr(d, &o);
        }
        if (d->raw_len > 0) {
            dec_line_done(d); /* the last line had no ending */
        }
        d->state = DEC_DONE;
        d->done = true;
    }
    return o.len;
}

int
smtp_data_dec_check(const struct smtp_data_dec *d, struct smtp_reply *r)
{
    const struct smtp_data_opts *o = &d->opts;
    const struct smtp_data_stats *s = &d->stats;

    if (s->too_big) {
        *r = SMTP_REPLY(552, "5.3.4", "Message size exceeds fixed maximum message size");
    } else if (o->lone_lf_headers == SMTP_DATA_PEDANTIC &&
               (s->header.bare_lf || s->header.bare_cr)) {
        *r = SMTP_REPLY(550, "5.6.0", "Bare CR or LF in message headers");
    } else if (o->lone_lf_body == SMTP_DATA_PEDANTIC && (s->body.bare_lf || s->body.bare_cr)) {
        *r = SMTP_REPLY(550, "5.6.0", "Bare CR or LF in message body");
    } else if (o->line_length == SMTP_DATA_PEDANTIC && s->header.long_lines) {
        *r = SMTP_REPLY(550, "5.6.0", "Message header line too long");
    } else if (o->line_length == SMTP_DATA_PEDANTIC && s->body.long_lines) {
        *r = SMTP_REPLY(550, "5.6.0", "Message body line too long");
    } else if (!o->allow_missing_headers && !s->has_headers) {
        *r = SMTP_REPLY(550, "5.6.0", "Message has no header section");
    } else {
        *r = (struct smtp_reply){0};
        return 0;
    }
    return CELER_EPROTO;
}

/* ---- encoder ---- */

enum smtp_data_enc_state {
    ENC_BOL = 0,  /* line start */
    ENC_TEXT,     /* inside a line */
    ENC_AFTER_CR, /* line start after a CR (written as CR LF): an LF is dropped */
};

void
smtp_data_enc_init(struct smtp_data_enc *e)
{
    *e = (struct smtp_data_enc){.state = ENC_BOL};
}

bool
smtp_data_enc_done(const struct smtp_data_enc *e)
{
    return e->finished && e->npend == 0;
}

static void
enc_emit(struct smtp_data_enc *e, struct smtp_data_out *o, const char *p, size_t n)
{
    smtp_data_put(e->pend, &e->npend, sizeof(e->pend), o, p, n);
}

static void
enc_step(struct smtp_data_enc *e, struct smtp_data_out *o, char c)
{
    if (c == '\r') {
        enc_emit(e, o, "\r\n", 2);
        e->state = ENC_AFTER_CR;
    } else if (c == '\n') {
        if (e->state != ENC_AFTER_CR) {
            enc_emit(e, o, "\r\n", 2);
        }
        e->state = ENC_BOL;
    } else {
        if (c == '.' && e->state != ENC_TEXT) {
            enc_emit(e, o, ".", 1); /* stuffing */
        }
        enc_emit(e, o, &c, 1);
        e->state = ENC_TEXT;
    }
}

/*
 * The fast path may run only where enc_step() would treat c like any octet
 * inside a line: a "." at a line start is stuffed, and an LF after a CR
 * was already written.
 */
static bool
enc_fast_ok(const struct smtp_data_enc *e, char c)
{
    if (e->state == ENC_TEXT) {
        return true;
    }
    return c != '.' && (c != '\n' || e->state != ENC_AFTER_CR);
}

/*
 * Copies lines (content, then a CR LF, bare LF or bare CR) and runs of
 * line content in bulk, doing exactly what enc_step() would (output,
 * state): a line ending is taken only when its CR LF fits in out, the LF
 * after a CR only while out has room, and a "." at a line start hands over
 * to enc_step(). Returns the input octets consumed (0: take a byte step).
 */
static size_t
enc_fast(struct smtp_data_enc *e, struct smtp_data_out *o, const char *p, size_t n)
{
    size_t i = 0;

    while (i < n && o->len < o->room && enc_fast_ok(e, p[i])) {
        size_t left = o->room - o->len, w = n - i < left ? n - i : left;
        size_t k = smtp_data_find_eol(p + i, w);

        memcpy(o->buf + o->len, p + i, k);
        o->len += k;
        if (k > 0) {
            e->state = ENC_TEXT;
        }
        if (k == w || k + 2 > left) {
            return i + k; /* the end of out, of in, or a CR LF that does not fit */
        }
        memcpy(o->buf + o->len, "\r\n", 2);
        o->len += 2;
        e->state = p[i + k] == '\r' ? ENC_AFTER_CR : ENC_BOL;
        i += k + 1;
        if (e->state == ENC_AFTER_CR && i < n && p[i] == '\n' && o->len < o->room) {
            e->state = ENC_BOL; /* the LF of CR LF */
            i++;
        }
    }
    return i;
}

size_t
smtp_data_encode(struct smtp_data_enc *e, struct strv in, char *out, size_t room, size_t *produced)
{
    struct smtp_data_out o = {out, room, 0};
    size_t i = 0;

    smtp_data_flush(e->pend, &e->npend, &o);
    while (i < in.len && e->npend == 0 && o.len < o.room) {
        size_t n = enc_fast(e, &o, in.ptr + i, in.len - i);

        if (n > 0) {
            i += n;
            continue;
        }
        enc_step(e, &o, in.ptr[i]);
        i++;
    }
    *produced = o.len;
    return i;
}

size_t
smtp_data_enc_finish(struct smtp_data_enc *e, char *out, size_t room)
{
    struct smtp_data_out o = {out, room, 0};

    smtp_data_flush(e->pend, &e->npend, &o);
    if (!e->finished) {
        if (e->state == ENC_TEXT) {
            enc_emit(e, &o, "\r\n", 2);
        }
        enc_emit(e, &o, ".\r\n", 3);
        e->finished = true;
    }
    return o.len;
}

int
try_smtp_data_encode_buf(struct smtp_data_enc *e, struct strv in, bool last, struct buf *out)
{
    size_t used = 0;

    while (used < in.len || e->npend > 0 || (last && !smtp_data_enc_done(e))) {
        size_t want = out->max - buf_len(out), room, produced;
        char *dst;

        want = want < 4096 ? want : 4096;
        dst = want ? try_buf_reserve(out, want, &room) : NULL;
        if (dst == NULL) {
            return CELER_ELIMIT;
        }
        if (used < in.len || e->npend > 0) {
            used += smtp_data_encode(e, strv_from(in, used), dst, room, &produced);
        } else {
            produced = smtp_data_enc_finish(e, dst, room);
        }
        buf_commit(out, produced);
    }
    return 0;
}
