/*
 * test_smtp_data: the DATA decoder and encoder.
 *
 * The decoder is checked for SMTP-smuggling safety (every bare-LF/bare-CR
 * dot variant is data; the end is found only at CR LF "." CR LF, with the
 * input split at every position), dot-unstuffing, pipelined commands after
 * the terminator, the size limit, the lone-LF and line-length policies and
 * the header/body accounting. Exhaustive runs over all short strings of
 * CR, LF, "." and "a" compare it with a straightforward reference and check
 * decode(encode(M)) == M with line endings made CRLF.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtp/smtp_data.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define OUT_MAX  8192

struct dec_result {
    struct smtp_data_dec d;
    char out[OUT_MAX];
    size_t out_len;
    size_t consumed;
    bool done;
};

/*
 * Decodes in, making chunk more octets available whenever the decoder
 * wants more, with room octets of output space per call.
 */
static void
decode_chunked(const struct smtp_data_opts *o, const char *in, size_t len, size_t chunk,
               size_t room, struct dec_result *res)
{
    size_t avail = 0, pos = 0;
    char tmp[OUT_MAX];

    assert_true(room <= sizeof(tmp));
    smtp_data_dec_init(&res->d, o);
    res->out_len = 0;
    while (!smtp_data_dec_done(&res->d)) {
        size_t produced;
        size_t n =
            smtp_data_decode(&res->d, strv_make(in + pos, avail - pos), tmp, room, &produced);

        assert_true(res->out_len + produced <= OUT_MAX);
        memcpy(res->out + res->out_len, tmp, produced);
        res->out_len += produced;
        pos += n;
        if (n == 0 && produced == 0) {
            if (avail == len) {
                break;
            }
            avail = len - avail < chunk ? len : avail + chunk;
        }
    }
    res->consumed = pos;
    res->done = smtp_data_dec_done(&res->d);
    assert_int_equal(res->d.stats.wire, pos);
}

static void
opts_ignore(struct smtp_data_opts *o)
{
    smtp_data_opts_init(o);
    o->lone_lf_headers = SMTP_DATA_IGNORE;
    o->allow_missing_headers = true;
}

static void
assert_out(const struct dec_result *r, const char *want, size_t want_len)
{
    if (r->out_len != want_len || memcmp(r->out, want, want_len) != 0) {
        fail_msg("output %zu octets, want %zu", r->out_len, want_len);
    }
}

static void
test_empty_and_simple(void **state)
{
    struct smtp_data_opts o;
    struct dec_result r;
    static const char msg[] = "Subject: a\r\n\r\nhello\r\n.\r\n";

    (void)state;
    smtp_data_opts_init(&o);
    decode_chunked(&o, ".\r\n", 3, 100, 100, &r);
    assert_true(r.done);
    assert_int_equal(r.consumed, 3);
    assert_int_equal(r.out_len, 0);
    assert_false(r.d.stats.has_headers);

    decode_chunked(&o, msg, sizeof(msg) - 1, 100, 100, &r);
    assert_true(r.done);
    assert_int_equal(r.consumed, sizeof(msg) - 1);
    assert_out(&r, "Subject: a\r\n\r\nhello\r\n", 21);
    assert_true(r.d.stats.has_headers);
    assert_int_equal(r.d.stats.size, 21);
    assert_int_equal(r.d.stats.header.lines, 2);
    assert_int_equal(r.d.stats.body.lines, 1);
    assert_int_equal(r.d.stats.header.longest, 10);
    assert_int_equal(r.d.stats.body.longest, 5);
}

