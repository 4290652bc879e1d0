/* model_tok.c - tokenizer of a runtime model (see model_tok.h). */
#include "runtime-lite/model_tok.h"

#include <stdlib.h>
#include <string.h>

#include "format/gguf.h"
#include "format/hf_config.h"
#include "format/hf_vocab.h"

static int str_is(qp_gguf_str s, const char *lit)
{
    return s.ptr && s.len == strlen(lit) && memcmp(s.ptr, lit, s.len) == 0;
}

/* A string array key: its index, or an error naming it. */
static qp_status str_array(const qp_gguf *g, const char *key, int required, int64_t *idx, qp_err *err)
{
    *idx = qp_gguf_find_key(g, key);
    if (*idx < 0) {
        if (!required)
            return QP_OK;
        return qp_err_set(err, QP_ERR_BAD_INPUT, qp_gguf_path(g), "missing tokenizer key %s", key);
    }
    if (qp_gguf_kv_type(g, *idx) != QP_GGUF_ARRAY || qp_gguf_arr_type(g, *idx) != QP_GGUF_STRING)
        return qp_err_set(err, QP_ERR_BAD_INPUT, qp_gguf_path(g), "%s is not an array of strings", key);
    return QP_OK;
}

static qp_status from_gguf(const qp_gguf *g, qp_tokenizer **out, int32_t *eos_id, qp_err *err)
{
    const char *path = qp_gguf_path(g);
    qp_gguf_str model, pre;
    if (!qp_gguf_get_str(g, "tokenizer.ggml.model", &model))
        return qp_err_set(err, QP_ERR_BAD_INPUT, path, "no tokenizer in the file (tokenizer.ggml.model)");
    if (!str_is(model, "gpt2"))
        return qp_err_set(err, QP_ERR_UNSUPPORTED, path, "tokenizer model '%.*s' is not supported (gpt2)",
                          (int)(model.len > 32 ? 32 : model.len), model.ptr);
    if (qp_gguf_get_str(g, "tokenizer.ggml.pre", &pre) && !str_is(pre, "qwen2"))
        return qp_err_set(err, QP_ERR_UNSUPPORTED, path, "pre-tokenizer '%.*s' is not supported (qwen2)",
                          (int)(pre.len > 32 ? 32 : pre.len), pre.ptr);
    int64_t ti, mi;
    qp_status st;
    if ((st = str_array(g, "tokenizer.ggml.tokens", 1, &ti, err)) != QP_OK ||
        (st = str_array(g, "tokenizer.ggml.merges", 0, &mi, err)) != QP_OK)
        return st;
    const int64_t n_tok = (int64_t)qp_gguf_arr_len(g, ti);
    const int64_t n_mer = mi >= 0 ? (int64_t)qp_gguf_arr_len(g, mi) : 0;
    const int32_t *types = NULL;
    int64_t yi = qp_gguf_find_key(g, "tokenizer.ggml.token_type");
    if (yi >= 0) {
        if (qp_gguf_kv_type(g, yi) != QP_GGUF_ARRAY || qp_gguf_arr_type(g, yi) != QP_GGUF_I32 ||
            (int64_t)qp_gguf_arr_len(g, yi) != n_tok)
            return qp_err_set(err, QP_ERR_BAD_INPUT, path, "tokenizer.ggml.token_type is not %lld INT32",
                              (long long)n_tok);
        types = qp_gguf_arr_data(g, yi);
    }
    const char **tok = calloc((size_t)(n_tok + 1), sizeof *tok);
    size_t *tok_len = calloc((size_t)(n_tok + 1), sizeof *tok_len);
    const char **mer = calloc((size_t)(n_mer + 1), sizeof *mer);
    size_t *mer_len = calloc((size_t)(n_mer + 1), sizeof *mer_len);
    int32_t *types_copy = types ? malloc((size_t)(n_tok + 1) * sizeof *types_copy) : NULL;
    if (!tok || !tok_len || !mer || !mer_len || (types && !types_copy)) {
        st = qp_err_set(err, QP_ERR_NOMEM, path, "out of memory for the vocabulary");
        goto done;
    }
    for (int64_t i = 0; i < n_tok; i++) {
        qp_gguf_str s = qp_gguf_arr_str(g, ti, (uint64_t)i);
        tok[i] = s.ptr ? s.ptr : "";
        tok_len[i] = (size_t)s.len;
    }
    for (int64_t i = 0; i < n_mer; i++) {
        qp_gguf_str s = qp_gguf_arr_str(g, mi, (uint64_t)i);
        mer[i] = s.ptr ? s.ptr : "";
        mer_len[i] = (size_t)s.len;
    }
    if (types) /* the array may be unaligned inside the mapping */
        memcpy(types_copy, types, (size_t)n_tok * sizeof *types_copy);
    qp_tokenizer_spec spec = {
        .n_tokens = n_tok,
        .tokens = tok,
        .token_lens = tok_len,
        .token_types = types_copy,
        .n_merges = n_mer,
        .merges = mer,
        .merge_lens = mer_len,
        .pre_regex = NULL,    /* qwen2 */
        .normalizer_nfc = 1,  /* what the Qwen2/3 tokenizer.json says */
        .ignore_merges = 0,
    };
    st = qp_tokenizer_from_spec(&spec, path, out, err);
    if (st == QP_OK && eos_id) {
        uint64_t v;
        *eos_id = qp_gguf_get_u64(g, "tokenizer.ggml.eos_token_id", &v) && v < (uint64_t)n_tok ? (int32_t)v : -1;
    }
done:
    free(tok);
    free(tok_len);
    free(mer);
    free(mer_len);
    free(types_copy);
    return st;
}

qp_status qp_rt_model_tokenizer(const qp_rt_model *m, qp_tokenizer **out, int32_t *eos_id, qp_err *err)
{
    *out = NULL;
    if (eos_id)
        *eos_id = -1;
    if (qp_rt_model_gguf(m))
        return from_gguf(qp_rt_model_gguf(m), out, eos_id, err);
    qp_status st = qp_tokenizer_load_dir(qp_rt_model_path(m), out, err);
    if (st != QP_OK || !eos_id)
        return st;
    qp_hf_config *cfg = calloc(1, sizeof *cfg);
    qp_err ignored;
    if (cfg && qp_hf_config_load(qp_rt_model_path(m), cfg, &ignored) == QP_OK && cfg->eos_token_id >= 0 &&
        cfg->eos_token_id < qp_tokenizer_n_tokens(*out))
        *eos_id = (int32_t)cfg->eos_token_id;
    free(cfg);
    return QP_OK;
}
