/* omni_meta.c - key/values of the three Qwen3-Omni files.
 *
 * thinker: convert/meta_model.c and meta_tokenizer.c write llama.cpp's
 *          qwen3vlmoe keys; here come the M-RoPE sections (padded to 4),
 *          n_deepstack_layers 0 and BOS/EOS = <|im_end|> (what llama.cpp's
 *          converter writes for Qwen3-Omni), then the manifest.
 * mmproj:  llama.cpp's clip.* keys for a vision (qwen3vl_merger) + audio
 *          (qwen3a) projector, then qwen3omni.* extras and the manifest.
 * talker:  every hyper-parameter of the talker, code predictor and code2wav
 *          under qwen3omnitalker.*, then the manifest.
 * Every file: qpack provenance and the qpack.omni manifest naming the set
 * and, per tensor, what it was made from. */
#include "convert/omni_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/qp_ggml_types.h"
#include "format/gguf.h"

#define TALKER_ARCH "qwen3omnitalker"

#define CHECK(expr)                                                                                                    \
    do {                                                                                                               \
        if ((s = (expr)) != QP_OK)                                                                                     \
            goto fail;                                                                                                 \
    } while (0)

static const char *base_name(const char *p)
{
    const char *slash = strrchr(p, '/');
    return slash ? slash + 1 : p;
}

static qp_status set_i32_list(qp_gguf_writer *w, const char *key, const int64_t *v, int64_t n, int64_t pad_to)
{
    int32_t buf[QP_OMNI_MAX_LIST];
    int64_t m = n > pad_to ? n : pad_to;
    if (m > QP_OMNI_MAX_LIST)
        m = QP_OMNI_MAX_LIST;
    for (int64_t i = 0; i < m; i++)
        buf[i] = i < n ? (int32_t)v[i] : 0;
    return qp_gguf_set_arr(w, key, QP_GGUF_I32, buf, (uint64_t)m);
}

static qp_status provenance(qp_gguf_writer *w, const qp_omni_job *job, qp_err *err)
{
    qp_status s = QP_OK;
    const qp_st_model *st = job->st;
    size_t nf = qp_st_file_count(st);
    const char **names = calloc(nf ? nf : 1, sizeof *names);
    uint64_t *sizes = calloc(nf ? nf : 1, sizeof *sizes);
    if (!names || !sizes) {
        free(names);
        free(sizes);
        return qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory");
    }
    for (size_t i = 0; i < nf; i++) {
        names[i] = base_name(qp_st_file_path(st, (int)i));
        sizes[i] = qp_st_file_size(st, (int)i);
    }
    if ((s = qp_gguf_set_str(w, "qpack.version", QP_VERSION)) == QP_OK &&
        (s = qp_gguf_set_str(w, "qpack.recipe", job->recipe_desc)) == QP_OK &&
        (s = qp_gguf_set_arr_str(w, "qpack.source.files", names, NULL, nf)) == QP_OK &&
        (s = qp_gguf_set_arr(w, "qpack.source.sizes", QP_GGUF_U64, sizes, nf)) == QP_OK)
        s = qp_gguf_set_str(w, "qpack.source.architecture", "Qwen3OmniMoeForConditionalGeneration");
    free(names);
    free(sizes);
    return s;
}

/* The manifest: which set this file belongs to and what each tensor is. */
static qp_status manifest(qp_gguf_writer *w, const omni_meta_ctx *m)
{
    const qp_omni_job *job = m->job;
    const char *files[QP_OMNI_FILE_COUNT], *roles[QP_OMNI_FILE_COUNT];
    for (int f = 0; f < QP_OMNI_FILE_COUNT; f++) {
        files[f] = base_name(m->paths[f]);
        roles[f] = qp_omni_file_role((qp_omni_file)f);
    }
    const qp_plan *plan = job->plans[m->file];
    uint64_t here = 0;
    for (size_t i = 0; i < qp_st_count(job->st); i++)
        here += job->owner[i] == (int)m->file;
    qp_status s;
    if ((s = qp_gguf_set_str(w, "qpack.omni.component", qp_omni_file_role(m->file))) != QP_OK ||
        (s = qp_gguf_set_arr_str(w, "qpack.omni.files", files, NULL, QP_OMNI_FILE_COUNT)) != QP_OK ||
        (s = qp_gguf_set_arr_str(w, "qpack.omni.components", roles, NULL, QP_OMNI_FILE_COUNT)) != QP_OK ||
        (s = qp_gguf_set_u64(w, "qpack.omni.source_tensor_count", (uint64_t)qp_st_count(job->st))) != QP_OK ||
        (s = qp_gguf_set_u64(w, "qpack.omni.source_tensors_here", here)) != QP_OK)
        return s;
    return qp_gguf_set_arr_str(w, "qpack.omni.tensor_sources", (const char *const *)job->specs[m->file], NULL,
                               (uint64_t)qp_plan_count(plan));
}

