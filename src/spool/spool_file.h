/*
 * spool_file: the durable message store, one file per message under a base
 * directory (spoolbase/AA/BB/PID-SEQ, format in docs/spool-format.md).
 *
 * Event loops call it and it never blocks them on a sync: fdatasync, fsync
 * of directories, unlinks and scans run in the I/O pool given at open, and
 * completions come back on the loop the caller names. What does run on the
 * calling thread is cheap: open(O_CREAT|O_EXCL), mkdir of a missing AA/BB
 * directory, and write() of message bytes into the page cache.
 *
 * Writing a message (one writer, owned by one thread at a time):
 *   spool_writer_begin()   takes a fresh id, creates the file under its
 *                          final name (no temp file, no rename), encodes the
 *                          head (file header, ENVELOPE, BODY placeholder);
 *   spool_writer_write()   body bytes, buffered up to SPOOL_WRITE_BUF;
 *   spool_writer_finish()  tail (body CRC, PREPEND, END) and the BODY patch;
 *                          a message that fits the buffer goes out in one
 *                          write() with the patch already applied;
 *   spool_writer_commit()  in the pool: fdatasync the file, then make its
 *                          directory entry durable (batched, below), then
 *                          the callback on the caller's loop. Only now may
 *                          the message be acknowledged.
 * One file sync per message. A directory needs an fsync once per batch of
 * files created in it: each directory keeps a generation counter (bumped
 * after each create) and the generation its last fsync covered; a commit
 * whose file's generation is already covered skips the sync, the others
 * wait (without holding a pool thread) for the one directory sync that
 * runs at a time, which covers every file created before it started. New
 * AA and AA/BB directories get their parent synced the same way, once.
 * With force_fsync off the same path runs without any sync.
 *
 * Any failed write, pwrite, fsync or directory sync fails the message: the
 * commit callback gets the error and the file is removed. After a crash an
 * acknowledged message is complete on disk and an unfinished one never
 * passes for complete: it reads as incomplete (removed by recovery) or,
 * after a power loss, possibly as corrupt (quarantined); docs/spool-format.md
 * §10 has the argument.
 *
 * Owns: the base directory fd and its lock file (one daemon per spool: a
 * second spool_open() of the same base gets CELER_EBUSY), the per-directory
 * sync state, the id generator, counters. Borrows the pool. spool_close()
 * waits for the background jobs (aborts, removes, appends, scans) it
 * started; all writers must be finished (committed or aborted) and all
 * callbacks run before it is called.
 *
 * Limits: messages as large as the file system allows; writers do not
 * synchronise with each other except through atomics and the per-directory
 * sync locks. Callers must not run two progress appends, or an append and a
 * remove, on the same message at once (the queue owns each message on one
 * loop, so it serialises them).
 */
#ifndef CELER_SPOOL_SPOOL_FILE_H
#define CELER_SPOOL_SPOOL_FILE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/err.h"
#include "core/strv.h"
#include "net/loop.h"
#include "net/pool.h"
#include "spool/spool_format.h"
#include "spool/spool_id.h"

/* Body bytes buffered before a write(): one syscall per this many bytes. */
#define SPOOL_WRITE_BUF (64 * 1024)
/* Directory mode when spool_opts.mode is 0. Files get the mode without x bits. */
#define SPOOL_DEFAULT_MODE 0750
/* Where recovery moves files that fail their checks (never deleted). */
#define SPOOL_CORRUPT_DIR "corrupt"
/* Held locked (flock) while the spool is open. */
#define SPOOL_LOCK_FILE ".lock"
/* Present only between a clean spool_close() and the next spool_open(). */
#define SPOOL_CLEAN_FILE ".clean"

struct spool; /* one spool directory: base, mode, fsync policy, ids, io pool, counters */

struct spool_opts {
    const char *base; /* borrowed: the spool directory; created if missing (not its parents) */
    mode_t mode;      /* of created directories; 0 = SPOOL_DEFAULT_MODE */
    bool force_fsync; /* false: no syncs at all (benchmarks, Momentum's default) */
    struct pool *io;  /* borrowed: must outlive the spool */
    uid_t uid;        /* owner of created directories; (uid_t)-1 = leave (0 is root!) */
    gid_t gid;        /* (gid_t)-1 = leave */
    /* Tests: the first id to hand out. NULL = getpid() and a random sequence number. */
    const struct spool_id *first_id; /* borrowed for the call */
};

/* Counters for the console; each is read atomically, the set is not a snapshot. */
struct spool_stats {
    uint64_t committed;         /* messages made durable and handed to their callback */
    uint64_t committed_bytes;   /* their file sizes */
    uint64_t commit_failed;     /* commits whose callback got an error */
    uint64_t aborted;           /* writers abandoned */
    uint64_t fsyncs;            /* file fdatasync calls (commits and progress appends) */
    uint64_t dir_fsyncs;        /* directory fsync calls */
    uint64_t commit_latency_us; /* sum over committed: spool_writer_commit() to callback */
    uint64_t progress_appends;  /* PROGRESS records made durable */
    uint64_t removed;           /* files unlinked by spool_remove() */
    uint64_t writers;           /* writers open now */
};

/*
 * Opens (creating base if missing, and syncing its parent then) and locks
 * the spool, checks that base is writable, and notes whether the last run
 * closed it cleanly (spool_recover() relies on that). Reads the fault rules
 * of CELER_SPOOL_FAULT (spool_fault.h). NULL with *err: -EINVAL (no base or
 * pool, bad fault spec), CELER_EBUSY (another process holds the spool),
 * -errno.
 */
