/*
 * reception_cfg: per-session configuration and its caches (see reception_cfg.h).
 */
#include "queue/reception_cfg.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/map.h"
#include "core/mem.h"
#include "net/tls.h"

struct reception_cfg_cache {
    pthread_mutex_t lock;
    struct map tls;    /* option tuple -> SSL_CTX* (ref held) ; NULL value: failed */
    struct map authdb; /* path -> struct smtp_authdb* ; NULL value: failed */
};

static void
reception_tls_free(void *p)
{
    SSL_CTX_free(p);
}

static void
reception_authdb_free(void *p)
{
    smtp_authdb_free(p);
}

struct reception_cfg_cache *
reception_cfg_cache_new(void)
{
    struct reception_cfg_cache *cc = XNEW(struct reception_cfg_cache);

    pthread_mutex_init(&cc->lock, NULL);
    map_init(&cc->tls, false);
    map_init(&cc->authdb, false);
    return cc;
}

void
reception_cfg_cache_free(struct reception_cfg_cache *cc)
{
    if (cc == NULL) {
        return;
    }
    map_release(&cc->tls, reception_tls_free);
    map_release(&cc->authdb, reception_authdb_free);
    pthread_mutex_destroy(&cc->lock);
    free(cc);
}

/* A server TLS context for these options, built once; NULL when it cannot be built. */
static SSL_CTX *
reception_tls_ctx(struct reception_cfg_cache *cc, const struct tls_server_opts *o)
{
    struct buf key;
    SSL_CTX *ctx;
    size_t it;
    struct strv k;
    void *v;

    buf_init(&key, 16384);
    buf_printf(&key, "%s|%s|%s|%s|%s|%s", o->certificate, o->key ? o->key : "",
               o->ciphers ? o->ciphers : "", o->protocols ? o->protocols : "",
               o->client_ca ? o->client_ca : "", o->verify_mode ? o->verify_mode : "");
    pthread_mutex_lock(&cc->lock);
    it = 0;
    ctx = NULL;
    while (map_next(&cc->tls, &it, &k, &v)) {
        if (strv_eq(k, buf_data(&key))) {
            ctx = v;
            goto out;
        }
    }
    {
        struct buf why;

        buf_init(&why, 4096);
        ctx = tls_server_ctx_new(o, &why);
        if (ctx == NULL) {
            log_error("tls_setup_failed %.*s: STARTTLS not offered", STRV_FMT(buf_data(&why)));
        }
        buf_release(&why);
        map_put(&cc->tls, buf_data(&key), ctx);
    }
out:
    if (ctx) {
        SSL_CTX_up_ref(ctx);
    }
    pthread_mutex_unlock(&cc->lock);
    buf_release(&key);
    return ctx;
}

static struct smtp_authdb *
reception_authdb(struct reception_cfg_cache *cc, const char *path)
{
    struct smtp_authdb *db;

    pthread_mutex_lock(&cc->lock);
    db = map_get_cstr(&cc->authdb, path);
    if (db == NULL && map_get_cstr(&cc->authdb, path) == NULL) {
        struct buf why;

        buf_init(&why, 4096);
        db = smtp_authdb_open(path, &why);
        if (db == NULL) {
            log_error("authdb_failed %.*s: AUTH not offered", STRV_FMT(buf_data(&why)));
        } else {
            map_put(&cc->authdb, strv_from_cstr(path), db);
        }
        buf_release(&why);
    }
    pthread_mutex_unlock(&cc->lock);
    return db;
}

const struct conf_scope *
reception_find_listen(const struct conf *c, enum conf_scope_type kind, const char *name,
                      const struct conf_scope **listener)
{
    const struct conf_scope *l = conf_child(c->root, kind, NULL), *k;
    size_t it = 0;

    *listener = l;
    if (l == NULL) {
        return NULL;
    }
    while ((k = conf_child_next(l, CONF_SCOPE_LISTEN, NULL, &it))) {
        if (strcmp(k->name, name) == 0) {
            return k;
        }
    }
    return NULL;
}

/* ---- option helpers over a chain ---- */

struct reception_chain {
    const struct conf *c;
    struct conf_chain ch;
};

static const struct conf_setting *
rc_get(const struct reception_chain *rc, const char *name)
{
    return conf_chain_get_name(rc->c, &rc->ch, name);
}

static const char *
rc_str(const struct reception_chain *rc, const char *name)
{
    const struct conf_setting *st = rc_get(rc, name);

    return conf_setting_unset(st) ? NULL : st->val.s;
}

static int64_t
rc_int(const struct reception_chain *rc, const char *name)
{
    return rc_get(rc, name)->val.i;
}

