/*
 * pool: thread pools for blocking work (see pool.h).
 *
 * One mutex guards the queue and the counters; one condition variable wakes
 * idle threads, signalled once per submitted job and broadcast on free. The
 * busy-time integral behind avg_concurrency is advanced under the mutex at
 * every change of the busy count, with the clock read under the mutex so it
 * never runs backwards.
 */
#include "net/pool.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"

struct pool {
    char *name;         /* owned */
    pthread_t *threads; /* owned, nthreads */
    unsigned nthreads;
    unsigned nstarted; /* threads created and to be joined */

    pthread_mutex_t lock;
    pthread_cond_t wake;    /* a job was queued, or the pool is stopping */
    struct list_node queue; /* waiting pool_job, guarded by lock */
    bool stopping;          /* guarded by lock */
    unsigned queued;        /* guarded by lock, like everything below */
    unsigned busy;
    uint64_t invocations;
    uint64_t wall_us;      /* sum of work() durations */
    uint64_t busy_area_us; /* integral of busy over time */
    uint64_t busy_time_us; /* time with busy > 0 */
    uint64_t mark_us;      /* when the integral was last advanced */
};

/* Advances the busy integral to now; call under the lock before busy changes. */
static void
pool_account(struct pool *p)
{
    uint64_t now = clock_mono_us();

    if (p->busy > 0) {
        uint64_t dt = now - p->mark_us;

        p->busy_area_us += (uint64_t)p->busy * dt;
        p->busy_time_us += dt;
    }
    p->mark_us = now;
}

static void
pool_job_complete(struct loop *lp, void *arg)
{
    struct pool_job *job = arg;

    job->done(lp, job->arg); /* may free job */
}

/* Runs one job taken off the queue; called without the lock. */
static void
pool_run_job(struct pool *p, struct pool_job *job)
{
    uint64_t start = clock_mono_us();
    uint64_t end;

    job->work(job->arg);
    end = clock_mono_us();
    pthread_mutex_lock(&p->lock);
    pool_account(p);
    p->busy--;
    p->invocations++;
    p->wall_us += end - start;
    pthread_mutex_unlock(&p->lock);
    /* Counted before done runs, so whoever waits for done sees the stats. */
    if (job->done == NULL) {
        return;
    }
    if (job->origin == NULL) {
        job->done(NULL, job->arg); /* may free job */
        return;
    }
    loop_post_msg(job->origin, &job->msg); /* msg was set up by pool_submit() */
}

static void *
pool_thread_main(void *arg)
{
    struct pool *p = arg;

    pthread_mutex_lock(&p->lock);
    for (;;) {
        struct list_node *n;

        while (list_empty(&p->queue) && !p->stopping) {
            pthread_cond_wait(&p->wake, &p->lock);
        }
        n = list_pop_front(&p->queue);
        if (n == NULL) {
            break; /* stopping, and nothing left to run */
        }
        p->queued--;
        pool_account(p);
        p->busy++;
        pthread_mutex_unlock(&p->lock);
        pool_run_job(p, container_of(n, struct pool_job, node));
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

struct pool *
pool_new(const char *name, unsigned nthreads, int *err)
{
    struct pool *p = NULL;
    char tname[32];
    int rc;

    if (name == NULL || name[0] == '\0' || nthreads == 0) {
        rc = -EINVAL;
        goto fail;
    }
    if (nthreads > POOL_MAX_THREADS) {
        rc = CELER_ELIMIT;
        goto fail;
    }
    p = XNEW(struct pool);
    p->name = xstrdup(name);
    p->nthreads = nthreads;
    p->threads = xcalloc(nthreads, sizeof(*p->threads));
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    list_init(&p->queue);
    p->mark_us = clock_mono_us();
    for (unsigned i = 0; i < nthreads; i++) {
        (void)snprintf(tname, sizeof(tname), "celer-%s-%u", name, i); /* truncated later */
        rc = loop_spawn_thread(&p->threads[i], tname, pool_thread_main, p);
        if (rc != 0) {
            goto fail;
        }
        p->nstarted++;
    }
    return p;
fail:
    log_error("pool_new_failed pool=%s threads=%u err=\"%s\"", name ? name : "-", nthreads,
              err_str(rc));
    pool_free(p);
    if (err) {
        *err = rc;
    }
    return NULL;
}

void
pool_submit(struct pool *p, struct pool_job *job, struct loop *origin, pool_work_fn *work,
            pool_done_fn *done, void *arg)
{
    assert(work != NULL);
    job->work = work;
    job->done = done;
    job->arg = arg;
    job->origin = origin;
    loop_msg_init(&job->msg, pool_job_complete, job);
    pthread_mutex_lock(&p->lock);
    list_push_back(&p->queue, &job->node);
    p->queued++;
    pthread_mutex_unlock(&p->lock);
    /* One job, one thread: a busy thread takes queued jobs before it waits again. */
    pthread_cond_signal(&p->wake);
}

void
pool_free(struct pool *p)
{
    if (p == NULL) {
        return;
    }
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_mutex_unlock(&p->lock);
    pthread_cond_broadcast(&p->wake);
    for (unsigned i = 0; i < p->nstarted; i++) {
        int rc = pthread_join(p->threads[i], NULL);

        assert(rc == 0);
        (void)rc;
    }
    assert(list_empty(&p->queue));
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p->threads);
    free(p->name);
    free(p);
}

void
pool_get_stats(struct pool *p, struct pool_stats *out)
{
    pthread_mutex_lock(&p->lock);
    pool_account(p);
    *out = (struct pool_stats){
        .name = p->name,
        .threads = p->nthreads,
        .invocations = p->invocations,
        .avg_concurrency = p->busy_time_us ? (double)p->busy_area_us / (double)p->busy_time_us : 0,
        .avg_wall_ms = p->invocations ? (double)p->wall_us / (double)p->invocations / 1000.0 : 0,
        .busy = p->busy,
        .queued = p->queued,
    };
    pthread_mutex_unlock(&p->lock);
}
