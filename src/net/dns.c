/*
 * dns: libunbound on a loop's event_base (see dns.h).
 *
 * A query lives on d->queries from dns_lookup() until its answer is
 * delivered or it is cancelled. While libunbound holds it (ub_active), its
 * address is libunbound's mydata; libunbound calls us back only from
 * ub_process(), which only our read event calls. Cancelling uses
 * ub_cancel(): in threaded mode that marks libunbound's copy cancelled, so
 * it never calls back with our (then freed) pointer; libunbound frees its
 * copy when the late answer arrives or in ub_ctx_delete().
 *
 * Delivery takes the query off the list first and frees it after the
 * callback returns, without touching the dns again, so a callback may
 * cancel other queries or free the dns. dns_free() from inside ub_process()
 * cancels everything at once but leaves the libunbound context to be
 * deleted when ub_process() has returned.
 */
#include "net/dns.h"

#include <errno.h>
#include <event2/event.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unbound.h>

#include "core/list.h"
#include "core/log.h"
#include "core/mem.h"
#include "net/dns_answer.h"
#include "net/dns_resolvconf.h"

#define DNS_RESOLV_CONF  "/etc/resolv.conf"
#define DNS_SERVERS_TEXT 128
#define DNS_WHY_MAX      256
#define DNS_LABEL_MAX    63
#define DNS_RRCLASS_IN   1
#define DNS_MODE_RECURSE "recursion"

struct dns {
    struct loop *loop;        /* borrowed: the owning loop */
    struct ub_ctx *ub;        /* owned */
    struct event *ev_fd;      /* owned: ub_fd() readable */
    struct list_node queries; /* dns_query.node: outstanding queries */
    unsigned timeout_ms;
    unsigned in_process;            /* inside ub_process() */
    bool dying;                     /* dns_free() ran inside ub_process(): finish afterwards */
    char servers[DNS_SERVERS_TEXT]; /* "ip@port,..." or "recursion", for reasons */
    _Atomic uint64_t n_queries, n_mx, n_a, n_pending, n_failures;
};

struct dns_query {
    struct list_node node;  /* on d->queries while outstanding */
    struct dns *d;          /* borrowed; not used once the callback starts */
    struct event *ev_timer; /* owned: the deadline, or the deferred early answer */
    char *name;             /* owned */
    enum dns_rrtype type;
    dns_fn *cb;
    void *arg; /* borrowed */
    int ub_id;
    bool ub_active; /* libunbound holds the query (with q as mydata) */
    bool has_early; /* answered without libunbound: early, early_why */
    bool in_cb;     /* its callback is running */
    enum dns_status early;
    const char *early_why; /* static */
};

static void dns_on_readable(evutil_socket_t fd, short what, void *arg);

const char *
dns_status_name(enum dns_status s)
{
    switch (s) {
    case DNS_OK:
        return "ok";
    case DNS_NODATA:
        return "nodata";
    case DNS_NXDOMAIN:
        return "nxdomain";
    case DNS_SERVFAIL:
        return "servfail";
    case DNS_TIMEOUT:
        return "timeout";
    }
    return "unknown";
}

const char *
dns_rrtype_name(enum dns_rrtype t)
{
    switch (t) {
    case DNS_A:
        return "A";
    case DNS_PTR:
        return "PTR";
    case DNS_MX:
        return "MX";
    case DNS_TXT:
        return "TXT";
    case DNS_AAAA:
        return "AAAA";
    case DNS_TLSA:
        return "TLSA";
    }
    return "unknown";
}

bool
dns_status_temporary(enum dns_status s)
{
    return s == DNS_SERVFAIL || s == DNS_TIMEOUT;
}

/* ---- configuration ---- */

/* "ip@port,ip@port" (truncated) for failure reasons. */
static void
dns_describe_servers(struct dns *d, const struct dns_resolvconf *rc)
{
    size_t o = 0;

    d->servers[0] = '\0';
    for (size_t i = 0; i < rc->n && o + 1 < sizeof(d->servers); i++) {
        int n = snprintf(d->servers + o, sizeof(d->servers) - o, "%s%s", i ? "," : "",
                         rc->servers[i].fwd);

        o += n > 0 ? (size_t)n : 0;
    }
}

static int
dns_set_option(struct dns *d, const char *opt, const char *val, struct buf *why)
{
    int rc = ub_ctx_set_option(d->ub, opt, val);

    if (rc != 0) {
        buf_printf(why, "libunbound rejects %s %s: %s", opt, val, ub_strerror(rc));
        return CELER_ECONFIG;
    }
    return 0;
}

