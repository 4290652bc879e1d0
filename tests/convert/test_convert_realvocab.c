/* test_convert_realvocab.c - the exported vocabulary at full size: a 1-layer
 * Qwen3 with the real 151,669-entry Qwen3 tokenizer and 151,936 embedding
 * rows (gguf-conventions/qwen3-realvocab-bf16.md) is converted, and its
 * metadata, token types, special tail, padding and the sha256 of the token,
 * merge and type arrays are compared with what llama.cpp's converter wrote
 * (gguf-conventions/qwen3-realvocab-vocab.json). */
/* ctest-labels: fast */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/gguf.h"
#include "support/conventions.h"
#include "support/qp_test.h"
#include "support/tiny_ckpt.h"

static void sha256_of_file(const char *path, char out[65])
{
    qp_run_result r = qp_run_shell("sha256sum '%s'", path);
    assert_int_equal(r.exit_code, 0);
    memcpy(out, r.out, 64);
    out[64] = '\0';
    qp_run_free(&r);
}

static void write_joined(const qp_gguf *g, const char *key, const char *path)
{
    int64_t k = qp_gguf_find_key(g, key);
    assert_true(k >= 0);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (uint64_t i = 0; i < qp_gguf_arr_len(g, k); i++) {
        qp_gguf_str s = qp_gguf_arr_str(g, k, i);
        if (i)
            fputc('\n', f);
        fwrite(s.ptr, 1, s.len, f);
    }
    fclose(f);
}

static void test_realvocab(void **state)
{
    (void)state;
    char *root = qp_test_tmpdir("realvocab");
    char dir[4096], out[4096], path[4200], hash[65];
    snprintf(dir, sizeof dir, "%s/qwen3-realvocab-random", root);
    qp_tiny_ckpt c = {.n_layers = 1, .hidden = 64, .ffn = 256, .n_head = 2, .n_kv = 1, .head_dim = 32,
                      .vocab = 151936, .ctx = 40960, .bos_id = 151643, .eos_id = 151645,
                      .tokenizer_dir = qp_fixture("qwen3-tokenizer")};
    assert_int_equal(qp_tiny_ckpt_write(dir, &c), 0);
    snprintf(out, sizeof out, "%s/realvocab.gguf", root);
    qp_run_result r = qp_run_qpack("convert %s -o %s -q", dir, out);
    if (r.exit_code)
        print_error("%s", r.err);
    assert_int_equal(r.exit_code, 0);
    qp_run_free(&r);

    qp_gguf *g = NULL;
    qp_err err;
    assert_int_equal(qp_gguf_open(out, &g, &err), QP_OK);
    assert_int_equal(qp_conventions_compare(qp_fixture("gguf-conventions/qwen3-realvocab-bf16.md"), g), 0);

    size_t n;
    char *js = qp_test_read_file(qp_fixture("gguf-conventions/qwen3-realvocab-vocab.json"), &n);
    cJSON *ref = cJSON_Parse(js);
    free(js);
    assert_non_null(ref);

    /* token type counts */
    int64_t kt = qp_gguf_find_key(g, "tokenizer.ggml.token_type");
    uint64_t nt = qp_gguf_arr_len(g, kt);
    int32_t *types = malloc(nt * sizeof *types); /* array data is not aligned in the file */
    memcpy(types, qp_gguf_arr_data(g, kt), nt * sizeof *types);
    assert_int_equal(nt, 151936);
    long counts[8] = {0};
    for (uint64_t i = 0; i < nt; i++)
        if (types[i] >= 0 && types[i] < 8)
            counts[types[i]]++;
    cJSON *tc = cJSON_GetObjectItem(ref, "token_type_counts"), *it;
    cJSON_ArrayForEach(it, tc)
    {
        int t = atoi(it->string);
        assert_int_equal(counts[t], (long)it->valuedouble);
    }
    /* the tail of special and padding tokens */
    int64_t ktok = qp_gguf_find_key(g, "tokenizer.ggml.tokens");
    cJSON *tail = cJSON_GetObjectItem(ref, "tail_from_151643");
    int n_tail = 0;
    cJSON_ArrayForEach(it, tail)
    {
        int id = cJSON_GetObjectItem(it, "id")->valueint;
        const char *tok = cJSON_GetObjectItem(it, "token")->valuestring;
        qp_gguf_str s = qp_gguf_arr_str(g, ktok, (uint64_t)id);
        if (s.len != strlen(tok) || memcmp(s.ptr, tok, s.len) != 0)
            print_error("token %d: want %s got %.*s\n", id, tok, (int)s.len, s.ptr);
        assert_true(s.len == strlen(tok) && memcmp(s.ptr, tok, s.len) == 0);
        assert_int_equal(types[id], cJSON_GetObjectItem(it, "type")->valueint);
        n_tail++;
    }
    assert_int_equal(n_tail, 151936 - 151643);
    /* hashes of the whole arrays */
    snprintf(path, sizeof path, "%s/tokens.txt", root);
    write_joined(g, "tokenizer.ggml.tokens", path);
    sha256_of_file(path, hash);
    assert_string_equal(hash, cJSON_GetObjectItem(ref, "sha256_tokens_joined_by_newline")->valuestring);
    snprintf(path, sizeof path, "%s/merges.txt", root);
    write_joined(g, "tokenizer.ggml.merges", path);
    sha256_of_file(path, hash);
    assert_string_equal(hash, cJSON_GetObjectItem(ref, "sha256_merges_joined_by_newline")->valuestring);
    snprintf(path, sizeof path, "%s/types.bin", root);
    assert_int_equal(qp_test_write_file(path, types, nt * 4), 0);
    sha256_of_file(path, hash);
    assert_string_equal(hash, cJSON_GetObjectItem(ref, "sha256_token_types_as_int32_le")->valuestring);
    /* the chat template, verbatim */
    char *tc_json = qp_test_read_file(qp_fixture("qwen3-tokenizer/tokenizer_config.json"), &n);
    cJSON *tcfg = cJSON_Parse(tc_json);
    free(tc_json);
    qp_gguf_str tmpl;
    assert_true(qp_gguf_get_str(g, "tokenizer.chat_template", &tmpl));
    const char *want = cJSON_GetObjectItem(tcfg, "chat_template")->valuestring;
    assert_int_equal(tmpl.len, strlen(want));
    assert_memory_equal(tmpl.ptr, want, tmpl.len);
    cJSON_Delete(tcfg);
    cJSON_Delete(ref);
    free(types);
    qp_gguf_close(g);
    qp_test_rmtree(root);
    free(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_realvocab),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
