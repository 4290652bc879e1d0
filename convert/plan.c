/* plan.c - map a Qwen3 / Qwen3-MoE checkpoint onto llama.cpp's tensors.
 *
 * Each HF tensor name is parsed once into (layer, role, expert); every
 * source tensor must land in exactly one plan tensor, and every plan tensor
 * must be complete, with shapes that agree with config.json. */
#include "convert/plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/qp_ggml_types.h"
#include "quant/qtype.h"

/* One contiguous run of rows in a source tensor. Stacked experts have one
 * piece per expert; everything else has a single piece. */
typedef struct {
    const qp_st_tensor *src;
    int64_t src_row0;               /* first source row this piece uses */
    const qp_st_tensor *scale_inv;  /* FP8 block scales, or NULL */
    const qp_gguf_tensor *gt;       /* GGUF source instead of safetensors */
} piece;

typedef struct {
    qp_plan_tensor info;
    int64_t rows_per_piece;
    int64_t n_pieces;
    piece *pieces;
    qp_plan_gen_fn gen;             /* computed rows (no source), else NULL */
    const void *gen_ctx;
} plan_entry;

struct qp_plan {
    const qp_gguf *gguf;        /* set when the plan reads a GGUF file */
    const qp_st_model *st;
    const qp_hf_config *cfg;
    int64_t n;
    int64_t cap;                /* entries allocated in e (custom plans) */
    plan_entry *e;
    int64_t fp8_block[2];
};

/* ------------------------------------------------------------ name parsing */

typedef enum { SRC_PLAIN, SRC_EXPERT, SRC_FUSED_GATE_UP, SRC_FUSED_DOWN, SRC_FP8_SCALE } src_kind;

typedef struct {
    qp_tensor_role role;
    int layer;
    int64_t expert;
    src_kind kind;
} parsed_name;

static const struct {
    const char *hf;    /* suffix after "model.layers.N." */
    qp_tensor_role role;
} LAYER_SUFFIXES[] = {
    {"input_layernorm.weight", QP_ROLE_ATTN_NORM},
    {"post_attention_layernorm.weight", QP_ROLE_FFN_NORM},
    {"self_attn.q_proj.weight", QP_ROLE_ATTN_Q},
    {"self_attn.k_proj.weight", QP_ROLE_ATTN_K},
    {"self_attn.v_proj.weight", QP_ROLE_ATTN_V},
    {"self_attn.o_proj.weight", QP_ROLE_ATTN_OUTPUT},
    {"self_attn.q_norm.weight", QP_ROLE_ATTN_Q_NORM},
    {"self_attn.k_norm.weight", QP_ROLE_ATTN_K_NORM},
    {"mlp.gate_proj.weight", QP_ROLE_FFN_GATE},
    {"mlp.up_proj.weight", QP_ROLE_FFN_UP},
    {"mlp.down_proj.weight", QP_ROLE_FFN_DOWN},
    {"mlp.gate.weight", QP_ROLE_FFN_GATE_INP},
};

static const struct {
    qp_tensor_role role;
    const char *gguf; /* printf pattern with the layer number, or a fixed name */
} GGUF_NAMES[QP_ROLE_COUNT] = {
    [QP_ROLE_TOKEN_EMBD] = {QP_ROLE_TOKEN_EMBD, "token_embd.weight"},
    [QP_ROLE_OUTPUT] = {QP_ROLE_OUTPUT, "output.weight"},
    [QP_ROLE_OUTPUT_NORM] = {QP_ROLE_OUTPUT_NORM, "output_norm.weight"},
    [QP_ROLE_ATTN_NORM] = {QP_ROLE_ATTN_NORM, "blk.%d.attn_norm.weight"},
    [QP_ROLE_ATTN_Q] = {QP_ROLE_ATTN_Q, "blk.%d.attn_q.weight"},
    [QP_ROLE_ATTN_K] = {QP_ROLE_ATTN_K, "blk.%d.attn_k.weight"},
    [QP_ROLE_ATTN_V] = {QP_ROLE_ATTN_V, "blk.%d.attn_v.weight"},
    [QP_ROLE_ATTN_OUTPUT] = {QP_ROLE_ATTN_OUTPUT, "blk.%d.attn_output.weight"},
    [QP_ROLE_ATTN_Q_NORM] = {QP_ROLE_ATTN_Q_NORM, "blk.%d.attn_q_norm.weight"},
    [QP_ROLE_ATTN_K_NORM] = {QP_ROLE_ATTN_K_NORM, "blk.%d.attn_k_norm.weight"},
    [QP_ROLE_FFN_NORM] = {QP_ROLE_FFN_NORM, "blk.%d.ffn_norm.weight"},
    [QP_ROLE_FFN_GATE] = {QP_ROLE_FFN_GATE, "blk.%d.ffn_gate.weight"},
    [QP_ROLE_FFN_UP] = {QP_ROLE_FFN_UP, "blk.%d.ffn_up.weight"},
    [QP_ROLE_FFN_DOWN] = {QP_ROLE_FFN_DOWN, "blk.%d.ffn_down.weight"},
    [QP_ROLE_FFN_GATE_INP] = {QP_ROLE_FFN_GATE_INP, "blk.%d.ffn_gate_inp.weight"},
    [QP_ROLE_FFN_GATE_EXPS] = {QP_ROLE_FFN_GATE_EXPS, "blk.%d.ffn_gate_exps.weight"},
    [QP_ROLE_FFN_UP_EXPS] = {QP_ROLE_FFN_UP_EXPS, "blk.%d.ffn_up_exps.weight"},
    [QP_ROLE_FFN_DOWN_EXPS] = {QP_ROLE_FFN_DOWN_EXPS, "blk.%d.ffn_down_exps.weight"},
};

/* Parse an unsigned decimal at *p (no sign, no leading '+'), advance p. */
static int parse_index(const char **p, int64_t limit, int64_t *out)
{
    const char *s = *p;
    int64_t v = 0;
    if (*s < '0' || *s > '9')
        return 0;
    while (*s >= '0' && *s <= '9') {
        v = v * 10 + (*s - '0');
        if (v >= limit)
            return 0;
        s++;
    }
    if (*s != '.')
        return 0;
    *p = s + 1;
    *out = v;
    return 1;
}

