/*
 * test_map: the open-addressing map: put/get/replace/delete, case-insensitive
 * keys, iteration, thousands of keys with deletions (every remaining key is
 * still found after backward-shift deletion, also in clusters that wrap
 * around the table's end), and a random run against a plain array.
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

#include "core/map.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Values are small integers stored as pointers (never NULL). */
#define VAL(i) ((void *)(uintptr_t)((i) + 1))

static uint64_t
rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static struct strv
key_of(char *buf, size_t size, const char *prefix, unsigned i)
{
    int n = snprintf(buf, size, "%s%u", prefix, i);

    return strv_make(buf, (size_t)n);
}

static void
test_empty(void **state)
{
    struct map m;
    size_t it = 0;

    (void)state;
    map_init(&m, false);
    assert_int_equal(map_len(&m), 0);
    assert_null(map_get_cstr(&m, "x"));
    assert_null(map_del(&m, STRV_LIT("x")));
    assert_false(map_next(&m, &it, NULL, NULL));
    map_release(&m, NULL);
    map_release(&m, NULL); /* twice is harmless */
}

static void
test_put_get_replace_del(void **state)
{
    struct map m;
    int a = 1, b = 2, c = 3;

    (void)state;
    map_init(&m, false);
    assert_null(map_put(&m, STRV_LIT("alpha"), &a));
    assert_null(map_put(&m, STRV_LIT("beta"), &b));
    assert_int_equal(map_len(&m), 2);
    assert_ptr_equal(map_get_cstr(&m, "alpha"), &a);
    assert_ptr_equal(map_get(&m, STRV_LIT("beta")), &b);
    assert_null(map_get_cstr(&m, "gamma"));
    assert_null(map_get_cstr(&m, "alph"));                    /* a prefix is another key */
    assert_null(map_get_cstr(&m, "alphaa"));                  /* and so is an extension */
    assert_ptr_equal(map_put(&m, STRV_LIT("alpha"), &c), &a); /* replace returns the old */
    assert_int_equal(map_len(&m), 2);
    assert_ptr_equal(map_get_cstr(&m, "alpha"), &c);
    assert_ptr_equal(map_del(&m, STRV_LIT("alpha")), &c);
    assert_null(map_del(&m, STRV_LIT("alpha")));
    assert_null(map_get_cstr(&m, "alpha"));
    assert_int_equal(map_len(&m), 1);
    map_release(&m, NULL);
}

static void
test_keys_are_copied(void **state)
{
    struct map m;
    char key[16] = "volatile";
    int v = 5;
    struct strv k;
    size_t it = 0;

    (void)state;
    map_init(&m, false);
    map_put(&m, strv_from_cstr(key), &v);
    memcpy(key, "XXXXXXXX", 8); /* the caller's buffer changes: the map kept a copy */
    assert_ptr_equal(map_get_cstr(&m, "volatile"), &v);
    assert_true(map_next(&m, &it, &k, NULL));
    assert_true(strv_eq_cstr(k, "volatile"));
    map_release(&m, NULL);
}

static void
test_binary_and_empty_keys(void **state)
{
    struct map m;
    int a = 1, b = 2, c = 3;

    (void)state;
    map_init(&m, false);
    map_put(&m, strv_make("a\0b", 3), &a);
    map_put(&m, strv_make("a\0c", 3), &b);
    map_put(&m, STRV_NULL, &c); /* the empty key is a key like any other */
    assert_ptr_equal(map_get(&m, strv_make("a\0b", 3)), &a);
    assert_ptr_equal(map_get(&m, strv_make("a\0c", 3)), &b);
    assert_null(map_get(&m, strv_make("a", 1)));
    assert_ptr_equal(map_get_cstr(&m, ""), &c);
    assert_ptr_equal(map_del(&m, STRV_LIT("")), &c);
    assert_null(map_get(&m, STRV_NULL));
    map_release(&m, NULL);
}

