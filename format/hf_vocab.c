/* hf_vocab.c - read the vocabulary of a Hugging Face byte-level BPE
 * tokenizer.json into id-indexed arrays, with the token types llama.cpp's
 * converter assigns (see hf_vocab.h). */
#include "format/hf_vocab.h"

#include <cjson/cJSON.h>
#include "format/qp_json.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Ids at or above this are refused: a hostile file could otherwise make us
 * allocate id-indexed arrays of gigabytes from a few bytes of JSON. Real
 * vocabularies stay below 300k. */
#define QP_HF_VOCAB_MAX_ID (1 << 24)
/* tokenizer.json files are ~10 MB; refuse absurd sizes before reading. */
#define QP_HF_VOCAB_MAX_FILE ((long)1 << 30)

void qp_hf_vocab_free(qp_hf_vocab *v)
{
    if (!v)
        return;
    if (v->tokens) {
        for (int64_t i = 0; i < v->n_tokens; i++)
            free(v->tokens[i]);
    }
    if (v->merges) {
        for (int64_t i = 0; i < v->n_merges; i++)
            free(v->merges[i]);
    }
    free(v->tokens);
    free(v->token_len);
    free(v->token_type);
    free(v->merges);
    free(v->added_ids);
    memset(v, 0, sizeof *v);
}

/* A JSON number that is an integer id in [0, QP_HF_VOCAB_MAX_ID). */
static int json_id(const cJSON *n, int64_t *out)
{
    if (!cJSON_IsNumber(n))
        return 0;
    double d = n->valuedouble;
    if (!(d >= 0.0) || d >= (double)QP_HF_VOCAB_MAX_ID || floor(d) != d)
        return 0;
    *out = (int64_t)d;
    return 1;
}

static const char *json_type_name(const cJSON *obj)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(obj, "type");
    return cJSON_IsString(t) ? t->valuestring : NULL;
}

/* `obj` is of type `want`, or a Sequence whose `list_key` array holds one. */
static int has_component(const cJSON *obj, const char *want, const char *list_key)
{
    if (!cJSON_IsObject(obj))
        return 0;
    const char *type = json_type_name(obj);
    if (!type)
        return 0;
    if (strcmp(type, want) == 0)
        return 1;
    if (strcmp(type, "Sequence") != 0)
        return 0;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(obj, list_key);
    const cJSON *it;
    cJSON_ArrayForEach(it, list)
    {
        if (has_component(it, want, list_key))
            return 1;
    }
    return 0;
}

/* llama.cpp's converter marks an added token CONTROL when the file says
 * special, or when its text looks like a control token even though the file
 * forgot to say so (Qwen's <|fim_prefix|> etc. are special=false). */
static int looks_special(const char *s)
{
    static const char *const exact[] = {"<pad>", "<mask>", "<2mass>", "[@BOS@]"};
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++) {
        if (strcmp(s, exact[i]) == 0)
            return 1;
    }
    size_t n = strlen(s);
    /* "<|...|>" */
    if (n >= 4 && memcmp(s, "<|", 2) == 0 && memcmp(s + n - 2, "|>", 2) == 0)
        return 1;
    /* "<｜...｜>" with U+FF5C FULLWIDTH VERTICAL LINE (DeepSeek) */
    static const char fw[] = "\xef\xbd\x9c";
    if (n >= 8 && s[0] == '<' && memcmp(s + 1, fw, 3) == 0 && memcmp(s + n - 4, fw, 3) == 0 &&
        s[n - 1] == '>')
        return 1;
    /* "<unused...>" */
    if (n >= 8 && memcmp(s, "<unused", 7) == 0 && s[n - 1] == '>')
        return 1;
    return 0;
}

static qp_status set_token(qp_hf_vocab *v, int64_t id, const char *s)
{
    size_t len = strlen(s);
    if (len > UINT32_MAX)
        return QP_ERR_BAD_INPUT;
    char *copy = malloc(len + 1);
    if (!copy)
        return QP_ERR_NOMEM;
    memcpy(copy, s, len + 1);
    free(v->tokens[id]);
    v->tokens[id] = copy;
    v->token_len[id] = (uint32_t)len;
    return QP_OK;
}

