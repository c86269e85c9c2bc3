/*
 * test_smtp_reply: reply formatting (sanitising, the 512-octet line limit,
 * multi-line), client-side reply parsing (need-more, garbage, limits,
 * enhanced codes, pipelined replies) and EHLO capabilities both ways.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtp/smtp_reply.h"
#include "smtp/smtp_xtext.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static void
assert_buf_str(const struct buf *b, const char *want)
{
    assert_int_equal(buf_len(b), strlen(want));
    assert_memory_equal(buf_data(b).ptr, want, strlen(want));
}

static void
assert_strv(struct strv v, const char *want)
{
    assert_int_equal(v.len, strlen(want));
    if (v.len) {
        assert_memory_equal(v.ptr, want, v.len);
    }
}

static void
test_format_line(void **state)
{
    static const struct {
        int code;
        const char *enh;
        const char *text;
        bool last;
        const char *out;
    } cases[] = {
        {250, "2.0.0", "Ok", true, "250 2.0.0 Ok\r\n"},
        {250, "2.0.0", "Ok", false, "250-2.0.0 Ok\r\n"},
        {250, NULL, "Ok", true, "250 Ok\r\n"},
        {250, "", "Ok", true, "250 Ok\r\n"},
        {250, NULL, "", true, "250\r\n"},
        {250, NULL, "", false, "250-\r\n"},
        {354, NULL, "End data with <CR><LF>.<CR><LF>", true,
         "354 End data with <CR><LF>.<CR><LF>\r\n"},
        /* no reply line can be injected */
        {250, NULL, "Ok\r\n550 evil", true, "250 Ok  550 evil\r\n"},
        {250, NULL, "a\0b\x7f\tc", true, "250 a b \tc\r\n"},
        {550, "5.1.1\r\n", "x", true, "550 5.1.1   x\r\n"},
        {250, NULL, "\xc3\xa9t\xc3\xa9", true, "250 \xc3\xa9t\xc3\xa9\r\n"},
    };

    (void)state;
    for (size_t i = 0; i < NELEM(cases); i++) {
        struct buf b;
        /* the NUL case has an explicit length */
        struct strv text = i == 8 ? strv_make(cases[i].text, 6) : strv_from_cstr(cases[i].text);

        buf_init(&b, 1024);
        assert_int_equal(
            try_smtp_reply_format_line(&b, cases[i].code, cases[i].enh, text, cases[i].last), 0);
        assert_buf_str(&b, cases[i].out);
        buf_release(&b);
    }
}

static void
test_format_limits(void **state)
{
    static char text[1000];
    struct buf b;
    struct strv line;

    (void)state;
    memset(text, 'x', sizeof(text));
    buf_init(&b, 4096);
    assert_int_equal(
        try_smtp_reply_format_line(&b, 550, "5.7.1", strv_make(text, sizeof(text)), true), 0);
    assert_int_equal(buf_len(&b), SMTP_REPLY_LINE_OUT_MAX);
    line = buf_data(&b);
    assert_memory_equal(line.ptr + line.len - 2, "\r\n", 2);
    buf_reset(&b);

    /* a 2-octet UTF-8 sequence across the cut is dropped whole */
    text[505] = '\xc3';
    text[506] = '\xa9';
    assert_int_equal(try_smtp_reply_format_line(&b, 250, NULL, strv_make(text, 600), true), 0);
    assert_int_equal(buf_len(&b), SMTP_REPLY_LINE_OUT_MAX - 1);
    assert_true(smtp_xtext_utf8_valid(buf_data(&b)));
    buf_reset(&b);

    assert_int_equal(try_smtp_reply_format_line(&b, 99, NULL, STRV_LIT("x"), true), CELER_EPARSE);
    assert_int_equal(try_smtp_reply_format_line(&b, 1000, NULL, STRV_LIT("x"), true), CELER_EPARSE);
    buf_release(&b);
    buf_init(&b, 8);
    assert_int_equal(try_smtp_reply_format_line(&b, 250, NULL, STRV_LIT("Ok Ok"), true),
                     CELER_ELIMIT);
    buf_release(&b);
}

