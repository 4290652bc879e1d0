/* recipe.c - llama.cpp-compatible preset mixes (see recipe.h). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "quant/recipe.h"

#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/qp_ggml_types.h"

/* llama.cpp's LLAMA_FTYPE_* values, frozen by general.file_type. */
enum {
    FT_F32 = 0, FT_F16 = 1, FT_Q4_0 = 2, FT_Q4_1 = 3, FT_Q8_0 = 7, FT_Q5_0 = 8, FT_Q5_1 = 9,
    FT_Q2_K = 10, FT_Q3_K_S = 11, FT_Q3_K_M = 12, FT_Q3_K_L = 13, FT_Q4_K_S = 14, FT_Q4_K_M = 15,
    FT_Q5_K_S = 16, FT_Q5_K_M = 17, FT_Q6_K = 18, FT_IQ4_NL = 25, FT_IQ4_XS = 30, FT_BF16 = 32,
};

static const qp_preset PRESETS[] = {
    {"F32", FT_F32, QP_GGML_F32, "32-bit float, lossless"},
    {"F16", FT_F16, QP_GGML_F16, "16-bit float"},
    {"BF16", FT_BF16, QP_GGML_BF16, "bfloat16, lossless for bf16 checkpoints"},
    {"Q8_0", FT_Q8_0, QP_GGML_Q8_0, "8.5 bpw, near lossless"},
    {"Q6_K", FT_Q6_K, QP_GGML_Q6_K, "6.56 bpw"},
    {"Q5_K_M", FT_Q5_K_M, QP_GGML_Q5_K, "Q5_K, Q6_K for some attn_v/ffn_down"},
    {"Q5_K_S", FT_Q5_K_S, QP_GGML_Q5_K, "Q5_K"},
    {"Q4_K_M", FT_Q4_K_M, QP_GGML_Q4_K, "Q4_K, Q6_K for some attn_v/ffn_down (recommended)"},
    {"Q4_K_S", FT_Q4_K_S, QP_GGML_Q4_K, "Q4_K, Q5_K for the first attn_v/ffn_down"},
    {"IQ4_XS", FT_IQ4_XS, QP_GGML_IQ4_XS, "4.25 bpw non-linear"},
    {"IQ4_NL", FT_IQ4_NL, QP_GGML_IQ4_NL, "4.5 bpw non-linear, 32-blocks"},
    {"Q3_K_L", FT_Q3_K_L, QP_GGML_Q3_K, "Q3_K, Q5_K attn_v/ffn_down/attn_output"},
    {"Q3_K_M", FT_Q3_K_M, QP_GGML_Q3_K, "Q3_K, Q4_K/Q5_K for attn_v/ffn_down/attn_output"},
    {"Q3_K_S", FT_Q3_K_S, QP_GGML_Q3_K, "Q3_K"},
    {"Q2_K", FT_Q2_K, QP_GGML_Q2_K, "Q2_K, Q3_K/Q4_K for attn_v/ffn_down/attn_output"},
    {"Q5_1", FT_Q5_1, QP_GGML_Q5_1, "legacy 6 bpw"},
    {"Q5_0", FT_Q5_0, QP_GGML_Q5_0, "legacy 5.5 bpw"},
    {"Q4_1", FT_Q4_1, QP_GGML_Q4_1, "legacy 5 bpw"},
    {"Q4_0", FT_Q4_0, QP_GGML_Q4_0, "legacy 4.5 bpw"},
};

const qp_preset *qp_preset_find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < sizeof PRESETS / sizeof PRESETS[0]; i++)
        if (strcasecmp(PRESETS[i].name, name) == 0)
            return &PRESETS[i];
    return NULL;
}

int qp_preset_list(const qp_preset **out)
{
    *out = PRESETS;
    return (int)(sizeof PRESETS / sizeof PRESETS[0]);
}

typedef struct {
    pcre2_code *re;
    uint32_t type;
} override_rule;

struct qp_recipe {
    qp_recipe_params p;
    int64_t i_attn_v, i_ffn_down, i_ffn_gate, i_ffn_up;
    override_rule *overrides;
    int n_overrides;
};

