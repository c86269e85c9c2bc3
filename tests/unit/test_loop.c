/*
 * test_loop: event-loop threads and mailboxes. Every posted item runs exactly
 * once, on its loop (loop_current()), in FIFO order per poster; wake-ups are
 * batched; stopping runs on_stop on each loop, waits for the loop's events to
 * finish (or the stop timeout), and never drops an item, even one posted
 * during or after the shutdown.
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
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "core/clock.h"
#include "net/loop.h"

#include "support/testkit.h"

static struct loop_group *
group_new_started(unsigned n)
{
    int err = 0;
    struct loop_group *g = loop_group_new(n, &err);

    assert_non_null(g);
    assert_int_equal(loop_group_start(g), 0);
    return g;
}

/* ---- accessors, names, argument checks ---- */

struct name_probe {
    struct latch done;
    char names[4][16];
    struct loop *seen[4];
};

static void
probe_name(struct loop *lp, void *arg)
{
    struct name_probe *p = arg;
    unsigned i = loop_index(lp);

    CHECK(loop_current() == lp);
    (void)pthread_getname_np(pthread_self(), p->names[i], sizeof(p->names[i]));
    p->seen[i] = loop_current();
    latch_down(&p->done);
}

static void
test_accessors_and_names(void **state)
{
    struct loop_group *g = group_new_started(4);
    struct name_probe probe = {0};

    (void)state;
    latch_init(&probe.done, 4);
    assert_int_equal(loop_group_count(g), 4);
    assert_null(loop_current()); /* the main thread is no loop */
    for (unsigned i = 0; i < 4; i++) {
        struct loop *lp = loop_group_get(g, i);

        assert_int_equal(loop_index(lp), i);
        assert_non_null(loop_base(lp));
        for (unsigned j = 0; j < i; j++) {
            assert_ptr_not_equal(loop_base(lp), loop_base(loop_group_get(g, j)));
        }
        loop_post(lp, probe_name, &probe);
    }
    assert_true(latch_wait(&probe.done, 5000));
    for (unsigned i = 0; i < 4; i++) {
        char want[16];

        (void)snprintf(want, sizeof(want), "celer-loop-%u", i);
        assert_string_equal(probe.names[i], want);
        assert_ptr_equal(probe.seen[i], loop_group_get(g, i));
    }
    loop_group_stop(g, NULL, NULL);
    loop_group_free(g);
    latch_destroy(&probe.done);
}

static void
test_invalid_arguments(void **state)
{
    int err = 0;
    struct loop_group *g;

    (void)state;
    assert_null(loop_group_new(0, &err));
    assert_int_equal(err, -EINVAL);
    assert_null(loop_group_new(LOOP_MAX + 1, &err));
    assert_int_equal(err, CELER_ELIMIT);
    loop_group_free(NULL);
    g = group_new_started(1);
    assert_int_equal(loop_group_start(g), -EALREADY);
    loop_group_stop(g, NULL, NULL);
    loop_group_stop(g, NULL, NULL); /* a second stop is harmless */
    assert_int_equal(loop_group_start(g), -EALREADY);
    loop_group_free(g);
}

/* ---- many posters to one loop ---- */

enum { POSTERS = 8, PER_POSTER = 5000 };

struct flood;

struct flood_msg {
    struct loop_msg msg;
    struct flood *f;
    unsigned poster, seq;
};

struct flood {
    struct loop *target;
    pthread_t target_thread;
    struct latch ready; /* target_thread known */
    struct latch all_run;
    pthread_barrier_t go;
    struct flood_msg *msgs; /* POSTERS * PER_POSTER */
    unsigned next_seq[POSTERS];
    unsigned char *runs;
};

struct poster_arg {
    struct flood *f;
    unsigned poster;
};

static void
flood_run(struct loop *lp, void *arg)
{
    struct flood_msg *m = arg;
    struct flood *f = m->f;

    CHECK(lp == f->target);
    CHECK(loop_current() == f->target);
    CHECK(pthread_equal(pthread_self(), f->target_thread));
    CHECK(f->next_seq[m->poster] == m->seq); /* FIFO per poster */
    f->next_seq[m->poster] = m->seq + 1;
    f->runs[m->poster * PER_POSTER + m->seq]++;
    latch_down(&f->all_run);
}

