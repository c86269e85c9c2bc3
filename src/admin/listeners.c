/*
 * listeners: ESMTP listening sockets of the daemon (see listeners.h).
 */
#include "admin/listeners.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/mem.h"
#include "net/listener.h"

struct listeners_addr {
    char *name;                  /* the Listen scope's name */
    struct reception_listen *rl; /* borrowed from the reception */
    int *fds;                    /* one per loop; -1 once a listener owns it */
    struct listener **ls;        /* one per loop; touched only by that loop */
};

struct listeners {
    struct reception *r;
    struct listeners_addr *addrs;
    size_t naddrs;
    unsigned nloops;
};

static void
listeners_on_accept(struct listener *l, int fd, void *arg)
{
    struct listeners_addr *a = arg;

    reception_accept(reception_listen_owner(a->rl), a->rl, listener_loop(l), fd);
}

static int
listeners_bind_one(struct listeners *ls, const struct conf *c, const struct conf_scope *listener,
                   const struct conf_scope *listen)
{
    struct listeners_addr *a = &ls->addrs[ls->naddrs];
    struct sockaddr_storage ss;
    socklen_t len;
    struct conf_chain ch;
    int backlog, err;

    conf_chain_inbound(c, listener, listen, NULL, &ch);
    backlog = (int)conf_chain_get_name(c, &ch, "listen_backlog")->val.i;
    if (conf_listen_parse(listen->name, &ss, &len) != 0 || ss.ss_family == AF_UNIX) {
        log_crit("listen_unsupported address=%s: ESMTP listens on TCP addresses", listen->name);
        return -EINVAL;
    }
    a->name = xstrdup(listen->name);
    a->fds = xcalloc(ls->nloops, sizeof(*a->fds));
    a->ls = xcalloc(ls->nloops, sizeof(*a->ls));
    ls->naddrs++;
    for (unsigned i = 0; i < ls->nloops; i++) {
        a->fds[i] = -1;
    }
    for (unsigned i = 0; i < ls->nloops; i++) {
        err = listener_bind((const struct sockaddr *)&ss, len, backlog, true, 0, &a->fds[i]);
        if (err != 0) {
            log_crit("listen_failed address=%s error=\"%s\"", listen->name, err_str(err));
            return err;
        }
    }
    a->rl = reception_listen_add(ls->r, CONF_SCOPE_ESMTP_LISTENER, listen->name);
    log_notice("listening address=%s sockets=%u", listen->name, ls->nloops);
    return 0;
}

struct listeners *
listeners_bind(const struct conf *c, unsigned nloops, struct reception *r, int *err)
{
    struct listeners *ls = XNEW(struct listeners);
    const struct conf_scope *listener = conf_child(c->root, CONF_SCOPE_ESMTP_LISTENER, NULL);
    const struct conf_scope *k;
    size_t it = 0, n = 0;

    ls->r = r;
    ls->nloops = nloops;
    if (listener) {
        while (conf_child_next(listener, CONF_SCOPE_LISTEN, NULL, &it)) {
            n++;
        }
    }
    ls->addrs = xcalloc(n ? n : 1, sizeof(*ls->addrs));
    it = 0;
    while (listener && (k = conf_child_next(listener, CONF_SCOPE_LISTEN, NULL, &it))) {
        *err = listeners_bind_one(ls, c, listener, k);
        if (*err != 0) {
            listeners_free(ls);
            return NULL;
        }
    }
    return ls;
}

struct listeners_attach {
    struct listeners *ls;
    unsigned index;
};

static void
listeners_attach_loop(struct loop *lp, void *arg)
{
    struct listeners_attach *at = arg;
    struct listeners *ls = at->ls;

    for (size_t i = 0; i < ls->naddrs; i++) {
        struct listeners_addr *a = &ls->addrs[i];

        a->ls[at->index] = listener_new(lp, a->fds[at->index], listeners_on_accept, a);
        a->fds[at->index] = -1;
    }
    free(at);
}

void
listeners_start(struct listeners *ls, struct loop_group *g)
{
    for (unsigned i = 0; i < ls->nloops; i++) {
        struct listeners_attach *at = XNEW(struct listeners_attach);

        at->ls = ls;
        at->index = i;
        loop_post(loop_group_get(g, i), listeners_attach_loop, at);
    }
}

void
listeners_stop_loop(struct listeners *ls, struct loop *lp)
{
    unsigned i = loop_index(lp);

    for (size_t k = 0; k < ls->naddrs; k++) {
        listener_free(ls->addrs[k].ls[i]);
        ls->addrs[k].ls[i] = NULL;
    }
}

void
listeners_free(struct listeners *ls)
{
    if (ls == NULL) {
        return;
    }
    for (size_t k = 0; k < ls->naddrs; k++) {
        struct listeners_addr *a = &ls->addrs[k];

        for (unsigned i = 0; i < ls->nloops; i++) {
            if (a->fds[i] >= 0) {
                (void)close(a->fds[i]); /* never attached */
            }
            listener_free(a->ls[i]); /* normally already freed on its loop */
        }
        free(a->fds);
        free(a->ls);
        free(a->name);
    }
    free(ls->addrs);
    free(ls);
}

void
listeners_check_reload(const struct listeners *ls, const struct conf *c)
{
    const struct conf_scope *listener = conf_child(c->root, CONF_SCOPE_ESMTP_LISTENER, NULL);
    const struct conf_scope *k;
    size_t it = 0, n = 0;

    while (listener && (k = conf_child_next(listener, CONF_SCOPE_LISTEN, NULL, &it))) {
        bool found = false;

        for (size_t i = 0; i < ls->naddrs; i++) {
            found |= strcmp(ls->addrs[i].name, k->name) == 0;
        }
        if (!found) {
            log_warning("config_needs_restart listen=%s: new listen addresses need a restart",
                        k->name);
        }
        n++;
    }
    if (n < ls->naddrs) {
        log_warning(
            "config_needs_restart: removed listen addresses keep listening until a restart");
    }
}
