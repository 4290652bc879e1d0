/* test_verify_kquant.c - verify --against on a whole Q4_K_M conversion of
 * qwen3-tiny next to llama.cpp's own Q4_K_M of the same checkpoint
 * (fixtures/llama-cpp-quantized): both files compared with the same source
 * give, tensor by tensor, the same types and errors of the same size. This
 * is what a user does to check a qpack file against a known-good one. */
/* ctest-labels: slow threads */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/qp_test.h"

static cJSON *verify_json(const char *file, const char *src)
{
    qp_run_result r = qp_run_qpack("verify %s --against %s --json -q", file, src);
    if (r.exit_code)
        print_error("verify %s: %s\n", file, r.err);
    assert_int_equal(r.exit_code, 0);
    cJSON *j = cJSON_Parse(r.out);
    assert_non_null(j);
    qp_run_free(&r);
    return j;
}

static const cJSON *find(const cJSON *root, const char *name)
{
    const cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItem(root, "tensors"))
    {
        if (strcmp(cJSON_GetObjectItem(t, "name")->valuestring, name) == 0)
            return t;
    }
    return NULL;
}

static void test_q4_k_m_like_llama_cpp(void **state)
{
    (void)state;
    char *dir = qp_test_tmpdir("verify-kquant");
    assert_non_null(dir);
    char out[4200];
    snprintf(out, sizeof out, "%s/tiny-q4km.gguf", dir);
    const char *src = qp_fixture("models/qwen3-tiny");
    qp_run_result c = qp_run_qpack("convert %s -o %s --type Q4_K_M -q", src, out);
    assert_int_equal(c.exit_code, 0);
    qp_run_free(&c);
    cJSON *mine = verify_json(out, src);
    cJSON *ref = verify_json(qp_fixture("llama-cpp-quantized/qwen3-tiny-Q4_K_M.gguf"), src);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(mine, "tensors")),
                     cJSON_GetArraySize(cJSON_GetObjectItem(ref, "tensors")));
    int n_quant = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItem(mine, "tensors"))
    {
        const char *name = cJSON_GetObjectItem(t, "name")->valuestring;
        const cJSON *r = find(ref, name);
        if (!r)
            print_error("%s not in llama.cpp's file\n", name);
        assert_non_null(r);
        const char *ty = cJSON_GetObjectItem(t, "type")->valuestring;
        assert_string_equal(ty, cJSON_GetObjectItem(r, "type")->valuestring);
        double a = cJSON_GetObjectItem(t, "rel_rmse")->valuedouble, b = cJSON_GetObjectItem(r, "rel_rmse")->valuedouble;
        if (b == 0) {
            assert_true(a == 0);
            continue;
        }
        n_quant++;
        /* Same block format, same kind of search: errors within 5% of
         * llama.cpp's, tensor by tensor. */
        if (!(a <= 1.05 * b && a >= 0.8 * b))
            print_error("%s (%s): rel RMSE %.6f, llama.cpp %.6f\n", name, ty, a, b);
        assert_true(a <= 1.05 * b && a >= 0.8 * b);
    }
    assert_int_equal(n_quant, 29); /* 28 layer matrices + token_embd */
    double cm = cJSON_GetObjectItem(cJSON_GetObjectItem(mine, "summary"), "cosine")->valuedouble;
    double cr = cJSON_GetObjectItem(cJSON_GetObjectItem(ref, "summary"), "cosine")->valuedouble;
    assert_true(cm >= cr - 1e-4);
    cJSON_Delete(mine);
    cJSON_Delete(ref);
    qp_test_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_q4_k_m_like_llama_cpp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
