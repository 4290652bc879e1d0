/* test_ppl.c - perplexity against transformers' numbers (results.json),
 * llama.cpp's --kl-divergence-base file round trip, KLD against a live base,
 * the statistics, and the `qpack ppl` command. Uses the fixture token ids
 * (reference/tiny-tokenizer/eval.ids.i32) so it does not depend on the
 * tokenizer, except for the CLI checks. */
/* ctest-labels: fast threads */
#include "support/qp_test.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime-lite/logits_file.h"
#include "runtime-lite/model.h"
#include "runtime-lite/ppl.h"

static int32_t *g_ids;
static int64_t g_n_ids;
static char *g_tmp;

static int setup(void **state)
{
    (void)state;
    g_ids = qp_test_read_ids("reference/tiny-tokenizer/eval.ids.i32", &g_n_ids);
    g_tmp = qp_test_tmpdir("runtime-ppl");
    return g_ids && g_tmp ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    free(g_ids);
    qp_test_rmtree(g_tmp);
    free(g_tmp);
    return 0;
}

/* results.json: eval_ppl_f32.running_ppl_per_chunk[i] */
static double reference_running(const char *model, int i)
{
    char rel[256];
    snprintf(rel, sizeof rel, "reference/%s/results.json", model);
    size_t n;
    char *json = qp_test_read_file(qp_fixture(rel), &n);
    assert_non_null(json);
    cJSON *root = cJSON_ParseWithLength(json, n);
    const cJSON *e = cJSON_GetObjectItem(root, "eval_ppl_f32");
    const cJSON *arr = cJSON_GetObjectItem(e, "running_ppl_per_chunk");
    assert_true(cJSON_GetArraySize(arr) > i);
    double v = cJSON_GetArrayItem(arr, i)->valuedouble;
    cJSON_Delete(root);
    free(json);
    return v;
}

static qp_rt_model *open_model(const char *rel)
{
    qp_rt_model *m = NULL;
    qp_err err;
    qp_status st = qp_rt_model_open(qp_fixture(rel), &m, &err);
    qp_assert_ok(st, &err);
    return m;
}

typedef struct {
    double running[16];
    int n;
} chunks_seen;

static void collect(void *user, const qp_ppl_stats *r)
{
    chunks_seen *c = user;
    if (c->n < 16)
        c->running[c->n++] = r->ppl.val;
}

static void check_two_chunks(const char *name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "models/%s", name);
    qp_rt_model *m = open_model(rel);
    qp_err err;
    chunks_seen seen = {{0}, 0};
    qp_ppl_job job = {.model = m, .tokens = g_ids, .n_tokens = g_n_ids, .n_ctx = 512, .max_chunks = 2,
                      .n_threads = 2, .on_chunk = collect, .user = &seen};
    qp_ppl_summary s1, s2;
    assert_int_equal(qp_ppl_run(&job, &s1, &err), QP_OK);
    assert_int_equal(seen.n, 2);
    for (int i = 0; i < 2; i++) {
        const double ref = reference_running(name, i);
        print_message("%s chunk %d: %.6f (transformers %.6f)\n", name, i + 1, seen.running[i], ref);
        assert_true(fabs(seen.running[i] / ref - 1) < 5e-4);
    }
    assert_int_equal(s1.stats.n_scored, 2 * 255);
    assert_true(s1.stats.ppl.unc > 0);
    /* the same sums for another thread count */
    job.n_threads = 1;
    job.on_chunk = NULL;
    assert_int_equal(qp_ppl_run(&job, &s2, &err), QP_OK);
    assert_true(s1.stats.ppl.val == s2.stats.ppl.val);
    assert_true(s1.stats.ppl.unc == s2.stats.ppl.unc);
    qp_rt_model_free(m);
}

static void test_dense_two_chunks(void **state)
{
    (void)state;
    check_two_chunks("qwen3-tiny");
}

static void test_moe_two_chunks(void **state)
{
    (void)state;
    check_two_chunks("qwen3-moe-tiny");
}

/* Save log-probs, read them back as the base of the same model: the file
 * has llama.cpp's layout, KLD is ~0 (16-bit rounding only), top-1 agrees. */
