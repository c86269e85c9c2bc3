/*
 * test_smtp_data_fast: the DATA decoder and encoder against the reference.
 *
 * smtp_data.c copies lines in bulk where the byte-at-a-time state machine
 * it replaced would have done nothing special; that machine is kept as
 * smtp_data_ref.c (test code only). Both are driven here over generated
 * inputs (typical mail, line-length and size edges, random mixes of CR, LF,
 * ".", ":", blanks and 8-bit octets), every policy combination, raw mode,
 * and the same random schedule of input chunks and output rooms, and must
 * agree call by call: octets consumed, octets produced and their values,
 * pending output, done, and every statistic. Short strings over a small
 * alphabet are also compared exhaustively.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtp/smtp_data.h"
#include "smtp_data_ref.h"

/* This program is built from this file alone: the reference comes with it. */
#include "smtp_data_ref.c"

#define NELEM(a)  (sizeof(a) / sizeof((a)[0]))
#define ROOM_MAX  70000  /* largest output room per call */
#define INPUT_MAX 300000 /* largest generated input */

struct rng {
    uint64_t s;
};

static uint64_t
rng_next(struct rng *r)
{
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return r->s;
}

/* Uniform in [0, n), n > 0. */
static size_t
rng_below(struct rng *r, size_t n)
{
    return (size_t)(rng_next(r) % n);
}

/* A chunk or room size: mostly tiny or small, sometimes large. */
static size_t
rng_span(struct rng *r)
{
    switch (rng_below(r, 5)) {
    case 0:
        return 1 + rng_below(r, 3);
    case 1:
        return 1 + rng_below(r, 16);
    case 2:
        return 1 + rng_below(r, 200);
    case 3:
        return 1 + rng_below(r, 5000);
    default:
        return 1 + rng_below(r, ROOM_MAX);
    }
}

static char out_new[ROOM_MAX], out_ref[ROOM_MAX];
static char input[INPUT_MAX];

/* ---- generated inputs ---- */

struct gen {
    char *p;
    size_t len, cap;
};

static void
gen_put(struct gen *g, const char *s, size_t n)
{
    n = n < g->cap - g->len ? n : g->cap - g->len;
    memcpy(g->p + g->len, s, n);
    g->len += n;
}

static void
gen_cstr(struct gen *g, const char *s)
{
    gen_put(g, s, strlen(s));
}

/* n octets of line content: letters and blanks, now and then ":" or 8-bit. */
static void
gen_text(struct gen *g, struct rng *r, size_t n, bool odd)
{
    for (size_t i = 0; i < n && g->len < g->cap; i++) {
        size_t k = rng_below(r, 100);
        char c = (char)('a' + rng_below(r, 26));

        if (k < 8) {
            c = k < 6 ? ' ' : '\t';
        } else if (odd && k < 10) {
            c = k == 8 ? ':' : (char)(0x80 + rng_below(r, 128));
        } else if (odd && k == 10) {
            c = '.';
        }
        g->p[g->len++] = c;
    }
}

/* A line length: mostly 60-1000, sometimes near 998, short or very long. */
static size_t
gen_line_len(struct rng *r)
{
    switch (rng_below(r, 10)) {
    case 0:
        return rng_below(r, 12);
    case 1:
        return 990 + rng_below(r, 20);
    case 2:
        return 1000 + rng_below(r, 3000);
    default:
        return 60 + rng_below(r, 941);
    }
}

static const char *
gen_ending(struct rng *r, unsigned odd_percent)
{
    static const char *const odd[] = {"\n", "\r", "\r\r\n", "\n\r", "\r\n\n", ""};

    if (rng_below(r, 100) >= odd_percent) {
        return "\r\n";
    }
    return odd[rng_below(r, NELEM(odd))];
}

/* Mail as it is sent: header fields, an empty line, a body, the end. */
static void
gen_typical(struct gen *g, struct rng *r, size_t body_max)
{
    size_t fields = rng_below(r, 12), target = rng_below(r, body_max + 1);
    unsigned odd = rng_below(r, 3) == 0 ? (unsigned)rng_below(r, 20) : 0;

    if (rng_below(r, 10) == 0) {
        gen_cstr(g, "no header here ");
    }
    for (size_t i = 0; i < fields; i++) {
        gen_cstr(g, rng_below(r, 5) ? "X-Field: " : "\tcontinued ");
        gen_text(g, r, rng_below(r, 5) ? rng_below(r, 120) : gen_line_len(r), odd > 0);
        gen_cstr(g, gen_ending(r, odd));
    }
    gen_cstr(g, "\r\n");
    while (g->len < target && g->len < g->cap) {
        if (rng_below(r, 30) == 0) {
            gen_cstr(g, rng_below(r, 2) ? "." : "..");
        }
        gen_text(g, r, gen_line_len(r), odd > 0);
        gen_cstr(g, gen_ending(r, odd));
    }
    if (rng_below(r, 5)) {
        gen_cstr(g, ".\r\n");
        if (rng_below(r, 2)) {
            gen_cstr(g, "QUIT\r\n");
        }
    }
}

