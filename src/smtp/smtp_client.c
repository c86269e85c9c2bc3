/*
 * smtp_client: the outbound SMTP/LMTP session (see smtp_client.h).
 *
 * One state per reply the session waits for. With PIPELINING the commands
 * of a transaction are all queued at once and the states then only follow
 * the replies as they come; in lock-step each reply handler queues the next
 * command. Every reply re-arms the connection's timer with the timeout of
 * the next state.
 *
 * Lifetime: the session is entered only from the loop (conn events and its
 * own deferred event). Callbacks may abort or end it; it is then marked
 * dead and freed when the outermost entry returns (depth counts them).
 * Static functions carry the short prefix sc_.
 */
#include "smtp/smtp_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/mem.h"
#include "net/tls.h"
#include "smtp/smtp_data.h"
#include "smtp/smtp_xtext.h"

#define SC_CHUNK    65536        /* message octets read per pread */
#define SC_OUT_HIGH (256 * 1024) /* queued output before waiting for it to drain */
#define SC_CMD_MAX  65536        /* one command line being built */
#define SC_EHLO_MAX (SMTP_REPLY_LINES_MAX * (SMTP_REPLY_LINE_IN_MAX + 2))

enum sc_state {
    SC_CONNECTING, /* TCP connect */
    SC_BANNER,     /* waiting for the greeting */
    SC_EHLO,       /* EHLO or LHLO sent */
    SC_HELO,       /* HELO sent (EHLO got a 5xx) */
    SC_STARTTLS,   /* STARTTLS sent */
    SC_TLS,        /* handshake */
    SC_IDLE,       /* ready for a message */
    SC_LOCAL,      /* a message refused locally; its result comes from ev_defer */
    SC_MAIL,       /* waiting for the MAIL reply */
    SC_RCPT,       /* waiting for the reply to RCPT number ridx */
    SC_DATA,       /* waiting for the DATA reply */
    SC_BODY,       /* streaming the message */
    SC_BDAT,       /* sending BDAT chunks (binary content) and reading their replies */
    SC_DOT,        /* waiting for the final reply(s) */
    SC_DISCARD,    /* waiting for the reply to an empty message (RFC 2920 3.1) */
    SC_RSET,       /* waiting for the RSET reply */
    SC_QUIT,       /* waiting for the QUIT reply */
    SC_DEAD,       /* closed */
};

enum sc_rcpt_state {
    SC_R_PENDING = 0, /* no reply yet */
    SC_R_ACCEPTED,    /* RCPT accepted, outcome not yet known */
    SC_R_DONE,        /* outcome in rout[] */
};

struct smtp_client {
    struct conn *conn;                 /* owned (closed, then freed by its loop) */
    struct smtp_client_cfg cfg;        /* copy: strings borrowed, tls_ctx ref */
    const struct smtp_client_ops *ops; /* borrowed */
    void *arg;                         /* borrowed */
    struct event *ev_defer;            /* owned: reports local refusals */
    enum sc_state state;
    unsigned depth;      /* nesting of loop entries */
    bool dead;           /* closed() called or aborted: free on the way out */
    bool ending;         /* the session is ending: no more messages */
    bool quit_requested; /* smtp_client_quit() */
    bool ready_sent;
    bool tls_on;
    bool defer_fail; /* SC_LOCAL: queueing the commands failed */
    int write_err;   /* first failure while queueing commands */
    struct smtp_ehlo caps;
    struct buf ehlo_raw; /* the last EHLO reply; caps' views borrow it */
    struct buf cmd;      /* command being built */
    unsigned messages;
    /* the message in flight */
    const struct smtp_client_msg *m; /* borrowed until its result */
    void *msg_arg;                   /* borrowed */
    struct smtp_client_reply *rout;  /* owned: per-recipient outcomes */
    unsigned char *rst;              /* owned: enum sc_rcpt_state per recipient */
    struct smtp_client_reply mreply; /* the reply that decided the message */
    bool mdecided;
    bool mail_ok;
    bool pipelined;
    size_t ridx;       /* next recipient whose RCPT (or LMTP final) reply is due */
    size_t naccepted;  /* recipients accepted at RCPT */
    uint64_t sent;     /* message octets queued */
    uint64_t total;    /* prepend_len + body_len */
    bool bdat;         /* the message goes in BDAT chunks, not DATA (binary content) */
    bool bdat_last;    /* the LAST chunk is queued */
    bool bdat_failed;  /* a chunk was refused: no more chunks, RSET once replies are in */
    unsigned bdat_due; /* BDAT commands sent whose replies have not come yet */
    struct smtp_data_enc enc;
    char *rdbuf; /* owned: SC_CHUNK octets for pread */
};

static void sc_on_conn(struct conn *conn, enum conn_event ev, void *arg);
static void sc_on_defer(evutil_socket_t fd, short what, void *arg);
static void sc_send_quit(struct smtp_client *c);
static void sc_body_pump(struct smtp_client *c);
static void sc_bdat_start(struct smtp_client *c);
static void sc_bdat_pump(struct smtp_client *c);

/* ---- replies as data ---- */

/* Copies t into dst[size] with control octets as spaces, cut on a UTF-8 boundary. */
static void
sc_text_set(char *dst, size_t size, struct strv t)
{
    size_t n = t.len < size - 1 ? t.len : size - 1;

    if (n < t.len) {
        while (n > 0 && ((unsigned char)t.ptr[n] & 0xC0) == 0x80) {
            n--; /* do not cut inside a UTF-8 sequence */
        }
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)t.ptr[i];

        dst[i] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
    }
    dst[n] = '\0';
}

static void
sc_reply_from_in(struct smtp_client_reply *r, const struct smtp_reply_in *in, enum smtp_stage stage)
{
    struct strv t = in->nlines ? in->lines[0] : STRV_NULL;
    size_t elen = strnlen(in->enh, sizeof(in->enh));

    r->code = in->code;
    memcpy(r->enh, in->enh, elen);
    r->enh[elen] = '\0';
    if (elen) {
        t = strv_from(t, elen);
        if (t.len && t.ptr[0] == ' ') {
            t = strv_from(t, 1);
        }
    }
    sc_text_set(r->text, sizeof(r->text), t);
    r->stage = stage;
}

