/*
 * listeners: the ESMTP listening sockets of the running daemon.
 *
 * For every Listen scope of the ESMTP_Listener, one socket per event loop is
 * bound with SO_REUSEPORT before privileges are dropped (so ports below 1024
 * work); once the loops run, each loop accepts on its own socket and hands
 * connections to the reception. The set of addresses is fixed at start-up:
 * a reload that adds or removes Listen scopes needs a restart (celerd says
 * so), while options inside them apply to new sessions at once.
 */
#ifndef CELER_ADMIN_LISTENERS_H
#define CELER_ADMIN_LISTENERS_H

#include "conf/conf.h"
#include "net/loop.h"
#include "queue/reception.h"

struct listeners;

/* Binds every Listen of the ESMTP listener for nloops loops. NULL with *err (logged). */
struct listeners *listeners_bind(const struct conf *c, unsigned nloops, struct reception *r,
                                 int *err);
/* Starts accepting on every loop of g (posts to each loop). */
void listeners_start(struct listeners *ls, struct loop_group *g);
/* On loop lp's thread: stops accepting there. */
void listeners_stop_loop(struct listeners *ls, struct loop *lp);
/* After the loops stopped. NULL ok. */
void listeners_free(struct listeners *ls);
/* Warns when c's Listen scopes differ from the bound ones. */
void listeners_check_reload(const struct listeners *ls, const struct conf *c);

#endif
