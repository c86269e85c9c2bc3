/*
 * test_crc32c: known vectors, chunked updates, hardware against software,
 * and crc32c_combine() against computing over the concatenation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/crc32c.h"

static void
fill(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

static void
test_vectors(void **state)
{
    static const struct {
        const char *in;
        size_t len;
        uint32_t want;
    } cases[] = {
        {"", 0, 0x00000000},
        {"a", 1, 0xC1D04330},
        {"123456789", 9, 0xE3069283},
        {"The quick brown fox jumps over the lazy dog", 43, 0x22620404},
    };
    uint8_t zeros[32] = {0}, ones[32], inc[32], dec[32];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(crc32c(cases[i].in, cases[i].len), cases[i].want);
        assert_int_equal(crc32c_update_sw(0, cases[i].in, cases[i].len), cases[i].want);
    }
    /* RFC 3720 B.4 (iSCSI) vectors. */
    memset(ones, 0xff, sizeof(ones));
    for (int i = 0; i < 32; i++) {
        inc[i] = (uint8_t)i;
        dec[i] = (uint8_t)(31 - i);
    }
    assert_int_equal(crc32c(zeros, 32), 0x8A9136AA);
    assert_int_equal(crc32c(ones, 32), 0x62A8AB43);
    assert_int_equal(crc32c(inc, 32), 0x46DD794E);
    assert_int_equal(crc32c(dec, 32), 0x113FDB5C);
}

static void
test_chunks_and_impls(void **state)
{
    static uint8_t data[70000];
    static const size_t chunk_sizes[] = {1, 3, 7, 8, 9, 64, 4095, 65536};

    (void)state;
    fill(data, sizeof(data), 42);
    uint32_t whole = crc32c(data, sizeof(data));

    assert_int_equal(crc32c_update_sw(0, data, sizeof(data)), whole);
    for (size_t c = 0; c < sizeof(chunk_sizes) / sizeof(chunk_sizes[0]); c++) {
        uint32_t crc = CRC32C_INIT;

        for (size_t off = 0; off < sizeof(data); off += chunk_sizes[c]) {
            size_t n = sizeof(data) - off < chunk_sizes[c] ? sizeof(data) - off : chunk_sizes[c];

            crc = crc32c_update(crc, data + off, n);
        }
        assert_int_equal(crc, whole);
    }
    /* Every alignment and short length, both implementations. */
    for (size_t off = 0; off < 16; off++) {
        for (size_t len = 0; len < 40; len++) {
            assert_int_equal(crc32c(data + off, len), crc32c_update_sw(0, data + off, len));
        }
    }
    print_message("crc32c hardware: %s\n", crc32c_hw_available() ? "yes" : "no");
}

static void
test_combine(void **state)
{
    static uint8_t data[5000];
    static const size_t splits[] = {0, 1, 4, 17, 1000, 4999, 5000};

    (void)state;
    fill(data, sizeof(data), 7);
    for (size_t i = 0; i < sizeof(splits) / sizeof(splits[0]); i++) {
        size_t a = splits[i];
        uint32_t c1 = crc32c(data, a);
        uint32_t c2 = crc32c(data + a, sizeof(data) - a);

        assert_int_equal(crc32c_combine(c1, c2, sizeof(data) - a), crc32c(data, sizeof(data)));
    }
}

static void
test_combine_large(void **state)
{
    /* 16 MiB of zeros: combine against chunked updates. */
    static uint8_t zeros[1 << 16];
    uint32_t zero_chunk = crc32c(zeros, sizeof(zeros));
    uint32_t zeros_big, crc = crc32c("x", 1), want = crc;

    (void)state;
    for (int i = 0; i < 256; i++) {
        want = crc32c_update(want, zeros, sizeof(zeros));
    }
    for (int i = 0; i < 256; i++) {
        crc = crc32c_combine(crc, zero_chunk, sizeof(zeros));
    }
    assert_int_equal(crc, want);
    /* Beyond 4 GiB (x^(2^k) for k >= 32): doubling must agree with associativity. */
    zeros_big = zero_chunk;
    for (int k = 16; k < 36; k++) {
        zeros_big = crc32c_combine(zeros_big, zeros_big, (uint64_t)1 << k); /* 2^(k+1) zeros */
    }
    assert_int_equal(
        crc32c_combine(crc32c_combine(crc, zeros_big, (uint64_t)1 << 36), zero_chunk, 1 << 16),
        crc32c_combine(crc, crc32c_combine(zeros_big, zero_chunk, 1 << 16),
                       ((uint64_t)1 << 36) + (1 << 16)));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_chunks_and_impls),
        cmocka_unit_test(test_combine),
        cmocka_unit_test(test_combine_large),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
