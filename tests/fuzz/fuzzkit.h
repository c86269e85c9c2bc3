/*
 * fuzzkit: what every fuzz target shares: the libFuzzer entry point's
 * prototype and CHECK, which aborts (a finding for libFuzzer, a failure
 * for the corpus replay in ctest) when a property does not hold.
 */
#ifndef CELER_TESTS_FUZZKIT_H
#define CELER_TESTS_FUZZKIT_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x)) {                                                                                \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
