/*
 * base64: RFC 4648 base64 encoding and strict decoding.
 *
 * Decoding rejects anything that is not canonical base64 (characters outside
 * the alphabet, misplaced or missing padding, whitespace); callers that
 * accept folded input strip it first. Output goes to a struct buf, so its
 * ceiling bounds what a peer can make us allocate.
 */
#ifndef CELER_CORE_BASE64_H
#define CELER_CORE_BASE64_H

#include "core/buf.h"
#include "core/err.h"
#include "core/strv.h"

/* Appends the encoding of in; CELER_ELIMIT at out's ceiling. */
int try_base64_encode(struct strv in, struct buf *out) CELER_WUR;
/* Appends the decoding of in; CELER_EPARSE if in is not base64, CELER_ELIMIT. */
int try_base64_decode(struct strv in, struct buf *out) CELER_WUR;

#endif