static bool
rc_bool(const struct reception_chain *rc, const char *name)
{
    return rc_get(rc, name)->val.b;
}

/* The value for key in a dictionary option, or NULL. */
static const char *
rc_dict(const struct reception_chain *rc, const char *name, const char *key)
{
    const struct conf_setting *st = rc_get(rc, name);
    const struct conf_value *d = st->val.raw;

    if (conf_setting_unset(st) || d == NULL || d->kind != CONF_VALUE_DICT) {
        return NULL;
    }
    for (size_t i = 0; i < d->n; i++) {
        if (strcasecmp(d->keys[i], key) == 0 && d->items[i]->kind == CONF_VALUE_SCALAR) {
            return d->items[i]->text;
        }
    }
    return NULL;
}

static enum smtp_data_policy
rc_data_policy(const char *word)
{
    if (strcasecmp(word, "pedantic") == 0 || strcasecmp(word, "reject") == 0) {
        return SMTP_DATA_PEDANTIC;
    }
    return strcasecmp(word, "fix") == 0 ? SMTP_DATA_FIX : SMTP_DATA_IGNORE;
}

static enum reception_hdr_policy
rc_hdr_policy(const char *word)
{
    if (strcasecmp(word, "pedantic") == 0) {
        return RECEPTION_HDR_PEDANTIC;
    }
    return strcasecmp(word, "ifneeded") == 0 ? RECEPTION_HDR_IFNEEDED : RECEPTION_HDR_IGNORE;
}

/* smtp_extensions: which optional extensions to offer, and AUTH mechanisms named there. */
static void
rc_extensions(const struct reception_chain *rc, struct reception_session_cfg *cfg, bool *starttls,
              bool *xclient, unsigned *auth_mechs)
{
    const struct conf_setting *st = rc_get(rc, "smtp_extensions");

    *starttls = conf_setting_unset(st); /* not configured: offer STARTTLS when a certificate is */
    *xclient = false;
    *auth_mechs = 0;
    for (size_t i = 0; !conf_setting_unset(st) && i < st->val.n; i++) {
        struct strv e = strv_from_cstr(st->val.list[i]);
        struct strv word = strv_next_word(&e);

        if (strv_eq_cstr_ci(word, "STARTTLS")) {
            *starttls = true;
        } else if (strv_eq_cstr_ci(word, "XCLIENT")) {
            *xclient = true;
        } else if (strv_eq_cstr_ci(word, "AUTH")) {
            for (struct strv m = strv_next_word(&e); m.len; m = strv_next_word(&e)) {
                *auth_mechs |= smtp_auth_mech_bit(m) & (SMTP_AUTH_PLAIN | SMTP_AUTH_LOGIN);
            }
        }
    }
    (void)cfg;
}

static void
rc_tls(const struct reception_chain *rc, struct reception_session_cfg *cfg,
       struct reception_cfg_cache *cc, bool starttls)
{
    struct tls_server_opts o = {
        .certificate = rc_str(rc, "tls_certificate"),
        .key = rc_str(rc, "tls_key"),
        .ciphers = rc_str(rc, "tls_ciphers"),
        .protocols = rc_str(rc, "tls_protocols"),
        .client_ca = rc_str(rc, "tls_client_ca"),
        .verify_mode = rc_str(rc, "tls_verify_mode"),
    };

    if (o.certificate && starttls) {
        cfg->smtp.tls_ctx = reception_tls_ctx(cc, &o);
    }
    if (cfg->smtp.tls_ctx) {
        cfg->smtp.ext |= SMTP_EXT_STARTTLS;
    }
    cfg->smtp.tls_injection = strcasecmp(rc_str(rc, "starttls_injection_policy"), "reject") == 0
                                  ? SMTP_TLS_INJECTION_REJECT
                                  : SMTP_TLS_INJECTION_IGNORE;
    cfg->tls_verified_can_relay = rc_bool(rc, "tls_verified_peer_can_relay");
}

static void
rc_auth(const struct reception_chain *rc, struct reception_session_cfg *cfg,
        struct reception_cfg_cache *cc, unsigned mechs)
{
    const char *plain = rc_dict(rc, "authplainparameters", "uri");
    const char *login = rc_dict(rc, "authloginparameters", "uri");
    const char *uri = plain ? plain : login;
    const char *path = uri ? smtp_authdb_uri_path(uri) : NULL;

