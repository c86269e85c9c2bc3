/*
 * log_writer: the log writer thread (see log_writer.h).
 */
#include "log/log_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/mem.h"

#define LOG_PENDING_MAX (64u * 1024 * 1024)
#define LOG_BATCH_NS    20000000L /* how long lines gather before a write (20 ms) */

struct log_file {
    struct log_writer *w; /* borrowed */
    char *path;           /* owned */
    int fd;               /* written only by the writer thread (or before it sees the file) */
    int reopen_fd;        /* guarded by lock: a freshly reopened descriptor to switch to, or -1 */
    mode_t mode;
    struct buf pending; /* guarded by w->lock */
    uint64_t dropped;   /* guarded by w->lock */
    struct log_file *next;
};

struct log_writer {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;    /* work arrived or stop */
    pthread_cond_t idle;    /* a batch was written */
    struct log_file *files; /* owned list */
    uint64_t appended;      /* sequence of appends, guarded by lock */
    uint64_t written;       /* appends known written, guarded by lock */
    bool sleeping;          /* the writer waits for work (signal it) */
    bool flush_now;         /* someone waits for the data: skip the batching pause */
    bool stop;
    bool started;
};

static int
log_write_all(int fd, const char *p, size_t len)
{
    while (len) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Moves every file's pending bytes to disk; called with the lock held, drops it while writing. */
static void
log_writer_drain(struct log_writer *w)
{
    uint64_t upto = w->appended;

    for (struct log_file *f = w->files; f; f = f->next) {
        struct buf batch;
        int fd;

        if (f->reopen_fd >= 0) {
            if (f->fd >= 0) {
                (void)close(f->fd); /* rotated away; everything before was written */
            }
            f->fd = f->reopen_fd;
            f->reopen_fd = -1;
        }
        fd = f->fd;
        if (buf_len(&f->pending) == 0) {
            continue;
        }
        batch = f->pending;
        buf_init(&f->pending, LOG_PENDING_MAX);
        pthread_mutex_unlock(&w->lock);
        if (fd >= 0) {
            (void)log_write_all(fd, buf_data(&batch).ptr, buf_len(&batch)); /* nowhere to report */
        }
        buf_release(&batch);
        pthread_mutex_lock(&w->lock);
    }
    w->written = upto;
    pthread_cond_broadcast(&w->idle);
}

static bool
log_writer_has_work(const struct log_writer *w)
{
    for (const struct log_file *f = w->files; f; f = f->next) {
        if (buf_len(&f->pending) || f->reopen_fd >= 0) {
            return true;
        }
    }
    return false;
}

static void *
log_writer_main(void *arg)
{
    struct log_writer *w = arg;

    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->stop && !log_writer_has_work(w)) {
            w->sleeping = true;
            pthread_cond_wait(&w->wake, &w->lock);
            w->sleeping = false;
        }
        if (!w->stop && !w->flush_now) {
            /* let lines gather for a moment: one write per batch, not per line */
            struct timespec until;

            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += LOG_BATCH_NS;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
            (void)pthread_cond_timedwait(&w->wake, &w->lock, &until); /* woken early: fine */
        }
        w->flush_now = false;
        log_writer_drain(w);
        if (w->stop && !log_writer_has_work(w)) {
            break;
        }
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

struct log_writer *
log_writer_new(int *err)
{
    struct log_writer *w = XNEW(struct log_writer);
    int rc;

    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wake, NULL);
    pthread_cond_init(&w->idle, NULL);
    rc = pthread_create(&w->thread, NULL, log_writer_main, w);
    if (rc != 0) {
        *err = -rc;
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->wake);
        pthread_cond_destroy(&w->idle);
        free(w);
        return NULL;
    }
    pthread_setname_np(w->thread, "celer-logwriter");
    w->started = true;
    return w;
}

void
log_writer_free(struct log_writer *w)
{
    struct log_file *f, *next;

    if (w == NULL) {
        return;
    }
    pthread_mutex_lock(&w->lock);
    w->stop = true;
    w->flush_now = true;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    (void)pthread_join(w->thread, NULL); /* our own thread: cannot fail */
    for (f = w->files; f; f = next) {
        next = f->next;
        if (f->fd >= 0) {
            (void)close(f->fd); /* append-only log, already written */
        }
        if (f->reopen_fd >= 0) {
            (void)close(f->reopen_fd); /* never written to */
        }
        buf_release(&f->pending);
        free(f->path);
        free(f);
    }
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->wake);
    pthread_cond_destroy(&w->idle);
    free(w);
}

