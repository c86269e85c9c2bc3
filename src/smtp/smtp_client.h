/*
 * smtp_client: one outbound SMTP or LMTP session (RFC 5321, RFC 2033) on a
 * conn, reused for many messages.
 *
 * The session speaks the protocol and reports outcomes; routing, retries,
 * logging and the choice of what to send are the caller's (the delivery
 * engine). It connects, reads the banner, says EHLO (LHLO for LMTP; HELO
 * when EHLO gets a 5xx, SMTP only), upgrades with STARTTLS per cfg.tls and
 * checks the certificate per cfg.verify, says EHLO again, and is then idle:
 * ops->ready(). Each smtp_client_send() runs one transaction: MAIL, RCPT
 * per recipient and DATA, all in one write when the server offers
 * PIPELINING (RFC 2920) and in lock-step otherwise; after 354 the message
 * streams from a file with pread (64 KiB at a time), or from memory when
 * the caller holds it there (a downconverted copy, msg/mime7bit), through
 * the DATA encoder (dot-stuffing, every line ending sent as CRLF);
 * ops->result() reports the outcome per recipient and the session is idle
 * again. Binary content (BODY=BINARYMIME, RFC 3030) goes instead in BDAT
 * chunks of up to 64 KiB, raw, after the RCPT replies are in: back to back
 * with PIPELINING, each after the reply to the one before without it; the
 * reply to "BDAT n LAST" decides the message (LMTP: the replies, one per
 * accepted recipient), a refused chunk ends it (no further chunks, then
 * RSET). A transaction that failed after MAIL was accepted is reset (RSET)
 * before result(). An idle session QUITs after idle_ms; smtp_client_quit()
 * QUITs at once (or after the message in flight).
 *
 * Outcomes are data (struct smtp_client_reply): the server's reply, with
 * its enhanced code and the first line's text (sanitised: control octets
 * become spaces), or a synthesized one. Synthesized replies have code 0
 * when nothing was decided by the server (connection refused, lost or
 * timed out, TLS failures, protocol errors: the caller treats them as
 * transient), or a real code for local decisions that are permanent: 552
 * 5.3.4 when the message is larger than the server's SIZE, 553 5.6.7 when
 * it needs SMTPUTF8 and the server does not offer it, 554 5.6.3 for
 * binarymime messages when the server does not offer both CHUNKING and
 * BINARYMIME. Those are decided before anything is sent.
 *
 * TLS. NO never starts TLS. IFAVAILABLE starts it when STARTTLS is offered
 * and goes on in plaintext when it is not offered or the server refuses the
 * command; REQUIRED ends the session in both cases (closed(), code 0 and a
 * text saying why). A failed handshake, and with VERIFY_CA or VERIFY_HOST
 * a certificate that does not verify or match, end the session with stage
 * SMTP_STAGE_TLS_HANDSHAKE (17) in both modes, so that for IFAVAILABLE the
 * caller can apply Momentum's tls_ifavailable_fallback (true: reconnect at
 * once with tls NO; false: treat as a transient failure and retry with TLS
 * later). The SSL_CTX is built with verification off (tls_client_ctx_new);
 * the session reads SSL_get_verify_result() and, for VERIFY_HOST, matches
 * one of cfg.verify_names with X509_check_host(). The first verify name,
 * if any, is sent as SNI.
 *
 * Callbacks and lifetime. Everything runs on the loop of the connection;
 * callbacks are never called from inside an smtp_client_* call, only from
 * the loop. closed() is the last callback: the session frees itself when it
 * returns. smtp_client_abort() closes at once and calls nothing more (an
 * in-flight message gets no result). Inside a callback the caller may call
 * smtp_client_send() (from ready() or result()), _quit() or _abort().
 * The message given to smtp_client_send() (its strings, recipient array and
 * file descriptor or memory) is borrowed until its result() returns; the
 * strings of the cfg (ehlo_name, verify_names) are borrowed for the whole
 * session; the SSL_CTX is referenced (SSL_CTX_up_ref) by the session.
 */