/* Random pieces: line endings, dots, terminators, text of any length. */
static void
gen_chaos(struct gen *g, struct rng *r, size_t max)
{
    static const char *const atoms[] = {"\r",   "\n",    "\r\n",      ".",       "..",
                                        ":",    " ",     "\r\n.\r\n", "\r\n.",   ".\r",
                                        "\xff", "\x80.", "\r\r",      "\n\n",    "\r\n\r\n",
                                        "A:",   "a b:",  "\r\n ",     "\n.\r\n", "\r\n..\r\n"};
    size_t target = rng_below(r, max + 1);

    while (g->len < target && g->len < g->cap) {
        if (rng_below(r, 3) == 0) {
            gen_text(g, r, rng_below(r, 4) ? rng_below(r, 20) : gen_line_len(r), true);
        } else {
            gen_cstr(g, atoms[rng_below(r, NELEM(atoms))]);
        }
    }
}

static size_t
gen_input(struct rng *r)
{
    struct gen g = {input, 0, INPUT_MAX};

    switch (rng_below(r, 8)) {
    case 0:
        gen_typical(&g, r, 200000);
        break;
    case 1:
    case 2:
        gen_chaos(&g, r, rng_below(r, 2) ? 64 : 4000);
        break;
    default:
        gen_typical(&g, r, rng_below(r, 2) ? 300 : 10000);
        break;
    }
    return g.len;
}

static enum smtp_data_policy
gen_policy(struct rng *r)
{
    static const enum smtp_data_policy p[] = {SMTP_DATA_IGNORE, SMTP_DATA_PEDANTIC, SMTP_DATA_FIX};

    return p[rng_below(r, NELEM(p))];
}

static void
gen_opts(struct rng *r, size_t len, struct smtp_data_opts *o)
{
    static const size_t lines[] = {0, 1, 2, 3, 10, 76, 78, 998, 1000};

    smtp_data_opts_init(o);
    o->lone_lf_headers = gen_policy(r);
    o->lone_lf_body = gen_policy(r);
    o->line_length = gen_policy(r);
    o->max_line = rng_below(r, 4) ? lines[rng_below(r, NELEM(lines))] : 1 + rng_below(r, 1100);
    o->max_size = rng_below(r, 2) ? 0 : 1 + rng_below(r, len + 16);
    o->allow_missing_headers = rng_below(r, 2);
    o->raw = rng_below(r, 4) == 0;
}

/* ---- comparison ---- */

static bool
same_stats(const struct smtp_data_stats *a, const struct smtp_data_stats *b)
{
    return a->size == b->size && a->wire == b->wire && a->has_headers == b->has_headers &&
           a->too_big == b->too_big && memcmp(&a->header, &b->header, sizeof(a->header)) == 0 &&
           memcmp(&a->body, &b->body, sizeof(a->body)) == 0;
}

static void
fail_case(const char *what, uint64_t seed, const struct smtp_data_opts *o, size_t call)
{
    fail_msg("%s differs: seed %llu call %zu (lf %d/%d, line %d max %zu, size %llu, raw %d)", what,
             (unsigned long long)seed, call, o->lone_lf_headers, o->lone_lf_body, o->line_length,
             o->max_line, (unsigned long long)o->max_size, o->raw);
}

/* One call of each; true if the new decoder made progress. */
static bool
dec_compare_call(struct smtp_data_dec *d, struct ref_smtp_data_dec *rd, struct strv in, size_t room,
                 size_t *consumed, uint64_t seed, size_t call)
{
    size_t p1, p2;
    size_t n1 = smtp_data_decode(d, in, out_new, room, &p1);
    size_t n2 = ref_smtp_data_decode(rd, in, out_ref, room, &p2);

    if (n1 != n2 || p1 != p2 || memcmp(out_new, out_ref, p1) != 0 || d->npend != rd->npend ||
        smtp_data_dec_done(d) != ref_smtp_data_dec_done(rd) || !same_stats(&d->stats, &rd->stats)) {
        fail_case("decode", seed, &d->opts, call);
    }
    *consumed = n1;
    return n1 > 0 || p1 > 0;
}

