/* test_convert_imatrix.c - `qpack convert --type Q4_K_M --imatrix` on
 * qwen3-tiny end to end: it works, warns about token_embd as llama-quantize
 * does, records the quantize.imatrix.* keys, and the importance changes
 * exactly the tensors the matrix covers, for the better (weighted error vs
 * llama.cpp's own figures); the legacy .dat form of the matrix and
 * `qpack quantize` of a BF16 file give the same tensors. */
/* ctest-labels: slow threads */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/qp_ggml_types.h"
#include "format/gguf.h"
#include "format/imatrix.h"
#include "quant/qtype.h"
#include "support/qp_test.h"

#define IMX "ggml-vectors/imatrix-calib.gguf"

static char *g_dir;

static int setup(void **state)
{
    (void)state;
    g_dir = qp_test_tmpdir("convert-imatrix");
    return g_dir ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    qp_test_rmtree(g_dir);
    free(g_dir);
    return 0;
}

static const char *tmp(const char *name)
{
    static char buf[8][4096];
    static int slot;
    char *p = buf[slot++ % 8];
    snprintf(p, 4096, "%s/%s", g_dir, name);
    return p;
}

static qp_run_result run_ok(const char *what, qp_run_result r)
{
    if (r.exit_code != 0)
        fail_msg("%s failed (%d): %s", what, r.exit_code, r.err);
    return r;
}

static void tensor_name(const qp_gguf_tensor *t, char *buf, size_t n)
{
    snprintf(buf, n, "%.*s", (int)t->name.len, t->name.ptr);
}

static int str_key_is(const qp_gguf *g, const char *key, const char *want)
{
    qp_gguf_str s;
    return qp_gguf_get_str(g, key, &s) && s.len == strlen(want) && memcmp(s.ptr, want, s.len) == 0;
}

static uint64_t u32_key(const qp_gguf *g, const char *key)
{
    int64_t k = qp_gguf_find_key(g, key);
    uint64_t v = 0;
    assert_true(k >= 0);
    assert_int_equal(qp_gguf_kv_type(g, k), QP_GGUF_U32);
    assert_true(qp_gguf_kv_as_u64(g, k, &v));
    return v;
}

static double weighted_rel_rmse(const qp_gguf_tensor *t, const float *src, const float *w)
{
    const qp_qtype *qt = qp_qtype_get(t->type);
    int64_t cols = t->ne[0], rows = t->ne[1];
    uint64_t rb = qp_qtype_row_bytes(t->type, cols);
    float *deq = malloc((size_t)cols * sizeof *deq);
    double num = 0, den = 0;
    for (int64_t r = 0; r < rows; r++) {
        qt->dequantize_row((const uint8_t *)t->data + (uint64_t)r * rb, deq, cols);
        for (int64_t j = 0; j < cols; j++) {
            double d = (double)deq[j] - src[r * cols + j];
            num += w[j] * d * d;
            den += w[j] * (double)src[r * cols + j] * src[r * cols + j];
        }
    }
    free(deq);
    return sqrt(num / den);
}