/* Stub mode: the nameservers forward for everything. */
static int
dns_config_stub(struct dns *d, const struct dns_resolvconf *rc, struct buf *why)
{
    if (dns_set_option(d, "do-not-query-localhost:", "no", why) != 0 ||
        dns_set_option(d, "unblock-lan-zones:", "yes", why) != 0 ||
        dns_set_option(d, "insecure-lan-zones:", "yes", why) != 0) {
        return CELER_ECONFIG;
    }
    for (size_t i = 0; i < rc->n; i++) {
        int r = ub_ctx_set_fwd(d->ub, rc->servers[i].fwd);

        if (r != 0) {
            buf_printf(why, "libunbound rejects forwarder %s: %s", rc->servers[i].fwd,
                       ub_strerror(r));
            return CELER_ECONFIG;
        }
    }
    dns_describe_servers(d, rc);
    return 0;
}

static int
dns_config_transparent(struct dns *d, const char *const *zones, struct buf *why)
{
    for (size_t i = 0; zones && zones[i]; i++) {
        const char *z = zones[i];
        char val[DNS_NAME_MAX + 32];

        if (*z == '\0' || strlen(z) > DNS_NAME_MAX + 1 || strpbrk(z, " \t\r\n\"\\") != NULL) {
            buf_printf(why, "bad transparent zone name '%.*s'", 64, z);
            return CELER_ECONFIG;
        }
        (void)snprintf(val, sizeof(val), "%s transparent", z);
        if (dns_set_option(d, "local-zone:", val, why) != 0) {
            return CELER_ECONFIG;
        }
    }
    return 0;
}

/* Reads the resolv.conf and configures libunbound from it. */
static int
dns_configure(struct dns *d, const struct dns_opts *o, struct buf *why)
{
    const char *path = o->resolv_conf ? o->resolv_conf : DNS_RESOLV_CONF;
    struct dns_resolvconf rc;
    struct buf err;
    int r;

    buf_init(&err, 4096);
    r = dns_resolvconf_load(path, &rc, &err);
    if (r == -ENOENT && o->resolv_conf == NULL) {
        r = 0; /* no /etc/resolv.conf: recursion */
    } else if (r != 0) {
        buf_append_strv(why, buf_data(&err));
        buf_release(&err);
        return r;
    }
    buf_release(&err);
    if (ub_ctx_async(d->ub, 1) != 0) {
        buf_printf(why, "libunbound cannot run its resolver in a thread");
        r = CELER_ECONFIG;
    } else if (rc.n) {
        r = dns_config_stub(d, &rc, why);
    } else {
        (void)snprintf(d->servers, sizeof(d->servers), "%s", DNS_MODE_RECURSE);
    }
    if (r == 0) {
        r = dns_config_transparent(d, o->transparent_zones, why);
    }
    if (r == 0) {
        log_info("dns_new loop=%u resolv_conf=%s servers=%s timeout_ms=%u", loop_index(d->loop),
                 path, d->servers, d->timeout_ms);
    }
    dns_resolvconf_release(&rc);
    return r;
}

struct dns *
dns_new(struct loop *lp, const struct dns_opts *o, struct buf *why)
{
    static const struct dns_opts defaults;
    struct dns *d = XNEW(struct dns);
    int fd;

    o = o ? o : &defaults;
    d->loop = lp;
    d->timeout_ms = o->timeout_ms ? o->timeout_ms : DNS_TIMEOUT_DEFAULT_MS;
    list_init(&d->queries);
    d->ub = ub_ctx_create();
    if (d->ub == NULL) {
        buf_printf(why, "libunbound cannot create a context");
        goto fail;
    }
    if (dns_configure(d, o, why) != 0) {
        goto fail;
    }
    fd = ub_fd(d->ub);
    if (fd < 0) {
        buf_printf(why, "libunbound has no result pipe");
        goto fail;
    }
    d->ev_fd = event_new(loop_base(lp), fd, EV_READ | EV_PERSIST, dns_on_readable, d);
    if (d->ev_fd == NULL || event_add(d->ev_fd, NULL) != 0) {
        buf_printf(why, "cannot watch libunbound's result pipe");
        goto fail;
    }
    return d;
fail:
    if (d->ev_fd) {
        event_free(d->ev_fd);
    }
    ub_ctx_delete(d->ub);
    free(d);
    return NULL;
}

