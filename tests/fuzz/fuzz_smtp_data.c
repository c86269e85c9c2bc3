/*
 * fuzz_smtp_data: the DATA decoder and encoder.
 *
 * Input: 4 header octets, then the wire bytes M.
 *   [0] policies: bits 0-1 headers, 2-3 body, 4-5 line length
 *       (0 ignore, 1 pedantic, 2 fix, 3 ignore); bit 6: max_size on
 *   [1] max_line (1 + [1]) when bit 7 of [0] is set, else 998;
 *       max_size is 4 * [1]
 *   [2], [3] seed the chunk and output-room sizes
 * Checks (abort on violation):
 *   - the end of data is found exactly at the first CR LF "." CR LF (or a
 *     leading "." CR LF), never elsewhere;
 *   - the output and statistics do not depend on how input and output
 *     are split;
 *   - under ignore policies the output is the reference unstuffing;
 *   - FIX in both sections leaves no bare CR or LF; line FIX leaves no
 *     line over max_line; max_size bounds the output;
 *   - decode(encode(M)) is M with line endings made CR LF, the wire
 *     form ends only at its terminator, and has no bare CR or LF;
 *   - the decoder (in DATA and in raw mode, then finish()) and the encoder
 *     agree call by call with the byte-at-a-time reference
 *     (tests/unit/smtp_data_ref.c): octets consumed, octets produced and
 *     their values, pending output, done and every statistic, with the
 *     whole input and room at once and with random chunks and rooms.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_data.h"

/* The fuzz target is built from this file alone: the reference comes with it. */
#include "../unit/smtp_data_ref.c"
#include "fuzzkit.h"

struct rng {
    uint32_t s;
};

static size_t
rng_size(struct rng *r, size_t max)
{
    r->s ^= r->s << 13;
    r->s ^= r->s >> 17;
    r->s ^= r->s << 5;
    return 1 + r->s % max;
}

struct run {
    struct smtp_data_dec d;
    char *out; /* owned */
    size_t out_len;
    size_t consumed;
    bool done;
};

/* Decodes in with chunk and room sizes from r (or whole, if r is NULL). */
static void
run_decoder(const struct smtp_data_opts *o, const char *in, size_t len, struct rng *r,
            struct run *res)
{
    size_t avail = 0, pos = 0, cap = 4 * len + 64; /* a fold per octet: CR LF SP c */

    res->out = malloc(cap);
    CHECK(res->out != NULL);
    res->out_len = 0;
    smtp_data_dec_init(&res->d, o);
    while (!smtp_data_dec_done(&res->d)) {
        size_t room = r ? rng_size(r, 9) : cap - res->out_len, produced, n;

        CHECK(res->out_len + room <= cap);
        n = smtp_data_decode(&res->d, strv_make(in + pos, avail - pos), res->out + res->out_len,
                             room, &produced);
        CHECK(n <= avail - pos && produced <= room);
        res->out_len += produced;
        pos += n;
        if (n == 0 && produced == 0) {
            if (avail == len) {
                break;
            }
            avail += r ? rng_size(r, 17) : len;
            avail = avail > len ? len : avail;
        }
    }
    res->consumed = pos;
    res->done = smtp_data_dec_done(&res->d);
}

/* A chunk or room size in [1, max]: often tiny, often large. */
static size_t
rng_span(struct rng *r, size_t max)
{
    switch (rng_size(r, 3)) {
    case 1:
        return rng_size(r, 3);
    case 2:
        return rng_size(r, 64);
    default:
        return rng_size(r, max);
    }
}

static size_t
ref_end(const char *s, size_t len)
{
    const char *p;

    if (len >= 3 && memcmp(s, ".\r\n", 3) == 0) {
        return 3;
    }
    p = len >= 5 ? memmem(s, len, "\r\n.\r\n", 5) : NULL;
    return p ? (size_t)(p - s) + 5 : 0;
}

static size_t
ref_unstuff(const char *s, size_t len, char *out)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        bool bol = i == 0 || s[i - 1] == '\n';

        if (bol && s[i] == '.' && i + 1 < len && s[i + 1] != '\r' && s[i + 1] != '\n') {
            continue;
        }
        out[n++] = s[i];
    }
    return n;
}

static size_t
ref_normalise(const char *s, size_t len, char *out)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\r' || s[i] == '\n') {
            out[n++] = '\r';
            out[n++] = '\n';
            if (s[i] == '\r' && i + 1 < len && s[i + 1] == '\n') {
                i++;
            }
        } else {
            out[n++] = s[i];
        }
    }
    if (len > 0 && s[len - 1] != '\r' && s[len - 1] != '\n') {
        out[n++] = '\r';
        out[n++] = '\n';
    }
    return n;
}

static bool
no_bare_cr_lf(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\r' && (i + 1 == len || s[i + 1] != '\n')) {
            return false;
        }
        if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) {
            return false;
        }
    }
    return true;
}

