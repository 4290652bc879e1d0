/* cmd_verify.c - `qpack verify FILE.gguf [--against SRC]`: structure,
 * checksums and, against the source, the error of every tensor. */
#include "cli/cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/verify_src.h"
#include "common/qp_ggml_types.h"
#include "common/qp_threads.h"
#include "format/gguf.h"
#include "format/imatrix.h"
#include "verify/fileset.h"
#include "verify/verify_json.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: qpack verify FILE.gguf [--against SRC] [--imatrix F] [--json] [options]\n"
               "\n"
               "Validates the file's structure (every count, length, type, offset and the\n"
               "alignment) and recomputes the xxh3-64 checksum of every tensor against the\n"
               "`qpack.tensor_xxh3` array written at conversion. A llama.cpp split set\n"
               "(NAME-00001-of-0000N.gguf, any shard may be given) is checked as a whole:\n"
               "every shard present, split.no/split.count consistent, no tensor twice, the\n"
               "tensor total equal to split.tensors.count. So is a Qwen3-Omni set (STEM.gguf,\n"
               "mmproj-STEM.gguf, talker-STEM.gguf, any member may be given): every member\n"
               "present with the same qpack.omni manifest, every source tensor in one file.\n"
               "\n"
               "With --against SRC (the Hugging Face checkpoint directory the file was made\n"
               "from, or a GGUF such as its bf16 conversion; for an Omni set, the Qwen3-Omni\n"
               "checkpoint: each member against its part) every tensor is dequantized and\n"
               "compared with the source: relative RMSE, max |error|, cosine similarity, SNR\n"
               "in dB and, with --imatrix, the importance-weighted relative RMSE. Tensors\n"
               "missing from the file or not in the source are errors. Checksums are then\n"
               "checked when present (files made by other tools have none).\n"
               "\n"
               "options:\n"
               "  --against SRC   compare every tensor with SRC\n"
               "  --imatrix F     importance matrix (llama.cpp GGUF or .dat) for the weighted error\n"
               "  --json          one JSON object on stdout (schema: docs/report.md)\n"
               "  --experts       also print one line per expert of stacked expert tensors\n"
               "  --single        check FILE alone, not the split or Omni set it belongs to\n"
               "  -t N            threads (default: all CPUs); results do not depend on N\n"
               "  -q              no progress\n"
               "\n"
               "exit: 0 ok; 2 bad file, checksum mismatch, no checksums (without --against),\n"
               "missing/extra/mis-shaped/non-finite tensors; 1 I/O or internal error\n");
}

typedef struct {
    const char *path, *against, *imatrix;
    int json, experts, quiet, single;
    int threads;
} verify_args;

static int parse_args(int argc, char **argv, verify_args *a)
{
    memset(a, 0, sizeof *a);
    a->threads = qp_cpu_count();
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (cli_is_help(s)) {
            usage(stdout);
            return -1;
        } else if (strcmp(s, "--against") == 0 || strcmp(s, "--imatrix") == 0 || strcmp(s, "-t") == 0) {
            if (i + 1 >= argc)
                return cli_usage_error("verify", "%s needs a value", s);
            const char *v = argv[++i];
            if (s[2] == 'a')
                a->against = v;
            else if (s[2] == 'i')
                a->imatrix = v;
            else {
                long long n;
                if (!cli_parse_int(v, 1, 4096, &n))
                    return cli_usage_error("verify", "-t wants a thread count 1..4096, not '%s'", v);
                a->threads = (int)n;
            }
        } else if (strcmp(s, "--json") == 0) {
            a->json = 1;
        } else if (strcmp(s, "--experts") == 0) {
            a->experts = 1;
        } else if (strcmp(s, "--single") == 0) {
            a->single = 1;
        } else if (strcmp(s, "-q") == 0 || strcmp(s, "--quiet") == 0) {
            a->quiet = 1;
        } else if (s[0] == '-') {
            return cli_usage_error("verify", "unknown option '%s'", s);
        } else if (!a->path) {
            a->path = s;
        } else {
            return cli_usage_error("verify", "unexpected argument '%s'", s);
        }
    }
    if (!a->path)
        return cli_usage_error("verify", "missing FILE.gguf");
    if (a->imatrix && !a->against)
        return cli_usage_error("verify", "--imatrix only makes sense with --against");
    return 0;
}

/* --json on failure too: machines get {"ok": false, "error": ...}, people
 * the usual one line on stderr. */
static int fail_json(const verify_args *a, const qp_fileset *set, int checksum_files, const qp_err *err)
{
    if (a->json) {
        char line[2048];
        qp_err_format(err, line, sizeof line);
        qp_verify_json_in in = {.file = a->path, .set = set, .checksum_files = checksum_files, .error = line,
                                .against = a->against, .imatrix = a->imatrix};
        char *txt = qp_verify_json(&in);
        if (txt)
            puts(txt);
        free(txt);
    }
    return cli_fail(err);
}

