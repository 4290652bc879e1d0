/* test_covmat.c - covariance files (format/covmat.c): accumulation is
 * x^T x and independent of the thread count, a written file reads back
 * with the same names, shapes, counts and (F32-rounded) values, and
 * hostile files (truncated, wrong type, non-finite or negative values,
 * unpaired tensors, another GGUF kind) are rejected with QP_ERR_BAD_INPUT. */
/* ctest-labels: fast */
#include "support/qp_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/qp_ggml_types.h"
#include "format/covmat.h"
#include "format/gguf.h"

#define NIN 8

static void fill(float *x, int n, uint32_t seed)
{
    for (int i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)((int)(seed >> 9) % 2001 - 1000) / 250.0f;
    }
}

static qp_covmat *make(int n_threads)
{
    qp_covmat *m = qp_covmat_new();
    qp_err err;
    float x[5 * NIN];
    int64_t d = qp_covmat_add(m, "blk.0.attn_q.weight", NIN, 1, &err);
    int64_t s = qp_covmat_add(m, "blk.0.ffn_down_exps.weight", NIN, 3, &err);
    assert_true(d == 0 && s == 1);
    assert_int_equal(qp_covmat_add(m, "blk.0.attn_q.weight", NIN, 1, &err), 0); /* same shape: same entry */
    assert_int_equal(qp_covmat_add(m, "blk.0.attn_q.weight", NIN, 2, &err), -1);
    fill(x, 5 * NIN, 1);
    assert_int_equal(qp_covmat_accumulate(m, d, 0, x, 5, n_threads, &err), QP_OK);
    fill(x, 3 * NIN, 2);
    assert_int_equal(qp_covmat_accumulate(m, s, 2, x, 3, n_threads, &err), QP_OK);
    assert_int_equal(qp_covmat_accumulate(m, s, 2, x, 1, n_threads, &err), QP_OK);
    qp_covmat_set_chunks(m, 4, 512);
    return m;
}

static void test_accumulate(void **state)
{
    (void)state;
    qp_covmat *m = make(1), *m3 = make(3);
    float x[5 * NIN];
    fill(x, 5 * NIN, 1);
    const double *h = qp_covmat_h(m, 0, 0);
    for (int i = 0; i < NIN; i++)
        for (int j = 0; j < NIN; j++) {
            double want = 0;
            for (int r = 0; r < 5; r++)
                want += (double)x[r * NIN + i] * x[r * NIN + j];
            assert_true(fabs(h[i * NIN + j] - want) < 1e-4 * (1 + fabs(want)));
            assert_true(h[i * NIN + j] == h[j * NIN + i]);
        }
    assert_true(qp_covmat_rows(m, 0, 0) == 5);
    assert_true(qp_covmat_rows(m, 1, 2) == 4 && qp_covmat_rows(m, 1, 0) == 0);
    for (int e = 0; e < 2; e++)
        for (int x2 = 0; x2 < qp_covmat_n_expert(m, e); x2++)
            assert_memory_equal(qp_covmat_h(m, e, x2), qp_covmat_h(m3, e, x2), NIN * NIN * sizeof(double));
    float bad[NIN] = {0};
    bad[3] = NAN;
    qp_err err;
    assert_int_equal(qp_covmat_accumulate(m, 0, 0, bad, 1, 1, &err), QP_ERR_BAD_INPUT);
    assert_true(qp_covmat_rows(m, 0, 0) == 5);
    assert_int_equal(qp_covmat_accumulate(m, 1, 3, x, 1, 1, &err), QP_ERR_USAGE);
    assert_int_equal(qp_covmat_copy(m, 0, "blk.0.attn_k.weight", &err), QP_OK);
    assert_memory_equal(qp_covmat_h(m, 2, 0), qp_covmat_h(m, 0, 0), NIN * NIN * sizeof(double));
    qp_covmat_free(m);
    qp_covmat_free(m3);
    qp_covmat_free(NULL);
}

static char *write_tmp(const qp_covmat *m, const char *tag)
{
    char *dir = qp_test_tmpdir(tag);
    char *path = malloc(strlen(dir) + 16);
    sprintf(path, "%s/cov.gguf", dir);
    free(dir);
    qp_err err;
    assert_int_equal(qp_covmat_write(m, path, &err), QP_OK);
    return path;
}

