/* spill.c - hidden states between layers, in memory or in a zstd temp file
 * (see spill.h). */
#include "runtime-lite/spill.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

struct qp_rt_spill {
    int64_t n_chunks;
    size_t chunk_bytes;
    uint8_t *ram;          /* in memory: [n_chunks][chunk_bytes] */
    uint8_t *written;      /* [n_chunks] record present */
    /* on disk */
    int fd;                /* -1 in memory */
    char dir[1024];        /* for error messages (the file has no name) */
    uint64_t *off, *len;   /* [n_chunks] frame of each record */
    uint64_t end;          /* bytes in the file */
    void *zbuf;            /* one compressed frame */
    size_t zcap;
    ZSTD_CCtx *cctx;
    ZSTD_DCtx *dctx;
    int level;
};

void qp_rt_spill_free(qp_rt_spill *s)
{
    if (!s)
        return;
    if (s->fd >= 0)
        close(s->fd);
    free(s->ram);
    free(s->written);
    free(s->off);
    free(s->len);
    free(s->zbuf);
    ZSTD_freeCCtx(s->cctx);
    ZSTD_freeDCtx(s->dctx);
    free(s);
}

/* An anonymous file in dir: created with a unique name, unlinked at once. */
static qp_status open_temp(qp_rt_spill *s, const char *tmpdir, qp_err *err)
{
    if (!tmpdir || !tmpdir[0])
        tmpdir = getenv("TMPDIR");
    if (!tmpdir || !tmpdir[0])
        tmpdir = "/tmp";
    snprintf(s->dir, sizeof s->dir, "%s", tmpdir);
    char path[1100];
    snprintf(path, sizeof path, "%s/qpack-spill-XXXXXX", tmpdir);
    s->fd = mkstemp(path);
    if (s->fd < 0)
        return qp_err_io(err, tmpdir, errno, "cannot create a spill file");
    if (unlink(path) != 0) {
        const int e = errno;
        close(s->fd);
        s->fd = -1;
        return qp_err_io(err, path, e, "cannot unlink the spill file");
    }
    return QP_OK;
}

qp_status qp_rt_spill_new(int64_t n_chunks, size_t chunk_bytes, int to_disk, const char *tmpdir, int level,
                          qp_rt_spill **out, qp_err *err)
{
    *out = NULL;
    if (n_chunks < 1 || chunk_bytes == 0 || (uint64_t)n_chunks > SIZE_MAX / chunk_bytes)
        return qp_err_set(err, QP_ERR_USAGE, NULL, "activation store of %lld x %zu bytes", (long long)n_chunks,
                          chunk_bytes);
    qp_rt_spill *s = calloc(1, sizeof *s);
    if (!s)
        return qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory (activation store)");
    s->n_chunks = n_chunks;
    s->chunk_bytes = chunk_bytes;
    s->fd = -1;
    s->written = calloc((size_t)n_chunks, 1);
    int ok = s->written != NULL;
    if (ok && !to_disk) {
        ok = (s->ram = malloc((size_t)n_chunks * chunk_bytes)) != NULL;
    } else if (ok) {
        s->level = level < 1 ? 1 : level > 19 ? 19 : level;
        s->zcap = ZSTD_compressBound(chunk_bytes);
        s->off = calloc((size_t)n_chunks, sizeof *s->off);
        s->len = calloc((size_t)n_chunks, sizeof *s->len);
        s->zbuf = malloc(s->zcap);
        s->cctx = ZSTD_createCCtx();
        s->dctx = ZSTD_createDCtx();
        ok = s->off && s->len && s->zbuf && s->cctx && s->dctx;
    }
    if (!ok) {
        qp_rt_spill_free(s);
        return qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory (activations of %lld chunks of %zu bytes)",
                          (long long)n_chunks, chunk_bytes);
    }
    if (to_disk) {
        qp_status st = open_temp(s, tmpdir, err);
        if (st != QP_OK) {
            qp_rt_spill_free(s);
            return st;
        }
    }
    *out = s;
    return QP_OK;
}

