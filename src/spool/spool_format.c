/*
 * spool_format: records, envelope and progress fields, streaming encoder and
 * bounded decoder of spool files (see spool_format.h and
 * docs/spool-format.md for the layout).
 *
 * Encoders size a payload with a counting pass, reserve the bytes once, then
 * write them, so they fail before appending anything. The decoder reads
 * through a small window (or straight from memory), checks every record's
 * CRC before it looks inside, copies what it keeps into owned blobs, and
 * classifies each failure as "incomplete" (the bytes end early, or only zero
 * bytes follow) or "corrupt" (anything else).
 */
#include "spool/spool_format.h"

#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "core/crc32c.h"
#include "core/mem.h"
#include "spool/spool_id.h"

/* Envelope field tags. */
#define ENV_ID            0x01
#define ENV_CTIME         0x02
#define ENV_SENDER        0x03
#define ENV_RCPT          0x04
#define ENV_RET           0x05
#define ENV_ENVID         0x06
#define ENV_BODY_TYPE     0x07
#define ENV_FLAGS         0x08
#define ENV_PROTOCOL      0x09
#define ENV_SOURCE_IP     0x0a
#define ENV_HELO          0x0b
#define ENV_AUTH_USER     0x0c
#define ENV_LISTENER      0x0d
#define ENV_BINDING_GROUP 0x0e
#define ENV_BINDING       0x0f

/* Fields nested in ENV_RCPT. */
#define RCPT_ADDR       0x01
#define RCPT_ORCPT_TYPE 0x02
#define RCPT_ORCPT_ADDR 0x03
#define RCPT_NOTIFY     0x04

/* PROGRESS field tags. */
#define PROG_ATTEMPTS      0x01
#define PROG_NEXT_ATTEMPT  0x02
#define PROG_RESPONSE      0x03
#define PROG_BINDING_GROUP 0x04
#define PROG_BINDING       0x05
#define PROG_RCPT          0x06

/* Fields nested in PROG_RCPT. */
#define UPD_INDEX         0x01
#define UPD_STATE         0x02
#define UPD_BINDING_GROUP 0x03
#define UPD_BINDING       0x04

#define ENV_FLAG_SMTPUTF8 0x1u
#define ENV_FLAG_PRIORITY 0x2u

#define NOTIFY_ALL                                                                                 \
    (SPOOL_NOTIFY_NEVER | SPOOL_NOTIFY_SUCCESS | SPOOL_NOTIFY_FAILURE | SPOOL_NOTIFY_DELAY)

#define VARINT_MAX_LEN  5      /* a u32 in LEB128 */
#define RD_READAHEAD    16384  /* covers the head or tail of a typical message */
#define RD_VERIFY_CHUNK 262144 /* body bytes checked per read */

/* String fields of the envelope, in encoding order. */
static const struct {
    uint8_t tag;
    size_t off;
} env_str_fields[] = {
    {ENV_ID, offsetof(struct spool_envelope, id)},
    {ENV_SENDER, offsetof(struct spool_envelope, sender)},
    {ENV_ENVID, offsetof(struct spool_envelope, envid)},
    {ENV_PROTOCOL, offsetof(struct spool_envelope, protocol)},
    {ENV_SOURCE_IP, offsetof(struct spool_envelope, source_ip)},
    {ENV_HELO, offsetof(struct spool_envelope, helo)},
    {ENV_AUTH_USER, offsetof(struct spool_envelope, auth_user)},
    {ENV_LISTENER, offsetof(struct spool_envelope, listener)},
    {ENV_BINDING_GROUP, offsetof(struct spool_envelope, binding_group)},
    {ENV_BINDING, offsetof(struct spool_envelope, binding)},
};

#define ENV_STR_FIELDS (sizeof(env_str_fields) / sizeof(env_str_fields[0]))

static struct strv *
env_str(struct spool_envelope *env, size_t i)
{
    return (struct strv *)(void *)((char *)env + env_str_fields[i].off);
}

static const struct strv *
env_str_const(const struct spool_envelope *env, size_t i)
{
    return (const struct strv *)(const void *)((const char *)env + env_str_fields[i].off);
}

/* ---- Little-endian integers ---- */

static void
put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void
put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint32_t
get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t
get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

/* ---- Payload writer: counts when p is NULL, writes otherwise ---- */

struct spool_wr {
    uint8_t *p; /* borrowed: reserved space, or NULL to count */
    size_t len;
};

typedef void spool_emit_fn(struct spool_wr *w, const void *arg);

static void
wr_bytes(struct spool_wr *w, const void *src, size_t n)
{
    if (w->p != NULL && n > 0) {
        memcpy(w->p + w->len, src, n);
    }
    w->len += n;
}