static void
test_format_reply_and_lines(void **state)
{
    struct smtp_reply r = SMTP_REPLY(550, "5.1.1", "No such user");
    struct strv lines[] = {STRV_LIT("a"), STRV_LIT("b"), STRV_LIT("c")};
    struct buf b;

    (void)state;
    buf_init(&b, 1024);
    assert_int_equal(try_smtp_reply_format(&b, &r, true), 0);
    assert_int_equal(try_smtp_reply_format(&b, &r, false), 0);
    assert_buf_str(&b, "550 5.1.1 No such user\r\n550 No such user\r\n");
    buf_reset(&b);
    assert_int_equal(try_smtp_reply_format_lines(&b, 250, "2.0.0", lines, 3), 0);
    assert_buf_str(&b, "250-2.0.0 a\r\n250-2.0.0 b\r\n250 2.0.0 c\r\n");
    assert_int_equal(try_smtp_reply_format_lines(&b, 250, NULL, lines, 0), CELER_EPARSE);
    buf_release(&b);
}

static void
test_parse_table(void **state)
{
    static const struct {
        const char *in;
        int err;
        int code;
        size_t nlines;
        const char *enh;
        const char *first;
        size_t consumed;
    } cases[] = {
        {"250 ok\r\n", 0, 250, 1, "", "ok", 8},
        {"250-a\r\n250 b\r\n", 0, 250, 2, "", "a", 14},
        {"250\r\n", 0, 250, 1, "", "", 5},
        {"250-\r\n250 x\r\n", 0, 250, 2, "", "", 13},
        {"250 ok\n", 0, 250, 1, "", "ok", 7},
        {"550 5.1.1 no such user\r\n", 0, 550, 1, "5.1.1", "5.1.1 no such user", 24},
        {"550 4.1.1 wrong class\r\n", 0, 550, 1, "", "4.1.1 wrong class", 23},
        {"250 2.0.0\r\n", 0, 250, 1, "2.0.0", "2.0.0", 11},
        {"250 2.0.0x\r\n", 0, 250, 1, "", "2.0.0x", 12},
        {"250 2.1000.0 x\r\n", 0, 250, 1, "", "2.1000.0 x", 16},
        {"451-4.3.0 a\r\n451 4.3.0 b\r\n", 0, 451, 2, "4.3.0", "4.3.0 a", 26},
        {"250 a\r\n354 go\r\n", 0, 250, 1, "", "a", 7},
        {"", -EAGAIN, 0, 0, "", "", 0},
        {"25", -EAGAIN, 0, 0, "", "", 0},
        {"250 ok", -EAGAIN, 0, 0, "", "", 0},
        {"250-a\r\n", -EAGAIN, 0, 0, "", "", 0},
        {"250-a\r\n250", -EAGAIN, 0, 0, "", "", 0},
        {"250-a\r\n251 b\r\n", CELER_EPROTO, 0, 0, "", "", 0},
        {"abc\r\n", CELER_EPROTO, 0, 0, "", "", 0},
        {"2500 x\r\n", CELER_EPROTO, 0, 0, "", "", 0},
        {"250x\r\n", CELER_EPROTO, 0, 0, "", "", 0},
        {"650 x\r\n", CELER_EPROTO, 0, 0, "", "", 0},
        {"150 x\r\n", CELER_EPROTO, 0, 0, "", "", 0},
        {"25 x\r\n", CELER_EPROTO, 0, 0, "", "", 0},
        {"\r\n", CELER_EPROTO, 0, 0, "", "", 0},
    };

    (void)state;
    for (size_t i = 0; i < NELEM(cases); i++) {
        struct smtp_reply_in r;
        int err = smtp_reply_parse(strv_from_cstr(cases[i].in), &r);

        if (err != cases[i].err) {
            fail_msg("case %zu: err %d want %d", i, err, cases[i].err);
        }
        if (err != 0) {
            continue;
        }
        assert_int_equal(r.code, cases[i].code);
        assert_int_equal(r.nlines, cases[i].nlines);
        assert_string_equal(r.enh, cases[i].enh);
        assert_strv(r.lines[0], cases[i].first);
        assert_int_equal(r.consumed, cases[i].consumed);
    }
}

