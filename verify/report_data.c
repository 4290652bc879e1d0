/* report_data.c - gather what the report shows from its inputs. */
#include "verify/report_data.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UNDER_SHARE_DEFAULT 0.05

void qp_report_init(qp_report_data *r)
{
    memset(r, 0, sizeof *r);
    r->under_share = UNDER_SHARE_DEFAULT;
}

void qp_report_free(qp_report_data *r)
{
    if (!r)
        return;
    free(r->t);
    free(r->route_counts);
    free(r->ppl);
    memset(r, 0, sizeof *r);
}

static void copy_str(char *dst, size_t n, const char *p, size_t len)
{
    if (len >= n)
        len = n - 1;
    memcpy(dst, p, len);
    dst[len] = '\0';
}

static void count_layers(qp_report_data *r)
{
    r->n_layers = 0;
    for (int64_t i = 0; i < r->n_t; i++)
        if (r->t[i].layer + 1 > r->n_layers)
            r->n_layers = r->t[i].layer + 1;
}

qp_status qp_report_set_model(qp_report_data *r, const qp_fileset *set, const char *path, qp_err *err)
{
    /* The members of an Omni set are separate models: report the thinker. */
    int omni = qp_fileset_kind_of(set) == QP_FILESET_OMNI;
    int64_t first = omni ? qp_fileset_file_first(set, 0) : 0;
    int64_t n = omni ? qp_fileset_file_tensors(set, 0) : qp_fileset_tensor_count(set);
    qp_report_tensor *t = calloc((size_t)(n ? n : 1), sizeof *t);
    if (!t)
        return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
    for (int64_t i = 0; i < n; i++) {
        const qp_gguf_tensor *gt = qp_fileset_tensor_at(set, first + i, NULL);
        copy_str(t[i].name, sizeof t[i].name, gt->name.ptr, gt->name.len);
        qp_verify_name_split(t[i].name, &t[i].layer, t[i].kind, sizeof t[i].kind);
        t[i].type = gt->type;
        t[i].n_elements = 1;
        for (uint32_t d = 0; d < gt->n_dims; d++)
            t[i].n_elements *= gt->ne[d];
        t[i].bytes = gt->nbytes;
        t[i].status = "ok";
    }
    free(r->t);
    r->t = t;
    r->n_t = n;
    r->has_model = 1;
    snprintf(r->model_path, sizeof r->model_path, "%s", path);
    r->n_files = omni ? 1 : qp_fileset_file_count(set);
    r->file_bytes = omni ? qp_gguf_file_size(qp_fileset_file(set, 0)) : qp_fileset_bytes(set);
    const qp_gguf *g = qp_fileset_meta(set);
    qp_gguf_str s;
    r->arch[0] = r->model_name[0] = '\0';
    if (qp_gguf_get_str(g, "general.architecture", &s))
        copy_str(r->arch, sizeof r->arch, s.ptr, s.len);
    if (qp_gguf_get_str(g, "general.name", &s))
        copy_str(r->model_name, sizeof r->model_name, s.ptr, s.len);
    count_layers(r);
    return QP_OK;
}

qp_status qp_report_set_errors(qp_report_data *r, const qp_verify_result *v, const char *source, qp_err *err)
{
    qp_report_tensor *t = calloc((size_t)(v->n ? v->n : 1), sizeof *t);
    if (!t)
        return qp_err_set(err, QP_ERR_NOMEM, source, "out of memory");
    r->has_weighted = 0;
    r->n_missing = r->n_extra = r->n_bad = 0;
    /* Of an Omni set, the thinker (as qp_report_set_model). */
    int only_thinker = 0;
    for (int64_t i = 0; i < v->n; i++)
        only_thinker |= v->t[i].component[0] != '\0';
    int64_t n = 0;
    for (int64_t i = 0; i < v->n; i++) {
        const qp_verify_tensor *x = &v->t[i];
        if (only_thinker && strcmp(x->component, "thinker") != 0)
            continue;
        qp_report_tensor *y = &t[n++];
        snprintf(y->name, sizeof y->name, "%s", x->name);
        y->layer = x->layer;
        snprintf(y->kind, sizeof y->kind, "%s", x->kind);
        y->type = x->status == QP_VT_MISSING ? UINT32_MAX : x->type;
        y->n_elements = x->n_elements;
        y->bytes = x->bytes;
        y->has_err = x->compared;
        y->err = x->err;
        y->status = qp_vt_status_name(x->status);
        if (x->compared && x->err.has_weighted)
            r->has_weighted = 1;
        r->n_missing += x->status == QP_VT_MISSING;
        r->n_extra += x->status == QP_VT_EXTRA;
        r->n_bad += x->status != QP_VT_OK && x->status != QP_VT_MISSING && x->status != QP_VT_EXTRA;
    }
    free(r->t);
    r->t = t;
    r->n_t = n;
    r->has_errors = 1;
    r->total_err = v->total; /* for an Omni set: of every member compared */
    snprintf(r->source_path, sizeof r->source_path, "%s", source);
    count_layers(r);
    return QP_OK;
}

