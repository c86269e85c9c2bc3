/*
 * listener: listening sockets and accepting on a loop.
 *
 * listener_bind() makes the socket (before privileges are dropped): TCP with
 * SO_REUSEADDR and, for one socket per loop on the same address,
 * SO_REUSEPORT, so the kernel spreads connections over the loops; or a Unix
 * socket (a stale socket file is replaced; mode applied). listener_new()
 * accepts on a loop: each accepted socket (non-blocking, close-on-exec) goes
 * to the callback on that loop. When the process runs out of descriptors,
 * accepting pauses for a moment instead of spinning.
 */
#ifndef CELER_NET_LISTENER_H
#define CELER_NET_LISTENER_H

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "core/err.h"
#include "net/loop.h"

struct listener;
typedef void listener_accept_fn(struct listener *l, int fd, void *arg);

/* A bound, listening socket in *fd; -errno. mode applies to Unix sockets (0: leave). */
int listener_bind(const struct sockaddr *sa, socklen_t len, int backlog, bool reuseport,
                  mode_t mode, int *fd) CELER_WUR;
/* Accepts on fd (taken over) on loop lp. */
struct listener *listener_new(struct loop *lp, int fd, listener_accept_fn *cb, void *arg);
/* Stops accepting and closes the socket. NULL ok. Call on the listener's loop. */
void listener_free(struct listener *l);
struct loop *listener_loop(const struct listener *l);

#endif
