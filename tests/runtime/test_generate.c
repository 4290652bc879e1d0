/* test_generate.c - `qpack generate`: greedy text from the HF directory and
 * from its bf16 GGUF (tokenizer from tokenizer.json vs from the GGUF token
 * arrays) is the same, the continuation is the argmax of the forward pass,
 * and the command's usage errors. */
/* ctest-labels: fast threads */
#include "support/qp_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/qp_ggml_types.h"
#include "convert/convert.h"
#include "runtime-lite/forward.h"
#include "runtime-lite/model.h"
#include "runtime-lite/model_tok.h"

static char *g_dir;
static char g_gguf[4096];

static int setup(void **state)
{
    (void)state;
    g_dir = qp_test_tmpdir("rt-generate");
    if (!g_dir)
        return -1;
    snprintf(g_gguf, sizeof g_gguf, "%s/tiny-bf16.gguf", g_dir);
    qp_convert_options opt;
    memset(&opt, 0, sizeof opt);
    opt.out_path = g_gguf;
    opt.file_type = 32;
    opt.default_type = QP_GGML_BF16;
    opt.n_threads = 2;
    qp_convert_stats cs;
    qp_err err;
    return qp_convert_run(qp_fixture("models/qwen3-tiny"), &opt, &cs, &err) == QP_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    qp_test_rmtree(g_dir);
    free(g_dir);
    return 0;
}

static const char PROMPT[] = "def fibonacci(n):";

/* The greedy continuation computed here with the library. */
static char *library_greedy(const char *model_path, int n)
{
    qp_rt_model *m = NULL;
    qp_tokenizer *tok = NULL;
    qp_err err;
    int32_t eos = -1, *ids = NULL;
    size_t n_ids = 0;
    assert_int_equal(qp_rt_model_open(model_path, &m, &err), QP_OK);
    assert_int_equal(qp_rt_model_tokenizer(m, &tok, &eos, &err), QP_OK);
    assert_int_equal(eos, 8189);
    assert_int_equal(qp_tokenizer_encode(tok, PROMPT, strlen(PROMPT), 0, &ids, &n_ids, &err), QP_OK);
    const int64_t V = qp_rt_model_config(m)->n_vocab;
    qp_rt_state *s = NULL;
    assert_int_equal(qp_rt_state_new(m, 64, 0, 1, &s, &err), QP_OK);
    float *logits = malloc((size_t)V * sizeof *logits);
    int32_t *all = malloc((n_ids + (size_t)n) * sizeof *all);
    memcpy(all, ids, n_ids * sizeof *all);
    assert_int_equal(qp_rt_forward(m, s, ids, (int64_t)n_ids, (int64_t)n_ids - 1, 1, logits, &err), QP_OK);
    size_t total = n_ids;
    for (int i = 0; i < n; i++) {
        int32_t best = 0;
        for (int64_t v = 1; v < V; v++)
            if (logits[v] > logits[best])
                best = (int32_t)v;
        if (best == eos)
            break;
        all[total++] = best;
        assert_int_equal(qp_rt_forward(m, s, &best, 1, 0, 1, logits, &err), QP_OK);
    }
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(qp_tokenizer_decode(tok, all, total, QP_TOK_DECODE_SKIP_CONTROL, &text, &len, &err), QP_OK);
    free(all);
    free(logits);
    free(ids);
    qp_rt_state_free(s);
    qp_tokenizer_free(tok);
    qp_rt_model_free(m);
    return text;
}

static void test_same_text_hf_and_gguf(void **state)
{
    (void)state;
    qp_run_result a = qp_run_qpack("generate %s -p def -n 24 -t 2 -q", qp_fixture("models/qwen3-tiny"));
    qp_run_result b = qp_run_qpack("generate %s -p def -n 24 -t 1 -q", g_gguf);
    assert_int_equal(a.exit_code, 0);
    assert_int_equal(b.exit_code, 0);
    assert_true(strncmp(a.out, "def", 3) == 0);
    assert_true(strlen(a.out) > 10);
    assert_string_equal(a.out, b.out);
    qp_run_free(&a);
    qp_run_free(&b);
}

