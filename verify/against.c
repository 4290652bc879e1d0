/* against.c - every tensor of a quantized file against its source. */
#include "verify/against.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/qp_ggml_types.h"

const char *qp_vt_status_name(qp_vt_status s)
{
    switch (s) {
    case QP_VT_OK: return "ok";
    case QP_VT_MISSING: return "missing";
    case QP_VT_EXTRA: return "extra";
    case QP_VT_SHAPE: return "shape";
    case QP_VT_NONFINITE: return "nonfinite";
    case QP_VT_UNSUPPORTED: return "unsupported";
    }
    return "?";
}

void qp_verify_name_split(const char *name, int *layer, char *kind, size_t kind_size)
{
    int l = -1, used = 0;
    const char *rest = name;
    if (sscanf(name, "blk.%d.%n", &l, &used) == 1 && used > 0 && l >= 0)
        rest = name + used;
    else
        l = -1;
    size_t n = strlen(rest);
    if (n > 7 && strcmp(rest + n - 7, ".weight") == 0)
        n -= 7;
    if (kind_size) {
        if (n >= kind_size)
            n = kind_size - 1;
        memcpy(kind, rest, n);
        kind[n] = '\0';
    }
    *layer = l;
}

void qp_verify_result_free(qp_verify_result *r)
{
    if (!r)
        return;
    for (int64_t i = 0; i < r->n; i++)
        free(r->t[i].expert_err);
    free(r->t);
    memset(r, 0, sizeof *r);
}

typedef struct {
    const qp_plan *plan;
    int64_t index;
} rows_ctx;

static qp_status plan_rows(void *ctx, int64_t row0, int64_t n, float *dst, qp_err *err)
{
    const rows_ctx *c = ctx;
    return qp_plan_read_rows(c->plan, c->index, row0, n, dst, err);
}

static int same_shape(const qp_gguf_tensor *g, const qp_plan_tensor *p)
{
    for (int d = 0; d < 4; d++) {
        int64_t a = d < (int)g->n_dims ? g->ne[d] : 1;
        int64_t b = d < (int)p->n_dims ? p->ne[d] : 1;
        if (a != b)
            return 0;
    }
    return 1;
}

static void shape_text(char *buf, size_t n, uint32_t dims, const int64_t *ne)
{
    size_t o = (size_t)snprintf(buf, n, "[");
    for (uint32_t d = 0; d < dims && o < n; d++)
        o += (size_t)snprintf(buf + o, n - o, "%s%lld", d ? ", " : "", (long long)ne[d]);
    if (o < n)
        snprintf(buf + o, n - o, "]");
}

/* Importance vectors of every expert of one tensor; NULL entries for none. */
static qp_status load_importance(const qp_verify_job *job, qp_verify_tensor *vt, int64_t row_len,
                                 float **buf, const float ***ptrs, qp_err *err)
{
    *buf = NULL;
    *ptrs = NULL;
    if (!job->importance)
        return QP_OK;
    int64_t ne = vt->n_expert;
    float *b = malloc((size_t)(ne * row_len) * sizeof *b);
    const float **p = calloc((size_t)ne, sizeof *p);
    if (!b || !p) {
        free(b);
        free(p);
        return qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory for importance vectors");
    }
    int any = 0;
    for (int64_t e = 0; e < ne; e++)
        if (job->importance(job->importance_ctx, vt->name, e, ne, row_len, b + e * row_len)) {
            p[e] = b + e * row_len;
            any = 1;
        }
    if (!any) {
        free(b);
        free(p);
        return QP_OK;
    }
    *buf = b;
    *ptrs = p;
    return QP_OK;
}

