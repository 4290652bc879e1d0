/* test_calibrate.c - calibration on a few short chunks: the observer hook
 * leaves the logits unchanged, the statistics are internally consistent
 * (counts = tokens, shared inputs give equal sums, per-expert counts = the
 * routed tokens), the coverage pass gives every expert data, the written
 * file has the qpack.calib keys, and `qpack calibrate` works on a dense and
 * an MoE model. The full oracle run is test_calibrate_full.c. */
/* ctest-labels: fast threads */
#include "support/qp_test.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/gguf.h"
#include "format/imatrix.h"
#include "runtime-lite/calibrate.h"
#include "runtime-lite/forward.h"
#include "runtime-lite/model.h"

#define CTX 64
#define CHUNKS 2

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

static qp_rt_model *open_model(const char *rel)
{
    qp_rt_model *m = NULL;
    qp_err err;
    assert_int_equal(qp_rt_model_open(qp_fixture(rel), &m, &err), QP_OK);
    return m;
}

static void run(const qp_rt_model *m, int64_t min_tokens, qp_calib_result *r)
{
    qp_calib_job job = {
        .model = m,
        .tokens = g_ids,
        .n_tokens = g_n_ids,
        .n_ctx = CTX,
        .max_chunks = CHUNKS,
        .n_threads = 2,
        .min_expert_tokens = min_tokens,
        .dataset = "calib.txt",
    };
    qp_err err;
    qp_status st = qp_calib_run(&job, r, &err);
    if (st != QP_OK)
        fail_msg("%s", err.msg);
}

static int64_t entry(const qp_imatrix *m, const char *fmt, int64_t l)
{
    char name[96];
    snprintf(name, sizeof name, fmt, (long long)l);
    int64_t e = qp_imatrix_find(m, name);
    if (e < 0)
        fail_msg("no entry %s", name);
    return e;
}

static void assert_same_sums(const qp_imatrix *m, int64_t a, int64_t b, int64_t expert)
{
    const int64_t n = qp_imatrix_n_in(m, a);
    assert_int_equal(n, qp_imatrix_n_in(m, b));
    assert_memory_equal(qp_imatrix_sums(m, a) + expert * n, qp_imatrix_sums(m, b) + expert * n, (size_t)n * 4);
    assert_true(qp_imatrix_rows(m, a, expert) == qp_imatrix_rows(m, b, expert));
}

static void count_mm(void *user, const qp_rt_obs_matmul *ev)
{
    int *n = user;
    assert_non_null(ev->weight);
    assert_true(ev->n_rows > 0 && ev->n_in > 0);
    assert_true((ev->expert < 0) == (ev->row_token == NULL));
    n[0]++;
}

static void count_route(void *user, const qp_rt_obs_route *ev)
{
    int *n = user;
    assert_int_equal(ev->n_tok, CTX);
    double sum = 0;
    for (int64_t e = 0; e < ev->n_expert; e++)
        sum += ev->probs[e];
    assert_true(fabs(sum - 1) < 1e-4);
    n[1]++;
}

/* The hook observes only: logits with and without it are bit-identical. */
static void test_observer_is_passive(void **state)
{
    (void)state;
    qp_rt_model *m = open_model("models/qwen3-moe-tiny");
    const int64_t V = qp_rt_model_config(m)->n_vocab;
    float *a = malloc((size_t)(CTX * V) * sizeof *a), *b = malloc((size_t)(CTX * V) * sizeof *b);
    qp_rt_state *s = NULL;
    qp_err err;
    assert_int_equal(qp_rt_state_new(m, CTX, 0, 2, &s, &err), QP_OK);
    assert_int_equal(qp_rt_forward(m, s, g_ids, CTX, 0, CTX, a, &err), QP_OK);
    int calls[2] = {0, 0};
    qp_rt_observer obs = {count_mm, count_route, calls};
    qp_rt_state_set_observer(s, &obs);
    qp_rt_state_reset(s);
    assert_int_equal(qp_rt_forward(m, s, g_ids, CTX, 0, CTX, b, &err), QP_OK);
    assert_memory_equal(a, b, (size_t)(CTX * V) * sizeof *a);
    /* per layer: q, k, v, output, router, then gate/up/down of each expert with tokens */
    assert_true(calls[0] >= 4 * (5 + 3) && calls[0] <= 4 * (5 + 3 * 16));
    assert_int_equal(calls[1], 4);
    qp_rt_state_set_observer(s, NULL);
    qp_rt_state_free(s);
    free(a);
    free(b);
    qp_rt_model_free(m);
}