struct spool *spool_open(const struct spool_opts *o, int *err);
/*
 * Waits for the spool's background jobs, syncs the file system and leaves
 * the clean-shutdown marker, releases the lock and frees. NULL ok. Blocks:
 * call it from the main thread at shutdown, after every writer is done.
 */
void spool_close(struct spool *s);

const char *spool_base(const struct spool *s);
void spool_get_stats(struct spool *s, struct spool_stats *out);
/* Tests: replaces the injected faults (spool_fault.h); NULL clears. CELER_EPARSE. */
int spool_set_fault(struct spool *s, const char *spec) CELER_WUR;

/* ---- Writing one message ---- */

struct spool_writer;

/*
 * Takes a fresh id (O_EXCL; the next id on EEXIST), creates the AA/BB
 * directories on demand, creates the file and encodes the head with env->id
 * set by the spool (the caller leaves env->id empty). The writer keeps its
 * own copy of env: the caller's may go once this returns. id_out receives
 * the id text. NULL with *err: -EINVAL or CELER_ELIMIT for an envelope the
 * format refuses (nothing is created then), -errno (e.g. -ENOSPC).
 */
struct spool_writer *spool_writer_begin(struct spool *s, const struct spool_envelope *env,
                                        char id_out[SPOOL_ID_SIZE], int *err);
/*
 * Body bytes as they arrive, buffered up to SPOOL_WRITE_BUF. 0 or -errno
 * (-ENOSPC, -EIO...). After an error every later call fails the same way.
 */
int spool_writer_write(struct spool_writer *w, const void *p, size_t len) CELER_WUR;
/*
 * No more body: writes the tail (body CRC, PREPEND = prepend, END) and the
 * final BODY header. The writer keeps a copy of prepend. 0 or -errno (the
 * writer's earlier error, if any), or CELER_ELIMIT for a prepend too large.
 */
int spool_writer_finish(struct spool_writer *w, struct strv prepend) CELER_WUR;

/*
 * Called on lp once the message is durable (err 0), or has failed (err
 * -errno: the file has been removed). The writer is freed when this
 * returns: copy what you need (id, envelope, offsets) here.
 */
typedef void spool_commit_fn(struct spool_writer *w, int err, void *arg);
/*
 * Makes a finished file durable in the pool (when force_fsync), then calls
 * cb(w, err, arg) on lp; never from inside this call. A writer whose write
 * or finish failed may be committed too: cb gets that error. Committing an
 * unfinished writer without an error is a bug (asserted).
 */
void spool_writer_commit(struct spool_writer *w, struct loop *lp, spool_commit_fn *cb, void *arg);
/*
 * Abandons a writer that is not committing (unfinished, or finished but not
 * committed): the file is unlinked in the pool and the writer freed. NULL ok.
 */
void spool_writer_abort(struct spool_writer *w);

/* What the commit callback may read. */
struct spool_id spool_writer_id(const struct spool_writer *w);
const char *spool_writer_id_text(const struct spool_writer *w); /* "AA/BB-PID-SEQ" */
const struct spool_envelope *spool_writer_envelope(const struct spool_writer *w); /* id set */
struct strv spool_writer_prepend(const struct spool_writer *w);                   /* after finish */
uint64_t spool_writer_body_off(const struct spool_writer *w);
uint64_t spool_writer_body_len(const struct spool_writer *w); /* after finish */
uint64_t spool_writer_file_len(const struct spool_writer *w); /* after finish */

/* ---- Committed messages ---- */

typedef void spool_done_fn(int err, void *arg);
/*
 * Appends a PROGRESS record to a committed message at the end of its last
 * valid record, truncating a damaged tail first (left by a crash or a
 * failed append), and makes it durable (fdatasync when force_fsync); then
 * cb(err, arg) on lp, always (never from inside this call). Errors: -EINVAL
 * for a record the format refuses or a recipient index past the envelope's,
 * CELER_ECORRUPT / SPOOL_EINCOMPLETE when the file is not a complete
 * message with this id, -errno. A failed append leaves the message as it
 * was (without the torn tail, if there was one).
 */
void spool_progress_append(struct spool *s, struct spool_id id, const struct spool_progress *p,
                           struct loop *lp, spool_done_fn *cb, void *arg);
/*
 * Removes a finished message: unlinked (or parked for reuse, see
 * spool_recycle.h) in the pool, batched, without a directory sync (after a
 * crash the message may come back and be sent again; docs/spool-format.md
 * §10). msg_len is the message's length up to and including END (the file's
 * length at commit, before any PROGRESS record: spool_writer_file_len()), or
 * 0 when unknown: a parked file keeps at most that much, so that no PROGRESS
 * record of the old message stays in it. Never while a spool_progress_append()
 * for the same message is in flight: the file may be reused at once, and the
 * append would write into another message (the queue waits, qmsg.h).
 */
void spool_remove(struct spool *s, struct spool_id id, uint64_t msg_len);
/* Opens a message for reading (pread by the caller): an fd, or -errno. */
int spool_open_message(struct spool *s, struct spool_id id) CELER_WUR;

/* ---- For spool_recover (same layer) ---- */

int spool_base_fd(const struct spool *s);
struct pool *spool_io(const struct spool *s);
/* Whether spool_open() found the clean-shutdown marker. */
bool spool_was_clean(const struct spool *s);
/*
 * Whether id was handed out by this spool to a writer (which may still be
 * writing it): recovery must not touch such files.
 */
bool spool_id_is_ours(struct spool *s, struct spool_id id);
/* A background job starts / ends: spool_close() waits for all to end. */
void spool_jobs_enter(struct spool *s);
void spool_jobs_leave(struct spool *s);

/* The start-up scan, spool_recover(), is part of the interface. */
#include "spool/spool_recover.h"

#endif
