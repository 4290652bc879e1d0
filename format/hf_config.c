/* hf_config.c - config.json (+ generation_config.json) of Qwen3 checkpoints.
 *
 * Every top-level key is one of: understood (parsed and range-checked
 * below), known irrelevant to a GGUF (IRRELEVANT, with the reason), or
 * reported in unknown_keys. Numbers must be JSON numbers with the right
 * kind of value: "hidden_size": "256" is bad input naming the key, not 0. */
#include "format/hf_config.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "format/hfc_json.h"

/* Keys with no bearing on the GGUF or the forward pass, and why. */
static const struct {
    const char *key;
    const char *why;
} IRRELEVANT[] = {
    {"initializer_range", "std of random weight init: training only"},
    {"attention_dropout", "dropout is off at inference"},
    {"use_cache", "transformers' KV-cache switch; llama.cpp always caches"},
    {"transformers_version", "version of the library that wrote the file"},
    {"router_aux_loss_coef", "load-balancing loss weight: training only"},
    {"output_router_logits", "returns router logits for that loss: training only"},
    {"sliding_window", "window size, used only with use_sliding_window (true is refused)"},
    {"max_window_layers", "which layers slide, used only with use_sliding_window (true is refused)"},
    {"output_attentions", "transformers output-format switch"},
    {"output_hidden_states", "transformers output-format switch"},
    {"return_dict", "transformers output-format switch"},
    {"torchscript", "transformers export switch"},
    {"chunk_size_feed_forward", "transformers memory/speed trade-off; same result"},
    {"is_encoder_decoder", "generic PretrainedConfig field; these are decoder-only"},
    {"id2label", "classification-head labels; a causal LM has none"},
    {"label2id", "classification-head labels; a causal LM has none"},
    {"problem_type", "classification-head loss selection"},
    {"_name_or_path", "where transformers loaded the config from"},
    {"use_bfloat16", "legacy dtype hint; the tensors carry their dtype"},
};

/* Keys parsed below. `moe` keys mean nothing to a dense model: there they
 * are reported as unknown rather than silently ignored. */
