/* gguf_set.h - a GGUF model that may be split over several files in
 * llama.cpp's gguf-split conventions (STEM-00001-of-0000K.gguf with
 * split.no / split.count / split.tensors.count). Opening any file of a set
 * opens the whole set and checks that it is complete and consistent; a
 * plain file is a set of one. */
#ifndef QP_GGUF_SET_H
#define QP_GGUF_SET_H

#include <stddef.h>

#include "common/qp_error.h"
#include "format/gguf.h"

typedef struct qp_gguf_set qp_gguf_set;

qp_status qp_gguf_set_open(const char *path, qp_gguf_set **out, qp_err *err);
void qp_gguf_set_close(qp_gguf_set *s); /* accepts NULL */

int qp_gguf_set_file_count(const qp_gguf_set *s);
const qp_gguf *qp_gguf_set_file(const qp_gguf_set *s, int k); /* k = 0 holds the metadata */

/* Tensors of all files, in set order. */
int64_t qp_gguf_set_tensor_count(const qp_gguf_set *s);
const qp_gguf_tensor *qp_gguf_set_tensor_at(const qp_gguf_set *s, int64_t i);
const qp_gguf_tensor *qp_gguf_set_find_tensor(const qp_gguf_set *s, const char *name);

/* Split file names: "dir/m.gguf", 0, 3 -> "dir/m-00001-of-00003.gguf". */
void qp_gguf_split_path(const char *out_path, int k, int n, char *buf, size_t size);
/* Recognise a split file name; fills the first file's name, k (0-based) and
 * n. Returns 0 when `path` is not named like a split file. */
int qp_gguf_split_parse(const char *path, char *first, size_t size, int *k, int *n);

#endif
