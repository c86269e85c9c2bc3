/*
 * qmsg: queued message metadata (see qmsg.h).
 */
#include "queue/qmsg.h"

#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/mem.h"

/* Appends s (a view) NUL-terminated to the string blob; returns its offset. */
static uint32_t
qmsg_put(struct buf *b, struct strv s)
{
    uint32_t off = (uint32_t)buf_len(b);

    buf_append(b, s.ptr ? s.ptr : "", s.len);
    buf_append(b, "", 1);
    return off;
}

struct qmsg *
qmsg_new(struct spool_id id, const struct spool_envelope *env,
         const struct spool_rcpt_progress *progress, uint64_t body_off, uint64_t body_len,
         uint32_t prepend_len)
{
    struct qmsg *m = xcalloc(1, sizeof(*m) + env->rcpt_count * sizeof(struct qrcpt));
    struct buf b;

    buf_init(&b, BUF_UNLIMITED);
    buf_append(&b, "", 1); /* offset 0: the empty string */
    m->id = id;
    atomic_init(&m->refs, 1);
    pthread_mutex_init(&m->lock, NULL);
    m->ctime_us = env->ctime_us;
    m->body_off = body_off;
    m->body_len = body_len;
    m->prepend_len = prepend_len;
    m->nrcpts = (uint32_t)env->rcpt_count;
    m->flags = (env->body_type == SPOOL_BODY_8BITMIME ? QMSG_8BIT : 0) |
               (env->body_type == SPOOL_BODY_BINARYMIME ? QMSG_BINARY | QMSG_8BIT : 0) |
               (env->smtputf8 ? QMSG_SMTPUTF8 : 0) | (env->priority ? QMSG_PRIORITY : 0) |
               (env->ret == SPOOL_RET_FULL ? QMSG_RET_FULL : 0) |
               (env->ret == SPOOL_RET_HDRS ? QMSG_RET_HDRS : 0) |
               (strv_eq_cstr(env->protocol, "internal") && env->sender.len == 0 ? QMSG_BOUNCE : 0);
    m->sender = qmsg_put(&b, env->sender);
    m->envid = env->envid.ptr ? qmsg_put(&b, env->envid) : 0;
    m->source_ip = env->source_ip.ptr ? qmsg_put(&b, env->source_ip) : 0;
    for (size_t i = 0; i < env->rcpt_count; i++) {
        const struct spool_rcpt *r = &env->rcpts[i];
        struct qrcpt *q = &m->rcpts[i];

        q->addr = qmsg_put(&b, r->addr);
        if (r->orcpt_type.ptr) {
            q->orcpt_type = qmsg_put(&b, r->orcpt_type);
            q->orcpt = qmsg_put(&b, r->orcpt_addr);
        }
        q->notify = (uint8_t)r->notify;
        q->state = progress ? (uint8_t)progress[i].state : SPOOL_RCPT_PENDING;
        m->pending += q->state == SPOOL_RCPT_PENDING;
    }
    /* a right-sized blob: it stays in memory for as long as the message is queued */
    {
        size_t len = buf_len(&b);

        m->strings = xrealloc(buf_steal_cstr(&b), len);
    }
    return m;
}

void
qmsg_ref(struct qmsg *m)
{
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
}

bool
qmsg_unref(struct qmsg *m)
{
    if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1) {
        return false;
    }
    pthread_mutex_destroy(&m->lock);
    free(m->strings);
    free(m);
    return true;
}

const char *
qmsg_rcpt_domain(const struct qmsg *m, uint32_t i)
{
    const char *a = qmsg_rcpt_addr(m, i);
    const char *at = strrchr(a, '@');

    return at ? at + 1 : "";
}

uint64_t
qmsg_size(const struct qmsg *m)
{
    return m->body_len + m->prepend_len;
}

uint64_t
qmsg_prepend_off(const struct qmsg *m)
{
    return m->body_off + m->body_len + SPOOL_BODY_TRAILER_LEN + SPOOL_REC_HDR_LEN;
}

uint64_t
qmsg_file_len(const struct qmsg *m)
{
    return qmsg_prepend_off(m) + m->prepend_len + SPOOL_REC_CRC_LEN + SPOOL_END_LEN;
}

size_t
qmsg_footprint(const struct qmsg *m)
{
    return sizeof(*m) + m->nrcpts * sizeof(struct qrcpt);
}

void
qmsg_lock(struct qmsg *m)
{
    pthread_mutex_lock(&m->lock);
}

void
qmsg_unlock(struct qmsg *m)
{
    pthread_mutex_unlock(&m->lock);
}

uint32_t
qmsg_settle(struct qmsg *m, uint32_t i, enum spool_rcpt_state state)
{
    if (m->rcpts[i].state == SPOOL_RCPT_PENDING && state != SPOOL_RCPT_PENDING) {
        m->rcpts[i].state = (uint8_t)state;
        m->pending--;
    }
    return m->pending;
}
