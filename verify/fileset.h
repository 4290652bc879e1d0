/* fileset.h - a model stored as one GGUF file or as a llama.cpp split set,
 * opened and checked as a whole.
 *
 * Split sets (llama.cpp gguf-split) are files named
 * "<prefix>-00001-of-00003.gguf" ... each a complete GGUF holding some of the
 * tensors, with keys split.no (0-based), split.count and split.tensors.count
 * (the tensors of the whole set). Opening any shard opens all of them
 * through format/gguf_set.h, which checks the set is complete: every shard
 * exists and parses, split.no and split.count match the names, no tensor
 * name appears twice, the shards' tensors add up to split.tensors.count.
 * A missing shard is QP_ERR_BAD_INPUT naming it, as are split keys on a file
 * not named like a shard.
 *
 * Omni sets (convert/omni.h) are the three files one Qwen3-Omni checkpoint
 * becomes (STEM.gguf, mmproj-STEM.gguf, talker-STEM.gguf), each carrying the
 * manifest keys qpack.omni.files / .components (the set, in order),
 * qpack.omni.component (its own role), qpack.omni.source_tensor_count and
 * qpack.omni.source_tensors_here, and qpack.omni.tensor_sources (one entry
 * per tensor). Opening any member opens all; the set is complete when every
 * member exists next to it, parses, carries the same manifest, has the role
 * the manifest gives its name, one source entry per tensor, and the source
 * tensors of the members add up to the source's count. The members are
 * separate models, so the same tensor name may occur in several of them.
 *
 * Tensors of the set are numbered shard by shard (member by member) in file
 * order. */
#ifndef QP_VERIFY_FILESET_H
#define QP_VERIFY_FILESET_H

#include <stdint.h>

#include "common/qp_error.h"
#include "format/gguf.h"

typedef enum {
    QP_FILESET_SINGLE = 0,
    QP_FILESET_SPLIT = 1,
    QP_FILESET_OMNI = 2,
} qp_fileset_kind;

typedef struct qp_fileset qp_fileset;

qp_status qp_fileset_open(const char *path, qp_fileset **out, qp_err *err);
/* Just this file, as a set of one, whatever split or Omni keys it has (to
 * check one shard of a set that is still being written). */
qp_status qp_fileset_open_file(const char *path, qp_fileset **out, qp_err *err);
void qp_fileset_close(qp_fileset *s); /* accepts NULL */

qp_fileset_kind qp_fileset_kind_of(const qp_fileset *s);
int qp_fileset_file_count(const qp_fileset *s);
const qp_gguf *qp_fileset_file(const qp_fileset *s, int i); /* shard i (split.no order) */
const char *qp_fileset_path(const qp_fileset *s, int i);
/* The file holding the model's key/values (the first shard or member). */
const qp_gguf *qp_fileset_meta(const qp_fileset *s);
/* Omni sets: member i's role ("thinker", "mmproj", "talker"); "" otherwise. */
const char *qp_fileset_role(const qp_fileset *s, int i);
/* Tensors of file i alone: set indices [first, first + count). */
int64_t qp_fileset_file_first(const qp_fileset *s, int i);
int64_t qp_fileset_file_tensors(const qp_fileset *s, int i);

int64_t qp_fileset_tensor_count(const qp_fileset *s);
const qp_gguf_tensor *qp_fileset_tensor_at(const qp_fileset *s, int64_t i, int *file);
/* By name across the set (the first file holding it); NULL if absent.
 * `file` (may be NULL) gets the shard. */
const qp_gguf_tensor *qp_fileset_find(const qp_fileset *s, const char *name, int *file);
uint64_t qp_fileset_bytes(const qp_fileset *s); /* sum of file sizes */

/* Per-shard checksum verification (qpack.tensor_xxh3). `n_checked` gets the
 * number of shards that carried checksums (all matched on QP_OK); shards
 * without checksums are skipped. A mismatch is QP_ERR_BAD_INPUT. */
qp_status qp_fileset_verify_checksums(const qp_fileset *s, int *n_checked, qp_err *err);

#endif