static void test_moe_consistency(void **state)
{
    (void)state;
    qp_rt_model *m = open_model("models/qwen3-moe-tiny");
    const qp_rt_config *c = qp_rt_model_config(m);
    qp_calib_result r;
    run(m, 0, &r); /* routed pass only */
    const qp_imatrix *im = r.imatrix;
    const int64_t NE = c->n_expert, T = CTX * CHUNKS;
    assert_int_equal(r.n_chunks, CHUNKS);
    assert_int_equal(r.n_expert, NE);
    assert_int_equal(r.n_forced, 0);
    /* 4 attention + router + 3 stacked per layer; no token_embd/output */
    assert_int_equal(qp_imatrix_count(im), 8 * c->n_layer);
    assert_int_equal(qp_imatrix_find(im, "output.weight"), -1);
    for (int64_t l = 0; l < c->n_layer; l++) {
        int64_t q = entry(im, "blk.%lld.attn_q.weight", l), k = entry(im, "blk.%lld.attn_k.weight", l);
        int64_t v = entry(im, "blk.%lld.attn_v.weight", l), o = entry(im, "blk.%lld.attn_output.weight", l);
        int64_t gi = entry(im, "blk.%lld.ffn_gate_inp.weight", l);
        int64_t g = entry(im, "blk.%lld.ffn_gate_exps.weight", l), u = entry(im, "blk.%lld.ffn_up_exps.weight", l);
        int64_t d = entry(im, "blk.%lld.ffn_down_exps.weight", l);
        assert_same_sums(im, q, k, 0);
        assert_same_sums(im, q, v, 0);
        assert_true(qp_imatrix_rows(im, gi, 0) == (double)T);
        assert_true(qp_imatrix_rows(im, q, 0) == (double)T);
        assert_true(qp_imatrix_rows(im, o, 0) == (double)T);
        assert_int_equal(qp_imatrix_n_in(im, o), c->n_head * c->head_dim);
        assert_int_equal(qp_imatrix_n_expert(im, g), NE);
        assert_int_equal(qp_imatrix_n_in(im, d), c->n_ff_exp);
        int64_t total = 0;
        for (int64_t e = 0; e < NE; e++) {
            const int64_t n = r.routed[l * NE + e];
            total += n;
            assert_same_sums(im, g, u, e);
            assert_true(qp_imatrix_rows(im, g, e) == (double)n);
            assert_true(qp_imatrix_rows(im, d, e) == (double)n);
            assert_true(r.counts[l * NE + e] == (double)n);
        }
        assert_int_equal(total, T * c->n_expert_used);
    }
    qp_calib_result_free(&r);
    qp_rt_model_free(m);
}

