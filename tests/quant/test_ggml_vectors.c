/* test_ggml_vectors.c - the ggml oracle on whole tensors: every stored row
 * of every tag dequantizes bit-exactly to ggml's floats; our quantizers
 * reach an error no worse than llama-quantize's figures in vectors.json
 * (plain relative RMSE for pure-*, importance-weighted for imat-*); the
 * deterministic legacy types reproduce ggml's bytes. Prints the table of
 * our figures against ggml's. test_ggml_vectors_fast.c is the fast subset.
 */
/* ctest-labels: slow */
#include "tests/quant/ggml_vectors_common.h"

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

/* Relative slack for figures that should be equal (the byte-identical
 * types): vectors.json's figures differ from a double-precision sum of the
 * same floats by up to ~5e-8 relative. */
#define GV_EQ_SLACK 1e-6

static void test_quant_error_whole_tensor(void **state)
{
    (void)state;
    int worse = 0;
    print_message("%-12s %-22s %12s %12s %12s %12s\n", "tag", "tensor", "ours", "ggml",
                  "ours(w)", "ggml(w)");
    for (int ti = 0; ti < g_o.ntags; ti++) {
        const gv_tag *g = &g_o.tags[ti];
        for (int k = 0; k < 2; k++) {
            const gv_tensor *t = &g_o.t[k];
            float *deq = malloc(sizeof(float) * (size_t)t->rows * t->cols);
            free(gv_quantize(t, g->type, g->imat, t->rows, deq));
            double r = gv_rel_rmse(t->src, deq, t->rows, t->cols, NULL);
            double rw = gv_rel_rmse(t->src, deq, t->rows, t->cols, t->imp);
            double mine = g->imat ? rw : r, ref = g->imat ? g->wrel_rmse[k] : g->rel_rmse[k];
            int ok = mine <= ref * (1.0 + GV_EQ_SLACK);
            print_message("%-12s %-22s %12.7f %12.7f %12.7f %12.7f %+.2e %s\n", g->tag, t->name,
                          r, g->rel_rmse[k], rw, g->wrel_rmse[k], (mine / ref - 1.0),
                          ok ? "" : "WORSE");
            worse += !ok;
            free(deq);
        }
    }
    assert_int_equal(worse, 0);
}

static void test_legacy_bytes_identical(void **state)
{
    (void)state;
    static const char *const tags[] = {"pure-Q8_0", "pure-Q4_0", "pure-Q4_1", "pure-Q5_0",
                                       "pure-Q5_1"};
    for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++) {
        const gv_tag *g = NULL;
        for (int ti = 0; ti < g_o.ntags; ti++)
            if (strcmp(g_o.tags[ti].tag, tags[i]) == 0)
                g = &g_o.tags[ti];
        assert_non_null(g);
        for (int k = 0; k < 2; k++) {
            const gv_tensor *t = &g_o.t[k];
            float *deq = malloc(sizeof(float) * (size_t)GV_DEQ_ROWS * t->cols);
            uint8_t *mine = gv_quantize(t, g->type, 0, GV_DEQ_ROWS, deq);
            uint8_t *ref = gv_ggml_q(g, t);
            size_t n = (size_t)GV_DEQ_ROWS * qp_qtype_row_bytes(g->type, t->cols);
            for (size_t b = 0; b < n; b++)
                if (mine[b] != ref[b])
                    fail_msg("%s %s: byte %zu is 0x%02x, ggml 0x%02x", g->tag, t->name, b,
                             mine[b], ref[b]);
            free(ref);
            free(mine);
            free(deq);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dequant_bit_exact),
        cmocka_unit_test(test_legacy_bytes_identical),
        cmocka_unit_test(test_quant_error_whole_tensor),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
