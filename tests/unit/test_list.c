/*
 * test_list: intrusive lists: order of pushes, removal (twice is harmless),
 * splicing, iteration with removal, and a random run against an array.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/list.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
/* list.h's container_of drops const, which -Wcast-qual rejects for const nodes. */
#define CONST_CONTAINER_OF(ptr, type, member)                                                      \
    ((const type *)(const void *)((const char *)(ptr)-offsetof(type, member)))

struct item {
    int value;
    struct list_node node;
    struct list_node other; /* a second list the item can be on */
};

static int
value_of(const struct list_node *n)
{
    return CONST_CONTAINER_OF(n, struct item, node)->value;
}

/* Asserts the list holds exactly want[0, n), both forwards and backwards. */
static void
assert_list(const struct list_node *head, const int *want, size_t n)
{
    const struct list_node *p;
    size_t i = 0;

    assert_int_equal(list_count(head), n);
    assert_int_equal(list_empty(head), n == 0);
    LIST_FOREACH(p, head)
    {
        assert_true(i < n);
        assert_int_equal(value_of(p), want[i]);
        assert_ptr_equal(p->next->prev, p);
        i++;
    }
    assert_int_equal(i, n);
    for (p = head->prev; p != head; p = p->prev) {
        assert_int_equal(value_of(p), want[--i]);
    }
    if (n == 0) {
        assert_null(list_first(head));
    } else {
        assert_int_equal(value_of(list_first(head)), want[0]);
    }
}

static void
test_empty(void **state)
{
    struct list_node head;

    (void)state;
    list_init(&head);
    assert_true(list_empty(&head));
    assert_null(list_first(&head));
    assert_null(list_pop_front(&head));
    assert_int_equal(list_count(&head), 0);
    assert_false(list_linked(&head));
}

static void
test_push_order(void **state)
{
    struct list_node head;
    struct item it[4] = {{.value = 0}, {.value = 1}, {.value = 2}, {.value = 3}};
    static const int want[] = {2, 0, 1, 3};

    (void)state;
    list_init(&head);
    list_push_back(&head, &it[0].node);
    list_push_back(&head, &it[1].node);
    list_push_front(&head, &it[2].node);
    list_push_back(&head, &it[3].node);
    assert_list(&head, want, NELEM(want));
    for (size_t i = 0; i < 4; i++) {
        assert_true(list_linked(&it[i].node));
    }
}

static void
test_remove(void **state)
{
    struct list_node head;
    struct item it[5];
    static const int after_middle[] = {0, 1, 3, 4};
    static const int after_ends[] = {1, 3};

    (void)state;
    list_init(&head);
    for (int i = 0; i < 5; i++) {
        it[i].value = i;
        list_push_back(&head, &it[i].node);
    }
    list_remove(&it[2].node);
    assert_false(list_linked(&it[2].node));
    assert_list(&head, after_middle, NELEM(after_middle));
    list_remove(&it[2].node); /* twice is harmless */
    assert_list(&head, after_middle, NELEM(after_middle));
    list_remove(&it[0].node);
    list_remove(&it[4].node);
    assert_list(&head, after_ends, NELEM(after_ends));
    assert_int_equal(value_of(list_pop_front(&head)), 1);
    assert_int_equal(value_of(list_pop_front(&head)), 3);
    assert_null(list_pop_front(&head));
    assert_list(&head, NULL, 0);
    /* Popped nodes are self-linked: can be pushed again or removed again. */
    assert_false(list_linked(&it[1].node));
    list_remove(&it[1].node);
    list_push_back(&head, &it[1].node);
    assert_list(&head, after_ends, 1);
}

static void
test_zeroed_node(void **state)
{
    struct item it;

    (void)state;
    memset(&it, 0, sizeof(it));
    assert_false(list_linked(&it.node)); /* a zeroed node counts as unlinked */
    list_remove(&it.node);               /* and removing it is harmless */
    assert_false(list_linked(&it.node));
    assert_ptr_equal(it.node.next, &it.node);
}

static void
test_two_lists(void **state)
{
    struct list_node a, b;
    struct item it[3] = {{.value = 10}, {.value = 11}, {.value = 12}};
    const struct list_node *p;
    int sum = 0;

    (void)state;
    list_init(&a);
    list_init(&b);
    for (int i = 0; i < 3; i++) {
        list_push_back(&a, &it[i].node);
        list_push_front(&b, &it[i].other);
    }
    list_remove(&it[1].node);
    assert_int_equal(list_count(&a), 2);
    assert_int_equal(list_count(&b), 3); /* still on the other list */
    LIST_FOREACH(p, &b)
    {
        sum = sum * 100 + CONST_CONTAINER_OF(p, struct item, other)->value;
    }
    assert_int_equal(sum, 121110);
}

