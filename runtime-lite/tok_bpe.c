/* tok_bpe.c - heap-driven BPE merging on ids (see tok_bpe.h). */
#include "runtime-lite/tok_bpe.h"

#include <stdlib.h>
#include <string.h>

/* A symbol of the word being merged: a doubly linked list over an array, so
 * a merge is O(1) and positions (array indices) never move. */
struct tok_sym {
    int32_t id; /* -1 once merged into its left neighbour */
    int32_t prev, next;
};

int tok_ids_push(tok_ids *ids, int32_t id)
{
    if (ids->n == ids->cap) {
        size_t cap = ids->cap ? ids->cap * 2 : 256;
        int32_t *v = realloc(ids->v, cap * sizeof *v);
        if (!v)
            return 0;
        ids->v = v;
        ids->cap = cap;
    }
    ids->v[ids->n++] = id;
    return 1;
}

void tok_bpe_work_free(tok_bpe_work *w)
{
    free(w->syms);
    free(w->heap);
    memset(w, 0, sizeof *w);
}

static int heap_push(tok_bpe_work *w, uint64_t e)
{
    if (w->heap_n == w->heap_cap) {
        size_t cap = w->heap_cap ? w->heap_cap * 2 : 64;
        uint64_t *h = realloc(w->heap, cap * sizeof *h);
        if (!h)
            return 0;
        w->heap = h;
        w->heap_cap = cap;
    }
    uint64_t *h = w->heap;
    size_t i = w->heap_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p] <= e)
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = e;
    return 1;
}

static uint64_t heap_pop(tok_bpe_work *w)
{
    uint64_t *h = w->heap;
    uint64_t top = h[0];
    uint64_t last = h[--w->heap_n];
    size_t n = w->heap_n, i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && h[c + 1] < h[c])
            c++;
        if (h[c] >= last)
            break;
        h[i] = h[c];
        i = c;
    }
    if (n)
        h[i] = last;
    return top;
}

static inline int pair_lookup(const tok_bpe *b, int32_t l, int32_t r, uint64_t *rank_id)
{
    return tok_u64map_get(&b->merges, (uint64_t)(uint32_t)l << 32 | (uint32_t)r, rank_id);
}

/* Queue the pair starting at symbol i, if a rule merges it. Heap entries
 * are (rank << 32 | position): the smallest is the lowest rank, leftmost. */
static int queue_pair(const tok_bpe *b, tok_bpe_work *w, int32_t i)
{
    int32_t j = w->syms[i].next;
    if (j < 0)
        return 1;
    uint64_t ri;
    if (!pair_lookup(b, w->syms[i].id, w->syms[j].id, &ri))
        return 1;
    return heap_push(w, (ri & 0xffffffff00000000ULL) | (uint32_t)i);
}

int tok_bpe_word(const tok_bpe *b, tok_bpe_work *w, const uint8_t *piece, size_t len,
                 tok_ids *out)
{
    if (len > INT32_MAX)
        return 0;
    if (len > w->syms_cap) {
        size_t cap = len < 64 ? 64 : len;
        struct tok_sym *s = realloc(w->syms, cap * sizeof *s);
        if (!s)
            return 0;
        w->syms = s;
        w->syms_cap = cap;
    }
    struct tok_sym *sy = w->syms;
    int32_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int32_t id = b->byte_id[piece[i]];
        if (id < 0)
            continue;
        sy[n] = (struct tok_sym){id, n - 1, n + 1};
        n++;
    }
    if (n == 0)
        return 1;
    sy[n - 1].next = -1;

    w->heap_n = 0;
    for (int32_t i = 0; i + 1 < n; i++) {
        if (!queue_pair(b, w, i))
            return 0;
    }
    while (w->heap_n) {
        uint64_t e = heap_pop(w);
        int32_t i = (int32_t)(uint32_t)e;
        uint32_t rank = (uint32_t)(e >> 32);
        /* Entries go stale when a neighbour merged first; a live pair at i
         * with the same rank is the same pair (ranks are unique). */
        if (sy[i].id < 0 || sy[i].next < 0)
            continue;
        int32_t j = sy[i].next;
        uint64_t ri;
        if (!pair_lookup(b, sy[i].id, sy[j].id, &ri) || (uint32_t)(ri >> 32) != rank)
            continue;
        sy[i].id = (int32_t)(uint32_t)ri;
        sy[i].next = sy[j].next;
        if (sy[j].next >= 0)
            sy[sy[j].next].prev = i;
        sy[j].id = -1;
        if (sy[i].prev >= 0 && !queue_pair(b, w, sy[i].prev))
            return 0;
        if (!queue_pair(b, w, i))
            return 0;
    }
    /* Symbol 0 is never merged away (merges keep the left symbol). */
    for (int32_t i = 0; i >= 0; i = sy[i].next) {
        if (!tok_ids_push(out, sy[i].id))
            return 0;
    }
    return 1;
}
