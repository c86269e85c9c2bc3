/*
 * Unit tests for spool_recycle: parking emptied message files and taking them back.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "spool/spool_recycle.h"

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

/* A removed message's file comes back empty, as the same inode, under the new name. */
static void
test_put_then_take_reuses_the_inode(void **state)
{
    struct fx *fx = *state;
    struct spool_recycle r;
    ino_t ino;

    spool_recycle_init(&r, fx->base_fd, 4);
    make_file(fx->base_fd, "old", "a whole message");
    ino = file_ino(fx->base_fd, "old");
    assert_true(spool_recycle_put(&r, "old"));
    assert_int_equal(file_size(fx->base_fd, "old"), -1); /* gone from its name */
    assert_int_equal(spool_recycle_take(&r, "new"), 0);
    assert_int_equal(file_size(fx->base_fd, "new"), 0); /* empty */
    assert_int_equal(file_ino(fx->base_fd, "new"), ino);
    assert_int_equal(spool_recycle_take(&r, "other"), -ENOENT); /* none left */
    spool_recycle_release(&r);
}

/* Taking never replaces an existing file; the parked one waits for the next taker. */
static void
test_take_does_not_replace(void **state)
{
    struct fx *fx = *state;
    struct spool_recycle r;

    spool_recycle_init(&r, fx->base_fd, 4);
    make_file(fx->base_fd, "m1", "one");
    make_file(fx->base_fd, "busy", "someone else's");
    assert_true(spool_recycle_put(&r, "m1"));
    assert_int_equal(spool_recycle_take(&r, "busy"), -EEXIST);
    assert_int_equal(file_size(fx->base_fd, "busy"), (off_t)strlen("someone else's"));
    assert_int_equal(spool_recycle_take(&r, "m2"), 0);
    spool_recycle_release(&r);
}

/* At most max files are parked; a missing file is not parked. */
static void
test_bounded_and_failures(void **state)
{
    struct fx *fx = *state;
    struct spool_recycle r;
    char name[16];

    spool_recycle_init(&r, fx->base_fd, 2);
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "f%d", i);
        make_file(fx->base_fd, name, "x");
    }
    assert_true(spool_recycle_put(&r, "f0"));
    assert_true(spool_recycle_put(&r, "f1"));
    assert_false(spool_recycle_put(&r, "f2")); /* full: the caller deletes it */
    assert_int_equal(file_size(fx->base_fd, "f2"), 1);
    assert_false(spool_recycle_put(&r, "nope"));
    assert_int_equal(spool_recycle_take(&r, "g0"), 0);
    assert_true(spool_recycle_put(&r, "f2")); /* room again */
    spool_recycle_release(&r);
}

/* Files left in free/ by an earlier run are cleared at start; release clears too. */
static void
test_leftovers_cleared(void **state)
{
    struct fx *fx = *state;
    struct spool_recycle r;
    int dfd;

    mkdirat(fx->base_fd, SPOOL_RECYCLE_DIR, 0700);
    dfd = openat(fx->base_fd, SPOOL_RECYCLE_DIR, O_RDONLY | O_DIRECTORY);
    make_file(dfd, "7", "stale");
    spool_recycle_init(&r, fx->base_fd, 4);
    assert_int_equal(file_size(dfd, "7"), -1);
    assert_int_equal(spool_recycle_take(&r, "m"), -ENOENT);
    make_file(fx->base_fd, "k", "keep");
    assert_true(spool_recycle_put(&r, "k"));
    spool_recycle_release(&r);
    assert_int_equal(file_size(dfd, "0"), -1);
    close(dfd);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_then_take_reuses_the_inode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_take_does_not_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounded_and_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leftovers_cleared, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
