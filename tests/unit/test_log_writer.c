/*
 * test_log_writer: the log writer thread, as the files on disk show it.
 *
 * Many threads writing at once: every line lands exactly once, intact, and
 * each thread's lines in its own order. log_writer_flush() makes everything
 * appended so far visible. Rotation: after a rename, lines keep going to the
 * renamed file until log_writer_reopen(), then to a new file at the path; a
 * failed reopen keeps the old file. The paniclog sink's line format. The
 * pending ceiling: a writer thread stuck on a full FIFO makes the 64 MiB
 * pending buffer fill up; further lines are dropped and counted without
 * blocking, and no line is ever torn (a line whose body fits but whose
 * newline does not is dropped whole). Files live in a mkdtemp directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "log/log_writer.h"

/* ---- helpers ---- */

struct tmp {
    char dir[PATH_MAX];
};

static void
tmp_make(struct tmp *t)
{
    char templ[] = "/tmp/celer-test-log-writer-XXXXXX";

    assert_non_null(mkdtemp(templ));
    assert_non_null(realpath(templ, t->dir));
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void
tmp_remove(struct tmp *t)
{
    assert_int_equal(nftw(t->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
}

static char *
tmp_path(const struct tmp *t, const char *rel)
{
    return xasprintf("%s/%s", t->dir, rel);
}

/* The whole file as a NUL-terminated string. */
static char *
slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct buf b;
    char chunk[65536];
    size_t n;

    assert_non_null(f);
    buf_init(&b, BUF_UNLIMITED);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        buf_append(&b, chunk, n);
    }
    assert_int_equal(fclose(f), 0);
    if (len) {
        *len = buf_len(&b);
    }
    return buf_steal_cstr(&b);
}

static size_t
count_lines(const char *text)
{
    size_t n = 0;

    for (; *text; text++) {
        n += *text == '\n';
    }
    return n;
}

static struct log_writer *
writer_new(void)
{
    int err = 0;
    struct log_writer *w = log_writer_new(&err);

    assert_non_null(w);
    return w;
}

static struct log_file *
file_open(struct log_writer *w, const char *path)
{
    int err = 0;
    struct log_file *f = log_writer_open(w, path, 0640, (uid_t)-1, (gid_t)-1, &err);

    assert_non_null(f);
    assert_int_equal(err, 0);
    return f;
}

static void
write_str(struct log_file *f, const char *s)
{
    log_file_write(f, s, strlen(s));
}

/* ---- many writers ---- */

#define THREADS 8
#define LINES   4000

struct worker {
    pthread_t thread;
    struct log_file *f;
    int id;
};

/* Line n of thread t: "t=T n=N " then (n % 97) + 1 letters 'a' + T, then "|". */
static size_t
make_line(char *dst, size_t size, int t, int n)
{
    int len = snprintf(dst, size, "t=%02d n=%05d ", t, n);
    int pad = n % 97 + 1;

    for (int i = 0; i < pad; i++) {
        dst[len++] = (char)('a' + t);
    }
    dst[len++] = '|';
    return (size_t)len;
}

static void *
worker_main(void *arg)
{
    struct worker *wk = arg;
    char line[256];

    for (int n = 0; n < LINES; n++) {
        log_file_write(wk->f, line, make_line(line, sizeof(line), wk->id, n));
    }
    return NULL;
}

static void
test_concurrent_writers(void **state)
{
    struct tmp t;
    struct log_writer *w;
    struct log_file *f;
    struct worker wk[THREADS];
    int next[THREADS] = {0};
    char *path, *text, *p;

    (void)state;
    tmp_make(&t);
    path = tmp_path(&t, "main.log");
    w = writer_new();
    f = file_open(w, path);
    for (int i = 0; i < THREADS; i++) {
        wk[i] = (struct worker){.f = f, .id = i};
        assert_int_equal(pthread_create(&wk[i].thread, NULL, worker_main, &wk[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(wk[i].thread, NULL), 0);
    }
    log_writer_flush(w);
    text = slurp(path, NULL);
    assert_int_equal(count_lines(text), THREADS * LINES);
    /* every line exactly once, intact, and each thread's lines in order */
    for (p = text; *p;) {
        char *nl = strchr(p, '\n');
        char want[256];
        int th, n;

        assert_non_null(nl);
        assert_int_equal(sscanf(p, "t=%d n=%d ", &th, &n), 2);
        assert_true(th >= 0 && th < THREADS);
        assert_int_equal(n, next[th]);
        next[th]++;
        assert_int_equal((size_t)(nl - p), make_line(want, sizeof(want), th, n));
        assert_memory_equal(p, want, (size_t)(nl - p));
        p = nl + 1;
    }
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(next[i], LINES);
    }
    assert_int_equal(log_file_dropped(f), 0);
    free(text);
    log_writer_free(w);
    free(path);
    tmp_remove(&t);
}

/* ---- flush, open ---- */

static void
test_flush_makes_lines_visible(void **state)
{
    struct tmp t;
    struct log_writer *w;
    struct log_file *f;
    char *path;

    (void)state;
    tmp_make(&t);
    path = tmp_path(&t, "f.log");
    w = writer_new();
    log_writer_flush(w); /* nothing pending: returns at once */
    f = file_open(w, path);
    for (int round = 1; round <= 5; round++) {
        char *text;
        size_t len;

        for (int i = 0; i < 1000; i++) {
            char line[64];
            int n = snprintf(line, sizeof(line), "round=%d i=%04d", round, i);

            log_file_write(f, line, (size_t)n);
        }
        log_writer_flush(w);
        text = slurp(path, &len);
        assert_int_equal(count_lines(text), (size_t)round * 1000);
        assert_int_equal(len, (size_t)round * 1000 * strlen("round=1 i=0000\n"));
        assert_non_null(strstr(text, "round=1 i=0000\n"));
        free(text);
    }
    log_writer_flush(w);
    log_writer_free(w);
    log_writer_free(NULL);
    free(path);
    tmp_remove(&t);
}

static void
test_open(void **state)
{
    struct tmp t;
    struct log_writer *w;
    struct log_file *f, *g;
    struct stat st;
    char *path, *bad, *text;
    int err = 0;
    FILE *pre;

    (void)state;
    tmp_make(&t);
    path = tmp_path(&t, "o.log");
    bad = tmp_path(&t, "no/such/dir.log");
    pre = fopen(path, "w");
    assert_non_null(pre);
    assert_true(fputs("existing\n", pre) >= 0);
    assert_int_equal(fclose(pre), 0);

    w = writer_new();
    f = file_open(w, path);
    g = file_open(w, path);
    assert_ptr_equal(f, g); /* one file per path */
    assert_string_equal(log_file_path(f), path);
    assert_null(log_writer_open(w, bad, 0640, (uid_t)-1, (gid_t)-1, &err));
    assert_int_equal(err, -ENOENT);
    write_str(f, "appended");
    log_writer_flush(w);
    text = slurp(path, NULL);
    assert_string_equal(text, "existing\nappended\n"); /* O_APPEND keeps what was there */
    free(text);

    /* a new file gets the mode asked for */
    {
        char *fresh = tmp_path(&t, "fresh.log");
        mode_t old = umask(022);

        assert_non_null(log_writer_open(w, fresh, 0600, (uid_t)-1, (gid_t)-1, &err));
        umask(old);
        assert_int_equal(stat(fresh, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        free(fresh);
    }
    log_writer_free(w);
    free(bad);
    free(path);
    tmp_remove(&t);
}

/* ---- rotation ---- */

static void
test_reopen_after_rename(void **state)
{
    struct tmp t;
    struct log_writer *w;
    struct log_file *f;
    char *path, *rotated, *text;

    (void)state;
    tmp_make(&t);
    path = tmp_path(&t, "r.log");
    rotated = tmp_path(&t, "r.log.1");
    w = writer_new();
    f = file_open(w, path);
    write_str(f, "old 1");
    write_str(f, "old 2");
    log_writer_flush(w);
    assert_int_equal(rename(path, rotated), 0);
    /* until reopen, lines go to the file that is open: now named r.log.1 */
    write_str(f, "between");
    log_writer_flush(w);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(log_writer_reopen(w), 0);
    write_str(f, "new 1");
    write_str(f, "new 2");
    log_writer_flush(w);
    text = slurp(rotated, NULL);
    assert_string_equal(text, "old 1\nold 2\nbetween\n");
    free(text);
    text = slurp(path, NULL);
    assert_string_equal(text, "new 1\nnew 2\n");
    free(text);

    /* a reopen that fails (the path is now a directory) reports it and keeps the old file */
    assert_int_equal(rename(path, rotated), 0);
    assert_int_equal(mkdir(path, 0755), 0);
    assert_int_equal(log_writer_reopen(w), -EISDIR);
    write_str(f, "still old");
    log_writer_flush(w);
    text = slurp(rotated, NULL);
    assert_string_equal(text, "new 1\nnew 2\nstill old\n");
    free(text);
    log_writer_free(w);
    free(rotated);
    free(path);
    tmp_remove(&t);
}

/* ---- paniclog sink ---- */

static void
test_paniclog_sink(void **state)
{
    static const struct {
        enum log_level level;
        const char *name;
    } levels[] = {
        {LOG_LEVEL_DEBUG, "debug"},     {LOG_LEVEL_INFO, "info"},   {LOG_LEVEL_NOTICE, "notice"},
        {LOG_LEVEL_WARNING, "warning"}, {LOG_LEVEL_ERROR, "error"}, {LOG_LEVEL_CRIT, "critical"},
    };
    struct tmp t;
    struct log_writer *w;
    struct log_file *f;
    char *path, *text, *p, longmsg[3000];
    int64_t before, after;

    (void)state;
    tmp_make(&t);
    path = tmp_path(&t, "paniclog.ec");
    w = writer_new();
    f = file_open(w, path);
    before = clock_wall_s();
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
        log_paniclog_sink(levels[i].level, "spool_scan files=3", 18, f);
    }
    /* through core/log as celerd installs it */
    log_set_sink(log_paniclog_sink, f);
    log_error("conf_reload_failed errors=%d", 2);
    log_set_sink(NULL, NULL);
    /* a long message is cut, never split over lines */
    memset(longmsg, 'x', sizeof(longmsg));
    log_paniclog_sink(LOG_LEVEL_ERROR, longmsg, sizeof(longmsg), f);
    log_writer_flush(w);
    after = clock_wall_s();
    text = slurp(path, NULL);
    assert_int_equal(count_lines(text), 8);
    p = text;
    for (size_t i = 0; i < 8; i++) {
        char *nl = strchr(p, '\n');
        char *end;
        long long ts = strtoll(p, &end, 10);
        char want[128];

        assert_true(ts >= before && ts <= after);
        if (i < 6) {
            snprintf(want, sizeof(want), ":celerd: %s: spool_scan files=3", levels[i].name);
        } else if (i == 6) {
            snprintf(want, sizeof(want), ":celerd: error: conf_reload_failed errors=2");
        } else {
            snprintf(want, sizeof(want), ":celerd: error: xxxx");
        }
        assert_true(strncmp(end, want, strlen(want)) == 0);
        if (i < 7) {
            assert_int_equal((size_t)(nl - end), strlen(want));
        } else {
            assert_int_equal((size_t)(nl - p), 2299); /* the sink's line buffer, minus NUL */
        }
        p = nl + 1;
    }
    free(text);
    log_writer_free(w);
    free(path);
    tmp_remove(&t);
}

/* ---- the pending ceiling ---- */

struct reader {
    pthread_t thread;
    int fd;
    uint64_t lines;
    uint64_t bytes;
    unsigned last_seq;
    int bad; /* malformed or torn lines */
    bool tail_terminated;
};

/* Checks each line "SSSSSSSS LLLL xxx...": its length is LLLL, sequence numbers increase. */
static void
reader_line(struct reader *r, const char *p, size_t len)
{
    unsigned seq, want;

    if (len < 14 || sscanf(p, "%8u %4u ", &seq, &want) != 2 || len != want ||
        (r->lines && seq <= r->last_seq)) {
        r->bad++;
        return;
    }
    for (size_t i = 14; i < len; i++) {
        if (p[i] != 'x') {
            r->bad++;
            return;
        }
    }
    r->last_seq = seq;
    r->lines++;
}

static void *
reader_main(void *arg)
{
    struct reader *r = arg;
    static char carry[16384];
    size_t have = 0;
    char chunk[65536];
    ssize_t n;

    while ((n = read(r->fd, chunk, sizeof(chunk))) != 0) {
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            r->bad++;
            break;
        }
        r->bytes += (uint64_t)n;
        for (ssize_t i = 0; i < n; i++) {
            if (chunk[i] == '\n') {
                reader_line(r, carry, have);
                have = 0;
            } else if (have < sizeof(carry)) {
                carry[have++] = chunk[i];
            } else {
                r->bad++;
                have = 0;
            }
        }
    }
    r->tail_terminated = have == 0;
    return NULL;
}

static size_t
ceiling_line(char *dst, unsigned seq, size_t len)
{
    int n = snprintf(dst, 32, "%08u %04zu ", seq, len);

    memset(dst + n, 'x', len - (size_t)n);
    return len;
}

static void
test_pending_ceiling_drops_and_counts(void **state)
{
    struct tmp t;
    struct log_writer *w;
    struct log_file *f;
    struct reader r = {0};
    char *path, line[9000];
    unsigned seq = 0;
    uint64_t attempted = 0, before;
    int fl, pipe_size, avail = 0;

    (void)state;
    tmp_make(&t);
    path = tmp_path(&t, "fifo.log");
    assert_int_equal(mkfifo(path, 0600), 0);
    r.fd = open(path, O_RDONLY | O_NONBLOCK); /* lets the writer's open succeed */
    assert_true(r.fd >= 0);
    pipe_size = fcntl(r.fd, F_SETPIPE_SZ, 4096);
    assert_true(pipe_size > 0 && pipe_size < 8000);
    w = writer_new();
    f = file_open(w, path);

    /*
     * Nobody reads the FIFO yet. A first line longer than the pipe blocks the
     * writer thread in write(2) once the pipe is full; wait for that, so the
     * writer provably holds nothing but that line.
     */
    log_file_write(f, line, ceiling_line(line, seq++, 8000));
    for (int i = 0; i < 10000 && avail < pipe_size; i++) {
        assert_int_equal(ioctl(r.fd, FIONREAD, &avail), 0);
        if (avail < pipe_size) {
            usleep(1000);
        }
    }
    assert_int_equal(avail, pipe_size);
    /*
     * Pending now fills to its 64 MiB ceiling in whole 1001-byte lines: 67041
     * of them. Writing never blocks; the next line is dropped and counted.
     */
    while (log_file_dropped(f) == 0) {
        log_file_write(f, line, ceiling_line(line, seq++, 1000));
        attempted++;
        assert_true(attempted < 200000);
    }
    assert_int_equal(attempted, 64u * 1024 * 1024 / 1001 + 1);
    assert_int_equal(log_file_dropped(f), 1);
    /*
     * 64 MiB - 67041 * 1001 = 823 bytes are left. Lines of 1000 down to 1
     * bytes: 823 bytes of body would fit but not their newline, so that line
     * must be dropped whole; 822 + newline fits exactly; nothing fits after.
     */
    before = log_file_dropped(f);
    for (size_t len = 1000; len >= 14; len--) {
        log_file_write(f, line, ceiling_line(line, seq++, len));
    }
    assert_int_equal(log_file_dropped(f) - before, (1000 - 14 + 1) - 1);

    /* now drain the FIFO and check what reached it */
    fl = fcntl(r.fd, F_GETFL);
    assert_int_equal(fcntl(r.fd, F_SETFL, fl & ~O_NONBLOCK), 0);
    assert_int_equal(pthread_create(&r.thread, NULL, reader_main, &r), 0);
    log_writer_free(w); /* writes what is pending, closes the FIFO: the reader sees EOF */
    assert_int_equal(pthread_join(r.thread, NULL), 0);
    assert_int_equal(close(r.fd), 0);
    assert_int_equal(r.bad, 0);
    assert_true(r.tail_terminated);
    assert_true(r.bytes > 64u * 1024 * 1024);
    /* the long first line, every 1000-byte line but the dropped one, the 822-byte one */
    assert_int_equal(r.lines, 1 + (attempted - 1) + 1);
    free(path);
    tmp_remove(&t);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent_writers),
        cmocka_unit_test(test_flush_makes_lines_visible),
        cmocka_unit_test(test_open),
        cmocka_unit_test(test_reopen_after_rename),
        cmocka_unit_test(test_paniclog_sink),
        cmocka_unit_test(test_pending_ceiling_drops_and_counts),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