/* Each variant sits between "body" and "more": none of them ends the data. */
static void
test_smuggling_variants(void **state)
{
    static const struct {
        const char *variant;
        const char *stored;
    } cases[] = {
        {"\n.\n", "\n.\n"},
        {"\r.\r", "\r.\r"},
        {"\n.\r\n", "\n.\r\n"},
        {"\r\n.\n", "\r\n.\n"},
        {"\r\n.\r", "\r\n.\r"},
        {"\r.\r\n", "\r.\r\n"},
        {"\r.\n", "\r.\n"},
        {"\n.\r", "\n.\r"},
        {"\r\n.\r\r\n", "\r\n.\r\r\n"},
        {"\r\n\n.\n", "\r\n\n.\n"},
        {"\n\r.\r\n", "\n\r.\r\n"},
        {"\r\n\r.\r\n", "\r\n\r.\r\n"},
        {"\r\r\n.\n", "\r\r\n.\n"},
        {"\r\n .\r\n", "\r\n .\r\n"},
        {"\r\n..\r\n", "\r\n.\r\n"}, /* stuffed: a "." line of the message */
        {"\n..\n", "\n.\n"},
        {"\r\n.\r.\r\n", "\r\n.\r.\r\n"},
    };
    static const size_t chunks[] = {1, 2, 3, 5, 7, 4096};
    static const size_t rooms[] = {1, 2, 4096};

    (void)state;
    for (size_t i = 0; i < NELEM(cases); i++) {
        char in[256], want[256];
        int in_len = snprintf(in, sizeof(in), "Subject: x\r\n\r\nbody%smore\r\n.\r\nQUIT\r\n",
                              cases[i].variant);
        int want_len =
            snprintf(want, sizeof(want), "Subject: x\r\n\r\nbody%smore\r\n", cases[i].stored);

        for (size_t c = 0; c < NELEM(chunks); c++) {
            for (size_t k = 0; k < NELEM(rooms); k++) {
                struct smtp_data_opts o;
                struct dec_result r;

                smtp_data_opts_init(&o);
                decode_chunked(&o, in, (size_t)in_len, chunks[c], rooms[k], &r);
                if (!r.done || r.consumed != (size_t)in_len - 6) {
                    fail_msg("variant %zu chunk %zu room %zu: done %d consumed %zu", i, chunks[c],
                             rooms[k], r.done, r.consumed);
                }
                assert_out(&r, want, (size_t)want_len);
            }
        }
    }
}

/* The smuggling variants alone never end the data. */
static void
test_variants_alone_never_end(void **state)
{
    static const char *const variants[] = {
        "a\n.\n",   "a\r.\r",  "a\n.\r\n",    "a\r\n.\n",    "a\r\n.\r",
        "a\r.\r\n", "\n.\n",   "\r.\r",       ".\n",         ".\r",
        ".\r\r\n",  "\n.\r\n", "a\r\n..\r\n", "a\r\n.x\r\n", "a\r\n.\r.\r\n",
    };

    (void)state;
    for (size_t i = 0; i < NELEM(variants); i++) {
        struct smtp_data_opts o;
        struct dec_result r;

        opts_ignore(&o);
        decode_chunked(&o, variants[i], strlen(variants[i]), 1, 1, &r);
        if (r.done) {
            fail_msg("variant %zu ended the data", i);
        }
        assert_int_equal(r.consumed, strlen(variants[i]));
    }
}

/* The terminator split at every position, and at every pair of positions. */
static void
test_terminator_at_every_split(void **state)
{
    static const char in[] = "Subject: a\r\n\r\nhi\r\n.\r\nMAIL FROM:<a@b>\r\n";
    static const char want[] = "Subject: a\r\n\r\nhi\r\n";
    const size_t len = sizeof(in) - 1, end = 21;

    (void)state;
    for (size_t s1 = 0; s1 <= len; s1++) {
        for (size_t s2 = s1; s2 <= len; s2++) {
            struct smtp_data_opts o;
            struct smtp_data_dec d;
            const size_t cuts[] = {s1, s2, len};
            size_t pos = 0, out_len = 0;
            char out[64];

            smtp_data_opts_init(&o);
            smtp_data_dec_init(&d, &o);
            for (size_t c = 0; c < NELEM(cuts) && !smtp_data_dec_done(&d); c++) {
                for (;;) { /* drain what is available up to this cut */
                    size_t produced;
                    size_t n = smtp_data_decode(&d, strv_make(in + pos, cuts[c] - pos),
                                                out + out_len, sizeof(out) - out_len, &produced);

                    pos += n;
                    out_len += produced;
                    if ((n == 0 && produced == 0) || smtp_data_dec_done(&d)) {
                        break;
                    }
                }
            }
            assert_true(smtp_data_dec_done(&d));
            assert_int_equal(pos, end); /* the pipelined MAIL stays in the input */
            assert_int_equal(out_len, sizeof(want) - 1);
            assert_memory_equal(out, want, out_len);
        }
    }
}

