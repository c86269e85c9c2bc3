/*
 * clock: time sources.
 *
 * Monotonic time for timeouts and intervals (never jumps); wall-clock time
 * for logs, spool records and anything a person reads. Both are cheap
 * (vDSO clock_gettime).
 */
#ifndef CELER_CORE_CLOCK_H
#define CELER_CORE_CLOCK_H

#include <stdint.h>

uint64_t clock_mono_ms(void);
uint64_t clock_mono_us(void);
/* Seconds since the epoch. */
int64_t clock_wall_s(void);
/* Microseconds since the epoch. */
int64_t clock_wall_us(void);

#endif
