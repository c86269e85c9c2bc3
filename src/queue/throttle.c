/*
 * throttle: shared token buckets (see throttle.h).
 */
#include "queue/throttle.h"

#include <pthread.h>
#include <stdlib.h>

#include "core/map.h"
#include "core/mem.h"

struct throttle_bucket {
    double tokens;
    uint64_t updated_ms;
};

struct throttle_set {
    pthread_mutex_t lock;
    struct map buckets; /* key pointer bytes -> owned bucket */
};

struct throttle_set *
throttle_set_new(void)
{
    struct throttle_set *t = XNEW(struct throttle_set);

    pthread_mutex_init(&t->lock, NULL);
    map_init(&t->buckets, false);
    return t;
}

void
throttle_set_free(struct throttle_set *t)
{
    if (t == NULL) {
        return;
    }
    map_release(&t->buckets, free);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

/* The bucket of key, refilled up to now; called with the lock held. */
static struct throttle_bucket *
throttle_bucket(struct throttle_set *t, const void *key, const struct conf_throttle *thr,
                uint64_t now_ms)
{
    struct strv k = {(const char *)&key, sizeof(key)};
    struct throttle_bucket *b = map_get(&t->buckets, k);
    double rate = thr->seconds ? (double)thr->count / (thr->seconds * 1000.0) : 0;

    if (b == NULL) {
        b = XNEW(struct throttle_bucket);
        b->tokens = thr->count;
        b->updated_ms = now_ms;
        map_put(&t->buckets, k, b);
        return b;
    }
    if (now_ms > b->updated_ms) {
        b->tokens += (double)(now_ms - b->updated_ms) * rate;
        if (b->tokens > thr->count) {
            b->tokens = thr->count;
        }
        b->updated_ms = now_ms;
    }
    return b;
}

bool
throttle_take(struct throttle_set *t, const void *key, const struct conf_throttle *thr,
              uint64_t now_ms)
{
    struct throttle_bucket *b;
    bool ok;

    pthread_mutex_lock(&t->lock);
    b = throttle_bucket(t, key, thr, now_ms);
    ok = b->tokens >= 1.0;
    if (ok) {
        b->tokens -= 1.0;
    }
    pthread_mutex_unlock(&t->lock);
    return ok;
}

uint64_t
throttle_wait_ms(struct throttle_set *t, const void *key, const struct conf_throttle *thr,
                 uint64_t now_ms)
{
    struct throttle_bucket *b;
    uint64_t wait = 0;

    pthread_mutex_lock(&t->lock);
    b = throttle_bucket(t, key, thr, now_ms);
    if (b->tokens < 1.0 && thr->count) {
        double per_ms = (double)thr->count / (thr->seconds * 1000.0);

        wait = (uint64_t)((1.0 - b->tokens) / per_ms) + 1;
    }
    pthread_mutex_unlock(&t->lock);
    return wait;
}
