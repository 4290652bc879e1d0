/* omni_types.c - the ggml type of every tensor of the three files.
 *
 *   thinker  the preset, exactly as for a Qwen3-MoE (convert/job.c's rule:
 *            norms and router F32, matrices by quant/recipe).
 *   talker   the talker and code-predictor linears by the preset (the recipe
 *            sees them under llama.cpp-style names, so rows of 128 fall back
 *            the way llama-quantize falls back); norms, router and shared-
 *            expert gate F32; code2wav and every convolution stay float: the
 *            preset's float type, F16 under a quantized preset.
 *   mmproj   --mmproj-type (F16 default): vectors F32, convolutions F16,
 *            patch embedding F16 in an F16 file else F32 (llama.cpp's rule),
 *            linears Q8_0 when asked and the row fits a Q8_0 block.
 * --tensor-type overrides match the written names in every file. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "convert/omni_internal.h"

#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/qp_ggml_types.h"

typedef struct {
    pcre2_code **re;
    const uint32_t *types;
    int n;
} overrides;

static int override_for(const overrides *o, const char *name, uint32_t *type)
{
    for (int i = 0; i < o->n; i++) {
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(o->re[i], NULL);
        if (!md)
            return 0;
        int rc = pcre2_match(o->re[i], (PCRE2_SPTR)name, strlen(name), 0, 0, md, NULL);
        pcre2_match_data_free(md);
        if (rc >= 0) {
            *type = o->types[i];
            return 1;
        }
    }
    return 0;
}

static int fits(uint32_t type, int64_t row_len)
{
    const qp_ggml_type_info *ti = qp_ggml_type_get(type);
    return ti && ti->block_elems > 0 && row_len % ti->block_elems == 0;
}

static int is_float(uint32_t t) { return t == QP_GGML_F32 || t == QP_GGML_F16 || t == QP_GGML_BF16; }

/* What the recipe sees for a talker-file tensor: llama.cpp-style names
 * without the component prefix. */
static void recipe_name(const char *name, omni_class cls, char *out, size_t size)
{
    if (cls == OMNI_CL_HEAD) {
        snprintf(out, size, "output.weight");
        return;
    }
    if (cls == OMNI_CL_EMBED) {
        snprintf(out, size, "token_embd.weight");
        return;
    }
    static const char *const PRE[] = {"talker.code_predictor.", "talker."};
    for (size_t i = 0; i < sizeof PRE / sizeof PRE[0]; i++)
        if (strncmp(name, PRE[i], strlen(PRE[i])) == 0) {
            snprintf(out, size, "%s", name + strlen(PRE[i]));
            return;
        }
    snprintf(out, size, "%s", name);
}

static qp_status alloc_types(qp_omni_job *job, qp_omni_file f, qp_err *err)
{
    int64_t n = qp_plan_count(job->plans[f]);
    job->types[f] = calloc((size_t)(n ? n : 1), sizeof *job->types[f]);
    job->fallback[f] = calloc((size_t)(n ? n : 1), sizeof *job->fallback[f]);
    if (!job->types[f] || !job->fallback[f])
        return qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory");
    for (int64_t i = 0; i < n; i++)
        job->fallback[f][i] = -1;
    return QP_OK;
}

