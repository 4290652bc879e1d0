/* test_sensitivity.c - runtime-lite/sensitivity.c on short chunks: every
 * quantizable matrix of qwen3-tiny (and of the MoE fixture, stacked experts
 * and the untied output included) is measured once, the swapped-in matrices
 * are put back (logits bit-identical before and after), the figures are
 * consistent (coef = kld / err, err at the probe equals qp_qerr_tensor's),
 * results do not depend on the thread count, and a probe of higher
 * precision moves the output less. */
/* ctest-labels: fast threads */
#include "support/qp_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/qp_ggml_types.h"
#include "convert/qerror.h"
#include "convert/sensitivity.h"
#include "format/hf_config.h"
#include "format/safetensors.h"
#include "runtime-lite/forward.h"
#include "runtime-lite/model.h"
#include "runtime-lite/sensitivity.h"

#define CTX 32

static int32_t *g_ids;
static int64_t g_n_ids;

static int setup(void **state)
{
    (void)state;
    g_ids = qp_test_read_ids("reference/tiny-tokenizer/calib.ids.i32", &g_n_ids);
    return g_ids && g_n_ids >= 2 * CTX ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    free(g_ids);
    return 0;
}

typedef struct {
    qp_hf_config cfg;
    qp_st_model *st;
    qp_plan *plan;
    qp_rt_model *model;
} fixture;

static void open_fixture(const char *rel, fixture *f)
{
    qp_err e;
    memset(f, 0, sizeof *f);
    const char *dir = qp_fixture(rel);
    assert_int_equal(qp_hf_config_load(dir, &f->cfg, &e), QP_OK);
    assert_int_equal(qp_st_open_dir(dir, &f->st, &e), QP_OK);
    assert_int_equal(qp_plan_build(f->st, &f->cfg, &f->plan, &e), QP_OK);
    assert_int_equal(qp_rt_model_open(dir, &f->model, &e), QP_OK);
}

static void close_fixture(fixture *f)
{
    qp_rt_model_free(f->model);
    qp_plan_free(f->plan);
    qp_st_close(f->st);
}

static float *logits_of(const qp_rt_model *m)
{
    qp_err e;
    const int64_t V = qp_rt_model_config(m)->n_vocab;
    qp_rt_state *s = NULL;
    float *out = malloc((size_t)(4 * V) * sizeof *out);
    assert_non_null(out);
    assert_int_equal(qp_rt_state_new(m, CTX, 0, 2, &s, &e), QP_OK);
    assert_int_equal(qp_rt_forward(m, s, g_ids, CTX, CTX - 4, 4, out, &e), QP_OK);
    qp_rt_state_free(s);
    return out;
}

static qp_sens *measure(fixture *f, uint32_t probe, int threads)
{
    qp_sens_job job;
    memset(&job, 0, sizeof job);
    job.model = f->model;
    job.plan = f->plan;
    job.tokens = g_ids;
    job.n_tokens = g_n_ids;
    job.n_ctx = CTX;
    job.n_chunks = 1;
    job.probe_type = probe;
    job.n_threads = threads;
    qp_sens *s = NULL;
    qp_err e;
    assert_int_equal(qp_sens_measure(&job, &s, &e), QP_OK);
    return s;
}

static void check_table(fixture *f, const qp_sens *s, int64_t want)
{
    assert_int_equal(s->n, want);
    assert_int_equal(s->n_chunks, 1);
    assert_int_equal(s->n_ctx, CTX);
    int positive = 0;
    for (int64_t k = 0; k < s->n; k++) {
        assert_true(s->err[k] > 0);
        assert_true(s->kld[k] >= 0);
        assert_true(fabs(s->coef[k] - s->kld[k] / s->err[k]) <= 1e-12 * s->coef[k]);
        positive += s->kld[k] > 0;
    }
    assert_true(positive == s->n);
    /* the error is convert/qerror.c's, as the allocator will compute it */
    int64_t k = qp_sens_find(s, "blk.1.attn_v.weight"), i = qp_plan_find(f->plan, "blk.1.attn_v.weight");
    assert_true(k >= 0 && i >= 0);
    double err = 0;
    qp_err e;
    assert_int_equal(qp_qerr_tensor(f->plan, i, &s->probe_type, 1, NULL, NULL, NULL, &err, &e), QP_OK);
    assert_true(err == s->err[k]);
}

static void test_dense(void **state)
{
    (void)state;
    fixture f;
    open_fixture("models/qwen3-tiny", &f);
    const int64_t V = qp_rt_model_config(f.model)->n_vocab;
    float *before = logits_of(f.model);
    qp_sens *s1 = measure(&f, QP_GGML_Q3_K, 1);
    float *after = logits_of(f.model);
    assert_memory_equal(before, after, (size_t)(4 * V) * sizeof *before); /* every swap undone */
    check_table(&f, s1, 4 * 7 + 1);
    assert_true(qp_sens_find(s1, "token_embd.weight") >= 0);
    qp_sens *s2 = measure(&f, QP_GGML_Q3_K, 2);
    assert_memory_equal(s1->kld, s2->kld, (size_t)s1->n * sizeof *s1->kld); /* any thread count */
    assert_memory_equal(s1->err, s2->err, (size_t)s1->n * sizeof *s1->err);
    /* an 8-bit probe moves the output far less than a 3-bit one */
    qp_sens *s8 = measure(&f, QP_GGML_Q8_0, 2);
    double k3 = 0, k8 = 0;
    for (int64_t k = 0; k < s1->n; k++) {
        k3 += s1->kld[k];
        k8 += s8->kld[k];
    }
    assert_true(k8 * 20 < k3);
    qp_sens_free(s1);
    qp_sens_free(s2);
    qp_sens_free(s8);
    free(before);
    free(after);
    close_fixture(&f);
}

static void test_moe(void **state)
{
    (void)state;
    fixture f;
    open_fixture("models/qwen3-moe-tiny", &f);
    const int64_t V = qp_rt_model_config(f.model)->n_vocab;
    float *before = logits_of(f.model);
    qp_sens *s = measure(&f, QP_GGML_Q3_K, 2);
    float *after = logits_of(f.model);
    assert_memory_equal(before, after, (size_t)(4 * V) * sizeof *before);
    check_table(&f, s, 4 * 7 + 2); /* q k v o + 3 stacked per layer, token_embd, output */
    assert_true(qp_sens_find(s, "blk.2.ffn_down_exps.weight") >= 0);
    assert_true(qp_sens_find(s, "output.weight") >= 0);
    assert_true(qp_sens_find(s, "blk.0.ffn_gate_inp.weight") < 0); /* the router stays F32 */
    qp_sens_free(s);
    free(before);
    free(after);
    close_fixture(&f);
}

static void test_short_text(void **state)
{
    (void)state;
    fixture f;
    open_fixture("models/qwen3-tiny", &f);
    qp_sens_job job;
    memset(&job, 0, sizeof job);
    job.model = f.model;
    job.plan = f.plan;
    job.tokens = g_ids;
    job.n_tokens = CTX - 1;
    job.n_ctx = CTX;
    job.n_chunks = 1;
    job.probe_type = QP_GGML_Q3_K;
    qp_sens *s = NULL;
    qp_err e;
    assert_int_equal(qp_sens_measure(&job, &s, &e), QP_ERR_BAD_INPUT);
    assert_null(s);
    close_fixture(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dense),
        cmocka_unit_test(test_moe),
        cmocka_unit_test(test_short_text),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
