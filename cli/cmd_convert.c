/* cmd_convert.c - `qpack convert HF_DIR -o OUT.gguf --type T`. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/qp_ggml_types.h"
#include "convert/convert.h"
#include "common/qp_threads.h"
#include "convert/job.h"
#include "quant/recipe.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: qpack convert HF_DIR -o OUT.gguf [--type TYPE] [options]\n"
            "\n"
            "Convert a Hugging Face Qwen3 / Qwen3-MoE checkpoint (safetensors shards) to GGUF\n"
            "in one streaming pass. TYPE is f32, f16, bf16 (lossless for bf16 sources) or a\n"
            "quantization preset: Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K\n"
            "Q8_0 IQ4_XS (or any single block type with --pure). Default: bf16.\n"
            "\n"
            "options:\n"
            "  -o, --output FILE        output file (written as FILE.tmp, renamed when complete)\n"
            "  --type TYPE              output type or preset\n"
            "  --imatrix FILE           importance matrix (llama.cpp GGUF or .dat format)\n"
            "  --tensor-type RE=TYPE    override the type of tensors whose name matches RE (repeatable)\n"
            "  --output-tensor-type T   type of output.weight\n"
            "  --token-embedding-type T type of token_embd.weight\n"
            "  --pure                   one type for every matrix (no preset mix)\n"
            "  --dry-run                print each tensor's type, the size and bits per weight; write nothing\n"
            "  -t, --threads N          worker threads (default: all CPUs); output is identical for any N\n"
            "  --force                  overwrite OUT if it exists\n"
            "  -q, --quiet              no progress display\n"
            "  -h, --help               this text\n"
            "\n"
            "exit: 0 ok, 1 internal or I/O error, 2 bad input or usage, 130/143 interrupted\n");
}

static void print_dry_run(const qp_job *job)
{
    const qp_plan *plan = qp_job_plan(job);
    uint64_t total = 0, weights = 0;
    printf("%-36s %-20s %-7s %12s\n", "tensor", "shape", "type", "bytes");
    for (int64_t i = 0; i < qp_plan_count(plan); i++) {
        const qp_plan_tensor *t = qp_plan_at(plan, i);
        char shape[64];
        if (t->n_dims == 1)
            snprintf(shape, sizeof shape, "[%lld]", (long long)t->ne[0]);
        else if (t->n_dims == 2)
            snprintf(shape, sizeof shape, "[%lld, %lld]", (long long)t->ne[0], (long long)t->ne[1]);
        else
            snprintf(shape, sizeof shape, "[%lld, %lld, %lld]", (long long)t->ne[0], (long long)t->ne[1],
                     (long long)t->ne[2]);
        uint64_t b = qp_job_tensor_bytes(job, i);
        total += b;
        weights += (uint64_t)t->row_len * (uint64_t)t->n_rows;
        int fb = qp_job_fallback(job, i);
        printf("%-36s %-20s %-7s %12llu%s%s\n", t->name, shape, qp_ggml_type_name(qp_job_type(job, i)),
               (unsigned long long)b, fb >= 0 ? "  fallback from " : "", fb >= 0 ? qp_ggml_type_name((uint32_t)fb) : "");
    }
    printf("total: %llu tensor bytes, %.2f MB, %.3f bits per weight\n", (unsigned long long)total, total / 1e6,
           weights ? 8.0 * (double)total / (double)weights : 0.0);
}

static void warn_fallbacks(const qp_job *job)
{
    const qp_plan *plan = qp_job_plan(job);
    for (int64_t i = 0; i < qp_plan_count(plan); i++) {
        int fb = qp_job_fallback(job, i);
        if (fb >= 0)
            fprintf(stderr, "qpack: note: %s: row length %lld is not a multiple of %s's block, using %s\n",
                    qp_plan_at(plan, i)->name, (long long)qp_plan_at(plan, i)->row_len,
                    qp_ggml_type_name((uint32_t)fb), qp_ggml_type_name(qp_job_type(job, i)));
    }
}

#define MAX_OVERRIDES 64

int cmd_convert(int argc, char **argv)
{
    const char *in = NULL, *out = NULL, *type = "bf16", *imatrix = NULL;
    const char *out_type = NULL, *embd_type = NULL;
    const char *ov_patterns[MAX_OVERRIDES];
    char ov_buf[MAX_OVERRIDES][512];
    uint32_t ov_types[MAX_OVERRIDES];
    int n_ov = 0;
    int force = 0, quiet = 0, dry_run = 0, pure = 0;
    long long threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (cli_is_help(a)) {
            usage(stdout);
            return CLI_EXIT_OK;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (!next)
                return cli_usage_error("convert", "%s needs a file name", a);
            out = next;
            i++;
        } else if (!strcmp(a, "--type")) {
            if (!next)
                return cli_usage_error("convert", "--type needs a value");
            type = next;
            i++;
        } else if (!strcmp(a, "--imatrix")) {
            if (!next)
                return cli_usage_error("convert", "--imatrix needs a file");
            imatrix = next;
            i++;
        } else if (!strcmp(a, "--tensor-type")) {
            const char *eq = next ? strrchr(next, '=') : NULL;
            int t = eq ? qp_ggml_type_from_name(eq + 1) : -1;
            if (!next || !eq || t < 0 || (size_t)(eq - next) >= sizeof ov_buf[0] || eq == next)
                return cli_usage_error("convert", "--tensor-type needs REGEX=TYPE with a known type");
            if (n_ov == MAX_OVERRIDES)
                return cli_usage_error("convert", "at most %d --tensor-type overrides", MAX_OVERRIDES);
            memcpy(ov_buf[n_ov], next, (size_t)(eq - next));
            ov_buf[n_ov][eq - next] = '\0';
            ov_patterns[n_ov] = ov_buf[n_ov];
            ov_types[n_ov++] = (uint32_t)t;
            i++;
        } else if (!strcmp(a, "--output-tensor-type")) {
            if (!next)
                return cli_usage_error("convert", "--output-tensor-type needs a type");
            out_type = next;
            i++;
        } else if (!strcmp(a, "--token-embedding-type")) {
            if (!next)
                return cli_usage_error("convert", "--token-embedding-type needs a type");
            embd_type = next;
            i++;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!next || !cli_parse_int(next, 1, 1024, &threads))
                return cli_usage_error("convert", "%s needs a thread count from 1 to 1024", a);
            i++;
        } else if (!strcmp(a, "--force")) {
            force = 1;
        } else if (!strcmp(a, "--pure")) {
            pure = 1;
        } else if (!strcmp(a, "--dry-run")) {
            dry_run = 1;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = 1;
        } else if (a[0] == '-') {
            return cli_usage_error("convert", "unknown option '%s'", a);
        } else if (!in) {
            in = a;
        } else {
            return cli_usage_error("convert", "unexpected argument '%s'", a);
        }
    }
    if (!in)
        return cli_usage_error("convert", "missing HF_DIR");
    if (!out && !dry_run)
        return cli_usage_error("convert", "missing -o OUT.gguf");
    qp_job_options jo;
    memset(&jo, 0, sizeof jo);
    jo.preset = type;
    jo.pure = pure;
    jo.output_type = -1;
    jo.token_embd_type = -1;
    if (out_type && (jo.output_type = qp_ggml_type_from_name(out_type)) < 0)
        return cli_usage_error("convert", "unknown type '%s'", out_type);
    if (embd_type && (jo.token_embd_type = qp_ggml_type_from_name(embd_type)) < 0)
        return cli_usage_error("convert", "unknown type '%s'", embd_type);
    if (!qp_preset_find(type))
        return cli_usage_error("convert", "unknown --type '%s'", type);
    jo.n_overrides = n_ov;
    jo.override_patterns = ov_patterns;
    jo.override_types = ov_types;
    jo.imatrix_path = imatrix;
    struct stat sb;
    if (!dry_run && !force && stat(out, &sb) == 0) {
        fprintf(stderr, "qpack: %s: output exists (use --force to overwrite)\n", out);
        return CLI_EXIT_BAD_INPUT;
    }

    qp_err err;
    qp_err_clear(&err);
    qp_job *job = NULL;
    qp_status s = qp_job_open(in, &jo, &job, &err);
    if (s != QP_OK)
        return cli_fail(&err);
    if (dry_run) {
        print_dry_run(job);
        qp_job_free(job);
        return CLI_EXIT_OK;
    }
    warn_fallbacks(job);
    cli_progress *bar = cli_progress_new("convert", "B", quiet);
    qp_convert_options opt;
    qp_job_convert_options(job, &opt);
    opt.out_path = out;
    opt.n_threads = threads > 0 ? (int)threads : qp_cpu_count();
    opt.progress = cli_progress_hook(bar);
    qp_convert_stats st;
    memset(&st, 0, sizeof st);
    s = qp_convert_plan(qp_job_plan(job), in, &opt, &st, &err);
    cli_progress_free(bar);
    qp_job_free(job);
    if (s != QP_OK)
        return cli_fail(&err);
    printf("wrote %s: %lld tensors, %.2f MB (%.2f MB read in %.2f s, %.1f MB/s)\n", out, (long long)st.n_tensors,
           st.bytes_out / 1e6, st.bytes_in / 1e6, st.seconds, st.seconds > 0 ? st.bytes_in / 1e6 / st.seconds : 0.0);
    return CLI_EXIT_OK;
}
