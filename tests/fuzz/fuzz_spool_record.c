/*
 * fuzz_spool_record: the spool file decoder on arbitrary bytes.
 *
 * The first input byte picks a mode; the rest is the file. With bit 0 set
 * the harness first rewrites every checksum (record CRCs, the body trailer,
 * END's offset and CRCs) so mutations reach the field parsers instead of
 * dying at the first CRC. Every input is decoded from memory and through a
 * read callback, with and without body verification; the results must
 * agree. A file that decodes must encode
 * again (envelope, body, prepend and the folded progress as one PROGRESS
 * record) and decode to the same values. Any disagreement aborts.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/crc32c.h"
#include "spool/spool_format.h"
#include "fuzzkit.h"

static uint32_t
fz_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void
fz_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void
fz_put64(uint8_t *p, uint64_t v)
{
    fz_put32(p, (uint32_t)v);
    fz_put32(p + 4, (uint32_t)(v >> 32));
}

/* Rewrites every checksum the decoder will look at, record by record. */
static void
fz_fix_crcs(uint8_t *p, size_t n)
{
    size_t off = SPOOL_FILE_HDR_LEN;
    uint32_t body_crc = 0;

    while (off + SPOOL_REC_OVERHEAD <= n) {
        uint32_t len = fz_get32(p + off + 1);
        size_t total = (size_t)len + SPOOL_REC_OVERHEAD;

        if (len > n || total > n - off) {
            return;
        }
        if (p[off] == SPOOL_REC_END && len == SPOOL_END_PAYLOAD_LEN) {
            fz_put64(p + off + 5, off);
            fz_put32(p + off + 13, body_crc);
            fz_put32(p + off + 17, crc32c(p, off));
        }
        fz_put32(p + off + 5 + len, crc32c(p + off, 5 + (size_t)len));
        off += total;
        if (p[off - total] == SPOOL_REC_BODY && len == 8) {
            const uint8_t *q = p + off - SPOOL_REC_CRC_LEN - 8; /* the u64 payload */
            uint64_t body_len = (uint64_t)fz_get32(q) | (uint64_t)fz_get32(q + 4) << 32;

            if (body_len > n - off || n - off - body_len < SPOOL_BODY_TRAILER_LEN) {
                return;
            }
            body_crc = crc32c(p + off, (size_t)body_len);
            fz_put32(p + off + body_len, body_crc);
            off += (size_t)body_len + SPOOL_BODY_TRAILER_LEN;
        }
    }
}

struct fz_file {
    const uint8_t *p;
    size_t n;
};

static int
fz_read(void *arg, uint64_t off, void *dst, size_t len)
{
    const struct fz_file *f = arg;

    if (off > f->n || len > f->n - off) {
        abort(); /* the decoder asked beyond the size it was given */
    }
    memcpy(dst, f->p + off, len);
    return 0;
}

static bool
fz_opt_eq(struct strv a, struct strv b)
{
    return (a.ptr == NULL) == (b.ptr == NULL) && strv_eq(a, b);
}

static void
fz_check_env(const struct spool_envelope *a, const struct spool_envelope *b)
{
    bool same = strv_eq(a->id, b->id) && a->ctime_us == b->ctime_us &&
                strv_eq(a->sender, b->sender) && a->rcpt_count == b->rcpt_count &&
                a->ret == b->ret && fz_opt_eq(a->envid, b->envid) && a->body_type == b->body_type &&
                a->smtputf8 == b->smtputf8 && a->priority == b->priority &&
                fz_opt_eq(a->protocol, b->protocol) && fz_opt_eq(a->source_ip, b->source_ip) &&
                fz_opt_eq(a->helo, b->helo) && fz_opt_eq(a->auth_user, b->auth_user) &&
                fz_opt_eq(a->listener, b->listener) &&
                fz_opt_eq(a->binding_group, b->binding_group) && fz_opt_eq(a->binding, b->binding);

    for (size_t i = 0; same && i < a->rcpt_count; i++) {
        const struct spool_rcpt *x = &a->rcpts[i], *y = &b->rcpts[i];

        same = strv_eq(x->addr, y->addr) && fz_opt_eq(x->orcpt_type, y->orcpt_type) &&
               fz_opt_eq(x->orcpt_addr, y->orcpt_addr) && x->notify == y->notify;
    }
    if (!same) {
        abort();
    }
}