    if (plain) {
        mechs |= SMTP_AUTH_PLAIN;
    }
    if (login) {
        mechs |= SMTP_AUTH_LOGIN;
    }
    if (uri && path == NULL) {
        log_error("auth_uri_unsupported uri=%s: only file:// password files are supported", uri);
    }
    if (mechs && path) {
        cfg->authdb = reception_authdb(cc, path);
    }
    if (cfg->authdb) {
        cfg->smtp.auth_mechs = mechs;
        cfg->smtp.ext |= SMTP_EXT_AUTH;
    }
    cfg->smtp.auth_without_tls = rc_bool(rc, "auth_allow_plaintext");
    cfg->smtp.auth_fail_delay_ms = (unsigned)(rc_int(rc, "auth_failure_delay") * 1000);
}

static void
rc_data(const struct reception_chain *rc, struct reception_session_cfg *cfg)
{
    struct smtp_data_opts *d = &cfg->smtp.data;
    const struct conf_setting *mll = rc_get(rc, "rfc2822_max_line_length");

    smtp_data_opts_init(d);
    d->lone_lf_headers = rc_data_policy(rc_str(rc, "rfc2822_lone_lf_in_headers"));
    d->lone_lf_body = rc_data_policy(rc_str(rc, "rfc2822_lone_lf_in_body"));
    if (mll->val.b) { /* a number: the limit, with rfc2822_max_line_length_policy */
        d->max_line = mll->val.i > 0 ? (size_t)mll->val.i : SMTP_DATA_LINE_MAX;
        d->line_length = rc_data_policy(rc_str(rc, "rfc2822_max_line_length_policy"));
    } else {
        d->max_line = SMTP_DATA_LINE_MAX;
        d->line_length = rc_data_policy(mll->val.s);
    }
    d->allow_missing_headers = strcasecmp(rc_str(rc, "rfc2822_missing_headers"), "allow") == 0;
    cfg->messageid_policy = rc_hdr_policy(rc_str(rc, "rfc2822_messageid_header"));
    cfg->date_policy = rc_hdr_policy(rc_str(rc, "rfc2822_date_header"));
    cfg->trace_headers = rc_bool(rc, "rfc2822_trace_headers");
}

static void
rc_protocol(const struct reception_chain *rc, struct reception_session_cfg *cfg)
{
    struct smtp_server_cfg *s = &cfg->smtp;

    smtp_cmd_opts_init(&s->cmd);
    s->cmd.addr.pedantic = rc_bool(rc, "rfc2821_pedantic_address_rules");
    s->cmd.addr.ip_literal = rc_bool(rc, "allow_ip_literal");
    s->cmd.addr.space_in_brackets = rc_bool(rc, "allow_trailing_whitespace_in_commands");
    s->cmd.allow_trailing_ws = rc_bool(rc, "rfc2821_allow_whitespace_in_envelope");
    s->unqualified_sender_domain = rc_str(rc, "domain_for_unqualified_sender_address");
    s->unqualified_rcpt_domain = rc_str(rc, "domain_for_unqualified_recipient_addresses");
    s->cmd.allow_unqualified_sender = s->unqualified_sender_domain != NULL;
    s->cmd.allow_unqualified_rcpt = s->unqualified_rcpt_domain != NULL;
    s->cmd.addr.unqualified = s->cmd.allow_unqualified_sender || s->cmd.allow_unqualified_rcpt;
    s->require_ehlo = rc_bool(rc, "require_ehlo");
    s->allow_null_sender = rc_bool(rc, "allow_null_envelope_sender");
    s->max_message_size = (uint64_t)rc_int(rc, "max_message_size");
    s->max_rcpts_per_msg = (unsigned)rc_int(rc, "max_recipients_per_message");
    s->max_rcpts_per_conn = (unsigned)rc_int(rc, "max_recipients_per_connection");
    s->max_msgs_per_conn = (unsigned)rc_int(rc, "max_receptions_per_connection");
    s->idle_ms = (unsigned)(rc_int(rc, "idle_time") * 1000);
    s->data_idle_ms = s->idle_ms;
}

static bool
rc_peer_in(const struct reception_chain *rc, const char *name, const struct sockaddr *peer)
{
    const struct conf_setting *st = rc_get(rc, name);

    for (size_t i = 0; peer && !conf_setting_unset(st) && i < st->val.n; i++) {
        if (conf_cidr_match(&st->val.cidrs[i], peer)) {
            return true;
        }
    }
    return false;
}

