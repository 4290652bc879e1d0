/* omni_layout.c - where every tensor of a Qwen3-Omni checkpoint goes.
 *
 * The thinker's text model goes through convert/plan (llama.cpp's qwen3vlmoe
 * names). Everything else is matched against the rule tables below: a rule
 * names an HF module pattern ('#' = a decimal index), the parameters it may
 * carry, the output name, the expected shape from the config and how the
 * tensor is typed. A tensor no rule matches is an error naming it; at the
 * end every source tensor must have exactly one owner file. */
#include "convert/omni_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/qp_ggml_types.h"

/* ------------------------------------------------------------ components */

static const char *const COMPONENT_NAMES[QP_OMNI_COMPONENT_COUNT] = {"thinker_text", "audio", "vision", "talker",
                                                                     "code2wav"};

const char *qp_omni_component_name(qp_omni_component c)
{
    return (unsigned)c < QP_OMNI_COMPONENT_COUNT ? COMPONENT_NAMES[c] : "?";
}

int qp_omni_component_of(const char *n)
{
    if (strncmp(n, "thinker.model.", 14) == 0 || strncmp(n, "thinker.lm_head.", 16) == 0)
        return QP_OMNI_THINKER_TEXT;
    if (strncmp(n, "thinker.audio_tower.", 20) == 0)
        return QP_OMNI_AUDIO;
    if (strncmp(n, "thinker.visual.", 15) == 0)
        return QP_OMNI_VISION;
    if (strncmp(n, "talker.", 7) == 0)
        return QP_OMNI_TALKER;
    if (strncmp(n, "code2wav.", 9) == 0)
        return QP_OMNI_CODE2WAV;
    return -1;
}

static qp_status unrecognised(const qp_st_model *st, const qp_st_tensor *t, qp_err *err)
{
    qp_err_set(err, QP_ERR_UNSUPPORTED, qp_st_file_path(st, t->file_index),
               "unrecognised tensor name for Qwen3OmniMoeForConditionalGeneration (nothing is dropped silently: "
               "tell us what it is)");
    qp_err_set_tensor(err, t->name);
    return QP_ERR_UNSUPPORTED;
}

qp_status qp_omni_count_params(const qp_st_model *st, qp_omni_params *out, qp_err *err)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < qp_st_count(st); i++) {
        const qp_st_tensor *t = qp_st_at(st, i);
        int c = qp_omni_component_of(t->name);
        if (c < 0)
            return unrecognised(st, t, err);
        out->params[c] += t->n_elems;
        out->tensors[c]++;
        out->bytes[c] += t->nbytes;
        out->total_params += t->n_elems;
    }
    return QP_OK;
}

/* ------------------------------------------------------------ rules */

enum { OP_COPY, OP_CONV_BIAS2D, OP_PATCH, OP_DEEPSTACK, OP_EXPERT, OP_FUSED };

typedef struct {
    char hf[128];        /* module pattern, '#' = decimal index */
    const char *params;  /* comma-separated parameter names it may carry */
    char gguf[96];       /* output module, "{k}" = capture k; "" = the HF module verbatim */
    int file;
    int op, slot;        /* slot: expert gate/up/down */
    char shape[64];      /* expected shape of the first parameter (HF order); "" = unchecked */
    char bounds[32];     /* per capture, a symbol the index must stay below */
    omni_class cls;
    int moe;             /* talker layers: 1 MoE only, -1 dense only, 0 any */
    int required;        /* the first parameter must exist for every index combination */
    int64_t seen;
} rule;

typedef struct {
    const char *name;
    int64_t v;
} sym;

#define MAX_RULES 160
#define MAX_SYMS 64

typedef struct {
    rule r[MAX_RULES];
    int n;
    sym s[MAX_SYMS];
    int n_sym;
} rulebook;

static void add_sym(rulebook *b, const char *name, int64_t v)
{
    if (b->n_sym < MAX_SYMS)
        b->s[b->n_sym++] = (sym){name, v};
}

static int sym_value(const rulebook *b, const char *name, size_t len, int64_t *v)
{
    if (len == 1 && name[0] == '?')
        return 0;
    char *end;
    long long x = strtoll(name, &end, 10);
    if (end == name + len && len > 0) {
        *v = x;
        return 1;
    }
    for (int i = 0; i < b->n_sym; i++)
        if (strlen(b->s[i].name) == len && strncmp(b->s[i].name, name, len) == 0) {
            *v = b->s[i].v;
            return 1;
        }
    *v = -1; /* an unknown symbol never matches: a bug in the tables */
    return 1;
}

static rule *add_rule(rulebook *b, int file, const char *hf, const char *params, const char *gguf, omni_class cls,
                      const char *shape, const char *bounds)
{
    if (b->n == MAX_RULES)
        return NULL;
    rule *r = &b->r[b->n++];
    memset(r, 0, sizeof *r);
    snprintf(r->hf, sizeof r->hf, "%s", hf);
    r->params = params;
    snprintf(r->gguf, sizeof r->gguf, "%s", gguf ? gguf : "");
    r->file = file;
    r->cls = cls;
    snprintf(r->shape, sizeof r->shape, "%s", shape ? shape : "");
    snprintf(r->bounds, sizeof r->bounds, "%s", bounds ? bounds : "");
    return r;
}

/* The rules of one Qwen3-style decoder stack: hf "P.layers.#", out "G.blk.{0}". */
static void stack_rules(rulebook *b, int file, const char *P, const char *G, const char *h, const char *q,
                        const char *kv, const char *hd, const char *bound, omni_class lin, int with_dense_mlp,
                        const char *f, int qk_norm)
{
    char hf[128], g[96], shp[64];
    static const struct {
        const char *hf, *g;
        int kind; /* 0 norm h, 1 q, 2 kv, 3 o, 4 head-norm */
    } A[] = {
        {"input_layernorm", "attn_norm", 0},       {"post_attention_layernorm", "ffn_norm", 0},
        {"self_attn.q_proj", "attn_q", 1},         {"self_attn.k_proj", "attn_k", 2},
        {"self_attn.v_proj", "attn_v", 2},         {"self_attn.o_proj", "attn_output", 3},
        {"self_attn.q_norm", "attn_q_norm", 4},    {"self_attn.k_norm", "attn_k_norm", 4},
    };
    for (size_t i = 0; i < sizeof A / sizeof A[0]; i++) {
        snprintf(hf, sizeof hf, "%s.layers.#.%s", P, A[i].hf);
        snprintf(g, sizeof g, "%s.blk.{0}.%s", G, A[i].g);
        switch (A[i].kind) {
        case 0: snprintf(shp, sizeof shp, "%s", h); break;
        case 1: snprintf(shp, sizeof shp, "%s,%s", q, h); break;
        case 2: snprintf(shp, sizeof shp, "%s,%s", kv, h); break;
        case 3: snprintf(shp, sizeof shp, "%s,%s", h, q); break;
        default: snprintf(shp, sizeof shp, "%s", hd); break;
        }
        if (A[i].kind == 4 && !qk_norm)
            continue; /* code2wav's transformer has no q/k norms */
        rule *r = add_rule(b, file, hf, "weight", g, A[i].kind == 0 || A[i].kind == 4 ? OMNI_CL_VECTOR : lin, shp,
                           bound);
        if (r)
            r->required = 1;
    }
    if (with_dense_mlp) {
        static const char *const M[3][2] = {{"gate_proj", "ffn_gate"}, {"up_proj", "ffn_up"}, {"down_proj", "ffn_down"}};
        for (int k = 0; k < 3; k++) {
            snprintf(hf, sizeof hf, "%s.layers.#.mlp.%s", P, M[k][0]);
            snprintf(g, sizeof g, "%s.blk.{0}.%s", G, M[k][1]);
            if (k < 2)
                snprintf(shp, sizeof shp, "%s,%s", f, h);
            else
                snprintf(shp, sizeof shp, "%s,%s", h, f);
            rule *r = add_rule(b, file, hf, "weight", g, lin, shp, bound);
            if (r)
                r->moe = with_dense_mlp == 2 ? -1 : 0;
        }
    }
}

