/* test_convert_lossless.c - `qpack convert --type bf16` of the fixture
 * models: metadata and tensor tables as llama.cpp writes them, tensor bytes
 * equal to the source, checksums, determinism across thread counts. */
/* ctest-labels: fast */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/qp_half.h"
#include "format/gguf.h"
#include "format/safetensors.h"
#include "support/conventions.h"
#include "support/qp_test.h"

static char *g_dir;

static int setup(void **state)
{
    (void)state;
    g_dir = qp_test_tmpdir("convert-lossless");
    return g_dir ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    qp_test_rmtree(g_dir);
    free(g_dir);
    return 0;
}

static void convert(const char *model, const char *out, const char *extra)
{
    qp_run_result r = qp_run_qpack("convert %s -o %s --type bf16 -q %s", qp_fixture(model), out, extra);
    if (r.exit_code != 0)
        print_error("qpack convert failed (%d): %s\n", r.exit_code, r.err);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "wrote "));
    qp_run_free(&r);
}

/* Every tensor of the GGUF equals the source: BF16 matrices byte for byte
 * (stacked experts as the concatenation of the per-expert tensors), F32
 * vectors as the exact widening of the bf16 values. */
static void check_bytes_equal_source(const char *model_dir, const qp_gguf *g, int moe)
{
    qp_st_model *st = NULL;
    qp_err err;
    assert_int_equal(qp_st_open_dir(model_dir, &st, &err), QP_OK);
    int checked = 0;
    for (int64_t i = 0; i < qp_gguf_tensor_count(g); i++) {
        const qp_gguf_tensor *t = qp_gguf_tensor_at(g, i);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        int layer = -1;
        char kind[64] = "";
        sscanf(name, "blk.%d.%63[a-z_]", &layer, kind);
        const char *hf_suffix = NULL;
        static const char *map[][2] = {
            {"attn_norm", "input_layernorm"}, {"ffn_norm", "post_attention_layernorm"},
            {"attn_q", "self_attn.q_proj"},   {"attn_k", "self_attn.k_proj"},
            {"attn_v", "self_attn.v_proj"},   {"attn_output", "self_attn.o_proj"},
            {"attn_q_norm", "self_attn.q_norm"}, {"attn_k_norm", "self_attn.k_norm"},
            {"ffn_gate", "mlp.gate_proj"},    {"ffn_up", "mlp.up_proj"},
            {"ffn_down", "mlp.down_proj"},    {"ffn_gate_inp", "mlp.gate"},
        };
        for (size_t k = 0; k < sizeof map / sizeof map[0]; k++)
            if (strcmp(kind, map[k][0]) == 0)
                hf_suffix = map[k][1];
        int n_src = 1;
        const qp_st_tensor *srcs[64];
        char hf[160];
        if (strncmp(kind, "ffn_", 4) == 0 && strstr(kind, "_exps")) {
            assert_true(moe);
            char which[16];
            snprintf(which, sizeof which, "%.*s", (int)(strlen(kind) - 4 - 5), kind + 4);
            n_src = (int)t->ne[2];
            for (int e = 0; e < n_src; e++) {
                snprintf(hf, sizeof hf, "model.layers.%d.mlp.experts.%d.%s_proj.weight", layer, e, which);
                srcs[e] = qp_st_find(st, hf);
                assert_non_null(srcs[e]);
            }
        } else {
            if (layer >= 0) {
                assert_non_null(hf_suffix);
                snprintf(hf, sizeof hf, "model.layers.%d.%s.weight", layer, hf_suffix);
            } else if (!strcmp(name, "token_embd.weight")) {
                snprintf(hf, sizeof hf, "model.embed_tokens.weight");
            } else if (!strcmp(name, "output_norm.weight")) {
                snprintf(hf, sizeof hf, "model.norm.weight");
            } else {
                snprintf(hf, sizeof hf, "lm_head.weight");
            }
            srcs[0] = qp_st_find(st, hf);
            if (!srcs[0])
                print_error("no source for %s (%s)\n", name, hf);
            assert_non_null(srcs[0]);
        }
        const unsigned char *data = t->data;
        uint64_t off = 0;
        for (int e = 0; e < n_src; e++) {
            const qp_st_tensor *s = srcs[e];
            assert_int_equal(s->dtype, QP_ST_BF16);
            unsigned char *raw = malloc(s->nbytes);
            assert_int_equal(qp_st_read_raw(st, s, 0, raw, s->nbytes, &err), QP_OK);
            if (t->type == 30 /* BF16 */) {
                assert_memory_equal(data + off, raw, s->nbytes);
                off += s->nbytes;
            } else {
                assert_int_equal(t->type, 0 /* F32 */);
                for (uint64_t j = 0; j < s->n_elems; j++) {
                    uint16_t h;
                    float f;
                    memcpy(&h, raw + 2 * j, 2);
                    memcpy(&f, data + off + 4 * j, 4);
                    assert_true(f == qp_bf16_to_f32(h));
                }
                off += s->n_elems * 4;
            }
            free(raw);
        }
        assert_int_equal(off, t->nbytes);
        checked++;
    }
    assert_int_equal(checked, qp_gguf_tensor_count(g));
    qp_st_close(st);
}

