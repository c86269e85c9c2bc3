/*
 * conn: one buffered, non-blocking TCP (or Unix) connection on one loop,
 * optionally upgraded to TLS in the middle of the stream (STARTTLS).
 *
 * A conn owns its socket, its read and write events, an input buffer and an
 * output buffer (both with ceilings), and its SSL object. The owner gets
 * events through one callback: READ (new bytes are in conn->in; consume what
 * you can, leave the rest), DRAINED (everything written), CONNECTED
 * (outbound connect finished), TLS_DONE (handshake finished), EOF, ERROR and
 * TIMEOUT (the timer set with conn_set_timeout expired). Writes only append
 * to conn->out; the bytes go out after the callback returns, in one send
 * per callback (so pipelined replies leave together), or at conn_flush().
 *
 * Lifetime: conn_close() may be called anywhere, including inside the
 * callback; it stops all events and callbacks at once and frees the conn
 * from the loop after the current callback returns. conn_close_after_flush()
 * first sends what is queued (bounded by a timeout). No callback runs after
 * conn_close(). Everything runs on the conn's loop thread.
 */
#ifndef CELER_NET_CONN_H
#define CELER_NET_CONN_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/buf.h"
#include "core/err.h"
#include "net/loop.h"

struct event;

enum conn_event {
    CONN_EV_READ,
    CONN_EV_DRAINED,
    CONN_EV_CONNECTED,
    CONN_EV_TLS_DONE,
    CONN_EV_EOF,
    CONN_EV_ERROR,
    CONN_EV_TIMEOUT,
};

struct conn;
typedef void conn_event_fn(struct conn *c, enum conn_event ev, void *arg);

struct conn {
    struct loop *loop; /* borrowed: the owning loop */
    int fd;
    struct event *ev_read;  /* owned */
    struct event *ev_write; /* owned */
    struct event *ev_timer; /* owned */
    struct event *ev_free;  /* owned: deferred free after close */
    struct buf in;          /* received plaintext, consumed by the owner */
    struct buf out;         /* queued output */
    SSL *ssl;               /* owned; NULL for plaintext */
    conn_event_fn *cb;
    void *arg; /* borrowed */
    struct sockaddr_storage peer;
    socklen_t peer_len;
    struct sockaddr_storage local;
    socklen_t local_len;
    int err;             /* the error behind CONN_EV_ERROR */
    uint64_t bytes_in;   /* received on the wire */
    uint64_t bytes_out;  /* sent on the wire */
    unsigned in_cb;      /* nesting depth of callbacks */
    bool reading;        /* owner wants READ events */
    bool connecting;     /* outbound connect in progress */
    bool tls_pending;    /* TLS starts once the queued plaintext is sent */
    bool handshaking;    /* TLS handshake in progress */
    bool tls_server;     /* the handshake is as server */
    bool closed;         /* conn_close() was called */
    bool closing;        /* conn_close_after_flush(): close once drained */
    bool eof;            /* peer closed its side */
    bool want_drained;   /* report DRAINED when out empties */
    bool ssl_want_write; /* SSL_read needs the socket writable */
};

#define CONN_IN_MAX  (1024 * 1024)
#define CONN_OUT_MAX (64 * 1024 * 1024)

/* Wraps an accepted or connected socket (made non-blocking, TCP_NODELAY). */
struct conn *conn_new(struct loop *lp, int fd, conn_event_fn *cb, void *arg, int *err);
/*
 * Starts a non-blocking connect to sa (from bind_sa if given): CONNECTED or
 * ERROR follows. NULL with *err when the socket cannot even be created.
 */
struct conn *conn_connect(struct loop *lp, const struct sockaddr *sa, socklen_t salen,
                          const struct sockaddr *bind_sa, socklen_t bind_len, conn_event_fn *cb,
                          void *arg, int *err);
void conn_set_callback(struct conn *c, conn_event_fn *cb, void *arg);

/* Delivers READ events while enabled (the default after conn_new). */
void conn_read_enable(struct conn *c, bool on);
/* Queues bytes; CELER_ELIMIT past CONN_OUT_MAX. */
int conn_write(struct conn *c, const void *p, size_t len) CELER_WUR;
/* Sends queued bytes now (as far as the socket takes them). */
void conn_flush(struct conn *c);
/* Asks for one DRAINED event when the output buffer is empty. */
void conn_notify_drained(struct conn *c);
static inline size_t
conn_pending_out(const struct conn *c)
{
    return buf_len(&c->out);
}
/* (Re)arms the timer: TIMEOUT after ms of this call; 0 disarms. */
void conn_set_timeout(struct conn *c, unsigned ms);

/*
 * Starts TLS on the connection: as server (STARTTLS received) or client.
 * Bytes already in c->in are discarded first (plaintext pipelined after
 * STARTTLS must never be taken as part of the encrypted session).
 * TLS_DONE or ERROR follows. The conn takes the SSL object.
 */
int conn_start_tls(struct conn *c, SSL *ssl, bool server) CELER_WUR;

/* Closes now (see the contract above). NULL ok. */
void conn_close(struct conn *c);
/* Closes once the output is sent, or after timeout_ms. */
void conn_close_after_flush(struct conn *c, unsigned timeout_ms);

/* "ip:port" / "[ipv6]:port" of an address, into dst[size]. */
char *conn_addr_str(const struct sockaddr *sa, char *dst, size_t size);
/* Just the IP text. */
char *conn_ip_str(const struct sockaddr *sa, char *dst, size_t size);

#endif
