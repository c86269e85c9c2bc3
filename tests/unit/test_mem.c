/*
 * test_mem: allocation wrappers, growth arithmetic, and the abort on
 * exhaustion (checked in a child process).
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/mem.h"

static void
test_xmalloc_zero(void **state)
{
    void *p = xmalloc(0);
    void *q = xcalloc(0, 0);
    void *r = xrealloc(NULL, 0);

    (void)state;
    assert_non_null(p);
    assert_non_null(q);
    assert_non_null(r);
    free(p);
    free(q);
    free(r);
}

static void
test_xcalloc_zeroes(void **state)
{
    unsigned char *p = xcalloc(100, 7);

    (void)state;
    for (size_t i = 0; i < 700; i++) {
        assert_int_equal(p[i], 0);
    }
    free(p);
}

static void
test_xrealloc_keeps_contents(void **state)
{
    char *p = xmalloc(4);

    (void)state;
    memcpy(p, "abcd", 4);
    p = xrealloc(p, 1 << 20);
    assert_memory_equal(p, "abcd", 4);
    p = xrealloc(p, 2);
    assert_memory_equal(p, "ab", 2);
    free(p);
}

static void
test_xgrow(void **state)
{
    static const struct {
        size_t cap, need, want_cap;
    } cases[] = {
        {0, 0, 8}, /* nothing needed yet, but the result is never NULL */
        {0, 1, 8}, /* first growth starts at 8 */
        {0, 8, 8},   {0, 9, 16},   {8, 9, 16},     {8, 8, 8}, /* enough: unchanged */
        {16, 3, 16}, {16, 17, 32}, {16, 100, 128}, {3, 4, 6},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t cap = cases[i].cap;
        int *p = cap ? xcalloc(cap, sizeof(int)) : NULL;
        int *q = xgrow(p, &cap, cases[i].need, sizeof(int));

        assert_int_equal(cap, cases[i].want_cap);
        assert_non_null(q);
        if (cases[i].need <= cases[i].cap && p) {
            assert_ptr_equal(p, q); /* nothing reallocated */
        }
        for (size_t j = 0; j < cap; j++) {
            q[j] = (int)j; /* all of cap is usable (ASan checks) */
        }
        free(q);
    }
}

static void
test_xgrow_keeps_contents(void **state)
{
    size_t cap = 0;
    uint32_t *a = NULL;

    (void)state;
    for (uint32_t i = 0; i < 10000; i++) {
        a = xgrow(a, &cap, i + 1, sizeof(*a));
        a[i] = i * 2654435761u;
    }
    assert_true(cap >= 10000);
    assert_int_equal(cap & (cap - 1), 0); /* doubling from 8 gives powers of two */
    for (uint32_t i = 0; i < 10000; i++) {
        assert_int_equal(a[i], i * 2654435761u);
    }
    free(a);
}

static void
test_strings(void **state)
{
    char *a = xstrdup("hello");
    char *b = xstrndup("hello world", 5);
    char *c = xstrndup("ab\0cd", 5); /* copies exactly len bytes, NULs included */
    char *d = xstrndup("", 0);
    char *e = xmemdup("\x00\x01\x02", 3);
    char *f = xmemdup(NULL, 0);
    char *g = xasprintf("%s=%d%c", "x", -42, '!');

    (void)state;
    assert_string_equal(a, "hello");
    assert_string_equal(b, "hello");
    assert_memory_equal(c, "ab\0cd\0", 6);
    assert_string_equal(d, "");
    assert_memory_equal(e, "\x00\x01\x02", 3);
    assert_non_null(f);
    assert_string_equal(g, "x=-42!");
    free(a);
    free(b);
    free(c);
    free(d);
    free(e);
    free(f);
    free(g);
}

struct mem_pair {
    int a;
    void *p;
};

static void
test_xnew_and_clear_free(void **state)
{
    struct mem_pair *x = XNEW(struct mem_pair);
    char *secret = xstrdup("password");

    (void)state;
    assert_int_equal(x->a, 0);
    assert_null(x->p);
    free(x);
    mem_clear_free(secret, strlen(secret));
    mem_clear_free(NULL, 10); /* no-op */
}

static void
test_xgrow_overflow_aborts(void **state)
{
    int fds[2];
    pid_t pid;
    int status;
    char msg[64] = {0};
    ssize_t n;

    (void)state;
    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        size_t cap = 8;

        (void)dup2(fds[1], STDERR_FILENO);
        (void)xgrow(NULL, &cap, SIZE_MAX / 2, 16); /* cannot be satisfied */
        _exit(0);
    }
    (void)close(fds[1]);
    n = read(fds[0], msg, sizeof(msg) - 1);
    (void)close(fds[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
    assert_true(n > 0);
    assert_string_equal(msg, "celer: out of memory\n");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xmalloc_zero),
        cmocka_unit_test(test_xcalloc_zeroes),
        cmocka_unit_test(test_xrealloc_keeps_contents),
        cmocka_unit_test(test_xgrow),
        cmocka_unit_test(test_xgrow_keeps_contents),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_xnew_and_clear_free),
        cmocka_unit_test(test_xgrow_overflow_aborts),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