static void
dec_compare_finish(struct smtp_data_dec *d, struct ref_smtp_data_dec *rd, struct rng *r,
                   uint64_t seed)
{
    for (size_t call = 0; !smtp_data_dec_done(d) || !ref_smtp_data_dec_done(rd); call++) {
        size_t room = rng_span(r);
        size_t p1 = smtp_data_dec_finish(d, out_new, room);
        size_t p2 = ref_smtp_data_dec_finish(rd, out_ref, room);

        if (p1 != p2 || memcmp(out_new, out_ref, p1) != 0 || !same_stats(&d->stats, &rd->stats) ||
            smtp_data_dec_done(d) != ref_smtp_data_dec_done(rd)) {
            fail_case("finish", seed, &d->opts, call);
        }
    }
}

/*
 * Decodes in[0, len) with both, making input available in random chunks
 * and giving random rooms; raw mode ends with finish().
 */
static void
dec_compare(const struct smtp_data_opts *o, const char *in, size_t len, struct rng *r,
            uint64_t seed)
{
    struct smtp_data_dec d;
    struct ref_smtp_data_dec rd;
    size_t pos = 0, avail = 0;

    smtp_data_dec_init(&d, o);
    ref_smtp_data_dec_init(&rd, o);
    for (size_t call = 0;; call++) {
        size_t n, room = rng_span(r);
        bool progress =
            dec_compare_call(&d, &rd, strv_make(in + pos, avail - pos), room, &n, seed, call);

        pos += n;
        if (smtp_data_dec_done(&d)) {
            dec_compare_call(&d, &rd, strv_make(in + pos, len - pos), room, &n, seed, call + 1);
            assert_int_equal(n, 0); /* nothing after the end */
            break;
        }
        if (!progress || rng_below(r, 4) == 0) {
            if (!progress && avail == len) {
                break;
            }
            size_t more = rng_span(r);

            avail = len - avail < more ? len : avail + more;
        }
    }
    assert_int_equal(d.stats.wire, pos);
    if (o->raw) {
        dec_compare_finish(&d, &rd, r, seed);
    }
}

static void
enc_compare(const char *in, size_t len, struct rng *r, uint64_t seed)
{
    struct smtp_data_opts o; /* for fail_case() */
    struct smtp_data_enc e;
    struct ref_smtp_data_enc re;
    size_t pos = 0, call = 0;

    smtp_data_opts_init(&o);
    smtp_data_enc_init(&e);
    ref_smtp_data_enc_init(&re);
    for (; pos < len || e.npend > 0; call++) {
        size_t want = rng_span(r), room = rng_span(r), p1, p2, n1, n2;
        struct strv in_part = strv_make(in + pos, want < len - pos ? want : len - pos);

        n1 = smtp_data_encode(&e, in_part, out_new, room, &p1);
        n2 = ref_smtp_data_encode(&re, in_part, out_ref, room, &p2);
        if (n1 != n2 || p1 != p2 || memcmp(out_new, out_ref, p1) != 0 || e.npend != re.npend) {
            fail_case("encode", seed, &o, call);
        }
        pos += n1;
    }
    for (; !smtp_data_enc_done(&e) || !ref_smtp_data_enc_done(&re); call++) {
        size_t room = rng_span(r) % 8 + 1;
        size_t p1 = smtp_data_enc_finish(&e, out_new, room);
        size_t p2 = ref_smtp_data_enc_finish(&re, out_ref, room);

        if (p1 != p2 || memcmp(out_new, out_ref, p1) != 0 ||
            smtp_data_enc_done(&e) != ref_smtp_data_enc_done(&re)) {
            fail_case("encode finish", seed, &o, call);
        }
    }
}

/* ---- tests ---- */

/* Generated inputs, each decoded under several random option sets and encoded. */
static void
test_random_inputs(void **state)
{
    size_t bytes = 0;

    (void)state;
    for (uint64_t seed = 1; seed <= 2500; seed++) {
        struct rng r = {seed * 0x9e3779b97f4a7c15u};
        size_t len = gen_input(&r);

        for (int k = 0; k < 6; k++) {
            struct smtp_data_opts o;

            gen_opts(&r, len, &o);
            dec_compare(&o, input, len, &r, seed);
        }
        enc_compare(input, len, &r, seed);
        bytes += len;
    }
    print_message("compared %zu input octets\n", bytes);
}

/*
 * Typical mail under every policy combination, max_line and max_size near
 * the line and message lengths, with the room sizes celerd uses.
 */
