/* test_hf_vocab.c - tokenizer.json vocabulary reading, checked against the
 * fixture tokenizers and against what llama.cpp's converter wrote for the
 * real Qwen3 vocabulary (gguf-conventions/qwen3-realvocab-vocab.json). */
/* ctest-labels: fast */
#include "support/qp_test.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/hf_vocab.h"

static void count_types(const qp_hf_vocab *v, int64_t counts[8])
{
    memset(counts, 0, 8 * sizeof counts[0]);
    for (int64_t i = 0; i < v->n_tokens; i++) {
        int t = v->token_type[i];
        assert_true(t >= 1 && t <= 6);
        counts[t]++;
    }
}

static void test_tiny_fixture(void **state)
{
    (void)state;
    qp_hf_vocab v;
    qp_err err;
    qp_err_clear(&err);
    assert_int_equal(qp_hf_vocab_load(qp_fixture("models/qwen3-tiny/tokenizer.json"), &v, &err),
                     QP_OK);
    assert_int_equal(v.n_tokens, 8192);
    assert_int_equal(v.n_merges, 7933);
    assert_int_equal(v.n_added, 3);
    assert_true(v.normalizer_nfc);
    assert_true(v.byte_level);
    int64_t c[8];
    count_types(&v, c);
    assert_int_equal(c[QP_TOKEN_NORMAL], 8189);
    assert_int_equal(c[QP_TOKEN_CONTROL], 3);
    static const char *const specials[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(v.added_ids[i], 8189 + i);
        assert_string_equal(v.tokens[8189 + i], specials[i]);
        assert_int_equal(v.token_len[8189 + i], strlen(specials[i]));
        assert_int_equal(v.token_type[8189 + i], QP_TOKEN_CONTROL);
    }
    /* Pair-form merges come back as "a b", in rank order. */
    assert_string_equal(v.merges[0], "\xc4\xa0 \xc4\xa0");         /* "Ġ Ġ" */
    assert_string_equal(v.merges[1], "\xc4\xa0\xc4\xa0 \xc4\xa0\xc4\xa0");
    for (int64_t i = 0; i < v.n_tokens; i++) {
        assert_non_null(v.tokens[i]);
        assert_int_equal(strlen(v.tokens[i]), v.token_len[i]);
    }
    qp_hf_vocab_free(&v);
    qp_hf_vocab_free(&v); /* zeroed struct is fine */
    qp_hf_vocab_free(NULL);
}

/* The real Qwen3 vocabulary against llama.cpp's own export: every id from
 * 151643 on (before its [PAD] rows), the type counts and the first tokens
 * and merges. */
static void test_real_vocab_matches_llama_cpp(void **state)
{
    (void)state;
    size_t jlen;
    char *json = qp_test_read_file(qp_fixture("gguf-conventions/qwen3-realvocab-vocab.json"), &jlen);
    assert_non_null(json);
    cJSON *ref = cJSON_ParseWithLength(json, jlen);
    assert_non_null(ref);

    qp_hf_vocab v;
    qp_err err;
    qp_err_clear(&err);
    assert_int_equal(qp_hf_vocab_load(qp_fixture("qwen3-tokenizer/tokenizer.json"), &v, &err),
                     QP_OK);
    assert_int_equal(v.n_tokens, 151669);
    assert_int_equal(v.n_merges,
                     (int64_t)cJSON_GetObjectItem(ref, "n_merges")->valuedouble);
    assert_int_equal(v.n_added, 26);
    assert_true(v.normalizer_nfc);
    assert_true(v.byte_level);

    /* llama.cpp pads to the embedding's 151936 rows with UNUSED [PAD<id>]. */
    int64_t n_gguf = (int64_t)cJSON_GetObjectItem(ref, "n_tokens")->valuedouble;
    int64_t c[8];
    count_types(&v, c);
    c[QP_TOKEN_UNUSED] += n_gguf - v.n_tokens;
    const cJSON *counts = cJSON_GetObjectItem(ref, "token_type_counts");
    const cJSON *it;
    int64_t total = 0;
    cJSON_ArrayForEach(it, counts)
    {
        int t = atoi(it->string);
        assert_true(t >= 1 && t <= 6);
        assert_int_equal(c[t], (int64_t)it->valuedouble);
        total += (int64_t)it->valuedouble;
    }
    assert_int_equal(total, n_gguf);

    int checked = 0;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(ref, "tail_from_151643"))
    {
        int64_t id = (int64_t)cJSON_GetObjectItem(it, "id")->valuedouble;
        const char *tok = cJSON_GetObjectItem(it, "token")->valuestring;
        int type = (int)cJSON_GetObjectItem(it, "type")->valuedouble;
        if (id >= v.n_tokens) {
            char pad[32];
            snprintf(pad, sizeof pad, "[PAD%lld]", (long long)id);
            assert_string_equal(tok, pad);
            assert_int_equal(type, QP_TOKEN_UNUSED);
            continue;
        }
        assert_string_equal(v.tokens[id], tok);
        assert_int_equal(v.token_type[id], type);
        checked++;
    }
    assert_int_equal(checked, 26);

    int i = 0;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(ref, "first_tokens"))
    {
        assert_string_equal(v.tokens[i], it->valuestring);
        i++;
    }
    assert_true(i > 0);
    i = 0;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(ref, "first_merges"))
    {
        assert_string_equal(v.merges[i], it->valuestring);
        i++;
    }
    assert_true(i > 0);
    /* Non-special added tokens keep their text as written. */
    assert_string_equal(v.tokens[151667], "<think>");
    assert_int_equal(v.token_type[151667], QP_TOKEN_USER_DEFINED);
    /* special=false in the file, but "<|...|>" makes llama.cpp call it control. */
    assert_string_equal(v.tokens[151659], "<|fim_prefix|>");
    assert_int_equal(v.token_type[151659], QP_TOKEN_CONTROL);

    qp_hf_vocab_free(&v);
    cJSON_Delete(ref);
    free(json);
}

