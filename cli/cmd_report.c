/* cmd_report.c - `qpack report -o report.html`: one self-contained HTML
 * page from any of a quantized file, its source, an importance matrix and
 * `qpack ppl --base --json` results. */
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/verify_src.h"
#include "common/qp_threads.h"
#include "format/imatrix.h"
#include "verify/fileset.h"
#include "verify/report_data.h"
#include "verify/report_html.h"

#define MAX_PPL 32

static void usage(FILE *f)
{
    fprintf(f, "usage: qpack report -o REPORT.html [--model OUT.gguf] [--source SRC] [--imatrix F]\n"
               "                    [--ppl PPL.json]... [options]\n"
               "\n"
               "Writes one self-contained HTML page (inline SVG and CSS, no scripts, opens\n"
               "offline) from any of these inputs; sections without their input say so:\n"
               "  --model OUT.gguf  the quantized file (or any shard of a split set; of an Omni\n"
               "                    set, its thinker): type mix,\n"
               "                    bits per weight by layer, size by tensor kind\n"
               "  --source SRC      what it was made from (HF checkpoint directory or GGUF);\n"
               "                    with --model: error by layer x tensor kind, worst tensors\n"
               "  --imatrix F       importance matrix: tokens routed to each expert by layer,\n"
               "                    under-covered experts marked; with --source also the\n"
               "                    importance-weighted error\n"
               "  --ppl F           JSON of `qpack ppl MODEL --text T --base BASE --json`\n"
               "                    (repeatable, one table row each)\n"
               "\n"
               "options:\n"
               "  -o FILE           where to write the page (required)\n"
               "  --under-share X   an expert is under-covered below X times its layer's mean\n"
               "                    token count (default 0.05)\n"
               "  -t N              threads for the comparison (default: all CPUs)\n"
               "  -q                no progress\n"
               "\n"
               "exit: 0 written, 2 bad input or usage, 1 I/O or internal error\n");
}

typedef struct {
    const char *out, *model, *source, *imatrix;
    const char *ppl[MAX_PPL];
    int n_ppl, threads, quiet;
    double under_share;
} report_args;

static int parse_args(int argc, char **argv, report_args *a)
{
    memset(a, 0, sizeof *a);
    a->threads = qp_cpu_count();
    a->under_share = -1;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (cli_is_help(s)) {
            usage(stdout);
            return -1;
        }
        if (strcmp(s, "-q") == 0 || strcmp(s, "--quiet") == 0) {
            a->quiet = 1;
            continue;
        }
        if (s[0] != '-')
            return cli_usage_error("report", "unexpected argument '%s' (inputs are given with options)", s);
        const char *opts[] = {"-o", "--model", "--source", "--imatrix", "--ppl", "--under-share", "-t"};
        int k = -1;
        for (int j = 0; j < (int)(sizeof opts / sizeof opts[0]); j++)
            if (strcmp(s, opts[j]) == 0)
                k = j;
        if (k < 0)
            return cli_usage_error("report", "unknown option '%s'", s);
        if (i + 1 >= argc)
            return cli_usage_error("report", "%s needs a value", s);
        const char *v = argv[++i];
        switch (k) {
        case 0: a->out = v; break;
        case 1: a->model = v; break;
        case 2: a->source = v; break;
        case 3: a->imatrix = v; break;
        case 4:
            if (a->n_ppl == MAX_PPL)
                return cli_usage_error("report", "at most %d --ppl files", MAX_PPL);
            a->ppl[a->n_ppl++] = v;
            break;
        case 5: {
            char *end;
            errno = 0;
            double x = strtod(v, &end);
            if (errno || *end || !(x >= 0 && x <= 1))
                return cli_usage_error("report", "--under-share wants a number in 0..1, not '%s'", v);
            a->under_share = x;
            break;
        }
        default: {
            long long n;
            if (!cli_parse_int(v, 1, 4096, &n))
                return cli_usage_error("report", "-t wants a thread count 1..4096, not '%s'", v);
            a->threads = (int)n;
        }
        }
    }
    if (!a->out)
        return cli_usage_error("report", "missing -o REPORT.html");
    if (!a->model && !a->source && !a->imatrix && !a->n_ppl)
        return cli_usage_error("report", "nothing to report: give --model, --source, --imatrix or --ppl");
    if (a->source && !a->model)
        return cli_usage_error("report", "--source is compared with --model: give both");
    return 0;
}

