/* importance.c - importance matrix -> per-tensor, per-expert importance
 * vectors for the converter (see importance.h). */
#include "convert/importance.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/qp_ggml_types.h"
#include "format/gguf.h"
#include "format/imatrix.h"

/* llama-quantize stores these strings in 128-byte override slots. */
#define META_STR_MAX 127

struct qp_importance {
    char file[META_STR_MAX + 1];
    char dataset[META_STR_MAX + 1];
    int has_dataset;
    uint32_t entries, chunks;
    const qp_plan *plan; /* outlives this (the job frees it after) */
    int64_t n_plan;
    float **means;     /* per plan tensor: row_len * n_expert, or NULL */
    uint8_t **has;     /* per plan tensor and expert: rows were seen */
    float *ones;       /* uniform importances for experts without rows */
    int64_t *missing, n_missing;
    int64_t used, empty_experts;
};

/* Copy at most META_STR_MAX bytes, cutting at a UTF-8 character boundary. */
static void copy_trunc(char *dst, const char *src)
{
    size_t n = strlen(src);
    if (n > META_STR_MAX) {
        n = META_STR_MAX;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static int is_quantized(uint32_t t)
{
    return t != QP_GGML_F32 && t != QP_GGML_F16 && t != QP_GGML_BF16;
}

void qp_importance_free(qp_importance *imp)
{
    if (!imp)
        return;
    for (int64_t i = 0; i < imp->n_plan; i++) {
        if (imp->means)
            free(imp->means[i]);
        if (imp->has)
            free(imp->has[i]);
    }
    free(imp->means);
    free(imp->has);
    free(imp->ones);
    free(imp->missing);
    free(imp);
}

/* Means of entry k for plan tensor t (shapes already checked). */
static qp_status fill(qp_importance *imp, const qp_imatrix *m, int64_t k, int64_t i, const qp_plan_tensor *t,
                      const char *path, qp_err *err)
{
    int64_t row = t->row_len, nx = t->n_expert;
    imp->means[i] = malloc((size_t)(row * nx) * sizeof(float));
    imp->has[i] = calloc((size_t)nx, 1);
    if (!imp->means[i] || !imp->has[i])
        return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
    if (qp_imatrix_n_expert(m, k) == nx) {
        for (int64_t x = 0; x < nx; x++)
            imp->has[i][x] = (uint8_t)qp_imatrix_mean(m, k, x, imp->means[i] + x * row);
    } else {
        /* Legacy flat entry: one count for all experts' columns. */
        int h = qp_imatrix_mean(m, k, 0, imp->means[i]);
        memset(imp->has[i], h, (size_t)nx);
    }
    for (int64_t x = 0; x < nx; x++)
        imp->empty_experts += !imp->has[i][x];
    imp->used++;
    return QP_OK;
}

qp_status qp_importance_open(const char *path, const qp_plan *plan, const uint32_t *types, qp_importance **out,
                             qp_err *err)
{
    *out = NULL;
    qp_imatrix *m = NULL;
    qp_status s = qp_imatrix_read(path, &m, err);
    if (s != QP_OK)
        return s;
    int64_t n = qp_plan_count(plan), max_row = 1, n_quant = 0;
    qp_importance *imp = calloc(1, sizeof *imp);
    if (imp) {
        imp->plan = plan;
        imp->n_plan = n;
        imp->means = calloc((size_t)(n ? n : 1), sizeof *imp->means);
        imp->has = calloc((size_t)(n ? n : 1), sizeof *imp->has);
        imp->missing = calloc((size_t)(n ? n : 1), sizeof *imp->missing);
    }
    if (!imp || !imp->means || !imp->has || !imp->missing) {
        s = qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
        goto out;
    }
    /* Deterministic metadata: the base name, not the path as typed. */
    const char *slash = strrchr(path, '/');
    copy_trunc(imp->file, slash ? slash + 1 : path);
    if (qp_imatrix_dataset_count(m) > 0) {
        copy_trunc(imp->dataset, qp_imatrix_dataset(m, 0));
        imp->has_dataset = 1;
    }
    imp->entries = (uint32_t)qp_imatrix_count(m);
    imp->chunks = qp_imatrix_chunk_count(m);
    for (int64_t i = 0; i < n && s == QP_OK; i++) {
        const qp_plan_tensor *t = qp_plan_at(plan, i);
        if (!is_quantized(types[i]))
            continue;
        n_quant++;
        if (t->row_len > max_row)
            max_row = t->row_len;
        int64_t k = qp_imatrix_find(m, t->name);
        if (k < 0) {
            imp->missing[imp->n_missing++] = i;
            continue;
        }
        int64_t cols = qp_imatrix_n_in(m, k), nx = qp_imatrix_n_expert(m, k);
        int fits = (cols == t->row_len && nx == t->n_expert) ||
                   (nx == 1 && t->n_expert > 1 && cols == t->row_len * t->n_expert);
        if (!fits) {
            if (t->role == QP_ROLE_TOKEN_EMBD) { /* llama-quantize only warns for this one */
                imp->missing[imp->n_missing++] = i;
                continue;
            }
            s = qp_err_set(err, QP_ERR_BAD_INPUT, path, "importance data has %lld columns x %lld experts but the "
                           "tensor has rows of %lld x %lld experts (a matrix for another model?)",
                           (long long)cols, (long long)nx, (long long)t->row_len, (long long)t->n_expert);
            qp_err_set_tensor(err, t->name);
            break;
        }
        s = fill(imp, m, k, i, t, path, err);
    }
    if (s == QP_OK && n_quant > 0 && imp->used == 0)
        s = qp_err_set(err, QP_ERR_BAD_INPUT, path, "no entry of the importance matrix matches a quantized tensor "
                       "of this model (a matrix for another model?)");
    if (s == QP_OK && !(imp->ones = malloc((size_t)max_row * sizeof(float))))
        s = qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
    if (s == QP_OK)
        for (int64_t j = 0; j < max_row; j++)
            imp->ones[j] = 1.0f;
out:
    qp_imatrix_free(m);
    if (s != QP_OK) {
        qp_importance_free(imp);
        return s;
    }
    *out = imp;
    return QP_OK;
}

const float *qp_importance_get(void *ctx, const qp_plan *plan, int64_t i, int64_t expert)
{
    const qp_importance *imp = ctx;
    if (!imp || i < 0 || i >= imp->n_plan || !imp->means[i])
        return NULL;
    const qp_plan_tensor *t = qp_plan_at(plan, i);
    if (expert < 0 || expert >= t->n_expert)
        return NULL;
    /* An expert the calibration never reached: uniform weights, which is
     * what llama-quantize substitutes (it is not the same as none). */
    if (!imp->has[i][expert])
        return imp->ones;
    return imp->means[i] + expert * t->row_len;
}

qp_status qp_importance_write_meta(void *ctx, void *gguf_writer, qp_err *err)
{
    const qp_importance *imp = ctx;
    qp_gguf_writer *w = gguf_writer;
    qp_status s = qp_gguf_set_str(w, "quantize.imatrix.file", imp->file);
    if (s == QP_OK && imp->has_dataset)
        s = qp_gguf_set_str(w, "quantize.imatrix.dataset", imp->dataset);
    if (s == QP_OK)
        s = qp_gguf_set_u32(w, "quantize.imatrix.entries_count", imp->entries);
    if (s == QP_OK && imp->chunks > 0)
        s = qp_gguf_set_u32(w, "quantize.imatrix.chunks_count", imp->chunks);
    if (s != QP_OK)
        return qp_err_set(err, s, NULL, "cannot record the importance matrix keys");
    return QP_OK;
}

int64_t qp_importance_missing_count(const qp_importance *imp) { return imp ? imp->n_missing : 0; }
int64_t qp_importance_used_count(const qp_importance *imp) { return imp ? imp->used : 0; }
int64_t qp_importance_empty_experts(const qp_importance *imp) { return imp ? imp->empty_experts : 0; }

const char *qp_importance_missing(const qp_importance *imp, int64_t k)
{
    return qp_plan_at(imp->plan, imp->missing[k])->name;
}
