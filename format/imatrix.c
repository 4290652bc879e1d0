/* imatrix.c - importance matrix entries, accumulation, merging and the
 * format dispatch of qp_imatrix_read (see imatrix.h). */
#include "format/imatrix_impl.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/qp_checked.h"

/* Largest n_in * n_expert accepted: far beyond any real layer, small enough
 * that byte sizes never overflow. */
#define MAX_VALUES ((int64_t)1 << 40)

qp_imatrix *qp_imatrix_new(void)
{
    return calloc(1, sizeof(qp_imatrix));
}

void qp_imatrix_free(qp_imatrix *m)
{
    if (!m)
        return;
    for (int64_t i = 0; i < m->n; i++) {
        free(m->e[i].name);
        free(m->e[i].sums);
        free(m->e[i].counts);
    }
    free(m->e);
    free(m->slots);
    for (int64_t k = 0; k < m->n_ds; k++)
        free(m->datasets[k]);
    free(m->datasets);
    free(m);
}

/* ---------------------------------------------------------------- entries */

qp_status qp_imx_check_name(const char *name, size_t len, const char *where, qp_err *err)
{
    if (len == 0)
        return qp_err_set(err, QP_ERR_BAD_INPUT, where, "empty importance matrix entry name");
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return qp_err_set(err, QP_ERR_BAD_INPUT, where, "entry name contains control byte 0x%02x at %zu",
                              (unsigned)(unsigned char)name[i], i);
    if (len > QP_IMATRIX_MAX_NAME) {
        qp_err_set(err, QP_ERR_BAD_INPUT, where, "entry name is %zu bytes, more than llama.cpp's %d", len,
                   QP_IMATRIX_MAX_NAME);
        char shown[64];
        snprintf(shown, sizeof shown, "%.*s...", 48, name);
        qp_err_set_tensor(err, shown);
        return QP_ERR_BAD_INPUT;
    }
    return QP_OK;
}

/* Names are looked up by hash so that hostile files with millions of
 * entries, and merges of big matrices, stay linear. */
static uint64_t name_hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static void slot_put(int64_t *slots, int64_t n_slots, const qp_imx_entry *e, int64_t i)
{
    uint64_t k = name_hash(e->name, strlen(e->name)) & (uint64_t)(n_slots - 1);
    while (slots[k])
        k = (k + 1) & (uint64_t)(n_slots - 1);
    slots[k] = i + 1;
}

/* Make room for one more entry in the index. */
static int index_reserve(qp_imatrix *m)
{
    if (2 * (m->n + 1) < m->n_slots)
        return 0;
    int64_t n_slots = m->n_slots ? m->n_slots * 2 : 128;
    int64_t *slots = calloc((size_t)n_slots, sizeof *slots);
    if (!slots)
        return -1;
    for (int64_t i = 0; i < m->n; i++)
        slot_put(slots, n_slots, &m->e[i], i);
    free(m->slots);
    m->slots = slots;
    m->n_slots = n_slots;
    return 0;
}

int64_t qp_imx_findn(const qp_imatrix *m, const char *name, size_t len)
{
    if (!m || m->n_slots == 0)
        return -1;
    uint64_t k = name_hash(name, len) & (uint64_t)(m->n_slots - 1);
    for (; m->slots[k]; k = (k + 1) & (uint64_t)(m->n_slots - 1)) {
        const char *e = m->e[m->slots[k] - 1].name;
        if (strncmp(e, name, len) == 0 && e[len] == '\0')
            return m->slots[k] - 1;
    }
    return -1;
}

