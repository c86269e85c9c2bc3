/*
 * queue: the delivery engine: per-(binding, domain) queues, the scheduler,
 * routing and outbound connections.
 *
 * Messages come in from the reception (queue_submit) and from the start-up
 * spool scan (queue_recovered). Their recipients are grouped by domain; each
 * group joins the queue of its (binding, domain), which lives on the loop
 * chosen by hashing the domain, so a queue, its route record and its
 * connections are touched by one thread only. A queue has an active list
 * (deliverable now, priority messages first) and a delayed heap (ordered by
 * next attempt). Its maintainer moves due mail back to active, resolves the
 * route (DNS, Routes, Gateway), and opens connections within every limit
 * (Max_Outbound_Connections per queue and per Host, Scope_Max_... and
 * Server_Max_...), ramping by Connection_Allocation_Aggressiveness.
 * Connections are reused until Max_Deliveries_Per_Connection or
 * Idle_Timeout.
 *
 * Every outcome is logged (mainlog D, T, P with the connection stage) and
 * recorded durably in the spool before it is acted on: a transient failure
 * appends a PROGRESS record (attempts, next attempt, recipients made final)
 * before the message goes to the delayed queue; a message whose recipients
 * are all final is removed from the spool. A permanent failure produces a
 * simple bounce to the sender (docs/delivery.md).
 */
#ifndef CELER_QUEUE_QUEUE_H
#define CELER_QUEUE_QUEUE_H

#include <stdint.h>

#include "conf/conf.h"
#include "log/log_writer.h"
#include "net/loop.h"
#include "queue/reception.h"
#include "spool/spool_file.h"

struct queue;

struct queue_opts {
    struct spool *spool;
    struct loop_group *loops;
    struct log_file *mainlog; /* NULL: none */
    const char *hostname;     /* this machine's name (EHLO default, bounces) */
};

/* NULL with the reason in why (e.g. an unreadable Resolv_Conf). */
struct queue *queue_new(const struct queue_opts *o, struct conf *c, struct buf *why);
/* After every loop has stopped and their late work ran. */
void queue_free(struct queue *q);
/* Hands a new configuration to every loop. */
void queue_set_conf(struct queue *q, struct conf *c);
/* On each loop as it stops: closes connections and timers of that loop. */
void queue_stop_loop(struct queue *q, struct loop *lp);

/* A message just made durable by the reception (call on the receiving loop). */
void queue_submit(struct loop *lp, const struct reception_msg *m, void *queue);
/* A message found by the start-up spool scan (call from any thread). */
void queue_recovered(struct queue *q, const struct spool_msg *m, struct spool_id id);

struct queue_stats {
    uint64_t active;
    uint64_t delayed;
    uint64_t messages;    /* queued messages (each counted once) */
    uint64_t delivered;   /* recipients */
    uint64_t failed;      /* recipients failed permanently */
    uint64_t transient;   /* transient failures */
    uint64_t connections; /* open outbound connections */
};
void queue_get_stats(struct queue *q, struct queue_stats *out);

#endif
