/* omni_internal.h - what the convert/omni*.c files share (not public). */
#ifndef QP_OMNI_INTERNAL_H
#define QP_OMNI_INTERNAL_H

#include "convert/omni.h"
#include "format/hf_vocab.h"
#include "quant/recipe.h"

/* How a file's matrices are typed (see omni_types.c). */
typedef enum {
    OMNI_CL_VECTOR = 0, /* 1-D: norms, biases, scales - always F32 */
    OMNI_CL_ROUTER,     /* MoE router, shared-expert gate - F32 like llama.cpp's ffn_gate_inp */
    OMNI_CL_LINEAR,     /* a linear layer's weight: the preset (talker) / --mmproj-type */
    OMNI_CL_EMBED,      /* token/codec embedding: the preset's token_embd rule */
    OMNI_CL_HEAD,       /* output head: the preset's output.weight rule */
    OMNI_CL_CONV,       /* convolution kernels (3-D and more) - F16, or F32/BF16 in float files */
    OMNI_CL_PATCH,      /* vision patch embedding halves: llama.cpp's F16-or-F32 rule */
    OMNI_CL_FLOAT,      /* other matrices kept in float (code2wav, position tables) */
} omni_class;

struct qp_omni_job {
    char *dir;
    qp_omni_config cfg;
    qp_omni_notes notes;
    qp_st_model *st;
    qp_plan *plans[QP_OMNI_FILE_COUNT];
    char **specs[QP_OMNI_FILE_COUNT];     /* per plan tensor: how it was made */
    omni_class *classes[QP_OMNI_FILE_COUNT];
    uint32_t *types[QP_OMNI_FILE_COUNT];
    int *fallback[QP_OMNI_FILE_COUNT];
    int *owner;                           /* per source tensor (qp_st_at order): file, or -1 */
    const qp_preset *preset;
    uint32_t mmproj_type;
    char recipe_desc[64];
    /* integer metadata after token-id resolution, per file (omni_tokens.c) */
    int n_meta_ints[QP_OMNI_FILE_COUNT];
    qp_omni_int meta_ints[QP_OMNI_FILE_COUNT][QP_OMNI_MAX_IDS];
    int64_t im_end_id;                    /* thinker BOS/EOS (llama.cpp's choice), -1 if absent */
    float image_mean[3], image_std[3];
};

/* omni_layout.c: build the three plans, their specs and the owner table;
 * fails naming any source tensor that is not recognised or not placed. */
qp_status omni_layout(qp_omni_job *job, qp_err *err);

/* omni_types.c: choose every tensor's type. */
qp_status omni_choose_types(qp_omni_job *job, const qp_omni_options *opt, qp_err *err);

/* omni_meta.c: the key/values of each file (extra_meta callbacks). */
typedef struct {
    const qp_omni_job *job;
    qp_omni_file file;
    const char *paths[QP_OMNI_FILE_COUNT];
} omni_meta_ctx;
qp_status omni_write_meta(void *ctx, void *gguf_writer, qp_err *err);

/* omni_tokens.c: resolve the config's token ids against the tokenizer (by
 * string where the string is known), check codec ids against the talker's
 * vocabulary, and read the image normalisation; fills meta_ints, im_end_id,
 * image_mean/std and notes. */
qp_status omni_resolve_ids(qp_omni_job *job, qp_err *err);

#endif
