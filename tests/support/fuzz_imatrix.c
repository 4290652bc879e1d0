/* fuzz_imatrix.c - fuzz target and seeds for the importance-matrix reader
 * (llama.cpp's GGUF form and the legacy .dat form). */
#include "support/fuzz_targets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "format/imatrix.h"

#define IMATRIX_NAME "fuzz/imatrix.gguf"

int qp_fuzz_imatrix(const uint8_t *data, size_t size)
{
    qp_err err;
    qp_err_clear(&err);
    qp_imatrix *m = NULL;
    qp_status st = qp_imatrix_read_memory(data, size, IMATRIX_NAME, &m, &err);
    qp_fuzz_check_err(&err, st, IMATRIX_NAME);
    if (st != QP_OK)
        return 0;
    volatile float sink = 0;
    for (int64_t e = 0; e < qp_imatrix_count(m); e++) {
        const char *name = qp_imatrix_name(m, e);
        int64_t n_in = qp_imatrix_n_in(m, e), n_ex = qp_imatrix_n_expert(m, e);
        if (!name || n_in < 1 || n_ex < 1 || qp_imatrix_find(m, name) != e)
            abort();
        const float *s = qp_imatrix_sums(m, e);
        sink += s[0] + s[n_in * n_ex - 1];
        float *mean = malloc((size_t)n_in * sizeof *mean);
        if (!mean)
            abort();
        for (int64_t x = 0; x < n_ex; x++) {
            double rows = qp_imatrix_rows(m, e, x);
            if (!(rows >= 0))
                abort(); /* the reader promises non-negative counts */
            if (qp_imatrix_mean(m, e, x, mean))
                sink += mean[0] + mean[n_in - 1];
        }
        free(mean);
    }
    for (int64_t k = 0; k < qp_imatrix_dataset_count(m); k++)
        if (!qp_imatrix_dataset(m, k))
            abort();
    /* Merging a validated matrix into an empty one cannot fail but on memory. */
    qp_imatrix *d = qp_imatrix_new();
    qp_err_clear(&err);
    if (d && qp_imatrix_merge(d, m, &err) != QP_OK && err.status != QP_ERR_NOMEM)
        abort();
    qp_imatrix_free(d);
    qp_imatrix_free(m);
    (void)sink;
    return 1;
}

/* A small matrix written through the library in both formats. */
static void written_seed(qp_fuzz_seed_fn emit, void *ctx, int legacy, int *failed)
{
    qp_imatrix *m = qp_imatrix_new();
    qp_err err;
    float x[2 * 32];
    for (int i = 0; i < 64; i++)
        x[i] = (float)(i % 7) * 0.25f;
    int64_t a = m ? qp_imatrix_add(m, "blk.0.attn_q.weight", 32, 1, &err) : -1;
    int64_t b = m ? qp_imatrix_add(m, "blk.0.ffn_down_exps.weight", 32, 3, &err) : -1;
    if (a < 0 || b < 0 || qp_imatrix_accumulate(m, a, 0, x, 2, &err) != QP_OK ||
        qp_imatrix_accumulate(m, b, 1, x, 1, &err) != QP_OK || qp_imatrix_add_dataset(m, "calib.txt", &err) != QP_OK) {
        qp_imatrix_free(m);
        fprintf(stderr, "fuzz seeds: imatrix: %s\n", err.msg);
        *failed = 1;
        return;
    }
    qp_imatrix_set_chunks(m, 2, 512);
    char path[4096];
    const char *base = getenv("QP_TEST_TMP");
    snprintf(path, sizeof path, "%s/qp-fuzz-imatrix-%d.%s", base && *base ? base : "/tmp", (int)getpid(),
             legacy ? "dat" : "gguf");
    qp_status st = legacy ? qp_imatrix_write_legacy(m, path, &err) : qp_imatrix_write(m, path, &err);
    qp_imatrix_free(m);
    FILE *f = st == QP_OK ? fopen(path, "rb") : NULL;
    unsigned char buf[1 << 16];
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f)
        fclose(f);
    unlink(path);
    if (!n) {
        fprintf(stderr, "fuzz seeds: cannot write %s: %s\n", path, err.msg);
        *failed = 1;
        return;
    }
    emit(ctx, "imatrix", legacy ? "valid-written-legacy" : "valid-written-gguf", buf, n);
}

int qp_fuzz_imatrix_seeds(qp_fuzz_seed_fn emit, void *ctx)
{
    int failed = 0;
    static const char *const fixtures[][2] = {
        {"valid-fixture", "ggml-vectors/imatrix-calib.gguf"},
        {"valid-fixture-moe", "ggml-vectors/imatrix-calib-moe.gguf"},
    };
    for (int i = 0; i < 2; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", QP_FIXTURES, fixtures[i][1]);
        FILE *f = fopen(path, "rb");
        unsigned char *buf = malloc(1 << 20);
        size_t n = f && buf ? fread(buf, 1, 1 << 20, f) : 0;
        if (f)
            fclose(f);
        if (n)
            emit(ctx, "imatrix", fixtures[i][0], buf, n);
        else {
            fprintf(stderr, "fuzz seeds: cannot read %s\n", path);
            failed = 1;
        }
        free(buf);
    }
    written_seed(emit, ctx, 0, &failed);
    written_seed(emit, ctx, 1, &failed);
    return failed ? -1 : 0;
}
