/*
 * mime7bit: turns a message with 8-bit octets into an equivalent 7-bit one
 * (RFC 6152 section 3, RFC 2045-2049), as an MTA must before relaying 8-bit
 * mail to a server that does not offer 8BITMIME (Momentum's
 * transform_8bitmime_content = ifneeded).
 *
 * Input: the whole message in memory (header section, then body), with
 * CRLF or bare LF line ends. Output: appended to a struct buf whose ceiling
 * bounds what a message can make us allocate. Pure: no I/O, no state
 * outside the call; the work is a few linear passes per nesting level.
 *
 * What it does. The MIME structure is walked: multipart types (by the
 * boundary of their Content-Type, nested to MIME7BIT_DEPTH_MAX levels, parts
 * of multipart/digest defaulting to message/rfc822) and message/rfc822 (the
 * encapsulated message is converted in turn). A leaf whose body has 8-bit
 * octets and an identity encoding (no Content-Transfer-Encoding, 7bit,
 * 8bit, binary, or one we do not know) is re-encoded: a text type as
 * quoted-printable (76-column lines with soft breaks, line breaks kept as
 * line breaks, trailing blanks, "=", control octets and a bare CR encoded,
 * a "-" opening a continuation line encoded so no line can pass for a
 * boundary), anything else as base64 (76-column lines); its
 * Content-Transfer-Encoding field is replaced (or added). A text leaf with
 * no Content-Type gets "Content-Type: text/plain; charset=unknown-8bit".
 * A message (the top one or an encapsulated one) that changes and has no
 * MIME-Version gets "MIME-Version: 1.0". A multipart or message/rfc822
 * labelled 8bit or binary is relabelled 7bit once its content is. Added
 * fields go at the end of the header section, with the message's own line
 * end (that of its first line). Everything without 8-bit octets (whole
 * parts, leaves already encoded, the header fields) is copied byte for
 * byte, so a message that needs nothing comes out identical.
 *
 * A message without MIME-Version is still read by its Content-Type, as
 * mail readers do; with no Content-Type either it is one text/plain leaf.
 *
 * Repairs, so that the output is 7-bit whenever the header fields are:
 * 8-bit octets in a base64 leaf are dropped (decoders ignore octets outside
 * the alphabet); in a quoted-printable leaf they become =XX escapes on
 * re-wrapped lines (what a lenient decoder would have read); in a
 * preamble, an epilogue or the rest of a closing delimiter line (which
 * readers ignore) they become "?".
 *
 * Not handled. Header fields are never rewritten (8-bit octets there would
 * need RFC 2047 encoding, which changes what an address means): they are
 * left as they are and header_8bit says so; the caller decides (celer then
 * sends the message unchanged). RFC 2231 continued boundary parameters
 * (boundary*0=) are not read. Lines over 998 octets in parts that need no
 * conversion are left alone. message/global and the other message types are
 * leaves (base64 when they hold 8-bit octets). Downconversion breaks DKIM
 * (and any other) signatures over the parts it changes, as every
 * downconversion does; sign after converting or not at all.
 *
 * Malformed MIME never crashes or loops: a multipart with no usable
 * boundary or no opening delimiter, nesting deeper than
 * MIME7BIT_DEPTH_MAX, or a composite type with a quoted-printable or base64
 * label is converted as one leaf (quoted-printable when it has identity
 * encoding); a last part with no closing delimiter runs to the end of its
 * enclosing part; an unparseable Content-Type counts as text/plain; a line
 * that is no header field (nor the empty line) ends the header section
 * and starts the body, and an empty line is then added after the fields.
 * Each sets malformed in the result.
 */
#ifndef CELER_MSG_MIME7BIT_H
#define CELER_MSG_MIME7BIT_H

#include <stdbool.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/strv.h"

#define MIME7BIT_DEPTH_MAX    32  /* nested multipart and message/rfc822 levels */
#define MIME7BIT_BOUNDARY_MAX 200 /* longer boundaries are unusable (RFC 2046: 70) */

struct mime7bit_result {
    unsigned converted; /* leaves re-encoded or repaired */
    bool header_8bit;   /* 8-bit octets remain in header fields (left as they were) */
    bool malformed;     /* some structure could not be read as declared (see above) */
};

/* True when in has any octet above 127. */
bool mime7bit_needed(struct strv in);

/*
 * Appends the 7-bit form of the message in to out and fills *res (zeroed
 * first). A message without 8-bit octets is copied unchanged. The output
 * is 7-bit unless res->header_8bit. CELER_ELIMIT at out's ceiling (out
 * then holds a partial result the caller discards). The worst case is a
 * little over three times the input (quoted-printable) plus about 100
 * octets of added fields per converted leaf.
 */
int try_mime7bit_convert(struct strv in, struct buf *out, struct mime7bit_result *res) CELER_WUR;

#endif
