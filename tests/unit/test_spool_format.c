/*
 * test_spool_format: the spool file format.
 *
 * Round trips of every envelope field, streaming against one-shot encoding,
 * every prefix and every single-byte corruption of a small file, PROGRESS
 * folding and torn tails, forward compatibility (unknown tags and record
 * types), limits, and the read-callback decoder that skips the body. A
 * small independent builder (t_*) writes files byte by byte as
 * docs/spool-format.md describes them, to pin the layout and craft hostile
 * inputs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>

#include "core/buf.h"
#include "core/crc32c.h"
#include "spool/spool_format.h"

#define ID1 "B9/87-25004-31B987F3"

/* ---- Independent builder ---- */

static void
t_u32(struct buf *b, uint32_t v)
{
    uint8_t p[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};

    buf_append(b, p, 4);
}

static void
t_u64(struct buf *b, uint64_t v)
{
    t_u32(b, (uint32_t)v);
    t_u32(b, (uint32_t)(v >> 32));
}

static void
t_varint(struct buf *b, uint32_t v)
{
    while (v >= 0x80) {
        uint8_t c = (uint8_t)(v | 0x80);

        buf_append(b, &c, 1);
        v >>= 7;
    }
    buf_append(b, &(uint8_t){(uint8_t)v}, 1);
}

static void
t_field(struct buf *b, uint8_t tag, const void *p, size_t n)
{
    buf_append(b, &tag, 1);
    t_varint(b, (uint32_t)n);
    buf_append(b, p, n);
}

static void
t_field_str(struct buf *b, uint8_t tag, const char *s)
{
    t_field(b, tag, s, strlen(s));
}

static void
t_field_u8(struct buf *b, uint8_t tag, uint8_t v)
{
    t_field(b, tag, &v, 1);
}

static void
t_field_u32(struct buf *b, uint8_t tag, uint32_t v)
{
    struct buf tmp;

    buf_init(&tmp, BUF_UNLIMITED);
    t_u32(&tmp, v);
    t_field(b, tag, buf_data(&tmp).ptr, 4);
    buf_release(&tmp);
}

static void
t_field_u64(struct buf *b, uint8_t tag, uint64_t v)
{
    struct buf tmp;

    buf_init(&tmp, BUF_UNLIMITED);
    t_u64(&tmp, v);
    t_field(b, tag, buf_data(&tmp).ptr, 8);
    buf_release(&tmp);
}

static void
t_record(struct buf *b, uint8_t type, struct strv payload)
{
    size_t start = buf_len(b);

    buf_append(b, &type, 1);
    t_u32(b, (uint32_t)payload.len);
    buf_append(b, payload.ptr, payload.len);
    t_u32(b, crc32c(buf_data(b).ptr + start, 5 + payload.len));
}

/* A whole file; middle holds raw records to place before PREPEND. */
static void
t_file(struct buf *b, struct strv env_payload, struct strv body, struct strv middle,
       struct strv prepend)
{
    size_t start = buf_len(b);

    buf_append(b, "CELRSPL\x01", 8);
    t_record(b, 'E', env_payload);
    buf_append(b, "B", 1);
    t_u32(b, 8);
    t_u64(b, body.len);
    t_u32(b, crc32c(buf_data(b).ptr + buf_len(b) - 13, 13));
    buf_append(b, body.ptr, body.len);
    t_u32(b, crc32c(body.ptr, body.len));
    buf_append(b, middle.ptr, middle.len);
    t_record(b, 'H', prepend);
    {
        uint64_t end_off = buf_len(b) - start;
        uint32_t crc = crc32c(buf_data(b).ptr + start, end_off);
        struct buf end;

        buf_init(&end, BUF_UNLIMITED);
        t_u64(&end, end_off);
        t_u32(&end, crc32c(body.ptr, body.len));
        t_u32(&end, crc);
        t_record(b, 'Z', buf_data(&end));
        buf_release(&end);
    }
}

/* The mandatory envelope fields, in the encoder's order. */
static void
t_env_min(struct buf *b, const char *sender)
{
    t_field_str(b, 0x01, ID1);
    t_field_u64(b, 0x02, 1700000000123456);
    t_field_u8(b, 0x07, 0);
    t_field_str(b, 0x03, sender);
}

static void
t_rcpt(struct buf *b, const char *addr)
{
    struct buf r;

    buf_init(&r, BUF_UNLIMITED);
    t_field_str(&r, 0x01, addr);
    t_field(b, 0x04, buf_data(&r).ptr, buf_len(&r));
    buf_release(&r);
}

/* ---- Helpers ---- */

static void
assert_opt_eq(struct strv a, struct strv b)
{
    assert_int_equal(a.ptr == NULL, b.ptr == NULL);
    if (a.ptr != NULL) {
        assert_int_equal(a.len, b.len);
        assert_memory_equal(a.ptr, b.ptr, a.len);
    }
}

static void
assert_env_eq(const struct spool_envelope *a, const struct spool_envelope *b)
{
    assert_opt_eq(a->id, b->id);
    assert_int_equal(a->ctime_us, b->ctime_us);
    assert_opt_eq(a->sender.ptr ? a->sender : STRV_LIT(""), b->sender);
    assert_int_equal(a->rcpt_count, b->rcpt_count);
    for (size_t i = 0; i < a->rcpt_count; i++) {
        assert_opt_eq(a->rcpts[i].addr, b->rcpts[i].addr);
        assert_opt_eq(a->rcpts[i].orcpt_type, b->rcpts[i].orcpt_type);
        assert_opt_eq(a->rcpts[i].orcpt_addr, b->rcpts[i].orcpt_addr);
        assert_int_equal(a->rcpts[i].notify, b->rcpts[i].notify);
    }
    assert_int_equal(a->ret, b->ret);
    assert_opt_eq(a->envid, b->envid);
    assert_int_equal(a->body_type, b->body_type);
    assert_int_equal(a->smtputf8, b->smtputf8);
    assert_int_equal(a->priority, b->priority);
    assert_opt_eq(a->protocol, b->protocol);
    assert_opt_eq(a->source_ip, b->source_ip);
    assert_opt_eq(a->helo, b->helo);
    assert_opt_eq(a->auth_user, b->auth_user);
    assert_opt_eq(a->listener, b->listener);
    assert_opt_eq(a->binding_group, b->binding_group);
    assert_opt_eq(a->binding, b->binding);
}