static void
flood_post_all(struct flood *f, unsigned poster)
{
    for (unsigned s = 0; s < PER_POSTER; s++) {
        struct flood_msg *m = &f->msgs[poster * PER_POSTER + s];

        m->f = f;
        m->poster = poster;
        m->seq = s;
        loop_msg_init(&m->msg, flood_run, m);
        loop_post_msg(f->target, &m->msg);
    }
}

static void *
poster_main(void *arg)
{
    struct poster_arg *pa = arg;

    (void)pthread_barrier_wait(&pa->f->go);
    flood_post_all(pa->f, pa->poster);
    return NULL;
}

/* The last poster is loop 0 itself: cross-loop posting. */
static void
poster_on_loop(struct loop *lp, void *arg)
{
    struct poster_arg *pa = arg;

    CHECK(loop_index(lp) == 0);
    (void)pthread_barrier_wait(&pa->f->go);
    flood_post_all(pa->f, pa->poster);
}

static void
note_thread(struct loop *lp, void *arg)
{
    struct flood *f = arg;

    (void)lp;
    f->target_thread = pthread_self();
    latch_down(&f->ready);
}

static void
test_many_posters(void **state)
{
    struct loop_group *g = group_new_started(2);
    struct flood f = {0};
    struct poster_arg args[POSTERS];
    pthread_t threads[POSTERS - 1];
    struct loop_stats st;

    (void)state;
    f.target = loop_group_get(g, 1);
    f.msgs = calloc(POSTERS * PER_POSTER, sizeof(*f.msgs));
    f.runs = calloc(POSTERS * PER_POSTER, 1);
    latch_init(&f.ready, 1);
    latch_init(&f.all_run, POSTERS * PER_POSTER);
    assert_int_equal(pthread_barrier_init(&f.go, NULL, POSTERS), 0);
    loop_post(f.target, note_thread, &f);
    assert_true(latch_wait(&f.ready, 5000));
    for (unsigned p = 0; p < POSTERS; p++) {
        args[p] = (struct poster_arg){&f, p};
        if (p < POSTERS - 1) {
            assert_int_equal(pthread_create(&threads[p], NULL, poster_main, &args[p]), 0);
        } else {
            loop_post(loop_group_get(g, 0), poster_on_loop, &args[p]);
        }
    }
    for (unsigned p = 0; p < POSTERS - 1; p++) {
        assert_int_equal(pthread_join(threads[p], NULL), 0);
    }
    assert_true(latch_wait(&f.all_run, 10000));
    loop_group_stop(g, NULL, NULL);
    for (unsigned i = 0; i < POSTERS * PER_POSTER; i++) {
        assert_int_equal(f.runs[i], 1); /* exactly once */
    }
    for (unsigned p = 0; p < POSTERS; p++) {
        assert_int_equal(f.next_seq[p], PER_POSTER);
    }
    loop_get_stats(f.target, &st);
    assert_true(st.messages == POSTERS * PER_POSTER + 2); /* + note_thread + stop message */
    assert_true(st.signals <= st.messages);
    loop_group_free(g);
    pthread_barrier_destroy(&f.go);
    latch_destroy(&f.ready);
    latch_destroy(&f.all_run);
    free(f.msgs);
    free(f.runs);
}

/* ---- batching ---- */

struct batch {
    struct latch started, release, all_run;
    unsigned ran;
};

static void
batch_blocker(struct loop *lp, void *arg)
{
    struct batch *b = arg;

    (void)lp;
    latch_down(&b->started);
    CHECK(latch_wait(&b->release, 5000));
}

static void
batch_item(struct loop *lp, void *arg)
{
    struct batch *b = arg;

    CHECK(loop_current() == lp);
    b->ran++;
    latch_down(&b->all_run);
}

static void
test_batching(void **state)
{
    enum { N = 10000 };
    struct loop_group *g = group_new_started(1);
    struct loop *lp = loop_group_get(g, 0);
    struct loop_msg *msgs = calloc(N, sizeof(*msgs));
    struct batch b = {0};
    struct loop_stats st;

    (void)state;
    latch_init(&b.started, 1);
    latch_init(&b.release, 1);
    latch_init(&b.all_run, N);
    loop_post(lp, batch_blocker, &b);
    assert_true(latch_wait(&b.started, 5000));
    loop_get_stats(lp, &st);
    assert_true(st.signals == 1);
    assert_true(st.wakeups == 1);
    /* The loop is busy: N posts make one eventfd write between them. */
    for (unsigned i = 0; i < N; i++) {
        loop_msg_init(&msgs[i], batch_item, &b);
        loop_post_msg(lp, &msgs[i]);
    }
    loop_get_stats(lp, &st);
    assert_true(st.signals == 2);
    latch_down(&b.release);
    assert_true(latch_wait(&b.all_run, 10000));
    /* ... and the loop took all of them in one wake-up. */
    loop_get_stats(lp, &st);
    assert_true(st.wakeups == 2);
    loop_group_stop(g, NULL, NULL);
    assert_int_equal(b.ran, N);
    loop_get_stats(lp, &st);
    assert_true(st.messages == N + 2); /* + the blocker and the stop message */
    loop_group_free(g);
    latch_destroy(&b.started);
    latch_destroy(&b.release);
    latch_destroy(&b.all_run);
    free(msgs);
}

