/*
 * test_smtp_cmd: command-line parsing. One table holds every line and the
 * reply code and enhanced code it must get (0 = accepted); further tests
 * check the parsed fields of accepted lines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtp/smtp_cmd.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

enum opt_set {
    OPT_DEFAULT,  /* Momentum defaults, every extension offered */
    OPT_LENIENT,  /* trailing whitespace, spaces in brackets, no brackets, unqualified */
    OPT_NOEXT,    /* no extension offered */
    OPT_NOLIT,    /* allow_ip_literal = false */
    OPT_UTF8TX,   /* RCPT in a transaction whose MAIL had SMTPUTF8 */
    OPT_NOBINARY, /* everything but BINARYMIME */
};

static struct smtp_cmd_opts
opts_for(enum opt_set set)
{
    struct smtp_cmd_opts o;

    smtp_cmd_opts_init(&o);
    switch (set) {
    case OPT_LENIENT:
        o.allow_trailing_ws = true;
        o.addr.space_in_brackets = true;
        o.addr.no_brackets = true;
        o.addr.pedantic = false;
        o.allow_unqualified_sender = true;
        o.allow_unqualified_rcpt = true;
        break;
    case OPT_NOEXT:
        o.ext = 0;
        break;
    case OPT_NOLIT:
        o.addr.ip_literal = false;
        break;
    case OPT_UTF8TX:
        o.smtputf8 = true;
        break;
    case OPT_NOBINARY:
        o.ext &= ~SMTP_EXT_BINARYMIME;
        break;
    default:
        break;
    }
    return o;
}

static int
parse(const char *line, enum opt_set set, struct smtp_cmd *cmd, struct smtp_reply *r)
{
    struct smtp_cmd_opts o = opts_for(set);

    return smtp_cmd_parse(strv_from_cstr(line), &o, cmd, r);
}

