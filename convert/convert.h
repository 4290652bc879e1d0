/* convert.h - one streaming pass from a HF checkpoint to a GGUF file.
 *
 * Tensors are produced in plan order; each is cut into batches of rows that
 * the threads read (pread), convert or quantize, and write (pwrite) at their
 * final offsets, so memory is a few batches per thread whatever the model
 * size, and the output bytes do not depend on the thread count. */
#ifndef QP_CONVERT_H
#define QP_CONVERT_H

#include <stdint.h>

#include "common/qp_error.h"
#include "common/qp_progress.h"
#include "convert/plan.h"
#include "quant/gptq.h"

/* Chooses the ggml type of plan tensor i (called once per tensor, before
 * anything is written). */
typedef uint32_t (*qp_type_chooser)(void *ctx, const qp_plan *plan, int64_t i);

/* Importance weights (row_len floats) for the rows of plan tensor i that
 * belong to `expert` (0 for non-expert tensors), or NULL for none. */
typedef const float *(*qp_importance_fn)(void *ctx, const qp_plan *plan, int64_t i, int64_t expert);

typedef struct {
    const char *out_path;
    uint32_t file_type;            /* general.file_type */
    const char *recipe;            /* recorded as qpack.recipe */
    qp_type_chooser choose_type;   /* NULL: every tensor keeps_f32 ? F32 : default_type */
    void *choose_ctx;
    uint32_t default_type;         /* used when choose_type is NULL */
    qp_importance_fn importance;   /* NULL: plain quantization */
    void *importance_ctx;
    /* Error-feedback quantization (quant/gptq.h): H (row_len^2 doubles)
     * for the rows of plan tensor i that belong to `expert`, or NULL (then
     * the importance quantization above). NULL hook: never. */
    const double *(*covariance)(void *ctx, const qp_plan *plan, int64_t i, int64_t expert);
    void *covariance_ctx;
    qp_gptq_options gptq;          /* n_threads is ignored (batches run in parallel) */
    int n_threads;                 /* <= 0: 1 */
    qp_progress progress;          /* unit: bytes of source read */
    /* Split output in llama.cpp's gguf-split conventions (0: no limit; with
     * neither limit set, one file at out_path). Files are named
     * STEM-00001-of-0000K.gguf after out_path. */
    uint64_t split_max_bytes;
    int64_t split_max_tensors;
    /* Distributed runs: write only the files of shard shard_index (1-based)
     * of shard_count (0: all files). */
    int shard_index, shard_count;
    /* Keep final-named files that are complete and verified; redo the rest. */
    int resume;
    /* Extra key/values added after the model and tokenizer keys. */
    qp_status (*extra_meta)(void *ctx, void *gguf_writer, qp_err *err);
    void *extra_meta_ctx;
    /* Files that are not a llama.cpp text model (convert/omni's mmproj and
     * talker files): no <arch>.* or tokenizer keys; extra_meta writes all. */
    int custom_meta;
} qp_convert_options;

typedef struct {
    int64_t n_tensors;      /* tensors written by this process */
    int n_files;            /* files in the whole set */
    int files_written, files_kept; /* by this process; kept = --resume found them complete */
    uint64_t bytes_in;      /* source bytes read */
    uint64_t bytes_out;     /* size of the files written */
    double seconds;
} qp_convert_stats;

/* The type convert would choose for each plan tensor under `opt`. */
uint32_t qp_convert_type_of(const qp_convert_options *opt, const qp_plan *plan, int64_t i);

/* What a single-file output adds to its tensor bytes at most: the header
 * (key/values, tensor infos, checksums) with the types `opt` chooses now
 * (only tensor bytes depend on them) plus alignment-1 padding per tensor. */
qp_status qp_convert_overhead(const qp_plan *plan, const char *hf_dir, const qp_convert_options *opt, uint64_t *out,
                              qp_err *err);

qp_status qp_convert_run(const char *hf_dir, const qp_convert_options *opt, qp_convert_stats *stats, qp_err *err);

/* Same, for an already opened checkpoint and plan (the runtime and tests use
 * this to avoid reopening). */
qp_status qp_convert_plan(const qp_plan *plan, const char *hf_dir, const qp_convert_options *opt,
                          qp_convert_stats *stats, qp_err *err);

#endif
