/*
 * smtp_reply: SMTP replies, both directions (RFC 5321 4.2, RFC 2034,
 * RFC 1869/5321 EHLO keywords).
 *
 * Owns the types every SMTP module shares: struct smtp_reply (a protocol
 * outcome as data) and the SMTP_EXT_* extension bits.
 *
 * (a) Server side: formats replies into a struct buf. Text is sanitised
 *     (control characters, CR and LF included, become spaces, so no peer
 *     or policy text can inject a reply line) and every line is cut to
 *     SMTP_REPLY_LINE_OUT_MAX octets including CRLF, never inside a UTF-8
 *     sequence.
 * (b) Client side: parses a complete, possibly multi-line reply from the
 *     received bytes. Limits: SMTP_REPLY_LINE_IN_MAX octets per line,
 *     SMTP_REPLY_LINES_MAX lines; beyond them, or on a malformed code or
 *     mixed codes, the peer is in violation (CELER_EPROTO). Lines may end
 *     with CRLF or a bare LF (the reply is still understood).
 * (c) EHLO: parses a 250 reply's keywords into struct smtp_ehlo, and
 *     formats one for the server side.
 *
 * Pure: no I/O and no state outside the caller's structures. Parsed views
 * borrow the caller's input bytes.
 */
#ifndef CELER_SMTP_REPLY_H
#define CELER_SMTP_REPLY_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/strv.h"

/* A reply as data: code 0 means "no reply". text borrows a static string. */
struct smtp_reply {
    int code;
    char enh[12];     /* enhanced status code "x.y.z" or "" */
    struct strv text; /* borrowed */
};

/* A reply from constant parts: SMTP_REPLY(501, "5.5.4", "Syntax error"). */
#define SMTP_REPLY(code, enh, text) ((struct smtp_reply){(code), enh, STRV_LIT(text)})

/* ESMTP extensions, as EHLO keywords (RFC numbers for reference). */
enum smtp_ext {
    SMTP_EXT_SIZE = 1u << 0,                /* RFC 1870 */
    SMTP_EXT_PIPELINING = 1u << 1,          /* RFC 2920 */
    SMTP_EXT_8BITMIME = 1u << 2,            /* RFC 6152 */
    SMTP_EXT_SMTPUTF8 = 1u << 3,            /* RFC 6531 */
    SMTP_EXT_STARTTLS = 1u << 4,            /* RFC 3207 */
    SMTP_EXT_CHUNKING = 1u << 5,            /* RFC 3030 */
    SMTP_EXT_BINARYMIME = 1u << 6,          /* RFC 3030 */
    SMTP_EXT_ENHANCEDSTATUSCODES = 1u << 7, /* RFC 2034 */
    SMTP_EXT_DSN = 1u << 8,                 /* RFC 3461 */
    SMTP_EXT_AUTH = 1u << 9,                /* RFC 4954 */
    SMTP_EXT_XCLIENT = 1u << 10,            /* Postfix XCLIENT */
};
#define SMTP_EXT_ALL ((1u << 11) - 1)

/* Keyword of one SMTP_EXT_* bit ("PIPELINING"), or NULL. */
const char *smtp_ext_name(unsigned ext);

/* ---- (a) formatting (server side) ---- */

#define SMTP_REPLY_LINE_OUT_MAX 512 /* octets per reply line, CRLF included */

/*
 * Appends one reply line: "250-text\r\n" (more) or "250 text\r\n" (last).
 * With a non-empty enh, the line reads "250 2.0.0 text". CELER_ELIMIT past
 * out's ceiling.
 */
int try_smtp_reply_format_line(struct buf *out, int code, const char *enh, struct strv text,
                               bool last) CELER_WUR;

/*
 * Appends r as a one-line reply; its enhanced code is written only when
 * enhanced (the client was offered ENHANCEDSTATUSCODES) and r has one.
 */
int try_smtp_reply_format(struct buf *out, const struct smtp_reply *r, bool enhanced) CELER_WUR;

/* Appends a reply of n lines (n >= 1), each with the same code and enh. */
int try_smtp_reply_format_lines(struct buf *out, int code, const char *enh,
                                const struct strv *lines, size_t n) CELER_WUR;

