/*
 * testkit: helpers shared by the unit tests that run threads and event loops.
 *
 * CHECK() records a failed condition from any thread (cmocka's assertions
 * work only on the main thread); testkit_setup()/testkit_teardown() reset the
 * count and assert it stayed zero. A latch lets the main thread wait, with a
 * deadline, for work other threads finish. Linked into every unit test.
 */
#ifndef CELER_TESTKIT_H
#define CELER_TESTKIT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

extern atomic_int testkit_check_failures;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            atomic_fetch_add(&testkit_check_failures, 1);                                          \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

struct latch {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned count;
};

void latch_init(struct latch *l, unsigned count);
void latch_destroy(struct latch *l);
void latch_down(struct latch *l);
/* True when the count reached zero within ms. */
bool latch_wait(struct latch *l, unsigned ms);
void sleep_ms(unsigned ms);

/* cmocka group/test setup and teardown: CHECK failures must stay at zero. */
int testkit_setup(void **state);
int testkit_teardown(void **state);

#endif
