/*
 * spool_recover: the start-up scan of a file spool.
 *
 * Walks spoolbase/AA/BB/ in pool threads, one job per directory (so the
 * scan runs in parallel across directories), and decodes each message file
 * through pread without copying its body. Each file ends in one of four
 * ways:
 *   complete     on_msg(m, id, arg) runs ON THE POOL THREAD; m and its
 *                views are freed when on_msg returns, so copy what you need
 *                and post it to your loops;
 *   incomplete   a writer died before acknowledging it: the file is
 *                unlinked (and logged);
 *   corrupt      failed checks, an envelope id that differs from the file
 *                name, or a format version we cannot read: moved to
 *                spoolbase/corrupt/ for an operator, never deleted (logged
 *                with the offset and reason);
 *   error        could not be read, removed or moved: left alone, logged.
 * When the last file is done, on_done(stats, arg) runs on loop lp.
 *
 * After a clean shutdown (spool_was_clean()) the scan reads only heads and
 * tails. Otherwise it also reads every body and checks it against its CRC:
 * a power loss can leave a file whose END reached the disk while a body
 * page did not (docs/spool-format.md §10), and only the body CRC tells.
 *
 * Skipped (counted, not touched): dot-files, the corrupt/ directory, names
 * that are not spool directories or message files, and files this spool
 * instance created itself (recovery may run while new messages arrive).
 * A damaged PROGRESS tail is reported in the message (tail_damaged) and
 * left for spool_progress_append() to truncate.
 */
#ifndef CELER_SPOOL_SPOOL_RECOVER_H
#define CELER_SPOOL_SPOOL_RECOVER_H

#include <stdbool.h>
#include <stdint.h>

#include "net/loop.h"
#include "spool/spool_format.h"
#include "spool/spool_id.h"

struct spool; /* spool_file.h, which includes this header */

struct spool_recover_stats {
    uint64_t complete;      /* handed to on_msg */
    uint64_t bytes;         /* their file sizes */
    uint64_t tails_damaged; /* complete, with a torn PROGRESS tail ignored */
    uint64_t incomplete;    /* unlinked: never acknowledged */
    uint64_t corrupt;       /* moved to corrupt/ */
    uint64_t errors;        /* files or directories that could not be read, removed or moved */
    uint64_t skipped;       /* names that are neither spool directories nor message files */
    uint64_t in_use;        /* files of this spool instance, left to their writers */
    uint64_t dirs;          /* AA/BB directories scanned */
    bool verified_bodies;   /* bodies were read and checked (no clean shutdown before) */
    int first_err;          /* the first error's code, 0 if none */
    uint64_t elapsed_ms;
};

/* On a pool thread; m is freed when this returns. */
typedef void spool_recover_msg_fn(const struct spool_msg *m, struct spool_id id, void *arg);
/* On the loop given to spool_recover(). */
typedef void spool_recover_done_fn(const struct spool_recover_stats *st, void *arg);

/* Starts the scan in the spool's pool; on_done always runs, once, on lp. */
void spool_recover(struct spool *s, struct loop *lp, spool_recover_msg_fn *on_msg,
                   spool_recover_done_fn *on_done, void *arg);

#endif
