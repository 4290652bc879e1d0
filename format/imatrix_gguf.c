/* imatrix_gguf.c - llama.cpp's GGUF importance matrix: reading (validated)
 * and writing (the layout llama-imatrix writes). See imatrix.h. */
#include "format/imatrix_impl.h"
#include "format/imatrix_ext.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/qp_ggml_types.h"
#include "format/gguf.h"

#define KEY_TYPE "general.type"
#define KEY_DATASETS "imatrix.datasets"
#define KEY_CHUNK_COUNT "imatrix.chunk_count"
#define KEY_CHUNK_SIZE "imatrix.chunk_size"

enum { T_SUM2, T_COUNTS, T_SUM, T_KINDS };
static const char *const SUFFIX[T_KINDS] = {".in_sum2", ".counts", ".in_sum"};

typedef struct {
    const char *base; /* points into a tensor name (not NUL-terminated) */
    size_t len;
    int64_t t[T_KINDS]; /* tensor index or -1 */
} pending;

static int has_suffix(qp_gguf_str n, const char *suf, size_t *base_len)
{
    size_t sl = strlen(suf);
    if (n.len <= sl || memcmp(n.ptr + n.len - sl, suf, sl) != 0)
        return 0;
    *base_len = (size_t)n.len - sl;
    return 1;
}

static qp_status tensor_err(qp_err *err, const char *path, qp_gguf_str name, const char *msg)
{
    qp_err_set(err, QP_ERR_BAD_INPUT, path, "%s", msg);
    char t[256];
    snprintf(t, sizeof t, "%.*s", (int)(name.len < 200 ? name.len : 200), name.ptr);
    qp_err_set_tensor(err, t);
    return QP_ERR_BAD_INPUT;
}

static qp_status read_meta(const qp_gguf *g, const char *path, qp_imatrix *m, qp_err *err)
{
    int64_t k = qp_gguf_find_key(g, KEY_TYPE);
    if (k >= 0) {
        qp_gguf_str t = qp_gguf_kv_str(g, k);
        if (!t.ptr || t.len != 7 || memcmp(t.ptr, "imatrix", 7) != 0)
            return qp_err_set(err, QP_ERR_BAD_INPUT, path, "general.type is '%.*s', not 'imatrix': not an importance "
                              "matrix", (int)(t.len < 64 ? t.len : 64), t.ptr ? t.ptr : "");
    }
    k = qp_gguf_find_key(g, KEY_DATASETS);
    if (k < 0 || qp_gguf_kv_type(g, k) != QP_GGUF_ARRAY || qp_gguf_arr_type(g, k) != QP_GGUF_STRING)
        return qp_err_set(err, QP_ERR_BAD_INPUT, path, "missing imatrix metadata: %s must be an array of strings",
                          KEY_DATASETS);
    for (uint64_t j = 0; j < qp_gguf_arr_len(g, k); j++) {
        qp_gguf_str s = qp_gguf_arr_str(g, k, j);
        qp_status st = qp_imx_add_dataset_n(m, s.ptr ? s.ptr : "", (size_t)s.len, path, err);
        if (st != QP_OK)
            return st;
    }
    uint64_t v;
    k = qp_gguf_find_key(g, KEY_CHUNK_COUNT);
    if (k < 0 || !qp_gguf_kv_as_u64(g, k, &v) || v > UINT32_MAX)
        return qp_err_set(err, QP_ERR_BAD_INPUT, path, "missing imatrix metadata: %s must be an unsigned 32-bit "
                          "integer", KEY_CHUNK_COUNT);
    m->chunk_count = (uint32_t)v;
    k = qp_gguf_find_key(g, KEY_CHUNK_SIZE); /* optional: llama-quantize does not need it */
    if (k >= 0) {
        if (!qp_gguf_kv_as_u64(g, k, &v) || v > UINT32_MAX)
            return qp_err_set(err, QP_ERR_BAD_INPUT, path, "%s must be an unsigned 32-bit integer", KEY_CHUNK_SIZE);
        m->chunk_size = (uint32_t)v;
    }
    return QP_OK;
}

typedef struct {
    const char *base;
    size_t len;
    int kind;
    int64_t t;
} tagged;

