/* calib_sens.c - the --sensitivity step of `qpack calibrate` (calib_sens.h). */
#include "cli/calib_sens.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/qp_ggml_types.h"
#include "convert/importance.h"
#include "convert/plan.h"
#include "convert/sensitivity.h"
#include "format/gguf.h"
#include "format/hf_config.h"
#include "format/safetensors.h"
#include "runtime-lite/sensitivity.h"

/* The conversion plan over the model's source, as the converter sees it. */
typedef struct {
    qp_hf_config cfg;
    qp_st_model *st;
    qp_gguf *g;
    qp_plan *plan;
} source_plan;

static qp_status open_plan(const char *path, int is_hf, source_plan *p, qp_err *err)
{
    memset(p, 0, sizeof *p);
    qp_status s;
    if (is_hf) {
        if ((s = qp_hf_config_load(path, &p->cfg, err)) == QP_OK && (s = qp_st_open_dir(path, &p->st, err)) == QP_OK)
            s = qp_plan_build(p->st, &p->cfg, &p->plan, err);
        return s;
    }
    if ((s = qp_gguf_open(path, &p->g, err)) == QP_OK)
        s = qp_plan_from_gguf(p->g, &p->plan, err);
    return s;
}

static void close_plan(source_plan *p)
{
    qp_plan_free(p->plan);
    qp_st_close(p->st);
    qp_gguf_close(p->g);
}

static qp_status sens_keys(void *user, qp_gguf_writer *w, qp_err *err)
{
    return qp_sens_write_keys(user, w, err);
}

static void prog_cb(void *user, uint64_t done, uint64_t total, const char *what)
{
    qp_progress h = cli_progress_hook(user);
    (void)what;
    if (h.fn)
        h.fn(h.user, done, total, NULL);
}

int cli_calib_sensitivity(const cli_sens_args *a, int json)
{
    qp_err err;
    qp_err_clear(&err);
    source_plan sp;
    qp_importance *imp = NULL;
    qp_sens *traffic = NULL, *sens = NULL;
    uint32_t *types = NULL;
    cli_progress *bar = NULL;
    int rc = CLI_EXIT_OK;
    qp_status st = open_plan(a->model_path, qp_rt_model_is_hf(a->model), &sp, &err);
    if (st != QP_OK)
        goto fail;
    const int64_t n = qp_plan_count(sp.plan);
    if (!(types = calloc((size_t)(n ? n : 1), sizeof *types)) || !(traffic = qp_sens_new(0))) {
        st = qp_err_set(&err, QP_ERR_NOMEM, NULL, "out of memory");
        goto fail;
    }
    /* Which tensors look up importance data: the matrices (as any K preset). */
    for (int64_t i = 0; i < n; i++) {
        const qp_plan_tensor *t = qp_plan_at(sp.plan, i);
        types[i] = t->n_dims >= 2 && !t->keep_f32 ? QP_GGML_Q4_K : QP_GGML_F32;
    }
    if ((st = qp_importance_open(a->out_path, sp.plan, types, &imp, &err)) != QP_OK)
        goto fail;
    const qp_calib_result *r = a->calib;
    if (r->n_expert > 0 && r->routed) {
        const int64_t ln = r->n_layer * r->n_expert;
        if (!(traffic->routed = malloc((size_t)ln * sizeof *traffic->routed))) {
            st = qp_err_set(&err, QP_ERR_NOMEM, NULL, "out of memory");
            goto fail;
        }
        for (int64_t i = 0; i < ln; i++)
            traffic->routed[i] = r->routed[i] > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)r->routed[i];
        traffic->n_layer = r->n_layer;
        traffic->n_expert = r->n_expert;
    }
    bar = cli_progress_new("sensitivity", "mat", a->quiet);
    qp_sens_job job = {
        .model = a->model,
        .plan = sp.plan,
        .importance = qp_importance_get,
        .importance_ctx = imp,
        .traffic = traffic,
        .tokens = a->tokens,
        .n_tokens = a->n_tokens,
        .n_ctx = a->n_ctx,
        .n_chunks = a->n_chunks,
        .probe_type = QP_GGML_Q3_K,
        .n_threads = a->n_threads,
        .progress = {prog_cb, bar, cli_cancel_flag()},
    };
    st = qp_sens_measure(&job, &sens, &err);
    cli_progress_free(bar);
    bar = NULL;
    if (st != QP_OK)
        goto fail;
    if ((st = qp_calib_write_ex(r, a->out_path, sens_keys, sens, &err)) != QP_OK)
        goto fail;
    if (!json) {
        printf("sensitivity (%u chunks of %u, probe %s): KLD with only this matrix quantized, per unit error\n",
               sens->n_chunks, sens->n_ctx, qp_ggml_type_name(sens->probe_type));
        printf("%-36s %12s %12s %12s\n", "tensor", "kld", "err", "coef");
        for (int64_t k = 0; k < sens->n; k++)
            printf("%-36s %12.6f %12.5g %12.5g\n", sens->name[k], sens->kld[k], sens->err[k], sens->coef[k]);
    }
    goto done;
fail:
    fflush(stdout);
    rc = cli_fail(&err);
done:
    cli_progress_free(bar);
    qp_sens_free(sens);
    qp_sens_free(traffic);
    qp_importance_free(imp);
    free(types);
    close_plan(&sp);
    return rc;
}
