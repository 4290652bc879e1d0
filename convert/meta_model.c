/* meta_model.c - general.*, <arch>.* and qpack.* keys of a converted file. */
#include "convert/meta.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_expert_role(qp_tensor_role r)
{
    return r == QP_ROLE_FFN_GATE_EXPS || r == QP_ROLE_FFN_UP_EXPS || r == QP_ROLE_FFN_DOWN_EXPS;
}

qp_param_count qp_meta_count_params(const qp_plan *plan)
{
    qp_param_count pc = {0, 0, 0, 0};
    for (int64_t i = 0; i < qp_plan_count(plan); i++) {
        const qp_plan_tensor *t = qp_plan_at(plan, i);
        uint64_t n = (uint64_t)t->row_len * (uint64_t)t->n_rows;
        pc.total += n;
        if (is_expert_role(t->role)) {
            pc.per_expert += n / (uint64_t)t->n_expert;
            pc.n_expert = t->n_expert;
        } else {
            pc.shared += n;
        }
    }
    return pc;
}

/* llama.cpp's notation: scale to K/M/B/T, then keep at least two
 * significant digits ("5.2M", "10M", "235B"). */
static void rounded_notation(uint64_t n, char *buf, size_t size)
{
    double v = (double)n;
    const char *suffix;
    if (v > 1e12) {
        v *= 1e-12;
        suffix = "T";
    } else if (v > 1e9) {
        v *= 1e-9;
        suffix = "B";
    } else if (v > 1e6) {
        v *= 1e-6;
        suffix = "M";
    } else {
        v *= 1e-3;
        suffix = "K";
    }
    char digits[64];
    snprintf(digits, sizeof digits, "%.0f", round(v));
    const char *d = digits;
    while (*d == '0')
        d++;
    int fix = 2 - (int)strlen(d);
    if (fix < 0)
        fix = 0;
    snprintf(buf, size, "%.*f%s", fix, v, suffix);
}

void qp_meta_size_label(const qp_param_count *pc, char *buf, size_t size)
{
    if (pc->n_expert > 0) {
        char inner[32];
        rounded_notation(pc->shared + pc->per_expert, inner, sizeof inner);
        snprintf(buf, size, "%lldx%s", (long long)pc->n_expert, inner);
    } else {
        rounded_notation(pc->total, buf, size);
    }
}

void qp_meta_display_name(const char *dir, char *buf, size_t size)
{
    /* basename of dir, without trailing slashes */
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/')
        len--;
    size_t start = len;
    while (start > 0 && dir[start - 1] != '/')
        start--;
    size_t o = 0;
    int word_start = 1;
    for (size_t i = start; i < len && o + 1 < size; i++) {
        char c = dir[i];
        if (c == '-' || c == '_' || c == ' ') {
            buf[o++] = ' ';
            word_start = 1;
            continue;
        }
        buf[o++] = word_start ? (char)toupper((unsigned char)c) : c;
        word_start = 0;
    }
    buf[o] = '\0';
}

#define CHECK(expr)                                                                                                    \
    do {                                                                                                               \
        if ((s = (expr)) != QP_OK)                                                                                     \
            goto fail;                                                                                                 \
    } while (0)