qp_recipe *qp_recipe_new(const qp_recipe_params *params)
{
    qp_recipe *r = calloc(1, sizeof *r);
    if (r)
        r->p = *params;
    return r;
}

void qp_recipe_free(qp_recipe *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n_overrides; i++)
        pcre2_code_free(r->overrides[i].re);
    free(r->overrides);
    free(r);
}

int qp_recipe_add_override(qp_recipe *r, const char *pattern, uint32_t type)
{
    int errcode;
    PCRE2_SIZE erroff;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, 0, &errcode, &erroff, NULL);
    if (!re)
        return -1;
    override_rule *o = realloc(r->overrides, (size_t)(r->n_overrides + 1) * sizeof *o);
    if (!o) {
        pcre2_code_free(re);
        return -1;
    }
    r->overrides = o;
    o[r->n_overrides].re = re;
    o[r->n_overrides].type = type;
    r->n_overrides++;
    return 0;
}

static int override_for(const qp_recipe *r, const char *name, uint32_t *type)
{
    for (int i = 0; i < r->n_overrides; i++) {
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(r->overrides[i].re, NULL);
        if (!md)
            return 0;
        int rc = pcre2_match(r->overrides[i].re, (PCRE2_SPTR)name, strlen(name), 0, 0, md, NULL);
        pcre2_match_data_free(md);
        if (rc >= 0) {
            *type = r->overrides[i].type;
            return 1;
        }
    }
    return 0;
}

/* llama.cpp: more bits for the first and last eighth of the layers and
 * every third layer in between. */
