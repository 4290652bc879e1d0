/* report_data.h - everything `qpack report` can show, gathered from any of
 * its inputs: a quantized file (types, sizes, bits per weight), the result
 * of comparing it with its source (per-tensor error), an importance matrix
 * (tokens routed to each expert) and `qpack ppl --base --json` results.
 * Each part is optional; the HTML writer (report_html.h) shows what is
 * there and says what is missing. */
#ifndef QP_VERIFY_REPORT_DATA_H
#define QP_VERIFY_REPORT_DATA_H

#include <stdint.h>

#include "common/qp_error.h"
#include "format/imatrix.h"
#include "verify/against.h"
#include "verify/fileset.h"

typedef struct {
    char name[128];
    int layer;             /* -1 outside the blocks */
    char kind[64];         /* "attn_q", "ffn_down_exps", "token_embd" ... */
    uint32_t type;         /* ggml type; UINT32_MAX when missing from the file */
    int64_t n_elements;
    uint64_t bytes;
    int has_err;           /* err valid */
    qp_terr err;
    const char *status;    /* "ok" or the verify status name */
} qp_report_tensor;

typedef struct {
    double value, stderr_;
} qp_report_est;

/* One `qpack ppl --json` result. Absent figures are NAN. */
typedef struct {
    char path[512];         /* the JSON file */
    char model[512];
    char base[512];         /* "" without a base */
    int64_t n_ctx, chunks, tokens;
    qp_report_est ppl, ppl_base, ppl_ratio, ppl_diff, kld, same_top1, dp_rms;
    double kld_p99, kld_max;
} qp_report_ppl;

typedef struct {
    /* inputs, as given ("" when absent) */
    char model_path[1024], source_path[1024], imatrix_path[1024];

    /* model: tensors in file order (then missing ones, with an error run) */
    int has_model;
    char arch[64], model_name[256];
    int n_files;
    uint64_t file_bytes;
    qp_report_tensor *t;
    int64_t n_t;
    int n_layers;          /* 1 + the largest layer index seen */

    /* error against the source */
    int has_errors, has_weighted;
    qp_terr total_err;
    int64_t n_missing, n_extra, n_bad;

    /* expert routing from the importance matrix: counts[layer * n_expert + e],
     * NAN where the matrix has no entry for that layer */
    int has_routing;
    int64_t route_layers, route_experts;
    double *route_counts;
    char route_entry[64];  /* which entry kind the counts come from */
    int64_t imatrix_chunks, imatrix_chunk_size, imatrix_entries;
    double under_share;    /* under-covered: count < under_share * layer mean */

    /* perplexity results */
    qp_report_ppl *ppl;
    int n_ppl;
} qp_report_data;

void qp_report_init(qp_report_data *r);
void qp_report_free(qp_report_data *r); /* accepts NULL; frees contents */

/* Tensors, types and sizes of a quantized file or set (of an Omni set, its
 * thinker: the members are separate models). */
qp_status qp_report_set_model(qp_report_data *r, const qp_fileset *set, const char *path, qp_err *err);
/* Per-tensor error from verify (replaces the tensor list: the result also
 * names missing tensors). `source` is the path compared with. Tensors of
 * Omni members other than the thinker are left out; the whole-model figure
 * is the result's total, so give a result of the thinker alone. */
qp_status qp_report_set_errors(qp_report_data *r, const qp_verify_result *v, const char *source, qp_err *err);
/* Tokens per expert per layer: the counts of the stacked expert entries
 * (ffn_gate_exps, else ffn_up_exps, else ffn_down_exps) of each layer. A
 * matrix without expert entries gives has_routing = 0 and QP_OK. */
qp_status qp_report_set_imatrix(qp_report_data *r, const qp_imatrix *m, const char *path, qp_err *err);
/* Parse one `qpack ppl --json` file and append it. */
qp_status qp_report_add_ppl_json(qp_report_data *r, const char *path, qp_err *err);
/* Same from text in memory (tests). */
qp_status qp_report_add_ppl_text(qp_report_data *r, const char *json, size_t len, const char *path, qp_err *err);

/* Routing class of one count: 0 covered, 1 under-covered, 2 never routed. */
int qp_report_route_class(const qp_report_data *r, int64_t layer, int64_t expert);

#endif
