/*
 * smtp_server: the inbound ESMTP session (see smtp_server.h).
 */
#include "smtp/smtp_server.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/base64.h"
#include "core/log.h"
#include "core/mem.h"

#define SMTP_DATA_CHUNK 65536
#define SMTP_AUTH_MAX   1024 /* decoded SASL response octets */

enum smtp_state {
    SMTP_ST_PAUSE,   /* holding the greeting */
    SMTP_ST_CMD,     /* reading commands */
    SMTP_ST_DATA,    /* DATA body streaming in */
    SMTP_ST_BDAT,    /* BDAT chunk octets streaming in */
    SMTP_ST_BUSY,    /* waiting for the layer above (storing) or a delay */
    SMTP_ST_AUTH,    /* waiting for a SASL response line */
    SMTP_ST_TLS,     /* TLS handshake */
    SMTP_ST_CLOSING, /* final reply queued */
};

enum smtp_auth_step {
    SMTP_AUTH_STEP_PLAIN,      /* waiting for the PLAIN response */
    SMTP_AUTH_STEP_LOGIN_USER, /* waiting for the LOGIN user name */
    SMTP_AUTH_STEP_LOGIN_PASS, /* waiting for the LOGIN password */
};

struct smtp_server {
    struct conn *conn;                 /* owned */
    const struct smtp_server_cfg *cfg; /* borrowed from the layer above */
    const struct smtp_server_ops *ops;
    void *arg;
    enum smtp_state state;
    struct event *ev_delay; /* owned: greeting pause and AUTH failure delay */
    struct smtp_server_txn txn;
    struct smtp_data_dec dec;
    char *outbuf;       /* owned: decoded DATA bytes on their way to data_write */
    uint64_t bdat_left; /* octets of the current BDAT chunk still to read */
    bool bdat_last;
    bool bdat_failed;   /* the BDAT transaction was refused: swallow its chunks */
    bool bdat_replied;  /* this chunk's refusal was already sent */
    bool write_failed;  /* data_write failed: 452 at the end */
    bool skipping_line; /* discarding the rest of an over-long line */
    bool esmtp;
    bool helo_seen;
    bool tls;
    char helo[256];
    char *auth_user;  /* owned */
    char *login_user; /* owned: LOGIN's user while the password comes */
    enum smtp_auth_step auth_step;
    struct smtp_reply delayed; /* reply held by ev_delay */
    char delayed_text[128];
    bool storing;   /* data_end() called, smtp_server_data_done() not yet */
    bool peer_gone; /* the connection ended while storing */
    unsigned messages;
    unsigned rcpts_total;
    struct sockaddr_storage peer;
    char peer_ip[300];
};

static void smtp_process(struct smtp_server *s);
static void smtp_on_conn(struct conn *c, enum conn_event ev, void *arg);

/* ---- replies ---- */

static const char *
smtp_phase(const struct smtp_server *s, enum smtp_verb verb)
{
    if (s->state == SMTP_ST_DATA || s->state == SMTP_ST_BDAT || s->state == SMTP_ST_BUSY) {
        return "data";
    }
    switch (verb) {
    case SMTP_VERB_HELO:
    case SMTP_VERB_EHLO:
        return "ehlo";
    case SMTP_VERB_MAIL:
        return "mailfrom";
    case SMTP_VERB_RCPT:
        return "rcptto";
    case SMTP_VERB_DATA:
    case SMTP_VERB_BDAT:
        return "data";
    case SMTP_VERB_STARTTLS:
        return "starttls";
    case SMTP_VERB_AUTH:
        return "auth";
    default:
        return s->txn.sender ? "rcptto" : "mailfrom";
    }
}

static void
smtp_send(struct smtp_server *s, const struct smtp_reply *r, const char *phase)
{
    bool enhanced = (s->cfg->ext & SMTP_EXT_ENHANCEDSTATUSCODES) != 0;

    if (try_smtp_reply_format(&s->conn->out, r, enhanced) != 0) {
        conn_close(s->conn); /* output ceiling: the client is not reading */
        return;
    }
    if (r->code >= 400 && s->ops->log_reject) {
        s->ops->log_reject(s, s->arg, phase, r);
    }
}

static void
smtp_reply(struct smtp_server *s, int code, const char *enh, const char *text, const char *phase)
{
    struct smtp_reply r = {code, "", strv_from_cstr(text)};

    snprintf(r.enh, sizeof(r.enh), "%s", enh);
    smtp_send(s, &r, phase);
}

/* Ends the session once what is queued has been sent (or after 10 s). */
static void
smtp_close_after_output(struct smtp_server *s)
{
    s->state = SMTP_ST_CLOSING;
    conn_read_enable(s->conn, false);
    conn_set_timeout(s->conn, 10000);
    conn_notify_drained(s->conn);
}

/* Queues a final reply and closes once it is sent. */
static void
smtp_close_with(struct smtp_server *s, int code, const char *enh, const char *text,
                const char *phase)
{
    smtp_reply(s, code, enh, text, phase);
    smtp_close_after_output(s);
}

/* ---- transaction ---- */

