/*
 * smtp_server: one inbound ESMTP session on a conn (RFC 5321 with
 * PIPELINING, SIZE, 8BITMIME, SMTPUTF8, DSN, CHUNKING/BINARYMIME,
 * ENHANCEDSTATUSCODES, STARTTLS, AUTH PLAIN/LOGIN and XCLIENT).
 *
 * The session owns the protocol: command sequencing, replies (batched per
 * RFC 2920: every reply to the commands of one read goes out in one send),
 * limits, timeouts, DATA/BDAT decoding with the smuggling-safe decoder,
 * STARTTLS (plaintext pipelined after STARTTLS is discarded, never run) and
 * the SASL exchanges. Everything that is policy or storage is asked of the
 * layer above through struct smtp_server_ops: whether to greet, whether a
 * sender or recipient is welcome (relay control), where the message bytes
 * go, whether a password is right, and where rejections are logged. Each
 * ops call gets a reply prefilled with the default answer and may replace
 * it; reply texts are copied before the call returns.
 *
 * Storing the message is asynchronous: data_end() starts it and the layer
 * above answers later with smtp_server_data_done(); meanwhile the session
 * reads nothing more, so pipelined commands wait their turn.
 *
 * The session owns its conn and frees itself when the connection ends,
 * after calling ops->on_close(). Everything runs on the conn's loop.
 */
#ifndef CELER_SMTP_SERVER_H
#define CELER_SMTP_SERVER_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/strv.h"
#include "net/conn.h"
#include "smtp/smtp_cmd.h"
#include "smtp/smtp_data.h"
#include "smtp/smtp_reply.h"

enum smtp_tls_injection {
    SMTP_TLS_INJECTION_REJECT, /* discard and log it */
    SMTP_TLS_INJECTION_IGNORE, /* discard silently */
};

/* What the session needs to know, resolved per connection by the layer above. */
struct smtp_server_cfg {
    const char *hostname;        /* in the banner and EHLO reply */
    const char *banner;          /* full greeting text after "220 ", or NULL */
    unsigned ext;                /* SMTP_EXT_* to offer */
    unsigned auth_mechs;         /* SMTP_AUTH_PLAIN | SMTP_AUTH_LOGIN, or 0 */
    bool auth_without_tls;       /* offer and accept AUTH before STARTTLS */
    bool require_ehlo;           /* MAIL before HELO/EHLO is refused */
    bool allow_null_sender;      /* MAIL FROM:<> accepted */
    bool xclient;                /* this peer may use XCLIENT */
    uint64_t max_message_size;   /* 0: no limit */
    unsigned max_rcpts_per_msg;  /* 0: no limit */
    unsigned max_rcpts_per_conn; /* 0: no limit */
    unsigned max_msgs_per_conn;  /* 0: no limit */
    unsigned idle_ms;            /* no input for this long: 421 and close (0: none) */
    unsigned data_idle_ms;       /* the same while a message streams in (0: idle_ms) */
    unsigned greeting_pause_ms;  /* hold the banner; talkers before it are dropped */
    unsigned auth_fail_delay_ms; /* wait before answering a failed AUTH */
    enum smtp_tls_injection tls_injection;
    SSL_CTX *tls_ctx;                      /* NULL: no STARTTLS */
    struct smtp_cmd_opts cmd;              /* parser options (ext is set from ext above) */
    struct smtp_data_opts data;            /* decoder options (max_size from max_message_size) */
    const char *unqualified_sender_domain; /* domain_for_unqualified_sender_address */
    const char *unqualified_rcpt_domain;   /* domain_for_unqualified_recipient_addresses */
};

struct smtp_server_rcpt {
    char *addr;       /* owned: normalised mailbox */
    char *orcpt_type; /* owned or NULL */
    char *orcpt;      /* owned, decoded, or NULL */
    unsigned notify;  /* SMTP_NOTIFY_* bits, 0 = none given */
    bool needs_utf8;
};

struct smtp_server_txn {
    char *sender; /* owned: normalised mailbox, "" for <> */
    struct smtp_mail_params mail;
    struct smtp_server_rcpt *rcpts; /* owned */
    size_t nrcpts;
    size_t rcpts_cap;
    bool data_started; /* data_begin() accepted */
};

struct smtp_server;

struct smtp_server_ops {
    /* After the (optional) greeting pause; r holds the 220 greeting. */
    void (*on_connect)(struct smtp_server *s, void *arg, struct smtp_reply *r);
    void (*on_helo)(struct smtp_server *s, void *arg, struct strv helo, struct smtp_reply *r);
    void (*on_mail)(struct smtp_server *s, void *arg, const struct smtp_server_txn *t,
                    struct smtp_reply *r);
    void (*on_rcpt)(struct smtp_server *s, void *arg, const struct smtp_server_txn *t,
                    const struct smtp_server_rcpt *rcpt, struct smtp_reply *r);
    /* The message begins; r holds 354 (DATA) or is unused (BDAT) unless changed to a refusal. */
    void (*data_begin)(struct smtp_server *s, void *arg, const struct smtp_server_txn *t,
                       struct smtp_reply *r);
    /* Message bytes, unstuffed. Non-zero: the message cannot be stored (452 4.3.1 at the end). */
    int (*data_write)(struct smtp_server *s, void *arg, const char *p, size_t len);
    /* All bytes are in and the message passed the session's checks: store it,
       then call smtp_server_data_done(). */
    void (*data_end)(struct smtp_server *s, void *arg, const struct smtp_server_txn *t,
                     const struct smtp_data_stats *st);
    /* The message being received is abandoned (refused, reset, connection lost). */
    void (*data_abort)(struct smtp_server *s, void *arg);
    /* 0: user/pass are right. */
    int (*auth_check)(struct smtp_server *s, void *arg, struct strv user, struct strv pass);
    /* Every 4xx/5xx reply the session sends, with the phase it was in. */
    void (*log_reject)(struct smtp_server *s, void *arg, const char *phase,
                       const struct smtp_reply *r);
    /* The session ends; nothing of it may be used after this returns. */
    void (*on_close)(struct smtp_server *s, void *arg);
};

/* Takes over c (its callback now belongs to the session) and starts the session. */
struct smtp_server *smtp_server_start(struct conn *c, const struct smtp_server_cfg *cfg,
                                      const struct smtp_server_ops *ops, void *arg);
/* The answer to data_end(): 250 (the message is safe) or a refusal. */
void smtp_server_data_done(struct smtp_server *s, const struct smtp_reply *r);
/* Ends the session at once with 421 (shutdown). */
void smtp_server_shutdown(struct smtp_server *s, const char *why);

/* What the layer above may want to know about the session. */
const struct sockaddr *smtp_server_peer(const struct smtp_server *s); /* XCLIENT-aware */
const char *smtp_server_peer_ip(const struct smtp_server *s);
const char *smtp_server_helo(const struct smtp_server *s); /* "" before HELO */
bool smtp_server_esmtp(const struct smtp_server *s);
const char *smtp_server_auth_user(const struct smtp_server *s); /* NULL if none */
SSL *smtp_server_ssl(const struct smtp_server *s);              /* NULL before TLS */
struct conn *smtp_server_conn(const struct smtp_server *s);
unsigned smtp_server_messages(const struct smtp_server *s); /* accepted so far */

#endif
