/* verify_json.c - `qpack verify --json` output. */
#include "verify/verify_json.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>

#include "common/qp_ggml_types.h"

#define SCHEMA "qpack.verify/1"

/* Finite numbers as numbers; inf/NaN as null (JSON has neither). */
static void add_num(cJSON *o, const char *k, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, k, v);
    else
        cJSON_AddNullToObject(o, k);
}

static void add_stats(cJSON *o, const qp_terr *e)
{
    add_num(o, "rel_rmse", e->rel_rmse);
    add_num(o, "rmse", e->rmse);
    add_num(o, "max_abs_err", e->max_abs_err);
    add_num(o, "cosine", e->cosine);
    add_num(o, "snr_db", e->snr_db);
    if (e->has_weighted) {
        add_num(o, "weighted_rel_rmse", e->weighted_rel_rmse);
        cJSON_AddNumberToObject(o, "weighted_elements", (double)e->n_weighted);
    } else {
        cJSON_AddNullToObject(o, "weighted_rel_rmse");
        cJSON_AddNumberToObject(o, "weighted_elements", 0);
    }
    cJSON_AddNumberToObject(o, "nonfinite", (double)e->nonfinite);
}

static cJSON *shape(uint32_t dims, const int64_t *ne)
{
    cJSON *a = cJSON_CreateArray();
    for (uint32_t d = 0; d < dims; d++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber((double)ne[d]));
    return a;
}

static cJSON *tensor_json(const qp_verify_tensor *t)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", t->name);
    if (t->component[0])
        cJSON_AddStringToObject(o, "component", t->component);
    cJSON_AddStringToObject(o, "status", qp_vt_status_name(t->status));
    if (t->status != QP_VT_OK)
        cJSON_AddStringToObject(o, "note", t->note);
    cJSON_AddNumberToObject(o, "layer", t->layer);
    cJSON_AddStringToObject(o, "kind", t->kind);
    if (t->status == QP_VT_MISSING)
        cJSON_AddNullToObject(o, "type");
    else
        cJSON_AddStringToObject(o, "type", qp_ggml_type_name(t->type));
    cJSON_AddItemToObject(o, "shape", shape(t->n_dims, t->ne));
    cJSON_AddNumberToObject(o, "elements", (double)t->n_elements);
    cJSON_AddNumberToObject(o, "bytes", (double)t->bytes);
    add_num(o, "bits_per_weight", t->n_elements ? 8.0 * (double)t->bytes / (double)t->n_elements : NAN);
    if (t->compared) {
        add_stats(o, &t->err);
        if (t->expert_err) {
            cJSON *ex = cJSON_AddArrayToObject(o, "experts");
            for (int64_t e = 0; e < t->n_expert; e++) {
                cJSON *x = cJSON_CreateObject();
                cJSON_AddNumberToObject(x, "expert", (double)e);
                add_stats(x, &t->expert_err[e]);
                cJSON_AddItemToArray(ex, x);
            }
        }
    }
    return o;
}

static void add_set(cJSON *root, const qp_verify_json_in *in)
{
    cJSON *set = cJSON_AddObjectToObject(root, "set");
    const qp_fileset *s = in->set;
    qp_fileset_kind k = qp_fileset_kind_of(s);
    cJSON_AddStringToObject(set, "kind", k == QP_FILESET_SPLIT ? "split" : k == QP_FILESET_OMNI ? "omni" : "single");
    cJSON *files = cJSON_AddArrayToObject(set, "files");
    for (int i = 0; i < qp_fileset_file_count(s); i++)
        cJSON_AddItemToArray(files, cJSON_CreateString(qp_fileset_path(s, i)));
    if (k == QP_FILESET_OMNI) {
        cJSON *roles = cJSON_AddArrayToObject(set, "components");
        for (int i = 0; i < qp_fileset_file_count(s); i++)
            cJSON_AddItemToArray(roles, cJSON_CreateString(qp_fileset_role(s, i)));
    }
    cJSON_AddNumberToObject(set, "bytes", (double)qp_fileset_bytes(s));
    cJSON_AddNumberToObject(set, "tensors", (double)qp_fileset_tensor_count(s));
}

