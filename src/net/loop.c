/*
 * loop: event-loop threads and their mailboxes (see loop.h).
 *
 * Each loop's thread runs in two phases. Running: event_base_loop() until
 * the stop message (or loop_exit()) breaks it. Stopping: after on_stop, one
 * EVLOOP_ONCE iteration at a time until the base holds nothing but the
 * loop's own wake-up event (and its stop deadline timer), the mailbox is
 * empty and nothing is active, or until the deadline fires.
 *
 * Fields marked "loop thread" are touched only by the loop's thread while it
 * runs, and by the controlling thread before the start or after the join.
 */
#include "net/loop.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/log.h"
#include "core/mem.h"
#include "core/strv.h"

enum loop_group_state {
    LOOP_GROUP_NEW,
    LOOP_GROUP_RUNNING,
    LOOP_GROUP_STOPPED,
};

struct loop {
    struct loop_group *group; /* borrowed: the group that owns this loop */
    unsigned index;
    struct event_base *base;   /* owned */
    struct event *wake_ev;     /* owned: reads wake_fd */
    struct event *deadline_ev; /* owned: the stop timeout */
    int wake_fd;               /* owned eventfd, -1 when none */
    int own_events;            /* events of ours counted by the base when idle */
    pthread_t thread;
    bool thread_started;      /* thread was created and must be joined */
    bool running;             /* loop thread: inside one of the two phases */
    bool stopping;            /* loop thread: on_stop ran, dispatch until idle */
    bool exit_now;            /* loop thread: loop_exit() or stop timeout */
    struct loop_msg stop_msg; /* posted once by loop_group_stop() */

    pthread_mutex_t lock;
    struct list_node mailbox; /* loop_msg items, guarded by lock */
    bool signalled;           /* guarded by lock: eventfd written, mailbox not yet taken */

    _Atomic uint64_t messages;
    _Atomic uint64_t wakeups;
    _Atomic uint64_t signals;
};

struct loop_group {
    struct loop **loops; /* owned array of owned loops (entries NULL while half-built) */
    unsigned nloops;
    enum loop_group_state state;
    unsigned stop_timeout_ms;
    loop_fn *on_stop;
    void *on_stop_arg; /* borrowed */
};

struct loop_thread_start {
    loop_thread_fn *main;
    void *arg; /* borrowed */
    char name[16];
};

/* An item allocated by loop_post(). */
struct loop_post_item {
    struct loop_msg msg;
    loop_fn *fn;
    void *arg; /* borrowed */
};

static _Thread_local struct loop *loop_tls;

static void *
loop_thread_trampoline(void *p)
{
    struct loop_thread_start st = *(struct loop_thread_start *)p;

    free(p);
    (void)pthread_setname_np(pthread_self(), st.name); /* cosmetic: ps and top show it */
    return st.main(st.arg);
}

int
loop_spawn_thread(pthread_t *tid, const char *name, loop_thread_fn *main, void *arg)
{
    static const int sync_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS};
    struct loop_thread_start *st = XNEW(struct loop_thread_start);
    sigset_t block, old;
    int rc;

    st->main = main;
    st->arg = arg;
    (void)strv_copy(strv_from_cstr(name), st->name, sizeof(st->name)); /* truncation is fine */
    sigfillset(&block);
    for (size_t i = 0; i < sizeof(sync_signals) / sizeof(sync_signals[0]); i++) {
        sigdelset(&block, sync_signals[i]);
    }
    /* The new thread inherits the mask: asynchronous signals go to the main thread. */
    (void)pthread_sigmask(SIG_SETMASK, &block, &old); /* cannot fail with valid arguments */
    rc = pthread_create(tid, NULL, loop_thread_trampoline, st);
    (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        free(st);
        return -rc;
    }
    return 0;
}

static void
loop_signal(struct loop *lp)
{
    uint64_t one = 1;
    ssize_t n;

    do {
        n = write(lp->wake_fd, &one, sizeof(one));
    } while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof(one)) {
        log_crit("loop_signal_failed loop=%u err=\"%s\"", lp->index,
                 err_str(n < 0 ? -errno : -EIO));
    }
    atomic_fetch_add_explicit(&lp->signals, 1, memory_order_relaxed);
}

