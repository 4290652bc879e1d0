/* test_importance.c - importance matrices applied by the converter, in
 * process and on a few tensors (the rest stays BF16, so this is quick):
 * the vectors handed to the quantizers are llama.cpp's in_sum2 / counts,
 * per expert, uniform for the expert calibration never reached; they lower
 * the importance-weighted error as llama.cpp's do; quantize.imatrix.* keys;
 * shape mismatches and matrices for another model are refused. */
/* ctest-labels: fast */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/qp_ggml_types.h"
#include "convert/convert.h"
#include "convert/importance.h"
#include "convert/job.h"
#include "format/gguf.h"
#include "format/imatrix.h"
#include "quant/qtype.h"
#include "support/qp_test.h"

#define DENSE_IMX "ggml-vectors/imatrix-calib.gguf"
#define MOE_IMX "ggml-vectors/imatrix-calib-moe.gguf"

static char *g_dir;

static int setup(void **state)
{
    (void)state;
    g_dir = qp_test_tmpdir("convert-importance");
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
    static char buf[4][4096];
    static int slot;
    char *p = buf[slot++ % 4];
    snprintf(p, 4096, "%s/%s", g_dir, name);
    return p;
}

/* A BF16 job in which only the tensors matching `pattern` are quantized. */
static qp_status open_job(const char *model, const char *pattern, uint32_t type, const char *imatrix, qp_job **job,
                          qp_err *err)
{
    qp_job_options jo;
    memset(&jo, 0, sizeof jo);
    const char *pats[1] = {pattern};
    uint32_t types[1] = {type};
    jo.preset = "BF16";
    jo.output_type = -1;
    jo.token_embd_type = -1;
    jo.n_overrides = pattern ? 1 : 0;
    jo.override_patterns = pats;
    jo.override_types = types;
    jo.imatrix_path = imatrix;
    qp_err_clear(err);
    return qp_job_open(qp_fixture(model), &jo, job, err);
}

static qp_job *open_job_ok(const char *model, const char *pattern, uint32_t type, const char *imatrix)
{
    qp_job *job = NULL;
    qp_err err;
    if (open_job(model, pattern, type, imatrix, &job, &err) != QP_OK) {
        char msg[2048];
        qp_err_format(&err, msg, sizeof msg);
        fail_msg("job: %s", msg);
    }
    return job;
}

static void run_job(const qp_job *job, const char *model, const char *out)
{
    qp_convert_options opt;
    qp_job_convert_options(job, &opt);
    opt.out_path = out;
    opt.n_threads = 2;
    qp_err err;
    qp_err_clear(&err);
    qp_status s = qp_convert_plan(qp_job_plan(job), qp_fixture(model), &opt, NULL, &err);
    if (s != QP_OK) {
        char msg[2048];
        qp_err_format(&err, msg, sizeof msg);
        fail_msg("convert: %s", msg);
    }
}

static const qp_gguf_tensor *tensor(const qp_gguf *g, const char *name)
{
    const qp_gguf_tensor *t = qp_gguf_find_tensor(g, name);
    assert_non_null(t);
    return t;
}

/* sqrt(sum w (deq - src)^2 / sum w src^2) over a whole tensor (w: row_len
 * column weights), the figure ggml-vectors/vectors.json reports. */