static void
wr_varint(struct spool_wr *w, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;

    while (v >= 0x80) {
        tmp[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (uint8_t)v;
    wr_bytes(w, tmp, n);
}

static void
wr_field(struct spool_wr *w, uint8_t tag, const void *p, size_t n)
{
    wr_bytes(w, &tag, 1);
    wr_varint(w, n);
    wr_bytes(w, p, n);
}

static void
wr_field_strv(struct spool_wr *w, uint8_t tag, struct strv s)
{
    wr_field(w, tag, s.ptr, s.len);
}

static void
wr_field_u8(struct spool_wr *w, uint8_t tag, uint8_t v)
{
    wr_field(w, tag, &v, 1);
}

static void
wr_field_u32(struct spool_wr *w, uint8_t tag, uint32_t v)
{
    uint8_t b[4];

    put_u32(b, v);
    wr_field(w, tag, b, 4);
}

static void
wr_field_u64(struct spool_wr *w, uint8_t tag, uint64_t v)
{
    uint8_t b[8];

    put_u64(b, v);
    wr_field(w, tag, b, 8);
}

/* A nested field: tag, length of what emit writes, then that. */
static void
wr_nested(struct spool_wr *w, uint8_t tag, spool_emit_fn *emit, const void *arg)
{
    struct spool_wr count = {NULL, 0};

    emit(&count, arg);
    wr_bytes(w, &tag, 1);
    wr_varint(w, count.len);
    emit(w, arg);
}

static size_t
emit_size(spool_emit_fn *emit, const void *arg)
{
    struct spool_wr count = {NULL, 0};

    emit(&count, arg);
    return count.len;
}

/*
 * Appends a record whose payload emit writes (payload_len bytes, sized by
 * the caller). The caller reserved the room, so this cannot fail.
 */
static void
rec_append(struct buf *out, uint8_t type, size_t payload_len, spool_emit_fn *emit, const void *arg)
{
    size_t room;
    uint8_t *dst = (uint8_t *)try_buf_reserve(out, payload_len + SPOOL_REC_OVERHEAD, &room);
    struct spool_wr w;

    assert(dst != NULL && payload_len <= SPOOL_RECORD_MAX);
    dst[0] = type;
    put_u32(dst + 1, (uint32_t)payload_len);
    w = (struct spool_wr){dst + SPOOL_REC_HDR_LEN, 0};
    emit(&w, arg);
    assert(w.len == payload_len);
    put_u32(dst + SPOOL_REC_HDR_LEN + payload_len, crc32c(dst, SPOOL_REC_HDR_LEN + payload_len));
    buf_commit(out, payload_len + SPOOL_REC_OVERHEAD);
}

/* ---- Envelope encoding ---- */

static bool
notify_valid(unsigned notify)
{
    if ((notify & ~NOTIFY_ALL) != 0) {
        return false;
    }
    return !((notify & SPOOL_NOTIFY_NEVER) && notify != SPOOL_NOTIFY_NEVER);
}

static void
emit_rcpt(struct spool_wr *w, const void *arg)
{
    const struct spool_rcpt *r = arg;

    wr_field_strv(w, RCPT_ADDR, r->addr);
    if (r->orcpt_type.ptr != NULL) {
        wr_field_strv(w, RCPT_ORCPT_TYPE, r->orcpt_type);
        wr_field_strv(w, RCPT_ORCPT_ADDR, r->orcpt_addr);
    }
    if (r->notify != 0) {
        wr_field_u8(w, RCPT_NOTIFY, (uint8_t)r->notify);
    }
}

static void
emit_envelope(struct spool_wr *w, const void *arg)
{
    const struct spool_envelope *env = arg;
    unsigned flags =
        (env->smtputf8 ? ENV_FLAG_SMTPUTF8 : 0) | (env->priority ? ENV_FLAG_PRIORITY : 0);

    for (size_t i = 0; i < ENV_STR_FIELDS; i++) {
        const struct strv *s = env_str_const(env, i);
        uint8_t tag = env_str_fields[i].tag;

        if (s->ptr != NULL || tag == ENV_ID || tag == ENV_SENDER) {
            wr_field_strv(w, tag, *s);
        }
        if (tag == ENV_ID) {
            wr_field_u64(w, ENV_CTIME, (uint64_t)env->ctime_us);
            wr_field_u8(w, ENV_BODY_TYPE, (uint8_t)env->body_type);
        }
    }
    if (env->ret != SPOOL_RET_UNSET) {
        wr_field_u8(w, ENV_RET, (uint8_t)env->ret);
    }
    if (flags != 0) {
        wr_field_u32(w, ENV_FLAGS, flags);
    }
    for (size_t i = 0; i < env->rcpt_count; i++) {
        wr_nested(w, ENV_RCPT, emit_rcpt, &env->rcpts[i]);
    }
}

/* The same rules the decoder enforces, so whatever encodes also decodes. */
static int
env_check(const struct spool_envelope *env)
{
    struct spool_id id;

    if (spool_id_parse(env->id, &id) != 0) {
        return -EINVAL;
    }
    if ((unsigned)env->body_type > SPOOL_BODY_BINARYMIME || (unsigned)env->ret > SPOOL_RET_HDRS) {
        return -EINVAL;
    }
    if (env->rcpt_count > SPOOL_RCPT_MAX) {
        return CELER_ELIMIT;
    }
    for (size_t i = 0; i < env->rcpt_count; i++) {
        const struct spool_rcpt *r = &env->rcpts[i];

        if (!notify_valid(r->notify) ||
            (r->orcpt_type.ptr == NULL) != (r->orcpt_addr.ptr == NULL)) {
            return -EINVAL;
        }
    }
    return 0;
}

static void
emit_strv(struct spool_wr *w, const void *arg)
{
    const struct strv *s = arg;

    wr_bytes(w, s->ptr, s->len);
}

void
spool_body_hdr_encode(uint64_t body_len, uint8_t out[SPOOL_BODY_HDR_LEN])
{
    out[0] = SPOOL_REC_BODY;
    put_u32(out + 1, 8);
    put_u64(out + SPOOL_REC_HDR_LEN, body_len);
    put_u32(out + SPOOL_REC_HDR_LEN + 8, crc32c(out, SPOOL_REC_HDR_LEN + 8));
}

int
spool_enc_begin(struct spool_enc *enc, struct buf *out, const struct spool_envelope *env)
{
    static const uint8_t file_hdr[SPOOL_FILE_HDR_LEN] = {'C', 'E', 'L', 'R',
                                                         'S', 'P', 'L', SPOOL_VERSION};
    uint8_t body_hdr[SPOOL_BODY_HDR_LEN];
    size_t env_len, start = buf_len(out);
    int err = env_check(env);

    if (err != 0) {
        return err;
    }
    env_len = emit_size(emit_envelope, env);
    if (env_len > SPOOL_RECORD_MAX) {
        return CELER_ELIMIT;
    }
    if (try_buf_reserve(out, SPOOL_FILE_HDR_LEN + SPOOL_REC_OVERHEAD + env_len + SPOOL_BODY_HDR_LEN,
                        NULL) == NULL) {
        return CELER_ELIMIT;
    }
    buf_append(out, file_hdr, sizeof(file_hdr)); /* reserved above */
    rec_append(out, SPOOL_REC_ENVELOPE, env_len, emit_envelope, env);
    *enc = (struct spool_enc){.body_hdr_off = buf_len(out) - start};
    enc->head_crc = crc32c(buf_data(out).ptr + start, enc->body_hdr_off);
    enc->body_off = enc->body_hdr_off + SPOOL_BODY_HDR_LEN;
    spool_body_hdr_encode(SPOOL_BODY_LEN_UNKNOWN, body_hdr);
    buf_append(out, body_hdr, sizeof(body_hdr)); /* reserved above */
    return 0;
}

void
spool_enc_body(struct spool_enc *enc, const void *p, size_t len)
{
    enc->body_crc = crc32c_update(enc->body_crc, p, len);
    enc->body_len += len;
}

struct end_payload {
    uint64_t off;
    uint32_t body_crc;
    uint32_t file_crc;
};

static void
emit_end(struct spool_wr *w, const void *arg)
{
    const struct end_payload *e = arg;
    uint8_t b[SPOOL_END_PAYLOAD_LEN];

    put_u64(b, e->off);
    put_u32(b + 8, e->body_crc);
    put_u32(b + 12, e->file_crc);
    wr_bytes(w, b, sizeof(b));
}

int
spool_enc_finish(struct spool_enc *enc, struct buf *out, struct strv prepend,
                 uint8_t body_hdr[SPOOL_BODY_HDR_LEN])
{
    size_t start = buf_len(out);
    struct end_payload end;
    uint8_t trailer[SPOOL_BODY_TRAILER_LEN];
    uint32_t crc;

    if (prepend.len > SPOOL_RECORD_MAX ||
        try_buf_reserve(out,
                        SPOOL_BODY_TRAILER_LEN + SPOOL_REC_OVERHEAD + prepend.len + SPOOL_END_LEN,
                        NULL) == NULL) {
        return CELER_ELIMIT;
    }
    spool_body_hdr_encode(enc->body_len, body_hdr);
    crc = crc32c_combine(enc->head_crc, crc32c(body_hdr, SPOOL_BODY_HDR_LEN), SPOOL_BODY_HDR_LEN);
    crc = crc32c_combine(crc, enc->body_crc, enc->body_len);
    put_u32(trailer, enc->body_crc);
    buf_append(out, trailer, sizeof(trailer)); /* reserved above */
    rec_append(out, SPOOL_REC_PREPEND, prepend.len, emit_strv, &prepend);
    crc = crc32c_update(crc, buf_data(out).ptr + start, buf_len(out) - start);
    end.off = enc->body_off + enc->body_len + (buf_len(out) - start);
    end.body_crc = enc->body_crc;
    end.file_crc = crc;
    rec_append(out, SPOOL_REC_END, SPOOL_END_PAYLOAD_LEN, emit_end, &end);
    enc->end_off = end.off;
    enc->file_len = end.off + SPOOL_END_LEN;
    return 0;
}

int
spool_encode(struct buf *out, const struct spool_envelope *env, struct strv body,
             struct strv prepend)
{
    struct spool_enc enc;
    uint8_t body_hdr[SPOOL_BODY_HDR_LEN];
    size_t start = buf_len(out);
    size_t env_len;
    int err = env_check(env);

    if (err != 0) {
        return err;
    }
    /* Reserve the whole file so nothing is appended when anything fails. */
    env_len = emit_size(emit_envelope, env);
    if (env_len > SPOOL_RECORD_MAX || prepend.len > SPOOL_RECORD_MAX ||
        try_buf_reserve(out,
                        SPOOL_FILE_HDR_LEN + SPOOL_REC_OVERHEAD + env_len + SPOOL_BODY_HDR_LEN +
                            body.len + SPOOL_BODY_TRAILER_LEN + SPOOL_REC_OVERHEAD + prepend.len +
                            SPOOL_END_LEN,
                        NULL) == NULL) {
        return CELER_ELIMIT;
    }
    if ((err = spool_enc_begin(&enc, out, env)) != 0) {
        return err;
    }
    buf_append(out, body.ptr, body.len); /* reserved above */
    spool_enc_body(&enc, body.ptr, body.len);
    if ((err = spool_enc_finish(&enc, out, prepend, body_hdr)) != 0) {
        return err; /* cannot happen: reserved above */
    }
    /* Patch the placeholder, as the file writer's pwrite() would. */
    memcpy(out->data + out->start + start + enc.body_hdr_off, body_hdr, SPOOL_BODY_HDR_LEN);
    return 0;
}

/* ---- Progress encoding ---- */

static void
emit_update(struct spool_wr *w, const void *arg)
{
    const struct spool_rcpt_update *u = arg;

    wr_field_u32(w, UPD_INDEX, u->index);
    if (u->state != SPOOL_RCPT_UNCHANGED) {
        wr_field_u8(w, UPD_STATE, (uint8_t)u->state);
    }
    if (u->binding_group.ptr != NULL) {
        wr_field_strv(w, UPD_BINDING_GROUP, u->binding_group);
    }
    if (u->binding.ptr != NULL) {
        wr_field_strv(w, UPD_BINDING, u->binding);
    }
}

static void
emit_progress(struct spool_wr *w, const void *arg)
{
    const struct spool_progress *p = arg;

    if (p->has_attempts) {
        wr_field_u32(w, PROG_ATTEMPTS, p->attempts);
    }
    if (p->has_next_attempt) {
        wr_field_u64(w, PROG_NEXT_ATTEMPT, (uint64_t)p->next_attempt_s);
    }
    if (p->response.ptr != NULL) {
        wr_field_strv(w, PROG_RESPONSE, p->response);
    }
    if (p->binding_group.ptr != NULL) {
        wr_field_strv(w, PROG_BINDING_GROUP, p->binding_group);
    }
    if (p->binding.ptr != NULL) {
        wr_field_strv(w, PROG_BINDING, p->binding);
    }
    for (size_t i = 0; i < p->update_count; i++) {
        wr_nested(w, PROG_RCPT, emit_update, &p->updates[i]);
    }
}

int
spool_progress_encode(struct buf *out, const struct spool_progress *p)
{
    size_t len;

    for (size_t i = 0; i < p->update_count; i++) {
        enum spool_rcpt_state s = p->updates[i].state;

        if (s != SPOOL_RCPT_UNCHANGED && s != SPOOL_RCPT_PENDING && s != SPOOL_RCPT_DELIVERED &&
            s != SPOOL_RCPT_FAILED) {
            return -EINVAL;
        }
        if (p->updates[i].index >= SPOOL_RCPT_MAX) {
            return -EINVAL;
        }
    }
    len = emit_size(emit_progress, p);
    if (len > SPOOL_RECORD_MAX || try_buf_reserve(out, len + SPOOL_REC_OVERHEAD, NULL) == NULL) {
        return CELER_ELIMIT;
    }
    rec_append(out, SPOOL_REC_PROGRESS, len, emit_progress, p);
    return 0;
}

const char *
spool_err_str(int err)
{
    return err == SPOOL_EINCOMPLETE ? "incomplete spool file" : err_str(err);
}

/* ---- Decoder: reading ---- */

struct spool_blob {
    struct spool_blob *next; /* owned */
    uint8_t data[];
};

/* A window over the file; pointers it hands out live until the next rd_get. */
struct rd {
    const struct spool_source *src; /* borrowed */
    const uint8_t *mem;             /* borrowed: the file in memory, or NULL */
    uint64_t size;
    uint8_t *win; /* owned */
    size_t win_cap;
    uint64_t win_off;
    size_t win_len;
};

struct dec {
    struct rd rd;
    struct spool_msg *m; /* borrowed: the output */
    unsigned flags;
    uint64_t size;
    uint32_t crc; /* CRC32C of the file bytes before the current record */
    uint64_t off; /* the current record */
    bool prepend_seen;
};

/* A checked record, viewed through the reader's window. */
struct rec {
    uint8_t type;
    uint32_t len;       /* payload length */
    uint64_t total;     /* header + payload + CRC */
    const uint8_t *raw; /* whole record (valid until the next rd_get) */
    const char *why;    /* on failure */
};

/* Points *out at bytes [off, off + n), which the caller knows are in the file. */
static int
rd_get(struct rd *r, uint64_t off, size_t n, const uint8_t **out)
{
    size_t want;
    int err;

    assert(off <= r->size && n <= r->size - off);
    if (n == 0) {
        *out = (const uint8_t *)"";
        return 0;
    }
    if (r->mem != NULL) {
        *out = r->mem + off;
        return 0;
    }
    if (off >= r->win_off && off - r->win_off <= r->win_len &&
        n <= r->win_len - (off - r->win_off)) {
        *out = r->win + (off - r->win_off);
        return 0;
    }
    want = n > RD_READAHEAD ? n : RD_READAHEAD;
    if (want > r->size - off) {
        want = (size_t)(r->size - off);
    }
    if (want > r->win_cap) {
        free(r->win);
        r->win = xmalloc(want);
        r->win_cap = want;
    }
    r->win_len = 0;
    err = r->src->read(r->src->arg, off, r->win, want);
    if (err != 0) {
        return err < 0 ? err : -EIO;
    }
    r->win_off = off;
    r->win_len = want;
    *out = r->win;
    return 0;
}

/* Whether [off, size) holds only zero bytes (what a crash can leave). */
static int
dec_all_zero(struct dec *d, uint64_t off, bool *zero)
{
    *zero = true;
    while (off < d->size) {
        uint64_t left = d->size - off;
        size_t n = left < RD_VERIFY_CHUNK ? (size_t)left : RD_VERIFY_CHUNK;
        const uint8_t *p;
        int err = rd_get(&d->rd, off, n, &p);

        if (err != 0) {
            return err;
        }
        for (size_t i = 0; i < n; i++) {
            if (p[i] != 0) {
                *zero = false;
                return 0;
            }
        }
        off += n;
    }
    return 0;
}

static int
dec_short(struct dec *d, uint64_t off, const char *what)
{
    d->m->bad_off = off;
    d->m->bad_what = what;
    return SPOOL_EINCOMPLETE;
}

/* A failed check at off: corrupt, unless only zero bytes follow. */
static int
dec_fail(struct dec *d, uint64_t off, const char *what)
{
    bool zero;
    int err = dec_all_zero(d, off, &zero);

    if (err != 0) {
        return err;
    }
    d->m->bad_off = off;
    d->m->bad_what = zero ? "zero-filled tail" : what;
    return zero ? SPOOL_EINCOMPLETE : CELER_ECORRUPT;
}

static bool
rec_len_ok(uint8_t type, uint32_t len)
{
    switch (type) {
    case SPOOL_REC_BODY:
        return len == 8;
    case SPOOL_REC_END:
        return len == SPOOL_END_PAYLOAD_LEN;
    default:
        return len <= SPOOL_RECORD_MAX;
    }
}

/*
 * Reads and checks the record at off: 0, SPOOL_EINCOMPLETE (the file ends
 * inside it), CELER_ECORRUPT (impossible length or CRC mismatch; rec->len
 * is set) or a read error. Never allocates more than the file holds.
 */
static int
dec_rec(struct dec *d, uint64_t off, struct rec *rec)
{
    uint64_t avail = d->size - off;
    const uint8_t *p;
    int err;

    *rec = (struct rec){0};
    if (avail < SPOOL_REC_HDR_LEN) {
        rec->why = "truncated record header";
        return SPOOL_EINCOMPLETE;
    }
    if ((err = rd_get(&d->rd, off, SPOOL_REC_HDR_LEN, &p)) != 0) {
        return err;
    }
    rec->type = p[0];
    rec->len = get_u32(p + 1);
    rec->total = (uint64_t)rec->len + SPOOL_REC_OVERHEAD;
    if (!rec_len_ok(rec->type, rec->len)) {
        rec->why = "impossible record length";
        return CELER_ECORRUPT;
    }
    if (rec->total > avail) {
        rec->why = "truncated record";
        return SPOOL_EINCOMPLETE;
    }
    if ((err = rd_get(&d->rd, off, (size_t)rec->total, &p)) != 0) {
        return err;
    }
    if (crc32c(p, SPOOL_REC_HDR_LEN + rec->len) != get_u32(p + SPOOL_REC_HDR_LEN + rec->len)) {
        rec->why = "record CRC mismatch";
        return CELER_ECORRUPT;
    }
    rec->raw = p;
    return 0;
}

/* dec_rec() before END, where every failure decides the file's fate. */
static int
dec_rec_strict(struct dec *d, struct rec *rec)
{
    int err = dec_rec(d, d->off, rec);

    if (err == SPOOL_EINCOMPLETE) {
        return dec_short(d, d->off, rec->why);
    }
    if (err == CELER_ECORRUPT) {
        return dec_fail(d, d->off, rec->why);
    }
    return err;
}

/* Folds a checked record into the running CRC and moves past it. */
static void
dec_advance(struct dec *d, const struct rec *rec)
{
    d->crc = crc32c_update(d->crc, rec->raw, (size_t)rec->total);
    d->off += rec->total;
}

/* Copies bytes the decoded message keeps; freed by spool_msg_release(). */
static const char *
dec_keep(struct dec *d, const uint8_t *p, size_t len)
{
    struct spool_blob *b = xmalloc(sizeof(*b) + len + 1);

    if (len > 0) {
        memcpy(b->data, p, len);
    }
    b->data[len] = 0; /* not part of the views; keeps empty views non-NULL and in bounds */
    b->next = d->m->blobs;
    d->m->blobs = b;
    return (const char *)b->data;
}

/* ---- Decoder: fields ---- */

struct tlv {
    const uint8_t *p; /* borrowed */
    size_t len;
    size_t off;
};

static int
tlv_varint(struct tlv *t, uint32_t *out)
{
    uint32_t v = 0;

    for (int i = 0; i < VARINT_MAX_LEN; i++) {
        uint8_t b;

        if (t->off >= t->len) {
            return CELER_ECORRUPT;
        }
        b = t->p[t->off++];
        if (i == VARINT_MAX_LEN - 1 && b > 0x0f) {
            return CELER_ECORRUPT; /* beyond 32 bits */
        }
        v |= (uint32_t)(b & 0x7f) << (7 * i);
        if ((b & 0x80) == 0) {
            if (b == 0 && i > 0) {
                return CELER_ECORRUPT; /* not the shortest form */
            }
            *out = v;
            return 0;
        }
    }
    return CELER_ECORRUPT;
}

/* The next field: 1 (tag, value), 0 at the end, or CELER_ECORRUPT. */
static int
tlv_next(struct tlv *t, uint8_t *tag, struct strv *val)
{
    uint32_t len;

    if (t->off == t->len) {
        return 0;
    }
    *tag = t->p[t->off++];
    if (tlv_varint(t, &len) != 0 || len > t->len - t->off) {
        return CELER_ECORRUPT;
    }
    *val = (struct strv){(const char *)t->p + t->off, len};
    t->off += len;
    return 1;
}

static struct tlv
tlv_of(struct strv v)
{
    return (struct tlv){(const uint8_t *)v.ptr, v.len, 0};
}

/* A field seen twice where it may appear once: true (and corrupt). */
static bool
tag_dup(uint32_t *seen, uint8_t tag)
{
    uint32_t bit = 1u << (tag & 31);

    if (*seen & bit) {
        return true;
    }
    *seen |= bit;
    return false;
}

static int
val_u8(struct strv v, uint8_t max, uint8_t *out)
{
    if (v.len != 1 || (uint8_t)v.ptr[0] > max) {
        return CELER_ECORRUPT;
    }
    *out = (uint8_t)v.ptr[0];
    return 0;
}

static int
val_u32(struct strv v, uint32_t *out)
{
    if (v.len != 4) {
        return CELER_ECORRUPT;
    }
    *out = get_u32((const uint8_t *)v.ptr);
    return 0;
}

static int
val_u64(struct strv v, uint64_t *out)
{
    if (v.len != 8) {
        return CELER_ECORRUPT;
    }
    *out = get_u64((const uint8_t *)v.ptr);
    return 0;
}

static int
rcpt_parse(struct strv val, struct spool_rcpt *r)
{
    struct tlv t = tlv_of(val);
    uint32_t seen = 0;
    uint8_t tag, u8;
    struct strv v;
    int more;

    while ((more = tlv_next(&t, &tag, &v)) == 1) {
        if (tag == 0 || tag > RCPT_NOTIFY) {
            continue; /* unknown: skipped */
        }
        if (tag_dup(&seen, tag)) {
            return CELER_ECORRUPT;
        }
        if (tag == RCPT_ADDR) {
            r->addr = v;
        } else if (tag == RCPT_ORCPT_TYPE) {
            r->orcpt_type = v;
        } else if (tag == RCPT_ORCPT_ADDR) {
            r->orcpt_addr = v;
        } else if (val_u8(v, 0xff, &u8) != 0 || u8 == 0 || !notify_valid(u8)) {
            return CELER_ECORRUPT;
        } else {
            r->notify = u8;
        }
    }
    if (more < 0 || r->addr.ptr == NULL ||
        (r->orcpt_type.ptr == NULL) != (r->orcpt_addr.ptr == NULL)) {
        return CELER_ECORRUPT;
    }
    return 0;
}

/* Scalar (non-string, non-RCPT) envelope fields. */
static int
env_scalar(struct spool_envelope *env, uint8_t tag, struct strv v)
{
    uint64_t u64;
    uint32_t u32;
    uint8_t u8;

    switch (tag) {
    case ENV_CTIME:
        if (val_u64(v, &u64) != 0) {
            return CELER_ECORRUPT;
        }
        env->ctime_us = (int64_t)u64;
        return 0;
    case ENV_BODY_TYPE:
        if (val_u8(v, SPOOL_BODY_BINARYMIME, &u8) != 0) {
            return CELER_ECORRUPT;
        }
        env->body_type = (enum spool_body_type)u8;
        return 0;
    case ENV_RET:
        if (val_u8(v, SPOOL_RET_HDRS, &u8) != 0 || u8 == SPOOL_RET_UNSET) {
            return CELER_ECORRUPT;
        }
        env->ret = (enum spool_ret)u8;
        return 0;
    case ENV_FLAGS:
        if (val_u32(v, &u32) != 0) {
            return CELER_ECORRUPT;
        }
        env->smtputf8 = (u32 & ENV_FLAG_SMTPUTF8) != 0; /* unknown bits: ignored */
        env->priority = (u32 & ENV_FLAG_PRIORITY) != 0;
        return 0;
    default:
        return CELER_ECORRUPT;
    }
}

static int
env_field(struct spool_envelope *env, uint8_t tag, struct strv v)
{
    for (size_t i = 0; i < ENV_STR_FIELDS; i++) {
        if (env_str_fields[i].tag == tag) {
            *env_str(env, i) = v;
            return 0;
        }
    }
    return env_scalar(env, tag, v);
}

/* Counts RCPT fields (and checks the framing) before anything is allocated. */
static int
env_count_rcpts(struct strv payload, size_t *count)
{
    struct tlv t = tlv_of(payload);
    uint8_t tag;
    struct strv v;
    int more;

    *count = 0;
    while ((more = tlv_next(&t, &tag, &v)) == 1) {
        if (tag == ENV_RCPT && ++*count > SPOOL_RCPT_MAX) {
            return CELER_ECORRUPT;
        }
    }
    return more;
}

#define ENV_MANDATORY                                                                              \
    ((1u << ENV_ID) | (1u << ENV_CTIME) | (1u << ENV_SENDER) | (1u << ENV_BODY_TYPE))

/* Parses the envelope payload; views point into payload, which the message owns. */
static int
env_parse(struct spool_msg *m, struct strv payload)
{
    struct spool_envelope *env = &m->env;
    struct tlv t = tlv_of(payload);
    uint32_t seen = 0;
    size_t count, n = 0;
    struct spool_id id;
    uint8_t tag;
    struct strv v;
    int more;

    if (env_count_rcpts(payload, &count) != 0) {
        return CELER_ECORRUPT;
    }
    env->rcpts = xcalloc(count, sizeof(*env->rcpts));
    m->rprog = xcalloc(count, sizeof(*m->rprog));
    env->rcpt_count = count;
    while ((more = tlv_next(&t, &tag, &v)) == 1) {
        if (tag == ENV_RCPT) {
            if (rcpt_parse(v, &env->rcpts[n++]) != 0) {
                return CELER_ECORRUPT;
            }
        } else if (tag == 0 || tag > ENV_BINDING) {
            continue; /* unknown: skipped */
        } else if (tag_dup(&seen, tag) || env_field(env, tag, v) != 0) {
            return CELER_ECORRUPT;
        }
    }
    if (more < 0 || (seen & ENV_MANDATORY) != ENV_MANDATORY || spool_id_parse(env->id, &id) != 0) {
        return CELER_ECORRUPT;
    }
    return 0;
}

/* One PROG_RCPT field: validated, then applied. */
static int
upd_apply(struct spool_msg *m, struct strv val)
{
    struct tlv t = tlv_of(val);
    struct strv v, bg = STRV_NULL, b = STRV_NULL;
    uint32_t seen = 0, index = 0;
    uint8_t tag, state = 0;
    int more;

    while ((more = tlv_next(&t, &tag, &v)) == 1) {
        if (tag == 0 || tag > UPD_BINDING) {
            continue; /* unknown: skipped */
        }
        if (tag_dup(&seen, tag)) {
            return CELER_ECORRUPT;
        }
        if (tag == UPD_INDEX && val_u32(v, &index) != 0) {
            return CELER_ECORRUPT;
        }
        if (tag == UPD_STATE && val_u8(v, SPOOL_RCPT_FAILED, &state) != 0) {
            return CELER_ECORRUPT;
        }
        bg = tag == UPD_BINDING_GROUP ? v : bg;
        b = tag == UPD_BINDING ? v : b;
    }
    if (more < 0 || !(seen & (1u << UPD_INDEX)) || index >= m->env.rcpt_count) {
        return CELER_ECORRUPT;
    }
    if (seen & (1u << UPD_STATE)) {
        m->rprog[index].state = (enum spool_rcpt_state)state;
    }
    if (bg.ptr != NULL) {
        m->rprog[index].binding_group = bg;
    }
    if (b.ptr != NULL) {
        m->rprog[index].binding = b;
    }
    return 0;
}

/* Folds one PROGRESS payload (owned by m) into m. */
static int
prog_apply(struct spool_msg *m, struct strv payload)
{
    struct tlv t = tlv_of(payload);
    uint32_t seen = 0, u32;
    uint64_t u64;
    uint8_t tag;
    struct strv v;
    int more;

    while ((more = tlv_next(&t, &tag, &v)) == 1) {
        if (tag == PROG_RCPT) {
            if (upd_apply(m, v) != 0) {
                return CELER_ECORRUPT;
            }
            continue;
        }
        if (tag == 0 || tag > PROG_RCPT) {
            continue; /* unknown: skipped */
        }
        if (tag_dup(&seen, tag)) {
            return CELER_ECORRUPT;
        }
        if (tag == PROG_ATTEMPTS) {
            if (val_u32(v, &u32) != 0) {
                return CELER_ECORRUPT;
            }
            m->attempts = u32;
        } else if (tag == PROG_NEXT_ATTEMPT) {
            if (val_u64(v, &u64) != 0) {
                return CELER_ECORRUPT;
            }
            m->next_attempt_s = (int64_t)u64;
        } else if (tag == PROG_RESPONSE) {
            m->last_response = v;
        } else if (tag == PROG_BINDING_GROUP) {
            m->env.binding_group = v;
        } else {
            m->env.binding = v;
        }
    }
    if (more < 0) {
        return CELER_ECORRUPT;
    }
    m->progress_count++;
    return 0;
}

/* ---- Decoder: the file, record by record ---- */

/* A check failed on bytes whose CRC was valid: the file is corrupt. */
static int
dec_bad(struct dec *d, uint64_t off, const char *what)
{
    d->m->bad_off = off;
    d->m->bad_what = what;
    return CELER_ECORRUPT;
}

static int
dec_header(struct dec *d)
{
    size_t n = d->size < SPOOL_FILE_HDR_LEN ? (size_t)d->size : SPOOL_FILE_HDR_LEN;
    const uint8_t *p;
    int err;

    if ((err = rd_get(&d->rd, 0, n, &p)) != 0) {
        return err;
    }
    if (n == SPOOL_FILE_HDR_LEN && memcmp(p, SPOOL_PARKED_HDR, SPOOL_FILE_HDR_LEN) == 0) {
        return dec_short(d, 0, "a reused file not yet rewritten");
    }
    if (memcmp(p, SPOOL_MAGIC, n < SPOOL_MAGIC_LEN ? n : SPOOL_MAGIC_LEN) != 0) {
        return dec_fail(d, 0, "bad magic");
    }
    if (n < SPOOL_FILE_HDR_LEN) {
        return dec_short(d, n, "truncated file header");
    }
    if (p[SPOOL_MAGIC_LEN] != SPOOL_VERSION) {
        return dec_bad(d, SPOOL_MAGIC_LEN, "unsupported format version");
    }
    d->crc = crc32c(p, SPOOL_FILE_HDR_LEN);
    d->off = SPOOL_FILE_HDR_LEN;
    return 0;
}

static int
dec_envelope(struct dec *d)
{
    uint64_t off = d->off;
    struct rec rec;
    const char *payload;
    int err;

    if ((err = dec_rec_strict(d, &rec)) != 0) {
        return err;
    }
    if (rec.type != SPOOL_REC_ENVELOPE) {
        return dec_fail(d, off, "expected ENVELOPE record");
    }
    payload = dec_keep(d, rec.raw + SPOOL_REC_HDR_LEN, rec.len);
    dec_advance(d, &rec);
    if (env_parse(d->m, strv_make(payload, rec.len)) != 0) {
        return dec_bad(d, off, "bad envelope field");
    }
    return 0;
}

static int
dec_verify_body(struct dec *d, uint32_t stored)
{
    uint64_t off = d->m->body_off, left = d->m->body_len;
    uint32_t crc = CRC32C_INIT;

    while (left > 0) {
        size_t n = left < RD_VERIFY_CHUNK ? (size_t)left : RD_VERIFY_CHUNK;
        const uint8_t *p;
        int err = rd_get(&d->rd, off, n, &p);

        if (err != 0) {
            return err;
        }
        crc = crc32c_update(crc, p, n);
        off += n;
        left -= n;
    }
    return crc == stored ? 0 : dec_bad(d, d->m->body_off, "body CRC mismatch");
}

/* BODY header, then the body (skipped or verified) and its CRC trailer. */
static int
dec_body(struct dec *d)
{
    uint64_t hdr_off = d->off, body_len, avail;
    uint8_t trailer[SPOOL_BODY_TRAILER_LEN];
    const uint8_t *p;
    struct rec rec;
    int err;

    if ((err = dec_rec_strict(d, &rec)) != 0) {
        return err;
    }
    if (rec.type != SPOOL_REC_BODY) {
        return dec_fail(d, hdr_off, "expected BODY record");
    }
    body_len = get_u64(rec.raw + SPOOL_REC_HDR_LEN);
    dec_advance(d, &rec);
    if (body_len == SPOOL_BODY_LEN_UNKNOWN) {
        return dec_short(d, hdr_off, "body still streaming");
    }
    avail = d->size - d->off;
    if (body_len > avail || avail - body_len < SPOOL_BODY_TRAILER_LEN) {
        return dec_short(d, d->off, "truncated body");
    }
    d->m->body_off = d->off;
    d->m->body_len = body_len;
    if ((err = rd_get(&d->rd, d->off + body_len, sizeof(trailer), &p)) != 0) {
        return err;
    }
    memcpy(trailer, p, sizeof(trailer));
    d->m->body_crc = get_u32(trailer);
    if ((d->flags & SPOOL_DECODE_VERIFY_BODY) && (err = dec_verify_body(d, d->m->body_crc)) != 0) {
        return err;
    }
    /* END covers the body too: combine its stored CRC instead of reading it. */
    d->crc = crc32c_combine(d->crc, d->m->body_crc, body_len);
    d->crc = crc32c_update(d->crc, trailer, sizeof(trailer));
    d->off += body_len + sizeof(trailer);
    return 0;
}

static int
dec_end(struct dec *d, const struct rec *rec)
{
    const uint8_t *p = rec->raw + SPOOL_REC_HDR_LEN;

    if (!d->prepend_seen) {
        return dec_bad(d, d->off, "END before PREPEND");
    }
    if (get_u64(p) != d->off) {
        return dec_bad(d, d->off, "END offset mismatch");
    }
    /*
     * The copy of the body CRC checks the trailer: the file CRC cannot, as
     * it was computed from the trailer itself (a CRC followed by its own
     * value cancels out).
     */
    if (get_u32(p + 8) != d->m->body_crc) {
        return dec_bad(d, d->off, "body CRC trailer mismatch");
    }
    if (get_u32(p + 12) != d->crc) {
        return dec_bad(d, d->off, "file CRC mismatch");
    }
    d->m->end_off = d->off;
    dec_advance(d, rec);
    return 0;
}

/* Records between the body and END: PREPEND once, unknown types skipped. */
static int
dec_middle(struct dec *d)
{
    for (;;) {
        struct rec rec;
        const char *payload;
        int err;

        if ((err = dec_rec_strict(d, &rec)) != 0) {
            return err;
        }
        switch (rec.type) {
        case SPOOL_REC_END:
            return dec_end(d, &rec);
        case SPOOL_REC_PREPEND:
            if (d->prepend_seen) {
                return dec_bad(d, d->off, "second PREPEND record");
            }
            d->prepend_seen = true;
            payload = dec_keep(d, rec.raw + SPOOL_REC_HDR_LEN, rec.len);
            d->m->prepend = strv_make(payload, rec.len);
            break;
        case SPOOL_REC_ENVELOPE:
        case SPOOL_REC_BODY:
        case SPOOL_REC_PROGRESS:
            return dec_bad(d, d->off, "unexpected record before END");
        default:
            break; /* unknown type: skipped */
        }
        dec_advance(d, &rec);
    }
}

/*
 * Records after END. A damaged record that reaches the end of the file, or
 * is followed only by zero bytes, is a torn append: ignored and reported
 * through valid_len/tail_damaged. Damage with valid bytes after it is not.
 */
static int
dec_tail(struct dec *d)
{
    struct spool_msg *m = d->m;

    m->valid_len = d->off;
    while (d->off < d->size) {
        struct rec rec;
        const char *payload;
        bool zero;
        int err = dec_rec(d, d->off, &rec);

        if (err == SPOOL_EINCOMPLETE) {
            break;
        }
        if (err == CELER_ECORRUPT) {
            if (rec.total >= d->size - d->off) {
                break;
            }
            if ((err = dec_all_zero(d, d->off, &zero)) != 0) {
                return err;
            }
            if (zero) {
                break;
            }
            return dec_bad(d, d->off, "damaged record followed by more records");
        }
        if (err != 0) {
            return err;
        }
        if (rec.type == SPOOL_REC_PROGRESS) {
            payload = dec_keep(d, rec.raw + SPOOL_REC_HDR_LEN, rec.len);
            if (prog_apply(m, strv_make(payload, rec.len)) != 0) {
                return dec_bad(d, d->off, "bad PROGRESS field");
            }
        } else if (rec.type == SPOOL_REC_ENVELOPE || rec.type == SPOOL_REC_BODY ||
                   rec.type == SPOOL_REC_PREPEND || rec.type == SPOOL_REC_END) {
            return dec_bad(d, d->off, "unexpected record after END");
        }
        d->off += rec.total;
        m->valid_len = d->off;
    }
    m->tail_damaged = m->valid_len < d->size;
    return 0;
}

int
spool_decode(const struct spool_source *src, unsigned flags, struct spool_msg *out)
{
    struct dec d = {.m = out, .flags = flags};
    int err;

    *out = (struct spool_msg){0};
    d.rd.src = src;
    if (src->read == NULL) {
        d.rd.mem = src->mem.ptr != NULL ? (const uint8_t *)src->mem.ptr : (const uint8_t *)"";
        d.size = src->mem.len;
    } else {
        d.size = src->size;
    }
    d.rd.size = d.size;
    if ((err = dec_header(&d)) == 0 && (err = dec_envelope(&d)) == 0 && (err = dec_body(&d)) == 0 &&
        (err = dec_middle(&d)) == 0) {
        err = dec_tail(&d);
    }
    free(d.rd.win);
    if (err != 0) {
        uint64_t bad_off = out->bad_off;
        const char *bad_what = out->bad_what ? out->bad_what : "read error";

        spool_msg_release(out);
        out->bad_off = bad_off;
        out->bad_what = bad_what;
    }
    return err;
}

int
spool_decode_mem(struct strv file, unsigned flags, struct spool_msg *out)
{
    struct spool_source src = {.mem = file};

    return spool_decode(&src, flags, out);
}

void
spool_msg_release(struct spool_msg *m)
{
    struct spool_blob *b = m->blobs;

    while (b != NULL) {
        struct spool_blob *next = b->next;

        free(b);
        b = next;
    }
    free(m->env.rcpts);
    free(m->rprog);
    *m = (struct spool_msg){0};
}