/* Frequency bins left after the audio tower's three 3x3 stride-2 convs. */
static int64_t conv_out_bins(int64_t mel)
{
    for (int i = 0; i < 3; i++)
        mel = (mel + 2 * 1 - 3) / 2 + 1;
    return mel;
}

static void build_rules(const qp_omni_config *c, rulebook *b)
{
    const int MM = QP_OMNI_FILE_MMPROJ, TK = QP_OMNI_FILE_TALKER;
    const qp_omni_audio *a = &c->audio;
    const qp_omni_vision *v = &c->vision;
    const qp_omni_code2wav *w = &c->code2wav;
    int64_t merge = v->spatial_merge_size * v->spatial_merge_size;
    int64_t thinker_hidden = c->thinker.hidden_size, tt;
    if (qp_omni_config_int(c, "talker.thinker_hidden_size", &tt))
        thinker_hidden = tt;
    add_sym(b, "ad", a->d_model);
    add_sym(b, "af", a->encoder_ffn_dim);
    add_sym(b, "ao", a->output_dim);
    add_sym(b, "ac", a->downsample_hidden_size);
    add_sym(b, "acin", a->downsample_hidden_size * conv_out_bins(a->num_mel_bins));
    add_sym(b, "aL", a->encoder_layers);
    add_sym(b, "vh", v->hidden_size);
    add_sym(b, "vi", v->intermediate_size);
    add_sym(b, "vq", 3 * v->hidden_size);
    add_sym(b, "vc", v->in_channels);
    add_sym(b, "vt", v->temporal_patch_size);
    add_sym(b, "vp", v->patch_size);
    add_sym(b, "vn", v->num_position_embeddings);
    add_sym(b, "vm", v->hidden_size * merge);
    add_sym(b, "vo", v->out_hidden_size);
    add_sym(b, "vL", v->depth);
    add_sym(b, "vD", v->n_deepstack);
    const qp_hf_config *t = &c->talker, *p = &c->code_predictor;
    add_sym(b, "th", t->hidden_size);
    add_sym(b, "tq", t->num_attention_heads * t->head_dim);
    add_sym(b, "tkv", t->num_key_value_heads * t->head_dim);
    add_sym(b, "thd", t->head_dim);
    add_sym(b, "te", t->num_experts);
    add_sym(b, "ti", t->moe_intermediate_size);
    add_sym(b, "ts", c->talker_shared_expert_ffn);
    add_sym(b, "tf", t->intermediate_size);
    add_sym(b, "tv", t->vocab_size);
    add_sym(b, "tt", thinker_hidden);
    add_sym(b, "tL", t->num_hidden_layers);
    add_sym(b, "tE", t->num_experts);
    add_sym(b, "ch", p->hidden_size);
    add_sym(b, "cq", p->num_attention_heads * p->head_dim);
    add_sym(b, "ckv", p->num_key_value_heads * p->head_dim);
    add_sym(b, "chd", p->head_dim);
    add_sym(b, "cf", p->intermediate_size);
    add_sym(b, "cv", p->vocab_size);
    add_sym(b, "cL", p->num_hidden_layers);
    add_sym(b, "cG", c->num_code_groups - 1);
    add_sym(b, "wh", w->hidden_size);
    add_sym(b, "wq", w->num_attention_heads * w->head_dim);
    add_sym(b, "wkv", w->num_key_value_heads * w->head_dim);
    add_sym(b, "whd", w->head_dim);
    add_sym(b, "wf", w->intermediate_size);
    add_sym(b, "wcb", w->codebook_size * w->num_quantizers);
    add_sym(b, "wL", w->num_hidden_layers);
    rule *r;

    /* audio encoder (llama.cpp: Qwen25AudioModel / qwen3a tensor names) */
    static const char *const CONV[3][2] = {{"thinker.audio_tower.conv2d1", "a.conv2d.1"},
                                           {"thinker.audio_tower.conv2d2", "a.conv2d.2"},
                                           {"thinker.audio_tower.conv2d3", "a.conv2d.3"}};
    for (int k = 0; k < 3; k++) {
        if ((r = add_rule(b, MM, CONV[k][0], "weight", CONV[k][1], OMNI_CL_CONV, k ? "ac,ac,?,?" : "ac,1,?,?", NULL)))
            r->required = 1;
        if ((r = add_rule(b, MM, CONV[k][0], "bias", CONV[k][1], OMNI_CL_VECTOR, "ac", NULL)))
            r->op = OP_CONV_BIAS2D;
    }
    add_rule(b, MM, "thinker.audio_tower.conv_out", "weight,bias", "a.conv_out", OMNI_CL_LINEAR, "ad,acin", NULL);
    static const char *const AL[][3] = {
        {"self_attn.q_proj", "attn_q", "ad,ad"},      {"self_attn.k_proj", "attn_k", "ad,ad"},
        {"self_attn.v_proj", "attn_v", "ad,ad"},      {"self_attn.out_proj", "attn_out", "ad,ad"},
        {"self_attn_layer_norm", "ln1", "ad"},        {"final_layer_norm", "ln2", "ad"},
        {"fc1", "ffn_up", "af,ad"},                   {"fc2", "ffn_down", "ad,af"},
    };
    for (size_t k = 0; k < sizeof AL / sizeof AL[0]; k++) {
        char hf[128], g[96];
        snprintf(hf, sizeof hf, "thinker.audio_tower.layers.#.%s", AL[k][0]);
        snprintf(g, sizeof g, "a.blk.{0}.%s", AL[k][1]);
        if ((r = add_rule(b, MM, hf, "weight,bias", g, strchr(AL[k][2], ',') ? OMNI_CL_LINEAR : OMNI_CL_VECTOR,
                          AL[k][2], "aL")))
            r->required = 1;
    }
    if ((r = add_rule(b, MM, "thinker.audio_tower.ln_post", "weight,bias", "a.post_ln", OMNI_CL_VECTOR, "ad", NULL)))
        r->required = 1;
    if ((r = add_rule(b, MM, "thinker.audio_tower.proj1", "weight,bias", "mm.a.mlp.1", OMNI_CL_LINEAR, "ad,ad", NULL)))
        r->required = 1;
    if ((r = add_rule(b, MM, "thinker.audio_tower.proj2", "weight,bias", "mm.a.mlp.2", OMNI_CL_LINEAR, "ao,ad", NULL)))
        r->required = 1;

    /* vision encoder (llama.cpp: Qwen3VLVisionModel / qwen3vl_merger names) */
    if ((r = add_rule(b, MM, "thinker.visual.patch_embed.proj", "weight", "v.patch_embd", OMNI_CL_PATCH,
                      "vh,vc,vt,vp,vp", NULL))) {
        r->op = OP_PATCH;
        r->required = 1;
    }
    add_rule(b, MM, "thinker.visual.patch_embed.proj", "bias", "v.patch_embd", OMNI_CL_VECTOR, "vh", NULL);
    if ((r = add_rule(b, MM, "thinker.visual.pos_embed", "weight", "v.position_embd", OMNI_CL_FLOAT, "vn,vh", NULL)))
        r->required = 1;
    static const char *const VL[][3] = {
        {"attn.qkv", "attn_qkv", "vq,vh"},        {"attn.proj", "attn_out", "vh,vh"},
        {"norm1", "ln1", "vh"},                   {"norm2", "ln2", "vh"},
        {"mlp.linear_fc1", "ffn_up", "vi,vh"},    {"mlp.linear_fc2", "ffn_down", "vh,vi"},
    };
    for (size_t k = 0; k < sizeof VL / sizeof VL[0]; k++) {
        char hf[128], g[96];
        snprintf(hf, sizeof hf, "thinker.visual.blocks.#.%s", VL[k][0]);
        snprintf(g, sizeof g, "v.blk.{0}.%s", VL[k][1]);
        if ((r = add_rule(b, MM, hf, "weight,bias", g, strchr(VL[k][2], ',') ? OMNI_CL_LINEAR : OMNI_CL_VECTOR,
                          VL[k][2], "vL")))
            r->required = 1;
    }
    /* merger: Qwen3-Omni spells it ln_q / mlp.0 / mlp.2, Qwen3-VL norm / linear_fc1 / linear_fc2 */
    static const char *const MG[][3] = {
        {"ln_q", "v.post_ln", "vh"}, {"mlp.0", "mm.0", "vm,vm"}, {"mlp.2", "mm.2", "vo,vm"},
        {"norm", "v.post_ln", "vh"}, {"linear_fc1", "mm.0", "vm,vm"}, {"linear_fc2", "mm.2", "vo,vm"},
    };
    for (size_t k = 0; k < sizeof MG / sizeof MG[0]; k++) {
        char hf[128];
        snprintf(hf, sizeof hf, "thinker.visual.merger.%s", MG[k][0]);
        add_rule(b, MM, hf, "weight,bias", MG[k][1], strchr(MG[k][2], ',') ? OMNI_CL_LINEAR : OMNI_CL_VECTOR,
                 MG[k][2], NULL);
    }
    static const char *const DS[][3] = {
        {"merger_list.#.ln_q", "v.deepstack.{0}.norm", "vm"},
        {"merger_list.#.mlp.0", "v.deepstack.{0}.fc1", "vm,vm"},
        {"merger_list.#.mlp.2", "v.deepstack.{0}.fc2", "vo,vm"},
        {"deepstack_merger_list.#.norm", "v.deepstack.{0}.norm", "vm"},
        {"deepstack_merger_list.#.linear_fc1", "v.deepstack.{0}.fc1", "vm,vm"},
        {"deepstack_merger_list.#.linear_fc2", "v.deepstack.{0}.fc2", "vo,vm"},
    };
    for (size_t k = 0; k < sizeof DS / sizeof DS[0]; k++) {
        char hf[128];
        snprintf(hf, sizeof hf, "thinker.visual.%s", DS[k][0]);
        if ((r = add_rule(b, MM, hf, "weight,bias", DS[k][1], strchr(DS[k][2], ',') ? OMNI_CL_LINEAR : OMNI_CL_VECTOR,
                          DS[k][2], "vD")))
            r->op = OP_DEEPSTACK;
    }

    /* talker text model: Qwen3-MoE with a shared expert */
    add_rule(b, TK, "talker.model.codec_embedding", "weight", "talker.token_embd", OMNI_CL_EMBED, "tv,th", NULL);
    stack_rules(b, TK, "talker.model", "talker", "th", "tq", "tkv", "thd", "tL", OMNI_CL_LINEAR, 2, "tf", 1);
    if ((r = add_rule(b, TK, "talker.model.layers.#.mlp.gate", "weight", "talker.blk.{0}.ffn_gate_inp", OMNI_CL_ROUTER,
                      "te,th", "tL")))
        r->moe = 1;
    static const char *const EX[3][3] = {{"gate_proj", "ffn_gate_exps", "ti,th"},
                                         {"up_proj", "ffn_up_exps", "ti,th"},
                                         {"down_proj", "ffn_down_exps", "th,ti"}};
    for (int k = 0; k < 3; k++) {
        char hf[128], g[96];
        snprintf(hf, sizeof hf, "talker.model.layers.#.mlp.experts.#.%s", EX[k][0]);
        snprintf(g, sizeof g, "talker.blk.{0}.%s", EX[k][1]);
        if ((r = add_rule(b, TK, hf, "weight", g, OMNI_CL_LINEAR, EX[k][2], "tL,tE"))) {
            r->op = OP_EXPERT;
            r->slot = k;
            r->moe = 1;
        }
    }
    if ((r = add_rule(b, TK, "talker.model.layers.#.mlp.experts", "gate_up_proj,down_proj", "talker.blk.{0}",
                      OMNI_CL_LINEAR, NULL, "tL"))) {
        r->op = OP_FUSED;
        r->moe = 1;
    }
    static const char *const SH[3][3] = {{"gate_proj", "ffn_gate_shexp", "ts,th"},
                                         {"up_proj", "ffn_up_shexp", "ts,th"},
                                         {"down_proj", "ffn_down_shexp", "th,ts"}};
    for (int k = 0; k < 3; k++) {
        char hf[128], g[96];
        snprintf(hf, sizeof hf, "talker.model.layers.#.mlp.shared_expert.%s", SH[k][0]);
        snprintf(g, sizeof g, "talker.blk.{0}.%s", SH[k][1]);
        if ((r = add_rule(b, TK, hf, "weight", g, OMNI_CL_LINEAR, SH[k][2], "tL")))
            r->moe = 1;
    }
    if ((r = add_rule(b, TK, "talker.model.layers.#.mlp.shared_expert_gate", "weight",
                      "talker.blk.{0}.ffn_gate_inp_shexp", OMNI_CL_ROUTER, "1,th", "tL")))
        r->moe = 1;
    if ((r = add_rule(b, TK, "talker.model.norm", "weight", "talker.output_norm", OMNI_CL_VECTOR, "th", NULL)))
        r->required = 1;
    add_rule(b, TK, "talker.codec_head", "weight", "talker.output", OMNI_CL_HEAD, "tv,th", NULL);
    add_rule(b, TK, "talker.text_projection.linear_fc1", "weight,bias", "", OMNI_CL_LINEAR, "tf,tt", NULL);
    add_rule(b, TK, "talker.text_projection.linear_fc2", "weight,bias", "", OMNI_CL_LINEAR, "th,tf", NULL);
    add_rule(b, TK, "talker.hidden_projection.linear_fc1", "weight,bias", "", OMNI_CL_LINEAR, "tf,tt", NULL);
    add_rule(b, TK, "talker.hidden_projection.linear_fc2", "weight,bias", "", OMNI_CL_LINEAR, "th,tf", NULL);

    /* code predictor: dense Qwen3 with one embedding and head per code group */
    add_rule(b, TK, "talker.code_predictor.model.codec_embedding.#", "weight", "talker.code_predictor.token_embd.{0}",
             OMNI_CL_EMBED, "cv,ch", "cG");
    stack_rules(b, TK, "talker.code_predictor.model", "talker.code_predictor", "ch", "cq", "ckv", "chd", "cL",
                OMNI_CL_LINEAR, 1, "cf", 1);
    if ((r = add_rule(b, TK, "talker.code_predictor.model.norm", "weight", "talker.code_predictor.output_norm",
                      OMNI_CL_VECTOR, "ch", NULL)))
        r->required = 1;
    add_rule(b, TK, "talker.code_predictor.lm_head.#", "weight", "talker.code_predictor.output.{0}", OMNI_CL_HEAD,
             "cv,ch", "cG");

    /* code2wav: a sliding-window transformer, upsampling ConvNeXt blocks and a
     * SnakeBeta conv decoder; convolution names are kept as in the checkpoint */
    add_rule(b, TK, "code2wav.code_embedding", "weight", "", OMNI_CL_FLOAT, "wcb,wh", NULL);
    stack_rules(b, TK, "code2wav.pre_transformer", "code2wav.pre_transformer", "wh", "wq", "wkv", "whd", "wL",
                OMNI_CL_FLOAT, 1, "wf", 0);
    add_rule(b, TK, "code2wav.pre_transformer.layers.#.self_attn_layer_scale", "scale",
             "code2wav.pre_transformer.blk.{0}.attn_layer_scale", OMNI_CL_VECTOR, "wh", "wL");
    add_rule(b, TK, "code2wav.pre_transformer.layers.#.mlp_layer_scale", "scale",
             "code2wav.pre_transformer.blk.{0}.ffn_layer_scale", OMNI_CL_VECTOR, "wh", "wL");
    if ((r = add_rule(b, TK, "code2wav.pre_transformer.norm", "weight", "code2wav.pre_transformer.output_norm",
                      OMNI_CL_VECTOR, "wh", NULL)))
        r->required = 1;
    static const char *const CV[][2] = {
        {"code2wav.upsample.#.#.conv", "weight,bias"},       {"code2wav.upsample.#.#.dwconv.conv", "weight,bias"},
        {"code2wav.upsample.#.#.norm", "weight,bias"},       {"code2wav.upsample.#.#", "gamma"},
        {"code2wav.upsample.#.#.pwconv1", "weight,bias"},    {"code2wav.upsample.#.#.pwconv2", "weight,bias"},
        {"code2wav.decoder.#.conv", "weight,bias"},          {"code2wav.decoder.#", "alpha,beta"},
        {"code2wav.decoder.#.block.#", "alpha,beta"},        {"code2wav.decoder.#.block.#.conv", "weight,bias"},
        {"code2wav.decoder.#.block.#.act#", "alpha,beta"},   {"code2wav.decoder.#.block.#.conv#.conv", "weight,bias"},
    };
    for (size_t k = 0; k < sizeof CV / sizeof CV[0]; k++)
        add_rule(b, TK, CV[k][0], CV[k][1], "", OMNI_CL_CONV, NULL, NULL);
}

