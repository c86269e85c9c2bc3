/*
 * spool_file: the durable message store (see spool_file.h; the crash
 * argument is docs/spool-format.md §10).
 *
 * Directory sync state is a tree of struct spool_dir: the base, up to 256
 * AA nodes, up to 256 AA/BB nodes under each, created on first use and kept
 * until spool_close(). Lookups are lock-free (atomic child pointers and a
 * ready flag); creating a node or a directory takes dir_lock, which is rare
 * (once per directory per run). Each node's sync state:
 *   gen     bumped (after the entry exists) for each file or subdirectory
 *           created in it;
 *   synced  the generation its last successful fsync covered: the fsyncer
 *           reads gen before calling fsync, so every entry counted by then
 *           existed when fsync started;
 *   failed  the highest generation a failed fsync was meant to cover: those
 *           entries may be lost even if a later fsync succeeds (the kernel
 *           may have dropped the dirty block), so their commits fail.
 *
 * A commit runs in two steps. Its pool job fdatasyncs the file; then, still
 * on that pool thread, it either finds its generation covered by the
 * leaf's synced and goes back to its loop, or parks on the leaf's waiters
 * list without holding a thread. At most one "dir sync" job per leaf runs:
 * it reads gen, fsyncs the directory, releases every waiter its fsync
 * covered, and goes again while waiters remain. The commit also starts
 * that job when it begins (if its entry is not covered and none runs), so
 * the directory sync overlaps the file sync rather than following it. All
 * commits that reach the directory while a sync is running share the next
 * one, and no pool thread sleeps on a lock while others could sync files.
 * The links of a leaf in its AA directory and of the AA in the base are
 * synced once per run, blocking (rare), by whoever needs them first.
 */
#include "spool/spool_file.h"
#include "spool/spool_recycle.h"

/* Files of removed messages kept for reuse (spool_recycle.h). */
#define SPOOL_RECYCLE_MAX 8192

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "spool/spool_fault.h"
#include "spool/spool_fsdur.h"

#define SPOOL_DIR_FANOUT      256
#define SPOOL_CREATE_ATTEMPTS 64 /* ids tried on EEXIST before giving up */
#define SPOOL_FOREIGN_MAX     4096

struct spool_dir {
    struct spool_dir *parent;              /* borrowed; NULL for the base */
    _Atomic(struct spool_dir *) *children; /* owned, SPOOL_DIR_FANOUT; base and AA only */
    char rel[8];                           /* "AA" or "AA/BB" under the base; "." for it */
    atomic_bool ready;                     /* exists on disk, linked in this run */
    _Atomic uint64_t gen;
    _Atomic uint64_t synced;
    _Atomic uint64_t failed;
    atomic_int failed_err;
    _Atomic uint64_t gen_in_parent; /* the parent's generation for our own entry */
    struct spool *s;                /* borrowed */
    pthread_mutex_t lock;           /* parents: one fsync at a time; leaves: waiters */
    struct list_node waiters;       /* leaves: spool_writer.wait_node, file synced */
    bool syncing;                   /* leaves: job is submitted; guarded by lock */
    struct pool_job job;            /* leaves: the dir sync job */
};

struct spool_counters {
    _Atomic uint64_t committed;
    _Atomic uint64_t committed_bytes;
    _Atomic uint64_t commit_failed;
    _Atomic uint64_t aborted;
    _Atomic uint64_t fsyncs;
    _Atomic uint64_t dir_fsyncs;
    _Atomic uint64_t commit_latency_us;
    _Atomic uint64_t progress_appends;
    _Atomic uint64_t removed;
    _Atomic uint64_t writers;
};

struct spool {
    char *base; /* owned */
    int base_fd;
    int lock_fd;
    mode_t dir_mode;
    mode_t file_mode;
    bool force_fsync;
    bool was_clean;
    bool locked; /* open succeeded: close leaves the clean marker */
    uid_t uid;   /* (uid_t)-1: no chown */
    gid_t gid;
    struct pool *io; /* borrowed */
    struct spool_idgen idgen;
    uint32_t first_seq;
    struct spool_fault fault;
    struct spool_counters c;

    pthread_mutex_t dir_lock; /* creating nodes and directories */
    struct spool_dir root;

    pthread_mutex_t jobs_lock;
    pthread_cond_t jobs_cv;
    unsigned jobs; /* background jobs running; guarded by jobs_lock */

    pthread_mutex_t foreign_lock;
    struct spool_id *foreign; /* owned: ids of ours that were taken (EEXIST) */
    size_t nforeign, foreign_cap;

    pthread_mutex_t rm_lock;
    struct spool_rm {
        struct spool_id id;
        uint64_t msg_len;
    } * rm_ids; /* owned: waiting for the remove job */
    size_t rm_len, rm_cap;
    bool rm_running;              /* rm_job is submitted; guarded by rm_lock */
    struct pool_job rm_job;       /* one remove job at a time */
    struct spool_recycle recycle; /* files of removed messages, for reuse */
    bool fsync_covers_entry;      /* the file system makes new names durable with the file */
};

enum spool_writer_state {
    SPOOL_WRITER_WRITING,
    SPOOL_WRITER_FINISHED,
    SPOOL_WRITER_COMMITTING,
};

struct spool_writer {
    struct spool *s;       /* borrowed */
    struct spool_dir *dir; /* borrowed from s */
    struct spool_id id;
    char id_text[SPOOL_ID_SIZE];
    char path[SPOOL_ID_PATH_SIZE];
    int fd; /* owned; -1 once closed */
    uint64_t gen;
    enum spool_writer_state state;
    int err; /* sticky: the first failure */
    struct spool_enc enc;
    struct buf out;   /* owned: bytes not yet written */
    uint64_t written; /* bytes written to the file */
    uint64_t reused;  /* the size of the parked file taken for it (0: new or empty) */
    struct spool_envelope env;
    char *env_blob;           /* owned: the strings env points to */
    struct spool_rcpt *rcpts; /* owned: env.rcpts */
    char *prepend;            /* owned copy, after finish */
    size_t prepend_len;
    uint64_t commit_start_us;
    struct loop *lp; /* borrowed: where cb runs */
    spool_commit_fn *cb;
    void *cb_arg; /* borrowed */
    struct pool_job job;
    struct loop_msg msg;        /* back to lp */
    struct list_node wait_node; /* on dir->waiters */
};