static void
rc_identity(const struct reception_chain *rc, struct reception_session_cfg *cfg,
            const char *default_hostname)
{
    const char *banner_host = rc_str(rc, "banner_hostname");
    const char *static_banner = rc_str(rc, "static_banner");

    cfg->hostname = rc_str(rc, "hostname") ? rc_str(rc, "hostname") : default_hostname;
    cfg->received_hostname =
        rc_str(rc, "received_hostname") ? rc_str(rc, "received_hostname") : cfg->hostname;
    cfg->smtp.hostname = cfg->hostname;
    if (static_banner) {
        snprintf(cfg->banner, sizeof(cfg->banner), "%s", static_banner);
    } else {
        snprintf(cfg->banner, sizeof(cfg->banner), "%s ESMTP celer",
                 banner_host ? banner_host : cfg->hostname);
    }
    cfg->smtp.banner = cfg->banner;
}

static void
rc_logging(const struct conf *c, struct reception_session_cfg *cfg)
{
    const struct conf_scope *ecl = conf_child(c->root, CONF_SCOPE_MODULE, "ec_logger");

    cfg->log_receptions = ecl == NULL || conf_local_get(c, ecl, "log_receptions")->val.b;
    cfg->log_rejections = ecl == NULL || conf_local_get(c, ecl, "log_rejections")->val.b;
}

void
reception_session_cfg_resolve(struct reception_session_cfg *cfg, const struct conf *c,
                              struct reception_cfg_cache *cc, enum conf_scope_type kind,
                              const char *listen_name, const struct sockaddr *peer,
                              const char *default_hostname)
{
    struct reception_chain rc = {.c = c};
    const struct conf_scope *listener;
    const struct conf_scope *listen = reception_find_listen(c, kind, listen_name, &listener);
    const struct conf_setting *thr, *rd;
    bool starttls, xclient;
    unsigned mechs;

    memset(cfg, 0, sizeof(*cfg));
    conf_chain_inbound(c, listener, listen, peer, &rc.ch);
    for (unsigned i = 0; i < rc.ch.n; i++) {
        if (rc.ch.s[i]->type == CONF_SCOPE_PATHWAY) {
            cfg->pathway = rc.ch.s[i]->name;
            cfg->pathway_group = rc.ch.s[i]->group ? rc.ch.s[i]->group->name : NULL;
        }
    }
    rc_identity(&rc, cfg, default_hostname);
    cfg->smtp.ext = SMTP_EXT_SIZE | SMTP_EXT_PIPELINING | SMTP_EXT_8BITMIME | SMTP_EXT_SMTPUTF8 |
                    SMTP_EXT_CHUNKING | SMTP_EXT_BINARYMIME | SMTP_EXT_ENHANCEDSTATUSCODES |
                    SMTP_EXT_DSN;
    rc_extensions(&rc, cfg, &starttls, &xclient, &mechs);
    cfg->smtp.xclient = xclient;
    rc_protocol(&rc, cfg);
    rc_data(&rc, cfg);
    rc_tls(&rc, cfg, cc, starttls);
    rc_auth(&rc, cfg, cc, mechs);
    cfg->relay_by_ip = rc_peer_in(&rc, "relay_hosts", peer);
    cfg->open_relay = rc_bool(&rc, "open_relay");
    rd = rc_get(&rc, "relay_domains");
    if (!conf_setting_unset(rd)) {
        cfg->relay_domains = (const char *const *)rd->val.list;
        cfg->nrelay_domains = rd->val.n;
    }
    thr = rc_get(&rc, "inbound_throttle_messages");
    cfg->inbound_throttle = conf_setting_unset(thr) ? NULL : thr;
    cfg->listener_sessions = (unsigned)rc_int(&rc, "listener_sessions");
    /* the greeting pause is for strangers; relay hosts are trusted */
    if (!cfg->relay_by_ip) {
        cfg->smtp.greeting_pause_ms = (unsigned)(rc_int(&rc, "greeting_pause") * 1000);
    }
    rc_logging(c, cfg);
}

void
reception_session_cfg_release(struct reception_session_cfg *cfg)
{
    SSL_CTX_free(cfg->smtp.tls_ctx);
    cfg->smtp.tls_ctx = NULL;
}

uint64_t
reception_memory_limit(const struct conf *c)
{
    int64_t rss = conf_global(c, "memory_hwm_rss")->val.i;
    int64_t pct = conf_global(c, "memory_hwm")->val.i;
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);

    if (rss > 0) {
        return (uint64_t)rss;
    }
    if (pct <= 0 || pct >= 100 || pages <= 0 || psize <= 0) {
        return 0;
    }
    return (uint64_t)pages * (uint64_t)psize / 100 * (uint64_t)pct;
}

uint64_t
reception_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;

    if (f == NULL) {
        return 0;
    }
    if (fscanf(f, "%lu %lu", &size, &resident) != 2) {
        resident = 0;
    }
    fclose(f);
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}
