/*
 * fuzz_smtp_reply: the client-side reply parser, EHLO capabilities and
 * the reply formatter.
 *
 * Input: received bytes. Replies are parsed one after another, as a
 * client consumes pipelined replies. Each parsed reply must lie inside
 * the input, respect the line and count limits, parse the same from just
 * its own bytes, and survive formatting: the formatted reply (sanitised,
 * lines of at most 512 octets) parses back with the same code and line
 * count. A 250 reply's EHLO keywords, formatted and parsed again, keep
 * their extensions. Any violation aborts.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_reply.h"
#include "fuzzkit.h"

static void
check_shape(const struct smtp_reply_in *r, struct strv in)
{
    CHECK(r->consumed > 0 && r->consumed <= in.len);
    CHECK(r->code >= 200 && r->code <= 599);
    CHECK(r->nlines >= 1 && r->nlines <= SMTP_REPLY_LINES_MAX);
    for (size_t i = 0; i < r->nlines; i++) {
        struct strv l = r->lines[i];

        CHECK(l.len <= SMTP_REPLY_LINE_IN_MAX);
        CHECK(l.len == 0 || (l.ptr >= in.ptr && l.ptr + l.len <= in.ptr + r->consumed));
        CHECK(memchr(l.ptr, '\n', l.len) == NULL);
    }
    CHECK(r->enh[0] == '\0' || r->enh[0] == (char)('0' + r->code / 100));
}

static void
check_reformat(const struct smtp_reply_in *r)
{
    struct smtp_reply_in back;
    struct buf out;
    struct strv rest;

    buf_init(&out, 1 << 20);
    CHECK(try_smtp_reply_format_lines(&out, r->code, r->enh, r->lines, r->nlines) == 0);
    rest = buf_data(&out);
    while (rest.len) { /* every line short and free of stray CR/LF */
        ptrdiff_t lf = strv_chr(rest, '\n');

        CHECK(lf >= 1 && (size_t)lf + 1 <= SMTP_REPLY_LINE_OUT_MAX && rest.ptr[lf - 1] == '\r');
        CHECK(memchr(rest.ptr, '\r', (size_t)lf - 1) == NULL);
        rest = strv_from(rest, (size_t)lf + 1);
    }
    CHECK(smtp_reply_parse(buf_data(&out), &back) == 0);
    CHECK(back.code == r->code && back.nlines == r->nlines && back.consumed == buf_len(&out));
    if (r->enh[0]) {
        CHECK(strcmp(back.enh, r->enh) == 0);
    }
    buf_release(&out);
}

static void
check_ehlo(const struct smtp_reply_in *r)
{
    const unsigned lists = SMTP_EXT_AUTH | SMTP_EXT_XCLIENT;
    struct smtp_ehlo caps, back;
    struct smtp_reply_in again;
    struct buf out;

    if (smtp_ehlo_parse(r, &caps) != 0) {
        CHECK(r->code != 250);
        return;
    }
    CHECK(r->code == 250);
    buf_init(&out, 1 << 16);
    CHECK(try_smtp_ehlo_format(&out, caps.server_name, &caps) == 0);
    CHECK(smtp_reply_parse(buf_data(&out), &again) == 0);
    CHECK(smtp_ehlo_parse(&again, &back) == 0);
    CHECK((back.ext & ~lists) == (caps.ext & ~lists));
    CHECK(back.size_max == caps.size_max);
    CHECK(!(caps.ext & SMTP_EXT_AUTH) || caps.auth.len == 0 || (back.ext & SMTP_EXT_AUTH));
    buf_release(&out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct strv in = strv_make((const char *)data, size);

    for (;;) {
        struct smtp_reply_in r, alone;
        int err = smtp_reply_parse(in, &r);

        CHECK(err == 0 || err == -EAGAIN || err == CELER_EPROTO);
        if (err != 0) {
            break;
        }
        check_shape(&r, in);
        CHECK(smtp_reply_parse(strv_sub(in, 0, r.consumed), &alone) == 0);
        CHECK(alone.code == r.code && alone.nlines == r.nlines && alone.consumed == r.consumed);
        check_reformat(&r);
        check_ehlo(&r);
        in = strv_from(in, r.consumed);
    }
    return 0;
}
