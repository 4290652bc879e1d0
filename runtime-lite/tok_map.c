/* tok_map.c - open-addressing hash maps with linear probing (tok_map.h). */
#include "runtime-lite/tok_map.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

static size_t pow2_at_least(size_t n)
{
    size_t p = 16;
    while (p < n && p < ((size_t)1 << (sizeof(size_t) * 8 - 2)))
        p <<= 1;
    return p;
}

/* ------------------------------------------------------------ tok_strmap */

int tok_strmap_init(tok_strmap *m, size_t expected)
{
    memset(m, 0, sizeof *m);
    size_t nslots = pow2_at_least(expected * 2);
    m->slots = calloc(nslots, sizeof *m->slots);
    m->cap_entries = expected > 8 ? expected : 8;
    m->entries = malloc(m->cap_entries * sizeof *m->entries);
    m->arena_cap = 4096;
    m->arena = malloc(m->arena_cap);
    if (!m->slots || !m->entries || !m->arena) {
        tok_strmap_free(m);
        return 0;
    }
    m->mask = nslots - 1;
    return 1;
}

void tok_strmap_free(tok_strmap *m)
{
    free(m->entries);
    free(m->slots);
    free(m->arena);
    memset(m, 0, sizeof *m);
}

static size_t strmap_find_slot(const tok_strmap *m, uint64_t h, const char *key, size_t len,
                               int *found)
{
    size_t i = (size_t)h & m->mask;
    for (;;) {
        uint32_t s = m->slots[i];
        if (s == 0) {
            *found = 0;
            return i;
        }
        const tok_strmap_entry *e = &m->entries[s - 1];
        if (e->hash == h && e->key_len == len && memcmp(m->arena + e->key_off, key, len) == 0) {
            *found = 1;
            return i;
        }
        i = (i + 1) & m->mask;
    }
}

static int strmap_grow_slots(tok_strmap *m)
{
    size_t nslots = (m->mask + 1) * 2;
    uint32_t *slots = calloc(nslots, sizeof *slots);
    if (!slots)
        return 0;
    for (size_t e = 0; e < m->n; e++) {
        size_t i = (size_t)m->entries[e].hash & (nslots - 1);
        while (slots[i])
            i = (i + 1) & (nslots - 1);
        slots[i] = (uint32_t)(e + 1);
    }
    free(m->slots);
    m->slots = slots;
    m->mask = nslots - 1;
    return 1;
}

int tok_strmap_put(tok_strmap *m, const char *key, size_t len, int64_t value)
{
    /* n < slots - 1 keeps one free slot, so probing always ends even if
     * an earlier grow failed. */
    if (!m->slots || m->n >= UINT32_MAX - 1 || m->n + 1 >= m->mask)
        return 0;
    uint64_t h = XXH3_64bits(key, len);
    int found;
    size_t slot = strmap_find_slot(m, h, key, len, &found);
    if (found)
        return 2;
    if (m->n == m->cap_entries) {
        size_t cap = m->cap_entries * 2;
        tok_strmap_entry *e = realloc(m->entries, cap * sizeof *e);
        if (!e)
            return 0;
        m->entries = e;
        m->cap_entries = cap;
    }
    if (len > SIZE_MAX / 2 - m->arena_len)
        return 0;
    if (m->arena_len + len > m->arena_cap) {
        size_t cap = m->arena_cap;
        while (cap < m->arena_len + len)
            cap *= 2;
        char *a = realloc(m->arena, cap);
        if (!a)
            return 0;
        m->arena = a;
        m->arena_cap = cap;
    }
    if (len)
        memcpy(m->arena + m->arena_len, key, len);
    m->entries[m->n] = (tok_strmap_entry){h, m->arena_len, len, value};
    m->arena_len += len;
    m->slots[slot] = (uint32_t)(m->n + 1);
    m->n++;
    /* Keep the load under one half. A failed grow leaves a valid (fuller)
     * table, which still works. */
    if (m->n * 2 > m->mask + 1)
        strmap_grow_slots(m);
    return 1;
}

int tok_strmap_get(const tok_strmap *m, const char *key, size_t len, int64_t *value)
{
    if (!m->slots)
        return 0;
    int found;
    size_t slot = strmap_find_slot(m, XXH3_64bits(key, len), key, len, &found);
    if (!found)
        return 0;
    *value = m->entries[m->slots[slot] - 1].value;
    return 1;
}

/* ------------------------------------------------------------ tok_u64map */

int tok_u64map_init(tok_u64map *m, size_t expected)
{
    memset(m, 0, sizeof *m);
    size_t nslots = pow2_at_least(expected * 2);
    m->keys = malloc(nslots * sizeof *m->keys);
    m->values = malloc(nslots * sizeof *m->values);
    if (!m->keys || !m->values) {
        tok_u64map_free(m);
        return 0;
    }
    memset(m->keys, 0xff, nslots * sizeof *m->keys);
    m->mask = nslots - 1;
    return 1;
}

void tok_u64map_free(tok_u64map *m)
{
    free(m->keys);
    free(m->values);
    memset(m, 0, sizeof *m);
}

static void u64map_place(uint64_t *keys, uint64_t *values, size_t mask, uint64_t k, uint64_t v)
{
    size_t i = (size_t)tok_u64_mix(k) & mask;
    while (keys[i] != TOK_U64MAP_EMPTY && keys[i] != k)
        i = (i + 1) & mask;
    keys[i] = k;
    values[i] = v;
}

static int u64map_grow(tok_u64map *m)
{
    size_t nslots = (m->mask + 1) * 2;
    uint64_t *keys = malloc(nslots * sizeof *keys);
    uint64_t *values = malloc(nslots * sizeof *values);
    if (!keys || !values) {
        free(keys);
        free(values);
        return 0;
    }
    memset(keys, 0xff, nslots * sizeof *keys);
    for (size_t i = 0; i <= m->mask; i++) {
        if (m->keys[i] != TOK_U64MAP_EMPTY)
            u64map_place(keys, values, nslots - 1, m->keys[i], m->values[i]);
    }
    free(m->keys);
    free(m->values);
    m->keys = keys;
    m->values = values;
    m->mask = nslots - 1;
    return 1;
}

int tok_u64map_set(tok_u64map *m, uint64_t key, uint64_t value)
{
    if (!m->keys || key == TOK_U64MAP_EMPTY)
        return 0;
    uint64_t old;
    int existed = tok_u64map_get(m, key, &old);
    u64map_place(m->keys, m->values, m->mask, key, value);
    if (!existed) {
        m->n++;
        if (m->n * 2 > m->mask + 1 && !u64map_grow(m))
            return m->n < m->mask; /* full table would loop forever */
    }
    return 1;
}
