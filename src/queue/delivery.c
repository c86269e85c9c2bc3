/*
 * delivery: outbound connections of a queue and the outcomes of what they
 * send (see queue.h).
 *
 * delivery_fill() gives waiting mail to idle connections and opens new ones
 * while the queue has mail waiting and every limit allows: the queue's
 * max_outbound_connections, the MX host's (Host scope, no inheritance),
 * scope_max_outbound_connections and server_max_outbound_connections. The
 * number opened per pass follows connection_allocation_aggressiveness.
 * Addresses that failed are skipped for host_failure_retry seconds; when
 * every address of a domain keeps failing (mx_failures_to_delay in a row,
 * or for connect_timeout_to_delay seconds), the whole active queue moves to
 * the delayed queue.
 *
 * Outcomes: a recipient is delivered (mainlog D), failed for good (P, and a
 * bounce), or failed transiently (T): its message goes back to the delayed
 * queue after retry_interval x 2^(n-1) seconds (at most
 * max_retry_interval), unless never_retry, max_retries or
 * message_expiration make it permanent. The spool records the outcome
 * (PROGRESS) before the entry is delayed or dropped; a message with no
 * recipient left is removed from the spool.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "queue/outconv.h"
#include "queue/queue_int.h"

static const struct smtp_client_ops oconn_ops;
static void delivery_open_plain(struct dqueue *dq, const struct route_target *t);

/* ---- limits ---- */

static int
delivery_count_get(struct map *m, const void *key, size_t keylen)
{
    return (int)(intptr_t)map_get(m, strv_make(key, keylen));
}

static void
delivery_count_add(struct map *m, const void *key, size_t keylen, int delta)
{
    intptr_t v = (intptr_t)map_get(m, strv_make(key, keylen)) + delta;

    if (v <= 0) {
        map_del(m, strv_make(key, keylen));
    } else {
        map_put(m, strv_make(key, keylen), (void *)v);
    }
}

/* Host-scope cap of an MX host: -1 when unlimited (Host does not inherit). */
static int64_t
delivery_host_cap(const struct dqueue *dq, const char *host)
{
    const struct conf_setting *st;

    if (host[0] == '\0') {
        return -1;
    }
    st = conf_host_get(dq->ql->conf, dq->binding, host, "max_outbound_connections");
    return st ? st->val.i : -1;
}

/* Takes the connection slots a new connection to t needs; false if a limit forbids it. */
static bool
delivery_reserve(struct dqueue *dq, const struct route_target *t, struct oconn *oc)
{
    struct queue *q = dq->ql->q;
    int64_t server_max = conf_global(dq->ql->conf, "server_max_outbound_connections")->val.i;
    int64_t host_cap = delivery_host_cap(dq, t->host);
    bool ok = true;

    if (dq->cfg.max_conns >= 0 && dq->nconns >= (uint64_t)dq->cfg.max_conns) {
        return false;
    }
    if (server_max > 0 && atomic_fetch_add(&q->server_conns, 1) >= server_max) {
        atomic_fetch_sub(&q->server_conns, 1);
        return false;
    }
    if (server_max <= 0) {
        atomic_fetch_add(&q->server_conns, 1);
    }
    pthread_mutex_lock(&q->lock);
    if (host_cap >= 0 && delivery_count_get(&q->host_conns, t->host, strlen(t->host)) >= host_cap) {
        ok = false;
    }
    if (ok && dq->cfg.scope_max && dq->cfg.scope_max->val.i >= 0 &&
        delivery_count_get(&q->scope_conns, &dq->cfg.scope_max, sizeof(void *)) >=
            dq->cfg.scope_max->val.i) {
        ok = false;
    }
    if (ok) {
        if (host_cap >= 0) {
            delivery_count_add(&q->host_conns, t->host, strlen(t->host), 1);
            oc->counted_host = true;
        }
        if (dq->cfg.scope_max) {
            oc->scope_key = dq->cfg.scope_max;
            delivery_count_add(&q->scope_conns, &oc->scope_key, sizeof(void *), 1);
        }
    }
    pthread_mutex_unlock(&q->lock);
    if (ok) {
        dq->nconns++;
        dq->ql->nconns++;
    } else {
        atomic_fetch_sub(&q->server_conns, 1);
    }
    return ok;
}

static void
delivery_release(struct oconn *oc)
{
    struct dqueue *dq = oc->dq;
    struct queue *q = dq->ql->q;

    pthread_mutex_lock(&q->lock);
    if (oc->counted_host) {
        delivery_count_add(&q->host_conns, oc->target.host, strlen(oc->target.host), -1);
    }
    if (oc->scope_key) {
        delivery_count_add(&q->scope_conns, &oc->scope_key, sizeof(void *), -1);
    }
    pthread_mutex_unlock(&q->lock);
    atomic_fetch_sub(&q->server_conns, 1);
    dq->nconns--;
    dq->ql->nconns--;
}