static void test_moe_coverage(void **state)
{
    (void)state;
    qp_rt_model *m = open_model("models/qwen3-moe-tiny");
    const qp_rt_config *c = qp_rt_model_config(m);
    const int64_t NE = c->n_expert, MIN = 40;
    qp_calib_result plain, r;
    run(m, 0, &plain);
    run(m, MIN, &r);
    assert_true(r.n_forced > 0); /* 128 tokens x 4 over 16 experts: some fall short */
    assert_true(r.coverage_chunks >= 1 && r.coverage_chunks <= CHUNKS);
    int64_t n_forced = 0;
    for (int64_t l = 0; l < c->n_layer; l++) {
        int64_t g = entry(r.imatrix, "blk.%lld.ffn_gate_exps.weight", l);
        int64_t u = entry(r.imatrix, "blk.%lld.ffn_up_exps.weight", l);
        int64_t d = entry(r.imatrix, "blk.%lld.ffn_down_exps.weight", l);
        for (int64_t e = 0; e < NE; e++) {
            const int64_t i = l * NE + e;
            assert_int_equal(r.routed[i], plain.routed[i]);
            assert_int_equal(r.forced[i], r.routed[i] < MIN);
            n_forced += r.forced[i];
            const double want = r.forced[i] ? (double)MIN : (double)r.routed[i];
            assert_true(r.counts[i] == want);
            assert_true(r.counts[i] > 0);
            assert_same_sums(r.imatrix, g, u, e);
            for (int k = 0; k < 2; k++) {
                int64_t x = k == 0 ? g : d;
                int64_t x0 = qp_imatrix_find(plain.imatrix, qp_imatrix_name(r.imatrix, x));
                const int64_t n = qp_imatrix_n_in(r.imatrix, x);
                assert_true(qp_imatrix_rows(r.imatrix, x, e) == want);
                const float *s = qp_imatrix_sums(r.imatrix, x) + e * n;
                const float *s0 = qp_imatrix_sums(plain.imatrix, x0) + e * n;
                double sum = 0;
                for (int64_t j = 0; j < n; j++) {
                    /* the blend only adds to the routed sums */
                    assert_true(s[j] >= s0[j] * (1 - 1e-6f));
                    if (!r.forced[i])
                        assert_true(s[j] == s0[j]);
                    sum += s[j];
                }
                assert_true(sum > 0);
            }
            if (r.forced[i])
                assert_true(r.soft_mass[i] > 0);
        }
    }
    assert_int_equal(n_forced, r.n_forced);
    /* dense entries are untouched by the coverage pass */
    int64_t q = entry(r.imatrix, "blk.%lld.attn_q.weight", 2), q0 = entry(plain.imatrix, "blk.%lld.attn_q.weight", 2);
    assert_memory_equal(qp_imatrix_sums(r.imatrix, q), qp_imatrix_sums(plain.imatrix, q0), 256 * 4);

    /* the file: llama.cpp's keys plus qpack.calib.*; reads back equal */
    char *dir = qp_test_tmpdir("calib");
    char path[512];
    snprintf(path, sizeof path, "%s/im.gguf", dir);
    qp_err err;
    assert_int_equal(qp_calib_write(&r, path, &err), QP_OK);
    qp_gguf *gg = NULL;
    assert_int_equal(qp_gguf_open(path, &gg, &err), QP_OK);
    uint64_t v = 0;
    qp_gguf_str str;
    assert_true(qp_gguf_get_str(gg, "general.type", &str) && str.len == 7 && memcmp(str.ptr, "imatrix", 7) == 0);
    assert_true(qp_gguf_get_u64(gg, "imatrix.chunk_count", &v) && v == CHUNKS);
    assert_true(qp_gguf_get_u64(gg, "imatrix.chunk_size", &v) && v == CTX);
    assert_true(qp_gguf_get_u64(gg, "qpack.calib.min_expert_tokens", &v) && v == (uint64_t)MIN);
    int64_t kr = qp_gguf_find_key(gg, "qpack.calib.routed_counts"), kf = qp_gguf_find_key(gg, "qpack.calib.forced");
    assert_true(kr >= 0 && kf >= 0);
    assert_int_equal(qp_gguf_arr_type(gg, kr), QP_GGUF_U32);
    assert_int_equal(qp_gguf_arr_type(gg, kf), QP_GGUF_U8);
    assert_int_equal(qp_gguf_arr_len(gg, kr), c->n_layer * NE);
    for (int64_t i = 0; i < c->n_layer * NE; i++) {
        uint32_t rc;
        uint8_t f;
        memcpy(&rc, (const uint8_t *)qp_gguf_arr_data(gg, kr) + 4 * i, 4);
        memcpy(&f, (const uint8_t *)qp_gguf_arr_data(gg, kf) + i, 1);
        assert_int_equal(rc, r.routed[i]);
        assert_int_equal(f, r.forced[i]);
    }
    qp_gguf_close(gg);
    qp_imatrix *back = NULL;
    assert_int_equal(qp_imatrix_read(path, &back, &err), QP_OK);
    assert_int_equal(qp_imatrix_count(back), qp_imatrix_count(r.imatrix));
    int64_t d = entry(back, "blk.%lld.ffn_down_exps.weight", 1);
    for (int64_t e = 0; e < NE; e++)
        assert_true(qp_imatrix_rows(back, d, e) == r.counts[NE + e]);
    qp_imatrix_free(back);
    qp_test_rmtree(dir);
    free(dir);
    qp_calib_result_free(&plain);
    qp_calib_result_free(&r);
    qp_rt_model_free(m);
}