static int cmp_tagged(const void *pa, const void *pb)
{
    const tagged *a = pa, *b = pb;
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->base, b->base, n);
    if (c == 0)
        c = (a->len > b->len) - (a->len < b->len);
    return c ? c : a->kind - b->kind;
}

/* Group the tensors by entry name (sorted, so hostile files with millions
 * of tensors stay O(n log n)); unknown tensors are ignored (as llama.cpp
 * does), a second tensor of the same kind is an error. */
static qp_status collect(const qp_gguf *g, const char *path, pending **out, int64_t *n_out, qp_err *err)
{
    int64_t nt = qp_gguf_tensor_count(g), n_tag = 0, n = 0;
    tagged *tg = calloc((size_t)(nt ? nt : 1), sizeof *tg);
    pending *p = calloc((size_t)(nt ? nt : 1), sizeof *p);
    if (!tg || !p) {
        free(tg);
        free(p);
        return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
    }
    for (int64_t i = 0; i < nt; i++) {
        qp_gguf_str name = qp_gguf_tensor_at(g, i)->name;
        size_t bl = 0;
        for (int k = 0; k < T_KINDS; k++)
            if (has_suffix(name, SUFFIX[k], &bl)) {
                tg[n_tag++] = (tagged){name.ptr, bl, k, i};
                break;
            }
    }
    qsort(tg, (size_t)n_tag, sizeof *tg, cmp_tagged);
    for (int64_t j = 0; j < n_tag; j++) {
        if (n == 0 || p[n - 1].len != tg[j].len || memcmp(p[n - 1].base, tg[j].base, tg[j].len) != 0) {
            p[n] = (pending){tg[j].base, tg[j].len, {-1, -1, -1}};
            n++;
        }
        if (p[n - 1].t[tg[j].kind] >= 0) {
            qp_gguf_str name = qp_gguf_tensor_at(g, tg[j].t)->name;
            free(tg);
            free(p);
            return tensor_err(err, path, name, "second tensor for the same entry");
        }
        p[n - 1].t[tg[j].kind] = tg[j].t;
    }
    free(tg);
    *out = p;
    *n_out = n;
    return QP_OK;
}

static int finite_nonneg(const uint8_t *data, int64_t n, int allow_negative, int64_t *bad)
{
    for (int64_t i = 0; i < n; i++) {
        float f;
        memcpy(&f, data + 4 * i, 4);
        if (!isfinite(f) || (!allow_negative && f < 0)) {
            *bad = i;
            return 0;
        }
    }
    return 1;
}

