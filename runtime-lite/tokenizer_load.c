/* tokenizer_load.c - build a tokenizer from a Hugging Face tokenizer.json.
 *
 * format/hf_vocab reads the vocabulary; this file reads the parts that
 * decide how text is cut (normalizer, pre-tokenizer regex, BPE options,
 * added-token options) and refuses the ones whose behaviour we do not
 * implement, so a tokenizer either matches Hugging Face or does not load. */
#include "runtime-lite/tok_internal.h"

#include <cjson/cJSON.h>

#include "format/qp_json.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* GPT-2's pattern: what a lone ByteLevel pre-tokenizer with use_regex
 * applies. */
static const char gpt2_regex[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static const char *type_of(const cJSON *o)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "type");
    return cJSON_IsString(t) ? t->valuestring : "";
}

static int is_true(const cJSON *o, const char *key)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, key));
}

/* A ByteLevel step that only maps bytes (no regex, no prefix space). */
static int plain_byte_level(const cJSON *o)
{
    return strcmp(type_of(o), "ByteLevel") == 0 && !is_true(o, "add_prefix_space") &&
           !is_true(o, "use_regex");
}

/* The pre-tokenizer regex, copied into *regex. Accepted shapes:
 * Sequence[Split(Regex, Isolated), ByteLevel] (Qwen2/3, Llama 3 style) and
 * a lone ByteLevel with use_regex (GPT-2 style). */
static qp_status read_pre_tokenizer(const cJSON *pre, const char *path, char **regex, qp_err *err)
{
    const char *pattern = NULL;
    const char *ty = type_of(pre);
    if (strcmp(ty, "ByteLevel") == 0 && is_true(pre, "use_regex") &&
        !is_true(pre, "add_prefix_space")) {
        pattern = gpt2_regex;
    } else if (strcmp(ty, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(pre, "pretokenizers");
        const cJSON *split = cJSON_GetArrayItem(list, 0);
        const cJSON *bl = cJSON_GetArrayItem(list, 1);
        const cJSON *re = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(split, "pattern"), "Regex");
        const cJSON *behavior = cJSON_GetObjectItemCaseSensitive(split, "behavior");
        if (cJSON_GetArraySize(list) == 2 && strcmp(type_of(split), "Split") == 0 &&
            cJSON_IsString(re) && cJSON_IsString(behavior) &&
            strcmp(behavior->valuestring, "Isolated") == 0 && !is_true(split, "invert") &&
            plain_byte_level(bl))
            pattern = re->valuestring;
    }
    if (!pattern)
        return qp_err_set(err, QP_ERR_UNSUPPORTED, path,
                          "pre_tokenizer of type \"%.64s\" in this arrangement is not supported "
                          "(expected Split(Regex, Isolated) + ByteLevel)", ty);
    *regex = strdup(pattern);
    if (!*regex)
        return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
    return QP_OK;
}

static qp_status check_options(const cJSON *root, const char *path, int *ignore_merges,
                               qp_err *err)
{
    const cJSON *norm = cJSON_GetObjectItemCaseSensitive(root, "normalizer");
    if (norm && !cJSON_IsNull(norm) && strcmp(type_of(norm), "NFC") != 0)
        return qp_err_set(err, QP_ERR_UNSUPPORTED, path,
                          "normalizer \"%.64s\" is not supported (only NFC or none)",
                          type_of(norm));
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(root, "decoder");
    if (dec && !cJSON_IsNull(dec) && strcmp(type_of(dec), "ByteLevel") != 0)
        return qp_err_set(err, QP_ERR_UNSUPPORTED, path,
                          "decoder \"%.64s\" is not supported (only ByteLevel)", type_of(dec));
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    static const char *const affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(model, affixes[i]);
        if (cJSON_IsString(a) && a->valuestring[0])
            return qp_err_set(err, QP_ERR_UNSUPPORTED, path, "model.%s is not supported",
                              affixes[i]);
    }
    if (is_true(model, "byte_fallback"))
        return qp_err_set(err, QP_ERR_UNSUPPORTED, path, "model.byte_fallback is not supported");
    const cJSON *dropout = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (cJSON_IsNumber(dropout) && dropout->valuedouble > 0)
        return qp_err_set(err, QP_ERR_UNSUPPORTED, path, "model.dropout is not supported");
    *ignore_merges = is_true(model, "ignore_merges");
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(root, "added_tokens"))
    {
        if (is_true(it, "lstrip") || is_true(it, "rstrip") || is_true(it, "single_word"))
            return qp_err_set(err, QP_ERR_UNSUPPORTED, path,
                              "added token options lstrip/rstrip/single_word are not supported");
    }
    return QP_OK;
}

