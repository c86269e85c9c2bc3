/*
 * reception: inbound sessions to spooled messages (see reception.h).
 */
#include "queue/reception.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/list.h"
#include "core/log.h"
#include "core/map.h"
#include "core/mem.h"
#include "log/mainlog.h"
#include "msg/hdrscan.h"
#include "net/conn.h"
#include "net/tls.h"
#include "queue/reception_cfg.h"
#include "queue/throttle.h"
#include "smtp/smtp_authdb.h"
#include "smtp/smtp_server.h"

struct reception_listen {
    struct reception *r;
    enum conf_scope_type kind;
    char *name;
    atomic_uint sessions; /* open sessions on this address, all loops */
};

struct reception_loop {
    struct loop *loop;
    struct conf *conf; /* ref: this loop's current configuration */
    struct list_node sessions;
};

struct reception {
    struct reception_opts o;
    struct reception_loop *loops;
    unsigned nloops;
    struct reception_listen **listens;
    size_t nlistens;
    size_t listens_cap;
    struct spool_idgen connids;
    struct throttle_set *throttles;
    struct reception_cfg_cache *cache; /* TLS contexts, password files */
    atomic_bool memory_high;
    atomic_uint_fast64_t sessions_total;
    atomic_uint_fast64_t received;
    atomic_uint_fast64_t rejected;
    atomic_uint_fast64_t active;
    char hostname[256];
};

/* One session. */
struct rsess {
    struct list_node node;
    struct reception *r;
    struct reception_loop *rl;
    struct reception_listen *listen;
    struct conf *conf; /* ref: the snapshot this session was configured from */
    struct reception_session_cfg c;
    struct smtp_server *srv;
    char connid[SPOOL_ID_SIZE];
    char remote[80];
    char remote_ip[80];
    bool has_headers;
    char local[80];
    /* the message being received */
    struct spool_writer *w;
    int write_err;
    char msgid[SPOOL_ID_SIZE];
    struct hdrscan hs;
    int64_t ctime_us;
    uint64_t size;
};

enum { HDR_MESSAGE_ID, HDR_DATE };
static const char *const reception_hdrs[] = {"Message-ID", "Date"};

/* ---- loops and configuration ---- */

static struct reception_loop *
reception_loop_of(struct reception *r, struct loop *lp)
{
    return &r->loops[loop_index(lp)];
}

struct reception *
reception_new(const struct reception_opts *o, struct conf *c)
{
    struct reception *r = XNEW(struct reception);

    r->o = *o;
    r->nloops = loop_group_count(o->loops);
    r->loops = xcalloc(r->nloops, sizeof(*r->loops));
    for (unsigned i = 0; i < r->nloops; i++) {
        r->loops[i].loop = loop_group_get(o->loops, i);
        r->loops[i].conf = conf_ref(c);
        list_init(&r->loops[i].sessions);
    }
    spool_idgen_init_random(&r->connids);
    r->throttles = throttle_set_new();
    r->cache = reception_cfg_cache_new();
    if (gethostname(r->hostname, sizeof(r->hostname)) != 0 || r->hostname[0] == '\0') {
        snprintf(r->hostname, sizeof(r->hostname), "localhost");
    }
    r->hostname[sizeof(r->hostname) - 1] = '\0';
    return r;
}

void
reception_free(struct reception *r)
{
    if (r == NULL) {
        return;
    }
    for (unsigned i = 0; i < r->nloops; i++) {
        conf_unref(r->loops[i].conf);
    }
    for (size_t i = 0; i < r->nlistens; i++) {
        free(r->listens[i]->name);
        free(r->listens[i]);
    }
    free(r->listens);
    free(r->loops);
    throttle_set_free(r->throttles);
    reception_cfg_cache_free(r->cache);
    free(r);
}

struct reception_conf_msg {
    struct reception_loop *rl;
    struct conf *conf; /* ref, given to the loop */
};

static void
reception_swap_conf(struct loop *lp, void *arg)
{
    struct reception_conf_msg *m = arg;

    conf_unref(m->rl->conf);
    m->rl->conf = m->conf;
    free(m);
}

void
reception_set_conf(struct reception *r, struct conf *c)
{
    for (unsigned i = 0; i < r->nloops; i++) {
        struct reception_conf_msg *m = XNEW(struct reception_conf_msg);

        m->rl = &r->loops[i];
        m->conf = conf_ref(c);
        loop_post(r->loops[i].loop, reception_swap_conf, m);
    }
}

