/*
 * test_smtp_addr: RFC 5321 path parsing under each option (pedantic, UTF-8,
 * IP literals, unqualified, spaces in brackets, no brackets), the length
 * limits, and normalised rendering.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtp/smtp_addr.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Option letters for the tables. */
#define O_P   0x01 /* pedantic */
#define O_U   0x02 /* utf8 */
#define O_L   0x04 /* ip_literal */
#define O_Q   0x08 /* unqualified */
#define O_M   0x10 /* postmaster */
#define O_S   0x20 /* space_in_brackets */
#define O_N   0x40 /* no_brackets */
#define O_STD (O_P | O_L)

static struct smtp_addr_opts
opts_of(unsigned f)
{
    return (struct smtp_addr_opts){
        .pedantic = f & O_P,
        .utf8 = f & O_U,
        .ip_literal = f & O_L,
        .unqualified = f & O_Q,
        .postmaster = f & O_M,
        .space_in_brackets = f & O_S,
        .no_brackets = f & O_N,
    };
}

static void
assert_strv(struct strv v, const char *want)
{
    assert_int_equal(v.len, strlen(want));
    if (v.len) {
        assert_memory_equal(v.ptr, want, v.len);
    }
}

static const struct {
    const char *in;
    unsigned opts;
    enum smtp_addr_error why;
    const char *local, *domain, *rest;
} path_cases[] = {
    {"<a@b.c>", O_STD, SMTP_ADDR_OK, "a", "b.c", ""},
    {"<a@b.c> SIZE=1", O_STD, SMTP_ADDR_OK, "a", "b.c", " SIZE=1"},
    {"<First.Last+tag@Example.COM>", O_STD, SMTP_ADDR_OK, "First.Last+tag", "Example.COM", ""},
    {"<!#$%&'*+-/=?^_`{|}~@x>", O_STD, SMTP_ADDR_OK, "!#$%&'*+-/=?^_`{|}~", "x", ""},
    {"<>", O_STD, SMTP_ADDR_OK, "", "", ""},
    {"<> BODY=8BITMIME", O_STD, SMTP_ADDR_OK, "", "", " BODY=8BITMIME"},
    {"<@r1,@r2.x:a@b>", O_STD, SMTP_ADDR_OK, "a", "b", ""},
    {"<@[1.2.3.4]:a@b>", O_P, SMTP_ADDR_OK, "a", "b", ""},
    {"<@r1a@b>", O_STD, SMTP_ADDR_ESYNTAX, NULL, NULL, NULL},
    {"<@:a@b>", O_STD, SMTP_ADDR_ESYNTAX, NULL, NULL, NULL},
    {"<@r1,a@b>", O_STD, SMTP_ADDR_ESYNTAX, NULL, NULL, NULL},
    {"<@b>", O_STD, SMTP_ADDR_ESYNTAX, NULL, NULL, NULL},
    /* pedantic dot-atoms (rfc2821_pedantic_address_rules) */
    {"<a..b@x>", O_STD, SMTP_ADDR_ESYNTAX, NULL, NULL, NULL},
    {"<a..b@x>", O_L, SMTP_ADDR_OK, "a..b", "x", ""},
    {"<ab.@x>", O_STD, SMTP_ADDR_ESYNTAX, NULL, NULL, NULL},
    {"<ab.@x>", O_L, SMTP_ADDR_OK, "ab.", "x", ""},
    {"<.ab@x>", O_STD, SMTP_ADDR_ESYNTAX, NULL, NULL, NULL},
    {"<.ab@x>", O_L, SMTP_ADDR_ESYNTAX, NULL, NULL, NULL},
    /* quoted local parts */
    {"<\"a b\"@x>", O_STD, SMTP_ADDR_OK, "\"a b\"", "x", ""},
    {"<\"a\\\"b\"@x>", O_STD, SMTP_ADDR_OK, "\"a\\\"b\"", "x", ""},
    {"<\"a>b\"@x>", O_STD, SMTP_ADDR_OK, "\"a>b\"", "x", ""},
    {"<\"\"@x>", O_STD, SMTP_ADDR_OK, "\"\"", "x", ""},
    {"<\"ab@x>", O_STD, SMTP_ADDR_ESYNTAX, NULL, NULL, NULL},
    {"<\"a\\\x01\"@x>", O_STD, SMTP_ADDR_ESYNTAX, NULL, NULL, NULL},
    {"<\"a\x01\"@x>", O_STD, SMTP_ADDR_ESYNTAX, NULL, NULL, NULL},
    {"<a\x01@x>", O_STD, SMTP_ADDR_ESYNTAX, NULL, NULL, NULL},
    {"<a b@x>", O_STD, SMTP_ADDR_ESYNTAX, NULL, NULL, NULL},
    /* domains */
    {"<a@-b.c>", O_STD, SMTP_ADDR_ESYNTAX, NULL, NULL, NULL},
    {"<a@b-.c>", O_STD, SMTP_ADDR_ESYNTAX, NULL, NULL, NULL},
    {"<a@b--c.d>", O_STD, SMTP_ADDR_OK, "a", "b--c.d", ""},
    {"<a@b..c>", O_STD, SMTP_ADDR_ESYNTAX, NULL, NULL, NULL},
    {"<a@b.c.>", O_STD, SMTP_ADDR_ESYNTAX, NULL, NULL, NULL},
    {"<a@.b>", O_STD, SMTP_ADDR_ESYNTAX, NULL, NULL, NULL},
    {"<a@b_c>", O_STD, SMTP_ADDR_ESYNTAX, NULL, NULL, NULL},
    {"<a@>", O_STD, SMTP_ADDR_ESYNTAX, NULL, NULL, NULL},
    {"<a@b", O_STD, SMTP_ADDR_ESYNTAX, NULL, NULL, NULL},
    {"<a@b>>", O_STD, SMTP_ADDR_OK, "a", "b", ">"},
    {"<a@b@c>", O_STD, SMTP_ADDR_ESYNTAX, NULL, NULL, NULL},
    {"", O_STD, SMTP_ADDR_ESYNTAX, NULL, NULL, NULL},
    {"<", O_STD, SMTP_ADDR_ESYNTAX, NULL, NULL, NULL},
    /* address literals (allow_ip_literal) */
    {"<a@[1.2.3.4]>", O_STD, SMTP_ADDR_OK, "a", "[1.2.3.4]", ""},
    {"<a@[1.2.3.4]>", O_P, SMTP_ADDR_ELITERAL, NULL, NULL, NULL},
    {"<a@[IPv6:::1]>", O_STD, SMTP_ADDR_OK, "a", "[IPv6:::1]", ""},
    {"<a@[ipv6:2001:db8::1]>", O_STD, SMTP_ADDR_OK, "a", "[ipv6:2001:db8::1]", ""},
    {"<a@[1.2.3]>", O_STD, SMTP_ADDR_EBADLITERAL, NULL, NULL, NULL},
    {"<a@[01.2.3.4]>", O_STD, SMTP_ADDR_EBADLITERAL, NULL, NULL, NULL},
    {"<a@[256.2.3.4]>", O_STD, SMTP_ADDR_EBADLITERAL, NULL, NULL, NULL},
    {"<a@[IPv6:1.2.3.4]>", O_STD, SMTP_ADDR_EBADLITERAL, NULL, NULL, NULL},
    {"<a@[::1]>", O_STD, SMTP_ADDR_EBADLITERAL, NULL, NULL, NULL},
    {"<a@[tag:foo]>", O_STD, SMTP_ADDR_EBADLITERAL, NULL, NULL, NULL},
    {"<a@[]>", O_STD, SMTP_ADDR_EBADLITERAL, NULL, NULL, NULL},
    {"<a@[1.2.3.4>", O_STD, SMTP_ADDR_ESYNTAX, NULL, NULL, NULL},
    {"<a@[1.2.3.4]x>", O_STD, SMTP_ADDR_ESYNTAX, NULL, NULL, NULL},
    /* unqualified and postmaster (domain_for_unqualified_*, RFC 5321 4.5.1) */
    {"<postmaster>", O_STD | O_M, SMTP_ADDR_OK, "postmaster", "", ""},
    {"<PostMaster>", O_STD | O_M, SMTP_ADDR_OK, "PostMaster", "", ""},
    {"<postmaster>", O_STD, SMTP_ADDR_EUNQUALIFIED, NULL, NULL, NULL},
    {"<abuse>", O_STD | O_M, SMTP_ADDR_EUNQUALIFIED, NULL, NULL, NULL},
    {"<abuse>", O_STD | O_Q, SMTP_ADDR_OK, "abuse", "", ""},
    /* SMTPUTF8 */
    {"<\xc3\xbc@x>", O_STD, SMTP_ADDR_ENONASCII, NULL, NULL, NULL},
    {"<\xc3\xbc@x>", O_STD | O_U, SMTP_ADDR_OK, "\xc3\xbc", "x", ""},
    {"<a@b\xc3\xbc.de>", O_STD | O_U, SMTP_ADDR_OK, "a", "b\xc3\xbc.de", ""},
    {"<a@b\xc3\xbc.de>", O_STD, SMTP_ADDR_ENONASCII, NULL, NULL, NULL},
    {"<\"\xc3\xbc x\"@x>", O_STD | O_U, SMTP_ADDR_OK, "\"\xc3\xbc x\"", "x", ""},
    {"<\xc3@x>", O_STD | O_U, SMTP_ADDR_EUTF8, NULL, NULL, NULL},
    {"<\xc3@x>", O_STD, SMTP_ADDR_EUTF8, NULL, NULL, NULL},
    {"<a@\xff>", O_STD | O_U, SMTP_ADDR_EUTF8, NULL, NULL, NULL},
    {"<\xc0\xaf@x>", O_STD | O_U, SMTP_ADDR_EUTF8, NULL, NULL, NULL},
    /* allow_trailing_whitespace_in_commands: "< a@b >" */
    {"< a@b >", O_STD, SMTP_ADDR_ESYNTAX, NULL, NULL, NULL},
    {"< a@b >", O_STD | O_S, SMTP_ADDR_OK, "a", "b", ""},
    {"< >", O_STD | O_S, SMTP_ADDR_OK, "", "", ""},
    /* lenient: no angle brackets */
    {"a@b", O_STD, SMTP_ADDR_ESYNTAX, NULL, NULL, NULL},
    {"a@b", O_STD | O_N, SMTP_ADDR_OK, "a", "b", ""},
    {"a@b SIZE=1", O_STD | O_N, SMTP_ADDR_OK, "a", "b", " SIZE=1"},
    {"a@b>", O_STD | O_N, SMTP_ADDR_ESYNTAX, NULL, NULL, NULL},
};

