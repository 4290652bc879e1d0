/* recipe.h - which block type each tensor gets under a preset.
 *
 * Presets mean what llama.cpp's presets of the same name mean (its
 * llama_tensor_get_type rules at commit 34af94cd): users expect Q4_K_M to be
 * the same mix. The rules work on GGUF tensor names, so converting from a HF
 * checkpoint and requantizing a GGUF choose alike. Tensors must be offered in
 * file order (layer order): some rules count attn_v / ffn_down tensors. */
#ifndef QP_RECIPE_H
#define QP_RECIPE_H

#include <stdint.h>

typedef struct {
    const char *name;       /* "Q4_K_M" */
    uint32_t file_type;     /* llama.cpp's general.file_type (LLAMA_FTYPE_*) */
    uint32_t default_type;  /* qp_ggml_type of most matrices */
    const char *summary;
} qp_preset;

/* Case-insensitive lookup of a preset or plain type name ("q4_k_m", "bf16",
 * "Q8_0", "F16"); NULL if unknown. */
const qp_preset *qp_preset_find(const char *name);
/* All presets, for help texts and docs; returns the count. */
int qp_preset_list(const qp_preset **out);

typedef struct qp_recipe qp_recipe;

typedef struct {
    const qp_preset *preset;
    int pure;               /* every quantizable matrix gets default_type */
    int output_type;        /* -1: preset decides */
    int token_embd_type;    /* -1: preset decides */
    int has_imatrix;
    int64_t n_layer;
    int64_t n_expert;       /* 0 for dense */
    int64_t n_head, n_head_kv;
    int has_output;         /* false when embeddings are tied */
    int64_t n_attn_v, n_ffn_down; /* counts of such tensors in the model */
} qp_recipe_params;

/* Returns NULL on allocation failure. */
qp_recipe *qp_recipe_new(const qp_recipe_params *params);
void qp_recipe_free(qp_recipe *r);

/* Override: tensors whose name matches the PCRE2 pattern get `type`
 * (first matching override wins). Returns 0, or -1 for a bad pattern. */
int qp_recipe_add_override(qp_recipe *r, const char *pattern, uint32_t type);

/* The type for the next tensor. `src_type` is kept for tensors that are not
 * quantized (vectors, router). `*fallback_from` is set to the type that was
 * wanted when the row length forced another type (else -1). */
uint32_t qp_recipe_choose(qp_recipe *r, const char *name, uint32_t n_dims, const int64_t *ne, uint32_t src_type,
                          int *fallback_from);

/* `type` when row_len is a multiple of its block, else the type the
 * presets fall back to for such rows (llama.cpp's table; F16 at worst). */
uint32_t qp_recipe_fallback_type(uint32_t type, int64_t row_len);

#endif