static void
test_pipelined_after_terminator(void **state)
{
    static const char in[] = "a: b\r\n\r\nx\r\n.\r\nRSET\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n";
    struct smtp_data_opts o;
    struct smtp_data_dec d;
    char out[64];
    size_t produced, n;

    (void)state;
    smtp_data_opts_init(&o);
    smtp_data_dec_init(&d, &o);
    n = smtp_data_decode(&d, strv_make(in, sizeof(in) - 1), out, sizeof(out), &produced);
    assert_true(smtp_data_dec_done(&d));
    assert_int_equal(n, 14);
    assert_memory_equal(in + n, "RSET\r\n", 6);
    assert_int_equal(produced, 11);
    /* once done, nothing more is consumed */
    assert_int_equal(smtp_data_decode(&d, strv_make(in + n, 6), out, sizeof(out), &produced), 0);
    assert_int_equal(produced, 0);
}

static void
test_unstuffing(void **state)
{
    static const struct {
        const char *in;
        const char *out;
    } cases[] = {
        {"..foo\r\n.\r\n", ".foo\r\n"},
        {"...\r\n.\r\n", "..\r\n"},
        {"..\r\n.\r\n", ".\r\n"},
        {"a\r\n..b\r\n.\r\n", "a\r\n.b\r\n"},
        {"a\n..b\r\n.\r\n", "a\n.b\r\n"},  /* a bare LF starts a line for unstuffing */
        {"a\r..b\r\n.\r\n", "a\r..b\r\n"}, /* a bare CR does not */
        {"a\r\n.b\r\n.\r\n", "a\r\nb\r\n"},
        {"a.\r\n.b.\r\n.\r\n", "a.\r\nb.\r\n"},
        {".\n.\r\n.\r\n", ".\n.\r\n"},
        {".\r.\r\n.\r\n", ".\r.\r\n"},
        {"\r\n.\r\n", "\r\n"},
        {"\n.\r\n.\r\n", "\n.\r\n"}, /* the first is not an end */
    };

    (void)state;
    for (size_t i = 0; i < NELEM(cases); i++) {
        struct smtp_data_opts o;
        struct dec_result r;
        const char *in = cases[i].in;

        opts_ignore(&o);
        decode_chunked(&o, in, strlen(in), 1, 3, &r);
        assert_true(r.done);
        assert_int_equal(r.consumed, strlen(in));
        assert_out(&r, cases[i].out, strlen(cases[i].out));
    }
}

static void
test_size_limit(void **state)
{
    static const char in[] = "Subject: x\r\n\r\nabcdefghij\r\n.\r\nNOOP\r\n";
    static const struct {
        uint64_t max;
        bool too_big;
    } cases[] = {{0, false}, {26, false}, {25, true}, {20, true}, {1, true}};

    (void)state;
    for (size_t i = 0; i < NELEM(cases); i++) {
        struct smtp_data_opts o;
        struct dec_result r;
        struct smtp_reply rep;

        smtp_data_opts_init(&o);
        o.max_size = cases[i].max;
        decode_chunked(&o, in, sizeof(in) - 1, 4, 4, &r);
        assert_true(r.done);
        assert_int_equal(r.consumed, sizeof(in) - 1 - 6); /* NOOP left for the session */
        assert_int_equal(r.d.stats.size, 26);
        assert_int_equal(r.d.stats.too_big, cases[i].too_big);
        if (cases[i].too_big) {
            assert_true(r.out_len <= cases[i].max);
            assert_int_equal(smtp_data_dec_check(&r.d, &rep), CELER_EPROTO);
            assert_int_equal(rep.code, 552);
            assert_string_equal(rep.enh, "5.3.4");
        } else {
            assert_int_equal(r.out_len, 26);
            assert_int_equal(smtp_data_dec_check(&r.d, &rep), 0);
        }
    }
}