/* ------------------------------------------------------------ matching */

/* '#' matches a decimal index without leading zeros; captures up to 4. */
static int match(const char *pat, const char *s, int64_t *cap, int *n_cap)
{
    *n_cap = 0;
    while (*pat) {
        if (*pat == '#') {
            if (*s < '0' || *s > '9' || (*s == '0' && s[1] >= '0' && s[1] <= '9') || *n_cap == 4)
                return 0;
            int64_t v = 0;
            while (*s >= '0' && *s <= '9') {
                v = v * 10 + (*s++ - '0');
                if (v > (1 << 24))
                    return 0;
            }
            cap[(*n_cap)++] = v;
            pat++;
            continue;
        }
        if (*pat++ != *s++)
            return 0;
    }
    return *s == '\0';
}

static int param_allowed(const char *list, const char *p)
{
    size_t n = strlen(p);
    for (const char *s = list; *s;) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len == n && strncmp(s, p, n) == 0)
            return 1;
        s += len + (e ? 1 : 0);
    }
    return 0;
}

static int first_param(const char *list, const char *p)
{
    size_t n = strlen(p);
    return strncmp(list, p, n) == 0 && (list[n] == ',' || list[n] == '\0');
}

/* Output name: the rule's pattern with "{k}" replaced by capture k. */
static int format_name(const char *pat, const int64_t *cap, int n_cap, const char *param, char *out, size_t size)
{
    size_t o = 0;
    for (const char *s = pat; *s && o + 1 < size; s++) {
        if (s[0] == '{' && s[1] >= '0' && s[1] <= '3' && s[2] == '}' && s[1] - '0' < n_cap) {
            o += (size_t)snprintf(out + o, size - o, "%lld", (long long)cap[s[1] - '0']);
            s += 2;
        } else {
            out[o++] = *s;
        }
    }
    if (o >= size)
        return 0;
    out[o] = '\0';
    int n = snprintf(out + o, size - o, ".%s", param);
    return n > 0 && (size_t)n < size - o;
}