static void test_logits_file_round_trip(void **state)
{
    (void)state;
    qp_rt_model *m = open_model("models/qwen3-tiny");
    char path[4096];
    snprintf(path, sizeof path, "%s/base.kld", g_tmp);
    qp_err err;
    const int64_t n_ctx = 128, chunks = 3;
    qp_ppl_job job = {.model = m, .tokens = g_ids, .n_tokens = g_n_ids, .n_ctx = n_ctx, .max_chunks = chunks,
                      .n_threads = 2, .save_logits = path};
    qp_ppl_summary plain, kl;
    assert_int_equal(qp_ppl_run(&job, &plain, &err), QP_OK);

    size_t size = 0;
    uint8_t *bytes = qp_test_read_file(path, &size);
    assert_non_null(bytes);
    const int64_t nv = 2 * ((8192 + 1) / 2) + 4, scored = n_ctx - 1 - n_ctx / 2;
    assert_int_equal(size, 8 + 12 + 4 * chunks * n_ctx + chunks * scored * nv * 2);
    assert_memory_equal(bytes, "_logits_", 8);
    int32_t hdr[3];
    memcpy(hdr, bytes + 8, sizeof hdr);
    assert_int_equal(hdr[0], n_ctx);
    assert_int_equal(hdr[1], 8192);
    assert_int_equal(hdr[2], chunks);
    assert_memory_equal(bytes + 20, g_ids, (size_t)(chunks * n_ctx) * 4);
    /* first record: scale = (max - clamped min) / 65535, and the target's
     * decoded log-prob is -NLL within the 16-bit step */
    const uint16_t *rec = (const uint16_t *)(const void *)(bytes + 20 + 4 * chunks * n_ctx);
    float scale, min_lp;
    memcpy(&scale, rec, 4);
    memcpy(&min_lp, rec + 2, 4);
    assert_true(scale > 0 && scale <= 16.0f / 65535.0f * 1.0001f);
    assert_true(min_lp < 0);
    free(bytes);

    qp_ppl_job kj = {.model = m, .n_threads = 2, .base_logits = path};
    assert_int_equal(qp_ppl_run(&kj, &kl, &err), QP_OK);
    assert_int_equal(kl.stats.n_scored, chunks * scored);
    assert_true(kl.stats.has_base);
    assert_true(fabs(kl.stats.ppl.val - plain.stats.ppl.val) < 1e-9 * plain.stats.ppl.val);
    assert_true(fabs(kl.stats.ppl_base.val / plain.stats.ppl.val - 1) < 1e-3);
    assert_true(kl.stats.kld.val >= -1e-6 && kl.stats.kld.val < 1e-5);
    assert_true(kl.stats.same_top.val > 0.99);
    assert_true(kl.kld_q.max < 1e-3);

    /* --chunks limits what is read from the file */
    kj.max_chunks = 1;
    assert_int_equal(qp_ppl_run(&kj, &kl, &err), QP_OK);
    assert_int_equal(kl.stats.n_scored, scored);

    /* a truncated file is refused */
    bytes = qp_test_read_file(path, &size);
    char bad[4096];
    snprintf(bad, sizeof bad, "%s/truncated.kld", g_tmp);
    assert_int_equal(qp_test_write_file(bad, bytes, size - 3), 0);
    kj.base_logits = bad;
    assert_int_equal(qp_ppl_run(&kj, &kl, &err), QP_ERR_BAD_INPUT);
    /* a token id beyond the vocabulary is refused */
    int32_t huge = 1 << 20;
    memcpy(bytes + 20, &huge, 4);
    assert_int_equal(qp_test_write_file(bad, bytes, size), 0);
    assert_int_equal(qp_ppl_run(&kj, &kl, &err), QP_ERR_BAD_INPUT);
    free(bytes);
    qp_rt_model_free(m);
}

/* A live base identical to the model: KLD 0, every top-1 the same, ratio 1;
 * a different model as base gives a positive KLD. */