static void
test_lone_lf_policies(void **state)
{
    static const char in[] = "Subject: a\nFrom: b\r\n\r\nbody\nline\r\n.\r\n";
    struct smtp_data_opts o;
    struct dec_result r;
    struct smtp_reply rep;

    (void)state;
    smtp_data_opts_init(&o); /* headers pedantic, body ignore */
    decode_chunked(&o, in, sizeof(in) - 1, 3, 5, &r);
    assert_out(&r, in, sizeof(in) - 1 - 3);
    assert_int_equal(r.d.stats.header.bare_lf, 1);
    assert_int_equal(r.d.stats.body.bare_lf, 1);
    assert_int_equal(smtp_data_dec_check(&r.d, &rep), CELER_EPROTO);
    assert_int_equal(rep.code, 550);
    assert_string_equal(rep.enh, "5.6.0");
    assert_true(strstr(rep.text.ptr, "headers") != NULL);

    o.lone_lf_headers = SMTP_DATA_IGNORE;
    o.lone_lf_body = SMTP_DATA_PEDANTIC;
    decode_chunked(&o, in, sizeof(in) - 1, 3, 5, &r);
    assert_int_equal(smtp_data_dec_check(&r.d, &rep), CELER_EPROTO);
    assert_int_equal(rep.code, 550);
    assert_true(strstr(rep.text.ptr, "body") != NULL);

    o.lone_lf_headers = SMTP_DATA_FIX;
    o.lone_lf_body = SMTP_DATA_FIX;
    decode_chunked(&o, in, sizeof(in) - 1, 3, 5, &r);
    assert_out(&r, "Subject: a\r\nFrom: b\r\n\r\nbody\r\nline\r\n", 35);
    assert_int_equal(r.d.stats.header.bare_lf, 1);
    assert_int_equal(smtp_data_dec_check(&r.d, &rep), 0);

    /* fix in the body only: the header's bare LF is kept */
    o.lone_lf_headers = SMTP_DATA_IGNORE;
    decode_chunked(&o, in, sizeof(in) - 1, 1, 1, &r);
    assert_out(&r, "Subject: a\nFrom: b\r\n\r\nbody\r\nline\r\n", 34);
}

static void
test_lone_cr_policies(void **state)
{
    static const char in[] = "Subject: a\rb\r\n\r\nx\ry\r\n.\r\n";
    struct smtp_data_opts o;
    struct dec_result r;
    struct smtp_reply rep;

    (void)state;
    opts_ignore(&o);
    decode_chunked(&o, in, sizeof(in) - 1, 1, 2, &r);
    assert_out(&r, in, sizeof(in) - 1 - 3);
    assert_int_equal(r.d.stats.header.bare_cr, 1);
    assert_int_equal(r.d.stats.body.bare_cr, 1);
    assert_int_equal(r.d.stats.header.longest, 12);

    o.lone_lf_headers = SMTP_DATA_FIX;
    o.lone_lf_body = SMTP_DATA_FIX;
    decode_chunked(&o, in, sizeof(in) - 1, 1, 2, &r);
    assert_out(&r, "Subject: a\r\nb\r\n\r\nx\r\ny\r\n", 23);

    smtp_data_opts_init(&o);
    decode_chunked(&o, in, sizeof(in) - 1, 1, 2, &r);
    assert_int_equal(smtp_data_dec_check(&r.d, &rep), CELER_EPROTO);
    assert_int_equal(rep.code, 550);
}

static void
test_sections_with_bare_lf(void **state)
{
    static const char in[] = "Subject: a\n\nbody\n\r\n.\r\n";
    struct smtp_data_opts o;
    struct dec_result r;

    (void)state;
    opts_ignore(&o);
    decode_chunked(&o, in, sizeof(in) - 1, 2, 7, &r);
    assert_true(r.done);
    assert_int_equal(r.d.stats.header.bare_lf, 2);
    assert_int_equal(r.d.stats.header.lines, 2);
    assert_int_equal(r.d.stats.body.bare_lf, 1);
    assert_int_equal(r.d.stats.body.lines, 2);
}

static void
test_line_length(void **state)
{
    static const char in[] = "Subject: 0123456789\r\n\r\n0123456789012345678901234\r\n"
                             "0123456789\r\n.\r\n";
    static const char fixed[] = "Subject: 0\r\n 123456789\r\n\r\n0123456789\r\n0123456789\r\n"
                                "01234\r\n0123456789\r\n";
    struct smtp_data_opts o;
    struct dec_result r;
    struct smtp_reply rep;

    (void)state;
    opts_ignore(&o);
    o.max_line = 10;
    decode_chunked(&o, in, sizeof(in) - 1, 4096, 4096, &r);
    assert_out(&r, in, sizeof(in) - 1 - 3);
    assert_int_equal(r.d.stats.header.long_lines, 1);
    assert_int_equal(r.d.stats.header.longest, 19);
    assert_int_equal(r.d.stats.body.long_lines, 1); /* exactly 10 is not long */
    assert_int_equal(r.d.stats.body.longest, 25);
    assert_int_equal(smtp_data_dec_check(&r.d, &rep), 0);

    o.line_length = SMTP_DATA_PEDANTIC;
    decode_chunked(&o, in, sizeof(in) - 1, 4096, 4096, &r);
    assert_int_equal(smtp_data_dec_check(&r.d, &rep), CELER_EPROTO);
    assert_string_equal(rep.enh, "5.6.0");
    assert_true(strstr(rep.text.ptr, "header") != NULL);

    o.line_length = SMTP_DATA_FIX;
    for (size_t chunk = 1; chunk < 40; chunk += 7) {
        decode_chunked(&o, in, sizeof(in) - 1, chunk, chunk, &r);
        assert_out(&r, fixed, sizeof(fixed) - 1);
        assert_int_equal(r.d.stats.body.long_lines, 1); /* as received */
    }
}

