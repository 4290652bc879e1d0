/* gguf_index.h - (internal to format/) a hash index from names to item
 * indices, shared by the GGUF reader (keys, tensor names: duplicate checks
 * and O(1) lookups) and the writer (duplicate tensor names).
 *
 * The index stores only item numbers; names are fetched through a callback so
 * the caller keeps one copy of each name (in the mapping or in its tables). */
#ifndef QP_GGUF_INDEX_H
#define QP_GGUF_INDEX_H

#include <stdint.h>

#include "format/gguf.h"

typedef qp_gguf_str (*qp_gguf_index_name_fn)(const void *ctx, int64_t item);

typedef struct {
    int64_t *slots; /* item number, or -1 when empty */
    uint64_t mask;  /* capacity - 1; capacity is a power of two */
    uint64_t count;
    uint64_t seed;
    qp_gguf_index_name_fn name;
    const void *ctx;
} qp_gguf_index;

/* Prepare an index for about `expected` items (it grows as needed).
 * Returns 0, or -1 on allocation failure. */
int qp_gguf_index_init(qp_gguf_index *ix, uint64_t expected, qp_gguf_index_name_fn name,
                       const void *ctx);
void qp_gguf_index_free(qp_gguf_index *ix);

/* Add `item` (its name comes from the callback). Returns -1 when added, the
 * item number of an earlier item with the same name, or -2 on allocation
 * failure. */
int64_t qp_gguf_index_insert(qp_gguf_index *ix, int64_t item);

/* Item number with this name, or -1. */
int64_t qp_gguf_index_find(const qp_gguf_index *ix, const char *name, uint64_t len);

#endif
