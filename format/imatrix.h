/* imatrix.h - importance matrices: llama.cpp's GGUF and legacy .dat files,
 * and the accumulator a calibration pass feeds.
 *
 * An importance matrix holds, for each weight matrix W (by its GGUF name,
 * e.g. "blk.0.ffn_down.weight"), the sum over calibration tokens of x_j^2
 * for every input column j of the activations x that multiplied W, and the
 * number of tokens summed ("count"). Stacked expert tensors keep one sum
 * vector and one count per expert. The importance of column j is the mean
 * in_sum2[j] / count; quantizers minimise the error weighted by it.
 *
 * GGUF format (llama-imatrix, the default since 2025): general.type =
 * "imatrix", imatrix.datasets (ARRAY[STRING]), imatrix.chunk_count (UINT32),
 * imatrix.chunk_size (UINT32); per entry two F32 tensors "<name>.in_sum2"
 * ne = [n_in] (or [n_in, n_expert]) and "<name>.counts" ne = [1] (or
 * [1, n_expert]); newer files may add "<name>.in_sum" (same shape as
 * in_sum2), which is validated and dropped. Other tensors are ignored.
 *
 * Legacy .dat format: see docs/imatrix.md. It stores per entry the mean
 * times ncall (a chunk count) and no per-expert counts; reading it assumes
 * llama-imatrix's default chunk size 512, as llama-imatrix itself does.
 *
 * Everything read is validated (shapes, lengths, finite non-negative sums
 * and counts); errors name the file and the entry. The library never prints.
 *
 * Thread safety: a qp_imatrix is not locked. qp_imatrix_accumulate() may
 * run concurrently for *different* (entry, expert) pairs (they touch
 * disjoint memory); everything else (add, merge, metadata setters) needs
 * exclusive access. For many threads feeding the same entry, give each
 * thread its own matrix and qp_imatrix_merge() them in a fixed order at the
 * end: the result is then independent of scheduling. */
#ifndef QP_IMATRIX_H
#define QP_IMATRIX_H

#include <stddef.h>
#include <stdint.h>

#include "common/qp_error.h"

/* Chunk size assumed for legacy .dat files (llama-imatrix's default -c). */
#define QP_IMATRIX_LEGACY_CHUNK_SIZE 512
/* llama.cpp keeps tensor names in 64-byte buffers: "<name>.in_sum2" must fit. */
#define QP_IMATRIX_MAX_NAME 55

typedef enum {
    QP_IMATRIX_FORMAT_NONE = 0,   /* built in memory */
    QP_IMATRIX_FORMAT_GGUF = 1,
    QP_IMATRIX_FORMAT_LEGACY = 2, /* .dat */
} qp_imatrix_format;

typedef struct qp_imatrix qp_imatrix;

/* ---------------------------------------------------------------- lifetime */

qp_imatrix *qp_imatrix_new(void);   /* NULL on allocation failure */
void qp_imatrix_free(qp_imatrix *m); /* accepts NULL */

/* Read a GGUF (recognised by its magic) or legacy .dat file. */
qp_status qp_imatrix_read(const char *path, qp_imatrix **out, qp_err *err);
/* Same from bytes in memory (tests, fuzzing); `buf` may be freed after. */
qp_status qp_imatrix_read_memory(const void *buf, size_t size, const char *name_for_errors, qp_imatrix **out,
                                 qp_err *err);

/* Write llama.cpp's GGUF format (same keys, names, shapes and types as
 * llama-imatrix; entries sorted by name; no qpack checksum key), through a
 * temp file renamed at the end. */
qp_status qp_imatrix_write(const qp_imatrix *m, const char *path, qp_err *err);
/* Write the legacy .dat format (entries without any data are skipped, as
 * llama-imatrix does; see docs/imatrix.md for what is lost). */
qp_status qp_imatrix_write_legacy(const qp_imatrix *m, const char *path, qp_err *err);

/* ---------------------------------------------------------------- entries */

int64_t qp_imatrix_count(const qp_imatrix *m);
int64_t qp_imatrix_find(const qp_imatrix *m, const char *name); /* -1 if absent */
const char *qp_imatrix_name(const qp_imatrix *m, int64_t entry);
int64_t qp_imatrix_n_in(const qp_imatrix *m, int64_t entry);
int64_t qp_imatrix_n_expert(const qp_imatrix *m, int64_t entry);
/* Sums of squares, n_in floats per expert, expert-major (n_in * n_expert). */
const float *qp_imatrix_sums(const qp_imatrix *m, int64_t entry);
/* Rows (tokens) summed for one expert. */
double qp_imatrix_rows(const qp_imatrix *m, int64_t entry, int64_t expert);
/* Mean of squares in_sum2 / count for one expert into out[n_in]. Returns 1,
 * or 0 (out untouched) when that expert saw no rows. */
int qp_imatrix_mean(const qp_imatrix *m, int64_t entry, int64_t expert, float *out);

/* ---------------------------------------------------------------- metadata */

qp_imatrix_format qp_imatrix_source_format(const qp_imatrix *m);
uint32_t qp_imatrix_chunk_count(const qp_imatrix *m); /* chunks computed on */
uint32_t qp_imatrix_chunk_size(const qp_imatrix *m);  /* tokens per chunk, 0 if unknown */
void qp_imatrix_set_chunks(qp_imatrix *m, uint32_t chunk_count, uint32_t chunk_size);
int64_t qp_imatrix_dataset_count(const qp_imatrix *m);
const char *qp_imatrix_dataset(const qp_imatrix *m, int64_t k);
qp_status qp_imatrix_add_dataset(qp_imatrix *m, const char *name, qp_err *err);

/* ---------------------------------------------------------------- accumulating */

/* Declare an entry with zero sums and counts: n_in columns, n_expert >= 1
 * (1 for a dense matrix). Returns the entry index; an existing entry of the
 * same shape is returned as is; -1 with err set on a shape clash, a bad or
 * too long name, or allocation failure. Not thread-safe. */
int64_t qp_imatrix_add(qp_imatrix *m, const char *name, int64_t n_in, int64_t n_expert, qp_err *err);

/* Add n_rows activation rows x (row-major, n_rows x n_in floats: the inputs
 * that multiplied this entry's weight, for tokens routed to `expert`) into
 * the entry: in_sum2[expert][j] += sum_r x[r][j]^2 (summed in double per
 * call), count[expert] += n_rows. A non-finite x is QP_ERR_BAD_INPUT and
 * changes nothing. Safe concurrently for distinct (entry, expert). */
qp_status qp_imatrix_accumulate(qp_imatrix *m, int64_t entry, int64_t expert, const float *x, int64_t n_rows,
                                qp_err *err);

/* dst += src: entry by entry, per expert, sums and counts add (so each
 * expert's mean becomes the count-weighted mean of the two). Entries only in
 * src are copied; shapes of common entries must agree (checked before
 * anything changes). Datasets are appended; chunk counts add when the chunk
 * sizes agree, else the count is recomputed from the largest row count as
 * llama-imatrix does. */
qp_status qp_imatrix_merge(qp_imatrix *dst, const qp_imatrix *src, qp_err *err);

#endif
