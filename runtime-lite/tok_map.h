/* tok_map.h - the two small open-addressing hash maps the tokenizer needs
 * (internal to runtime-lite; the project has no hash-table dependency):
 *   tok_strmap: byte string -> int64 (vocabulary, piece cache); keys are
 *               copied into the map's own arena.
 *   tok_u64map: uint64 -> uint64 (BPE merges: (left, right) -> rank, id).
 * Both grow by doubling at half load, so probes stay short. */
#ifndef QP_TOK_MAP_H
#define QP_TOK_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t hash;
    size_t key_off;  /* into arena */
    size_t key_len;
    int64_t value;
} tok_strmap_entry;

typedef struct {
    tok_strmap_entry *entries; /* dense, insertion order */
    size_t n, cap_entries;
    uint32_t *slots;           /* entry index + 1; 0 = empty */
    size_t mask;               /* slots - 1 (power of two) */
    char *arena;
    size_t arena_len, arena_cap;
} tok_strmap;

/* 1 on success, 0 when out of memory. `expected` sizes the first table. */
int tok_strmap_init(tok_strmap *m, size_t expected);
void tok_strmap_free(tok_strmap *m); /* accepts a zeroed map */
/* Insert unless present. Returns 1 inserted, 2 already present (value left
 * unchanged, so the first insertion wins), 0 out of memory. */
int tok_strmap_put(tok_strmap *m, const char *key, size_t len, int64_t value);
/* 1 and *value when found, else 0. */
int tok_strmap_get(const tok_strmap *m, const char *key, size_t len, int64_t *value);

#define TOK_U64MAP_EMPTY UINT64_MAX

typedef struct {
    uint64_t *keys;   /* TOK_U64MAP_EMPTY marks a free slot */
    uint64_t *values;
    size_t n, mask;
} tok_u64map;

int tok_u64map_init(tok_u64map *m, size_t expected);
void tok_u64map_free(tok_u64map *m);
/* Insert or overwrite (key must not be TOK_U64MAP_EMPTY). 0 = out of memory. */
int tok_u64map_set(tok_u64map *m, uint64_t key, uint64_t value);

/* Inline: this lookup is the inner loop of BPE. */
static inline uint64_t tok_u64_mix(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

static inline int tok_u64map_get(const tok_u64map *m, uint64_t key, uint64_t *value)
{
    if (!m->keys)
        return 0;
    size_t i = (size_t)tok_u64_mix(key) & m->mask;
    for (;;) {
        uint64_t k = m->keys[i];
        if (k == key) {
            *value = m->values[i];
            return 1;
        }
        if (k == TOK_U64MAP_EMPTY)
            return 0;
        i = (i + 1) & m->mask;
    }
}

#endif
