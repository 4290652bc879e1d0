/* split.c - split plans and split file names (see split.h). */
#include "convert/split.h"

#include "format/gguf_set.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

qp_status qp_split_plan_make(const uint64_t *tensor_bytes, int64_t n, uint64_t max_bytes, int64_t max_tensors,
                             qp_split_plan *out, qp_err *err)
{
    out->n_files = 0;
    out->file_of = calloc((size_t)(n ? n : 1), sizeof *out->file_of);
    if (!out->file_of)
        return qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory planning the split");
    int file = 0;
    uint64_t bytes = 0;
    int64_t count = 0;
    for (int64_t i = 0; i < n; i++) {
        int over_bytes = max_bytes && count > 0 && bytes + tensor_bytes[i] > max_bytes;
        int over_count = max_tensors && count >= max_tensors;
        if (over_bytes || over_count) {
            file++;
            bytes = 0;
            count = 0;
        }
        out->file_of[i] = file;
        bytes += tensor_bytes[i];
        count++;
    }
    out->n_files = n ? file + 1 : 1;
    if (out->n_files > 99999) {
        free(out->file_of);
        out->file_of = NULL;
        return qp_err_set(err, QP_ERR_USAGE, NULL, "the split would need %d files (at most 99999)", out->n_files);
    }
    return QP_OK;
}

void qp_split_plan_free(qp_split_plan *sp)
{
    if (sp) {
        free(sp->file_of);
        sp->file_of = NULL;
    }
}

void qp_split_path(const char *out_path, int k, int n, char *buf, size_t size)
{
    qp_gguf_split_path(out_path, k, n, buf, size);
}

int qp_split_is_mine(int k, int shard_index, int shard_count)
{
    if (shard_count <= 0)
        return 1;
    return k % shard_count == shard_index - 1;
}