/* ---- (b) parsing (client side) ---- */

#define SMTP_REPLY_LINE_IN_MAX 4096 /* octets per received line, CRLF excluded */
#define SMTP_REPLY_LINES_MAX   100

struct smtp_reply_in {
    int code;
    char enh[12]; /* enhanced code of the first line, "" if absent */
    size_t nlines;
    struct strv lines[SMTP_REPLY_LINES_MAX]; /* borrowed: text after "NNN-" or "NNN " */
    size_t consumed;                         /* octets of input the reply used */
};

/*
 * Parses the reply at the start of in (typically buf_data() of the
 * connection's input buffer). Returns 0 with *r filled (views borrow in;
 * consume r->consumed octets after use), -EAGAIN when in does not yet hold
 * a complete reply, or CELER_EPROTO for a malformed reply.
 */
int smtp_reply_parse(struct strv in, struct smtp_reply_in *r) CELER_WUR;

/*
 * Recognises an enhanced status code "c.s.d" at the start of text whose
 * class c matches class_digit ('2', '4' or '5'), followed by a space or the
 * end. Returns its length (0 if none) and copies it NUL-terminated to enh.
 */
size_t smtp_reply_enh_parse(struct strv text, char class_digit, char enh[12]);

/* ---- (c) EHLO ---- */

/* AUTH mechanisms celer knows by name. */
enum smtp_auth_mech {
    SMTP_AUTH_PLAIN = 1u << 0,
    SMTP_AUTH_LOGIN = 1u << 1,
    SMTP_AUTH_CRAM_MD5 = 1u << 2,
    SMTP_AUTH_DIGEST_MD5 = 1u << 3,
    SMTP_AUTH_XOAUTH2 = 1u << 4,
    SMTP_AUTH_SCRAM_SHA_1 = 1u << 5,
    SMTP_AUTH_SCRAM_SHA_256 = 1u << 6,
    SMTP_AUTH_EXTERNAL = 1u << 7,
};

/* Attributes of Postfix's XCLIENT. */
enum smtp_xclient_attr {
    SMTP_XCLIENT_NAME = 1u << 0,
    SMTP_XCLIENT_ADDR = 1u << 1,
    SMTP_XCLIENT_PORT = 1u << 2,
    SMTP_XCLIENT_PROTO = 1u << 3,
    SMTP_XCLIENT_HELO = 1u << 4,
    SMTP_XCLIENT_LOGIN = 1u << 5,
    SMTP_XCLIENT_DESTADDR = 1u << 6,
    SMTP_XCLIENT_DESTPORT = 1u << 7,
};

struct smtp_ehlo {
    unsigned ext;            /* SMTP_EXT_* offered */
    uint64_t size_max;       /* SIZE's value; 0 if none was given */
    unsigned auth_mechs;     /* SMTP_AUTH_* offered */
    unsigned xclient_attrs;  /* SMTP_XCLIENT_* offered */
    struct strv auth;        /* borrowed: the mechanism list as sent */
    struct strv xclient;     /* borrowed: the attribute list as sent */
    struct strv server_name; /* borrowed: first word of the first line */
};

/* SMTP_AUTH_* bit of a mechanism name (case-insensitive), or 0. */
unsigned smtp_auth_mech_bit(struct strv name);
/* SMTP_XCLIENT_* bit of an attribute name (case-insensitive), or 0. */
unsigned smtp_xclient_attr_bit(struct strv name);

/*
 * Reads the capabilities of a 250 EHLO reply. Unknown keywords are
 * skipped; "AUTH=..." (pre-standard) counts as AUTH. CELER_EPROTO if r is
 * not a 250 reply. Views borrow r's input.
 */
int smtp_ehlo_parse(const struct smtp_reply_in *r, struct smtp_ehlo *caps) CELER_WUR;

/*
 * Appends a complete EHLO reply: "250-<first>" then one line per offered
 * extension in caps->ext (SIZE with caps->size_max when non-zero, AUTH with
 * caps->auth, XCLIENT with caps->xclient; those two are left out when
 * their lists are empty). CELER_ELIMIT.
 */
int try_smtp_ehlo_format(struct buf *out, struct strv first,
                         const struct smtp_ehlo *caps) CELER_WUR;

#endif