/* ---- outcomes ---- */

static int64_t
delivery_backoff(const struct qcfg *cfg, uint32_t attempts)
{
    int64_t delay = cfg->retry_interval > 0 ? cfg->retry_interval : 1;

    for (uint32_t i = 1; i < attempts && delay < cfg->max_retry_interval; i++) {
        delay *= 2;
    }
    if (cfg->max_retry_interval > 0 && delay > cfg->max_retry_interval) {
        delay = cfg->max_retry_interval;
    }
    return delay;
}

/* Why a transient failure must now be permanent, or NULL. */
static const char *
delivery_give_up(const struct dqueue *dq, const struct qentry *e, int64_t now)
{
    const struct qcfg *cfg = &dq->cfg;

    if (cfg->never_retry) {
        return "[internal] exceeded max retries without delivery";
    }
    if (cfg->retries == QCFG_RETRIES_COUNT && e->attempts > cfg->max_retries) {
        return "[internal] exceeded max retries without delivery";
    }
    if (cfg->expiration > 0 && now - e->m->ctime_us / 1000000 >= cfg->expiration) {
        return "[internal] exceeded max time without delivery";
    }
    return NULL;
}

struct delivery_outcome {
    bool quiet;          /* no bounce (Blackhole = internal) */
    uint32_t *delivered; /* recipient indexes */
    uint32_t ndelivered;
    uint32_t *failed;
    char **failed_why; /* owned strings */
    uint32_t nfailed;
    uint32_t *transient;
    uint32_t ntransient;
    char response[700]; /* the last transient response, for the spool */
};

static void
delivery_outcome_init(struct delivery_outcome *o, uint32_t n)
{
    memset(o, 0, sizeof(*o));
    o->delivered = xcalloc(n ? n : 1, sizeof(uint32_t));
    o->failed = xcalloc(n ? n : 1, sizeof(uint32_t));
    o->failed_why = xcalloc(n ? n : 1, sizeof(char *));
    o->transient = xcalloc(n ? n : 1, sizeof(uint32_t));
}

static void
delivery_outcome_release(struct delivery_outcome *o)
{
    for (uint32_t i = 0; i < o->nfailed; i++) {
        free(o->failed_why[i]);
    }
    free(o->delivered);
    free(o->failed);
    free(o->failed_why);
    free(o->transient);
}

static void
delivery_add_failed(struct delivery_outcome *o, uint32_t ri, int code, const char *enh,
                    const char *text)
{
    o->failed[o->nfailed] = ri;
    o->failed_why[o->nfailed] = xasprintf("%d %s%s%s", code, enh, enh[0] ? " " : "", text);
    o->nfailed++;
}

struct delivery_record {
    struct qentry *e;
    bool keep; /* the entry goes back to the delayed queue */
    struct spool_rcpt_update *updates;
};

/*
 * Removes m's file once every recipient is final, or, while a progress
 * append for it is in flight, leaves that to the append's completion.
 */
static void
delivery_remove(struct spool *spool, struct qmsg *m)
{
    bool now;

    qmsg_lock(m);
    now = m->appending == 0;
    m->remove_when_appended = !now;
    qmsg_unlock(m);
    if (now) {
        spool_remove(spool, m->id, qmsg_file_len(m));
    }
}

static void
delivery_recorded(int err, void *arg)
{
    struct delivery_record *rec = arg;
    struct qentry *e = rec->e;
    struct dqueue *dq = e->dq;
    struct qmsg *m = e->m;
    bool remove;

    if (err != 0) {
        log_error("spool_progress_failed id=%s error=\"%s\"", "-", err_str(err));
    }
    qmsg_lock(m);
    remove = --m->appending == 0 && m->remove_when_appended;
    qmsg_unlock(m);
    if (remove) {
        spool_remove(dq->ql->q->o.spool, m->id, qmsg_file_len(m));
    }
    e->busy = false;
    if (rec->keep && !dq->ql->stopping) {
        dqueue_delay(dq, e);
    } else {
        qentry_free(e);
    }
    free(rec->updates);
    free(rec);
}