static void
fz_check_progress(const struct spool_msg *a, const struct spool_msg *b)
{
    if (a->attempts != b->attempts || a->next_attempt_s != b->next_attempt_s ||
        !fz_opt_eq(a->last_response, b->last_response)) {
        abort();
    }
    for (size_t i = 0; i < a->env.rcpt_count; i++) {
        if (a->rprog[i].state != b->rprog[i].state ||
            !fz_opt_eq(a->rprog[i].binding_group, b->rprog[i].binding_group) ||
            !fz_opt_eq(a->rprog[i].binding, b->rprog[i].binding)) {
            abort();
        }
    }
}

/* The folded state of m as one PROGRESS record. */
static int
fz_encode_progress(struct buf *out, const struct spool_msg *m)
{
    struct spool_rcpt_update *u = calloc(m->env.rcpt_count + 1, sizeof(*u));
    struct spool_progress p = {
        .has_attempts = true,
        .attempts = m->attempts,
        .has_next_attempt = true,
        .next_attempt_s = m->next_attempt_s,
        .response = m->last_response,
        .binding_group = m->env.binding_group,
        .binding = m->env.binding,
        .updates = u,
        .update_count = m->env.rcpt_count,
    };
    int err;

    for (size_t i = 0; i < m->env.rcpt_count; i++) {
        u[i] = (struct spool_rcpt_update){.index = (uint32_t)i,
                                          .state = m->rprog[i].state,
                                          .binding_group = m->rprog[i].binding_group,
                                          .binding = m->rprog[i].binding};
    }
    err = spool_progress_encode(out, &p);
    free(u);
    return err;
}

static void
fz_reencode(struct strv file, const struct spool_msg *m)
{
    struct strv body = strv_make(file.ptr + m->body_off, (size_t)m->body_len);
    struct spool_msg again;
    struct buf out;

    buf_init(&out, BUF_UNLIMITED);
    if (spool_encode(&out, &m->env, body, m->prepend) != 0 || fz_encode_progress(&out, m) != 0) {
        abort(); /* whatever decodes must encode */
    }
    if (spool_decode_mem(buf_data(&out), SPOOL_DECODE_VERIFY_BODY, &again) != 0) {
        abort();
    }
    fz_check_env(&m->env, &again.env);
    fz_check_progress(m, &again);
    if (!strv_eq(m->prepend, again.prepend) || again.body_len != m->body_len ||
        again.progress_count != 1 || again.tail_damaged) {
        abort();
    }
    spool_msg_release(&again);
    buf_release(&out);
}

static void
fz_check_invariants(const struct spool_msg *m, size_t n)
{
    if (m->body_off + m->body_len > n || m->end_off + SPOOL_END_LEN > m->valid_len ||
        m->valid_len > n || m->tail_damaged != (m->valid_len < n) || m->body_off > m->end_off) {
        abort();
    }
}

static void
fz_decode(const uint8_t *p, size_t n, unsigned flags)
{
    struct fz_file f = {p, n};
    struct spool_source src = {.read = fz_read, .arg = &f, .size = n};
    struct spool_msg a, b;
    int ea = spool_decode_mem(strv_make((const char *)p, n), flags, &a);
    int eb = spool_decode(&src, flags, &b);

    if (ea != eb || a.bad_off != b.bad_off) {
        abort();
    }
    if (ea == 0) {
        fz_check_invariants(&a, n);
        fz_check_env(&a.env, &b.env);
        fz_check_progress(&a, &b);
        if (a.valid_len != b.valid_len || a.body_off != b.body_off) {
            abort();
        }
        if (flags & SPOOL_DECODE_VERIFY_BODY) {
            fz_reencode(strv_make((const char *)p, n), &a);
        }
    } else if (ea != SPOOL_EINCOMPLETE && ea != CELER_ECORRUPT) {
        abort();
    } else if (a.bad_what == NULL || a.blobs != NULL || a.env.rcpts != NULL) {
        abort();
    }
    spool_msg_release(&a);
    spool_msg_release(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy;

    if (size == 0) {
        return 0;
    }
    copy = malloc(size);
    memcpy(copy, data + 1, size - 1);
    if (data[0] & 1) {
        fz_fix_crcs(copy, size - 1);
    }
    fz_decode(copy, size - 1, 0);
    fz_decode(copy, size - 1, SPOOL_DECODE_VERIFY_BODY);
    free(copy);
    return 0;
}
