/* report_ppl.c - read `qpack ppl --json` results for the report.
 *
 * Fields used (cli/cmd_ppl.c writes them): model, base, n_ctx, chunks,
 * tokens_scored, ppl, ppl_stderr and, with a base, objects
 * {value, stderr} ppl_base, ppl_ratio, ppl_diff, kld_mean, same_top1,
 * dp_rms and the quantile object kld {p99, max, ...}. Unknown fields are
 * ignored; a missing figure is shown as absent. */
#include "verify/report_data.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest ppl JSON accepted: the per-chunk list of a huge run is ~1 MB. */
#define MAX_JSON (64u << 20)

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static qp_report_est est(const cJSON *o, const char *k)
{
    qp_report_est e = {NAN, NAN};
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (cJSON_IsNumber(v)) {
        e.value = v->valuedouble;
    } else if (cJSON_IsObject(v)) {
        e.value = num(v, "value");
        e.stderr_ = num(v, "stderr");
    }
    return e;
}

static void str(const cJSON *o, const char *k, char *dst, size_t n)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    snprintf(dst, n, "%s", cJSON_IsString(v) && v->valuestring ? v->valuestring : "");
}

static int64_t count(const cJSON *o, const char *k)
{
    double v = num(o, k);
    return isfinite(v) && v >= 0 && v < 9e15 ? (int64_t)v : -1;
}

qp_status qp_report_add_ppl_text(qp_report_data *r, const char *json, size_t len, const char *path, qp_err *err)
{
    cJSON *o = cJSON_ParseWithLength(json, len);
    if (!o) {
        const char *at = cJSON_GetErrorPtr();
        qp_err_set(err, QP_ERR_BAD_INPUT, path, "not valid JSON");
        if (at && at >= json && at <= json + len)
            qp_err_set_offset(err, at - json);
        return QP_ERR_BAD_INPUT;
    }
    qp_status st = QP_OK;
    if (!cJSON_IsObject(o) || !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, "ppl"))) {
        st = qp_err_set(err, QP_ERR_BAD_INPUT, path, "not the JSON of `qpack ppl --json` (no number \"ppl\")");
        goto done;
    }
    qp_report_ppl *p = realloc(r->ppl, (size_t)(r->n_ppl + 1) * sizeof *p);
    if (!p) {
        st = qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
        goto done;
    }
    r->ppl = p;
    qp_report_ppl *x = &p[r->n_ppl++];
    memset(x, 0, sizeof *x);
    snprintf(x->path, sizeof x->path, "%s", path);
    str(o, "model", x->model, sizeof x->model);
    str(o, "base", x->base, sizeof x->base);
    x->n_ctx = count(o, "n_ctx");
    x->chunks = count(o, "chunks");
    x->tokens = count(o, "tokens_scored");
    x->ppl.value = num(o, "ppl");
    x->ppl.stderr_ = num(o, "ppl_stderr");
    x->ppl_base = est(o, "ppl_base");
    x->ppl_ratio = est(o, "ppl_ratio");
    x->ppl_diff = est(o, "ppl_diff");
    x->kld = est(o, "kld_mean");
    x->same_top1 = est(o, "same_top1");
    x->dp_rms = est(o, "dp_rms");
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(o, "kld");
    x->kld_p99 = cJSON_IsObject(q) ? num(q, "p99") : NAN;
    x->kld_max = cJSON_IsObject(q) ? num(q, "max") : NAN;
done:
    cJSON_Delete(o);
    return st;
}

qp_status qp_report_add_ppl_json(qp_report_data *r, const char *path, qp_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return qp_err_io(err, path, errno, "cannot open");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    qp_status st = QP_OK;
    for (;;) {
        if (len == cap) {
            if (cap >= MAX_JSON) {
                st = qp_err_set(err, QP_ERR_BAD_INPUT, path, "larger than %u MB: not a ppl result", MAX_JSON >> 20);
                break;
            }
            cap = cap ? cap * 2 : 65536;
            char *n = realloc(buf, cap);
            if (!n) {
                st = qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
                break;
            }
            buf = n;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f))
                st = qp_err_io(err, path, errno, "read failed");
            break;
        }
    }
    fclose(f);
    if (st == QP_OK)
        st = qp_report_add_ppl_text(r, buf, len, path, err);
    free(buf);
    return st;
}