/* Run the preset's recipe over a plan in file order. */
static qp_status recipe_types(qp_omni_job *job, qp_omni_file f, const qp_hf_config *c, const qp_omni_options *opt,
                              const overrides *ov, qp_err *err)
{
    const qp_plan *plan = job->plans[f];
    int64_t n = qp_plan_count(plan);
    qp_recipe_params rp;
    memset(&rp, 0, sizeof rp);
    rp.preset = job->preset;
    rp.pure = opt->pure;
    rp.output_type = f == QP_OMNI_FILE_THINKER ? opt->output_type : -1;
    rp.token_embd_type = f == QP_OMNI_FILE_THINKER ? opt->token_embd_type : -1;
    rp.n_layer = c->num_hidden_layers;
    rp.n_expert = c->num_experts;
    rp.n_head = c->num_attention_heads;
    rp.n_head_kv = c->num_key_value_heads;
    char rn[128];
    for (int64_t i = 0; i < n; i++) {
        const qp_plan_tensor *t = qp_plan_at(plan, i);
        omni_class cls = job->classes[f][i];
        if (f == QP_OMNI_FILE_THINKER)
            snprintf(rn, sizeof rn, "%s", t->name);
        else
            recipe_name(t->name, cls, rn, sizeof rn);
        rp.has_output |= strcmp(rn, "output.weight") == 0;
        if (cls == OMNI_CL_LINEAR || cls == OMNI_CL_EMBED || cls == OMNI_CL_HEAD) {
            rp.n_attn_v += strstr(rn, "attn_v.weight") != NULL;
            rp.n_ffn_down += strstr(rn, "ffn_down") != NULL;
        }
    }
    qp_recipe *rec = qp_recipe_new(&rp);
    if (!rec)
        return qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory");
    uint32_t float_type = is_float(job->preset->default_type) ? job->preset->default_type : QP_GGML_F16;
    for (int64_t i = 0; i < n; i++) {
        const qp_plan_tensor *t = qp_plan_at(plan, i);
        omni_class cls = job->classes[f][i];
        uint32_t type;
        if (t->keep_f32) { /* norms, biases, routers: never quantized, as in convert/job.c */
            type = QP_GGML_F32;
        } else if (override_for(ov, t->name, &type)) {
            if (!fits(type, t->row_len)) {
                job->fallback[f][i] = (int)type;
                type = QP_GGML_F16;
            }
        } else if (cls == OMNI_CL_LINEAR || cls == OMNI_CL_EMBED || cls == OMNI_CL_HEAD) {
            if (f == QP_OMNI_FILE_THINKER)
                snprintf(rn, sizeof rn, "%s", t->name);
            else
                recipe_name(t->name, cls, rn, sizeof rn);
            type = qp_recipe_choose(rec, rn, t->n_dims, t->ne, job->preset->default_type, &job->fallback[f][i]);
        } else {
            type = float_type; /* convolutions, code2wav */
        }
        job->types[f][i] = type;
    }
    qp_recipe_free(rec);
    return QP_OK;
}

static void mmproj_types(qp_omni_job *job, const overrides *ov)
{
    const qp_plan *plan = job->plans[QP_OMNI_FILE_MMPROJ];
    uint32_t T = job->mmproj_type;
    for (int64_t i = 0; i < qp_plan_count(plan); i++) {
        const qp_plan_tensor *t = qp_plan_at(plan, i);
        uint32_t type;
        int *fb = &job->fallback[QP_OMNI_FILE_MMPROJ][i];
        if (t->keep_f32) {
            type = QP_GGML_F32;
        } else if (override_for(ov, t->name, &type)) {
            if (!fits(type, t->row_len)) {
                *fb = (int)type;
                type = QP_GGML_F16;
            }
        } else {
            switch (job->classes[QP_OMNI_FILE_MMPROJ][i]) {
            case OMNI_CL_VECTOR:
            case OMNI_CL_ROUTER: type = QP_GGML_F32; break;
            case OMNI_CL_PATCH: type = T == QP_GGML_F16 ? QP_GGML_F16 : QP_GGML_F32; break;
            case OMNI_CL_CONV: type = T == QP_GGML_F32 ? QP_GGML_F32 : QP_GGML_F16; break;
            case OMNI_CL_FLOAT: type = T == QP_GGML_Q8_0 ? QP_GGML_F16 : T; break;
            default:
                type = T;
                if (!fits(T, t->row_len)) {
                    *fb = (int)T;
                    type = QP_GGML_F16;
                }
                break;
            }
        }
        job->types[QP_OMNI_FILE_MMPROJ][i] = type;
    }
}

qp_status omni_choose_types(qp_omni_job *job, const qp_omni_options *opt, qp_err *err)
{
    overrides ov = {NULL, opt->override_types, 0};
    qp_status s = QP_OK;
    if (opt->n_overrides > 0 && !(ov.re = calloc((size_t)opt->n_overrides, sizeof *ov.re)))
        return qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory");
    for (int k = 0; k < opt->n_overrides && s == QP_OK; k++) {
        int ec;
        PCRE2_SIZE eo;
        ov.re[k] = pcre2_compile((PCRE2_SPTR)opt->override_patterns[k], PCRE2_ZERO_TERMINATED, 0, &ec, &eo, NULL);
        if (!ov.re[k])
            s = qp_err_set(err, QP_ERR_USAGE, NULL, "bad --tensor-type pattern '%s'", opt->override_patterns[k]);
        else
            ov.n++;
    }
    for (int f = 0; f < QP_OMNI_FILE_COUNT && s == QP_OK; f++)
        s = alloc_types(job, (qp_omni_file)f, err);
    if (s == QP_OK)
        s = recipe_types(job, QP_OMNI_FILE_THINKER, &job->cfg.thinker, opt, &ov, err);
    if (s == QP_OK)
        s = recipe_types(job, QP_OMNI_FILE_TALKER, &job->cfg.talker, opt, &ov, err);
    if (s == QP_OK)
        mmproj_types(job, &ov);
    for (int k = 0; k < ov.n; k++)
        pcre2_code_free(ov.re[k]);
    free(ov.re);
    return s;
}