/* Settles the entry's recipients per o, records that durably, then delays or drops the entry. */
static void
delivery_conclude(struct dqueue *dq, struct qentry *e, struct delivery_outcome *o)
{
    struct qloop *ql = dq->ql;
    struct qmsg *m = e->m;
    struct spool *spool = ql->q->o.spool;
    struct spool_progress p = {0};
    struct delivery_record *rec;
    uint32_t pending;

    qmsg_lock(m);
    for (uint32_t i = 0; i < o->ndelivered; i++) {
        qmsg_settle(m, o->delivered[i], SPOOL_RCPT_DELIVERED);
    }
    for (uint32_t i = 0; i < o->nfailed; i++) {
        qmsg_settle(m, o->failed[i], SPOOL_RCPT_FAILED);
    }
    pending = m->pending;
    qmsg_unlock(m);
    atomic_fetch_add(&ql->q->delivered, o->ndelivered);
    atomic_fetch_add(&ql->q->failed, o->nfailed);
    dq->delivered += o->ndelivered;
    dq->failed += o->nfailed;
    if (o->nfailed && !o->quiet && dq->cfg.generate_bounces && !(m->flags & QMSG_BOUNCE) &&
        qmsg_str(m, m->sender)[0]) {
        bounce_generate(ql, m, o->failed, (const char *const *)o->failed_why, o->nfailed,
                        dq->cfg.mailerdaemon);
    }
    if (pending == 0) {
        /* every recipient of the message is final: removing the file is the record */
        delivery_remove(spool, m);
        atomic_fetch_sub(&ql->q->messages, 1);
        qentry_free(e);
        return;
    }
    rec = XNEW(struct delivery_record);
    rec->e = e;
    rec->keep = o->ntransient > 0;
    rec->updates = xcalloc(o->ndelivered + o->nfailed + 1, sizeof(*rec->updates));
    for (uint32_t i = 0; i < o->ndelivered; i++) {
        rec->updates[p.update_count++] =
            (struct spool_rcpt_update){o->delivered[i], SPOOL_RCPT_DELIVERED};
    }
    for (uint32_t i = 0; i < o->nfailed; i++) {
        rec->updates[p.update_count++] =
            (struct spool_rcpt_update){o->failed[i], SPOOL_RCPT_FAILED};
    }
    p.updates = rec->updates;
    if (o->ntransient) {
        e->nr = o->ntransient;
        memcpy(e->r, o->transient, o->ntransient * sizeof(uint32_t));
        p.has_attempts = true;
        p.attempts = e->attempts;
        p.has_next_attempt = true;
        p.next_attempt_s = e->next_attempt_s;
        p.response = strv_from_cstr(o->response);
    }
    e->busy = true;
    qmsg_lock(m);
    m->appending++;
    qmsg_unlock(m);
    spool_progress_append(spool, m->id, &p, ql->loop, delivery_recorded, rec);
}

/*
 * Counts the attempt and schedules the next one for the transient recipients
 * of o. Callers have already turned transients into permanent failures when
 * the retry policy gives up (delivery_give_up), so none is logged twice.
 */
static void
delivery_schedule_retry(struct dqueue *dq, struct qentry *e, struct delivery_outcome *o)
{
    if (o->ntransient == 0) {
        return;
    }
    e->attempts++;
    atomic_fetch_add(&dq->ql->q->transient, o->ntransient);
    dq->transient += o->ntransient;
    e->next_attempt_s = clock_wall_s() + delivery_backoff(&dq->cfg, e->attempts);
}

void
delivery_fail_entry(struct dqueue *dq, struct qentry *e, int code, const char *enh,
                    const char *text, enum smtp_stage stage, bool quiet)
{
    struct delivery_outcome o;

    delivery_outcome_init(&o, e->nr);
    o.quiet = quiet;
    for (uint32_t i = 0; i < e->nr; i++) {
        queue_log_delivery(dq, e, e->r[i], 'P', "", "", stage, code, enh, text);
        delivery_add_failed(&o, e->r[i], code, enh, text);
    }
    delivery_conclude(dq, e, &o);
    delivery_outcome_release(&o);
}

void
delivery_transient_entry(struct dqueue *dq, struct qentry *e, int code, const char *enh,
                         const char *text, enum smtp_stage stage)
{
    struct delivery_outcome o;
    const char *give_up;

    e->attempts++;
    give_up = delivery_give_up(dq, e, clock_wall_s());
    e->attempts--;
    if (give_up) {
        delivery_fail_entry(dq, e, 554, "5.4.7", give_up, stage, false);
        return;
    }
    delivery_outcome_init(&o, e->nr);
    for (uint32_t i = 0; i < e->nr; i++) {
        queue_log_delivery(dq, e, e->r[i], 'T', "", "", stage, code, enh, text);
        o.transient[o.ntransient++] = e->r[i];
    }
    snprintf(o.response, sizeof(o.response), "%d %s %s", code, enh, text);
    delivery_schedule_retry(dq, e, &o);
    delivery_conclude(dq, e, &o);
    delivery_outcome_release(&o);
}