static void
test_case_insensitive(void **state)
{
    struct map ci, cs;
    int a = 1, b = 2;

    (void)state;
    map_init(&ci, true);
    map_init(&cs, false);
    map_put(&ci, STRV_LIT("Example.COM"), &a);
    map_put(&cs, STRV_LIT("Example.COM"), &a);
    assert_ptr_equal(map_get_cstr(&ci, "example.com"), &a);
    assert_ptr_equal(map_get_cstr(&ci, "EXAMPLE.COM"), &a);
    assert_null(map_get_cstr(&cs, "example.com"));
    assert_ptr_equal(map_get_cstr(&cs, "Example.COM"), &a);
    /* Replacing through another spelling keeps one entry and the first spelling. */
    assert_ptr_equal(map_put(&ci, STRV_LIT("EXAMPLE.com"), &b), &a);
    assert_int_equal(map_len(&ci), 1);
    {
        size_t it = 0;
        struct strv k;
        void *v;

        assert_true(map_next(&ci, &it, &k, &v));
        assert_true(strv_eq_cstr(k, "Example.COM"));
        assert_ptr_equal(v, &b);
    }
    /* Only ASCII letters fold. */
    map_put(&ci, STRV_LIT("a@b"), &a);
    assert_null(map_get_cstr(&ci, "a`b"));
    assert_ptr_equal(map_del(&ci, STRV_LIT("eXaMpLe.CoM")), &b);
    assert_int_equal(map_len(&ci), 1);
    map_release(&ci, NULL);
    map_release(&cs, NULL);
}

static void
test_iteration(void **state)
{
    enum { N = 500 };
    struct map m;
    bool seen[N] = {false};
    size_t it = 0, count = 0;
    struct strv k;
    void *v;
    char buf[32];

    (void)state;
    map_init(&m, false);
    for (unsigned i = 0; i < N; i++) {
        map_put(&m, key_of(buf, sizeof(buf), "it-", i), VAL(i));
    }
    while (map_next(&m, &it, &k, &v)) {
        unsigned i = (unsigned)((uintptr_t)v - 1);

        assert_true(i < N);
        assert_false(seen[i]); /* each key once */
        seen[i] = true;
        assert_true(strv_eq(k, key_of(buf, sizeof(buf), "it-", i)));
        count++;
    }
    assert_int_equal(count, N);
    assert_false(map_next(&m, &it, &k, &v)); /* stays at the end */
    map_release(&m, NULL);
}

static int free_calls;

static void
count_free(void *value)
{
    free_calls++;
    free(value);
}

static void
test_release_frees_values(void **state)
{
    struct map m;
    char buf[32];

    (void)state;
    map_init(&m, true);
    for (unsigned i = 0; i < 100; i++) {
        map_put(&m, key_of(buf, sizeof(buf), "v", i), malloc(16));
    }
    free(map_del(&m, STRV_LIT("V7")));
    free_calls = 0;
    map_release(&m, count_free); /* LeakSanitizer checks the rest */
    assert_int_equal(free_calls, 99);
    assert_int_equal(map_len(&m), 0);
}

static void
test_thousands_with_deletions(void **state)
{
    enum { N = 20000 };
    struct map m;
    char buf[32];

    (void)state;
    map_init(&m, false);
    for (unsigned i = 0; i < N; i++) {
        assert_null(map_put(&m, key_of(buf, sizeof(buf), "key:", i), VAL(i)));
        assert_true(m.len * 4 <= m.cap * 3); /* load factor at most 3/4 */
    }
    assert_int_equal(map_len(&m), N);
    /* Delete two keys in three; after each thousand keys, check every key. */
    for (unsigned i = 0; i < N; i++) {
        if (i % 3 != 0) {
            assert_ptr_equal(map_del(&m, key_of(buf, sizeof(buf), "key:", i)), VAL(i));
        }
        if (i % 1000 == 999 || i == N - 1) {
            for (unsigned j = 0; j < N; j++) {
                void *want = (j % 3 == 0 || j > i) ? VAL(j) : NULL;

                assert_ptr_equal(map_get(&m, key_of(buf, sizeof(buf), "key:", j)), want);
            }
        }
    }
    assert_int_equal(map_len(&m), (N + 2) / 3);
    /* Re-insert the deleted ones: the table must still hold them all. */
    for (unsigned i = 0; i < N; i++) {
        if (i % 3 != 0) {
            assert_null(map_put(&m, key_of(buf, sizeof(buf), "key:", i), VAL(i)));
        }
    }
    for (unsigned i = 0; i < N; i++) {
        assert_ptr_equal(map_get(&m, key_of(buf, sizeof(buf), "key:", i)), VAL(i));
    }
    map_release(&m, NULL);
}

/*
 * Keys whose home slots in a 16-slot table are 13, 14, 15, 0 and 1 form one
 * cluster that wraps around the end; deleting them in random orders must
 * never lose a key (the backward shift crosses the wrap).
 */
