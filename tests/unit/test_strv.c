/*
 * test_strv: views, comparisons (exact and ASCII case-insensitive), search,
 * splitting, number parsing and hashing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/strv.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Asserts that v holds exactly the bytes of want. */
static void
assert_strv(struct strv v, const char *want)
{
    assert_int_equal(v.len, strlen(want));
    if (v.len) {
        assert_memory_equal(v.ptr, want, v.len);
    }
}

static void
test_make(void **state)
{
    struct strv a = strv_from_cstr("abc");
    struct strv n = strv_from_cstr(NULL);
    struct strv l = STRV_LIT("x\0y");
    char out[16];

    (void)state;
    assert_strv(a, "abc");
    assert_null(n.ptr);
    assert_int_equal(n.len, 0);
    assert_int_equal(l.len, 3); /* literal length, NUL included */
    assert_int_equal(STRV_NULL.len, 0);
    assert_strv(strv_make("abcdef", 2), "ab");
    (void)snprintf(out, sizeof(out), "[%.*s]", STRV_FMT(strv_make("hello", 4)));
    assert_string_equal(out, "[hell]");
}

static void
test_compare_table(void **state)
{
    static const struct {
        const char *a, *b;
        int cmp, cmp_ci; /* sign only */
    } cases[] = {
        {"", "", 0, 0},
        {"a", "", 1, 1},
        {"", "a", -1, -1},
        {"abc", "abc", 0, 0},
        {"abc", "ABC", 1, 0},
        {"ABC", "abd", -1, -1},
        {"abc", "abcd", -1, -1},
        {"abcd", "ABC", 1, 1},
        {"Example.COM", "example.com", -1, 0},
        /* Only A-Z fold: '@'/'`', '['/'{', '^'/'~' differ by 0x20 but are not letters. */
        {"@", "`", -1, -1},
        {"[", "{", -1, -1},
        {"^", "~", -1, -1},
        /* Bytes above 0x7f are compared unfolded and unsigned. */
        {"\xc4", "\xe4", -1, -1},
        {"\xff", "a", 1, 1},
        {"z", "\x80", -1, -1},
    };

    (void)state;
    for (size_t i = 0; i < NELEM(cases); i++) {
        struct strv a = strv_from_cstr(cases[i].a), b = strv_from_cstr(cases[i].b);
        int c = strv_cmp(a, b), ci = strv_cmp_ci(a, b);

        assert_int_equal(c < 0 ? -1 : c > 0, cases[i].cmp);
        assert_int_equal(ci < 0 ? -1 : ci > 0, cases[i].cmp_ci);
        /* Antisymmetric. */
        c = strv_cmp(b, a);
        ci = strv_cmp_ci(b, a);
        assert_int_equal(c < 0 ? -1 : c > 0, -cases[i].cmp);
        assert_int_equal(ci < 0 ? -1 : ci > 0, -cases[i].cmp_ci);
        assert_int_equal(strv_eq(a, b), cases[i].cmp == 0);
        assert_int_equal(strv_eq_ci(a, b), cases[i].cmp_ci == 0);
        assert_int_equal(strv_eq_cstr(a, cases[i].b), cases[i].cmp == 0);
        assert_int_equal(strv_eq_cstr_ci(a, cases[i].b), cases[i].cmp_ci == 0);
    }
}

static void
test_compare_embedded_nul(void **state)
{
    struct strv a = strv_make("a\0b", 3), b = strv_make("a\0c", 3), c = strv_make("A\0B", 3);

    (void)state;
    assert_false(strv_eq(a, b));
    assert_true(strv_cmp(a, b) < 0);
    assert_true(strv_eq_ci(a, c));
    assert_false(strv_eq_cstr(a, "a")); /* the C string stops at the NUL */
    assert_true(strv_eq(STRV_NULL, strv_from_cstr("")));
    assert_true(strv_eq_ci(STRV_NULL, STRV_NULL));
}

static void
test_prefix_suffix(void **state)
{
    static const struct {
        const char *s, *affix;
        bool prefix, prefix_ci, suffix_ci;
    } cases[] = {
        {"MAIL FROM:<a@b>", "MAIL FROM:", true, true, false},
        {"mail from:<a@b>", "MAIL FROM:", false, true, false},
        {"mail.example.COM", ".com", false, false, true},
        {"abc", "", true, true, true},
        {"", "", true, true, true},
        {"", "a", false, false, false},
        {"ab", "abc", false, false, false},
        {"abc", "abc", true, true, true},
        {"xABC", "abc", false, false, true},
    };

    (void)state;
    for (size_t i = 0; i < NELEM(cases); i++) {
        struct strv s = strv_from_cstr(cases[i].s), a = strv_from_cstr(cases[i].affix);

        assert_int_equal(strv_has_prefix(s, a), cases[i].prefix);
        assert_int_equal(strv_has_prefix_ci(s, a), cases[i].prefix_ci);
        assert_int_equal(strv_has_suffix_ci(s, a), cases[i].suffix_ci);
    }
}

