/* safetensors.h - reading Hugging Face safetensors checkpoints.
 *
 * A checkpoint is one file (`model.safetensors`) or many shards named by
 * `model.safetensors.index.json`. Everything is validated at open: header
 * length <= 100 MB and <= file size, JSON well-formed (parsed with cJSON),
 * every offset an integer <= 2^53 read as double, offsets inside the data
 * region, end-start == prod(shape) * dtype size with overflow-checked
 * arithmetic, no overlapping ranges, unique names across all shards, every
 * index entry present in the shard it names. Any violation is an error naming
 * the file and the tensor.
 *
 * Data is read with pread (no mmap), so a file truncated while in use gives
 * an I/O or bad-input error, never SIGBUS; reads recheck the file size. */
#ifndef QP_SAFETENSORS_H
#define QP_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "common/qp_error.h"

typedef enum {
    QP_ST_F64, QP_ST_F32, QP_ST_F16, QP_ST_BF16,
    QP_ST_I64, QP_ST_I32, QP_ST_I16, QP_ST_I8,
    QP_ST_U64, QP_ST_U32, QP_ST_U16, QP_ST_U8,
    QP_ST_BOOL, QP_ST_F8_E4M3, QP_ST_F8_E5M2,
    QP_ST_DTYPE_COUNT
} qp_st_dtype;

#define QP_ST_MAX_DIMS 8

typedef struct {
    const char *name;      /* as in the header, e.g. "model.layers.0.mlp.gate.weight" */
    qp_st_dtype dtype;
    int n_dims;            /* 0..QP_ST_MAX_DIMS; 0 is a scalar */
    int64_t shape[QP_ST_MAX_DIMS]; /* row-major, outermost first, as in the JSON */
    uint64_t n_elems;
    uint64_t nbytes;
    uint64_t file_offset;  /* absolute byte offset of the data in its file */
    int file_index;        /* which shard (qp_st_file_path) */
} qp_st_tensor;

typedef struct qp_st_model qp_st_model;

/* Open a checkpoint directory: uses model.safetensors.index.json when
 * present, else the single model.safetensors, else every *.safetensors in
 * the directory (sorted). */
qp_status qp_st_open_dir(const char *dir, qp_st_model **out, qp_err *err);

/* Open one safetensors file as a checkpoint of its own. */
qp_status qp_st_open_file(const char *path, qp_st_model **out, qp_err *err);

void qp_st_close(qp_st_model *m); /* accepts NULL */

size_t qp_st_count(const qp_st_model *m);                  /* tensors, in a stable order (by name) */
const qp_st_tensor *qp_st_at(const qp_st_model *m, size_t i);
const qp_st_tensor *qp_st_find(const qp_st_model *m, const char *name); /* NULL if absent */

size_t qp_st_file_count(const qp_st_model *m);
const char *qp_st_file_path(const qp_st_model *m, int file_index);
uint64_t qp_st_file_size(const qp_st_model *m, int file_index);

/* The "__metadata__" string map of the first file (may be absent). */
const char *qp_st_metadata_get(const qp_st_model *m, const char *key);

const char *qp_st_dtype_name(qp_st_dtype dt);   /* "BF16" */
uint32_t qp_st_dtype_size(qp_st_dtype dt);      /* bytes per element */
int qp_st_dtype_is_float(qp_st_dtype dt);       /* F64/F32/F16/BF16/F8_* */
/* "BF16" -> QP_ST_BF16. QP_OK, QP_ERR_UNSUPPORTED for dtypes safetensors
 * defines that we do not read (F4, F6_*, F8_E8M0, C64, ...), else
 * QP_ERR_BAD_INPUT. Does not fill an error record. */
qp_status qp_st_dtype_from_name(const char *name, qp_st_dtype *out);

/* FP8 decoding. E4M3 is the "fn" variant (bias 7, no infinities, S.1111.111
 * is NaN, max 448); E5M2 is IEEE-like (bias 15, with inf and NaN). */
float qp_st_f8_e4m3_to_f32(uint8_t b);
float qp_st_f8_e5m2_to_f32(uint8_t b);

/* Read raw bytes [offset, offset+n) of a tensor's data (offset relative to
 * the tensor's start). Thread-safe (pread). Fails if the file shrank. */
qp_status qp_st_read_raw(const qp_st_model *m, const qp_st_tensor *t,
                         uint64_t offset, void *dst, size_t n, qp_err *err);

/* Read elements [first, first+count) of a float tensor converted to f32
 * (exact for F16/BF16/F8; F64 is rounded). Thread-safe. */
qp_status qp_st_read_f32(const qp_st_model *m, const qp_st_tensor *t,
                         uint64_t first, uint64_t count, float *dst, qp_err *err);

/* Ask the OS to drop cached pages of this tensor's byte range (after use),
 * so reading a 2 TB model does not grow the page cache charged to us. */
void qp_st_release(const qp_st_model *m, const qp_st_tensor *t);

/* Low-level entry for fuzzing and tests: validate a header buffer
 * (the 8-byte length prefix excluded) against a data region of
 * `data_size` bytes, without touching any file. */
qp_status qp_st_validate_header(const char *json, size_t json_len, uint64_t data_size,
                                const char *path_for_errors, qp_err *err);

#endif
