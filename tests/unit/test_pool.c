/*
 * test_pool: thread pools. Jobs run concurrently up to the thread count (8
 * jobs meeting at a barrier of 8 finish on 8 threads), on named pool threads;
 * completions run on the origin loop's thread (or right after the work when
 * there is no origin); pool_free() finishes every queued job; the statistics
 * count what ran.
 *
 * cmocka's assertions may only run on the main thread: other threads count
 * failed CHECKs, which the main thread asserts to be zero.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/err.h"
#include "net/loop.h"
#include "net/pool.h"

#include "support/testkit.h"

static void
test_invalid_arguments(void **state)
{
    int err = 0;

    (void)state;
    assert_null(pool_new("io", 0, &err));
    assert_int_equal(err, -EINVAL);
    err = 0;
    assert_null(pool_new("", 1, &err));
    assert_int_equal(err, -EINVAL);
    err = 0;
    assert_null(pool_new(NULL, 1, &err));
    assert_int_equal(err, -EINVAL);
    assert_null(pool_new("io", POOL_MAX_THREADS + 1, &err));
    assert_int_equal(err, CELER_ELIMIT);
    pool_free(NULL);
}

/* ---- concurrency: 8 jobs that can only finish together ---- */

struct meet {
    struct latch arrived; /* every job counts down, then waits for zero */
    atomic_uint met, done;
    pthread_mutex_t mu;
    char names[8][16];
    unsigned nnames;
    unsigned hold_ms; /* extra time each job stays busy after meeting */
};

struct meet_job {
    struct pool_job job;
    struct meet *m;
};

static void
meet_work(void *arg)
{
    struct meet_job *j = arg;
    struct meet *m = j->m;
    char name[16] = "";

    CHECK(loop_current() == NULL);
    (void)pthread_getname_np(pthread_self(), name, sizeof(name));
    pthread_mutex_lock(&m->mu);
    if (m->nnames < 8) {
        memcpy(m->names[m->nnames++], name, sizeof(name));
    }
    pthread_mutex_unlock(&m->mu);
    latch_down(&m->arrived);
    if (latch_wait(&m->arrived, 5000)) { /* needs all 8 running at once */
        atomic_fetch_add(&m->met, 1);
    }
    if (m->hold_ms) {
        sleep_ms(m->hold_ms);
    }
}

static void
meet_done(struct loop *lp, void *arg)
{
    struct meet_job *j = arg;

    CHECK(lp == NULL); /* no origin: right after the work, on the pool thread */
    CHECK(loop_current() == NULL);
    atomic_fetch_add(&j->m->done, 1);
}

