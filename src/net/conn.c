/*
 * conn: buffered non-blocking connections with STARTTLS (see conn.h).
 *
 * Owner-visible events are only ever dispatched from libevent callbacks,
 * never from inside a conn_* call the owner makes; when a call discovers
 * something to report (a write error, an empty output buffer) it activates
 * the write event and the report comes from there. That keeps owners free of
 * re-entrancy.
 */
#include "net/conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/mem.h"

#define CONN_READ_CHUNK  65536
#define CONN_READ_ROUNDS 8
#define CONN_WRITE_CHUNK (256 * 1024)

static void conn_on_readable(evutil_socket_t fd, short what, void *arg);
static void conn_on_writable(evutil_socket_t fd, short what, void *arg);
static void conn_on_timer(evutil_socket_t fd, short what, void *arg);
static void conn_on_free(evutil_socket_t fd, short what, void *arg);

/* Runs the owner's callback; false if the conn was closed inside it. */
static bool
conn_dispatch(struct conn *c, enum conn_event ev)
{
    if (c->closed) {
        return false;
    }
    c->in_cb++;
    c->cb(c, ev, c->arg);
    c->in_cb--;
    return !c->closed;
}

static int
conn_set_nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        return -errno;
    }
    return 0;
}

static struct conn *
conn_alloc(struct loop *lp, int fd, conn_event_fn *cb, void *arg)
{
    struct conn *c = XNEW(struct conn);
    struct event_base *base = loop_base(lp);

    c->loop = lp;
    c->fd = fd;
    c->cb = cb;
    c->arg = arg;
    buf_init(&c->in, CONN_IN_MAX);
    buf_init(&c->out, CONN_OUT_MAX);
    c->ev_read = event_new(base, fd, EV_READ | EV_PERSIST, conn_on_readable, c);
    c->ev_write = event_new(base, fd, EV_WRITE | EV_PERSIST, conn_on_writable, c);
    c->ev_timer = evtimer_new(base, conn_on_timer, c);
    c->ev_free = event_new(base, -1, 0, conn_on_free, c);
    if (!c->ev_read || !c->ev_write || !c->ev_timer || !c->ev_free) {
        abort(); /* libevent only fails these on allocation failure */
    }
    c->peer_len = sizeof(c->peer);
    if (getpeername(fd, (struct sockaddr *)&c->peer, &c->peer_len) != 0) {
        c->peer_len = 0;
    }
    c->local_len = sizeof(c->local);
    if (getsockname(fd, (struct sockaddr *)&c->local, &c->local_len) != 0) {
        c->local_len = 0;
    }
    return c;
}

static void
conn_tune_socket(int fd)
{
    int one = 1;

    /* not every socket is TCP (Unix sockets reject it): ignoring is right */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

struct conn *
conn_new(struct loop *lp, int fd, conn_event_fn *cb, void *arg, int *err)
{
    struct conn *c;
    int rc = conn_set_nonblocking(fd);

    if (rc != 0) {
        *err = rc;
        return NULL;
    }
    conn_tune_socket(fd);
    c = conn_alloc(lp, fd, cb, arg);
    conn_read_enable(c, true);
    return c;
}

struct conn *
conn_connect(struct loop *lp, const struct sockaddr *sa, socklen_t salen,
             const struct sockaddr *bind_sa, socklen_t bind_len, conn_event_fn *cb, void *arg,
             int *err)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct conn *c;

    if (fd < 0) {
        *err = -errno;
        return NULL;
    }
    if (bind_sa && bind(fd, bind_sa, bind_len) != 0) {
        *err = -errno;
        (void)close(fd); /* never connected */
        return NULL;
    }
    conn_tune_socket(fd);
    if (connect(fd, sa, salen) != 0 && errno != EINPROGRESS) {
        *err = -errno;
        (void)close(fd); /* never connected */
        return NULL;
    }
    c = conn_alloc(lp, fd, cb, arg);
    memcpy(&c->peer, sa, salen);
    c->peer_len = salen;
    c->connecting = true;
    event_add(c->ev_write, NULL);
    return c;
}

