/* gguf_reader_impl.h - (internal to format/) the reader's handle, shared by
 * gguf_reader.c (validation at open) and gguf_access.c (lookups). */
#ifndef QP_GGUF_READER_IMPL_H
#define QP_GGUF_READER_IMPL_H

#include <stdint.h>

#include "format/gguf.h"
#include "format/gguf_index.h"

typedef struct {
    qp_gguf_str key;
    uint64_t key_off;     /* file offset of the key's length field, for errors */
    qp_gguf_vtype type;
    const uint8_t *val;   /* scalar bytes, or first array element */
    qp_gguf_str str;      /* STRING value */
    qp_gguf_vtype arr_type;
    uint64_t arr_len;
    uint64_t *str_offs;   /* string arrays: offset of each element's length field */
} gguf_kv;

struct qp_gguf {
    char *path;
    const uint8_t *base;
    uint64_t size;
    void *map; /* non-NULL when we own an mmap of `size` bytes */
    int crash_handle; /* the mapping's entry in common/qp_crash_files.h, or -1 */
    uint32_t version;
    uint32_t alignment;
    uint64_t data_off;
    gguf_kv *kvs;
    int64_t n_kv, cap_kv;
    qp_gguf_tensor *tensors;
    uint64_t *tensor_info_off; /* file offset of each tensor info, for errors */
    int64_t n_tensors, cap_tensors;
    qp_gguf_index kv_ix, tensor_ix;
};

static inline uint32_t qp_gguf_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t qp_gguf_le64(const uint8_t *p)
{
    return (uint64_t)qp_gguf_le32(p) | (uint64_t)qp_gguf_le32(p + 4) << 32;
}

#endif