int64_t qp_imx_append(qp_imatrix *m, const char *name, size_t len, int64_t n_in, int64_t n_expert,
                      const char *where, qp_err *err)
{
    if (qp_imx_check_name(name, len, where, err) != QP_OK)
        return -1;
    uint64_t nv;
    if (n_in < 1 || n_expert < 1 || !qp_mul_u64((uint64_t)n_in, (uint64_t)n_expert, &nv) || nv > MAX_VALUES) {
        qp_err_set(err, QP_ERR_BAD_INPUT, where, "bad importance matrix shape: %lld columns x %lld experts",
                   (long long)n_in, (long long)n_expert);
        return -1;
    }
    if (index_reserve(m) != 0) {
        qp_err_set(err, QP_ERR_NOMEM, where, "out of memory");
        return -1;
    }
    if (m->n == m->cap) {
        int64_t cap = m->cap ? m->cap * 2 : 64;
        qp_imx_entry *e = realloc(m->e, (size_t)cap * sizeof *e);
        if (!e) {
            qp_err_set(err, QP_ERR_NOMEM, where, "out of memory");
            return -1;
        }
        m->e = e;
        m->cap = cap;
    }
    qp_imx_entry *e = &m->e[m->n];
    memset(e, 0, sizeof *e);
    e->name = malloc(len + 1);
    e->sums = calloc((size_t)nv, sizeof *e->sums);
    e->counts = calloc((size_t)n_expert, sizeof *e->counts);
    if (!e->name || !e->sums || !e->counts) {
        free(e->name);
        free(e->sums);
        free(e->counts);
        qp_err_set(err, QP_ERR_NOMEM, where, "out of memory for %lld importance values", (long long)nv);
        return -1;
    }
    memcpy(e->name, name, len);
    e->name[len] = '\0';
    e->n_in = n_in;
    e->n_expert = n_expert;
    slot_put(m->slots, m->n_slots, e, m->n);
    return m->n++;
}

int64_t qp_imatrix_add(qp_imatrix *m, const char *name, int64_t n_in, int64_t n_expert, qp_err *err)
{
    if (!m || !name) {
        qp_err_set(err, QP_ERR_USAGE, NULL, "qp_imatrix_add: bad arguments");
        return -1;
    }
    int64_t i = qp_imatrix_find(m, name);
    if (i >= 0) {
        if (m->e[i].n_in == n_in && m->e[i].n_expert == n_expert)
            return i;
        qp_err_set(err, QP_ERR_USAGE, NULL, "entry exists with %lld columns x %lld experts, not %lld x %lld",
                   (long long)m->e[i].n_in, (long long)m->e[i].n_expert, (long long)n_in, (long long)n_expert);
        qp_err_set_tensor(err, name);
        return -1;
    }
    i = qp_imx_append(m, name, strlen(name), n_in, n_expert, NULL, err);
    if (i < 0 && err && err->tensor[0] == '\0')
        qp_err_set_tensor(err, name);
    return i;
}

int64_t qp_imatrix_count(const qp_imatrix *m) { return m ? m->n : 0; }
int64_t qp_imatrix_find(const qp_imatrix *m, const char *name) { return qp_imx_findn(m, name, strlen(name)); }
const char *qp_imatrix_name(const qp_imatrix *m, int64_t i) { return m->e[i].name; }
int64_t qp_imatrix_n_in(const qp_imatrix *m, int64_t i) { return m->e[i].n_in; }
int64_t qp_imatrix_n_expert(const qp_imatrix *m, int64_t i) { return m->e[i].n_expert; }
const float *qp_imatrix_sums(const qp_imatrix *m, int64_t i) { return m->e[i].sums; }
double qp_imatrix_rows(const qp_imatrix *m, int64_t i, int64_t x) { return m->e[i].counts[x]; }

int qp_imatrix_mean(const qp_imatrix *m, int64_t i, int64_t x, float *out)
{
    const qp_imx_entry *e = &m->e[i];
    double c = e->counts[x];
    if (!(c > 0))
        return 0;
    const float *s = e->sums + x * e->n_in;
    /* Division in double then one rounding to float gives the same result
     * as llama.cpp's float division for counts that are floats (file
     * values); double rounding is innocuous for a quotient. */
    for (int64_t j = 0; j < e->n_in; j++)
        out[j] = (float)((double)s[j] / c);
    return 1;
}

