/* test_calibrate_full.c - the calibration oracles on text/calib.txt (114
 * chunks of 512) with qwen3-moe-tiny: per-expert routed counts against
 * transformers' routing (reference results.json calib_expert_topk_counts,
 * within 0.5% per expert), and the written file against llama-imatrix's
 * matrix on the same text (ggml-vectors/imatrix-calib-moe.gguf): same keys,
 * tensor names, shapes and types, nearly the same per-expert counts (llama.cpp
 * routes a few near-ties differently) for experts that need no coverage, and close mean activations; after the
 * coverage pass every expert has data. */
/* ctest-labels: slow threads */
#include "support/qp_test.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/qp_threads.h"
#include "format/gguf.h"
#include "format/imatrix.h"
#include "runtime-lite/calibrate.h"
#include "runtime-lite/model.h"

static int32_t *g_ids;
static int64_t g_n_ids;

static int setup(void **state)
{
    (void)state;
    g_ids = qp_test_read_ids("reference/tiny-tokenizer/calib.ids.i32", &g_n_ids);
    return g_ids ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    free(g_ids);
    return 0;
}

static int within(double ours, double ref, double rel)
{
    return fabs(ours - ref) <= rel * ref;
}

static void compare_files(const char *ours, const char *ref)
{
    qp_gguf *a = NULL, *b = NULL;
    qp_err err;
    assert_int_equal(qp_gguf_open(ours, &a, &err), QP_OK);
    assert_int_equal(qp_gguf_open(ref, &b, &err), QP_OK);
    for (int64_t i = 0; i < qp_gguf_kv_count(b); i++) {
        qp_gguf_str k = qp_gguf_kv_key(b, i);
        char key[128];
        snprintf(key, sizeof key, "%.*s", (int)k.len, k.ptr);
        int64_t j = qp_gguf_find_key(a, key);
        if (j < 0)
            fail_msg("key %s missing", key);
        assert_int_equal(qp_gguf_kv_type(a, j), qp_gguf_kv_type(b, i));
    }
    uint64_t ca = 0, cb = 0;
    assert_true(qp_gguf_get_u64(a, "imatrix.chunk_count", &ca) && qp_gguf_get_u64(b, "imatrix.chunk_count", &cb));
    assert_int_equal(ca, cb);
    assert_int_equal(qp_gguf_tensor_count(a), qp_gguf_tensor_count(b));
    for (int64_t i = 0; i < qp_gguf_tensor_count(b); i++) {
        const qp_gguf_tensor *tb = qp_gguf_tensor_at(b, i);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)tb->name.len, tb->name.ptr);
        const qp_gguf_tensor *ta = qp_gguf_find_tensor(a, name);
        if (!ta)
            fail_msg("tensor %s missing", name);
        assert_int_equal(ta->n_dims, tb->n_dims);
        assert_int_equal(ta->type, tb->type);
        for (int d = 0; d < QP_GGUF_MAX_DIMS; d++)
            assert_int_equal(ta->ne[d], tb->ne[d]);
    }
    qp_gguf_close(a);
    qp_gguf_close(b);
}

/* Relative difference of the column means of two entries for one expert,
 * as sum |ma - mb| / sum mb. */
static double mean_diff(const qp_imatrix *a, int64_t ea, const qp_imatrix *b, int64_t eb, int64_t x)
{
    const int64_t n = qp_imatrix_n_in(a, ea);
    float *ma = malloc((size_t)n * sizeof *ma), *mb = malloc((size_t)n * sizeof *mb);
    assert_true(qp_imatrix_mean(a, ea, x, ma) && qp_imatrix_mean(b, eb, x, mb));
    double num = 0, den = 0;
    for (int64_t j = 0; j < n; j++) {
        num += fabs((double)ma[j] - (double)mb[j]);
        den += fabs((double)mb[j]);
    }
    free(ma);
    free(mb);
    return num / den;
}