#ifndef CELER_SMTP_CLIENT_H
#define CELER_SMTP_CLIENT_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/buf.h"
#include "core/err.h"
#include "net/conn.h"
#include "net/loop.h"
#include "smtp/smtp_cmd.h"
#include "smtp/smtp_reply.h"

/*
 * Where a session was when something was decided: Momentum's connection
 * stage codes (T and P records, bouncelog), with the same values as
 * enum mainlog_stage so the caller can cast.
 */
enum smtp_stage {
    SMTP_STAGE_NOT_CONNECTED = 0,    /* connecting */
    SMTP_STAGE_IDLE = 1,             /* idle, or QUIT */
    SMTP_STAGE_MAILFROM = 2,         /* waiting for the reply to MAIL */
    SMTP_STAGE_AFTER_MAILFROM = 3,   /* (not used by this client) */
    SMTP_STAGE_RCPTTO = 4,           /* waiting for the reply to an RCPT */
    SMTP_STAGE_AFTER_RCPTTO = 5,     /* (not used) */
    SMTP_STAGE_DATA = 6,             /* waiting for the reply to DATA */
    SMTP_STAGE_AFTER_DATA = 7,       /* (not used) */
    SMTP_STAGE_BODY = 8,             /* sending the message */
    SMTP_STAGE_CONFIRMATION = 9,     /* waiting for the reply to the final "." */
    SMTP_STAGE_EHLO = 10,            /* waiting for the reply to EHLO/LHLO/HELO */
    SMTP_STAGE_AFTER_EHLO = 11,      /* deciding on STARTTLS */
    SMTP_STAGE_BANNER = 12,          /* waiting for the greeting */
    SMTP_STAGE_RSET = 13,            /* waiting for the reply to RSET */
    SMTP_STAGE_AFTER_RSET = 14,      /* (not used) */
    SMTP_STAGE_STARTTLS = 15,        /* waiting for the reply to STARTTLS */
    SMTP_STAGE_AFTER_STARTTLS = 16,  /* (not used) */
    SMTP_STAGE_TLS_HANDSHAKE = 17,   /* TLS handshake and certificate checks */
    SMTP_STAGE_TLS_RENEGOTIATE = 18, /* (not used) */
    SMTP_STAGE_XCLIENT = 19,         /* (not used) */
    SMTP_STAGE_AFTER_XCLIENT = 20,   /* (not used) */
    SMTP_STAGE_OUT_OF_BAND = 21,     /* (not used) */
    SMTP_STAGE_UNKNOWN = 22,
};

/* Momentum's tls option. */
enum smtp_client_tls {
    SMTP_CLIENT_TLS_NO,
    SMTP_CLIENT_TLS_IFAVAILABLE,
    SMTP_CLIENT_TLS_REQUIRED,
};

/* Momentum's tls_verify option. */
enum smtp_client_verify {
    SMTP_CLIENT_VERIFY_NO,
    SMTP_CLIENT_VERIFY_CA,   /* the chain must verify against the ctx's CAs */
    SMTP_CLIENT_VERIFY_HOST, /* CA, and the certificate must match a verify name */
};

/*
 * Per-connection settings, copied by smtp_client_connect(); the strings are
 * borrowed for the whole session, the SSL_CTX is referenced. Timeouts are
 * those of the Momentum options, in ms; 0 takes the default shown.
 */