/* One entry of model.merges: "a b" or ["a", "b"], stored as "a b". */
static qp_status read_merge(const cJSON *m, int64_t rank, const char *path, char **out, qp_err *err)
{
    const char *a, *b;
    size_t la, lb;
    if (cJSON_IsString(m)) {
        const char *s = m->valuestring;
        const char *sp = strchr(s, ' ');
        if (!sp || sp == s || sp[1] == '\0' || strchr(sp + 1, ' '))
            return qp_err_set(err, QP_ERR_BAD_INPUT, path,
                              "model.merges[%lld] is not two tokens separated by one space",
                              (long long)rank);
        a = s;
        la = (size_t)(sp - s);
        b = sp + 1;
        lb = strlen(b);
    } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 &&
               cJSON_IsString(m->child) && cJSON_IsString(m->child->next)) {
        a = m->child->valuestring;
        b = m->child->next->valuestring;
        la = strlen(a);
        lb = strlen(b);
        /* "a b" is the only form GGUF and the runtime keep, so a space
         * inside a part would make the pair ambiguous. */
        if (la == 0 || lb == 0 || memchr(a, ' ', la) || memchr(b, ' ', lb))
            return qp_err_set(err, QP_ERR_BAD_INPUT, path,
                              "model.merges[%lld] has an empty part or a part with a space",
                              (long long)rank);
    } else {
        return qp_err_set(err, QP_ERR_BAD_INPUT, path,
                          "model.merges[%lld] is neither a string nor a pair of strings",
                          (long long)rank);
    }
    char *s = malloc(la + lb + 2);
    if (!s)
        return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory reading merges");
    memcpy(s, a, la);
    s[la] = ' ';
    memcpy(s + la + 1, b, lb);
    s[la + 1 + lb] = '\0';
    *out = s;
    return QP_OK;
}

static qp_status build(const cJSON *root, const char *path, qp_hf_vocab *v, qp_err *err)
{
    if (!cJSON_IsObject(root))
        return qp_err_set(err, QP_ERR_BAD_INPUT, path, "top level is not a JSON object");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsObject(model))
        return qp_err_set(err, QP_ERR_BAD_INPUT, path, "no \"model\" object");
    const char *mtype = json_type_name(model);
    if (mtype && strcmp(mtype, "BPE") != 0)
        return qp_err_set(err, QP_ERR_UNSUPPORTED, path,
                          "model.type is \"%.64s\", only BPE is supported", mtype);
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    if (!cJSON_IsObject(vocab))
        return qp_err_set(err, QP_ERR_BAD_INPUT, path, "model.vocab is not an object");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (merges && !cJSON_IsArray(merges) && !cJSON_IsNull(merges))
        return qp_err_set(err, QP_ERR_BAD_INPUT, path, "model.merges is not an array");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (added && !cJSON_IsArray(added) && !cJSON_IsNull(added))
        return qp_err_set(err, QP_ERR_BAD_INPUT, path, "added_tokens is not an array");

    /* Pass 1: validate ids and find the table size. */
    int64_t max_id = -1, n_added = 0, id = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab)
    {
        if (!json_id(it, &id))
            return qp_err_set(err, QP_ERR_BAD_INPUT, path,
                              "model.vocab[\"%.64s\"] is not an id in [0, %d)",
                              it->string ? it->string : "", QP_HF_VOCAB_MAX_ID);
        if (id > max_id)
            max_id = id;
    }
    cJSON_ArrayForEach(it, added)
    {
        const cJSON *jid = cJSON_GetObjectItemCaseSensitive(it, "id");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(it, "content");
        if (!json_id(jid, &id) || !cJSON_IsString(content))
            return qp_err_set(err, QP_ERR_BAD_INPUT, path,
                              "added_tokens[%lld] lacks an integer id or a string content",
                              (long long)n_added);
        if (id > max_id)
            max_id = id;
        n_added++;
    }

    v->n_tokens = max_id + 1;
    size_t n = (size_t)v->n_tokens;
    v->tokens = calloc(n ? n : 1, sizeof *v->tokens);
    v->token_len = calloc(n ? n : 1, sizeof *v->token_len);
    v->token_type = calloc(n ? n : 1, sizeof *v->token_type);
    v->added_ids = calloc(n_added ? (size_t)n_added : 1, sizeof *v->added_ids);
    if (!v->tokens || !v->token_len || !v->token_type || !v->added_ids)
        return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory for %lld tokens",
                          (long long)v->n_tokens);
    for (size_t i = 0; i < n; i++)
        v->token_type[i] = QP_TOKEN_UNUSED;

    /* Pass 2: fill. */
    cJSON_ArrayForEach(it, vocab)
    {
        json_id(it, &id);
        if (v->tokens[id])
            return qp_err_set(err, QP_ERR_BAD_INPUT, path,
                              "model.vocab gives id %lld to both \"%.64s\" and \"%.64s\"",
                              (long long)id, v->tokens[id], it->string ? it->string : "");
        if (!it->string)
            return qp_err_set(err, QP_ERR_BAD_INPUT, path, "model.vocab entry without a key");
        qp_status st = set_token(v, id, it->string);
        if (st != QP_OK)
            return qp_err_set(err, st, path, "%s storing token %lld",
                              st == QP_ERR_NOMEM ? "out of memory" : "cannot store", (long long)id);
        v->token_type[id] = QP_TOKEN_NORMAL;
    }
    int64_t k = 0;
    cJSON_ArrayForEach(it, added)
    {
        json_id(cJSON_GetObjectItemCaseSensitive(it, "id"), &id);
        const char *content = cJSON_GetObjectItemCaseSensitive(it, "content")->valuestring;
        for (int64_t j = 0; j < k; j++) {
            if (v->added_ids[j] == id)
                return qp_err_set(err, QP_ERR_BAD_INPUT, path,
                                  "added_tokens lists id %lld twice", (long long)id);
        }
        /* An added token may repeat a vocab entry; the added form is what
         * the tokenizer matches, so it wins. */
        qp_status st = set_token(v, id, content);
        if (st != QP_OK)
            return qp_err_set(err, st, path, "%s storing added token %lld",
                              st == QP_ERR_NOMEM ? "out of memory" : "cannot store", (long long)id);
        const cJSON *special = cJSON_GetObjectItemCaseSensitive(it, "special");
        v->token_type[id] = (cJSON_IsTrue(special) || looks_special(content))
                                ? QP_TOKEN_CONTROL
                                : QP_TOKEN_USER_DEFINED;
        v->added_ids[k++] = id;
    }
    v->n_added = k;

    int64_t n_merges = cJSON_IsArray(merges) ? cJSON_GetArraySize(merges) : 0;
    v->merges = calloc(n_merges ? (size_t)n_merges : 1, sizeof *v->merges);
    if (!v->merges)
        return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory for %lld merges",
                          (long long)n_merges);
    int64_t r = 0;
    if (cJSON_IsArray(merges)) {
        cJSON_ArrayForEach(it, merges)
        {
            qp_status st = read_merge(it, r, path, &v->merges[r], err);
            if (st != QP_OK)
                return st;
            /* Count as we go so qp_hf_vocab_free frees exactly what exists. */
            v->n_merges = ++r;
        }
    }

    v->normalizer_nfc =
        has_component(cJSON_GetObjectItemCaseSensitive(root, "normalizer"), "NFC", "normalizers");
    v->byte_level =
        has_component(cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), "ByteLevel",
                      "pretokenizers") ||
        has_component(cJSON_GetObjectItemCaseSensitive(root, "decoder"), "ByteLevel", "decoders");
    return QP_OK;
}

