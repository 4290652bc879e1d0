/* test_convert_many_experts.c - nothing assumes today's sizes: a MoE layer
 * with more than 512 experts, spread over hundreds of shards, converts, and
 * every expert lands at its own place in the stacked tensors (bytes equal to
 * the source for a lossless conversion, so a mix-up of two experts or a
 * 16-bit expert index would show), and the quantized stack has the right
 * shape. */
/* ctest-labels: fast */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/qp_ggml_types.h"
#include "format/gguf.h"
#include "format/safetensors.h"
#include "support/qp_test.h"
#include "support/tiny_ckpt.h"

#define N_EXPERT 600
#define N_SHARDS 300

static char *g_dir;
static char g_ckpt[4096];

static int setup(void **state)
{
    (void)state;
    g_dir = qp_test_tmpdir("convert-many-experts");
    if (!g_dir)
        return -1;
    snprintf(g_ckpt, sizeof g_ckpt, "%s/ckpt", g_dir);
    qp_tiny_ckpt c = {0};
    c.moe = 1;
    c.n_layers = 1;
    c.hidden = 256; /* K-quant rows need multiples of 256 */
    c.n_expert = N_EXPERT;
    c.n_used = 8;
    c.expert_ffn = 32; /* small stacks; down rows (32) take the fallback type */
    c.n_shards = N_SHARDS;
    c.seed = 7;
    qp_tiny_ckpt_defaults(&c);
    return qp_tiny_ckpt_write(g_ckpt, &c);
}

static int teardown(void **state)
{
    (void)state;
    qp_test_rmtree(g_dir);
    free(g_dir);
    return 0;
}

static void test_checkpoint_has_hundreds_of_shards(void **state)
{
    (void)state;
    qp_st_model *st = NULL;
    qp_err err = {0};
    assert_int_equal(qp_st_open_dir(g_ckpt, &st, &err), QP_OK);
    assert_int_equal(qp_st_file_count(st), N_SHARDS);
    assert_non_null(qp_st_find(st, "model.layers.0.mlp.experts.599.down_proj.weight"));
    qp_st_close(st);
}

/* bf16 output: expert e's rows of the stack are exactly the source bytes. */
static void test_lossless_stack_keeps_every_expert_in_place(void **state)
{
    (void)state;
    char out[4200];
    snprintf(out, sizeof out, "%s/bf16.gguf", g_dir);
    qp_run_qpack_ok("convert %s -o %s --type bf16 -q -t 2", g_ckpt, out);

    qp_gguf *g = NULL;
    qp_st_model *st = NULL;
    qp_err err = {0};
    assert_int_equal(qp_gguf_open(out, &g, &err), QP_OK);
    assert_int_equal(qp_st_open_dir(g_ckpt, &st, &err), QP_OK);
    static const char *const kinds[3][2] = {
        {"blk.0.ffn_gate_exps.weight", "gate_proj"},
        {"blk.0.ffn_up_exps.weight", "up_proj"},
        {"blk.0.ffn_down_exps.weight", "down_proj"},
    };
    for (int k = 0; k < 3; k++) {
        const qp_gguf_tensor *t = qp_gguf_find_tensor(g, kinds[k][0]);
        assert_non_null(t);
        assert_int_equal(t->n_dims, 3);
        assert_int_equal(t->ne[2], N_EXPERT);
        uint64_t per_expert = t->nbytes / N_EXPERT;
        static const int experts[] = {0, 1, 255, 256, 511, 512, 513, 599};
        for (size_t i = 0; i < sizeof experts / sizeof experts[0]; i++) {
            char name[128];
            snprintf(name, sizeof name, "model.layers.0.mlp.experts.%d.%s.weight", experts[i], kinds[k][1]);
            const qp_st_tensor *s = qp_st_find(st, name);
            assert_non_null(s);
            assert_int_equal(s->nbytes, per_expert);
            void *src = malloc(s->nbytes);
            assert_non_null(src);
            assert_int_equal(qp_st_read_raw(st, s, 0, src, s->nbytes, &err), QP_OK);
            assert_memory_equal((const char *)t->data + (uint64_t)experts[i] * per_expert, src, s->nbytes);
            free(src);
        }
    }
    qp_st_close(st);
    qp_gguf_close(g);
}

static void test_quantized_stack_has_every_expert(void **state)
{
    (void)state;
    char out[4200];
    snprintf(out, sizeof out, "%s/q4.gguf", g_dir);
    qp_run_qpack_ok("convert %s -o %s --type Q4_K_M -q -t 2", g_ckpt, out);
    qp_gguf *g = NULL;
    qp_err err = {0};
    assert_int_equal(qp_gguf_open(out, &g, &err), QP_OK);
    const qp_gguf_tensor *t = qp_gguf_find_tensor(g, "blk.0.ffn_up_exps.weight");
    assert_non_null(t);
    assert_int_equal(t->ne[0], 256);
    assert_int_equal(t->ne[1], 32);
    assert_int_equal(t->ne[2], N_EXPERT);
    assert_int_equal(t->type, QP_GGML_Q4_K);
    assert_int_equal(t->nbytes, (uint64_t)N_EXPERT * 32 * 144); /* 144 bytes per 256 weights */
    assert_int_equal(qp_gguf_verify_checksums(g, &err), QP_OK);
    int64_t k = qp_gguf_find_key(g, "qwen3moe.expert_count");
    assert_true(k >= 0);
    qp_gguf_close(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checkpoint_has_hundreds_of_shards),
        cmocka_unit_test(test_lossless_stack_keeps_every_expert_in_place),
        cmocka_unit_test(test_quantized_stack_has_every_expert),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
