/*
 * test_buf: the owned buffer with a ceiling: try_ functions fail with
 * CELER_ELIMIT and leave the buffer as it was; lines come off the front
 * (CRLF, bare LF, partial lines) as views that stay valid; consumed space
 * is reused by compaction instead of growth.
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

#include "core/buf.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static void
assert_strv_mem(struct strv v, const char *want, size_t len)
{
    assert_int_equal(v.len, len);
    if (len) {
        assert_memory_equal(v.ptr, want, len);
    }
}

static void
assert_strv(struct strv v, const char *want)
{
    assert_strv_mem(v, want, strlen(want));
}

/* The buffer holds exactly want[0, len) and keeps it NUL-terminated. */
static void
assert_buf(const struct buf *b, const char *want, size_t len)
{
    assert_strv_mem(buf_data(b), want, len);
    assert_int_equal(buf_len(b), len);
    assert_true(b->len <= b->max);
    if (b->data) {
        assert_true(b->start + b->len < b->cap);
        assert_int_equal(b->data[b->start + b->len], '\0');
    }
}

static void
test_empty(void **state)
{
    struct buf b;
    struct strv line;
    char *s;

    (void)state;
    buf_init(&b, 100);
    assert_buf(&b, "", 0);
    assert_non_null(buf_data(&b).ptr); /* "" rather than NULL */
    assert_false(buf_take_line(&b, &line, NULL));
    buf_consume(&b, 5);
    buf_reset(&b);
    assert_buf(&b, "", 0);
    s = buf_steal_cstr(&b);
    assert_string_equal(s, "");
    free(s);
    buf_release(&b);
    buf_release(&b); /* twice is harmless */
}

static void
test_append(void **state)
{
    struct buf b;

    (void)state;
    buf_init(&b, BUF_UNLIMITED);
    buf_append(&b, "abc", 3);
    buf_append_strv(&b, STRV_LIT("def"));
    buf_append_cstr(&b, "ghi");
    buf_printf(&b, "%d-%s", 42, "x");
    buf_append(&b, "\0z", 2); /* binary data */
    assert_buf(&b, "abcdefghi42-x\0z", 15);
    buf_release(&b);
    assert_null(b.data);
    buf_append_cstr(&b, "again"); /* usable after release */
    assert_buf(&b, "again", 5);
    buf_release(&b);
}

enum buf_op { OP_APPEND, OP_PRINTF, OP_RESERVE };

