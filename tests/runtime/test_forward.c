/* test_forward.c - logits of the reference prompt from the HF checkpoints
 * (through the conversion plan) against transformers' float32 logits, for
 * the dense and the MoE model; the same logits for any thread count, token
 * by token through the KV cache, and with the scalar kernels. */
/* ctest-labels: fast threads */
#include "support/qp_test.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/qp_cpu.h"
#include "common/qp_ggml_types.h"
#include "convert/convert.h"
#include "runtime-lite/forward.h"
#include "runtime-lite/model.h"

typedef struct {
    int32_t *tokens;
    int64_t n_tok;
    int32_t *argmax;
    float *logits; /* [n_tok][n_vocab] */
    int64_t n_vocab;
} reference;

static void load_reference(const char *model, reference *r)
{
    char rel[256];
    snprintf(rel, sizeof rel, "reference/%s/prompt.json", model);
    size_t n = 0;
    char *json = qp_test_read_file(qp_fixture(rel), &n);
    assert_non_null(json);
    cJSON *root = cJSON_ParseWithLength(json, n);
    assert_non_null(root);
    const cJSON *toks = cJSON_GetObjectItem(root, "tokens");
    const cJSON *am = cJSON_GetObjectItem(root, "argmax");
    const cJSON *shape = cJSON_GetObjectItem(root, "shape");
    r->n_tok = cJSON_GetArraySize(toks);
    r->n_vocab = (int64_t)cJSON_GetArrayItem(shape, 1)->valuedouble;
    assert_int_equal(cJSON_GetArraySize(am), r->n_tok);
    r->tokens = malloc((size_t)r->n_tok * sizeof *r->tokens);
    r->argmax = malloc((size_t)r->n_tok * sizeof *r->argmax);
    for (int64_t i = 0; i < r->n_tok; i++) {
        r->tokens[i] = (int32_t)cJSON_GetArrayItem(toks, (int)i)->valuedouble;
        r->argmax[i] = (int32_t)cJSON_GetArrayItem(am, (int)i)->valuedouble;
    }
    cJSON_Delete(root);
    free(json);
    snprintf(rel, sizeof rel, "reference/%s/prompt.logits.f32", model);
    r->logits = qp_test_read_file(qp_fixture(rel), &n);
    assert_non_null(r->logits);
    assert_int_equal(n, (size_t)(r->n_tok * r->n_vocab) * sizeof(float));
}

static void free_reference(reference *r)
{
    free(r->tokens);
    free(r->argmax);
    free(r->logits);
}

static float *run(const qp_rt_model *m, const reference *r, int n_threads, int one_by_one)
{
    const qp_rt_config *c = qp_rt_model_config(m);
    float *out = malloc((size_t)(r->n_tok * c->n_vocab) * sizeof(float));
    qp_rt_state *s = NULL;
    qp_err err;
    assert_int_equal(qp_rt_state_new(m, 128, 0, n_threads, &s, &err), QP_OK);
    if (one_by_one) {
        /* a prefix as one batch, then token by token through the cache */
        const int64_t pre = r->n_tok > 37 ? 37 : r->n_tok / 2;
        assert_int_equal(qp_rt_forward(m, s, r->tokens, pre, 0, pre, out, &err), QP_OK);
        for (int64_t t = pre; t < r->n_tok; t++)
            assert_int_equal(qp_rt_forward(m, s, r->tokens + t, 1, 0, 1, out + t * c->n_vocab, &err), QP_OK);
    } else {
        assert_int_equal(qp_rt_forward(m, s, r->tokens, r->n_tok, 0, r->n_tok, out, &err), QP_OK);
    }
    assert_int_equal(qp_rt_state_pos(s), r->n_tok);
    qp_rt_state_free(s);
    return out;
}

static void check_against_reference(const reference *r, const float *got)
{
    double max_ref = 0, max_diff = 0;
    for (int64_t i = 0; i < r->n_tok * r->n_vocab; i++) {
        if (fabs(r->logits[i]) > max_ref)
            max_ref = fabs(r->logits[i]);
        double d = fabs((double)r->logits[i] - (double)got[i]);
        if (d > max_diff)
            max_diff = d;
    }
    print_message("max |logit| %.4f, max |diff| %.3g (limit %.3g)\n", max_ref, max_diff, 2e-3 * max_ref);
    assert_true(max_diff <= 2e-3 * max_ref);
    for (int64_t t = 0; t < r->n_tok; t++) {
        const float *row = got + t * r->n_vocab;
        int64_t best = 0;
        for (int64_t v = 1; v < r->n_vocab; v++)
            if (row[v] > row[best])
                best = v;
        assert_int_equal(best, r->argmax[t]);
    }
}