static qp_status compare_one(const qp_verify_job *job, const qp_gguf_tensor *gt, int64_t pi,
                             qp_verify_tensor *vt, qp_terr_acc *acc, qp_err *err)
{
    const qp_plan_tensor *pt = qp_plan_at(job->source, pi);
    float *imp_buf;
    const float **imp;
    qp_status s = load_importance(job, vt, pt->row_len, &imp_buf, &imp, err);
    if (s != QP_OK)
        return s;
    if (vt->n_expert > 1) {
        vt->expert_err = calloc((size_t)vt->n_expert, sizeof *vt->expert_err);
        if (!vt->expert_err) {
            free(imp_buf);
            free(imp);
            return qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory");
        }
    }
    rows_ctx rc = {job->source, pi};
    qp_terr_job tj = {
        .name = vt->name, .qdata = gt->data, .qbytes = gt->nbytes, .qtype = gt->type,
        .row_len = pt->row_len, .n_rows = pt->n_rows, .n_groups = vt->n_expert,
        .source = plan_rows, .source_ctx = &rc, .imp = imp, .n_threads = job->n_threads,
        .progress = &job->progress, .acc_out = acc,
    };
    s = qp_terr_compute(&tj, &vt->err, vt->expert_err, err);
    free(imp_buf);
    free(imp);
    qp_plan_release(job->source, pi);
    if (s == QP_ERR_UNSUPPORTED) {
        vt->status = QP_VT_UNSUPPORTED;
        snprintf(vt->note, sizeof vt->note, "no dequantizer for type %s", qp_ggml_type_name(gt->type));
        free(vt->expert_err);
        vt->expert_err = NULL;
        qp_err_clear(err);
        return QP_OK;
    }
    if (s != QP_OK)
        return s;
    vt->compared = 1;
    vt->has_importance = vt->err.has_weighted;
    if (vt->err.nonfinite > 0) {
        vt->status = QP_VT_NONFINITE;
        snprintf(vt->note, sizeof vt->note, "%lld values are NaN or infinite", (long long)vt->err.nonfinite);
    }
    return QP_OK;
}

static void fill_from_file(qp_verify_tensor *vt, const qp_gguf_tensor *gt)
{
    size_t n = gt->name.len < sizeof vt->name ? gt->name.len : sizeof vt->name - 1;
    memcpy(vt->name, gt->name.ptr, n);
    vt->name[n] = '\0';
    qp_verify_name_split(vt->name, &vt->layer, vt->kind, sizeof vt->kind);
    vt->type = gt->type;
    vt->n_dims = gt->n_dims;
    vt->n_elements = 1;
    for (int d = 0; d < 4; d++) {
        vt->ne[d] = d < (int)gt->n_dims ? gt->ne[d] : 1;
        vt->n_elements *= vt->ne[d];
    }
    vt->bytes = gt->nbytes;
    vt->n_expert = 1;
}