static void
test_splice(void **state)
{
    struct list_node to, from;
    struct item x[3], y[3];
    static const int both[] = {0, 1, 2, 10, 11, 12};
    static const int only_from[] = {10, 11, 12};

    (void)state;
    list_init(&to);
    list_init(&from);
    for (int i = 0; i < 3; i++) {
        x[i].value = i;
        y[i].value = 10 + i;
        list_push_back(&to, &x[i].node);
        list_push_back(&from, &y[i].node);
    }
    list_splice_back(&to, &from);
    assert_list(&to, both, NELEM(both));
    assert_list(&from, NULL, 0);
    /* An empty source changes nothing. */
    list_splice_back(&to, &from);
    assert_list(&to, both, NELEM(both));
    /* Into an empty list; then back. */
    for (int i = 0; i < 3; i++) {
        list_remove(&x[i].node);
    }
    list_splice_back(&from, &to);
    assert_list(&from, only_from, NELEM(only_from));
    assert_list(&to, NULL, 0);
    /* A single element. */
    list_init(&to);
    list_push_back(&to, &x[0].node);
    list_splice_back(&from, &to);
    {
        static const int want[] = {10, 11, 12, 0};

        assert_list(&from, want, NELEM(want));
    }
}

static void
test_foreach_safe_removal(void **state)
{
    struct list_node head;
    struct list_node *p, *tmp;
    struct item it[10];
    static const int odd[] = {1, 3, 5, 7, 9};

    (void)state;
    list_init(&head);
    for (int i = 0; i < 10; i++) {
        it[i].value = i;
        list_push_back(&head, &it[i].node);
    }
    LIST_FOREACH_SAFE(p, tmp, &head)
    {
        if (value_of(p) % 2 == 0) {
            list_remove(p);
        }
    }
    assert_list(&head, odd, NELEM(odd));
    LIST_FOREACH_SAFE(p, tmp, &head)
    {
        list_remove(p);
    }
    assert_list(&head, NULL, 0);
}

static uint64_t
rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

/* Two lists and a pool of items; every operation mirrored on arrays. */
static void
test_random_against_arrays(void **state)
{
    enum { N = 64 };
    struct item items[N];
    struct list_node heads[2];
    int ref[2][N];
    size_t len[2] = {0, 0};
    int where[N]; /* -1 = on no list */
    uint64_t seed = 4242;

    (void)state;
    list_init(&heads[0]);
    list_init(&heads[1]);
    for (int i = 0; i < N; i++) {
        items[i].value = i;
        list_init(&items[i].node);
        where[i] = -1;
    }
    for (int step = 0; step < 50000; step++) {
        int i = (int)(rng_next(&seed) % N);
        int l = (int)(rng_next(&seed) % 2);
        unsigned op = (unsigned)(rng_next(&seed) % 6);

        if (op <= 1 && where[i] < 0) { /* push */
            if (op == 0) {
                list_push_back(&heads[l], &items[i].node);
                ref[l][len[l]++] = i;
            } else {
                list_push_front(&heads[l], &items[i].node);
                memmove(&ref[l][1], &ref[l][0], len[l] * sizeof(int));
                ref[l][0] = i;
                len[l]++;
            }
            where[i] = l;
        } else if (op == 2 && where[i] >= 0) { /* remove */
            int w = where[i];
            size_t k = 0;

            list_remove(&items[i].node);
            while (ref[w][k] != i) {
                k++;
            }
            memmove(&ref[w][k], &ref[w][k + 1], (len[w] - k - 1) * sizeof(int));
            len[w]--;
            where[i] = -1;
        } else if (op == 3) { /* pop front */
            struct list_node *n = list_pop_front(&heads[l]);

            if (len[l] == 0) {
                assert_null(n);
            } else {
                assert_int_equal(value_of(n), ref[l][0]);
                where[ref[l][0]] = -1;
                memmove(&ref[l][0], &ref[l][1], (len[l] - 1) * sizeof(int));
                len[l]--;
            }
        } else if (op == 4 && rng_next(&seed) % 8 == 0) { /* splice l into the other */
            int o = 1 - l;

            list_splice_back(&heads[o], &heads[l]);
            for (size_t k = 0; k < len[l]; k++) {
                where[ref[l][k]] = o;
                ref[o][len[o]++] = ref[l][k];
            }
            len[l] = 0;
        }
        assert_list(&heads[0], ref[0], len[0]);
        assert_list(&heads[1], ref[1], len[1]);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_push_order),
        cmocka_unit_test(test_remove),
        cmocka_unit_test(test_zeroed_node),
        cmocka_unit_test(test_two_lists),
        cmocka_unit_test(test_splice),
        cmocka_unit_test(test_foreach_safe_removal),
        cmocka_unit_test(test_random_against_arrays),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
