/* test_gguf_reader.c - the reader on files written by llama.cpp (two
 * quantized models and two importance-matrix files): header facts,
 * metadata values, tensor tables and tensor bytes checked against the
 * independent block vectors in tests/fixtures/ggml-vectors. */
/* ctest-labels: fast */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/qp_ggml_types.h"
#include "format/gguf.h"
#include "support/qp_test.h"

static qp_gguf *open_fixture(const char *rel)
{
    qp_gguf *g = NULL;
    qp_err err;
    char msg[2048];
    if (qp_gguf_open(qp_fixture(rel), &g, &err) != QP_OK) {
        qp_err_format(&err, msg, sizeof msg);
        fail_msg("%s", msg);
    }
    return g;
}

static void assert_str(qp_gguf_str s, const char *want)
{
    if (s.ptr == NULL || s.len != strlen(want) || memcmp(s.ptr, want, s.len) != 0)
        fail_msg("got '%.*s', want '%s'", (int)s.len, s.ptr ? s.ptr : "", want);
}

static void assert_key_str(const qp_gguf *g, const char *key, const char *want)
{
    qp_gguf_str s = {0};
    assert_true(qp_gguf_get_str(g, key, &s));
    assert_str(s, want);
}

static void assert_key_u64(const qp_gguf *g, const char *key, qp_gguf_vtype type, uint64_t want)
{
    int64_t i = qp_gguf_find_key(g, key);
    assert_true(i >= 0);
    assert_int_equal(qp_gguf_kv_type(g, i), type);
    uint64_t v = 0;
    assert_true(qp_gguf_get_u64(g, key, &v));
    assert_int_equal(v, want);
}

/* llama.cpp's Q2_K and Q4_K_M presets for qwen3-tiny, per tensor name. */
static uint32_t expected_type(const char *name, int q4km)
{
    if (strstr(name, "norm"))
        return QP_GGML_F32;
    if (strcmp(name, "token_embd.weight") == 0)
        return QP_GGML_Q6_K;
    int late = strncmp(name, "blk.2.", 6) == 0 || strncmp(name, "blk.3.", 6) == 0;
    int more_bits = strstr(name, "attn_v") || strstr(name, "ffn_down");
    if (q4km)
        return late && more_bits ? QP_GGML_Q6_K : QP_GGML_Q4_K;
    return more_bits || strstr(name, "attn_output") ? QP_GGML_Q3_K : QP_GGML_Q2_K;
}