static void
smtp_txn_clear(struct smtp_server *s)
{
    struct smtp_server_txn *t = &s->txn;

    if (t->data_started && s->ops->data_abort) {
        s->ops->data_abort(s, s->arg);
    }
    for (size_t i = 0; i < t->nrcpts; i++) {
        free(t->rcpts[i].addr);
        free(t->rcpts[i].orcpt_type);
        free(t->rcpts[i].orcpt);
    }
    free(t->rcpts);
    free(t->sender);
    memset(t, 0, sizeof(*t));
    s->bdat_failed = false;
    s->write_failed = false;
}

static void
smtp_session_free(struct smtp_server *s)
{
    smtp_txn_clear(s);
    if (s->ops->on_close) {
        s->ops->on_close(s, s->arg);
    }
    if (s->ev_delay) {
        event_free(s->ev_delay);
    }
    free(s->outbuf);
    free(s->auth_user);
    mem_clear_free(s->login_user, s->login_user ? strlen(s->login_user) : 0);
    free(s);
}

/* ---- greeting ---- */

static void
smtp_greet(struct smtp_server *s)
{
    char text[512];
    struct smtp_reply r;

    if (s->cfg->banner) {
        snprintf(text, sizeof(text), "%s", s->cfg->banner);
    } else {
        snprintf(text, sizeof(text), "%s ESMTP celer", s->cfg->hostname);
    }
    r = (struct smtp_reply){220, "", strv_from_cstr(text)};
    if (s->ops->on_connect) {
        s->ops->on_connect(s, s->arg, &r);
    }
    if (r.code != 220) {
        smtp_send(s, &r, "connect");
        smtp_close_after_output(s);
        return;
    }
    r.enh[0] = '\0';
    smtp_send(s, &r, "connect");
    s->state = SMTP_ST_CMD;
}

static void
smtp_on_delay(evutil_socket_t fd, short what, void *arg)
{
    struct smtp_server *s = arg;

    if (s->state == SMTP_ST_PAUSE) {
        smtp_greet(s);
    } else if (s->state == SMTP_ST_BUSY) {
        s->delayed.text = strv_from_cstr(s->delayed_text);
        smtp_send(s, &s->delayed, "auth");
        s->state = SMTP_ST_CMD;
        smtp_process(s);
    }
    conn_flush(s->conn);
}

static void
smtp_arm_delay(struct smtp_server *s, unsigned ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    evtimer_add(s->ev_delay, &tv);
}

struct smtp_server *
smtp_server_start(struct conn *c, const struct smtp_server_cfg *cfg,
                  const struct smtp_server_ops *ops, void *arg)
{
    struct smtp_server *s = XNEW(struct smtp_server);

    s->conn = c;
    s->cfg = cfg;
    s->ops = ops;
    s->arg = arg;
    s->outbuf = xmalloc(SMTP_DATA_CHUNK);
    s->ev_delay = evtimer_new(loop_base(c->loop), smtp_on_delay, s);
    if (s->ev_delay == NULL) {
        abort(); /* allocation failure */
    }
    memcpy(&s->peer, &c->peer, sizeof(s->peer));
    conn_ip_str((const struct sockaddr *)&s->peer, s->peer_ip, sizeof(s->peer_ip));
    conn_set_callback(c, smtp_on_conn, s);
    if (cfg->idle_ms) {
        conn_set_timeout(c, cfg->idle_ms);
    }
    if (cfg->greeting_pause_ms) {
        s->state = SMTP_ST_PAUSE;
        smtp_arm_delay(s, cfg->greeting_pause_ms);
    } else {
        smtp_greet(s);
        conn_flush(c);
    }
    return s;
}

/* ---- EHLO / HELO ---- */

static void
smtp_do_helo(struct smtp_server *s, const struct smtp_cmd *cmd)
{
    bool ehlo = cmd->verb == SMTP_VERB_EHLO;
    char first[600];
    struct smtp_reply r;

    smtp_txn_clear(s);
    if (cmd->arg.len == 0) {
        smtp_reply(s, 501, "5.5.4", ehlo ? "Syntax: EHLO hostname" : "Syntax: HELO hostname",
                   "ehlo");
        return;
    }
    strv_copy(cmd->arg, s->helo, sizeof(s->helo));
    snprintf(first, sizeof(first), "%s", s->cfg->hostname);
    r = (struct smtp_reply){250, "", strv_from_cstr(first)};
    if (s->ops->on_helo) {
        s->ops->on_helo(s, s->arg, cmd->arg, &r);
    }
    if (r.code != 250) {
        smtp_send(s, &r, "ehlo");
        return;
    }
    s->helo_seen = true;
    s->esmtp = ehlo;
    if (!ehlo) {
        smtp_reply(s, 250, "", first, "ehlo");
        return;
    }
    {
        struct smtp_ehlo caps = {0};
        char auth[64] = "";

        caps.ext = s->cfg->ext & ~(unsigned)(SMTP_EXT_AUTH | SMTP_EXT_STARTTLS | SMTP_EXT_XCLIENT);
        caps.size_max = s->cfg->max_message_size;
        if ((s->cfg->ext & SMTP_EXT_STARTTLS) && s->cfg->tls_ctx && !s->tls) {
            caps.ext |= SMTP_EXT_STARTTLS;
        }
        if (s->cfg->auth_mechs && s->auth_user == NULL && (s->tls || s->cfg->auth_without_tls)) {
            snprintf(
                auth, sizeof(auth), "%s%s%s", (s->cfg->auth_mechs & SMTP_AUTH_PLAIN) ? "PLAIN" : "",
                (s->cfg->auth_mechs & SMTP_AUTH_PLAIN) && (s->cfg->auth_mechs & SMTP_AUTH_LOGIN)
                    ? " "
                    : "",
                (s->cfg->auth_mechs & SMTP_AUTH_LOGIN) ? "LOGIN" : "");
            caps.ext |= SMTP_EXT_AUTH;
            caps.auth = strv_from_cstr(auth);
        }
        if (s->cfg->xclient) {
            caps.ext |= SMTP_EXT_XCLIENT;
            caps.xclient = STRV_LIT("NAME ADDR PORT PROTO HELO LOGIN");
        }
        if (try_smtp_ehlo_format(&s->conn->out, strv_from_cstr(first), &caps) != 0) {
            conn_close(s->conn);
        }
    }
}

