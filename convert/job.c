/* job.c - tie a checkpoint, its plan and a recipe together (see job.h). */
#include "convert/job.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/qp_ggml_types.h"
#include "convert/importance.h"
#include "convert/sensitivity.h"
#include "quant/qtype.h"
#include "quant/recipe.h"

struct qp_job {
    char *dir;               /* HF directory, or the source GGUF's path */
    qp_gguf *gguf;           /* set for requantization jobs */
    int from_q8_0;           /* the GGUF source holds Q8_0 tensors */
    qp_hf_config cfg;
    qp_st_model *st;
    qp_plan *plan;
    const qp_preset *preset;
    uint32_t *types;
    int *fallback;
    char recipe_desc[64];
    qp_importance *imp;      /* NULL without --imatrix */
    qp_cov_apply *cov;       /* NULL without --covariance */
    qp_gptq_options gptq;
    int has_alloc;           /* --target-bpw / --target-size */
    qp_alloc_plan alloc;
    uint64_t alloc_budget, alloc_overhead;
    double target_bpw;
    uint64_t target_size;
};

static uint32_t choose_from_job(void *ctx, const qp_plan *plan, int64_t i)
{
    (void)plan;
    return ((const qp_job *)ctx)->types[i];
}

/* Run the recipe over the plan in file order (some rules count tensors). */
static qp_status choose_types(qp_job *job, const qp_job_options *opt, qp_recipe_params *rp, qp_err *err)
{
    const char *where = job->dir;
    int64_t n = qp_plan_count(job->plan);
    job->types = calloc((size_t)n, sizeof *job->types);
    job->fallback = calloc((size_t)n, sizeof *job->fallback);
    if (!job->types || !job->fallback) {
        return qp_err_set(err, QP_ERR_NOMEM, where, "out of memory");
    }
    rp->preset = job->preset;
    rp->pure = opt->pure;
    rp->output_type = opt->output_type;
    rp->token_embd_type = opt->token_embd_type;
    rp->has_imatrix = opt->imatrix_path != NULL;
    rp->has_output = qp_plan_find(job->plan, "output.weight") >= 0;
    for (int64_t i = 0; i < n; i++) {
        qp_tensor_role r = qp_plan_at(job->plan, i)->role;
        rp->n_attn_v += r == QP_ROLE_ATTN_V;
        rp->n_ffn_down += r == QP_ROLE_FFN_DOWN || r == QP_ROLE_FFN_DOWN_EXPS;
    }
    qp_recipe *rec = qp_recipe_new(rp);
    if (!rec) {
        return qp_err_set(err, QP_ERR_NOMEM, where, "out of memory");
    }
    for (int k = 0; k < opt->n_overrides; k++)
        if (qp_recipe_add_override(rec, opt->override_patterns[k], opt->override_types[k]) != 0) {
            qp_recipe_free(rec);
            qp_status s = qp_err_set(err, QP_ERR_USAGE, NULL, "bad --tensor-type pattern '%s'", opt->override_patterns[k]);
            return s;
        }
    for (int64_t i = 0; i < n; i++) {
        const qp_plan_tensor *t = qp_plan_at(job->plan, i);
        /* Sources are offered as the F32 (vectors, router) or BF16 they
         * would be in a lossless file; those keep that type. */
        uint32_t src = t->keep_f32 ? QP_GGML_F32 : job->preset->default_type;
        job->types[i] = qp_recipe_choose(rec, t->name, t->n_dims, t->ne, src, &job->fallback[i]);
        if (t->keep_f32)
            job->types[i] = QP_GGML_F32;
    }
    qp_recipe_free(rec);
    /* Importance data is looked up for the tensors that end up quantized. */
    qp_status s = QP_OK;
    if (opt->imatrix_path)
        s = qp_importance_open(opt->imatrix_path, job->plan, job->types, &job->imp, err);
    job->gptq = opt->gptq;
    if (s == QP_OK && opt->covariance_path)
        s = qp_cov_apply_open(opt->covariance_path, job->plan, job->types, &job->cov, err);
    return s;
}

/* With a size target the recipe only says which tensors are quantized
 * (and where the importance data goes): any K preset does. */
static const char *base_preset(const qp_job_options *opt)
{
    if (opt->target_bpw > 0 || opt->target_size > 0)
        return "Q4_K_M";
    return opt->preset ? opt->preset : "BF16";
}

