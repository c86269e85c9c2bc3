/*
 * reception: turns inbound ESMTP sessions into spooled messages.
 *
 * The policy and storage half of the SMTP server: for every accepted
 * connection it resolves the session's configuration from the listener's
 * scopes (Peer -> Listen -> listener -> pathway -> global), applies the
 * connection limits (listener_sessions, memory_hwm, greeting pause), relay
 * control (relay_hosts, relay_domains with Momentum's "*.x.com" rule,
 * open_relay, SMTP AUTH, verified TLS client certificates), the inbound
 * throttle, and writes each message into the spool while DATA streams in,
 * with a Received header and, when missing, Message-ID and Date
 * (rfc2822_* options). The client gets "250 2.0.0 Ok: queued as <id>" only
 * once the spool says the message is durable; then the mainlog gets one R
 * record per recipient and the message goes to the sink given at creation
 * (the queue). Every refusal is a rejectlog line.
 *
 * One struct reception serves all loops: per-loop state (the loop's
 * configuration snapshot and its sessions) lives in a struct reception_loop
 * touched only by that loop; shared caches (TLS contexts, password files,
 * throttles) have their own locks.
 */
#ifndef CELER_QUEUE_RECEPTION_H
#define CELER_QUEUE_RECEPTION_H

#include <stdbool.h>
#include <stdint.h>

#include "conf/conf.h"
#include "log/log_writer.h"
#include "net/loop.h"
#include "spool/spool_file.h"

/* A message that is durable in the spool, as handed to the sink. */
struct reception_msg {
    const char *id;
    struct spool_id sid;
    const struct spool_envelope *env; /* borrowed for the call */
    uint64_t size;                    /* message octets incl. the added headers */
    uint64_t body_off;                /* where the stored bytes start in the spool file */
    uint64_t body_len;
    struct strv prepend; /* headers added in front of the stored bytes */
};

typedef void reception_sink_fn(struct loop *lp, const struct reception_msg *m, void *arg);

struct reception_opts {
    struct spool *spool;
    struct log_file *mainlog;   /* NULL: none */
    struct log_file *rejectlog; /* NULL: none */
    reception_sink_fn *sink;    /* NULL: messages just stay in the spool */
    void *sink_arg;
    struct loop_group *loops;
};

struct reception;
/* One listening address (a Listen scope) with its session counter. */
struct reception_listen;

struct reception *reception_new(const struct reception_opts *o, struct conf *c);
/* After every loop has stopped. */
void reception_free(struct reception *r);
/* Hands a new configuration to every loop (each swaps it in between events). */
void reception_set_conf(struct reception *r, struct conf *c);
/* Declares a Listen scope (by listener kind and name) that sockets will accept on. */
struct reception_listen *reception_listen_add(struct reception *r, enum conf_scope_type kind,
                                              const char *name);
/* The reception a listen belongs to. */
struct reception *reception_listen_owner(const struct reception_listen *l);
/* A connection accepted on loop lp (call on lp). */
void reception_accept(struct reception *r, struct reception_listen *l, struct loop *lp, int fd);
/* On each loop at shutdown: ends every session that is not storing a message. */
void reception_stop_loop(struct reception *r, struct loop *lp);
/* Called about once a second from the admin thread with the current configuration. */
void reception_tick(struct reception *r, const struct conf *c);

/* Momentum's relay_domains rule: "x.com" matches x.com; "*.x.com" matches below x.com only. */
bool reception_domain_listed(const char *const *list, size_t n, struct strv domain);

struct reception_stats {
    uint64_t sessions;
    uint64_t received;
    uint64_t rejected;
    uint64_t active_sessions;
};
void reception_get_stats(struct reception *r, struct reception_stats *out);

#endif