static qp_status parse_str(const char *json, qp_hf_vocab *v, qp_err *err)
{
    qp_err_clear(err);
    return qp_hf_vocab_parse(json, strlen(json), "mem.json", v, err);
}

static void test_holes_string_merges_and_kinds(void **state)
{
    (void)state;
    const char *json =
        "{\"normalizer\":null,"
        "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":["
        "{\"type\":\"Split\"},{\"type\":\"ByteLevel\"}]},"
        "\"added_tokens\":["
        "{\"id\":9,\"content\":\"<|x|>\",\"special\":false},"
        "{\"id\":7,\"content\":\"<s>\",\"special\":true},"
        "{\"id\":8,\"content\":\"<tool>\",\"special\":false},"
        "{\"id\":2,\"content\":\"ab\",\"special\":false}],"
        "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2,\"c\":4},"
        "\"merges\":[\"a b\"]}}";
    qp_hf_vocab v;
    qp_err err;
    assert_int_equal(parse_str(json, &v, &err), QP_OK);
    assert_int_equal(v.n_tokens, 10);
    assert_false(v.normalizer_nfc);
    assert_true(v.byte_level);
    assert_null(v.tokens[3]);
    assert_int_equal(v.token_type[3], QP_TOKEN_UNUSED);
    assert_null(v.tokens[5]);
    assert_null(v.tokens[6]);
    assert_int_equal(v.token_type[4], QP_TOKEN_NORMAL);
    assert_int_equal(v.token_type[7], QP_TOKEN_CONTROL);
    assert_int_equal(v.token_type[8], QP_TOKEN_USER_DEFINED);
    assert_int_equal(v.token_type[9], QP_TOKEN_CONTROL);
    assert_int_equal(v.token_type[2], QP_TOKEN_USER_DEFINED); /* added over vocab */
    assert_string_equal(v.tokens[2], "ab");
    assert_int_equal(v.n_added, 4);
    assert_int_equal(v.added_ids[0], 9);
    assert_int_equal(v.added_ids[3], 2);
    assert_int_equal(v.n_merges, 1);
    assert_string_equal(v.merges[0], "a b");
    qp_hf_vocab_free(&v);
}

static void test_rejects_bad_input(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        qp_status want;
    } cases[] = {
        {"{\"model\":", QP_ERR_BAD_INPUT},
        {"[]", QP_ERR_BAD_INPUT},
        {"{}", QP_ERR_BAD_INPUT},
        {"{\"model\":{\"type\":\"Unigram\",\"vocab\":{}}}", QP_ERR_UNSUPPORTED},
        {"{\"model\":{\"vocab\":[]}}", QP_ERR_BAD_INPUT},
        {"{\"model\":{\"vocab\":{\"a\":-1}}}", QP_ERR_BAD_INPUT},
        {"{\"model\":{\"vocab\":{\"a\":1.5}}}", QP_ERR_BAD_INPUT},
        {"{\"model\":{\"vocab\":{\"a\":\"1\"}}}", QP_ERR_BAD_INPUT},
        {"{\"model\":{\"vocab\":{\"a\":4294967296}}}", QP_ERR_BAD_INPUT},
        {"{\"model\":{\"vocab\":{\"a\":0,\"b\":0}}}", QP_ERR_BAD_INPUT},
        {"{\"model\":{\"vocab\":{\"a\":0},\"merges\":[\"ab\"]}}", QP_ERR_BAD_INPUT},
        {"{\"model\":{\"vocab\":{\"a\":0},\"merges\":[\"a b c\"]}}", QP_ERR_BAD_INPUT},
        {"{\"model\":{\"vocab\":{\"a\":0},\"merges\":[[\"a\"]]}}", QP_ERR_BAD_INPUT},
        {"{\"model\":{\"vocab\":{\"a\":0},\"merges\":[[\"a\",\"\"]]}}", QP_ERR_BAD_INPUT},
        {"{\"model\":{\"vocab\":{\"a\":0},\"merges\":[[\"a\",1]]}}", QP_ERR_BAD_INPUT},
        {"{\"model\":{\"vocab\":{\"a\":0},\"merges\":{}}}", QP_ERR_BAD_INPUT},
        {"{\"added_tokens\":[{\"id\":1}],\"model\":{\"vocab\":{\"a\":0}}}", QP_ERR_BAD_INPUT},
        {"{\"added_tokens\":[{\"id\":1,\"content\":\"x\"},{\"id\":1,\"content\":\"y\"}],"
         "\"model\":{\"vocab\":{\"a\":0}}}",
         QP_ERR_BAD_INPUT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        qp_hf_vocab v;
        qp_err err;
        qp_status st = parse_str(cases[i].json, &v, &err);
        if (st != cases[i].want)
            fail_msg("case %zu (%s): got %s", i, cases[i].json, qp_status_name(st));
        assert_string_equal(err.path, "mem.json");
        assert_true(err.msg[0] != '\0');
        assert_null(v.tokens); /* freed on failure */
        qp_hf_vocab_free(&v);
    }
    qp_hf_vocab v;
    qp_err err;
    qp_err_clear(&err);
    assert_int_equal(qp_hf_vocab_load("/nonexistent/tokenizer.json", &v, &err), QP_ERR_IO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny_fixture),
        cmocka_unit_test(test_real_vocab_matches_llama_cpp),
        cmocka_unit_test(test_holes_string_merges_and_kinds),
        cmocka_unit_test(test_rejects_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
