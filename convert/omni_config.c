/* omni_config.c - the nested config.json of Qwen3-Omni.
 *
 * The three transformer stacks (thinker text model, talker text model, code
 * predictor) are Qwen3 / Qwen3-MoE configs: they are handed to
 * format/hf_config as a config.json of their own, so both key spellings
 * (rope_theta / rope_parameters, num_experts / num_local_experts) and every
 * range check come from there. The encoders and code2wav are parsed here.
 * Every key is understood, known irrelevant, or reported as a note. */
#include "convert/omni.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/hfc_json.h"

#define MAX_DIM ((int64_t)1 << 20)
#define MAX_COUNT ((int64_t)1 << 16)
#define MAX_ID (((int64_t)1 << 31) - 1)
#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

void qp_omni_note(qp_omni_notes *notes, const char *fmt, ...)
{
    if (!notes)
        return;
    if (notes->n >= QP_OMNI_MAX_WARNINGS) {
        notes->dropped++;
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(notes->msg[notes->n++], sizeof notes->msg[0], fmt, ap);
    va_end(ap);
}

/* PretrainedConfig boilerplate present at every level: nothing in it
 * changes the weights or the forward pass. */
static const char *const BOILERPLATE[] = {
    "architectures", "output_hidden_states", "return_dict", "dtype", "torch_dtype", "chunk_size_feed_forward",
    "is_encoder_decoder", "id2label", "label2id", "problem_type", "_name_or_path", "model_type",
    "output_attentions", "initializer_range", "transformers_version", "use_cache", "dropout", "attention_dropout",
    "activation_dropout", "torchscript", "use_bfloat16", "pruned_heads", "tf_legacy_loss", "tokenizer_class",
    "add_cross_attention", "cross_attention_hidden_size", "finetuning_task", "prefix", "task_specific_params",
    "decoder_start_token_id", "sep_token_id", "bos_token_id", "eos_token_id", "pad_token_id",
};

static int in_list(const char *key, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(key, list[i]) == 0)
            return 1;
    return 0;
}

/* Note every key of obj that is neither boilerplate nor in `known`. */
static void note_unknown(const cJSON *obj, const char *where, const char *const *known, size_t n_known,
                         qp_omni_notes *notes)
{
    for (const cJSON *it = obj->child; it; it = it->next)
        if (!in_list(it->string, BOILERPLATE, N_OF(BOILERPLATE)) && !in_list(it->string, known, n_known))
            qp_omni_note(notes, "config.json: %s.%s is not understood; it is not in any output file", where,
                         it->string);
}

static const cJSON *sub_object(const cJSON *obj, const char *key, const char *path, int required, qp_err *err,
                               qp_status *st)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *st = QP_OK;
    if (!v || cJSON_IsNull(v)) {
        if (required)
            *st = hfc_err(err, QP_ERR_BAD_INPUT, path, key, "is missing");
        return NULL;
    }
    if (!cJSON_IsObject(v)) {
        *st = hfc_err(err, QP_ERR_BAD_INPUT, path, key, "must be an object");
        return NULL;
    }
    return v;
}

/* rope_parameters (transformers 5) or rope_scaling (4): mrope_section and
 * the interleaved flags, which format/hf_config leaves to us. */