/* Layer of "blk.N.<kind>.weight" when kind is `kind`, else -1. */
static int64_t entry_layer(const char *name, const char *kind)
{
    int l = -1, used = 0;
    if (sscanf(name, "blk.%d.%n", &l, &used) != 1 || used <= 0 || l < 0)
        return -1;
    size_t k = strlen(kind);
    if (strncmp(name + used, kind, k) != 0 || strcmp(name + used + k, ".weight") != 0)
        return -1;
    return l;
}

qp_status qp_report_set_imatrix(qp_report_data *r, const qp_imatrix *m, const char *path, qp_err *err)
{
    static const char *const KINDS[] = {"ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"};
    snprintf(r->imatrix_path, sizeof r->imatrix_path, "%s", path);
    r->imatrix_chunks = qp_imatrix_chunk_count(m);
    r->imatrix_chunk_size = qp_imatrix_chunk_size(m);
    r->imatrix_entries = qp_imatrix_count(m);
    r->has_routing = 0;
    free(r->route_counts);
    r->route_counts = NULL;
    /* The first kind that any layer has decides; all three see the same
     * tokens in llama.cpp's collector, so any one of them is the routing. */
    for (size_t k = 0; k < sizeof KINDS / sizeof KINDS[0]; k++) {
        int64_t layers = 0, experts = 0;
        for (int64_t i = 0; i < qp_imatrix_count(m); i++) {
            int64_t l = entry_layer(qp_imatrix_name(m, i), KINDS[k]);
            if (l < 0 || qp_imatrix_n_expert(m, i) < 2)
                continue;
            if (l + 1 > layers)
                layers = l + 1;
            if (qp_imatrix_n_expert(m, i) > experts)
                experts = qp_imatrix_n_expert(m, i);
        }
        if (!layers)
            continue;
        if (layers > 100000 || experts > 100000)
            return qp_err_set(err, QP_ERR_BAD_INPUT, path, "implausible %lld layers x %lld experts",
                              (long long)layers, (long long)experts);
        double *c = malloc((size_t)(layers * experts) * sizeof *c);
        if (!c)
            return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
        for (int64_t j = 0; j < layers * experts; j++)
            c[j] = NAN;
        for (int64_t i = 0; i < qp_imatrix_count(m); i++) {
            int64_t l = entry_layer(qp_imatrix_name(m, i), KINDS[k]);
            if (l < 0 || qp_imatrix_n_expert(m, i) < 2)
                continue;
            for (int64_t e = 0; e < qp_imatrix_n_expert(m, i); e++)
                c[l * experts + e] = qp_imatrix_rows(m, i, e);
        }
        r->route_counts = c;
        r->route_layers = layers;
        r->route_experts = experts;
        snprintf(r->route_entry, sizeof r->route_entry, "%s", KINDS[k]);
        r->has_routing = 1;
        break;
    }
    return QP_OK;
}

int qp_report_route_class(const qp_report_data *r, int64_t layer, int64_t expert)
{
    double v = r->route_counts[layer * r->route_experts + expert];
    if (isnan(v))
        return -1;
    if (v <= 0)
        return 2;
    double sum = 0;
    int64_t n = 0;
    for (int64_t e = 0; e < r->route_experts; e++) {
        double x = r->route_counts[layer * r->route_experts + e];
        if (!isnan(x)) {
            sum += x;
            n++;
        }
    }
    double mean = n ? sum / (double)n : 0;
    return v < r->under_share * mean ? 1 : 0;
}
