/* sensitivity.c - the qpack.sens.* keys of an imatrix GGUF (sensitivity.h). */
#include "convert/sensitivity.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

qp_sens *qp_sens_new(int64_t n)
{
    qp_sens *s = calloc(1, sizeof *s);
    size_t m = (size_t)(n > 0 ? n : 1);
    if (!s)
        return NULL;
    s->n = n;
    s->name = calloc(m, sizeof *s->name);
    s->coef = calloc(m, sizeof *s->coef);
    s->kld = calloc(m, sizeof *s->kld);
    s->err = calloc(m, sizeof *s->err);
    if (!s->name || !s->coef || !s->kld || !s->err) {
        qp_sens_free(s);
        return NULL;
    }
    return s;
}

void qp_sens_free(qp_sens *s)
{
    if (!s)
        return;
    free(s->name);
    free(s->coef);
    free(s->kld);
    free(s->err);
    free(s->routed);
    free(s);
}

int64_t qp_sens_find(const qp_sens *s, const char *name)
{
    for (int64_t k = 0; k < s->n; k++)
        if (strcmp(s->name[k], name) == 0)
            return k;
    return -1;
}

void qp_sens_expert_weights(const qp_sens *s, int64_t layer, int64_t n_expert, double *w)
{
    for (int64_t e = 0; e < n_expert; e++)
        w[e] = 1.0;
    if (!s || !s->routed || s->n_expert != n_expert || layer < 0 || layer >= s->n_layer)
        return;
    const uint32_t *r = s->routed + layer * n_expert;
    double sum = 0;
    for (int64_t e = 0; e < n_expert; e++)
        sum += (double)r[e] + 1.0;
    for (int64_t e = 0; e < n_expert; e++)
        w[e] = (double)n_expert * ((double)r[e] + 1.0) / sum;
}

/* A FLOAT64 array key of exactly n elements, copied out; 0 if not. */
static int get_f64s(const qp_gguf *g, const char *key, int64_t n, double *dst)
{
    int64_t i = qp_gguf_find_key(g, key);
    if (i < 0 || qp_gguf_kv_type(g, i) != QP_GGUF_ARRAY || qp_gguf_arr_type(g, i) != QP_GGUF_F64 ||
        qp_gguf_arr_len(g, i) != (uint64_t)n)
        return 0;
    memcpy(dst, qp_gguf_arr_data(g, i), (size_t)n * sizeof *dst);
    for (int64_t k = 0; k < n; k++)
        if (!isfinite(dst[k]) || dst[k] < 0)
            return 0;
    return 1;
}

static uint32_t get_u32(const qp_gguf *g, const char *key)
{
    uint64_t v = 0;
    return qp_gguf_get_u64(g, key, &v) && v <= UINT32_MAX ? (uint32_t)v : 0;
}

/* qpack.calib.routed_counts and its shape, when present and consistent. */
static qp_status read_traffic(const qp_gguf *g, qp_sens *s, const char *path, qp_err *err)
{
    int64_t i = qp_gguf_find_key(g, "qpack.calib.routed_counts");
    uint32_t ne = get_u32(g, "qpack.calib.n_expert");
    if (i < 0 || ne == 0)
        return QP_OK;
    uint64_t len = qp_gguf_arr_len(g, i);
    if (qp_gguf_kv_type(g, i) != QP_GGUF_ARRAY || qp_gguf_arr_type(g, i) != QP_GGUF_U32 || len % ne != 0)
        return qp_err_set(err, QP_ERR_BAD_INPUT, path, "qpack.calib.routed_counts is not n_layer x %u UINT32 values",
                          ne);
    if (!(s->routed = malloc((size_t)(len ? len : 1) * sizeof *s->routed)))
        return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
    memcpy(s->routed, qp_gguf_arr_data(g, i), (size_t)len * sizeof *s->routed);
    s->n_expert = ne;
    s->n_layer = (int64_t)(len / ne);
    return QP_OK;
}

