/* quant_opts.c - shared options and run loop of `convert` and `quantize`. */
#include "cli/quant_opts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "common/qp_ggml_types.h"
#include "common/qp_threads.h"
#include "quant/recipe.h"

const char *cli_quant_options_help(void)
{
    return "  -o, --output FILE        output file (written as FILE.tmp, renamed when complete)\n"
           "  --type TYPE              f32, f16, bf16 or a preset: Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M\n"
           "                           Q5_K_S Q5_K_M Q6_K Q8_0 IQ4_XS IQ4_NL Q4_0 Q4_1 Q5_0 Q5_1\n"
           "  --imatrix FILE           importance matrix (llama.cpp GGUF or legacy .dat format)\n"
           "  --covariance FILE        input second moments from `qpack calibrate --covariance`: quantize\n"
           "                           Q2_K..Q6_K matrices with error feedback (docs/quantization.md)\n"
           "  --gptq-damp X            with --covariance: damping, X * mean diagonal (default 0.01)\n"
           "  --gptq-passes N          with --covariance: scale-search passes (default 2)\n"
           "  --gptq-scale-weights W   with --covariance: imatrix (default) or feedback\n"
           "  --gptq-refine N          with --covariance: code refinement sweeps (default 4, 0: none)\n"
           "  --gptq-no-refit          with --covariance: no least-squares refit of the block scales\n"
           "  --target-bpw B           choose each matrix's type (Q2_K..Q8_0) to minimize the predicted KLD\n"
           "                           within B bits per weight (all tensors, as llama.cpp counts); needs\n"
           "                           --imatrix made by `qpack calibrate --sensitivity`; replaces --type\n"
           "  --target-size SIZE       the same with a budget for the whole output file (e.g. 3500K, 2G)\n"
           "  --tensor-type RE=TYPE    tensors whose name matches RE get TYPE (repeatable, first match wins)\n"
           "  --output-tensor-type T   type of output.weight\n"
           "  --token-embedding-type T type of token_embd.weight\n"
           "  --pure                   one type for every matrix (no preset mix)\n"
           "  --dry-run                print each tensor's type, the size and bits per weight; write nothing\n"
           "  -t, --threads N          worker threads (default: all CPUs); output is identical for any N\n"
           "  --split-max-size SIZE    split the output (llama.cpp gguf-split naming STEM-00001-of-0000K.gguf)\n"
           "                           so no file holds more than SIZE of tensor data (e.g. 48G)\n"
           "  --split-max-tensors N    ... or more than N tensors\n"
           "  --shard I/N              write only the split files of shard I (1..N): N processes on N machines\n"
           "                           produce the same set as one process, byte for byte\n"
           "  --resume                 keep output files that are complete and verified, redo the rest\n"
           "  --force                  overwrite OUT if it exists\n"
           "  -q, --quiet              no progress display\n"
           "  -h, --help               this text\n";
}

void cli_quant_opts_init(cli_quant_opts *o, const char *default_type)
{
    memset(o, 0, sizeof *o);
    o->type = default_type;
}