static void check_model(const char *model, const char *conventions, int moe)
{
    char out[4096], out2[4096];
    snprintf(out, sizeof out, "%s/%s-t1.gguf", g_dir, model);
    snprintf(out2, sizeof out2, "%s/%s-t2.gguf", g_dir, model);
    char rel[256];
    snprintf(rel, sizeof rel, "models/%s", model);
    convert(rel, out, "-t 1");
    convert(rel, out2, "-t 2");

    size_t n1, n2;
    void *a = qp_test_read_file(out, &n1), *b = qp_test_read_file(out2, &n2);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(n1, n2);
    assert_memory_equal(a, b, n1); /* byte-identical at any thread count */
    /* nothing that varies between runs: no absolute paths in the file */
    assert_null(memmem(a, n1, QP_FIXTURES, strlen(QP_FIXTURES)));
    free(a);
    free(b);

    qp_gguf *g = NULL;
    qp_err err;
    assert_int_equal(qp_gguf_open(out, &g, &err), QP_OK);
    snprintf(rel, sizeof rel, "gguf-conventions/%s", conventions);
    assert_int_equal(qp_conventions_compare(qp_fixture(rel), g), 0);
    assert_int_equal(qp_gguf_verify_checksums(g, &err), QP_OK);
    snprintf(rel, sizeof rel, "models/%s", model);
    check_bytes_equal_source(qp_fixture(rel), g, moe);
    qp_gguf_close(g);

    qp_run_result r = qp_run_qpack("verify %s", out);
    assert_int_equal(r.exit_code, 0);
    qp_run_free(&r);
}

static void test_dense_bf16(void **state)
{
    (void)state;
    char out[4096];
    check_model("qwen3-tiny", "qwen3-tiny-bf16.md", 0);
    snprintf(out, sizeof out, "%s/qwen3-tiny-t1.gguf", g_dir);
    qp_gguf *g = NULL;
    qp_err err;
    assert_int_equal(qp_gguf_open(out, &g, &err), QP_OK);
    assert_null(qp_gguf_find_tensor(g, "output.weight")); /* tied embeddings */
    qp_gguf_close(g);
}

static void test_moe_bf16(void **state)
{
    (void)state;
    char out[4096];
    check_model("qwen3-moe-tiny", "qwen3-moe-tiny-bf16.md", 1);
    snprintf(out, sizeof out, "%s/qwen3-moe-tiny-t1.gguf", g_dir);
    qp_gguf *g = NULL;
    qp_err err;
    assert_int_equal(qp_gguf_open(out, &g, &err), QP_OK);
    assert_non_null(qp_gguf_find_tensor(g, "output.weight")); /* untied lm_head */
    qp_gguf_close(g);
}

static void test_existing_output_refused(void **state)
{
    (void)state;
    char out[4096];
    snprintf(out, sizeof out, "%s/exists.gguf", g_dir);
    assert_int_equal(qp_test_write_file(out, "x", 1), 0);
    qp_run_result r = qp_run_qpack("convert %s -o %s -q", qp_fixture("models/qwen3-tiny"), out);
    assert_int_equal(r.exit_code, 2);
    assert_non_null(strstr(r.err, out));
    qp_run_free(&r);
    size_t n;
    char *c = qp_test_read_file(out, &n);
    assert_int_equal(n, 1); /* untouched */
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dense_bf16),
        cmocka_unit_test(test_moe_bf16),
        cmocka_unit_test(test_existing_output_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
