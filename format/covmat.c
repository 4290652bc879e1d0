/* covmat.c - input second-moment matrices: accumulation, GGUF reading
 * (validated) and writing. See covmat.h. */
#include "format/covmat.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/qp_ggml_types.h"
#include "common/qp_threads.h"
#include "format/gguf.h"

#define KEY_TYPE "general.type"
#define KEY_CHUNK_COUNT "qpack.cov.chunk_count"
#define KEY_CHUNK_SIZE "qpack.cov.chunk_size"
#define SUF_COV ".cov"
#define SUF_COUNT ".cov_count"

typedef struct {
    char name[QP_COVMAT_MAX_NAME + 1];
    int64_t n_in, n_expert;
    double *h;      /* [n_expert][n_in][n_in] */
    double *rows;   /* [n_expert] */
} cov_entry;

struct qp_covmat {
    cov_entry *e;
    int64_t n, cap;
    uint32_t chunk_count, chunk_size;
};

qp_covmat *qp_covmat_new(void) { return calloc(1, sizeof(qp_covmat)); }

void qp_covmat_free(qp_covmat *m)
{
    if (!m)
        return;
    for (int64_t i = 0; i < m->n; i++) {
        free(m->e[i].h);
        free(m->e[i].rows);
    }
    free(m->e);
    free(m);
}

int64_t qp_covmat_count(const qp_covmat *m) { return m->n; }
const char *qp_covmat_name(const qp_covmat *m, int64_t i) { return m->e[i].name; }
int64_t qp_covmat_n_in(const qp_covmat *m, int64_t i) { return m->e[i].n_in; }
int64_t qp_covmat_n_expert(const qp_covmat *m, int64_t i) { return m->e[i].n_expert; }
double qp_covmat_rows(const qp_covmat *m, int64_t i, int64_t x) { return m->e[i].rows[x]; }
void qp_covmat_set_rows(qp_covmat *m, int64_t i, int64_t x, double rows) { m->e[i].rows[x] = rows; }
uint32_t qp_covmat_chunk_count(const qp_covmat *m) { return m->chunk_count; }
uint32_t qp_covmat_chunk_size(const qp_covmat *m) { return m->chunk_size; }

void qp_covmat_set_chunks(qp_covmat *m, uint32_t chunk_count, uint32_t chunk_size)
{
    m->chunk_count = chunk_count;
    m->chunk_size = chunk_size;
}

const double *qp_covmat_h(const qp_covmat *m, int64_t i, int64_t x)
{
    const cov_entry *e = &m->e[i];
    return e->h + x * e->n_in * e->n_in;
}

double *qp_covmat_h_mut(qp_covmat *m, int64_t i, int64_t x)
{
    cov_entry *e = &m->e[i];
    return e->h + x * e->n_in * e->n_in;
}

int64_t qp_covmat_find(const qp_covmat *m, const char *name)
{
    for (int64_t i = 0; i < m->n; i++)
        if (strcmp(m->e[i].name, name) == 0)
            return i;
    return -1;
}

int64_t qp_covmat_add(qp_covmat *m, const char *name, int64_t n_in, int64_t n_expert, qp_err *err)
{
    if (!name || strlen(name) > QP_COVMAT_MAX_NAME || n_in < 1 || n_in > QP_COVMAT_MAX_N_IN || n_expert < 1 ||
        n_expert > 4096) {
        qp_err_set(err, QP_ERR_USAGE, NULL, "covariance entry '%s': bad name or shape", name ? name : "");
        return -1;
    }
    int64_t i = qp_covmat_find(m, name);
    if (i >= 0) {
        if (m->e[i].n_in == n_in && m->e[i].n_expert == n_expert)
            return i;
        qp_err_set(err, QP_ERR_BAD_INPUT, NULL, "covariance entry '%s' seen with two shapes", name);
        return -1;
    }
    if (m->n == m->cap) {
        int64_t cap = m->cap ? 2 * m->cap : 16;
        cov_entry *e = realloc(m->e, (size_t)cap * sizeof *e);
        if (!e)
            goto nomem;
        m->e = e;
        m->cap = cap;
    }
    cov_entry *e = &m->e[m->n];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->n_in = n_in;
    e->n_expert = n_expert;
    e->h = calloc((size_t)(n_in * n_in * n_expert), sizeof *e->h);
    e->rows = calloc((size_t)n_expert, sizeof *e->rows);
    if (!e->h || !e->rows) {
        free(e->h);
        free(e->rows);
        goto nomem;
    }
    return m->n++;
nomem:
    qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory (covariance entry %s)", name);
    return -1;
}