/* Takes the whole mailbox into batch; the next post signals again. */
static void
loop_take(struct loop *lp, struct list_node *batch)
{
    list_init(batch);
    pthread_mutex_lock(&lp->lock);
    list_splice_back(batch, &lp->mailbox);
    lp->signalled = false;
    pthread_mutex_unlock(&lp->lock);
}

static size_t
loop_run_batch(struct loop *lp, struct list_node *batch)
{
    struct list_node *n;
    size_t count = 0;

    while ((n = list_pop_front(batch)) != NULL) {
        struct loop_msg *m = container_of(n, struct loop_msg, node);

        count++;
        m->fn(lp, m->arg); /* may free or re-post m */
    }
    atomic_fetch_add_explicit(&lp->messages, count, memory_order_relaxed);
    return count;
}

static void
loop_on_wake(evutil_socket_t fd, short what, void *arg)
{
    struct loop *lp = arg;
    struct list_node batch;
    uint64_t value;
    ssize_t n;

    (void)what;
    do {
        n = read(fd, &value, sizeof(value));
    } while (n < 0 && errno == EINTR);
    /* EAGAIN: a post raced with an earlier drain; the mailbox is taken anyway. */
    atomic_fetch_add_explicit(&lp->wakeups, 1, memory_order_relaxed);
    loop_take(lp, &batch);
    (void)loop_run_batch(lp, &batch);
}

static void
loop_on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct loop *lp = arg;

    (void)fd;
    (void)what;
    log_warning("loop_stop_timeout loop=%u events=%d", lp->index,
                event_base_get_num_events(lp->base, EVENT_BASE_COUNT_ADDED) - lp->own_events);
    lp->exit_now = true;
}

/* The stop message: runs on_stop, then switches a running loop to its stopping phase. */
static void
loop_stop_begin(struct loop *lp, void *arg)
{
    struct loop_group *g = lp->group;

    (void)arg;
    if (g->on_stop) {
        g->on_stop(lp, g->on_stop_arg);
    }
    if (lp->running && !lp->stopping) {
        struct timeval tv = {g->stop_timeout_ms / 1000, (g->stop_timeout_ms % 1000) * 1000};

        lp->stopping = true;
        if (evtimer_add(lp->deadline_ev, &tv) != 0) {
            log_error("loop_stop_timer_failed loop=%u", lp->index);
            lp->exit_now = true;
        }
        (void)event_base_loopbreak(lp->base); /* cannot fail on a valid base */
    }
}

/* True when only the loop's own events are left and its mailbox is empty. */
static bool
loop_idle(struct loop *lp)
{
    bool empty;
    int added, busy;

    pthread_mutex_lock(&lp->lock);
    empty = list_empty(&lp->mailbox);
    pthread_mutex_unlock(&lp->lock);
    if (!empty) {
        return false;
    }
    busy = event_base_get_num_events(lp->base, EVENT_BASE_COUNT_ACTIVE | EVENT_BASE_COUNT_VIRTUAL);
    added = event_base_get_num_events(lp->base, EVENT_BASE_COUNT_ADDED);
    if (evtimer_pending(lp->deadline_ev, NULL)) {
        added--;
    }
    return busy == 0 && added <= lp->own_events;
}

static void *
loop_thread_main(void *arg)
{
    struct loop *lp = arg;

    loop_tls = lp;
    lp->running = true;
    while (!lp->stopping && !lp->exit_now) {
        /* Returns 0 after a loopbreak; 1 (nothing to wait for) cannot happen: wake_ev persists. */
        if (event_base_loop(lp->base, 0) != 0) {
            log_crit("loop_dispatch_failed loop=%u", lp->index);
            lp->exit_now = true;
        }
    }
    while (!lp->exit_now && !loop_idle(lp)) {
        if (event_base_loop(lp->base, EVLOOP_ONCE) != 0) {
            break;
        }
    }
    (void)evtimer_del(lp->deadline_ev); /* cannot fail on an initialised event */
    lp->running = false;
    loop_tls = NULL;
    return NULL;
}

