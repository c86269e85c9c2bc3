/*
 * test_log: the level threshold (a disabled level never reaches the sink and
 * does not even evaluate its arguments), level names, line truncation, the
 * stderr sink's format, and log_escape of peer text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/log.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

struct sink_record {
    int calls;
    enum log_level level;
    char line[4096];
    size_t len;
};

static void
counting_sink(enum log_level level, const char *line, size_t len, void *arg)
{
    struct sink_record *r = arg;

    r->calls++;
    r->level = level;
    r->len = len;
    memcpy(r->line, line, len < sizeof(r->line) ? len : sizeof(r->line));
}

static int side_effects;

static int
side_effect(void)
{
    return ++side_effects;
}

static int
teardown(void **state)
{
    (void)state;
    log_set_sink(NULL, NULL);
    log_set_level(LOG_LEVEL_INFO);
    return 0;
}

static void
emit_at(enum log_level level, int arg)
{
    switch (level) {
    case LOG_LEVEL_DEBUG:
        log_debug("ev n=%d", arg);
        break;
    case LOG_LEVEL_INFO:
        log_info("ev n=%d", arg);
        break;
    case LOG_LEVEL_NOTICE:
        log_notice("ev n=%d", arg);
        break;
    case LOG_LEVEL_WARNING:
        log_warning("ev n=%d", arg);
        break;
    case LOG_LEVEL_ERROR:
        log_error("ev n=%d", arg);
        break;
    case LOG_LEVEL_CRIT:
        log_crit("ev n=%d", arg);
        break;
    }
}

static void
test_threshold(void **state)
{
    struct sink_record r = {0};

    (void)state;
    log_set_sink(counting_sink, &r);
    for (int threshold = LOG_LEVEL_DEBUG; threshold <= LOG_LEVEL_CRIT; threshold++) {
        log_set_level((enum log_level)threshold);
        for (int level = LOG_LEVEL_DEBUG; level <= LOG_LEVEL_CRIT; level++) {
            int before = r.calls;

            emit_at((enum log_level)level, threshold * 10 + level);
            if (level >= threshold) {
                char want[32];

                assert_int_equal(r.calls, before + 1);
                assert_int_equal(r.level, level);
                (void)snprintf(want, sizeof(want), "ev n=%d", threshold * 10 + level);
                assert_int_equal(r.len, strlen(want));
                assert_memory_equal(r.line, want, r.len);
            } else {
                assert_int_equal(r.calls, before); /* the sink was not called */
            }
        }
    }
}

static void
test_disabled_level_skips_arguments(void **state)
{
    struct sink_record r = {0};

    (void)state;
    log_set_sink(counting_sink, &r);
    log_set_level(LOG_LEVEL_WARNING);
    side_effects = 0;
    log_debug("x=%d", side_effect());
    log_info("x=%d", side_effect());
    log_notice("x=%d", side_effect());
    assert_int_equal(side_effects, 0); /* a branch, not a format */
    assert_int_equal(r.calls, 0);
    log_warning("x=%d", side_effect());
    assert_int_equal(side_effects, 1);
    assert_int_equal(r.calls, 1);
    assert_memory_equal(r.line, "x=1", 3);
}

static void
test_set_sink_null_restores_default(void **state)
{
    struct sink_record r = {0};
    int fds[2], saved;
    char out[256] = {0};
    ssize_t n;

    (void)state;
    log_set_sink(counting_sink, &r);
    log_set_sink(NULL, &r); /* back to stderr */
    assert_int_equal(pipe(fds), 0);
    saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_int_equal(dup2(fds[1], STDERR_FILENO), STDERR_FILENO);
    log_warning("queue_full domain=%s count=%d", "example.com", 3);
    log_crit("panic");
    log_debug("hidden");
    assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
    (void)close(saved);
    (void)close(fds[1]);
    n = read(fds[0], out, sizeof(out) - 1);
    (void)close(fds[0]);
    assert_true(n > 0);
    assert_string_equal(out, "warning: queue_full domain=example.com count=3\ncritical: panic\n");
    assert_int_equal(r.calls, 0);
}

static void
test_long_line_truncated(void **state)
{
    struct sink_record r = {0};
    char big[3001];

    (void)state;
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    log_set_sink(counting_sink, &r);
    log_error("big v=%s", big);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.len, 2047);
    assert_memory_equal(r.line, "big v=zzz", 9);
    assert_int_equal(r.line[2046], 'z');
}

static void
test_level_names(void **state)
{
    static const struct {
        const char *name;
        int level;
    } parse[] = {
        {"debug", 0}, {"info", 1},  {"notice", 2},  {"warning", 3}, {"error", 4},  {"critical", 5},
        {"crit", 5},  {"DEBUG", 0}, {"Warning", 3}, {"0", 0},       {"5", 5},      {"6", -1},
        {"-1", -1},   {"10", -1},   {"", -1},       {"warn", -1},   {"info ", -1}, {"err", -1},
    };
    static const char *const names[] = {"debug", "info", "notice", "warning", "error", "critical"};

    (void)state;
    for (size_t i = 0; i < NELEM(parse); i++) {
        if (log_level_parse(parse[i].name) != parse[i].level) {
            fail_msg("log_level_parse(\"%s\") = %d, want %d", parse[i].name,
                     log_level_parse(parse[i].name), parse[i].level);
        }
    }
    for (int l = 0; l < (int)NELEM(names); l++) {
        assert_string_equal(log_level_name((enum log_level)l), names[l]);
        assert_int_equal(log_level_parse(names[l]), l);
    }
    assert_string_equal(log_level_name((enum log_level)6), "unknown");
    assert_string_equal(log_level_name((enum log_level) - 1), "unknown");
}