/* Sorts the replies of one sent message into outcomes. */
static void
delivery_on_result(struct oconn *oc, struct qentry *e, const struct smtp_client_result *r)
{
    struct dqueue *dq = oc->dq;
    struct delivery_outcome o;
    const char *give_up = NULL;
    bool any_transient = false;

    for (uint32_t k = 0; k < e->nr; k++) {
        const struct smtp_client_reply *rep = k < r->nrcpts ? &r->rcpt[k] : &r->msg;

        any_transient |= rep->code / 100 != 2 && rep->code / 100 != 5;
    }
    if (any_transient) {
        e->attempts++; /* this attempt counts; does it use up the message's time or tries? */
        give_up = delivery_give_up(dq, e, clock_wall_s());
        e->attempts--;
    }
    delivery_outcome_init(&o, e->nr);
    for (uint32_t k = 0; k < e->nr; k++) {
        const struct smtp_client_reply *rep = k < r->nrcpts ? &r->rcpt[k] : &r->msg;
        int cls = rep->code / 100;
        uint32_t ri = e->r[k];
        /* no reply at all (the connection went): a transient failure of our making */
        int code = rep->code ? rep->code : 451;
        const char *enh = rep->code ? rep->enh : "4.4.2";
        char text[600];

        snprintf(text, sizeof(text), "%s%s", rep->code ? "" : "[internal] ",
                 rep->text[0] ? rep->text : "connection lost");
        if (cls == 2) {
            queue_log_delivery(dq, e, ri, 'D', oc->target.ip, oc->connid, rep->stage, code, enh,
                               text);
            o.delivered[o.ndelivered++] = ri;
        } else if (cls == 5) {
            queue_log_delivery(dq, e, ri, 'P', oc->target.ip, oc->connid, rep->stage, code, enh,
                               text);
            delivery_add_failed(&o, ri, code, enh, text);
        } else if (give_up) {
            queue_log_delivery(dq, e, ri, 'P', oc->target.ip, oc->connid, rep->stage, 554, "5.4.7",
                               give_up);
            delivery_add_failed(&o, ri, 554, "5.4.7", give_up);
        } else {
            queue_log_delivery(dq, e, ri, 'T', oc->target.ip, oc->connid, rep->stage, code, enh,
                               text);
            o.transient[o.ntransient++] = ri;
            snprintf(o.response, sizeof(o.response), "%d %s %s", code, enh, text);
        }
    }
    delivery_schedule_retry(dq, e, &o);
    delivery_conclude(dq, e, &o);
    delivery_outcome_release(&o);
}

void
delivery_entry_done(struct qentry *e)
{
    qentry_free(e);
}

/* ---- connections ---- */

/* Closes the spool file of the message in flight and drops its converted copy. */
static void
oconn_drop_body(struct oconn *oc)
{
    if (oc->fd >= 0) {
        (void)close(oc->fd); /* read-only spool file */
        oc->fd = -1;
    }
    buf_release(&oc->conv);
}

static void
oconn_free(struct oconn *oc)
{
    list_remove(&oc->node);
    delivery_release(oc);
    oconn_drop_body(oc);
    free(oc->rcpts);
    free(oc->target.host);
    free(oc->verify_names[0]);
    free(oc->verify_names[1]);
    free(oc);
}

void
oconn_abort(struct oconn *oc)
{
    if (oc->cl) {
        smtp_client_abort(oc->cl);
        oc->cl = NULL;
    }
    if (oc->cur) {
        qentry_free(oc->cur); /* never sent to the end: it stays pending in the spool */
        oc->cur = NULL;
    }
    oconn_free(oc);
}

/* Max_Deliveries_Per_Connection or Max_Recipients_Per_Connection reached. */
static bool
oconn_used_up(const struct oconn *oc)
{
    const struct qcfg *cfg = &oc->dq->cfg;

    return (cfg->max_deliveries && oc->deliveries >= cfg->max_deliveries) ||
           (cfg->max_rcpts_conn && oc->rcpts_sent >= cfg->max_rcpts_conn);
}

