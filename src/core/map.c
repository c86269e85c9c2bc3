/*
 * map: open-addressing hash map (see map.h).
 */
#include "core/map.h"

#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

void
map_init(struct map *m, bool case_insensitive)
{
    *m = (struct map){.ci = case_insensitive};
}

void
map_release(struct map *m, map_free_fn *free_value)
{
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].key) {
            free(m->slots[i].key);
            if (free_value) {
                free_value(m->slots[i].value);
            }
        }
    }
    free(m->slots);
    m->slots = NULL;
    m->cap = m->len = 0;
}

static uint64_t
map_hash(const struct map *m, struct strv key)
{
    return m->ci ? strv_hash_ci(key) : strv_hash(key);
}

static bool
map_key_eq(const struct map *m, const struct map_slot *s, struct strv key, uint64_t h)
{
    struct strv k = {s->key, s->key_len};

    return s->hash == h && (m->ci ? strv_eq_ci(k, key) : strv_eq(k, key));
}

/* Index of key's slot, or of the empty slot where it would go. */
static size_t
map_find(const struct map *m, struct strv key, uint64_t h)
{
    size_t mask = m->cap - 1;
    size_t i = (size_t)h & mask;

    while (m->slots[i].key && !map_key_eq(m, &m->slots[i], key, h)) {
        i = (i + 1) & mask;
    }
    return i;
}

static void
map_grow(struct map *m)
{
    struct map_slot *old = m->slots;
    size_t old_cap = m->cap;

    m->cap = old_cap ? old_cap * 2 : 16;
    m->slots = xcalloc(m->cap, sizeof(*m->slots));
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].key) {
            size_t j = (size_t)old[i].hash & (m->cap - 1);

            while (m->slots[j].key) {
                j = (j + 1) & (m->cap - 1);
            }
            m->slots[j] = old[i];
        }
    }
    free(old);
}

void *
map_get(const struct map *m, struct strv key)
{
    size_t i;

    if (m->len == 0) {
        return NULL;
    }
    i = map_find(m, key, map_hash(m, key));
    return m->slots[i].key ? m->slots[i].value : NULL;
}

void *
map_get_cstr(const struct map *m, const char *key)
{
    return map_get(m, strv_from_cstr(key));
}

void *
map_put(struct map *m, struct strv key, void *value)
{
    uint64_t h = map_hash(m, key);
    size_t i;
    void *old;

    if ((m->len + 1) * 4 > m->cap * 3) {
        map_grow(m);
    }
    i = map_find(m, key, h);
    if (m->slots[i].key) {
        old = m->slots[i].value;
        m->slots[i].value = value;
        return old;
    }
    m->slots[i] = (struct map_slot){strv_dup(key), key.len, h, value};
    m->len++;
    return NULL;
}

void *
map_del(struct map *m, struct strv key)
{
    size_t mask, i, j;
    void *value;

    if (m->len == 0) {
        return NULL;
    }
    mask = m->cap - 1;
    i = map_find(m, key, map_hash(m, key));
    if (m->slots[i].key == NULL) {
        return NULL;
    }
    value = m->slots[i].value;
    free(m->slots[i].key);
    m->slots[i].key = NULL;
    m->len--;
    /* Backward-shift the following cluster so lookups never stop early. */
    j = i;
    for (;;) {
        size_t home;

        j = (j + 1) & mask;
        if (m->slots[j].key == NULL) {
            break;
        }
        home = (size_t)m->slots[j].hash & mask;
        /* Move j to i unless home lies cyclically in (i, j]. */
        if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
            m->slots[i] = m->slots[j];
            m->slots[j].key = NULL;
            i = j;
        }
    }
    return value;
}

bool
map_next(const struct map *m, size_t *it, struct strv *key, void **value)
{
    while (*it < m->cap) {
        const struct map_slot *s = &m->slots[(*it)++];

        if (s->key) {
            if (key) {
                *key = (struct strv){s->key, s->key_len};
            }
            if (value) {
                *value = s->value;
            }
            return true;
        }
    }
    return false;
}
