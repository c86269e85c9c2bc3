/*
 * loop: the daemon's event-loop threads and their mailboxes.
 *
 * A loop_group owns N loops; each loop owns one libevent event_base, one
 * thread ("celer-loop-N") and one mailbox. Every object of the daemon belongs
 * to exactly one loop and is touched only from that loop's thread, so the
 * bases run without locks (EVENT_BASE_FLAG_NOLOCK): never call libevent on a
 * loop's base from another thread while the loop runs. The one way in from
 * outside is the mailbox: loop_post()/loop_post_msg() append an item under a
 * mutex and, when the mailbox was not already signalled, write the loop's
 * eventfd once; the loop then takes the whole list in one splice and runs the
 * items outside the lock, in posting order (FIFO per poster).
 *
 * Life cycle: loop_group_new() (bases, eventfds; no threads) ->
 * loop_group_start() -> ... -> loop_group_stop() -> loop_group_free().
 * Stopping asks each loop to run on_stop on its own thread (to close its
 * listeners and sessions), then to keep dispatching until nothing but its
 * own mailbox is left on its base, or until the stop timeout passes; then the
 * threads are joined. Mailbox items are never dropped: items that arrive too
 * late for the loop's thread are run by loop_group_stop() (or
 * loop_group_free() for those posted after the stop) on the calling thread,
 * with loop_current() returning their loop. A loop whose thread is not
 * running when the group stops (never started, or left by loop_exit()) gets
 * its on_stop and mailbox run the same way, without event dispatching.
 *
 * Limits: at most LOOP_MAX loops. Owners must free their events of a loop
 * before loop_group_free() frees its base. Loop threads block asynchronous
 * signals: the main thread handles those. loop_group_stop() must not be
 * called from one of the group's own threads.
 */
#ifndef CELER_NET_LOOP_H
#define CELER_NET_LOOP_H

#include <pthread.h>
#include <stdint.h>

#include "core/err.h"
#include "core/list.h"

#define LOOP_MAX 1024
/* Default stop timeout: how long a stopping loop may keep dispatching. */
#define LOOP_STOP_TIMEOUT_MS 10000

struct event_base;
struct loop;       /* one event-loop thread with its event_base and mailbox */
struct loop_group; /* the N loops of the daemon */

typedef void loop_fn(struct loop *lp, void *arg);

/*
 * A caller-owned mailbox item: posting it allocates nothing. It must be
 * zeroed or loop_msg_init()'ed (or have run) before it is posted, must not be
 * posted again before it runs, and must stay valid until fn starts; fn may
 * free it or post it again.
 */
struct loop_msg {
    struct list_node node; /* on the mailbox while queued */
    loop_fn *fn;
    void *arg; /* borrowed */
};

/* Counters of one loop, for the console; read without stopping the loop. */
struct loop_stats {
    uint64_t messages; /* mailbox items run */
    uint64_t wakeups;  /* mailbox drains triggered by the eventfd */
    uint64_t signals;  /* eventfd writes by posters */
};

static inline void
loop_msg_init(struct loop_msg *m, loop_fn *fn, void *arg)
{
    list_init(&m->node);
    m->fn = fn;
    m->arg = arg;
}

/*
 * Creates nloops (1..LOOP_MAX) loops with their bases and eventfd wake-ups;
 * no threads yet. NULL with *err = -EINVAL, CELER_ELIMIT or -errno on failure.
 */
struct loop_group *loop_group_new(unsigned nloops, int *err);
/* Spawns one thread per loop, named "celer-loop-N". Once only. */
int loop_group_start(struct loop_group *g) CELER_WUR;
/* How long a stopping loop may keep dispatching (default LOOP_STOP_TIMEOUT_MS). */
void loop_group_set_stop_timeout(struct loop_group *g, unsigned ms);
/*
 * Asks every loop to stop: each runs on_stop(lp, arg) (if given) on its own
 * thread, keeps running until its base has no other events or the stop
 * timeout passes, then exits. Joins all threads and runs every item still in
 * a mailbox. A second call does nothing more than run late mailbox items.
 */
void loop_group_stop(struct loop_group *g, loop_fn *on_stop, void *arg);
/* Stops the group if needed (without on_stop), runs late items, frees. NULL ok. */
void loop_group_free(struct loop_group *g);

unsigned loop_group_count(const struct loop_group *g);
struct loop *loop_group_get(const struct loop_group *g, unsigned i);
struct event_base *loop_base(const struct loop *lp);
unsigned loop_index(const struct loop *lp);
/* The loop whose thread is calling (or whose items are being run), or NULL. */
struct loop *loop_current(void);
void loop_get_stats(const struct loop *lp, struct loop_stats *out);

/* Thread-safe. m->fn(lp, m->arg) will run on lp; see struct loop_msg. */
void loop_post_msg(struct loop *lp, struct loop_msg *m);
/* Thread-safe; allocates the item (aborts on exhaustion). */
void loop_post(struct loop *lp, loop_fn *fn, void *arg);
/*
 * From lp's own thread: leave the loop after the current callback, without
 * running on_stop; later items are run by loop_group_stop().
 */
void loop_exit(struct loop *lp);

typedef void *loop_thread_fn(void *arg);
/*
 * Creates a thread named name (truncated to 15 bytes) that runs main(arg)
 * with asynchronous signals blocked. For the loop and pool threads.
 */
int loop_spawn_thread(pthread_t *tid, const char *name, loop_thread_fn *main, void *arg) CELER_WUR;

#endif