/* The next waiting entry whose spool file opens, with that file in *fd; NULL when none. */
static struct qentry *
oconn_take(struct dqueue *dq, int *fd)
{
    struct qentry *e;

    while ((e = dqueue_take(dq))) {
        *fd = spool_open_message(dq->ql->q->o.spool, e->m->id);
        if (*fd >= 0) {
            return e;
        }
        log_error("spool_read_failed error=\"%s\": message left in the delayed queue",
                  err_str(*fd));
        delivery_transient_entry(dq, e, 451, "4.3.0", "[internal] cannot read the spooled message",
                                 SMTP_STAGE_NOT_CONNECTED);
    }
    return NULL;
}

static void
oconn_fill_msg(struct oconn *oc, struct qentry *e, int fd)
{
    const struct qmsg *m = e->m;

    free(oc->rcpts);
    oc->rcpts = xcalloc(e->nr, sizeof(*oc->rcpts));
    for (uint32_t k = 0; k < e->nr; k++) {
        const struct qrcpt *r = &m->rcpts[e->r[k]];

        oc->rcpts[k].addr = qmsg_str(m, r->addr);
        oc->rcpts[k].notify = r->notify;
        oc->rcpts[k].orcpt_type = r->orcpt_type ? qmsg_str(m, r->orcpt_type) : NULL;
        oc->rcpts[k].orcpt = r->orcpt_type ? qmsg_str(m, r->orcpt) : NULL;
    }
    oc->msg = (struct smtp_client_msg){
        .sender = qmsg_str(m, m->sender),
        .rcpts = oc->rcpts,
        .nrcpts = e->nr,
        .size = qmsg_size(m),
        .eightbit = (m->flags & QMSG_8BIT) != 0,
        .binarymime = (m->flags & QMSG_BINARY) != 0,
        .smtputf8 = (m->flags & QMSG_SMTPUTF8) != 0,
        .ret = (m->flags & QMSG_RET_FULL)   ? SMTP_RET_FULL
               : (m->flags & QMSG_RET_HDRS) ? SMTP_RET_HDRS
                                            : SMTP_RET_NONE,
        .envid = m->envid ? qmsg_str(m, m->envid) : NULL,
        .fd = fd,
        .prepend_off = qmsg_prepend_off(m),
        .prepend_len = m->prepend_len,
        .body_off = m->body_off,
        .body_len = m->body_len,
    };
}

/*
 * transform_8bitmime_content for a server without 8BITMIME (outconv.h):
 * true when oc->msg is ready to send (perhaps from oc->conv), false when
 * the entry has been concluded here instead.
 */
static bool
oconn_downconvert(struct oconn *oc, struct qentry *e)
{
    struct dqueue *dq = oc->dq;
    struct outconv_report rep;
    char text[128], id[SPOOL_ID_SIZE];

    if (!oc->msg.eightbit || oc->msg.binarymime ||
        (smtp_client_caps(oc->cl)->ext & SMTP_EXT_8BITMIME)) {
        return true; /* binary content is never converted: BDAT or nothing (smtp_client.h) */
    }
    outconv_prepare(dq->cfg.transform_8bit,
                    &(struct outconv_source){
                        .fd = oc->msg.fd,
                        .prepend_off = oc->msg.prepend_off,
                        .prepend_len = oc->msg.prepend_len,
                        .body_off = oc->msg.body_off,
                        .body_len = oc->msg.body_len,
                    },
                    &oc->conv, &rep);
    spool_id_format(e->m->id, id);
    switch (rep.action) {
    case OUTCONV_AS_IS:
        if (rep.why) {
            log_info("downconversion_skipped id=%s reason=\"%s\": sent as 8-bit", id, rep.why);
        }
        return true;
    case OUTCONV_CONVERTED:
        oc->msg.mem = buf_data(&oc->conv).ptr;
        oc->msg.mem_len = buf_len(&oc->conv);
        oc->msg.size = buf_len(&oc->conv);
        oc->msg.eightbit = false;
        log_info("message_downconverted id=%s parts=%u malformed=%d", id, rep.converted,
                 rep.malformed);
        return true;
    case OUTCONV_FAIL:
        snprintf(text, sizeof(text), "8-bit content cannot be made 7-bit (%s)", rep.why);
        delivery_fail_entry(dq, e, 554, "5.6.3", text, SMTP_STAGE_MAILFROM, false);
        return false;
    case OUTCONV_READ_FAIL:
    default:
        log_error("spool_read_failed error=\"%s\": message left in the delayed queue",
                  err_str(rep.read_err));
        delivery_transient_entry(dq, e, 451, "4.3.0", "[internal] cannot read the spooled message",
                                 SMTP_STAGE_NOT_CONNECTED);
        return false;
    }
}