static void __attribute__((format(printf, 5, 6)))
sc_synth(struct smtp_client_reply *r, int code, const char *enh, enum smtp_stage stage,
         const char *fmt, ...)
{
    char text[sizeof(r->text)];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (n < 0) {
        n = 0;
        text[0] = '\0';
    }
    r->code = code;
    snprintf(r->enh, sizeof(r->enh), "%s", enh);
    sc_text_set(r->text, sizeof(r->text),
                strv_make(text, (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1));
    r->stage = stage;
}

char *
smtp_client_reply_str(const struct smtp_client_reply *r, char *dst, size_t size)
{
    if (r->code == 0) {
        snprintf(dst, size, "%s", r->text);
    } else if (r->enh[0]) {
        snprintf(dst, size, "%d %s %s", r->code, r->enh, r->text);
    } else {
        snprintf(dst, size, "%d %s", r->code, r->text);
    }
    return dst;
}

/* ---- states ---- */

static enum smtp_stage
sc_stage(const struct smtp_client *c)
{
    static const enum smtp_stage stages[] = {
        [SC_CONNECTING] = SMTP_STAGE_NOT_CONNECTED,
        [SC_BANNER] = SMTP_STAGE_BANNER,
        [SC_EHLO] = SMTP_STAGE_EHLO,
        [SC_HELO] = SMTP_STAGE_EHLO,
        [SC_STARTTLS] = SMTP_STAGE_STARTTLS,
        [SC_TLS] = SMTP_STAGE_TLS_HANDSHAKE,
        [SC_IDLE] = SMTP_STAGE_IDLE,
        [SC_LOCAL] = SMTP_STAGE_MAILFROM,
        [SC_MAIL] = SMTP_STAGE_MAILFROM,
        [SC_RCPT] = SMTP_STAGE_RCPTTO,
        [SC_DATA] = SMTP_STAGE_DATA,
        [SC_BODY] = SMTP_STAGE_BODY,
        [SC_BDAT] = SMTP_STAGE_BODY,
        [SC_DOT] = SMTP_STAGE_CONFIRMATION,
        [SC_DISCARD] = SMTP_STAGE_CONFIRMATION,
        [SC_RSET] = SMTP_STAGE_RSET,
        [SC_QUIT] = SMTP_STAGE_IDLE,
        [SC_DEAD] = SMTP_STAGE_UNKNOWN,
    };

    if (c->state == SC_BDAT && c->bdat_last) {
        return SMTP_STAGE_CONFIRMATION;
    }
    return stages[c->state];
}

/* What the session was doing, for timeout and connection-loss texts. */
static const char *
sc_doing(const struct smtp_client *c)
{
    switch (c->state) {
    case SC_CONNECTING:
        return "connecting";
    case SC_BANNER:
        return "waiting for the banner";
    case SC_EHLO:
        return c->cfg.lmtp ? "waiting for reply to LHLO" : "waiting for reply to EHLO";
    case SC_HELO:
        return "waiting for reply to HELO";
    case SC_STARTTLS:
        return "waiting for reply to STARTTLS";
    case SC_TLS:
        return "doing the TLS handshake";
    case SC_MAIL:
        return "waiting for reply to MAIL FROM";
    case SC_RCPT:
        return "waiting for reply to RCPT TO";
    case SC_DATA:
        return "waiting for reply to DATA";
    case SC_BODY:
        return "sending message body";
    case SC_BDAT:
        return c->bdat_last ? "waiting for reply to BDAT LAST"
                            : "sending message body in BDAT chunks";
    case SC_DOT:
    case SC_DISCARD:
        return "waiting for reply to end of data";
    case SC_RSET:
        return "waiting for reply to RSET";
    case SC_QUIT:
        return "waiting for reply to QUIT";
    default:
        return "idle";
    }
}

static unsigned
sc_timeout(const struct smtp_client *c)
{
    switch (c->state) {
    case SC_CONNECTING:
        return c->cfg.connect_ms;
    case SC_BANNER:
    case SC_EHLO:
    case SC_HELO:
        return c->cfg.ehlo_ms;
    case SC_STARTTLS:
    case SC_TLS:
        return c->cfg.starttls_ms;
    case SC_MAIL:
        return c->cfg.mailfrom_ms;
    case SC_RCPT:
        return c->cfg.rcptto_ms;
    case SC_DATA:
        return c->cfg.data_ms;
    case SC_BODY:
    case SC_BDAT:
    case SC_DOT:
    case SC_DISCARD:
        return c->cfg.body_ms;
    case SC_RSET:
    case SC_QUIT:
        return c->cfg.rset_ms;
    case SC_IDLE:
        return c->cfg.idle_ms;
    default:
        return 0;
    }
}

/* Enters state s and arms its timeout. */
static void
sc_enter(struct smtp_client *c, enum sc_state s)
{
    c->state = s;
    conn_set_timeout(c->conn, sc_timeout(c));
}

/* ---- commands ---- */

/* Queues the command built in c->cmd plus CRLF; the first failure is kept in write_err. */
static void
sc_cmd_send(struct smtp_client *c)
{
    int rc;

    buf_append(&c->cmd, "\r\n", 2);
    rc = conn_write(c->conn, buf_data(&c->cmd).ptr, buf_len(&c->cmd));
    if (rc != 0 && c->write_err == 0) {
        c->write_err = rc;
    }
    buf_reset(&c->cmd);
}

static void
sc_cmd(struct smtp_client *c, const char *verb)
{
    buf_append_cstr(&c->cmd, verb);
    sc_cmd_send(c);
}

/* Appends xtext (or RFC 6533 utf-8-addr-xtext) of s to the command. */
static void
sc_cmd_xtext(struct smtp_client *c, const char *s, bool utf8addr)
{
    struct strv v = strv_from_cstr(s);
    int rc =
        utf8addr ? try_smtp_xtext_encode_utf8addr(v, &c->cmd) : try_smtp_xtext_encode(v, &c->cmd);

    if (rc != 0 && c->write_err == 0) {
        c->write_err = rc;
    }
}

static void
sc_cmd_mail(struct smtp_client *c)
{
    const struct smtp_client_msg *m = c->m;
    unsigned ext = c->caps.ext;

    buf_printf(&c->cmd, "MAIL FROM:<%s>", m->sender);
    if ((ext & SMTP_EXT_SIZE) && m->size) {
        buf_printf(&c->cmd, " SIZE=%llu", (unsigned long long)m->size);
    }
    if (m->binarymime) {
        buf_append_cstr(&c->cmd, " BODY=BINARYMIME"); /* offered: checked before */
    } else if (m->eightbit && c->cfg.send_8bitmime && (ext & SMTP_EXT_8BITMIME)) {
        buf_append_cstr(&c->cmd, " BODY=8BITMIME");
    }
    if (m->smtputf8) {
        buf_append_cstr(&c->cmd, " SMTPUTF8"); /* offered: checked before */
    }
    if (ext & SMTP_EXT_DSN) {
        if (m->ret == SMTP_RET_FULL || m->ret == SMTP_RET_HDRS) {
            buf_append_cstr(&c->cmd, m->ret == SMTP_RET_FULL ? " RET=FULL" : " RET=HDRS");
        }
        if (m->envid && m->envid[0]) {
            buf_append_cstr(&c->cmd, " ENVID=");
            sc_cmd_xtext(c, m->envid, false);
        }
    }
    sc_cmd_send(c);
}

static void
sc_cmd_rcpt(struct smtp_client *c, size_t i)
{
    const struct smtp_client_rcpt *r = &c->m->rcpts[i];

    buf_printf(&c->cmd, "RCPT TO:<%s>", r->addr);
    if (c->caps.ext & SMTP_EXT_DSN) {
        if (r->notify & SMTP_NOTIFY_NEVER) {
            buf_append_cstr(&c->cmd, " NOTIFY=NEVER");
        } else if (r->notify) {
            const char *sep = " NOTIFY=";

            if (r->notify & SMTP_NOTIFY_SUCCESS) {
                buf_printf(&c->cmd, "%sSUCCESS", sep);
                sep = ",";
            }
            if (r->notify & SMTP_NOTIFY_FAILURE) {
                buf_printf(&c->cmd, "%sFAILURE", sep);
                sep = ",";
            }
            if (r->notify & SMTP_NOTIFY_DELAY) {
                buf_printf(&c->cmd, "%sDELAY", sep);
            }
        }
        if (r->orcpt && r->orcpt[0]) {
            const char *type = r->orcpt_type && r->orcpt_type[0] ? r->orcpt_type : "rfc822";

            buf_printf(&c->cmd, " ORCPT=%s;", type);
            sc_cmd_xtext(c, r->orcpt, strcasecmp(type, "utf-8") == 0);
        }
    }
    sc_cmd_send(c);
}

static void
sc_cmd_hello(struct smtp_client *c, const char *verb)
{
    buf_printf(&c->cmd, "%s %s", verb, c->cfg.ehlo_name);
    sc_cmd_send(c);
}

/* ---- the end ---- */

/* The callback of a conn left to send a last QUIT after the session is gone. */
static void
sc_on_conn_closing(struct conn *conn, enum conn_event ev, void *arg)
{
    if (ev == CONN_EV_ERROR || ev == CONN_EV_EOF || ev == CONN_EV_TIMEOUT) {
        conn_close(conn);
    }
}

/*
 * Ends the session: closes the connection (after a QUIT when polite), calls
 * closed() and marks the session for freeing.
 */
static void
sc_end(struct smtp_client *c, const struct smtp_client_reply *why, bool polite)
{
    struct smtp_client_reply copy = *why;

    c->ending = true;
    if (polite && c->state != SC_TLS && c->write_err == 0 &&
        conn_write(c->conn, "QUIT\r\n", 6) == 0) {
        /* the conn outlives the session for the flush: it must not call back into it */
        conn_set_callback(c->conn, sc_on_conn_closing, NULL);
        conn_close_after_flush(c->conn, 1000);
    } else {
        conn_close(c->conn);
    }
    c->state = SC_DEAD;
    c->dead = true;
    if (c->ops->closed) {
        c->ops->closed(c, c->arg, copy.stage, &copy);
    }
}

static void
sc_msg_release(struct smtp_client *c)
{
    free(c->rout);
    free(c->rst);
    c->rout = NULL;
    c->rst = NULL;
    c->m = NULL;
    c->msg_arg = NULL;
}

/*
 * Reports the message in flight. Recipients still without an outcome get
 * why (the session failed: conn_lost). With ending, the session will not be
 * idle again; otherwise it is, and the idle timer (or a requested QUIT)
 * starts unless the caller sent another message from result().
 */
static void
sc_msg_report(struct smtp_client *c, const struct smtp_client_reply *why, bool ending)
{
    struct smtp_client_result res = {0};
    struct smtp_client_reply *rout = c->rout;
    unsigned char *rst = c->rst;
    void *msg_arg = c->msg_arg;

    res.nrcpts = c->m->nrcpts;
    for (size_t i = 0; i < res.nrcpts; i++) {
        if (rst[i] != SC_R_DONE) {
            rout[i] = *why;
            rst[i] = SC_R_DONE;
            res.conn_lost = true;
        }
    }
    res.msg = c->mdecided ? c->mreply : *why;
    res.stage = res.msg.stage;
    res.rcpt = rout;
    res.bytes_sent = c->sent;
    c->rout = NULL;
    c->rst = NULL;
    sc_msg_release(c);
    if (ending) {
        c->ending = true;
    } else {
        c->state = SC_IDLE;
    }
    if (c->ops->result) {
        c->ops->result(c, c->arg, msg_arg, &res);
    }
    free(rout);
    free(rst);
    if (c->dead || ending || c->state != SC_IDLE || c->m) {
        return;
    }
    if (c->quit_requested) {
        sc_send_quit(c);
        return;
    }
    sc_enter(c, SC_IDLE);
}

/* The session failed with why: the message in flight (if any) first, then closed(). */
static void
sc_fail(struct smtp_client *c, const struct smtp_client_reply *why, bool polite)
{
    struct smtp_client_reply copy = *why;

    if (c->m) {
        sc_msg_report(c, &copy, true);
        if (c->dead) {
            return; /* aborted from result() */
        }
    }
    sc_end(c, &copy, polite);
}

/* A local failure (code 0) at the current stage. */
static void __attribute__((format(printf, 2, 3)))
sc_fail_local(struct smtp_client *c, const char *fmt, ...)
{
    struct smtp_client_reply why;
    char text[sizeof(why.text)];
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(text, sizeof(text), fmt, ap); /* truncation is fine for a reason text */
    va_end(ap);
    sc_synth(&why, 0, "", sc_stage(c), "%s", text);
    sc_fail(c, &why, false);
}

/* Checks that queueing the last commands worked; false (and the session failed) if not. */
static bool
sc_flushed_ok(struct smtp_client *c)
{
    if (c->write_err == 0) {
        return true;
    }
    sc_fail_local(c, "local error queueing a command: %s", err_str(c->write_err));
    return false;
}

static void
sc_send_quit(struct smtp_client *c)
{
    c->ending = true;
    sc_cmd(c, "QUIT");
    if (sc_flushed_ok(c)) {
        sc_enter(c, SC_QUIT);
    }
}

/* ---- greeting, EHLO, STARTTLS ---- */

static void
sc_become_ready(struct smtp_client *c)
{
    if (c->quit_requested) {
        sc_send_quit(c);
        return;
    }
    sc_enter(c, SC_IDLE);
    if (!c->ready_sent) {
        c->ready_sent = true;
        if (c->ops->ready) {
            c->ops->ready(c, c->arg);
        }
    }
}

static void
sc_send_hello(struct smtp_client *c)
{
    sc_cmd_hello(c, c->cfg.lmtp ? "LHLO" : "EHLO");
    if (sc_flushed_ok(c)) {
        sc_enter(c, SC_EHLO);
    }
}

static void
sc_after_hello(struct smtp_client *c)
{
    struct smtp_client_reply why;

    if (!c->tls_on && c->cfg.tls != SMTP_CLIENT_TLS_NO) {
        if (c->caps.ext & SMTP_EXT_STARTTLS) {
            sc_cmd(c, "STARTTLS");
            if (sc_flushed_ok(c)) {
                sc_enter(c, SC_STARTTLS);
            }
            return;
        }
        if (c->cfg.tls == SMTP_CLIENT_TLS_REQUIRED) {
            sc_synth(&why, 0, "", SMTP_STAGE_AFTER_EHLO,
                     "TLS required but STARTTLS not offered by the server");
            sc_fail(c, &why, true);
            return;
        }
    }
    sc_become_ready(c);
}

static void
sc_on_ehlo(struct smtp_client *c, const struct smtp_client_reply *r)
{
    struct smtp_reply_in in;

    if (r->code >= 200 && r->code < 300) {
        /* caps borrow ehlo_raw, which holds this reply (see sc_process) */
        if (c->state == SC_HELO || smtp_reply_parse(buf_data(&c->ehlo_raw), &in) != 0 ||
            smtp_ehlo_parse(&in, &c->caps) != 0) {
            c->caps = (struct smtp_ehlo){0};
        }
        sc_after_hello(c);
        return;
    }
    if (c->state == SC_EHLO && !c->cfg.lmtp && r->code >= 500) {
        sc_cmd_hello(c, "HELO");
        if (sc_flushed_ok(c)) {
            sc_enter(c, SC_HELO);
        }
        return;
    }
    sc_fail(c, r, true);
}

static void
sc_start_tls(struct smtp_client *c)
{
    struct buf why;
    SSL *ssl;

    buf_init(&why, 1024);
    ssl = tls_new_ssl(c->cfg.tls_ctx, &why);
    if (ssl == NULL) {
        c->state = SC_TLS;
        sc_fail_local(c, "TLS setup failed: %.*s", STRV_FMT(buf_data(&why)));
        buf_release(&why);
        return;
    }
    buf_release(&why);
    if (c->cfg.nverify_names > 0 && c->cfg.verify_names[0]) {
        char sni[256];
        unsigned char ip[16];

        snprintf(sni, sizeof(sni), "%s", c->cfg.verify_names[0]);
        if (inet_pton(AF_INET, sni, ip) != 1 && inet_pton(AF_INET6, sni, ip) != 1) {
            (void)SSL_set_tlsext_host_name(ssl, sni); /* SNI is a courtesy */
        }
    }
    c->state = SC_TLS;
    if (conn_start_tls(c->conn, ssl, false) != 0) {
        sc_fail_local(c, "TLS setup failed");
        return;
    }
    sc_enter(c, SC_TLS);
}

static void
sc_on_starttls(struct smtp_client *c, const struct smtp_client_reply *r)
{
    struct smtp_client_reply why;
    char rs[600];

    if (r->code == 220) {
        sc_start_tls(c);
        return;
    }
    if (c->cfg.tls == SMTP_CLIENT_TLS_REQUIRED) {
        sc_synth(&why, 0, "", SMTP_STAGE_STARTTLS, "TLS required but STARTTLS refused: %s",
                 smtp_client_reply_str(r, rs, sizeof(rs)));
        sc_fail(c, &why, true);
        return;
    }
    sc_become_ready(c); /* opportunistic: go on in plaintext */
}

/* True when one of the verify names matches the certificate. */
static bool
sc_tls_name_ok(const struct smtp_client *c, X509 *peer)
{
    for (size_t i = 0; i < c->cfg.nverify_names; i++) {
        const char *name = c->cfg.verify_names[i];
        size_t len = name ? strlen(name) : 0;

        if (len && name[len - 1] == '.') {
            len--; /* absolute DNS name */
        }
        if (len == 0) {
            continue;
        }
        if (X509_check_ip_asc(peer, name, 0) == 1 ||
            X509_check_host(peer, name, len, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL) == 1) {
            return true;
        }
    }
    return false;
}

/* Checks the certificate per cfg.verify; false with why filled when it fails. */
static bool
sc_tls_verify(struct smtp_client *c, struct smtp_client_reply *why)
{
    SSL *ssl = c->conn->ssl;
    X509 *peer;
    long v;
    bool ok = true;

    if (c->cfg.verify == SMTP_CLIENT_VERIFY_NO) {
        return true;
    }
    peer = SSL_get1_peer_certificate(ssl);
    if (peer == NULL) {
        sc_synth(why, 0, "", SMTP_STAGE_TLS_HANDSHAKE,
                 "certificate verify failed: no certificate presented");
        return false;
    }
    v = SSL_get_verify_result(ssl);
    if (v != X509_V_OK) {
        sc_synth(why, 0, "", SMTP_STAGE_TLS_HANDSHAKE, "certificate verify failed: %s",
                 X509_verify_cert_error_string(v));
        ok = false;
    } else if (c->cfg.verify == SMTP_CLIENT_VERIFY_HOST && !sc_tls_name_ok(c, peer)) {
        sc_synth(why, 0, "", SMTP_STAGE_TLS_HANDSHAKE,
                 "certificate name mismatch: not valid for %s%s%s",
                 c->cfg.nverify_names ? c->cfg.verify_names[0] : "(no name)",
                 c->cfg.nverify_names > 1 ? " or " : "",
                 c->cfg.nverify_names > 1 ? c->cfg.verify_names[1] : "");
        ok = false;
    }
    X509_free(peer);
    return ok;
}

static void
sc_on_tls_done(struct smtp_client *c)
{
    struct smtp_client_reply why;

    if (!sc_tls_verify(c, &why)) {
        sc_fail(c, &why, false);
        return;
    }
    c->tls_on = true;
    c->caps = (struct smtp_ehlo){0}; /* RFC 3207: forget what was learnt before TLS */
    buf_reset(&c->ehlo_raw);
    sc_send_hello(c);
}

/* ---- the transaction ---- */

/* The transaction failed after MAIL was accepted: RSET before the result. */
static void
sc_after_failure(struct smtp_client *c)
{
    if (!c->mail_ok) {
        sc_msg_report(c, &c->mreply, false);
        return;
    }
    sc_cmd(c, "RSET");
    if (sc_flushed_ok(c)) {
        sc_enter(c, SC_RSET);
    }
}

/* No recipient was accepted: the first recipient's reply decides (unless MAIL did). */
static void
sc_decide_no_rcpt(struct smtp_client *c)
{
    if (!c->mdecided) {
        c->mreply = c->rout[0];
        c->mdecided = true;
    }
}

/* Every accepted recipient without an outcome gets r. */
static void
sc_decide_accepted(struct smtp_client *c, const struct smtp_client_reply *r)
{
    for (size_t i = 0; i < c->m->nrcpts; i++) {
        if (c->rst[i] == SC_R_ACCEPTED) {
            c->rout[i] = *r;
            c->rst[i] = SC_R_DONE;
        }
    }
    if (!c->mdecided) {
        c->mreply = *r;
        c->mdecided = true;
    }
}

static void
sc_on_mail(struct smtp_client *c, const struct smtp_client_reply *r)
{
    if (r->code >= 200 && r->code < 300) {
        c->mail_ok = true;
    } else {
        c->mreply = *r;
        c->mdecided = true;
        for (size_t i = 0; i < c->m->nrcpts; i++) {
            c->rout[i] = *r;
            c->rst[i] = SC_R_DONE;
        }
        if (!c->pipelined) {
            sc_msg_report(c, r, false);
            return;
        }
    }
    c->ridx = 0;
    if (!c->pipelined) {
        sc_cmd_rcpt(c, 0);
        if (!sc_flushed_ok(c)) {
            return;
        }
    }
    sc_enter(c, SC_RCPT);
}

static void
sc_on_rcpt(struct smtp_client *c, const struct smtp_client_reply *r)
{
    size_t i = c->ridx++;

    if (c->mail_ok) {
        if (r->code >= 200 && r->code < 300) {
            c->rst[i] = SC_R_ACCEPTED;
            c->naccepted++;
        } else {
            c->rout[i] = *r;
            c->rst[i] = SC_R_DONE;
        }
    }
    if (c->ridx < c->m->nrcpts) {
        if (!c->pipelined) {
            sc_cmd_rcpt(c, c->ridx);
            if (!sc_flushed_ok(c)) {
                return;
            }
        }
        sc_enter(c, SC_RCPT);
        return;
    }
    if (c->bdat) {
        if (c->naccepted == 0) {
            sc_decide_no_rcpt(c);
            sc_after_failure(c);
            return;
        }
        sc_bdat_start(c);
        return;
    }
    if (!c->pipelined) {
        if (c->naccepted == 0) {
            sc_decide_no_rcpt(c);
            sc_after_failure(c);
            return;
        }
        sc_cmd(c, "DATA");
        if (!sc_flushed_ok(c)) {
            return;
        }
    }
    sc_enter(c, SC_DATA);
}

static void
sc_on_data(struct smtp_client *c, const struct smtp_client_reply *r)
{
    if (r->code == 354) {
        if (c->naccepted > 0) {
            smtp_data_enc_init(&c->enc);
            c->sent = 0;
            c->total = c->m->mem ? c->m->mem_len : c->m->prepend_len + c->m->body_len;
            if (c->m->mem == NULL && c->rdbuf == NULL) {
                c->rdbuf = xmalloc(SC_CHUNK);
            }
            c->state = SC_BODY;
            sc_body_pump(c);
            return;
        }
        /* DATA was pipelined but no recipient made it: end with an empty message */
        sc_decide_no_rcpt(c);
        if (conn_write(c->conn, ".\r\n", 3) != 0) {
            sc_fail_local(c, "local error queueing a command");
            return;
        }
        sc_enter(c, SC_DISCARD);
        return;
    }
    if (c->naccepted > 0) {
        sc_decide_accepted(c, r);
    } else {
        sc_decide_no_rcpt(c);
    }
    sc_after_failure(c);
}

/*
 * Up to SC_CHUNK message octets at the current position, into *chunk (from
 * memory, or read into rdbuf): their count, 0 when the file ended early,
 * or -errno.
 */
static ssize_t
sc_body_read(struct smtp_client *c, struct strv *chunk)
{
    const struct smtp_client_msg *m = c->m;
    uint64_t pos = c->sent, off, left;
    ssize_t n;

    if (m->mem) {
        size_t len = c->total - pos < SC_CHUNK ? (size_t)(c->total - pos) : SC_CHUNK;

        *chunk = strv_make(m->mem + pos, len);
        return (ssize_t)len;
    }
    if (pos < m->prepend_len) {
        off = m->prepend_off + pos;
        left = m->prepend_len - pos;
    } else {
        off = m->body_off + (pos - m->prepend_len);
        left = m->body_len - (pos - m->prepend_len);
    }
    do {
        n = pread(m->fd, c->rdbuf, left < SC_CHUNK ? (size_t)left : SC_CHUNK, (off_t)off);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        return -errno;
    }
    *chunk = strv_make(c->rdbuf, (size_t)n);
    return n;
}

/* Queues message octets until enough output waits, then asks for DRAINED. */
static void
sc_body_pump(struct smtp_client *c)
{
    while (conn_pending_out(c->conn) < SC_OUT_HIGH) {
        struct strv chunk;
        ssize_t n;

        if (c->sent == c->total) {
            if (try_smtp_data_encode_buf(&c->enc, STRV_LIT(""), true, &c->conn->out) != 0) {
                sc_fail_local(c, "local error queueing the message");
                return;
            }
            sc_enter(c, SC_DOT);
            c->ridx = 0;
            return;
        }
        n = sc_body_read(c, &chunk);
        if (n <= 0) {
            sc_fail_local(c, "cannot read the message: %s",
                          n == 0 ? "file shorter than expected" : err_str((int)n));
            return;
        }
        if (try_smtp_data_encode_buf(&c->enc, chunk, false, &c->conn->out) != 0) {
            sc_fail_local(c, "local error queueing the message");
            return;
        }
        c->sent += (uint64_t)n;
    }
    sc_enter(c, SC_BODY); /* the timer measures stalls */
    conn_notify_drained(c->conn);
}

static void
sc_on_dot(struct smtp_client *c, const struct smtp_client_reply *r)
{
    size_t first = SIZE_MAX;

    if (!c->cfg.lmtp) {
        c->messages++;
        sc_decide_accepted(c, r);
        sc_msg_report(c, r, false);
        return;
    }
    /* LMTP: one reply per accepted recipient, in RCPT order */
    while (c->ridx < c->m->nrcpts && c->rst[c->ridx] != SC_R_ACCEPTED) {
        c->ridx++;
    }
    if (c->ridx < c->m->nrcpts) {
        c->rout[c->ridx] = *r;
        c->rst[c->ridx] = SC_R_DONE;
        c->ridx++;
    }
    if (!c->mdecided && r->code >= 300) {
        c->mreply = *r; /* the first failing reply decides the message */
        c->mdecided = true;
    }
    for (size_t i = c->ridx; i < c->m->nrcpts; i++) {
        if (c->rst[i] == SC_R_ACCEPTED) {
            sc_enter(c, SC_DOT);
            return;
        }
    }
    c->messages++;
    for (size_t i = 0; i < c->m->nrcpts && first == SIZE_MAX; i++) {
        if (c->rout[i].stage == SMTP_STAGE_CONFIRMATION) {
            first = i;
        }
    }
    if (!c->mdecided && first != SIZE_MAX) {
        c->mreply = c->rout[first];
        c->mdecided = true;
    }
    sc_msg_report(c, r, false);
}

/* Starts sending the message in BDAT chunks (RFC 3030): raw octets, no dot-stuffing. */
static void
sc_bdat_start(struct smtp_client *c)
{
    c->sent = 0;
    c->total = c->m->mem ? c->m->mem_len : c->m->prepend_len + c->m->body_len;
    if (c->m->mem == NULL && c->rdbuf == NULL) {
        c->rdbuf = xmalloc(SC_CHUNK);
    }
    sc_enter(c, SC_BDAT);
    sc_bdat_pump(c);
}

/*
 * Queues "BDAT n" plus n octets per chunk of up to SC_CHUNK, the last one
 * "BDAT n LAST" (an empty message is "BDAT 0 LAST"). With PIPELINING the
 * chunks go out back to back until enough output waits; without it each
 * waits for the reply to the one before.
 */
static void
sc_bdat_pump(struct smtp_client *c)
{
    while (!c->bdat_last && !c->bdat_failed && conn_pending_out(c->conn) < SC_OUT_HIGH &&
           (c->pipelined || c->bdat_due == 0)) {
        struct strv chunk = strv_make("", 0);
        ssize_t n = 0;

        if (c->sent < c->total) {
            n = sc_body_read(c, &chunk);
            if (n <= 0) {
                sc_fail_local(c, "cannot read the message: %s",
                              n == 0 ? "file shorter than expected" : err_str((int)n));
                return;
            }
        }
        c->bdat_last = c->sent + (uint64_t)n == c->total;
        buf_printf(&c->cmd, "BDAT %zd%s", n, c->bdat_last ? " LAST" : "");
        sc_cmd_send(c);
        if (c->write_err == 0 && n > 0) {
            c->write_err = conn_write(c->conn, chunk.ptr, chunk.len);
        }
        if (c->write_err != 0) {
            sc_fail_local(c, "local error queueing the message");
            return;
        }
        c->sent += (uint64_t)n;
        c->bdat_due++;
        if (c->bdat_last) {
            c->ridx = 0; /* LMTP: the replies to LAST come per accepted recipient (sc_on_dot) */
        }
    }
    sc_enter(c, SC_BDAT); /* the timer measures stalls, then the wait for replies */
    if (!c->bdat_last && !c->bdat_failed && c->pipelined) {
        conn_notify_drained(c->conn);
    }
}

/*
 * A reply to a BDAT command. The reply to LAST decides the message like
 * the reply to the final dot; a refused chunk decides it for every accepted
 * recipient, stops the chunks, and once the replies to those already sent
 * are in, the transaction is reset.
 */
static void
sc_on_bdat(struct smtp_client *c, const struct smtp_client_reply *r)
{
    if (c->bdat_due == 0) {
        sc_fail(c, r, false); /* a reply nobody asked for */
        return;
    }
    c->bdat_due--;
    if (c->bdat_last && c->bdat_due == 0 && !c->bdat_failed) {
        sc_on_dot(c, r);
        return;
    }
    if ((r->code < 200 || r->code >= 300) && !c->bdat_failed) {
        c->bdat_failed = true;
        sc_decide_accepted(c, r);
    }
    if (c->bdat_failed) {
        if (c->bdat_due == 0) {
            sc_after_failure(c);
        } else {
            sc_enter(c, SC_BDAT);
        }
        return;
    }
    sc_bdat_pump(c);
}

static void
sc_on_rset(struct smtp_client *c, const struct smtp_client_reply *r)
{
    struct smtp_client_reply copy = *r;

    if (r->code >= 200 && r->code < 300) {
        sc_msg_report(c, &c->mreply, false);
        return;
    }
    /* the server would not reset: report the message, then give up on the session */
    sc_msg_report(c, &c->mreply, true);
    if (!c->dead) {
        sc_end(c, &copy, true);
    }
}

/* ---- input ---- */

static void
sc_on_reply(struct smtp_client *c, const struct smtp_client_reply *r)
{
    if (r->code == 421 && c->state != SC_QUIT) {
        sc_fail(c, r, false); /* the server is closing the connection */
        return;
    }
    switch (c->state) {
    case SC_BANNER:
        if (r->code != 220) {
            sc_fail(c, r, true);
            return;
        }
        sc_send_hello(c);
        return;
    case SC_EHLO:
    case SC_HELO:
        sc_on_ehlo(c, r);
        return;
    case SC_STARTTLS:
        sc_on_starttls(c, r);
        return;
    case SC_MAIL:
        sc_on_mail(c, r);
        return;
    case SC_RCPT:
        sc_on_rcpt(c, r);
        return;
    case SC_DATA:
        sc_on_data(c, r);
        return;
    case SC_DOT:
        sc_on_dot(c, r);
        return;
    case SC_BDAT:
        sc_on_bdat(c, r);
        return;
    case SC_DISCARD:
        sc_after_failure(c); /* the reply to the empty message means nothing */
        return;
    case SC_RSET:
        sc_on_rset(c, r);
        return;
    case SC_QUIT:
        sc_end(c, r, false);
        return;
    case SC_BODY:
        /* a reply before the end of the data: the server gave up on the message */
        sc_fail(c, r, false);
        return;
    default:
        sc_fail(c, r, false); /* a reply nobody asked for */
        return;
    }
}

/* Handles every complete reply in the input while replies are expected. */
static void
sc_process(struct smtp_client *c)
{
    while (!c->dead && c->state != SC_TLS && c->state != SC_LOCAL && c->state != SC_CONNECTING) {
        struct strv in = buf_data(&c->conn->in);
        struct smtp_reply_in rin;
        struct smtp_client_reply rep;
        int rc;

        if (in.len == 0) {
            return;
        }
        rc = smtp_reply_parse(in, &rin);
        if (rc == -EAGAIN) {
            return;
        }
        if (rc != 0) {
            sc_fail_local(c, "malformed reply from server %s", sc_doing(c));
            return;
        }
        sc_reply_from_in(&rep, &rin, sc_stage(c));
        if (c->state == SC_EHLO && rin.code == 250) {
            buf_reset(&c->ehlo_raw);
            buf_append(&c->ehlo_raw, in.ptr, rin.consumed);
        }
        buf_consume(&c->conn->in, rin.consumed);
        sc_on_reply(c, &rep);
    }
}

static void
sc_on_lost(struct smtp_client *c, int err)
{
    struct smtp_client_reply why;
    enum smtp_stage stage = sc_stage(c);

    if (c->state == SC_CONNECTING) {
        sc_synth(&why, 0, "", stage, "connect failed: %s", err_str(err));
    } else if (c->state == SC_TLS) {
        sc_synth(&why, 0, "", stage, "TLS handshake failed: %s",
                 err ? err_str(err) : "connection closed by server");
    } else if (c->state == SC_QUIT && err == 0) {
        sc_synth(&why, 0, "", stage, "connection closed by server after QUIT");
    } else if (err) {
        sc_synth(&why, 0, "", stage, "connection error (%s) while %s", err_str(err), sc_doing(c));
    } else {
        sc_synth(&why, 0, "", stage, "connection closed by server while %s", sc_doing(c));
    }
    sc_fail(c, &why, false);
}

static void
sc_on_timeout(struct smtp_client *c)
{
    struct smtp_client_reply why;

    if (c->state == SC_IDLE) {
        sc_send_quit(c); /* idle_timeout */
        return;
    }
    if (c->state == SC_LOCAL || c->state == SC_DEAD) {
        return;
    }
    sc_synth(&why, 0, "", sc_stage(c), "timeout %s", sc_doing(c));
    sc_fail(c, &why, false);
}

static void
sc_free(struct smtp_client *c)
{
    sc_msg_release(c);
    if (c->ev_defer) {
        event_free(c->ev_defer);
    }
    if (c->cfg.tls_ctx) {
        SSL_CTX_free(c->cfg.tls_ctx);
    }
    buf_release(&c->ehlo_raw);
    buf_release(&c->cmd);
    free(c->rdbuf);
    free(c);
}

/* Leaves a loop entry: frees a dead session at the outermost one, else sends what is queued. */
static void
sc_leave(struct smtp_client *c)
{
    c->depth--;
    if (c->dead) {
        if (c->depth == 0) {
            sc_free(c);
        }
        return;
    }
    conn_flush(c->conn);
}

static void
sc_on_conn(struct conn *conn, enum conn_event ev, void *arg)
{
    struct smtp_client *c = arg;

    c->depth++;
    switch (ev) {
    case CONN_EV_CONNECTED:
        sc_enter(c, SC_BANNER);
        break;
    case CONN_EV_READ:
        sc_process(c);
        break;
    case CONN_EV_DRAINED:
        if (c->state == SC_BODY) {
            sc_body_pump(c);
        } else if (c->state == SC_BDAT) {
            sc_bdat_pump(c);
        }
        break;
    case CONN_EV_TLS_DONE:
        sc_on_tls_done(c);
        break;
    case CONN_EV_EOF:
        sc_on_lost(c, 0);
        break;
    case CONN_EV_ERROR:
        sc_on_lost(c, conn->err);
        break;
    case CONN_EV_TIMEOUT:
        sc_on_timeout(c);
        break;
    }
    sc_leave(c);
}

/* Reports a message refused before anything was sent (SC_LOCAL). */
static void
sc_on_defer(evutil_socket_t fd, short what, void *arg)
{
    struct smtp_client *c = arg;

    c->depth++;
    if (!c->dead && c->state == SC_LOCAL) {
        if (c->defer_fail) {
            sc_fail_local(c, "local error queueing commands: %s", err_str(c->write_err));
        } else {
            sc_msg_report(c, &c->mreply, false);
        }
    }
    if (!c->dead) {
        sc_process(c); /* input that arrived meanwhile */
    }
    sc_leave(c);
}

/* ---- API ---- */

static void
sc_default(unsigned *v, unsigned ms)
{
    if (*v == 0) {
        *v = ms;
    }
}

static void
sc_cfg_defaults(struct smtp_client_cfg *cfg)
{
    sc_default(&cfg->connect_ms, 300000);
    sc_default(&cfg->ehlo_ms, 300000);
    sc_default(&cfg->mailfrom_ms, 300000);
    sc_default(&cfg->rcptto_ms, 300000);
    sc_default(&cfg->data_ms, 300000);
    sc_default(&cfg->body_ms, 600000);
    sc_default(&cfg->rset_ms, 30000);
    sc_default(&cfg->starttls_ms, 300000);
    sc_default(&cfg->idle_ms, 5000);
    if (cfg->ehlo_name == NULL || cfg->ehlo_name[0] == '\0') {
        cfg->ehlo_name = "localhost";
    }
    if (cfg->tls == SMTP_CLIENT_TLS_NO) {
        cfg->tls_ctx = NULL;
    }
}

struct smtp_client *
smtp_client_connect(struct loop *lp, const struct sockaddr *sa, socklen_t salen,
                    const struct sockaddr *bind_sa, socklen_t bind_len,
                    const struct smtp_client_cfg *cfg, const struct smtp_client_ops *ops, void *arg,
                    int *err)
{
    struct smtp_client *c;

    if (cfg->tls != SMTP_CLIENT_TLS_NO && cfg->tls_ctx == NULL) {
        *err = -EINVAL;
        return NULL;
    }
    c = XNEW(struct smtp_client);
    c->cfg = *cfg;
    sc_cfg_defaults(&c->cfg);
    c->ops = ops;
    c->arg = arg;
    buf_init(&c->cmd, SC_CMD_MAX);
    buf_init(&c->ehlo_raw, SC_EHLO_MAX);
    if (c->cfg.tls_ctx) {
        SSL_CTX_up_ref(c->cfg.tls_ctx);
    }
    c->ev_defer = event_new(loop_base(lp), -1, 0, sc_on_defer, c);
    if (c->ev_defer == NULL) {
        abort(); /* libevent fails this only on allocation failure */
    }
    c->conn = conn_connect(lp, sa, salen, bind_sa, bind_len, sc_on_conn, c, err);
    if (c->conn == NULL) {
        sc_free(c);
        return NULL;
    }
    conn_read_enable(c->conn, true); /* reads start once connected */
    sc_enter(c, SC_CONNECTING);
    return c;
}

/* True when s has no control octets (nothing that could end or split a command). */
static bool
sc_clean(const char *s)
{
    for (; s && *s; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f) {
            return false;
        }
    }
    return true;
}

