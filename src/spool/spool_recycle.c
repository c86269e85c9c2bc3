/*
 * spool_recycle: reusing removed messages' files (see spool_recycle.h).
 */
#include "spool/spool_recycle.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "core/log.h"
#include "core/mem.h"
#include "spool/spool_format.h"

static void
spool_recycle_clear(struct spool_recycle *r)
{
    int fd = dup(r->dir_fd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    struct dirent *e;

    if (d == NULL) {
        if (fd >= 0) {
            (void)close(fd); /* fdopendir failed: nothing else owns it */
        }
        return;
    }
    rewinddir(d); /* the dup shares its position with dir_fd: start from the top */
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.') {
            (void)unlinkat(r->dir_fd, e->d_name, 0); /* leftovers of an earlier run */
        }
    }
    (void)closedir(d); /* read-only listing */
}

void
spool_recycle_init(struct spool_recycle *r, int base_fd, unsigned max)
{
    struct statvfs fs;

    *r = (struct spool_recycle){
        .base_fd = base_fd, .dir_fd = -1, .max = max, .keep_max = SPOOL_RECYCLE_KEEP_BYTES};
    if (fstatvfs(base_fd, &fs) == 0 && (uint64_t)fs.f_blocks * fs.f_frsize / 100 < r->keep_max) {
        r->keep_max = (uint64_t)fs.f_blocks * fs.f_frsize / 100; /* 1 % of a small file system */
    }
    pthread_mutex_init(&r->lock, NULL);
    r->ready = xcalloc(max ? max : 1, sizeof(*r->ready));
    if (max == 0 || (mkdirat(base_fd, SPOOL_RECYCLE_DIR, 0700) != 0 && errno != EEXIST)) {
        return;
    }
    r->dir_fd = openat(base_fd, SPOOL_RECYCLE_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (r->dir_fd < 0) {
        log_warning("spool_recycle_off error=\"%s\"", err_str(-errno));
        return;
    }
    spool_recycle_clear(r);
}

void
spool_recycle_release(struct spool_recycle *r)
{
    if (r->dir_fd >= 0) {
        spool_recycle_clear(r);
        (void)close(r->dir_fd); /* a directory we only listed */
        r->dir_fd = -1;
    }
    pthread_mutex_destroy(&r->lock);
    free(r->ready);
    r->ready = NULL;
}

static void
spool_recycle_name(uint64_t n, char out[24])
{
    snprintf(out, 24, "%llu", (unsigned long long)n);
}

/*
 * Marks fd as parked and keeps up to keep_len bytes of it when the budget
 * allows, else empties it: the bytes it keeps (0 when emptied), or -1 on
 * an error.
 */
static int64_t
spool_recycle_prepare(struct spool_recycle *r, int fd, uint64_t keep_len)
{
    struct stat st;
    uint64_t len;
    bool keep;

    if (fstat(fd, &st) != 0) {
        return -1;
    }
    len = (uint64_t)st.st_size < keep_len ? (uint64_t)st.st_size : keep_len;
    pthread_mutex_lock(&r->lock);
    keep =
        len >= SPOOL_FILE_HDR_LEN && len <= SPOOL_RECYCLE_KEEP_FILE && r->kept + len <= r->keep_max;
    if (keep) {
        r->kept += len;
    }
    pthread_mutex_unlock(&r->lock);
    if (!keep) {
        return ftruncate(fd, 0) == 0 ? 0 : -1;
    }
    /* the marker first: no old byte must read as a message once the file moves */
    if (pwrite(fd, SPOOL_PARKED_HDR, SPOOL_FILE_HDR_LEN, 0) == SPOOL_FILE_HDR_LEN &&
        ((uint64_t)st.st_size == len || ftruncate(fd, (off_t)len) == 0)) {
        return (int64_t)len;
    }
    pthread_mutex_lock(&r->lock);
    r->kept -= len;
    pthread_mutex_unlock(&r->lock);
    return -1;
}

bool
spool_recycle_put(struct spool_recycle *r, const char *rel, uint64_t keep_len)
{
    char name[24];
    uint64_t n;
    int64_t kept = -1;
    int fd;

    if (r->dir_fd < 0) {
        return false;
    }
    pthread_mutex_lock(&r->lock);
    if (r->nready + r->reserved >= r->max) {
        pthread_mutex_unlock(&r->lock);
        return false;
    }
    r->reserved++;
    n = r->next_name++;
    pthread_mutex_unlock(&r->lock);
    spool_recycle_name(n, name);
    fd = openat(r->base_fd, rel, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0 && (kept = spool_recycle_prepare(r, fd, keep_len)) >= 0 &&
        renameat(r->base_fd, rel, r->dir_fd, name) == 0) {
        (void)close(fd); /* parked; what was written is never synced on purpose */
        pthread_mutex_lock(&r->lock);
        r->reserved--;
        r->ready[r->nready++] = (struct spool_recycle_file){n, (uint64_t)kept};
        pthread_mutex_unlock(&r->lock);
        return true;
    }
    if (fd >= 0) {
        (void)close(fd); /* already failing */
    }
    pthread_mutex_lock(&r->lock);
    r->reserved--;
    if (kept > 0) {
        r->kept -= (uint64_t)kept;
    }
    pthread_mutex_unlock(&r->lock);
    return false;
}

int
spool_recycle_take(struct spool_recycle *r, const char *rel, uint64_t *size)
{
    struct spool_recycle_file f;
    char name[24];
    int err;

    if (r->dir_fd < 0) {
        return -ENOENT;
    }
    pthread_mutex_lock(&r->lock);
    if (r->nready == 0) {
        pthread_mutex_unlock(&r->lock);
        return -ENOENT;
    }
    f = r->ready[--r->nready];
    pthread_mutex_unlock(&r->lock);
    spool_recycle_name(f.name, name);
    if (renameat2(r->dir_fd, name, r->base_fd, rel, RENAME_NOREPLACE) == 0) {
        pthread_mutex_lock(&r->lock);
        r->kept -= f.size;
        pthread_mutex_unlock(&r->lock);
        *size = f.size;
        return 0;
    }
    if (errno == EEXIST) {
        /* rel is taken: the file stays parked for the next message */
        pthread_mutex_lock(&r->lock);
        r->ready[r->nready++] = f;
        pthread_mutex_unlock(&r->lock);
        return -EEXIST;
    }
    err = -errno;
    /* lost (removed behind our back?): forget it */
    pthread_mutex_lock(&r->lock);
    r->kept -= f.size;
    pthread_mutex_unlock(&r->lock);
    return err;
}