/* ---- MAIL / RCPT ---- */

static char *
smtp_render_addr(const struct smtp_addr *a, const char *default_domain)
{
    struct buf b;

    buf_init(&b, SMTP_ADDR_PATH_MAX + SMTP_ADDR_DOMAIN_MAX + 8);
    if (try_smtp_addr_render(a, strv_from_cstr(default_domain ? default_domain : ""), &b) != 0) {
        buf_release(&b);
        return NULL;
    }
    return buf_steal_cstr(&b);
}

static void
smtp_do_mail(struct smtp_server *s, const struct smtp_cmd *cmd)
{
    struct smtp_reply r = SMTP_REPLY(250, "2.1.0", "Sender ok");

    if (s->txn.sender) {
        smtp_reply(s, 503, "5.5.1", "Nested MAIL command", "mailfrom");
        return;
    }
    s->bdat_failed = false;
    if (s->cfg->require_ehlo && !s->helo_seen) {
        smtp_reply(s, 503, "5.5.1", "Send HELO/EHLO first", "mailfrom");
        return;
    }
    if (s->cfg->max_msgs_per_conn && s->messages >= s->cfg->max_msgs_per_conn) {
        smtp_close_with(s, 421, "4.7.0", "Too many messages in this session; reconnect",
                        "mailfrom");
        return;
    }
    if (cmd->addr.is_null && !s->cfg->allow_null_sender) {
        smtp_reply(s, 550, "5.7.1", "Null sender not accepted", "mailfrom");
        return;
    }
    if (cmd->u.mail.has_size && s->cfg->max_message_size &&
        cmd->u.mail.size > s->cfg->max_message_size) {
        smtp_reply(s, 552, "5.3.4", "Message size exceeds fixed maximum message size", "mailfrom");
        return;
    }
    s->txn.sender = smtp_render_addr(&cmd->addr, s->cfg->unqualified_sender_domain);
    if (s->txn.sender == NULL) {
        smtp_reply(s, 501, "5.1.7", "Bad sender address syntax", "mailfrom");
        return;
    }
    s->txn.mail = cmd->u.mail;
    if (s->ops->on_mail) {
        s->ops->on_mail(s, s->arg, &s->txn, &r);
    }
    if (r.code >= 300) {
        free(s->txn.sender);
        s->txn.sender = NULL;
    }
    smtp_send(s, &r, "mailfrom");
}

static void
smtp_do_rcpt(struct smtp_server *s, const struct smtp_cmd *cmd)
{
    struct smtp_reply r = SMTP_REPLY(250, "2.1.5", "Recipient ok");
    struct smtp_server_rcpt rc = {0};

    if (s->txn.sender == NULL) {
        smtp_reply(s, 503, "5.5.1", "Need MAIL command", "rcptto");
        return;
    }
    if (s->txn.data_started) {
        smtp_reply(s, 503, "5.5.1", "RCPT not allowed during BDAT", "rcptto");
        return;
    }
    if (s->cfg->max_rcpts_per_msg && s->txn.nrcpts >= s->cfg->max_rcpts_per_msg) {
        smtp_reply(s, 452, "4.5.3", "Too many recipients", "rcptto");
        return;
    }
    if (s->cfg->max_rcpts_per_conn && s->rcpts_total >= s->cfg->max_rcpts_per_conn) {
        smtp_close_with(s, 421, "4.5.3", "Too many recipients in this session; reconnect",
                        "rcptto");
        return;
    }
    rc.addr = smtp_render_addr(&cmd->addr, s->cfg->unqualified_rcpt_domain);
    if (rc.addr == NULL) {
        smtp_reply(s, 501, "5.1.3", "Bad recipient address syntax", "rcptto");
        return;
    }
    rc.notify = cmd->u.rcpt.notify;
    rc.needs_utf8 = cmd->addr.needs_smtputf8;
    if (cmd->u.rcpt.has_orcpt) {
        rc.orcpt_type = strv_dup(cmd->u.rcpt.orcpt_type);
        rc.orcpt = xstrndup(cmd->u.rcpt.orcpt, cmd->u.rcpt.orcpt_len);
    }
    if (s->ops->on_rcpt) {
        s->ops->on_rcpt(s, s->arg, &s->txn, &rc, &r);
    }
    if (r.code >= 300) {
        free(rc.addr);
        free(rc.orcpt_type);
        free(rc.orcpt);
        smtp_send(s, &r, "rcptto");
        return;
    }
    s->txn.rcpts = xgrow(s->txn.rcpts, &s->txn.rcpts_cap, s->txn.nrcpts + 1, sizeof(rc));
    s->txn.rcpts[s->txn.nrcpts++] = rc;
    s->rcpts_total++;
    smtp_send(s, &r, "rcptto");
}