qp_status qp_covmat_copy(qp_covmat *m, int64_t src, const char *name, qp_err *err)
{
    const int64_t n_in = m->e[src].n_in, ne = m->e[src].n_expert;
    int64_t d = qp_covmat_add(m, name, n_in, ne, err);
    if (d < 0)
        return err && err->status != QP_OK ? err->status : QP_ERR_INTERNAL;
    if (d != src) { /* m->e may have moved: index again */
        memcpy(m->e[d].h, m->e[src].h, (size_t)(n_in * n_in * ne) * sizeof(double));
        memcpy(m->e[d].rows, m->e[src].rows, (size_t)ne * sizeof(double));
    }
    return QP_OK;
}

/* ---------------------------------------------------------------- accumulate */

typedef struct {
    double *h;
    const float *x;
    int64_t n, rows;
} gram_job;

/* Row i of the upper triangle: h[i][j] += sum_r x[r][i] x[r][j] for j >= i,
 * summed in float over the call's rows (a chunk) and mirrored. */
static void gram_row(const gram_job *g, int64_t i, float *acc)
{
    const int64_t n = g->n;
    for (int64_t j = i; j < n; j++)
        acc[j] = 0.0f;
    for (int64_t r = 0; r < g->rows; r++) {
        const float *xr = g->x + r * n;
        const float xi = xr[i];
        if (xi == 0.0f)
            continue;
        for (int64_t j = i; j < n; j++)
            acc[j] += xi * xr[j];
    }
    double *hi = g->h + i * n;
    for (int64_t j = i; j < n; j++) {
        hi[j] += (double)acc[j];
        if (j != i)
            g->h[j * n + i] = hi[j];
    }
}

/* Items pair row k with row n-1-k so every item costs the same. */
static void gram_range(void *ctx, int64_t b, int64_t e, int tid)
{
    (void)tid;
    const gram_job *g = ctx;
    float *acc = malloc((size_t)g->n * sizeof *acc);
    if (!acc) /* caller checked memory before; keep the result exact anyway */
        return;
    for (int64_t k = b; k < e; k++) {
        gram_row(g, k, acc);
        if (g->n - 1 - k != k)
            gram_row(g, g->n - 1 - k, acc);
    }
    free(acc);
}

qp_status qp_covmat_accumulate(qp_covmat *m, int64_t entry, int64_t expert, const float *x, int64_t n_rows,
                               int n_threads, qp_err *err)
{
    if (!m || entry < 0 || entry >= m->n || expert < 0 || expert >= m->e[entry].n_expert || n_rows < 0 ||
        (n_rows > 0 && !x))
        return qp_err_set(err, QP_ERR_USAGE, NULL, "qp_covmat_accumulate: bad arguments");
    cov_entry *e = &m->e[entry];
    const int64_t n = e->n_in;
    for (int64_t k = 0; k < n_rows * n; k++)
        if (!isfinite(x[k]))
            return qp_err_set(err, QP_ERR_BAD_INPUT, NULL, "non-finite activation for %s", e->name);
    gram_job g = {e->h + expert * n * n, x, n, n_rows};
    qp_parallel_for(n_threads, (n + 1) / 2, gram_range, &g);
    e->rows[expert] += (double)n_rows;
    return QP_OK;
}

/* ---------------------------------------------------------------- reading */

static int name_has_suffix(qp_gguf_str n, const char *suf, size_t *base_len)
{
    size_t sl = strlen(suf);
    if (n.len <= sl || memcmp(n.ptr + n.len - sl, suf, sl) != 0)
        return 0;
    *base_len = (size_t)n.len - sl;
    return 1;
}

static qp_status bad(qp_err *err, const char *path, qp_gguf_str name, const char *msg)
{
    qp_err_set(err, QP_ERR_BAD_INPUT, path, "%s", msg);
    char t[128];
    snprintf(t, sizeof t, "%.*s", (int)(name.len < 100 ? name.len : 100), name.ptr);
    qp_err_set_tensor(err, t);
    return QP_ERR_BAD_INPUT;
}

static qp_status read_meta(const qp_gguf *g, const char *path, qp_covmat *m, qp_err *err)
{
    int64_t k = qp_gguf_find_key(g, KEY_TYPE);
    qp_gguf_str t = k >= 0 ? qp_gguf_kv_str(g, k) : (qp_gguf_str){NULL, 0};
    if (!t.ptr || t.len != 10 || memcmp(t.ptr, "covariance", 10) != 0)
        return qp_err_set(err, QP_ERR_BAD_INPUT, path, "general.type is not 'covariance': not a covariance file");
    uint64_t v;
    k = qp_gguf_find_key(g, KEY_CHUNK_COUNT);
    if (k >= 0 && qp_gguf_kv_as_u64(g, k, &v) && v <= UINT32_MAX)
        m->chunk_count = (uint32_t)v;
    k = qp_gguf_find_key(g, KEY_CHUNK_SIZE);
    if (k >= 0 && qp_gguf_kv_as_u64(g, k, &v) && v <= UINT32_MAX)
        m->chunk_size = (uint32_t)v;
    return QP_OK;
}