static const struct {
    const char *line;
    enum opt_set set;
    int code; /* 0: accepted */
    const char *enh;
} reply_cases[] = {
    /* verbs */
    {"", OPT_DEFAULT, 500, "5.5.1"},
    {"FOO", OPT_DEFAULT, 500, "5.5.1"},
    {"MAILX FROM:<a@b>", OPT_DEFAULT, 500, "5.5.1"},
    {" NOOP", OPT_DEFAULT, 500, "5.5.1"},
    {"noop", OPT_DEFAULT, 0, ""},
    {"NOOP anything at all", OPT_DEFAULT, 0, ""},
    {"HELP", OPT_DEFAULT, 0, ""},
    {"HELP MAIL", OPT_DEFAULT, 0, ""},
    {"QUIT", OPT_DEFAULT, 0, ""},
    {"QUIT ", OPT_DEFAULT, 0, ""},
    {"QUIT now", OPT_DEFAULT, 501, "5.5.4"},
    {"RSET", OPT_DEFAULT, 0, ""},
    {"RSET x", OPT_DEFAULT, 501, "5.5.4"},
    {"DATA", OPT_DEFAULT, 0, ""},
    {"data", OPT_DEFAULT, 0, ""},
    {"DATA x", OPT_DEFAULT, 501, "5.5.4"},
    {"STARTTLS", OPT_DEFAULT, 0, ""},
    {"STARTTLS x", OPT_DEFAULT, 501, "5.5.4"},
    {"HELO", OPT_DEFAULT, 501, "5.5.4"},
    {"HELO ", OPT_DEFAULT, 501, "5.5.4"},
    {"HELO mx.example", OPT_DEFAULT, 0, ""},
    {"EHLO", OPT_DEFAULT, 501, "5.5.4"},
    {"ehlo [1.2.3.4]", OPT_DEFAULT, 0, ""},
    {"VRFY", OPT_DEFAULT, 501, "5.5.4"},
    {"VRFY joe", OPT_DEFAULT, 0, ""},
    {"EXPN", OPT_DEFAULT, 501, "5.5.4"},
    {"EXPN list", OPT_DEFAULT, 0, ""},
    /* MAIL syntax */
    {"MAIL", OPT_DEFAULT, 501, "5.5.4"},
    {"MAIL FROM:<a@b>", OPT_DEFAULT, 0, ""},
    {"mail from:<a@b>", OPT_DEFAULT, 0, ""},
    {"MAIL FROM: <a@b>", OPT_DEFAULT, 0, ""},
    {"MAIL FROM:  <a@b>", OPT_DEFAULT, 0, ""},
    {"MAIL FROM <a@b>", OPT_DEFAULT, 501, "5.5.4"},
    {"MAIL  FROM:<a@b>", OPT_DEFAULT, 501, "5.5.4"},
    {"MAIL TO:<a@b>", OPT_DEFAULT, 501, "5.5.4"},
    {"MAIL FROM:", OPT_DEFAULT, 501, "5.5.2"},
    {"MAIL FROM:<>", OPT_DEFAULT, 0, ""},
    {"MAIL FROM:<a@b> ", OPT_DEFAULT, 501, "5.5.4"},
    {"MAIL FROM:<a@b>\t", OPT_DEFAULT, 501, "5.5.4"},
    {"MAIL FROM:<a@b> ", OPT_LENIENT, 0, ""},
    {"MAIL FROM:<a@b> SIZE=10  ", OPT_LENIENT, 0, ""},
    {"MAIL FROM:a@b", OPT_DEFAULT, 501, "5.5.2"},
    {"MAIL FROM:a@b", OPT_LENIENT, 0, ""},
    {"MAIL FROM:< a@b >", OPT_DEFAULT, 501, "5.5.2"},
    {"MAIL FROM:< a@b >", OPT_LENIENT, 0, ""},
    {"MAIL FROM:<a@b>x", OPT_DEFAULT, 501, "5.5.4"},
    {"MAIL FROM:<a..b@c>", OPT_DEFAULT, 501, "5.5.2"},
    {"MAIL FROM:<a..b@c>", OPT_LENIENT, 0, ""},
    {"MAIL FROM:<a@[1.2.3.4]>", OPT_DEFAULT, 0, ""},
    {"MAIL FROM:<a@[1.2.3.4]>", OPT_NOLIT, 553, "5.1.8"},
    {"MAIL FROM:<a@[1.2.3]>", OPT_DEFAULT, 501, "5.5.2"},
    {"MAIL FROM:<joe>", OPT_DEFAULT, 553, "5.1.7"},
    {"MAIL FROM:<joe>", OPT_LENIENT, 0, ""},
    {"MAIL FROM:<postmaster>", OPT_DEFAULT, 553, "5.1.7"},
    {"MAIL FROM:<\xc3\xbc@x>", OPT_DEFAULT, 553, "5.6.7"},
    {"MAIL FROM:<\xc3\xbc@x> SMTPUTF8", OPT_DEFAULT, 0, ""},
    {"MAIL FROM:<\xc3@x> SMTPUTF8", OPT_DEFAULT, 501, "5.5.2"},
    {"MAIL FROM:<a@b>\r", OPT_DEFAULT, 500, "5.5.2"},
    /* MAIL parameters */
    {"MAIL FROM:<a@b> SIZE=100", OPT_DEFAULT, 0, ""},
    {"MAIL FROM:<a@b>  SIZE=100   BODY=8BITMIME", OPT_DEFAULT, 0, ""},
    {"MAIL FROM:<a@b> SIZE=abc", OPT_DEFAULT, 501, "5.5.4"},
    {"MAIL FROM:<a@b> SIZE=", OPT_DEFAULT, 501, "5.5.4"},
    {"MAIL FROM:<a@b> SIZE", OPT_DEFAULT, 501, "5.5.4"},
    {"MAIL FROM:<a@b> SIZE=-1", OPT_DEFAULT, 501, "5.5.4"},
    {"MAIL FROM:<a@b> SIZE=99999999999999999999999", OPT_DEFAULT, 552, "5.3.4"},
    {"MAIL FROM:<a@b> SIZE=100", OPT_NOEXT, 555, "5.5.4"},
    {"MAIL FROM:<a@b> BODY=8BITMIME", OPT_DEFAULT, 0, ""},
    {"MAIL FROM:<a@b> body=7bit", OPT_DEFAULT, 0, ""},
    {"MAIL FROM:<a@b> BODY=BINARYMIME", OPT_DEFAULT, 0, ""},
    {"MAIL FROM:<a@b> BODY=BINARYMIME", OPT_NOBINARY, 555, "5.5.4"},
    {"MAIL FROM:<a@b> BODY=8BITMIME", OPT_NOEXT, 555, "5.5.4"},
    {"MAIL FROM:<a@b> BODY=FOO", OPT_DEFAULT, 501, "5.5.4"},
    {"MAIL FROM:<a@b> BODY", OPT_DEFAULT, 501, "5.5.4"},
    {"MAIL FROM:<a@b> SMTPUTF8", OPT_DEFAULT, 0, ""},
    {"MAIL FROM:<a@b> SMTPUTF8=yes", OPT_DEFAULT, 501, "5.5.4"},
    {"MAIL FROM:<a@b> SMTPUTF8", OPT_NOEXT, 555, "5.5.4"},
    {"MAIL FROM:<a@b> RET=FULL", OPT_DEFAULT, 0, ""},
    {"MAIL FROM:<a@b> RET=hdrs", OPT_DEFAULT, 0, ""},
    {"MAIL FROM:<a@b> RET=BOTH", OPT_DEFAULT, 501, "5.5.4"},
    {"MAIL FROM:<a@b> RET", OPT_DEFAULT, 501, "5.5.4"},
    {"MAIL FROM:<a@b> RET=FULL", OPT_NOEXT, 555, "5.5.4"},
    {"MAIL FROM:<a@b> ENVID=QQ314159", OPT_DEFAULT, 0, ""},
    {"MAIL FROM:<a@b> ENVID=a+ZZ", OPT_DEFAULT, 501, "5.5.4"},
    {"MAIL FROM:<a@b> ENVID=a+0A", OPT_DEFAULT, 501, "5.5.4"},
    {"MAIL FROM:<a@b> ENVID", OPT_DEFAULT, 501, "5.5.4"},
    {"MAIL FROM:<a@b> ENVID=a=b", OPT_DEFAULT, 501, "5.5.4"},
    {"MAIL FROM:<a@b> AUTH=<>", OPT_DEFAULT, 0, ""},
    {"MAIL FROM:<a@b> AUTH=joe+40example.com", OPT_DEFAULT, 0, ""},
    {"MAIL FROM:<a@b> AUTH=+Z", OPT_DEFAULT, 501, "5.5.4"},
    {"MAIL FROM:<a@b> AUTH=<>", OPT_NOEXT, 555, "5.5.4"},
    {"MAIL FROM:<a@b> FOO=bar", OPT_DEFAULT, 555, "5.5.4"},
    {"MAIL FROM:<a@b> X-FOO", OPT_DEFAULT, 555, "5.5.4"},
    {"MAIL FROM:<a@b> NOTIFY=NEVER", OPT_DEFAULT, 555, "5.5.4"},
    {"MAIL FROM:<a@b> SIZE=1 size=2", OPT_DEFAULT, 501, "5.5.4"},
    {"MAIL FROM:<a@b> -X=1", OPT_DEFAULT, 501, "5.5.4"},
    {"MAIL FROM:<a@b> X_Y=1", OPT_DEFAULT, 501, "5.5.4"},
    {"MAIL FROM:<a@b> =1", OPT_DEFAULT, 501, "5.5.4"},
    {"MAIL FROM:<a@b> A=1 B=1 C=1 D=1 E=1 F=1 G=1 H=1 I=1 J=1 K=1 L=1 M=1 N=1 O=1 P=1 Q=1",
     OPT_DEFAULT, 501, "5.5.4"},
    /* RCPT */
    {"RCPT", OPT_DEFAULT, 501, "5.5.4"},
    {"RCPT TO:<a@b>", OPT_DEFAULT, 0, ""},
    {"rcpt to: <a@b>", OPT_DEFAULT, 0, ""},
    {"RCPT FROM:<a@b>", OPT_DEFAULT, 501, "5.5.4"},
    {"RCPT TO:<>", OPT_DEFAULT, 501, "5.5.2"},
    {"RCPT TO:<postmaster>", OPT_DEFAULT, 0, ""},
    {"RCPT TO:<Postmaster>", OPT_DEFAULT, 0, ""},
    {"RCPT TO:<abuse>", OPT_DEFAULT, 553, "5.1.3"},
    {"RCPT TO:<abuse>", OPT_LENIENT, 0, ""},
    {"RCPT TO:<a@[1.2.3.4]>", OPT_NOLIT, 553, "5.1.2"},
    {"RCPT TO:<@r1,@r2:a@b>", OPT_DEFAULT, 0, ""},
    {"RCPT TO:<\xc3\xbc@x>", OPT_DEFAULT, 553, "5.6.7"},
    {"RCPT TO:<\xc3\xbc@x>", OPT_UTF8TX, 0, ""},
    {"RCPT TO:<a@b> SIZE=1", OPT_DEFAULT, 555, "5.5.4"},
    {"RCPT TO:<a@b> NOTIFY=SUCCESS,FAILURE,DELAY", OPT_DEFAULT, 0, ""},
    {"RCPT TO:<a@b> NOTIFY=never", OPT_DEFAULT, 0, ""},
    {"RCPT TO:<a@b> NOTIFY=NEVER,SUCCESS", OPT_DEFAULT, 501, "5.5.4"},
    {"RCPT TO:<a@b> NOTIFY=SUCCESS,", OPT_DEFAULT, 501, "5.5.4"},
    {"RCPT TO:<a@b> NOTIFY=,SUCCESS", OPT_DEFAULT, 501, "5.5.4"},
    {"RCPT TO:<a@b> NOTIFY=SUCCESS,,DELAY", OPT_DEFAULT, 501, "5.5.4"},
    {"RCPT TO:<a@b> NOTIFY=BOGUS", OPT_DEFAULT, 501, "5.5.4"},
    {"RCPT TO:<a@b> NOTIFY", OPT_DEFAULT, 501, "5.5.4"},
    {"RCPT TO:<a@b> NOTIFY=SUCCESS", OPT_NOEXT, 555, "5.5.4"},
    {"RCPT TO:<a@b> ORCPT=rfc822;a+40b", OPT_DEFAULT, 0, ""},
    {"RCPT TO:<a@b> ORCPT=rfc822", OPT_DEFAULT, 501, "5.5.4"},
    {"RCPT TO:<a@b> ORCPT=;a", OPT_DEFAULT, 501, "5.5.4"},
    {"RCPT TO:<a@b> ORCPT=rfc822;", OPT_DEFAULT, 501, "5.5.4"},
    {"RCPT TO:<a@b> ORCPT=rfc822;a+0Ab", OPT_DEFAULT, 501, "5.5.4"},
    {"RCPT TO:<a@b> ORCPT=rfc822;a+C3+A9", OPT_DEFAULT, 501, "5.5.4"},
    {"RCPT TO:<a@b> ORCPT=rfc822;a+Z", OPT_DEFAULT, 501, "5.5.4"},
    {"RCPT TO:<a@b> ORCPT=utf-8;\\x{E9}@x", OPT_DEFAULT, 0, ""},
    {"RCPT TO:<a@b> ORCPT=utf-8;\xc3\xa9@x", OPT_DEFAULT, 0, ""},
    {"RCPT TO:<a@b> ORCPT=utf-8;\\x{0A}@x", OPT_DEFAULT, 501, "5.5.4"},
    {"RCPT TO:<a@b> ORCPT=utf-8;a+40b", OPT_DEFAULT, 501, "5.5.4"},
    {"RCPT TO:<a@b> ORCPT=rfc822;a", OPT_NOEXT, 555, "5.5.4"},
    {"RCPT TO:<a@b> ORCPT=rfc822;a ORCPT=rfc822;b", OPT_DEFAULT, 501, "5.5.4"},
    /* BDAT */
    {"BDAT 100", OPT_DEFAULT, 0, ""},
    {"BDAT 0 LAST", OPT_DEFAULT, 0, ""},
    {"bdat 100 last", OPT_DEFAULT, 0, ""},
    {"BDAT", OPT_DEFAULT, 501, "5.5.4"},
    {"BDAT x", OPT_DEFAULT, 501, "5.5.4"},
    {"BDAT -1", OPT_DEFAULT, 501, "5.5.4"},
    {"BDAT 100 FIRST", OPT_DEFAULT, 501, "5.5.4"},
    {"BDAT 100 LAST x", OPT_DEFAULT, 501, "5.5.4"},
    {"BDAT 99999999999999999999999", OPT_DEFAULT, 501, "5.5.4"},
    /* AUTH */
    {"AUTH PLAIN", OPT_DEFAULT, 0, ""},
    {"AUTH PLAIN dGVzdAB0ZXN0AHRlc3Q=", OPT_DEFAULT, 0, ""},
    {"AUTH PLAIN =", OPT_DEFAULT, 0, ""},
    {"AUTH CRAM-MD5", OPT_DEFAULT, 0, ""},
    {"AUTH SCRAM_X", OPT_DEFAULT, 0, ""},
    {"AUTH", OPT_DEFAULT, 501, "5.5.4"},
    {"AUTH PL@IN", OPT_DEFAULT, 501, "5.5.4"},
    {"AUTH ABCDEFGHIJKLMNOPQRSTU", OPT_DEFAULT, 501, "5.5.4"},
    {"AUTH PLAIN abc", OPT_DEFAULT, 501, "5.5.2"},
    {"AUTH PLAIN ab=c", OPT_DEFAULT, 501, "5.5.2"},
    {"AUTH PLAIN a===", OPT_DEFAULT, 501, "5.5.2"},
    {"AUTH PLAIN a!bc", OPT_DEFAULT, 501, "5.5.2"},
    {"AUTH PLAIN abcd efgh", OPT_DEFAULT, 501, "5.5.4"},
    /* XCLIENT */
    {"XCLIENT ADDR=1.2.3.4 NAME=[UNAVAILABLE]", OPT_DEFAULT, 0, ""},
    {"XCLIENT addr=1.2.3.4 ", OPT_DEFAULT, 0, ""},
    {"XCLIENT", OPT_DEFAULT, 501, "5.5.4"},
    {"XCLIENT FOO=1", OPT_DEFAULT, 501, "5.5.4"},
    {"XCLIENT ADDR", OPT_DEFAULT, 501, "5.5.4"},
    {"XCLIENT ADDR=1 ADDR=2", OPT_DEFAULT, 501, "5.5.4"},
    {"XCLIENT LOGIN=a+ZZ", OPT_DEFAULT, 501, "5.5.4"},
};

