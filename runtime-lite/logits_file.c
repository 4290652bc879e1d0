/* logits_file.c - llama.cpp's --kl-divergence-base file (see logits_file.h). */
#include "runtime-lite/logits_file.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/qp_checked.h"

static const char MAGIC[8] = {'_', 'l', 'o', 'g', 'i', 't', 's', '_'};

struct qp_logits_file {
    FILE *fp;
    int writing;
    char path[1024];
    char tmp[1040];
    int32_t n_ctx, n_vocab, n_chunk;
    int32_t *tokens;
    int64_t records_done;  /* records read or written */
};

int64_t qp_logits_record_len(int64_t n_vocab) { return 2 * ((n_vocab + 1) / 2) + 4; }
int64_t qp_logits_scored_per_chunk(int64_t n_ctx) { return n_ctx - 1 - n_ctx / 2; }

void qp_logits_encode(const float *l, int64_t n_vocab, uint16_t *rec)
{
    float mx = l[0], mn = l[0];
    for (int64_t i = 1; i < n_vocab; i++) {
        if (l[i] > mx)
            mx = l[i];
        if (l[i] < mn)
            mn = l[i];
    }
    if (mn < mx - 16.0f)
        mn = mx - 16.0f;
    double sum = 0.0;
    for (int64_t i = 0; i < n_vocab; i++)
        sum += expf(l[i] - mx);
    const float log_sum = (float)log(sum);
    const float min_log_prob = mn - mx - log_sum;
    const float scale = (mx - mn) / 65535.0f;
    memcpy(rec, &scale, 4);
    memcpy(rec + 2, &min_log_prob, 4);
    uint16_t *q = rec + 4;
    const int64_t nv = qp_logits_record_len(n_vocab);
    memset(q, 0, (size_t)(nv - 4) * sizeof *q);
    if (scale > 0.0f) {
        const float inv = 1.0f / scale;
        for (int64_t i = 0; i < n_vocab; i++)
            if (l[i] > mn) {
                long v = lrintf(inv * (l[i] - mn));
                q[i] = (uint16_t)(v < 0 ? 0 : v > 65535 ? 65535 : v);
            }
    }
}

void qp_logits_decode(const uint16_t *rec, int64_t n_vocab, float *logp)
{
    float scale, min_log_prob;
    memcpy(&scale, rec, 4);
    memcpy(&min_log_prob, rec + 2, 4);
    for (int64_t i = 0; i < n_vocab; i++)
        logp[i] = scale * rec[4 + i] + min_log_prob;
}

static int write_all(FILE *fp, const void *p, size_t n) { return fwrite(p, 1, n, fp) == n; }

qp_status qp_logits_file_create(const char *path, int32_t n_ctx, int32_t n_vocab, int32_t n_chunk,
                                const int32_t *tokens, qp_logits_file **out, qp_err *err)
{
    *out = NULL;
    if (n_ctx < 4 || n_vocab < 1 || n_chunk < 0)
        return qp_err_set(err, QP_ERR_USAGE, path, "bad logits file shape (n_ctx %d, n_vocab %d, chunks %d)",
                          (int)n_ctx, (int)n_vocab, (int)n_chunk);
    qp_logits_file *f = calloc(1, sizeof *f);
    if (!f)
        return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
    f->writing = 1;
    f->n_ctx = n_ctx;
    f->n_vocab = n_vocab;
    f->n_chunk = n_chunk;
    snprintf(f->path, sizeof f->path, "%s", path);
    snprintf(f->tmp, sizeof f->tmp, "%s.tmp", path);
    f->fp = fopen(f->tmp, "wb");
    if (!f->fp) {
        qp_status st = qp_err_io(err, f->tmp, errno, "cannot create");
        free(f);
        return st;
    }
    const int32_t hdr[3] = {n_ctx, n_vocab, n_chunk};
    if (!write_all(f->fp, MAGIC, 8) || !write_all(f->fp, hdr, sizeof hdr) ||
        !write_all(f->fp, tokens, (size_t)n_chunk * (size_t)n_ctx * sizeof(int32_t))) {
        qp_status st = qp_err_io(err, f->tmp, errno, "write failed");
        qp_logits_file_close(f);
        return st;
    }
    *out = f;
    return QP_OK;
}

qp_status qp_logits_file_write(qp_logits_file *f, const uint16_t *records, int64_t n, qp_err *err)
{
    const size_t bytes = (size_t)n * (size_t)qp_logits_record_len(f->n_vocab) * sizeof(uint16_t);
    if (!write_all(f->fp, records, bytes))
        return qp_err_io(err, f->tmp, errno, "write failed");
    f->records_done += n;
    return QP_OK;
}

qp_status qp_logits_file_finish(qp_logits_file *f, qp_err *err)
{
    const int64_t want = (int64_t)f->n_chunk * qp_logits_scored_per_chunk(f->n_ctx);
    qp_status st = QP_OK;
    if (f->records_done != want)
        st = qp_err_set(err, QP_ERR_INTERNAL, f->tmp, "%lld records written, header promises %lld",
                        (long long)f->records_done, (long long)want);
    else if (fflush(f->fp) != 0 || fsync(fileno(f->fp)) != 0)
        st = qp_err_io(err, f->tmp, errno, "flush failed");
    if (st == QP_OK) {
        FILE *fp = f->fp;
        f->fp = NULL;
        if (fclose(fp) != 0)
            st = qp_err_io(err, f->tmp, errno, "close failed");
        else if (rename(f->tmp, f->path) != 0)
            st = qp_err_io(err, f->path, errno, "cannot rename %s to", f->tmp);
        if (st == QP_OK) {
            f->writing = 0; /* nothing to remove any more */
            qp_logits_file_close(f);
            return QP_OK;
        }
    }
    qp_logits_file_close(f);
    return st;
}