static void
test_ceiling(void **state)
{
    static const struct {
        size_t max;
        const char *initial;
        size_t consumed; /* dropped from the front before the op */
        enum buf_op op;
        const char *arg;
        size_t reserve;
        int rc;
    } cases[] = {
        {8, "", 0, OP_APPEND, "12345678", 0, 0},
        {8, "", 0, OP_APPEND, "123456789", 0, CELER_ELIMIT},
        {8, "abcd", 0, OP_APPEND, "1234", 0, 0},
        {8, "abcd", 0, OP_APPEND, "12345", 0, CELER_ELIMIT},
        {8, "abcdefgh", 0, OP_APPEND, "", 0, 0},
        {8, "abcdefgh", 0, OP_APPEND, "1", 0, CELER_ELIMIT},
        {8, "abcdefgh", 4, OP_APPEND, "1234", 0, 0}, /* the ceiling bounds len, not position */
        {8, "abcdefgh", 4, OP_APPEND, "12345", 0, CELER_ELIMIT},
        {8, "abc", 0, OP_PRINTF, "12345", 0, 0},
        {8, "abc", 0, OP_PRINTF, "123456", 0, CELER_ELIMIT},
        {8, "abcdefgh", 0, OP_PRINTF, "", 0, 0},
        {8, "abcdefgh", 0, OP_PRINTF, "x", 0, CELER_ELIMIT},
        {0, "", 0, OP_APPEND, "", 0, 0},
        {0, "", 0, OP_APPEND, "x", 0, CELER_ELIMIT},
        {0, "", 0, OP_PRINTF, "", 0, 0},
        {0, "", 0, OP_PRINTF, "x", 0, CELER_ELIMIT},
        /* Longer than the first allocation: printf's second pass. */
        {100, "abc", 0, OP_PRINTF,
         "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567"
         "890123456",
         0, 0},
        {100, "abc", 0, OP_PRINTF,
         "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567"
         "8901234567",
         0, CELER_ELIMIT},
        {8, "abc", 0, OP_RESERVE, NULL, 5, 0},
        {8, "abc", 0, OP_RESERVE, NULL, 6, CELER_ELIMIT},
        {8, "abcdefgh", 0, OP_RESERVE, NULL, 0, 0},
        {8, "abcdefgh", 0, OP_RESERVE, NULL, 1, CELER_ELIMIT},
    };

    (void)state;
    for (size_t i = 0; i < NELEM(cases); i++) {
        const char *init = cases[i].initial + cases[i].consumed;
        size_t init_len = strlen(init);
        struct buf b;
        char want[256];
        int rc = 0;

        buf_init(&b, cases[i].max);
        assert_int_equal(try_buf_append(&b, cases[i].initial, strlen(cases[i].initial)), 0);
        buf_consume(&b, cases[i].consumed);
        assert_buf(&b, init, init_len);
        switch (cases[i].op) {
        case OP_APPEND:
            rc = try_buf_append(&b, cases[i].arg, strlen(cases[i].arg));
            break;
        case OP_PRINTF:
            rc = try_buf_printf(&b, "%s", cases[i].arg);
            break;
        case OP_RESERVE: {
            size_t room = 0;
            char *p = try_buf_reserve(&b, cases[i].reserve, &room);

            rc = p ? 0 : CELER_ELIMIT;
            if (p) {
                assert_true(room >= cases[i].reserve);
                assert_true(room <= cases[i].max - init_len); /* room never exceeds the ceiling */
                assert_ptr_equal(p, buf_data(&b).ptr + init_len);
            }
            break;
        }
        }
        if (rc != cases[i].rc) {
            fail_msg("case %zu: rc %d, want %d", i, rc, cases[i].rc);
        }
        /* On failure the buffer is exactly as before, still terminated. */
        (void)snprintf(want, sizeof(want), "%s%s", init,
                       rc == 0 && cases[i].arg ? cases[i].arg : "");
        assert_buf(&b, want, strlen(want));
        buf_release(&b);
    }
}