/* Sends the next waiting entry over an idle connection; false when there is none. */
static bool
oconn_send_next(struct oconn *oc)
{
    struct dqueue *dq = oc->dq;
    struct qentry *e;
    int fd = -1;

    if (oconn_used_up(oc)) {
        return false;
    }
    while ((e = oconn_take(dq, &fd))) {
        oconn_fill_msg(oc, e, fd);
        if (oconn_downconvert(oc, e)) {
            break;
        }
        (void)close(fd); /* concluded without sending */
    }
    if (e == NULL) {
        return false;
    }
    oc->fd = fd;
    oc->cur = e;
    e->busy = true;
    if (smtp_client_send(oc->cl, &oc->msg, e) != 0) {
        oc->cur = NULL;
        oconn_drop_body(oc); /* not sent */
        e->busy = false;
        dqueue_add(dq, e);
        return false;
    }
    oc->deliveries++;
    oc->rcpts_sent += e->nr;
    return true;
}

static void
oconn_on_ready(struct smtp_client *cl, void *arg)
{
    struct oconn *oc = arg;
    struct dqueue *dq = oc->dq;

    oc->ready = true;
    dq->consecutive_failures = 0;
    dq->failing_since_ms = 0;
    if (!oconn_send_next(oc) && dq->nactive == 0) {
        smtp_client_quit(cl); /* nothing left to send: do not hold the slot */
    }
}

static bool delivery_reserve(struct dqueue *dq, const struct route_target *t, struct oconn *oc);

/* Whether dq's route includes the address oc is connected to. */
static bool
delivery_serves(const struct dqueue *dq, const struct oconn *oc)
{
    const struct domrec *dr = dq->dr;

    if (dr->state != DOMREC_READY) {
        return false;
    }
    for (size_t i = 0; i < dr->ntargets; i++) {
        if (dr->targets[i].port == oc->target.port &&
            strcmp(dr->targets[i].ip, oc->target.ip) == 0) {
            return true;
        }
    }
    return false;
}

/*
 * Whether a session opened for queue a may carry queue b's mail: the same
 * EHLO name, source address, protocol and TLS requirements (a session that
 * verified a certificate for a's names has not verified it for b's).
 */
static bool
delivery_same_session(const struct dqueue *a, const struct dqueue *b, const struct oconn *oc)
{
    const struct smtp_client_cfg *x = &a->cfg.client, *y = &b->cfg.client;

    if (x->lmtp != y->lmtp || strcmp(x->ehlo_name, y->ehlo_name) != 0 ||
        a->cfg.bind_len != b->cfg.bind_len ||
        memcmp(&a->cfg.bind, &b->cfg.bind, a->cfg.bind_len) != 0) {
        return false;
    }
    if (y->tls == SMTP_CLIENT_TLS_NO && x->tls == SMTP_CLIENT_TLS_NO) {
        return true;
    }
    /* any TLS involvement: only between identical policies, and never with name checks */
    return x->tls == y->tls && x->verify == y->verify && a->cfg.tls_ctx == b->cfg.tls_ctx &&
           y->verify != SMTP_CLIENT_VERIFY_HOST && !oc->no_tls;
}

/*
 * migrate_connections_between_sibling_domains: an idle connection whose
 * queue is empty moves to another queue of the same binding that has mail
 * waiting for the same server. At most a few dozen queues are looked at.
 */
static bool
delivery_migrate(struct oconn *oc)
{
    struct dqueue *from = oc->dq;
    struct qloop *ql = from->ql;
    size_t it = 0, looked = 0;
    void *v;

    if (!conf_global(ql->conf, "migrate_connections_between_sibling_domains")->val.b) {
        return false;
    }
    while (looked < 64 && map_next(&ql->dqueues, &it, NULL, &v)) {
        struct dqueue *to = v;
        struct oconn probe = {0};

        if (to == from || to->nactive == 0 || to->cfg.suspended ||
            strcmp(to->binding, from->binding) != 0 || !delivery_same_session(from, to, oc)) {
            continue;
        }
        looked++;
        if (!delivery_serves(to, oc) || !delivery_reserve(to, &oc->target, &probe)) {
            continue;
        }
        delivery_release(oc);
        list_remove(&oc->node);
        oc->dq = to;
        oc->counted_host = probe.counted_host;
        oc->scope_key = probe.scope_key;
        oc->deliveries = 0;
        oc->rcpts_sent = 0;
        list_push_back(&to->conns, &oc->node);
        log_debug("connection_migrated from=%s to=%s ip=%s", from->domain, to->domain,
                  oc->target.ip);
        return oconn_send_next(oc);
    }
    return false;
}