/* Compare an HF shape with a comma-separated symbol list. */
static int shape_ok(const rulebook *b, const char *spec, const qp_st_tensor *t, int bias_of_weight)
{
    int64_t want[QP_ST_MAX_DIMS];
    int n = 0, unchecked[QP_ST_MAX_DIMS] = {0};
    for (const char *s = spec; *s && n < QP_ST_MAX_DIMS;) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        unchecked[n] = !sym_value(b, s, len, &want[n]);
        n++;
        s += len + (e ? 1 : 0);
    }
    if (bias_of_weight)
        n = 1; /* a bias has the weight's output dimension */
    if (t->n_dims != n)
        return 0;
    for (int i = 0; i < n; i++)
        if (!unchecked[i] && t->shape[i] != want[i])
            return 0;
    return 1;
}

/* ------------------------------------------------------------ pending tensors */

typedef struct {
    int file;
    char name[96];
    uint32_t n_dims;
    int64_t ne[4];
    int64_t n_expert;
    omni_class cls;
    int64_t rows_per_piece, n_pieces;
    qp_plan_piece *pieces;
    qp_plan_gen_fn gen;
    char *spec;
} pending;

typedef struct {
    pending *v;
    int64_t n, cap;
} pending_list;

static pending *push(pending_list *l)
{
    if (l->n == l->cap) {
        int64_t nc = l->cap ? 2 * l->cap : 64;
        pending *nv = realloc(l->v, (size_t)nc * sizeof *nv);
        if (!nv)
            return NULL;
        l->v = nv;
        l->cap = nc;
    }
    pending *p = &l->v[l->n++];
    memset(p, 0, sizeof *p);
    return p;
}

