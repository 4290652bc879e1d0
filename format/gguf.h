/* gguf.h - GGUF v3: a validating mmap reader and a streaming writer.
 *
 * Reader: the whole file is mapped read-only; every count, string length,
 * array length, dimension, type id, offset and the alignment is checked
 * against the bytes that remain (overflow-checked) before it is used.
 * Accepts GGUF v2 and v3 files from llama.cpp and from qpack.
 *
 * Writer: all key/values and tensor infos are declared first, then
 * qp_gguf_writer_begin() writes the header and reserves the data region;
 * tensor data is written afterwards in any order with pwrite (so experts of
 * a stacked tensor can be written in place, by several threads), and
 * qp_gguf_writer_finish() fills the checksum array reserved in the header,
 * fsyncs and renames the temp file to its final name. Nothing holds the
 * model in memory. qp_gguf_writer_abort() removes the temp file. */
#ifndef QP_GGUF_H
#define QP_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "common/qp_error.h"

typedef enum {
    QP_GGUF_U8 = 0, QP_GGUF_I8 = 1, QP_GGUF_U16 = 2, QP_GGUF_I16 = 3,
    QP_GGUF_U32 = 4, QP_GGUF_I32 = 5, QP_GGUF_F32 = 6, QP_GGUF_BOOL = 7,
    QP_GGUF_STRING = 8, QP_GGUF_ARRAY = 9, QP_GGUF_U64 = 10, QP_GGUF_I64 = 11,
    QP_GGUF_F64 = 12, QP_GGUF_VTYPE_COUNT
} qp_gguf_vtype;

#define QP_GGUF_MAX_DIMS 4
#define QP_GGUF_DEFAULT_ALIGNMENT 32
/* Per-tensor xxh3-64 checksums written by qpack (UINT64 array, file order). */
#define QP_GGUF_CHECKSUM_KEY "qpack.tensor_xxh3"

/* ---------------------------------------------------------------- reader */

typedef struct qp_gguf qp_gguf;

typedef struct {
    const char *ptr; /* not NUL-terminated */
    uint64_t len;
} qp_gguf_str;

typedef struct {
    qp_gguf_str name;
    uint32_t n_dims;
    int64_t ne[QP_GGUF_MAX_DIMS]; /* innermost first; unused dims are 1 */
    uint32_t type;                /* qp_ggml_type */
    uint64_t offset;              /* relative to the data section */
    uint64_t nbytes;
    const void *data;             /* points into the mapping */
} qp_gguf_tensor;

qp_status qp_gguf_open(const char *path, qp_gguf **out, qp_err *err);
/* Validate an in-memory image (fuzzing, tests); `buf` must outlive the handle. */
qp_status qp_gguf_open_memory(const void *buf, size_t size, const char *name_for_errors,
                              qp_gguf **out, qp_err *err);
void qp_gguf_close(qp_gguf *g); /* accepts NULL */

const char *qp_gguf_path(const qp_gguf *g);
uint32_t qp_gguf_version(const qp_gguf *g);
uint32_t qp_gguf_alignment(const qp_gguf *g);
uint64_t qp_gguf_data_offset(const qp_gguf *g); /* file offset of the data section */
uint64_t qp_gguf_file_size(const qp_gguf *g);

/* Key/values, in file order. */
int64_t qp_gguf_kv_count(const qp_gguf *g);
int64_t qp_gguf_find_key(const qp_gguf *g, const char *key); /* -1 if absent */
qp_gguf_str qp_gguf_kv_key(const qp_gguf *g, int64_t i);
qp_gguf_vtype qp_gguf_kv_type(const qp_gguf *g, int64_t i);
/* Scalar value of any numeric/bool type, converted. 0 if not scalar-numeric
 * or not exactly representable (negative as u64, fraction/NaN as integer). */
int qp_gguf_kv_as_u64(const qp_gguf *g, int64_t i, uint64_t *out);
int qp_gguf_kv_as_i64(const qp_gguf *g, int64_t i, int64_t *out);
int qp_gguf_kv_as_f64(const qp_gguf *g, int64_t i, double *out);
qp_gguf_str qp_gguf_kv_str(const qp_gguf *g, int64_t i); /* {NULL,0} if not a string */
/* Arrays: element type, length, raw pointer for fixed-size element types
 * (little-endian, not aligned: memcpy elements out), and string elements by
 * index (O(1): offsets are indexed at open). Arrays of arrays (nesting up to
 * 4 deep) are validated; only their type and length are exposed. */
qp_gguf_vtype qp_gguf_arr_type(const qp_gguf *g, int64_t i);
uint64_t qp_gguf_arr_len(const qp_gguf *g, int64_t i);
const void *qp_gguf_arr_data(const qp_gguf *g, int64_t i); /* NULL for string arrays */
qp_gguf_str qp_gguf_arr_str(const qp_gguf *g, int64_t i, uint64_t j);

/* Convenience lookups by key; return 0 when absent or of another kind. */
int qp_gguf_get_u64(const qp_gguf *g, const char *key, uint64_t *out);
int qp_gguf_get_f64(const qp_gguf *g, const char *key, double *out);
int qp_gguf_get_str(const qp_gguf *g, const char *key, qp_gguf_str *out);

/* Tensors, in file order. */
int64_t qp_gguf_tensor_count(const qp_gguf *g);
const qp_gguf_tensor *qp_gguf_tensor_at(const qp_gguf *g, int64_t i);
const qp_gguf_tensor *qp_gguf_find_tensor(const qp_gguf *g, const char *name);

