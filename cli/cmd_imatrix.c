/* cmd_imatrix.c - `qpack imatrix merge|convert|info`: importance matrix
 * files (llama.cpp GGUF and legacy .dat), and the warnings convert and
 * quantize print when a matrix does not cover every quantized tensor. */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "convert/job.h"
#include "format/imatrix.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: qpack imatrix merge A B [C ...] -o OUT [options]\n"
            "       qpack imatrix convert IN -o OUT [options]\n"
            "       qpack imatrix info FILE\n"
            "\n"
            "Importance matrices in llama.cpp's formats: GGUF (llama-imatrix's default) or the\n"
            "legacy .dat file; either is read. merge adds the sums and counts of every entry,\n"
            "expert by expert (each mean becomes the count-weighted mean of the inputs).\n"
            "convert rewrites a matrix in the other format. info lists the entries.\n"
            "\n"
            "options:\n"
            "  -o, --output FILE   output file\n"
            "  --format gguf|dat   output format (default: dat when OUT ends in .dat, else gguf)\n"
            "  --force             overwrite OUT if it exists\n"
            "  -h, --help          this text\n"
            "\n"
            "exit: 0 ok, 1 internal or I/O error, 2 bad input or usage\n");
}

static int write_out(const qp_imatrix *m, const char *out, const char *format)
{
    size_t n = strlen(out);
    int legacy = format ? !strcmp(format, "dat") : (n >= 4 && !strcmp(out + n - 4, ".dat"));
    qp_err err;
    qp_err_clear(&err);
    qp_status s = legacy ? qp_imatrix_write_legacy(m, out, &err) : qp_imatrix_write(m, out, &err);
    if (s != QP_OK)
        return cli_fail(&err);
    printf("wrote %s (%s): %lld entries, %u chunks\n", out, legacy ? "legacy .dat" : "GGUF",
           (long long)qp_imatrix_count(m), qp_imatrix_chunk_count(m));
    return CLI_EXIT_OK;
}

static int info(const char *path)
{
    qp_imatrix *m = NULL;
    qp_err err;
    qp_err_clear(&err);
    if (qp_imatrix_read(path, &m, &err) != QP_OK)
        return cli_fail(&err);
    printf("%s: %s importance matrix, %lld entries, %u chunks of %u tokens\n", path,
           qp_imatrix_source_format(m) == QP_IMATRIX_FORMAT_LEGACY ? "legacy .dat" : "GGUF",
           (long long)qp_imatrix_count(m), qp_imatrix_chunk_count(m), qp_imatrix_chunk_size(m));
    for (int64_t k = 0; k < qp_imatrix_dataset_count(m); k++)
        printf("  dataset: %s\n", qp_imatrix_dataset(m, k));
    printf("%-40s %8s %7s %12s %s\n", "entry", "columns", "experts", "rows", "experts without rows");
    for (int64_t i = 0; i < qp_imatrix_count(m); i++) {
        double rows = 0;
        char empty[256] = "";
        size_t used = 0;
        for (int64_t x = 0; x < qp_imatrix_n_expert(m, i); x++) {
            rows += qp_imatrix_rows(m, i, x);
            if (qp_imatrix_rows(m, i, x) == 0 && used + 24 < sizeof empty)
                used += (size_t)snprintf(empty + used, sizeof empty - used, "%s%lld", used ? "," : "", (long long)x);
        }
        printf("%-40s %8lld %7lld %12.0f %s\n", qp_imatrix_name(m, i), (long long)qp_imatrix_n_in(m, i),
               (long long)qp_imatrix_n_expert(m, i), rows, empty);
    }
    qp_imatrix_free(m);
    return CLI_EXIT_OK;
}

#define MAX_INPUTS 256

int cmd_imatrix(int argc, char **argv)
{
    const char *in[MAX_INPUTS], *out = NULL, *format = NULL, *verb = NULL;
    int n_in = 0, force = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            usage(stdout);
            return CLI_EXIT_OK;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (i + 1 >= argc)
                return cli_usage_error("imatrix", "%s needs a file", a);
            out = argv[++i];
        } else if (!strcmp(a, "--format")) {
            if (i + 1 >= argc)
                return cli_usage_error("imatrix", "--format needs gguf or dat");
            format = argv[++i];
        } else if (!strcmp(a, "--force")) {
            force = 1;
        } else if (a[0] == '-') {
            return cli_usage_error("imatrix", "unknown option '%s'", a);
        } else if (!verb) {
            verb = a;
        } else if (n_in == MAX_INPUTS) {
            return cli_usage_error("imatrix", "at most %d input files", MAX_INPUTS);
        } else {
            in[n_in++] = a;
        }
    }
    if (!verb)
        return cli_usage_error("imatrix", "missing the action: merge, convert or info");
    if (format && strcmp(format, "gguf") && strcmp(format, "dat"))
        return cli_usage_error("imatrix", "--format must be gguf or dat");
    if (!strcmp(verb, "info")) {
        if (n_in != 1)
            return cli_usage_error("imatrix", "info takes one file");
        return info(in[0]);
    }
    int merge = !strcmp(verb, "merge");
    if (!merge && strcmp(verb, "convert"))
        return cli_usage_error("imatrix", "unknown action '%s' (merge, convert or info)", verb);
    if (merge ? n_in < 2 : n_in != 1)
        return cli_usage_error("imatrix", merge ? "merge needs at least two files" : "convert takes one file");
    if (!out)
        return cli_usage_error("imatrix", "missing -o OUT");
    struct stat sb;
    if (!force && stat(out, &sb) == 0) {
        fprintf(stderr, "qpack: %s: output exists (use --force to overwrite)\n", out);
        return CLI_EXIT_BAD_INPUT;
    }
    qp_imatrix *acc = NULL;
    qp_err err;
    qp_err_clear(&err);
    for (int k = 0; k < n_in; k++) {
        qp_imatrix *m = NULL;
        qp_status s = qp_imatrix_read(in[k], &m, &err);
        if (s == QP_OK && acc) {
            s = qp_imatrix_merge(acc, m, &err);
            qp_err_set_path(&err, in[k]);
            qp_imatrix_free(m);
        } else if (s == QP_OK) {
            acc = m;
        }
        if (s != QP_OK) {
            qp_imatrix_free(acc);
            return cli_fail(&err);
        }
    }
    int rc = write_out(acc, out, format);
    qp_imatrix_free(acc);
    return rc;
}

void cli_imatrix_warn(const qp_job *job)
{
    const qp_importance *imp = qp_job_importance(job);
    if (!imp)
        return;
    /* llama-quantize names each tensor it quantizes without importance. */
    for (int64_t k = 0; k < qp_importance_missing_count(imp); k++)
        fprintf(stderr, "qpack: warning: %s: not in the importance matrix, quantized without it\n",
                qp_importance_missing(imp, k));
    if (qp_importance_empty_experts(imp) > 0)
        fprintf(stderr, "qpack: warning: %lld experts saw no calibration rows; they get uniform importance\n",
                (long long)qp_importance_empty_experts(imp));
}