/* ---- queries ---- */

static void
dns_query_free(struct dns_query *q)
{
    event_free(q->ev_timer);
    free(q->name);
    free(q);
}

/* Takes q off the list, runs its callback once with a, then frees q. */
static void
dns_deliver(struct dns_query *q, struct dns_answer *a)
{
    struct dns *d = q->d;

    list_remove(&q->node);
    event_del(q->ev_timer);
    atomic_fetch_sub_explicit(&d->n_pending, 1, memory_order_relaxed);
    if (dns_status_temporary(a->status)) {
        atomic_fetch_add_explicit(&d->n_failures, 1, memory_order_relaxed);
    }
    a->qname = q->name;
    a->type = q->type;
    if (log_threshold <= LOG_LEVEL_DEBUG) {
        char esc[DNS_NAME_MAX + 16];

        log_escape(q->name, strlen(q->name), esc, sizeof(esc));
        log_debug("dns_answer loop=%u name=%s type=%s status=%s ttl=%u n=%zu", loop_index(d->loop),
                  esc, dns_rrtype_name(q->type), dns_status_name(a->status), (unsigned)a->ttl,
                  a->n);
    }
    q->d = NULL; /* d may be freed by the callback */
    q->in_cb = true;
    q->cb(a, q->arg);
    dns_query_free(q);
}

/* The failure reason of a parsed answer into why[size]; NULL for DNS_OK. */
static const char *
dns_why(const struct dns_answer *a, const struct dns *d, char *why, size_t size)
{
    switch (a->status) {
    case DNS_OK:
        return NULL;
    case DNS_NODATA:
        (void)snprintf(why, size, "no %s records", dns_rrtype_name(a->type));
        break;
    case DNS_NXDOMAIN:
        (void)snprintf(why, size, "no such domain");
        break;
    default:
        (void)snprintf(why, size, "%s from %s", a->why ? a->why : "failure", d->servers);
        break;
    }
    return why;
}

/* libunbound's callback, from ub_process() on the loop. */
static void
dns_on_result(void *mydata, int err, struct ub_result *res)
{
    struct dns_query *q = mydata;
    struct dns_answer a;
    char why[DNS_WHY_MAX];

    memset(&a, 0, sizeof(a));
    a.type = q->type;
    q->ub_active = false;
    if (err != 0 || res == NULL) {
        a.status = DNS_SERVFAIL;
        (void)snprintf(why, sizeof(why), "resolver error: %s", ub_strerror(err));
        a.why = why;
    } else if (res->bogus) {
        a.status = DNS_SERVFAIL;
        a.bogus = true;
        (void)snprintf(why, sizeof(why), "DNSSEC bogus: %s", res->why_bogus ? res->why_bogus : "?");
        a.why = why;
    } else {
        size_t len = res->answer_len > 0 ? (size_t)res->answer_len : 0;

        /* a malformed packet leaves DNS_SERVFAIL with its reason: same path */
        (void)!dns_answer_parse(res->answer_packet, len, q->name, q->type, &a);
        a.secure = res->secure != 0 && a.status != DNS_SERVFAIL;
        a.why = dns_why(&a, q->d, why, sizeof(why));
    }
    ub_resolve_free(res);
    dns_deliver(q, &a);
    dns_answer_release(&a);
}

static void
dns_on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct dns_query *q = arg;
    struct dns_answer a;
    char why[DNS_WHY_MAX];

    memset(&a, 0, sizeof(a));
    if (q->has_early) {
        a.status = q->early;
        a.why = q->early_why;
    } else {
        if (q->ub_active) {
            (void)ub_cancel(q->d->ub, q->ub_id); /* UB_NOID: nothing left to cancel */
            q->ub_active = false;
        }
        a.status = DNS_TIMEOUT;
        (void)snprintf(why, sizeof(why), "timeout after %u ms", q->d->timeout_ms);
        a.why = why;
    }
    dns_deliver(q, &a);
}

static void
dns_on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct dns *d = arg;
    int rc;

    d->in_process++;
    rc = ub_process(d->ub);
    d->in_process--;
    if (rc != 0 && !d->dying) {
        /* libunbound's thread is gone: stop watching a dead pipe; lookups now time out */
        log_error("dns_process_failed loop=%u err=%s", loop_index(d->loop), ub_strerror(rc));
        event_del(d->ev_fd);
    }
    if (d->dying && d->in_process == 0) {
        event_free(d->ev_fd);
        ub_ctx_delete(d->ub);
        free(d);
    }
}

