/*
 * test_err: err_str names success, errno values and every CELER_E* code.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"

static void
test_success(void **state)
{
    (void)state;
    assert_string_equal(err_str(0), "success");
}

static void
test_celer_codes(void **state)
{
    static const struct {
        int code;
        const char *text;
    } cases[] = {
        {CELER_EPARSE, "parse error"},     {CELER_ELIMIT, "limit exceeded"},
        {CELER_ENOTFOUND, "not found"},    {CELER_ECONFIG, "invalid configuration"},
        {CELER_ECORRUPT, "corrupt data"},  {CELER_ECLOSED, "closed"},
        {CELER_ETIMEOUT, "timed out"},     {CELER_EPROTO, "protocol violation"},
        {CELER_ETLS, "TLS failure"},       {CELER_EDNS, "DNS failure"},
        {CELER_EEXISTS, "already exists"}, {CELER_EBUSY, "busy"},
    };

    (void)state;
    /* The table covers every code between the base and the end marker. */
    assert_int_equal(sizeof(cases) / sizeof(cases[0]), CELER_EBASE - CELER_ELAST - 1);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_string_equal(err_str(cases[i].code), cases[i].text);
    }
}

static void
test_errno_values(void **state)
{
    static const int errnos[] = {EPERM,  ENOENT, EINTR, EIO,          EAGAIN,    ENOMEM,   EACCES,
                                 EEXIST, ENOSPC, EPIPE, ECONNREFUSED, ETIMEDOUT, EHWPOISON};

    (void)state;
    for (size_t i = 0; i < sizeof(errnos) / sizeof(errnos[0]); i++) {
        assert_string_equal(err_str(-errnos[i]), strerrordesc_np(errnos[i]));
    }
    assert_string_equal(err_str(-ENOENT), "No such file or directory");
    assert_string_equal(err_str(-ENOSPC), "No space left on device");
}

static void
test_unknown_values(void **state)
{
    (void)state;
    /* Negative but no errno: */
    assert_string_equal(err_str(-4000), "unknown system error");
    assert_string_equal(err_str(CELER_EBASE + 1), "unknown system error");
    /* Outside both ranges: */
    assert_string_equal(err_str(CELER_EBASE), "unknown error");
    assert_string_equal(err_str(CELER_ELAST), "unknown error");
    assert_string_equal(err_str(CELER_ELAST - 1), "unknown error");
    assert_string_equal(err_str(INT_MIN), "unknown error");
    assert_string_equal(err_str(1), "unknown error");
    assert_string_equal(err_str(ENOENT),
                        "unknown error"); /* positive errno is not our convention */
    assert_string_equal(err_str(INT_MAX), "unknown error");
}

static void
test_no_collision_with_errno(void **state)
{
    (void)state;
    /* The kernel's errno values stay below 4096 (MAX_ERRNO). */
    assert_true(-CELER_EBASE > 4095);
    for (int e = CELER_EBASE - 1; e > CELER_ELAST; e--) {
        assert_true(e < -4095);
        assert_string_not_equal(err_str(e), "unknown error");
        assert_string_not_equal(err_str(e), "unknown system error");
        for (int f = e - 1; f > CELER_ELAST; f--) {
            assert_string_not_equal(err_str(e), err_str(f));
        }
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_success),
        cmocka_unit_test(test_celer_codes),
        cmocka_unit_test(test_errno_values),
        cmocka_unit_test(test_unknown_values),
        cmocka_unit_test(test_no_collision_with_errno),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