static void check_model(const char *name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "models/%s", name);
    qp_rt_model *m = NULL;
    qp_err err;
    qp_status st = qp_rt_model_open(qp_fixture(rel), &m, &err);
    if (st != QP_OK) {
        char buf[2048];
        qp_err_format(&err, buf, sizeof buf);
        print_message("%s\n", buf);
    }
    assert_int_equal(st, QP_OK);
    reference r;
    load_reference(name, &r);
    assert_int_equal(qp_rt_model_config(m)->n_vocab, r.n_vocab);

    float *one = run(m, &r, 1, 0);
    check_against_reference(&r, one);
    float *two = run(m, &r, 2, 0);
    assert_memory_equal(one, two, (size_t)(r.n_tok * r.n_vocab) * sizeof(float));
    float *inc = run(m, &r, 2, 1);
    assert_memory_equal(one, inc, (size_t)(r.n_tok * r.n_vocab) * sizeof(float));
    free(two);
    free(inc);

    /* weights pre-packed into panels: the same bits, batch and token by token */
    qp_rt_model *mp = NULL;
    uint64_t packed_bytes = 0;
    assert_int_equal(qp_rt_model_open(qp_fixture(rel), &mp, &err), QP_OK);
    assert_int_equal(qp_rt_model_prepack(mp, (uint64_t)1 << 30, 2, &packed_bytes, &err), QP_OK);
    assert_true(packed_bytes > 0);
    assert_non_null(qp_rt_model_weights(mp)->output.packed);
    float *pk = run(mp, &r, 2, 0);
    assert_memory_equal(one, pk, (size_t)(r.n_tok * r.n_vocab) * sizeof(float));
    free(pk);
    pk = run(mp, &r, 1, 1);
    assert_memory_equal(one, pk, (size_t)(r.n_tok * r.n_vocab) * sizeof(float));
    free(pk);
    qp_rt_model_free(mp);
    /* a limit below the size leaves the model as it is */
    assert_int_equal(qp_rt_model_open(qp_fixture(rel), &mp, &err), QP_OK);
    assert_int_equal(qp_rt_model_prepack(mp, 1000, 2, &packed_bytes, &err), QP_OK);
    assert_int_equal(packed_bytes, 0);
    assert_null(qp_rt_model_weights(mp)->token_embd.packed);
    qp_rt_model_free(mp);

    qp_cpu_force_scalar(1);
    float *sc = run(m, &r, 2, 0);
    qp_cpu_force_scalar(0);
    check_against_reference(&r, sc);
    free(sc);
    free(one);
    free_reference(&r);
    qp_rt_model_free(m);
}

static void test_dense_from_hf(void **state)
{
    (void)state;
    check_model("qwen3-tiny");
}

static void test_moe_from_hf(void **state)
{
    (void)state;
    check_model("qwen3-moe-tiny");
}

/* The same checkpoint converted to a bf16 GGUF (the converter keeps the
 * weights bit for bit): the reference logits again, and exactly the logits
 * of the HF directory, since both run the same kernels on the same bits. */
