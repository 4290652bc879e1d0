/* imatrix_impl.h - (internal to format/) the importance matrix's storage,
 * shared by imatrix.c (entries, accumulation, merge), imatrix_gguf.c and
 * imatrix_dat.c (the two file formats). */
#ifndef QP_IMATRIX_IMPL_H
#define QP_IMATRIX_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "format/imatrix.h"

typedef struct {
    char *name;
    int64_t n_in, n_expert;
    float *sums;     /* n_expert * n_in, expert-major (as llama.cpp stores them) */
    double *counts;  /* n_expert; double so accumulated counts stay exact past 2^24 */
} qp_imx_entry;

struct qp_imatrix {
    qp_imx_entry *e;
    int64_t n, cap;
    int64_t *slots;  /* open-addressing name index: entry + 1, 0 = empty */
    int64_t n_slots; /* a power of two, > 2 * n */
    char **datasets;
    int64_t n_ds, cap_ds;
    uint32_t chunk_count, chunk_size;
    qp_imatrix_format format;
};

/* Check an entry name (1..QP_IMATRIX_MAX_NAME bytes, no control bytes);
 * 0 when acceptable, else fills err (path = `where`). */
qp_status qp_imx_check_name(const char *name, size_t len, const char *where, qp_err *err);

/* Append a zeroed entry (name of `len` bytes, not NUL-terminated); no
 * duplicate check. Returns the index or -1 (err set). */
int64_t qp_imx_append(qp_imatrix *m, const char *name, size_t len, int64_t n_in, int64_t n_expert,
                      const char *where, qp_err *err);
int64_t qp_imx_findn(const qp_imatrix *m, const char *name, size_t len);
qp_status qp_imx_add_dataset_n(qp_imatrix *m, const char *s, size_t len, const char *where, qp_err *err);

/* Entry indices sorted by name (strcmp), as llama-imatrix writes them;
 * malloc'ed (NULL on failure, or for an empty matrix). */
int64_t *qp_imx_sorted(const qp_imatrix *m);

/* Every sum finite and >= 0 and every count finite, >= 0 and <= FLT_MAX
 * (what the writers can store); else err names the entry. */
qp_status qp_imx_check_entry(const qp_imatrix *m, int64_t i, const char *path, qp_err *err);

qp_status qp_imx_read_gguf_memory(const void *buf, size_t size, const char *name, qp_imatrix **out, qp_err *err);
qp_status qp_imx_read_gguf_file(const char *path, qp_imatrix **out, qp_err *err);
qp_status qp_imx_read_dat(const uint8_t *buf, size_t size, const char *name, qp_imatrix **out, qp_err *err);

#endif