const char *qp_gguf_vtype_name(qp_gguf_vtype t); /* "UINT32", "STRING", ... */
uint32_t qp_gguf_vtype_size(qp_gguf_vtype t);    /* 0 for STRING/ARRAY */

/* ---------------------------------------------------------------- writer */

typedef struct qp_gguf_writer qp_gguf_writer;

/* `final_path` is where the file ends up; data goes to "<final_path>.tmp"
 * until finish. Returns NULL on allocation failure. */
qp_gguf_writer *qp_gguf_writer_new(const char *final_path);
void qp_gguf_writer_free(qp_gguf_writer *w); /* accepts NULL; aborts if unfinished */

/* Key/values are written in the order they are set; setting a key twice
 * replaces the value in place. Strings are copied. Setters return
 * QP_ERR_USAGE after begin(), for an empty key, and for the reserved
 * QP_GGUF_CHECKSUM_KEY (the writer owns it: copy loops must skip it).
 * `general.alignment` (UINT32, a power of two) changes the data alignment. */
qp_status qp_gguf_set_u8(qp_gguf_writer *w, const char *key, uint8_t v);
qp_status qp_gguf_set_u32(qp_gguf_writer *w, const char *key, uint32_t v);
qp_status qp_gguf_set_i32(qp_gguf_writer *w, const char *key, int32_t v);
qp_status qp_gguf_set_u64(qp_gguf_writer *w, const char *key, uint64_t v);
qp_status qp_gguf_set_f32(qp_gguf_writer *w, const char *key, float v);
qp_status qp_gguf_set_bool(qp_gguf_writer *w, const char *key, int v);
qp_status qp_gguf_set_i8(qp_gguf_writer *w, const char *key, int8_t v);
qp_status qp_gguf_set_u16(qp_gguf_writer *w, const char *key, uint16_t v);
qp_status qp_gguf_set_i16(qp_gguf_writer *w, const char *key, int16_t v);
qp_status qp_gguf_set_i64(qp_gguf_writer *w, const char *key, int64_t v);
qp_status qp_gguf_set_f64(qp_gguf_writer *w, const char *key, double v);
qp_status qp_gguf_set_str(qp_gguf_writer *w, const char *key, const char *v);
qp_status qp_gguf_set_strn(qp_gguf_writer *w, const char *key, const char *v, size_t len);
/* Fixed-size element arrays (elem_type not STRING/ARRAY); data copied. */
qp_status qp_gguf_set_arr(qp_gguf_writer *w, const char *key, qp_gguf_vtype elem_type,
                          const void *data, uint64_t n);
/* String arrays; strings copied. lens may be NULL (then strlen). */
qp_status qp_gguf_set_arr_str(qp_gguf_writer *w, const char *key,
                              const char *const *strs, const size_t *lens, uint64_t n);

/* Declare a tensor; returns its index (>= 0) or -1 on error (duplicate
 * name, bad dims, row not a multiple of the block size). ne innermost first. */
int64_t qp_gguf_add_tensor(qp_gguf_writer *w, const char *name, uint32_t n_dims,
                           const int64_t *ne, uint32_t ggml_type, qp_err *err);
uint64_t qp_gguf_writer_tensor_nbytes(const qp_gguf_writer *w, int64_t idx);
int64_t qp_gguf_writer_tensor_count(const qp_gguf_writer *w);
/* Before begin(): the data offset and file size the declared keys and
 * tensors would give (checksums included), and the data alignment. */
qp_status qp_gguf_writer_layout(qp_gguf_writer *w, uint64_t *data_offset, uint64_t *file_size, uint32_t *alignment,
                                qp_err *err);

/* When on (default on), begin() reserves `qpack.tensor_xxh3` (UINT64 array,
 * one per tensor, file order) and finish() fills it with the xxh3-64 of each
 * tensor's bytes. A tensor written in ascending contiguous pieces is hashed
 * on the fly; one written out of order is read back from the file at finish. */
void qp_gguf_writer_set_checksums(qp_gguf_writer *w, int on);

/* Write header, key/values and tensor infos to the temp file. After this no
 * more keys or tensors may be added. */
qp_status qp_gguf_writer_begin(qp_gguf_writer *w, qp_err *err);

/* Write bytes [offset, offset+n) of tensor idx's data. Thread-safe (pwrite);
 * pieces may come in any order and from any thread, but must not overlap. */
qp_status qp_gguf_write_tensor(qp_gguf_writer *w, int64_t idx, uint64_t offset,
                               const void *data, size_t n, qp_err *err);

/* Check every tensor was fully written, fill checksums, fsync, rename. */
qp_status qp_gguf_writer_finish(qp_gguf_writer *w, qp_err *err);

/* Remove the temp file (safe to call from cleanup paths; idempotent). */
void qp_gguf_writer_abort(qp_gguf_writer *w);
const char *qp_gguf_writer_temp_path(const qp_gguf_writer *w);

/* ---------------------------------------------------------------- checksums */

/* xxh3-64 of a byte range (wraps libxxhash). */
uint64_t qp_checksum_xxh3(const void *data, size_t n);

/* Recompute every tensor's xxh3 and compare with `qpack.tensor_xxh3`.
 * Returns QP_OK, QP_ERR_NOT_FOUND if the file has no checksums, or
 * QP_ERR_BAD_INPUT naming the first mismatching tensor. */
qp_status qp_gguf_verify_checksums(const qp_gguf *g, qp_err *err);

#endif