static void
test_header_detection(void **state)
{
    static const struct {
        const char *in;
        bool has_headers;
    } cases[] = {
        {"Subject: x\r\n\r\nb\r\n.\r\n", true},
        {"Subject : x\r\n.\r\n", true},
        {"X-A:\r\n.\r\n", true},
        {"hello world\r\n.\r\n", false},
        {"\r\nbody\r\n.\r\n", false},
        {"From foo@bar\r\n.\r\n", false},
        {":x\r\n.\r\n", false},
        {"Subject\r\n.\r\n", false},
        {".\r\n", false},
        {"Sub\xc3\xa9ject: x\r\n.\r\n", false},
    };

    (void)state;
    for (size_t i = 0; i < NELEM(cases); i++) {
        struct smtp_data_opts o;
        struct dec_result r;

        smtp_data_opts_init(&o);
        decode_chunked(&o, cases[i].in, strlen(cases[i].in), 1, 4096, &r);
        assert_true(r.done);
        if (r.d.stats.has_headers != cases[i].has_headers) {
            fail_msg("case %zu: has_headers %d", i, r.d.stats.has_headers);
        }
    }
}

static void
test_missing_headers(void **state)
{
    static const char in[] = "hello\nworld\r\n.\r\n";
    struct smtp_data_opts o;
    struct dec_result r;
    struct smtp_reply rep;

    (void)state;
    smtp_data_opts_init(&o); /* headers pedantic, but there is no header section */
    decode_chunked(&o, in, sizeof(in) - 1, 1, 1, &r);
    assert_int_equal(r.d.stats.header.bare_lf, 0);
    assert_int_equal(r.d.stats.body.bare_lf, 1);
    assert_int_equal(r.d.stats.header.lines, 0);
    assert_int_equal(smtp_data_dec_check(&r.d, &rep), CELER_EPROTO);
    assert_int_equal(rep.code, 550);
    assert_true(strstr(rep.text.ptr, "header section") != NULL);
    o.allow_missing_headers = true;
    decode_chunked(&o, in, sizeof(in) - 1, 1, 1, &r);
    assert_int_equal(smtp_data_dec_check(&r.d, &rep), 0);
    assert_int_equal(rep.code, 0);
}

static void
test_raw_mode(void **state)
{
    static const char in[] = "Subject: a\r\n\r\n.hello\r\n.\r\nx\r";
    struct smtp_data_opts o;
    struct smtp_data_dec d;
    char out[64];
    size_t produced, n, total = 0;

    (void)state;
    opts_ignore(&o);
    o.raw = true;
    smtp_data_dec_init(&d, &o);
    for (size_t i = 0; i < sizeof(in) - 1; i++) { /* one octet at a time */
        n = smtp_data_decode(&d, strv_make(in + i, 1), out + total, sizeof(out) - total, &produced);
        assert_int_equal(n, 1);
        total += produced;
    }
    assert_false(smtp_data_dec_done(&d));
    assert_int_equal(total, sizeof(in) - 2); /* the final CR is pending */
    total += smtp_data_dec_finish(&d, out + total, sizeof(out) - total);
    assert_true(smtp_data_dec_done(&d));
    assert_int_equal(total, sizeof(in) - 1);
    assert_memory_equal(out, in, total);
    assert_int_equal(d.stats.body.bare_cr, 1);
    assert_int_equal(d.stats.body.lines, 3);

    /* FIX turns the trailing CR into CR LF; room 1 needs several finish calls */
    o.lone_lf_body = SMTP_DATA_FIX;
    smtp_data_dec_init(&d, &o);
    n = smtp_data_decode(&d, STRV_LIT("a: b\r\n\r\nx\r"), out, sizeof(out), &produced);
    assert_int_equal(n, 10);
    total = produced;
    while (!smtp_data_dec_done(&d)) {
        total += smtp_data_dec_finish(&d, out + total, 1);
    }
    assert_int_equal(total, 11);
    assert_memory_equal(out, "a: b\r\n\r\nx\r\n", 11);
}