/* ---- DATA / BDAT ---- */

/* Starts the message: false (with the refusal sent) when it cannot be taken. */
static bool
smtp_begin_message(struct smtp_server *s, struct smtp_reply *r, bool raw)
{
    struct smtp_data_opts o = s->cfg->data;

    if (s->txn.sender == NULL) {
        smtp_reply(s, 503, "5.5.1", "Need MAIL command", "data");
        return false;
    }
    if (s->txn.nrcpts == 0) {
        smtp_reply(s, 554, "5.5.1", "No valid recipients", "data");
        return false;
    }
    if (s->ops->data_begin) {
        s->ops->data_begin(s, s->arg, &s->txn, r);
    }
    if (r->code >= 400) {
        smtp_send(s, r, "data");
        return false;
    }
    o.max_size = s->cfg->max_message_size;
    o.raw = raw;
    smtp_data_dec_init(&s->dec, &o);
    s->txn.data_started = true;
    s->write_failed = false;
    if (s->cfg->data_idle_ms) {
        conn_set_timeout(s->conn, s->cfg->data_idle_ms);
    }
    return true;
}

static void
smtp_do_data(struct smtp_server *s, const struct smtp_cmd *cmd)
{
    struct smtp_reply r = SMTP_REPLY(354, "", "End data with <CR><LF>.<CR><LF>");

    if (s->txn.data_started) {
        smtp_reply(s, 503, "5.5.1", "DATA not allowed after BDAT", "data");
        return;
    }
    if (cmd->arg.len) {
        smtp_reply(s, 501, "5.5.4", "Syntax: DATA", "data");
        return;
    }
    if (s->txn.sender && s->txn.mail.body == SMTP_BODY_BINARYMIME) {
        smtp_reply(s, 503, "5.5.1", "BINARYMIME requires BDAT", "data");
        return;
    }
    if (!smtp_begin_message(s, &r, false)) {
        return;
    }
    r.enh[0] = '\0';
    smtp_send(s, &r, "data");
    s->state = SMTP_ST_DATA;
}

static void
smtp_do_bdat(struct smtp_server *s, const struct smtp_cmd *cmd)
{
    struct smtp_reply r = SMTP_REPLY(250, "2.0.0", "");

    s->bdat_left = cmd->u.bdat.size;
    s->bdat_last = cmd->u.bdat.last;
    s->bdat_replied = false;
    s->state = SMTP_ST_BDAT;
    if (!s->bdat_failed && !s->txn.data_started && !smtp_begin_message(s, &r, true)) {
        /* refused now: swallow the chunk; this reply answers it */
        s->bdat_failed = true;
        s->bdat_replied = true;
    }
}

/* Feeds decoded bytes to the layer above. */
static void
smtp_deliver_bytes(struct smtp_server *s, size_t n)
{
    if (n == 0 || s->write_failed || s->dec.stats.too_big) {
        return;
    }
    if (s->ops->data_write && s->ops->data_write(s, s->arg, s->outbuf, n) != 0) {
        s->write_failed = true;
    }
}

/* The whole message is in: check it and hand it to the layer above. */
static void
smtp_end_message(struct smtp_server *s)
{
    struct smtp_reply r;

    if (s->cfg->idle_ms) {
        conn_set_timeout(s->conn, s->cfg->idle_ms);
    }
    if (smtp_data_dec_check(&s->dec, &r) != 0) {
        smtp_txn_clear(s);
        smtp_send(s, &r, "data");
        s->state = SMTP_ST_CMD;
        return;
    }
    if (s->write_failed) {
        smtp_txn_clear(s);
        smtp_reply(s, 452, "4.3.1", "Insufficient system storage", "data");
        s->state = SMTP_ST_CMD;
        return;
    }
    s->state = SMTP_ST_BUSY;
    s->storing = true;
    s->ops->data_end(s, s->arg, &s->txn, &s->dec.stats);
}

/* DATA: decode what is buffered; true when the state changed. */
static bool
smtp_pump_data(struct smtp_server *s)
{
    struct buf *in = &s->conn->in;

    while (buf_len(in) || (smtp_data_dec_done(&s->dec))) {
        size_t produced = 0;
        size_t used =
            smtp_data_decode(&s->dec, buf_data(in), s->outbuf, SMTP_DATA_CHUNK, &produced);

        buf_consume(in, used);
        smtp_deliver_bytes(s, produced);
        if (smtp_data_dec_done(&s->dec)) {
            smtp_end_message(s);
            return true;
        }
        if (used == 0 && produced == 0) {
            break;
        }
    }
    return false;
}