static const struct {
    const char *key;
    int moe;
} UNDERSTOOD[] = {
    {"architectures", 0}, {"model_type", 0}, {"vocab_size", 0}, {"hidden_size", 0},
    {"intermediate_size", 0}, {"num_hidden_layers", 0}, {"num_attention_heads", 0},
    {"num_key_value_heads", 0}, {"head_dim", 0}, {"max_position_embeddings", 0},
    {"rms_norm_eps", 0}, {"rope_theta", 0}, {"rope_scaling", 0}, {"rope_parameters", 0},
    {"tie_word_embeddings", 0}, {"bos_token_id", 0}, {"eos_token_id", 0}, {"pad_token_id", 0},
    {"torch_dtype", 0}, {"dtype", 0}, {"quantization_config", 0}, {"hidden_act", 0},
    {"attention_bias", 0}, {"use_sliding_window", 0}, {"layer_types", 0},
    {"num_experts", 1}, {"num_local_experts", 1}, {"num_experts_per_tok", 1},
    {"moe_intermediate_size", 1}, {"norm_topk_prob", 1}, {"decoder_sparse_step", 1},
    {"mlp_only_layers", 1},
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* Upper bounds: far above any real model, low enough that products of a
 * few of them cannot overflow 64 bits downstream. */
#define MAX_DIM ((int64_t)1 << 20)
#define MAX_COUNT ((int64_t)1 << 16)
#define MAX_VOCAB ((int64_t)1 << 24)
#define MAX_CTX ((int64_t)1 << 28)
#define MAX_TOKEN_ID (((int64_t)1 << 31) - 1)

static void classify_keys(const cJSON *root, int is_moe, qp_hf_config *cfg)
{
    for (const cJSON *it = root->child; it; it = it->next) {
        int known = 0;
        for (size_t i = 0; i < N_OF(UNDERSTOOD) && !known; i++)
            if (strcmp(it->string, UNDERSTOOD[i].key) == 0)
                known = !UNDERSTOOD[i].moe || is_moe;
        for (size_t i = 0; i < N_OF(IRRELEVANT) && !known; i++)
            if (strcmp(it->string, IRRELEVANT[i].key) == 0)
                known = 1;
        if (!known)
            hfc_add_unknown(cfg, it->string);
    }
}

static qp_status parse_arch(const cJSON *root, const char *path, qp_hf_config *cfg, qp_err *err)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    if (!a || cJSON_IsNull(a))
        return hfc_err(err, QP_ERR_BAD_INPUT, path, "architectures", "is missing");
    if (!cJSON_IsArray(a) || !a->child || !cJSON_IsString(a->child))
        return hfc_err(err, QP_ERR_BAD_INPUT, path, "architectures", "must be a non-empty array of strings");
    const char *name = a->child->valuestring;
    static const struct {
        const char *name;
        qp_arch arch;
    } ARCHS[] = {
        {"Qwen3ForCausalLM", QP_ARCH_QWEN3},
        {"Qwen3MoeForCausalLM", QP_ARCH_QWEN3_MOE},
        {"Qwen3OmniMoeForConditionalGeneration", QP_ARCH_QWEN3_OMNI},
    };
    for (size_t i = 0; i < N_OF(ARCHS); i++) {
        if (strcmp(name, ARCHS[i].name) == 0) {
            cfg->arch = ARCHS[i].arch;
            snprintf(cfg->architecture_name, sizeof cfg->architecture_name, "%s", name);
            return QP_OK;
        }
    }
    qp_err_set(err, QP_ERR_UNSUPPORTED, path,
               "architecture \"%.80s\" is not supported (Qwen3ForCausalLM, Qwen3MoeForCausalLM, "
               "Qwen3OmniMoeForConditionalGeneration are)",
               name);
    qp_err_set_tensor(err, "architectures");
    return QP_ERR_UNSUPPORTED;
}

/* Features the Qwen3 GGUF graph does not have: refuse rather than convert
 * into a model that computes something else. */
static qp_status check_unsupported(const cJSON *root, const char *path, qp_err *err)
{
    char act[32] = "silu";
    qp_status st = hfc_string(root, "hidden_act", path, act, sizeof act, err);
    if (st != QP_OK)
        return st;
    if (strcmp(act, "silu") != 0)
        return hfc_err(err, QP_ERR_UNSUPPORTED, path, "hidden_act", "is not \"silu\", the only activation supported");
    int b = 0;
    if ((st = hfc_bool(root, "attention_bias", path, &b, err)) != QP_OK)
        return st;
    if (b)
        return hfc_err(err, QP_ERR_UNSUPPORTED, path, "attention_bias", "is true; biased q/k/v/o are not supported");
    if ((st = hfc_bool(root, "use_sliding_window", path, &b, err)) != QP_OK)
        return st;
    if (b)
        return hfc_err(err, QP_ERR_UNSUPPORTED, path, "use_sliding_window",
                       "is true; sliding-window attention is not supported");
    const cJSON *lt = cJSON_GetObjectItemCaseSensitive(root, "layer_types");
    if (lt && !cJSON_IsNull(lt)) {
        if (!cJSON_IsArray(lt))
            return hfc_err(err, QP_ERR_BAD_INPUT, path, "layer_types", "must be an array of strings");
        for (const cJSON *it = lt->child; it; it = it->next) {
            if (!cJSON_IsString(it))
                return hfc_err(err, QP_ERR_BAD_INPUT, path, "layer_types", "must be an array of strings");
            if (strcmp(it->valuestring, "full_attention") != 0)
                return hfc_err(err, QP_ERR_UNSUPPORTED, path, "layer_types",
                               "has a layer that is not \"full_attention\"");
        }
    }
    return QP_OK;
}

