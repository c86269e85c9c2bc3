/*
 * fuzz_mime7bit: 8-bit to 7-bit downconversion of arbitrary messages.
 *
 * Input: the message. Checks (abort on violation):
 *   - conversion succeeds under a ceiling of 32 times the input plus 4 KiB
 *     (added header fields are the only growth beyond quoted-printable's 3x);
 *   - a message without 8-bit octets comes out identical, with nothing
 *     converted and no flag set;
 *   - the output has no 8-bit octet unless header_8bit;
 *   - no output line is longer than the longest input line or 76 octets,
 *     whichever is more (nothing is joined; everything written is short);
 *   - the output is a function of the input (a second run gives the same);
 *   - a ceiling one octet short of the output fails with CELER_ELIMIT.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msg/mime7bit.h"
#include "fuzzkit.h"

/* The longest line of s in octets, a CR before its LF not counted. */
static size_t
longest_line(struct strv s)
{
    size_t longest = 0, start = 0;

    for (size_t i = 0; i <= s.len; i++) {
        if (i == s.len || s.ptr[i] == '\n') {
            size_t len = i - start;

            if (i < s.len && len > 0 && s.ptr[i - 1] == '\r') {
                len--;
            }
            longest = len > longest ? len : longest;
            start = i + 1;
        }
    }
    return longest;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct strv in = strv_make((const char *)data, size);
    struct mime7bit_result res, res2;
    struct buf out, again;
    struct strv o;
    size_t in_longest = longest_line(in);

    buf_init(&out, 32 * size + 4096);
    CHECK(try_mime7bit_convert(in, &out, &res) == 0);
    o = buf_data(&out);
    if (!mime7bit_needed(in)) {
        CHECK(o.len == in.len && (in.len == 0 || memcmp(o.ptr, in.ptr, in.len) == 0));
        CHECK(res.converted == 0 && !res.header_8bit && !res.malformed);
    }
    CHECK(res.header_8bit || !mime7bit_needed(o));
    CHECK(longest_line(o) <= (in_longest > 76 ? in_longest : 76));

    buf_init(&again, BUF_UNLIMITED);
    CHECK(try_mime7bit_convert(in, &again, &res2) == 0);
    CHECK(buf_len(&again) == o.len && memcmp(buf_data(&again).ptr, o.ptr, o.len) == 0);
    CHECK(res2.converted == res.converted && res2.header_8bit == res.header_8bit &&
          res2.malformed == res.malformed);
    buf_release(&again);

    if (o.len > 0) {
        buf_init(&again, o.len - 1);
        CHECK(try_mime7bit_convert(in, &again, &res2) == CELER_ELIMIT);
        buf_release(&again);
    }
    buf_release(&out);
    return 0;
}
