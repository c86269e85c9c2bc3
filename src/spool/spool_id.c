/*
 * spool_id: message id generation, formatting, strict parsing and the
 * id-to-path mapping (see spool_id.h).
 */
#include "spool/spool_id.h"

#include <assert.h>
#include <stdio.h>
#include <sys/random.h>
#include <unistd.h>

#include "core/clock.h"

#define SPOOL_ID_PID_DIGITS_MAX 10
#define SPOOL_ID_SEQ_DIGITS     8

static const char spool_id_hex[] = "0123456789ABCDEF";

static void
spool_id_put_hex(char *out, uint32_t v, int digits)
{
    for (int i = digits - 1; i >= 0; i--) {
        out[i] = spool_id_hex[v & 0xf];
        v >>= 4;
    }
}

/* "AA" + sep + "BB" + sep2 + "PID-SEQ" + NUL; out has SPOOL_ID_SIZE bytes. */
static size_t
spool_id_render(struct spool_id id, char sep2, char *out)
{
    int n;

    assert(id.pid >= 1 && id.pid <= SPOOL_ID_PID_MAX);
    spool_id_put_hex(out, spool_id_dir1(id), 2);
    out[2] = '/';
    spool_id_put_hex(out + 3, spool_id_dir2(id), 2);
    out[5] = sep2;
    n = snprintf(out + 6, SPOOL_ID_SIZE - 6, "%u-", (unsigned)id.pid);
    assert(n > 0 && n <= SPOOL_ID_PID_DIGITS_MAX + 1);
    spool_id_put_hex(out + 6 + n, id.seq, SPOOL_ID_SEQ_DIGITS);
    out[6 + n + SPOOL_ID_SEQ_DIGITS] = '\0';
    return 6 + (size_t)n + SPOOL_ID_SEQ_DIGITS;
}

size_t
spool_id_format(struct spool_id id, char out[SPOOL_ID_SIZE])
{
    return spool_id_render(id, '-', out);
}

size_t
spool_id_path(struct spool_id id, char out[SPOOL_ID_PATH_SIZE])
{
    return spool_id_render(id, '/', out);
}

/* Upper-case hex only; -1 for anything else. */
static int
spool_id_hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

static int
spool_id_parse_hex(struct strv s, size_t digits, uint32_t *out)
{
    uint32_t v = 0;

    if (s.len != digits) {
        return CELER_EPARSE;
    }
    for (size_t i = 0; i < digits; i++) {
        int d = spool_id_hexval(s.ptr[i]);

        if (d < 0) {
            return CELER_EPARSE;
        }
        v = (v << 4) | (uint32_t)d;
    }
    *out = v;
    return 0;
}

int
spool_id_parse_name(struct strv name, struct spool_id *out)
{
    ptrdiff_t dash = strv_chr(name, '-');
    struct strv pid_s, seq_s;
    uint64_t pid;
    uint32_t seq;

    if (dash < 1 || (size_t)dash > SPOOL_ID_PID_DIGITS_MAX) {
        return CELER_EPARSE;
    }
    pid_s = strv_sub(name, 0, (size_t)dash);
    seq_s = strv_from(name, (size_t)dash + 1);
    if (pid_s.ptr[0] == '0' || strv_to_u64(pid_s, SPOOL_ID_PID_MAX, &pid) != 0) {
        return CELER_EPARSE;
    }
    if (spool_id_parse_hex(seq_s, SPOOL_ID_SEQ_DIGITS, &seq) != 0) {
        return CELER_EPARSE;
    }
    *out = (struct spool_id){.pid = (uint32_t)pid, .seq = seq};
    return 0;
}

/* "AA" sep "BB" sep2 "PID-SEQ" with AA/BB matching SEQ. */
static int
spool_id_parse_with(struct strv text, char sep2, struct spool_id *out)
{
    struct spool_id id;
    uint32_t d1, d2;

    if (text.len < 6 || text.ptr[2] != '/' || text.ptr[5] != sep2) {
        return CELER_EPARSE;
    }
    if (spool_id_parse_hex(strv_sub(text, 0, 2), 2, &d1) != 0 ||
        spool_id_parse_hex(strv_sub(text, 3, 2), 2, &d2) != 0) {
        return CELER_EPARSE;
    }
    if (spool_id_parse_name(strv_from(text, 6), &id) != 0) {
        return CELER_EPARSE;
    }
    if (d1 != spool_id_dir1(id) || d2 != spool_id_dir2(id)) {
        return CELER_EPARSE;
    }
    *out = id;
    return 0;
}

int
spool_id_parse(struct strv text, struct spool_id *out)
{
    return spool_id_parse_with(text, '-', out);
}

int
spool_id_parse_path(struct strv path, struct spool_id *out)
{
    return spool_id_parse_with(path, '/', out);
}

void
spool_idgen_init(struct spool_idgen *g, uint32_t pid, uint32_t seed)
{
    assert(pid >= 1 && pid <= SPOOL_ID_PID_MAX);
    g->pid = pid;
    atomic_init(&g->next, seed);
}

void
spool_idgen_init_random(struct spool_idgen *g)
{
    uint32_t seed;

    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed)) {
        uint64_t t = (uint64_t)clock_wall_us() ^ (clock_mono_us() << 20);

        seed = (uint32_t)(t ^ (t >> 32)) * 2654435761u; /* spread the low bits */
    }
    spool_idgen_init(g, (uint32_t)getpid(), seed);
}

struct spool_id
spool_idgen_next(struct spool_idgen *g)
{
    uint32_t seq = atomic_fetch_add_explicit(&g->next, 1, memory_order_relaxed);

    return (struct spool_id){.pid = g->pid, .seq = seq};
}