static void
loop_free_one(struct loop *lp)
{
    if (lp == NULL) {
        return;
    }
    if (lp->wake_ev) {
        event_free(lp->wake_ev);
    }
    if (lp->deadline_ev) {
        event_free(lp->deadline_ev);
    }
    if (lp->base) {
        event_base_free(lp->base);
    }
    if (lp->wake_fd >= 0) {
        (void)close(lp->wake_fd); /* nothing to report: no data lives in an eventfd */
    }
    pthread_mutex_destroy(&lp->lock);
    free(lp);
}

static int
loop_create(struct loop_group *g, unsigned index, struct loop **out)
{
    struct loop *lp = XNEW(struct loop);
    struct event_config *cfg = NULL;
    int rc;

    *out = lp; /* a half-built loop is freed by the caller */
    lp->group = g;
    lp->index = index;
    lp->wake_fd = -1;
    list_init(&lp->mailbox);
    pthread_mutex_init(&lp->lock, NULL);
    loop_msg_init(&lp->stop_msg, loop_stop_begin, NULL);
    lp->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (lp->wake_fd < 0) {
        rc = -errno;
        goto fail;
    }
    rc = -ENOMEM;
    cfg = event_config_new();
    /* One thread per base: no base locks. */
    if (cfg == NULL || event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK) != 0) {
        goto fail;
    }
    lp->base = event_base_new_with_config(cfg);
    if (lp->base == NULL) {
        goto fail;
    }
    lp->wake_ev = event_new(lp->base, lp->wake_fd, EV_READ | EV_PERSIST, loop_on_wake, lp);
    lp->deadline_ev = evtimer_new(lp->base, loop_on_deadline, lp);
    if (lp->wake_ev == NULL || lp->deadline_ev == NULL || event_add(lp->wake_ev, NULL) != 0) {
        goto fail;
    }
    lp->own_events = event_base_get_num_events(lp->base, EVENT_BASE_COUNT_ADDED);
    event_config_free(cfg);
    return 0;
fail:
    if (cfg) {
        event_config_free(cfg);
    }
    return rc;
}

struct loop_group *
loop_group_new(unsigned nloops, int *err)
{
    struct loop_group *g = NULL;
    int rc;

    if (nloops == 0) {
        rc = -EINVAL;
        goto fail;
    }
    if (nloops > LOOP_MAX) {
        rc = CELER_ELIMIT;
        goto fail;
    }
    g = XNEW(struct loop_group);
    g->loops = xcalloc(nloops, sizeof(*g->loops));
    g->nloops = nloops;
    g->stop_timeout_ms = LOOP_STOP_TIMEOUT_MS;
    for (unsigned i = 0; i < nloops; i++) {
        rc = loop_create(g, i, &g->loops[i]);
        if (rc != 0) {
            goto fail;
        }
    }
    return g;
fail:
    log_error("loop_group_new_failed loops=%u err=\"%s\"", nloops, err_str(rc));
    loop_group_free(g);
    if (err) {
        *err = rc;
    }
    return NULL;
}

int
loop_group_start(struct loop_group *g)
{
    char name[32];
    unsigned i;
    int rc;

    if (g->state != LOOP_GROUP_NEW) {
        return -EALREADY;
    }
    g->state = LOOP_GROUP_RUNNING;
    for (i = 0; i < g->nloops; i++) {
        struct loop *lp = g->loops[i];

        (void)snprintf(name, sizeof(name), "celer-loop-%u", i); /* fits: i < LOOP_MAX */
        rc = loop_spawn_thread(&lp->thread, name, loop_thread_main, lp);
        if (rc != 0) {
            goto fail;
        }
        lp->thread_started = true;
    }
    return 0;
fail:
    log_error("loop_start_failed loop=%u err=\"%s\"", i, err_str(rc));
    loop_group_stop(g, NULL, NULL);
    return rc;
}

void
loop_group_set_stop_timeout(struct loop_group *g, unsigned ms)
{
    g->stop_timeout_ms = ms;
}