struct reception_listen *
reception_listen_add(struct reception *r, enum conf_scope_type kind, const char *name)
{
    struct reception_listen *l = XNEW(struct reception_listen);

    l->r = r;
    l->kind = kind;
    l->name = xstrdup(name);
    r->listens = xgrow(r->listens, &r->listens_cap, r->nlistens + 1, sizeof(*r->listens));
    r->listens[r->nlistens++] = l;
    return l;
}

struct reception *
reception_listen_owner(const struct reception_listen *l)
{
    return l->r;
}

/* ---- logging ---- */

static void
reception_log_reject(struct smtp_server *srv, void *arg, const char *phase,
                     const struct smtp_reply *rep)
{
    struct rsess *s = arg;
    struct reception *r = s->r;
    struct rejectlog_entry e = {0};
    struct buf line, ctx;
    char remote[80];

    atomic_fetch_add(&r->rejected, 1);
    if (r->o.rejectlog == NULL || !s->c.log_rejections) {
        return;
    }
    buf_init(&line, 8192);
    buf_init(&ctx, 2048);
    buf_append_cstr(&ctx, "ehlo_domain=");
    for (const char *p = smtp_server_helo(srv); *p; p++) {
        if (*p == ',' || *p == '=' || *p == ']' || *p == '[') {
            buf_printf(&ctx, "\\x%02x", (unsigned char)*p);
        } else {
            buf_append(&ctx, p, 1);
        }
    }
    if (smtp_server_auth_user(srv)) {
        buf_printf(&ctx, ",auth_user=%s", smtp_server_auth_user(srv));
    }
    if (smtp_server_ssl(srv)) {
        buf_append_cstr(&ctx, ",tls=on");
    }
    e.ts = clock_wall_s();
    conn_addr_str(smtp_server_peer(srv), remote, sizeof(remote)); /* XCLIENT-aware */
    e.remote = remote;
    e.local = s->local;
    e.connid = s->connid;
    e.pathway = s->c.pathway;
    e.pathway_group = s->c.pathway_group;
    e.phase = phase;
    e.code = rep->code;
    e.module = "esmtp";
    e.ctxconn = buf_data(&ctx);
    e.reason = rep->text;
    if (rep->enh[0]) {
        struct buf reason;

        buf_init(&reason, 1024);
        buf_printf(&reason, "%d %s %.*s", rep->code, rep->enh, STRV_FMT(rep->text));
        e.reason = buf_data(&reason);
        rejectlog_format(&line, &e);
        buf_release(&reason);
    } else {
        rejectlog_format(&line, &e);
    }
    log_file_write(r->o.rejectlog, buf_data(&line).ptr, buf_len(&line));
    buf_release(&line);
    buf_release(&ctx);
}

/* ---- session policy ---- */

static void
reception_on_connect(struct smtp_server *srv, void *arg, struct smtp_reply *rep)
{
    struct rsess *s = arg;

    if (s->c.listener_sessions && atomic_load(&s->listen->sessions) > s->c.listener_sessions) {
        *rep = SMTP_REPLY(421, "4.7.0", "Too many sessions on this listener; try again later");
        return;
    }
    if (atomic_load(&s->r->memory_high)) {
        *rep = SMTP_REPLY(421, "4.3.2", "System resources exhausted; try again later");
    }
}

static void
reception_on_mail(struct smtp_server *srv, void *arg, const struct smtp_server_txn *t,
                  struct smtp_reply *rep)
{
    struct rsess *s = arg;

    if (atomic_load(&s->r->memory_high)) {
        *rep = SMTP_REPLY(451, "4.3.1", "Insufficient system resources; try again later");
        return;
    }
    if (s->c.inbound_throttle && !throttle_take(s->r->throttles, s->c.inbound_throttle,
                                                &s->c.inbound_throttle->val.thr, clock_mono_ms())) {
        *rep = SMTP_REPLY(451, "4.7.1", "Reception rate limit exceeded; try again later");
    }
}