static qp_status thinker_meta(qp_gguf_writer *w, const omni_meta_ctx *m)
{
    const qp_omni_job *job = m->job;
    qp_status s;
    /* llama.cpp pads the M-RoPE sections to 4 (the fourth is unused). */
    if ((s = set_i32_list(w, "qwen3vlmoe.rope.dimension_sections", job->cfg.mrope_section, job->cfg.n_mrope, 4)) !=
            QP_OK ||
        (s = qp_gguf_set_u32(w, "qwen3vlmoe.n_deepstack_layers", 0)) != QP_OK ||
        (s = qp_gguf_set_bool(w, "qpack.omni.mrope_interleaved", job->cfg.mrope_interleaved)) != QP_OK)
        return s;
    if (job->im_end_id >= 0 && ((s = qp_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)job->im_end_id)) !=
                                    QP_OK ||
                                (s = qp_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)job->im_end_id)) !=
                                    QP_OK))
        return s;
    return QP_OK;
}

static const char *file_type_name_of(uint32_t t)
{
    return t == QP_GGML_F32 ? "F32" : t == QP_GGML_BF16 ? "BF16" : t == QP_GGML_Q8_0 ? "Q8_0" : "F16";
}

static qp_status mmproj_meta(qp_gguf_writer *w, const omni_meta_ctx *m, qp_err *err)
{
    const qp_omni_job *job = m->job;
    const qp_omni_config *c = &job->cfg;
    const qp_omni_vision *v = &c->vision;
    const qp_omni_audio *a = &c->audio;
    qp_status s = QP_OK;
    uint32_t ft = job->mmproj_type == QP_GGML_F32 ? 0 : job->mmproj_type == QP_GGML_BF16 ? 32
                  : job->mmproj_type == QP_GGML_Q8_0 ? 7 : 1;
    char name[300];
    snprintf(name, sizeof name, "%s", job->dir);
    size_t len = strlen(name);
    while (len > 1 && name[len - 1] == '/')
        name[--len] = '\0';
    int64_t image_size = 0;
    while ((image_size + 1) * (image_size + 1) <= v->num_position_embeddings)
        image_size++;
    image_size *= v->patch_size; /* llama.cpp: sqrt(num_position_embeddings) * patch_size */
    uint8_t deep[QP_OMNI_MAX_LIST * 64];
    int64_t n_layers = v->depth < (int64_t)sizeof deep ? v->depth : (int64_t)sizeof deep;
    memset(deep, 0, sizeof deep);
    for (int64_t i = 0; i < v->n_deepstack; i++)
        if (v->deepstack_visual_indexes[i] < n_layers)
            deep[v->deepstack_visual_indexes[i]] = 1;
    CHECK(qp_gguf_set_str(w, "general.architecture", "clip"));
    CHECK(qp_gguf_set_str(w, "general.type", "mmproj"));
    CHECK(qp_gguf_set_str(w, "general.name", base_name(name)));
    CHECK(qp_gguf_set_u32(w, "general.file_type", ft));
    CHECK(qp_gguf_set_u32(w, "general.quantization_version", 2));
    CHECK(qp_gguf_set_bool(w, "clip.has_vision_encoder", 1));
    CHECK(qp_gguf_set_bool(w, "clip.has_audio_encoder", 1));
    CHECK(qp_gguf_set_str(w, "clip.vision.projector_type", "qwen3vl_merger"));
    CHECK(qp_gguf_set_str(w, "clip.audio.projector_type", "qwen3a"));
    CHECK(qp_gguf_set_bool(w, "clip.use_gelu", 1));
    CHECK(qp_gguf_set_u32(w, "clip.vision.projection_dim", (uint32_t)c->thinker.hidden_size));
    CHECK(qp_gguf_set_u32(w, "clip.vision.image_size", (uint32_t)image_size));
    CHECK(qp_gguf_set_u32(w, "clip.vision.patch_size", (uint32_t)v->patch_size));
    CHECK(qp_gguf_set_u32(w, "clip.vision.embedding_length", (uint32_t)v->hidden_size));
    CHECK(qp_gguf_set_u32(w, "clip.vision.feed_forward_length", (uint32_t)v->intermediate_size));
    CHECK(qp_gguf_set_u32(w, "clip.vision.block_count", (uint32_t)v->depth));
    CHECK(qp_gguf_set_u32(w, "clip.vision.attention.head_count", (uint32_t)v->num_heads));
    CHECK(qp_gguf_set_arr(w, "clip.vision.image_mean", QP_GGUF_F32, job->image_mean, 3));
    CHECK(qp_gguf_set_arr(w, "clip.vision.image_std", QP_GGUF_F32, job->image_std, 3));
    CHECK(qp_gguf_set_u32(w, "clip.vision.spatial_merge_size", (uint32_t)v->spatial_merge_size));
    /* llama.cpp takes the text model's rms_norm_eps for the vision norms */
    CHECK(qp_gguf_set_f32(w, "clip.vision.attention.layer_norm_epsilon", (float)c->thinker.rms_norm_eps));
    if (v->n_deepstack > 0)
        CHECK(qp_gguf_set_arr(w, "clip.vision.is_deepstack_layers", QP_GGUF_BOOL, deep, (uint64_t)n_layers));
    CHECK(qp_gguf_set_u32(w, "clip.audio.projection_dim", (uint32_t)c->thinker.hidden_size));
    CHECK(qp_gguf_set_u32(w, "clip.audio.embedding_length", (uint32_t)a->d_model));
    CHECK(qp_gguf_set_u32(w, "clip.audio.feed_forward_length", (uint32_t)a->encoder_ffn_dim));
    CHECK(qp_gguf_set_u32(w, "clip.audio.block_count", (uint32_t)a->encoder_layers));
    CHECK(qp_gguf_set_u32(w, "clip.audio.attention.head_count", (uint32_t)a->encoder_attention_heads));
    CHECK(qp_gguf_set_u32(w, "clip.audio.num_mel_bins", (uint32_t)a->num_mel_bins));
    CHECK(qp_gguf_set_f32(w, "clip.audio.attention.layer_norm_epsilon", (float)a->layer_norm_eps));
    /* What a runtime needs beyond llama.cpp's keys. */
    CHECK(qp_gguf_set_u32(w, "qwen3omni.vision.in_channels", (uint32_t)v->in_channels));
    CHECK(qp_gguf_set_u32(w, "qwen3omni.vision.temporal_patch_size", (uint32_t)v->temporal_patch_size));
    CHECK(qp_gguf_set_u32(w, "qwen3omni.vision.num_position_embeddings", (uint32_t)v->num_position_embeddings));
    CHECK(qp_gguf_set_u32(w, "qwen3omni.vision.out_hidden_size", (uint32_t)v->out_hidden_size));
    CHECK(qp_gguf_set_f32(w, "qwen3omni.vision.rope.freq_base", (float)v->rope_theta));
    CHECK(qp_gguf_set_str(w, "qwen3omni.vision.hidden_act", v->hidden_act));
    CHECK(set_i32_list(w, "qwen3omni.vision.deepstack_visual_indexes", v->deepstack_visual_indexes, v->n_deepstack,
                       0));
    CHECK(qp_gguf_set_u32(w, "qwen3omni.audio.max_source_positions", (uint32_t)a->max_source_positions));
    CHECK(qp_gguf_set_u32(w, "qwen3omni.audio.n_window", (uint32_t)a->n_window));
    CHECK(qp_gguf_set_u32(w, "qwen3omni.audio.n_window_infer", (uint32_t)a->n_window_infer));
    CHECK(qp_gguf_set_u32(w, "qwen3omni.audio.conv_chunksize", (uint32_t)a->conv_chunksize));
    CHECK(qp_gguf_set_u32(w, "qwen3omni.audio.downsample_hidden_size", (uint32_t)a->downsample_hidden_size));
    CHECK(qp_gguf_set_u32(w, "qwen3omni.audio.output_dim", (uint32_t)a->output_dim));
    CHECK(qp_gguf_set_str(w, "qwen3omni.audio.activation_function", a->activation_function));
    CHECK(qp_gguf_set_bool(w, "qwen3omni.audio.scale_embedding", a->scale_embedding));
    for (int i = 0; i < job->n_meta_ints[QP_OMNI_FILE_MMPROJ]; i++)
        CHECK(qp_gguf_set_u32(w, job->meta_ints[QP_OMNI_FILE_MMPROJ][i].key,
                              (uint32_t)job->meta_ints[QP_OMNI_FILE_MMPROJ][i].value));
    CHECK(qp_gguf_set_str(w, "qpack.omni.mmproj_type", file_type_name_of(job->mmproj_type)));
    return QP_OK;
fail:
    if (err && err->status == QP_OK)
        qp_err_set(err, s, NULL, "could not add mmproj metadata");
    return s;
}

