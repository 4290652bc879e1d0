/* verify_src.c - open a comparison source and run verify against it. */
#include "cli/verify_src.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "common/qp_ggml_types.h"
#include "verify/importance.h"

qp_status cli_source_open(const char *path, cli_source *s, qp_err *err)
{
    memset(s, 0, sizeof *s);
    struct stat sb;
    if (stat(path, &sb) != 0)
        return qp_err_io(err, path, errno, "cannot open the source");
    qp_status st;
    if (S_ISDIR(sb.st_mode) && qp_omni_is_omni_dir(path)) {
        qp_omni_options oo;
        memset(&oo, 0, sizeof oo);
        oo.output_type = oo.token_embd_type = -1;
        oo.mmproj_type = QP_GGML_F16;
        st = qp_omni_job_open(path, &oo, &s->omni, err);
    } else if (S_ISDIR(sb.st_mode)) {
        st = qp_hf_config_load(path, &s->cfg, err);
        if (st == QP_OK)
            st = qp_st_open_dir(path, &s->st, err);
        if (st == QP_OK)
            st = qp_plan_build(s->st, &s->cfg, &s->plan, err);
    } else {
        st = qp_gguf_open(path, &s->gguf, err);
        if (st == QP_OK)
            st = qp_plan_from_gguf(s->gguf, &s->plan, err);
    }
    if (st != QP_OK)
        cli_source_close(s);
    return st;
}

void cli_source_close(cli_source *s)
{
    qp_plan_free(s->plan);
    qp_omni_job_free(s->omni);
    qp_st_close(s->st);
    qp_gguf_close(s->gguf);
    memset(s, 0, sizeof *s);
}

/* The plan of the Omni output file with this role, or NULL. */
static const qp_plan *omni_plan(const qp_omni_job *job, const char *role)
{
    for (int f = 0; f < QP_OMNI_FILE_COUNT; f++)
        if (strcmp(qp_omni_file_role((qp_omni_file)f), role) == 0)
            return qp_omni_job_plan(job, (qp_omni_file)f);
    return NULL;
}

static qp_status run(const qp_fileset *set, const cli_source *src, const qp_imatrix *imx, int n_threads, int quiet,
                     int first_only, qp_verify_result *out, qp_err *err)
{
    qp_verify_job job = {
        .model = set,
        .source = src->plan,
        .importance = imx ? qp_verify_imatrix_importance : NULL,
        .importance_ctx = (void *)imx,
        .n_threads = n_threads,
    };
    int omni_set = qp_fileset_kind_of(set) == QP_FILESET_OMNI;
    if (omni_set && !src->omni)
        return qp_err_set(err, QP_ERR_USAGE, qp_fileset_path(set, 0),
                          "an Omni set is compared with the Qwen3-Omni checkpoint directory it was made from");
    if (!omni_set && src->omni)
        job.source = qp_omni_job_plan(src->omni, QP_OMNI_FILE_THINKER);
    qp_status st = QP_OK;
    memset(out, 0, sizeof *out);
    int runs = omni_set && !first_only ? qp_fileset_file_count(set) : 1;
    for (int i = 0; i < runs && st == QP_OK; i++) {
        if (omni_set) {
            job.select_file = 1;
            job.file_index = i;
            job.component = qp_fileset_role(set, i);
            job.source = omni_plan(src->omni, job.component);
            if (!job.source)
                return qp_err_set(err, QP_ERR_BAD_INPUT, qp_fileset_path(set, i),
                                  "Omni member role '%s' is not one qpack writes", job.component);
        }
        char label[64];
        snprintf(label, sizeof label, "verify%s%s", omni_set ? " " : "", omni_set ? job.component : "");
        cli_progress *bar = cli_progress_new(label, "elem", quiet);
        job.progress = cli_progress_hook(bar);
        qp_verify_result one;
        st = qp_verify_against(&job, &one, err);
        cli_progress_free(bar);
        if (st != QP_OK)
            break;
        if (i == 0) {
            *out = one;
        } else {
            st = qp_verify_result_append(out, &one, err);
            qp_verify_result_free(&one);
        }
    }
    if (st != QP_OK)
        qp_verify_result_free(out);
    return st;
}

qp_status cli_verify_run(const qp_fileset *set, const cli_source *src, const qp_imatrix *imx, int n_threads,
                         int quiet, qp_verify_result *out, qp_err *err)
{
    return run(set, src, imx, n_threads, quiet, 0, out, err);
}

qp_status cli_verify_run_first(const qp_fileset *set, const cli_source *src, const qp_imatrix *imx, int n_threads,
                               int quiet, qp_verify_result *out, qp_err *err)
{
    return run(set, src, imx, n_threads, quiet, 1, out, err);
}
