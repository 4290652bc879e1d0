/* tok_bpe.h - byte-level BPE on token ids (internal to runtime-lite).
 *
 * Instead of merging strings, every byte of a piece starts as the id of its
 * one-character byte-level token, and each merge rule is a hash entry
 * (left id, right id) -> (rank, merged id). A word is merged with a min-heap
 * ordered by (rank, position): always the lowest-rank pair, leftmost first,
 * which is the order Hugging Face's BPE applies merges in. O(n log n) per
 * piece, so a megabyte of spaces does not go quadratic. */
#ifndef QP_TOK_BPE_H
#define QP_TOK_BPE_H

#include <stddef.h>
#include <stdint.h>

#include "runtime-lite/tok_map.h"

typedef struct {
    tok_u64map merges;    /* (left << 32 | right) -> (rank << 32 | merged id) */
    int32_t byte_id[256]; /* id of each byte's one-character token, -1 if none */
} tok_bpe;

typedef struct {
    int32_t *v;
    size_t n, cap;
} tok_ids;

/* Per-call scratch space, reused across pieces. Zero-initialise. */
typedef struct {
    struct tok_sym *syms;
    size_t syms_cap;
    uint64_t *heap;
    size_t heap_n, heap_cap;
} tok_bpe_work;

int tok_ids_push(tok_ids *ids, int32_t id); /* 0 = out of memory */
void tok_bpe_work_free(tok_bpe_work *w);

/* Merge the bytes of one pre-tokenized piece and append the resulting ids
 * to `out`. Bytes whose token is missing are dropped, as Hugging Face does
 * when the model has no unknown token. Returns 0 when out of memory. */
int tok_bpe_word(const tok_bpe *b, tok_bpe_work *w, const uint8_t *piece, size_t len,
                 tok_ids *out);

#endif
