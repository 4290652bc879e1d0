/* meta_tokenizer.c - tokenizer.ggml.* keys, as llama.cpp's converter writes
 * them for Qwen's byte-level BPE ("gpt2" model, "qwen2" pre-tokenizer):
 * tokens padded with [PAD<id>] (type unused) up to the embedding rows,
 * merges as "a b", special ids from tokenizer_config.json's token strings
 * with config.json's *_token_id as fallback, and the chat template verbatim. */
#include "convert/meta.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* tokenizer_config.json values may be a string or {"content": "..."}. */
static const char *token_string(const cJSON *v)
{
    if (cJSON_IsString(v))
        return v->valuestring;
    if (cJSON_IsObject(v)) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(v, "content");
        if (cJSON_IsString(c))
            return c->valuestring;
    }
    return NULL;
}

static int64_t find_token(const qp_hf_vocab *v, const char *s)
{
    /* Added tokens first: special strings live there. */
    for (int64_t i = 0; i < v->n_added; i++) {
        int64_t id = v->added_ids[i];
        if (v->tokens[id] && strcmp(v->tokens[id], s) == 0)
            return id;
    }
    for (int64_t id = 0; id < v->n_tokens; id++)
        if (v->tokens[id] && strcmp(v->tokens[id], s) == 0)
            return id;
    return -1;
}

static cJSON *load_json_file(const char *path, qp_err *err, int *absent)
{
    *absent = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        *absent = 1;
        return NULL;
    }
    char *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && n <= (64L << 20) && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)n + 1);
        if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    if (!buf) {
        qp_err_set(err, QP_ERR_BAD_INPUT, path, n > (64L << 20) ? "file is over 64 MB" : "could not read the file");
        return NULL;
    }
    buf[n] = '\0';
    cJSON *j = cJSON_ParseWithLength(buf, (size_t)n);
    free(buf);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        qp_err_set(err, QP_ERR_BAD_INPUT, path, "not a JSON object");
        return NULL;
    }
    return j;
}

#define CHECK(expr)                                                                                                    \
    do {                                                                                                               \
        if ((s = (expr)) != QP_OK)                                                                                     \
            goto done;                                                                                                 \
    } while (0)