static void
test_search(void **state)
{
    static const struct {
        const char *s;
        char c;
        ptrdiff_t chr, rchr;
    } chars[] = {
        {"", 'a', -1, -1},       {"a", 'a', 0, 0},         {"abcabc", 'c', 2, 5},
        {"abcabc", 'x', -1, -1}, {"user@host", '@', 4, 4}, {"@@", '@', 0, 1},
    };
    static const struct {
        const char *s, *needle;
        ptrdiff_t at;
    } finds[] = {
        {"", "", 0},
        {"abc", "", 0},
        {"", "a", -1},
        {"abc", "abcd", -1},
        {"hello world", "o w", 4},
        {"aaab", "aab", 1},
        {"\r\n.\r\n", "\r\n.\r\n", 0},
        {"x\r\n.\r", "\r\n.\r\n", -1},
    };

    (void)state;
    for (size_t i = 0; i < NELEM(chars); i++) {
        struct strv s = strv_from_cstr(chars[i].s);

        assert_int_equal(strv_chr(s, chars[i].c), chars[i].chr);
        assert_int_equal(strv_rchr(s, chars[i].c), chars[i].rchr);
    }
    for (size_t i = 0; i < NELEM(finds); i++) {
        assert_int_equal(strv_find(strv_from_cstr(finds[i].s), strv_from_cstr(finds[i].needle)),
                         finds[i].at);
    }
    /* A view ends at its length, not at a NUL or at the end of the array. */
    assert_int_equal(strv_chr(strv_make("abc", 2), 'c'), -1);
    assert_int_equal(strv_find(strv_make("abcd", 3), strv_from_cstr("cd")), -1);
    assert_int_equal(strv_chr(strv_make("a\0b", 3), 'b'), 2);
}

static void
test_sub_clamps(void **state)
{
    static const struct {
        size_t from, len;
        const char *want;
    } cases[] = {
        {0, 3, "abc"}, {0, 100, "abcdef"}, {2, 2, "cd"}, {4, 100, "ef"},       {6, 1, ""},
        {7, 1, ""},    {100, 0, ""},       {0, 0, ""},   {3, SIZE_MAX, "def"},
    };
    struct strv s = strv_from_cstr("abcdef");

    (void)state;
    for (size_t i = 0; i < NELEM(cases); i++) {
        struct strv v = strv_sub(s, cases[i].from, cases[i].len);

        assert_strv(v, cases[i].want);
        assert_true(v.ptr >= s.ptr && v.ptr + v.len <= s.ptr + s.len); /* stays inside */
    }
    assert_strv(strv_from(s, 4), "ef");
    assert_strv(strv_from(s, 10), "");
}

static void
test_trim(void **state)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"", ""},
        {"   ", ""},
        {"abc", "abc"},
        {"  abc  ", "abc"},
        {"\t\r\n abc \r\n", "abc"},
        {"a b", "a b"},
        {" a \t b ", "a \t b"},
        {"\x0b"
         "a\f",
         "\x0b"
         "a\f"}, /* only space, tab, CR and LF are trimmed */
    };

    (void)state;
    for (size_t i = 0; i < NELEM(cases); i++) {
        assert_strv(strv_trim(strv_from_cstr(cases[i].in)), cases[i].want);
    }
}

static void
test_split(void **state)
{
    static const struct {
        const char *in;
        char sep;
        const char *parts[6]; /* NULL-terminated */
    } cases[] = {
        {"a,b,,c", ',', {"a", "b", "", "c", NULL}},
        {"abc", ',', {"abc", NULL}},
        {",", ',', {"", NULL}}, /* the empty rest after a trailing sep is not a part */
        {",a", ',', {"", "a", NULL}},
        {"a,", ',', {"a", NULL}},
        {"user@host@x", '@', {"user", "host", "x", NULL}},
        {"", ',', {NULL}},
    };

    (void)state;
    for (size_t i = 0; i < NELEM(cases); i++) {
        struct strv s = strv_from_cstr(cases[i].in);
        size_t n = 0;

        while (s.len > 0) {
            struct strv part = strv_split(&s, cases[i].sep);

            assert_non_null(cases[i].parts[n]);
            assert_strv(part, cases[i].parts[n]);
            n++;
        }
        assert_null(cases[i].parts[n]);
    }
}