static qp_status parse_dense(const cJSON *root, const char *path, qp_hf_config *cfg, qp_err *err)
{
    qp_status st;
    const int is_moe = cfg->arch == QP_ARCH_QWEN3_MOE;
    if ((st = hfc_int(root, "vocab_size", path, 1, MAX_VOCAB, HFC_REQUIRED, &cfg->vocab_size, err)) ||
        (st = hfc_int(root, "hidden_size", path, 1, MAX_DIM, HFC_REQUIRED, &cfg->hidden_size, err)) ||
        (st = hfc_int(root, "intermediate_size", path, 1, MAX_DIM, is_moe ? 0 : HFC_REQUIRED, &cfg->intermediate_size, err)) ||
        (st = hfc_int(root, "num_hidden_layers", path, 1, MAX_COUNT, HFC_REQUIRED, &cfg->num_hidden_layers, err)) ||
        (st = hfc_int(root, "num_attention_heads", path, 1, MAX_COUNT, HFC_REQUIRED, &cfg->num_attention_heads, err)) ||
        (st = hfc_int(root, "num_key_value_heads", path, 1, MAX_COUNT, cfg->num_attention_heads,
                      &cfg->num_key_value_heads, err)) ||
        (st = hfc_int(root, "head_dim", path, 1, MAX_COUNT, 0, &cfg->head_dim, err)) ||
        /* 32768 is Qwen3Config's default when the key is absent */
        (st = hfc_int(root, "max_position_embeddings", path, 1, MAX_CTX, 32768, &cfg->max_position_embeddings,
                      err)) ||
        (st = hfc_double(root, "rms_norm_eps", path, 0.0, 1.0, 1e-6, &cfg->rms_norm_eps, err)) ||
        (st = hfc_bool(root, "tie_word_embeddings", path, &cfg->tie_word_embeddings, err)))
        return st;
    if (cfg->num_key_value_heads > cfg->num_attention_heads ||
        cfg->num_attention_heads % cfg->num_key_value_heads != 0)
        return hfc_err(err, QP_ERR_BAD_INPUT, path, "num_key_value_heads",
                       "must divide num_attention_heads (grouped-query attention)");
    if (cfg->head_dim == 0) {
        if (cfg->hidden_size % cfg->num_attention_heads != 0)
            return hfc_err(err, QP_ERR_BAD_INPUT, path, "head_dim",
                           "is absent and hidden_size is not a multiple of num_attention_heads");
        cfg->head_dim = cfg->hidden_size / cfg->num_attention_heads;
    }
    return QP_OK;
}

static qp_status parse_moe(const cJSON *root, const char *path, qp_hf_config *cfg, qp_err *err)
{
    qp_status st;
    int64_t ne4 = 0, ne5 = 0;
    if ((st = hfc_int(root, "num_experts", path, 1, MAX_COUNT, 0, &ne4, err)) ||
        (st = hfc_int(root, "num_local_experts", path, 1, MAX_COUNT, 0, &ne5, err)))
        return st;
    if (ne4 && ne5 && ne4 != ne5)
        return hfc_err(err, QP_ERR_BAD_INPUT, path, "num_local_experts", "disagrees with num_experts");
    cfg->num_experts = ne4 ? ne4 : ne5;
    if (cfg->num_experts == 0)
        return hfc_err(err, QP_ERR_BAD_INPUT, path, "num_experts", "is missing (nor num_local_experts given)");
    if ((st = hfc_int(root, "num_experts_per_tok", path, 1, cfg->num_experts, HFC_REQUIRED, &cfg->num_experts_per_tok,
                      err)) ||
        (st = hfc_int(root, "moe_intermediate_size", path, 1, MAX_DIM, HFC_REQUIRED, &cfg->moe_intermediate_size, err)) ||
        (st = hfc_bool(root, "norm_topk_prob", path, &cfg->norm_topk_prob, err)) ||
        (st = hfc_int(root, "decoder_sparse_step", path, 1, cfg->num_hidden_layers, 1, &cfg->decoder_sparse_step,
                      err)))
        return st;
    const cJSON *ml = cJSON_GetObjectItemCaseSensitive(root, "mlp_only_layers");
    if (ml && !cJSON_IsNull(ml)) {
        if (!cJSON_IsArray(ml))
            return hfc_err(err, QP_ERR_BAD_INPUT, path, "mlp_only_layers", "must be an array of layer indices");
        for (const cJSON *it = ml->child; it; it = it->next) {
            int64_t v;
            if (!hfc_number_int(it, &v) || v < 0 || v >= cfg->num_hidden_layers)
                return hfc_err(err, QP_ERR_BAD_INPUT, path, "mlp_only_layers",
                               "must hold integers in [0, num_hidden_layers)");
            if (cfg->n_mlp_only_layers == (int64_t)N_OF(cfg->mlp_only_layers))
                return hfc_err(err, QP_ERR_UNSUPPORTED, path, "mlp_only_layers", "has more than 256 entries");
            cfg->mlp_only_layers[cfg->n_mlp_only_layers++] = v;
        }
    }
    /* Dense layers in a MoE model use intermediate_size. */
    if ((cfg->n_mlp_only_layers > 0 || cfg->decoder_sparse_step > 1) && cfg->intermediate_size == 0)
        return hfc_err(err, QP_ERR_BAD_INPUT, path, "intermediate_size", "is missing but some layers are dense");
    return QP_OK;
}

