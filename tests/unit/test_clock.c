/*
 * test_clock: monotonic time never goes back and measures sleeps; wall time
 * agrees with the system's idea of now.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>
#include <time.h>

#include <cmocka.h>

#include "core/clock.h"

static void
sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0) {
    }
}

static void
test_mono_never_goes_back(void **state)
{
    uint64_t prev_ms = clock_mono_ms();
    uint64_t prev_us = clock_mono_us();

    (void)state;
    for (int i = 0; i < 100000; i++) {
        uint64_t ms = clock_mono_ms();
        uint64_t us = clock_mono_us();

        assert_true(ms >= prev_ms);
        assert_true(us >= prev_us);
        prev_ms = ms;
        prev_us = us;
    }
}

static void
test_mono_units_agree(void **state)
{
    uint64_t ms = clock_mono_ms();
    uint64_t us = clock_mono_us();
    uint64_t ms2 = clock_mono_ms();

    (void)state;
    /* us was read between ms and ms2, in a thousand times finer units. */
    assert_true(us / 1000 >= ms);
    assert_true(us / 1000 <= ms2);
}

static void
test_mono_measures_sleep(void **state)
{
    uint64_t t0_ms = clock_mono_ms();
    uint64_t t0_us = clock_mono_us();
    uint64_t d_ms, d_us;

    (void)state;
    sleep_ms(30);
    d_ms = clock_mono_ms() - t0_ms;
    d_us = clock_mono_us() - t0_us;
    assert_true(d_ms >= 29); /* ms truncation may lose up to 1 */
    assert_true(d_us >= 30000);
    assert_true(d_ms < 5000); /* generous: a loaded machine may be slow to wake us */
}

static void
test_wall_matches_system(void **state)
{
    struct timeval tv;
    int64_t s, us;

    (void)state;
    (void)gettimeofday(&tv, NULL);
    s = clock_wall_s();
    us = clock_wall_us();
    assert_true(s >= tv.tv_sec && s <= tv.tv_sec + 1);
    assert_true(us / 1000000 >= s && us / 1000000 <= s + 1);
    assert_true(s > 1600000000); /* after September 2020: not a zero clock */
    assert_true(us >= (int64_t)tv.tv_sec * 1000000 + tv.tv_usec);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mono_never_goes_back),
        cmocka_unit_test(test_mono_units_agree),
        cmocka_unit_test(test_mono_measures_sleep),
        cmocka_unit_test(test_wall_matches_system),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