static qp_status check_target(const qp_job_options *opt, qp_err *err)
{
    if (!(opt->target_bpw > 0) && opt->target_size == 0)
        return QP_OK;
    if (opt->target_bpw > 0 && opt->target_size > 0)
        return qp_err_set(err, QP_ERR_USAGE, NULL, "give a bits-per-weight or a size target, not both");
    if (opt->pure || opt->n_overrides > 0 || opt->output_type >= 0 || opt->token_embd_type >= 0)
        return qp_err_set(err, QP_ERR_USAGE, NULL, "a size target chooses every matrix's type: it cannot be "
                          "combined with --pure, --tensor-type, --output-tensor-type or --token-embedding-type");
    if (!opt->imatrix_path)
        return qp_err_set(err, QP_ERR_USAGE, NULL, "a size target needs --imatrix with sensitivity data (made by "
                          "qpack calibrate --sensitivity)");
    return QP_OK;
}

static qp_status alloc_meta(void *ctx, void *gguf_writer, qp_err *err)
{
    const qp_job *job = ctx;
    qp_gguf_writer *w = gguf_writer;
    qp_status s = job->imp ? qp_importance_write_meta(job->imp, w, err) : QP_OK;
    if (s != QP_OK)
        return s;
    if (job->target_bpw > 0)
        s = qp_gguf_set_f64(w, "qpack.alloc.target_bpw", job->target_bpw);
    else
        s = qp_gguf_set_u64(w, "qpack.alloc.target_size", job->target_size);
    if (s == QP_OK)
        s = qp_gguf_set_u64(w, "qpack.alloc.budget_bytes", job->alloc_budget);
    if (s == QP_OK)
        s = qp_gguf_set_u64(w, "qpack.alloc.tensor_bytes", job->alloc.bytes);
    if (s == QP_OK)
        s = qp_gguf_set_f64(w, "qpack.alloc.predicted_kld", job->alloc.loss_total);
    if (s != QP_OK)
        return qp_err_set(err, s, NULL, "cannot record the qpack.alloc keys");
    return QP_OK;
}

/* general.file_type of an allocated mix: the K preset named after the type
 * holding the most weights (llama.cpp only displays it). */
static const qp_preset *mostly_preset(const qp_job *job)
{
    static const struct {
        uint32_t type;
        const char *preset;
    } map[] = {{QP_GGML_Q2_K, "Q2_K"}, {QP_GGML_Q3_K, "Q3_K_M"}, {QP_GGML_Q4_K, "Q4_K_M"},
               {QP_GGML_Q5_K, "Q5_K_M"}, {QP_GGML_Q6_K, "Q6_K"},   {QP_GGML_Q8_0, "Q8_0"}};
    uint64_t most = 0;
    const char *name = "Q4_K_M";
    for (size_t k = 0; k < sizeof map / sizeof map[0]; k++) {
        uint64_t sum = 0;
        for (int64_t i = 0; i < qp_plan_count(job->plan); i++)
            if (job->types[i] == map[k].type)
                sum += (uint64_t)qp_plan_at(job->plan, i)->n_rows * (uint64_t)qp_plan_at(job->plan, i)->row_len;
        if (sum > most) {
            most = sum;
            name = map[k].preset;
        }
    }
    return qp_preset_find(name);
}