int cli_quant_opts_parse(cli_quant_opts *o, const char *cmd, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    const char *next = *i + 1 < argc ? argv[*i + 1] : NULL;
    const char **slot = NULL;
    if (!strcmp(a, "-o") || !strcmp(a, "--output"))
        slot = &o->out;
    else if (!strcmp(a, "--type"))
        slot = &o->type;
    else if (!strcmp(a, "--imatrix"))
        slot = &o->imatrix;
    else if (!strcmp(a, "--covariance"))
        slot = &o->covariance;
    else if (!strcmp(a, "--output-tensor-type"))
        slot = &o->out_type;
    else if (!strcmp(a, "--token-embedding-type"))
        slot = &o->embd_type;
    if (slot) {
        if (!next)
            return -cli_usage_error(cmd, "%s needs a value", a);
        o->type_given |= slot == &o->type;
        *slot = next;
        (*i)++;
        return 1;
    }
    if (!strcmp(a, "--tensor-type")) {
        const char *eq = next ? strrchr(next, '=') : NULL;
        int t = eq ? qp_ggml_type_from_name(eq + 1) : -1;
        if (!next || !eq || t < 0 || eq == next || (size_t)(eq - next) >= sizeof o->ov_buf[0])
            return -cli_usage_error(cmd, "--tensor-type needs REGEX=TYPE with a known type");
        if (o->n_ov == CLI_MAX_OVERRIDES)
            return -cli_usage_error(cmd, "at most %d --tensor-type overrides", CLI_MAX_OVERRIDES);
        memcpy(o->ov_buf[o->n_ov], next, (size_t)(eq - next));
        o->ov_buf[o->n_ov][eq - next] = '\0';
        o->ov_patterns[o->n_ov] = o->ov_buf[o->n_ov];
        o->ov_types[o->n_ov++] = (uint32_t)t;
        (*i)++;
        return 1;
    }
    if (!strcmp(a, "--target-bpw")) {
        char *end = NULL;
        double v = next ? strtod(next, &end) : 0;
        if (!next || end == next || *end || !(v > 0 && v <= 32))
            return -cli_usage_error(cmd, "--target-bpw needs bits per weight above 0 (e.g. 3.9)");
        o->target_bpw = v;
        (*i)++;
        return 1;
    }
    if (!strcmp(a, "--target-size")) {
        if (!next || !cli_parse_size(next, &o->target_size) || o->target_size == 0)
            return -cli_usage_error(cmd, "--target-size needs a size in bytes such as 3500K");
        (*i)++;
        return 1;
    }
    if (!strcmp(a, "--split-max-size")) {
        if (!next || !cli_parse_size(next, &o->split_max_bytes) || o->split_max_bytes == 0)
            return -cli_usage_error(cmd, "--split-max-size needs a size such as 48G");
        (*i)++;
        return 1;
    }
    if (!strcmp(a, "--split-max-tensors")) {
        if (!next || !cli_parse_int(next, 1, 1LL << 40, &o->split_max_tensors))
            return -cli_usage_error(cmd, "--split-max-tensors needs a positive count");
        (*i)++;
        return 1;
    }
    if (!strcmp(a, "--shard")) {
        int si, sn, used = 0;
        if (!next || sscanf(next, "%d/%d%n", &si, &sn, &used) != 2 || next[used] || sn < 1 || si < 1 || si > sn)
            return -cli_usage_error(cmd, "--shard needs I/N with 1 <= I <= N");
        o->shard_index = si;
        o->shard_count = sn;
        (*i)++;
        return 1;
    }
    if (!strcmp(a, "--gptq-damp")) {
        char *end = NULL;
        o->gptq_damp = next ? strtod(next, &end) : 0;
        if (!next || !end || *end || !(o->gptq_damp > 0 && o->gptq_damp < 100))
            return -cli_usage_error(cmd, "--gptq-damp needs a number in (0, 100)");
        (*i)++;
        return 1;
    }
    if (!strcmp(a, "--gptq-refine")) {
        o->gptq_refine_set = 1;
        if (!next || !cli_parse_int(next, 0, 64, &o->gptq_refine))
            return -cli_usage_error(cmd, "--gptq-refine needs a sweep count from 0 to 64");
        (*i)++;
        return 1;
    }
    if (!strcmp(a, "--gptq-passes")) {
        if (!next || !cli_parse_int(next, 1, 8, &o->gptq_passes))
            return -cli_usage_error(cmd, "--gptq-passes needs a count from 1 to 8");
        (*i)++;
        return 1;
    }
    if (!strcmp(a, "--gptq-scale-weights")) {
        if (!next || (strcmp(next, "imatrix") && strcmp(next, "feedback")))
            return -cli_usage_error(cmd, "--gptq-scale-weights is imatrix or feedback");
        o->gptq_scale_imp = !strcmp(next, "feedback");
        (*i)++;
        return 1;
    }
    if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
        if (!next || !cli_parse_int(next, 1, 1024, &o->threads))
            return -cli_usage_error(cmd, "%s needs a thread count from 1 to 1024", a);
        (*i)++;
        return 1;
    }
    int *flag = !strcmp(a, "--force") ? &o->force
                : !strcmp(a, "--resume") ? &o->resume
                : !strcmp(a, "--pure") ? &o->pure
                : !strcmp(a, "--dry-run") ? &o->dry_run
                : !strcmp(a, "--gptq-no-refit") ? &o->gptq_refit
                : (!strcmp(a, "-q") || !strcmp(a, "--quiet")) ? &o->quiet : NULL;
    if (flag) {
        *flag = 1;
        return 1;
    }
    return 0;
}

