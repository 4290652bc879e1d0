/* omni_job.c - open a Qwen3-Omni checkpoint as three conversion plans and
 * write the three files through the streaming pipeline (convert/convert.h). */
#include "convert/omni_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/qp_ggml_types.h"

static const char *const ROLES[QP_OMNI_FILE_COUNT] = {"thinker", "mmproj", "talker"};

const char *qp_omni_file_role(qp_omni_file f)
{
    return (unsigned)f < QP_OMNI_FILE_COUNT ? ROLES[f] : "?";
}

qp_status qp_omni_output_paths(const char *out_path, char paths[QP_OMNI_FILE_COUNT][4096], qp_err *err)
{
    size_t n = strlen(out_path);
    if (n < 6 || strcmp(out_path + n - 5, ".gguf") != 0)
        return qp_err_set(err, QP_ERR_USAGE, out_path, "a Qwen3-Omni output must be named STEM.gguf (its siblings "
                                                       "are mmproj-STEM.gguf and talker-STEM.gguf)");
    const char *slash = strrchr(out_path, '/');
    size_t dir_len = slash ? (size_t)(slash - out_path + 1) : 0;
    if (n + 8 >= 4096)
        return qp_err_set(err, QP_ERR_USAGE, out_path, "output path is too long");
    snprintf(paths[QP_OMNI_FILE_THINKER], 4096, "%s", out_path);
    snprintf(paths[QP_OMNI_FILE_MMPROJ], 4096, "%.*smmproj-%s", (int)dir_len, out_path, out_path + dir_len);
    snprintf(paths[QP_OMNI_FILE_TALKER], 4096, "%.*stalker-%s", (int)dir_len, out_path, out_path + dir_len);
    return QP_OK;
}

qp_status qp_omni_job_open(const char *hf_dir, const qp_omni_options *opt, qp_omni_job **out, qp_err *err)
{
    *out = NULL;
    qp_omni_job *job = calloc(1, sizeof *job);
    if (!job || !(job->dir = strdup(hf_dir))) {
        free(job);
        return qp_err_set(err, QP_ERR_NOMEM, hf_dir, "out of memory");
    }
    qp_status s = QP_OK;
    job->preset = qp_preset_find(opt->preset ? opt->preset : "BF16");
    job->mmproj_type = opt->mmproj_type;
    if (!job->preset) {
        s = qp_err_set(err, QP_ERR_USAGE, NULL, "unknown type or preset '%s'", opt->preset);
        goto fail;
    }
    if (job->mmproj_type != QP_GGML_F16 && job->mmproj_type != QP_GGML_F32 && job->mmproj_type != QP_GGML_BF16 &&
        job->mmproj_type != QP_GGML_Q8_0) {
        s = qp_err_set(err, QP_ERR_USAGE, NULL, "the mmproj file can be F16, F32, BF16 or Q8_0, not %s",
                       qp_ggml_type_name(job->mmproj_type));
        goto fail;
    }
    snprintf(job->recipe_desc, sizeof job->recipe_desc, "%s%s", job->preset->name, opt->pure ? " pure" : "");
    if ((s = qp_omni_config_load(hf_dir, &job->cfg, &job->notes, err)) != QP_OK)
        goto fail;
    if ((s = qp_st_open_dir(hf_dir, &job->st, err)) != QP_OK)
        goto fail;
    if ((s = omni_layout(job, err)) != QP_OK)
        goto fail;
    if ((s = omni_resolve_ids(job, err)) != QP_OK)
        goto fail;
    if ((s = omni_choose_types(job, opt, err)) != QP_OK)
        goto fail;
    *out = job;
    return QP_OK;
fail:
    qp_omni_job_free(job);
    return s;
}

void qp_omni_job_free(qp_omni_job *job)
{
    if (!job)
        return;
    for (int f = 0; f < QP_OMNI_FILE_COUNT; f++) {
        if (job->specs[f])
            for (int64_t i = 0; job->plans[f] && i < qp_plan_count(job->plans[f]); i++)
                free(job->specs[f][i]);
        free(job->specs[f]);
        free(job->classes[f]);
        free(job->types[f]);
        free(job->fallback[f]);
        qp_plan_free(job->plans[f]);
    }
    free(job->owner);
    qp_st_close(job->st);
    free(job->dir);
    free(job);
}

