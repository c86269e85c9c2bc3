/*
 * spool_recycle: reuses the files of removed messages instead of deleting
 * them.
 *
 * On ext4 (notably without a journal), creating files gets slower the more
 * files were deleted in the last half minute: the inode allocator skips every
 * recently deleted inode, reading inode table blocks as it goes. A busy relay
 * creates and deletes thousands of spool files a second, so the cost grows
 * with the load (it showed as most of celerd's system time). Recycling keeps
 * the inodes alive: a removed message's file is moved to <base>/free/, and
 * the next message takes it from there with one rename. At most `max` files
 * are parked; beyond that they are deleted as before.
 *
 * A parked file also keeps its blocks (and its cached pages), up to
 * SPOOL_RECYCLE_KEEP_FILE bytes a file and keep_max bytes in all (64 MiB, or
 * 1 % of the file system when that is less): overwriting allocated blocks
 * costs a fraction of allocating new ones. It is cut before the old
 * message's END (so that no old PROGRESS record can follow a new END) and
 * its first 8 bytes are replaced by SPOOL_PARKED_HDR, so that it can never
 * read as a message again; the writer that takes it overwrites it from the
 * start and truncates what is left of the old content before it writes END
 * (spool_file.c). A file beyond the budget is emptied (ftruncate) instead.
 *
 * Crash safety (docs/spool-format.md §10.4): before it is moved, a parked
 * file is emptied, or marked with SPOOL_PARKED_HDR and cut before its END
 * (the caller's keep_len), none of it synced. After kill -9, what is left
 * under a message name reads as incomplete and recovery removes it. After a
 * power loss any subset of those steps may be on disk: under the old name
 * the file reads as incomplete or as the old message whole (as after a lost
 * unlink); under a new name, the old message whole reads as corrupt (its
 * envelope id differs) and is moved aside. Files in free/ are ignored by
 * recovery and cleared at start-up. A taken file is made durable exactly
 * like a created one: its new directory entry is covered by the same
 * directory sync.
 */
#ifndef CELER_SPOOL_SPOOL_RECYCLE_H
#define CELER_SPOOL_SPOOL_RECYCLE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"

#define SPOOL_RECYCLE_DIR "free"

#define SPOOL_RECYCLE_KEEP_FILE  (1024 * 1024)      /* larger files are emptied when parked */
#define SPOOL_RECYCLE_KEEP_BYTES (64 * 1024 * 1024) /* at most, kept in all */

struct spool_recycle_file {
    uint64_t name; /* its name in free/ */
    uint64_t size; /* bytes it kept (0: emptied) */
};

struct spool_recycle {
    int base_fd; /* borrowed */
    int dir_fd;  /* owned: <base>/free, or -1 when recycling is off */
    pthread_mutex_t lock;
    struct spool_recycle_file *ready; /* owned: parked files, a stack; guarded by lock */
    size_t nready;                    /* guarded by lock */
    size_t reserved;                  /* parkings in progress; guarded by lock */
    uint64_t next_name;               /* guarded by lock */
    uint64_t kept;                    /* bytes kept by parked files; guarded by lock */
    uint64_t keep_max;                /* budget for kept */
    unsigned max;
};

/* Creates (or empties) <base>/free; recycling stays off if that fails. */
void spool_recycle_init(struct spool_recycle *r, int base_fd, unsigned max);
void spool_recycle_release(struct spool_recycle *r);
/*
 * On a pool thread: marks the message file rel (relative to the base) as
 * parked and cuts it to keep_len bytes (the caller passes the message
 * without its END and PROGRESS records), or empties it (keep_len 0, or
 * beyond the budget), and parks it.
 * False when it was not parked (full, off, or an error): the caller deletes
 * it.
 */
bool spool_recycle_put(struct spool_recycle *r, const char *rel, uint64_t keep_len);
/*
 * Moves a parked file to rel without replacing anything there: 0 with its
 * size in *size (0: empty; else it starts with SPOOL_PARKED_HDR and holds
 * stale bytes to overwrite or cut), -ENOENT when none is parked (create
 * one), -EEXIST, or another -errno.
 */
int spool_recycle_take(struct spool_recycle *r, const char *rel, uint64_t *size) CELER_WUR;

#endif
