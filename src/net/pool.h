/*
 * pool: thread pools for blocking work (fsync, unlink, directory scans).
 *
 * A loop never blocks: it embeds a struct pool_job in the object the work is
 * for and submits it. A pool thread ("celer-<name>-N") runs work(arg); then
 * done(lp, arg) runs on the loop given at submit, posted through the job's
 * embedded loop_msg, so neither submitting nor completing allocates. With no
 * origin loop, done (if any) runs on the pool thread right after work.
 *
 * Threads wait on a condition variable; each submit wakes one of them, and
 * jobs start in submission order, up to nthreads at once (the spool runs
 * many fsyncs together so the journal commits them as a group).
 *
 * Owns: its threads and the queue links of waiting jobs; jobs stay owned by
 * the submitter and must stay valid until done has started (or work has
 * returned, without done). pool_free() runs every queued job before it joins
 * the threads; completions for loops that have already stopped are run by
 * loop_group_stop()/loop_group_free(), so free pools before their loop group.
 * Limits: 1..POOL_MAX_THREADS threads; the queue is unbounded.
 */
#ifndef CELER_NET_POOL_H
#define CELER_NET_POOL_H

#include <stdint.h>

#include "core/list.h"
#include "net/loop.h"

#define POOL_MAX_THREADS 1024

struct pool;

typedef void pool_work_fn(void *arg);                  /* runs on a pool thread */
typedef void pool_done_fn(struct loop *lp, void *arg); /* then runs on the loop given at submit */

/* Caller-embedded; pool_submit() fills every field. */
struct pool_job {
    struct list_node node; /* on the pool's queue while waiting */
    pool_work_fn *work;
    pool_done_fn *done;
    void *arg;           /* borrowed */
    struct loop *origin; /* borrowed: where done runs, or NULL */
    struct loop_msg msg; /* posts done to origin */
};

struct pool_stats {
    const char *name;       /* borrowed from the pool */
    unsigned threads;       /* configured concurrency */
    uint64_t invocations;   /* jobs whose work has returned */
    double avg_concurrency; /* time-weighted mean of busy threads while any was busy */
    double avg_wall_ms;     /* mean duration of work() */
    unsigned busy;          /* threads inside work() now */
    unsigned queued;        /* jobs waiting for a thread now */
};

/* NULL with *err = -EINVAL (no name, no threads), CELER_ELIMIT or -errno. */
struct pool *pool_new(const char *name, unsigned nthreads, int *err);
/* Thread-safe; also from work functions. origin may be NULL (see above); done may be NULL. */
void pool_submit(struct pool *p, struct pool_job *job, struct loop *origin, pool_work_fn *work,
                 pool_done_fn *done, void *arg);
/* Finishes every queued job, joins the threads, frees. NULL ok. */
void pool_free(struct pool *p);
/* For the console's "threads stats". Thread-safe. */
void pool_get_stats(struct pool *p, struct pool_stats *out);

#endif
