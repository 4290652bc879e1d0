/* gguf_writer_impl.h - (internal to format/) the writer's state, shared by
 * gguf_writer.c (declarations, header bytes) and gguf_writer_io.c (temp
 * file, tensor data, checksums, finish). */
#ifndef QP_GGUF_WRITER_IMPL_H
#define QP_GGUF_WRITER_IMPL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <xxhash.h>

#include "format/gguf.h"
#include "format/gguf_index.h"

typedef struct {
    uint8_t *p;
    size_t len, cap;
    int oom;
} qp_gw_buf;

int qp_gw_buf_reserve(qp_gw_buf *b, size_t extra);
void qp_gw_buf_put(qp_gw_buf *b, const void *data, size_t n);
void qp_gw_buf_u32(qp_gw_buf *b, uint32_t v);
void qp_gw_buf_u64(qp_gw_buf *b, uint64_t v);
void qp_gw_buf_str(qp_gw_buf *b, const char *s, size_t n);

typedef struct {
    char *key;
    uint8_t *val; /* value type (u32) + payload, as written to the file */
    size_t val_len;
} qp_gw_kv;

typedef struct {
    char *name;
    size_t name_len;
    uint32_t n_dims;
    int64_t ne[QP_GGUF_MAX_DIMS];
    uint32_t type;
    uint64_t nbytes;
    uint64_t offset; /* relative to the data section, set by begin() */
    /* Guarded by the writer's mutex: */
    uint64_t written;   /* bytes written so far (pieces never overlap) */
    int streaming;      /* pieces so far arrived contiguous from offset 0 */
    int hashing;        /* one thread is feeding `st` outside the lock */
    int hashed;         /* `hash` is final */
    uint64_t hash_next; /* next offset the streaming hash expects */
    uint64_t hash;
    XXH3_state_t *st;
} qp_gw_tensor;

enum { QP_GW_DECLARING, QP_GW_BEGUN, QP_GW_FINISHED, QP_GW_DEAD };

struct qp_gguf_writer {
    char *final_path, *tmp_path;
    int state;
    int checksums;
    int fd;
    int crash_handle;   /* the temp file's entry in common/qp_crash_files.h, or -1 */
    uint32_t alignment;
    qp_gw_kv *kvs;
    size_t n_kv, cap_kv;
    qp_gw_tensor *tensors;
    size_t n_tensors, cap_tensors;
    qp_gguf_index names;
    uint64_t ck_off;    /* file offset of the first checksum element */
    uint64_t data_off;  /* file offset of the data section */
    uint64_t file_size; /* header + aligned data, the temp file's size */
    pthread_mutex_t mu;
    int write_failed;   /* guarded by mu: some pwrite failed, finish must fail */
    int failed_errno;
    char failed_tensor[256];
};

/* Lay out tensor data and serialize header + key/values + tensor infos into
 * `h`; sets data_off, ck_off and file_size. */
qp_status qp_gw_build_header(qp_gguf_writer *w, qp_gw_buf *h, qp_err *err);

#endif