static bool
sc_msg_valid(const struct smtp_client_msg *m)
{
    if (m->nrcpts == 0 || m->rcpts == NULL || m->sender == NULL || !sc_clean(m->sender) ||
        !sc_clean(m->envid)) {
        return false;
    }
    for (size_t i = 0; i < m->nrcpts; i++) {
        if (m->rcpts[i].addr == NULL || !sc_clean(m->rcpts[i].addr) ||
            !sc_clean(m->rcpts[i].orcpt_type) || !sc_clean(m->rcpts[i].orcpt)) {
            return false;
        }
    }
    return true;
}

/* A reason to refuse m without sending it, into c->mreply; false if none. */
static bool
sc_local_refusal(struct smtp_client *c, const struct smtp_client_msg *m)
{
    struct smtp_client_reply *r = &c->mreply;

    if ((c->caps.ext & SMTP_EXT_SIZE) && c->caps.size_max && m->size > c->caps.size_max) {
        sc_synth(r, 552, "5.3.4", SMTP_STAGE_MAILFROM,
                 "Message size %llu exceeds the server's limit of %llu",
                 (unsigned long long)m->size, (unsigned long long)c->caps.size_max);
        return true;
    }
    if (m->smtputf8 && !(c->caps.ext & SMTP_EXT_SMTPUTF8)) {
        sc_synth(r, 553, "5.6.7", SMTP_STAGE_MAILFROM,
                 "SMTPUTF8 is required, but was not offered by the server");
        return true;
    }
    if (m->binarymime && (c->caps.ext & (SMTP_EXT_CHUNKING | SMTP_EXT_BINARYMIME)) !=
                             (SMTP_EXT_CHUNKING | SMTP_EXT_BINARYMIME)) {
        sc_synth(r, 554, "5.6.3", SMTP_STAGE_MAILFROM,
                 "Binary content needs CHUNKING and BINARYMIME, not offered by the server");
        return true;
    }
    return false;
}