/* One ".cov" tensor and its ".cov_count" partner into a new entry. */
static qp_status read_entry(const qp_gguf *g, const char *path, const qp_gguf_tensor *t, size_t base_len,
                            qp_covmat *m, qp_err *err)
{
    char name[QP_COVMAT_MAX_NAME + 16];
    if (base_len > QP_COVMAT_MAX_NAME)
        return bad(err, path, t->name, "covariance entry name too long");
    memcpy(name, t->name.ptr, base_len);
    name[base_len] = '\0';
    if (strlen(name) != base_len)
        return bad(err, path, t->name, "NUL byte in a tensor name");
    if (t->type != QP_GGML_F32)
        return bad(err, path, t->name, "covariance data must be F32");
    const int64_t n = t->ne[0], ne = t->n_dims >= 3 ? t->ne[2] : 1;
    if (t->n_dims < 2 || t->n_dims > 3 || n < 1 || n > QP_COVMAT_MAX_N_IN || t->ne[1] != n || ne < 1 ||
        ne > 4096 || t->nbytes != (uint64_t)(n * n * ne) * 4u)
        return bad(err, path, t->name, "covariance tensor must be [n_in, n_in] or [n_in, n_in, n_expert]");
    char cname[sizeof name + sizeof SUF_COUNT];
    snprintf(cname, sizeof cname, "%s%s", name, SUF_COUNT);
    const qp_gguf_tensor *c = qp_gguf_find_tensor(g, cname);
    if (!c)
        return bad(err, path, t->name, "covariance tensor without its .cov_count");
    if (c->type != QP_GGML_F32 || c->ne[0] != 1 || c->nbytes != (uint64_t)ne * 4u)
        return bad(err, path, c->name, ".cov_count must be F32 [1] or [1, n_expert]");
    if (qp_covmat_find(m, name) >= 0)
        return bad(err, path, t->name, "duplicate covariance entry");
    int64_t i = qp_covmat_add(m, name, n, ne, err);
    if (i < 0)
        return err && err->status != QP_OK ? err->status : QP_ERR_INTERNAL;
    cov_entry *e = &m->e[i];
    const float *src = t->data, *cnt = c->data;
    for (int64_t x = 0; x < ne; x++) {
        float r;
        memcpy(&r, cnt + x, 4);
        if (!isfinite(r) || r < 0)
            return bad(err, path, c->name, "count is negative or not finite");
        e->rows[x] = r;
    }
    for (int64_t k = 0; k < n * n * ne; k++) {
        float v;
        memcpy(&v, src + k, 4); /* the mapping's alignment is the file's */
        if (!isfinite(v))
            return bad(err, path, t->name, "non-finite covariance value");
        e->h[k] = v;
    }
    for (int64_t x = 0; x < ne; x++)
        for (int64_t j = 0; j < n; j++)
            if (e->h[(x * n + j) * n + j] < 0)
                return bad(err, path, t->name, "negative diagonal in a covariance matrix");
    return QP_OK;
}

static qp_status read_gguf(const qp_gguf *g, const char *path, qp_covmat **out, qp_err *err)
{
    qp_covmat *m = qp_covmat_new();
    if (!m)
        return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
    qp_status s = read_meta(g, path, m, err);
    for (int64_t i = 0; s == QP_OK && i < qp_gguf_tensor_count(g); i++) {
        const qp_gguf_tensor *t = qp_gguf_tensor_at(g, i);
        size_t bl;
        if (name_has_suffix(t->name, SUF_COUNT, &bl))
            continue; /* read with its .cov */
        if (!name_has_suffix(t->name, SUF_COV, &bl))
            s = bad(err, path, t->name, "unexpected tensor in a covariance file");
        else
            s = read_entry(g, path, t, bl, m, err);
    }
    if (s == QP_OK && m->n == 0)
        s = qp_err_set(err, QP_ERR_BAD_INPUT, path, "covariance file has no entries");
    /* every .cov_count must belong to an entry */
    for (int64_t i = 0; s == QP_OK && i < qp_gguf_tensor_count(g); i++) {
        const qp_gguf_tensor *t = qp_gguf_tensor_at(g, i);
        size_t bl;
        char name[QP_COVMAT_MAX_NAME + 1];
        if (!name_has_suffix(t->name, SUF_COUNT, &bl))
            continue;
        if (bl > QP_COVMAT_MAX_NAME)
            s = bad(err, path, t->name, "covariance entry name too long");
        else {
            memcpy(name, t->name.ptr, bl);
            name[bl] = '\0';
            if (qp_covmat_find(m, name) < 0)
                s = bad(err, path, t->name, ".cov_count without its .cov");
        }
    }
    if (s != QP_OK) {
        qp_covmat_free(m);
        return s;
    }
    *out = m;
    return QP_OK;
}

