/*
 * test_conf_value: typed configuration values.
 *
 * Table-driven over real registry options, so each case is what a user
 * writing "option = text" gets: booleans in every lenient form, integers
 * (negative, octal, hex, overflow), sizes and intervals with their suffixes,
 * enums (case-insensitive, with "#" numbers), throttles, CIDR lists (host
 * bits cleared, bad prefixes rejected) and their matching, lists from a lone
 * scalar, dictionaries, the exact error text with its file:line:col, and
 * conf_listen_parse for every Listen form.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include "conf/conf.h"
#include "conf/conf_value.h"
#include "core/buf.h"
#include "core/mem.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---- helpers ---- */

/* Parses "v = text" and returns the syntax tree; the value is root->kids[0]->value. */
static struct conf_ast *
raw_value(const char *text)
{
    char *src = xasprintf("v = %s\n", text);
    struct conf_diags d;
    struct conf_ast *ast;

    conf_diags_init(&d);
    ast = conf_parse_text("t.conf", strv_from_cstr(src), &d);
    assert_int_equal(d.n, 0);
    assert_int_equal(ast->root->n, 1);
    conf_diags_release(&d);
    free(src);
    return ast;
}

/* conf_val_parse of text for option name; the reason goes to why. */
static int
val_parse(const char *name, const char *text, struct conf_ast **ast, struct conf_val *v,
          struct buf *why)
{
    const struct conf_option *o = conf_option_by_name(name);

    assert_non_null(o);
    *ast = raw_value(text);
    return conf_val_parse(o, (*ast)->root->kids[0]->value, v, why);
}

/* ---- scalars ---- */

struct scalar_case {
    const char *opt;
    const char *text;
    bool ok;
    int64_t i; /* BOOL: 0/1; INT/SIZE/INTERVAL; ENUM: index or number */
    bool b;    /* ENUM: the value is a number admitted by "#" */
};

