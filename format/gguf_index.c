/* gguf_index.c - open-addressing hash index of names (see gguf_index.h). */
#include "format/gguf_index.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

/* Seeded per index, so a hostile file cannot precompute colliding names
 * that turn lookups quadratic. */
static uint64_t hash_name(const qp_gguf_index *ix, const char *p, uint64_t len)
{
    return XXH3_64bits_withSeed(len ? p : "", (size_t)len, ix->seed);
}

static int same(qp_gguf_str s, const char *p, uint64_t len)
{
    return s.len == len && (len == 0 || memcmp(s.ptr, p, (size_t)len) == 0);
}

static int alloc_slots(qp_gguf_index *ix, uint64_t cap)
{
    int64_t *slots = malloc((size_t)cap * sizeof *slots);
    if (!slots)
        return -1;
    memset(slots, 0xff, (size_t)cap * sizeof *slots); /* all -1 */
    ix->slots = slots;
    ix->mask = cap - 1;
    return 0;
}

int qp_gguf_index_init(qp_gguf_index *ix, uint64_t expected, qp_gguf_index_name_fn name,
                       const void *ctx)
{
    uint64_t cap = 16;
    /* Keep the load factor under 1/2 so probe runs stay short. */
    while (cap < expected * 2 && cap < ((uint64_t)1 << 40))
        cap <<= 1;
    memset(ix, 0, sizeof *ix);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ix->seed = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)ix ^
               (uint64_t)ts.tv_sec;
    ix->name = name;
    ix->ctx = ctx;
    return alloc_slots(ix, cap);
}

void qp_gguf_index_free(qp_gguf_index *ix)
{
    if (!ix)
        return;
    free(ix->slots);
    ix->slots = NULL;
    ix->count = 0;
}

static void place(int64_t *slots, uint64_t mask, uint64_t h, int64_t item)
{
    uint64_t i = h & mask;
    while (slots[i] >= 0)
        i = (i + 1) & mask;
    slots[i] = item;
}

static int grow(qp_gguf_index *ix)
{
    uint64_t old_cap = ix->mask + 1;
    int64_t *old = ix->slots;
    if (alloc_slots(ix, old_cap * 2) != 0) {
        ix->slots = old;
        return -1;
    }
    for (uint64_t i = 0; i < old_cap; i++) {
        if (old[i] < 0)
            continue;
        qp_gguf_str s = ix->name(ix->ctx, old[i]);
        place(ix->slots, ix->mask, hash_name(ix, s.ptr, s.len), old[i]);
    }
    free(old);
    return 0;
}

int64_t qp_gguf_index_insert(qp_gguf_index *ix, int64_t item)
{
    if ((ix->count + 1) * 2 > ix->mask + 1 && grow(ix) != 0)
        return -2;
    qp_gguf_str s = ix->name(ix->ctx, item);
    uint64_t i = hash_name(ix, s.ptr, s.len) & ix->mask;
    while (ix->slots[i] >= 0) {
        if (same(ix->name(ix->ctx, ix->slots[i]), s.ptr, s.len))
            return ix->slots[i];
        i = (i + 1) & ix->mask;
    }
    ix->slots[i] = item;
    ix->count++;
    return -1;
}

int64_t qp_gguf_index_find(const qp_gguf_index *ix, const char *name, uint64_t len)
{
    if (!ix->slots)
        return -1;
    uint64_t i = hash_name(ix, name, len) & ix->mask;
    while (ix->slots[i] >= 0) {
        if (same(ix->name(ix->ctx, ix->slots[i]), name, len))
            return ix->slots[i];
        i = (i + 1) & ix->mask;
    }
    return -1;
}
