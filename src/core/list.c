/*
 * list: intrusive doubly-linked lists (see list.h).
 */
#include "core/list.h"

void
list_init(struct list_node *head)
{
    head->prev = head->next = head;
}

bool
list_empty(const struct list_node *head)
{
    return head->next == head;
}

bool
list_linked(const struct list_node *node)
{
    return node->next != NULL && node->next != node;
}

static void
list_insert_between(struct list_node *node, struct list_node *prev, struct list_node *next)
{
    node->prev = prev;
    node->next = next;
    prev->next = node;
    next->prev = node;
}

void
list_push_back(struct list_node *head, struct list_node *node)
{
    list_insert_between(node, head->prev, head);
}

void
list_push_front(struct list_node *head, struct list_node *node)
{
    list_insert_between(node, head, head->next);
}

void
list_remove(struct list_node *node)
{
    if (node->next == NULL) {
        list_init(node);
        return;
    }
    node->prev->next = node->next;
    node->next->prev = node->prev;
    list_init(node);
}

struct list_node *
list_first(const struct list_node *head)
{
    return list_empty(head) ? NULL : head->next;
}

struct list_node *
list_pop_front(struct list_node *head)
{
    struct list_node *n = list_first(head);

    if (n) {
        list_remove(n);
    }
    return n;
}

size_t
list_count(const struct list_node *head)
{
    size_t n = 0;
    const struct list_node *p;

    LIST_FOREACH(p, head)
    {
        n++;
    }
    return n;
}

void
list_splice_back(struct list_node *to, struct list_node *from)
{
    if (list_empty(from)) {
        return;
    }
    from->next->prev = to->prev;
    to->prev->next = from->next;
    from->prev->next = to;
    to->prev = from->prev;
    list_init(from);
}