static qp_status parse_mrope(const cJSON *obj, const char *path, int64_t *n, int64_t sec[4], int *interleaved,
                             qp_err *err)
{
    static const char *const KEYS[] = {"rope_parameters", "rope_scaling"};
    *n = 0;
    *interleaved = 0;
    for (size_t k = 0; k < N_OF(KEYS); k++) {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(obj, KEYS[k]);
        if (!cJSON_IsObject(r))
            continue;
        const cJSON *ms = cJSON_GetObjectItemCaseSensitive(r, "mrope_section");
        if (ms && !cJSON_IsNull(ms)) {
            if (!cJSON_IsArray(ms) || cJSON_GetArraySize(ms) < 1 || cJSON_GetArraySize(ms) > 4)
                return hfc_err(err, QP_ERR_BAD_INPUT, path, "mrope_section", "must be an array of 1 to 4 integers");
            int64_t m = 0, vals[4];
            for (const cJSON *it = ms->child; it; it = it->next) {
                if (!hfc_number_int(it, &vals[m]) || vals[m] < 0 || vals[m] > MAX_DIM)
                    return hfc_err(err, QP_ERR_BAD_INPUT, path, "mrope_section", "must hold non-negative integers");
                m++;
            }
            if (*n && (m != *n || memcmp(vals, sec, (size_t)m * sizeof *vals) != 0))
                return hfc_err(err, QP_ERR_BAD_INPUT, path, "mrope_section",
                               "differs between rope_parameters and rope_scaling");
            *n = m;
            memcpy(sec, vals, (size_t)m * sizeof *vals);
        }
        int b = 0;
        qp_status st;
        if ((st = hfc_bool(r, "interleaved", path, &b, err)) != QP_OK)
            return st;
        *interleaved |= b;
        b = 0;
        if ((st = hfc_bool(r, "mrope_interleaved", path, &b, err)) != QP_OK)
            return st;
        *interleaved |= b;
    }
    return QP_OK;
}

/* The keys of a stack's unknown_keys list that this file handles itself. */
static void note_stack_unknowns(const qp_hf_config *c, const char *where, const char *const *handled, size_t n,
                                qp_omni_notes *notes)
{
    char buf[sizeof c->unknown_keys];
    snprintf(buf, sizeof buf, "%s", c->unknown_keys);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        const char *leaf = strrchr(tok, '.');
        leaf = leaf ? leaf + 1 : tok;
        if (in_list(tok, handled, n) || in_list(leaf, handled, n) || in_list(tok, BOILERPLATE, N_OF(BOILERPLATE)))
            continue;
        qp_omni_note(notes, "config.json: %s.%s is not understood; it is not in any output file", where, tok);
    }
}

/* Parse a nested Qwen3 / Qwen3-MoE text config through format/hf_config by
 * giving it the top-level shape it expects. */
static qp_status parse_stack(const cJSON *obj, const char *arch, const cJSON *tie_fallback, const char *path,
                             qp_hf_config *out, qp_err *err)
{
    cJSON *copy = cJSON_Duplicate(obj, 1);
    cJSON *archs = cJSON_CreateStringArray(&arch, 1);
    if (!copy || !archs) {
        cJSON_Delete(copy);
        cJSON_Delete(archs);
        return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
    }
    if (cJSON_HasObjectItem(copy, "architectures"))
        cJSON_ReplaceItemInObjectCaseSensitive(copy, "architectures", archs);
    else
        cJSON_AddItemToObject(copy, "architectures", archs);
    if (tie_fallback && cJSON_IsBool(tie_fallback) && !cJSON_HasObjectItem(copy, "tie_word_embeddings"))
        cJSON_AddBoolToObject(copy, "tie_word_embeddings", cJSON_IsTrue(tie_fallback));
    char *text = cJSON_PrintUnformatted(copy);
    cJSON_Delete(copy);
    if (!text)
        return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
    qp_status st = qp_hf_config_parse(text, strlen(text), path, out, err);
    free(text);
    return st;
}

