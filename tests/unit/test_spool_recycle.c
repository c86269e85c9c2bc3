/*
 * Unit tests for spool_recycle: parking message files (their blocks kept, or emptied)
 * and taking them back.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "spool/spool_format.h"
#include "spool/spool_recycle.h"

#define ALL UINT64_MAX /* keep_len: the whole file */

struct fx {
    char base[64];
    int base_fd;
};

static void
make_file(int dirfd, const char *rel, const char *text)
{
    int fd = openat(dirfd, rel, O_WRONLY | O_CREAT | O_EXCL, 0640);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static off_t
file_size(int dirfd, const char *rel)
{
    struct stat st;

    return fstatat(dirfd, rel, &st, 0) == 0 ? st.st_size : -1;
}

static ino_t
file_ino(int dirfd, const char *rel)
{
    struct stat st;

    assert_int_equal(fstatat(dirfd, rel, &st, 0), 0);
    return st.st_ino;
}

static int
setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));

    snprintf(fx->base, sizeof(fx->base), "/tmp/celer-recycle-XXXXXX");
    assert_non_null(mkdtemp(fx->base));
    fx->base_fd = open(fx->base, O_RDONLY | O_DIRECTORY);
    assert_true(fx->base_fd >= 0);
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *fx = *state;
    char cmd[128];

    close(fx->base_fd);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", fx->base);
    assert_int_equal(system(cmd), 0);
    free(fx);
    return 0;
}

static void
read_file(int dirfd, const char *rel, char *out, size_t size)
{
    int fd = openat(dirfd, rel, O_RDONLY);
    ssize_t n;

    assert_true(fd >= 0);
    n = read(fd, out, size - 1);
    assert_true(n >= 0);
    out[n] = '\0';
    close(fd);
}

/*
 * A removed message's file comes back as the same inode under the new name,
 * its size kept and its first 8 bytes marked as parked.
 */
static void
test_put_then_take_reuses_the_inode(void **state)
{
    struct fx *fx = *state;
    struct spool_recycle r;
    char text[64];
    uint64_t size = 99;
    ino_t ino;

    spool_recycle_init(&r, fx->base_fd, 4);
    make_file(fx->base_fd, "old", "a whole message");
    ino = file_ino(fx->base_fd, "old");
    assert_true(spool_recycle_put(&r, "old", ALL));
    assert_int_equal(file_size(fx->base_fd, "old"), -1); /* gone from its name */
    assert_int_equal(r.kept, strlen("a whole message"));
    assert_int_equal(spool_recycle_take(&r, "new", &size), 0);
    assert_int_equal(size, strlen("a whole message"));
    assert_int_equal(r.kept, 0);
    assert_int_equal(file_size(fx->base_fd, "new"), (off_t)size);
    read_file(fx->base_fd, "new", text, sizeof(text));
    assert_memory_equal(text, SPOOL_PARKED_HDR, SPOOL_FILE_HDR_LEN);
    assert_string_equal(text + SPOOL_FILE_HDR_LEN, "message"); /* stale, to overwrite */
    assert_int_equal(file_ino(fx->base_fd, "new"), ino);
    assert_int_equal(spool_recycle_take(&r, "other", &size), -ENOENT); /* none left */
    spool_recycle_release(&r);
}

/* A parked file keeps the old message only up to keep_len: its PROGRESS records go. */
static void
test_put_cuts_to_keep_len(void **state)
{
    struct fx *fx = *state;
    struct spool_recycle r;
    uint64_t size = 99;

    spool_recycle_init(&r, fx->base_fd, 4);
    make_file(fx->base_fd, "m", "message up to END|progress");
    assert_true(spool_recycle_put(&r, "m", strlen("message up to END")));
    assert_int_equal(spool_recycle_take(&r, "n", &size), 0);
    assert_int_equal(size, strlen("message up to END"));
    assert_int_equal(file_size(fx->base_fd, "n"), (off_t)size);
    make_file(fx->base_fd, "z", "unknown length");
    assert_true(spool_recycle_put(&r, "z", 0)); /* 0: unknown, emptied */
    assert_int_equal(spool_recycle_take(&r, "z2", &size), 0);
    assert_int_equal(size, 0);
    assert_int_equal(file_size(fx->base_fd, "z2"), 0);
    spool_recycle_release(&r);
}