static void fmt_num(char *buf, size_t n, const char *fmt, double v)
{
    if (isfinite(v))
        snprintf(buf, n, fmt, v);
    else
        snprintf(buf, n, "%s", v > 0 ? "inf" : v < 0 ? "-inf" : "nan");
}

static void shape_text(char *buf, size_t n, uint32_t dims, const int64_t *ne)
{
    size_t o = (size_t)snprintf(buf, n, "[");
    for (uint32_t d = 0; d < dims && o < n; d++)
        o += (size_t)snprintf(buf + o, n - o, "%s%lld", d ? "," : "", (long long)ne[d]);
    if (o < n)
        snprintf(buf + o, n - o, "]");
}

static void print_stats_cols(const qp_terr *e, int weighted)
{
    char rel[32], mx[32], cs[32], snr[32], w[32];
    fmt_num(rel, sizeof rel, "%.6f", e->rel_rmse);
    fmt_num(mx, sizeof mx, "%.4g", e->max_abs_err);
    fmt_num(cs, sizeof cs, "%.6f", e->cosine);
    fmt_num(snr, sizeof snr, "%.2f", e->snr_db);
    printf(" %10s %10s %9s %8s", rel, mx, cs, snr);
    if (weighted) {
        if (e->has_weighted)
            fmt_num(w, sizeof w, "%.6f", e->weighted_rel_rmse);
        else
            snprintf(w, sizeof w, "-");
        printf(" %10s", w);
    }
}

/* "component:name" for members of an Omni set, else the name. */
static const char *label_of(const qp_verify_tensor *t, char *buf, size_t n)
{
    if (!t->component[0])
        return t->name;
    snprintf(buf, n, "%s:%s", t->component, t->name);
    return buf;
}

static void print_table(const qp_verify_result *r, int weighted, int experts)
{
    int w = 6;
    char lab[200];
    for (int64_t i = 0; i < r->n; i++) {
        int l = (int)strlen(label_of(&r->t[i], lab, sizeof lab));
        if (l > w)
            w = l;
    }
    printf("%-*s %-6s %-16s %10s %10s %9s %8s", w, "tensor", "type", "shape", "rel_rmse", "max_abs", "cosine",
           "snr_db");
    if (weighted)
        printf(" %10s", "w_rel_rmse");
    printf("  status\n");
    for (int64_t i = 0; i < r->n; i++) {
        const qp_verify_tensor *t = &r->t[i];
        char sh[64];
        shape_text(sh, sizeof sh, t->n_dims, t->ne);
        printf("%-*s %-6s %-16s", w, label_of(t, lab, sizeof lab),
               t->status == QP_VT_MISSING ? "-" : qp_ggml_type_name(t->type), sh);
        if (t->compared)
            print_stats_cols(&t->err, weighted);
        else
            printf(" %10s %10s %9s %8s%s", "-", "-", "-", "-", weighted ? "           -" : "");
        if (t->status == QP_VT_OK)
            printf("  ok\n");
        else
            printf("  %s: %s\n", qp_vt_status_name(t->status), t->note);
        if (experts && t->expert_err)
            for (int64_t e = 0; e < t->n_expert; e++) {
                char el[48];
                snprintf(el, sizeof el, "  expert %lld", (long long)e);
                printf("%-*s %-6s %-16s", w, el, "", "");
                print_stats_cols(&t->expert_err[e], weighted);
                printf("\n");
            }
    }
}

static void print_summary(const qp_verify_result *r, int weighted)
{
    const qp_verify_tensor *worst = NULL;
    for (int64_t i = 0; i < r->n; i++)
        if (r->t[i].compared && (!worst || r->t[i].err.rel_rmse > worst->err.rel_rmse))
            worst = &r->t[i];
    char rel[32], cs[32], snr[32];
    fmt_num(rel, sizeof rel, "%.6f", r->total.rel_rmse);
    fmt_num(cs, sizeof cs, "%.6f", r->total.cosine);
    fmt_num(snr, sizeof snr, "%.2f", r->total.snr_db);
    printf("\ncompared %lld of %lld tensors (%lld weights, %.3f bits/weight): rel RMSE %s, cosine %s, SNR %s dB",
           (long long)r->n_compared, (long long)r->n, (long long)r->total.n,
           r->n_params ? 8.0 * (double)r->tensor_bytes / (double)r->n_params : 0.0, rel, cs, snr);
    if (weighted && r->total.has_weighted) {
        char wr[32];
        fmt_num(wr, sizeof wr, "%.6f", r->total.weighted_rel_rmse);
        printf(", weighted rel RMSE %s", wr);
    }
    printf("\n");
    if (worst) {
        fmt_num(rel, sizeof rel, "%.6f", worst->err.rel_rmse);
        char lab[200];
        printf("largest relative RMSE: %s (%s, %s)\n", label_of(worst, lab, sizeof lab),
               qp_ggml_type_name(worst->type), rel);
    }
}

