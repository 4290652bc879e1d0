/* fileset.h - a model stored as one GGUF file or as a llama.cpp split set,
 * opened and checked as a whole.
 *
 * Split sets (llama.cpp gguf-split) are files named
 * "<prefix>-00001-of-00003.gguf" ... each a complete GGUF holding some of the
 * tensors, with keys split.no (0-based), split.count and, in every shard,
 * split.tensors.count (the tensors of the whole set). Opening any shard
 * opens all of them; the set is complete when every shard exists, parses,
 * has the right split.no and split.count, no tensor name appears twice and
 * the shards' tensors add up to split.tensors.count. Anything else is
 * QP_ERR_BAD_INPUT naming the shard and the problem.
 *
 * Tensors of the set are numbered shard by shard in file order. */
#ifndef QP_VERIFY_FILESET_H
#define QP_VERIFY_FILESET_H

#include <stdint.h>

#include "common/qp_error.h"
#include "format/gguf.h"

typedef enum {
    QP_FILESET_SINGLE = 0,
    QP_FILESET_SPLIT = 1,
} qp_fileset_kind;

typedef struct qp_fileset qp_fileset;

qp_status qp_fileset_open(const char *path, qp_fileset **out, qp_err *err);
void qp_fileset_close(qp_fileset *s); /* accepts NULL */

qp_fileset_kind qp_fileset_kind_of(const qp_fileset *s);
int qp_fileset_file_count(const qp_fileset *s);
const qp_gguf *qp_fileset_file(const qp_fileset *s, int i); /* shard i (split.no order) */
const char *qp_fileset_path(const qp_fileset *s, int i);
/* The file holding the model's key/values (the first shard). */
const qp_gguf *qp_fileset_meta(const qp_fileset *s);

int64_t qp_fileset_tensor_count(const qp_fileset *s);
const qp_gguf_tensor *qp_fileset_tensor_at(const qp_fileset *s, int64_t i, int *file);
/* By name across the set; NULL if absent. `file` (may be NULL) gets the shard. */
const qp_gguf_tensor *qp_fileset_find(const qp_fileset *s, const char *name, int *file);
uint64_t qp_fileset_bytes(const qp_fileset *s); /* sum of file sizes */

/* Per-shard checksum verification (qpack.tensor_xxh3). `n_checked` gets the
 * number of shards that carried checksums (all matched on QP_OK); shards
 * without checksums are skipped. A mismatch is QP_ERR_BAD_INPUT. */
qp_status qp_fileset_verify_checksums(const qp_fileset *s, int *n_checked, qp_err *err);

/* Parse "<prefix>-NNNNN-of-MMMMM.gguf": 1 and the 1-based index and count,
 * or 0 when `path` is not named like a shard. `prefix_len` gets the length
 * of everything before "-NNNNN". */
int qp_fileset_parse_split_name(const char *path, int *index1, int *count, size_t *prefix_len);

#endif
