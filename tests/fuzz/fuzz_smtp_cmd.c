/*
 * fuzz_smtp_cmd: command-line parsing, addresses and xtext.
 *
 * Input: one byte of option flags, then command lines separated by LF (a
 * CR before the LF is dropped). For each line the outcome must be either
 * a parsed command whose views lie inside the line and whose decoded
 * values respect their limits, or a well-formed refusal. An accepted
 * address, rendered and parsed again as a bare mailbox, must give the
 * same rendering (normalisation is stable). Each line is also fed to the
 * xtext codecs, whose decode/encode pairs must round-trip.
 * Any violation aborts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_cmd.h"
#include "smtp/smtp_xtext.h"
#include "fuzzkit.h"

static bool
inside(struct strv v, struct strv line)
{
    return v.len == 0 || (v.ptr >= line.ptr && v.ptr + v.len <= line.ptr + line.len);
}

static void
opts_from(uint8_t f, struct smtp_cmd_opts *o)
{
    smtp_cmd_opts_init(o);
    o->allow_trailing_ws = f & 0x01;
    o->addr.space_in_brackets = f & 0x02;
    o->addr.no_brackets = f & 0x04;
    o->addr.pedantic = !(f & 0x08);
    o->addr.ip_literal = !(f & 0x10);
    o->allow_unqualified_sender = o->allow_unqualified_rcpt = f & 0x20;
    o->smtputf8 = f & 0x40;
    if (f & 0x80) {
        o->ext = SMTP_EXT_SIZE | SMTP_EXT_8BITMIME | SMTP_EXT_PIPELINING;
    }
}

static void
check_refusal(const struct smtp_reply *r)
{
    struct buf b;

    CHECK(r->code == 500 || r->code == 501 || r->code == 552 || r->code == 553 || r->code == 555);
    CHECK(r->enh[0] == '5' && r->enh[1] == '.');
    CHECK(r->text.len > 0);
    buf_init(&b, 1024);
    CHECK(try_smtp_reply_format(&b, r, true) == 0);
    CHECK(buf_len(&b) <= SMTP_REPLY_LINE_OUT_MAX);
    buf_release(&b);
}

/* render(addr) parsed as a mailbox renders the same again. */
static void
check_render_stable(const struct smtp_addr *a, const struct smtp_cmd_opts *o)
{
    struct smtp_addr_opts ao = o->addr;
    struct smtp_addr again;
    enum smtp_addr_error why;
    struct buf one, two;

    if (a->is_null) {
        return;
    }
    buf_init(&one, 1024);
    buf_init(&two, 1024);
    CHECK(try_smtp_addr_render(a, STRV_NULL, &one) == 0);
    ao.utf8 = true;
    ao.unqualified = a->is_unqualified;
    ao.ip_literal = true;
    ao.space_in_brackets = false;
    CHECK(smtp_addr_parse_mailbox(buf_data(&one), &ao, &again, &why) == 0);
    CHECK(try_smtp_addr_render(&again, STRV_NULL, &two) == 0);
    CHECK(strv_eq(buf_data(&one), buf_data(&two)));
    buf_release(&one);
    buf_release(&two);
}

static bool
printable(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)s[i] < 32 || (unsigned char)s[i] > 126) {
            return false;
        }
    }
    return true;
}

static void
check_command(const struct smtp_cmd *cmd, struct strv line, const struct smtp_cmd_opts *o)
{
    CHECK(inside(cmd->arg, line));
    CHECK(cmd->nparams <= SMTP_CMD_PARAMS_MAX);
    for (size_t i = 0; i < cmd->nparams; i++) {
        CHECK(cmd->params[i].key.len > 0 && inside(cmd->params[i].key, line));
        CHECK(inside(cmd->params[i].value, line));
    }
    if (cmd->verb == SMTP_VERB_MAIL || cmd->verb == SMTP_VERB_RCPT) {
        const struct smtp_addr *a = &cmd->addr;

        CHECK(inside(a->local, line) && inside(a->domain, line) && inside(a->route, line));
        CHECK(a->local.len <= SMTP_ADDR_LOCAL_MAX && a->domain.len <= SMTP_ADDR_DOMAIN_MAX);
        CHECK(!a->is_ip_literal || o->addr.ip_literal);
        check_render_stable(a, o);
    }
    if (cmd->verb == SMTP_VERB_MAIL) {
        const struct smtp_mail_params *m = &cmd->u.mail;

        CHECK(m->envid_len <= SMTP_CMD_ENVID_MAX && printable(m->envid, m->envid_len));
        CHECK(m->auth_len <= SMTP_CMD_AUTH_MAX);
        CHECK(!cmd->addr.needs_smtputf8 || m->smtputf8);
    }
    if (cmd->verb == SMTP_VERB_RCPT) {
        const struct smtp_rcpt_params *r = &cmd->u.rcpt;

        CHECK(!cmd->addr.is_null);
        CHECK(r->orcpt_len <= SMTP_CMD_ORCPT_MAX);
        CHECK(!(r->notify & SMTP_NOTIFY_NEVER) || r->notify == SMTP_NOTIFY_NEVER);
        CHECK(!cmd->addr.needs_smtputf8 || o->smtputf8);
    }
}

static void
check_xtext(struct strv s)
{
    struct buf dec, enc, again;

    buf_init(&dec, 1 << 16);
    buf_init(&enc, 1 << 16);
    buf_init(&again, 1 << 16);
    /* encode then decode gives the input back */
    CHECK(try_smtp_xtext_encode(s, &enc) == 0);
    CHECK(smtp_xtext_valid(buf_data(&enc)));
    CHECK(try_smtp_xtext_decode(buf_data(&enc), &again) == 0);
    CHECK(strv_eq(buf_data(&again), s));
    /* decoding agrees with validation */
    CHECK((try_smtp_xtext_decode(s, &dec) == 0) == smtp_xtext_valid(s));
    buf_reset(&dec);
    buf_reset(&enc);
    buf_reset(&again);
    /* utf-8-addr: what decodes re-encodes and decodes to the same */
    if (try_smtp_xtext_decode_utf8addr(s, true, &dec) == 0) {
        CHECK(smtp_xtext_utf8_valid(buf_data(&dec)));
        CHECK(try_smtp_xtext_encode_utf8addr(buf_data(&dec), &enc) == 0);
        CHECK(try_smtp_xtext_decode_utf8addr(buf_data(&enc), false, &again) == 0);
        CHECK(strv_eq(buf_data(&again), buf_data(&dec)));
    }
    buf_release(&dec);
    buf_release(&enc);
    buf_release(&again);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct smtp_cmd_opts o;
    struct strv rest;

    if (size < 1) {
        return 0;
    }
    opts_from(data[0], &o);
    rest = strv_make((const char *)data + 1, size - 1);
    while (rest.len > 0) {
        struct strv line = strv_split(&rest, '\n');
        struct smtp_cmd cmd;
        struct smtp_reply r;
        int err;

        if (line.len > 0 && line.ptr[line.len - 1] == '\r') {
            line.len--;
        }
        err = smtp_cmd_parse(line, &o, &cmd, &r);
        CHECK(err == 0 || err == CELER_EPROTO);
        if (err != 0) {
            check_refusal(&r);
        } else {
            CHECK(r.code == 0);
            check_command(&cmd, line, &o);
        }
        check_xtext(line);
    }
    return 0;
}