static void test_round_trip(void **state)
{
    (void)state;
    qp_covmat *m = make(2), *r = NULL;
    char *path = write_tmp(m, "covmat-rt");
    qp_err err;
    assert_int_equal(qp_covmat_read(path, &r, &err), QP_OK);
    assert_int_equal(qp_covmat_count(r), 2);
    assert_int_equal(qp_covmat_chunk_count(r), 4);
    assert_int_equal(qp_covmat_chunk_size(r), 512);
    for (int e = 0; e < 2; e++) {
        int64_t k = qp_covmat_find(r, qp_covmat_name(m, e));
        assert_true(k >= 0);
        assert_int_equal(qp_covmat_n_in(r, k), NIN);
        assert_int_equal(qp_covmat_n_expert(r, k), qp_covmat_n_expert(m, e));
        for (int x = 0; x < qp_covmat_n_expert(m, e); x++) {
            assert_true(qp_covmat_rows(r, k, x) == qp_covmat_rows(m, e, x));
            for (int i = 0; i < NIN * NIN; i++)
                assert_true(qp_covmat_h(r, k, x)[i] == (double)(float)qp_covmat_h(m, e, x)[i]);
        }
    }
    /* the file layout documented in covmat.h */
    qp_gguf *g = NULL;
    assert_int_equal(qp_gguf_open(path, &g, &err), QP_OK);
    const qp_gguf_tensor *t = qp_gguf_find_tensor(g, "blk.0.ffn_down_exps.weight.cov");
    assert_non_null(t);
    assert_int_equal(t->n_dims, 3);
    assert_true(t->ne[0] == NIN && t->ne[1] == NIN && t->ne[2] == 3 && t->type == QP_GGML_F32);
    t = qp_gguf_find_tensor(g, "blk.0.attn_q.weight.cov_count");
    assert_non_null(t);
    assert_true(t->ne[0] == 1 && t->nbytes == 4);
    qp_gguf_close(g);
    qp_covmat_free(r);
    qp_covmat_free(m);
    remove(path);
    free(path);
}

static void expect_bad(const void *buf, size_t size, const char *what)
{
    qp_covmat *r = NULL;
    qp_err err;
    qp_status st = qp_covmat_read_memory(buf, size, what, &r, &err);
    if (st != QP_ERR_BAD_INPUT)
        fail_msg("%s: status %d, want BAD_INPUT", what, (int)st);
    assert_null(r);
}

/* Find the first occurrence of a float value in the image (to corrupt it). */
static long find_f32(const uint8_t *buf, size_t size, float v)
{
    for (size_t i = 0; i + 4 <= size; i++)
        if (memcmp(buf + i, &v, 4) == 0)
            return (long)i;
    return -1;
}

static void test_hostile(void **state)
{
    (void)state;
    qp_covmat *m = make(1);
    char *path = write_tmp(m, "covmat-bad");
    size_t size = 0;
    uint8_t *good = qp_test_read_file(path, &size);
    assert_non_null(good);
    uint8_t *buf = malloc(size);
    /* truncations, at every 97th byte (all must fail cleanly) */
    for (size_t cut = 0; cut < size; cut += 97) {
        qp_covmat *r = NULL;
        qp_err err;
        assert_true(qp_covmat_read_memory(good, cut, "truncated", &r, &err) != QP_OK);
        assert_null(r);
    }
    /* a count made negative */
    memcpy(buf, good, size);
    long off = find_f32(buf, size, 5.0f); /* attn_q's count */
    assert_true(off > 0);
    const float neg = -5.0f, nan_v = NAN;
    memcpy(buf + off, &neg, 4);
    expect_bad(buf, size, "negative count");
    /* a matrix value made NaN (the first element of attn_q's H) */
    memcpy(buf, good, size);
    const float h00 = (float)qp_covmat_h(m, 0, 0)[0];
    off = find_f32(buf, size, h00);
    assert_true(off > 0);
    memcpy(buf + off, &nan_v, 4);
    expect_bad(buf, size, "NaN value");
    /* a .cov without its .cov_count: rename the count tensor */
    memcpy(buf, good, size);
    uint8_t *p = memmem(buf, size, "attn_q.weight.cov_count", 23);
    assert_non_null(p);
    memcpy(p, "attn_Q", 6);
    expect_bad(buf, size, "unpaired");
    /* another GGUF kind */
    memcpy(buf, good, size);
    p = memmem(buf, size, "covariance", 10);
    assert_non_null(p);
    memcpy(p, "imatrix___", 10);
    expect_bad(buf, size, "wrong general.type");
    free(buf);
    free(good);
    remove(path);
    free(path);
    qp_covmat_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accumulate),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
