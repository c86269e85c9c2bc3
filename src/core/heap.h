/*
 * heap: binary min-heap of intrusive nodes.
 *
 * Elements embed a struct heap_node, which records the element's position so
 * any element can be removed or re-keyed in O(log n). The order is given by a
 * less-than function over nodes. Used for timers and delayed queues ordered
 * by next-attempt time. The heap owns only its array of pointers.
 */
#ifndef CELER_CORE_HEAP_H
#define CELER_CORE_HEAP_H

#include <stdbool.h>
#include <stddef.h>

#define HEAP_NOT_IN ((size_t)-1)

struct heap_node {
    size_t index; /* position in the heap, HEAP_NOT_IN when not in one */
};

typedef bool heap_less_fn(const struct heap_node *a, const struct heap_node *b);

struct heap {
    struct heap_node **items; /* owned array of borrowed nodes */
    size_t len;
    size_t cap;
    heap_less_fn *less;
};

void heap_init(struct heap *h, heap_less_fn *less);
void heap_release(struct heap *h);
void heap_node_init(struct heap_node *n);
bool heap_node_in_heap(const struct heap_node *n);

void heap_push(struct heap *h, struct heap_node *n);
/* The minimum, or NULL. */
struct heap_node *heap_peek(const struct heap *h);
struct heap_node *heap_pop(struct heap *h);
/* Removes n, which must be in h. */
void heap_remove(struct heap *h, struct heap_node *n);
/* Restores order after n's key changed. */
void heap_update(struct heap *h, struct heap_node *n);

static inline size_t
heap_len(const struct heap *h)
{
    return h->len;
}

#endif
