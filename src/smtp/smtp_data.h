/*
 * smtp_data: the DATA stream (RFC 5321 4.1.1.4, 4.5.2), both directions.
 *
 * Decoder (server side). Fed wire bytes in chunks split anywhere, it
 * writes the unstuffed message into a caller's bounded output area and
 * says how much input it consumed, so a large body streams to the spool
 * without being held whole, and commands pipelined after the terminator
 * stay in the caller's input.
 *
 *   End of data: ONLY the exact octets CR LF "." CR LF end the data, the
 *   start of the data counting as just after a CR LF. A "." line ended by
 *   a bare LF or a bare CR ("\n.\n", "\r.\r", "\n.\r\n", "\r\n.\n", ...)
 *   is data, never an end: celer cannot be used for SMTP smuggling.
 *
 *   Dot-unstuffing: a line that starts with "." and has more characters
 *   loses that first "."; a "." line that is not the terminator (ended by
 *   a bare LF or bare CR) keeps its ".". A bare LF starts a new line for
 *   unstuffing (as in Postfix and sendmail, which read lines up to LF); a
 *   bare CR does not (it is data inside the line, unless "fix" turns it
 *   into a line break, and even then the next "." is kept as is).
 *
 *   Accounting, separately for the header section (from the start to the
 *   first empty line) and the body: bare LF and bare CR counts, lines,
 *   lines over max_line and the longest line (octets between line endings,
 *   CRLF or bare LF). A message whose first line is not a header field
 *   ("name:" with optional blanks before the colon) has no header section:
 *   everything counts as body and has_headers is false.
 *
 *   Policies (Momentum rfc2822_lone_lf_in_headers / _in_body and
 *   rfc2822_max_line_length[_policy]): IGNORE stores as received;
 *   PEDANTIC stores as received and smtp_data_dec_check() refuses the
 *   message; FIX rewrites: a bare LF or bare CR becomes CRLF, and a line
 *   longer than max_line is broken (in the header section by folding,
 *   CRLF SP, so the field stays one field; in the body by CRLF).
 *
 *   Size: decoded octets are counted against max_size; past it the
 *   decoder produces nothing more but keeps consuming until the terminator,
 *   and too_big tells the session to answer 552 after it.
 *
 *   Raw mode (BDAT, RFC 3030): no unstuffing and no terminator; the same
 *   policies and accounting; smtp_data_dec_finish() ends the message.
 *
 * Encoder (client side). Turns a stored message into DATA wire form in
 * chunks: every line ending (CRLF, bare LF, bare CR) goes out as CRLF, so
 * no smuggling sequence is ever relayed; a line starting with "." gets
 * another "."; smtp_data_enc_finish() adds CRLF if the message does not
 * end with a line ending, then "." CRLF.
 *
 * Both are resumable state machines in caller-owned structs; no I/O, no
 * allocation. The output area must have room > 0 on every call. A step that
 * produces more than fits is kept in a few bytes of pending output inside
 * the struct and is delivered first on the next call.
 *
 * Speed: ordinary lines (no "." at the start, ended by CR LF) are scanned
 * and copied whole, at several GB/s when the input and the room hold many
 * lines; tiny rooms or chunks still work, at octet-by-octet speed. The result
 * never depends on the speed: output, octets consumed and produced, and
 * statistics are those of the octet-by-octet machine for any split.
 */
#ifndef CELER_SMTP_DATA_H
#define CELER_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/strv.h"
#include "smtp/smtp_reply.h"

#define SMTP_DATA_LINE_MAX 998 /* RFC 5322 2.1.1 */

enum smtp_data_policy {
    SMTP_DATA_IGNORE = 0,
    SMTP_DATA_PEDANTIC,
    SMTP_DATA_FIX,
};

struct smtp_data_opts {
    enum smtp_data_policy lone_lf_headers; /* Momentum default: pedantic */
    enum smtp_data_policy lone_lf_body;    /* Momentum default: ignore */
    enum smtp_data_policy line_length;     /* Momentum default: ignore */
    size_t max_line;                       /* SMTP_DATA_LINE_MAX or configured */
    uint64_t max_size;                     /* decoded octets; 0: no limit */
    bool allow_missing_headers;            /* rfc2822_missing_headers = allow */
    bool raw;                              /* BDAT chunks, not DATA */
};