static void
test_split_rest(void **state)
{
    struct strv s = strv_from_cstr("key=value=more");
    struct strv k = strv_split(&s, '=');

    (void)state;
    assert_strv(k, "key");
    assert_strv(s, "value=more"); /* only the first sep splits */
    k = strv_split(&s, ';');
    assert_strv(k, "value=more");
    assert_int_equal(s.len, 0);
    k = strv_split(&s, ';'); /* splitting an empty view stays empty */
    assert_int_equal(k.len, 0);
    assert_int_equal(s.len, 0);
}

static void
test_next_word(void **state)
{
    static const struct {
        const char *in;
        const char *words[6]; /* NULL-terminated */
    } cases[] = {
        {"MAIL FROM:<a@b> SIZE=100", {"MAIL", "FROM:<a@b>", "SIZE=100", NULL}},
        {"  lead   and\ttrail \r\n", {"lead", "and", "trail", NULL}},
        {"", {NULL}},
        {" \t\r\n", {NULL}},
        {"one", {"one", NULL}},
    };

    (void)state;
    for (size_t i = 0; i < NELEM(cases); i++) {
        struct strv s = strv_from_cstr(cases[i].in);
        size_t n = 0;

        for (;;) {
            struct strv w = strv_next_word(&s);

            if (w.len == 0) {
                break;
            }
            assert_non_null(cases[i].words[n]);
            assert_strv(w, cases[i].words[n]);
            n++;
        }
        assert_null(cases[i].words[n]);
        assert_int_equal(s.len, 0);
    }
}

static void
test_to_u64(void **state)
{
    static const struct {
        const char *in;
        uint64_t max;
        int rc;
        uint64_t value;
    } cases[] = {
        {"0", UINT64_MAX, 0, 0},
        {"123", UINT64_MAX, 0, 123},
        {"000123", UINT64_MAX, 0, 123},
        {"18446744073709551615", UINT64_MAX, 0, UINT64_MAX},
        {"18446744073709551616", UINT64_MAX, CELER_ELIMIT, 0},
        {"18446744073709551620", UINT64_MAX, CELER_ELIMIT, 0},
        {"99999999999999999999", UINT64_MAX, CELER_ELIMIT, 0},
        {"184467440737095516150", UINT64_MAX, CELER_ELIMIT, 0},
        {"00000000000000000000000000000018446744073709551615", UINT64_MAX, 0, UINT64_MAX},
        {"100", 100, 0, 100},
        {"101", 100, CELER_ELIMIT, 0},
        {"1000", 100, CELER_ELIMIT, 0},
        {"5", 5, 0, 5},
        {"6", 5, CELER_ELIMIT, 0},
        {"7", 5, CELER_ELIMIT, 0}, /* a single digit above a small max */
        {"9", 0, CELER_ELIMIT, 0},
        {"0", 0, 0, 0},
        {"00", 0, 0, 0},
        {"25", 25, 0, 25},
        {"26", 25, CELER_ELIMIT, 0},
        {"19", 10, CELER_ELIMIT, 0},
        {"", UINT64_MAX, CELER_EPARSE, 0},
        {"12a", UINT64_MAX, CELER_EPARSE, 0},
        {"-1", UINT64_MAX, CELER_EPARSE, 0},
        {"+1", UINT64_MAX, CELER_EPARSE, 0},
        {" 1", UINT64_MAX, CELER_EPARSE, 0},
        {"1 ", UINT64_MAX, CELER_EPARSE, 0},
        {"0x10", UINT64_MAX, CELER_EPARSE, 0},
        {"1.5", UINT64_MAX, CELER_EPARSE, 0},
    };

    (void)state;
    for (size_t i = 0; i < NELEM(cases); i++) {
        uint64_t out = 0xdeadbeef;
        int rc = strv_to_u64(strv_from_cstr(cases[i].in), cases[i].max, &out);

        if (rc != cases[i].rc) {
            fail_msg("case %zu \"%s\" max %llu: rc %d, want %d", i, cases[i].in,
                     (unsigned long long)cases[i].max, rc, cases[i].rc);
        }
        if (rc == 0) {
            assert_true(out == cases[i].value);
        } else {
            assert_true(out == 0xdeadbeef); /* untouched on failure */
        }
    }
    /* The view's length bounds the parse. */
    {
        uint64_t out = 0;

        assert_int_equal(strv_to_u64(strv_make("12345", 3), UINT64_MAX, &out), 0);
        assert_true(out == 123);
    }
}

static void
test_to_u64_every_max(void **state)
{
    (void)state;
    /* For each max around small values, exactly the numbers <= max parse. */
    for (uint64_t max = 0; max < 130; max++) {
        for (uint64_t v = 0; v < 200; v++) {
            char text[8];
            uint64_t out = 0;
            int rc;

            (void)snprintf(text, sizeof(text), "%llu", (unsigned long long)v);
            rc = strv_to_u64(strv_from_cstr(text), max, &out);
            if (v <= max) {
                assert_int_equal(rc, 0);
                assert_true(out == v);
            } else {
                assert_int_equal(rc, CELER_ELIMIT);
            }
        }
    }
}