struct memfile {
    struct strv data;
    size_t reads;
    uint64_t bytes;
    int fail_at_read; /* 1-based; 0 = never */
};

static int
memfile_read(void *arg, uint64_t off, void *dst, size_t len)
{
    struct memfile *f = arg;

    f->reads++;
    f->bytes += len;
    if (f->fail_at_read != 0 && f->reads == (size_t)f->fail_at_read) {
        return -EIO;
    }
    if (off > f->data.len || len > f->data.len - off) {
        return -EIO;
    }
    memcpy(dst, f->data.ptr + off, len);
    return 0;
}

/* Decodes from memory and through the callback; both must agree. */
static int
decode_both(struct strv file, unsigned flags, struct spool_msg *m)
{
    struct memfile f = {.data = file};
    struct spool_source src = {.read = memfile_read, .arg = &f, .size = file.len};
    struct spool_msg m2;
    int err = spool_decode_mem(file, flags, m);
    int err2 = spool_decode(&src, flags, &m2);

    assert_int_equal(err, err2);
    if (err == 0) {
        assert_env_eq(&m->env, &m2.env);
        assert_int_equal(m->body_off, m2.body_off);
        assert_int_equal(m->body_len, m2.body_len);
        assert_int_equal(m->valid_len, m2.valid_len);
        assert_int_equal(m->tail_damaged, m2.tail_damaged);
        assert_int_equal(m->progress_count, m2.progress_count);
    } else {
        assert_int_equal(m->bad_off, m2.bad_off);
    }
    spool_msg_release(&m2);
    return err;
}

static struct spool_rcpt full_rcpts[] = {
    {.addr = STRV_LIT("alice@example.test"), .notify = SPOOL_NOTIFY_SUCCESS | SPOOL_NOTIFY_FAILURE},
    {.addr = STRV_LIT("bob@example.test"),
     .orcpt_type = STRV_LIT("rfc822"),
     .orcpt_addr = STRV_LIT("Bob+x@example.test"),
     .notify = SPOOL_NOTIFY_NEVER},
    {.addr =
         STRV_LIT("\xd0\xb4\xd0\xb6\xd0\xbe@\xd0\xbf\xd1\x80\xd0\xb8\xd0\xbc\xd0\xb5\xd1\x80.test"),
     .orcpt_type = STRV_LIT("utf-8"),
     .orcpt_addr = STRV_LIT(""),
     .notify = SPOOL_NOTIFY_DELAY | SPOOL_NOTIFY_FAILURE | SPOOL_NOTIFY_SUCCESS},
    {.addr = STRV_LIT("")},
};

static struct spool_envelope
full_env(void)
{
    return (struct spool_envelope){
        .id = STRV_LIT(ID1),
        .ctime_us = 1700000000123456,
        .sender = STRV_LIT("s\xc3\xa9nder@example.test"),
        .rcpts = full_rcpts,
        .rcpt_count = sizeof(full_rcpts) / sizeof(full_rcpts[0]),
        .ret = SPOOL_RET_HDRS,
        .envid = STRV_LIT("env-42"),
        .body_type = SPOOL_BODY_8BITMIME,
        .smtputf8 = true,
        .priority = true,
        .protocol = STRV_LIT("esmtp"),
        .source_ip = STRV_LIT("2001:db8::1"),
        .helo = STRV_LIT("mx.client.test"),
        .auth_user = STRV_LIT("user"),
        .listener = STRV_LIT("inbound"),
        .binding_group = STRV_LIT("group"),
        .binding = STRV_LIT("b1"),
    };
}

static struct spool_envelope
min_env(void)
{
    return (struct spool_envelope){.id = STRV_LIT(ID1), .ctime_us = -5};
}

/* ---- Round trips ---- */

static void
check_roundtrip(const struct spool_envelope *env, struct strv body, struct strv prepend)
{
    struct buf out;
    struct spool_msg m;

    buf_init(&out, BUF_UNLIMITED);
    assert_int_equal(spool_encode(&out, env, body, prepend), 0);
    for (unsigned flags = 0; flags <= SPOOL_DECODE_VERIFY_BODY; flags++) {
        assert_int_equal(decode_both(buf_data(&out), flags, &m), 0);
        assert_env_eq(env, &m.env);
        assert_int_equal(m.body_len, body.len);
        assert_memory_equal(buf_data(&out).ptr + m.body_off, body.ptr, body.len);
        assert_int_equal(m.body_crc, crc32c(body.ptr, body.len));
        assert_opt_eq(prepend, m.prepend);
        assert_int_equal(m.end_off + SPOOL_END_LEN, buf_len(&out));
        assert_int_equal(m.valid_len, buf_len(&out));
        assert_false(m.tail_damaged);
        assert_int_equal(m.progress_count, 0);
        assert_int_equal(m.attempts, 0);
        assert_null(m.last_response.ptr);
        for (size_t i = 0; i < m.env.rcpt_count; i++) {
            assert_int_equal(m.rprog[i].state, SPOOL_RCPT_PENDING);
            assert_null(m.rprog[i].binding.ptr);
        }
        spool_msg_release(&m);
    }
    buf_release(&out);
}

