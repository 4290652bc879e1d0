/* test_tokenizer.c - the byte-level BPE tokenizer against Hugging Face's
 * ids (fixtures/reference: 38 edge cases and two full texts, for the tiny
 * and the real Qwen3 vocabulary), plus construction from GGUF-style arrays,
 * merge order, added-token handling and error paths.
 * Everything runs in about a second even under ASan (the piece cache makes
 * the 600 KB of text cheap), so the full-text oracle checks stay "fast". */
/* ctest-labels: fast */
#include "support/qp_test.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "runtime-lite/tokenizer.h"

static qp_tokenizer *g_tiny, *g_real;

static int setup(void **state)
{
    (void)state;
    qp_err err;
    qp_err_clear(&err);
    if (qp_tokenizer_load_dir(qp_fixture("models/qwen3-tiny"), &g_tiny, &err) != QP_OK)
        return -1;
    if (qp_tokenizer_load_json(qp_fixture("qwen3-tokenizer/tokenizer.json"), &g_real, &err) !=
        QP_OK)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    qp_tokenizer_free(g_tiny);
    qp_tokenizer_free(g_real);
    return 0;
}

static void assert_roundtrip(const qp_tokenizer *t, const int32_t *ids, size_t n,
                             const char *text, size_t len)
{
    char *dec;
    size_t dl;
    qp_err err;
    assert_int_equal(qp_tokenizer_decode(t, ids, n, 0, &dec, &dl, &err), QP_OK);
    assert_int_equal(dl, len);
    assert_memory_equal(dec, text, len);
    assert_int_equal(dec[dl], '\0');
    free(dec);
}

/* Encode a fixture text and compare with the reference ids, id for id. */
static void check_text(const qp_tokenizer *t, const char *text_rel, const char *ids_rel)
{
    size_t tl, rl;
    char *text = qp_test_read_file(qp_fixture(text_rel), &tl);
    int32_t *ref = qp_test_read_file(qp_fixture(ids_rel), &rl);
    assert_non_null(text);
    assert_non_null(ref);
    assert_int_equal(rl % 4, 0);
    int32_t *ids;
    size_t n;
    qp_err err;
    qp_err_clear(&err);
    assert_int_equal(qp_tokenizer_encode(t, text, tl, 0, &ids, &n, &err), QP_OK);
    size_t same = 0;
    while (same < n && same < rl / 4 && ids[same] == ref[same])
        same++;
    if (same != n || n != rl / 4)
        fail_msg("%s: %zu ids, reference %zu, first difference at %zu", text_rel, n, rl / 4, same);
    assert_roundtrip(t, ids, n, text, tl);
    free(ids);
    free(ref);
    free(text);
}

static void test_tiny_full_texts(void **state)
{
    (void)state;
    assert_int_equal(qp_tokenizer_n_tokens(g_tiny), 8192);
    check_text(g_tiny, "text/calib.txt", "reference/tiny-tokenizer/calib.ids.i32");
    check_text(g_tiny, "text/eval.txt", "reference/tiny-tokenizer/eval.ids.i32");
}

static void test_real_full_texts(void **state)
{
    (void)state;
    assert_int_equal(qp_tokenizer_n_tokens(g_real), 151669);
    check_text(g_real, "text/calib.txt", "reference/qwen3-tokenizer/calib.ids.i32");
    check_text(g_real, "text/eval.txt", "reference/qwen3-tokenizer/eval.ids.i32");
}

