/*
 * heap: binary min-heap of intrusive nodes (see heap.h).
 */
#include "core/heap.h"

#include <assert.h>
#include <stdlib.h>

#include "core/mem.h"

void
heap_init(struct heap *h, heap_less_fn *less)
{
    *h = (struct heap){.less = less};
}

void
heap_release(struct heap *h)
{
    for (size_t i = 0; i < h->len; i++) {
        h->items[i]->index = HEAP_NOT_IN;
    }
    free(h->items);
    h->items = NULL;
    h->len = h->cap = 0;
}

void
heap_node_init(struct heap_node *n)
{
    n->index = HEAP_NOT_IN;
}

bool
heap_node_in_heap(const struct heap_node *n)
{
    return n->index != HEAP_NOT_IN;
}

static void
heap_set(struct heap *h, size_t i, struct heap_node *n)
{
    h->items[i] = n;
    n->index = i;
}

static void
heap_sift_up(struct heap *h, size_t i)
{
    struct heap_node *n = h->items[i];

    while (i > 0) {
        size_t parent = (i - 1) / 2;

        if (!h->less(n, h->items[parent])) {
            break;
        }
        heap_set(h, i, h->items[parent]);
        i = parent;
    }
    heap_set(h, i, n);
}

static void
heap_sift_down(struct heap *h, size_t i)
{
    struct heap_node *n = h->items[i];

    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        struct heap_node *best = n;

        if (l < h->len && h->less(h->items[l], best)) {
            m = l;
            best = h->items[l];
        }
        if (r < h->len && h->less(h->items[r], best)) {
            m = r;
            best = h->items[r];
        }
        if (m == i) {
            break;
        }
        heap_set(h, i, best);
        i = m;
    }
    heap_set(h, i, n);
}

void
heap_push(struct heap *h, struct heap_node *n)
{
    assert(!heap_node_in_heap(n));
    h->items = xgrow(h->items, &h->cap, h->len + 1, sizeof(*h->items));
    h->items[h->len] = n;
    n->index = h->len;
    h->len++;
    heap_sift_up(h, h->len - 1);
}

struct heap_node *
heap_peek(const struct heap *h)
{
    return h->len ? h->items[0] : NULL;
}

void
heap_remove(struct heap *h, struct heap_node *n)
{
    size_t i = n->index;
    struct heap_node *last;

    assert(i < h->len && h->items[i] == n);
    h->len--;
    last = h->items[h->len];
    n->index = HEAP_NOT_IN;
    if (i == h->len) {
        return;
    }
    heap_set(h, i, last);
    heap_update(h, last);
}

struct heap_node *
heap_pop(struct heap *h)
{
    struct heap_node *n = heap_peek(h);

    if (n) {
        heap_remove(h, n);
    }
    return n;
}

void
heap_update(struct heap *h, struct heap_node *n)
{
    size_t i = n->index;

    assert(i < h->len);
    if (i > 0 && h->less(n, h->items[(i - 1) / 2])) {
        heap_sift_up(h, i);
    } else {
        heap_sift_down(h, i);
    }
}
