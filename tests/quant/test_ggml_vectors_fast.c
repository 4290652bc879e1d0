/* test_ggml_vectors_fast.c - the fast subset of test_ggml_vectors.c: every
 * stored row of every tag dequantizes bit-exactly to ggml's floats; the
 * deterministic legacy types reproduce ggml's bytes on a few rows; and on
 * the first GV_FAST_ROWS rows of each tensor our quantizers' error is no
 * worse than ggml's on the same rows (ggml's error computed here from its
 * own dequantized rows: plain for pure-*, importance-weighted for imat-*).
 */
/* ctest-labels: fast */
#include "tests/quant/ggml_vectors_common.h"

#define GV_FAST_ROWS 16

static gv_oracle g_o;

static int setup(void **state)
{
    (void)state;
    gv_load(&g_o);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    gv_free(&g_o);
    return 0;
}

static void test_dequant_bit_exact(void **state)
{
    (void)state;
    gv_check_dequant(&g_o);
}

static const gv_tag *find_tag(const char *name)
{
    for (int ti = 0; ti < g_o.ntags; ti++)
        if (strcmp(g_o.tags[ti].tag, name) == 0)
            return &g_o.tags[ti];
    fail_msg("tag %s missing from vectors.json", name);
    return NULL;
}

static void test_legacy_bytes_identical_subset(void **state)
{
    (void)state;
    static const char *const tags[] = {"pure-Q8_0", "pure-Q4_0", "pure-Q4_1", "pure-Q5_0",
                                       "pure-Q5_1"};
    for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++) {
        const gv_tag *g = find_tag(tags[i]);
        for (int k = 0; k < 2; k++) {
            const gv_tensor *t = &g_o.t[k];
            float *deq = malloc(sizeof(float) * (size_t)GV_FAST_ROWS * t->cols);
            uint8_t *mine = gv_quantize(t, g->type, 0, GV_FAST_ROWS, deq);
            uint8_t *ref = gv_ggml_q(g, t);
            size_t n = (size_t)GV_FAST_ROWS * qp_qtype_row_bytes(g->type, t->cols);
            assert_memory_equal(mine, ref, n);
            free(ref);
            free(mine);
            free(deq);
        }
    }
}

static void test_quant_error_subset(void **state)
{
    (void)state;
    int worse = 0;
    print_message("first %d rows: %-12s %-22s %10s %10s\n", GV_FAST_ROWS, "tag", "tensor", "ours",
                  "ggml");
    for (int ti = 0; ti < g_o.ntags; ti++) {
        const gv_tag *g = &g_o.tags[ti];
        for (int k = 0; k < 2; k++) {
            const gv_tensor *t = &g_o.t[k];
            const float *w = g->imat ? t->imp : NULL;
            float *deq = malloc(sizeof(float) * (size_t)GV_FAST_ROWS * t->cols);
            free(gv_quantize(t, g->type, g->imat, GV_FAST_ROWS, deq));
            float *ref = gv_ggml_deq(g, t);
            double mine = gv_rel_rmse(t->src, deq, GV_FAST_ROWS, t->cols, w);
            double theirs = gv_rel_rmse(t->src, ref, GV_FAST_ROWS, t->cols, w);
            /* equal for the byte-identical types: same floats, same sums */
            int ok = mine <= theirs;
            print_message("              %-12s %-22s %10.6f %10.6f %s\n", g->tag, t->name, mine,
                          theirs, ok ? "" : "WORSE");
            worse += !ok;
            free(ref);
            free(deq);
        }
    }
    assert_int_equal(worse, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dequant_bit_exact),
        cmocka_unit_test(test_legacy_bytes_identical_subset),
        cmocka_unit_test(test_quant_error_subset),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