void
conn_set_callback(struct conn *c, conn_event_fn *cb, void *arg)
{
    c->cb = cb;
    c->arg = arg;
}

/* Adds or removes the read event to match what the conn needs now. */
static void
conn_update_read(struct conn *c)
{
    /* while TLS waits behind plaintext output, the next bytes are TLS: do not read */
    bool want = !c->closed && !c->connecting && !c->eof && !c->tls_pending &&
                (c->reading || c->handshaking);

    if (want) {
        event_add(c->ev_read, NULL);
    } else {
        event_del(c->ev_read);
    }
}

void
conn_read_enable(struct conn *c, bool on)
{
    c->reading = on;
    conn_update_read(c);
    if (on && buf_len(&c->in) && !c->closed) {
        /* bytes already buffered: let the owner see them */
        event_active(c->ev_read, EV_READ, 0);
    }
}

int
conn_write(struct conn *c, const void *p, size_t len)
{
    if (c->closed) {
        return CELER_ECLOSED;
    }
    return try_buf_append(&c->out, p, len);
}

/* Writes as much as the socket takes; 0, -EAGAIN (wait for writable) or an error. */
static int
conn_send(struct conn *c)
{
    while (buf_len(&c->out)) {
        struct strv d = buf_data(&c->out);
        size_t chunk = d.len < CONN_WRITE_CHUNK ? d.len : CONN_WRITE_CHUNK;
        ssize_t n;

        if (c->ssl && !c->tls_pending) {
            int r = SSL_write(c->ssl, d.ptr, (int)chunk);

            if (r <= 0) {
                int e = SSL_get_error(c->ssl, r);

                if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
                    return -EAGAIN;
                }
                ERR_clear_error();
                return CELER_ETLS;
            }
            n = r;
        } else {
            n = send(c->fd, d.ptr, chunk, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                return errno == EAGAIN ? -EAGAIN : -errno;
            }
        }
        buf_consume(&c->out, (size_t)n);
        c->bytes_out += (uint64_t)n;
    }
    return 0;
}

static void conn_begin_handshake(struct conn *c);

void
conn_flush(struct conn *c)
{
    int rc;

    if (c->closed || c->connecting || c->handshaking) {
        return;
    }
    rc = conn_send(c);
    if (rc == -EAGAIN) {
        event_add(c->ev_write, NULL);
        return;
    }
    if (rc != 0) {
        c->err = rc;
    }
    if (rc != 0 || c->want_drained || c->closing || c->tls_pending) {
        /* report from the write event, never from inside the owner's call */
        event_add(c->ev_write, NULL);
        event_active(c->ev_write, EV_WRITE, 0);
    } else {
        event_del(c->ev_write);
    }
}

void
conn_notify_drained(struct conn *c)
{
    c->want_drained = true;
    conn_flush(c);
}

void
conn_set_timeout(struct conn *c, unsigned ms)
{
    if (c->closed) {
        return;
    }
    if (ms == 0) {
        evtimer_del(c->ev_timer);
        return;
    }
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    evtimer_add(c->ev_timer, &tv);
}

int
conn_start_tls(struct conn *c, SSL *ssl, bool server)
{
    if (c->closed || c->ssl) {
        SSL_free(ssl);
        return c->closed ? CELER_ECLOSED : CELER_ETLS;
    }
    buf_reset(&c->in); /* plaintext pipelined after STARTTLS is discarded, never executed */
    c->ssl = ssl;
    c->tls_server = server;
    c->tls_pending = true;
    /* the handshake starts once queued plaintext (the 220 reply) is out */
    conn_update_read(c);
    event_add(c->ev_write, NULL);
    event_active(c->ev_write, EV_WRITE, 0);
    return 0;
}

static void
conn_begin_handshake(struct conn *c)
{
    c->tls_pending = false;
    if (SSL_set_fd(c->ssl, c->fd) != 1) {
        c->err = CELER_ETLS;
        conn_dispatch(c, CONN_EV_ERROR);
        return;
    }
    if (c->tls_server) {
        SSL_set_accept_state(c->ssl);
    } else {
        SSL_set_connect_state(c->ssl);
    }
    SSL_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    c->handshaking = true;
}