qp_status qp_logits_file_open(const char *path, qp_logits_file **out, qp_err *err)
{
    *out = NULL;
    qp_logits_file *f = calloc(1, sizeof *f);
    if (!f)
        return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
    snprintf(f->path, sizeof f->path, "%s", path);
    qp_status st = QP_OK;
    f->fp = fopen(path, "rb");
    struct stat sb;
    if (!f->fp || fstat(fileno(f->fp), &sb) != 0) {
        st = qp_err_io(err, path, errno, "cannot open logits file");
        goto fail;
    }
    const uint64_t fsize = (uint64_t)sb.st_size;
    char magic[8];
    int32_t hdr[3];
    if (fsize < 20 || fread(magic, 1, 8, f->fp) != 8 || memcmp(magic, MAGIC, 8) != 0 ||
        fread(hdr, 1, sizeof hdr, f->fp) != sizeof hdr) {
        st = qp_err_set(err, QP_ERR_BAD_INPUT, path, "not a llama.cpp log-probability file (no _logits_ header)");
        goto fail;
    }
    f->n_ctx = hdr[0];
    f->n_vocab = hdr[1];
    f->n_chunk = hdr[2];
    if (f->n_ctx < 4 || f->n_ctx > (1 << 24) || f->n_vocab < 1 || f->n_vocab > (1 << 28) || f->n_chunk < 0) {
        st = qp_err_set(err, QP_ERR_BAD_INPUT, path, "bad header: n_ctx %d, n_vocab %d, n_chunk %d",
                        (int)f->n_ctx, (int)f->n_vocab, (int)f->n_chunk);
        qp_err_set_offset(err, 8);
        goto fail;
    }
    /* expected size, overflow-checked */
    uint64_t n_tok, tok_bytes, rec_bytes, n_rec, data_bytes, total;
    int ok = qp_mul_u64((uint64_t)f->n_chunk, (uint64_t)f->n_ctx, &n_tok) &&
             qp_mul_u64(n_tok, 4, &tok_bytes) &&
             qp_mul_u64((uint64_t)qp_logits_record_len(f->n_vocab), 2, &rec_bytes) &&
             qp_mul_u64((uint64_t)f->n_chunk, (uint64_t)qp_logits_scored_per_chunk(f->n_ctx), &n_rec) &&
             qp_mul_u64(n_rec, rec_bytes, &data_bytes) && qp_add_u64(20, tok_bytes, &total) &&
             qp_add_u64(total, data_bytes, &total);
    if (!ok || total != fsize) {
        st = qp_err_set(err, QP_ERR_BAD_INPUT, path, "file is %llu bytes, its header implies %llu",
                        (unsigned long long)fsize, ok ? (unsigned long long)total : 0ull);
        goto fail;
    }
    f->tokens = malloc(tok_bytes ? (size_t)tok_bytes : 1);
    if (!f->tokens) {
        st = qp_err_set(err, QP_ERR_NOMEM, path, "out of memory for %llu tokens", (unsigned long long)n_tok);
        goto fail;
    }
    if (fread(f->tokens, 1, (size_t)tok_bytes, f->fp) != (size_t)tok_bytes) {
        st = qp_err_io(err, path, errno, "read failed");
        goto fail;
    }
    for (uint64_t i = 0; i < n_tok; i++)
        if (f->tokens[i] < 0 || f->tokens[i] >= f->n_vocab) {
            st = qp_err_set(err, QP_ERR_BAD_INPUT, path, "token id %d outside the vocabulary of %d",
                            (int)f->tokens[i], (int)f->n_vocab);
            qp_err_set_offset(err, (int64_t)(20 + 4 * i));
            goto fail;
        }
    *out = f;
    return QP_OK;
fail:
    qp_logits_file_close(f);
    return st;
}

int32_t qp_logits_file_n_ctx(const qp_logits_file *f) { return f->n_ctx; }
int32_t qp_logits_file_n_vocab(const qp_logits_file *f) { return f->n_vocab; }
int32_t qp_logits_file_n_chunk(const qp_logits_file *f) { return f->n_chunk; }
const int32_t *qp_logits_file_tokens(const qp_logits_file *f) { return f->tokens; }

qp_status qp_logits_file_read_chunk(qp_logits_file *f, uint16_t *records, qp_err *err)
{
    const int64_t n = qp_logits_scored_per_chunk(f->n_ctx);
    if (f->records_done + n > (int64_t)f->n_chunk * n)
        return qp_err_set(err, QP_ERR_USAGE, f->path, "no chunk left to read");
    const size_t bytes = (size_t)n * (size_t)qp_logits_record_len(f->n_vocab) * sizeof(uint16_t);
    if (fread(records, 1, bytes, f->fp) != bytes)
        return qp_err_set(err, QP_ERR_BAD_INPUT, f->path, "file shrank while reading chunk %lld",
                          (long long)(f->records_done / n));
    f->records_done += n;
    return QP_OK;
}

void qp_logits_file_close(qp_logits_file *f)
{
    if (!f)
        return;
    if (f->fp)
        fclose(f->fp);
    if (f->writing)
        unlink(f->tmp);
    free(f->tokens);
    free(f);
}