static void test_real_edge_cases(void **state)
{
    (void)state;
    size_t len;
    char *all = qp_test_read_file(qp_fixture("reference/qwen3-tokenizer/cases.jsonl"), &len);
    assert_non_null(all);
    int n_cases = 0;
    char *save = NULL;
    for (char *line = strtok_r(all, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *j = cJSON_Parse(line);
        assert_non_null(j);
        const cJSON *text = cJSON_GetObjectItem(j, "text");
        const cJSON *want = cJSON_GetObjectItem(j, "ids");
        assert_true(cJSON_IsString(text) && cJSON_IsArray(want));
        size_t tl = strlen(text->valuestring);
        int32_t *ids;
        size_t n;
        qp_err err;
        qp_err_clear(&err);
        assert_int_equal(qp_tokenizer_encode(g_real, text->valuestring, tl, 0, &ids, &n, &err),
                         QP_OK);
        int ok = (int)n == cJSON_GetArraySize(want);
        for (size_t i = 0; ok && i < n; i++)
            ok = ids[i] == cJSON_GetArrayItem(want, (int)i)->valueint;
        if (!ok)
            fail_msg("case %d differs: %s", n_cases, line);
        /* Decoding gives the normalized text back ("é" composed). */
        char *nfc = (char *)utf8proc_NFC((const utf8proc_uint8_t *)text->valuestring);
        assert_non_null(nfc);
        assert_roundtrip(g_real, ids, n, nfc, strlen(nfc));
        free(nfc);
        free(ids);
        cJSON_Delete(j);
        n_cases++;
    }
    assert_int_equal(n_cases, 38);
    free(all);
}

static void encode_str(const qp_tokenizer *t, const char *s, unsigned flags, int32_t **ids,
                       size_t *n)
{
    qp_err err;
    qp_err_clear(&err);
    assert_int_equal(qp_tokenizer_encode(t, s, strlen(s), flags, ids, n, &err), QP_OK);
}

static void test_added_tokens(void **state)
{
    (void)state;
    int32_t *ids;
    size_t n;
    /* User-defined <think> is matched as one token even glued to text. */
    encode_str(g_real, "x<think>y</think>", 0, &ids, &n);
    assert_int_equal(n, 4);
    assert_int_equal(ids[1], 151667);
    assert_int_equal(ids[3], 151668);
    free(ids);

    const char *chat = "<|im_start|>user<|im_end|>";
    encode_str(g_real, chat, 0, &ids, &n);
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], 151644);
    assert_int_equal(ids[2], 151645);
    /* Control tokens can be left out of the decoded text. */
    char *dec;
    size_t dl;
    qp_err err;
    assert_int_equal(qp_tokenizer_decode(g_real, ids, n, QP_TOK_DECODE_SKIP_CONTROL, &dec, &dl,
                                         &err),
                     QP_OK);
    assert_string_equal(dec, "user");
    free(dec);
    free(ids);

    /* With NO_CONTROL the control text is ordinary text; <think> still matches. */
    encode_str(g_real, "<|im_end|><think>", QP_TOK_ENCODE_NO_CONTROL, &ids, &n);
    assert_true(n > 2);
    for (size_t i = 0; i + 1 < n; i++)
        assert_int_not_equal(qp_tokenizer_token_type(g_real, ids[i]), 3);
    assert_int_equal(ids[n - 1], 151667);
    assert_roundtrip(g_real, ids, n, "<|im_end|><think>", strlen("<|im_end|><think>"));
    free(ids);

    assert_int_equal(qp_tokenizer_find(g_real, "<|im_end|>", 10), 151645);
    assert_int_equal(qp_tokenizer_find(g_real, "Hello", 5), 9707);
    assert_int_equal(qp_tokenizer_find(g_real, "no such token!", 14), -1);
    assert_int_equal(qp_tokenizer_token_type(g_real, 151645), 3);
    assert_int_equal(qp_tokenizer_token_type(g_real, 151667), 4);
    assert_int_equal(qp_tokenizer_token_type(g_real, 0), 1);
    assert_int_equal(qp_tokenizer_token_type(g_real, -1), 0);
    assert_int_equal(qp_tokenizer_token_type(g_real, 151669), 0);
    size_t pl;
    const char *p = qp_tokenizer_piece(g_real, 220, &pl); /* "Ġ" */
    assert_int_equal(pl, 1);
    assert_int_equal(p[0], ' ');
    assert_null(qp_tokenizer_piece(g_real, 1 << 30, &pl));
}

static void test_bad_text_and_ids(void **state)
{
    (void)state;
    int32_t *ids = (int32_t *)1;
    size_t n = 7;
    qp_err err;
    qp_err_clear(&err);
    static const char bad[] = "ok \xff\xfe";
    assert_int_equal(qp_tokenizer_encode(g_real, bad, sizeof bad - 1, 0, &ids, &n, &err),
                     QP_ERR_BAD_INPUT);
    assert_int_equal(err.offset, 3);
    assert_null(ids);
    assert_int_equal(n, 0);
    static const char surrogate[] = "\xed\xa0\x80";
    assert_int_equal(qp_tokenizer_encode(g_real, surrogate, 3, 0, &ids, &n, &err),
                     QP_ERR_BAD_INPUT);
    static const char cut[] = "ab\xe4\xbd";
    assert_int_equal(qp_tokenizer_encode(g_real, cut, 4, 0, &ids, &n, &err), QP_ERR_BAD_INPUT);
    assert_int_equal(err.offset, 2);

    assert_int_equal(qp_tokenizer_encode(g_real, "", 0, 0, &ids, &n, &err), QP_OK);
    assert_int_equal(n, 0);
    free(ids);

    int32_t out_of_range[] = {9707, 151669};
    char *dec;
    size_t dl;
    assert_int_equal(qp_tokenizer_decode(g_real, out_of_range, 2, 0, &dec, &dl, &err),
                     QP_ERR_BAD_INPUT);
    int32_t negative[] = {-1};
    assert_int_equal(qp_tokenizer_decode(g_real, negative, 1, 0, &dec, &dl, &err),
                     QP_ERR_BAD_INPUT);
    /* Embedded NUL bytes are text like any other. */
    static const char nul[] = "a\0b";
    assert_int_equal(qp_tokenizer_encode(g_real, nul, 3, 0, &ids, &n, &err), QP_OK);
    assert_roundtrip(g_real, ids, n, nul, 3);
    free(ids);
}