static const struct scalar_case scalar_cases[] = {
    /* booleans (force_fsync) */
    {"force_fsync", "true", true, 1, true},
    {"force_fsync", "TRUE", true, 1, true},
    {"force_fsync", "On", true, 1, true},
    {"force_fsync", "yes", true, 1, true},
    {"force_fsync", "enabled", true, 1, true},
    {"force_fsync", "Enable", true, 1, true},
    {"force_fsync", "1", true, 1, true},
    {"force_fsync", "\"true\"", true, 1, true},
    {"force_fsync", "false", true, 0, false},
    {"force_fsync", "Off", true, 0, false},
    {"force_fsync", "NO", true, 0, false},
    {"force_fsync", "disabled", true, 0, false},
    {"force_fsync", "disable", true, 0, false},
    {"force_fsync", "0", true, 0, false},
    {"force_fsync", "maybe", false, 0, false},
    {"force_fsync", "2", false, 0, false},
    {"force_fsync", "truee", false, 0, false},
    {"force_fsync", "y", false, 0, false},
    {"force_fsync", "\"\"", false, 0, false},
    {"force_fsync", "\" true\"", false, 0, false},
    /* integers (max_outbound_connections) */
    {"max_outbound_connections", "0", true, 0, false},
    {"max_outbound_connections", "42", true, 42, false},
    {"max_outbound_connections", "-1", true, -1, false},
    {"max_outbound_connections", "-42", true, -42, false},
    {"max_outbound_connections", "0640", true, 416, false},
    {"max_outbound_connections", "0x1F", true, 31, false},
    {"max_outbound_connections", "0X1f", true, 31, false},
    {"max_outbound_connections", "-0x10", true, -16, false},
    {"max_outbound_connections", "9223372036854775807", true, INT64_MAX, false},
    {"max_outbound_connections", "-9223372036854775808", true, INT64_MIN, false},
    {"max_outbound_connections", "9223372036854775808", false, 0, false},
    {"max_outbound_connections", "99999999999999999999", false, 0, false},
    {"max_outbound_connections", "08", false, 0, false},
    {"max_outbound_connections", "0x", false, 0, false},
    {"max_outbound_connections", "0x1g", false, 0, false},
    {"max_outbound_connections", "+5", false, 0, false},
    {"max_outbound_connections", "\" 5\"", false, 0, false},
    {"max_outbound_connections", "\"\n5\"", false, 0, false},
    {"max_outbound_connections", "\"\r5\"", false, 0, false},
    {"max_outbound_connections", "\"5 \"", false, 0, false},
    {"max_outbound_connections", "1e3", false, 0, false},
    {"max_outbound_connections", "1.5", false, 0, false},
    {"max_outbound_connections", "-", false, 0, false},
    {"max_outbound_connections", "\"\"", false, 0, false},
    /* sizes (max_message_size): binary k/m/g, optional trailing b */
    {"max_message_size", "0", true, 0, false},
    {"max_message_size", "1024", true, 1024, false},
    {"max_message_size", "10k", true, 10240, false},
    {"max_message_size", "10K", true, 10240, false},
    {"max_message_size", "10kb", true, 10240, false},
    {"max_message_size", "10KB", true, 10240, false},
    {"max_message_size", "5m", true, 5242880, false},
    {"max_message_size", "5Mb", true, 5242880, false},
    {"max_message_size", "2g", true, 2147483648, false},
    {"max_message_size", "2GB", true, 2147483648, false},
    {"max_message_size", "010k", true, 8192, false},
    {"max_message_size", "-1", true, -1, false},
    {"max_message_size", "0x1b", true, 27, false}, /* hex takes no suffix: b is a digit */
    {"max_message_size", "0xff", true, 255, false},
    {"max_message_size", "-2", false, 0, false},
    {"max_message_size", "-1k", false, 0, false},
    {"max_message_size", "10b", false, 0, false},
    {"max_message_size", "kb", false, 0, false},
    {"max_message_size", "k", false, 0, false},
    {"max_message_size", "10kk", false, 0, false},
    {"max_message_size", "\"10 k\"", false, 0, false},
    {"max_message_size", "10t", false, 0, false},
    {"max_message_size", "10s", false, 0, false},
    {"max_message_size", "0x10k", false, 0, false},
    {"max_message_size", "9223372036854775807k", false, 0, false},
    {"max_message_size", "8589934592g", false, 0, false},
    {"max_message_size", "8589934591g", true, INT64_C(8589934591) << 30, false},
    /* intervals (retry_interval): s/m/h/d/w */
    {"retry_interval", "30", true, 30, false},
    {"retry_interval", "30s", true, 30, false},
    {"retry_interval", "5m", true, 300, false},
    {"retry_interval", "2h", true, 7200, false},
    {"retry_interval", "2H", true, 7200, false},
    {"retry_interval", "1d", true, 86400, false},
    {"retry_interval", "1w", true, 604800, false},
    {"retry_interval", "-1", true, -1, false},
    {"retry_interval", "0x1d", true, 29, false}, /* not one day: d is a hex digit */
    {"retry_interval", "2hb", false, 0, false},  /* "b" belongs to sizes only */
    {"retry_interval", "1sb", false, 0, false},
    {"retry_interval", "1y", false, 0, false},
    {"retry_interval", "h", false, 0, false},
    {"retry_interval", "-2", false, 0, false},
    {"retry_interval", "soon", false, 0, false},
    {"retry_interval", "1.5h", false, 0, false},
    {"retry_interval", "10k", false, 0, false},
    /* enums: case-insensitive; "#" admits numbers */
    {"tls", "no", true, 0, false},
    {"tls", "IfAvailable", true, 1, false},
    {"tls", "REQUIRED", true, 2, false},
    {"tls", "sometimes", false, 0, false},
    {"tls", "1", false, 0, false},
    {"tls", "\"\"", false, 0, false},
    {"max_retries", "auto", true, 0, false},
    {"max_retries", "NONE", true, 1, false},
    {"max_retries", "5", true, 5, true},
    {"max_retries", "0", true, 0, true},
    {"max_retries", "0x10", true, 16, true},
    {"max_retries", "\"#\"", false, 0, false},
    {"max_retries", "x", false, 0, false},
    {"max_retries", "autox", false, 0, false},
    {"default_binding", "Suspended", true, 1, false},
    {"default_binding", "none", true, 2, false},
    {"default_binding", "nonee", false, 0, false},
};