qp_status qp_imx_check_entry(const qp_imatrix *m, int64_t i, const char *path, qp_err *err)
{
    const qp_imx_entry *e = &m->e[i];
    int64_t nv = e->n_in * e->n_expert;
    for (int64_t k = 0; k < nv; k++)
        if (!isfinite(e->sums[k]) || e->sums[k] < 0) {
            qp_err_set(err, QP_ERR_BAD_INPUT, path, "sum of squares %g at column %lld of expert %lld is not a finite "
                       "non-negative number", (double)e->sums[k], (long long)(k % e->n_in), (long long)(k / e->n_in));
            qp_err_set_tensor(err, e->name);
            return QP_ERR_BAD_INPUT;
        }
    for (int64_t x = 0; x < e->n_expert; x++)
        if (!isfinite(e->counts[x]) || e->counts[x] < 0 || e->counts[x] > FLT_MAX) {
            qp_err_set(err, QP_ERR_BAD_INPUT, path, "count %g of expert %lld is not a finite non-negative number",
                       e->counts[x], (long long)x);
            qp_err_set_tensor(err, e->name);
            return QP_ERR_BAD_INPUT;
        }
    return QP_OK;
}

static int cmp_names(const void *a, const void *b, void *ctx)
{
    const qp_imatrix *m = ctx;
    return strcmp(m->e[*(const int64_t *)a].name, m->e[*(const int64_t *)b].name);
}

int64_t *qp_imx_sorted(const qp_imatrix *m)
{
    int64_t *ix = malloc((size_t)(m->n ? m->n : 1) * sizeof *ix);
    if (!ix)
        return NULL;
    for (int64_t i = 0; i < m->n; i++)
        ix[i] = i;
    qsort_r(ix, (size_t)m->n, sizeof *ix, cmp_names, (void *)m);
    return ix;
}

/* ---------------------------------------------------------------- metadata */

qp_imatrix_format qp_imatrix_source_format(const qp_imatrix *m) { return m->format; }
uint32_t qp_imatrix_chunk_count(const qp_imatrix *m) { return m->chunk_count; }
uint32_t qp_imatrix_chunk_size(const qp_imatrix *m) { return m->chunk_size; }
int64_t qp_imatrix_dataset_count(const qp_imatrix *m) { return m->n_ds; }
const char *qp_imatrix_dataset(const qp_imatrix *m, int64_t k) { return m->datasets[k]; }

void qp_imatrix_set_chunks(qp_imatrix *m, uint32_t chunk_count, uint32_t chunk_size)
{
    m->chunk_count = chunk_count;
    m->chunk_size = chunk_size;
}

qp_status qp_imx_add_dataset_n(qp_imatrix *m, const char *s, size_t len, const char *where, qp_err *err)
{
    if (memchr(s, '\0', len))
        return qp_err_set(err, QP_ERR_BAD_INPUT, where, "dataset name contains a NUL byte");
    if (m->n_ds == m->cap_ds) {
        int64_t cap = m->cap_ds ? m->cap_ds * 2 : 4;
        char **d = realloc(m->datasets, (size_t)cap * sizeof *d);
        if (!d)
            return qp_err_set(err, QP_ERR_NOMEM, where, "out of memory");
        m->datasets = d;
        m->cap_ds = cap;
    }
    char *c = malloc(len + 1);
    if (!c)
        return qp_err_set(err, QP_ERR_NOMEM, where, "out of memory");
    memcpy(c, s, len);
    c[len] = '\0';
    m->datasets[m->n_ds++] = c;
    return QP_OK;
}

qp_status qp_imatrix_add_dataset(qp_imatrix *m, const char *name, qp_err *err)
{
    if (!m || !name)
        return qp_err_set(err, QP_ERR_USAGE, NULL, "qp_imatrix_add_dataset: bad arguments");
    return qp_imx_add_dataset_n(m, name, strlen(name), NULL, err);
}