static void test_moe_full(void **state)
{
    (void)state;
    qp_rt_model *m = NULL;
    qp_err err;
    assert_int_equal(qp_rt_model_open(qp_fixture("models/qwen3-moe-tiny"), &m, &err), QP_OK);
    const qp_rt_config *c = qp_rt_model_config(m);
    const int64_t NE = c->n_expert, MIN = 256;
    qp_calib_job job = {
        .model = m,
        .tokens = g_ids,
        .n_tokens = g_n_ids,
        .n_ctx = 512,
        .n_threads = qp_cpu_count(),
        .min_expert_tokens = MIN,
        .dataset = "text/calib.txt",
    };
    qp_calib_result r;
    if (qp_calib_run(&job, &r, &err) != QP_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(r.n_chunks, 114);

    /* routed counts vs transformers */
    size_t n = 0;
    char *json = qp_test_read_file(qp_fixture("reference/qwen3-moe-tiny/results.json"), &n);
    assert_non_null(json);
    cJSON *root = cJSON_ParseWithLength(json, n);
    const cJSON *ref = cJSON_GetObjectItem(root, "calib_expert_topk_counts");
    assert_int_equal(cJSON_GetArraySize(ref), c->n_layer);
    int64_t exact = 0;
    for (int64_t l = 0; l < c->n_layer; l++) {
        const cJSON *row = cJSON_GetArrayItem(ref, (int)l);
        assert_int_equal(cJSON_GetArraySize(row), NE);
        for (int64_t e = 0; e < NE; e++) {
            const double want = cJSON_GetArrayItem(row, (int)e)->valuedouble;
            const int64_t got = r.routed[l * NE + e];
            if (!within((double)got, want, 0.005))
                fail_msg("layer %lld expert %lld: %lld routed tokens, transformers %.0f", (long long)l,
                         (long long)e, (long long)got, want);
            exact += (double)got == want;
        }
    }
    print_message("routed counts: %lld of %lld identical to transformers'\n", (long long)exact,
                  (long long)(c->n_layer * NE));
    cJSON_Delete(root);
    free(json);

    /* every expert has data; the forced ones exactly the minimum */
    for (int64_t i = 0; i < c->n_layer * NE; i++) {
        assert_int_equal(r.forced[i], r.routed[i] < MIN);
        assert_true(r.counts[i] == (r.forced[i] ? (double)MIN : (double)r.routed[i]));
    }
    assert_true(r.forced[1 * NE + 13]); /* never routed: layer 1 expert 13 */

    /* the file vs llama-imatrix's */
    char *dir = qp_test_tmpdir("calib-full");
    char path[512];
    snprintf(path, sizeof path, "%s/im.gguf", dir);
    assert_int_equal(qp_calib_write(&r, path, &err), QP_OK);
    const char *ref_path = qp_fixture("ggml-vectors/imatrix-calib-moe.gguf");
    compare_files(path, ref_path);
    qp_imatrix *ours = NULL, *llama = NULL;
    assert_int_equal(qp_imatrix_read(path, &ours, &err), QP_OK);
    assert_int_equal(qp_imatrix_read(ref_path, &llama, &err), QP_OK);
    double worst_dense = 0, worst_exp = 0, worst_count = 0;
    for (int64_t i = 0; i < qp_imatrix_count(llama); i++) {
        const char *name = qp_imatrix_name(llama, i);
        int64_t j = qp_imatrix_find(ours, name);
        assert_true(j >= 0);
        const int64_t nx = qp_imatrix_n_expert(llama, i);
        const int64_t layer = atoi(name + 4);
        for (int64_t x = 0; x < nx; x++) {
            const double cl = qp_imatrix_rows(llama, i, x);
            if (nx > 1 && r.forced[layer * NE + x])
                continue; /* llama.cpp keeps few or no tokens; ours are completed */
            /* llama.cpp routes in its own arithmetic: a few near-ties go the
             * other way (ours match transformers exactly, checked above) */
            const double dc = fabs(qp_imatrix_rows(ours, j, x) - cl);
            worst_count = dc > worst_count ? dc : worst_count;
            if (dc > 0.03 * cl + 10)
                fail_msg("%s expert %lld: count %.0f, llama.cpp %.0f", name, (long long)x,
                         qp_imatrix_rows(ours, j, x), cl);
            const double d = mean_diff(ours, j, llama, i, x);
            if (nx > 1)
                worst_exp = d > worst_exp ? d : worst_exp;
            else
                worst_dense = d > worst_dense ? d : worst_dense;
        }
    }
    print_message("vs llama.cpp: worst count difference %.0f; mean activations: worst relative L1 difference "
                  "%.4f (dense), %.4f (experts)\n",
                  worst_count, worst_dense, worst_exp);
    assert_true(worst_dense < 0.005);
    assert_true(worst_exp < 0.05);
    qp_imatrix_free(ours);
    qp_imatrix_free(llama);
    qp_test_rmtree(dir);
    free(dir);
    qp_calib_result_free(&r);
    qp_rt_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_moe_full),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