/* A long whitespace run and a long single word: one piece each, merged by
 * the heap in O(n log n); ids must still decode back to the text. */
static void test_long_pieces(void **state)
{
    (void)state;
    size_t len = 200000;
    char *s = malloc(len + 1);
    assert_non_null(s);
    memset(s, ' ', len);
    s[len - 1] = 'x';
    s[len] = '\0';
    int32_t *ids;
    size_t n;
    encode_str(g_real, s, 0, &ids, &n);
    assert_true(n > 1 && n < len / 8);
    assert_roundtrip(g_real, ids, n, s, len);
    free(ids);
    for (size_t i = 0; i < len; i++)
        s[i] = (char)('a' + (i * 7 + i / 13) % 26);
    encode_str(g_tiny, s, 0, &ids, &n);
    assert_true(n > 1 && n < len);
    assert_roundtrip(g_tiny, ids, n, s, len);
    free(ids);
    free(s);
}

/* GGUF-style arrays: strings are not NUL-terminated, lengths are given. */
static void test_from_arrays_merge_order(void **state)
{
    (void)state;
    /* Texts packed without terminators, as in a mapped GGUF file. */
    static const char pool[] = "abcabbcabc\xc4\xa0<x>";
    const char *toks[] = {pool, pool + 1, pool + 2, pool + 3, pool + 5, pool + 7,
                          pool + 10, NULL, pool + 12};
    size_t lens[] = {1, 1, 1, 2, 2, 3, 2, 0, 3};
    int32_t types[] = {1, 1, 1, 1, 1, 1, 1, 5, 4};
    /* Rank decides, not position: "b c" (rank 0) beats "a b" (rank 1). */
    static const char merges_pool[] = "b ca ba bc";
    const char *merges[] = {merges_pool, merges_pool + 3, merges_pool + 6};
    size_t mlens[] = {3, 3, 4};
    qp_tokenizer_spec spec = {
        .n_tokens = 9, .tokens = toks, .token_lens = lens, .token_types = types,
        .n_merges = 3, .merges = merges, .merge_lens = mlens,
    };
    qp_tokenizer *t;
    qp_err err;
    qp_err_clear(&err);
    assert_int_equal(qp_tokenizer_from_spec(&spec, "arrays", &t, &err), QP_OK);
    int32_t *ids;
    size_t n;
    encode_str(t, "abc", 0, &ids, &n);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], 5); /* a + bc */
    free(ids);
    encode_str(t, "ab", 0, &ids, &n);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], 3);
    free(ids);
    /* Added token split, hole never produced, unknown byte 'z' dropped. */
    encode_str(t, "a<x>bz", 0, &ids, &n);
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], 0);
    assert_int_equal(ids[1], 8);
    assert_int_equal(ids[2], 1);
    free(ids);
    qp_tokenizer_free(t);

    /* Equal ranks: leftmost first ("aaaaa" -> aa aa a). */
    const char *t2[] = {"a", "aa"};
    const char *m2[] = {"a a"};
    qp_tokenizer_spec s2 = {.n_tokens = 2, .tokens = t2, .n_merges = 1, .merges = m2};
    assert_int_equal(qp_tokenizer_from_spec(&s2, NULL, &t, &err), QP_OK);
    encode_str(t, "aaaaa", 0, &ids, &n);
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 1);
    assert_int_equal(ids[2], 0);
    free(ids);
    qp_tokenizer_free(t);

    /* Merges must name vocabulary tokens; the regex must compile. */
    const char *m3[] = {"a b"};
    qp_tokenizer_spec s3 = {.n_tokens = 2, .tokens = t2, .n_merges = 1, .merges = m3};
    assert_int_equal(qp_tokenizer_from_spec(&s3, "m3", &t, &err), QP_ERR_BAD_INPUT);
    assert_null(t);
    assert_string_equal(err.path, "m3");
    const char *m4[] = {"aa"};
    s3.merges = m4;
    assert_int_equal(qp_tokenizer_from_spec(&s3, "m4", &t, &err), QP_ERR_BAD_INPUT);
    qp_tokenizer_spec s5 = {.n_tokens = 2, .tokens = t2, .pre_regex = "(unclosed"};
    assert_int_equal(qp_tokenizer_from_spec(&s5, "re", &t, &err), QP_ERR_BAD_INPUT);
    qp_tokenizer_free(NULL);
}