/* BDAT: take chunk octets; true when the chunk ended. */
static bool
smtp_pump_bdat(struct smtp_server *s)
{
    struct buf *in = &s->conn->in;
    size_t take = buf_len(in) < s->bdat_left ? buf_len(in) : (size_t)s->bdat_left;

    if (s->bdat_failed) {
        buf_consume(in, take);
        s->bdat_left -= take;
    } else {
        while (take) {
            struct strv part = strv_sub(buf_data(in), 0, take);
            size_t produced = 0;
            size_t used = smtp_data_decode(&s->dec, part, s->outbuf, SMTP_DATA_CHUNK, &produced);

            buf_consume(in, used);
            s->bdat_left -= used;
            take -= used;
            smtp_deliver_bytes(s, produced);
            if (used == 0 && produced == 0) {
                break;
            }
        }
    }
    if (s->bdat_left) {
        return false;
    }
    if (s->bdat_failed) {
        if (!s->bdat_replied) {
            smtp_reply(s, 554, "5.5.1", "Transaction failed; send RSET", "data");
        }
        if (s->bdat_last) {
            smtp_txn_clear(s);
        }
        s->state = SMTP_ST_CMD;
        return true;
    }
    if (!s->bdat_last) {
        char text[64];

        snprintf(text, sizeof(text), "%llu octets received", (unsigned long long)s->dec.stats.wire);
        smtp_reply(s, 250, "2.0.0", text, "data");
        s->state = SMTP_ST_CMD;
        return true;
    }
    while (!smtp_data_dec_done(&s->dec)) {
        smtp_deliver_bytes(s, smtp_data_dec_finish(&s->dec, s->outbuf, SMTP_DATA_CHUNK));
    }
    smtp_end_message(s);
    return true;
}

void
smtp_server_data_done(struct smtp_server *s, const struct smtp_reply *r)
{
    if (!s->storing) {
        return;
    }
    s->storing = false;
    s->txn.data_started = false; /* the layer above finished with the message */
    if (s->peer_gone) {
        smtp_session_free(s);
        return;
    }
    if (r->code < 300) {
        s->messages++;
    }
    smtp_send(s, r, "data");
    smtp_txn_clear(s);
    s->state = SMTP_ST_CMD;
    smtp_process(s);
    conn_flush(s->conn);
}

/* ---- STARTTLS ---- */

static void
smtp_do_starttls(struct smtp_server *s, const struct smtp_cmd *cmd)
{
    SSL *ssl;

    if (!(s->cfg->ext & SMTP_EXT_STARTTLS) || s->cfg->tls_ctx == NULL) {
        smtp_reply(s, 502, "5.5.1", "STARTTLS not available", "starttls");
        return;
    }
    if (s->tls) {
        smtp_reply(s, 503, "5.5.1", "TLS already active", "starttls");
        return;
    }
    if (cmd->arg.len) {
        smtp_reply(s, 501, "5.5.4", "Syntax: STARTTLS", "starttls");
        return;
    }
    ssl = SSL_new(s->cfg->tls_ctx);
    if (ssl == NULL) {
        smtp_reply(s, 454, "4.7.0", "TLS not available due to temporary reason", "starttls");
        return;
    }
    if (buf_len(&s->conn->in) && s->cfg->tls_injection == SMTP_TLS_INJECTION_REJECT) {
        struct smtp_reply r =
            SMTP_REPLY(554, "5.7.0", "Commands pipelined after STARTTLS discarded");

        if (s->ops->log_reject) {
            s->ops->log_reject(s, s->arg, "starttls", &r);
        }
    }
    smtp_reply(s, 220, "2.0.0", "Ready to start TLS", "starttls");
    smtp_txn_clear(s);
    if (conn_start_tls(s->conn, ssl, true) != 0) {
        conn_close(s->conn);
        return;
    }
    s->state = SMTP_ST_TLS;
}

/* ---- AUTH ---- */

static void
smtp_auth_result(struct smtp_server *s, struct strv user, int rc)
{
    if (rc == 0) {
        free(s->auth_user);
        s->auth_user = strv_dup(user);
        smtp_reply(s, 235, "2.7.0", "Authentication successful", "auth");
        s->state = SMTP_ST_CMD;
        return;
    }
    /* answer a failure only after a delay, to slow down guessing */
    s->delayed = (struct smtp_reply){535, "5.7.8", STRV_NULL};
    snprintf(s->delayed_text, sizeof(s->delayed_text), "Authentication credentials invalid");
    s->state = SMTP_ST_BUSY;
    smtp_arm_delay(s, s->cfg->auth_fail_delay_ms ? s->cfg->auth_fail_delay_ms : 1);
}

static void
smtp_auth_plain(struct smtp_server *s, struct strv b64)
{
    struct buf dec;
    struct strv all, authz, user, pass;

    buf_init(&dec, SMTP_AUTH_MAX);
    if (try_base64_decode(b64, &dec) != 0) {
        buf_release(&dec);
        smtp_reply(s, 501, "5.5.2", "Cannot decode response", "auth");
        s->state = SMTP_ST_CMD;
        return;
    }
    all = buf_data(&dec);
    authz = strv_split(&all, '\0');
    user = strv_split(&all, '\0');
    pass = all;
    (void)authz; /* acting as another identity is not supported: authorise as user */
    if (user.len == 0 || strv_chr(pass, '\0') >= 0) {
        if (dec.data) {
            explicit_bzero(dec.data, dec.cap);
        }
        buf_release(&dec);
        smtp_reply(s, 501, "5.5.2", "Malformed PLAIN response", "auth");
        s->state = SMTP_ST_CMD;
        return;
    }
    smtp_auth_result(s, user, s->ops->auth_check ? s->ops->auth_check(s, s->arg, user, pass) : -1);
    explicit_bzero(dec.data, dec.cap);
    buf_release(&dec);
}