qp_status qp_meta_write_tokenizer(qp_gguf_writer *w, const char *hf_dir, const qp_hf_config *cfg,
                                  int64_t n_vocab_rows, qp_err *err)
{
    char path[4096];
    qp_hf_vocab v;
    memset(&v, 0, sizeof v);
    snprintf(path, sizeof path, "%s/tokenizer.json", hf_dir);
    qp_status s = qp_hf_vocab_load(path, &v, err);
    if (s != QP_OK)
        return s;
    if (v.n_tokens > n_vocab_rows) {
        s = qp_err_set(err, QP_ERR_BAD_INPUT, path, "tokenizer has %lld tokens but the embedding only %lld rows",
                       (long long)v.n_tokens, (long long)n_vocab_rows);
        qp_hf_vocab_free(&v);
        return s;
    }
    snprintf(path, sizeof path, "%s/tokenizer_config.json", hf_dir);
    int absent;
    cJSON *tc = load_json_file(path, err, &absent);
    if (!tc && !absent) {
        qp_hf_vocab_free(&v);
        return err ? err->status : QP_ERR_BAD_INPUT;
    }

    int64_t n = n_vocab_rows;
    char **toks = calloc((size_t)n, sizeof *toks);
    int32_t *types = calloc((size_t)n, sizeof *types);
    char **pad_strs = NULL;
    int64_t n_pad = 0;
    if (!toks || !types) {
        s = qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory exporting the vocabulary");
        goto done;
    }
    for (int64_t i = 0; i < n; i++)
        if (i >= v.n_tokens || !v.tokens[i])
            n_pad++;
    pad_strs = calloc((size_t)(n_pad ? n_pad : 1), sizeof *pad_strs);
    if (!pad_strs) {
        s = qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory exporting the vocabulary");
        goto done;
    }
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) {
        if (i < v.n_tokens && v.tokens[i]) {
            toks[i] = v.tokens[i];
            types[i] = v.token_type[i];
        } else {
            char buf[40];
            snprintf(buf, sizeof buf, "[PAD%lld]", (long long)i);
            pad_strs[k] = strdup(buf);
            if (!pad_strs[k]) {
                s = qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory exporting the vocabulary");
                goto done;
            }
            toks[i] = pad_strs[k++];
            types[i] = QP_TOKEN_UNUSED;
        }
    }
    CHECK(qp_gguf_set_str(w, "tokenizer.ggml.model", "gpt2"));
    CHECK(qp_gguf_set_str(w, "tokenizer.ggml.pre", "qwen2"));
    CHECK(qp_gguf_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)toks, NULL, (uint64_t)n));
    CHECK(qp_gguf_set_arr(w, "tokenizer.ggml.token_type", QP_GGUF_I32, types, (uint64_t)n));
    CHECK(qp_gguf_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)v.merges, NULL, (uint64_t)v.n_merges));

    /* Special ids: tokenizer_config's strings win, config.json fills gaps. */
    int64_t eos = -1, pad = -1, bos = -1;
    if (tc) {
        const char *str;
        if ((str = token_string(cJSON_GetObjectItemCaseSensitive(tc, "eos_token"))))
            eos = find_token(&v, str);
        if ((str = token_string(cJSON_GetObjectItemCaseSensitive(tc, "pad_token"))))
            pad = find_token(&v, str);
        if ((str = token_string(cJSON_GetObjectItemCaseSensitive(tc, "bos_token"))))
            bos = find_token(&v, str);
    }
    if (eos < 0)
        eos = cfg->eos_token_id;
    if (pad < 0)
        pad = cfg->pad_token_id;
    if (bos < 0)
        bos = cfg->bos_token_id;
    if (eos >= 0 && eos < n)
        CHECK(qp_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eos));
    if (pad >= 0 && pad < n)
        CHECK(qp_gguf_set_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)pad));
    if (bos >= 0 && bos < n)
        CHECK(qp_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)bos));
    if (tc) {
        const cJSON *ab = cJSON_GetObjectItemCaseSensitive(tc, "add_bos_token");
        if (cJSON_IsBool(ab))
            CHECK(qp_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", cJSON_IsTrue(ab)));
        const cJSON *ae = cJSON_GetObjectItemCaseSensitive(tc, "add_eos_token");
        if (cJSON_IsBool(ae))
            CHECK(qp_gguf_set_bool(w, "tokenizer.ggml.add_eos_token", cJSON_IsTrue(ae)));
        const cJSON *ct = cJSON_GetObjectItemCaseSensitive(tc, "chat_template");
        if (cJSON_IsString(ct)) {
            CHECK(qp_gguf_set_str(w, "tokenizer.chat_template", ct->valuestring));
        } else if (cJSON_IsArray(ct)) {
            /* A list of named templates: "default" is the main one. */
            const cJSON *item;
            cJSON_ArrayForEach(item, ct)
            {
                const cJSON *nm = cJSON_GetObjectItemCaseSensitive(item, "name");
                const cJSON *tp = cJSON_GetObjectItemCaseSensitive(item, "template");
                if (!cJSON_IsString(nm) || !cJSON_IsString(tp))
                    continue;
                char key[256];
                if (strcmp(nm->valuestring, "default") == 0)
                    snprintf(key, sizeof key, "tokenizer.chat_template");
                else
                    snprintf(key, sizeof key, "tokenizer.chat_template.%s", nm->valuestring);
                CHECK(qp_gguf_set_str(w, key, tp->valuestring));
            }
        }
    }
done:
    if (s != QP_OK && err && err->status == QP_OK)
        qp_err_set(err, s, NULL, "could not add tokenizer metadata");
    for (int64_t i = 0; pad_strs && i < n_pad; i++)
        free(pad_strs[i]);
    free(pad_strs);
    free(toks);
    free(types);
    cJSON_Delete(tc);
    qp_hf_vocab_free(&v);
    return s;
}
