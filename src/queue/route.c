/*
 * route: domain records: where a domain's mail goes (see queue_int.h).
 *
 * A record resolves once and is cached for the answers' TTL, clamped by
 * min_dns_ttl/max_dns_ttl; queues of every binding share it. Resolution:
 *   Gateway "host[:port]"           -> that host's addresses
 *   Routes ( "smtp://ip?port=P&pref=N" "host" "__mx__" ... ) -> those targets
 *   otherwise MX, then the A (and with use_ipv6, AAAA) records of each
 *   exchange; no MX records: the domain's own addresses (implicit MX); a
 *   null MX (RFC 7505) or NXDOMAIN fails permanently; SERVFAIL and timeouts
 *   are temporary (dns_failures_to_purge of them in a row fail permanently;
 *   after mx_failures_fallback_to_a the domain's A records are tried).
 * Targets are ordered by preference; prohibited_hosts are dropped.
 * fully_resolve_before_smtp decides whether the first connection waits for
 * every exchange's addresses or only for the best ones.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "queue/queue_int.h"

#define ROUTE_TEMPFAIL_RETRY_MS 30000

static void domrec_resolve(struct domrec *dr);

struct domrec *
domrec_get(struct qloop *ql, const struct qcfg *cfg, const char *domain)
{
    struct domrec *dr = map_get_cstr(&ql->domrecs, cfg->route_key);

    if (dr == NULL) {
        dr = XNEW(struct domrec);
        dr->key = xstrdup(cfg->route_key);
        dr->domain = xstrdup(domain);
        dr->ql = ql;
        list_init(&dr->waiters);
        map_put(&ql->domrecs, strv_from_cstr(dr->key), dr);
    }
    dr->refs++;
    return dr;
}

static void
domrec_clear_targets(struct domrec *dr)
{
    for (size_t i = 0; i < dr->ntargets; i++) {
        free(dr->targets[i].host);
    }
    dr->ntargets = 0;
    for (size_t i = 0; i < dr->nmx; i++) {
        free(dr->mx[i].host);
    }
    free(dr->mx);
    dr->mx = NULL;
    dr->nmx = 0;
}

static void
domrec_cancel(struct domrec *dr)
{
    for (size_t i = 0; i < dr->nlookups; i++) {
        dns_cancel(dr->lookups[i]->q);
        free(dr->lookups[i]);
    }
    dr->nlookups = 0;
    dr->pending = 0;
}

void
domrec_free(struct domrec *dr)
{
    domrec_cancel(dr);
    domrec_clear_targets(dr);
    free(dr->targets);
    free(dr->lookups);
    free(dr->key);
    free(dr->domain);
    free(dr);
}

void
domrec_put(struct domrec *dr)
{
    if (dr && --dr->refs == 0 && !dr->ql->stopping) {
        /* no queue uses it: forget it (a new queue resolves again) */
        map_del(&dr->ql->domrecs, strv_from_cstr(dr->key));
        domrec_free(dr);
    }
}

/* ---- targets ---- */

static bool
route_prohibited(const struct qloop *ql, const struct sockaddr *sa)
{
    const struct conf_setting *st = conf_global(ql->conf, "prohibited_hosts");

    for (size_t i = 0; !conf_setting_unset(st) && i < st->val.n; i++) {
        if (conf_cidr_match(&st->val.cidrs[i], sa)) {
            return true;
        }
    }
    return false;
}

static void
domrec_add_target(struct domrec *dr, uint16_t pref, const char *host, int family,
                  const unsigned char *addr, uint16_t port)
{
    struct route_target t = {.pref = pref, .port = port};

    memset(&t.sa, 0, sizeof(t.sa));
    if (family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&t.sa;

        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        memcpy(&s4->sin_addr, addr, 4);
        t.salen = sizeof(*s4);
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&t.sa;

        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        memcpy(&s6->sin6_addr, addr, 16);
        t.salen = sizeof(*s6);
    }
    if (route_prohibited(dr->ql, (const struct sockaddr *)&t.sa)) {
        char ip[64];

        inet_ntop(family, addr, ip, sizeof(ip));
        log_notice("route_prohibited domain=%s host=%s ip=%s", dr->domain, host, ip);
        return;
    }
    inet_ntop(family, addr, t.ip, sizeof(t.ip));
    t.host = xstrdup(host);
    dr->targets = xgrow(dr->targets, &dr->targets_cap, dr->ntargets + 1, sizeof(t));
    dr->targets[dr->ntargets++] = t;
}