qp_status qp_verify_against(const qp_verify_job *job, qp_verify_result *out, qp_err *err)
{
    memset(out, 0, sizeof *out);
    int64_t first = 0, nf = qp_fileset_tensor_count(job->model), np = qp_plan_count(job->source);
    if (job->select_file) {
        if (job->file_index < 0 || job->file_index >= qp_fileset_file_count(job->model))
            return qp_err_set(err, QP_ERR_USAGE, NULL, "file %d of a set of %d", job->file_index,
                              qp_fileset_file_count(job->model));
        first = qp_fileset_file_first(job->model, job->file_index);
        nf = qp_fileset_file_tensors(job->model, job->file_index);
    }
    out->t = calloc((size_t)(nf + np + 1), sizeof *out->t);
    char *seen = calloc((size_t)np + 1, 1);
    if (!out->t || !seen) {
        free(seen);
        qp_verify_result_free(out);
        return qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory");
    }
    /* Total work in elements, for progress. */
    uint64_t total = 0, done = 0;
    for (int64_t i = first; i < first + nf; i++) {
        const qp_gguf_tensor *gt = qp_fileset_tensor_at(job->model, i, NULL);
        uint64_t e = 1;
        for (uint32_t d = 0; d < gt->n_dims; d++)
            e *= (uint64_t)gt->ne[d];
        total += e;
    }
    qp_terr_acc all;
    qp_terr_acc_init(&all);
    qp_status s = QP_OK;
    for (int64_t i = first; i < first + nf && s == QP_OK; i++) {
        const qp_gguf_tensor *gt = qp_fileset_tensor_at(job->model, i, NULL);
        qp_verify_tensor *vt = &out->t[out->n++];
        fill_from_file(vt, gt);
        snprintf(vt->component, sizeof vt->component, "%s", job->component ? job->component : "");
        out->n_params += vt->n_elements;
        out->tensor_bytes += vt->bytes;
        int64_t pi = gt->name.len < sizeof vt->name ? qp_plan_find(job->source, vt->name) : -1;
        if (pi < 0) {
            vt->status = QP_VT_EXTRA;
            snprintf(vt->note, sizeof vt->note, "not in the source checkpoint");
        } else {
            seen[pi] = 1;
            const qp_plan_tensor *pt = qp_plan_at(job->source, pi);
            if (!same_shape(gt, pt)) {
                char a[72], b[72];
                shape_text(a, sizeof a, gt->n_dims, gt->ne);
                shape_text(b, sizeof b, pt->n_dims, pt->ne);
                vt->status = QP_VT_SHAPE;
                snprintf(vt->note, sizeof vt->note, "shape %s in the file, %s in the source", a, b);
            } else {
                vt->n_expert = pt->n_expert > 1 ? pt->n_expert : 1;
                qp_terr_acc acc;
                qp_terr_acc_init(&acc);
                s = compare_one(job, gt, pi, vt, &acc, err);
                if (s == QP_OK && vt->compared)
                    qp_terr_acc_merge(&all, &acc);
            }
        }
        done += (uint64_t)vt->n_elements;
        qp_report(&job->progress, done, total, vt->name);
    }
    for (int64_t p = 0; p < np && s == QP_OK; p++) {
        if (seen[p])
            continue;
        const qp_plan_tensor *pt = qp_plan_at(job->source, p);
        qp_verify_tensor *vt = &out->t[out->n++];
        snprintf(vt->name, sizeof vt->name, "%s", pt->name);
        snprintf(vt->component, sizeof vt->component, "%s", job->component ? job->component : "");
        qp_verify_name_split(vt->name, &vt->layer, vt->kind, sizeof vt->kind);
        vt->status = QP_VT_MISSING;
        snprintf(vt->note, sizeof vt->note, "in the source checkpoint, not in the file");
        vt->type = UINT32_MAX;
        vt->n_dims = pt->n_dims;
        vt->n_elements = 1;
        for (int d = 0; d < 4; d++) {
            vt->ne[d] = d < (int)pt->n_dims ? pt->ne[d] : 1;
            vt->n_elements *= vt->ne[d];
        }
        vt->n_expert = pt->n_expert > 1 ? pt->n_expert : 1;
    }
    free(seen);
    if (s != QP_OK) {
        qp_verify_result_free(out);
        return s;
    }
    for (int64_t i = 0; i < out->n; i++) {
        switch (out->t[i].status) {
        case QP_VT_OK: break;
        case QP_VT_MISSING: out->n_missing++; break;
        case QP_VT_EXTRA: out->n_extra++; break;
        default: out->n_bad++; break;
        }
        out->n_compared += out->t[i].compared;
    }
    out->total_acc = all;
    qp_terr_finish(&all, &out->total);
    return QP_OK;
}

qp_status qp_verify_result_append(qp_verify_result *dst, qp_verify_result *src, qp_err *err)
{
    qp_verify_tensor *t = realloc(dst->t, (size_t)(dst->n + src->n + 1) * sizeof *t);
    if (!t)
        return qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory");
    dst->t = t;
    memcpy(dst->t + dst->n, src->t, (size_t)src->n * sizeof *t);
    dst->n += src->n;
    dst->n_compared += src->n_compared;
    dst->n_missing += src->n_missing;
    dst->n_extra += src->n_extra;
    dst->n_bad += src->n_bad;
    dst->n_params += src->n_params;
    dst->tensor_bytes += src->tensor_bytes;
    qp_terr_acc_merge(&dst->total_acc, &src->total_acc);
    qp_terr_finish(&dst->total_acc, &dst->total);
    free(src->t); /* the expert arrays now belong to dst */
    memset(src, 0, sizeof *src);
    return QP_OK;
}