static void
test_scalars(void **state)
{
    int bad = 0;

    (void)state;
    for (size_t i = 0; i < NELEM(scalar_cases); i++) {
        const struct scalar_case *sc = &scalar_cases[i];
        const struct conf_option *o = conf_option_by_name(sc->opt);
        struct conf_ast *ast;
        struct conf_val v;
        struct buf why;
        int r;
        int64_t got;

        buf_init(&why, 4096);
        r = val_parse(sc->opt, sc->text, &ast, &v, &why);
        got = o->type == CONF_T_BOOL ? (int64_t)v.b : v.i;
        if ((r == 0) != sc->ok || (sc->ok && got != sc->i) ||
            (sc->ok && o->type == CONF_T_ENUM && v.b != sc->b)) {
            print_error("%s = %s: %s (%lld), wanted %s (%lld) %.*s\n", sc->opt, sc->text,
                        r == 0 ? "accepted" : "rejected", (long long)got,
                        sc->ok ? "accepted" : "rejected", (long long)sc->i,
                        STRV_FMT(buf_data(&why)));
            bad++;
        }
        if (r == 0) {
            assert_int_equal(v.type, o->type);
            assert_ptr_equal(v.raw, ast->root->kids[0]->value);
            assert_int_equal(buf_len(&why), 0);
            if (o->type == CONF_T_ENUM) {
                assert_string_equal(v.s, ast->root->kids[0]->value->text);
            }
            conf_val_release(&v);
        } else {
            assert_int_equal(r, CELER_EPARSE);
            assert_true(buf_len(&why) > 0);
        }
        buf_release(&why);
        conf_ast_free(ast);
    }
    assert_int_equal(bad, 0);
}

