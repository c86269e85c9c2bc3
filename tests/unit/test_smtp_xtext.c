/*
 * test_smtp_xtext: RFC 3461 xtext and RFC 6533 utf-8-addr encodings, and
 * the UTF-8 validator the SMTP modules share.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtp/smtp_xtext.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static void
assert_buf(const struct buf *b, const char *want, size_t want_len)
{
    assert_int_equal(buf_len(b), want_len);
    if (want_len) {
        assert_memory_equal(buf_data(b).ptr, want, want_len);
    }
}

static void
test_decode_table(void **state)
{
    static const struct {
        const char *in;
        int err;
        const char *out;
        size_t out_len;
    } cases[] = {
        {"", 0, "", 0},
        {"abc", 0, "abc", 3},
        {"a+2Bb", 0, "a+b", 3},
        {"+3D", 0, "=", 1},
        {"+2b", 0, "+", 1}, /* lower-case hex accepted */
        {"+00+FF", 0, "\0\xff", 2},
        {"!~", 0, "!~", 2},
        {"+", CELER_EPARSE, NULL, 0},
        {"+2", CELER_EPARSE, NULL, 0},
        {"+ZZ", CELER_EPARSE, NULL, 0},
        {"+2G", CELER_EPARSE, NULL, 0},
        {"a b", CELER_EPARSE, NULL, 0},
        {"a=b", CELER_EPARSE, NULL, 0},
        {"\x7f", CELER_EPARSE, NULL, 0},
        {"\xc3\xa9", CELER_EPARSE, NULL, 0},
        {"a\tb", CELER_EPARSE, NULL, 0},
    };

    (void)state;
    for (size_t i = 0; i < NELEM(cases); i++) {
        struct buf b;
        struct strv in = strv_from_cstr(cases[i].in);

        buf_init(&b, 1024);
        assert_int_equal(try_smtp_xtext_decode(in, &b), cases[i].err);
        assert_int_equal(smtp_xtext_valid(in), cases[i].err == 0);
        if (cases[i].err == 0) {
            assert_buf(&b, cases[i].out, cases[i].out_len);
        }
        buf_release(&b);
    }
}

static void
test_encode_and_round_trip_all_octets(void **state)
{
    struct buf enc, dec;
    char all[256];

    (void)state;
    buf_init(&enc, 4096);
    buf_init(&dec, 4096);
    assert_int_equal(try_smtp_xtext_encode(STRV_LIT("a+b=c d"), &enc), 0);
    assert_buf(&enc, "a+2Bb+3Dc+20d", 13);
    buf_reset(&enc);
    for (int i = 0; i < 256; i++) {
        all[i] = (char)i;
    }
    assert_int_equal(try_smtp_xtext_encode(strv_make(all, sizeof(all)), &enc), 0);
    assert_true(smtp_xtext_valid(buf_data(&enc)));
    assert_int_equal(try_smtp_xtext_decode(buf_data(&enc), &dec), 0);
    assert_buf(&dec, all, sizeof(all));
    buf_release(&enc);
    buf_release(&dec);
}

static void
test_decode_limits(void **state)
{
    char dst[4];
    size_t len = 99;
    struct buf b;

    (void)state;
    assert_int_equal(smtp_xtext_decode_into(STRV_LIT("ab+43d"), dst, 4, &len), 0);
    assert_int_equal(len, 4);
    assert_memory_equal(dst, "abCd", 4);
    assert_int_equal(smtp_xtext_decode_into(STRV_LIT("abcde"), dst, 4, &len), CELER_ELIMIT);
    assert_int_equal(smtp_xtext_decode_into(STRV_LIT("a+"), dst, 4, &len), CELER_EPARSE);
    buf_init(&b, 3);
    assert_int_equal(try_smtp_xtext_decode(STRV_LIT("abcd"), &b), CELER_ELIMIT);
    buf_release(&b);
    buf_init(&b, 3);
    assert_int_equal(try_smtp_xtext_encode(STRV_LIT("+"), &b), 0);
    assert_int_equal(try_smtp_xtext_encode(STRV_LIT("+"), &b), CELER_ELIMIT);
    buf_release(&b);
}