qp_status qp_meta_write_model(qp_gguf_writer *w, const qp_plan *plan, const char *hf_dir,
                              const qp_meta_options *opt, qp_err *err)
{
    const qp_hf_config *c = qp_plan_config(plan);
    const char *arch = qp_arch_name(c->arch);
    char key[128], name[256], label[64];
    qp_status s = QP_OK;
#define K(suffix) (snprintf(key, sizeof key, "%s." suffix, arch), key)
    qp_meta_display_name(hf_dir, name, sizeof name);
    qp_param_count pc = qp_meta_count_params(plan);
    qp_meta_size_label(&pc, label, sizeof label);

    CHECK(qp_gguf_set_str(w, "general.architecture", arch));
    CHECK(qp_gguf_set_str(w, "general.type", "model"));
    CHECK(qp_gguf_set_str(w, "general.name", name));
    CHECK(qp_gguf_set_str(w, "general.size_label", label));
    CHECK(qp_gguf_set_u32(w, K("block_count"), (uint32_t)c->num_hidden_layers));
    CHECK(qp_gguf_set_u32(w, K("context_length"), (uint32_t)c->max_position_embeddings));
    CHECK(qp_gguf_set_u32(w, K("embedding_length"), (uint32_t)c->hidden_size));
    CHECK(qp_gguf_set_u32(w, K("feed_forward_length"), (uint32_t)c->intermediate_size));
    CHECK(qp_gguf_set_u32(w, K("attention.head_count"), (uint32_t)c->num_attention_heads));
    CHECK(qp_gguf_set_u32(w, K("attention.head_count_kv"), (uint32_t)c->num_key_value_heads));
    CHECK(qp_gguf_set_f32(w, K("rope.freq_base"), (float)c->rope_theta));
    CHECK(qp_gguf_set_f32(w, K("attention.layer_norm_rms_epsilon"), (float)c->rms_norm_eps));
    if (c->num_experts > 0) {
        CHECK(qp_gguf_set_u32(w, K("expert_count"), (uint32_t)c->num_experts));
        CHECK(qp_gguf_set_u32(w, K("expert_used_count"), (uint32_t)c->num_experts_per_tok));
    }
    CHECK(qp_gguf_set_u32(w, K("attention.key_length"), (uint32_t)c->head_dim));
    CHECK(qp_gguf_set_u32(w, K("attention.value_length"), (uint32_t)c->head_dim));
    CHECK(qp_gguf_set_u32(w, "general.file_type", opt->file_type));
    if (c->num_experts > 0)
        CHECK(qp_gguf_set_u32(w, K("expert_feed_forward_length"), (uint32_t)c->moe_intermediate_size));
    if (c->rope_scaling.type[0]) {
        /* llama.cpp writes the scaling type, factor and original context. */
        CHECK(qp_gguf_set_str(w, K("rope.scaling.type"), c->rope_scaling.type));
        if (c->rope_scaling.factor > 0)
            CHECK(qp_gguf_set_f32(w, K("rope.scaling.factor"), (float)c->rope_scaling.factor));
        if (c->rope_scaling.original_max_position_embeddings > 0)
            CHECK(qp_gguf_set_u32(w, K("rope.scaling.original_context_length"),
                                  (uint32_t)c->rope_scaling.original_max_position_embeddings));
        if (c->rope_scaling.attn_factor > 0)
            CHECK(qp_gguf_set_f32(w, K("rope.scaling.attn_factor"), (float)c->rope_scaling.attn_factor));
        if (c->rope_scaling.beta_fast > 0)
            CHECK(qp_gguf_set_f32(w, K("rope.scaling.yarn_beta_fast"), (float)c->rope_scaling.beta_fast));
        if (c->rope_scaling.beta_slow > 0)
            CHECK(qp_gguf_set_f32(w, K("rope.scaling.yarn_beta_slow"), (float)c->rope_scaling.beta_slow));
    }
    CHECK(qp_gguf_set_u32(w, "general.quantization_version", 2));

    /* Provenance: only what is a function of the input and options. */
    CHECK(qp_gguf_set_str(w, "qpack.version", QP_VERSION));
    CHECK(qp_gguf_set_str(w, "qpack.recipe", opt->recipe ? opt->recipe : ""));
    {
        const qp_st_model *st = qp_plan_source(plan);
        size_t nf = qp_st_file_count(st);
        const char **names = calloc(nf ? nf : 1, sizeof *names);
        uint64_t *sizes = calloc(nf ? nf : 1, sizeof *sizes);
        if (!names || !sizes) {
            free(names);
            free(sizes);
            s = qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory");
            goto fail;
        }
        for (size_t i = 0; i < nf; i++) {
            const char *p = qp_st_file_path(st, (int)i), *slash = strrchr(p, '/');
            names[i] = slash ? slash + 1 : p;
            sizes[i] = qp_st_file_size(st, (int)i);
        }
        s = qp_gguf_set_arr_str(w, "qpack.source.files", names, NULL, nf);
        if (s == QP_OK)
            s = qp_gguf_set_arr(w, "qpack.source.sizes", QP_GGUF_U64, sizes, nf);
        free(names);
        free(sizes);
        if (s != QP_OK)
            goto fail;
    }
    CHECK(qp_gguf_set_str(w, "qpack.source.architecture", c->architecture_name));
    return QP_OK;
#undef K
fail:
    if (err && err->status == QP_OK)
        qp_err_set(err, s, NULL, "could not add metadata");
    return s;
}