static void test_matches_library_greedy(void **state)
{
    (void)state;
    char *want = library_greedy(qp_fixture("models/qwen3-tiny"), 16);
    char *want_g = library_greedy(g_gguf, 16);
    assert_string_equal(want, want_g);
    /* the command with the prompt given as one argument: through a shell */
    qp_run_result r = qp_run_shell("%s generate %s -p '%s' -n 16 -q", QP_BINARY, qp_fixture("models/qwen3-tiny"),
                                   PROMPT);
    assert_int_equal(r.exit_code, 0);
    size_t n = strlen(r.out);
    assert_true(n > 0 && r.out[n - 1] == '\n');
    r.out[n - 1] = '\0';
    assert_string_equal(r.out, want);
    qp_run_free(&r);
    free(want);
    free(want_g);
}

/* The tokenizer built from a GGUF's token arrays (llama.cpp's own file)
 * gives transformers' ids for the whole eval text. */
static void test_gguf_tokenizer_ids(void **state)
{
    (void)state;
    qp_rt_model *m = NULL;
    qp_tokenizer *tok = NULL;
    qp_err err;
    int32_t eos = -1, *ids = NULL;
    size_t n = 0, text_len = 0, ref_len = 0;
    assert_int_equal(qp_rt_model_open(qp_fixture("llama-cpp-quantized/qwen3-tiny-Q4_K_M.gguf"), &m, &err), QP_OK);
    assert_int_equal(qp_rt_model_tokenizer(m, &tok, &eos, &err), QP_OK);
    assert_int_equal(eos, 8189);
    char *text = qp_test_read_file(qp_fixture("text/eval.txt"), &text_len);
    int32_t *ref = qp_test_read_file(qp_fixture("reference/tiny-tokenizer/eval.ids.i32"), &ref_len);
    assert_non_null(text);
    assert_non_null(ref);
    assert_int_equal(qp_tokenizer_encode(tok, text, text_len, QP_TOK_ENCODE_NO_CONTROL, &ids, &n, &err), QP_OK);
    assert_int_equal(n, ref_len / 4);
    assert_memory_equal(ids, ref, ref_len);
    free(ids);
    free(ref);
    free(text);
    qp_tokenizer_free(tok);
    qp_rt_model_free(m);
}

static void test_usage(void **state)
{
    (void)state;
    qp_run_result r = qp_run_qpack("generate --help");
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "-n, --n-predict"));
    qp_run_free(&r);
    r = qp_run_qpack("generate %s", qp_fixture("models/qwen3-tiny"));
    assert_int_equal(r.exit_code, 2);
    qp_run_free(&r);
    r = qp_run_qpack("generate %s -p x -n -3", qp_fixture("models/qwen3-tiny"));
    assert_int_equal(r.exit_code, 2);
    qp_run_free(&r);
    r = qp_run_qpack("generate %s -p x --bogus", qp_fixture("models/qwen3-tiny"));
    assert_int_equal(r.exit_code, 2);
    qp_run_free(&r);
    r = qp_run_qpack("generate /nonexistent/model -p x");
    assert_int_equal(r.exit_code, 2);
    qp_run_free(&r);
    /* -n 0: the prompt alone */
    r = qp_run_qpack("generate %s -p def -n 0 -q", qp_fixture("models/qwen3-tiny"));
    assert_int_equal(r.exit_code, 0);
    assert_string_equal(r.out, "def\n");
    qp_run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_text_hf_and_gguf),
        cmocka_unit_test(test_matches_library_greedy),
        cmocka_unit_test(test_gguf_tokenizer_ids),
        cmocka_unit_test(test_usage),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