static void pending_free(pending_list *l)
{
    for (int64_t i = 0; i < l->n; i++) {
        free(l->v[i].pieces);
        free(l->v[i].spec);
    }
    free(l->v);
}

/* Natural order: digit runs compare as numbers, so blk.2 comes before
 * blk.10 (the preset's counting rules want layer order). */
static int natural_cmp(const char *a, const char *b)
{
    while (*a && *b) {
        if (*a >= '0' && *a <= '9' && *b >= '0' && *b <= '9') {
            const char *ea = a, *eb = b;
            while (*ea == '0' && ea[1] >= '0' && ea[1] <= '9')
                ea++;
            while (*eb == '0' && eb[1] >= '0' && eb[1] <= '9')
                eb++;
            a = ea;
            b = eb;
            while (*ea >= '0' && *ea <= '9')
                ea++;
            while (*eb >= '0' && *eb <= '9')
                eb++;
            if (ea - a != eb - b)
                return (ea - a) < (eb - b) ? -1 : 1;
            int c = strncmp(a, b, (size_t)(ea - a));
            if (c)
                return c;
            a = ea;
            b = eb;
            continue;
        }
        if (*a != *b)
            return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
        a++;
        b++;
    }
    return *a ? 1 : *b ? -1 : 0;
}

static int pending_cmp(const void *x, const void *y)
{
    const pending *a = x, *b = y;
    if (a->file != b->file)
        return a->file < b->file ? -1 : 1;
    return natural_cmp(a->name, b->name);
}

static char *spec_of(const char *op, const char *name)
{
    size_t n = strlen(op) + strlen(name) + 2;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s %s", op, name);
    return s;
}

/* ------------------------------------------------------------ layout state */

typedef struct {
    qp_omni_job *job;
    rulebook *book;
    pending_list out;
    /* talker experts: [layer][slot][expert] per-expert sources, fused per layer */
    const qp_st_tensor **experts;
    const qp_st_tensor **fused;    /* [layer][2]: gate_up, down */
    int64_t L, E;
    qp_err *err;
} layout;

static int64_t st_index(const qp_st_model *st, const char *name)
{
    size_t lo = 0, hi = qp_st_count(st);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(qp_st_at(st, mid)->name, name);
        if (c == 0)
            return (int64_t)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    /* not sorted as documented: fall back to a scan */
    for (size_t i = 0; i < qp_st_count(st); i++)
        if (strcmp(qp_st_at(st, i)->name, name) == 0)
            return (int64_t)i;
    return -1;
}

static qp_status claim(layout *ly, const qp_st_tensor *t, int file)
{
    int64_t i = st_index(ly->job->st, t->name);
    if (i < 0)
        return qp_err_set(ly->err, QP_ERR_INTERNAL, NULL, "source tensor %s not found", t->name);
    if (ly->job->owner[i] >= 0 && ly->job->owner[i] != file) {
        qp_err_set(ly->err, QP_ERR_INTERNAL, qp_st_file_path(ly->job->st, t->file_index),
                   "tensor would land in two files");
        qp_err_set_tensor(ly->err, t->name);
        return QP_ERR_INTERNAL;
    }
    ly->job->owner[i] = file;
    return QP_OK;
}

static int talker_layer_is_moe(const qp_hf_config *c, int64_t layer)
{
    if (c->num_experts <= 0)
        return 0;
    for (int64_t i = 0; i < c->n_mlp_only_layers; i++)
        if (c->mlp_only_layers[i] == layer)
            return 0;
    int64_t step = c->decoder_sparse_step > 0 ? c->decoder_sparse_step : 1;
    return (layer + 1) % step == 0;
}

static qp_status bad_tensor(layout *ly, const qp_st_tensor *t, const char *fmt, const char *detail)
{
    qp_err_set(ly->err, QP_ERR_BAD_INPUT, qp_st_file_path(ly->job->st, t->file_index), fmt, detail);
    qp_err_set_tensor(ly->err, t->name);
    return QP_ERR_BAD_INPUT;
}

static qp_status shape_error(layout *ly, const qp_st_tensor *t, const char *spec, int bias)
{
    char got[96] = "", want[96];
    size_t n = 0;
    for (int i = 0; i < t->n_dims && n < sizeof got - 24; i++)
        n += (size_t)snprintf(got + n, sizeof got - n, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    /* spell the expected shape out in numbers */
    size_t o = 0;
    int k = 0;
    want[0] = '\0';
    for (const char *s = spec; *s && o < sizeof want - 24 && (!bias || k < 1); k++) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        int64_t v;
        if (sym_value(ly->book, s, len, &v))
            o += (size_t)snprintf(want + o, sizeof want - o, "%s%lld", k ? ", " : "", (long long)v);
        else
            o += (size_t)snprintf(want + o, sizeof want - o, "%s?", k ? ", " : "");
        s += len + (e ? 1 : 0);
    }
    qp_err_set(ly->err, QP_ERR_BAD_INPUT, qp_st_file_path(ly->job->st, t->file_index),
               "tensor has shape [%s], config.json implies [%s]", got, want);
    qp_err_set_tensor(ly->err, t->name);
    return QP_ERR_BAD_INPUT;
}

/* A tensor copied whole (same element order), under the HF dims reversed. */
static qp_status add_copy(layout *ly, const qp_st_tensor *t, int file, const char *name, omni_class cls,
                          const char *op)
{
    pending *p = push(&ly->out);
    if (!p || !(p->pieces = calloc(1, sizeof *p->pieces)) || !(p->spec = spec_of(op, t->name)))
        return qp_err_set(ly->err, QP_ERR_NOMEM, NULL, "out of memory laying out the files");
    p->file = file;
    snprintf(p->name, sizeof p->name, "%s", name);
    if (t->n_dims > 4)
        return bad_tensor(ly, t, "tensor has %s dimensions; only the patch embedding may have 5", "more than 4");
    p->n_dims = t->n_dims ? (uint32_t)t->n_dims : 1;
    for (int d = 0; d < 4; d++)
        p->ne[d] = d < t->n_dims ? t->shape[t->n_dims - 1 - d] : 1;
    p->n_expert = 1;
    p->cls = p->n_dims == 1 ? OMNI_CL_VECTOR : cls;
    p->rows_per_piece = (int64_t)(t->n_elems / (uint64_t)p->ne[0]);
    p->n_pieces = 1;
    p->pieces[0].src = t;
    if (strcmp(op, "reshape") == 0) { /* conv bias [C] -> ne [1, 1, C], as llama.cpp stores it */
        p->n_dims = 3;
        p->ne[0] = p->ne[1] = 1;
        p->ne[2] = t->shape[0];
        p->rows_per_piece = t->shape[0];
    }
    return claim(ly, t, file);
}

/* Qwen2-VL's split of the Conv3D patch embedding [C_out, C_in, T, P, P]
 * into one Conv2D kernel per temporal step: v.patch_embd.weight (t = 0) and
 * v.patch_embd.weight.1 (t = 1). */