/* ---- a message that re-posts itself: no allocation, no loss ---- */

struct chain {
    struct loop_msg msg;
    struct loop_group *g;
    unsigned hops;
    struct latch done;
};

static void
chain_hop(struct loop *lp, void *arg)
{
    struct chain *c = arg;

    CHECK(loop_current() == lp);
    CHECK(loop_index(lp) == c->hops % loop_group_count(c->g));
    if (++c->hops == 3000) {
        latch_down(&c->done);
        return;
    }
    loop_post_msg(loop_group_get(c->g, c->hops % loop_group_count(c->g)), &c->msg);
}

static void
test_repost_same_msg(void **state)
{
    struct chain c = {0};

    (void)state;
    c.g = group_new_started(3);
    latch_init(&c.done, 1);
    loop_msg_init(&c.msg, chain_hop, &c);
    loop_post_msg(loop_group_get(c.g, 0), &c.msg);
    assert_true(latch_wait(&c.done, 10000));
    loop_group_stop(c.g, NULL, NULL);
    assert_int_equal(c.hops, 3000);
    loop_group_free(c.g);
    latch_destroy(&c.done);
}

/* ---- stopping ---- */

struct stop_ctx {
    struct loop_group *g;
    struct latch started, release;
    atomic_uint ran[2]; /* items run, per target loop */
    atomic_uint wrong;  /* items run on the wrong loop */
    atomic_uint on_stop[2];
    atomic_uint late_on_main;
    pthread_t main_thread;
    struct event *timer; /* one-shot, added by on_stop on loop 1 */
    atomic_bool timer_fired;
};

static void
stop_item(struct loop *lp, void *arg)
{
    struct stop_ctx *c = arg;
    unsigned i = loop_index(lp);

    if (loop_current() != lp || lp != loop_group_get(c->g, i)) {
        atomic_fetch_add(&c->wrong, 1);
    }
    if (pthread_equal(pthread_self(), c->main_thread)) {
        atomic_fetch_add(&c->late_on_main, 1);
    }
    atomic_fetch_add(&c->ran[i], 1);
}

static void
stop_blocker(struct loop *lp, void *arg)
{
    struct stop_ctx *c = arg;

    (void)lp;
    latch_down(&c->started);
    CHECK(latch_wait(&c->release, 5000));
}

static void
stop_timer_fired(evutil_socket_t fd, short what, void *arg)
{
    struct stop_ctx *c = arg;

    (void)fd;
    (void)what;
    CHECK(loop_current() == loop_group_get(c->g, 1));
    atomic_store(&c->timer_fired, true);
    /* Posted from inside the stop phase, possibly to a loop that already left. */
    for (int k = 0; k < 10; k++) {
        loop_post(loop_group_get(c->g, 0), stop_item, c);
    }
    event_free(c->timer);
    c->timer = NULL;
}

static void
stop_on_stop(struct loop *lp, void *arg)
{
    struct stop_ctx *c = arg;
    unsigned i = loop_index(lp);

    CHECK(loop_current() == lp);
    CHECK(!pthread_equal(pthread_self(), c->main_thread));
    atomic_fetch_add(&c->on_stop[i], 1);
    /* Items posted during the shutdown, to both loops. */
    for (int k = 0; k < 100; k++) {
        loop_post(loop_group_get(c->g, 0), stop_item, c);
        loop_post(loop_group_get(c->g, 1), stop_item, c);
    }
    if (i == 1) {
        struct timeval tv = {0, 50000};

        c->timer = evtimer_new(loop_base(lp), stop_timer_fired, c);
        CHECK(c->timer != NULL && evtimer_add(c->timer, &tv) == 0);
    }
}

static void *
stopper_main(void *arg)
{
    struct stop_ctx *c = arg;

    loop_group_stop(c->g, stop_on_stop, c);
    return NULL;
}