static void
test_roundtrip(void **state)
{
    struct spool_envelope env = full_env(), e;
    struct strv body = STRV_LIT("Subject: hi\r\n\r\nbody\r\n");
    struct strv prepend = STRV_LIT("Received: from x by y; date\r\n");

    (void)state;
    check_roundtrip(&env, body, prepend);
    /* Null sender, no recipients, no optional fields, empty body and prepend. */
    e = min_env();
    check_roundtrip(&e, STRV_LIT(""), STRV_LIT(""));
    e.sender = STRV_LIT("");
    check_roundtrip(&e, STRV_LIT("x"), STRV_LIT(""));
    /* Present-but-empty optional strings stay present. */
    e = full_env();
    e.envid = e.protocol = e.source_ip = e.helo = e.auth_user = STRV_LIT("");
    e.listener = e.binding_group = e.binding = STRV_LIT("");
    e.ret = SPOOL_RET_FULL;
    e.body_type = SPOOL_BODY_BINARYMIME;
    e.smtputf8 = false;
    check_roundtrip(&e, body, prepend);
    e.priority = false;
    e.body_type = SPOOL_BODY_7BIT;
    check_roundtrip(&e, body, STRV_LIT(""));
    /* Binary body with NULs and bare CRs. */
    check_roundtrip(&env, strv_make("\0\r\0\n\xff", 5), prepend);
}

static void
test_roundtrip_many_rcpts(void **state)
{
    static const size_t counts[] = {1000, SPOOL_RCPT_MAX};
    struct spool_envelope env = full_env();

    (void)state;
    for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
        struct spool_rcpt *r = calloc(counts[c], sizeof(*r));
        char(*names)[40] = calloc(counts[c], 40);

        for (size_t i = 0; i < counts[c]; i++) {
            int n = snprintf(names[i], 40, "user%zu@d%zu.example.test", i, i % 97);

            r[i].addr = strv_make(names[i], (size_t)n);
            r[i].notify = (i % 3) ? SPOOL_NOTIFY_FAILURE : 0;
        }
        env.rcpts = r;
        env.rcpt_count = counts[c];
        check_roundtrip(&env, STRV_LIT("b"), STRV_LIT(""));
        free(names);
        free(r);
    }
}

/* The encoder writes exactly the documented bytes. */
static void
test_layout_pinned(void **state)
{
    struct spool_envelope env = min_env();
    struct spool_rcpt r = {.addr = STRV_LIT("a@b.test")};
    struct buf mine, ref, envp;
    struct spool_enc enc;

    (void)state;
    env.ctime_us = 1700000000123456;
    env.sender = STRV_LIT("s@x.test");
    env.rcpts = &r;
    env.rcpt_count = 1;
    buf_init(&mine, BUF_UNLIMITED);
    buf_init(&ref, BUF_UNLIMITED);
    buf_init(&envp, BUF_UNLIMITED);
    assert_int_equal(spool_encode(&mine, &env, STRV_LIT("hello\r\n"), STRV_LIT("X: y\r\n")), 0);
    t_env_min(&envp, "s@x.test");
    t_rcpt(&envp, "a@b.test");
    t_file(&ref, buf_data(&envp), STRV_LIT("hello\r\n"), STRV_LIT(""), STRV_LIT("X: y\r\n"));
    assert_int_equal(buf_len(&mine), buf_len(&ref));
    assert_memory_equal(buf_data(&mine).ptr, buf_data(&ref).ptr, buf_len(&ref));
    /* The BODY header sits right after the envelope record. */
    buf_reset(&mine);
    assert_int_equal(spool_enc_begin(&enc, &mine, &env), 0);
    assert_int_equal(enc.body_hdr_off, 8 + 9 + buf_len(&envp));
    assert_int_equal(enc.body_off, enc.body_hdr_off + SPOOL_BODY_HDR_LEN);
    assert_int_equal(buf_len(&mine), enc.body_off);
    buf_release(&mine);
    buf_release(&ref);
    buf_release(&envp);
}

/* ---- Streaming ---- */

static void
stream_encode(struct buf *file, const struct spool_envelope *env, struct strv body, size_t chunk,
              struct strv prepend)
{
    struct spool_enc enc;
    uint8_t hdr[SPOOL_BODY_HDR_LEN];
    struct buf tail;

    buf_init(&tail, BUF_UNLIMITED);
    assert_int_equal(spool_enc_begin(&enc, file, env), 0);
    for (size_t off = 0; off < body.len; off += chunk) {
        size_t n = body.len - off < chunk ? body.len - off : chunk;

        buf_append(file, body.ptr + off, n); /* the writer's write() */
        spool_enc_body(&enc, body.ptr + off, n);
    }
    assert_int_equal(spool_enc_finish(&enc, &tail, prepend, hdr), 0);
    buf_append_strv(file, buf_data(&tail));
    memcpy(file->data + file->start + enc.body_hdr_off, hdr, sizeof(hdr)); /* the pwrite() */
    assert_int_equal(enc.file_len, buf_len(file));
    assert_int_equal(enc.end_off + SPOOL_END_LEN, buf_len(file));
    buf_release(&tail);
}

static void
test_streaming_chunks(void **state)
{
    static const size_t chunks[] = {1, 2, 3, 7, 8, 63, 4096, 65521, 300000};
    struct spool_envelope env = full_env();
    size_t body_len = 200003;
    char *body = malloc(body_len);
    struct strv prepend = STRV_LIT("Received: x\r\nMessage-ID: <a@b>\r\n");
    struct buf one, streamed;

    (void)state;
    for (size_t i = 0; i < body_len; i++) {
        body[i] = (char)(i * 131 + (i >> 7));
    }
    buf_init(&one, BUF_UNLIMITED);
    assert_int_equal(spool_encode(&one, &env, strv_make(body, body_len), prepend), 0);
    for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
        buf_init(&streamed, BUF_UNLIMITED);
        stream_encode(&streamed, &env, strv_make(body, body_len), chunks[c], prepend);
        assert_int_equal(buf_len(&streamed), buf_len(&one));
        assert_memory_equal(buf_data(&streamed).ptr, buf_data(&one).ptr, buf_len(&one));
        buf_release(&streamed);
    }
    buf_release(&one);
    free(body);
}