/* The hyper-parameters of one Qwen3-style stack under `p`. */
static qp_status stack_meta(qp_gguf_writer *w, const char *p, const qp_hf_config *c)
{
    char k[160];
    qp_status s;
#define KEY(suffix) (snprintf(k, sizeof k, "%s." suffix, p), k)
    if ((s = qp_gguf_set_u32(w, KEY("block_count"), (uint32_t)c->num_hidden_layers)) ||
        (s = qp_gguf_set_u32(w, KEY("context_length"), (uint32_t)c->max_position_embeddings)) ||
        (s = qp_gguf_set_u32(w, KEY("embedding_length"), (uint32_t)c->hidden_size)) ||
        (s = qp_gguf_set_u32(w, KEY("feed_forward_length"), (uint32_t)c->intermediate_size)) ||
        (s = qp_gguf_set_u32(w, KEY("vocab_size"), (uint32_t)c->vocab_size)) ||
        (s = qp_gguf_set_u32(w, KEY("attention.head_count"), (uint32_t)c->num_attention_heads)) ||
        (s = qp_gguf_set_u32(w, KEY("attention.head_count_kv"), (uint32_t)c->num_key_value_heads)) ||
        (s = qp_gguf_set_u32(w, KEY("attention.key_length"), (uint32_t)c->head_dim)) ||
        (s = qp_gguf_set_u32(w, KEY("attention.value_length"), (uint32_t)c->head_dim)) ||
        (s = qp_gguf_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), (float)c->rms_norm_eps)) ||
        (s = qp_gguf_set_f32(w, KEY("rope.freq_base"), (float)c->rope_theta)))
        return s;
    if (c->num_experts > 0 &&
        ((s = qp_gguf_set_u32(w, KEY("expert_count"), (uint32_t)c->num_experts)) ||
         (s = qp_gguf_set_u32(w, KEY("expert_used_count"), (uint32_t)c->num_experts_per_tok)) ||
         (s = qp_gguf_set_u32(w, KEY("expert_feed_forward_length"), (uint32_t)c->moe_intermediate_size)) ||
         (s = qp_gguf_set_bool(w, KEY("expert_weights_norm"), c->norm_topk_prob)) ||
         (s = qp_gguf_set_u32(w, KEY("decoder_sparse_step"), (uint32_t)c->decoder_sparse_step))))
        return s;
    if (c->n_mlp_only_layers > 0 &&
        (s = set_i32_list(w, KEY("mlp_only_layers"), c->mlp_only_layers,
                          c->n_mlp_only_layers < QP_OMNI_MAX_LIST ? c->n_mlp_only_layers : QP_OMNI_MAX_LIST, 0)))
        return s;
    return QP_OK;