static void
test_path_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < NELEM(path_cases); i++) {
        struct smtp_addr_opts o = opts_of(path_cases[i].opts);
        struct strv in = strv_from_cstr(path_cases[i].in), orig = in;
        struct smtp_addr a;
        enum smtp_addr_error why = SMTP_ADDR_OK;
        int err = smtp_addr_parse_path(&in, &o, &a, &why);

        if (why != path_cases[i].why) {
            fail_msg("case %zu \"%s\": why %d (%s), want %d", i, path_cases[i].in, why,
                     smtp_addr_error_str(why), path_cases[i].why);
        }
        if (path_cases[i].why != SMTP_ADDR_OK) {
            assert_int_not_equal(err, 0);
            assert_true(in.ptr == orig.ptr && in.len == orig.len); /* untouched */
            continue;
        }
        assert_int_equal(err, 0);
        assert_strv(a.local, path_cases[i].local);
        assert_strv(a.domain, path_cases[i].domain);
        assert_strv(in, path_cases[i].rest);
    }
}

static void
test_flags(void **state)
{
    struct smtp_addr_opts o = opts_of(O_STD | O_U | O_M);
    struct smtp_addr a;
    enum smtp_addr_error why;
    struct strv in;

    (void)state;
    in = STRV_LIT("<>");
    assert_int_equal(smtp_addr_parse_path(&in, &o, &a, &why), 0);
    assert_true(a.is_null);
    in = STRV_LIT("<@r1,@r2:\"q\"@[1.2.3.4]>");
    assert_int_equal(smtp_addr_parse_path(&in, &o, &a, &why), 0);
    assert_false(a.is_null);
    assert_true(a.is_quoted);
    assert_true(a.is_ip_literal);
    assert_false(a.needs_smtputf8);
    assert_strv(a.route, "@r1,@r2");
    in = STRV_LIT("<\xc3\xbc@x>");
    assert_int_equal(smtp_addr_parse_path(&in, &o, &a, &why), 0);
    assert_true(a.needs_smtputf8);
    in = STRV_LIT("<postmaster>");
    assert_int_equal(smtp_addr_parse_path(&in, &o, &a, &why), 0);
    assert_true(a.is_unqualified);
}