static void
test_parse_limits(void **state)
{
    static char in[120 * 8 + SMTP_REPLY_LINE_IN_MAX + 16];
    struct smtp_reply_in r;
    size_t n = 0;

    (void)state;
    /* a line of exactly 4096 octets passes; 4097 does not */
    memset(in, 'x', sizeof(in));
    memcpy(in, "250 ", 4);
    memcpy(in + SMTP_REPLY_LINE_IN_MAX, "\r\n", 2);
    assert_int_equal(smtp_reply_parse(strv_make(in, SMTP_REPLY_LINE_IN_MAX + 2), &r), 0);
    assert_int_equal(r.lines[0].len, SMTP_REPLY_LINE_IN_MAX - 4);
    memset(in, 'x', sizeof(in));
    memcpy(in, "250 ", 4);
    memcpy(in + SMTP_REPLY_LINE_IN_MAX + 1, "\r\n", 2);
    assert_int_equal(smtp_reply_parse(strv_make(in, SMTP_REPLY_LINE_IN_MAX + 3), &r), CELER_EPROTO);
    /* an unterminated line already over the limit is refused without waiting */
    assert_int_equal(smtp_reply_parse(strv_make(in, SMTP_REPLY_LINE_IN_MAX + 1), &r), -EAGAIN);
    assert_int_equal(smtp_reply_parse(strv_make(in, SMTP_REPLY_LINE_IN_MAX + 2), &r), CELER_EPROTO);

    /* 100 lines pass, 101 do not */
    for (int i = 0; i < 99; i++) {
        memcpy(in + n, "250-ab\r\n", 8);
        n += 8;
    }
    memcpy(in + n, "250 ab\r\n", 8);
    assert_int_equal(smtp_reply_parse(strv_make(in, n + 8), &r), 0);
    assert_int_equal(r.nlines, 100);
    memcpy(in + n, "250-ab\r\n250 ab\r\n", 16);
    assert_int_equal(smtp_reply_parse(strv_make(in, n + 16), &r), CELER_EPROTO);
}

static void
test_enh_parse(void **state)
{
    char enh[12];

    (void)state;
    assert_int_equal(smtp_reply_enh_parse(STRV_LIT("5.7.1 denied"), '5', enh), 5);
    assert_string_equal(enh, "5.7.1");
    assert_int_equal(smtp_reply_enh_parse(STRV_LIT("5.123.456"), '5', enh), 9);
    assert_string_equal(enh, "5.123.456");
    assert_int_equal(smtp_reply_enh_parse(STRV_LIT("5.7.1 x"), '4', enh), 0);
    assert_string_equal(enh, "");
    assert_int_equal(smtp_reply_enh_parse(STRV_LIT("5..1 x"), '5', enh), 0);
    assert_int_equal(smtp_reply_enh_parse(STRV_LIT("5.7. x"), '5', enh), 0);
    assert_int_equal(smtp_reply_enh_parse(STRV_LIT("5.7"), '5', enh), 0);
}

static const char ehlo_reply[] = "250-mx.example.net Hello [192.0.2.1]\r\n"
                                 "250-PIPELINING\r\n"
                                 "250-SIZE 10240000\r\n"
                                 "250-8BITMIME\r\n"
                                 "250-AUTH PLAIN LOGIN XFOO\r\n"
                                 "250-AUTH=LOGIN CRAM-MD5\r\n"
                                 "250-enhancedstatuscodes\r\n"
                                 "250-STARTTLS\r\n"
                                 "250-CHUNKING\r\n"
                                 "250-BINARYMIME\r\n"
                                 "250-DSN\r\n"
                                 "250-SMTPUTF8\r\n"
                                 "250-XCLIENT NAME ADDR PORT HELO\r\n"
                                 "250 X-UNKNOWN foo\r\n";

static void
test_ehlo_parse(void **state)
{
    struct smtp_reply_in r;
    struct smtp_ehlo caps;

    (void)state;
    assert_int_equal(smtp_reply_parse(strv_make(ehlo_reply, sizeof(ehlo_reply) - 1), &r), 0);
    assert_int_equal(smtp_ehlo_parse(&r, &caps), 0);
    assert_int_equal(caps.ext, SMTP_EXT_ALL);
    assert_int_equal(caps.size_max, 10240000);
    assert_int_equal(caps.auth_mechs, SMTP_AUTH_PLAIN | SMTP_AUTH_LOGIN | SMTP_AUTH_CRAM_MD5);
    assert_strv(caps.auth, "PLAIN LOGIN XFOO");
    assert_int_equal(caps.xclient_attrs,
                     SMTP_XCLIENT_NAME | SMTP_XCLIENT_ADDR | SMTP_XCLIENT_PORT | SMTP_XCLIENT_HELO);
    assert_strv(caps.xclient, "NAME ADDR PORT HELO");
    assert_strv(caps.server_name, "mx.example.net");
}