static void
test_utf8addr_decode_table(void **state)
{
    static const struct {
        const char *in;
        bool allow_utf8;
        int err;
        const char *out;
    } cases[] = {
        {"joe@example.com", false, 0, "joe@example.com"},
        {"\\x{E9}@x", false, 0, "\xc3\xa9@x"},
        {"\\x{e9}@x", false, 0, "\xc3\xa9@x"},
        {"\\x{1F600}", false, 0, "\xf0\x9f\x98\x80"},
        {"\\x{10FFFF}", false, 0, "\xf4\x8f\xbf\xbf"},
        {"a\\x{2B}b", false, 0, "a+b"},
        {"\xc3\xa9@x", true, 0, "\xc3\xa9@x"},
        {"\xc3\xa9@x", false, CELER_EPARSE, NULL},
        {"\xc3@x", true, CELER_EPARSE, NULL},
        {"\\x{D800}", false, CELER_EPARSE, NULL},
        {"\\x{110000}", false, CELER_EPARSE, NULL},
        {"\\x{}", false, CELER_EPARSE, NULL},
        {"\\x{0}", false, CELER_EPARSE, NULL},
        {"\\x{1234567}", false, CELER_EPARSE, NULL},
        {"\\x{E9", false, CELER_EPARSE, NULL},
        {"\\xE9", false, CELER_EPARSE, NULL},
        {"\\", false, CELER_EPARSE, NULL},
        {"a+b", false, CELER_EPARSE, NULL},
        {"a=b", false, CELER_EPARSE, NULL},
        {"a b", false, CELER_EPARSE, NULL},
    };

    (void)state;
    for (size_t i = 0; i < NELEM(cases); i++) {
        struct buf b;
        char dst[64];
        size_t len;
        struct strv in = strv_from_cstr(cases[i].in);

        buf_init(&b, 1024);
        assert_int_equal(try_smtp_xtext_decode_utf8addr(in, cases[i].allow_utf8, &b), cases[i].err);
        assert_int_equal(
            smtp_xtext_decode_utf8addr_into(in, cases[i].allow_utf8, dst, sizeof(dst), &len),
            cases[i].err);
        if (cases[i].err == 0) {
            assert_buf(&b, cases[i].out, strlen(cases[i].out));
            assert_int_equal(len, strlen(cases[i].out));
            assert_memory_equal(dst, cases[i].out, len);
        }
        buf_release(&b);
    }
}

static void
test_utf8addr_encode(void **state)
{
    static const struct {
        const char *in;
        const char *out;
    } cases[] = {
        {"joe@example.com", "joe@example.com"},
        {"\xc3\xa9@x", "\\x{E9}@x"},
        {"a+b=c\\d e", "a\\x{2B}b\\x{3D}c\\x{5C}d\\x{20}e"},
        {"\xf0\x9f\x98\x80", "\\x{1F600}"},
        {"\n", "\\x{0A}"},
    };

    (void)state;
    for (size_t i = 0; i < NELEM(cases); i++) {
        struct buf enc, dec;

        buf_init(&enc, 1024);
        buf_init(&dec, 1024);
        assert_int_equal(try_smtp_xtext_encode_utf8addr(strv_from_cstr(cases[i].in), &enc), 0);
        assert_buf(&enc, cases[i].out, strlen(cases[i].out));
        assert_int_equal(try_smtp_xtext_decode_utf8addr(buf_data(&enc), false, &dec), 0);
        assert_buf(&dec, cases[i].in, strlen(cases[i].in));
        buf_release(&enc);
        buf_release(&dec);
    }
    {
        struct buf b;

        buf_init(&b, 64);
        assert_int_equal(try_smtp_xtext_encode_utf8addr(STRV_LIT("\xff"), &b), CELER_EPARSE);
        buf_release(&b);
    }
}

static void
test_utf8_validator(void **state)
{
    static const struct {
        const char *s;
        bool valid;
    } cases[] = {
        {"", true},
        {"plain", true},
        {"\xc3\xa9", true},
        {"\xe2\x82\xac", true},
        {"\xf0\x9f\x98\x80", true},
        {"\xf4\x8f\xbf\xbf", true},
        {"\xc0\xaf", false},         /* overlong '/' */
        {"\xe0\x80\xaf", false},     /* overlong */
        {"\xf0\x80\x80\xaf", false}, /* overlong */
        {"\xed\xa0\x80", false},     /* surrogate */
        {"\xf4\x90\x80\x80", false}, /* above U+10FFFF */
        {"\xc3", false},             /* truncated */
        {"\xe2\x82", false},
        {"\x80", false},
        {"\xff", false},
        {"a\xc3\xa9\xc3", false},
    };
    unsigned cp = 0;

    (void)state;
    for (size_t i = 0; i < NELEM(cases); i++) {
        assert_int_equal(smtp_xtext_utf8_valid(strv_from_cstr(cases[i].s)), cases[i].valid);
    }
    assert_int_equal(smtp_xtext_utf8_next(STRV_LIT("\xe2\x82\xac!"), &cp), 3);
    assert_int_equal(cp, 0x20ac);
    assert_int_equal(smtp_xtext_utf8_next(STRV_NULL, &cp), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_table),
        cmocka_unit_test(test_encode_and_round_trip_all_octets),
        cmocka_unit_test(test_decode_limits),
        cmocka_unit_test(test_utf8addr_decode_table),
        cmocka_unit_test(test_utf8addr_encode),
        cmocka_unit_test(test_utf8_validator),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