static void
test_printf_long(void **state)
{
    struct buf b;
    char big[5000];

    (void)state;
    memset(big, 'q', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    buf_init(&b, BUF_UNLIMITED);
    buf_append_cstr(&b, "<");
    assert_int_equal(try_buf_printf(&b, "%s>%d", big, 7), 0);
    assert_int_equal(buf_len(&b), 1 + 4999 + 2);
    assert_int_equal(buf_data(&b).ptr[0], '<');
    assert_int_equal(buf_data(&b).ptr[4999], 'q');
    assert_memory_equal(buf_data(&b).ptr + 5000, ">7", 2);
    assert_int_equal(b.data[b.start + b.len], '\0');
    buf_release(&b);
}

struct line_case {
    struct strv in;
    struct strv lines[4];
    bool bare[4];
    size_t nlines;
    struct strv rest;
};

static void
test_take_line_table(void **state)
{
    const struct line_case cases[] = {
        {STRV_LIT("a\r\nb\nc"), {STRV_LIT("a"), STRV_LIT("b")}, {false, true}, 2, STRV_LIT("c")},
        {STRV_LIT("\r\n"), {STRV_LIT("")}, {false}, 1, STRV_LIT("")},
        {STRV_LIT("\n"), {STRV_LIT("")}, {true}, 1, STRV_LIT("")},
        {STRV_LIT("a\r"), {STRV_NULL}, {false}, 0, STRV_LIT("a\r")},
        /* Only the CR right before the LF goes. */
        {STRV_LIT("a\r\r\n"), {STRV_LIT("a\r")}, {false}, 1, STRV_LIT("")},
        {STRV_LIT("a\rb\n"), {STRV_LIT("a\rb")}, {true}, 1, STRV_LIT("")},
        {STRV_LIT(""), {STRV_NULL}, {false}, 0, STRV_LIT("")},
        {STRV_LIT("no line end"), {STRV_NULL}, {false}, 0, STRV_LIT("no line end")},
        {STRV_LIT("\n\n\r\n"),
         {STRV_LIT(""), STRV_LIT(""), STRV_LIT("")},
         {true, true, false},
         3,
         STRV_LIT("")},
        {STRV_LIT("\r\r\n\r"), {STRV_LIT("\r")}, {false}, 1, STRV_LIT("\r")},
        /* A NUL is data like any other byte. */
        {STRV_LIT("x\0y\r\n\0"), {STRV_LIT("x\0y")}, {false}, 1, STRV_LIT("\0")},
    };

    (void)state;
    for (size_t i = 0; i < NELEM(cases); i++) {
        struct buf b;
        struct strv line;
        bool bare;
        size_t n = 0, rest_len;

        buf_init(&b, 1024);
        buf_append_strv(&b, cases[i].in);
        while (buf_take_line(&b, &line, &bare)) {
            assert_true(n < cases[i].nlines);
            assert_strv_mem(line, cases[i].lines[n].ptr, cases[i].lines[n].len);
            assert_int_equal(bare, cases[i].bare[n]);
            n++;
        }
        assert_int_equal(n, cases[i].nlines);
        assert_buf(&b, cases[i].rest.ptr, cases[i].rest.len);
        /* The rest completes with the next LF; a CR already buffered pairs with it. */
        buf_append_cstr(&b, "\n");
        assert_true(buf_take_line(&b, &line, &bare));
        rest_len = cases[i].rest.len;
        if (rest_len && cases[i].rest.ptr[rest_len - 1] == '\r') {
            rest_len--;
        }
        assert_strv_mem(line, cases[i].rest.ptr, rest_len);
        assert_int_equal(bare, rest_len == cases[i].rest.len);
        assert_buf(&b, "", 0);
        buf_release(&b);
    }
}

static void
test_take_line_chunked(void **state)
{
    static const char input[] = "EHLO client.example\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\n"
                                "DATA\r\n\r\n.\r\nQUIT\r\n";
    static const char *const want[] = {
        "EHLO client.example", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA", "", ".", "QUIT"};
    static const bool want_bare[] = {false, false, true, false, false, false, false};

    (void)state;
    /* Whatever the chunking (CR and LF may arrive apart), the same lines come out. */
    for (size_t chunk = 1; chunk <= sizeof(input); chunk++) {
        struct buf b;
        struct strv line;
        bool bare;
        size_t n = 0;

        buf_init(&b, 256);
        for (size_t off = 0; off < sizeof(input) - 1; off += chunk) {
            size_t k = sizeof(input) - 1 - off < chunk ? sizeof(input) - 1 - off : chunk;

            assert_int_equal(try_buf_append(&b, input + off, k), 0);
            while (buf_take_line(&b, &line, &bare)) {
                assert_true(n < NELEM(want));
                assert_strv(line, want[n]);
                assert_int_equal(bare, want_bare[n]);
                n++;
            }
        }
        assert_int_equal(n, NELEM(want));
        assert_buf(&b, "", 0);
        buf_release(&b);
    }
}

static void
test_views_stay_valid(void **state)
{
    struct buf b;
    struct strv l1, l2, l3, tail;
    const char *before;

    (void)state;
    buf_init(&b, 1024);
    buf_append_cstr(&b, "one\r\ntwo\nthree\r\nfour");
    before = b.data;
    assert_true(buf_take_line(&b, &l1, NULL));
    assert_true(buf_take_line(&b, &l2, NULL));
    assert_true(buf_take_line(&b, &l3, NULL));
    assert_false(buf_take_line(&b, &tail, NULL));
    assert_ptr_equal(b.data, before); /* taking lines never moves the bytes */
    assert_strv(l1, "one");
    assert_strv(l2, "two");
    assert_strv(l3, "three");
    assert_buf(&b, "four", 4);
    /* Dropping the rest adds nothing, so the views still hold. */
    buf_consume(&b, buf_len(&b));
    assert_buf(&b, "", 0);
    assert_strv(l1, "one");
    assert_strv(l2, "two");
    assert_strv(l3, "three");
    buf_consume(&b, 10);
    assert_strv(l1, "one");
    buf_release(&b);
}

static void
test_compaction(void **state)
{
    char chunk[60];
    struct buf b;
    size_t cap;

    (void)state;
    for (size_t i = 0; i < sizeof(chunk); i++) {
        chunk[i] = (char)('A' + i % 26);
    }
    buf_init(&b, BUF_UNLIMITED);
    buf_append(&b, chunk, 60);
    cap = b.cap;
    assert_int_equal(cap, 64);
    buf_consume(&b, 50);
    assert_int_equal(b.start, 50);
    assert_buf(&b, chunk + 50, 10);
    /* 10 left + 40 new fit in 64 once moved to the front: no growth. */
    buf_append(&b, chunk, 40);
    assert_int_equal(b.cap, cap);
    assert_int_equal(b.start, 0);
    assert_strv_mem(strv_sub(buf_data(&b), 0, 10), chunk + 50, 10);
    assert_strv_mem(strv_sub(buf_data(&b), 10, 40), chunk, 40);
    /* Too much even after compaction: grows and keeps the bytes. */
    buf_consume(&b, 5);
    buf_append(&b, chunk, 60);
    assert_true(b.cap > cap);
    assert_int_equal(buf_len(&b), 105);
    assert_strv_mem(strv_sub(buf_data(&b), 0, 5), chunk + 55, 5);
    assert_strv_mem(strv_sub(buf_data(&b), 45, 60), chunk, 60);
    assert_int_equal(b.data[b.start + b.len], '\0');
    buf_release(&b);
}

static void
test_steady_state_memory(void **state)
{
    struct buf b;
    struct strv line;
    size_t cap;

    (void)state;
    /* A session reading line after line keeps reusing the same bytes. */
    buf_init(&b, 512);
    buf_append_cstr(&b, "RCPT TO:<first@example.com>\r\nRCPT");
    cap = b.cap;
    for (int i = 0; i < 10000; i++) {
        assert_true(buf_take_line(&b, &line, NULL));
        assert_true(strv_has_prefix(line, STRV_LIT("RCPT TO:<")));
        assert_int_equal(try_buf_printf(&b, " TO:<u%d@example.com>\r\nRCPT", i % 1000), 0);
    }
    assert_int_equal(b.cap, cap);
    buf_release(&b);
}

static void
test_reserve_commit(void **state)
{
    struct buf b;
    size_t room = 0;
    char *p;

    (void)state;
    buf_init(&b, 1000);
    p = try_buf_reserve(&b, 10, &room);
    assert_non_null(p);
    assert_true(room >= 10);
    memcpy(p, "hello", 5);
    buf_commit(&b, 5);
    assert_buf(&b, "hello", 5);
    p = try_buf_reserve(&b, 500, NULL);
    assert_non_null(p);
    memset(p, 'x', 500);
    buf_commit(&b, 500);
    assert_int_equal(buf_len(&b), 505);
    assert_int_equal(buf_data(&b).ptr[504], 'x');
    /* Room is what the ceiling still allows, even if more memory is there. */
    p = try_buf_reserve(&b, 1, &room);
    assert_non_null(p);
    assert_true(room <= 1000 - 505);
    assert_null(try_buf_reserve(&b, 496, &room));
    assert_int_equal(buf_len(&b), 505);
    buf_commit(&b, 0);
    assert_int_equal(buf_len(&b), 505);
    buf_release(&b);
}

static void
test_reserve_without_commit(void **state)
{
    struct buf b;
    size_t room;

    (void)state;
    /* A reservation that is abandoned (read() found nothing) leaves a valid buffer. */
    buf_init(&b, BUF_UNLIMITED);
    assert_non_null(try_buf_reserve(&b, 10, &room)); /* first allocation */
    assert_buf(&b, "", 0);
    buf_append_cstr(&b, "abcdef");
    buf_consume(&b, 3);
    assert_non_null(try_buf_reserve(&b, b.cap - 4, &room)); /* compacts to the front */
    assert_int_equal(b.start, 0);
    assert_buf(&b, "def", 3);
    assert_non_null(try_buf_reserve(&b, 1000, &room)); /* grows */
    assert_buf(&b, "def", 3);
    buf_release(&b);
}

static void
test_reset_keeps_memory(void **state)
{
    struct buf b;
    const char *data;
    size_t cap;

    (void)state;
    buf_init(&b, BUF_UNLIMITED);
    buf_printf(&b, "%0300d", 1);
    data = b.data;
    cap = b.cap;
    buf_reset(&b);
    assert_buf(&b, "", 0);
    assert_int_equal(b.cap, cap);
    buf_printf(&b, "%0200d", 2);
    assert_ptr_equal(b.data, data);
    assert_int_equal(b.cap, cap);
    buf_release(&b);
}

static void
test_steal(void **state)
{
    struct buf b;
    char *s;

    (void)state;
    buf_init(&b, 100);
    buf_append_cstr(&b, "hello world");
    buf_consume(&b, 6);
    s = buf_steal_cstr(&b);
    assert_string_equal(s, "world");
    free(s);
    assert_null(b.data);
    assert_int_equal(buf_len(&b), 0);
    assert_int_equal(b.max, 100);
    buf_append_cstr(&b, "again");
    assert_buf(&b, "again", 5);
    buf_release(&b);
}

static void
test_append_past_ceiling_aborts(void **state)
{
    pid_t pid;
    int status;

    (void)state;
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct buf b;

        buf_init(&b, 4);
        buf_append_cstr(&b, "12345"); /* the caller's promise is broken: abort */
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

static uint64_t
rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

/* Random appends, line takes and consumes against a plain array. */
static void
test_random_against_reference(void **state)
{
    enum { MAX = 700 };
    static const char alphabet[] = "ab\r\n";
    uint64_t seed = 12345;
    char ref[MAX];
    size_t rlen = 0;
    struct buf b;

    (void)state;
    buf_init(&b, MAX);
    for (int step = 0; step < 200000; step++) {
        unsigned op = (unsigned)(rng_next(&seed) % 10);

        if (op < 5) {
            char add[120];
            size_t k = rng_next(&seed) % sizeof(add);
            int rc;

            for (size_t i = 0; i < k; i++) {
                add[i] = alphabet[rng_next(&seed) % 4];
            }
            rc = (op == 0) ? try_buf_printf(&b, "%.*s", (int)k, add) : try_buf_append(&b, add, k);
            if (rlen + k <= MAX) {
                assert_int_equal(rc, 0);
                memcpy(ref + rlen, add, k);
                rlen += k;
            } else {
                assert_int_equal(rc, CELER_ELIMIT);
            }
        } else if (op < 9) {
            const char *lf = rlen ? memchr(ref, '\n', rlen) : NULL;
            struct strv line;
            bool bare;

            assert_int_equal(buf_take_line(&b, &line, &bare), lf != NULL);
            if (lf) {
                size_t n = (size_t)(lf - ref);
                bool cr = n > 0 && ref[n - 1] == '\r';

                assert_int_equal(bare, !cr);
                assert_strv_mem(line, ref, cr ? n - 1 : n);
                memmove(ref, lf + 1, rlen - n - 1);
                rlen -= n + 1;
            }
        } else {
            size_t k = rng_next(&seed) % 40;

            buf_consume(&b, k);
            k = k < rlen ? k : rlen;
            memmove(ref, ref + k, rlen - k);
            rlen -= k;
        }
        assert_buf(&b, ref, rlen);
    }
    assert_true(b.cap <= 2048); /* compaction kept it near the ceiling */
    buf_release(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_append),
        cmocka_unit_test(test_ceiling),
        cmocka_unit_test(test_printf_long),
        cmocka_unit_test(test_take_line_table),
        cmocka_unit_test(test_take_line_chunked),
        cmocka_unit_test(test_views_stay_valid),
        cmocka_unit_test(test_compaction),
        cmocka_unit_test(test_steady_state_memory),
        cmocka_unit_test(test_reserve_commit),
        cmocka_unit_test(test_reserve_without_commit),
        cmocka_unit_test(test_reset_keeps_memory),
        cmocka_unit_test(test_steal),
        cmocka_unit_test(test_append_past_ceiling_aborts),
        cmocka_unit_test(test_random_against_reference),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
