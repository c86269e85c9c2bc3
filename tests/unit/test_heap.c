/*
 * test_heap: the intrusive min-heap pops in sorted order, whatever mix of
 * pushes, removals and key updates came before; node indexes stay true.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "core/heap.h"
#include "core/list.h"

/* list.h's container_of drops const, which -Wcast-qual rejects for const nodes. */
#define CONST_CONTAINER_OF(ptr, type, member)                                                      \
    ((const type *)(const void *)((const char *)(ptr)-offsetof(type, member)))

struct timer {
    uint64_t when;
    int id;
    struct heap_node hn;
};

static bool
timer_less(const struct heap_node *a, const struct heap_node *b)
{
    return CONST_CONTAINER_OF(a, struct timer, hn)->when <
           CONST_CONTAINER_OF(b, struct timer, hn)->when;
}

static uint64_t
key_of(const struct heap_node *n)
{
    return CONST_CONTAINER_OF(n, struct timer, hn)->when;
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static uint64_t
rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

/* Every node knows its slot and no child is less than its parent. */
static void
assert_heap_valid(const struct heap *h)
{
    for (size_t i = 0; i < h->len; i++) {
        assert_int_equal(h->items[i]->index, i);
        if (i > 0) {
            assert_false(h->less(h->items[i], h->items[(i - 1) / 2]));
        }
    }
}

static void
test_empty(void **state)
{
    struct heap h;

    (void)state;
    heap_init(&h, timer_less);
    assert_null(heap_peek(&h));
    assert_null(heap_pop(&h));
    assert_int_equal(heap_len(&h), 0);
    heap_release(&h);
}

static void
test_small_sequences(void **state)
{
    static const uint64_t seqs[][6] = {
        {1, 2, 3, 4, 5, 6},
        {6, 5, 4, 3, 2, 1},
        {3, 3, 3, 3, 3, 3},
        {2, 1, 2, 1, 2, 1},
        {0, UINT64_MAX, 0, 7, UINT64_MAX, 1},
    };

    (void)state;
    for (size_t s = 0; s < sizeof(seqs) / sizeof(seqs[0]); s++) {
        struct timer t[6];
        uint64_t sorted[6];
        struct heap h;

        heap_init(&h, timer_less);
        for (int i = 0; i < 6; i++) {
            t[i].when = sorted[i] = seqs[s][i];
            heap_node_init(&t[i].hn);
            assert_false(heap_node_in_heap(&t[i].hn));
            heap_push(&h, &t[i].hn);
            assert_true(heap_node_in_heap(&t[i].hn));
            assert_heap_valid(&h);
        }
        qsort(sorted, 6, sizeof(sorted[0]), cmp_u64);
        assert_true(key_of(heap_peek(&h)) == sorted[0]);
        for (int i = 0; i < 6; i++) {
            struct heap_node *n = heap_pop(&h);

            assert_true(key_of(n) == sorted[i]);
            assert_false(heap_node_in_heap(n));
            assert_heap_valid(&h);
        }
        assert_null(heap_pop(&h));
        heap_release(&h);
    }
}

static void
test_remove_positions(void **state)
{
    enum { N = 15 };

    (void)state;
    /* Remove each position in turn: root, inner nodes, last leaf. */
    for (int victim = 0; victim < N; victim++) {
        struct timer t[N];
        struct heap h;
        uint64_t prev = 0;

        heap_init(&h, timer_less);
        for (int i = 0; i < N; i++) {
            t[i].when = (uint64_t)((i * 7) % N);
            t[i].id = i;
            heap_node_init(&t[i].hn);
            heap_push(&h, &t[i].hn);
        }
        heap_remove(&h, h.items[victim]);
        assert_heap_valid(&h);
        assert_int_equal(heap_len(&h), N - 1);
        for (int i = 0; i < N - 1; i++) {
            uint64_t k = key_of(heap_pop(&h));

            assert_true(k >= prev);
            prev = k;
        }
        heap_release(&h);
    }
}

static void
test_release_resets_nodes(void **state)
{
    struct timer t[5];
    struct heap h;

    (void)state;
    heap_init(&h, timer_less);
    for (int i = 0; i < 5; i++) {
        t[i].when = (uint64_t)(5 - i);
        heap_node_init(&t[i].hn);
        heap_push(&h, &t[i].hn);
    }
    heap_release(&h);
    for (int i = 0; i < 5; i++) {
        assert_false(heap_node_in_heap(&t[i].hn));
    }
    assert_int_equal(heap_len(&h), 0);
    /* Reusable after release. */
    heap_push(&h, &t[2].hn);
    assert_ptr_equal(heap_pop(&h), &t[2].hn);
    heap_release(&h);
}

/* Random pushes, pops, removals and re-keys, checked against sorting. */
static void
test_random_against_sort(void **state)
{
    enum { N = 3000 };
    struct timer *t = calloc(N, sizeof(*t));
    uint64_t *keys = calloc(N, sizeof(*keys));
    uint64_t seed = 99;
    struct heap h;

    (void)state;
    heap_init(&h, timer_less);
    for (int i = 0; i < N; i++) {
        t[i].id = i;
        heap_node_init(&t[i].hn);
    }
    for (int step = 0; step < 100000; step++) {
        struct timer *x = &t[rng_next(&seed) % N];
        unsigned op = (unsigned)(rng_next(&seed) % 8);

        if (op < 3) {
            if (!heap_node_in_heap(&x->hn)) {
                x->when = rng_next(&seed) % 1000; /* many equal keys */
                heap_push(&h, &x->hn);
            }
        } else if (op == 3) {
            if (heap_node_in_heap(&x->hn)) {
                heap_remove(&h, &x->hn);
                assert_false(heap_node_in_heap(&x->hn));
            }
        } else if (op < 6) {
            if (heap_node_in_heap(&x->hn)) {
                x->when = rng_next(&seed) % 1000; /* up or down */
                heap_update(&h, &x->hn);
            }
        } else if (op == 6) {
            struct heap_node *min = heap_pop(&h);

            /* The popped key is the minimum of everything that was in the heap. */
            if (min) {
                for (int i = 0; i < N; i++) {
                    if (heap_node_in_heap(&t[i].hn)) {
                        assert_true(t[i].when >= key_of(min));
                    }
                }
            }
        } else if (step % 97 == 0) {
            assert_heap_valid(&h);
        }
    }
    assert_heap_valid(&h);
    /* Draining gives exactly the sorted keys of the members. */
    {
        size_t n = 0;

        for (int i = 0; i < N; i++) {
            if (heap_node_in_heap(&t[i].hn)) {
                keys[n++] = t[i].when;
            }
        }
        assert_int_equal(n, heap_len(&h));
        qsort(keys, n, sizeof(keys[0]), cmp_u64);
        for (size_t i = 0; i < n; i++) {
            assert_true(key_of(heap_pop(&h)) == keys[i]);
        }
        assert_null(heap_pop(&h));
    }
    heap_release(&h);
    free(t);
    free(keys);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_small_sequences),
        cmocka_unit_test(test_remove_positions),
        cmocka_unit_test(test_release_resets_nodes),
        cmocka_unit_test(test_random_against_sort),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