int
smtp_client_send(struct smtp_client *c, const struct smtp_client_msg *m, void *msg_arg)
{
    if (c->dead || c->ending || c->quit_requested) {
        return CELER_ECLOSED;
    }
    if (c->state != SC_IDLE || c->m) {
        return CELER_EBUSY;
    }
    if (!sc_msg_valid(m)) {
        return -EINVAL;
    }
    c->m = m;
    c->msg_arg = msg_arg;
    c->rout = xcalloc(m->nrcpts, sizeof(*c->rout));
    c->rst = xcalloc(m->nrcpts, sizeof(*c->rst));
    c->mdecided = c->mail_ok = c->defer_fail = false;
    c->naccepted = c->ridx = 0;
    c->sent = c->total = 0;
    c->bdat = m->binarymime;
    c->bdat_last = c->bdat_failed = false;
    c->bdat_due = 0;
    if (sc_local_refusal(c, m)) {
        c->mdecided = true;
        for (size_t i = 0; i < m->nrcpts; i++) {
            c->rout[i] = c->mreply;
            c->rst[i] = SC_R_DONE;
        }
        c->state = SC_LOCAL;
        conn_set_timeout(c->conn, 0);
        event_active(c->ev_defer, EV_TIMEOUT, 0);
        return 0;
    }
    c->pipelined = (c->caps.ext & SMTP_EXT_PIPELINING) != 0;
    sc_cmd_mail(c);
    if (c->pipelined) {
        for (size_t i = 0; i < m->nrcpts; i++) {
            sc_cmd_rcpt(c, i);
        }
        if (!c->bdat) {
            sc_cmd(c, "DATA"); /* BDAT waits for the RCPT replies: no chunk for nobody */
        }
    }
    if (c->write_err) {
        /* only past CONN_OUT_MAX: reported from the loop, like every outcome */
        c->defer_fail = true;
        c->state = SC_LOCAL;
        conn_set_timeout(c->conn, 0);
        event_active(c->ev_defer, EV_TIMEOUT, 0);
        return 0;
    }
    sc_enter(c, SC_MAIL);
    conn_flush(c->conn);
    return 0;
}