/* Every line (ended by LF, a CR before it not counted) has at most max octets. */
static bool
lines_within(const char *s, size_t len, size_t max)
{
    size_t start = 0;

    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '\n') {
            size_t n = i - start;

            if (i < len && n > 0 && s[i - 1] == '\r') {
                n--;
            }
            if (n > max) {
                return false;
            }
            start = i + 1;
        }
    }
    return true;
}

static bool
same_stats(const struct smtp_data_stats *a, const struct smtp_data_stats *b)
{
    return a->size == b->size && a->wire == b->wire && a->has_headers == b->has_headers &&
           a->too_big == b->too_big && memcmp(&a->header, &b->header, sizeof(a->header)) == 0 &&
           memcmp(&a->body, &b->body, sizeof(a->body)) == 0;
}

static enum smtp_data_policy
policy_of(unsigned bits)
{
    return bits == 1 ? SMTP_DATA_PEDANTIC : bits == 2 ? SMTP_DATA_FIX : SMTP_DATA_IGNORE;
}

/* Decoder options from the first two bytes of the input. */
static void
opts_from_header(const uint8_t *hdr, struct smtp_data_opts *o)
{
    smtp_data_opts_init(o);
    o->lone_lf_headers = policy_of(hdr[0] & 3);
    o->lone_lf_body = policy_of((hdr[0] >> 2) & 3);
    o->line_length = policy_of((hdr[0] >> 4) & 3);
    o->max_size = (hdr[0] & 0x40) ? 4u * hdr[1] : 0;
    o->max_line = (hdr[0] & 0x80) ? 1u + hdr[1] : SMTP_DATA_LINE_MAX;
}

static void
check_decoder(const uint8_t *hdr, const char *m, size_t len)
{
    struct smtp_data_opts o;
    struct rng r = {((uint32_t)hdr[2] << 8 | hdr[3]) | 1u};
    struct run whole, split;
    size_t end = ref_end(m, len);

    opts_from_header(hdr, &o);

    run_decoder(&o, m, len, NULL, &whole);
    run_decoder(&o, m, len, &r, &split);
    CHECK(whole.done == (end != 0));
    CHECK(whole.consumed == (end ? end : len));
    CHECK(split.done == whole.done && split.consumed == whole.consumed);
    CHECK(split.out_len == whole.out_len && memcmp(split.out, whole.out, whole.out_len) == 0);
    CHECK(same_stats(&split.d.stats, &whole.d.stats));
    CHECK(whole.d.stats.wire == whole.consumed);
    if (o.max_size) {
        CHECK(whole.out_len <= o.max_size);
        CHECK(whole.d.stats.too_big == (whole.d.stats.size > o.max_size));
    }
    if (!whole.d.stats.too_big) {
        CHECK(whole.d.stats.size == whole.out_len);
    }
    if (o.lone_lf_headers != SMTP_DATA_FIX && o.lone_lf_body != SMTP_DATA_FIX &&
        o.line_length != SMTP_DATA_FIX && !whole.d.stats.too_big) {
        char *ref = malloc(len + 1);
        size_t ref_len;

        CHECK(ref != NULL);
        ref_len = ref_unstuff(m, end ? end - 3 : len, ref);
        CHECK(end ? whole.out_len == ref_len : whole.out_len <= ref_len);
        CHECK(memcmp(whole.out, ref, whole.out_len) == 0);
        free(ref);
    }
    if (o.lone_lf_headers == SMTP_DATA_FIX && o.lone_lf_body == SMTP_DATA_FIX) {
        CHECK(no_bare_cr_lf(whole.out, whole.out_len));
    }
    if (o.line_length == SMTP_DATA_FIX) {
        CHECK(lines_within(whole.out, whole.out_len, o.max_line));
    }
    free(whole.out);
    free(split.out);
}

static void
check_round_trip(const uint8_t *hdr, const char *m, size_t len)
{
    struct smtp_data_enc e;
    struct smtp_data_opts o;
    struct rng r = {((uint32_t)hdr[3] << 8 | hdr[2]) | 1u};
    size_t cap = 2 * len + 8, wire_len = 0, pos = 0, norm_len;
    char *wire = malloc(cap), *norm = malloc(cap);
    struct run back;

    CHECK(wire != NULL && norm != NULL);
    smtp_data_enc_init(&e);
    while (pos < len || e.npend) {
        size_t room = rng_size(&r, 7), produced, want = rng_size(&r, 13);

        want = want > len - pos ? len - pos : want;
        CHECK(wire_len + room <= cap);
        pos += smtp_data_encode(&e, strv_make(m + pos, want), wire + wire_len, room, &produced);
        wire_len += produced;
    }
    while (!smtp_data_enc_done(&e)) {
        size_t room = rng_size(&r, 3);

        CHECK(wire_len + room <= cap);
        wire_len += smtp_data_enc_finish(&e, wire + wire_len, room);
    }
    CHECK(ref_end(wire, wire_len) == wire_len);
    CHECK(no_bare_cr_lf(wire, wire_len));

    smtp_data_opts_init(&o);
    o.lone_lf_headers = SMTP_DATA_IGNORE;
    run_decoder(&o, wire, wire_len, &r, &back);
    CHECK(back.done && back.consumed == wire_len);
    norm_len = ref_normalise(m, len, norm);
    CHECK(back.out_len == norm_len && memcmp(back.out, norm, norm_len) == 0);
    free(back.out);
    free(wire);
    free(norm);
}

