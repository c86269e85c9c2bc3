/*
 * smtp_data_ref: the byte-at-a-time DATA decoder and encoder, kept as the
 * reference for src/smtp/smtp_data.c (test code only, never linked into
 * celerd).
 *
 * This is the implementation smtp_data.c had before its fast paths, with
 * every name prefixed ref_ and its own private state. It shares the public
 * types (struct smtp_data_opts, struct smtp_data_stats) so that the
 * differential tests (tests/unit/test_smtp_data_fast.c,
 * tests/fuzz/fuzz_smtp_data.c) can compare options, statistics, output and
 * consumed counts directly. Change it only to follow a deliberate change of
 * the DATA contract, never to make a difference go away.
 *
 * The test programs are each built from one source file, so the users
 * include smtp_data_ref.c itself (once per program).
 */
#ifndef CELER_TEST_SMTP_DATA_REF_H
#define CELER_TEST_SMTP_DATA_REF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/strv.h"
#include "smtp/smtp_data.h"

struct ref_smtp_data_dec {
    struct smtp_data_opts opts;
    struct smtp_data_stats stats;
    int state;
    int probe;
    bool in_header;
    bool done;
    uint64_t raw_len;
    uint64_t line_len;
    uint8_t npend;
    char pend[16];
};

struct ref_smtp_data_enc {
    int state;
    bool finished;
    uint8_t npend;
    char pend[8];
};

void ref_smtp_data_dec_init(struct ref_smtp_data_dec *d, const struct smtp_data_opts *o);
size_t ref_smtp_data_decode(struct ref_smtp_data_dec *d, struct strv in, char *out, size_t room,
                            size_t *produced);
bool ref_smtp_data_dec_done(const struct ref_smtp_data_dec *d);
size_t ref_smtp_data_dec_finish(struct ref_smtp_data_dec *d, char *out, size_t room);

void ref_smtp_data_enc_init(struct ref_smtp_data_enc *e);
size_t ref_smtp_data_encode(struct ref_smtp_data_enc *e, struct strv in, char *out, size_t room,
                            size_t *produced);
size_t ref_smtp_data_enc_finish(struct ref_smtp_data_enc *e, char *out, size_t room);
bool ref_smtp_data_enc_done(const struct ref_smtp_data_enc *e);

#endif
