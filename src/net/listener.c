/*
 * listener: listening sockets (see listener.h).
 */
#include "net/listener.h"

#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/log.h"
#include "core/mem.h"

#define LISTENER_ACCEPTS_PER_EVENT 64
#define LISTENER_EMFILE_PAUSE_MS   100

struct listener {
    struct loop *loop; /* borrowed */
    int fd;
    struct event *ev;    /* owned */
    struct event *pause; /* owned */
    listener_accept_fn *cb;
    void *arg;
};

int
listener_bind(const struct sockaddr *sa, socklen_t len, int backlog, bool reuseport, mode_t mode,
              int *out)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1, err;

    if (fd < 0) {
        return -errno;
    }
    if (sa->sa_family == AF_UNIX) {
        const char *path = ((const struct sockaddr_un *)sa)->sun_path;
        struct stat st;

        if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
            (void)unlink(path); /* a stale socket from an earlier run */
        }
    } else if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
               (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)) {
        goto fail;
    }
    if (sa->sa_family == AF_INET6 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0) {
        goto fail;
    }
    if (bind(fd, sa, len) != 0) {
        goto fail;
    }
    if (sa->sa_family == AF_UNIX && mode &&
        chmod(((const struct sockaddr_un *)sa)->sun_path, mode) != 0) {
        goto fail;
    }
    if (listen(fd, backlog > 0 ? backlog : 500) != 0) {
        goto fail;
    }
    *out = fd;
    return 0;
fail:
    err = -errno;
    (void)close(fd); /* never used */
    return err;
}

static void
listener_on_resume(evutil_socket_t fd, short what, void *arg)
{
    struct listener *l = arg;

    event_add(l->ev, NULL);
}

static void
listener_on_accept(evutil_socket_t lfd, short what, void *arg)
{
    struct listener *l = arg;

    for (int i = 0; i < LISTENER_ACCEPTS_PER_EVENT; i++) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) {
                continue;
            }
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                struct timeval tv = {0, LISTENER_EMFILE_PAUSE_MS * 1000};

                log_error("accept_paused error=\"%s\" ms=%d", err_str(-errno),
                          LISTENER_EMFILE_PAUSE_MS);
                event_del(l->ev);
                evtimer_add(l->pause, &tv);
            }
            return; /* EAGAIN: all taken */
        }
        l->cb(l, fd, l->arg);
    }
}

struct listener *
listener_new(struct loop *lp, int fd, listener_accept_fn *cb, void *arg)
{
    struct listener *l = XNEW(struct listener);

    l->loop = lp;
    l->fd = fd;
    l->cb = cb;
    l->arg = arg;
    l->ev = event_new(loop_base(lp), fd, EV_READ | EV_PERSIST, listener_on_accept, l);
    l->pause = evtimer_new(loop_base(lp), listener_on_resume, l);
    if (l->ev == NULL || l->pause == NULL) {
        abort(); /* allocation failure */
    }
    event_add(l->ev, NULL);
    return l;
}

void
listener_free(struct listener *l)
{
    if (l == NULL) {
        return;
    }
    event_free(l->ev);
    event_free(l->pause);
    (void)close(l->fd); /* a listening socket: nothing to flush */
    free(l);
}

struct loop *
listener_loop(const struct listener *l)
{
    return l->loop;
}
