/*
 * base64: RFC 4648 base64 (see base64.h).
 */
#include "core/base64.h"

static const char base64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int
try_base64_encode(struct strv in, struct buf *out)
{
    const unsigned char *p = (const unsigned char *)in.ptr;

    for (size_t i = 0; i < in.len; i += 3) {
        size_t n = in.len - i < 3 ? in.len - i : 3;
        unsigned v =
            (unsigned)p[i] << 16 | (n > 1 ? (unsigned)p[i + 1] << 8 : 0) | (n > 2 ? p[i + 2] : 0);
        char q[4] = {base64_alphabet[v >> 18], base64_alphabet[(v >> 12) & 63],
                     n > 1 ? base64_alphabet[(v >> 6) & 63] : '=',
                     n > 2 ? base64_alphabet[v & 63] : '='};
        int err = try_buf_append(out, q, 4);

        if (err != 0) {
            return err;
        }
    }
    return 0;
}

static int
base64_value(char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

int
try_base64_decode(struct strv in, struct buf *out)
{
    if (in.len % 4 != 0) {
        return CELER_EPARSE;
    }
    for (size_t i = 0; i < in.len; i += 4) {
        int v[4];
        size_t pad = 0;
        unsigned char b[3];
        int err;

        for (size_t j = 0; j < 4; j++) {
            char c = in.ptr[i + j];

            if (c == '=' && i + 4 == in.len && j >= 2) {
                pad++;
                v[j] = 0;
                continue;
            }
            if (pad || (v[j] = base64_value(c)) < 0) {
                return CELER_EPARSE;
            }
        }
        b[0] = (unsigned char)(v[0] << 2 | v[1] >> 4);
        b[1] = (unsigned char)((v[1] & 15) << 4 | v[2] >> 2);
        b[2] = (unsigned char)((v[2] & 3) << 6 | v[3]);
        err = try_buf_append(out, b, 3 - pad);
        if (err != 0) {
            return err;
        }
    }
    return 0;
}
