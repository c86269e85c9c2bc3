/*
 * dqueue: one (binding, domain) queue: its active list, delayed heap and
 * maintainer (see queue.h for the model).
 *
 * The maintainer runs when mail arrives, when a connection frees up, when
 * the route is resolved, when the next delayed message is due, and at
 * least every delayed_queue_scan_interval while mail is active. It moves
 * due delayed mail to the active list, applies suspension, blackholes and
 * expiry, and asks delivery_fill() for connections.
 */
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "queue/queue_int.h"

static void dqueue_on_maint(evutil_socket_t fd, short what, void *arg);

static bool
qentry_later(const struct heap_node *a, const struct heap_node *b)
{
    const struct qentry *x = container_of_const(a, struct qentry, hn);
    const struct qentry *y = container_of_const(b, struct qentry, hn);

    return x->next_attempt_s < y->next_attempt_s;
}

struct qentry *
qentry_new(struct qmsg *m, const uint32_t *r, uint32_t nr)
{
    struct qentry *e = xcalloc(1, sizeof(*e) + nr * sizeof(e->r[0]));

    qmsg_ref(m);
    e->m = m;
    list_init(&e->node);
    heap_node_init(&e->hn);
    e->nr = nr;
    memcpy(e->r, r, nr * sizeof(e->r[0]));
    return e;
}

void
qentry_free(struct qentry *e)
{
    if (e == NULL) {
        return;
    }
    list_remove(&e->node);
    if (e->dq) {
        e->dq->nentries--;
    }
    (void)qmsg_unref(e->m); /* the last reference frees the message */
    free(e);
}

static struct strv
dqueue_key(const char *binding, const char *domain, char *out, size_t size)
{
    int n = snprintf(out, size, "%s%c%s", binding, '\0', domain);

    return strv_make(out, n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1);
}

struct dqueue *
dqueue_get(struct qloop *ql, const char *binding, const char *domain)
{
    char key[600];
    struct strv k = dqueue_key(binding, domain, key, sizeof(key));
    struct dqueue *dq = map_get(&ql->dqueues, k);

    if (dq) {
        if (dq->cfg.gen != ql->gen) {
            dqueue_refresh_cfg(dq);
        }
        return dq;
    }
    dq = XNEW(struct dqueue);
    dq->ql = ql;
    dq->binding = xstrdup(binding);
    dq->domain = xstrdup(domain);
    list_init(&dq->active);
    list_init(&dq->conns);
    list_init(&dq->wait_node);
    heap_init(&dq->delayed, qentry_later);
    dq->maint = evtimer_new(loop_base(ql->loop), dqueue_on_maint, dq);
    if (dq->maint == NULL) {
        abort(); /* allocation failure */
    }
    qcfg_resolve(&dq->cfg, ql, binding, domain);
    dq->dr = domrec_get(ql, &dq->cfg, domain);
    map_put(&ql->dqueues, k, dq);
    return dq;
}

void
dqueue_refresh_cfg(struct dqueue *dq)
{
    struct domrec *old = dq->dr;

    qcfg_resolve(&dq->cfg, dq->ql, dq->binding, dq->domain);
    if (strcmp(old->key, dq->cfg.route_key) != 0) {
        list_remove(&dq->wait_node);
        dq->dr = domrec_get(dq->ql, &dq->cfg, dq->domain);
        domrec_put(old);
    }
}

void
dqueue_free(struct dqueue *dq)
{
    struct list_node *n;
    struct heap_node *h;

    while (!list_empty(&dq->conns)) {
        oconn_abort(container_of(list_first(&dq->conns), struct oconn, node));
    }
    while ((n = list_pop_front(&dq->active))) {
        qentry_free(container_of(n, struct qentry, node));
    }
    while ((h = heap_pop(&dq->delayed))) {
        qentry_free(container_of(h, struct qentry, hn));
    }
    heap_release(&dq->delayed);
    if (dq->maint) {
        event_free(dq->maint);
    }
    list_remove(&dq->wait_node);
    domrec_put(dq->dr);
    qcfg_release(&dq->cfg);
    free(dq->binding);
    free(dq->domain);
    free(dq);
}

/* Runs the maintainer soon (after the current callback). */
void
dqueue_kick(struct dqueue *dq)
{
    if (!dq->ql->stopping) {
        event_active(dq->maint, EV_TIMEOUT, 0);
    }
}

static void
dqueue_schedule(struct dqueue *dq, int64_t seconds)
{
    struct timeval tv = {seconds > 0 ? seconds : 0, seconds > 0 ? 0 : 1000};

    if (!dq->ql->stopping) {
        evtimer_add(dq->maint, &tv);
    }
}

/* The entry belongs to dq from now on (counted, so an idle queue is never freed under it). */
static void
dqueue_adopt(struct dqueue *dq, struct qentry *e)
{
    if (e->dq != dq) {
        if (e->dq) {
            e->dq->nentries--;
        }
        e->dq = dq;
        dq->nentries++;
    }
    dq->idle_since_ms = 0;
}

void
dqueue_add(struct dqueue *dq, struct qentry *e)
{
    dqueue_adopt(dq, e);
    if (e->next_attempt_s > clock_wall_s()) {
        heap_push(&dq->delayed, &e->hn);
        dq->ql->ndelayed++;
        dqueue_schedule(dq, e->next_attempt_s - clock_wall_s());
        return;
    }
    if (e->m->flags & QMSG_PRIORITY) {
        list_push_front(&dq->active, &e->node);
    } else {
        list_push_back(&dq->active, &e->node);
    }
    dq->nactive++;
    dq->ql->nactive++;
    dqueue_kick(dq);
}