static qp_status parse_quant(const cJSON *root, const char *path, qp_hf_config *cfg, qp_err *err)
{
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(root, "quantization_config");
    if (!q || cJSON_IsNull(q))
        return QP_OK;
    if (!cJSON_IsObject(q))
        return hfc_err(err, QP_ERR_BAD_INPUT, path, "quantization_config", "must be an object");
    char method[32] = "";
    qp_status st = hfc_string(q, "quant_method", path, method, sizeof method, err);
    if (st != QP_OK)
        return st;
    if (strcmp(method, "fp8") != 0)
        return hfc_err(err, QP_ERR_UNSUPPORTED, path, "quantization_config.quant_method",
                       "is not \"fp8\", the only pre-quantized format supported");
    cfg->fp8 = 1;
    const cJSON *bs = cJSON_GetObjectItemCaseSensitive(q, "weight_block_size");
    if (!bs || cJSON_IsNull(bs))
        return QP_OK; /* per-tensor scales */
    if (!cJSON_IsArray(bs) || cJSON_GetArraySize(bs) != 2 || !hfc_number_int(bs->child, &cfg->fp8_block[0]) ||
        !hfc_number_int(bs->child->next, &cfg->fp8_block[1]) || cfg->fp8_block[0] < 1 ||
        cfg->fp8_block[1] < 1 || cfg->fp8_block[0] > MAX_DIM || cfg->fp8_block[1] > MAX_DIM)
        return hfc_err(err, QP_ERR_BAD_INPUT, path, "quantization_config.weight_block_size",
                       "must be two positive integers");
    return QP_OK;
}

/* bos/eos/pad: an id, null, or (eos in particular) a list whose first
 * element is the id llama.cpp's single eos field can hold. */
static qp_status token_ids(const cJSON *root, const char *path, qp_hf_config *cfg, qp_err *err)
{
    static const char *const KEYS[3] = {"bos_token_id", "eos_token_id", "pad_token_id"};
    int64_t *dst[3] = {&cfg->bos_token_id, &cfg->eos_token_id, &cfg->pad_token_id};
    for (int i = 0; i < 3; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, KEYS[i]);
        if (!v || cJSON_IsNull(v))
            continue;
        if (cJSON_IsArray(v)) {
            if (!v->child)
                continue;
            v = v->child;
        }
        int64_t id;
        if (!hfc_number_int(v, &id) || id < 0 || id > MAX_TOKEN_ID)
            return hfc_err(err, QP_ERR_BAD_INPUT, path, KEYS[i], "must be a token id (non-negative integer) or a list of them");
        *dst[i] = id;
    }
    return QP_OK;
}