/* True for names we hand to libunbound: printable, no escapes, sane lengths. */
static bool
dns_name_ok(const char *name)
{
    size_t len = strnlen(name, DNS_NAME_MAX + 2), label = 0;

    if (len && name[len - 1] == '.') {
        len--;
    }
    if (len == 0 || len > DNS_NAME_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];

        if (c == '.') {
            if (label == 0) {
                return false;
            }
            label = 0;
        } else if (c <= 0x20 || c >= 0x7f || c == '\\' || ++label > DNS_LABEL_MAX) {
            return false;
        }
    }
    return label > 0;
}

static void
dns_answer_early(struct dns_query *q, enum dns_status s, const char *why)
{
    static const struct timeval now = {0, 0};

    q->has_early = true;
    q->early = s;
    q->early_why = why;
    event_add(q->ev_timer, &now);
}

struct dns_query *
dns_lookup(struct dns *d, const char *name, enum dns_rrtype type, dns_fn *cb, void *arg)
{
    struct dns_query *q = XNEW(struct dns_query);
    struct timeval tv = {d->timeout_ms / 1000, (long)(d->timeout_ms % 1000) * 1000};
    int rc;

    q->d = d;
    q->name = xstrdup(name);
    q->type = type;
    q->cb = cb;
    q->arg = arg;
    q->ev_timer = evtimer_new(loop_base(d->loop), dns_on_timer, q);
    if (q->ev_timer == NULL) {
        abort(); /* libevent fails this only when out of memory */
    }
    list_push_back(&d->queries, &q->node);
    atomic_fetch_add_explicit(&d->n_queries, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&d->n_pending, 1, memory_order_relaxed);
    if (type == DNS_MX) {
        atomic_fetch_add_explicit(&d->n_mx, 1, memory_order_relaxed);
    } else if (type == DNS_A || type == DNS_AAAA) {
        atomic_fetch_add_explicit(&d->n_a, 1, memory_order_relaxed);
    }
    if (!dns_name_ok(name)) {
        dns_answer_early(q, DNS_NXDOMAIN, "invalid domain name");
        return q;
    }
    rc = ub_resolve_async(d->ub, q->name, (int)type, DNS_RRCLASS_IN, q, dns_on_result, &q->ub_id);
    if (rc == UB_NOMEM) {
        list_remove(&q->node);
        atomic_fetch_sub_explicit(&d->n_pending, 1, memory_order_relaxed);
        dns_query_free(q);
        return NULL;
    }
    if (rc != 0) {
        log_error("dns_resolve_failed loop=%u err=%s", loop_index(d->loop), ub_strerror(rc));
        dns_answer_early(q, DNS_SERVFAIL, "resolver error");
        return q;
    }
    q->ub_active = true;
    event_add(q->ev_timer, &tv);
    return q;
}

/* Forgets an outstanding query: no callback. */
static void
dns_query_drop(struct dns *d, struct dns_query *q)
{
    list_remove(&q->node);
    if (q->ub_active) {
        (void)ub_cancel(d->ub, q->ub_id); /* UB_NOID: libunbound is done with it */
    }
    atomic_fetch_sub_explicit(&d->n_pending, 1, memory_order_relaxed);
    dns_query_free(q);
}

void
dns_cancel(struct dns_query *q)
{
    if (q == NULL || q->in_cb) {
        return;
    }
    dns_query_drop(q->d, q);
}

void
dns_free(struct dns *d)
{
    struct list_node *pos, *tmp;

    if (d == NULL || d->dying) {
        return;
    }
    LIST_FOREACH_SAFE(pos, tmp, &d->queries)
    {
        dns_query_drop(d, container_of(pos, struct dns_query, node));
    }
    if (d->in_process) {
        d->dying = true; /* dns_on_readable() finishes once ub_process() returns */
        return;
    }
    event_free(d->ev_fd);
    ub_ctx_delete(d->ub);
    free(d);
}

void
dns_get_stats(const struct dns *d, struct dns_stats *out)
{
    out->queries = atomic_load_explicit(&d->n_queries, memory_order_relaxed);
    out->mx_queries = atomic_load_explicit(&d->n_mx, memory_order_relaxed);
    out->a_queries = atomic_load_explicit(&d->n_a, memory_order_relaxed);
    out->pending = atomic_load_explicit(&d->n_pending, memory_order_relaxed);
    out->failures = atomic_load_explicit(&d->n_failures, memory_order_relaxed);
}