static qp_status read_entry(const qp_gguf *g, const char *path, const pending *p, qp_imatrix *m, qp_err *err)
{
    char msg[200];
    qp_gguf_str ename = {p->base, p->len};
    if (p->t[T_SUM2] < 0 || p->t[T_COUNTS] < 0)
        return tensor_err(err, path, ename, p->t[T_SUM2] < 0 ? "entry has counts but no in_sum2 tensor"
                                                             : "entry has in_sum2 but no counts tensor");
    const qp_gguf_tensor *t[T_KINDS] = {NULL, NULL, NULL};
    for (int s = 0; s < T_KINDS; s++) {
        if (p->t[s] < 0)
            continue;
        t[s] = qp_gguf_tensor_at(g, p->t[s]);
        if (t[s]->type != QP_GGML_F32) {
            snprintf(msg, sizeof msg, "importance data must be F32, not %s", qp_ggml_type_name(t[s]->type));
            return tensor_err(err, path, t[s]->name, msg);
        }
        if (t[s]->n_dims > 2)
            return tensor_err(err, path, t[s]->name, "importance data has more than 2 dimensions");
    }
    int64_t n_in = t[T_SUM2]->ne[0], n_expert = t[T_SUM2]->ne[1];
    if (n_in < 1 || n_expert < 1)
        return tensor_err(err, path, t[T_SUM2]->name, "in_sum2 is empty");
    if (t[T_COUNTS]->ne[0] != 1 || t[T_COUNTS]->ne[1] != n_expert) {
        snprintf(msg, sizeof msg, "counts has shape [%lld, %lld] but in_sum2 [%lld, %lld] needs [1, %lld]",
                 (long long)t[T_COUNTS]->ne[0], (long long)t[T_COUNTS]->ne[1], (long long)n_in, (long long)n_expert,
                 (long long)n_expert);
        return tensor_err(err, path, t[T_COUNTS]->name, msg);
    }
    if (t[T_SUM] && (t[T_SUM]->ne[0] != n_in || t[T_SUM]->ne[1] != n_expert))
        return tensor_err(err, path, t[T_SUM]->name, "in_sum and in_sum2 differ in shape");
    int64_t bad;
    if (!finite_nonneg(t[T_SUM2]->data, n_in * n_expert, 0, &bad)) {
        snprintf(msg, sizeof msg, "value %lld (column %lld of expert %lld) is not a finite non-negative number",
                 (long long)bad, (long long)(bad % n_in), (long long)(bad / n_in));
        return tensor_err(err, path, t[T_SUM2]->name, msg);
    }
    if (!finite_nonneg(t[T_COUNTS]->data, n_expert, 0, &bad)) {
        snprintf(msg, sizeof msg, "count of expert %lld is not a finite non-negative number", (long long)bad);
        return tensor_err(err, path, t[T_COUNTS]->name, msg);
    }
    if (t[T_SUM] && !finite_nonneg(t[T_SUM]->data, n_in * n_expert, 1, &bad)) {
        snprintf(msg, sizeof msg, "value %lld is not finite", (long long)bad);
        return tensor_err(err, path, t[T_SUM]->name, msg);
    }
    int64_t i = qp_imx_append(m, p->base, p->len, n_in, n_expert, path, err);
    if (i < 0) {
        if (err && err->tensor[0] == '\0') {
            char tn[256];
            snprintf(tn, sizeof tn, "%.*s", (int)(p->len < 200 ? p->len : 200), p->base);
            qp_err_set_tensor(err, tn);
        }
        return err ? err->status : QP_ERR_BAD_INPUT;
    }
    memcpy(m->e[i].sums, t[T_SUM2]->data, (size_t)(n_in * n_expert) * sizeof(float));
    for (int64_t x = 0; x < n_expert; x++) {
        float c;
        memcpy(&c, (const uint8_t *)t[T_COUNTS]->data + 4 * x, 4);
        m->e[i].counts[x] = c;
    }
    return QP_OK;
}

static qp_status read_gguf(const qp_gguf *g, const char *path, qp_imatrix **out, qp_err *err)
{
    qp_imatrix *m = qp_imatrix_new();
    if (!m)
        return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
    m->format = QP_IMATRIX_FORMAT_GGUF;
    pending *p = NULL;
    int64_t n = 0;
    qp_status s = read_meta(g, path, m, err);
    if (s == QP_OK)
        s = collect(g, path, &p, &n, err);
    if (s == QP_OK && n == 0)
        s = qp_err_set(err, QP_ERR_BAD_INPUT, path, "no importance data (no <name>.in_sum2 / <name>.counts tensors)");
    for (int64_t j = 0; j < n && s == QP_OK; j++)
        s = read_entry(g, path, &p[j], m, err);
    free(p);
    if (s != QP_OK) {
        qp_imatrix_free(m);
        return s;
    }
    *out = m;
    return QP_OK;
}

qp_status qp_imx_read_gguf_memory(const void *buf, size_t size, const char *name, qp_imatrix **out, qp_err *err)
{
    qp_gguf *g = NULL;
    qp_status s = qp_gguf_open_memory(buf, size, name, &g, err);
    if (s == QP_OK)
        s = read_gguf(g, name, out, err);
    qp_gguf_close(g);
    return s;
}

qp_status qp_imx_read_gguf_file(const char *path, qp_imatrix **out, qp_err *err)
{
    qp_gguf *g = NULL;
    qp_status s = qp_gguf_open(path, &g, err);
    if (s == QP_OK)
        s = read_gguf(g, path, out, err);
    qp_gguf_close(g);
    return s;
}

/* ---------------------------------------------------------------- writing */

/* ggml drops trailing dimensions of 1: a dense entry is [n_in] / [1], a
 * stacked one [n_in, n_expert] / [1, n_expert]. */