static void
test_bool_and_int_parse(void **state)
{
    bool b = true;
    int64_t v = 7;

    (void)state;
    assert_int_equal(conf_bool_parse("enabled", &b), 0);
    assert_true(b);
    assert_int_equal(conf_bool_parse("DISABLED", &b), 0);
    assert_false(b);
    assert_int_equal(conf_bool_parse("", &b), CELER_EPARSE);
    assert_int_equal(conf_int_parse("0640", &v), 0);
    assert_int_equal(v, 0640);
    assert_int_equal(conf_int_parse("-0", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(conf_int_parse("99999999999999999999", &v), CELER_ELIMIT);
    assert_int_equal(conf_int_parse("-99999999999999999999", &v), CELER_ELIMIT);
    assert_int_equal(conf_int_parse("\v1", &v), CELER_EPARSE);
    assert_int_equal(conf_int_parse("\f1", &v), CELER_EPARSE);
    assert_int_equal(v, 0); /* untouched on failure */
}

/* ---- throttles ---- */

static void
test_throttles(void **state)
{
    static const struct {
        const char *text;
        bool ok;
        uint32_t count, seconds;
    } cases[] = {
        {"10", true, 10, 1},
        {"\"600/60\"", true, 600, 60},
        {"\"0/60\"", true, 0, 60},
        {"4294967295", true, UINT32_MAX, 1},
        {"\"1/4294967295\"", true, 1, UINT32_MAX},
        {"\"0/0\"", false, 0, 0},
        {"\"10/0\"", false, 0, 0},
        {"\"a/b\"", false, 0, 0},
        {"\"10/\"", false, 0, 0},
        {"\"/60\"", false, 0, 0},
        {"\"10/a\"", false, 0, 0},
        {"-1", false, 0, 0},
        {"\"10/60/2\"", false, 0, 0},
        {"4294967296", false, 0, 0},
        {"\"1/4294967296\"", false, 0, 0},
        {"\" 10\"", false, 0, 0},
        {"\"\"", false, 0, 0},
        {"( 10 )", false, 0, 0},
    };

    (void)state;
    for (size_t i = 0; i < NELEM(cases); i++) {
        struct conf_ast *ast;
        struct conf_val v;
        struct buf why;
        int r;

        buf_init(&why, 4096);
        r = val_parse("outbound_throttle_messages", cases[i].text, &ast, &v, &why);
        if ((r == 0) != cases[i].ok ||
            (r == 0 && (v.thr.count != cases[i].count || v.thr.seconds != cases[i].seconds))) {
            print_error("throttle %s: %s %u/%u\n", cases[i].text, r == 0 ? "accepted" : "rejected",
                        v.thr.count, v.thr.seconds);
            fail();
        }
        if (r != 0 && cases[i].text[0] != '(') {
            char *want = xasprintf(
                "expected a throttle \"N\" (per second) or \"N/S\" (per S seconds), got \"%s\"",
                ast->root->kids[0]->value->text);

            assert_string_equal(buf_data(&why).ptr, want);
            free(want);
        }
        buf_release(&why);
        conf_ast_free(ast);
    }
}

/* ---- CIDRs ---- */

static void
test_cidr_lists(void **state)
{
    static const struct {
        const char *text;
        int family;
        const char *addr; /* after clearing host bits */
        unsigned prefix;
    } good[] = {
        {"127.0.0.0/8", AF_INET, "127.0.0.0", 8},
        {"10.1.2.3/8", AF_INET, "10.0.0.0", 8},
        {"10.1.2.3/12", AF_INET, "10.0.0.0", 12},
        {"10.31.2.3/12", AF_INET, "10.16.0.0", 12},
        {"192.168.1.1", AF_INET, "192.168.1.1", 32},
        {"0.0.0.0/0", AF_INET, "0.0.0.0", 0},
        {"255.255.255.255/31", AF_INET, "255.255.255.254", 31},
        {"::1", AF_INET6, "::1", 128},
        {"2001:db8::1/32", AF_INET6, "2001:db8::", 32},
        {"2001:db8:ffff::1/33", AF_INET6, "2001:db8:8000::", 33},
        {"::/0", AF_INET6, "::", 0},
        {"::ffff:10.1.2.3/120", AF_INET6, "::ffff:10.1.2.0", 120},
    };
    static const char *const bad[] = {
        "10.0.0.0/33",  "::/129",
        "10.0.0.0/",    "/8",
        "10.0.0",       "hostname",
        "10.0.0.0/-1",  "10.0.0.0/8/9",
        "10.0.0.0/ 8",  "10.0.0.0/0x8",
        "1.2.3.4.5",    "::1/",
        "fe80::1%eth0", "",
    };
    struct buf text;
    struct conf_ast *ast;
    struct conf_val v;
    struct buf why;
    char *s;

    (void)state;
    buf_init(&text, BUF_UNLIMITED);
    buf_append_cstr(&text, "(");
    for (size_t i = 0; i < NELEM(good); i++) {
        buf_printf(&text, " \"%s\"", good[i].text);
    }
    buf_append_cstr(&text, " )");
    s = buf_steal_cstr(&text);
    buf_init(&why, 4096);
    assert_int_equal(val_parse("relay_hosts", s, &ast, &v, &why), 0);
    assert_int_equal(v.n, NELEM(good));
    for (size_t i = 0; i < NELEM(good); i++) {
        unsigned char want[16] = {0};

        assert_int_equal(inet_pton(good[i].family, good[i].addr, want), 1);
        assert_int_equal(v.cidrs[i].family, good[i].family);
        assert_int_equal(v.cidrs[i].prefix, good[i].prefix);
        if (memcmp(v.cidrs[i].addr, want, sizeof(want)) != 0) {
            print_error("%s: host bits not cleared\n", good[i].text);
            fail();
        }
    }
    conf_val_release(&v);
    assert_null(v.cidrs);
    conf_ast_free(ast);
    free(s);

    /* a lone scalar is a list of one */
    assert_int_equal(val_parse("relay_hosts", "10.0.0.0/8", &ast, &v, &why), 0);
    assert_int_equal(v.n, 1);
    assert_int_equal(v.cidrs[0].prefix, 8);
    conf_val_release(&v);
    conf_ast_free(ast);

    for (size_t i = 0; i < NELEM(bad); i++) {
        struct conf_cidr c;
        char *t = xasprintf("( \"192.0.2.0/24\" \"%s\" )", bad[i]);
        char *want =
            xasprintf("\"%s\" is not an IP address or CIDR block (a.b.c.d/n or ipv6/n)", bad[i]);

        assert_int_equal(conf_cidr_parse(bad[i], &c), CELER_EPARSE);
        buf_reset(&why);
        assert_int_equal(val_parse("relay_hosts", t, &ast, &v, &why), CELER_EPARSE);
        assert_string_equal(buf_data(&why).ptr, want);
        assert_null(v.cidrs); /* released on failure */
        conf_ast_free(ast);
        free(want);
        free(t);
    }
    buf_release(&why);
}

static void
make_sa(const char *addr, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (strchr(addr, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

        s6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, addr, &s6->sin6_addr), 1);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

        s4->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, addr, &s4->sin_addr), 1);
    }
}