static void check_quantized_model(const char *rel, int q4km, uint64_t size)
{
    qp_gguf *g = open_fixture(rel);
    assert_int_equal(qp_gguf_version(g), 3);
    assert_int_equal(qp_gguf_kv_count(g), 25);
    assert_int_equal(qp_gguf_tensor_count(g), 46);
    assert_int_equal(qp_gguf_alignment(g), 32);
    assert_int_equal(qp_gguf_data_offset(g), 265856); /* header 265855 bytes, aligned */
    assert_int_equal(qp_gguf_file_size(g), size);
    assert_string_equal(qp_gguf_path(g), qp_fixture(rel));

    /* Metadata as listed in gguf-conventions/qwen3-tiny-bf16.md. */
    assert_key_str(g, "general.architecture", "qwen3");
    assert_key_str(g, "general.type", "model");
    assert_key_str(g, "general.name", "Qwen3 Tiny");
    assert_key_str(g, "tokenizer.ggml.model", "gpt2");
    assert_key_str(g, "tokenizer.ggml.pre", "qwen2");
    assert_key_u64(g, "qwen3.block_count", QP_GGUF_U32, 4);
    assert_key_u64(g, "qwen3.context_length", QP_GGUF_U32, 4096);
    assert_key_u64(g, "qwen3.embedding_length", QP_GGUF_U32, 256);
    assert_key_u64(g, "qwen3.feed_forward_length", QP_GGUF_U32, 768);
    assert_key_u64(g, "qwen3.attention.head_count", QP_GGUF_U32, 4);
    assert_key_u64(g, "qwen3.attention.head_count_kv", QP_GGUF_U32, 2);
    assert_key_u64(g, "tokenizer.ggml.eos_token_id", QP_GGUF_U32, 8189);
    assert_key_u64(g, "general.quantization_version", QP_GGUF_U32, 2);
    assert_key_u64(g, "general.file_type", QP_GGUF_U32, q4km ? 15 : 10);
    assert_key_u64(g, "tokenizer.ggml.add_bos_token", QP_GGUF_BOOL, 0);
    double f = 0;
    assert_true(qp_gguf_get_f64(g, "qwen3.rope.freq_base", &f));
    assert_true(f == 1e6);
    assert_true(qp_gguf_get_f64(g, "qwen3.attention.layer_norm_rms_epsilon", &f));
    assert_true(f == (double)1e-6f);
    assert_int_equal(qp_gguf_kv_type(g, qp_gguf_find_key(g, "qwen3.rope.freq_base")),
                     QP_GGUF_F32);
    /* Wrong kinds and absent keys are refused, not converted. */
    uint64_t u;
    qp_gguf_str s;
    assert_false(qp_gguf_get_u64(g, "general.architecture", &u));
    assert_false(qp_gguf_get_u64(g, "qwen3.attention.layer_norm_rms_epsilon", &u));
    assert_false(qp_gguf_get_str(g, "qwen3.block_count", &s));
    assert_int_equal(qp_gguf_find_key(g, "no.such.key"), -1);
    assert_null(qp_gguf_find_tensor(g, "no.such.tensor"));

    /* Tokenizer arrays. */
    int64_t tok = qp_gguf_find_key(g, "tokenizer.ggml.tokens");
    assert_int_equal(qp_gguf_kv_type(g, tok), QP_GGUF_ARRAY);
    assert_int_equal(qp_gguf_arr_type(g, tok), QP_GGUF_STRING);
    assert_int_equal(qp_gguf_arr_len(g, tok), 8192);
    assert_null(qp_gguf_arr_data(g, tok));
    assert_str(qp_gguf_arr_str(g, tok, 0), "!");
    assert_str(qp_gguf_arr_str(g, tok, 2), "#");
    assert_str(qp_gguf_arr_str(g, tok, 8188), ".special");
    assert_str(qp_gguf_arr_str(g, tok, 8189), "<|endoftext|>");
    assert_str(qp_gguf_arr_str(g, tok, 8191), "<|im_end|>");
    assert_null(qp_gguf_arr_str(g, tok, 8192).ptr);
    int64_t mer = qp_gguf_find_key(g, "tokenizer.ggml.merges");
    assert_int_equal(qp_gguf_arr_len(g, mer), 7933);
    assert_str(qp_gguf_arr_str(g, mer, 0), "\xc4\xa0 \xc4\xa0");     /* "Ġ Ġ" */
    assert_str(qp_gguf_arr_str(g, mer, 1), "\xc4\xa0\xc4\xa0 \xc4\xa0\xc4\xa0");
    assert_str(qp_gguf_arr_str(g, mer, 7932), ".spec ial");
    int64_t tt = qp_gguf_find_key(g, "tokenizer.ggml.token_type");
    assert_int_equal(qp_gguf_arr_type(g, tt), QP_GGUF_I32);
    assert_int_equal(qp_gguf_arr_len(g, tt), 8192);
    const uint8_t *types = qp_gguf_arr_data(g, tt);
    int32_t t0, tlast;
    memcpy(&t0, types, 4);
    memcpy(&tlast, types + 4 * 8191, 4);
    assert_int_equal(t0, 1);
    assert_int_equal(tlast, 3); /* <|im_end|> is a control token */

    /* Keys in file order. */
    assert_str(qp_gguf_kv_key(g, 0), "general.architecture");
    assert_int_equal(qp_gguf_find_key(g, "general.architecture"), 0);

    /* Tensor table: every tensor's type per llama.cpp's preset, shapes, and
     * data inside the file, in order, not overlapping. */
    uint64_t prev_end = 0;
    for (int64_t i = 0; i < qp_gguf_tensor_count(g); i++) {
        const qp_gguf_tensor *t = qp_gguf_tensor_at(g, i);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        if (t->type != expected_type(name, q4km))
            fail_msg("%s: %s is %s", rel, name, qp_ggml_type_name(t->type));
        assert_ptr_equal(qp_gguf_find_tensor(g, name), t);
        assert_true(t->offset >= prev_end);
        assert_int_equal(t->offset % 32, 0);
        prev_end = t->offset + t->nbytes;
        assert_ptr_equal(t->data, (const uint8_t *)qp_gguf_tensor_at(g, 0)->data + t->offset);
    }
    assert_true(qp_gguf_data_offset(g) + prev_end <= size);
    const qp_gguf_tensor *emb = qp_gguf_find_tensor(g, "token_embd.weight");
    assert_int_equal(emb->n_dims, 2);
    assert_int_equal(emb->ne[0], 256);
    assert_int_equal(emb->ne[1], 8192);
    assert_int_equal(emb->ne[2], 1);
    assert_int_equal(emb->nbytes, 8192 * 210);
    const qp_gguf_tensor *kn = qp_gguf_find_tensor(g, "blk.0.attn_k_norm.weight");
    assert_int_equal(kn->n_dims, 1);
    assert_int_equal(kn->ne[0], 64);
    assert_int_equal(kn->nbytes, 256);
    const qp_gguf_tensor *down = qp_gguf_find_tensor(g, "blk.3.ffn_down.weight");
    assert_int_equal(down->ne[0], 768);
    assert_int_equal(down->ne[1], 256);

    /* output_norm is the bf16 checkpoint value widened to f32. */
    float norm[2];
    memcpy(norm, qp_gguf_find_tensor(g, "output_norm.weight")->data, sizeof norm);
    assert_true(norm[0] == 1.796875f && norm[1] == 2.03125f);

    /* blk.1.attn_q is quantized without imatrix, like ggml-vectors' pure-*
     * runs: the first 64 rows must be those exact bytes. */
    size_t qlen = 0;
    void *q = qp_test_read_file(qp_fixture(q4km ? "ggml-vectors/pure-Q4_K_S/blk.1.attn_q.weight.q"
                                                : "ggml-vectors/pure-Q2_K/blk.1.attn_q.weight.q"),
                                &qlen);
    assert_non_null(q);
    const qp_gguf_tensor *aq = qp_gguf_find_tensor(g, "blk.1.attn_q.weight");
    assert_int_equal(qlen, aq->nbytes / 4); /* 64 of 256 rows */
    assert_memory_equal(aq->data, q, qlen);
    free(q);

    qp_err err;
    assert_int_equal(qp_gguf_verify_checksums(g, &err), QP_ERR_NOT_FOUND);
    qp_gguf_close(g);
}

