/* split.c - split plans and split file names (see split.h). */
#include "convert/split.h"

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
    size_t len = strlen(out_path);
    if (len >= 5 && strcmp(out_path + len - 5, ".gguf") == 0)
        len -= 5;
    snprintf(buf, size, "%.*s-%05d-of-%05d.gguf", (int)len, out_path, k + 1, n);
}

int qp_split_is_mine(int k, int shard_index, int shard_count)
{
    if (shard_count <= 0)
        return 1;
    return k % shard_count == shard_index - 1;
}

int qp_split_parse_path(const char *path, char *first, size_t size, int *k, int *n)
{
    size_t len = strlen(path);
    /* "-00001-of-00003.gguf" is 20 characters */
    if (len < 20 || strcmp(path + len - 5, ".gguf") != 0)
        return 0;
    const char *s = path + len - 20;
    int a, b;
    char dash, tail[8];
    if (sscanf(s, "%c%5d-of-%5d%7s", &dash, &a, &b, tail) != 4 || dash != '-' || strcmp(tail, ".gguf") != 0)
        return 0;
    if (a < 1 || b < 1 || a > b)
        return 0;
    for (int i = 1; i <= 5; i++)
        if (s[i] < '0' || s[i] > '9' || s[9 + i] < '0' || s[9 + i] > '9')
            return 0;
    *k = a - 1;
    *n = b;
    snprintf(first, size, "%.*s-%05d-of-%05d.gguf", (int)(len - 20), path, 1, b);
    return 1;
}
