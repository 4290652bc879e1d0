/* test_model_split.c - the runtime opens a gguf-split set from any of its
 * files, and computes the same logits as from the single-file conversion;
 * an incomplete set is refused with the missing file named. */
/* ctest-labels: fast */
#include "support/qp_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime-lite/forward.h"
#include "runtime-lite/model.h"

static char *g_dir;

static int setup(void **state)
{
    (void)state;
    g_dir = qp_test_tmpdir("model-split");
    if (!g_dir)
        return -1;
    qp_run_qpack_ok("convert %s -o %s/one.gguf --type Q8_0 -q", qp_fixture("models/qwen3-moe-tiny"), g_dir);
    qp_run_qpack_ok("convert %s -o %s/set.gguf --type Q8_0 --split-max-size 6M -q",
                    qp_fixture("models/qwen3-moe-tiny"), g_dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    qp_test_rmtree(g_dir);
    free(g_dir);
    return 0;
}

/* Logits of a fixed 24-token prompt. */
static float *logits_of(const char *path, int64_t *n_vocab)
{
    qp_rt_model *m = NULL;
    qp_rt_state *s = NULL;
    qp_err err = {0};
    if (qp_rt_model_open(path, &m, &err) != QP_OK)
        print_error("%s: %s\n", path, err.msg);
    assert_non_null(m);
    assert_int_equal(qp_rt_state_new(m, 64, 0, 2, &s, &err), QP_OK);
    int32_t tok[24];
    for (int i = 0; i < 24; i++)
        tok[i] = (int32_t)(100 + 37 * i);
    *n_vocab = qp_rt_model_config(m)->n_vocab;
    float *out = malloc((size_t)(24 * *n_vocab) * sizeof *out);
    assert_non_null(out);
    assert_int_equal(qp_rt_forward(m, s, tok, 24, 0, 24, out, &err), QP_OK);
    qp_rt_state_free(s);
    qp_rt_model_free(m);
    return out;
}

static void test_any_file_of_a_set_gives_the_single_file_logits(void **state)
{
    (void)state;
    char path[4200];
    snprintf(path, sizeof path, "%s/set-00003-of-00004.gguf", g_dir);
    assert_true(qp_test_file_exists(path)); /* the fixture really splits in four */
    int64_t nv1 = 0, nv2 = 0;
    snprintf(path, sizeof path, "%s/one.gguf", g_dir);
    float *want = logits_of(path, &nv1);
    for (int k = 1; k <= 4; k++) {
        snprintf(path, sizeof path, "%s/set-%05d-of-00004.gguf", g_dir, k);
        float *got = logits_of(path, &nv2);
        assert_int_equal(nv1, nv2);
        assert_memory_equal(want, got, (size_t)(24 * nv1) * sizeof *got);
        free(got);
    }
    free(want);
}

static void test_incomplete_set_names_the_missing_file(void **state)
{
    (void)state;
    char from[4200], to[4200];
    snprintf(from, sizeof from, "%s/set-00002-of-00004.gguf", g_dir);
    snprintf(to, sizeof to, "%s/moved.gguf", g_dir);
    assert_int_equal(rename(from, to), 0);
    qp_run_result r = qp_run_qpack("ppl %s/set-00001-of-00004.gguf --text %s --chunks 1 -q", g_dir,
                                   qp_fixture("text/eval.txt"));
    assert_int_not_equal(r.exit_code, 0);
    assert_non_null(strstr(r.err, "set-00002-of-00004.gguf"));
    assert_int_equal(qp_count_lines(r.err), 1);
    qp_run_free(&r);
    assert_int_equal(rename(to, from), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_any_file_of_a_set_gives_the_single_file_logits),
        cmocka_unit_test(test_incomplete_set_names_the_missing_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