/* While the body streams the file says so; a finished body with no tail is incomplete. */
static void
test_streaming_incomplete(void **state)
{
    struct spool_envelope env = full_env();
    struct spool_enc enc;
    struct buf file;
    struct spool_msg m;
    uint8_t hdr[SPOOL_BODY_HDR_LEN];

    (void)state;
    buf_init(&file, BUF_UNLIMITED);
    assert_int_equal(spool_enc_begin(&enc, &file, &env), 0);
    buf_append(&file, "partial body", 12);
    spool_enc_body(&enc, "partial body", 12);
    assert_int_equal(decode_both(buf_data(&file), 0, &m), SPOOL_EINCOMPLETE);
    assert_string_equal(m.bad_what, "body still streaming");
    spool_msg_release(&m);
    /* Header patched, tail not yet written. */
    spool_body_hdr_encode(12, hdr);
    memcpy(file.data + file.start + enc.body_hdr_off, hdr, sizeof(hdr));
    assert_int_equal(decode_both(buf_data(&file), 0, &m), SPOOL_EINCOMPLETE);
    spool_msg_release(&m);
    /* Tail written, header not patched (lost pwrite). */
    assert_int_equal(spool_enc_finish(&enc, &file, STRV_LIT(""), hdr), 0);
    spool_body_hdr_encode(SPOOL_BODY_LEN_UNKNOWN, hdr);
    memcpy(file.data + file.start + enc.body_hdr_off, hdr, sizeof(hdr));
    assert_int_equal(decode_both(buf_data(&file), 0, &m), SPOOL_EINCOMPLETE);
    spool_msg_release(&m);
    buf_release(&file);
}

/* ---- Truncation and corruption ---- */

static void
small_file(struct buf *file)
{
    struct spool_envelope env = full_env();

    buf_init(file, BUF_UNLIMITED);
    assert_int_equal(spool_encode(file, &env, STRV_LIT("Subject: s\r\n\r\nhello\r\n"),
                                  STRV_LIT("Received: by test\r\n")),
                     0);
}

static void
test_every_prefix(void **state)
{
    struct buf file;
    struct spool_msg m;

    (void)state;
    small_file(&file);
    for (size_t len = 0; len < buf_len(&file); len++) {
        for (unsigned flags = 0; flags <= SPOOL_DECODE_VERIFY_BODY; flags++) {
            int err = decode_both(strv_make(buf_data(&file).ptr, len), flags, &m);

            if (err != SPOOL_EINCOMPLETE) {
                fail_msg("prefix of %zu bytes: %s", len, spool_err_str(err));
            }
            assert_null(m.blobs);
            spool_msg_release(&m);
        }
    }
    assert_int_equal(decode_both(buf_data(&file), 0, &m), 0);
    spool_msg_release(&m);
    buf_release(&file);
}

/*
 * Every single-byte change of the file must be caught. The only changes that
 * read as "incomplete" rather than "corrupt" are in the length fields of
 * variable-length records (a longer length points past the end of file,
 * which is what a truncation looks like); without VERIFY_BODY the body bytes
 * themselves are not read (they are covered by the body CRC at delivery).
 */
static void
test_every_byte_corruption(void **state)
{
    static const uint8_t xors[] = {0x01, 0x80, 0xff, 0x20};
    struct buf file;
    struct spool_msg m;
    uint64_t body_off, body_len, prepend_off;
    size_t incomplete = 0;

    (void)state;
    small_file(&file);
    assert_int_equal(spool_decode_mem(buf_data(&file), 0, &m), 0);
    body_off = m.body_off;
    body_len = m.body_len;
    prepend_off = body_off + body_len + 4;
    spool_msg_release(&m);
    for (size_t i = 0; i < buf_len(&file); i++) {
        bool in_body = i >= body_off && i < body_off + body_len;
        bool in_len = (i >= 9 && i < 13) || (i >= prepend_off + 1 && i < prepend_off + 5);

        for (size_t x = 0; x < sizeof(xors); x++) {
            char *p = file.data + file.start + i;
            int err;

            *p = (char)(*p ^ xors[x]);
            err = decode_both(buf_data(&file), SPOOL_DECODE_VERIFY_BODY, &m);
            spool_msg_release(&m);
            if (err == SPOOL_EINCOMPLETE && in_len) {
                incomplete++;
            } else if (err != CELER_ECORRUPT) {
                fail_msg("byte %zu ^ 0x%02x: %s", i, xors[x], spool_err_str(err));
            }
            err = decode_both(buf_data(&file), 0, &m);
            spool_msg_release(&m);
            if (in_body ? err != 0 : err == 0) {
                fail_msg("fast decode of byte %zu ^ 0x%02x: %s", i, xors[x], spool_err_str(err));
            }
            *p = (char)(*p ^ xors[x]);
        }
    }
    assert_true(incomplete > 0);
    assert_int_equal(spool_decode_mem(buf_data(&file), SPOOL_DECODE_VERIFY_BODY, &m), 0);
    spool_msg_release(&m);
    buf_release(&file);
}