static void
conn_do_handshake(struct conn *c)
{
    int r = SSL_do_handshake(c->ssl);
    int e;

    if (r == 1) {
        c->handshaking = false;
        event_del(c->ev_write);
        conn_update_read(c);
        if (!conn_dispatch(c, CONN_EV_TLS_DONE)) {
            return;
        }
        if (SSL_pending(c->ssl) > 0 && c->reading) {
            event_active(c->ev_read, EV_READ, 0);
        }
        conn_flush(c);
        return;
    }
    e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        event_del(c->ev_write);
        event_add(c->ev_read, NULL);
        return;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        event_add(c->ev_write, NULL);
        return;
    }
    ERR_clear_error();
    c->err = CELER_ETLS;
    conn_dispatch(c, CONN_EV_ERROR);
}

/* Reads what is available into c->in; returns 1 if bytes came, 0 if none, or an error. */
static int
conn_recv(struct conn *c)
{
    int got = 0;

    for (int round = 0; round < CONN_READ_ROUNDS; round++) {
        size_t room;
        char *dst = try_buf_reserve(&c->in, CONN_READ_CHUNK, &room);
        ssize_t n;

        if (dst == NULL) {
            dst = try_buf_reserve(&c->in, 1, &room);
            if (dst == NULL) {
                return got; /* the owner must consume before we read more */
            }
        }
        if (room > CONN_READ_CHUNK) {
            room = CONN_READ_CHUNK;
        }
        if (c->ssl) {
            int r = SSL_read(c->ssl, dst, (int)room);

            if (r <= 0) {
                int e = SSL_get_error(c->ssl, r);

                if (e == SSL_ERROR_WANT_READ) {
                    return got;
                }
                if (e == SSL_ERROR_WANT_WRITE) {
                    c->ssl_want_write = true;
                    event_add(c->ev_write, NULL);
                    return got;
                }
                if (e == SSL_ERROR_ZERO_RETURN) {
                    c->eof = true;
                    return got;
                }
                ERR_clear_error();
                if (e == SSL_ERROR_SYSCALL && r == 0) {
                    c->eof = true; /* peer closed without close_notify */
                    return got;
                }
                return CELER_ETLS;
            }
            n = r;
        } else {
            n = recv(c->fd, dst, room, 0);
            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                return errno == EAGAIN ? got : -errno;
            }
            if (n == 0) {
                c->eof = true;
                return got;
            }
        }
        buf_commit(&c->in, (size_t)n);
        c->bytes_in += (uint64_t)n;
        got = 1;
        if ((size_t)n < room && !(c->ssl && SSL_pending(c->ssl) > 0)) {
            return got; /* the socket is drained */
        }
    }
    /* more may be waiting: come back after other connections had their turn */
    event_active(c->ev_read, EV_READ, 0);
    return got;
}

static void
conn_after_read(struct conn *c, int rc)
{
    if (rc > 0 && c->reading && !conn_dispatch(c, CONN_EV_READ)) {
        return;
    }
    if (rc < 0) {
        c->err = rc;
        conn_dispatch(c, CONN_EV_ERROR);
        return;
    }
    if (c->eof) {
        conn_update_read(c);
        if (!conn_dispatch(c, CONN_EV_EOF)) {
            return;
        }
    }
    conn_flush(c);
}

static void
conn_on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;

    if (c->closed) {
        return;
    }
    if (c->handshaking) {
        conn_do_handshake(c);
        return;
    }
    if (!c->reading) {
        event_del(c->ev_read);
        return;
    }
    conn_after_read(c, conn_recv(c));
}

static void
conn_finish_connect(struct conn *c)
{
    int soerr = 0;
    socklen_t len = sizeof(soerr);

    c->connecting = false;
    event_del(c->ev_write);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0) {
        soerr = errno;
    }
    if (soerr != 0) {
        c->err = -soerr;
        conn_dispatch(c, CONN_EV_ERROR);
        return;
    }
    c->local_len = sizeof(c->local);
    if (getsockname(c->fd, (struct sockaddr *)&c->local, &c->local_len) != 0) {
        c->local_len = 0;
    }
    conn_update_read(c);
    if (conn_dispatch(c, CONN_EV_CONNECTED)) {
        conn_flush(c);
    }
}

