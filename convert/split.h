/* split.h - llama.cpp's gguf-split conventions: which output file each
 * tensor goes to, and the files' names (STEM-00001-of-0000K.gguf).
 *
 * The assignment is a pure function of the tensor sizes and the limits, so
 * any number of processes (--shard I/N) agree on it and together write the
 * same set, byte for byte, as one process. */
#ifndef QP_SPLIT_H
#define QP_SPLIT_H

#include <stddef.h>
#include <stdint.h>

#include "common/qp_error.h"

typedef struct {
    int n_files;
    int *file_of;    /* [n_tensors]: 0-based file index, non-decreasing */
} qp_split_plan;

/* Tensors are taken in order; a new file starts when adding the next
 * tensor would pass max_bytes of tensor data (0: no limit) or max_tensors
 * tensors (0: no limit). A tensor larger than max_bytes gets a file alone. */
qp_status qp_split_plan_make(const uint64_t *tensor_bytes, int64_t n, uint64_t max_bytes, int64_t max_tensors,
                             qp_split_plan *out, qp_err *err);
void qp_split_plan_free(qp_split_plan *sp);

/* "out/model.gguf", 0, 3 -> "out/model-00001-of-00003.gguf". */
void qp_split_path(const char *out_path, int k, int n, char *buf, size_t size);

/* Whether split file k (0-based) is written by shard i of n (1-based i):
 * files are dealt round-robin. */
int qp_split_is_mine(int k, int shard_index, int shard_count);

#endif