struct smtp_client_cfg {
    const char *ehlo_name; /* borrowed; NULL: "localhost" */
    bool lmtp;             /* LHLO, no HELO fallback, one final reply per accepted recipient */
    enum smtp_client_tls tls;
    enum smtp_client_verify verify;  /* applies when TLS is started */
    SSL_CTX *tls_ctx;                /* ref: tls_client_ctx_new(); NULL when tls == NO */
    const char *const *verify_names; /* borrowed: names for VERIFY_HOST (MX host, domain) */
    size_t nverify_names;
    bool send_8bitmime;   /* BODY=8BITMIME for 8bit messages when offered (send_8bitmime) */
    unsigned connect_ms;  /* TCP connect (connect_timeout, 300 s) */
    unsigned ehlo_ms;     /* banner and EHLO/HELO replies (ehlo_timeout, 300 s) */
    unsigned mailfrom_ms; /* MAIL reply (mailfrom_timeout, 300 s) */
    unsigned rcptto_ms;   /* each RCPT reply (rcptto_timeout, 300 s) */
    unsigned data_ms;     /* DATA reply (300 s) */
    unsigned body_ms;     /* sending stalls, and the final reply (body_timeout, 600 s) */
    unsigned rset_ms;     /* RSET and QUIT replies (rset_timeout, 30 s) */
    unsigned starttls_ms; /* STARTTLS reply and the handshake (300 s) */
    unsigned idle_ms;     /* idle before QUIT (idle_timeout, 5 s) */
};

struct smtp_client_rcpt {
    const char *addr;       /* borrowed: mailbox without <> */
    unsigned notify;        /* SMTP_NOTIFY_* bits, 0: none */
    const char *orcpt_type; /* borrowed: "rfc822", "utf-8", ...; NULL: rfc822 */
    const char *orcpt;      /* borrowed: decoded original recipient, or NULL */
};

struct smtp_client_msg {
    const char *sender;                   /* borrowed: "" for the null sender */
    const struct smtp_client_rcpt *rcpts; /* borrowed */
    size_t nrcpts;                        /* >= 1 */
    uint64_t size;                        /* SIZE= (when offered); 0: not sent */
    bool eightbit;                        /* 8bit content: BODY=8BITMIME per cfg.send_8bitmime */
    bool binarymime;   /* binary content: BODY=BINARYMIME and BDAT (554 5.6.3 when not offered) */
    bool smtputf8;     /* needs SMTPUTF8: refused locally (553 5.6.7) without it */
    enum smtp_ret ret; /* RET= when DSN is offered; SMTP_RET_NONE: not sent */
    const char *envid; /* borrowed: decoded ENVID (sent as xtext when DSN is offered), or NULL */
    /*
     * The message: mem[0, mem_len) when mem is set (fd and the offsets are
     * then unused); otherwise [prepend] then [body], read with pread from
     * fd. Either way it is sent through the DATA encoder.
     */
    const char *mem; /* borrowed; NULL: read from fd */
    size_t mem_len;
    int fd;
    uint64_t prepend_off, prepend_len;
    uint64_t body_off, body_len;
};

/* A reply as data; see the contract above for synthesized ones. */
struct smtp_client_reply {
    int code;              /* 200..599, or 0: no reply from the server */
    char enh[12];          /* enhanced status code "x.y.z", or "" */
    char text[512];        /* first line after the code and enhanced code, sanitised */
    enum smtp_stage stage; /* where it was received or decided */
};

struct smtp_client_result {
    /*
     * The reply that decided the message: the final reply after the data
     * (LMTP: the first failing per-recipient reply, or else the first),
     * the failing MAIL or DATA reply, the first recipient's reply when no
     * recipient was accepted, or a synthesized one.
     */
    struct smtp_client_reply msg;
    enum smtp_stage stage; /* = msg.stage */
    /*
     * The outcome for each recipient (nrcpts entries, in the order sent):
     * the RCPT reply when it refused the recipient, otherwise the reply that
     * decided the message for it (for LMTP its own reply after the data).
     * A recipient is delivered exactly when its code is 2xx.
     */
    const struct smtp_client_reply *rcpt; /* valid during result() only */
    size_t nrcpts;
    /*
     * The session failed (lost, timed out, a 421 or a reply in the middle of
     * the data) before every recipient had its outcome: those get code 0
     * (transient), or the server's reply that ended the session.
     */
    bool conn_lost;
    uint64_t bytes_sent; /* message octets handed to the connection */
};