const qp_omni_config *qp_omni_job_config(const qp_omni_job *job) { return &job->cfg; }
const qp_omni_notes *qp_omni_job_notes(const qp_omni_job *job) { return &job->notes; }
const qp_st_model *qp_omni_job_source(const qp_omni_job *job) { return job->st; }
const qp_plan *qp_omni_job_plan(const qp_omni_job *job, qp_omni_file f) { return job->plans[f]; }
uint32_t qp_omni_job_type(const qp_omni_job *job, qp_omni_file f, int64_t i) { return job->types[f][i]; }
int qp_omni_job_fallback(const qp_omni_job *job, qp_omni_file f, int64_t i) { return job->fallback[f][i]; }
const char *qp_omni_job_source_spec(const qp_omni_job *job, qp_omni_file f, int64_t i) { return job->specs[f][i]; }

typedef struct {
    const qp_omni_job *job;
    qp_omni_file file;
} chooser_ctx;

static uint32_t choose(void *ctx, const qp_plan *plan, int64_t i)
{
    (void)plan;
    const chooser_ctx *c = ctx;
    return c->job->types[c->file][i];
}

/* Progress over the whole set: each file reports its own bytes; offset them. */
typedef struct {
    qp_progress outer;
    uint64_t done_before, total;
} progress_ctx;

static void relay(void *ctx, uint64_t done, uint64_t total, const char *what)
{
    (void)total;
    progress_ctx *p = ctx;
    qp_report(&p->outer, p->done_before + done, p->total, what);
}

qp_status qp_omni_job_write(const qp_omni_job *job, const char *out_path, int n_threads, qp_progress progress,
                            qp_omni_result *result, qp_err *err)
{
    memset(result, 0, sizeof *result);
    qp_status s = qp_omni_output_paths(out_path, result->paths, err);
    if (s != QP_OK)
        return s;
    progress_ctx pc = {progress, 0, 0};
    for (int f = 0; f < QP_OMNI_FILE_COUNT; f++)
        for (int64_t i = 0; i < qp_plan_count(job->plans[f]); i++)
            pc.total += qp_plan_at(job->plans[f], i)->source_bytes;
    for (int f = 0; f < QP_OMNI_FILE_COUNT && s == QP_OK; f++) {
        chooser_ctx cc = {job, (qp_omni_file)f};
        omni_meta_ctx mc = {job, (qp_omni_file)f, {result->paths[0], result->paths[1], result->paths[2]}};
        qp_convert_options opt;
        memset(&opt, 0, sizeof opt);
        opt.out_path = result->paths[f];
        opt.file_type = f == QP_OMNI_FILE_MMPROJ ? 1 : job->preset->file_type;
        opt.recipe = job->recipe_desc;
        opt.choose_type = choose;
        opt.choose_ctx = &cc;
        opt.n_threads = n_threads;
        opt.progress = progress;
        opt.progress.fn = relay;
        opt.progress.user = &pc;
        opt.extra_meta = omni_write_meta;
        opt.extra_meta_ctx = &mc;
        opt.custom_meta = f != QP_OMNI_FILE_THINKER;
        s = qp_convert_plan(job->plans[f], job->dir, &opt, &result->stats[f], err);
        for (int64_t i = 0; i < qp_plan_count(job->plans[f]); i++)
            pc.done_before += qp_plan_at(job->plans[f], i)->source_bytes;
    }
    return s;
}

qp_status qp_omni_open_thinker(const char *dir, qp_hf_config *cfg, int64_t mrope[4], qp_st_model **st,
                               qp_plan **plan, qp_err *err)
{
    *st = NULL;
    *plan = NULL;
    qp_omni_config *oc = calloc(1, sizeof *oc);
    if (!oc)
        return qp_err_set(err, QP_ERR_NOMEM, dir, "out of memory");
    qp_status s = qp_omni_config_load(dir, oc, NULL, err);
    if (s == QP_OK) {
        *cfg = oc->thinker;
        if (mrope)
            for (int i = 0; i < 4; i++)
                mrope[i] = i < oc->n_mrope ? oc->mrope_section[i] : 0;
        s = qp_st_open_dir(dir, st, err);
    }
    free(oc);
    qp_plan_options po = {"thinker.", 1};
    if (s == QP_OK)
        s = qp_plan_build_ex(&po, *st, cfg, plan, err);
    if (s != QP_OK) {
        qp_st_close(*st);
        *st = NULL;
    }
    return s;
}