static void
test_escape_table(void **state)
{
    static const struct {
        const char *in;
        size_t len;
        size_t size;
        const char *want;
    } cases[] = {
        {"abc", 3, 64, "abc"},
        {"", 0, 64, ""},
        {"\r\n", 2, 64, "\\x0d\\x0a"},
        {"a\\b", 3, 64, "a\\\\b"},
        {"\x7f\x80\xff", 3, 64, "\\x7f\\x80\\xff"},
        {"nul\0here", 8, 64, "nul\\x00here"},
        {"tab\there", 8, 64, "tab\\x09here"},
        {" ~", 2, 64, " ~"}, /* the printable range is 0x20..0x7e */
        {"\x1b[31mred", 8, 64, "\\x1b[31mred"},
        /* Truncation keeps room for "..." and the NUL. */
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 30, 16, "aaaaaaaaaaaa..."},
        {"aaaaaaaaaaaaaaaa", 16, 16, "aaaaaaaaaaaa..."},
        /* Whatever fits whole is not truncated. */
        {"aaaaaaaaaaaaaaa", 15, 16, "aaaaaaaaaaaaaaa"},
        {"abc", 3, 4, "abc"},
        {"aaaaaaaaaa\x01", 11, 16, "aaaaaaaaaa\\x01"},
        {"aaaaaaaaaaa\x01", 12, 16, "aaaaaaaaaaa\\x01"},
        /* An escape is never split. */
        {"aaaaaaaaaaaa\x01", 13, 16, "aaaaaaaaaaaa..."},
        {"aaaaaaaaa\x01\x02", 11, 16, "aaaaaaaaa..."},
        {"aaaaaaaaaaaaaa\\", 15, 16, "aaaaaaaaaaaa..."},
        /* Too small even for "...": empty. */
        {"abcd", 4, 4, "..."},
        {"abcd", 4, 3, ""},
        {"abc", 3, 1, ""},
        {"\x01", 1, 4, "..."},
        {"\x01", 1, 5, "\\x01"},
    };

    (void)state;
    for (size_t i = 0; i < NELEM(cases); i++) {
        char dst[80];

        memset(dst, '#', sizeof(dst));
        assert_ptr_equal(log_escape(cases[i].in, cases[i].len, dst, cases[i].size), dst);
        if (strcmp(dst, cases[i].want) != 0) {
            fail_msg("case %zu: \"%s\", want \"%s\"", i, dst, cases[i].want);
        }
        assert_int_equal(dst[cases[i].size], '#'); /* nothing written past size */
    }
    {
        char one = '#';

        log_escape("abc", 3, &one, 0); /* size 0: untouched */
        assert_int_equal(one, '#');
    }
}

static uint64_t
rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static int
hex_value(char c)
{
    return c >= 'a' ? c - 'a' + 10 : c - '0';
}

/* Decodes escaped text; returns the byte count, or -1 if malformed. */
static long
unescape(const char *s, size_t len, char *out)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        if (s[i] != '\\') {
            out[o++] = s[i];
        } else if (i + 1 < len && s[i + 1] == '\\') {
            out[o++] = '\\';
            i++;
        } else if (i + 3 < len && s[i + 1] == 'x') {
            out[o++] = (char)(hex_value(s[i + 2]) * 16 + hex_value(s[i + 3]));
            i += 3;
        } else {
            return -1;
        }
    }
    return (long)o;
}

static void
test_escape_random(void **state)
{
    uint64_t seed = 77;

    (void)state;
    for (int round = 0; round < 20000; round++) {
        char in[40], out[200], back[200];
        size_t len = rng_next(&seed) % sizeof(in);
        size_t size = 1 + rng_next(&seed) % 120;
        size_t full = 0, olen;
        long blen;

        for (size_t i = 0; i < len; i++) {
            in[i] = (rng_next(&seed) & 1) ? (char)('a' + rng_next(&seed) % 26)
                                          : (char)(rng_next(&seed) & 0xff);
            full += ((unsigned char)in[i] < 0x20 || (unsigned char)in[i] > 0x7e) ? 4
                    : in[i] == '\\'                                              ? 2
                                                                                 : 1;
        }
        log_escape(in, len, out, size);
        olen = strlen(out);
        assert_true(olen < size);
        for (size_t i = 0; i < olen; i++) {
            assert_true(out[i] >= 0x20 && out[i] <= 0x7e);
        }
        if (full + 1 <= size) {
            /* Fits: complete and reversible. */
            blen = unescape(out, olen, back);
            assert_int_equal(blen, (long)len);
            assert_memory_equal(back, in, len);
        } else {
            /* Truncated: an escaped prefix, then "..." when there is room for it. */
            if (size >= 4) {
                assert_true(olen >= 3);
                assert_memory_equal(out + olen - 3, "...", 3);
                olen -= 3;
            } else {
                assert_int_equal(olen, 0);
            }
            blen = unescape(out, olen, back);
            assert_true(blen >= 0 && (size_t)blen < len);
            assert_memory_equal(back, in, (size_t)blen);
        }
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_threshold, teardown),
        cmocka_unit_test_teardown(test_disabled_level_skips_arguments, teardown),
        cmocka_unit_test_teardown(test_set_sink_null_restores_default, teardown),
        cmocka_unit_test_teardown(test_long_line_truncated, teardown),
        cmocka_unit_test(test_level_names),
        cmocka_unit_test(test_escape_table),
        cmocka_unit_test(test_escape_random),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