static void add_summary(cJSON *root, const qp_verify_result *r, int ok)
{
    cJSON *sm = cJSON_AddObjectToObject(root, "summary");
    cJSON_AddNumberToObject(sm, "compared", (double)r->n_compared);
    cJSON_AddNumberToObject(sm, "missing", (double)r->n_missing);
    cJSON_AddNumberToObject(sm, "extra", (double)r->n_extra);
    cJSON_AddNumberToObject(sm, "bad", (double)r->n_bad);
    cJSON_AddNumberToObject(sm, "elements", (double)r->total.n);
    add_num(sm, "bits_per_weight", r->n_params ? 8.0 * (double)r->tensor_bytes / (double)r->n_params : NAN);
    add_stats(sm, &r->total);
    const qp_verify_tensor *worst = NULL;
    for (int64_t i = 0; i < r->n; i++) {
        const qp_verify_tensor *t = &r->t[i];
        if (t->compared && (!worst || t->err.rel_rmse > worst->err.rel_rmse))
            worst = t;
    }
    if (worst) {
        cJSON *w = cJSON_AddObjectToObject(sm, "worst");
        cJSON_AddStringToObject(w, "name", worst->name);
        add_num(w, "rel_rmse", worst->err.rel_rmse);
    } else {
        cJSON_AddNullToObject(sm, "worst");
    }
    cJSON_AddBoolToObject(sm, "ok", ok);
}

char *qp_verify_json(const qp_verify_json_in *in)
{
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return NULL;
    const qp_verify_result *r = in->result;
    int ok = !in->error && (!r || (r->n_missing == 0 && r->n_extra == 0 && r->n_bad == 0));
    cJSON_AddStringToObject(root, "schema", SCHEMA);
    cJSON_AddStringToObject(root, "file", in->file ? in->file : "");
    cJSON_AddBoolToObject(root, "ok", ok);
    if (in->error)
        cJSON_AddStringToObject(root, "error", in->error);
    else
        cJSON_AddNullToObject(root, "error");
    if (in->set) {
        add_set(root, in);
        cJSON *st = cJSON_AddObjectToObject(root, "checksums");
        cJSON_AddNumberToObject(st, "files_verified", in->checksum_files);
        cJSON_AddNumberToObject(st, "files_without", qp_fileset_file_count(in->set) - in->checksum_files);
    }
    if (in->against)
        cJSON_AddStringToObject(root, "against", in->against);
    else
        cJSON_AddNullToObject(root, "against");
    if (in->imatrix)
        cJSON_AddStringToObject(root, "imatrix", in->imatrix);
    else
        cJSON_AddNullToObject(root, "imatrix");
    cJSON *ts = cJSON_AddArrayToObject(root, "tensors");
    if (r) {
        for (int64_t i = 0; i < r->n; i++)
            cJSON_AddItemToArray(ts, tensor_json(&r->t[i]));
        add_summary(root, r, ok);
    } else if (in->set) {
        /* Structure only: the table of what the set holds. */
        for (int64_t i = 0; i < qp_fileset_tensor_count(in->set); i++) {
            int file = 0;
            const qp_gguf_tensor *gt = qp_fileset_tensor_at(in->set, i, &file);
            cJSON *o = cJSON_CreateObject();
            char *name = cJSON_malloc(gt->name.len + 1);
            if (name) {
                for (uint64_t k = 0; k < gt->name.len; k++)
                    name[k] = gt->name.ptr[k];
                name[gt->name.len] = '\0';
                cJSON_AddStringToObject(o, "name", name);
                cJSON_free(name);
            }
            cJSON_AddNumberToObject(o, "file", file);
            cJSON_AddStringToObject(o, "type", qp_ggml_type_name(gt->type));
            cJSON_AddItemToObject(o, "shape", shape(gt->n_dims, gt->ne));
            cJSON_AddNumberToObject(o, "bytes", (double)gt->nbytes);
            cJSON_AddItemToArray(ts, o);
        }
    }
    char *txt = cJSON_Print(root);
    cJSON_Delete(root);
    return txt;
}