static qp_status parse_audio(const cJSON *a, const char *path, qp_omni_audio *o, qp_omni_notes *notes, qp_err *err)
{
    qp_status st;
    o->layer_norm_eps = 1e-5;
    snprintf(o->activation_function, sizeof o->activation_function, "gelu");
    if ((st = hfc_int(a, "num_mel_bins", path, 1, MAX_DIM, HFC_REQUIRED, &o->num_mel_bins, err)) ||
        (st = hfc_int(a, "encoder_layers", path, 1, MAX_COUNT, HFC_REQUIRED, &o->encoder_layers, err)) ||
        (st = hfc_int(a, "encoder_attention_heads", path, 1, MAX_COUNT, HFC_REQUIRED, &o->encoder_attention_heads,
                      err)) ||
        (st = hfc_int(a, "encoder_ffn_dim", path, 1, MAX_DIM, HFC_REQUIRED, &o->encoder_ffn_dim, err)) ||
        (st = hfc_int(a, "d_model", path, 1, MAX_DIM, HFC_REQUIRED, &o->d_model, err)) ||
        (st = hfc_int(a, "output_dim", path, 1, MAX_DIM, HFC_REQUIRED, &o->output_dim, err)) ||
        (st = hfc_int(a, "max_source_positions", path, 1, MAX_DIM, 1500, &o->max_source_positions, err)) ||
        (st = hfc_int(a, "n_window", path, 1, MAX_DIM, 0, &o->n_window, err)) ||
        (st = hfc_int(a, "n_window_infer", path, 1, MAX_DIM, 0, &o->n_window_infer, err)) ||
        (st = hfc_int(a, "conv_chunksize", path, 1, MAX_DIM, 0, &o->conv_chunksize, err)) ||
        (st = hfc_int(a, "downsample_hidden_size", path, 1, MAX_DIM, HFC_REQUIRED, &o->downsample_hidden_size,
                      err)) ||
        (st = hfc_bool(a, "scale_embedding", path, &o->scale_embedding, err)) ||
        (st = hfc_string(a, "activation_function", path, o->activation_function, sizeof o->activation_function,
                         err)))
        return st;
    if (o->d_model % o->encoder_attention_heads != 0)
        return hfc_err(err, QP_ERR_BAD_INPUT, path, "encoder_attention_heads", "does not divide d_model");
    static const char *const KNOWN[] = {"num_mel_bins", "encoder_layers", "encoder_attention_heads",
                                        "encoder_ffn_dim", "d_model", "output_dim", "max_source_positions",
                                        "n_window", "n_window_infer", "conv_chunksize", "downsample_hidden_size",
                                        "scale_embedding", "activation_function"};
    note_unknown(a, "thinker_config.audio_config", KNOWN, N_OF(KNOWN), notes);
    return QP_OK;
}

static qp_status int_list(const cJSON *obj, const char *key, const char *path, int64_t lo, int64_t hi, int64_t *dst,
                          int64_t *n, qp_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *n = 0;
    if (!v || cJSON_IsNull(v))
        return QP_OK;
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) > QP_OMNI_MAX_LIST)
        return hfc_err(err, QP_ERR_BAD_INPUT, path, key, "must be an array of at most 64 integers");
    for (const cJSON *it = v->child; it; it = it->next) {
        if (!hfc_number_int(it, &dst[*n]) || dst[*n] < lo || dst[*n] > hi)
            return hfc_err(err, QP_ERR_BAD_INPUT, path, key, "holds a value that is not an integer in range");
        (*n)++;
    }
    return QP_OK;
}

static qp_status parse_vision(const cJSON *v, const char *path, qp_omni_vision *o, qp_omni_notes *notes,
                              qp_err *err)
{
    qp_status st;
    snprintf(o->hidden_act, sizeof o->hidden_act, "gelu_pytorch_tanh");
    o->rope_theta = 10000.0;
    if ((st = hfc_int(v, "depth", path, 1, MAX_COUNT, HFC_REQUIRED, &o->depth, err)) ||
        (st = hfc_int(v, "hidden_size", path, 1, MAX_DIM, HFC_REQUIRED, &o->hidden_size, err)) ||
        (st = hfc_int(v, "intermediate_size", path, 1, MAX_DIM, HFC_REQUIRED, &o->intermediate_size, err)) ||
        (st = hfc_int(v, "num_heads", path, 1, MAX_COUNT, HFC_REQUIRED, &o->num_heads, err)) ||
        (st = hfc_int(v, "in_channels", path, 1, 64, 3, &o->in_channels, err)) ||
        (st = hfc_int(v, "patch_size", path, 1, 4096, HFC_REQUIRED, &o->patch_size, err)) ||
        (st = hfc_int(v, "spatial_merge_size", path, 1, 64, HFC_REQUIRED, &o->spatial_merge_size, err)) ||
        (st = hfc_int(v, "temporal_patch_size", path, 1, 64, HFC_REQUIRED, &o->temporal_patch_size, err)) ||
        (st = hfc_int(v, "out_hidden_size", path, 1, MAX_DIM, HFC_REQUIRED, &o->out_hidden_size, err)) ||
        (st = hfc_int(v, "num_position_embeddings", path, 1, MAX_DIM, HFC_REQUIRED, &o->num_position_embeddings,
                      err)) ||
        (st = int_list(v, "deepstack_visual_indexes", path, 0, MAX_COUNT, o->deepstack_visual_indexes,
                       &o->n_deepstack, err)) ||
        (st = hfc_string(v, "hidden_act", path, o->hidden_act, sizeof o->hidden_act, err)) ||
        (st = hfc_double(v, "rope_theta", path, 0.0, 1e12, o->rope_theta, &o->rope_theta, err)))
        return st;
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(v, "rope_parameters");
    if (cJSON_IsObject(rp) && (st = hfc_double(rp, "rope_theta", path, 0.0, 1e12, o->rope_theta, &o->rope_theta,
                                               err)) != QP_OK)
        return st;
    if (o->hidden_size % o->num_heads != 0)
        return hfc_err(err, QP_ERR_BAD_INPUT, path, "num_heads", "does not divide hidden_size");
    for (int64_t i = 0; i < o->n_deepstack; i++)
        if (o->deepstack_visual_indexes[i] >= o->depth)
            return hfc_err(err, QP_ERR_BAD_INPUT, path, "deepstack_visual_indexes", "names a block past depth");
    static const char *const KNOWN[] = {"depth", "hidden_size", "intermediate_size", "num_heads", "in_channels",
                                        "patch_size", "spatial_merge_size", "temporal_patch_size",
                                        "out_hidden_size", "num_position_embeddings", "deepstack_visual_indexes",
                                        "hidden_act", "rope_theta", "rope_parameters"};
    note_unknown(v, "thinker_config.vision_config", KNOWN, N_OF(KNOWN), notes);
    return QP_OK;
}