/* Gather every input into r. Returns 0 or an exit code. */
static int gather(const report_args *a, qp_report_data *r)
{
    qp_err err;
    qp_err_clear(&err);
    qp_imatrix *imx = NULL;
    if (a->imatrix) {
        if (qp_imatrix_read(a->imatrix, &imx, &err) != QP_OK || qp_report_set_imatrix(r, imx, a->imatrix, &err) != QP_OK) {
            qp_imatrix_free(imx);
            return cli_fail(&err);
        }
    }
    int rc = 0;
    if (a->model) {
        qp_fileset *set = NULL;
        if (qp_fileset_open(a->model, &set, &err) != QP_OK || qp_report_set_model(r, set, a->model, &err) != QP_OK) {
            rc = cli_fail(&err);
        } else if (a->source) {
            cli_source src;
            qp_verify_result v;
            if (cli_source_open(a->source, &src, &err) != QP_OK) {
                rc = cli_fail(&err);
            } else {
                if (cli_verify_run_first(set, &src, imx, a->threads, a->quiet, &v, &err) != QP_OK) {
                    rc = cli_fail(&err);
                } else {
                    if (qp_report_set_errors(r, &v, a->source, &err) != QP_OK)
                        rc = cli_fail(&err);
                    else if (v.n_missing || v.n_extra || v.n_bad)
                        fprintf(stderr, "qpack report: note: %lld tensors missing, %lld extra, %lld bad (listed "
                                        "in the report)\n",
                                (long long)v.n_missing, (long long)v.n_extra, (long long)v.n_bad);
                    qp_verify_result_free(&v);
                }
                cli_source_close(&src);
            }
        }
        qp_fileset_close(set);
    }
    qp_imatrix_free(imx);
    for (int i = 0; i < a->n_ppl && !rc; i++)
        if (qp_report_add_ppl_json(r, a->ppl[i], &err) != QP_OK)
            rc = cli_fail(&err);
    return rc;
}

int cmd_report(int argc, char **argv)
{
    report_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc)
        return rc < 0 ? CLI_EXIT_OK : rc;
    qp_report_data r;
    qp_report_init(&r);
    if (a.under_share >= 0)
        r.under_share = a.under_share;
    rc = gather(&a, &r);
    if (rc) {
        qp_report_free(&r);
        return rc;
    }
    /* Write next to the target and rename, so a failed run leaves no
     * half-written page. */
    size_t n = strlen(a.out) + 5;
    char *tmp = malloc(n);
    if (!tmp) {
        qp_report_free(&r);
        fprintf(stderr, "qpack: out of memory\n");
        return CLI_EXIT_INTERNAL;
    }
    snprintf(tmp, n, "%s.tmp", a.out);
    qp_err err;
    qp_err_clear(&err);
    FILE *f = fopen(tmp, "wb");
    qp_status st;
    if (!f)
        st = qp_err_io(&err, tmp, errno, "cannot create");
    else
        st = qp_report_html_write(&r, f, tmp, &err);
    if (f && fclose(f) != 0 && st == QP_OK)
        st = qp_err_io(&err, tmp, errno, "close failed");
    if (st == QP_OK && rename(tmp, a.out) != 0)
        st = qp_err_io(&err, a.out, errno, "cannot rename %s to it", tmp);
    if (st != QP_OK) {
        remove(tmp);
        free(tmp);
        qp_report_free(&r);
        return cli_fail(&err);
    }
    free(tmp);
    printf("wrote %s\n", a.out);
    qp_report_free(&r);
    return CLI_EXIT_OK;
}