static void
test_cidr_match(void **state)
{
    static const struct {
        const char *cidr;
        const char *addr;
        bool match;
    } cases[] = {
        {"10.0.0.0/8", "10.255.1.1", true},
        {"10.0.0.0/8", "11.0.0.1", false},
        {"10.16.0.0/12", "10.31.255.255", true},
        {"10.16.0.0/12", "10.32.0.0", false},
        {"10.16.0.0/12", "10.15.255.255", false},
        {"192.0.2.7", "192.0.2.7", true},
        {"192.0.2.7", "192.0.2.8", false},
        {"0.0.0.0/0", "203.0.113.9", true},
        {"10.0.0.0/8", "::ffff:10.1.2.3", true}, /* v4-mapped */
        {"10.0.0.0/8", "::ffff:11.1.2.3", false},
        {"10.0.0.0/8", "::10.1.2.3", false}, /* v4-compatible is not v4-mapped */
        {"::/0", "10.1.2.3", false},         /* v6 block, v4 address */
        {"::/0", "2001:db8::1", true},
        {"2001:db8::/32", "2001:db8:ffff::1", true},
        {"2001:db8::/32", "2001:db9::1", false},
        {"2001:db8:8000::/33", "2001:db8:7fff::1", false},
        {"2001:db8:8000::/33", "2001:db8:8000::1", true},
        {"::1", "::1", true},
        {"::1", "::2", false},
    };

    (void)state;
    for (size_t i = 0; i < NELEM(cases); i++) {
        struct conf_cidr c;
        struct sockaddr_storage ss;

        assert_int_equal(conf_cidr_parse(cases[i].cidr, &c), 0);
        make_sa(cases[i].addr, &ss);
        if (conf_cidr_match(&c, (struct sockaddr *)&ss) != cases[i].match) {
            print_error("%s in %s: wanted %d\n", cases[i].addr, cases[i].cidr, cases[i].match);
            fail();
        }
    }
}

/* ---- lists, dictionaries, strings ---- */

static void
test_lists_and_dicts(void **state)
{
    struct conf_ast *ast;
    struct conf_val v;
    struct buf why;

    (void)state;
    buf_init(&why, 4096);
    assert_int_equal(val_parse("smtp_extensions", "STARTTLS", &ast, &v, &why), 0);
    assert_int_equal(v.n, 1);
    assert_string_equal(v.list[0], "STARTTLS");
    assert_null(v.list[1]);
    conf_val_release(&v);
    conf_ast_free(ast);

    assert_int_equal(val_parse("smtp_extensions",
                               "( \"ENHANCEDSTATUSCODES\" STARTTLS ; 'AUTH LOGIN' )", &ast, &v,
                               &why),
                     0);
    assert_int_equal(v.n, 3);
    assert_string_equal(v.list[0], "ENHANCEDSTATUSCODES");
    assert_string_equal(v.list[1], "STARTTLS");
    assert_string_equal(v.list[2], "AUTH LOGIN");
    assert_null(v.list[3]);
    conf_val_release(&v);
    conf_ast_free(ast);

    assert_int_equal(val_parse("smtp_extensions", "( )", &ast, &v, &why), 0);
    assert_int_equal(v.n, 0);
    assert_null(v.list[0]);
    conf_val_release(&v);
    conf_ast_free(ast);

    assert_int_equal(val_parse("smtp_extensions", "[ a = b ]", &ast, &v, &why), CELER_EPARSE);
    assert_string_equal(buf_data(&why).ptr,
                        "expected a list ( \"a\" \"b\" ), got a dictionary [ ]");
    conf_ast_free(ast);
    buf_reset(&why);
    assert_int_equal(val_parse("smtp_extensions", "( a ( b ) )", &ast, &v, &why), CELER_EPARSE);
    assert_string_equal(buf_data(&why).ptr, "list element 2 is not a plain value");
    assert_null(v.list);
    conf_ast_free(ast);
    buf_reset(&why);

    assert_int_equal(
        val_parse("context", "[ customer = \"acme\" tier = 2 nested = ( a b ) ]", &ast, &v, &why),
        0);
    assert_int_equal(v.raw->kind, CONF_VALUE_DICT);
    assert_int_equal(v.raw->n, 3);
    assert_string_equal(v.raw->keys[0], "customer");
    assert_string_equal(v.raw->items[0]->text, "acme");
    assert_string_equal(v.raw->keys[1], "tier");
    conf_val_release(&v);
    conf_ast_free(ast);
    assert_int_equal(val_parse("context", "x", &ast, &v, &why), CELER_EPARSE);
    assert_string_equal(buf_data(&why).ptr, "expected a dictionary [ key = value ... ]");
    conf_ast_free(ast);
    buf_reset(&why);

    assert_int_equal(val_parse("spoolbase", "\"/var/spool/x y\"", &ast, &v, &why), 0);
    assert_string_equal(v.s, "/var/spool/x y");
    conf_ast_free(ast);
    assert_int_equal(val_parse("spoolbase", "( a )", &ast, &v, &why), CELER_EPARSE);
    assert_string_equal(buf_data(&why).ptr, "expected a single value, got an array ( )");
    conf_ast_free(ast);
    buf_reset(&why);
    assert_int_equal(val_parse("spoolbase", "[ a = b ]", &ast, &v, &why), CELER_EPARSE);
    assert_string_equal(buf_data(&why).ptr, "expected a single value, got a dictionary [ ]");
    conf_ast_free(ast);
    buf_release(&why);
}