static double weighted_rel_rmse(const qp_gguf_tensor *t, const float *src, const float *w)
{
    const qp_qtype *qt = qp_qtype_get(t->type);
    assert_non_null(qt);
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

static double ggml_figure(const char *tag, const char *tensor_name)
{
    size_t n;
    char *json = qp_test_read_file(qp_fixture("ggml-vectors/vectors.json"), &n);
    assert_non_null(json);
    /* "<tag>": { ... "<tensor>": { ... "imatrix_weighted_rel_rmse": X */
    char key[128];
    snprintf(key, sizeof key, "\"%s\"", tag);
    char *p = strstr(json, key);
    assert_non_null(p);
    snprintf(key, sizeof key, "\"%s\"", tensor_name);
    p = strstr(p, key);
    assert_non_null(p);
    p = strstr(p, "\"imatrix_weighted_rel_rmse\":");
    assert_non_null(p);
    double v = strtod(p + strlen("\"imatrix_weighted_rel_rmse\":"), NULL);
    free(json);
    return v;
}

/* The importance of a dense tensor is the fixture's in_sum2 / counts. */
static void test_vectors_are_llama_means(void **state)
{
    (void)state;
    qp_job *job = open_job_ok("models/qwen3-tiny", "ffn_down|attn_q\\.", QP_GGML_Q4_K, qp_fixture(DENSE_IMX));
    const qp_importance *imp = qp_job_importance(job);
    assert_non_null(imp);
    assert_int_equal(qp_importance_used_count(imp), 8); /* 4 x ffn_down + 4 x attn_q */
    assert_int_equal(qp_importance_missing_count(imp), 0);
    assert_int_equal(qp_importance_empty_experts(imp), 0);
    const qp_plan *plan = qp_job_plan(job);
    qp_gguf *g = NULL;
    assert_int_equal(qp_gguf_open(qp_fixture(DENSE_IMX), &g, NULL), QP_OK);
    for (int64_t i = 0; i < qp_plan_count(plan); i++) {
        const qp_plan_tensor *t = qp_plan_at(plan, i);
        const float *v = qp_importance_get((void *)imp, plan, i, 0);
        if (qp_job_type(job, i) != QP_GGML_Q4_K) {
            assert_null(v);
            continue;
        }
        assert_non_null(v);
        char name[160];
        snprintf(name, sizeof name, "%s.in_sum2", t->name);
        const float *s = tensor(g, name)->data;
        snprintf(name, sizeof name, "%s.counts", t->name);
        const float c = *(const float *)tensor(g, name)->data;
        for (int64_t j = 0; j < t->row_len; j++)
            assert_true(v[j] == s[j] / c); /* llama-quantize: float sum / float count */
    }
    qp_gguf_close(g);
    qp_job_free(job);
}

/* Q4_K with importance: the weighted error drops below plain Q4_K's and
 * lands on llama.cpp's own figure for the same tensor and matrix. */
static void test_dense_q4_k_quality(void **state)
{
    (void)state;
    const char *names[2] = {"blk.0.ffn_down.weight", "blk.1.attn_q.weight"};
    const char *pat = "blk\\.0\\.ffn_down\\.weight|blk\\.1\\.attn_q\\.weight";
    qp_job *with = open_job_ok("models/qwen3-tiny", pat, QP_GGML_Q4_K, qp_fixture(DENSE_IMX));
    qp_job *without = open_job_ok("models/qwen3-tiny", pat, QP_GGML_Q4_K, NULL);
    assert_null(qp_job_importance(without));
    const char *a = tmp("with.gguf"), *b = tmp("without.gguf");
    run_job(with, "models/qwen3-tiny", a);
    run_job(without, "models/qwen3-tiny", b);
    qp_gguf *ga = NULL, *gb = NULL;
    assert_int_equal(qp_gguf_open(a, &ga, NULL), QP_OK);
    assert_int_equal(qp_gguf_open(b, &gb, NULL), QP_OK);
    qp_imatrix *m = NULL;
    assert_int_equal(qp_imatrix_read(qp_fixture(DENSE_IMX), &m, NULL), QP_OK);
    for (int k = 0; k < 2; k++) {
        const qp_gguf_tensor *ta = tensor(ga, names[k]), *tb = tensor(gb, names[k]);
        assert_int_equal(ta->type, QP_GGML_Q4_K);
        assert_int_equal(ta->nbytes, tb->nbytes);
        assert_true(memcmp(ta->data, tb->data, ta->nbytes) != 0);
        char src_name[128];
        snprintf(src_name, sizeof src_name, "ggml-vectors/%s.src.f32", names[k]);
        size_t n;
        float *src = qp_test_read_file(qp_fixture(src_name), &n);
        assert_int_equal(n, (size_t)(ta->ne[0] * ta->ne[1]) * sizeof(float));
        float *w = malloc((size_t)ta->ne[0] * sizeof *w);
        assert_int_equal(qp_imatrix_mean(m, qp_imatrix_find(m, names[k]), 0, w), 1);
        double ea = weighted_rel_rmse(ta, src, w), eb = weighted_rel_rmse(tb, src, w);
        double ggml = ggml_figure("imat-Q4_K_S", names[k]);
        print_message("%s: weighted rel rmse %.6f with importance, %.6f without; llama.cpp %.6f\n", names[k], ea,
                      eb, ggml);
        assert_true(ea < eb * 0.97);
        assert_true(ea <= ggml * 1.01);
        free(w);
        free(src);
    }
    /* Tensors left BF16 are the same bytes; the keys are recorded. */
    assert_memory_equal(tensor(ga, "blk.0.attn_k.weight")->data, tensor(gb, "blk.0.attn_k.weight")->data,
                        tensor(gb, "blk.0.attn_k.weight")->nbytes);
    qp_gguf_str s;
    uint64_t u;
    assert_true(qp_gguf_get_str(ga, "quantize.imatrix.file", &s));
    assert_int_equal(s.len, strlen("imatrix-calib.gguf"));
    assert_memory_equal(s.ptr, "imatrix-calib.gguf", s.len);
    assert_true(qp_gguf_get_str(ga, "quantize.imatrix.dataset", &s));
    assert_int_equal(s.len, strlen(qp_imatrix_dataset(m, 0)));
    assert_memory_equal(s.ptr, qp_imatrix_dataset(m, 0), s.len);
    int64_t k = qp_gguf_find_key(ga, "quantize.imatrix.entries_count");
    assert_true(k >= 0 && qp_gguf_kv_type(ga, k) == QP_GGUF_U32 && qp_gguf_kv_as_u64(ga, k, &u) && u == 28);
    k = qp_gguf_find_key(ga, "quantize.imatrix.chunks_count");
    assert_true(k >= 0 && qp_gguf_kv_type(ga, k) == QP_GGUF_U32 && qp_gguf_kv_as_u64(ga, k, &u) && u == 114);
    assert_int_equal(qp_gguf_find_key(gb, "quantize.imatrix.file"), -1);
    qp_imatrix_free(m);
    qp_gguf_close(ga);
    qp_gguf_close(gb);
    qp_job_free(with);
    qp_job_free(without);
}

/* Stacked experts: each expert's rows are quantized with that expert's
 * means; expert 13 of layer 1, never routed to, with uniform weights.
 * (Q4_0, which also takes importance, keeps this quick under ASan.) */
static void test_moe_per_expert(void **state)
{
    (void)state;
    const char *name = "blk.1.ffn_gate_exps.weight";
    qp_job *job = open_job_ok("models/qwen3-moe-tiny", "blk\\.1\\.ffn_gate_exps", QP_GGML_Q4_0, qp_fixture(MOE_IMX));
    const qp_importance *imp = qp_job_importance(job);
    assert_int_equal(qp_importance_used_count(imp), 1);
    assert_int_equal(qp_importance_empty_experts(imp), 1);
    const qp_plan *plan = qp_job_plan(job);
    int64_t i = qp_plan_find(plan, name);
    assert_true(i >= 0);
    const qp_plan_tensor *t = qp_plan_at(plan, i);
    assert_int_equal(t->n_expert, 16);
    qp_imatrix *m = NULL;
    assert_int_equal(qp_imatrix_read(qp_fixture(MOE_IMX), &m, NULL), QP_OK);
    int64_t e = qp_imatrix_find(m, name);
    const char *out = tmp("moe.gguf");
    run_job(job, "models/qwen3-moe-tiny", out);
    qp_gguf *g = NULL;
    assert_int_equal(qp_gguf_open(out, &g, NULL), QP_OK);
    const qp_gguf_tensor *q = tensor(g, name);
    const qp_qtype *qt = qp_qtype_get(QP_GGML_Q4_0);
    int64_t row = t->row_len, rpe = t->n_rows / t->n_expert;
    uint64_t rb = qp_qtype_row_bytes(QP_GGML_Q4_0, row);
    float *rows = malloc((size_t)(rpe * row) * sizeof *rows), *mean = malloc((size_t)row * sizeof *mean);
    uint8_t *mine = malloc(rb);
    for (int64_t x = 0; x < t->n_expert; x++) {
        const float *v = qp_importance_get((void *)imp, plan, i, x);
        assert_non_null(v);
        if (x == 13) {
            assert_int_equal(qp_imatrix_mean(m, e, x, mean), 0);
            for (int64_t j = 0; j < row; j++)
                assert_true(v[j] == 1.0f);
        } else {
            assert_int_equal(qp_imatrix_mean(m, e, x, mean), 1);
            assert_memory_equal(v, mean, (size_t)row * sizeof *mean);
        }
        if (x != 0 && x != 13)
            continue; /* spot-check the bytes of a few experts */
        assert_int_equal(qp_plan_read_rows(plan, i, x * rpe, rpe, rows, NULL), QP_OK);
        for (int64_t r = 0; r < rpe; r++) {
            qt->quantize_row(rows + r * row, mine, row, v);
            assert_memory_equal(mine, (const uint8_t *)q->data + (uint64_t)(x * rpe + r) * rb, rb);
        }
    }
    free(rows);
    free(mean);
    free(mine);
    qp_gguf_close(g);
    qp_imatrix_free(m);
    qp_job_free(job);
}

/* A one-row matrix with entries `e1` (n1 columns) and optionally `e2`. */
static const char *write_matrix(const char *file, const char *e1, int64_t n1, const char *e2, int64_t n2)
{
    qp_imatrix *m = qp_imatrix_new();
    qp_err err;
    const char *names[2] = {e1, e2};
    int64_t cols[2] = {n1, n2};
    for (int k = 0; k < 2 && names[k]; k++) {
        int64_t e = qp_imatrix_add(m, names[k], cols[k], 1, &err);
        assert_true(e >= 0);
        float *x = calloc((size_t)cols[k], sizeof *x);
        x[0] = 1;
        assert_int_equal(qp_imatrix_accumulate(m, e, 0, x, 1, &err), QP_OK);
        free(x);
    }
    assert_int_equal(qp_imatrix_add_dataset(m, "t.txt", &err), QP_OK);
    qp_imatrix_set_chunks(m, 1, 512);
    const char *p = tmp(file);
    assert_int_equal(qp_imatrix_write(m, p, &err), QP_OK);
    qp_imatrix_free(m);
    return p;
}

static void test_refusals(void **state)
{
    (void)state;
    qp_job *job = NULL;
    qp_err err;
    char msg[2048];
    /* Columns that do not match the tensor's rows. */
    const char *bad = write_matrix("bad.gguf", "blk.0.attn_q.weight", 128, NULL, 0);
    assert_int_equal(open_job("models/qwen3-tiny", "attn_q", QP_GGML_Q4_K, bad, &job, &err), QP_ERR_BAD_INPUT);
    assert_null(job);
    qp_err_format(&err, msg, sizeof msg);
    assert_non_null(strstr(msg, bad));
    assert_string_equal(err.tensor, "blk.0.attn_q.weight");
    assert_non_null(strstr(msg, "128 columns"));
    /* A matrix for another model. */
    const char *other = write_matrix("other.gguf", "blk.0.something.weight", 256, NULL, 0);
    assert_int_equal(open_job("models/qwen3-tiny", "attn_q", QP_GGML_Q4_K, other, &job, &err), QP_ERR_BAD_INPUT);
    qp_err_format(&err, msg, sizeof msg);
    assert_non_null(strstr(msg, other));
    assert_non_null(strstr(msg, "another model"));
    /* Not a matrix at all; no file. */
    assert_int_equal(open_job("models/qwen3-tiny", "attn_q", QP_GGML_Q4_K,
                              qp_fixture("llama-cpp-quantized/qwen3-tiny-Q2_K.gguf"), &job, &err),
                     QP_ERR_BAD_INPUT);
    assert_int_equal(open_job("models/qwen3-tiny", "attn_q", QP_GGML_Q4_K, tmp("nope.gguf"), &job, &err),
                     QP_ERR_IO);
    /* token_embd of the wrong width is only reported missing, as llama.cpp
     * only warns for it; tensors without entries are listed in plan order. */
    const char *emb = write_matrix("emb.gguf", "token_embd.weight", 100, "blk.2.attn_q.weight", 256);
    job = open_job_ok("models/qwen3-tiny", "token_embd|attn_q", QP_GGML_Q4_K, emb);
    const qp_importance *imp = qp_job_importance(job);
    assert_int_equal(qp_importance_used_count(imp), 1);
    assert_int_equal(qp_importance_missing_count(imp), 4);
    assert_string_equal(qp_importance_missing(imp, 0), "token_embd.weight");
    assert_string_equal(qp_importance_missing(imp, 1), "blk.0.attn_q.weight");
    assert_string_equal(qp_importance_missing(imp, 3), "blk.3.attn_q.weight");
    const qp_plan *plan = qp_job_plan(job);
    assert_null(qp_importance_get((void *)imp, plan, qp_plan_find(plan, "token_embd.weight"), 0));
    assert_null(qp_importance_get((void *)imp, plan, qp_plan_find(plan, "blk.0.attn_q.weight"), 0));
    assert_non_null(qp_importance_get((void *)imp, plan, qp_plan_find(plan, "blk.2.attn_q.weight"), 0));
    qp_job_free(job);
}

/* Nothing quantized: the matrix is read (and checked) but unused. */
static void test_unquantized(void **state)
{
    (void)state;
    qp_job *job = open_job_ok("models/qwen3-tiny", NULL, 0, qp_fixture(MOE_IMX));
    assert_int_equal(qp_importance_used_count(qp_job_importance(job)), 0);
    assert_int_equal(qp_importance_missing_count(qp_job_importance(job)), 0);
    qp_job_free(job);
}

/* A legacy .dat matrix gives the same importances up to float rounding. */
static void test_legacy_matrix(void **state)
{
    (void)state;
    qp_imatrix *m = NULL;
    assert_int_equal(qp_imatrix_read(qp_fixture(MOE_IMX), &m, NULL), QP_OK);
    const char *dat = tmp("moe.dat");
    assert_int_equal(qp_imatrix_write_legacy(m, dat, NULL), QP_OK);
    qp_imatrix_free(m);
    const char *pat = "blk\\.1\\.ffn_down_exps|blk\\.0\\.attn_v";
    qp_job *jd = open_job_ok("models/qwen3-moe-tiny", pat, QP_GGML_Q4_K, dat);
    qp_job *jg = open_job_ok("models/qwen3-moe-tiny", pat, QP_GGML_Q4_K, qp_fixture(MOE_IMX));
    const qp_importance *id = qp_job_importance(jd), *ig = qp_job_importance(jg);
    assert_int_equal(qp_importance_used_count(id), 2);
    const qp_plan *plan = qp_job_plan(jd);
    for (int64_t i = 0; i < qp_plan_count(plan); i++) {
        const qp_plan_tensor *t = qp_plan_at(plan, i);
        for (int64_t x = 0; x < t->n_expert; x++) {
            const float *a = qp_importance_get((void *)id, plan, i, x), *b = qp_importance_get((void *)ig, plan, i, x);
            assert_true((a == NULL) == (b == NULL));
            for (int64_t j = 0; a && j < t->row_len; j++)
                assert_true(fabsf(a[j] - b[j]) <= 4e-7f * b[j]);
        }
    }
    qp_job_free(jd);
    qp_job_free(jg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_are_llama_means),
        cmocka_unit_test(test_dense_q4_k_quality),
        cmocka_unit_test(test_moe_per_expert),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_unquantized),
        cmocka_unit_test(test_legacy_matrix),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