static void
test_bad_headers(void **state)
{
    static const struct {
        const char *bytes;
        size_t len;
        int want;
    } cases[] = {
        {"", 0, SPOOL_EINCOMPLETE},
        {"CEL", 3, SPOOL_EINCOMPLETE},
        {"CELRSPL", 7, SPOOL_EINCOMPLETE},
        {"CELRSPL\x01", 8, SPOOL_EINCOMPLETE},
        {"CELRSPL\x01"
         "E\x00",
         10, SPOOL_EINCOMPLETE},
        {"XELRSPL\x01", 8, CELER_ECORRUPT},
        {"From ", 5, CELER_ECORRUPT},
        {"CELRSPL\x02", 8, CELER_ECORRUPT},                          /* future version */
        {"CELRSPL\x00\x00\x00\x00\x00", 12, CELER_ECORRUPT},         /* version 0 */
        {"\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16, SPOOL_EINCOMPLETE}, /* zero-filled */
        {"CELRSPL\x01\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 23, SPOOL_EINCOMPLETE},
        {"CELRSPL\x01P\0\0\0\0\0\0\0\0", 17, CELER_ECORRUPT}, /* bad CRC, not zeros */
        {SPOOL_PARKED_HDR, 8, SPOOL_EINCOMPLETE}, /* parked for reuse (spool_recycle.h) */
        {SPOOL_PARKED_HDR "E\x05\0\0\0stale", 18, SPOOL_EINCOMPLETE}, /* ...with old bytes */
        {"CELRFRE\x02", 8, CELER_ECORRUPT},                           /* not the marker */
    };
    struct spool_msg m;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int err = decode_both(strv_make(cases[i].bytes, cases[i].len), 0, &m);

        if (err != cases[i].want) {
            fail_msg("case %zu: %s", i, spool_err_str(err));
        }
        assert_non_null(m.bad_what);
        spool_msg_release(&m);
    }
}

/* ---- Progress ---- */

static void
append_progress(struct buf *file, const struct spool_progress *p)
{
    assert_int_equal(spool_progress_encode(file, p), 0);
}

static void
test_progress_fold(void **state)
{
    struct buf file;
    struct spool_msg m;
    struct spool_rcpt_update u1[] = {
        {.index = 0, .state = SPOOL_RCPT_DELIVERED},
        {.index = 2, .state = SPOOL_RCPT_FAILED},
        {.index = 3, .state = SPOOL_RCPT_UNCHANGED, .binding = STRV_LIT("b-late")},
    };
    struct spool_rcpt_update u2[] = {
        {.index = 2, .state = SPOOL_RCPT_PENDING, .binding_group = STRV_LIT("g2")},
        {.index = 1, .state = SPOOL_RCPT_DELIVERED},
        {.index = 1, .state = SPOOL_RCPT_FAILED}, /* later in the same record wins */
    };
    struct spool_progress p1 = {.has_attempts = true,
                                .attempts = 1,
                                .has_next_attempt = true,
                                .next_attempt_s = 1700000600,
                                .response = STRV_LIT("451 4.7.1 try later"),
                                .binding = STRV_LIT("b-msg"),
                                .updates = u1,
                                .update_count = 3};
    struct spool_progress p2 = {.has_attempts = true,
                                .attempts = 2,
                                .binding_group = STRV_LIT("g-msg"),
                                .updates = u2,
                                .update_count = 3};
    struct spool_progress empty = {0};

    (void)state;
    small_file(&file);
    append_progress(&file, &p1);
    append_progress(&file, &empty);
    append_progress(&file, &p2);
    assert_int_equal(decode_both(buf_data(&file), SPOOL_DECODE_VERIFY_BODY, &m), 0);
    assert_int_equal(m.progress_count, 3);
    assert_int_equal(m.attempts, 2);
    assert_int_equal(m.next_attempt_s, 1700000600);
    assert_true(strv_eq_cstr(m.last_response, "451 4.7.1 try later"));
    assert_true(strv_eq_cstr(m.env.binding, "b-msg"));
    assert_true(strv_eq_cstr(m.env.binding_group, "g-msg"));
    assert_int_equal(m.rprog[0].state, SPOOL_RCPT_DELIVERED);
    assert_int_equal(m.rprog[1].state, SPOOL_RCPT_FAILED);
    assert_int_equal(m.rprog[2].state, SPOOL_RCPT_PENDING);
    assert_true(strv_eq_cstr(m.rprog[2].binding_group, "g2"));
    assert_null(m.rprog[2].binding.ptr);
    assert_int_equal(m.rprog[3].state, SPOOL_RCPT_PENDING);
    assert_true(strv_eq_cstr(m.rprog[3].binding, "b-late"));
    assert_int_equal(m.valid_len, buf_len(&file));
    assert_false(m.tail_damaged);
    spool_msg_release(&m);
    buf_release(&file);
}

/* Every prefix that cuts into the PROGRESS region keeps the whole records before the cut. */
static void
test_progress_torn_tail(void **state)
{
    struct spool_rcpt_update u = {.index = 1, .state = SPOOL_RCPT_DELIVERED};
    struct spool_progress p1 = {.has_attempts = true, .attempts = 1};
    struct spool_progress p2 = {.response = STRV_LIT("250 ok"), .updates = &u, .update_count = 1};
    struct buf file;
    struct spool_msg m;
    size_t end, after1;

    (void)state;
    small_file(&file);
    end = buf_len(&file);
    append_progress(&file, &p1);
    after1 = buf_len(&file);
    append_progress(&file, &p2);
    for (size_t len = end; len <= buf_len(&file); len++) {
        size_t want_valid = len == buf_len(&file) ? len : len >= after1 ? after1 : end;

        assert_int_equal(decode_both(strv_make(buf_data(&file).ptr, len), 0, &m), 0);
        assert_int_equal(m.valid_len, want_valid);
        assert_int_equal(m.tail_damaged, want_valid != len);
        assert_int_equal(m.attempts, len >= after1 ? 1 : 0);
        assert_int_equal(m.rprog[1].state,
                         len == buf_len(&file) ? SPOOL_RCPT_DELIVERED : SPOOL_RCPT_PENDING);
        spool_msg_release(&m);
    }
    buf_release(&file);
}

static void
test_progress_damage(void **state)
{
    struct spool_progress p1 = {.has_attempts = true, .attempts = 7};
    struct spool_rcpt_update bad_index = {.index = 4, .state = SPOOL_RCPT_DELIVERED};
    struct spool_progress p_bad = {.updates = &bad_index, .update_count = 1};
    struct buf file;
    struct spool_msg m;
    size_t end, after1;

    (void)state;
    small_file(&file);
    end = buf_len(&file);
    append_progress(&file, &p1);
    after1 = buf_len(&file);
    append_progress(&file, &p1);
    /* Damage the last record: a torn tail, ignored and reported. */
    file.data[file.start + buf_len(&file) - 1] ^= 0x10;
    assert_int_equal(decode_both(buf_data(&file), 0, &m), 0);
    assert_int_equal(m.progress_count, 1);
    assert_int_equal(m.valid_len, after1);
    assert_true(m.tail_damaged);
    spool_msg_release(&m);
    /* Damage in the middle, valid records after it: corrupt. */
    file.data[file.start + buf_len(&file) - 1] ^= 0x10;
    file.data[file.start + end + 6] ^= 0x10;
    assert_int_equal(decode_both(buf_data(&file), 0, &m), CELER_ECORRUPT);
    assert_int_equal(m.bad_off, end);
    spool_msg_release(&m);
    file.data[file.start + end + 6] ^= 0x10;
    /* Zero bytes after the last record (size extended, data lost). */
    buf_append(&file, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 30);
    assert_int_equal(decode_both(buf_data(&file), 0, &m), 0);
    assert_int_equal(m.progress_count, 2);
    assert_true(m.tail_damaged);
    spool_msg_release(&m);
    /* A well-formed record naming a recipient that does not exist: corrupt. */
    buf_release(&file);
    small_file(&file);
    append_progress(&file, &p_bad);
    assert_int_equal(decode_both(buf_data(&file), 0, &m), CELER_ECORRUPT);
    assert_string_equal(m.bad_what, "bad PROGRESS field");
    spool_msg_release(&m);
    buf_release(&file);
}

/* ---- Forward compatibility and hostile envelopes ---- */

static int
decode_env_payload(struct strv env_payload, struct strv middle, struct spool_msg *m)
{
    struct buf file;
    int err;

    buf_init(&file, BUF_UNLIMITED);
    t_file(&file, env_payload, STRV_LIT("body\r\n"), middle, STRV_LIT(""));
    err = decode_both(buf_data(&file), SPOOL_DECODE_VERIFY_BODY, m);
    buf_release(&file);
    return err;
}

static void
test_unknown_tags_skipped(void **state)
{
    struct buf envp, rcpt, middle, tail_file;
    struct spool_msg m;

    (void)state;
    buf_init(&envp, BUF_UNLIMITED);
    buf_init(&rcpt, BUF_UNLIMITED);
    buf_init(&middle, BUF_UNLIMITED);
    t_field_str(&envp, 0x7f, "from the future");
    t_env_min(&envp, "");
    t_field(&envp, 0x10, "", 0);
    t_field(&envp, 0xff, "\x01\x02\x03", 3);
    t_field(&envp, 0x00, "zero tag", 8);
    t_field_str(&rcpt, 0x09, "unknown nested");
    t_field_str(&rcpt, 0x01, "r@x.test");
    t_field_u8(&rcpt, 0x04, SPOOL_NOTIFY_DELAY);
    t_field(&envp, 0x04, buf_data(&rcpt).ptr, buf_len(&rcpt));
    t_field_u32(&envp, 0x08, 0xfffffffc); /* unknown flag bits ignored */
    /* Unknown record types between the body and END are skipped too. */
    t_record(&middle, 'X', STRV_LIT("an extension record"));
    t_record(&middle, 0x01, STRV_LIT(""));
    assert_int_equal(decode_env_payload(buf_data(&envp), buf_data(&middle), &m), 0);
    assert_int_equal(m.env.rcpt_count, 1);
    assert_true(strv_eq_cstr(m.env.rcpts[0].addr, "r@x.test"));
    assert_int_equal(m.env.rcpts[0].notify, SPOOL_NOTIFY_DELAY);
    assert_int_equal(m.env.sender.len, 0);
    assert_non_null(m.env.sender.ptr);
    assert_false(m.env.smtputf8);
    assert_false(m.env.priority);
    spool_msg_release(&m);
    /* ... and after END, with an unknown PROGRESS field. */
    buf_init(&tail_file, BUF_UNLIMITED);
    small_file(&tail_file);
    buf_reset(&rcpt);
    t_field_u32(&rcpt, 0x01, 9);
    t_field_str(&rcpt, 0x40, "future");
    t_record(&tail_file, 'Q', STRV_LIT("future tail record"));
    t_record(&tail_file, 'P', buf_data(&rcpt));
    assert_int_equal(decode_both(buf_data(&tail_file), 0, &m), 0);
    assert_int_equal(m.attempts, 9);
    assert_int_equal(m.progress_count, 1);
    spool_msg_release(&m);
    buf_release(&tail_file);
    buf_release(&envp);
    buf_release(&rcpt);
    buf_release(&middle);
}

/* Builds an envelope payload from the minimal one plus extra bytes. */
static int
decode_with_extra(const char *sender, const void *extra, size_t extra_len, bool min_fields)
{
    struct buf envp;
    struct spool_msg m;
    int err;

    buf_init(&envp, BUF_UNLIMITED);
    if (min_fields) {
        t_env_min(&envp, sender);
    }
    buf_append(&envp, extra, extra_len);
    err = decode_env_payload(buf_data(&envp), STRV_LIT(""), &m);
    spool_msg_release(&m);
    buf_release(&envp);
    return err;
}

static void
test_bad_envelope_fields(void **state)
{
    static const struct {
        const char *extra;
        size_t len;
    } bad[] = {
        {"\x01\x14" ID1, 22},                 /* duplicate ID */
        {"\x03\x00", 2},                      /* duplicate sender */
        {"\x05\x01\x00", 3},                  /* RET 0 */
        {"\x05\x01\x03", 3},                  /* RET 3 */
        {"\x05\x02\x01\x01", 4},              /* RET of two bytes */
        {"\x08\x02\x01\x00", 4},              /* FLAGS not 4 bytes */
        {"\x04\x00", 2},                      /* RCPT without address */
        {"\x04\x04\x02\x02rf", 6},            /* ORCPT type without value */
        {"\x04\x06\x01\x01x\x04\x01\x00", 8}, /* NOTIFY 0 */
        {"\x04\x06\x01\x01x\x04\x01\x03", 8}, /* NEVER with SUCCESS */
        {"\x04\x06\x01\x01x\x04\x01\x10", 8}, /* unknown NOTIFY bit */
        {"\x04\x06\x01\x01x\x01\x01y", 8},    /* two addresses */
        {"\x04\x03\x01\x05x", 5},             /* nested length past the field */
        {"\x09\x05"
         "ab",
         4},                             /* field length past the payload */
        {"\x09", 1},                     /* tag without length */
        {"\x09\x80", 2},                 /* unterminated varint */
        {"\x09\x80\x00", 3},             /* non-minimal varint */
        {"\x09\xff\xff\xff\xff\x1f", 6}, /* varint beyond 32 bits */
    };
    static const struct {
        const char *payload;
        size_t len;
    } missing[] = {
        {"\x02\x08\0\0\0\0\0\0\0\0\x07\x01\x00\x03\x00", 15},        /* no ID */
        {"\x01\x14" ID1 "\x07\x01\x00\x03\x00", 27},                 /* no CTIME */
        {"\x01\x14" ID1 "\x02\x08\0\0\0\0\0\0\0\0\x03\x00", 34},     /* no BODY_TYPE */
        {"\x01\x14" ID1 "\x02\x08\0\0\0\0\0\0\0\0\x07\x01\x00", 35}, /* no SENDER */
        {"\x01\x13"
         "B9/87-25004-31B987F\x02\x08\0\0\0\0\0\0\0\0\x07\x01\x00\x03\x00",
         36}, /* ID not an id */
        {"\x01\x14"
         "B9/87-25004-31B987F3\x02\x08\0\0\0\0\0\0\0\0\x07\x01\x03\x03\x00",
         37}, /* BODY_TYPE 3 */
    };

    (void)state;
    assert_int_equal(decode_with_extra("", "", 0, true), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int err = decode_with_extra("", bad[i].extra, bad[i].len, true);

        if (err != CELER_ECORRUPT) {
            fail_msg("bad case %zu: %s", i, spool_err_str(err));
        }
    }
    for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
        int err = decode_with_extra("", missing[i].payload, missing[i].len, false);

        if (err != CELER_ECORRUPT) {
            fail_msg("missing case %zu: %s", i, spool_err_str(err));
        }
    }
}

