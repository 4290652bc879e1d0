/* against.h - compare every tensor of a quantized GGUF (or split set) with
 * the Hugging Face checkpoint it was made from.
 *
 * The checkpoint is read through the conversion plan (convert/plan.h), so
 * both sides use the same GGUF names, shapes and row order. A tensor in the
 * source but not in the file is "missing", one in the file but not in the
 * source is "extra", one whose shape differs is "shape": all three are
 * errors for the caller to report. Every matching tensor is dequantized row
 * by row and compared (verify/tensor_error.h); a dequantized NaN/Inf marks
 * it "nonfinite", a type without a dequantizer "unsupported". */
#ifndef QP_VERIFY_AGAINST_H
#define QP_VERIFY_AGAINST_H

#include <stdint.h>

#include "common/qp_error.h"
#include "common/qp_progress.h"
#include "convert/plan.h"
#include "verify/fileset.h"
#include "verify/tensor_error.h"

typedef enum {
    QP_VT_OK = 0,
    QP_VT_MISSING,     /* in the source, not in the file */
    QP_VT_EXTRA,       /* in the file, not in the source */
    QP_VT_SHAPE,       /* shapes differ */
    QP_VT_NONFINITE,   /* dequantized or source values include NaN/Inf */
    QP_VT_UNSUPPORTED, /* the file's type has no dequantizer here */
} qp_vt_status;

const char *qp_vt_status_name(qp_vt_status s); /* "ok", "missing", ... */

typedef struct {
    char name[128];
    char component[16];     /* Omni set member ("thinker", "talker", ...); "" otherwise */
    qp_vt_status status;
    char note[200];         /* why, for a non-ok status */
    int layer;              /* blk.N -> N; -1 for other tensors */
    char kind[64];          /* "attn_q", "ffn_down_exps", "token_embd", "output_norm" ... */
    uint32_t type;          /* the file's ggml type (UINT32_MAX when missing) */
    uint32_t n_dims;
    int64_t ne[4];          /* the file's shape, or the source's when missing */
    int64_t n_elements;
    uint64_t bytes;         /* in the file */
    int64_t n_expert;       /* stacked experts; 1 otherwise */
    int compared;           /* err is valid (ok or nonfinite) */
    qp_terr err;
    qp_terr *expert_err;    /* n_expert entries when n_expert > 1 and compared */
    int has_importance;     /* some rows were weighted by the importance matrix */
} qp_verify_tensor;

typedef struct {
    qp_verify_tensor *t;
    int64_t n;
    int64_t n_compared, n_missing, n_extra, n_bad; /* bad: shape, nonfinite, unsupported */
    qp_terr total;          /* every compared element together */
    qp_terr_acc total_acc;  /* its sums (to merge results) */
    int64_t n_params;       /* elements in the file */
    uint64_t tensor_bytes;  /* tensor bytes in the file */
} qp_verify_result;

/* Fill out[row_len] with the importance of each column of `name`'s rows
 * that belong to `expert` (0 for an ordinary matrix); return 1, or 0 when
 * there is none for it (those rows then carry no weight). */
typedef int (*qp_verify_imp_fn)(void *ctx, const char *name, int64_t expert, int64_t n_expert,
                                int64_t row_len, float *out);

typedef struct {
    const qp_fileset *model;
    int select_file;               /* 0: the whole set; 1: only file `file_index` of it */
    int file_index;
    const char *component;         /* recorded in each result tensor (may be NULL) */
    const qp_plan *source;
    qp_verify_imp_fn importance;   /* NULL: no weighted error */
    void *importance_ctx;
    int n_threads;
    qp_progress progress;          /* elements compared / total; cancel flag */
} qp_verify_job;

/* Compare. Returns QP_OK when the comparison ran (the result then lists any
 * missing, extra or bad tensors); an error only when it could not run
 * (source read failure, out of memory, interrupted). Order of out->t: the
 * file's tensors in file order, then the missing ones in source order. */
qp_status qp_verify_against(const qp_verify_job *job, qp_verify_result *out, qp_err *err);
void qp_verify_result_free(qp_verify_result *r); /* accepts NULL; frees contents */

/* Move src's tensors to the end of dst and add up the counts and sums (to
 * report the members of an Omni set together); src is left empty. */
qp_status qp_verify_result_append(qp_verify_result *dst, qp_verify_result *src, qp_err *err);

/* Split a GGUF tensor name into layer and kind ("blk.3.attn_q.weight" ->
 * 3, "attn_q"; "token_embd.weight" -> -1, "token_embd"). */
void qp_verify_name_split(const char *name, int *layer, char *kind, size_t kind_size);

#endif
