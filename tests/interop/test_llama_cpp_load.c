/* test_llama_cpp_load.c - llama.cpp (prebuilt, through node-llama-cpp) loads
 * GGUF files and its greedy predictions are compared with the transformers
 * reference. For now the inputs are the llama.cpp-quantized fixtures (sanity
 * of the harness itself); qpack-written files go through the same
 * qp_interop_check_argmax once the converter exists.
 * Skips (with the reason) only when node/npm is unavailable. */
/* ctest-labels: interop */
#include "support/interop.h"
#include "support/qp_test.h"

#include <stdio.h>
#include <string.h>

#define REF_PROMPT "reference/qwen3-tiny/prompt.json"
#define REF_LOGITS "reference/qwen3-tiny/prompt.logits.f32"
#define Q4KM "llama-cpp-quantized/qwen3-tiny-Q4_K_M.gguf"
#define Q2K "llama-cpp-quantized/qwen3-tiny-Q2_K.gguf"
#define TINY_VOCAB 8192 /* tests/fixtures/README.md: 8192 tokens */
#define PROMPT_LEN 96   /* tokens in reference/qwen3-tiny/prompt.json */

static void skip_unless_ready(void)
{
    char why[600];
    if (qp_interop_ready(why, sizeof why) != 0) {
        print_message("SKIP: %s\n", why);
        skip();
    }
}

/* The tolerance rule itself, on synthetic rows (needs no node). */
static void test_argmax_compare_rules(void **state)
{
    (void)state;
    /* 3 positions x 4 tokens. */
    const float logits[3][4] = {
        {0.0f, 5.0f, 1.0f, 2.0f},       /* clear winner 1 */
        {3.0f, 3.0005f, 0.0f, 0.0f},    /* near tie 0/1 */
        {3.0f, 2.9f, 0.0f, 0.0f},       /* 0 beats 1 by 0.1 */
    };
    const int32_t ref[3] = {1, 1, 0};
    qp_interop_argmax_stats st;
    char why[256] = "";

    const int32_t same[3] = {1, 1, 0};
    assert_int_equal(qp_interop_argmax_compare(same, ref, 3, &logits[0][0], 4, &st, why,
                                               sizeof why), 0);
    assert_int_equal(st.n_match, 3);
    assert_int_equal(st.first_bad, -1);

    const int32_t tie[3] = {1, 0, 0};  /* picks the other side of the near tie */
    assert_int_equal(qp_interop_argmax_compare(tie, ref, 3, &logits[0][0], 4, &st, why,
                                               sizeof why), 0);
    assert_int_equal(st.n_match, 2);
    assert_int_equal(st.n_near_tie, 1);

    const int32_t off[3] = {1, 1, 1};  /* 0.1 below the maximum: a real mismatch */
    assert_int_equal(qp_interop_argmax_compare(off, ref, 3, &logits[0][0], 4, &st, why,
                                               sizeof why), 1);
    assert_int_equal(st.n_bad, 1);
    assert_int_equal(st.first_bad, 2);
    assert_non_null(strstr(why, "position 2"));

    const int32_t wild[3] = {1, 7, 0}; /* id outside the vocabulary */
    assert_int_equal(qp_interop_argmax_compare(wild, ref, 3, &logits[0][0], 4, &st, why,
                                               sizeof why), 1);
    assert_int_equal(st.first_bad, 1);
}

static void test_setup_installs_prebuilt(void **state)
{
    (void)state;
    skip_unless_ready();
    assert_true(qp_test_file_exists(QP_SOURCE_DIR "/tests/interop/node_modules/"
                                    "@node-llama-cpp/linux-x64/bins/linux-x64/llama-addon.node"));
    /* Idempotent: a second call gives the same verdict. */
    assert_int_equal(qp_interop_ready(NULL, 0), 0);
}

