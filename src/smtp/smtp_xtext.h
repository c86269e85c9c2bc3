/*
 * smtp_xtext: the "xtext" encoding of RFC 3461 section 4 and the UTF-8
 * address forms of RFC 6533 section 3.
 *
 * xtext carries arbitrary octets in ESMTP parameter values (ENVID, ORCPT,
 * AUTH=, XCLIENT attributes): printable ASCII from '!' to '~' stands for
 * itself, except '+' and '=', and any octet may be written "+XX" with two
 * hex digits. The RFC asks for upper-case hex; the decoder also accepts
 * lower case (be liberal), the encoder writes upper case.
 *
 * RFC 6533 (ORCPT=utf-8;...) instead escapes with "\x{HEX}", a Unicode
 * code point, and in its "unitext" form also carries raw UTF-8.
 *
 * Pure functions: no state, no I/O. Output is appended to a caller's
 * struct buf, whose ceiling bounds what a peer can make us produce; on an
 * error the buf may hold a partial result the caller should discard.
 */
#ifndef CELER_SMTP_XTEXT_H
#define CELER_SMTP_XTEXT_H

#include <stdbool.h>

#include "core/buf.h"
#include "core/strv.h"

/* True when s is well-formed xtext (possibly empty). */
bool smtp_xtext_valid(struct strv s);

/*
 * Appends the decoded form of xtext in to out. CELER_EPARSE if in is not
 * xtext; CELER_ELIMIT if out's ceiling is reached.
 */
int try_smtp_xtext_decode(struct strv in, struct buf *out) CELER_WUR;

/*
 * As try_smtp_xtext_decode, into dst[cap] (not NUL-terminated); *len gets
 * the decoded length. CELER_ELIMIT if it does not fit.
 */
int smtp_xtext_decode_into(struct strv in, char *dst, size_t cap, size_t *len) CELER_WUR;

/* Appends the xtext encoding of the octets in to out; CELER_ELIMIT. */
int try_smtp_xtext_encode(struct strv in, struct buf *out) CELER_WUR;

/*
 * Decodes an RFC 6533 utf-8-addr-xtext (allow_utf8 false) or
 * utf-8-addr-unitext (allow_utf8 true: raw UTF-8 is also accepted) into
 * UTF-8. "\x{HEX}" escapes must name a Unicode scalar value. CELER_EPARSE
 * on anything else (including invalid raw UTF-8); CELER_ELIMIT.
 */
int try_smtp_xtext_decode_utf8addr(struct strv in, bool allow_utf8, struct buf *out) CELER_WUR;

/* As try_smtp_xtext_decode_utf8addr, into dst[cap] (see _decode_into). */
int smtp_xtext_decode_utf8addr_into(struct strv in, bool allow_utf8, char *dst, size_t cap,
                                    size_t *len) CELER_WUR;

/*
 * Encodes UTF-8 text in as utf-8-addr-xtext: printable ASCII other than
 * '+', '=', '\' stands for itself; everything else becomes "\x{HEX}" per
 * code point. CELER_EPARSE if in is not valid UTF-8; CELER_ELIMIT.
 */
int try_smtp_xtext_encode_utf8addr(struct strv in, struct buf *out) CELER_WUR;

/*
 * Length of the valid UTF-8 sequence at the start of s (1..4), or 0 if s
 * does not start with one (overlong forms, surrogates and code points
 * above U+10FFFF are invalid). *cp gets the code point.
 */
size_t smtp_xtext_utf8_next(struct strv s, unsigned *cp);

/* True when all of s is valid UTF-8. */
bool smtp_xtext_utf8_valid(struct strv s);

#endif