qp_status qp_covmat_read_memory(const void *buf, size_t size, const char *name, qp_covmat **out, qp_err *err)
{
    qp_gguf *g = NULL;
    *out = NULL;
    qp_status s = qp_gguf_open_memory(buf, size, name, &g, err);
    if (s == QP_OK)
        s = read_gguf(g, name, out, err);
    qp_gguf_close(g);
    return s;
}

qp_status qp_covmat_read(const char *path, qp_covmat **out, qp_err *err)
{
    qp_gguf *g = NULL;
    *out = NULL;
    qp_status s = qp_gguf_open(path, &g, err);
    if (s == QP_OK)
        s = read_gguf(g, path, out, err);
    qp_gguf_close(g);
    return s;
}

/* ---------------------------------------------------------------- writing */

static qp_status write_entry(qp_gguf_writer *w, const cov_entry *e, int64_t idx, float *buf, qp_err *err)
{
    const int64_t n = e->n_in;
    qp_status s = QP_OK;
    for (int64_t x = 0; x < e->n_expert && s == QP_OK; x++) {
        const double *h = e->h + x * n * n;
        for (int64_t k = 0; k < n * n; k++)
            buf[k] = (float)h[k];
        s = qp_gguf_write_tensor(w, idx, (uint64_t)(x * n * n) * 4u, buf, (size_t)(n * n) * 4u, err);
    }
    for (int64_t x = 0; x < e->n_expert && s == QP_OK; x++)
        buf[x] = (float)e->rows[x];
    if (s == QP_OK)
        s = qp_gguf_write_tensor(w, idx + 1, 0, buf, (size_t)e->n_expert * 4u, err);
    return s;
}

qp_status qp_covmat_write(const qp_covmat *m, const char *path, qp_err *err)
{
    if (!m || !path || m->n == 0)
        return qp_err_set(err, QP_ERR_USAGE, path, "qp_covmat_write: nothing to write");
    qp_gguf_writer *w = qp_gguf_writer_new(path);
    int64_t *idx = calloc((size_t)m->n, sizeof *idx);
    float *buf = NULL;
    int64_t max_n2 = 1;
    qp_status s = QP_OK;
    if (!w || !idx) {
        s = qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
        goto out;
    }
    if ((s = qp_gguf_set_str(w, KEY_TYPE, "covariance")) != QP_OK ||
        (s = qp_gguf_set_u32(w, KEY_CHUNK_COUNT, m->chunk_count)) != QP_OK ||
        (s = qp_gguf_set_u32(w, KEY_CHUNK_SIZE, m->chunk_size)) != QP_OK) {
        s = qp_err_set(err, s, path, "cannot set covariance metadata");
        goto out;
    }
    for (int64_t i = 0; i < m->n; i++) {
        const cov_entry *e = &m->e[i];
        char name[QP_COVMAT_MAX_NAME + 16];
        const int64_t ne_h[3] = {e->n_in, e->n_in, e->n_expert}, ne_c[2] = {1, e->n_expert};
        snprintf(name, sizeof name, "%s%s", e->name, SUF_COV);
        idx[i] = qp_gguf_add_tensor(w, name, e->n_expert > 1 ? 3 : 2, ne_h, QP_GGML_F32, err);
        snprintf(name, sizeof name, "%s%s", e->name, SUF_COUNT);
        if (idx[i] < 0 || qp_gguf_add_tensor(w, name, e->n_expert > 1 ? 2 : 1, ne_c, QP_GGML_F32, err) < 0) {
            qp_err_set_path(err, path);
            s = err && err->status != QP_OK ? err->status : QP_ERR_INTERNAL;
            goto out;
        }
        if (e->n_in * e->n_in > max_n2)
            max_n2 = e->n_in * e->n_in;
        if (e->n_expert > max_n2)
            max_n2 = e->n_expert;
    }
    if (!(buf = malloc((size_t)max_n2 * sizeof *buf))) {
        s = qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
        goto out;
    }
    if ((s = qp_gguf_writer_begin(w, err)) != QP_OK)
        goto out;
    for (int64_t i = 0; i < m->n && s == QP_OK; i++)
        s = write_entry(w, &m->e[i], idx[i], buf, err);
    if (s == QP_OK)
        s = qp_gguf_writer_finish(w, err);
out:
    if (s != QP_OK && w)
        qp_gguf_writer_abort(w);
    qp_gguf_writer_free(w);
    free(idx);
    free(buf);
    return s;
}
