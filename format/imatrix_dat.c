/* imatrix_dat.c - llama.cpp's legacy importance matrix file (.dat).
 *
 * Layout (little-endian):
 *   int32 n_entries (>= 1)
 *   n_entries x { int32 name_len, name bytes, int32 ncall, int32 nval,
 *                 float values[nval] }
 *   optionally: int32 last_call, then int32 len + dataset name bytes.
 * values[] is mean(x^2) * ncall per column (experts concatenated), where
 * ncall = ceil(max count / chunk_size); an expert without data stores
 * 1 * ncall. Readers divide by ncall again. The chunk size is not stored:
 * we assume 512 (llama-imatrix's default) and keep sums = values * 512 and
 * count = ncall * 512, so sums / count is the stored mean, as llama-imatrix
 * itself reconstructs it. ncall = 0 means the values are the means. */
#include "format/imatrix_impl.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const uint8_t *p;
    size_t size, off;
    const char *path;
    qp_err *err;
} cursor;

static qp_status fail(cursor *c, size_t at, const char *fmt, const char *what)
{
    qp_err_set(c->err, QP_ERR_BAD_INPUT, c->path, fmt, what);
    qp_err_set_offset(c->err, (int64_t)at);
    return QP_ERR_BAD_INPUT;
}

static int get_i32(cursor *c, int32_t *v)
{
    if (c->size - c->off < 4)
        return 0;
    const uint8_t *q = c->p + c->off;
    *v = (int32_t)((uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24);
    c->off += 4;
    return 1;
}

static float get_f32(const uint8_t *q)
{
    uint32_t u = (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static qp_status read_entry(cursor *c, qp_imatrix *m, int32_t k)
{
    char what[64];
    int32_t len, ncall, nval;
    size_t at = c->off;
    snprintf(what, sizeof what, "entry %d", (int)k);
    if (!get_i32(c, &len))
        return fail(c, at, "truncated: %s has no name length", what);
    if (len < 1 || (size_t)len > c->size - c->off)
        return fail(c, at, "%s: name length out of range", what);
    const char *name = (const char *)c->p + c->off;
    if (qp_imx_check_name(name, (size_t)len, c->path, c->err) != QP_OK) {
        qp_err_set_offset(c->err, (int64_t)c->off);
        return QP_ERR_BAD_INPUT;
    }
    char tname[QP_IMATRIX_MAX_NAME + 1];
    memcpy(tname, name, (size_t)len);
    tname[len] = '\0';
    if (qp_imx_findn(m, name, (size_t)len) >= 0) {
        fail(c, at, "%s: duplicate entry name", what);
        qp_err_set_tensor(c->err, tname);
        return QP_ERR_BAD_INPUT;
    }
    c->off += (size_t)len;
    at = c->off;
    if (!get_i32(c, &ncall) || !get_i32(c, &nval)) {
        fail(c, at, "truncated: %s has no call and value counts", what);
        qp_err_set_tensor(c->err, tname);
        return QP_ERR_BAD_INPUT;
    }
    if (ncall < 0 || nval < 1 || (size_t)nval > (c->size - c->off) / 4) {
        fail(c, at, ncall < 0 ? "%s: negative call count" : "%s: value count out of range", what);
        qp_err_set_tensor(c->err, tname);
        return QP_ERR_BAD_INPUT;
    }
    int64_t i = qp_imx_append(m, name, (size_t)len, nval, 1, c->path, c->err);
    if (i < 0)
        return c->err ? c->err->status : QP_ERR_NOMEM;
    qp_imx_entry *e = &m->e[i];
    const double chunk = QP_IMATRIX_LEGACY_CHUNK_SIZE;
    for (int32_t j = 0; j < nval; j++) {
        float v = get_f32(c->p + c->off + 4 * (size_t)j);
        float s = v * (float)chunk; /* exact: a power of two */
        if (!isfinite(v) || v < 0 || !isfinite(s)) {
            char msg[96];
            snprintf(msg, sizeof msg, "value %d = %g is not a finite non-negative number", (int)j, (double)v);
            fail(c, c->off + 4 * (size_t)j, "%s", msg);
            qp_err_set_tensor(c->err, tname);
            return QP_ERR_BAD_INPUT;
        }
        e->sums[j] = s;
    }
    e->counts[0] = ncall > 0 ? (double)ncall * chunk : chunk;
    c->off += 4 * (size_t)nval;
    return QP_OK;
}

qp_status qp_imx_read_dat(const uint8_t *buf, size_t size, const char *name, qp_imatrix **out, qp_err *err)
{
    cursor c = {buf, size, 0, name, err};
    int32_t n;
    if (!get_i32(&c, &n))
        return fail(&c, 0, "%s", "not an importance matrix: neither GGUF nor a legacy file (too short)");
    /* Each entry takes at least 17 bytes: reject counts the file cannot hold. */
    if (n < 1 || (size_t)n > (size - 4) / 17)
        return fail(&c, 0, "%s", "not an importance matrix: neither GGUF nor a legacy file (bad entry count)");
    qp_imatrix *m = qp_imatrix_new();
    if (!m)
        return qp_err_set(err, QP_ERR_NOMEM, name, "out of memory");
    m->format = QP_IMATRIX_FORMAT_LEGACY;
    m->chunk_size = QP_IMATRIX_LEGACY_CHUNK_SIZE;
    qp_status s = QP_OK;
    for (int32_t k = 0; k < n && s == QP_OK; k++)
        s = read_entry(&c, m, k);
    /* Optional trailer: chunk count, then the dataset name. */
    int32_t last = 0, len = 0;
    size_t at = c.off;
    if (s == QP_OK && c.off < size) {
        if (!get_i32(&c, &last) || last < 0)
            s = fail(&c, at, "%s", last < 0 ? "negative chunk count" : "truncated chunk count");
        else
            m->chunk_count = (uint32_t)last;
    }
    at = c.off;
    if (s == QP_OK && c.off < size) {
        if (!get_i32(&c, &len) || len < 0 || (size_t)len > size - c.off)
            s = fail(&c, at, "%s", "dataset name length out of range");
        else if (len > 0)
            s = qp_imx_add_dataset_n(m, (const char *)buf + c.off, (size_t)len, name, err);
        c.off += s == QP_OK ? (size_t)len : 0;
    }
    if (s == QP_OK && c.off != size)
        s = fail(&c, c.off, "%s", "trailing bytes after the dataset name");
    if (s != QP_OK) {
        qp_imatrix_free(m);
        return s;
    }
    *out = m;
    return QP_OK;
}

/* ---------------------------------------------------------------- writing */

static void put_i32(FILE *f, int32_t v)
{
    uint32_t u = (uint32_t)v;
    uint8_t b[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
    fwrite(b, 1, 4, f);
}

static void put_f32(FILE *f, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    put_i32(f, (int32_t)u);
}

/* The call count llama-imatrix stores: chunks in the busiest expert,
 * rounded up so no entry with data gets 0. -1 when the entry has no data. */
static int64_t entry_ncall(const qp_imx_entry *e, double chunk)
{
    double most = 0;
    for (int64_t x = 0; x < e->n_expert; x++)
        if (e->counts[x] > most)
            most = e->counts[x];
    return most > 0 ? (int64_t)ceil(most / chunk) : -1;
}

qp_status qp_imatrix_write_legacy(const qp_imatrix *m, const char *path, qp_err *err)
{
    if (!m || !path)
        return qp_err_set(err, QP_ERR_USAGE, path, "qp_imatrix_write_legacy: bad arguments");
    const double chunk = m->chunk_size ? m->chunk_size : QP_IMATRIX_LEGACY_CHUNK_SIZE;
    int32_t n_store = 0;
    for (int64_t i = 0; i < m->n; i++) {
        qp_status s = qp_imx_check_entry(m, i, path, err);
        if (s != QP_OK)
            return s;
        int64_t nc = entry_ncall(&m->e[i], chunk);
        if (nc > INT32_MAX || m->e[i].n_in * m->e[i].n_expert > INT32_MAX) {
            qp_err_set(err, QP_ERR_UNSUPPORTED, path, "entry too large for the legacy format");
            qp_err_set_tensor(err, m->e[i].name);
            return QP_ERR_UNSUPPORTED;
        }
        n_store += nc > 0;
    }
    if (n_store == 0)
        return qp_err_set(err, QP_ERR_USAGE, path, "importance matrix has no entry with data");
    char tmp[4200];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
        return qp_err_set(err, QP_ERR_USAGE, path, "path too long");
    int64_t *ix = qp_imx_sorted(m);
    if (!ix)
        return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        free(ix);
        return qp_err_io(err, tmp, errno, "cannot create");
    }
    put_i32(f, n_store);
    for (int64_t k = 0; k < m->n; k++) {
        const qp_imx_entry *e = &m->e[ix[k]];
        int64_t ncall = entry_ncall(e, chunk);
        if (ncall < 0)
            continue; /* no data at all: llama-imatrix skips it too */
        put_i32(f, (int32_t)strlen(e->name));
        fwrite(e->name, 1, strlen(e->name), f);
        put_i32(f, (int32_t)ncall);
        put_i32(f, (int32_t)(e->n_in * e->n_expert));
        for (int64_t x = 0; x < e->n_expert; x++) {
            double c = e->counts[x];
            for (int64_t j = 0; j < e->n_in; j++) {
                /* In double, so reading and rewriting a file gives back
                 * its bytes (llama.cpp computes in float). */
                double mean = c > 0 ? (double)e->sums[x * e->n_in + j] / c : 1.0;
                put_f32(f, (float)(mean * (double)ncall));
            }
        }
    }
    put_i32(f, m->chunk_count > INT32_MAX ? INT32_MAX : (int32_t)m->chunk_count);
    const char *ds = m->n_ds ? m->datasets[m->n_ds - 1] : "";
    size_t dl = strlen(ds) > INT32_MAX ? INT32_MAX : strlen(ds);
    put_i32(f, (int32_t)dl);
    fwrite(ds, 1, dl, f);
    free(ix);
    int bad = ferror(f);
    int e = errno;
    if (fflush(f) != 0 || fsync(fileno(f)) != 0)
        bad = 1, e = errno;
    if (fclose(f) != 0 && !bad)
        bad = 1, e = errno;
    if (bad) {
        unlink(tmp);
        return qp_err_io(err, tmp, e ? e : EIO, "cannot write");
    }
    if (rename(tmp, path) != 0) {
        e = errno;
        unlink(tmp);
        return qp_err_io(err, path, e, "cannot rename %s into place", tmp);
    }
    return QP_OK;
}
