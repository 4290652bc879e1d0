/* test_omni_interop.c - llama.cpp loads the thinker file qpack writes for the
 * Qwen3-Omni fixture (arch qwen3vlmoe, M-RoPE sections, no deepstack) and
 * predicts, after every prefix of reference/qwen3-omni-tiny-random/
 * prompt.json, the token transformers' thinker ranks first. The weights are
 * random, so logits are compared through their argmax (near ties allowed by
 * qp_interop_compare_argmax). With text-only positions every M-RoPE section
 * gets the same position, which is plain RoPE: the reference applies. */
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
    g_dir = qp_test_tmpdir("omni-interop");
    return g_dir ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    qp_test_rmtree(g_dir);
    free(g_dir);
    return 0;
}

static void check(const char *type, int exact)
{
    char why[1024];
    if (qp_interop_ready(why, sizeof why) != 0) {
        print_message("SKIP: %s\n", why);
        skip();
    }
    char out[4096], prompt[4096], logits[4096];
    snprintf(out, sizeof out, "%s/omni-%s.gguf", g_dir, type);
    qp_run_result r = qp_run_qpack("convert %s/models/qwen3-omni-tiny-random -o %s --type %s -q --force", QP_FIXTURES,
                                   out, type);
    if (r.exit_code != 0)
        print_error("convert: %s\n", r.err);
    assert_int_equal(r.exit_code, 0);
    qp_run_free(&r);
    snprintf(prompt, sizeof prompt, "%s/reference/qwen3-omni-tiny-random/prompt.json", QP_FIXTURES);
    snprintf(logits, sizeof logits, "%s/reference/qwen3-omni-tiny-random/prompt.logits.f32", QP_FIXTURES);
    qp_interop_argmax_stats st;
    memset(&st, 0, sizeof st);
    int rc = qp_interop_compare_argmax(out, prompt, logits, 8192, &st, why, sizeof why);
    print_message("qwen3-omni thinker %s: %d/%d positions match the reference argmax (%d near ties, %d beyond)\n",
                  type, st.n_match, st.n_positions, st.n_near_tie, st.n_bad);
    if (exact) {
        if (rc != 0)
            print_error("%s\n", why);
        assert_int_equal(rc, 0);
    } else {
        assert_true(st.n_positions > 0); /* llama.cpp loaded and ran it */
    }
}

static void test_thinker_bf16(void **state) { (void)state; check("bf16", 1); }
static void test_thinker_q8_0(void **state) { (void)state; check("Q8_0", 0); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thinker_bf16),
        cmocka_unit_test(test_thinker_q8_0),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