qp_status qp_hf_config_parse(const char *json, size_t len, const char *path, qp_hf_config *cfg, qp_err *err)
{
    if (!cfg || (!json && len))
        return qp_err_set(err, QP_ERR_USAGE, path, "qp_hf_config_parse: NULL argument");
    memset(cfg, 0, sizeof *cfg);
    cfg->bos_token_id = cfg->eos_token_id = cfg->pad_token_id = -1;
    cJSON *root = NULL;
    qp_status st = hfc_parse_text(json, len, path, &root, err);
    if (st != QP_OK)
        return st;
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return qp_err_set(err, QP_ERR_BAD_INPUT, path, "config is not a JSON object");
    }
    st = hfc_check_unique_keys(root, path, err);
    if (st == QP_OK)
        st = parse_arch(root, path, cfg, err);
    if (st == QP_OK)
        st = hfc_string(root, "model_type", path, cfg->model_type, sizeof cfg->model_type, err);
    if (st == QP_OK)
        st = hfc_string(root, "torch_dtype", path, cfg->torch_dtype, sizeof cfg->torch_dtype, err);
    if (st == QP_OK && !cfg->torch_dtype[0]) /* transformers 5 renamed it */
        st = hfc_string(root, "dtype", path, cfg->torch_dtype, sizeof cfg->torch_dtype, err);
    /* Omni nests its text model in thinker_config; convert/omni reads that. */
    if (st == QP_OK && cfg->arch != QP_ARCH_QWEN3_OMNI) {
        if ((st = check_unsupported(root, path, err)) == QP_OK && (st = parse_dense(root, path, cfg, err)) == QP_OK &&
            (cfg->arch != QP_ARCH_QWEN3_MOE || (st = parse_moe(root, path, cfg, err)) == QP_OK) &&
            (st = hfc_rope(root, path, cfg, err)) == QP_OK && (st = parse_quant(root, path, cfg, err)) == QP_OK &&
            (st = token_ids(root, path, cfg, err)) == QP_OK)
            classify_keys(root, cfg->arch == QP_ARCH_QWEN3_MOE, cfg);
    }
    cJSON_Delete(root);
    return st;
}

/* Largest config/generation_config we read: real ones are a few KB. */
#define MAX_CONFIG_BYTES ((size_t)16 << 20)

qp_status qp_hf_config_load(const char *dir, qp_hf_config *cfg, qp_err *err)
{
    if (!dir || !cfg)
        return qp_err_set(err, QP_ERR_USAGE, dir, "qp_hf_config_load: NULL argument");
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *text = NULL;
    size_t len = 0;
    qp_status st = hfc_read_file(path, MAX_CONFIG_BYTES, &text, &len, err);
    if (st != QP_OK)
        return st;
    st = qp_hf_config_parse(text, len, path, cfg, err);
    free(text);
    if (st != QP_OK)
        return st;

    /* generation_config.json is what transformers' generate() uses, so its
     * token ids win over config.json's. */
    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    struct stat sb;
    if (stat(path, &sb) != 0)
        return QP_OK;
    if ((st = hfc_read_file(path, MAX_CONFIG_BYTES, &text, &len, err)) != QP_OK)
        return st;
    cJSON *root = NULL;
    st = hfc_parse_text(text, len, path, &root, err);
    free(text);
    if (st != QP_OK)
        return st;
    if (!cJSON_IsObject(root))
        st = qp_err_set(err, QP_ERR_BAD_INPUT, path, "generation config is not a JSON object");
    else if ((st = hfc_check_unique_keys(root, path, err)) == QP_OK)
        st = token_ids(root, path, cfg, err);
    cJSON_Delete(root);
    return st;
}

const char *qp_arch_name(qp_arch a)
{
    switch (a) {
    case QP_ARCH_QWEN3:
        return "qwen3";
    case QP_ARCH_QWEN3_MOE:
        return "qwen3moe";
    case QP_ARCH_QWEN3_OMNI:
        return "qwen3vlmoe";
    default:
        return "unknown";
    }
}
