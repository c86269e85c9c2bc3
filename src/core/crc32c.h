/*
 * crc32c: CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) checksums.
 *
 * Used by the spool format on every byte received, so it is fast: the SSE4.2
 * crc32 instruction when the CPU has it (checked once at run time), else
 * slicing-by-8 tables. Values follow the zlib convention: start from
 * CRC32C_INIT (0), feed chunks in order with crc32c_update(); the result
 * after the last chunk is the checksum (pre- and post-inversion are done
 * inside). crc32c("123456789") == 0xE3069283.
 *
 * crc32c_combine() gives crc(A || B) from crc(A), crc(B) and len(B) in
 * O(log len(B)) without the bytes, so a reader can check a checksum over a
 * file region it did not read (the spool's END record over a large body).
 * Owns only static tables, built once on first use (thread-safe).
 */
#ifndef CELER_CORE_CRC32C_H
#define CELER_CORE_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CRC32C_INIT 0u

/* Continues crc over p[0, len). */
uint32_t crc32c_update(uint32_t crc, const void *p, size_t len);

static inline uint32_t
crc32c(const void *p, size_t len)
{
    return crc32c_update(CRC32C_INIT, p, len);
}

/* crc32c(A || B) given crc1 = crc32c(A), crc2 = crc32c(B), len2 = len(B). */
uint32_t crc32c_combine(uint32_t crc1, uint32_t crc2, uint64_t len2);

/* The portable implementation, always available (for tests and benches). */
uint32_t crc32c_update_sw(uint32_t crc, const void *p, size_t len);
/* True when crc32c_update() uses the SSE4.2 instruction. */
bool crc32c_hw_available(void);

#endif
