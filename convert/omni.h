/* omni.h - Qwen3-Omni (Qwen3OmniMoeForConditionalGeneration): one Hugging
 * Face checkpoint becomes three GGUF files, and every source tensor lands in
 * exactly one of them (docs/omni.md):
 *
 *   STEM.gguf         the thinker's text model, arch qwen3vlmoe, with the keys
 *                     llama.cpp's converter writes (llama.cpp loads it);
 *   mmproj-STEM.gguf  audio and vision encoders with their projectors and
 *                     deepstack mergers, in llama.cpp's clip/mmproj names;
 *   talker-STEM.gguf  the talker (MoE + shared expert), its code predictor
 *                     and code2wav, with every hyper-parameter as metadata.
 *
 * Each file carries a `qpack.omni.*` manifest naming its siblings and, per
 * tensor, the source tensors it was made from. A source tensor the
 * converter does not recognise is an error that names it. */
#ifndef QP_OMNI_H
#define QP_OMNI_H

#include <stddef.h>
#include <stdint.h>

#include "common/qp_error.h"
#include "common/qp_progress.h"
#include "convert/convert.h"
#include "convert/plan.h"
#include "format/hf_config.h"
#include "format/safetensors.h"

#define QP_OMNI_MAX_LIST 64
#define QP_OMNI_MAX_IDS 96
#define QP_OMNI_MAX_WARNINGS 48

typedef struct {
    int64_t num_mel_bins, encoder_layers, encoder_attention_heads, encoder_ffn_dim, d_model, output_dim;
    int64_t max_source_positions, n_window, n_window_infer, conv_chunksize, downsample_hidden_size;
    int scale_embedding;
    double layer_norm_eps;          /* not in the config: torch's LayerNorm default 1e-5 */
    char activation_function[32];
} qp_omni_audio;

typedef struct {
    int64_t depth, hidden_size, intermediate_size, num_heads, in_channels, patch_size;
    int64_t spatial_merge_size, temporal_patch_size, out_hidden_size, num_position_embeddings;
    int64_t n_deepstack, deepstack_visual_indexes[QP_OMNI_MAX_LIST];
    double rope_theta;
    char hidden_act[32];
} qp_omni_vision;

typedef struct {
    int64_t codebook_size, hidden_size, max_position_embeddings, num_attention_heads, num_key_value_heads;
    int64_t head_dim, sliding_window, intermediate_size, num_hidden_layers, num_quantizers, decoder_dim;
    double rope_theta, layer_scale_initial_scale, rms_norm_eps;
    int64_t n_upsample_rates, upsample_rates[QP_OMNI_MAX_LIST];
    int64_t n_upsampling_ratios, upsampling_ratios[QP_OMNI_MAX_LIST];
    char hidden_act[32];
} qp_omni_code2wav;

/* An integer hyper-parameter or token id outside the sub-model configs,
 * e.g. "im_end_token_id", "thinker.audio_token_id", "talker.codec_bos_id",
 * "talker.speaker_id.chelsie". */
typedef struct {
    char key[80];
    int64_t value;
} qp_omni_int;

typedef struct {
    /* thinker_config.text_config, parsed by format/hf_config as a Qwen3-MoE
     * text model; arch is QP_ARCH_QWEN3_OMNI (GGUF arch qwen3vlmoe). */
    qp_hf_config thinker;
    int64_t n_mrope, mrope_section[4];  /* rope_parameters / rope_scaling.mrope_section */
    int mrope_interleaved;
    qp_omni_audio audio;                /* thinker_config.audio_config */
    qp_omni_vision vision;              /* thinker_config.vision_config */
    qp_hf_config talker;                /* talker_config.text_config (Qwen3-MoE layout) */
    int64_t talker_shared_expert_ffn;   /* shared_expert_intermediate_size */
    int64_t talker_n_mrope, talker_mrope_section[4];
    int talker_mrope_interleaved;
    qp_hf_config code_predictor;        /* talker_config.code_predictor_config (dense Qwen3) */
    int64_t num_code_groups;
    qp_omni_code2wav code2wav;          /* code2wav_config */
    int enable_audio_output;            /* -1 when absent */
    int n_ints;
    qp_omni_int ints[QP_OMNI_MAX_IDS];
} qp_omni_config;

/* Notes the converter wants the user to see (config token ids outside the
 * vocabulary, config keys it does not understand, ...). Never errors. */
typedef struct {
    int n;
    int dropped;                        /* notes beyond the array */
    char msg[QP_OMNI_MAX_WARNINGS][240];
} qp_omni_notes;