static int parse_hf_name(const char *name, parsed_name *pn)
{
    pn->layer = -1;
    pn->expert = -1;
    pn->kind = SRC_PLAIN;
    size_t len = strlen(name);
    static const char SCALE_SUFFIX[] = "_scale_inv";
    char base[512];
    if (len >= sizeof base)
        return 0;
    memcpy(base, name, len + 1);
    if (len > sizeof SCALE_SUFFIX - 1 && strcmp(name + len - (sizeof SCALE_SUFFIX - 1), SCALE_SUFFIX) == 0) {
        base[len - (sizeof SCALE_SUFFIX - 1)] = '\0';
        pn->kind = SRC_FP8_SCALE; /* role/layer of the weight it scales */
    }
    if (strcmp(base, "model.embed_tokens.weight") == 0) {
        pn->role = QP_ROLE_TOKEN_EMBD;
        return 1;
    }
    if (strcmp(base, "model.norm.weight") == 0) {
        pn->role = QP_ROLE_OUTPUT_NORM;
        return 1;
    }
    if (strcmp(base, "lm_head.weight") == 0) {
        pn->role = QP_ROLE_OUTPUT;
        return 1;
    }
    const char *p = base;
    static const char LAYERS[] = "model.layers.";
    if (strncmp(p, LAYERS, sizeof LAYERS - 1) != 0)
        return 0;
    p += sizeof LAYERS - 1;
    int64_t layer;
    if (!parse_index(&p, 1 << 20, &layer))
        return 0;
    pn->layer = (int)layer;
    for (size_t i = 0; i < sizeof LAYER_SUFFIXES / sizeof LAYER_SUFFIXES[0]; i++)
        if (strcmp(p, LAYER_SUFFIXES[i].hf) == 0) {
            pn->role = LAYER_SUFFIXES[i].role;
            return 1;
        }
    static const char EXPERTS[] = "mlp.experts.";
    if (strncmp(p, EXPERTS, sizeof EXPERTS - 1) != 0)
        return 0;
    p += sizeof EXPERTS - 1;
    /* Fused forms (transformers 5): mlp.experts.gate_up_proj / down_proj. */
    if (pn->kind == SRC_PLAIN && strcmp(p, "gate_up_proj") == 0) {
        pn->role = QP_ROLE_FFN_GATE_EXPS;
        pn->kind = SRC_FUSED_GATE_UP;
        return 1;
    }
    if (pn->kind == SRC_PLAIN && strcmp(p, "down_proj") == 0) {
        pn->role = QP_ROLE_FFN_DOWN_EXPS;
        pn->kind = SRC_FUSED_DOWN;
        return 1;
    }
    int64_t expert;
    if (!parse_index(&p, 1 << 24, &expert))
        return 0;
    pn->expert = expert;
    if (pn->kind == SRC_PLAIN)
        pn->kind = SRC_EXPERT;
    if (strcmp(p, "gate_proj.weight") == 0)
        pn->role = QP_ROLE_FFN_GATE_EXPS;
    else if (strcmp(p, "up_proj.weight") == 0)
        pn->role = QP_ROLE_FFN_UP_EXPS;
    else if (strcmp(p, "down_proj.weight") == 0)
        pn->role = QP_ROLE_FFN_DOWN_EXPS;
    else
        return 0;
    return 1;
}

/* ------------------------------------------------------------ building */

typedef struct {
    const qp_st_tensor *plain[QP_ROLE_COUNT]; /* non-expert source per role */
    const qp_st_tensor *plain_scale[QP_ROLE_COUNT];
    const qp_st_tensor **experts[3];          /* [n_expert] per-expert gate/up/down */
    const qp_st_tensor **expert_scales[3];
    const qp_st_tensor *fused_gate_up, *fused_down;
    int is_moe;
} layer_sources;

static int expert_slot(qp_tensor_role r)
{
    return r == QP_ROLE_FFN_GATE_EXPS ? 0 : r == QP_ROLE_FFN_UP_EXPS ? 1 : 2;
}

static uint32_t ggml_of_st(qp_st_dtype dt)
{
    switch (dt) {
    case QP_ST_F32: return QP_GGML_F32;
    case QP_ST_F16: return QP_GGML_F16;
    case QP_ST_BF16: return QP_GGML_BF16;
    default: return QP_GGML_TYPE_LIMIT; /* F64/FP8 sources go through f32 */
    }
}

static int layer_is_moe(const qp_hf_config *c, int layer)
{
    if (c->num_experts <= 0)
        return 0;
    for (int64_t i = 0; i < c->n_mlp_only_layers; i++)
        if (c->mlp_only_layers[i] == layer)
            return 0;
    int64_t step = c->decoder_sparse_step > 0 ? c->decoder_sparse_step : 1;
    return (layer + 1) % step == 0;
}

typedef struct {
    qp_plan *p;
    const char *path;      /* checkpoint dir/file, for messages */
    qp_err *err;
} build_ctx;