static int
cmp_names(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static void
test_eight_at_once(void **state)
{
    struct meet m = {0};
    struct meet_job jobs[8];
    int err = 0;
    struct pool *p = pool_new("io", 8, &err);

    (void)state;
    assert_non_null(p);
    latch_init(&m.arrived, 8);
    pthread_mutex_init(&m.mu, NULL);
    m.hold_ms = 100;
    for (int i = 0; i < 8; i++) {
        jobs[i].m = &m;
        pool_submit(p, &jobs[i].job, NULL, meet_work, meet_done, &jobs[i]);
    }
    pool_free(p); /* waits for all 8 */
    assert_int_equal(atomic_load(&m.met), 8);
    assert_int_equal(atomic_load(&m.done), 8);
    /* Eight distinct threads, named after the pool. */
    assert_int_equal(m.nnames, 8);
    qsort(m.names, 8, sizeof(m.names[0]), cmp_names);
    for (int i = 0; i < 8; i++) {
        char want[32];

        (void)snprintf(want, sizeof(want), "celer-io-%d", i);
        assert_string_equal(m.names[i], want);
    }
    latch_destroy(&m.arrived);
    pthread_mutex_destroy(&m.mu);
}

static void
test_stats_concurrency(void **state)
{
    struct meet m = {0};
    struct meet_job jobs[8];
    struct pool_stats st;
    int err = 0;
    struct pool *p = pool_new("fsync", 8, &err);

    (void)state;
    assert_non_null(p);
    latch_init(&m.arrived, 8);
    pthread_mutex_init(&m.mu, NULL);
    m.hold_ms = 150;
    for (int i = 0; i < 8; i++) {
        jobs[i].m = &m;
        pool_submit(p, &jobs[i].job, NULL, meet_work, meet_done, &jobs[i]);
    }
    while (atomic_load(&m.done) < 8) {
        sleep_ms(5);
    }
    pool_get_stats(p, &st);
    assert_string_equal(st.name, "fsync");
    assert_int_equal(st.threads, 8);
    assert_true(st.invocations == 8);
    assert_int_equal(st.busy, 0);
    assert_int_equal(st.queued, 0);
    assert_true(st.avg_wall_ms >= 150.0);
    assert_true(st.avg_wall_ms < 5000.0);
    /* All eight overlapped for the 150 ms they held: close to 8, at most 8. */
    assert_true(st.avg_concurrency > 4.0);
    assert_true(st.avg_concurrency <= 8.0);
    pool_free(p);
    latch_destroy(&m.arrived);
    pthread_mutex_destroy(&m.mu);
}

/* ---- sequential stats ---- */

static void
sleep_work(void *arg)
{
    sleep_ms((unsigned)(uintptr_t)arg);
}

static void
test_stats_sequential(void **state)
{
    struct pool_job jobs[5];
    struct pool_stats st;
    int err = 0;
    struct pool *p = pool_new("swapin", 1, &err);

    (void)state;
    assert_non_null(p);
    pool_get_stats(p, &st);
    assert_true(st.invocations == 0);
    assert_true(st.avg_wall_ms == 0.0);
    assert_true(st.avg_concurrency == 0.0);
    for (int i = 0; i < 5; i++) {
        pool_submit(p, &jobs[i], NULL, sleep_work, NULL, (void *)(uintptr_t)20);
    }
    pool_get_stats(p, &st);
    assert_true(st.busy <= 1); /* one thread: the rest wait */
    assert_true(st.busy + st.queued <= 5);
    while (st.invocations < 5) {
        sleep_ms(5);
        pool_get_stats(p, &st);
    }
    assert_true(st.avg_wall_ms >= 20.0);
    assert_true(st.avg_concurrency > 0.99 && st.avg_concurrency <= 1.0); /* one at a time */
    pool_free(p);
}

/* ---- completions on the origin loop ---- */

enum { ORIGIN_JOBS = 3000 };

struct origin_ctx {
    struct loop_group *g;
    struct pool *p;
    struct latch all_done;
};

struct origin_job {
    struct pool_job job;
    struct origin_ctx *c;
    struct loop *want;
    atomic_bool worked;
    atomic_uint done_runs;
};

static void
origin_work(void *arg)
{
    struct origin_job *j = arg;

    CHECK(loop_current() == NULL); /* never on a loop */
    CHECK(!atomic_load(&j->worked));
    atomic_store(&j->worked, true);
}

static void
origin_done(struct loop *lp, void *arg)
{
    struct origin_job *j = arg;

    CHECK(lp == j->want);
    CHECK(loop_current() == j->want); /* on the origin loop's thread */
    CHECK(atomic_load(&j->worked));   /* after the work */
    atomic_fetch_add(&j->done_runs, 1);
    latch_down(&j->c->all_done);
}

/* Loops submit too: half of the jobs come from a loop message. */
static void
submit_from_loop(struct loop *lp, void *arg)
{
    struct origin_job *jobs = arg;

    for (unsigned i = 0; i < ORIGIN_JOBS / 2; i++) {
        struct origin_job *j = &jobs[i];

        if (j->want == lp) {
            pool_submit(j->c->p, &j->job, lp, origin_work, origin_done, j);
        }
    }
}

static void
test_completions_on_origin(void **state)
{
    struct origin_ctx c = {0};
    struct origin_job *jobs = calloc(ORIGIN_JOBS, sizeof(*jobs));
    struct pool_stats st;
    int err = 0;

    (void)state;
    c.g = loop_group_new(2, &err);
    assert_non_null(c.g);
    assert_int_equal(loop_group_start(c.g), 0);
    c.p = pool_new("cpu", 4, &err);
    assert_non_null(c.p);
    latch_init(&c.all_done, ORIGIN_JOBS);
    for (unsigned i = 0; i < ORIGIN_JOBS; i++) {
        jobs[i].c = &c;
        jobs[i].want = loop_group_get(c.g, i % 2);
    }
    loop_post(loop_group_get(c.g, 0), submit_from_loop, jobs);
    loop_post(loop_group_get(c.g, 1), submit_from_loop, jobs);
    for (unsigned i = ORIGIN_JOBS / 2; i < ORIGIN_JOBS; i++) {
        pool_submit(c.p, &jobs[i].job, jobs[i].want, origin_work, origin_done, &jobs[i]);
    }
    assert_true(latch_wait(&c.all_done, 10000));
    pool_get_stats(c.p, &st);
    assert_true(st.invocations == ORIGIN_JOBS); /* counted before done runs */
    assert_int_equal(st.busy, 0);
    assert_int_equal(st.queued, 0);
    pool_free(c.p);
    loop_group_stop(c.g, NULL, NULL);
    for (unsigned i = 0; i < ORIGIN_JOBS; i++) {
        assert_true(atomic_load(&jobs[i].worked));
        assert_int_equal(atomic_load(&jobs[i].done_runs), 1);
    }
    loop_group_free(c.g);
    latch_destroy(&c.all_done);
    free(jobs);
}

/* ---- pool_free drains ---- */

struct drain_ctx {
    struct latch started, release;
    atomic_uint worked, done;
    struct pool *p;
    struct pool_job extra; /* submitted by a job while the pool is stopping */
};

static void
drain_blocker(void *arg)
{
    struct drain_ctx *d = arg;

    latch_down(&d->started);
    CHECK(latch_wait(&d->release, 5000));
    atomic_fetch_add(&d->worked, 1);
}

static void
drain_work(void *arg)
{
    struct drain_ctx *d = arg;

    atomic_fetch_add(&d->worked, 1);
}

static void
drain_done(struct loop *lp, void *arg)
{
    struct drain_ctx *d = arg;

    (void)lp;
    atomic_fetch_add(&d->done, 1);
}

static void
drain_chain_work(void *arg)
{
    struct drain_ctx *d = arg;

    atomic_fetch_add(&d->worked, 1);
    pool_submit(d->p, &d->extra, NULL, drain_work, drain_done, d); /* follow-up work */
}

static void *
releaser_main(void *arg)
{
    struct drain_ctx *d = arg;

    sleep_ms(50); /* pool_free() is waiting by now */
    latch_down(&d->release);
    return NULL;
}

static void
test_free_drains(void **state)
{
    enum { N = 500 };
    struct drain_ctx d = {0};
    struct pool_job *jobs = calloc(N + 2, sizeof(*jobs));
    struct pool_stats st;
    pthread_t releaser;
    int err = 0;

    (void)state;
    d.p = pool_new("close", 1, &err);
    assert_non_null(d.p);
    latch_init(&d.started, 1);
    latch_init(&d.release, 1);
    pool_submit(d.p, &jobs[0], NULL, drain_blocker, drain_done, &d);
    assert_true(latch_wait(&d.started, 5000));
    for (unsigned i = 1; i <= N; i++) {
        pool_submit(d.p, &jobs[i], NULL, drain_work, drain_done, &d);
    }
    pool_submit(d.p, &jobs[N + 1], NULL, drain_chain_work, NULL, &d);
    pool_get_stats(d.p, &st);
    assert_int_equal(st.busy, 1);
    assert_int_equal(st.queued, N + 1); /* all waiting behind the blocker */
    assert_int_equal(pthread_create(&releaser, NULL, releaser_main, &d), 0);
    pool_free(d.p); /* with N + 1 jobs queued */
    assert_int_equal(pthread_join(releaser, NULL), 0);
    assert_int_equal(atomic_load(&d.worked), 1 + N + 1 + 1);
    assert_int_equal(atomic_load(&d.done), 1 + N + 1);
    latch_destroy(&d.started);
    latch_destroy(&d.release);
    free(jobs);
}

/* Completions of a pool freed while loops run land on the loops or at their stop. */
static void
count_done(struct loop *lp, void *arg)
{
    atomic_uint *n = arg;

    CHECK(lp != NULL && loop_current() == lp);
    atomic_fetch_add(n, 1);
}

static void
short_work(void *arg)
{
    (void)arg;
    sleep_ms(1);
}

static void
test_free_then_loops_stop(void **state)
{
    enum { N = 200 };
    struct pool_job *jobs = calloc(N, sizeof(*jobs));
    atomic_uint done = 0;
    int err = 0;
    struct loop_group *g = loop_group_new(2, &err);
    struct pool *p = pool_new("io", 4, &err);

    (void)state;
    assert_non_null(g);
    assert_non_null(p);
    assert_int_equal(loop_group_start(g), 0);
    for (unsigned i = 0; i < N; i++) {
        pool_submit(p, &jobs[i], loop_group_get(g, i % 2), short_work, count_done, &done);
    }
    pool_free(p);
    loop_group_stop(g, NULL, NULL);
    assert_int_equal(atomic_load(&done), N);
    loop_group_free(g);
    free(jobs);
}

/* ---- many submitters ---- */

enum { SUBMITTERS = 4, PER_SUBMITTER = 5000 };

struct many_ctx {
    struct pool *p;
    struct pool_job *jobs;
    atomic_uint *ran;
    pthread_barrier_t go;
};

struct many_arg {
    struct many_ctx *c;
    unsigned base;
};

static void
many_work(void *arg)
{
    atomic_uint *slot = arg;

    atomic_fetch_add(slot, 1);
}

static void
many_done(struct loop *lp, void *arg)
{
    (void)lp;
    (void)arg;
}

static void *
submitter_main(void *arg)
{
    struct many_arg *a = arg;
    struct many_ctx *c = a->c;

    (void)pthread_barrier_wait(&c->go);
    for (unsigned i = 0; i < PER_SUBMITTER; i++) {
        unsigned k = a->base + i;

        pool_submit(c->p, &c->jobs[k], NULL, many_work, (i & 1) ? many_done : NULL, &c->ran[k]);
    }
    return NULL;
}

static void
test_many_submitters(void **state)
{
    struct many_ctx c = {0};
    struct many_arg args[SUBMITTERS];
    pthread_t threads[SUBMITTERS];
    int err = 0;

    (void)state;
    c.p = pool_new("io", 4, &err);
    assert_non_null(c.p);
    c.jobs = calloc(SUBMITTERS * PER_SUBMITTER, sizeof(*c.jobs));
    c.ran = calloc(SUBMITTERS * PER_SUBMITTER, sizeof(*c.ran));
    assert_int_equal(pthread_barrier_init(&c.go, NULL, SUBMITTERS), 0);
    for (unsigned t = 0; t < SUBMITTERS; t++) {
        args[t] = (struct many_arg){&c, t * PER_SUBMITTER};
        assert_int_equal(pthread_create(&threads[t], NULL, submitter_main, &args[t]), 0);
    }
    for (unsigned t = 0; t < SUBMITTERS; t++) {
        assert_int_equal(pthread_join(threads[t], NULL), 0);
    }
    pool_free(c.p);
    for (unsigned k = 0; k < SUBMITTERS * PER_SUBMITTER; k++) {
        assert_int_equal(atomic_load(&c.ran[k]), 1); /* exactly once */
    }
    pthread_barrier_destroy(&c.go);
    free(c.jobs);
    free(c.ran);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_invalid_arguments, testkit_setup, testkit_teardown),
        cmocka_unit_test_setup_teardown(test_eight_at_once, testkit_setup, testkit_teardown),
        cmocka_unit_test_setup_teardown(test_stats_concurrency, testkit_setup, testkit_teardown),
        cmocka_unit_test_setup_teardown(test_stats_sequential, testkit_setup, testkit_teardown),
        cmocka_unit_test_setup_teardown(test_completions_on_origin, testkit_setup,
                                        testkit_teardown),
        cmocka_unit_test_setup_teardown(test_free_drains, testkit_setup, testkit_teardown),
        cmocka_unit_test_setup_teardown(test_free_then_loops_stop, testkit_setup, testkit_teardown),
        cmocka_unit_test_setup_teardown(test_many_submitters, testkit_setup, testkit_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
