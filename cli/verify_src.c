/* verify_src.c - open a comparison source and run verify against it. */
#include "cli/verify_src.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "verify/importance.h"

qp_status cli_source_open(const char *path, cli_source *s, qp_err *err)
{
    memset(s, 0, sizeof *s);
    struct stat sb;
    if (stat(path, &sb) != 0)
        return qp_err_io(err, path, errno, "cannot open the source");
    qp_status st;
    if (S_ISDIR(sb.st_mode)) {
        st = qp_hf_config_load(path, &s->cfg, err);
        if (st == QP_OK)
            st = qp_st_open_dir(path, &s->st, err);
        if (st == QP_OK) {
            /* An Omni checkpoint's GGUF text model is its thinker. */
            qp_plan_options po = {NULL, 0};
            if (s->cfg.arch == QP_ARCH_QWEN3_OMNI) {
                po.hf_prefix = "thinker.";
                po.skip_other_components = 1;
            }
            st = qp_plan_build_ex(&po, s->st, &s->cfg, &s->plan, err);
        }
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
    qp_st_close(s->st);
    qp_gguf_close(s->gguf);
    memset(s, 0, sizeof *s);
}

qp_status cli_verify_run(const qp_fileset *set, const cli_source *src, const qp_imatrix *imx, int n_threads,
                         int quiet, qp_verify_result *out, qp_err *err)
{
    cli_progress *bar = cli_progress_new("verify", "elem", quiet);
    qp_verify_job job = {
        .model = set,
        .source = src->plan,
        .importance = imx ? qp_verify_imatrix_importance : NULL,
        .importance_ctx = (void *)imx,
        .n_threads = n_threads,
        .progress = cli_progress_hook(bar),
    };
    qp_status st = qp_verify_against(&job, out, err);
    cli_progress_free(bar);
    return st;
}