static qp_status parse_code2wav(const cJSON *c, const char *path, qp_omni_code2wav *o, qp_omni_notes *notes,
                                qp_err *err)
{
    qp_status st;
    snprintf(o->hidden_act, sizeof o->hidden_act, "silu");
    o->rope_theta = 10000.0;
    o->rms_norm_eps = 1e-5;
    o->layer_scale_initial_scale = 0.01;
    if ((st = hfc_int(c, "codebook_size", path, 1, MAX_DIM, HFC_REQUIRED, &o->codebook_size, err)) ||
        (st = hfc_int(c, "hidden_size", path, 1, MAX_DIM, HFC_REQUIRED, &o->hidden_size, err)) ||
        (st = hfc_int(c, "max_position_embeddings", path, 1, (int64_t)1 << 28, 8000, &o->max_position_embeddings,
                      err)) ||
        (st = hfc_int(c, "num_attention_heads", path, 1, MAX_COUNT, HFC_REQUIRED, &o->num_attention_heads, err)) ||
        (st = hfc_int(c, "num_key_value_heads", path, 1, MAX_COUNT, o->num_attention_heads,
                      &o->num_key_value_heads, err)) ||
        (st = hfc_int(c, "head_dim", path, 1, MAX_COUNT, 0, &o->head_dim, err)) ||
        (st = hfc_int(c, "sliding_window", path, 1, (int64_t)1 << 28, 0, &o->sliding_window, err)) ||
        (st = hfc_int(c, "intermediate_size", path, 1, MAX_DIM, HFC_REQUIRED, &o->intermediate_size, err)) ||
        (st = hfc_int(c, "num_hidden_layers", path, 1, MAX_COUNT, HFC_REQUIRED, &o->num_hidden_layers, err)) ||
        (st = hfc_int(c, "num_quantizers", path, 1, MAX_COUNT, HFC_REQUIRED, &o->num_quantizers, err)) ||
        (st = hfc_int(c, "decoder_dim", path, 1, MAX_DIM, HFC_REQUIRED, &o->decoder_dim, err)) ||
        (st = hfc_double(c, "rope_theta", path, 0.0, 1e12, o->rope_theta, &o->rope_theta, err)) ||
        (st = hfc_double(c, "rms_norm_eps", path, 0.0, 1.0, o->rms_norm_eps, &o->rms_norm_eps, err)) ||
        (st = hfc_double(c, "layer_scale_initial_scale", path, 0.0, 1e6, o->layer_scale_initial_scale,
                         &o->layer_scale_initial_scale, err)) ||
        (st = hfc_string(c, "hidden_act", path, o->hidden_act, sizeof o->hidden_act, err)) ||
        (st = int_list(c, "upsample_rates", path, 1, 4096, o->upsample_rates, &o->n_upsample_rates, err)) ||
        (st = int_list(c, "upsampling_ratios", path, 1, 4096, o->upsampling_ratios, &o->n_upsampling_ratios, err)))
        return st;
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(c, "rope_parameters");
    if (cJSON_IsObject(rp) && (st = hfc_double(rp, "rope_theta", path, 0.0, 1e12, o->rope_theta, &o->rope_theta,
                                               err)) != QP_OK)
        return st;
    if (o->head_dim == 0) {
        if (o->hidden_size % o->num_attention_heads != 0)
            return hfc_err(err, QP_ERR_BAD_INPUT, path, "num_attention_heads", "does not divide hidden_size");
        o->head_dim = o->hidden_size / o->num_attention_heads;
    }
    int b = 0;
    if ((st = hfc_bool(c, "attention_bias", path, &b, err)) != QP_OK)
        return st;
    if (b)
        qp_omni_note(notes, "config.json: code2wav_config.attention_bias is true; its bias tensors must be in the "
                            "checkpoint or conversion fails naming them");
    static const char *const KNOWN[] = {"codebook_size", "hidden_size", "max_position_embeddings",
                                        "num_attention_heads", "num_key_value_heads", "head_dim", "sliding_window",
                                        "intermediate_size", "num_hidden_layers", "num_quantizers", "decoder_dim",
                                        "rope_theta", "rope_parameters", "rms_norm_eps",
                                        "layer_scale_initial_scale", "hidden_act", "upsample_rates",
                                        "upsampling_ratios", "attention_bias"};
    note_unknown(c, "code2wav_config", KNOWN, N_OF(KNOWN), notes);
    return QP_OK;
}