static qp_status add_patch(layout *ly, const qp_st_tensor *t)
{
    int64_t co = t->shape[0], ci = t->shape[1], T = t->shape[2], P = t->shape[3];
    if (T < 1 || T > 2 || t->shape[4] != P)
        return bad_tensor(ly, t, "%s", "patch embedding: llama.cpp's projector splits a temporal patch of 1 or 2 "
                                       "square frames; this one is neither");
    for (int64_t step = 0; step < T; step++) {
        pending *p = push(&ly->out);
        if (!p || !(p->pieces = calloc((size_t)(co * ci), sizeof *p->pieces)))
            return qp_err_set(ly->err, QP_ERR_NOMEM, NULL, "out of memory laying out the files");
        char op[16];
        snprintf(op, sizeof op, "split_t%lld", (long long)step);
        if (!(p->spec = spec_of(op, t->name)))
            return qp_err_set(ly->err, QP_ERR_NOMEM, NULL, "out of memory laying out the files");
        p->file = QP_OMNI_FILE_MMPROJ;
        snprintf(p->name, sizeof p->name, step ? "v.patch_embd.weight.%lld" : "v.patch_embd.weight", (long long)step);
        p->n_dims = 4;
        p->ne[0] = P;
        p->ne[1] = P;
        p->ne[2] = ci;
        p->ne[3] = co;
        p->n_expert = 1;
        p->cls = OMNI_CL_PATCH;
        /* rows of P elements; frame `step` of (o, i) is rows ((o*ci + i)*T + step)*P .. +P */
        p->rows_per_piece = P;
        p->n_pieces = co * ci;
        for (int64_t k = 0; k < co * ci; k++) {
            p->pieces[k].src = t;
            p->pieces[k].src_row0 = (k * T + step) * P;
        }
    }
    return claim(ly, t, QP_OMNI_FILE_MMPROJ);
}

static qp_status place(layout *ly, const qp_st_tensor *t)
{
    char module[256];
    size_t len = strlen(t->name);
    const char *dot = strrchr(t->name, '.');
    if (!dot || len >= sizeof module)
        return unrecognised(ly->job->st, t, ly->err);
    memcpy(module, t->name, (size_t)(dot - t->name));
    module[dot - t->name] = '\0';
    const char *param = dot + 1;
    rulebook *b = ly->book;
    int comp = qp_omni_component_of(t->name);
    int64_t cap[4];
    int n_cap = 0;
    rule *r = NULL;
    for (int i = 0; i < b->n && !r; i++)
        if (param_allowed(b->r[i].params, param) && match(b->r[i].hf, module, cap, &n_cap))
            r = &b->r[i];
    /* components and rules must agree (a rule for code2wav never takes talker tensors) */
    if (!r || (comp == QP_OMNI_CODE2WAV) != (strncmp(r->hf, "code2wav.", 9) == 0))
        return unrecognised(ly->job->st, t, ly->err);
    if (!qp_st_dtype_is_float(t->dtype) || t->dtype == QP_ST_F8_E4M3 || t->dtype == QP_ST_F8_E5M2)
        return bad_tensor(ly, t, "tensor has dtype %s, expected F32, F16 or BF16", qp_st_dtype_name(t->dtype));
    /* indexes within their config bounds */
    const char *bs = r->bounds;
    for (int k = 0; k < n_cap && *bs; k++) {
        const char *e = strchr(bs, ',');
        size_t blen = e ? (size_t)(e - bs) : strlen(bs);
        int64_t lim;
        if (sym_value(b, bs, blen, &lim) && cap[k] >= lim) {
            char what[160];
            snprintf(what, sizeof what, "index %lld is past the %lld the config declares", (long long)cap[k],
                     (long long)lim);
            return bad_tensor(ly, t, "tensor name has %s", what);
        }
        bs += blen + (e ? 1 : 0);
    }
    if (r->moe && comp == QP_OMNI_TALKER) {
        int is_moe = talker_layer_is_moe(&ly->job->cfg.talker, cap[0]);
        if (is_moe != (r->moe > 0))
            return bad_tensor(ly, t, "%s", is_moe ? "dense MLP tensor in a layer config.json makes a MoE layer"
                                                  : "expert tensor in a layer config.json makes a dense layer");
    }
    if (r->shape[0] && r->op != OP_FUSED) {
        int bias = !first_param(r->params, param);
        if (!shape_ok(b, r->shape, t, bias))
            return shape_error(ly, t, r->shape, bias);
    }
    if (first_param(r->params, param))
        r->seen++;
    char name[128];
    if (r->op == OP_DEEPSTACK) {
        /* merger_list.K is the merger of vision block deepstack_visual_indexes[K] */
        cap[0] = ly->job->cfg.vision.deepstack_visual_indexes[cap[0]];
    }
    if (r->gguf[0]) {
        if (!format_name(r->gguf, cap, n_cap, param, name, sizeof name))
            return unrecognised(ly->job->st, t, ly->err);
    } else {
        snprintf(name, sizeof name, "%s", t->name);
    }
    if (strlen(name) >= 64)
        return bad_tensor(ly, t, "%s", "output name would exceed GGUF's 63-byte tensor names");
    switch (r->op) {
    case OP_PATCH:
        return add_patch(ly, t);
    case OP_CONV_BIAS2D:
        return add_copy(ly, t, r->file, name, OMNI_CL_VECTOR, "reshape");
    case OP_EXPERT: {
        const qp_st_tensor **slot = &ly->experts[(cap[0] * 3 + r->slot) * ly->E + cap[1]];
        if (*slot)
            return bad_tensor(ly, t, "%s", "tensor fills a slot another tensor already fills");
        *slot = t;
        return claim(ly, t, r->file);
    }
    case OP_FUSED: {
        int down = strcmp(param, "down_proj") == 0;
        const qp_hf_config *c = &ly->job->cfg.talker;
        int64_t per = down ? c->hidden_size : 2 * c->moe_intermediate_size;
        int64_t len2 = down ? c->moe_intermediate_size : c->hidden_size;
        if (t->n_dims != 3 || t->shape[0] != c->num_experts || t->shape[1] != per || t->shape[2] != len2)
            return bad_tensor(ly, t, "%s", "fused expert tensor does not have shape [experts, rows, row length] "
                                           "from config.json");
        const qp_st_tensor **slot = &ly->fused[cap[0] * 2 + down];
        if (*slot)
            return bad_tensor(ly, t, "%s", "tensor fills a slot another tensor already fills");
        *slot = t;
        return claim(ly, t, r->file);
    }
    default:
        return add_copy(ly, t, r->file, name, r->cls, "copy");
    }
}

/* "PREFIX{a..b}SUFFIX" when the names differ only in one run of digits
 * counting up by one, else the names joined by commas. */