static void test_q4_k_m(void **state)
{
    (void)state;
    check_quantized_model("llama-cpp-quantized/qwen3-tiny-Q4_K_M.gguf", 1, 3885184);
}

static void test_q2_k(void **state)
{
    (void)state;
    check_quantized_model("llama-cpp-quantized/qwen3-tiny-Q2_K.gguf", 0, 3149440);
}

static void check_imatrix(const char *rel, int64_t n_tensors, int moe)
{
    qp_gguf *g = open_fixture(rel);
    assert_int_equal(qp_gguf_version(g), 3);
    assert_int_equal(qp_gguf_kv_count(g), 4);
    assert_int_equal(qp_gguf_tensor_count(g), n_tensors);
    assert_key_str(g, "general.type", "imatrix");
    assert_key_u64(g, "imatrix.chunk_count", QP_GGUF_U32, 114);
    assert_key_u64(g, "imatrix.chunk_size", QP_GGUF_U32, 512);
    int64_t ds = qp_gguf_find_key(g, "imatrix.datasets");
    assert_int_equal(qp_gguf_arr_len(g, ds), 1);
    qp_gguf_str d = qp_gguf_arr_str(g, ds, 0);
    assert_true(d.len > 9 && memcmp(d.ptr + d.len - 9, "calib.txt", 9) == 0);

    /* Every entry is a pair <name>.in_sum2 / <name>.counts, both F32. */
    for (int64_t i = 0; i < n_tensors; i += 2) {
        const qp_gguf_tensor *a = qp_gguf_tensor_at(g, i), *b = qp_gguf_tensor_at(g, i + 1);
        assert_int_equal(a->type, QP_GGML_F32);
        assert_int_equal(b->type, QP_GGML_F32);
        assert_true(a->name.len > 8 && memcmp(a->name.ptr + a->name.len - 8, ".in_sum2", 8) == 0);
        assert_true(b->name.len > 7 && memcmp(b->name.ptr + b->name.len - 7, ".counts", 7) == 0);
        assert_int_equal(a->name.len - 8, b->name.len - 7);
        assert_memory_equal(a->name.ptr, b->name.ptr, b->name.len - 7);
        assert_int_equal(b->ne[0], 1);
        assert_int_equal(a->ne[1], b->ne[1]); /* one count per expert */
    }
    const qp_gguf_tensor *c = qp_gguf_find_tensor(g, "blk.0.attn_q.weight.counts");
    float cnt;
    memcpy(&cnt, c->data, 4);
    assert_true(cnt == 114.0f * 512.0f);
    const qp_gguf_tensor *s2 = qp_gguf_find_tensor(g, "blk.0.attn_q.weight.in_sum2");
    assert_int_equal(s2->ne[0], 256);
    float v[256];
    memcpy(v, s2->data, sizeof v);
    for (int i = 0; i < 256; i++)
        assert_true(v[i] >= 0.0f && isfinite(v[i]));

    if (moe) {
        const qp_gguf_tensor *e = qp_gguf_find_tensor(g, "blk.1.ffn_down_exps.weight.counts");
        assert_non_null(e);
        assert_int_equal(e->n_dims, 2);
        assert_int_equal(e->ne[1], 16);
        float counts[16], sum = 0;
        memcpy(counts, e->data, sizeof counts);
        for (int x = 0; x < 16; x++) {
            if (x == 13)
                assert_true(counts[x] == 0.0f); /* expert 13 is never routed to */
            else
                assert_true(counts[x] > 0.0f);
            sum += counts[x];
        }
        assert_true(sum == 4.0f * 114.0f * 512.0f); /* top-4 routing */
        const qp_gguf_tensor *in = qp_gguf_find_tensor(g, "blk.1.ffn_down_exps.weight.in_sum2");
        assert_int_equal(in->ne[0], 256);
        assert_int_equal(in->ne[1], 16);
        assert_int_equal(in->nbytes, 256 * 16 * 4);
    } else {
        assert_non_null(qp_gguf_find_tensor(g, "blk.3.ffn_down.weight.in_sum2"));
        assert_int_equal(qp_gguf_find_tensor(g, "blk.3.ffn_down.weight.in_sum2")->ne[0], 768);
    }
    qp_gguf_close(g);
}

