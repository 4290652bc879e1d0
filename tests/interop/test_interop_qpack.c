/* test_interop_qpack.c - every GGUF qpack writes for the fixture models is
 * loaded by a real llama.cpp (prebuilt, through node-llama-cpp), whose greedy
 * next token after each prefix of reference/<model>/prompt.json must equal
 * the transformers reference argmax (a mismatch is allowed only where the
 * reference's top two logits are within 1e-3). Lossless files must match
 * everywhere; quantized files are checked to load and mostly agree. Skips
 * with the reason only when node/npm is unavailable. */
/* ctest-labels: interop */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/interop.h"
#include "support/qp_test.h"

static char *g_dir;

static int setup(void **state)
{
    (void)state;
    g_dir = qp_test_tmpdir("interop-qpack");
    return g_dir ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    qp_test_rmtree(g_dir);
    free(g_dir);
    return 0;
}

static void convert(const char *model, const char *type, const char *extra, char *out, size_t out_len)
{
    snprintf(out, out_len, "%s/%s-%s%s.gguf", g_dir, model, type, extra[0] ? "-split" : "");
    qp_run_result r = qp_run_qpack("convert %s/models/%s -o %s --type %s -q --force %s", QP_FIXTURES, model, out, type,
                                   extra);
    if (r.exit_code != 0)
        print_error("convert %s %s: %s\n", model, type, r.err);
    assert_int_equal(r.exit_code, 0);
    qp_run_free(&r);
}

static void check_ex(const char *model, const char *type, const char *extra, int exact)
{
    char why[1024];
    if (qp_interop_ready(why, sizeof why) != 0) {
        print_message("SKIP: %s\n", why);
        skip();
    }
    char out[4096], prompt[4096], logits[4096];
    convert(model, type, extra, out, sizeof out);
    if (extra[0]) { /* llama.cpp loads a split set from its first file */
        size_t len = strlen(out);
        snprintf(out + len - 5, sizeof out - len + 5, "-00001-of-%05d.gguf", 3);
    }
    snprintf(prompt, sizeof prompt, "%s/reference/%s/prompt.json", QP_FIXTURES, model);
    snprintf(logits, sizeof logits, "%s/reference/%s/prompt.logits.f32", QP_FIXTURES, model);
    qp_interop_argmax_stats st;
    memset(&st, 0, sizeof st);
    int rc = qp_interop_compare_argmax(out, prompt, logits, 8192, &st, why, sizeof why);
    print_message("%s %s: %d/%d positions match the reference argmax (%d near ties, %d beyond)\n", model, type,
                  st.n_match, st.n_positions, st.n_near_tie, st.n_bad);
    if (exact) {
        if (rc != 0)
            print_error("%s\n", why);
        assert_int_equal(rc, 0);
    } else {
        assert_true(st.n_positions > 0); /* llama.cpp loaded and ran it */
        assert_true(st.n_match * 10 >= st.n_positions * 7);
    }
}

static void check(const char *model, const char *type, int exact) { check_ex(model, type, "", exact); }

/* 3 files: the MoE fixture's tensors hold about 35 MB in bf16. */
static void test_moe_split(void **state) { (void)state; check_ex("qwen3-moe-tiny", "bf16", "--split-max-size 14M", 1); }

static void test_dense_bf16(void **state) { (void)state; check("qwen3-tiny", "bf16", 1); }
static void test_moe_bf16(void **state) { (void)state; check("qwen3-moe-tiny", "bf16", 1); }
static void test_dense_f32(void **state) { (void)state; check("qwen3-tiny", "f32", 1); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dense_bf16),
        cmocka_unit_test(test_moe_bf16),
        cmocka_unit_test(test_dense_f32),
        cmocka_unit_test(test_moe_split),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