static void
test_length_limits(void **state)
{
    struct smtp_addr_opts o = opts_of(O_STD);
    char line[600], label[70];
    struct smtp_addr a;
    enum smtp_addr_error why;
    struct strv in;

    (void)state;
    /* local part: 64 passes, 65 does not */
    (void)snprintf(line, sizeof(line), "<%.64s@x>",
                   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    in = strv_from_cstr(line);
    assert_int_equal(smtp_addr_parse_path(&in, &o, &a, &why), 0);
    assert_int_equal(a.local.len, 64);
    (void)snprintf(line, sizeof(line), "<%.65s@x>",
                   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    in = strv_from_cstr(line);
    assert_int_equal(smtp_addr_parse_path(&in, &o, &a, &why), CELER_ELIMIT);
    assert_int_equal(why, SMTP_ADDR_ELOCAL_LONG);

    /* a label of 63 passes, 64 does not */
    memset(label, 'l', sizeof(label));
    (void)snprintf(line, sizeof(line), "<a@%.63s.x>", label);
    in = strv_from_cstr(line);
    assert_int_equal(smtp_addr_parse_path(&in, &o, &a, &why), 0);
    (void)snprintf(line, sizeof(line), "<a@%.64s.x>", label);
    in = strv_from_cstr(line);
    assert_int_equal(smtp_addr_parse_path(&in, &o, &a, &why), CELER_ELIMIT);
    assert_int_equal(why, SMTP_ADDR_EDOMAIN_LONG);

    /* domain: 4 x 63 + 3 dots = 255 passes; one more octet does not */
    (void)snprintf(line, sizeof(line), "a@%.63s.%.63s.%.63s.%.63s", label, label, label, label);
    assert_int_equal(smtp_addr_parse_mailbox(strv_from_cstr(line), &o, &a, &why), 0);
    assert_int_equal(a.domain.len, 255);
    (void)snprintf(line, sizeof(line), "a@%.63s.%.63s.%.63s.%.63s.b", label, label, label, label);
    assert_int_equal(smtp_addr_parse_mailbox(strv_from_cstr(line), &o, &a, &why), CELER_ELIMIT);
    assert_int_equal(why, SMTP_ADDR_EDOMAIN_LONG);
    /* inside a path the path limit comes first */
    (void)snprintf(line, sizeof(line), "<a@%.63s.%.63s.%.63s.%.63s>", label, label, label, label);
    in = strv_from_cstr(line);
    assert_int_equal(smtp_addr_parse_path(&in, &o, &a, &why), CELER_ELIMIT);
    assert_int_equal(why, SMTP_ADDR_EPATH_LONG);

    /* path: "<" 64 "@" 189 ">" = 256 passes, 257 does not */
    memset(line, 0, sizeof(line));
    line[0] = '<';
    memset(line + 1, 'a', 64);
    line[65] = '@';
    for (size_t i = 0; i < 189; i++) {
        line[66 + i] = (i % 60 == 59) ? '.' : 'd';
    }
    line[66 + 189] = '>';
    in = strv_from_cstr(line);
    assert_int_equal(strlen(line), 256);
    assert_int_equal(smtp_addr_parse_path(&in, &o, &a, &why), 0);
    line[66 + 189] = 'd';
    line[66 + 190] = '>';
    in = strv_from_cstr(line);
    assert_int_equal(smtp_addr_parse_path(&in, &o, &a, &why), CELER_ELIMIT);
    assert_int_equal(why, SMTP_ADDR_EPATH_LONG);
}

static void
test_parse_mailbox(void **state)
{
    struct smtp_addr_opts o = opts_of(O_STD);
    struct smtp_addr a;
    enum smtp_addr_error why;

    (void)state;
    assert_int_equal(smtp_addr_parse_mailbox(STRV_LIT("a@b"), &o, &a, &why), 0);
    assert_strv(a.domain, "b");
    assert_int_equal(smtp_addr_parse_mailbox(STRV_LIT("a@b "), &o, &a, &why), CELER_EPARSE);
    assert_int_equal(smtp_addr_parse_mailbox(STRV_LIT("<a@b>"), &o, &a, &why), CELER_EPARSE);
    assert_int_equal(smtp_addr_parse_mailbox(STRV_LIT("a"), &o, &a, &why), CELER_EPARSE);
    assert_int_equal(why, SMTP_ADDR_EUNQUALIFIED);
    assert_string_equal(smtp_addr_error_str(SMTP_ADDR_EPATH_LONG), "path too long");
    assert_string_equal(smtp_addr_error_str((enum smtp_addr_error)99), "unknown address error");
}

static void
test_render(void **state)
{
    static const struct {
        const char *in;
        unsigned opts;
        const char *dflt;
        const char *out;
    } cases[] = {
        {"<a@b.c>", O_STD, "", "a@b.c"},
        {"<\"abc\"@Example.COM>", O_STD, "", "abc@example.com"},
        {"<\"a.b\"@x>", O_STD, "", "a.b@x"},
        {"<\"a..b\"@x>", O_STD, "", "\"a..b\"@x"},
        {"<\"a b\"@x>", O_STD, "", "\"a b\"@x"},
        {"<\"a\\\\b\"@x>", O_STD, "", "\"a\\\\b\"@x"},
        {"<\"a\\\"b\"@x>", O_STD, "", "\"a\\\"b\"@x"},
        {"<\"a\\bc\"@x>", O_STD, "", "abc@x"},
        {"<\"\"@x>", O_STD, "", "\"\"@x"},
        {"<>", O_STD, "example.com", ""},
        {"<postmaster>", O_STD | O_M, "Example.com", "postmaster@example.com"},
        {"<postmaster>", O_STD | O_M, "", "postmaster"},
        {"<Joe@[IPv6:::1]>", O_STD, "", "Joe@[IPv6:::1]"},
        {"<Ab@\xc3\x9c"
         "B.De>",
         O_STD | O_U, "",
         "Ab@\xc3\x9c"
         "b.de"},
        {"<@r:a@B>", O_STD, "", "a@b"},
    };

    (void)state;
    for (size_t i = 0; i < NELEM(cases); i++) {
        struct smtp_addr_opts o = opts_of(cases[i].opts);
        struct strv in = strv_from_cstr(cases[i].in);
        struct smtp_addr a;
        enum smtp_addr_error why;
        struct buf b;

        buf_init(&b, 1024);
        assert_int_equal(smtp_addr_parse_path(&in, &o, &a, &why), 0);
        assert_int_equal(try_smtp_addr_render(&a, strv_from_cstr(cases[i].dflt), &b), 0);
        assert_string_equal(buf_data(&b).ptr, cases[i].out);
        buf_release(&b);
    }
}

static void
test_render_ceiling(void **state)
{
    struct smtp_addr_opts o = opts_of(O_STD);
    struct strv in = STRV_LIT("<abc@example.com>");
    struct smtp_addr a;
    enum smtp_addr_error why;
    struct buf b;

    (void)state;
    assert_int_equal(smtp_addr_parse_path(&in, &o, &a, &why), 0);
    buf_init(&b, 8);
    assert_int_equal(try_smtp_addr_render(&a, STRV_NULL, &b), CELER_ELIMIT);
    buf_release(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_table),    cmocka_unit_test(test_flags),
        cmocka_unit_test(test_length_limits), cmocka_unit_test(test_parse_mailbox),
        cmocka_unit_test(test_render),        cmocka_unit_test(test_render_ceiling),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