static void check_bf16_gguf(const char *name)
{
    char rel[256], dir_tmp[64], out[4096];
    snprintf(rel, sizeof rel, "models/%s", name);
    snprintf(dir_tmp, sizeof dir_tmp, "rt-forward-%s", name);
    char *dir = qp_test_tmpdir(dir_tmp);
    assert_non_null(dir);
    snprintf(out, sizeof out, "%s/%s-bf16.gguf", dir, name);
    qp_convert_options opt;
    memset(&opt, 0, sizeof opt);
    opt.out_path = out;
    opt.file_type = 32; /* MOSTLY_BF16 */
    opt.default_type = QP_GGML_BF16;
    opt.n_threads = 2;
    qp_convert_stats cs;
    qp_err err;
    qp_status st = qp_convert_run(qp_fixture(rel), &opt, &cs, &err);
    if (st != QP_OK) {
        char buf[2048];
        qp_err_format(&err, buf, sizeof buf);
        print_message("convert: %s\n", buf);
    }
    assert_int_equal(st, QP_OK);
    qp_rt_model *g = NULL, *h = NULL;
    assert_int_equal(qp_rt_model_open(out, &g, &err), QP_OK);
    assert_non_null(qp_rt_model_gguf(g));
    assert_int_equal(qp_rt_model_open(qp_fixture(rel), &h, &err), QP_OK);
    reference r;
    load_reference(name, &r);
    float *lg = run(g, &r, 2, 0);
    check_against_reference(&r, lg);
    float *lh = run(h, &r, 2, 0);
    assert_memory_equal(lg, lh, (size_t)(r.n_tok * r.n_vocab) * sizeof(float));
    free(lg);
    free(lh);
    free_reference(&r);
    qp_rt_model_free(g);
    qp_rt_model_free(h);
    qp_test_rmtree(dir);
    free(dir);
}

static void test_dense_from_bf16_gguf(void **state)
{
    (void)state;
    check_bf16_gguf("qwen3-tiny");
}

static void test_moe_from_bf16_gguf(void **state)
{
    (void)state;
    check_bf16_gguf("qwen3-moe-tiny");
}

static void test_errors(void **state)
{
    (void)state;
    qp_rt_model *m = NULL;
    qp_err err;
    assert_int_equal(qp_rt_model_open(qp_fixture("models/qwen3-tiny"), &m, &err), QP_OK);
    qp_rt_state *s = NULL;
    assert_int_equal(qp_rt_state_new(m, 8, 0, 1, &s, &err), QP_OK);
    int32_t bad = 8192;
    float logits[8192];
    assert_int_equal(qp_rt_forward(m, s, &bad, 1, 0, 1, logits, &err), QP_ERR_BAD_INPUT);
    int32_t toks[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    assert_int_equal(qp_rt_forward(m, s, toks, 9, 0, 0, NULL, &err), QP_ERR_USAGE);
    assert_int_equal(qp_rt_forward(m, s, toks, 2, 1, 2, logits, &err), QP_ERR_USAGE);
    qp_rt_state_free(s);
    qp_rt_model_free(m);
    assert_int_not_equal(qp_rt_model_open(qp_fixture("models/no-such-model"), &m, &err), QP_OK);
    assert_null(m);
}

/* Qwen3-Omni: the thinker's text model, straight from the checkpoint and
 * from the STEM.gguf that `qpack convert` writes (arch qwen3vlmoe). The
 * reference logits confirm that M-RoPE with equal positions in every
 * section is plain rotary on text-only input. */
static void test_omni_thinker(void **state)
{
    (void)state;
    check_model("qwen3-omni-tiny-random");
    char *dir = qp_test_tmpdir("rt-forward-omni");
    assert_non_null(dir);
    char out[4096];
    snprintf(out, sizeof out, "%s/omni.gguf", dir);
    qp_run_result rr = qp_run_qpack("convert %s -o %s --type bf16 -q", qp_fixture("models/qwen3-omni-tiny-random"), out);
    if (rr.exit_code != 0)
        print_message("%s\n", rr.err);
    assert_int_equal(rr.exit_code, 0);
    qp_run_free(&rr);
    qp_rt_model *g = NULL, *h = NULL;
    qp_err err;
    assert_int_equal(qp_rt_model_open(out, &g, &err), QP_OK);
    assert_int_equal(qp_rt_model_open(qp_fixture("models/qwen3-omni-tiny-random"), &h, &err), QP_OK);
    reference r;
    load_reference("qwen3-omni-tiny-random", &r);
    float *lg = run(g, &r, 2, 0);
    check_against_reference(&r, lg);
    float *lh = run(h, &r, 2, 0);
    assert_memory_equal(lg, lh, (size_t)(r.n_tok * r.n_vocab) * sizeof(float));
    free(lg);
    free(lh);
    free_reference(&r);
    qp_rt_model_free(g);
    qp_rt_model_free(h);
    qp_test_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dense_from_hf),
        cmocka_unit_test(test_moe_from_hf),
        cmocka_unit_test(test_dense_from_bf16_gguf),
        cmocka_unit_test(test_moe_from_bf16_gguf),
        cmocka_unit_test(test_omni_thinker),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