static void
test_dup_and_copy(void **state)
{
    char small[4];
    char big[16];
    char *d = strv_dup(strv_make("abcdef", 3));
    char *e = strv_dup(STRV_NULL);

    (void)state;
    assert_string_equal(d, "abc");
    assert_string_equal(e, "");
    free(d);
    free(e);
    assert_int_equal(strv_copy(strv_from_cstr("abcdef"), small, sizeof(small)), 6);
    assert_string_equal(small, "abc"); /* truncated, NUL-terminated */
    assert_int_equal(strv_copy(strv_from_cstr("abc"), big, sizeof(big)), 3);
    assert_string_equal(big, "abc");
    assert_int_equal(strv_copy(strv_from_cstr("abc"), small, sizeof(small)), 3);
    assert_string_equal(small, "abc"); /* exactly fits */
    big[0] = 'x';
    assert_int_equal(strv_copy(strv_from_cstr("abc"), big, 0), 3);
    assert_int_equal(big[0], 'x'); /* size 0: nothing written */
    assert_int_equal(strv_copy(STRV_NULL, big, sizeof(big)), 0);
    assert_string_equal(big, "");
}

static void
test_hash_vectors(void **state)
{
    (void)state;
    /* FNV-1a 64 reference values. */
    assert_true(strv_hash(STRV_NULL) == 0xcbf29ce484222325ULL);
    assert_true(strv_hash(STRV_LIT("a")) == 0xaf63dc4c8601ec8cULL);
    assert_true(strv_hash(STRV_LIT("foobar")) == 0x85944171f73967e8ULL);
    assert_true(strv_hash_ci(STRV_LIT("FOOBAR")) == 0x85944171f73967e8ULL);
    assert_true(strv_hash(STRV_LIT("FOOBAR")) != strv_hash(STRV_LIT("foobar")));
}

static uint64_t
rng_next(uint64_t *s)
{
    /* xorshift64*: deterministic, good enough for test data */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static bool
is_letter(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static void
test_ci_hash_agrees_with_ci_eq(void **state)
{
    uint64_t seed = 0x9e3779b97f4a7c15ULL;

    (void)state;
    for (int round = 0; round < 20000; round++) {
        char a[24], b[24];
        size_t len = rng_next(&seed) % sizeof(a);

        for (size_t i = 0; i < len; i++) {
            /* Mostly letters, plus the characters next to them and high bytes. */
            static const char alphabet[] = "abcxyzABCXYZ@[`{^~_.-09\x80\xc4\xe4\xff";
            char c = alphabet[rng_next(&seed) % (sizeof(alphabet) - 1)];

            a[i] = c;
            b[i] = (is_letter(c) && (rng_next(&seed) & 1)) ? (char)(c ^ 0x20) : c;
        }
        {
            struct strv va = strv_make(a, len), vb = strv_make(b, len);

            assert_true(strv_eq_ci(va, vb));
            assert_int_equal(strv_cmp_ci(va, vb), 0);
            assert_true(strv_hash_ci(va) == strv_hash_ci(vb));
            assert_int_equal(strv_eq(va, vb), memcmp(a, b, len) == 0);
            /* Flipping a non-letter by 0x20 must break equality. */
            for (size_t i = 0; i < len; i++) {
                char c = a[i];

                if (!is_letter(c)) {
                    char saved = b[i];

                    b[i] = (char)(c ^ 0x20);
                    assert_false(strv_eq_ci(va, vb));
                    assert_true(strv_hash_ci(va) != strv_hash_ci(vb));
                    b[i] = saved;
                    break;
                }
            }
        }
    }
}

static void
test_lower_char(void **state)
{
    (void)state;
    for (int c = 0; c < 256; c++) {
        char lc = strv_lower_char((char)c);

        if (c >= 'A' && c <= 'Z') {
            assert_int_equal(lc, c + 32);
        } else {
            assert_int_equal((unsigned char)lc, c);
        }
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_make),
        cmocka_unit_test(test_compare_table),
        cmocka_unit_test(test_compare_embedded_nul),
        cmocka_unit_test(test_prefix_suffix),
        cmocka_unit_test(test_search),
        cmocka_unit_test(test_sub_clamps),
        cmocka_unit_test(test_trim),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_split_rest),
        cmocka_unit_test(test_next_word),
        cmocka_unit_test(test_to_u64),
        cmocka_unit_test(test_to_u64_every_max),
        cmocka_unit_test(test_dup_and_copy),
        cmocka_unit_test(test_hash_vectors),
        cmocka_unit_test(test_ci_hash_agrees_with_ci_eq),
        cmocka_unit_test(test_lower_char),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
