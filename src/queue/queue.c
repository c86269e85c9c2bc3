/*
 * queue: the delivery engine's loops, intake, recovery and statistics (see
 * queue.h).
 */
#include "queue/queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "log/mainlog.h"
#include "queue/queue_int.h"

/* Zones a stub resolver leaves to its name server (libunbound would answer them itself). */
static const char *const queue_transparent_zones[] = {"test.", "invalid.", "example.", NULL};

struct qloop *
queue_this_loop(struct queue *q, struct loop *lp)
{
    return &q->loops[loop_index(lp)];
}

struct qloop *
queue_loop_of(struct queue *q, const char *domain)
{
    return &q->loops[strv_hash_ci(strv_from_cstr(domain)) % q->nloops];
}

struct queue *
queue_new(const struct queue_opts *o, struct conf *c, struct buf *why)
{
    struct queue *q = XNEW(struct queue);
    const struct conf_setting *rc = conf_global(c, "resolv_conf");
    struct dns_opts dopts = {
        .resolv_conf = conf_setting_unset(rc) ? NULL : rc->val.s,
        .transparent_zones = queue_transparent_zones,
    };

    q->o = *o;
    q->hostname = xstrdup(o->hostname);
    q->nloops = loop_group_count(o->loops);
    q->loops = xcalloc(q->nloops, sizeof(*q->loops));
    pthread_mutex_init(&q->lock, NULL);
    map_init(&q->host_conns, true);
    map_init(&q->scope_conns, false);
    map_init(&q->tls_ctxs, false);
    spool_idgen_init_random(&q->connids);
    for (unsigned i = 0; i < q->nloops; i++) {
        struct qloop *ql = &q->loops[i];

        ql->q = q;
        ql->loop = loop_group_get(o->loops, i);
        ql->conf = conf_ref(c);
        ql->gen = 1;
        map_init(&ql->dqueues, false);
        map_init(&ql->domrecs, true);
        map_init(&ql->failing, false);
        ql->dns = dns_new(ql->loop, &dopts, why);
        if (ql->dns == NULL) {
            queue_free(q);
            return NULL;
        }
    }
    return q;
}

static void
queue_free_dqueue(void *p)
{
    dqueue_free(p);
}

static void
queue_free_domrec(void *p)
{
    domrec_free(p);
}

static void
queue_free_tls(void *p)
{
    SSL_CTX_free(p);
}

void
queue_free(struct queue *q)
{
    if (q == NULL) {
        return;
    }
    for (unsigned i = 0; i < q->nloops; i++) {
        struct qloop *ql = &q->loops[i];

        ql->stopping = true;
        map_release(&ql->dqueues, queue_free_dqueue);
        map_release(&ql->domrecs, queue_free_domrec);
        map_release(&ql->failing, NULL);
        if (ql->dns) {
            dns_free(ql->dns);
        }
        conf_unref(ql->conf);
    }
    map_release(&q->host_conns, NULL);
    map_release(&q->scope_conns, NULL);
    map_release(&q->tls_ctxs, queue_free_tls);
    pthread_mutex_destroy(&q->lock);
    free(q->loops);
    free(q->hostname);
    free(q);
}

/* ---- configuration ---- */

struct queue_conf_msg {
    struct qloop *ql;
    struct conf *conf; /* ref */
};

static void
queue_swap_conf(struct loop *lp, void *arg)
{
    struct queue_conf_msg *m = arg;
    struct qloop *ql = m->ql;
    size_t it = 0;
    void *v;

    conf_unref(ql->conf);
    ql->conf = m->conf;
    ql->gen++;
    free(m);
    while (map_next(&ql->dqueues, &it, NULL, &v)) {
        dqueue_kick(v); /* suspensions lifted, limits raised: look again */
    }
}

void
queue_set_conf(struct queue *q, struct conf *c)
{
    for (unsigned i = 0; i < q->nloops; i++) {
        struct queue_conf_msg *m = XNEW(struct queue_conf_msg);

        m->ql = &q->loops[i];
        m->conf = conf_ref(c);
        loop_post(q->loops[i].loop, queue_swap_conf, m);
    }
}

void
queue_stop_loop(struct queue *q, struct loop *lp)
{
    struct qloop *ql = queue_this_loop(q, lp);
    size_t it = 0;
    void *v;

    ql->stopping = true;
    while (map_next(&ql->dqueues, &it, NULL, &v)) {
        struct dqueue *dq = v;

        while (!list_empty(&dq->conns)) {
            oconn_abort(container_of(list_first(&dq->conns), struct oconn, node));
        }
        /* the loop's base goes before the queues do: drop its events now */
        event_free(dq->maint);
        dq->maint = NULL;
    }
    it = 0;
    while (map_next(&ql->domrecs, &it, NULL, &v)) {
        struct domrec *dr = v;

        for (size_t i = 0; i < dr->nlookups; i++) {
            dns_cancel(dr->lookups[i]->q);
            free(dr->lookups[i]);
        }
        dr->nlookups = 0;
        dr->pending = 0;
    }
    dns_free(ql->dns);
    ql->dns = NULL;
}

/* ---- intake ---- */

/* Recipients of one message for one domain, on their way to that domain's loop. */
struct queue_intake {
    struct qloop *ql;
    struct qmsg *m; /* ref */
    char *domain;
    uint32_t attempts;
    int64_t next_attempt_s;
    uint32_t nr;
    uint32_t r[];
};