/* llama.cpp's own Q4_K_M file: loads, and most greedy predictions agree with
 * the bf16 reference (quantization moves some; llama.cpp reports 92.5 % top-1
 * agreement over eval.txt, this 96-token prompt gives ~81 %). */
static void test_q4km_loads_and_mostly_matches(void **state)
{
    (void)state;
    skip_unless_ready();
    qp_interop_argmax_stats st;
    char why[600] = "";
    int rc = qp_interop_compare_argmax(qp_fixture(Q4KM), qp_fixture(REF_PROMPT),
                                       qp_fixture(REF_LOGITS), TINY_VOCAB, &st, why, sizeof why);
    print_message("Q4_K_M: %d/%d positions match the reference argmax, %d near ties, "
                  "%d off (%s)\n", st.n_match, st.n_positions, st.n_near_tie, st.n_bad, why);
    assert_int_not_equal(rc, QP_INTEROP_SKIP);
    assert_int_equal(st.n_positions, PROMPT_LEN);
    assert_true((st.n_match + st.n_near_tie) * 100 > 80 * st.n_positions);
    /* Quantized, so the strict verdict must catch the remaining mismatches. */
    assert_int_equal(rc, 1);
    assert_true(st.first_bad >= 0);
    assert_non_null(strstr(why, "position"));
}

static void test_q2k_loads(void **state)
{
    (void)state;
    skip_unless_ready();
    qp_interop_argmax_stats st;
    char why[600] = "";
    int rc = qp_interop_compare_argmax(qp_fixture(Q2K), qp_fixture(REF_PROMPT),
                                       qp_fixture(REF_LOGITS), TINY_VOCAB, &st, why, sizeof why);
    print_message("Q2_K: %d/%d positions match the reference argmax, %d near ties\n",
                  st.n_match, st.n_positions, st.n_near_tie);
    assert_int_not_equal(rc, QP_INTEROP_SKIP);
    assert_int_equal(st.n_positions, PROMPT_LEN);
    /* 2-bit: far from exact (~56 %), but a misread file would be near 0 %. */
    assert_true(st.n_match * 100 > 40 * st.n_positions);
}

/* Fewer prefixes evaluate a shorter batch; with the script's settings (F32 KV
 * cache, no flash attention) the predictions do not depend on batch size. */
static void test_prefix_subset_agrees(void **state)
{
    (void)state;
    skip_unless_ready();
    qp_interop_next all, some;
    char why[600] = "";
    assert_int_equal(qp_interop_next_tokens(qp_fixture(Q4KM), qp_fixture(REF_PROMPT), 0, &all,
                                            why, sizeof why), 0);
    assert_int_equal(qp_interop_next_tokens(qp_fixture(Q4KM), qp_fixture(REF_PROMPT), 5, &some,
                                            why, sizeof why), 0);
    assert_int_equal(all.n, PROMPT_LEN);
    assert_int_equal(all.n_vocab, TINY_VOCAB);
    assert_int_equal(some.n, 5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(some.next[i], all.next[i]);
        assert_true(all.top1[i] >= all.top2[i]);
        assert_float_equal(some.top1[i], all.top1[i], 1e-4);
    }
    qp_interop_next_free(&all);
    qp_interop_next_free(&some);
}

static void test_not_a_gguf_fails(void **state)
{
    (void)state;
    skip_unless_ready();
    qp_interop_next r;
    char why[600] = "";
    assert_int_equal(qp_interop_next_tokens(qp_fixture(REF_PROMPT), qp_fixture(REF_PROMPT), 0, &r,
                                            why, sizeof why), 1);
    assert_non_null(strstr(why, "GGUF"));
    assert_null(r.next);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_argmax_compare_rules),
        cmocka_unit_test(test_setup_installs_prebuilt),
        cmocka_unit_test(test_q4km_loads_and_mostly_matches),
        cmocka_unit_test(test_q2k_loads),
        cmocka_unit_test(test_prefix_subset_agrees),
        cmocka_unit_test(test_not_a_gguf_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
