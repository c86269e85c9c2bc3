/*
 * qcfg: the resolved configuration of one (binding, domain) queue.
 *
 * Resolved once per configuration generation from the outbound fallback
 * chain (binding::domain ... global), so the hot path reads plain fields.
 * TLS client contexts are built once per option set and shared by all
 * loops (the queue's map, under its lock).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/mem.h"
#include "net/tls.h"
#include "queue/queue_int.h"

struct qcfg_chain {
    const struct conf *c;
    struct conf_chain ch;
};

static const struct conf_setting *
q_get(const struct qcfg_chain *qc, const char *name)
{
    return conf_chain_get_name(qc->c, &qc->ch, name);
}

static int64_t
q_int(const struct qcfg_chain *qc, const char *name)
{
    return q_get(qc, name)->val.i;
}

static bool
q_bool(const struct qcfg_chain *qc, const char *name)
{
    return q_get(qc, name)->val.b;
}

static const char *
q_str(const struct qcfg_chain *qc, const char *name)
{
    const struct conf_setting *st = q_get(qc, name);

    return conf_setting_unset(st) ? NULL : st->val.s;
}

static unsigned
q_ms(const struct qcfg_chain *qc, const char *name)
{
    int64_t s = q_int(qc, name);

    return s <= 0 ? 0 : (unsigned)(s * 1000);
}

static SSL_CTX *
qcfg_tls_ctx(struct queue *q, const struct tls_client_opts *o)
{
    struct buf key;
    SSL_CTX *ctx;

    buf_init(&key, 16384);
    buf_printf(&key, "%s|%s|%s|%s|%s", o->ca ? o->ca : "", o->ciphers ? o->ciphers : "",
               o->protocols ? o->protocols : "", o->certificate ? o->certificate : "",
               o->key ? o->key : "");
    pthread_mutex_lock(&q->lock);
    ctx = map_get(&q->tls_ctxs, buf_data(&key));
    if (ctx == NULL) {
        struct buf why;

        buf_init(&why, 4096);
        ctx = tls_client_ctx_new(o, &why);
        if (ctx == NULL) {
            log_error("tls_client_setup_failed %.*s", STRV_FMT(buf_data(&why)));
        } else {
            map_put(&q->tls_ctxs, buf_data(&key), ctx);
        }
        buf_release(&why);
    }
    if (ctx) {
        SSL_CTX_up_ref(ctx);
    }
    pthread_mutex_unlock(&q->lock);
    buf_release(&key);
    return ctx;
}

static void
qcfg_tls(struct qcfg *cfg, struct qloop *ql, const struct qcfg_chain *qc)
{
    const char *tls = q_str(qc, "tls");
    const char *verify = q_str(qc, "tls_verify");
    struct tls_client_opts o = {
        .ca = q_str(qc, "tls_ca"),
        .ciphers = q_str(qc, "tls_ciphers"),
        .protocols = q_str(qc, "tls_protocols"),
    };

    cfg->client.tls = strcasecmp(tls, "required") == 0      ? SMTP_CLIENT_TLS_REQUIRED
                      : strcasecmp(tls, "ifavailable") == 0 ? SMTP_CLIENT_TLS_IFAVAILABLE
                                                            : SMTP_CLIENT_TLS_NO;
    cfg->client.verify = strcasecmp(verify, "host") == 0 ? SMTP_CLIENT_VERIFY_HOST
                         : strcasecmp(verify, "ca") == 0 ? SMTP_CLIENT_VERIFY_CA
                                                         : SMTP_CLIENT_VERIFY_NO;
    cfg->tls_fallback = q_bool(qc, "tls_ifavailable_fallback");
    if (cfg->client.tls != SMTP_CLIENT_TLS_NO) {
        cfg->tls_ctx = qcfg_tls_ctx(ql->q, &o);
        if (cfg->tls_ctx == NULL && cfg->client.tls == SMTP_CLIENT_TLS_IFAVAILABLE) {
            cfg->client.tls = SMTP_CLIENT_TLS_NO;
        }
    }
    cfg->client.tls_ctx = cfg->tls_ctx;
}

static void
qcfg_timeouts(struct qcfg *cfg, const struct qcfg_chain *qc)
{
    struct smtp_client_cfg *c = &cfg->client;

    c->connect_ms = q_ms(qc, "connect_timeout");
    c->ehlo_ms = q_ms(qc, "ehlo_timeout");
    c->mailfrom_ms = q_ms(qc, "mailfrom_timeout");
    c->rcptto_ms = q_ms(qc, "rcptto_timeout");
    c->data_ms = c->rcptto_ms;
    c->body_ms = q_ms(qc, "body_timeout");
    c->rset_ms = q_ms(qc, "rset_timeout");
    c->starttls_ms = c->ehlo_ms;
    c->idle_ms = q_ms(qc, "idle_timeout");
    cfg->idle_ms = c->idle_ms;
}

static void
qcfg_retry(struct qcfg *cfg, const struct qcfg_chain *qc)
{
    const struct conf_setting *mr = q_get(qc, "max_retries");

    cfg->retry_interval = q_int(qc, "retry_interval");
    cfg->max_retry_interval = q_int(qc, "max_retry_interval");
    cfg->expiration = q_int(qc, "message_expiration");
    cfg->never_retry = q_bool(qc, "never_retry");
    cfg->never_attempt_expired = q_bool(qc, "never_attempt_expired_messages");
    if (mr->val.b) {
        cfg->retries = QCFG_RETRIES_COUNT;
        cfg->max_retries = mr->val.i < 0 ? 0 : (unsigned)mr->val.i;
    } else {
        cfg->retries = mr->val.i == 1 ? QCFG_RETRIES_NONE : QCFG_RETRIES_AUTO;
    }
}

static void
qcfg_identity(struct qcfg *cfg, struct qloop *ql, const struct qcfg_chain *qc, const char *domain)
{
    const char *ehlo = q_str(qc, "ehlo_hostname");
    const char *md = q_str(qc, "mailerdaemon");
    const char *bind = q_str(qc, "bind_address");
    const char *method = q_str(qc, "delivery_method");

    if (ehlo == NULL || strcmp(ehlo, "__hostname__") == 0) {
        ehlo = q_str(qc, "hostname") ? q_str(qc, "hostname") : ql->q->hostname;
    }
    cfg->ehlo_name = xstrdup(ehlo);
    cfg->client.ehlo_name = cfg->ehlo_name;
    cfg->mailerdaemon = md ? xstrdup(md) : xasprintf("mailer-daemon@%s", ql->q->hostname);
    cfg->client.lmtp = method && strcasecmp(method, "lmtp") == 0;
    cfg->port =
        (uint16_t)(cfg->client.lmtp ? q_int(qc, "lmtp_port") : q_int(qc, "remote_smtp_port"));
    cfg->client.send_8bitmime = strcasecmp(q_str(qc, "send_8bitmime"), "ifavailable") == 0;
    cfg->transform_8bit = outconv_mode_parse(q_str(qc, "transform_8bitmime_content"));
    memset(&cfg->bind, 0, sizeof(cfg->bind));
    cfg->bind_len = 0;
    if (bind && strcmp(bind, "*") != 0) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&cfg->bind;
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&cfg->bind;

        if (inet_pton(AF_INET, bind, &s4->sin_addr) == 1) {
            s4->sin_family = AF_INET;
            cfg->bind_len = sizeof(*s4);
        } else if (inet_pton(AF_INET6, bind, &s6->sin6_addr) == 1) {
            s6->sin6_family = AF_INET6;
            cfg->bind_len = sizeof(*s6);
        } else {
            log_error("bind_address_invalid value=%s domain=%s: using the kernel's choice", bind,
                      domain);
        }
    }
}

/* Which domain record the queue uses: the domain, or its configured routes. */
static char *
qcfg_route_key(const struct qcfg_chain *qc, const char *domain, uint16_t port)
{
    const struct conf_setting *routes = q_get(qc, "routes");
    const char *gateway = q_str(qc, "gateway");
    struct buf k;

    if (conf_setting_unset(routes) && gateway == NULL) {
        /* the port is part of the route: a reload that changes it gets a new record */
        return xasprintf("%s|%u", domain, (unsigned)port);
    }
    buf_init(&k, BUF_UNLIMITED);
    if (gateway) {
        buf_printf(&k, "gateway:%s|%u", gateway, (unsigned)port);
    } else {
        buf_append_cstr(&k, "routes:");
        for (size_t i = 0; i < routes->val.n; i++) {
            buf_printf(&k, "%s%s", i ? " " : "", routes->val.list[i]);
        }
        buf_printf(&k, "@%s|%u", domain, (unsigned)port); /* "__mx__" entries depend on both */
    }
    return buf_steal_cstr(&k);
}

