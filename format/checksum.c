/* checksum.c - xxh3-64 of tensor bytes and the check of the checksum array
 * (`qpack.tensor_xxh3`) that qp_gguf_writer_finish() stores in the header. */
#include "format/gguf.h"

#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#define CHECKSUM_KEY QP_GGUF_CHECKSUM_KEY

uint64_t qp_checksum_xxh3(const void *data, size_t n)
{
    return XXH3_64bits(n ? data : "", n);
}

qp_status qp_gguf_verify_checksums(const qp_gguf *g, qp_err *err)
{
    if (!g)
        return qp_err_set(err, QP_ERR_USAGE, NULL, "qp_gguf_verify_checksums: no file");
    const char *path = qp_gguf_path(g);
    int64_t k = qp_gguf_find_key(g, CHECKSUM_KEY);
    if (k < 0)
        return qp_err_set(err, QP_ERR_NOT_FOUND, path, "no %s checksums in this file",
                          CHECKSUM_KEY);
    int64_t n = qp_gguf_tensor_count(g);
    if (qp_gguf_kv_type(g, k) != QP_GGUF_ARRAY || qp_gguf_arr_type(g, k) != QP_GGUF_U64) {
        qp_err_set(err, QP_ERR_BAD_INPUT, path, "%s is not an array of UINT64", CHECKSUM_KEY);
        qp_err_set_tensor(err, CHECKSUM_KEY);
        return QP_ERR_BAD_INPUT;
    }
    if (qp_gguf_arr_len(g, k) != (uint64_t)n) {
        qp_err_set(err, QP_ERR_BAD_INPUT, path, "%s has %llu entries for %lld tensors",
                   CHECKSUM_KEY, (unsigned long long)qp_gguf_arr_len(g, k), (long long)n);
        qp_err_set_tensor(err, CHECKSUM_KEY);
        return QP_ERR_BAD_INPUT;
    }
    const uint8_t *stored = qp_gguf_arr_data(g, k);
    for (int64_t i = 0; i < n; i++) {
        const qp_gguf_tensor *t = qp_gguf_tensor_at(g, i);
        uint64_t want;
        memcpy(&want, stored + 8 * i, 8); /* the mapping gives no alignment */
        uint64_t got = qp_checksum_xxh3(t->data, (size_t)t->nbytes);
        if (got != want) {
            char name[256];
            snprintf(name, sizeof name, "%.*s", (int)(t->name.len > 255 ? 255 : t->name.len),
                     t->name.ptr);
            qp_err_set(err, QP_ERR_BAD_INPUT, path,
                       "checksum mismatch in tensor '%s': stored xxh3 %016llx, data %016llx",
                       name, (unsigned long long)want, (unsigned long long)got);
            qp_err_set_tensor(err, name);
            qp_err_set_offset(err, (int64_t)(qp_gguf_data_offset(g) + t->offset));
            return QP_ERR_BAD_INPUT;
        }
    }
    return QP_OK;
}