static void
test_bad_structure(void **state)
{
    struct buf envp, middle;
    struct spool_msg m;

    (void)state;
    buf_init(&envp, BUF_UNLIMITED);
    buf_init(&middle, BUF_UNLIMITED);
    t_env_min(&envp, "");
    t_record(&middle, 'H', STRV_LIT("X: 1\r\n")); /* a second PREPEND */
    assert_int_equal(decode_env_payload(buf_data(&envp), buf_data(&middle), &m), CELER_ECORRUPT);
    spool_msg_release(&m);
    buf_reset(&middle);
    t_record(&middle, 'P', STRV_LIT("")); /* PROGRESS before END */
    assert_int_equal(decode_env_payload(buf_data(&envp), buf_data(&middle), &m), CELER_ECORRUPT);
    spool_msg_release(&m);
    buf_reset(&middle);
    t_record(&middle, 'E', buf_data(&envp)); /* a second ENVELOPE */
    assert_int_equal(decode_env_payload(buf_data(&envp), buf_data(&middle), &m), CELER_ECORRUPT);
    spool_msg_release(&m);
    buf_release(&envp);
    buf_release(&middle);
}

static void
test_rcpt_limit(void **state)
{
    struct buf envp;
    struct spool_msg m;
    struct spool_envelope env = min_env();
    struct buf out;

    (void)state;
    buf_init(&envp, BUF_UNLIMITED);
    t_env_min(&envp, "");
    for (int i = 0; i < SPOOL_RCPT_MAX; i++) {
        t_rcpt(&envp, "");
    }
    assert_int_equal(decode_env_payload(buf_data(&envp), STRV_LIT(""), &m), 0);
    assert_int_equal(m.env.rcpt_count, SPOOL_RCPT_MAX);
    spool_msg_release(&m);
    t_rcpt(&envp, "");
    assert_int_equal(decode_env_payload(buf_data(&envp), STRV_LIT(""), &m), CELER_ECORRUPT);
    spool_msg_release(&m);
    buf_release(&envp);
    /* The encoder refuses what the decoder would refuse. */
    env.rcpt_count = SPOOL_RCPT_MAX + 1;
    env.rcpts = calloc(env.rcpt_count, sizeof(*env.rcpts));
    buf_init(&out, BUF_UNLIMITED);
    assert_int_equal(spool_encode(&out, &env, STRV_LIT(""), STRV_LIT("")), CELER_ELIMIT);
    free(env.rcpts);
    buf_release(&out);
}

