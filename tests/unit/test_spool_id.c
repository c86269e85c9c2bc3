/*
 * test_spool_id: formatting, strict parsing, path mapping, directory
 * locality of consecutive ids, and the generator under threads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "spool/spool_id.h"

static void
test_format(void **state)
{
    static const struct {
        uint32_t pid, seq;
        const char *id, *path;
    } cases[] = {
        {25004, 0x31B987F3, "B9/87-25004-31B987F3", "B9/87/25004-31B987F3"},
        {1, 0, "00/00-1-00000000", "00/00/1-00000000"},
        {SPOOL_ID_PID_MAX, 0xFFFFFFFF, "FF/FF-2147483647-FFFFFFFF", "FF/FF/2147483647-FFFFFFFF"},
        {4194304, 0x00ABCD12, "AB/CD-4194304-00ABCD12", "AB/CD/4194304-00ABCD12"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct spool_id id = {cases[i].pid, cases[i].seq}, back;
        char buf[SPOOL_ID_SIZE], path[SPOOL_ID_PATH_SIZE];
        size_t n = spool_id_format(id, buf);
        size_t pn = spool_id_path(id, path);

        assert_string_equal(buf, cases[i].id);
        assert_int_equal(n, strlen(cases[i].id));
        assert_string_equal(path, cases[i].path);
        assert_int_equal(pn, strlen(cases[i].path));
        assert_int_equal(spool_id_parse(strv_from_cstr(buf), &back), 0);
        assert_int_equal(spool_id_cmp(id, back), 0);
        assert_int_equal(spool_id_parse_path(strv_from_cstr(path), &back), 0);
        assert_int_equal(spool_id_cmp(id, back), 0);
        assert_int_equal(spool_id_parse_name(strv_from_cstr(strrchr(path, '/') + 1), &back), 0);
        assert_int_equal(spool_id_cmp(id, back), 0);
    }
}

static void
test_parse_rejects(void **state)
{
    static const char *const bad_ids[] = {
        "",
        "B9/87-25004-31B987F3 ",
        " B9/87-25004-31B987F3",
        "b9/87-25004-31b987f3",  /* lower case */
        "B9/87-25004-31B987F",   /* 7 hex digits */
        "B9/87-25004-31B987F30", /* 9 hex digits */
        "B9/88-25004-31B987F3",  /* directory does not match SEQ */
        "BA/87-25004-31B987F3",
        "B9/87/25004-31B987F3",  /* a path is not an id */
        "B9/87-025004-31B987F3", /* leading zero */
        "B9/87-0-31B987F3",
        "B9/87--31B987F3",
        "B9/87-2147483648-31B987F3", /* PID too large */
        "B9/87-99999999999-31B987F3",
        "B9/87-+25004-31B987F3",
        "B9/87-25004-+1B987F3",
        "B9/87-25004--1B987F3",
        "B9/87-25 04-31B987F3",
        "../87-25004-31B987F3",
        "B9/..-25004-31B987F3",
        "B9/87-25004-31B987F3/../x",
        "B9-87-25004-31B987F3",
        "B9/87-25004-31B987G3",
        "B9/87-25004",
        "B9/87",
    };
    static const char *const bad_paths[] = {
        "B9/87-25004-31B987F3",     "B9/87//25004-31B987F3", "/B9/87/25004-31B987F3",
        "B9/87/25004-31B987F3.tmp", "B9/87/25004-31B987F3/", "00/00/25004-31B987F3",
    };
    static const char *const bad_names[] = {
        "",
        ".",
        "..",
        "25004",
        "-31B987F3",
        "25004-",
        "25004-31B987F3x",
        "x25004-31B987F3",
        "25004_31B987F3",
        "0-00000000",
    };
    struct spool_id id;
    char nul_id[] = "B9/87-25004-31B987F3";

    (void)state;
    for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
        assert_int_equal(spool_id_parse(strv_from_cstr(bad_ids[i]), &id), CELER_EPARSE);
    }
    for (size_t i = 0; i < sizeof(bad_paths) / sizeof(bad_paths[0]); i++) {
        assert_int_equal(spool_id_parse_path(strv_from_cstr(bad_paths[i]), &id), CELER_EPARSE);
    }
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        assert_int_equal(spool_id_parse_name(strv_from_cstr(bad_names[i]), &id), CELER_EPARSE);
    }
    /* An embedded NUL is just another bad byte. */
    nul_id[10] = '\0';
    assert_int_equal(spool_id_parse(strv_make(nul_id, sizeof(nul_id) - 1), &id), CELER_EPARSE);
}

static void
test_generator_locality(void **state)
{
    struct spool_idgen g;
    struct spool_id first, id;
    unsigned dirs_changed = 0;
    unsigned prev_dir;

    (void)state;
    spool_idgen_init(&g, 4242, 0x1234FF00);
    first = spool_idgen_next(&g);
    assert_int_equal(first.pid, 4242);
    assert_int_equal(first.seq, 0x1234FF00);
    prev_dir = spool_id_dir1(first) << 8 | spool_id_dir2(first);
    for (int i = 1; i < 256 * 4; i++) {
        unsigned dir;

        id = spool_idgen_next(&g);
        assert_int_equal(id.seq, first.seq + (uint32_t)i);
        dir = spool_id_dir1(id) << 8 | spool_id_dir2(id);
        if (dir != prev_dir) {
            dirs_changed++;
            assert_int_equal(id.seq & 0xff, 0); /* a new directory every 256 ids */
        }
        prev_dir = dir;
    }
    assert_int_equal(dirs_changed, 3);
    /* Wrap-around. */
    spool_idgen_init(&g, 1, 0xFFFFFFFF);
    assert_int_equal(spool_idgen_next(&g).seq, 0xFFFFFFFF);
    assert_int_equal(spool_idgen_next(&g).seq, 0);
    /* The random seeding gives a valid generator. */
    spool_idgen_init_random(&g);
    id = spool_idgen_next(&g);
    assert_true(id.pid >= 1 && id.pid <= SPOOL_ID_PID_MAX);
}

#define GEN_THREADS 4
#define GEN_PER     20000

struct gen_arg {
    struct spool_idgen *g;
    uint32_t *out;
};

static void *
gen_thread(void *arg)
{
    struct gen_arg *a = arg;

    for (int i = 0; i < GEN_PER; i++) {
        a->out[i] = spool_idgen_next(a->g).seq;
    }
    return NULL;
}

static int
cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

static void
test_generator_threads(void **state)
{
    static uint32_t seqs[GEN_THREADS * GEN_PER];
    struct gen_arg args[GEN_THREADS];
    pthread_t th[GEN_THREADS];
    struct spool_idgen g;

    (void)state;
    spool_idgen_init(&g, 77, 1000);
    for (int t = 0; t < GEN_THREADS; t++) {
        args[t] = (struct gen_arg){&g, seqs + t * GEN_PER};
        assert_int_equal(pthread_create(&th[t], NULL, gen_thread, &args[t]), 0);
    }
    for (int t = 0; t < GEN_THREADS; t++) {
        assert_int_equal(pthread_join(th[t], NULL), 0);
    }
    qsort(seqs, GEN_THREADS * GEN_PER, sizeof(seqs[0]), cmp_u32);
    for (size_t i = 0; i < GEN_THREADS * GEN_PER; i++) {
        assert_int_equal(seqs[i], 1000 + i); /* every id exactly once */
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_generator_locality),
        cmocka_unit_test(test_generator_threads),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
