/*
 * spool_recycle: reuses the files of removed messages instead of deleting
 * them.
 *
 * On ext4 (notably without a journal), creating files gets slower the more
 * files were deleted in the last half minute: the inode allocator skips every
 * recently deleted inode, reading inode table blocks as it goes. A busy relay
 * creates and deletes thousands of spool files a second, so the cost grows
 * with the load (it showed as most of celerd's system time). Recycling keeps
 * the inodes alive: a removed message's file is emptied (ftruncate) and moved
 * to <base>/free/, and the next message takes it from there with one rename.
 * At most `max` files are parked; beyond that they are deleted as before.
 *
 * Crash safety: a parked file is empty before it is parked, so a crash at any
 * point leaves either an empty file in free/ (ignored by recovery and cleared
 * at start-up) or an empty file under a message name (incomplete: removed by
 * recovery). A taken file is made durable exactly like a created one: its new
 * directory entry is covered by the same directory sync.
 */
#ifndef CELER_SPOOL_SPOOL_RECYCLE_H
#define CELER_SPOOL_SPOOL_RECYCLE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"

#define SPOOL_RECYCLE_DIR "free"

struct spool_recycle {
    int base_fd; /* borrowed */
    int dir_fd;  /* owned: <base>/free, or -1 when recycling is off */
    pthread_mutex_t lock;
    uint64_t *ready;    /* owned: names of parked files, a stack; guarded by lock */
    size_t nready;      /* guarded by lock */
    size_t reserved;    /* parkings in progress; guarded by lock */
    uint64_t next_name; /* guarded by lock */
    unsigned max;
};

/* Creates (or empties) <base>/free; recycling stays off if that fails. */
void spool_recycle_init(struct spool_recycle *r, int base_fd, unsigned max);
void spool_recycle_release(struct spool_recycle *r);
/*
 * On a pool thread: empties the message file rel (relative to the base) and
 * parks it. False when it was not parked (full, off, or an error): the
 * caller deletes it.
 */
bool spool_recycle_put(struct spool_recycle *r, const char *rel);
/*
 * Moves a parked, empty file to rel without replacing anything there: 0,
 * -ENOENT when none is parked (create one), -EEXIST, or another -errno.
 */
int spool_recycle_take(struct spool_recycle *r, const char *rel) CELER_WUR;

#endif