bool
reception_domain_listed(const char *const *list, size_t n, struct strv domain)
{
    for (size_t i = 0; i < n; i++) {
        struct strv pat = strv_from_cstr(list[i]);

        if (strv_has_prefix(pat, STRV_LIT("*."))) {
            struct strv suffix = strv_from(pat, 1); /* ".x.com" */

            if (domain.len > suffix.len && strv_has_suffix_ci(domain, suffix)) {
                return true;
            }
        } else if (strv_eq_ci(pat, domain)) {
            return true;
        }
    }
    return false;
}

static bool
reception_can_relay(struct rsess *s)
{
    struct smtp_server *srv = s->srv;
    SSL *ssl = smtp_server_ssl(srv);

    if (strcmp(smtp_server_peer_ip(srv), s->remote_ip) != 0) {
        struct reception_session_cfg tmp;

        reception_session_cfg_resolve(&tmp, s->conf, s->r->cache, s->listen->kind, s->listen->name,
                                      smtp_server_peer(srv), s->r->hostname);
        s->c.relay_by_ip = tmp.relay_by_ip;
        s->c.open_relay = tmp.open_relay;
        reception_session_cfg_release(&tmp);
        snprintf(s->remote_ip, sizeof(s->remote_ip), "%s", smtp_server_peer_ip(srv));
    }

    return s->c.relay_by_ip || s->c.open_relay || smtp_server_auth_user(srv) != NULL ||
           (ssl && s->c.tls_verified_can_relay && tls_peer_verified(ssl));
}

/* Blackhole = true or inline for the recipient's domain refuses it here (Momentum). */
static bool
reception_blackholed(struct rsess *s, struct strv domain)
{
    struct conf_chain ch;
    char dom[256];
    const char *v;

    strv_copy(domain, dom, sizeof(dom));
    conf_chain_outbound(s->conf, NULL, dom, &ch);
    v = conf_chain_get_name(s->conf, &ch, "blackhole")->val.s;
    return v && (strcasecmp(v, "true") == 0 || strcasecmp(v, "inline") == 0);
}

static void
reception_on_rcpt(struct smtp_server *srv, void *arg, const struct smtp_server_txn *t,
                  const struct smtp_server_rcpt *rc, struct smtp_reply *rep)
{
    struct rsess *s = arg;
    struct strv addr = strv_from_cstr(rc->addr);
    ptrdiff_t at = strv_rchr(addr, '@');
    struct strv domain = at < 0 ? STRV_NULL : strv_from(addr, (size_t)at + 1);

    if (reception_blackholed(s, domain)) {
        *rep = SMTP_REPLY(550, "5.7.1", "Delivery to this domain is disabled");
        return;
    }
    if (reception_can_relay(s) || (at < 0 && strv_eq_cstr_ci(addr, "postmaster"))) {
        return;
    }
    if (s->c.relay_domains &&
        reception_domain_listed(s->c.relay_domains, s->c.nrelay_domains, domain)) {
        return;
    }
    *rep = SMTP_REPLY(550, "5.7.1", "Relaying denied");
}

static int
reception_auth_check(struct smtp_server *srv, void *arg, struct strv user, struct strv pass)
{
    struct rsess *s = arg;

    if (s->c.authdb == NULL) {
        return -EACCES;
    }
    return smtp_authdb_check(s->c.authdb, user, pass);
}

/* ---- the message ---- */

static void
reception_release_writer(struct rsess *s)
{
    if (s->w) {
        spool_writer_abort(s->w);
        s->w = NULL;
    }
}

static void
reception_data_begin(struct smtp_server *srv, void *arg, const struct smtp_server_txn *t,
                     struct smtp_reply *rep)
{
    struct rsess *s = arg;
    struct spool_envelope env = {0};
    struct spool_rcpt *rcpts = xcalloc(t->nrcpts, sizeof(*rcpts));
    int err = 0;