qp_status qp_sens_read(const char *path, qp_sens **out, qp_err *err)
{
    *out = NULL;
    qp_gguf *g = NULL;
    qp_status st = qp_gguf_open(path, &g, err);
    if (st != QP_OK)
        return st;
    qp_sens *s = NULL;
    int64_t ki = qp_gguf_find_key(g, "qpack.sens.tensors");
    if (ki < 0) {
        st = qp_err_set(err, QP_ERR_NOT_FOUND, path, "no sensitivity data (make it with qpack calibrate --sensitivity)");
        goto out;
    }
    uint64_t n = qp_gguf_arr_len(g, ki);
    if (qp_gguf_kv_type(g, ki) != QP_GGUF_ARRAY || qp_gguf_arr_type(g, ki) != QP_GGUF_STRING || n > (1u << 24) ||
        get_u32(g, "qpack.sens.version") != 1) {
        st = qp_err_set(err, QP_ERR_BAD_INPUT, path, "qpack.sens.tensors is not a string array of version 1 data");
        goto out;
    }
    if (!(s = qp_sens_new((int64_t)n))) {
        st = qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
        goto out;
    }
    for (uint64_t k = 0; k < n; k++) {
        qp_gguf_str nm = qp_gguf_arr_str(g, ki, k);
        if (!nm.ptr || nm.len >= QP_SENS_NAME_MAX) {
            st = qp_err_set(err, QP_ERR_BAD_INPUT, path, "qpack.sens.tensors[%llu] is not a tensor name",
                            (unsigned long long)k);
            goto out;
        }
        memcpy(s->name[k], nm.ptr, nm.len);
        s->name[k][nm.len] = '\0';
    }
    if (!get_f64s(g, "qpack.sens.coef", (int64_t)n, s->coef) || !get_f64s(g, "qpack.sens.kld", (int64_t)n, s->kld) ||
        !get_f64s(g, "qpack.sens.err", (int64_t)n, s->err)) {
        st = qp_err_set(err, QP_ERR_BAD_INPUT, path, "qpack.sens.coef/kld/err must be %llu finite FLOAT64 values >= 0",
                        (unsigned long long)n);
        goto out;
    }
    s->probe_type = get_u32(g, "qpack.sens.probe_type");
    s->n_chunks = get_u32(g, "qpack.sens.chunks");
    s->n_ctx = get_u32(g, "qpack.sens.ctx");
    st = read_traffic(g, s, path, err);
out:
    qp_gguf_close(g);
    if (st != QP_OK) {
        qp_sens_free(s);
        return st;
    }
    *out = s;
    return QP_OK;
}

qp_status qp_sens_write_keys(const qp_sens *s, qp_gguf_writer *w, qp_err *err)
{
    const char **names = malloc((size_t)(s->n > 0 ? s->n : 1) * sizeof *names);
    if (!names)
        return qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory");
    for (int64_t k = 0; k < s->n; k++)
        names[k] = s->name[k];
    qp_status st = qp_gguf_set_u32(w, "qpack.sens.version", 1);
    if (st == QP_OK)
        st = qp_gguf_set_u32(w, "qpack.sens.probe_type", s->probe_type);
    if (st == QP_OK)
        st = qp_gguf_set_u32(w, "qpack.sens.chunks", s->n_chunks);
    if (st == QP_OK)
        st = qp_gguf_set_u32(w, "qpack.sens.ctx", s->n_ctx);
    if (st == QP_OK)
        st = qp_gguf_set_arr_str(w, "qpack.sens.tensors", names, NULL, (uint64_t)s->n);
    if (st == QP_OK)
        st = qp_gguf_set_arr(w, "qpack.sens.coef", QP_GGUF_F64, s->coef, (uint64_t)s->n);
    if (st == QP_OK)
        st = qp_gguf_set_arr(w, "qpack.sens.kld", QP_GGUF_F64, s->kld, (uint64_t)s->n);
    if (st == QP_OK)
        st = qp_gguf_set_arr(w, "qpack.sens.err", QP_GGUF_F64, s->err, (uint64_t)s->n);
    free(names);
    if (st != QP_OK)
        return qp_err_set(err, st, NULL, "cannot set qpack.sens metadata");
    return QP_OK;
}