/* Integer values (and objects of integers, like talker speaker ids) at one
 * level, under `prefix`. */
static qp_status collect_ints(const cJSON *obj, const char *prefix, const char *const *skip, size_t n_skip,
                              const char *path, qp_omni_config *cfg, qp_omni_notes *notes, qp_err *err)
{
    for (const cJSON *it = obj->child; it; it = it->next) {
        if (in_list(it->string, skip, n_skip) || in_list(it->string, BOILERPLATE, N_OF(BOILERPLATE)) ||
            cJSON_IsNull(it))
            continue;
        int64_t v;
        if (cJSON_IsNumber(it) && hfc_number_int(it, &v)) {
            if (v < 0 || v > MAX_ID)
                return hfc_err(err, QP_ERR_BAD_INPUT, path, it->string, "must be a non-negative integer");
            if (cfg->n_ints == QP_OMNI_MAX_IDS)
                return qp_err_set(err, QP_ERR_UNSUPPORTED, path, "more than %d integer settings", QP_OMNI_MAX_IDS);
            qp_omni_int *d = &cfg->ints[cfg->n_ints++];
            snprintf(d->key, sizeof d->key, "%s%.60s", prefix, it->string);
            d->value = v;
            continue;
        }
        if (cJSON_IsObject(it)) {
            int all_ints = it->child != NULL;
            for (const cJSON *x = it->child; x && all_ints; x = x->next)
                all_ints = cJSON_IsNumber(x) && hfc_number_int(x, &v) && v >= 0 && v <= MAX_ID;
            if (all_ints) {
                for (const cJSON *x = it->child; x; x = x->next) {
                    if (cfg->n_ints == QP_OMNI_MAX_IDS)
                        return qp_err_set(err, QP_ERR_UNSUPPORTED, path, "more than %d integer settings",
                                          QP_OMNI_MAX_IDS);
                    qp_omni_int *d = &cfg->ints[cfg->n_ints++];
                    snprintf(d->key, sizeof d->key, "%s%.30s.%.30s", prefix, it->string, x->string);
                    hfc_number_int(x, &d->value);
                }
                continue;
            }
        }
        qp_omni_note(notes, "config.json: %s%s is not understood; it is not in any output file", prefix, it->string);
    }
    return QP_OK;
}