/* ---- against the reference ---- */

struct diff {
    struct smtp_data_dec d;
    struct ref_smtp_data_dec rd;
    char *out, *ref_out; /* owned: room octets each */
    size_t room;
};

static void
diff_dec_call(struct diff *x, struct strv in, size_t room, size_t *n, size_t *produced)
{
    size_t p2, n2;

    *n = smtp_data_decode(&x->d, in, x->out, room, produced);
    n2 = ref_smtp_data_decode(&x->rd, in, x->ref_out, room, &p2);
    CHECK(*n == n2 && *produced == p2 && memcmp(x->out, x->ref_out, p2) == 0);
    CHECK(x->d.npend == x->rd.npend);
    CHECK(smtp_data_dec_done(&x->d) == ref_smtp_data_dec_done(&x->rd));
    CHECK(same_stats(&x->d.stats, &x->rd.stats));
}

/*
 * Decodes in with the new decoder and the reference side by side: chunk
 * and room sizes from r, or everything at once if r is NULL.
 */
static void
diff_decoder(const struct smtp_data_opts *o, const char *in, size_t len, struct rng *r)
{
    struct diff x = {.room = 4 * len + 64};
    size_t avail = r ? 0 : len, pos = 0;

    x.out = malloc(x.room);
    x.ref_out = malloc(x.room);
    CHECK(x.out != NULL && x.ref_out != NULL);
    smtp_data_dec_init(&x.d, o);
    ref_smtp_data_dec_init(&x.rd, o);
    while (!smtp_data_dec_done(&x.d)) {
        size_t room = r ? rng_span(r, x.room) : x.room, n, produced;

        diff_dec_call(&x, strv_make(in + pos, avail - pos), room, &n, &produced);
        pos += n;
        if (n == 0 && produced == 0) {
            if (avail == len) {
                break;
            }
            avail += r ? rng_span(r, len) : len;
            avail = avail > len ? len : avail;
        }
    }
    while (o->raw && !smtp_data_dec_done(&x.d)) {
        size_t room = r ? rng_span(r, 8) : x.room;
        size_t produced = smtp_data_dec_finish(&x.d, x.out, room);

        CHECK(produced == ref_smtp_data_dec_finish(&x.rd, x.ref_out, room));
        CHECK(memcmp(x.out, x.ref_out, produced) == 0);
        CHECK(smtp_data_dec_done(&x.d) == ref_smtp_data_dec_done(&x.rd));
        CHECK(same_stats(&x.d.stats, &x.rd.stats));
    }
    free(x.out);
    free(x.ref_out);
}

/* Encodes m with the new encoder and the reference side by side. */
static void
diff_encoder(const char *m, size_t len, struct rng *r)
{
    struct smtp_data_enc e;
    struct ref_smtp_data_enc re;
    size_t cap = 2 * len + 8, pos = 0;
    char *out = malloc(cap), *ref_out = malloc(cap);

    CHECK(out != NULL && ref_out != NULL);
    smtp_data_enc_init(&e);
    ref_smtp_data_enc_init(&re);
    while (pos < len || e.npend) {
        size_t want = r ? rng_span(r, len) : len, room = r ? rng_span(r, cap) : cap;
        struct strv part = strv_make(m + pos, want < len - pos ? want : len - pos);
        size_t p1, p2, n1 = smtp_data_encode(&e, part, out, room, &p1);
        size_t n2 = ref_smtp_data_encode(&re, part, ref_out, room, &p2);

        CHECK(n1 == n2 && p1 == p2 && memcmp(out, ref_out, p1) == 0 && e.npend == re.npend);
        pos += n1;
    }
    while (!smtp_data_enc_done(&e)) {
        size_t room = r ? rng_span(r, 8) : cap;
        size_t produced = smtp_data_enc_finish(&e, out, room);

        CHECK(produced == ref_smtp_data_enc_finish(&re, ref_out, room));
        CHECK(memcmp(out, ref_out, produced) == 0);
        CHECK(smtp_data_enc_done(&e) == ref_smtp_data_enc_done(&re));
    }
    free(out);
    free(ref_out);
}

static void
check_against_reference(const uint8_t *hdr, const char *m, size_t len)
{
    struct smtp_data_opts o;
    struct rng r = {((uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 8 | hdr[1]) | 1u};

    opts_from_header(hdr, &o);
    for (int raw = 0; raw < 2; raw++) {
        o.raw = raw;
        diff_decoder(&o, m, len, NULL);
        diff_decoder(&o, m, len, &r);
    }
    diff_encoder(m, len, NULL);
    diff_encoder(m, len, &r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4) {
        return 0;
    }
    check_decoder(data, (const char *)data + 4, size - 4);
    check_round_trip(data, (const char *)data + 4, size - 4);
    check_against_reference(data, (const char *)data + 4, size - 4);
    return 0;
}
