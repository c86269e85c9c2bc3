/*
 * spool_recover: the start-up scan (see spool_recover.h).
 *
 * One job lists the base and submits a job per AA directory, which lists it
 * and submits a job per AA/BB directory, which decodes its files. pending
 * counts jobs not yet done (a parent counts its children before it ends, so
 * it never drops to zero early); the job that takes it to zero posts the
 * end to the caller's loop. Counters are atomics: jobs run concurrently.
 */
#include "spool/spool_recover.h"
#include "spool/spool_recycle.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "spool/spool_file.h"

#define SPOOL_QUARANTINE_TRIES 100

struct spool_recover {
    struct spool *s; /* borrowed */
    struct loop *lp; /* borrowed */
    spool_recover_msg_fn *on_msg;
    spool_recover_done_fn *on_done;
    void *arg; /* borrowed */
    bool verify;
    uint64_t start_ms;
    atomic_uint pending; /* scan jobs not done */
    _Atomic uint64_t complete, bytes, tails_damaged, incomplete, corrupt, errors, skipped, in_use,
        dirs;
    atomic_int first_err;
    struct loop_msg done_msg;
};

enum spool_scan_level {
    SPOOL_SCAN_BASE,
    SPOOL_SCAN_TOP,  /* AA */
    SPOOL_SCAN_LEAF, /* AA/BB */
};

struct spool_scan {
    struct pool_job job;
    struct spool_recover *r; /* borrowed */
    enum spool_scan_level level;
    char rel[8]; /* "." , "AA" or "AA/BB" */
    unsigned d1, d2;
};

static void spool_scan_submit(struct spool_recover *r, enum spool_scan_level level, const char *rel,
                              unsigned d1, unsigned d2);

static void
spool_recover_error(struct spool_recover *r, int err)
{
    int none = 0;

    atomic_fetch_add(&r->errors, 1);
    (void)atomic_compare_exchange_strong(&r->first_err, &none, err);
}

/* Two upper-case hex digits, as spool ids name directories. */
static bool
spool_hex2(const char *name, unsigned *out)
{
    unsigned v = 0;

    for (int i = 0; i < 2; i++) {
        char c = name[i];

        if (c >= '0' && c <= '9') {
            v = v * 16 + (unsigned)(c - '0');
        } else if (c >= 'A' && c <= 'F') {
            v = v * 16 + (unsigned)(c - 'A' + 10);
        } else {
            return false;
        }
    }
    *out = v;
    return name[2] == '\0';
}

static void
spool_recover_skip(struct spool_recover *r, const char *rel, const char *name, const char *why)
{
    char esc[128];

    atomic_fetch_add(&r->skipped, 1);
    log_notice("spool_recover_skip path=%s/%s/%s reason=\"%s\"", spool_base(r->s), rel,
               log_escape(name, strlen(name), esc, sizeof(esc)), why);
}