static void test_imatrix(void **state)
{
    (void)state;
    check_imatrix("ggml-vectors/imatrix-calib.gguf", 56, 0);
}

static void test_imatrix_moe(void **state)
{
    (void)state;
    check_imatrix("ggml-vectors/imatrix-calib-moe.gguf", 64, 1);
}

static void expect_open_fails(const char *path, qp_status want, const char *word)
{
    qp_gguf *g = (qp_gguf *)&g; /* must be reset to NULL */
    qp_err err;
    char msg[2048];
    qp_err_clear(&err);
    qp_status st = qp_gguf_open(path, &g, &err);
    qp_err_format(&err, msg, sizeof msg);
    if (st != want || !strstr(msg, path) || !strstr(msg, word))
        fail_msg("%s: status %s, message \"%s\"", path, qp_status_name(st), msg);
    assert_null(g);
}

static void test_tiny_and_missing_files(void **state)
{
    (void)state;
    char *dir = qp_test_tmpdir("gguf-reader");
    char path[4200];
    snprintf(path, sizeof path, "%s/empty.gguf", dir);
    assert_int_equal(qp_test_write_file(path, "", 0), 0);
    expect_open_fails(path, QP_ERR_BAD_INPUT, "empty");
    snprintf(path, sizeof path, "%s/magic-only.gguf", dir);
    assert_int_equal(qp_test_write_file(path, "GGUF", 4), 0);
    expect_open_fails(path, QP_ERR_BAD_INPUT, "truncated");
    snprintf(path, sizeof path, "%s/short.gguf", dir);
    assert_int_equal(qp_test_write_file(path, "GG", 2), 0);
    expect_open_fails(path, QP_ERR_BAD_INPUT, "too short");
    snprintf(path, sizeof path, "%s/text.gguf", dir);
    assert_int_equal(qp_test_write_file(path, "hello world, not a model file", 29), 0);
    expect_open_fails(path, QP_ERR_BAD_INPUT, "magic");
    snprintf(path, sizeof path, "%s/missing.gguf", dir);
    expect_open_fails(path, QP_ERR_IO, "No such file");
    expect_open_fails(dir, QP_ERR_IO, "directory");

    /* In memory: the empty image and the magic alone fail the same way. */
    qp_gguf *g = NULL;
    qp_err err;
    assert_int_equal(qp_gguf_open_memory(NULL, 0, "mem", &g, &err), QP_ERR_BAD_INPUT);
    assert_null(g);
    char *magic = malloc(4);
    memcpy(magic, "GGUF", 4);
    assert_int_equal(qp_gguf_open_memory(magic, 4, "mem", &g, &err), QP_ERR_BAD_INPUT);
    assert_int_equal(err.offset, 4);
    free(magic);
    qp_test_rmtree(dir);
    free(dir);
    qp_gguf_close(NULL);
}

static void test_vtype_names(void **state)
{
    (void)state;
    assert_string_equal(qp_gguf_vtype_name(QP_GGUF_U32), "UINT32");
    assert_string_equal(qp_gguf_vtype_name(QP_GGUF_STRING), "STRING");
    assert_string_equal(qp_gguf_vtype_name(QP_GGUF_F32), "FLOAT32");
    assert_string_equal(qp_gguf_vtype_name(QP_GGUF_F64), "FLOAT64");
    assert_string_equal(qp_gguf_vtype_name((qp_gguf_vtype)99), "?");
    assert_int_equal(qp_gguf_vtype_size(QP_GGUF_U64), 8);
    assert_int_equal(qp_gguf_vtype_size(QP_GGUF_BOOL), 1);
    assert_int_equal(qp_gguf_vtype_size(QP_GGUF_STRING), 0);
    assert_int_equal(qp_gguf_vtype_size(QP_GGUF_ARRAY), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_q4_k_m),
        cmocka_unit_test(test_q2_k),
        cmocka_unit_test(test_imatrix),
        cmocka_unit_test(test_imatrix_moe),
        cmocka_unit_test(test_tiny_and_missing_files),
        cmocka_unit_test(test_vtype_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