    for (size_t i = 0; i < t->nrcpts; i++) {
        rcpts[i].addr = strv_from_cstr(t->rcpts[i].addr);
        rcpts[i].notify = t->rcpts[i].notify;
        if (t->rcpts[i].orcpt_type) {
            rcpts[i].orcpt_type = strv_from_cstr(t->rcpts[i].orcpt_type);
            rcpts[i].orcpt_addr = strv_from_cstr(t->rcpts[i].orcpt);
        }
    }
    s->ctime_us = clock_wall_us();
    env.ctime_us = s->ctime_us;
    env.sender = strv_from_cstr(t->sender);
    env.rcpts = rcpts;
    env.rcpt_count = t->nrcpts;
    env.ret = t->mail.ret == SMTP_RET_FULL   ? SPOOL_RET_FULL
              : t->mail.ret == SMTP_RET_HDRS ? SPOOL_RET_HDRS
                                             : SPOOL_RET_UNSET;
    if (t->mail.has_envid) {
        env.envid = strv_make(t->mail.envid, t->mail.envid_len);
    }
    env.body_type = t->mail.body == SMTP_BODY_8BITMIME     ? SPOOL_BODY_8BITMIME
                    : t->mail.body == SMTP_BODY_BINARYMIME ? SPOOL_BODY_BINARYMIME
                                                           : SPOOL_BODY_7BIT;
    env.smtputf8 = t->mail.smtputf8;
    env.protocol = smtp_server_esmtp(srv) ? STRV_LIT("esmtp") : STRV_LIT("smtp");
    env.source_ip = strv_from_cstr(smtp_server_peer_ip(srv));
    env.helo = strv_from_cstr(smtp_server_helo(srv));
    if (smtp_server_auth_user(srv)) {
        env.auth_user = strv_from_cstr(smtp_server_auth_user(srv));
    }
    if (s->c.pathway) {
        env.listener = strv_from_cstr(s->c.pathway);
    }
    s->w = spool_writer_begin(s->r->o.spool, &env, s->msgid, &err);
    free(rcpts);
    if (s->w == NULL) {
        log_error("spool_create_failed sid=%s error=\"%s\"", s->connid, err_str(err));
        *rep = SMTP_REPLY(452, "4.3.1", "Insufficient system storage");
        return;
    }
    s->write_err = 0;
    s->size = 0;
    hdrscan_init(&s->hs, reception_hdrs, 2);
}

static int
reception_data_write(struct smtp_server *srv, void *arg, const char *p, size_t len)
{
    struct rsess *s = arg;

    if (s->write_err) {
        return s->write_err;
    }
    if (!s->hs.done) {
        hdrscan_feed(&s->hs, p, len);
    }
    s->size += len;
    s->write_err = spool_writer_write(s->w, p, len);
    if (s->write_err) {
        log_error("spool_write_failed sid=%s mid=%s error=\"%s\"", s->connid, s->msgid,
                  err_str(s->write_err));
    }
    return s->write_err;
}