static int
spool_pread_all(void *arg, uint64_t off, void *dst, size_t len)
{
    int fd = *(const int *)arg;

    while (len > 0) {
        ssize_t n = pread(fd, dst, len, (off_t)off);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        if (n == 0) {
            return -EIO; /* shrank while we read */
        }
        dst = (char *)dst + n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

/* Moves rel/name to corrupt/name (name.1, name.2... if taken). */
static int
spool_quarantine(struct spool_recover *r, int dirfd, const char *name)
{
    int base = spool_base_fd(r->s);
    char dst[64];

    if (mkdirat(base, SPOOL_CORRUPT_DIR, SPOOL_DEFAULT_MODE) != 0 && errno != EEXIST) {
        return -errno;
    }
    for (int i = 0; i < SPOOL_QUARANTINE_TRIES; i++) {
        if (i == 0) {
            (void)snprintf(dst, sizeof(dst), "%s/%s", SPOOL_CORRUPT_DIR, name);
        } else {
            (void)snprintf(dst, sizeof(dst), "%s/%s.%d", SPOOL_CORRUPT_DIR, name, i);
        }
        if (renameat2(dirfd, name, base, dst, RENAME_NOREPLACE) == 0) {
            return 0;
        }
        if (errno != EEXIST) {
            return -errno;
        }
    }
    return CELER_EEXISTS;
}

/* Decodes one file: 0, SPOOL_EINCOMPLETE, CELER_ECORRUPT or -errno. */
static int
spool_recover_decode(struct spool_recover *r, int dirfd, const char *name, struct spool_id id,
                     struct spool_msg *m, uint64_t *size)
{
    struct spool_source src = {.read = spool_pread_all};
    char text[SPOOL_ID_SIZE];
    size_t n = spool_id_format(id, text);
    struct stat st;
    int fd, err;

    *m = (struct spool_msg){0};
    fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        return -errno;
    }
    if (fstat(fd, &st) != 0) {
        err = -errno;
        (void)close(fd); /* read-only */
        return err;
    }
    src.arg = &fd;
    src.size = (uint64_t)st.st_size;
    *size = src.size;
    err = spool_decode(&src, r->verify ? SPOOL_DECODE_VERIFY_BODY : 0, m);
    (void)close(fd); /* read-only */
    if (err == 0 && !strv_eq(m->env.id, strv_make(text, n))) {
        spool_msg_release(m);
        m->bad_off = 0;
        m->bad_what = "envelope id differs from the file name";
        err = CELER_ECORRUPT;
    }
    return err;
}

static void
spool_recover_file(struct spool_recover *r, int dirfd, const char *rel, const char *name,
                   struct spool_id id)
{
    const char *base = spool_base(r->s);
    struct spool_msg m;
    uint64_t size = 0;
    int err = spool_recover_decode(r, dirfd, name, id, &m, &size);
    int err2;

    if (err == 0) {
        atomic_fetch_add(&r->complete, 1);
        atomic_fetch_add(&r->bytes, size);
        if (m.tail_damaged) {
            atomic_fetch_add(&r->tails_damaged, 1);
            log_warning("spool_recover_torn_tail path=%s/%s/%s valid_len=%llu size=%llu", base, rel,
                        name, (unsigned long long)m.valid_len, (unsigned long long)size);
        }
        r->on_msg(&m, id, r->arg);
    } else if (err == SPOOL_EINCOMPLETE) {
        log_warning("spool_recover_incomplete path=%s/%s/%s off=%llu reason=\"%s\" action=remove",
                    base, rel, name, (unsigned long long)m.bad_off, m.bad_what);
        if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT) {
            atomic_fetch_add(&r->incomplete, 1);
        } else {
            err2 = -errno;
            log_error("spool_recover_remove_failed path=%s/%s/%s error=\"%s\"", base, rel, name,
                      err_str(err2));
            spool_recover_error(r, err2);
        }
    } else if (err == CELER_ECORRUPT) {
        log_warning("spool_recover_corrupt path=%s/%s/%s off=%llu reason=\"%s\" action=move to=%s/",
                    base, rel, name, (unsigned long long)m.bad_off, m.bad_what, SPOOL_CORRUPT_DIR);
        if ((err2 = spool_quarantine(r, dirfd, name)) == 0) {
            atomic_fetch_add(&r->corrupt, 1);
        } else {
            log_error("spool_recover_move_failed path=%s/%s/%s error=\"%s\"", base, rel, name,
                      err_str(err2));
            spool_recover_error(r, err2);
        }
    } else {
        log_error("spool_recover_read_failed path=%s/%s/%s error=\"%s\"", base, rel, name,
                  err_str(err));
        spool_recover_error(r, err);
    }
    spool_msg_release(&m);
}

/* A message file name in AA/BB: 0 and the id, or why not. */
static const char *
spool_recover_name(const struct spool_scan *j, const char *name, struct spool_id *id)
{
    if (spool_id_parse_name(strv_from_cstr(name), id) != 0) {
        return "not a message file name";
    }
    if (spool_id_dir1(*id) != j->d1 || spool_id_dir2(*id) != j->d2) {
        return "message file in the wrong directory";
    }
    return NULL;
}

static void
spool_scan_entry(struct spool_scan *j, int dirfd, const char *name)
{
    struct spool_recover *r = j->r;
    struct spool_id id;
    const char *why;
    char rel[8];
    unsigned v;

    if (name[0] == '.') {
        return; /* ".", "..", dot-files (lock, markers, editors' leftovers) */
    }
    switch (j->level) {
    case SPOOL_SCAN_BASE:
        if (strcmp(name, SPOOL_CORRUPT_DIR) == 0 || strcmp(name, SPOOL_RECYCLE_DIR) == 0) {
            return; /* quarantine, and emptied files kept for reuse (spool_recycle.h) */
        }
        if (!spool_hex2(name, &v)) {
            spool_recover_skip(r, j->rel, name, "not a spool directory");
            return;
        }
        spool_scan_submit(r, SPOOL_SCAN_TOP, name, v, 0);
        return;
    case SPOOL_SCAN_TOP:
        if (!spool_hex2(name, &v)) {
            spool_recover_skip(r, j->rel, name, "not a spool directory");
            return;
        }
        (void)snprintf(rel, sizeof(rel), "%02X/%02X", j->d1, v);
        spool_scan_submit(r, SPOOL_SCAN_LEAF, rel, j->d1, v);
        return;
    case SPOOL_SCAN_LEAF:
        if ((why = spool_recover_name(j, name, &id)) != NULL) {
            spool_recover_skip(r, j->rel, name, why);
            return;
        }
        if (spool_id_is_ours(r->s, id)) {
            atomic_fetch_add(&r->in_use, 1); /* a writer of this run owns it */
            return;
        }
        spool_recover_file(r, dirfd, j->rel, name, id);
        return;
    }
}