/* Runs every mailbox item left once the threads are gone, until none remain. */
static void
loop_group_run_late(struct loop_group *g)
{
    struct loop *saved = loop_tls;
    bool again;

    do {
        again = false;
        for (unsigned i = 0; i < g->nloops; i++) {
            struct loop *lp = g->loops[i];
            struct list_node batch;

            if (lp == NULL) {
                continue;
            }
            loop_take(lp, &batch);
            if (!list_empty(&batch)) {
                loop_tls = lp;
                (void)loop_run_batch(lp, &batch);
                again = true;
            }
        }
    } while (again);
    loop_tls = saved;
}

void
loop_group_stop(struct loop_group *g, loop_fn *on_stop, void *arg)
{
    assert(loop_tls == NULL || loop_tls->group != g); /* a loop cannot join itself */
    if (g->state != LOOP_GROUP_STOPPED) {
        g->on_stop = on_stop;
        g->on_stop_arg = arg;
        /* Behind every item already posted; the mailbox lock publishes on_stop. */
        for (unsigned i = 0; i < g->nloops; i++) {
            loop_post_msg(g->loops[i], &g->loops[i]->stop_msg);
        }
        for (unsigned i = 0; i < g->nloops; i++) {
            struct loop *lp = g->loops[i];

            if (lp->thread_started) {
                int rc = pthread_join(lp->thread, NULL);

                assert(rc == 0);
                (void)rc;
                lp->thread_started = false;
            }
        }
        g->state = LOOP_GROUP_STOPPED;
    }
    /* Late items, and the stop message of a loop whose thread was not running. */
    loop_group_run_late(g);
    g->on_stop = NULL;
    g->on_stop_arg = NULL;
}

void
loop_group_free(struct loop_group *g)
{
    if (g == NULL) {
        return;
    }
    if (g->state == LOOP_GROUP_RUNNING) {
        loop_group_stop(g, NULL, NULL);
    }
    loop_group_run_late(g);
    for (unsigned i = 0; i < g->nloops; i++) {
        loop_free_one(g->loops[i]);
        g->loops[i] = NULL;
    }
    free(g->loops);
    free(g);
}

unsigned
loop_group_count(const struct loop_group *g)
{
    return g->nloops;
}

struct loop *
loop_group_get(const struct loop_group *g, unsigned i)
{
    assert(i < g->nloops);
    return g->loops[i];
}

struct event_base *
loop_base(const struct loop *lp)
{
    return lp->base;
}

unsigned
loop_index(const struct loop *lp)
{
    return lp->index;
}

struct loop *
loop_current(void)
{
    return loop_tls;
}

void
loop_get_stats(const struct loop *lp, struct loop_stats *out)
{
    out->messages = atomic_load_explicit(&lp->messages, memory_order_relaxed);
    out->wakeups = atomic_load_explicit(&lp->wakeups, memory_order_relaxed);
    out->signals = atomic_load_explicit(&lp->signals, memory_order_relaxed);
}

void
loop_post_msg(struct loop *lp, struct loop_msg *m)
{
    bool wake;

    assert(m->fn != NULL);
    assert(!list_linked(&m->node)); /* not queued twice */
    pthread_mutex_lock(&lp->lock);
    list_push_back(&lp->mailbox, &m->node);
    wake = !lp->signalled;
    lp->signalled = true;
    pthread_mutex_unlock(&lp->lock);
    if (wake) {
        loop_signal(lp);
    }
}

static void
loop_post_run(struct loop *lp, void *arg)
{
    struct loop_post_item *item = arg;
    loop_fn *fn = item->fn;
    void *fn_arg = item->arg;

    free(item);
    fn(lp, fn_arg);
}

void
loop_post(struct loop *lp, loop_fn *fn, void *arg)
{
    struct loop_post_item *item = XNEW(struct loop_post_item);

    item->fn = fn;
    item->arg = arg;
    loop_msg_init(&item->msg, loop_post_run, item);
    loop_post_msg(lp, &item->msg);
}

void
loop_exit(struct loop *lp)
{
    assert(loop_tls == lp);
    lp->exit_now = true;
    if (lp->running) {
        (void)event_base_loopbreak(lp->base); /* cannot fail on a valid base */
    }
}