static void test_dense(void **state)
{
    (void)state;
    qp_rt_model *m = open_model("models/qwen3-tiny");
    const qp_rt_config *c = qp_rt_model_config(m);
    qp_calib_result r;
    run(m, 256, &r);
    assert_int_equal(r.n_expert, 0);
    assert_int_equal(r.n_forced, 0);
    assert_null(r.routed);
    assert_int_equal(qp_imatrix_count(r.imatrix), 7 * c->n_layer);
    for (int64_t l = 0; l < c->n_layer; l++) {
        int64_t g = entry(r.imatrix, "blk.%lld.ffn_gate.weight", l), u = entry(r.imatrix, "blk.%lld.ffn_up.weight", l);
        int64_t d = entry(r.imatrix, "blk.%lld.ffn_down.weight", l);
        assert_same_sums(r.imatrix, g, u, 0);
        assert_int_equal(qp_imatrix_n_in(r.imatrix, d), c->n_ff);
        assert_true(qp_imatrix_rows(r.imatrix, d, 0) == CTX * CHUNKS);
        assert_int_equal(qp_imatrix_n_expert(r.imatrix, d), 1);
    }
    qp_calib_result_free(&r);
    qp_rt_model_free(m);
}

static void test_too_short(void **state)
{
    (void)state;
    qp_rt_model *m = open_model("models/qwen3-tiny");
    qp_calib_job job = {.model = m, .tokens = g_ids, .n_tokens = 10, .n_ctx = CTX, .n_threads = 1};
    qp_calib_result r;
    qp_err err;
    assert_int_equal(qp_calib_run(&job, &r, &err), QP_ERR_BAD_INPUT);
    assert_null(r.imatrix);
    qp_calib_result_free(&r);
    qp_rt_model_free(m);
}

static void test_cli(void **state)
{
    (void)state;
    char *dir = qp_test_tmpdir("calib-cli");
    qp_run_result h = qp_run_qpack("calibrate --help");
    assert_int_equal(h.exit_code, 0);
    assert_non_null(strstr(h.out, "--min-expert-tokens"));
    qp_run_free(&h);
    qp_run_result bad = qp_run_qpack("calibrate %s", qp_fixture("models/qwen3-tiny"));
    assert_int_equal(bad.exit_code, 2);
    qp_run_free(&bad);

    qp_run_result r = qp_run_qpack("calibrate %s --text %s -o %s/moe.gguf -c %d --chunks %d -t 2 "
                                   "--min-expert-tokens 40 --json -q",
                                   qp_fixture("models/qwen3-moe-tiny"), qp_fixture("text/calib.txt"), dir, CTX,
                                   CHUNKS);
    if (r.exit_code != 0)
        fail_msg("exit %d: %s", r.exit_code, r.err);
    cJSON *o = cJSON_Parse(r.out);
    assert_non_null(o);
    assert_int_equal(cJSON_GetObjectItem(o, "chunks")->valueint, CHUNKS);
    assert_true(cJSON_GetObjectItem(o, "forced_experts")->valueint > 0);
    const cJSON *counts = cJSON_GetObjectItem(o, "counts");
    assert_int_equal(cJSON_GetArraySize(counts), 4);
    const cJSON *row;
    cJSON_ArrayForEach(row, counts)
    {
        const cJSON *x;
        cJSON_ArrayForEach(x, row) assert_true(x->valuedouble > 0);
    }
    cJSON_Delete(o);
    qp_run_free(&r);

    /* text mode: the coverage table */
    qp_run_result t = qp_run_qpack("calibrate %s --text %s -o %s/moe2.gguf -c %d --chunks %d -t 2 "
                                   "--min-expert-tokens 40 -q",
                                   qp_fixture("models/qwen3-moe-tiny"), qp_fixture("text/calib.txt"), dir, CTX,
                                   CHUNKS);
    assert_int_equal(t.exit_code, 0);
    assert_non_null(strstr(t.out, "routed tokens per expert"));
    assert_non_null(strchr(t.out, '*'));
    qp_run_free(&t);

    qp_run_result dn = qp_run_qpack("calibrate %s --text %s -o %s/dense.gguf -c %d --chunks 1 -t 2 -q",
                                    qp_fixture("models/qwen3-tiny"), qp_fixture("text/calib.txt"), dir, CTX);
    assert_int_equal(dn.exit_code, 0);
    qp_run_free(&dn);
    char path[512];
    snprintf(path, sizeof path, "%s/dense.gguf", dir);
    qp_imatrix *im = NULL;
    qp_err err;
    assert_int_equal(qp_imatrix_read(path, &im, &err), QP_OK);
    assert_int_equal(qp_imatrix_count(im), 28);
    qp_imatrix_free(im);
    qp_test_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_observer_is_passive),
        cmocka_unit_test(test_moe_consistency),
        cmocka_unit_test(test_moe_coverage),
        cmocka_unit_test(test_dense),
        cmocka_unit_test(test_too_short),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