static void
test_encoder_table(void **state)
{
    static const struct {
        const char *in;
        const char *wire;
    } cases[] = {
        {"", ".\r\n"},
        {"a", "a\r\n.\r\n"},
        {"a\r\n", "a\r\n.\r\n"},
        {"a\n", "a\r\n.\r\n"},
        {"a\r", "a\r\n.\r\n"},
        {".a\n.\n", "..a\r\n..\r\n.\r\n"},
        {"\r\n.\r\n", "\r\n..\r\n.\r\n"},
        {"a\r\r\nb", "a\r\n\r\nb\r\n.\r\n"},
        {"\n.\n", "\r\n..\r\n.\r\n"},
        {"a\n\rb", "a\r\n\r\nb\r\n.\r\n"},
        {".\r.\r", "..\r\n..\r\n.\r\n"},
        {"a.b\r\n.", "a.b\r\n..\r\n.\r\n"},
        {"x\r\n\r\n", "x\r\n\r\n.\r\n"},
    };

    (void)state;
    for (size_t i = 0; i < NELEM(cases); i++) {
        const char *in = cases[i].in;
        size_t len = strlen(in), wlen = strlen(cases[i].wire);
        struct smtp_data_enc e;
        struct buf b;
        char out[64];
        size_t total = 0, pos = 0;

        buf_init(&b, 1024);
        smtp_data_enc_init(&e);
        assert_int_equal(try_smtp_data_encode_buf(&e, strv_make(in, len), true, &b), 0);
        assert_true(smtp_data_enc_done(&e));
        assert_int_equal(buf_len(&b), wlen);
        assert_memory_equal(buf_data(&b).ptr, cases[i].wire, wlen);
        buf_release(&b);

        /* one octet in, one octet of room per call */
        smtp_data_enc_init(&e);
        while (pos < len || e.npend) {
            size_t produced;

            pos += smtp_data_encode(&e, strv_make(in + pos, pos < len ? 1 : 0), out + total, 1,
                                    &produced);
            total += produced;
        }
        while (!smtp_data_enc_done(&e)) {
            total += smtp_data_enc_finish(&e, out + total, 1);
        }
        assert_int_equal(total, wlen);
        assert_memory_equal(out, cases[i].wire, wlen);
    }
}

/* ---- exhaustive properties over short strings ---- */

static const char alphabet[] = {'\r', '\n', '.', 'a'};

/* Where the data must end (octets consumed), or 0 if it must not. */
static size_t
ref_end(const char *s, size_t len)
{
    if (len >= 3 && memcmp(s, ".\r\n", 3) == 0) {
        return 3;
    }
    for (size_t i = 0; i + 5 <= len; i++) {
        if (memcmp(s + i, "\r\n.\r\n", 5) == 0) {
            return i + 5;
        }
    }
    return 0;
}

/* Reference unstuffing: a "." after the start or an LF, followed by neither CR nor LF, goes. */
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

static void
make_string(unsigned long code, size_t len, char *s)
{
    for (size_t i = 0; i < len; i++) {
        s[i] = alphabet[code % 4];
        code /= 4;
    }
}

static void
test_exhaustive_decode(void **state)
{
    (void)state;
    for (size_t len = 0; len <= 8; len++) {
        unsigned long count = 1ul << (2 * len);

        for (unsigned long code = 0; code < count; code++) {
            char s[8], ref[16];
            struct smtp_data_opts o;
            struct dec_result whole, bytes;
            size_t end, ref_len;

            make_string(code, len, s);
            opts_ignore(&o);
            decode_chunked(&o, s, len, len ? len : 1, 4096, &whole);
            decode_chunked(&o, s, len, 1, 1, &bytes);
            end = ref_end(s, len);
            assert_int_equal(whole.done, end != 0);
            assert_int_equal(whole.consumed, end ? end : len);
            assert_int_equal(bytes.done, whole.done);
            assert_int_equal(bytes.consumed, whole.consumed);
            assert_int_equal(bytes.out_len, whole.out_len);
            assert_memory_equal(bytes.out, whole.out, whole.out_len);
            if (end) {
                ref_len = ref_unstuff(s, end - 3, ref);
                assert_int_equal(whole.out_len, ref_len);
            } else {
                ref_len = ref_unstuff(s, len, ref); /* pending octets are held back */
                assert_true(whole.out_len <= ref_len);
            }
            assert_memory_equal(whole.out, ref, whole.out_len);
        }
    }
}