void
dqueue_delay(struct dqueue *dq, struct qentry *e)
{
    dqueue_adopt(dq, e);
    heap_push(&dq->delayed, &e->hn);
    dq->ql->ndelayed++;
    dqueue_schedule(dq, e->next_attempt_s - clock_wall_s());
}

struct qentry *
dqueue_take(struct dqueue *dq)
{
    struct list_node *n = list_pop_front(&dq->active);

    if (n == NULL) {
        return NULL;
    }
    dq->nactive--;
    dq->ql->nactive--;
    return container_of(n, struct qentry, node);
}

void
dqueue_sweep_transient(struct dqueue *dq, int code, const char *enh, const char *text,
                       enum smtp_stage stage)
{
    struct qentry *e;

    while ((e = dqueue_take(dq))) {
        delivery_transient_entry(dq, e, code, enh, text, stage);
    }
}

void
dqueue_fail_all(struct dqueue *dq, int code, const char *enh, const char *text, bool quiet)
{
    struct qentry *e;

    while ((e = dqueue_take(dq))) {
        delivery_fail_entry(dq, e, code, enh, text, SMTP_STAGE_NOT_CONNECTED, quiet);
    }
}

/* Moves delayed entries whose time has come to the active list. */
static void
dqueue_promote(struct dqueue *dq, int64_t now)
{
    struct heap_node *h;

    while ((h = heap_peek(&dq->delayed))) {
        struct qentry *e = container_of(h, struct qentry, hn);

        if (e->next_attempt_s > now) {
            break;
        }
        heap_pop(&dq->delayed);
        dq->ql->ndelayed--;
        if (e->m->flags & QMSG_PRIORITY) {
            list_push_front(&dq->active, &e->node);
        } else {
            list_push_back(&dq->active, &e->node);
        }
        dq->nactive++;
        dq->ql->nactive++;
    }
}

/* Expired messages: one last attempt unless never_attempt_expired_messages. */
static void
dqueue_expire(struct dqueue *dq, int64_t now)
{
    struct list_node *n, *tmp;

    if (!dq->cfg.never_attempt_expired || dq->cfg.expiration <= 0) {
        return;
    }
    LIST_FOREACH_SAFE(n, tmp, &dq->active)
    {
        struct qentry *e = container_of(n, struct qentry, node);

        if (now - e->m->ctime_us / 1000000 >= dq->cfg.expiration) {
            list_remove(&e->node);
            dq->nactive--;
            dq->ql->nactive--;
            delivery_fail_entry(dq, e, 554, "5.4.7",
                                "[internal] Delivery not attempted (message expired)",
                                SMTP_STAGE_NOT_CONNECTED, false);
        }
    }
}

static void
dqueue_maintain(struct dqueue *dq)
{
    int64_t now = clock_wall_s();
    struct heap_node *h;

    if (dq->cfg.gen != dq->ql->gen) {
        dqueue_refresh_cfg(dq);
    }
    if (dq->cfg.suspended) {
        return; /* mail stays queued; a reload that lifts suspension kicks us again */
    }
    dqueue_promote(dq, now);
    if (dq->cfg.blackhole != QCFG_BLACKHOLE_NO && dq->nactive) {
        /* internal: accepted, then dropped without a bounce (still logged) */
        dqueue_fail_all(dq, 554, "5.7.1", "[internal] blackholed by configuration",
                        dq->cfg.blackhole == QCFG_BLACKHOLE_INTERNAL);
    }
    dqueue_expire(dq, now);
    if (dq->nactive) {
        delivery_fill(dq);
    }
    if (dq->nactive) {
        int64_t scan = conf_global(dq->ql->conf, "delayed_queue_scan_interval")->val.i;

        dqueue_schedule(dq, scan > 0 ? scan : 15);
    } else if ((h = heap_peek(&dq->delayed))) {
        dqueue_schedule(dq, container_of(h, struct qentry, hn)->next_attempt_s - now);
    }
}

#define DQUEUE_IDLE_FREE_MS 60000

/* A queue with nothing left for a minute is freed (domains come and go). */
static bool
dqueue_collect(struct dqueue *dq)
{
    char key[600];
    uint64_t now = clock_mono_ms();

    if (dq->nentries || dq->nconns || dq->nactive || heap_len(&dq->delayed)) {
        dq->idle_since_ms = 0;
        return false;
    }
    if (dq->idle_since_ms == 0) {
        dq->idle_since_ms = now;
    }
    if (now - dq->idle_since_ms < DQUEUE_IDLE_FREE_MS) {
        dqueue_schedule(dq, DQUEUE_IDLE_FREE_MS / 1000);
        return false;
    }
    map_del(&dq->ql->dqueues, dqueue_key(dq->binding, dq->domain, key, sizeof(key)));
    dqueue_free(dq);
    return true;
}

static void
dqueue_on_maint(evutil_socket_t fd, short what, void *arg)
{
    struct dqueue *dq = arg;

    if (!dq->ql->stopping) {
        dqueue_maintain(dq);
        (void)dqueue_collect(dq);
    }
}