/* Momentum's defaults (see the fields); max_size 0. */
void smtp_data_opts_init(struct smtp_data_opts *o);

struct smtp_data_section {
    uint64_t bare_lf;
    uint64_t bare_cr;
    uint64_t lines;
    uint64_t long_lines; /* lines longer than max_line */
    uint64_t longest;    /* octets, line ending excluded */
};

struct smtp_data_stats {
    uint64_t size;    /* decoded octets, those discarded past max_size included */
    uint64_t wire;    /* input octets consumed, terminator included */
    bool has_headers; /* the first line is a header field */
    bool too_big;     /* size exceeded max_size: the output is incomplete */
    struct smtp_data_section header;
    struct smtp_data_section body;
};

struct smtp_data_dec {
    struct smtp_data_opts opts;
    struct smtp_data_stats stats;
    /* private */
    int state;
    int probe;         /* header-field test of the first line */
    bool in_header;    /* still in the header section */
    bool done;         /* terminator seen (or finish() called) */
    uint64_t raw_len;  /* octets of the current line */
    uint64_t line_len; /* octets since the last line break written */
    uint8_t npend;
    char pend[16]; /* output of the last step that did not fit */
};

void smtp_data_dec_init(struct smtp_data_dec *d, const struct smtp_data_opts *o);

/*
 * Decodes from in into out[0, room) (room > 0). Returns the number of
 * input octets consumed; *produced gets the octets written. Stops after
 * the terminator, when out is full, or when in is used up. Call again
 * (with fresh room, and the unconsumed input plus new bytes) until
 * smtp_data_dec_done(); a call that consumes and produces nothing needs
 * more input.
 */
size_t smtp_data_decode(struct smtp_data_dec *d, struct strv in, char *out, size_t room,
                        size_t *produced);

/*
 * As smtp_data_decode, appending to out (at most chunk octets per
 * reservation). *consumed gets the input octets used. CELER_ELIMIT when
 * out's ceiling stops progress (set max_size below the ceiling to avoid it).
 */
int try_smtp_data_decode_buf(struct smtp_data_dec *d, struct strv in, struct buf *out,
                             size_t *consumed) CELER_WUR;

/* True once the terminator (or finish) was seen and all output delivered. */
bool smtp_data_dec_done(const struct smtp_data_dec *d);

/*
 * Raw mode: ends the message (BDAT LAST): a CR still pending is a bare CR.
 * Returns the octets written to out[0, room); call until _done().
 */
size_t smtp_data_dec_finish(struct smtp_data_dec *d, char *out, size_t room);

/*
 * Applies the policies to a finished message: 0 if it may be accepted,
 * else CELER_EPROTO with *r set (552 5.3.4 too big; 550 5.6.0 for bare
 * CR/LF in headers or body, long header or body lines under PEDANTIC, and
 * a missing header section unless allowed).
 */
int smtp_data_dec_check(const struct smtp_data_dec *d, struct smtp_reply *r) CELER_WUR;

struct smtp_data_enc {
    /* private */
    int state;
    bool finished;
    uint8_t npend;
    char pend[8];
};

void smtp_data_enc_init(struct smtp_data_enc *e);

/*
 * Encodes message octets from in into out[0, room) (room > 0). Returns
 * the input octets consumed; *produced gets the octets written.
 */
size_t smtp_data_encode(struct smtp_data_enc *e, struct strv in, char *out, size_t room,
                        size_t *produced);

/*
 * After the last input: writes the end of data ([CRLF] "." CRLF) into
 * out[0, room). Returns the octets written; call until _enc_done().
 */
size_t smtp_data_enc_finish(struct smtp_data_enc *e, char *out, size_t room);

/* True once finish() has delivered the whole terminator. */
bool smtp_data_enc_done(const struct smtp_data_enc *e);

/* Encodes all of in (and with last, the terminator) appending to out. */
int try_smtp_data_encode_buf(struct smtp_data_enc *e, struct strv in, bool last,
                             struct buf *out) CELER_WUR;

#endif
