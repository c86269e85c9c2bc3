/*
 * map: hash map from byte-string keys to borrowed pointers.
 *
 * Open addressing with linear probing and backward-shift deletion (no
 * tombstones), load factor at most 3/4. The map owns copies of its keys;
 * values are borrowed unless map_release() is given a free function. Keys
 * compare exactly, or ASCII case-insensitively when the map is made so
 * (domain names, option names). Iteration order is unspecified; the map must
 * not be modified while iterating.
 */
#ifndef CELER_CORE_MAP_H
#define CELER_CORE_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/strv.h"

struct map_slot {
    char *key; /* owned, NUL-terminated; NULL = empty slot */
    size_t key_len;
    uint64_t hash;
    void *value;
};

struct map {
    struct map_slot *slots; /* owned */
    size_t cap;             /* power of two, or 0 */
    size_t len;
    bool ci;
};

typedef void map_free_fn(void *value);

void map_init(struct map *m, bool case_insensitive);
/* Frees keys and, if free_value is given, every value. */
void map_release(struct map *m, map_free_fn *free_value);

void *map_get(const struct map *m, struct strv key);
void *map_get_cstr(const struct map *m, const char *key);
/* Inserts or replaces; returns the previous value or NULL. */
void *map_put(struct map *m, struct strv key, void *value);
/* Removes key; returns its value or NULL. */
void *map_del(struct map *m, struct strv key);

static inline size_t
map_len(const struct map *m)
{
    return m->len;
}

/* for (size_t it = 0; map_next(m, &it, &k, &v);) { ... } */
bool map_next(const struct map *m, size_t *it, struct strv *key, void **value);

#endif