static int
route_target_cmp(const void *a, const void *b)
{
    const struct route_target *x = a, *y = b;

    return (int)x->pref - (int)y->pref;
}

static uint32_t
route_clamp_ttl(const struct qloop *ql, uint32_t ttl)
{
    int64_t lo = conf_global(ql->conf, "min_dns_ttl")->val.i;
    int64_t hi = conf_global(ql->conf, "max_dns_ttl")->val.i;

    if (lo > 0 && ttl < (uint64_t)lo) {
        ttl = (uint32_t)lo;
    }
    if (hi > 0 && ttl > (uint64_t)hi) {
        ttl = (uint32_t)hi;
    }
    return ttl;
}

/* The record settled: wake the queues waiting for it. */
static void
domrec_settle(struct domrec *dr, enum domrec_state state)
{
    struct list_node *n;

    dr->state = state;
    if (state == DOMREC_READY) {
        qsort(dr->targets, dr->ntargets, sizeof(*dr->targets), route_target_cmp);
        dr->expires_ms = clock_mono_ms() + (uint64_t)route_clamp_ttl(dr->ql, dr->ttl) * 1000;
        dr->dns_failures = 0;
        if (dr->ntargets == 0) {
            dr->state = DOMREC_TEMPFAIL;
            snprintf(dr->why, sizeof(dr->why), "no usable address for %s (all prohibited or none)",
                     dr->domain);
            dr->why_code = 451;
            snprintf(dr->why_enh, sizeof(dr->why_enh), "4.4.4");
        }
    }
    if (dr->state == DOMREC_TEMPFAIL || dr->state == DOMREC_PERMFAIL) {
        dr->expires_ms = clock_mono_ms() + ROUTE_TEMPFAIL_RETRY_MS; /* negative caching */
    }
    while ((n = list_pop_front(&dr->waiters))) {
        dqueue_kick(container_of(n, struct dqueue, wait_node));
    }
}

