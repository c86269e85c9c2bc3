/*
 * outconv: what an 8-bit message becomes on its way to a server that does
 * not offer 8BITMIME (Momentum's transform_8bitmime_content).
 *
 * The delivery engine asks outconv_prepare() once per message it is about to
 * send, after EHLO told it what the server offers. Only messages received
 * as BODY=8BITMIME are candidates; others, and every message for a server
 * that offers 8BITMIME, are sent from the spool file as they are.
 *
 * Modes (the option's values):
 *   no        send as is.
 *   ifneeded  convert the MIME structure to 7 bit (msg/mime7bit). When that
 *             cannot make the message 7-bit (8-bit octets in header fields)
 *             or the message is larger than OUTCONV_MAX_BYTES, send it as is.
 *   strict    like ifneeded, but a message that cannot be made 7-bit fails
 *             permanently (554 5.6.3) instead of going out as 8-bit.
 *   strip     clear the high bit of every body octet (lossy; Momentum's
 *             option of last resort).
 * Celer deviates from the manual's wording for ifneeded, which speaks of
 * stripping the 8th bit: celer re-encodes (quoted-printable or base64), as
 * RFC 6152 asks, and keeps stripping for "strip" alone.
 *
 * The converted copy lives in out (the caller's buffer, released by the
 * caller once the transaction's result is in); runs on the calling thread
 * (about 35 ms per 10 MB).
 */
#ifndef CELER_QUEUE_OUTCONV_H
#define CELER_QUEUE_OUTCONV_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"

#define OUTCONV_MAX_BYTES (64u << 20) /* larger messages are not converted in memory */

enum outconv_mode {
    OUTCONV_NO,
    OUTCONV_IFNEEDED,
    OUTCONV_STRICT,
    OUTCONV_STRIP,
};

enum outconv_action {
    OUTCONV_AS_IS,     /* send the spool file unchanged */
    OUTCONV_CONVERTED, /* send out's bytes, with no BODY= parameter */
    OUTCONV_FAIL,      /* strict: fail the message for this server */
    OUTCONV_READ_FAIL, /* the spool file could not be read: a transient failure */
};

/* Where the message is: [prepend] then [body] in the spool file fd. */
struct outconv_source {
    int fd;
    uint64_t prepend_off, prepend_len;
    uint64_t body_off, body_len;
};

struct outconv_report {
    enum outconv_action action;
    unsigned converted; /* parts re-encoded or repaired (ifneeded, strict) */
    bool malformed;     /* MIME structure not as declared */
    const char *why;    /* static: why an 8-bit message was not converted, or NULL */
    int read_err;       /* OUTCONV_READ_FAIL: -errno */
};

enum outconv_mode outconv_mode_parse(const char *value);

/*
 * Decides and, for OUTCONV_CONVERTED, fills out (released by the caller
 * after the transaction) with the message to send; for any other action
 * out is left released.
 */
void outconv_prepare(enum outconv_mode mode, const struct outconv_source *src, struct buf *out,
                     struct outconv_report *rep);

#endif