/* ---------------------------------------------------------------- accumulating */

/* Columns summed per pass: a small double accumulator that stays in cache
 * while the rows stream by. */
#define COL_BLOCK 64

qp_status qp_imatrix_accumulate(qp_imatrix *m, int64_t entry, int64_t expert, const float *x, int64_t n_rows,
                                qp_err *err)
{
    if (!m || entry < 0 || entry >= m->n || n_rows < 0 || (n_rows > 0 && !x))
        return qp_err_set(err, QP_ERR_USAGE, NULL, "qp_imatrix_accumulate: bad arguments");
    qp_imx_entry *e = &m->e[entry];
    if (expert < 0 || expert >= e->n_expert) {
        qp_err_set(err, QP_ERR_USAGE, NULL, "expert %lld out of range (%lld experts)", (long long)expert,
                   (long long)e->n_expert);
        qp_err_set_tensor(err, e->name);
        return QP_ERR_USAGE;
    }
    const int64_t n_in = e->n_in;
    /* Check first so a bad batch leaves the entry as it was. */
    for (int64_t r = 0; r < n_rows; r++)
        for (int64_t j = 0; j < n_in; j++)
            if (!isfinite(x[r * n_in + j])) {
                qp_err_set(err, QP_ERR_BAD_INPUT, NULL, "non-finite activation %g in row %lld, column %lld",
                           (double)x[r * n_in + j], (long long)r, (long long)j);
                qp_err_set_tensor(err, e->name);
                return QP_ERR_BAD_INPUT;
            }
    float *s = e->sums + expert * n_in;
    for (int64_t j0 = 0; j0 < n_in; j0 += COL_BLOCK) {
        int64_t nj = n_in - j0 < COL_BLOCK ? n_in - j0 : COL_BLOCK;
        double acc[COL_BLOCK] = {0};
        for (int64_t r = 0; r < n_rows; r++) {
            const float *xr = x + r * n_in + j0;
            for (int64_t j = 0; j < nj; j++)
                acc[j] += (double)xr[j] * (double)xr[j];
        }
        for (int64_t j = 0; j < nj; j++)
            s[j0 + j] = (float)((double)s[j0 + j] + acc[j]);
    }
    e->counts[expert] += (double)n_rows;
    return QP_OK;
}

/* ---------------------------------------------------------------- merging */