static void
spool_scan_work(void *arg)
{
    struct spool_scan *j = arg;
    struct spool_recover *r = j->r;
    struct dirent *de;
    DIR *dir;
    int fd, err;

    fd = openat(spool_base_fd(r->s), j->rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        err = -errno;
        if (err == -ENOTDIR && j->level != SPOOL_SCAN_BASE) {
            spool_recover_skip(r, ".", j->rel, "not a directory");
            return;
        }
        goto fail;
    }
    if ((dir = fdopendir(fd)) == NULL) {
        err = -errno;
        (void)close(fd); /* read-only */
        goto fail;
    }
    if (j->level == SPOOL_SCAN_LEAF) {
        atomic_fetch_add(&r->dirs, 1);
    }
    errno = 0;
    while ((de = readdir(dir)) != NULL) {
        spool_scan_entry(j, dirfd(dir), de->d_name);
        errno = 0;
    }
    err = errno != 0 ? -errno : 0;
    (void)closedir(dir); /* read-only */
    if (err == 0) {
        return;
    }
fail:
    log_error("spool_recover_dir_failed path=%s/%s error=\"%s\"", spool_base(r->s), j->rel,
              err_str(err));
    spool_recover_error(r, err);
}

/* On the caller's loop, after the last job. */
static void
spool_recover_finish(struct loop *lp, void *arg)
{
    struct spool_recover *r = arg;
    struct spool *s = r->s;
    struct spool_recover_stats st = {
        .complete = atomic_load(&r->complete),
        .bytes = atomic_load(&r->bytes),
        .tails_damaged = atomic_load(&r->tails_damaged),
        .incomplete = atomic_load(&r->incomplete),
        .corrupt = atomic_load(&r->corrupt),
        .errors = atomic_load(&r->errors),
        .skipped = atomic_load(&r->skipped),
        .in_use = atomic_load(&r->in_use),
        .dirs = atomic_load(&r->dirs),
        .verified_bodies = r->verify,
        .first_err = atomic_load(&r->first_err),
        .elapsed_ms = clock_mono_ms() - r->start_ms,
    };

    (void)lp;
    log_info("spool_recovered path=%s complete=%llu incomplete=%llu corrupt=%llu errors=%llu "
             "skipped=%llu dirs=%llu verified_bodies=%d elapsed_ms=%llu",
             spool_base(s), (unsigned long long)st.complete, (unsigned long long)st.incomplete,
             (unsigned long long)st.corrupt, (unsigned long long)st.errors,
             (unsigned long long)st.skipped, (unsigned long long)st.dirs, st.verified_bodies,
             (unsigned long long)st.elapsed_ms);
    r->on_done(&st, r->arg);
    free(r);
    spool_jobs_leave(s);
}

/* On the pool thread right after the work. */
static void
spool_scan_done(struct loop *lp, void *arg)
{
    struct spool_scan *j = arg;
    struct spool_recover *r = j->r;

    (void)lp;
    free(j);
    if (atomic_fetch_sub(&r->pending, 1) == 1) {
        loop_msg_init(&r->done_msg, spool_recover_finish, r);
        loop_post_msg(r->lp, &r->done_msg);
    }
}

static void
spool_scan_submit(struct spool_recover *r, enum spool_scan_level level, const char *rel,
                  unsigned d1, unsigned d2)
{
    struct spool_scan *j = XNEW(struct spool_scan);

    j->r = r;
    j->level = level;
    (void)snprintf(j->rel, sizeof(j->rel), "%s", rel);
    j->d1 = d1;
    j->d2 = d2;
    atomic_fetch_add(&r->pending, 1);
    pool_submit(spool_io(r->s), &j->job, NULL, spool_scan_work, spool_scan_done, j);
}

void
spool_recover(struct spool *s, struct loop *lp, spool_recover_msg_fn *on_msg,
              spool_recover_done_fn *on_done, void *arg)
{
    struct spool_recover *r = XNEW(struct spool_recover);

    r->s = s;
    r->lp = lp;
    r->on_msg = on_msg;
    r->on_done = on_done;
    r->arg = arg;
    r->verify = !spool_was_clean(s);
    r->start_ms = clock_mono_ms();
    spool_jobs_enter(s);
    spool_scan_submit(r, SPOOL_SCAN_BASE, ".", 0, 0);
}