/* Replace the baseline types with the size-targeted allocation. */
static qp_status allocate(qp_job *job, const qp_job_options *opt, qp_err *err)
{
    qp_sens *sens = NULL;
    qp_status s = qp_sens_read(opt->imatrix_path, &sens, err);
    if (s != QP_OK)
        return s;
    job->has_alloc = 1;
    job->target_bpw = opt->target_bpw;
    job->target_size = opt->target_size;
    if (opt->target_bpw > 0)
        snprintf(job->recipe_desc, sizeof job->recipe_desc, "target-bpw %.4g", opt->target_bpw);
    else
        snprintf(job->recipe_desc, sizeof job->recipe_desc, "target-size %llu", (unsigned long long)opt->target_size);
    uint64_t n_elements = 0;
    for (int64_t i = 0; i < qp_plan_count(job->plan); i++)
        n_elements += (uint64_t)qp_plan_at(job->plan, i)->n_rows * (uint64_t)qp_plan_at(job->plan, i)->row_len;
    if (opt->target_bpw > 0) {
        job->alloc_budget = (uint64_t)(opt->target_bpw * (double)n_elements / 8.0);
    } else {
        /* The header does not depend on the types chosen, only tensor bytes do. */
        qp_convert_options co;
        qp_job_convert_options(job, &co);
        if ((s = qp_convert_overhead(job->plan, job->dir, &co, &job->alloc_overhead, err)) != QP_OK)
            goto out;
        job->alloc_budget = opt->target_size > job->alloc_overhead ? opt->target_size - job->alloc_overhead : 0;
    }
    qp_alloc_plan_job aj = {job->plan, job->types, job->imp ? qp_importance_get : NULL, job->imp, sens,
                            job->alloc_budget, opt->n_threads};
    if ((s = qp_alloc_plan_run(&aj, &job->alloc, err)) != QP_OK) {
        if (opt->target_size > 0 && s == QP_ERR_BAD_INPUT)
            qp_err_set(err, QP_ERR_BAD_INPUT, NULL, "--target-size %llu is below the smallest possible file (%llu "
                       "bytes: %llu of tensors at their smallest types plus %llu of header and padding)",
                       (unsigned long long)opt->target_size,
                       (unsigned long long)(job->alloc.min_bytes + job->alloc_overhead),
                       (unsigned long long)job->alloc.min_bytes, (unsigned long long)job->alloc_overhead);
        goto out;
    }
    memcpy(job->types, job->alloc.types, (size_t)qp_plan_count(job->plan) * sizeof *job->types);
    for (int64_t i = 0; i < qp_plan_count(job->plan); i++)
        job->fallback[i] = -1;
    job->preset = mostly_preset(job);
out:
    qp_sens_free(sens);
    return s;
}

qp_status qp_job_open(const char *hf_dir, const qp_job_options *opt, qp_job **out, qp_err *err)
{
    *out = NULL;
    qp_job *job = calloc(1, sizeof *job);
    if (!job || !(job->dir = strdup(hf_dir))) {
        free(job);
        return qp_err_set(err, QP_ERR_NOMEM, hf_dir, "out of memory");
    }
    qp_status s = QP_OK;
    job->preset = qp_preset_find(base_preset(opt));
    if (!job->preset) {
        s = qp_err_set(err, QP_ERR_USAGE, NULL, "unknown type or preset '%s'", opt->preset);
        goto fail;
    }
    if ((s = check_target(opt, err)) != QP_OK)
        goto fail;
    if ((s = qp_hf_config_load(hf_dir, &job->cfg, err)) != QP_OK)
        goto fail;
    if ((s = qp_st_open_dir(hf_dir, &job->st, err)) != QP_OK)
        goto fail;
    if ((s = qp_plan_build(job->st, &job->cfg, &job->plan, err)) != QP_OK)
        goto fail;
    qp_recipe_params rp;
    memset(&rp, 0, sizeof rp);
    rp.n_layer = job->cfg.num_hidden_layers;
    rp.n_expert = job->cfg.num_experts;
    rp.n_head = job->cfg.num_attention_heads;
    rp.n_head_kv = job->cfg.num_key_value_heads;
    if ((s = choose_types(job, opt, &rp, err)) != QP_OK)
        goto fail;
    snprintf(job->recipe_desc, sizeof job->recipe_desc, "%s%s", job->preset->name, opt->pure ? " pure" : "");
    if ((opt->target_bpw > 0 || opt->target_size > 0) && (s = allocate(job, opt, err)) != QP_OK)
        goto fail;
    *out = job;
    return QP_OK;
fail:
    qp_job_free(job);
    return s;
}

/* Recipe parameters from a GGUF's own hyper-parameter keys. */
static int64_t arch_u64(const qp_gguf *g, const char *arch, const char *suffix)
{
    char key[160];
    uint64_t v = 0;
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return qp_gguf_get_u64(g, key, &v) ? (int64_t)v : 0;
}

