/* test_ppl_full.c - the full perplexity oracles on text/eval.txt (243
 * chunks of 512): transformers' eval_ppl_f32 from the bf16 checkpoints
 * within 0.05%, llama.cpp's perplexities of its Q4_K_M and Q2_K files
 * within 0.1%, and its KL divergence / top-1 agreement of Q4_K_M against
 * the bf16 model (llama-cpp-quantized/README.md). */
/* ctest-labels: slow threads */
#include "support/qp_test.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/qp_threads.h"
#include "runtime-lite/model.h"
#include "runtime-lite/ppl.h"

static int32_t *g_ids;
static int64_t g_n_ids;

static int setup(void **state)
{
    (void)state;
    g_ids = qp_test_read_ids("reference/tiny-tokenizer/eval.ids.i32", &g_n_ids);
    return g_ids ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    free(g_ids);
    return 0;
}

static qp_rt_model *open_model(const char *rel)
{
    qp_rt_model *m = NULL;
    qp_err err;
    assert_int_equal(qp_rt_model_open(qp_fixture(rel), &m, &err), QP_OK);
    return m;
}

static double reference_ppl(const char *model)
{
    char rel[256];
    snprintf(rel, sizeof rel, "reference/%s/results.json", model);
    size_t n;
    char *json = qp_test_read_file(qp_fixture(rel), &n);
    assert_non_null(json);
    cJSON *root = cJSON_ParseWithLength(json, n);
    const cJSON *e = cJSON_GetObjectItem(root, "eval_ppl_f32");
    double v = cJSON_GetObjectItem(e, "ppl")->valuedouble;
    assert_int_equal((int)cJSON_GetObjectItem(e, "chunks")->valuedouble, 243);
    cJSON_Delete(root);
    free(json);
    return v;
}

static qp_ppl_summary run(const qp_rt_model *m, const qp_rt_model *base)
{
    qp_ppl_job job = {.model = m, .base = base, .tokens = g_ids, .n_tokens = g_n_ids, .n_ctx = 512,
                      .n_threads = qp_cpu_count()};
    qp_ppl_summary s;
    qp_err err;
    assert_int_equal(qp_ppl_run(&job, &s, &err), QP_OK);
    assert_int_equal(s.stats.n_chunks, 243);
    assert_int_equal(s.stats.n_scored, 61965);
    return s;
}

static void check_hf(const char *name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "models/%s", name);
    qp_rt_model *m = open_model(rel);
    qp_ppl_summary s = run(m, NULL);
    const double ref = reference_ppl(name);
    print_message("%s: ppl %.6f (transformers %.6f, %+.4f%%), %.0f tok/s\n", name, s.stats.ppl.val, ref,
                  100 * (s.stats.ppl.val / ref - 1), s.tokens_per_second);
    assert_true(fabs(s.stats.ppl.val / ref - 1) < 5e-4);
    qp_rt_model_free(m);
}

static void test_dense_full(void **state)
{
    (void)state;
    check_hf("qwen3-tiny");
}

static void test_moe_full(void **state)
{
    (void)state;
    check_hf("qwen3-moe-tiny");
}

static void check_llama_cpp(const char *file, double want)
{
    char rel[256];
    snprintf(rel, sizeof rel, "llama-cpp-quantized/%s", file);
    qp_rt_model *m = open_model(rel);
    qp_ppl_summary s = run(m, NULL);
    print_message("%s: ppl %.6f (llama.cpp %.6f, %+.4f%%), %.0f tok/s\n", file, s.stats.ppl.val, want,
                  100 * (s.stats.ppl.val / want - 1), s.tokens_per_second);
    assert_true(fabs(s.stats.ppl.val / want - 1) < 1e-3);
    qp_rt_model_free(m);
}

static void test_llama_cpp_q4_k_m(void **state)
{
    (void)state;
    check_llama_cpp("qwen3-tiny-Q4_K_M.gguf", 9.452470);
}

static void test_llama_cpp_q2_k(void **state)
{
    (void)state;
    check_llama_cpp("qwen3-tiny-Q2_K.gguf", 12.994307);
}

/* llama.cpp: mean KLD 0.023854, same top-1 92.549% for Q4_K_M vs bf16. */
static void test_llama_cpp_kld(void **state)
{
    (void)state;
    qp_rt_model *q = open_model("llama-cpp-quantized/qwen3-tiny-Q4_K_M.gguf");
    qp_rt_model *b = open_model("models/qwen3-tiny");
    qp_ppl_summary s = run(q, b);
    print_message("Q4_K_M vs bf16: KLD %.6f (llama.cpp 0.023854), same top %.3f%% (92.549%%), "
                  "ppl ratio %.5f ± %.5f\n",
                  s.stats.kld.val, 100 * s.stats.same_top.val, s.stats.ratio.val, s.stats.ratio.unc);
    assert_true(fabs(s.stats.kld.val / 0.023854 - 1) < 0.03);
    assert_true(fabs(100 * s.stats.same_top.val - 92.549) < 0.3);
    assert_true(s.stats.ratio.val > 1.0);
    qp_rt_model_free(q);
    qp_rt_model_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dense_full),
        cmocka_unit_test(test_moe_full),
        cmocka_unit_test(test_llama_cpp_q4_k_m),
        cmocka_unit_test(test_llama_cpp_q2_k),
        cmocka_unit_test(test_llama_cpp_kld),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