int cli_quant_opts_finish(cli_quant_opts *o, const char *cmd, qp_job_options *jo)
{
    memset(jo, 0, sizeof *jo);
    if (!o->out && !o->dry_run)
        return cli_usage_error(cmd, "missing the output file");
    int target = o->target_bpw > 0 || o->target_size > 0;
    if (target && o->type_given)
        return cli_usage_error(cmd, "--type and --target-bpw/--target-size exclude each other");
    if (o->target_bpw > 0 && o->target_size > 0)
        return cli_usage_error(cmd, "give --target-bpw or --target-size, not both");
    if (o->target_size > 0 && (o->split_max_bytes || o->split_max_tensors))
        return cli_usage_error(cmd, "--target-size needs a single output file (no --split-max-*)");
    if (!target && !qp_preset_find(o->type))
        return cli_usage_error(cmd, "unknown type or preset '%s'", o->type);
    jo->preset = o->type;
    jo->pure = o->pure;
    jo->output_type = -1;
    jo->token_embd_type = -1;
    if (o->out_type && (jo->output_type = qp_ggml_type_from_name(o->out_type)) < 0)
        return cli_usage_error(cmd, "unknown type '%s'", o->out_type);
    if (o->embd_type && (jo->token_embd_type = qp_ggml_type_from_name(o->embd_type)) < 0)
        return cli_usage_error(cmd, "unknown type '%s'", o->embd_type);
    jo->n_overrides = o->n_ov;
    jo->override_patterns = o->ov_patterns;
    jo->override_types = o->ov_types;
    jo->imatrix_path = o->imatrix;
    jo->covariance_path = o->covariance;
    jo->gptq.damp = o->gptq_damp;
    jo->gptq.passes = (int)o->gptq_passes;
    jo->gptq.scale_imp = o->gptq_scale_imp;
    jo->gptq.refine = !o->gptq_refine_set ? 0 : (o->gptq_refine == 0 ? -1 : (int)o->gptq_refine);
    jo->gptq.refit = o->gptq_refit ? -1 : 0;
    jo->target_bpw = o->target_bpw;
    jo->target_size = o->target_size;
    jo->n_threads = o->threads > 0 ? (int)o->threads : qp_cpu_count();
    struct stat sb;
    int split = o->split_max_bytes || o->split_max_tensors;
    if (o->shard_count && !split)
        return cli_usage_error(cmd, "--shard needs a split output (--split-max-size or --split-max-tensors)");
    /* Split sets are checked file by file when written; --resume keeps files. */
    if (!o->dry_run && !o->force && !o->resume && !split && stat(o->out, &sb) == 0) {
        fprintf(stderr, "qpack: %s: output exists (use --force to overwrite)\n", o->out);
        return CLI_EXIT_BAD_INPUT;
    }
    return 0;
}

/* Size-targeted plans: the totals against the target. */
static void print_alloc_totals(const qp_job *job, const cli_quant_opts *o)
{
    const qp_alloc_plan *a = qp_job_alloc(job);
    if (o->target_bpw > 0)
        printf("target: %.4g bits per weight = %llu tensor bytes\n", o->target_bpw,
               (unsigned long long)qp_job_alloc_budget(job));
    else
        printf("target: %llu file bytes = %llu tensor bytes + %llu header and padding allowance\n",
               o->target_size, (unsigned long long)qp_job_alloc_budget(job),
               (unsigned long long)qp_job_alloc_overhead(job));
    printf("predicted: %llu tensor bytes, %.3f bits per weight, mean KLD %.6f (range %.3f..%.3f bpw)\n",
           (unsigned long long)a->bytes, qp_alloc_bpw(a, a->bytes), a->loss_total, qp_alloc_bpw(a, a->min_bytes),
           qp_alloc_bpw(a, a->max_bytes));
}