static int
log_open_fd(const char *path, mode_t mode, uid_t uid, gid_t gid)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, mode);

    if (fd < 0) {
        return -errno;
    }
    if (uid != (uid_t)-1 && fchown(fd, uid, gid) != 0) {
        int err = -errno;

        (void)close(fd); /* nothing written yet */
        return err;
    }
    return fd;
}

struct log_file *
log_writer_open(struct log_writer *w, const char *path, mode_t mode, uid_t uid, gid_t gid, int *err)
{
    struct log_file *f;
    int fd;

    pthread_mutex_lock(&w->lock);
    for (f = w->files; f; f = f->next) {
        if (strcmp(f->path, path) == 0) {
            pthread_mutex_unlock(&w->lock);
            return f;
        }
    }
    pthread_mutex_unlock(&w->lock);
    fd = log_open_fd(path, mode, uid, gid);
    if (fd < 0) {
        *err = fd;
        return NULL;
    }
    f = XNEW(struct log_file);
    f->w = w;
    f->path = xstrdup(path);
    f->fd = fd;
    f->reopen_fd = -1;
    f->mode = mode;
    buf_init(&f->pending, LOG_PENDING_MAX);
    pthread_mutex_lock(&w->lock);
    f->next = w->files;
    w->files = f;
    pthread_mutex_unlock(&w->lock);
    return f;
}

void
log_file_write(struct log_file *f, const char *line, size_t len)
{
    struct log_writer *w = f->w;
    bool was_empty;
    char *dst;

    pthread_mutex_lock(&w->lock);
    was_empty = buf_len(&f->pending) == 0;
    /* room for the line and its newline at once: never leave a line without its end */
    dst = try_buf_reserve(&f->pending, len + 1, NULL);
    if (dst == NULL) {
        f->dropped++;
    } else {
        memcpy(dst, line, len);
        dst[len] = '\n';
        buf_commit(&f->pending, len + 1);
        w->appended++;
    }
    if (was_empty && w->sleeping) {
        pthread_cond_signal(&w->wake); /* one wake-up per batch, not per line */
    }
    pthread_mutex_unlock(&w->lock);
}

int
log_writer_reopen(struct log_writer *w)
{
    int first = 0;

    log_writer_flush(w); /* what was logged before the rotation belongs in the old files */
    pthread_mutex_lock(&w->lock);
    for (struct log_file *f = w->files; f; f = f->next) {
        int fd = log_open_fd(f->path, f->mode, (uid_t)-1, (gid_t)-1);

        if (fd < 0) {
            if (first == 0) {
                first = fd;
            }
            continue; /* keep writing to the old file */
        }
        if (f->reopen_fd >= 0) {
            (void)close(f->reopen_fd); /* superseded before use */
        }
        f->reopen_fd = fd; /* the writer thread switches over */
    }
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    return first;
}

void
log_writer_flush(struct log_writer *w)
{
    uint64_t target;

    pthread_mutex_lock(&w->lock);
    target = w->appended;
    w->flush_now = true;
    pthread_cond_signal(&w->wake);
    while (w->written < target && !w->stop) {
        pthread_cond_wait(&w->idle, &w->lock);
    }
    pthread_mutex_unlock(&w->lock);
}

uint64_t
log_file_dropped(const struct log_file *f)
{
    return f->dropped;
}

const char *
log_file_path(const struct log_file *f)
{
    return f->path;
}

void
log_paniclog_sink(enum log_level level, const char *line, size_t len, void *arg)
{
    char out[2300];
    int n = snprintf(out, sizeof(out), "%lld:celerd: %s: %.*s", (long long)clock_wall_s(),
                     log_level_name(level), (int)len, line);

    if (n > 0) {
        log_file_write(arg, out, (size_t)n < sizeof(out) ? (size_t)n : sizeof(out) - 1);
    }
}