/* ---- errors as celerd -t prints them ---- */

static void
test_load_errors(void **state)
{
    static const struct {
        const char *text;
        const char *diag;
    } cases[] = {
        {"Force_Fsync = maybe\n",
         "t.conf:1:15: error: option \"force_fsync\": expected a boolean (true/false, on/off, "
         "yes/no, enabled/disabled, 1/0), got \"maybe\""},
        {"Max_Outbound_Connections = 99999999999999999999\n",
         "t.conf:1:28: error: option \"max_outbound_connections\": expected an integer, got "
         "\"99999999999999999999\""},
        {"Retry_Interval = 2hb\n",
         "t.conf:1:18: error: option \"retry_interval\": expected a number of seconds (optionally "
         "with s, m, h, d or w), got \"2hb\""},
        {"ESMTP_Listener {\n  Max_Message_Size = -2\n}\n",
         "t.conf:2:22: error: option \"max_message_size\": expected a size in bytes (optionally "
         "with k, m or g), got \"-2\""},
        {"TLS = sometimes\n",
         "t.conf:1:7: error: option \"tls\": expected one of no/ifavailable/required, got "
         "\"sometimes\""},
        {"Max_Retries = x\n",
         "t.conf:1:15: error: option \"max_retries\": expected one of auto/none/#, got \"x\""},
        {"Outbound_Throttle_Messages = \"0/0\"\n",
         "t.conf:1:30: error: option \"outbound_throttle_messages\": expected a throttle \"N\" (per "
         "second) or \"N/S\" (per S seconds), got \"0/0\""},
        {"Relay_Hosts = ( \"10.0.0.0/33\" )\n",
         "t.conf:1:15: error: option \"relay_hosts\": \"10.0.0.0/33\" is not an IP address or CIDR "
         "block (a.b.c.d/n or ipv6/n)"},
        {"ESMTP_Listener {\n  Context = \"x\"\n}\n",
         "t.conf:2:13: error: option \"context\": expected a dictionary [ key = value ... ]"},
        {"Spoolbase = [ a = b ]\n",
         "t.conf:1:13: error: option \"spoolbase\": expected a single value, got a dictionary [ ]"},
    };

    (void)state;
    for (size_t i = 0; i < NELEM(cases); i++) {
        struct conf_diags d;
        struct conf *c;
        char *got = NULL;

        conf_diags_init(&d);
        c = conf_load_text("t.conf", cases[i].text, &d);
        assert_null(c);
        assert_int_equal(d.errors, 1);
        for (size_t k = 0; k < d.n; k++) {
            if (d.items[k].level == CONF_DIAG_ERROR) {
                got = xasprintf("%s: error: %s", d.items[k].where, d.items[k].msg);
            }
        }
        assert_non_null(got);
        assert_string_equal(got, cases[i].diag);
        free(got);
        conf_diags_release(&d);
    }
}