static void
test_wrapping_cluster(void **state)
{
    static const unsigned homes[] = {13, 14, 14, 15, 15, 15, 0, 0, 1, 1, 14, 13};
    char keys[NELEM(homes)][16];
    bool used[4096] = {false};
    uint64_t seed = 31337;

    (void)state;
    /* Find a distinct key for each wanted home slot. */
    for (size_t k = 0; k < NELEM(homes); k++) {
        unsigned i = 0;

        for (;; i++) {
            struct strv v = key_of(keys[k], sizeof(keys[k]), "w", i);

            if (!used[i] && (strv_hash(v) & 15) == homes[k]) {
                used[i] = true;
                break;
            }
            assert_true(i < 4000);
        }
    }
    for (int round = 0; round < 3000; round++) {
        struct map m;
        size_t order[NELEM(homes)];
        bool gone[NELEM(homes)] = {false};

        map_init(&m, false);
        /* Insert in a random order too. */
        for (size_t k = 0; k < NELEM(homes); k++) {
            order[k] = k;
        }
        for (size_t k = NELEM(homes) - 1; k > 0; k--) {
            size_t j = rng_next(&seed) % (k + 1), t = order[k];

            order[k] = order[j];
            order[j] = t;
        }
        for (size_t k = 0; k < NELEM(homes); k++) {
            map_put(&m, strv_from_cstr(keys[order[k]]), VAL(order[k]));
        }
        assert_int_equal(m.cap, 16); /* 12 keys stay in the first table */
        for (size_t k = NELEM(homes) - 1; k > 0; k--) {
            size_t j = rng_next(&seed) % (k + 1), t = order[k];

            order[k] = order[j];
            order[j] = t;
        }
        for (size_t d = 0; d < NELEM(homes); d++) {
            assert_ptr_equal(map_del(&m, strv_from_cstr(keys[order[d]])), VAL(order[d]));
            gone[order[d]] = true;
            for (size_t k = 0; k < NELEM(homes); k++) {
                assert_ptr_equal(map_get_cstr(&m, keys[k]), gone[k] ? NULL : VAL(k));
            }
            assert_int_equal(map_len(&m), NELEM(homes) - d - 1);
        }
        map_release(&m, NULL);
    }
}

/* Random puts, deletes and gets against an array indexed by key number. */
static void
test_random_against_reference(void **state)
{
    enum { KEYS = 3000 };
    static void *ref[KEYS];
    struct map m;
    uint64_t seed = 2024;
    size_t count = 0;
    char buf[32];

    (void)state;
    for (int pass = 0; pass < 2; pass++) {
        bool ci = pass == 1;

        memset(ref, 0, sizeof(ref));
        count = 0;
        map_init(&m, ci);
        for (int step = 0; step < 300000; step++) {
            unsigned i = (unsigned)(rng_next(&seed) % KEYS);
            unsigned op = (unsigned)(rng_next(&seed) % 3);
            /* In the case-insensitive pass, spell the key randomly. */
            struct strv k =
                key_of(buf, sizeof(buf), (ci && (rng_next(&seed) & 1)) ? "KEY" : "key", i);

            if (op == 0) {
                void *v = (void *)(uintptr_t)(rng_next(&seed) | 1);

                assert_ptr_equal(map_put(&m, k, v), ref[i]);
                count += ref[i] == NULL;
                ref[i] = v;
            } else if (op == 1) {
                assert_ptr_equal(map_del(&m, k), ref[i]);
                count -= ref[i] != NULL;
                ref[i] = NULL;
            } else {
                assert_ptr_equal(map_get(&m, k), ref[i]);
            }
            assert_int_equal(map_len(&m), count);
            if (step % 50000 == 0) {
                for (unsigned j = 0; j < KEYS; j++) {
                    assert_ptr_equal(map_get(&m, key_of(buf, sizeof(buf), "key", j)), ref[j]);
                }
            }
        }
        for (unsigned j = 0; j < KEYS; j++) {
            assert_ptr_equal(map_get(&m, key_of(buf, sizeof(buf), "key", j)), ref[j]);
        }
        map_release(&m, NULL);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_put_get_replace_del),
        cmocka_unit_test(test_keys_are_copied),
        cmocka_unit_test(test_binary_and_empty_keys),
        cmocka_unit_test(test_case_insensitive),
        cmocka_unit_test(test_iteration),
        cmocka_unit_test(test_release_frees_values),
        cmocka_unit_test(test_thousands_with_deletions),
        cmocka_unit_test(test_wrapping_cluster),
        cmocka_unit_test(test_random_against_reference),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