static qp_status shape_error(build_ctx *b, const qp_st_tensor *t, const char *what, int64_t d0, int64_t d1)
{
    char shape[96] = "";
    size_t n = 0;
    for (int i = 0; i < t->n_dims && n < sizeof shape - 24; i++)
        n += (size_t)snprintf(shape + n, sizeof shape - n, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    qp_status s;
    if (d1 >= 0)
        s = qp_err_set(b->err, QP_ERR_BAD_INPUT, b->path, "tensor has shape [%s], config implies %s%s[%lld, %lld]",
                       shape, what, what[0] ? " " : "", (long long)d0, (long long)d1);
    else
        s = qp_err_set(b->err, QP_ERR_BAD_INPUT, b->path, "tensor has shape [%s], config implies %s%s[%lld]", shape,
                       what, what[0] ? " " : "", (long long)d0);
    qp_err_set_tensor(b->err, t->name);
    return s;
}

static qp_status expect_shape(build_ctx *b, const qp_st_tensor *t, int64_t d0, int64_t d1)
{
    if (d1 < 0) {
        if (t->n_dims != 1 || t->shape[0] != d0)
            return shape_error(b, t, "", d0, -1);
    } else if (t->n_dims != 2 || t->shape[0] != d0 || t->shape[1] != d1) {
        return shape_error(b, t, "", d0, d1);
    }
    if (!qp_st_dtype_is_float(t->dtype)) {
        qp_err_set(b->err, QP_ERR_BAD_INPUT, b->path, "tensor has dtype %s, expected a float type",
                   qp_st_dtype_name(t->dtype));
        qp_err_set_tensor(b->err, t->name);
        return QP_ERR_BAD_INPUT;
    }
    return QP_OK;
}

static plan_entry *add_entry(qp_plan *p, qp_tensor_role role, int layer, int64_t row_len, int64_t rows,
                             int64_t n_expert, int64_t n_pieces)
{
    plan_entry *e = &p->e[p->n++];
    memset(e, 0, sizeof *e);
    qp_plan_tensor *t = &e->info;
    if (layer >= 0)
        snprintf(t->name, sizeof t->name, GGUF_NAMES[role].gguf, layer);
    else
        snprintf(t->name, sizeof t->name, "%s", GGUF_NAMES[role].gguf);
    t->role = role;
    t->layer = layer;
    t->row_len = row_len;
    t->n_expert = n_expert;
    t->n_rows = rows * n_expert;
    t->ne[0] = row_len;
    t->ne[1] = rows;
    t->ne[2] = n_expert;
    t->ne[3] = 1;
    t->n_dims = n_expert > 1 ? 3 : (rows > 1 ? 2 : 1);
    if (t->n_dims == 1)
        t->ne[1] = 1;
    t->keep_f32 = role == QP_ROLE_ATTN_NORM || role == QP_ROLE_FFN_NORM || role == QP_ROLE_OUTPUT_NORM ||
                  role == QP_ROLE_ATTN_Q_NORM || role == QP_ROLE_ATTN_K_NORM || role == QP_ROLE_FFN_GATE_INP;
    e->rows_per_piece = rows;
    e->n_pieces = n_pieces;
    e->pieces = calloc((size_t)n_pieces, sizeof *e->pieces);
    return e->pieces ? e : NULL;
}

/* source_dtype is the ggml type the rows can be copied as byte for byte, or
 * QP_GGML_TYPE_LIMIT when they must go through f32 (FP8, F64, mixed). */
static void finish_entry(plan_entry *e)
{
    uint32_t dt = QP_GGML_TYPE_LIMIT;
    uint64_t bytes = 0;
    for (int64_t i = 0; i < e->n_pieces; i++) {
        const qp_st_tensor *s = e->pieces[i].src;
        uint32_t this_dt = e->pieces[i].scale_inv ? QP_GGML_TYPE_LIMIT : ggml_of_st(s->dtype);
        if (i == 0)
            dt = this_dt;
        else if (this_dt != dt)
            dt = QP_GGML_TYPE_LIMIT;
        bytes += (uint64_t)(e->rows_per_piece * e->info.row_len) * qp_st_dtype_size(s->dtype);
    }
    e->info.source_dtype = dt;
    e->info.source_bytes = bytes;
}

/* Add a single-piece plan tensor for `role` in `layer` from `src`
 * (checked against the shape [rows, row_len], or [row_len] for vectors). */
static qp_status add_plain(build_ctx *b, qp_tensor_role role, int layer, const qp_st_tensor *src,
                           const qp_st_tensor *scale, int64_t rows, int64_t row_len)
{
    qp_status s = expect_shape(b, src, rows > 0 ? rows : row_len, rows > 0 ? row_len : -1);
    if (s != QP_OK)
        return s;
    plan_entry *e = add_entry(b->p, role, layer, row_len, rows > 0 ? rows : 1, 1, 1);
    if (!e)
        return qp_err_set(b->err, QP_ERR_NOMEM, b->path, "out of memory building the plan");
    e->pieces[0].src = src;
    e->pieces[0].scale_inv = scale;
    finish_entry(e);
    return QP_OK;
}

static qp_status missing(build_ctx *b, const char *what, int layer, int64_t expert)
{
    if (expert >= 0)
        return qp_err_set(b->err, QP_ERR_BAD_INPUT, b->path, "checkpoint lacks %s of layer %d expert %lld", what,
                          layer, (long long)expert);
    if (layer >= 0)
        return qp_err_set(b->err, QP_ERR_BAD_INPUT, b->path, "checkpoint lacks %s of layer %d", what, layer);
    return qp_err_set(b->err, QP_ERR_BAD_INPUT, b->path, "checkpoint lacks %s", what);
}

static const char *role_hf_name(qp_tensor_role r)
{
    for (size_t i = 0; i < sizeof LAYER_SUFFIXES / sizeof LAYER_SUFFIXES[0]; i++)
        if (LAYER_SUFFIXES[i].role == r)
            return LAYER_SUFFIXES[i].hf;
    switch (r) {
    case QP_ROLE_FFN_GATE_EXPS: return "mlp.experts.*.gate_proj.weight";
    case QP_ROLE_FFN_UP_EXPS: return "mlp.experts.*.up_proj.weight";
    case QP_ROLE_FFN_DOWN_EXPS: return "mlp.experts.*.down_proj.weight";
    default: return "?";
    }
}

static qp_status add_layer(build_ctx *b, int layer, layer_sources *ls)
{
    const qp_hf_config *c = b->p->cfg;
    int64_t H = c->hidden_size, D = c->head_dim;
    int64_t q_rows = c->num_attention_heads * D, kv_rows = c->num_key_value_heads * D;
    static const qp_tensor_role attn_roles[] = {QP_ROLE_ATTN_NORM, QP_ROLE_ATTN_Q, QP_ROLE_ATTN_Q_NORM,
                                                QP_ROLE_ATTN_K, QP_ROLE_ATTN_K_NORM, QP_ROLE_ATTN_V,
                                                QP_ROLE_ATTN_OUTPUT, QP_ROLE_FFN_NORM};
    for (size_t i = 0; i < sizeof attn_roles / sizeof attn_roles[0]; i++) {
        qp_tensor_role r = attn_roles[i];
        const qp_st_tensor *src = ls->plain[r];
        if (!src)
            return missing(b, role_hf_name(r), layer, -1);
        int64_t rows, len;
        switch (r) {
        case QP_ROLE_ATTN_Q: rows = q_rows; len = H; break;
        case QP_ROLE_ATTN_K:
        case QP_ROLE_ATTN_V: rows = kv_rows; len = H; break;
        case QP_ROLE_ATTN_OUTPUT: rows = H; len = q_rows; break;
        case QP_ROLE_ATTN_Q_NORM:
        case QP_ROLE_ATTN_K_NORM: rows = 0; len = D; break;
        default: rows = 0; len = H; break;
        }
        qp_status s = add_plain(b, r, layer, src, ls->plain_scale[r], rows, len);
        if (s != QP_OK)
            return s;
    }
    if (!ls->is_moe) {
        int64_t I = c->intermediate_size;
        static const qp_tensor_role ffn[] = {QP_ROLE_FFN_GATE, QP_ROLE_FFN_UP, QP_ROLE_FFN_DOWN};
        for (int i = 0; i < 3; i++) {
            const qp_st_tensor *src = ls->plain[ffn[i]];
            if (!src)
                return missing(b, role_hf_name(ffn[i]), layer, -1);
            qp_status s = add_plain(b, ffn[i], layer, src, ls->plain_scale[ffn[i]], ffn[i] == QP_ROLE_FFN_DOWN ? H : I,
                                    ffn[i] == QP_ROLE_FFN_DOWN ? I : H);
            if (s != QP_OK)
                return s;
        }
        return QP_OK;
    }
    int64_t E = c->num_experts, I = c->moe_intermediate_size;
    if (!ls->plain[QP_ROLE_FFN_GATE_INP])
        return missing(b, "mlp.gate.weight (router)", layer, -1);
    qp_status s = add_plain(b, QP_ROLE_FFN_GATE_INP, layer, ls->plain[QP_ROLE_FFN_GATE_INP], NULL, E, H);
    if (s != QP_OK)
        return s;
    static const qp_tensor_role exps[] = {QP_ROLE_FFN_GATE_EXPS, QP_ROLE_FFN_UP_EXPS, QP_ROLE_FFN_DOWN_EXPS};
    for (int k = 0; k < 3; k++) {
        qp_tensor_role r = exps[k];
        int down = r == QP_ROLE_FFN_DOWN_EXPS;
        int64_t rows = down ? H : I, len = down ? I : H;
        plan_entry *e = add_entry(b->p, r, layer, len, rows, E, E);
        if (!e)
            return qp_err_set(b->err, QP_ERR_NOMEM, b->path, "out of memory building the plan");
        const qp_st_tensor *fused = down ? ls->fused_down : ls->fused_gate_up;
        for (int64_t x = 0; x < E; x++) {
            const qp_st_tensor *src = ls->experts[expert_slot(r)] ? ls->experts[expert_slot(r)][x] : NULL;
            if (src && fused) {
                qp_err_set(b->err, QP_ERR_BAD_INPUT, b->path, "layer %d has both fused and per-expert %s", layer,
                           role_hf_name(r));
                qp_err_set_tensor(b->err, src->name);
                return QP_ERR_BAD_INPUT;
            }
            if (src) {
                if ((s = expect_shape(b, src, rows, len)) != QP_OK)
                    return s;
                e->pieces[x].src = src;
                e->pieces[x].scale_inv = ls->expert_scales[expert_slot(r)] ? ls->expert_scales[expert_slot(r)][x]
                                                                           : NULL;
            } else if (fused) {
                /* gate_up_proj is [E, 2I, H] with gate rows first; down_proj [E, H, I]. */
                int64_t per = down ? rows : 2 * rows;
                if (fused->n_dims != 3 || fused->shape[0] != E || fused->shape[1] != per || fused->shape[2] != len)
                    return shape_error(b, fused, "a fused expert tensor of", E * per, len);
                if (!qp_st_dtype_is_float(fused->dtype))
                    return shape_error(b, fused, "a float tensor", E * per, len);
                e->pieces[x].src = fused;
                e->pieces[x].src_row0 = x * per + (r == QP_ROLE_FFN_UP_EXPS ? rows : 0);
            } else {
                return missing(b, role_hf_name(r), layer, x);
            }
        }
        finish_entry(e);
    }
    return QP_OK;
}

static void free_layers(layer_sources *ls, int64_t n)
{
    if (!ls)
        return;
    for (int64_t i = 0; i < n; i++)
        for (int k = 0; k < 3; k++) {
            free(ls[i].experts[k]);
            free(ls[i].expert_scales[k]);
        }
    free(ls);
}

static qp_status duplicate(build_ctx *b, const qp_st_tensor *t)
{
    qp_err_set(b->err, QP_ERR_BAD_INPUT, b->path, "tensor maps to a slot that another tensor already fills");
    qp_err_set_tensor(b->err, t->name);
    return QP_ERR_BAD_INPUT;
}

static qp_status place_source(build_ctx *b, const qp_st_tensor *t, const char *name, layer_sources *layers,
                              const qp_st_tensor **top, const qp_st_tensor **top_scale)
{
    const qp_hf_config *c = b->p->cfg;
    parsed_name pn;
    if (!parse_hf_name(name, &pn)) {
        qp_err_set(b->err, QP_ERR_UNSUPPORTED, b->path, "unrecognised tensor name for %s (nothing is dropped "
                   "silently: tell us what it is)", c->architecture_name);
        qp_err_set_tensor(b->err, t->name);
        return QP_ERR_UNSUPPORTED;
    }
    int is_scale = pn.kind == SRC_FP8_SCALE;
    if (is_scale && !c->fp8) {
        qp_err_set(b->err, QP_ERR_BAD_INPUT, b->path, "FP8 scale tensor in a checkpoint whose config has no fp8 "
                   "quantization_config");
        qp_err_set_tensor(b->err, t->name);
        return QP_ERR_BAD_INPUT;
    }
    if (pn.layer < 0) {
        const qp_st_tensor **slot = is_scale ? &top_scale[pn.role] : &top[pn.role];
        if (*slot)
            return duplicate(b, t);
        *slot = t;
        return QP_OK;
    }
    if (pn.layer >= c->num_hidden_layers) {
        qp_err_set(b->err, QP_ERR_BAD_INPUT, b->path, "layer %d is past num_hidden_layers = %lld in config.json",
                   pn.layer, (long long)c->num_hidden_layers);
        qp_err_set_tensor(b->err, t->name);
        return QP_ERR_BAD_INPUT;
    }
    layer_sources *ls = &layers[pn.layer];
    if (pn.kind == SRC_FUSED_GATE_UP || pn.kind == SRC_FUSED_DOWN) {
        const qp_st_tensor **slot = pn.kind == SRC_FUSED_GATE_UP ? &ls->fused_gate_up : &ls->fused_down;
        if (!ls->is_moe)
            goto not_moe;
        if (*slot)
            return duplicate(b, t);
        *slot = t;
        return QP_OK;
    }
    if (pn.expert >= 0) {
        if (!ls->is_moe)
            goto not_moe;
        if (pn.expert >= c->num_experts) {
            qp_err_set(b->err, QP_ERR_BAD_INPUT, b->path, "expert %lld is past num_experts = %lld in config.json",
                       (long long)pn.expert, (long long)c->num_experts);
            qp_err_set_tensor(b->err, t->name);
            return QP_ERR_BAD_INPUT;
        }
        const qp_st_tensor ***arr = is_scale ? &ls->expert_scales[expert_slot(pn.role)] : &ls->experts[expert_slot(pn.role)];
        if (!*arr && !(*arr = calloc((size_t)c->num_experts, sizeof **arr)))
            return qp_err_set(b->err, QP_ERR_NOMEM, b->path, "out of memory building the plan");
        if ((*arr)[pn.expert])
            return duplicate(b, t);
        (*arr)[pn.expert] = t;
        return QP_OK;
    }
    if (pn.role == QP_ROLE_FFN_GATE_INP && !ls->is_moe)
        goto not_moe;
    if ((pn.role == QP_ROLE_FFN_GATE || pn.role == QP_ROLE_FFN_UP || pn.role == QP_ROLE_FFN_DOWN) && ls->is_moe) {
        qp_err_set(b->err, QP_ERR_BAD_INPUT, b->path, "dense MLP tensor in layer %d, which config.json makes a "
                   "MoE layer", pn.layer);
        qp_err_set_tensor(b->err, t->name);
        return QP_ERR_BAD_INPUT;
    }
    {
        const qp_st_tensor **slot = is_scale ? &ls->plain_scale[pn.role] : &ls->plain[pn.role];
        if (*slot)
            return duplicate(b, t);
        *slot = t;
    }
    return QP_OK;
not_moe:
    qp_err_set(b->err, QP_ERR_BAD_INPUT, b->path, "expert tensor in layer %d, which config.json makes a dense layer",
               pn.layer);
    qp_err_set_tensor(b->err, t->name);
    return QP_ERR_BAD_INPUT;
}

/* The HF name as parse_hf_name sees it: without the options' prefix. NULL
 * when the tensor belongs to another component the caller maps itself. */
static const char *text_model_name(const qp_plan_options *o, const char *name)
{
    const char *pre = o && o->hf_prefix ? o->hf_prefix : "";
    size_t n = strlen(pre);
    if (strncmp(name, pre, n) != 0)
        return o && o->skip_other_components ? NULL : name;
    const char *rest = name + n;
    if (o && o->skip_other_components && strncmp(rest, "model.", 6) != 0 && strncmp(rest, "lm_head.", 8) != 0)
        return NULL;
    return rest;
}

qp_status qp_plan_build(const qp_st_model *st, const qp_hf_config *cfg, qp_plan **out, qp_err *err)
{
    return qp_plan_build_ex(NULL, st, cfg, out, err);
}

qp_status qp_plan_build_ex(const qp_plan_options *opt, const qp_st_model *st, const qp_hf_config *cfg, qp_plan **out,
                           qp_err *err)
{
    *out = NULL;
    const char *path = qp_st_file_count(st) ? qp_st_file_path(st, 0) : "checkpoint";
    /* Qwen3-Omni's thinker text model is a Qwen3-MoE (llama.cpp: qwen3vlmoe). */
    if (cfg->arch != QP_ARCH_QWEN3 && cfg->arch != QP_ARCH_QWEN3_MOE && cfg->arch != QP_ARCH_QWEN3_OMNI)
        return qp_err_set(err, QP_ERR_UNSUPPORTED, path, "architecture %s is not handled by the Qwen3 text plan",
                          cfg->architecture_name);
    int64_t L = cfg->num_hidden_layers;
    if (L <= 0 || L > (1 << 20) || cfg->hidden_size <= 0 || cfg->head_dim <= 0 || cfg->vocab_size <= 0)
        return qp_err_set(err, QP_ERR_BAD_INPUT, path, "config.json has invalid sizes");
    qp_plan *p = calloc(1, sizeof *p);
    layer_sources *layers = calloc((size_t)L, sizeof *layers);
    /* At most: 3 top-level + per layer 8 attention/norm + router + 3 FFN. */
    int64_t cap = 3 + L * 12;
    if (p) {
        p->e = calloc((size_t)cap, sizeof *p->e);
        p->cap = cap;
    }
    if (!p || !layers || !p->e) {
        free_layers(layers, L);
        qp_plan_free(p);
        return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory building the plan");
    }
    p->st = st;
    p->cfg = cfg;
    build_ctx b = {p, path, err};
    for (int64_t l = 0; l < L; l++)
        layers[l].is_moe = layer_is_moe(cfg, (int)l);
    const qp_st_tensor *top[QP_ROLE_COUNT] = {0}, *top_scale[QP_ROLE_COUNT] = {0};
    qp_status s = QP_OK;
    for (size_t i = 0; i < qp_st_count(st) && s == QP_OK; i++) {
        const qp_st_tensor *t = qp_st_at(st, i);
        b.path = qp_st_file_path(st, t->file_index);
        const char *name = text_model_name(opt, t->name);
        if (name)
            s = place_source(&b, t, name, layers, top, top_scale);
    }
    b.path = path;
    int64_t H = cfg->hidden_size, V = cfg->vocab_size;
    if (s == QP_OK) {
        if (!top[QP_ROLE_TOKEN_EMBD])
            s = missing(&b, "model.embed_tokens.weight", -1, -1);
        else
            s = add_plain(&b, QP_ROLE_TOKEN_EMBD, -1, top[QP_ROLE_TOKEN_EMBD], top_scale[QP_ROLE_TOKEN_EMBD], V, H);
    }
    for (int64_t l = 0; l < L && s == QP_OK; l++)
        s = add_layer(&b, (int)l, &layers[l]);
    if (s == QP_OK) {
        if (!top[QP_ROLE_OUTPUT_NORM])
            s = missing(&b, "model.norm.weight", -1, -1);
        else
            s = add_plain(&b, QP_ROLE_OUTPUT_NORM, -1, top[QP_ROLE_OUTPUT_NORM], NULL, 0, H);
    }
    if (s == QP_OK) {
        if (top[QP_ROLE_OUTPUT])
            s = add_plain(&b, QP_ROLE_OUTPUT, -1, top[QP_ROLE_OUTPUT], top_scale[QP_ROLE_OUTPUT], V, H);
        else if (!cfg->tie_word_embeddings)
            s = missing(&b, "lm_head.weight (tie_word_embeddings is false)", -1, -1);
    }
    /* An FP8 weight needs its scales, and a scale needs its weight. */
    for (int64_t i = 0; i < p->n && s == QP_OK; i++)
        for (int64_t k = 0; k < p->e[i].n_pieces; k++) {
            piece *pc = &p->e[i].pieces[k];
            int fp8 = pc->src->dtype == QP_ST_F8_E4M3 || pc->src->dtype == QP_ST_F8_E5M2;
            if (fp8 && !pc->scale_inv) {
                s = qp_err_set(err, QP_ERR_BAD_INPUT, qp_st_file_path(st, pc->src->file_index),
                               "FP8 weight without its weight_scale_inv tensor");
                qp_err_set_tensor(err, pc->src->name);
            }
        }
    free_layers(layers, L);
    if (s != QP_OK) {
        qp_plan_free(p);
        return s;
    }
    p->fp8_block[0] = cfg->fp8_block[0] > 0 ? cfg->fp8_block[0] : 128;
    p->fp8_block[1] = cfg->fp8_block[1] > 0 ? cfg->fp8_block[1] : 128;
    *out = p;
    return QP_OK;
}

void qp_plan_free(qp_plan *p)
{
    if (!p)
        return;
    for (int64_t i = 0; i < p->n; i++)
        free(p->e[i].pieces);
    free(p->e);
    free(p);
}

int64_t qp_plan_count(const qp_plan *p) { return p->n; }

const qp_plan_tensor *qp_plan_at(const qp_plan *p, int64_t i)
{
    return i >= 0 && i < p->n ? &p->e[i].info : NULL;
}

int64_t qp_plan_find(const qp_plan *p, const char *gguf_name)
{
    for (int64_t i = 0; i < p->n; i++)
        if (strcmp(p->e[i].info.name, gguf_name) == 0)
            return i;
    return -1;
}

const qp_st_model *qp_plan_source(const qp_plan *p) { return p->st; }
const qp_gguf *qp_plan_gguf(const qp_plan *p) { return p->gguf; }
const qp_hf_config *qp_plan_config(const qp_plan *p) { return p->cfg; }

/* ------------------------------------------------------------ reading rows */

/* Multiply FP8 rows by their block scales: scale_inv has one entry per
 * (bs0 x bs1) block of the weight; edge blocks may be partial. A 3-D weight
 * [E, rows, cols] (fused experts) has scales [E, row blocks, col blocks].
 * src_row counts rows of the whole source tensor (E * rows for 3-D). The
 * scale tensor is checked here, where it is used, because any float dtype
 * (F32, BF16, F16) will do and only the weight's shape says what to expect. */
static qp_status apply_fp8_scales(const qp_plan *p, const piece *pc, int64_t src_row0, int64_t n, int64_t row_len,
                                  float *dst, qp_err *err)
{
    const qp_st_tensor *sc = pc->scale_inv;
    const char *sc_path = qp_st_file_path(p->st, sc->file_index);
    int64_t b0 = p->fp8_block[0], b1 = p->fp8_block[1];
    int fused = pc->src->n_dims == 3;
    int64_t mats = fused ? pc->src->shape[0] : 1, rows_per_mat = fused ? pc->src->shape[1] : pc->src->shape[0];
    int64_t sr = (rows_per_mat + b0 - 1) / b0, scol = (row_len + b1 - 1) / b1;
    if (!qp_st_dtype_is_float(sc->dtype) || sc->dtype == QP_ST_F8_E4M3 || sc->dtype == QP_ST_F8_E5M2) {
        qp_err_set(err, QP_ERR_BAD_INPUT, sc_path, "FP8 scale tensor %s has dtype %s; expected F32, BF16 or F16",
                   sc->name, qp_st_dtype_name(sc->dtype));
        qp_err_set_tensor(err, sc->name);
        return QP_ERR_BAD_INPUT;
    }
    if (sc->n_dims != (fused ? 3 : 2) || (fused && sc->shape[0] != mats) || sc->shape[fused] != sr ||
        sc->shape[fused + 1] != scol) {
        char want[64];
        if (fused)
            snprintf(want, sizeof want, "[%lld, %lld, %lld]", (long long)mats, (long long)sr, (long long)scol);
        else
            snprintf(want, sizeof want, "[%lld, %lld]", (long long)sr, (long long)scol);
        qp_err_set(err, QP_ERR_BAD_INPUT, sc_path, "FP8 scale tensor %s should have shape %s (%lldx%lld blocks of "
                   "its weight)", sc->name, want, (long long)b0, (long long)b1);
        qp_err_set_tensor(err, sc->name);
        return QP_ERR_BAD_INPUT;
    }
    float *row_scales = malloc((size_t)scol * sizeof(float));
    if (!row_scales)
        return qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory");
    int64_t cur_block = -1;
    for (int64_t r = 0; r < n; r++) {
        int64_t row = src_row0 + r, mat = row / rows_per_mat;
        int64_t blk = mat * sr + (row % rows_per_mat) / b0; /* row of the scale grid, all matrices stacked */
        if (blk != cur_block) {
            qp_status s = qp_st_read_f32(p->st, sc, (uint64_t)(blk * scol), (uint64_t)scol, row_scales, err);
            if (s != QP_OK) {
                free(row_scales);
                return s;
            }
            cur_block = blk;
        }
        float *out = dst + r * row_len;
        for (int64_t cb = 0; cb < scol; cb++) { /* per block: no division per element */
            float s = row_scales[cb];
            int64_t c1 = (cb + 1) * b1 < row_len ? (cb + 1) * b1 : row_len;
            for (int64_t c = cb * b1; c < c1; c++)
                out[c] *= s;
        }
    }
    free(row_scales);
    return QP_OK;
}

typedef qp_status (*read_run_fn)(const qp_plan *p, const piece *pc, int64_t src_row, int64_t n, int64_t row_len,
                                 void *dst, qp_err *err);

/* Rows of a GGUF tensor, dequantized through the block-type table. */
static qp_status read_gguf_f32(const qp_plan *p, const piece *pc, int64_t src_row, int64_t n, int64_t row_len,
                               float *dst, qp_err *err)
{
    const qp_qtype *qt = qp_qtype_get(pc->gt->type);
    if (!qt || !qt->dequantize_row)
        return qp_err_set(err, QP_ERR_UNSUPPORTED, qp_gguf_path(p->gguf), "cannot read tensors of type %s",
                          qp_ggml_type_name(pc->gt->type));
    uint64_t rb = qp_qtype_row_bytes(pc->gt->type, row_len);
    const unsigned char *base = (const unsigned char *)pc->gt->data + (uint64_t)src_row * rb;
    for (int64_t r = 0; r < n; r++)
        qt->dequantize_row(base + (uint64_t)r * rb, dst + r * row_len, row_len);
    return QP_OK;
}

static qp_status read_run_f32(const qp_plan *p, const piece *pc, int64_t src_row, int64_t n, int64_t row_len,
                              void *dst, qp_err *err)
{
    if (pc->gt)
        return read_gguf_f32(p, pc, src_row, n, row_len, dst, err);
    qp_status s = qp_st_read_f32(p->st, pc->src, (uint64_t)(src_row * row_len), (uint64_t)(n * row_len), dst, err);
    if (s == QP_OK && pc->scale_inv)
        s = apply_fp8_scales(p, pc, src_row, n, row_len, dst, err);
    return s;
}

static qp_status read_run_raw(const qp_plan *p, const piece *pc, int64_t src_row, int64_t n, int64_t row_len,
                              void *dst, qp_err *err)
{
    if (pc->gt) {
        uint64_t rb = qp_qtype_row_bytes(pc->gt->type, row_len);
        memcpy(dst, (const unsigned char *)pc->gt->data + (uint64_t)src_row * rb, (size_t)((uint64_t)n * rb));
        (void)err;
        return QP_OK;
    }
    uint64_t es = qp_st_dtype_size(pc->src->dtype);
    return qp_st_read_raw(p->st, pc->src, (uint64_t)(src_row * row_len) * es, dst,
                          (size_t)((uint64_t)(n * row_len) * es), err);
}

static qp_status read_rows(const qp_plan *p, int64_t i, int64_t row0, int64_t n, void *dst, size_t elem_size,
                           read_run_fn fn, qp_err *err)
{
    if (i < 0 || i >= p->n)
        return qp_err_set(err, QP_ERR_USAGE, NULL, "plan tensor index %lld out of range", (long long)i);
    const plan_entry *e = &p->e[i];
    if (row0 < 0 || n < 0 || row0 + n > e->info.n_rows)
        return qp_err_set(err, QP_ERR_USAGE, NULL, "rows %lld..%lld out of range of %s", (long long)row0,
                          (long long)(row0 + n), e->info.name);
    int64_t len = e->info.row_len;
    if (e->gen) {
        if (fn != read_run_f32)
            return qp_err_set(err, QP_ERR_UNSUPPORTED, NULL, "%s is computed, it has no source bytes", e->info.name);
        e->gen(e->gen_ctx, row0, n, len, dst);
        return QP_OK;
    }
    char *out = dst;
    while (n > 0) {
        int64_t k = row0 / e->rows_per_piece, local = row0 % e->rows_per_piece;
        int64_t run = e->rows_per_piece - local;
        if (run > n)
            run = n;
        const piece *pc = &e->pieces[k];
        qp_status s = fn(p, pc, pc->src_row0 + local, run, len, out, err);
        if (s != QP_OK) {
            qp_err_set_tensor(err, pc->src ? pc->src->name : e->info.name);
            return s;
        }
        out += pc->gt && elem_size == 1 ? (size_t)((uint64_t)run * qp_qtype_row_bytes(pc->gt->type, len))
                                        : (size_t)(run * len) * elem_size;
        row0 += run;
        n -= run;
    }
    return QP_OK;
}

qp_status qp_plan_read_rows(const qp_plan *p, int64_t i, int64_t row0, int64_t n, float *dst, qp_err *err)
{
    return read_rows(p, i, row0, n, dst, sizeof(float), read_run_f32, err);
}

qp_status qp_plan_read_rows_raw(const qp_plan *p, int64_t i, int64_t row0, int64_t n, void *dst, qp_err *err)
{
    if (i < 0 || i >= p->n)
        return qp_err_set(err, QP_ERR_USAGE, NULL, "plan tensor index %lld out of range", (long long)i);
    const plan_entry *e = &p->e[i];
    if (e->gen)
        return qp_err_set(err, QP_ERR_UNSUPPORTED, NULL, "%s is computed, it has no source bytes", e->info.name);
    if (e->pieces[0].gt) {
        if (e->info.source_dtype == QP_GGML_TYPE_LIMIT)
            return qp_err_set(err, QP_ERR_UNSUPPORTED, NULL, "%s has no plain source dtype", e->info.name);
        return read_rows(p, i, row0, n, dst, 1, read_run_raw, err);
    }
    qp_st_dtype dt = e->pieces[0].src->dtype;
    for (int64_t k = 0; k < e->n_pieces; k++)
        if (e->pieces[k].src->dtype != dt || e->pieces[k].scale_inv ||
            !(dt == QP_ST_F32 || dt == QP_ST_F16 || dt == QP_ST_BF16))
            return qp_err_set(err, QP_ERR_UNSUPPORTED, NULL, "%s has no single plain source dtype", e->info.name);
    return read_rows(p, i, row0, n, dst, qp_st_dtype_size(dt), read_run_raw, err);
}

void qp_plan_release(const qp_plan *p, int64_t i)
{
    if (i < 0 || i >= p->n || p->gguf)
        return;
    const plan_entry *e = &p->e[i];
    for (int64_t k = 0; k < e->n_pieces; k++)
        if (k == 0 || e->pieces[k].src != e->pieces[k - 1].src)
            qp_st_release(p->st, e->pieces[k].src);
}

/* ------------------------------------------------------------ GGUF source */

static qp_tensor_role role_of_gguf_name(const char *name, int *layer)
{
    *layer = -1;
    for (int r = 0; r < QP_ROLE_COUNT; r++) {
        const char *pat = GGUF_NAMES[r].gguf;
        if (!pat)
            continue;
        if (!strstr(pat, "%d")) {
            if (strcmp(name, pat) == 0)
                return (qp_tensor_role)r;
            continue;
        }
        int l, used = 0;
        char probe[128];
        if (sscanf(name, "blk.%d.%n", &l, &used) == 1 && used > 0 && l >= 0) {
            snprintf(probe, sizeof probe, pat, l);
            if (strcmp(probe, name) == 0) {
                *layer = l;
                return (qp_tensor_role)r;
            }
        }
    }
    return QP_ROLE_OTHER;
}

qp_status qp_plan_from_gguf(const qp_gguf *g, qp_plan **out, qp_err *err)
{
    *out = NULL;
    int64_t n = qp_gguf_tensor_count(g);
    qp_plan *p = calloc(1, sizeof *p);
    if (p)
        p->e = calloc((size_t)(n ? n : 1), sizeof *p->e);
    if (!p || !p->e) {
        qp_plan_free(p);
        return qp_err_set(err, QP_ERR_NOMEM, qp_gguf_path(g), "out of memory building the plan");
    }
    p->gguf = g;
    for (int64_t i = 0; i < n; i++) {
        const qp_gguf_tensor *gt = qp_gguf_tensor_at(g, i);
        plan_entry *e = &p->e[p->n++];
        qp_plan_tensor *t = &e->info;
        if (gt->name.len >= sizeof t->name) {
            qp_plan_free(p);
            return qp_err_set(err, QP_ERR_UNSUPPORTED, qp_gguf_path(g), "tensor name of %llu bytes is too long",
                              (unsigned long long)gt->name.len);
        }
        memcpy(t->name, gt->name.ptr, gt->name.len);
        t->name[gt->name.len] = '\0';
        t->role = role_of_gguf_name(t->name, &t->layer);
        t->n_dims = gt->n_dims;
        for (int d = 0; d < 4; d++)
            t->ne[d] = d < (int)gt->n_dims ? gt->ne[d] : 1;
        t->row_len = t->ne[0];
        t->n_rows = t->ne[1] * t->ne[2] * t->ne[3];
        int is_exps = t->role == QP_ROLE_FFN_GATE_EXPS || t->role == QP_ROLE_FFN_UP_EXPS ||
                      t->role == QP_ROLE_FFN_DOWN_EXPS;
        t->n_expert = is_exps && gt->n_dims == 3 ? t->ne[2] : 1;
        t->keep_f32 = gt->n_dims < 2 || t->role == QP_ROLE_FFN_GATE_INP;
        t->source_dtype = (gt->type == QP_GGML_F32 || gt->type == QP_GGML_F16 || gt->type == QP_GGML_BF16)
                              ? gt->type : QP_GGML_TYPE_LIMIT;
        t->source_bytes = gt->nbytes;
        e->rows_per_piece = t->n_rows;
        e->n_pieces = 1;
        e->pieces = calloc(1, sizeof *e->pieces);
        if (!e->pieces) {
            qp_plan_free(p);
            return qp_err_set(err, QP_ERR_NOMEM, qp_gguf_path(g), "out of memory building the plan");
        }
        e->pieces[0].gt = gt;
    }
    *out = p;
    return QP_OK;
}

/* ------------------------------------------------------------ custom plans */

qp_plan *qp_plan_new_custom(const qp_st_model *st, const qp_hf_config *cfg, int64_t capacity)
{
    if (capacity < 1 || capacity > ((int64_t)1 << 24))
        return NULL;
    qp_plan *p = calloc(1, sizeof *p);
    if (p && !(p->e = calloc((size_t)capacity, sizeof *p->e))) {
        free(p);
        return NULL;
    }
    if (!p)
        return NULL;
    p->st = st;
    p->cfg = cfg;
    p->cap = capacity;
    p->fp8_block[0] = p->fp8_block[1] = 128;
    return p;
}

/* Validate t's shape fields and take a new entry for it. */
static qp_status custom_entry(qp_plan *p, const qp_plan_tensor *t, plan_entry **out, qp_err *err)
{
    const char *path = p->st && qp_st_file_count(p->st) ? qp_st_file_path(p->st, 0) : NULL;
    *out = NULL;
    if (p->gguf || p->n >= p->cap)
        return qp_err_set(err, QP_ERR_INTERNAL, path, "custom plan is full (%lld tensors)", (long long)p->cap);
    if (!t->name[0] || memchr(t->name, '\0', sizeof t->name) == NULL || strlen(t->name) >= 64) {
        qp_err_set(err, QP_ERR_UNSUPPORTED, path, "tensor name is empty or longer than GGUF's 63 bytes");
        qp_err_set_tensor(err, t->name);
        return QP_ERR_UNSUPPORTED;
    }
    if (qp_plan_find(p, t->name) >= 0) {
        qp_err_set(err, QP_ERR_INTERNAL, path, "two tensors of the plan have the same name");
        qp_err_set_tensor(err, t->name);
        return QP_ERR_INTERNAL;
    }
    int64_t rows = 1;
    int bad = t->n_dims < 1 || t->n_dims > 4 || t->n_expert < 1;
    for (uint32_t d = 0; d < 4 && !bad; d++) {
        int64_t v = d < t->n_dims ? t->ne[d] : 1;
        if (v < 1 || v > ((int64_t)1 << 40) || (d >= t->n_dims && t->ne[d] != 1))
            bad = 1;
        else if (d > 0 && rows > (((int64_t)1 << 50) / v))
            bad = 1;
        else if (d > 0)
            rows *= v;
    }
    if (!bad && (rows % t->n_expert != 0 || t->ne[0] > (((int64_t)1 << 50) / rows)))
        bad = 1;
    if (bad) {
        qp_err_set(err, QP_ERR_INTERNAL, path, "invalid shape for a plan tensor");
        qp_err_set_tensor(err, t->name);
        return QP_ERR_INTERNAL;
    }
    plan_entry *e = &p->e[p->n];
    memset(e, 0, sizeof *e);
    e->info = *t;
    e->info.row_len = t->ne[0];
    e->info.n_rows = rows;
    for (uint32_t d = t->n_dims; d < 4; d++)
        e->info.ne[d] = 1;
    *out = e;
    return QP_OK;
}

qp_status qp_plan_add_pieces(qp_plan *p, const qp_plan_tensor *t, int64_t rows_per_piece, const qp_plan_piece *pcs,
                             int64_t n_pieces, qp_err *err)
{
    plan_entry *e;
    qp_status s = custom_entry(p, t, &e, err);
    if (s != QP_OK)
        return s;
    const char *path = qp_st_file_count(p->st) ? qp_st_file_path(p->st, 0) : NULL;
    if (n_pieces < 1 || rows_per_piece < 1 || rows_per_piece > e->info.n_rows / n_pieces ||
        rows_per_piece * n_pieces != e->info.n_rows) {
        qp_err_set(err, QP_ERR_INTERNAL, path, "%lld pieces of %lld rows do not make %lld rows", (long long)n_pieces,
                   (long long)rows_per_piece, (long long)e->info.n_rows);
        qp_err_set_tensor(err, t->name);
        return QP_ERR_INTERNAL;
    }
    uint64_t run = (uint64_t)rows_per_piece * (uint64_t)e->info.row_len;
    for (int64_t k = 0; k < n_pieces; k++) {
        const qp_st_tensor *src = pcs[k].src;
        if (!src || !qp_st_dtype_is_float(src->dtype) || src->dtype == QP_ST_F8_E4M3 || src->dtype == QP_ST_F8_E5M2) {
            qp_err_set(err, QP_ERR_BAD_INPUT, src ? qp_st_file_path(p->st, src->file_index) : path,
                       "tensor has dtype %s, expected F32, F16 or BF16", src ? qp_st_dtype_name(src->dtype) : "?");
            qp_err_set_tensor(err, src ? src->name : t->name);
            return QP_ERR_BAD_INPUT;
        }
        if (pcs[k].src_row0 < 0 || (uint64_t)pcs[k].src_row0 > src->n_elems / (uint64_t)e->info.row_len ||
            (uint64_t)pcs[k].src_row0 * (uint64_t)e->info.row_len + run > src->n_elems) {
            qp_err_set(err, QP_ERR_INTERNAL, qp_st_file_path(p->st, src->file_index),
                       "rows %lld..%lld of length %lld are outside the tensor", (long long)pcs[k].src_row0,
                       (long long)(pcs[k].src_row0 + rows_per_piece), (long long)e->info.row_len);
            qp_err_set_tensor(err, src->name);
            return QP_ERR_INTERNAL;
        }
    }
    if (!(e->pieces = calloc((size_t)n_pieces, sizeof *e->pieces)))
        return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory building the plan");
    for (int64_t k = 0; k < n_pieces; k++) {
        e->pieces[k].src = pcs[k].src;
        e->pieces[k].src_row0 = pcs[k].src_row0;
    }
    e->rows_per_piece = rows_per_piece;
    e->n_pieces = n_pieces;
    finish_entry(e);
    p->n++;
    return QP_OK;
}

qp_status qp_plan_add_generated(qp_plan *p, const qp_plan_tensor *t, qp_plan_gen_fn gen, const void *ctx,
                                qp_err *err)
{
    plan_entry *e;
    qp_status s = custom_entry(p, t, &e, err);
    if (s != QP_OK)
        return s;
    e->gen = gen;
    e->gen_ctx = ctx;
    e->rows_per_piece = e->info.n_rows;
    e->info.source_dtype = QP_GGML_TYPE_LIMIT;
    e->info.source_bytes = 0;
    p->n++;
    return QP_OK;
}

int64_t qp_plan_piece_count(const qp_plan *p, int64_t i)
{
    return i >= 0 && i < p->n ? p->e[i].n_pieces : 0;
}

const qp_st_tensor *qp_plan_piece_source(const qp_plan *p, int64_t i, int64_t k, int64_t *src_row0)
{
    if (i < 0 || i >= p->n || k < 0 || k >= p->e[i].n_pieces)
        return NULL;
    if (src_row0)
        *src_row0 = p->e[i].pieces[k].src_row0;
    return p->e[i].pieces[k].src;
}