void qp_omni_note(qp_omni_notes *notes, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* 1 when dir/config.json names Qwen3OmniMoeForConditionalGeneration. */
int qp_omni_is_omni_dir(const char *dir);

/* Parse dir/config.json with all nested configs (transformers 4 and 5
 * spellings). Unknown keys become notes. */
qp_status qp_omni_config_load(const char *dir, qp_omni_config *cfg, qp_omni_notes *notes, qp_err *err);
qp_status qp_omni_config_parse(const char *json, size_t len, const char *path, qp_omni_config *cfg,
                               qp_omni_notes *notes, qp_err *err);
/* An integer from cfg->ints by key; 0 when absent. */
int qp_omni_config_int(const qp_omni_config *cfg, const char *key, int64_t *out);

/* For a runtime reading an Omni directory directly: the thinker's text model
 * as convert/plan sees a Qwen3-MoE. *cfg (caller-owned; must outlive *plan)
 * gets thinker_config.text_config with arch QP_ARCH_QWEN3_OMNI; *plan reads
 * thinker.model.* / thinker.lm_head.* under llama.cpp's names (as in
 * STEM.gguf); the other components are left alone. mrope (may be NULL)
 * gets the M-RoPE sections padded to 4. Free with qp_plan_free and
 * qp_st_close. */
qp_status qp_omni_open_thinker(const char *dir, qp_hf_config *cfg, int64_t mrope[4], qp_st_model **st,
                               qp_plan **plan, qp_err *err);

/* ------------------------------------------------------------ components */

typedef enum {
    QP_OMNI_THINKER_TEXT = 0,
    QP_OMNI_AUDIO,
    QP_OMNI_VISION,
    QP_OMNI_TALKER,       /* talker text model, projections, code predictor */
    QP_OMNI_CODE2WAV,
    QP_OMNI_COMPONENT_COUNT
} qp_omni_component;

const char *qp_omni_component_name(qp_omni_component c); /* "thinker_text", "audio", ... */

/* Which component a source tensor belongs to, by its name; -1 when none. */
int qp_omni_component_of(const char *hf_name);

typedef struct {
    uint64_t params[QP_OMNI_COMPONENT_COUNT];
    uint64_t tensors[QP_OMNI_COMPONENT_COUNT];
    uint64_t bytes[QP_OMNI_COMPONENT_COUNT];
    uint64_t total_params;
} qp_omni_params;

/* Parameters per component of an opened checkpoint; a tensor under no
 * component is an error naming it. */
qp_status qp_omni_count_params(const qp_st_model *st, qp_omni_params *out, qp_err *err);

/* ------------------------------------------------------------ the three files */

typedef enum { QP_OMNI_FILE_THINKER = 0, QP_OMNI_FILE_MMPROJ, QP_OMNI_FILE_TALKER, QP_OMNI_FILE_COUNT } qp_omni_file;

const char *qp_omni_file_role(qp_omni_file f); /* "thinker", "mmproj", "talker" */

/* The three output paths for `-o STEM.gguf`: STEM.gguf, mmproj-STEM.gguf and
 * talker-STEM.gguf in the same directory. QP_ERR_USAGE when out_path does
 * not end in ".gguf" or a path does not fit. */
qp_status qp_omni_output_paths(const char *out_path, char paths[QP_OMNI_FILE_COUNT][4096], qp_err *err);

typedef struct {
    const char *preset;              /* --type: thinker and talker (NULL: BF16) */
    int pure;
    int output_type, token_embd_type; /* -1: preset decides (thinker only) */
    int n_overrides;                 /* --tensor-type, matched against the written names of all files */
    const char *const *override_patterns;
    const uint32_t *override_types;
    uint32_t mmproj_type;            /* F16 (default), F32, BF16 or Q8_0 */
} qp_omni_options;

typedef struct qp_omni_job qp_omni_job;

/* Open the checkpoint, parse the configs, lay out the three files and choose
 * every tensor's type. Fails (naming it) on any source tensor it does not
 * place. */
qp_status qp_omni_job_open(const char *hf_dir, const qp_omni_options *opt, qp_omni_job **out, qp_err *err);
void qp_omni_job_free(qp_omni_job *job);

const qp_omni_config *qp_omni_job_config(const qp_omni_job *job);
const qp_omni_notes *qp_omni_job_notes(const qp_omni_job *job);
const qp_st_model *qp_omni_job_source(const qp_omni_job *job);
const qp_plan *qp_omni_job_plan(const qp_omni_job *job, qp_omni_file f);
uint32_t qp_omni_job_type(const qp_omni_job *job, qp_omni_file f, int64_t i);
int qp_omni_job_fallback(const qp_omni_job *job, qp_omni_file f, int64_t i); /* -1 or the wanted type */
/* How plan tensor i of file f was made from the source tensors:
 * "copy NAME", "stack PREFIX{a..b}SUFFIX", "split_t0 NAME", "reshape NAME",
 * "generated WHAT", ... (docs/omni.md). */
const char *qp_omni_job_source_spec(const qp_omni_job *job, qp_omni_file f, int64_t i);

typedef struct {
    char paths[QP_OMNI_FILE_COUNT][4096];
    qp_convert_stats stats[QP_OMNI_FILE_COUNT];
} qp_omni_result;

/* Write the three files (each as FILE.tmp, renamed when complete).
 * progress counts source bytes over all three files. */
qp_status qp_omni_job_write(const qp_omni_job *job, const char *out_path, int n_threads, qp_progress progress,
                            qp_omni_result *result, qp_err *err);

#endif