static int run_against(const verify_args *a, const qp_fileset *set, int checksum_files)
{
    qp_err err;
    qp_err_clear(&err);
    cli_source src;
    if (cli_source_open(a->against, &src, &err) != QP_OK)
        return fail_json(a, set, checksum_files, &err);
    qp_imatrix *imx = NULL;
    if (a->imatrix && qp_imatrix_read(a->imatrix, &imx, &err) != QP_OK) {
        cli_source_close(&src);
        return fail_json(a, set, checksum_files, &err);
    }
    qp_verify_result r;
    qp_status st = cli_verify_run(set, &src, imx, a->threads, a->quiet || a->json, &r, &err);
    cli_source_close(&src);
    qp_imatrix_free(imx);
    if (st != QP_OK)
        return fail_json(a, set, checksum_files, &err);
    char problem[1024] = "";
    if (r.n_missing || r.n_extra || r.n_bad) {
        const qp_verify_tensor *first = NULL;
        for (int64_t i = 0; i < r.n && !first; i++)
            if (r.t[i].status != QP_VT_OK)
                first = &r.t[i];
        snprintf(problem, sizeof problem, "%s: tensors missing %lld, extra %lld, bad %lld (first: %s: %s)",
                 a->path, (long long)r.n_missing, (long long)r.n_extra, (long long)r.n_bad, first->name,
                 first->note);
    }
    if (a->json) {
        qp_verify_json_in in = {.file = a->path, .set = set, .checksum_files = checksum_files,
                                .error = problem[0] ? problem : NULL, .against = a->against,
                                .imatrix = a->imatrix, .result = &r};
        char *txt = qp_verify_json(&in);
        if (!txt) {
            qp_verify_result_free(&r);
            fprintf(stderr, "qpack: out of memory writing JSON\n");
            return CLI_EXIT_INTERNAL;
        }
        puts(txt);
        free(txt);
    } else {
        print_table(&r, a->imatrix != NULL, a->experts);
        print_summary(&r, a->imatrix != NULL);
        printf("checksums: %d of %d files verified\n", checksum_files, qp_fileset_file_count(set));
    }
    qp_verify_result_free(&r);
    if (problem[0]) {
        fprintf(stderr, "qpack: %s\n", problem);
        return CLI_EXIT_BAD_INPUT;
    }
    return CLI_EXIT_OK;
}

int cmd_verify(int argc, char **argv)
{
    verify_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc)
        return rc < 0 ? CLI_EXIT_OK : rc;
    qp_err err;
    qp_err_clear(&err);
    qp_fileset *set = NULL;
    if ((a.single ? qp_fileset_open_file(a.path, &set, &err) : qp_fileset_open(a.path, &set, &err)) != QP_OK)
        return fail_json(&a, NULL, 0, &err);
    int checked = 0;
    if (qp_fileset_verify_checksums(set, &checked, &err) != QP_OK) {
        rc = fail_json(&a, set, 0, &err);
        qp_fileset_close(set);
        return rc;
    }
    if (a.against) {
        rc = run_against(&a, set, checked);
        qp_fileset_close(set);
        return rc;
    }
    int n_files = qp_fileset_file_count(set);
    if (checked == 0) {
        qp_err_set(&err, QP_ERR_BAD_INPUT, a.path, "no qpack.tensor_xxh3 checksums in this %s (structure is valid)",
                   n_files > 1 ? "set" : "file");
        rc = fail_json(&a, set, 0, &err);
        qp_fileset_close(set);
        return rc;
    }
    if (a.json) {
        qp_verify_json_in in = {.file = a.path, .set = set, .checksum_files = checked};
        char *txt = qp_verify_json(&in);
        if (txt)
            puts(txt);
        free(txt);
        rc = txt ? CLI_EXIT_OK : CLI_EXIT_INTERNAL;
    } else if (n_files > 1 || qp_fileset_kind_of(set) == QP_FILESET_OMNI) {
        char what[256] = "";
        if (qp_fileset_kind_of(set) == QP_FILESET_OMNI) {
            size_t o = (size_t)snprintf(what, sizeof what, "Omni set of %d files (", n_files);
            for (int i = 0; i < n_files && o < sizeof what; i++)
                o += (size_t)snprintf(what + o, sizeof what - o, "%s%s", i ? ", " : "", qp_fileset_role(set, i));
            if (o < sizeof what)
                snprintf(what + o, sizeof what - o, ")");
        } else {
            snprintf(what, sizeof what, "split set of %d files", n_files);
        }
        printf("%s: OK (%s complete, structure valid, %lld tensors, checksums match in %d of %d files)\n", a.path,
               what, (long long)qp_fileset_tensor_count(set), checked, n_files);
    } else {
        printf("%s: OK (structure valid, %lld tensor checksums match)\n", a.path,
               (long long)qp_fileset_tensor_count(set));
    }
    qp_fileset_close(set);
    return rc;
}
