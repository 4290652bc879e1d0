/* test_presets.c - presets choose per-tensor types the way llama.cpp's
 * presets of the same name do: for qwen3-tiny, the exact mix of the two
 * llama.cpp-quantized files in the fixtures; for qwen3-moe-tiny, the mixes
 * in gguf-conventions/qwen3-moe-tiny-presets.md. */
/* ctest-labels: fast */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/qp_ggml_types.h"
#include "convert/job.h"
#include "format/gguf.h"
#include "support/qp_test.h"

static qp_job *open_job(const char *model, const char *preset)
{
    qp_job_options jo;
    memset(&jo, 0, sizeof jo);
    jo.preset = preset;
    jo.output_type = -1;
    jo.token_embd_type = -1;
    qp_job *job = NULL;
    qp_err err;
    qp_err_clear(&err);
    qp_status s = qp_job_open(qp_fixture(model), &jo, &job, &err);
    if (s != QP_OK)
        print_error("%s\n", err.msg);
    assert_int_equal(s, QP_OK);
    return job;
}

static void compare_with_llama_file(const char *preset, const char *file)
{
    qp_job *job = open_job("models/qwen3-tiny", preset);
    qp_gguf *g = NULL;
    qp_err err;
    assert_int_equal(qp_gguf_open(qp_fixture(file), &g, &err), QP_OK);
    const qp_plan *plan = qp_job_plan(job);
    assert_int_equal(qp_plan_count(plan), qp_gguf_tensor_count(g));
    int diffs = 0;
    for (int64_t i = 0; i < qp_plan_count(plan); i++) {
        const qp_plan_tensor *t = qp_plan_at(plan, i);
        const qp_gguf_tensor *lt = qp_gguf_find_tensor(g, t->name);
        assert_non_null(lt);
        if (lt->type != qp_job_type(job, i)) {
            print_error("%s %s: llama.cpp %s, qpack %s\n", preset, t->name, qp_ggml_type_name(lt->type),
                        qp_ggml_type_name(qp_job_type(job, i)));
            diffs++;
        }
    }
    assert_int_equal(diffs, 0);
    /* llama.cpp records the preset in general.file_type */
    uint64_t ft = 0;
    assert_true(qp_gguf_get_u64(g, "general.file_type", &ft));
    qp_convert_options opt;
    qp_job_convert_options(job, &opt);
    assert_int_equal(opt.file_type, ft);
    qp_gguf_close(g);
    qp_job_free(job);
}

static void test_dense_q4_k_m(void **state)
{
    (void)state;
    compare_with_llama_file("Q4_K_M", "llama-cpp-quantized/qwen3-tiny-Q4_K_M.gguf");
}

static void test_dense_q2_k(void **state)
{
    (void)state;
    compare_with_llama_file("Q2_K", "llama-cpp-quantized/qwen3-tiny-Q2_K.gguf");
}

/* Rows of "| `name` | Q4_K_M | Q3_K_M | Q2_K |" in the presets table. */
static void test_moe_presets(void **state)
{
    (void)state;
    static const char *presets[3] = {"Q4_K_M", "Q3_K_M", "Q2_K"};
    qp_job *jobs[3];
    for (int k = 0; k < 3; k++)
        jobs[k] = open_job("models/qwen3-moe-tiny", presets[k]);
    FILE *f = fopen(qp_fixture("gguf-conventions/qwen3-moe-tiny-presets.md"), "r");
    assert_non_null(f);
    char line[512];
    int rows = 0, diffs = 0;
    while (fgets(line, sizeof line, f)) {
        char name[128], t[3][16];
        if (sscanf(line, "| `%127[^`]` | %15s | %15s | %15s |", name, t[0], t[1], t[2]) != 4)
            continue;
        for (int k = 0; k < 3; k++) {
            const qp_plan *plan = qp_job_plan(jobs[k]);
            int64_t i = qp_plan_find(plan, name);
            assert_true(i >= 0);
            if (strcmp(qp_ggml_type_name(qp_job_type(jobs[k], i)), t[k]) != 0) {
                print_error("%s %s: llama.cpp %s, qpack %s\n", presets[k], name, t[k],
                            qp_ggml_type_name(qp_job_type(jobs[k], i)));
                diffs++;
            }
        }
        rows++;
    }
    fclose(f);
    assert_int_equal(rows, 30);
    assert_int_equal(diffs, 0);
    /* norms and the router stay F32 in every preset */
    for (int k = 0; k < 3; k++) {
        const qp_plan *plan = qp_job_plan(jobs[k]);
        for (int64_t i = 0; i < qp_plan_count(plan); i++)
            if (qp_plan_at(plan, i)->keep_f32)
                assert_int_equal(qp_job_type(jobs[k], i), QP_GGML_F32);
        qp_job_free(jobs[k]);
    }
}

static void test_overrides_and_fallback(void **state)
{
    (void)state;
    const char *pat[] = {"attn_q\\.weight$"};
    const uint32_t types[] = {QP_GGML_Q8_0};
    qp_job_options jo;
    memset(&jo, 0, sizeof jo);
    jo.preset = "Q4_K_M";
    jo.output_type = QP_GGML_Q5_K;
    jo.token_embd_type = -1;
    jo.n_overrides = 1;
    jo.override_patterns = pat;
    jo.override_types = types;
    qp_job *job = NULL;
    qp_err err;
    assert_int_equal(qp_job_open(qp_fixture("models/qwen3-moe-tiny"), &jo, &job, &err), QP_OK);
    const qp_plan *plan = qp_job_plan(job);
    assert_int_equal(qp_job_type(job, qp_plan_find(plan, "blk.2.attn_q.weight")), QP_GGML_Q8_0);
    assert_int_equal(qp_job_type(job, qp_plan_find(plan, "output.weight")), QP_GGML_Q5_K);
    assert_int_equal(qp_job_type(job, qp_plan_find(plan, "blk.2.attn_k.weight")), QP_GGML_Q4_K);
    qp_job_free(job);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dense_q4_k_m),
        cmocka_unit_test(test_dense_q2_k),
        cmocka_unit_test(test_moe_presets),
        cmocka_unit_test(test_overrides_and_fallback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