static qp_status read_whole(const char *path, char **buf, size_t *len, qp_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return qp_err_io(err, path, errno, "cannot open");
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0)
        size = ftell(f);
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0) {
        int e = errno;
        fclose(f);
        return qp_err_io(err, path, e, "cannot determine size");
    }
    char *b = malloc((size_t)size + 1);
    if (!b) {
        fclose(f);
        return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory reading %ld bytes", size);
    }
    size_t got = fread(b, 1, (size_t)size, f);
    int bad = ferror(f), e = errno;
    fclose(f);
    if (bad || got != (size_t)size) {
        free(b);
        return qp_err_io(err, path, bad ? e : EIO, "short read (%zu of %ld bytes)", got, size);
    }
    b[size] = '\0';
    *buf = b;
    *len = (size_t)size;
    return QP_OK;
}

qp_status qp_tokenizer_load_json(const char *path, qp_tokenizer **out, qp_err *err)
{
    if (!out || !path)
        return qp_err_set(err, QP_ERR_USAGE, path, "qp_tokenizer_load_json: bad arguments");
    *out = NULL;
    char *buf = NULL;
    size_t len = 0;
    qp_status st = read_whole(path, &buf, &len, err);
    if (st != QP_OK)
        return st;
    /* The settings are read from their own parse; the vocabulary parse in
     * hf_vocab costs ~70 ms more on a 150k vocabulary, which keeps both
     * modules independent. */
    const char *end = NULL;
    int oom = 0;
    cJSON *root = qp_json_parse(buf, len, &end, &oom);
    char *regex = NULL;
    int ignore_merges = 0;
    if (!root && oom)
        st = qp_err_set(err, QP_ERR_NOMEM, path, "out of memory parsing %zu bytes of JSON", len);
    else if (!root)
        st = qp_err_set(err, QP_ERR_BAD_INPUT, path, "not valid JSON");
    if (st == QP_OK)
        st = check_options(root, path, &ignore_merges, err);
    if (st == QP_OK)
        st = read_pre_tokenizer(cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), path,
                                &regex, err);
    cJSON_Delete(root);
    qp_hf_vocab v;
    memset(&v, 0, sizeof v);
    if (st == QP_OK)
        st = qp_hf_vocab_parse(buf, len, path, &v, err);
    free(buf);
    if (st == QP_OK && !v.byte_level)
        st = qp_err_set(err, QP_ERR_UNSUPPORTED, path, "not a byte-level BPE tokenizer");
    if (st == QP_OK) {
        /* Keep the options hf_vocab does not carry. */
        size_t *lens = malloc((v.n_tokens ? (size_t)v.n_tokens : 1) * sizeof *lens);
        if (!lens) {
            st = qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
        } else {
            for (int64_t i = 0; i < v.n_tokens; i++)
                lens[i] = v.token_len[i];
            qp_tokenizer_spec s = {
                .n_tokens = v.n_tokens,
                .tokens = (const char *const *)v.tokens,
                .token_lens = lens,
                .token_types = v.token_type,
                .n_merges = v.n_merges,
                .merges = (const char *const *)v.merges,
                .pre_regex = regex,
                .normalizer_nfc = v.normalizer_nfc,
                .ignore_merges = ignore_merges,
            };
            st = qp_tokenizer_from_spec(&s, path, out, err);
            free(lens);
        }
    }
    qp_hf_vocab_free(&v);
    free(regex);
    return st;
}

qp_status qp_tokenizer_load_dir(const char *dir, qp_tokenizer **out, qp_err *err)
{
    if (!dir || !out)
        return qp_err_set(err, QP_ERR_USAGE, dir, "qp_tokenizer_load_dir: bad arguments");
    size_t n = strlen(dir);
    char *path = malloc(n + sizeof "/tokenizer.json");
    if (!path)
        return qp_err_set(err, QP_ERR_NOMEM, dir, "out of memory");
    memcpy(path, dir, n);
    memcpy(path + n, "/tokenizer.json", sizeof "/tokenizer.json");
    qp_status st = qp_tokenizer_load_json(path, out, err);
    free(path);
    return st;
}