qp_status qp_hf_vocab_parse(const char *json, size_t len, const char *path_for_errors,
                            qp_hf_vocab *out, qp_err *err)
{
    const char *path = path_for_errors ? path_for_errors : "tokenizer.json";
    if (!out)
        return qp_err_set(err, QP_ERR_USAGE, path, "qp_hf_vocab_parse: NULL output");
    memset(out, 0, sizeof *out);
    if (!json)
        return qp_err_set(err, QP_ERR_USAGE, path, "qp_hf_vocab_parse: NULL input");
    const char *at = NULL;
    int oom = 0;
    cJSON *root = qp_json_parse(json, len, &at, &oom);
    if (!root) {
        if (oom)
            return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory parsing %zu bytes of JSON", len);
        qp_err_set(err, QP_ERR_BAD_INPUT, path, "not valid JSON");
        if (at && at >= json && at <= json + len)
            qp_err_set_offset(err, (int64_t)(at - json));
        return QP_ERR_BAD_INPUT;
    }
    qp_status st = build(root, path, out, err);
    cJSON_Delete(root);
    if (st != QP_OK)
        qp_hf_vocab_free(out);
    return st;
}

qp_status qp_hf_vocab_load(const char *path, qp_hf_vocab *out, qp_err *err)
{
    if (!out)
        return qp_err_set(err, QP_ERR_USAGE, path, "qp_hf_vocab_load: NULL output");
    memset(out, 0, sizeof *out);
    if (!path)
        return qp_err_set(err, QP_ERR_USAGE, NULL, "qp_hf_vocab_load: NULL path");
    FILE *f = fopen(path, "rb");
    if (!f)
        return qp_err_io(err, path, errno, "cannot open");
    char *buf = NULL;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0)
        size = ftell(f);
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0) {
        int e = errno;
        fclose(f);
        return qp_err_io(err, path, e, "cannot determine size");
    }
    if (size > QP_HF_VOCAB_MAX_FILE) {
        fclose(f);
        return qp_err_set(err, QP_ERR_BAD_INPUT, path, "file of %ld bytes is too large", size);
    }
    buf = malloc((size_t)size + 1);
    if (!buf) {
        fclose(f);
        return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory reading %ld bytes", size);
    }
    size_t got = fread(buf, 1, (size_t)size, f);
    int e = errno;
    int bad = ferror(f);
    fclose(f);
    if (bad || got != (size_t)size) {
        free(buf);
        return qp_err_io(err, path, bad ? e : EIO, "short read (%zu of %ld bytes)", got, size);
    }
    buf[size] = '\0';
    qp_status st = qp_hf_vocab_parse(buf, (size_t)size, path, out, err);
    free(buf);
    return st;
}