static qp_status check_chunk(const qp_rt_spill *s, int64_t chunk, qp_err *err)
{
    if (chunk < 0 || chunk >= s->n_chunks)
        return qp_err_set(err, QP_ERR_USAGE, NULL, "chunk %lld outside the activation store of %lld",
                          (long long)chunk, (long long)s->n_chunks);
    return QP_OK;
}

qp_status qp_rt_spill_put(qp_rt_spill *s, int64_t chunk, const void *rec, qp_err *err)
{
    qp_status st = check_chunk(s, chunk, err);
    if (st != QP_OK)
        return st;
    if (s->written[chunk])
        return qp_err_set(err, QP_ERR_USAGE, NULL, "chunk %lld stored twice", (long long)chunk);
    if (s->fd < 0) {
        memcpy(s->ram + (size_t)chunk * s->chunk_bytes, rec, s->chunk_bytes);
        s->written[chunk] = 1;
        return QP_OK;
    }
    const size_t n = ZSTD_compressCCtx(s->cctx, s->zbuf, s->zcap, rec, s->chunk_bytes, s->level);
    if (ZSTD_isError(n))
        return qp_err_set(err, QP_ERR_INTERNAL, s->dir, "zstd: %s", ZSTD_getErrorName(n));
    size_t done = 0;
    while (done < n) {
        const ssize_t w = pwrite(s->fd, (const uint8_t *)s->zbuf + done, n - done, (off_t)(s->end + done));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return qp_err_io(err, s->dir, w < 0 ? errno : ENOSPC, "cannot write the spill file");
        done += (size_t)w;
    }
    s->off[chunk] = s->end;
    s->len[chunk] = n;
    s->end += n;
    s->written[chunk] = 1;
    return QP_OK;
}

qp_status qp_rt_spill_get(qp_rt_spill *s, int64_t chunk, void *rec, qp_err *err)
{
    qp_status st = check_chunk(s, chunk, err);
    if (st != QP_OK)
        return st;
    if (!s->written[chunk])
        return qp_err_set(err, QP_ERR_USAGE, NULL, "chunk %lld read before it was stored", (long long)chunk);
    if (s->fd < 0) {
        memcpy(rec, s->ram + (size_t)chunk * s->chunk_bytes, s->chunk_bytes);
        return QP_OK;
    }
    const size_t n = (size_t)s->len[chunk];
    size_t done = 0;
    while (done < n) {
        const ssize_t r = pread(s->fd, (uint8_t *)s->zbuf + done, n - done, (off_t)(s->off[chunk] + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? qp_err_io(err, s->dir, errno, "cannot read the spill file")
                         : qp_err_set(err, QP_ERR_IO, s->dir, "spill file shorter than written");
        done += (size_t)r;
    }
    const size_t got = ZSTD_decompressDCtx(s->dctx, rec, s->chunk_bytes, s->zbuf, n);
    if (ZSTD_isError(got) || got != s->chunk_bytes)
        return qp_err_set(err, QP_ERR_IO, s->dir, "spill file record of chunk %lld is damaged", (long long)chunk);
    return QP_OK;
}

qp_status qp_rt_spill_reset(qp_rt_spill *s, qp_err *err)
{
    memset(s->written, 0, (size_t)s->n_chunks);
    if (s->fd < 0)
        return QP_OK;
    s->end = 0;
    if (ftruncate(s->fd, 0) != 0)
        return qp_err_io(err, s->dir, errno, "cannot truncate the spill file");
    return QP_OK;
}

int qp_rt_spill_on_disk(const qp_rt_spill *s) { return s->fd >= 0; }

uint64_t qp_rt_spill_ram_bytes(const qp_rt_spill *s)
{
    return s->fd < 0 ? (uint64_t)s->n_chunks * s->chunk_bytes : (uint64_t)s->zcap;
}

uint64_t qp_rt_spill_disk_bytes(const qp_rt_spill *s) { return s->fd < 0 ? 0 : s->end; }