static void
test_exhaustive_round_trip(void **state)
{
    (void)state;
    for (size_t len = 0; len <= 7; len++) {
        unsigned long count = 1ul << (2 * len);

        for (unsigned long code = 0; code < count; code++) {
            char s[8], norm[32];
            struct smtp_data_enc e;
            struct smtp_data_opts o;
            struct dec_result r;
            struct buf wire;
            size_t norm_len;

            make_string(code, len, s);
            buf_init(&wire, 256);
            smtp_data_enc_init(&e);
            assert_int_equal(try_smtp_data_encode_buf(&e, strv_make(s, len), true, &wire), 0);
            opts_ignore(&o);
            decode_chunked(&o, buf_data(&wire).ptr, buf_len(&wire), 1, 1, &r);
            assert_true(r.done);
            assert_int_equal(r.consumed, buf_len(&wire));
            assert_int_equal(r.d.stats.header.bare_lf + r.d.stats.body.bare_lf, 0);
            assert_int_equal(r.d.stats.header.bare_cr + r.d.stats.body.bare_cr, 0);
            norm_len = ref_normalise(s, len, norm);
            assert_int_equal(r.out_len, norm_len);
            assert_memory_equal(r.out, norm, norm_len);
            buf_release(&wire);
        }
    }
}

static void
test_buf_helpers(void **state)
{
    static const char in[] = "Subject: x\r\n\r\n0123456789\r\n.\r\nQUIT\r\n";
    struct smtp_data_opts o;
    struct smtp_data_dec d;
    struct buf out;
    size_t consumed;

    (void)state;
    smtp_data_opts_init(&o);
    smtp_data_dec_init(&d, &o);
    buf_init(&out, 1024);
    assert_int_equal(try_smtp_data_decode_buf(&d, strv_make(in, 10), &out, &consumed), 0);
    assert_int_equal(consumed, 10);
    assert_false(smtp_data_dec_done(&d));
    assert_int_equal(
        try_smtp_data_decode_buf(&d, strv_make(in + 10, sizeof(in) - 11), &out, &consumed), 0);
    assert_true(smtp_data_dec_done(&d));
    assert_int_equal(10 + consumed, sizeof(in) - 1 - 6);
    assert_int_equal(buf_len(&out), 26);
    buf_release(&out);

    /* a ceiling below the message: CELER_ELIMIT */
    smtp_data_dec_init(&d, &o);
    buf_init(&out, 8);
    assert_int_equal(try_smtp_data_decode_buf(&d, strv_make(in, sizeof(in) - 1), &out, &consumed),
                     CELER_ELIMIT);
    buf_release(&out);
    {
        struct smtp_data_enc e;

        smtp_data_enc_init(&e);
        buf_init(&out, 4);
        assert_int_equal(try_smtp_data_encode_buf(&e, STRV_LIT("abcdef"), true, &out),
                         CELER_ELIMIT);
        buf_release(&out);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_and_simple),
        cmocka_unit_test(test_smuggling_variants),
        cmocka_unit_test(test_variants_alone_never_end),
        cmocka_unit_test(test_terminator_at_every_split),
        cmocka_unit_test(test_pipelined_after_terminator),
        cmocka_unit_test(test_unstuffing),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_lone_lf_policies),
        cmocka_unit_test(test_lone_cr_policies),
        cmocka_unit_test(test_sections_with_bare_lf),
        cmocka_unit_test(test_line_length),
        cmocka_unit_test(test_header_detection),
        cmocka_unit_test(test_missing_headers),
        cmocka_unit_test(test_raw_mode),
        cmocka_unit_test(test_encoder_table),
        cmocka_unit_test(test_exhaustive_decode),
        cmocka_unit_test(test_exhaustive_round_trip),
        cmocka_unit_test(test_buf_helpers),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