/* ---- Listen names ---- */

static void
test_listen_parse(void **state)
{
    static const struct {
        const char *name;
        int rc;
        int family;
        const char *addr; /* or the socket path */
        uint16_t port;
    } cases[] = {
        {"1.2.3.4:25", 0, AF_INET, "1.2.3.4", 25},
        {"[::1]:2525", 0, AF_INET6, "::1", 2525},
        {"[::]:25", 0, AF_INET6, "::", 25},
        {"[::ffff:1.2.3.4]:26", 0, AF_INET6, "::ffff:1.2.3.4", 26},
        {"*:25", 0, AF_INET, "0.0.0.0", 25},
        {":25", 0, AF_INET, "0.0.0.0", 25},
        {"127.0.0.1:65535", 0, AF_INET, "127.0.0.1", 65535},
        {"/tmp/sock", 0, AF_UNIX, "/tmp/sock", 0},
        {"/tmp/2025", 0, AF_UNIX, "/tmp/2025", 0},
        {"var/run/ctl", 0, AF_UNIX, "var/run/ctl", 0},
        {"1.2.3.4", CELER_EPARSE, 0, NULL, 0},
        {"host:99999", CELER_EPARSE, 0, NULL, 0},
        {"1.2.3.4:65536", CELER_EPARSE, 0, NULL, 0},
        {"1.2.3.4:", CELER_EPARSE, 0, NULL, 0},
        {"1.2.3.4:x", CELER_EPARSE, 0, NULL, 0},
        {"1.2.3.4:-1", CELER_EPARSE, 0, NULL, 0},
        {"localhost:25", CELER_EPARSE, 0, NULL, 0},
        {"[::1", CELER_EPARSE, 0, NULL, 0},
        {"[::1]", CELER_EPARSE, 0, NULL, 0},
        {"::1:25", CELER_EPARSE, 0, NULL, 0},
        {"[1.2.3.4]:25", CELER_EPARSE, 0, NULL, 0},
        {"**:25", CELER_EPARSE, 0, NULL, 0},
        {"", CELER_EPARSE, 0, NULL, 0},
        {"a:b/c", CELER_EPARSE, 0, NULL, 0},
    };
    char longpath[200];

    (void)state;
    for (size_t i = 0; i < NELEM(cases); i++) {
        struct sockaddr_storage ss;
        socklen_t len = 0;
        int rc = conf_listen_parse(cases[i].name, &ss, &len);

        if (rc != cases[i].rc) {
            print_error("Listen \"%s\": %d, wanted %d\n", cases[i].name, rc, cases[i].rc);
            fail();
        }
        if (rc != 0) {
            continue;
        }
        assert_int_equal(ss.ss_family, cases[i].family);
        if (cases[i].family == AF_INET) {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
            struct in_addr want;

            assert_int_equal(len, sizeof(*s4));
            assert_int_equal(inet_pton(AF_INET, cases[i].addr, &want), 1);
            assert_int_equal(s4->sin_addr.s_addr, want.s_addr);
            assert_int_equal(ntohs(s4->sin_port), cases[i].port);
        } else if (cases[i].family == AF_INET6) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
            struct in6_addr want;

            assert_int_equal(len, sizeof(*s6));
            assert_int_equal(inet_pton(AF_INET6, cases[i].addr, &want), 1);
            assert_memory_equal(&s6->sin6_addr, &want, sizeof(want));
            assert_int_equal(ntohs(s6->sin6_port), cases[i].port);
        } else {
            struct sockaddr_un *un = (struct sockaddr_un *)&ss;

            assert_string_equal(un->sun_path, cases[i].addr);
        }
    }
    /* a Unix path longer than sun_path */
    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[0] = '/';
    longpath[sizeof(longpath) - 1] = '\0';
    {
        struct sockaddr_storage ss;
        socklen_t len;

        assert_int_equal(conf_listen_parse(longpath, &ss, &len), CELER_ELIMIT);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars),     cmocka_unit_test(test_bool_and_int_parse),
        cmocka_unit_test(test_throttles),   cmocka_unit_test(test_cidr_lists),
        cmocka_unit_test(test_cidr_match),  cmocka_unit_test(test_lists_and_dicts),
        cmocka_unit_test(test_load_errors), cmocka_unit_test(test_listen_parse),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