#undef KEY
}

static qp_status talker_meta(qp_gguf_writer *w, const omni_meta_ctx *m, qp_err *err)
{
    const qp_omni_job *job = m->job;
    const qp_omni_config *c = &job->cfg;
    const qp_omni_code2wav *cw = &c->code2wav;
    qp_status s = QP_OK;
    char name[300];
    snprintf(name, sizeof name, "%s", job->dir);
    size_t len = strlen(name);
    while (len > 1 && name[len - 1] == '/')
        name[--len] = '\0';
    CHECK(qp_gguf_set_str(w, "general.architecture", TALKER_ARCH));
    CHECK(qp_gguf_set_str(w, "general.type", "model"));
    CHECK(qp_gguf_set_str(w, "general.name", base_name(name)));
    CHECK(qp_gguf_set_u32(w, "general.file_type", job->preset->file_type));
    CHECK(qp_gguf_set_u32(w, "general.quantization_version", 2));
    CHECK(stack_meta(w, TALKER_ARCH, &c->talker));
    CHECK(qp_gguf_set_u32(w, TALKER_ARCH ".expert_shared_feed_forward_length", (uint32_t)c->talker_shared_expert_ffn));
    CHECK(set_i32_list(w, TALKER_ARCH ".rope.dimension_sections", c->talker_mrope_section, c->talker_n_mrope, 4));
    CHECK(qp_gguf_set_bool(w, TALKER_ARCH ".rope.mrope_interleaved", c->talker_mrope_interleaved));
    CHECK(qp_gguf_set_u32(w, TALKER_ARCH ".num_code_groups", (uint32_t)c->num_code_groups));
    if (c->enable_audio_output >= 0)
        CHECK(qp_gguf_set_bool(w, TALKER_ARCH ".enable_audio_output", c->enable_audio_output));
    CHECK(stack_meta(w, TALKER_ARCH ".code_predictor", &c->code_predictor));
    static const char *const CW = TALKER_ARCH ".code2wav.";
    char k[160];
#define CWK(suffix) (snprintf(k, sizeof k, "%s%s", CW, suffix), k)
    CHECK(qp_gguf_set_u32(w, CWK("codebook_size"), (uint32_t)cw->codebook_size));
    CHECK(qp_gguf_set_u32(w, CWK("num_quantizers"), (uint32_t)cw->num_quantizers));
    CHECK(qp_gguf_set_u32(w, CWK("embedding_length"), (uint32_t)cw->hidden_size));
    CHECK(qp_gguf_set_u32(w, CWK("context_length"), (uint32_t)cw->max_position_embeddings));
    CHECK(qp_gguf_set_u32(w, CWK("block_count"), (uint32_t)cw->num_hidden_layers));
    CHECK(qp_gguf_set_u32(w, CWK("feed_forward_length"), (uint32_t)cw->intermediate_size));
    CHECK(qp_gguf_set_u32(w, CWK("attention.head_count"), (uint32_t)cw->num_attention_heads));
    CHECK(qp_gguf_set_u32(w, CWK("attention.head_count_kv"), (uint32_t)cw->num_key_value_heads));
    CHECK(qp_gguf_set_u32(w, CWK("attention.key_length"), (uint32_t)cw->head_dim));
    CHECK(qp_gguf_set_u32(w, CWK("attention.sliding_window"), (uint32_t)cw->sliding_window));
    CHECK(qp_gguf_set_f32(w, CWK("attention.layer_norm_rms_epsilon"), (float)cw->rms_norm_eps));
    CHECK(qp_gguf_set_f32(w, CWK("rope.freq_base"), (float)cw->rope_theta));
    CHECK(qp_gguf_set_f32(w, CWK("layer_scale_initial_scale"), (float)cw->layer_scale_initial_scale));
    CHECK(qp_gguf_set_str(w, CWK("hidden_act"), cw->hidden_act));
    CHECK(qp_gguf_set_u32(w, CWK("decoder_dim"), (uint32_t)cw->decoder_dim));
    CHECK(set_i32_list(w, CWK("upsample_rates"), cw->upsample_rates, cw->n_upsample_rates, 0));
    CHECK(set_i32_list(w, CWK("upsampling_ratios"), cw->upsampling_ratios, cw->n_upsampling_ratios, 0));
#undef CWK
    for (int i = 0; i < job->n_meta_ints[QP_OMNI_FILE_TALKER]; i++)
        CHECK(qp_gguf_set_u32(w, job->meta_ints[QP_OMNI_FILE_TALKER][i].key,
                              (uint32_t)job->meta_ints[QP_OMNI_FILE_TALKER][i].value));
    return QP_OK;
fail:
    if (err && err->status == QP_OK)
        qp_err_set(err, s, NULL, "could not add talker metadata");
    return s;
}

qp_status omni_write_meta(void *ctx, void *gguf_writer, qp_err *err)
{
    const omni_meta_ctx *m = ctx;
    qp_gguf_writer *w = gguf_writer;
    qp_status s = QP_OK;
    if (m->file == QP_OMNI_FILE_THINKER)
        s = thinker_meta(w, m);
    else if (m->file == QP_OMNI_FILE_MMPROJ)
        s = mmproj_meta(w, m, err);
    else
        s = talker_meta(w, m, err);
    if (s == QP_OK && m->file != QP_OMNI_FILE_THINKER)
        s = provenance(w, m->job, err);
    if (s == QP_OK)
        s = manifest(w, m);
    if (s != QP_OK && err && err->status == QP_OK)
        qp_err_set(err, s, NULL, "could not add the %s file's metadata", qp_omni_file_role(m->file));
    return s;
}