static char *stack_spec(const char *const *names, int64_t n)
{
    size_t total = 16;
    for (int64_t i = 0; i < n; i++)
        total += strlen(names[i]) + 1;
    char *s = malloc(total);
    if (!s)
        return NULL;
    const char *f = names[0];
    size_t pre = 0;
    if (n > 1) {
        const char *l = names[n - 1];
        while (f[pre] && f[pre] == l[pre])
            pre++;
        while (pre > 0 && f[pre - 1] >= '0' && f[pre - 1] <= '9')
            pre--;
    }
    size_t digits = 0;
    while (f[pre + digits] >= '0' && f[pre + digits] <= '9')
        digits++;
    int compact = n > 1 && digits > 0;
    const char *suffix = f + pre + digits;
    long long first = digits ? strtoll(f + pre, NULL, 10) : 0;
    for (int64_t i = 0; i < n && compact; i++) {
        char want[160];
        snprintf(want, sizeof want, "%.*s%lld%s", (int)pre, f, first + (long long)i, suffix);
        compact = strcmp(want, names[i]) == 0;
    }
    if (compact) {
        snprintf(s, total, "stack %.*s{%lld..%lld}%s", (int)pre, f, first, first + (long long)n - 1, suffix);
        return s;
    }
    size_t o = (size_t)snprintf(s, total, "stack ");
    for (int64_t i = 0; i < n; i++)
        o += (size_t)snprintf(s + o, total - o, "%s%s", i ? "," : "", names[i]);
    return s;
}

/* The talker's stacked experts, one tensor per MoE layer and projection. */
static qp_status stack_experts(layout *ly)
{
    const qp_hf_config *c = &ly->job->cfg.talker;
    static const char *const OUT[3] = {"ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"};
    static const char *const HF[3] = {"gate_proj", "up_proj", "down_proj"};
    for (int64_t l = 0; l < ly->L; l++) {
        if (!talker_layer_is_moe(c, l))
            continue;
        for (int k = 0; k < 3; k++) {
            int down = k == 2;
            const qp_st_tensor *fused = ly->fused[l * 2 + down];
            int64_t rows = down ? c->hidden_size : c->moe_intermediate_size;
            int64_t len = down ? c->moe_intermediate_size : c->hidden_size;
            pending *p = push(&ly->out);
            const char **names = calloc((size_t)ly->E, sizeof *names);
            if (!p || !names || !(p->pieces = calloc((size_t)ly->E, sizeof *p->pieces))) {
                free(names);
                return qp_err_set(ly->err, QP_ERR_NOMEM, NULL, "out of memory laying out the files");
            }
            p->file = QP_OMNI_FILE_TALKER;
            snprintf(p->name, sizeof p->name, "talker.blk.%lld.%s.weight", (long long)l, OUT[k]);
            p->n_dims = 3;
            p->ne[0] = len;
            p->ne[1] = rows;
            p->ne[2] = ly->E;
            p->ne[3] = 1;
            p->n_expert = ly->E;
            p->cls = OMNI_CL_LINEAR;
            p->rows_per_piece = rows;
            p->n_pieces = ly->E;
            for (int64_t x = 0; x < ly->E; x++) {
                const qp_st_tensor *src = ly->experts[(l * 3 + k) * ly->E + x];
                if (src && fused) {
                    free(names);
                    return bad_tensor(ly, src, "%s", "layer has both fused and per-expert tensors");
                }
                if (src) {
                    p->pieces[x].src = src;
                    names[x] = src->name;
                } else if (fused) {
                    /* gate_up_proj is [E, 2I, H], gate rows first; down_proj [E, H, I] */
                    int64_t per = down ? rows : 2 * rows;
                    p->pieces[x].src = fused;
                    p->pieces[x].src_row0 = x * per + (k == 1 ? rows : 0);
                } else {
                    free(names);
                    return qp_err_set(ly->err, QP_ERR_BAD_INPUT, qp_st_file_path(ly->job->st, 0),
                                      "checkpoint lacks talker.model.layers.%lld.mlp.experts.%lld.%s.weight",
                                      (long long)l, (long long)x, HF[k]);
                }
            }
            if (fused) {
                char buf[256];
                snprintf(buf, sizeof buf, "rows %s %s", fused->name, k == 0 ? "gate" : k == 1 ? "up" : "all");
                p->spec = strdup(buf);
            } else {
                p->spec = stack_spec(names, ly->E);
            }
            free(names);
            if (!p->spec)
                return qp_err_set(ly->err, QP_ERR_NOMEM, NULL, "out of memory laying out the files");
        }
    }
    return QP_OK;
}

/* The audio encoder's sinusoidal position table, which the checkpoint does
 * not store (transformers computes it; llama.cpp's converter writes it as
 * a.position_embd): row p = [sin(p * w_i), cos(p * w_i)], w_i = 10000^(-i/(C/2-1)),
 * in float32 arithmetic as torch computes it. */
static void sinusoid_rows(const void *ctx, int64_t row0, int64_t n, int64_t row_len, float *dst)
{
    (void)ctx;
    int64_t half = row_len / 2;
    float inc = half > 1 ? (float)(log(10000.0) / (double)(half - 1)) : 0.0f;
    for (int64_t r = 0; r < n; r++) {
        float *row = dst + r * row_len;
        for (int64_t i = 0; i < half; i++) {
            float inv = expf(-inc * (float)i);
            float x = (float)(row0 + r) * inv;
            row[i] = sinf(x);
            row[half + i] = cosf(x);
        }
        for (int64_t i = 2 * half; i < row_len; i++)
            row[i] = 0.0f;
    }
}

static qp_status add_generated(layout *ly)
{
    pending *p = push(&ly->out);
    if (!p || !(p->spec = strdup("generated sinusoid(max_timescale=10000)")))
        return qp_err_set(ly->err, QP_ERR_NOMEM, NULL, "out of memory laying out the files");
    p->file = QP_OMNI_FILE_MMPROJ;
    snprintf(p->name, sizeof p->name, "a.position_embd.weight");
    p->n_dims = 2;
    p->ne[0] = ly->job->cfg.audio.d_model;
    p->ne[1] = ly->job->cfg.audio.max_source_positions;
    p->ne[2] = p->ne[3] = 1;
    p->n_expert = 1;
    p->cls = OMNI_CL_VECTOR; /* F32: a table of exact values, not a weight */
    p->gen = sinusoid_rows;
    return QP_OK;
}

/* Every required rule saw a weight for every index combination. */
static qp_status check_required(layout *ly)
{
    rulebook *b = ly->book;
    for (int i = 0; i < b->n; i++) {
        rule *r = &b->r[i];
        if (!r->required)
            continue;
        int64_t want = 1, lim;
        for (const char *bs = r->bounds; *bs;) {
            const char *e = strchr(bs, ',');
            size_t blen = e ? (size_t)(e - bs) : strlen(bs);
            if (sym_value(b, bs, blen, &lim))
                want *= lim;
            bs += blen + (e ? 1 : 0);
        }
        if (r->seen != want) {
            char first[16];
            snprintf(first, sizeof first, "%.*s", (int)strcspn(r->params, ","), r->params);
            return qp_err_set(ly->err, QP_ERR_BAD_INPUT, qp_st_file_path(ly->job->st, 0),
                              "checkpoint has %lld of the %lld tensors %s.%s ('#' = index) that config.json implies",
                              (long long)r->seen, (long long)want, r->hf, first);
        }
    }
    return QP_OK;
}

