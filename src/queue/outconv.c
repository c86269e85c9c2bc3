/*
 * outconv: 8-bit messages for servers without 8BITMIME (see outconv.h).
 */
#include "queue/outconv.h"

#include <errno.h>
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>

#include "core/mem.h"
#include "msg/mime7bit.h"

enum outconv_mode
outconv_mode_parse(const char *value)
{
    if (strcasecmp(value, "ifneeded") == 0) {
        return OUTCONV_IFNEEDED;
    }
    if (strcasecmp(value, "strict") == 0) {
        return OUTCONV_STRICT;
    }
    if (strcasecmp(value, "strip") == 0) {
        return OUTCONV_STRIP;
    }
    return OUTCONV_NO;
}

/* Reads exactly len bytes at off; 0 or -errno (-EIO for a short file). */
static int
outconv_read(int fd, uint64_t off, char *dst, uint64_t len)
{
    while (len > 0) {
        ssize_t n = pread(fd, dst, len, (off_t)off);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -errno;
        }
        if (n == 0) {
            return -EIO; /* the spool file is shorter than its records say */
        }
        dst += n;
        off += (uint64_t)n;
        len -= (uint64_t)n;
    }
    return 0;
}

/* An 8-bit message that could not be made 7-bit: strict fails it, the others send it. */
static void
outconv_not_converted(enum outconv_mode mode, const char *why, struct outconv_report *rep)
{
    rep->action = mode == OUTCONV_STRICT ? OUTCONV_FAIL : OUTCONV_AS_IS;
    rep->why = why;
}

void
outconv_prepare(enum outconv_mode mode, const struct outconv_source *src, struct buf *out,
                struct outconv_report *rep)
{
    uint64_t total = src->prepend_len + src->body_len;
    struct mime7bit_result res;
    char *raw;
    int err;

    *rep = (struct outconv_report){.action = OUTCONV_AS_IS};
    buf_release(out);
    if (mode == OUTCONV_NO) {
        return;
    }
    if (total > OUTCONV_MAX_BYTES) {
        outconv_not_converted(mode, "too large to convert", rep);
        return;
    }
    raw = xmalloc(total + 1);
    err = outconv_read(src->fd, src->prepend_off, raw, src->prepend_len);
    if (err == 0) {
        err = outconv_read(src->fd, src->body_off, raw + src->prepend_len, src->body_len);
    }
    if (err != 0) {
        free(raw);
        rep->action = OUTCONV_READ_FAIL;
        rep->read_err = err;
        return;
    }
    if (!mime7bit_needed((struct strv){raw, total})) {
        free(raw); /* declared 8BITMIME, but every octet is 7-bit */
        return;
    }
    if (mode == OUTCONV_STRIP) {
        for (uint64_t i = src->prepend_len; i < total; i++) {
            raw[i] = (char)(raw[i] & 0x7f);
        }
        buf_init(out, BUF_UNLIMITED);
        buf_append(out, raw, total);
        free(raw);
        rep->action = OUTCONV_CONVERTED;
        return;
    }
    buf_init(out, 4 * total + 65536); /* above the converter's worst case */
    err = try_mime7bit_convert((struct strv){raw, total}, out, &res);
    free(raw);
    rep->converted = res.converted;
    rep->malformed = res.malformed;
    if (err != 0 || res.header_8bit) {
        buf_release(out);
        outconv_not_converted(
            mode, res.header_8bit ? "8-bit octets in header fields" : "conversion too large", rep);
        return;
    }
    rep->action = OUTCONV_CONVERTED;
}
