/*
 * crc32c: CRC-32C with SSE4.2 or slicing-by-8 (see crc32c.h).
 *
 * The register convention inside this file is "raw": the caller-visible
 * value is inverted on entry and exit of crc32c_update(). crc32c_combine()
 * works on caller-visible values, as zlib's crc32_combine() does, using
 * multiplication modulo the polynomial and a table of x^(2^k) mod P.
 */
#include "core/crc32c.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#define CRC32C_HAVE_X86 1
#else
#define CRC32C_HAVE_X86 0
#endif

#define CRC32C_POLY 0x82f63b78u /* reflected Castagnoli polynomial */

typedef uint32_t crc32c_impl_fn(uint32_t crc, const uint8_t *p, size_t len);

static uint32_t crc32c_table[8][256];
static uint32_t crc32c_x2n[67]; /* x^(2^k) mod P, reflected; k < 3 + 64 */
static crc32c_impl_fn *crc32c_impl;
static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;

static uint32_t
crc32c_sw_raw(uint32_t crc, const uint8_t *p, size_t len)
{
    while (len > 0 && ((uintptr_t)p & 7) != 0) {
        crc = (crc >> 8) ^ crc32c_table[0][(crc ^ *p++) & 0xff];
        len--;
    }
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    while (len >= 8) {
        uint64_t v;

        memcpy(&v, p, 8);
        v ^= crc;
        crc = crc32c_table[7][v & 0xff] ^ crc32c_table[6][(v >> 8) & 0xff] ^
              crc32c_table[5][(v >> 16) & 0xff] ^ crc32c_table[4][(v >> 24) & 0xff] ^
              crc32c_table[3][(v >> 32) & 0xff] ^ crc32c_table[2][(v >> 40) & 0xff] ^
              crc32c_table[1][(v >> 48) & 0xff] ^ crc32c_table[0][v >> 56];
        p += 8;
        len -= 8;
    }
#endif
    while (len > 0) {
        crc = (crc >> 8) ^ crc32c_table[0][(crc ^ *p++) & 0xff];
        len--;
    }
    return crc;
}

#if CRC32C_HAVE_X86
__attribute__((target("sse4.2"))) static uint32_t
crc32c_hw_raw(uint32_t crc, const uint8_t *p, size_t len)
{
    uint64_t c = crc;

    while (len > 0 && ((uintptr_t)p & 7) != 0) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        len--;
    }
    while (len >= 8) {
        uint64_t v;

        memcpy(&v, p, 8);
        c = _mm_crc32_u64(c, v);
        p += 8;
        len -= 8;
    }
    while (len > 0) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        len--;
    }
    return (uint32_t)c;
}
#endif

/* a * b modulo P, both reflected (bit 31 is x^0). */
static uint32_t
crc32c_multmodp(uint32_t a, uint32_t b)
{
    uint32_t m = 1u << 31;
    uint32_t prod = 0;

    while (m != 0) {
        if (a & m) {
            prod ^= b;
        }
        b = (b & 1) ? (b >> 1) ^ CRC32C_POLY : b >> 1;
        m >>= 1;
    }
    return prod;
}

static void
crc32c_init(void)
{
    uint32_t p = 1u << 30; /* x^1 */

    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;

        for (int k = 0; k < 8; k++) {
            c = (c & 1) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
        }
        crc32c_table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++) {
        for (int t = 1; t < 8; t++) {
            uint32_t prev = crc32c_table[t - 1][n];

            crc32c_table[t][n] = (prev >> 8) ^ crc32c_table[0][prev & 0xff];
        }
    }
    for (size_t k = 0; k < sizeof(crc32c_x2n) / sizeof(crc32c_x2n[0]); k++) {
        crc32c_x2n[k] = p;
        p = crc32c_multmodp(p, p);
    }
    crc32c_impl = crc32c_sw_raw;
#if CRC32C_HAVE_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2")) {
        crc32c_impl = crc32c_hw_raw;
    }
#endif
}

uint32_t
crc32c_update(uint32_t crc, const void *p, size_t len)
{
    (void)pthread_once(&crc32c_once, crc32c_init); /* cannot fail with a valid once */
    if (len == 0) {
        return crc;
    }
    return ~crc32c_impl(~crc, p, len);
}

uint32_t
crc32c_update_sw(uint32_t crc, const void *p, size_t len)
{
    (void)pthread_once(&crc32c_once, crc32c_init); /* cannot fail with a valid once */
    if (len == 0) {
        return crc;
    }
    return ~crc32c_sw_raw(~crc, p, len);
}

bool
crc32c_hw_available(void)
{
    (void)pthread_once(&crc32c_once, crc32c_init); /* cannot fail with a valid once */
    return crc32c_impl != crc32c_sw_raw;
}

uint32_t
crc32c_combine(uint32_t crc1, uint32_t crc2, uint64_t len2)
{
    uint32_t xn = 1u << 31; /* x^0 */
    unsigned k = 3;         /* len2 counts bytes: x^(8 * len2) */

    (void)pthread_once(&crc32c_once, crc32c_init); /* cannot fail with a valid once */
    while (len2 != 0) {
        if (len2 & 1) {
            xn = crc32c_multmodp(crc32c_x2n[k], xn);
        }
        len2 >>= 1;
        k++;
    }
    return crc32c_multmodp(xn, crc1) ^ crc2;
}