static qp_status declare(qp_gguf_writer *w, const qp_imx_entry *e, const char *path, qp_err *err)
{
    char name[QP_IMATRIX_MAX_NAME + 16];
    uint32_t nd = e->n_expert > 1 ? 2 : 1;
    int64_t ne_s[2] = {e->n_in, e->n_expert}, ne_c[2] = {1, e->n_expert};
    snprintf(name, sizeof name, "%s.in_sum2", e->name);
    if (qp_gguf_add_tensor(w, name, nd, ne_s, QP_GGML_F32, err) < 0)
        goto fail;
    snprintf(name, sizeof name, "%s.counts", e->name);
    if (qp_gguf_add_tensor(w, name, nd, ne_c, QP_GGML_F32, err) < 0)
        goto fail;
    return QP_OK;
fail:
    qp_err_set_path(err, path);
    return err && err->status != QP_OK ? err->status : QP_ERR_INTERNAL;
}

qp_status qp_imatrix_write(const qp_imatrix *m, const char *path, qp_err *err)
{
    return qp_imatrix_write_kv(m, path, NULL, NULL, err);
}

qp_status qp_imatrix_write_kv(const qp_imatrix *m, const char *path, qp_imatrix_kv_fn extra_kv, void *user,
                              qp_err *err)
{
    if (!m || !path)
        return qp_err_set(err, QP_ERR_USAGE, path, "qp_imatrix_write: bad arguments");
    if (m->n == 0)
        return qp_err_set(err, QP_ERR_USAGE, path, "importance matrix has no entries");
    for (int64_t i = 0; i < m->n; i++) {
        qp_status s = qp_imx_check_entry(m, i, path, err);
        if (s != QP_OK)
            return s;
    }
    int64_t *ix = qp_imx_sorted(m);
    qp_gguf_writer *w = qp_gguf_writer_new(path);
    float *cbuf = NULL;
    qp_status s = QP_OK;
    if (!ix || !w) {
        s = qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
        goto out;
    }
    /* llama.cpp's file has exactly these four keys. */
    qp_gguf_writer_set_checksums(w, 0);
    if ((s = qp_gguf_set_str(w, KEY_TYPE, "imatrix")) != QP_OK ||
        (s = qp_gguf_set_arr_str(w, KEY_DATASETS, (const char *const *)m->datasets, NULL, (uint64_t)m->n_ds)) != QP_OK ||
        (s = qp_gguf_set_u32(w, KEY_CHUNK_COUNT, m->chunk_count)) != QP_OK ||
        (s = qp_gguf_set_u32(w, KEY_CHUNK_SIZE, m->chunk_size)) != QP_OK) {
        s = qp_err_set(err, s, path, "cannot set importance matrix metadata");
        goto out;
    }
    /* producer-specific keys after llama.cpp's four (readers ignore them) */
    if (extra_kv && (s = extra_kv(user, w, err)) != QP_OK) {
        qp_err_set_path(err, path);
        goto out;
    }
    int64_t max_x = 1;
    for (int64_t k = 0; k < m->n; k++) {
        if ((s = declare(w, &m->e[ix[k]], path, err)) != QP_OK)
            goto out;
        if (m->e[ix[k]].n_expert > max_x)
            max_x = m->e[ix[k]].n_expert;
    }
    if (!(cbuf = malloc((size_t)max_x * sizeof *cbuf))) {
        s = qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
        goto out;
    }
    if ((s = qp_gguf_writer_begin(w, err)) != QP_OK)
        goto out;
    for (int64_t k = 0; k < m->n && s == QP_OK; k++) {
        const qp_imx_entry *e = &m->e[ix[k]];
        for (int64_t x = 0; x < e->n_expert; x++)
            cbuf[x] = (float)e->counts[x];
        s = qp_gguf_write_tensor(w, 2 * k, 0, e->sums, (size_t)(e->n_in * e->n_expert) * sizeof(float), err);
        if (s == QP_OK)
            s = qp_gguf_write_tensor(w, 2 * k + 1, 0, cbuf, (size_t)e->n_expert * sizeof(float), err);
    }
    if (s == QP_OK)
        s = qp_gguf_writer_finish(w, err);
out:
    if (s != QP_OK && w)
        qp_gguf_writer_abort(w);
    qp_gguf_writer_free(w);
    free(cbuf);
    free(ix);
    return s;
}
