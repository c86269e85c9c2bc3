/*
 * list: intrusive circular doubly-linked lists.
 *
 * Embed a struct list_node in the element; the list head is a bare
 * struct list_node. No allocation, O(1) insert and remove. An element may be
 * on several lists through several nodes. list_remove() leaves the node
 * self-linked, so removing twice is harmless.
 */
#ifndef CELER_CORE_LIST_H
#define CELER_CORE_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct list_node {
    struct list_node *prev; /* borrowed */
    struct list_node *next; /* borrowed */
};

#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))
/* The same for a pointer to const (heap comparators receive const nodes). */
#define container_of_const(ptr, type, member)                                                      \
    ((const type *)(const void *)((const char *)(ptr)-offsetof(type, member)))

#define LIST_FOREACH(pos, head) for ((pos) = (head)->next; (pos) != (head); (pos) = (pos)->next)
/* Iteration that tolerates removal of pos. */
#define LIST_FOREACH_SAFE(pos, tmp, head)                                                          \
    for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head);                               \
         (pos) = (tmp), (tmp) = (pos)->next)

void list_init(struct list_node *head);
bool list_empty(const struct list_node *head);
/* True when node is on some list (not self-linked). */
bool list_linked(const struct list_node *node);
void list_push_back(struct list_node *head, struct list_node *node);
void list_push_front(struct list_node *head, struct list_node *node);
void list_remove(struct list_node *node);
/* Removes and returns the first node, or NULL when empty. */
struct list_node *list_pop_front(struct list_node *head);
struct list_node *list_first(const struct list_node *head);
size_t list_count(const struct list_node *head);
/* Moves every node of from to the end of to; from becomes empty. */
void list_splice_back(struct list_node *to, struct list_node *from);

#endif