qp_status qp_imatrix_merge(qp_imatrix *dst, const qp_imatrix *src, qp_err *err)
{
    if (!dst || !src)
        return qp_err_set(err, QP_ERR_USAGE, NULL, "qp_imatrix_merge: bad arguments");
    for (int64_t i = 0; i < src->n; i++) {
        const qp_imx_entry *b = &src->e[i];
        int64_t k = qp_imatrix_find(dst, b->name);
        if (k >= 0 && (dst->e[k].n_in != b->n_in || dst->e[k].n_expert != b->n_expert)) {
            qp_err_set(err, QP_ERR_BAD_INPUT, NULL, "cannot merge %lld columns x %lld experts into %lld x %lld",
                       (long long)b->n_in, (long long)b->n_expert, (long long)dst->e[k].n_in,
                       (long long)dst->e[k].n_expert);
            qp_err_set_tensor(err, b->name);
            return QP_ERR_BAD_INPUT;
        }
    }
    const int64_t n_src = src->n, n_ds = src->n_ds; /* src may be dst */
    for (int64_t i = 0; i < n_src; i++) {
        const qp_imx_entry *b = &src->e[i];
        int64_t k = qp_imatrix_find(dst, b->name);
        if (k < 0 && (k = qp_imx_append(dst, b->name, strlen(b->name), b->n_in, b->n_expert, NULL, err)) < 0) {
            qp_err_set_tensor(err, src->e[i].name);
            return err ? err->status : QP_ERR_NOMEM;
        }
        b = &src->e[i]; /* append may have moved dst->e, which src may share */
        qp_imx_entry *a = &dst->e[k];
        int64_t nv = a->n_in * a->n_expert;
        for (int64_t j = 0; j < nv; j++)
            a->sums[j] = (float)((double)a->sums[j] + (double)b->sums[j]);
        for (int64_t x = 0; x < a->n_expert; x++)
            a->counts[x] += b->counts[x];
    }
    for (int64_t k = 0; k < n_ds; k++) {
        qp_status s = qp_imatrix_add_dataset(dst, src->datasets[k], err);
        if (s != QP_OK)
            return s;
    }
    if (dst->chunk_size == 0 || src->chunk_size == 0 || dst->chunk_size == src->chunk_size) {
        if (dst->chunk_size == 0)
            dst->chunk_size = src->chunk_size;
        uint64_t c = (uint64_t)dst->chunk_count + src->chunk_count;
        dst->chunk_count = c > UINT32_MAX ? UINT32_MAX : (uint32_t)c;
    } else {
        /* Different chunk sizes: count dst-sized chunks in the busiest
         * entry, which is what llama-imatrix reports after loading files. */
        double most = 0;
        for (int64_t i = 0; i < dst->n; i++)
            for (int64_t x = 0; x < dst->e[i].n_expert; x++)
                if (dst->e[i].counts[x] > most)
                    most = dst->e[i].counts[x];
        double c = floor(most / dst->chunk_size);
        dst->chunk_count = c > UINT32_MAX ? UINT32_MAX : (uint32_t)c;
    }
    return QP_OK;
}

/* ---------------------------------------------------------------- reading */

static const char GGUF_MAGIC[4] = {'G', 'G', 'U', 'F'};

qp_status qp_imatrix_read_memory(const void *buf, size_t size, const char *name, qp_imatrix **out, qp_err *err)
{
    if (!out || (!buf && size))
        return qp_err_set(err, QP_ERR_USAGE, name, "qp_imatrix_read_memory: bad arguments");
    *out = NULL;
    if (!name)
        name = "<memory>";
    if (size >= 4 && memcmp(buf, GGUF_MAGIC, 4) == 0)
        return qp_imx_read_gguf_memory(buf, size, name, out, err);
    return qp_imx_read_dat(buf, size, name, out, err);
}

qp_status qp_imatrix_read(const char *path, qp_imatrix **out, qp_err *err)
{
    if (!path || !out)
        return qp_err_set(err, QP_ERR_USAGE, path, "qp_imatrix_read: bad arguments");
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return qp_err_io(err, path, errno, "cannot open importance matrix");
    char magic[4];
    size_t got = fread(magic, 1, 4, f);
    if (got == 4 && memcmp(magic, GGUF_MAGIC, 4) == 0) {
        fclose(f);
        return qp_imx_read_gguf_file(path, out, err);
    }
    /* Legacy files hold one float per column and expert; read them whole. */
    if (fseeko(f, 0, SEEK_END) != 0) {
        int e = errno;
        fclose(f);
        return qp_err_io(err, path, e, "cannot seek");
    }
    off_t size = ftello(f);
    if (size < 0 || (uint64_t)size > SIZE_MAX / 2 || fseeko(f, 0, SEEK_SET) != 0) {
        int e = errno;
        fclose(f);
        return qp_err_io(err, path, e, "cannot size");
    }
    uint8_t *buf = malloc(size ? (size_t)size : 1);
    if (!buf) {
        fclose(f);
        return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory reading %lld bytes", (long long)size);
    }
    if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
        int e = ferror(f) ? errno : EIO;
        free(buf);
        fclose(f);
        return qp_err_io(err, path, e, "cannot read");
    }
    fclose(f);
    qp_status s = qp_imx_read_dat(buf, (size_t)size, path, out, err);
    free(buf);
    return s;
}