int qp_omni_config_int(const qp_omni_config *cfg, const char *key, int64_t *out)
{
    for (int i = 0; i < cfg->n_ints; i++)
        if (strcmp(cfg->ints[i].key, key) == 0) {
            *out = cfg->ints[i].value;
            return 1;
        }
    return 0;
}

static const char *const STACK_HANDLED[] = {"mrope_section", "interleaved", "mrope_interleaved",
                                            "shared_expert_intermediate_size", "num_code_groups"};

static qp_status parse_thinker(const cJSON *th, const char *cfg_path, qp_omni_config *cfg, qp_omni_notes *notes,
                               qp_err *err)
{
    char path[4200];
    qp_status st;
    const cJSON *text, *audio, *vision;
    snprintf(path, sizeof path, "%s (thinker_config)", cfg_path);
    if (!(text = sub_object(th, "text_config", path, 1, err, &st)))
        return st;
    if (!(audio = sub_object(th, "audio_config", path, 1, err, &st)))
        return st;
    if (!(vision = sub_object(th, "vision_config", path, 1, err, &st)))
        return st;
    snprintf(path, sizeof path, "%s (thinker_config.text_config)", cfg_path);
    const cJSON *tie = cJSON_GetObjectItemCaseSensitive(th, "tie_word_embeddings");
    if ((st = parse_stack(text, "Qwen3MoeForCausalLM", tie, path, &cfg->thinker, err)) != QP_OK)
        return st;
    if ((st = parse_mrope(text, path, &cfg->n_mrope, cfg->mrope_section, &cfg->mrope_interleaved, err)) != QP_OK)
        return st;
    note_stack_unknowns(&cfg->thinker, "thinker_config.text_config", STACK_HANDLED, N_OF(STACK_HANDLED), notes);
    cfg->thinker.arch = QP_ARCH_QWEN3_OMNI;
    snprintf(cfg->thinker.architecture_name, sizeof cfg->thinker.architecture_name,
             "Qwen3OmniMoeForConditionalGeneration");
    snprintf(path, sizeof path, "%s (thinker_config.audio_config)", cfg_path);
    if ((st = parse_audio(audio, path, &cfg->audio, notes, err)) != QP_OK)
        return st;
    snprintf(path, sizeof path, "%s (thinker_config.vision_config)", cfg_path);
    if ((st = parse_vision(vision, path, &cfg->vision, notes, err)) != QP_OK)
        return st;
    static const char *const SKIP[] = {"text_config", "audio_config", "vision_config", "tie_word_embeddings"};
    snprintf(path, sizeof path, "%s (thinker_config)", cfg_path);
    return collect_ints(th, "thinker.", SKIP, N_OF(SKIP), path, cfg, notes, err);
}

static qp_status parse_talker(const cJSON *tk, const char *cfg_path, qp_omni_config *cfg, qp_omni_notes *notes,
                              qp_err *err)
{
    char path[4200];
    qp_status st;
    const cJSON *text, *cp;
    snprintf(path, sizeof path, "%s (talker_config)", cfg_path);
    if (!(text = sub_object(tk, "text_config", path, 1, err, &st)))
        return st;
    if (!(cp = sub_object(tk, "code_predictor_config", path, 1, err, &st)))
        return st;
    if ((st = hfc_int(tk, "num_code_groups", path, 1, MAX_COUNT, HFC_REQUIRED, &cfg->num_code_groups, err)) !=
        QP_OK)
        return st;
    const cJSON *tie = cJSON_GetObjectItemCaseSensitive(tk, "tie_word_embeddings");
    snprintf(path, sizeof path, "%s (talker_config.text_config)", cfg_path);
    if ((st = parse_stack(text, "Qwen3MoeForCausalLM", tie, path, &cfg->talker, err)) != QP_OK)
        return st;
    if ((st = hfc_int(text, "shared_expert_intermediate_size", path, 1, MAX_DIM, 0, &cfg->talker_shared_expert_ffn,
                      err)) != QP_OK)
        return st;
    if ((st = parse_mrope(text, path, &cfg->talker_n_mrope, cfg->talker_mrope_section,
                          &cfg->talker_mrope_interleaved, err)) != QP_OK)
        return st;
    note_stack_unknowns(&cfg->talker, "talker_config.text_config", STACK_HANDLED, N_OF(STACK_HANDLED), notes);
    snprintf(path, sizeof path, "%s (talker_config.code_predictor_config)", cfg_path);
    if ((st = parse_stack(cp, "Qwen3ForCausalLM", NULL, path, &cfg->code_predictor, err)) != QP_OK)
        return st;
    int64_t groups = 0;
    if ((st = hfc_int(cp, "num_code_groups", path, 1, MAX_COUNT, cfg->num_code_groups, &groups, err)) != QP_OK)
        return st;
    if (groups != cfg->num_code_groups)
        return hfc_err(err, QP_ERR_BAD_INPUT, path, "num_code_groups", "differs from talker_config.num_code_groups");
    note_stack_unknowns(&cfg->code_predictor, "talker_config.code_predictor_config", STACK_HANDLED,
                        N_OF(STACK_HANDLED), notes);
    static const char *const SKIP[] = {"text_config", "code_predictor_config", "num_code_groups",
                                       "tie_word_embeddings"};
    snprintf(path, sizeof path, "%s (talker_config)", cfg_path);
    return collect_ints(tk, "talker.", SKIP, N_OF(SKIP), path, cfg, notes, err);
}