static void
oconn_on_result(struct smtp_client *cl, void *arg, void *msg_arg,
                const struct smtp_client_result *r)
{
    struct oconn *oc = arg;
    struct qentry *e = msg_arg;

    oconn_drop_body(oc);
    oc->cur = NULL;
    delivery_on_result(oc, e, r);
    if (!smtp_client_idle(cl)) {
        return; /* closed() follows */
    }
    if (!oconn_send_next(oc)) {
        if (oconn_used_up(oc)) {
            /* used up: it can carry nothing more, so it must not hold a slot while
             * idle (mail arriving meanwhile would wait for idle_timeout); the
             * maintainer opens a fresh one, now or when this one has closed */
            smtp_client_quit(cl);
            if (oc->dq->nactive) {
                dqueue_kick(oc->dq);
            }
        } else if (oc->dq->nactive == 0) {
            (void)delivery_migrate(oc); /* else idle until idle_timeout, unless mail comes */
        }
    }
}

/* Every address of the domain keeps failing: move the active mail to the delayed queue. */
static void
delivery_check_auto_delay(struct dqueue *dq, const char *text)
{
    uint64_t now = clock_mono_ms();
    bool by_count =
        dq->cfg.mx_failures_to_delay && dq->consecutive_failures >= dq->cfg.mx_failures_to_delay;
    bool by_time = dq->cfg.connect_timeout_to_delay > 0 && dq->failing_since_ms &&
                   now - dq->failing_since_ms >= (uint64_t)dq->cfg.connect_timeout_to_delay * 1000;

    if ((by_count || by_time) && dq->nactive) {
        char why[400];

        snprintf(why, sizeof(why), "[internal] no mail exchanger could be reached: %s", text);
        log_notice("domain_auto_delayed domain=%s binding=%s failures=%u", dq->domain, dq->binding,
                   dq->consecutive_failures);
        dqueue_sweep_transient(dq, 451, "4.4.1", why, SMTP_STAGE_NOT_CONNECTED);
        dq->consecutive_failures = 0;
        dq->failing_since_ms = 0;
    }
}

static void
oconn_on_closed(struct smtp_client *cl, void *arg, enum smtp_stage stage,
                const struct smtp_client_reply *why)
{
    struct oconn *oc = arg;
    struct dqueue *dq = oc->dq;
    bool tls_retry = false;

    oc->cl = NULL;
    if (oc->cur) {
        /* closed without a result: the message was not finished, try again */
        struct qentry *e = oc->cur;

        oc->cur = NULL;
        e->busy = false;
        dqueue_add(dq, e);
    }
    if (!oc->ready) {
        /* the session never became usable: this address is failing */
        log_info("connect_failed domain=%s ip=%s stage=%d reason=\"%d %s\"", dq->domain,
                 oc->target.ip, (int)stage, why->code, why->text);
        if (stage == SMTP_STAGE_TLS_HANDSHAKE &&
            dq->cfg.client.tls == SMTP_CLIENT_TLS_IFAVAILABLE && dq->cfg.tls_fallback &&
            !oc->no_tls) {
            tls_retry = true;
        } else if (why->code / 100 != 5) {
            route_mark_failing(dq->ql, &oc->target,
                               clock_mono_ms() + (uint64_t)dq->cfg.host_failure_retry * 1000);
            dq->consecutive_failures++;
            if (dq->failing_since_ms == 0) {
                dq->failing_since_ms = clock_mono_ms();
            }
        }
        if (why->code / 100 == 5 && dq->nactive) {
            /* the server refused us outright (5xx greeting or EHLO): the mail fails */
            char text[600];

            snprintf(text, sizeof(text), "%s", why->text);
            dqueue_fail_all(dq, why->code, why->enh, text, false);
        } else if (!tls_retry) {
            delivery_check_auto_delay(dq, why->text[0] ? why->text : "connection failed");
        }
    }
    if (tls_retry) {
        struct route_target t = oc->target;

        t.host = xstrdup(oc->target.host);
        oconn_free(oc);
        delivery_open_plain(dq, &t);
        free(t.host);
        return;
    }
    oconn_free(oc);
    if (dq->nactive) {
        dqueue_kick(dq);
    }
}

static const struct smtp_client_ops oconn_ops = {
    .ready = oconn_on_ready,
    .result = oconn_on_result,
    .closed = oconn_on_closed,
};