static void
queue_intake_run(struct loop *lp, void *arg)
{
    struct queue_intake *in = arg;
    struct qloop *ql = in->ql;

    if (!ql->stopping) {
        struct dqueue *dq = dqueue_get(ql, "default", in->domain);
        uint32_t batch = dq->cfg.max_rcpts_batch;

        for (uint32_t i = 0; i < in->nr; i += batch) {
            uint32_t n = in->nr - i < batch ? in->nr - i : batch;
            struct qentry *e = qentry_new(in->m, in->r + i, n);

            e->attempts = in->attempts;
            e->next_attempt_s = in->next_attempt_s;
            dqueue_add(dq, e);
        }
    }
    qmsg_unref(in->m);
    free(in->domain);
    free(in);
}

/* Groups the pending recipients of m by domain and sends each group to its loop. */
static void
queue_dispatch(struct queue *q, struct qmsg *m, struct loop *here, uint32_t attempts,
               int64_t next_attempt_s)
{
    bool *done = xcalloc(m->nrcpts ? m->nrcpts : 1, sizeof(bool));

    for (uint32_t i = 0; i < m->nrcpts; i++) {
        const char *dom = qmsg_rcpt_domain(m, i);
        struct queue_intake *in;
        struct qloop *ql;

        if (done[i] || m->rcpts[i].state != SPOOL_RCPT_PENDING) {
            continue;
        }
        in = xcalloc(1, sizeof(*in) + m->nrcpts * sizeof(in->r[0]));
        ql = queue_loop_of(q, dom);
        in->ql = ql;
        in->domain = xstrdup(dom);
        in->attempts = attempts;
        in->next_attempt_s = next_attempt_s;
        for (uint32_t j = i; j < m->nrcpts; j++) {
            if (!done[j] && m->rcpts[j].state == SPOOL_RCPT_PENDING &&
                strcasecmp(qmsg_rcpt_domain(m, j), dom) == 0) {
                done[j] = true;
                in->r[in->nr++] = j;
            }
        }
        qmsg_ref(m);
        in->m = m;
        if (here == ql->loop) {
            queue_intake_run(here, in);
        } else {
            loop_post(ql->loop, queue_intake_run, in);
        }
    }
    free(done);
}

void
queue_submit(struct loop *lp, const struct reception_msg *rm, void *arg)
{
    struct queue *q = arg;
    struct qmsg *m =
        qmsg_new(rm->sid, rm->env, NULL, rm->body_off, rm->body_len, (uint32_t)rm->prepend.len);

    atomic_fetch_add(&q->messages, 1);
    queue_dispatch(q, m, lp, 0, 0);
    qmsg_unref(m);
}

void
queue_recovered(struct queue *q, const struct spool_msg *sm, struct spool_id id)
{
    struct qmsg *m =
        qmsg_new(id, &sm->env, sm->rprog, sm->body_off, sm->body_len, (uint32_t)sm->prepend.len);

    if (m->pending == 0) {
        /* every recipient was final but the file survived: finish the removal */
        spool_remove(q->o.spool, id, qmsg_file_len(m));
        qmsg_unref(m);
        return;
    }
    atomic_fetch_add(&q->messages, 1);
    queue_dispatch(q, m, NULL, sm->attempts, sm->next_attempt_s);
    qmsg_unref(m);
}

/* ---- logging and statistics ---- */

void
queue_log_delivery(struct dqueue *dq, const struct qentry *e, uint32_t ri, char type,
                   const char *remote_ip, const char *connid, enum smtp_stage stage, int code,
                   const char *enh, const char *text)
{
    struct log_file *log = dq->ql->q->o.mainlog;
    const struct qmsg *m = e->m;
    char id[SPOOL_ID_SIZE], response[700];
    struct buf line;
    struct mainlog_head h;
    struct mainlog_delivery d;

    if (log == NULL) {
        return;
    }
    spool_id_format(m->id, id);
    h = (struct mainlog_head){clock_wall_s(), id, id, connid};
    snprintf(response, sizeof(response), "%d%s%s %s", code, enh[0] ? " " : "", enh, text);
    d = (struct mainlog_delivery){
        .domain = qmsg_rcpt_domain(m, ri),
        .size = qmsg_size(m),
        .binding_group = "default",
        .binding = dq->binding,
        .retries = e->attempts,
        .seconds = (double)(clock_wall_us() - m->ctime_us) / 1e6,
        .remote_ip = remote_ip,
        .stage = (enum mainlog_stage)stage,
        .response = strv_from_cstr(response),
    };
    buf_init(&line, 8192);
    mainlog_format_delivery(&line, &h, type, &d);
    log_file_write(log, buf_data(&line).ptr, buf_len(&line));
    buf_release(&line);
}

void
queue_get_stats(struct queue *q, struct queue_stats *out)
{
    memset(out, 0, sizeof(*out));
    for (unsigned i = 0; i < q->nloops; i++) {
        out->active += q->loops[i].nactive;
        out->delayed += q->loops[i].ndelayed;
        out->connections += q->loops[i].nconns;
    }
    out->messages = atomic_load(&q->messages);
    out->delivered = atomic_load(&q->delivered);
    out->failed = atomic_load(&q->failed);
    out->transient = atomic_load(&q->transient);
}