static void
test_ehlo_parse_odd(void **state)
{
    static const struct {
        const char *in;
        int err;
        unsigned ext;
        uint64_t size;
    } cases[] = {
        {"250 mx\r\n", 0, 0, 0},
        {"250-mx\r\n250 size\r\n", 0, SMTP_EXT_SIZE, 0},
        {"250-mx\r\n250 SIZE abc\r\n", 0, SMTP_EXT_SIZE, 0},
        {"250-mx\r\n250 SIZE 0\r\n", 0, SMTP_EXT_SIZE, 0},
        {"250-mx\r\n250 SIZE 99999999999999999999999\r\n", 0, SMTP_EXT_SIZE, 0},
        {"250-mx\r\n250-PIPELINING extra\r\n250 FOO=BAR\r\n", 0, SMTP_EXT_PIPELINING, 0},
        {"250-mx\r\n250 PIPELININGX\r\n", 0, 0, 0},
        {"250-mx\r\n250 \r\n", 0, 0, 0},
        {"554 go away\r\n", CELER_EPROTO, 0, 0},
        {"220 hi\r\n", CELER_EPROTO, 0, 0},
    };

    (void)state;
    for (size_t i = 0; i < NELEM(cases); i++) {
        struct smtp_reply_in r;
        struct smtp_ehlo caps;

        assert_int_equal(smtp_reply_parse(strv_from_cstr(cases[i].in), &r), 0);
        assert_int_equal(smtp_ehlo_parse(&r, &caps), cases[i].err);
        if (cases[i].err == 0) {
            assert_int_equal(caps.ext, cases[i].ext);
            assert_int_equal(caps.size_max, cases[i].size);
        }
    }
}

static void
test_ehlo_format_round_trip(void **state)
{
    struct smtp_ehlo caps = {
        .ext = SMTP_EXT_ALL,
        .size_max = 52428800,
        .auth = STRV_LIT("PLAIN LOGIN"),
        .xclient = STRV_LIT("NAME ADDR"),
    };
    struct smtp_ehlo back;
    struct smtp_reply_in r;
    struct buf b;

    (void)state;
    buf_init(&b, 4096);
    assert_int_equal(try_smtp_ehlo_format(&b, STRV_LIT("mx.celer.test greets you"), &caps), 0);
    assert_true(strstr(buf_data(&b).ptr, "250-SIZE 52428800\r\n") != NULL);
    assert_true(strstr(buf_data(&b).ptr, "250 XCLIENT NAME ADDR\r\n") != NULL);
    assert_int_equal(smtp_reply_parse(buf_data(&b), &r), 0);
    assert_int_equal(r.consumed, buf_len(&b));
    assert_int_equal(r.nlines, 12);
    assert_int_equal(smtp_ehlo_parse(&r, &back), 0);
    assert_int_equal(back.ext, caps.ext);
    assert_int_equal(back.size_max, caps.size_max);
    assert_int_equal(back.auth_mechs, SMTP_AUTH_PLAIN | SMTP_AUTH_LOGIN);
    assert_int_equal(back.xclient_attrs, SMTP_XCLIENT_NAME | SMTP_XCLIENT_ADDR);
    assert_strv(back.server_name, "mx.celer.test");
    buf_reset(&b);

    /* SIZE without a value; AUTH and XCLIENT left out with empty lists */
    caps.size_max = 0;
    caps.auth = STRV_NULL;
    caps.xclient = STRV_NULL;
    caps.ext = SMTP_EXT_SIZE | SMTP_EXT_AUTH | SMTP_EXT_XCLIENT | SMTP_EXT_PIPELINING;
    assert_int_equal(try_smtp_ehlo_format(&b, STRV_LIT("mx"), &caps), 0);
    assert_buf_str(&b, "250-mx\r\n250-SIZE\r\n250 PIPELINING\r\n");
    buf_release(&b);
}

static void
test_names(void **state)
{
    (void)state;
    assert_string_equal(smtp_ext_name(SMTP_EXT_CHUNKING), "CHUNKING");
    assert_null(smtp_ext_name(0));
    assert_null(smtp_ext_name(SMTP_EXT_SIZE | SMTP_EXT_DSN));
    assert_int_equal(smtp_auth_mech_bit(STRV_LIT("cram-md5")), SMTP_AUTH_CRAM_MD5);
    assert_int_equal(smtp_auth_mech_bit(STRV_LIT("GSSAPI")), 0);
    assert_int_equal(smtp_xclient_attr_bit(STRV_LIT("destport")), SMTP_XCLIENT_DESTPORT);
    assert_int_equal(smtp_xclient_attr_bit(STRV_LIT("FOO")), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_line),
        cmocka_unit_test(test_format_limits),
        cmocka_unit_test(test_format_reply_and_lines),
        cmocka_unit_test(test_parse_table),
        cmocka_unit_test(test_parse_limits),
        cmocka_unit_test(test_enh_parse),
        cmocka_unit_test(test_ehlo_parse),
        cmocka_unit_test(test_ehlo_parse_odd),
        cmocka_unit_test(test_ehlo_format_round_trip),
        cmocka_unit_test(test_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