/* Opens a connection to t; false when the socket could not even be made. */
static bool
delivery_open(struct dqueue *dq, const struct route_target *t, bool no_tls)
{
    struct oconn *oc = XNEW(struct oconn);
    struct smtp_client_cfg ccfg = dq->cfg.client;
    int err = 0;

    if (!delivery_reserve(dq, t, oc)) {
        free(oc);
        return false;
    }
    oc->dq = dq;
    oc->fd = -1;
    oc->target = *t;
    oc->target.host = xstrdup(t->host);
    oc->no_tls = no_tls;
    oc->opened_ms = clock_mono_ms();
    spool_id_format(spool_idgen_next(&dq->ql->q->connids), oc->connid);
    list_push_back(&dq->conns, &oc->node);
    if (no_tls) {
        ccfg.tls = SMTP_CLIENT_TLS_NO;
    }
    /* the session reads the names during its handshake: they live as long as the connection */
    oc->verify_names[0] = xstrdup(t->host[0] ? t->host : dq->domain);
    oc->verify_names[1] = xstrdup(dq->domain);
    ccfg.verify_names = (const char *const *)oc->verify_names;
    ccfg.nverify_names = t->host[0] ? 2 : 1;
    oc->cl = smtp_client_connect(dq->ql->loop, (const struct sockaddr *)&t->sa, t->salen,
                                 dq->cfg.bind_len ? (const struct sockaddr *)&dq->cfg.bind : NULL,
                                 dq->cfg.bind_len, &ccfg, &oconn_ops, oc, &err);
    if (oc->cl == NULL) {
        log_error("connect_failed domain=%s ip=%s error=\"%s\"", dq->domain, t->ip, err_str(err));
        route_mark_failing(dq->ql, t,
                           clock_mono_ms() + (uint64_t)dq->cfg.host_failure_retry * 1000);
        oconn_free(oc);
        return false;
    }
    return true;
}

static void
delivery_open_plain(struct dqueue *dq, const struct route_target *t)
{
    if (!delivery_open(dq, t, true)) {
        dqueue_kick(dq);
    }
}

/* The next address to connect to: lowest preference first, equal ones in turn. */
static const struct route_target *
delivery_pick(struct dqueue *dq, uint64_t *retry_at)
{
    struct domrec *dr = dq->dr;
    uint64_t now = clock_mono_ms();
    size_t i = 0;

    *retry_at = 0;
    while (i < dr->ntargets) {
        size_t j = i;

        while (j < dr->ntargets && dr->targets[j].pref == dr->targets[i].pref) {
            j++;
        }
        for (size_t k = 0; k < j - i; k++) {
            const struct route_target *t = &dr->targets[i + (dr->rr + k) % (j - i)];
            uint64_t until;

            if (route_ip_failing(dq->ql, t, now, &until)) {
                if (*retry_at == 0 || until < *retry_at) {
                    *retry_at = until;
                }
                continue;
            }
            dr->rr++;
            return t;
        }
        i = j;
    }
    return NULL;
}

void
delivery_fill(struct dqueue *dq)
{
    struct domrec *dr = dq->dr;
    struct list_node *n;
    size_t connecting = 0, want;
    uint64_t retry_at = 0;

    if (!domrec_ready(dr, dq)) {
        if (dr->state == DOMREC_TEMPFAIL) {
            dqueue_sweep_transient(dq, dr->why_code, dr->why_enh, dr->why,
                                   SMTP_STAGE_NOT_CONNECTED);
        } else if (dr->state == DOMREC_PERMFAIL) {
            dqueue_fail_all(dq, dr->why_code, dr->why_enh, dr->why, false);
        }
        return;
    }
    LIST_FOREACH(n, &dq->conns)
    {
        struct oconn *oc = container_of(n, struct oconn, node);

        if (!oc->ready) {
            connecting++;
        } else if (oc->cur == NULL && dq->nactive && smtp_client_idle(oc->cl)) {
            oconn_send_next(oc);
        }
    }
    if (dq->nactive == 0) {
        return;
    }
    want = (size_t)((double)dq->nactive * dq->cfg.aggressiveness + 0.999);
    want = want > connecting ? want - connecting : 0;
    if (want == 0 && connecting == 0) {
        want = 1;
    }
    while (want--) {
        const struct route_target *t = delivery_pick(dq, &retry_at);

        if (t == NULL || !delivery_open(dq, t, false)) {
            break;
        }
    }
    if (dq->nconns == 0 && retry_at && dq->maint) {
        /* every address is resting after failures: come back when one may be tried */
        struct timeval tv;
        uint64_t now = clock_mono_ms(), wait = retry_at > now ? retry_at - now : 1;

        tv.tv_sec = (time_t)(wait / 1000);
        tv.tv_usec = (suseconds_t)(wait % 1000) * 1000;
        evtimer_add(dq->maint, &tv);
        delivery_check_auto_delay(dq, "every address failed recently");
    }
}