void
qcfg_resolve(struct qcfg *cfg, struct qloop *ql, const char *binding, const char *domain)
{
    struct qcfg_chain qc = {.c = ql->conf};
    const struct conf_setting *st;
    const char *bh;

    qcfg_release(cfg);
    memset(cfg, 0, sizeof(*cfg));
    cfg->gen = ql->gen;
    conf_chain_outbound(ql->conf, binding, domain, &qc.ch);
    cfg->max_conns = q_int(&qc, "max_outbound_connections");
    cfg->max_deliveries = (unsigned)q_int(&qc, "max_deliveries_per_connection");
    cfg->max_rcpts_batch = (unsigned)q_int(&qc, "max_recipients_per_batch");
    if (cfg->max_rcpts_batch == 0) {
        cfg->max_rcpts_batch = 100;
    }
    cfg->max_rcpts_conn = (unsigned)q_int(&qc, "max_recipients_per_connection");
    st = q_get(&qc, "connection_allocation_aggressiveness");
    cfg->aggressiveness = st->val.b ? (double)st->val.i / 100.0 : (st->val.i == 1 ? 0.75 : 0.3);
    if (cfg->aggressiveness <= 0 || cfg->aggressiveness > 1) {
        cfg->aggressiveness = 0.3;
    }
    qcfg_retry(cfg, &qc);
    cfg->suspended = q_bool(&qc, "suspend_delivery");
    bh = q_str(&qc, "blackhole");
    cfg->blackhole = strcasecmp(bh, "internal") == 0 ? QCFG_BLACKHOLE_INTERNAL
                     : strcasecmp(bh, "false") == 0  ? QCFG_BLACKHOLE_NO
                                                     : QCFG_BLACKHOLE_YES;
    cfg->generate_bounces = q_bool(&qc, "generate_bounces");
    cfg->mx_failures_to_delay = (unsigned)q_int(&qc, "mx_failures_to_delay");
    cfg->connect_timeout_to_delay = q_int(&qc, "connect_timeout_to_delay");
    cfg->host_failure_retry = q_int(&qc, "host_failure_retry");
    cfg->fully_resolve = q_bool(&qc, "fully_resolve_before_smtp");
    qcfg_timeouts(cfg, &qc);
    qcfg_identity(cfg, ql, &qc, domain);
    qcfg_tls(cfg, ql, &qc);
    st = q_get(&qc, "scope_max_outbound_connections");
    cfg->scope_max = conf_setting_unset(st) ? NULL : st;
    cfg->route_key = qcfg_route_key(&qc, domain, cfg->port);
}

void
qcfg_release(struct qcfg *cfg)
{
    SSL_CTX_free(cfg->tls_ctx);
    free(cfg->route_key);
    free(cfg->ehlo_name);
    free(cfg->mailerdaemon);
    cfg->tls_ctx = NULL;
    cfg->route_key = cfg->ehlo_name = cfg->mailerdaemon = NULL;
}