static void
test_every_policy(void **state)
{
    static const enum smtp_data_policy p[] = {SMTP_DATA_IGNORE, SMTP_DATA_PEDANTIC, SMTP_DATA_FIX};
    static const size_t lines[] = {1, 2, 77, 998};
    struct rng r = {42};

    (void)state;
    for (size_t i = 0; i < 27 * NELEM(lines) * 2 * 2; i++) {
        struct smtp_data_opts o;
        size_t len = gen_input(&r), x = i;

        smtp_data_opts_init(&o);
        o.lone_lf_headers = p[x % 3];
        x /= 3;
        o.lone_lf_body = p[x % 3];
        x /= 3;
        o.line_length = p[x % 3];
        x /= 3;
        o.max_line = lines[x % NELEM(lines)];
        x /= NELEM(lines);
        o.raw = x % 2;
        x /= 2;
        o.max_size = x % 2 ? len / 2 + rng_below(&r, len / 2 + 4) : 0;
        dec_compare(&o, input, len, &r, i);
    }
}

static const char alphabet[] = {'\r', '\n', '.', 'a', ':'};

/* All strings of up to 6 octets over CR LF . a :, all octets or one at a time. */
static void
test_exhaustive_short(void **state)
{
    static const size_t lines[] = {1, 2, 998};

    (void)state;
    for (size_t len = 0; len <= 6; len++) {
        size_t count = 1;

        for (size_t i = 0; i < len; i++) {
            count *= NELEM(alphabet);
        }
        for (size_t code = 0; code < count; code++) {
            char s[8];
            size_t c = code;

            for (size_t i = 0; i < len; i++, c /= NELEM(alphabet)) {
                s[i] = alphabet[c % NELEM(alphabet)];
            }
            for (size_t v = 0; v < 2 * 2 * NELEM(lines) * 2 * 2; v++) {
                struct smtp_data_opts o;
                struct rng r = {code * 31 + v + 1};
                size_t x = v;

                smtp_data_opts_init(&o);
                o.lone_lf_headers = x % 2 ? SMTP_DATA_FIX : SMTP_DATA_IGNORE;
                o.lone_lf_body = (x /= 2) % 2 ? SMTP_DATA_FIX : SMTP_DATA_IGNORE;
                o.line_length = SMTP_DATA_FIX;
                o.max_line = lines[(x /= 2) % NELEM(lines)];
                o.raw = (x /= NELEM(lines)) % 2;
                o.max_size = (x / 2) % 2 ? 3 : 0;
                dec_compare(&o, s, len, &r, code);
            }
            {
                struct rng r = {code + 1};

                enc_compare(s, len, &r, code);
            }
        }
    }
}

/* Encodes in whole with try_smtp_data_encode_buf() and with the reference, 4096 at a time. */
static void
large_encode(const char *in, size_t len)
{
    static char wire[2 * INPUT_MAX + 8];
    struct smtp_data_enc e;
    struct ref_smtp_data_enc re;
    struct buf a;
    size_t i = 0, n = 0;

    buf_init(&a, sizeof(wire));
    smtp_data_enc_init(&e);
    assert_int_equal(try_smtp_data_encode_buf(&e, strv_make(in, len), true, &a), 0);
    ref_smtp_data_enc_init(&re);
    while (i < len || re.npend) {
        size_t produced;

        i += ref_smtp_data_encode(&re, strv_make(in + i, len - i), wire + n, 4096, &produced);
        n += produced;
    }
    while (!ref_smtp_data_enc_done(&re)) {
        n += ref_smtp_data_enc_finish(&re, wire + n, 4096);
    }
    assert_int_equal(buf_len(&a), n);
    assert_memory_equal(buf_data(&a).ptr, wire, n);
    buf_release(&a);
}

/* Large typical messages in the chunks and rooms celerd uses. */
static void
test_large_messages(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 20; seed++) {
        struct rng r = {seed};
        struct gen g = {input, 0, INPUT_MAX};
        struct smtp_data_opts o;
        struct smtp_data_dec d;
        struct ref_smtp_data_dec rd;
        size_t pos = 0;

        gen_typical(&g, &r, 250000);
        smtp_data_opts_init(&o);
        o.max_size = seed % 2 ? 0 : g.len / 2;
        smtp_data_dec_init(&d, &o);
        ref_smtp_data_dec_init(&rd, &o);
        for (size_t call = 0; pos < g.len && !smtp_data_dec_done(&d); call++) {
            size_t n, avail = g.len - pos < 16384 ? g.len - pos : 16384;

            if (!dec_compare_call(&d, &rd, strv_make(input + pos, avail), 65536, &n, seed, call)) {
                break;
            }
            pos += n;
        }
        large_encode(input, g.len);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_inputs),
        cmocka_unit_test(test_every_policy),
        cmocka_unit_test(test_exhaustive_short),
        cmocka_unit_test(test_large_messages),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