/* The tokenizer built from a qp_hf_vocab matches the one from the file. */
static void test_from_hf_vocab(void **state)
{
    (void)state;
    qp_hf_vocab v;
    qp_err err;
    qp_err_clear(&err);
    assert_int_equal(qp_hf_vocab_load(qp_fixture("models/qwen3-tiny/tokenizer.json"), &v, &err),
                     QP_OK);
    qp_tokenizer *t;
    assert_int_equal(qp_tokenizer_from_hf_vocab(&v, NULL, "tiny", &t, &err), QP_OK);
    qp_hf_vocab_free(&v);
    const char *s = "def main():\n    print('héllo wörld')  # <|endoftext|>";
    int32_t *a, *b;
    size_t na, nb;
    encode_str(t, s, 0, &a, &na);
    encode_str(g_tiny, s, 0, &b, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na * sizeof *a);
    assert_int_equal(a[na - 1], 8189);
    free(a);
    free(b);
    qp_tokenizer_free(t);
}

static void write_json(const char *dir, const char *name, const char *json, char *path,
                       size_t cap)
{
    snprintf(path, cap, "%s/%s", dir, name);
    assert_int_equal(qp_test_write_file(path, json, strlen(json)), 0);
}

static void test_load_refuses_unsupported(void **state)
{
    (void)state;
    char *dir = qp_test_tmpdir("tokload");
    assert_non_null(dir);
    char path[4096];
    static const char *const bad[] = {
        /* normalizer we do not implement */
        "{\"normalizer\":{\"type\":\"Lowercase\"},\"pre_tokenizer\":{\"type\":\"ByteLevel\","
        "\"use_regex\":true},\"decoder\":{\"type\":\"ByteLevel\"},"
        "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]}}",
        /* Metaspace pre-tokenizer (SentencePiece style) */
        "{\"pre_tokenizer\":{\"type\":\"Metaspace\"},"
        "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]}}",
        /* lstrip on an added token */
        "{\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"use_regex\":true},"
        "\"added_tokens\":[{\"id\":1,\"content\":\"<x>\",\"lstrip\":true,\"special\":true}],"
        "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]}}",
    };
    qp_tokenizer *t;
    qp_err err;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_json(dir, "bad.json", bad[i], path, sizeof path);
        qp_err_clear(&err);
        assert_int_equal(qp_tokenizer_load_json(path, &t, &err), QP_ERR_UNSUPPORTED);
        assert_null(t);
        assert_string_equal(err.path, path);
    }
    /* GPT-2 style (lone ByteLevel with its own regex) is accepted. */
    write_json(dir, "gpt2.json",
               "{\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"use_regex\":true},"
               "\"decoder\":{\"type\":\"ByteLevel\"},\"model\":{\"type\":\"BPE\","
               "\"vocab\":{\"a\":0,\"\\u0120\":1,\"\\u0120a\":2},\"merges\":[\"\\u0120 a\"]}}",
               path, sizeof path);
    assert_int_equal(qp_tokenizer_load_json(path, &t, &err), QP_OK);
    int32_t *ids;
    size_t n;
    encode_str(t, "a a", 0, &ids, &n);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 0);
    assert_int_equal(ids[1], 2);
    free(ids);
    qp_tokenizer_free(t);
    assert_int_equal(qp_tokenizer_load_dir(dir, &t, &err), QP_ERR_IO); /* no tokenizer.json */
    qp_test_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny_full_texts),
        cmocka_unit_test(test_real_full_texts),
        cmocka_unit_test(test_real_edge_cases),
        cmocka_unit_test(test_added_tokens),
        cmocka_unit_test(test_bad_text_and_ids),
        cmocka_unit_test(test_long_pieces),
        cmocka_unit_test(test_from_arrays_merge_order),
        cmocka_unit_test(test_from_hf_vocab),
        cmocka_unit_test(test_load_refuses_unsupported),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