static void test_live_base(void **state)
{
    (void)state;
    qp_rt_model *m = open_model("models/qwen3-tiny");
    qp_rt_model *moe = open_model("models/qwen3-moe-tiny");
    qp_err err;
    qp_ppl_job job = {.model = m, .base = m, .tokens = g_ids, .n_tokens = g_n_ids, .n_ctx = 256,
                      .max_chunks = 2, .n_threads = 2};
    qp_ppl_summary s;
    assert_int_equal(qp_ppl_run(&job, &s, &err), QP_OK);
    assert_true(fabs(s.stats.kld.val) < 1e-9);
    assert_true(s.stats.same_top.val == 1.0);
    assert_true(fabs(s.stats.ratio.val - 1) < 1e-12);
    assert_true(fabs(s.stats.p_diff_rms.val) < 1e-9);
    job.base = moe;
    assert_int_equal(qp_ppl_run(&job, &s, &err), QP_OK);
    print_message("dense vs moe: KLD %.4f, same top %.3f, ratio %.4f\n", s.stats.kld.val, s.stats.same_top.val,
                  s.stats.ratio.val);
    assert_true(s.stats.kld.val > 0.01);
    assert_true(s.kld_q.max >= s.kld_q.p99 && s.kld_q.p99 >= s.kld_q.median && s.kld_q.median >= s.kld_q.min);
    assert_true(s.stats.same_top.val > 0.3 && s.stats.same_top.val < 1.0);
    qp_rt_model_free(moe);
    qp_rt_model_free(m);
}

static void test_stats(void **state)
{
    (void)state;
    /* NLLs 1, 2, 3, 4: mean 2.5, var 1.25, stderr sqrt(1.25/3) */
    qp_ppl_acc a;
    memset(&a, 0, sizeof a);
    for (int i = 1; i <= 4; i++) {
        a.sum_nll += i;
        a.sum_nll2 += i * i;
        a.count++;
    }
    qp_ppl_stats s;
    qp_ppl_acc_stats(&a, 0, &s);
    assert_true(fabs(s.ppl.val - exp(2.5)) < 1e-12);
    assert_true(fabs(s.ppl.unc - exp(2.5) * sqrt(1.25 / 3)) < 1e-12);
    /* NLL of a uniform distribution is log V */
    float flat[64];
    for (int i = 0; i < 64; i++)
        flat[i] = 0.25f;
    assert_true(fabs(qp_ppl_nll(flat, 64, 5) - log(64.0)) < 1e-9);
}

static void test_too_short(void **state)
{
    (void)state;
    qp_rt_model *m = open_model("models/qwen3-tiny");
    qp_err err;
    qp_ppl_summary s;
    qp_ppl_job job = {.model = m, .tokens = g_ids, .n_tokens = 1000, .n_ctx = 512, .n_threads = 1};
    assert_int_equal(qp_ppl_run(&job, &s, &err), QP_ERR_BAD_INPUT);
    qp_rt_model_free(m);
}

static void test_cli(void **state)
{
    (void)state;
    qp_run_result r = qp_run_qpack("ppl %s --text %s --chunks 2 -t 2", qp_fixture("models/qwen3-tiny"),
                                   qp_fixture("text/eval.txt"));
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "[1]24.8469,[2]44.1769,"));
    assert_non_null(strstr(r.out, "PPL = 44.1769 +/- "));
    qp_run_free(&r);

    r = qp_run_qpack("ppl %s --text %s --chunks 1 -c 256 --json -q", qp_fixture("models/qwen3-tiny"),
                     qp_fixture("text/eval.txt"));
    assert_int_equal(r.exit_code, 0);
    cJSON *o = cJSON_Parse(r.out);
    assert_non_null(o);
    assert_int_equal((int)cJSON_GetObjectItem(o, "tokens_scored")->valuedouble, 127);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "running_ppl_per_chunk")), 1);
    assert_true(cJSON_GetObjectItem(o, "ppl")->valuedouble > 1);
    cJSON_Delete(o);
    qp_run_free(&r);

    /* usage errors exit 2 */
    r = qp_run_qpack("ppl %s", qp_fixture("models/qwen3-tiny"));
    assert_int_equal(r.exit_code, 2);
    qp_run_free(&r);
    r = qp_run_qpack("ppl %s --text %s -c 3", qp_fixture("models/qwen3-tiny"), qp_fixture("text/eval.txt"));
    assert_int_equal(r.exit_code, 2);
    qp_run_free(&r);
    r = qp_run_qpack("ppl --help");
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "--base-logits"));
    qp_run_free(&r);
    /* missing files are bad input */
    r = qp_run_qpack("ppl %s --text /nonexistent/x.txt", qp_fixture("models/qwen3-tiny"));
    assert_int_equal(r.exit_code, 2);
    qp_run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_dense_two_chunks),
        cmocka_unit_test(test_moe_two_chunks),
        cmocka_unit_test(test_logits_file_round_trip),
        cmocka_unit_test(test_live_base),
        cmocka_unit_test(test_too_short),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