/* ---- Encoder limits and invalid input ---- */

static void
test_encoder_rejects(void **state)
{
    struct spool_envelope env = full_env();
    struct spool_rcpt r = {.addr = STRV_LIT("a@b")};
    struct spool_rcpt_update u = {.index = 0, .state = (enum spool_rcpt_state)7};
    struct spool_progress p = {.updates = &u, .update_count = 1};
    struct spool_enc enc;
    struct buf out, small;
    uint8_t hdr[SPOOL_BODY_HDR_LEN];

    (void)state;
    buf_init(&out, BUF_UNLIMITED);
    env.id = STRV_LIT("B9/87-25004-31B987F3/../../etc");
    assert_int_equal(spool_enc_begin(&enc, &out, &env), -EINVAL);
    env = full_env();
    env.rcpts = &r;
    env.rcpt_count = 1;
    r.notify = SPOOL_NOTIFY_NEVER | SPOOL_NOTIFY_DELAY;
    assert_int_equal(spool_enc_begin(&enc, &out, &env), -EINVAL);
    r.notify = 0x40;
    assert_int_equal(spool_enc_begin(&enc, &out, &env), -EINVAL);
    r.notify = 0;
    r.orcpt_type = STRV_LIT("rfc822");
    assert_int_equal(spool_enc_begin(&enc, &out, &env), -EINVAL);
    r.orcpt_type = STRV_NULL;
    env.body_type = (enum spool_body_type)3;
    assert_int_equal(spool_enc_begin(&enc, &out, &env), -EINVAL);
    env.body_type = SPOOL_BODY_7BIT;
    env.ret = (enum spool_ret)3;
    assert_int_equal(spool_enc_begin(&enc, &out, &env), -EINVAL);
    env.ret = SPOOL_RET_UNSET;
    assert_int_equal(buf_len(&out), 0); /* nothing appended on failure */
    assert_int_equal(spool_progress_encode(&out, &p), -EINVAL);
    u.state = SPOOL_RCPT_DELIVERED;
    u.index = SPOOL_RCPT_MAX;
    assert_int_equal(spool_progress_encode(&out, &p), -EINVAL);
    assert_int_equal(buf_len(&out), 0);
    /* The buffer's ceiling is respected, and nothing is appended. */
    buf_init(&small, 40);
    assert_int_equal(spool_enc_begin(&enc, &small, &env), CELER_ELIMIT);
    assert_int_equal(buf_len(&small), 0);
    buf_release(&small);
    buf_init(&small, 4096);
    assert_int_equal(spool_enc_begin(&enc, &small, &env), 0);
    small.max = buf_len(&small) + 10;
    assert_int_equal(spool_enc_finish(&enc, &small, STRV_LIT("X: y\r\n"), hdr), CELER_ELIMIT);
    assert_int_equal(buf_len(&small), enc.body_off);
    buf_release(&small);
    buf_release(&out);
}