static void
conn_on_writable(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    int rc;

    if (c->closed) {
        return;
    }
    if (c->connecting) {
        conn_finish_connect(c);
        return;
    }
    if (c->handshaking) {
        conn_do_handshake(c);
        return;
    }
    if (c->ssl_want_write) {
        c->ssl_want_write = false;
        conn_after_read(c, conn_recv(c));
        if (c->closed) {
            return;
        }
    }
    if (c->err == 0) {
        rc = conn_send(c);
        if (rc == -EAGAIN) {
            event_add(c->ev_write, NULL);
            return;
        }
        c->err = rc;
    }
    if (c->err != 0) {
        event_del(c->ev_write);
        conn_dispatch(c, CONN_EV_ERROR);
        return;
    }
    if (c->tls_pending) {
        conn_begin_handshake(c); /* plaintext before STARTTLS is out */
        if (!c->closed && c->handshaking) {
            conn_do_handshake(c);
        }
        return;
    }
    event_del(c->ev_write);
    if (c->closing) {
        conn_close(c);
        return;
    }
    if (c->want_drained) {
        c->want_drained = false;
        conn_dispatch(c, CONN_EV_DRAINED);
    }
}

static void
conn_on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;

    if (c->closing) {
        conn_close(c);
        return;
    }
    conn_dispatch(c, CONN_EV_TIMEOUT);
}

static void
conn_on_free(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;

    event_free(c->ev_read);
    event_free(c->ev_write);
    event_free(c->ev_timer);
    event_free(c->ev_free);
    buf_release(&c->in);
    buf_release(&c->out);
    free(c);
}

void
conn_close(struct conn *c)
{
    if (c == NULL || c->closed) {
        return;
    }
    c->closed = true;
    event_del(c->ev_read);
    event_del(c->ev_write);
    evtimer_del(c->ev_timer);
    if (c->ssl) {
        if (!c->tls_pending && !c->handshaking) {
            SSL_set_quiet_shutdown(c->ssl, 1);
            (void)SSL_shutdown(c->ssl); /* best effort; the socket closes next */
        }
        SSL_free(c->ssl);
        c->ssl = NULL;
        ERR_clear_error();
    }
    (void)close(c->fd); /* nothing more to send or learn */
    c->fd = -1;
    event_active(c->ev_free, EV_TIMEOUT, 0);
}

void
conn_close_after_flush(struct conn *c, unsigned timeout_ms)
{
    if (c->closed) {
        return;
    }
    c->closing = true;
    c->reading = false;
    conn_update_read(c);
    conn_set_timeout(c, timeout_ms ? timeout_ms : 1);
    event_add(c->ev_write, NULL);
    event_active(c->ev_write, EV_WRITE, 0);
}

char *
conn_ip_str(const struct sockaddr *sa, char *dst, size_t size)
{
    const void *a = NULL;

    if (sa->sa_family == AF_INET) {
        a = &((const struct sockaddr_in *)sa)->sin_addr;
    } else if (sa->sa_family == AF_INET6) {
        a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    }
    if (a == NULL || inet_ntop(sa->sa_family, a, dst, (socklen_t)size) == NULL) {
        snprintf(dst, size, "%s", sa->sa_family == AF_UNIX ? "local" : "unknown");
    }
    return dst;
}

char *
conn_addr_str(const struct sockaddr *sa, char *dst, size_t size)
{
    char ip[INET6_ADDRSTRLEN];
    unsigned port = 0;

    conn_ip_str(sa, ip, sizeof(ip));
    if (sa->sa_family == AF_INET) {
        port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
        snprintf(dst, size, "[%s]:%u", ip, port);
        return dst;
    } else if (sa->sa_family == AF_UNIX) {
        snprintf(dst, size, "%s", ((const struct sockaddr_un *)sa)->sun_path);
        return dst;
    }
    snprintf(dst, size, "%s:%u", ip, port);
    return dst;
}