static void
reception_date(char *out, size_t size, int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    strftime(out, size, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

/* Received, and Message-ID and Date when missing and wanted. */
static int
reception_prepend(struct rsess *s, const struct smtp_server_txn *t, struct buf *out,
                  struct smtp_reply *rep)
{
    struct smtp_server *srv = s->srv;
    SSL *ssl = smtp_server_ssl(srv);
    char date[64];
    const char *proto;

    reception_date(date, sizeof(date), s->ctime_us / 1000000);
    if (!(s->has_headers && hdrscan_found(&s->hs, HDR_MESSAGE_ID)) &&
        s->c.messageid_policy == RECEPTION_HDR_PEDANTIC) {
        *rep = SMTP_REPLY(550, "5.6.0", "Message-ID header required");
        return -1;
    }
    if (!(s->has_headers && hdrscan_found(&s->hs, HDR_DATE)) &&
        s->c.date_policy == RECEPTION_HDR_PEDANTIC) {
        *rep = SMTP_REPLY(550, "5.6.0", "Date header required");
        return -1;
    }
    if (s->c.trace_headers) {
        proto = !smtp_server_esmtp(srv)             ? "SMTP"
                : ssl && smtp_server_auth_user(srv) ? "ESMTPSA"
                : ssl                               ? "ESMTPS"
                : smtp_server_auth_user(srv)        ? "ESMTPA"
                                                    : "ESMTP";
        buf_printf(out, "Received: from %s ([%s%s])",
                   smtp_server_helo(srv)[0] ? smtp_server_helo(srv) : "unknown",
                   strchr(smtp_server_peer_ip(srv), ':') ? "IPv6:" : "", smtp_server_peer_ip(srv));
        if (ssl) {
            buf_append_cstr(out, "\r\n\t");
            tls_received_clause(ssl, out);
        }
        buf_printf(out, "\r\n\tby %s (celer) with %s id %s", s->c.received_hostname, proto,
                   s->msgid);
        if (t->nrcpts == 1) {
            buf_printf(out, "\r\n\tfor <%s>", t->rcpts[0].addr);
        }
        buf_printf(out, "; %s\r\n", date);
    }
    if (!(s->has_headers && hdrscan_found(&s->hs, HDR_MESSAGE_ID)) &&
        s->c.messageid_policy == RECEPTION_HDR_IFNEEDED) {
        char local[SPOOL_ID_SIZE];

        snprintf(local, sizeof(local), "%s", s->msgid);
        for (char *p = local; *p; p++) {
            *p = *p == '/' ? '.' : *p;
        }
        buf_printf(out, "Message-ID: <%s@%s>\r\n", local, s->c.hostname);
    }
    if (!(s->has_headers && hdrscan_found(&s->hs, HDR_DATE)) &&
        s->c.date_policy == RECEPTION_HDR_IFNEEDED) {
        buf_printf(out, "Date: %s\r\n", date);
    }
    return 0;
}

struct reception_commit {
    struct rsess *s;
    uint64_t prepend_len;
};

static void
reception_log_receptions(struct rsess *s, struct spool_writer *w, const struct spool_envelope *env,
                         uint64_t size)
{
    struct reception *r = s->r;
    struct buf line;
    struct mainlog_head h = {clock_wall_s(), s->msgid, s->msgid, s->connid};

    if (r->o.mainlog == NULL || !s->c.log_receptions) {
        return;
    }
    buf_init(&line, 65536);
    for (size_t i = 0; i < env->rcpt_count; i++) {
        struct mainlog_reception rec = {
            .rcpt = env->rcpts[i].addr,
            .sender = env->sender,
            .ip = smtp_server_peer_ip(s->srv),
            .size = size,
            .protocol = smtp_server_esmtp(s->srv) ? "esmtp" : "smtp",
            .binding_group = "default",
            .binding = "default",
        };

        buf_reset(&line);
        mainlog_format_reception(&line, &h, &rec);
        log_file_write(r->o.mainlog, buf_data(&line).ptr, buf_len(&line));
    }
    buf_release(&line);
}

static void
reception_committed(struct spool_writer *w, int err, void *arg)
{
    struct reception_commit *rc = arg;
    struct rsess *s = rc->s;
    struct smtp_reply rep;
    char text[128];

    s->w = NULL; /* the spool frees the writer after this callback */
    if (err != 0) {
        log_error("spool_commit_failed sid=%s mid=%s error=\"%s\"", s->connid, s->msgid,
                  err_str(err));
        rep = SMTP_REPLY(452, "4.3.1", "Insufficient system storage");
    } else {
        const struct spool_envelope *env = spool_writer_envelope(w);
        struct reception_msg m = {
            .id = s->msgid,
            .sid = spool_writer_id(w),
            .env = env,
            .size = s->size + rc->prepend_len,
            .body_off = spool_writer_body_off(w),
            .body_len = spool_writer_body_len(w),
            .prepend = spool_writer_prepend(w),
        };

        atomic_fetch_add(&s->r->received, 1);
        reception_log_receptions(s, w, env, m.size);
        if (s->r->o.sink) {
            s->r->o.sink(s->rl->loop, &m, s->r->o.sink_arg);
        }
        snprintf(text, sizeof(text), "Ok: queued as %s", s->msgid);
        rep = (struct smtp_reply){250, "2.0.0", strv_from_cstr(text)};
    }
    free(rc);
    smtp_server_data_done(s->srv, &rep);
}

static void
reception_data_end(struct smtp_server *srv, void *arg, const struct smtp_server_txn *t,
                   const struct smtp_data_stats *st)
{
    struct rsess *s = arg;
    struct reception_commit *rc;
    struct smtp_reply rep;
    struct buf pre;
    int err;

    buf_init(&pre, 65536);
    s->has_headers = st->has_headers;
    if (reception_prepend(s, t, &pre, &rep) != 0) {
        buf_release(&pre);
        reception_release_writer(s);
        smtp_server_data_done(srv, &rep);
        return;
    }
    err = spool_writer_finish(s->w, buf_data(&pre));
    if (err != 0) {
        log_error("spool_finish_failed sid=%s mid=%s error=\"%s\"", s->connid, s->msgid,
                  err_str(err));
        buf_release(&pre);
        reception_release_writer(s);
        rep = SMTP_REPLY(452, "4.3.1", "Insufficient system storage");
        smtp_server_data_done(srv, &rep);
        return;
    }
    rc = XNEW(struct reception_commit);
    rc->s = s;
    rc->prepend_len = buf_len(&pre);
    buf_release(&pre);
    spool_writer_commit(s->w, s->rl->loop, reception_committed, rc);
}

static void
reception_data_abort(struct smtp_server *srv, void *arg)
{
    reception_release_writer(arg);
}

static void
reception_on_close(struct smtp_server *srv, void *arg)
{
    struct rsess *s = arg;

    reception_release_writer(s);
    list_remove(&s->node);
    atomic_fetch_sub(&s->listen->sessions, 1);
    atomic_fetch_sub(&s->r->active, 1);
    log_debug("session_close sid=%s remote=%s messages=%u", s->connid, s->remote,
              smtp_server_messages(srv));
    reception_session_cfg_release(&s->c);
    conf_unref(s->conf);
    free(s);
}

static const struct smtp_server_ops reception_ops = {
    .on_connect = reception_on_connect,
    .on_mail = reception_on_mail,
    .on_rcpt = reception_on_rcpt,
    .data_begin = reception_data_begin,
    .data_write = reception_data_write,
    .data_end = reception_data_end,
    .data_abort = reception_data_abort,
    .auth_check = reception_auth_check,
    .log_reject = reception_log_reject,
    .on_close = reception_on_close,
};

/* ---- accepting ---- */

void
reception_accept(struct reception *r, struct reception_listen *l, struct loop *lp, int fd)
{
    struct reception_loop *rl = reception_loop_of(r, lp);
    struct rsess *s = XNEW(struct rsess);
    struct conn *c;
    int err = 0;

    c = conn_new(lp, fd, NULL, NULL, &err);
    if (c == NULL) {
        log_error("accept_failed error=\"%s\"", err_str(err));
        (void)close(fd); /* nothing was said on it */
        free(s);
        return;
    }
    s->r = r;
    s->rl = rl;
    s->listen = l;
    s->conf = conf_ref(rl->conf);
    spool_id_format(spool_idgen_next(&r->connids), s->connid);
    conn_addr_str((const struct sockaddr *)&c->peer, s->remote, sizeof(s->remote));
    conn_addr_str((const struct sockaddr *)&c->local, s->local, sizeof(s->local));
    reception_session_cfg_resolve(&s->c, s->conf, r->cache, l->kind, l->name,
                                  (const struct sockaddr *)&c->peer, r->hostname);
    list_push_back(&rl->sessions, &s->node);
    atomic_fetch_add(&l->sessions, 1);
    atomic_fetch_add(&r->sessions_total, 1);
    atomic_fetch_add(&r->active, 1);
    log_debug("session_open sid=%s remote=%s local=%s", s->connid, s->remote, s->local);
    conn_ip_str((const struct sockaddr *)&c->peer, s->remote_ip, sizeof(s->remote_ip));
    s->srv = smtp_server_start(c, &s->c.smtp, &reception_ops, s);
}

void
reception_stop_loop(struct reception *r, struct loop *lp)
{
    struct reception_loop *rl = reception_loop_of(r, lp);
    struct list_node *n, *tmp;

    LIST_FOREACH_SAFE(n, tmp, &rl->sessions)
    {
        struct rsess *s = container_of(n, struct rsess, node);

        smtp_server_shutdown(s->srv, "Service shutting down");
    }
}

void
reception_tick(struct reception *r, const struct conf *c)
{
    uint64_t limit = reception_memory_limit(c);
    bool high = limit && reception_rss_bytes() > limit;

    if (high != atomic_load(&r->memory_high)) {
        atomic_store(&r->memory_high, high);
        if (high) {
            log_warning("memory_hwm_reached limit=%llu: refusing new mail",
                        (unsigned long long)limit);
        } else {
            log_notice("memory_hwm_cleared limit=%llu", (unsigned long long)limit);
        }
    }
}

void
reception_get_stats(struct reception *r, struct reception_stats *out)
{
    out->sessions = atomic_load(&r->sessions_total);
    out->received = atomic_load(&r->received);
    out->rejected = atomic_load(&r->rejected);
    out->active_sessions = atomic_load(&r->active);
}
