/*
 * spool_id: message ids and their place in the spool (pure: no file I/O).
 *
 * An id is Momentum-style text "AA/BB-PID-SEQ", e.g. "B9/87-25004-31B987F3":
 * SEQ is a 32-bit sequence number as 8 upper-case hex digits, PID the decimal
 * id of the process that received the message (1..2147483647, no leading
 * zero), and AA/BB are bits 23..16 and 15..8 of SEQ, also as upper-case hex.
 * So 256 consecutive ids share one directory (the writer can batch directory
 * syncs), and a daemon run walks all 65536 directories over 2^24 messages.
 * The id maps to the relative path "AA/BB/PID-SEQ" (spool_id_path), and a
 * path or a bare file name "PID-SEQ" maps back to the id.
 *
 * Parsing is strict: exactly this grammar, nothing before or after, AA/BB
 * consistent with SEQ. Anything that passes is safe to use as a path
 * component ("..", "/", NUL and the like cannot pass).
 *
 * The generator hands out consecutive sequence numbers from a random start
 * with one relaxed atomic increment, so any thread may call
 * spool_idgen_next(). Uniqueness across runs comes from PID + SEQ; the file
 * spool creates files with O_EXCL and takes the next id on EEXIST.
 */
#ifndef CELER_SPOOL_SPOOL_ID_H
#define CELER_SPOOL_SPOOL_ID_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/strv.h"

/* "AA/BB-" + 10-digit PID + "-" + 8 hex digits + NUL = 26; rounded up. */
#define SPOOL_ID_SIZE 32
/* "AA/BB/" + PID + "-" + SEQ + NUL, same length as the id. */
#define SPOOL_ID_PATH_SIZE 32
#define SPOOL_ID_PID_MAX   2147483647u

struct spool_id {
    uint32_t pid; /* 1..SPOOL_ID_PID_MAX */
    uint32_t seq;
};

struct spool_idgen {
    uint32_t pid;
    _Atomic uint32_t next;
};

/* Directory levels of an id: bits 23..16 and 15..8 of seq. */
static inline unsigned
spool_id_dir1(struct spool_id id)
{
    return (id.seq >> 16) & 0xff;
}

static inline unsigned
spool_id_dir2(struct spool_id id)
{
    return (id.seq >> 8) & 0xff;
}

/*
 * Writes "AA/BB-PID-SEQ" NUL-terminated into out; returns its length.
 * id.pid must be valid (asserted).
 */
size_t spool_id_format(struct spool_id id, char out[SPOOL_ID_SIZE]);
/* Writes the relative path "AA/BB/PID-SEQ"; returns its length. */
size_t spool_id_path(struct spool_id id, char out[SPOOL_ID_PATH_SIZE]);

/* Parses an id; CELER_EPARSE for anything but the exact grammar. */
int spool_id_parse(struct strv text, struct spool_id *out) CELER_WUR;
/* Parses a relative path "AA/BB/PID-SEQ" (directories checked against SEQ). */
int spool_id_parse_path(struct strv path, struct spool_id *out) CELER_WUR;
/* Parses a spool file name "PID-SEQ" as found in a directory listing. */
int spool_id_parse_name(struct strv name, struct spool_id *out) CELER_WUR;

static inline int
spool_id_cmp(struct spool_id a, struct spool_id b)
{
    if (a.pid != b.pid) {
        return a.pid < b.pid ? -1 : 1;
    }
    return a.seq < b.seq ? -1 : a.seq > b.seq;
}

/* Seeds a generator: ids will be (pid, seed), (pid, seed + 1), ... */
void spool_idgen_init(struct spool_idgen *g, uint32_t pid, uint32_t seed);
/*
 * Seeds with getpid() and 32 random bits from getrandom(), or from the clock
 * when no entropy is available yet (ids need not be unpredictable, only
 * spread; O_EXCL catches collisions).
 */
void spool_idgen_init_random(struct spool_idgen *g);
/* The next id; thread-safe. */
struct spool_id spool_idgen_next(struct spool_idgen *g);

#endif