/* ---- The read-callback decoder skips the body ---- */

static void
test_callback_skips_body(void **state)
{
    struct spool_envelope env = full_env();
    size_t body_len = 3 << 20;
    char *body = calloc(1, body_len);
    struct spool_rcpt_update u = {.index = 0, .state = SPOOL_RCPT_DELIVERED};
    struct spool_progress p = {.updates = &u, .update_count = 1};
    struct buf file;
    struct memfile f = {0};
    struct spool_source src = {.read = memfile_read, .arg = &f};
    struct spool_msg m;

    (void)state;
    memset(body, 'x', body_len);
    buf_init(&file, BUF_UNLIMITED);
    assert_int_equal(spool_encode(&file, &env, strv_make(body, body_len), STRV_LIT("X: 1\r\n")), 0);
    append_progress(&file, &p);
    f.data = buf_data(&file);
    src.size = buf_len(&file);
    assert_int_equal(spool_decode(&src, 0, &m), 0);
    assert_int_equal(m.body_len, body_len);
    assert_int_equal(m.rprog[0].state, SPOOL_RCPT_DELIVERED);
    assert_true(f.bytes <= 2 * 16384); /* the head and the tail, not the body */
    assert_true(f.reads <= 2);
    spool_msg_release(&m);
    /* With VERIFY_BODY the body is read and checked. */
    f.reads = 0;
    f.bytes = 0;
    assert_int_equal(spool_decode(&src, SPOOL_DECODE_VERIFY_BODY, &m), 0);
    assert_true(f.bytes >= body_len);
    spool_msg_release(&m);
    file.data[file.start + m.body_off + body_len / 2] = 'y';
    assert_int_equal(spool_decode(&src, 0, &m), 0); /* fast mode cannot see it */
    spool_msg_release(&m);
    assert_int_equal(spool_decode(&src, SPOOL_DECODE_VERIFY_BODY, &m), CELER_ECORRUPT);
    assert_string_equal(m.bad_what, "body CRC mismatch");
    spool_msg_release(&m);
    /* A read error is returned as is. */
    for (int i = 1; i <= 2; i++) {
        f.reads = 0;
        f.fail_at_read = i;
        assert_int_equal(spool_decode(&src, 0, &m), -EIO);
        assert_null(m.blobs);
        spool_msg_release(&m);
    }
    buf_release(&file);
    free(body);
}

/* One small file: a single read. */
static void
test_callback_small_file_one_read(void **state)
{
    struct buf file;
    struct memfile f = {0};
    struct spool_source src = {.read = memfile_read, .arg = &f};
    struct spool_msg m;

    (void)state;
    small_file(&file);
    f.data = buf_data(&file);
    src.size = buf_len(&file);
    assert_int_equal(spool_decode(&src, SPOOL_DECODE_VERIFY_BODY, &m), 0);
    assert_int_equal(f.reads, 1);
    spool_msg_release(&m);
    buf_release(&file);
    assert_string_equal(spool_err_str(SPOOL_EINCOMPLETE), "incomplete spool file");
    assert_string_equal(spool_err_str(CELER_ECORRUPT), "corrupt data");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_roundtrip_many_rcpts),
        cmocka_unit_test(test_layout_pinned),
        cmocka_unit_test(test_streaming_chunks),
        cmocka_unit_test(test_streaming_incomplete),
        cmocka_unit_test(test_every_prefix),
        cmocka_unit_test(test_every_byte_corruption),
        cmocka_unit_test(test_bad_headers),
        cmocka_unit_test(test_progress_fold),
        cmocka_unit_test(test_progress_torn_tail),
        cmocka_unit_test(test_progress_damage),
        cmocka_unit_test(test_unknown_tags_skipped),
        cmocka_unit_test(test_bad_envelope_fields),
        cmocka_unit_test(test_bad_structure),
        cmocka_unit_test(test_rcpt_limit),
        cmocka_unit_test(test_encoder_rejects),
        cmocka_unit_test(test_callback_skips_body),
        cmocka_unit_test(test_callback_small_file_one_read),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
