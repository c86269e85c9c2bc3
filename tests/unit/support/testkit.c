/*
 * testkit: shared unit-test helpers (see testkit.h).
 */
#include "testkit.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

atomic_int testkit_check_failures;

void
latch_init(struct latch *l, unsigned count)
{
    pthread_condattr_t attr;

    pthread_mutex_init(&l->mu, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&l->cv, &attr);
    pthread_condattr_destroy(&attr);
    l->count = count;
}

void
latch_destroy(struct latch *l)
{
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
}

void
latch_down(struct latch *l)
{
    pthread_mutex_lock(&l->mu);
    if (l->count > 0 && --l->count == 0) {
        pthread_cond_broadcast(&l->cv);
    }
    pthread_mutex_unlock(&l->mu);
}

bool
latch_wait(struct latch *l, unsigned ms)
{
    struct timespec deadline;
    int rc = 0;
    bool done;

    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += ms / 1000;
    deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&l->mu);
    while (l->count > 0 && rc != ETIMEDOUT) {
        rc = pthread_cond_timedwait(&l->cv, &l->mu, &deadline);
    }
    done = l->count == 0;
    pthread_mutex_unlock(&l->mu);
    return done;
}

void
sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0) {
    }
}

int
testkit_setup(void **state)
{
    (void)state;
    atomic_store(&testkit_check_failures, 0);
    return 0;
}

int
testkit_teardown(void **state)
{
    (void)state;
    assert_int_equal(atomic_load(&testkit_check_failures), 0);
    return 0;
}