static void
test_stop_with_pending(void **state)
{
    struct stop_ctx c = {0};
    pthread_t stopper;
    uint64_t t0, elapsed;

    (void)state;
    c.g = group_new_started(2);
    c.main_thread = pthread_self();
    latch_init(&c.started, 1);
    latch_init(&c.release, 1);
    /* Loop 0 is busy while work piles up in both mailboxes. */
    loop_post(loop_group_get(c.g, 0), stop_blocker, &c);
    assert_true(latch_wait(&c.started, 5000));
    for (int k = 0; k < 1000; k++) {
        loop_post(loop_group_get(c.g, 0), stop_item, &c);
        loop_post(loop_group_get(c.g, 1), stop_item, &c);
    }
    t0 = clock_mono_ms();
    assert_int_equal(pthread_create(&stopper, NULL, stopper_main, &c), 0);
    sleep_ms(20); /* let the stop request queue up behind the items */
    latch_down(&c.release);
    assert_int_equal(pthread_join(stopper, NULL), 0);
    elapsed = clock_mono_ms() - t0;

    assert_int_equal(atomic_load(&c.on_stop[0]), 1);
    assert_int_equal(atomic_load(&c.on_stop[1]), 1);
    assert_true(atomic_load(&c.timer_fired)); /* loop 1 waited for its 50 ms timer */
    assert_null(c.timer);
    assert_true(elapsed < 5000); /* well before the 10 s stop timeout */
    assert_int_equal(atomic_load(&c.ran[0]), 1000 + 200 + 10);
    assert_int_equal(atomic_load(&c.ran[1]), 1000 + 200);
    assert_int_equal(atomic_load(&c.wrong), 0);
    assert_int_equal(atomic_load(&c.late_on_main), 0); /* the stopper thread is not main */
    loop_group_free(c.g);                              /* LeakSanitizer: every item was freed */
    latch_destroy(&c.started);
    latch_destroy(&c.release);
}

static void
exit_now(struct loop *lp, void *arg)
{
    struct stop_ctx *c = arg;

    loop_exit(lp);
    latch_down(&c->started);
}

static void
test_exit_then_late_items(void **state)
{
    struct stop_ctx c = {0};

    (void)state;
    c.g = group_new_started(2);
    c.main_thread = pthread_self();
    latch_init(&c.started, 1);
    loop_post(loop_group_get(c.g, 0), exit_now, &c);
    assert_true(latch_wait(&c.started, 5000));
    /* Loop 0's thread has left: these wait for loop_group_stop(). */
    for (int k = 0; k < 50; k++) {
        loop_post(loop_group_get(c.g, 0), stop_item, &c);
    }
    sleep_ms(20);
    assert_int_equal(atomic_load(&c.ran[0]), 0);
    /* Loop 1 still runs. */
    loop_post(loop_group_get(c.g, 1), stop_item, &c);
    loop_group_stop(c.g, NULL, NULL);
    assert_int_equal(atomic_load(&c.ran[0]), 50);
    assert_int_equal(atomic_load(&c.ran[1]), 1);
    assert_int_equal(atomic_load(&c.late_on_main), 50); /* run by stop, as loop 0 */
    assert_int_equal(atomic_load(&c.wrong), 0);
    /* Posted after the stop: run by free. */
    loop_post(loop_group_get(c.g, 1), stop_item, &c);
    loop_group_free(c.g);
    assert_int_equal(atomic_load(&c.ran[1]), 2);
    latch_destroy(&c.started);
}

static void
on_stop_count(struct loop *lp, void *arg)
{
    struct stop_ctx *c = arg;

    CHECK(loop_current() == lp);
    atomic_fetch_add(&c->on_stop[loop_index(lp)], 1);
}

static void
test_never_started(void **state)
{
    struct stop_ctx c = {0};
    int err = 0;

    (void)state;
    /* Made and freed. */
    c.g = loop_group_new(3, &err);
    assert_non_null(c.g);
    loop_group_free(c.g);

    /* Items posted to a loop that never runs are run by free, as their loop. */
    c.main_thread = pthread_self();
    c.g = loop_group_new(2, &err);
    assert_non_null(c.g);
    loop_post(loop_group_get(c.g, 0), stop_item, &c);
    loop_post(loop_group_get(c.g, 1), stop_item, &c);
    loop_group_free(c.g);
    assert_int_equal(atomic_load(&c.ran[0]), 1);
    assert_int_equal(atomic_load(&c.ran[1]), 1);
    assert_int_equal(atomic_load(&c.late_on_main), 2);

    /* Stopped without starting: on_stop and items run here. */
    c.g = loop_group_new(2, &err);
    assert_non_null(c.g);
    loop_post(loop_group_get(c.g, 1), stop_item, &c);
    loop_group_stop(c.g, on_stop_count, &c);
    assert_int_equal(atomic_load(&c.on_stop[0]), 1);
    assert_int_equal(atomic_load(&c.on_stop[1]), 1);
    assert_int_equal(atomic_load(&c.ran[1]), 2);
    assert_null(loop_current());
    loop_group_free(c.g);
    assert_int_equal(atomic_load(&c.wrong), 0);
}