static void print_dry_run(const qp_job *job, const cli_quant_opts *o)
{
    const qp_plan *plan = qp_job_plan(job);
    const qp_alloc_plan *alloc = qp_job_alloc(job);
    uint64_t total = 0, weights = 0;
    printf("%-36s %-20s %-7s %12s%s\n", "tensor", "shape", "type", "bytes", alloc ? "     pred.kld" : "");
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
        printf("%-36s %-20s %-7s %12llu", t->name, shape, qp_ggml_type_name(qp_job_type(job, i)),
               (unsigned long long)b);
        if (alloc)
            printf(" %12.6f", alloc->loss[i]);
        printf("%s%s\n", fb >= 0 ? "  fallback from " : "", fb >= 0 ? qp_ggml_type_name((uint32_t)fb) : "");
    }
    printf("total: %llu tensor bytes, %.2f MB, %.3f bits per weight\n", (unsigned long long)total, total / 1e6,
           weights ? 8.0 * (double)total / (double)weights : 0.0);
    if (alloc)
        print_alloc_totals(job, o);
}

int cli_quant_run(const cli_quant_opts *o, qp_job *job)
{
    if (o->dry_run) {
        print_dry_run(job, o);
        return CLI_EXIT_OK;
    }
    const qp_plan *plan = qp_job_plan(job);
    for (int64_t i = 0; i < qp_plan_count(plan); i++) {
        int fb = qp_job_fallback(job, i);
        if (fb >= 0)
            fprintf(stderr, "qpack: note: %s: row length %lld is not a multiple of %s's block, using %s\n",
                    qp_plan_at(plan, i)->name, (long long)qp_plan_at(plan, i)->row_len,
                    qp_ggml_type_name((uint32_t)fb), qp_ggml_type_name(qp_job_type(job, i)));
    }
    cli_progress *bar = cli_progress_new(o->out, "B", o->quiet);
    qp_convert_options opt;
    qp_job_convert_options(job, &opt);
    opt.out_path = o->out;
    opt.n_threads = o->threads > 0 ? (int)o->threads : qp_cpu_count();
    opt.progress = cli_progress_hook(bar);
    opt.split_max_bytes = o->split_max_bytes;
    opt.split_max_tensors = o->split_max_tensors;
    opt.shard_index = o->shard_index;
    opt.shard_count = o->shard_count;
    opt.resume = o->resume;
    qp_convert_stats st;
    memset(&st, 0, sizeof st);
    qp_err err;
    qp_err_clear(&err);
    qp_status s = qp_convert_plan(plan, qp_job_dir(job), &opt, &st, &err);
    cli_progress_free(bar);
    if (s != QP_OK)
        return cli_fail(&err);
    if (o->target_size > 0 && st.bytes_out > o->target_size) { /* the allowance makes this a bug */
        fprintf(stderr, "qpack: %s: %llu bytes exceed --target-size %llu (internal error)\n", o->out,
                (unsigned long long)st.bytes_out, o->target_size);
        return CLI_EXIT_INTERNAL;
    }
    if (qp_job_alloc(job) && !o->quiet)
        print_alloc_totals(job, o);
    if (st.n_files > 1 || st.files_kept)
        printf("wrote %d of %d files of %s (%d kept from an earlier run): %lld tensors, %.2f MB (%.2f MB read in "
               "%.2f s, %.1f MB/s)\n",
               st.files_written, st.n_files, o->out, st.files_kept, (long long)st.n_tensors, st.bytes_out / 1e6,
               st.bytes_in / 1e6, st.seconds, st.seconds > 0 ? st.bytes_in / 1e6 / st.seconds : 0.0);
    else
        printf("wrote %s: %lld tensors, %.2f MB (%.2f MB read in %.2f s, %.1f MB/s)\n", o->out,
               (long long)st.n_tensors, st.bytes_out / 1e6, st.bytes_in / 1e6, st.seconds,
               st.seconds > 0 ? st.bytes_in / 1e6 / st.seconds : 0.0);
    return CLI_EXIT_OK;
}