/* ---- System calls, with fault injection ---- */

static void
spool_close_fd(int *fd)
{
    if (*fd >= 0) {
        (void)close(*fd); /* nothing to learn: the data was synced, or the file is discarded */
        *fd = -1;
    }
}

/* Writes every byte of iov[0, n) at the file position. */
static int
spool_writev_all(struct spool *s, int fd, struct iovec *iov, int n, uint64_t *written)
{
    while (n > 0 && iov->iov_len == 0) {
        iov++;
        n--;
    }
    while (n > 0) {
        int err = spool_fault_check(&s->fault, SPOOL_FAULT_WRITE);
        ssize_t r;

        if (err != 0) {
            return err;
        }
        r = writev(fd, iov, n);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        if (r == 0) {
            return -EIO;
        }
        *written += (uint64_t)r;
        while (n > 0 && (size_t)r >= iov->iov_len) {
            r -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + r;
            iov->iov_len -= (size_t)r;
        }
    }
    return 0;
}

static int
spool_pwrite_all(struct spool *s, enum spool_fault_op op, int fd, const void *p, size_t len,
                 uint64_t off)
{
    while (len > 0) {
        int err = spool_fault_check(&s->fault, op);
        ssize_t r;

        if (err != 0) {
            return err;
        }
        r = pwrite(fd, p, len, (off_t)off);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        if (r == 0) {
            return -EIO;
        }
        p = (const char *)p + r;
        len -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

static int
spool_fdatasync(struct spool *s, int fd)
{
    int err = spool_fault_check(&s->fault, SPOOL_FAULT_FSYNC);

    atomic_fetch_add_explicit(&s->c.fsyncs, 1, memory_order_relaxed);
    if (err != 0) {
        return err;
    }
    while (fdatasync(fd) != 0) {
        if (errno != EINTR) {
            return -errno;
        }
    }
    return 0;
}

/* Unlinks rel (relative to the base); ENOENT is success. */
static int
spool_unlink(struct spool *s, const char *rel)
{
    int err = spool_fault_check(&s->fault, SPOOL_FAULT_UNLINK);

    if (err == 0 && unlinkat(s->base_fd, rel, 0) != 0 && errno != ENOENT) {
        err = -errno;
    }
    if (err != 0) {
        log_error("spool_unlink_failed path=%s/%s error=\"%s\"", s->base, rel, err_str(err));
    }
    return err;
}

/* ---- Directories ---- */

static void
spool_dir_init(struct spool *s, struct spool_dir *d, struct spool_dir *parent, const char *rel,
               bool fanout)
{
    d->s = s;
    d->parent = parent;
    (void)snprintf(d->rel, sizeof(d->rel), "%s", rel);
    d->children = fanout ? xcalloc(SPOOL_DIR_FANOUT, sizeof(*d->children)) : NULL;
    atomic_init(&d->ready, false);
    atomic_init(&d->gen, 0);
    atomic_init(&d->synced, 0);
    atomic_init(&d->failed, 0);
    atomic_init(&d->failed_err, 0);
    atomic_init(&d->gen_in_parent, 0);
    pthread_mutex_init(&d->lock, NULL);
    list_init(&d->waiters);
    d->syncing = false;
}

static void
spool_dir_release(struct spool_dir *d)
{
    if (d->children != NULL) {
        for (unsigned i = 0; i < SPOOL_DIR_FANOUT; i++) {
            struct spool_dir *c = atomic_load(&d->children[i]);

            if (c != NULL) {
                spool_dir_release(c);
                free(c);
            }
        }
        free(d->children);
        d->children = NULL;
    }
    assert(list_empty(&d->waiters) && !d->syncing);
    pthread_mutex_destroy(&d->lock);
}

static int
spool_fsync_dir(struct spool *s, struct spool_dir *d)
{
    int fd, err = spool_fault_check(&s->fault, SPOOL_FAULT_DIRSYNC);

    atomic_fetch_add_explicit(&s->c.dir_fsyncs, 1, memory_order_relaxed);
    if (err != 0) {
        return err;
    }
    if (d->parent == NULL) {
        return fsync(s->base_fd) == 0 ? 0 : -errno;
    }
    fd = openat(s->base_fd, d->rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    if (fsync(fd) != 0) {
        err = -errno;
    }
    spool_close_fd(&fd);
    return err;
}

/* After an fsync of d that read generation g: record the outcome. Under d->lock. */
static void
spool_dir_synced(struct spool *s, struct spool_dir *d, uint64_t g, int err)
{
    if (err == 0) {
        atomic_store_explicit(&d->synced, g, memory_order_release);
        return;
    }
    log_error("spool_dir_sync_failed path=%s/%s error=\"%s\"", s->base, d->rel, err_str(err));
    atomic_store(&d->failed_err, err);
    atomic_store(&d->failed, g);
}

/* Whether the entry of generation need in d is durable: 1, 0 (not yet) or an error. */
static int
spool_dir_covered(struct spool_dir *d, uint64_t need)
{
    if (atomic_load_explicit(&d->failed, memory_order_acquire) >= need) {
        return atomic_load(&d->failed_err); /* may be lost whatever fsync says later */
    }
    return atomic_load_explicit(&d->synced, memory_order_acquire) >= need;
}

/* Makes the entries of d up to generation need durable, blocking. On a pool thread. */
static int
spool_dir_sync_to(struct spool *s, struct spool_dir *d, uint64_t need)
{
    uint64_t g;
    int err = spool_dir_covered(d, need);

    if (err != 0) {
        return err < 0 ? err : 0;
    }
    pthread_mutex_lock(&d->lock);
    err = spool_dir_covered(d, need); /* someone may have synced for us while we waited */
    if (err == 0) {
        g = atomic_load(&d->gen); /* every entry counted here exists already */
        err = spool_fsync_dir(s, d);
        spool_dir_synced(s, d, g, err);
    }
    pthread_mutex_unlock(&d->lock);
    return err < 0 ? err : 0;
}

/* The links of leaf d up to the base (its AA in the base, d in its AA). */
static int
spool_dir_sync_links(struct spool *s, struct spool_dir *d)
{
    for (; d->parent != NULL; d = d->parent) {
        int err = spool_dir_sync_to(s, d->parent, atomic_load(&d->gen_in_parent));

        if (err != 0) {
            return err;
        }
    }
    return 0;
}

/* mkdir under the base (EEXIST is fine), then chown when asked. Under dir_lock. */
static int
spool_dir_create(struct spool *s, struct spool_dir *d)
{
    if (mkdirat(s->base_fd, d->rel, s->dir_mode) != 0) {
        if (errno != EEXIST) {
            return -errno;
        }
    } else if ((s->uid != (uid_t)-1 || s->gid != (gid_t)-1) &&
               fchownat(s->base_fd, d->rel, s->uid, s->gid, AT_SYMLINK_NOFOLLOW) != 0) {
        return -errno;
    }
    /* Found or made, its entry in the parent is synced once per run (it may be new). */
    atomic_store(&d->gen_in_parent, atomic_fetch_add(&d->parent->gen, 1) + 1);
    atomic_store_explicit(&d->ready, true, memory_order_release);
    return 0;
}

static struct spool_dir *
spool_dir_child(struct spool_dir *parent, unsigned i, const char *rel, bool fanout)
{
    struct spool_dir *d = atomic_load(&parent->children[i]);

    if (d == NULL) {
        d = XNEW(struct spool_dir);
        spool_dir_init(parent->s, d, parent, rel, fanout);
        atomic_store_explicit(&parent->children[i], d, memory_order_release);
    }
    return d;
}

static struct spool_dir *
spool_dir_make(struct spool *s, struct spool_id id, int *err)
{
    unsigned a = spool_id_dir1(id), b = spool_id_dir2(id);
    struct spool_dir *top, *leaf;
    char rel[8];

    pthread_mutex_lock(&s->dir_lock);
    (void)snprintf(rel, sizeof(rel), "%02X", a);
    top = spool_dir_child(&s->root, a, rel, true);
    (void)snprintf(rel, sizeof(rel), "%02X/%02X", a, b);
    leaf = spool_dir_child(top, b, rel, false);
    *err = 0;
    if (!atomic_load(&top->ready)) {
        *err = spool_dir_create(s, top);
    }
    if (*err == 0 && !atomic_load(&leaf->ready)) {
        *err = spool_dir_create(s, leaf);
    }
    pthread_mutex_unlock(&s->dir_lock);
    if (*err != 0) {
        log_error("spool_mkdir_failed path=%s/%s error=\"%s\"", s->base, leaf->rel, err_str(*err));
        return NULL;
    }
    return leaf;
}

/* The existing AA/BB directory of id, made on demand. */
static struct spool_dir *
spool_dir_get(struct spool *s, struct spool_id id, int *err)
{
    struct spool_dir *top, *leaf = NULL;

    top = atomic_load_explicit(&s->root.children[spool_id_dir1(id)], memory_order_acquire);
    if (top != NULL) {
        leaf = atomic_load_explicit(&top->children[spool_id_dir2(id)], memory_order_acquire);
    }
    if (leaf != NULL && atomic_load_explicit(&leaf->ready, memory_order_acquire)) {
        return leaf;
    }
    return spool_dir_make(s, id, err);
}

/* Someone removed leaf or its parent: recreate both on next use. */
static void
spool_dir_lost(struct spool *s, struct spool_dir *leaf)
{
    pthread_mutex_lock(&s->dir_lock);
    atomic_store(&leaf->ready, false);
    atomic_store(&leaf->parent->ready, false);
    pthread_mutex_unlock(&s->dir_lock);
}

/* ---- Open and close ---- */

void
spool_jobs_enter(struct spool *s)
{
    pthread_mutex_lock(&s->jobs_lock);
    s->jobs++;
    pthread_mutex_unlock(&s->jobs_lock);
}

void
spool_jobs_leave(struct spool *s)
{
    pthread_mutex_lock(&s->jobs_lock);
    assert(s->jobs > 0);
    if (--s->jobs == 0) {
        pthread_cond_broadcast(&s->jobs_cv);
    }
    pthread_mutex_unlock(&s->jobs_lock);
}

/* Creates base if missing; opens it and takes its lock. */
static int
spool_open_base(struct spool *s)
{
    bool created = false;
    int err;

    if (mkdir(s->base, s->dir_mode) == 0) {
        created = true;
        if ((s->uid != (uid_t)-1 || s->gid != (gid_t)-1) && chown(s->base, s->uid, s->gid) != 0) {
            return -errno;
        }
    } else if (errno != EEXIST) {
        return -errno;
    }
    s->base_fd = open(s->base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->base_fd < 0) {
        return -errno;
    }
    if (created && s->force_fsync && (err = spool_sync_parent_of(s->base)) != 0) {
        return err;
    }
    s->fsync_covers_entry = spool_fs_syncs_new_entries(s->base_fd);
    /* Creating the lock file is the writability check. */
    s->lock_fd = openat(s->base_fd, SPOOL_LOCK_FILE, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->lock_fd < 0) {
        return -errno;
    }
    while (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) {
            return CELER_EBUSY;
        }
        if (errno != EINTR) {
            return -errno;
        }
    }
    if (faccessat(s->base_fd, SPOOL_CLEAN_FILE, F_OK, 0) == 0) {
        s->was_clean = true;
        /* Gone for good before anything is written: a crash must not find it. */
        if (unlinkat(s->base_fd, SPOOL_CLEAN_FILE, 0) != 0 || fsync(s->base_fd) != 0) {
            return -errno;
        }
    }
    return 0;
}

struct spool *
spool_open(const struct spool_opts *o, int *err)
{
    struct spool *s;
    int rc;

    if (o->base == NULL || o->base[0] == '\0' || o->io == NULL) {
        rc = -EINVAL;
        log_error("spool_open_failed error=\"%s\"", err_str(rc));
        if (err) {
            *err = rc;
        }
        return NULL;
    }
    s = XNEW(struct spool);
    s->base = xstrdup(o->base);
    s->base_fd = -1;
    s->lock_fd = -1;
    s->dir_mode = o->mode ? o->mode : SPOOL_DEFAULT_MODE;
    s->file_mode = s->dir_mode & 0666;
    s->force_fsync = o->force_fsync;
    s->io = o->io;
    /* Owners we get anyway need no chown (and a zeroed opts as root stays quiet). */
    s->uid = o->uid == geteuid() ? (uid_t)-1 : o->uid;
    s->gid = o->gid == getegid() ? (gid_t)-1 : o->gid;
    if (o->first_id != NULL) {
        spool_idgen_init(&s->idgen, o->first_id->pid, o->first_id->seq);
    } else {
        spool_idgen_init_random(&s->idgen);
    }
    s->first_seq = atomic_load(&s->idgen.next);
    pthread_mutex_init(&s->dir_lock, NULL);
    pthread_mutex_init(&s->jobs_lock, NULL);
    pthread_cond_init(&s->jobs_cv, NULL);
    pthread_mutex_init(&s->foreign_lock, NULL);
    pthread_mutex_init(&s->rm_lock, NULL);
    spool_dir_init(s, &s->root, NULL, ".", true);
    spool_fault_init(&s->fault);
    atomic_store(&s->root.ready, true);
    if (spool_fault_parse(&s->fault, getenv(SPOOL_FAULT_ENV)) != 0) {
        rc = -EINVAL;
        goto fail;
    }
    if ((rc = spool_open_base(s)) != 0) {
        goto fail;
    }
    s->locked = true;
    spool_recycle_init(&s->recycle, s->base_fd, SPOOL_RECYCLE_MAX);
    return s;
fail:
    log_error("spool_open_failed path=%s error=\"%s\"", o->base, err_str(rc));
    spool_close(s); /* not locked: leaves no marker */
    if (err) {
        *err = rc;
    }
    return NULL;
}

/* syncfs, then the marker that lets the next recovery skip body checks. */
static void
spool_mark_clean(struct spool *s)
{
    int fd;

    if (syncfs(s->base_fd) != 0) {
        log_error("spool_sync_failed path=%s error=\"%s\"", s->base, err_str(-errno));
        return;
    }
    fd = openat(s->base_fd, SPOOL_CLEAN_FILE, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || fsync(s->base_fd) != 0) {
        log_error("spool_mark_clean_failed path=%s error=\"%s\"", s->base, err_str(-errno));
    }
    if (fd >= 0) {
        spool_close_fd(&fd);
    }
}

void
spool_close(struct spool *s)
{
    if (s == NULL) {
        return;
    }
    pthread_mutex_lock(&s->jobs_lock);
    while (s->jobs > 0) {
        pthread_cond_wait(&s->jobs_cv, &s->jobs_lock);
    }
    pthread_mutex_unlock(&s->jobs_lock);
    assert(atomic_load(&s->c.writers) == 0);
    if (s->recycle.ready) {
        spool_recycle_release(&s->recycle);
    }
    if (s->locked) {
        spool_mark_clean(s);
    }
    spool_close_fd(&s->lock_fd); /* releases the lock */
    spool_close_fd(&s->base_fd);
    spool_dir_release(&s->root);
    spool_fault_release(&s->fault);
    pthread_mutex_destroy(&s->rm_lock);
    pthread_mutex_destroy(&s->foreign_lock);
    pthread_cond_destroy(&s->jobs_cv);
    pthread_mutex_destroy(&s->jobs_lock);
    pthread_mutex_destroy(&s->dir_lock);
    free(s->rm_ids);
    free(s->foreign);
    free(s->base);
    free(s);
}

const char *
spool_base(const struct spool *s)
{
    return s->base;
}

int
spool_base_fd(const struct spool *s)
{
    return s->base_fd;
}

struct pool *
spool_io(const struct spool *s)
{
    return s->io;
}

bool
spool_was_clean(const struct spool *s)
{
    return s->was_clean;
}

int
spool_set_fault(struct spool *s, const char *spec)
{
    return spool_fault_parse(&s->fault, spec);
}

void
spool_get_stats(struct spool *s, struct spool_stats *out)
{
    *out = (struct spool_stats){
        .committed = atomic_load(&s->c.committed),
        .committed_bytes = atomic_load(&s->c.committed_bytes),
        .commit_failed = atomic_load(&s->c.commit_failed),
        .aborted = atomic_load(&s->c.aborted),
        .fsyncs = atomic_load(&s->c.fsyncs),
        .dir_fsyncs = atomic_load(&s->c.dir_fsyncs),
        .commit_latency_us = atomic_load(&s->c.commit_latency_us),
        .progress_appends = atomic_load(&s->c.progress_appends),
        .removed = atomic_load(&s->c.removed),
        .writers = atomic_load(&s->c.writers),
    };
}

/* ---- Ids of this run ---- */

static void
spool_note_foreign(struct spool *s, struct spool_id id)
{
    pthread_mutex_lock(&s->foreign_lock);
    if (s->nforeign < SPOOL_FOREIGN_MAX) {
        s->foreign = xgrow(s->foreign, &s->foreign_cap, s->nforeign + 1, sizeof(*s->foreign));
        s->foreign[s->nforeign++] = id;
    }
    pthread_mutex_unlock(&s->foreign_lock);
}

bool
spool_id_is_ours(struct spool *s, struct spool_id id)
{
    uint32_t handed = atomic_load(&s->idgen.next) - s->first_seq;
    bool ours;

    if (id.pid != s->idgen.pid || id.seq - s->first_seq >= handed) {
        return false;
    }
    pthread_mutex_lock(&s->foreign_lock);
    ours = true;
    for (size_t i = 0; i < s->nforeign && ours; i++) {
        ours = spool_id_cmp(s->foreign[i], id) != 0;
    }
    pthread_mutex_unlock(&s->foreign_lock);
    return ours;
}

/* ---- Writer ---- */

static size_t
spool_env_strings_len(const struct spool_envelope *e)
{
    size_t n = e->sender.len + e->envid.len + e->protocol.len + e->source_ip.len + e->helo.len +
               e->auth_user.len + e->listener.len + e->binding_group.len + e->binding.len;

    for (size_t i = 0; i < e->rcpt_count; i++) {
        n += e->rcpts[i].addr.len + e->rcpts[i].orcpt_type.len + e->rcpts[i].orcpt_addr.len;
    }
    return n;
}

/* Copies s into the blob at *cur; absent stays absent, empty stays empty. */
static struct strv
spool_blob_put(char **cur, struct strv s)
{
    struct strv r;

    if (s.ptr == NULL) {
        return STRV_NULL;
    }
    if (s.len > 0) {
        memcpy(*cur, s.ptr, s.len);
    }
    r = strv_make(*cur, s.len);
    *cur += s.len;
    return r;
}

/* The writer's own copy of the envelope, its id set to the writer's. */
static void
spool_writer_copy_env(struct spool_writer *w, const struct spool_envelope *e)
{
    char *cur;

    w->env = *e;
    w->env_blob = xmalloc(spool_env_strings_len(e) + 1);
    cur = w->env_blob;
    w->env.id = strv_from_cstr(w->id_text);
    w->env.sender = spool_blob_put(&cur, e->sender);
    w->env.envid = spool_blob_put(&cur, e->envid);
    w->env.protocol = spool_blob_put(&cur, e->protocol);
    w->env.source_ip = spool_blob_put(&cur, e->source_ip);
    w->env.helo = spool_blob_put(&cur, e->helo);
    w->env.auth_user = spool_blob_put(&cur, e->auth_user);
    w->env.listener = spool_blob_put(&cur, e->listener);
    w->env.binding_group = spool_blob_put(&cur, e->binding_group);
    w->env.binding = spool_blob_put(&cur, e->binding);
    w->rcpts = e->rcpt_count ? xcalloc(e->rcpt_count, sizeof(*w->rcpts)) : NULL;
    for (size_t i = 0; i < e->rcpt_count; i++) {
        w->rcpts[i] = e->rcpts[i];
        w->rcpts[i].addr = spool_blob_put(&cur, e->rcpts[i].addr);
        w->rcpts[i].orcpt_type = spool_blob_put(&cur, e->rcpts[i].orcpt_type);
        w->rcpts[i].orcpt_addr = spool_blob_put(&cur, e->rcpts[i].orcpt_addr);
    }
    w->env.rcpts = w->rcpts;
}

/* Creates the file of w->id: -EEXIST means "take another id". */
static int
spool_writer_create(struct spool_writer *w)
{
    struct spool *s = w->s;
    int err;

    for (int tries = 0;; tries++) {
        w->reused = 0;
        w->dir = spool_dir_get(s, w->id, &err);
        if (w->dir == NULL) {
            return err;
        }
        if ((err = spool_fault_check(&s->fault, SPOOL_FAULT_OPEN)) != 0) {
            return err;
        }
        err = spool_recycle_take(&s->recycle, w->path, &w->reused); /* a parked file, if any */
        if (err == 0) {
            w->fd = openat(s->base_fd, w->path, O_WRONLY | O_CLOEXEC);
        } else if (err == -EEXIST) {
            return err;
        } else {
            w->fd =
                openat(s->base_fd, w->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, s->file_mode);
        }
        if (w->fd >= 0) {
            break;
        }
        err = -errno;
        if (err != -ENOENT || tries > 0) {
            return err;
        }
        spool_dir_lost(s, w->dir); /* removed behind our back: make it again */
    }
    /* After the entry exists: a dir fsync that reads this generation covers it. */
    w->gen = atomic_fetch_add(&w->dir->gen, 1) + 1;
    return 0;
}

struct spool_writer *
spool_writer_begin(struct spool *s, const struct spool_envelope *env, char id_out[SPOOL_ID_SIZE],
                   int *err)
{
    struct spool_writer *w = XNEW(struct spool_writer);
    struct spool_envelope e = *env;
    int rc;

    w->s = s;
    w->fd = -1;
    buf_init(&w->out, BUF_UNLIMITED);
    for (int attempt = 0;; attempt++) {
        w->id = spool_idgen_next(&s->idgen);
        e.id = strv_make(w->id_text, spool_id_format(w->id, w->id_text));
        spool_id_path(w->id, w->path);
        buf_reset(&w->out);
        /* Encoded first, so an envelope the format refuses leaves nothing on disk. */
        if ((rc = spool_enc_begin(&w->enc, &w->out, &e)) != 0) {
            goto fail;
        }
        rc = spool_writer_create(w);
        if (rc != -EEXIST) {
            break;
        }
        spool_note_foreign(s, w->id); /* a file of an earlier run with our pid */
        if (attempt + 1 == SPOOL_CREATE_ATTEMPTS) {
            goto fail;
        }
    }
    if (rc != 0) {
        goto fail;
    }
    spool_writer_copy_env(w, env);
    atomic_fetch_add(&s->c.writers, 1);
    memcpy(id_out, w->id_text, SPOOL_ID_SIZE);
    return w;
fail:
    log_error("spool_create_failed path=%s/%s error=\"%s\"", s->base, w->path, err_str(rc));
    buf_release(&w->out);
    free(w);
    if (err) {
        *err = rc;
    }
    return NULL;
}

static int
spool_writer_fail(struct spool_writer *w, int err)
{
    if (w->err == 0) {
        w->err = err;
    }
    return w->err;
}

int
spool_writer_write(struct spool_writer *w, const void *p, size_t len)
{
    struct iovec iov[2];
    int err;

    if (w->err != 0) {
        return w->err;
    }
    assert(w->state == SPOOL_WRITER_WRITING);
    if (len == 0) {
        return 0;
    }
    spool_enc_body(&w->enc, p, len);
    if (buf_len(&w->out) + len <= SPOOL_WRITE_BUF) {
        buf_append(&w->out, p, len);
        return 0;
    }
    iov[0] = (struct iovec){w->out.data + w->out.start, w->out.len};
    iov[1] = (struct iovec){(void *)(uintptr_t)p, len}; /* writev does not write to it */
    if ((err = spool_writev_all(w->s, w->fd, iov, 2, &w->written)) != 0) {
        return spool_writer_fail(w, err);
    }
    buf_reset(&w->out);
    return 0;
}

int
spool_writer_finish(struct spool_writer *w, struct strv prepend)
{
    uint8_t body_hdr[SPOOL_BODY_HDR_LEN];
    struct iovec iov;
    bool patched;
    int err;

    if (w->err != 0) {
        return w->err;
    }
    assert(w->state == SPOOL_WRITER_WRITING);
    if ((err = spool_enc_finish(&w->enc, &w->out, prepend, body_hdr)) != 0) {
        return spool_writer_fail(w, err);
    }
    /* The whole file in the buffer: patch it there, one write; but not over a reused file,
     * where a write torn by kill -9 would leave a final BODY record before stale bytes. */
    patched = w->written == 0 && w->reused == 0;
    if (patched) {
        memcpy(w->out.data + w->out.start + w->enc.body_hdr_off, body_hdr, sizeof(body_hdr));
    }
    if (w->reused > w->written + w->out.len) {
        /* A reused file longer than this message: cut the stale rest before END exists,
         * so that no old byte ever follows END (spool_recycle.h). */
        if (ftruncate(w->fd, (off_t)(w->written + w->out.len)) != 0) {
            return spool_writer_fail(w, -errno);
        }
    }
    iov = (struct iovec){w->out.data + w->out.start, w->out.len};
    err = spool_writev_all(w->s, w->fd, &iov, 1, &w->written);
    if (err == 0 && !patched) {
        err = spool_pwrite_all(w->s, SPOOL_FAULT_PWRITE, w->fd, body_hdr, sizeof(body_hdr),
                               w->enc.body_hdr_off);
    }
    if (err != 0) {
        return spool_writer_fail(w, err);
    }
    buf_release(&w->out);
    w->prepend = xmalloc(prepend.len + 1);
    if (prepend.len > 0) {
        memcpy(w->prepend, prepend.ptr, prepend.len);
    }
    w->prepend[prepend.len] = '\0';
    w->prepend_len = prepend.len;
    w->state = SPOOL_WRITER_FINISHED;
    return 0;
}

static void
spool_writer_free(struct spool_writer *w)
{
    struct spool *s = w->s;

    spool_close_fd(&w->fd);
    buf_release(&w->out);
    free(w->env_blob);
    free(w->rcpts);
    free(w->prepend);
    free(w);
    atomic_fetch_sub(&s->c.writers, 1);
}

/* On the caller's loop. */
static void
spool_commit_done(struct loop *lp, void *arg)
{
    struct spool_writer *w = arg;
    struct spool *s = w->s;

    (void)lp;
    if (w->err == 0) {
        atomic_fetch_add_explicit(&s->c.committed, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&s->c.committed_bytes, w->enc.file_len, memory_order_relaxed);
        atomic_fetch_add_explicit(&s->c.commit_latency_us, clock_mono_us() - w->commit_start_us,
                                  memory_order_relaxed);
    } else {
        atomic_fetch_add_explicit(&s->c.commit_failed, 1, memory_order_relaxed);
        log_error("spool_commit_failed mid=%s error=\"%s\"", w->id_text, err_str(w->err));
    }
    w->cb(w, w->err, w->cb_arg);
    spool_writer_free(w);
    spool_jobs_leave(s);
}

static void
spool_commit_post(struct spool_writer *w)
{
    loop_msg_init(&w->msg, spool_commit_done, w);
    loop_post_msg(w->lp, &w->msg);
}

/* The file and its entry are synced (or err): its directory's links, then the loop. */
static void
spool_commit_finish(struct spool_writer *w, int err)
{
    struct spool *s = w->s;

    if (err == 0 && (err = spool_dir_sync_links(s, w->dir)) != 0) {
        spool_dir_lost(s, w->dir); /* the next writer links the directory again */
    }
    if (err != 0) {
        (void)spool_unlink(s, w->path); /* logged; recovery removes what stays */
        w->err = err;
    }
    spool_commit_post(w);
}

/* The leaf's dir sync job: one fsync, then release whoever it covered. */
static void
spool_dir_sync_work(void *arg)
{
    struct spool_dir *d = arg;
    struct list_node covered, *n, *tmp;
    uint64_t g = atomic_load(&d->gen); /* every entry counted here exists already */
    int err = spool_fsync_dir(d->s, d);

    list_init(&covered);
    pthread_mutex_lock(&d->lock);
    spool_dir_synced(d->s, d, g, err);
    LIST_FOREACH_SAFE(n, tmp, &d->waiters)
    {
        if (container_of(n, struct spool_writer, wait_node)->gen <= g) {
            list_remove(n);
            list_push_back(&covered, n);
        }
    }
    pthread_mutex_unlock(&d->lock);
    LIST_FOREACH_SAFE(n, tmp, &covered)
    {
        list_remove(n);
        spool_commit_finish(container_of(n, struct spool_writer, wait_node), err);
    }
}

/* Right after the work, on the pool thread: again for late waiters, or stop. */
static void
spool_dir_sync_done(struct loop *lp, void *arg)
{
    struct spool_dir *d = arg;
    struct spool *s = d->s;
    bool again;

    (void)lp;
    pthread_mutex_lock(&d->lock);
    again = !list_empty(&d->waiters);
    d->syncing = again;
    pthread_mutex_unlock(&d->lock);
    if (again) {
        pool_submit(s->io, &d->job, NULL, spool_dir_sync_work, spool_dir_sync_done, d);
    } else {
        spool_jobs_leave(s);
    }
}

/*
 * A commit starts: if its entry is not covered yet and no dir sync runs,
 * start one now, so that it overlaps the file's fdatasync instead of
 * following it.
 */
static void
spool_commit_kick_dir(struct spool_writer *w)
{
    struct spool_dir *d = w->dir;
    struct spool *s = w->s;
    bool start = false;

    if (spool_dir_covered(d, w->gen) != 0) {
        return;
    }
    pthread_mutex_lock(&d->lock);
    if (!d->syncing && spool_dir_covered(d, w->gen) == 0) {
        d->syncing = start = true;
    }
    pthread_mutex_unlock(&d->lock);
    if (start) {
        spool_jobs_enter(s);
        pool_submit(s->io, &d->job, NULL, spool_dir_sync_work, spool_dir_sync_done, d);
    }
}

/* The file is synced: finish if its entry is durable already, else wait for a dir sync. */
static void
spool_commit_wait_dir(struct spool_writer *w)
{
    struct spool_dir *d = w->dir;
    struct spool *s = w->s;
    bool start = false;
    int covered;

    pthread_mutex_lock(&d->lock);
    covered = spool_dir_covered(d, w->gen);
    if (covered == 0) {
        list_push_back(&d->waiters, &w->wait_node);
        start = !d->syncing;
        d->syncing = true;
    }
    pthread_mutex_unlock(&d->lock);
    if (covered != 0) {
        spool_commit_finish(w, covered < 0 ? covered : 0);
    } else if (start) {
        spool_jobs_enter(s);
        pool_submit(s->io, &d->job, NULL, spool_dir_sync_work, spool_dir_sync_done, d);
    }
}

/* In the pool: sync the file, or remove it after an earlier error. */
static void
spool_commit_work(void *arg)
{
    struct spool_writer *w = arg;
    struct spool *s = w->s;
    int err = w->err;

    if (err == 0 && s->force_fsync) {
        err = spool_fdatasync(s, w->fd);
    }
    spool_close_fd(&w->fd);
    if (err != 0) {
        (void)spool_unlink(s, w->path); /* logged; recovery removes what stays */
        w->err = err;
    }
}

/* Right after the work, on the pool thread (no origin loop). */
static void
spool_commit_synced(struct loop *lp, void *arg)
{
    struct spool_writer *w = arg;

    (void)lp;
    if (w->err != 0 || !w->s->force_fsync) {
        spool_commit_post(w);
        return;
    }
    if (w->s->fsync_covers_entry) {
        spool_commit_finish(w, 0); /* the name is as durable as the file (see above) */
        return;
    }
    spool_commit_wait_dir(w);
}

void
spool_writer_commit(struct spool_writer *w, struct loop *lp, spool_commit_fn *cb, void *arg)
{
    struct spool *s = w->s;

    assert(w->state == SPOOL_WRITER_FINISHED || w->err != 0);
    assert(lp != NULL && cb != NULL);
    w->state = SPOOL_WRITER_COMMITTING;
    w->lp = lp;
    w->cb = cb;
    w->cb_arg = arg;
    w->commit_start_us = clock_mono_us();
    spool_jobs_enter(s);
    if (w->err == 0 && !s->force_fsync) {
        spool_close_fd(&w->fd); /* nothing blocking to do: straight back to the loop */
        spool_commit_post(w);
        return;
    }
    if (w->err == 0 && !s->fsync_covers_entry) {
        spool_commit_kick_dir(w);
    }
    pool_submit(s->io, &w->job, NULL, spool_commit_work, spool_commit_synced, w);
}

static void
spool_abort_work(void *arg)
{
    struct spool_writer *w = arg;

    spool_close_fd(&w->fd);
    (void)spool_unlink(w->s, w->path); /* logged; recovery removes what stays */
}

/* On the pool thread, right after the work (no origin loop). */
static void
spool_abort_done(struct loop *lp, void *arg)
{
    struct spool_writer *w = arg;
    struct spool *s = w->s;

    (void)lp;
    atomic_fetch_add_explicit(&s->c.aborted, 1, memory_order_relaxed);
    spool_writer_free(w);
    spool_jobs_leave(s);
}

void
spool_writer_abort(struct spool_writer *w)
{
    if (w == NULL) {
        return;
    }
    assert(w->state != SPOOL_WRITER_COMMITTING);
    w->state = SPOOL_WRITER_COMMITTING; /* no further use */
    spool_jobs_enter(w->s);
    pool_submit(w->s->io, &w->job, NULL, spool_abort_work, spool_abort_done, w);
}

struct spool_id
spool_writer_id(const struct spool_writer *w)
{
    return w->id;
}

const char *
spool_writer_id_text(const struct spool_writer *w)
{
    return w->id_text;
}

const struct spool_envelope *
spool_writer_envelope(const struct spool_writer *w)
{
    return &w->env;
}

struct strv
spool_writer_prepend(const struct spool_writer *w)
{
    return w->prepend ? strv_make(w->prepend, w->prepend_len) : STRV_NULL;
}

uint64_t
spool_writer_body_off(const struct spool_writer *w)
{
    return w->enc.body_off;
}

uint64_t
spool_writer_body_len(const struct spool_writer *w)
{
    return w->enc.body_len;
}

uint64_t
spool_writer_file_len(const struct spool_writer *w)
{
    return w->enc.file_len;
}

/* ---- Progress ---- */

struct spool_append {
    struct spool *s; /* borrowed */
    struct spool_id id;
    struct buf rec; /* owned: the encoded PROGRESS record */
    bool has_updates;
    uint32_t max_index; /* highest recipient index updated */
    int err;
    spool_done_fn *cb;
    void *arg; /* borrowed */
    struct pool_job job;
};

static int
spool_pread_cb(void *arg, uint64_t off, void *dst, size_t len)
{
    int fd = *(const int *)arg;

    while (len > 0) {
        ssize_t r = pread(fd, dst, len, (off_t)off);

        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        if (r == 0) {
            return -EIO; /* the file shrank under us */
        }
        dst = (char *)dst + r;
        len -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

/* Decodes the message in fd (no body read) and checks it is id's. */
static int
spool_decode_fd(int fd, struct spool_id id, struct spool_msg *m, uint64_t *size)
{
    struct spool_source src = {.read = spool_pread_cb, .arg = &fd};
    char text[SPOOL_ID_SIZE];
    struct stat st;
    size_t n = spool_id_format(id, text);
    int err;

    *m = (struct spool_msg){0};
    if (fstat(fd, &st) != 0) {
        return -errno;
    }
    src.size = (uint64_t)st.st_size;
    *size = src.size;
    if ((err = spool_decode(&src, 0, m)) != 0) {
        return err;
    }
    if (!strv_eq(m->env.id, strv_make(text, n))) {
        return CELER_ECORRUPT;
    }
    return 0;
}

static int
spool_append_apply(struct spool_append *a, int fd)
{
    struct spool *s = a->s;
    struct spool_msg m;
    uint64_t off, size = 0;
    int err = spool_decode_fd(fd, a->id, &m, &size);

    if (err == 0 && a->has_updates && a->max_index >= m.env.rcpt_count) {
        err = -EINVAL; /* the reader would take the whole file for corrupt */
    }
    off = m.valid_len;
    spool_msg_release(&m);
    if (err != 0) {
        return err;
    }
    /* A torn record (crash, failed append) must not stay before the new one. */
    if (size > off && ftruncate(fd, (off_t)off) != 0) {
        return -errno;
    }
    err = spool_pwrite_all(s, SPOOL_FAULT_WRITE, fd, buf_data(&a->rec).ptr, buf_len(&a->rec), off);
    if (err == 0 && s->force_fsync) {
        err = spool_fdatasync(s, fd);
    }
    if (err != 0 && ftruncate(fd, (off_t)off) != 0) {
        log_error("spool_truncate_failed path=%s error=\"%s\"", s->base, err_str(-errno));
    }
    return err;
}

static void
spool_append_work(void *arg)
{
    struct spool_append *a = arg;
    char path[SPOOL_ID_PATH_SIZE];
    int fd;

    if (a->err != 0) {
        return;
    }
    spool_id_path(a->id, path);
    fd = openat(a->s->base_fd, path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        a->err = -errno;
        return;
    }
    a->err = spool_append_apply(a, fd);
    spool_close_fd(&fd);
    if (a->err != 0) {
        log_error("spool_progress_failed path=%s/%s error=\"%s\"", a->s->base, path,
                  spool_err_str(a->err));
    }
}

static void
spool_append_done(struct loop *lp, void *arg)
{
    struct spool_append *a = arg;
    struct spool *s = a->s;

    (void)lp;
    if (a->err == 0) {
        atomic_fetch_add_explicit(&s->c.progress_appends, 1, memory_order_relaxed);
    }
    a->cb(a->err, a->arg);
    buf_release(&a->rec);
    free(a);
    spool_jobs_leave(s);
}

void
spool_progress_append(struct spool *s, struct spool_id id, const struct spool_progress *p,
                      struct loop *lp, spool_done_fn *cb, void *arg)
{
    struct spool_append *a = XNEW(struct spool_append);

    assert(lp != NULL && cb != NULL);
    a->s = s;
    a->id = id;
    a->cb = cb;
    a->arg = arg;
    buf_init(&a->rec, BUF_UNLIMITED);
    a->err = spool_progress_encode(&a->rec, p);
    if (a->err == CELER_ELIMIT) {
        a->err = -EINVAL;
    }
    for (size_t i = 0; i < p->update_count; i++) {
        a->has_updates = true;
        if (p->updates[i].index > a->max_index) {
            a->max_index = p->updates[i].index;
        }
    }
    spool_jobs_enter(s);
    pool_submit(s->io, &a->job, lp, spool_append_work, spool_append_done, a);
}

/* ---- Remove ---- */

static void
spool_remove_work(void *arg)
{
    struct spool *s = arg;

    for (;;) {
        struct spool_rm *ids;
        size_t n;

        pthread_mutex_lock(&s->rm_lock);
        ids = s->rm_ids;
        n = s->rm_len;
        s->rm_ids = NULL;
        s->rm_len = s->rm_cap = 0;
        pthread_mutex_unlock(&s->rm_lock);
        if (n == 0) {
            free(ids);
            return;
        }
        for (size_t i = 0; i < n; i++) {
            char path[SPOOL_ID_PATH_SIZE];

            spool_id_path(ids[i].id, path);
            /* kept without END: should parking not reach the disk whole, what is left
             * reads as incomplete, never as the finished message without its progress */
            uint64_t keep = ids[i].msg_len > SPOOL_END_LEN ? ids[i].msg_len - SPOOL_END_LEN : 0;

            if (spool_recycle_put(&s->recycle, path, keep) || spool_unlink(s, path) == 0) {
                atomic_fetch_add_explicit(&s->c.removed, 1, memory_order_relaxed);
            }
        }
        free(ids);
    }
}

/* Right after the work on the pool thread: stop, or go again for late arrivals. */
static void
spool_remove_done(struct loop *lp, void *arg)
{
    struct spool *s = arg;
    bool again;

    (void)lp;
    pthread_mutex_lock(&s->rm_lock);
    again = s->rm_len > 0;
    s->rm_running = again;
    pthread_mutex_unlock(&s->rm_lock);
    if (again) {
        pool_submit(s->io, &s->rm_job, NULL, spool_remove_work, spool_remove_done, s);
    } else {
        spool_jobs_leave(s);
    }
}

void
spool_remove(struct spool *s, struct spool_id id, uint64_t msg_len)
{
    bool start;

    pthread_mutex_lock(&s->rm_lock);
    s->rm_ids = xgrow(s->rm_ids, &s->rm_cap, s->rm_len + 1, sizeof(*s->rm_ids));
    s->rm_ids[s->rm_len++] = (struct spool_rm){id, msg_len};
    start = !s->rm_running;
    s->rm_running = true;
    pthread_mutex_unlock(&s->rm_lock);
    if (start) {
        spool_jobs_enter(s);
        pool_submit(s->io, &s->rm_job, NULL, spool_remove_work, spool_remove_done, s);
    }
}

int
spool_open_message(struct spool *s, struct spool_id id)
{
    char path[SPOOL_ID_PATH_SIZE];
    int fd;

    spool_id_path(id, path);
    fd = openat(s->base_fd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    return fd >= 0 ? fd : -errno;
}