/* A description of how thinker plan tensor i reads its sources. */
static char *thinker_spec(const qp_plan *plan, int64_t i)
{
    int64_t n = qp_plan_piece_count(plan, i);
    if (n == 1) {
        const qp_st_tensor *s = qp_plan_piece_source(plan, i, 0, NULL);
        return spec_of("copy", s->name);
    }
    const char **names = calloc((size_t)n, sizeof *names);
    if (!names)
        return NULL;
    int same = 1;
    for (int64_t k = 0; k < n; k++) {
        names[k] = qp_plan_piece_source(plan, i, k, NULL)->name;
        same &= k == 0 || names[k] == names[0];
    }
    char *s;
    if (same) {
        int64_t r0 = 0, r1 = 0;
        qp_plan_piece_source(plan, i, 0, &r0);
        qp_plan_piece_source(plan, i, n > 1 ? 1 : 0, &r1);
        char buf[256];
        snprintf(buf, sizeof buf, "rows %s first=%lld stride=%lld n=%lld", names[0], (long long)r0,
                 (long long)(r1 - r0), (long long)n);
        s = strdup(buf);
    } else {
        s = stack_spec(names, n);
    }
    free(names);
    return s;
}

static qp_status build_thinker(qp_omni_job *job, qp_err *err)
{
    qp_plan_options po = {"thinker.", 1};
    qp_status s = qp_plan_build_ex(&po, job->st, &job->cfg.thinker, &job->plans[QP_OMNI_FILE_THINKER], err);
    if (s != QP_OK)
        return s;
    const qp_plan *plan = job->plans[QP_OMNI_FILE_THINKER];
    int64_t n = qp_plan_count(plan);
    job->specs[QP_OMNI_FILE_THINKER] = calloc((size_t)(n ? n : 1), sizeof(char *));
    job->classes[QP_OMNI_FILE_THINKER] = calloc((size_t)(n ? n : 1), sizeof(omni_class));
    if (!job->specs[QP_OMNI_FILE_THINKER] || !job->classes[QP_OMNI_FILE_THINKER])
        return qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory");
    for (int64_t i = 0; i < n; i++) {
        if (!(job->specs[QP_OMNI_FILE_THINKER][i] = thinker_spec(plan, i)))
            return qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory");
        job->classes[QP_OMNI_FILE_THINKER][i] = qp_plan_at(plan, i)->keep_f32 ? OMNI_CL_VECTOR : OMNI_CL_LINEAR;
        for (int64_t k = 0; k < qp_plan_piece_count(plan, i); k++) {
            int64_t idx = st_index(job->st, qp_plan_piece_source(plan, i, k, NULL)->name);
            if (idx >= 0)
                job->owner[idx] = QP_OMNI_FILE_THINKER;
        }
    }
    return QP_OK;
}

/* Turn the sorted pending list into the mmproj and talker plans. */
static qp_status build_custom(layout *ly)
{
    qp_omni_job *job = ly->job;
    qsort(ly->out.v, (size_t)ly->out.n, sizeof *ly->out.v, pending_cmp);
    for (int f = QP_OMNI_FILE_MMPROJ; f <= QP_OMNI_FILE_TALKER; f++) {
        int64_t n = 0;
        for (int64_t i = 0; i < ly->out.n; i++)
            n += ly->out.v[i].file == f;
        const qp_hf_config *cfg = f == QP_OMNI_FILE_TALKER ? &job->cfg.talker : &job->cfg.thinker;
        job->plans[f] = qp_plan_new_custom(job->st, cfg, n ? n : 1);
        job->specs[f] = calloc((size_t)(n ? n : 1), sizeof(char *));
        job->classes[f] = calloc((size_t)(n ? n : 1), sizeof(omni_class));
        if (!job->plans[f] || !job->specs[f] || !job->classes[f])
            return qp_err_set(ly->err, QP_ERR_NOMEM, NULL, "out of memory");
        int64_t j = 0;
        for (int64_t i = 0; i < ly->out.n; i++) {
            pending *p = &ly->out.v[i];
            if (p->file != f)
                continue;
            qp_plan_tensor t;
            memset(&t, 0, sizeof t);
            snprintf(t.name, sizeof t.name, "%s", p->name);
            t.role = QP_ROLE_OTHER;
            t.layer = -1;
            t.n_dims = p->n_dims;
            memcpy(t.ne, p->ne, sizeof t.ne);
            t.n_expert = p->n_expert;
            t.keep_f32 = p->cls == OMNI_CL_VECTOR || p->cls == OMNI_CL_ROUTER;
            qp_status s = p->gen ? qp_plan_add_generated(job->plans[f], &t, p->gen, job, ly->err)
                                 : qp_plan_add_pieces(job->plans[f], &t, p->rows_per_piece, p->pieces, p->n_pieces,
                                                      ly->err);
            if (s != QP_OK)
                return s;
            job->specs[f][j] = p->spec;
            p->spec = NULL;
            job->classes[f][j] = p->cls;
            j++;
        }
    }
    return QP_OK;
}

qp_status omni_layout(qp_omni_job *job, qp_err *err)
{
    size_t n_src = qp_st_count(job->st);
    job->owner = malloc((n_src ? n_src : 1) * sizeof *job->owner);
    rulebook *book = calloc(1, sizeof *book);
    layout ly;
    memset(&ly, 0, sizeof ly);
    ly.job = job;
    ly.book = book;
    ly.err = err;
    ly.L = job->cfg.talker.num_hidden_layers;
    ly.E = job->cfg.talker.num_experts > 0 ? job->cfg.talker.num_experts : 1;
    ly.experts = calloc((size_t)(ly.L * 3 * ly.E), sizeof *ly.experts);
    ly.fused = calloc((size_t)(ly.L * 2), sizeof *ly.fused);
    qp_status s = QP_OK;
    if (!job->owner || !book || !ly.experts || !ly.fused) {
        s = qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n_src; i++)
        job->owner[i] = -1;
    build_rules(&job->cfg, book);
    /* Classify first, so an unknown top-level name fails before any work. */
    for (size_t i = 0; i < n_src && s == QP_OK; i++)
        if (qp_omni_component_of(qp_st_at(job->st, i)->name) < 0)
            s = unrecognised(job->st, qp_st_at(job->st, i), err);
    if (s == QP_OK)
        s = build_thinker(job, err);
    for (size_t i = 0; i < n_src && s == QP_OK; i++) {
        const qp_st_tensor *t = qp_st_at(job->st, i);
        if (qp_omni_component_of(t->name) != QP_OMNI_THINKER_TEXT)
            s = place(&ly, t);
    }
    if (s == QP_OK)
        s = check_required(&ly);
    if (s == QP_OK)
        s = stack_experts(&ly);
    if (s == QP_OK)
        s = add_generated(&ly);
    if (s == QP_OK)
        s = build_custom(&ly);
    /* The promise of the issue: every source tensor in exactly one file. */
    for (size_t i = 0; i < n_src && s == QP_OK; i++)
        if (job->owner[i] < 0) {
            const qp_st_tensor *t = qp_st_at(job->st, i);
            s = qp_err_set(err, QP_ERR_UNSUPPORTED, qp_st_file_path(job->st, t->file_index),
                           "tensor was not placed in any output file (nothing is dropped silently)");
            qp_err_set_tensor(err, t->name);
        }
done:
    pending_free(&ly.out);
    free(ly.experts);
    free(ly.fused);
    free(book);
    return s;
}