static int use_more_bits(int64_t i, int64_t n)
{
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

static int64_t layer_of(const char *name, int64_t fallback)
{
    int l;
    if (sscanf(name, "blk.%d.", &l) == 1)
        return l;
    return fallback;
}

/* The block type a row length that is not a multiple of the block size
 * falls back to (llama.cpp's table); F16 when even that does not fit. */
static uint32_t fallback_type(uint32_t t, int64_t row_len)
{
    uint32_t f;
    switch (t) {
    case QP_GGML_Q2_K:
    case QP_GGML_Q3_K:
    case QP_GGML_IQ4_XS: f = QP_GGML_IQ4_NL; break;
    case QP_GGML_Q4_K: f = QP_GGML_Q5_0; break;
    case QP_GGML_Q5_K: f = QP_GGML_Q5_1; break;
    case QP_GGML_Q6_K: f = QP_GGML_Q8_0; break;
    default: f = QP_GGML_F16; break;
    }
    if (row_len % qp_ggml_type_get(f)->block_elems != 0)
        f = QP_GGML_F16;
    return f;
}

uint32_t qp_recipe_fallback_type(uint32_t type, int64_t row_len)
{
    const qp_ggml_type_info *ti = qp_ggml_type_get(type);
    return ti && row_len % ti->block_elems == 0 ? type : fallback_type(type, row_len);
}

static int is_quantized(uint32_t t)
{
    return t != QP_GGML_F32 && t != QP_GGML_F16 && t != QP_GGML_BF16;
}

uint32_t qp_recipe_choose(qp_recipe *r, const char *name, uint32_t n_dims, const int64_t *ne, uint32_t src_type,
                          int *fallback_from)
{
    const qp_recipe_params *p = &r->p;
    uint32_t ft = p->preset->file_type;
    uint32_t t = p->preset->default_type;
    *fallback_from = -1;
    /* Not quantized: vectors (norms) and the MoE router keep their type. */
    if (n_dims < 2 || strstr(name, "ffn_gate_inp.weight"))
        return src_type;
    int is_output = strcmp(name, "output.weight") == 0 || (!p->has_output && strcmp(name, "token_embd.weight") == 0);
    int64_t n_gqa = p->n_head_kv > 0 ? p->n_head / p->n_head_kv : 1;
    int64_t n_expert = p->n_expert;
    uint32_t ov;
    if (override_for(r, name, &ov)) {
        t = ov;
    } else if (is_output && p->output_type >= 0) {
        t = (uint32_t)p->output_type;
    } else if (strcmp(name, "token_embd.weight") == 0 && p->token_embd_type >= 0) {
        t = (uint32_t)p->token_embd_type;
    } else if (!is_quantized(t) || p->pure) {
        /* F32/F16/BF16 presets and --pure: every matrix takes the preset's type. */
    } else if (is_output) {
        if (ne[0] % qp_ggml_type_get(t)->block_elems != 0)
            t = QP_GGML_Q8_0;
        else if (t != QP_GGML_Q8_0)
            t = QP_GGML_Q6_K;
    } else if (strstr(name, "attn_v.weight")) {
        int64_t i = r->i_attn_v++, n = p->n_attn_v;
        if (ft == FT_Q2_K)
            t = n_gqa >= 4 ? QP_GGML_Q4_K : QP_GGML_Q3_K;
        else if (ft == FT_Q3_K_M)
            t = i < 2 ? QP_GGML_Q5_K : QP_GGML_Q4_K;
        else if (ft == FT_Q3_K_L)
            t = QP_GGML_Q5_K;
        else if ((ft == FT_IQ4_NL || ft == FT_IQ4_XS) && n_gqa >= 4)
            t = QP_GGML_Q5_K;
        else if ((ft == FT_Q4_K_M || ft == FT_Q5_K_M) && use_more_bits(i, n))
            t = QP_GGML_Q6_K;
        else if (ft == FT_Q4_K_S && i < 4)
            t = QP_GGML_Q5_K;
        if (n_expert == 8)
            t = QP_GGML_Q8_0; /* llama.cpp: cheap for 8-expert models */
    } else if (strstr(name, "attn_k.weight")) {
        if (n_expert == 8)
            t = QP_GGML_Q8_0;
    } else if (strstr(name, "ffn_down")) {
        int64_t i = r->i_ffn_down++, n = p->n_ffn_down;
        if (n_expert > 1) { /* layer from the name, as llama.cpp does for MoE */
            i = layer_of(name, i);
            n = p->n_layer;
        }
        if (ft == FT_Q2_K)
            t = QP_GGML_Q3_K;
        else if (ft == FT_Q3_K_M)
            t = i < n / 16 ? QP_GGML_Q5_K : QP_GGML_Q4_K;
        else if (ft == FT_Q3_K_L)
            t = QP_GGML_Q5_K;
        else if (ft == FT_Q4_K_M) {
            if (use_more_bits(i, n))
                t = QP_GGML_Q6_K;
        } else if (i < n / 8 && (ft == FT_IQ4_NL || ft == FT_IQ4_XS) && !p->has_imatrix)
            t = QP_GGML_Q5_K;
        else if (ft == FT_Q5_K_M && use_more_bits(i, n))
            t = QP_GGML_Q6_K;
        else if (ft == FT_Q4_K_S && i < n / 8)
            t = QP_GGML_Q5_K;
        else if ((ft == FT_Q4_0 || ft == FT_Q5_0) && p->has_imatrix && i < n / 8)
            t = ft == FT_Q4_0 ? QP_GGML_Q4_1 : QP_GGML_Q5_1;
    } else if (strstr(name, "attn_output.weight")) {
        if (n_expert == 8) {
            if (ft == FT_Q2_K || ft == FT_Q3_K_S || ft == FT_Q3_K_M || ft == FT_IQ4_NL || ft == FT_Q4_K_S ||
                ft == FT_Q4_K_M || ft == FT_IQ4_XS)
                t = QP_GGML_Q5_K;
        } else {
            if (ft == FT_Q2_K)
                t = QP_GGML_Q3_K;
            else if (ft == FT_Q3_K_M)
                t = QP_GGML_Q4_K;
            else if (ft == FT_Q3_K_L)
                t = QP_GGML_Q5_K;
        }
    } else if (strstr(name, "ffn_gate")) {
        r->i_ffn_gate++;
    } else if (strstr(name, "ffn_up")) {
        r->i_ffn_up++;
    }
    const qp_ggml_type_info *ti = qp_ggml_type_get(t);
    if (ti && ne[0] % ti->block_elems != 0) {
        *fallback_from = (int)t;
        t = fallback_type(t, ne[0]);
    }
    return t;
}