qp_status qp_omni_config_parse(const char *json, size_t len, const char *path, qp_omni_config *cfg,
                               qp_omni_notes *notes, qp_err *err)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->enable_audio_output = -1;
    cJSON *root = NULL;
    qp_status st = hfc_parse_text(json, len, path, &root, err);
    if (st != QP_OK)
        return st;
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return qp_err_set(err, QP_ERR_BAD_INPUT, path, "config is not a JSON object");
    }
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    if (!cJSON_IsArray(a) || !cJSON_IsString(a->child) ||
        strcmp(a->child->valuestring, "Qwen3OmniMoeForConditionalGeneration") != 0) {
        cJSON_Delete(root);
        return hfc_err(err, QP_ERR_UNSUPPORTED, path, "architectures",
                       "is not [\"Qwen3OmniMoeForConditionalGeneration\"]");
    }
    const cJSON *th, *tk, *c2w;
    if ((st = hfc_check_unique_keys(root, path, err)) == QP_OK && (th = sub_object(root, "thinker_config", path, 1,
                                                                                   err, &st)) &&
        (tk = sub_object(root, "talker_config", path, 1, err, &st)) &&
        (c2w = sub_object(root, "code2wav_config", path, 1, err, &st)) &&
        (st = parse_thinker(th, path, cfg, notes, err)) == QP_OK &&
        (st = parse_talker(tk, path, cfg, notes, err)) == QP_OK) {
        char sub[4200];
        snprintf(sub, sizeof sub, "%s (code2wav_config)", path);
        if ((st = parse_code2wav(c2w, sub, &cfg->code2wav, notes, err)) == QP_OK) {
            int b = -1;
            const cJSON *eo = cJSON_GetObjectItemCaseSensitive(root, "enable_audio_output");
            if (eo && !cJSON_IsNull(eo) && (st = hfc_bool(root, "enable_audio_output", path, &b, err)) == QP_OK)
                cfg->enable_audio_output = b;
            static const char *const SKIP[] = {"thinker_config", "talker_config", "code2wav_config",
                                               "enable_audio_output"};
            if (st == QP_OK)
                st = collect_ints(root, "", SKIP, N_OF(SKIP), path, cfg, notes, err);
        }
    }
    cJSON_Delete(root);
    return st;
}

#define MAX_CONFIG_BYTES ((size_t)16 << 20)

qp_status qp_omni_config_load(const char *dir, qp_omni_config *cfg, qp_omni_notes *notes, qp_err *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *text = NULL;
    size_t len = 0;
    qp_status st = hfc_read_file(path, MAX_CONFIG_BYTES, &text, &len, err);
    if (st != QP_OK)
        return st;
    st = qp_omni_config_parse(text, len, path, cfg, notes, err);
    free(text);
    return st;
}

int qp_omni_is_omni_dir(const char *dir)
{
    qp_hf_config c;
    qp_err e;
    return qp_hf_config_load(dir, &c, &e) == QP_OK && c.arch == QP_ARCH_QWEN3_OMNI;
}