static void
smtp_auth_login_step(struct smtp_server *s, struct strv b64)
{
    struct buf dec;

    buf_init(&dec, SMTP_AUTH_MAX);
    if (try_base64_decode(b64, &dec) != 0 || strv_chr(buf_data(&dec), '\0') >= 0) {
        buf_release(&dec);
        smtp_reply(s, 501, "5.5.2", "Cannot decode response", "auth");
        s->state = SMTP_ST_CMD;
        return;
    }
    if (s->auth_step == SMTP_AUTH_STEP_LOGIN_USER) {
        free(s->login_user);
        s->login_user = buf_steal_cstr(&dec);
        s->auth_step = SMTP_AUTH_STEP_LOGIN_PASS;
        smtp_reply(s, 334, "", "UGFzc3dvcmQ6", "auth"); /* "Password:" */
        return;
    }
    smtp_auth_result(
        s, strv_from_cstr(s->login_user),
        s->ops->auth_check
            ? s->ops->auth_check(s, s->arg, strv_from_cstr(s->login_user), buf_data(&dec))
            : -1);
    explicit_bzero(dec.data, dec.cap);
    buf_release(&dec);
    mem_clear_free(s->login_user, strlen(s->login_user));
    s->login_user = NULL;
}

static void
smtp_do_auth(struct smtp_server *s, const struct smtp_cmd *cmd)
{
    unsigned mech = smtp_auth_mech_bit(cmd->u.auth.mech);

    if (s->cfg->auth_mechs == 0) {
        smtp_reply(s, 502, "5.5.1", "AUTH not available", "auth");
        return;
    }
    if (s->auth_user) {
        smtp_reply(s, 503, "5.5.1", "Already authenticated", "auth");
        return;
    }
    if (s->txn.sender) {
        smtp_reply(s, 503, "5.5.1", "AUTH not allowed during a mail transaction", "auth");
        return;
    }
    if (!s->tls && !s->cfg->auth_without_tls) {
        smtp_reply(s, 538, "5.7.11", "Encryption required for requested authentication mechanism",
                   "auth");
        return;
    }
    if ((mech & s->cfg->auth_mechs) == 0) {
        smtp_reply(s, 504, "5.5.4", "Unrecognized authentication type", "auth");
        return;
    }
    if (mech == SMTP_AUTH_PLAIN) {
        if (cmd->u.auth.has_initial) {
            smtp_auth_plain(s, strv_eq_cstr(cmd->u.auth.initial, "=") ? STRV_LIT("")
                                                                      : cmd->u.auth.initial);
            return;
        }
        s->auth_step = SMTP_AUTH_STEP_PLAIN;
        s->state = SMTP_ST_AUTH;
        smtp_reply(s, 334, "", "", "auth");
        return;
    }
    s->state = SMTP_ST_AUTH;
    if (cmd->u.auth.has_initial) {
        s->auth_step = SMTP_AUTH_STEP_LOGIN_USER;
        smtp_auth_login_step(s, cmd->u.auth.initial);
        return;
    }
    s->auth_step = SMTP_AUTH_STEP_LOGIN_USER;
    smtp_reply(s, 334, "", "VXNlcm5hbWU6", "auth"); /* "Username:" */
}

static void
smtp_auth_response(struct smtp_server *s, struct strv line)
{
    if (strv_eq_cstr(line, "*")) {
        mem_clear_free(s->login_user, s->login_user ? strlen(s->login_user) : 0);
        s->login_user = NULL;
        smtp_reply(s, 501, "5.0.0", "Authentication cancelled", "auth");
        s->state = SMTP_ST_CMD;
        return;
    }
    if (s->auth_step == SMTP_AUTH_STEP_PLAIN) {
        smtp_auth_plain(s, line);
    } else {
        smtp_auth_login_step(s, line);
    }
}

/* ---- XCLIENT ---- */

static void
smtp_do_xclient(struct smtp_server *s, const struct smtp_cmd *cmd)
{
    if (!s->cfg->xclient) {
        smtp_reply(s, 550, "5.7.0", "XCLIENT not authorized", "connect");
        return;
    }
    if (s->txn.sender) {
        smtp_reply(s, 503, "5.5.1", "XCLIENT not allowed during a mail transaction", "connect");
        return;
    }
    for (size_t i = 0; i < cmd->nparams; i++) {
        const struct smtp_param *p = &cmd->params[i];
        char v[256];

        strv_copy(p->value, v, sizeof(v));
        if (strv_eq_cstr_ci(p->key, "ADDR") && !strv_eq_cstr_ci(p->value, "[UNAVAILABLE]")) {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&s->peer;
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&s->peer;
            const char *ip = strncasecmp(v, "IPV6:", 5) == 0 ? v + 5 : v;

            memset(&s->peer, 0, sizeof(s->peer));
            if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
                s4->sin_family = AF_INET;
            } else if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
                s6->sin6_family = AF_INET6;
            } else {
                smtp_reply(s, 501, "5.5.4", "Bad XCLIENT ADDR", "connect");
                return;
            }
            snprintf(s->peer_ip, sizeof(s->peer_ip), "%s", ip);
        } else if (strv_eq_cstr_ci(p->key, "HELO")) {
            snprintf(s->helo, sizeof(s->helo), "%s", v);
            s->helo_seen = true;
        } else if (strv_eq_cstr_ci(p->key, "LOGIN")) {
            free(s->auth_user);
            s->auth_user = strv_eq_cstr_ci(p->value, "[UNAVAILABLE]") ? NULL : xstrdup(v);
        }
    }
    /* XCLIENT answers with a fresh greeting, as Postfix does; EHLO comes again */
    s->esmtp = false;
    smtp_greet(s);
}