static void test_q4_k_m(void **state)
{
    (void)state;
    const char *model = qp_fixture("models/qwen3-tiny");
    const char *a = tmp("imat.gguf"), *b = tmp("plain.gguf");
    qp_run_result r = run_ok("convert --imatrix",
                             qp_run_qpack("convert %s --type Q4_K_M --imatrix %s -o %s -q", model, qp_fixture(IMX), a));
    /* llama-imatrix never sees token_embd (a row lookup, not a product). */
    assert_non_null(strstr(r.err, "token_embd.weight: not in the importance matrix"));
    assert_int_equal(qp_count_lines(r.err), 1);
    qp_run_free(&r);
    r = run_ok("convert", qp_run_qpack("convert %s --type Q4_K_M -o %s -q", model, b));
    qp_run_free(&r);

    qp_gguf *ga = NULL, *gb = NULL;
    assert_int_equal(qp_gguf_open(a, &ga, NULL), QP_OK);
    assert_int_equal(qp_gguf_open(b, &gb, NULL), QP_OK);
    qp_imatrix *m = NULL;
    assert_int_equal(qp_imatrix_read(qp_fixture(IMX), &m, NULL), QP_OK);
    assert_true(str_key_is(ga, "quantize.imatrix.file", "imatrix-calib.gguf"));
    assert_true(str_key_is(ga, "quantize.imatrix.dataset", qp_imatrix_dataset(m, 0)));
    assert_int_equal(u32_key(ga, "quantize.imatrix.entries_count"), 28);
    assert_int_equal(u32_key(ga, "quantize.imatrix.chunks_count"), 114);
    assert_int_equal(qp_gguf_find_key(gb, "quantize.imatrix.file"), -1);

    /* Same tensors and types; bytes differ exactly where the matrix has data. */
    assert_int_equal(qp_gguf_tensor_count(ga), qp_gguf_tensor_count(gb));
    int changed = 0;
    for (int64_t i = 0; i < qp_gguf_tensor_count(ga); i++) {
        const qp_gguf_tensor *ta = qp_gguf_tensor_at(ga, i), *tb = qp_gguf_tensor_at(gb, i);
        char name[128];
        tensor_name(ta, name, sizeof name);
        assert_int_equal(ta->type, tb->type);
        assert_int_equal(ta->nbytes, tb->nbytes);
        int differs = memcmp(ta->data, tb->data, ta->nbytes) != 0;
        int covered = qp_imatrix_find(m, name) >= 0;
        if (differs != covered)
            fail_msg("%s (%s): %s", name, qp_ggml_type_name(ta->type),
                     covered ? "importance had no effect" : "changed without importance data");
        changed += differs;
    }
    assert_int_equal(changed, 28);

    /* Better where it counts, and as good as llama.cpp with the same matrix. */
    const char *names[2] = {"blk.0.ffn_down.weight", "blk.1.attn_q.weight"};
    for (int k = 0; k < 2; k++) {
        const qp_gguf_tensor *ta = qp_gguf_find_tensor(ga, names[k]), *tb = qp_gguf_find_tensor(gb, names[k]);
        char path[128];
        snprintf(path, sizeof path, "ggml-vectors/%s.src.f32", names[k]);
        size_t n;
        float *src = qp_test_read_file(qp_fixture(path), &n);
        float *w = malloc((size_t)ta->ne[0] * sizeof *w);
        assert_int_equal(qp_imatrix_mean(m, qp_imatrix_find(m, names[k]), 0, w), 1);
        double ea = weighted_rel_rmse(ta, src, w), eb = weighted_rel_rmse(tb, src, w);
        print_message("%s %s: weighted rel rmse %.6f with importance, %.6f without\n", names[k],
                      qp_ggml_type_name(ta->type), ea, eb);
        assert_true(ea < eb);
        free(w);
        free(src);
    }
    qp_imatrix_free(m);

    /* The same matrix as a legacy .dat file: same keys, tensors within rounding. */
    const char *dat = tmp("calib.dat"), *c = tmp("imat-dat.gguf");
    r = run_ok("imatrix convert", qp_run_qpack("imatrix convert %s -o %s", qp_fixture(IMX), dat));
    qp_run_free(&r);
    r = run_ok("convert --imatrix dat", qp_run_qpack("convert %s --type Q4_K_M --imatrix %s -o %s -q", model, dat, c));
    qp_run_free(&r);
    qp_gguf *gc = NULL;
    assert_int_equal(qp_gguf_open(c, &gc, NULL), QP_OK);
    assert_true(str_key_is(gc, "quantize.imatrix.file", "calib.dat"));
    assert_int_equal(u32_key(gc, "quantize.imatrix.entries_count"), 28);
    assert_int_equal(u32_key(gc, "quantize.imatrix.chunks_count"), 114);
    qp_gguf_close(gc);

    /* Requantizing a BF16 file with the matrix gives convert's tensors. */
    const char *bf = tmp("bf16.gguf"), *q = tmp("requant.gguf");
    r = run_ok("convert bf16", qp_run_qpack("convert %s --type bf16 -o %s -q", model, bf));
    qp_run_free(&r);
    r = run_ok("quantize --imatrix", qp_run_qpack("quantize %s %s Q4_K_M --imatrix %s -q", bf, q, qp_fixture(IMX)));
    qp_run_free(&r);
    qp_gguf *gq = NULL;
    assert_int_equal(qp_gguf_open(q, &gq, NULL), QP_OK);
    assert_true(str_key_is(gq, "quantize.imatrix.file", "imatrix-calib.gguf"));
    for (int64_t i = 0; i < qp_gguf_tensor_count(ga); i++) {
        const qp_gguf_tensor *ta = qp_gguf_tensor_at(ga, i);
        char name[128];
        tensor_name(ta, name, sizeof name);
        const qp_gguf_tensor *tq = qp_gguf_find_tensor(gq, name);
        assert_non_null(tq);
        assert_int_equal(tq->type, ta->type);
        if (memcmp(tq->data, ta->data, ta->nbytes) != 0)
            fail_msg("%s: quantize --imatrix differs from convert --imatrix", name);
    }
    qp_gguf_close(gq);
    qp_gguf_close(ga);
    qp_gguf_close(gb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_q4_k_m),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
