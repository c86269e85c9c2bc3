/*
 * file_bound: the machine's ceiling for a durable one-file-per-message spool.
 *
 * Usage: file_bound DIR THREADS FILES SIZE
 *
 * THREADS threads (one per SMTP session of the injection benchmark) share FILES
 * files of SIZE bytes. Each file is the least any spool that fsyncs a file per
 * message before its 250 must do: create it (O_CREAT|O_EXCL) in one of 256
 * hashed subdirectories of DIR, write its bytes with one write(), fdatasync() it,
 * close it. No SMTP, no network, no parsing, no directory fsync, no second
 * record: what it reaches bounds from above what any MTA that spools like this
 * can accept on this machine and file system.
 *
 * Prints one line: "files N size S threads T wall W s rate R files/s cpu C ms/file"
 * (CPU: user + system time of this process, all threads, divided by N). Exit
 * status 1 on any error, with the failing call named on stderr. DIR must exist;
 * its subdirectories and files are left for the caller to delete.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SUBDIRS 256

static const char *dir;
static long nfiles;
static size_t size;
static atomic_long next_file;

static void
fail(const char *what, const char *path)
{
    fprintf(stderr, "file_bound: %s %s: %s\n", what, path, strerror(errno));
    exit(1);
}

static double
seconds(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static void *
writer(void *arg)
{
    char path[4096];
    char *data = malloc(size > 0 ? size : 1);

    (void)arg;
    if (data == NULL) {
        fail("malloc", "");
    }
    memset(data, 'x', size);
    for (;;) {
        long i = atomic_fetch_add(&next_file, 1);
        int fd;

        if (i >= nfiles) {
            break;
        }
        snprintf(path, sizeof path, "%s/%02lx/f%ld", dir, i % SUBDIRS, i);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) {
            fail("open", path);
        }
        if (write(fd, data, size) != (ssize_t)size) {
            fail("write", path);
        }
        if (fdatasync(fd) != 0) {
            fail("fdatasync", path);
        }
        if (close(fd) != 0) {
            fail("close", path);
        }
    }
    free(data);
    return NULL;
}

int
main(int argc, char **argv)
{
    pthread_t th[256];
    struct timespec t0, t1;
    struct rusage ru;
    char path[4096];
    long nthreads;
    double wall, cpu;

    if (argc != 5) {
        fprintf(stderr, "usage: file_bound DIR THREADS FILES SIZE\n");
        return 2;
    }
    dir = argv[1];
    nthreads = strtol(argv[2], NULL, 10);
    nfiles = strtol(argv[3], NULL, 10);
    size = (size_t)strtoul(argv[4], NULL, 10);
    if (nthreads < 1 || nthreads > 256 || nfiles < 1) {
        fprintf(stderr, "file_bound: THREADS must be 1-256 and FILES at least 1\n");
        return 2;
    }
    /* The directories exist and are durable before the clock starts, as a
     * spool's hashed directories are after its first minutes. */
    for (int d = 0; d < SUBDIRS; d++) {
        snprintf(path, sizeof path, "%s/%02x", dir, d);
        if (mkdir(path, 0700) != 0 && errno != EEXIST) {
            fail("mkdir", path);
        }
    }
    sync();

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long t = 0; t < nthreads; t++) {
        if (pthread_create(&th[t], NULL, writer, NULL) != 0) {
            fail("pthread_create", "");
        }
    }
    for (long t = 0; t < nthreads; t++) {
        pthread_join(th[t], NULL);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    getrusage(RUSAGE_SELF, &ru);
    wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    cpu = seconds(ru.ru_utime) + seconds(ru.ru_stime);
    printf("files %ld size %zu threads %ld wall %.3f s rate %.0f files/s cpu %.3f ms/file\n",
           nfiles, size, nthreads, wall, (double)nfiles / wall, 1000.0 * cpu / (double)nfiles);
    return 0;
}