/* ---- command dispatch ---- */

/* The phase a refused line belongs to, from its verb (for the rejectlog). */
static const char *
smtp_phase_of_line(const struct smtp_server *s, struct strv line)
{
    struct strv word = strv_next_word(&line);
    ptrdiff_t colon = strv_chr(word, ':');

    if (colon >= 0) {
        word = strv_sub(word, 0, (size_t)colon); /* "MAIL FROM:<x>" written without a space */
    }
    for (int v = SMTP_VERB_HELO; v <= SMTP_VERB_XCLIENT; v++) {
        if (strv_eq_cstr_ci(word, smtp_verb_name((enum smtp_verb)v))) {
            return smtp_phase(s, (enum smtp_verb)v);
        }
    }
    return s->txn.sender ? "rcptto" : "mailfrom";
}

static void
smtp_handle_line(struct smtp_server *s, struct strv line)
{
    struct smtp_cmd cmd;
    struct smtp_reply r;
    struct smtp_cmd_opts o = s->cfg->cmd;

    o.ext = s->cfg->ext | (s->cfg->xclient ? SMTP_EXT_XCLIENT : 0);
    o.smtputf8 = s->txn.sender && s->txn.mail.smtputf8;
    if (smtp_cmd_parse(line, &o, &cmd, &r) != 0) {
        smtp_send(s, &r, smtp_phase_of_line(s, line));
        return;
    }
    if (!s->esmtp &&
        (cmd.verb == SMTP_VERB_BDAT || cmd.verb == SMTP_VERB_STARTTLS ||
         cmd.verb == SMTP_VERB_AUTH ||
         (cmd.nparams && (cmd.verb == SMTP_VERB_MAIL || cmd.verb == SMTP_VERB_RCPT)))) {
        smtp_reply(s, 503, "5.5.1", "Send EHLO first: this needs an extension",
                   smtp_phase(s, cmd.verb));
        if (cmd.verb == SMTP_VERB_BDAT) {
            /* the chunk follows the command regardless: swallow it */
            s->bdat_left = cmd.u.bdat.size;
            s->bdat_last = false;
            s->bdat_failed = true;
            s->bdat_replied = true;
            s->state = SMTP_ST_BDAT;
        }
        return;
    }
    switch (cmd.verb) {
    case SMTP_VERB_HELO:
    case SMTP_VERB_EHLO:
        smtp_do_helo(s, &cmd);
        return;
    case SMTP_VERB_MAIL:
        smtp_do_mail(s, &cmd);
        return;
    case SMTP_VERB_RCPT:
        smtp_do_rcpt(s, &cmd);
        return;
    case SMTP_VERB_DATA:
        smtp_do_data(s, &cmd);
        return;
    case SMTP_VERB_BDAT:
        smtp_do_bdat(s, &cmd);
        return;
    case SMTP_VERB_RSET:
        smtp_txn_clear(s);
        smtp_reply(s, 250, "2.0.0", "Ok", "mailfrom");
        return;
    case SMTP_VERB_NOOP:
        smtp_reply(s, 250, "2.0.0", "Ok", smtp_phase(s, cmd.verb));
        return;
    case SMTP_VERB_QUIT:
        smtp_txn_clear(s);
        smtp_close_with(s, 221, "2.0.0", "Bye", "quit");
        return;
    case SMTP_VERB_HELP:
        smtp_reply(s, 214, "2.0.0", "celer: see RFC 5321", smtp_phase(s, cmd.verb));
        return;
    case SMTP_VERB_VRFY:
        smtp_reply(s, 252, "2.5.0",
                   "Cannot VRFY user, but will accept message and attempt delivery",
                   smtp_phase(s, cmd.verb));
        return;
    case SMTP_VERB_EXPN:
        smtp_reply(s, 502, "5.5.1", "EXPN not available", smtp_phase(s, cmd.verb));
        return;
    case SMTP_VERB_STARTTLS:
        smtp_do_starttls(s, &cmd);
        return;
    case SMTP_VERB_AUTH:
        smtp_do_auth(s, &cmd);
        return;
    case SMTP_VERB_XCLIENT:
        smtp_do_xclient(s, &cmd);
        return;
    }
}