void
smtp_client_quit(struct smtp_client *c)
{
    if (c->dead || c->ending || c->quit_requested) {
        return;
    }
    c->quit_requested = true;
    if (c->state == SC_IDLE) {
        sc_send_quit(c);
        conn_flush(c->conn);
    }
}

void
smtp_client_abort(struct smtp_client *c)
{
    if (c == NULL || c->dead) {
        return;
    }
    c->dead = true;
    c->state = SC_DEAD;
    conn_close(c->conn);
    if (c->depth == 0) {
        sc_free(c);
    }
}

bool
smtp_client_idle(const struct smtp_client *c)
{
    return !c->dead && !c->ending && !c->quit_requested && c->state == SC_IDLE && c->m == NULL;
}

const struct smtp_ehlo *
smtp_client_caps(const struct smtp_client *c)
{
    return &c->caps;
}

bool
smtp_client_tls_active(const struct smtp_client *c)
{
    return c->tls_on;
}

void
smtp_client_tls_describe(const struct smtp_client *c, struct buf *out)
{
    if (c->tls_on && c->conn->ssl) {
        tls_describe(c->conn->ssl, out);
    }
}

const struct conn *
smtp_client_conn(const struct smtp_client *c)
{
    return c->conn;
}

unsigned
smtp_client_messages(const struct smtp_client *c)
{
    return c->messages;
}