qp_status qp_job_open_gguf(const char *path, const qp_job_options *opt, qp_job **out, qp_err *err)
{
    *out = NULL;
    qp_job *job = calloc(1, sizeof *job);
    if (!job || !(job->dir = strdup(path))) {
        free(job);
        return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
    }
    qp_status s = QP_OK;
    job->preset = qp_preset_find(base_preset(opt));
    if (!job->preset) {
        s = qp_err_set(err, QP_ERR_USAGE, NULL, "unknown type or preset '%s'", opt->preset);
        goto fail;
    }
    if ((s = check_target(opt, err)) != QP_OK)
        goto fail;
    if ((s = qp_gguf_open(path, &job->gguf, err)) != QP_OK)
        goto fail;
    qp_gguf_str arch_s;
    char arch[64] = "";
    if (qp_gguf_get_str(job->gguf, "general.architecture", &arch_s) && arch_s.len < sizeof arch) {
        memcpy(arch, arch_s.ptr, arch_s.len);
        arch[arch_s.len] = '\0';
    }
    if ((s = qp_plan_from_gguf(job->gguf, &job->plan, err)) != QP_OK)
        goto fail;
    /* Requantizing what was already quantized compounds the errors. */
    for (int64_t i = 0; i < qp_plan_count(job->plan); i++) {
        const qp_gguf_tensor *t = qp_gguf_tensor_at(job->gguf, i);
        if (t->type == QP_GGML_F32 || t->type == QP_GGML_F16 || t->type == QP_GGML_BF16)
            continue;
        if (t->type != QP_GGML_Q8_0) {
            s = qp_err_set(err, QP_ERR_UNSUPPORTED, path, "tensor is already quantized as %s; requantize from an "
                           "F32/F16/BF16 (or Q8_0) file", qp_ggml_type_name(t->type));
            qp_err_set_tensor(err, qp_plan_at(job->plan, i)->name);
            goto fail;
        }
        job->from_q8_0 = 1;
    }
    qp_recipe_params rp;
    memset(&rp, 0, sizeof rp);
    rp.n_layer = arch_u64(job->gguf, arch, "block_count");
    rp.n_expert = arch_u64(job->gguf, arch, "expert_count");
    rp.n_head = arch_u64(job->gguf, arch, "attention.head_count");
    rp.n_head_kv = arch_u64(job->gguf, arch, "attention.head_count_kv");
    if ((s = choose_types(job, opt, &rp, err)) != QP_OK)
        goto fail;
    snprintf(job->recipe_desc, sizeof job->recipe_desc, "%s%s", job->preset->name, opt->pure ? " pure" : "");
    if ((opt->target_bpw > 0 || opt->target_size > 0) && (s = allocate(job, opt, err)) != QP_OK)
        goto fail;
    *out = job;
    return QP_OK;
fail:
    qp_job_free(job);
    return s;
}

int qp_job_from_q8_0(const qp_job *job) { return job->from_q8_0; }

void qp_job_free(qp_job *job)
{
    if (!job)
        return;
    qp_importance_free(job->imp);
    qp_cov_apply_free(job->cov);
    qp_alloc_plan_free(&job->alloc);
    qp_plan_free(job->plan);
    qp_gguf_close(job->gguf);
    qp_st_close(job->st);
    free(job->types);
    free(job->fallback);
    free(job->dir);
    free(job);
}

const qp_plan *qp_job_plan(const qp_job *job) { return job->plan; }
const char *qp_job_dir(const qp_job *job) { return job->dir; }
uint32_t qp_job_type(const qp_job *job, int64_t i) { return job->types[i]; }
int qp_job_fallback(const qp_job *job, int64_t i) { return job->fallback[i]; }
const qp_importance *qp_job_importance(const qp_job *job) { return job->imp; }
const qp_cov_apply *qp_job_covariance(const qp_job *job) { return job->cov; }
const qp_alloc_plan *qp_job_alloc(const qp_job *job) { return job->has_alloc ? &job->alloc : NULL; }
uint64_t qp_job_alloc_budget(const qp_job *job) { return job->alloc_budget; }
uint64_t qp_job_alloc_overhead(const qp_job *job) { return job->alloc_overhead; }

uint64_t qp_job_tensor_bytes(const qp_job *job, int64_t i)
{
    const qp_plan_tensor *t = qp_plan_at(job->plan, i);
    return qp_qtype_row_bytes(job->types[i], t->row_len) * (uint64_t)t->n_rows;
}

void qp_job_convert_options(const qp_job *job, qp_convert_options *out)
{
    memset(out, 0, sizeof *out);
    out->file_type = job->preset->file_type;
    out->recipe = job->recipe_desc;
    out->choose_type = choose_from_job;
    out->choose_ctx = (void *)job;
    out->default_type = job->preset->default_type;
    if (job->imp) {
        out->importance = qp_importance_get;
        out->importance_ctx = job->imp;
        out->extra_meta = qp_importance_write_meta;
        out->extra_meta_ctx = job->imp;
    }
    if (job->has_alloc) {
        out->extra_meta = alloc_meta;
        out->extra_meta_ctx = (void *)job;
    }
    if (job->cov) {
        out->covariance = qp_cov_apply_get;
        out->covariance_ctx = job->cov;
        out->gptq = job->gptq;
    }
}