/* Beyond the byte budget, and below the header's size, a parked file is emptied. */
static void
test_budget_empties(void **state)
{
    struct fx *fx = *state;
    struct spool_recycle r;
    uint64_t size = 99;

    spool_recycle_init(&r, fx->base_fd, 8);
    r.keep_max = 20;
    make_file(fx->base_fd, "a", "0123456789abcdef"); /* 16: kept */
    make_file(fx->base_fd, "b", "0123456789");       /* 10: over budget, emptied */
    make_file(fx->base_fd, "c", "tiny");             /* shorter than a header: emptied */
    assert_true(spool_recycle_put(&r, "a", ALL));
    assert_true(spool_recycle_put(&r, "b", ALL));
    assert_true(spool_recycle_put(&r, "c", ALL));
    assert_int_equal(r.kept, 16);
    assert_int_equal(spool_recycle_take(&r, "c2", &size), 0); /* a stack: c first */
    assert_int_equal(size, 0);
    assert_int_equal(file_size(fx->base_fd, "c2"), 0);
    assert_int_equal(spool_recycle_take(&r, "b2", &size), 0);
    assert_int_equal(size, 0);
    assert_int_equal(file_size(fx->base_fd, "b2"), 0);
    assert_int_equal(spool_recycle_take(&r, "a2", &size), 0);
    assert_int_equal(size, 16);
    assert_int_equal(file_size(fx->base_fd, "a2"), 16);
    assert_int_equal(r.kept, 0);
    spool_recycle_release(&r);
}

/* Taking never replaces an existing file; the parked one waits for the next taker. */
static void
test_take_does_not_replace(void **state)
{
    struct fx *fx = *state;
    struct spool_recycle r;
    uint64_t size;

    spool_recycle_init(&r, fx->base_fd, 4);
    make_file(fx->base_fd, "m1", "one");
    make_file(fx->base_fd, "busy", "someone else's");
    assert_true(spool_recycle_put(&r, "m1", ALL));
    assert_int_equal(spool_recycle_take(&r, "busy", &size), -EEXIST);
    assert_int_equal(file_size(fx->base_fd, "busy"), (off_t)strlen("someone else's"));
    assert_int_equal(spool_recycle_take(&r, "m2", &size), 0);
    spool_recycle_release(&r);
}

/* At most max files are parked; a missing file is not parked. */
static void
test_bounded_and_failures(void **state)
{
    struct fx *fx = *state;
    struct spool_recycle r;
    char name[16];
    uint64_t size;

    spool_recycle_init(&r, fx->base_fd, 2);
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "f%d", i);
        make_file(fx->base_fd, name, "x");
    }
    assert_true(spool_recycle_put(&r, "f0", ALL));
    assert_true(spool_recycle_put(&r, "f1", ALL));
    assert_false(spool_recycle_put(&r, "f2", ALL)); /* full: the caller deletes it */
    assert_int_equal(file_size(fx->base_fd, "f2"), 1);
    assert_false(spool_recycle_put(&r, "nope", ALL));
    assert_int_equal(spool_recycle_take(&r, "g0", &size), 0);
    assert_true(spool_recycle_put(&r, "f2", ALL)); /* room again */
    spool_recycle_release(&r);
}

/* Files left in free/ by an earlier run are cleared at start; release clears too. */
static void
test_leftovers_cleared(void **state)
{
    struct fx *fx = *state;
    struct spool_recycle r;
    uint64_t size;
    int dfd;

    mkdirat(fx->base_fd, SPOOL_RECYCLE_DIR, 0700);
    dfd = openat(fx->base_fd, SPOOL_RECYCLE_DIR, O_RDONLY | O_DIRECTORY);
    make_file(dfd, "7", "stale");
    spool_recycle_init(&r, fx->base_fd, 4);
    assert_int_equal(file_size(dfd, "7"), -1);
    assert_int_equal(spool_recycle_take(&r, "m", &size), -ENOENT);
    make_file(fx->base_fd, "k", "keep");
    assert_true(spool_recycle_put(&r, "k", ALL));
    spool_recycle_release(&r);
    assert_int_equal(file_size(dfd, "0"), -1);
    close(dfd);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_then_take_reuses_the_inode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_cuts_to_keep_len, setup, teardown),
        cmocka_unit_test_setup_teardown(test_budget_empties, setup, teardown),
        cmocka_unit_test_setup_teardown(test_take_does_not_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounded_and_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leftovers_cleared, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