static void domrec_fail(struct domrec *dr, bool permanent, int code, const char *enh,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void
domrec_fail(struct domrec *dr, bool permanent, int code, const char *enh, const char *fmt, ...)
{
    va_list ap;

    domrec_cancel(dr);
    domrec_clear_targets(dr);
    va_start(ap, fmt);
    vsnprintf(dr->why, sizeof(dr->why), fmt, ap);
    va_end(ap);
    dr->why_code = code;
    snprintf(dr->why_enh, sizeof(dr->why_enh), "%s", enh);
    log_info("route_failed domain=%s permanent=%d reason=\"%s\"", dr->domain, permanent, dr->why);
    domrec_settle(dr, permanent ? DOMREC_PERMFAIL : DOMREC_TEMPFAIL);
}

/* ---- lookups ---- */

static void route_on_answer(const struct dns_answer *a, void *arg);

static void
domrec_query(struct domrec *dr, const char *name, enum dns_rrtype type, size_t mx_index)
{
    struct route_lookup *rl = XNEW(struct route_lookup);

    rl->dr = dr;
    rl->mx_index = mx_index;
    dr->lookups = xgrow(dr->lookups, &dr->lookups_cap, dr->nlookups + 1, sizeof(*dr->lookups));
    rl->q = dns_lookup(dr->ql->dns, name, type, route_on_answer, rl);
    if (rl->q == NULL) {
        free(rl);
        return;
    }
    dr->lookups[dr->nlookups++] = rl;
    dr->pending++;
}

static void
domrec_forget_lookup(struct domrec *dr, struct route_lookup *rl)
{
    for (size_t i = 0; i < dr->nlookups; i++) {
        if (dr->lookups[i] == rl) {
            dr->lookups[i] = dr->lookups[--dr->nlookups];
            break;
        }
    }
    dr->pending--;
}

static bool
route_use_ipv6(const struct domrec *dr)
{
    return conf_global(dr->ql->conf, "use_ipv6")->val.b;
}

/* Address lookups for the exchanges from index first on (or the domain itself: implicit MX). */
static void
domrec_lookup_addresses_from(struct domrec *dr, size_t first)
{
    for (size_t i = first; i < dr->nmx; i++) {
        domrec_query(dr, dr->mx[i].host, DNS_A, i);
        if (route_use_ipv6(dr)) {
            domrec_query(dr, dr->mx[i].host, DNS_AAAA, i);
        }
    }
}

static void
domrec_on_mx(struct domrec *dr, const struct dns_answer *a)
{
    int64_t purge = conf_global(dr->ql->conf, "dns_failures_to_purge")->val.i;
    int64_t fallback = conf_global(dr->ql->conf, "mx_failures_fallback_to_a")->val.i;

    size_t first = dr->nmx; /* Routes may have put route hosts before the MX hosts */

    switch (a->status) {
    case DNS_OK:
        if (a->n == 1 && a->mx[0].host[0] == '\0') {
            domrec_fail(dr, true, 556, "5.1.10", "[internal] %s does not accept mail (null MX)",
                        dr->domain);
            return;
        }
        if (dr->ttl == 0 || a->ttl < dr->ttl) {
            dr->ttl = a->ttl;
        }
        dr->mx = xrealloc(dr->mx, (dr->nmx + a->n) * sizeof(*dr->mx));
        for (size_t i = 0; i < a->n; i++) {
            dr->mx[dr->nmx].pref = a->mx[i].pref;
            dr->mx[dr->nmx].port = dr->port;
            dr->mx[dr->nmx].host = xstrdup(a->mx[i].host);
            dr->nmx++;
        }
        if (first == 0) {
            dr->best_pref = a->mx[0].pref; /* sorted by preference */
        }
        break;
    case DNS_NODATA:
        /* implicit MX: the domain's own addresses, preference 0 */
        if (dr->ttl == 0 || a->ttl < dr->ttl) {
            dr->ttl = a->ttl;
        }
        dr->mx = xrealloc(dr->mx, (dr->nmx + 1) * sizeof(*dr->mx));
        dr->mx[dr->nmx] = (struct route_mx){0, dr->port, xstrdup(dr->domain)};
        dr->nmx++;
        break;
    case DNS_NXDOMAIN:
        domrec_fail(dr, true, 550, "5.1.2", "[internal] domain %s does not exist (NXDOMAIN)",
                    dr->domain);
        return;
    default:
        dr->dns_failures++;
        if (purge > 0 && dr->dns_failures >= (unsigned)purge) {
            domrec_fail(dr, true, 554, "5.4.4", "[internal] DNS lookup of %s failed %u times: %s",
                        dr->domain, dr->dns_failures, a->why ? a->why : "temporary failure");
            return;
        }
        if (fallback > 0 && dr->dns_failures >= (unsigned)fallback) {
            dr->mx_fallback_a = true; /* try the domain's own address next time */
        }
        domrec_fail(dr, false, 451, "4.4.3", "[internal] DNS MX lookup of %s failed: %s",
                    dr->domain, a->why ? a->why : "temporary failure");
        return;
    }
    domrec_lookup_addresses_from(dr, first);
}

static void
domrec_on_address(struct domrec *dr, size_t mx_index, const struct dns_answer *a)
{
    const struct route_mx *mx = &dr->mx[mx_index];

    if (a->status != DNS_OK) {
        return;
    }
    if (dr->best_only && mx->pref != dr->best_pref) {
        return; /* only_use_best_mx_for_relay_domains */
    }
    for (size_t i = 0; i < a->n; i++) {
        domrec_add_target(dr, mx->pref, mx->host, a->addrs[i].family, a->addrs[i].addr, mx->port);
    }
    if (a->ttl < dr->ttl || dr->ttl == 0) {
        dr->ttl = a->ttl;
    }
    if (!dr->fully && dr->state == DOMREC_RESOLVING && mx->pref == dr->best_pref && dr->ntargets) {
        /* fully_resolve_before_smtp = false: start with the best exchange's addresses */
        domrec_settle(dr, DOMREC_READY);
    } else if (dr->state == DOMREC_READY) {
        qsort(dr->targets, dr->ntargets, sizeof(*dr->targets), route_target_cmp);
    }
}

static void
route_on_answer(const struct dns_answer *a, void *arg)
{
    struct route_lookup *rl = arg;
    struct domrec *dr = rl->dr;
    size_t mx_index = rl->mx_index;

    domrec_forget_lookup(dr, rl);
    free(rl);
    if (mx_index == SIZE_MAX) {
        domrec_on_mx(dr, a);
    } else {
        domrec_on_address(dr, mx_index, a);
    }
    if (dr->state == DOMREC_RESOLVING && dr->pending == 0) {
        domrec_settle(dr, DOMREC_READY);
    }
}

/* ---- configured routes ---- */

/* "smtp://host-or-ip?pref=P&port=O&ttl=T&type=mx|a", "host", or "host:port". */
static void
domrec_add_route(struct domrec *dr, const char *spec, uint16_t default_port)
{
    char host[256] = "";
    unsigned pref = 0, port = default_port;
    const char *p = spec;
    unsigned char addr[16];

    if (strncasecmp(p, "smtp://", 7) == 0) {
        p += 7;
    }
    {
        size_t n = strcspn(p, "?:");

        if (n >= sizeof(host)) {
            return;
        }
        memcpy(host, p, n);
        host[n] = '\0';
        p += n;
    }
    if (*p == ':') {
        port = (unsigned)strtoul(p + 1, NULL, 10);
        p += strcspn(p, "?");
    }
    for (p = *p == '?' ? p + 1 : p; *p;) {
        if (strncasecmp(p, "pref=", 5) == 0) {
            pref = (unsigned)strtoul(p + 5, NULL, 10);
        } else if (strncasecmp(p, "port=", 5) == 0) {
            port = (unsigned)strtoul(p + 5, NULL, 10);
        }
        p += strcspn(p, "&");
        p += *p == '&';
    }
    if (strcasecmp(host, "__mx__") == 0) {
        return; /* handled by the caller: resolve the domain's MX */
    }
    if (inet_pton(AF_INET, host, addr) == 1) {
        domrec_add_target(dr, (uint16_t)pref, "", AF_INET, addr, (uint16_t)port);
    } else if (inet_pton(AF_INET6, host, addr) == 1) {
        domrec_add_target(dr, (uint16_t)pref, "", AF_INET6, addr, (uint16_t)port);
    } else {
        /* a host name: resolve its addresses like an exchange */
        dr->mx = xrealloc(dr->mx, (dr->nmx + 1) * sizeof(*dr->mx));
        dr->mx[dr->nmx].pref = (uint16_t)pref;
        dr->mx[dr->nmx].port = (uint16_t)port;
        dr->mx[dr->nmx].host = xstrdup(host);
        dr->nmx++;
    }
}

static void
domrec_resolve_routes(struct domrec *dr, const struct qcfg *cfg)
{
    const char *key = dr->key;
    bool mx = false;

    if (strncmp(key, "gateway:", 8) == 0) {
        char *gw = xstrdup(key + 8);
        char *bar = strrchr(gw, '|');

        if (bar) {
            *bar = '\0'; /* the "|port" part only keeps records apart */
        }
        domrec_add_route(dr, gw, cfg->port);
        free(gw);
    } else {
        char *list = xstrdup(key + 7);
        char *at = strrchr(list, '@');

        if (at) {
            *at = '\0';
        }
        for (char *save = NULL, *tok = strtok_r(list, " ", &save); tok;
             tok = strtok_r(NULL, " ", &save)) {
            mx |= strcasecmp(tok, "__mx__") == 0;
            domrec_add_route(dr, tok, cfg->port);
        }
        free(list);
    }
    dr->ttl = 3600;
    if (mx) {
        domrec_query(dr, dr->domain, DNS_MX, SIZE_MAX);
    }
    if (dr->nmx) {
        domrec_lookup_addresses_from(dr, 0);
    }
    if (dr->pending == 0) {
        domrec_settle(dr, DOMREC_READY);
    }
}

/* only_use_best_mx_for_relay_domains: for domains listed in relay_domains. */
static bool
route_best_mx_only(const struct domrec *dr)
{
    const struct conf *c = dr->ql->conf;
    const struct conf_setting *rd = conf_global(c, "relay_domains");

    if (!conf_global(c, "only_use_best_mx_for_relay_domains")->val.b || conf_setting_unset(rd)) {
        return false;
    }
    return reception_domain_listed((const char *const *)rd->val.list, rd->val.n,
                                   strv_from_cstr(dr->domain));
}

static void
domrec_resolve(struct domrec *dr)
{
    const struct qcfg *cfg = NULL;
    struct list_node *n = list_first(&dr->waiters);

    domrec_cancel(dr);
    domrec_clear_targets(dr);
    dr->state = DOMREC_RESOLVING;
    dr->ttl = 0;
    if (n) {
        cfg = &container_of(n, struct dqueue, wait_node)->cfg;
    }
    dr->port = cfg ? cfg->port : 25;
    dr->fully = cfg ? cfg->fully_resolve : true;
    dr->best_only = route_best_mx_only(dr);
    dr->best_pref = 0;
    if (strncmp(dr->key, "routes:", 7) == 0 || strncmp(dr->key, "gateway:", 8) == 0) {
        struct qcfg dflt = {.port = 25};

        domrec_resolve_routes(dr, cfg ? cfg : &dflt);
        return;
    }
    if (dr->mx_fallback_a) {
        dr->mx_fallback_a = false;
        dr->mx = xcalloc(1, sizeof(*dr->mx));
        dr->mx[0].host = xstrdup(dr->domain);
        dr->mx[0].port = dr->port;
        dr->nmx = 1;
        domrec_lookup_addresses_from(dr, 0);
        return;
    }
    domrec_query(dr, dr->domain, DNS_MX, SIZE_MAX);
}

bool
domrec_ready(struct domrec *dr, struct dqueue *dq)
{
    uint64_t now = clock_mono_ms();

    if (dr->state == DOMREC_READY && now < dr->expires_ms) {
        return true;
    }
    if (dr->state == DOMREC_RESOLVING) {
        list_remove(&dq->wait_node);
        list_push_back(&dr->waiters, &dq->wait_node);
        return false;
    }
    if ((dr->state == DOMREC_TEMPFAIL || dr->state == DOMREC_PERMFAIL) && now < dr->expires_ms) {
        return false; /* the caller looks at the failure */
    }
    list_remove(&dq->wait_node);
    list_push_back(&dr->waiters, &dq->wait_node);
    domrec_resolve(dr);
    return dr->state == DOMREC_READY;
}

/* ---- failing addresses ---- */

static struct strv
route_ip_key(const struct route_target *t, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s:%u", t->ip, t->port);

    return strv_make(buf, n < 0 ? 0 : (size_t)n);
}

bool
route_ip_failing(struct qloop *ql, const struct route_target *t, uint64_t now, uint64_t *until)
{
    char key[96];
    uintptr_t v = (uintptr_t)map_get(&ql->failing, route_ip_key(t, key, sizeof(key)));

    if (v == 0) {
        return false;
    }
    if (v <= now) {
        map_del(&ql->failing, route_ip_key(t, key, sizeof(key)));
        return false;
    }
    *until = v;
    return true;
}

void
route_mark_failing(struct qloop *ql, const struct route_target *t, uint64_t until)
{
    char key[96];

    map_put(&ql->failing, route_ip_key(t, key, sizeof(key)), (void *)(uintptr_t)until);
}