/* ---- the stop timeout ---- */

struct ticker {
    struct event *ev;
    atomic_uint ticks;
    struct latch started;
};

static void
tick(evutil_socket_t fd, short what, void *arg)
{
    struct ticker *t = arg;

    (void)fd;
    (void)what;
    if (atomic_fetch_add(&t->ticks, 1) == 0) {
        latch_down(&t->started);
    }
}

static void
start_ticker(struct loop *lp, void *arg)
{
    struct ticker *t = arg;
    struct timeval tv = {0, 10000};

    t->ev = event_new(loop_base(lp), -1, EV_PERSIST, tick, t);
    CHECK(t->ev != NULL && event_add(t->ev, &tv) == 0);
}

static void
test_stop_timeout(void **state)
{
    struct loop_group *g = group_new_started(1);
    struct ticker t = {0};
    uint64_t t0, elapsed;
    unsigned ticks;

    (void)state;
    latch_init(&t.started, 1);
    loop_group_set_stop_timeout(g, 300);
    loop_post(loop_group_get(g, 0), start_ticker, &t);
    assert_true(latch_wait(&t.started, 5000));
    /* The ticker is never removed: the loop keeps running until the timeout. */
    t0 = clock_mono_ms();
    ticks = atomic_load(&t.ticks);
    loop_group_stop(g, NULL, NULL);
    elapsed = clock_mono_ms() - t0;
    assert_true(elapsed >= 290);
    assert_true(elapsed < 5000);
    assert_true(atomic_load(&t.ticks) > ticks); /* it kept dispatching meanwhile */
    /* The loop's thread is gone: its owner may free the event here, then the group. */
    event_free(t.ev);
    loop_group_free(g);
    latch_destroy(&t.started);
}

/* A loop whose only other event is removed by on_stop stops at once. */
static void
remove_ticker_if_owner(struct loop *lp, void *arg)
{
    struct ticker *t = arg;

    if (loop_index(lp) == 1) {
        event_free(t->ev);
        t->ev = NULL;
    }
}

static void
test_stop_is_prompt_when_idle(void **state)
{
    struct loop_group *g = group_new_started(2);
    struct ticker t = {0};
    uint64_t t0, elapsed;

    (void)state;
    latch_init(&t.started, 1);
    loop_post(loop_group_get(g, 1), start_ticker, &t);
    assert_true(latch_wait(&t.started, 5000));
    t0 = clock_mono_ms();
    loop_group_stop(g, remove_ticker_if_owner, &t);
    elapsed = clock_mono_ms() - t0;
    assert_null(t.ev);
    assert_true(elapsed < 2000); /* not the 10 s timeout */
    loop_group_free(g);
    latch_destroy(&t.started);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_accessors_and_names, testkit_setup, testkit_teardown),
        cmocka_unit_test_setup_teardown(test_invalid_arguments, testkit_setup, testkit_teardown),
        cmocka_unit_test_setup_teardown(test_many_posters, testkit_setup, testkit_teardown),
        cmocka_unit_test_setup_teardown(test_batching, testkit_setup, testkit_teardown),
        cmocka_unit_test_setup_teardown(test_repost_same_msg, testkit_setup, testkit_teardown),
        cmocka_unit_test_setup_teardown(test_stop_with_pending, testkit_setup, testkit_teardown),
        cmocka_unit_test_setup_teardown(test_exit_then_late_items, testkit_setup, testkit_teardown),
        cmocka_unit_test_setup_teardown(test_never_started, testkit_setup, testkit_teardown),
        cmocka_unit_test_setup_teardown(test_stop_timeout, testkit_setup, testkit_teardown),
        cmocka_unit_test_setup_teardown(test_stop_is_prompt_when_idle, testkit_setup,
                                        testkit_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
