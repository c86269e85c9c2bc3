/*
 * clock: time sources (see clock.h).
 */
#include "core/clock.h"

#include <time.h>

static struct timespec
clock_read(clockid_t id)
{
    struct timespec ts;

    (void)clock_gettime(id, &ts); /* cannot fail for these clock ids */
    return ts;
}

uint64_t
clock_mono_ms(void)
{
    struct timespec ts = clock_read(CLOCK_MONOTONIC);

    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t
clock_mono_us(void)
{
    struct timespec ts = clock_read(CLOCK_MONOTONIC);

    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

int64_t
clock_wall_s(void)
{
    return (int64_t)clock_read(CLOCK_REALTIME).tv_sec;
}

int64_t
clock_wall_us(void)
{
    struct timespec ts = clock_read(CLOCK_REALTIME);

    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