/* Takes the next command line off the input; false when none is complete. */
static bool
smtp_take_line(struct smtp_server *s, struct strv *line)
{
    struct buf *in = &s->conn->in;
    size_t max = s->state == SMTP_ST_AUTH ||
                         (buf_len(in) >= 5 && strncasecmp(buf_data(in).ptr, "AUTH ", 5) == 0)
                     ? SMTP_CMD_AUTH_LINE_MAX
                     : SMTP_CMD_LINE_MAX;

    for (;;) {
        if (buf_take_line(in, line, NULL)) {
            if (s->skipping_line) {
                s->skipping_line = false;
                continue; /* the tail of an over-long line */
            }
            if (line->len > max) {
                smtp_reply(s, 500, "5.5.2", "Line too long", smtp_phase(s, SMTP_VERB_NOOP));
                continue;
            }
            return true;
        }
        if (buf_len(in) > max) {
            buf_consume(in, buf_len(in));
            if (!s->skipping_line) {
                s->skipping_line = true;
                smtp_reply(s, 500, "5.5.2", "Line too long", smtp_phase(s, SMTP_VERB_NOOP));
            }
        }
        return false;
    }
}

static void
smtp_process(struct smtp_server *s)
{
    struct strv line;

    while (!s->conn->closed) {
        switch (s->state) {
        case SMTP_ST_CMD:
            if (!smtp_take_line(s, &line)) {
                return;
            }
            smtp_handle_line(s, line);
            break;
        case SMTP_ST_AUTH:
            if (!smtp_take_line(s, &line)) {
                return;
            }
            smtp_auth_response(s, line);
            break;
        case SMTP_ST_DATA:
            if (!smtp_pump_data(s)) {
                return;
            }
            break;
        case SMTP_ST_BDAT:
            if (!smtp_pump_bdat(s)) {
                return;
            }
            break;
        default:
            return;
        }
    }
}

/* The connection is over: close it; free the session unless a message is being stored. */
static void
smtp_end_session(struct smtp_server *s)
{
    conn_close(s->conn);
    evtimer_del(s->ev_delay);
    if (s->storing) {
        s->peer_gone = true; /* smtp_server_data_done() frees the session */
        return;
    }
    smtp_session_free(s);
}

static void
smtp_on_conn(struct conn *c, enum conn_event ev, void *arg)
{
    struct smtp_server *s = arg;

    switch (ev) {
    case CONN_EV_READ:
        if (s->state == SMTP_ST_PAUSE) {
            /* the client talked before the greeting: not a patient MTA */
            evtimer_del(s->ev_delay);
            smtp_close_with(s, 554, "5.5.0", "Protocol error: talking before the greeting",
                            "connect");
            return;
        }
        if (s->cfg->idle_ms && s->state != SMTP_ST_DATA && s->state != SMTP_ST_BDAT) {
            conn_set_timeout(c, s->cfg->idle_ms);
        } else if (s->cfg->data_idle_ms) {
            conn_set_timeout(c, s->cfg->data_idle_ms);
        }
        if (s->state == SMTP_ST_CLOSING || s->state == SMTP_ST_TLS) {
            buf_consume(&c->in, buf_len(&c->in));
            return;
        }
        if (s->state == SMTP_ST_BUSY) {
            return; /* pipelined input waits until the message is stored */
        }
        smtp_process(s);
        return;
    case CONN_EV_TLS_DONE:
        s->tls = true;
        s->helo_seen = false; /* RFC 3207: forget everything learnt before TLS */
        s->esmtp = false;
        s->helo[0] = '\0';
        s->state = SMTP_ST_CMD;
        smtp_process(s);
        return;
    case CONN_EV_TIMEOUT:
        if (s->state == SMTP_ST_CLOSING) {
            smtp_end_session(s);
            return;
        }
        smtp_close_with(s, 421, "4.4.2", "Idle timeout, closing connection",
                        smtp_phase(s, SMTP_VERB_NOOP));
        return;
    case CONN_EV_DRAINED:
        if (s->state == SMTP_ST_CLOSING) {
            smtp_end_session(s);
        }
        return;
    case CONN_EV_CONNECTED:
        return;
    case CONN_EV_EOF:
        if (s->state == SMTP_ST_CLOSING && conn_pending_out(c)) {
            return; /* let the final reply go; DRAINED or the timer ends it */
        }
        smtp_end_session(s);
        return;
    case CONN_EV_ERROR:
        smtp_end_session(s);
        return;
    }
}

void
smtp_server_shutdown(struct smtp_server *s, const char *why)
{
    if (s->state == SMTP_ST_CLOSING || s->storing) {
        return; /* a message being stored answers first */
    }
    evtimer_del(s->ev_delay);
    smtp_txn_clear(s);
    smtp_close_with(s, 421, "4.3.2", why ? why : "Service shutting down", "connect");
}

const struct sockaddr *
smtp_server_peer(const struct smtp_server *s)
{
    return (const struct sockaddr *)&s->peer;
}

const char *
smtp_server_peer_ip(const struct smtp_server *s)
{
    return s->peer_ip;
}

const char *
smtp_server_helo(const struct smtp_server *s)
{
    return s->helo;
}

bool
smtp_server_esmtp(const struct smtp_server *s)
{
    return s->esmtp;
}

const char *
smtp_server_auth_user(const struct smtp_server *s)
{
    return s->auth_user;
}

SSL *
smtp_server_ssl(const struct smtp_server *s)
{
    return s->tls ? s->conn->ssl : NULL;
}

struct conn *
smtp_server_conn(const struct smtp_server *s)
{
    return s->conn;
}

unsigned
smtp_server_messages(const struct smtp_server *s)
{
    return s->messages;
}