static void
test_reply_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < NELEM(reply_cases); i++) {
        struct smtp_cmd cmd;
        struct smtp_reply r;
        int err = parse(reply_cases[i].line, reply_cases[i].set, &cmd, &r);

        if (reply_cases[i].code == 0) {
            if (err != 0) {
                fail_msg("case %zu \"%s\": refused %d %s %.*s", i, reply_cases[i].line, r.code,
                         r.enh, STRV_FMT(r.text));
            }
            continue;
        }
        if (err != CELER_EPROTO || r.code != reply_cases[i].code ||
            strcmp(r.enh, reply_cases[i].enh) != 0) {
            fail_msg("case %zu \"%s\": got %d %d %s, want %d %s", i, reply_cases[i].line, err,
                     r.code, r.enh, reply_cases[i].code, reply_cases[i].enh);
        }
        assert_true(r.text.len > 0);
    }
}

static void
test_control_octets_and_length(void **state)
{
    struct smtp_cmd_opts o;
    struct smtp_cmd cmd;
    struct smtp_reply r;
    static char line[SMTP_CMD_AUTH_LINE_MAX + 2];

    (void)state;
    smtp_cmd_opts_init(&o);
    assert_int_equal(smtp_cmd_parse(STRV_LIT("NOOP a\0b"), &o, &cmd, &r), CELER_EPROTO);
    assert_int_equal(r.code, 500);
    assert_string_equal(r.enh, "5.5.2");
    assert_int_equal(smtp_cmd_parse(STRV_LIT("NOOP a\nb"), &o, &cmd, &r), CELER_EPROTO);
    assert_int_equal(smtp_cmd_parse(STRV_LIT("NOOP a\x7f"), &o, &cmd, &r), CELER_EPROTO);
    assert_int_equal(smtp_cmd_parse(STRV_LIT("NOOP a\tb"), &o, &cmd, &r), 0);

    /* 2048 octets pass, 2049 do not; AUTH may have 12288 */
    memset(line, 'x', sizeof(line));
    memcpy(line, "NOOP ", 5);
    assert_int_equal(smtp_cmd_parse(strv_make(line, SMTP_CMD_LINE_MAX), &o, &cmd, &r), 0);
    assert_int_equal(smtp_cmd_parse(strv_make(line, SMTP_CMD_LINE_MAX + 1), &o, &cmd, &r),
                     CELER_EPROTO);
    assert_int_equal(r.code, 500);
    assert_string_equal(r.enh, "5.5.2");
    memcpy(line, "XYZZ ", 5);
    assert_int_equal(smtp_cmd_parse(strv_make(line, SMTP_CMD_LINE_MAX + 1), &o, &cmd, &r),
                     CELER_EPROTO);
    assert_int_equal(r.code, 500);
    assert_string_equal(r.enh, "5.5.2");
    memcpy(line, "AUTH PLAIN ", 11);
    for (size_t i = 11; i < sizeof(line); i++) {
        line[i] = 'A';
    }
    assert_int_equal(smtp_cmd_parse(strv_make(line, 11 + 12276), &o, &cmd, &r), 0);
    assert_int_equal(cmd.u.auth.initial.len, 12276);
    assert_int_equal(smtp_cmd_parse(strv_make(line, SMTP_CMD_AUTH_LINE_MAX + 1), &o, &cmd, &r),
                     CELER_EPROTO);
    assert_int_equal(r.code, 500);
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
test_mail_fields(void **state)
{
    struct smtp_cmd cmd;
    struct smtp_reply r;
    const struct smtp_mail_params *m = &cmd.u.mail;

    (void)state;
    assert_int_equal(parse("MAIL FROM:<Joe@Example.com> SIZE=12345 BODY=8BITMIME SMTPUTF8 "
                           "RET=HDRS ENVID=QQ+2B314159 AUTH=joe+40example.com",
                           OPT_DEFAULT, &cmd, &r),
                     0);
    assert_int_equal(cmd.verb, SMTP_VERB_MAIL);
    assert_strv(cmd.addr.local, "Joe");
    assert_strv(cmd.addr.domain, "Example.com");
    assert_int_equal(cmd.nparams, 6);
    assert_true(m->has_size);
    assert_int_equal(m->size, 12345);
    assert_int_equal(m->body, SMTP_BODY_8BITMIME);
    assert_true(m->smtputf8);
    assert_int_equal(m->ret, SMTP_RET_HDRS);
    assert_true(m->has_envid);
    assert_string_equal(m->envid, "QQ+314159");
    assert_int_equal(m->envid_len, 9);
    assert_true(m->has_auth);
    assert_false(m->auth_null);
    assert_string_equal(m->auth, "joe@example.com");
    assert_non_null(smtp_cmd_param(&cmd, "envid"));
    assert_strv(smtp_cmd_param(&cmd, "SIZE")->value, "12345");
    assert_null(smtp_cmd_param(&cmd, "NOTIFY"));

    assert_int_equal(parse("MAIL FROM:<> AUTH=<>", OPT_DEFAULT, &cmd, &r), 0);
    assert_true(cmd.addr.is_null);
    assert_true(m->auth_null);
    assert_false(m->has_size);
    assert_int_equal(m->body, SMTP_BODY_NONE);
    assert_int_equal(m->ret, SMTP_RET_NONE);
}

static void
test_envid_limit(void **state)
{
    char line[300];
    struct smtp_cmd cmd;
    struct smtp_reply r;
    size_t len;

    (void)state;
    /* 100 decoded octets pass (here 99 + one "+41"), 101 do not */
    len = (size_t)snprintf(line, sizeof(line), "MAIL FROM:<a@b> ENVID=");
    memset(line + len, 'x', 99);
    memcpy(line + len + 99, "+41", 4);
    assert_int_equal(parse(line, OPT_DEFAULT, &cmd, &r), 0);
    assert_int_equal(cmd.u.mail.envid_len, 100);
    assert_int_equal(cmd.u.mail.envid[99], 'A');
    assert_int_equal(cmd.u.mail.envid[100], '\0');
    memset(line + len, 'x', 100);
    memcpy(line + len + 100, "+41", 4);
    assert_int_equal(parse(line, OPT_DEFAULT, &cmd, &r), CELER_EPROTO);
    assert_int_equal(r.code, 501);
    assert_string_equal(r.enh, "5.5.4");
}

static void
test_rcpt_fields(void **state)
{
    struct smtp_cmd cmd;
    struct smtp_reply r;
    const struct smtp_rcpt_params *p = &cmd.u.rcpt;

    (void)state;
    assert_int_equal(
        parse("RCPT TO:<a@b> NOTIFY=success,delay ORCPT=rfc822;Joe+2Bx+40b", OPT_DEFAULT, &cmd, &r),
        0);
    assert_int_equal(cmd.verb, SMTP_VERB_RCPT);
    assert_int_equal(p->notify, SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_DELAY);
    assert_true(p->has_orcpt);
    assert_strv(p->orcpt_type, "rfc822");
    assert_string_equal(p->orcpt, "Joe+x@b");
    assert_int_equal(p->orcpt_len, 7);

    assert_int_equal(
        parse("RCPT TO:<a@b> NOTIFY=NEVER ORCPT=UTF-8;\\x{E9}t\\x{E9}@x", OPT_DEFAULT, &cmd, &r),
        0);
    assert_int_equal(p->notify, SMTP_NOTIFY_NEVER);
    assert_string_equal(p->orcpt, "\xc3\xa9t\xc3\xa9@x");

    assert_int_equal(parse("RCPT TO:<a@b>", OPT_DEFAULT, &cmd, &r), 0);
    assert_int_equal(p->notify, 0);
    assert_false(p->has_orcpt);

    assert_int_equal(parse("RCPT TO:<postmaster>", OPT_DEFAULT, &cmd, &r), 0);
    assert_true(cmd.addr.is_unqualified);
}

static void
test_orcpt_limit(void **state)
{
    char line[700];
    struct smtp_cmd cmd;
    struct smtp_reply r;
    size_t len;

    (void)state;
    /* the whole ORCPT value may be 500 octets */
    len = (size_t)snprintf(line, sizeof(line), "RCPT TO:<a@b> ORCPT=rfc822;");
    memset(line + len, 'x', 500 - 7);
    line[len + 500 - 7] = '\0';
    assert_int_equal(parse(line, OPT_DEFAULT, &cmd, &r), 0);
    assert_int_equal(cmd.u.rcpt.orcpt_len, 493);
    line[len + 500 - 7] = 'x';
    line[len + 500 - 6] = '\0';
    assert_int_equal(parse(line, OPT_DEFAULT, &cmd, &r), CELER_EPROTO);
    assert_int_equal(r.code, 501);
}

static void
test_other_fields(void **state)
{
    struct smtp_cmd cmd;
    struct smtp_reply r;

    (void)state;
    assert_int_equal(parse("EHLO  mx.example.com  ", OPT_DEFAULT, &cmd, &r), 0);
    assert_int_equal(cmd.verb, SMTP_VERB_EHLO);
    assert_strv(cmd.arg, "mx.example.com");
    assert_string_equal(smtp_verb_name(cmd.verb), "EHLO");

    assert_int_equal(parse("BDAT 4096 LAST", OPT_DEFAULT, &cmd, &r), 0);
    assert_int_equal(cmd.verb, SMTP_VERB_BDAT);
    assert_int_equal(cmd.u.bdat.size, 4096);
    assert_true(cmd.u.bdat.last);
    assert_int_equal(parse("BDAT 18446744073709551615", OPT_DEFAULT, &cmd, &r), 0);
    assert_int_equal(cmd.u.bdat.size, UINT64_MAX);
    assert_false(cmd.u.bdat.last);

    assert_int_equal(parse("AUTH plain dGVzdA==", OPT_DEFAULT, &cmd, &r), 0);
    assert_strv(cmd.u.auth.mech, "plain");
    assert_strv(cmd.u.auth.initial, "dGVzdA==");
    assert_true(cmd.u.auth.has_initial);
    assert_int_equal(parse("AUTH LOGIN", OPT_DEFAULT, &cmd, &r), 0);
    assert_false(cmd.u.auth.has_initial);

    assert_int_equal(
        parse("XCLIENT NAME=mx.example ADDR=IPV6:2001:db8::1 PORT=25", OPT_DEFAULT, &cmd, &r), 0);
    assert_int_equal(cmd.u.xclient_attrs,
                     SMTP_XCLIENT_NAME | SMTP_XCLIENT_ADDR | SMTP_XCLIENT_PORT);
    assert_int_equal(cmd.nparams, 3);
    assert_strv(smtp_cmd_param(&cmd, "ADDR")->value, "IPV6:2001:db8::1");

    assert_int_equal(parse("VRFY  Joe Smith ", OPT_DEFAULT, &cmd, &r), 0);
    assert_strv(cmd.arg, "Joe Smith");
    assert_int_equal(parse("starttls", OPT_DEFAULT, &cmd, &r), 0);
    assert_int_equal(cmd.verb, SMTP_VERB_STARTTLS);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reply_table),  cmocka_unit_test(test_control_octets_and_length),
        cmocka_unit_test(test_mail_fields),  cmocka_unit_test(test_envid_limit),
        cmocka_unit_test(test_rcpt_fields),  cmocka_unit_test(test_orcpt_limit),
        cmocka_unit_test(test_other_fields),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
