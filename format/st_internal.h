/* st_internal.h - pieces of the safetensors reader shared by its .c files
 * (not part of the public API): the header parser and dtype conversion. */
#ifndef QP_ST_INTERNAL_H
#define QP_ST_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "common/qp_error.h"
#include "format/safetensors.h"

/* The largest header the reader accepts (the limit of the reference Rust
 * implementation): bounds the memory a hostile file can make us allocate. */
#define QP_ST_MAX_HEADER ((uint64_t)100000000)

/* JSON numbers are doubles; integers above 2^53 are not exact, so any
 * offset or dimension above it cannot be trusted and is refused. */
#define QP_ST_MAX_JSON_INT ((uint64_t)1 << 53)

/* One parsed header: tensors (names malloc'ed, in header order) and the
 * "__metadata__" map. */
typedef struct {
    qp_st_tensor *tensors;
    size_t n_tensors;
    char **meta_keys;
    char **meta_vals;
    size_t n_meta;
} qp_st_header;

/* Parse and validate one header (without the 8-byte prefix). `data_base` is
 * the absolute file offset of the data region (8 + json_len) and is added to
 * every tensor's file_offset; `file_index` is stored in every tensor. On
 * failure `out` is left empty. */
qp_status qp_st_header_parse(const char *json, size_t json_len, uint64_t data_size,
                             uint64_t data_base, int file_index, const char *path,
                             qp_st_header *out, qp_err *err);
void qp_st_header_free(qp_st_header *h); /* accepts NULL and a zeroed struct */

/* Convert `n` elements of dtype `dt` (a float dtype) at `src` (little-endian
 * bytes, any alignment) to f32. */
void qp_st_convert_f32(qp_st_dtype dt, const unsigned char *src, size_t n, float *dst);

/* Parse a JSON number that must be a non-negative integer <= 2^53. */
int qp_st_json_uint(double v, uint64_t *out);

/* The checkpoint object, shared by safetensors.c and st_index.c. */
typedef struct {
    char *path;
    int fd;
    uint64_t size; /* at open */
} qp_st_file;

struct qp_st_model {
    qp_st_file *files;
    size_t n_files;
    qp_st_tensor *tensors; /* sorted by name */
    size_t n_tensors;
    char **meta_keys, **meta_vals; /* __metadata__ of file 0 */
    size_t n_meta;
};

/* A model with `n_files` empty file slots (fd -1). NULL on no memory. */
qp_st_model *qp_st_model_new(size_t n_files);
/* Open file slot `file_index` at `path` and parse its header into `h`. */
qp_status qp_st_open_one(qp_st_model *m, int file_index, const char *path, qp_st_header *h, qp_err *err);
/* Move the headers' tensors into `m`, sort by name, reject duplicates. */
qp_status qp_st_merge(qp_st_model *m, qp_st_header *hs, size_t n_hs, qp_err *err);
/* Open a sharded checkpoint through its index file. */
qp_status qp_st_open_index(const char *dir, const char *index_path, qp_st_model **out, qp_err *err);

/* "dir/name", malloc'ed. */
char *qp_st_join(const char *dir, const char *name);
/* pread exactly n bytes; a short read is an error (the file shrank). */
qp_status qp_st_pread_full(int fd, void *buf, size_t n, uint64_t off, const char *path, qp_err *err);

#endif