struct smtp_client;

struct smtp_client_ops {
    /* Greeted, EHLO done (and TLS if any): idle, smtp_client_send() may be called. Once. */
    void (*ready)(struct smtp_client *c, void *arg);
    /*
     * One message is finished. Afterwards the session is idle again
     * (smtp_client_idle()), or closed() follows when it ended.
     */
    void (*result)(struct smtp_client *c, void *arg, void *msg_arg,
                   const struct smtp_client_result *r);
    /*
     * The session is over: error, timeout, TLS failure, 421, or QUIT done
     * (then stage SMTP_STAGE_IDLE and why is the reply to QUIT, usually 221).
     * why->code is the server's reply when one ended the session, 0 for
     * local reasons (why->text says which). The session is freed when this
     * returns; only accessors may be called on c inside.
     */
    void (*closed)(struct smtp_client *c, void *arg, enum smtp_stage stage,
                   const struct smtp_client_reply *why);
};

/*
 * Starts connecting to sa (from bind_sa when given) on loop lp; cfg is
 * copied (its strings are borrowed). Every outcome, a refused connection
 * included, comes through ops. NULL with *err (-errno) when not even the
 * socket could be made; then no callback is ever called.
 */
struct smtp_client *smtp_client_connect(struct loop *lp, const struct sockaddr *sa, socklen_t salen,
                                        const struct sockaddr *bind_sa, socklen_t bind_len,
                                        const struct smtp_client_cfg *cfg,
                                        const struct smtp_client_ops *ops, void *arg, int *err);

/*
 * Sends one message; result() follows (even for local refusals, which are
 * reported from the loop, never from inside this call). Only when idle:
 * CELER_EBUSY otherwise, CELER_ECLOSED once the session is ending, -EINVAL
 * for no recipients or a sender, recipient or envid with control octets.
 * m and everything it points to must stay valid until result() returns.
 */
int smtp_client_send(struct smtp_client *c, const struct smtp_client_msg *m,
                     void *msg_arg) CELER_WUR;

/*
 * Ends the session politely: QUIT (at once when idle, after the message in
 * flight otherwise, instead of ready() while still setting up), then
 * closed(). No further send is accepted.
 */
void smtp_client_quit(struct smtp_client *c);

/* Closes now. No callback is called after this, not even closed(). NULL ok. */
void smtp_client_abort(struct smtp_client *c);

/* True when smtp_client_send() may be called. */
bool smtp_client_idle(const struct smtp_client *c);
/*
 * The capabilities from the last EHLO/LHLO (after TLS: the second one);
 * zeroed after HELO. Final from ready() on, so a caller choosing what to
 * send (in ready() or result()) can test them: without SMTP_EXT_8BITMIME in
 * ->ext, an 8bit message needs downconverting (msg/mime7bit) or is sent
 * as it is, and BODY=8BITMIME is never sent.
 */
const struct smtp_ehlo *smtp_client_caps(const struct smtp_client *c);
/* True once TLS is up (and verified as configured). */
bool smtp_client_tls_active(const struct smtp_client *c);
/* Appends "version=TLSv1.3 cipher=... bits=256" (tls_describe), or nothing without TLS. */
void smtp_client_tls_describe(const struct smtp_client *c, struct buf *out);
/* The connection, for addresses and byte counters (borrowed; do not write to it). */
const struct conn *smtp_client_conn(const struct smtp_client *c);
/* Messages that got a final reply on this session. */
unsigned smtp_client_messages(const struct smtp_client *c);

/* "550 5.1.1 text", "250 text", or the bare text for code 0, into dst[size]. */
char *smtp_client_reply_str(const struct smtp_client_reply *r, char *dst, size_t size);

#endif
