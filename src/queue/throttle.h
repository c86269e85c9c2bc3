/*
 * throttle: token buckets for Momentum's throttles ("N" per second or "N/S"
 * per S seconds).
 *
 * A set holds buckets keyed by identity: callers pass the configuration
 * setting the throttle came from (conf_chain_get returns the same object to
 * every scope that inherits it), so scopes that share a setting share one
 * bucket, as Momentum's by-reference inheritance requires. A bucket holds at
 * most N tokens and refills N every S seconds, continuously; it starts full.
 * Sets are thread-safe (one mutex; a take is a few dozen nanoseconds).
 */
#ifndef CELER_QUEUE_THROTTLE_H
#define CELER_QUEUE_THROTTLE_H

#include <stdbool.h>
#include <stdint.h>

#include "conf/conf.h"

struct throttle_set;

struct throttle_set *throttle_set_new(void);
void throttle_set_free(struct throttle_set *t);
/* Takes one token from key's bucket; false (nothing taken) when it is empty. */
bool throttle_take(struct throttle_set *t, const void *key, const struct conf_throttle *thr,
                   uint64_t now_ms);
/* Milliseconds until key's bucket has a token again (0 if it has one now). */
uint64_t throttle_wait_ms(struct throttle_set *t, const void *key, const struct conf_throttle *thr,
                          uint64_t now_ms);

#endif
