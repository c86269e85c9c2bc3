/*
 * spool_fsdur: what the file system underneath the spool makes durable.
 *
 * Two questions the spool asks once, when it opens: does fsync of a newly
 * created file also make its name durable on this file system (so the
 * per-commit directory sync can be skipped; docs/spool-format.md §10.1a),
 * and, after creating the base directory itself, the fsync of its parent.
 * Both are plain system calls with no state; safe from any thread.
 */
#ifndef CELER_SPOOL_SPOOL_FSDUR_H
#define CELER_SPOOL_SPOOL_FSDUR_H

#include <stdbool.h>

/*
 * Whether fsync of a file created on fd's file system also makes its
 * directory entry durable. False when unsure, and always false when the
 * environment sets CELER_SPOOL_DIRSYNC (tests force directory syncs).
 */
bool spool_fs_syncs_new_entries(int fd);

/* fsync of the directory holding path; 0 or -errno. */
int spool_sync_parent_of(const char *path);

#endif
